//! [`ExecutionContext`] and the [`Trampoline`] a new context starts in.

use core::fmt;
use core::ptr::{self, NonNull};

use crate::arch;
use crate::machine::MachineContext;
use crate::sanitizer::SanitizerContext;
use crate::tsan::TsanContext;

/// The code a new context starts in (Sure's `ITrampoline`).
///
/// [`ExecutionContext::setup`] arranges for the first switch into a new
/// context to call [`run`](Trampoline::run) on its own stack. `run` must
/// never return: it ends with [`ExecutionContext::exit_to`] (or loops
/// forever, switching elsewhere).
///
/// `run` holds `&mut self` for the whole life of the context, also while it
/// is suspended. Keep state that other executions touch meanwhile (the
/// contexts themselves, results) outside the trampoline object, reached
/// through a pointer, as in the [`ExecutionContext`] example. A panic that escapes `run` aborts the
/// process, because there is no frame below it to unwind into; catch
/// panics inside `run` (see `sure-coro`) if the code it runs may panic.
pub trait Trampoline {
    /// Runs the new context's code. Never returns.
    fn run(&mut self) -> !;
}

/// The saved state of one suspended execution: its stack pointer, with the
/// callee-saved registers and a resume address (on x86-64 beside it, in the
/// context; on aarch64 and riscv64 on its own stack).
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
/// A context that runs a trampoline on a stack and comes back. The contexts
/// and the counter live outside the trampoline object: `run` holds
/// `&mut self` for the context's whole life, so whatever the other side
/// also touches belongs elsewhere.
///
/// ```
/// use core::cell::Cell;
/// use core::ptr::NonNull;
/// use sure_context::{ExecutionContext, Trampoline};
///
/// struct Shared {
///     caller: ExecutionContext,
///     task: ExecutionContext,
///     steps: Cell<u32>,
/// }
///
/// struct Task(*const Shared);
///
/// impl Trampoline for Task {
///     fn run(&mut self) -> ! {
///         // SAFETY: `Shared` outlives the task (see below).
///         let shared = unsafe { &*self.0 };
///         loop {
///             shared.steps.set(shared.steps.get() + 1);
///             // SAFETY: `caller` was saved by the switch_to that entered us
///             // and is suspended until we switch back.
///             unsafe { shared.task.return_to(&shared.caller) };
///         }
///     }
/// }
///
/// let mut memory = vec![0u128; 4096];
/// let stack = NonNull::from(memory.as_mut_slice()).cast::<u8>();
/// let stack = NonNull::slice_from_raw_parts(stack, 4096 * 16);
/// let mut shared = Box::new(Shared {
///     caller: ExecutionContext::new(),
///     task: ExecutionContext::new(),
///     steps: Cell::new(0),
/// });
/// let mut task = Task(&*shared);
/// // SAFETY: the stack, `shared` and `task` outlive every switch into the
/// // context, and nothing else uses the stack meanwhile.
/// unsafe {
///     shared.task = ExecutionContext::setup(stack, NonNull::from(&mut task));
///     for _ in 0..3 {
///         shared.caller.switch_to(&shared.task);
///     }
/// }
/// assert_eq!(shared.steps.get(), 3);
/// // The task never finished; its stack holds no destructors, so dropping
/// // the memory is fine.
/// ```
///
/// [`switch_to`]: ExecutionContext::switch_to
/// [`return_to`]: ExecutionContext::return_to
/// [`exit_to`]: ExecutionContext::exit_to
/// [`setup`]: ExecutionContext::setup
///
/// # Why `&self`
///
/// A switch hands control to code that reads and writes contexts while the
/// switching call has not returned: the target later saves itself, and the
/// context we saved into is read by whoever switches back. The saved stack
/// pointer is therefore a [`Cell`](core::cell::Cell) (and the registers
/// beside it an [`UnsafeCell`](core::cell::UnsafeCell)), and every method
/// takes `&self`. A `&` or `&mut` reference to plain data would promise the
/// compiler that nothing else touches it for the duration of the call, and
/// it would cache values across the switch (the benchmarks caught the optimiser
/// hoisting a target's stack pointer out of a loop).
///
/// # Parts
///
/// As in Sure, a context is composed of parts, each with its hooks around
/// a switch: the machine context (the saved stack pointer and registers,
/// and the switch itself) and the sanitizer context (AddressSanitizer's fiber annotations
/// with the `asan` feature: before the switch, after it, and before the
/// final exit), and the ThreadSanitizer context (TSan's fiber annotations
/// with the `tsan` feature: before the switch, and before the final exit).
/// Either is zero-sized without its feature and its hooks are empty, so
/// with neither a context is the machine's words (four on x86-64, one
/// elsewhere) and a switch is only the machine's.
#[repr(C)]
pub struct ExecutionContext {
    /// The saved stack pointer and registers. First field, at offset 0: the
    /// switch hands the arriving side its address as the switcher's
    /// context, and the trampoline's unwind info reads the saved execution
    /// through it.
    machine: MachineContext,
    /// The sanitizer's view of the stack; zero-sized without `asan`.
    sanitizer: SanitizerContext,
    /// ThreadSanitizer's fiber for this execution; zero-sized without
    /// `tsan`.
    tsan: TsanContext,
}

/// Words of an `ExecutionContext` beside its machine part: the stack's
/// bounds and the saved fake stack with `asan`, the TSan fiber with `tsan`.
const SANITIZER_WORDS: usize =
    if cfg!(feature = "asan") { 3 } else { 0 } + if cfg!(feature = "tsan") { 1 } else { 0 };
static_assertions::const_assert_eq!(
    size_of::<ExecutionContext>(),
    size_of::<MachineContext>() + SANITIZER_WORDS * size_of::<usize>()
);
// The machine part: the stack pointer, then the architecture's registers
// (x86-64's resume address, rbx and rbp; nothing elsewhere).
#[cfg(target_arch = "x86_64")]
static_assertions::assert_eq_size!(MachineContext, [usize; 4]);
#[cfg(not(target_arch = "x86_64"))]
static_assertions::assert_eq_size!(MachineContext, usize);
// Each part on its own: zero-sized without its feature.
#[cfg(not(feature = "asan"))]
static_assertions::assert_eq_size!(SanitizerContext, ());
#[cfg(not(feature = "tsan"))]
static_assertions::assert_eq_size!(TsanContext, ());
static_assertions::assert_eq_align!(ExecutionContext, usize);
static_assertions::const_assert_eq!(core::mem::offset_of!(ExecutionContext, machine), 0);

// SAFETY: an ExecutionContext is a saved stack pointer and registers (and, with `asan`,
// its stack's bounds and fake stack; with `tsan`, a TSan fiber handle,
// which TSan lets any thread switch to); moving the value to another thread
// does nothing by itself. Switching into it there is the caller's
// decision, covered by the contract of `switch_to`.
unsafe impl Send for ExecutionContext {}

/// The fewest bytes [`ExecutionContext::setup`] accepts, after aligning the
/// top of the region down to 16 bytes: the initial frame and a little room.
/// Real code needs far more; `sure-stack` hands out at least 32 KiB
/// (48 KiB on aarch64 and riscv64).
pub const MIN_SETUP_BYTES: usize = 256;

impl ExecutionContext {
    /// A context with nothing saved in it yet: the place a running
    /// execution (a thread's own stack, say) saves itself when it first
    /// switches away.
    pub const fn new() -> Self {
        ExecutionContext {
            machine: MachineContext::new(),
            sanitizer: SanitizerContext::new(),
            tsan: TsanContext::new(),
        }
    }

    /// Whether this context holds a suspended execution: one set up into it,
    /// or saved into it by a switch. False for a new context, and for a
    /// target of [`switch_to_taking`] from that switch until it saves itself
    /// again (for good, if it exits). A context that is not saved must not be
    /// switched to.
    ///
    /// [`switch_to_taking`]: ExecutionContext::switch_to_taking
    pub fn is_saved(&self) -> bool {
        !self.machine.stack_pointer().is_null()
    }

    /// Where the suspended execution's stack ends, if this context holds
    /// one ([`is_saved`](ExecutionContext::is_saved)): its saved stack
    /// pointer. Its stack is in use from here up; everything below is free
    /// until it runs again, so a scheduler may give those pages back to the
    /// system (`madvise`), or measure how deep the stack has been used.
    ///
    /// ```
    /// use sure_context::ExecutionContext;
    ///
    /// assert_eq!(ExecutionContext::new().saved_stack_pointer(), None);
    /// ```
    pub fn saved_stack_pointer(&self) -> Option<NonNull<u8>> {
        NonNull::new(self.machine.stack_pointer())
    }

    /// Prepares a new context on `stack` whose first switch calls
    /// `trampoline.run()` there, with the ABI's stack alignment.
    ///
    /// The initial frame takes the top few words of the
    /// region; the rest is the new execution's stack, growing down.
    ///
    /// On Windows the region is also the new context's stack as the thread
    /// environment block tells it, from `StackLimit`, its start, to
    /// `StackBase`, its top; [`setup_guarded`](ExecutionContext::setup_guarded)
    /// adds the guard below.
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
    ///   that conflicts with `run`'s `&mut`, while the context may run (also
    ///   while it is suspended: `run` never returns, so its `&mut` lasts
    ///   until the context exits; only after [`exit_to`] has switched away
    ///   may the object's memory be reused);
    /// - the context that first switches into the new one (the *link*) stays
    ///   at its address and valid while the new context runs: debuggers and
    ///   `std::backtrace` walk from the new context into the frames saved
    ///   there. (A context first entered through [`exit_to`] links to
    ///   nothing, and backtraces end at its trampoline.)
    ///
    /// # Keeping the link rule
    ///
    /// The link is an address: the trampoline records where the first switch
    /// saved itself, and an unwinder walking out of the new context reads
    /// the frame saved there *at the time of the walk*. So whenever the new
    /// context runs, until it exits, that same `ExecutionContext` must hold a
    /// suspended execution whose stack is still there. Two common ways to
    /// break it: a task that starts another and then finishes (its context
    /// keeps a stale stack pointer into a stack that is reused or freed, and
    /// the walk ends in `<unknown>` or faults inside `std::backtrace`), and a
    /// context that is a local of a function that returns while the tasks it
    /// started live on.
    ///
    /// A scheduler keeps the rule by construction if
    /// - one context, the scheduler's own (on the thread's main stack, in a
    ///   structure that does not move), enters every fresh context;
    /// - tasks switch among themselves only into contexts that have already
    ///   started, and hand a turn that would start a fresh one to the
    ///   scheduler, which starts it;
    /// - the scheduler's context stays in place until every task it started
    ///   has exited (or will never run again).
    ///
    /// Checking this here would need bookkeeping on every switch, so this
    /// crate does not; a scheduler checks it where it keeps state anyway.
    /// Below, every switch into a task goes through `Scheduler::enter`,
    /// whose `debug_assert!` (free in release builds) catches a fresh task
    /// entered from anywhere but the scheduler, and the scheduler asserts
    /// that all tasks have exited before its context goes away. A test can
    /// also take `std::backtrace::Backtrace::force_capture()` in a task that
    /// runs after others have finished and look for the scheduler's function
    /// in it: `tests/round_robin.rs` does so for the `round_robin` example,
    /// which follows the same pattern.
    ///
    /// ```
    /// use core::cell::{Cell, RefCell};
    /// use core::ptr::{self, NonNull};
    /// use sure_context::{ExecutionContext, Trampoline};
    ///
    /// const TASKS: usize = 3;
    ///
    /// /// Shared by the scheduler and the tasks, outside every trampoline object.
    /// struct Scheduler {
    ///     /// The scheduler's own context: the link of every task.
    ///     main: ExecutionContext,
    ///     tasks: [ExecutionContext; TASKS],
    ///     started: [Cell<bool>; TASKS],
    ///     finished: Cell<usize>,
    ///     log: RefCell<Vec<usize>>,
    /// }
    ///
    /// impl Scheduler {
    ///     /// Task `to`'s context, about to be switched into from `from`.
    ///     /// Checks the link rule: only the scheduler enters a fresh task.
    ///     fn enter(&self, from: &ExecutionContext, to: usize) -> &ExecutionContext {
    ///         debug_assert!(
    ///             self.started[to].get() || ptr::eq(from, &self.main),
    ///             "task {to} is fresh: only the scheduler, its link, may enter it"
    ///         );
    ///         self.started[to].set(true);
    ///         &self.tasks[to]
    ///     }
    /// }
    ///
    /// struct Task {
    ///     id: usize,
    ///     scheduler: *const Scheduler,
    /// }
    ///
    /// impl Trampoline for Task {
    ///     fn run(&mut self) -> ! {
    ///         // SAFETY: the scheduler outlives every task (see below).
    ///         let s = unsafe { &*self.scheduler };
    ///         let own = &s.tasks[self.id];
    ///         let next = (self.id + 1) % TASKS;
    ///         for _ in 0..2 {
    ///             s.log.borrow_mut().push(self.id);
    ///             // SAFETY: `own` is this task's context. The target is
    ///             // suspended: a started task in its own switch here, or the
    ///             // scheduler in its switch into the task it started last.
    ///             unsafe {
    ///                 if s.started[next].get() {
    ///                     own.switch_to(s.enter(own, next)); // straight to the next task
    ///                 } else {
    ///                     own.switch_to(&s.main); // the scheduler starts it
    ///                 }
    ///             }
    ///         }
    ///         s.finished.set(s.finished.get() + 1);
    ///         // SAFETY: this stack holds nothing to drop, and nothing
    ///         // switches to `own` again. The next task is suspended in its
    ///         // last switch; after the last task, the scheduler is, in its
    ///         // switch into that task.
    ///         unsafe {
    ///             if next == 0 {
    ///                 ExecutionContext::exit_to(&s.main)
    ///             } else {
    ///                 ExecutionContext::exit_to(s.enter(own, next))
    ///             }
    ///         }
    ///     }
    /// }
    ///
    /// let mut stacks = vec![[0u128; 4096]; TASKS];
    /// let mut shared = Scheduler {
    ///     main: ExecutionContext::new(),
    ///     tasks: Default::default(),
    ///     started: Default::default(),
    ///     finished: Cell::new(0),
    ///     log: RefCell::new(Vec::new()),
    /// };
    /// // From here on the scheduler is reached only through this pointer.
    /// let s: *mut Scheduler = &mut shared;
    /// let mut objects: [Task; TASKS] = core::array::from_fn(|id| Task { id, scheduler: s });
    /// for (id, (object, stack)) in objects.iter_mut().zip(&mut stacks).enumerate() {
    ///     let stack = NonNull::slice_from_raw_parts(NonNull::from(stack).cast::<u8>(), 4096 * 16);
    ///     // SAFETY: the stacks, the objects and the scheduler outlive every
    ///     // task, and nothing else uses them; no task runs yet.
    ///     unsafe { (*s).tasks[id] = ExecutionContext::setup(stack, NonNull::from(object)) };
    /// }
    /// // SAFETY: nothing writes the scheduler from here on.
    /// let s = unsafe { &*s };
    /// // Start each task in turn. Control comes back here when a task's next
    /// // one is fresh, and at the end, when the last task exits.
    /// for id in 0..TASKS {
    ///     // SAFETY: `main` is this execution's context, in place and
    ///     // suspended whenever a task runs; task `id` is fresh.
    ///     unsafe { s.main.switch_to(s.enter(&s.main, id)) };
    /// }
    /// // The scheduler's context outlives every task it started.
    /// assert_eq!(s.finished.get(), TASKS);
    /// assert_eq!(*s.log.borrow(), [0, 1, 2, 0, 1, 2]);
    /// ```
    ///
    /// [`exit_to`]: ExecutionContext::exit_to
    pub unsafe fn setup<T: Trampoline>(stack: NonNull<[u8]>, trampoline: NonNull<T>) -> Self {
        // SAFETY: forwarded: the caller's contract is `setup_guarded`'s,
        // and no guard is claimed.
        unsafe { Self::setup_guarded(stack, 0, trampoline) }
    }

    /// [`setup`](ExecutionContext::setup) for a stack with `guard` bytes of
    /// guard pages just below it, such as a sure-stack `Stack`'s
    /// (`Stack::guard`). Only Windows uses them: the thread environment
    /// block's stack range then starts at the guard (`DeallocationStack`),
    /// with `StackLimit` at the region's start and `GuaranteedStackBytes`
    /// the guard less its lowest page. Windows dispatches an exception on
    /// the stack that faulted, and raises its stack overflow only inside
    /// that range: a guard of `PAGE_GUARD` pages above an inaccessible one
    /// gets the overflow raised at its first touch, with its pages left to
    /// run the handlers in (sure-stack's overflow report).
    ///
    /// # Panics
    /// As [`setup`](ExecutionContext::setup).
    ///
    /// # Safety
    /// As [`setup`](ExecutionContext::setup), and the `guard` bytes below
    /// `stack` belong to the same stack and are nobody else's.
    pub unsafe fn setup_guarded<T: Trampoline>(
        stack: NonNull<[u8]>,
        guard: usize,
        trampoline: NonNull<T>,
    ) -> Self {
        let bottom = stack.cast::<u8>().as_ptr() as usize;
        // The region's bytes below a 16-byte aligned top: as a length, so
        // that a caller whose region is known aligned and long enough
        // compiles the check below away.
        let usable = stack
            .len()
            .saturating_sub(bottom.wrapping_add(stack.len()) & 15);
        assert!(
            usable >= MIN_SETUP_BYTES,
            "ExecutionContext::setup: the stack region ({} bytes at {bottom:#x}) is smaller than \
             MIN_SETUP_BYTES ({MIN_SETUP_BYTES}); give it a real stack, such as a sure-stack Stack",
            stack.len(),
        );
        // SAFETY: the region is the caller's unused stack. First, because
        // with `asan` this clears the region's stale poison, which the
        // initial frame's writes must not trip over.
        let sanitizer = unsafe { SanitizerContext::with_stack(stack.cast().as_ptr(), stack.len()) };
        // SAFETY: as above (the TSan part only records that the context is
        // fresh).
        let tsan = unsafe { TsanContext::with_stack(stack.cast().as_ptr(), stack.len()) };
        // SAFETY: `bottom + usable` lies inside or one past the region, 16-byte
        // aligned, at least MIN_SETUP_BYTES above its bottom, so the initial frame's
        // bytes below it are in the writable region the caller provided.
        let machine = unsafe {
            MachineContext::setup::<T>(
                arch::NewStack {
                    bottom: stack.cast::<u8>().as_ptr(),
                    guard,
                    top: stack.cast::<u8>().as_ptr().add(usable),
                },
                trampoline.as_ptr().cast(),
            )
        };
        ExecutionContext {
            machine,
            sanitizer,
            tsan,
        }
    }

    /// Saves the running execution into `self` and continues `target`.
    /// Returns when another execution switches to `self`.
    ///
    /// Use this to *call into* a context that is expected to come back with
    /// [`return_to`] (a resume): on aarch64 and riscv64 the switch is
    /// entered with a call, so the CPU predicts the matching `return_to`. It
    /// is correct, only slower, for any other pattern. On x86-64 the two are
    /// the same switch, which neither calls nor returns.
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
    /// - `self` stays at its address and valid until someone continues it;
    ///   if `target` is fresh, `self` becomes its link (see [`setup`]) and
    ///   must stay at its address, holding a saved frame whenever the target
    ///   runs, for as long as the target lives: unwinders read it.
    ///
    /// [`return_to`]: ExecutionContext::return_to
    /// [`setup`]: ExecutionContext::setup
    #[inline(always)]
    pub unsafe fn switch_to(&self, target: &ExecutionContext) {
        // SAFETY: `target` is a suspended context with a valid stack, and
        // `self` the running execution's, by the contract; the sanitizer's
        // hooks bracket the machine switch, as they require, and `from` is
        // the context that continued us, suspended at a stable address.
        // The hooks are written out in each switch rather than shared through
        // a helper taking the machine switch as a closure: in a debug build
        // that closure is a call between TSan's fiber switch and the machine
        // switch, which unbalances TSan's shadow call stacks.
        unsafe {
            self.sanitizer.before_switch(&target.sanitizer);
            self.tsan.before_switch(&target.tsan);
            let from = self.machine.switch_to(&target.machine);
            self.sanitizer.after_switch(sanitizer_of(from));
        }
    }

    /// Like [`switch_to`], and also takes the saved execution out of
    /// `target`: its stack pointer is cleared as the switch reads it (the
    /// registers beside it are left as they are), so [`is_saved`] tells a suspended target from a running or
    /// finished one for the price of one store. `target` is saved again when
    /// it switches away (by [`return_to`] or [`switch_to`]), and stays
    /// unsaved for good once it has called [`exit_to`].
    ///
    /// ```
    /// use core::ptr::NonNull;
    /// use sure_context::{ExecutionContext, Trampoline};
    ///
    /// struct Shared {
    ///     caller: ExecutionContext,
    ///     task: ExecutionContext,
    /// }
    ///
    /// struct Task(*const Shared);
    ///
    /// impl Trampoline for Task {
    ///     fn run(&mut self) -> ! {
    ///         // SAFETY: `Shared` outlives the task (see below).
    ///         let shared = unsafe { &*self.0 };
    ///         assert!(!shared.task.is_saved(), "running: the switch took it");
    ///         // SAFETY: `caller` saved itself when it switched here, and is
    ///         // suspended until we switch back, each time.
    ///         unsafe {
    ///             shared.task.return_to(&shared.caller);
    ///             ExecutionContext::exit_to(&shared.caller)
    ///         }
    ///     }
    /// }
    ///
    /// let mut memory = vec![0u128; 4096];
    /// let stack = NonNull::from(memory.as_mut_slice()).cast::<u8>();
    /// let stack = NonNull::slice_from_raw_parts(stack, 4096 * 16);
    /// let mut shared = Box::new(Shared { caller: ExecutionContext::new(), task: ExecutionContext::new() });
    /// let shared: *mut Shared = &mut *shared;
    /// let mut task = Task(shared);
    /// // SAFETY: the stack, `shared` and `task` outlive every switch into the
    /// // context, and nothing else uses the stack meanwhile.
    /// unsafe {
    ///     (*shared).task = ExecutionContext::setup(stack, NonNull::from(&mut task));
    ///     (*shared).caller.switch_to_taking(&(*shared).task);
    ///     assert!((*shared).task.is_saved(), "suspended by its return_to");
    ///     (*shared).caller.switch_to_taking(&(*shared).task);
    ///     assert!(!(*shared).task.is_saved(), "exited");
    /// }
    /// ```
    ///
    /// # Safety
    /// As [`switch_to`].
    ///
    /// [`switch_to`]: ExecutionContext::switch_to
    /// [`return_to`]: ExecutionContext::return_to
    /// [`exit_to`]: ExecutionContext::exit_to
    /// [`is_saved`]: ExecutionContext::is_saved
    #[inline(always)]
    pub unsafe fn switch_to_taking(&self, target: &ExecutionContext) {
        // SAFETY: as in `switch_to`; the machine part clears only the
        // target's stack pointer, after reading it, and the switch reads the
        // target's registers, which stay as they were.
        unsafe {
            self.sanitizer.before_switch(&target.sanitizer);
            self.tsan.before_switch(&target.tsan);
            let from = self.machine.switch_to_taking(&target.machine);
            self.sanitizer.after_switch(sanitizer_of(from));
        }
    }

    /// Saves the running execution into `self` and continues `target`,
    /// like [`switch_to`], but leaving (on aarch64 and riscv64) with a `ret`
    /// that the CPU predicts when `target` is the context that last
    /// `switch_to`'d into this one (a suspend back to the resumer). On
    /// x86-64 it is the same switch as `switch_to`.
    ///
    /// # Safety
    /// As [`switch_to`].
    ///
    /// [`switch_to`]: ExecutionContext::switch_to
    #[inline(always)]
    pub unsafe fn return_to(&self, target: &ExecutionContext) {
        // SAFETY: as in `switch_to`.
        unsafe {
            self.sanitizer.before_switch(&target.sanitizer);
            self.tsan.before_switch(&target.tsan);
            let from = self.machine.return_to(&target.machine);
            self.sanitizer.after_switch(sanitizer_of(from));
        }
    }

    /// The final switch out of a finished execution: continues `target`
    /// without saving anything. The running execution is never continued;
    /// its stack may be freed once this has switched away.
    ///
    /// # Safety
    /// - `target` is suspended, as for [`switch_to`];
    /// - nothing on the running stack will be used again: every value on it
    ///   with a destructor has been dropped or is meant to be leaked;
    /// - the running execution's own context is never switched to again: it
    ///   still holds the stack pointer it was last saved with (so
    ///   [`is_saved`](ExecutionContext::is_saved) stays true), which is stale.
    /// - the running execution was started by [`setup`](ExecutionContext::setup),
    ///   not a thread's own stack (which has frames below it and so is never
    ///   finished): with `tsan`, its fiber is destroyed here.
    ///
    /// [`switch_to`]: ExecutionContext::switch_to
    #[inline(always)]
    pub unsafe fn exit_to(target: &ExecutionContext) -> ! {
        // SAFETY: `target` is suspended, the running stack is abandoned and
        // was set up by `setup`, all by the contract; the sanitizer hooks
        // precede the switch (TSan's last, immediately before it), and the
        // target's side completes ASan's.
        unsafe {
            SanitizerContext::before_exit(&target.sanitizer);
            TsanContext::before_exit(&target.tsan);
            MachineContext::exit_to(&target.machine)
        }
    }
}

impl Default for ExecutionContext {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ExecutionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ExecutionContext");
        f.field("stack_pointer", &self.machine.stack_pointer());
        #[cfg(feature = "asan")]
        f.field("sanitizer", &self.sanitizer);
        #[cfg(feature = "tsan")]
        f.field("tsan", &self.tsan);
        f.finish()
    }
}

/// The sanitizer part of the context the machine switch says continued us
/// (null after an exit, which reports `arch::exited()`).
///
/// # Safety
/// `from` is `arch::exited()`, or the machine part of a live
/// `ExecutionContext`: the save location of the switch that continued us,
/// suspended since.
#[inline(always)]
unsafe fn sanitizer_of(from: *const MachineContext) -> *const SanitizerContext {
    if from.cast() == arch::exited() {
        ptr::null()
    } else {
        // SAFETY: the machine part is the first field of a `repr(C)`
        // `ExecutionContext` (asserted above), live by the contract.
        unsafe { &raw const (*from.cast::<ExecutionContext>()).sanitizer }
    }
}

/// The entry function a new context's trampoline jumps to: completes the
/// switch into the new context, then calls `run` on the object. Never
/// returns.
///
/// # Safety
/// `trampoline` is the pointer given to [`ExecutionContext::setup`], valid
/// by its contract; `from` is the save location of the switch that started
/// us (`arch::exited()` after an exit), as the trampoline passes it.
pub(crate) unsafe extern "C" fn enter<T: Trampoline>(trampoline: *mut u8, from: *mut u8) -> ! {
    // SAFETY: the first switch into this context has just arrived, from
    // the context at `from` (a switch saves into its context's first word).
    unsafe { SanitizerContext::after_start(sanitizer_of(from.cast())) };
    // SAFETY: `setup`'s contract keeps the object valid and unaliased while
    // the context runs; this is the object pointer it wrote.
    unsafe { (*trampoline.cast::<T>()).run() }
}
