//! Switching among contexts: interleaving, symmetric transfer, lifetimes.

mod support;

use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;

use support::{Fiber, TestStack};
use sure_context::{ExecutionContext, MIN_SETUP_BYTES, Trampoline};

#[test]
fn resume_and_suspend_interleave() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let inner = log.clone();
    let mut fiber = Fiber::new(64 * 1024, move |s| {
        for i in 0..3 {
            inner.borrow_mut().push(format!("fiber {i}"));
            s.suspend();
        }
    });
    for i in 0..3 {
        log.borrow_mut().push(format!("main {i}"));
        assert!(!fiber.resume());
    }
    assert!(fiber.resume(), "the body returns on the fourth resume");
    let expected: Vec<String> = (0..3)
        .flat_map(|i| [format!("main {i}"), format!("fiber {i}")])
        .collect();
    assert_eq!(*log.borrow(), expected);
}

/// Three contexts passing control around a ring with `switch_to` only.
struct RingTask {
    id: usize,
    ring: *mut Ring,
}

struct Ring {
    main: ExecutionContext,
    contexts: [ExecutionContext; 3],
    log: Vec<usize>,
    laps: usize,
}

impl Trampoline for RingTask {
    fn run(&mut self) -> ! {
        let ring = self.ring;
        // SAFETY: the ring outlives the run; contexts are suspended when
        // switched to, and each task saves into its own slot.
        unsafe {
            for _ in 0..(*ring).laps {
                (*ring).log.push(self.id);
                let next = (self.id + 1) % 3;
                let (own, target): (*mut ExecutionContext, *const ExecutionContext) =
                    (&mut (*ring).contexts[self.id], &(*ring).contexts[next]);
                (*own).switch_to(&*target);
            }
            // Task 0 gets control back after its last lap first and ends
            // the ring; tasks 1 and 2 are never continued again.
            ExecutionContext::exit_to(&(*ring).main)
        }
    }
}

#[test]
fn three_contexts_ping_pong_in_a_ring() {
    let mut stacks: Vec<TestStack> = (0..3).map(|_| TestStack::new(64 * 1024)).collect();
    let mut ring = Box::new(Ring {
        main: ExecutionContext::new(),
        contexts: Default::default(),
        log: Vec::new(),
        laps: 4,
    });
    let ring_ptr: *mut Ring = &mut *ring;
    let mut tasks: Vec<RingTask> = (0..3).map(|id| RingTask { id, ring: ring_ptr }).collect();
    for (id, task) in tasks.iter_mut().enumerate() {
        // SAFETY: stacks and tasks outlive the ring's run.
        let context = unsafe { ExecutionContext::setup(stacks[id].region(), NonNull::from(task)) };
        // SAFETY: nothing runs on the contexts yet.
        unsafe { (*ring_ptr).contexts[id] = context };
    }
    // SAFETY: context 0 is fresh; main saves itself and is continued by
    // task 0's exit.
    unsafe {
        let (main, first): (*mut ExecutionContext, *const ExecutionContext) =
            (&mut (*ring_ptr).main, &(*ring_ptr).contexts[0]);
        (*main).switch_to(&*first);
    }
    // Four full rounds 0, 1, 2; task 0 exits when task 2 hands it control
    // after the last.
    let expected: Vec<usize> = (0..12).map(|i| i % 3).collect();
    assert_eq!(ring.log, expected);
}

#[test]
fn contexts_are_created_and_finished_thousands_of_times() {
    let counter = Rc::new(RefCell::new(0u64));
    for i in 0..5_000u64 {
        let c = counter.clone();
        let mut fiber = Fiber::new(16 * 1024, move |_| *c.borrow_mut() += i);
        assert!(fiber.resume());
    }
    assert_eq!(*counter.borrow(), (0..5_000u64).sum::<u64>());
}

#[test]
fn many_fibers_alive_at_once_keep_their_own_state() {
    let mut fibers: Vec<(Fiber, Rc<RefCell<Vec<u32>>>)> = (0..200)
        .map(|id| {
            let seen = Rc::new(RefCell::new(Vec::new()));
            let s2 = seen.clone();
            let fiber = Fiber::new(16 * 1024, move |s| {
                let mut local = id * 1000;
                for _ in 0..5 {
                    local += 1;
                    s2.borrow_mut().push(local);
                    s.suspend();
                }
            });
            (fiber, seen)
        })
        .collect();
    for _ in 0..5 {
        for (fiber, _) in fibers.iter_mut() {
            assert!(!fiber.resume());
        }
    }
    for (id, (fiber, seen)) in fibers.iter_mut().enumerate() {
        assert!(fiber.resume());
        let base = id as u32 * 1000;
        assert_eq!(
            *seen.borrow(),
            (1..=5).map(|k| base + k).collect::<Vec<_>>()
        );
    }
}

#[test]
#[should_panic(expected = "smaller than MIN_SETUP_BYTES")]
fn setup_rejects_a_tiny_region() {
    struct Never;
    impl Trampoline for Never {
        fn run(&mut self) -> ! {
            unreachable!()
        }
    }
    let mut stack = TestStack::new(MIN_SETUP_BYTES / 2);
    let mut never = Never;
    // SAFETY: setup panics before writing anything.
    let _ = unsafe { ExecutionContext::setup(stack.region(), NonNull::from(&mut never)) };
}

#[test]
fn a_fresh_context_is_saved_and_a_new_one_is_not() {
    assert!(!ExecutionContext::new().is_saved());
    let fiber_ctx_saved = {
        struct Never;
        impl Trampoline for Never {
            fn run(&mut self) -> ! {
                unreachable!()
            }
        }
        let mut stack = TestStack::new(4096);
        let mut never = Never;
        // SAFETY: the context is never switched to.
        unsafe { ExecutionContext::setup(stack.region(), NonNull::from(&mut never)) }.is_saved()
    };
    assert!(fiber_ctx_saved);
}
