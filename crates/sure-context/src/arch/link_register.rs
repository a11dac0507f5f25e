//! The initial frame of the architectures whose calls leave the return
//! address in a register (aarch64's x30, riscv64's `ra`), where every saved
//! resume address takes a 16-byte slot of its own to keep `sp` aligned.
//!
//! ```text
//! top      (16-byte aligned)
//! top - 8  padding
//! top - 16 link: the ExecutionContext that first switched here (for unwinding)
//! top - 24 entry function
//! top - 32 object pointer          <- sp when the trampoline is entered
//! top - 40 padding
//! top - 48 address of the trampoline   <- returned stack pointer
//! ```

use core::mem::MaybeUninit;

use super::{NewStack, place_frame, sure_trampoline};
use crate::Trampoline;
use crate::context::enter;

/// The frame above, from the returned stack pointer up. The trampoline
/// reads `object` at `sp`, `entry` at `sp + 8` and writes `link` at
/// `sp + 16` before anything can unwind through it, so neither `link` nor
/// the padding between the slots is written here.
#[repr(C)]
struct InitialFrame {
    trampoline: usize,
    padding: MaybeUninit<usize>,
    object: usize,
    entry: usize,
    link: MaybeUninit<usize>,
    top_padding: usize,
}

// A multiple of 16, so every `sp` the frame gives is aligned.
static_assertions::const_assert_eq!(size_of::<InitialFrame>() % 16, 0);

/// What these architectures keep in a context beside its stack pointer:
/// nothing, as everything else is saved on the stack.
#[derive(Clone, Copy)]
pub(crate) struct Registers;

/// Writes the initial frame of a new context below `top` (the stack's
/// bottom and guard are Windows' business) and returns its saved stack
/// pointer, and its (empty) registers. The first switch into it enters the
/// trampoline, which calls [`enter::<T>`](enter)`(object, from)`.
///
/// # Safety
/// `stack.top` is 16-byte aligned and the `size_of::<InitialFrame>()`
/// bytes below it are writable.
pub(crate) unsafe fn initial_frame<T: Trampoline>(
    stack: NewStack,
    object: *mut u8,
) -> (*mut u8, Registers) {
    let frame = InitialFrame {
        trampoline: sure_trampoline as *const () as usize,
        padding: MaybeUninit::uninit(),
        object: object as usize,
        entry: enter::<T> as *const () as usize,
        link: MaybeUninit::uninit(),
        top_padding: 0,
    };
    // SAFETY: `top` and the frame's bytes below it are as `place_frame`
    // requires, by this function's contract.
    (unsafe { place_frame(stack.top, frame) }, Registers)
}
