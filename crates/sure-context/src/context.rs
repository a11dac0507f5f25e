//! [`ExecutionContext`] and the [`Trampoline`] a new context starts in.

use core::fmt;
use core::ptr::{self, NonNull};

use crate::arch;

/// The code a new context starts in (Sure's `ITrampoline`).
///
/// [`ExecutionContext::setup`] arranges for the first switch into a new
/// context to call [`run`](Trampoline::run) on its own stack. `run` must
/// never return: it ends with [`ExecutionContext::exit_to`] (or loops
/// forever, switching elsewhere). A panic that escapes `run` aborts the
/// process, because there is no frame below it to unwind into; catch
/// panics inside `run` (see `sure-coro`) if the code it runs may panic.
pub trait Trampoline {
    /// Runs the new context's code. Never returns.
    fn run(&mut self) -> !;
}

/// The saved state of one suspended execution: its stack pointer, with the
/// callee-saved registers and a resume address stored on its own stack.
///
/// A context is either *running* (the one executing now on this thread; its
/// saved value is stale), *suspended* (saved by [`switch_to`] or
/// [`return_to`], or fresh from [`setup`]), or *finished* (it called
/// [`exit_to`]). Only a suspended context may be switched to, and only once
/// per suspension.
///
/// All switching is `unsafe`: these are the raw parts a scheduler or a safe
/// coroutine type is built from. Each method says what its caller must
/// guarantee.
///
/// # Example
///
/// A context that runs a trampoline on a stack and comes back:
///
/// ```
/// use core::ptr::NonNull;
/// use sure_context::{ExecutionContext, Trampoline};
///
/// struct Task {
///     caller: ExecutionContext,
///     own: ExecutionContext,
///     steps: u32,
/// }
///
/// impl Trampoline for Task {
///     fn run(&mut self) -> ! {
///         loop {
///             self.steps += 1;
///             // SAFETY: `caller` was saved by the switch_to that entered us
///             // and is suspended until we switch back.
///             unsafe { self.own.return_to(&self.caller) };
///         }
///     }
/// }
///
/// let mut memory = vec![0u8; 64 * 1024];
/// let stack = NonNull::from(memory.as_mut_slice());
/// let mut task = Task { caller: ExecutionContext::new(), own: ExecutionContext::new(), steps: 0 };
/// let task_ptr = NonNull::from(&mut task);
/// // SAFETY: the stack and the task outlive every switch into the context,
/// // and nothing else touches the stack meanwhile.
/// unsafe {
///     task_ptr.as_ptr().as_mut().unwrap().own = ExecutionContext::setup(stack, task_ptr);
///     for _ in 0..3 {
///         let task = task_ptr.as_ptr();
///         (*task).caller.switch_to(&(*task).own);
///     }
///     assert_eq!((*task_ptr.as_ptr()).steps, 3);
/// }
/// // The task never finished; its stack holds no destructors, so dropping
/// // the memory is fine.
/// ```
///
/// [`switch_to`]: ExecutionContext::switch_to
/// [`return_to`]: ExecutionContext::return_to
/// [`exit_to`]: ExecutionContext::exit_to
/// [`setup`]: ExecutionContext::setup
#[repr(C)]
pub struct ExecutionContext {
    /// Saved stack pointer; its top word is the resume address. Null until
    /// something is saved here. First field: the trampoline's unwind info
    /// reads it through a pointer to the context.
    stack_pointer: *mut u8,
}

static_assertions::assert_eq_size!(ExecutionContext, usize);
static_assertions::assert_eq_align!(ExecutionContext, usize);

// SAFETY: an ExecutionContext is a saved stack pointer; moving the value to
// another thread does nothing by itself. Switching into it there is the
// caller's decision, covered by the contract of `switch_to`.
unsafe impl Send for ExecutionContext {}

/// The fewest bytes [`ExecutionContext::setup`] accepts, after aligning the
/// top of the region down to 16 bytes: the initial frame and a little room.
/// Real code needs far more; `sure-stack` hands out at least 16 KiB.
pub const MIN_SETUP_BYTES: usize = 256;

impl ExecutionContext {
    /// A context with nothing saved in it yet: the place a running
    /// execution (a thread's own stack, say) saves itself when it first
    /// switches away.
    pub const fn new() -> Self {
        ExecutionContext {
            stack_pointer: ptr::null_mut(),
        }
    }

    /// Whether anything was ever saved in (or set up into) this context.
    /// A context that is not saved must not be switched to.
    pub fn is_saved(&self) -> bool {
        !self.stack_pointer.is_null()
    }

    /// Prepares a new context on `stack` whose first switch calls
    /// `trampoline.run()` there, with the ABI's stack alignment.
    ///
    /// The initial frame takes the top few words of the
    /// region; the rest is the new execution's stack, growing down.
    ///
    /// # Panics
    /// If the region, its top aligned down to 16 bytes, is smaller than
    /// [`MIN_SETUP_BYTES`].
    ///
    /// # Safety
    /// - `stack` is writable memory that nothing else uses while the context
    ///   may run, large enough for everything `run` does (a guard page below
    ///   it, as `sure-stack` provides, turns an overflow into a fault instead
    ///   of silent corruption);
    /// - `trampoline` stays valid, and is not accessed elsewhere in a way
    ///   that conflicts with `run`'s `&mut`, while the context may run;
    /// - the context that first switches into the new one (the *link*) stays
    ///   at its address and valid while the new context runs: debuggers and
    ///   `std::backtrace` walk from the new context into the frames saved
    ///   there. (A context first entered through [`exit_to`] links to
    ///   nothing, and backtraces end at its trampoline.)
    ///
    /// [`exit_to`]: ExecutionContext::exit_to
    pub unsafe fn setup<T: Trampoline>(stack: NonNull<[u8]>, trampoline: NonNull<T>) -> Self {
        let bottom = stack.cast::<u8>().as_ptr() as usize;
        let top = (bottom + stack.len()) & !15;
        assert!(
            top >= bottom && top - bottom >= MIN_SETUP_BYTES,
            "ExecutionContext::setup: the stack region ({} bytes at {bottom:#x}) is smaller than \
             MIN_SETUP_BYTES ({MIN_SETUP_BYTES}); give it a real stack, such as a sure-stack Stack",
            stack.len(),
        );
        // SAFETY: `top` lies inside or one past the region (aligned down),
        // at least MIN_SETUP_BYTES above its bottom, so the initial frame's
        // bytes below it are in the writable region the caller provided.
        let stack_pointer = unsafe {
            arch::initial_frame(
                stack.cast::<u8>().as_ptr().add(top - bottom),
                enter::<T>,
                trampoline.as_ptr().cast(),
            )
        };
        ExecutionContext { stack_pointer }
    }

    /// Saves the running execution into `self` and continues `target`.
    /// Returns when another execution switches to `self`.
    ///
    /// Use this to *call into* a context that is expected to come back with
    /// [`return_to`] (a resume): the switch is entered with a `call`, so the
    /// CPU predicts the matching `return_to`. It is correct, only slower,
    /// for any other pattern.
    ///
    /// # Safety
    /// - `self` is the running execution's context: the code calling this
    ///   runs on the stack that `self` will describe;
    /// - `target` is suspended (fresh from [`setup`], or saved by a switch
    ///   that has not been continued since), and its stack is still valid;
    ///   after this call it is running, and must not be switched to again
    ///   until it saves itself anew;
    /// - if `target` was suspended on another thread, everything on its
    ///   stack tolerates the move (thread-local addresses may be cached
    ///   across a switch);
    /// - `self` stays at its address and valid until someone continues it.
    ///
    /// [`return_to`]: ExecutionContext::return_to
    /// [`setup`]: ExecutionContext::setup
    #[inline(always)]
    pub unsafe fn switch_to(&mut self, target: &ExecutionContext) {
        // SAFETY: `&mut self.stack_pointer` is valid for a write; `target`
        // is a suspended context with a valid stack by the contract.
        unsafe { arch::switch_call(&mut self.stack_pointer, target.stack_pointer) }
    }

    /// Saves the running execution into `self` and continues `target`,
    /// like [`switch_to`], but leaving with a `ret` that the CPU predicts
    /// when `target` is the context that last `switch_to`'d into this one
    /// (a suspend back to the resumer).
    ///
    /// # Safety
    /// As [`switch_to`].
    ///
    /// [`switch_to`]: ExecutionContext::switch_to
    #[inline(always)]
    pub unsafe fn return_to(&mut self, target: &ExecutionContext) {
        // SAFETY: as in `switch_to`.
        unsafe { arch::switch_return(&mut self.stack_pointer, target.stack_pointer) }
    }

    /// The final switch out of a finished execution: continues `target`
    /// without saving anything. The running execution is never continued;
    /// its stack may be freed once this has switched away.
    ///
    /// # Safety
    /// - `target` is suspended, as for [`switch_to`];
    /// - nothing on the running stack will be used again: every value on it
    ///   with a destructor has been dropped or is meant to be leaked.
    ///
    /// [`switch_to`]: ExecutionContext::switch_to
    #[inline(always)]
    pub unsafe fn exit_to(target: &ExecutionContext) -> ! {
        // SAFETY: `target` is suspended, and the running stack is abandoned,
        // both by the contract.
        unsafe { arch::exit(target.stack_pointer) }
    }
}

impl Default for ExecutionContext {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ExecutionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionContext")
            .field("stack_pointer", &self.stack_pointer)
            .finish()
    }
}

/// The entry function the trampoline jumps to: calls `run` on the object.
///
/// # Safety
/// `trampoline` is the pointer given to [`ExecutionContext::setup`], valid
/// by its contract.
unsafe extern "C" fn enter<T: Trampoline>(trampoline: *mut u8) -> ! {
    // SAFETY: `setup`'s contract keeps the object valid and unaliased while
    // the context runs; this is the object pointer it wrote.
    unsafe { (*trampoline.cast::<T>()).run() }
}
