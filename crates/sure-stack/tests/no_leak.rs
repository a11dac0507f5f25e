//! Allocating and freeing many stacks leaks no memory mapping.
//!
//! This file holds a single test so that it runs alone in its own process and
//! the count of `/proc/self/maps` lines is not disturbed by other tests.
//!
//! Unix only, where the mappings can be counted this way.
#![cfg(unix)]

use sure_stack::{MIN_STACK_SIZE, Stack, StackPool};

fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn many_stacks_allocate_and_free_without_leaking_mappings() {
    const N: usize = 1000;
    // Slack for mappings the runtime or allocator may add or merge on its own.
    const NOISE: usize = 8;

    let mut stacks = Vec::with_capacity(N);
    let before = mapping_count();
    for _ in 0..N {
        stacks.push(Stack::allocate_at_least(MIN_STACK_SIZE).unwrap());
    }
    let during = mapping_count();
    // Each guarded stack is two mappings (guard + usable pages).
    assert!(
        during >= before + 2 * N - NOISE && during <= before + 2 * N + NOISE,
        "before {before}, with {N} stacks {during}: expected about {} more",
        2 * N
    );
    drop(stacks);
    let after = mapping_count();
    assert!(
        after.abs_diff(before) <= NOISE,
        "before {before}, after freeing {N} stacks {after}"
    );

    // The same through a bounded pool: returning more stacks than it holds
    // frees the excess, and clearing it frees the rest.
    let mut pool = StackPool::with_capacity(MIN_STACK_SIZE, 10).unwrap();
    let taken: Vec<Stack> = (0..N).map(|_| pool.take().unwrap()).collect();
    for s in taken {
        pool.give_back(s);
    }
    assert_eq!(pool.len(), 10);
    let with_pool = mapping_count();
    assert!(
        with_pool.abs_diff(before + 20) <= NOISE,
        "before {before}, with 10 pooled stacks {with_pool}"
    );
    pool.clear();
    let end = mapping_count();
    assert!(
        end.abs_diff(before) <= NOISE,
        "before {before}, after clearing the pool {end}"
    );
}
