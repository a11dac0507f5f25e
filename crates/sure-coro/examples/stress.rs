//! A stress run for memory checkers: thousands of coroutines created,
//! resumed and dropped in every state, with heap data on their stacks and
//! flowing in and out.
//!
//! It covers suspended coroutines dropped at depth (their stacks unwind and
//! every destructor runs), bodies that catch that unwind and suspend again,
//! panics caught at the resume, coroutines nested three deep (and dropped or
//! panicking while nested), generators abandoned part-way, hundreds of
//! coroutines alive at once (more than the stack pool keeps, so stacks are
//! mapped and unmapped), and stacks of other sizes (pooled per size) and reused stacks. It
//! checks its own results, including that every value it created was
//! dropped exactly once, and prints one summary line.
//!
//! Run with `cargo run -p sure-coro --example stress`. `cargo xtask test`
//! runs it under Valgrind's memcheck too:
//!
//! ```text
//! cargo build -p sure-coro --example stress
//! valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
//!     --show-leak-kinds=definite target/debug/examples/stress
//! ```

use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use sure_coro::{Builder, Coroutine, CoroutineResult, Generator, SuspendHandle};

/// How many coroutines the churn phase builds (a quarter in each fate).
const CHURN: usize = 2000;
/// How many coroutines are alive at once in the crowd phase: well above the
/// thread pool's 64 idle stacks, so most are freshly mapped and unmapped.
const CROWD: usize = 300;
/// How many three-level nests the nesting phase builds.
const NESTS: usize = 150;
/// How many generators the generator phase runs.
const GENERATORS: usize = 200;

/// `Tracked` values created and dropped so far: they must match at the end
/// of every phase.
static CREATED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A value with heap data that counts its creation and its drop, and checks
/// on drop that its heap data is intact.
#[derive(Debug)]
struct Tracked {
    label: String,
    data: Vec<u64>,
}

impl Tracked {
    fn new(label: impl Into<String>, seed: u64) -> Tracked {
        CREATED.fetch_add(1, Ordering::Relaxed);
        let len = (seed % 7 + 1) as usize;
        Tracked {
            label: label.into(),
            data: (0..len as u64)
                .map(|i| seed.wrapping_mul(31).wrapping_add(i))
                .collect(),
        }
    }

    fn seed(&self) -> u64 {
        self.data[0] / 31
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let seed = self.seed();
        for (i, value) in self.data.iter().enumerate() {
            assert_eq!(
                *value,
                seed.wrapping_mul(31).wrapping_add(i as u64),
                "{}",
                self.label
            );
        }
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// `Tracked` values alive now.
fn live() -> usize {
    CREATED.load(Ordering::Relaxed) - DROPPED.load(Ordering::Relaxed)
}

/// The payload the bodies panic with: heap data coming out of `resume`.
#[derive(Debug, PartialEq, Eq)]
struct Boom {
    id: usize,
    note: String,
}

/// What the run did, for the summary line.
#[derive(Debug, Default)]
struct Stats {
    coroutines: usize,
    resumes: usize,
    completed: usize,
    unwound: usize,
    never_started: usize,
    panics: usize,
    cancels_caught: usize,
    nested: usize,
    generated: usize,
}

/// Resumes `co`, catching a panic of the body; counts the resume.
///
/// Never inlined, like [`descend`]: `tests/gdb.rs` breaks in `descend`,
/// inside a coroutine, and checks that gdb's backtrace walks from there
/// through the coroutine's entry trampoline back to this function.
#[inline(never)]
fn resume_catching<I, Y, R>(
    stats: &mut Stats,
    co: &mut Coroutine<I, Y, R>,
    input: I,
) -> Result<CoroutineResult<Y, R>, Box<dyn std::any::Any + Send>> {
    stats.resumes += 1;
    panic::catch_unwind(AssertUnwindSafe(|| co.resume_with(input)))
}

/// Recurses `depth` levels with a `Tracked` on every frame, suspending on
/// the way back up: `depth + 1` suspends in all, each handing out the
/// length of the log so far and logging the string it gets back. Never
/// inlined: `tests/gdb.rs` sets a breakpoint here.
#[inline(never)]
fn descend(h: &mut SuspendHandle<'_, String, String>, depth: usize, log: &mut Vec<String>) {
    let frame = Tracked::new(format!("frame {depth}"), depth as u64 + 1);
    if depth > 0 {
        descend(h, depth - 1, log);
    }
    let input = h.suspend_with(format!("{}:{}", frame.label, log.len()));
    log.push(input);
    black_box(&frame);
}

/// The churn body: a `Tracked` in the body's frame, a recursion of
/// `depth` frames that suspends `depth + 1` times, then (if `explode`) a
/// panic, else the log as the return value.
fn churn_body(
    id: usize,
    depth: usize,
    explode: bool,
) -> impl FnOnce(&mut SuspendHandle<'_, String, String>, String) -> Vec<String> + 'static {
    let captured = Tracked::new(format!("captured {id}"), id as u64);
    move |h, first| {
        let _guard = Tracked::new(format!("body {id}"), id as u64 + 3);
        let mut log = vec![first];
        descend(h, depth, &mut log);
        if explode {
            panic::panic_any(Boom {
                id,
                note: format!("coroutine {id} exploded after {} inputs", log.len()),
            });
        }
        log.push(captured.label.clone());
        log
    }
}

/// Thousands of coroutines, a quarter each never started, run to
/// completion, dropped while suspended at depth, and panicking.
fn churn(stats: &mut Stats) {
    for id in 0..CHURN {
        let depth = id % 6;
        let fate = id % 4;
        let mut co = Coroutine::with_input(churn_body(id, depth, fate == 3));
        stats.coroutines += 1;
        match fate {
            0 => stats.never_started += 1,
            1 => {
                let mut yielded = 0;
                loop {
                    let input = format!("input {yielded} for {id}");
                    match resume_catching(stats, &mut co, input).expect("no panic") {
                        CoroutineResult::Yield(out) => {
                            assert!(out.starts_with("frame "), "{out}");
                            yielded += 1;
                        }
                        CoroutineResult::Return(log) => {
                            assert_eq!(log.len(), depth + 3);
                            assert_eq!(log[0], format!("input 0 for {id}"));
                            assert_eq!(log[depth + 2], format!("captured {id}"));
                            break;
                        }
                    }
                }
                assert_eq!(yielded, depth + 1);
                assert!(co.is_completed());
                stats.completed += 1;
            }
            2 => {
                // Resume into the deepest frame (and one more when there is
                // room), then drop with the whole recursion on the stack.
                let steps = 1 + (depth > 0) as usize;
                for step in 0..steps {
                    let result = resume_catching(stats, &mut co, format!("step {step}"));
                    assert!(matches!(result, Ok(CoroutineResult::Yield(_))));
                }
                stats.unwound += 1;
            }
            _ => {
                let mut outcome = Ok(CoroutineResult::Yield(String::new()));
                while let Ok(CoroutineResult::Yield(_)) = outcome {
                    outcome = resume_catching(stats, &mut co, format!("to {id}"));
                }
                let payload = outcome.expect_err("the body panics");
                let boom = payload.downcast::<Boom>().expect("a Boom payload");
                assert_eq!(boom.id, id);
                assert_eq!(
                    boom.note,
                    format!("coroutine {id} exploded after {} inputs", depth + 2)
                );
                assert!(co.is_completed());
                stats.panics += 1;
            }
        }
        drop(co);
        assert_eq!(
            live(),
            0,
            "coroutine {id} (fate {fate}) left values undropped"
        );
    }
}

/// A body that catches the unwind of its own drop and suspends again, a few
/// times, handing out `Tracked` values the drop must dispose of.
fn stubborn(stats: &mut Stats) {
    for id in 0..50 {
        let mut co = Coroutine::yielding(move |h: &mut SuspendHandle<'_, (), Tracked>| {
            let _guard = Tracked::new("stubborn guard", id);
            let mut caught = 0;
            while caught < 3 {
                let value = Tracked::new("stubborn yield", id + caught);
                if panic::catch_unwind(AssertUnwindSafe(|| h.suspend_with(value))).is_err() {
                    caught += 1;
                }
            }
            caught
        });
        stats.coroutines += 1;
        stats.resumes += 2;
        drop(co.resume().into_yield().expect("a value"));
        drop(co.resume().into_yield().expect("another value"));
        drop(co);
        stats.cancels_caught += 3;
        stats.unwound += 1;
        assert_eq!(live(), 0);
    }
}

/// Hundreds of coroutines alive at once, resumed round-robin, then dropped
/// in every state.
fn crowd(stats: &mut Stats) {
    let mut crowd: Vec<Coroutine<String, String, Vec<String>>> = (0..CROWD)
        .map(|id| Coroutine::with_input(churn_body(id, id % 4, false)))
        .collect();
    stats.coroutines += CROWD;
    for round in 0..3 {
        for (id, co) in crowd.iter_mut().enumerate() {
            // Leave every fifth unstarted, and skip finished ones.
            if id % 5 == 0 || co.is_completed() {
                continue;
            }
            match resume_catching(stats, co, format!("round {round}")).expect("no panic") {
                CoroutineResult::Yield(_) => {}
                CoroutineResult::Return(log) => {
                    assert!(log.len() >= 3);
                    stats.completed += 1;
                }
            }
        }
    }
    for co in &crowd {
        match (co.is_started(), co.is_completed()) {
            (false, _) => stats.never_started += 1,
            (true, false) => stats.unwound += 1,
            (true, true) => {}
        }
    }
    // Drop in an interleaved order, not just LIFO.
    let mut index = 0;
    while !crowd.is_empty() {
        index = (index + 7) % crowd.len();
        drop(crowd.swap_remove(index));
    }
    assert_eq!(live(), 0);
}

/// The innermost level of a nest: yields a few `Tracked`s, or panics.
fn inner(id: usize, explode: bool) -> Generator<Tracked> {
    Generator::new(move |h| {
        let _guard = Tracked::new("inner guard", id as u64);
        for i in 0..3 {
            h.suspend_with(Tracked::new(format!("inner {id}.{i}"), i));
        }
        if explode {
            panic::panic_any(Boom {
                id,
                note: "inner".into(),
            });
        }
    })
}

/// Three levels: main drives `outer`, which drives a `middle`, which drives
/// an inner generator and relays the seeds of what it yields.
fn nest(stats: &mut Stats) {
    for id in 0..NESTS {
        let explode = id % 3 == 1;
        let mut outer = Coroutine::yielding(move |h: &mut SuspendHandle<'_, (), u64>| {
            let _guard = Tracked::new("outer guard", 1);
            let mut middle = Coroutine::yielding(move |h: &mut SuspendHandle<'_, (), u64>| {
                let _guard = Tracked::new("middle guard", 2);
                let mut total = 0;
                for value in inner(id, explode) {
                    total += value.seed();
                    h.suspend_with(value.seed());
                }
                total
            });
            loop {
                match middle.resume() {
                    CoroutineResult::Yield(seed) => h.suspend_with(seed * 10),
                    CoroutineResult::Return(total) => return total,
                }
            }
        });
        stats.coroutines += 1;
        stats.nested += 3;
        match id % 3 {
            // Runs to the end: seeds 0, 1, 2 relayed as 0, 10, 20.
            0 => {
                let mut seen = Vec::new();
                loop {
                    match resume_catching(stats, &mut outer, ()).expect("no panic") {
                        CoroutineResult::Yield(v) => seen.push(v),
                        CoroutineResult::Return(total) => {
                            assert_eq!(total, 3);
                            break;
                        }
                    }
                }
                assert_eq!(seen, [0, 10, 20]);
                stats.completed += 3;
            }
            // The inner generator panics: the payload crosses all levels.
            1 => {
                let mut outcome = Ok(CoroutineResult::Yield(0));
                while let Ok(CoroutineResult::Yield(_)) = outcome {
                    outcome = resume_catching(stats, &mut outer, ());
                }
                let boom = outcome
                    .expect_err("panics")
                    .downcast::<Boom>()
                    .expect("a Boom");
                assert_eq!(
                    *boom,
                    Boom {
                        id,
                        note: "inner".into()
                    }
                );
                stats.panics += 1;
            }
            // Dropped while all three are suspended: unwinding the outer
            // stack drops the middle coroutine, which unwinds its stack and
            // drops the inner one.
            _ => {
                assert_eq!(
                    resume_catching(stats, &mut outer, ()).ok(),
                    Some(CoroutineResult::Yield(0))
                );
                stats.unwound += 3;
            }
        }
        drop(outer);
        assert_eq!(live(), 0, "nest {id}");
    }
}

/// Generators: run to the end, abandoned part-way, and recursing.
fn generators(stats: &mut Stats) {
    fn tree(h: &mut SuspendHandle<'_, (), String>, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        let mid = lo + (hi - lo) / 2;
        let _frame = Tracked::new("tree frame", mid);
        tree(h, lo, mid);
        h.suspend_with(mid.to_string());
        tree(h, mid + 1, hi);
    }
    for id in 0..GENERATORS as u64 {
        let size = 5 + id % 20;
        let walk = Generator::new(move |h| tree(h, 0, size));
        stats.coroutines += 1;
        if id % 2 == 0 {
            let all: Vec<u64> = walk.map(|s| s.parse().expect("a number")).collect();
            assert_eq!(all, (0..size).collect::<Vec<_>>());
            stats.generated += all.len();
            stats.resumes += all.len() + 1;
            stats.completed += 1;
        } else {
            let some: Vec<String> = walk.take(3).collect();
            assert_eq!(some, ["0", "1", "2"]);
            stats.generated += 3;
            stats.resumes += 3;
            stats.unwound += 1;
        }
        assert_eq!(live(), 0);
    }
}

/// Stacks of other sizes (pooled per size), and one stack reused through
/// `into_stack` for a sequence of coroutines.
fn own_stacks(stats: &mut Stats) {
    for id in 0..20usize {
        let size = sure_stack::MIN_STACK_SIZE + 16 * 1024 * (id % 5);
        let mut co = Builder::new()
            .stack_size(size)
            .name(format!("sized {id}"))
            .build_with_input(churn_body(id, 2, false))
            .expect("a stack");
        assert!(co.stack_size() >= size);
        stats.coroutines += 1;
        assert!(matches!(
            resume_catching(stats, &mut co, "sized".into()),
            Ok(CoroutineResult::Yield(_))
        ));
        stats.unwound += 1;
    }
    let mut stack = Coroutine::new(|h| h.suspend()).into_stack();
    stats.coroutines += 1;
    stats.never_started += 1;
    for id in 0..20 {
        let mut co = Builder::new()
            .stack(stack)
            .name("reused")
            .build_yielding(move |h: &mut SuspendHandle<'_, (), Tracked>| {
                h.suspend_with(Tracked::new("reused", id));
                id
            })
            .expect("the stack");
        stats.coroutines += 1;
        stats.resumes += 1;
        assert_eq!(co.resume().into_yield().map(|t| t.seed()), Some(id));
        if id % 2 == 0 {
            stats.resumes += 1;
            assert_eq!(co.resume().into_return(), Some(id));
            stats.completed += 1;
        } else {
            stats.unwound += 1;
        }
        stack = co.into_stack();
    }
    drop(stack);
    assert_eq!(live(), 0);
}

fn main() {
    // The panics below are expected: keep them quiet, but let any other
    // panic (a failed check) report as usual.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<Boom>() {
            default_hook(info);
        }
    }));

    let mut stats = Stats::default();
    churn(&mut stats);
    stubborn(&mut stats);
    crowd(&mut stats);
    nest(&mut stats);
    generators(&mut stats);
    own_stacks(&mut stats);

    let created = CREATED.load(Ordering::Relaxed);
    assert_eq!(live(), 0);
    assert_eq!(stats.panics, CHURN / 4 + NESTS / 3);
    assert_eq!(stats.cancels_caught, 150);
    println!(
        "stress ok: {} coroutines ({} nested), {} resumes, {} completed, {} unwound by drop, \
         {} never started, {} panics caught, {} cancels caught, {} generated, {created} values created and dropped",
        stats.coroutines,
        stats.nested,
        stats.resumes,
        stats.completed,
        stats.unwound,
        stats.never_started,
        stats.panics,
        stats.cancels_caught,
        stats.generated,
    );
}
