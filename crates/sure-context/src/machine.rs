//! The machine part of an [`ExecutionContext`](crate::ExecutionContext):
//! the saved stack pointer, and the architecture's switch code around it.

use core::cell::Cell;
use core::ptr;

use crate::arch;

/// A suspended execution's saved stack pointer, with the callee-saved
/// registers and a resume address stored on its own stack (see
/// the `arch` module of the target for the layout).
///
/// `repr(C)` with the stack pointer first: the switch hands the arriving
/// side the address it saved into, and the trampoline's unwind info reads
/// the stack pointer through it. Both treat the address as that of the
/// whole `ExecutionContext`, whose first field this is.
#[repr(C)]
pub(crate) struct MachineContext {
    /// Saved stack pointer; its top word is the resume address. Null until
    /// something is saved here. A `Cell`: see `ExecutionContext`'s "Why
    /// `&self`".
    stack_pointer: Cell<*mut u8>,
}

static_assertions::assert_eq_size!(MachineContext, usize);
static_assertions::const_assert_eq!(core::mem::offset_of!(MachineContext, stack_pointer), 0);

impl MachineContext {
    /// Nothing saved yet.
    pub(crate) const fn new() -> Self {
        MachineContext {
            stack_pointer: Cell::new(ptr::null_mut()),
        }
    }

    /// A fresh context whose first switch calls `entry(object, from)` on
    /// `stack`, below its top (see [`arch::initial_frame`]).
    ///
    /// # Safety
    /// As [`arch::initial_frame`].
    pub(crate) unsafe fn setup(
        stack: arch::NewStack,
        entry: arch::EntryFn,
        object: *mut u8,
    ) -> Self {
        // SAFETY: forwarded to the caller.
        let stack_pointer = unsafe { arch::initial_frame(stack, entry, object) };
        MachineContext {
            stack_pointer: Cell::new(stack_pointer),
        }
    }

    /// The saved stack pointer, null if nothing was saved.
    pub(crate) fn stack_pointer(&self) -> *mut u8 {
        self.stack_pointer.get()
    }

    /// Saves the running execution into `self` and continues `target`,
    /// entering the switch with a `call` ([`arch::switch_call`]).
    ///
    /// Returns, when some execution continues `self`, the machine context
    /// that execution saved itself into, or null if it exited.
    ///
    /// # Safety
    /// As `ExecutionContext::switch_to`.
    #[inline(always)]
    pub(crate) unsafe fn switch_to(&self, target: &MachineContext) -> *const MachineContext {
        // SAFETY: the cell is valid for a write; `target` is a suspended
        // context with a valid stack by the contract.
        let from =
            unsafe { arch::switch_call(self.stack_pointer.as_ptr(), target.stack_pointer.get()) };
        from.cast()
    }

    /// As [`switch_to`](Self::switch_to), and clears `target`'s saved stack
    /// pointer as it loads it.
    ///
    /// # Safety
    /// As `ExecutionContext::switch_to`.
    #[inline(always)]
    pub(crate) unsafe fn switch_to_taking(&self, target: &MachineContext) -> *const MachineContext {
        let target = target.stack_pointer.replace(ptr::null_mut());
        // SAFETY: as in `switch_to`; `target` is the value the cell held.
        let from = unsafe { arch::switch_call(self.stack_pointer.as_ptr(), target) };
        from.cast()
    }

    /// As [`switch_to`](Self::switch_to), leaving with a `ret`
    /// ([`arch::switch_return`]).
    ///
    /// # Safety
    /// As `ExecutionContext::return_to`.
    #[inline(always)]
    pub(crate) unsafe fn return_to(&self, target: &MachineContext) -> *const MachineContext {
        // SAFETY: as in `switch_to`.
        let from =
            unsafe { arch::switch_return(self.stack_pointer.as_ptr(), target.stack_pointer.get()) };
        from.cast()
    }

    /// Continues `target` without saving anything ([`arch::exit`]).
    ///
    /// # Safety
    /// As `ExecutionContext::exit_to`.
    #[inline(always)]
    pub(crate) unsafe fn exit_to(target: &MachineContext) -> ! {
        // SAFETY: `target` is suspended, and the running stack is abandoned,
        // both by the contract.
        unsafe { arch::exit(target.stack_pointer.get()) }
    }
}
