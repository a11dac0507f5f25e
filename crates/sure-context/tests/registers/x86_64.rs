//! x86-64: rbx, rbp, r12-r15 under System V, and also rdi, rsi and
//! xmm6-xmm15 under the Microsoft ABI; MXCSR and the x87 control word.

use std::arch::{asm, naked_asm};

#[cfg(unix)]
pub const CALLEE_SAVED: u64 = 6;

#[cfg(unix)]
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

/// Windows: rbx, rbp, rdi, rsi, r12-r15 and xmm6-xmm15.
#[cfg(windows)]
pub const CALLEE_SAVED: u64 = 18;

#[cfg(windows)]
pub fn callee_saved_kept_across(f: extern "C" fn(), seed: u64) -> u64 {
    let kept: u64;
    // SAFETY: rbx, rbp, rdi and rsi are saved and restored around the body
    // by hand; r12-r15, xmm6-xmm15 and the caller-saved registers are
    // declared clobbered; the `call` has its 32 bytes of shadow space and a
    // 16-byte aligned stack (six pushes and 32 bytes on an aligned entry).
    unsafe {
        asm!(
            "push rbx",
            "push rbp",
            "push rdi",
            "push rsi",
            "mov rbx, rcx",
            "lea rbp, [rcx + 1]",
            "lea rdi, [rcx + 2]",
            "lea rsi, [rcx + 3]",
            "lea r12, [rcx + 4]",
            "lea r13, [rcx + 5]",
            "lea r14, [rcx + 6]",
            "lea r15, [rcx + 7]",
            "lea rax, [rcx + 8]", "movq xmm6, rax",
            "inc rax", "movq xmm7, rax",
            "inc rax", "movq xmm8, rax",
            "inc rax", "movq xmm9, rax",
            "inc rax", "movq xmm10, rax",
            "inc rax", "movq xmm11, rax",
            "inc rax", "movq xmm12, rax",
            "inc rax", "movq xmm13, rax",
            "inc rax", "movq xmm14, rax",
            "inc rax", "movq xmm15, rax",
            "push rcx",
            "push rcx",
            "sub rsp, 32",
            "call r10",
            "add rsp, 32",
            "pop rdx",
            "pop rdx",
            "xor eax, eax",
            "cmp rbx, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp rbp, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp rdi, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp rsi, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp r12, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp r13, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp r14, rdx", "sete cl", "add al, cl",
            "inc rdx", "cmp r15, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm6", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm7", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm8", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm9", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm10", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm11", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm12", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm13", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm14", "cmp r8, rdx", "sete cl", "add al, cl",
            "inc rdx", "movq r8, xmm15", "cmp r8, rdx", "sete cl", "add al, cl",
            "pop rsi",
            "pop rdi",
            "pop rbp",
            "pop rbx",
            in("rcx") seed,
            inout("r10") f => _,
            out("rax") kept,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _, out("xmm10") _,
            out("xmm11") _, out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
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
