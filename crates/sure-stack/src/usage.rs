//! How deep a stack has been used, read from which of its pages are
//! resident ([`Stack::peak_usage`]), and forgetting it again
//! ([`Stack::discard_below`]).
//!
//! A stack is mapped lazily: a page costs memory from the first time it is
//! written, and stays resident until the mapping is freed (or the pages are
//! discarded). Since a stack grows down from its top, the lowest resident
//! page marks the deepest point any code on it has reached: `mincore(2)`
//! tells (on Windows, `QueryWorkingSetEx`), with one system call per 256
//! pages, and nothing has to be done beforehand (no painting, no guard
//! marks), so a stack nobody asks about costs nothing. The figure is exact to within a page: the deepest byte
//! touched lies somewhere in that page.

use std::io;

use crate::mapping::{BATCH, discard, resident};
use crate::{Stack, page_size};

impl Stack {
    /// The most bytes of this stack that have been used: from its
    /// [`top`](Stack::top) down to the start of the lowest page that is
    /// resident, a multiple of [`page_size`] (0 if none is). Whatever ran on
    /// the stack used at most this much, and more than this less a page.
    ///
    /// The figure covers every use since the stack was mapped, or since its
    /// pages were last discarded ([`discard_below`](Stack::discard_below)):
    /// a stack from a pool holds the pages of all its earlier users. Pages
    /// the system swapped out do not count (the figure can then be low);
    /// on a kernel that backs a stack with huge pages (those before 6.7
    /// may, for a stack of 2 MiB or more, if transparent huge pages are
    /// `always` on) it is a huge page's worth high.
    ///
    /// ```
    /// use sure_stack::Stack;
    ///
    /// let stack = Stack::allocate_at_least(256 * 1024)?;
    /// assert_eq!(stack.peak_usage()?, 0);
    /// // Write 20,000 bytes below the top, as a deep call would.
    /// // SAFETY: the bytes are inside the stack, which nothing runs on.
    /// unsafe { stack.top().as_ptr().sub(20_000).write(1) };
    /// let peak = stack.peak_usage()?;
    /// assert!(peak >= 20_000 && peak < 20_000 + sure_stack::page_size());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// What `mincore(2)` (`QueryWorkingSetEx`) reported if it failed (it
    /// does not, for a mapping that exists, short of the kernel running out
    /// of memory: `EAGAIN`).
    pub fn peak_usage(&self) -> io::Result<usize> {
        let page = page_size();
        let top = self.top().as_ptr() as usize;
        let mut at = self.bottom().as_ptr() as usize;
        while at < top {
            let pages = ((top - at) / page).min(BATCH);
            // SAFETY: `at..at + pages * page` is page aligned and inside this
            // stack's mapping, which `self` keeps alive.
            let mut flags = unsafe { resident(at, pages)? };
            if let Some(first) = flags.position(|resident| resident) {
                return Ok(top - (at + first * page));
            }
            at += pages * page;
        }
        Ok(0)
    }

    /// Gives back to the system the pages of this stack that lie wholly
    /// below `addr`: they read as zeros afterwards and cost no memory until
    /// written again, and [`peak_usage`](Stack::peak_usage) no longer
    /// counts them. For a stack taken from a pool, before measuring its
    /// next user alone; or to return the memory an idle stack holds.
    ///
    /// # Safety
    /// Nothing below `addr` on this stack is in use: no execution that runs
    /// or is suspended on it has data there (pass a suspended execution's
    /// saved stack pointer, or the top of an idle stack), and no reference
    /// points there.
    ///
    /// # Errors
    /// What `madvise(2)` (`VirtualFree` or `VirtualAlloc`) reported if it
    /// failed.
    pub unsafe fn discard_below(&self, addr: *const u8) -> io::Result<()> {
        let bottom = self.bottom().as_ptr() as usize;
        let end = (addr as usize).clamp(bottom, self.top().as_ptr() as usize);
        let len = (end - bottom) / page_size() * page_size();
        if len == 0 {
            return Ok(());
        }
        // SAFETY: `bottom..bottom + len` is page aligned and inside this
        // stack's mapping, and the caller guarantees that nothing there is
        // in use, so replacing it with zero pages changes nothing anyone
        // reads.
        unsafe { discard(bottom, len) }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Stack, page_size};

    #[test]
    fn the_peak_is_the_lowest_page_written_and_discarding_forgets_it() {
        let page = page_size();
        let stack = Stack::allocate_at_least(64 * page).expect("a stack");
        let top = stack.top().as_ptr();
        for depth in [1, page, 3 * page + 1, 40 * page] {
            // SAFETY: inside the stack, which nothing runs on.
            unsafe { top.sub(depth).write(7) };
            let peak = stack.peak_usage().expect("mincore");
            assert_eq!(peak, depth.next_multiple_of(page), "{depth}");
        }
        // Forget all but the top two pages, of which only the top one was
        // written: the peak is that page's again.
        // SAFETY: nothing uses the stack.
        unsafe { stack.discard_below(top.wrapping_sub(2 * page)) }.expect("madvise");
        assert_eq!(stack.peak_usage().expect("mincore"), page);
        // SAFETY: as above; a discarded page reads as zeros.
        assert_eq!(unsafe { top.sub(40 * page).read() }, 0);
    }

    #[test]
    fn a_stack_of_more_than_one_batch_of_pages() {
        // 600 pages, read 256 at a time from the bottom: a page near the
        // top is found by the third call, one at the bottom by the first.
        let page = page_size();
        let stack = Stack::allocate_at_least(600 * page).expect("a stack");
        // SAFETY: inside the stack, which nothing runs on.
        unsafe { stack.top().as_ptr().sub(page + 1).write(1) };
        assert_eq!(stack.peak_usage().expect("mincore"), 2 * page);
        // SAFETY: as above.
        unsafe { stack.bottom().as_ptr().add(5).write(1) };
        assert_eq!(stack.peak_usage().expect("mincore"), stack.len());
    }
}
