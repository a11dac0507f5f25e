//! `mmap`, `mprotect` and `munmap`; `mincore` and `madvise`.

use core::num::NonZeroUsize;
use core::ptr::NonNull;
use std::io;

use nix::libc::{self, c_void};
use nix::sys::mman::{self, MapFlags, ProtFlags};

use crate::StackError;
use crate::error::classify;
use crate::page_size;

/// The bytes between a stack's guard page and its usable region kept for
/// reporting its overflow: none, as the report runs on the signal stack.
pub(crate) const fn overflow_room() -> usize {
    0
}

/// A fresh private mapping of `mapping_len` bytes (at least two pages),
/// lazily backed (`MAP_NORESERVE`), its first page `PROT_NONE`.
///
/// # Errors
/// [`StackError::MappingLimit`] or [`StackError::Map`], as `classify` tells.
pub(crate) fn map_guarded(mapping_len: NonZeroUsize) -> Result<NonNull<u8>, StackError> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE | MapFlags::MAP_STACK;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE;

    // SAFETY: we ask for a fresh anonymous mapping at an address of the
    // kernel's choosing (no MAP_FIXED), so no existing memory is affected;
    // the result is only used through the returned pointer.
    let mapping = unsafe {
        mman::mmap_anonymous(
            None,
            mapping_len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            flags,
        )
    }
    .map_err(|errno| classify("mmap", mapping_len.get(), errno))?;

    // SAFETY: the first page of the mapping we just created belongs to us
    // alone and nothing points into it yet; making it inaccessible
    // invalidates no reference.
    if let Err(errno) = unsafe { mman::mprotect(mapping, page_size(), ProtFlags::PROT_NONE) } {
        // Classified first: the mapping counts towards the limit it reports.
        let error = classify("mprotect", mapping_len.get(), errno);
        // SAFETY: the mapping is ours, and nothing refers to it.
        unsafe { unmap(mapping.cast(), mapping_len.get()) };
        return Err(error);
    }
    Ok(mapping.cast())
}

/// Unmaps what [`map_guarded`] mapped.
///
/// # Safety
/// `mapping..mapping + mapping_len` is a whole mapping of `map_guarded`'s
/// that nothing uses any more.
pub(crate) unsafe fn unmap(mapping: NonNull<u8>, mapping_len: usize) {
    // SAFETY: by the contract. Unmapping a whole mapping splits nothing, so
    // it cannot fail for lack of mappings; should it fail anyway the memory
    // merely leaks.
    let _ = unsafe { mman::munmap(mapping.cast(), mapping_len) };
}

/// The most pages [`resident`] looks at in one call.
pub(crate) const BATCH: usize = 256;

/// Whether each of the `pages` pages from `at` (at most [`BATCH`]) is
/// resident, by `mincore`.
///
/// # Safety
/// `at` is page aligned, and the pages are inside a live mapping.
pub(crate) unsafe fn resident(at: usize, pages: usize) -> io::Result<impl Iterator<Item = bool>> {
    let mut flags = [0u8; BATCH];
    let pages = pages.min(BATCH);
    // SAFETY: by the contract; mincore only reads the page tables and
    // writes one byte per page into `flags`, which has room.
    if unsafe { libc::mincore(at as *mut c_void, pages * page_size(), flags.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags.into_iter().take(pages).map(|flag| flag & 1 != 0))
}

/// Replaces the `len` bytes from `at` with zero pages that cost nothing
/// until written (`MADV_DONTNEED`).
///
/// # Safety
/// `at` and `len` are page aligned, inside a live private mapping, and
/// nothing there is in use.
pub(crate) unsafe fn discard(at: usize, len: usize) -> io::Result<()> {
    // SAFETY: by the contract.
    if unsafe { libc::madvise(at as *mut c_void, len, libc::MADV_DONTNEED) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
