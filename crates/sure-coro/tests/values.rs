//! Values in, values out, the final return: of every kind, each dropped
//! exactly once.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{Counted, DropCounter};
use sure_coro::{Coroutine, CoroutineResult};

#[test]
fn inputs_yields_and_return_u64() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let body_seen = seen.clone();
    let mut co = Coroutine::with_input(move |h, first: u64| {
        body_seen.borrow_mut().push(first);
        let mut total = first;
        let mut x = first;
        while x != 0 {
            x = h.suspend_with(x * 10);
            body_seen.borrow_mut().push(x);
            total += x;
        }
        total
    });
    assert_eq!(co.resume_with(7), CoroutineResult::Yield(70));
    assert_eq!(
        *seen.borrow(),
        [7],
        "the first input is the body's argument"
    );
    assert_eq!(
        co.resume_with(u64::MAX / 10),
        CoroutineResult::Yield(u64::MAX / 10 * 10)
    );
    assert_eq!(co.resume_with(3), CoroutineResult::Yield(30));
    assert_eq!(
        co.resume_with(0),
        CoroutineResult::Return(7 + u64::MAX / 10 + 3)
    );
    assert_eq!(*seen.borrow(), [7, u64::MAX / 10, 3, 0]);
}

#[test]
fn strings_in_and_out() {
    let mut co = Coroutine::with_input(|h, mut s: String| {
        let mut all = String::new();
        while s != "stop" {
            all.push_str(&s);
            s = h.suspend_with(s.to_uppercase());
        }
        all
    });
    assert_eq!(
        co.resume_with("ab".to_owned()),
        CoroutineResult::Yield("AB".to_owned())
    );
    assert_eq!(
        co.resume_with("cd".repeat(1000)),
        CoroutineResult::Yield("CD".repeat(1000))
    );
    assert_eq!(
        co.resume_with("stop".to_owned()).into_return(),
        Some(format!("ab{}", "cd".repeat(1000)))
    );
}

#[test]
fn boxes_keep_their_allocation_through_the_coroutine() {
    let mut co = Coroutine::with_input(|h, b: Box<[u32; 8]>| {
        let back: Box<[u32; 8]> = h.suspend_with(b);
        Box::new(back.iter().sum::<u32>())
    });
    let input = Box::new([1, 2, 3, 4, 5, 6, 7, 8]);
    let addr = &*input as *const [u32; 8];
    let out = co.resume_with(input).into_yield().unwrap();
    assert_eq!(
        &*out as *const [u32; 8], addr,
        "moved, not copied to a new allocation"
    );
    assert_eq!(*out, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(co.resume_with(out).into_return().map(|b| *b), Some(36));
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Zst;

#[test]
fn zero_sized_types_everywhere() {
    let mut co = Coroutine::with_input(|h, first: Zst| {
        let mut inputs = vec![first];
        for _ in 0..3 {
            inputs.push(h.suspend_with(Zst));
        }
        assert_eq!(inputs.len(), 4);
        Zst
    });
    for _ in 0..3 {
        assert_eq!(co.resume_with(Zst), CoroutineResult::Yield(Zst));
    }
    assert_eq!(co.resume_with(Zst), CoroutineResult::Return(Zst));
    assert!(co.is_completed());
}

#[test]
fn large_values_pass_intact() {
    let mut co = Coroutine::with_input(|h, mut block: [u64; 512]| {
        for round in 0..3u64 {
            for v in block.iter_mut() {
                *v += round;
            }
            block = h.suspend_with(block);
        }
        block
    });
    let start: [u64; 512] = std::array::from_fn(|i| i as u64);
    let a = co.resume_with(start).into_yield().unwrap();
    assert_eq!(a, start);
    let b = co.resume_with(a).into_yield().unwrap();
    assert!(b.iter().enumerate().all(|(i, &v)| v == i as u64 + 1));
    let c = co.resume_with(b).into_yield().unwrap();
    assert!(c.iter().enumerate().all(|(i, &v)| v == i as u64 + 3));
    let d = co.resume_with(c).into_return().unwrap();
    assert_eq!(d, c);
}

#[test]
fn into_yield_and_into_return() {
    let y: CoroutineResult<u8, &str> = CoroutineResult::Yield(1);
    let r: CoroutineResult<u8, &str> = CoroutineResult::Return("r");
    assert_eq!(y.into_yield(), Some(1));
    assert_eq!(y.into_return(), None);
    assert_eq!(r.into_yield(), None);
    assert_eq!(r.into_return(), Some("r"));
}

#[test]
fn yielded_values_are_dropped_exactly_once() {
    let drops = DropCounter::new();
    let body_drops = drops.clone();
    let mut co = Coroutine::yielding(move |h| {
        for _ in 0..4 {
            h.suspend_with(body_drops.make());
        }
    });
    // Taken and dropped by the resumer.
    let first = co.resume().into_yield().unwrap();
    assert_eq!(drops.dropped(), 0);
    drop(first);
    assert_eq!(drops.dropped(), 1);
    // Looked at by nobody.
    let _ = co.resume();
    assert_eq!(drops.dropped(), 2);
    let _ = co.resume();
    assert_eq!(drops.dropped(), 3);
    // Kept across the next resume: not dropped by it.
    let kept = co.resume();
    assert_eq!(co.resume(), CoroutineResult::Return(()));
    assert_eq!(drops.dropped(), 3);
    drop(kept);
    assert_eq!(drops.dropped(), 4);
    drop(co);
    assert_eq!(drops.dropped(), 4);
}

impl PartialEq for Counted {
    fn eq(&self, _: &Counted) -> bool {
        true
    }
}
impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counted")
    }
}

#[test]
fn the_return_value_is_dropped_exactly_once() {
    let drops = DropCounter::new();
    let body_drops = drops.clone();
    let mut co: Coroutine<(), (), Counted> = Coroutine::new(move |_h| body_drops.make());
    let _ = co.resume();
    assert_eq!(drops.dropped(), 1);
    drop(co);
    assert_eq!(drops.dropped(), 1);
}

#[test]
fn inputs_are_dropped_exactly_once() {
    let drops = DropCounter::new();
    let mut co = Coroutine::with_input(|h, first: Counted| {
        drop(first);
        let _ignored = h.suspend();
        let kept = h.suspend();
        h.suspend();
        drop(kept);
    });
    let _ = co.resume_with(drops.make());
    assert_eq!(drops.dropped(), 1, "the first input, dropped by the body");
    let _ = co.resume_with(drops.make());
    assert_eq!(drops.dropped(), 1, "still held in `_ignored`");
    let _ = co.resume_with(drops.make());
    assert_eq!(drops.dropped(), 1);
    assert_eq!(co.resume_with(drops.make()), CoroutineResult::Return(()));
    assert_eq!(
        drops.dropped(),
        4,
        "the unused input, `kept` and `_ignored`"
    );
    drop(co);
    assert_eq!(drops.dropped(), 4);
}

#[test]
fn an_unused_first_input_is_dropped() {
    let drops = DropCounter::new();
    let mut co = Coroutine::with_input(|h, _first: Counted| {
        h.suspend();
    });
    let _ = co.resume_with(drops.make());
    assert_eq!(drops.dropped(), 0, "held by the suspended body");
    let _ = co.resume_with(drops.make());
    assert_eq!(drops.dropped(), 2);
}

#[test]
fn an_input_held_by_a_dropped_body_is_dropped() {
    let drops = DropCounter::new();
    let mut co = Coroutine::with_input(|h, first: Counted| {
        let second = h.suspend();
        let _both = (first, second);
        h.suspend();
        unreachable!("dropped before this resume");
    });
    let _ = co.resume_with(drops.make());
    let _ = co.resume_with(drops.make());
    assert_eq!(drops.dropped(), 0);
    drop(co);
    assert_eq!(drops.dropped(), 2);
}

#[test]
fn a_yielded_value_left_in_a_result_is_dropped_with_it() {
    let drops = DropCounter::new();
    let body_drops = drops.clone();
    let mut co = Coroutine::yielding(move |h| {
        h.suspend_with(body_drops.make());
        h.suspend_with(body_drops.make());
    });
    let results: Vec<_> = (0..2).map(|_| co.resume()).collect();
    drop(co);
    assert_eq!(drops.dropped(), 0, "both yielded values live in `results`");
    drop(results);
    assert_eq!(drops.dropped(), 2);
}

#[test]
fn rc_values_round_trip_without_leaking() {
    let shared = Rc::new(5);
    let mut co = Coroutine::with_input(|h, rc: Rc<i32>| {
        let again = h.suspend_with(rc.clone());
        *rc + *again
    });
    let out = co.resume_with(shared.clone()).into_yield().unwrap();
    assert_eq!(Rc::strong_count(&shared), 3);
    assert_eq!(co.resume_with(out), CoroutineResult::Return(10));
    drop(co);
    assert_eq!(Rc::strong_count(&shared), 1, "every clone was dropped");
}
