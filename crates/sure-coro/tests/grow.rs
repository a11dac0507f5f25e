//! `remaining_stack`, `grow` and `maybe_grow`: right on every stack (a
//! thread's own, a coroutine's, a segment), nested in any order; pooled;
//! panics, backtraces and dropped coroutines through segments.

mod common;

use std::collections::HashSet;
use std::hint::black_box;

use common::{Log, expect_panic, message};
use sure_coro::{Builder, Coroutine, grow, maybe_grow, remaining_stack};

const KIB: usize = 1024;

/// The stack left, which must be known here.
#[track_caller]
fn left() -> usize {
    remaining_stack().expect("sure knows every stack these tests run on")
}

#[test]
fn the_main_threads_stack_is_known() {
    // The test harness runs tests on spawned threads; this one is too, with
    // the harness's 2 MiB (or RUST_MIN_STACK) stack.
    let here = left();
    assert!(here > 64 * KIB, "{here}");
}

#[test]
fn a_spawned_threads_stack_is_measured_against_its_size() {
    let size = 512 * KIB;
    let here = std::thread::Builder::new()
        .stack_size(size)
        .spawn(left)
        .unwrap()
        .join()
        .unwrap();
    // glibc adds the guard and rounds up; the thread has used a little.
    // Windows may reserve more than asked (wine: at least 1 MiB), and
    // `remaining_stack` tells what it reserved.
    let most = if cfg!(windows) { 1024 * KIB } else { size };
    assert!(here < most + 64 * KIB && here > size - 64 * KIB, "{here}");
}

#[test]
fn a_coroutines_stack_is_measured_against_its_own_size() {
    for size in [64 * KIB, 256 * KIB, 1024 * KIB] {
        let mut co = Builder::new().stack_size(size).build(|_h| left()).unwrap();
        let here = co.resume().into_return().unwrap();
        // Below the top: the root, the trampoline, the test's frames.
        assert!(here < size && here > size - 16 * KIB, "{size}: {here}");
    }
}

#[test]
fn a_segments_stack_is_measured_against_its_size() {
    let outside = left();
    let inside = grow(1024 * KIB, left);
    assert!(inside < 1024 * KIB && inside > 1000 * KIB, "{inside}");
    // And back on the caller's stack, the caller's figure again.
    assert!(left().abs_diff(outside) < 4 * KIB);
}

/// The stack left, deeper and deeper: `levels` frames of about 4 KiB.
#[inline(never)]
fn left_after(levels: usize) -> usize {
    let frame = black_box([0u8; 4096]);
    if levels == 0 {
        return left() + usize::from(frame[0]);
    }
    left_after(levels - 1) + usize::from(frame[1])
}

#[test]
fn the_figure_falls_with_depth() {
    let mut co = Builder::new()
        .stack_size(256 * KIB)
        .build(|_h| (left_after(0), left_after(10)))
        .unwrap();
    let (shallow, deep) = co.resume().into_return().unwrap();
    // Ten levels of 4 KiB frames; under AddressSanitizer the arrays live on
    // its fake stack (use-after-return detection), and only the rest of
    // each frame on the real one.
    let per_level = if cfg!(feature = "asan") { 64 } else { 4 * KIB };
    assert!(shallow - deep >= 10 * per_level, "{shallow} then {deep}");
}

#[test]
fn stacks_nest_in_any_order() {
    // thread -> coroutine (64 KiB) -> segment (1 MiB) -> coroutine (128
    // KiB) -> segment (512 KiB), each measured against its own size, and
    // each again when control comes back to it.
    let mut outer = Builder::new()
        .stack_size(64 * KIB)
        .build_yielding(|h| {
            let on_outer = left();
            h.suspend_with(("outer", on_outer));
            let in_segment = grow(1024 * KIB, || {
                let on_segment = left();
                let mut inner = Builder::new()
                    .stack_size(128 * KIB)
                    .build(|_h| (left(), grow(512 * KIB, left), left()))
                    .unwrap();
                let (on_inner, on_inner_segment, inner_again) =
                    inner.resume().into_return().unwrap();
                (on_segment, on_inner, on_inner_segment, inner_again, left())
            });
            h.suspend_with(("back on outer", left()));
            in_segment
        })
        .unwrap();
    let (_, on_outer) = outer.resume().into_yield().unwrap();
    assert!(on_outer < 64 * KIB && on_outer > 48 * KIB, "{on_outer}");
    let (_, back) = outer.resume().into_yield().unwrap();
    assert!(
        back.abs_diff(on_outer) < 4 * KIB,
        "{back} against {on_outer}"
    );
    let (on_segment, on_inner, on_inner_segment, inner_again, segment_again) =
        outer.resume().into_return().unwrap();
    assert!(
        on_segment < 1024 * KIB && on_segment > 1000 * KIB,
        "{on_segment}"
    );
    assert!(on_inner < 128 * KIB && on_inner > 112 * KIB, "{on_inner}");
    assert!(on_inner_segment < 512 * KIB && on_inner_segment > 496 * KIB);
    assert!(inner_again.abs_diff(on_inner) < 4 * KIB);
    assert!(segment_again.abs_diff(on_segment) < 4 * KIB);
}

/// Recurses `levels` deep, each level through `maybe_grow` with a frame of
/// about 1 KiB, and returns the number of levels it went through.
#[inline(never)]
fn recurse(levels: usize) -> usize {
    let frame = black_box([1u8; 1024]);
    if levels == 0 {
        return usize::from(frame[0]) - 1;
    }
    maybe_grow(32 * KIB, 1024 * KIB, || recurse(levels - 1)) + usize::from(frame[1])
}

#[test]
fn a_small_coroutine_recurses_a_hundred_thousand_levels() {
    let mut co = Builder::new()
        .stack_size(64 * KIB)
        .build(|_h| recurse(100_000))
        .unwrap();
    assert_eq!(co.resume().into_return(), Some(100_000));
}

#[test]
fn grows_reuse_their_segment() {
    // Every grow of a size takes the same pooled stack: no system call
    // after the first, and so the same stack pointer each time.
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        seen.insert(grow(512 * KIB, sure_context::stack_pointer));
    }
    assert_eq!(seen.len(), 1, "{seen:x?}");
}

#[test]
fn the_callback_borrows_from_its_caller() {
    let mut words = vec![String::from("a")];
    grow(64 * KIB, || words.push(String::from("b")));
    let total = maybe_grow(usize::MAX, 64 * KIB, || {
        words.iter().map(String::len).sum::<usize>()
    });
    assert_eq!(words, ["a", "b"]);
    assert_eq!(total, 2);
}

#[test]
fn a_panic_comes_out_of_grow_with_its_payload() {
    let log = Log::new();
    let payload = expect_panic(|| {
        grow(64 * KIB, || {
            let _guard = log.guard("on the segment");
            std::panic::panic_any(42_u32)
        })
    });
    assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    assert_eq!(log.events(), ["drop on the segment"]);
    // And the segment went back to the pool: the next grow of the size runs.
    assert_eq!(grow(64 * KIB, || 7), 7);
}

#[test]
fn a_panic_inside_a_coroutine_inside_a_segment_reaches_the_resumer() {
    let payload = expect_panic(|| {
        let mut co = Coroutine::new(|_h| grow(128 * KIB, || panic!("deep down")));
        let _ = co.resume();
    });
    assert_eq!(message(&payload), Some("deep down"));
}

/// The function whose frame a backtrace taken on a segment must reach.
#[inline(never)]
fn grows_for_a_backtrace() -> String {
    let trace = grow(256 * KIB, || {
        std::backtrace::Backtrace::force_capture().to_string()
    });
    black_box(trace)
}

/// Its caller, a frame further on: not the test itself, which an optimised
/// build inlines into the harness's `call_once`.
#[inline(never)]
fn calls_the_grower() -> String {
    black_box(grows_for_a_backtrace())
}

#[test]
fn backtraces_walk_from_a_segment_into_its_grower() {
    let trace = calls_the_grower();
    let grower = trace.find("grows_for_a_backtrace");
    // ... and on past it, into its caller.
    let caller = trace.find("calls_the_grower");
    assert!(
        matches!((grower, caller), (Some(g), Some(c)) if g < c),
        "{trace}"
    );
}

#[test]
fn a_coroutine_dropped_inside_a_segment_unwinds_all_of_it() {
    let log = Log::new();
    let inner_log = log.clone();
    let mut co = Coroutine::new(move |h| {
        let _below = inner_log.guard("on the coroutine's stack");
        grow(128 * KIB, || {
            let _middle = inner_log.guard("on the first segment");
            grow(256 * KIB, || {
                let _top = inner_log.guard("on the second segment");
                loop {
                    h.suspend();
                }
            })
        })
    });
    assert!(co.resume().is_yield());
    assert!(log.events().is_empty());
    drop(co);
    assert_eq!(
        log.events(),
        [
            "drop on the second segment",
            "drop on the first segment",
            "drop on the coroutine's stack"
        ]
    );
}

#[test]
fn a_suspended_segment_resumes_where_it_was() {
    let mut co = Coroutine::yielding(|h| {
        let mut sum = 0;
        for i in 0..3 {
            sum += grow(64 * KIB, || {
                h.suspend_with(i);
                i * 10
            });
        }
        sum
    });
    assert_eq!(co.resume().into_yield(), Some(0));
    assert_eq!(co.resume().into_yield(), Some(1));
    assert_eq!(co.resume().into_yield(), Some(2));
    assert_eq!(co.resume().into_return(), Some(30));
}

#[test]
fn tiny_and_impossible_sizes() {
    // Below MIN_STACK_SIZE is rounded up to it, as stacker rounds to a page.
    let here = grow(1, left);
    assert!(here < sure_coro::MIN_STACK_SIZE && here > sure_coro::MIN_STACK_SIZE / 2);
    let payload = expect_panic(|| grow(usize::MAX, || ()));
    let text = message(&payload).unwrap();
    assert!(
        text.starts_with(&format!(
            "sure_coro::grow could not get a stack of {} bytes: ",
            usize::MAX
        )),
        "{text}"
    );
}
