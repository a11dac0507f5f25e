//! stacker's own test suite, `tests/simple.rs` of rust-lang/stacker (commit
//! d3ac2df, v0.1.25; MIT or Apache-2.0, by Alex Crichton and the stacker
//! contributors), run against sure_coro: the code is stacker's as written,
//! with `stacker::` replaced by `sure_coro::`, so that sure's
//! `remaining_stack`, `grow` and `maybe_grow` are shown to be drop-in.

// stacker's code, kept as its authors wrote it.
#![allow(clippy::identity_op, missing_docs)]

const RED_ZONE: usize = 100 * 1024; // 100k
const STACK_PER_RECURSION: usize = 1 * 1024 * 1024; // 1MB

pub fn ensure_sufficient_stack<R, F: FnOnce() -> R + std::panic::UnwindSafe>(f: F) -> R {
    sure_coro::maybe_grow(RED_ZONE, STACK_PER_RECURSION, f)
}

#[inline(never)]
fn recurse(n: usize) {
    let x = [42u8; 50000];
    if n != 0 {
        ensure_sufficient_stack(|| recurse(n - 1));
    }
    #[allow(dropping_copy_types)]
    drop(x);
}

#[test]
#[cfg_attr(miri, ignore)] // Too slow under Miri's interpreter
fn foo() {
    let limit = if cfg!(target_arch = "wasm32") {
        2000
    } else {
        10000
    };
    recurse(limit);
}
