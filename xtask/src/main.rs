//! `cargo xtask`: the project's automation, in Rust so that it runs anywhere
//! the pinned toolchain does, with no shell scripts.
//!
//! This file only parses the command line (with clap) and dispatches on the
//! task; each task lives in its own module.

mod bench;
mod chart;
mod cross;
mod instructions;
mod manifest;
mod process;
mod report;
mod report_data;

mod test;
mod tools;
mod workspace;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// The command line: one task, or none for the usage text.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "The project's automation: CI checks and benchmarks."
)]
pub struct Cli {
    /// The task to run; without one, the usage is printed.
    #[command(subcommand)]
    task: Option<Task>,
}

/// The tasks.
#[derive(Debug, Subcommand)]
pub enum Task {
    /// Run the CI checks: fmt, clippy, tests, examples, feature builds,
    /// sanitizers, and the tests on aarch64 and riscv64 under qemu.
    Test(test::Options),
    /// Run the criterion benchmarks of sure-bench, one group at a time, then
    /// write target/sure-bench/report.md and report.svg.
    Bench(bench::Options),
}

/// Dispatches to the task named by the first argument. A command line clap
/// does not understand exits with its usage error code, 2 (as bash does).
fn main() -> ExitCode {
    match Cli::parse().task {
        Some(Task::Test(options)) => test::run(&options),
        Some(Task::Bench(options)) => bench::run(&options),
        None => {
            // No task: the usage, so the available tasks are one command away.
            let _ = Cli::command().print_help();
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks of the derived command line.
    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `test` takes only `--only`; unknown tasks are errors; no task is allowed.
    #[test]
    fn parses_tasks() {
        let parse = |args: &[&str]| Cli::try_parse_from(["cargo xtask"].iter().chain(args));
        assert!(matches!(parse(&["test"]).unwrap().task, Some(Task::Test(o)) if o.only.is_empty()));
        assert!(matches!(
            parse(&["test", "--only", "cross", "--only", "fmt"]).unwrap().task,
            Some(Task::Test(o)) if o.only == ["cross", "fmt"]
        ));
        assert!(parse(&["test", "x"]).is_err());
        assert!(parse(&["tset"]).is_err());
        assert!(parse(&[]).unwrap().task.is_none());
    }
}
