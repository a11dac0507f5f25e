//! Many coroutines: thousands alive at once, and a hundred thousand made
//! and dropped in a loop on pooled stacks.

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{DropCounter, suspended_holding};
use sure_coro::{Coroutine, CoroutineResult, with_thread_pool};

const LIVE: usize = 10_000;
const ROUNDS: u64 = 3;

#[test]
fn ten_thousand_live_coroutines_in_rotation() {
    let start = Instant::now();
    let mut all: Vec<Coroutine<(), u64, u64>> = (0..LIVE as u64)
        .map(|id| {
            Coroutine::yielding(move |h| {
                // Touch this coroutine's stack with data only it knows.
                let mut local = [0u64; 64];
                for (i, slot) in local.iter_mut().enumerate() {
                    *slot = id * 1000 + i as u64;
                }
                black_box(&mut local);
                for round in 0..ROUNDS {
                    h.suspend_with(local[(round as usize) % 64] + round);
                }
                local.iter().sum()
            })
        })
        .collect();
    for round in 0..ROUNDS {
        for (id, co) in all.iter_mut().enumerate() {
            let id = id as u64;
            assert_eq!(co.resume(), CoroutineResult::Yield(id * 1000 + 2 * round));
        }
    }
    for (id, co) in all.iter_mut().enumerate() {
        let id = id as u64;
        let expected = 64 * id * 1000 + (0..64).sum::<u64>();
        assert_eq!(co.resume(), CoroutineResult::Return(expected));
        assert!(co.is_completed());
    }
    drop(all);
    assert!(with_thread_pool(|p| p.len() <= p.capacity()));
    let took = start.elapsed();
    eprintln!("{LIVE} live coroutines, {ROUNDS} rounds: {took:?}");
}

#[test]
fn thousands_of_suspended_coroutines_dropped_at_once_unwind_each() {
    let drops = DropCounter::new();
    let mut all: Vec<Coroutine> = (0..2_000)
        .map(|_| suspended_holding(drops.make()))
        .collect();
    assert_eq!(drops.dropped(), 0);
    // Drop in an order other than creation.
    all.reverse();
    all.sort_by_key(|co| co.stack_size());
    drop(all);
    assert_eq!(drops.dropped(), 2_000);
}

#[test]
fn a_hundred_thousand_created_resumed_and_dropped() {
    const N: u64 = 100_000;
    let start = Instant::now();
    let mut yielded = 0u64;
    let mut returned = 0u64;
    for i in 0..N {
        let mut co = Coroutine::yielding(move |h| {
            h.suspend_with(i);
            i * 2
        });
        yielded += co.resume().into_yield().unwrap();
        // Half are dropped suspended (unwound), half completed.
        if i % 2 == 0 {
            returned += co.resume().into_return().unwrap();
        }
    }
    let took = start.elapsed();
    eprintln!("{N} coroutines created, resumed and dropped: {took:?}");
    assert_eq!(yielded, N * (N - 1) / 2);
    assert_eq!(returned, (0..N).filter(|i| i % 2 == 0).map(|i| i * 2).sum());
    let (len, capacity) = with_thread_pool(|p| (p.len(), p.capacity()));
    assert!(len <= capacity, "{len} pooled stacks, capacity {capacity}");
    assert!(len >= 1, "the loop's stack went back to the pool");
}
