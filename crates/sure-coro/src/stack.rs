//! The stack a coroutine owns, and where it goes when the coroutine does.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use sure_stack::Stack;

use crate::pool;

/// A coroutine's stack: returned to the thread's pool on drop when it came
/// from there, freed otherwise.
pub(crate) struct CoroutineStack {
    stack: ManuallyDrop<Stack>,
    pooled: bool,
}

impl CoroutineStack {
    pub(crate) fn pooled(stack: Stack) -> Self {
        CoroutineStack {
            stack: ManuallyDrop::new(stack),
            pooled: true,
        }
    }

    pub(crate) fn owned(stack: Stack) -> Self {
        CoroutineStack {
            stack: ManuallyDrop::new(stack),
            pooled: false,
        }
    }

    pub(crate) fn region(&self) -> NonNull<[u8]> {
        self.stack.region()
    }

    pub(crate) fn len(&self) -> usize {
        self.stack.len()
    }

    /// Gives up the stack without returning it to the pool.
    pub(crate) fn into_inner(self) -> Stack {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again.
        unsafe { ManuallyDrop::take(&mut this.stack) }
    }
}

impl Drop for CoroutineStack {
    fn drop(&mut self) {
        // SAFETY: dropped once, and the field is not used afterwards.
        let stack = unsafe { ManuallyDrop::take(&mut self.stack) };
        if self.pooled {
            pool::give_back(stack);
        }
    }
}
