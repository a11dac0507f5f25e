//! Peak stack usage: per coroutine (exact to within a page), across a
//! pooled stack's users, after a reset, and as the pools' high-water mark.

mod common;

use std::hint::black_box;
use std::io;

use sure_coro::{Builder, Coroutine, Stack, grow, with_thread_pool};
use sure_stack::page_size;

const KIB: usize = 1024;

/// Uses about `kib` KiB of stack: one 1 KiB frame per level.
#[inline(never)]
fn dig(kib: usize) -> usize {
    let frame = black_box([1u8; 1024]);
    if kib <= 1 {
        return usize::from(frame[0]);
    }
    dig(kib - 1) + usize::from(frame[1])
}

/// A coroutine on a stack of its own (no earlier users) that digs `kib`
/// KiB deep, then suspends.
fn digger(kib: usize) -> Coroutine {
    let stack = Stack::allocate_at_least(1024 * KIB).unwrap();
    Builder::new()
        .stack(stack)
        .build(move |h| {
            black_box(dig(kib));
            h.suspend();
        })
        .unwrap()
}

#[test]
fn the_peak_follows_the_deepest_point_within_a_page_and_some_frames() {
    for kib in [16, 100, 200] {
        let mut co = digger(kib);
        let before = co.peak_stack_usage().unwrap();
        // Only the top: the root, written when the coroutine was built.
        assert!(before <= page_size(), "{kib}: {before}");
        let _ = co.resume();
        let peak = co.peak_stack_usage().unwrap();
        // Each level's frame is a little over 1 KiB (more in a debug build);
        // the root, the trampoline and the test add a few KiB.
        assert!(peak >= kib * KIB, "{kib} KiB deep, peak {peak}");
        assert!(
            peak <= 3 * kib * KIB + 16 * KIB,
            "{kib} KiB deep, peak {peak}"
        );
        assert_eq!(peak % page_size(), 0);
    }
}

#[test]
fn a_pooled_stack_remembers_its_earlier_users_until_reset() {
    // Run deep on a pooled stack, give it back, take it again.
    let mut deep = Coroutine::new(|_h| black_box(dig(60)));
    let _ = deep.resume();
    let deep_peak = deep.peak_stack_usage().unwrap();
    drop(deep);
    let mut shallow = Coroutine::new(|h| {
        black_box(dig(4));
        h.suspend();
    });
    // The LIFO pool hands the same stack out again: its pages are still
    // there, and so is the deep figure.
    assert!(shallow.peak_stack_usage().unwrap() >= deep_peak);
    shallow.reset_peak_stack_usage().unwrap();
    assert!(shallow.peak_stack_usage().unwrap() <= 2 * page_size());
    let _ = shallow.resume();
    let own = shallow.peak_stack_usage().unwrap();
    assert!(
        own >= 4 * KIB && own < deep_peak,
        "{own} against {deep_peak}"
    );
}

#[test]
fn resetting_a_suspended_coroutine_keeps_what_it_uses() {
    let mut co = Builder::new()
        .stack(Stack::allocate_at_least(512 * KIB).unwrap())
        .build_yielding(|h| {
            black_box(dig(100));
            // Locals that live across the suspend, and across the reset.
            let kept: Vec<u64> = (0..64).collect();
            let on_stack = black_box([7u8; 3000]);
            h.suspend_with(0);
            kept.iter().sum::<u64>() + on_stack.iter().map(|&b| u64::from(b)).sum::<u64>()
        })
        .unwrap();
    let _ = co.resume();
    let deep = co.peak_stack_usage().unwrap();
    assert!(deep >= 100 * KIB);
    co.reset_peak_stack_usage().unwrap();
    let after = co.peak_stack_usage().unwrap();
    assert!(after < 32 * KIB, "{after}");
    assert_eq!(co.resume().into_return(), Some(63 * 64 / 2 + 7 * 3000));
    // And a completed coroutine keeps only its root.
    co.reset_peak_stack_usage().unwrap();
    assert!(co.peak_stack_usage().unwrap() <= page_size());
}

#[test]
fn a_coroutine_suspended_in_a_segment_is_not_reset() {
    let mut co = Coroutine::new(|h| grow(128 * KIB, || h.suspend()));
    let _ = co.resume();
    let error = co.reset_peak_stack_usage().unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ResourceBusy);
    assert!(error.to_string().contains("sure_coro::grow"), "{error}");
    assert!(co.resume().is_return());
}

#[test]
fn the_pool_reports_its_high_water_mark() {
    with_thread_pool(|pool| pool.clear());
    assert_eq!(with_thread_pool(|pool| pool.peak_usage().unwrap()), 0);
    let mut co = Coroutine::new(|_h| black_box(dig(50)));
    let _ = co.resume();
    let peak = co.peak_stack_usage().unwrap();
    drop(co);
    assert_eq!(with_thread_pool(|pool| pool.peak_usage().unwrap()), peak);
}
