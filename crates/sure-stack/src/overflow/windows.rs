//! Windows' half: a vectored exception handler, called first for every
//! exception of the process, on the stack that faulted.
//!
//! A stack's guard is a `PAGE_NOACCESS` page and the [overflow room] above
//! it, `PAGE_GUARD` pages (see `mapping/windows.rs`), which sure-context's
//! `setup_guarded` makes the running stack's guarantee. Code that runs into
//! the room raises `STATUS_STACK_OVERFLOW`, and the room's pages lose their
//! guard, so dispatch and this handler run in them. The handler looks at
//! the exception code first (every panic of the gnu targets passes here
//! too), then for the stack that the stack pointer lies on: a registered
//! one is never a thread's own. It reports a stack overflow, or a
//! guard-page or access violation in that stack's guard, writes the
//! message with `WriteFile` and aborts (`__fastfail`, exit status
//! `STATUS_STACK_BUFFER_OVERRUN`). Anything else goes on to the next
//! handler (Rust's own reports the threads' overflows).
//!
//! [overflow room]: crate::mapping::overflow_room

use std::cell::Cell;
use std::sync::Once;

use windows_sys::Win32::Foundation::{
    STATUS_ACCESS_VIOLATION, STATUS_GUARD_PAGE_VIOLATION, STATUS_STACK_OVERFLOW,
};
use windows_sys::Win32::Storage::FileSystem::WriteFile;
use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE};
use windows_sys::Win32::System::Diagnostics::Debug::{
    AddVectoredExceptionHandler, EXCEPTION_CONTINUE_SEARCH, EXCEPTION_POINTERS,
};
use windows_sys::Win32::System::Threading::{GetCurrentThreadId, GetCurrentThreadStackLimits};

use super::message::{Overflow, ThreadInfo, compose};
use crate::{bounds, mapping, page_size};

thread_local! {
    /// Whether this thread is prepared: a plain thread-local load.
    pub(super) static READY: Cell<bool> = const { Cell::new(false) };

    /// What the handler needs to know about this thread. Const-initialised,
    /// `Copy`, without a destructor: the handler can read it at any time.
    static THREAD: Cell<ThreadInfo> = const { Cell::new(ThreadInfo::UNPREPARED) };
}

/// Guards the process-wide installation of the handler.
static INSTALL: Once = Once::new();

/// Installs the handler (once per process) and records this thread's
/// facts. Its own stack can be read only while it runs there, as the
/// thread environment block follows the running stack: on a stack of this
/// crate the thread is left unprepared, to be prepared on its own (until
/// then it counts as outside every coroutine).
#[cold]
#[inline(never)]
pub(super) fn prepare_this_thread() {
    INSTALL.call_once(|| {
        // Fills the page-size cache before the handler can read it.
        let _ = page_size();
        // SAFETY: `on_exception` has the signature of a vectored handler
        // and stays for the life of the process; 1 puts it first.
        unsafe { AddVectoredExceptionHandler(1, Some(on_exception)) };
    });
    let here = running_stack_address();
    let on_ours = bounds::on_a_stack(here, mapping::overflow_room());
    // SAFETY: GetCurrentThreadId has no preconditions.
    let tid = unsafe { GetCurrentThreadId() };
    THREAD.set(ThreadInfo::recorded(
        (!on_ours).then(own_stack).flatten(),
        tid.into(),
    ));
    READY.set(!on_ours);
}

/// An address on the running stack: one of this function's locals.
#[inline(never)]
fn running_stack_address() -> usize {
    let local = 0u8;
    std::hint::black_box(&raw const local) as usize
}

/// See [`super::thread_stack`].
pub(super) fn thread_stack() -> Option<(usize, usize)> {
    let info = THREAD.get();
    (info.prepared && info.stack_lo < info.stack_hi).then_some((info.stack_lo, info.stack_hi))
}

/// The running thread's own stack, `lo..hi`, as far as it is usable: from
/// `GetCurrentThreadStackLimits`, whose low end is the whole reservation's,
/// less the three pages at its bottom that Windows keeps for its guard page
/// and the room to handle an overflow (as stacker reckons them).
fn own_stack() -> Option<(usize, usize)> {
    let (mut lo, mut hi) = (0usize, 0usize);
    // SAFETY: writes the two bounds into the locals.
    unsafe { GetCurrentThreadStackLimits(&mut lo, &mut hi) };
    let lo = lo.checked_add(3 * page_size())?;
    (lo < hi).then_some((lo, hi))
}

/// The vectored handler: reports an overflow of a stack of this crate and
/// aborts, or lets the search for a handler go on.
///
/// # Safety
/// Called by Windows' exception dispatch with valid exception pointers.
unsafe extern "system" fn on_exception(pointers: *mut EXCEPTION_POINTERS) -> i32 {
    // SAFETY: dispatch passes a valid record and context.
    let (record, context) = unsafe { (&*(*pointers).ExceptionRecord, &*(*pointers).ContextRecord) };
    // Every panic is an exception too (the gnu targets' unwinder raises
    // one): the code is checked before anything else.
    let stack_fault = matches!(
        record.ExceptionCode,
        STATUS_STACK_OVERFLOW | STATUS_GUARD_PAGE_VIOLATION | STATUS_ACCESS_VIOLATION
    );
    if !stack_fault {
        return EXCEPTION_CONTINUE_SEARCH;
    }
    let sp = context.Rsp as usize;
    let room = mapping::overflow_room();
    let Some(stack) = bounds::guarded_stack_at(sp, room) else {
        return EXCEPTION_CONTINUE_SEARCH;
    };
    // The hard guard page and the room above it.
    let guard = stack.start - room - page_size();
    let in_guard = |addr: usize| (guard..stack.start).contains(&addr);
    let faulted_there = record.NumberParameters >= 2 && in_guard(record.ExceptionInformation[1]);
    let overflowed = match record.ExceptionCode {
        STATUS_STACK_OVERFLOW => true,
        STATUS_GUARD_PAGE_VIOLATION | STATUS_ACCESS_VIOLATION => faulted_there,
        _ => false,
    };
    if !overflowed {
        return EXCEPTION_CONTINUE_SEARCH;
    }
    let overflow = Overflow {
        guard,
        size: stack.end - stack.start,
        top: stack.end,
    };
    // Read only now: on the gnu targets a thread-local is a system TLS
    // slot with a lazily allocated value.
    let mut thread = THREAD.get();
    if !thread.prepared {
        // A thread that runs on a stack allocated elsewhere.
        // SAFETY: GetCurrentThreadId has no preconditions.
        thread = ThreadInfo::unknown(unsafe { GetCurrentThreadId() }.into());
    }
    // SAFETY: the thread ran on this live stack, whose usable region is
    // committed read-write.
    write_to_stderr(unsafe { compose(&thread, &overflow) }.as_bytes());
    std::process::abort()
}

/// Writes all of `bytes` to stderr, as far as it takes them.
fn write_to_stderr(bytes: &[u8]) {
    // SAFETY: GetStdHandle has no preconditions.
    let stderr = unsafe { GetStdHandle(STD_ERROR_HANDLE) };
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut written = 0u32;
        // SAFETY: `rest` is valid for reads of its length (at most the
        // message's 1024 bytes); a bad handle makes the call fail, and
        // `written` is a valid place for the count.
        let ok = unsafe {
            WriteFile(
                stderr,
                rest.as_ptr(),
                rest.len() as u32,
                &mut written,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 || written == 0 {
            break;
        }
        rest = &rest[written as usize..];
    }
}
