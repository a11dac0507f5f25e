//! Collecting what the benchmark report shows: criterion's results under
//! `target/criterion`, the benches' paired comparisons under
//! `target/sure-bench/paired`, the memory bench's `memory.json`, and facts
//! about the machine and the checkout the numbers were taken on.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The estimate of `estimates.json` the report uses: the mean time per
/// iteration. Criterion's console shows its "typical" estimate instead (the
/// slope of the linear regression, when it sampled linearly), which can
/// differ from the mean by more than its interval on short `--quick` runs.
pub const ESTIMATE: &str = "mean";

/// One criterion benchmark's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The criterion group, e.g. `round_trip`.
    pub group: String,
    /// The id within the group, e.g. `sure/unit`.
    pub id: String,
    /// Time per iteration ([`ESTIMATE`]), in nanoseconds.
    pub mean_ns: f64,
    /// The 95% confidence interval of that estimate, in nanoseconds, if recorded.
    pub interval_ns: Option<(f64, f64)>,
    /// When criterion wrote the estimate, to tell fresh results from old ones.
    pub modified: Option<SystemTime>,
}

/// The part of criterion's `estimates.json` the report reads.
#[derive(Debug, Deserialize)]
struct Estimates {
    /// The [`ESTIMATE`] estimate (criterion also writes `median`, `slope`, ...).
    mean: Estimate,
}

/// One estimate of `estimates.json`, in nanoseconds.
#[derive(Debug, Deserialize)]
struct Estimate {
    /// The estimate itself.
    point_estimate: f64,
    /// Its confidence interval, if recorded.
    #[serde(default)]
    confidence_interval: Option<Interval>,
}

/// A confidence interval of `estimates.json`; a bound may be missing.
#[derive(Debug, Deserialize)]
struct Interval {
    /// The lower bound.
    lower_bound: Option<f64>,
    /// The upper bound.
    upper_bound: Option<f64>,
}

/// The part of criterion's `benchmark.json` that names a benchmark.
#[derive(Debug, Deserialize)]
pub struct BenchmarkId {
    /// The group, e.g. `depth`.
    group_id: String,
    /// The function within the group, e.g. `sure`.
    function_id: Option<String>,
    /// The parameter, e.g. `8`, for a parameterised benchmark.
    value_str: Option<String>,
}

/// What the memory bench writes to `memory.json`.
#[derive(Debug, Deserialize)]
struct MemoryFile {
    /// Kibibytes per idle sure coroutine.
    sure_kib_per_coroutine: f64,
    /// Kibibytes per idle corosensei coroutine.
    corosensei_kib_per_coroutine: f64,
}

/// The memory bench's result: kibibytes of memory per idle coroutine.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// For a sure coroutine.
    pub sure_kib: f64,
    /// For a corosensei coroutine.
    pub corosensei_kib: f64,
    /// When the file was written.
    pub modified: Option<SystemTime>,
}

/// One paired comparison (sure-bench's `paired` module): two benches of a
/// group timed in alternation, and the median ratio of their times.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// The criterion group of both benches.
    pub group: String,
    /// The numerator's id.
    pub bench: String,
    /// The denominator's id.
    pub over: String,
    /// The median of the rounds' ratios.
    pub ratio: f64,
    /// The 95% confidence interval of that median.
    pub interval: (f64, f64),
    /// When the file was written.
    pub modified: Option<SystemTime>,
}

/// What a bench writes to `paired/<group>--<bench>--<over>.json`.
#[derive(Debug, Deserialize)]
struct PairedFile {
    /// The group.
    group: String,
    /// Its comparisons.
    pairs: Vec<PairedEntry>,
}

/// One comparison of a [`PairedFile`] (its round count and per-operation
/// times are for people reading the file; the report shows criterion's
/// times).
#[derive(Debug, Deserialize)]
struct PairedEntry {
    /// The numerator's id.
    bench: String,
    /// The denominator's id.
    over: String,
    /// The median ratio.
    ratio: f64,
    /// The lower end of its 95% interval.
    low: f64,
    /// The upper end.
    high: f64,
}

/// The directory cargo builds into: `$CARGO_TARGET_DIR` (relative to the
/// workspace root if relative) or `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Where this report's own files go: `<target>/sure-bench`.
pub fn output_dir(target: &Path) -> PathBuf {
    target.join("sure-bench")
}

/// Every benchmark criterion has results for under `<target>/criterion`, sorted
/// by group then id. A benchmark is a directory holding `new/estimates.json`;
/// its group and id come from the `benchmark.json` beside it, or else from the
/// directory path (criterion's `report` directory is not a group).
/// Unreadable entries are skipped with a message in the returned warnings.
pub fn load_criterion(target: &Path) -> (Vec<Measurement>, Vec<String>) {
    let criterion = target.join("criterion");
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    for group_dir in sorted_subdirs(&criterion) {
        if group_dir.file_name().is_some_and(|name| name == "report") {
            continue;
        }
        let mut bench_dirs = Vec::new();
        find_bench_dirs(&group_dir, 0, &mut bench_dirs);
        for bench_dir in bench_dirs {
            match read_measurement(&group_dir, &bench_dir) {
                Ok(measurement) => found.push(measurement),
                Err(err) => warnings.push(err),
            }
        }
    }
    // Two directories may name the same benchmark (an old layout left behind
    // by an earlier version of a bench): keep the newest.
    found.sort_by(|a, b| {
        (&a.group, &a.id)
            .cmp(&(&b.group, &b.id))
            .then(b.modified.cmp(&a.modified))
    });
    found.dedup_by(|later, first| later.group == first.group && later.id == first.id);
    (found, warnings)
}

/// How deep below a group directory benchmark directories are looked for:
/// `function/param/new` needs 2, and nothing criterion writes goes deeper.
const MAX_BENCH_DEPTH: usize = 4;

/// Collects the directories under `dir` (itself excluded) that hold
/// `new/estimates.json`, not looking inside such a benchmark's `new`, `base`
/// and `change` directories.
fn find_bench_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_BENCH_DEPTH {
        return;
    }
    for sub in sorted_subdirs(dir) {
        if sub.join("new").join("estimates.json").is_file() {
            out.push(sub.clone());
        }
        let name = sub.file_name().unwrap_or_default();
        if !(name == "new" || name == "base" || name == "change" || name == "report") {
            find_bench_dirs(&sub, depth + 1, out);
        }
    }
}

/// Reads one benchmark directory.
fn read_measurement(group_dir: &Path, bench_dir: &Path) -> Result<Measurement, String> {
    let new = bench_dir.join("new");
    let estimates_path = new.join("estimates.json");
    let Estimates { mean } = read_json(&estimates_path)?;
    let interval_ns = mean
        .confidence_interval
        .and_then(|ci| ci.lower_bound.zip(ci.upper_bound));
    let (group, id) = read_json(&new.join("benchmark.json"))
        .ok()
        .and_then(|benchmark| ids_from_benchmark_json(&benchmark))
        .unwrap_or_else(|| ids_from_path(group_dir, bench_dir));
    Ok(Measurement {
        group,
        id,
        mean_ns: mean.point_estimate,
        interval_ns,
        modified: modified(&estimates_path),
    })
}

/// Group and id as criterion recorded them: `function_id`, plus `/value_str`
/// when the benchmark has a parameter.
pub fn ids_from_benchmark_json(benchmark: &BenchmarkId) -> Option<(String, String)> {
    let id = match (&benchmark.function_id, &benchmark.value_str) {
        (Some(function), Some(value)) => format!("{function}/{value}"),
        (Some(only), None) | (None, Some(only)) => only.clone(),
        (None, None) => return None,
    };
    Some((benchmark.group_id.clone(), id))
}

/// Group and id from the directories, for results without a `benchmark.json`:
/// the group directory's name, and the path from there to the benchmark.
fn ids_from_path(group_dir: &Path, bench_dir: &Path) -> (String, String) {
    let name = |path: &Path| path.to_string_lossy().into_owned();
    let group = group_dir.file_name().map(|n| name(Path::new(n)));
    let id = bench_dir
        .strip_prefix(group_dir)
        .map(|rel| {
            rel.components()
                .map(|c| name(c.as_os_str().as_ref()))
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_else(|_| name(bench_dir));
    (group.unwrap_or_default(), id)
}

/// Reads `<output>/memory.json`, if the memory bench has written it. A file
/// that exists but cannot be read is an error, so a broken bench is noticed.
pub fn load_memory(output: &Path) -> Result<Option<Memory>, String> {
    let path = output.join("memory.json");
    if !path.exists() {
        return Ok(None);
    }
    let file: MemoryFile = read_json(&path)?;
    Ok(Some(Memory {
        sure_kib: file.sure_kib_per_coroutine,
        corosensei_kib: file.corosensei_kib_per_coroutine,
        modified: modified(&path),
    }))
}

/// Every paired comparison in `<output>/paired/*.json`, in file-name order;
/// unreadable files are skipped with a message in the returned warnings.
pub fn load_paired(output: &Path) -> (Vec<Paired>, Vec<String>) {
    let mut files: Vec<PathBuf> = fs::read_dir(output.join("paired"))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    for path in files {
        match read_json::<PairedFile>(&path) {
            Ok(file) => found.extend(file.pairs.into_iter().map(|pair| Paired {
                group: file.group.clone(),
                bench: pair.bench,
                over: pair.over,
                ratio: pair.ratio,
                interval: (pair.low, pair.high),
                modified: modified(&path),
            })),
            Err(err) => warnings.push(format!("skipped a paired comparison: {err}")),
        }
    }
    (found, warnings)
}

/// Reads and parses a JSON file into `T`, with the path in any error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text =
        fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))
}

/// The file's modification time, if the platform records one.
pub fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The subdirectories of `dir`, sorted; none if it cannot be read.
fn sorted_subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The CPU model and the number of logical CPUs, e.g. `AMD EPYC, 2 logical CPUs`.
pub fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let (model, count) = parse_cpuinfo(&cpuinfo);
    let count = count
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .map_or_else(|| "unknown number of".to_owned(), |n| n.to_string());
    let model = model.unwrap_or_else(|| format!("unknown CPU ({})", env::consts::ARCH));
    let os = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| format!("Linux {}", release.trim()))
        .unwrap_or_else(|_| env::consts::OS.to_owned());
    format!("{model}, {count} logical CPUs, {os}")
}

/// The first `model name` and the number of `processor` entries of `/proc/cpuinfo` text.
pub fn parse_cpuinfo(cpuinfo: &str) -> (Option<String>, Option<usize>) {
    let field = |line: &str, key: &str| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == key).then(|| value.trim().to_owned())
    };
    let model = cpuinfo.lines().find_map(|line| field(line, "model name"));
    let count = cpuinfo
        .lines()
        .filter(|line| field(line, "processor").is_some())
        .count();
    (model, (count > 0).then_some(count))
}

/// The checked-out commit, short, with `-dirty` when the work tree has changes
/// (including untracked files): the numbers may not be that commit's.
pub fn git_commit(root: &Path) -> String {
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .map_err(|err| format!("cannot run git: {err}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    };
    let head = match git(&["rev-parse", "--short", "HEAD"]) {
        Ok(head) => head,
        Err(err) => return format!("unknown ({err})"),
    };
    match git(&["status", "--porcelain"]) {
        Ok(status) if status.is_empty() => head,
        Ok(_) => format!("{head}-dirty"),
        Err(_) => format!("{head} (work tree state unknown)"),
    }
}

/// `time` as `YYYY-MM-DD HH:MM UTC`.
pub fn format_utc(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // In range by construction: 1..=12 and 1..=31.
    (year, month as u32, day as u32)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::time::Duration;

    /// A scratch directory under the system temp dir, removed on drop.
    pub struct Scratch(pub PathBuf);

    impl Scratch {
        /// A fresh, empty directory named after `name` and the process.
        pub fn new(name: &str) -> Scratch {
            let dir = env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// Writes a criterion result for `group/<dir>` with the given mean,
        /// and a `benchmark.json` unless `benchmark` is `None`.
        pub fn bench(&self, group: &str, dir: &str, mean: f64, benchmark: Option<&str>) {
            let new = self.0.join("criterion").join(group).join(dir).join("new");
            fs::create_dir_all(&new).unwrap();
            fs::write(
                new.join("estimates.json"),
                format!(
                    r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95,
                    "lower_bound":{},"upper_bound":{}}},"point_estimate":{mean},
                    "standard_error":0.1}},"median":{{"point_estimate":0}}}}"#,
                    mean * 0.99,
                    mean * 1.01
                ),
            )
            .unwrap();
            if let Some(benchmark) = benchmark {
                fs::write(new.join("benchmark.json"), benchmark).unwrap();
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Ids come from `benchmark.json` when present, from the path otherwise,
    /// whatever the directory nesting; `base`, `change` and `report` are ignored.
    #[test]
    fn loads_criterion_results() {
        let scratch = Scratch::new("criterion");
        scratch.bench(
            "switch",
            "sure_call-ret",
            6.4,
            Some(r#"{"group_id":"switch","function_id":"sure/call-ret","value_str":null}"#),
        );
        scratch.bench(
            "depth",
            "sure/8",
            20.0,
            Some(r#"{"group_id":"depth","function_id":"sure","value_str":"8"}"#),
        );
        scratch.bench("depth", "corosensei/8", 21.0, None);
        // Criterion's other directories beside `new` hold no benchmark.
        for other in ["base", "change"] {
            let dir = scratch.0.join("criterion/depth/corosensei/8").join(other);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("estimates.json"), "{}").unwrap();
        }
        scratch.bench("report", "x", 1.0, None);
        fs::create_dir_all(scratch.0.join("criterion/depth/report")).unwrap();
        // A corrupt result is reported, not fatal.
        scratch.bench("many", "sure/10000", 1.0, None);
        fs::write(
            scratch
                .0
                .join("criterion/many/sure/10000/new/estimates.json"),
            "{",
        )
        .unwrap();

        let (found, warnings) = load_criterion(&scratch.0);
        let ids: Vec<_> = found
            .iter()
            .map(|m| format!("{}: {} = {}", m.group, m.id, m.mean_ns))
            .collect();
        assert_eq!(
            ids,
            [
                "depth: corosensei/8 = 21",
                "depth: sure/8 = 20",
                "switch: sure/call-ret = 6.4"
            ]
        );
        assert_eq!(found[0].interval_ns, Some((21.0 * 0.99, 21.0 * 1.01)));
        assert!(found[0].modified.is_some());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("estimates.json"), "{warnings:?}");
    }

    /// A real criterion `benchmark.json` gives the group and id, with the
    /// parameter appended when there is one; no function and no parameter is
    /// no id.
    #[test]
    fn reads_criterion_benchmark_json() {
        let ids = |text: &str| {
            let benchmark: BenchmarkId = serde_json::from_str(text).unwrap();
            ids_from_benchmark_json(&benchmark)
        };
        assert_eq!(
            ids(
                r#"{"group_id":"switch","function_id":"sure/call-ret","value_str":null,
                   "throughput":null,"full_id":"switch/sure/call-ret","directory_name":"x"}"#
            ),
            Some(("switch".into(), "sure/call-ret".into()))
        );
        assert_eq!(
            ids(r#"{"group_id":"depth","function_id":"sure","value_str":"8"}"#),
            Some(("depth".into(), "sure/8".into()))
        );
        assert_eq!(
            ids(r#"{"group_id":"g","function_id":null,"value_str":null}"#),
            None
        );
    }

    /// The estimate without its interval still is a measurement; a file
    /// without the estimate is an error naming the file.
    #[test]
    fn reads_estimates_json() {
        let scratch = Scratch::new("estimates");
        let new = scratch.0.join("g/b/new");
        fs::create_dir_all(&new).unwrap();
        fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":6.4e0,"confidence_interval":{"lower_bound":6}}}"#,
        )
        .unwrap();
        let read = read_measurement(&scratch.0.join("g"), &scratch.0.join("g/b")).unwrap();
        assert_eq!((read.group.as_str(), read.id.as_str()), ("g", "b"));
        assert_eq!((read.mean_ns, read.interval_ns), (6.4, None));
        fs::write(
            new.join("estimates.json"),
            r#"{"median":{"point_estimate":1}}"#,
        )
        .unwrap();
        let err = read_measurement(&scratch.0.join("g"), &scratch.0.join("g/b")).unwrap_err();
        assert!(
            err.contains("estimates.json") && err.contains("mean"),
            "{err}"
        );
    }

    /// No criterion directory at all is simply no results.
    #[test]
    fn no_results_without_a_criterion_directory() {
        let scratch = Scratch::new("no-criterion");
        assert_eq!(load_criterion(&scratch.0), (vec![], vec![]));
    }

    /// The memory file is optional, but must be well-formed when present.
    #[test]
    fn loads_memory() {
        let scratch = Scratch::new("memory");
        assert_eq!(load_memory(&scratch.0), Ok(None));
        fs::write(
            scratch.0.join("memory.json"),
            r#"{"sure_kib_per_coroutine": 4.5, "corosensei_kib_per_coroutine": 12}"#,
        )
        .unwrap();
        let memory = load_memory(&scratch.0).unwrap().unwrap();
        assert_eq!((memory.sure_kib, memory.corosensei_kib), (4.5, 12.0));
        fs::write(
            scratch.0.join("memory.json"),
            r#"{"sure_kib_per_coroutine": 4.5}"#,
        )
        .unwrap();
        assert!(load_memory(&scratch.0).is_err());
    }

    /// Paired comparisons are read from every `paired/*.json`, the file
    /// sure-bench writes; a broken file is a warning, the others still count.
    #[test]
    fn loads_paired_comparisons() {
        let scratch = Scratch::new("paired");
        assert_eq!(load_paired(&scratch.0), (vec![], vec![]));
        let dir = scratch.0.join("paired");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("round_trip.json"),
            "{\"group\": \"round_trip\", \"pairs\": [{\"bench\": \"sure/unit\", \"over\": \
             \"corosensei/unit\", \"ratio\": 0.85, \"low\": 0.84, \"high\": 0.86, \
             \"rounds\": 900, \"bench_ns\": 2.5, \"over_ns\": 2.9}]}\n",
        )
        .unwrap();
        fs::write(dir.join("broken.json"), "{\"group\": 1}").unwrap();
        fs::write(dir.join("notes.txt"), "not read").unwrap();
        let (found, warnings) = load_paired(&scratch.0);
        assert_eq!(found.len(), 1);
        let pair = &found[0];
        assert_eq!(
            (pair.group.as_str(), pair.bench.as_str(), pair.over.as_str()),
            ("round_trip", "sure/unit", "corosensei/unit")
        );
        assert_eq!((pair.ratio, pair.interval), (0.85, (0.84, 0.86)));
        assert!(pair.modified.is_some());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("broken.json"), "{warnings:?}");
    }

    /// Model name and processor count from a two-CPU `/proc/cpuinfo`.
    #[test]
    fn parses_cpuinfo() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t: a b\n\n\
                    processor\t: 1\nmodel name\t: AMD EPYC\n";
        assert_eq!(parse_cpuinfo(text), (Some("AMD EPYC".into()), Some(2)));
        assert_eq!(parse_cpuinfo(""), (None, None));
    }

    /// Dates around the epoch, a leap day and a century.
    #[test]
    fn formats_utc_dates() {
        let at = |secs: u64| format_utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        assert_eq!(at(951_782_400 + 3 * 3600 + 7 * 60), "2000-02-29 03:07 UTC");
        assert_eq!(at(1_767_225_599), "2025-12-31 23:59 UTC");
        assert_eq!(at(4_107_542_400), "2100-03-01 00:00 UTC");
    }
}
