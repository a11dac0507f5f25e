//! The system calls behind a [`Stack`](crate::Stack): one file per system.
//!
//! Each gives `map_guarded(mapping_len)`, a fresh mapping of that many
//! bytes whose first page is inaccessible (the guard page) and whose rest
//! is readable and writable, and `unmap(mapping, mapping_len)`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
