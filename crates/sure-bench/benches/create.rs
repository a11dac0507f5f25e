//! A coroutine's whole life: build it, resume it twice (its body suspends
//! once, then returns), drop it. The same body for every implementation.
//! The `-returning` benches run a body that returns at once, resumed once:
//! the life of a coroutine that never suspends, where creating and ending
//! it is all there is.
//!
//! - `sure/pooled`: `Coroutine::new`, whose default 256 KiB stack comes from
//!   the per-thread pool and goes back to it on drop: after the first
//!   iteration, no system call and no page fault.
//! - `sure/pooled-returning`: the same, the body returning at once.
//! - `sure/sized-pool`: `Builder::new().stack_size(512 KiB)`, a stack from
//!   the thread's pool of that size rather than the default one.
//! - `sure/borrowing`: `ScopedCoroutine::new`, whose body counts into a
//!   local it borrows, driven inside `scope`, on the default pooled stack.
//! - `sure/counting`: its `'static` counterpart, `Coroutine::new` with a
//!   body counting into a leaked `&'static` counter: the same work, so the
//!   borrowing coroutine is compared with this one.
//! - `sure/fresh-stack`: `Builder::new().stack(..)` on a new
//!   `Stack::allocate_at_least(256 KiB)`, which is the caller's and never
//!   pooled: every iteration maps a new guarded stack, faults its top page
//!   in, and unmaps it.
//! - `corosensei/fresh-stack`: `corosensei::Coroutine::new`, a new
//!   `DefaultStack` (1 MiB, guarded) every iteration.
//! - `corosensei/reused-stack`: `Coroutine::with_stack` on one
//!   `DefaultStack`, taken back with `into_stack` every iteration.
//! - `corosensei/reused-stack-returning`: the same, the body returning at
//!   once.
//! - `thread/spawn-join`: `std::thread::spawn` of an empty closure, then
//!   `join`: the cost a coroutine saves over a thread.
//!
//! After criterion, the pairs the report's targets compare are timed again
//! in alternation (`sure_bench::paired`).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};

/// Drives a sure coroutine through its life: suspend once, return.
#[inline(always)]
fn sure_life(mut co: sure_coro::Coroutine) {
    let _ = black_box(co.resume());
    let _ = black_box(co.resume());
}

/// Drives a corosensei coroutine through its life: suspend once, return.
#[inline(always)]
fn corosensei_life<S: corosensei::stack::Stack>(co: &mut corosensei::Coroutine<(), (), (), S>) {
    black_box(co.resume(()));
    black_box(co.resume(()));
}

/// The stack size of `sure/sized-pool`: not the default, so its stacks
/// come from a pool of their own.
const SIZED: usize = 512 * 1024;

/// `sure/pooled`.
fn sure_pooled() -> impl FnMut() {
    || sure_life(sure_coro::Coroutine::new(|h| h.suspend()))
}

/// `sure/pooled-returning`.
fn sure_pooled_returning() -> impl FnMut() {
    || {
        let mut co = sure_coro::Coroutine::new(|_| ());
        let _ = black_box(co.resume());
    }
}

/// `sure/sized-pool`.
fn sure_sized_pool() -> impl FnMut() {
    || {
        let co = sure_coro::Builder::new()
            .stack_size(SIZED)
            .build(|h| h.suspend())
            .expect("a pooled stack");
        sure_life(co)
    }
}

/// `sure/borrowing`.
fn sure_borrowing() -> impl FnMut() {
    let mut steps = 0u64;
    move || sure_bench::borrowing_life(&mut steps)
}

/// `sure/counting`.
fn sure_counting() -> impl FnMut() {
    let steps: &'static std::cell::Cell<u64> = Box::leak(Box::default());
    move || sure_bench::counting_life(steps)
}

/// `sure/fresh-stack`.
fn sure_fresh_stack() -> impl FnMut() {
    || {
        let stack = sure_stack::Stack::allocate_at_least(sure_stack::DEFAULT_STACK_SIZE)
            .expect("a fresh stack");
        let co = sure_coro::Builder::new()
            .stack(stack)
            .build(|h| h.suspend())
            .expect("room for the body");
        sure_life(co)
    }
}

/// `corosensei/fresh-stack`.
fn corosensei_fresh_stack() -> impl FnMut() {
    || {
        let mut co: corosensei::Coroutine<(), (), ()> =
            corosensei::Coroutine::new(|y, ()| y.suspend(()));
        corosensei_life(&mut co);
    }
}

/// `corosensei/reused-stack`.
fn corosensei_reused_stack() -> impl FnMut() {
    let mut stack = Some(corosensei::stack::DefaultStack::default());
    move || {
        let taken = stack.take().expect("the stack is always put back");
        let mut co: corosensei::Coroutine<(), (), ()> =
            corosensei::Coroutine::with_stack(taken, |y, ()| y.suspend(()));
        corosensei_life(&mut co);
        stack = Some(co.into_stack());
    }
}

/// `corosensei/reused-stack-returning`.
fn corosensei_reused_stack_returning() -> impl FnMut() {
    let mut stack = Some(corosensei::stack::DefaultStack::default());
    move || {
        let taken = stack.take().expect("the stack is always put back");
        let mut co: corosensei::Coroutine<(), (), ()> =
            corosensei::Coroutine::with_stack(taken, |_, ()| ());
        black_box(co.resume(()));
        stack = Some(co.into_stack());
    }
}

/// `thread/spawn-join`.
fn thread(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.bench_function(BenchmarkId::new("thread", "spawn-join"), |b| {
        b.iter(|| std::thread::spawn(|| {}).join().expect("empty thread"))
    });
}

/// The `create` group.
fn create(c: &mut Criterion) {
    let mut group = c.benchmark_group("create");
    sure_bench::bench(&mut group, "sure", "pooled", sure_pooled());
    sure_bench::bench(
        &mut group,
        "sure",
        "pooled-returning",
        sure_pooled_returning(),
    );
    sure_bench::bench(&mut group, "sure", "sized-pool", sure_sized_pool());
    sure_bench::bench(&mut group, "sure", "borrowing", sure_borrowing());
    sure_bench::bench(&mut group, "sure", "counting", sure_counting());
    sure_bench::bench(&mut group, "sure", "fresh-stack", sure_fresh_stack());
    sure_bench::bench(
        &mut group,
        "corosensei",
        "fresh-stack",
        corosensei_fresh_stack(),
    );
    sure_bench::bench(
        &mut group,
        "corosensei",
        "reused-stack",
        corosensei_reused_stack(),
    );
    sure_bench::bench(
        &mut group,
        "corosensei",
        "reused-stack-returning",
        corosensei_reused_stack_returning(),
    );
    thread(&mut group);
    group.finish();
}

/// The comparisons the report's targets read (see `sure_bench::paired`).
fn paired() {
    let mut pairs = sure_bench::Pairs::from_args("create");
    pairs.compare(
        "sure/pooled",
        "corosensei/reused-stack",
        sure_pooled(),
        corosensei_reused_stack(),
    );
    pairs.compare(
        "sure/pooled-returning",
        "corosensei/reused-stack-returning",
        sure_pooled_returning(),
        corosensei_reused_stack_returning(),
    );
    pairs.compare(
        "sure/sized-pool",
        "sure/pooled",
        sure_sized_pool(),
        sure_pooled(),
    );
    pairs.compare(
        "sure/borrowing",
        "sure/counting",
        sure_borrowing(),
        sure_counting(),
    );
    pairs.compare(
        "corosensei/fresh-stack",
        "sure/pooled",
        corosensei_fresh_stack(),
        sure_pooled(),
    );
    pairs.write();
}

/// Holds the criterion group, so that the `pub fn` its macro generates is
/// not exported (and needs no docs of its own).
mod group {
    criterion::criterion_group! {
        name = create;
        config = criterion::Criterion::default()
            .warm_up_time(super::Duration::from_secs(1))
            .measurement_time(super::Duration::from_secs(3))
            .sample_size(50);
        targets = super::create
    }
}

fn main() {
    group::create();
    paired();
    Criterion::default().configure_from_args().final_summary();
}
