//! Which stack an address lies on: [`stack_bounds`], for code that must know
//! how much stack it has left wherever it runs (a thread's own stack, a
//! coroutine's, a segment that `sure_coro::grow` made).
//!
//! Every live [`Stack`](crate::Stack) records its usable bounds in a
//! process-wide registry when it takes ownership of its mapping, and removes
//! them when it gives the mapping up. That is a lock and a map insertion next
//! to an `mmap` that costs microseconds; taking a stack from a pool, building
//! a coroutine on it and switching to it touch nothing here. A lookup first
//! tries the calling thread's last answer (a thread-local, two comparisons
//! and one atomic load), so code that asks again and again from the same
//! stack, as a recursion through `sure_coro::maybe_grow` does, pays about
//! what reading a thread-local limit costs; only the first question after
//! moving to another stack searches the registry.

use std::cell::{Cell, UnsafeCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Every live stack's usable region, keyed by its top: `top -> bottom`.
static REGISTRY: Registry = Registry {
    locked: AtomicBool::new(false),
    map: UnsafeCell::new(BTreeMap::new()),
};

/// The registry's map behind a lock of its own. Not std's `Mutex`: its
/// critical sections are a few map operations (never user code, never a
/// system call but the allocator's), and this lock's atomics are compiled
/// with the crate, so ThreadSanitizer sees them even when std is not
/// instrumented (as in `cargo xtask test`'s tsan stage, which would
/// otherwise report every map access as a race).
struct Registry {
    locked: AtomicBool,
    map: UnsafeCell<BTreeMap<usize, Entry>>,
}

/// What the registry keeps of a stack, by its top.
#[derive(Clone, Copy)]
struct Entry {
    bottom: usize,
    /// The id Valgrind gave the stack (0 when not running under Valgrind),
    /// kept here so that a `Stack` is two words.
    valgrind_id: usize,
}

// SAFETY: the map is only reached through `with`, which holds the lock, so
// one thread at a time touches it; the keys and values are plain numbers.
unsafe impl Sync for Registry {}

impl Registry {
    /// Runs `f` on the map with the lock held.
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<usize, Entry>) -> T) -> T {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        /// Releases the lock when dropped, also if `f` panics (only an
        /// allocation failure can make it, which aborts anyway).
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _unlock = Unlock(&self.locked);
        // SAFETY: the lock is held until `_unlock` drops, after `f`: no
        // other reference to the map exists meanwhile.
        f(unsafe { &mut *self.map.get() })
    }

    /// Runs `f` on the map if the lock is free at once: for a fault
    /// handler, which must not wait for a lock the faulting code may hold.
    /// Reads only.
    #[cfg(windows)]
    fn try_read<T>(&self, f: impl FnOnce(&BTreeMap<usize, Entry>) -> T) -> Option<T> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: the lock is held until the store below, after `f`, which
        // only reads (no allocation, no panic): no other reference to the
        // map exists meanwhile.
        let found = f(unsafe { &*self.map.get() });
        self.locked.store(false, Ordering::Release);
        Some(found)
    }
}

/// Counts the stacks removed from the registry. A thread's remembered
/// answer is valid only while this has not moved: a freed stack's addresses
/// may be mapped again as part of another stack, with other bounds.
static REMOVALS: AtomicUsize = AtomicUsize::new(0);

/// The calling thread's last answer, `lo..hi` and the [`REMOVALS`] count it
/// was found at; an empty range when there is none.
#[derive(Clone, Copy)]
struct Remembered {
    lo: usize,
    hi: usize,
    removals: usize,
}

thread_local! {
    static LAST: Cell<Remembered> = const { Cell::new(Remembered { lo: 0, hi: 0, removals: 0 }) };
}

/// Records a stack's usable region, `bottom..top`, with the id Valgrind
/// gave it.
pub(crate) fn register(bottom: usize, top: usize, valgrind_id: usize) {
    let replaced = REGISTRY.with(|map| {
        map.insert(
            top,
            Entry {
                bottom,
                valgrind_id,
            },
        )
    });
    // Live mappings do not overlap, so no two live stacks share a top.
    debug_assert!(replaced.is_none(), "two live stacks end at {top:#x}");
}

/// Forgets the stack whose usable region ends at `top`, before its mapping
/// is unmapped or handed over; returns its Valgrind id (`None` if it was
/// not registered, which a live `Stack` always is).
pub(crate) fn deregister(top: usize) -> Option<usize> {
    let entry = REGISTRY.with(|map| map.remove(&top));
    REMOVALS.fetch_add(1, Ordering::Relaxed);
    debug_assert!(entry.is_some(), "a live stack is registered");
    entry.map(|entry| entry.valgrind_id)
}

/// The usable bounds, `bottom..top`, of the stack that `addr` lies on: a
/// live [`Stack`](crate::Stack) (whoever runs on it), or the calling
/// thread's own stack. `None` for any other memory, such as a stack a
/// scheduler carved out of its own allocation.
///
/// With the stack pointer for `addr` (or the address of a local variable),
/// `addr - bottom` is the stack left below the caller: what
/// `sure_coro::remaining_stack` returns.
///
/// ```
/// use sure_stack::{Stack, stack_bounds};
///
/// let stack = Stack::allocate_at_least(64 * 1024)?;
/// let (bottom, top) = (stack.bottom().as_ptr() as usize, stack.top().as_ptr() as usize);
/// assert_eq!(stack_bounds(bottom + 100), Some(bottom..top));
///
/// // A local variable lies on the thread's own stack.
/// let local = 0u8;
/// let here = &raw const local as usize;
/// assert!(stack_bounds(here).is_some_and(|own| own.contains(&here)));
/// # Ok::<(), sure_stack::StackError>(())
/// ```
///
/// The first call on a thread prepares it as [`overflow::prepare_thread`]
/// does, which is where its own stack's bounds are read (Linux and
/// Windows). On other systems only stacks of this crate are found.
///
/// [`overflow::prepare_thread`]: crate::overflow::prepare_thread
#[inline]
pub fn stack_bounds(addr: usize) -> Option<Range<usize>> {
    let last = LAST.with(Cell::get);
    if (last.lo..last.hi).contains(&addr) && last.removals == REMOVALS.load(Ordering::Relaxed) {
        return Some(last.lo..last.hi);
    }
    look_up(addr)
}

/// [`stack_bounds`] past the remembered answer: the registry, then the
/// thread's own stack.
#[cold]
#[inline(never)]
fn look_up(addr: usize) -> Option<Range<usize>> {
    // Read before the search: a removal during it makes the next call look
    // again rather than trust this answer.
    let removals = REMOVALS.load(Ordering::Relaxed);
    let found = REGISTRY.with(|map| find(map, addr, 0));
    let bounds = found.or_else(|| {
        let (lo, hi) = thread_stack()?;
        (lo..hi).contains(&addr).then_some(lo..hi)
    })?;
    let _ = LAST.try_with(|last| {
        last.set(Remembered {
            lo: bounds.start,
            hi: bounds.end,
            removals,
        })
    });
    Some(bounds)
}

/// The calling thread's own stack, `lo..hi`, as far as it is usable.
fn thread_stack() -> Option<(usize, usize)> {
    // Preparing the thread is where its bounds are read.
    crate::overflow::prepare_thread();
    crate::overflow::thread_stack()
}

/// Whether `addr` lies on a live stack of this crate or in its `room`
/// below: for Windows, whose own record of the running stack follows
/// switches.
#[cfg(windows)]
pub(crate) fn on_a_stack(addr: usize, room: usize) -> bool {
    REGISTRY.with(|map| find(map, addr, room)).is_some()
}

/// For Windows' overflow handler: the usable region, `bottom..top`, of the
/// stack whose usable region or overflow room (the `room` bytes below its
/// bottom) holds `addr`; `None` also when the registry is busy.
#[cfg(windows)]
pub(crate) fn guarded_stack_at(addr: usize, room: usize) -> Option<Range<usize>> {
    REGISTRY.try_read(|map| find(map, addr, room)).flatten()
}

/// The usable region, `bottom..top`, of the registered stack whose usable
/// region, or the `room` bytes below it, holds `addr`.
fn find(map: &BTreeMap<usize, Entry>, addr: usize, room: usize) -> Option<Range<usize>> {
    map.range(addr + 1..)
        .next()
        .filter(|&(_, entry)| entry.bottom.saturating_sub(room) <= addr)
        .map(|(&top, entry)| entry.bottom..top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stack;

    #[test]
    fn a_freed_stack_is_not_remembered() {
        let stack = Stack::allocate_at_least(crate::MIN_STACK_SIZE).expect("a stack");
        let inside = stack.bottom().as_ptr() as usize + 64;
        assert!(stack_bounds(inside).is_some());
        drop(stack);
        // Nothing is mapped there now, or another test's stack is: the
        // answer must be a live stack's, not the remembered one.
        let registered = |bounds: &Range<usize>| {
            REGISTRY
                .with(|map| map.get(&bounds.end).map(|entry| entry.bottom) == Some(bounds.start))
        };
        assert!(stack_bounds(inside).is_none_or(|bounds| registered(&bounds)));
    }

    #[test]
    fn the_edges_belong_to_the_right_stack() {
        let stack = Stack::allocate_at_least(crate::MIN_STACK_SIZE).expect("a stack");
        let (bottom, top) = (
            stack.bottom().as_ptr() as usize,
            stack.top().as_ptr() as usize,
        );
        assert_eq!(stack_bounds(bottom), Some(bottom..top));
        assert_eq!(stack_bounds(top - 1), Some(bottom..top));
        // The guard page is no stack's usable memory, and `top` is the next
        // mapping's (if any).
        assert_ne!(stack_bounds(bottom - 1), Some(bottom..top));
        assert_ne!(stack_bounds(top), Some(bottom..top));
    }
}
