//! Safe stackful coroutines: a body that runs on its own stack and can
//! suspend from any depth of ordinary function calls.
//!
//! ```
//! use sure_coro::Coroutine;
//!
//! let mut co = Coroutine::new(|h| {
//!     println!("step 1");
//!     h.suspend();
//!     println!("step 2");
//! });
//! assert!(co.resume().is_yield()); // prints step 1, returns at the suspend
//! assert!(co.resume().is_return()); // prints step 2, the body returns
//! assert!(co.is_completed());
//! ```
//!
//! # The model
//!
//! - A [`Coroutine`] owns a body (a `'static` closure) and a stack. Nothing
//!   runs when it is built.
//! - [`Coroutine::resume`] runs the body on the calling thread, on the
//!   coroutine's stack, until the body calls [`SuspendHandle::suspend`]
//!   (resume returns [`CoroutineResult::Yield`]) or returns (resume returns
//!   [`CoroutineResult::Return`], and the coroutine is completed). Exactly
//!   one of the two sides runs at any time; there are no threads involved.
//! - Values flow both ways: [`Coroutine::resume_with`] passes one in,
//!   [`SuspendHandle::suspend_with`] passes one out and returns the next
//!   one in, and the body's return value comes out last. With `()` for
//!   both, as in the example above, this costs nothing.
//! - A panic in the body comes out of the `resume` that ran it, with its
//!   original payload. Dropping a suspended coroutine unwinds its stack so
//!   every destructor on it runs. See [`Coroutine`] for the details.
//! - Coroutines nest: a body can build and drive other coroutines.
//! - A [`Generator`] is a coroutine seen as an [`Iterator`] over what it
//!   suspends with.
//! - A [`ScopedCoroutine`] is one whose body borrows the caller's data,
//!   run inside a scope that ends it (as [`std::thread::scope`] joins its
//!   threads).
//!
//! # The full form
//!
//! `Coroutine<Input, Yield, Return>`: each resume passes an `Input`, each
//! suspend hands out a `Yield`, and the body returns a `Return`.
//!
//! ```
//! use sure_coro::{Coroutine, CoroutineResult};
//!
//! // Echoes the length of every string it is given; stops at "".
//! let mut lengths = Coroutine::with_input(|h, mut s: String| {
//!     let mut count = 0;
//!     while !s.is_empty() {
//!         count += 1;
//!         s = h.suspend_with(s.len());
//!     }
//!     count
//! });
//! assert_eq!(lengths.resume_with("four".into()), CoroutineResult::Yield(4));
//! assert_eq!(lengths.resume_with("xy".into()), CoroutineResult::Yield(2));
//! assert_eq!(lengths.resume_with(String::new()), CoroutineResult::Return(2));
//! ```
//!
//! # Stacks
//!
//! [`Coroutine::new`] takes a 256 KiB guarded stack
//! ([`sure_stack::DEFAULT_STACK_SIZE`]) from a per-thread
//! [`StackPool`] and gives it back when dropped, so
//! a warm pool makes creating a coroutine free of system calls. Pages are
//! mapped lazily: an idle coroutine costs only the pages it touched. The
//! pool keeps at most [`StackPool::DEFAULT_CAPACITY`] idle stacks; change
//! that with [`with_thread_pool`]. [`Builder`] chooses another size
//! (pooled per size too, within bounds), or a stack of the caller's, and
//! returns allocation errors instead of panicking.
//!
//! # Sizing a stack
//!
//! How much stack a coroutine needs is a measurement, not a guess:
//! [`Coroutine::peak_stack_usage`] tells the most bytes of its stack it
//! has used, exact to within a page, at any time and at no cost until
//! asked (it reads which of the stack's pages are resident). The rule:
//!
//! 1. Run the coroutine on the deepest input you expect, in the build you
//!    ship, on a stack with room to spare (or on the default one, after
//!    [`Coroutine::reset_peak_stack_usage`] so that the pooled stack's
//!    earlier users do not count).
//! 2. Ask [`Builder::stack_size`] for twice the deepest figure you saw
//!    (at least [`MIN_STACK_SIZE`]): the headroom is for inputs a little
//!    deeper than the test's, and for the signal handlers and `std`
//!    machinery that run on the stack (a panic's backtrace needs about
//!    30 KiB).
//! 3. A debug build uses more: its frames are larger and nothing is
//!    inlined. A recursive-descent parser measured 5.7 KB per level in a
//!    debug build against 0.7 KB in release, 8 times as much; measure both
//!    if you test in debug, or size for the debug figure.
//! 4. Where the depth follows the input (recursion over nesting), no size
//!    is safe: grow instead, with [`maybe_grow`] (below).
//!
//! ```
//! use sure_coro::{Builder, Coroutine, MIN_STACK_SIZE};
//!
//! /// The depth of `[[[...]]]`, by recursion: a frame per level.
//! #[inline(never)]
//! fn depth(text: &[u8]) -> u32 {
//!     match text {
//!         [b'[', inner @ .., b']'] => depth(inner) + 1,
//!         _ => 0,
//!     }
//! }
//!
//! let deepest = [vec![b'['; 1000], vec![b']'; 1000]].concat();
//! let mut probe = Coroutine::new({
//!     let deepest = deepest.clone();
//!     move |_h| depth(&deepest)
//! });
//! probe.reset_peak_stack_usage()?; // the pooled stack's earlier users
//! assert_eq!(probe.resume().into_return(), Some(1000));
//! let size = (2 * probe.peak_stack_usage()?).max(MIN_STACK_SIZE);
//! let mut sized = Builder::new().stack_size(size).build(move |_h| depth(&deepest)).unwrap();
//! assert_eq!(sized.resume().into_return(), Some(1000));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Measure in the build you ship: a sanitizer's build lays its frames out
//! differently (AddressSanitizer moves address-taken locals to a "fake
//! stack" on the heap, in some coroutines and not others), so its figures
//! say little about any other build.
//!
//! The pools keep the pages their stacks' users touched, so a pool's
//! [`StackPool::peak_usage`] is the high-water mark of every coroutine that
//! gave its stack back to it: read it after a representative run, for the
//! default size with [`with_thread_pool`], or for every size this thread
//! pools with [`pooled_stack_usage`].
//!
//! # Growing the stack
//!
//! Code that recurses as deep as its input (a parser, a tree walk, an
//! interpreter) asks before each level whether enough stack is left, and if
//! not, goes on in a fresh *segment*:
//!
//! ```
//! /// Nested lists of any depth, as "[[[]]]", checked by recursion.
//! fn depth(text: &[u8]) -> usize {
//!     // Grow by 1 MiB whenever less than 64 KiB is left.
//!     sure_coro::maybe_grow(64 * 1024, 1024 * 1024, || match text {
//!         [b'[', inner @ .., b']'] => 1 + depth(inner),
//!         _ => 0,
//!     })
//! }
//!
//! let deep: Vec<u8> = [vec![b'['; 20_000], vec![b']'; 20_000]].concat();
//! // The same on the thread's own stack and on a coroutine's small one.
//! assert_eq!(depth(&deep), 20_000);
//! let mut co = sure_coro::Builder::new()
//!     .stack_size(64 * 1024)
//!     .build(move |_h| depth(&deep))
//!     .unwrap();
//! assert_eq!(co.resume().into_return(), Some(20_000));
//! ```
//!
//! Switching from stacker is a change of import. What differs:
//!
//! - **Right inside coroutines.** stacker reads the thread's stack limit,
//!   so inside any coroutine its `remaining_stack` is wrong (or `None`).
//!   Here it is measured against the stack the caller is on: the thread's
//!   own, a coroutine's, or a segment, nested in any order.
//! - **Pooled.** stacker maps, protects and unmaps a segment on every
//!   `grow`. Here a segment comes from the thread's pool of its size and
//!   goes back to it, so a loop of grows makes no system call after the
//!   first: about as cheap as a coroutine that never suspends.
//! - **Nothing on the switch path.** Resuming and suspending a coroutine do
//!   not record which stack runs; [`remaining_stack`] finds out from the
//!   stack pointer ([`sure_stack::stack_bounds`]), remembering its last
//!   answer per thread.
//!
//! A segment is a guarded stack like a coroutine's: an overflow in it is
//! reported (as a coroutine's stack's), a panic in the callback comes out of
//! `grow` with its payload, backtraces walk from the segment into the code
//! that grew it, and the callback may suspend the coroutine it runs in:
//! dropping that coroutine unwinds the segment with the rest of its stack.
//!
//! # Stack overflow
//!
//! Below every coroutine stack lies a guard page. A body that overflows its
//! stack runs into it, and the process ends with a message on stderr, in the
//! manner of Rust's own `thread '...' has overflowed its stack`:
//!
//! ```text
//! thread 'main' (4242) has overflowed a coroutine's stack: the coroutine's stack of 256 KiB (guard page at 0x7f3a5c1ff000) is exhausted
//! help: build the coroutine with a bigger stack, for example sure_coro::Builder::new().stack_size(512 * 1024).build(body)
//! note: to size it, run the coroutine on input that fits and read Coroutine::peak_stack_usage(); ask for twice the deepest figure seen (a debug build may need several times a release build's), or let deep recursion grow the stack with sure_coro::maybe_grow
//! fatal runtime error: coroutine stack overflow, aborting
//! ```
//!
//! then aborts (`SIGABRT`); a coroutine built with [`Builder::name`] is
//! named in it (`has overflowed a coroutine's stack named 'parser'`). Give
//! such a coroutine a bigger stack with [`Builder::stack_size`]. The handler
//! behind this (`SIGSEGV` and `SIGBUS`, on an alternate signal stack) is
//! sure-stack's ([`sure_stack::overflow`]), which reports the overflow of any
//! guarded stack; this crate words it for coroutines when a thread creates
//! its first one. Resuming and suspending cost nothing for it. Every other
//! fault goes on to the handler installed before it: a thread's own stack
//! overflow still gets Rust's message, and other faults the usual signal.
//! Only Linux has this; elsewhere an overflow is a plain `SIGSEGV`.
//!
//! [`StackPool::DEFAULT_CAPACITY`]: sure_stack::StackPool::DEFAULT_CAPACITY

mod builder;
mod cancel;
mod coroutine;
mod current;
mod ending;
mod generator;
mod grow;
mod handle;
mod overflow_report;
mod pool;
mod root;
mod scoped;
mod thread_bound;
mod thread_exit;

pub use builder::Builder;
pub use cancel::{Cancelled, is_cancellation};
pub use coroutine::{Coroutine, CoroutineResult, CoroutineState};
pub use current::is_inside_coroutine;
pub use generator::Generator;
pub use grow::{grow, maybe_grow, remaining_stack};
pub use handle::SuspendHandle;
pub use pool::{pooled_stack_usage, with_thread_pool};
pub use scoped::{ScopedCoroutine, ScopedCoroutineRef};
pub use sure_stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, Stack, StackError, StackPool};

static_assertions::assert_not_impl_any!(Coroutine: Send, Sync);
static_assertions::assert_not_impl_any!(SuspendHandle: Send, Sync);
static_assertions::assert_not_impl_any!(Generator<u32>: Send, Sync);
static_assertions::assert_not_impl_any!(ScopedCoroutine<'static>: Send, Sync);
static_assertions::assert_not_impl_any!(ScopedCoroutineRef<'static, (), (), ()>: Send, Sync);

/// The crate README's examples (its crates.io page), compiled and run as
/// doc tests so they stay true; the workspace README's run in sure-bench.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
