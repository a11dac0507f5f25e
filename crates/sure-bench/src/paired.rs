//! Paired comparisons: the ratio of two benches' times, measured by
//! running them in alternation.
//!
//! Criterion measures one bench, then the next: on a machine whose speed
//! drifts over seconds (a virtual machine sharing its host, a CPU changing
//! its clock), the ratio of two such means moves with the drift. On the
//! machine of the README's figures, `create/sure/sized-pool ÷ sure/pooled`
//! read anywhere from 0.9 to 1.4 from one run to the next, while the same
//! two operations timed in alternation gave 1.09 to 1.11.
//!
//! [`Pairs::compare`] times a batch of the first operation, then a batch
//! of the second, round after round (the order alternating, ABBA, so a
//! steady drift favours neither), and reports the median of the rounds'
//! ratios of time per operation, with its 95% confidence interval. Each
//! operation's batch is sized on its own to take about 0.5 ms: long enough
//! for the clock's resolution and the timing calls not to matter, short
//! enough that the machine's speed barely changes within a round.
//!
//! A bench binary runs its criterion group, then its comparisons, each of
//! which it writes to `target/sure-bench/paired/<group>--<bench>--<over>.json`
//! (the ids' `/` written `_`), so that a filtered run replaces only the
//! comparisons it made:
//!
//! ```json
//! {"group": "create", "pairs": [{"bench": "sure/sized-pool", "over": "sure/pooled",
//!   "ratio": 1.098, "low": 1.094, "high": 1.102, "rounds": 2000,
//!   "bench_ns": 13.1, "over_ns": 11.9}]}
//! ```

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// How long one batch of each operation should take.
const BATCH: Duration = Duration::from_micros(500);

/// The time each comparison takes when criterion's `--measurement-time` is
/// not given: the same as the benches' own measurement time.
const DEFAULT_BUDGET: Duration = Duration::from_secs(3);

/// Rounds at the least, however slow the operations: enough for the
/// median's confidence interval to mean something.
const MIN_ROUNDS: usize = 20;

/// The most iterations a batch is given, for an operation too fast to
/// time (one the compiler removed).
const MAX_ITERATIONS: u64 = 1 << 40;

/// One comparison's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The numerator's bench id (`sure/unit`).
    pub bench: &'static str,
    /// The denominator's bench id (`corosensei/unit`).
    pub over: &'static str,
    /// The median of the rounds' ratios.
    pub ratio: f64,
    /// The lower end of the median's 95% confidence interval.
    pub low: f64,
    /// The upper end of that interval.
    pub high: f64,
    /// How many rounds (pairs of batches) were timed.
    pub rounds: usize,
    /// The numerator's median time per operation, in nanoseconds.
    pub bench_ns: f64,
    /// The denominator's median time per operation, in nanoseconds.
    pub over_ns: f64,
}

/// The comparisons of one bench group, run as the command line asks and
/// written for the report by [`Pairs::write`].
#[derive(Debug)]
pub struct Pairs {
    /// The criterion group the benches belong to.
    group: &'static str,
    /// How long each comparison runs.
    budget: Duration,
    /// Criterion's filter, if one was given: then only comparisons whose
    /// benches' full ids (`group/bench`) both contain it run.
    filter: Option<String>,
    /// Whether comparisons run: only when criterion measures (`cargo bench`
    /// passes `--bench`), not when it lists, tests or profiles the benches.
    enabled: bool,
    /// How many comparisons the filter skipped.
    skipped: usize,
    /// The comparisons made so far.
    done: Vec<Comparison>,
}

impl Pairs {
    /// The comparisons of `group`, reading the bench binary's command line
    /// as criterion does: comparisons run only under `--bench` (which
    /// `cargo bench` passes; without it criterion runs each bench once, as
    /// a test) and not with `--list`, `--test`, `--ignored` or
    /// `--profile-time`; `--measurement-time <seconds>` sets each
    /// comparison's time; a free argument is a filter (a plain substring
    /// here, not criterion's regular expression); other options are
    /// criterion's alone.
    pub fn from_args(group: &'static str) -> Pairs {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Pairs::from(group, &args)
    }

    /// [`from_args`](Pairs::from_args) for the arguments `args`.
    fn from(group: &'static str, args: &[String]) -> Pairs {
        // Criterion's options that take a value (criterion 0.7's command
        // line), so that the value is not taken for a filter.
        const WITH_VALUE: [&str; 19] = [
            "-c",
            "--color",
            "-s",
            "--save-baseline",
            "-b",
            "--baseline",
            "--baseline-lenient",
            "--load-baseline",
            "--profile-time",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
            "--significance-level",
            "--format",
            "--output-format",
            "--plotting-backend",
        ];
        /// Options under which criterion does not measure.
        const NOT_MEASURING: [&str; 4] = ["--list", "--test", "--ignored", "--profile-time"];
        let mut budget = DEFAULT_BUDGET;
        let mut filter = None;
        let mut measuring = false;
        let mut enabled = true;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (option, inline_value) = match arg.split_once('=') {
                Some((option, value)) if option.starts_with("--") => (option, Some(value)),
                _ => (arg.as_str(), None),
            };
            if NOT_MEASURING.contains(&option) {
                enabled = false;
            }
            if option == "--bench" {
                measuring = true;
            } else if WITH_VALUE.contains(&option) {
                let value = inline_value.or_else(|| args.next().map(String::as_str));
                if option == "--measurement-time"
                    && let Some(seconds) = value.and_then(|v| v.parse::<f64>().ok())
                    && seconds.is_finite()
                    && seconds > 0.0
                {
                    budget = Duration::from_secs_f64(seconds);
                }
            } else if !arg.starts_with('-') {
                filter = Some(arg.clone());
            }
        }
        Pairs {
            group,
            budget,
            filter,
            enabled: enabled && measuring,
            skipped: 0,
            done: Vec::new(),
        }
    }

    /// Times `bench` (running `a` once per iteration) against `over`
    /// (running `b`) in alternation, for the comparison's time, prints the
    /// ratio and keeps it for [`write`](Pairs::write). Skipped when the
    /// filter leaves either bench out, or when criterion does not measure.
    pub fn compare(
        &mut self,
        bench: &'static str,
        over: &'static str,
        mut a: impl FnMut(),
        mut b: impl FnMut(),
    ) {
        if !self.enabled {
            return;
        }
        if let Some(filter) = &self.filter {
            let full = |id: &str| format!("{}/{id}", self.group);
            if !full(bench).contains(filter.as_str()) || !full(over).contains(filter.as_str()) {
                self.skipped += 1;
                return;
            }
        }
        // Warm both up (pools filled, pages touched, code translated under
        // an emulator, branches learnt), then size each one's batch.
        time(1, &mut a);
        time(1, &mut b);
        let iterations_a = batch_size(&mut a);
        let iterations_b = batch_size(&mut b);
        let mut times_a = Vec::new();
        let mut times_b = Vec::new();
        let started = Instant::now();
        while times_a.len() < MIN_ROUNDS || started.elapsed() < self.budget {
            let (ta, tb) = if times_a.len() % 2 == 0 {
                let ta = time(iterations_a, &mut a);
                (ta, time(iterations_b, &mut b))
            } else {
                let tb = time(iterations_b, &mut b);
                (time(iterations_a, &mut a), tb)
            };
            times_a.push(ta.as_secs_f64() / iterations_a as f64);
            times_b.push(tb.as_secs_f64() / iterations_b as f64);
        }
        let Some(comparison) = summarize(bench, over, &times_a, &times_b) else {
            println!(
                "{}: {bench} ÷ {over}: not recorded, a batch took no measurable time",
                self.group
            );
            return;
        };
        println!(
            "{}: {bench} ÷ {over} = {:.4} (95% interval {:.4} – {:.4}, {} rounds of \
             {iterations_a} and {iterations_b})",
            self.group, comparison.ratio, comparison.low, comparison.high, comparison.rounds
        );
        self.done.push(comparison);
    }

    /// Writes each comparison made to its file in
    /// `<target>/sure-bench/paired` (see the module's documentation), and
    /// says so when the filter skipped them all. Prints why when a file
    /// cannot be written.
    pub fn write(self) {
        if self.done.is_empty() && self.skipped > 0 {
            println!(
                "{}: no paired comparison matches the filter; earlier ones stay in place",
                self.group
            );
        }
        let dir = crate::target_dir().join("sure-bench").join("paired");
        for comparison in &self.done {
            let path = dir.join(file_name(self.group, comparison));
            let written = std::fs::create_dir_all(&dir).and_then(|()| {
                std::fs::write(&path, to_json(self.group, std::slice::from_ref(comparison)))
            });
            if let Err(err) = written {
                eprintln!("cannot write {}: {err}", path.display());
            }
        }
    }
}

/// The file of a comparison of `group`: `<group>--<bench>--<over>.json`,
/// each `/` of the ids written `_`.
fn file_name(group: &str, comparison: &Comparison) -> String {
    let id = |id: &str| id.replace('/', "_");
    format!(
        "{group}--{}--{}.json",
        id(comparison.bench),
        id(comparison.over)
    )
}

/// The iterations of `op` that take about [`BATCH`]: a power of two.
fn batch_size(op: &mut impl FnMut()) -> u64 {
    let mut iterations = 1u64;
    while time(iterations, op) < BATCH && iterations < MAX_ITERATIONS {
        iterations *= 2;
    }
    iterations
}

/// Runs `op` `iterations` times and returns how long that took.
#[inline(never)]
fn time(iterations: u64, op: &mut impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        op();
    }
    started.elapsed()
}

/// The comparison of two equally long, non-empty series of times per
/// operation, one pair per round; `None` if a ratio is not a finite
/// number (a batch measured no time).
fn summarize(
    bench: &'static str,
    over: &'static str,
    times_a: &[f64],
    times_b: &[f64],
) -> Option<Comparison> {
    let mut ratios: Vec<f64> = times_a.iter().zip(times_b).map(|(a, b)| a / b).collect();
    if !ratios.iter().all(|ratio| ratio.is_finite()) {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let (low, high) = median_interval(ratios.len());
    let sorted_median = |times: &[f64]| {
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        median(&sorted) * 1e9
    };
    Some(Comparison {
        bench,
        over,
        ratio: median(&ratios),
        low: ratios[low],
        high: ratios[high],
        rounds: ratios.len(),
        bench_ns: sorted_median(times_a),
        over_ns: sorted_median(times_b),
    })
}

/// The median of sorted, non-empty `values`.
fn median(values: &[f64]) -> f64 {
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The ranks (0-based, in sorted order) bounding a 95% confidence interval
/// for the median of `n` values: the order statistics of 1-based ranks
/// `n / 2 - 0.98 √n` and `1 + n / 2 + 0.98 √n`, rounded (the normal
/// approximation of the binomial distribution of how many values fall
/// below the true median), clamped to the values.
fn median_interval(n: usize) -> (usize, usize) {
    let half_width = 0.98 * (n as f64).sqrt();
    let center = n as f64 / 2.0;
    let low = (center - half_width).round().max(1.0) as usize;
    let high = ((1.0 + center + half_width).round() as usize).clamp(1, n);
    (low - 1, high - 1)
}

/// The JSON of a group's comparisons (see the module's documentation).
fn to_json(group: &str, comparisons: &[Comparison]) -> String {
    let mut out = format!("{{\"group\": \"{group}\", \"pairs\": [");
    for (i, c) in comparisons.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // Ids are the benches' own `&'static str`s: no character in them
        // needs escaping.
        let _ = write!(
            out,
            "{{\"bench\": \"{}\", \"over\": \"{}\", \"ratio\": {}, \"low\": {}, \"high\": {}, \
             \"rounds\": {}, \"bench_ns\": {}, \"over_ns\": {}}}",
            c.bench, c.over, c.ratio, c.low, c.high, c.rounds, c.bench_ns, c.over_ns
        );
    }
    out.push_str("]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn reads_the_budget_and_the_filter_from_criterion_arguments() {
        let pairs = Pairs::from(
            "create",
            &args(&[
                "--bench",
                "--warm-up-time",
                "0.2",
                "--measurement-time",
                "0.5",
                "sized",
            ]),
        );
        assert_eq!(pairs.budget, Duration::from_millis(500));
        assert_eq!(pairs.filter.as_deref(), Some("sized"));
        assert!(pairs.enabled);
        let equals = Pairs::from(
            "create",
            &args(&["--bench", "--measurement-time=2", "-s", "main"]),
        );
        assert_eq!(equals.budget, Duration::from_secs(2));
        assert_eq!(equals.filter, None, "an option's value is not a filter");
        let plain = Pairs::from("create", &args(&["--bench", "--sample-size", "10"]));
        assert_eq!(plain.budget, DEFAULT_BUDGET);
        assert_eq!(plain.filter, None);
    }

    #[test]
    fn runs_only_where_criterion_measures() {
        let enabled = |list: &[&str]| Pairs::from("create", &args(list)).enabled;
        assert!(enabled(&["--bench"]));
        // `cargo test --benches` passes no `--bench`: criterion's test mode.
        assert!(!enabled(&[]));
        assert!(!enabled(&["sized"]));
        for option in ["--test", "--list", "--ignored"] {
            assert!(!enabled(&["--bench", option]), "{option}");
        }
        assert!(!enabled(&["--bench", "--profile-time", "5"]));
        assert!(!enabled(&["--bench", "--profile-time=5"]));
    }

    /// An operation of `n` units of work: a chain of dependent
    /// multiply-adds, whose time is proportional to `n` on any machine.
    fn work(n: u64) -> impl FnMut() {
        move || {
            let mut x = std::hint::black_box(1u64);
            for _ in 0..n * 200 {
                x = std::hint::black_box(x.wrapping_mul(3).wrapping_add(1));
            }
        }
    }

    #[test]
    fn a_filter_skips_the_pairs_it_leaves_a_bench_of_out() {
        let mut pairs = Pairs::from(
            "g",
            &args(&["--bench", "--measurement-time", "0.01", "sure"]),
        );
        pairs.compare("sure/a", "peer/a", work(1), work(1));
        assert!(pairs.done.is_empty());
        assert_eq!(pairs.skipped, 1);
        let mut pairs = Pairs::from("g", &args(&["--bench", "--measurement-time", "0.01", "g/"]));
        pairs.compare("sure/a", "peer/a", work(1), work(1));
        assert_eq!(pairs.done.len(), 1);
    }

    /// A live run on two operations of known relative cost: a sanity check
    /// of the loop, with bounds wide enough for an emulator's or a loaded
    /// machine's noise (the arithmetic is tested on fixed series below).
    #[test]
    fn measures_about_the_ratio_of_two_workloads() {
        let mut pairs = Pairs::from("g", &args(&["--bench", "--measurement-time", "0.2"]));
        pairs.compare("three", "one", work(3), work(1));
        let c = &pairs.done[0];
        assert!(c.rounds >= MIN_ROUNDS);
        assert!(c.low <= c.ratio && c.ratio <= c.high);
        assert!((1.5..6.0).contains(&c.ratio), "{c:?}");
        assert!(c.bench_ns > c.over_ns);
    }

    #[test]
    fn summarizes_rounds_as_the_median_ratio() {
        // Five rounds: per-operation times of 3, 3, 30, 3 and 3 seconds
        // against 1 each; one disturbed round moves the median not at all.
        let a = [3.0, 3.0, 30.0, 3.0, 3.0];
        let b = [1.0; 5];
        let c = summarize("a", "b", &a, &b).unwrap();
        assert_eq!((c.ratio, c.rounds), (3.0, 5));
        assert_eq!((c.bench_ns, c.over_ns), (3.0e9, 1.0e9));
        assert_eq!(
            (c.low, c.high),
            (3.0, 30.0),
            "five rounds: the interval spans the extremes"
        );
        assert_eq!(
            summarize("a", "b", &[1.0], &[0.0]),
            None,
            "no time measured"
        );
    }

    #[test]
    fn the_median_interval_is_the_order_statistics_rule() {
        assert_eq!(median_interval(1), (0, 0));
        assert_eq!(median_interval(20), (5, 14));
        assert_eq!(median_interval(100), (39, 60));
        assert_eq!(median_interval(10_000), (4901, 5098));
        assert_eq!(median(&[1.0, 2.0, 4.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
    }

    #[test]
    fn names_a_file_per_comparison() {
        let c = comparison();
        assert_eq!(
            file_name("round_trip", &c),
            "round_trip--sure_unit--corosensei_unit.json"
        );
    }

    fn comparison() -> Comparison {
        Comparison {
            bench: "sure/unit",
            over: "corosensei/unit",
            ratio: 1.5,
            low: 1.25,
            high: 2.0,
            rounds: 3,
            bench_ns: 3.0,
            over_ns: 2.0,
        }
    }

    #[test]
    fn writes_json_the_report_reads() {
        assert_eq!(
            to_json("round_trip", &[comparison(), comparison()]),
            "{\"group\": \"round_trip\", \"pairs\": [{\"bench\": \"sure/unit\", \"over\": \
             \"corosensei/unit\", \"ratio\": 1.5, \"low\": 1.25, \"high\": 2, \"rounds\": 3, \
             \"bench_ns\": 3, \"over_ns\": 2}, {\"bench\": \"sure/unit\", \"over\": \
             \"corosensei/unit\", \"ratio\": 1.5, \"low\": 1.25, \"high\": 2, \"rounds\": 3, \
             \"bench_ns\": 3, \"over_ns\": 2}]}\n"
        );
    }
}
