//! The switch keeps the platform ABI: callee-saved registers, stack
//! alignment, floating-point values, deep stacks.

mod registers;
mod support;

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;

use registers::{
    CALLEE_SAVED, ENTRY_STACK_POINTER_MOD_16, callee_saved_kept_across, stack_pointer_at_entry,
};
use support::{Fiber, Suspender};

thread_local! {
    static SUSPENDER: Cell<*mut Suspender> = const { Cell::new(std::ptr::null_mut()) };
    static FIBER: Cell<*mut Fiber> = const { Cell::new(std::ptr::null_mut()) };
}

/// An ordinary function call, from the asm below's point of view, that
/// switches away and back inside.
extern "C" fn suspend_fiber() {
    // SAFETY: set by the fiber body below before any call.
    unsafe { (*SUSPENDER.get()).suspend() }
}

extern "C" fn resume_fiber() {
    // SAFETY: set by the test before any call; the fiber outlives it.
    unsafe { (*FIBER.get()).resume() };
}

#[test]
fn callee_saved_registers_survive_switches_both_ways() {
    let results = Rc::new(Cell::new(0u64));
    let inner = results.clone();
    let mut fiber = Fiber::new(64 * 1024, move |s| {
        SUSPENDER.set(s);
        for round in 0..4 {
            // The fiber side: its registers survive the resumer's clobbers.
            let kept = callee_saved_kept_across(suspend_fiber, 0x7000 + round * 16);
            inner.set(inner.get() + kept);
        }
    });
    FIBER.set(&mut fiber);
    // The first resume just starts the fiber up to its first suspend.
    fiber.resume();
    for round in 0..4 {
        // The resumer side: its registers survive the fiber's clobbers.
        let kept = callee_saved_kept_across(resume_fiber, 0x9000 + round * 16);
        assert_eq!(
            kept, CALLEE_SAVED,
            "resumer lost a callee-saved register in round {round}"
        );
    }
    assert_eq!(
        results.get(),
        4 * CALLEE_SAVED,
        "the fiber lost a callee-saved register"
    );
}

#[test]
fn the_stack_is_aligned_in_a_new_context() {
    #[repr(align(16))]
    struct Aligned(#[allow(dead_code)] [u8; 16]);

    let seen = Rc::new(Cell::new((0usize, 0usize)));
    let inner = seen.clone();
    let mut fiber = Fiber::new(64 * 1024, move |_| {
        let local = black_box(Aligned([1; 16]));
        inner.set((stack_pointer_at_entry(), &local as *const Aligned as usize));
    });
    assert!(fiber.resume());
    let (entry_sp, local_addr) = seen.get();
    assert_eq!(
        entry_sp % 16,
        ENTRY_STACK_POINTER_MOD_16,
        "the stack pointer at a function entry is misaligned"
    );
    assert_eq!(local_addr % 16, 0, "a 16-aligned local must be aligned");
}

#[test]
fn floating_point_values_live_across_switches() {
    let out = Rc::new(Cell::new(0.0f64));
    let inner = out.clone();
    let mut fiber = Fiber::new(64 * 1024, move |s| {
        let mut acc = black_box(1.5f64);
        for i in 0..10 {
            let x = black_box(i as f64 * 0.25);
            s.suspend();
            acc = acc.mul_add(1.0001, x.sqrt());
        }
        inner.set(acc);
    });
    let mut expected_local = black_box(2.75f64);
    let mut resumes = 0;
    while !fiber.resume() {
        expected_local = expected_local * 1.5 - 0.125;
        resumes += 1;
    }
    assert_eq!(resumes, 10);
    let mut acc = 1.5f64;
    for i in 0..10 {
        acc = acc.mul_add(1.0001, (i as f64 * 0.25).sqrt());
    }
    assert_eq!(out.get(), acc);
    let mut local = 2.75f64;
    for _ in 0..10 {
        local = local * 1.5 - 0.125;
    }
    assert_eq!(expected_local, local);
}

#[inline(never)]
fn recurse(depth: u32, s: &mut Suspender) -> u64 {
    let pad = black_box([depth as u64; 8]);
    if depth == 0 {
        s.suspend();
        return 0;
    }
    pad[depth as usize % 8] + recurse(depth - 1, s)
}

#[test]
fn deep_recursion_suspends_at_the_bottom_and_returns_up() {
    let out = Rc::new(Cell::new(0u64));
    let inner = out.clone();
    let depth = 10_000;
    // About 100 bytes a level in debug builds; give it room.
    let mut fiber = Fiber::new(8 * 1024 * 1024, move |s| inner.set(recurse(depth, s)));
    assert!(!fiber.resume(), "suspends at the bottom of the recursion");
    assert!(fiber.resume(), "then returns all the way up");
    assert_eq!(out.get(), (1..=depth as u64).sum::<u64>());
}
