//! The hot slot: one idle stack held in front of a pool (the default one,
//! and the recent size's), so that a thread that creates and drops
//! coroutines one after another takes and gives back a stack with one load
//! and one store to its thread-local, and no list or count to update.
//!
//! The slot is one pointer with three meanings:
//!
//! ```text
//! null         empty: a stack given back goes here
//! OFF (1)      off: every take and give back goes to the pool
//! other        the bottom of an idle stack: the next take gets it
//! ```
//!
//! Off stands for everything that must keep stacks out of it: for the
//! default pool, pools not open (the thread has not kept a stack yet, or
//! is exiting) or a capacity of 0; for the recent size's, no room within
//! the bounds. Folding those into the slot's value is what lets the fast
//! paths test nothing else. The slot does not know its stack's length: its
//! owner does, and the slot frees nothing (its owner turns it off first).

use std::cell::Cell;
use std::ptr::{self, NonNull};

use sure_stack::Stack;

/// The value of an off slot: no stack's bottom (those are page aligned and
/// above the first page).
const OFF: *mut u8 = ptr::without_provenance_mut(1);

/// One idle stack, or room for one, or off (see the module).
pub(super) struct HotSlot(Cell<*mut u8>);

impl HotSlot {
    /// An off slot.
    pub(super) const fn off() -> HotSlot {
        HotSlot(Cell::new(OFF))
    }

    /// Takes the stack the slot holds.
    ///
    /// # Safety
    /// `len` is the usable length of the stacks this slot's owner keeps
    /// here (the slot holds no other since it was last off).
    #[inline(always)]
    pub(super) unsafe fn take(&self, len: usize) -> Option<Stack> {
        let bottom = self.0.get();
        if bottom.addr() <= OFF.addr() {
            return None;
        }
        self.0.set(ptr::null_mut());
        // SAFETY: a held value is the bottom of a stack given up with
        // `into_idle` (`give`, `put`), `len` bytes long by the contract,
        // taken back once: the slot is emptied here.
        Some(unsafe { Stack::from_idle(NonNull::new_unchecked(bottom), len) })
    }

    /// Keeps `stack` if the slot is empty; hands it back otherwise.
    #[inline(always)]
    pub(super) fn give(&self, stack: Stack) -> Result<(), Stack> {
        if !self.0.get().is_null() {
            return Err(stack);
        }
        self.0.set(stack.into_idle().as_ptr());
        Ok(())
    }

    /// Keeps `stack` in a slot that is on and empty.
    pub(super) fn put(&self, stack: Stack) {
        debug_assert!(self.0.get().is_null());
        self.0.set(stack.into_idle().as_ptr());
    }

    /// Whether stacks may be kept here.
    pub(super) fn is_on(&self) -> bool {
        self.0.get() != OFF
    }

    /// Turns an empty (or off) slot on, empty, or off.
    pub(super) fn turn(&self, on: bool) {
        debug_assert!(self.0.get().addr() <= OFF.addr());
        self.0.set(if on { ptr::null_mut() } else { OFF });
    }
}
