//! What the API does when used wrongly: a clear panic, never UB, and never
//! the body running again.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::{DropCounter, expect_panic, message};
use sure_coro::{Coroutine, CoroutineResult, with_thread_pool};

#[track_caller]
fn assert_completed_message(payload: &common::Payload) {
    let text = message(payload).expect("a panic message");
    assert!(
        text.contains("completed"),
        "the message says it completed: {text}"
    );
}

#[test]
fn resuming_a_returned_coroutine_panics_and_never_reruns_the_body() {
    let runs = Rc::new(Cell::new(0));
    let body_runs = runs.clone();
    let mut co = Coroutine::new(move |h| {
        body_runs.set(body_runs.get() + 1);
        h.suspend();
        body_runs.set(body_runs.get() + 1);
    });
    let _ = co.resume();
    let _ = co.resume();
    assert!(co.is_completed());
    assert_eq!(runs.get(), 2);
    for _ in 0..3 {
        let payload = expect_panic(|| co.resume());
        assert_completed_message(&payload);
        assert!(co.is_completed(), "still completed");
    }
    assert_eq!(runs.get(), 2, "the body never ran again");
}

#[test]
fn resuming_after_an_immediate_return_panics() {
    let mut co: Coroutine<(), (), i32> = Coroutine::new(|_h| 1);
    assert_eq!(co.resume(), CoroutineResult::Return(1));
    assert_completed_message(&expect_panic(|| co.resume()));
}

#[test]
fn resuming_after_a_panic_panics_with_the_completed_message() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_h| panic!("first"));
    assert_eq!(message(&expect_panic(|| co.resume())), Some("first"));
    assert_completed_message(&expect_panic(|| co.resume()));
}

#[test]
fn the_input_of_a_resume_after_completion_is_dropped_once() {
    let drops = DropCounter::new();
    let mut co: Coroutine<common::Counted> = Coroutine::with_input(|_h, _x| ());
    let _ = co.resume_with(drops.make());
    assert_eq!(drops.dropped(), 1);
    let payload = expect_panic(|| co.resume_with(drops.make()));
    assert_completed_message(&payload);
    assert_eq!(
        drops.dropped(),
        2,
        "the rejected input was dropped, not leaked or run"
    );
}

type Shared = Rc<RefCell<Option<Coroutine>>>;

#[test]
fn a_body_cannot_resume_its_own_coroutine() {
    let cell: Shared = Rc::new(RefCell::new(None));
    let body_cell = cell.clone();
    let got_in = Rc::new(Cell::new(false));
    let body_got_in = got_in.clone();
    *cell.borrow_mut() = Some(Coroutine::new(move |h| {
        h.suspend();
        // The resumer holds the RefCell mutably borrowed: no second `&mut`.
        assert!(body_cell.try_borrow_mut().is_err());
        assert!(body_cell.try_borrow().is_err());
        h.suspend();
        if let Some(me) = body_cell.borrow_mut().as_mut() {
            body_got_in.set(true);
            let _ = me.resume();
        }
    }));
    let _ = cell.borrow_mut().as_mut().unwrap().resume();
    let _ = cell.borrow_mut().as_mut().unwrap().resume();
    let payload = expect_panic(|| cell.borrow_mut().as_mut().unwrap().resume());
    let text = message(&payload).expect("RefCell's panic message");
    assert!(text.contains("borrowed"), "{text}");
    assert!(!got_in.get());
    assert!(
        cell.borrow().as_ref().unwrap().is_completed(),
        "the panic completed the coroutine"
    );
    // The body (and its clone of the Rc) was consumed: no cycle is left.
    assert_eq!(Rc::strong_count(&cell), 1);
}

#[test]
fn a_body_cannot_drop_its_own_coroutine() {
    let cell: Shared = Rc::new(RefCell::new(None));
    let body_cell = cell.clone();
    *cell.borrow_mut() = Some(Coroutine::yielding(move |_h| {
        let me = body_cell.borrow_mut().take();
        drop(me);
    }));
    let payload = expect_panic(|| cell.borrow_mut().as_mut().unwrap().resume());
    assert!(message(&payload).unwrap().contains("borrowed"));
    let co = cell.borrow_mut().take().unwrap();
    assert!(co.is_completed());
}

#[test]
fn a_nested_with_thread_pool_sees_an_empty_stand_in_and_the_pool_comes_back_whole() {
    with_thread_pool(|p| {
        p.give_back(sure_stack::Stack::allocate_at_least(sure_coro::DEFAULT_STACK_SIZE).unwrap())
    });
    let before = with_thread_pool(|p| p.len());
    assert!(before >= 1);
    let nested = with_thread_pool(|_| with_thread_pool(|p| p.len()));
    assert_eq!(nested, 0, "the pool itself is lent to the outer call");
    assert_eq!(with_thread_pool(|p| p.len()), before);
}

#[test]
fn a_coroutine_built_and_dropped_while_the_pool_is_lent_out_gives_its_stack_to_the_pool() {
    with_thread_pool(|p| p.clear());
    let (first, second) = with_thread_pool(|_pool| {
        let mut co = Coroutine::yielding(|h| {
            h.suspend_with(1);
            2
        });
        (co.resume(), co.resume())
    });
    assert_eq!(first, CoroutineResult::Yield(1));
    assert_eq!(second, CoroutineResult::Return(2));
    assert_eq!(
        with_thread_pool(|p| p.len()),
        1,
        "the stand-in's stack went into the pool"
    );
}

#[test]
fn a_body_running_inside_with_thread_pool_can_build_coroutines() {
    let mut outer = Coroutine::yielding(|h| {
        h.suspend();
        let mut inner = Coroutine::yielding(|h| h.suspend_with(5));
        inner.resume().into_yield()
    });
    let _ = outer.resume();
    let got = with_thread_pool(|_| outer.resume());
    assert_eq!(got, CoroutineResult::Return(Some(5)));
}
