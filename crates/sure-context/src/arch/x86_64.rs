//! The x86-64 System V context switch.
//!
//! # Saved context
//!
//! A suspended execution is its context: four words, none on its stack.
//!
//! ```text
//! ExecutionContext
//! | stack pointer  | +0   <- null while nothing is saved here
//! | resume address | +8   (Registers::rip)
//! | saved rbx      | +16  (Registers::rbx)
//! | saved rbp      | +24  (Registers::rbp)
//!
//! its stack, with `fp-control` only
//! | [MXCSR | x87 CW] |  stack pointer + 0
//! ```
//!
//! A switch stores its own four words into the context it saves into,
//! loads the target's rbx, rbp and stack pointer, and jumps to the target's
//! resume address. Nothing it loads depends on another load, and the
//! suspended stack is not read (but for the FP control slot with
//! `fp-control`): continuing a coroutine that has
//! sat idle long enough to leave the cache costs the one miss on its
//! context, not a second on the stack that context points into. There is
//! no `call` or `ret`, so the return-stack buffer keeps predicting the
//! returns of the code on each side: a body suspended one call deep
//! returns from that call, after its resume, to the address its own
//! `call` pushed. With a `call` into the switch and a `ret` out of it,
//! that return mispredicted: the `depth` bench's suspend from one call deep
//! took 22.9 ns, against 6.9 ns now and corosensei's 20.7 ns (quick runs of
//! both builds, `--warm-up-time 0.3 --measurement-time 1`, on a 2-core AMD
//! EPYC virtual machine).
//!
//! The switch runs under the calling function's call-frame information:
//! a sampling profiler that stops inside it unwinds wrongly, as it would
//! anywhere inside the asm.
//!
//! Whichever transfer it was, the arriving side finds the switcher's save
//! location in rdi: the switcher's `ExecutionContext`, or after an exit the
//! end-of-stack stand-in.
//! The trampoline links to it for unwinding, and the switch functions
//! return it, so that the sanitizer part can record the stack bounds of the
//! execution that switched.
//!
//! Callee-saved registers r12-r15 are declared clobbered on the inline asm,
//! so the compiler spills only those live at the switch. rbx and rbp cannot
//! be declared clobbered in Rust inline assembly and are saved by hand.

use core::arch::naked_asm;
use core::mem::MaybeUninit;

use super::{NewStack, place_frame};
use crate::Trampoline;
use crate::context::enter;

pub(crate) use super::x86_64_switch::{Registers, exit, stack_pointer};

/// Bytes at a saved stack pointer below the switching code's own, as a
/// DWARF operand: the FP control slot, with `fp-control`.
macro_rules! saved_frame_bytes {
    () => {
        with_fp_control!("8", "0",)
    };
}

x86_64_switches!(save: "", restore: "");

/// The initial frame [`initial_frame`] leaves below the stack's top: the
/// trampoline starts with `rsp` at `link`.
#[repr(C)]
struct InitialFrame {
    /// The ExecutionContext that first switched here, for unwinding:
    /// written by the trampoline before anything can unwind through it.
    link: MaybeUninit<usize>,
    /// Keeps `rsp` at 0 mod 16 at the trampoline's entry, and so at 8 mod
    /// 16 at the entry function's first instruction after the trampoline
    /// pushes its fake return address: the ABI's alignment at a function
    /// entry. Never read.
    padding: MaybeUninit<usize>,
}

// 0 mod 16, so that the trampoline starts where the ABI wants it.
static_assertions::const_assert_eq!(size_of::<InitialFrame>() % 16, 0);

/// The context of a new execution on `stack` (whose bottom and guard are
/// Windows' business): its stack pointer just below the stack's top, and
/// registers that make the first switch into it enter
/// [`sure_trampoline::<T>`](sure_trampoline) with `rbx` = `object`, so that
/// it calls `enter::<T>(object, from)`. Nothing is written on the stack,
/// and creating the context stores two register words: the resume address
/// and rbx.
///
/// # Safety
/// `stack.top` is 16-byte aligned and the `size_of::<InitialFrame>()`
/// bytes below it are writable.
pub(crate) unsafe fn initial_frame<T: Trampoline>(
    stack: NewStack,
    object: *mut u8,
) -> (*mut u8, Registers) {
    let frame = InitialFrame {
        link: MaybeUninit::uninit(),
        padding: MaybeUninit::uninit(),
    };
    // SAFETY: `top` and the frame's bytes below it are as `place_frame`
    // requires, by this function's contract; the frame is uninitialised,
    // so nothing is stored.
    let stack_pointer = unsafe { place_frame(stack.top, frame) };
    let registers = Registers {
        rip: sure_trampoline::<T> as *const () as usize,
        rbx: MaybeUninit::new(object as usize),
        // The trampoline sets rbp from the linked context.
        rbp: MaybeUninit::uninit(),
    };
    (stack_pointer, registers)
}

/// The first code a new context runs, entered with `rsp` at the initial
/// frame's link slot, `rbx` = the object pointer and `rdi` = where the
/// switching execution saved itself (the end-of-stack stand-in after an
/// exit). One per trampoline type, so that it jumps straight to its entry
/// function, which no register has to carry.
///
/// Its call-frame information is the `arch` contract's: the unwinder goes
/// on into the execution that first switched here, whose context the link
/// slot points at.
#[unsafe(naked)]
unsafe extern "C" fn sure_trampoline<T: Trampoline>() {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_signal_frame",
        // Where the unwinder stands (at label 3, the entry function's return
        // address), rsp is the link slot's address, and the slot holds the
        // address L of the linked ExecutionContext.
        // CFA = [L] + saved frame bytes, the switcher's stack pointer:
        // DW_CFA_def_cfa_expression, 6 bytes: DW_OP_breg7 (rsp) 0,
        // DW_OP_deref, DW_OP_deref, DW_OP_plus_uconst <saved frame bytes>.
        concat!(".cfi_escape 0x0f, 6, 0x77, 0, 0x06, 0x06, 0x23, ", saved_frame_bytes!()),
        // rip at L + 8: DW_CFA_expression, register 16 (rip), 5 bytes:
        // DW_OP_breg7 (rsp) 0, DW_OP_deref, DW_OP_plus_uconst 8.
        concat!(".cfi_escape 0x10, 16, 5, 0x77, 0, 0x06, 0x23, ", context_layout!(rip)),
        // rbx at L + 16, likewise (register 3).
        concat!(".cfi_escape 0x10, 3, 5, 0x77, 0, 0x06, 0x23, ", context_layout!(rbx)),
        // rbp at L + 24, likewise (register 6).
        concat!(".cfi_escape 0x10, 6, 5, 0x77, 0, 0x06, 0x23, ", context_layout!(rbp)),
        "mov rsi, rdi",                   // second argument: where the switcher saved itself
        "mov [rsp], rdi",                 // link slot (top - 16) = where the switcher saved itself
        concat!("mov rbp, [rdi + ", context_layout!(rbp), "]"), // the linked rbp, so that a
                                          // frame-pointer walk goes on into the switcher (0 at the end)
        "mov rdi, rbx",                   // first argument: the object pointer
        "lea rax, [rip + 3f]",            // fake return address into this function, so the
        "push rax",                       // unwinder finds this CFI; rsp = 8 mod 16 as at a call
        "jmp {entry}",                    // the entry function; it never returns
        "3:",
        "ud2",
        ".cfi_endproc",
        entry = sym enter::<T>,
    )
}
