//! Layout, accessibility and ownership of a single `Stack`.

mod common;

#[cfg(unix)]
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use common::this_test_binary;
#[cfg(unix)]
use nix::sys::signal::Signal;
use sure_stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, RawStack, Stack, page_size};

/// Set in a re-executed copy of this test binary to tell a test to run its
/// child part.
const CHILD_ENV: &str = "SURE_STACK_TEST_CHILD";

/// Re-executes this test binary, running only `test` with `CHILD_ENV=mode`.
fn run_child(test: &str, mode: &str) -> Output {
    this_test_binary()
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .output()
        .unwrap()
}

/// The mode this process runs in, if it is a child.
fn child_mode() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Child side: allocates a stack, writes one byte at the address `at` picks,
/// and prints whether it survived (exiting 0 if it did).
fn child_write(at: impl Fn(&Stack) -> *mut u8, what: &str) -> ! {
    // A crash must not leave a core file behind.
    #[cfg(unix)]
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0).unwrap();
    let stack = Stack::allocate_at_least(MIN_STACK_SIZE).unwrap();
    let ptr = at(&stack);
    println!("child: writing to {what} at {ptr:p}");
    // SAFETY: `ptr` is either inside the stack's usable region (readable and
    // writable mapped memory that no Rust reference covers) or in its guard
    // page, which is memory outside any Rust allocation: a volatile write
    // there is allowed to trap, and trapping is what this test wants to see.
    unsafe { ptr.write_volatile(0xA5) };
    println!("child: survived");
    std::process::exit(0);
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How a process dies of a write to a guard page.
#[cfg(unix)]
fn assert_died_of_the_guard_page(out: &Output, mode: &str) {
    assert_eq!(
        out.status.signal(),
        Some(Signal::SIGSEGV as i32),
        "{mode}: the child should die of SIGSEGV: {out:?}"
    );
}

/// How a process dies of a write to a guard page: Windows' access
/// violation (`STATUS_ACCESS_VIOLATION`) in the `PAGE_NOACCESS` page, its
/// guard-page violation (`STATUS_GUARD_PAGE_VIOLATION`) in the room above,
/// as the exit code.
#[cfg(windows)]
fn assert_died_of_the_guard_page(out: &Output, mode: &str) {
    let code = if mode == "guard-low" {
        0xC000_0005_u32
    } else {
        0x8000_0001
    };
    assert_eq!(
        out.status.code(),
        Some(code as i32),
        "{mode}: the child should die of {code:#x}: {out:?}"
    );
}

#[test]
fn guard_page_write_kills_with_sigsegv() {
    const NAME: &str = "guard_page_write_kills_with_sigsegv";
    match child_mode().as_deref() {
        Some("guard-low") => child_write(|s| s.guard().start as *mut u8, "guard low"),
        // The byte just below bottom(): where an overflowing stack lands first.
        Some("guard-high") => child_write(|s| s.bottom().as_ptr().wrapping_sub(1), "guard high"),
        _ => {}
    }
    for mode in ["guard-low", "guard-high"] {
        let out = run_child(NAME, mode);
        let text = stdout(&out);
        assert!(
            text.contains("child: writing to guard"),
            "the child did not reach the write ({mode}): {out:?}"
        );
        assert!(!text.contains("child: survived"), "{mode}: {text}");
        assert_died_of_the_guard_page(&out, mode);
    }
}

#[test]
fn writes_just_inside_the_usable_region_survive_in_a_child() {
    // Control for the test above: the same child machinery, writing one byte
    // above the guard and the last usable byte, exits normally.
    const NAME: &str = "writes_just_inside_the_usable_region_survive_in_a_child";
    match child_mode().as_deref() {
        Some("bottom") => child_write(|s| s.bottom().as_ptr(), "bottom"),
        Some("top") => child_write(|s| s.top().as_ptr().wrapping_sub(1), "top - 1"),
        _ => {}
    }
    for mode in ["bottom", "top"] {
        let out = run_child(NAME, mode);
        assert!(out.status.success(), "{mode}: {out:?}");
        assert!(stdout(&out).contains("child: survived"), "{mode}: {out:?}");
    }
}

#[test]
fn usable_region_is_writable_at_both_ends() {
    let stack = Stack::allocate_at_least(DEFAULT_STACK_SIZE).unwrap();
    let region = stack.region();
    assert_eq!(region.cast::<u8>(), stack.bottom());
    assert_eq!(region.len(), stack.len());
    let first = stack.bottom().as_ptr();
    // SAFETY: top() - 1 is the last usable byte, inside the mapping.
    let last = unsafe { stack.top().as_ptr().sub(1) };
    // SAFETY: both bytes lie in the stack's readable and writable region,
    // which nothing else references; fresh anonymous memory reads as zero.
    unsafe {
        assert_eq!(first.read_volatile(), 0);
        assert_eq!(last.read_volatile(), 0);
        first.write_volatile(0x11);
        last.write_volatile(0x22);
        assert_eq!(first.read_volatile(), 0x11);
        assert_eq!(last.read_volatile(), 0x22);
    }
}

#[test]
fn guard_contains_guard_and_bottom_agree() {
    let page = page_size();
    let stack = Stack::allocate_at_least(100_000).unwrap();
    let bottom = stack.bottom().as_ptr() as usize;
    let top = stack.top().as_ptr() as usize;
    let guard = stack.guard();

    assert_eq!(guard.end, bottom);
    assert_eq!(guard.start, bottom - common::GUARD_PAGES * page);
    assert_eq!(guard.start % page, 0);
    assert_eq!(top - bottom, stack.len());
    assert_eq!(top % page, 0);
    assert_eq!(top % 16, 0);

    assert!(stack.contains_guard(guard.start));
    assert!(stack.contains_guard(guard.start + page / 2));
    assert!(stack.contains_guard(bottom - 1));
    assert!(!stack.contains_guard(bottom));
    assert!(!stack.contains_guard(guard.start - 1));
    assert!(!stack.contains_guard(top - 1));
    assert!(!stack.contains_guard(0));
    assert!(!stack.contains_guard(usize::MAX));
}

#[test]
fn stacks_do_not_overlap() {
    let a = Stack::allocate_at_least(MIN_STACK_SIZE).unwrap();
    let b = Stack::allocate_at_least(MIN_STACK_SIZE).unwrap();
    let span = |s: &Stack| s.guard().start..s.top().as_ptr() as usize;
    let (ra, rb) = (span(&a), span(&b));
    assert!(
        ra.end <= rb.start || rb.end <= ra.start,
        "{a:?} overlaps {b:?}"
    );
}

#[test]
fn into_raw_from_raw_round_trip_keeps_the_memory() {
    let stack = Stack::allocate_at_least(DEFAULT_STACK_SIZE).unwrap();
    let (bottom, top, len, guard) = (stack.bottom(), stack.top(), stack.len(), stack.guard());
    // SAFETY: bottom() is a writable byte of the stack nothing else uses.
    unsafe { bottom.as_ptr().write(42) };

    let raw: RawStack = stack.into_raw();
    assert_eq!(raw.mapping.as_ptr() as usize, guard.start);
    assert_eq!(raw.mapping_len, len + guard.len());
    let copy = raw;
    assert_eq!(copy, raw);

    // SAFETY: `raw` came from `into_raw` above and is turned back once.
    let stack = unsafe { Stack::from_raw(raw) };
    assert_eq!(stack.bottom(), bottom);
    assert_eq!(stack.top(), top);
    assert_eq!(stack.len(), len);
    assert_eq!(stack.guard(), guard);
    // SAFETY: as above; the mapping was never unmapped, so the byte is kept.
    assert_eq!(unsafe { bottom.as_ptr().read() }, 42);
}

#[test]
fn debug_shows_addresses_and_sizes() {
    let stack = Stack::allocate_at_least(DEFAULT_STACK_SIZE).unwrap();
    let text = format!("{stack:?}");
    let guard = stack.guard();
    assert!(text.starts_with("Stack {"), "{text}");
    assert!(
        text.contains(&format!("len: {}", DEFAULT_STACK_SIZE)),
        "{text}"
    );
    assert!(text.contains(&format!("{:p}", stack.bottom())), "{text}");
    assert!(text.contains(&format!("{:p}", stack.top())), "{text}");
    assert!(
        text.contains(&format!("{:#x}..{:#x}", guard.start, guard.end)),
        "{text}"
    );

    let raw = stack.into_raw();
    let raw_text = format!("{raw:?}");
    assert!(raw_text.contains("mapping_len"), "{raw_text}");
    // SAFETY: `raw` came from `into_raw` above and is turned back once.
    drop(unsafe { Stack::from_raw(raw) });
}

#[test]
fn stacks_can_move_to_and_drop_on_other_threads() {
    let stack = Stack::allocate_at_least(MIN_STACK_SIZE).unwrap();
    let bottom = stack.bottom().as_ptr() as usize;
    let seen = std::thread::spawn(move || {
        let b = stack.bottom().as_ptr() as usize;
        drop(stack);
        b
    })
    .join()
    .unwrap();
    assert_eq!(seen, bottom);
}
