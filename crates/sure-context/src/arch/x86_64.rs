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

/// Saves the floating-point control words below the saved rbx, when enabled.
#[cfg(feature = "fp-control")]
macro_rules! save_fp_control {
    () => {
        concat!(
            "sub rsp, 8\n",                // make room for MXCSR and the x87 control word
            "stmxcsr dword ptr [rsp]\n",   // MXCSR at sp + 0
            "fnstcw word ptr [rsp + 4]\n", // x87 control word at sp + 4
        )
    };
}
/// Saves the floating-point control words below the saved rbx, when enabled.
#[cfg(not(feature = "fp-control"))]
macro_rules! save_fp_control {
    () => {
        ""
    };
}

/// Restores what [`save_fp_control`] saved, when enabled.
#[cfg(feature = "fp-control")]
macro_rules! restore_fp_control {
    () => {
        concat!(
            "ldmxcsr dword ptr [rsp]\n",  // MXCSR back from sp + 0
            "fldcw word ptr [rsp + 4]\n", // x87 control word back from sp + 4
            "add rsp, 8\n",               // drop the slot
        )
    };
}
/// Restores what [`save_fp_control`] saved, when enabled.
#[cfg(not(feature = "fp-control"))]
macro_rules! restore_fp_control {
    () => {
        ""
    };
}

/// Bytes a switch pushes below the switching code's stack pointer, as a
/// DWARF operand: resume address, rbx, rbp (and the FP control slot).
#[cfg(feature = "fp-control")]
macro_rules! saved_frame_bytes {
    () => {
        "32"
    };
}
/// Bytes a switch pushes below the switching code's stack pointer, as a
/// DWARF operand: resume address, rbx, rbp (and the FP control slot).
#[cfg(not(feature = "fp-control"))]
macro_rules! saved_frame_bytes {
    () => {
        "24"
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

/// Saves the current execution into `*save` and continues `target`, entering
/// the switch with a `call` (see the module docs). Returns when some other
/// execution continues the one saved here, with the `save` location of the
/// switch that did (null if it was an [`exit`]).
///
/// # Safety
/// `save` is valid for a write; `target` is a saved context as laid out in
/// the module docs, on a stack that stays valid while it runs.
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
        asm!(
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
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    from
}

/// Saves the current execution into `*save` and continues `target`, leaving
/// with a `ret` that the CPU predicts when `target` is the execution that
/// last [`switch_call`]ed into this one. Returns as [`switch_call`] does.
///
/// # Safety
/// As [`switch_call`].
#[inline(always)]
pub(crate) unsafe fn switch_return(save: *mut *mut u8, target: *mut u8) -> *mut u8 {
    let from: *mut u8;
    // SAFETY: as in `switch_call`; the only difference is that the resume
    // address is pushed by hand (`lea` + `push`) and no `call` is made, so
    // no return-stack-buffer entry is pushed here and the `ret` pops the
    // one the target's `call` pushed. rdi is left alone, as the naked
    // switch does.
    unsafe {
        asm!(
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
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    from
}

/// Continues `target` without saving the current execution, which must
/// never be continued again.
///
/// # Safety
/// `target` is a saved context as in [`switch_call`]; nothing on the
/// current stack is used again.
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

/// The initial frame [`initial_frame`] writes, in words from the new saved
/// stack pointer upwards.
const FRAME_TRAMPOLINE: usize = 0;
const FRAME_PADDING: usize = 1;
const FRAME_OBJECT: usize = 2;
const FRAME_ENTRY: usize = 3;
const FRAME_LINK: usize = 4;
/// Bytes of the initial frame; the saved stack pointer is this far below the
/// 16-byte aligned top, which puts `rsp` at 0 mod 16 when the trampoline is
/// entered (resume address popped), and so at 8 mod 16 at the entry
/// function's first instruction after the trampoline pushes its fake return
/// address: the ABI's alignment at a function entry.
pub(crate) const INITIAL_FRAME_BYTES: usize = 40;

/// The entry function a new context runs: receives the object pointer and
/// the `save` location of the switch that started it (null if it was an
/// [`exit`]), and must never return.
pub(crate) type EntryFn = unsafe extern "C" fn(object: *mut u8, from: *mut u8) -> !;

/// Writes the initial frame of a new context below `top` and returns its
/// saved stack pointer. The first switch into it enters [`sure_trampoline`],
/// which calls `entry(object, from)`.
///
/// ```text
/// top      (16-byte aligned)
/// top - 8  link: the ExecutionContext that first switched here (for unwinding)
/// top - 16 entry function
/// top - 24 object pointer
/// top - 32 (padding for alignment)
/// top - 40 address of sure_trampoline   <- returned stack pointer
/// ```
///
/// # Safety
/// `top` is 16-byte aligned and the `INITIAL_FRAME_BYTES` below it are
/// writable.
pub(crate) unsafe fn initial_frame(top: *mut u8, entry: EntryFn, object: *mut u8) -> *mut u8 {
    // SAFETY: the caller guarantees the frame's bytes below `top` are
    // writable; `top` is 16-byte aligned, so every word slot is aligned.
    unsafe {
        let sp = top.sub(INITIAL_FRAME_BYTES).cast::<usize>();
        sp.add(FRAME_TRAMPOLINE)
            .write(sure_trampoline as *const () as usize);
        sp.add(FRAME_PADDING).write(0);
        sp.add(FRAME_OBJECT).write(object as usize);
        sp.add(FRAME_ENTRY).write(entry as usize);
        sp.add(FRAME_LINK).write(0);
        sp.cast()
    }
}

/// The link a context started by [`exit`] gets: a context whose saved frame
/// has a zero return address, where unwinders stop.
static END_OF_STACK_FRAME: [usize; 4] = [0; 4];
/// A stand-in `ExecutionContext` (its first word is a saved stack pointer)
/// pointing at [`END_OF_STACK_FRAME`].
static END_OF_STACK_CONTEXT: &[usize; 4] = &END_OF_STACK_FRAME;

/// The first code a new context runs, entered with `rsp` one word above the
/// saved stack pointer of the initial frame and `rdi` = where the switching
/// execution saved itself (0 after an exit).
///
/// Its DWARF call-frame information makes the unwinder continue, past the
/// entry function, into the execution that first switched here: the link
/// slot points at that `ExecutionContext`, whose first word is the saved
/// stack pointer, whose layout the CFI describes. It is marked a signal
/// frame so that gdb accepts a caller frame at a lower address.
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
        end = sym END_OF_STACK_CONTEXT,
    )
}
