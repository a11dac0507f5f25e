//! Many coroutines: 10,000 suspended coroutines resumed in rotation. One
//! iteration resumes the next one, which suspends again at once.
//!
//! Unlike a tight loop over one coroutine, every resume here lands on a
//! stack (and a coroutine object) that was last touched 9,999 resumes ago:
//! the cost includes the cache and TLB misses of reaching it, which is what
//! a scheduler over many idle coroutines pays.
//!
//! sure's coroutines use their default 256 KiB pooled stacks (the pool is
//! far smaller than 10,000, so most are freshly mapped); corosensei's use
//! its `DefaultStack` (1 MiB). Only the touched pages matter here.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;

/// How many coroutines take turns.
const COUNT: usize = 10_000;

/// `sure/10000`: resumes the next of [`COUNT`] suspended coroutines.
fn sure() -> impl FnMut() {
    let mut coroutines: Vec<sure_coro::Coroutine> = (0..COUNT)
        .map(|_| {
            let mut co: sure_coro::Coroutine = sure_coro::Coroutine::new(|h| {
                loop {
                    h.suspend();
                }
            });
            let _ = co.resume();
            co
        })
        .collect();
    let mut next = 0;
    move || {
        let _ = black_box(coroutines[next].resume());
        next += 1;
        if next == COUNT {
            next = 0;
        }
    }
}

/// `corosensei/10000`.
fn corosensei() -> impl FnMut() {
    let mut coroutines: Vec<corosensei::Coroutine<(), (), ()>> = (0..COUNT)
        .map(|_| {
            let mut co: corosensei::Coroutine<(), (), ()> = corosensei::Coroutine::new(|y, ()| {
                loop {
                    y.suspend(());
                }
            });
            co.resume(());
            co
        })
        .collect();
    let mut next = 0;
    move || {
        black_box(coroutines[next].resume(()));
        next += 1;
        if next == COUNT {
            next = 0;
        }
    }
}

/// The `many` group.
fn many(c: &mut Criterion) {
    let mut group = c.benchmark_group("many");
    sure_bench::bench(&mut group, "sure", COUNT, sure());
    sure_bench::bench(&mut group, "corosensei", COUNT, corosensei());
    group.finish();
}

/// Holds the criterion group, so that the `pub fn` its macro generates is
/// not exported (and needs no docs of its own).
mod group {
    criterion::criterion_group! {
        name = many;
        config = criterion::Criterion::default()
            .warm_up_time(super::Duration::from_secs(1))
            .measurement_time(super::Duration::from_secs(3));
        targets = super::many
    }
}

criterion::criterion_main!(group::many);
