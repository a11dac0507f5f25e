//! Telling Valgrind where the coroutine stacks are.
//!
//! Valgrind tracks the stack pointer to know which memory is live stack: a
//! move of the stack pointer down makes the bytes below it addressable (but
//! undefined), a move up makes the bytes it leaves behind inaccessible. A
//! coroutine switch loads an unrelated stack pointer, which Valgrind would
//! take for a huge stack frame being pushed or popped (and memcheck would
//! then report false errors on perfectly good memory), unless it knows that
//! the new stack pointer lies on *another* stack. `VALGRIND_STACK_REGISTER`
//! tells it so: a move of the stack pointer onto a different registered
//! stack is a switch, and nothing is marked.
//!
//! Each [`Stack`](crate::Stack) registers its usable region once, when it
//! is allocated, and deregisters it when it is freed, so the coroutine
//! switch itself costs nothing extra (pooled stacks stay registered).
//!
//! # Client requests
//!
//! Valgrind's client requests (`valgrind.h`) are a "magic" instruction
//! sequence that is a no-op on a real CPU and that Valgrind's JIT
//! recognises: a register points at six words (the request code and five
//! arguments), another holds a default result, a preamble of rotations
//! that add up to a whole turn changes nothing, and a marker instruction
//! that changes nothing either says "client request". Outside Valgrind the
//! result register therefore still holds the default afterwards; under
//! Valgrind it holds the request's answer.
//!
//! - x86-64: `rax` = the words, `rdx` = default and result; `rdi` rotated
//!   by 3, 13, 61 and 51 bits; marker `xchg rbx, rbx`.
//! - aarch64: x4 = the words, x3 = default and result; x12 rotated right by
//!   3, 13, 51 and 61 bits; marker `orr x10, x10, x10`.
//! - riscv64: a4 = the words, a3 = default and result; four uncompressed
//!   `srli zero, zero, n` (n = 3, 13, 51, 61: writes to the zero register,
//!   so nothing at all); marker `or a0, a0, a0`. This is the sequence of
//!   Valgrind's riscv64 port (3.25 and later). The Valgrind of this
//!   project's machines (3.19) has no such port, so only its being a no-op
//!   on a CPU (under qemu) is tested here.
//! - Under Miri (which runs no inline assembly) and on any other
//!   architecture, requests return their default.
//!
//! This module issues them itself rather than linking Valgrind's header:
//! the sequences are part of Valgrind's stable ABI (the header inlines them
//! into every client program), and this crate takes no build-time C
//! dependency.

/// `VG_USERREQ__STACK_REGISTER`: arguments start and end of a stack,
/// returns the stack's id.
const STACK_REGISTER: u64 = 0x1501;

/// `VG_USERREQ__STACK_DEREGISTER`: argument the id `STACK_REGISTER` gave.
const STACK_DEREGISTER: u64 = 0x1502;

/// The client-request sequence (see the module docs) as one `asm!`:
/// `$words` in the arguments register, `$result` in the default/result
/// register. Nothing else changes on a real CPU.
#[cfg(all(target_arch = "x86_64", not(miri)))]
macro_rules! request_sequence {
    ($words:expr, $result:ident) => {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") $words,
            inout("rdx") $result,
            options(nostack), // rol changes the flags
        )
    };
}
/// The client-request sequence (see the module docs) as one `asm!`:
/// `$words` in the arguments register, `$result` in the default/result
/// register. Nothing else changes on a real CPU.
#[cfg(all(target_arch = "aarch64", not(miri)))]
macro_rules! request_sequence {
    ($words:expr, $result:ident) => {
        core::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            in("x4") $words,
            inout("x3") $result,
            options(nostack, preserves_flags),
        )
    };
}
/// The client-request sequence (see the module docs) as one `asm!`:
/// `$words` in the arguments register, `$result` in the default/result
/// register. Nothing else changes on a real CPU.
#[cfg(all(target_arch = "riscv64", not(miri)))]
macro_rules! request_sequence {
    ($words:expr, $result:ident) => {
        core::arch::asm!(
            ".option push",
            ".option norvc", // the preamble Valgrind matches is uncompressed
            "srli zero, zero, 3",
            "srli zero, zero, 13",
            "srli zero, zero, 51",
            "srli zero, zero, 61",
            ".option pop",
            "or a0, a0, a0",
            in("a4") $words,
            inout("a3") $result,
            options(nostack, preserves_flags),
        )
    };
}

/// Issues Valgrind client request `request` with `args`; returns Valgrind's
/// answer, or `default` when the program is not running under Valgrind.
#[cfg(all(
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ),
    not(miri)
))]
#[inline]
fn client_request(default: u64, request: u64, args: [u64; 5]) -> u64 {
    let block: [u64; 6] = [request, args[0], args[1], args[2], args[3], args[4]];
    let mut result = default;
    // SAFETY: on a real CPU the sequence changes no register but, on
    // x86-64, the flags (which the asm does not promise to keep), so
    // `result` keeps `default`. Under Valgrind it is a client request:
    // Valgrind reads the six words `block` holds, alive and initialised for
    // the whole asm (memory access is not ruled out with `nomem`, so the
    // compiler keeps `block` written), and writes only `result`. Nothing is
    // pushed.
    unsafe { request_sequence!(block.as_ptr(), result) };
    result
}

/// Issues Valgrind client request `request`; on this target there is no
/// Valgrind request sequence (see the module docs), so the answer is always
/// `default`.
#[cfg(not(all(
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ),
    not(miri)
)))]
#[inline]
fn client_request(default: u64, _request: u64, _args: [u64; 5]) -> u64 {
    default
}

/// Registers the stack occupying `start..end` (`end` one past its highest
/// byte) and returns the id to pass to [`stack_deregister`]; 0 outside
/// Valgrind. Costs a handful of instructions when not under Valgrind.
///
/// `valgrind.h` calls `end` "the highest addressable stack byte"; like most
/// users (Boost.Context, QEMU, PHP's fibers) we pass one past it, so that a
/// stack pointer sitting at the very top of an empty stack still counts as
/// on this stack. That address is never the start of another registered
/// stack: every stack has its guard page below its usable region.
#[inline]
pub(crate) fn stack_register(start: *const u8, end: *const u8) -> usize {
    let id = client_request(
        0,
        STACK_REGISTER,
        [start as usize as u64, end as usize as u64, 0, 0, 0],
    );
    // Valgrind's ids are machine words (`UWord`); on every 64-bit target
    // u64 == usize.
    id as usize
}

/// Forgets the stack registered as `id`. Outside Valgrind this does nothing;
/// note that under Valgrind 0 can be a real id, so it is always passed on.
#[inline]
pub(crate) fn stack_deregister(id: usize) {
    client_request(0, STACK_DEREGISTER, [id as u64, 0, 0, 0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `RUNNING_ON_VALGRIND`: answers how many Valgrinds deep the program
    /// runs (0 on a real CPU, where the default is returned).
    const RUNNING_ON_VALGRIND: u64 = 0x1001;

    /// Whether the test itself runs under Valgrind, where requests answer.
    fn under_valgrind() -> bool {
        client_request(0, RUNNING_ON_VALGRIND, [0; 5]) != 0
    }

    /// On a real CPU the request sequence is a no-op: every request, known
    /// or not, returns the default it was given, and the stack requests
    /// return id 0 and do nothing.
    #[test]
    fn requests_return_the_default_outside_valgrind() {
        if under_valgrind() {
            eprintln!("running under Valgrind: requests answer, defaults are not expected");
            return;
        }
        for default in [0, 1, 0x5eed_cafe_f00d_beef, u64::MAX] {
            assert_eq!(
                client_request(default, STACK_REGISTER, [0x1000, 0x2000, 0, 0, 0]),
                default
            );
            assert_eq!(
                client_request(default, RUNNING_ON_VALGRIND, [0; 5]),
                default
            );
            assert_eq!(client_request(default, 0xdead, [1, 2, 3, 4, 5]), default);
        }
        let memory = [0u8; 64];
        let range = memory.as_ptr_range();
        let id = stack_register(range.start, range.end);
        assert_eq!(id, 0);
        stack_deregister(id);
    }
}
