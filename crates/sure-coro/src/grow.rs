//! Stack growth with stacker's names and signatures: [`remaining_stack`],
//! [`maybe_grow`] and [`grow`], right on every stack and pooled.
//!
//! See the crate's documentation, "Growing the stack", for the design.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;

use sure_context::{ExecutionContext, Trampoline};
use sure_stack::{MIN_STACK_SIZE, Stack};

use crate::pool;
use crate::root::Payload;

/// The bytes of stack left below the caller, on whatever stack it runs:
/// the thread's own, a coroutine's, or a segment [`grow`] made. `None` when
/// the caller runs on a stack sure does not know (one a scheduler carved out
/// of its own memory, say); [`maybe_grow`] then grows.
///
/// ```
/// use sure_coro::{Builder, remaining_stack};
///
/// let mut co = Builder::new()
///     .stack_size(64 * 1024)
///     .build(|_h| remaining_stack())
///     .unwrap();
/// let left = co.resume().into_return().flatten().unwrap();
/// assert!(left < 64 * 1024 && left > 32 * 1024);
/// ```
///
/// The first call on a thread reads the thread's own stack bounds (and
/// prepares it for overflow reports, as creating a coroutine does). After
/// that, a call costs a thread-local load and a few comparisons while the
/// caller stays on the stack it last asked from; the first call after
/// moving to another stack looks it up in a process-wide registry, under a
/// lock. Only Linux knows a thread's own stack bounds; elsewhere this
/// is `None` there.
#[inline]
pub fn remaining_stack() -> Option<usize> {
    let sp = sure_context::stack_pointer();
    sure_stack::stack_bounds(sp).map(|bounds| sp - bounds.start)
}

/// Runs `callback` on the current stack if at least `red_zone` bytes of it
/// are left ([`remaining_stack`]), or else on a new segment of `stack_size`
/// bytes, as [`grow`] does. `callback` may borrow from its caller.
///
/// The red zone is what the callback may use before its next check: the
/// largest frames it makes, a debug build's included (about 8 times a
/// release build's), and what any code it calls needs. stacker's users
/// pick 32 KiB to 100 KiB; so does the example above.
///
/// # Panics
/// As [`grow`], when it grows.
#[inline]
pub fn maybe_grow<R, F: FnOnce() -> R>(red_zone: usize, stack_size: usize, callback: F) -> R {
    match remaining_stack() {
        Some(left) if left >= red_zone => callback(),
        _ => grow(stack_size, callback),
    }
}

/// Runs `callback` on a new segment of at least `stack_size` bytes
/// (rounded up to whole pages, and to [`MIN_STACK_SIZE`]), and returns what
/// it returns. `callback` may borrow from its caller: it runs to completion
/// before `grow` returns (or suspends the coroutine the caller runs in,
/// which then holds the segment until it resumes or is dropped).
///
/// The segment comes from this thread's pool of stacks of its size and
/// goes back to it afterwards (see [`Builder::stack_size`] for the pools'
/// bounds), so only the first `grow` of a size maps a stack.
///
/// ```
/// let numbers = vec![1, 2, 3];
/// let sum = sure_coro::grow(1024 * 1024, || numbers.iter().sum::<i32>());
/// assert_eq!(sum, 6);
/// ```
///
/// # Panics
/// With the callback's own payload if it panics. If no stack can be had
/// for the segment (the process ran out of memory or of memory mappings, or
/// `stack_size` is too large for any stack).
///
/// [`Builder::stack_size`]: crate::Builder::stack_size
pub fn grow<R, F: FnOnce() -> R>(stack_size: usize, callback: F) -> R {
    let stack = pool::take_sized(stack_size.max(MIN_STACK_SIZE)).unwrap_or_else(|error| {
        panic!("sure_coro::grow could not get a stack of {stack_size} bytes: {error}")
    });
    let outcome = run_on(&stack, callback);
    pool::give_back(stack);
    outcome.unwrap_or_else(|payload| panic::resume_unwind(payload))
}

/// What the segment and the code that grew it share: the grower's saved
/// context (the segment's link, which it exits to) and the callback's
/// outcome. Outside the trampoline object, which the segment holds `&mut`
/// while it runs.
struct Link<R> {
    grower: ExecutionContext,
    outcome: MaybeUninit<Result<R, Payload>>,
}

/// The trampoline object of a segment: the callback, run once.
struct Segment<F, R> {
    link: NonNull<Link<R>>,
    callback: ManuallyDrop<F>,
}

impl<F: FnOnce() -> R, R> Trampoline for Segment<F, R> {
    fn run(&mut self) -> ! {
        // SAFETY: the segment runs once, so the callback is taken once.
        let callback = unsafe { ManuallyDrop::take(&mut self.callback) };
        let outcome = panic::catch_unwind(AssertUnwindSafe(callback));
        let link = self.link.as_ptr();
        // SAFETY: `run_on` is suspended in its switch into this segment and
        // keeps the link in place until this exit; nothing is left on this
        // stack to drop (the outcome moves into the link).
        unsafe {
            (*link).outcome.write(outcome);
            ExecutionContext::exit_to(&(*link).grower)
        }
    }
}

/// Runs `callback` on `stack` until it returns or panics.
fn run_on<F: FnOnce() -> R, R>(stack: &Stack, callback: F) -> Result<R, Payload> {
    let mut link = Link {
        grower: ExecutionContext::new(),
        outcome: MaybeUninit::uninit(),
    };
    let link = NonNull::from(&mut link);
    let mut segment = Segment {
        link,
        callback: ManuallyDrop::new(callback),
    };
    // SAFETY: the stack is ours and unused for this whole call; the link
    // and the segment object live in this frame, which stays in place until
    // the segment exits (also while the callback has suspended the
    // coroutine this runs in: this frame is on that coroutine's stack). The
    // grower's context is this execution's, saved by the switch, and the
    // segment's exit wrote the outcome before switching back to it.
    unsafe {
        let context = ExecutionContext::setup_guarded(
            stack.region(),
            crate::builder::context_guard(stack),
            NonNull::from(&mut segment),
        );
        (*link.as_ptr()).grower.switch_to(&context);
        (*link.as_ptr()).outcome.assume_init_read()
    }
}
