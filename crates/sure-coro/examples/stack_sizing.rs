//! How big a stack to give a coroutine, measured rather than guessed, and
//! what to do when no size is safe: a recursive-descent parser of nested
//! sums such as `(1+(2+(3)))`, whose stack use grows with the nesting.
//!
//! 1. Measure: parse at a few depths on a stack of its own and read
//!    `peak_stack_usage`, to get this build's bytes per nesting level.
//! 2. Size: for the deepest input expected, ask `Builder::stack_size` for
//!    twice the figure that predicts (the rule in sure-coro's docs).
//! 3. Grow: when the depth is the input's to choose, let the parser grow
//!    its stack with `maybe_grow`; a 64 KiB coroutine then parses 100,000
//!    levels.
//!
//! Run with `cargo run -p sure-coro --example stack_sizing` (and with
//! `--release` to see how much less a release build needs).

use sure_coro::{Builder, MIN_STACK_SIZE, Stack, maybe_grow, pooled_stack_usage};

/// Parses `sum := term ('+' term)*`, `term := digit | '(' sum ')'`.
struct Parser<'t> {
    text: &'t [u8],
    at: usize,
    /// Whether each nesting level checks the stack and grows it.
    grows: bool,
}

impl Parser<'_> {
    fn sum(&mut self) -> Result<u64, String> {
        let mut total = self.term()?;
        while self.text.get(self.at) == Some(&b'+') {
            self.at += 1;
            total += self.term()?;
        }
        Ok(total)
    }

    fn term(&mut self) -> Result<u64, String> {
        match self.text.get(self.at) {
            Some(&digit @ b'0'..=b'9') => {
                self.at += 1;
                Ok(u64::from(digit - b'0'))
            }
            Some(b'(') => {
                self.at += 1;
                let inner = if self.grows {
                    // Less than 32 KiB left: go on in a fresh 256 KiB segment.
                    maybe_grow(32 * 1024, 256 * 1024, || self.sum())?
                } else {
                    self.sum()?
                };
                if self.text.get(self.at) != Some(&b')') {
                    return Err(format!("expected ')' at byte {}", self.at));
                }
                self.at += 1;
                Ok(inner)
            }
            _ => Err(format!("expected a digit or '(' at byte {}", self.at)),
        }
    }
}

/// `(1+(1+(...(1)...)))`, `depth` levels deep: its sum is `depth`.
fn nested(depth: usize) -> String {
    let mut text = "(1+".repeat(depth - 1);
    text.push_str("(1");
    text.push_str(&")".repeat(depth));
    text
}

/// Parses `text` in a coroutine on a fresh stack of `size` bytes (so that
/// no earlier user's pages count) and returns the sum and the coroutine's
/// peak stack usage. The body borrows `text`: a scoped coroutine.
fn parse_measured(text: &str, size: usize, grows: bool) -> (Result<u64, String>, usize) {
    let stack = Stack::allocate_at_least(size).expect("a stack");
    Builder::new()
        .stack(stack)
        .build_scoped(|_h| {
            Parser {
                text: text.as_bytes(),
                at: 0,
                grows,
            }
            .sum()
        })
        .expect("room for the parser")
        .scope(|mut co| {
            let sum = co.resume().into_return().expect("the parser returns");
            (sum, co.peak_stack_usage().expect("mincore"))
        })
}

fn main() {
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };

    // 1. Measure: the slope of peak usage against depth. Usage is counted
    // in whole pages, so the two depths are far apart: each figure may be
    // up to a page off, and the slope by two pages over the span.
    let (shallow, deep) = (100, 600);
    let (sum, at_shallow) = parse_measured(&nested(shallow), 8 << 20, false);
    assert_eq!(sum, Ok(shallow as u64));
    let (sum, at_deep) = parse_measured(&nested(deep), 8 << 20, false);
    assert_eq!(sum, Ok(deep as u64));
    let per_level = (at_deep - at_shallow) / (deep - shallow);
    let base = at_shallow - shallow * per_level;
    println!(
        "{build} build: {per_level} bytes per nesting level, {base} bytes besides \
         (peak {at_shallow} bytes at depth {shallow}, {at_deep} at depth {deep})"
    );
    assert!(per_level > 0 && at_deep > at_shallow);

    // 2. Size: twice the prediction for the deepest input expected.
    let expected = 1_000;
    let size = (2 * (base + expected * per_level)).max(MIN_STACK_SIZE);
    println!("for inputs up to {expected} levels deep: Builder::stack_size({size})");
    let (sum, used) = parse_measured(&nested(expected), size, false);
    assert_eq!(sum, Ok(expected as u64));
    println!("  at depth {expected} it used {used} of those {size} bytes");
    // The prediction, give or take what whole pages hide from the slope.
    let page = sure_stack::page_size();
    let slack = 2 * page * (expected - shallow) / (deep - shallow) + page;
    assert!(
        used <= size / 2 + slack,
        "the prediction holds: {used} bytes used, {} predicted",
        size / 2
    );

    // 3. Grow: no size is safe for any depth, so grow instead. A 64 KiB
    // coroutine parses 100,000 levels, taking 256 KiB segments as it needs.
    let depth = 100_000;
    let text = nested(depth);
    let sum = Builder::new()
        .stack_size(64 * 1024)
        .build_scoped(|_h| {
            Parser {
                text: text.as_bytes(),
                at: 0,
                grows: true,
            }
            .sum()
        })
        .expect("a stack")
        .scope(|mut co| co.resume().into_return().expect("the parser returns"));
    assert_eq!(sum, Ok(depth as u64));
    println!("with maybe_grow, a 64 KiB coroutine parsed {depth} levels");

    // The segments went back to this thread's pools, whose high-water
    // marks say how deep each size of stack was used.
    for (size, peak) in pooled_stack_usage().expect("mincore") {
        println!(
            "  pooled {} KiB stacks: used up to {} KiB",
            size / 1024,
            peak / 1024
        );
    }
    // An unclosed parenthesis is an error, not a crash.
    let (sum, _) = parse_measured("(1+(2", 1 << 20, true);
    println!("\"(1+(2\": {}", sum.expect_err("unbalanced"));
}
