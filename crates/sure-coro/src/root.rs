//! What lives at the top of a coroutine's stack: the channel both sides
//! talk through, the outcome, and the body, started by the trampoline.
//!
//! Keeping them on the coroutine's own stack means creating a coroutine
//! allocates nothing but the (pooled) stack, and their addresses never
//! change while the `Coroutine` value itself moves around.

use std::any::Any;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use sure_context::{ExecutionContext, Trampoline};
use sure_stack::Stack;

use crate::coroutine::CoroutineState;
use crate::handle::SuspendHandle;

/// A panic payload, as `catch_unwind` returns it.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// The resume/suspend channel: everything the body's side needs, without
/// the return type (the handle does not know it).
#[repr(C)]
pub(crate) struct Channel<I, Y> {
    /// Where `resume` saves the resumer. First field: the trampoline links
    /// to it for unwinding, and its address is stable for the whole life of
    /// the coroutine, so backtraces always reach the current resumer.
    pub(crate) resumer: ExecutionContext,
    /// Where the body saves itself when it suspends. Resumes switch with
    /// `switch_to_taking`, so this is saved exactly while the body is
    /// suspended (or fresh): a running or finished body's is not, which is
    /// how a drop or a resume that reaches a running coroutine knows to
    /// leave it alone, at no cost to the switch path.
    pub(crate) body: ExecutionContext,
    /// The value of the resume in progress; the body takes it.
    pub(crate) input: MaybeUninit<I>,
    /// The value of the suspend in progress; `resume` takes it.
    pub(crate) yielded: MaybeUninit<Y>,
    /// The part of the coroutine's state that switches do not show; written
    /// off the resume/suspend path only.
    pub(crate) phase: Phase,
    /// Set by a drop that resumed a body which had suspended again while
    /// being unwound: the value it handed out is still in `yielded`, for
    /// the body to drop on its own stack as it goes on unwinding.
    pub(crate) value_left: bool,
}

/// Where a coroutine is in its life, beside what `body.is_saved()` tells.
/// Kept in the channel: at a fixed address on the coroutine's own stack, so
/// that every path that reaches the coroutine, even one holding a stale
/// copy of the `Coroutine` value (moved out from under its own drop by a
/// destructor on its stack), sees the same state before it switches or
/// frees anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Built, never resumed: the closure is still in the root.
    Unstarted,
    /// The root has started the body.
    Started,
    /// A drop, `into_stack` or `force_unwind` is ending it (unwinding the
    /// body, dropping an unstarted closure or the body's last value). The suspend point sees
    /// this and unwinds; anything else that reaches the coroutine
    /// meanwhile, through a destructor that runs as part of that, must
    /// leave it alone: its stack is in use.
    Ending,
    /// The body returned or panicked (the root has written the outcome and
    /// left the stack for good), or `force_unwind` ended it.
    Finished,
}

impl<I, Y> Channel<I, Y> {
    /// The coroutine's state, as the phase and the body's context tell it.
    /// `Running` covers a body being ended too: either way its stack is in
    /// use, so nothing that reaches the coroutine may switch to it or free
    /// it.
    pub(crate) fn state(&self) -> CoroutineState {
        match self.phase {
            Phase::Unstarted => CoroutineState::Unstarted,
            Phase::Started if self.body.is_saved() => CoroutineState::Suspended,
            Phase::Started | Phase::Ending => CoroutineState::Running,
            Phase::Finished => CoroutineState::Completed,
        }
    }
}

/// The channel, the outcome and the stack: everything `Coroutine` reaches,
/// which is independent of the body's type. Kept here rather than in the
/// `Coroutine` value, so that value is one pointer: creating, moving and
/// dropping a coroutine copies nothing else.
#[repr(C)]
pub(crate) struct Header<I, Y, R> {
    pub(crate) channel: Channel<I, Y>,
    /// The body's result, written once, just before the final switch out.
    pub(crate) outcome: MaybeUninit<Result<R, Payload>>,
    /// The stack this header lives on. Only the coroutine's owner reads it
    /// (the `Coroutine` and the code that ends it), and moves it out
    /// (`Tenancy::stack`) once the body has ended, to release it; the body
    /// never touches it.
    pub(crate) tenancy: Tenancy,
    /// Drops the body closure of a coroutine that never started; knows the
    /// closure's type, which `Coroutine` does not.
    pub(crate) drop_unstarted: unsafe fn(NonNull<Header<I, Y, R>>),
}

/// A coroutine's stack and where it goes when the coroutine is done with it.
pub(crate) struct Tenancy {
    /// Moved out exactly once, when the coroutine releases its stack.
    pub(crate) stack: ManuallyDrop<Stack>,
    /// Where the stack goes, and whether its label must be cleared first.
    pub(crate) lease: Lease,
}

/// Whether a coroutine's stack goes back to the thread's pools, and whether
/// the label at its top holds a name (cleared when the stack is released).
/// One byte, so that a drop tells the common case, an unnamed default-size
/// pooled stack, with one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lease {
    /// A default-size stack from the pool, back through its hot slot
    /// without a size to compare: what `Coroutine::new` builds on.
    Default,
    /// From the pool of its size, back to that pool.
    Pooled,
    /// From the pool, with a name.
    PooledNamed,
    /// The caller's stack (`Builder::stack`), unmapped when released.
    Owned,
    /// The caller's stack, with a name.
    OwnedNamed,
}

impl Lease {
    /// This lease for a stack whose label holds a name.
    pub(crate) fn named(self) -> Lease {
        if self.pooled() {
            Lease::PooledNamed
        } else {
            Lease::OwnedNamed
        }
    }

    /// Whether the stack goes back to the thread's pools.
    pub(crate) fn pooled(self) -> bool {
        matches!(self, Lease::Default | Lease::Pooled | Lease::PooledNamed)
    }

    /// Whether the stack's label holds a name.
    pub(crate) fn is_named(self) -> bool {
        matches!(self, Lease::PooledNamed | Lease::OwnedNamed)
    }
}

/// What sits at the top of the stack: the header, then the trampoline
/// object. `repr(C)` keeps the header at offset 0 whatever the body's type,
/// so a `*mut Root<F, ..>` is also a valid `*mut Header<..>`.
#[repr(C)]
pub(crate) struct Root<F, I, Y, R> {
    header: Header<I, Y, R>,
    start: Start<F, I, Y, R>,
}

/// The trampoline object. `Trampoline::run` holds `&mut` to it for the
/// coroutine's whole life, so it holds only what no one else touches: the
/// body, and a pointer to the header the resumer shares.
struct Start<F, I, Y, R> {
    header: NonNull<Header<I, Y, R>>,
    body: ManuallyDrop<F>,
}

impl<F, I, Y, R> Root<F, I, Y, R>
where
    F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R,
{
    /// The root's alignment on the stack: its own, and at least the 16
    /// bytes the stack below it needs.
    const ALIGN: usize = if align_of::<Self>() > 16 {
        align_of::<Self>()
    } else {
        16
    };

    /// Bytes the root takes at the top of a stack, alignment included.
    pub(crate) const FOOTPRINT: usize = size_of::<Self>() + Self::ALIGN;

    /// Writes a root for `body` at the top of `region` and prepares a
    /// context whose first switch runs it, on the stack below the root and
    /// its `guard` bytes below that (`ExecutionContext::setup_guarded`).
    /// The root keeps `tenancy`. Returns the header.
    ///
    /// # Safety
    /// `region` is writable, unused memory of `tenancy.stack`, at least
    /// `FOOTPRINT` plus `sure_context::MIN_SETUP_BYTES` long, with `guard`
    /// bytes of its guard just below it.
    pub(crate) unsafe fn install(
        region: NonNull<[u8]>,
        guard: usize,
        tenancy: Tenancy,
        body: F,
    ) -> NonNull<Header<I, Y, R>> {
        let bottom = region.cast::<u8>().as_ptr();
        let top = bottom as usize + region.len();
        let root_addr = (top - size_of::<Self>()) & !(Self::ALIGN - 1);
        let offset = root_addr - bottom as usize;
        // SAFETY: `root_addr` is inside the region (the caller guarantees
        // FOOTPRINT bytes) and aligned for `Self`; nothing is written yet.
        let root = unsafe { bottom.add(offset).cast::<Self>() };
        let below = NonNull::slice_from_raw_parts(
            // SAFETY: `bottom` came from a NonNull.
            unsafe { NonNull::new_unchecked(bottom) },
            offset,
        );
        // SAFETY: the region below the root is the caller's unused stack;
        // the root is written at its address below, before the context can
        // run, and stays there while the coroutine may run; the resumer
        // context the trampoline links to lives inside it. The context is
        // made first so that the root is written once, context included.
        let body_context = unsafe {
            let start = NonNull::new_unchecked(&raw mut (*root).start);
            ExecutionContext::setup_guarded(below, guard, start)
        };
        // SAFETY: the root's bytes are inside the region, aligned and unused
        // (above `below`, which the context's frame stays within).
        unsafe {
            let header = NonNull::new_unchecked(root.cast::<Header<I, Y, R>>());
            root.write(Root {
                header: Header {
                    channel: Channel {
                        resumer: ExecutionContext::new(),
                        body: body_context,
                        input: MaybeUninit::uninit(),
                        yielded: MaybeUninit::uninit(),
                        phase: Phase::Unstarted,
                        value_left: false,
                    },
                    outcome: MaybeUninit::uninit(),
                    tenancy,
                    drop_unstarted: Self::drop_unstarted,
                },
                start: Start {
                    header,
                    body: ManuallyDrop::new(body),
                },
            });
            header
        }
    }

    /// Drops the body of a coroutine that never started.
    ///
    /// # Safety
    /// `header` came from `install` with this `F`, and the coroutine never
    /// ran; the body is not used again.
    unsafe fn drop_unstarted(header: NonNull<Header<I, Y, R>>) {
        // SAFETY: by the contract, this is a Root<F, ..> whose body is
        // still in place.
        unsafe { ManuallyDrop::drop(&mut (*header.cast::<Self>().as_ptr()).start.body) }
    }
}

impl<F, I, Y, R> Trampoline for Start<F, I, Y, R>
where
    F: FnOnce(&mut SuspendHandle<I, Y>, I) -> R,
{
    /// Inline into sure-context's entry function, so that the body, the
    /// `catch_unwind` and the final switch share one frame: a body that
    /// suspends then has no call of its own pending (the entry function is
    /// reached by a `jmp`), so on aarch64 and riscv64 its suspend's `ret`
    /// pops the return address that the resume's `call` pushed, and the CPU
    /// predicts it (x86-64's switches neither call nor return). Out of
    /// line, the return-stack buffer held this call and `catch_unwind`'s,
    /// and the first suspend, the body's return and the exit each
    /// mispredicted: 47 ns per create that suspends once, against 12 ns.
    #[inline(always)]
    fn run(&mut self) -> ! {
        let header = self.header.as_ptr();
        // SAFETY: the first resume wrote the input and started us; the body
        // is taken exactly once, here.
        let (body, input) = unsafe {
            (*header).channel.phase = Phase::Started;
            (
                ManuallyDrop::take(&mut self.body),
                (*header).channel.input.assume_init_read(),
            )
        };
        // `header` is a raw pointer, not a reference, so the resumer's own
        // accesses to the channel do not invalidate the handle's pointer.
        // SAFETY: the channel is non-null and lives as long as the coroutine.
        let mut handle =
            unsafe { SuspendHandle::new(NonNull::new_unchecked(&raw mut (*header).channel)) };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| body(&mut handle, input)));
        // SAFETY: the resumer is suspended in `resume` (or `Drop`), waiting
        // for this switch. Every value on this stack was moved out or
        // dropped: `outcome` is moved into the header, `handle` and the
        // closure hold nothing to drop. The root itself stays in place until
        // the coroutine's owner frees the stack.
        unsafe {
            ptr::write(&mut (*header).outcome, MaybeUninit::new(outcome));
            (*header).channel.phase = Phase::Finished;
            ExecutionContext::exit_to(&(*header).channel.resumer)
        }
    }
}
