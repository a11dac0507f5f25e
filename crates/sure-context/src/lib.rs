//! A hand-written x86-64 context switch: [`ExecutionContext`], enough on its
//! own to build a scheduler, fibers or coroutines.
//!
//! `sure-context` is `#![no_std]` and depends on nothing: it takes a stack
//! as a plain memory region (`NonNull<[u8]>`), so kernels, embedded
//! schedulers and custom allocators can use it. `sure-stack` provides
//! guarded stacks; `sure-coro` builds safe coroutines from the two.
//!
//! # The model
//!
//! An [`ExecutionContext`] is the saved state of a suspended execution: one
//! stack pointer. [`ExecutionContext::setup`] prepares a fresh one on a
//! stack so that the first switch into it runs a [`Trampoline`].
//! [`switch_to`](ExecutionContext::switch_to) and
//! [`return_to`](ExecutionContext::return_to) save the running execution
//! and continue another; [`exit_to`](ExecutionContext::exit_to) leaves a
//! finished one for good.
//!
//! # Performance
//!
//! `switch_to` is inline assembly that `call`s into a naked function;
//! `return_to` ends in an inline `ret` (one taken branch fewer than a jump
//! into a second naked function). The inline assembly declares r12-r15 and the caller-saved
//! registers clobbered, so the compiler saves only those that are live, and
//! pushes only rbx and rbp by hand. A `switch_to` paired with a `return_to`
//! back is a `call` matched by a `ret`, which the CPU's return-stack buffer
//! predicts. See `cargo xtask bench` for figures.
//!
//! # Floating-point control state
//!
//! MXCSR (SSE rounding and exception masks) and the x87 control word are
//! callee-saved in the System V ABI. By default they are *not* saved on a
//! switch, as in Boost's and corosensei's fast paths: a context that changes
//! its rounding mode leaks the change to whoever runs next. Enable the
//! `fp-control` feature to save and restore both on every switch.
//!
//! # AddressSanitizer
//!
//! With the `asan` feature, every switch is announced to AddressSanitizer
//! (`__sanitizer_start_switch_fiber` before it,
//! `__sanitizer_finish_switch_fiber` after it), so that a program built with
//! `-Zsanitizer=address` (nightly) gets no false reports after a switch, and
//! the fake stack of a context that exits is freed. A context then also
//! records its stack's bounds: four words instead of one. Without the
//! feature nothing changes: the sanitizer part of a context is zero-sized
//! and a switch compiles to the same code. `cargo xtask test` runs the
//! tests this way when a nightly toolchain is installed.
//!
//! # ThreadSanitizer
//!
//! With the `tsan` feature, every execution is a ThreadSanitizer fiber
//! (`__tsan_create_fiber` when a fresh context is first entered,
//! `__tsan_switch_to_fiber` immediately before every switch,
//! `__tsan_destroy_fiber` when a context exits), so that a program built
//! with `-Zsanitizer=thread` (nightly) sees each coroutine's accesses as
//! its own and a switch as the synchronisation it is, also when a
//! coroutine moves between threads. A context then also holds its fiber:
//! one more word. Without the feature the part is zero-sized and a switch
//! compiles to the same code. The `asan` and `tsan` parts are independent
//! (though rustc builds with one sanitizer at a time). `cargo xtask test`
//! runs the multi-threaded tests this way when a nightly toolchain is
//! installed.
//!
//! # Debuggers and backtraces
//!
//! The entry trampoline carries DWARF call-frame information, so gdb's `bt`
//! and `std::backtrace` taken inside a context continue into the frames of
//! the execution that first switched into it (see
//! [`ExecutionContext::setup`] for what that requires).
//!
//! # Example
//!
//! See `examples/round_robin.rs` for a scheduler that runs tasks on their
//! own stacks, switching among them directly.
#![no_std]

mod arch;
mod context;
mod machine;
mod sanitizer;
mod tsan;

pub use context::{ExecutionContext, MIN_SETUP_BYTES, Trampoline};

/// The crate README's examples (its crates.io page), compiled and run as
/// doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
