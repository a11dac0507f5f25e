//! Architecture-specific switch code, one module per target.
//!
//! # The contract every module keeps
//!
//! A suspended execution is one stack pointer whose top word is the
//! address to continue at; whoever continues it loads that stack pointer,
//! pops the address (a 16-byte slot where calls leave the return address
//! in a register) and jumps to it, and the code there restores the rest.
//!
//! - `switch_call(save, target) -> from`: saves the current execution into
//!   `*save` and continues `target`, entering the switch with the
//!   architecture's call, so that the return-address predictor remembers
//!   the resume address. Returns when some other execution continues the
//!   one saved here, with the `save` location of the switch that did (null
//!   if it was an exit). Safety: `save` is valid for a write; `target` is a
//!   saved context on a stack that stays valid while it runs.
//! - `switch_return(save, target) -> from`: the same, leaving with the
//!   architecture's return, which the CPU predicts when `target` is the
//!   execution that last `switch_call`ed into this one. Safety: as
//!   `switch_call`.
//! - `exit(target) -> !`: continues `target` without saving the current
//!   execution, which must never be continued again. Safety: `target` is as
//!   in `switch_call`; nothing on the current stack is used again.
//! - `initial_frame(stack, entry, object) -> sp`: writes the frame of a
//!   new context on the [`NewStack`] `stack`, below its 16-byte aligned
//!   top (the frame's bytes must be writable), so that the first switch
//!   into it enters the trampoline, which calls `entry(object, from)`. Only
//!   Windows uses the bottom and the guard: its thread environment block
//!   records the running stack's bounds. The trampoline's DWARF call-frame information
//!   makes the unwinder continue, past the entry function, into the
//!   execution that first switched here: the frame's link slot points at
//!   that `ExecutionContext`, whose first word is the saved stack pointer,
//!   whose layout the CFI describes; it is marked a signal frame so that
//!   gdb accepts a caller frame at a lower address. (Windows reads no
//!   DWARF; see `x86_64_windows`.)
//! - `stack_pointer()`: the stack pointer register.
//!
//! The arriving side of every transfer finds the switcher's `save` location
//! in the first argument register (zero after an exit). The initial frame
//! of aarch64 and riscv64 is shared, in `link_register`.

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

/// The entry function a new context runs: receives the object pointer and
/// the `save` location of the switch that started it (null if it was an
/// exit), and must never return.
pub(crate) type EntryFn = unsafe extern "C" fn(object: *mut u8, from: *mut u8) -> !;

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

/// The link a context started by an exit gets: a context whose saved frame
/// (ten words, as large as any architecture's with `fp-control`: x86-64
/// Windows's) has zero return addresses, where unwinders stop.
static END_OF_STACK_FRAME: [usize; 10] = [0; 10];
/// A stand-in `ExecutionContext` (its first word is a saved stack pointer)
/// pointing at [`END_OF_STACK_FRAME`], which the trampolines link to.
static END_OF_STACK_CONTEXT: &[usize; 10] = &END_OF_STACK_FRAME;

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
pub(crate) use link_register::initial_frame;

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
