//! `Builder` and stacks: sizes, errors, caller-provided and reused stacks,
//! large bodies and deep recursion.

mod common;

use std::hint::black_box;

use common::{Log, expect_panic, message};
use sure_coro::{
    Builder, Coroutine, CoroutineResult, DEFAULT_STACK_SIZE, StackError, SuspendHandle,
};
use sure_stack::{MIN_STACK_SIZE, Stack, page_size};

#[test]
fn the_default_stack_size() {
    let co = Coroutine::new(|h| h.suspend());
    assert_eq!(co.stack_size(), DEFAULT_STACK_SIZE);
    let built = Builder::new().build(|h| h.suspend()).unwrap();
    assert_eq!(built.stack_size(), DEFAULT_STACK_SIZE);
}

#[test]
fn invalid_sizes_are_errors_not_panics() {
    for size in [
        0,
        1,
        page_size(),
        MIN_STACK_SIZE - 1,
        usize::MAX,
        usize::MAX - page_size(),
    ] {
        let result = Builder::new().stack_size(size).build(|h| h.suspend());
        assert!(
            matches!(result, Err(StackError::InvalidSize { .. })),
            "size {size}: {result:?}"
        );
        let with_input = Builder::new()
            .stack_size(size)
            .build_with_input(|h, x: u8| h.suspend_with(x));
        assert!(
            matches!(with_input, Err(StackError::InvalidSize { .. })),
            "size {size}"
        );
    }
}

#[test]
fn a_failed_build_drops_the_body_without_running_it() {
    let log = Log::new();
    let guard = log.guard("captured");
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let body_ran = ran.clone();
    let result = Builder::new().stack_size(0).build_yielding(move |h| {
        body_ran.set(true);
        let _keep = &guard;
        h.suspend();
    });
    assert!(result.is_err());
    assert_eq!(log.events(), ["drop captured"]);
    assert!(!ran.get());
}

#[test]
fn the_smallest_stack_unwinds_a_panic() {
    // `resume_unwind` skips the panic hook; the next test covers the hook
    // printing a backtrace on the smallest stack.
    let mut co = Builder::new()
        .stack_size(MIN_STACK_SIZE)
        .build_yielding(|h| {
            let _g = [0u8; 512];
            h.suspend_with(format!("{:>8}", 1));
            std::panic::resume_unwind(Box::new(MIN_STACK_SIZE));
        })
        .unwrap();
    assert_eq!(co.stack_size(), MIN_STACK_SIZE);
    assert_eq!(co.resume().into_yield().as_deref(), Some("       1"));
    let payload = expect_panic(|| co.resume());
    assert_eq!(payload.downcast_ref::<usize>(), Some(&MIN_STACK_SIZE));
}

#[test]
fn the_smallest_stack_can_print_a_backtrace() {
    let mut co = Builder::new()
        .stack_size(MIN_STACK_SIZE)
        .build(|_h| format!("{}", std::backtrace::Backtrace::force_capture()).len())
        .unwrap();
    let _: &Coroutine<(), (), usize> = &co;
    assert!(co.resume().into_return().unwrap() > 0);
}

#[test]
fn sizes_are_rounded_up_to_whole_pages() {
    let co = Builder::new()
        .stack_size(MIN_STACK_SIZE + 1)
        .build(|h| h.suspend())
        .unwrap();
    assert_eq!(
        co.stack_size(),
        (MIN_STACK_SIZE + 1).next_multiple_of(page_size())
    );
}

/// Recurses `depth` frames, each with a small local array, suspending at
/// the bottom with the address of the deepest array; returns a checksum of
/// every frame's array on the way back up.
fn recurse(depth: u32, h: &mut SuspendHandle<(), usize>) -> u64 {
    let mut local = [depth; 8];
    black_box(&mut local);
    let below = if depth == 0 {
        at_bottom(&local as *const _ as usize, h);
        0
    } else {
        recurse(depth - 1, h)
    };
    below + u64::from(local[0]) + u64::from(local[7])
}

/// Out of line: `suspend_with` is inlined, and would make every frame of
/// `recurse` larger in a debug build.
#[inline(never)]
fn at_bottom(addr: usize, h: &mut SuspendHandle<(), usize>) {
    h.suspend_with(addr);
}

fn expected_sum(depth: u32) -> u64 {
    (0..=u64::from(depth)).map(|d| 2 * d).sum()
}

/// The address of a local in the caller's frame: the top of the recursion.
#[inline(never)]
fn here() -> usize {
    let marker = 0u8;
    black_box(&marker as *const u8 as usize)
}

#[test]
fn deep_recursion_on_the_default_stack() {
    let mut co = Coroutine::yielding(|h| {
        let top = here();
        (top, recurse(1000, h))
    });
    let bottom = co.resume().into_yield().unwrap();
    let (top, sum) = co.resume().into_return().unwrap();
    assert_eq!(sum, expected_sum(1000), "every frame came back intact");
    let used = top - bottom;
    assert!(
        used > 1000 * 32,
        "1000 frames with 32-byte arrays used only {used} bytes"
    );
    assert!(used < DEFAULT_STACK_SIZE);
}

#[test]
fn a_big_stack_holds_recursion_a_default_one_cannot() {
    const BIG: usize = 8 * 1024 * 1024;
    let mut co = Builder::new()
        .stack_size(BIG)
        .build_yielding(|h| {
            let top = here();
            (top, recurse(20_000, h))
        })
        .unwrap();
    assert!(co.stack_size() >= BIG);
    let bottom = co.resume().into_yield().unwrap();
    let (top, sum) = co.resume().into_return().unwrap();
    assert_eq!(sum, expected_sum(20_000));
    let used = top - bottom;
    assert!(used > DEFAULT_STACK_SIZE, "the recursion used {used} bytes");
    assert!(used < co.stack_size());
}

#[test]
fn a_caller_provided_stack() {
    let stack = Stack::allocate_at_least(64 * 1024).unwrap();
    let (bottom, top) = (
        stack.bottom().as_ptr() as usize,
        stack.top().as_ptr() as usize,
    );
    let mut co = Builder::new()
        .stack(stack)
        .build_yielding(|h| {
            let local = 0u64;
            h.suspend_with(&local as *const u64 as usize);
            "done"
        })
        .unwrap();
    assert_eq!(co.stack_size(), 64 * 1024);
    let addr = co.resume().into_yield().unwrap();
    assert!(
        (bottom..top).contains(&addr),
        "the body runs on the given stack"
    );
    assert_eq!(co.resume(), CoroutineResult::Return("done"));
}

#[test]
fn a_caller_provided_stack_overrides_stack_size() {
    let stack = Stack::allocate_at_least(32 * 1024).unwrap();
    let co = Builder::new()
        .stack_size(1024 * 1024)
        .stack(stack)
        .build(|h| h.suspend())
        .unwrap();
    assert_eq!(co.stack_size(), 32 * 1024);
}

#[test]
fn into_stack_runs_another_coroutine() {
    let mut first = Builder::new()
        .stack_size(128 * 1024)
        .build_yielding(|h| {
            let local = [1u8; 1024];
            h.suspend_with(
                black_box(&local)
                    .iter()
                    .map(|&b| usize::from(b))
                    .sum::<usize>(),
            );
        })
        .unwrap();
    assert_eq!(first.resume().into_yield(), Some(1024));
    let stack = first.into_stack();
    assert_eq!(stack.len(), 128 * 1024);
    let range = stack.bottom().as_ptr() as usize..stack.top().as_ptr() as usize;

    let mut second = Builder::new()
        .stack(stack)
        .build_with_input(|h, x: u32| {
            let local = x;
            let y = h.suspend_with(&local as *const u32 as usize);
            x + y
        })
        .unwrap();
    let addr = second.resume_with(40).into_yield().unwrap();
    assert!(range.contains(&addr));
    assert_eq!(second.resume_with(2), CoroutineResult::Return(42));

    // And again, from a completed coroutine.
    let stack = second.into_stack();
    let mut third = Builder::new().stack(stack).build(|_h| 7).unwrap();
    let _: &Coroutine<(), (), i32> = &third;
    assert_eq!(third.resume(), CoroutineResult::Return(7));
}

#[test]
fn into_stack_of_a_pooled_coroutine() {
    let mut co = Coroutine::new(|h| h.suspend());
    let _ = co.resume();
    let stack = co.into_stack();
    assert_eq!(stack.len(), DEFAULT_STACK_SIZE);
    let mut again = Builder::new()
        .stack(stack)
        .build_yielding(|h| h.suspend_with(3))
        .unwrap();
    assert_eq!(again.resume().into_yield(), Some(3));
}

fn sum_after_suspend<const N: usize>() -> u64 {
    let big = [3u8; N];
    let mut co = Coroutine::new(move |h| {
        h.suspend();
        black_box(&big).iter().map(|&b| u64::from(b)).sum::<u64>()
    });
    let _ = co.resume();
    co.resume().into_return().unwrap()
}

#[test]
fn a_body_capturing_a_large_array() {
    assert_eq!(sum_after_suspend::<100_000>(), 300_000);
}

#[test]
fn bodies_of_every_size_up_to_a_large_array() {
    // With a quarter of the stack as the limit for keeping the body on it,
    // 24 KB bodies overflowed the default stack in debug builds.
    assert_eq!(sum_after_suspend::<1_000>(), 3_000);
    assert_eq!(sum_after_suspend::<4_000>(), 12_000);
    assert_eq!(sum_after_suspend::<16_000>(), 48_000);
    assert_eq!(sum_after_suspend::<24_000>(), 72_000);
    assert_eq!(sum_after_suspend::<40_000>(), 120_000);
    assert_eq!(sum_after_suspend::<63_000>(), 189_000);
}

#[test]
fn a_large_body_on_the_smallest_stack() {
    let big = [5u8; 2_000];
    let mut co = Builder::new()
        .stack_size(MIN_STACK_SIZE)
        .build(move |h| {
            h.suspend();
            black_box(&big).iter().map(|&b| u32::from(b)).sum::<u32>()
        })
        .unwrap();
    let _ = co.resume();
    assert_eq!(co.resume(), CoroutineResult::Return(10_000));
}

#[test]
fn a_large_body_dropped_unstarted_and_suspended() {
    let log = Log::new();
    let make = |name: &str| {
        let guard = log.guard(name);
        let big = [0u8; 100_000];
        Coroutine::yielding(move |h| {
            let _keep = (&guard, black_box(&big));
            h.suspend();
        })
    };
    drop(make("unstarted"));
    let mut suspended = make("suspended");
    let _ = suspended.resume();
    drop(suspended);
    assert_eq!(log.events(), ["drop unstarted", "drop suspended"]);
}

#[test]
fn yield_values_too_large_for_the_stack_panic_instead_of_writing_past_it() {
    // The channel holding the Yield slot sits at the top of the stack
    // whatever happens to the body: it must fit.
    let payload = expect_panic(|| {
        let co: Coroutine<(), [u8; 300_000], ()> = Coroutine::yielding(|h| {
            h.suspend_with([1; 300_000]);
        });
        co
    });
    assert!(
        message(&payload).unwrap().contains("stack"),
        "{:?}",
        message(&payload)
    );
    let payload = expect_panic(|| {
        let built: Result<Coroutine<(), (), [u8; 40_000]>, StackError> = Builder::new()
            .stack_size(MIN_STACK_SIZE)
            .build_yielding(|_h| [0u8; 40_000]);
        built.map(drop)
    });
    assert!(message(&payload).unwrap().contains("stack"));
    // The thread's coroutines still work.
    let mut co = Coroutine::yielding(|h| h.suspend_with(1));
    assert_eq!(co.resume().into_yield(), Some(1));
}

#[test]
fn large_inputs_and_yields_that_fit() {
    let mut co = Builder::new()
        .stack_size(1024 * 1024)
        .build_with_input(|h, mut block: [u8; 20_000]| {
            for _ in 0..3 {
                block.iter_mut().for_each(|b| *b = b.wrapping_add(1));
                block = h.suspend_with(block);
            }
            block.iter().map(|&b| u64::from(b)).sum::<u64>()
        })
        .unwrap();
    let mut block = [0u8; 20_000];
    for _ in 0..3 {
        block = co.resume_with(block).into_yield().unwrap();
    }
    assert_eq!(co.resume_with(block), CoroutineResult::Return(3 * 20_000));
}
