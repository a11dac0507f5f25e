//! [`StackError`] and the classification of failed `mmap` / `mprotect` calls,
//! telling mapping exhaustion (`vm.max_map_count`) apart from other failures.

use core::fmt;
use std::io;
#[cfg(unix)]
use std::io::Read;

#[cfg(unix)]
use nix::errno::Errno;

/// How close to `vm.max_map_count` the process's mapping count must be for an
/// `mmap` `ENOMEM` to be blamed on the mapping limit. Other threads may map
/// and unmap memory between the failure and the count, hence a margin.
#[cfg(unix)]
const MAP_COUNT_MARGIN: usize = 16;

/// Why a stack could not be allocated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The requested size is 0, below
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE), or so large that, rounded
    /// up to whole pages with the guard added, the mapping would span
    /// more than `isize::MAX` bytes.
    ///
    /// The message says which: for a size that is too small it names
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE); for one that is too large
    /// it says that no mapping can be that big and asks for a smaller stack.
    #[error(fmt = fmt_invalid_size)]
    #[non_exhaustive]
    InvalidSize {
        /// The size that was asked for, in bytes.
        requested: usize,
        /// The smallest valid size ([`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE)).
        min: usize,
        /// The largest size that passes validation: the largest multiple of
        /// the page size that, with the guard added, spans at most
        /// `isize::MAX` bytes (the most one Rust object, or mapping, may
        /// span).
        ///
        /// This bounds the arithmetic, not what the system can map: no
        /// address space comes close to it (64-bit Linux gives a process at
        /// most tens of PiB, `isize::MAX` bytes are 8 EiB), so sizes far
        /// below it still fail with [`StackError::Map`] once they exceed the
        /// free address space, `ulimit -v` or what overcommit allows.
        max: usize,
    },

    /// The process has run out of memory mappings (`vm.max_map_count`).
    ///
    /// Each guarded stack costs two mappings, so the default limit of 65530
    /// allows about 32,750 live stacks.
    #[error(
        "{call} failed with ENOMEM: the process has run out of memory mappings \
         ({} mappings in use, vm.max_map_count = {}). Each guarded stack costs two \
         mappings, so the default vm.max_map_count of 65530 allows about 32,750 live \
         stacks. Raise the limit (e.g. `sysctl -w vm.max_map_count=2200000` for about \
         a million stacks) or free stacks (drop them, shrink or clear stack pools)",
        Count(*.mappings),
        Count(*.max_map_count)
    )]
    #[non_exhaustive]
    MappingLimit {
        /// The system call that failed: `"mmap"` or `"mprotect"`.
        call: &'static str,
        /// Lines in `/proc/self/maps` right after the call failed: the
        /// process's mappings (including, for `mprotect`, the new stack's
        /// mapping, which is unmapped again before the error is returned).
        /// `None` only if the file could not be read.
        mappings: Option<usize>,
        /// The value of `/proc/sys/vm/max_map_count`, if it could be read.
        max_map_count: Option<usize>,
    },

    /// `mmap` or `mprotect` (on Windows `VirtualAlloc` or `VirtualProtect`)
    /// failed for another reason.
    #[error(
        "{call} of a {bytes}-byte stack mapping failed: {error}. The system may be out of \
         memory or address space: ask for a smaller stack or free stacks, and check {limits}"
    )]
    #[non_exhaustive]
    Map {
        /// The system call that failed: `"mmap"` or `"mprotect"`
        /// (`"VirtualAlloc"` or `"VirtualProtect"`).
        call: &'static str,
        /// The size of the whole mapping (usable bytes plus the guard page).
        bytes: usize,
        /// The error the system call returned (`errno`, or Windows'
        /// `GetLastError`).
        error: io::Error,
        /// What limits the system puts on memory, for the message.
        #[doc(hidden)]
        limits: Limits,
    },
}

static_assertions::assert_impl_all!(StackError: Send, Sync, std::error::Error);

/// The system's memory limits worth checking when a mapping fails, as the
/// message names them.
#[derive(Debug, Clone, Copy)]
pub struct Limits;

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if cfg!(windows) {
            f.write_str("the commit limit (the page file's size)")
        } else {
            f.write_str("`ulimit -v` and vm.overcommit_memory")
        }
    }
}

/// A count that may be missing: the number, or "unknown" if it could not be
/// read. Formats without allocating.
struct Count(Option<usize>);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("unknown"),
        }
    }
}

/// A number of bytes with a grammatical unit: "1 byte", "0 bytes",
/// "32768 bytes".
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 byte"),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// The message of [`StackError::InvalidSize`]: a size below `min` is too
/// small, any other invalid size too large to map.
fn fmt_invalid_size(
    requested: &usize,
    min: &usize,
    max: &usize,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    if requested < min {
        write!(
            f,
            "invalid stack size of {}: a stack needs at least {} (MIN_STACK_SIZE), so ask for \
             at least that; the size is then rounded up to whole pages and a guard is added below \
             it",
            Bytes(*requested),
            Bytes(*min)
        )
    } else {
        write!(
            f,
            "invalid stack size of {}: no stack can be that large. Rounded up to whole pages \
             with the guard added, a stack of more than {} would span more than isize::MAX \
             bytes, which no mapping may, and what the address space, `ulimit -v` and \
             vm.overcommit_memory really allow is far less; ask for a smaller stack",
            Bytes(*requested),
            Bytes(*max)
        )
    }
}

/// The error of a failed call on Windows: what `GetLastError` says.
#[cfg(windows)]
pub(crate) fn last_error(call: &'static str, bytes: usize) -> StackError {
    StackError::Map {
        call,
        bytes,
        error: io::Error::last_os_error(),
        limits: Limits,
    }
}

/// Reads the file at `path` in chunks into a buffer on the stack, passing
/// each chunk to `chunk`. `None` if it cannot be opened or read.
///
/// Nothing is allocated on the heap: this runs when the process has just run
/// out of memory mappings, when growing a heap buffer fails because `malloc`
/// can get no more memory (its `mmap` hits the same limit, and so does
/// extending the main heap with `brk`). The buffer is small because this may
/// run on a coroutine's stack.
#[cfg(unix)]
fn read_in_chunks(path: &str, mut chunk: impl FnMut(&[u8])) -> Option<()> {
    // Paths this short are turned into C strings on the stack, not the heap.
    let mut file = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(()),
            Ok(n) => chunk(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Counts the lines of `/proc/self/maps`: the process's memory mappings
/// (plus one for `[vsyscall]` where the kernel lists it).
#[cfg(unix)]
fn mapping_count() -> Option<usize> {
    let mut lines = 0;
    read_in_chunks("/proc/self/maps", |chunk| {
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    })?;
    Some(lines)
}

/// Reads `/proc/sys/vm/max_map_count`.
#[cfg(unix)]
fn max_map_count() -> Option<usize> {
    // A decimal `usize` and a newline; anything longer is not a count.
    let mut text = [0u8; 24];
    let mut len = 0;
    let mut too_long = false;
    read_in_chunks("/proc/sys/vm/max_map_count", |chunk| {
        match text.get_mut(len..len + chunk.len()) {
            Some(dest) => {
                dest.copy_from_slice(chunk);
                len += chunk.len();
            }
            None => too_long = true,
        }
    })?;
    if too_long {
        return None;
    }
    core::str::from_utf8(&text[..len]).ok()?.trim().parse().ok()
}

/// Whether an `mmap` `ENOMEM` is due to the mapping limit: the mapping count
/// is within [`MAP_COUNT_MARGIN`] of the limit.
#[cfg(unix)]
fn near_mapping_limit(mappings: Option<usize>, max_map_count: Option<usize>) -> bool {
    match (mappings, max_map_count) {
        (Some(n), Some(max)) => n >= max.saturating_sub(MAP_COUNT_MARGIN),
        _ => false,
    }
}

/// Turns a failed `mmap` / `mprotect` into a [`StackError`].
#[cfg(unix)]
pub(crate) fn classify(call: &'static str, bytes: usize, errno: Errno) -> StackError {
    if errno == Errno::ENOMEM {
        let mappings = mapping_count();
        let max_map_count = max_map_count();
        // mprotect of the guard page splits one mapping into two: with
        // ENOMEM the only thing it can have run out of is mappings.
        if call == "mprotect" || near_mapping_limit(mappings, max_map_count) {
            return StackError::MappingLimit {
                call,
                mappings,
                max_map_count,
            };
        }
    }
    StackError::Map {
        call,
        bytes,
        error: io::Error::from_raw_os_error(errno as i32),
        limits: Limits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(requested: usize) -> String {
        StackError::InvalidSize {
            requested,
            min: 32768,
            max: 9_223_372_036_854_767_616,
        }
        .to_string()
    }

    #[test]
    fn bytes_are_counted_grammatically() {
        assert_eq!(Bytes(0).to_string(), "0 bytes");
        assert_eq!(Bytes(1).to_string(), "1 byte");
        assert_eq!(Bytes(2).to_string(), "2 bytes");
        assert_eq!(Bytes(32768).to_string(), "32768 bytes");
    }

    #[test]
    fn invalid_size_messages_are_exact() {
        assert_eq!(
            invalid(0),
            "invalid stack size of 0 bytes: a stack needs at least 32768 bytes \
             (MIN_STACK_SIZE), so ask for at least that; the size is then rounded up to whole \
             pages and a guard is added below it"
        );
        assert_eq!(
            invalid(1),
            "invalid stack size of 1 byte: a stack needs at least 32768 bytes \
             (MIN_STACK_SIZE), so ask for at least that; the size is then rounded up to whole \
             pages and a guard is added below it"
        );
        assert_eq!(
            invalid(32767),
            "invalid stack size of 32767 bytes: a stack needs at least 32768 bytes \
             (MIN_STACK_SIZE), so ask for at least that; the size is then rounded up to whole \
             pages and a guard is added below it"
        );
        assert_eq!(
            invalid(usize::MAX),
            "invalid stack size of 18446744073709551615 bytes: no stack can be that large. \
             Rounded up to whole pages with the guard added, a stack of more than \
             9223372036854767616 bytes would span more than isize::MAX bytes, which no mapping \
             may, and what the address space, `ulimit -v` and vm.overcommit_memory really \
             allow is far less; ask for a smaller stack"
        );
    }

    /// Lines of `/proc/self/maps` read the simple way, allocating.
    #[cfg(unix)]
    fn lines_of_maps() -> usize {
        let maps = std::fs::read("/proc/self/maps").unwrap();
        maps.iter().filter(|&&b| b == b'\n').count()
    }

    #[test]
    #[cfg(unix)]
    fn the_mapping_count_reads_the_whole_file() {
        // 200 stacks make 400 more lines: many chunks of 4096 bytes.
        let stacks: Vec<crate::Stack> = (0..200)
            .map(|_| crate::Stack::allocate_at_least(crate::MIN_STACK_SIZE).unwrap())
            .collect();
        let counted = mapping_count().expect("/proc/self/maps is readable");
        let lines = lines_of_maps();
        assert!(counted >= 2 * stacks.len(), "{counted} mappings");
        // Other tests map and unmap a few stacks meanwhile, not hundreds.
        assert!(
            counted.abs_diff(lines) <= 64,
            "counted {counted} mappings, the file has {lines} lines"
        );
    }

    #[test]
    #[cfg(unix)]
    fn max_map_count_is_the_sysctl() {
        let expected = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok());
        assert_eq!(max_map_count(), expected);
    }

    #[test]
    fn mapping_limit_messages_report_the_counts() {
        let err = StackError::MappingLimit {
            call: "mmap",
            mappings: Some(65531),
            max_map_count: Some(65530),
        };
        assert!(
            err.to_string().starts_with(
                "mmap failed with ENOMEM: the process has run out of memory mappings \
                 (65531 mappings in use, vm.max_map_count = 65530). "
            ),
            "{err}"
        );
        let err = StackError::MappingLimit {
            call: "mprotect",
            mappings: None,
            max_map_count: None,
        };
        assert!(
            err.to_string()
                .contains("(unknown mappings in use, vm.max_map_count = unknown)"),
            "{err}"
        );
    }

    #[test]
    #[cfg(unix)]
    fn near_limit_needs_both_numbers_and_the_margin() {
        assert!(!near_mapping_limit(None, Some(65530)));
        assert!(!near_mapping_limit(Some(65530), None));
        assert!(!near_mapping_limit(Some(100), Some(65530)));
        assert!(near_mapping_limit(
            Some(65530 - MAP_COUNT_MARGIN),
            Some(65530)
        ));
        assert!(near_mapping_limit(Some(65530), Some(65530)));
        assert!(near_mapping_limit(Some(3), Some(2)));
    }

    #[test]
    #[cfg(unix)]
    fn mprotect_enomem_is_the_mapping_limit() {
        let err = classify("mprotect", 1 << 20, Errno::ENOMEM);
        assert!(
            matches!(
                err,
                StackError::MappingLimit {
                    call: "mprotect",
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        for needle in [
            "vm.max_map_count",
            "two",
            "65530",
            "32,750",
            "sysctl -w vm.max_map_count=",
            "free stacks",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing from {msg:?}");
        }
    }

    #[test]
    #[cfg(unix)]
    fn mmap_enomem_far_from_the_limit_is_a_map_error() {
        // This test process uses far fewer mappings than the limit.
        let err = classify("mmap", 1 << 20, Errno::ENOMEM);
        assert!(
            matches!(
                &err,
                StackError::Map {
                    call: "mmap",
                    error,
                    bytes: 1_048_576,
                    ..
                } if error.raw_os_error() == Some(Errno::ENOMEM as i32)
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("mmap"), "{msg}");
        assert!(msg.contains("1048576"), "{msg}");
        assert!(msg.contains("os error 12"), "{msg}");
        assert!(msg.contains("vm.overcommit_memory"), "{msg}");
    }

    #[test]
    #[cfg(unix)]
    fn other_errnos_are_map_errors() {
        let err = classify("mprotect", 8192, Errno::EACCES);
        assert!(
            matches!(
                &err,
                StackError::Map {
                    call: "mprotect",
                    error,
                    ..
                } if error.raw_os_error() == Some(Errno::EACCES as i32)
            ),
            "{err:?}"
        );
    }
}
