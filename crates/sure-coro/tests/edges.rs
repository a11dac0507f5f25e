//! Soundness at the edges of a coroutine's life: user code that runs while
//! a coroutine is being dropped, or while the thread's locals are being
//! destroyed, never makes a safe program crash or use freed memory.
//!
//! Each program runs in a child process (see `common::child`) and must end
//! cleanly: a normal exit, or the exit code it asked for. The stages that
//! run this suite under AddressSanitizer run these children instrumented
//! too, so a use of freed memory that does not crash still fails there.

mod common;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

use common::UNWOUND_AT_THREAD_EXIT;
use common::child::{
    REACHED, assert_aborted_with, assert_exited_with, assert_survived, in_child, say, stderr,
    stdout,
};
use sure_coro::{Coroutine, with_thread_pool};

/// Prints `drop <name>` when dropped: the child's record of what ran.
struct SayOnDrop(&'static str);

impl Drop for SayOnDrop {
    fn drop(&mut self) {
        say(&format!("drop {}", self.0));
    }
}

/// Runs `child` on a thread of its own and waits for it, so that the
/// thread's locals are destroyed before the child process goes on.
fn on_a_thread(child: impl FnOnce() + Send + 'static) {
    std::thread::spawn(child)
        .join()
        .expect("the thread ends normally");
}

/// How many times `line` is on the child's stdout.
fn count(out: &std::process::Output, line: &str) -> usize {
    stdout(out).lines().filter(|l| *l == line).count()
}

// ---------------------------------------------------------------------------
// 1. `process::exit` inside a body runs the thread's thread-local destructors
// on the body's own stack: a coroutine kept in one is dropped while running.

thread_local! {
    static RUNNING: RefCell<Option<Coroutine>> = const { RefCell::new(None) };
    static RUNNING_CHILD: RefCell<Option<Coroutine>> = const { RefCell::new(None) };
}

#[test]
fn process_exit_in_a_body_kept_in_a_thread_local_exits_with_its_code() {
    let test = "process_exit_in_a_body_kept_in_a_thread_local_exits_with_its_code";
    let Some(out) = in_child(test, || {
        RUNNING.with(|slot| {
            *slot.borrow_mut() = Some(Coroutine::new(|_h| {
                let _on_stack = SayOnDrop("on the body's stack");
                say(REACHED);
                std::process::exit(7);
            }));
        });
        let _ = RUNNING.with(|slot| slot.borrow_mut().as_mut().unwrap().resume());
    }) else {
        return;
    };
    assert_exited_with(&out, 7);
    assert_eq!(
        count(&out, "drop on the body's stack"),
        0,
        "a running body is not unwound"
    );
}

#[test]
fn process_exit_in_a_nested_body_with_both_coroutines_in_thread_locals_exits_with_its_code() {
    let test =
        "process_exit_in_a_nested_body_with_both_coroutines_in_thread_locals_exits_with_its_code";
    let Some(out) = in_child(test, || {
        RUNNING.with(|slot| {
            *slot.borrow_mut() = Some(Coroutine::new(|_h| {
                let child = Coroutine::new(|_h| {
                    say(REACHED);
                    std::process::exit(9);
                });
                RUNNING_CHILD.with(|slot| {
                    *slot.borrow_mut() = Some(child);
                    let _ = slot.borrow_mut().as_mut().unwrap().resume();
                });
            }));
        });
        let _ = RUNNING.with(|slot| slot.borrow_mut().as_mut().unwrap().resume());
    }) else {
        return;
    };
    assert_exited_with(&out, 9);
}

// ---------------------------------------------------------------------------
// 2. A body suspended inside `LocalKey::with`, its coroutine kept in a
// thread-local: at thread exit the borrowed value may already be gone.

thread_local! {
    static KEPT: RefCell<Option<Coroutine>> = const { RefCell::new(None) };
    static NAMES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Uses the borrowed thread-local when dropped: after it was destroyed,
/// that would be a use of freed memory.
struct UsesNames<'a>(&'a RefCell<Vec<String>>);

impl Drop for UsesNames<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().push("unwound".to_owned());
        say(&format!("names: {}", self.0.borrow().len()));
    }
}

/// In a child: a body suspended inside `NAMES.with`, its coroutine kept in
/// `KEPT`, both first used before the thread's first coroutine (so
/// destroyed after sure's exit watch has fired). The exit must leak the
/// body, never unwind it against a destroyed value. With
/// `on_a_user_pooled_stack`, the coroutine takes a stack the user put in the
/// pool, so no stack is mapped for it: putting the pool back must have
/// prepared the thread (registered the exit watch) instead.
fn body_inside_names_is_leaked_at_thread_exit(test: &str, on_a_user_pooled_stack: bool) {
    let Some(out) = in_child(test, move || {
        on_a_thread(move || {
            NAMES.with(|names| names.borrow_mut().push("first".to_owned()));
            KEPT.with(|_| ());
            if on_a_user_pooled_stack {
                let stack = sure_stack::Stack::allocate_at_least(sure_stack::DEFAULT_STACK_SIZE)
                    .expect("a stack");
                with_thread_pool(|pool| pool.give_back(stack));
                assert_eq!(with_thread_pool(|pool| pool.len()), 1);
            }
            let mut co = Coroutine::new(|h| {
                NAMES.with(|names| {
                    let _uses = UsesNames(names);
                    h.suspend();
                });
            });
            if on_a_user_pooled_stack {
                assert_eq!(
                    with_thread_pool(|pool| pool.len()),
                    0,
                    "the coroutine took the pooled stack"
                );
            }
            let _ = co.resume();
            KEPT.with(|kept| *kept.borrow_mut() = Some(co));
            say(REACHED);
        });
    }) else {
        return;
    };
    assert_survived(&out);
    assert!(
        !stdout(&out).contains("names:"),
        "the suspended body is leaked, never unwound against a destroyed value:\n{}",
        stdout(&out)
    );
}

#[test]
fn a_body_suspended_inside_a_thread_locals_with_is_leaked_at_thread_exit() {
    body_inside_names_is_leaked_at_thread_exit(
        "a_body_suspended_inside_a_thread_locals_with_is_leaked_at_thread_exit",
        false,
    );
}

#[test]
fn a_body_on_a_stack_the_user_pooled_is_leaked_at_thread_exit() {
    body_inside_names_is_leaked_at_thread_exit(
        "a_body_on_a_stack_the_user_pooled_is_leaked_at_thread_exit",
        true,
    );
}

#[test]
fn a_body_suspended_inside_with_thread_pool_is_leaked_at_thread_exit() {
    let test = "a_body_suspended_inside_with_thread_pool_is_leaked_at_thread_exit";
    let Some(out) = in_child(test, || {
        on_a_thread(|| {
            KEPT.with(|_| ());
            let mut co = Coroutine::new(|h| {
                with_thread_pool(|pool| {
                    let _in_pool = SayOnDrop("inside with_thread_pool");
                    h.suspend();
                    pool.set_capacity(3);
                });
            });
            let _ = co.resume();
            KEPT.with(|kept| *kept.borrow_mut() = Some(co));
            say(REACHED);
        });
    }) else {
        return;
    };
    assert_survived(&out);
    assert_eq!(count(&out, "drop inside with_thread_pool"), 0);
}

#[test]
fn a_body_suspended_inside_with_thread_pool_holds_the_pool_itself() {
    with_thread_pool(|pool| pool.clear());
    let mut co = Coroutine::new(|h| {
        with_thread_pool(|pool| {
            pool.set_capacity(5);
            h.suspend();
            pool.len()
        })
    });
    let _ = co.resume();
    // Meanwhile the thread-local holds a stand-in: coroutines still work.
    let _ = Coroutine::new(|h| h.suspend()).resume();
    assert_eq!(
        with_thread_pool(|pool| pool.capacity()),
        sure_stack::StackPool::DEFAULT_CAPACITY
    );
    let inside = co.resume().into_return();
    assert_eq!(
        inside,
        Some(0),
        "the lent pool did not see the stand-in's stack"
    );
    assert_eq!(
        with_thread_pool(|pool| pool.capacity()),
        5,
        "the pool came back"
    );
    assert_eq!(
        with_thread_pool(|pool| pool.len()),
        1,
        "with the stand-in's stack"
    );
    drop(co);
    assert_eq!(with_thread_pool(|pool| pool.len()), 2);
    with_thread_pool(|pool| pool.set_capacity(sure_stack::StackPool::DEFAULT_CAPACITY));
}

// ---------------------------------------------------------------------------
// 3. An unstarted coroutine whose closure's drop glue reaches the same
// coroutine again, through a thread-local, while thread exit drops it.

thread_local! {
    static HOLDER: RefCell<Option<Coroutine>> = const { RefCell::new(None) };
    static SIBLINGS: RefCell<Vec<Coroutine>> = const { RefCell::new(Vec::new()) };
    static POOL_CHECK: PoolCheck = const { PoolCheck };
}

/// Resumes the coroutine in `HOLDER` when dropped.
struct ResumeHolder;

impl Drop for ResumeHolder {
    fn drop(&mut self) {
        HOLDER.with(|holder| {
            if let Some(co) = holder.borrow_mut().as_mut() {
                let _ = co.resume();
            }
        });
    }
}

/// At thread exit, after `SIBLINGS` is gone: takes two idle stacks from the
/// pool and says whether they are the same one (a stack pooled twice).
struct PoolCheck;

impl Drop for PoolCheck {
    fn drop(&mut self) {
        let (a, b) = with_thread_pool(|pool| (pool.take_idle(), pool.take_idle()));
        let same = matches!((&a, &b), (Some(a), Some(b)) if a.bottom() == b.bottom());
        // Never give a doubly pooled stack back: dropping both would unmap it twice.
        std::mem::forget((a, b));
        say(if same {
            "pool: a stack pooled twice"
        } else {
            "pool: distinct stacks"
        });
    }
}

#[test]
fn an_unstarted_coroutine_reached_again_while_its_closure_drops_is_released_once() {
    let test = "an_unstarted_coroutine_reached_again_while_its_closure_drops_is_released_once";
    let Some(out) = in_child(test, || {
        on_a_thread(|| {
            HOLDER.with(|_| ());
            let mut popper = Coroutine::new(|h| {
                SIBLINGS.with(|siblings| {
                    h.suspend();
                    // Pops the unstarted coroutine whose drop resumed us.
                    drop(siblings.borrow_mut().pop());
                    say("popped the sibling");
                });
            });
            with_thread_pool(|pool| pool.clear());
            POOL_CHECK.with(|_| ());
            let _ = popper.resume();
            HOLDER.with(|holder| *holder.borrow_mut() = Some(popper));
            let reach = ResumeHolder;
            let unstarted = Coroutine::new(move |_h| {
                let _reach = &reach;
            });
            SIBLINGS.with(|siblings| siblings.borrow_mut().push(unstarted));
            say(REACHED);
        });
    }) else {
        return;
    };
    assert_survived(&out);
    assert_eq!(count(&out, "popped the sibling"), 1, "{}", stdout(&out));
    assert_eq!(
        count(&out, "pool: distinct stacks"),
        1,
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------
// 4. A destructor on the coroutine's stack moves the `Coroutine` out of its
// thread-local while the coroutine's drop unwinds it.

thread_local! {
    static PARKED: RefCell<Option<Coroutine>> = const { RefCell::new(None) };
}

/// In a child: parks a suspended coroutine in `PARKED`, suspended inside
/// `PARKED.with` with a guard that calls `on_unwind` on the slot, then lets
/// the thread exit: `PARKED` (registered after the thread's first
/// coroutine) is destroyed while sure still unwinds, so the guard runs
/// against the slot that holds the coroutine being dropped. The child must
/// end normally, having unwound the body once.
fn released_once_when_moved_during_its_own_unwind(
    test: &str,
    on_unwind: fn(&RefCell<Option<Coroutine>>),
) {
    let Some(out) = in_child(test, || park_and_exit(on_unwind)) else {
        return;
    };
    assert_survived(&out);
    assert_eq!(
        count(&out, "unwinding"),
        usize::from(UNWOUND_AT_THREAD_EXIT)
    );
}

/// The child side of [`released_once_when_moved_during_its_own_unwind`].
fn park_and_exit(on_unwind: fn(&RefCell<Option<Coroutine>>)) {
    struct OnUnwind<'a>(
        &'a RefCell<Option<Coroutine>>,
        fn(&RefCell<Option<Coroutine>>),
    );
    impl Drop for OnUnwind<'_> {
        fn drop(&mut self) {
            say("unwinding");
            (self.1)(self.0);
        }
    }
    on_a_thread(move || {
        let mut co = Coroutine::new(move |h| {
            PARKED.with(|parked| {
                let _guard = OnUnwind(parked, on_unwind);
                h.suspend();
            });
        });
        let _ = co.resume();
        PARKED.with(|parked| *parked.borrow_mut() = Some(co));
        say(REACHED);
    });
}

#[test]
fn a_coroutine_dropped_again_from_its_own_unwind_is_released_once() {
    released_once_when_moved_during_its_own_unwind(
        "a_coroutine_dropped_again_from_its_own_unwind_is_released_once",
        |parked| drop(parked.borrow_mut().take()),
    );
}

#[test]
fn a_coroutine_replaced_in_its_slot_during_its_own_unwind_is_released_once() {
    released_once_when_moved_during_its_own_unwind(
        "a_coroutine_replaced_in_its_slot_during_its_own_unwind_is_released_once",
        |parked| {
            let mut other = Coroutine::new(|h| {
                let _other = SayOnDrop("the replacement's body");
                h.suspend();
            });
            let _ = other.resume();
            drop(parked.replace(Some(other)));
        },
    );
}

#[test]
fn a_coroutine_forgotten_during_its_own_unwind_is_released_once() {
    released_once_when_moved_during_its_own_unwind(
        "a_coroutine_forgotten_during_its_own_unwind_is_released_once",
        |parked| std::mem::forget(parked.borrow_mut().take()),
    );
}

#[test]
fn a_coroutine_resumed_from_its_own_unwind_refuses_to_switch_to_it() {
    let test = "a_coroutine_resumed_from_its_own_unwind_refuses_to_switch_to_it";
    let Some(out) = in_child(test, || {
        park_and_exit(|parked| {
            let mut co = parked
                .borrow_mut()
                .take()
                .expect("the coroutine being dropped");
            let _ = co.resume();
            std::mem::forget(co);
        })
    }) else {
        return;
    };
    if UNWOUND_AT_THREAD_EXIT {
        // The refusal is a panic while the unwind's own is in flight, so
        // the process aborts with its message, rather than switching onto
        // the stack being unwound.
        assert_aborted_with(
            &out,
            "resumed a coroutine that is running, or being dropped",
        );
    } else {
        // Leaked at thread exit: nothing unwinds, so nothing resumes.
        assert_survived(&out);
        assert_eq!(count(&out, "unwinding"), 0);
    }
}

// ---------------------------------------------------------------------------
// 5. Several coroutines in one thread-local `Vec`: one's unwind drops a
// sibling, whose bytes the `Vec`'s own drop then visits again.

thread_local! {
    static FLEET: RefCell<Vec<Coroutine>> = const { RefCell::new(Vec::new()) };
}

/// Builds two coroutines suspended inside `FLEET.with`, each with a guard
/// that pops (and drops) a sibling, and parks both in `FLEET`.
fn fill_fleet() {
    struct PopSibling<'a>(&'a RefCell<Vec<Coroutine>>);
    impl Drop for PopSibling<'_> {
        fn drop(&mut self) {
            say("unwinding a fleet member");
            drop(self.0.borrow_mut().pop());
        }
    }
    for _ in 0..2 {
        let mut co = Coroutine::new(|h| {
            FLEET.with(|fleet| {
                let _pop = PopSibling(fleet);
                h.suspend();
            });
        });
        let _ = co.resume();
        FLEET.with(|fleet| fleet.borrow_mut().push(co));
    }
}

/// Runs `fill_fleet` in a child, on a thread of its own or on the child's
/// main thread (whose locals `in_child`'s closing `process::exit` destroys),
/// and checks that the fleet was leaked, not unwound.
fn fleet_is_leaked(test: &str, on_its_own_thread: bool) {
    let fill = || {
        FLEET.with(|_| ());
        fill_fleet();
        say(REACHED);
    };
    let Some(out) = in_child(test, || {
        if on_its_own_thread {
            on_a_thread(fill);
        } else {
            fill();
        }
    }) else {
        return;
    };
    assert_survived(&out);
    assert_eq!(count(&out, "unwinding a fleet member"), 0);
}

#[test]
fn siblings_in_a_thread_local_vec_are_leaked_at_thread_exit() {
    fleet_is_leaked(
        "siblings_in_a_thread_local_vec_are_leaked_at_thread_exit",
        true,
    );
}

#[test]
fn siblings_in_a_thread_local_vec_are_leaked_at_process_exit() {
    fleet_is_leaked(
        "siblings_in_a_thread_local_vec_are_leaked_at_process_exit",
        false,
    );
}

// ---------------------------------------------------------------------------
// 6. `into_stack` in a destructor during an outer panic keeps the process
// alive, as `Drop` does, when the body panics while being unwound.

#[test]
fn into_stack_during_an_outer_panic_leaks_the_bodys_payload_as_drop_does() {
    let test = "into_stack_during_an_outer_panic_leaks_the_bodys_payload_as_drop_does";
    let Some(out) = in_child(test, || {
        struct IntoStackOnDrop(Option<Coroutine>);
        impl Drop for IntoStackOnDrop {
            fn drop(&mut self) {
                let stack = self.0.take().unwrap().into_stack();
                say(&format!("got a stack of {} bytes", stack.len()));
            }
        }
        let mut co = Coroutine::yielding(|h| {
            let _ = panic::catch_unwind(AssertUnwindSafe(|| h.suspend()));
            panic!("the body panics while being unwound");
        });
        let _ = co.resume();
        say(REACHED);
        let outer = panic::catch_unwind(AssertUnwindSafe(|| {
            let _into_stack = IntoStackOnDrop(Some(co));
            panic!("outer panic");
        }));
        assert!(outer.is_err());
    }) else {
        return;
    };
    assert_survived(&out);
    assert_eq!(
        count(
            &out,
            &format!("got a stack of {} bytes", sure_coro::DEFAULT_STACK_SIZE)
        ),
        1,
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------------------
// 7. Forgetting a coroutine suspended in the middle of its drop's unwind
// leaves this thread panicking: documented, not undefined.

#[test]
fn forgetting_a_coroutine_suspended_mid_unwind_leaves_the_thread_panicking() {
    let test = "forgetting_a_coroutine_suspended_mid_unwind_leaves_the_thread_panicking";
    let Some(out) = in_child(test, || {
        struct SuspendOnDrop<'a, 'h>(&'a mut sure_coro::SuspendHandle<'h, (), u32>);
        impl Drop for SuspendOnDrop<'_, '_> {
            fn drop(&mut self) {
                // A destructor may suspend during an unwind.
                self.0.suspend_with(1);
            }
        }
        let mut co = Coroutine::yielding(|h| {
            let _guard = SuspendOnDrop(h);
            panic!("the body panics");
        });
        assert_eq!(co.resume(), sure_coro::CoroutineResult::Yield(1));
        say(REACHED);
        std::mem::forget(co);
        say(&format!("panicking: {}", std::thread::panicking()));
    }) else {
        return;
    };
    assert_survived(&out);
    assert_eq!(count(&out, "panicking: true"), 1, "{}", stdout(&out));
}

// ---------------------------------------------------------------------------
// 8. A thread's idle stacks are freed at its exit, both pools' of them, and
// a stack given back after that (by a thread-local destructor that runs
// later) is freed, not kept.

thread_local! {
    /// Registered before the pools' closer, so destroyed after it.
    static DROPPED_LATE: RefCell<Option<Coroutine<(), (), usize>>> = const { RefCell::new(None) };
}

/// The bottom of the stack the body runs on (found from the stack
/// pointer: AddressSanitizer moves locals to a heap of its own).
fn own_stack_bottom() -> usize {
    sure_stack::stack_bounds(sure_context::stack_pointer())
        .expect("a coroutine runs on a registered stack")
        .start
}

#[test]
fn a_threads_idle_stacks_are_freed_at_its_exit() {
    let test = "a_threads_idle_stacks_are_freed_at_its_exit";
    let Some(out) = in_child(test, || {
        let (sender, bottoms) = std::sync::mpsc::channel();
        on_a_thread(move || {
            DROPPED_LATE.with(|late| {
                let mut co = Coroutine::new(|_h| own_stack_bottom());
                let bottom = co.resume().into_return().expect("it returns");
                sender.send(bottom).unwrap();
                *late.borrow_mut() = Some(co);
            });
            let mut held = Vec::new();
            for i in 0..4 {
                let mut co = if i % 2 == 0 {
                    Coroutine::new(|_h| own_stack_bottom())
                } else {
                    sure_coro::Builder::new()
                        .stack_size(512 * 1024)
                        .build(|_h| own_stack_bottom())
                        .unwrap()
                };
                sender.send(co.resume().into_return().unwrap()).unwrap();
                held.push(co);
            }
            // Back to the pools: two default-size stacks, two of 512 KiB.
            drop(held);
            assert_eq!(with_thread_pool(|pool| pool.len()), 2);
            say(REACHED);
        });
        let bottoms: Vec<usize> = bottoms.iter().collect();
        assert_eq!(bottoms.len(), 5);
        for bottom in bottoms {
            // Nothing else maps stacks in this process meanwhile.
            assert_eq!(
                sure_stack::stack_bounds(bottom),
                None,
                "the stack at {bottom:#x} is still mapped after its thread's exit"
            );
        }
        say("all freed");
    }) else {
        return;
    };
    assert_survived(&out);
    assert_eq!(count(&out, "all freed"), 1, "{}", stdout(&out));
}
