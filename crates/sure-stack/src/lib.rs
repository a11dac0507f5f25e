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
//! On x86-64, aarch64 and riscv64 the stack grows towards lower addresses, so a
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
//! exhaustion) and Windows, where a stack is one `VirtualAlloc`
//! reservation, committed whole (which charges the commit limit but, as on
//! Linux, takes memory only for the pages touched), with a `PAGE_NOACCESS`
//! guard page and, above it, four `PAGE_GUARD` pages: the room Windows
//! needs to raise and report an overflow on the stack that overflowed.
//! Overflow reports ([`overflow`]) come from a signal handler on Linux and
//! a vectored exception handler on Windows.

use std::sync::atomic::{AtomicUsize, Ordering};

mod bounds;
mod error;
mod label;
mod mapping;
pub mod overflow;
mod pool;
mod stack;
mod usage;
mod valgrind;

pub use bounds::stack_bounds;
pub use error::StackError;
pub use label::LABEL_BYTES;
pub use pool::StackPool;
pub use stack::{RawStack, Stack};

/// The default usable size of a coroutine stack: 256 KiB.
///
/// Thanks to lazy mapping only the pages a coroutine actually touches cost
/// memory, so a generous default is cheap.
///
/// ```
/// assert_eq!(sure_stack::DEFAULT_STACK_SIZE, 256 * 1024);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The smallest stack size [`Stack::allocate_at_least`] accepts: 32 KiB on
/// x86-64 Linux, 48 KiB on aarch64, riscv64 and Windows.
///
/// Below this, ordinary code overflows into the guard page too easily for a
/// stack to be useful. The measure is printing a backtrace (what the default
/// panic hook does under `RUST_BACKTRACE=1`) in a debug build, which took
/// 29-32 KiB on x86-64, 41-44 KiB on aarch64 and 37-40 KiB on riscv64 Linux
/// (on x86-64 Windows, under wine, 32 KiB overflowed and 48 KiB did not)
/// (`sure-coro`'s test `the_smallest_stack_can_print_a_backtrace` checks
/// it). Requests below it are rejected with [`StackError::InvalidSize`].
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
pub const MIN_STACK_SIZE: usize = if cfg!(all(target_arch = "x86_64", not(windows))) {
    32 * 1024
} else {
    48 * 1024
};

/// The size of a memory page in bytes (4096 on most systems).
///
/// The value is queried from the system once and cached in a plain atomic,
/// so calling this is a load and a branch: rounding a stack's size uses it
/// ([`Stack::usable_size`]).
///
/// ```
/// let page = sure_stack::page_size();
/// assert!(page.is_power_of_two());
/// ```
#[inline]
pub fn page_size() -> usize {
    match PAGE_SIZE.load(Ordering::Relaxed) {
        0 => query_page_size(),
        page => page,
    }
}

/// The cached page size; 0 until first queried. Every thread that races to
/// fill it stores the same value, so relaxed ordering is enough.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The smallest page size this crate accepts (every supported system's is
/// at least this): every stack's bottom and length are multiples of it,
/// which [`Stack::region`] tells the compiler.
pub(crate) const MIN_PAGE_SIZE: usize = 4096;

#[cold]
fn query_page_size() -> usize {
    let page = region::page::size();
    // Every system's is; the crate rounds with masks, and no stack exists
    // before this is checked (its length is rounded to pages).
    assert!(
        page.is_power_of_two() && page >= MIN_PAGE_SIZE,
        "the system's page size, {page} bytes, is not a power of two of at least \
         {MIN_PAGE_SIZE} bytes"
    );
    PAGE_SIZE.store(page, Ordering::Relaxed);
    page
}

/// The crate README's examples (its crates.io page), compiled and run as
/// doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
