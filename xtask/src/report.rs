//! The benchmark report: criterion's results as one table per group with each
//! bench's ratio to its peer (corosensei's bench, or stacker's for stack
//! growth), the project's performance targets
//! with PASS/MISS, the memory bench, and instruction counts when measured.
//!
//! What the benches are expected to produce (groups, ids, which bench is
//! compared with which) is data in this file ([`GROUPS`], [`PEER_RULES`],
//! [`TARGETS`]); everything else is derived from what is actually on disk, so
//! a missing bench is shown as "not run" and no number is ever made up.

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::chart::Bar;
use crate::report_data::{self, Measurement, Memory, Paired};

/// The criterion groups in the order they are run and reported, each with the
/// ids its bench is expected to produce. Results for other groups or ids are
/// reported too, after these.
pub const GROUPS: &[(&str, &[&str])] = &[
    (
        "switch",
        &[
            "sure/call-ret",
            "sure/call-call",
            "sure/ret-ret",
            "context/resume",
        ],
    ),
    (
        "round_trip",
        &[
            "sure/unit",
            "sure/u64",
            "corosensei/unit",
            "corosensei/u64",
            "generator/unit",
            "generator/u64",
            "thread/u64",
        ],
    ),
    (
        "depth",
        &[
            "sure/1",
            "sure/8",
            "sure/64",
            "corosensei/1",
            "corosensei/8",
            "corosensei/64",
        ],
    ),
    ("many", &["sure/10000", "corosensei/10000"]),
    (
        "create",
        &[
            "sure/pooled",
            "sure/pooled-returning",
            "sure/sized-pool",
            "sure/borrowing",
            "sure/counting",
            "sure/fresh-stack",
            "corosensei/fresh-stack",
            "corosensei/reused-stack",
            "corosensei/reused-stack-returning",
            "thread/spawn-join",
        ],
    ),
    ("cancel", &["sure/suspended", "corosensei/suspended"]),
    (
        "generator",
        &["sure/1000", "plain-iterator/1000", "generator/1000"],
    ),
    (
        "grow",
        &[
            "sure/grow",
            "sure/maybe_grow",
            "sure/recursion",
            "stacker/grow",
            "stacker/maybe_grow",
            "stacker/recursion",
        ],
    ),
];

/// The name of the memory bench, which writes `memory.json` instead of
/// criterion results.
pub const MEMORY_GROUP: &str = "memory";

/// The library a group's benches are compared with: corosensei, or the
/// one [`GROUP_BASELINES`] names.
const BASELINE: &str = "corosensei";

/// Groups whose benches are compared with another library than
/// corosensei: `(group, library)`. Stack growth is stacker's field.
const GROUP_BASELINES: &[(&str, &str)] = &[("grow", "stacker")];

/// The library the benches of `group` are compared with.
pub fn baseline(group: &str) -> &'static str {
    GROUP_BASELINES
        .iter()
        .find(|(g, _)| *g == group)
        .map_or(BASELINE, |(_, library)| library)
}

/// Comparisons that do not follow the default rule, which pairs `lib/param`
/// with `baseline/param` of the same group: `(group, bench, peer)`.
const PEER_RULES: &[(&str, &str, &str)] = &[
    // A pooled sure stack is closest to corosensei reusing one stack.
    ("create", "sure/pooled", "corosensei/reused-stack"),
    ("create", "sure/fresh-stack", "corosensei/fresh-stack"),
    (
        "create",
        "sure/pooled-returning",
        "corosensei/reused-stack-returning",
    ),
    // A non-default size's pool costs what the default does; a borrowing
    // coroutine what a 'static one whose body does the same work does.
    ("create", "sure/sized-pool", "sure/pooled"),
    ("create", "sure/borrowing", "sure/counting"),
];

/// Whether a measured ratio must stay below or above its limit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    /// Met when the ratio is at most the limit.
    AtMost(f64),
    /// Met when the ratio is at least the limit.
    AtLeast(f64),
}

impl Goal {
    /// Whether `value` meets the goal.
    fn met_by(self, value: f64) -> bool {
        match self {
            Goal::AtMost(limit) => value <= limit,
            Goal::AtLeast(limit) => value >= limit,
        }
    }
}

/// A performance target: the time of `bench` divided by the time of `over`,
/// both in `group`, must meet `goal`.
struct Target {
    /// The criterion group of both benches.
    group: &'static str,
    /// The numerator.
    bench: &'static str,
    /// The denominator.
    over: &'static str,
    /// The limit on the ratio.
    goal: Goal,
}

/// Shorthand for a [`Target`] row of [`TARGETS`].
const fn target(
    group: &'static str,
    bench: &'static str,
    over: &'static str,
    goal: Goal,
) -> Target {
    Target {
        group,
        bench,
        over,
        goal,
    }
}

/// The project's performance targets.
const TARGETS: &[Target] = &[
    target(
        "round_trip",
        "sure/unit",
        "corosensei/unit",
        Goal::AtMost(0.9),
    ),
    target(
        "round_trip",
        "sure/u64",
        "corosensei/u64",
        Goal::AtMost(0.9),
    ),
    target(
        "round_trip",
        "sure/unit",
        "generator/unit",
        Goal::AtMost(0.5),
    ),
    target("round_trip", "sure/u64", "generator/u64", Goal::AtMost(0.5)),
    target(
        "switch",
        "sure/call-ret",
        "context/resume",
        Goal::AtMost(0.5),
    ),
    target(
        "create",
        "sure/pooled",
        "corosensei/reused-stack",
        Goal::AtMost(1.2),
    ),
    target(
        "create",
        "sure/pooled-returning",
        "corosensei/reused-stack-returning",
        Goal::AtMost(1.2),
    ),
    target(
        "create",
        "sure/sized-pool",
        "sure/pooled",
        Goal::AtMost(1.1),
    ),
    target(
        "create",
        "sure/borrowing",
        "sure/counting",
        Goal::AtMost(1.05),
    ),
    target(
        "cancel",
        "sure/suspended",
        "corosensei/suspended",
        Goal::AtMost(1.0),
    ),
    target(
        "create",
        "corosensei/fresh-stack",
        "sure/pooled",
        Goal::AtLeast(300.0),
    ),
    target("depth", "sure/1", "corosensei/1", Goal::AtMost(1.1)),
    target("depth", "sure/8", "corosensei/8", Goal::AtMost(1.1)),
    target("depth", "sure/64", "corosensei/64", Goal::AtMost(1.1)),
    target("many", "sure/10000", "corosensei/10000", Goal::AtMost(1.1)),
    target("grow", "sure/grow", "stacker/grow", Goal::AtMost(0.05)),
    target(
        "grow",
        "sure/maybe_grow",
        "stacker/maybe_grow",
        Goal::AtMost(1.0),
    ),
    target(
        "grow",
        "sure/recursion",
        "stacker/recursion",
        Goal::AtMost(1.0),
    ),
];

/// The memory target: KiB per idle sure coroutine, at most.
const MEMORY_GOAL_KIB: f64 = 8.0;

/// The outcome of checking one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The target is met.
    Pass,
    /// The target is not met.
    Miss,
    /// A bench the target needs has no result.
    NotRun,
}

impl Verdict {
    /// `PASS`, `MISS` or `not run`.
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::NotRun => "not run",
        }
    }
}

/// Everything the report shows, gathered by the caller.
pub struct Report {
    /// When the report was made.
    pub date: SystemTime,
    /// The CPU and OS, from [`report_data::machine`].
    pub machine: String,
    /// The `cargo xtask bench ...` command line.
    pub command: String,
    /// The commands this run executed, with a failure message for those that failed.
    pub ran: Vec<(String, Option<String>)>,
    /// From [`report_data::git_commit`].
    pub commit: String,
    /// When this run's benches started; `None` when none ran (`--report-only`),
    /// which marks no result as older than the run.
    pub run_started: Option<SystemTime>,
    /// Criterion's results.
    pub measurements: Vec<Measurement>,
    /// The benches' paired comparisons, which judge the targets they cover.
    pub paired: Vec<Paired>,
    /// The memory bench's result, or why it could not be read.
    pub memory: Result<Option<Memory>, String>,
    /// The instruction-count section, already rendered (see `instructions`).
    pub instructions: String,
    /// Where criterion's HTML report is, and whether it exists.
    pub html_report: (String, bool),
    /// Where the chart is written.
    pub chart: String,
    /// Problems met while reading results.
    pub warnings: Vec<String>,
}

impl Report {
    /// The result of `id` in `group`, if there is one.
    fn get(&self, group: &str, id: &str) -> Option<&Measurement> {
        find(&self.measurements, group, id)
    }

    /// Whether `time` predates this run, i.e. the result is left over from an
    /// earlier one (its bench failed, was filtered out or no longer exists).
    fn is_old(&self, time: Option<SystemTime>) -> bool {
        matches!((self.run_started, time), (Some(start), Some(time)) if time < start)
    }
}

/// The result of `id` in `group` among `measurements`.
fn find<'a>(measurements: &'a [Measurement], group: &str, id: &str) -> Option<&'a Measurement> {
    measurements.iter().find(|m| m.group == group && m.id == id)
}

/// The id `id` of `group` is compared with, if that bench has a result:
/// from [`PEER_RULES`], else `<baseline>/<param>` for `<lib>/<param>`
/// ([`baseline`]). The baseline's own benches have no peer.
pub fn peer(measurements: &[Measurement], group: &str, id: &str) -> Option<String> {
    let (library, param) = id.split_once('/')?;
    let baseline = baseline(group);
    if library == baseline {
        return None;
    }
    let peer = PEER_RULES
        .iter()
        .find(|(g, bench, _)| *g == group && *bench == id)
        .map_or_else(
            || format!("{baseline}/{param}"),
            |(_, _, peer)| (*peer).to_owned(),
        );
    find(measurements, group, &peer).map(|_| peer)
}

/// The groups to report: [`GROUPS`] in order, then any others found, sorted.
fn group_order(measurements: &[Measurement]) -> Vec<String> {
    let mut groups: Vec<String> = GROUPS.iter().map(|(g, _)| (*g).to_owned()).collect();
    for m in measurements {
        if !groups.contains(&m.group) {
            groups.push(m.group.clone());
        }
    }
    groups[GROUPS.len()..].sort();
    groups
}

/// The ids to report for `group`: the expected ones in order, then any
/// others found (already sorted in `measurements`).
fn id_order(measurements: &[Measurement], group: &str) -> Vec<String> {
    let mut ids: Vec<String> = GROUPS
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, ids)| ids.iter().map(|id| (*id).to_owned()).collect())
        .unwrap_or_default();
    for m in measurements.iter().filter(|m| m.group == group) {
        if !ids.contains(&m.id) {
            ids.push(m.id.clone());
        }
    }
    ids
}

/// A time in nanoseconds with a unit and three significant digits: `6.44 ns`,
/// `12.3 µs`, `105 ms`.
pub fn format_time(ns: f64) -> String {
    const UNITS: [(&str, f64); 4] = [("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)];
    let (unit, scale) = UNITS
        .iter()
        .rev()
        .find(|(_, scale)| ns >= scale * 0.9995)
        .copied()
        .unwrap_or(UNITS[0]);
    format!("{} {unit}", three_digits(ns / scale))
}

/// A ratio with three significant digits and a `×`: `0.934×`, `1.10×`, `352×`.
pub fn format_ratio(ratio: f64) -> String {
    format!("{}×", three_digits(ratio))
}

/// `value` with three significant digits (no exponent; large values keep all
/// their integer digits).
fn three_digits(value: f64) -> String {
    let magnitude = value.abs();
    let decimals = if magnitude >= 99.95 || magnitude == 0.0 {
        0
    } else if magnitude >= 9.995 {
        1
    } else if magnitude >= 0.9995 {
        2
    } else {
        // 0.0123 -> 0.0123: three digits after the leading zeros.
        let leading_zeros = (-magnitude.log10()).floor() as usize;
        leading_zeros + 3
    };
    format!("{value:.decimals$}")
}

/// One row of the targets table: what is compared, the paired ratio with
/// its interval, criterion's ratio, the goal, and the verdict (from the
/// paired ratio when there is one, else from criterion's).
fn target_rows(report: &Report) -> Vec<[String; 5]> {
    let mut rows = Vec::new();
    for target in TARGETS {
        let what = format!("{}: {} ÷ {}", target.group, target.bench, target.over);
        let criterion = report
            .get(target.group, target.bench)
            .zip(report.get(target.group, target.over))
            .map(|(bench, over)| {
                (
                    bench.mean_ns / over.mean_ns,
                    bench.modified.min(over.modified),
                )
            });
        let paired = report
            .paired
            .iter()
            .find(|p| p.group == target.group && p.bench == target.bench && p.over == target.over);
        let goal = match target.goal {
            Goal::AtMost(limit) => format!("≤ {}", format_ratio(limit)),
            Goal::AtLeast(limit) => format!("≥ {}", format_ratio(limit)),
        };
        let old = |time| if report.is_old(time) { " †" } else { "" };
        let paired_cell = paired.map_or_else(
            || "—".to_owned(),
            |p| {
                let (low, high) = p.interval;
                format!(
                    "{} ({} – {}){}",
                    distinct_ratio(p.ratio, target.goal),
                    format_ratio(low),
                    format_ratio(high),
                    old(p.modified)
                )
            },
        );
        let criterion_cell = criterion.map_or_else(
            || "—".to_owned(),
            |(ratio, time)| format!("{}{}", distinct_ratio(ratio, target.goal), old(time)),
        );
        let judged = paired
            .map(|p| p.ratio)
            .or(criterion.map(|(ratio, _)| ratio));
        let verdict = judged.map_or(Verdict::NotRun, |ratio| verdict(target.goal, ratio));
        rows.push([
            what,
            paired_cell,
            criterion_cell,
            goal,
            verdict.label().to_owned(),
        ]);
    }
    let (measured, verdict) = match &report.memory {
        Ok(Some(memory)) => (
            format!("{:.2} KiB", memory.sure_kib),
            verdict(Goal::AtMost(MEMORY_GOAL_KIB), memory.sure_kib),
        ),
        _ => ("—".to_owned(), Verdict::NotRun),
    };
    rows.push([
        "memory: sure KiB per idle coroutine".to_owned(),
        "—".to_owned(),
        measured,
        format!("≤ {MEMORY_GOAL_KIB} KiB"),
        verdict.label().to_owned(),
    ]);
    rows
}

/// `ratio` as [`format_ratio`] writes it, with more decimals when three
/// significant digits would show it equal to the goal's limit although it
/// is not (`1.10×` for 1.1003 would read as a PASS of `≤ 1.10×`).
fn distinct_ratio(ratio: f64, goal: Goal) -> String {
    let (Goal::AtMost(limit) | Goal::AtLeast(limit)) = goal;
    let shown = format_ratio(ratio);
    if ratio == limit || shown != format_ratio(limit) {
        return shown;
    }
    (3..=9)
        .map(|decimals| {
            (
                format!("{ratio:.decimals$}×"),
                format!("{limit:.decimals$}×"),
            )
        })
        .find(|(ratio, limit)| ratio != limit)
        .map_or(shown, |(ratio, _)| ratio)
}

/// PASS or MISS for a measured value.
fn verdict(goal: Goal, value: f64) -> Verdict {
    if goal.met_by(value) {
        Verdict::Pass
    } else {
        Verdict::Miss
    }
}

/// The largest ratio of sure ÷ `peer` that counts as good in the chart: the
/// limit of a matching `≤` target, else 1.
fn chart_limit(group: &str, bench: &str, peer: &str) -> f64 {
    TARGETS
        .iter()
        .find_map(|t| match t.goal {
            Goal::AtMost(limit) if t.group == group && t.bench == bench && t.over == peer => {
                Some(limit)
            }
            _ => None,
        })
        .unwrap_or(1.0)
}

/// The chart's bars: every sure bench that has a peer, in report order.
pub fn bars(measurements: &[Measurement]) -> Vec<Bar> {
    let mut bars = Vec::new();
    for group in group_order(measurements) {
        for id in id_order(measurements, &group) {
            let (Some(bench), Some(peer)) = (
                find(measurements, &group, &id).filter(|_| id.starts_with("sure/")),
                peer(measurements, &group, &id),
            ) else {
                continue;
            };
            let Some(peer_m) = find(measurements, &group, &peer) else {
                continue;
            };
            let same_param = id.split_once('/').map(|p| p.1) == peer.split_once('/').map(|p| p.1);
            let label = if same_param && baseline(&group) == BASELINE {
                format!("{group} {id}")
            } else {
                format!("{group} {id} vs {peer}")
            };
            bars.push(Bar {
                label,
                ratio: bench.mean_ns / peer_m.mean_ns,
                limit: chart_limit(&group, &id, &peer),
            });
        }
    }
    bars
}

/// Renders a Markdown table.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        format!("| {} |\n", cells.join(" | "))
    };
    out.push_str(&line(&mut header.iter().copied()));
    out.push_str(&line(&mut header.iter().map(|h| {
        if h.starts_with('×') || *h == "time" || *h == "measured" {
            "---:"
        } else {
            "---"
        }
    })));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
}

/// The whole report as Markdown.
pub fn markdown(report: &Report) -> String {
    let mut out = String::from("# sure benchmark report\n\n");
    let _ = writeln!(out, "- date: {}", report_data::format_utc(report.date));
    let _ = writeln!(out, "- machine: {}", report.machine);
    let _ = writeln!(out, "- command: `{}`", report.command);
    if report.ran.is_empty() {
        out.push_str("- ran: no benches (report made from earlier results)\n");
    }
    for (command, failure) in &report.ran {
        match failure {
            None => {
                let _ = writeln!(out, "  - ran `{command}`");
            }
            Some(err) => {
                let _ = writeln!(out, "  - ran `{command}`: **FAILED** ({err})");
            }
        }
    }
    let _ = writeln!(out, "- commit: {}", report.commit);
    match &report.html_report {
        (path, true) => {
            let _ = writeln!(out, "- criterion's HTML report: {path}");
        }
        (path, false) => {
            let _ = writeln!(
                out,
                "- criterion's HTML report: {path} does not exist \
                 (criterion writes it only with its `html_reports` feature)"
            );
        }
    }
    let _ = writeln!(out, "- chart of sure ÷ its peer: {}", report.chart);
    let _ = writeln!(
        out,
        "\nTimes are the `{}` estimate of criterion's `estimates.json` (criterion's \
         console shows its slope estimate where it has one, which may differ on short runs). \
         \"× corosensei\" is the bench's time divided by that of the corosensei \
         bench with the same parameter (below 1 is faster than corosensei); \
         in the grow group, \"× stacker\" divides by stacker's.",
        report_data::ESTIMATE
    );
    if report.run_started.is_some() {
        out.push_str("† marks a result left from an earlier run, not measured by this one.\n");
    }

    out.push_str("\n## Targets\n\n");
    out.push_str(
        "A target is judged by its paired comparison where it has one: after criterion, \
         the bench times the two operations again in alternation, a batch of each (about \
         0.5 ms) per round, and takes the median of the rounds' ratios, shown with its 95% \
         interval. Criterion times one bench after the other, so its ratio also holds \
         whatever the machine's speed did between them (on a shared virtual machine, tens \
         of percent from run to run); it is shown beside, and judges the targets without a \
         paired comparison.\n\n",
    );
    let rows: Vec<Vec<String>> = target_rows(report)
        .into_iter()
        .map(|row| row.to_vec())
        .collect();
    table(
        &mut out,
        &[
            "target",
            "paired (95% interval)",
            "criterion",
            "goal",
            "result",
        ],
        &rows,
    );

    for group in group_order(&report.measurements) {
        group_section(&mut out, report, &group);
    }
    memory_section(&mut out, report);
    out.push_str("\n## Instructions per operation\n\n");
    out.push_str(&report.instructions);
    if !report.warnings.is_empty() {
        out.push_str("\n## Warnings\n\n");
        for warning in &report.warnings {
            let _ = writeln!(out, "- {warning}");
        }
    }
    out
}

/// The `## group` section: when it was measured and its table.
fn group_section(out: &mut String, report: &Report, group: &str) {
    let _ = writeln!(out, "\n## {group}\n");
    let results: Vec<&Measurement> = report
        .measurements
        .iter()
        .filter(|m| m.group == group)
        .collect();
    if results.is_empty() {
        out.push_str("not run\n");
        return;
    }
    if let Some(newest) = results.iter().filter_map(|m| m.modified).max() {
        let _ = writeln!(out, "measured {}\n", report_data::format_utc(newest));
    }
    let mut rows = Vec::new();
    for id in id_order(&report.measurements, group) {
        let Some(m) = report.get(group, &id) else {
            rows.push(vec![id, "not run".into(), "—".into(), "—".into()]);
            continue;
        };
        let ratio = peer(&report.measurements, group, &id)
            .and_then(|peer| report.get(group, &peer))
            .map_or_else(|| "—".to_owned(), |p| format_ratio(m.mean_ns / p.mean_ns));
        let interval = m.interval_ns.map_or_else(
            || "—".to_owned(),
            |(low, high)| format!("{} – {}", format_time(low), format_time(high)),
        );
        let bench = if report.is_old(m.modified) {
            format!("{id} †")
        } else {
            id
        };
        rows.push(vec![bench, format_time(m.mean_ns), ratio, interval]);
    }
    let versus = format!("× {}", baseline(group));
    table(out, &["bench", "time", &versus, "95% interval"], &rows);
}

/// The `## memory` section.
fn memory_section(out: &mut String, report: &Report) {
    out.push_str("\n## memory\n\n");
    match &report.memory {
        Ok(Some(memory)) => {
            let old = if report.is_old(memory.modified) {
                " †"
            } else {
                ""
            };
            if let Some(time) = memory.modified {
                let _ = writeln!(out, "measured {}\n", report_data::format_utc(time));
            }
            let rows = vec![
                vec![
                    format!("sure{old}"),
                    format!("{:.2} KiB", memory.sure_kib),
                    format_ratio(memory.sure_kib / memory.corosensei_kib),
                ],
                vec![
                    format!("corosensei{old}"),
                    format!("{:.2} KiB", memory.corosensei_kib),
                    "—".into(),
                ],
            ];
            table(
                out,
                &["per idle coroutine", "memory", "× corosensei"],
                &rows,
            );
        }
        Ok(None) => out.push_str("not run\n"),
        Err(err) => {
            let _ = writeln!(out, "unreadable: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A result of `mean` ns, written at `age` seconds after the epoch.
    fn m(group: &str, id: &str, mean: f64) -> Measurement {
        Measurement {
            group: group.into(),
            id: id.into(),
            mean_ns: mean,
            interval_ns: Some((mean * 0.9, mean * 1.1)),
            modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1000)),
        }
    }

    /// A report over `measurements`, as a `--report-only` run would make.
    fn report(measurements: Vec<Measurement>) -> Report {
        Report {
            date: SystemTime::UNIX_EPOCH,
            machine: "Test CPU, 2 logical CPUs".into(),
            command: "cargo xtask bench --report-only".into(),
            ran: vec![],
            commit: "abc1234".into(),
            run_started: None,
            measurements,
            paired: vec![],
            memory: Ok(None),
            instructions: "not measured\n".into(),
            html_report: ("target/criterion/report/index.html".into(), false),
            chart: "target/sure-bench/report.svg".into(),
            warnings: vec![],
        }
    }

    /// Units switch at 1000 and keep three significant digits.
    #[test]
    fn formats_times() {
        assert_eq!(format_time(6.439), "6.44 ns");
        assert_eq!(format_time(64.39), "64.4 ns");
        assert_eq!(format_time(643.9), "644 ns");
        assert_eq!(format_time(999.7), "1.00 µs");
        assert_eq!(format_time(12_345.0), "12.3 µs");
        assert_eq!(format_time(105_000_000.0), "105 ms");
        assert_eq!(format_time(2.5e9), "2.50 s");
        assert_eq!(format_time(0.123), "0.123 ns");
    }

    /// Ratios keep three significant digits, small or large.
    #[test]
    fn formats_ratios() {
        assert_eq!(format_ratio(0.9341), "0.934×");
        assert_eq!(format_ratio(1.1), "1.10×");
        assert_eq!(format_ratio(12.34), "12.3×");
        assert_eq!(format_ratio(352.4), "352×");
        assert_eq!(format_ratio(0.01234), "0.0123×");
        assert_eq!(format_ratio(300.0), "300×");
    }

    /// Same-parameter pairing by default, the rule table for create, none for
    /// corosensei itself or when the peer has no result.
    #[test]
    fn pairs_benches_with_corosensei() {
        let ms = vec![
            m("depth", "sure/8", 10.0),
            m("depth", "corosensei/8", 12.0),
            m("depth", "sure/64", 10.0),
            m("create", "sure/pooled", 10.0),
            m("create", "sure/fresh-stack", 10.0),
            m("create", "corosensei/reused-stack", 10.0),
            m("create", "corosensei/fresh-stack", 10.0),
            m("create", "thread/spawn-join", 10.0),
            m("round_trip", "corosensei/unit", 10.0),
            m("round_trip", "generator/unit", 10.0),
        ];
        let peer = |group, id| peer(&ms, group, id);
        assert_eq!(peer("depth", "sure/8").as_deref(), Some("corosensei/8"));
        assert_eq!(peer("depth", "sure/64"), None);
        assert_eq!(peer("depth", "corosensei/8"), None);
        assert_eq!(
            peer("create", "sure/pooled").as_deref(),
            Some("corosensei/reused-stack")
        );
        assert_eq!(
            peer("create", "sure/fresh-stack").as_deref(),
            Some("corosensei/fresh-stack")
        );
        assert_eq!(peer("create", "thread/spawn-join"), None);
        assert_eq!(
            peer("round_trip", "generator/unit").as_deref(),
            Some("corosensei/unit")
        );
        assert_eq!(peer("switch", "context"), None);
    }

    /// The grow group's benches pair with stacker's, not corosensei's.
    #[test]
    fn pairs_growth_with_stacker() {
        let ms = vec![
            m("grow", "sure/grow", 1.0),
            m("grow", "stacker/grow", 100.0),
            m("grow", "corosensei/grow", 100.0),
        ];
        assert_eq!(
            peer(&ms, "grow", "sure/grow").as_deref(),
            Some("stacker/grow")
        );
        assert_eq!(peer(&ms, "grow", "stacker/grow"), None);
        assert_eq!(baseline("grow"), "stacker");
        assert_eq!(baseline("depth"), "corosensei");
    }

    /// Targets pass, miss, or are not run when a bench is missing; `≥`
    /// targets compare the other way round.
    #[test]
    fn checks_targets() {
        let mut r = report(vec![
            m("round_trip", "sure/unit", 9.0),
            m("round_trip", "corosensei/unit", 10.0),
            m("round_trip", "sure/u64", 11.0),
            m("round_trip", "corosensei/u64", 10.0),
            m("create", "sure/pooled", 10.0),
            m("create", "corosensei/fresh-stack", 3500.0),
            m("depth", "sure/1", 10.9),
            m("depth", "corosensei/1", 10.0),
            m("many", "sure/10000", 11.003),
            m("many", "corosensei/10000", 10.0),
        ]);
        r.memory = Ok(Some(Memory {
            sure_kib: 8.5,
            corosensei_kib: 16.0,
            modified: None,
        }));
        let rows = target_rows(&r);
        let row = |what: &str| {
            rows.iter()
                .find(|row| row[0] == what)
                .unwrap_or_else(|| panic!("no row {what}"))
                .clone()
        };
        assert_eq!(
            row("round_trip: sure/unit ÷ corosensei/unit"),
            [
                "round_trip: sure/unit ÷ corosensei/unit",
                "—",
                "0.900×",
                "≤ 0.900×",
                "PASS"
            ]
        );
        assert_eq!(row("round_trip: sure/u64 ÷ corosensei/u64")[4], "MISS");
        assert_eq!(
            row("round_trip: sure/unit ÷ generator/unit")[1..],
            ["—", "—", "≤ 0.500×", "not run"]
        );
        assert_eq!(
            row("create: corosensei/fresh-stack ÷ sure/pooled")[2..],
            ["350×", "≥ 300×", "PASS"]
        );
        assert_eq!(
            row("depth: sure/1 ÷ corosensei/1")[2..],
            ["1.09×", "≤ 1.10×", "PASS"]
        );
        assert_eq!(
            row("many: sure/10000 ÷ corosensei/10000")[2..],
            ["1.1003×", "≤ 1.10×", "MISS"]
        );
        assert_eq!(row("depth: sure/8 ÷ corosensei/8")[4], "not run");
        assert_eq!(
            row("memory: sure KiB per idle coroutine")[2..],
            ["8.50 KiB", "≤ 8 KiB", "MISS"]
        );
        assert_eq!(rows.len(), TARGETS.len() + 1);
    }

    /// A paired comparison judges its target, criterion's ratio beside it;
    /// one from before the run is marked, and still judges.
    #[test]
    fn paired_comparisons_judge_their_targets() {
        let paired = |bench: &str, over: &str, ratio: f64, seconds: u64| Paired {
            group: "round_trip".into(),
            bench: bench.into(),
            over: over.into(),
            ratio,
            interval: (ratio - 0.01, ratio + 0.01),
            modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)),
        };
        let mut r = report(vec![
            m("round_trip", "sure/unit", 12.0),
            m("round_trip", "corosensei/unit", 10.0),
            m("round_trip", "sure/u64", 8.0),
            m("round_trip", "corosensei/u64", 10.0),
        ]);
        r.run_started = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2000));
        r.paired = vec![
            paired("sure/unit", "corosensei/unit", 0.85, 3000),
            paired("sure/u64", "corosensei/u64", 0.95, 1000),
            // Another pair of the same benches judges nothing.
            paired("sure/unit", "corosensei/u64", 0.5, 3000),
        ];
        let rows = target_rows(&r);
        let row = |what: &str| rows.iter().find(|row| row[0] == what).unwrap().clone();
        assert_eq!(
            row("round_trip: sure/unit ÷ corosensei/unit")[1..],
            ["0.850× (0.840× – 0.860×)", "1.20× †", "≤ 0.900×", "PASS"]
        );
        assert_eq!(
            row("round_trip: sure/u64 ÷ corosensei/u64")[1..],
            ["0.950× (0.940× – 0.960×) †", "0.800× †", "≤ 0.900×", "MISS"]
        );
    }

    /// The Markdown has every expected group, "not run" for missing benches
    /// and groups, extra results after the expected ones, and old results marked.
    #[test]
    fn renders_markdown() {
        let mut fresh = m("depth", "sure/8", 20.0);
        fresh.modified = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(5000));
        let mut r = report(vec![
            m("switch", "sure/call-ret", 6.44),
            m("switch", "sure/zzz-extra", 7.0),
            fresh,
            m("depth", "corosensei/8", 25.0),
            m("other", "x/1", 1500.0),
        ]);
        r.run_started = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2000));
        r.ran = vec![
            ("cargo bench --bench depth".into(), None),
            (
                "cargo bench --bench many".into(),
                Some("exit status: 1".into()),
            ),
        ];
        let md = markdown(&r);
        assert!(md.contains("- commit: abc1234\n"), "{md}");
        assert!(md.contains("  - ran `cargo bench --bench many`: **FAILED** (exit status: 1)"));
        assert!(
            md.contains("| sure/call-ret † | 6.44 ns | — | 5.80 ns – 7.08 ns |\n"),
            "{md}"
        );
        assert!(
            md.contains("| sure/call-call | not run | — | — |\n"),
            "{md}"
        );
        assert!(
            md.contains("| sure/8 | 20.0 ns | 0.800× | 18.0 ns – 22.0 ns |\n"),
            "{md}"
        );
        assert!(md.contains("| corosensei/8 † | 25.0 ns | — |"), "{md}");
        assert!(md.contains("## many\n\nnot run\n"), "{md}");
        assert!(md.contains("## memory\n\nnot run\n"), "{md}");
        let order: Vec<usize> = [
            "## switch",
            "sure/zzz-extra",
            "## round_trip",
            "## generator",
            "## other",
            "## memory",
            "## Instructions",
        ]
        .iter()
        .map(|s| md.find(s).unwrap_or_else(|| panic!("no {s} in {md}")))
        .collect();
        assert!(order.is_sorted(), "{md}");
        assert!(md.contains("| — | — | ≤ 0.900× | not run |"), "{md}");
    }

    /// Bars exist for sure benches with a peer, with their target's limit.
    #[test]
    fn builds_chart_bars() {
        let ms = vec![
            m("depth", "sure/8", 11.0),
            m("depth", "corosensei/8", 10.0),
            m("create", "sure/pooled", 20.0),
            m("create", "corosensei/reused-stack", 10.0),
            m("create", "sure/fresh-stack", 5.0),
            m("create", "corosensei/fresh-stack", 10.0),
            m("round_trip", "generator/unit", 5.0),
            m("round_trip", "corosensei/unit", 10.0),
        ];
        let bars: Vec<_> = bars(&ms)
            .into_iter()
            .map(|b| (b.label, b.ratio, b.limit))
            .collect();
        assert_eq!(
            bars,
            [
                ("depth sure/8".to_owned(), 1.1, 1.1),
                (
                    "create sure/pooled vs corosensei/reused-stack".to_owned(),
                    2.0,
                    1.2
                ),
                ("create sure/fresh-stack".to_owned(), 0.5, 1.0),
            ]
        );
    }
}
