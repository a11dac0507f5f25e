//! What keeps a coroutine on its thread, under names the compiler's
//! errors show.
//!
//! Moving a `Coroutine` to another thread fails to compile. Left to raw
//! pointers, the error named `NonNull<sure_coro::root::Header<..>>` and
//! `*mut ((), (), ())`; with the pointers wrapped in [`StackPtr`] (which
//! does not decide `Send` itself) and the reason in one marker, it reads
//! "required because it appears within the type `StaysOnItsThread`".

use std::marker::PhantomData;
use std::ptr::NonNull;

/// Makes the type holding it neither `Send` nor `Sync`: a coroutine's stack
/// holds values that need not be `Send`, and compiled code may cache a
/// thread-local's address across a suspend, so a coroutine, its handle and
/// its generator stay on the thread that created them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StaysOnItsThread(PhantomData<*mut ()>);

/// A pointer into a coroutine's own stack (its root, or the channel in
/// it). Only ever a field of a type that also holds [`StaysOnItsThread`],
/// which is what keeps those types on their thread.
pub(crate) struct StackPtr<T>(NonNull<T>);

impl<T> StackPtr<T> {
    pub(crate) fn new(ptr: NonNull<T>) -> Self {
        StackPtr(ptr)
    }

    pub(crate) fn as_ptr(&self) -> *mut T {
        self.0.as_ptr()
    }

    pub(crate) fn as_non_null(&self) -> NonNull<T> {
        self.0
    }
}

// SAFETY: a `StackPtr` is only a field of `Coroutine` and `SuspendHandle`,
// which hold `StaysOnItsThread` and so are neither `Send` nor `Sync`
// whatever this says; it says `Send` only so that the compiler's error
// names that marker, not a raw pointer.
unsafe impl<T> Send for StackPtr<T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for StackPtr<T> {}
