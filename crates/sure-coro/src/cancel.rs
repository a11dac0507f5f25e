//! [`Cancelled`]: the unwind that ends a suspended coroutine early.

use std::any::Any;

/// The panic payload a suspended coroutine's stack unwinds with when it is
/// cancelled: by [`Coroutine::force_unwind`](crate::Coroutine::force_unwind),
/// or by dropping it. It runs every destructor on the stack, then the
/// coroutine is completed.
///
/// Code on a coroutine's stack that catches panics (a fiber server's
/// `catch_unwind` around each request, say) must let a cancellation go on,
/// or the coroutine is resumed again to finish it ([`is_cancellation`]
/// tells it apart from a real panic). Nothing outside this crate can make
/// one.
///
/// ```
/// use std::panic::{self, AssertUnwindSafe};
/// use sure_coro::Coroutine;
///
/// let mut server = Coroutine::new(|h| loop {
///     let request = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
///     if let Err(payload) = request {
///         if sure_coro::is_cancellation(&*payload) {
///             panic::resume_unwind(payload); // being cancelled: go on
///         }
///         eprintln!("a request failed; serving the next one");
///     }
/// });
/// let _ = server.resume();
/// server.force_unwind();
/// assert!(server.is_completed());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Cancelled;

/// Whether a panic payload (as `catch_unwind` returns it) is a
/// [`Cancelled`]: caught on a coroutine's stack, that is the coroutine's own
/// cancellation, which must be let go on with [`std::panic::resume_unwind`].
pub fn is_cancellation(payload: &(dyn Any + Send)) -> bool {
    payload.is::<Cancelled>()
}
