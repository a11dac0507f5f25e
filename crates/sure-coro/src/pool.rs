//! The per-thread pool default coroutine stacks come from.
//!
//! Creating and dropping coroutines in a loop makes no system call once the
//! pool is warm: a dropped coroutine's stack goes back to its thread's pool
//! (LIFO, so its touched pages are reused while still in cache), up to
//! [`StackPool::DEFAULT_CAPACITY`] stacks; beyond that, stacks are unmapped.

use std::cell::RefCell;
use std::mem;

use sure_stack::{Stack, StackError, StackPool};

thread_local! {
    static POOL: RefCell<StackPool> = const { RefCell::new(StackPool::with_default_size()) };
}

/// Runs `f` with this thread's pool of default-size coroutine stacks: to
/// change its capacity (how many idle stacks it keeps; each holds on to the
/// pages its coroutine touched), to empty it, or to look at it.
///
/// The pool holds stacks of [`sure_stack::DEFAULT_STACK_SIZE`] bytes, the
/// size [`Coroutine::new`](crate::Coroutine::new) uses. Coroutines built
/// with another [`stack_size`](crate::Builder::stack_size), or on a stack
/// of their own ([`Builder::stack`](crate::Builder::stack)), bypass it.
///
/// `f` gets the pool itself, taken out of the thread-local, not a borrow of
/// the thread-local: `f` may suspend (a coroutine body may call this), and a
/// borrow of a thread-local must not outlive the thread-local, which a
/// suspended closure can. While `f` runs, the thread-local holds an empty
/// stand-in: coroutines built and dropped meanwhile (and a nested call) use
/// that, and the stacks it gathered go back into the pool, up to its
/// capacity, when `f` returns or unwinds. If the thread's locals are
/// destroyed before then, the pool's stacks are freed with it.
///
/// # Panics
/// If called while this thread's locals are being destroyed.
///
/// ```
/// use sure_coro::{Coroutine, with_thread_pool};
///
/// with_thread_pool(|pool| pool.set_capacity(4));
/// for _ in 0..10 {
///     Coroutine::new(|h| h.suspend()).resume();
/// }
/// assert!(with_thread_pool(|pool| pool.len()) <= 4);
/// ```
pub fn with_thread_pool<T>(f: impl FnOnce(&mut StackPool) -> T) -> T {
    let mut lent = Lent(
        POOL.with(|pool| mem::replace(&mut *pool.borrow_mut(), StackPool::with_default_size())),
    );
    f(&mut lent.0)
}

/// The thread's pool while `with_thread_pool` lends it out; goes back into
/// the thread-local when dropped, taking in the stacks the stand-in
/// gathered meanwhile.
struct Lent(StackPool);

impl Drop for Lent {
    fn drop(&mut self) {
        let pool = mem::replace(&mut self.0, StackPool::with_default_size());
        // Fails once the thread's locals are destroyed: the closure, and
        // the pool in it, is then dropped unrun, freeing the stacks. The
        // borrow cannot fail: no user code runs while the pool is borrowed.
        let _ = POOL.try_with(move |slot| {
            let mut slot = slot.borrow_mut();
            let mut stand_in = mem::replace(&mut *slot, pool);
            while let Some(stack) = stand_in.take_idle() {
                slot.give_back(stack);
            }
        });
    }
}

/// A default-size stack from this thread's pool, or a fresh one when the
/// pool is empty or already destroyed (the thread is exiting).
#[inline]
pub(crate) fn take() -> Result<Stack, StackError> {
    match take_idle() {
        Some(stack) => Ok(stack),
        None => Stack::allocate_at_least(sure_stack::DEFAULT_STACK_SIZE),
    }
}

/// An idle stack from this thread's pool, if it has one and can be reached
/// (it is not destroyed): the allocation-free fast path.
#[inline]
pub(crate) fn take_idle() -> Option<Stack> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok()?.take_idle())
        .ok()
        .flatten()
}

/// Returns a stack to this thread's pool. The stack is freed instead when
/// the pool is full or already destroyed (the thread is exiting: `try_with`
/// then drops the closure, and with it the stack, without running it).
#[inline]
pub(crate) fn give_back(stack: Stack) {
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            pool.give_back(stack);
        }
    });
}
