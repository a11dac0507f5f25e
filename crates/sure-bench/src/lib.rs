//! Benchmarks of sure against other stackful coroutine libraries.
//!
//! The benchmarks live in `benches/`, one criterion group per file; an
//! instruction-count driver for callgrind lives in `examples/instructions.rs`.
//! Group, function and parameter names are a contract: a report reads
//! `target/criterion/<group>/<function>/<param>/new/estimates.json`.
//!
//! | group | what one iteration is | ids |
//! |---|---|---|
//! | `switch` | a raw sure-context switch there and back | `sure/call-ret`, `sure/call-call`, `sure/ret-ret`, `context/resume` |
//! | `round_trip` | resume + suspend of a suspended coroutine | `{sure,corosensei,generator}/{unit,u64}`, `thread/u64` |
//! | `depth` | resume, return up N frames, recurse N frames, suspend | `{sure,corosensei}/{1,8,64}` |
//! | `many` | resume the next of 10,000 suspended coroutines | `{sure,corosensei}/10000` |
//! | `create` | build, resume twice (suspend once, return), drop; `-returning`: resume once (return at once) | `sure/{pooled,pooled-returning,sized-pool,borrowing,counting,fresh-stack}`, `corosensei/{fresh-stack,reused-stack,reused-stack-returning}`, `thread/spawn-join` |
//! | `cancel` | build, resume once (suspend), end it early (unwinding the body) | `{sure,corosensei}/suspended` |
//! | `generator` | build a generator and sum its 1,000 values | `{sure,plain-iterator,generator}/1000` |
//!
//! `memory` is not a criterion bench: it prints the resident memory of an
//! idle coroutine and writes `target/sure-bench/memory.json`.
//!
//! After its criterion group, each of `round_trip`, `create`, `cancel` and
//! `depth` times the pairs of benches the report's targets compare again,
//! in alternation ([`paired`]), and writes them under
//! `target/sure-bench/paired/`; the report judges those targets by these
//! ratios. `many` is left to criterion: what it measures is how the
//! coroutines' memory stays in cache, and alternating with the peer's
//! 10,000 coroutines would evict it, measuring something else. Each bench
//! of those groups (the `thread/*` ones aside) builds its operation in one
//! function returning a closure, which criterion ([`bench()`]) and the
//! comparison both run.
//!
//! This library holds the few helpers the benches share.

use std::cell::Cell;
use std::hint::black_box;
use std::path::PathBuf;

pub mod paired;

pub use paired::Pairs;

/// Registers `op` as bench `library/param` of `group`, timed by criterion
/// one call per iteration. The benches build each operation with a
/// function returning its closure, so that their paired comparisons
/// ([`Pairs`]) time the very same code.
pub fn bench(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    library: &str,
    param: impl std::fmt::Display,
    mut op: impl FnMut(),
) {
    group.bench_function(criterion::BenchmarkId::new(library, param), |b| {
        b.iter(&mut op)
    });
}

/// What a cancelled body holds across its suspend (the `cancel` bench and
/// the instruction driver's cancel cases): a destructor for the unwind to
/// run, as a real body's would.
pub struct Held(pub u64);

impl Drop for Held {
    fn drop(&mut self) {
        black_box(self.0);
    }
}

/// One life of a borrowing coroutine, as the `create` bench and the
/// `instructions` example both time it: a `ScopedCoroutine` whose body
/// counts into `steps` and suspends once, resumed twice by its scope.
#[inline(always)]
pub fn borrowing_life(steps: &mut u64) {
    sure_coro::ScopedCoroutine::new(move |h| {
        *steps += 1;
        h.suspend();
    })
    .scope(|mut co| {
        let _ = black_box(co.resume());
        let _ = black_box(co.resume());
    });
}

/// One life of a `'static` coroutine whose body does what
/// [`borrowing_life`]'s does: counts into a counter it holds by reference
/// (a `&'static` one, leaked once by the caller) and suspends once,
/// resumed twice. What a borrowing coroutine costs over a `'static` one is
/// the difference of the two: their bodies are the same work.
#[inline(always)]
pub fn counting_life(steps: &'static Cell<u64>) {
    let mut co = sure_coro::Coroutine::new(move |h| {
        steps.set(steps.get() + 1);
        h.suspend();
    });
    let _ = black_box(co.resume());
    let _ = black_box(co.resume());
}

/// The process's resident memory in bytes: the second field of
/// `/proc/self/statm` (resident pages) times the page size. `None` where
/// `/proc` is not available or not in the expected format.
pub fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * sure_stack::page_size())
}

/// The memory the kernel spends on this process's page tables, in bytes
/// (`VmPTE` in `/proc/self/status`). Not part of the resident size, but a
/// real cost of many mapped stacks.
pub fn page_table_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmPTE:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Cargo's target directory as seen from a bench or example of this crate:
/// `$CARGO_TARGET_DIR` if set (relative to the workspace root when
/// relative), else `target/` under the workspace root, two levels above
/// this crate's manifest.
pub fn target_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read() {
        let bytes = resident_bytes().expect("/proc/self/statm");
        assert!(bytes > 0 && bytes.is_multiple_of(sure_stack::page_size()));
        assert!(page_table_bytes().is_some());
    }

    #[test]
    fn target_dir_is_under_the_workspace_by_default() {
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            let dir = target_dir();
            assert!(dir.ends_with("target"));
            assert!(dir.join("../Cargo.toml").exists());
        }
    }
}

/// The workspace README's examples, compiled and run as doc tests so they
/// stay true (here, in the one crate that is not published and depends on
/// all three libraries).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
