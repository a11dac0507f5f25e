//! The pools of a thread's stacks of sizes other than the default: a
//! bounded set of [`StackPool`]s, one per size, the least recently used
//! freed first.

use sure_stack::{Stack, StackPool};

use super::{MAX_SIZES, SIZED_IDLE_BYTES};

/// Idle stacks of sizes other than the default, one [`StackPool`] per
/// size, within [`MAX_SIZES`] and [`SIZED_IDLE_BYTES`].
pub(super) struct SizedPools {
    /// One pool per size, the least recently used first. A size keeps its
    /// place while its pool is empty (its stacks are in use), until
    /// evicted.
    pools: Vec<StackPool>,
}

impl SizedPools {
    /// No pools; allocates nothing.
    pub(super) const fn new() -> SizedPools {
        SizedPools { pools: Vec::new() }
    }

    /// Moves the pool of `size` to the most recently used end, if there is
    /// one, and returns it.
    fn touch(&mut self, size: usize) -> Option<&mut StackPool> {
        let at = self.pools.iter().position(|p| p.stack_size() == size)?;
        self.pools[at..].rotate_left(1);
        self.pools.last_mut()
    }

    /// The most recently returned idle stack of `size` usable bytes.
    pub(super) fn take_idle(&mut self, size: usize) -> Option<Stack> {
        self.touch(size)?.take_idle()
    }

    /// The pools, the least recently used first.
    pub(super) fn least_recently_used_first(&self) -> impl Iterator<Item = &StackPool> {
        self.pools.iter()
    }

    /// The usable bytes of all the idle stacks: a sum over at most
    /// `MAX_SIZES` pools, counted when a stack is given back.
    fn idle_bytes(&self) -> usize {
        self.pools
            .iter()
            .map(|pool| pool.len() * pool.stack_size())
            .sum()
    }

    /// Keeps `stack` for reuse if the bounds allow it, freeing the least
    /// recently used sizes' idle stacks to make room; frees it otherwise.
    pub(super) fn give_back(&mut self, stack: Stack) {
        let size = stack.len();
        if size > SIZED_IDLE_BYTES {
            return;
        }
        if self.touch(size).is_none() {
            if self.pools.len() == MAX_SIZES {
                drop(self.pools.remove(0));
            }
            // Cannot fail: `size` is a stack's length, already valid and
            // rounded, so the pool keeps stacks of exactly this size.
            let Ok(pool) = StackPool::new(size) else {
                return;
            };
            self.pools.push(pool);
        }
        // The pool of `size` is now the last one.
        if self
            .pools
            .last()
            .is_none_or(|pool| pool.len() >= pool.capacity())
        {
            return;
        }
        // Free the other sizes' idle stacks, least recently used first,
        // until this one fits.
        while self.idle_bytes() + size > SIZED_IDLE_BYTES {
            let [oldest, .., _] = &mut self.pools[..] else {
                // Only this size is left, and its stacks fill the budget.
                return;
            };
            if oldest.take_idle().is_none() {
                // A size with no idle stack gives up its place.
                drop(self.pools.remove(0));
            }
        }
        if let Some(pool) = self.pools.last_mut() {
            pool.give_back(stack);
        }
    }
}
