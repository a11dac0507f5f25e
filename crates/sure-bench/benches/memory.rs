//! Resident memory per idle coroutine (not a criterion bench).
//!
//! For each implementation, a fresh child process (this binary, run again
//! with `--child <impl>`) creates 10,000 coroutines whose bodies each write
//! a 1 KiB local array (kept alive with `black_box`) and suspend, and
//! reports how much its resident memory (`/proc/self/statm`: resident pages
//! times the page size) and its page tables (`VmPTE`) grew. The parent
//! prints a line per implementation and writes
//! `<target>/sure-bench/memory.json`:
//!
//! ```json
//! {"sure_kib_per_coroutine": 4.1, "corosensei_kib_per_coroutine": 4.1}
//! ```
//!
//! (resident KiB per coroutine; page tables are printed, not written). A
//! child per implementation keeps one's freed memory from being reused by
//! the other and so flattering whichever runs second.
//!
//! - sure: `Coroutine::new`, a 256 KiB stack from the per-thread pool. The
//!   pool starts empty and no coroutine is dropped during the measurement,
//!   so every stack is freshly mapped: the pool neither inflates nor
//!   deflates the figure.
//! - corosensei: `Coroutine::new`, its `DefaultStack` of 1 MiB.
//!
//! Both figures include the coroutine handle in a `Vec` (tens of bytes).
//!
//! Criterion's arguments (`--bench`, `--warm-up-time 0.2`, filters, ...)
//! are accepted and ignored. The whole run takes well under a second.

use std::hint::black_box;
use std::process::Command;

/// Coroutines per implementation.
const COUNT: usize = 10_000;

/// The implementations measured, as named on the child's command line and
/// in the JSON keys.
const IMPLS: [&str; 2] = ["sure", "corosensei"];

/// What a child reports: growth over the creation of [`COUNT`] coroutines.
struct Growth {
    /// Resident bytes.
    resident: usize,
    /// Page-table bytes.
    page_tables: usize,
}

/// Writes about 1 KiB of this frame and keeps it alive across a call to
/// `suspend`.
#[inline(always)]
fn touch_and_suspend(suspend: impl FnOnce()) {
    let mut local = [0u8; 1024];
    black_box(&mut local);
    suspend();
    black_box(&local);
}

/// Creates [`COUNT`] suspended coroutines of `implementation` and returns
/// the growth; the coroutines are leaked (the process exits right after).
fn measure(implementation: &str) -> Growth {
    let resident_before = sure_bench::resident_bytes().expect("/proc/self/statm");
    let tables_before = sure_bench::page_table_bytes().unwrap_or(0);
    match implementation {
        "sure" => {
            let mut all = Vec::with_capacity(COUNT);
            for _ in 0..COUNT {
                let mut co: sure_coro::Coroutine = sure_coro::Coroutine::new(|h| {
                    touch_and_suspend(|| h.suspend());
                });
                let _ = co.resume();
                all.push(co);
            }
            std::mem::forget(all);
        }
        "corosensei" => {
            let mut all = Vec::with_capacity(COUNT);
            for _ in 0..COUNT {
                let mut co: corosensei::Coroutine<(), (), ()> =
                    corosensei::Coroutine::new(|y, ()| touch_and_suspend(|| y.suspend(())));
                co.resume(());
                all.push(co);
            }
            std::mem::forget(all);
        }
        other => panic!("unknown implementation {other:?}; expected one of {IMPLS:?}"),
    }
    let resident_after = sure_bench::resident_bytes().expect("/proc/self/statm");
    let tables_after = sure_bench::page_table_bytes().unwrap_or(0);
    Growth {
        resident: resident_after.saturating_sub(resident_before),
        page_tables: tables_after.saturating_sub(tables_before),
    }
}

/// Runs this binary as a child measuring `implementation`, and parses its
/// `<resident bytes> <page-table bytes>` line.
fn measure_in_child(implementation: &str) -> Growth {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let output = Command::new(exe)
        .args(["--child", implementation])
        .output()
        .expect("run the measuring child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the {implementation} child failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
    );
    let numbers: Vec<usize> = stdout
        .split_whitespace()
        .map(|word| word.parse().expect("a byte count"))
        .collect();
    let [resident, page_tables] = numbers[..] else {
        panic!("the {implementation} child printed {stdout:?}, not two numbers");
    };
    Growth {
        resident,
        page_tables,
    }
}

/// KiB per coroutine.
fn kib_each(bytes: usize) -> f64 {
    bytes as f64 / 1024.0 / COUNT as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|arg| arg == "--child") {
        let implementation = args.get(at + 1).expect("--child <impl>");
        let growth = measure(implementation);
        println!("{} {}", growth.resident, growth.page_tables);
        return;
    }

    let mut fields = Vec::new();
    for implementation in IMPLS {
        let growth = measure_in_child(implementation);
        let resident = kib_each(growth.resident);
        println!(
            "memory/{implementation}: {resident:.2} KiB resident per idle coroutine \
             (+{:.2} KiB of page tables), {COUNT} coroutines each touching 1 KiB of stack",
            kib_each(growth.page_tables),
        );
        fields.push(format!(
            "\"{implementation}_kib_per_coroutine\": {resident:.3}"
        ));
    }
    let json = format!("{{{}}}\n", fields.join(", "));
    let dir = sure_bench::target_dir().join("sure-bench");
    std::fs::create_dir_all(&dir).expect("create the report directory");
    let path = dir.join("memory.json");
    std::fs::write(&path, json).expect("write memory.json");
    println!("memory: wrote {}", path.display());
}
