//! [`is_inside_coroutine`]: where the caller is running.

/// Whether the caller is running on a coroutine's stack rather than its
/// thread's own: inside the body of a [`Coroutine`](crate::Coroutine) (or of
/// a generator), at any depth of calls.
///
/// For library code that must behave differently inside a coroutine, say
/// to refuse blocking calls or to suspend instead. It reads where the stack
/// pointer is against the thread's own stack bounds, which sure records when
/// the thread creates its first coroutine: a thread-local load and two
/// comparisons, and nothing on the resume or suspend path.
///
/// ```
/// use sure_coro::{Coroutine, is_inside_coroutine};
///
/// assert!(!is_inside_coroutine());
/// let mut co = Coroutine::new(|_h| is_inside_coroutine());
/// assert_eq!(co.resume().into_return(), Some(true));
/// assert!(!is_inside_coroutine());
/// ```
///
/// Any stack that is not the thread's own counts, once the thread has
/// created a coroutine: a task of a scheduler built on `sure-context` alone
/// on such a thread, or a signal handler on an alternate stack, is "inside"
/// too. A thread that never created a coroutine is never inside one. Linux
/// and Windows record the bounds (Windows when the thread first creates a
/// coroutine on its own stack: its thread environment block follows the
/// running stack); elsewhere this returns `false`.
#[inline]
pub fn is_inside_coroutine() -> bool {
    let Some((lo, hi)) = sure_stack::overflow::thread_stack() else {
        return false;
    };
    !(lo..hi).contains(&sure_context::stack_pointer())
}
