//! The overflow message, assembled without allocating or locking (a
//! signal handler or a vectored exception handler builds it on what is left
//! of a stack), and what it says about a thread.

use super::report_words;

/// Bytes of a thread name kept for the message; longer names are cut.
const NAME_CAPACITY: usize = 64;

/// One thread's facts, as the handler reads them.
#[derive(Clone, Copy)]
pub(super) struct ThreadInfo {
    /// Whether the fields below were recorded.
    pub(super) prepared: bool,
    /// The thread's own stack, `lo..hi`, as the system reports it
    /// (`pthread_getattr_np`, `GetCurrentThreadStackLimits`); empty (0..0) if it could not be had, in which case
    /// the handler recognises no overflow on this thread rather than
    /// risk calling the thread's own overflow a coroutine's.
    pub(super) stack_lo: usize,
    pub(super) stack_hi: usize,
    /// The system's thread id, as Rust's own message shows it.
    pub(super) tid: u64,
    /// The Rust thread name (`<unnamed>` if none), cut to fit.
    name: [u8; NAME_CAPACITY],
    name_len: usize,
}

impl ThreadInfo {
    pub(super) const UNPREPARED: ThreadInfo = ThreadInfo {
        prepared: false,
        stack_lo: 0,
        stack_hi: 0,
        tid: 0,
        name: [0; NAME_CAPACITY],
        name_len: 0,
    };

    /// A thread that was never prepared, known by its id only.
    #[cfg(windows)]
    pub(super) fn unknown(tid: u64) -> ThreadInfo {
        const UNKNOWN: &[u8] = b"<unknown>";
        let mut info = ThreadInfo {
            tid,
            name_len: UNKNOWN.len(),
            ..ThreadInfo::UNPREPARED
        };
        info.name[..UNKNOWN.len()].copy_from_slice(UNKNOWN);
        info
    }

    /// This thread's facts: its stack bounds and id as the system gives
    /// them, and its Rust name.
    pub(super) fn recorded(stack: Option<(usize, usize)>, tid: u64) -> ThreadInfo {
        let (stack_lo, stack_hi) = stack.unwrap_or((0, 0));
        let mut info = ThreadInfo {
            prepared: true,
            stack_lo,
            stack_hi,
            tid,
            ..ThreadInfo::UNPREPARED
        };
        // `thread::current` may panic once std has torn the thread down (a
        // stack allocated by a late destructor); the name is then unknown.
        let thread = std::panic::catch_unwind(std::thread::current).ok();
        let name = thread
            .as_ref()
            .and_then(|t| t.name())
            .unwrap_or("<unnamed>");
        let len = name.floor_char_boundary(NAME_CAPACITY);
        info.name[..len].copy_from_slice(&name.as_bytes()[..len]);
        info.name_len = len;
        info
    }
}

/// The stack a coroutine overflowed.
pub(super) struct Overflow {
    /// Start of the guard page (or pages) that was hit.
    pub(super) guard: usize,
    /// Usable bytes of the stack above it.
    pub(super) size: usize,
    /// The end of those usable bytes: the top of the stack.
    pub(super) top: usize,
}

/// The overflow message, in the manner of Rust's own: which thread, which
/// stack and how big, what to do about it.
///
/// # Safety
/// `overflow` describes the live stack that this thread ran out of: its
/// usable bytes up to `top` are readable.
pub(super) unsafe fn compose(thread: &ThreadInfo, overflow: &Overflow) -> Message {
    let mut message = Message::new();
    message.push(b"\nthread '");
    message.push(&thread.name[..thread.name_len]);
    message.push(b"' (");
    message.decimal(thread.tid);
    let words = report_words();
    message.push(b") has overflowed ");
    message.push(words.what.as_bytes());
    // SAFETY: by the contract the stack is live and readable, and a
    // named stack's name lives while the stack is in use.
    if let Some(name) = unsafe { crate::label::name_for_handler(overflow.top) } {
        message.push(b" named '");
        message.push(name);
        message.push(b"'");
    }
    message.push(b": ");
    message.push(words.stack.as_bytes());
    message.size(overflow.size);
    message.push(b" (guard page at ");
    message.hex(overflow.guard);
    message.push(b") is exhausted\nhelp: ");
    message.push(words.advice.as_bytes());
    let bigger = overflow.size.saturating_mul(2);
    if bigger.is_multiple_of(1024) {
        message.decimal((bigger / 1024) as u64);
        message.push(b" * 1024");
    } else {
        message.decimal(bigger as u64);
    }
    message.push(words.advice_end.as_bytes());
    message.push(b"\nnote: ");
    message.push(words.sizing.as_bytes());
    message.push(b"\nfatal runtime error: ");
    message.push(words.fatal.as_bytes());
    message.push(b", aborting\n");
    message
}

/// A message assembled on the stack, without allocating; text
/// beyond its capacity is dropped.
pub(super) struct Message {
    bytes: [u8; 1024],
    len: usize,
}

impl Message {
    fn new() -> Self {
        Message {
            bytes: [0; 1024],
            len: 0,
        }
    }

    fn push(&mut self, text: &[u8]) {
        let n = text.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&text[..n]);
        self.len += n;
    }

    fn decimal(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.push(&digits[at..]);
    }

    fn hex(&mut self, mut value: usize) {
        let mut digits = [0u8; 16];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b"0123456789abcdef"[value % 16];
            value /= 16;
            if value == 0 {
                break;
            }
        }
        self.push(b"0x");
        self.push(&digits[at..]);
    }

    /// A size in the largest binary unit that divides it.
    fn size(&mut self, bytes: usize) {
        const MIB: usize = 1024 * 1024;
        if bytes >= MIB && bytes.is_multiple_of(MIB) {
            self.decimal((bytes / MIB) as u64);
            self.push(b" MiB");
        } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
            self.decimal((bytes / 1024) as u64);
            self.push(b" KiB");
        } else {
            self.decimal(bytes as u64);
            self.push(b" bytes");
        }
    }

    /// The message so far.
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_by_hand() {
        let mut message = Message::new();
        message.decimal(0);
        message.push(b" ");
        message.decimal(u64::MAX);
        message.push(b" ");
        message.hex(0x7f3a_5c1f_f000);
        message.push(b" ");
        message.size(256 * 1024);
        message.push(b" ");
        message.size(2 * 1024 * 1024);
        message.push(b" ");
        message.size(1000);
        assert_eq!(
            std::str::from_utf8(message.as_bytes()).unwrap(),
            "0 18446744073709551615 0x7f3a5c1ff000 256 KiB 2 MiB 1000 bytes"
        );
    }
}
