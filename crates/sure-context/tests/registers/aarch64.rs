//! AArch64 AAPCS64: x19-x29 and d8-d15; FPCR.

use std::arch::{asm, naked_asm};

pub const CALLEE_SAVED: u64 = 19;

/// Counts in x0 whether the general register `$reg` holds x9, then moves
/// x9 on to the next expected value.
macro_rules! check {
    ($reg:literal) => {
        concat!(
            "cmp ",
            $reg,
            ", x9\n",
            "cinc x0, x0, eq\n",
            "add x9, x9, #1\n"
        )
    };
}

/// As `check!`, for the low 64 bits of the vector register `$reg`.
macro_rules! check_d {
    ($reg:literal) => {
        concat!("fmov x10, ", $reg, "\n", check!("x10"))
    };
}

/// Puts `seed + $n` in the low 64 bits of the vector register `$reg`.
macro_rules! load_d {
    ($reg:literal, $n:literal) => {
        concat!("add x10, x9, #", $n, "\n", "fmov ", $reg, ", x10\n")
    };
}

pub fn callee_saved_kept_across(f: extern "C" fn(), seed: u64) -> u64 {
    let kept: u64;
    // SAFETY: x19 and x29 are saved and restored around the body by hand;
    // x20-x28 and the caller-saved registers (all of v0-v31 among them) are
    // declared clobbered; sp stays 16-byte aligned.
    unsafe {
        asm!(
            "stp x29, x19, [sp, #-16]!",
            "mov x19, x9",
            "add x20, x9, #1", "add x21, x9, #2", "add x22, x9, #3",
            "add x23, x9, #4", "add x24, x9, #5", "add x25, x9, #6",
            "add x26, x9, #7", "add x27, x9, #8", "add x28, x9, #9",
            "add x29, x9, #10",
            load_d!("d8", 11), load_d!("d9", 12), load_d!("d10", 13), load_d!("d11", 14),
            load_d!("d12", 15), load_d!("d13", 16), load_d!("d14", 17), load_d!("d15", 18),
            "stp x9, x9, [sp, #-16]!",
            "blr x8",
            "ldp x9, x10, [sp], #16",
            "mov x0, #0",
            check!("x19"), check!("x20"), check!("x21"), check!("x22"),
            check!("x23"), check!("x24"), check!("x25"), check!("x26"),
            check!("x27"), check!("x28"), check!("x29"),
            check_d!("d8"), check_d!("d9"), check_d!("d10"), check_d!("d11"),
            check_d!("d12"), check_d!("d13"), check_d!("d14"), check_d!("d15"),
            "ldp x29, x19, [sp], #16",
            in("x9") seed,
            in("x8") f,
            out("x0") kept,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
    kept
}

/// `bl` leaves the return address in x30: sp is as the caller aligned it.
pub const ENTRY_STACK_POINTER_MOD_16: usize = 0;

#[unsafe(naked)]
pub extern "C" fn stack_pointer_at_entry() -> usize {
    naked_asm!("mov x0, sp", "ret")
}

pub fn fp_control() -> u64 {
    let value: u64;
    // SAFETY: reads a system register that EL0 may read.
    unsafe { asm!("mrs {}, fpcr", out(reg) value, options(nomem, nostack)) };
    value
}

pub fn set_fp_control(value: u64) {
    // SAFETY: the tests change only the rounding mode, which changes
    // results, not memory safety.
    unsafe { asm!("msr fpcr, {}", in(reg) value, options(nomem, nostack)) };
}

/// FPCR.RMode (bits 22-23) = 0b11, round toward zero.
pub const FP_ROUND_TOWARD_ZERO: u64 = 0b11 << 22;
