//! A minimal asymmetric fiber over the raw API, shared by the tests.

#![allow(dead_code)] // each test file uses a different part of it

use std::ptr::NonNull;

use sure_context::{ExecutionContext, Trampoline};

/// Heap memory used as a stack: the tests must not depend on sure-stack.
pub struct TestStack(Box<[u128]>);

impl TestStack {
    pub fn new(bytes: usize) -> Self {
        TestStack(vec![0u128; bytes / 16].into_boxed_slice())
    }

    pub fn region(&mut self) -> NonNull<[u8]> {
        let len = self.0.len() * 16;
        NonNull::slice_from_raw_parts(NonNull::from(&mut self.0[0]).cast::<u8>(), len)
    }

    pub fn contains(&self, addr: usize) -> bool {
        let bottom = self.0.as_ptr() as usize;
        (bottom..bottom + self.0.len() * 16).contains(&addr)
    }
}

type Body = Box<dyn FnOnce(&mut Suspender)>;

struct FiberState {
    caller: ExecutionContext,
    own: ExecutionContext,
    body: Option<Body>,
    finished: bool,
}

/// What a fiber body uses to switch back to whoever resumed it.
pub struct Suspender {
    state: *mut FiberState,
}

impl Suspender {
    pub fn suspend(&mut self) {
        // SAFETY: the state outlives the body; `caller` was saved by the
        // resume that is running us.
        unsafe { (*self.state).own.return_to(&(*self.state).caller) }
    }
}

/// The trampoline object: only a pointer, so that `run`'s `&mut self`
/// covers nothing the resumer touches.
struct Entry(*mut FiberState);

impl Trampoline for Entry {
    fn run(&mut self) -> ! {
        let state = self.0;
        // SAFETY: the state outlives the fiber; the body is taken once.
        let body = unsafe { (*state).body.take() }.expect("fiber body");
        body(&mut Suspender { state });
        // SAFETY: as above; the body is done and the stack holds nothing
        // left to drop, so exiting to the resumer is allowed.
        unsafe {
            (*state).finished = true;
            ExecutionContext::exit_to(&(*state).caller)
        }
    }
}

/// A closure on its own stack, resumed until it finishes.
///
/// The state is reached only through raw pointers (not a `Box`, whose
/// uniqueness would forbid the fiber's own accesses while it is suspended).
pub struct Fiber {
    state: *mut FiberState,
    _entry: Box<Entry>,
    _stack: TestStack,
}

impl Drop for Fiber {
    fn drop(&mut self) {
        // SAFETY: made by Box::into_raw in `new`, freed once, here; the
        // fiber is not running.
        drop(unsafe { Box::from_raw(self.state) });
    }
}

impl Fiber {
    pub fn new(stack_bytes: usize, body: impl FnOnce(&mut Suspender) + 'static) -> Self {
        let mut stack = TestStack::new(stack_bytes);
        let state = Box::into_raw(Box::new(FiberState {
            caller: ExecutionContext::new(),
            own: ExecutionContext::new(),
            body: Some(Box::new(body)),
            finished: false,
        }));
        let mut entry = Box::new(Entry(state));
        // SAFETY: stack, state and entry live in the Fiber, which outlives
        // every resume; nothing runs on the stack yet.
        unsafe {
            (*state).own = ExecutionContext::setup(stack.region(), NonNull::from(&mut *entry))
        };
        Fiber {
            state,
            _entry: entry,
            _stack: stack,
        }
    }

    /// Runs the fiber until it suspends or finishes; true once finished.
    pub fn resume(&mut self) -> bool {
        let state = self.state;
        // SAFETY: the state lives until the Fiber is dropped; `own` is
        // suspended (fresh or saved by `suspend`).
        unsafe {
            assert!(!(*state).finished, "resumed a finished fiber");
            (*state).caller.switch_to(&(*state).own);
            (*state).finished
        }
    }
}
