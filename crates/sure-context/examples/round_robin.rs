//! A tiny round-robin scheduler over the raw `sure-context` API: three tasks
//! on their own stacks hand control directly to the next one (symmetric
//! transfer, no central loop), and the last task to finish returns to main.
//!
//! Run with `cargo run -p sure-context --example round_robin`.

use std::ptr::NonNull;

use sure_context::{ExecutionContext, Trampoline};

const TASKS: usize = 3;
const STACK_BYTES: usize = 64 * 1024;

/// Everything the tasks share: one context per task and one for main.
struct Scheduler {
    main: ExecutionContext,
    contexts: [ExecutionContext; TASKS],
    finished: [bool; TASKS],
}

impl Scheduler {
    /// The next task after `id` that has not finished, if any.
    fn next_runnable(&self, id: usize) -> Option<usize> {
        (1..=TASKS)
            .map(|step| (id + step) % TASKS)
            .find(|&next| !self.finished[next])
    }
}

/// One task: prints a few steps, yielding to the next task after each.
struct Task {
    id: usize,
    steps: usize,
    scheduler: *mut Scheduler,
}

impl Task {
    /// Hands control to the next runnable task and returns when some task
    /// hands it back.
    fn yield_to_next(&mut self) {
        let scheduler = self.scheduler;
        // SAFETY: the scheduler outlives every task; only the running task
        // touches it. The target is suspended (fresh, or saved by its own
        // yield), and this task saves itself into its own slot.
        unsafe {
            if let Some(next) = (*scheduler).next_runnable(self.id)
                && next != self.id
            {
                let own: *mut ExecutionContext = &mut (*scheduler).contexts[self.id];
                (*own).switch_to(&(*scheduler).contexts[next]);
            }
        }
    }
}

impl Trampoline for Task {
    fn run(&mut self) -> ! {
        for step in 0..self.steps {
            println!("task {} step {step}", self.id);
            self.yield_to_next();
        }
        println!("task {} done", self.id);
        let scheduler = self.scheduler;
        // SAFETY: as in `yield_to_next`. This task is finished and holds
        // nothing to drop, so it exits: to the next runnable task, or to
        // main when it is the last one.
        unsafe {
            (*scheduler).finished[self.id] = true;
            match (*scheduler).next_runnable(self.id) {
                Some(next) => ExecutionContext::exit_to(&(*scheduler).contexts[next]),
                None => ExecutionContext::exit_to(&(*scheduler).main),
            }
        }
    }
}

fn main() {
    let mut stacks: Vec<Vec<u128>> = (0..TASKS).map(|_| vec![0; STACK_BYTES / 16]).collect();
    let mut scheduler = Box::new(Scheduler {
        main: ExecutionContext::new(),
        contexts: Default::default(),
        finished: [false; TASKS],
    });
    let scheduler_ptr: *mut Scheduler = &mut *scheduler;
    let mut tasks: Vec<Task> = (0..TASKS)
        .map(|id| Task {
            id,
            steps: id + 2,
            scheduler: scheduler_ptr,
        })
        .collect();
    for (id, (task, stack)) in tasks.iter_mut().zip(&mut stacks).enumerate() {
        let region = NonNull::slice_from_raw_parts(
            NonNull::from(stack.as_mut_slice()).cast::<u8>(),
            stack.len() * 16,
        );
        // SAFETY: the stacks and tasks live until main returns, after every
        // task has finished; nothing else uses the stacks.
        let context = unsafe { ExecutionContext::setup(region, NonNull::from(task)) };
        // SAFETY: no task runs yet.
        unsafe { (*scheduler_ptr).contexts[id] = context };
    }
    // SAFETY: task 0 is fresh; main saves itself and is continued by the
    // last task's exit.
    unsafe {
        let main_ctx: *mut ExecutionContext = &mut (*scheduler_ptr).main;
        (*main_ctx).switch_to(&(*scheduler_ptr).contexts[0]);
    }
    assert!(scheduler.finished.iter().all(|&done| done));
    println!("all {TASKS} tasks finished");
}
