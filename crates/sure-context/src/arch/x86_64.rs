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
//! - [`switch_call`] enters the switch with a `call`, so the CPU's
//!   return-stack buffer (RSB) remembers our resume address; the target is
//!   reached with an indirect `jmp`, one per call site (the switch is
//!   inline, after the resume address), so each site's target is
//!   predicted on its own. Those four instructions run under the calling
//!   function's call-frame information, which does not know the asm's
//!   pushes: a sampling profiler that stops there unwinds wrongly, as it
//!   would anywhere inside the asm.
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

use core::arch::naked_asm;
use core::mem::MaybeUninit;

use super::{EntryFn, NewStack, place_frame};

pub(crate) use super::x86_64_switch::{exit, stack_pointer};

/// Bytes a switch pushes below the switching code's stack pointer, as a
/// DWARF operand: resume address, rbx, rbp (and the FP control slot).
macro_rules! saved_frame_bytes {
    () => {
        with_fp_control!("32", "24",)
    };
}

x86_64_switches!(
    // rbp and rbx, which no operand can name: saved by hand.
    save: concat!("push rbp\n", "push rbx\n"),
    restore: concat!("pop rbx\n", "pop rbp\n"),
);

/// The initial frame [`initial_frame`] writes below the stack's top. The
/// first switch pops `trampoline`, so [`sure_trampoline`] starts with `rsp`
/// at `padding`.
#[repr(C)]
struct InitialFrame {
    trampoline: usize,
    /// Puts `rsp` at 0 mod 16 when the trampoline is entered, and so at 8
    /// mod 16 at the entry function's first instruction after the
    /// trampoline pushes its fake return address: the ABI's alignment at a
    /// function entry. Never read, so never written.
    padding: MaybeUninit<usize>,
    object: usize,
    entry: usize,
    /// The ExecutionContext that first switched here, for unwinding:
    /// written by the trampoline before anything can unwind through it.
    link: MaybeUninit<usize>,
}

// 8 mod 16, so that `padding` puts `rsp` where the ABI wants it.
static_assertions::const_assert_eq!(size_of::<InitialFrame>() % 16, 8);

/// Writes the initial frame of a new context below `top` (the stack's
/// bottom and guard are Windows' business) and returns its saved stack pointer. The first switch into it enters [`sure_trampoline`],
/// which calls `entry(object, from)`.
///
/// # Safety
/// `stack.top` is 16-byte aligned and the `size_of::<InitialFrame>()`
/// bytes below it are writable.
pub(crate) unsafe fn initial_frame(stack: NewStack, entry: EntryFn, object: *mut u8) -> *mut u8 {
    let frame = InitialFrame {
        trampoline: sure_trampoline as *const () as usize,
        padding: MaybeUninit::uninit(),
        object: object as usize,
        entry: entry as usize,
        link: MaybeUninit::uninit(),
    };
    // SAFETY: `top` and the frame's bytes below it are as `place_frame`
    // requires, by this function's contract.
    unsafe { place_frame(stack.top, frame) }
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
