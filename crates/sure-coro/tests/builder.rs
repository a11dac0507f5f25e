//! `Builder` and stacks: sizes, errors, caller-provided and reused stacks,
//! large bodies and deep recursion.

mod common;

use std::hint::black_box;

use common::{Log, expect_panic, message};
use sure_context::stack_pointer;
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

/// What [`recurse`] hands out at the bottom: the stack pointer there, and
/// the address of the deepest frame's local array.
type Bottom = (usize, usize);

/// Recurses, each frame with a small local array, until the stack pointer
/// is `target` bytes below `top`: the depth follows from the stack each
/// frame really uses, whatever the build does to frames. Suspends at the
/// bottom with a [`Bottom`]; returns the deepest frame's `depth` and a
/// checksum of every frame's array on the way back up.
fn recurse(
    depth: u32,
    top: usize,
    target: usize,
    h: &mut SuspendHandle<'_, (), Bottom>,
) -> (u32, u64) {
    let mut local = [depth; 8];
    black_box(&mut local);
    let sp = stack_pointer();
    let (deepest, below) = if top - sp >= target {
        at_bottom((sp, &local as *const _ as usize), h);
        (depth, 0)
    } else {
        recurse(depth + 1, top, target, h)
    };
    (deepest, below + u64::from(local[0]) + u64::from(local[7]))
}

/// Out of line: `suspend_with` is inlined, and would make every frame of
/// `recurse` larger in a debug build.
#[inline(never)]
fn at_bottom(bottom: Bottom, h: &mut SuspendHandle<'_, (), Bottom>) {
    h.suspend_with(bottom);
}

fn expected_sum(depth: u32) -> u64 {
    (0..=u64::from(depth)).map(|d| 2 * d).sum()
}

/// Runs [`recurse`] down `target` bytes of `co`'s stack from the body's
/// frame, and checks what holds in every build: every frame came back
/// intact, the recursion ended where it measured, and each frame took
/// stack (at least a return address, 16-byte aligned, so none was a tail
/// call; at most a page). Returns the deepest depth and the bytes used.
fn run_recursion(
    mut co: Coroutine<(), Bottom, (usize, (u32, u64))>,
    target: usize,
) -> (u32, usize) {
    let (bottom, deepest_local) = co.resume().into_yield().unwrap();
    let (top, (deepest, sum)) = co.resume().into_return().unwrap();
    let frames = deepest + 1;
    assert_eq!(sum, expected_sum(deepest), "every frame came back intact");
    let used = top - bottom;
    assert!(
        (target..target + 4096).contains(&used),
        "stopped {used} bytes down, aiming at {target}"
    );
    let per_frame = used / frames as usize;
    println!("{frames} frames, {used} bytes: {per_frame} bytes a frame");
    assert!(
        (16..=4096).contains(&per_frame),
        "{frames} frames used {used} bytes"
    );
    // Where the locals are on this stack, each frame holds its 32-byte
    // array too. Under AddressSanitizer they may be on its fake stack.
    if (bottom..top).contains(&deepest_local) {
        assert!(
            per_frame >= 32,
            "{frames} frames with 32-byte arrays used {used} bytes"
        );
    } else {
        println!(
            "not checking for the arrays: the locals live off this stack (AddressSanitizer's fake stack?)"
        );
    }
    (deepest, used)
}

/// The recursion body: measures from its own frame.
fn recursion_body(
    target: usize,
) -> impl FnOnce(&mut SuspendHandle<'_, (), Bottom>) -> (usize, (u32, u64)) {
    move |h| {
        let top = stack_pointer();
        (top, recurse(0, top, target, h))
    }
}

#[test]
fn deep_recursion_on_the_default_stack() {
    // Half the stack: deep, with room to spare for the body's own frames.
    let target = DEFAULT_STACK_SIZE / 2;
    let co = Coroutine::yielding(recursion_body(target));
    let (_, used) = run_recursion(co, target);
    assert!(used < DEFAULT_STACK_SIZE);
}

#[test]
fn a_big_stack_holds_recursion_a_default_one_cannot() {
    const BIG: usize = 8 * 1024 * 1024;
    // Twice what a default stack holds at all.
    let target = 2 * DEFAULT_STACK_SIZE;
    let co = Builder::new()
        .stack_size(BIG)
        .build_yielding(recursion_body(target))
        .unwrap();
    let size = co.stack_size();
    assert!(size >= BIG);
    let (_, used) = run_recursion(co, target);
    assert!(used > DEFAULT_STACK_SIZE, "the recursion used {used} bytes");
    assert!(used < size);
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
            h.suspend_with(stack_pointer());
            "done"
        })
        .unwrap();
    assert_eq!(co.stack_size(), 64 * 1024);
    let sp = co.resume().into_yield().unwrap();
    assert!(
        (bottom..top).contains(&sp),
        "the body runs on the given stack"
    );
    assert!(!(bottom..top).contains(&stack_pointer()));
    assert_eq!(co.resume(), CoroutineResult::Return("done"));
}

#[test]
fn a_caller_provided_stack_overrides_stack_size() {
    let stack = Stack::allocate_at_least(64 * 1024).unwrap();
    let co = Builder::new()
        .stack_size(1024 * 1024)
        .stack(stack)
        .build(|h| h.suspend())
        .unwrap();
    assert_eq!(co.stack_size(), 64 * 1024);
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
            let y = h.suspend_with(stack_pointer());
            x + y
        })
        .unwrap();
    let sp = second.resume_with(40).into_yield().unwrap();
    assert!(
        range.contains(&sp),
        "the body runs on the first one's stack"
    );
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
        let built: Result<Coroutine<(), (), [u8; MIN_STACK_SIZE]>, StackError> = Builder::new()
            .stack_size(MIN_STACK_SIZE)
            .build_yielding(|_h| [0u8; MIN_STACK_SIZE]);
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
