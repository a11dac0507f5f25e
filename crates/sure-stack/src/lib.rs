//! Guarded, lazily mapped stacks for stackful coroutines, and a LIFO pool of
//! them.
//!
//! A [`Stack`] owns one anonymous memory mapping. The lowest page of the
//! mapping is a *guard page* mapped `PROT_NONE`; the rest is readable and
//! writable and is what a coroutine runs on:
//!
//! ```text
//!  high addresses
//!  +---------------------------+  <- top()      (page aligned, one past the end)
//!  |                           |     the stack pointer starts here and the
//!  |   usable region           |     stack grows DOWN, towards bottom()
//!  |   len() bytes, whole      |
//!  |   pages, PROT_READ|WRITE  |          |
//!  |                           |          v
//!  +---------------------------+  <- bottom()   (lowest usable byte)
//!  |   guard page, PROT_NONE   |     guard(): any access faults (SIGSEGV)
//!  +---------------------------+  <- start of the mapping (RawStack::mapping)
//!  low addresses
//! ```
//!
//! On x86-64 and AArch64 the stack grows towards lower addresses, so a
//! coroutine that overflows its stack runs into the guard page and is killed
//! by `SIGSEGV` instead of silently corrupting whatever memory lies below.
//!
//! # Lazy mapping
//!
//! [`Stack::allocate_at_least`] maps the memory with `MAP_NORESERVE` and
//! touches none of it: the kernel hands out physical pages only when they are
//! first written, one page at a time. A 256 KiB stack ([`DEFAULT_STACK_SIZE`])
//! on which a coroutine only ever uses a few kilobytes costs a few pages of
//! memory, not 256 KiB. The address space is reserved, the memory is not.
//!
//! # Two mappings per stack, and `vm.max_map_count`
//!
//! Because the guard page has a different protection from the usable pages,
//! the kernel keeps each stack as **two** memory mappings (VMAs). Linux
//! limits the number of mappings per process with the `vm.max_map_count`
//! sysctl, 65530 by default, which allows about 32,750 live guarded stacks
//! (less whatever the rest of the process uses). Past that, `mmap` or
//! `mprotect` fail with `ENOMEM` and allocation returns
//! [`StackError::MappingLimit`]. To run more coroutines, raise the limit, for
//! example `sysctl -w vm.max_map_count=2200000` for about a million stacks.
//!
//! # Pooling
//!
//! A fresh stack costs several system calls (`mmap`, `mprotect`, later
//! `munmap`) plus a page fault for every page first touched: microseconds. A
//! [`StackPool`] keeps released stacks in a bounded LIFO free list and hands
//! the most recently returned one out again, which costs nanoseconds and no
//! system call. Pooled stacks keep their touched pages, so the memory a
//! reused stack needs is already there (and still counted against the
//! process while it sits in the pool; the pool's capacity bounds that).
//!
//! # Example
//!
//! ```
//! use sure_stack::{Stack, StackPool, DEFAULT_STACK_SIZE};
//!
//! let stack = Stack::allocate_at_least(DEFAULT_STACK_SIZE)?;
//! assert_eq!(stack.len(), DEFAULT_STACK_SIZE);
//! assert!(stack.contains_guard(stack.bottom().as_ptr() as usize - 1));
//!
//! let mut pool = StackPool::new(DEFAULT_STACK_SIZE)?;
//! pool.give_back(stack);
//! let again = pool.take()?; // no system call: the stack from above
//! assert_eq!(again.len(), DEFAULT_STACK_SIZE);
//! # Ok::<(), sure_stack::StackError>(())
//! ```
//!
//! This crate supports Linux (it reads `/proc` to diagnose mapping
//! exhaustion).

use core::fmt;
use core::num::NonZeroUsize;
use core::ops::Range;
use core::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{self, MapFlags, ProtFlags};

/// The default usable size of a coroutine stack: 256 KiB.
///
/// Thanks to lazy mapping only the pages a coroutine actually touches cost
/// memory, so a generous default is cheap.
///
/// ```
/// assert_eq!(sure_stack::DEFAULT_STACK_SIZE, 256 * 1024);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The smallest stack size [`Stack::allocate_at_least`] accepts: 16 KiB.
///
/// Below this, ordinary code (formatting, a panic and its unwinding, a few
/// nested calls) overflows into the guard page too easily for a stack to be
/// useful. Requests below it are rejected with [`StackError::InvalidSize`].
///
/// ```
/// use sure_stack::{Stack, StackError, MIN_STACK_SIZE};
///
/// assert!(Stack::allocate_at_least(MIN_STACK_SIZE).is_ok());
/// assert!(matches!(
///     Stack::allocate_at_least(MIN_STACK_SIZE - 1),
///     Err(StackError::InvalidSize { .. })
/// ));
/// ```
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// How close to `vm.max_map_count` the process's mapping count must be for an
/// `mmap` `ENOMEM` to be blamed on the mapping limit. Other threads may map
/// and unmap memory between the failure and the count, hence a margin.
const MAP_COUNT_MARGIN: usize = 16;

/// The size of a memory page in bytes (4096 on most systems).
///
/// The value is queried from the system once and cached, so calling this is
/// cheap.
///
/// ```
/// let page = sure_stack::page_size();
/// assert!(page.is_power_of_two());
/// ```
#[inline]
pub fn page_size() -> usize {
    region::page::size()
}

/// The largest usable size that still leaves room for the guard page while
/// keeping the whole mapping within `isize::MAX` bytes (the most a Rust
/// object, and so a slice over the stack, may span).
fn max_stack_size() -> usize {
    let page = page_size();
    (isize::MAX as usize / page) * page - page
}

/// Validates a requested size and rounds it up to whole pages.
fn usable_len(requested: usize) -> Result<usize, StackError> {
    let invalid = || StackError::InvalidSize {
        requested,
        min: MIN_STACK_SIZE,
        max: max_stack_size(),
    };
    if requested < MIN_STACK_SIZE {
        return Err(invalid());
    }
    match requested.checked_next_multiple_of(page_size()) {
        Some(rounded) if rounded <= max_stack_size() => Ok(rounded),
        _ => Err(invalid()),
    }
}

/// Why a stack could not be allocated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The requested size is 0, below [`MIN_STACK_SIZE`], or so large that
    /// rounding it up to whole pages and adding the guard page overflows the
    /// address space.
    #[error(
        "invalid stack size of {requested} bytes: a stack must have at least {min} bytes \
         (MIN_STACK_SIZE) and at most {max} bytes; the size is rounded up to whole pages \
         and one guard page is added below it"
    )]
    #[non_exhaustive]
    InvalidSize {
        /// The size that was asked for, in bytes.
        requested: usize,
        /// The smallest valid size ([`MIN_STACK_SIZE`]).
        min: usize,
        /// The largest valid size on this system.
        max: usize,
    },

    /// The process has run out of memory mappings (`vm.max_map_count`).
    ///
    /// Each guarded stack costs two mappings, so the default limit of 65530
    /// allows about 32,750 live stacks.
    #[error(
        "{call} failed with ENOMEM: the process has run out of memory mappings \
         ({} mappings in use, vm.max_map_count = {}). Each guarded stack costs two \
         mappings, so the default vm.max_map_count of 65530 allows about 32,750 live \
         stacks. Raise the limit (e.g. `sysctl -w vm.max_map_count=2200000` for about \
         a million stacks) or free stacks (drop them, shrink or clear stack pools)",
        show_count(*.mappings),
        show_count(*.max_map_count)
    )]
    #[non_exhaustive]
    MappingLimit {
        /// The system call that failed: `"mmap"` or `"mprotect"`.
        call: &'static str,
        /// Lines in `/proc/self/maps` when the failure was diagnosed, if
        /// they could be counted.
        mappings: Option<usize>,
        /// The value of `/proc/sys/vm/max_map_count`, if it could be read.
        max_map_count: Option<usize>,
    },

    /// `mmap` or `mprotect` failed for another reason.
    #[error(
        "{call} of a {bytes}-byte stack mapping failed: {errno}. The system may be out of \
         memory or address space: check `ulimit -v` and vm.overcommit_memory, ask for a \
         smaller stack, or free stacks"
    )]
    #[non_exhaustive]
    Map {
        /// The system call that failed: `"mmap"` or `"mprotect"`.
        call: &'static str,
        /// The size of the whole mapping (usable bytes plus the guard page).
        bytes: usize,
        /// The error the system call returned.
        errno: Errno,
    },
}

fn show_count(count: Option<usize>) -> String {
    count.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

/// Counts the lines of `/proc/self/maps`: the process's memory mappings.
fn mapping_count() -> Option<usize> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count())
}

/// Reads `/proc/sys/vm/max_map_count`.
fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether an `mmap` `ENOMEM` is due to the mapping limit: the mapping count
/// is within [`MAP_COUNT_MARGIN`] of the limit.
fn near_mapping_limit(mappings: Option<usize>, max_map_count: Option<usize>) -> bool {
    match (mappings, max_map_count) {
        (Some(n), Some(max)) => n >= max.saturating_sub(MAP_COUNT_MARGIN),
        _ => false,
    }
}

/// Turns a failed `mmap` / `mprotect` into a [`StackError`].
fn classify(call: &'static str, bytes: usize, errno: Errno) -> StackError {
    if errno == Errno::ENOMEM {
        let mappings = mapping_count();
        let max_map_count = max_map_count();
        // mprotect of the guard page splits one mapping into two: with
        // ENOMEM the only thing it can have run out of is mappings.
        if call == "mprotect" || near_mapping_limit(mappings, max_map_count) {
            return StackError::MappingLimit {
                call,
                mappings,
                max_map_count,
            };
        }
    }
    StackError::Map { call, bytes, errno }
}

/// A coroutine stack: one memory mapping with a `PROT_NONE` guard page at its
/// lowest address and [`len`](Stack::len) usable bytes above it.
///
/// The stack is move-only and unmaps its memory when dropped. See the
/// [crate documentation](crate) for the layout.
///
/// ```
/// use sure_stack::{page_size, Stack};
///
/// let stack = Stack::allocate_at_least(20_000)?;
/// assert_eq!(stack.len() % page_size(), 0);
/// assert!(stack.len() >= 20_000);
/// // The stack pointer of a new coroutine starts at the top and grows down.
/// assert_eq!(stack.top().as_ptr() as usize - stack.bottom().as_ptr() as usize, stack.len());
/// # Ok::<(), sure_stack::StackError>(())
/// ```
pub struct Stack {
    /// Start of the mapping: the guard page.
    mapping: NonNull<u8>,
    /// Length of the whole mapping, guard page included. A multiple of the
    /// page size, at least two pages.
    mapping_len: usize,
}

// SAFETY: a `Stack` is an owned block of plain memory; nothing about it is
// tied to the thread that mapped it (mappings are process-wide), and `munmap`
// may be called from any thread.
unsafe impl Send for Stack {}
// SAFETY: every `&self` method only reads the two fields (addresses and
// sizes); none reads or writes the stack memory, so sharing is harmless.
unsafe impl Sync for Stack {}

static_assertions::assert_impl_all!(Stack: Send, Sync, fmt::Debug);
static_assertions::assert_not_impl_any!(Stack: Clone, Copy);
static_assertions::assert_impl_all!(StackPool: Send, Sync, fmt::Debug);
static_assertions::assert_impl_all!(StackError: Send, Sync, std::error::Error);
static_assertions::assert_impl_all!(RawStack: Copy, Eq, fmt::Debug);

impl Stack {
    /// Allocates a stack of at least `bytes` usable bytes.
    ///
    /// The size is rounded up to whole pages, and one guard page is added
    /// below the usable region, so [`len`](Stack::len) is `bytes` rounded up
    /// to a multiple of [`page_size`]. The memory is mapped lazily
    /// (`MAP_NORESERVE`); no page is touched here.
    ///
    /// # Errors
    ///
    /// * [`StackError::InvalidSize`] if `bytes` is below [`MIN_STACK_SIZE`]
    ///   (including 0) or too large to round up and add a guard page to.
    /// * [`StackError::MappingLimit`] if the process has run out of memory
    ///   mappings (`vm.max_map_count`).
    /// * [`StackError::Map`] if `mmap` or `mprotect` failed otherwise.
    ///
    /// ```
    /// use sure_stack::{page_size, Stack, StackError};
    ///
    /// let stack = Stack::allocate_at_least(64 * 1024 + 1)?;
    /// assert_eq!(stack.len(), (64 * 1024 + 1usize).next_multiple_of(page_size()));
    ///
    /// assert!(matches!(Stack::allocate_at_least(0), Err(StackError::InvalidSize { .. })));
    /// # Ok::<(), StackError>(())
    /// ```
    pub fn allocate_at_least(bytes: usize) -> Result<Stack, StackError> {
        let usable = usable_len(bytes)?;
        let page = page_size();
        // Cannot overflow: `usable <= max_stack_size()`, which leaves room for
        // one page below `isize::MAX`.
        let mapping_len = usable + page;
        let Some(length) = NonZeroUsize::new(mapping_len) else {
            // Unreachable in practice: `usable >= MIN_STACK_SIZE > 0`.
            return Err(StackError::InvalidSize {
                requested: bytes,
                min: MIN_STACK_SIZE,
                max: max_stack_size(),
            });
        };

        #[cfg(any(target_os = "linux", target_os = "android"))]
        let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE | MapFlags::MAP_STACK;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE;

        // SAFETY: we ask for a fresh anonymous mapping at an address of the
        // kernel's choosing (no MAP_FIXED), so no existing memory is
        // affected; the result is only used through the returned pointer.
        let mapping = unsafe {
            mman::mmap_anonymous(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                flags,
            )
        }
        .map_err(|errno| classify("mmap", mapping_len, errno))?;

        // From here on the mapping is owned by `stack`: if mprotect fails,
        // dropping `stack` unmaps it before the error is returned.
        let stack = Stack {
            mapping: mapping.cast(),
            mapping_len,
        };

        // SAFETY: the first page of the mapping we just created belongs to us
        // alone and nothing points into it yet; making it inaccessible
        // invalidates no reference.
        unsafe { mman::mprotect(mapping, page, ProtFlags::PROT_NONE) }
            .map_err(|errno| classify("mprotect", mapping_len, errno))?;

        Ok(stack)
    }

    /// The lowest usable byte, just above the guard page.
    ///
    /// ```
    /// let stack = sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
    /// assert_eq!(stack.bottom().as_ptr() as usize, stack.guard().end);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn bottom(&self) -> NonNull<u8> {
        // SAFETY: the mapping is at least two pages long, so one page past
        // its start is still inside it.
        unsafe { self.mapping.add(page_size()) }
    }

    /// One past the highest usable byte: where the stack pointer of a new
    /// coroutine starts. Page aligned, hence 16-byte aligned.
    ///
    /// ```
    /// let stack = sure_stack::Stack::allocate_at_least(sure_stack::DEFAULT_STACK_SIZE)?;
    /// assert_eq!(stack.top().as_ptr() as usize % 16, 0);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn top(&self) -> NonNull<u8> {
        // SAFETY: one past the end of the mapping is in bounds for pointer
        // arithmetic (the mapping is a single allocation of `mapping_len`
        // bytes, at most `isize::MAX`).
        unsafe { self.mapping.add(self.mapping_len) }
    }

    /// The number of usable bytes: a multiple of [`page_size`], the guard
    /// page not included.
    ///
    /// ```
    /// let stack = sure_stack::Stack::allocate_at_least(100_000)?;
    /// assert_eq!(stack.len() % sure_stack::page_size(), 0);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    #[expect(
        clippy::len_without_is_empty,
        reason = "a stack is never empty: it has at least MIN_STACK_SIZE bytes"
    )]
    pub fn len(&self) -> usize {
        self.mapping_len - page_size()
    }

    /// The usable bytes as a slice pointer: starts at [`bottom`](Stack::bottom)
    /// and is [`len`](Stack::len) bytes long.
    ///
    /// Writing through it is allowed (the memory is readable and writable)
    /// but, as with any raw pointer, it is the caller's job not to create
    /// aliasing references, for instance while a coroutine runs on the
    /// stack.
    ///
    /// ```
    /// let stack = sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
    /// let region = stack.region();
    /// assert_eq!(region.cast::<u8>(), stack.bottom());
    /// assert_eq!(region.len(), stack.len());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn region(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.bottom(), self.len())
    }

    /// The addresses of the guard page: from the start of the mapping up to
    /// (excluding) [`bottom`](Stack::bottom). Any access there faults.
    ///
    /// ```
    /// let stack = sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
    /// assert_eq!(stack.guard().len(), sure_stack::page_size());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn guard(&self) -> Range<usize> {
        let start = self.mapping.as_ptr() as usize;
        start..start + page_size()
    }

    /// Whether `addr` lies within the guard page, for example the faulting
    /// address of a `SIGSEGV` caused by a stack overflow.
    ///
    /// ```
    /// let stack = sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
    /// let bottom = stack.bottom().as_ptr() as usize;
    /// assert!(stack.contains_guard(bottom - 1));
    /// assert!(!stack.contains_guard(bottom));
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn contains_guard(&self, addr: usize) -> bool {
        self.guard().contains(&addr)
    }

    /// Gives up ownership of the mapping without unmapping it, returning
    /// its address and size. Use [`Stack::from_raw`] to take it back.
    ///
    /// ```
    /// use sure_stack::Stack;
    ///
    /// let stack = Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
    /// let bottom = stack.bottom();
    /// let raw = stack.into_raw();
    /// // SAFETY: `raw` comes from `into_raw` and is turned back only once.
    /// let stack = unsafe { Stack::from_raw(raw) };
    /// assert_eq!(stack.bottom(), bottom);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    #[must_use = "the mapping leaks unless it is passed back to Stack::from_raw"]
    pub fn into_raw(self) -> RawStack {
        let raw = RawStack {
            mapping: self.mapping,
            mapping_len: self.mapping_len,
        };
        core::mem::forget(self);
        raw
    }

    /// Takes back ownership of a mapping given up with [`Stack::into_raw`].
    ///
    /// # Safety
    ///
    /// * `raw` must have been returned by [`Stack::into_raw`] in this
    ///   process, with its fields unchanged.
    /// * It must be turned back into a `Stack` at most once: the returned
    ///   `Stack` owns the mapping and unmaps it when dropped.
    /// * The mapping must not have been unmapped or remapped in the meantime
    ///   (changing page protections is tolerated by this crate, but code
    ///   relying on [`bottom`](Stack::bottom)..[`top`](Stack::top) being
    ///   writable and the guard page faulting expects them restored).
    ///
    /// ```
    /// use sure_stack::Stack;
    ///
    /// let raw = Stack::allocate_at_least(sure_stack::DEFAULT_STACK_SIZE)?.into_raw();
    /// // SAFETY: `raw` was just produced by `into_raw` and is used once.
    /// let stack = unsafe { Stack::from_raw(raw) };
    /// assert_eq!(stack.len(), sure_stack::DEFAULT_STACK_SIZE);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub unsafe fn from_raw(raw: RawStack) -> Stack {
        debug_assert!(raw.mapping_len >= 2 * page_size());
        debug_assert_eq!(raw.mapping_len % page_size(), 0);
        debug_assert_eq!(raw.mapping.as_ptr() as usize % page_size(), 0);
        Stack {
            mapping: raw.mapping,
            mapping_len: raw.mapping_len,
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: `self` exclusively owns the whole mapping (created by
        // `allocate_at_least`, or handed back through `from_raw` whose
        // contract guarantees the same), and after drop nothing can reach it
        // through this `Stack`. Unmapping the whole mapping splits nothing, so
        // it cannot fail for lack of mappings; should it fail anyway the
        // memory merely leaks.
        let _ = unsafe { mman::munmap(self.mapping.cast(), self.mapping_len) };
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let guard = self.guard();
        f.debug_struct("Stack")
            .field("bottom", &self.bottom())
            .field("top", &self.top())
            .field("len", &self.len())
            .field(
                "guard",
                &format_args!("{:#x}..{:#x}", guard.start, guard.end),
            )
            .finish()
    }
}

/// A stack's mapping without ownership: what [`Stack::into_raw`] returns and
/// [`Stack::from_raw`] takes back.
///
/// It describes the **whole** mapping, guard page included: the guard page is
/// the first page at `mapping`, and the usable region is the rest, from
/// `mapping + page_size()` up to `mapping + mapping_len`. Holding a
/// `RawStack` does not keep the memory alive, and dropping it does not free
/// it.
///
/// ```
/// let stack = sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
/// let (bottom, len) = (stack.bottom(), stack.len());
/// let raw = stack.into_raw();
/// assert_eq!(raw.mapping_len, len + sure_stack::page_size());
/// assert_eq!(raw.mapping.as_ptr() as usize + sure_stack::page_size(), bottom.as_ptr() as usize);
/// // SAFETY: `raw` comes from `into_raw` and is turned back only once.
/// drop(unsafe { sure_stack::Stack::from_raw(raw) });
/// # Ok::<(), sure_stack::StackError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawStack {
    /// Start of the mapping: the lowest address of the guard page. Page
    /// aligned.
    pub mapping: NonNull<u8>,
    /// Length of the whole mapping in bytes, guard page included: the usable
    /// size plus one page.
    pub mapping_len: usize,
}

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
    /// Idle stacks; the last one is the most recently returned.
    free: Vec<Stack>,
    /// Usable size of every stack in the pool (rounded to pages).
    stack_size: usize,
    /// Most stacks held idle.
    capacity: usize,
}

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
            free: Vec::new(),
            stack_size: usable_len(stack_size)?,
            capacity,
        })
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
        if self.free.len() > capacity {
            // Keep the most recently returned stacks (the end of the list).
            let excess = self.free.len() - capacity;
            self.free.drain(..excess);
            self.free.shrink_to(capacity);
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
        self.free.len()
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
        self.free.is_empty()
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
        match self.free.pop() {
            Some(stack) => Ok(stack),
            None => Stack::allocate_at_least(self.stack_size),
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
        if self.free.len() < self.capacity && stack.len() == self.stack_size {
            self.free.push(stack);
        }
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
        self.free.clear();
    }
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPool")
            .field("stack_size", &self.stack_size)
            .field("capacity", &self.capacity)
            .field("len", &self.free.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_limit_needs_both_numbers_and_the_margin() {
        assert!(!near_mapping_limit(None, Some(65530)));
        assert!(!near_mapping_limit(Some(65530), None));
        assert!(!near_mapping_limit(Some(100), Some(65530)));
        assert!(near_mapping_limit(
            Some(65530 - MAP_COUNT_MARGIN),
            Some(65530)
        ));
        assert!(near_mapping_limit(Some(65530), Some(65530)));
        assert!(near_mapping_limit(Some(3), Some(2)));
    }

    #[test]
    fn mprotect_enomem_is_the_mapping_limit() {
        let err = classify("mprotect", 1 << 20, Errno::ENOMEM);
        assert!(
            matches!(
                err,
                StackError::MappingLimit {
                    call: "mprotect",
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        for needle in [
            "vm.max_map_count",
            "two",
            "65530",
            "32,750",
            "sysctl -w vm.max_map_count=",
            "free stacks",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing from {msg:?}");
        }
    }

    #[test]
    fn mmap_enomem_far_from_the_limit_is_a_map_error() {
        // This test process uses far fewer mappings than the limit.
        let err = classify("mmap", 1 << 20, Errno::ENOMEM);
        assert!(
            matches!(
                err,
                StackError::Map {
                    call: "mmap",
                    errno: Errno::ENOMEM,
                    bytes: 1_048_576
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("mmap"), "{msg}");
        assert!(msg.contains("1048576"), "{msg}");
        assert!(msg.contains("ENOMEM"), "{msg}");
    }

    #[test]
    fn other_errnos_are_map_errors() {
        let err = classify("mprotect", 8192, Errno::EACCES);
        assert!(
            matches!(
                err,
                StackError::Map {
                    call: "mprotect",
                    errno: Errno::EACCES,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn max_stack_size_leaves_room_for_the_guard() {
        let max = max_stack_size();
        assert_eq!(max % page_size(), 0);
        assert!(max + page_size() <= isize::MAX as usize);
        assert_eq!(usable_len(max).ok(), Some(max));
        assert!(usable_len(max + 1).is_err());
    }
}
