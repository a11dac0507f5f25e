//! Dropping a coroutine: unstarted drops the closure, suspended unwinds the
//! stack (whatever the body does about it), completed does nothing more.

mod common;

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use common::{DropCounter, Log, expect_panic, message, suspended_holding};
use sure_coro::{Coroutine, SuspendHandle};

fn flag() -> Rc<Cell<bool>> {
    Rc::new(Cell::new(false))
}

fn descend(level: u32, log: &Log, h: &mut SuspendHandle) {
    let _guard = log.guard(format!("frame {level}"));
    if level == 0 {
        h.suspend();
        log.push("continued at the bottom");
    } else {
        descend(level - 1, log, h);
    }
    log.push(format!("returned from {level}"));
}

#[test]
fn dropping_a_suspended_coroutine_unwinds_every_frame_innermost_first() {
    let log = Log::new();
    let body_log = log.clone();
    let captured = log.guard("captured");
    let mut co = Coroutine::new(move |h| {
        let _top = body_log.guard("top");
        assert_eq!(captured.name, "captured");
        descend(4, &body_log, h);
        body_log.push("body continued");
    });
    let _ = co.resume();
    assert!(log.events().is_empty());
    drop(co);
    assert_eq!(
        log.events(),
        [
            "drop frame 0",
            "drop frame 1",
            "drop frame 2",
            "drop frame 3",
            "drop frame 4",
            "drop top",
            "drop captured"
        ]
    );
}

/// An unstarted coroutine whose closure captures a guard logged as
/// "captured", and the flag its body would set if it ever ran.
fn unstarted_capturing_a_guard(log: &Log) -> (Coroutine, Rc<Cell<bool>>) {
    let ran = flag();
    let guard = log.guard("captured");
    let body_ran = ran.clone();
    let co = Coroutine::new(move |h| {
        body_ran.set(true);
        let _keep = &guard;
        h.suspend();
    });
    (co, ran)
}

#[test]
fn dropping_an_unstarted_coroutine_drops_the_closure_without_running_it() {
    let log = Log::new();
    let (co, ran) = unstarted_capturing_a_guard(&log);
    assert!(log.events().is_empty());
    drop(co);
    assert_eq!(log.events(), ["drop captured"]);
    assert!(!ran.get());
}

#[test]
fn dropping_a_completed_coroutine_does_nothing_more() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::new(move |h| {
        let _g = body_log.guard("local");
        h.suspend();
        body_log.push("finished");
    });
    let _ = co.resume();
    let _ = co.resume();
    assert!(co.is_completed());
    assert_eq!(log.events(), ["finished", "drop local"]);
    drop(co);
    assert_eq!(log.events(), ["finished", "drop local"]);
}

#[test]
fn a_body_that_catches_the_unwind_and_suspends_again_is_still_ended() {
    let caught = Rc::new(Cell::new(0));
    let continued = flag();
    let (body_caught, body_continued) = (caught.clone(), continued.clone());
    let mut co = Coroutine::new(move |h| {
        let result = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
        if let Err(payload) = result {
            assert!(
                message(&payload).is_none(),
                "the cancellation payload is private"
            );
            body_caught.set(body_caught.get() + 1);
        }
        h.suspend();
        body_continued.set(true);
    });
    let _ = co.resume();
    drop(co);
    assert_eq!(caught.get(), 1);
    assert!(
        !continued.get(),
        "the body never goes on normally past a suspend once dropped"
    );
}

#[test]
fn a_body_that_keeps_catching_the_unwind_runs_to_its_end() {
    let caught = Rc::new(Cell::new(0));
    let continued = flag();
    let (body_caught, body_continued) = (caught.clone(), continued.clone());
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::yielding(move |h| {
        let _g = body_log.guard("body");
        for _ in 0..5 {
            match panic::catch_unwind(AssertUnwindSafe(|| h.suspend())) {
                Ok(()) => body_continued.set(true),
                Err(_) => body_caught.set(body_caught.get() + 1),
            }
        }
        body_log.push("end of body");
    });
    let _ = co.resume();
    drop(co);
    assert_eq!(caught.get(), 5, "each suspend after the drop unwinds again");
    assert!(!continued.get());
    assert_eq!(log.events(), ["end of body", "drop body"]);
}

#[test]
fn a_value_yielded_by_a_body_that_caught_the_unwind_is_dropped() {
    let drops = DropCounter::new();
    let body_drops = drops.clone();
    let continued = flag();
    let body_continued = continued.clone();
    let mut co = Coroutine::yielding(move |h| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
            h.suspend_with(body_drops.make());
        }));
        h.suspend_with(body_drops.make());
        body_continued.set(true);
    });
    let first = co.resume().into_yield().unwrap();
    drop(first);
    assert_eq!(drops.dropped(), 1);
    drop(co);
    assert_eq!(
        drops.dropped(),
        2,
        "the value suspended with during the drop was dropped"
    );
    assert!(!continued.get());
}

#[test]
fn a_value_returned_by_a_body_that_caught_the_unwind_is_dropped() {
    let drops = DropCounter::new();
    let body_drops = drops.clone();
    let mut co = Coroutine::new(move |h| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
        body_drops.make()
    });
    let _ = co.resume();
    drop(co);
    assert_eq!(drops.dropped(), 1);
}

#[test]
fn a_new_panic_while_being_dropped_comes_out_of_drop() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::new(move |h| {
        let _g = body_log.guard("body");
        let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
        panic!("own payload during drop");
    });
    let _ = co.resume();
    let payload = expect_panic(move || drop(co));
    assert_eq!(message(&payload), Some("own payload during drop"));
    assert_eq!(log.events(), ["drop body"]);
}

#[test]
fn dropping_while_the_thread_is_already_unwinding_does_not_abort() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::new(move |h| {
        let _g = body_log.guard("inner");
        h.suspend();
        body_log.push("continued");
    });
    let _ = co.resume();
    let scope_log = log.clone();
    let payload = expect_panic(move || {
        let _co = co;
        let _g = scope_log.guard("outer scope");
        panic!("outer panic");
    });
    assert_eq!(message(&payload), Some("outer panic"));
    assert_eq!(log.events(), ["drop outer scope", "drop inner"]);
}

#[test]
fn a_new_panic_while_dropped_during_an_unwind_is_swallowed() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::yielding(move |h| {
        let _g = body_log.guard("inner");
        let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
        panic!("second payload");
    });
    let _ = co.resume();
    let payload = expect_panic(move || {
        let _co = co;
        panic!("outer panic");
    });
    assert_eq!(
        message(&payload),
        Some("outer panic"),
        "the outer unwind goes on with its payload"
    );
    assert_eq!(log.events(), ["drop inner"]);
}

#[test]
fn a_coroutine_dropped_from_a_destructor_during_an_unwind_is_unwound() {
    struct Holder(Option<Coroutine>);
    impl Drop for Holder {
        fn drop(&mut self) {
            assert!(std::thread::panicking());
            drop(self.0.take());
        }
    }
    let drops = DropCounter::new();
    let co = suspended_holding(drops.make());
    let payload = expect_panic(move || {
        let _holder = Holder(Some(co));
        panic::panic_any(17_i32);
    });
    assert_eq!(payload.downcast_ref::<i32>(), Some(&17));
    assert_eq!(drops.dropped(), 1);
}

#[test]
fn an_endless_body_is_ended_by_drop() {
    let drops = DropCounter::new();
    let token = drops.make();
    let mut co = Coroutine::yielding(move |h| {
        let _token = token;
        let mut n = 0u64;
        loop {
            n += 1;
            h.suspend_with(n);
        }
    });
    for i in 1..=10 {
        assert_eq!(co.resume().into_yield(), Some(i));
    }
    drop(co);
    assert_eq!(drops.dropped(), 1);
}

#[test]
fn forgetting_a_suspended_coroutine_leaks_without_running_its_destructors() {
    let drops = DropCounter::new();
    let co = suspended_holding(drops.make());
    std::mem::forget(co);
    assert_eq!(drops.dropped(), 0);
}

thread_local! {
    static HOOK_CALLS: Cell<usize> = const { Cell::new(0) };
}

/// Counts panic hook calls on each thread, then calls the previous hook.
fn install_counting_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            HOOK_CALLS.with(|c| c.set(c.get() + 1));
            previous(info);
        }));
    });
}

#[test]
fn the_cancellation_does_not_call_the_panic_hook() {
    install_counting_hook();
    let before = HOOK_CALLS.with(Cell::get);
    let mut co = Coroutine::new(|h| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
        h.suspend();
    });
    let _ = co.resume();
    drop(co);
    assert_eq!(
        HOOK_CALLS.with(Cell::get),
        before,
        "no panic hook call for a drop"
    );
    // The hook does see an ordinary panic in a body.
    let mut bad: Coroutine<(), (), ()> = Coroutine::new(|_h| panic!("seen by the hook"));
    let _ = expect_panic(|| bad.resume());
    assert_eq!(HOOK_CALLS.with(Cell::get), before + 1);
}

#[test]
fn into_stack_unwinds_a_suspended_body() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::new(move |h| {
        let _g = body_log.guard("body");
        h.suspend();
        body_log.push("continued");
    });
    let _ = co.resume();
    let stack = co.into_stack();
    assert_eq!(log.events(), ["drop body"]);
    assert_eq!(stack.len(), sure_coro::DEFAULT_STACK_SIZE);
}

#[test]
fn into_stack_drops_an_unstarted_closure_without_running_it() {
    let log = Log::new();
    let (co, ran) = unstarted_capturing_a_guard(&log);
    let _stack = co.into_stack();
    assert_eq!(log.events(), ["drop captured"]);
    assert!(!ran.get());
}

#[test]
fn into_stack_passes_on_a_new_panic_of_the_ending_body() {
    let mut co = Coroutine::new(|h| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
        panic!("while ending");
    });
    let _ = co.resume();
    let payload = expect_panic(move || co.into_stack());
    assert_eq!(message(&payload), Some("while ending"));
}
