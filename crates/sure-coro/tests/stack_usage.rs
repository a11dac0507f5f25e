//! Peak stack usage: per coroutine (exact to within a page), across a
//! pooled stack's users, after a reset, and as the pools' high-water mark.

mod common;

use std::hint::black_box;
use std::io;

use sure_coro::{Builder, Coroutine, Stack, grow, remaining_stack, with_thread_pool};
use sure_stack::page_size;

const KIB: usize = 1024;

/// Uses about `kib` KiB of stack, one 1 KiB frame per level (under
/// AddressSanitizer the arrays live on its fake stack, so less), and
/// returns the stack left at the deepest level: what the figures are
/// checked against, wherever the locals live.
#[inline(never)]
fn dig(kib: usize) -> usize {
    let frame = black_box([1u8; 1024]);
    if kib <= 1 {
        return remaining_stack().unwrap() + usize::from(frame[0]) - 1;
    }
    dig(kib - 1) + usize::from(frame[1]) - 1
}

/// A coroutine on a stack of its own (no earlier users) that digs `kib`
/// KiB deep, then suspends with how many bytes below its top it reached.
fn digger(kib: usize) -> Coroutine<(), usize> {
    let stack = Stack::allocate_at_least(1024 * KIB).unwrap();
    Builder::new()
        .stack(stack)
        .build_yielding(move |h| {
            let left = dig(kib);
            h.suspend_with(1024 * KIB - left);
        })
        .unwrap()
}

#[test]
fn the_peak_is_the_deepest_point_to_within_a_page() {
    for kib in [16, 100, 200] {
        let mut co = digger(kib);
        let before = co.peak_stack_usage().unwrap();
        // Only the top: the root, written when the coroutine was built.
        assert!(before <= page_size(), "{kib}: {before}");
        let reached = co.resume().into_yield().unwrap();
        let peak = co.peak_stack_usage().unwrap();
        assert!(reached > kib * 64, "{kib} KiB deep reached only {reached}");
        // The peak covers the deepest stack pointer seen, and the page it
        // lies in, and little more: what ran below it, the calls that read
        // it (and under AddressSanitizer its runtime, which instrumented
        // frames call to allocate their fake frames, a few pages deeper).
        let below = if cfg!(feature = "asan") {
            32 * KIB
        } else {
            page_size()
        };
        assert!(peak >= reached, "{kib}: reached {reached}, peak {peak}");
        assert!(
            peak <= reached + page_size() + below,
            "{kib}: reached {reached}, peak {peak}"
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
    assert!(own > 0 && own < deep_peak, "{own} against {deep_peak}");
}

#[test]
fn resetting_a_suspended_coroutine_keeps_what_it_uses() {
    let mut co = Builder::new()
        .stack(Stack::allocate_at_least(512 * KIB).unwrap())
        .build_yielding(|h| {
            let left = dig(100);
            // Locals that live across the suspend, and across the reset.
            let kept: Vec<u64> = (0..64).collect();
            let on_stack = black_box([7u8; 3000]);
            h.suspend_with(512 * KIB - left);
            kept.iter().sum::<u64>() + on_stack.iter().map(|&b| u64::from(b)).sum::<u64>()
        })
        .unwrap();
    let reached = co.resume().into_yield().unwrap();
    let deep = co.peak_stack_usage().unwrap();
    assert!(deep >= reached);
    co.reset_peak_stack_usage().unwrap();
    let after = co.peak_stack_usage().unwrap();
    assert!(after < reached, "{after} against {reached}");
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
