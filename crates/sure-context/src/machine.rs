//! The machine part of an [`ExecutionContext`](crate::ExecutionContext):
//! the saved stack pointer and registers, and the architecture's switch
//! code around them.

use core::cell::{Cell, UnsafeCell};
use core::mem::MaybeUninit;
use core::ptr;

use crate::Trampoline;
use crate::arch;

/// A suspended execution's saved stack pointer and the registers the
/// architecture keeps beside it (x86-64: the resume address, rbx and rbp;
/// aarch64 and riscv64 store those on the stack instead; see the `arch`
/// module of the target for the layout).
///
/// `repr(C)` with the stack pointer first: the switch hands the arriving
/// side the address it saved into, and the trampoline's unwind info reads
/// the stack pointer through it. Both treat the address as that of the
/// whole `ExecutionContext`, whose first field this is.
#[repr(C)]
pub(crate) struct MachineContext {
    /// Saved stack pointer. Null until something is saved here. A `Cell`:
    /// see `ExecutionContext`'s "Why `&self`".
    stack_pointer: Cell<*mut u8>,
    /// Written by the switch that saves here (and by `setup`) and read by
    /// the one that continues it, both through the context's address, never
    /// through this field; uninitialised until then.
    registers: UnsafeCell<MaybeUninit<arch::Registers>>,
}

static_assertions::const_assert_eq!(core::mem::offset_of!(MachineContext, stack_pointer), 0);

impl MachineContext {
    /// Nothing saved yet.
    pub(crate) const fn new() -> Self {
        MachineContext {
            stack_pointer: Cell::new(ptr::null_mut()),
            registers: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// A fresh context whose first switch calls
    /// [`enter::<T>`](crate::context::enter)`(object, from)` on `stack`,
    /// below its top (see [`arch::initial_frame`]).
    ///
    /// # Safety
    /// As [`arch::initial_frame`].
    pub(crate) unsafe fn setup<T: Trampoline>(stack: arch::NewStack, object: *mut u8) -> Self {
        // SAFETY: forwarded to the caller.
        let (stack_pointer, registers) = unsafe { arch::initial_frame::<T>(stack, object) };
        MachineContext {
            stack_pointer: Cell::new(stack_pointer),
            registers: UnsafeCell::new(MaybeUninit::new(registers)),
        }
    }

    /// This context's address, where a switch saves the running
    /// execution: the fields are cells, so writing through it is allowed.
    #[inline(always)]
    fn as_save(&self) -> *mut u8 {
        (self as *const Self).cast_mut().cast()
    }

    /// This context's address, where a switch finds what to continue.
    #[inline(always)]
    fn as_target(&self) -> *const u8 {
        (self as *const Self).cast()
    }

    /// The saved stack pointer, null if nothing was saved.
    pub(crate) fn stack_pointer(&self) -> *mut u8 {
        self.stack_pointer.get()
    }

    /// Saves the running execution into `self` and continues `target`
    /// ([`arch::switch_call`]).
    ///
    /// Returns, when some execution continues `self`, the machine context
    /// that execution saved itself into, or `arch::exited()` if it exited.
    ///
    /// # Safety
    /// As `ExecutionContext::switch_to`.
    #[inline(always)]
    pub(crate) unsafe fn switch_to(&self, target: &MachineContext) -> *const MachineContext {
        // SAFETY: `self` is valid for the switch's writes (its fields are
        // cells); `target` is a suspended context with a valid stack by the
        // contract.
        let from = unsafe {
            arch::switch_call(
                self.as_save(),
                target.as_target(),
                target.stack_pointer.get(),
            )
        };
        from.cast()
    }

    /// As [`switch_to`](Self::switch_to), and clears `target`'s saved stack
    /// pointer as it loads it.
    ///
    /// # Safety
    /// As `ExecutionContext::switch_to`.
    #[inline(always)]
    pub(crate) unsafe fn switch_to_taking(&self, target: &MachineContext) -> *const MachineContext {
        let target_sp = target.stack_pointer.replace(ptr::null_mut());
        // SAFETY: as in `switch_to`; `target_sp` is the value the cell held.
        let from = unsafe { arch::switch_call(self.as_save(), target.as_target(), target_sp) };
        from.cast()
    }

    /// As [`switch_to`](Self::switch_to), leaving with a `ret` where the
    /// architecture's switch has one ([`arch::switch_return`]).
    ///
    /// # Safety
    /// As `ExecutionContext::return_to`.
    #[inline(always)]
    pub(crate) unsafe fn return_to(&self, target: &MachineContext) -> *const MachineContext {
        // SAFETY: as in `switch_to`.
        let from = unsafe {
            arch::switch_return(
                self.as_save(),
                target.as_target(),
                target.stack_pointer.get(),
            )
        };
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
        unsafe { arch::exit(target.as_target(), target.stack_pointer.get()) }
    }
}
