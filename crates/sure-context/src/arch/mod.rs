//! Architecture-specific switch code, one module per target.
//!
//! Each module provides the same four operations on raw saved stack
//! pointers (`switch_call`, `switch_return`, `exit`, `initial_frame`) and the
//! same frame layout contract: a suspended execution is one stack pointer
//! whose top word is the address to continue at.

#[cfg(all(target_arch = "x86_64", unix))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", unix))]
pub(crate) use x86_64::*;

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub(crate) use aarch64::*;

#[cfg(all(target_arch = "riscv64", target_os = "linux"))]
mod riscv64;
#[cfg(all(target_arch = "riscv64", target_os = "linux"))]
pub(crate) use riscv64::*;

#[cfg(not(any(
    all(target_arch = "x86_64", unix),
    all(target_arch = "aarch64", target_os = "linux"),
    all(target_arch = "riscv64", target_os = "linux"),
)))]
compile_error!(
    "sure-context supports x86-64 with the System V ABI (Linux, BSDs), \
     aarch64 Linux and riscv64 Linux (riscv64gc) only"
);
