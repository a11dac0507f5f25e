//! Coroutines on several threads at once, each thread running its own.

mod common;

use std::sync::Arc;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use common::{UNWOUND_AT_THREAD_EXIT, suspended_holding};
use sure_coro::{Coroutine, CoroutineResult, Generator, with_thread_pool};

const THREADS: u64 = 4;

/// Each thread drives `per_thread` coroutines in rotation; each coroutine
/// yields its running total of the numbers it is given.
fn run_thread(t: u64, per_thread: u64, start: &Barrier) -> (u64, Vec<u64>) {
    let mut all: Vec<Coroutine<u64, u64, u64>> = (0..per_thread)
        .map(|i| {
            Coroutine::with_input(move |h, mut x: u64| {
                let mut total = t * 1_000_000 + i;
                while x != 0 {
                    total += x;
                    x = h.suspend_with(total);
                }
                total
            })
        })
        .collect();
    start.wait();
    for round in 1..=10u64 {
        for co in all.iter_mut() {
            assert!(matches!(co.resume_with(round), CoroutineResult::Yield(_)));
            thread::yield_now();
        }
    }
    let finals: Vec<u64> = all
        .iter_mut()
        .map(|co| co.resume_with(0).into_return().unwrap())
        .collect();
    (t, finals)
}

#[test]
fn four_threads_each_drive_their_own_coroutines() {
    const PER_THREAD: u64 = 200;
    let start = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let start = start.clone();
            thread::spawn(move || run_thread(t, PER_THREAD, &start))
        })
        .collect();
    for handle in handles {
        let (t, finals) = handle.join().expect("no thread panicked");
        let expected: Vec<u64> = (0..PER_THREAD).map(|i| t * 1_000_000 + i + 55).collect();
        assert_eq!(finals, expected, "thread {t}");
    }
}

#[test]
fn threads_interleave_switches_with_each_other() {
    // Every thread ping-pongs with its own generator while the others do
    // the same; thread-local state seen from the body is the thread's own.
    thread_local! {
        static ID: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
    }
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                ID.with(|id| id.set(t));
                let generator = Generator::new(|h| {
                    for _ in 0..10_000 {
                        h.suspend_with(ID.with(std::cell::Cell::get));
                    }
                });
                generator.fold((0u64, true), |(n, same), id| (n + 1, same && id == t))
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), (10_000, true));
    }
}

#[test]
fn a_panic_in_a_coroutine_on_another_thread_reaches_join() {
    let handle = thread::spawn(|| {
        let mut co: Coroutine<(), (), ()> = Coroutine::new(|h| {
            h.suspend();
            std::panic::panic_any(1234_u32);
        });
        let _ = co.resume();
        let _ = co.resume();
    });
    let payload = handle.join().unwrap_err();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&1234));
}

#[test]
fn suspended_coroutines_left_at_thread_exit_are_unwound() {
    struct Token(Arc<AtomicUsize>);
    impl Drop for Token {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let thread_drops = drops.clone();
    thread::spawn(move || {
        let all: Vec<Coroutine> = (0..50)
            .map(|_| suspended_holding(Token(thread_drops.clone())))
            .collect();
        // Dropped as the thread's closure ends.
        drop(all);
    })
    .join()
    .unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 50);
}

#[test]
fn a_coroutine_kept_in_a_thread_local_is_unwound_when_the_thread_exits() {
    struct Token(Arc<AtomicUsize>);
    impl Drop for Token {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static KEPT: std::cell::RefCell<Vec<Coroutine>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let thread_drops = drops.clone();
    thread::spawn(move || {
        // Use the pool first, so its destructor is registered before KEPT's
        // and the two are destroyed in some order at exit.
        drop(Coroutine::new(|h| h.suspend()));
        for _ in 0..3 {
            let co = suspended_holding(Token(thread_drops.clone()));
            KEPT.with(|kept| kept.borrow_mut().push(co));
        }
        assert!(with_thread_pool(|p| p.len()) <= 1);
    })
    .join()
    .unwrap();
    // On Windows the exit leaks them all.
    let unwound = if UNWOUND_AT_THREAD_EXIT { 3 } else { 0 };
    assert_eq!(drops.load(Ordering::SeqCst), unwound);
}

#[test]
fn many_short_threads_each_with_coroutines() {
    let total: u64 = (0..16u64)
        .map(|t| {
            thread::spawn(move || {
                let mut co = Coroutine::yielding(move |h| {
                    h.suspend_with(t);
                    t * 10
                });
                co.resume().into_yield().unwrap() + co.resume().into_return().unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(total, (0..16).map(|t| t * 11).sum());
}
