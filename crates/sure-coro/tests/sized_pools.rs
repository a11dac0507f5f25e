//! The per-thread pools of stack sizes other than the default: a coroutine
//! built with `Builder::stack_size` takes a stack of its rounded size from
//! its thread's pool of that size, and its drop gives it back there, within
//! the bounds `pool.rs` documents (8 sizes, 64 stacks of a size, 16 MiB of
//! idle stacks in all). Each test runs on a thread of its own, so it starts
//! with fresh, empty pools.
//!
//! The pools of other sizes cannot be looked at from outside, so the tests
//! tell a reused stack from a fresh one by its contents: a fresh mapping is
//! all zeros (the kernel guarantees it), while a stack a coroutine ran on
//! keeps what the body wrote, far below the few bytes building a coroutine
//! writes at the top. The contents are read through `/proc/self/mem`, which
//! needs no `unsafe` and goes around AddressSanitizer's view of the stack.

// `/proc/self/mem` is Linux's; the pools' logic is the same everywhere.
#![cfg(target_os = "linux")]

use std::cell::RefCell;
use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

use sure_coro::{
    Builder, Coroutine, DEFAULT_STACK_SIZE, Stack, SuspendHandle, pooled_stack_usage,
    with_thread_pool,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The bounds `pool.rs` documents.
const MAX_SIZES: usize = 8;
const PER_SIZE: usize = sure_coro::StackPool::DEFAULT_CAPACITY;
const IDLE_BYTES: usize = 16 * MIB;

/// How far below the top of a stack its contents are read: deeper than
/// anything `dirty` or building a coroutine writes.
const WINDOW: usize = 64 * KIB;

/// How much deeper than a fresh stack's writes a used stack's must reach to
/// count as used: `dirty` alone writes at least twice this, even under
/// AddressSanitizer (which moves its arrays elsewhere, leaving 128 return
/// addresses).
const MARGIN: usize = KIB;

/// Runs `f` on a new thread (with new, empty pools) and returns its result.
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

/// Writes a few KiB of frames below itself.
#[inline(never)]
fn dirty(depth: usize) -> usize {
    let frame = black_box([depth as u8 | 1; 64]);
    if depth == 0 {
        usize::from(frame[0])
    } else {
        dirty(depth - 1) + usize::from(frame[depth % 64])
    }
}

/// Every coroutine of these tests runs this body (one type, so that building
/// one writes the same bytes on every stack): it dirties its stack, then
/// suspends once.
fn body(h: &mut SuspendHandle) {
    black_box(dirty(128));
    h.suspend();
}

/// An unstarted coroutine on a stack of at least `bytes`, from the pools.
fn sized(bytes: usize) -> Coroutine {
    Builder::new()
        .stack_size(bytes)
        .build(body)
        .expect("a stack")
}

/// Builds a coroutine on a stack of at least `bytes`, runs it to its end
/// and drops it: its dirtied stack goes back to the pool of its size.
fn run_and_drop(bytes: usize) {
    let mut co = sized(bytes);
    let _ = co.resume();
    let _ = co.resume();
    assert!(co.is_completed());
}

/// How far below `stack`'s top its lowest non-zero byte lies, within the
/// top [`WINDOW`] bytes; 0 for a stack of zeros.
fn written_depth(stack: &Stack) -> usize {
    let window = WINDOW.min(stack.len());
    let mut bytes = vec![0u8; window];
    let mem = File::open("/proc/self/mem").expect("/proc/self/mem");
    let from = stack.top().as_ptr() as u64 - window as u64;
    mem.read_exact_at(&mut bytes, from)
        .expect("read the stack through /proc/self/mem");
    bytes
        .iter()
        .position(|&b| b != 0)
        .map_or(0, |lowest| window - lowest)
}

/// How deep building (not running) a coroutine writes on a fresh stack of
/// `len` bytes.
fn fresh_depth(len: usize) -> usize {
    let stack = Stack::allocate_at_least(len).expect("a stack");
    let co = Builder::new()
        .stack(stack)
        .build(body)
        .expect("a coroutine");
    written_depth(&co.into_stack())
}

/// Whether the next coroutine built with `stack_size(bytes)` gets a stack
/// a body already ran on (a pooled one) rather than a fresh mapping. The
/// stack is then kept out of the pools (`into_stack`), so calling this `n`
/// times counts how many of the first `n` stacks were pooled.
fn next_is_reused(bytes: usize) -> bool {
    let stack = sized(bytes).into_stack();
    assert!(stack.len() >= bytes);
    written_depth(&stack) > fresh_depth(stack.len()) + MARGIN
}

/// How many of the next `n` stacks of `bytes` come from the pool.
fn reused_of_next(bytes: usize, n: usize) -> usize {
    // Taken all at once, so that no stack comes back in between.
    let stacks: Vec<Stack> = (0..n).map(|_| sized(bytes).into_stack()).collect();
    let fresh = fresh_depth(stacks[0].len());
    stacks
        .iter()
        .filter(|stack| written_depth(stack) > fresh + MARGIN)
        .count()
}

/// Runs `n` coroutines of `bytes` at once, then drops them all, each
/// giving its stack back.
fn run_many_and_drop(bytes: usize, n: usize) {
    let live: Vec<Coroutine> = (0..n)
        .map(|_| {
            let mut co = sized(bytes);
            let _ = co.resume();
            co
        })
        .collect();
    drop(live);
}

#[test]
fn the_observable_tells_fresh_stacks_from_used_ones() {
    on_fresh_thread(|| {
        assert!(!next_is_reused(128 * KIB), "nothing is pooled yet");
        let stack = Stack::allocate_at_least(128 * KIB).unwrap();
        let mut co = Builder::new().stack(stack).build(body).unwrap();
        let _ = co.resume();
        let _ = co.resume();
        let used = co.into_stack();
        assert!(written_depth(&used) > fresh_depth(used.len()) + MARGIN);
    });
}

#[test]
fn a_second_coroutine_of_a_size_reuses_the_first_ones_stack() {
    on_fresh_thread(|| {
        run_and_drop(128 * KIB);
        assert!(next_is_reused(128 * KIB), "the first one's stack");
        assert!(!next_is_reused(128 * KIB), "that was the only one");
    });
}

#[test]
fn a_loop_of_coroutines_maps_one_stack() {
    on_fresh_thread(|| {
        for _ in 0..10 {
            run_and_drop(128 * KIB);
        }
        assert_eq!(
            reused_of_next(128 * KIB, 2),
            1,
            "each coroutine took the stack the one before gave back"
        );
    });
}

#[test]
fn suspended_and_unstarted_coroutines_give_their_stacks_back_too() {
    on_fresh_thread(|| {
        let mut suspended = sized(96 * KIB);
        let _ = suspended.resume();
        drop(suspended);
        assert!(next_is_reused(96 * KIB), "an unwound body's stack");
        // An unstarted coroutine takes the pooled stack and gives it back.
        run_and_drop(96 * KIB);
        drop(sized(96 * KIB));
        assert!(next_is_reused(96 * KIB));
    });
}

#[test]
fn sizes_are_pooled_by_their_rounded_size() {
    on_fresh_thread(|| {
        run_and_drop(128 * KIB - 100);
        assert!(
            next_is_reused(128 * KIB),
            "128 KiB - 100 rounds up to 128 KiB"
        );
    });
}

#[test]
fn a_size_asked_for_again_gets_its_own_rounded_length() {
    on_fresh_thread(|| {
        let page = sure_stack::page_size();
        // Twice, so that the second ask takes the pool's shortcut (the size
        // last asked of the recent pool).
        run_and_drop(128 * KIB);
        run_and_drop(128 * KIB);
        assert_eq!(sized(128 * KIB + 1).stack_size(), 128 * KIB + page);
        // Its drop made the pool of 128 KiB + a page the recent one.
        assert_eq!(sized(128 * KIB).stack_size(), 128 * KIB);
        assert_eq!(sized(128 * KIB - 1).stack_size(), 128 * KIB);
        assert_eq!(sized(128 * KIB + 1).stack_size(), 128 * KIB + page);
    });
}

#[test]
fn each_size_has_a_pool_of_its_own() {
    on_fresh_thread(|| {
        run_and_drop(128 * KIB);
        assert!(!next_is_reused(192 * KIB), "not a 128 KiB stack");
        assert!(!next_is_reused(64 * KIB), "nor a smaller size");
        assert!(next_is_reused(128 * KIB), "still there for its size");
    });
}

#[test]
fn the_default_size_still_goes_to_the_default_pool() {
    on_fresh_thread(|| {
        let pooled = || with_thread_pool(|p| p.len());
        run_and_drop(128 * KIB);
        assert_eq!(pooled(), 0, "a 128 KiB stack does not go there");
        run_and_drop(DEFAULT_STACK_SIZE);
        assert_eq!(pooled(), 1);
        run_and_drop(DEFAULT_STACK_SIZE - 100);
        assert_eq!(pooled(), 1, "rounded to the default size: reused");
        let co = sized(DEFAULT_STACK_SIZE);
        assert_eq!(pooled(), 0, "taken from the default pool");
        drop(co);
        let co = Coroutine::new(|h| h.suspend());
        assert_eq!(pooled(), 0, "and Coroutine::new takes it from there");
        drop(co);
        assert_eq!(pooled(), 1);
        assert!(next_is_reused(128 * KIB), "the 128 KiB one is still kept");
    });
}

/// A coroutine of `bytes` whose body dirties `depth` frames, then suspends.
fn dirtying(bytes: usize, depth: usize) -> Coroutine {
    let mut co = Builder::new()
        .stack_size(bytes)
        .build(move |h| {
            black_box(dirty(depth));
            h.suspend();
        })
        .expect("a stack");
    let _ = co.resume();
    co
}

/// The pools are last in, first out, hot slot or not: the stack given back
/// last, whose pages are the likeliest still in cache, is taken first.
#[test]
fn the_newest_stack_given_back_is_taken_first() {
    on_fresh_thread(|| {
        for bytes in [128 * KIB, DEFAULT_STACK_SIZE] {
            // Two rounds: the first makes the pool and its slot.
            for _ in 0..2 {
                let deep = dirtying(bytes, 256);
                let shallow = dirtying(bytes, 8);
                drop(deep);
                drop(shallow);
                let first = dirtying(bytes, 0).into_stack();
                let second = dirtying(bytes, 0).into_stack();
                assert!(
                    written_depth(&first) < written_depth(&second),
                    "{bytes}: the shallow stack, given back last, comes first"
                );
            }
        }
    });
}

/// The default pool keeps the newest idle stack in a slot of its own, in
/// front of its list: counted in the capacity however it changes, which
/// `with_thread_pool`'s `len` cannot show (the slot's stack joins the list
/// while the pool is lent).
#[test]
fn the_default_pool_keeps_at_most_its_capacity_counting_its_newest_stack() {
    on_fresh_thread(|| {
        for capacity in [4, 1, 0, 2] {
            with_thread_pool(|p| p.set_capacity(capacity));
            run_many_and_drop(DEFAULT_STACK_SIZE, 10);
            assert_eq!(
                reused_of_next(DEFAULT_STACK_SIZE, 10),
                capacity,
                "capacity {capacity}"
            );
        }
        // Lowered while both the slot and the list hold stacks.
        with_thread_pool(|p| p.set_capacity(8));
        run_many_and_drop(DEFAULT_STACK_SIZE, 10);
        with_thread_pool(|p| p.set_capacity(3));
        assert_eq!(reused_of_next(DEFAULT_STACK_SIZE, 10), 3);
    });
}

#[test]
fn caller_provided_stacks_of_other_sizes_are_not_pooled() {
    on_fresh_thread(|| {
        let stack = Stack::allocate_at_least(128 * KIB).unwrap();
        let mut co = Builder::new().stack(stack).build(body).unwrap();
        let _ = co.resume();
        let _ = co.resume();
        drop(co);
        assert!(!next_is_reused(128 * KIB), "the caller's stack was freed");
    });
}

#[test]
fn at_most_eight_sizes_are_kept_and_the_least_recently_used_goes() {
    on_fresh_thread(|| {
        // Nine sizes other than the default, one stack each: 2.9 MiB.
        let sizes: Vec<usize> = [1, 2, 3, 5, 6, 7, 8, 9, 10]
            .iter()
            .map(|k| k * 64 * KIB)
            .collect();
        assert_eq!(sizes.len(), MAX_SIZES + 1);
        for &size in &sizes {
            run_and_drop(size);
        }
        assert!(!next_is_reused(sizes[0]), "the oldest size was evicted");
        for &size in &sizes[1..] {
            assert!(next_is_reused(size), "{size} bytes");
        }
    });
}

#[test]
fn using_a_size_keeps_it_from_eviction() {
    on_fresh_thread(|| {
        let sizes: Vec<usize> = [1, 2, 3, 5, 6, 7, 8, 9]
            .iter()
            .map(|k| k * 64 * KIB)
            .collect();
        assert_eq!(sizes.len(), MAX_SIZES);
        for &size in &sizes {
            run_and_drop(size);
        }
        // The oldest size, taken from and given back, is now the newest.
        run_and_drop(sizes[0]);
        run_and_drop(10 * 64 * KIB);
        assert!(next_is_reused(sizes[0]));
        assert!(!next_is_reused(sizes[1]), "the least recently used went");
        assert!(next_is_reused(10 * 64 * KIB));
    });
}

#[test]
fn a_size_keeps_at_most_64_idle_stacks() {
    on_fresh_thread(|| {
        // 65 stacks of 64 KiB: 4 MiB, within the byte budget.
        run_many_and_drop(64 * KIB, PER_SIZE + 1);
        assert_eq!(reused_of_next(64 * KIB, PER_SIZE + 1), PER_SIZE);
    });
}

#[test]
fn idle_stacks_of_one_size_stay_within_16_mib() {
    on_fresh_thread(|| {
        run_many_and_drop(MIB, 20);
        assert_eq!(reused_of_next(MIB, 20), IDLE_BYTES / MIB);
    });
}

#[test]
fn a_stack_that_does_not_fit_frees_the_least_recently_used_sizes_stacks() {
    on_fresh_thread(|| {
        // 16 MiB of 1 MiB stacks fill the budget; a 512 KiB stack then
        // frees one of them, not the others.
        run_many_and_drop(MIB, 16);
        run_and_drop(512 * KIB);
        assert!(next_is_reused(512 * KIB));
        assert_eq!(reused_of_next(MIB, 16), 15);
    });
}

#[test]
fn sizes_above_the_budget_are_never_kept() {
    on_fresh_thread(|| {
        run_and_drop(128 * KIB);
        run_and_drop(IDLE_BYTES + 64 * KIB);
        assert!(!next_is_reused(IDLE_BYTES + 64 * KIB));
        assert!(next_is_reused(128 * KIB), "and they evict nothing");
    });
}

#[test]
fn invalid_sizes_are_still_errors() {
    on_fresh_thread(|| {
        assert!(Builder::new().stack_size(0).build(body).is_err());
        assert!(Builder::new().stack_size(usize::MAX).build(body).is_err());
    });
}

#[test]
fn coroutines_of_other_sizes_outlive_the_pools_at_thread_exit() {
    static DROPPED: AtomicBool = AtomicBool::new(false);
    static BUILT_LATE: AtomicBool = AtomicBool::new(false);
    static KEPT_LATE: AtomicBool = AtomicBool::new(true);

    /// Builds, runs and drops a sized coroutine from a thread-local
    /// destructor that runs after the pools are destroyed: its stack, and
    /// the kept coroutine's, are freed, not kept.
    struct LateBuilder;
    impl Drop for LateBuilder {
        fn drop(&mut self) {
            run_and_drop(128 * KIB);
            run_and_drop(128 * KIB);
            BUILT_LATE.store(true, Ordering::SeqCst);
            let usage = pooled_stack_usage().expect("the pools' usage");
            KEPT_LATE.store(!usage.is_empty(), Ordering::SeqCst);
        }
    }

    /// A completed sized coroutine dropped after the pools are destroyed.
    struct Keeper(Option<Coroutine>);
    impl Drop for Keeper {
        fn drop(&mut self) {
            drop(self.0.take());
            DROPPED.store(true, Ordering::SeqCst);
        }
    }

    thread_local! {
        static LATE: LateBuilder = const { LateBuilder };
        static KEPT: RefCell<Keeper> = const { RefCell::new(Keeper(None)) };
    }

    on_fresh_thread(|| {
        // Registered (first used) before the pools, so destroyed after
        // them: destructors run in the reverse order of registration.
        LATE.with(|_| ());
        KEPT.with(|_| ());
        let mut co = sized(128 * KIB);
        let _ = co.resume();
        let _ = co.resume();
        KEPT.with(|kept| kept.borrow_mut().0 = Some(co));
        // And an idle stack in the pools when they go.
        run_and_drop(128 * KIB);
    });
    assert!(DROPPED.load(Ordering::SeqCst));
    assert!(BUILT_LATE.load(Ordering::SeqCst));
    assert!(
        !KEPT_LATE.load(Ordering::SeqCst),
        "stacks given back at thread exit were kept"
    );
}
