//! What bounds a round trip on this x86-64 core: loads that read a value a
//! store wrote a few cycles earlier (store-to-load forwarding).
//!
//! Every loop below is hand-written asm timed with the time-stamp counter
//! and converted to core cycles by a loop of 100 dependent adds (one cycle
//! each). It prints cycles per iteration of:
//!
//! - `forwarded`: 4 stores, then 4 loads of the same addresses;
//! - `not forwarded`: 4 stores, then 4 loads of another cache line;
//! - `bare switch`: a resume + suspend round trip of the x86-64 switch
//!   between two stacks, as sure-context inlines it, and nothing else: each
//!   side saves its stack pointer, resume address, rbx and rbp and restores
//!   the other's, so a round trip has 8 forwarded loads.
//!
//! On the 2-core AMD EPYC (Zen 3) virtual machine of the README's figures:
//! forwarded 3.97, not forwarded 2.65, bare switch 7.95. Forwarded loads
//! go at about one per cycle, against the three loads per cycle of the
//! rest, and the bare switch takes as many cycles as it has forwarded
//! loads. `round_trip`'s paired figures (2.77 ns for both sure and
//! corosensei at 3.22 GHz: 9 cycles) are one cycle above that floor: the
//! resume's checks (is the body suspended, take its context, did it
//! finish) and the bench's `black_box`.
//!
//! Elsewhere than x86-64 System V it says so and measures nothing.

fn main() {
    #[cfg(all(target_arch = "x86_64", unix))]
    probes::run();
    #[cfg(not(all(target_arch = "x86_64", unix)))]
    println!("forwarding: these probes are x86-64 System V asm; nothing measured on this target");
}

#[cfg(all(target_arch = "x86_64", unix))]
mod probes {
    use core::arch::naked_asm;
    use core::arch::x86_64::_rdtsc;

    /// Iterations of each timed run.
    const ITERATIONS: u64 = 1_000_000;

    /// Timed runs of each probe; the fastest counts.
    const RUNS: usize = 15;

    /// A probe: `(scratch, iterations, stack top)`; the scratch is 128
    /// bytes, 64-byte aligned.
    type Probe = unsafe extern "C" fn(*mut u64, u64, *mut u8);

    /// 128 bytes of scratch on a cache-line boundary.
    #[repr(C, align(64))]
    struct Scratch([u64; 16]);

    /// Prints each probe's cycles per iteration.
    pub(super) fn run() {
        let mut scratch = Scratch([0; 16]);
        // The bare switch's second stack: it only holds a stack pointer
        // there, but a signal arriving meanwhile would use it.
        let mut stack = vec![0u8; 64 * 1024];
        // SAFETY: one past the end of the buffer, rounded down to 16.
        let top = unsafe { stack.as_mut_ptr().add(stack.len()) };
        let top = top.wrapping_sub(top as usize % 16);
        let ticks_per_cycle = fastest(adds, &mut scratch, top) / 100.0;
        let probes: [(&str, Probe); 3] = [
            ("forwarded", forwarded),
            ("not forwarded", not_forwarded),
            ("bare switch", bare_switch),
        ];
        println!(
            "core clock: {:.2} GHz, if the time-stamp counter runs at the nominal {:.2} GHz",
            1.0 / ticks_per_cycle * nominal_ghz().unwrap_or(f64::NAN),
            nominal_ghz().unwrap_or(f64::NAN),
        );
        for (name, probe) in probes {
            let cycles = fastest(probe, &mut scratch, top) / ticks_per_cycle;
            println!("{name:>13}: {cycles:5.2} cycles per iteration");
        }
    }

    /// Time-stamp counter ticks per iteration of the fastest of `RUNS` runs.
    fn fastest(probe: Probe, scratch: &mut Scratch, top: *mut u8) -> f64 {
        let mut best = u64::MAX;
        for _ in 0..RUNS {
            let start = ticks();
            // SAFETY: the scratch is 128 aligned bytes, and `top` the
            // 16-aligned top of a stack nothing else uses.
            unsafe { probe(scratch.0.as_mut_ptr(), ITERATIONS, top) };
            best = best.min(ticks() - start);
        }
        best as f64 / ITERATIONS as f64
    }

    /// The time-stamp counter.
    fn ticks() -> u64 {
        // SAFETY: `rdtsc` reads a counter every x86-64 CPU has; it touches
        // no memory.
        unsafe { _rdtsc() }
    }

    /// The clock the kernel reports for the first CPU, which on this
    /// machine's virtual CPUs is the time-stamp counter's rate.
    fn nominal_ghz() -> Option<f64> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        let line = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?;
        let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
        Some(mhz / 1000.0)
    }

    /// 100 dependent adds per iteration: 100 cycles.
    ///
    /// # Safety
    /// Touches no memory.
    #[unsafe(naked)]
    unsafe extern "C" fn adds(_: *mut u64, _: u64, _: *mut u8) {
        naked_asm!(
            "2:",
            ".rept 100",
            "add rax, 1", // each waits for the last
            ".endr",
            "dec rsi",
            "jnz 2b",
            "ret",
        )
    }

    /// 4 stores to the scratch's first line, then 4 loads from
    /// `$loaded`'s offsets, a probe named `$name`.
    macro_rules! stores_then_loads {
        ($(#[$doc:meta])* $name:ident, $($loaded:literal),+) => {
            $(#[$doc])*
            ///
            /// # Safety
            /// `scratch` is 128 writable bytes.
            #[unsafe(naked)]
            unsafe extern "C" fn $name(scratch: *mut u64, _: u64, _: *mut u8) {
                naked_asm!(
                    "2:",
                    "mov [rdi], rax",
                    "mov [rdi + 8], rax",
                    "mov [rdi + 16], rax",
                    "mov [rdi + 24], rax",
                    $(concat!("mov rcx, [rdi + ", $loaded, "]"),)+
                    "dec rsi",
                    "jnz 2b",
                    "ret",
                )
            }
        };
    }

    stores_then_loads!(
        /// 4 stores, then 4 loads of what they stored, each forwarded from
        /// its store.
        forwarded, "0", "8", "16", "24"
    );
    stores_then_loads!(
        /// 4 stores, then 4 loads from the next cache line, never stored
        /// to: from the cache, not from a store.
        not_forwarded, "64", "72", "80", "88"
    );

    /// The switch of both sides: saves this side's stack pointer, the
    /// resume address in rax, rbx and rbp in the context at rdi, restores
    /// rbx and rbp from the one at rsi, whose stack pointer is in rdx, and
    /// jumps to its resume address.
    macro_rules! switch {
        () => {
            concat!(
                "mov [rdi], rsp\n", // save ours,
                "mov [rdi + 8], rax\n",
                "mov [rdi + 16], rbx\n",
                "mov [rdi + 24], rbp\n",
                "mov rbx, [rsi + 16]\n", // restore theirs
                "mov rbp, [rsi + 24]\n",
                "mov rsp, rdx\n",
                "jmp [rsi + 8]\n",
            )
        };
    }

    /// A resume + suspend round trip per iteration between this stack and
    /// one at `top`, with the scratch as the two contexts (the resumer's at
    /// +0, the body's at +32: stack pointer, resume address, rbx, rbp).
    /// Each side finds the contexts through rbx and rbp, which the switch
    /// has just restored, as compiled code does; the resumer counts in rbp.
    ///
    /// # Safety
    /// `scratch` is 64 writable bytes and `top` the 16-aligned top of a
    /// stack nothing else uses.
    #[unsafe(naked)]
    unsafe extern "C" fn bare_switch(scratch: *mut u64, _: u64, top: *mut u8) {
        naked_asm!(
            "push rbp",
            "push rbx",
            "mov rbx, rdi",        // resumer: rbx = the contexts
            "mov rbp, rsi",        // and rbp = iterations left
            "mov [rdi + 32], rdx", // body: stack pointer = top,
            "lea rax, [rip + 4f]",
            "mov [rdi + 40], rax", // resume address = its loop,
            "mov [rdi + 48], rdi", // rbx = the contexts,
            "lea rax, [rdi + 32]",
            "mov [rdi + 56], rax", // rbp = its own context
            "2:",                  // resume:
            "lea rsi, [rbx + 32]", // the body's context
            "mov rdx, [rsi]",      // its stack pointer
            "mov rdi, rbx",        // ours
            "lea rax, [rip + 3f]",
            switch!(),
            "3:", // back from the body
            "dec rbp",
            "jnz 2b",
            "pop rbx",
            "pop rbp",
            "ret",
            "4:",             // the body: suspend
            "mov rdx, [rbx]", // the resumer's stack pointer
            "mov rsi, rbx",   // its context
            "mov rdi, rbp",   // ours
            "lea rax, [rip + 5f]",
            switch!(),
            "5:", // resumed
            "jmp 4b",
        )
    }
}
