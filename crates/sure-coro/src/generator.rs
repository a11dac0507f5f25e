//! [`Generator`]: a coroutine as an iterator over the values it suspends
//! with.

use std::iter::FusedIterator;

use crate::coroutine::{Coroutine, CoroutineResult};
use crate::handle::SuspendHandle;

/// An [`Iterator`] over the values a coroutine body suspends with: each
/// `next` resumes the body until its next
/// [`suspend_with`](SuspendHandle::suspend_with), and the iterator ends
/// when the body returns.
///
/// Because the body has a real stack, it can yield from deep inside
/// recursion, which a hand-written iterator would have to turn into an
/// explicit stack:
///
/// ```
/// use sure_coro::{Generator, SuspendHandle};
///
/// enum Tree {
///     Leaf,
///     Node(Box<Tree>, u32, Box<Tree>),
/// }
///
/// fn walk(tree: &Tree, h: &mut SuspendHandle<'_, (), u32>) {
///     if let Tree::Node(left, value, right) = tree {
///         walk(left, h);
///         h.suspend_with(*value);
///         walk(right, h);
///     }
/// }
///
/// let node = |l, v, r| Tree::Node(Box::new(l), v, Box::new(r));
/// let tree = node(node(Tree::Leaf, 1, Tree::Leaf), 2, node(Tree::Leaf, 3, Tree::Leaf));
/// let in_order: Vec<u32> = Generator::new(move |h| walk(&tree, h)).collect();
/// assert_eq!(in_order, [1, 2, 3]);
/// ```
///
/// A panic in the body comes out of `next`. Dropping a generator part-way
/// drops everything on its stack, as dropping a [`Coroutine`] does.
///
/// # Returning a value, and taking input
///
/// The body may return a value, kept for [`take_return`](Generator::take_return)
/// once the iteration has ended: a `Result`, say, so that the body can use
/// `?`. A generator built [`with_input`](Generator::with_input) is driven by
/// [`send`](Generator::send) instead of `next`, each call passing a value in
/// (a push parser fed by a lexer, for example).
///
/// ```
/// use sure_coro::Generator;
///
/// // Yields the numbers in a line; stops at the first word that is not one.
/// let mut numbers = Generator::new(|h| -> Result<(), std::num::ParseIntError> {
///     for word in "1 2 x 4".split(' ') {
///         h.suspend_with(word.parse::<u32>()?);
///     }
///     Ok(())
/// });
/// assert_eq!(numbers.by_ref().collect::<Vec<_>>(), [1, 2]);
/// assert!(numbers.is_completed());
/// assert!(numbers.take_return().unwrap().is_err());
/// ```
pub struct Generator<Yield, Return = (), Input = ()> {
    pub(crate) coroutine: Coroutine<Input, Yield, Return>,
    /// The body's return value, once it has returned and until taken.
    returned: Option<Return>,
}

impl<Y, R> Generator<Y, R> {
    /// A generator running `body` on a default-size pooled stack.
    ///
    /// # Panics
    /// If no stack can be had; build the coroutine with
    /// [`Builder::build_yielding`](crate::Builder::build_yielding) and
    /// convert it with `Generator::from` to get the error instead.
    ///
    /// ```
    /// let fibonacci = sure_coro::Generator::new(|h| {
    ///     let (mut a, mut b) = (0u64, 1u64);
    ///     loop {
    ///         h.suspend_with(a);
    ///         (a, b) = (b, a + b);
    ///     }
    /// });
    /// let first: Vec<u64> = fibonacci.take(8).collect();
    /// assert_eq!(first, [0, 1, 1, 2, 3, 5, 8, 13]);
    /// ```
    pub fn new<F>(body: F) -> Self
    where
        Y: 'static,
        R: 'static,
        F: FnOnce(&mut SuspendHandle<'_, (), Y>) -> R + 'static,
    {
        Generator::from(Coroutine::yielding(body))
    }
}

impl<Y, R, I> Generator<Y, R, I> {
    /// A generator whose body receives a value with every step: the first
    /// [`send`](Generator::send)'s as its second argument, each later one
    /// as the return value of the suspend it waits in.
    ///
    /// ```
    /// use sure_coro::Generator;
    ///
    /// // A running maximum of the values sent in.
    /// let mut max = Generator::with_input(|h, mut x: i32| {
    ///     let mut best = x;
    ///     loop {
    ///         best = best.max(x);
    ///         x = h.suspend_with(best);
    ///     }
    /// });
    /// # let _: &Generator<i32, (), i32> = &max;
    /// assert_eq!(max.send(3), Some(3));
    /// assert_eq!(max.send(1), Some(3));
    /// assert_eq!(max.send(7), Some(7));
    /// ```
    ///
    /// # Panics
    /// If no stack can be had, as [`Generator::new`].
    pub fn with_input<F>(body: F) -> Self
    where
        I: 'static,
        Y: 'static,
        R: 'static,
        F: FnOnce(&mut SuspendHandle<'_, I, Y>, I) -> R + 'static,
    {
        Generator::from(Coroutine::with_input(body))
    }

    /// Runs the body one step with `input`: the value it suspends with
    /// next, or `None` once it has returned (its value is then kept for
    /// [`take_return`](Generator::take_return)), and on every call after.
    ///
    /// # Panics
    /// With the body's payload if the body panics.
    pub fn send(&mut self, input: I) -> Option<Y> {
        if self.coroutine.is_completed() {
            return None;
        }
        match self.coroutine.resume_with(input) {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(value) => {
                self.returned = Some(value);
                None
            }
        }
    }

    /// Whether the body has returned (or panicked): no more values come.
    pub fn is_completed(&self) -> bool {
        self.coroutine.is_completed()
    }

    /// The body's return value, once it has returned; `None` before, after
    /// it was taken, or if the body panicked.
    pub fn take_return(&mut self) -> Option<R> {
        self.returned.take()
    }
}

impl<Y, R, I> From<Coroutine<I, Y, R>> for Generator<Y, R, I> {
    /// Iterates over what `coroutine` suspends with, from where it is now.
    ///
    /// ```
    /// use sure_coro::{Builder, Generator};
    ///
    /// let co = Builder::new().stack_size(64 * 1024).build_yielding(|h| h.suspend_with("hi")).unwrap();
    /// assert_eq!(Generator::from(co).collect::<Vec<_>>(), ["hi"]);
    /// ```
    fn from(coroutine: Coroutine<I, Y, R>) -> Self {
        Generator {
            coroutine,
            returned: None,
        }
    }
}

impl<Y, R> Iterator for Generator<Y, R> {
    type Item = Y;

    #[inline]
    fn next(&mut self) -> Option<Y> {
        self.send(())
    }
}

impl<Y, R> FusedIterator for Generator<Y, R> {}

impl<Y, R, I> std::fmt::Debug for Generator<Y, R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("coroutine", &self.coroutine)
            .field("returned", &self.returned.is_some())
            .finish()
    }
}
