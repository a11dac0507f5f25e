//! Coroutines abandoned while suspended: a generator cut short with
//! `take`, and a coroutine dropped part-way.
//!
//! With unwinding (the default), dropping them unwinds their stacks, so
//! every destructor on them runs. With `panic = "abort"` that unwind would
//! be an abort, so sure leaks their stacks instead, as `mem::forget` would:
//! nothing on them is dropped, and the program goes on. `cargo xtask test`
//! runs this example both ways (the `panic-abort` stage builds it with
//! `CARGO_PROFILE_DEV_PANIC=abort`).

use std::cell::Cell;
use std::rc::Rc;

use sure_coro::{Coroutine, Generator};

/// Counts its own drops.
struct Tally(Rc<Cell<u32>>);

impl Drop for Tally {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn main() {
    let drops = Rc::new(Cell::new(0));

    let tally = Tally(drops.clone());
    let naturals = Generator::new(move |h| {
        let _tally = tally;
        for n in 0u64.. {
            h.suspend_with(n);
        }
    });
    let first: Vec<u64> = naturals.take(3).collect();
    assert_eq!(first, [0, 1, 2]);

    let tally = Tally(drops.clone());
    let mut halfway = Coroutine::new(move |h| {
        let _tally = tally;
        h.suspend();
        unreachable!("never resumed a second time");
    });
    let _ = halfway.resume();
    drop(halfway);

    let (expected, how) = if cfg!(panic = "abort") {
        (0, "leaked (panic = \"abort\")")
    } else {
        (2, "unwound")
    };
    assert_eq!(drops.get(), expected);
    println!("first three naturals: {first:?}; both abandoned coroutines were {how}");
}
