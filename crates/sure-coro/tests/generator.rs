//! `Generator`: a coroutine as an iterator.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::{Log, expect_panic, message};
use sure_coro::{Builder, Coroutine, Generator, SuspendHandle};

#[test]
fn fibonacci_first_twenty() {
    let fib = Generator::new(|h| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            h.suspend_with(a);
            (a, b) = (b, a + b);
        }
    });
    let got: Vec<u64> = fib.take(20).collect();
    assert_eq!(
        got,
        [
            0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181
        ]
    );
}

enum Tree {
    Leaf,
    Node(Box<Tree>, i32, Box<Tree>),
}

impl Tree {
    fn insert(self, value: i32) -> Tree {
        match self {
            Tree::Leaf => Tree::Node(Box::new(Tree::Leaf), value, Box::new(Tree::Leaf)),
            Tree::Node(left, v, right) if value < v => {
                Tree::Node(Box::new(left.insert(value)), v, right)
            }
            Tree::Node(left, v, right) => Tree::Node(left, v, Box::new(right.insert(value))),
        }
    }
}

fn walk(tree: &Tree, h: &mut SuspendHandle<'_, (), i32>) {
    if let Tree::Node(left, value, right) = tree {
        walk(left, h);
        h.suspend_with(*value);
        walk(right, h);
    }
}

#[test]
fn in_order_tree_walk_yields_sorted_values() {
    let values = [50, 30, 70, 20, 40, 60, 80, 35, 45, 65, -3, 99, 0];
    let tree = values.iter().fold(Tree::Leaf, |t, &v| t.insert(v));
    let walked: Vec<i32> = Generator::new(move |h| walk(&tree, h)).collect();
    let mut sorted = values.to_vec();
    sorted.sort();
    assert_eq!(walked, sorted);
}

#[test]
fn a_degenerate_deep_tree_walk() {
    // Inserting in order makes a 300-deep right spine: the walk recurses
    // 300 frames deep on the generator's stack.
    let tree = (0..300).fold(Tree::Leaf, |t, v| t.insert(v));
    let walked: Vec<i32> = Generator::new(move |h| walk(&tree, h)).collect();
    assert_eq!(walked, (0..300).collect::<Vec<_>>());
}

#[test]
fn fused_after_completion_and_the_body_runs_once() {
    let runs = Rc::new(Cell::new(0));
    let body_runs = runs.clone();
    let mut generator = Generator::new(move |h| {
        body_runs.set(body_runs.get() + 1);
        h.suspend_with('a');
        h.suspend_with('b');
    });
    assert_eq!(generator.next(), Some('a'));
    assert_eq!(generator.next(), Some('b'));
    for _ in 0..5 {
        assert_eq!(generator.next(), None);
    }
    assert_eq!(runs.get(), 1);
}

#[test]
fn an_empty_generator() {
    let mut generator: Generator<u8> = Generator::new(|_h| {});
    assert_eq!(generator.next(), None);
    assert_eq!(generator.next(), None);
}

#[test]
fn dropping_a_generator_part_way_runs_destructors() {
    let log = Log::new();
    let body_log = log.clone();
    let mut generator = Generator::new(move |h| {
        let _outer = body_log.guard("outer");
        for i in 0.. {
            let _each = body_log.guard(format!("item {i}"));
            h.suspend_with(i);
        }
        body_log.push("never");
    });
    assert_eq!(generator.by_ref().take(3).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(log.events(), ["drop item 0", "drop item 1"]);
    drop(generator);
    assert_eq!(
        log.events(),
        ["drop item 0", "drop item 1", "drop item 2", "drop outer"]
    );
}

#[test]
fn a_panic_in_the_body_comes_out_of_next_then_the_generator_is_fused() {
    let mut generator = Generator::new(|h| {
        h.suspend_with(1);
        panic!("generator failed");
    });
    assert_eq!(generator.next(), Some(1));
    let payload = expect_panic(|| generator.next());
    assert_eq!(message(&payload), Some("generator failed"));
    assert_eq!(generator.next(), None);
}

#[test]
fn from_a_coroutine_continues_where_it_is() {
    let mut co = Coroutine::yielding(|h| {
        for word in ["zero", "one", "two", "three"] {
            h.suspend_with(word.to_owned());
        }
    });
    assert_eq!(co.resume().into_yield().as_deref(), Some("zero"));
    let rest: Vec<String> = Generator::from(co).collect();
    assert_eq!(rest, ["one", "two", "three"]);
}

#[test]
fn from_a_completed_coroutine_is_empty() {
    let mut co: Coroutine<(), u8, ()> = Coroutine::yielding(|_h| {});
    let _ = co.resume();
    assert_eq!(Generator::from(co).next(), None);
}

#[test]
fn from_a_builder_coroutine_on_a_small_stack() {
    let co = Builder::new()
        .stack_size(sure_stack::MIN_STACK_SIZE)
        .build_yielding(|h| {
            for i in 0..100u32 {
                h.suspend_with(i * i);
            }
        })
        .unwrap();
    let squares: u32 = Generator::from(co).sum();
    assert_eq!(squares, (0..100).map(|i| i * i).sum());
}

#[test]
fn two_generators_zip_in_step() {
    let evens = Generator::new(|h| {
        for i in (0..).step_by(2) {
            h.suspend_with(i);
        }
    });
    let odds = Generator::new(|h| {
        for i in (1..11).step_by(2) {
            h.suspend_with(i);
        }
    });
    let pairs: Vec<(i32, i32)> = evens.zip(odds).collect();
    assert_eq!(pairs, [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]);
}

#[test]
fn a_generator_of_generators() {
    let outer = Generator::new(|h| {
        for n in 1..=4usize {
            h.suspend_with(Generator::new(move |h| {
                for i in 0..n {
                    h.suspend_with(i);
                }
            }));
        }
    });
    let lengths: Vec<usize> = outer.map(Iterator::count).collect();
    assert_eq!(lengths, [1, 2, 3, 4]);
}

#[test]
fn a_generator_driving_another_from_inside() {
    let inner = Generator::new(|h| {
        for c in "hello".chars() {
            h.suspend_with(c);
        }
    });
    let upper = Generator::new(move |h| {
        for c in inner {
            h.suspend_with(c.to_ascii_uppercase());
        }
    });
    assert_eq!(upper.collect::<String>(), "HELLO");
}

#[test]
fn debug_names_the_generator() {
    let generator = Generator::new(|h| h.suspend_with(1));
    let text = format!("{generator:?}");
    assert!(text.starts_with("Generator"), "{text}");
}

#[test]
fn a_generator_keeps_its_bodys_return_value_for_take_return() {
    let mut g = Generator::new(|h| {
        h.suspend_with(1);
        "done"
    });
    assert!(!g.is_completed());
    assert_eq!(g.take_return(), None, "nothing returned yet");
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.next(), None);
    assert!(g.is_completed());
    assert_eq!(g.take_return(), Some("done"));
    assert_eq!(g.take_return(), None, "taken once");
    assert_eq!(g.next(), None, "fused");
}

#[test]
fn a_generator_body_can_use_the_question_mark() {
    fn numbers(text: &'static str) -> Generator<u8, Result<(), std::num::ParseIntError>> {
        Generator::new(move |h| {
            for word in text.split(',') {
                h.suspend_with(word.parse()?);
            }
            Ok(())
        })
    }
    let mut good = numbers("1,2,3");
    assert_eq!(good.by_ref().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(good.take_return(), Some(Ok(())));
    let mut bad = numbers("1,x,3");
    assert_eq!(bad.by_ref().collect::<Vec<_>>(), [1]);
    assert!(matches!(bad.take_return(), Some(Err(_))));
}

#[test]
fn a_generator_with_input_receives_a_value_with_every_step() {
    // A lexer-fed parser in miniature: sums the numbers sent in, yielding
    // each partial sum, until it is sent a negative number.
    let mut sums = Generator::with_input(|h, mut n: i64| {
        let mut total = 0;
        while n >= 0 {
            total += n;
            n = h.suspend_with(total);
        }
        total
    });
    assert_eq!(sums.send(2), Some(2));
    assert_eq!(sums.send(5), Some(7));
    assert_eq!(sums.send(-1), None);
    assert!(sums.is_completed());
    assert_eq!(sums.take_return(), Some(7));
    assert_eq!(sums.send(9), None, "a completed generator ignores input");
}
