//! x86-64 System V: rbx, rbp, r12-r15; MXCSR and the x87 control word.

use std::arch::{asm, naked_asm};

pub const CALLEE_SAVED: u64 = 6;

pub fn callee_saved_kept_across(f: extern "C" fn(), seed: u64) -> u64 {
    let kept: u64;
    // SAFETY: rbx and rbp are saved and restored around the body by hand;
    // r12-r15 and the caller-saved registers are declared clobbered; the
    // stack is 16-byte aligned at the `call` (four pushes on an aligned asm
    // entry).
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

/// At a function entry the `call` has just pushed the return address.
pub const ENTRY_STACK_POINTER_MOD_16: usize = 8;

#[unsafe(naked)]
pub extern "C" fn stack_pointer_at_entry() -> usize {
    naked_asm!("mov rax, rsp", "ret")
}

/// MXCSR in the low 32 bits, the x87 control word in bits 32-47.
pub fn fp_control() -> u64 {
    let mut mxcsr = 0u32;
    let mut control_word = 0u16;
    // SAFETY: stmxcsr and fnstcw write 4 and 2 bytes to valid locals.
    unsafe {
        asm!(
            "stmxcsr [{}]",
            "fnstcw [{}]",
            in(reg) &mut mxcsr,
            in(reg) &mut control_word,
            options(nostack),
        )
    };
    u64::from(mxcsr) | u64::from(control_word) << 32
}

pub fn set_fp_control(value: u64) {
    let mxcsr = value as u32;
    let control_word = (value >> 32) as u16;
    // SAFETY: the tests change only rounding control, which changes
    // results, not memory safety.
    unsafe {
        asm!(
            "ldmxcsr [{}]",
            "fldcw [{}]",
            in(reg) &mxcsr,
            in(reg) &control_word,
            options(nostack),
        )
    };
}

/// MXCSR rounding control (bits 13-14) and x87 rounding control (bits
/// 10-11 of the control word), both toward zero.
pub const FP_ROUND_TOWARD_ZERO: u64 = 0b11 << 13 | (0b11 << 10) << 32;
