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

#[cfg(not(all(target_arch = "x86_64", unix)))]
compile_error!("sure-context supports x86-64 with the System V ABI (Linux, BSDs) only");
