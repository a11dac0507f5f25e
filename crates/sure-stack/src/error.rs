//! [`StackError`] and the classification of failed `mmap` / `mprotect` calls,
//! telling mapping exhaustion (`vm.max_map_count`) apart from other failures.

use nix::errno::Errno;

/// How close to `vm.max_map_count` the process's mapping count must be for an
/// `mmap` `ENOMEM` to be blamed on the mapping limit. Other threads may map
/// and unmap memory between the failure and the count, hence a margin.
const MAP_COUNT_MARGIN: usize = 16;

/// Why a stack could not be allocated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The requested size is 0, below
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE), or so large that rounding it
    /// up to whole pages and adding the guard page overflows the address
    /// space.
    #[error(
        "invalid stack size of {requested} bytes: a stack must have at least {min} bytes \
         (MIN_STACK_SIZE) and at most {max} bytes; the size is rounded up to whole pages \
         and one guard page is added below it"
    )]
    #[non_exhaustive]
    InvalidSize {
        /// The size that was asked for, in bytes.
        requested: usize,
        /// The smallest valid size ([`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE)).
        min: usize,
        /// The largest valid size on this system.
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
        show_count(*.mappings),
        show_count(*.max_map_count)
    )]
    #[non_exhaustive]
    MappingLimit {
        /// The system call that failed: `"mmap"` or `"mprotect"`.
        call: &'static str,
        /// Lines in `/proc/self/maps` when the failure was diagnosed, if
        /// they could be counted.
        mappings: Option<usize>,
        /// The value of `/proc/sys/vm/max_map_count`, if it could be read.
        max_map_count: Option<usize>,
    },

    /// `mmap` or `mprotect` failed for another reason.
    #[error(
        "{call} of a {bytes}-byte stack mapping failed: {errno}. The system may be out of \
         memory or address space: check `ulimit -v` and vm.overcommit_memory, ask for a \
         smaller stack, or free stacks"
    )]
    #[non_exhaustive]
    Map {
        /// The system call that failed: `"mmap"` or `"mprotect"`.
        call: &'static str,
        /// The size of the whole mapping (usable bytes plus the guard page).
        bytes: usize,
        /// The error the system call returned.
        errno: Errno,
    },
}

static_assertions::assert_impl_all!(StackError: Send, Sync, std::error::Error);

fn show_count(count: Option<usize>) -> String {
    count.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

/// Counts the lines of `/proc/self/maps`: the process's memory mappings.
fn mapping_count() -> Option<usize> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count())
}

/// Reads `/proc/sys/vm/max_map_count`.
fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether an `mmap` `ENOMEM` is due to the mapping limit: the mapping count
/// is within [`MAP_COUNT_MARGIN`] of the limit.
fn near_mapping_limit(mappings: Option<usize>, max_map_count: Option<usize>) -> bool {
    match (mappings, max_map_count) {
        (Some(n), Some(max)) => n >= max.saturating_sub(MAP_COUNT_MARGIN),
        _ => false,
    }
}

/// Turns a failed `mmap` / `mprotect` into a [`StackError`].
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
    StackError::Map { call, bytes, errno }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
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
    fn mmap_enomem_far_from_the_limit_is_a_map_error() {
        // This test process uses far fewer mappings than the limit.
        let err = classify("mmap", 1 << 20, Errno::ENOMEM);
        assert!(
            matches!(
                err,
                StackError::Map {
                    call: "mmap",
                    errno: Errno::ENOMEM,
                    bytes: 1_048_576
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("mmap"), "{msg}");
        assert!(msg.contains("1048576"), "{msg}");
        assert!(msg.contains("ENOMEM"), "{msg}");
    }

    #[test]
    fn other_errnos_are_map_errors() {
        let err = classify("mprotect", 8192, Errno::EACCES);
        assert!(
            matches!(
                err,
                StackError::Map {
                    call: "mprotect",
                    errno: Errno::EACCES,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
