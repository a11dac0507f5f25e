//! [`Stack`], one guarded and lazily mapped coroutine stack, and [`RawStack`],
//! its mapping without ownership.

use core::fmt;
use core::num::NonZeroUsize;
use core::ops::Range;
use core::ptr::NonNull;

use crate::bounds;
use crate::mapping;
use crate::valgrind;
use crate::{MIN_PAGE_SIZE, MIN_STACK_SIZE, StackError, page_size};

/// The largest usable size that still leaves room for the guard page while
/// keeping the whole mapping within `isize::MAX` bytes (the most a Rust
/// object, and so a slice over the stack, may span).
///
/// A bound on the arithmetic only: no system can map anything near it, and
/// [`StackError::InvalidSize`] says so rather than offer it as a size to ask
/// for.
#[inline]
fn max_stack_size() -> usize {
    max_stack_size_with(page_size())
}

/// [`max_stack_size`] for pages of `page` bytes. Pages are a power of two
/// (see `query_page_size`): masks, not the divisions that cost a sized
/// create two of its slowest instructions.
#[inline]
fn max_stack_size_with(page: usize) -> usize {
    (isize::MAX as usize & !(page - 1)) - page - mapping::overflow_room()
}

/// The bytes below a stack's usable region: the guard page, and on Windows
/// the overflow room above it.
#[inline]
fn guard_len() -> usize {
    page_size() + mapping::overflow_room()
}

/// The error for a request of `requested` bytes that is below
/// [`MIN_STACK_SIZE`] or above [`max_stack_size`].
#[cold]
#[inline(never)]
fn invalid_size(requested: usize) -> StackError {
    StackError::InvalidSize {
        requested,
        min: MIN_STACK_SIZE,
        max: max_stack_size(),
    }
}

/// Validates a requested size and rounds it up to whole pages.
#[inline]
pub(crate) fn usable_len(requested: usize) -> Result<usize, StackError> {
    if requested < MIN_STACK_SIZE {
        return Err(invalid_size(requested));
    }
    let page = page_size();
    let page_mask = page - 1;
    match requested.checked_add(page_mask) {
        Some(bumped) if bumped & !page_mask <= max_stack_size_with(page) => Ok(bumped & !page_mask),
        _ => Err(invalid_size(requested)),
    }
}

/// A coroutine stack: one memory mapping with a `PROT_NONE` guard page at its
/// lowest address (on Windows a guard of five pages) and
/// [`len`](Stack::len) usable bytes above it.
///
/// The stack is move-only and unmaps its memory when dropped. See the
/// [crate documentation](crate) for the layout.
///
/// While a `Stack` owns its mapping, the usable region is registered with
/// Valgrind as a stack (`VALGRIND_STACK_REGISTER`; nothing happens outside
/// Valgrind), so that memcheck takes a coroutine switch onto it for a stack
/// switch rather than a giant stack frame. Registration happens once per
/// allocation, never on the switch path.
///
/// ```
/// use sure_stack::{page_size, Stack};
///
/// let stack = Stack::allocate_at_least(70_000)?;
/// assert_eq!(stack.len() % page_size(), 0);
/// assert!(stack.len() >= 70_000);
/// // The stack pointer of a new coroutine starts at the top and grows down.
/// assert_eq!(stack.top().as_ptr() as usize - stack.bottom().as_ptr() as usize, stack.len());
/// # Ok::<(), sure_stack::StackError>(())
/// ```
pub struct Stack {
    /// The lowest usable byte, one page above the start of the mapping (the
    /// guard page). Usable bounds are stored, not the mapping's, because
    /// they are what a coroutine is built from on every create; the mapping
    /// is derived only to unmap it.
    bottom: NonNull<u8>,
    /// Usable bytes: a multiple of the page size, at least MIN_STACK_SIZE.
    len: usize,
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
static_assertions::assert_impl_all!(RawStack: Copy, Eq, fmt::Debug);
// Two words, the usable bottom and length, so a `Stack` moves in registers
// (the id Valgrind gave it is kept with its bounds, in the registry).
static_assertions::const_assert!(size_of::<Stack>() == 2 * size_of::<usize>());
static_assertions::const_assert!(size_of::<Option<Stack>>() == 2 * size_of::<usize>());

impl Stack {
    /// The usable length [`allocate_at_least`](Stack::allocate_at_least)
    /// gives a stack asked for `bytes`: `bytes` rounded up to whole pages.
    /// Maps nothing; a pool keyed by size can use it to find its pool.
    ///
    /// # Errors
    /// [`StackError::InvalidSize`], as `allocate_at_least` would return it.
    ///
    /// ```
    /// use sure_stack::{page_size, Stack};
    ///
    /// assert_eq!(Stack::usable_size(64 * 1024 + 1)?, 64 * 1024 + page_size());
    /// assert!(Stack::usable_size(0).is_err());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn usable_size(bytes: usize) -> Result<usize, StackError> {
        usable_len(bytes)
    }

    /// Allocates a stack of at least `bytes` usable bytes.
    ///
    /// The size is rounded up to whole pages, and the guard (one page; five
    /// on Windows) is added below the usable region, so [`len`](Stack::len) is `bytes` rounded up
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
        crate::overflow::prepare_thread();
        Stack::map(bytes)
    }

    /// [`allocate_at_least`](Stack::allocate_at_least) without preparing the
    /// thread for overflow reports (which itself maps a stack this way).
    pub(crate) fn map(bytes: usize) -> Result<Stack, StackError> {
        let usable = usable_len(bytes)?;
        // Cannot overflow: `usable <= max_stack_size()`, which leaves room for
        // the guard below `isize::MAX`.
        let mapping_len = usable + guard_len();
        let Some(length) = NonZeroUsize::new(mapping_len) else {
            // Unreachable in practice: `usable >= MIN_STACK_SIZE > 0`.
            return Err(invalid_size(bytes));
        };

        let mapping = mapping::map_guarded(length)?;
        Ok(Stack::own(mapping, mapping_len))
    }

    /// Takes ownership of the mapping at `mapping`, records its usable
    /// bounds, and registers them with Valgrind (a no-op when not running
    /// under Valgrind), so that memcheck sees a switch onto this stack as a
    /// stack switch; the registry of bounds keeps Valgrind's id for it.
    #[inline]
    fn own(mapping: NonNull<u8>, mapping_len: usize) -> Stack {
        let guard = guard_len();
        let stack = Stack {
            // SAFETY: the mapping is longer than its guard, so the end of
            // the guard is still inside it.
            bottom: unsafe { mapping.add(guard) },
            len: mapping_len - guard,
        };
        let valgrind_id = valgrind::stack_register(stack.bottom().as_ptr(), stack.top().as_ptr());
        bounds::register(
            stack.bottom().as_ptr() as usize,
            stack.top().as_ptr() as usize,
            valgrind_id,
        );
        stack
    }

    /// Gives up the mapping's records: its bounds, and Valgrind's stack.
    fn disown(&self) {
        // Under Valgrind, 0 is a real id: only a recorded one is deregistered.
        if let Some(valgrind_id) = bounds::deregister(self.top().as_ptr() as usize) {
            valgrind::stack_deregister(valgrind_id);
        }
    }

    /// Gives the stack up as its bottom, one word, for a free list of
    /// stacks that share a length (as [`StackPool`](crate::StackPool) and
    /// sure-coro's pools keep them): the stack stays mapped and registered
    /// ([`stack_bounds`](crate::stack_bounds) and Valgrind still know it),
    /// owned by whoever holds the pointer. Free it only by taking it back
    /// with [`from_idle`](Stack::from_idle) and dropping that, never by
    /// unmapping it by hand; a pointer never taken back leaks the stack.
    ///
    /// ```
    /// let stack = sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
    /// let len = stack.len();
    /// let bottom = stack.into_idle();
    /// // SAFETY: `bottom` came from `into_idle` on a stack of `len` bytes,
    /// // and is taken back once.
    /// let stack = unsafe { sure_stack::Stack::from_idle(bottom, len) };
    /// assert_eq!(stack.bottom(), bottom);
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    #[must_use = "the stack is leaked unless `Stack::from_idle` takes it back"]
    pub fn into_idle(self) -> NonNull<u8> {
        core::mem::ManuallyDrop::new(self).bottom
    }

    /// Takes back a stack given up with [`into_idle`](Stack::into_idle).
    ///
    /// # Safety
    /// `bottom` came unchanged from `into_idle` on a stack of `len` usable
    /// bytes in this process, is taken back at most once, and its mapping
    /// has not been unmapped or remapped since.
    #[inline]
    pub unsafe fn from_idle(bottom: NonNull<u8>, len: usize) -> Stack {
        Stack { bottom, len }
    }

    /// The whole mapping, guard included.
    fn mapping(&self) -> RawStack {
        let guard = guard_len();
        RawStack {
            // SAFETY: the guard lies just below `bottom`, inside the same
            // mapping.
            mapping: unsafe { self.bottom.sub(guard) },
            mapping_len: self.len + guard,
        }
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
        self.bottom
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
        // arithmetic (the mapping is a single allocation of at most
        // `isize::MAX` bytes, ending `len` bytes above `bottom`).
        unsafe { self.bottom.add(self.len) }
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
        self.len
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
        // SAFETY: a stack's bottom and length are whole pages, at least
        // MIN_STACK_SIZE bytes: `own` takes a page-aligned mapping of whole
        // pages, from `map` (whose `usable_len` refuses fewer bytes) or back
        // from `from_raw`, `from_idle` gives back such a stack, and no stack
        // exists before the page size was checked to be at least
        // MIN_PAGE_SIZE. Said here, it lets code laying data out below the
        // top fold its alignment and room checks.
        unsafe {
            core::hint::assert_unchecked(
                (self.bottom.as_ptr() as usize).is_multiple_of(MIN_PAGE_SIZE)
                    && self.len.is_multiple_of(MIN_PAGE_SIZE)
                    && self.len >= crate::MIN_STACK_SIZE,
            );
        }
        NonNull::slice_from_raw_parts(self.bottom, self.len)
    }

    /// The addresses of the guard: from the start of the mapping up to
    /// (excluding) [`bottom`](Stack::bottom). Any access there faults. It is
    /// one page, and on Windows five: the `PAGE_NOACCESS` page and the four
    /// `PAGE_GUARD` pages of overflow room above it (see the
    /// [crate docs](crate)). A context on the stack is set up with it:
    /// `sure_context::ExecutionContext::setup_guarded(stack.region(),
    /// stack.guard().len(), ..)`.
    ///
    /// ```
    /// let stack = sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
    /// let pages = if cfg!(windows) { 5 } else { 1 };
    /// assert_eq!(stack.guard().len(), pages * sure_stack::page_size());
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    #[inline]
    pub fn guard(&self) -> Range<usize> {
        let end = self.bottom.as_ptr() as usize;
        end - guard_len()..end
    }

    /// Whether `addr` lies within the guard ([`guard`](Stack::guard)), for
    /// example the faulting address of a `SIGSEGV` caused by a stack
    /// overflow.
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
    /// Under Valgrind the region stops being a registered stack until
    /// [`Stack::from_raw`] registers it again: a [`RawStack`] is only an
    /// address and a size, and whoever holds it may unmap it.
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
        let raw = self.mapping();
        self.disown();
        core::mem::forget(self);
        raw
    }

    /// Takes back ownership of a mapping given up with [`Stack::into_raw`],
    /// registering its usable region with Valgrind again.
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
        Stack::own(raw.mapping, raw.mapping_len)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Valgrind and the registry of bounds forget the stack before it is
        // unmapped, so neither ever covers memory that a later mapping reuses.
        self.disown();
        let RawStack {
            mapping,
            mapping_len,
        } = self.mapping();
        // SAFETY: `self` exclusively owns the whole mapping (created by
        // `allocate_at_least`, or handed back through `from_raw` whose
        // contract guarantees the same), and after drop nothing can reach it
        // through this `Stack`.
        unsafe { mapping::unmap(mapping, mapping_len) };
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
/// It describes the **whole** mapping, guard included: the guard is the
/// first [`Stack::guard`] bytes at `mapping` (one page; four on Windows), and
/// the usable region is the rest, up to `mapping + mapping_len`. Holding a
/// `RawStack` does not keep the memory alive, and dropping it does not free
/// it.
///
/// ```
/// let stack = sure_stack::Stack::allocate_at_least(sure_stack::MIN_STACK_SIZE)?;
/// let (bottom, len, guard) = (stack.bottom(), stack.len(), stack.guard().len());
/// let raw = stack.into_raw();
/// assert_eq!(raw.mapping_len, len + guard);
/// assert_eq!(raw.mapping.as_ptr() as usize + guard, bottom.as_ptr() as usize);
/// // SAFETY: `raw` comes from `into_raw` and is turned back only once.
/// drop(unsafe { sure_stack::Stack::from_raw(raw) });
/// # Ok::<(), sure_stack::StackError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawStack {
    /// Start of the mapping: the lowest address of the guard page. Page
    /// aligned.
    pub mapping: NonNull<u8>,
    /// Length of the whole mapping in bytes, guard included: the usable size
    /// plus the guard's.
    pub mapping_len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_stack_size_leaves_room_for_the_guard() {
        let max = max_stack_size();
        assert_eq!(max % page_size(), 0);
        assert!(max + guard_len() <= isize::MAX as usize);
        assert_eq!(usable_len(max).ok(), Some(max));
        assert!(usable_len(max + 1).is_err());
    }

    #[test]
    fn invalid_sizes_say_what_is_wrong() {
        let small = |requested: &str| {
            format!(
                "invalid stack size of {requested}: a stack needs at least {MIN_STACK_SIZE} \
                 bytes (MIN_STACK_SIZE), so ask for at least that; the size is then rounded up \
                 to whole pages and a guard is added below it"
            )
        };
        let err = usable_len(0).unwrap_err();
        assert!(
            matches!(err, StackError::InvalidSize { requested: 0, min: MIN_STACK_SIZE, max, .. }
                if max == max_stack_size()),
            "{err:?}"
        );
        assert_eq!(err.to_string(), small("0 bytes"));
        assert_eq!(usable_len(1).unwrap_err().to_string(), small("1 byte"));
        assert_eq!(usable_len(2).unwrap_err().to_string(), small("2 bytes"));

        for huge in [usize::MAX, max_stack_size() + 1] {
            assert_eq!(
                usable_len(huge).unwrap_err().to_string(),
                format!(
                    "invalid stack size of {huge} bytes: no stack can be that large. Rounded up \
                     to whole pages with the guard added, a stack of more than {} bytes \
                     would span more than isize::MAX bytes, which no mapping may, and what the \
                     address space, `ulimit -v` and vm.overcommit_memory really allow is far \
                     less; ask for a smaller stack",
                    max_stack_size()
                )
            );
        }
    }
}
