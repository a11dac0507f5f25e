//! What a thread's exit means for the coroutines still alive on it.
//!
//! Thread-local destructors run in the reverse order of their registration
//! (glibc's `__cxa_thread_atexit_impl`, which std uses, keeps a stack of
//! them), which std does when a thread-local's initialisation finishes: at
//! its first use, or when a lazy initialiser returns. `process::exit` runs the calling
//! thread's on its live stack. A coroutine kept in a thread-local is
//! dropped by one of them, and its body may be suspended inside
//! `LocalKey::with` of a thread-local already destroyed, or being destroyed
//! right then (the one that holds the coroutine). Unwinding such a body
//! would run its destructors against a dead value.
//!
//! So this module watches the thread's exit: a thread-local of its own,
//! registered when the thread creates its first coroutine, whose destructor
//! marks the thread as exiting. From then on a suspended coroutine that is
//! dropped is leaked instead of unwound (its stack stays mapped and is
//! never reused, as after `mem::forget`), so nothing on its stack is freed
//! or run again. That does not keep alive what its body borrowed from
//! thread-locals, which the exit goes on to destroy: what that leaves to
//! the user is documented on [`Coroutine`](crate::Coroutine), under
//! "Edges".

use std::cell::Cell;

/// Where this thread is in its life, as far as coroutines are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No coroutine was created on this thread yet.
    Unprepared,
    /// Prepared: the overflow handler is set up and the exit is watched.
    Ready,
    /// The watch's destructor ran: the thread's locals are being destroyed.
    Exiting,
}

thread_local! {
    /// Const-initialised and without a destructor, so reading it is a plain
    /// thread-local load, valid even in the thread's last destructors.
    static PHASE: Cell<Phase> = const { Cell::new(Phase::Unprepared) };

    /// Registered (first used) when the thread creates its first coroutine;
    /// its destructor marks the thread as exiting.
    static EXIT_WATCH: ExitWatch = const { ExitWatch };
}

/// Marks the thread as exiting when thread-local destruction reaches it.
struct ExitWatch;

impl Drop for ExitWatch {
    fn drop(&mut self) {
        PHASE.set(Phase::Exiting);
    }
}

/// Prepares this thread for coroutines: the one call on the path that
/// creates a coroutine, a thread-local load and a branch.
#[inline(always)]
pub(crate) fn prepare() {
    if PHASE.get() != Phase::Ready {
        prepare_cold();
    }
}

/// The thread's first coroutine, or one created while it exits.
#[cold]
#[inline(never)]
fn prepare_cold() {
    // Every time while the thread exits: if the alternate signal stack the
    // overflow handler mapped is gone, it maps another. (A std thread's
    // own is unmapped by std before the thread's destructors run; an
    // overflow then is a plain SIGSEGV, as sure-stack's overflow module
    // says.)
    sure_stack::overflow::prepare_thread();
    if PHASE.get() == Phase::Unprepared {
        sure_stack::overflow::set_overflow_report(&crate::overflow_report::COROUTINE_REPORT);
        // Fails only while the thread's locals are being destroyed, when
        // there is nothing left to watch.
        let _ = EXIT_WATCH.try_with(|_| ());
        PHASE.set(Phase::Ready);
    }
}

/// Whether this thread's locals are being destroyed: a suspended coroutine
/// dropped now is leaked, not unwound.
#[inline]
pub(crate) fn is_exiting() -> bool {
    PHASE.get() == Phase::Exiting
}
