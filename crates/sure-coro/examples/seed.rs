//! The smallest coroutine: two steps, one suspend.
//!
//! Run with `cargo run -p sure-coro --example seed`.

use sure_coro::Coroutine;

fn main() {
    let mut co = Coroutine::new(|h| {
        println!("step 1");
        h.suspend();
        println!("step 2");
    });
    let _ = co.resume(); // prints step 1, returns at the suspend
    assert!(!co.is_completed());
    let _ = co.resume(); // prints step 2, the body returns
    assert!(co.is_completed());
}
