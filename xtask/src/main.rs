//! `cargo xtask`: the project's automation, in plain std Rust so that it runs
//! anywhere the pinned toolchain does, with no shell scripts and no crates to fetch.
//!
//! This file only dispatches on the first argument; each task lives in its own module.

mod bench;
mod instructions;
mod manifest;
mod process;
mod report;
mod report_data;
mod report_json;
mod svg;
mod test;
mod tools;
mod workspace;

use std::env;
use std::process::ExitCode;

/// Printed for no arguments, `help`, and (on stderr) for anything unknown, so
/// the available tasks are always one command away.
const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test                       run the CI checks: fmt, clippy, tests, examples, feature builds
  bench [--quick] [--report-only] [--instructions] [-- ARGS]
                             run the criterion benchmarks of sure-bench, one group at a time,
                             then write target/sure-bench/report.md and report.svg;
                             ARGS go to criterion
                             (--quick: short warm-up and measurement, few samples;
                              --report-only: run nothing, report earlier results;
                              --instructions: also count instructions per operation
                              with valgrind's callgrind)
";

/// Exit code for a command line we do not understand, following the usual
/// convention (as in clap and bash) that 2 means \"usage error\".
const USAGE_ERROR: u8 = 2;

/// Dispatches to the task named by the first argument.
fn main() -> ExitCode {
    // Lossy conversion rather than `env::args`, which would panic on a non-UTF-8 argument.
    let args: Vec<String> = env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    match args.first().map(String::as_str) {
        Some("test") if args.len() == 1 => test::run(),
        Some("test") => usage_error("`test` takes no arguments"),
        Some("bench") => bench::run(&args[1..]),
        None | Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("unknown task `{other}`")),
    }
}

/// Reports a bad command line with the usage text and returns the usage-error exit code.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n");
    eprint!("{USAGE}");
    ExitCode::from(USAGE_ERROR)
}
