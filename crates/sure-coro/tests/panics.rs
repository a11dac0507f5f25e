//! A panic in the body comes out of the resume that ran it, with its own
//! payload, after unwinding the body's stack.

mod common;

use std::panic::{self, AssertUnwindSafe};

use common::{DropCounter, Log, expect_panic, message};
use sure_coro::{Coroutine, CoroutineResult, SuspendHandle};

#[test]
fn a_str_payload_comes_out_of_resume() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_h| panic!("boom"));
    let payload = expect_panic(|| co.resume());
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert!(co.is_started());
    assert!(co.is_completed());
}

#[test]
fn a_string_payload_comes_out_of_resume() {
    let mut co = Coroutine::yielding(|h| {
        h.suspend();
        let n = std::hint::black_box(7);
        panic!("failed with {n}");
    });
    assert_eq!(co.resume(), CoroutineResult::Yield(()));
    let payload = expect_panic(|| co.resume());
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("failed with 7")
    );
    assert!(co.is_completed());
}

#[derive(Debug, PartialEq, Eq)]
struct MyError {
    code: u32,
    text: String,
}

#[test]
fn a_custom_payload_comes_out_of_resume() {
    let mut co = Coroutine::yielding(|h| {
        h.suspend_with(1);
        h.suspend_with(2);
        panic::panic_any(MyError {
            code: 42,
            text: "custom".into(),
        });
    });
    let _: &Coroutine<(), i32, ()> = &co;
    assert_eq!(co.resume().into_yield(), Some(1));
    assert_eq!(co.resume().into_yield(), Some(2));
    let payload = expect_panic(|| co.resume());
    let err = payload
        .downcast::<MyError>()
        .expect("the payload is the body's MyError");
    assert_eq!(
        *err,
        MyError {
            code: 42,
            text: "custom".into()
        }
    );
    assert!(co.is_completed());
}

#[test]
fn a_resume_unwind_payload_comes_out_unchanged() {
    let mut co: Coroutine<(), (), ()> =
        Coroutine::new(|_h| panic::resume_unwind(Box::new(0xDEAD_BEEF_u64)));
    let payload = expect_panic(|| co.resume());
    assert_eq!(payload.downcast_ref::<u64>(), Some(&0xDEAD_BEEF));
    assert!(co.is_completed());
}

fn nested_guards(level: u32, log: &Log, h: &mut SuspendHandle) {
    let _guard = log.guard(format!("level {level}"));
    if level == 0 {
        h.suspend();
        log.push("panicking");
        panic!("at the bottom");
    }
    nested_guards(level - 1, log, h);
}

#[test]
fn destructors_on_the_body_stack_run_during_the_unwind_innermost_first() {
    let log = Log::new();
    let body_log = log.clone();
    let captured = log.guard("captured");
    let mut co = Coroutine::yielding(move |h| {
        let _outer = body_log.guard("outer");
        assert_eq!(captured.name, "captured");
        nested_guards(2, &body_log, h);
    });
    let _ = co.resume();
    assert!(log.events().is_empty());
    let payload = expect_panic(|| co.resume());
    assert_eq!(message(&payload), Some("at the bottom"));
    assert_eq!(
        log.events(),
        [
            "panicking",
            "drop level 0",
            "drop level 1",
            "drop level 2",
            "drop outer",
            "drop captured",
        ],
        "every destructor ran before resume returned, innermost first"
    );
    drop(co);
    assert_eq!(
        log.events().len(),
        6,
        "dropping a panicked coroutine drops nothing more"
    );
}

#[test]
fn the_input_held_by_a_panicking_body_is_dropped() {
    let drops = DropCounter::new();
    let mut co = Coroutine::with_input(|h, first: common::Counted| {
        let second = h.suspend();
        let _both = (first, second);
        panic!("with inputs on the stack");
    });
    let _ = co.resume_with(drops.make());
    let payload = expect_panic(|| co.resume_with(drops.make()));
    assert_eq!(message(&payload), Some("with inputs on the stack"));
    assert_eq!(drops.dropped(), 2);
}

#[test]
fn a_body_can_catch_its_own_panic_and_go_on() {
    let mut co = Coroutine::yielding(|h| {
        let mut caught = 0;
        for i in 0..3 {
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                h.suspend_with(i);
                if i % 2 == 0 {
                    panic!("even {i}");
                }
                i
            }));
            if let Err(payload) = result {
                assert_eq!(*payload.downcast::<String>().unwrap(), format!("even {i}"));
                caught += 1;
            }
        }
        caught
    });
    assert_eq!(co.resume(), CoroutineResult::Yield(0));
    assert_eq!(co.resume(), CoroutineResult::Yield(1));
    assert_eq!(co.resume(), CoroutineResult::Yield(2));
    assert_eq!(co.resume(), CoroutineResult::Return(2));
}

#[test]
fn a_panicked_coroutine_cannot_be_resumed_and_never_reruns() {
    let runs = std::rc::Rc::new(std::cell::Cell::new(0));
    let body_runs = runs.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |_h| {
        body_runs.set(body_runs.get() + 1);
        panic!("once");
    });
    assert_eq!(message(&expect_panic(|| co.resume())), Some("once"));
    let again = expect_panic(|| co.resume());
    let text = message(&again).expect("a message");
    assert!(text.contains("completed"), "{text}");
    assert_eq!(runs.get(), 1);
}

#[test]
fn a_panic_does_not_upset_the_thread_for_later_coroutines() {
    for round in 0..20 {
        let mut bad: Coroutine<(), (), ()> = Coroutine::new(move |h| {
            h.suspend();
            panic!("round {round}");
        });
        let _ = bad.resume();
        let payload = expect_panic(|| bad.resume());
        assert_eq!(message(&payload), Some(format!("round {round}").as_str()));
        let mut good = Coroutine::yielding(|h| {
            h.suspend_with(1);
            2
        });
        assert_eq!(good.resume(), CoroutineResult::Yield(1));
        assert_eq!(good.resume(), CoroutineResult::Return(2));
    }
    assert!(!std::thread::panicking());
}

#[test]
fn a_panic_while_formatting_deep_in_the_body_comes_out() {
    struct Bad;
    impl std::fmt::Display for Bad {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("inside Display")
        }
    }
    let mut co: Coroutine<(), (), String> = Coroutine::new(|_h| format!("{}", Bad));
    let payload = expect_panic(|| co.resume());
    assert_eq!(message(&payload), Some("inside Display"));
}
