//! The per-thread pools coroutine stacks come from.
//!
//! Creating and dropping coroutines in a loop makes no system call once the
//! pool is warm: a dropped coroutine's stack goes back to its thread's pool
//! (LIFO, so its touched pages are reused while still in cache), and the
//! next coroutine of that size takes it.
//!
//! - Default-size stacks ([`sure_stack::DEFAULT_STACK_SIZE`], what
//!   [`Coroutine::new`](crate::Coroutine::new) and a plain [`Builder`] use)
//!   have a pool of their own, up to [`StackPool::DEFAULT_CAPACITY`] idle
//!   stacks, which [`with_thread_pool`] reaches.
//! - Every other size ([`Builder::stack_size`]) is pooled too, by its usable
//!   size ([`Stack::len`]: the size asked for, rounded up to whole pages), in
//!   a second per-thread set of pools, so only the first coroutine of a size
//!   maps a stack. That set is bounded: it keeps idle stacks of at most
//!   [`MAX_SIZES`] sizes (8), at most [`StackPool::DEFAULT_CAPACITY`] of each
//!   size, and at most [`SIZED_IDLE_BYTES`] (16 MiB) of idle stacks in all,
//!   counted in usable bytes. When a stack is given back that does not fit,
//!   idle stacks of the least recently used sizes (used: taken from or given
//!   back to) are freed, one at a time, until it does; a ninth size frees
//!   the least recently used size's whole pool. A stack is freed instead of
//!   kept when the stacks of its own size alone leave no room for it (a
//!   stack larger than 16 MiB is never kept), or when its size already has
//!   [`StackPool::DEFAULT_CAPACITY`] idle stacks. Unlike the default pool,
//!   this set cannot be reached from outside the crate.
//! - A stack given with [`Builder::stack`] is the caller's: it is freed when
//!   its coroutine is dropped, never pooled.
//!
//! Beyond those bounds, stacks are unmapped. After the thread's locals are
//! destroyed (the thread is exiting), taking a stack maps a fresh one and
//! giving one back frees it.
//!
//! [`Builder`]: crate::Builder
//! [`Builder::stack_size`]: crate::Builder::stack_size
//! [`Builder::stack`]: crate::Builder::stack

use std::cell::{RefCell, UnsafeCell};
use std::io;
use std::mem;

use sure_stack::{DEFAULT_STACK_SIZE, Stack, StackError, StackPool};

thread_local! {
    /// The pool of default-size stacks, reached through [`with_pool`]
    /// only: no `RefCell`, whose flag would cost every create and drop.
    static POOL: ThreadPool = const { ThreadPool(UnsafeCell::new(StackPool::with_default_size())) };

    /// The pools of the other sizes. Never lent out, and borrowed only
    /// inside this module's functions, which run no user code meanwhile
    /// (freeing a stack only unmaps it).
    static SIZED: RefCell<SizedPools> = const { RefCell::new(SizedPools::new()) };
}

/// This thread's pool of default-size stacks (see [`POOL`]).
struct ThreadPool(UnsafeCell<StackPool>);

/// Runs `f` on this thread's pool of default-size stacks, unless the
/// thread's locals are destroyed (or being destroyed): then `f` is dropped
/// unrun, and with it whatever it owns.
///
/// # Safety
/// `f` runs no user code and does not call `with_pool`: nothing but `f`
/// reaches the pool while it runs. Taking, returning and freeing stacks
/// (unmapping them) run none.
#[inline(always)]
unsafe fn with_pool<T>(f: impl FnOnce(&mut StackPool) -> T) -> Option<T> {
    POOL.try_with(|pool| {
        // SAFETY: only `with_pool` reaches the pool, and by its contract no
        // other borrow of it is alive while `f` runs.
        f(unsafe { &mut *pool.0.get() })
    })
    .ok()
}

/// The most sizes other than the default whose idle stacks a thread keeps.
const MAX_SIZES: usize = 8;

/// The most usable bytes of idle stacks of sizes other than the default a
/// thread keeps, all sizes together: 16 MiB (as much address space as a
/// full default pool).
const SIZED_IDLE_BYTES: usize = 16 * 1024 * 1024;

/// Runs `f` with this thread's pool of default-size coroutine stacks: to
/// change its capacity (how many idle stacks it keeps; each holds on to the
/// pages its coroutine touched), to empty it, or to look at it.
///
/// The pool holds stacks of [`sure_stack::DEFAULT_STACK_SIZE`] bytes, the
/// size [`Coroutine::new`](crate::Coroutine::new) uses. Coroutines built
/// with another [`stack_size`](crate::Builder::stack_size) use pools of
/// their own size, which this function does not reach (the thread keeps
/// idle stacks of at most 8 such sizes, 16 MiB of them in all); coroutines
/// on a stack of their own ([`Builder::stack`](crate::Builder::stack)) use
/// no pool.
///
/// `f` gets the pool itself, taken out of the thread-local, not a borrow of
/// the thread-local: `f` may suspend (a coroutine body may call this), and a
/// borrow of a thread-local must not outlive the thread-local, which a
/// suspended closure can. While `f` runs, the thread-local holds an empty
/// stand-in: coroutines built and dropped meanwhile (and a nested call) use
/// that, and the stacks it gathered go back into the pool, up to its
/// capacity, when `f` returns or unwinds. If the thread's locals are
/// destroyed before then, the pool's stacks are freed with it. A pool of
/// another stack size that `f` puts in its place is dropped when `f` ends,
/// and the stand-in kept: the pool's stacks must be the size coroutines ask
/// for.
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
    // SAFETY: replacing the pool runs no user code (`f` runs after).
    let pool = unsafe { with_pool(|pool| mem::replace(pool, StackPool::with_default_size())) };
    let mut lent =
        Lent(pool.expect("with_thread_pool called while this thread's locals are destroyed"));
    f(&mut lent.0)
}

/// The high-water marks of this thread's pools: for each stack size it
/// pools (the default first, then the others, least recently used first), the size and
/// the most bytes any of its idle stacks has had in use
/// ([`StackPool::peak_usage`]). A pooled stack keeps the pages its
/// coroutines touched, so after a representative run this is the deepest
/// the coroutines of each size went, the figure to size them by. Sizes
/// with no idle stack are left out; a pool lent out by
/// [`with_thread_pool`] at the time is not seen.
///
/// ```
/// use sure_coro::{Builder, pooled_stack_usage, remaining_stack};
///
/// let mut co = Builder::new()
///     .stack_size(512 * 1024)
///     .build(|_h| remaining_stack().unwrap())
///     .unwrap();
/// let left = co.resume().into_return().unwrap();
/// drop(co); // its stack goes back to the pool of its size
/// let usage = pooled_stack_usage()?;
/// let (_, peak) = usage.iter().find(|(size, _)| *size == 512 * 1024).unwrap();
/// assert!(*peak >= 512 * 1024 - left);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// As [`StackPool::peak_usage`].
pub fn pooled_stack_usage() -> io::Result<Vec<(usize, usize)>> {
    // A pool that is borrowed (lent out, or in use by this module) or
    // already destroyed is skipped, as documented.
    // SAFETY: measuring the pool's stacks runs no user code.
    let default = unsafe { with_pool(|pool| usage_of(pool)) }.flatten();
    let sized = SIZED
        .try_with(|pools| {
            pools
                .try_borrow()
                .ok()
                .map(|pools| pools.pools.iter().filter_map(usage_of).collect::<Vec<_>>())
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    default.into_iter().chain(sized).collect()
}

/// A pool's size and high-water mark, if it holds an idle stack.
fn usage_of(pool: &StackPool) -> Option<io::Result<(usize, usize)>> {
    (!pool.is_empty()).then(|| Ok((pool.stack_size(), pool.peak_usage()?)))
}

/// The thread's pool while `with_thread_pool` lends it out; goes back into
/// the thread-local when dropped, taking in the stacks the stand-in
/// gathered meanwhile.
struct Lent(StackPool);

impl Drop for Lent {
    fn drop(&mut self) {
        let pool = mem::replace(&mut self.0, StackPool::with_default_size());
        if pool.stack_size() != DEFAULT_STACK_SIZE {
            // `f` put a pool of another size in its place: coroutines must
            // get the size they ask for, so that one is dropped (freeing its
            // stacks) and the stand-in stays.
            return;
        }
        // Fails once the thread's locals are destroyed: the closure, and
        // the pool in it, is then dropped unrun, freeing the stacks.
        // SAFETY: moving stacks between pools, and freeing those that do
        // not fit, runs no user code.
        let _ = unsafe {
            with_pool(move |slot| {
                let mut stand_in = mem::replace(slot, pool);
                while let Some(stack) = stand_in.take_idle() {
                    slot.give_back(stack);
                }
            })
        };
    }
}

/// A default-size stack from this thread's pool, or a fresh one when the
/// pool is empty or already destroyed (the thread is exiting).
#[inline]
pub(crate) fn take() -> Result<Stack, StackError> {
    match take_idle() {
        Some(stack) => Ok(stack),
        None => Stack::allocate_at_least(DEFAULT_STACK_SIZE),
    }
}

/// A default-size stack for a constructor that panics when none can be
/// had (`constructor`, whose fallible form is `builder`): from the pool
/// inline, mapped out of line.
#[inline(always)]
#[track_caller]
pub(crate) fn take_or_panic(constructor: &'static str, builder: &'static str) -> Stack {
    match take_idle() {
        Some(stack) => stack,
        None => map_or_panic(constructor, builder),
    }
}

/// [`take_or_panic`]'s way when the pool has no idle stack.
#[cold]
#[inline(never)]
#[track_caller]
fn map_or_panic(constructor: &'static str, builder: &'static str) -> Stack {
    Stack::allocate_at_least(DEFAULT_STACK_SIZE).unwrap_or_else(|error| {
        panic!(
            "{constructor} could not get a stack: {error} \
             ({builder} returns this error instead of panicking)"
        )
    })
}

/// An idle stack from this thread's pool, if it has one and can be reached
/// (it is not destroyed): the allocation-free fast path.
#[inline]
fn take_idle() -> Option<Stack> {
    // SAFETY: taking a stack runs no user code.
    unsafe { with_pool(StackPool::take_idle) }.flatten()
}

/// A stack of at least `bytes` usable bytes from the pool of its rounded
/// size (the default pool for [`DEFAULT_STACK_SIZE`]), or a fresh one when
/// that pool is empty or already destroyed. Give it back with
/// [`give_back`].
///
/// # Errors
/// Those of [`Stack::allocate_at_least`]: an invalid size, or no stack to
/// be had.
pub(crate) fn take_sized(bytes: usize) -> Result<Stack, StackError> {
    // The rounding (and the validation) `Stack::allocate_at_least` does; an
    // empty `StackPool` allocates nothing.
    let size = StackPool::new(bytes)?.stack_size();
    if size == DEFAULT_STACK_SIZE {
        return take();
    }
    let idle = SIZED
        .try_with(|pools| pools.try_borrow_mut().ok()?.take_idle(size))
        .ok()
        .flatten();
    match idle {
        Some(stack) => Ok(stack),
        None => Stack::allocate_at_least(size),
    }
}

/// Returns a stack to this thread's pool of its size. The stack is freed
/// instead when that pool is full or already destroyed (the thread is
/// exiting: `try_with` then drops the closure, and with it the stack,
/// without running it).
#[inline]
pub(crate) fn give_back(stack: Stack) {
    // The one test the default size pays for the other sizes' pools.
    if stack.len() != DEFAULT_STACK_SIZE {
        give_back_sized(stack);
        return;
    }
    // SAFETY: returning a stack, or freeing it when the pool is full,
    // runs no user code.
    let _ = unsafe { with_pool(|pool| pool.give_back(stack)) };
}

/// [`give_back`] for a size other than the default, out of the default's
/// way.
#[cold]
#[inline(never)]
fn give_back_sized(stack: Stack) {
    let _ = SIZED.try_with(|pools| {
        if let Ok(mut pools) = pools.try_borrow_mut() {
            pools.give_back(stack);
        }
    });
}

/// Idle stacks of sizes other than the default, one [`StackPool`] per
/// size, within [`MAX_SIZES`] and [`SIZED_IDLE_BYTES`].
struct SizedPools {
    /// One pool per size, the least recently used first. A size keeps its
    /// place while its pool is empty (its stacks are in use), until
    /// evicted.
    pools: Vec<StackPool>,
}

impl SizedPools {
    /// No pools; allocates nothing.
    const fn new() -> SizedPools {
        SizedPools { pools: Vec::new() }
    }

    /// Moves the pool of `size` to the most recently used end, if there is
    /// one, and returns it.
    fn touch(&mut self, size: usize) -> Option<&mut StackPool> {
        let at = self.pools.iter().position(|p| p.stack_size() == size)?;
        self.pools[at..].rotate_left(1);
        self.pools.last_mut()
    }

    /// The most recently returned idle stack of `size` usable bytes.
    fn take_idle(&mut self, size: usize) -> Option<Stack> {
        self.touch(size)?.take_idle()
    }

    /// The usable bytes of all the idle stacks: a sum over at most
    /// `MAX_SIZES` pools, counted when a stack is given back.
    fn idle_bytes(&self) -> usize {
        self.pools
            .iter()
            .map(|pool| pool.len() * pool.stack_size())
            .sum()
    }

    /// Keeps `stack` for reuse if the bounds allow it, freeing the least
    /// recently used sizes' idle stacks to make room; frees it otherwise.
    fn give_back(&mut self, stack: Stack) {
        let size = stack.len();
        if size > SIZED_IDLE_BYTES {
            return;
        }
        if self.touch(size).is_none() {
            if self.pools.len() == MAX_SIZES {
                drop(self.pools.remove(0));
            }
            // Cannot fail: `size` is a stack's length, already valid and
            // rounded, so the pool keeps stacks of exactly this size.
            let Ok(pool) = StackPool::new(size) else {
                return;
            };
            self.pools.push(pool);
        }
        // The pool of `size` is now the last one.
        if self
            .pools
            .last()
            .is_none_or(|pool| pool.len() >= pool.capacity())
        {
            return;
        }
        // Free the other sizes' idle stacks, least recently used first,
        // until this one fits.
        while self.idle_bytes() + size > SIZED_IDLE_BYTES {
            let [oldest, .., _] = &mut self.pools[..] else {
                // Only this size is left, and its stacks fill the budget.
                return;
            };
            if oldest.take_idle().is_none() {
                // A size with no idle stack gives up its place.
                drop(self.pools.remove(0));
            }
        }
        if let Some(pool) = self.pools.last_mut() {
            pool.give_back(stack);
        }
    }
}
