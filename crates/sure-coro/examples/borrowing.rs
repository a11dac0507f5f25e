//! Coroutines whose bodies borrow: a tokenizer that hands out slices of the
//! text it was given, and a body that hands work to threads borrowing its
//! caller's data. `Coroutine` asks for `'static`; `ScopedCoroutine` runs
//! inside a scope that ends it, so borrowing is sound even if the scope's
//! closure stops early.
//!
//! Run with `cargo run -p sure-coro --example borrowing`.

use std::sync::Mutex;

use sure_coro::{ScopedCoroutine, SuspendHandle};

/// Suspends with every word of `text`, and with every word inside
/// brackets, recursively: "a [b [c]] d" gives a, b, c, d.
fn words<'t>(text: &'t str, h: &mut SuspendHandle<'_, (), &'t str>) {
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[start..];
        if let Some(inner) = rest.strip_prefix('[') {
            let close = matching_bracket(inner);
            words(&inner[..close], h);
            rest = &inner[close + 1..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '[')
                .unwrap_or(rest.len());
            h.suspend_with(&rest[..end]);
            rest = &rest[end..];
        }
    }
}

/// Where the `]` that closes an opening bracket just before `text` is.
fn matching_bracket(text: &str) -> usize {
    let mut depth = 0;
    for (at, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' if depth == 0 => return at,
            ']' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

fn main() {
    // A generator over borrowed text, yielding borrowed slices of it.
    let text = String::from("stackful [coroutines [that borrow]] their input");
    let tokens: Vec<&str> = ScopedCoroutine::yielding(|h| words(&text, h)).scope(|co| co.collect());
    println!("{tokens:?}");
    assert_eq!(
        tokens,
        ["stackful", "coroutines", "that", "borrow", "their", "input"]
    );

    // Stop early: the scope ends the tokenizer (unwinding its stack).
    let first_two: Vec<&str> =
        ScopedCoroutine::yielding(|h| words(&text, h)).scope(|co| co.take(2).collect());
    assert_eq!(first_two, ["stackful", "coroutines"]);

    // A body that spreads work over threads borrowing the caller's data,
    // suspending while they run. If the scope's closure never resumes it,
    // the end of the scope unwinds the body out of `thread::scope`, which
    // joins the threads before anything they borrow goes away.
    let lengths = Mutex::new(Vec::new());
    ScopedCoroutine::new(|h| {
        std::thread::scope(|s| {
            for token in &tokens {
                s.spawn(|| lengths.lock().unwrap().push(token.len()));
            }
            h.suspend();
        });
    })
    .scope(|mut co| {
        let _ = co.resume(); // the threads are started; the body is suspended
    });
    let mut lengths = lengths.into_inner().unwrap();
    lengths.sort_unstable();
    println!("word lengths: {lengths:?}");
    let mut expected: Vec<usize> = tokens.iter().map(|token| token.len()).collect();
    expected.sort_unstable();
    assert_eq!(lengths, expected);
}
