//! How a coroutine ends before its body returns: dropped, given up with
//! `into_stack`, or cancelled with `force_unwind`. An unstarted body's
//! closure is dropped; a suspended body is unwound; a body whose stack must
//! not be touched (it is running, or cannot be unwound) is left alone and
//! its stack leaked.

use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use sure_context::ExecutionContext;
use sure_stack::Stack;

use crate::cancel::Cancelled;
use crate::coroutine::CoroutineState;
use crate::pool;
use crate::root::{Channel, Header, Payload, Phase};
use crate::thread_exit;

/// What ending a coroutine's body needs, read from the `Coroutine` before
/// any user code runs: that code (destructors on the stack, the closure's
/// drop glue) may move, replace or drop the `Coroutine` value itself
/// through a thread-local, so nothing reads the value afterwards.
pub(crate) struct Body<I, Y, R> {
    pub(crate) header: NonNull<Header<I, Y, R>>,
    /// Drops the closure of a body that never started; knows its type.
    pub(crate) drop_unstarted: unsafe fn(NonNull<Header<I, Y, R>>),
}

// Two plain pointers, whatever I, Y and R are (a derive would ask them to
// be `Copy`).
impl<I, Y, R> Clone for Body<I, Y, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, Y, R> Copy for Body<I, Y, R> {}

/// A coroutine taken apart by `Coroutine::take_parts`: its body and the
/// stack it runs on, now owned here.
pub(crate) struct Parts<I, Y, R> {
    pub(crate) body: Body<I, Y, R>,
    /// Whether the stack goes back to the thread's pool.
    pub(crate) pooled: bool,
    /// Whether the stack carries a label naming the coroutine.
    pub(crate) named: bool,
    pub(crate) stack: Stack,
}

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

impl<I, Y, R> Parts<I, Y, R> {
    /// The end of a coroutine dropped before it completed. Out of line:
    /// only the completed check is on the common path.
    #[inline(never)]
    pub(crate) fn drop_unfinished(self) {
        match self.body.end() {
            End::Ended(payload) => {
                unlabel(&self.stack, self.named);
                release(self.stack, self.pooled);
                if let Some(payload) = payload {
                    raise_unless_panicking(payload);
                }
            }
            End::Leaked(_) => std::mem::forget(self.stack),
        }
    }
}

impl<I, Y, R> Body<I, Y, R> {
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
                    let (drop_unstarted, header) = (self.drop_unstarted, self.header);
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

/// Gives the stack of a coroutine whose body has ended, and whose label is
/// cleared ([`unlabel`]), back to the thread's pool, or frees it. The
/// label goes first, through the coroutine's own field: a reference to
/// the moved stack would keep it in memory, copied at each move.
#[inline]
pub(crate) fn release(stack: Stack, pooled: bool) {
    if pooled {
        pool::give_back(stack);
    } else {
        drop(stack);
    }
}

/// Frees the name of a coroutine whose body has ended, if it has one, from
/// the label at the top of its stack, before the stack leaves it.
#[inline]
pub(crate) fn unlabel(stack: &Stack, named: bool) {
    if named {
        // SAFETY: a named coroutine wrote its label when it was built; its
        // body has ended, and the label is not used again.
        unsafe { stack.clear_name() };
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
