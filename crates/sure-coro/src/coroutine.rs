//! [`Coroutine`]: the resumer's side.

use std::fmt;
use std::hint;
use std::io::{self, Write as _};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic;
use std::ptr::NonNull;

use sure_stack::Stack;

use crate::builder::assemble;
use crate::ending::{Body, End, Leak, raise_unless_panicking, release, vacate};
use crate::handle::SuspendHandle;
use crate::pool;
use crate::root::{Channel, Header, Lease, Payload, Phase};
use crate::thread_bound::{StackPtr, StaysOnItsThread};

/// What a [`resume`](Coroutine::resume) ended with.
///
/// It must be used, as a `Result` must: it may hold the body's return value.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let mut co = sure_coro::Coroutine::new(|_h| String::from("lost"));
/// co.resume();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "the body may have returned a value, or suspended with one; \
              `let _ = co.resume();` ignores it"]
pub enum CoroutineResult<Yield, Return> {
    /// The body suspended, handing out this value; resume it again to go on.
    Yield(Yield),
    /// The body returned this value; the coroutine is completed.
    Return(Return),
}

impl<Y, R> CoroutineResult<Y, R> {
    /// Whether the body suspended.
    ///
    /// ```
    /// let mut co = sure_coro::Coroutine::new(|h| h.suspend());
    /// assert!(co.resume().is_yield());
    /// assert!(!co.resume().is_yield());
    /// ```
    pub fn is_yield(&self) -> bool {
        matches!(self, CoroutineResult::Yield(_))
    }

    /// Whether the body returned: the coroutine is completed.
    ///
    /// ```
    /// let mut co = sure_coro::Coroutine::new(|_h| "done");
    /// assert!(co.resume().is_return());
    /// ```
    pub fn is_return(&self) -> bool {
        matches!(self, CoroutineResult::Return(_))
    }

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

/// Where a coroutine is in its life ([`Coroutine::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CoroutineState {
    /// Built, never resumed: the next resume starts the body.
    Unstarted,
    /// Waiting in a suspend: the next resume continues it there.
    Suspended,
    /// Its body is running (or being cancelled). Only code on its own
    /// stack, or a thread-local's destructor run by `process::exit` inside
    /// it, can observe this; such a coroutine cannot be resumed.
    Running,
    /// The body returned, panicked or was cancelled; the coroutine cannot
    /// be resumed.
    Completed,
}

/// Makes `Coroutine` invariant in its three types, without deciding
/// whether it is `Send` ([`StaysOnItsThread`] does that).
type Invariant<I, Y, R> = PhantomData<fn(I, Y, R) -> (I, Y, R)>;

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
/// panics with another payload while being dropped, the drop re-raises it,
/// unless the thread is already panicking: then the payload is leaked, as
/// a second panic would abort. [`into_stack`](Coroutine::into_stack) does
/// the same. A destructor that panics *while* the stack unwinds aborts the
/// process, as any panic during an unwind does.
///
/// # Edges: thread exit, `process::exit`, `panic = "abort"`
///
/// Where a suspended body cannot be unwound soundly, its stack is
/// *leaked*: never unmapped and never reused, so nothing on it is dropped
/// and nothing it points to dangles, exactly as after [`std::mem::forget`].
///
/// - **`panic = "abort"`.** The unwind that would run a suspended body's
///   destructors is an abort, so dropping a suspended coroutine leaks it,
///   with its destructors unrun (`Generator::new(..).take(3).collect()`
///   leaks one stack per call). `into_stack` on a suspended coroutine
///   panics, which then aborts with its message. Unstarted and completed
///   coroutines release their stacks as usual.
/// - **Thread exit.** A coroutine kept in a thread-local is dropped by that
///   thread-local's destructor. Thread-local destructors run in the reverse
///   order of their registration, which std does when a thread-local's
///   initialisation finishes (at its first use, or when a lazy initialiser
///   returns). sure watches for the exit with a thread-local of its own,
///   registered when the thread creates its first coroutine. Once that
///   watch has fired, a suspended coroutine that is dropped is leaked
///   instead of unwound: its body may be suspended inside
///   [`LocalKey::with`](std::thread::LocalKey::with) of a thread-local that
///   is already gone. Before it has fired (a destructor of a thread-local
///   registered after the thread's first coroutine), the body is unwound
///   as by any drop. On Windows the watch is a TLS callback that runs before
///   std destroys any thread-local (whose gnu targets destroy them in an
///   order set by the whole process, not the thread), so there every
///   suspended coroutine dropped during the exit is leaked.
/// - **`process::exit`** runs the calling thread's thread-local destructors
///   on its live stack, possibly inside a body. A coroutine dropped while
///   its body is running (it, or a coroutine it resumed, called `exit`) is
///   leaked; one that is resumed in that state, or whose `into_stack` is
///   called, panics instead of switching to it.
/// - **Reached from its own stack.** Code that runs while a drop ends a
///   coroutine (the body's destructors, its closure's drop glue, a value it
///   hands out) may reach the same coroutine again through a thread-local
///   being destroyed: drop it again, move it out, replace or forget it. The
///   drop reads all it needs before any such code runs; the second drop
///   finds the coroutine in use and leaves it alone, and a resume panics.
///
/// What remains yours to avoid concerns only a body that holds a reference
/// into a thread-local across a suspend (it suspended inside
/// `LocalKey::with`), and only during its thread's exit; Rust's
/// `LocalKey::with` promises the value outlives the closure, and a
/// suspended closure outlives it. Each of these lets such a body, or
/// threads it started, use a value being destroyed or already freed:
///
/// - resuming it from a thread-local's destructor (resumes are not checked
///   for the thread's exit: that would cost a thread-local read on every
///   resume);
/// - dropping it from the destructor of a thread-local registered after
///   the thread's first coroutine (which runs before sure's watch fires;
///   not on Windows),
///   when the thread-local its body borrows was registered later still, or
///   is the one being destroyed (a `Coroutine` moved out of it there can
///   also outlive the stack it points to);
/// - leaving it suspended while the thread exits (forgotten with
///   [`std::mem::forget`], or leaked by the exit as above) when it started
///   threads that use the value: suspended inside
///   [`std::thread::scope`] inside `LocalKey::with`, it never joins them,
///   and the exit destroys the value under them. Leaking the stack keeps
///   what is on it alive, not what it borrowed from a thread-local.
///
/// Take what you need out of a thread-local before suspending (clone an
/// `Rc`, copy a value); or initialise the thread-locals that hold or drive
/// coroutines before the thread's first coroutine; or end such coroutines
/// before the thread exits.
///
/// Forgetting a coroutine that is suspended in the middle of an unwind (a
/// destructor suspended while its body panicked; destructors may suspend
/// during an unwind) leaves [`std::thread::panicking`] true for the thread
/// from then on: that panic never finishes. Mutexes locked by the thread
/// are then poisoned when their guards drop, and a later drop's payload is
/// leaked rather than re-raised.
///
/// # Threads and lifetimes
///
/// The body must be `'static`: a suspended coroutine can be leaked with
/// [`std::mem::forget`], and code on its stack must not then outlive
/// anything it borrowed. A body that borrows is a
/// [`ScopedCoroutine`](crate::ScopedCoroutine)'s, run inside a scope that
/// ends it. For the same reason `Input`, `Yield` and `Return`
/// must be `'static`: a body can hand out a `Yield` such as
/// `&'a Mutex<Option<&'a T>>` that the resumer fills with borrowed data.
///
/// ```compile_fail,E0597
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
///     Coroutine::yielding(|h| {
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
/// ```compile_fail,E0277
/// let co = sure_coro::Coroutine::new(|h| h.suspend());
/// std::thread::spawn(move || drop(co));
/// ```
///
/// ```compile_fail,E0277
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
/// ```compile_fail,E0277
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
/// assert!(co.resume().is_yield()); // prints step 1, returns at the suspend
/// assert!(co.resume().is_return()); // prints step 2, the body returns
/// assert!(co.is_completed());
/// ```
pub struct Coroutine<Input = (), Yield = (), Return = ()> {
    /// The root at the top of the stack: its channel holds the coroutine's
    /// state, its tenancy the stack itself, released by `Drop` once the
    /// body has ended.
    header: StackPtr<Header<Input, Yield, Return>>,
    _types: Invariant<Input, Yield, Return>,
    /// Neither Send nor Sync.
    _thread: StaysOnItsThread,
}

// One pointer, with a niche: creating, moving and dropping a coroutine
// copies nothing else (the rest is in its header, on its stack).
static_assertions::const_assert_eq!(size_of::<Coroutine<u64, u64, u64>>(), size_of::<usize>());
static_assertions::const_assert_eq!(size_of::<Option<Coroutine>>(), size_of::<usize>());

impl<R> Coroutine<(), (), R> {
    /// A coroutine running `body` on a default-size stack from this thread's
    /// pool. The body runs at the first [`resume`](Coroutine::resume); it
    /// can [`suspend`](SuspendHandle::suspend), and its return value comes
    /// out of the last resume. Nothing needs a type annotation, whatever the
    /// body does:
    ///
    /// ```
    /// use sure_coro::{Coroutine, CoroutineResult};
    ///
    /// let mut answer = Coroutine::new(|_h| 42);
    /// assert_eq!(answer.resume(), CoroutineResult::Return(42));
    ///
    /// let mut two_steps = Coroutine::new(|h| {
    ///     println!("step 1");
    ///     h.suspend();
    ///     println!("step 2");
    /// });
    /// assert_eq!(two_steps.resume(), CoroutineResult::Yield(()));
    /// assert_eq!(two_steps.resume(), CoroutineResult::Return(()));
    ///
    /// # fn work() {}
    /// let _ = Coroutine::new(|_h| work());
    /// let _ = Coroutine::new(|_h| {});
    /// let _ = Coroutine::new(move |_h| panic!("boom"));
    /// ```
    ///
    /// Such a coroutine hands nothing out when it suspends. To hand out
    /// values, build it with [`Coroutine::yielding`]:
    ///
    /// ```compile_fail,E0308
    /// // error[E0308]: mismatched types: expected `()`, found integer
    /// let co = sure_coro::Coroutine::new(|h| h.suspend_with(3));
    /// ```
    ///
    /// # Panics
    /// If no stack can be had (the process ran out of memory or of memory
    /// mappings). [`Builder::build`](crate::Builder::build) returns that error instead.
    /// On Windows, also if a thread's first coroutine finds no TLS slot
    /// left for the exit mark (see "Edges"), as `build` does.
    #[inline]
    pub fn new<F>(body: F) -> Self
    where
        R: 'static,
        F: FnOnce(&mut SuspendHandle) -> R + 'static,
    {
        Coroutine::with_input(move |handle, ()| body(handle))
    }
}

impl<Y, R> Coroutine<(), Y, R> {
    /// A coroutine whose body hands a value out each time it suspends
    /// ([`SuspendHandle::suspend_with`]), on a default-size stack from this
    /// thread's pool. The type of those values is inferred from the body.
    ///
    /// ```
    /// use sure_coro::{Coroutine, CoroutineResult};
    ///
    /// let mut countdown = Coroutine::yielding(|h| {
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
    ///
    /// Why a name of its own: a body that never suspends leaves nothing to
    /// infer the yielded type from, and Rust does not fall back to a default
    /// type parameter, so [`Coroutine::new`] fixes it to `()` and this
    /// constructor leaves it open. A body here that never hands anything
    /// out needs the type named:
    ///
    /// ```compile_fail,E0282
    /// // error[E0282]: type annotations needed
    /// let co = sure_coro::Coroutine::yielding(|_h| 42);
    /// ```
    ///
    /// ```
    /// let co = sure_coro::Coroutine::<(), u8, _>::yielding(|_h| 42);
    /// ```
    ///
    /// # Panics
    /// If no stack can be had (the process ran out of memory or of memory
    /// mappings). [`Builder::build_yielding`](crate::Builder::build_yielding)
    /// returns that error instead.
    #[inline]
    pub fn yielding<F>(body: F) -> Self
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
    /// let mut co = Coroutine::yielding(|h| h.suspend_with('a'));
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
        let stack = pool::take_or_panic("Coroutine::new", "sure_coro::Builder");
        assemble(stack, Lease::Default, None, body)
    }

    /// The coroutine whose root [`Root::install`] wrote, with `header`.
    ///
    /// [`Root::install`]: crate::root::Root::install
    pub(crate) fn from_header(header: NonNull<Header<I, Y, R>>) -> Self {
        Coroutine {
            header: StackPtr::new(header),
            _types: PhantomData,
            _thread: StaysOnItsThread::default(),
        }
    }

    /// Runs the body until it next suspends or returns, passing `input` to
    /// it: as the body's second argument on the first resume, and as the
    /// return value of the suspend it is waiting in afterwards.
    ///
    /// # Panics
    /// If the coroutine is completed, or running or being dropped (this was
    /// reached from code on its own stack; see [`Coroutine`], "Edges"); and
    /// with the body's own payload if the body panics.
    #[inline]
    #[track_caller]
    pub fn resume_with(&mut self, input: I) -> CoroutineResult<Y, R> {
        let header = self.header.as_non_null();
        let channel = self.channel();
        // SAFETY: the channel is at the top of our stack, which we own.
        if !unsafe { (*channel).body.is_saved() } {
            not_resumable(self.state());
        }
        // SAFETY: the body's context is saved, so the body is
        // unstarted or suspended (a drop that runs user code while ending a
        // coroutine clears it first), on our stack, which we own. We save
        // ourselves in `resumer`, where the body switches back to, and the
        // switch takes the body's context, leaving it unsaved while the body
        // runs: a drop or resume that reaches the coroutine meanwhile leaves
        // it alone. Back here, the body either finished (the root wrote the
        // outcome, then `Finished`) or suspended, having written `yielded`
        // first (read once, here). The phase tells which rather than the
        // body's context: the body's switch has just stored that, and
        // loading it at once measured 1.5 ns slower per round trip.
        unsafe {
            (*channel).input.write(input);
            (*channel).resumer.switch_to_taking(&(*channel).body);
            if (*channel).phase == Phase::Finished {
                return Self::finish(header);
            }
            CoroutineResult::Yield((*channel).yielded.assume_init_read())
        }
    }

    /// Whether the body has returned, panicked or been cancelled
    /// ([`force_unwind`](Coroutine::force_unwind)). A completed coroutine
    /// cannot be resumed.
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.phase() == Phase::Finished
    }

    /// Whether the coroutine has left its unstarted state: its body has run,
    /// or it was cancelled before it could.
    ///
    /// ```
    /// let mut co = sure_coro::Coroutine::new(|h| h.suspend());
    /// assert!(!co.is_started());
    /// let _ = co.resume();
    /// assert!(co.is_started());
    /// ```
    #[inline]
    pub fn is_started(&self) -> bool {
        self.phase() != Phase::Unstarted
    }

    /// The coroutine's name, if it was built with one
    /// ([`Builder::name`](crate::Builder::name)).
    pub fn name(&self) -> Option<&str> {
        // SAFETY: as in `stack`.
        let named = unsafe { (*self.header.as_ptr()).tenancy.lease.is_named() };
        // SAFETY: a named coroutine's label was written when it was built
        // and is released only when the stack leaves it.
        named.then(|| unsafe { self.stack().name() })
    }

    /// Usable bytes of this coroutine's stack.
    pub fn stack_size(&self) -> usize {
        self.stack().len()
    }

    /// The most bytes of its stack this coroutine has used so far, exact to
    /// within a page: read from which pages of the stack are resident
    /// ([`Stack::peak_usage`]), so it costs nothing until asked, and a
    /// system call when asked. It counts the root sure keeps at the top of
    /// the stack (a few hundred bytes), not segments that
    /// [`grow`](crate::grow()) added.
    ///
    /// A stack from the thread's pool (what [`Coroutine::new`] takes)
    /// keeps the pages of the coroutines that ran on it before: the figure
    /// is then the deepest any of them went. To measure this coroutine
    /// alone, call [`reset_peak_stack_usage`](Coroutine::reset_peak_stack_usage)
    /// before its first resume.
    ///
    /// ```
    /// use std::hint::black_box;
    /// use sure_coro::{Coroutine, remaining_stack};
    ///
    /// let mut co = Coroutine::yielding(|h| {
    ///     let locals = black_box([0u8; 20_000]); // 20 KB of locals
    ///     h.suspend_with(remaining_stack().unwrap() + usize::from(locals[0]));
    /// });
    /// co.reset_peak_stack_usage()?; // the pooled stack's earlier users
    /// let left = co.resume().into_yield().unwrap();
    /// let peak = co.peak_stack_usage()?;
    /// // Down to where it was, rounded to a whole page.
    /// let reached = co.stack_size() - left;
    /// assert!(peak >= reached, "{peak}");
    /// // To size its stack: ask for twice the deepest seen, in whole pages.
    /// let size = (2 * peak).max(sure_coro::MIN_STACK_SIZE);
    /// let sized = sure_coro::Builder::new().stack_size(size).build(|_h| ());
    /// assert!(sized.is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// See the crate's documentation, "Sizing a stack", for what to ask
    /// [`Builder::stack_size`](crate::Builder::stack_size) for.
    ///
    /// # Errors
    /// As [`Stack::peak_usage`]: what `mincore(2)` reported, if it failed.
    pub fn peak_stack_usage(&self) -> io::Result<usize> {
        self.stack().peak_usage()
    }

    /// Gives back to the system the pages of this coroutine's stack below
    /// the part in use, so that [`peak_stack_usage`](Coroutine::peak_stack_usage)
    /// measures from here on (and the memory those pages held is freed). An
    /// unstarted or suspended coroutine keeps the pages it is using; a
    /// completed one keeps only the root.
    ///
    /// # Errors
    /// - [`io::ErrorKind::ResourceBusy`] if the body is running (this was
    ///   reached from code on its own stack), or suspended on another stack
    ///   (inside a segment that [`grow`](crate::grow()) made, where the depth
    ///   of its own stack is not known): nothing is discarded.
    /// - What `madvise(2)` reported, if it failed.
    pub fn reset_peak_stack_usage(&mut self) -> io::Result<()> {
        let channel = self.channel();
        // SAFETY: the channel lives at the top of our stack, which we own.
        let in_use = match unsafe { (*channel).state() } {
            CoroutineState::Unstarted | CoroutineState::Suspended => {
                // SAFETY: as above.
                unsafe { (*channel).body.saved_stack_pointer() }
                    .map(|sp| sp.as_ptr().cast_const())
                    .filter(|&sp| {
                        self.stack().bottom().as_ptr().cast_const() <= sp
                            && sp < self.stack().top().as_ptr()
                    })
            }
            CoroutineState::Completed => Some(self.header.as_ptr().cast::<u8>().cast_const()),
            CoroutineState::Running => None,
        };
        let Some(in_use) = in_use else {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "the coroutine's stack is in use at an unknown depth (its body is running, or \
                 suspended inside a segment that sure_coro::grow made): nothing was discarded",
            ));
        };
        // SAFETY: an unstarted or suspended body's execution has nothing
        // below its saved stack pointer, which lies on this stack; a
        // completed body's stack holds only the root (at the header) and
        // the label above it; nothing else points into the stack.
        unsafe { self.stack().discard_below(in_use) }
    }

    /// Ends the coroutine as dropping it would (unwinding a suspended body)
    /// and gives its stack back to the caller, for example to build the next
    /// coroutine on it with [`Builder::stack`](crate::Builder::stack).
    ///
    /// ```
    /// use sure_coro::{Builder, Coroutine};
    ///
    /// let mut co = Coroutine::new(|h| h.suspend());
    /// let _ = co.resume();
    /// let stack = co.into_stack();
    /// let mut again = Builder::new().stack(stack).build_yielding(|h| h.suspend_with(42)).unwrap();
    /// assert_eq!(again.resume().into_yield(), Some(42));
    /// ```
    ///
    /// # Panics
    /// - With the body's own payload if it panics while being unwound. If
    ///   the thread is already panicking, that payload is leaked and the
    ///   stack returned instead, as `Drop` would (a second panic would
    ///   abort).
    /// - If the stack cannot be given back, which leaks it: the coroutine
    ///   is running (this call was reached from code on its own stack), or
    ///   it is suspended and cannot be unwound (the build has
    ///   `panic = "abort"`, or this thread's locals are being destroyed; see
    ///   [`Coroutine`], "Edges").
    pub fn into_stack(self) -> Stack {
        let body = ManuallyDrop::new(self).body();
        match body.end() {
            End::Ended(payload) => {
                // SAFETY: the body has ended, and the coroutine is never
                // dropped (`ManuallyDrop`), so the stack moves out once, here.
                let (stack, _) = unsafe { vacate(body.header) };
                if let Some(payload) = payload {
                    if !std::thread::panicking() {
                        drop(stack);
                        panic::resume_unwind(payload);
                    }
                    std::mem::forget(payload);
                }
                stack
            }
            End::Leaked(leak) => panic!(
                "Coroutine::into_stack cannot give the stack back: {}; the stack is leaked",
                leak.reason()
            ),
        }
    }

    /// Cancels the coroutine in place, as dropping it would, and keeps the
    /// object: a suspended body is unwound (every destructor on its stack
    /// runs, with a [`Cancelled`](crate::Cancelled) payload), an unstarted
    /// one's closure is dropped. Afterwards the coroutine is completed; it
    /// still holds its stack, for [`into_stack`](Coroutine::into_stack) or
    /// its drop. Does nothing to a completed coroutine.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use sure_coro::{Coroutine, CoroutineState};
    ///
    /// struct Closes(Rc<Cell<bool>>);
    /// impl Drop for Closes {
    ///     fn drop(&mut self) {
    ///         self.0.set(true);
    ///     }
    /// }
    ///
    /// let closed = Rc::new(Cell::new(false));
    /// let connection = Closes(closed.clone());
    /// let mut fiber = Coroutine::new(move |h| {
    ///     let _connection = connection;
    ///     loop {
    ///         h.suspend();
    ///     }
    /// });
    /// let _ = fiber.resume();
    /// fiber.force_unwind();
    /// assert!(closed.get());
    /// assert_eq!(fiber.state(), CoroutineState::Completed);
    /// ```
    ///
    /// # Cost
    /// Unwinding is slow next to a switch: a forced unwind measured
    /// 1.7-3.4 µs on this project's machines, 20 to 40 times the drop of a
    /// completed coroutine. The same goes for dropping a suspended
    /// coroutine, and so for a [`Generator`](crate::Generator) dropped
    /// before its end (`take(10)` on an endless generator costs about
    /// 2 µs for that reason).
    ///
    /// # Panics
    /// - With the body's own payload if it panics while being unwound with
    ///   another payload (not while the thread is already panicking: that
    ///   payload is then leaked, as `Drop` does). A destructor that panics
    ///   *during* the unwind aborts the process, as any panic in a
    ///   destructor during an unwind does.
    /// - If the body cannot be unwound (the build has `panic = "abort"`, or
    ///   this thread's locals are being destroyed; see [`Coroutine`],
    ///   "Edges"), or is running (this was reached from code on its own
    ///   stack). The coroutine is then left as it was.
    pub fn force_unwind(&mut self) {
        self.end_in_place(|leak| {
            panic!("Coroutine::force_unwind cannot end it: {}", leak.reason())
        });
    }

    /// Ends the coroutine in place, as [`force_unwind`](Coroutine::force_unwind),
    /// or aborts the process where it cannot be ended: at the end of a
    /// `ScopedCoroutine`'s scope, leaking a body that borrows (as a drop
    /// would) is unsound, and so is a panic that leaves the scope without
    /// ending it.
    pub(crate) fn end_or_abort(&mut self) {
        self.end_in_place(|leak| {
            let _ = writeln!(
                io::stderr(),
                "fatal runtime error: a scoped coroutine cannot be ended at the end of its \
                 scope: {}; leaking it would let its body outlive what it borrows, aborting",
                leak.reason()
            );
            std::process::abort()
        });
    }

    /// [`force_unwind`](Coroutine::force_unwind), with what to do where the
    /// body cannot be ended.
    fn end_in_place(&mut self, cannot_end: fn(Leak) -> !) {
        // Read now: ending the body runs its destructors, which may move or
        // replace this `Coroutine` value (through a thread-local).
        let body = self.body();
        match body.end() {
            End::Ended(payload) => {
                // SAFETY: the channel is at the top of the stack `body` came
                // from, which its coroutine, wherever it is now, still holds;
                // the body has ended, so marking it finished lets its drop
                // release the stack.
                unsafe { (*body.channel()).phase = Phase::Finished };
                if let Some(payload) = payload {
                    raise_unless_panicking(payload);
                }
            }
            End::Leaked(leak) => cannot_end(leak),
        }
    }

    /// Where the coroutine is in its life.
    ///
    /// ```
    /// use sure_coro::{Coroutine, CoroutineState};
    ///
    /// let mut co = Coroutine::new(|h| h.suspend());
    /// assert_eq!(co.state(), CoroutineState::Unstarted);
    /// let _ = co.resume();
    /// assert_eq!(co.state(), CoroutineState::Suspended);
    /// let _ = co.resume();
    /// assert_eq!(co.state(), CoroutineState::Completed);
    /// ```
    pub fn state(&self) -> CoroutineState {
        // SAFETY: the channel lives at the top of our stack, which we own.
        unsafe { (*self.channel()).state() }
    }

    fn channel(&self) -> *mut Channel<I, Y> {
        // SAFETY: the header lives at the top of our stack; taking the
        // field's address reads nothing.
        unsafe { &raw mut (*self.header.as_ptr()).channel }
    }

    /// What ending the body needs (see [`Body`]).
    fn body(&self) -> Body<I, Y, R> {
        Body {
            header: self.header.as_non_null(),
        }
    }

    fn phase(&self) -> Phase {
        // SAFETY: the channel lives at the top of our stack, which we own.
        unsafe { (*self.channel()).phase }
    }

    /// The body has just made its final switch out: take its outcome,
    /// through the header read before the body ran (the body's code may have
    /// moved or replaced the `Coroutine` value, through a thread-local).
    /// Inline, with its branch marked cold so that the resume loop's layout
    /// still favours the suspend path: out of line, the call and the
    /// `CoroutineResult` it returned through cost 9 instructions per create.
    #[inline(always)]
    fn finish(header: NonNull<Header<I, Y, R>>) -> CoroutineResult<Y, R> {
        hint::cold_path();
        // SAFETY: the root wrote the outcome before writing `Finished`, and
        // it is read exactly once, here: a finished coroutine is never
        // resumed, and its drop does not look at the outcome.
        match unsafe { (*header.as_ptr()).outcome.assume_init_read() } {
            Ok(value) => CoroutineResult::Return(value),
            Err(payload) => resume_panic(payload),
        }
    }

    /// The coroutine's stack.
    fn stack(&self) -> &Stack {
        // SAFETY: the tenancy lives in the header at the top of our stack,
        // and nothing writes it while we hold the stack: the body never
        // touches it, and only the end of the coroutine (`Drop`,
        // `into_stack`, which take `self`) moves the stack out.
        unsafe { &(*self.header.as_ptr()).tenancy.stack }
    }
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    #[inline(always)]
    fn drop(&mut self) {
        // A completed coroutine (the common case) has nothing left to end;
        // keep that check inline and the rest out of line.
        if self.phase() == Phase::Finished {
            // SAFETY: the body has finished, so nothing runs on the stack,
            // and `self` is being dropped: the stack moves out once, here.
            unsafe { release(self.header.as_non_null()) };
        } else {
            self.body().drop_unfinished();
        }
    }
}

impl<I, Y, R> fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Coroutine");
        if let Some(name) = self.name() {
            debug.field("name", &name);
        }
        debug
            .field("state", &self.state())
            .field("stack_size", &self.stack().len())
            .finish_non_exhaustive()
    }
}

/// Lets the body's panic out of `resume`, out of line.
#[cold]
#[inline(never)]
fn resume_panic(payload: Payload) -> ! {
    panic::resume_unwind(payload)
}

/// A resume of a coroutine that is neither unstarted nor suspended.
#[cold]
#[inline(never)]
#[track_caller]
fn not_resumable(state: CoroutineState) -> ! {
    if state == CoroutineState::Completed {
        panic!(
            "resumed a coroutine that has already completed (its body returned or panicked); \
             check `is_completed()` before resuming"
        )
    }
    panic!(
        "resumed a coroutine that is running, or being dropped: it was reached from code on its \
         own stack (a destructor, or a thread-local's destructor run by `process::exit`)"
    )
}
