//! One resume + suspend round trip of a suspended coroutine, in a loop.
//!
//! - `*/unit`: nothing passes either way (`()` in, `()` out).
//! - `*/u64`: each resume passes a `u64` in, and the suspend hands one out
//!   (the input plus one).
//!
//! Peers: corosensei's `Coroutine<I, Y, ()>` (`resume` / `Yielder::suspend`),
//! generator 0.8's scoped generators (`resume` / `yield_with` for unit,
//! `send` / `yield_` for u64), and `thread/u64`: two OS threads passing a
//! `u64` back and forth over rendezvous channels (`sync_channel(0)`), one
//! round trip being a send and the reply's receive.
//!
//! Every coroutine is resumed once before timing starts, so the loop times
//! only round trips of a coroutine already parked at its suspend. After
//! criterion, the pairs the report's targets compare are timed again in
//! alternation (`sure_bench::paired`).

use std::hint::black_box;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};

/// `sure/unit`: one round trip of a coroutine suspending in a loop.
fn sure_unit() -> impl FnMut() {
    let mut co: sure_coro::Coroutine = sure_coro::Coroutine::new(|h| {
        loop {
            h.suspend();
        }
    });
    let _ = co.resume();
    move || {
        let _ = black_box(co.resume());
    }
}

/// `sure/u64`: a `u64` in, its successor out.
fn sure_u64() -> impl FnMut() {
    let mut co: sure_coro::Coroutine<u64, u64, ()> =
        sure_coro::Coroutine::with_input(|h, mut x: u64| {
            loop {
                x = h.suspend_with(x.wrapping_add(1));
            }
        });
    let _ = co.resume_with(0);
    let mut n = 0u64;
    move || {
        n = n.wrapping_add(1);
        let _ = black_box(co.resume_with(black_box(n)));
    }
}

/// `corosensei/unit`.
fn corosensei_unit() -> impl FnMut() {
    let mut co: corosensei::Coroutine<(), (), ()> = corosensei::Coroutine::new(|y, ()| {
        loop {
            y.suspend(());
        }
    });
    co.resume(());
    move || {
        black_box(co.resume(()));
    }
}

/// `corosensei/u64`.
fn corosensei_u64() -> impl FnMut() {
    let mut co: corosensei::Coroutine<u64, u64, ()> =
        corosensei::Coroutine::new(|y, mut x: u64| {
            loop {
                x = y.suspend(x.wrapping_add(1));
            }
        });
    co.resume(0);
    let mut n = 0u64;
    move || {
        n = n.wrapping_add(1);
        black_box(co.resume(black_box(n)));
    }
}

/// `generator/unit` (generator 0.8).
fn generator_unit() -> impl FnMut() {
    let mut co = generator::Gn::<()>::new_scoped(|mut s| {
        loop {
            s.yield_with(());
        }
    });
    co.resume();
    move || {
        black_box(co.resume());
    }
}

/// `generator/u64`.
fn generator_u64() -> impl FnMut() {
    let mut co = generator::Gn::<u64>::new_scoped(|mut s| {
        let mut x = s.get_yield().unwrap_or(0);
        loop {
            x = s.yield_(x.wrapping_add(1)).unwrap_or(0);
        }
    });
    co.send(0);
    let mut n = 0u64;
    move || {
        n = n.wrapping_add(1);
        black_box(co.send(black_box(n)));
    }
}

/// `thread/u64`: a worker thread echoing `x + 1` for every `x` it receives,
/// over two rendezvous channels.
fn thread(group: &mut BenchmarkGroup<'_, WallTime>) {
    let (to_worker, from_main) = sync_channel::<u64>(0);
    let (to_main, from_worker) = sync_channel::<u64>(0);
    let worker = std::thread::spawn(move || {
        for x in from_main {
            if to_main.send(x.wrapping_add(1)).is_err() {
                break;
            }
        }
    });
    let mut n = 0u64;
    group.bench_function(BenchmarkId::new("thread", "u64"), |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            to_worker.send(black_box(n)).expect("worker alive");
            black_box(from_worker.recv().expect("worker alive"))
        })
    });
    drop(to_worker);
    worker.join().expect("worker thread");
}

/// The `round_trip` group.
fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    sure_bench::bench(&mut group, "sure", "unit", sure_unit());
    sure_bench::bench(&mut group, "sure", "u64", sure_u64());
    sure_bench::bench(&mut group, "corosensei", "unit", corosensei_unit());
    sure_bench::bench(&mut group, "corosensei", "u64", corosensei_u64());
    sure_bench::bench(&mut group, "generator", "unit", generator_unit());
    sure_bench::bench(&mut group, "generator", "u64", generator_u64());
    thread(&mut group);
    group.finish();
}

/// The comparisons the report's targets read (see `sure_bench::paired`).
fn paired() {
    let mut pairs = sure_bench::Pairs::from_args("round_trip");
    pairs.compare(
        "sure/unit",
        "corosensei/unit",
        sure_unit(),
        corosensei_unit(),
    );
    pairs.compare("sure/u64", "corosensei/u64", sure_u64(), corosensei_u64());
    pairs.compare("sure/unit", "generator/unit", sure_unit(), generator_unit());
    pairs.compare("sure/u64", "generator/u64", sure_u64(), generator_u64());
    pairs.write();
}

/// Holds the criterion group, so that the `pub fn` its macro generates is
/// not exported (and needs no docs of its own).
mod group {
    criterion::criterion_group! {
        name = round_trip;
        config = criterion::Criterion::default()
            .warm_up_time(super::Duration::from_secs(1))
            .measurement_time(super::Duration::from_secs(3));
        targets = super::round_trip
    }
}

fn main() {
    group::round_trip();
    paired();
    Criterion::default().configure_from_args().final_summary();
}
