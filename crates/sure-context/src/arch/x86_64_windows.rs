//! The x86-64 Windows (Microsoft x64 ABI) context switch.
//!
//! The same design as the System V switch (`x86_64.rs`): the resume
//! address, rbx and rbp saved in the context beside the stack pointer, and
//! one inline jump per switch. Two things differ.
//!
//! - **More callee-saved registers.** The Microsoft ABI also preserves
//!   rdi, rsi and xmm6-xmm15. The asm declares `clobber_abi("sysv64")`,
//!   whose clobbers include all of them, so the compiler saves those live
//!   at the switch in the enclosing Win64 function (with unwind info of its
//!   own), and only rbx and rbp are saved by hand, as on Linux.
//! - **The thread environment block (TEB) describes the running stack.**
//!   Stack probes (`__chkstk` on msvc reads `StackLimit`), stack growth
//!   and exception dispatch (which rejects frames outside
//!   `StackLimit..StackBase`, so a panic could not even be caught) all read
//!   it through `gs`. Every switch therefore saves five of its fields on
//!   the switching stack and restores them when continued, as
//!   `SwitchToFiber` does: `ExceptionList` (`gs:[0x0]`, unused on x64 but
//!   read by wine), `StackBase` (`gs:[0x8]`), `StackLimit` (`gs:[0x10]`),
//!   `DeallocationStack` (`gs:[0x1478]`) and `GuaranteedStackBytes`
//!   (`gs:[0x1748]`). A new context's values come from its stack region,
//!   in its initial frame.
//!
//! # Saved context layout
//!
//! The context holds the stack pointer `sp`, the resume address, rbx and
//! rbp, as on Linux; the stack holds, at `sp`:
//!
//! ```text
//! higher addresses
//! |  resume address, again        |  sp + 56 (+ 8 with `fp-control`)
//! |  saved rbp, again             |  sp + 48
//! |  saved rbx, again             |  sp + 40
//! |  ExceptionList                |  sp + 32
//! |  StackBase                    |  sp + 24
//! |  StackLimit                   |  sp + 16
//! |  DeallocationStack            |  sp + 8
//! |  GuaranteedStackBytes         |  sp + 0
//! | [MXCSR | x87 CW]              |  sp + 0, only with `fp-control`
//! lower addresses
//! ```
//!
//! The copies of the resume address, rbp and rbx are for the unwinder (see
//! below), which reads only the stack; the continued side drops them,
//! having had rbx and rbp from its context, and pops the TEB fields, so
//! continuing a Windows context reads its stack as well as its context.
//!
//! # Unwinding
//!
//! Panics never cross a switch: sure-coro catches them at the coroutine's
//! root and raises them again on the resumer's side, and a forced unwind
//! starts on the coroutine's own stack. Exception dispatch could not carry
//! one across anyway: it does not switch the TEB's stack fields.
//!
//! Backtraces do cross, as with DWARF CFI on Linux, through the
//! trampoline's SEH unwind codes (the technique is corosensei's). The
//! trampoline points rbp, which every function below it keeps, at the link
//! `ExecutionContext`; its codes, applied by the unwinder in reverse order,
//! say: the frame is at rbp (`setframe`); "rsp was saved at offset 0"
//! (`savereg rsp`), which loads the link's saved stack pointer, moving the
//! walk onto the resumer's stack; skip the FP control slot and TEB fields
//! (`stackalloc`); pop rbx and rbp (`pushreg`); and return through the copy
//! of the resume address at the top.

use core::arch::naked_asm;
use core::mem::MaybeUninit;

use super::{NewStack, place_frame};
use crate::Trampoline;
use crate::context::enter;

pub(crate) use super::x86_64_switch::{Registers, exit, stack_pointer};

/// Pushes the unwinder's copies of the resume address (label `2`), rbp and
/// rbx, and the TEB's stack fields: the part of a saved context on its
/// stack above the FP control slot.
macro_rules! save_registers_and_teb {
    () => {
        concat!(
            "lea rax, [rip + 2f]\n", // the resume address again, for the unwinder: the
            "push rax\n",            // trampoline's unwind codes return through it
            "push rbp\n",            // the unwinder's copy of rbp
            "push rbx\n",            // and of rbx
            "push qword ptr gs:[0x0]\n", // ExceptionList
            "push qword ptr gs:[0x8]\n", // StackBase: the stack's top
            "push qword ptr gs:[0x10]\n", // StackLimit: its committed bottom
            "push qword ptr gs:[0x1478]\n", // DeallocationStack: its allocation base
            "push qword ptr gs:[0x1748]\n", // GuaranteedStackBytes
        )
    };
}

/// Pops the TEB fields [`save_registers_and_teb`] pushed back into the
/// TEB, and drops the unwinder's copies above them.
macro_rules! restore_registers_and_teb {
    () => {
        concat!(
            "pop qword ptr gs:[0x1748]\n",
            "pop qword ptr gs:[0x1478]\n",
            "pop qword ptr gs:[0x10]\n",
            "pop qword ptr gs:[0x8]\n",
            "pop qword ptr gs:[0x0]\n",
            "add rsp, 24\n", // the unwinder's copies of rbx, rbp and the resume address:
                             // the switch restored rbx and rbp from the context
        )
    };
}

/// Bytes of a saved context from its stack pointer up to the saved rbx:
/// the FP control slot and the five TEB fields.
macro_rules! below_saved_rbx {
    () => {
        with_fp_control!("48", "40",)
    };
}

x86_64_switches!(save: save_registers_and_teb!(), restore: restore_registers_and_teb!());

/// The initial frame [`initial_frame`] writes below the stack's top. The
/// first switch starts [`sure_trampoline`] with `rsp` at
/// `guaranteed_stack_bytes`; it pops the TEB fields and goes on with `rsp`
/// at `padding`.
#[repr(C)]
struct InitialFrame {
    guaranteed_stack_bytes: usize,
    deallocation_stack: usize,
    stack_limit: usize,
    stack_base: usize,
    /// The end of the SEH chain, as a new thread's: `-1`.
    exception_list: usize,
    /// Puts `rsp` at 8 mod 16 at the entry function's first instruction,
    /// after the trampoline's 32 bytes of shadow space and fake return
    /// address: the ABI's alignment at a function entry. Never read, so
    /// never written.
    padding: MaybeUninit<usize>,
    object: usize,
    entry: usize,
    /// The ExecutionContext that first switched here: written by the
    /// trampoline before anything can unwind through it.
    link: MaybeUninit<usize>,
}

// 8 mod 16, so that `padding` puts `rsp` where the ABI wants it.
static_assertions::const_assert_eq!(size_of::<InitialFrame>() % 16, 8);

/// Writes the initial frame of a new context on `stack` and returns its
/// saved stack pointer and registers. The first switch into it enters
/// [`sure_trampoline`], which sets the TEB's stack fields to that stack and
/// calls [`enter::<T>`](enter)`(object, from)`.
///
/// The TEB then says what a thread's stack says: `StackBase` is the top,
/// `StackLimit` the usable bottom (stack probes touch the pages below it
/// one by one), `DeallocationStack` the guard's start, and
/// `GuaranteedStackBytes` the guard less its lowest page. A guard of
/// `PAGE_GUARD` pages above an inaccessible one, as sure-stack's, is then
/// what Windows makes usable when it raises a stack overflow, so that the
/// handlers have room to run.
///
/// # Safety
/// `stack.top` is 16-byte aligned, the `size_of::<InitialFrame>()` bytes
/// below it are writable, and `stack.bottom..stack.top` is committed stack
/// memory.
pub(crate) unsafe fn initial_frame<T: Trampoline>(
    stack: NewStack,
    object: *mut u8,
) -> (*mut u8, Registers) {
    /// The page size of x86-64 Windows.
    const PAGE: usize = 4096;
    let bottom = stack.bottom as usize;
    let frame = InitialFrame {
        guaranteed_stack_bytes: stack.guard.saturating_sub(PAGE),
        deallocation_stack: bottom - stack.guard,
        stack_limit: bottom,
        stack_base: stack.top as usize,
        exception_list: usize::MAX,
        padding: MaybeUninit::uninit(),
        object: object as usize,
        entry: enter::<T> as *const () as usize,
        link: MaybeUninit::uninit(),
    };
    // SAFETY: `top` and the frame's bytes below it are as `place_frame`
    // requires, by this function's contract.
    let stack_pointer = unsafe { place_frame(stack.top, frame) };
    // The trampoline sets rbp; rbx is never read.
    let registers = Registers {
        rip: sure_trampoline as *const () as usize,
        rbx: MaybeUninit::uninit(),
        rbp: MaybeUninit::uninit(),
    };
    (stack_pointer, registers)
}

/// The first code a new context runs, entered with `rsp` at the initial
/// frame's `guaranteed_stack_bytes` and `rdi` = where the switching
/// execution saved itself (the end-of-stack stand-in after an exit). Its
/// unwind codes are the module's "Unwinding"; they describe the frame below
/// the entry function, so they all sit after the code that sets rbp, at the
/// end of the prologue.
#[rustfmt::skip]
#[unsafe(naked)]
unsafe extern "C" fn sure_trampoline() {
    naked_asm!(
        "sure_context_trampoline:",       // a local name for the unwind info's function
        ".seh_proc sure_context_trampoline",
        "pop qword ptr gs:[0x1748]",      // GuaranteedStackBytes
        "pop qword ptr gs:[0x1478]",      // DeallocationStack = the guard's start
        "pop qword ptr gs:[0x10]",        // StackLimit = the stack's bottom
        "pop qword ptr gs:[0x8]",         // StackBase = the stack's top
        "pop qword ptr gs:[0x0]",         // ExceptionList = -1, the end of the chain
        "mov rdx, rdi",                   // second argument: where the switcher saved itself
        "mov [rsp + 24], rdi",            // link slot (top - 8)
        "mov rbp, rdi",                   // the unwinder's frame: the link context
        "mov rcx, [rsp + 8]",             // first argument: the object pointer (top - 24)
        "sub rsp, 32",                    // the callee's shadow space
        ".seh_pushreg rbp",               // unwound last: rbp from the resumer's saved context
        ".seh_pushreg rbx",               // then rbx, below it
        concat!(".seh_stackalloc ", below_saved_rbx!()), // skip up to the saved rbx
        ".seh_savereg rsp, 0",            // rsp = [frame]: the link's saved stack pointer
        ".seh_setframe rbp, 0",           // unwound first: the frame is at rbp, the link
        ".seh_endprologue",
        "lea rax, [rip + 3f]",            // fake return address into this function
        "push rax",                       // rsp = 8 mod 16, as at a call
        "jmp [rsp + 56]",                 // entry function (top - 16); a jmp: it never returns
        "3:",
        "ud2",                            // the entry function never returns
        ".seh_endproc",
    )
}
