//! An in-order walk of a binary search tree as an iterator, written as the
//! plain recursive function it is: the coroutine's own stack holds the
//! recursion that a hand-written iterator would keep in an explicit stack.
//!
//! Run with `cargo run -p sure-coro --example tree_walk`.

use sure_coro::{Generator, SuspendHandle};

/// A binary search tree of integers.
#[derive(Default)]
struct Tree {
    root: Option<Box<Node>>,
}

struct Node {
    value: i32,
    left: Tree,
    right: Tree,
}

impl Tree {
    fn insert(&mut self, value: i32) {
        match &mut self.root {
            None => {
                self.root = Some(Box::new(Node {
                    value,
                    left: Tree::default(),
                    right: Tree::default(),
                }))
            }
            Some(node) if value < node.value => node.left.insert(value),
            Some(node) => node.right.insert(value),
        }
    }

    /// Suspends with every value, smallest first.
    fn walk(&self, h: &mut SuspendHandle<'_, (), i32>) {
        if let Some(node) = &self.root {
            node.left.walk(h);
            h.suspend_with(node.value);
            node.right.walk(h);
        }
    }
}

fn main() {
    let mut tree = Tree::default();
    for value in [50, 30, 70, 20, 40, 60, 80, 35, 65] {
        tree.insert(value);
    }
    let in_order: Vec<i32> = Generator::new(move |h| tree.walk(h)).collect();
    println!("{in_order:?}");
    let mut sorted = in_order.clone();
    sorted.sort();
    assert_eq!(in_order, sorted);
    assert_eq!(in_order.len(), 9);
}
