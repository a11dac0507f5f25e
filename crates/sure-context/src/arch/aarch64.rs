//! The AArch64 (AAPCS64) context switch.
//!
//! # Saved context layout
//!
//! A suspended execution is one stack pointer `sp`, 16-byte aligned as
//! AArch64 requires of every access through `sp`. The words at `sp` are:
//!
//! ```text
//! higher addresses
//! |  saved x19          |  sp + 24 (+ 16 with `fp-control`)
//! |  saved x29 (fp)     |  sp + 16 (+ 16 with `fp-control`)
//! | [FPCR, padding]     |  sp + 16, only with `fp-control`
//! |  padding            |  sp + 8
//! |  resume address     |  sp      <- ExecutionContext::stack_pointer
//! lower addresses
//! ```
//!
//! The transfers are those of `x86_64.rs`, with the link register in the
//! place of the pushed return address:
//!
//! - [`switch_call`] enters the naked switch with `bl`, which puts the
//!   resume address in x30 and pushes it on the return-address predictor;
//!   the naked code stores x30 as the top word and reaches the target with
//!   `br`, which the predictor does not count as a return.
//! - [`switch_return`] stores its resume address by hand, loads the
//!   target's into x30 and leaves with `ret`, which pops the predictor's
//!   entry that the target's `bl` pushed: the pair stays in step.
//! - [`exit`] saves nothing.
//!
//! The arriving side finds the switcher's save location in x0 (the
//! end-of-stack stand-in after an exit), as x86-64 finds it in rdi.
//!
//! x20-x28 are declared clobbered, and `clobber_abi("C")` covers x0-x18,
//! x30 and all of v0-v31 (so the callee-saved d8-d15 too). x19 (LLVM's
//! base pointer) and x29 (the frame pointer) cannot be declared and are
//! saved by hand.
//!
//! `fp-control` keeps FPCR (rounding mode, flush-to-zero, default NaN) per
//! context. AAPCS64 gives those modes thread storage duration, like C's
//! `fenv.h`: a call may change them, so the switch need not save them, and
//! does only when asked. FPSR (the sticky status flags) is never saved.
//!
//! Branch target identification (`-Zbranch-protection=bti`) is not
//! supported: the switch's indirect branches land on no `bti` pad, so a
//! program built with it enforced would fault at the first switch.

use core::arch::{asm, naked_asm};

/// Saves FPCR below the saved x29 and x19, with `fp-control`.
macro_rules! save_fp_control {
    () => {
        with_fp_control!(
            concat!(
                "mrs x2, fpcr\n",        // the floating-point control register
                "str x2, [sp, #-16]!\n", // in its own 16-byte slot
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
                "ldr x2, [sp], #16\n", // FPCR back, slot dropped
                "msr fpcr, x2\n",
            ),
            "",
        )
    };
}

/// Bytes a switch stores below the switching code's stack pointer, as a
/// DWARF operand: resume address, x29 and x19 (and the FPCR slot).
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
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// `asm!` with every register a switch lets the compiler save declared
/// clobbered: x20-x28 by name, and the rest of what a call may change by
/// `clobber_abi`. Both switches use it, so they cannot drift apart.
macro_rules! switch_asm {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            lateout("x20") _, lateout("x21") _, lateout("x22") _, lateout("x23") _,
            lateout("x24") _, lateout("x25") _, lateout("x26") _, lateout("x27") _,
            lateout("x28") _,
            clobber_abi("C"),
        )
    };
}

/// `switch_call` of the `arch` contract: enters the naked switch with
/// `bl`.
///
/// # Safety
/// As the contract says.
#[inline(always)]
pub(crate) unsafe fn switch_call(save: *mut u8, _: *const u8, target: *mut u8) -> *mut u8 {
    let from: *mut u8;
    // SAFETY: the naked switch saves this execution at `save` and continues
    // `target`, both valid by this function's contract. x19 and x29 are
    // stored here and loaded back on return; x20-x28 and everything the C
    // ABI lets a call change (x30 included) are declared clobbered. sp stays
    // 16-byte aligned, and the naked code leaves x0 alone, so the continuing
    // execution finds the `save` of whoever switched to it there.
    unsafe {
        switch_asm!(
            "stp x29, x19, [sp, #-16]!",  // the two registers no operand can name
            save_fp_control!(),
            "bl {switch}",                // x30 = resume address (the next line); switches
            restore_fp_control!(),
            "ldp x29, x19, [sp], #16",    // continued: x29 and x19 back, sp as before
            switch = sym sure_switch_call,
            inout("x0") save => from,
            in("x1") target,
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
    // (`adr` + `str`) and no `bl`, so the `ret` pops the predictor entry the
    // target's `bl` pushed; x0 is left alone.
    unsafe {
        switch_asm!(
            "stp x29, x19, [sp, #-16]!",  // x29 and x19 saved by hand
            save_fp_control!(),
            "adr x2, 2f",                 // our resume address: label 2 below
            "str x2, [sp, #-16]!",        // top of the saved context
            "mov x2, sp",
            "str x2, [x0]",               // save: our stack pointer
            "ldr x30, [x1]",              // the target's resume address
            "add sp, x1, #16",            // the target's stack, resume address popped
            "ret",                        // to x30; the predictor expects it
            "2:",
            restore_fp_control!(),
            "ldp x29, x19, [sp], #16",    // continued: x29 and x19 back, sp as before
            inout("x0") save => from,
            in("x1") target,
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
            "b {exit}",                   // no bl: the predictor keeps the target's entry
            exit = sym sure_exit,
            in("x1") target,
            options(noreturn),
        );
    }
}

/// The switch entered by `bl` from [`switch_call`].
///
/// In: x0 = where to save, x1 = target's saved stack pointer, x30 = our
/// resume address.
#[unsafe(naked)]
unsafe extern "C" fn sure_switch_call() {
    naked_asm!(
        "str x30, [sp, #-16]!", // resume address on top, sp kept 16-byte aligned
        "mov x2, sp",
        "str x2, [x0]",    // save: our stack pointer
        "ldr x2, [x1]",    // the target's resume address
        "add sp, x1, #16", // the target's stack, resume address popped
        "br x2",           // continue the target; x0 still says where we saved
    )
}

/// The final switch out of a finished execution. In: x1 = target.
#[unsafe(naked)]
unsafe extern "C" fn sure_exit() {
    naked_asm!(
        "adrp x0, {end}",          // nothing was saved: the stand-in, which a new
        "add x0, x0, :lo12:{end}", // target links to as the end of backtraces
        "ldr x30, [x1]",           // the target's resume address
        "add sp, x1, #16",         // the target's stack, resume address popped
        "ret",                     // continue there
        end = sym super::END_OF_STACK_CONTEXT,
    )
}

/// The first code a new context runs, entered with `sp` at the initial
/// frame's `object` and x0 = where the switching execution saved itself
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
        // DW_CFA_def_cfa_expression, 6 bytes: DW_OP_breg31 (sp) 16,
        // DW_OP_deref, DW_OP_deref, DW_OP_plus_uconst <saved frame bytes>.
        concat!(".cfi_escape 0x0f, 6, 0x8f, 16, 0x06, 0x06, 0x23, ", saved_frame_bytes!()),
        ".cfi_offset x19, -8",            // the switcher's x19: just below its stack pointer
        ".cfi_offset x29, -16",           // then x29
        concat!(".cfi_offset x30, -", saved_frame_bytes!()), // its resume address, lowest
        "mov x1, x0",                     // second argument: where the switcher saved itself
        "str x0, [sp, #16]",              // link slot = where the switcher saved itself
        "ldr x0, [sp]",                   // first argument: the object pointer
        "ldr x2, [sp, #8]",               // the entry function
        "adr x30, 3f",                    // fake return address into this function, so the
                                          // unwinder finds this CFI
        "br x2",                          // a br, not a bl, so the predictor still ends
                                          // with the switcher's entry
        "3:",
        "brk #1",                         // the entry function never returns
        ".cfi_endproc",
    )
}
