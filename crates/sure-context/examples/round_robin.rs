//! A tiny round-robin scheduler over the raw `sure-context` API: tasks on
//! their own stacks hand control directly to the next one (symmetric
//! transfer), and only the scheduler starts a task.
//!
//! That last rule is `ExecutionContext::setup`'s *link* rule. The context
//! that first switches into a new one is its link: backtraces and debuggers
//! walk from the task into the frame saved there, so it must stay at its
//! address, holding a saved frame, whenever the task runs, for as long as
//! the task lives. A task that finishes cannot promise that, and a task
//! that is running has no saved frame at all. The scheduler's own context,
//! on the main stack, can: it is suspended from its first switch into a
//! task until the last task exits to it. So a task whose turn would pass to
//! a task that has not started yet passes it to the scheduler instead, which
//! starts that task; from then on the tasks switch among themselves.
//!
//! Run with `cargo run -p sure-context --example round_robin`. The test
//! `tests/round_robin.rs` runs this same scheduler and checks that a
//! backtrace taken in the last task reaches [`run_round_robin`].

use std::cell::Cell;
use std::ptr::NonNull;

use sure_context::{ExecutionContext, Trampoline};

/// Each task's stack.
const STACK_BYTES: usize = 64 * 1024;

/// Where a task is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Set up, never entered: only the scheduler may switch to it.
    New,
    /// Entered; running or suspended in its own yield.
    Started,
    /// Exited; never switched to again.
    Finished,
}

/// Everything the tasks share: one context per task and one for the
/// scheduler. Tasks reach it through a pointer, never from inside their
/// trampoline object (whose `run` holds `&mut self` all along).
struct Scheduler<'a> {
    /// The scheduler's context on the main stack: the link of every task.
    main: ExecutionContext,
    /// One context per task.
    contexts: Box<[ExecutionContext]>,
    /// One state per task.
    states: Box<[Cell<State>]>,
    /// What a task does at each step: `step(task, n)`.
    step: &'a dyn Fn(usize, usize),
}

impl Scheduler<'_> {
    /// The next task after `id`, in turn, that has not finished (`id`
    /// itself when it is the only one); `None` once all have.
    fn next_unfinished(&self, id: usize) -> Option<usize> {
        let count = self.contexts.len();
        (1..=count)
            .map(|turn| (id + turn) % count)
            .find(|&next| self.states[next].get() != State::Finished)
    }

    /// Where task `id` hands control: straight to the next task if that one
    /// has started; to the scheduler if it is new (the scheduler starts it,
    /// and so becomes its link) or if no task is left.
    fn successor(&self, id: usize) -> &ExecutionContext {
        match self.next_unfinished(id) {
            Some(next) if self.states[next].get() == State::Started => &self.contexts[next],
            _ => &self.main,
        }
    }

    /// Called by the running task `id` between steps: hands control to its
    /// successor, and returns when some execution hands control back.
    fn yield_from(&self, id: usize) {
        if self.next_unfinished(id) == Some(id) {
            return; // the only task left: keep running
        }
        // SAFETY: `contexts[id]` is the running task's own context. The
        // successor is suspended: a started task other than this one in its
        // own yield, or the scheduler in its switch into the task it started
        // last. Each is continued once per suspension: only the running
        // execution switches, and it leaves right after.
        unsafe { self.contexts[id].switch_to(self.successor(id)) }
    }

    /// Called by task `id` when it is done: marks it finished and leaves
    /// for its successor for good.
    fn finish(&self, id: usize) -> ! {
        self.states[id].set(State::Finished);
        // SAFETY: the successor is suspended, as in `yield_from`. The task's
        // stack holds nothing with a destructor (`Task::run` keeps only
        // references and integers on it), and its context is never switched
        // to again: it is marked finished.
        unsafe { ExecutionContext::exit_to(self.successor(id)) }
    }
}

/// One task's trampoline object: only its number, its length and a pointer
/// to the shared state.
struct Task<'a> {
    /// The task's number, its index in the scheduler's tables.
    id: usize,
    /// How many steps it runs.
    steps: usize,
    /// The shared state, which outlives every task.
    scheduler: *const Scheduler<'a>,
}

impl Trampoline for Task<'_> {
    fn run(&mut self) -> ! {
        // SAFETY: `run_round_robin` keeps the scheduler alive, at its
        // address and otherwise untouched, until every task has finished;
        // all its mutable state is in cells, so shared references suffice.
        let scheduler = unsafe { &*self.scheduler };
        for n in 0..self.steps {
            (scheduler.step)(self.id, n);
            scheduler.yield_from(self.id);
        }
        scheduler.finish(self.id)
    }
}

/// Runs one task per entry of `steps`, task `id` calling `step(id, n)` for
/// `n` in `0..steps[id]`, round robin, and returns once all have finished.
///
/// `inline(never)` so that it is a frame of its own, for the test to find in
/// a backtrace taken inside a task.
#[inline(never)]
pub fn run_round_robin(steps: &[usize], step: &dyn Fn(usize, usize)) {
    let count = steps.len();
    let mut stacks: Vec<Box<[u128]>> = (0..count)
        .map(|_| vec![0; STACK_BYTES / 16].into_boxed_slice())
        .collect();
    let mut shared = Scheduler {
        main: ExecutionContext::new(),
        contexts: (0..count).map(|_| ExecutionContext::new()).collect(),
        states: (0..count).map(|_| Cell::new(State::New)).collect(),
        step,
    };
    // From here on the scheduler is reached only through this pointer, by
    // the tasks and by us.
    let scheduler: *mut Scheduler<'_> = &mut shared;
    let mut tasks: Vec<Task<'_>> = steps
        .iter()
        .enumerate()
        .map(|(id, &steps)| Task {
            id,
            steps,
            scheduler,
        })
        .collect();
    for (id, (task, stack)) in tasks.iter_mut().zip(&mut stacks).enumerate() {
        let region = NonNull::slice_from_raw_parts(
            NonNull::from(&mut **stack).cast::<u8>(),
            stack.len() * 16,
        );
        // SAFETY: the stacks, the tasks and the scheduler live until this
        // function returns, after every task has finished, and nothing else
        // touches the stacks or the tasks meanwhile. No task runs yet, so
        // writing the context is not seen by anyone.
        unsafe { (*scheduler).contexts[id] = ExecutionContext::setup(region, NonNull::from(task)) };
    }
    // SAFETY: no task runs yet, and nothing writes the scheduler any more:
    // shared references suffice from here on.
    let scheduler = unsafe { &*scheduler };

    // Start each task in turn. Control comes back here when a task's
    // successor is a task not started yet, and at the end, when the last
    // task has exited.
    for id in 0..count {
        scheduler.states[id].set(State::Started);
        // SAFETY: `main` is this execution's context, and it stays in place
        // and suspended whenever a task runs (only a task switches to it,
        // and then no task runs until it switches back): the link rule.
        // Task `id` is fresh from `setup`: tasks start in order, and only
        // here.
        unsafe { scheduler.main.switch_to(&scheduler.contexts[id]) };
    }
    assert!(
        scheduler
            .states
            .iter()
            .all(|state| state.get() == State::Finished),
        "the last task exits to the scheduler only once all are done"
    );
}

#[allow(dead_code)] // the test includes this file for `run_round_robin` only
fn main() {
    let steps = [2, 3, 4];
    run_round_robin(&steps, &|id, n| println!("task {id} step {n}"));
    println!("all {} tasks finished", steps.len());
}
