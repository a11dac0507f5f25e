//! The pools of a thread's stacks of sizes other than the default: a
//! bounded set of [`StackPool`]s, one per size, the least recently used
//! freed first.
//!
//! The pool of the size used last is kept apart from the others, with the
//! size last asked of it, so that a program creating coroutines of one size
//! in a loop neither rounds that size again nor searches: it pays a
//! comparison or two more per create and drop than the default size does.
//! Only a change of size searches the others (at most [`MAX_SIZES`]).

use sure_stack::{DEFAULT_STACK_SIZE, Stack, StackPool};

use super::{MAX_SIZES, SIZED_IDLE_BYTES};

/// Idle stacks of sizes other than the default, one [`StackPool`] per
/// size, within [`MAX_SIZES`] and [`SIZED_IDLE_BYTES`].
pub(super) struct SizedPools {
    /// The pool of the size last taken from or given back to (used); until
    /// there is one, a stand-in ([`is_stand_in`]), so that the fast paths
    /// test a size and not also whether there is a pool.
    recent: StackPool,
    /// The other sizes' pools, the least recently used first. A size keeps
    /// its place while its pool is empty (its stacks are in use), until
    /// evicted.
    older: Vec<StackPool>,
    /// The usable bytes of every idle stack here.
    idle_bytes: usize,
    /// The size last asked for that rounded to the recent pool's (0 when
    /// none): asking for it again skips the rounding.
    asked: usize,
}

impl SizedPools {
    /// No pools; allocates nothing.
    pub(super) const fn new() -> SizedPools {
        SizedPools {
            recent: StackPool::with_default_size(),
            older: Vec::new(),
            idle_bytes: 0,
            asked: 0,
        }
    }

    /// Makes the pool of `size` the recent one, if there is one, and
    /// returns it.
    #[inline]
    fn touch(&mut self, size: usize) -> Option<&mut StackPool> {
        if self.recent.stack_size() == size {
            return Some(&mut self.recent);
        }
        self.touch_older(size)
    }

    /// [`touch`](SizedPools::touch) for a size other than the recent one.
    #[cold]
    #[inline(never)]
    fn touch_older(&mut self, size: usize) -> Option<&mut StackPool> {
        let at = self
            .older
            .iter()
            .position(|pool| pool.stack_size() == size)?;
        let pool = self.older.remove(at);
        self.make_recent(pool)
    }

    /// Makes `pool` the recent one, the one it replaces the most recently
    /// used of the older ones.
    fn make_recent(&mut self, pool: StackPool) -> Option<&mut StackPool> {
        self.asked = 0;
        let replaced = std::mem::replace(&mut self.recent, pool);
        if !is_stand_in(&replaced) {
            self.older.push(replaced);
        }
        Some(&mut self.recent)
    }

    /// The most recently returned idle stack of `size` usable bytes, the
    /// rounded length of `asked`.
    #[inline]
    pub(super) fn take_idle(&mut self, size: usize, asked: usize) -> Option<Stack> {
        let stack = self.touch(size)?.take_idle()?;
        self.asked = asked;
        self.idle_bytes -= size;
        Some(stack)
    }

    /// An idle stack from the recent pool if `asked` is the size last asked
    /// of it: no rounding, one comparison.
    #[inline]
    pub(super) fn take_idle_asked(&mut self, asked: usize) -> Option<Stack> {
        if asked != self.asked || asked == 0 {
            return None;
        }
        let pool = &mut self.recent;
        let stack = pool.take_idle()?;
        self.idle_bytes -= pool.stack_size();
        Some(stack)
    }

    /// The pools, the least recently used first.
    pub(super) fn least_recently_used_first(&self) -> impl Iterator<Item = &StackPool> {
        let recent = Some(&self.recent).filter(|pool| !is_stand_in(pool));
        self.older.iter().chain(recent)
    }

    /// Keeps `stack` for reuse if the bounds allow it, freeing the least
    /// recently used sizes' idle stacks to make room; frees it otherwise.
    #[inline]
    pub(super) fn give_back(&mut self, stack: Stack) {
        let size = stack.len();
        // The loop's case, tested field by field so that nothing but the
        // stack's two words is live: the recent pool is this size's and has
        // room, within the byte budget.
        let pool = &mut self.recent;
        if pool.stack_size() == size
            && pool.len() < pool.capacity()
            && self.idle_bytes + size <= SIZED_IDLE_BYTES
        {
            pool.give_back(stack);
            self.idle_bytes += size;
        } else {
            self.give_back_making_room(stack);
        }
    }

    /// [`give_back`](SizedPools::give_back) for a new size, or when the
    /// stacks kept fill the budget or their pool.
    #[cold]
    #[inline(never)]
    fn give_back_making_room(&mut self, stack: Stack) {
        let size = stack.len();
        if size > SIZED_IDLE_BYTES {
            return;
        }
        if self.touch(size).is_none() {
            if self.older.len() + 1 == MAX_SIZES {
                self.evict_oldest();
            }
            // Cannot fail: `size` is a stack's length, already valid and
            // rounded, so the pool keeps stacks of exactly this size.
            let Ok(pool) = StackPool::new(size) else {
                return;
            };
            self.make_recent(pool);
        }
        if self.recent.len() >= self.recent.capacity() {
            return;
        }
        // Free the other sizes' idle stacks, least recently used first,
        // until this one fits.
        while self.idle_bytes + size > SIZED_IDLE_BYTES {
            let Some(oldest) = self.older.first_mut() else {
                // Only this size is left, and its stacks fill the budget.
                return;
            };
            if oldest.take_idle().is_some() {
                self.idle_bytes -= oldest.stack_size();
            } else {
                // A size with no idle stack gives up its place.
                self.older.remove(0);
            }
        }
        self.recent.give_back(stack);
        self.idle_bytes += size;
    }

    /// Frees the least recently used size's pool and its idle stacks.
    fn evict_oldest(&mut self) {
        if !self.older.is_empty() {
            let oldest = self.older.remove(0);
            self.idle_bytes -= oldest.len() * oldest.stack_size();
        }
    }
}

/// Whether `pool` is the stand-in that [`SizedPools::recent`] holds before
/// any size was used: a default-size pool, a size no stack here has.
fn is_stand_in(pool: &StackPool) -> bool {
    pool.stack_size() == DEFAULT_STACK_SIZE
}
