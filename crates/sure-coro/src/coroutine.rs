//! [`Coroutine`]: the resumer's side.

use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;

use sure_stack::Stack;

use crate::builder::assemble;
use crate::handle::SuspendHandle;
use crate::pool;
use crate::root::{Cancel, Header, Payload};

/// What a [`resume`](Coroutine::resume) ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoroutineResult<Yield, Return> {
    /// The body suspended, handing out this value; resume it again to go on.
    Yield(Yield),
    /// The body returned this value; the coroutine is completed.
    Return(Return),
}

impl<Y, R> CoroutineResult<Y, R> {
    /// The suspended value, if the body suspended.
    ///
    /// ```
    /// use sure_coro::CoroutineResult;
    /// assert_eq!(CoroutineResult::<u8, ()>::Yield(3).into_yield(), Some(3));
    /// ```
    pub fn into_yield(self) -> Option<Y> {
        match self {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, if the body returned.
    ///
    /// ```
    /// use sure_coro::CoroutineResult;
    /// assert_eq!(CoroutineResult::<(), u8>::Return(7).into_return(), Some(7));
    /// ```
    pub fn into_return(self) -> Option<R> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(value) => Some(value),
        }
    }
}

/// Where a coroutine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Its body context is suspended, fresh or at a suspend point (the
    /// channel's `started` tells which): a resume continues it.
    Live,
    /// `Drop` (or `into_stack`) is unwinding the suspended body. Seeing this
    /// anywhere else means the coroutine was moved out from under its own
    /// drop (a destructor on its stack reached it through a thread-local
    /// during thread exit): its stack is still in use, so that aborts.
    Ending,
    /// The body returned or panicked.
    Completed,
}

/// A stackful coroutine: a body that runs on its own stack, one piece per
/// [`resume`](Coroutine::resume), suspending from any depth of calls.
///
/// `Input` is passed in by each resume, `Yield` out by each suspend, and
/// `Return` is the body's result; all three default to `()`.
///
/// # Who runs when
///
/// Building a coroutine runs nothing. Each resume runs the body on the
/// calling thread until it suspends (the resume returns
/// [`CoroutineResult::Yield`]) or returns ([`CoroutineResult::Return`]; the
/// coroutine is then completed). Resuming a completed coroutine panics.
///
/// # Panics in the body
///
/// A panic in the body unwinds the body's stack, then comes out of the
/// `resume` that ran it with its original payload (as by
/// [`std::panic::resume_unwind`]); the coroutine is then completed.
///
/// # Dropping
///
/// Dropping a coroutine that never started drops its body closure.
/// Dropping a suspended coroutine resumes it once more, making the suspend
/// point unwind (with a private payload, and without calling the panic
/// hook) so that every destructor on its stack runs; then its stack is
/// freed, or returned to the thread's pool. If the body catches that
/// unwind and suspends again, the unwinding starts over from there until
/// the body ends: a dropped coroutine never continues normally. If the body
/// panics with another payload while being dropped, the drop re-raises it
/// (unless the thread is already panicking).
///
/// # Threads and lifetimes
///
/// The body must be `'static`: a suspended coroutine can be leaked with
/// [`std::mem::forget`], and code on its stack must not then outlive
/// anything it borrowed. For the same reason `Input`, `Yield` and `Return`
/// must be `'static`: a body can hand out a `Yield` such as
/// `&'a Mutex<Option<&'a T>>` that the resumer fills with borrowed data.
///
/// ```compile_fail
/// let name = String::from("local");
/// let borrowed = &name;
/// let co = sure_coro::Coroutine::new(move |h| {
///     h.suspend();
///     println!("{borrowed}");
/// });
/// ```
///
/// ```compile_fail
/// use sure_coro::Coroutine;
/// fn borrowing_input<'a>(_: &'a str) -> Coroutine<&'a str, (), ()> {
///     Coroutine::with_input(|_h, _input| ())
/// }
/// ```
///
/// ```compile_fail
/// use std::sync::Mutex;
/// use sure_coro::Coroutine;
/// fn borrowing_yield<'a>() -> Coroutine<(), &'a Mutex<Option<&'a str>>, ()> {
///     Coroutine::new(|h| {
///         let slot: &'a Mutex<Option<&'a str>> = Box::leak(Box::new(Mutex::new(None)));
///         h.suspend_with(slot);
///     })
/// }
/// ```
///
/// ```compile_fail
/// use sure_coro::Coroutine;
/// fn borrowing_return<'a>(s: &'static str) -> Coroutine<(), (), &'a str> {
///     Coroutine::new(move |h| {
///         h.suspend();
///         s
///     })
/// }
/// ```
///
/// A coroutine is neither `Send` nor `Sync`: values on its stack may not be
/// `Send`, and compiled code may cache a thread-local's address across a
/// suspend. Each thread runs its own coroutines.
///
/// ```compile_fail
/// let co = sure_coro::Coroutine::new(|h| h.suspend());
/// std::thread::spawn(move || drop(co));
/// ```
///
/// ```compile_fail
/// fn is_sync<T: Sync>() {}
/// is_sync::<sure_coro::Coroutine>();
/// ```
///
/// The body's handle cannot leave the body:
///
/// ```compile_fail
/// let co = sure_coro::Coroutine::new(|h| h);
/// ```
///
/// ```compile_fail
/// sure_coro::Coroutine::new(|h| {
///     std::thread::scope(|s| {
///         s.spawn(|| h.suspend());
///     });
/// });
/// ```
///
/// # Example
///
/// ```
/// use sure_coro::Coroutine;
///
/// let mut co = Coroutine::new(|h| {
///     println!("step 1");
///     h.suspend();
///     println!("step 2");
/// });
/// co.resume(); // prints step 1, returns at the suspend
/// assert!(!co.is_completed());
/// co.resume(); // prints step 2, the body returns
/// assert!(co.is_completed());
/// ```
pub struct Coroutine<Input = (), Yield = (), Return = ()> {
    header: NonNull<Header<Input, Yield, Return>>,
    state: State,
    /// Whether the stack goes back to the thread's pool when dropped.
    pooled: bool,
    /// Drops the body closure of a coroutine that never started; knows the
    /// closure's type, which `Coroutine` does not.
    drop_unstarted: unsafe fn(NonNull<Header<Input, Yield, Return>>),
    /// Released by `Drop` once the body has ended.
    stack: ManuallyDrop<Stack>,
    /// Neither Send nor Sync; invariant in all three types.
    _marker: PhantomData<*mut (Input, Yield, Return)>,
}

impl<Y, R> Coroutine<(), Y, R> {
    /// A coroutine running `body` on a default-size stack from this thread's
    /// pool. The body runs at the first [`resume`](Coroutine::resume).
    ///
    /// # Panics
    /// If no stack can be had (the process ran out of memory or of memory
    /// mappings). [`Builder::build`](crate::Builder::build) returns that error instead.
    ///
    /// ```
    /// use sure_coro::{Coroutine, CoroutineResult};
    ///
    /// let mut countdown = Coroutine::new(|h| {
    ///     for i in (1..=3).rev() {
    ///         h.suspend_with(i);
    ///     }
    ///     "liftoff"
    /// });
    /// assert_eq!(countdown.resume(), CoroutineResult::Yield(3));
    /// assert_eq!(countdown.resume(), CoroutineResult::Yield(2));
    /// assert_eq!(countdown.resume(), CoroutineResult::Yield(1));
    /// assert_eq!(countdown.resume(), CoroutineResult::Return("liftoff"));
    /// ```
    #[inline]
    pub fn new<F>(body: F) -> Self
    where
        Y: 'static,
        R: 'static,
        F: FnOnce(&mut SuspendHandle<(), Y>) -> R + 'static,
    {
        Coroutine::with_input(move |handle, ()| body(handle))
    }

    /// Runs the body until it next suspends or returns.
    ///
    /// # Panics
    /// If the coroutine is completed; and with the body's own payload if the
    /// body panics.
    ///
    /// ```
    /// use sure_coro::{Coroutine, CoroutineResult};
    ///
    /// let mut co = Coroutine::new(|h| h.suspend_with('a'));
    /// assert_eq!(co.resume(), CoroutineResult::Yield('a'));
    /// assert_eq!(co.resume(), CoroutineResult::Return(()));
    /// ```
    #[inline]
    #[track_caller]
    pub fn resume(&mut self) -> CoroutineResult<Y, R> {
        self.resume_with(())
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// A coroutine whose body also receives the first resume's value, on a
    /// default-size stack from this thread's pool.
    ///
    /// # Panics
    /// If no stack can be had; [`Builder::build_with_input`](crate::Builder::build_with_input) returns that
    /// error instead.
    ///
    /// ```
    /// use sure_coro::{Coroutine, CoroutineResult};
    ///
    /// // A running total of the values passed in.
    /// let mut sum = Coroutine::with_input(|h, mut x: i64| {
    ///     let mut total = 0;
    ///     loop {
    ///         total += x;
    ///         x = h.suspend_with(total);
    ///     }
    /// });
    /// # let _: &Coroutine<i64, i64, ()> = &sum;
    /// assert_eq!(sum.resume_with(5), CoroutineResult::Yield(5));
    /// assert_eq!(sum.resume_with(-2), CoroutineResult::Yield(3));
    /// ```
    #[inline]
    pub fn with_input<F>(body: F) -> Self
    where
        I: 'static,
        Y: 'static,
        R: 'static,
        F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R + 'static,
    {
        let stack = match pool::take_idle() {
            Some(stack) => stack,
            None => fresh_default_stack(),
        };
        assemble(stack, true, body)
    }

    /// Assembles a coroutine from a header [`Root::install`] wrote on
    /// `stack`.
    ///
    /// [`Root::install`]: crate::root::Root::install
    pub(crate) fn from_parts(
        header: NonNull<Header<I, Y, R>>,
        drop_unstarted: unsafe fn(NonNull<Header<I, Y, R>>),
        stack: Stack,
        pooled: bool,
    ) -> Self {
        Coroutine {
            header,
            state: State::Live,
            pooled,
            drop_unstarted,
            stack: ManuallyDrop::new(stack),
            _marker: PhantomData,
        }
    }

    /// Runs the body until it next suspends or returns, passing `input` to
    /// it: as the body's second argument on the first resume, and as the
    /// return value of the suspend it is waiting in afterwards.
    ///
    /// # Panics
    /// If the coroutine is completed; and with the body's own payload if the
    /// body panics.
    #[inline]
    #[track_caller]
    pub fn resume_with(&mut self, input: I) -> CoroutineResult<Y, R> {
        if self.state != State::Live {
            not_live(self.state);
        }
        let channel = self.channel();
        // Why this is sound: the coroutine is not completed, so its body context is
        // suspended (fresh, or saved by a suspend) on our stack, which we
        // own; we save ourselves in `resumer`, where the body switches back
        // to. The channel lives at the top of that stack. `yielded` is
        // initialised when read: the body writes it just before it switches
        // back with `finished` unset (a suspend), and it is read once.
        // SAFETY: the body context is suspended on a stack we own, and the
        // slots read are initialised, as argued above.
        unsafe {
            (*channel).input.write(input);
            (*channel).resumer.switch_to(&(*channel).body);
            if (*channel).finished {
                return self.finish();
            }
            CoroutineResult::Yield((*channel).yielded.assume_init_read())
        }
    }

    /// Whether the body has returned or panicked. A completed coroutine
    /// cannot be resumed.
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.state == State::Completed
    }

    /// Whether the body has run at all.
    ///
    /// ```
    /// let mut co = sure_coro::Coroutine::new(|h| h.suspend());
    /// assert!(!co.is_started());
    /// co.resume();
    /// assert!(co.is_started());
    /// ```
    #[inline]
    pub fn is_started(&self) -> bool {
        // SAFETY: a live coroutine's channel is at the top of its stack.
        self.state != State::Live || unsafe { (*self.channel()).started }
    }

    /// Usable bytes of this coroutine's stack.
    pub fn stack_size(&self) -> usize {
        self.stack.len()
    }

    /// Ends the coroutine as dropping it would (unwinding a suspended body)
    /// and gives its stack back to the caller, for example to build the next
    /// coroutine on it with [`Builder::stack`](crate::Builder::stack).
    ///
    /// ```
    /// use sure_coro::{Builder, Coroutine};
    ///
    /// let mut co = Coroutine::new(|h| h.suspend());
    /// co.resume();
    /// let stack = co.into_stack();
    /// let mut again = Builder::new().stack(stack).build(|h| h.suspend_with(42)).unwrap();
    /// assert_eq!(again.resume().into_yield(), Some(42));
    /// ```
    pub fn into_stack(mut self) -> Stack {
        let payload = self.end_body();
        // Drop::drop has nothing left to do once the body has ended.
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; the stack is
        // moved out exactly once.
        let stack = unsafe { ManuallyDrop::take(&mut this.stack) };
        if let Some(payload) = payload {
            drop(stack);
            panic::resume_unwind(payload);
        }
        stack
    }

    fn channel(&self) -> *mut crate::root::Channel<I, Y> {
        // SAFETY: the header lives at the top of our stack; taking the
        // field's address reads nothing.
        unsafe { &raw mut (*self.header.as_ptr()).channel }
    }

    /// The body has just made its final switch out: take its outcome.
    /// Cold: it runs once per coroutine, and the layout of the resume loop
    /// should favour the suspend path.
    #[cold]
    #[inline(never)]
    fn finish(&mut self) -> CoroutineResult<Y, R> {
        self.state = State::Completed;
        // SAFETY: the root wrote the outcome before setting `finished`, and
        // it is read exactly once, here.
        match unsafe { (*self.header.as_ptr()).outcome.assume_init_read() } {
            Ok(value) => CoroutineResult::Return(value),
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// Ends the body without running it further: drops an unstarted
    /// closure, or unwinds a suspended stack. Returns a payload the body
    /// panicked with meanwhile, other than the cancellation itself.
    #[inline(never)]
    fn end_body(&mut self) -> Option<Payload> {
        match self.state {
            State::Completed => None,
            State::Ending => reentered_while_ending(),
            State::Live if self.is_started() => {
                self.state = State::Ending;
                let payload = self.unwind_suspended();
                self.state = State::Completed;
                payload
            }
            State::Live => {
                self.state = State::Completed;
                let (drop_unstarted, header) = (self.drop_unstarted, self.header);
                // A panic in the closure's destructor is caught so that the
                // stack is still released.
                // SAFETY: the header came from `Root::install` with the
                // closure type `drop_unstarted` was made for; the body never ran.
                panic::catch_unwind(AssertUnwindSafe(|| unsafe { drop_unstarted(header) })).err()
            }
        }
    }

    /// Resumes a suspended body with `cancelling` set, so that its suspend
    /// point unwinds, until the body's root has caught that and exited.
    fn unwind_suspended(&mut self) -> Option<Payload> {
        let channel = self.channel();
        // A value the body hands out while being unwound is dropped here;
        // if that drop panics, the panic must wait until the body's stack is
        // empty: leaving now would free a stack with live frames on it.
        let mut value_panic: Option<Payload> = None;
        // Why this is sound: as in `resume_with`: the body is suspended on our stack.
        // After each switch back, either the body finished (the outcome is
        // written), or it caught the unwind and suspended again, handing
        // out a value we take before resuming it (still cancelling).
        // SAFETY: the body is suspended on our stack, as in `resume_with`,
        // and each slot is read once after it was written.
        let outcome = unsafe {
            (*channel).cancelling = true;
            loop {
                (*channel).resumer.switch_to(&(*channel).body);
                if (*channel).finished {
                    break;
                }
                let value = (*channel).yielded.assume_init_read();
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
                    keep_first(&mut value_panic, payload);
                }
            }
            (*self.header.as_ptr()).outcome.assume_init_read()
        };
        match outcome {
            // The body caught the unwind and returned: its value may panic
            // when dropped, like a yielded one.
            Ok(value) => {
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
                    keep_first(&mut value_panic, payload);
                }
            }
            Err(payload) if payload.is::<Cancel>() => {}
            Err(payload) => keep_first(&mut value_panic, payload),
        }
        value_panic
    }
}

/// Keeps the first of several panic payloads. Later ones are leaked rather
/// than dropped: a payload's own destructor may panic, and there is no one
/// left to catch that.
fn keep_first(first: &mut Option<Payload>, payload: Payload) {
    match first {
        None => *first = Some(payload),
        Some(_) => std::mem::forget(payload),
    }
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    #[inline]
    fn drop(&mut self) {
        // A completed coroutine (the common case) has nothing left to end;
        // keep that check inline and the rest out of line.
        let payload = if self.state == State::Completed {
            None
        } else {
            self.end_body()
        };
        // SAFETY: the stack is taken once, here, and `self` is not used
        // again; the body has ended, so nothing runs on the stack any more.
        let stack = unsafe { ManuallyDrop::take(&mut self.stack) };
        if self.pooled {
            pool::give_back(stack);
        } else {
            drop(stack);
        }
        if let Some(payload) = payload {
            raise_from_drop(payload);
        }
    }
}

/// Lets a panic the body raised while being dropped out of `Drop`, unless
/// the thread is already panicking: a second panic would abort, and so
/// could the payload's own destructor, so it is leaked.
#[cold]
#[inline(never)]
fn raise_from_drop(payload: Payload) {
    if std::thread::panicking() {
        std::mem::forget(payload);
    } else {
        panic::resume_unwind(payload);
    }
}

impl<I, Y, R> fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Live if self.is_started() => "Suspended",
            State::Live => "Unstarted",
            State::Ending => "Ending",
            State::Completed => "Completed",
        };
        f.debug_struct("Coroutine")
            .field("state", &format_args!("{state}"))
            .field("stack_size", &self.stack.len())
            .finish_non_exhaustive()
    }
}

/// Maps a default-size stack for a coroutine when the pool has none idle;
/// panics when that fails, as `Coroutine::new` documents.
#[cold]
#[inline(never)]
#[track_caller]
fn fresh_default_stack() -> Stack {
    pool::take().unwrap_or_else(|error| {
        panic!(
            "Coroutine::new could not get a stack: {error} \
             (sure_coro::Builder returns this error instead of panicking)"
        )
    })
}

/// A coroutine being unwound by its own drop was reached again: moved out
/// of a thread-local by a destructor on its own stack during thread exit.
/// Its stack is in use, so neither freeing it nor running it is possible.
#[cold]
#[inline(never)]
fn reentered_while_ending() -> ! {
    eprintln!(
        "fatal: a sure_coro::Coroutine was dropped or resumed from a destructor running on its \
         own stack while that drop was unwinding it (a coroutine kept in a thread-local and \
         reached again during thread exit); aborting"
    );
    std::process::abort()
}

/// A resume of a coroutine that is not live: completed, or being dropped.
#[cold]
#[inline(never)]
#[track_caller]
fn not_live(state: State) -> ! {
    match state {
        State::Ending => reentered_while_ending(),
        _ => resumed_after_completion(),
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn resumed_after_completion() -> ! {
    panic!(
        "resumed a coroutine that has already completed (its body returned or panicked); \
         check `is_completed()` before resuming"
    )
}
