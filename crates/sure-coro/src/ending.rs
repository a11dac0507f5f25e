//! How a coroutine ends before its body returns: dropped, given up with
//! `into_stack`, or cancelled with `force_unwind`. An unstarted body's
//! closure is dropped; a suspended body is unwound; a body whose stack must
//! not be touched (it is running, or cannot be unwound) is left alone and
//! its stack leaked.

use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use sure_context::ExecutionContext;
use sure_stack::Stack;

use crate::cancel::Cancelled;
use crate::coroutine::CoroutineState;
use crate::pool;
use crate::root::{Channel, Header, Lease, Payload, Phase};
use crate::thread_exit;

/// A coroutine, seen from the code that ends it: its header, at the top of
/// the stack the caller holds, read from the `Coroutine` before any user
/// code runs. That code (destructors on the stack, the closure's drop glue)
/// may move, replace or drop the `Coroutine` value itself through a
/// thread-local, so nothing reads the value afterwards.
pub(crate) struct Body<I, Y, R> {
    pub(crate) header: NonNull<Header<I, Y, R>>,
}

// A plain pointer, whatever I, Y and R are (a derive would ask them to be
// `Copy`).
impl<I, Y, R> Clone for Body<I, Y, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, Y, R> Copy for Body<I, Y, R> {}

/// How ending a body went.
pub(crate) enum End {
    /// The body has ended and nothing runs on the stack any more; the
    /// payload of a panic the body raised meanwhile (other than the
    /// cancellation itself).
    Ended(Option<Payload>),
    /// The stack must neither be freed nor reused.
    Leaked(Leak),
}

/// Why a body was left alone and its stack must be leaked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leak {
    /// The body is running, or already being ended: this was reached from
    /// code on its own stack.
    InUse,
    /// Suspended, in a build with `panic = "abort"`: the unwind that would
    /// run its destructors is an abort.
    NoUnwinding,
    /// Suspended, while this thread's locals are being destroyed: its body
    /// may hold references into them.
    ThreadExiting,
}

impl Leak {
    /// Why, in words, for a panic message.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Leak::InUse => {
                "the coroutine is running, or being dropped (this was reached from code on its \
                 own stack)"
            }
            Leak::NoUnwinding => {
                "the coroutine is suspended and this build has `panic = \"abort\"`, so its stack \
                 cannot be unwound"
            }
            Leak::ThreadExiting => {
                "the coroutine is suspended and this thread's locals are being destroyed, so its \
                 stack cannot be unwound"
            }
        }
    }
}

impl<I, Y, R> Body<I, Y, R> {
    /// What `Drop` does with a coroutine that has not finished: ends it,
    /// then releases its stack, or leaves the stack where it is (leaked)
    /// when the body cannot be ended.
    #[inline(never)]
    pub(crate) fn drop_unfinished(self) {
        if let End::Ended(payload) = self.end() {
            // SAFETY: the body has ended and the coroutine being dropped
            // releases its stack once, here.
            unsafe { release(self.header) };
            if let Some(payload) = payload {
                raise_unless_panicking(payload);
            }
        }
    }

    /// Ends the body without running it further: drops an unstarted
    /// closure, or unwinds a suspended stack; or says why it must be left
    /// alone. Leaves the phase `Ending` (or `Finished` if it was).
    ///
    /// The caller holds the stack for the whole call.
    pub(crate) fn end(self) -> End {
        let channel = self.channel();
        // SAFETY: the caller holds the stack, so the root and its
        // channel are there for this whole call. The phase is written to
        // `Ending` before any user code runs, and an unstarted body's
        // context is cleared, so that code reaching this coroutine again (a
        // stale copy of the `Coroutine`, or a drop in place) finds it in use
        // and leaves it alone. The closure is dropped only while unstarted,
        // with the type `drop_unstarted` was made for; a suspended body is
        // unwound only while suspended.
        unsafe {
            match (*channel).state() {
                CoroutineState::Completed => End::Ended(None),
                CoroutineState::Running => End::Leaked(Leak::InUse),
                CoroutineState::Unstarted => {
                    (*channel).phase = Phase::Ending;
                    ptr::write(&raw mut (*channel).body, ExecutionContext::new());
                    let (drop_unstarted, header) =
                        ((*self.header.as_ptr()).drop_unstarted, self.header);
                    // A panic in the closure's destructor is caught so that
                    // the stack is still released.
                    End::Ended(
                        panic::catch_unwind(AssertUnwindSafe(|| drop_unstarted(header))).err(),
                    )
                }
                CoroutineState::Suspended if cfg!(panic = "abort") => {
                    End::Leaked(Leak::NoUnwinding)
                }
                CoroutineState::Suspended if thread_exit::is_exiting() => {
                    End::Leaked(Leak::ThreadExiting)
                }
                CoroutineState::Suspended => End::Ended(self.unwind_suspended()),
            }
        }
    }

    pub(crate) fn channel(self) -> *mut Channel<I, Y> {
        // SAFETY: the header lives at the top of the stack the caller holds;
        // taking the field's address reads nothing.
        unsafe { &raw mut (*self.header.as_ptr()).channel }
    }

    /// Resumes a suspended body with `Ending` written, so that its suspend
    /// point unwinds, until the body's root has caught that and exited.
    /// Returns a payload the body panicked with meanwhile, other than the
    /// cancellation itself.
    ///
    /// # Safety
    /// The body is suspended.
    unsafe fn unwind_suspended(self) -> Option<Payload> {
        let channel = self.channel();
        // SAFETY: the body is suspended on the stack the caller
        // holds, as in `resume_with`. Back here, either the body finished
        // (its context is unsaved, the outcome written), or it caught the
        // unwind and suspended again: then it is resumed at once, leaving
        // the value it handed out for its own `cancel` to drop, so no user
        // code runs here while its context is saved. `Ending` stays written
        // throughout (the root's `Finished` is overwritten before the
        // return value drops), so nothing that reaches the coroutine
        // meanwhile frees it.
        let outcome = unsafe {
            (*channel).phase = Phase::Ending;
            loop {
                (*channel).resumer.switch_to_taking(&(*channel).body);
                if !(*channel).body.is_saved() {
                    break;
                }
                (*channel).value_left = true;
            }
            (*channel).phase = Phase::Ending;
            (*self.header.as_ptr()).outcome.assume_init_read()
        };
        match outcome {
            // The body caught the unwind and returned: its value may panic
            // when dropped.
            Ok(value) => panic::catch_unwind(AssertUnwindSafe(move || drop(value))).err(),
            Err(payload) if payload.is::<Cancelled>() => None,
            Err(payload) => Some(payload),
        }
    }
}

/// Moves the stack out of a coroutine's header and clears its name: the
/// stack is then the caller's, with whether it came from the pool.
///
/// # Safety
/// The body has ended (nothing runs on the stack or reads its name any
/// more), and the stack is moved out of this header only once.
#[inline]
pub(crate) unsafe fn vacate<I, Y, R>(header: NonNull<Header<I, Y, R>>) -> (Stack, bool) {
    // SAFETY: by the contract the name is cleared and the stack moved out
    // once, here, and neither is used by anyone else any more. The name is
    // cleared in place, so the stack is read out only once.
    unsafe {
        let tenancy = &raw mut (*header.as_ptr()).tenancy;
        if (*tenancy).lease.is_named() {
            (*tenancy).stack.clear_name();
        }
        (
            ManuallyDrop::take(&mut (*tenancy).stack),
            (*tenancy).lease.pooled(),
        )
    }
}

/// Releases the stack of a coroutine whose body has ended: back to the
/// thread's pools, or unmapped.
///
/// # Safety
/// As [`vacate`].
#[inline]
pub(crate) unsafe fn release<I, Y, R>(header: NonNull<Header<I, Y, R>>) {
    // SAFETY: by the contract; a stack without a name has no label to
    // clear, so moving it out is all `vacate` would do.
    unsafe {
        let tenancy = &raw mut (*header.as_ptr()).tenancy;
        match (*tenancy).lease {
            Lease::Default => pool::give_back_default(ManuallyDrop::take(&mut (*tenancy).stack)),
            Lease::Pooled => pool::give_back_sized_taken(ManuallyDrop::take(&mut (*tenancy).stack)),
            _ => release_otherwise(header),
        }
    }
}

/// [`release`] for a named stack, or one not from the pools. Out of line,
/// so that the default path tests the lease once.
///
/// # Safety
/// As [`vacate`].
#[inline(never)]
unsafe fn release_otherwise<I, Y, R>(header: NonNull<Header<I, Y, R>>) {
    // SAFETY: by the contract.
    let (stack, pooled) = unsafe { vacate(header) };
    if pooled {
        pool::give_back(stack);
    } else {
        drop(stack);
    }
}

/// Lets a panic the body raised while being ended out, unless the thread
/// is already panicking: a second panic would abort, and so could the
/// payload's own destructor, so it is leaked.
#[cold]
#[inline(never)]
pub(crate) fn raise_unless_panicking(payload: Payload) {
    if std::thread::panicking() {
        std::mem::forget(payload);
    } else {
        panic::resume_unwind(payload);
    }
}
