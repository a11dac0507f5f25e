//! The trampoline's call-frame information lets `std::backtrace` walk from
//! inside a context into the frames of whoever switched into it.

mod support;

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::rc::Rc;

use support::Fiber;

#[inline(never)]
fn resumer_frame_marker(fiber: &mut Fiber) -> bool {
    let finished = fiber.resume();
    std::hint::black_box(finished)
}

#[inline(never)]
fn fiber_frame_marker(out: &RefCell<String>) {
    *out.borrow_mut() = Backtrace::force_capture().to_string();
}

#[test]
fn a_backtrace_inside_a_context_reaches_the_resumer() {
    let trace = Rc::new(RefCell::new(String::new()));
    let inner = trace.clone();
    let mut fiber = Fiber::new(256 * 1024, move |_| fiber_frame_marker(&inner));
    assert!(resumer_frame_marker(&mut fiber));
    let trace = trace.borrow();
    let fiber_at = trace
        .find("fiber_frame_marker")
        .expect("the fiber's own frame");
    let resumer_at = trace
        .find("resumer_frame_marker")
        .unwrap_or_else(|| panic!("the backtrace stops at the trampoline:\n{trace}"));
    assert!(fiber_at < resumer_at, "inner frames come first:\n{trace}");
    // The walk goes on past the resumer, into the test harness (the test
    // function itself may be inlined away in release builds).
    assert!(
        trace[resumer_at..].contains("run_test"),
        "and it continues up through the resumer's callers:\n{trace}"
    );
}
