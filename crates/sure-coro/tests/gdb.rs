//! gdb walks a backtrace from inside a coroutine back to its resumer.
//!
//! The test builds the `stress` example (debug), runs it under
//! `gdb -nx -batch` with a breakpoint in `stress::descend`, a function a
//! coroutine body calls, and checks that `bt` reaches
//! `stress::resume_catching`, the function that resumed the coroutine, and
//! `stress::main`. That walk crosses from the coroutine's stack to the
//! resumer's through the DWARF CFI of the entry trampoline (see
//! `sure-context/src/arch/`).
//!
//! The example is built the way this test was: in the same target
//! directory, for the same `--target` if one was given, and with the `asan`
//! feature when the inherited `RUSTFLAGS` ask for AddressSanitizer (as
//! `cargo xtask test`'s `asan` stage does), so under ASan gdb walks an ASan
//! build of the example.
//!
//! Without gdb on PATH, or under an emulator (`SURE_TEST_RUNNER`, set by
//! the cross stages of `cargo xtask test`), the test prints why and passes. Set
//! `SURE_REQUIRE_GDB=1` (as `cargo xtask test`'s `gdb` stage does) to make
//! a missing gdb a failure instead.

use std::env;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Set to anything but empty or `0` to fail rather than skip without gdb.
const REQUIRE_GDB: &str = "SURE_REQUIRE_GDB";

/// The example gdb runs, and the functions the test looks for in it.
const EXAMPLE: &str = "stress";
/// Called by a coroutine body: the breakpoint.
const IN_COROUTINE: &str = "stress::descend";
/// Called `resume` on that coroutine, on the main stack.
const RESUMER: &str = "stress::resume_catching";
/// The example's `main`, further down the main stack.
const MAIN: &str = "stress::main";

/// How long gdb may take before the test gives up on it.
const GDB_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn gdb_backtrace_from_a_coroutine_reaches_its_resumer_or_skips_without_gdb() {
    let runner = env::var("SURE_TEST_RUNNER").unwrap_or_default();
    if !runner.is_empty() {
        eprintln!(
            "skipped: the tests run under the emulator `{runner}`, and the host's gdb cannot \
             debug a program there; sure-context's backtrace tests check the trampoline's CFI \
             on this target with std::backtrace"
        );
        return;
    }
    let required = env::var_os(REQUIRE_GDB).is_some_and(|v| !v.is_empty() && v != "0");
    let Some(gdb) = find_on_path("gdb") else {
        assert!(
            !required,
            "{REQUIRE_GDB} is set but gdb was not found on PATH"
        );
        eprintln!("skipped: gdb not found on PATH (set {REQUIRE_GDB}=1 to fail instead)");
        return;
    };

    let binary = build_example(EXAMPLE);
    let output = run_gdb(
        &gdb,
        &[
            "-nx",
            "-batch",
            "-ex",
            &format!("break {IN_COROUTINE}"),
            "-ex",
            "run",
            "-ex",
            "bt",
        ],
        &binary,
    );
    // A compact backtrace for the log: frame number and function name.
    for frame in output.lines().filter(|line| line.starts_with('#')) {
        let (number, rest) = frame.split_once(' ').unwrap_or((frame, ""));
        let rest = rest.trim_start();
        let function = match rest.split_once(" in ") {
            Some((address, function)) if address.starts_with("0x") => function,
            _ => rest,
        };
        let end = match function.find([' ', '<', '(']) {
            Some(0) | None => function.len(),
            Some(end) => end,
        };
        println!("{number:<4}{}", &function[..end]);
    }

    if !required && output.contains("ptrace: Operation not permitted") {
        eprintln!("skipped: gdb may not trace processes here (ptrace not permitted)");
        return;
    }
    let frames: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with('#'))
        .collect();
    assert!(
        frames.first().is_some_and(|top| top.contains(IN_COROUTINE)),
        "gdb did not stop in {IN_COROUTINE}:\n{output}"
    );
    let position = |name: &str| {
        frames
            .iter()
            .position(|frame| frame.contains(&format!(" {name}")))
            .unwrap_or_else(|| panic!("the backtrace does not reach {name}:\n{output}"))
    };
    let (resumer, main) = (position(RESUMER), position(MAIN));
    assert!(
        0 < resumer && resumer < main,
        "frames out of order (resumer #{resumer}, main #{main}):\n{output}"
    );
    assert!(
        !output.contains("Backtrace stopped"),
        "gdb gave up on the backtrace:\n{output}"
    );
}

/// The workspace root: two levels above this crate.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/sure-coro has a workspace two levels up")
        .to_path_buf()
}

/// Builds example `name` of this crate in debug with the cargo that runs
/// the tests, as this test was built (see the module docs), and returns the
/// executable's path, as cargo reports it.
fn build_example(name: &str) -> PathBuf {
    let mut command = Command::new(env!("CARGO"));
    command.args([
        "build",
        "--package",
        env!("CARGO_PKG_NAME"),
        "--example",
        name,
        "--message-format=json-render-diagnostics",
    ]);
    let (target_dir, triple) = where_this_test_was_built();
    if let Some(dir) = target_dir {
        command.arg("--target-dir").arg(dir);
    }
    if let Some(triple) = &triple {
        command.args(["--target", triple]);
    }
    if asan_requested() {
        // The nested cargo inherits the sanitizer flags; the feature
        // announces the example's stack switches to ASan. `--target` (the
        // asan stage passes one) keeps the flags off build scripts.
        println!("built with AddressSanitizer: building {name} with it and the `asan` feature");
        command.args(["--features", "asan"]);
    }
    let output = command
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build --example {name} failed"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    const KEY: &str = "\"executable\":\"";
    stdout
        .lines()
        .filter(|line| line.contains("\"reason\":\"compiler-artifact\""))
        .filter_map(|line| {
            let start = line.find(KEY)? + KEY.len();
            let len = line[start..].find('"')?;
            Some(PathBuf::from(&line[start..start + len]))
        })
        .find(|path| path.file_stem().is_some_and(|stem| stem == name))
        .unwrap_or_else(|| panic!("cargo reported no executable for example {name}"))
}

/// Whether the `RUSTFLAGS` this test runs with (and the nested cargo
/// inherits) build with AddressSanitizer.
fn asan_requested() -> bool {
    ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"]
        .iter()
        .filter_map(env::var_os)
        .any(|flags| flags.to_string_lossy().contains("sanitizer=address"))
}

/// The target directory and `--target` triple this test executable was
/// built with, from its path: `<dir>/[<triple>/]<profile>/deps/<test>`,
/// where cargo marks `<dir>` (and `<dir>/<triple>`) with a `CACHEDIR.TAG`.
/// `None` for what the path does not tell.
fn where_this_test_was_built() -> (Option<PathBuf>, Option<String>) {
    let Ok(exe) = env::current_exe() else {
        return (None, None);
    };
    let Some(above_profile) = exe
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "deps"))
        .and_then(Path::parent)
        .and_then(Path::parent)
    else {
        return (None, None);
    };
    match above_profile.parent() {
        Some(root) if root.join("CACHEDIR.TAG").is_file() => (
            Some(root.to_path_buf()),
            above_profile
                .file_name()
                .map(|name| name.to_string_lossy().into_owned()),
        ),
        _ if above_profile.join("CACHEDIR.TAG").is_file() => {
            (Some(above_profile.to_path_buf()), None)
        }
        _ => (None, None),
    }
}

/// Runs `gdb args binary` and returns its stdout and stderr together; kills
/// it after [`GDB_TIMEOUT`].
fn run_gdb(gdb: &Path, args: &[&str], binary: &Path) -> String {
    let mut child = Command::new(gdb)
        .args(args)
        .arg(binary)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gdb starts");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    while child.try_wait().expect("waiting for gdb").is_none() {
        if start.elapsed() > GDB_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gdb did not finish within {GDB_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    let stdout = out.join().expect("reader");
    let stderr = err.join().expect("reader");
    format!("{stdout}{stderr}")
}

/// The first executable file called `program` in a PATH directory.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program).with_extension(env::consts::EXE_EXTENSION))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && is_executable(&meta))
        })
}

/// Whether a file may be run: its execute bits on Unix; any file on
/// Windows, where the extension says it.
fn is_executable(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}
