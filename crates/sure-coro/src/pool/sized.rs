//! The pools of a thread's stacks of sizes other than the default: a
//! bounded set of [`StackPool`]s, one per size, the least recently used
//! freed first.
//!
//! The pool of the size used last is kept apart from the others, with the
//! size last asked of it and a hot slot in front of it, so that a program
//! creating coroutines of one size in a loop neither rounds that size again
//! nor searches: it pays a comparison or two more per create and drop than
//! the default size does. Only a change of size searches the others (at
//! most [`MAX_SIZES`]).

use sure_stack::{DEFAULT_STACK_SIZE, Stack, StackPool};

use super::hot::HotSlot;
use super::{MAX_SIZES, SIZED_IDLE_BYTES};

/// Idle stacks of sizes other than the default, one [`StackPool`] per
/// size, within [`MAX_SIZES`] and [`SIZED_IDLE_BYTES`].
pub(super) struct SizedPools {
    /// The pool of the size last taken from or given back to (used); until
    /// there is one, a stand-in ([`is_stand_in`]), so that the fast paths
    /// test a size and not also whether there is a pool.
    recent: StackPool,
    /// An idle stack of the recent pool's size in front of it, or room for
    /// one. On only while the bounds leave room for it: its stack, held or
    /// not, is counted in `idle_bytes`, and leaves the recent pool one
    /// stack short of its capacity, so that a stack given back fits into
    /// an empty slot without a count to check. It is also on only while
    /// the thread's pools are open, so that a stack given back into it
    /// needs no state to check: the slot never turns on for the stand-in,
    /// a pool of a size is made only for a stack given back to open pools,
    /// and the closer replaces these pools with new ones.
    hot: HotSlot,
    /// The other sizes' pools, the least recently used first. A size keeps
    /// its place while its pool is empty (its stacks are in use), until
    /// evicted.
    older: Vec<StackPool>,
    /// The usable bytes of every idle stack here, and of the room kept for
    /// the hot slot's while it is on and empty.
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
            hot: HotSlot::off(),
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
        self.turn_hot_off();
        let replaced = std::mem::replace(&mut self.recent, pool);
        if !is_stand_in(&replaced) {
            self.older.push(replaced);
        }
        self.turn_hot_on();
        Some(&mut self.recent)
    }

    /// Moves the hot slot's stack into the recent pool and gives up the
    /// room kept for it: the pool then holds every idle stack of its size
    /// (to be measured, replaced or freed).
    pub(super) fn turn_hot_off(&mut self) {
        if !self.hot.is_on() {
            return;
        }
        let size = self.recent.stack_size();
        match self.take_hot() {
            // Kept: the pool had room for it, and its bytes are counted.
            Some(stack) => self.recent.give_back(stack),
            None => self.idle_bytes -= size,
        }
        self.hot.turn(false);
    }

    /// Turns the hot slot on for the recent pool (not the stand-in): with
    /// the pool's newest stack in it, already counted, if the pool has one;
    /// else empty, if the bounds leave room for one more stack of its size,
    /// counted from now on.
    pub(super) fn turn_hot_on(&mut self) {
        if self.hot.is_on() || is_stand_in(&self.recent) {
            return;
        }
        if let Some(stack) = self.recent.take_idle() {
            self.hot.turn(true);
            self.hot.put(stack);
            return;
        }
        let size = self.recent.stack_size();
        if self.recent.capacity() > 0 && self.idle_bytes + size <= SIZED_IDLE_BYTES {
            self.idle_bytes += size;
            self.hot.turn(true);
        }
    }

    /// The hot slot's stack.
    #[inline(always)]
    fn take_hot(&self) -> Option<Stack> {
        // SAFETY: the slot holds only stacks of the recent pool's size:
        // `make_recent` turns it off (emptying it) before the recent pool
        // changes.
        unsafe { self.hot.take(self.recent.stack_size()) }
    }

    /// The recent pool's newest idle stack: the hot slot's, or its own.
    #[inline(always)]
    fn take_recent(&mut self) -> Option<Stack> {
        if let Some(stack) = self.take_hot() {
            return Some(stack);
        }
        let size = self.recent.stack_size();
        let stack = self.recent.take_idle()?;
        self.idle_bytes -= size;
        Some(stack)
    }

    /// The most recently returned idle stack of `size` usable bytes, the
    /// rounded length of `asked`.
    #[inline]
    pub(super) fn take_idle(&mut self, size: usize, asked: usize) -> Option<Stack> {
        self.touch(size)?;
        let stack = self.take_recent()?;
        self.asked = asked;
        Some(stack)
    }

    /// An idle stack from the recent pool if `asked` is the size last asked
    /// of it: no rounding, one comparison.
    #[inline]
    pub(super) fn take_idle_asked(&mut self, asked: usize) -> Option<Stack> {
        if asked != self.asked || asked == 0 {
            return None;
        }
        self.take_recent()
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
        if let Err(stack) = self.give_hot(stack) {
            self.give_back_making_room(stack);
        }
    }

    /// Keeps `stack` in the hot slot if the recent pool is its size's and
    /// the slot is on and empty (the loop's case); hands it back otherwise.
    #[inline(always)]
    pub(super) fn give_hot(&self, stack: Stack) -> Result<(), Stack> {
        if self.recent.stack_size() == stack.len() {
            self.hot.give(stack)
        } else {
            Err(stack)
        }
    }

    /// [`give_back`](SizedPools::give_back) for another size than the
    /// recent one, or when the hot slot holds a stack (which makes way for
    /// this newer one and is kept in the pool below, within the bounds) or
    /// is off (the bounds left no room for it).
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
        let stack = if self.hot.is_on() {
            let older = self.take_hot();
            self.hot.put(stack);
            match older {
                Some(older) => older,
                None => return,
            }
        } else {
            stack
        };
        // Room in the pool, beside the hot slot's.
        if self.recent.len() + usize::from(self.hot.is_on()) >= self.recent.capacity() {
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
        // Within the bounds now, the slot may be on again.
        self.turn_hot_on();
    }

    /// Frees the least recently used size's pool and its idle stacks.
    fn evict_oldest(&mut self) {
        if !self.older.is_empty() {
            let oldest = self.older.remove(0);
            self.idle_bytes -= oldest.len() * oldest.stack_size();
        }
    }
}

impl Drop for SizedPools {
    /// Frees the hot slot's stack with the recent pool's.
    fn drop(&mut self) {
        self.turn_hot_off();
    }
}

/// Whether `pool` is the stand-in that [`SizedPools::recent`] holds before
/// any size was used: a default-size pool, a size no stack here has.
fn is_stand_in(pool: &StackPool) -> bool {
    pool.stack_size() == DEFAULT_STACK_SIZE
}
