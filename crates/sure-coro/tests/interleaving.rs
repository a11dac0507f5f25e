//! Who runs when: nothing before the first resume, each resume runs to the
//! next suspend or return, and the two sides alternate strictly.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::Log;
use sure_coro::{Coroutine, CoroutineResult, SuspendHandle};

#[test]
fn the_body_does_not_run_before_the_first_resume() {
    let ran = Rc::new(Cell::new(0));
    let seen = ran.clone();
    let mut co = Coroutine::yielding(move |h| {
        seen.set(seen.get() + 1);
        h.suspend();
        seen.set(seen.get() + 1);
    });
    assert_eq!(ran.get(), 0, "building a coroutine runs nothing");
    assert!(!co.is_started());
    assert!(!co.is_completed());

    assert_eq!(co.resume(), CoroutineResult::Yield(()));
    assert_eq!(
        ran.get(),
        1,
        "the first resume runs up to the suspend, not past it"
    );
    assert!(co.is_started());
    assert!(!co.is_completed());

    assert_eq!(co.resume(), CoroutineResult::Return(()));
    assert_eq!(ran.get(), 2);
    assert!(co.is_started());
    assert!(co.is_completed());
}

#[test]
fn each_resume_runs_exactly_to_the_next_suspend() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::yielding(move |h| {
        body_log.push("a");
        h.suspend_with(1);
        body_log.push("b");
        h.suspend_with(2);
        body_log.push("c");
        "end"
    });
    assert!(log.events().is_empty());
    assert_eq!(co.resume(), CoroutineResult::Yield(1));
    assert_eq!(log.events(), ["a"]);
    assert_eq!(co.resume(), CoroutineResult::Yield(2));
    assert_eq!(log.events(), ["a", "b"]);
    assert!(!co.is_completed());
    assert_eq!(co.resume(), CoroutineResult::Return("end"));
    assert_eq!(log.events(), ["a", "b", "c"]);
    assert!(co.is_completed());
}

#[test]
fn a_body_that_never_suspends_completes_on_the_first_resume() {
    let mut co: Coroutine<(), (), i32> = Coroutine::new(|_h| 42);
    assert!(!co.is_started());
    assert_eq!(co.resume(), CoroutineResult::Return(42));
    assert!(co.is_started());
    assert!(co.is_completed());
}

#[test]
fn resumer_and_body_alternate() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::new(move |h| {
        for i in 0..5 {
            body_log.push(format!("body {i}"));
            h.suspend();
        }
        body_log.push("body end");
    });
    for i in 0..5 {
        log.push(format!("main {i}"));
        assert_eq!(co.resume(), CoroutineResult::Yield(()));
    }
    log.push("main end");
    assert_eq!(co.resume(), CoroutineResult::Return(()));

    let mut expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("main {i}"), format!("body {i}")])
        .collect();
    expected.push("main end".into());
    expected.push("body end".into());
    assert_eq!(log.events(), expected);
}

#[test]
fn two_coroutines_interleave_in_round_robin() {
    let log = Log::new();
    let make = |name: &'static str, steps: usize| {
        let log = log.clone();
        Coroutine::yielding(move |h| {
            for i in 0..steps {
                log.push(format!("{name}{i}"));
                h.suspend();
            }
            steps
        })
    };
    let mut a = make("a", 3);
    let mut b = make("b", 2);
    let mut done = Vec::new();
    while !(a.is_completed() && b.is_completed()) {
        for (name, co) in [("a", &mut a), ("b", &mut b)] {
            if !co.is_completed()
                && let CoroutineResult::Return(n) = co.resume()
            {
                done.push((name, n));
            }
        }
    }
    assert_eq!(log.events(), ["a0", "b0", "a1", "b1", "a2"]);
    assert_eq!(done, [("b", 2), ("a", 3)]);
}

/// Suspends from three calls deep: the whole call chain is kept on the
/// coroutine's own stack while it is suspended.
fn deep(level: u32, log: &Log, h: &mut SuspendHandle<'_, (), u32>) -> u32 {
    log.push(format!("enter {level}"));
    let below = if level == 0 {
        h.suspend_with(100);
        0
    } else {
        deep(level - 1, log, h)
    };
    log.push(format!("leave {level}"));
    below + level
}

#[test]
fn suspending_from_nested_calls_keeps_the_call_chain() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::yielding(move |h| deep(3, &body_log, h));
    assert_eq!(co.resume(), CoroutineResult::Yield(100));
    assert_eq!(log.events(), ["enter 3", "enter 2", "enter 1", "enter 0"]);
    log.push("main");
    assert_eq!(co.resume(), CoroutineResult::Return(3 + 2 + 1));
    assert_eq!(
        log.events(),
        [
            "enter 3", "enter 2", "enter 1", "enter 0", "main", "leave 0", "leave 1", "leave 2",
            "leave 3"
        ]
    );
}

#[test]
fn locals_survive_across_suspends() {
    let mut co = Coroutine::yielding(|h| {
        let mut local = [0u64; 64];
        for round in 0..4u64 {
            for (i, slot) in local.iter_mut().enumerate() {
                *slot += i as u64 * round;
            }
            h.suspend_with(local.iter().sum::<u64>());
        }
        local
    });
    // Clobber the resumer's stack between resumes.
    let mut yielded = Vec::new();
    while let CoroutineResult::Yield(sum) = co.resume() {
        yielded.push(sum);
        let noise = std::hint::black_box([0xAAu8; 4096]);
        assert_eq!(noise[4095], 0xAA);
    }
    let per_round: u64 = (0..64).sum();
    assert_eq!(yielded, [0, per_round, 3 * per_round, 6 * per_round]);
    assert!(co.is_completed());
}

#[test]
fn the_coroutine_value_can_move_between_resumes() {
    let mut co = Coroutine::yielding(|h| {
        let mut n = 0;
        loop {
            n += 1;
            h.suspend_with(n);
        }
    });
    let _: &Coroutine<(), i32, ()> = &co;
    assert_eq!(co.resume().into_yield(), Some(1));
    let mut boxed = Box::new(co);
    assert_eq!(boxed.resume().into_yield(), Some(2));
    let mut vec = vec![*boxed];
    assert_eq!(vec[0].resume().into_yield(), Some(3));
    let mut back = vec.pop().unwrap();
    assert_eq!(back.resume().into_yield(), Some(4));
}

#[test]
fn debug_shows_the_state() {
    let mut co = Coroutine::new(|h| h.suspend());
    assert!(format!("{co:?}").contains("Unstarted"), "{co:?}");
    let _ = co.resume();
    assert!(format!("{co:?}").contains("Suspended"), "{co:?}");
    let _ = co.resume();
    assert!(format!("{co:?}").contains("Completed"), "{co:?}");
}
