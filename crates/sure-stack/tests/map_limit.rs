//! Running out of memory mappings (`vm.max_map_count`): allocating guarded
//! stacks until the kernel refuses must end in
//! [`StackError::MappingLimit`], whose message names the sysctl, and nothing
//! may crash on the way (the diagnosis reads `/proc/self/maps` at the very
//! moment no mapping is left). Freeing the stacks must make allocation work
//! again.
//!
//! The error must also report how many mappings were in use: a number, not
//! "unknown". Counting them reads `/proc/self/maps` at the limit, where
//! `malloc` can get no more memory (its `mmap` fails, and so does growing the
//! main heap with `brk`), so the count must not need the heap to grow. A
//! thread with its own `malloc` arena can still grow it without a new
//! mapping, which hides the problem, so the test runs twice: in the test's
//! own thread, and in a child copy of this binary whose threads all
//! allocate from the main heap (`GLIBC_TUNABLES=glibc.malloc.arena_max=1`;
//! elsewhere than glibc the child merely repeats the test).
//!
//! This file holds a single test so that it runs alone in its own process:
//! no other test's mappings come and go, and no other test runs out of
//! mappings because of it.
//!
//! Each guarded stack costs two mappings, so the default limit of 65530
//! allows about 32,750 stacks, a fraction of a second. Above
//! `LARGE_LIMIT`, the test first uses up all but `HEADROOM` mappings
//! cheaply (one `mprotect` per two mappings, inside one reserved region), so
//! that it still reaches the limit quickly. `SURE_MAP_LIMIT_HEADROOM=<n>`
//! forces that path with `n` mappings left, to test it on any machine.
//!
//! Unix only: Windows has no limit on the number of mappings (its stacks
//! are bounded by the commit limit, which `StackError::Map` reports).
#![cfg(unix)]

use std::io::Read;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::time::Instant;

mod common;

use common::this_test_binary;
use nix::sys::mman::{self, MapFlags, ProtFlags};
use sure_stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, Stack, StackError, StackPool, page_size};

/// Above this `vm.max_map_count`, mappings are used up cheaply first.
const LARGE_LIMIT: usize = 300_000;
/// Mappings left to the stacks when they are.
const HEADROOM: usize = 20_000;
/// Allocations retried at the limit, directly and through a pool each.
const RETRIES: u32 = 5;
/// Forces the cheap filling, leaving this many mappings.
const HEADROOM_ENV: &str = "SURE_MAP_LIMIT_HEADROOM";
/// How far from the limit the count of mappings may be when the limit is
/// hit: the test harness's other threads and the allocator may map or unmap
/// a few on their own.
const SLACK: usize = 64;
/// Set in the child copy of this test binary that repeats the test with a
/// single `malloc` arena.
const CHILD_ENV: &str = "SURE_MAP_LIMIT_CHILD";
/// This file's test, run alone in the child.
const TEST_NAME: &str = "allocating_stacks_until_the_mapping_limit_fails_cleanly_and_recovers";

fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Lines of `/proc/self/maps`, read through a buffer on the stack: at the
/// limit a growing heap buffer may fail to allocate (see the file's
/// documentation).
fn mapping_count() -> usize {
    let mut maps = std::fs::File::open("/proc/self/maps").expect("/proc/self/maps");
    let mut buf = [0u8; 4096];
    let mut lines = 0;
    loop {
        match maps.read(&mut buf).expect("reading /proc/self/maps") {
            0 => return lines,
            n => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
        }
    }
}

/// One reserved, inaccessible region in which every other page is made
/// readable: `2 * k + 1` mappings for `k` calls to `mprotect`, and no memory
/// used (nothing writable, nothing touched). Unmapped on drop.
struct Filler {
    base: NonNull<std::ffi::c_void>,
    len: usize,
}

impl Filler {
    /// Adds about `mappings` mappings (an even number, at least 2).
    fn add(mappings: usize) -> Filler {
        let splits = (mappings / 2).max(1);
        let page = page_size();
        let len = (2 * splits + 1) * page;
        // SAFETY: a fresh anonymous mapping at an address of the kernel's
        // choosing affects no existing memory.
        let base = unsafe {
            mman::mmap_anonymous(
                None,
                NonZeroUsize::new(len).unwrap(),
                ProtFlags::PROT_NONE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
            )
        }
        .expect("reserving the filler region");
        for i in 0..splits {
            // SAFETY: the page lies inside the region mapped above, which no
            // Rust reference covers; only its protection changes.
            let page_ptr = unsafe { base.byte_add((2 * i + 1) * page) };
            // SAFETY: as above.
            unsafe { mman::mprotect(page_ptr, page, ProtFlags::PROT_READ) }
                .expect("splitting the filler region");
        }
        Filler { base, len }
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        // SAFETY: the region was mapped by `add`, nothing refers into it,
        // and it is unmapped once.
        unsafe { mman::munmap(self.base, self.len) }.expect("unmapping the filler region");
    }
}

/// Maps single pages, alternating their protection so that the kernel cannot
/// merge neighbours, until `mmap` itself fails (at most `max` of them).
fn exhaust_with_pages(max: usize) -> Vec<(NonNull<std::ffi::c_void>, usize)> {
    let page = page_size();
    let mut pages = Vec::with_capacity(max);
    for i in 0..max {
        let prot = if i % 2 == 0 {
            ProtFlags::PROT_NONE
        } else {
            ProtFlags::PROT_READ
        };
        // SAFETY: a fresh anonymous mapping at an address of the kernel's
        // choosing affects no existing memory.
        match unsafe {
            mman::mmap_anonymous(
                None,
                NonZeroUsize::new(page).unwrap(),
                prot,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
            )
        } {
            Ok(ptr) => pages.push((ptr, page)),
            Err(_) => break,
        }
    }
    pages
}

fn unmap_pages(pages: Vec<(NonNull<std::ffi::c_void>, usize)>) {
    for (ptr, len) in pages {
        // SAFETY: each page was mapped by `exhaust_with_pages` and is
        // unmapped once; nothing refers into it.
        unsafe { mman::munmap(ptr, len) }.expect("unmapping a page");
    }
}

/// Checks one allocation failure at the mapping limit; returns its message.
#[track_caller]
fn check_limit_error(err: &StackError, limit: usize, expect_call: Option<&str>) -> String {
    let StackError::MappingLimit {
        call,
        mappings,
        max_map_count,
        ..
    } = err
    else {
        panic!("expected StackError::MappingLimit at the mapping limit, got {err:?}: {err}");
    };
    if let Some(expected) = expect_call {
        assert_eq!(*call, expected, "{err:?}");
    }
    assert!(*call == "mmap" || *call == "mprotect", "{err:?}");
    assert_eq!(
        *max_map_count,
        Some(limit),
        "the error reports the configured limit: {err:?}"
    );
    let mappings = mappings.expect("the mappings in use were counted");
    assert!(
        mappings + SLACK >= limit,
        "the failure came at the limit: {mappings} mappings of {limit}"
    );
    assert!(
        mappings <= limit + SLACK,
        "no more mappings than the limit allows: {mappings} mappings of {limit}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{call} failed with ENOMEM: the process has run out of memory mappings \
             ({mappings} mappings in use, vm.max_map_count = {limit})."
        )),
        "the message reports the count of mappings in use: {text}"
    );
    assert!(!text.contains("unknown"), "{text}");
    assert!(text.contains(call), "{text}");
    text
}

#[test]
fn allocating_stacks_until_the_mapping_limit_fails_cleanly_and_recovers() {
    let Some(limit) = max_map_count() else {
        println!("no /proc/sys/vm/max_map_count: nothing to check on this system");
        return;
    };
    let runner = std::env::var("SURE_TEST_RUNNER").unwrap_or_default();
    if !runner.is_empty() {
        println!(
            "skipped under the emulator `{runner}`: the kernel's limit counts the emulator's own \
             mappings, which the /proc/self/maps it shows this program leaves out, so neither \
             where allocation fails nor the error's count of mappings can be checked"
        );
        return;
    }
    let in_child = std::env::var_os(CHILD_ENV).is_some();
    exhaust_and_recover(limit, if in_child { "child" } else { "test thread" });
    if in_child {
        return;
    }

    // Again with every thread allocating from the main heap, which cannot
    // grow at the limit.
    let tunables = match std::env::var("GLIBC_TUNABLES") {
        Ok(set) if !set.is_empty() => format!("{set}:glibc.malloc.arena_max=1"),
        _ => "glibc.malloc.arena_max=1".to_owned(),
    };
    let out = this_test_binary()
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("GLIBC_TUNABLES", tunables)
        .output()
        .expect("running the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("child (glibc.malloc.arena_max=1):\n{stdout}{stderr}");
    assert!(
        out.status.success(),
        "the test failed with a single malloc arena ({}):\n{stdout}{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test:\n{stdout}{stderr}"
    );
}

/// Allocates stacks until the mapping limit, checks the errors there, frees
/// everything and checks that allocation works again. `label` says where it
/// runs, for the report.
fn exhaust_and_recover(limit: usize, label: &str) {
    let started = Instant::now();
    let before = mapping_count();
    assert!(before < limit, "{before} mappings already, limit {limit}");

    // A huge limit: use up all but HEADROOM mappings cheaply first.
    let forced = std::env::var(HEADROOM_ENV)
        .ok()
        .map(|n| n.parse::<usize>().expect(HEADROOM_ENV));
    let headroom = forced.or((limit > LARGE_LIMIT).then_some(HEADROOM));
    let filler = headroom.and_then(|headroom| {
        let to_add = limit.saturating_sub(before + headroom);
        (to_add >= 2).then(|| Filler::add(to_add))
    });
    let reach_from = mapping_count();
    println!(
        "vm.max_map_count = {limit}; {before} mappings at the start, {reach_from} after \
         filling ({}); about {} stacks to go",
        match headroom {
            Some(h) => format!("headroom {h}"),
            None => "no filling needed".to_owned(),
        },
        (limit - reach_from.min(limit)) / 2
    );

    // Allocate until the kernel refuses. Never more than the limit allows
    // plus a margin: if the limit is not hit by then, something is wrong.
    let cap = (limit - reach_from.min(limit)) / 2 + 1000;
    let mut stacks: Vec<Stack> = Vec::with_capacity(cap);
    let mut failure = None;
    for _ in 0..cap {
        match Stack::allocate_at_least(MIN_STACK_SIZE) {
            Ok(stack) => stacks.push(stack),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    let at_limit = mapping_count();
    let allocated = stacks.len();
    let Some(first) = failure else {
        panic!(
            "{allocated} stacks allocated without hitting vm.max_map_count = {limit} \
             ({at_limit} mappings now)"
        );
    };

    // Failing again and again at the limit leaks nothing: the mapping of a
    // stack whose guard page could not be set up is unmapped again.
    // (Few: each failure reads all of /proc/self/maps to diagnose itself.)
    let mut pool = StackPool::new(MIN_STACK_SIZE).expect("a pool maps nothing up front");
    let retry_started = Instant::now();
    for _ in 0..RETRIES {
        let err = Stack::allocate_at_least(MIN_STACK_SIZE).expect_err("still at the limit");
        assert!(matches!(err, StackError::MappingLimit { .. }), "{err:?}");
        let err = pool.take().expect_err("still at the limit");
        assert!(matches!(err, StackError::MappingLimit { .. }), "{err:?}");
    }
    let per_failure = retry_started.elapsed() / (2 * RETRIES);
    let after_retries = mapping_count();

    // Now use up the last mappings with single pages until mmap itself
    // fails, so that the mmap path of the diagnosis is taken too.
    let pages = exhaust_with_pages(10_000);
    let mmap_failure =
        Stack::allocate_at_least(DEFAULT_STACK_SIZE).expect_err("no mapping left for mmap");
    let at_mmap_limit = mapping_count();
    let page_count = pages.len();

    // Free everything, then look at the errors.
    unmap_pages(pages);
    drop(stacks);
    drop(filler);
    let after = mapping_count();

    let text = check_limit_error(&first, limit, None);
    assert!(
        after_retries.abs_diff(at_limit) <= SLACK,
        "{} failed allocations changed the mapping count from {at_limit} to {after_retries}",
        2 * RETRIES
    );
    check_limit_error(&mmap_failure, limit, Some("mmap"));
    assert!(
        reach_from + 2 * allocated + SLACK >= limit,
        "{allocated} stacks from {reach_from} mappings should reach {limit}"
    );
    assert!(
        after.abs_diff(before) <= SLACK,
        "{before} mappings at the start, {after} after freeing everything"
    );

    // Allocation works again, for as many stacks as before if need be.
    let again: Vec<Stack> = (0..1000)
        .map(|_| Stack::allocate_at_least(MIN_STACK_SIZE).expect("allocation works again"))
        .collect();
    assert!(again.iter().all(|s| s.len() == MIN_STACK_SIZE));
    drop(again);
    let stack = pool.take().expect("the pool allocates again");
    pool.give_back(stack);
    Stack::allocate_at_least(DEFAULT_STACK_SIZE).expect("a default stack again");

    println!(
        "{label}: checked: {allocated} stacks of {MIN_STACK_SIZE} bytes allocated from {reach_from} \
         mappings until vm.max_map_count = {limit} ({at_limit} mappings); the failure was \
         {first:?}; {} more failed allocations ({per_failure:.2?} each) left {after_retries} \
         mappings; {page_count} \
         single pages later mmap failed too ({at_mmap_limit} mappings): {mmap_failure:?}; \
         {after} mappings after freeing; allocation works again. {:.2?} in all.\n\
         message: {text}",
        2 * RETRIES,
        started.elapsed()
    );
}
