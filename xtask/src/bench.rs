//! `cargo xtask bench`: runs the criterion benchmarks of sure-bench.
//!
//! Kept as parse → command → run so that writing a report after the run (a
//! later change) slots in at the end of [`run`].

use std::process::ExitCode;

use crate::manifest;
use crate::process::{self, Cmd};
use crate::workspace;

/// The package holding all benchmarks.
const PACKAGE: &str = "sure-bench";

/// Criterion options for `--quick`: a short warm-up and measurement with few
/// samples, to see in seconds that the benches run and roughly how fast.
/// Preferred over criterion 0.7's own `--quick`, which skips the warm-up
/// entirely (so first-touch page faults of fresh coroutine stacks would land
/// in the measurement) and cannot be combined with `--sample-size`.
const QUICK_ARGS: [&str; 6] = [
    "--warm-up-time",
    "0.2",
    "--measurement-time",
    "0.5",
    "--sample-size",
    "10",
];

/// Exit code for a command line we do not understand (as in `main`).
const USAGE_ERROR: u8 = 2;

/// What the command line asked for.
struct Options {
    /// `--quick`: pass [`QUICK_ARGS`] to criterion.
    quick: bool,
    /// Everything after `--`, passed to criterion unchanged (e.g. a bench filter).
    criterion_args: Vec<String>,
}

/// Parses `[--quick] [-- <criterion args>]`, rejecting anything else so a
/// typo is not silently ignored.
fn parse(args: &[String]) -> Result<Options, String> {
    let (ours, theirs) = match args.iter().position(|arg| arg == "--") {
        Some(split) => (&args[..split], &args[split + 1..]),
        None => (args, &[][..]),
    };
    let mut options = Options {
        quick: false,
        criterion_args: theirs.to_vec(),
    };
    for arg in ours {
        match arg.as_str() {
            "--quick" => options.quick = true,
            other => {
                return Err(format!(
                    "unknown bench option `{other}` (criterion options go after `--`)"
                ));
            }
        }
    }
    Ok(options)
}

/// The cargo command for `options`. `--bench '*'` selects only the bench
/// targets: plain `cargo bench` also runs the library's libtest harness, which
/// rejects criterion's options.
fn command(options: &Options) -> Cmd {
    let mut args = vec!["bench", "--package", PACKAGE, "--bench", "*", "--"];
    if options.quick {
        args.extend(QUICK_ARGS);
    }
    args.extend(options.criterion_args.iter().map(String::as_str));
    Cmd::cargo(args)
}

/// Runs the benchmarks; succeeds without running anything while sure-bench
/// has no bench targets yet (cargo would otherwise error on `--bench '*'`).
pub fn run(args: &[String]) -> ExitCode {
    let options = match parse(args) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("error: {err}\nusage: cargo xtask bench [--quick] [-- <criterion args>]");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let root = workspace::root();
    match workspace::read_manifest(&root, PACKAGE) {
        Ok(text) if manifest::declares_bench(&text) => {}
        Ok(_) => {
            println!("{PACKAGE} declares no [[bench]] target yet: nothing to run");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    }
    let command = command(&options);
    process::announce(&command.to_string());
    match command.run(&root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns string literals into the owned arguments `parse` takes.
    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// `--quick` and pass-through arguments end up where criterion reads them.
    #[test]
    fn builds_the_cargo_command() {
        let options = parse(&args(&["--quick", "--", "switch", "--noplot"])).unwrap();
        assert_eq!(
            command(&options).to_string(),
            "cargo bench --package sure-bench --bench '*' -- --warm-up-time 0.2 \
             --measurement-time 0.5 --sample-size 10 switch --noplot"
        );
        let plain = parse(&[]).unwrap();
        assert_eq!(
            command(&plain).to_string(),
            "cargo bench --package sure-bench --bench '*' --"
        );
    }

    /// Unknown options before `--` are errors, after `--` they are criterion's.
    #[test]
    fn rejects_unknown_options() {
        assert!(parse(&args(&["--quik"])).is_err());
        assert!(parse(&args(&["--", "--quik"])).is_ok());
    }
}
