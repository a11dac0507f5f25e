//! [`SuspendHandle`]: how a coroutine body gives control back.

use std::marker::PhantomData;
use std::panic;
use std::ptr::NonNull;

use crate::cancel::Cancelled;
use crate::root::{Channel, Phase};
use crate::thread_bound::{StackPtr, StaysOnItsThread};

/// The body's side of a coroutine: suspends it, handing a value out and
/// getting the next resume's value back.
///
/// A body receives `&mut SuspendHandle` and cannot keep it past its own
/// end, nor send it to another thread (it is neither `Send` nor `Sync`).
///
/// The lifetime `'h` is a brand: each body's handle has one of its own,
/// which no other handle shares. A body that can reach two handles (a
/// [`ScopedCoroutine`](crate::ScopedCoroutine)'s body may borrow the
/// handle of the coroutine it runs in) therefore cannot swap them, which
/// would send each coroutine's suspends to the other's stack:
///
/// ```compile_fail,E0521
/// use sure_coro::{Coroutine, ScopedCoroutine};
///
/// let mut outer = Coroutine::new(|outer_h| {
///     ScopedCoroutine::new(|inner_h| std::mem::swap(outer_h, inner_h))
///         .scope(|mut inner| {
///             let _ = inner.resume();
///         });
///     outer_h.suspend();
/// });
/// let _ = outer.resume();
/// ```
///
/// Functions that take a handle write its brand as `'_`:
/// `fn walk(tree: &Tree, h: &mut SuspendHandle<'_, (), u32>)`.
///
/// `Input` is what each resume passes in; `Yield` is what each suspend
/// passes out. Both are `()` for the plain form:
///
/// ```
/// use sure_coro::{Coroutine, CoroutineResult};
///
/// let mut co = Coroutine::new(|h| {
///     h.suspend();
///     "done"
/// });
/// assert!(matches!(co.resume(), CoroutineResult::Yield(())));
/// assert!(matches!(co.resume(), CoroutineResult::Return("done")));
/// ```
pub struct SuspendHandle<'h, Input = (), Yield = ()> {
    channel: StackPtr<Channel<Input, Yield>>,
    /// The brand: invariant, so that handles of two bodies (each body's
    /// `'h` is its own, higher-ranked) never have the same type.
    _brand: PhantomData<fn(&'h ()) -> &'h ()>,
    /// Neither Send nor Sync: the handle belongs to one stack on one thread.
    _thread: StaysOnItsThread,
}

impl<I, Y> SuspendHandle<'_, I, Y> {
    /// # Safety
    /// `channel` outlives the handle.
    pub(crate) unsafe fn new(channel: NonNull<Channel<I, Y>>) -> Self {
        SuspendHandle {
            channel: StackPtr::new(channel),
            _brand: PhantomData,
            _thread: StaysOnItsThread::default(),
        }
    }

    /// Suspends the coroutine, handing `value` to the `resume` that is
    /// running it, and returns the value of the next resume.
    ///
    /// If the coroutine is cancelled (dropped, or
    /// [`force_unwind`](crate::Coroutine::force_unwind)) while suspended
    /// here, this does not return: it unwinds the body's stack (running
    /// every destructor on it) with a [`Cancelled`] payload, without calling
    /// the panic hook.
    ///
    /// ```
    /// use sure_coro::{Coroutine, CoroutineResult};
    ///
    /// // Doubles each input; stops when it gets 0.
    /// let mut co = Coroutine::with_input(|h, mut x: u64| {
    ///     while x != 0 {
    ///         x = h.suspend_with(x * 2);
    ///     }
    /// });
    /// assert!(matches!(co.resume_with(21), CoroutineResult::Yield(42)));
    /// assert!(matches!(co.resume_with(5), CoroutineResult::Yield(10)));
    /// assert!(matches!(co.resume_with(0), CoroutineResult::Return(())));
    /// ```
    #[inline(always)]
    pub fn suspend_with(&mut self, value: Y) -> I {
        let channel = self.channel.as_ptr();
        // SAFETY: the channel outlives the handle. The resumer saved itself
        // in `resumer` when it switched to us and is suspended there; we
        // save ourselves in `body`, which the next resume continues. `input`
        // is initialised when read: every resume writes it before switching
        // here, and the only other way back here, a drop, writes `Ending`
        // and unwinds before the read.
        unsafe {
            (*channel).yielded.write(value);
            (*channel).body.return_to(&(*channel).resumer);
            if (*channel).phase == Phase::Ending {
                cancel(channel);
            }
            (*channel).input.assume_init_read()
        }
    }
}

impl<I> SuspendHandle<'_, I, ()> {
    /// Suspends the coroutine, handing nothing out, and returns the value
    /// of the next resume (`()` for the plain form).
    ///
    /// ```
    /// use sure_coro::Coroutine;
    ///
    /// let mut co = Coroutine::new(|h| {
    ///     println!("step 1");
    ///     h.suspend();
    ///     println!("step 2");
    /// });
    /// assert!(co.resume().is_yield());
    /// assert!(!co.is_completed());
    /// assert!(co.resume().is_return());
    /// assert!(co.is_completed());
    /// ```
    #[inline(always)]
    pub fn suspend(&mut self) -> I {
        self.suspend_with(())
    }
}

impl<I, Y> std::fmt::Debug for SuspendHandle<'_, I, Y> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuspendHandle").finish_non_exhaustive()
    }
}

/// Unwinds the body of a coroutine that is being dropped. Cold, so the
/// suspend fast path only tests the phase. Inlined into it when optimised:
/// a frame of its own would be one more for the unwinder to walk, twice
/// (8% of a cancellation under callgrind). Not in a debug build, which
/// would give every frame that suspends (the suspend is inlined always)
/// room for this one's locals: a 300-deep recursive walk then overflowed
/// a default stack under AddressSanitizer.
///
/// If the body had suspended again while already being unwound, the drop
/// left the value it handed out in `yielded`: it is dropped here, on the
/// body's stack, before the unwinding goes on, so the drop never runs user
/// code while the body is suspended. A panic in that destructor unwinds the
/// body in place of the cancellation, and comes out of the drop.
#[cold]
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
fn cancel<I, Y>(channel: *mut Channel<I, Y>) -> ! {
    // SAFETY: the channel outlives the handle that called us; the drop sets
    // `value_left` only over a value the body wrote and nobody took.
    unsafe {
        if (*channel).value_left {
            (*channel).value_left = false;
            drop((*channel).yielded.assume_init_read());
        }
    }
    panic::resume_unwind(Box::new(Cancelled))
}
