//! Ending a suspended coroutine: build it, resume it once (its body
//! suspends holding a value with a destructor), then end it early, which
//! unwinds its body. The same body for both.
//!
//! - `sure/suspended`: `Coroutine::new` on the pooled stack, then dropped
//!   while suspended: the drop unwinds the body, and the stack goes back
//!   to the pool.
//! - `corosensei/suspended`: `Coroutine::with_stack` on one reused
//!   `DefaultStack`, then `force_unwind`, and the stack taken back with
//!   `into_stack`.
//!
//! After criterion, the pairs the report's targets compare are timed again
//! in alternation (`sure_bench::paired`).

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use sure_bench::Held;

/// `sure/suspended`: dropping the suspended coroutine unwinds its body.
fn sure_suspended() -> impl FnMut() {
    || {
        let mut co = sure_coro::Coroutine::new(|h| {
            let _held = Held(1);
            h.suspend();
        });
        let _ = black_box(co.resume());
        drop(co);
    }
}

/// `corosensei/suspended`: `force_unwind` on a reused stack.
fn corosensei_suspended() -> impl FnMut() {
    let mut stack = Some(corosensei::stack::DefaultStack::default());
    move || {
        let taken = stack.take().expect("the stack is always put back");
        let mut co: corosensei::Coroutine<(), (), ()> =
            corosensei::Coroutine::with_stack(taken, |y, ()| {
                let _held = Held(1);
                y.suspend(());
            });
        black_box(co.resume(()));
        co.force_unwind();
        stack = Some(co.into_stack());
    }
}

/// The `cancel` group.
fn cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("cancel");
    sure_bench::bench(&mut group, "sure", "suspended", sure_suspended());
    sure_bench::bench(
        &mut group,
        "corosensei",
        "suspended",
        corosensei_suspended(),
    );
    group.finish();
}

/// The comparison the report's target reads (see `sure_bench::paired`).
fn paired() {
    let mut pairs = sure_bench::Pairs::from_args("cancel");
    pairs.compare(
        "sure/suspended",
        "corosensei/suspended",
        sure_suspended(),
        corosensei_suspended(),
    );
    pairs.write();
}

/// Holds the criterion group, so that the `pub fn` its macro generates is
/// not exported (and needs no docs of its own).
mod group {
    criterion::criterion_group! {
        name = cancel;
        config = criterion::Criterion::default()
            .warm_up_time(super::Duration::from_secs(1))
            .measurement_time(super::Duration::from_secs(3))
            .sample_size(50);
        targets = super::cancel
    }
}

fn main() {
    group::cancel();
    paired();
    Criterion::default().configure_from_args().final_summary();
}
