//! The `round_robin` example's scheduler keeps `setup`'s link rule: every
//! task is first entered from the scheduler's context, so a backtrace taken
//! in a task that runs after others have finished still walks, through the
//! trampoline, straight into the scheduler's frame.

use std::backtrace::Backtrace;
use std::cell::RefCell;

#[path = "../examples/round_robin.rs"]
mod round_robin;

use round_robin::run_round_robin;

#[inline(never)]
fn scheduler_caller_marker(steps: &[usize], step: &dyn Fn(usize, usize)) {
    run_round_robin(steps, step);
    std::hint::black_box(());
}

#[inline(never)]
fn task_frame_marker(out: &RefCell<String>) {
    *out.borrow_mut() = Backtrace::force_capture().to_string();
}

#[test]
fn tasks_run_round_robin_and_switch_directly() {
    let log = RefCell::new(Vec::new());
    run_round_robin(&[2, 3, 1], &|id, n| log.borrow_mut().push((id, n)));
    assert_eq!(
        *log.borrow(),
        [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (1, 2)],
        "one step per task per turn, finished tasks skipped"
    );
}

#[test]
fn a_backtrace_in_a_later_task_reaches_the_scheduler() {
    let trace = RefCell::new(String::new());
    // Task 2 takes the backtrace at its last step, after tasks 0 and 1 have
    // finished (and after it was last continued by task 1).
    scheduler_caller_marker(&[1, 2, 4], &|id, n| {
        if (id, n) == (2, 3) {
            task_frame_marker(&trace);
        }
    });
    let trace = trace.borrow();
    let task_at = trace
        .find("task_frame_marker")
        .unwrap_or_else(|| panic!("the task's own frame:\n{trace}"));
    let scheduler_at = trace
        .find("run_round_robin")
        .unwrap_or_else(|| panic!("the backtrace stops before the scheduler:\n{trace}"));
    assert!(task_at < scheduler_at, "inner frames come first:\n{trace}");
    // Between the task and the scheduler lies one trampoline: the walk goes
    // from the task into the scheduler's saved frame, not through the stale
    // frames of other tasks.
    assert_eq!(
        trace[task_at..scheduler_at]
            .matches("sure_trampoline")
            .count(),
        1,
        "exactly one context boundary between the task and the scheduler:\n{trace}"
    );
    // And on past the scheduler, into its caller and the test harness.
    let caller_at = trace[scheduler_at..]
        .find("scheduler_caller_marker")
        .unwrap_or_else(|| panic!("the walk continues into the scheduler's caller:\n{trace}"));
    assert!(
        trace[scheduler_at + caller_at..].contains("run_test"),
        "and up through the test harness:\n{trace}"
    );
}
