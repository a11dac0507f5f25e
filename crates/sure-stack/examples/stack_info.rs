//! Allocates a stack, prints its layout, and reuses stacks through a pool.
//!
//! Run with `cargo run -p sure-stack --example stack_info`.

use sure_stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, Stack, StackError, StackPool, page_size};

fn main() -> Result<(), StackError> {
    println!("page size:          {} bytes", page_size());
    println!("minimum stack size: {MIN_STACK_SIZE} bytes");
    println!("default stack size: {DEFAULT_STACK_SIZE} bytes");

    let stack = Stack::allocate_at_least(DEFAULT_STACK_SIZE)?;
    let guard = stack.guard();
    println!("\n{stack:?}");
    println!("  top (stack pointer starts here): {:p}", stack.top());
    println!("  bottom (lowest usable byte):     {:p}", stack.bottom());
    println!(
        "  guard page:                      {:#x}..{:#x} ({} bytes, PROT_NONE)",
        guard.start,
        guard.end,
        guard.len()
    );
    println!("  usable:                          {} bytes", stack.len());

    match Stack::allocate_at_least(0) {
        Err(err) => println!("\nallocate_at_least(0): {err}"),
        Ok(_) => unreachable!("a zero-sized stack is rejected"),
    }

    let mut pool = StackPool::with_capacity(DEFAULT_STACK_SIZE, 4)?;
    pool.give_back(stack);
    let reused = pool.take()?;
    println!(
        "\npool: took back {:p} (same stack, no system call); {} idle of capacity {}",
        reused.bottom(),
        pool.len(),
        pool.capacity()
    );
    pool.give_back(reused);
    println!("{pool:?}");
    Ok(())
}
