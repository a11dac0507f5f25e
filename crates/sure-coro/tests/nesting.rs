//! Coroutines inside coroutines: interleaving across levels, panics and
//! drops travelling through every level.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{Log, expect_panic, message};
use sure_coro::{Coroutine, CoroutineResult};

/// Level 0 suspends twice and returns; each level above drives the one
/// below, passing each yield up wrapped in its own name.
fn level(n: u32, log: Log) -> Coroutine<(), String, String> {
    Coroutine::yielding(move |h| {
        log.push(format!("L{n} start"));
        if n == 0 {
            h.suspend_with("y1".to_owned());
            log.push("L0 middle");
            h.suspend_with("y2".to_owned());
            log.push("L0 end");
            return "done".to_owned();
        }
        let mut child = level(n - 1, log.clone());
        loop {
            match child.resume() {
                CoroutineResult::Yield(v) => {
                    log.push(format!("L{n} got {v}"));
                    h.suspend_with(format!("L{n}<{v}>"));
                    log.push(format!("L{n} resumed"));
                }
                CoroutineResult::Return(r) => {
                    assert!(child.is_completed());
                    log.push(format!("L{n} end"));
                    return format!("L{n}<{r}>");
                }
            }
        }
    })
}

#[test]
fn three_levels_interleave() {
    let log = Log::new();
    let mut top = level(2, log.clone());
    assert!(log.events().is_empty());

    assert_eq!(
        top.resume(),
        CoroutineResult::Yield("L2<L1<y1>>".to_owned())
    );
    assert_eq!(
        log.events(),
        [
            "L2 start",
            "L1 start",
            "L0 start",
            "L1 got y1",
            "L2 got L1<y1>"
        ]
    );

    assert_eq!(
        top.resume(),
        CoroutineResult::Yield("L2<L1<y2>>".to_owned())
    );
    assert_eq!(
        log.events()[5..],
        [
            "L2 resumed",
            "L1 resumed",
            "L0 middle",
            "L1 got y2",
            "L2 got L1<y2>"
        ]
    );

    assert_eq!(
        top.resume(),
        CoroutineResult::Return("L2<L1<done>>".to_owned())
    );
    assert_eq!(
        log.events()[10..],
        ["L2 resumed", "L1 resumed", "L0 end", "L1 end", "L2 end"]
    );
    assert!(top.is_completed());
}

#[derive(Debug, PartialEq)]
struct Innermost(u32);

#[test]
fn a_panic_in_the_innermost_travels_out_through_every_level() {
    let log = Log::new();
    let (l2, l1, l0) = (log.clone(), log.clone(), log.clone());
    let mut top = Coroutine::new(move |h| {
        let _g = l2.guard("L2");
        let mut middle = Coroutine::yielding(move |h| {
            let _g = l1.guard("L1");
            let mut inner = Coroutine::yielding(move |h| {
                let _g = l0.guard("L0");
                h.suspend();
                std::panic::panic_any(Innermost(7));
            });
            let _ = inner.resume();
            h.suspend();
            let _ = inner.resume();
            unreachable!("the inner resume panicked");
        });
        let _ = middle.resume();
        h.suspend();
        let _ = middle.resume();
        unreachable!("the middle resume panicked");
    });
    let _ = top.resume();
    assert!(log.events().is_empty());
    let payload = expect_panic(|| top.resume());
    assert_eq!(payload.downcast_ref::<Innermost>(), Some(&Innermost(7)));
    assert!(top.is_completed());
    // Each level's guard dropped as the panic left that level, innermost
    // first; every middle coroutine was dropped completed, running nothing
    // more.
    assert_eq!(log.events(), ["drop L0", "drop L1", "drop L2"]);
}

#[test]
fn dropping_the_outer_coroutine_unwinds_the_suspended_inner_ones() {
    let log = Log::new();
    let (l2, l1, l0) = (log.clone(), log.clone(), log.clone());
    let mut top = Coroutine::yielding(move |h| {
        let mut middle = Coroutine::yielding(move |h| {
            let mut inner = Coroutine::yielding(move |h| {
                let _g = l0.guard("L0");
                h.suspend();
                l0.push("L0 continued");
            });
            let _g = l1.guard("L1");
            let _ = inner.resume();
            h.suspend();
            l1.push("L1 continued");
        });
        let _g = l2.guard("L2");
        let _ = middle.resume();
        h.suspend();
        l2.push("L2 continued");
    });
    let _ = top.resume();
    drop(top);
    // Locals drop in reverse order of declaration: each level's guard,
    // then the coroutine below it (declared before the guard).
    assert_eq!(log.events(), ["drop L2", "drop L1", "drop L0"]);
}

#[test]
fn an_inner_coroutine_can_outlive_the_body_that_built_it() {
    let mut outer: Coroutine<(), (), Coroutine<(), u32, u32>> = Coroutine::yielding(|_h| {
        let mut inner = Coroutine::yielding(|h| {
            h.suspend_with(1);
            h.suspend_with(2);
            3
        });
        assert_eq!(inner.resume(), CoroutineResult::Yield(1));
        inner
    });
    let mut inner = outer.resume().into_return().unwrap();
    drop(outer);
    assert_eq!(
        inner.resume(),
        CoroutineResult::Yield(2),
        "resumed by a new resumer"
    );
    assert_eq!(inner.resume(), CoroutineResult::Return(3));
}

#[test]
fn a_coroutine_can_be_resumed_by_different_bodies_in_turn() {
    let shared = Rc::new(RefCell::new(Coroutine::yielding(|h| {
        let mut n = 0;
        loop {
            n += 1;
            h.suspend_with(n);
        }
    })));
    let _: &Rc<RefCell<Coroutine<(), i32, ()>>> = &shared;
    let make = |name: &'static str| {
        let shared = shared.clone();
        Coroutine::yielding(move |h| {
            for _ in 0..3 {
                let n = shared.borrow_mut().resume().into_yield().unwrap();
                h.suspend_with(format!("{name}{n}"));
            }
        })
    };
    let (mut a, mut b) = (make("a"), make("b"));
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(a.resume().into_yield().unwrap());
        seen.push(b.resume().into_yield().unwrap());
        seen.push(format!(
            "main{}",
            shared.borrow_mut().resume().into_yield().unwrap()
        ));
    }
    assert_eq!(
        seen,
        [
            "a1", "b2", "main3", "a4", "b5", "main6", "a7", "b8", "main9"
        ]
    );
}

/// A chain of `depth` coroutines, each driving the next.
fn chain(depth: u32) -> Coroutine<(), u32, u32> {
    Coroutine::yielding(move |h| {
        if depth == 0 {
            h.suspend_with(0);
            return 0;
        }
        let mut next = chain(depth - 1);
        while let CoroutineResult::Yield(v) = next.resume() {
            h.suspend_with(v + 1);
        }
        depth
    })
}

#[test]
fn a_long_chain_of_nested_coroutines() {
    let mut top = chain(100);
    assert_eq!(
        top.resume(),
        CoroutineResult::Yield(100),
        "one step per level"
    );
    assert_eq!(top.resume(), CoroutineResult::Return(100));
}

#[test]
fn a_panic_in_a_long_chain_comes_out_on_top() {
    fn chain_panicking(depth: u32) -> Coroutine<(), (), ()> {
        Coroutine::new(move |h| {
            if depth == 0 {
                h.suspend();
                panic!("bottom of the chain");
            }
            let mut next = chain_panicking(depth - 1);
            while let CoroutineResult::Yield(()) = next.resume() {
                h.suspend();
            }
        })
    }
    let mut top = chain_panicking(50);
    let _ = top.resume();
    let payload = expect_panic(|| top.resume());
    assert_eq!(message(&payload), Some("bottom of the chain"));
}

#[test]
fn dropping_a_long_suspended_chain_unwinds_it_all() {
    fn chain_guarded(depth: u32, log: Log) -> Coroutine<(), (), ()> {
        Coroutine::new(move |h| {
            let _g = log.guard(depth.to_string());
            if depth == 0 {
                h.suspend();
                return;
            }
            let mut next = chain_guarded(depth - 1, log.clone());
            while let CoroutineResult::Yield(()) = next.resume() {
                h.suspend();
            }
        })
    }
    let log = Log::new();
    let mut top = chain_guarded(30, log.clone());
    let _ = top.resume();
    drop(top);
    let expected: Vec<String> = (0..=30).map(|d| format!("drop {d}")).collect();
    assert_eq!(
        log.events(),
        expected,
        "the inner coroutine (a later local) drops before the guard"
    );
}
