//! Cancelling in place with `force_unwind`, telling the cancellation from a
//! real panic, and `Coroutine::state` through every transition.

mod common;

use std::panic::{self, AssertUnwindSafe};

use common::{Log, expect_panic, message};
use sure_coro::{Coroutine, CoroutineResult, CoroutineState, is_cancellation};

#[test]
fn force_unwind_runs_the_destructors_and_keeps_a_completed_coroutine() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::new(move |h| {
        let _outer = body_log.guard("outer");
        let _inner = body_log.guard("inner");
        loop {
            h.suspend();
        }
    });
    let _ = co.resume();
    assert_eq!(co.state(), CoroutineState::Suspended);
    co.force_unwind();
    assert_eq!(log.events(), ["drop inner", "drop outer"]);
    assert_eq!(co.state(), CoroutineState::Completed);
    assert!(co.is_completed());
    let payload = expect_panic(|| co.resume());
    assert!(message(&payload).unwrap().contains("already completed"));
    // The stack is still there to take back.
    assert!(co.into_stack().len() >= sure_coro::DEFAULT_STACK_SIZE);
}

#[test]
fn force_unwind_of_an_unstarted_coroutine_drops_its_closure() {
    let log = Log::new();
    let guard = log.guard("captured");
    let mut co = Coroutine::new(move |_h| {
        let _guard = guard;
        unreachable!("never started");
    });
    co.force_unwind();
    assert_eq!(log.events(), ["drop captured"]);
    assert_eq!(co.state(), CoroutineState::Completed);
}

#[test]
fn force_unwind_of_a_completed_coroutine_does_nothing() {
    let mut co = Coroutine::new(|_h| 5);
    assert_eq!(co.resume(), CoroutineResult::Return(5));
    co.force_unwind();
    co.force_unwind();
    assert_eq!(co.state(), CoroutineState::Completed);
}

#[test]
fn a_body_panicking_while_force_unwound_raises_its_payload_and_completes() {
    let mut co = Coroutine::new(|h| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
        panic!("cleanup failed");
    });
    let _ = co.resume();
    let payload = expect_panic(|| co.force_unwind());
    assert_eq!(message(&payload), Some("cleanup failed"));
    assert_eq!(co.state(), CoroutineState::Completed);
}

#[test]
fn a_catch_unwind_in_the_body_tells_the_cancellation_from_a_real_panic() {
    let log = Log::new();
    let body_log = log.clone();
    let mut server = Coroutine::new(move |h| {
        loop {
            match panic::catch_unwind(AssertUnwindSafe(|| {
                h.suspend();
                panic!("a request failed");
            })) {
                Err(payload) if is_cancellation(&*payload) => {
                    body_log.push("cancelled");
                    panic::resume_unwind(payload);
                }
                Err(payload) => body_log.push(message(&payload).unwrap().to_owned()),
                Ok(()) => unreachable!(),
            }
        }
    });
    let _ = server.resume();
    let _ = server.resume(); // the request panics; the server goes on
    server.force_unwind();
    assert_eq!(log.events(), ["a request failed", "cancelled"]);
    assert!(server.is_completed());
}

#[test]
fn a_real_panic_is_not_a_cancellation() {
    let payload = expect_panic(|| panic!("real"));
    assert!(!is_cancellation(&*payload));
}

#[test]
fn state_follows_every_transition_and_shows_in_debug() {
    let mut co = Coroutine::yielding(|h| {
        h.suspend_with(1);
        2
    });
    assert_eq!(co.state(), CoroutineState::Unstarted);
    assert!(format!("{co:?}").contains("Unstarted"));
    assert_eq!(co.resume(), CoroutineResult::Yield(1));
    assert_eq!(co.state(), CoroutineState::Suspended);
    assert!(format!("{co:?}").contains("Suspended"));
    assert_eq!(co.resume(), CoroutineResult::Return(2));
    assert_eq!(co.state(), CoroutineState::Completed);
    assert!(format!("{co:?}").contains("Completed"));

    let mut panicking = Coroutine::new(|_h| panic!("boom"));
    let _ = expect_panic(|| panicking.resume());
    assert_eq!(panicking.state(), CoroutineState::Completed);
}

#[test]
fn a_body_sees_itself_inside_a_coroutine_at_any_depth_and_nesting() {
    fn deep(n: u32) -> bool {
        if n == 0 {
            sure_coro::is_inside_coroutine()
        } else {
            std::hint::black_box(deep(n - 1))
        }
    }
    let mut outer = Coroutine::new(|_h| {
        let mut inner = Coroutine::new(|_h| deep(50));
        (deep(10), inner.resume().into_return())
    });
    assert_eq!(outer.resume().into_return(), Some((true, Some(true))));
    assert!(!sure_coro::is_inside_coroutine());
    let on_a_thread = std::thread::spawn(|| {
        let before = sure_coro::is_inside_coroutine();
        let mut co = Coroutine::new(|_h| sure_coro::is_inside_coroutine());
        (
            before,
            co.resume().into_return(),
            sure_coro::is_inside_coroutine(),
        )
    });
    assert_eq!(on_a_thread.join().unwrap(), (false, Some(true), false));
}
