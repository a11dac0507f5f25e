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
//! ratios with its 95% confidence interval. Each batch is long enough
//! (about 0.5 ms) for the clock's resolution not to matter, and short
//! enough that the machine's speed barely changes between its two halves.
//!
//! A bench binary runs its criterion group, then its comparisons, which it
//! writes to `target/sure-bench/paired/<group>.json` for the report:
//!
//! ```json
//! {"group": "create", "pairs": [{"bench": "sure/sized-pool", "over": "sure/pooled",
//!   "ratio": 1.098, "low": 1.094, "high": 1.102, "rounds": 2000,
//!   "bench_ns": 13.1, "over_ns": 11.9}]}
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one batch of the first operation should take.
const BATCH: Duration = Duration::from_micros(500);

/// The time each comparison takes when criterion's `--measurement-time` is
/// not given: the same as the benches' own measurement time.
const DEFAULT_BUDGET: Duration = Duration::from_secs(3);

/// Rounds at the least, however slow the operations: enough for the
/// median's confidence interval to mean something.
const MIN_ROUNDS: usize = 20;

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
    /// Whether comparisons run: not for criterion's `--list` and `--test`,
    /// which only list or try the benches.
    enabled: bool,
    /// The comparisons made so far.
    done: Vec<Comparison>,
}

impl Pairs {
    /// The comparisons of `group`, reading the bench binary's command line
    /// as criterion does: `--measurement-time <seconds>` sets each
    /// comparison's time, a free argument is a filter (a plain substring
    /// here, not criterion's regular expression), `--list` and `--test` run
    /// no comparison, and other options are criterion's alone.
    pub fn from_args(group: &'static str) -> Pairs {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Pairs::from(group, &args)
    }

    /// [`from_args`](Pairs::from_args) for the arguments `args`.
    fn from(group: &'static str, args: &[String]) -> Pairs {
        // Criterion's options that take a value, so that the value is not
        // taken for a filter.
        const WITH_VALUE: [&str; 12] = [
            "--warm-up-time",
            "--measurement-time",
            "--sample-size",
            "--save-baseline",
            "--baseline",
            "--baseline-lenient",
            "--load-baseline",
            "--color",
            "--output-format",
            "--profile-time",
            "--nresamples",
            "--noise-threshold",
        ];
        let mut budget = DEFAULT_BUDGET;
        let mut filter = None;
        let enabled = !args.iter().any(|arg| arg == "--list" || arg == "--test");
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if WITH_VALUE.contains(&arg.as_str()) {
                let value = args.next();
                if arg == "--measurement-time"
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
            enabled,
            done: Vec::new(),
        }
    }

    /// Times `bench` (running `a` once per iteration) against `over`
    /// (running `b`) in alternation, for the comparison's time, prints the
    /// ratio and keeps it for [`write`](Pairs::write). Skipped when the
    /// filter leaves either bench out, or under `--list` and `--test`.
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
                return;
            }
        }
        // Warm both up (pools filled, pages touched, branches learnt), and
        // find the batch size: a power of two, about BATCH of `a`.
        let mut iterations = 1u64;
        while time(iterations, &mut a) < BATCH && iterations < 1 << 40 {
            iterations *= 2;
        }
        time(iterations, &mut b);
        let mut times_a = Vec::new();
        let mut times_b = Vec::new();
        let started = Instant::now();
        while times_a.len() < MIN_ROUNDS || started.elapsed() < self.budget {
            let (ta, tb) = if times_a.len() % 2 == 0 {
                let ta = time(iterations, &mut a);
                (ta, time(iterations, &mut b))
            } else {
                let tb = time(iterations, &mut b);
                (time(iterations, &mut a), tb)
            };
            times_a.push(ta.as_secs_f64());
            times_b.push(tb.as_secs_f64());
        }
        let comparison = summarize(bench, over, &times_a, &times_b, iterations);
        println!(
            "{}: {bench} ÷ {over} = {:.4} (95% interval {:.4} – {:.4}, {} rounds of {iterations})",
            self.group, comparison.ratio, comparison.low, comparison.high, comparison.rounds
        );
        self.done.push(comparison);
    }

    /// Writes the comparisons made to `<target>/sure-bench/paired/<group>.json`
    /// (nothing when none ran, so that a filtered run leaves earlier results
    /// in place). Prints why when it cannot.
    pub fn write(self) {
        if self.done.is_empty() {
            return;
        }
        let dir = paired_dir();
        let path = dir.join(format!("{}.json", self.group));
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, to_json(self.group, &self.done)));
        if let Err(err) = written {
            eprintln!("cannot write {}: {err}", path.display());
        }
    }

    /// The comparisons made so far.
    pub fn done(&self) -> &[Comparison] {
        &self.done
    }
}

/// Where the comparisons are written: `<target>/sure-bench/paired`.
pub fn paired_dir() -> PathBuf {
    crate::target_dir().join("sure-bench").join("paired")
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

/// The comparison of two equally long series of batch times, each batch of
/// `iterations` operations.
fn summarize(
    bench: &'static str,
    over: &'static str,
    times_a: &[f64],
    times_b: &[f64],
    iterations: u64,
) -> Comparison {
    let mut ratios: Vec<f64> = times_a.iter().zip(times_b).map(|(a, b)| a / b).collect();
    ratios.sort_by(f64::total_cmp);
    let (low, high) = median_interval(ratios.len());
    let per_op = |times: &[f64]| {
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2] * 1e9 / iterations as f64
    };
    Comparison {
        bench,
        over,
        ratio: median(&ratios),
        low: ratios[low],
        high: ratios[high],
        rounds: ratios.len(),
        bench_ns: per_op(times_a),
        over_ns: per_op(times_b),
    }
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
/// for the median of `n` values: `n / 2 ∓ 0.98 √n` (the normal
/// approximation of the binomial distribution of how many values fall
/// below the true median), clamped to the values.
fn median_interval(n: usize) -> (usize, usize) {
    let half_width = 0.98 * (n as f64).sqrt();
    let center = n as f64 / 2.0;
    let low = (center - half_width).floor().max(0.0) as usize;
    let high = ((center + half_width).ceil() as usize).min(n - 1);
    (low, high)
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
        let plain = Pairs::from("create", &args(&["--bench", "--sample-size", "10"]));
        assert_eq!(plain.budget, DEFAULT_BUDGET);
        assert_eq!(plain.filter, None, "an option's value is not a filter");
        assert!(plain.enabled);
        assert!(!Pairs::from("create", &args(&["--bench", "--test"])).enabled);
        assert!(!Pairs::from("create", &args(&["--bench", "--list"])).enabled);
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
    fn a_filter_skips_pairs_it_leaves_a_bench_of_out() {
        let mut pairs = Pairs::from("g", &args(&["--measurement-time", "0.01", "sure"]));
        pairs.compare("sure/a", "peer/a", work(1), work(1));
        assert!(pairs.done().is_empty());
        let mut pairs = Pairs::from("g", &args(&["--measurement-time", "0.01", "g/"]));
        pairs.compare("sure/a", "peer/a", work(1), work(1));
        assert_eq!(pairs.done().len(), 1);
    }

    #[test]
    fn measures_a_known_ratio() {
        // Three times the work over one: the ratio is about 3 whatever the
        // machine's speed.
        let mut pairs = Pairs::from("g", &args(&["--measurement-time", "0.2"]));
        pairs.compare("three", "one", work(3), work(1));
        let c = &pairs.done()[0];
        assert!(c.rounds >= MIN_ROUNDS);
        assert!(c.low <= c.ratio && c.ratio <= c.high);
        assert!((2.5..3.5).contains(&c.ratio), "{c:?}");
        assert!(c.bench_ns > c.over_ns);
    }

    #[test]
    fn the_median_interval_widens_as_the_square_root() {
        assert_eq!(median_interval(1), (0, 0));
        assert_eq!(median_interval(100), (40, 60));
        let (low, high) = median_interval(10_000);
        assert_eq!((low, high), (4902, 5098));
        assert_eq!(median(&[1.0, 2.0, 4.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
    }

    #[test]
    fn writes_json_the_report_reads() {
        let c = Comparison {
            bench: "sure/unit",
            over: "corosensei/unit",
            ratio: 1.5,
            low: 1.25,
            high: 2.0,
            rounds: 3,
            bench_ns: 3.0,
            over_ns: 2.0,
        };
        assert_eq!(
            to_json("round_trip", &[c.clone(), c]),
            "{\"group\": \"round_trip\", \"pairs\": [{\"bench\": \"sure/unit\", \"over\": \
             \"corosensei/unit\", \"ratio\": 1.5, \"low\": 1.25, \"high\": 2, \"rounds\": 3, \
             \"bench_ns\": 3, \"over_ns\": 2}, {\"bench\": \"sure/unit\", \"over\": \
             \"corosensei/unit\", \"ratio\": 1.5, \"low\": 1.25, \"high\": 2, \"rounds\": 3, \
             \"bench_ns\": 3, \"over_ns\": 2}]}\n"
        );
    }
}
