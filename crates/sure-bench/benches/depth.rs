//! Suspending from deep inside a call stack: the body recurses N calls deep
//! (an `#[inline(never)]` function), suspends at the bottom, and when
//! resumed returns all the way up and recurses again. One iteration is one
//! resume, which runs until the next suspend: N returns, N calls and a
//! round trip.
//!
//! A tight resume/suspend loop touches the same few stack words and keeps
//! the return-stack buffer in step; here each switch lands at the bottom of
//! a stack of real frames that must be unwound by ordinary returns, which
//! is what a coroutine suspending inside library code does.
//!
//! After criterion, the pairs the report's targets compare are timed again
//! in alternation (`sure_bench::paired`).

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;

/// The depths measured.
const DEPTHS: [u32; 3] = [1, 8, 64];

/// Recurses until `depth` frames of this function are on the stack, then
/// suspends. The `black_box` after the recursive call keeps it from being
/// a tail call (or a loop).
#[inline(never)]
fn sure_descend(h: &mut sure_coro::SuspendHandle, depth: u32) -> u32 {
    if depth <= 1 {
        h.suspend();
        1
    } else {
        black_box(sure_descend(h, depth - 1)) + 1
    }
}

/// As [`sure_descend`], for corosensei.
#[inline(never)]
fn corosensei_descend(y: &corosensei::Yielder<(), ()>, depth: u32) -> u32 {
    if depth <= 1 {
        y.suspend(());
        1
    } else {
        black_box(corosensei_descend(y, depth - 1)) + 1
    }
}

/// `sure/<depth>`: a coroutine suspending `depth` frames down, in a loop.
fn sure(depth: u32) -> impl FnMut() {
    let mut co: sure_coro::Coroutine = sure_coro::Coroutine::new(move |h| {
        loop {
            black_box(sure_descend(h, black_box(depth)));
        }
    });
    let _ = co.resume();
    move || {
        let _ = black_box(co.resume());
    }
}

/// `corosensei/<depth>`.
fn corosensei(depth: u32) -> impl FnMut() {
    let mut co: corosensei::Coroutine<(), (), ()> = corosensei::Coroutine::new(move |y, ()| {
        loop {
            black_box(corosensei_descend(y, black_box(depth)));
        }
    });
    co.resume(());
    move || {
        black_box(co.resume(()));
    }
}

/// The `depth` group.
fn depth(c: &mut Criterion) {
    let mut group = c.benchmark_group("depth");
    for depth in DEPTHS {
        sure_bench::bench(&mut group, "sure", depth, sure(depth));
    }
    for depth in DEPTHS {
        sure_bench::bench(&mut group, "corosensei", depth, corosensei(depth));
    }
    group.finish();
}

/// The comparisons the report's targets read (see `sure_bench::paired`).
fn paired() {
    let mut pairs = sure_bench::Pairs::from_args("depth");
    for depth in DEPTHS {
        // The bench id `<library>/<depth>`, kept for the process's life.
        let id = |library: &str| &*Box::leak(format!("{library}/{depth}").into_boxed_str());
        pairs.compare(id("sure"), id("corosensei"), sure(depth), corosensei(depth));
    }
    pairs.write();
}

/// Holds the criterion group, so that the `pub fn` its macro generates is
/// not exported (and needs no docs of its own).
mod group {
    criterion::criterion_group! {
        name = depth;
        config = criterion::Criterion::default()
            .warm_up_time(super::Duration::from_secs(1))
            .measurement_time(super::Duration::from_secs(3));
        targets = super::depth
    }
}

fn main() {
    group::depth();
    paired();
    Criterion::default().configure_from_args().final_summary();
}
