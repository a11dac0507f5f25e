//! One resume + suspend round trip (main -> context -> main) in a tight
//! loop, for three pairings of sure-context's two switch entries and for the
//! `context` crate (a port of Boost's fcontext).
//!
//! - `sure/call-ret`: main `switch_to`s the context, which `return_to`s main.
//!   The `ret` consumes the return-stack-buffer entry the `call` pushed, so
//!   both transfers are predicted. This is the intended pairing.
//! - `sure/call-call`: both directions `switch_to`: every transfer is an
//!   indirect `jmp`, and the RSB entries the `call`s push are never popped.
//! - `sure/ret-ret`: both directions `return_to`: every `ret` finds the RSB
//!   holding the other side's call site and mispredicts (Sure's C++ design).
//! - `context/resume`: `Context::resume` from main, and the context function
//!   resuming back through the `Transfer` it was handed, in a loop (not on
//!   riscv64, which the `context` crate does not support).
//!
//! The three `sure` pairings describe aarch64 and riscv64. On x86-64 `switch_to` and
//! `return_to` are one switch that jumps, with no `call` or `ret`, so the
//! three pairings run the same code there (their figures differ only by
//! code placement).
//!
//! The sure stacks are plain heap memory; the `context` crate's stack is its
//! `ProtectedFixedSizeStack` (mmap and a guard page). Neither matters here:
//! the loop touches the same few stack words every time.
//!
//! sure-context's switches take `&self` and keep the saved stack pointer
//! in a `Cell`, so the optimiser reloads a target's stack pointer on every
//! switch; the loops below need no barrier of their own.

use std::marker::PhantomData;
use std::ptr::NonNull;

use criterion::{Criterion, criterion_main};
use sure_context::{ExecutionContext, Trampoline};

/// Stack bytes for every context in this file.
const STACK_BYTES: usize = 64 * 1024;

/// One of sure-context's two ways to save the running execution and
/// continue another.
trait Switch {
    /// Saves the running execution into `from` and continues `to`.
    ///
    /// # Safety
    /// As [`ExecutionContext::switch_to`].
    unsafe fn switch(from: &ExecutionContext, to: &ExecutionContext);
}

/// [`ExecutionContext::switch_to`]: on aarch64 and riscv64 entered with a call.
struct Call;

impl Switch for Call {
    #[inline(always)]
    unsafe fn switch(from: &ExecutionContext, to: &ExecutionContext) {
        // SAFETY: forwarded from this function's contract.
        unsafe { from.switch_to(to) }
    }
}

/// [`ExecutionContext::return_to`]: on aarch64 and riscv64 leaves with `ret`.
struct Ret;

impl Switch for Ret {
    #[inline(always)]
    unsafe fn switch(from: &ExecutionContext, to: &ExecutionContext) {
        // SAFETY: forwarded from this function's contract.
        unsafe { from.return_to(to) }
    }
}

/// The two saved executions of a ping-pong: main's and the context's.
struct Contexts {
    /// Where main saves itself while the context runs.
    main: ExecutionContext,
    /// Where the context saves itself while main runs.
    fiber: ExecutionContext,
}

/// The context's code: switch back to main with `Back`, forever.
///
/// It holds the contexts by raw pointer, so the `&mut self` of `run` never
/// overlaps main's accesses to them.
struct Bounce<Back> {
    /// The shared pair, owned by the [`PingPong`].
    contexts: NonNull<Contexts>,
    /// The switch used to go back to main.
    back: PhantomData<Back>,
}

impl<Back: Switch> Trampoline for Bounce<Back> {
    fn run(&mut self) -> ! {
        loop {
            let contexts = self.contexts.as_ptr();
            // Main saved itself into `main` with the switch that is running
            // us, and touches neither field until it is continued.
            // SAFETY: the PingPong keeps `contexts` alive and in place while
            // this context may run; `fiber` and `main` are disjoint fields.
            unsafe { Back::switch(&(*contexts).fiber, &(*contexts).main) }
        }
    }
}

/// A context that bounces straight back, entered from main with `There`
/// and leaving with `Back`.
struct PingPong<There, Back> {
    /// The saved executions, shared with the context through a raw pointer.
    contexts: NonNull<Contexts>,
    /// The context's trampoline object.
    bounce: NonNull<Bounce<Back>>,
    /// The context's stack; `u128` for the ABI's 16-byte alignment.
    stack: NonNull<[u128]>,
    /// The switch used to enter the context.
    there: PhantomData<There>,
}

impl<There: Switch, Back: Switch> PingPong<There, Back> {
    /// Sets up the context; nothing runs until the first round trip.
    fn new() -> Self {
        let stack = NonNull::from(Box::leak(vec![0u128; STACK_BYTES / 16].into_boxed_slice()));
        let contexts = NonNull::from(Box::leak(Box::new(Contexts {
            main: ExecutionContext::new(),
            fiber: ExecutionContext::new(),
        })));
        let bounce = NonNull::from(Box::leak(Box::new(Bounce::<Back> {
            contexts,
            back: PhantomData,
        })));
        let region = NonNull::slice_from_raw_parts(stack.cast::<u8>(), STACK_BYTES);
        // The stack, the trampoline object and the contexts are leaked
        // boxes that this PingPong frees only in `drop`, after the last
        // switch into the context; `contexts` is only reached through raw
        // pointers while the context may run.
        // SAFETY: all three outlive the context's runs, as above, and
        // nothing else touches the stack or the trampoline object.
        unsafe {
            (*contexts.as_ptr()).fiber = ExecutionContext::setup(region, bounce);
        }
        PingPong {
            contexts,
            bounce,
            stack,
            there: PhantomData,
        }
    }

    /// Main -> context -> main.
    #[inline(always)]
    fn round_trip(&mut self) {
        let contexts = self.contexts.as_ptr();
        // Main is the running execution and saves itself into `main`; the
        // context only runs until it switches straight back.
        // SAFETY: `fiber` is suspended (fresh from setup, or saved by the
        // Bounce loop) and its stack is alive until `drop`.
        unsafe { There::switch(&(*contexts).main, &(*contexts).fiber) }
    }
}

impl<There, Back> Drop for PingPong<There, Back> {
    fn drop(&mut self) {
        // The context is suspended for good inside `Bounce::run`, whose
        // stack holds nothing with a destructor, so its memory may go.
        // SAFETY: all three pointers come from `Box::leak` in `new` and are
        // freed once, here; no switch into the context follows.
        unsafe {
            drop(Box::from_raw(self.stack.as_ptr()));
            drop(Box::from_raw(self.bounce.as_ptr()));
            drop(Box::from_raw(self.contexts.as_ptr()));
        }
    }
}

/// Measures the round trip of one sure-context pairing.
fn bench_sure<There: Switch, Back: Switch>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
) {
    let mut ping_pong = PingPong::<There, Back>::new();
    ping_pong.round_trip(); // enter the trampoline once, outside the timing
    c.bench_function(id, |b| b.iter(|| ping_pong.round_trip()));
}

/// The `context` crate's round trip; it has no riscv64 port.
#[cfg(not(target_arch = "riscv64"))]
mod fcontext {
    use context::stack::ProtectedFixedSizeStack;
    use context::{Context, Transfer};

    use super::STACK_BYTES;

    /// The `context` crate's context function: resumes whoever resumed it, with
    /// the data it was given, forever.
    extern "C" fn context_bounce(mut t: Transfer) -> ! {
        loop {
            // SAFETY: `t.context` is the suspended main context that resumed
            // us; nothing on this stack needs dropping if it is never resumed.
            t = unsafe { t.context.resume(t.data) };
        }
    }

    /// Measures the `context` crate's round trip.
    pub fn bench(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
        let stack = ProtectedFixedSizeStack::new(STACK_BYTES).expect("context stack");
        // SAFETY: `stack` outlives every resume of the context, all within this
        // function.
        let fresh = unsafe { Context::new(&stack, context_bounce) };
        // SAFETY: the fresh context starts `context_bounce`, which resumes us.
        let mut other = Some(unsafe { fresh.resume(0) }.context);
        c.bench_function("context/resume", |b| {
            b.iter(|| {
                // SAFETY: `other` always holds the context suspended in
                // `context_bounce`'s loop, put back after every resume; the
                // `unwrap_unchecked` is on a slot that is never left empty.
                unsafe {
                    let t = other.take().unwrap_unchecked().resume(1);
                    other = Some(t.context);
                }
            })
        });
        // The context stays suspended in its loop, holding nothing to drop;
        // the stack is unmapped when `stack` drops here.
    }
}

/// The `switch` group: every design's round trip.
fn switch_designs(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    bench_sure::<Call, Ret>(&mut group, "sure/call-ret");
    bench_sure::<Call, Call>(&mut group, "sure/call-call");
    bench_sure::<Ret, Ret>(&mut group, "sure/ret-ret");
    #[cfg(not(target_arch = "riscv64"))]
    fcontext::bench(&mut group);
    group.finish();
}

/// Holds the criterion group, so that the `pub fn` its macro generates is
/// not exported (and needs no docs of its own).
mod group {
    criterion::criterion_group!(switch, super::switch_designs);
}

criterion_main!(group::switch);
