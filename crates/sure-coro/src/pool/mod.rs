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
//! Within those bounds, the newest idle stack of the default size, and of
//! the other size used last, waits in a slot of its own in front of its
//! pool (`hot`), so that a loop that creates and drops coroutines takes and
//! gives back its stack with one load and one store, counting nothing.
//!
//! Beyond those bounds, stacks are unmapped. At thread exit the idle
//! stacks are freed; after that (a coroutine dropped by a later
//! thread-local destructor), taking a stack maps a fresh one and giving
//! one back frees it.
//!
//! The pools are one thread-local without a destructor, so reaching it is
//! a plain thread-relative access: no "is it initialised, is it destroyed"
//! test on every create and drop. What frees the stacks at thread exit is
//! a second thread-local, [`Closer`], registered the first time a stack is
//! given back (or a [`with_thread_pool`] call ends), unless the thread is
//! already exiting: then nothing is kept. Where std keeps thread-locals in
//! system TLS slots (the Windows gnu targets), it frees even the pools'
//! slot at thread exit and makes a fresh, unopened one if a later
//! destructor gives a stack back: that one finds the thread marked as
//! exiting, so the stack is freed.
//!
//! [`Builder`]: crate::Builder
//! [`Builder::stack_size`]: crate::Builder::stack_size
//! [`Builder::stack`]: crate::Builder::stack

mod hot;
mod sized;

use std::cell::{Cell, UnsafeCell};
use std::io;
use std::mem::{self, ManuallyDrop};

use sure_stack::{DEFAULT_STACK_SIZE, Stack, StackError, StackPool};

use hot::HotSlot;
use sized::SizedPools;

thread_local! {
    /// This thread's pools, reached through [`with_pools`] only: no
    /// `RefCell`, whose flag would cost every create and drop. The pools
    /// themselves are borrowed only through [`with_pool`], [`with_sized`]
    /// and `ThreadPools::with_default`, whose contracts keep those borrows
    /// apart.
    static POOLS: ThreadPools = const { ThreadPools::new() };

    /// Frees the idle stacks at thread exit.
    static CLOSER: Closer = const { Closer };
}

/// This thread's pools. Nothing here has a destructor (the pools are
/// `ManuallyDrop`), so std gives the thread-local none either, and reaching
/// it tests nothing; [`Closer`] frees the stacks instead.
struct ThreadPools {
    /// The newest idle default-size stack, in front of `default`; off
    /// while the pools are not open or `default` keeps nothing. Together
    /// they keep at most `default`'s capacity: while the slot is on, the
    /// pool holds at most `capacity - 1`, so a stack given back always
    /// fits into an empty slot without a count to check.
    hot: HotSlot,
    /// The pool of default-size stacks.
    default: UnsafeCell<ManuallyDrop<StackPool>>,
    /// The pools of the other sizes.
    sized: UnsafeCell<ManuallyDrop<SizedPools>>,
    /// Whether stacks given back may be kept.
    state: Cell<State>,
}

/// Whether a thread keeps the stacks given back to its pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing kept yet, and no [`Closer`] registered to free what would be.
    Unopened,
    /// The [`Closer`] is registered: stacks given back are kept.
    Open,
    /// The [`Closer`] has freed the idle stacks (the thread is exiting):
    /// stacks given back are freed.
    Closed,
}

impl ThreadPools {
    const fn new() -> ThreadPools {
        ThreadPools {
            hot: HotSlot::off(),
            default: UnsafeCell::new(ManuallyDrop::new(StackPool::with_default_size())),
            sized: UnsafeCell::new(ManuallyDrop::new(SizedPools::new())),
            state: Cell::new(State::Unopened),
        }
    }

    /// Lets the pools keep stacks from now on, unless the thread is
    /// exiting; returns whether they may.
    ///
    /// It prepares the thread first (see [`map`]), so a pool holds a stack
    /// only on a prepared thread, and the exit watch is registered before
    /// the closer: thread-local destructors run in the reverse order of
    /// their registration, so the closer runs first, and an exiting thread's
    /// pools are already closed (a create during the exit maps its stack,
    /// which prepares the thread again).
    fn open(&self) -> bool {
        if self.state.get() == State::Unopened {
            crate::thread_exit::prepare();
            // Registering the closer fails only once it has run.
            let open = !crate::thread_exit::is_exiting() && CLOSER.try_with(|_| ()).is_ok();
            self.state
                .set(if open { State::Open } else { State::Closed });
            self.settle_hot();
        }
        self.state.get() == State::Open
    }

    /// Runs `f` on the pool of default-size stacks.
    ///
    /// # Safety
    /// As [`with_pool`].
    #[inline(always)]
    unsafe fn with_default<T>(&self, f: impl FnOnce(&mut StackPool) -> T) -> T {
        // SAFETY: only this reaches the pool (beside `Closer`, which runs
        // between other code), and by its contract no other borrow of it is
        // alive while `f` runs.
        f(unsafe { &mut *self.default.get() })
    }

    /// The hot slot's stack.
    #[inline(always)]
    fn take_hot(&self) -> Option<Stack> {
        // SAFETY: only default-size stacks go into this slot
        // (`give_back_default`'s and the default pool's, in `settle_hot`).
        unsafe { self.hot.take(DEFAULT_STACK_SIZE) }
    }

    /// Moves the hot slot's stack into the default pool in place, so that
    /// the pool holds every idle default-size stack: to lend the pool out,
    /// or to measure it. [`settle_hot`](ThreadPools::settle_hot) takes the
    /// newest back.
    fn lend_hot(&self) {
        if let Some(stack) = self.take_hot() {
            // SAFETY: returning a stack runs no user code.
            unsafe { self.with_default(|pool| pool.give_back(stack)) };
        }
    }

    /// Turns the hot slot on if the pools are open and the default pool in
    /// place keeps stacks (off otherwise), and moves the pool's newest
    /// stack into it: that leaves the pool at most `capacity - 1` (it never
    /// holds more than its capacity), room for the slot's next stack.
    fn settle_hot(&self) {
        self.lend_hot();
        // SAFETY: moving a stack out of the pool runs no user code.
        unsafe {
            self.with_default(|pool| {
                let on = self.state.get() == State::Open && pool.capacity() > 0;
                self.hot.turn(on);
                if on && let Some(stack) = pool.take_idle() {
                    self.hot.put(stack);
                }
            });
        }
    }
}

/// A thread-local whose destructor frees the thread's idle stacks; it is
/// registered (by its first use, [`ThreadPools::open`]) before the pools
/// keep any.
struct Closer;

impl Drop for Closer {
    fn drop(&mut self) {
        with_pools(|pools| {
            pools.state.set(State::Closed);
            // Off, and its stack into the pool, freed below.
            pools.settle_hot();
            // SAFETY: a thread-local destructor runs between other code,
            // not inside `with_pool` or `with_sized`, so nothing borrows
            // the pools; each pool is replaced by an empty one, and the
            // borrow ends, before the old one is dropped (freeing stacks,
            // which runs no user code, the allocator aside), so the
            // thread-local stays valid for later uses.
            unsafe {
                drop(mem::replace(
                    &mut **pools.default.get(),
                    StackPool::with_default_size(),
                ));
                drop(mem::replace(&mut **pools.sized.get(), SizedPools::new()));
            }
        });
    }
}

/// Runs `f` on this thread's pools.
#[inline(always)]
fn with_pools<T>(f: impl FnOnce(&ThreadPools) -> T) -> T {
    // `try_with`, not `with`, which the compiler did not inline into
    // `give_back` (a call and 17 instructions more per drop). It fails only
    // while std destroys the thread-local: never, for one without a
    // destructor, unless std keeps it in a system TLS slot (Windows gnu),
    // whose destruction frees the slot and runs none of this crate's code.
    POOLS.try_with(f).unwrap_or_else(|_| {
        unreachable!("the pools' thread-local has no destructor that could reach it")
    })
}

/// Runs `f` on this thread's pool of default-size stacks.
///
/// # Safety
/// `f` runs no user code and does not reach the pool itself (through
/// `with_pool`, `ThreadPools::with_default` or what calls it: `open`,
/// `lend_hot`, `settle_hot`): nothing but `f` reaches the pool while it
/// runs. Taking, returning and freeing stacks
/// (unmapping them) run none, the global allocator aside (freeing a stack
/// frees a node of sure-stack's registry): an allocator that builds or
/// drops coroutines is not supported.
#[inline(always)]
unsafe fn with_pool<T>(f: impl FnOnce(&mut StackPool) -> T) -> T {
    // SAFETY: by this function's contract.
    with_pools(|pools| unsafe { pools.with_default(f) })
}

/// Runs `f` on this thread's pools of the other sizes.
///
/// # Safety
/// As [`with_pool`], for `with_sized`.
#[inline]
unsafe fn with_sized<T>(f: impl FnOnce(&mut SizedPools) -> T) -> T {
    with_pools(|pools| {
        // SAFETY: as in `with_pool`.
        f(unsafe { &mut *pools.sized.get() })
    })
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
/// capacity, when `f` returns or unwinds (or are freed, if the thread's
/// idle stacks have been freed for its exit meanwhile). A pool of
/// another stack size that `f` puts in its place is dropped when `f` ends,
/// and the stand-in kept: the pool's stacks must be the size coroutines ask
/// for.
///
/// Called while the thread exits, after its idle stacks were freed, `f`
/// gets an empty pool, and whatever it holds when `f` ends is freed.
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
    let pool = with_pools(|pools| {
        pools.lend_hot();
        // SAFETY: replacing the pool runs no user code (`f` runs after).
        let pool = unsafe {
            pools.with_default(|pool| mem::replace(pool, StackPool::with_default_size()))
        };
        // As the stand-in, which keeps stacks, allows.
        pools.settle_hot();
        pool
    });
    let mut lent = Lent(pool);
    f(&mut lent.0)
}

/// The high-water marks of this thread's pools: for each stack size it
/// pools (the default first, then the others, least recently used first),
/// the size and the most bytes any of its idle stacks has had in use
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
    let default = with_pools(|pools| {
        pools.lend_hot();
        // SAFETY: measuring the pool's stacks runs no user code.
        let usage = unsafe { pools.with_default(|pool| usage_of(pool)) };
        pools.settle_hot();
        usage
    });
    // SAFETY: as above.
    let sized = unsafe {
        with_sized(|pools| {
            pools.turn_hot_off();
            let usage = pools
                .least_recently_used_first()
                .filter_map(usage_of)
                .collect::<Vec<_>>();
            pools.turn_hot_on();
            usage
        })
    };
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
            // stacks) and the stand-in stays, with the hot slot as it allows.
            with_pools(ThreadPools::settle_hot);
            return;
        }
        if !with_pools(ThreadPools::open) {
            // The thread's idle stacks were freed for its exit: these are
            // freed too (dropping the pool), and the stand-in stays.
            return;
        }
        let mut stand_in = with_pools(|pools| {
            // SAFETY: swapping pools runs no user code.
            let stand_in = unsafe { pools.with_default(move |slot| mem::replace(slot, pool)) };
            // The pool's capacity may have changed.
            pools.settle_hot();
            stand_in
        });
        while let Some(stack) = stand_in.take_idle() {
            give_back(stack);
        }
    }
}

/// A default-size stack from this thread's pool, or a fresh one when the
/// pool is empty.
#[inline]
pub(crate) fn take() -> Result<Stack, StackError> {
    match take_hot() {
        Some(stack) => Ok(stack),
        None => take_listed(),
    }
}

/// A default-size stack for a constructor that panics when none can be
/// had (`constructor`, whose fallible form is `builder`): from the hot
/// slot inline, from the pool or mapped out of line.
#[inline(always)]
#[track_caller]
pub(crate) fn take_or_panic(constructor: &'static str, builder: &'static str) -> Stack {
    match take_hot() {
        Some(stack) => stack,
        None => take_listed_or_panic(constructor, builder),
    }
}

/// [`take_or_panic`]'s way when the hot slot is empty.
#[inline(never)]
#[track_caller]
fn take_listed_or_panic(constructor: &'static str, builder: &'static str) -> Stack {
    take_listed().unwrap_or_else(|error| {
        panic!(
            "{constructor} could not get a stack: {error} \
             ({builder} returns this error instead of panicking)"
        )
    })
}

/// The stack in the hot slot, if it holds one: the allocation-free fast
/// path.
#[inline(always)]
fn take_hot() -> Option<Stack> {
    with_pools(ThreadPools::take_hot)
}

/// [`take`] when the hot slot is empty: the pool's newest idle stack, or a
/// fresh one.
#[inline(never)]
fn take_listed() -> Result<Stack, StackError> {
    // SAFETY: taking a stack runs no user code.
    match unsafe { with_pool(StackPool::take_idle) } {
        Some(stack) => Ok(stack),
        None => map(DEFAULT_STACK_SIZE),
    }
}

/// A stack of at least `bytes` usable bytes from the pool of its rounded
/// size (the default pool for [`DEFAULT_STACK_SIZE`]), or a fresh one when
/// that pool is empty. Give it back with [`give_back`].
///
/// # Errors
/// Those of [`Stack::allocate_at_least`]: an invalid size, or no stack to
/// be had.
#[inline]
pub(crate) fn take_sized(bytes: usize) -> Result<Stack, StackError> {
    // SAFETY: taking a stack runs no user code.
    match unsafe { with_sized(|pools| pools.take_idle_asked(bytes)) } {
        Some(stack) => Ok(stack),
        None => take_sized_rounding(bytes),
    }
}

/// [`take_sized`] for a size other than the one last asked for, or when
/// its pool is empty: rounds the size and finds its pool, out of line.
#[inline(never)]
fn take_sized_rounding(bytes: usize) -> Result<Stack, StackError> {
    // The rounding (and the validation) `Stack::allocate_at_least` does.
    let size = Stack::usable_size(bytes)?;
    if size == DEFAULT_STACK_SIZE {
        return take();
    }
    // SAFETY: taking a stack runs no user code.
    match unsafe { with_sized(|pools| pools.take_idle(size, bytes)) } {
        Some(stack) => Ok(stack),
        None => map(size),
    }
}

/// A fresh stack of at least `bytes` usable bytes, for a coroutine (or a
/// grown segment) of this thread's: prepares the thread for coroutines
/// ([`thread_exit::prepare`](crate::thread_exit::prepare)) first.
///
/// Creating a coroutine prepares its thread here, not on every create: a
/// stack comes from a pool or from here (or from the caller, and
/// [`Builder`](crate::Builder) prepares the thread for it), and a pool
/// holds stacks only once [`ThreadPools::open`] has prepared the thread.
///
/// # Errors
/// Those of [`Stack::allocate_at_least`].
pub(crate) fn map(bytes: usize) -> Result<Stack, StackError> {
    crate::thread_exit::prepare();
    Stack::allocate_at_least(bytes)
}

/// Returns a stack to the pool of its size, or frees it when that pool is
/// full (or the thread's idle stacks have been freed for its exit).
#[inline]
pub(crate) fn give_back(stack: Stack) {
    if stack.len() == DEFAULT_STACK_SIZE {
        give_back_default(stack);
    } else if with_pools(|pools| pools.state.get()) == State::Open {
        give_back_sized(stack);
    } else {
        give_back_unopened(stack);
    }
}

/// [`give_back`] for a stack taken with [`take_sized`]: into the recent
/// size's hot slot inline when that is its size and the slot is empty,
/// with no state to check (the slot is on only while the pools are open,
/// see `SizedPools::hot`), the other cases by [`give_back`], out of line.
#[inline(always)]
pub(crate) fn give_back_sized_taken(stack: Stack) {
    // SAFETY: keeping a stack in the slot runs no user code.
    if let Err(stack) = unsafe { with_sized(|sized| sized.give_hot(stack)) } {
        give_back_past_sized_hot(stack);
    }
}

/// [`give_back_sized_taken`] when the hot slot did not keep the stack.
/// Cold and out of line: a loop of one size always finds the slot empty,
/// and a drop's code keeps only that test.
#[cold]
#[inline(never)]
fn give_back_past_sized_hot(stack: Stack) {
    give_back(stack);
}

/// [`give_back`] for a default-size stack: into the hot slot inline when
/// it is empty, past it out of line.
#[inline(always)]
pub(crate) fn give_back_default(stack: Stack) {
    if let Err(stack) = with_pools(|pools| pools.hot.give(stack)) {
        give_back_past_hot(stack);
    }
}

/// [`give_back_default`] when the hot slot holds a stack or is off. A held
/// stack makes way for the newer one and goes to the pool, if that leaves
/// the pool room for the slot's next stack (see [`ThreadPools::hot`]); an
/// off slot leaves the stack to the pool's own capacity, once the pools
/// are open.
#[inline(never)]
fn give_back_past_hot(stack: Stack) {
    if !with_pools(ThreadPools::open) {
        // The thread's idle stacks were freed for its exit: so is this.
        return;
    }
    with_pools(|pools| {
        let older = if pools.hot.is_on() {
            let older = pools.take_hot();
            pools.hot.put(stack);
            older
        } else {
            Some(stack)
        };
        let Some(older) = older else { return };
        let keep_room = pools.hot.is_on();
        // SAFETY: returning a stack, or freeing it, runs no user code.
        unsafe {
            pools.with_default(|pool| {
                if !keep_room || pool.len() + 1 < pool.capacity() {
                    pool.give_back(older);
                } else {
                    drop(older);
                }
            });
        }
    });
}

/// [`give_back`] for a size other than the default: the recent size's
/// fast path, inlined beside the default's, the rest out of line.
#[inline]
fn give_back_sized(stack: Stack) {
    // SAFETY: returning a stack, or freeing stacks to make room for it,
    // runs no user code.
    unsafe { with_sized(|sized| sized.give_back(stack)) }
}

/// [`give_back`] while the pools are not open: opens them, unless the
/// thread's idle stacks have been freed for its exit (then the stack is
/// freed too).
#[cold]
#[inline(never)]
fn give_back_unopened(stack: Stack) {
    if with_pools(ThreadPools::open) {
        give_back(stack);
    }
}
