//! [`StackPool`], a bounded LIFO free list of equally sized stacks.

use core::fmt;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use std::io;

use crate::stack::usable_len;
use crate::{DEFAULT_STACK_SIZE, LABEL_BYTES, Stack, StackError};

/// The largest base page size of the Linux targets this crate runs on
/// (64 KiB, on AArch64 and 64-bit PowerPC; x86-64 uses 4 KiB).
/// [`StackPool::with_default_size`] skips rounding [`DEFAULT_STACK_SIZE`] up
/// to whole pages, which is only right while it is a multiple of this.
const LARGEST_PAGE_SIZE: usize = 64 * 1024;

const _: () = assert!(
    DEFAULT_STACK_SIZE.is_multiple_of(LARGEST_PAGE_SIZE),
    "DEFAULT_STACK_SIZE must be a whole number of pages for StackPool::with_default_size"
);

/// A bounded LIFO free list of stacks that all have the same size.
///
/// [`take`](StackPool::take) hands out the most recently returned stack (its
/// pages are the most likely to still be in cache and are already faulted
/// in), or allocates a fresh one when the pool is empty.
/// [`give_back`](StackPool::give_back) keeps a stack for reuse while the pool
/// holds fewer than [`capacity`](StackPool::capacity) stacks, and frees it
/// otherwise.
///
/// ```
/// use sure_stack::StackPool;
///
/// let mut pool = StackPool::with_capacity(sure_stack::DEFAULT_STACK_SIZE, 2)?;
/// let a = pool.take()?; // allocated: the pool was empty
/// let addr = a.bottom();
/// pool.give_back(a);
/// assert_eq!(pool.len(), 1);
/// let b = pool.take()?; // reused, no system call
/// assert_eq!(b.bottom(), addr);
/// # Ok::<(), sure_stack::StackError>(())
/// ```
pub struct StackPool {
    /// The most recently returned idle stack, through its link; each link
    /// leads to the stack returned before it.
    newest: Option<NonNull<Link>>,
    /// Idle stacks held.
    len: usize,
    /// Usable size of every stack in the pool (rounded to pages).
    stack_size: usize,
    /// Most stacks held idle.
    capacity: usize,
}

/// What an idle stack holds for its pool: the next idle stack (its own
/// `Stack` is its address and the pool's length). Written just below the label
/// at the top of the usable region ([`link_offset`]): in the page its last
/// user touched first, which its next user overwrites anyway. So the free
/// list allocates nothing, and taking or returning a stack touches one
/// line of memory beside the pool.
#[repr(C)]
struct Link {
    next: Option<NonNull<Link>>,
}

/// How far above the bottom of an idle stack of `len` usable bytes its
/// link lies. A stack is at least MIN_STACK_SIZE long, far more than the
/// label and a link; its top is page aligned and LABEL_BYTES a multiple of
/// 16, so the link is aligned.
#[inline]
const fn link_offset(len: usize) -> usize {
    len - LABEL_BYTES - size_of::<Link>()
}

// SAFETY: the pool owns its idle stacks, as a `Vec<Stack>` would (a `Stack`
// is Send); the links are plain memory inside them.
unsafe impl Send for StackPool {}
// SAFETY: `&self` methods only read the links and the stacks' residency,
// as `&Vec<Stack>` would; only `&mut self` methods write.
unsafe impl Sync for StackPool {}

static_assertions::assert_impl_all!(StackPool: Send, Sync, fmt::Debug);

impl StackPool {
    /// The number of idle stacks a pool keeps unless told otherwise: 64.
    ///
    /// Pooled stacks keep the pages they touched, so an unbounded pool would
    /// retain the peak memory of the busiest moment forever. The bound caps
    /// that: at most 64 stacks, 16 MiB of address space with the default
    /// 256 KiB stacks (and typically much less memory, since only touched
    /// pages count), and 128 of the `vm.max_map_count` mappings.
    pub const DEFAULT_CAPACITY: usize = 64;

    /// Creates an empty pool of stacks of at least `stack_size` usable bytes,
    /// holding up to [`DEFAULT_CAPACITY`](StackPool::DEFAULT_CAPACITY) idle
    /// stacks. Allocates nothing.
    ///
    /// # Errors
    ///
    /// [`StackError::InvalidSize`] if `stack_size` is not accepted by
    /// [`Stack::allocate_at_least`].
    ///
    /// ```
    /// let pool = sure_stack::StackPool::new(100_000)?;
    /// assert_eq!(pool.stack_size(), 100_000usize.next_multiple_of(sure_stack::page_size()));
    /// assert_eq!(pool.capacity(), sure_stack::StackPool::DEFAULT_CAPACITY);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    pub fn new(stack_size: usize) -> Result<StackPool, StackError> {
        Self::with_capacity(stack_size, Self::DEFAULT_CAPACITY)
    }

    /// Creates an empty pool of stacks of at least `stack_size` usable bytes,
    /// holding up to `capacity` idle stacks. Allocates nothing.
    ///
    /// # Errors
    ///
    /// [`StackError::InvalidSize`] if `stack_size` is not accepted by
    /// [`Stack::allocate_at_least`].
    ///
    /// ```
    /// let pool = sure_stack::StackPool::with_capacity(sure_stack::DEFAULT_STACK_SIZE, 8)?;
    /// assert_eq!(pool.capacity(), 8);
    /// assert!(pool.is_empty());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    pub fn with_capacity(stack_size: usize, capacity: usize) -> Result<StackPool, StackError> {
        Ok(StackPool {
            newest: None,
            len: 0,
            stack_size: usable_len(stack_size)?,
            capacity,
        })
    }

    /// Creates an empty pool of [`DEFAULT_STACK_SIZE`] stacks holding up to
    /// [`DEFAULT_CAPACITY`](StackPool::DEFAULT_CAPACITY) idle stacks.
    /// Allocates nothing and cannot fail.
    ///
    /// It is the same pool as `StackPool::new(DEFAULT_STACK_SIZE)`, but as a
    /// `const fn` it can initialise a `static` or a `thread_local!` with
    /// `const { }` initialisation, which needs no lazy-initialisation check
    /// on access. [`DEFAULT_STACK_SIZE`] is already a whole number of pages,
    /// so no runtime rounding to [`page_size`](crate::page_size) is needed.
    ///
    /// A per-thread pool:
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use sure_stack::{StackPool, DEFAULT_STACK_SIZE};
    ///
    /// thread_local! {
    ///     static POOL: RefCell<StackPool> = const { RefCell::new(StackPool::with_default_size()) };
    /// }
    ///
    /// let stack = POOL.with_borrow_mut(StackPool::take)?;
    /// assert_eq!(stack.len(), DEFAULT_STACK_SIZE);
    /// POOL.with_borrow_mut(|pool| pool.give_back(stack));
    /// assert_eq!(POOL.with_borrow(StackPool::len), 1);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[must_use]
    pub const fn with_default_size() -> StackPool {
        StackPool {
            newest: None,
            len: 0,
            // Already a whole number of pages: see `LARGEST_PAGE_SIZE`.
            stack_size: DEFAULT_STACK_SIZE,
            capacity: Self::DEFAULT_CAPACITY,
        }
    }

    /// The usable size of the stacks this pool hands out: the requested size
    /// rounded up to whole pages.
    ///
    /// ```
    /// let pool = sure_stack::StackPool::new(sure_stack::DEFAULT_STACK_SIZE)?;
    /// assert_eq!(pool.stack_size(), sure_stack::DEFAULT_STACK_SIZE);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// The most idle stacks the pool keeps.
    ///
    /// ```
    /// let pool = sure_stack::StackPool::with_capacity(sure_stack::DEFAULT_STACK_SIZE, 3)?;
    /// assert_eq!(pool.capacity(), 3);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the most idle stacks the pool keeps. If the pool holds more
    /// than `capacity` stacks, the excess is freed (the least recently
    /// returned ones go first).
    ///
    /// ```
    /// let mut pool = sure_stack::StackPool::with_capacity(sure_stack::DEFAULT_STACK_SIZE, 4)?;
    /// let stacks = [pool.take()?, pool.take()?, pool.take()?];
    /// stacks.into_iter().for_each(|s| pool.give_back(s));
    /// assert_eq!(pool.len(), 3);
    /// pool.set_capacity(1);
    /// assert_eq!(pool.len(), 1);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        if self.len <= capacity {
            return;
        }
        // Keep the `capacity` most recently returned stacks (the start of
        // the list) and free the rest.
        if capacity == 0 {
            self.clear();
            return;
        }
        let mut last_kept = self.newest.expect("a non-empty pool has a newest stack");
        for _ in 1..capacity {
            // SAFETY: the list holds `len > capacity` links, each in an
            // idle stack this pool owns.
            last_kept = unsafe { last_kept.as_ref() }
                .next
                .expect("the list is as long as the pool");
        }
        // SAFETY: as above; the rest is unlinked before it is freed.
        let mut rest = unsafe { last_kept.as_mut().next.take() };
        self.len = capacity;
        while let Some(link) = rest {
            // SAFETY: `link` is in an idle stack that no list reaches any
            // more, read before the stack it becomes owns, then frees, it.
            rest = unsafe {
                let next = link.as_ref().next;
                drop(self.stack_of(link));
                next
            };
        }
    }

    /// The number of idle stacks held.
    ///
    /// ```
    /// let mut pool = sure_stack::StackPool::new(sure_stack::DEFAULT_STACK_SIZE)?;
    /// assert_eq!(pool.len(), 0);
    /// let stack = pool.take()?;
    /// pool.give_back(stack);
    /// assert_eq!(pool.len(), 1);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the pool holds no idle stack.
    ///
    /// ```
    /// let pool = sure_stack::StackPool::new(sure_stack::DEFAULT_STACK_SIZE)?;
    /// assert!(pool.is_empty());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.newest.is_none()
    }

    /// The pool's high-water mark: the most bytes any of its idle stacks
    /// has had in use ([`Stack::peak_usage`]), 0 for an empty pool. A pooled
    /// stack keeps the pages its users touched, so this is the deepest that
    /// any code which ran on these stacks and gave them back went: the
    /// figure to size them by, after a representative run.
    ///
    /// ```
    /// use sure_stack::StackPool;
    ///
    /// let mut pool = StackPool::new(256 * 1024)?;
    /// let stack = pool.take()?;
    /// // SAFETY: inside the stack, which nothing runs on.
    /// unsafe { stack.top().as_ptr().sub(10_000).write(1) };
    /// pool.give_back(stack);
    /// let peak = pool.peak_usage()?;
    /// assert!(peak >= 10_000 && peak < 10_000 + sure_stack::page_size());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Stack::peak_usage`].
    pub fn peak_usage(&self) -> io::Result<usize> {
        let mut peak = 0;
        let mut at = self.newest;
        while let Some(link) = at {
            // SAFETY: `link` is in an idle stack this pool owns; the copy
            // made of it is only looked at, never dropped.
            let stack = ManuallyDrop::new(unsafe { self.stack_of(link) });
            peak = peak.max(stack.peak_usage()?);
            // SAFETY: as above.
            at = unsafe { link.as_ref().next };
        }
        Ok(peak)
    }

    /// The stack whose link is `link`.
    ///
    /// # Safety
    /// `link` is one of this pool's links, and the stack has one owner
    /// afterwards: the caller unlinks it, or never drops the copy.
    #[inline]
    unsafe fn stack_of(&self, link: NonNull<Link>) -> Stack {
        // SAFETY: `give_back` wrote the link `link_offset` bytes above the
        // bottom of an idle stack of this pool's size; the contract leaves
        // one owner.
        unsafe {
            let bottom = link.cast::<u8>().sub(link_offset(self.stack_size));
            Stack::from_idle(bottom, self.stack_size)
        }
    }

    /// Hands out the most recently returned stack, or allocates a fresh one
    /// of [`stack_size`](StackPool::stack_size) bytes if the pool is empty.
    /// When the pool is not empty this makes no system call.
    ///
    /// # Errors
    ///
    /// Those of [`Stack::allocate_at_least`], when a fresh stack is needed.
    ///
    /// ```
    /// let mut pool = sure_stack::StackPool::new(sure_stack::DEFAULT_STACK_SIZE)?;
    /// let stack = pool.take()?;
    /// assert_eq!(stack.len(), pool.stack_size());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn take(&mut self) -> Result<Stack, StackError> {
        match self.take_idle() {
            Some(stack) => Ok(stack),
            None => Stack::allocate_at_least(self.stack_size),
        }
    }

    /// Takes the most recently returned idle stack, if there is one; never
    /// allocates. For callers that handle the empty case on a cold path of
    /// their own.
    ///
    /// ```
    /// let mut pool = sure_stack::StackPool::new(sure_stack::DEFAULT_STACK_SIZE)?;
    /// assert!(pool.take_idle().is_none());
    /// let stack = pool.take()?;
    /// pool.give_back(stack);
    /// assert!(pool.take_idle().is_some());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn take_idle(&mut self) -> Option<Stack> {
        let link = self.newest?;
        // SAFETY: `link` is in the newest idle stack, which this pool owns
        // and unlinks here, so the stack returned is its only owner.
        unsafe {
            self.newest = link.as_ref().next;
            self.len -= 1;
            Some(self.stack_of(link))
        }
    }

    /// Returns a stack to the pool for reuse. It is kept if the pool holds
    /// fewer than [`capacity`](StackPool::capacity) stacks and its
    /// [`len`](Stack::len) equals [`stack_size`](StackPool::stack_size);
    /// otherwise it is dropped (unmapped).
    ///
    /// ```
    /// let mut pool = sure_stack::StackPool::new(sure_stack::DEFAULT_STACK_SIZE)?;
    /// pool.give_back(sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?);
    /// assert!(pool.is_empty()); // wrong size: freed
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn give_back(&mut self, stack: Stack) {
        if stack.len() != self.stack_size || self.len >= self.capacity {
            free(stack);
            return;
        }
        let bottom = stack.into_idle();
        // SAFETY: the stack is ours now and nothing runs on it; its usable
        // region is mapped read-write, and the link lies inside it, aligned
        // (`link_offset`).
        let link = unsafe {
            let link = bottom.add(link_offset(self.stack_size)).cast::<Link>();
            link.write(Link { next: self.newest });
            link
        };
        self.newest = Some(link);
        self.len += 1;
    }

    /// Frees every idle stack.
    ///
    /// ```
    /// let mut pool = sure_stack::StackPool::new(sure_stack::DEFAULT_STACK_SIZE)?;
    /// let stack = pool.take()?;
    /// pool.give_back(stack);
    /// pool.clear();
    /// assert!(pool.is_empty());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    pub fn clear(&mut self) {
        while self.take_idle().is_some() {}
    }
}

/// Frees a stack a pool does not keep: by value and out of line, so that
/// the inline [`StackPool::give_back`] keeps the stack in registers rather
/// than making room for it on the caller's stack to drop it there.
#[cold]
#[inline(never)]
fn free(stack: Stack) {
    drop(stack);
}

impl Drop for StackPool {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Default for StackPool {
    /// The same as [`StackPool::with_default_size`].
    fn default() -> StackPool {
        StackPool::with_default_size()
    }
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPool")
            .field("stack_size", &self.stack_size)
            .field("capacity", &self.capacity)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_size_pool_matches_the_runtime_rounded_one() {
        const POOL: StackPool = StackPool::with_default_size();
        assert_eq!(
            POOL.stack_size(),
            StackPool::new(DEFAULT_STACK_SIZE).unwrap().stack_size()
        );
        assert_eq!(
            StackPool::with_default_size().stack_size(),
            StackPool::new(DEFAULT_STACK_SIZE).unwrap().stack_size()
        );
        assert_eq!(POOL.capacity(), StackPool::DEFAULT_CAPACITY);
        assert!(POOL.is_empty());
    }

    #[test]
    fn default_is_the_default_size_pool() {
        let pool = StackPool::default();
        assert_eq!(pool.stack_size(), DEFAULT_STACK_SIZE);
        assert_eq!(pool.capacity(), StackPool::DEFAULT_CAPACITY);
        assert!(pool.is_empty());
    }
}
