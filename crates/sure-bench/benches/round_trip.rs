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
//! only round trips of a coroutine already parked at its suspend.

use std::hint::black_box;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_main};

/// `sure/unit` and `sure/u64`.
fn sure(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut unit: sure_coro::Coroutine = sure_coro::Coroutine::new(|h| {
        loop {
            h.suspend();
        }
    });
    let _ = unit.resume();
    group.bench_function(BenchmarkId::new("sure", "unit"), |b| {
        b.iter(|| black_box(unit.resume()))
    });

    let mut value: sure_coro::Coroutine<u64, u64, ()> =
        sure_coro::Coroutine::with_input(|h, mut x: u64| {
            loop {
                x = h.suspend_with(x.wrapping_add(1));
            }
        });
    let _ = value.resume_with(0);
    let mut n = 0u64;
    group.bench_function(BenchmarkId::new("sure", "u64"), |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(value.resume_with(black_box(n)))
        })
    });
}

/// `corosensei/unit` and `corosensei/u64`.
fn corosensei(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut unit: corosensei::Coroutine<(), (), ()> = corosensei::Coroutine::new(|y, ()| {
        loop {
            y.suspend(());
        }
    });
    unit.resume(());
    group.bench_function(BenchmarkId::new("corosensei", "unit"), |b| {
        b.iter(|| black_box(unit.resume(())))
    });

    let mut value: corosensei::Coroutine<u64, u64, ()> =
        corosensei::Coroutine::new(|y, mut x: u64| {
            loop {
                x = y.suspend(x.wrapping_add(1));
            }
        });
    value.resume(0);
    let mut n = 0u64;
    group.bench_function(BenchmarkId::new("corosensei", "u64"), |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(value.resume(black_box(n)))
        })
    });
}

/// `generator/unit` and `generator/u64` (generator 0.8).
fn generator(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut unit = generator::Gn::<()>::new_scoped(|mut s| {
        loop {
            s.yield_with(());
        }
    });
    unit.resume();
    group.bench_function(BenchmarkId::new("generator", "unit"), |b| {
        b.iter(|| black_box(unit.resume()))
    });

    let mut value = generator::Gn::<u64>::new_scoped(|mut s| {
        let mut x = s.get_yield().unwrap_or(0);
        loop {
            x = s.yield_(x.wrapping_add(1)).unwrap_or(0);
        }
    });
    value.send(0);
    let mut n = 0u64;
    group.bench_function(BenchmarkId::new("generator", "u64"), |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(value.send(black_box(n)))
        })
    });
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
    sure(&mut group);
    corosensei(&mut group);
    generator(&mut group);
    thread(&mut group);
    group.finish();
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

criterion_main!(group::round_trip);
