//! The system calls behind a [`Stack`](crate::Stack): one file per system.
//!
//! Each gives `map_guarded(mapping_len)`, a fresh mapping of that many
//! bytes whose first page is inaccessible (the guard page), followed by
//! `overflow_room()` bytes of `PAGE_GUARD` pages (Windows; none on Unix),
//! and whose rest is readable and writable; `unmap(mapping, mapping_len)`;
//! and for the usage figures `resident(at, pages)` (up to `BATCH` pages)
//! and `discard(at, len)`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
