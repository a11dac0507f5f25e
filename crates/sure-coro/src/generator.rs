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
/// fn walk(tree: &Tree, h: &mut SuspendHandle<(), u32>) {
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
pub struct Generator<Yield> {
    coroutine: Coroutine<(), Yield, ()>,
}

impl<Y> Generator<Y> {
    /// A generator running `body` on a default-size pooled stack.
    ///
    /// # Panics
    /// If no stack can be had; build the coroutine with
    /// [`Builder`](crate::Builder) and convert it with `Generator::from` to
    /// get the error instead.
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
        F: FnOnce(&mut SuspendHandle<(), Y>) + 'static,
    {
        Generator {
            coroutine: Coroutine::yielding(body),
        }
    }
}

impl<Y> From<Coroutine<(), Y, ()>> for Generator<Y> {
    /// Iterates over what `coroutine` suspends with, from where it is now.
    ///
    /// ```
    /// use sure_coro::{Builder, Generator};
    ///
    /// let co = Builder::new().stack_size(64 * 1024).build_yielding(|h| h.suspend_with("hi")).unwrap();
    /// assert_eq!(Generator::from(co).collect::<Vec<_>>(), ["hi"]);
    /// ```
    fn from(coroutine: Coroutine<(), Y, ()>) -> Self {
        Generator { coroutine }
    }
}

impl<Y> Iterator for Generator<Y> {
    type Item = Y;

    #[inline]
    fn next(&mut self) -> Option<Y> {
        if self.coroutine.is_completed() {
            return None;
        }
        match self.coroutine.resume() {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(()) => None,
        }
    }
}

impl<Y> FusedIterator for Generator<Y> {}

impl<Y> std::fmt::Debug for Generator<Y> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("coroutine", &self.coroutine)
            .finish()
    }
}
