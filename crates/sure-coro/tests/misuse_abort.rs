//! Misuse that safe code can express ends in a panic, or in a clear abort
//! (`SIGABRT` with Rust's message on stderr), never in undefined behaviour
//! or a segfault.
//!
//! The abort cases run in a child process: the test re-executes this test
//! binary for itself alone, with `CHILD_ENV` set to its own name, and looks
//! at how the child ended.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::child::{
    PANIC_IN_CLEANUP, REACHED, SURVIVED, assert_aborted_with, assert_unwound_or_aborted, in_child,
    say, stderr, stdout,
};
use common::{DropCounter, Log, UNWOUND_AT_THREAD_EXIT, expect_panic, message};
use sure_coro::{Coroutine, CoroutineResult, Generator, SuspendHandle, with_thread_pool};

/// A guard whose drop panics.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{} panics in its destructor", self.0);
    }
}

/// A guard that prints when dropped (in a child, where stdout is the record
/// that survives an abort).
struct SayOnDrop(&'static str);

impl Drop for SayOnDrop {
    fn drop(&mut self) {
        say(&format!("drop {}", self.0));
    }
}

// ---------------------------------------------------------------------------
// (a) A destructor on the body's stack that panics during an unwind.

#[test]
fn a_destructor_panicking_while_a_dropped_coroutine_unwinds_aborts() {
    let Some(out) = in_child(
        "a_destructor_panicking_while_a_dropped_coroutine_unwinds_aborts",
        || {
            let mut co = Coroutine::new(|h| {
                let _outer = SayOnDrop("outer");
                let _bad = PanicOnDrop("the middle guard");
                let _inner = SayOnDrop("inner");
                h.suspend();
            });
            let _ = co.resume();
            say(REACHED);
            drop(co);
        },
    ) else {
        return;
    };
    assert_aborted_with(&out, PANIC_IN_CLEANUP);
    let o = stdout(&out);
    assert!(o.contains("drop inner"), "the inner guard ran first: {o}");
    assert!(
        !o.contains("drop outer"),
        "the process ended at the panicking guard: {o}"
    );
    assert!(
        stderr(&out).contains("the middle guard panics in its destructor"),
        "the destructor's own panic is reported: {}",
        stderr(&out)
    );
}

#[test]
fn a_destructor_panicking_while_a_body_panic_unwinds_aborts() {
    let Some(out) = in_child(
        "a_destructor_panicking_while_a_body_panic_unwinds_aborts",
        || {
            let mut co: Coroutine<(), (), ()> = Coroutine::new(|h| {
                let _outer = SayOnDrop("outer");
                let _bad = PanicOnDrop("the middle guard");
                let _inner = SayOnDrop("inner");
                h.suspend();
                panic!("the body's own panic");
            });
            let _ = co.resume();
            say(REACHED);
            let _ = panic::catch_unwind(AssertUnwindSafe(|| co.resume()));
        },
    ) else {
        return;
    };
    assert_aborted_with(&out, PANIC_IN_CLEANUP);
    let o = stdout(&out);
    assert!(o.contains("drop inner") && !o.contains("drop outer"), "{o}");
    assert!(stderr(&out).contains("the body's own panic"));
}

#[test]
fn a_destructor_panicking_on_a_normal_return_comes_out_of_resume() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co: Coroutine<(), (), u32> = Coroutine::new(move |h| {
        let _outer = body_log.guard("outer");
        {
            let _inner = body_log.guard("inner");
            let _bad = PanicOnDrop("a scope-exit guard");
            h.suspend();
        }
        body_log.push("not reached");
        1
    });
    let _ = co.resume();
    let payload = expect_panic(|| co.resume());
    assert_eq!(
        message(&payload),
        Some("a scope-exit guard panics in its destructor")
    );
    assert_eq!(log.events(), ["drop inner", "drop outer"]);
    assert!(co.is_completed());
    assert!(!std::thread::panicking());
}

#[test]
fn a_destructor_that_catches_its_own_panic_during_the_drop_unwind_is_fine() {
    struct CatchesOwnPanic(Rc<Cell<bool>>);
    impl Drop for CatchesOwnPanic {
        fn drop(&mut self) {
            assert!(std::thread::panicking(), "runs during the cancel unwind");
            let r = panic::catch_unwind(|| panic!("caught inside drop"));
            self.0.set(r.is_err());
        }
    }
    let caught = Rc::new(Cell::new(false));
    let log = Log::new();
    let (body_caught, body_log) = (caught.clone(), log.clone());
    let mut co = Coroutine::yielding(move |h| {
        let _outer = body_log.guard("outer");
        let _catcher = CatchesOwnPanic(body_caught);
        let _inner = body_log.guard("inner");
        h.suspend();
    });
    let _ = co.resume();
    drop(co);
    assert!(caught.get());
    assert_eq!(log.events(), ["drop inner", "drop outer"]);
}

// ---------------------------------------------------------------------------
// (b) Suspending again while being dropped.

/// Safe code can reach the handle from a destructor: a guard that borrows
/// it, and suspends when dropped.
struct SuspendOnDrop<'a, 'h> {
    h: &'a mut SuspendHandle<'h, (), u32>,
    log: Log,
}

impl Drop for SuspendOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.log.push("suspending in drop");
        self.h.suspend_with(99);
        self.log.push("resumed in drop");
    }
}

#[test]
fn a_destructor_that_suspends_at_a_normal_scope_exit_suspends() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::yielding(move |h| {
        let _outer = body_log.guard("outer");
        {
            let _s = SuspendOnDrop {
                h,
                log: body_log.clone(),
            };
            let _inner = body_log.guard("inner");
        }
        body_log.push("after the scope");
        7
    });
    assert_eq!(co.resume(), CoroutineResult::Yield(99));
    assert_eq!(log.events(), ["drop inner", "suspending in drop"]);
    assert_eq!(co.resume(), CoroutineResult::Return(7));
    assert_eq!(
        log.events(),
        [
            "drop inner",
            "suspending in drop",
            "resumed in drop",
            "after the scope",
            "drop outer"
        ]
    );
}

#[test]
fn dropping_a_coroutine_suspended_inside_a_destructor_unwinds_out_of_it() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::yielding(move |h| {
        let _outer = body_log.guard("outer");
        {
            let _before = body_log.guard("declared before");
            let _s = SuspendOnDrop {
                h,
                log: body_log.clone(),
            };
            let _inner = body_log.guard("inner");
        }
        body_log.push("after the scope");
    });
    assert_eq!(co.resume(), CoroutineResult::Yield(99));
    drop(co);
    // The cancellation unwinds out of SuspendOnDrop::drop (a destructor at a
    // normal scope exit may unwind), then drops what is left, once each.
    assert_eq!(
        log.events(),
        [
            "drop inner",
            "suspending in drop",
            "drop declared before",
            "drop outer"
        ]
    );
}

#[test]
fn a_destructor_that_suspends_while_a_dropped_coroutine_unwinds_aborts() {
    let Some(out) = in_child(
        "a_destructor_that_suspends_while_a_dropped_coroutine_unwinds_aborts",
        || {
            let mut co = Coroutine::yielding(|h| {
                let _outer = SayOnDrop("outer");
                let s = SuspendOnDrop { h, log: Log::new() };
                let _inner = SayOnDrop("inner");
                s.h.suspend_with(1);
            });
            assert_eq!(co.resume(), CoroutineResult::Yield(1));
            say(REACHED);
            // The cancel unwind drops `s`, whose destructor suspends: the drop
            // resumes it (still cancelling), and the suspend point unwinds out
            // of a destructor that is running during an unwind.
            drop(co);
        },
    ) else {
        return;
    };
    assert_aborted_with(&out, PANIC_IN_CLEANUP);
    let o = stdout(&out);
    assert!(o.contains("drop inner") && !o.contains("drop outer"), "{o}");
}

fn guarded_descent(level: u32, log: &Log, h: &mut SuspendHandle<'_, (), u32>) {
    let _g = log.guard(format!("frame {level}"));
    if level == 0 {
        h.suspend_with(0);
        log.push("continued at the bottom");
    } else {
        guarded_descent(level - 1, log, h);
    }
}

#[test]
fn a_body_catching_the_drop_unwind_and_suspending_deeper_is_still_ended() {
    let log = Log::new();
    let drops = DropCounter::new();
    let body_log = log.clone();
    let body_drops = drops.clone();
    let mut co: Coroutine<(), common::Counted, ()> = Coroutine::yielding(move |h| {
        let _top = body_log.guard("top");
        for round in 0..3 {
            let _round = body_log.guard(format!("round {round}"));
            // Suspends three frames deep, each frame with its own guard; the
            // drop unwinds them and lands here.
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                let _in_catch = body_log.guard(format!("in catch {round}"));
                deep_suspend(3, &body_log, h, &body_drops);
            }));
            match caught {
                Ok(()) => body_log.push("continued normally"),
                Err(payload) => {
                    assert!(message(&payload).is_none(), "the payload is private");
                    body_log.push(format!("caught {round}"));
                }
            }
        }
        body_log.push("end of body");
    });
    fn deep_suspend(
        level: u32,
        log: &Log,
        h: &mut SuspendHandle<'_, (), common::Counted>,
        drops: &DropCounter,
    ) {
        let _g = log.guard(format!("level {level}"));
        if level == 0 {
            h.suspend_with(drops.make());
            log.push("continued at the bottom");
        } else {
            deep_suspend(level - 1, log, h, drops);
        }
    }
    drop(co.resume().into_yield());
    assert_eq!(drops.dropped(), 1);
    drop(co);
    let mut expected = Vec::new();
    for round in 0..3 {
        for level in 0..=3 {
            expected.push(format!("drop level {level}"));
        }
        expected.push(format!("drop in catch {round}"));
        expected.push(format!("caught {round}"));
        expected.push(format!("drop round {round}"));
    }
    expected.push("end of body".to_owned());
    expected.push("drop top".to_owned());
    assert_eq!(log.events(), expected, "every guard dropped once, in order");
    assert_eq!(
        drops.dropped(),
        3,
        "the values suspended with during the drop were dropped"
    );
    // The guard_descent helper is the plain version of the same, checked
    // with the plain handle type.
    let log2 = Log::new();
    let body_log2 = log2.clone();
    let mut plain: Coroutine<(), u32, ()> = Coroutine::yielding(move |h| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| guarded_descent(2, &body_log2, h)));
        guarded_descent(1, &body_log2, h);
    });
    let _ = plain.resume();
    drop(plain);
    assert_eq!(
        log2.events(),
        [
            "drop frame 0",
            "drop frame 1",
            "drop frame 2",
            "drop frame 0",
            "drop frame 1"
        ]
    );
}

/// A value whose drop panics: here, one a body suspends with while its
/// coroutine is being dropped.
struct YieldPanicsOnDrop;

impl Drop for YieldPanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a yielded value panics in its destructor");
        }
    }
}

/// Regression test. While `Drop` unwinds a suspended coroutine, every value
/// the body suspends with is dropped by the resumer. If that drop panics,
/// the panic used to leave `Coroutine::drop` with the body still
/// suspended mid-unwind: its remaining destructors never run, yet its stack
/// goes back to the thread's pool (or is unmapped) and is reused by the next
/// coroutine while frames on it were never unwound — which is what unwinding
/// on drop exists to prevent (safe code on that stack, a `thread::scope`
/// for one, can have lent its locals to another thread).
///
/// Acceptable outcomes, checked in a child: the process aborts with a clear
/// message, or the drop finishes unwinding the body (every guard dropped)
/// before the panic comes out. Not acceptable: the drop panics out with
/// guards never dropped and the stack recycled.
#[test]
fn a_yielded_value_panicking_on_drop_during_the_drop_unwind_does_not_recycle_a_live_stack() {
    let Some(out) = in_child(
        "a_yielded_value_panicking_on_drop_during_the_drop_unwind_does_not_recycle_a_live_stack",
        || {
            with_thread_pool(|pool| pool.clear());
            let guards = DropCounter::new();
            let body_guards = guards.clone();
            let mut co: Coroutine<(), YieldPanicsOnDrop, ()> = Coroutine::yielding(move |h| {
                let _outer = body_guards.make();
                let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                    let _inner = body_guards.make();
                    h.suspend_with(YieldPanicsOnDrop);
                }));
                // Caught the cancellation: suspend again, with a value whose
                // drop (by Coroutine::drop) panics.
                h.suspend_with(YieldPanicsOnDrop);
            });
            std::mem::forget(co.resume());
            say(REACHED);
            let result = panic::catch_unwind(AssertUnwindSafe(move || drop(co)));
            let pooled = with_thread_pool(|pool| pool.len());
            say(&format!(
                "drop {}, guards dropped {} of 2, stacks in the pool {pooled}",
                if result.is_err() {
                    "panicked"
                } else {
                    "returned"
                },
                guards.dropped()
            ));
            assert_eq!(
                guards.dropped(),
                2,
                "Coroutine::drop returned (or panicked) with the body not unwound, \
                 and its stack went back to the pool ({pooled} idle)"
            );
        },
    ) else {
        return;
    };
    assert_unwound_or_aborted(&out);
}

/// A value whose drop always panics, even while the thread is unwinding.
struct LoudYield;

impl Drop for LoudYield {
    fn drop(&mut self) {
        panic!("LoudYield panics in its destructor");
    }
}

/// A guard that, when dropped, suspends with a [`LoudYield`].
struct SuspendLoudOnDrop<'a, 'h>(&'a mut SuspendHandle<'h, (), LoudYield>);

impl Drop for SuspendLoudOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.suspend_with(LoudYield);
    }
}

/// The same case without any `catch_unwind` in the body: a destructor that
/// suspends during the drop's unwind hands the resumer a value whose drop
/// panics. That panic used to leave `Coroutine::drop` before the body's
/// cancellation is raised again (which would abort, as in
/// `a_destructor_that_suspends_while_a_dropped_coroutine_unwinds_aborts`):
/// the body is left mid-unwind, its outer guard is never dropped, its stack
/// is recycled, and the thread's panic count keeps the abandoned unwind, so
/// `std::thread::panicking()` stays true on a thread that is not panicking.
#[test]
fn a_destructor_yielding_a_loud_value_during_the_drop_unwind_does_not_recycle_a_live_stack() {
    let Some(out) = in_child(
        "a_destructor_yielding_a_loud_value_during_the_drop_unwind_does_not_recycle_a_live_stack",
        || {
            with_thread_pool(|pool| pool.clear());
            let guards = DropCounter::new();
            let body_guards = guards.clone();
            let mut co: Coroutine<(), LoudYield, ()> = Coroutine::yielding(move |h| {
                let _outer = body_guards.make();
                let s = SuspendLoudOnDrop(h);
                let _inner = body_guards.make();
                s.0.suspend_with(LoudYield);
            });
            std::mem::forget(co.resume());
            say(REACHED);
            let result = panic::catch_unwind(AssertUnwindSafe(move || drop(co)));
            let pooled = with_thread_pool(|pool| pool.len());
            let panicking = std::thread::panicking();
            say(&format!(
                "drop {}, guards dropped {} of 2, stacks in the pool {pooled}, \
                 thread::panicking() = {panicking}",
                if result.is_err() {
                    "panicked"
                } else {
                    "returned"
                },
                guards.dropped()
            ));
            // Forget the payload: dropping it panics too.
            std::mem::forget(result);
            assert_eq!(guards.dropped(), 2, "the body was not unwound");
            assert!(!panicking, "the thread is not panicking any more");
        },
    ) else {
        return;
    };
    assert_unwound_or_aborted(&out);
}

/// A destructor may suspend while a panic of the body unwinds: the resume
/// returns its value, and the next resume goes on unwinding and brings the
/// payload out. (Meanwhile the thread counts the body's panic as in
/// progress: `std::thread::panicking()` is true on the resumer's side.)
#[test]
fn a_destructor_suspending_during_a_body_panic_yields_then_the_panic_comes_out() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co: Coroutine<(), u32, ()> = Coroutine::yielding(move |h| {
        let _outer = body_log.guard("outer");
        let _s = SuspendOnDrop {
            h,
            log: body_log.clone(),
        };
        let _inner = body_log.guard("inner");
        panic!("body panic");
    });
    assert_eq!(co.resume(), CoroutineResult::Yield(99));
    assert_eq!(log.events(), ["drop inner", "suspending in drop"]);
    assert!(!co.is_completed());
    let payload = expect_panic(|| co.resume());
    assert_eq!(message(&payload), Some("body panic"));
    assert_eq!(
        log.events(),
        [
            "drop inner",
            "suspending in drop",
            "resumed in drop",
            "drop outer"
        ]
    );
    assert!(co.is_completed());
    assert!(!std::thread::panicking());
}

// ---------------------------------------------------------------------------
// (c) Resuming a completed coroutine panics.

#[test]
fn resuming_a_completed_coroutine_panics_however_it_completed() {
    fn assert_rejects(co: &mut Coroutine<u32, u32, u32>) {
        assert!(co.is_completed());
        for input in 0..3 {
            let payload = expect_panic(|| co.resume_with(input));
            let text = message(&payload).expect("a message");
            assert!(text.contains("already completed"), "{text}");
            assert!(co.is_completed());
        }
    }
    let runs = Rc::new(Cell::new(0));

    // Returned at once.
    let r = runs.clone();
    let mut returned = Coroutine::with_input(move |_h, x: u32| {
        r.set(r.get() + 1);
        x
    });
    assert_eq!(returned.resume_with(5), CoroutineResult::Return(5));
    assert_rejects(&mut returned);

    // Panicked after a suspend, the payload caught by the resumer.
    let r = runs.clone();
    let mut panicked = Coroutine::with_input(move |h, _x: u32| -> u32 {
        r.set(r.get() + 1);
        h.suspend_with(1);
        panic!("body panic")
    });
    assert_eq!(panicked.resume_with(0), CoroutineResult::Yield(1));
    assert_eq!(
        message(&expect_panic(|| panicked.resume_with(0))),
        Some("body panic")
    );
    assert_rejects(&mut panicked);

    // Caught the cancellation? No: completed by a panic from a nested
    // coroutine that it did not catch.
    let r = runs.clone();
    let mut relayed = Coroutine::with_input(move |h, _x: u32| -> u32 {
        r.set(r.get() + 1);
        let mut inner: Coroutine<(), (), ()> = Coroutine::new(|_h| panic!("inner panic"));
        h.suspend_with(2);
        let _ = inner.resume();
        0
    });
    let _ = relayed.resume_with(0);
    assert_eq!(
        message(&expect_panic(|| relayed.resume_with(0))),
        Some("inner panic")
    );
    assert_rejects(&mut relayed);

    // Completed by resuming a completed coroutine of its own.
    let r = runs.clone();
    let mut misuser = Coroutine::with_input(move |_h, _x: u32| -> u32 {
        r.set(r.get() + 1);
        let mut inner: Coroutine = Coroutine::new(|_h| ());
        let _ = inner.resume();
        let _ = inner.resume();
        0
    });
    let payload = expect_panic(|| misuser.resume_with(0));
    assert!(message(&payload).unwrap().contains("already completed"));
    assert_rejects(&mut misuser);

    assert_eq!(runs.get(), 4, "no body ran twice");

    // A generator is fused instead: `next` after the end is `None`, no panic.
    let mut g = Generator::new(|h| {
        h.suspend_with(1);
    });
    assert_eq!(g.next(), Some(1));
    for _ in 0..3 {
        assert_eq!(g.next(), None);
    }
    // Also after a panic.
    let mut g = Generator::<u8>::new(|_h| panic!("generator panic"));
    assert_eq!(message(&expect_panic(|| g.next())), Some("generator panic"));
    assert_eq!(g.next(), None);
}

// ---------------------------------------------------------------------------
// (d) A panic payload that panics when dropped.

/// A panic payload whose drop panics.
struct BadPayload(u32);

impl Drop for BadPayload {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("dropping BadPayload({}) panics", self.0);
        }
    }
}

#[test]
fn a_payload_that_panics_when_dropped_comes_out_and_can_be_dropped_by_the_catcher() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |h| {
        let _g = body_log.guard("body");
        h.suspend();
        panic::panic_any(BadPayload(1));
    });
    let _ = co.resume();
    let payload = expect_panic(|| co.resume());
    assert_eq!(payload.downcast_ref::<BadPayload>().map(|p| p.0), Some(1));
    assert!(co.is_completed());
    assert_eq!(log.events(), ["drop body"]);
    // Dropping it panics, in the catcher's own frame: an ordinary panic.
    let second = expect_panic(move || drop(payload));
    assert_eq!(message(&second), Some("dropping BadPayload(1) panics"));
    assert!(!std::thread::panicking());
    // The thread's coroutines still work.
    let mut next = Coroutine::yielding(|h| h.suspend_with(3));
    assert_eq!(next.resume(), CoroutineResult::Yield(3));
}

#[test]
fn a_bad_payload_travels_through_nested_coroutines() {
    let mut outer: Coroutine<(), (), ()> = Coroutine::new(|h| {
        let mut middle: Coroutine<(), (), ()> = Coroutine::new(|h| {
            let mut inner: Coroutine<(), (), ()> = Coroutine::new(|h| {
                h.suspend();
                panic::panic_any(BadPayload(3));
            });
            let _ = inner.resume();
            h.suspend();
            let _ = inner.resume();
        });
        let _ = middle.resume();
        h.suspend();
        let _ = middle.resume();
    });
    let _ = outer.resume();
    let payload = expect_panic(|| outer.resume());
    assert_eq!(payload.downcast_ref::<BadPayload>().map(|p| p.0), Some(3));
    let second = expect_panic(move || drop(payload));
    assert_eq!(message(&second), Some("dropping BadPayload(3) panics"));
}

#[test]
fn a_body_dropping_a_bad_payload_it_caught_panics_out_of_resume() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_h| {
        let caught = panic::catch_unwind(|| panic::panic_any(BadPayload(4)));
        drop(caught);
    });
    let payload = expect_panic(|| co.resume());
    assert_eq!(message(&payload), Some("dropping BadPayload(4) panics"));
    assert!(co.is_completed());
}

#[test]
fn a_bad_payload_raised_while_being_dropped_comes_out_of_drop() {
    let mut co = Coroutine::new(|h| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
        panic::panic_any(BadPayload(5));
    });
    let _ = co.resume();
    let payload = expect_panic(move || drop(co));
    assert_eq!(payload.downcast_ref::<BadPayload>().map(|p| p.0), Some(5));
    let second = expect_panic(move || drop(payload));
    assert_eq!(message(&second), Some("dropping BadPayload(5) panics"));
}

// ---------------------------------------------------------------------------
// (e) A body that panics while its coroutine is dropped during an outer
// panic.

/// A payload that counts its drops.
struct CountedPayload(Arc<AtomicUsize>);

impl Drop for CountedPayload {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_body_panicking_while_dropped_during_an_outer_panic_is_leaked_not_aborted() {
    let payload_drops = Arc::new(AtomicUsize::new(0));
    let log = Log::new();
    let body_log = log.clone();
    let body_drops = payload_drops.clone();
    let mut co = Coroutine::new(move |h| {
        let _g = body_log.guard("body");
        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
            let _in = body_log.guard("in catch");
            h.suspend();
        }));
        body_log.push("caught the cancellation");
        panic::panic_any(CountedPayload(body_drops));
    });
    let _ = co.resume();
    let scope_log = log.clone();
    let payload = expect_panic(move || {
        let _co = co;
        let _g = scope_log.guard("outer scope");
        panic!("outer panic");
    });
    assert_eq!(message(&payload), Some("outer panic"));
    assert_eq!(
        log.events(),
        [
            "drop outer scope",
            "drop in catch",
            "caught the cancellation",
            "drop body"
        ]
    );
    assert_eq!(
        payload_drops.load(Ordering::SeqCst),
        0,
        "the swallowed payload is leaked, not dropped: its destructor could panic during the \
         outer unwind, which would abort"
    );
    assert!(!std::thread::panicking());
}

#[test]
fn a_body_unwinding_its_own_children_during_an_outer_panic_does_not_abort() {
    let log = Log::new();
    let body_log = log.clone();
    let mut co = Coroutine::new(move |h| {
        let _g = body_log.guard("parent");
        let child_log = body_log.clone();
        let mut child = Coroutine::new(move |h| {
            let _g = child_log.guard("child");
            let grand_log = child_log.clone();
            let mut grandchild = Coroutine::new(move |h| {
                let _g = grand_log.guard("grandchild");
                loop {
                    h.suspend();
                }
            });
            let _ = grandchild.resume();
            loop {
                h.suspend();
            }
        });
        let _ = child.resume();
        h.suspend();
    });
    let _ = co.resume();
    let payload = expect_panic(move || {
        let _co = co;
        panic!("outer");
    });
    assert_eq!(message(&payload), Some("outer"));
    assert_eq!(
        log.events(),
        ["drop grandchild", "drop child", "drop parent"].map(String::from),
        "each body's locals drop in reverse order: the grandchild (declared after the \
         child's guard) first"
    );
}

#[test]
fn a_bad_payload_swallowed_during_an_outer_panic_is_leaked_not_aborted() {
    let Some(out) = in_child(
        "a_bad_payload_swallowed_during_an_outer_panic_is_leaked_not_aborted",
        || {
            let mut co = Coroutine::new(|h| {
                let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
                panic::panic_any(LoudBadPayload);
            });
            let _ = co.resume();
            say(REACHED);
            // Coroutine::drop swallows the body's new payload because the
            // thread is already panicking; dropping it would panic inside a
            // destructor during the outer unwind and abort, so it is leaked.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || {
                let _co = co;
                panic!("outer panic");
            }));
            say(SURVIVED);
        },
    ) else {
        return;
    };
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(SURVIVED), "{}", stderr(&out));
    assert!(!stderr(&out).contains("LoudBadPayload panics when dropped"));
}

/// A payload whose drop always panics, even during an unwind.
struct LoudBadPayload;

impl Drop for LoudBadPayload {
    fn drop(&mut self) {
        panic!("LoudBadPayload panics when dropped");
    }
}

#[test]
fn a_destructor_panicking_while_dropped_during_an_outer_panic_aborts() {
    let Some(out) = in_child(
        "a_destructor_panicking_while_dropped_during_an_outer_panic_aborts",
        || {
            let mut co = Coroutine::yielding(|h| {
                let _outer = SayOnDrop("outer");
                let _bad = PanicOnDrop("a body guard");
                h.suspend();
            });
            let _ = co.resume();
            say(REACHED);
            let _ = panic::catch_unwind(AssertUnwindSafe(move || {
                let _co = co;
                panic!("outer panic");
            }));
        },
    ) else {
        return;
    };
    assert_aborted_with(&out, PANIC_IN_CLEANUP);
    assert!(!stdout(&out).contains("drop outer"));
}

// ---------------------------------------------------------------------------
// (f) Leaking a suspended coroutine.

#[test]
fn forgetting_suspended_coroutines_runs_no_destructor_and_the_thread_exits_fine() {
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Tally(Arc<AtomicUsize>);
    impl Drop for Tally {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let thread_dropped = dropped.clone();
    let worked = std::thread::spawn(move || {
        let before = with_thread_pool(|pool| pool.len());
        for _ in 0..10 {
            let d = thread_dropped.clone();
            let mut co = Coroutine::yielding(move |h| {
                let _tally = Tally(d.clone());
                // A nested coroutine, suspended too, leaked with its parent.
                let mut child = Coroutine::yielding(move |h| {
                    let _tally = Tally(d);
                    h.suspend();
                });
                let _ = child.resume();
                h.suspend_with(1);
            });
            assert_eq!(co.resume(), CoroutineResult::Yield(1));
            std::mem::forget(co);
        }
        assert_eq!(thread_dropped.load(Ordering::SeqCst), 0);
        assert!(
            with_thread_pool(|pool| pool.len()) <= before,
            "a leaked coroutine's stack is not given back to the pool"
        );
        // The thread's coroutines still work after the leaks.
        let mut co = Coroutine::yielding(|h| {
            h.suspend_with(2);
            3
        });
        (co.resume(), co.resume())
    })
    .join()
    .expect("the thread exits normally");
    assert_eq!(
        worked,
        (CoroutineResult::Yield(2), CoroutineResult::Return(3))
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        0,
        "leaked destructors never run, not even at thread exit"
    );
}

#[test]
fn a_suspended_coroutine_in_a_thread_local_is_ended_at_thread_exit() {
    thread_local! {
        static PARKED: RefCell<Option<Coroutine<(), (), ()>>> = const { RefCell::new(None) };
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let continued = Arc::new(AtomicUsize::new(0));
    let (d, c) = (dropped.clone(), continued.clone());
    std::thread::spawn(move || {
        let mut co = Coroutine::new(move |h| {
            let _tally = CountedPayload(d);
            h.suspend();
            c.fetch_add(1, Ordering::SeqCst);
        });
        let _ = co.resume();
        PARKED.with(|p| *p.borrow_mut() = Some(co));
    })
    .join()
    .expect("the thread exits normally");
    assert_eq!(
        continued.load(Ordering::SeqCst),
        0,
        "never resumed normally"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        usize::from(UNWOUND_AT_THREAD_EXIT),
        "the thread-local's destructor unwound the coroutine (or, on Windows, leaked it)"
    );
}
