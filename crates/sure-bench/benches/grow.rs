//! Stack growth against stacker, the crate Rust uses for deep recursion,
//! on the thread's own stack (where stacker is right; inside a coroutine
//! its `remaining_stack` is not, so there is nothing to compare there).
//!
//! - `grow`: `grow(1 MiB, f)` of a trivial `f`. stacker maps, protects and
//!   unmaps a segment every time; sure takes it from the thread's pool.
//! - `maybe_grow`: `maybe_grow(64 KiB, 1 MiB, f)` with the stack to spare,
//!   so `f` runs in place: the check alone (`remaining_stack`).
//! - `recursion`: a 10,000-level recursion with 1 KiB frames through
//!   `maybe_grow(64 KiB, 1 MiB, ..)`: about 10 MiB of stack, so about 10
//!   grows and 10,000 checks per iteration.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_main};

/// The segment size of every grow.
const SEGMENT: usize = 1024 * 1024;

/// The red zone of every check.
const RED_ZONE: usize = 64 * 1024;

/// The depth of the `recursion` bench.
const LEVELS: usize = 10_000;

/// One implementation's `grow` and `maybe_grow`, as plain functions.
struct Growth {
    name: &'static str,
    grow: fn(usize, &mut dyn FnMut() -> usize) -> usize,
    maybe_grow: fn(usize, usize, &mut dyn FnMut() -> usize) -> usize,
}

const SURE: Growth = Growth {
    name: "sure",
    grow: |size, f| sure_coro::grow(size, f),
    maybe_grow: |red_zone, size, f| sure_coro::maybe_grow(red_zone, size, f),
};

const STACKER: Growth = Growth {
    name: "stacker",
    grow: |size, f| stacker::grow(size, f),
    maybe_grow: |red_zone, size, f| stacker::maybe_grow(red_zone, size, f),
};

/// Recurses `levels` deep through `maybe_grow`, with a 1 KiB frame per
/// level; returns the number of levels.
#[inline(never)]
fn recurse(growth: &Growth, levels: usize) -> usize {
    let frame = black_box([1u8; 1024]);
    if levels == 0 {
        return usize::from(frame[0]) - 1;
    }
    (growth.maybe_grow)(RED_ZONE, SEGMENT, &mut || recurse(growth, levels - 1))
        + usize::from(frame[1])
}

/// The `grow` group.
fn growth(c: &mut Criterion) {
    let mut group = c.benchmark_group("grow");
    for growth in [SURE, STACKER] {
        assert_eq!(recurse(&growth, LEVELS), LEVELS, "{} recurses", growth.name);
        group.bench_function(BenchmarkId::new(growth.name, "grow"), |b| {
            b.iter(|| (growth.grow)(black_box(SEGMENT), &mut || black_box(1)))
        });
        group.bench_function(BenchmarkId::new(growth.name, "maybe_grow"), |b| {
            b.iter(|| (growth.maybe_grow)(black_box(RED_ZONE), SEGMENT, &mut || black_box(1)))
        });
        group.bench_function(BenchmarkId::new(growth.name, "recursion"), |b| {
            b.iter(|| recurse(&growth, black_box(LEVELS)))
        });
    }
    group.finish();
}

/// Holds the criterion group, so that the `pub fn` its macro generates is
/// not exported (and needs no docs of its own).
mod group {
    criterion::criterion_group! {
        name = grow;
        config = criterion::Criterion::default()
            .warm_up_time(super::Duration::from_secs(1))
            .measurement_time(super::Duration::from_secs(3));
        targets = super::growth
    }
}

criterion_main!(group::grow);
