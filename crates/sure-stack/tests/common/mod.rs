//! Re-running this test binary in a child process.

use std::process::Command;

/// A command that runs this test binary again: directly on the host, or
/// through the emulator that `SURE_TEST_RUNNER` names (set by the cross
/// stages of `cargo xtask test`, whose tests cargo runs through it too).
pub fn this_test_binary() -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let runner = std::env::var("SURE_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let Some(emulator) = words.next() else {
        return Command::new(exe);
    };
    let mut command = Command::new(emulator);
    command.args(words).arg(exe);
    command
}
