//! `StackPool`: LIFO reuse, bounds and size checks.

use sure_stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, Stack, StackPool, page_size};

fn addr(stack: &Stack) -> usize {
    stack.bottom().as_ptr() as usize
}

#[test]
fn take_on_an_empty_pool_allocates() {
    let mut pool = StackPool::new(100_000).unwrap();
    assert!(pool.is_empty());
    let a = pool.take().unwrap();
    let b = pool.take().unwrap();
    assert_eq!(a.len(), pool.stack_size());
    assert_eq!(a.len(), 100_000usize.next_multiple_of(page_size()));
    assert_ne!(addr(&a), addr(&b), "two fresh stacks");
    assert!(pool.is_empty(), "taking never adds to the pool");
}

#[test]
fn pool_is_lifo() {
    let mut pool = StackPool::new(DEFAULT_STACK_SIZE).unwrap();
    let stacks: Vec<Stack> = (0..3).map(|_| pool.take().unwrap()).collect();
    let addrs: Vec<usize> = stacks.iter().map(addr).collect();
    for s in stacks {
        pool.give_back(s);
    }
    assert_eq!(pool.len(), 3);
    // Most recently returned first.
    let again: Vec<usize> = (0..3).map(|_| addr(&pool.take().unwrap())).collect();
    assert_eq!(again, addrs.iter().rev().copied().collect::<Vec<_>>());
    assert!(pool.is_empty());
}

/// The pool keeps its list in its idle stacks' own memory: a stack taken
/// out is wholly its user's, whatever the user writes over it, and the
/// list stays whole; a pool moved to another thread frees its stacks there.
#[test]
fn a_taken_stack_is_wholly_its_users_and_the_list_survives_it() {
    let mut pool = StackPool::new(MIN_STACK_SIZE).unwrap();
    let stacks: Vec<Stack> = (0..3).map(|_| pool.take().unwrap()).collect();
    let addrs: Vec<usize> = stacks.iter().map(addr).collect();
    for s in stacks {
        pool.give_back(s);
    }
    let taken = pool.take().unwrap();
    // SAFETY: the whole usable region is this stack's, and nothing runs
    // on it.
    unsafe { taken.bottom().as_ptr().write_bytes(0xA5, taken.len()) };
    pool.give_back(taken);
    let again: Vec<usize> = (0..3).map(|_| addr(&pool.take().unwrap())).collect();
    assert_eq!(again, addrs.iter().rev().copied().collect::<Vec<_>>());
    for _ in 0..2 {
        let stack = pool.take().unwrap();
        pool.give_back(stack);
    }
    assert_eq!(pool.len(), 1);
    std::thread::spawn(move || {
        assert_eq!(pool.len(), 1);
        assert!(pool.peak_usage().unwrap() > 0);
        drop(pool);
    })
    .join()
    .unwrap();
}

#[test]
fn the_same_stack_comes_back_with_its_touched_pages() {
    let mut pool = StackPool::new(DEFAULT_STACK_SIZE).unwrap();
    let stack = pool.take().unwrap();
    let a = addr(&stack);
    // SAFETY: the byte below top() is usable stack memory nothing else uses.
    unsafe { stack.top().as_ptr().sub(1).write(7) };
    pool.give_back(stack);
    let again = pool.take().unwrap();
    assert_eq!(addr(&again), a);
    // SAFETY: as above. A fresh mapping would read 0: the pool reused the
    // stack, pages and all.
    assert_eq!(unsafe { again.top().as_ptr().sub(1).read() }, 7);
}

#[test]
fn capacity_bounds_the_idle_stacks() {
    let mut pool = StackPool::with_capacity(MIN_STACK_SIZE, 2).unwrap();
    assert_eq!(pool.capacity(), 2);
    let stacks: Vec<Stack> = (0..4).map(|_| pool.take().unwrap()).collect();
    let addrs: Vec<usize> = stacks.iter().map(addr).collect();
    for s in stacks {
        pool.give_back(s);
        assert!(pool.len() <= 2);
    }
    assert_eq!(pool.len(), 2);
    // The first two returned were kept; the others were freed.
    assert_eq!(addr(&pool.take().unwrap()), addrs[1]);
    assert_eq!(addr(&pool.take().unwrap()), addrs[0]);
}

#[test]
fn zero_capacity_keeps_nothing() {
    let mut pool = StackPool::with_capacity(MIN_STACK_SIZE, 0).unwrap();
    let s = pool.take().unwrap();
    pool.give_back(s);
    assert!(pool.is_empty());
}

#[test]
fn wrong_size_stacks_are_dropped() {
    let mut pool = StackPool::new(DEFAULT_STACK_SIZE).unwrap();
    pool.give_back(Stack::allocate_at_least(MIN_STACK_SIZE).unwrap());
    pool.give_back(Stack::allocate_at_least(DEFAULT_STACK_SIZE + 1).unwrap());
    assert!(pool.is_empty());
    pool.give_back(Stack::allocate_at_least(DEFAULT_STACK_SIZE).unwrap());
    assert_eq!(pool.len(), 1);
    // A stack of a size that rounds to the pool's size is accepted.
    let mut odd = StackPool::new(MIN_STACK_SIZE + 1).unwrap();
    odd.give_back(Stack::allocate_at_least(MIN_STACK_SIZE + 2).unwrap());
    assert_eq!(odd.len(), 1);
}

#[test]
fn set_capacity_shrinks_keeping_the_most_recent() {
    let mut pool = StackPool::with_capacity(MIN_STACK_SIZE, 8).unwrap();
    let stacks: Vec<Stack> = (0..5).map(|_| pool.take().unwrap()).collect();
    let addrs: Vec<usize> = stacks.iter().map(addr).collect();
    for s in stacks {
        pool.give_back(s);
    }
    assert_eq!(pool.len(), 5);
    pool.set_capacity(2);
    assert_eq!(pool.capacity(), 2);
    assert_eq!(pool.len(), 2);
    assert_eq!(addr(&pool.take().unwrap()), addrs[4]);
    assert_eq!(addr(&pool.take().unwrap()), addrs[3]);
    assert!(pool.is_empty());

    // Growing frees nothing and lets more in.
    pool.set_capacity(3);
    for _ in 0..3 {
        let s = Stack::allocate_at_least(MIN_STACK_SIZE).unwrap();
        pool.give_back(s);
    }
    assert_eq!(pool.len(), 3);
    pool.set_capacity(0);
    assert!(pool.is_empty());
}

#[test]
fn clear_frees_all_idle_stacks() {
    let mut pool = StackPool::new(MIN_STACK_SIZE).unwrap();
    let stacks: Vec<Stack> = (0..3).map(|_| pool.take().unwrap()).collect();
    for s in stacks {
        pool.give_back(s);
    }
    assert_eq!(pool.len(), 3);
    pool.clear();
    assert!(pool.is_empty());
    assert_eq!(
        pool.capacity(),
        StackPool::DEFAULT_CAPACITY,
        "clear keeps the bound"
    );
    assert!(pool.take().is_ok());
}

#[test]
fn pool_debug_shows_its_state() {
    let mut pool = StackPool::with_capacity(MIN_STACK_SIZE, 5).unwrap();
    let s = pool.take().unwrap();
    pool.give_back(s);
    let text = format!("{pool:?}");
    assert!(
        text.contains(&format!("stack_size: {}", pool.stack_size())),
        "{text}"
    );
    assert!(text.contains("capacity: 5"), "{text}");
    assert!(text.contains("len: 1"), "{text}");
}
