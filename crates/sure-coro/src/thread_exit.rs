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
//!
//! Windows needs another watch. Its gnu targets keep std's thread-locals
//! in system TLS slots, destroyed in the reverse order in which their keys
//! were first created anywhere in the process, not per thread; and a
//! destroyed one comes back with its initial value when used again, so no
//! thread-local of std's can carry "exiting" to the end. There, a TLS
//! callback of this crate's (`.CRT$XLAA`, run before std's `.CRT$XLB` one
//! that destroys the thread-locals) marks the thread in a system TLS slot
//! of its own, which nothing destroys.

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

/// The exit mark of Windows' threads: a system TLS slot that this crate's
/// TLS callback sets when a thread (or the process) starts to end.
#[cfg(windows)]
mod exit_mark {
    use core::ffi::c_void;
    use std::sync::atomic::{AtomicU32, Ordering};

    use windows_sys::Win32::Foundation::{GetLastError, SetLastError};
    use windows_sys::Win32::System::Threading::{
        TLS_OUT_OF_INDEXES, TlsAlloc, TlsFree, TlsGetValue, TlsSetValue,
    };

    /// The slot, allocated when the process creates its first coroutine.
    static SLOT: AtomicU32 = AtomicU32::new(TLS_OUT_OF_INDEXES);

    /// Called by the loader on every thread's start and end, and the
    /// process's. `.CRT$XLAA` sorts after the C runtime's `.CRT$XLA` start
    /// marker and before std's `.CRT$XLB` callback.
    #[used]
    #[unsafe(link_section = ".CRT$XLAA")]
    static CALLBACK: unsafe extern "system" fn(*mut c_void, u32, *mut c_void) = on_tls_callback;

    /// Marks the thread when it, or the process, detaches.
    unsafe extern "system" fn on_tls_callback(_module: *mut c_void, reason: u32, _: *mut c_void) {
        const DLL_PROCESS_DETACH: u32 = 0;
        const DLL_THREAD_DETACH: u32 = 3;
        let slot = SLOT.load(Ordering::Acquire);
        if (reason == DLL_THREAD_DETACH || reason == DLL_PROCESS_DETACH)
            && slot != TLS_OUT_OF_INDEXES
        {
            // SAFETY: the slot is this process's, allocated below and never
            // freed; any non-null value means "exiting".
            unsafe { TlsSetValue(slot, core::ptr::without_provenance(1)) };
        }
    }

    /// Allocates the slot, once per process.
    ///
    /// # Panics
    /// If the process has no TLS slot left: without the mark, a body could
    /// be unwound against a thread-local already destroyed.
    pub(super) fn allocate() {
        // Keeps the callback in the image: the linker keeps what is read.
        // SAFETY: a plain read of a static.
        let _ = unsafe { core::ptr::from_ref(&CALLBACK).read_volatile() };
        if SLOT.load(Ordering::Acquire) != TLS_OUT_OF_INDEXES {
            return;
        }
        // SAFETY: TlsAlloc has no preconditions.
        let slot = unsafe { TlsAlloc() };
        assert!(
            slot != TLS_OUT_OF_INDEXES,
            "cannot create a coroutine: the process has no TLS slot left (TlsAlloc failed), and \
             sure-coro needs one to tell a thread's exit; free some (TlsFree)"
        );
        if SLOT
            .compare_exchange(
                TLS_OUT_OF_INDEXES,
                slot,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: the slot just allocated, which no one else knows.
            unsafe { TlsFree(slot) };
        }
    }

    /// Whether this thread is marked. Leaves the thread's last error as it
    /// was (`TlsGetValue` clears it).
    pub(super) fn is_set() -> bool {
        let slot = SLOT.load(Ordering::Acquire);
        if slot == TLS_OUT_OF_INDEXES {
            return false;
        }
        // SAFETY: reading the thread's last error, then a valid slot of
        // this process's (an unmarked thread reads null), then putting the
        // error back: plain per-thread state.
        unsafe {
            let error = GetLastError();
            let marked = !TlsGetValue(slot).is_null();
            SetLastError(error);
            marked
        }
    }
}

/// Prepares this thread for coroutines: a thread-local load and a branch,
/// made where a coroutine gets a stack that no pool held (`pool::map`, and
/// `Builder` for the caller's stack) and before the thread's pools keep
/// one (`ThreadPools::open`). So a coroutine taking a pooled stack, the
/// common create, skips it: its thread was prepared before the stack went
/// into the pool.
#[inline(always)]
pub(crate) fn prepare() {
    if PHASE.get() != Phase::Ready {
        prepare_cold();
    }
}

/// The thread's first coroutine (or first pooled stack), or a stack mapped
/// while the thread exits.
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
        #[cfg(windows)]
        exit_mark::allocate();
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
    #[cfg(windows)]
    if exit_mark::is_set() {
        return true;
    }
    PHASE.get() == Phase::Exiting
}
