//! The switch keeps the System V ABI: callee-saved registers, stack
//! alignment, floating-point values, deep stacks.

mod support;

use std::arch::{asm, naked_asm};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;

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

/// Loads every callee-saved register with a value derived from `seed`,
/// calls `f` (which switches away and back), and returns how many of them
/// still hold their value afterwards (6 when the ABI is kept).
fn callee_saved_kept_across(f: extern "C" fn(), seed: u64) -> u64 {
    let kept: u64;
    // Why this is sound: rbx and rbp are saved and restored around the body by hand;
    // r12-r15 and the caller-saved registers are declared clobbered; the
    // stack is 16-byte aligned at the `call` (two pushes on an aligned asm
    // entry).
    // SAFETY: the asm preserves every register Rust relies on, as above.
    unsafe {
        asm!(
            "push rbx",
            "push rbp",
            "mov rbx, rcx",
            "lea rbp, [rcx + 1]",
            "lea r12, [rcx + 2]",
            "lea r13, [rcx + 3]",
            "lea r14, [rcx + 4]",
            "lea r15, [rcx + 5]",
            "push rcx",
            "push rcx",
            "call rax",
            "pop rdx",
            "pop rdx",
            "xor eax, eax",
            "cmp rbx, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp rbp, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp r12, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp r13, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp r14, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp r15, rdx", "sete cl", "add al, cl",
            "pop rbp",
            "pop rbx",
            // Fixed registers: a `reg` operand may be given rbx or rbp, which
            // the asm overwrites before it uses the operand.
            in("rcx") seed,
            inout("rax") f => kept,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
        );
    }
    kept
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
            kept, 6,
            "resumer lost a callee-saved register in round {round}"
        );
    }
    assert_eq!(
        results.get(),
        4 * 6,
        "the fiber lost a callee-saved register"
    );
}

/// Returns the stack pointer at its own entry, after the `call` pushed the
/// return address: 8 mod 16 when the caller kept the ABI's alignment.
#[unsafe(naked)]
extern "C" fn stack_pointer_at_entry() -> usize {
    naked_asm!("mov rax, rsp", "ret")
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
    assert_eq!(entry_sp % 16, 8, "rsp at a function entry must be 8 mod 16");
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
