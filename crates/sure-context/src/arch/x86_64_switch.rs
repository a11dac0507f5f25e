//! The x86-64 switch, written once for both ABIs: the System V one
//! (`x86_64.rs`) and Microsoft's (`x86_64_windows.rs`) differ only in what
//! they push around it, which each passes to [`x86_64_switches`].
//!
//! Whatever the ABI saves, a suspended execution's stack pointer has the
//! resume address on top, the floating-point control slot above it with
//! `fp-control`, and the ABI's saved words above that.

use core::arch::{asm, naked_asm};

/// Saves the floating-point control words just above the resume address,
/// with `fp-control`.
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

/// Defines `switch_call` and `switch_return` of the `arch` contract around
/// `$save` (pushed first, popped last by `$restore`): the registers the
/// ABI wants kept that cannot be declared clobbered, and what else it
/// keeps per stack. `$save` may refer to label `2`, the resume address;
/// neither may define labels `2` to `4`, which the switches use.
macro_rules! x86_64_switches {
    (save: $save:expr, restore: $restore:expr $(,)?) => {
        /// `switch_call` of the `arch` contract: `call`s its own copy of
        /// the switch, placed after the resume address, so that every call
        /// site has an indirect jump of its own for the branch predictor
        /// (one shared `jmp` that alternated between a body's start and its
        /// suspend point mispredicted twice per create).
        ///
        /// # Safety
        /// As the contract says.
        #[inline(always)]
        pub(crate) unsafe fn switch_call(save: *mut *mut u8, target: *mut u8) -> *mut u8 {
            let from: *mut u8;
            // SAFETY: the switch below saves this execution at `save` and
            // continues `target`, both valid by this function's contract.
            // What the ABI keeps and no operand can name is pushed here and
            // popped on return; every other register a call may change, and
            // r12-r15, are declared clobbered, which is everything another
            // execution may leave different. The asm pushes to the stack, so
            // `nostack` is not given. The switch leaves rdi alone, so the
            // continuing execution finds the `save` of whoever switched to it
            // there (see the trampoline).
            unsafe {
                switch_asm!(
                    $save,
                    save_fp_control!(),
                    "call 3f",            // pushes the resume address (label 2) and switches
                    "2:",
                    restore_fp_control!(),
                    $restore,
                    "jmp 4f",             // resumed: step over the switch
                    "3:",
                    "mov [rdi], rsp",     // save: our stack pointer, resume address on top
                    "mov rax, [rsi]",     // the target's resume address
                    "lea rsp, [rsi + 8]", // the target's stack, resume address popped
                    "jmp rax",            // continue the target; rdi still says where we saved
                    "4:",
                    inout("rdi") save => from,
                    in("rsi") target,
                );
            }
            from
        }

        /// `switch_return` of the `arch` contract: leaves with a `ret`.
        ///
        /// # Safety
        /// As the contract says.
        #[inline(always)]
        pub(crate) unsafe fn switch_return(save: *mut *mut u8, target: *mut u8) -> *mut u8 {
            let from: *mut u8;
            // SAFETY: as in `switch_call`; the only difference is that the
            // resume address is pushed by hand (`lea` + `push`) and no `call`
            // is made, so no return-stack-buffer entry is pushed here and the
            // `ret` pops the one the target's `call` pushed.
            unsafe {
                switch_asm!(
                    $save,
                    save_fp_control!(),
                    "lea rax, [rip + 2f]", // our resume address: label 2 below
                    "push rax",            // top of the saved context
                    "mov [rdi], rsp",      // save: our stack pointer, resume address on top
                    "mov rsp, rsi",        // the target's stack
                    "ret",                 // pop its resume address; the RSB predicts it
                    "2:",
                    restore_fp_control!(),
                    $restore,
                    inout("rdi") save => from,
                    in("rsi") target,
                );
            }
            from
        }
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
pub(crate) unsafe fn exit(target: *mut u8) -> ! {
    // SAFETY: the naked exit loads `target` (valid by contract) and returns
    // into it, where the target restores what it saved; the current stack
    // is abandoned, which the contract allows.
    unsafe {
        asm!(
            "jmp {exit}",                 // no call: the RSB keeps the target's entry
            exit = sym sure_exit,
            in("rsi") target,
            options(noreturn),
        );
    }
}

/// The final switch out of a finished execution. In: `rsi` = target.
#[unsafe(naked)]
unsafe extern "C" fn sure_exit() {
    naked_asm!(
        "xor edi, edi", // nothing was saved: a new target links to no one
        "mov rsp, rsi", // the target's stack
        "ret",          // pop its resume address and continue there
    )
}
