//! `cargo xtask bench --instructions`: instructions per operation, counted by
//! callgrind, for sure and corosensei. Unlike times, instruction counts do
//! not depend on the machine's load, so they show small changes reliably.
//!
//! Each case of sure-bench's `instructions` example runs twice, for
//! [`ITERATIONS`]`[0]` and [`ITERATIONS`]`[1]` iterations; the difference of
//! the two totals divided by the difference of the iteration counts is the
//! cost of one operation, without the program's start-up and set-up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::process::{self, Cmd};
use crate::report::format_ratio;
use crate::report_data;

/// The example that runs one case: `instructions <case> <iterations>`.
const EXAMPLE: &str = "instructions";

/// The package holding the example.
const PACKAGE: &str = "sure-bench";

/// The cases the example understands, in the order they are run.
pub const CASES: [&str; 12] = [
    "sure-round-trip",
    "corosensei-round-trip",
    "sure-create",
    "corosensei-create-reused",
    "corosensei-create-fresh",
    "sure-create-returning",
    "corosensei-create-returning",
    "sure-create-sized",
    "sure-create-scoped",
    "sure-create-counting",
    "sure-cancel",
    "corosensei-cancel",
];

/// The comparisons in the report: a sure case and the case it is compared
/// with (corosensei's, or sure's default path for the paths beside it).
const COMPARISONS: [(&str, &str); 7] = [
    ("sure-round-trip", "corosensei-round-trip"),
    ("sure-create", "corosensei-create-reused"),
    ("sure-create", "corosensei-create-fresh"),
    ("sure-create-returning", "corosensei-create-returning"),
    ("sure-create-sized", "sure-create"),
    ("sure-create-scoped", "sure-create-counting"),
    ("sure-cancel", "corosensei-cancel"),
];

/// The two iteration counts each case runs with.
pub const ITERATIONS: [u64; 2] = [10_000, 110_000];

/// The file the counts are kept in under `target/sure-bench`, so that a
/// later report can show them without measuring again.
const FILE: &str = "instructions.json";

/// The layout of [`FILE`].
#[derive(Debug, Serialize, Deserialize)]
struct File {
    /// When the counts were measured, in seconds since the Unix epoch.
    #[serde(default)]
    measured_unix: u64,
    /// The commit they were measured at.
    #[serde(default = "unknown")]
    commit: String,
    /// The two iteration counts (see [`ITERATIONS`]), for whoever reads the file.
    #[serde(default)]
    iterations: Vec<u64>,
    /// Instructions per operation by case; `null` (not a number) is skipped.
    per_op: BTreeMap<String, Option<f64>>,
}

/// The commit of a file that does not name one.
fn unknown() -> String {
    "unknown".to_owned()
}

/// Instructions per operation, as measured at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    /// Case name and instructions per operation, for the cases that worked.
    pub per_op: Vec<(String, f64)>,
    /// When they were measured.
    pub measured: SystemTime,
    /// The commit they were measured at (see `report_data::git_commit`).
    pub commit: String,
}

/// What `--instructions` did.
pub enum Outcome {
    /// Counted (some cases may have failed: see the errors).
    Measured {
        /// The counts of the cases that worked.
        counts: Counts,
        /// Why the other cases failed.
        errors: Vec<String>,
    },
    /// Not counted, for the given reason (no valgrind, no example yet).
    Skipped(String),
}

/// Builds the example and counts the instructions of every case, or says why
/// it cannot. Fails only if the build fails.
pub fn measure(root: &Path, target: &Path) -> Result<Outcome, String> {
    match Command::new("valgrind").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Ok(Outcome::Skipped(format!(
                "`valgrind --version` failed ({})",
                out.status
            )));
        }
        Err(err) if err.kind() == ErrorKind::NotFound => {
            return Ok(Outcome::Skipped("valgrind is not on PATH".into()));
        }
        Err(err) => return Ok(Outcome::Skipped(format!("cannot run valgrind: {err}"))),
    }
    let source = root
        .join("crates")
        .join(PACKAGE)
        .join("examples")
        .join(format!("{EXAMPLE}.rs"));
    if !source.is_file() {
        return Ok(Outcome::Skipped(format!(
            "{} does not exist",
            source.strip_prefix(root).unwrap_or(&source).display()
        )));
    }
    let build = Cmd::cargo([
        "build",
        "--release",
        "--package",
        PACKAGE,
        "--example",
        EXAMPLE,
    ]);
    process::announce(&build.to_string());
    build.run(root)?;
    // Relative to the root (where valgrind runs) when inside it, for a short
    // command line in the log.
    let binary = target.join("release").join("examples").join(EXAMPLE);
    let binary = binary.strip_prefix(root).unwrap_or(&binary);
    let (per_op, errors) = count_cases(binary, root);
    Ok(Outcome::Measured {
        counts: Counts {
            per_op,
            measured: SystemTime::now(),
            commit: report_data::git_commit(root),
        },
        errors,
    })
}

/// Runs every case of `binary` under callgrind, in `dir`; returns the
/// instructions per operation of the cases that worked and the errors of the others.
pub fn count_cases(binary: &Path, dir: &Path) -> (Vec<(String, f64)>, Vec<String>) {
    let mut per_op = Vec::new();
    let mut errors = Vec::new();
    for case in CASES {
        let totals: Result<Vec<u64>, String> = ITERATIONS
            .iter()
            .map(|&n| count(binary, dir, case, n))
            .collect();
        match totals {
            Ok(totals) => {
                let ops = (ITERATIONS[1] - ITERATIONS[0]) as f64;
                per_op.push((case.to_owned(), (totals[1] as f64 - totals[0] as f64) / ops));
            }
            Err(err) => errors.push(err),
        }
    }
    (per_op, errors)
}

/// The total instructions of one run of `binary case iterations` under callgrind.
fn count(binary: &Path, dir: &Path, case: &str, iterations: u64) -> Result<u64, String> {
    let args = [
        "--tool=callgrind".to_owned(),
        "--callgrind-out-file=/dev/null".to_owned(),
        binary.display().to_string(),
        case.to_owned(),
        iterations.to_string(),
    ];
    let shown = format!("valgrind {}", args.join(" "));
    process::announce(&shown);
    let out = Command::new("valgrind")
        .args(&args)
        .current_dir(dir)
        .output()
        .map_err(|err| format!("could not start `{shown}`: {err}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "`{shown}` failed: {}\n{}",
            out.status,
            tail.join("\n")
        ));
    }
    parse_collected(&stderr)
        .ok_or_else(|| format!("`{shown}`: no `Collected :` line in its output"))
}

/// The event count of callgrind's `==pid== Collected : N` summary line.
pub fn parse_collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let (_, rest) = line.split_once("Collected :")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Keeps `counts` in `<output>/instructions.json`.
pub fn save(output: &Path, counts: &Counts) -> Result<(), String> {
    let seconds = counts
        .measured
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let file = File {
        measured_unix: seconds,
        commit: counts.commit.clone(),
        iterations: ITERATIONS.to_vec(),
        per_op: counts
            .per_op
            .iter()
            .map(|(case, value)| (case.clone(), Some(*value)))
            .collect(),
    };
    let path = output.join(FILE);
    let json = serde_json::to_string_pretty(&file).map_err(|err| err.to_string())? + "\n";
    fs::create_dir_all(output)
        .and_then(|()| fs::write(&path, json))
        .map_err(|err| format!("cannot write {}: {err}", path.display()))
}

/// Reads `<output>/instructions.json`, if it exists.
pub fn load(output: &Path) -> Result<Option<Counts>, String> {
    let path = output.join(FILE);
    if !path.exists() {
        return Ok(None);
    }
    let file: File = report_data::read_json(&path)?;
    let per_op = CASES
        .iter()
        .filter_map(|case| Some(((*case).to_owned(), (*file.per_op.get(*case)?)?)))
        .collect();
    Ok(Some(Counts {
        per_op,
        measured: UNIX_EPOCH + std::time::Duration::from_secs(file.measured_unix),
        commit: file.commit,
    }))
}

/// The comparison table (Markdown, also readable as plain text).
pub fn table(counts: &Counts) -> String {
    let get = |case: &str| {
        counts
            .per_op
            .iter()
            .find(|(c, _)| c == case)
            .map(|(_, n)| *n)
    };
    let cell = |value: Option<f64>| value.map_or_else(|| "—".to_owned(), |n| format!("{n:.1}"));
    let mut out = String::from(
        "| case | per op | against | per op | ratio |\n| --- | ---: | --- | ---: | ---: |\n",
    );
    for (case, against) in COMPARISONS {
        let (s, c) = (get(case), get(against));
        let ratio = s
            .zip(c)
            .map_or_else(|| "—".to_owned(), |(s, c)| format_ratio(s / c));
        let _ = writeln!(
            out,
            "| {case} | {} | {against} | {} | {ratio} |",
            cell(s),
            cell(c)
        );
    }
    out
}

/// The report's section body: a note about this run (skipped, failed cases),
/// then the kept counts with when and where they were measured.
pub fn section(output: &Path, note: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(note) = note {
        let _ = writeln!(out, "{note}\n");
    }
    match load(output) {
        Ok(Some(counts)) => {
            let _ = writeln!(
                out,
                "measured {} at commit {}: callgrind's instruction count (`Ir`) \
                 at {} iterations minus that at {}, divided by {}\n",
                report_data::format_utc(counts.measured),
                counts.commit,
                ITERATIONS[1],
                ITERATIONS[0],
                ITERATIONS[1] - ITERATIONS[0]
            );
            out.push_str(&table(&counts));
        }
        Ok(None) if note.is_none() => {
            out.push_str("not measured: run `cargo xtask bench --instructions` (needs valgrind)\n")
        }
        Ok(None) => {}
        Err(err) => {
            let _ = writeln!(out, "unreadable: {err}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report_data::tests::Scratch;
    use std::time::Duration;

    /// The summary line of a real callgrind run.
    #[test]
    fn parses_callgrind_totals() {
        let stderr = "==29458== Callgrind, a call-graph generating cache profiler\n\
                      ==29458== Events    : Ir\n\
                      ==29458== Collected : 126545\n\
                      ==29458== \n\
                      ==29458== I   refs:      126,545\n";
        assert_eq!(parse_collected(stderr), Some(126_545));
        assert_eq!(parse_collected("==1== Collected : lots\n"), None);
        assert_eq!(parse_collected(""), None);
    }

    /// Saved counts load back, and the table pairs each sure case with its
    /// corosensei cases; a missing case shows as "—".
    #[test]
    fn saves_loads_and_tabulates() {
        let scratch = Scratch::new("instructions");
        assert_eq!(load(&scratch.0), Ok(None));
        assert!(section(&scratch.0, None).starts_with("not measured"));
        let counts = Counts {
            per_op: vec![
                ("sure-round-trip".into(), 30.0),
                ("corosensei-round-trip".into(), 40.0),
                ("sure-create".into(), 100.5),
                ("corosensei-create-fresh".into(), 2010.0),
            ],
            measured: UNIX_EPOCH + Duration::from_secs(86_400),
            commit: "abc1234-dirty".into(),
        };
        save(&scratch.0, &counts).unwrap();
        assert_eq!(load(&scratch.0), Ok(Some(counts)));
        let section = section(&scratch.0, Some("skipped in this run: no valgrind"));
        assert!(section.starts_with("skipped in this run: no valgrind\n\nmeasured 1970-01-02 00:00 UTC at commit abc1234-dirty"), "{section}");
        assert!(
            section.contains("| sure-round-trip | 30.0 | corosensei-round-trip | 40.0 | 0.750× |"),
            "{section}"
        );
        assert!(
            section.contains("| sure-create | 100.5 | corosensei-create-reused | — | — |"),
            "{section}"
        );
        assert!(
            section.contains("| 100.5 | corosensei-create-fresh | 2010.0 | 0.0500× |"),
            "{section}"
        );
    }

    /// Counting with a stand-in for the example: a shell script whose
    /// instruction count grows with its iteration argument. Skipped without valgrind.
    #[test]
    fn counts_a_program_under_callgrind() {
        if Command::new("valgrind").arg("--version").output().is_err() {
            eprintln!("valgrind is not installed: skipped");
            return;
        }
        let scratch = Scratch::new("callgrind");
        let script = scratch.0.join("stub.sh");
        // Fails for one case, to check that the others are still counted.
        fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" = corosensei-create-fresh ] && exit 3\n\
             i=0; while [ $i -lt $(($2 / 1000)) ]; do i=$((i+1)); done\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let (per_op, errors) = count_cases(&script, &scratch.0);
        assert_eq!(per_op.len(), CASES.len() - 1, "{per_op:?} {errors:?}");
        assert!(per_op.iter().all(|(_, n)| *n > 0.0), "{per_op:?}");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("corosensei-create-fresh"), "{errors:?}");
    }
}
