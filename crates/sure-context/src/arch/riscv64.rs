//! The RISC-V 64 (LP64D psABI) context switch.
//!
//! # Saved context layout
//!
//! A suspended execution is one stack pointer `sp`, kept 16-byte aligned as
//! the psABI asks. The words at `sp` are:
//!
//! ```text
//! higher addresses
//! |  saved s1           |  sp + 24 (+ 16 with `fp-control`)
//! |  saved s0 (fp)      |  sp + 16 (+ 16 with `fp-control`)
//! | [frm, padding]      |  sp + 16, only with `fp-control`
//! |  padding            |  sp + 8
//! |  resume address     |  sp      <- ExecutionContext::stack_pointer
//! lower addresses
//! ```
//!
//! The transfers are those of `x86_64.rs`, with `ra` in the place of the
//! pushed return address. RISC-V predicts returns from hints in the jump's
//! registers: a `jal`/`jalr` that writes `ra` pushes the return-address
//! stack, a `jalr` through `ra` that writes `zero` (`ret`) pops it, and a
//! jump through t0 counts as a return too, so no jump here goes through t0.
//!
//! - [`switch_call`] enters the naked switch with `call` (pushes); the
//!   naked code stores `ra` as the top word and reaches the target with a
//!   `jr` through a2 (no hint).
//! - [`switch_return`] stores its resume address by hand, loads the
//!   target's into `ra` and leaves with `ret` (pops the entry the target's
//!   `call` pushed): the pair stays in step.
//! - [`exit`] saves nothing.
//!
//! The arriving side finds the switcher's save location in a0 (the
//! end-of-stack stand-in after an exit), as x86-64 finds it in rdi.
//!
//! s2-s11 and fs0-fs11 are declared clobbered, and `clobber_abi("C")`
//! covers the rest the psABI lets a call change (`ra` included). s0 (the
//! frame pointer) and s1 (LLVM's base pointer) cannot be declared and are
//! saved by hand.
//!
//! `fp-control` keeps the rounding mode (`frm`) per context. The psABI gives
//! `fcsr` thread storage duration, like C's `fenv.h`: no bit of it is
//! callee-saved, so the switch need not save it, and does only when asked.
//! The accrued exception flags (`fflags`) are never saved.

use core::arch::{asm, naked_asm};

/// Saves the rounding mode below the saved s0 and s1, with `fp-control`.
macro_rules! save_fp_control {
    () => {
        with_fp_control!(
            concat!(
                "frrm a2\n",          // the dynamic rounding mode
                "addi sp, sp, -16\n", // in its own 16-byte slot
                "sd a2, 0(sp)\n",
            ),
            "",
        )
    };
}

/// Restores what [`save_fp_control`] saved, with `fp-control`.
macro_rules! restore_fp_control {
    () => {
        with_fp_control!(
            concat!(
                "ld a2, 0(sp)\n",    // the rounding mode back
                "addi sp, sp, 16\n", // slot dropped
                "fsrm a2\n",
            ),
            "",
        )
    };
}

/// Bytes a switch stores below the switching code's stack pointer, as a
/// DWARF operand: resume address, s0 and s1 (and the rounding-mode slot).
macro_rules! saved_frame_bytes {
    () => {
        with_fp_control!("48", "32",)
    };
}

/// The stack pointer register (see `crate::stack_pointer`).
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies a register into another; touches no memory.
    unsafe { asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// `asm!` with every register a switch lets the compiler save declared
/// clobbered: s2-s11 and fs0-fs11 by name, and the rest of what a call may change by
/// `clobber_abi`. Both switches use it, so they cannot drift apart.
macro_rules! switch_asm {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            lateout("s2") _, lateout("s3") _, lateout("s4") _, lateout("s5") _,
            lateout("s6") _, lateout("s7") _, lateout("s8") _, lateout("s9") _,
            lateout("s10") _, lateout("s11") _,
            lateout("fs0") _, lateout("fs1") _, lateout("fs2") _, lateout("fs3") _,
            lateout("fs4") _, lateout("fs5") _, lateout("fs6") _, lateout("fs7") _,
            lateout("fs8") _, lateout("fs9") _, lateout("fs10") _, lateout("fs11") _,
            clobber_abi("C"),
        )
    };
}

/// `switch_call` of the `arch` contract: enters the naked switch with
/// `call`.
///
/// # Safety
/// As the contract says.
#[inline(always)]
pub(crate) unsafe fn switch_call(save: *mut u8, _: *const u8, target: *mut u8) -> *mut u8 {
    let from: *mut u8;
    // SAFETY: the naked switch saves this execution at `save` and continues
    // `target`, both valid by this function's contract. s0 and s1 are
    // stored here and loaded back on return; s2-s11, fs0-fs11 and everything
    // the psABI lets a call change (`ra` included) are declared clobbered.
    // sp stays 16-byte aligned, and the naked code leaves a0 alone, so the
    // continuing execution finds the `save` of whoever switched to it there.
    unsafe {
        switch_asm!(
            "addi sp, sp, -16",
            "sd s0, 0(sp)",               // the two registers no operand can name
            "sd s1, 8(sp)",
            save_fp_control!(),
            "call {switch}",              // ra = resume address (the next line); switches
            restore_fp_control!(),
            "ld s0, 0(sp)",               // continued: s0 and s1 back
            "ld s1, 8(sp)",
            "addi sp, sp, 16",            // sp as before
            switch = sym sure_switch_call,
            inout("a0") save => from,
            in("a1") target,
        );
    }
    from
}

/// `switch_return` of the `arch` contract: leaves with a `ret`.
///
/// # Safety
/// As the contract says.
#[inline(always)]
pub(crate) unsafe fn switch_return(save: *mut u8, _: *const u8, target: *mut u8) -> *mut u8 {
    let from: *mut u8;
    // SAFETY: as in `switch_call`, with the resume address stored by hand
    // (`lla` + `sd`) and no `call`, so the `ret` pops the predictor entry the
    // target's `call` pushed; a0 is left alone.
    unsafe {
        switch_asm!(
            "addi sp, sp, -16",
            "sd s0, 0(sp)",               // s0 and s1 saved by hand
            "sd s1, 8(sp)",
            save_fp_control!(),
            "lla a2, 2f",                 // our resume address: label 2 below
            "addi sp, sp, -16",
            "sd a2, 0(sp)",               // top of the saved context
            "sd sp, 0(a0)",               // save: our stack pointer
            "ld ra, 0(a1)",               // the target's resume address
            "addi sp, a1, 16",            // the target's stack, resume address popped
            "ret",                        // to ra; the predictor expects it
            "2:",
            restore_fp_control!(),
            "ld s0, 0(sp)",               // continued: s0 and s1 back
            "ld s1, 8(sp)",
            "addi sp, sp, 16",            // sp as before
            inout("a0") save => from,
            in("a1") target,
        );
    }
    from
}

/// `exit` of the `arch` contract.
///
/// # Safety
/// As the contract says.
#[inline(always)]
pub(crate) unsafe fn exit(_: *const u8, target: *mut u8) -> ! {
    // SAFETY: the naked exit loads `target` (valid by contract) and returns
    // into it; the current stack is abandoned, which the contract allows.
    unsafe {
        asm!(
            "tail {exit}",                // a jump through t1: the predictor keeps its entries
            exit = sym sure_exit,
            in("a1") target,
            options(noreturn),
        );
    }
}

/// The switch entered by `call` from [`switch_call`].
///
/// In: a0 = where to save, a1 = target's saved stack pointer, ra = our
/// resume address.
#[unsafe(naked)]
unsafe extern "C" fn sure_switch_call() {
    naked_asm!(
        "addi sp, sp, -16",
        "sd ra, 0(sp)",    // resume address on top
        "sd sp, 0(a0)",    // save: our stack pointer
        "ld a2, 0(a1)",    // the target's resume address
        "addi sp, a1, 16", // the target's stack, resume address popped
        "jr a2",           // continue the target (no hint); a0 still says where we saved
    )
}

/// The final switch out of a finished execution. In: a1 = target.
#[unsafe(naked)]
unsafe extern "C" fn sure_exit() {
    naked_asm!(
        "lla a0, {end}",   // nothing was saved: the stand-in, which a new target
                           // links to as the end of backtraces
        "ld ra, 0(a1)",    // the target's resume address
        "addi sp, a1, 16", // the target's stack, resume address popped
        "ret",             // continue there
        end = sym super::END_OF_STACK_CONTEXT,
    )
}

/// The first code a new context runs, entered with `sp` at the initial
/// frame's `object` and a0 = where the switching execution saved itself
/// (the end-of-stack stand-in after an exit).
///
/// Its call-frame information is the `arch` contract's: the unwinder goes
/// on into the execution that first switched here.
#[rustfmt::skip]
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn sure_trampoline() {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_signal_frame",
        // CFA = [[sp + 16]] + saved frame bytes: the link slot holds the
        // ExecutionContext's address, its first word the saved stack pointer.
        // DW_CFA_def_cfa_expression, 6 bytes: DW_OP_breg2 (sp) 16,
        // DW_OP_deref, DW_OP_deref, DW_OP_plus_uconst <saved frame bytes>.
        concat!(".cfi_escape 0x0f, 6, 0x72, 16, 0x06, 0x06, 0x23, ", saved_frame_bytes!()),
        ".cfi_offset s1, -8",             // the switcher's s1: just below its stack pointer
        ".cfi_offset s0, -16",            // then s0
        concat!(".cfi_offset ra, -", saved_frame_bytes!()), // its resume address, lowest
        "mv a1, a0",                      // second argument: where the switcher saved itself
        "sd a0, 16(sp)",                  // link slot = where the switcher saved itself
        "ld a0, 0(sp)",                   // first argument: the object pointer
        "ld a2, 8(sp)",                   // the entry function
        "lla ra, 3f",                     // fake return address into this function, so the
                                          // unwinder finds this CFI
        "jr a2",                          // no hint, so the predictor still ends with the
                                          // switcher's entry
        "3:",
        "unimp",                          // the entry function never returns
        ".cfi_endproc",
    )
}
