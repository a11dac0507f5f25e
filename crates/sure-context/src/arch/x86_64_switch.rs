//! The x86-64 switch, written once for both ABIs: the System V one
//! (`x86_64.rs`) and Microsoft's (`x86_64_windows.rs`) differ only in what
//! they push around it, which each passes to `x86_64_switches!` (below).
//!
//! Whatever the ABI saves, a suspended execution is a [`Registers`] image
//! in its context beside its stack pointer, and at that stack pointer the
//! floating-point control slot with `fp-control`, and the ABI's pushed
//! words above it.

use core::arch::asm;
use core::mem::MaybeUninit;

/// Saves the floating-point control words at the saved stack pointer, with
/// `fp-control`.
macro_rules! save_fp_control {
    () => {
        with_fp_control!(
            concat!(
                "sub rsp, 8\n",                // make room for MXCSR and the x87 control word
                "stmxcsr dword ptr [rsp]\n",   // MXCSR at sp + 0
                "fnstcw word ptr [rsp + 4]\n", // x87 control word at sp + 4
            ),
            "",
        )
    };
}

/// Restores what `save_fp_control!` saved, with `fp-control`.
macro_rules! restore_fp_control {
    () => {
        with_fp_control!(
            concat!(
                "ldmxcsr dword ptr [rsp]\n",  // MXCSR back from sp + 0
                "fldcw word ptr [rsp + 4]\n", // x87 control word back from sp + 4
                "add rsp, 8\n",               // drop the slot
            ),
            "",
        )
    };
}

/// `asm!` with every register a switch lets the compiler save declared
/// clobbered: r12-r15 by name, and by `clobber_abi("sysv64")` the rest of
/// what a System V call may change, which under the Microsoft ABI also
/// covers its callee-saved rdi, rsi and xmm6-xmm15. Both switches use it,
/// so they cannot drift apart.
macro_rules! switch_asm {
    ($($operands:tt)*) => {
        core::arch::asm!(
            $($operands)*
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        )
    };
}

/// Offsets in a saved x86-64 context, after its stack pointer at 0: the
/// resume address, rbx and rbp ([`Registers`]).
macro_rules! context_layout {
    (rip) => {
        "8"
    };
    (rbx) => {
        "16"
    };
    (rbp) => {
        "24"
    };
}

/// Continues the context at rsi, whose stack pointer is rdx: its rbx,
/// rbp and stack, then a jump to its resume address. The end of every
/// switch and of `exit`. Fixed registers: given `in(reg)`, a release build
/// put the target in rbp (it keeps no frame pointer), which this
/// overwrites before its last use; the compiler cannot be told that the
/// asm writes rbx and rbp.
macro_rules! continue_context {
    () => {
        concat!(
            "mov rbx, [rsi + ",
            context_layout!(rbx),
            "]\n", // the target's rbx,
            "mov rbp, [rsi + ",
            context_layout!(rbp),
            "]\n",            // rbp
            "mov rsp, rdx\n", // and stack
            "jmp [rsi + ",
            context_layout!(rip),
            "]\n", // continue it there
        )
    };
}

/// What an x86-64 context keeps beside its stack pointer: where to resume,
/// and the two callee-saved registers that no asm operand can name. Kept
/// in the context rather than on the suspended stack, so that continuing a
/// context reads one cache line (the context's) and no load waits for
/// another: the stack pointer, these three words and the jump are
/// independent of one another.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Registers {
    /// The resume address, where the continuing switch jumps.
    pub(crate) rip: usize,
    /// Restored before that jump. Uninitialised in a fresh context whose
    /// trampoline does not read it: the switch loads whatever is there, and
    /// creating a context stores nothing it would not use.
    pub(crate) rbx: MaybeUninit<usize>,
    /// As `rbx`.
    pub(crate) rbp: MaybeUninit<usize>,
}

static_assertions::const_assert_eq!(core::mem::offset_of!(Registers, rbx), 8);
static_assertions::const_assert_eq!(core::mem::offset_of!(Registers, rbp), 16);

/// Defines `switch_call` and `switch_return` of the `arch` contract, which
/// on x86-64 are one switch, around `$save` (pushed on the switching stack
/// before the stack pointer is saved) and `$restore` (popped by the
/// continued side): what the ABI keeps per stack beyond rbx and rbp.
/// Neither may define label `2`, the resume address.
macro_rules! x86_64_switches {
    (save: $save:expr, restore: $restore:expr $(,)?) => {
        /// `switch_call` of the `arch` contract. Inline, so that each call
        /// site has its own indirect jump for the branch predictor: a
        /// shared one that alternated between a body's start and its
        /// suspend point mispredicted twice per create. No `call` or `ret`
        /// either: the return-stack buffer is left to the code on either
        /// side, whose own returns it then predicts across a switch (a body
        /// that suspends one call deep and returns from that call after the
        /// resume).
        ///
        /// # Safety
        /// As the contract says.
        #[inline(always)]
        pub(crate) unsafe fn switch_call(save: *mut u8, target: *const u8, target_sp: *mut u8) -> *mut u8 {
            let from: *mut u8;
            // SAFETY: the switch below saves this execution in the context
            // at `save` and continues the one at `target`, both valid by
            // this function's contract. rbx and rbp, which no operand can
            // name, are saved there and restored from the target; every
            // other register a call may change, and r12-r15, are declared
            // clobbered, which is everything another execution may leave
            // different. `$save` may push, so `nostack` is not given. rdi
            // reaches the target unchanged, so the continuing execution
            // finds the `save` of whoever switched to it there (see the
            // trampoline).
            unsafe {
                switch_asm!(
                    $save,
                    save_fp_control!(),
                    "lea rax, [rip + 2f]",                              // our resume address
                    "mov [rdi], rsp",                                   // save: stack pointer,
                    concat!("mov [rdi + ", context_layout!(rip), "], rax"), // resume address,
                    concat!("mov [rdi + ", context_layout!(rbx), "], rbx"), // rbx
                    concat!("mov [rdi + ", context_layout!(rbp), "], rbp"), // and rbp
                    continue_context!(),
                    "2:",
                    restore_fp_control!(),
                    $restore,
                    inout("rdi") save => from,
                    in("rsi") target,
                    in("rdx") target_sp,
                );
            }
            from
        }

        pub(crate) use switch_call as switch_return;
    };
}

/// The stack pointer register (see `crate::stack_pointer`).
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies a register into another; touches no memory.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// `exit` of the `arch` contract.
///
/// # Safety
/// As the contract says.
#[inline(always)]
pub(crate) unsafe fn exit(target: *const u8, target_sp: *mut u8) -> ! {
    // SAFETY: continues the context at `target` (valid by the contract) as
    // the switch does, saving nothing; the current stack is abandoned,
    // which the contract allows.
    unsafe {
        asm!(
            continue_context!(),
            in("rsi") target,
            in("rdx") target_sp,
            // Nothing saved: the stand-in, which a new target links to as
            // the end of backtraces.
            in("rdi") super::exited(),
            options(noreturn),
        );
    }
}
