//! Helpers shared by the integration tests: drop counters, drop logs and
//! panic payload inspection.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

pub mod child;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

/// Whether a suspended coroutine that a thread-local's destructor drops at
/// thread exit is unwound: on Linux, for a thread-local first used after
/// the thread's first coroutine (so destroyed before sure's exit watch
/// fires). On Windows every suspended coroutine is leaked once the thread
/// starts to exit.
pub const UNWOUND_AT_THREAD_EXIT: bool = !cfg!(windows);

/// A panic payload, as `catch_unwind` returns it.
pub type Payload = Box<dyn Any + Send + 'static>;

/// A shared list of events, in the order they happened.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn new() -> Self {
        Log::default()
    }

    pub fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }

    /// Everything logged so far.
    pub fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// A guard that logs `drop <name>` when dropped.
    pub fn guard(&self, name: impl Into<String>) -> Guard {
        Guard {
            name: name.into(),
            log: self.clone(),
        }
    }
}

/// Logs `drop <name>` when dropped.
pub struct Guard {
    pub name: String,
    log: Log,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.log.push(format!("drop {}", self.name));
    }
}

/// Counts how many [`Counted`] values made from it were dropped.
#[derive(Clone, Default)]
pub struct DropCounter(Rc<Cell<usize>>);

impl DropCounter {
    pub fn new() -> Self {
        DropCounter::default()
    }

    /// A value that adds one to this counter when dropped.
    pub fn make(&self) -> Counted {
        Counted(self.clone())
    }

    pub fn dropped(&self) -> usize {
        self.0.get()
    }
}

/// Adds one to its [`DropCounter`] when dropped.
pub struct Counted(DropCounter);

impl Drop for Counted {
    fn drop(&mut self) {
        let count = &(self.0).0;
        count.set(count.get() + 1);
    }
}

/// Runs `f`, which must panic, and returns its payload.
#[track_caller]
pub fn expect_panic<T>(f: impl FnOnce() -> T) -> Payload {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, but the closure returned"),
        Err(payload) => payload,
    }
}

/// The message of a `panic!` payload (`&str` or `String`), if it is one.
pub fn message(payload: &Payload) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

/// A coroutine that has been resumed once and is suspended, for good,
/// with `value` alive on its stack: for tests of what dropping, forgetting
/// or keeping a suspended coroutine does to the values on its stack.
pub fn suspended_holding<T: 'static>(value: T) -> sure_coro::Coroutine {
    let mut co = sure_coro::Coroutine::new(move |h| {
        let _value = value;
        loop {
            h.suspend();
        }
    });
    let _ = co.resume();
    co
}
