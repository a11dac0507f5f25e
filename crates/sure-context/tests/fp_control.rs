//! The floating-point control state across a switch (MXCSR and the x87
//! control word on x86-64, FPCR on aarch64, the rounding mode on riscv64):
//! kept per context with the `fp-control` feature, shared (leaked to the
//! resumer) without it.

mod registers;
mod support;

use std::cell::Cell;
use std::rc::Rc;

use registers::{FP_ROUND_TOWARD_ZERO, fp_control, set_fp_control};
use support::Fiber;

#[test]
fn floating_point_control_state_across_a_switch() {
    let resumer_state = fp_control();
    let fiber_state = resumer_state | FP_ROUND_TOWARD_ZERO;
    assert_ne!(
        resumer_state, fiber_state,
        "tests start rounding to nearest"
    );
    let fiber_saw = Rc::new(Cell::new(0));
    let inner = fiber_saw.clone();
    let mut fiber = Fiber::new(64 * 1024, move |s| {
        set_fp_control(fp_control() | FP_ROUND_TOWARD_ZERO);
        s.suspend();
        inner.set(fp_control());
    });
    assert!(!fiber.resume());
    let after_suspend = fp_control();
    // Put the resumer's state back before the fiber continues, so that
    // both configurations see the same starting point below.
    set_fp_control(resumer_state);
    assert!(fiber.resume());
    let after_finish = fp_control();
    set_fp_control(resumer_state);

    if cfg!(feature = "fp-control") {
        assert_eq!(after_suspend, resumer_state, "the suspend restores ours");
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
        assert_eq!(fiber_saw.get(), resumer_state, "and ours leaks in");
    }
    // The final exit saves nothing: the resumer runs with whatever state it
    // had when it resumed (ours) under fp-control, else the fiber's last.
    assert_eq!(after_finish, resumer_state);
}
