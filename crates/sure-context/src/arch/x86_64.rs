//! The x86-64 System V context switch.
//!
//! # Saved context layout
//!
//! A suspended execution is one stack pointer `sp`. The words at `sp` are:
//!
//! ```text
//! higher addresses
//! |  saved rbp          |  sp + 16 (+ 8 with `fp-control`)
//! |  saved rbx          |  sp + 8  (+ 8 with `fp-control`)
//! | [MXCSR | x87 CW]    |  sp + 8, only with `fp-control`
//! |  resume address     |  sp      <- ExecutionContext::stack_pointer
//! lower addresses
//! ```
//!
//! Whoever continues a context loads `sp`, pops the resume address and jumps
//! to it; the code at that address restores the rest itself. That one rule
//! lets three transfers interoperate:
//!
//! - [`switch_call`] enters the naked switch with a `call`, so the CPU's
//!   return-stack buffer (RSB) remembers our resume address; the target is
//!   reached with an indirect `jmp`.
//! - [`switch_return`] pushes its resume address by hand and leaves with a
//!   `ret`. When the target is the context that last `switch_call`ed into us,
//!   that `ret` consumes exactly the RSB entry the `call` pushed, and the CPU
//!   predicts it. This pairing is what makes a resume/suspend round trip
//!   cheap; ending every switch with `ret` mispredicts every time (see
//!   REFERENCES: 8.5 ns against 2.6 ns per switch). Its three-instruction
//!   tail is inline rather than a naked function entered by `jmp`: one taken
//!   branch fewer per suspend measured depth/1 at 29.5 ns instead of 36.9 ns
//!   (corosensei: 28 ns) in `cargo bench -p sure-bench --bench depth`.
//! - [`exit`] leaves for good: it saves nothing.
//!
//! Whichever transfer it was, the arriving side finds the switcher's save
//! location in rdi (zero after an exit): the first word of the switcher's
//! `ExecutionContext`. The trampoline links to it for unwinding, and the
//! switch functions return it, so that the sanitizer part can record the
//! stack bounds of the execution that switched.
//!
//! Callee-saved registers r12-r15 are declared clobbered on the inline asm,
//! so the compiler spills only those live at the switch. rbx and rbp cannot
//! be declared clobbered in Rust inline assembly and are pushed by hand.

use core::arch::{asm, naked_asm};

use super::{EntryFn, place_frame};

/// Saves the floating-point control words below the saved rbx, with `fp-control`.
macro_rules! save_fp_control {
    () => {
        with_fp_control!(
            concat!(
                "sub rsp, 8\n",                // make room for MXCSR and the x87 control word
                "stmxcsr dword ptr [rsp]\n",   // MXCSR at sp + 0
                "fnstcw word ptr [rsp + 4]\n", // x87 control word at sp + 4
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
                "ldmxcsr dword ptr [rsp]\n",  // MXCSR back from sp + 0
                "fldcw word ptr [rsp + 4]\n", // x87 control word back from sp + 4
                "add rsp, 8\n",               // drop the slot
            ),
            "",
        )
    };
}

/// Bytes a switch pushes below the switching code's stack pointer, as a
/// DWARF operand: resume address, rbx, rbp (and the FP control slot).
macro_rules! saved_frame_bytes {
    () => {
        with_fp_control!("32", "24",)
    };
}

/// The stack pointer register (see `crate::stack_pointer`).
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies a register into another; touches no memory.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// `asm!` with every register a switch lets the compiler save declared
/// clobbered: r12-r15 by name, and the rest of what a call may change by
/// `clobber_abi`. Both switches use it, so they cannot drift apart.
macro_rules! switch_asm {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        )
    };
}

/// `switch_call` of the `arch` contract: enters the naked switch with
/// `call`.
///
/// # Safety
/// As the contract says.
#[inline(always)]
pub(crate) unsafe fn switch_call(save: *mut *mut u8, target: *mut u8) -> *mut u8 {
    let from: *mut u8;
    // SAFETY: the naked switch saves this execution at `save` and continues
    // `target`, both valid by this function's contract. rbx and rbp are
    // pushed here and popped on return; every other register the ABI lets a
    // call change, and r12-r15, are declared clobbered, which is everything
    // another execution may leave different. The asm pushes to the stack, so
    // `nostack` is not given and the stack is aligned for the `call`. The
    // naked code leaves rdi alone, so the continuing execution finds the
    // `save` of whoever switched to it there (see `sure_trampoline`).
    unsafe {
        switch_asm!(
            "push rbp",                   // rbp, not declarable as clobbered, saved by hand
            "push rbx",                   // likewise rbx
            save_fp_control!(),
            "call {switch}",              // pushes the resume address (the next line) and switches
            restore_fp_control!(),
            "pop rbx",                    // continued: resume address popped, restore rbx
            "pop rbp",                    // and rbp; the stack is as it was before this asm
            switch = sym sure_switch_call,
            inout("rdi") save => from,
            in("rsi") target,
        );
    }
    from
}

/// `switch_return` of the `arch` contract: leaves with a `ret`.
///
/// # Safety
/// As the contract says.
#[inline(always)]
pub(crate) unsafe fn switch_return(save: *mut *mut u8, target: *mut u8) -> *mut u8 {
    let from: *mut u8;
    // SAFETY: as in `switch_call`; the only difference is that the resume
    // address is pushed by hand (`lea` + `push`) and no `call` is made, so
    // no return-stack-buffer entry is pushed here and the `ret` pops the
    // one the target's `call` pushed. rdi is left alone, as the naked
    // switch does.
    unsafe {
        switch_asm!(
            "push rbp",                   // rbp saved by hand
            "push rbx",                   // rbx saved by hand
            save_fp_control!(),
            "lea rax, [rip + 2f]",        // our resume address: label 2 below
            "push rax",                   // top of the saved context
            "mov [rdi], rsp",             // save: our stack pointer, resume address on top
            "mov rsp, rsi",               // the target's stack
            "ret",                        // pop its resume address; the RSB predicts it
            "2:",
            restore_fp_control!(),
            "pop rbx",                    // continued: restore rbx
            "pop rbp",                    // and rbp; the stack is as it was before this asm
            inout("rdi") save => from,
            in("rsi") target,
        );
    }
    from
}

/// `exit` of the `arch` contract.
///
/// # Safety
/// As the contract says.
#[inline(always)]
pub(crate) unsafe fn exit(target: *mut u8) -> ! {
    // SAFETY: the naked exit loads `target` (valid by contract) and returns
    // into it; the current stack is abandoned, which the contract allows.
    unsafe {
        asm!(
            "jmp {exit}",                 // no call: the RSB keeps the target's entry
            exit = sym sure_exit,
            in("rsi") target,
            options(noreturn),
        );
    }
}

/// The switch entered by `call` from [`switch_call`].
///
/// In: `rdi` = where to save, `rsi` = target's saved stack pointer,
/// `[rsp]` = our resume address (pushed by the `call`).
#[unsafe(naked)]
unsafe extern "C" fn sure_switch_call() {
    naked_asm!(
        "mov [rdi], rsp",     // save: our stack pointer, resume address on top
        "mov rax, [rsi]",     // the target's resume address
        "lea rsp, [rsi + 8]", // the target's stack, resume address popped
        "jmp rax",            // continue the target; rdi still says where we saved
    )
}

/// The final switch out of a finished execution. In: `rsi` = target.
#[unsafe(naked)]
unsafe extern "C" fn sure_exit() {
    naked_asm!(
        "xor edi, edi", // nothing was saved: a new target links to no one
        "mov rsp, rsi", // the target's stack
        "ret",          // pop its resume address and continue there
    )
}

/// The initial frame [`initial_frame`] writes below the stack's top. The
/// first switch pops `trampoline`, so [`sure_trampoline`] starts with `rsp`
/// at `padding`.
#[repr(C)]
struct InitialFrame {
    trampoline: usize,
    /// Puts `rsp` at 0 mod 16 when the trampoline is entered, and so at 8
    /// mod 16 at the entry function's first instruction after the
    /// trampoline pushes its fake return address: the ABI's alignment at a
    /// function entry.
    padding: usize,
    object: usize,
    entry: usize,
    /// The ExecutionContext that first switched here, for unwinding.
    link: usize,
}

// 8 mod 16, so that `padding` puts `rsp` where the ABI wants it.
static_assertions::const_assert_eq!(size_of::<InitialFrame>() % 16, 8);

/// Writes the initial frame of a new context below `top` and returns its
/// saved stack pointer. The first switch into it enters [`sure_trampoline`],
/// which calls `entry(object, from)`.
///
/// # Safety
/// `top` is 16-byte aligned and the `size_of::<InitialFrame>()` bytes
/// below it are writable.
pub(crate) unsafe fn initial_frame(top: *mut u8, entry: EntryFn, object: *mut u8) -> *mut u8 {
    let frame = InitialFrame {
        trampoline: sure_trampoline as *const () as usize,
        padding: 0,
        object: object as usize,
        entry: entry as usize,
        link: 0,
    };
    // SAFETY: `top` and the frame's bytes below it are as `place_frame`
    // requires, by this function's contract.
    unsafe { place_frame(top, frame) }
}

/// The first code a new context runs, entered with `rsp` one word above the
/// saved stack pointer of the initial frame and `rdi` = where the switching
/// execution saved itself (0 after an exit).
///
/// Its call-frame information is the `arch` contract's: the unwinder goes
/// on into the execution that first switched here.
#[unsafe(naked)]
unsafe extern "C" fn sure_trampoline() {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_signal_frame",
        // CFA = [[rsp + 24]] + saved frame bytes: the link slot holds the
        // ExecutionContext's address, its first word the saved stack pointer.
        // DW_CFA_def_cfa_expression, 6 bytes: DW_OP_breg7 (rsp) 24,
        // DW_OP_deref, DW_OP_deref, DW_OP_plus_uconst <saved frame bytes>.
        concat!(".cfi_escape 0x0f, 6, 0x77, 24, 0x06, 0x06, 0x23, ", saved_frame_bytes!()),
        ".cfi_offset rbp, -8",            // the switcher's rbp: just below its stack pointer
        ".cfi_offset rbx, -16",           // then rbx
        concat!(".cfi_offset rip, -", saved_frame_bytes!()), // its resume address, lowest
        "mov rsi, rdi",                   // second argument: where the switcher saved itself
        "test rdi, rdi",                  // started by an exit: nothing to link to
        "jnz 2f",
        "lea rdi, [rip + {end}]",         // link to the frame that ends backtraces
        "2:",
        "mov [rsp + 24], rdi",            // link slot (top - 8) = where the switcher saved itself
        "mov rdi, [rsp + 8]",             // first argument: the object pointer (top - 24)
        "lea rax, [rip + 3f]",            // fake return address into this function, so the
        "push rax",                       // unwinder finds this CFI; rsp = 8 mod 16 as at a call
        "jmp [rsp + 24]",                 // entry function (top - 16); a jmp, not a call, so the
                                          // RSB still ends with the switcher's entry
        "3:",
        "ud2",                            // the entry function never returns
        ".cfi_endproc",
        end = sym super::END_OF_STACK_CONTEXT,
    )
}
