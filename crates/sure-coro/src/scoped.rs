//! [`ScopedCoroutine`]: a coroutine whose body borrows, driven inside a
//! scope that ends it.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;

use sure_stack::StackError;

use crate::builder::{Builder, assemble};
use crate::coroutine::{Coroutine, CoroutineResult, CoroutineState};
use crate::generator::Generator;
use crate::handle::SuspendHandle;
use crate::pool;
use crate::root::Lease;

/// A coroutine whose body, and the values it passes, may borrow the
/// caller's data: a generator over a `&[T]`, a parser over a `&str`, a
/// task that fills a `&mut Vec`. [`Coroutine`] asks for `'static`, because
/// a suspended coroutine can be leaked with [`std::mem::forget`] and code
/// on its stack would then outlive what it borrowed; a scoped coroutine is
/// run only inside [`scope`](ScopedCoroutine::scope), which owns it and
/// ends it (unwinding it, if suspended) before returning, whatever the
/// closure did. That is the shape of [`std::thread::scope`], whose threads
/// are joined before it returns, and of corosensei's `ScopedCoroutine`.
///
/// ```
/// use sure_coro::ScopedCoroutine;
///
/// let words = vec!["stackful", "coroutines", "borrow"];
/// let mut lengths = Vec::new();
/// // The body borrows `words`; the scope's closure fills `lengths`.
/// let longest = ScopedCoroutine::yielding(|h| {
///     for word in &words {
///         h.suspend_with(word.len());
///     }
///     words.iter().map(|w| w.len()).max()
/// })
/// .scope(|mut co| {
///     lengths.extend(co.by_ref());
///     co.take_return()
/// });
/// assert_eq!(lengths, [8, 10, 6]);
/// assert_eq!(longest, Some(Some(10)));
/// ```
///
/// The [`ScopedCoroutineRef`] the closure gets resumes it as
/// [`Coroutine::resume`] does, and is an [`Iterator`] over what the body
/// suspends with when it takes no input.
///
/// # Why it is sound
///
/// The peers learned this the hard way: corosensei's first
/// `ScopedCoroutine` could be forgotten after a resume (its issue 27), a
/// pinned one leaked in a `Box` (issue 59), and a scope's coroutine swapped
/// out into an outer scope (its PR 60); generator-rs's scoped generators
/// could be forgotten (its issue 49), and still can through a second way
/// to suspend (issue 59). Each of those attacks suspends the body inside
/// [`std::thread::scope`] with a thread that borrows the caller's data, and
/// then makes the coroutine vanish without ending, so the thread outlives
/// the data. Here:
///
/// - A `ScopedCoroutine` cannot be resumed, only moved into
///   [`scope`](ScopedCoroutine::scope): forgetting one forgets a body that
///   never ran.
/// - `scope` owns the coroutine while its closure runs, and ends it when
///   the closure returns or panics, before `scope` returns.
/// - The closure gets a [`ScopedCoroutineRef`], which cannot leave the
///   closure (its lifetime is the closure's own) and gives no access to
///   the coroutine itself, so nothing can be swapped in or out of it.
/// - A body may borrow the handle of the coroutine it runs in, but cannot
///   swap it with its own, which would send each coroutine's suspends to
///   the other's stack: each body's [`SuspendHandle`] has a brand of its
///   own.
/// - Dropping a scoped coroutine that never ran drops its body, so the
///   compiler holds what the body borrows alive until the drop.
/// - Where a suspended body cannot be unwound (a build with
///   `panic = "abort"`; a scope ending in a thread-local's destructor at
///   thread exit; see [`Coroutine`], "Edges"), where a `Coroutine` would be
///   leaked, the end of a scope aborts the process instead: leaking would
///   let the body outlive what it borrows.
///
/// Each attack, written against this type, fails to compile:
///
/// ```compile_fail,E0599
/// // corosensei issue 27, generator-rs issue 49: resume, then forget.
/// let data = String::from("borrowed");
/// let mut co = sure_coro::ScopedCoroutine::new(|h| {
///     std::thread::scope(|s| {
///         s.spawn(|| println!("{data}"));
///         h.suspend();
///     })
/// });
/// co.resume(); // no such method: only `scope` runs the body
/// std::mem::forget(co);
/// ```
///
/// ```compile_fail,E0599
/// // corosensei issue 59: pinned in a box, resumed, the box leaked.
/// let data = String::from("borrowed");
/// let mut co = Box::pin(sure_coro::ScopedCoroutine::new(|h| {
///     std::thread::scope(|s| {
///         s.spawn(|| println!("{data}"));
///         h.suspend();
///     })
/// }));
/// co.as_mut().resume();
/// std::mem::forget(co);
/// ```
///
/// ```compile_fail,E0599
/// // generator-rs issue 59: another way to suspend and drive the body (a
/// // yielding body, stepped as an iterator), then forget.
/// let data = String::from("borrowed");
/// let mut co = sure_coro::ScopedCoroutine::yielding(|h| {
///     std::thread::scope(|s| {
///         s.spawn(|| println!("{data}"));
///         h.suspend_with(1);
///     })
/// });
/// co.next();
/// std::mem::forget(co);
/// ```
///
/// ```compile_fail,E0521
/// // The same, smuggling the resumer out of the scope to forget later.
/// let data = String::from("borrowed");
/// let mut escaped = None;
/// sure_coro::ScopedCoroutine::new(|h| {
///     std::thread::scope(|s| {
///         s.spawn(|| println!("{data}"));
///         h.suspend();
///     })
/// })
/// .scope(|co| escaped = Some(co));
/// ```
///
/// ```compile_fail,E0521
/// // corosensei PR 60: swap an inner scope's suspended coroutine into an
/// // outer scope, so that the inner scope ends nothing.
/// let data = String::from("borrowed");
/// sure_coro::ScopedCoroutine::new(|_h| ()).scope(|mut outer| {
///     sure_coro::ScopedCoroutine::new(|h| {
///         std::thread::scope(|s| {
///             s.spawn(|| println!("{data}"));
///             h.suspend();
///         })
///     })
///     .scope(|mut inner| {
///         let _ = inner.resume();
///         std::mem::swap(&mut inner, &mut outer);
///     });
/// });
/// ```
///
/// ```compile_fail,E0597
/// // The coroutine cannot outlive what its body borrows.
/// let co = {
///     let data = String::from("borrowed");
///     sure_coro::ScopedCoroutine::new(|_h| data.len())
/// };
/// co.scope(|mut co| co.resume());
/// ```
///
/// ```compile_fail,E0597
/// // Nor be dropped after it: dropping an unstarted coroutine drops its
/// // body, whose destructors may read what it borrows.
/// struct ReadsOnDrop<'a>(&'a [u64]);
/// impl Drop for ReadsOnDrop<'_> {
///     fn drop(&mut self) {
///         println!("{:?}", self.0);
///     }
/// }
/// let co;
/// let data = vec![1, 2, 3];
/// let reads = ReadsOnDrop(&data);
/// co = sure_coro::ScopedCoroutine::new(move |_h| drop(reads));
/// ```
///
/// ```compile_fail,E0277
/// // Nor leave its thread.
/// let co = sure_coro::ScopedCoroutine::new(|h| h.suspend());
/// std::thread::spawn(move || co.scope(|mut co| co.resume()));
/// ```
///
/// A body that does suspend inside [`std::thread::scope`] is fine: ending
/// the coroutine at the end of its scope unwinds the body out of
/// `thread::scope`, which joins the threads (see the crate's
/// `tests/scoped.rs`).
pub struct ScopedCoroutine<'a, Input = (), Yield = (), Return = ()> {
    /// Built without `'static`: it never leaves this value, and this value
    /// runs only inside `scope`, which moves it out (hence `ManuallyDrop`).
    inner: ManuallyDrop<Coroutine<Input, Yield, Return>>,
    /// What the body borrows must outlive this value.
    _borrows: PhantomData<&'a mut ()>,
}

impl<'a, R: 'a> ScopedCoroutine<'a, (), (), R> {
    /// A scoped coroutine whose body suspends handing nothing out, on a
    /// default-size stack from this thread's pool (as [`Coroutine::new`]).
    ///
    /// # Panics
    /// If no stack can be had; [`Builder::build_scoped`] returns that error
    /// instead.
    #[inline]
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&mut SuspendHandle) -> R + 'a,
    {
        ScopedCoroutine::with_input(move |handle, ()| body(handle))
    }
}

impl<'a, Y: 'a, R: 'a> ScopedCoroutine<'a, (), Y, R> {
    /// A scoped coroutine whose body hands a value out each time it
    /// suspends (as [`Coroutine::yielding`]).
    ///
    /// # Panics
    /// If no stack can be had; [`Builder::build_scoped_yielding`] returns
    /// that error instead.
    #[inline]
    pub fn yielding<F>(body: F) -> Self
    where
        F: FnOnce(&mut SuspendHandle<(), Y>) -> R + 'a,
    {
        ScopedCoroutine::with_input(move |handle, ()| body(handle))
    }
}

impl<'a, I: 'a, Y: 'a, R: 'a> ScopedCoroutine<'a, I, Y, R> {
    /// A scoped coroutine whose body also receives the first resume's
    /// value (as [`Coroutine::with_input`]).
    ///
    /// # Panics
    /// If no stack can be had; [`Builder::build_scoped_with_input`]
    /// returns that error instead.
    #[inline]
    pub fn with_input<F>(body: F) -> Self
    where
        F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R + 'a,
    {
        let stack = pool::take_or_panic("ScopedCoroutine::new", "sure_coro::Builder::build_scoped");
        ScopedCoroutine::from_inner(assemble(stack, Lease::Default, None, body))
    }

    /// Wraps a coroutine built by [`assemble`] from a body that may borrow
    /// for `'a`.
    #[inline]
    pub(crate) fn from_inner(inner: Coroutine<I, Y, R>) -> Self {
        ScopedCoroutine {
            inner: ManuallyDrop::new(inner),
            _borrows: PhantomData,
        }
    }

    /// Runs `f` with a [`ScopedCoroutineRef`] that resumes the coroutine,
    /// then ends the coroutine and returns what `f` returned. A body still
    /// suspended when `f` returns, or panics, is unwound first, as
    /// [`Coroutine::force_unwind`] does (every destructor on its stack
    /// runs), so nothing it borrowed is used after `scope` returns.
    ///
    /// # Panics
    /// With the body's own payload if it panics in a resume (as
    /// [`Coroutine::resume`]) or while being unwound, and with `f`'s.
    ///
    /// # Aborts
    /// If the body is suspended when `f` ends and cannot be unwound: the
    /// build has `panic = "abort"`, or this runs in a thread-local's
    /// destructor while the thread exits. Leaking the body there, as a
    /// [`Coroutine`] would, is unsound for a body that borrows.
    #[inline]
    pub fn scope<T>(self, f: impl FnOnce(ScopedCoroutineRef<'_, I, Y, R>) -> T) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the coroutine is moved out of
        // it once, here, and dropped once, by `ends_here`.
        let inner = unsafe { ManuallyDrop::take(&mut this.inner) };
        let mut ends_here = EndsWithScope(Generator::from(inner));
        f(ScopedCoroutineRef {
            inner: &mut ends_here.0,
        })
    }

    /// Usable bytes of this coroutine's stack.
    pub fn stack_size(&self) -> usize {
        self.inner.stack_size()
    }
}

/// Dropping a coroutine that never ran drops its body closure, whose
/// destructors may use what it borrows for `'a`. A `Drop` impl makes the
/// compiler's drop check hold `'a` alive until then; the closure's type
/// itself is hidden inside the coroutine, where the check cannot see it.
impl<I, Y, R> Drop for ScopedCoroutine<'_, I, Y, R> {
    fn drop(&mut self) {
        // SAFETY: the coroutine is dropped once, here: `scope`, the only
        // other place that takes it, never drops the value it took it from.
        unsafe { ManuallyDrop::drop(&mut self.inner) }
    }
}

impl<I, Y, R> std::fmt::Debug for ScopedCoroutine<'_, I, Y, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ScopedCoroutine")
            .field(&*self.inner)
            .finish()
    }
}

/// The coroutine of a running [`scope`](ScopedCoroutine::scope), as a
/// generator (which keeps the return value for iterating): ended when
/// dropped, or the process aborted.
struct EndsWithScope<I, Y, R>(Generator<Y, R, I>);

impl<I, Y, R> Drop for EndsWithScope<I, Y, R> {
    #[inline]
    fn drop(&mut self) {
        // A body that returned (the common case) has nothing left to end.
        if !self.0.coroutine.is_completed() {
            self.0.coroutine.end_or_abort();
        }
    }
}

/// What the closure of [`ScopedCoroutine::scope`] drives the coroutine
/// with: the resuming half of [`Coroutine`]'s API. It lives only as long as
/// the closure and gives no access to the coroutine itself.
///
/// With no input, it is an [`Iterator`] over the values the body suspends
/// with, ending when the body returns; the return value is kept for
/// [`take_return`](ScopedCoroutineRef::take_return).
pub struct ScopedCoroutineRef<'s, I, Y, R> {
    inner: &'s mut Generator<Y, R, I>,
}

impl<I, Y, R> ScopedCoroutineRef<'_, I, Y, R> {
    /// Runs the body until it next suspends or returns, passing `input`
    /// in, as [`Coroutine::resume_with`] does.
    ///
    /// # Panics
    /// As [`Coroutine::resume_with`]: if the coroutine is completed, and
    /// with the body's payload if it panics.
    #[inline]
    #[track_caller]
    pub fn resume_with(&mut self, input: I) -> CoroutineResult<Y, R> {
        self.inner.coroutine.resume_with(input)
    }

    /// A reborrow, for handing to a function that takes the ref by value
    /// (an iterator adapter, say) and going on afterwards.
    pub fn by_ref(&mut self) -> ScopedCoroutineRef<'_, I, Y, R> {
        ScopedCoroutineRef { inner: self.inner }
    }

    /// Where the coroutine is in its life ([`Coroutine::state`]).
    pub fn state(&self) -> CoroutineState {
        self.inner.coroutine.state()
    }

    /// Whether the body has returned, panicked or been cancelled.
    pub fn is_completed(&self) -> bool {
        self.inner.is_completed()
    }

    /// Cancels the coroutine in place, as [`Coroutine::force_unwind`] does.
    ///
    /// # Panics
    /// As [`Coroutine::force_unwind`].
    pub fn force_unwind(&mut self) {
        self.inner.coroutine.force_unwind();
    }

    /// The most bytes of its stack the coroutine has used
    /// ([`Coroutine::peak_stack_usage`]).
    ///
    /// # Errors
    /// As [`Coroutine::peak_stack_usage`].
    pub fn peak_stack_usage(&self) -> std::io::Result<usize> {
        self.inner.coroutine.peak_stack_usage()
    }

    /// Runs the body one step with `input`, as [`Generator::send`] does:
    /// the value it suspends with next, or `None` once it has returned
    /// (its value kept for [`take_return`](ScopedCoroutineRef::take_return)).
    ///
    /// # Panics
    /// As [`Generator::send`].
    pub fn send(&mut self, input: I) -> Option<Y> {
        self.inner.send(input)
    }

    /// The body's return value, once [`send`](ScopedCoroutineRef::send) or
    /// iterating has ended on it (`None` before, and after it was taken).
    pub fn take_return(&mut self) -> Option<R> {
        self.inner.take_return()
    }
}

impl<Y, R> ScopedCoroutineRef<'_, (), Y, R> {
    /// Runs the body until it next suspends or returns, as
    /// [`Coroutine::resume`] does.
    ///
    /// # Panics
    /// As [`Coroutine::resume`].
    #[inline]
    #[track_caller]
    pub fn resume(&mut self) -> CoroutineResult<Y, R> {
        self.inner.coroutine.resume_with(())
    }
}

impl<Y, R> Iterator for ScopedCoroutineRef<'_, (), Y, R> {
    type Item = Y;

    /// Resumes the body: `Some` with what it suspends with, `None` once
    /// it has returned (keeping its value for `take_return`).
    fn next(&mut self) -> Option<Y> {
        self.inner.send(())
    }
}

impl<I, Y, R> std::fmt::Debug for ScopedCoroutineRef<'_, I, Y, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ScopedCoroutineRef")
            .field(&self.inner)
            .finish()
    }
}

impl Builder {
    /// Builds a [`ScopedCoroutine`] (whose body may borrow) with this
    /// builder's stack and name, as [`ScopedCoroutine::new`].
    ///
    /// ```
    /// let mut total = 0;
    /// sure_coro::Builder::new()
    ///     .stack_size(64 * 1024)
    ///     .build_scoped(|h| {
    ///         total += 1;
    ///         h.suspend();
    ///         total += 1;
    ///     })?
    ///     .scope(|mut co| while co.resume().is_yield() {});
    /// assert_eq!(total, 2);
    /// # Ok::<(), sure_coro::StackError>(())
    /// ```
    ///
    /// # Errors
    /// As [`build`](Builder::build).
    pub fn build_scoped<'a, R: 'a, F>(
        self,
        body: F,
    ) -> Result<ScopedCoroutine<'a, (), (), R>, StackError>
    where
        F: FnOnce(&mut SuspendHandle) -> R + 'a,
    {
        self.build_scoped_with_input(move |handle, ()| body(handle))
    }

    /// Builds a [`ScopedCoroutine`] whose body hands values out, as
    /// [`ScopedCoroutine::yielding`].
    ///
    /// # Errors
    /// As [`build`](Builder::build).
    pub fn build_scoped_yielding<'a, Y: 'a, R: 'a, F>(
        self,
        body: F,
    ) -> Result<ScopedCoroutine<'a, (), Y, R>, StackError>
    where
        F: FnOnce(&mut SuspendHandle<(), Y>) -> R + 'a,
    {
        self.build_scoped_with_input(move |handle, ()| body(handle))
    }

    /// Builds a [`ScopedCoroutine`] whose body takes input, as
    /// [`ScopedCoroutine::with_input`].
    ///
    /// # Errors
    /// As [`build`](Builder::build).
    pub fn build_scoped_with_input<'a, I: 'a, Y: 'a, R: 'a, F>(
        self,
        body: F,
    ) -> Result<ScopedCoroutine<'a, I, Y, R>, StackError>
    where
        F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R + 'a,
    {
        self.build_borrowing(body).map(ScopedCoroutine::from_inner)
    }
}
