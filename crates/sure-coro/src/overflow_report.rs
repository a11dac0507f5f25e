//! How a coroutine's stack overflow is worded: sure-stack's handler reports
//! it (see `sure_stack::overflow`), in the words set here when a thread
//! creates its first coroutine.

use sure_stack::overflow::OverflowReport;

/// The words of a coroutine's overflow, naming `Builder::stack_size`.
pub(crate) static COROUTINE_REPORT: OverflowReport = OverflowReport {
    what: "a coroutine's stack",
    stack: "the coroutine's stack of ",
    advice: "build the coroutine with a bigger stack, for example \
             sure_coro::Builder::new().stack_size(",
    advice_end: ").build(body)",
    sizing: "to size it, run the coroutine on input that fits and read \
             Coroutine::peak_stack_usage(); ask for twice the deepest figure seen (a debug build \
             may need several times a release build's), or let deep recursion grow the stack \
             with sure_coro::maybe_grow",
    fatal: "coroutine stack overflow",
};
