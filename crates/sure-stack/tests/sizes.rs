//! Size validation and rounding of `Stack::allocate_at_least` and `StackPool`.

mod common;

use sure_stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, Stack, StackError, StackPool, page_size};

#[test]
fn sizes_round_up_to_whole_pages() {
    let page = page_size();
    for requested in [
        MIN_STACK_SIZE,
        MIN_STACK_SIZE + 1,
        70_000,
        DEFAULT_STACK_SIZE - 1,
        DEFAULT_STACK_SIZE,
        DEFAULT_STACK_SIZE + 1,
        (1 << 20) - 1,
    ] {
        let stack = Stack::allocate_at_least(requested).unwrap();
        assert_eq!(
            stack.len(),
            requested.next_multiple_of(page),
            "requested {requested}"
        );
        assert_eq!(stack.len() % page, 0);
        assert!(stack.len() >= requested);
        assert!(stack.len() < requested + page);
        assert_eq!(
            stack.guard().len(),
            common::GUARD_PAGES * page,
            "one guard page (and on Windows four of overflow room)"
        );
    }
}

#[test]
fn default_and_minimum_sizes_are_exact() {
    // Both are multiples of any common page size, so no rounding happens.
    assert_eq!(
        Stack::allocate_at_least(DEFAULT_STACK_SIZE).unwrap().len(),
        DEFAULT_STACK_SIZE
    );
    assert_eq!(
        Stack::allocate_at_least(MIN_STACK_SIZE).unwrap().len(),
        MIN_STACK_SIZE.next_multiple_of(page_size())
    );
}

fn expect_invalid(requested: usize) -> (usize, usize, String) {
    match Stack::allocate_at_least(requested) {
        Err(err @ StackError::InvalidSize { .. }) => {
            let StackError::InvalidSize {
                requested: reported,
                min,
                max,
                ..
            } = err
            else {
                unreachable!()
            };
            assert_eq!(reported, requested);
            (min, max, err.to_string())
        }
        other => panic!("allocate_at_least({requested}) gave {other:?}, expected InvalidSize"),
    }
}

#[test]
fn zero_and_too_small_sizes_are_invalid() {
    for requested in [0, 1, 4096, MIN_STACK_SIZE - 1] {
        let (min, max, msg) = expect_invalid(requested);
        assert_eq!(min, MIN_STACK_SIZE);
        assert!(max > DEFAULT_STACK_SIZE);
        // The message says what was asked, in good grammar, and the minimum;
        // not the maximum, which is beside the point and could not be mapped.
        let unit = if requested == 1 { "byte" } else { "bytes" };
        assert!(
            msg.starts_with(&format!("invalid stack size of {requested} {unit}: ")),
            "message lacks the request: {msg}"
        );
        assert!(
            msg.contains(&format!("at least {MIN_STACK_SIZE} bytes (MIN_STACK_SIZE)")),
            "{msg}"
        );
        assert!(!msg.contains(&max.to_string()), "{msg}");
        assert!(msg.contains("a guard is added"), "{msg}");
    }
}

#[test]
fn overflowing_sizes_are_invalid() {
    let page = page_size();
    for requested in [
        usize::MAX,
        usize::MAX - page,
        usize::MAX - 2 * page + 1,
        isize::MAX as usize,
        isize::MAX as usize + 1,
    ] {
        let (_, max, msg) = expect_invalid(requested);
        assert!(max < requested);
        assert!(
            msg.starts_with(&format!("invalid stack size of {requested} bytes: ")),
            "{msg}"
        );
        // The bound is given as one no mapping can reach, not as a size to
        // ask for instead.
        assert!(
            msg.contains(&format!(
                "more than {max} bytes would span more than isize::MAX"
            )),
            "{msg}"
        );
        assert!(msg.contains("ask for a smaller stack"), "{msg}");
    }
}

#[test]
fn the_largest_valid_size_is_accepted_then_fails_to_map() {
    let (_, max, _) = expect_invalid(usize::MAX);
    assert_eq!(max % page_size(), 0);
    // One byte more is invalid...
    expect_invalid(max + 1);
    // ...while `max` itself passes validation and reaches mmap, which cannot
    // find exabytes of address space: a Map error naming the call and errno,
    // not the mapping limit (this process is far from it).
    match Stack::allocate_at_least(max) {
        Err(
            ref err @ StackError::Map {
                call,
                bytes,
                ref error,
                ..
            },
        ) => {
            let expected_call = if cfg!(windows) {
                "VirtualAlloc"
            } else {
                "mmap"
            };
            assert_eq!(call, expected_call);
            assert_eq!(bytes, max + common::GUARD_PAGES * page_size());
            #[cfg(unix)]
            assert_eq!(error.raw_os_error(), Some(nix::errno::Errno::ENOMEM as i32));
            assert!(error.raw_os_error().is_some(), "{error:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("{call} of a")), "{msg}");
            assert!(msg.contains(&bytes.to_string()), "{msg}");
            assert!(msg.contains("os error"), "{msg}");
            assert!(msg.contains("smaller stack"), "{msg}");
        }
        other => panic!("expected a Map error, got {other:?}"),
    }
}

#[test]
fn pools_validate_and_round_their_size() {
    let page = page_size();
    let pool = StackPool::new(MIN_STACK_SIZE + 1).unwrap();
    assert_eq!(
        pool.stack_size(),
        (MIN_STACK_SIZE + 1).next_multiple_of(page)
    );
    assert_eq!(pool.capacity(), StackPool::DEFAULT_CAPACITY);
    assert!(pool.is_empty());

    for bad in [0, MIN_STACK_SIZE - 1, usize::MAX] {
        assert!(
            matches!(
                StackPool::new(bad),
                Err(StackError::InvalidSize { requested, .. }) if requested == bad
            ),
            "StackPool::new({bad})"
        );
        assert!(matches!(
            StackPool::with_capacity(bad, 3),
            Err(StackError::InvalidSize { .. })
        ));
    }
}
