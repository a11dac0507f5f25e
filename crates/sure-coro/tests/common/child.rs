//! Running a test's misbehaving side in a child process: the test
//! re-executes its own test binary for itself alone, with `CHILD_ENV` set
//! to its own name, and looks at how the child ended.

use std::process::{Command, ExitStatus, Output};

/// Set, in a re-executed copy of this binary, to the name of the test whose
/// child side should run.
pub const CHILD_ENV: &str = "SURE_CORO_TEST_CHILD";

/// What a child prints just before it misbehaves, so that a child that died
/// earlier for another reason is not taken for a pass.
pub const REACHED: &str = "child: misbehaving now";

/// What a child prints if it gets past its misbehaviour.
pub const SURVIVED: &str = "child: survived";

/// Rust's message for a panic escaping a destructor during an unwind.
pub const PANIC_IN_CLEANUP: &str = "panic in a destructor during cleanup";

/// In the child of `test`: runs `child` (which should abort), reports
/// surviving, and exits. In the parent: runs the child process and returns
/// what it did.
pub fn in_child(test: &str, child: impl FnOnce()) -> Option<Output> {
    if std::env::var(CHILD_ENV).is_ok_and(|name| name == test) {
        // No core file for the crash to come.
        #[cfg(unix)]
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0).unwrap();
        child();
        println!("{SURVIVED}");
        std::process::exit(0);
    }
    let out = this_test_binary()
        .args([
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(CHILD_ENV, test)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    Some(out)
}

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

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether a process ended as `std::process::abort` ends it: by `SIGABRT`
/// on Unix; on Windows, where Rust's abort is `__fastfail`, with the
/// fast-fail status `STATUS_STACK_BUFFER_OVERRUN` as its exit code.
pub fn aborted(status: &ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(nix::sys::signal::Signal::SIGABRT as i32)
    }
    #[cfg(windows)]
    {
        status.code() == Some(0xC000_0409_u32 as i32)
    }
}

/// The child got to misbehave, then aborted with `needle` on
/// stderr: a clear abort, not a segfault nor a silent exit.
#[track_caller]
pub fn assert_aborted_with(out: &Output, needle: &str) {
    let (o, e) = (stdout(out), stderr(out));
    assert!(
        o.contains(REACHED),
        "the child did not get to misbehave:\nstdout:\n{o}\nstderr:\n{e}"
    );
    assert!(
        !o.contains(SURVIVED),
        "the child went on:\nstdout:\n{o}\nstderr:\n{e}"
    );
    assert!(
        aborted(&out.status),
        "the child should abort ({:?}):\nstdout:\n{o}\nstderr:\n{e}",
        out.status
    );
    assert!(e.contains(needle), "stderr should say {needle:?}:\n{e}");
    assert!(
        !e.contains("SIGSEGV") && !e.contains("segmentation"),
        "no segfault: {e}"
    );
}

/// The child got to misbehave and went on to the end, exiting normally.
#[track_caller]
pub fn assert_survived(out: &Output) {
    let (o, e) = (stdout(out), stderr(out));
    assert!(
        o.contains(REACHED) && o.contains(SURVIVED) && out.status.success(),
        "the child should get past its misbehaviour and exit normally ({:?}):\nstdout:\n{o}\nstderr:\n{e}",
        out.status
    );
}

/// The child got to misbehave, then exited with `code` (no signal).
#[track_caller]
pub fn assert_exited_with(out: &Output, code: i32) {
    let (o, e) = (stdout(out), stderr(out));
    assert!(
        o.contains(REACHED),
        "the child did not get to misbehave:\nstdout:\n{o}\nstderr:\n{e}"
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "the child should exit with {code} ({:?}):\nstdout:\n{o}\nstderr:\n{e}",
        out.status
    );
}

/// The child either aborted cleanly or survived with the body unwound.
pub fn assert_unwound_or_aborted(out: &Output) {
    let o = stdout(out);
    assert!(o.contains(REACHED), "{o}\n{}", stderr(out));
    if aborted(&out.status) {
        return; // A clear abort is acceptable.
    }
    assert!(
        out.status.success() && o.contains(SURVIVED),
        "the drop must finish unwinding the body: status {:?}\nstdout:\n{o}\nstderr:\n{}",
        out.status,
        stderr(out)
    );
}

/// Prints `text` on the child's stdout at once (stdout is line-buffered, so
/// it survives the abort).
pub fn say(text: &str) {
    println!("{text}");
}
