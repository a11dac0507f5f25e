//! Register-level probes for the ABI tests, one file per architecture:
//! each gives the same items, so that `abi.rs` and `fp_control.rs` run
//! unchanged on every target.
//!
//! - `CALLEE_SAVED`, and `callee_saved_kept_across(f, seed)`: loads every
//!   callee-saved register with a value derived from `seed`, calls `f`
//!   (which switches away and back), and returns how many of them still
//!   hold their value (`CALLEE_SAVED` when the ABI is kept).
//! - `stack_pointer_at_entry()`, and `ENTRY_STACK_POINTER_MOD_16`: the
//!   stack pointer at a function's first instruction, and what the ABI
//!   wants it to be modulo 16.
//! - `fp_control()`, `set_fp_control(value)`, and `FP_ROUND_TOWARD_ZERO`:
//!   the floating-point control state the `fp-control` feature keeps per
//!   context, as one number, and the bits that select rounding toward zero.

#![allow(dead_code)] // each test file uses a different part of it

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(target_arch = "riscv64")]
mod riscv64;
#[cfg(target_arch = "riscv64")]
pub use riscv64::*;
