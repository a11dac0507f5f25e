//! [`Builder`]: coroutines with a chosen stack, returning errors instead of
//! panicking.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use sure_stack::{DEFAULT_STACK_SIZE, LABEL_BYTES, Stack, StackError};

use crate::coroutine::Coroutine;
use crate::handle::SuspendHandle;
use crate::pool;
use crate::root::{Lease, Root, Tenancy};

/// Configures and builds a [`Coroutine`], in the manner of
/// [`std::thread::Builder`]: where [`Coroutine::new`] panics when no stack
/// can be had, [`build`](Builder::build) returns the error.
///
/// ```
/// use sure_coro::Builder;
///
/// let mut co = Builder::new()
///     .stack_size(64 * 1024)
///     .build_yielding(|h| {
///         h.suspend_with(1);
///         2
///     })
///     .expect("a 64 KiB stack");
/// assert_eq!(co.resume().into_yield(), Some(1));
/// assert_eq!(co.resume().into_return(), Some(2));
/// ```
#[derive(Debug, Default)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    stack_size: Option<usize>,
    stack: Option<Stack>,
    name: Option<String>,
}

impl Builder {
    /// A builder for a coroutine on a default-size
    /// ([`sure_stack::DEFAULT_STACK_SIZE`], 256 KiB) stack from this
    /// thread's pool.
    #[inline]
    pub fn new() -> Self {
        Builder::default()
    }

    /// Asks for a stack of at least `bytes` usable bytes (rounded up to
    /// whole pages, plus a guard page). Stacks of every size are pooled per
    /// thread: the coroutine takes an idle stack of its rounded size from its
    /// thread's pool of that size when there is one, and its drop gives the
    /// stack back there (the thread keeps idle stacks of at most 8 sizes
    /// other than the default, 16 MiB of them in all), so only the first
    /// coroutine of a size maps a stack.
    ///
    /// ```
    /// let co = sure_coro::Builder::new().stack_size(1024 * 1024).build(|h| h.suspend()).unwrap();
    /// assert!(co.stack_size() >= 1024 * 1024);
    /// ```
    #[inline]
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Names the coroutine, as [`std::thread::Builder::name`] names a
    /// thread: [`Coroutine::name`] returns it, `Debug` shows it, and so does
    /// the message of a stack overflow in its body.
    ///
    /// ```
    /// let co = sure_coro::Builder::new().name("parser").build(|h| h.suspend()).unwrap();
    /// assert_eq!(co.name(), Some("parser"));
    /// assert!(format!("{co:?}").contains("parser"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs the coroutine on `stack`, a stack the caller already has (for
    /// example from [`Coroutine::into_stack`] or a [`sure_stack::StackPool`]
    /// of its own). Overrides [`stack_size`](Builder::stack_size). The
    /// stack is freed when the coroutine is dropped, unless taken back with
    /// `into_stack`.
    ///
    /// ```
    /// use sure_coro::Stack;
    ///
    /// let stack = Stack::allocate_at_least(64 * 1024).unwrap();
    /// let mut co = sure_coro::Builder::new().stack(stack).build_yielding(|h| h.suspend_with(7)).unwrap();
    /// assert_eq!(co.resume().into_yield(), Some(7));
    /// ```
    #[inline]
    pub fn stack(mut self, stack: Stack) -> Self {
        self.stack = Some(stack);
        self
    }

    /// Builds a coroutine running `body`, as [`Coroutine::new`] does: it
    /// suspends handing nothing out, and its resumes pass `()`.
    ///
    /// ```
    /// let mut co = sure_coro::Builder::new().build(|_h| 42).unwrap();
    /// assert_eq!(co.resume().into_return(), Some(42));
    /// ```
    ///
    /// # Errors
    /// The [`StackError`] of allocating the stack: an invalid
    /// [`stack_size`](Builder::stack_size), or the process out of memory or
    /// of memory mappings.
    ///
    /// # Panics
    /// If the `Return` value is too large to fit at the top of the stack
    /// (box such values).
    #[inline]
    pub fn build<R, F>(self, body: F) -> Result<Coroutine<(), (), R>, StackError>
    where
        R: 'static,
        F: FnOnce(&mut SuspendHandle) -> R + 'static,
    {
        self.build_with_input(move |handle, ()| body(handle))
    }

    /// Builds a coroutine whose body hands a value out each time it
    /// suspends, as [`Coroutine::yielding`] does.
    ///
    /// ```
    /// let mut co = sure_coro::Builder::new().build_yielding(|h| h.suspend_with('x')).unwrap();
    /// assert_eq!(co.resume().into_yield(), Some('x'));
    /// ```
    ///
    /// # Errors
    /// As [`build`](Builder::build).
    ///
    /// # Panics
    /// If the `Yield` and `Return` values are too large to fit at the top of
    /// the stack (box such values).
    #[inline]
    pub fn build_yielding<Y, R, F>(self, body: F) -> Result<Coroutine<(), Y, R>, StackError>
    where
        Y: 'static,
        R: 'static,
        F: FnOnce(&mut SuspendHandle<(), Y>) -> R + 'static,
    {
        self.build_with_input(move |handle, ()| body(handle))
    }

    /// Builds a coroutine whose body also receives the first resume's value
    /// (see [`Coroutine::with_input`]).
    ///
    /// # Errors
    /// As [`build`](Builder::build).
    ///
    /// # Panics
    /// If the `Input`, `Yield` and `Return` values are too large to fit at
    /// the top of the stack (box such values).
    #[inline]
    pub fn build_with_input<I, Y, R, F>(self, body: F) -> Result<Coroutine<I, Y, R>, StackError>
    where
        I: 'static,
        Y: 'static,
        R: 'static,
        F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R + 'static,
    {
        self.build_borrowing(body)
    }

    /// [`build_with_input`](Builder::build_with_input) for a body that may
    /// borrow: the coroutine must stay inside a `ScopedCoroutine`, which
    /// ends it before anything it borrows goes away.
    #[inline]
    pub(crate) fn build_borrowing<I, Y, R, F>(
        mut self,
        body: F,
    ) -> Result<Coroutine<I, Y, R>, StackError>
    where
        F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R,
    {
        let name = self.name.take().map(String::into_boxed_str);
        let (stack, lease) = self.into_stack()?;
        Ok(assemble(stack, lease, name, body))
    }

    /// The stack to build on, and where it goes when the coroutine is
    /// dropped: a stack of the caller's is freed, one taken from a pool (or
    /// mapped because the pool of its size was empty) goes back to the pool
    /// of its size. Always inlined: with more than one caller the
    /// compiler kept it out of line, and a sized create paid a call and its
    /// result's trip through memory (19 ns against 14 for the default).
    #[inline(always)]
    fn into_stack(self) -> Result<(Stack, Lease), StackError> {
        match (self.stack, self.stack_size) {
            (Some(stack), _) => {
                // A pooled or mapped stack prepares the thread (`pool::map`).
                crate::thread_exit::prepare();
                Ok((stack, Lease::Owned))
            }
            (None, None | Some(DEFAULT_STACK_SIZE)) => Ok((pool::take()?, Lease::Default)),
            (None, Some(bytes)) => Ok((pool::take_sized(bytes)?, Lease::Pooled)),
        }
    }
}

/// The guard to set a context up with on `stack`
/// (`ExecutionContext::setup_guarded`): Windows' thread environment block
/// covers it; elsewhere it is ignored, and not even computed.
#[inline(always)]
pub(crate) fn context_guard(stack: &Stack) -> usize {
    if cfg!(windows) {
        stack.guard().len()
    } else {
        0
    }
}

/// Puts `body` on `stack`, which goes where `lease` says once the coroutine
/// is done with it (named, if `name` is given), and wraps both in a
/// coroutine: the one place every constructor ends up.
#[inline]
pub(crate) fn assemble<I, Y, R, F>(
    stack: Stack,
    lease: Lease,
    name: Option<Box<str>>,
    body: F,
) -> Coroutine<I, Y, R>
where
    F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R,
{
    // A body too large to sit comfortably at the top of the stack goes to
    // the heap; the test is constant for each body type but the smallest
    // stack, so it folds away in the common case. "Comfortably" is a 64th
    // of the stack: starting the body moves it by value on this stack
    // about a dozen times in an unoptimised build (out of the root, into
    // `catch_unwind`, through each `FnOnce` call). At a quarter, a 24 KB
    // closure overflowed a 256 KiB stack in a debug build.
    if Root::<F, I, Y, R>::FOOTPRINT <= sure_stack::MIN_STACK_SIZE / 64
        || Root::<F, I, Y, R>::FOOTPRINT <= stack.len() / 64
    {
        install(stack, lease, name, body)
    } else {
        install(stack, lease, name, Box::new(body))
    }
}

/// Writes the root for `body` on `stack` and wraps both in a coroutine.
#[inline]
fn install<I, Y, R, F>(
    stack: Stack,
    lease: Lease,
    name: Option<Box<str>>,
    body: F,
) -> Coroutine<I, Y, R>
where
    F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R,
{
    // Boxing the body does not shrink the rest of the root: the Input,
    // Yield and Return slots can be larger than any stack. Without this
    // check the root would be written below the stack.
    let needed = LABEL_BYTES + Root::<F, I, Y, R>::FOOTPRINT + sure_context::MIN_SETUP_BYTES;
    assert!(
        // The first test is implied by the second (no stack is smaller than
        // MIN_STACK_SIZE) but is a constant: it folds the check away for
        // every ordinary body.
        needed <= sure_stack::MIN_STACK_SIZE || needed <= stack.len(),
        "a coroutine needs {needed} bytes at the top of its stack for its Input, Yield and \
         Return values, more than its {}-byte stack holds; box large values or use a larger \
         stack",
        stack.len(),
    );
    let named = name.is_some();
    let region = stack.region();
    // The top LABEL_BYTES are the name's, named or not: a stack keeps its
    // layout whoever ran on it before.
    let below_label =
        NonNull::slice_from_raw_parts(region.cast::<u8>(), region.len() - LABEL_BYTES);
    let guard = context_guard(&stack);
    if let Some(name) = name {
        // SAFETY: the stack is ours and unused; it moves into the root,
        // whose coroutine clears the name (`set_name`'s contract) when it
        // releases the stack.
        unsafe { stack.set_name(name) };
    }
    let tenancy = Tenancy {
        stack: ManuallyDrop::new(stack),
        lease: if named { lease.named() } else { lease },
    };
    // SAFETY: the region is the stack's, unused, and the stack moves into
    // the root, which the coroutine keeps for as long as the body may run;
    // it is at least MIN_STACK_SIZE long, and the assert above leaves the
    // label and the root at its top (the root below the label, as
    // `Root::install` requires), and at least MIN_SETUP_BYTES below them.
    let header = unsafe { Root::install(below_label, guard, tenancy, body) };
    Coroutine::from_header(header)
}
