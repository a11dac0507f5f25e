//! Scoped coroutines: bodies that borrow the caller's data, ended at the
//! end of their scope whatever the scope's closure did; `std::thread::scope`
//! inside a body; the edge where a body cannot be unwound.

mod common;

use std::sync::Mutex;
use std::sync::mpsc;

use common::child::{REACHED, assert_aborted_with, in_child, say};
use common::{Log, expect_panic, message};
use sure_coro::{Builder, Coroutine, CoroutineResult, CoroutineState, ScopedCoroutine};

#[test]
fn a_generator_over_a_borrowed_slice() {
    let numbers = vec![3, 1, 4, 1, 5];
    let evens_and_odds: (Vec<i32>, Vec<i32>) = ScopedCoroutine::yielding(|h| {
        for n in &numbers {
            h.suspend_with(*n);
        }
    })
    .scope(|co| co.partition(|n| n % 2 == 0));
    assert_eq!(evens_and_odds, (vec![4], vec![3, 1, 1, 5]));
    // Still ours.
    assert_eq!(numbers.len(), 5);
}

#[test]
fn a_body_fills_a_borrowed_vec_and_takes_borrowed_input() {
    let mut seen = Vec::new();
    let inputs = [String::from("a"), String::from("bc")];
    let total = ScopedCoroutine::with_input(|h, mut word: &str| {
        loop {
            seen.push(word.to_uppercase());
            if word.len() > 1 {
                return seen.len();
            }
            word = h.suspend_with(word.len());
        }
    })
    .scope(|mut co| {
        assert_eq!(co.resume_with(&inputs[0]), CoroutineResult::Yield(1));
        co.resume_with(&inputs[1]).into_return()
    });
    assert_eq!(total, Some(2));
    assert_eq!(seen, ["A", "BC"]);
}

#[test]
fn a_suspended_body_is_unwound_when_its_scope_ends() {
    let log = Log::new();
    let state = ScopedCoroutine::new(|h| {
        let _guard = log.guard("on the coroutine's stack");
        log.push("started");
        loop {
            h.suspend();
        }
    })
    .scope(|mut co| {
        let _ = co.resume();
        co.state()
    });
    assert_eq!(state, CoroutineState::Suspended);
    assert_eq!(log.events(), ["started", "drop on the coroutine's stack"]);
}

#[test]
fn a_panic_in_the_scope_unwinds_the_body_first() {
    let log = Log::new();
    let payload = expect_panic(|| {
        ScopedCoroutine::new(|h| {
            let _guard = log.guard("body");
            h.suspend();
        })
        .scope(|mut co| {
            let _ = co.resume();
            log.push("scope panics");
            panic!("from the scope");
        })
    });
    assert_eq!(message(&payload), Some("from the scope"));
    assert_eq!(log.events(), ["scope panics", "drop body"]);
}

#[test]
fn a_panic_in_the_body_comes_out_of_the_resume() {
    let payload = expect_panic(|| {
        ScopedCoroutine::new(|_h| panic!("from the body")).scope(|mut co| co.resume())
    });
    assert_eq!(message(&payload), Some("from the body"));
}

#[test]
fn thread_scope_inside_a_body_is_joined_before_the_scope_returns() {
    // The body spawns a thread that borrows the caller's `log` and waits;
    // the body suspends inside `thread::scope` and is never resumed. The
    // end of the coroutine's scope unwinds the body, which drops the
    // sender (waking the thread) and leaves `thread::scope`, which joins
    // the thread: so by the time `scope` returns, the thread has written.
    let log = Mutex::new(Vec::new());
    let log = &log;
    ScopedCoroutine::new(|h| {
        let (wake, wait) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            s.spawn(move || {
                let _ = wait.recv();
                log.lock().unwrap().push("thread done");
            });
            let _wake = wake;
            h.suspend();
            unreachable!("never resumed");
        });
    })
    .scope(|mut co| {
        assert!(co.resume().is_yield());
        log.lock().unwrap().push("scope ends");
    });
    log.lock().unwrap().push("scope returned");
    assert_eq!(
        *log.lock().unwrap(),
        ["scope ends", "thread done", "scope returned"]
    );
}

#[test]
fn a_body_may_suspend_the_coroutine_it_runs_in() {
    // A scoped body may borrow an outer coroutine's handle and suspend
    // that coroutine from inside itself; dropping the outer coroutine then
    // unwinds through both.
    let log = Log::new();
    let inner_log = log.clone();
    let mut outer = Coroutine::new(move |outer_h| {
        ScopedCoroutine::new(|_h| {
            let _guard = inner_log.guard("scoped body");
            outer_h.suspend();
        })
        .scope(|mut co| {
            let _ = co.resume();
        });
    });
    assert!(outer.resume().is_yield());
    drop(outer);
    assert_eq!(log.events(), ["drop scoped body"]);
}

#[test]
fn the_builder_builds_scoped_coroutines_on_any_stack() {
    let text = String::from("on a small stack");
    let length = Builder::new()
        .stack_size(64 * 1024)
        .name("scoped")
        .build_scoped_yielding(|h| h.suspend_with(text.len()))
        .unwrap()
        .scope(|mut co| co.next());
    assert_eq!(length, Some(16));
}

/// Runs a scoped coroutine whose body is still suspended when its scope
/// ends, from a thread-local's destructor at thread exit, where it cannot
/// be unwound.
struct EndsAScopeWhenDestroyed;

impl Drop for EndsAScopeWhenDestroyed {
    fn drop(&mut self) {
        let borrowed = String::from("borrowed");
        ScopedCoroutine::new(|h| {
            let _uses = &borrowed;
            h.suspend();
        })
        .scope(|mut co| {
            say(REACHED);
            let _ = co.resume();
        });
    }
}

thread_local! {
    static AT_EXIT: EndsAScopeWhenDestroyed = const { EndsAScopeWhenDestroyed };
}

#[test]
fn a_body_that_cannot_be_unwound_at_the_end_of_its_scope_aborts() {
    let test = "a_body_that_cannot_be_unwound_at_the_end_of_its_scope_aborts";
    let Some(out) = in_child(test, || {
        std::thread::spawn(|| {
            // Registered before the thread's first coroutine, so destroyed
            // after sure has seen the thread exit.
            AT_EXIT.with(|_| ());
            let _ = Coroutine::new(|_h| ()).resume();
        })
        .join()
        .unwrap();
    }) else {
        return;
    };
    assert_aborted_with(
        &out,
        "a scoped coroutine cannot be ended at the end of its scope: the coroutine is \
         suspended and this thread's locals are being destroyed",
    );
}
