//! A driver for counting instructions per operation with callgrind.
//!
//! `instructions <case> <iterations>` sets the case up once, then runs its
//! operation `<iterations>` times. Run under
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null` with two
//! iteration counts, the difference of the two "Collected" totals divided
//! by the difference of the counts is the cost of one operation, free of
//! the set-up and of process start and exit.
//!
//! Cases:
//!
//! - `sure-round-trip`: resume a suspended `sure_coro::Coroutine` that
//!   suspends straight back;
//! - `corosensei-round-trip`: the same with `corosensei::Coroutine`;
//! - `sure-create`: `Coroutine::new` on the pooled stack, resume twice (the
//!   body suspends once, then returns), drop;
//! - `corosensei-create-reused`: the same with `Coroutine::with_stack` on a
//!   `DefaultStack` recovered with `into_stack` each time;
//! - `corosensei-create-fresh`: the same with `Coroutine::new` (a new
//!   `DefaultStack`, so mmap, mprotect and munmap, every time);
//! - `sure-create-returning` and `corosensei-create-returning`: as the
//!   create cases on a pooled or reused stack, with a body that returns at
//!   once, resumed once;
//! - `sure-create-sized`: as `sure-create`, built with `Builder` on a
//!   512 KiB stack, from the pool of that size;
//! - `sure-create-scoped`: as `sure-create`, a `ScopedCoroutine` run by
//!   `scope`, its body counting into a local it borrows;
//! - `sure-create-counting`: its `'static` counterpart, a body counting
//!   into a leaked `&'static` counter;
//! - `sure-cancel`: `Coroutine::new`, resume once (the body suspends
//!   holding a value with a destructor), drop it suspended, which unwinds
//!   the body;
//! - `corosensei-cancel`: the same on a reused stack, ended with
//!   `force_unwind`.
//!
//! Without arguments it runs every case for 1,000 iterations and prints
//! `OK`, as a smoke test.

use std::hint::black_box;
use std::process::ExitCode;

use sure_bench::Held;

/// A case: its name and the function running it for a number of
/// iterations.
type Case = (&'static str, fn(u64));

/// Every case, by name.
const CASES: [Case; 12] = [
    ("sure-round-trip", sure_round_trip),
    ("corosensei-round-trip", corosensei_round_trip),
    ("sure-create", sure_create),
    ("corosensei-create-reused", corosensei_create_reused),
    ("corosensei-create-fresh", corosensei_create_fresh),
    ("sure-create-returning", sure_create_returning),
    ("corosensei-create-returning", corosensei_create_returning),
    ("sure-create-sized", sure_create_sized),
    ("sure-create-scoped", sure_create_scoped),
    ("sure-create-counting", sure_create_counting),
    ("sure-cancel", sure_cancel),
    ("corosensei-cancel", corosensei_cancel),
];

/// Iterations of each case when run without arguments.
const SMOKE_ITERATIONS: u64 = 1000;

/// Resumes a coroutine parked in a suspend loop `iterations` times.
fn sure_round_trip(iterations: u64) {
    let mut co: sure_coro::Coroutine = sure_coro::Coroutine::new(|h| {
        loop {
            h.suspend();
        }
    });
    let _ = co.resume();
    for _ in 0..iterations {
        let _ = black_box(co.resume());
    }
}

/// As [`sure_round_trip`], for corosensei.
fn corosensei_round_trip(iterations: u64) {
    let mut co: corosensei::Coroutine<(), (), ()> = corosensei::Coroutine::new(|y, ()| {
        loop {
            y.suspend(());
        }
    });
    co.resume(());
    for _ in 0..iterations {
        black_box(co.resume(()));
    }
}

/// Builds a pooled coroutine, resumes it twice and drops it, `iterations`
/// times. The first maps the stack the others take from the pool (the
/// difference of two runs leaves it out).
fn sure_create(iterations: u64) {
    for _ in 0..iterations {
        let mut co = sure_coro::Coroutine::new(|h| h.suspend());
        let _ = black_box(co.resume());
        let _ = black_box(co.resume());
    }
}

/// Builds a corosensei coroutine on a recovered stack, resumes it twice and
/// takes its stack back, `iterations` times.
fn corosensei_create_reused(iterations: u64) {
    let mut stack = corosensei::stack::DefaultStack::default();
    for _ in 0..iterations {
        let mut co: corosensei::Coroutine<(), (), ()> =
            corosensei::Coroutine::with_stack(stack, |y, ()| y.suspend(()));
        black_box(co.resume(()));
        black_box(co.resume(()));
        stack = co.into_stack();
    }
}

/// Builds a corosensei coroutine on a new stack, resumes it twice and drops
/// it, `iterations` times.
fn corosensei_create_fresh(iterations: u64) {
    for _ in 0..iterations {
        let mut co: corosensei::Coroutine<(), (), ()> =
            corosensei::Coroutine::new(|y, ()| y.suspend(()));
        black_box(co.resume(()));
        black_box(co.resume(()));
    }
}

/// As [`sure_create`], with a body that returns at once, resumed once.
fn sure_create_returning(iterations: u64) {
    for _ in 0..iterations {
        let mut co = sure_coro::Coroutine::new(|_| ());
        let _ = black_box(co.resume());
    }
}

/// As [`sure_create`], on a 512 KiB stack from the pool of that size.
fn sure_create_sized(iterations: u64) {
    for _ in 0..iterations {
        let mut co = sure_coro::Builder::new()
            .stack_size(512 * 1024)
            .build(|h| h.suspend())
            .expect("a pooled stack");
        let _ = black_box(co.resume());
        let _ = black_box(co.resume());
    }
}

/// As [`sure_create`], a `ScopedCoroutine` whose body borrows a counter.
fn sure_create_scoped(iterations: u64) {
    let mut steps = 0u64;
    for _ in 0..iterations {
        sure_bench::borrowing_life(&mut steps);
    }
    black_box(steps);
}

/// As [`sure_create_scoped`], a `'static` coroutine counting into a
/// `&'static` counter.
fn sure_create_counting(iterations: u64) {
    let steps: &'static std::cell::Cell<u64> = Box::leak(Box::default());
    for _ in 0..iterations {
        sure_bench::counting_life(steps);
    }
    black_box(steps.get());
}

/// As [`corosensei_create_reused`], with a body that returns at once,
/// resumed once.
fn corosensei_create_returning(iterations: u64) {
    let mut stack = corosensei::stack::DefaultStack::default();
    for _ in 0..iterations {
        let mut co: corosensei::Coroutine<(), (), ()> =
            corosensei::Coroutine::with_stack(stack, |_, ()| ());
        black_box(co.resume(()));
        stack = co.into_stack();
    }
}

/// Builds a pooled coroutine, resumes it once (it suspends holding a
/// [`Held`]) and drops it suspended, `iterations` times.
fn sure_cancel(iterations: u64) {
    for _ in 0..iterations {
        let mut co = sure_coro::Coroutine::new(|h| {
            let _held = Held(1);
            h.suspend();
        });
        let _ = black_box(co.resume());
    }
}

/// As [`sure_cancel`], for corosensei on a recovered stack, ended with
/// `force_unwind`.
fn corosensei_cancel(iterations: u64) {
    let mut stack = corosensei::stack::DefaultStack::default();
    for _ in 0..iterations {
        let mut co: corosensei::Coroutine<(), (), ()> =
            corosensei::Coroutine::with_stack(stack, |y, ()| {
                let _held = Held(1);
                y.suspend(());
            });
        black_box(co.resume(()));
        co.force_unwind();
        stack = co.into_stack();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            for (_, case) in CASES {
                case(SMOKE_ITERATIONS);
            }
            println!("OK");
            ExitCode::SUCCESS
        }
        [name, iterations] => {
            let Some((_, case)) = CASES.iter().find(|(case, _)| case == name) else {
                eprintln!("unknown case {name:?}");
                return usage();
            };
            let Ok(iterations) = iterations.parse() else {
                eprintln!("not an iteration count: {iterations:?}");
                return usage();
            };
            case(black_box(iterations));
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}

/// Prints how to call this program; the exit code of a bad call.
fn usage() -> ExitCode {
    let names: Vec<&str> = CASES.iter().map(|(name, _)| *name).collect();
    eprintln!(
        "usage: instructions [<case> <iterations>]\ncases: {}",
        names.join(", ")
    );
    ExitCode::from(2)
}
