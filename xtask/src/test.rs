//! `cargo xtask test`: the checks CI runs, as an ordered list of stages.
//!
//! To add a stage, add one entry to [`stages`], e.g.
//! `Stage::new("memcheck", Cmd::cargo([...])).skip_unless(tools::on_path("valgrind"), "valgrind not found on PATH")`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cross;
use crate::manifest;
use crate::process::{self, Cmd};
use crate::tools;
use crate::workspace;

/// The command line of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Run only the stages whose name starts with this (e.g. `cross`,
    /// `asan`); may be given more than once. CI runs them all.
    #[arg(long, value_name = "STAGE")]
    pub only: Vec<String>,
}

/// One step of `cargo xtask test`: data only, so the list in [`stages`] reads
/// like the CI checklist and each later stage is one small entry.
struct Stage {
    /// Short label for the summary.
    name: String,
    /// Commands run in order; all of them run, and the stage fails if any does.
    commands: Vec<Cmd>,
    /// Why this stage cannot run in this checkout or on this machine, if it
    /// cannot; it is then reported as skipped rather than failed.
    skip_reason: Option<String>,
    /// Whether the stage still runs after an earlier stage failed. Only for
    /// stages cheap enough that their extra verdict is worth the wait (a lint
    /// failure should not hide test results); slow ones are left out.
    runs_after_failure: bool,
    /// Printed before the stage's commands: what it leaves out, and why.
    note: Option<String>,
    /// Build directories removed when the stage ends under CI (`CI` set),
    /// which runs each stage once: each cross target's build is about 2 GB,
    /// and CI's disk is shared.
    freed_under_ci: Vec<PathBuf>,
}

impl Stage {
    /// A stage running one command, that stops once anything before it failed.
    fn new(name: impl Into<String>, command: Cmd) -> Self {
        Self::with_commands(name, vec![command])
    }

    /// A stage running several commands (e.g. one per example).
    fn with_commands(name: impl Into<String>, commands: Vec<Cmd>) -> Self {
        Stage {
            name: name.into(),
            commands,
            skip_reason: None,
            runs_after_failure: false,
            note: None,
            freed_under_ci: Vec::new(),
        }
    }

    /// Removes `dirs` when the stage ends, under CI (see the field).
    fn frees_under_ci(mut self, dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        self.freed_under_ci.extend(dirs);
        self
    }

    /// A line the stage prints before its commands run.
    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Marks the stage as skipped with `reason` unless `condition` holds.
    fn skip_unless(mut self, condition: bool, reason: impl Into<String>) -> Self {
        if !condition && self.skip_reason.is_none() {
            self.skip_reason = Some(reason.into());
        }
        self
    }

    /// Lets the stage run even after an earlier stage failed (see the field).
    fn runs_after_failure(mut self) -> Self {
        self.runs_after_failure = true;
        self
    }

    /// The line printed before the stage: the exact command, or the stage's
    /// name and command count when it runs several.
    fn title(&self) -> String {
        match self.commands.as_slice() {
            [only] => only.to_string(),
            many => format!("{} ({} commands)", self.name, many.len()),
        }
    }
}

/// The stages, in the order they run. Cheap static checks come first so they fail fast.
fn stages(root: &Path) -> Result<Vec<Stage>, String> {
    Ok(vec![
        Stage::new("fmt", Cmd::cargo(["fmt", "--all", "--check"])).runs_after_failure(),
        Stage::new(
            "clippy",
            Cmd::cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )
        .runs_after_failure(),
        doc_stage(),
        Stage::new("test", Cmd::cargo(["test", "--workspace"])).runs_after_failure(),
        release_test_stage(),
        examples_stage(root)?,
        feature_stage(root, "sure-context", "fp-control")?,
        panic_abort_stage(),
        memcheck_stage(),
        gdb_stage(),
        asan_stage(),
        tsan_stage(root),
        cross_stage(root, &cross::TARGETS[0])?,
        cross_stage(root, &cross::TARGETS[1])?,
        windows_stage(root)?,
    ])
}

/// Builds the documentation, private items included, and fails on any
/// rustdoc warning: a broken intra-doc link is a wrong pointer for the
/// reader, and the private items' docs are the maintainers' map.
fn doc_stage() -> Stage {
    let command = Cmd::cargo([
        "doc",
        "--workspace",
        "--no-deps",
        "--document-private-items",
    ])
    .env("RUSTDOCFLAGS", "-D warnings");
    Stage::new("doc", command).runs_after_failure()
}

/// Tests the switch and the coroutines optimised, where the inline switch
/// meets the register allocator: a clobber left out of a switch's `asm!`
/// shows only once a value lives in a register across it.
fn release_test_stage() -> Stage {
    let command = Cmd::cargo([
        "test",
        "--release",
        "--package",
        "sure-context",
        "--package",
        "sure-coro",
    ]);
    Stage::new("test --release", command).runs_after_failure()
}

/// Runs every example of every workspace crate and checks it exits 0: examples
/// are documentation, and an example that no longer works is a bug.
fn examples_stage(root: &Path) -> Result<Stage, String> {
    let examples = workspace::examples(root)?;
    let commands = examples
        .iter()
        .map(|ex| {
            Cmd::cargo([
                "run",
                "--quiet",
                "--package",
                &ex.package,
                "--example",
                &ex.name,
            ])
        })
        .collect::<Vec<_>>();
    let found = !commands.is_empty();
    Ok(Stage::with_commands("examples", commands)
        .skip_unless(found, "no examples found under crates/*/examples/*.rs"))
}

/// Tests `package` with one optional cargo feature enabled, so code behind the
/// feature is built and tested too; skipped while the crate does not declare it.
fn feature_stage(root: &Path, package: &str, feature: &str) -> Result<Stage, String> {
    let declared = manifest::declares_feature(&workspace::read_manifest(root, package)?, feature);
    let command = Cmd::cargo(["test", "-p", package, "--features", feature]);
    let manifest = workspace::manifest_path(root, package);
    let manifest = manifest.strip_prefix(root).unwrap_or(&manifest);
    Ok(
        Stage::new(format!("{package} --features {feature}"), command).skip_unless(
            declared,
            format!("{} declares no feature `{feature}`", manifest.display()),
        ),
    )
}

/// Runs the `abandoned` example built with `panic = "abort"`, where
/// dropping a suspended coroutine must leak its stack instead of unwinding
/// it (the example checks which happened), in a target directory of its
/// own so the other stages' builds stay as they are.
fn panic_abort_stage() -> Stage {
    let target = env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let target_dir = Path::new(&target).join("panic-abort");
    let command = Cmd::cargo([
        "run",
        "--quiet",
        "--package",
        "sure-coro",
        "--example",
        "abandoned",
        "--target-dir",
        &*target_dir.to_string_lossy(),
    ])
    .env("CARGO_PROFILE_DEV_PANIC", "abort");
    Stage::new("panic-abort", command)
}

/// Runs the `stress` example (debug build) under Valgrind's memcheck; fails on
/// any memory error or definitely lost block. The stacks register themselves
/// with Valgrind (sure-stack's `valgrind` module), so coroutine switches are
/// not mistaken for stack frames.
fn memcheck_stage() -> Stage {
    // Relative to the workspace root, where the commands run; honours
    // CARGO_TARGET_DIR (not a target-dir set in a cargo config file).
    let target = env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let binary = Path::new(&target).join("debug/examples/stress");
    Stage::with_commands(
        "memcheck",
        vec![
            Cmd::cargo(["build", "--package", "sure-coro", "--example", "stress"]),
            Cmd::new(
                "valgrind",
                [
                    "--error-exitcode=1",
                    "--leak-check=full",
                    "--errors-for-leak-kinds=definite",
                    "--show-leak-kinds=definite",
                    &binary.to_string_lossy(),
                ],
            ),
        ],
    )
    .skip_unless(tools::on_path("valgrind"), "valgrind not found on PATH")
}

/// Runs sure-coro's gdb test, which checks that gdb's backtrace from inside a
/// coroutine reaches its resumer; the variable makes a missing gdb fail it
/// rather than skip.
fn gdb_stage() -> Stage {
    let command = Cmd::cargo([
        "test",
        "--package",
        "sure-coro",
        "--test",
        "gdb",
        "--",
        "--nocapture",
    ])
    .env("SURE_REQUIRE_GDB", "1");
    Stage::new("gdb", command).skip_unless(tools::on_path("gdb"), "gdb not found on PATH")
}

/// Runs the sure-context and sure-coro tests (doc tests included) built
/// with AddressSanitizer and the `asan` features, which announce every
/// switch to it; any ASan report fails a test. Every test runs: those that
/// measure stacks read the stack pointer, not a local's address, and the
/// gdb test builds its example with ASan too. Needs nightly for
/// `-Zsanitizer`, through the rustup `cargo` on PATH (`$CARGO` is the pinned
/// toolchain's), and builds in its own target directory.
///
/// ASan options: no leak check (a test forgets a coroutine on purpose, and
/// LSan does not scan suspended coroutine stacks); and ASan's SIGSEGV
/// handler and per-thread alternate signal stacks off, since the
/// stack-overflow tests check how a process dies and which threads have an
/// alternate stack.
fn asan_stage() -> Stage {
    let target = env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let target_dir = Path::new(&target).join("asan");
    let args = vec![
        "+nightly",
        "test",
        "--target-dir",
        &*target_dir.to_string_lossy(),
        "--package",
        "sure-context",
        "--package",
        "sure-coro",
        "--features",
        "sure-coro/asan,sure-context/asan",
        // Explicit, so that the flags skip build scripts and proc macros.
        "--target",
        "x86_64-unknown-linux-gnu",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    let command = Cmd::new("cargo", args)
        .env("RUSTFLAGS", "-Zsanitizer=address")
        .env("RUSTDOCFLAGS", "-Zsanitizer=address")
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=0:handle_segv=0:use_sigaltstack=0",
        );
    Stage::new("asan", command).skip_unless(
        cfg!(all(target_arch = "x86_64", target_os = "linux")) && tools::nightly_installed(),
        "needs a nightly toolchain (rustup toolchain install nightly) on x86-64 Linux",
    )
}

/// The multi-threaded tests (coroutines on several threads, the per-thread
/// pools, stacks sent between threads) built with ThreadSanitizer, and
/// sure-coro with the `tsan` feature, which makes every context a TSan
/// fiber; any TSan report fails a test. Needs nightly for `-Zsanitizer`,
/// like the asan stage, and builds in its own target directory.
///
/// That nightly has no `rust-src`, so std is not instrumented (no
/// `-Zbuild-std`), hence `-Cunsafe-allow-abi-mismatch=sanitizer`, and hence
/// `xtask/tsan-suppressions.txt`: it silences the reports TSan makes about
/// std's own code, whose synchronisation it cannot see, each entry saying
/// which; it names no code of sure's.
///
/// sure-stack's `map_limit` and `no_leak` tests are left out: they are
/// single-threaded and measure the process's memory mappings, which TSan's
/// own shadow mappings change (`map_limit` exhausts them, and TSan then
/// cannot map its own memory). TSan options: its SIGSEGV handler off, as in
/// the asan stage, since `memory`'s guard-page test checks how a process
/// dies.
fn tsan_stage(root: &Path) -> Stage {
    let target = env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let target_dir = Path::new(&target).join("tsan");
    let target_dir = target_dir.to_string_lossy();
    // Absolute: test binaries run in their package's directory.
    let suppressions = root.join("xtask/tsan-suppressions.txt");
    let options = format!("suppressions={}:handle_segv=0", suppressions.display());
    let flags = "-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer";
    let command = |tests: &[&str]| {
        let mut args = vec![
            "+nightly",
            "test",
            "--no-fail-fast",
            "--target-dir",
            &*target_dir,
            // Explicit, so that the flags skip build scripts and proc macros.
            "--target",
            "x86_64-unknown-linux-gnu",
        ];
        args.extend_from_slice(tests);
        Cmd::new("cargo", args)
            .env("RUSTFLAGS", flags)
            .env("RUSTDOCFLAGS", flags)
            .env("TSAN_OPTIONS", &options)
    };
    let commands = vec![
        command(&[
            "--package",
            "sure-coro",
            "--features",
            "sure-coro/tsan",
            "--test",
            "threads",
            "--test",
            "pool",
            "--test",
            "sized_pools",
        ]),
        command(&[
            "--package",
            "sure-stack",
            "--lib",
            "--test",
            "memory",
            "--test",
            "pool",
        ]),
    ];
    Stage::with_commands("tsan", commands).skip_unless(
        cfg!(all(target_arch = "x86_64", target_os = "linux")) && tools::nightly_installed(),
        "needs a nightly toolchain (rustup toolchain install nightly) on x86-64 Linux",
    )
}

/// sure-coro's gdb test and sure-stack's mapping-limit test, which skip
/// under an emulator and print why.
const GDB_TEST: &str = "gdb_backtrace_from_a_coroutine_reaches_its_resumer_or_skips_without_gdb";
const MAP_LIMIT_TEST: &str = "allocating_stacks_until_the_mapping_limit_fails_cleanly_and_recovers";

/// The workspace on an emulated target (see `cross.rs`): every test of the
/// library and bench crates (unit, integration and doc tests), the
/// sure-context tests again with `fp-control`, the benchmarks built (not
/// run: emulated timings mean nothing), and every example run. xtask, a
/// host tool, is left out; so are the native-only stages (panic-abort,
/// memcheck, gdb and the sanitizers), and the tests print why they skip
/// what cannot run under an emulator.
fn cross_stage(root: &Path, target: &cross::Target) -> Result<Stage, String> {
    // The tests that say why they skip under an emulator run on their own,
    // with their output shown, so that the log carries the reasons.
    let mut commands = vec![
        target.cargo(&[
            "test",
            "--no-fail-fast",
            "--workspace",
            "--exclude",
            "xtask",
            "--",
            "--skip",
            GDB_TEST,
            "--skip",
            MAP_LIMIT_TEST,
        ]),
        target.cargo(&[
            "test",
            "-p",
            "sure-coro",
            "--test",
            "gdb",
            "--",
            "--nocapture",
        ]),
        target.cargo(&[
            "test",
            "-p",
            "sure-stack",
            "--test",
            "map_limit",
            "--",
            "--nocapture",
        ]),
        target.cargo(&["test", "-p", "sure-context", "--features", "fp-control"]),
        target.cargo(&["build", "-p", "sure-bench", "--benches"]),
    ];
    for example in workspace::examples(root)? {
        commands.push(target.cargo(&[
            "run",
            "--quiet",
            "--package",
            &example.package,
            "--example",
            &example.name,
        ]));
    }
    let missing = target.missing();
    let reason = missing.clone().unwrap_or_default();
    let stage = Stage::with_commands(format!("cross {}", target.arch), commands)
        .skip_unless(missing.is_none(), reason)
        .frees_under_ci([cross::build_dir(target.triple)]);
    Ok(match target.property_cases {
        Some(cases) => stage.note(format!(
            "under qemu sure-coro's property test runs {cases} of its random programs, not the \
             8,000 it runs natively and under wine: each takes qemu about 15 ms"
        )),
        None => stage,
    })
}

/// x86-64 Windows under wine (see `cross.rs`): the emulated stage's
/// commands, and `cargo check` of the library crates for the
/// `pc-windows-gnu` and `pc-windows-msvc` targets (no linker needed; the
/// bench crate's peers compile C with their build scripts, which needs one).
fn windows_stage(root: &Path) -> Result<Stage, String> {
    let mut stage = cross_stage(root, &cross::WINDOWS)?
        .frees_under_ci(cross::WINDOWS_CHECKED.map(cross::build_dir));
    stage.commands.push(cross::cargo_for(
        &cross::WINDOWS_CHECKED,
        &[
            "check",
            "--all-targets",
            "-p",
            "sure-stack",
            "-p",
            "sure-context",
            "-p",
            "sure-coro",
        ],
    ));
    Ok(stage.note(
        "on Windows the tests of Linux's /proc (sure-stack's map_limit and no_leak, sure-coro's \
         sized_pools) build to nothing, and two overflow tests leave out what needs Linux's \
         signals or pthreads",
    ))
}

/// What happened to a stage, for the summary.
enum Outcome {
    /// All commands exited 0.
    Passed(Duration),
    /// At least one command failed; the messages say which and how.
    Failed(Duration, Vec<String>),
    /// The stage could not run here; the reason says why.
    Skipped(String),
    /// Not attempted because an earlier stage failed and this one is not cheap.
    NotRun,
}

/// Runs all stages, prints a summary, and exits non-zero if any stage failed.
pub fn run(options: &Options) -> ExitCode {
    let root = workspace::root();
    let all = match stages(&root) {
        Ok(stages) => stages,
        Err(err) => {
            eprintln!("error: cannot set up the test stages: {err}");
            return ExitCode::FAILURE;
        }
    };
    let names = all
        .iter()
        .map(|stage| stage.name.clone())
        .collect::<Vec<_>>();
    let stages = all
        .into_iter()
        .filter(|stage| {
            options.only.is_empty() || options.only.iter().any(|only| stage.name.starts_with(only))
        })
        .collect::<Vec<_>>();
    if stages.is_empty() {
        eprintln!(
            "error: no stage's name starts with {}; the stages are: {}",
            options.only.join(" or "),
            names.join(", ")
        );
        return ExitCode::FAILURE;
    }
    println!("workspace: {}", root.display());
    println!("cargo: {}", process::cargo_program().to_string_lossy());

    let total = stages.len();
    let mut outcomes = Vec::with_capacity(total);
    let mut any_failed = false;
    for (index, stage) in stages.iter().enumerate() {
        // A skipped stage costs nothing, so its reason is reported even after a failure.
        let outcome = if any_failed && !stage.runs_after_failure && stage.skip_reason.is_none() {
            Outcome::NotRun
        } else {
            process::announce(&format!("[{}/{total}] {}", index + 1, stage.title()));
            run_stage(stage, &root)
        };
        any_failed |= matches!(outcome, Outcome::Failed(..));
        outcomes.push(outcome);
    }
    print_summary(&stages, &outcomes);
    if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one stage's commands (or reports its skip reason), timing it.
fn run_stage(stage: &Stage, root: &Path) -> Outcome {
    if let Some(reason) = &stage.skip_reason {
        println!("skipped: {reason}");
        return Outcome::Skipped(reason.clone());
    }
    if let Some(note) = &stage.note {
        println!("note: {note}");
    }
    let start = Instant::now();
    let mut failures = Vec::new();
    for command in &stage.commands {
        if stage.commands.len() > 1 {
            println!("--> {command}");
        }
        if let Err(err) = command.run(root) {
            eprintln!("error: {err}");
            failures.push(err);
        }
    }
    let elapsed = start.elapsed();
    if env::var_os("CI").is_some_and(|ci| !ci.is_empty()) {
        free(&stage.freed_under_ci, root);
    }
    if failures.is_empty() {
        Outcome::Passed(elapsed)
    } else {
        Outcome::Failed(elapsed, failures)
    }
}

/// Removes a stage's build directories (relative ones from `root`), saying
/// so; one that cannot be removed is only a warning.
fn free(dirs: &[PathBuf], root: &Path) {
    for dir in dirs {
        let dir = root.join(dir);
        if !dir.exists() {
            continue;
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => println!("freed {} (CI: the disk is shared)", dir.display()),
            Err(err) => eprintln!("warning: could not remove {}: {err}", dir.display()),
        }
    }
}

/// Prints one line per stage, then the overall verdict naming the failed
/// stages, so the end of a long CI log says what went wrong.
fn print_summary(stages: &[Stage], outcomes: &[Outcome]) {
    process::announce("summary");
    let total = stages.len();
    for (index, (stage, outcome)) in stages.iter().zip(outcomes).enumerate() {
        let number = format!("[{}/{total}]", index + 1);
        let name = &stage.name;
        let (status, time, note) = match outcome {
            Outcome::Passed(t) => ("ok", secs(*t), String::new()),
            Outcome::Failed(t, _) => ("FAILED", secs(*t), String::new()),
            Outcome::Skipped(why) => ("skipped", String::new(), format!(": {why}")),
            Outcome::NotRun => (
                "not run",
                String::new(),
                " (an earlier stage failed)".into(),
            ),
        };
        println!("  {number} {status:<8}{time:>7}  {name}{note}");
        if let Outcome::Failed(_, errors) = outcome {
            for error in errors {
                println!("        {error}");
            }
        }
    }
    let failed: Vec<&str> = stages
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| matches!(outcome, Outcome::Failed(..)))
        .map(|(stage, _)| stage.name.as_str())
        .collect();
    if failed.is_empty() {
        process::announce("all stages passed");
    } else {
        process::announce(&format!("FAILED: {}", failed.join(", ")));
    }
}

/// A duration as seconds with one decimal, e.g. `12.3s`.
fn secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
