//! A stack's name, kept in the top bytes of the stack itself, where the
//! overflow handler finds it from nothing but the overflowing stack's
//! bounds ([`Stack::set_name`]).
//!
//! ```text
//!   top() ──────────────────────────────────────────────┐
//!                                                       ▼
//!   ... │ what runs on the stack │ label: magic, name, length │
//!                                └──────── LABEL_BYTES ───────┘
//! ```
//!
//! The magic word tells a label from whatever else the top of a stack
//! holds (a fresh stack's zeros, or a previous user's data).

use std::ptr;

use crate::Stack;

/// Bytes a name takes at the top of a stack's usable region: code that
/// names a stack runs below `top() - LABEL_BYTES`. A multiple of 16, so the
/// stack below stays aligned for the ABI.
pub const LABEL_BYTES: usize = size_of::<Label>().next_multiple_of(16);

/// "sure lbl" in ASCII: marks a label.
const MAGIC: usize = usize::from_be_bytes(*b"sure lbl");

/// The most bytes of a name the overflow message shows.
#[cfg(any(target_os = "linux", windows))]
const NAME_SHOWN: usize = 64;

#[repr(C)]
struct Label {
    magic: usize,
    /// The name's bytes, from `Box<str>::into_raw`.
    name: *mut u8,
    name_len: usize,
}

impl Stack {
    /// Names the stack, for the message of an overflow on it (see
    /// [`overflow`](crate::overflow)): the name is written into the top
    /// [`LABEL_BYTES`] of the usable region, which whatever runs on the
    /// stack must leave alone, until [`clear_name`](Stack::clear_name).
    ///
    /// ```
    /// use sure_stack::{LABEL_BYTES, Stack};
    ///
    /// let stack = Stack::allocate_at_least(64 * 1024)?;
    /// // SAFETY: nothing runs on the stack yet; it is named once, and the
    /// // name cleared before the stack goes.
    /// unsafe {
    ///     stack.set_name("worker 3".into());
    ///     assert_eq!(stack.name(), "worker 3");
    ///     stack.clear_name();
    /// }
    /// // Code on the stack starts below the label.
    /// let usable_below = stack.len() - LABEL_BYTES;
    /// # let _ = usable_below;
    /// # Ok::<(), sure_stack::StackError>(())
    /// ```
    ///
    /// # Safety
    /// Nothing uses the top `LABEL_BYTES` of the region from now until the
    /// name is cleared, and the stack is not named again meanwhile. A name
    /// not cleared is leaked with the stack's memory: clear it before the
    /// stack is freed or reused.
    pub unsafe fn set_name(&self, name: Box<str>) {
        let name_len = name.len();
        let name = Box::into_raw(name).cast::<u8>();
        // SAFETY: the label's bytes are the region's top LABEL_BYTES, ours by
        // the contract, and aligned (the top is page-aligned).
        unsafe {
            self.label().write(Label {
                magic: MAGIC,
                name,
                name_len,
            });
        }
    }

    /// The stack's name.
    ///
    /// # Safety
    /// The stack was named with [`set_name`](Stack::set_name), and the name
    /// has not been cleared since.
    pub unsafe fn name(&self) -> &str {
        // SAFETY: by the contract the label holds a name from `set_name`,
        // whose box lives until `clear_name`.
        unsafe {
            let label = &*self.label();
            let bytes = std::slice::from_raw_parts(label.name, label.name_len);
            std::str::from_utf8_unchecked(bytes)
        }
    }

    /// Frees the stack's name and clears its label.
    ///
    /// # Safety
    /// As [`name`](Stack::name); nothing reads the name any more (no code
    /// still runs on the stack).
    pub unsafe fn clear_name(&self) {
        // SAFETY: as in `name`; the box is rebuilt from the parts `set_name`
        // took it apart into, once, and the label no longer points to it.
        unsafe {
            let label = &mut *self.label();
            drop(Box::from_raw(
                ptr::slice_from_raw_parts_mut(label.name, label.name_len) as *mut str,
            ));
            label.name = ptr::null_mut();
            label.magic = 0;
        }
    }

    fn label(&self) -> *mut Label {
        // SAFETY: the label's bytes are in the stack's usable region, which
        // is at least MIN_STACK_SIZE long.
        unsafe { self.top().as_ptr().sub(LABEL_BYTES).cast::<Label>() }
    }
}

/// For the overflow handler: up to `NAME_SHOWN` bytes of the name of the
/// stack whose usable region ends at `top`, if a label is there. Reads only
/// the label and the name: no allocation, no lock.
///
/// # Safety
/// The `LABEL_BYTES` below `top` are readable; a label there names a stack
/// in use, whose name is alive.
#[cfg(any(target_os = "linux", windows))]
pub(crate) unsafe fn name_for_handler(top: usize) -> Option<&'static [u8]> {
    // SAFETY: readable by the contract; a label with the magic word was
    // written by `set_name`, whose name lives until `clear_name`, which also
    // clears the magic word.
    unsafe {
        let label = &*((top - LABEL_BYTES) as *const Label);
        if label.magic != MAGIC || label.name.is_null() {
            return None;
        }
        Some(std::slice::from_raw_parts(
            label.name,
            label.name_len.min(NAME_SHOWN),
        ))
    }
}
