//! Architecture-specific switch code, one module per target.
//!
//! # The contract every module keeps
//!
//! A suspended execution is its context: a saved stack pointer, followed
//! by the architecture's `Registers`. On x86-64 those are the resume
//! address, rbx and rbp, and continuing a context reads nothing else; on
//! aarch64 and riscv64 they are empty, and the stack pointer's top word is
//! the address to continue at (a 16-byte slot, as calls leave the return
//! address in a register), which whoever continues it pops and jumps to,
//! the code there restoring the rest.
//!
//! - `switch_call(save, target, target_sp) -> from`: saves the current
//!   execution into the context at `save` and continues the one at
//!   `target`, whose stack pointer is `target_sp` (its context may have
//!   been cleared already), so that the architecture's predictors learn the
//!   resume address (aarch64 and riscv64 enter the switch with a call; the
//!   inline x86-64 switch jumps, one jump per call site). Returns when some
//!   other execution continues the one saved here, with the `save` location
//!   of the switch that did ([`END_OF_STACK_CONTEXT`] if it was an exit).
//!   Safety: `save` is a context valid for a write; `target` is a saved
//!   context on a stack that stays valid while it runs.
//! - `switch_return(save, target, target_sp) -> from`: the same, leaving
//!   with aarch64's and riscv64's return, which the CPU predicts when
//!   `target` is the execution that last `switch_call`ed into this one; on
//!   x86-64, the same switch as `switch_call`. Safety: as `switch_call`.
//! - `exit(target, target_sp) -> !`: continues `target` without saving the
//!   current execution, which must never be continued again. Safety:
//!   `target` is as in `switch_call`; nothing on the current stack is used
//!   again.
//! - `initial_frame::<T>(stack, object) -> (sp, registers)`: writes the
//!   frame of a new context on the [`NewStack`] `stack`, below its 16-byte
//!   aligned top (the frame's bytes must be writable), and returns the
//!   context's saved stack pointer and registers, so that the first switch
//!   into it enters the trampoline, which calls the entry function
//!   [`enter::<T>`](crate::context::enter)`(object, from)`. Only
//!   Windows uses the bottom and the guard: its thread environment block
//!   records the running stack's bounds. The trampoline's DWARF call-frame
//!   information makes the unwinder continue, past the entry function, into
//!   the execution that first switched here: the frame's link slot points
//!   at that `ExecutionContext`, whose layout (and that of the stack it
//!   points into) the CFI describes; it is marked a signal frame so that
//!   gdb accepts a caller frame at a lower address. (Windows reads no
//!   DWARF; see `x86_64_windows`.)
//! - `stack_pointer()`: the stack pointer register.
//!
//! The arriving side of every transfer finds the switcher's `save` location
//! in the first argument register, and after an exit the address of
//! [`END_OF_STACK_CONTEXT`], which a trampoline links to as it is: an exit
//! costs no instruction more on x86-64 and riscv64 (one on aarch64), and a
//! start then tests nothing. The initial
//! frame of aarch64 and riscv64 is shared, in `link_register`.

/// `$on` with the `fp-control` feature, `$off` without: how each switch
/// picks its floating-point control code and its saved frame's size.
#[cfg(feature = "fp-control")]
macro_rules! with_fp_control {
    ($on:expr, $off:expr $(,)?) => {
        $on
    };
}
/// `$on` with the `fp-control` feature, `$off` without: how each switch
/// picks its floating-point control code and its saved frame's size.
#[cfg(not(feature = "fp-control"))]
macro_rules! with_fp_control {
    ($on:expr, $off:expr $(,)?) => {
        $off
    };
}

/// A new context's stack, as `initial_frame` takes it.
#[derive(Clone, Copy)]
pub(crate) struct NewStack {
    /// The lowest usable byte.
    #[cfg_attr(
        not(windows),
        expect(dead_code, reason = "only Windows' TEB records it")
    )]
    pub(crate) bottom: *mut u8,
    /// The bytes of guard just below `bottom` that belong to the stack.
    #[cfg_attr(
        not(windows),
        expect(dead_code, reason = "only Windows' TEB records it")
    )]
    pub(crate) guard: usize,
    /// One past the highest usable byte, 16-byte aligned.
    pub(crate) top: *mut u8,
}

/// Writes `frame`, a new context's initial frame, just below `top` and
/// returns where it starts: the context's saved stack pointer.
///
/// # Safety
/// `top` is 16-byte aligned, the `size_of::<F>()` bytes below it are
/// writable, and `F` is made of words (so aligned wherever `top` puts it).
unsafe fn place_frame<F>(top: *mut u8, frame: F) -> *mut u8 {
    // SAFETY: the bytes are writable by the contract, and a frame of words
    // below a 16-byte aligned `top` is word-aligned.
    unsafe {
        let at = top.sub(size_of::<F>()).cast::<F>();
        at.write(frame);
        at.cast()
    }
}

/// The frame an [`END_OF_STACK_CONTEXT`] points to: ten words, as large
/// as any architecture's saved frame with `fp-control` (x86-64 Windows's),
/// all zero, so its return addresses are zero, where unwinders stop.
static END_OF_STACK_FRAME: [usize; 10] = [0; 10];

/// A stand-in `ExecutionContext`: a saved stack pointer pointing at
/// [`END_OF_STACK_FRAME`], then zero registers (as many words as any
/// architecture's `Registers`: x86-64's three), a zero resume address
/// among them.
#[repr(C)]
struct EndOfStackContext {
    stack_pointer: &'static [usize; 10],
    registers: [usize; 3],
}

/// What an exit hands the execution it continues as the switcher's save
/// location, and so what a trampoline started by an exit links to.
static END_OF_STACK_CONTEXT: EndOfStackContext = EndOfStackContext {
    stack_pointer: &END_OF_STACK_FRAME,
    registers: [0; 3],
};

/// The save location a switch reports after an exit (see the contract).
#[inline(always)]
pub(crate) fn exited() -> *const u8 {
    (&raw const END_OF_STACK_CONTEXT).cast()
}

#[cfg(target_arch = "x86_64")]
#[macro_use]
mod x86_64_switch;

#[cfg(all(target_arch = "x86_64", unix))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", unix))]
pub(crate) use x86_64::*;

#[cfg(all(target_arch = "x86_64", windows))]
mod x86_64_windows;
#[cfg(all(target_arch = "x86_64", windows))]
pub(crate) use x86_64_windows::*;

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub(crate) use aarch64::*;

#[cfg(all(target_arch = "riscv64", target_os = "linux"))]
mod riscv64;
#[cfg(all(target_arch = "riscv64", target_os = "linux"))]
pub(crate) use riscv64::*;

#[cfg(any(
    all(target_arch = "aarch64", target_os = "linux"),
    all(target_arch = "riscv64", target_os = "linux"),
))]
mod link_register;
#[cfg(any(
    all(target_arch = "aarch64", target_os = "linux"),
    all(target_arch = "riscv64", target_os = "linux"),
))]
pub(crate) use link_register::{Registers, initial_frame};

#[cfg(not(any(
    all(target_arch = "x86_64", unix),
    all(target_arch = "x86_64", windows),
    all(target_arch = "aarch64", target_os = "linux"),
    all(target_arch = "riscv64", target_os = "linux"),
)))]
compile_error!(
    "sure-context supports x86-64 with the System V ABI (Linux, BSDs), x86-64 Windows, \
     aarch64 Linux and riscv64 Linux (riscv64gc) only"
);
