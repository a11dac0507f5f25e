//! Re-running this test binary in a child process, and the guard's size.

// Each test file uses only some of these.
#![allow(dead_code)]

use std::process::Command;

/// The pages of a stack's guard: the inaccessible page, and on Windows the
/// four `PAGE_GUARD` pages of overflow room above it.
pub const GUARD_PAGES: usize = if cfg!(windows) { 5 } else { 1 };

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
