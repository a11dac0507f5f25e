//! Summing 1,000 values produced by a generator, the generator built inside
//! the timed loop: the cost of using a generator for a short sequence, from
//! creation to exhaustion.
//!
//! - `sure/1000`: `sure_coro::Generator` (a pooled 256 KiB stack, so the
//!   creation makes no system call once the pool is warm).
//! - `plain-iterator/1000`: `(0..1000u64)` with every value passed through
//!   `black_box`, the floor a generator is compared with.
//! - `generator/1000`: generator 0.8's `Gn::new_scoped`, which maps a new
//!   stack for every generator.
//!
//! Each benchmark checks once, outside the timing, that it sums 0..1000.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_main};

/// Values per generator.
const COUNT: u64 = 1000;

/// The sum of `0..COUNT`.
const EXPECTED: u64 = COUNT * (COUNT - 1) / 2;

/// Sums `0..count` from a sure generator.
fn sure(count: u64) -> u64 {
    let values = sure_coro::Generator::new(move |h| {
        for i in 0..count {
            h.suspend_with(i);
        }
    });
    values.sum()
}

/// Sums `0..count` from a plain iterator.
fn plain_iterator(count: u64) -> u64 {
    (0..count).map(black_box).sum()
}

/// Sums `0..count` from a generator 0.8 generator (`count` > 0).
fn generator(count: u64) -> u64 {
    // The closure's return value is the generator's last item, so it yields
    // all but the last value and returns that one (`done!()` would end the
    // generator with a panic, and pay for its unwinding).
    let values = generator::Gn::<()>::new_scoped(move |mut s| {
        for i in 0..count - 1 {
            s.yield_with(i);
        }
        count - 1
    });
    values.sum()
}

/// A way to sum `0..count`, and its function name in the group.
type Case = (&'static str, fn(u64) -> u64);

/// The `generator` group.
fn generators(c: &mut Criterion) {
    let mut group = c.benchmark_group("generator");
    let cases: [Case; 3] = [
        ("sure", sure),
        ("plain-iterator", plain_iterator),
        ("generator", generator),
    ];
    for (name, sum) in cases {
        assert_eq!(sum(COUNT), EXPECTED, "{name} sums 0..{COUNT}");
        group.bench_function(BenchmarkId::new(name, COUNT), |b| {
            b.iter(|| sum(black_box(COUNT)))
        });
    }
    group.finish();
}

/// Holds the criterion group, so that the `pub fn` its macro generates is
/// not exported (and needs no docs of its own).
mod group {
    criterion::criterion_group! {
        name = generator;
        config = criterion::Criterion::default()
            .warm_up_time(super::Duration::from_secs(1))
            .measurement_time(super::Duration::from_secs(3));
        targets = super::generators
    }
}

criterion_main!(group::generator);
