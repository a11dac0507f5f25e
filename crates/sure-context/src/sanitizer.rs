//! The sanitizer part of an [`ExecutionContext`](crate::ExecutionContext):
//! AddressSanitizer's fiber annotations around every switch with the `asan`
//! feature, and a zero-sized type whose hooks compile to nothing without it.
//!
//! AddressSanitizer keeps, per thread, the bounds of the stack it runs on:
//! to tell stack addresses from others in its reports, to unpoison the
//! frames a `noreturn` call or an unwind skips, and to find the fake stack
//! frames of `detect_stack_use_after_return`. A switch changes stacks
//! behind its back, so every switch is bracketed:
//!
//! - `__sanitizer_start_switch_fiber(&fake_stack, bottom, size)` just before
//!   it, naming the target's stack and saving the leaving side's fake stack
//!   (null instead of `&fake_stack` on the final exit, which frees it);
//! - `__sanitizer_finish_switch_fiber(fake_stack, &old_bottom, &old_size)`
//!   first thing on arrival, restoring the arriving side's fake stack and
//!   reporting the bounds of the stack the switch came from.
//!
//! The hooks, in the order a switch runs them: [`before_switch`] (or
//! [`before_exit`]) on the leaving side, the machine switch, then
//! [`after_switch`] on the side that continues (or [`after_start`], the
//! first code of a fresh context).
//!
//! # Stack bounds
//!
//! A context made by `setup` knows its bounds: the region it was given. A
//! context made by `new` saves a stack no one described to us, such as the
//! thread's own. Its bounds come from AddressSanitizer itself: the arriving
//! side of every switch is told the bounds of the stack it came from, and
//! stores them into the context that switched (the machine switch says
//! which one). So the context the thread's stack saved itself into learns
//! that stack's bounds as soon as the first switch out of it completes,
//! before anyone can switch back to it.
//!
//! [`before_switch`]: SanitizerContext::before_switch
//! [`before_exit`]: SanitizerContext::before_exit
//! [`after_switch`]: SanitizerContext::after_switch
//! [`after_start`]: SanitizerContext::after_start

#[cfg(feature = "asan")]
pub(crate) use asan::SanitizerContext;
#[cfg(not(feature = "asan"))]
pub(crate) use none::SanitizerContext;

/// With the `asan` feature: the stack bounds and the saved fake stack.
#[cfg(feature = "asan")]
mod asan {
    use core::cell::Cell;
    use core::ffi::c_void;
    use core::fmt;
    use core::ptr;

    // The AddressSanitizer runtime's fiber interface
    // (compiler-rt/include/sanitizer/common_interface_defs.h), and the call
    // that clears a region's poison.
    unsafe extern "C" {
        fn __sanitizer_start_switch_fiber(
            fake_stack_save: *mut *mut c_void,
            bottom: *const c_void,
            size: usize,
        );
        fn __sanitizer_finish_switch_fiber(
            fake_stack_save: *mut c_void,
            bottom_old: *mut *const c_void,
            size_old: *mut usize,
        );
        fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
    }

    /// A context's stack bounds, as AddressSanitizer sees them, and its
    /// fake stack while it is suspended. Cells, like the saved stack
    /// pointer: other executions write them while a switching call runs.
    #[repr(C)]
    pub(crate) struct SanitizerContext {
        /// Lowest address of the stack; null while unknown.
        stack_bottom: Cell<*const c_void>,
        /// Bytes of the stack; 0 while unknown.
        stack_size: Cell<usize>,
        /// The fake stack `__sanitizer_start_switch_fiber` saved on the way
        /// out, given back on arrival.
        fake_stack: Cell<*mut c_void>,
    }

    impl SanitizerContext {
        /// A context on a stack whose bounds are not known yet: they are
        /// learned when a switch out of it completes.
        pub(crate) const fn new() -> Self {
            SanitizerContext {
                stack_bottom: Cell::new(ptr::null()),
                stack_size: Cell::new(0),
                fake_stack: Cell::new(ptr::null_mut()),
            }
        }

        /// A context on the fresh stack `bottom..bottom + size`.
        ///
        /// Clears the region's poison: a stack used before (a pooled one)
        /// still carries the redzones of the frames its finished context
        /// never returned from, and new frames and data put there would
        /// trip over them.
        ///
        /// # Safety
        /// The region is memory the caller owns and that no live object
        /// uses (it is about to become a stack).
        pub(crate) unsafe fn with_stack(bottom: *const u8, size: usize) -> Self {
            // SAFETY: unpoisoning only changes shadow memory; the region is
            // the caller's unused stack, so no redzone of a live object
            // lies in it.
            unsafe { __asan_unpoison_memory_region(bottom.cast(), size) };
            SanitizerContext {
                stack_bottom: Cell::new(bottom.cast()),
                stack_size: Cell::new(size),
                fake_stack: Cell::new(ptr::null_mut()),
            }
        }

        /// Before a switch from the running execution (saved into `self`)
        /// to `target`: tells AddressSanitizer which stack comes next and
        /// saves our fake stack.
        ///
        /// # Safety
        /// The switch to `target` follows at once, and the execution it
        /// continues calls [`after_switch`](Self::after_switch) or
        /// [`after_start`](Self::after_start) first.
        #[inline(always)]
        pub(crate) unsafe fn before_switch(&self, target: &SanitizerContext) {
            debug_assert!(
                target.stack_size.get() != 0,
                "switching to a context whose stack bounds are unknown"
            );
            // SAFETY: the cell is valid for a write; the bounds are those of
            // the target's stack, and the caller completes the switch.
            unsafe {
                __sanitizer_start_switch_fiber(
                    self.fake_stack.as_ptr(),
                    target.stack_bottom.get(),
                    target.stack_size.get(),
                )
            }
        }

        /// First thing after a switch continued the execution saved in
        /// `self`: gives back our fake stack and stores the bounds of the
        /// stack we came from into `from`, the context that switched here
        /// (null after an exit: that stack is gone).
        ///
        /// # Safety
        /// A switch announced by [`before_switch`](Self::before_switch) or
        /// [`before_exit`](Self::before_exit) has just arrived here; `from`
        /// is null or the sanitizer part of the context it saved into,
        /// valid and not continued yet.
        #[inline(always)]
        pub(crate) unsafe fn after_switch(&self, from: *const SanitizerContext) {
            // SAFETY: as the caller guarantees.
            unsafe { finish(self.fake_stack.get(), from) }
        }

        /// The final switch out of a finished execution to `target`: frees
        /// the running execution's fake stack.
        ///
        /// # Safety
        /// As [`before_switch`](Self::before_switch).
        #[inline(always)]
        pub(crate) unsafe fn before_exit(target: &SanitizerContext) {
            // SAFETY: a null save location is the documented way to leave a
            // fiber for good; the bounds are the target's.
            unsafe {
                __sanitizer_start_switch_fiber(
                    ptr::null_mut(),
                    target.stack_bottom.get(),
                    target.stack_size.get(),
                )
            }
        }

        /// The first code of a fresh context: completes the switch into it,
        /// as [`after_switch`](Self::after_switch) with no fake stack to
        /// give back.
        ///
        /// # Safety
        /// As [`after_switch`](Self::after_switch).
        #[inline(always)]
        pub(crate) unsafe fn after_start(from: *const SanitizerContext) {
            // SAFETY: as the caller guarantees.
            unsafe { finish(ptr::null_mut(), from) }
        }
    }

    /// `__sanitizer_finish_switch_fiber`, with the old stack's bounds
    /// stored into `from`; or, when `from` is null (the switch was the final
    /// exit of a finished context), with that stack's poison cleared.
    ///
    /// A finished context never returns from its last frames, so their
    /// redzones stay poisoned. Its stack is free memory now, and will be
    /// reused (a pooled stack) by code that trips over them: data written
    /// at its top, new frames below.
    ///
    /// # Safety
    /// As [`SanitizerContext::after_switch`].
    #[inline(always)]
    unsafe fn finish(fake_stack: *mut c_void, from: *const SanitizerContext) {
        if from.is_null() {
            let mut bottom = ptr::null();
            let mut size = 0;
            // SAFETY: a switch is in progress (the contract); the
            // out-pointers are valid locals.
            unsafe { __sanitizer_finish_switch_fiber(fake_stack, &mut bottom, &mut size) };
            // SAFETY: `bottom..bottom + size` is the stack of the context
            // that exited, which nothing uses as a stack any more; only the
            // shadow memory changes.
            unsafe { __asan_unpoison_memory_region(bottom, size) };
        } else {
            // SAFETY: a switch is in progress (the contract); `from` is
            // valid, and its cells may be written through a shared pointer.
            unsafe {
                __sanitizer_finish_switch_fiber(
                    fake_stack,
                    (*from).stack_bottom.as_ptr(),
                    (*from).stack_size.as_ptr(),
                )
            }
        }
    }

    impl fmt::Debug for SanitizerContext {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SanitizerContext")
                .field("stack_bottom", &self.stack_bottom.get())
                .field("stack_size", &self.stack_size.get())
                .finish_non_exhaustive()
        }
    }
}

/// Without the `asan` feature: nothing to keep, nothing to do.
#[cfg(not(feature = "asan"))]
mod none {
    /// The sanitizer part of a context when no sanitizer is annotated:
    /// zero-sized, and every hook is empty.
    #[derive(Debug)]
    pub(crate) struct SanitizerContext;

    impl SanitizerContext {
        /// Nothing to record.
        #[inline(always)]
        pub(crate) const fn new() -> Self {
            SanitizerContext
        }

        /// Nothing to record.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the annotated version.
        #[inline(always)]
        pub(crate) unsafe fn with_stack(_bottom: *const u8, _size: usize) -> Self {
            SanitizerContext
        }

        /// Does nothing.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the annotated version.
        #[inline(always)]
        pub(crate) unsafe fn before_switch(&self, _target: &SanitizerContext) {}

        /// Does nothing.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the annotated version.
        #[inline(always)]
        pub(crate) unsafe fn after_switch(&self, _from: *const SanitizerContext) {}

        /// Does nothing.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the annotated version.
        #[inline(always)]
        pub(crate) unsafe fn before_exit(_target: &SanitizerContext) {}

        /// Does nothing.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the annotated version.
        #[inline(always)]
        pub(crate) unsafe fn after_start(_from: *const SanitizerContext) {}
    }
}
