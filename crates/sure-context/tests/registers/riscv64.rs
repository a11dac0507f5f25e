//! RISC-V LP64D: s0-s11 and fs0-fs11; the rounding mode `frm`.

use std::arch::{asm, naked_asm};

pub const CALLEE_SAVED: u64 = 24;

/// Counts in a0 whether the integer register `$reg` holds a4, then moves
/// a4 on to the next expected value.
macro_rules! check {
    ($reg:literal) => {
        concat!(
            "xor t0, ",
            $reg,
            ", a4\n",
            "seqz t0, t0\n",
            "add a0, a0, t0\n",
            "addi a4, a4, 1\n",
        )
    };
}

/// As `check!`, for the floating-point register `$reg`.
macro_rules! check_f {
    ($reg:literal) => {
        concat!("fmv.x.d t1, ", $reg, "\n", check!("t1"))
    };
}

/// Puts the bits of `seed + $n` in `$reg`: the integer register for an
/// `x`, the floating-point one for an `f`.
macro_rules! load {
    ($reg:literal, $n:literal) => {
        concat!("addi ", $reg, ", a4, ", $n, "\n")
    };
    (f $reg:literal, $n:literal) => {
        concat!("addi t0, a4, ", $n, "\n", "fmv.d.x ", $reg, ", t0\n")
    };
}

pub fn callee_saved_kept_across(f: extern "C" fn(), seed: u64) -> u64 {
    let kept: u64;
    // SAFETY: s0 and s1 are saved and restored around the body by hand;
    // s2-s11, fs0-fs11 and the caller-saved registers are declared
    // clobbered; sp stays 16-byte aligned.
    unsafe {
        asm!(
            "addi sp, sp, -32",
            "sd s0, 0(sp)",
            "sd s1, 8(sp)",
            "sd a4, 16(sp)",
            load!("s0", 0), load!("s1", 1), load!("s2", 2), load!("s3", 3),
            load!("s4", 4), load!("s5", 5), load!("s6", 6), load!("s7", 7),
            load!("s8", 8), load!("s9", 9), load!("s10", 10), load!("s11", 11),
            load!(f "fs0", 12), load!(f "fs1", 13), load!(f "fs2", 14), load!(f "fs3", 15),
            load!(f "fs4", 16), load!(f "fs5", 17), load!(f "fs6", 18), load!(f "fs7", 19),
            load!(f "fs8", 20), load!(f "fs9", 21), load!(f "fs10", 22), load!(f "fs11", 23),
            "jalr a5",
            "ld a4, 16(sp)",
            "li a0, 0",
            check!("s0"), check!("s1"), check!("s2"), check!("s3"),
            check!("s4"), check!("s5"), check!("s6"), check!("s7"),
            check!("s8"), check!("s9"), check!("s10"), check!("s11"),
            check_f!("fs0"), check_f!("fs1"), check_f!("fs2"), check_f!("fs3"),
            check_f!("fs4"), check_f!("fs5"), check_f!("fs6"), check_f!("fs7"),
            check_f!("fs8"), check_f!("fs9"), check_f!("fs10"), check_f!("fs11"),
            "ld s0, 0(sp)",
            "ld s1, 8(sp)",
            "addi sp, sp, 32",
            in("a4") seed,
            in("a5") f,
            out("a0") kept,
            out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
            out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("fs0") _, out("fs1") _, out("fs2") _, out("fs3") _, out("fs4") _,
            out("fs5") _, out("fs6") _, out("fs7") _, out("fs8") _, out("fs9") _,
            out("fs10") _, out("fs11") _,
            clobber_abi("C"),
        );
    }
    kept
}

/// `call` leaves the return address in ra: sp is as the caller aligned it.
pub const ENTRY_STACK_POINTER_MOD_16: usize = 0;

#[unsafe(naked)]
pub extern "C" fn stack_pointer_at_entry() -> usize {
    naked_asm!("mv a0, sp", "ret")
}

pub fn fp_control() -> u64 {
    let value: u64;
    // SAFETY: reads the rounding mode, an unprivileged CSR field.
    unsafe { asm!("frrm {}", out(reg) value, options(nomem, nostack)) };
    value
}

pub fn set_fp_control(value: u64) {
    // SAFETY: the tests change only the rounding mode, which changes
    // results, not memory safety.
    unsafe { asm!("fsrm {}", in(reg) value, options(nomem, nostack)) };
}

/// `frm` = 0b001, round toward zero.
pub const FP_ROUND_TOWARD_ZERO: u64 = 0b001;
