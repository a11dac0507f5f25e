//! The ThreadSanitizer part of an [`ExecutionContext`](crate::ExecutionContext):
//! TSan's fiber annotations before every switch with the `tsan` feature,
//! and a zero-sized type whose hooks compile to nothing without it.
//!
//! ThreadSanitizer keeps, per thread, a vector clock and a shadow call
//! stack. A switch changes executions behind its back, so every execution
//! gets a TSan *fiber* of its own and every switch is announced by
//! `__tsan_switch_to_fiber(target, 0)` immediately before the machine
//! switch (flags 0: the switch synchronises the two executions, as it
//! does). Nothing is needed on arrival, so this part has no
//! `after_switch` hook.
//!
//! - A context saved from a stack no one described to us (one made by
//!   `new`, such as the thread's own) is the fiber running when it switches
//!   away: [`before_switch`] records `__tsan_get_current_fiber()` into it
//!   every time, so a context reused from another thread names that
//!   thread's fiber.
//! - A fresh context (made by `setup`) gets a new fiber from
//!   `__tsan_create_fiber(0)` when something first switches into it, so a
//!   context that is set up but never started costs TSan nothing.
//! - A finished context's fiber is destroyed on its [`exit_to`]: the
//!   exiting side first switches TSan to the target's fiber, after which
//!   the exiting fiber is no longer the current one and may be destroyed
//!   (what TSan requires), and only then does the machine switch leave the
//!   stack. The side that continues could not do it: a fresh context first
//!   entered by the exit does not know where its own context is, so there
//!   would be nowhere to hand it the fiber.
//!
//! [`before_switch`]: TsanContext::before_switch
//! [`exit_to`]: crate::ExecutionContext::exit_to

#[cfg(feature = "tsan")]
pub(crate) use annotated::TsanContext;
#[cfg(not(feature = "tsan"))]
pub(crate) use none::TsanContext;

/// With the `tsan` feature: the context's fiber.
#[cfg(feature = "tsan")]
mod annotated {
    use core::cell::Cell;
    use core::ffi::c_void;
    use core::fmt;
    use core::ptr;

    // The ThreadSanitizer runtime's fiber interface
    // (compiler-rt/include/sanitizer/tsan_interface.h).
    unsafe extern "C" {
        fn __tsan_get_current_fiber() -> *mut c_void;
        fn __tsan_create_fiber(flags: u32) -> *mut c_void;
        fn __tsan_destroy_fiber(fiber: *mut c_void);
        fn __tsan_switch_to_fiber(fiber: *mut c_void, flags: u32);
    }

    /// The TSan fiber of a context's execution. A cell, like the saved
    /// stack pointer: other executions read and write it while a switching
    /// call runs.
    #[repr(C)]
    pub(crate) struct TsanContext {
        /// The fiber; null until the context is first switched away from
        /// (made by `new`) or first switched into (made by `setup`).
        fiber: Cell<*mut c_void>,
    }

    impl TsanContext {
        /// A context saved from the running execution's stack: its fiber
        /// is recorded when it switches away.
        pub(crate) const fn new() -> Self {
            TsanContext {
                fiber: Cell::new(ptr::null_mut()),
            }
        }

        /// A fresh context: its fiber is created when it is first entered.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the other parts.
        pub(crate) unsafe fn with_stack(_bottom: *const u8, _size: usize) -> Self {
            Self::new()
        }

        /// Immediately before a switch from the running execution (saved
        /// into `self`) to `target`: records our fiber and switches TSan to
        /// the target's.
        ///
        /// # Safety
        /// The machine switch to `target` follows at once, in the same
        /// function (inlined: TSan's shadow call stack is the target
        /// fiber's from here on), and `target` is suspended.
        #[inline(always)]
        pub(crate) unsafe fn before_switch(&self, target: &TsanContext) {
            // SAFETY: asks the runtime for the running fiber; no argument.
            self.fiber.set(unsafe { __tsan_get_current_fiber() });
            // SAFETY: `target` is suspended (the contract), so its fiber is
            // one we recorded or created, or null for a fresh context; the
            // machine switch follows at once.
            unsafe { __tsan_switch_to_fiber(target.fiber_or_create(), 0) }
        }

        /// The final switch out of a finished execution to `target`:
        /// switches TSan to the target's fiber, then destroys the exiting
        /// execution's, which is no longer the current one.
        ///
        /// # Safety
        /// As [`before_switch`](Self::before_switch); also, the running
        /// execution was started by `setup` (so its fiber is one
        /// [`before_switch`](Self::before_switch) created, not a thread's
        /// own), and it never runs again.
        #[inline(always)]
        pub(crate) unsafe fn before_exit(target: &TsanContext) {
            // SAFETY: asks the runtime for the running fiber; no argument.
            let exiting = unsafe { __tsan_get_current_fiber() };
            // SAFETY: as in `before_switch`.
            unsafe { __tsan_switch_to_fiber(target.fiber_or_create(), 0) };
            // SAFETY: `exiting` is the fiber created for this finished
            // context (the contract), no longer current after the switch
            // above, and never switched to again: its context exits now.
            unsafe { __tsan_destroy_fiber(exiting) };
        }

        /// The target's fiber, created first if the target is fresh.
        ///
        /// # Safety
        /// The target is about to be switched into, so that a new fiber is
        /// not lost.
        #[inline(always)]
        unsafe fn fiber_or_create(&self) -> *mut c_void {
            let mut fiber = self.fiber.get();
            if fiber.is_null() {
                // SAFETY: creates a fiber, with the documented flags 0.
                fiber = unsafe { __tsan_create_fiber(0) };
                self.fiber.set(fiber);
            }
            fiber
        }
    }

    impl fmt::Debug for TsanContext {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TsanContext")
                .field("fiber", &self.fiber.get())
                .finish()
        }
    }
}

/// Without the `tsan` feature: nothing to keep, nothing to do.
#[cfg(not(feature = "tsan"))]
mod none {
    /// The ThreadSanitizer part of a context when TSan is not annotated:
    /// zero-sized, and every hook is empty.
    #[derive(Debug)]
    pub(crate) struct TsanContext;

    impl TsanContext {
        /// Nothing to record.
        #[inline(always)]
        pub(crate) const fn new() -> Self {
            TsanContext
        }

        /// Nothing to record.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the annotated version.
        #[inline(always)]
        pub(crate) unsafe fn with_stack(_bottom: *const u8, _size: usize) -> Self {
            TsanContext
        }

        /// Does nothing.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the annotated version.
        #[inline(always)]
        pub(crate) unsafe fn before_switch(&self, _target: &TsanContext) {}

        /// Does nothing.
        ///
        /// # Safety
        /// None needed; `unsafe` to match the annotated version.
        #[inline(always)]
        pub(crate) unsafe fn before_exit(_target: &TsanContext) {}
    }
}
