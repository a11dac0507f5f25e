//! A generator: the Fibonacci numbers as an endless iterator, of which
//! ordinary iterator adapters take what they need.
//!
//! Run with `cargo run -p sure-coro --example fibonacci`.

use sure_coro::Generator;

fn main() {
    let fibonacci = Generator::new(|h| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            h.suspend_with(a);
            (a, b) = (b, a.wrapping_add(b));
        }
    });
    let first: Vec<u64> = fibonacci.take(15).collect();
    println!("{first:?}");
    assert_eq!(first[14], 377);

    // The body above never returns; dropping the generator unwinds its
    // stack. A finite one ends the iteration by returning.
    let even_below_100: Vec<u64> = Generator::new(|h| {
        let (mut a, mut b) = (0u64, 1u64);
        while a < 100 {
            if a % 2 == 0 {
                h.suspend_with(a);
            }
            (a, b) = (b, a + b);
        }
    })
    .collect();
    println!("even Fibonacci numbers below 100: {even_below_100:?}");
    assert_eq!(even_below_100, [0, 2, 8, 34]);
}
