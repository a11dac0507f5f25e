use std::cell::Cell;
use std::mem::{self, MaybeUninit};
use std::ptr;
use std::sync::{Once, OnceLock};

use super::message::{Overflow, ThreadInfo, compose};
use crate::{RawStack, Stack};
use nix::libc::{self, c_int, c_void, siginfo_t};

/// `si_code` of a `SIGSEGV` on a mapped page whose protection forbids
/// the access, as a guard page does (Linux uapi `asm-generic/siginfo.h`;
/// the `libc` crate does not export it).
const SEGV_ACCERR: c_int = 2;

/// Usable size of the alternate signal stack mapped for threads that
/// have none. The handler needs a few KiB; the kernel's signal frame
/// (with the full vector register state) a few more.
const ALT_STACK_SIZE: usize = 64 * 1024;

thread_local! {
    /// Whether this thread is prepared. Checked at every coroutine
    /// creation: const-initialised and without a destructor, so reading
    /// it is a plain thread-local load.
    pub(super) static READY: Cell<bool> = const { Cell::new(false) };

    /// What the handler needs to know about this thread, recorded when
    /// it is prepared. Const-initialised, `Copy`, without a destructor:
    /// the handler can read it at any time.
    static THREAD: Cell<ThreadInfo> = const { Cell::new(ThreadInfo::UNPREPARED) };

    /// The alternate signal stack this module mapped for this thread,
    /// if it had none; unmapped when the thread exits.
    static ALT_STACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// Guards the process-wide installation of the handler.
static INSTALL: Once = Once::new();
/// The `SIGSEGV` action the handler replaced. Set before the handler is
/// installed, never changed afterwards.
static PREVIOUS_SEGV: OnceLock<libc::sigaction> = OnceLock::new();
/// The `SIGBUS` action the handler replaced.
static PREVIOUS_BUS: OnceLock<libc::sigaction> = OnceLock::new();

/// An alternate signal stack mapped by this module and registered with
/// `sigaltstack` for the thread that owns it. Kept as a raw mapping: it
/// is unmapped only once it is known to be unregistered.
struct AltStack(RawStack);

impl Drop for AltStack {
    fn drop(&mut self) {
        // The thread is exiting: a coroutine created by a later
        // thread-local destructor prepares the thread again (and then
        // leaks the new alternate stack, having nowhere to keep it).
        let _ = READY.try_with(|ready| ready.set(false));
        let bottom = self.0.mapping.as_ptr() as usize + crate::page_size();
        let mut current = MaybeUninit::<libc::stack_t>::uninit();
        // SAFETY: with no new stack, sigaltstack only writes the current
        // one into `current`, a valid place for a `stack_t`.
        if unsafe { libc::sigaltstack(ptr::null(), current.as_mut_ptr()) } != 0 {
            // Cannot tell whether it is still registered: keep it mapped.
            return;
        }
        // SAFETY: sigaltstack succeeded, so it initialised `current`.
        let current = unsafe { current.assume_init() };
        if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_sp as usize == bottom {
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disabling the alternate stack affects only this
            // thread's signal delivery; it fails (EPERM) only while
            // running on it, which a thread-local destructor is not.
            if unsafe { libc::sigaltstack(&disable, ptr::null_mut()) } != 0 {
                // Still registered: the kernel may yet use it, so it
                // must stay mapped.
                return;
            }
        }
        // SAFETY: `self.0` came from `Stack::into_raw` in
        // `ensure_alt_stack` and is turned back only here, once; the
        // mapping was never unmapped. It is not (or no longer) this
        // thread's alternate stack, and no other thread's, so nothing
        // uses it any more.
        drop(unsafe { Stack::from_raw(self.0) });
    }
}

/// The first coroutine on this thread: install the handler (once per
/// process), give the thread an alternate signal stack if it has none,
/// and record what the handler needs to know about the thread.
#[cold]
#[inline(never)]
pub(super) fn prepare_this_thread() {
    INSTALL.call_once(install_handler);
    ensure_alt_stack();
    THREAD.set(this_thread_info());
    READY.set(true);
}

/// Installs the handler for `SIGSEGV` and `SIGBUS`, keeping the actions
/// it replaces for the faults that are not coroutine overflows.
fn install_handler() {
    // Fills sure_stack's page-size cache before any fault can reach
    // the handler, which then reads it with a plain atomic load.
    let _ = crate::page_size();
    for (signal, previous) in [
        (libc::SIGSEGV, &PREVIOUS_SEGV),
        (libc::SIGBUS, &PREVIOUS_BUS),
    ] {
        let mut old = MaybeUninit::<libc::sigaction>::uninit();
        // SAFETY: with a null new action, sigaction only writes the
        // current one into `old`, a valid place for it.
        if unsafe { libc::sigaction(signal, ptr::null(), old.as_mut_ptr()) } != 0 {
            continue;
        }
        // SAFETY: sigaction succeeded, so it initialised `old`.
        let _ = previous.set(unsafe { old.assume_init() });

        // SAFETY: `sigaction` is plain old data; all zeroes is a valid
        // (empty) value, and every field that matters is set below.
        let mut action: libc::sigaction = unsafe { mem::zeroed() };
        action.sa_sigaction = on_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `sa_mask` is a valid `sigset_t` to initialise.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `on_fault` has the signature SA_SIGINFO requires and
        // is async-signal-safe; the action it replaces was saved above,
        // before it can run.
        unsafe { libc::sigaction(signal, &action, ptr::null_mut()) };
    }
}

/// Gives this thread an alternate signal stack if it has none, so the
/// handler can run when the thread's current stack is exhausted.
fn ensure_alt_stack() {
    let mut current = MaybeUninit::<libc::stack_t>::uninit();
    // SAFETY: with no new stack, sigaltstack only writes the current
    // one into `current`, a valid place for a `stack_t`.
    if unsafe { libc::sigaltstack(ptr::null(), current.as_mut_ptr()) } != 0 {
        return;
    }
    // SAFETY: sigaltstack succeeded, so it initialised `current`.
    let current = unsafe { current.assume_init() };
    if current.ss_flags & libc::SS_DISABLE == 0 {
        // std (or someone else) already gave this thread one.
        return;
    }
    let Ok(stack) = Stack::map(ALT_STACK_SIZE) else {
        return;
    };
    let new = libc::stack_t {
        ss_sp: stack.bottom().as_ptr().cast::<c_void>(),
        ss_flags: 0,
        ss_size: stack.len(),
    };
    // SAFETY: `new` describes the usable part of a mapping we own,
    // readable and writable, which is kept mapped for as long as it is
    // registered (by `AltStack::drop`, or forever if leaked below).
    if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } != 0 {
        return;
    }
    // From here on the mapping is registered: it must stay mapped
    // until it is unregistered, which only `AltStack::drop` does.
    let mut stack = Some(AltStack(stack.into_raw()));
    let _ = ALT_STACK.try_with(|slot| slot.set(stack.take()));
    if let Some(stack) = stack {
        // Thread-locals are being destroyed: there is no destructor left
        // to unregister and unmap it, so it stays mapped.
        mem::forget(stack);
    }
}

/// See [`super::thread_stack`].
pub(super) fn thread_stack() -> Option<(usize, usize)> {
    let info = THREAD.get();
    (info.prepared && info.stack_lo < info.stack_hi).then_some((info.stack_lo, info.stack_hi))
}

/// This thread's stack bounds, id and name.
fn this_thread_info() -> ThreadInfo {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    ThreadInfo::recorded(own_stack(), tid.unsigned_abs())
}

/// The calling thread's own stack, `lo..hi`.
fn own_stack() -> Option<(usize, usize)> {
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `attr` is a valid place for an attribute object, which
    // pthread_getattr_np initialises on success.
    if unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) } != 0 {
        return None;
    }
    let mut addr: *mut c_void = ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: `attr` was initialised above; the out-pointers are valid.
    let ok = unsafe { libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) } == 0;
    // SAFETY: `attr` was initialised above and is destroyed once.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    let lo = addr as usize;
    (ok && size > 0).then(|| (lo, lo.saturating_add(size)))
}

/// The `SIGSEGV` and `SIGBUS` handler: reports a coroutine stack
/// overflow and aborts, or passes the fault on.
///
/// # Safety
/// Called by the kernel as an `SA_SIGINFO` handler: `info` and
/// `context` point to the signal's `siginfo_t` and `ucontext_t`.
unsafe extern "C" fn on_fault(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    // SAFETY: errno is this thread's; reading and writing it back is
    // how a signal handler leaves it as the interrupted code had it.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: passed on from the kernel, per this function's contract.
    if let Some(overflow) = unsafe { detect(signal, info, context) } {
        report(&overflow);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
    // SAFETY: passed on from the kernel, per this function's contract.
    unsafe { pass_on(signal, info, context) };
}

/// Whether the fault described by `info` and `context` is an overflow
/// of the coroutine stack this thread is running on. Kept out of line,
/// so that its buffers are off the signal stack before the previous
/// handler is called.
///
/// # Safety
/// As [`on_fault`].
#[inline(never)]
unsafe fn detect(signal: c_int, info: *mut siginfo_t, context: *mut c_void) -> Option<Overflow> {
    let thread = THREAD.get();
    if !thread.prepared || thread.stack_lo == thread.stack_hi {
        return None;
    }
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO.
    let info = unsafe { &*info };
    if signal == libc::SIGSEGV && info.si_code != SEGV_ACCERR {
        return None;
    }
    // SAFETY: si_addr is the field SIGSEGV and SIGBUS fill in.
    let addr = unsafe { info.si_addr() } as usize;
    // SAFETY: the kernel passes a valid ucontext_t for SA_SIGINFO.
    let context = unsafe { &*context.cast::<libc::ucontext_t>() };
    let sp = fault_stack_pointer(context)?;
    if (thread.stack_lo..thread.stack_hi).contains(&sp) {
        // Running on the thread's own stack: not ours to judge.
        return None;
    }
    let page = crate::page_size();
    let (guard, rw_end) = guard_below_stack(addr, page)?;
    let stack = guard..rw_end;
    let overlaps_own = stack.start < thread.stack_hi && thread.stack_lo < stack.end;
    if !stack.contains(&sp) || overlaps_own {
        return None;
    }
    Some(Overflow {
        guard,
        size: rw_end - (guard + page),
        top: rw_end,
    })
}

/// The stack pointer at the fault, from the signal's machine context.
fn fault_stack_pointer(context: &libc::ucontext_t) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    return Some(context.uc_mcontext.gregs[libc::REG_RSP as usize] as usize);
    #[cfg(target_arch = "aarch64")]
    return Some(context.uc_mcontext.sp as usize);
    #[cfg(target_arch = "riscv64")]
    // x2 is sp; musl's libc bindings have no REG_SP.
    return Some(context.uc_mcontext.__gregs[2] as usize);
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )))]
    {
        let _ = context;
        None
    }
}

/// If `addr` lies in the highest page of a `PROT_NONE` mapping that a
/// read-write mapping directly follows, that page's start and the end
/// of the read-write mapping. Reads `/proc/self/maps`.
fn guard_below_stack(addr: usize, page: usize) -> Option<(usize, usize)> {
    let path = c"/proc/self/maps";
    // SAFETY: `path` is a NUL-terminated string; open is
    // async-signal-safe.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut parser = MapsParser::new();
    let mut search = GuardSearch::new(addr);
    let mut buffer = [0u8; 512];
    'read: loop {
        // SAFETY: `buffer` is valid for writes of its whole length.
        let n = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
        if n < 0 {
            // SAFETY: errno is this thread's.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            break;
        }
        if n == 0 {
            break;
        }
        for &byte in &buffer[..n as usize] {
            if let Some(mapping) = parser.push(byte)
                && search.next(mapping)
            {
                break 'read;
            }
        }
    }
    // SAFETY: `fd` is the descriptor opened above, closed once.
    unsafe { libc::close(fd) };
    let (guard, stack) = search.found?;
    let guard_page = stack.start.checked_sub(page)?;
    (guard.end == stack.start && guard_page >= guard.start && addr >= guard_page)
        .then_some((guard_page, stack.end))
}

/// One line of `/proc/self/maps`: its addresses and permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    /// `rwxp`-style permissions.
    perms: [u8; 4],
}

impl Mapping {
    fn is_inaccessible(&self) -> bool {
        &self.perms[..3] == b"---"
    }

    fn is_read_write(&self) -> bool {
        &self.perms[..2] == b"rw"
    }
}

/// Parses `/proc/self/maps` a byte at a time, so lines may be split
/// across reads anywhere; only the address range and the permissions
/// are kept.
struct MapsParser {
    field: Field,
    current: Mapping,
    perms_len: usize,
    malformed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Start,
    End,
    Perms,
    Rest,
}

impl MapsParser {
    fn new() -> Self {
        MapsParser {
            field: Field::Start,
            current: Mapping {
                start: 0,
                end: 0,
                perms: [0; 4],
            },
            perms_len: 0,
            malformed: false,
        }
    }

    /// Takes the next byte; returns the mapping a line describes when
    /// its newline arrives.
    fn push(&mut self, byte: u8) -> Option<Mapping> {
        if byte == b'\n' {
            let done = !self.malformed && self.field == Field::Rest;
            let mapping = self.current;
            *self = MapsParser::new();
            return done.then_some(mapping);
        }
        if self.malformed {
            return None;
        }
        match (self.field, byte) {
            (Field::Start, b'-') => self.field = Field::End,
            (Field::End, b' ') => self.field = Field::Perms,
            (Field::Start | Field::End, _) => {
                let Some(digit) = (byte as char).to_digit(16) else {
                    self.malformed = true;
                    return None;
                };
                let value = if self.field == Field::Start {
                    &mut self.current.start
                } else {
                    &mut self.current.end
                };
                *value = value.wrapping_mul(16) | digit as usize;
            }
            (Field::Perms, b' ') if self.perms_len == 4 => self.field = Field::Rest,
            (Field::Perms, _) if self.perms_len < 4 => {
                self.current.perms[self.perms_len] = byte;
                self.perms_len += 1;
            }
            (Field::Perms, _) => self.malformed = true,
            (Field::Rest, _) => {}
        }
        None
    }
}

/// Looks through the mappings, in increasing order, for the one holding
/// the faulting address and the one right after it.
struct GuardSearch {
    addr: usize,
    /// The inaccessible mapping holding `addr`, once seen.
    guard: Option<Mapping>,
    /// The guard and the mapping right after it, if that is read-write.
    found: Option<(Mapping, Mapping)>,
}

impl GuardSearch {
    fn new(addr: usize) -> Self {
        GuardSearch {
            addr,
            guard: None,
            found: None,
        }
    }

    /// Takes the next mapping; returns whether the search is over.
    fn next(&mut self, mapping: Mapping) -> bool {
        if let Some(guard) = self.guard {
            if mapping.start == guard.end && mapping.is_read_write() {
                self.found = Some((guard, mapping));
            }
            return true;
        }
        if mapping.start > self.addr {
            // Past the address without finding it.
            return true;
        }
        if (mapping.start..mapping.end).contains(&self.addr) {
            if !mapping.is_inaccessible() {
                return true;
            }
            self.guard = Some(mapping);
        }
        false
    }
}

/// Writes the overflow message to stderr and aborts.
#[inline(never)]
fn report(overflow: &Overflow) -> ! {
    // SAFETY: the handler found that this thread ran on the stack, whose
    // usable bytes it saw mapped read-write.
    write_to_stderr(unsafe { compose(&THREAD.get(), overflow) }.as_bytes());
    // SAFETY: abort is async-signal-safe and never returns.
    unsafe { libc::abort() }
}

/// Writes all of `bytes` to stderr, as far as it takes them;
/// async-signal-safe.
fn write_to_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is valid for reads of its length; write is
        // async-signal-safe.
        let n = unsafe { libc::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
        if n > 0 {
            rest = &rest[n as usize..];
            continue;
        }
        // SAFETY: errno is this thread's.
        if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        }
        break;
    }
}

/// Hands a fault that is not a coroutine overflow to the action that
/// was installed before this module's.
///
/// # Safety
/// As [`on_fault`].
unsafe fn pass_on(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let previous = match signal {
        libc::SIGSEGV => PREVIOUS_SEGV.get(),
        _ => PREVIOUS_BUS.get(),
    };
    let handler = previous.map_or(libc::SIG_DFL, |action| action.sa_sigaction);
    let reset_first = previous.is_some_and(|action| action.sa_flags & libc::SA_RESETHAND != 0);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN || reset_first {
        restore_default(signal);
    }
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Returning re-runs the faulting instruction, which now gets the
        // default action: the process dies of the signal. A signal that
        // some process or thread sent (si_code <= 0: SI_USER, SI_TKILL,
        // SI_QUEUE...) does not come back by itself: send it again; it
        // is delivered, to the default action, when this handler returns.
        // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO.
        if unsafe { (*info).si_code } <= 0 {
            // SAFETY: raise is async-signal-safe.
            unsafe { libc::raise(signal) };
        }
        return;
    }
    let Some(previous) = previous else { return };
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO action's handler has this signature;
        // it gets the arguments the kernel gave us.
        let handler: unsafe extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
            unsafe { mem::transmute(handler) };
        // SAFETY: as above: the same signal, siginfo and context.
        unsafe { handler(signal, info, context) };
    } else {
        // SAFETY: a plain action's handler takes the signal number.
        let handler: unsafe extern "C" fn(c_int) = unsafe { mem::transmute(handler) };
        // SAFETY: called as the kernel would have called it.
        unsafe { handler(signal) };
    }
}

/// Makes the default action `signal`'s again. Async-signal-safe.
fn restore_default(signal: c_int) {
    // SAFETY: `sigaction` is plain old data; all zeroes is SIG_DFL with
    // no flags and an empty mask.
    let default: libc::sigaction = unsafe { mem::zeroed() };
    // SAFETY: setting an action is async-signal-safe, and the default
    // one needs nothing to stay alive.
    unsafe { libc::sigaction(signal, &default, ptr::null_mut()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Mapping> {
        let mut parser = MapsParser::new();
        text.bytes().filter_map(|b| parser.push(b)).collect()
    }

    const MAPS: &str = "\
55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 123 /usr/bin/test
7f0000000000-7f0000001000 ---p 00000000 00:00 0 
7f0000001000-7f0000041000 rw-p 00000000 00:00 0 
7f0000041000-7f0000042000 ---p 00000000 00:00 0 
7f0000050000-7f0000060000 rw-p 00000000 00:00 0 
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn parses_addresses_and_permissions() {
        let maps = parse(MAPS);
        assert_eq!(maps.len(), 6);
        assert_eq!(
            maps[1],
            Mapping {
                start: 0x7f00_0000_0000,
                end: 0x7f00_0000_1000,
                perms: *b"---p"
            }
        );
        assert!(maps[1].is_inaccessible());
        assert!(maps[2].is_read_write());
        assert!(!maps[0].is_read_write());
    }

    #[test]
    fn lines_split_anywhere_parse_the_same() {
        // The parser is fed byte by byte, so any split is the same as
        // this one; check a malformed line is skipped, not merged.
        let maps = parse("zz-1 rw-p\n1000-2000 rw-p x\n");
        assert_eq!(
            maps,
            [Mapping {
                start: 0x1000,
                end: 0x2000,
                perms: *b"rw-p"
            }]
        );
    }

    fn search(addr: usize) -> Option<(Mapping, Mapping)> {
        let mut search = GuardSearch::new(addr);
        for mapping in parse(MAPS) {
            if search.next(mapping) {
                break;
            }
        }
        search.found
    }

    #[test]
    fn finds_the_stack_above_a_guard_page() {
        let (guard, stack) = search(0x7f00_0000_0ff8).unwrap();
        assert_eq!(guard.start, 0x7f00_0000_0000);
        assert_eq!(stack.start, 0x7f00_0000_1000);
        assert_eq!(stack.end, 0x7f00_0004_1000);
    }

    #[test]
    fn ignores_other_addresses() {
        // Inside a read-write mapping.
        assert!(search(0x7f00_0000_2000).is_none());
        // In a gap.
        assert!(search(0x7f00_0004_8000).is_none());
        // An inaccessible page with nothing directly above it.
        assert!(search(0x7f00_0004_1000).is_none());
    }
}
