//! MXCSR and the x87 control word across a switch: kept per context with
//! the `fp-control` feature, shared (leaked to the resumer) without it.

mod support;

use std::arch::asm;
use std::cell::Cell;
use std::rc::Rc;

use support::Fiber;

fn mxcsr() -> u32 {
    let mut value = 0u32;
    // SAFETY: stmxcsr writes 4 bytes to a valid u32.
    unsafe { asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack)) };
    value
}

fn set_mxcsr(value: u32) {
    // SAFETY: only the rounding-control bits differ from the thread's
    // default, which changes results, not memory safety.
    unsafe { asm!("ldmxcsr [{}]", in(reg) &value, options(nostack)) };
}

fn x87_control_word() -> u16 {
    let mut value = 0u16;
    // SAFETY: fnstcw writes 2 bytes to a valid u16.
    unsafe { asm!("fnstcw [{}]", in(reg) &mut value, options(nostack)) };
    value
}

fn set_x87_control_word(value: u16) {
    // SAFETY: only precision/rounding control changes.
    unsafe { asm!("fldcw [{}]", in(reg) &value, options(nostack)) };
}

/// MXCSR rounding control, round toward zero (bits 13-14).
const MXCSR_ROUND_TOWARD_ZERO: u32 = 0b11 << 13;
/// x87 rounding control, round toward zero (bits 10-11).
const X87_ROUND_TOWARD_ZERO: u16 = 0b11 << 10;

#[test]
fn floating_point_control_state_across_a_switch() {
    let resumer_mxcsr = mxcsr();
    let resumer_cw = x87_control_word();
    let fiber_saw = Rc::new(Cell::new((0u32, 0u16)));
    let inner = fiber_saw.clone();
    let mut fiber = Fiber::new(64 * 1024, move |s| {
        set_mxcsr(mxcsr() | MXCSR_ROUND_TOWARD_ZERO);
        set_x87_control_word(x87_control_word() | X87_ROUND_TOWARD_ZERO);
        s.suspend();
        inner.set((mxcsr(), x87_control_word()));
    });
    assert!(!fiber.resume());
    let after_suspend = (mxcsr(), x87_control_word());
    // Put the resumer's state back before the fiber continues, so that
    // both configurations see the same starting point below.
    set_mxcsr(resumer_mxcsr);
    set_x87_control_word(resumer_cw);
    assert!(fiber.resume());
    let after_finish = (mxcsr(), x87_control_word());
    set_mxcsr(resumer_mxcsr);
    set_x87_control_word(resumer_cw);

    let fiber_state = (
        resumer_mxcsr | MXCSR_ROUND_TOWARD_ZERO,
        resumer_cw | X87_ROUND_TOWARD_ZERO,
    );
    if cfg!(feature = "fp-control") {
        assert_eq!(
            after_suspend,
            (resumer_mxcsr, resumer_cw),
            "the suspend restores ours"
        );
        assert_eq!(
            fiber_saw.get(),
            fiber_state,
            "the resume restores the fiber's"
        );
    } else {
        assert_eq!(
            after_suspend, fiber_state,
            "without fp-control the change leaks out"
        );
        assert_eq!(
            fiber_saw.get(),
            (resumer_mxcsr, resumer_cw),
            "and ours leaks in"
        );
    }
    // The final exit saves nothing: the resumer runs with whatever state it
    // had when it resumed (ours) under fp-control, else the fiber's last.
    assert_eq!(after_finish, (resumer_mxcsr, resumer_cw));
}
