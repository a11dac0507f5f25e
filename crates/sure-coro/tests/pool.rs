//! The per-thread pool of default-size stacks: reuse, capacity, and which
//! coroutines do not use it (stacks of other sizes have pools of their own,
//! tested in `sized_pools.rs`). Each test runs on a thread of its own, so it
//! starts with a fresh, empty pool.

use sure_coro::{Builder, Coroutine, DEFAULT_STACK_SIZE, with_thread_pool};
use sure_stack::{Stack, StackPool};

/// Runs `f` on a new thread (with a new, empty pool) and returns its result.
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

fn pooled() -> usize {
    with_thread_pool(|p| p.len())
}

/// The bottom of the stack the pool would hand out next.
fn next_pooled_bottom() -> usize {
    with_thread_pool(|p| {
        let stack = p.take_idle().expect("an idle stack");
        let bottom = stack.bottom().as_ptr() as usize;
        p.give_back(stack);
        bottom
    })
}

#[test]
fn a_fresh_pool() {
    on_fresh_thread(|| {
        with_thread_pool(|p| {
            assert!(p.is_empty());
            assert_eq!(p.stack_size(), DEFAULT_STACK_SIZE);
            assert_eq!(p.capacity(), StackPool::DEFAULT_CAPACITY);
        });
    });
}

#[test]
fn a_dropped_coroutine_gives_its_stack_back_and_the_next_reuses_it() {
    // Compared through the pool rather than through the address of a local
    // in the body, which AddressSanitizer may move to its fake stack.
    on_fresh_thread(|| {
        let _ = Coroutine::new(|h| h.suspend()).resume();
        assert_eq!(
            pooled(),
            1,
            "the first coroutine's stack went back to the pool"
        );
        let first = next_pooled_bottom();
        let mut co = Coroutine::new(|h| h.suspend());
        let _ = co.resume();
        assert_eq!(pooled(), 0, "the next coroutine took the pooled stack");
        drop(co);
        assert_eq!(pooled(), 1);
        assert_eq!(next_pooled_bottom(), first, "and gave the same one back");
    });
}

#[test]
fn unstarted_suspended_and_completed_coroutines_all_return_their_stacks() {
    on_fresh_thread(|| {
        let unstarted = Coroutine::new(|h| h.suspend());
        let mut suspended = Coroutine::new(|h| h.suspend());
        let _ = suspended.resume();
        let mut completed = Coroutine::new(|h| h.suspend());
        let _ = completed.resume();
        let _ = completed.resume();
        assert_eq!(pooled(), 0);
        drop(unstarted);
        drop(suspended);
        drop(completed);
        assert_eq!(pooled(), 3);
        // Three new coroutines take them all, LIFO.
        let again: Vec<Coroutine> = (0..3).map(|_| Coroutine::new(|h| h.suspend())).collect();
        assert_eq!(pooled(), 0);
        drop(again);
        assert_eq!(pooled(), 3);
    });
}

#[test]
fn the_pool_keeps_at_most_its_capacity() {
    on_fresh_thread(|| {
        with_thread_pool(|p| p.set_capacity(4));
        let live: Vec<Coroutine> = (0..10)
            .map(|_| {
                let mut co = Coroutine::new(|h| h.suspend());
                let _ = co.resume();
                co
            })
            .collect();
        drop(live);
        assert_eq!(pooled(), 4);
        with_thread_pool(|p| p.set_capacity(2));
        assert!(pooled() <= 2);
        with_thread_pool(StackPool::clear);
        assert_eq!(pooled(), 0);
    });
}

#[test]
fn a_zero_capacity_pool_keeps_nothing() {
    on_fresh_thread(|| {
        with_thread_pool(|p| p.set_capacity(0));
        for _ in 0..5 {
            let mut co = Coroutine::yielding(|h| h.suspend_with(1));
            assert_eq!(co.resume().into_yield(), Some(1));
        }
        assert_eq!(pooled(), 0);
    });
}

#[test]
fn other_sizes_do_not_go_to_the_default_pool() {
    on_fresh_thread(|| {
        let mut co = Builder::new()
            .stack_size(64 * 1024)
            .build(|h| h.suspend())
            .unwrap();
        let _ = co.resume();
        drop(co);
        assert_eq!(pooled(), 0, "a 64 KiB stack goes to the 64 KiB pool");
        let mut big = Builder::new()
            .stack_size(DEFAULT_STACK_SIZE * 2)
            .build(|h| h.suspend())
            .unwrap();
        let _ = big.resume();
        drop(big);
        assert_eq!(pooled(), 0);
    });
}

#[test]
fn the_default_size_asked_for_explicitly_is_pooled() {
    on_fresh_thread(|| {
        let co = Builder::new()
            .stack_size(DEFAULT_STACK_SIZE)
            .build(|h| h.suspend())
            .unwrap();
        drop(co);
        assert_eq!(pooled(), 1);
        // And taken from the pool by the next coroutine.
        let next = Coroutine::new(|h| h.suspend());
        assert_eq!(pooled(), 0);
        drop(next);
    });
}

#[test]
fn caller_provided_stacks_are_not_pooled() {
    on_fresh_thread(|| {
        let stack = Stack::allocate_at_least(DEFAULT_STACK_SIZE).unwrap();
        let mut co = Builder::new().stack(stack).build(|h| h.suspend()).unwrap();
        let _ = co.resume();
        drop(co);
        assert_eq!(pooled(), 0, "the caller's stack is freed, as documented");
    });
}

#[test]
fn into_stack_takes_the_stack_out_of_the_pool_cycle() {
    on_fresh_thread(|| {
        let co = Coroutine::new(|h| h.suspend());
        let stack = co.into_stack();
        assert_eq!(pooled(), 0);
        // Given back by hand, it is reused.
        with_thread_pool(|p| p.give_back(stack));
        assert_eq!(pooled(), 1);
        let _co = Coroutine::new(|h| h.suspend());
        assert_eq!(pooled(), 0);
    });
}

#[test]
fn a_stack_taken_from_the_pool_by_hand_runs_a_coroutine() {
    on_fresh_thread(|| {
        let stack = with_thread_pool(|p| p.take()).unwrap();
        let mut co = Builder::new()
            .stack(stack)
            .build_yielding(|h| h.suspend_with(9))
            .unwrap();
        assert_eq!(co.resume().into_yield(), Some(9));
    });
}

#[test]
fn dropping_a_coroutine_inside_with_thread_pool_pools_its_stack_once_the_closure_returns() {
    on_fresh_thread(|| {
        let mut co = Coroutine::new(|h| h.suspend());
        let _ = co.resume();
        with_thread_pool(move |p| {
            drop(co);
            assert_eq!(
                p.len(),
                0,
                "the stack went to the stand-in, not the lent pool"
            );
        });
        assert_eq!(pooled(), 1);
    });
}

#[test]
fn with_thread_pool_returns_the_closures_value() {
    on_fresh_thread(|| {
        let (len, cap) = with_thread_pool(|p| (p.len(), p.capacity()));
        assert_eq!((len, cap), (0, StackPool::DEFAULT_CAPACITY));
    });
}

#[test]
fn the_pool_is_per_thread() {
    on_fresh_thread(|| {
        with_thread_pool(|p| p.set_capacity(1));
        drop(Coroutine::new(|h| h.suspend()));
        assert_eq!(pooled(), 1);
        let other = on_fresh_thread(|| with_thread_pool(|p| (p.len(), p.capacity())));
        assert_eq!(
            other,
            (0, StackPool::DEFAULT_CAPACITY),
            "another thread has its own pool"
        );
        assert_eq!(with_thread_pool(|p| p.capacity()), 1);
    });
}

#[test]
fn a_pool_of_another_size_put_in_place_of_the_thread_pool_is_not_kept() {
    on_fresh_thread(|| {
        with_thread_pool(|p| {
            *p = StackPool::new(64 * 1024).unwrap();
            let small = p.take().unwrap();
            p.give_back(small);
        });
        assert_eq!(
            with_thread_pool(|p| p.stack_size()),
            sure_stack::DEFAULT_STACK_SIZE
        );
        let co = Builder::new()
            .stack_size(sure_stack::DEFAULT_STACK_SIZE)
            .build(|h| h.suspend())
            .unwrap();
        assert!(
            co.stack_size() >= sure_stack::DEFAULT_STACK_SIZE,
            "got {}",
            co.stack_size()
        );
    });
}
