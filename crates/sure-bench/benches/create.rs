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
//! - `sure/borrowing`: `ScopedCoroutine::new`, whose body borrows a local,
//!   driven inside `scope`, on the default pooled stack.
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

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_main};

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

/// `sure/pooled`, `sure/pooled-returning`, `sure/sized-pool`,
/// `sure/borrowing` and `sure/fresh-stack`.
fn sure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.bench_function(BenchmarkId::new("sure", "pooled"), |b| {
        b.iter(|| sure_life(sure_coro::Coroutine::new(|h| h.suspend())))
    });
    group.bench_function(BenchmarkId::new("sure", "pooled-returning"), |b| {
        b.iter(|| {
            let mut co = sure_coro::Coroutine::new(|_| ());
            let _ = black_box(co.resume());
        })
    });
    group.bench_function(BenchmarkId::new("sure", "sized-pool"), |b| {
        b.iter(|| {
            let co = sure_coro::Builder::new()
                .stack_size(SIZED)
                .build(|h| h.suspend())
                .expect("a pooled stack");
            sure_life(co)
        })
    });
    group.bench_function(BenchmarkId::new("sure", "borrowing"), |b| {
        let mut steps = 0u64;
        b.iter(|| sure_bench::borrowing_life(&mut steps));
        black_box(steps);
    });
    group.bench_function(BenchmarkId::new("sure", "fresh-stack"), |b| {
        b.iter(|| {
            let stack = sure_stack::Stack::allocate_at_least(sure_stack::DEFAULT_STACK_SIZE)
                .expect("a fresh stack");
            let co = sure_coro::Builder::new()
                .stack(stack)
                .build(|h| h.suspend())
                .expect("room for the body");
            sure_life(co)
        })
    });
}

/// `corosensei/fresh-stack`, `corosensei/reused-stack` and
/// `corosensei/reused-stack-returning`.
fn corosensei(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.bench_function(BenchmarkId::new("corosensei", "fresh-stack"), |b| {
        b.iter(|| {
            let mut co: corosensei::Coroutine<(), (), ()> =
                corosensei::Coroutine::new(|y, ()| y.suspend(()));
            corosensei_life(&mut co);
        })
    });
    let mut stack = Some(corosensei::stack::DefaultStack::default());
    group.bench_function(BenchmarkId::new("corosensei", "reused-stack"), |b| {
        b.iter(|| {
            let taken = stack.take().expect("the stack is always put back");
            let mut co: corosensei::Coroutine<(), (), ()> =
                corosensei::Coroutine::with_stack(taken, |y, ()| y.suspend(()));
            corosensei_life(&mut co);
            stack = Some(co.into_stack());
        })
    });
    group.bench_function(
        BenchmarkId::new("corosensei", "reused-stack-returning"),
        |b| {
            b.iter(|| {
                let taken = stack.take().expect("the stack is always put back");
                let mut co: corosensei::Coroutine<(), (), ()> =
                    corosensei::Coroutine::with_stack(taken, |_, ()| ());
                black_box(co.resume(()));
                stack = Some(co.into_stack());
            })
        },
    );
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
    sure(&mut group);
    corosensei(&mut group);
    thread(&mut group);
    group.finish();
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

criterion_main!(group::create);
