//! Stack-overflow reports: code that runs into the guard page of a
//! [`Stack`](crate::Stack) ends the process with a message saying so,
//! instead of a bare `SIGSEGV`, whoever runs on the stack (a `sure-coro`
//! coroutine, or a scheduler's task on `sure-context` alone).
//!
//! Every guarded stack has a `PROT_NONE` page below it, so an overflow
//! faults instead of writing over whatever lies below. Without help, that
//! fault kills the process with a plain segmentation fault (Rust's own
//! overflow handler only knows the threads' stacks). This module turns it
//! into a message in the manner of Rust's `thread '...' has overflowed its
//! stack`:
//!
//! ```text
//! thread 'main' (4242) has overflowed a guarded stack: the stack of 256 KiB (guard page at 0x7f3a5c1ff000) is exhausted
//! help: give it a bigger stack, for example sure_stack::Stack::allocate_at_least(512 * 1024)
//! note: to size it, run on a stack that fits and read Stack::peak_usage(); ask for twice the deepest figure seen (a debug build may need several times a release build's)
//! fatal runtime error: stack overflow, aborting
//! ```
//!
//! and then aborts (`SIGABRT`). A library built on this crate words the
//! message for its users with [`set_overflow_report`] (`sure-coro` names
//! its coroutines and `Builder::stack_size`), and a stack can carry a name
//! that the message shows ([`Stack::set_name`](crate::Stack::set_name)).
//!
//! # How
//!
//! - **Installation, once per thread, off the switch path.**
//!   [`prepare_thread`] (called by [`Stack::allocate_at_least`] on the
//!   allocating thread, and by `sure-coro` whenever a thread creates its
//!   first coroutine) installs the process-wide `SIGSEGV` and `SIGBUS`
//!   handler (once per process, `SA_SIGINFO | SA_ONSTACK`, keeping the
//!   actions it replaces), makes sure the thread has an alternate signal
//!   stack (threads spawned by `std` have one; for any other thread a
//!   guarded 64 KiB stack is mapped, and unmapped again when the thread
//!   exits), and records in a thread-local the thread's own stack bounds
//!   (`pthread_getattr_np`), its name and its id. A thread that runs code on
//!   a stack another thread allocated calls [`prepare_thread`] itself. A
//!   switch does nothing at all for this.
//! - **Detection, in the handler.** The handler runs on the alternate
//!   stack and uses only async-signal-safe calls: `open`, `read`, `close`,
//!   `write`, `sigaction`, `abort`, no allocation, no lock. It decides that
//!   the fault is a guarded stack's overflow when all of these hold:
//!   the thread was prepared; the fault is an access violation
//!   (`SEGV_ACCERR`; any code for `SIGBUS`); the faulting address lies in
//!   the highest page of a `PROT_NONE` mapping that ends where a read-write
//!   mapping begins (the guard page below a stack); the stack pointer at the
//!   fault (from the signal context: `REG_RSP` on x86-64,
//!   `sp` on aarch64, `REG_SP` on riscv64) lies in that guard page or in
//!   the read-write mapping above it, so the overflowing stack is the one
//!   this thread was running on; and neither mapping overlaps the thread's
//!   own stack (whose guard page looks just the same). The mappings come
//!   from `/proc/self/maps`, read in small pieces into a buffer on the
//!   signal stack and parsed on the fly; parsing stops at the faulting
//!   address. The stack size reported is the length of the read-write
//!   mapping, that is the stack's usable size.
//! - **Everything else is passed on** to the action that was installed
//!   before, normally Rust's own handler (which reports overflows of the
//!   threads' own stacks and otherwise restores the default action): a
//!   `SA_SIGINFO` handler is called with the same three arguments, a plain
//!   handler with the signal number, and for `SIG_DFL` or `SIG_IGN` the
//!   default action is restored and the handler returns, so that the
//!   faulting instruction runs again and the process dies of the signal as
//!   it would have without this module (a signal sent with `kill` and the
//!   like is raised again, since it would not come back by itself). The
//!   previous handler runs with this handler's signal mask (the signal
//!   itself blocked) and on its stack; `SA_RESETHAND` is honoured, and
//!   `errno` is restored before the call.
//!
//! # Limits
//!
//! - Only overflows that hit the guard page are caught: a frame larger than
//!   a page that skips it entirely (C code compiled without stack probes)
//!   faults elsewhere, or not at all. Rust code always probes.
//! - A thread without an alternate signal stack of its own gets one when it
//!   is prepared; a thread whose alternate stack was already
//!   torn down (in its late thread-local destructors) cannot run the handler
//!   and dies of `SIGSEGV`, as it would without this module.
//! - If `/proc` is not mounted, or a file descriptor cannot be had, the
//!   overflow is not recognised and the fault is passed on.
//! - Linux and Windows only; elsewhere [`prepare_thread`] does nothing.
//!   The stack pointer at the fault is read on x86-64, aarch64 and
//!   riscv64; on any other Linux architecture no fault is recognised as an
//!   overflow, and every one is passed on.
//!
//! # Windows
//!
//! Windows has no alternate stack: an exception is dispatched on the stack
//! that faulted. So a stack's guard is five pages: four `PAGE_GUARD` pages
//! of room above the `PAGE_NOACCESS` one. sure-context's `setup_guarded`
//! puts the room in the thread environment block's stack range and names
//! it the guarantee (`GuaranteedStackBytes`), as `SetThreadStackGuarantee`
//! does for a thread: the first touch there raises `STATUS_STACK_OVERFLOW`
//! and makes the guaranteed pages ordinary ones, which the dispatch and the
//! handler then run in. The handler is a vectored exception handler,
//! installed first in the chain once per process by [`prepare_thread`],
//! which also records the thread's name, id and own stack
//! (`GetCurrentThreadStackLimits`, read only while the thread runs on it).
//! It reports when the exception is a stack overflow, or a guard-page or
//! access violation in the guard, and the stack pointer at the exception
//! lies on a live stack of this crate or its room; it writes the same
//! message with `WriteFile` and aborts (`__fastfail`, which ends the
//! process with `STATUS_STACK_BUFFER_OVERRUN`). Every other exception goes
//! on to the next handler, as Rust's own overflow report of the threads'
//! stacks does. It finds the stack in [`stack_bounds`]' registry without
//! waiting: should a thread (this one too, overflowing while it allocates
//! or frees a stack) hold the registry's lock at that moment, the overflow
//! goes unreported and ends as it would without this module. The handler
//! stays installed for the life of the process: a DLL holding this crate
//! must not be unloaded.
//!
//! [`stack_bounds`]: crate::stack_bounds
//!
//! [`Stack::allocate_at_least`]: crate::Stack::allocate_at_least

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// How the overflow message words what overflowed and what to do: set once
/// per process by the library whose users should read it
/// ([`set_overflow_report`]).
#[derive(Debug)]
pub struct OverflowReport {
    /// What overflowed, after "has overflowed": `"a guarded stack"`.
    pub what: &'static str,
    /// The stack, before its size: `"the stack of "`.
    pub stack: &'static str,
    /// The advice up to the bigger size suggested (twice the stack's):
    /// `"give it a bigger stack, for example sure_stack::Stack::allocate_at_least("`.
    pub advice: &'static str,
    /// The advice after the size: `")"`.
    pub advice_end: &'static str,
    /// How to find the size to ask for, after "note: ".
    pub sizing: &'static str,
    /// The last line's reason: `"stack overflow"`.
    pub fatal: &'static str,
}

/// The report of this crate's own users.
pub static STACK_REPORT: OverflowReport = OverflowReport {
    what: "a guarded stack",
    stack: "the stack of ",
    advice: "give it a bigger stack, for example sure_stack::Stack::allocate_at_least(",
    advice_end: ")",
    sizing: "to size it, run on a stack that fits and read Stack::peak_usage(); ask for twice \
             the deepest figure seen (a debug build may need several times a release build's)",
    fatal: "stack overflow",
};

/// Words the overflow message for the library built on this crate that the
/// process's users call (`sure-coro` names its coroutines and
/// `Builder::stack_size`). The last call wins, for every stack.
///
/// ```
/// use sure_stack::overflow::{OverflowReport, set_overflow_report};
///
/// static FIBERS: OverflowReport = OverflowReport {
///     what: "a fiber's stack",
///     stack: "the fiber's stack of ",
///     advice: "spawn the fiber with a bigger stack, for example fibers::spawn_with_stack(",
///     advice_end: ", task)",
///     sizing: "fibers::peak_stack_usage() after a run that fits tells what a fiber used",
///     fatal: "fiber stack overflow",
/// };
/// set_overflow_report(&FIBERS);
/// ```
pub fn set_overflow_report(report: &'static OverflowReport) {
    REPORT.store(ptr::from_ref(report).cast_mut(), Ordering::Release);
}

/// The report in use: [`STACK_REPORT`] until [`set_overflow_report`].
static REPORT: AtomicPtr<OverflowReport> = AtomicPtr::new(ptr::null_mut());

/// The report the handler uses; an atomic load, async-signal-safe.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
fn report_words() -> &'static OverflowReport {
    let set = REPORT.load(Ordering::Acquire);
    if set.is_null() {
        &STACK_REPORT
    } else {
        // SAFETY: only `set_overflow_report` stores here, from a `&'static`.
        unsafe { &*set }
    }
}

/// The calling thread's own stack, `lo..hi`, if this thread was prepared
/// ([`prepare_thread`]) and its bounds could be had: for telling whether
/// code runs on the thread's own stack or on a guarded one.
pub fn thread_stack() -> Option<(usize, usize)> {
    #[cfg(any(target_os = "linux", windows))]
    {
        imp::thread_stack()
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        None
    }
}

/// Makes this thread report overflows of guarded stacks: installs the
/// process-wide handler (once), gives the thread an alternate signal stack
/// if it has none, and records its own stack's bounds, name and id. A
/// thread-local load and a branch once prepared. [`Stack::allocate_at_least`]
/// calls it for the allocating thread; a thread that runs code on a stack
/// allocated elsewhere calls it itself.
///
/// [`Stack::allocate_at_least`]: crate::Stack::allocate_at_least
#[inline(always)]
pub fn prepare_thread() {
    #[cfg(any(target_os = "linux", windows))]
    if !imp::READY.get() {
        imp::prepare_this_thread();
    }
}

#[cfg(any(target_os = "linux", windows))]
mod message;

/// The system's half: the handler, and what it records per thread.
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;
