//! A hand-written context switch for x86-64 (Linux and Windows), aarch64
//! and riscv64:
//! [`ExecutionContext`], enough on its own to build a scheduler, fibers or
//! coroutines.
//!
//! `sure-context` is `#![no_std]` and depends on nothing: it takes a stack
//! as a plain memory region (`NonNull<[u8]>`), so kernels, embedded
//! schedulers and custom allocators can use it. `sure-stack` provides
//! guarded stacks; `sure-coro` builds safe coroutines from the two.
//!
//! # The model
//!
//! An [`ExecutionContext`] is the saved state of a suspended execution: its
//! stack pointer (and on x86-64 its resume address, rbx and rbp; the rest
//! is on its stack). [`ExecutionContext::setup`] prepares a fresh one on a
//! stack so that the first switch into it runs a [`Trampoline`].
//! [`switch_to`](ExecutionContext::switch_to) and
//! [`return_to`](ExecutionContext::return_to) save the running execution
//! and continue another; [`exit_to`](ExecutionContext::exit_to) leaves a
//! finished one for good.
//!
//! # Targets
//!
//! | target | ABI | file |
//! |---|---|---|
//! | x86-64 Linux and BSDs | System V | `src/arch/x86_64.rs` |
//! | x86-64 Windows (gnu, msvc) | Microsoft x64 | `src/arch/x86_64_windows.rs` |
//! | aarch64 Linux | AAPCS64 | `src/arch/aarch64.rs` |
//! | riscv64 Linux (`riscv64gc`) | LP64D | `src/arch/riscv64.rs` |
//!
//! Any other target stops with a `compile_error!` that names these.
//!
//! # Performance
//!
//! On x86-64 both `switch_to` and `return_to` are one inline switch, a copy
//! at each call site so that its indirect jump is predicted per site: it
//! stores the running execution's stack pointer, resume address, rbx and
//! rbp in its context, loads the target's, and jumps. Continuing a context
//! on Linux reads only the context (Windows also restores the thread
//! environment block's stack fields from the stack), and with no `call` or `ret` the return-stack
//! buffer keeps predicting the returns of the code on either side. On
//! aarch64 and riscv64 `switch_to` calls into one naked switch (`bl`,
//! `call`) and `return_to` ends in an inline `ret`: a `switch_to` paired
//! with a `return_to` back is a call matched by a return, which the CPU's
//! return-address predictor gets right. The
//! inline assembly declares clobbered every callee-saved register that Rust
//! lets it name, so the compiler saves only those that are live; the two
//! it cannot name (rbx and rbp, x19 and x29, s0 and s1) are saved by hand.
//! See `cargo xtask bench` for figures.
//!
//! # Floating-point control state
//!
//! The floating-point control state (MXCSR and the x87 control word on
//! x86-64, FPCR on aarch64, the rounding mode `frm` on riscv64) is *not*
//! saved on a switch by default, as in Boost's and corosensei's fast paths:
//! a context that changes its rounding mode leaks the change to whoever
//! runs next. Enable the `fp-control` feature to keep it per context. On
//! x86-64, System V makes those control bits callee-saved; AAPCS64 and the
//! RISC-V psABI give them thread storage duration (a call may change them,
//! as `fesetround` does), so there the feature makes each context behave
//! as a thread of its own.
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

/// The stack pointer register of the code this is inlined into: an address
/// in the calling frame, on whichever stack that code runs on (a thread's
/// own or a context's). For telling which stack is running and how deep it
/// is. A local's address would not do under AddressSanitizer, which moves
/// locals whose address is taken to a fake stack on the heap.
#[inline(always)]
pub fn stack_pointer() -> usize {
    arch::stack_pointer()
}

/// The crate README's examples (its crates.io page), compiled and run as
/// doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
