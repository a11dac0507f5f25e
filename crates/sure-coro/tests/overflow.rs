//! Stack overflow detection: a coroutine that runs into its guard page ends
//! the process with a message naming a coroutine stack overflow; every other
//! fault keeps its ordinary outcome.
//!
//! Each test re-executes this test binary as a child that misbehaves (the
//! mode is passed in an environment variable) and looks at how it died.

mod common;

use std::hint::black_box;
use std::process::{ExitStatus, Output};

use common::child::this_test_binary;

#[cfg(target_os = "linux")]
use nix::libc;
use sure_coro::{Builder, Coroutine};

/// Set in a re-executed copy of this test binary to the misbehaviour its
/// test should show.
const CHILD_ENV: &str = "SURE_CORO_OVERFLOW_CHILD";

/// What every child prints on stdout just before it misbehaves, so that a
/// child dying earlier for another reason is not taken for a pass.
const REACHED: &str = "child: misbehaving now";

/// Re-executes this test binary, running only `test` with `CHILD_ENV=mode`.
fn run_child(test: &str, mode: &str) -> Output {
    this_test_binary()
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// The mode this process runs in, if it is a child.
fn child_mode() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Child side: no core file for the crash to come.
fn no_core_dumps() {
    #[cfg(unix)]
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0).unwrap();
}

/// How a child died.
#[derive(Clone, Copy, Debug)]
enum Death {
    /// `std::process::abort`: `SIGABRT`; Windows' fast-fail status.
    Abort,
    /// A bad memory access: `SIGSEGV`; `STATUS_ACCESS_VIOLATION`, or
    /// `STATUS_GUARD_PAGE_VIOLATION` in a `PAGE_GUARD` page.
    Fault,
    /// Rust's own report of a thread's overflow: it aborts on Unix; on
    /// Windows it lets the exception end the process with
    /// `STATUS_STACK_OVERFLOW`.
    RustOverflow,
}

impl Death {
    fn is(self, status: ExitStatus) -> bool {
        #[cfg(unix)]
        {
            use nix::sys::signal::Signal;
            use std::os::unix::process::ExitStatusExt;
            let signal = match self {
                Death::Abort | Death::RustOverflow => Signal::SIGABRT,
                Death::Fault => Signal::SIGSEGV,
            };
            status.signal() == Some(signal as i32)
        }
        #[cfg(windows)]
        {
            let codes: &[u32] = match self {
                Death::Abort => &[0xC000_0409],
                Death::Fault => &[0xC000_0005, 0x8000_0001],
                Death::RustOverflow => &[0xC000_00FD],
            };
            codes.iter().any(|&code| status.code() == Some(code as i32))
        }
    }
}

/// Recurses until the stack runs out. The local array and `black_box` keep
/// each frame real: it cannot be turned into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 256];
    frame[(depth % 256) as usize] = depth as u8;
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(u64::from(frame[7]))
}

/// Child side: overflows the stack of `co` and reports if it survived.
fn overflow_in(mut co: Coroutine<(), (), u64>) -> ! {
    println!("{REACHED}");
    let depth = co.resume().into_return();
    println!("child: survived ({depth:?})");
    std::process::exit(0);
}

/// A coroutine whose body recurses without bound.
fn bottomless() -> impl FnOnce(&mut sure_coro::SuspendHandle<(), ()>) -> u64 + 'static {
    |_h| recurse(0)
}

/// An address that is not mapped: in the lowest page, which neither Linux
/// (`vm.mmap_min_addr`) nor Windows ever maps.
fn unmapped_address() -> *mut u8 {
    std::ptr::without_provenance_mut(64)
}

/// Child side: writes to `ptr`, which faults, and reports if it survived.
fn write_to(ptr: *mut u8) -> ! {
    println!("{REACHED}");
    // SAFETY: `ptr` is outside any Rust allocation (unmapped, or a guard
    // page): the volatile write traps, which is what the test wants.
    unsafe { ptr.write_volatile(0xA5) };
    println!("child: survived");
    std::process::exit(0);
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks that the child reached its misbehaviour and died as `death`.
fn assert_died_of(out: &Output, death: Death, what: &str) {
    assert!(
        stdout(out).contains(REACHED),
        "{what}: the child did not get to misbehave: {out:?}"
    );
    assert!(!stdout(out).contains("child: survived"), "{what}: {out:?}");
    assert!(
        death.is(out.status),
        "{what}: the child should die of {death:?}: {out:?}"
    );
}

/// Checks that the child reported a coroutine stack overflow of `size`.
fn assert_coroutine_overflow(out: &Output, size: &str, what: &str) {
    assert_died_of(out, Death::Abort, what);
    let text = stderr(out);
    assert!(text.contains("coroutine stack overflow"), "{what}: {text}");
    assert!(
        text.contains("has overflowed a coroutine's stack"),
        "{what}: {text}"
    );
    assert!(
        text.contains(&format!("stack of {size} ")),
        "{what}: {text}"
    );
    assert!(text.contains("guard page at 0x"), "{what}: {text}");
    assert!(
        text.contains("sure_coro::Builder::new().stack_size("),
        "{what}: {text}"
    );
    assert!(
        text.contains("\nnote: to size it, run the coroutine on input that fits and read Coroutine::peak_stack_usage()"),
        "{what}: {text}"
    );
    assert!(!text.contains("has overflowed its stack"), "{what}: {text}");
}

/// Checks that the child died as `death` with no coroutine overflow report.
fn assert_not_reported(out: &Output, death: Death, what: &str) {
    assert_died_of(out, death, what);
    let text = stderr(out);
    assert!(!text.contains("coroutine stack overflow"), "{what}: {text}");
    assert!(!text.contains("coroutine's stack"), "{what}: {text}");
}

#[test]
fn default_stack_overflow_is_reported() {
    const NAME: &str = "default_stack_overflow_is_reported";
    if child_mode().is_some() {
        no_core_dumps();
        overflow_in(Coroutine::new(bottomless()));
    }
    let out = run_child(NAME, "default");
    assert_coroutine_overflow(&out, "256 KiB", "default stack");
    let text = stderr(&out);
    // The thread is named as Rust names it, and the bigger stack suggested
    // is twice the size.
    assert!(
        text.contains(&format!("thread '{NAME}' (")) || text.contains("thread 'main' ("),
        "{text}"
    );
    assert!(text.contains("stack_size(512 * 1024)"), "{text}");
}

#[test]
fn custom_size_overflow_reports_its_size() {
    const NAME: &str = "custom_size_overflow_reports_its_size";
    if let Some(mode) = child_mode() {
        no_core_dumps();
        let size = if mode == "64" { 64 * 1024 } else { 1024 * 1024 };
        overflow_in(Builder::new().stack_size(size).build(bottomless()).unwrap());
    }
    assert_coroutine_overflow(&run_child(NAME, "64"), "64 KiB", "64 KiB stack");
    assert_coroutine_overflow(&run_child(NAME, "1024"), "1 MiB", "1 MiB stack");
}

#[test]
fn a_named_coroutine_overflow_names_it() {
    const NAME: &str = "a_named_coroutine_overflow_names_it";
    if child_mode().is_some() {
        no_core_dumps();
        overflow_in(Builder::new().name("parser").build(bottomless()).unwrap());
    }
    let out = run_child(NAME, "named");
    assert_coroutine_overflow(&out, "256 KiB", "named coroutine");
    let text = stderr(&out);
    assert!(
        text.contains("a coroutine's stack named 'parser': the coroutine's stack of"),
        "{text}"
    );
}

#[test]
fn own_stack_overflow_is_reported() {
    // A stack the caller brought, through Builder::stack.
    const NAME: &str = "own_stack_overflow_is_reported";
    if child_mode().is_some() {
        no_core_dumps();
        let stack = sure_stack::Stack::allocate_at_least(128 * 1024).unwrap();
        overflow_in(Builder::new().stack(stack).build(bottomless()).unwrap());
    }
    assert_coroutine_overflow(&run_child(NAME, "own"), "128 KiB", "own stack");
}

#[test]
fn nested_coroutine_overflow_is_reported() {
    // The inner coroutine overflows; the outer one's stack is not involved.
    const NAME: &str = "nested_coroutine_overflow_is_reported";
    if child_mode().is_some() {
        no_core_dumps();
        overflow_in(Coroutine::new(|_h| {
            let mut inner = Builder::new()
                .stack_size(64 * 1024)
                .build(bottomless())
                .unwrap();
            inner.resume().into_return().unwrap_or(0)
        }));
    }
    assert_coroutine_overflow(&run_child(NAME, "nested"), "64 KiB", "nested");
}

#[test]
fn a_grown_segments_overflow_is_reported() {
    // A segment that sure_coro::grow made, inside a coroutine, overflows:
    // reported with the segment's size, not the coroutine's.
    const NAME: &str = "a_grown_segments_overflow_is_reported";
    if child_mode().is_some() {
        no_core_dumps();
        overflow_in(Coroutine::new(|_h| {
            sure_coro::grow(96 * 1024, || recurse(0))
        }));
    }
    assert_coroutine_overflow(&run_child(NAME, "segment"), "96 KiB", "segment");
}

#[test]
fn coroutine_on_a_spawned_thread_is_reported() {
    const NAME: &str = "coroutine_on_a_spawned_thread_is_reported";
    if child_mode().is_some() {
        no_core_dumps();
        std::thread::Builder::new()
            .name("overflower".into())
            .spawn(|| overflow_in(Coroutine::new(bottomless())))
            .unwrap()
            .join()
            .unwrap();
        unreachable!("the child's thread overflows");
    }
    let out = run_child(NAME, "thread");
    assert_coroutine_overflow(&out, "256 KiB", "spawned thread");
    assert!(stderr(&out).contains("thread 'overflower' ("), "{out:?}");
}

/// Entry point of a thread created with `pthread_create`, which std gives
/// no alternate signal stack.
#[cfg(target_os = "linux")]
extern "C" fn foreign_thread(_: *mut libc::c_void) -> *mut libc::c_void {
    let mut current = std::mem::MaybeUninit::<libc::stack_t>::uninit();
    // SAFETY: with no new stack, sigaltstack only writes the current one.
    let status = unsafe { libc::sigaltstack(std::ptr::null(), current.as_mut_ptr()) };
    assert_eq!(status, 0);
    // SAFETY: sigaltstack succeeded and initialised it.
    let current = unsafe { current.assume_init() };
    println!(
        "child: alternate stack before: {}",
        current.ss_flags & libc::SS_DISABLE == 0
    );
    overflow_in(Coroutine::new(bottomless()))
}

#[test]
#[cfg(target_os = "linux")]
fn coroutine_on_a_foreign_thread_is_reported() {
    // A thread std did not spawn has no alternate signal stack: creating a
    // coroutine gives it one.
    const NAME: &str = "coroutine_on_a_foreign_thread_is_reported";
    if child_mode().is_some() {
        no_core_dumps();
        let mut thread = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
        // SAFETY: default attributes; `foreign_thread` has the signature
        // pthread_create wants and ignores its argument.
        let status = unsafe {
            libc::pthread_create(
                thread.as_mut_ptr(),
                std::ptr::null(),
                foreign_thread,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, 0);
        // SAFETY: pthread_create succeeded, so `thread` is a joinable thread.
        unsafe { libc::pthread_join(thread.assume_init(), std::ptr::null_mut()) };
        unreachable!("the child's thread overflows");
    }
    let out = run_child(NAME, "foreign");
    assert!(
        stdout(&out).contains("child: alternate stack before: false"),
        "{out:?}"
    );
    assert_coroutine_overflow(&out, "256 KiB", "foreign thread");
    assert!(stderr(&out).contains("thread '<unnamed>' ("), "{out:?}");
}

#[test]
fn other_faults_keep_their_signal() {
    const NAME: &str = "other_faults_keep_their_signal";
    match child_mode().as_deref() {
        Some("outside") => {
            // The handler is installed: a coroutine was created (and ran).
            no_core_dumps();
            let _ = Coroutine::new(|h| h.suspend()).resume();
            write_to(unmapped_address());
        }
        Some("inside") => {
            // An unmapped address, written from inside a coroutine.
            no_core_dumps();
            let mut co: Coroutine = Coroutine::new(|_h| write_to(unmapped_address()));
            let _ = co.resume();
        }
        Some("idle-guard") => {
            // The guard page of a stack no code is running on, hit from the
            // thread's own stack.
            no_core_dumps();
            let co = Coroutine::new(|h| h.suspend());
            let stack = co.into_stack();
            write_to(stack.guard().start as *mut u8);
        }
        Some("other-guard") => {
            // Another stack's guard page, hit from inside a coroutine: the
            // stack that is running did not overflow.
            no_core_dumps();
            let victim = sure_stack::Stack::allocate_at_least(64 * 1024).unwrap();
            let guard = victim.guard().end - 8;
            let mut co: Coroutine = Coroutine::new(move |_h| {
                let _keep = &victim;
                write_to(guard as *mut u8)
            });
            let _ = co.resume();
        }
        _ => {}
    }
    if child_mode().is_some() {
        unreachable!("the child faults");
    }
    for mode in ["outside", "inside", "idle-guard", "other-guard"] {
        assert_not_reported(&run_child(NAME, mode), Death::Fault, mode);
    }
}

/// Runs on the process's main thread, interrupting the test harness: makes
/// it a thread that runs coroutines, then overflows its own stack.
#[cfg(target_os = "linux")]
extern "C" fn on_main_thread(_: libc::c_int) {
    let _ = Coroutine::new(|h| h.suspend()).resume();
    println!("{REACHED}");
    black_box(recurse(0));
}

#[test]
fn thread_stack_overflow_keeps_rusts_message() {
    const NAME: &str = "thread_stack_overflow_keeps_rusts_message";
    match child_mode().as_deref() {
        Some("spawned") => {
            no_core_dumps();
            std::thread::Builder::new()
                .name("deep".into())
                .spawn(|| {
                    let _ = Coroutine::new(|h| h.suspend()).resume();
                    println!("{REACHED}");
                    recurse(0)
                })
                .unwrap()
                .join()
                .unwrap();
            unreachable!("the child's thread overflows");
        }
        Some("test-thread") => {
            no_core_dumps();
            let _ = Coroutine::new(|h| h.suspend()).resume();
            println!("{REACHED}");
            recurse(0);
            unreachable!("the child's thread overflows");
        }
        #[cfg(target_os = "linux")]
        Some("main-thread") => {
            // Tests run on threads of their own; the process's main thread
            // waits in the test harness. A signal sent to it runs
            // `on_main_thread` there, on its own stack.
            no_core_dumps();
            // SAFETY: `sigaction` is plain old data; zeroes are an empty
            // mask and no flags, and the handler is set below.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_main_thread as *const () as usize;
            // SAFETY: a plain handler for SIGUSR1, which nothing else uses
            // in this child.
            let status = unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) };
            assert_eq!(status, 0);
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() };
            // SAFETY: tgkill only sends a signal, here to the process's
            // initial thread, whose thread id is the process id.
            let status = unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGUSR1) };
            assert_eq!(status, 0);
            std::thread::sleep(std::time::Duration::from_secs(30));
            println!("child: survived (the main thread did not overflow)");
            std::process::exit(1);
        }
        _ => {}
    }
    // A signal gets onto the main thread's stack on Linux only. Under wine
    // a thread whose own stack overflows just ends, and the test harness
    // would wait for its test thread for ever.
    let modes: &[&str] = if cfg!(target_os = "linux") {
        &["spawned", "test-thread", "main-thread"]
    } else {
        eprintln!("test-thread and main-thread: left out on Windows");
        &["spawned"]
    };
    for &mode in modes {
        let out = run_child(NAME, mode);
        if cfg!(windows) && !stderr(&out).contains("has overflowed its stack") {
            // Wine ends a thread whose own stack overflows at once, before
            // Rust's handler can speak, and the process goes on without it:
            // what is left to check is that sure did not claim it.
            assert!(!stderr(&out).contains("coroutine"), "{mode}: {out:?}");
            eprintln!("{mode}: wine ended the thread without Rust's report");
            continue;
        }
        assert_not_reported(&out, Death::RustOverflow, mode);
        let text = stderr(&out);
        assert!(text.contains("has overflowed its stack"), "{mode}: {text}");
        match mode {
            "spawned" => assert!(text.contains("thread 'deep'"), "{text}"),
            "main-thread" => assert!(text.contains("thread 'main'"), "{text}"),
            _ => {}
        }
    }
}

#[test]
fn deep_but_bounded_recursion_is_fine() {
    // In-process: the handler's presence changes nothing for a coroutine
    // that stays within its stack, on this thread and on threads that come
    // and go (each maps and frees whatever it needs).
    fn bounded(depth: u64) -> u64 {
        let mut frame = [0u8; 256];
        frame[0] = depth as u8;
        black_box(&mut frame);
        if depth == 0 {
            0
        } else {
            bounded(depth - 1) + u64::from(frame[0] & 1)
        }
    }
    let mut co: Coroutine<(), (), u64> = Coroutine::new(|_h| bounded(200));
    assert_eq!(co.resume().into_return(), Some(100));
    for _ in 0..8 {
        std::thread::spawn(|| {
            let mut co: Coroutine<(), (), u64> = Coroutine::new(|_h| bounded(200));
            assert_eq!(co.resume().into_return(), Some(100));
        })
        .join()
        .unwrap();
    }
}

/// A task on a `sure_stack::Stack` run with `sure-context` alone, as a
/// scheduler does: no coroutine of this crate on the thread.
fn overflow_a_raw_task(stack: &sure_stack::Stack) -> ! {
    use std::ptr::NonNull;
    use sure_context::{ExecutionContext, Trampoline};

    struct Bottomless;
    impl Trampoline for Bottomless {
        fn run(&mut self) -> ! {
            recurse(0);
            unreachable!("the recursion never returns")
        }
    }
    // The contexts on the heap, never freed: the child dies in the task.
    let contexts = Box::into_raw(Box::new([ExecutionContext::new(), ExecutionContext::new()]));
    let task: &'static mut Bottomless = Box::leak(Box::new(Bottomless));
    let region = stack.region();
    let below_name =
        NonNull::slice_from_raw_parts(region.cast::<u8>(), region.len() - sure_stack::LABEL_BYTES);
    println!("{REACHED}");
    // SAFETY: the stack (below its name) is unused and outlives the task;
    // the contexts and the task object are leaked, so they outlive it too;
    // the task never switches back.
    unsafe {
        (*contexts)[1] =
            ExecutionContext::setup_guarded(below_name, stack.guard().len(), NonNull::from(task));
        (*contexts)[0].switch_to(&(*contexts)[1]);
    }
    println!("child: survived");
    std::process::exit(0);
}

#[test]
fn a_raw_task_on_a_guarded_stack_gets_sure_stacks_message() {
    const NAME: &str = "a_raw_task_on_a_guarded_stack_gets_sure_stacks_message";
    if child_mode().is_some() {
        no_core_dumps();
        let stack = sure_stack::Stack::allocate_at_least(64 * 1024).unwrap();
        // SAFETY: nothing runs on the stack yet; the child dies on it.
        unsafe { stack.set_name("worker 3".into()) };
        overflow_a_raw_task(&stack);
    }
    let out = run_child(NAME, "raw");
    assert_died_of(&out, Death::Abort, "raw task");
    let text = stderr(&out);
    assert!(
        text.contains("has overflowed a guarded stack named 'worker 3': the stack of 64 KiB"),
        "{text}"
    );
    assert!(
        text.contains("help: give it a bigger stack, for example sure_stack::Stack::allocate_at_least(128 * 1024)"),
        "{text}"
    );
    assert!(
        text.contains("fatal runtime error: stack overflow, aborting"),
        "{text}"
    );
}
