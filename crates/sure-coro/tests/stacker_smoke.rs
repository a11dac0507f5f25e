//! stacker's own test suite, `tests/smoke.rs` of rust-lang/stacker (commit
//! d3ac2df, v0.1.25; MIT or Apache-2.0, by Alex Crichton and the stacker
//! contributors), run against sure_coro: the code is stacker's as written,
//! with `stacker::` replaced by `sure_coro::`, so that sure's
//! `remaining_stack`, `grow` and `maybe_grow` are shown to be drop-in.

// stacker's code, kept as its authors wrote it.
#![allow(clippy::identity_op, missing_docs)]

use std::sync::mpsc;
use std::thread;

#[inline(never)]
fn __stacker_black_box(_: *const u8) {}

#[test]
fn deep() {
    fn foo(n: usize, s: &mut [u8]) {
        __stacker_black_box(s.as_ptr());
        if n > 0 {
            sure_coro::maybe_grow(64 * 1024, 1024 * 1024, || {
                let mut s = [0u8; 1024];
                foo(n - 1, &mut s);
                __stacker_black_box(s.as_ptr());
            })
        } else {
            println!("bottom");
        }
    }

    let limit = if cfg!(target_arch = "wasm32") || cfg!(miri) {
        2000
    } else {
        256 * 1024
    };
    foo(limit, &mut []);
}

#[test]
#[cfg_attr(target_arch = "wasm32", ignore)]
#[cfg_attr(miri, ignore)] // Too slow under Miri's interpreter
fn panic() {
    fn foo(n: usize, s: &mut [u8]) {
        __stacker_black_box(s.as_ptr());
        if n > 0 {
            sure_coro::maybe_grow(64 * 1024, 1024 * 1024, || {
                let mut s = [0u8; 1024];
                foo(n - 1, &mut s);
                __stacker_black_box(s.as_ptr());
            })
        } else {
            panic!("bottom");
        }
    }

    let (tx, rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        foo(64 * 1024, &mut []);
        drop(tx);
    })
    .join()
    .unwrap_err();

    assert!(rx.recv().is_err());
}

fn recursive<F: FnOnce()>(n: usize, f: F) -> usize {
    if n > 0 {
        sure_coro::grow(64 * 1024, || recursive(n - 1, f) + 1)
    } else {
        f();
        0
    }
}

#[test]
#[cfg_attr(target_arch = "wasm32", ignore)]
fn catch_panic() {
    let panic_result = std::panic::catch_unwind(|| {
        recursive(100, || panic!());
    });
    assert!(panic_result.is_err());
}

#[test]
#[cfg_attr(target_arch = "wasm32", ignore)]
fn catch_panic_inside() {
    sure_coro::grow(64 * 1024, || {
        let panic_result = std::panic::catch_unwind(|| {
            recursive(100, || panic!());
        });
        assert!(panic_result.is_err());
    });
}

#[test]
#[cfg_attr(target_arch = "wasm32", ignore)]
fn catch_panic_leaf() {
    sure_coro::grow(64 * 1024, || {
        let panic_result = std::panic::catch_unwind(|| panic!());
        assert!(panic_result.is_err());
    });
}
