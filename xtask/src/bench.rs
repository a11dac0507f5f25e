//! `cargo xtask bench`: runs the criterion benchmarks of sure-bench one bench
//! target (criterion group) at a time, optionally counts instructions under
//! callgrind (`--instructions`), and then writes a report of everything found
//! on disk to `target/sure-bench/report.md` and `report.svg` (see `report`).

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;

use crate::chart;
use crate::instructions::{self, Outcome};
use crate::manifest;
use crate::process::{self, Cmd};
use crate::report::{self, Report};
use crate::report_data;
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

/// What the command line asked for: `[--quick] [--report-only]
/// [--instructions] [-- <criterion args>]`; anything else is an error, so a
/// typo is not silently ignored.
#[derive(Debug, Args)]
pub struct Options {
    /// Short run: 0.2 s warm-up, 0.5 s measurement, 10 samples per bench.
    #[arg(long)]
    quick: bool,
    /// Run no bench, only write the report from earlier results.
    #[arg(long, conflicts_with_all = ["quick", "criterion_args"])]
    report_only: bool,
    /// Also count instructions per operation with valgrind's callgrind.
    #[arg(long)]
    instructions: bool,
    /// Passed to criterion unchanged (e.g. a bench filter); only after `--`.
    #[arg(last = true, value_name = "CRITERION ARGS")]
    criterion_args: Vec<String>,
}

impl Options {
    /// The options as a command line, for the report.
    fn args(&self) -> Vec<String> {
        let flags = [
            (self.quick, "--quick"),
            (self.report_only, "--report-only"),
            (self.instructions, "--instructions"),
        ];
        let mut args: Vec<String> = flags
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, flag)| flag.to_owned())
            .collect();
        if !self.criterion_args.is_empty() {
            args.push("--".to_owned());
            args.extend(self.criterion_args.iter().cloned());
        }
        args
    }
}

/// The names of the `[[bench]]` targets of a manifest, in the order declared.
/// Line-based like `manifest`: a `name = "..."` key inside a `[[bench]]` table.
fn bench_targets(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bench = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if in_bench
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            names.push(value.trim().trim_matches('"').to_owned());
        }
    }
    names
}

/// The bench targets in the order they run: the report's groups, then the
/// memory bench, then any others in manifest order.
fn run_order(mut targets: Vec<String>) -> Vec<String> {
    let known: Vec<&str> = report::GROUPS
        .iter()
        .map(|(group, _)| *group)
        .chain([report::MEMORY_GROUP])
        .collect();
    targets.sort_by_key(|name| {
        known
            .iter()
            .position(|known| known == name)
            .unwrap_or(known.len())
    });
    targets
}

/// The cargo command that runs the bench target `bench` with `options`.
fn command(options: &Options, bench: &str) -> Cmd {
    let mut args = vec!["bench", "--package", PACKAGE, "--bench", bench, "--"];
    if options.quick {
        args.extend(QUICK_ARGS);
    }
    args.extend(options.criterion_args.iter().map(String::as_str));
    Cmd::cargo(args)
}

/// Runs the benchmarks, then writes the report. Fails if a bench or the
/// instruction counting failed, after writing the report of what there is.
pub fn run(options: &Options) -> ExitCode {
    let root = workspace::root();
    let target = report_data::target_dir(&root);
    let output = report_data::output_dir(&target);
    let mut ok = true;

    let run_started = (!options.report_only).then(SystemTime::now);
    let mut ran = Vec::new();
    if !options.report_only {
        let manifest = match workspace::read_manifest(&root, PACKAGE) {
            Ok(text) => text,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        };
        let benches = run_order(bench_targets(&manifest));
        if !manifest::declares_bench(&manifest) {
            println!("{PACKAGE} declares no [[bench]] target yet: nothing to run");
        }
        for (i, bench) in benches.iter().enumerate() {
            let command = command(options, bench);
            process::announce(&format!(
                "[{}/{}] bench group `{bench}`: {command}",
                i + 1,
                benches.len()
            ));
            let shown = command.to_string();
            let failure = command.run(&root).err().map(|err| {
                eprintln!("error: {err}");
                ok = false;
                // The report lists the command already: keep only the why.
                let prefix = format!("`{shown}` failed: ");
                err.strip_prefix(&prefix).unwrap_or(&err).to_owned()
            });
            ran.push((shown, failure));
        }
    }

    let mut note = None;
    if options.instructions {
        let (message, counted) = count_instructions(&root, &target, &output);
        note = message;
        ok &= counted;
    }

    let command = Cmd::cargo(
        ["xtask", "bench"]
            .into_iter()
            .map(str::to_owned)
            .chain(options.args()),
    );
    let report = gather(
        &root,
        &target,
        command.to_string(),
        ran,
        run_started,
        note.as_deref(),
    );
    if let Err(err) = write(&root, &output, &report) {
        eprintln!("error: {err}");
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Counts instructions per operation (`--instructions`), keeps them for the
/// report and prints them. Returns a note for the report about this run
/// (skipped, or what failed) and whether nothing failed; being skipped (no
/// valgrind, no example) is not a failure.
fn count_instructions(root: &Path, target: &Path, output: &Path) -> (Option<String>, bool) {
    match instructions::measure(root, target) {
        Ok(Outcome::Measured { counts, errors }) => {
            println!(
                "\ninstructions per operation:\n{}",
                instructions::table(&counts)
            );
            let mut problems = errors;
            if let Err(err) = instructions::save(output, &counts) {
                problems.push(err);
            }
            if problems.is_empty() {
                (None, true)
            } else {
                for problem in &problems {
                    eprintln!("error: {problem}");
                }
                let note = format!("failed in this run: {}", problems.join("; "));
                (Some(note), false)
            }
        }
        Ok(Outcome::Skipped(reason)) => {
            println!("instruction counts skipped: {reason}");
            (Some(format!("skipped in this run: {reason}")), true)
        }
        Err(err) => {
            eprintln!("error: {err}");
            (Some(format!("failed in this run: {err}")), false)
        }
    }
}

/// Collects everything the report shows.
fn gather(
    root: &Path,
    target: &Path,
    command: String,
    ran: Vec<(String, Option<String>)>,
    run_started: Option<SystemTime>,
    instructions_note: Option<&str>,
) -> Report {
    let output = report_data::output_dir(target);
    let (measurements, mut warnings) = report_data::load_criterion(target);
    let (paired, paired_warnings) = report_data::load_paired(&output);
    warnings.extend(paired_warnings);
    let html = target.join("criterion").join("report").join("index.html");
    Report {
        date: SystemTime::now(),
        machine: report_data::machine(),
        command,
        ran,
        commit: report_data::git_commit(root),
        run_started,
        measurements,
        paired,
        memory: report_data::load_memory(&output),
        instructions: instructions::section(&output, instructions_note),
        html_report: (relative(root, &html), html.is_file()),
        chart: relative(root, &output.join("report.svg")),
        warnings,
    }
}

/// Writes `report.md` and `report.svg` into `output` and prints the Markdown.
fn write(root: &Path, output: &Path, report: &Report) -> Result<(), String> {
    let markdown = report::markdown(report);
    let chart = chart::chart(
        "sure ÷ its peer (corosensei; stacker for grow), time per bench",
        &report::bars(&report.measurements),
    );
    let md_path = output.join("report.md");
    let svg_path = output.join("report.svg");
    fs::create_dir_all(output)
        .and_then(|()| fs::write(&md_path, &markdown))
        .and_then(|()| fs::write(&svg_path, chart))
        .map_err(|err| format!("cannot write the report to {}: {err}", output.display()))?;
    println!("\n{markdown}");
    process::announce(&format!(
        "report written to {} and {}",
        relative(root, &md_path),
        relative(root, &svg_path)
    ));
    Ok(())
}

/// `path` relative to `root` when inside it, for shorter messages.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{Cli, Task};
    use clap::Parser;

    /// Parses `cargo xtask bench <args>`.
    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        let cli = Cli::try_parse_from(["cargo xtask", "bench"].iter().chain(args))?;
        match cli.task {
            Some(Task::Bench(options)) => Ok(options),
            other => panic!("parsed as {other:?}"),
        }
    }

    /// `--quick` and pass-through arguments end up where criterion reads them.
    #[test]
    fn builds_the_cargo_command() {
        let options = parse(&["--quick", "--", "sure", "--noplot"]).unwrap();
        assert_eq!(
            command(&options, "switch").to_string(),
            "cargo bench --package sure-bench --bench switch -- --warm-up-time 0.2 \
             --measurement-time 0.5 --sample-size 10 sure --noplot"
        );
        let plain = parse(&[]).unwrap();
        assert_eq!(
            command(&plain, "round_trip").to_string(),
            "cargo bench --package sure-bench --bench round_trip --"
        );
    }

    /// Unknown options before `--` are errors, after `--` they are criterion's;
    /// `--report-only` takes nothing meant for criterion.
    #[test]
    fn rejects_unknown_options() {
        assert!(parse(&["--quik"]).is_err());
        assert!(parse(&["--", "--quik"]).is_ok());
        let both = parse(&["--report-only", "--instructions"]).unwrap();
        assert!(both.report_only && both.instructions && !both.quick);
        assert!(parse(&["--report-only", "--quick"]).is_err());
        assert!(parse(&["--report-only", "--", "x"]).is_err());
        // Criterion's arguments need the `--`.
        assert!(parse(&["sure"]).is_err());
    }

    /// The command line the report shows is the one that was parsed.
    #[test]
    fn shows_the_options_as_arguments() {
        let line = ["--quick", "--instructions", "--", "sure", "--noplot"];
        assert_eq!(parse(&line).unwrap().args(), line);
        assert_eq!(parse(&["--report-only"]).unwrap().args(), ["--report-only"]);
        assert!(parse(&[]).unwrap().args().is_empty());
    }

    /// `[[bench]]` names in manifest order, other tables' names ignored, then
    /// put in the fixed run order with unknown benches last.
    #[test]
    fn finds_and_orders_bench_targets() {
        let manifest = r#"
[package]
name = "sure-bench"

[[bench]]
name = "memory"
harness = false

[[bench]]   # comment
name = "zzz"

[[bench]]
harness = false
name = "round_trip"

[[example]]
name = "instructions"

[[bench]]
name = "switch"
"#;
        let targets = bench_targets(manifest);
        assert_eq!(targets, ["memory", "zzz", "round_trip", "switch"]);
        assert_eq!(
            run_order(targets),
            ["switch", "round_trip", "memory", "zzz"]
        );
    }
}
