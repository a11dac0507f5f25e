//! A pipeline of coroutines: a producer of lines, a filter that keeps the
//! interesting ones, and a consumer that counts words. Each stage is a
//! coroutine driven by the next one downstream, so no stage buffers more
//! than one item and each reads as straight-line code.
//!
//! Run with `cargo run -p sure-coro --example pipeline`.

use sure_coro::{Coroutine, CoroutineResult, Generator};

const TEXT: &str = "\
# a comment
stackful coroutines suspend from any depth
# another comment

each stage here is one coroutine
the consumer pulls and the producer yields";

fn main() {
    // Stage 1: produce lines.
    let producer = Generator::new(|h| {
        for line in TEXT.lines() {
            h.suspend_with(line);
        }
    });

    // Stage 2: drop comments and blank lines, pulling from the producer on
    // its own stack.
    let filter = Generator::new(move |h| {
        for line in producer {
            if !line.is_empty() && !line.starts_with('#') {
                h.suspend_with(line.to_uppercase());
            }
        }
    });

    // Stage 3: a consumer that is pushed lines one at a time (values in),
    // reports a running word count (values out), and returns the total.
    let mut consumer = Coroutine::with_input(|h, first: Option<String>| {
        let mut words = 0;
        let mut next = first;
        while let Some(line) = next {
            words += line.split_whitespace().count();
            println!("consumer got: {line}");
            next = h.suspend_with(words);
        }
        words
    });

    for line in filter {
        match consumer.resume_with(Some(line)) {
            CoroutineResult::Yield(so_far) => println!("  words so far: {so_far}"),
            CoroutineResult::Return(_) => unreachable!("the consumer runs until it gets None"),
        }
    }
    let total = consumer
        .resume_with(None)
        .into_return()
        .expect("the consumer finishes");
    println!("total words: {total}");
    assert_eq!(total, 19);
}
