//! `VirtualAlloc`, `VirtualProtect` and `VirtualFree`; `QueryWorkingSetEx`.
//!
//! The whole stack is reserved and committed at once, read-write, with its
//! lowest page `PAGE_NOACCESS`: a hard guard page, as at the end of a
//! Windows thread's stack. The [`overflow_room`] above it, between that
//! page and the usable region, is `PAGE_GUARD`: the first touch there
//! raises an exception while there is still stack to handle it on (an
//! exception is dispatched on the stack that faulted, and one that cannot
//! be is fatal at once), and the overflow report runs in those pages.
//!
//! Committing charges the stack against the system's commit limit (the
//! page file), but takes no physical memory: a page costs memory only once
//! it is touched, as on Linux. A thread's own
//! stack instead commits as it grows, through a `PAGE_GUARD` page that the
//! kernel moves down; committing up front keeps a coroutine's stack limit
//! fixed, so the thread environment block's `StackLimit` can be set once
//! per stack (see sure-context's `x86_64_windows`).

use core::mem::MaybeUninit;
use core::num::NonZeroUsize;
use core::ptr::{self, NonNull};
use std::io;

use windows_sys::Win32::System::Memory::{
    MEM_COMMIT, MEM_DECOMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_GUARD, PAGE_NOACCESS,
    PAGE_PROTECTION_FLAGS, PAGE_READWRITE, VirtualAlloc, VirtualFree, VirtualProtect,
};
use windows_sys::Win32::System::ProcessStatus::{
    PSAPI_WORKING_SET_EX_INFORMATION, QueryWorkingSetEx,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use crate::StackError;
use crate::error::last_error;
use crate::page_size;

/// The pages of [`overflow_room`]. A context on the stack gets them as its
/// `GuaranteedStackBytes` (sure-context's `setup_guarded`): Windows raises
/// its stack-overflow exception at the first touch of a guaranteed page
/// and makes them all usable for the handlers, 16 KiB here (Rust's own
/// handler asks 20 KiB of a thread; this report, a 1 KiB message and a
/// `WriteFile`, needs less).
const OVERFLOW_ROOM_PAGES: usize = 4;

/// The bytes between a stack's guard page and its usable region kept for
/// reporting its overflow: code that reaches them has overflowed.
pub(crate) fn overflow_room() -> usize {
    OVERFLOW_ROOM_PAGES * page_size()
}

/// A fresh committed mapping of `mapping_len` bytes (more than
/// [`overflow_room`] and a page), its first page `PAGE_NOACCESS` and the
/// room above it `PAGE_GUARD`.
///
/// # Errors
/// [`StackError::Map`] with what Windows reported.
pub(crate) fn map_guarded(mapping_len: NonZeroUsize) -> Result<NonNull<u8>, StackError> {
    // SAFETY: a fresh allocation at an address of the system's choosing
    // affects no existing memory.
    let mapping = unsafe {
        VirtualAlloc(
            ptr::null(),
            mapping_len.get(),
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
        )
    };
    let Some(mapping) = NonNull::new(mapping.cast::<u8>()) else {
        return Err(last_error("VirtualAlloc", mapping_len.get()));
    };
    let page = page_size();
    let layout: [(usize, usize, PAGE_PROTECTION_FLAGS); 2] = [
        (0, page, PAGE_NOACCESS),
        (page, overflow_room(), PAGE_READWRITE | PAGE_GUARD),
    ];
    for (offset, len, protection) in layout {
        let mut old = 0;
        // SAFETY: these pages of the allocation we just made belong to us
        // alone and nothing points into them yet.
        if unsafe {
            VirtualProtect(
                mapping.as_ptr().add(offset).cast(),
                len,
                protection,
                &mut old,
            )
        } == 0
        {
            let error = last_error("VirtualProtect", mapping_len.get());
            // SAFETY: the allocation is ours, and nothing refers to it.
            unsafe { unmap(mapping, mapping_len.get()) };
            return Err(error);
        }
    }
    Ok(mapping)
}

/// Frees what [`map_guarded`] allocated.
///
/// # Safety
/// `mapping` is an allocation of `map_guarded`'s that nothing uses any
/// more.
pub(crate) unsafe fn unmap(mapping: NonNull<u8>, _mapping_len: usize) {
    // SAFETY: by the contract; MEM_RELEASE frees the whole allocation (its
    // size must be 0). Should it fail, the memory merely leaks.
    let _ = unsafe { VirtualFree(mapping.as_ptr().cast(), 0, MEM_RELEASE) };
}

/// The most pages [`resident`] looks at in one call.
pub(crate) const BATCH: usize = 256;

/// Whether each of the `pages` pages from `at` (at most [`BATCH`]) is in
/// the process's working set (resident), by `QueryWorkingSetEx`.
///
/// # Safety
/// `at` is page aligned, and the pages are inside a live allocation.
pub(crate) unsafe fn resident(at: usize, pages: usize) -> io::Result<impl Iterator<Item = bool>> {
    let pages = pages.min(BATCH);
    let mut info = [const { MaybeUninit::<PSAPI_WORKING_SET_EX_INFORMATION>::zeroed() }; BATCH];
    for (page, entry) in info.iter_mut().take(pages).enumerate() {
        // SAFETY: a zeroed entry is a valid one; only its address is set.
        unsafe { (*entry.as_mut_ptr()).VirtualAddress = (at + page * page_size()) as *mut _ };
    }
    // SAFETY: `info` holds `pages` entries with their addresses set, and is
    // at least as long as the size passed; the call fills in their
    // attributes.
    let ok = unsafe {
        QueryWorkingSetEx(
            GetCurrentProcess(),
            info.as_mut_ptr().cast(),
            (pages * size_of::<PSAPI_WORKING_SET_EX_INFORMATION>()) as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.into_iter().take(pages).map(|entry| {
        // SAFETY: every entry was zeroed and then filled in by the call; bit
        // 0 of the attributes is `Valid`: the page is in the working set.
        unsafe { entry.assume_init().VirtualAttributes.Flags & 1 != 0 }
    }))
}

/// Replaces the `len` bytes from `at` with zero pages that cost nothing
/// until written: decommitted, then committed again.
///
/// # Safety
/// `at` and `len` are page aligned, inside a live allocation of
/// [`map_guarded`]'s, and nothing there is in use.
pub(crate) unsafe fn discard(at: usize, len: usize) -> io::Result<()> {
    // SAFETY: by the contract.
    if unsafe { VirtualFree(at as *mut _, len, MEM_DECOMMIT) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the same pages, reserved by that allocation and free now.
    if unsafe { VirtualAlloc(at as *const _, len, MEM_COMMIT, PAGE_READWRITE) }.is_null() {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
