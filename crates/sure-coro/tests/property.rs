//! Model-based random testing: random programs over a few coroutines (some
//! built inside other coroutines' bodies) run for real and in a simple model,
//! and every observable must agree: which coroutine runs each step, the
//! values passed in and out, panics and their payloads, the `is_started` /
//! `is_completed` states, and which destructors ran, in which order.
//!
//! Each coroutine's body is a script, a list of [`Step`]s, walked by a small
//! interpreter. Scopes are real: a guard pushed by the script is a local of a
//! recursive call of the interpreter, and a call one level deeper is another
//! recursive call with its own guard, so the guards live in real frames at
//! real depth on the coroutine's stack and an unwind drops them innermost
//! first.
//!
//! The cases come from a fixed list of seeds; `SURE_PROPTEST_SEED=<seed>`
//! (decimal or `0x` hex) runs only that one, and `SURE_PROPTEST_CASES=<n>`
//! changes how many run. A failing case prints its seed, its program and the
//! operations it got through.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use sure_coro::{Builder, Coroutine, CoroutineResult, SuspendHandle};

/// The coroutines under test: a `u32` in, a `u32` out, a `u32` returned.
type Co = Coroutine<u32, u32, u32>;
type Handle<'h> = SuspendHandle<'h, u32, u32>;

/// How many cases run by default.
const DEFAULT_CASES: u64 = 8000;
/// Where the fixed seed list starts; case `i` uses `SEED_BASE + i * SEED_STEP`.
const SEED_BASE: u64 = 0x5EED_C0DE_2024_0001;
const SEED_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// Most coroutines in one program, nested ones included.
const MAX_COROUTINES: u64 = 8;
/// Most steps in one script before its final `Return` / `Panic`.
const MAX_STEPS: u64 = 24;
/// Deepest nesting of coroutines built inside bodies (0 = top level).
const MAX_NEST: u32 = 3;
/// Deepest recursion of `Call` inside one body.
const MAX_CALL_DEPTH: usize = 5;
/// Size of the non-default stacks some coroutines get from `Builder`.
const SMALL_STACK: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// Random numbers: splitmix64, no dependencies.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    fn value(&mut self) -> u32 {
        self.below(1000) as u32
    }

    /// Picks one of `choices` with probability proportional to its weight.
    fn weighted<T: Copy>(&mut self, choices: &[(u64, T)]) -> T {
        let total: u64 = choices.iter().map(|&(w, _)| w).sum();
        let mut roll = self.below(total);
        for &(weight, choice) in choices {
            if roll < weight {
                return choice;
            }
            roll -= weight;
        }
        unreachable!("roll below the total weight")
    }
}

// ---------------------------------------------------------------------------
// Programs.

/// One step of a coroutine's script.
#[derive(Clone, Debug)]
enum Step {
    /// `suspend_with(value)`; the next resume's input is recorded.
    Suspend(u32),
    /// Opens a scope holding guard `id` (a local of a new interpreter frame).
    PushGuard(u32),
    /// Closes the innermost scope, which the generator guarantees is a
    /// `PushGuard` scope: its guard drops.
    PopGuard,
    /// Calls one level deeper: a new frame holding guard `id`.
    Call(u32),
    /// Returns from the innermost `Call`, closing every scope opened in it.
    Ret,
    /// `panic_any(Boom(payload))`.
    Panic(u32),
    /// The body returns this value (from any depth).
    Return(u32),
    /// Builds a coroutine inside this body; it lives in the body's root
    /// frame until dropped.
    CreateChild(Rc<Spec>),
    /// Resumes a child built earlier by this body. With `catch`, a panic
    /// out of it is caught and recorded; without, it unwinds this body too.
    ResumeChild { kid: u32, input: u32, catch: bool },
    /// Drops a child built earlier by this body.
    DropChild(u32),
}

/// Which stack a coroutine gets.
#[derive(Clone, Copy, Debug)]
enum StackKind {
    /// `Coroutine::with_input`: a default stack from the thread's pool.
    Pooled,
    /// `Builder::stack_size(SMALL_STACK)`: a stack from the thread's pool of
    /// that size.
    Small,
}

/// A coroutine: its id, the guard its closure captures, its stack and its
/// script, which always ends with `Return` or `Panic`.
#[derive(Debug)]
struct Spec {
    id: u32,
    captured: u32,
    stack: StackKind,
    script: Vec<Step>,
}

/// What the top level does.
#[derive(Clone, Debug)]
enum Op {
    Create(Rc<Spec>),
    Resume { co: u32, input: u32 },
    Drop(u32),
}

/// The end of one resume, as the resumer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Yield(u32),
    Return(u32),
    /// The body panicked with `Boom(payload)`.
    Panic(u32),
    /// The resume panicked because the coroutine was already completed.
    ResumedCompleted,
}

/// What the running program records, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    /// Coroutine `co` got `input` (at its start, or out of a suspend).
    Got { co: u32, input: u32 },
    /// Coroutine `co` is about to run step `pc` of its script.
    Step { co: u32, pc: u32 },
    /// Guard `id` was dropped.
    Dropped(u32),
    /// A body's resume of its child ended so (for a panic: only if caught).
    Kid { kid: u32, outcome: Outcome },
    /// The child's state right after that resume.
    KidState {
        kid: u32,
        started: bool,
        completed: bool,
    },
    /// A body dropped its child.
    KidDropped(u32),
}

/// The payload of a script's `Panic`.
#[derive(Debug)]
struct Boom(u32);

// ---------------------------------------------------------------------------
// Generating programs.

struct Gen<'r> {
    rng: &'r mut Rng,
    next_co: u32,
    next_guard: u32,
    /// Coroutines still to be had in this program.
    budget: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    Suspend,
    PushGuard,
    PopGuard,
    Call,
    Ret,
    Panic,
    Create,
    Resume,
    DropKid,
}

impl Gen<'_> {
    fn guard(&mut self) -> u32 {
        self.next_guard += 1;
        self.next_guard
    }

    fn spec(&mut self, nest: u32) -> Rc<Spec> {
        debug_assert!(self.budget > 0);
        self.budget -= 1;
        let id = self.next_co;
        self.next_co += 1;
        let captured = self.guard();
        let stack = if self.rng.chance(1, 4) {
            StackKind::Small
        } else {
            StackKind::Pooled
        };
        let mut script = Vec::new();
        // The open scopes, innermost last: true for a `Call` frame.
        let mut scopes: Vec<bool> = Vec::new();
        // Children built and not dropped yet.
        let mut kids: Vec<u32> = Vec::new();
        let len = self.rng.below(MAX_STEPS + 1);
        for _ in 0..len {
            let depth = scopes.iter().filter(|&&frame| frame).count();
            let mut choices = vec![(6, Kind::Suspend), (3, Kind::PushGuard), (1, Kind::Panic)];
            if scopes.last() == Some(&false) {
                choices.push((3, Kind::PopGuard));
            }
            if depth < MAX_CALL_DEPTH {
                choices.push((2, Kind::Call));
            }
            if depth > 0 {
                choices.push((2, Kind::Ret));
            }
            if self.budget > 0 && nest < MAX_NEST && kids.len() < 3 {
                choices.push((3, Kind::Create));
            }
            if !kids.is_empty() {
                choices.push((8, Kind::Resume));
                choices.push((1, Kind::DropKid));
            }
            let step = match self.rng.weighted(&choices) {
                Kind::Suspend => Step::Suspend(self.rng.value()),
                Kind::PushGuard => {
                    scopes.push(false);
                    Step::PushGuard(self.guard())
                }
                Kind::PopGuard => {
                    scopes.pop();
                    Step::PopGuard
                }
                Kind::Call => {
                    scopes.push(true);
                    Step::Call(self.guard())
                }
                Kind::Ret => {
                    while scopes.pop() == Some(false) {}
                    Step::Ret
                }
                Kind::Panic => {
                    script.push(Step::Panic(self.rng.value()));
                    break;
                }
                Kind::Create => {
                    let child = self.spec(nest + 1);
                    kids.push(child.id);
                    Step::CreateChild(child)
                }
                Kind::Resume => Step::ResumeChild {
                    kid: kids[self.rng.below(kids.len() as u64) as usize],
                    input: self.rng.value(),
                    catch: self.rng.chance(3, 4),
                },
                Kind::DropKid => {
                    let at = self.rng.below(kids.len() as u64) as usize;
                    Step::DropChild(kids.remove(at))
                }
            };
            script.push(step);
        }
        if !matches!(script.last(), Some(Step::Panic(_))) {
            let end = if self.rng.chance(1, 5) {
                Step::Panic(self.rng.value())
            } else {
                Step::Return(self.rng.value())
            };
            script.push(end);
        }
        Rc::new(Spec {
            id,
            captured,
            stack,
            script,
        })
    }
}

fn gen_program(rng: &mut Rng) -> Vec<Op> {
    let budget = 1 + rng.below(MAX_COROUTINES);
    let ops = 4 + rng.below(40);
    let mut g = Gen {
        rng,
        next_co: 0,
        next_guard: 0,
        budget,
    };
    // The model runs along, so that most resumes go to coroutines that can
    // still run; a few go to completed ones on purpose.
    let mut model = Model::default();
    let mut program = Vec::new();
    let mut alive: Vec<u32> = Vec::new();
    for _ in 0..ops {
        let runnable: Vec<u32> = alive
            .iter()
            .copied()
            .filter(|&id| model.state(id) != MState::Completed)
            .collect();
        let mut choices = Vec::new();
        if g.budget > 0 {
            choices.push((if runnable.is_empty() { 1 } else { 3 }, 0));
        }
        if !runnable.is_empty() {
            choices.push((14, 1));
        }
        if !alive.is_empty() {
            choices.push((1, 2));
            choices.push((1, 3));
        }
        if choices.is_empty() {
            break;
        }
        let op = match g.rng.weighted(&choices) {
            0 => {
                let spec = g.spec(0);
                alive.push(spec.id);
                Op::Create(spec)
            }
            1 => Op::Resume {
                co: runnable[g.rng.below(runnable.len() as u64) as usize],
                input: g.rng.value(),
            },
            2 => Op::Resume {
                co: alive[g.rng.below(alive.len() as u64) as usize],
                input: g.rng.value(),
            },
            _ => {
                let at = g.rng.below(alive.len() as u64) as usize;
                Op::Drop(alive.remove(at))
            }
        };
        model.apply(&op);
        program.push(op);
    }
    // Whatever is left is dropped, in a random order.
    while !alive.is_empty() {
        let at = g.rng.below(alive.len() as u64) as usize;
        program.push(Op::Drop(alive.remove(at)));
    }
    program
}

// ---------------------------------------------------------------------------
// The real thing: the interpreter running inside coroutine bodies.

/// Where events go, shared by the test and every body.
#[derive(Clone, Default)]
struct Recorder {
    events: Rc<RefCell<Vec<Event>>>,
    live_guards: Rc<Cell<usize>>,
}

impl Recorder {
    fn push(&self, event: Event) {
        self.events.borrow_mut().push(event);
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut self.events.borrow_mut())
    }

    fn guard(&self, id: u32) -> Guard {
        self.live_guards.set(self.live_guards.get() + 1);
        Guard {
            id,
            rec: self.clone(),
        }
    }
}

/// Records `Dropped(id)` when dropped.
struct Guard {
    id: u32,
    rec: Recorder,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.rec.push(Event::Dropped(self.id));
        self.rec.live_guards.set(self.rec.live_guards.get() - 1);
    }
}

/// How an interpreter frame ends.
#[derive(Debug)]
enum Flow {
    /// A `PopGuard`: the innermost `PushGuard` frame ends.
    PopGuard,
    /// A `Ret`: every frame up to the innermost `Call` frame ends.
    RetLevel,
    /// A `Return`: every frame ends and the body returns this.
    Return(u32),
}

/// A body's children, dropped last built first when the body ends.
struct Kids(Vec<(u32, Co)>);

impl Kids {
    fn position(&self, kid: u32) -> usize {
        self.0
            .iter()
            .position(|(id, _)| *id == kid)
            .expect("the generator only names live children")
    }
}

impl Drop for Kids {
    fn drop(&mut self) {
        while let Some(kid) = self.0.pop() {
            drop(kid);
        }
    }
}

struct Interp {
    spec: Rc<Spec>,
    pc: usize,
    rec: Recorder,
    kids: Kids,
}

impl Interp {
    fn exec(&mut self, h: &mut Handle<'_>) -> Flow {
        loop {
            let pc = self.pc;
            self.pc += 1;
            let step = self.spec.script[pc].clone();
            self.rec.push(Event::Step {
                co: self.spec.id,
                pc: pc as u32,
            });
            match step {
                Step::Suspend(value) => {
                    let input = h.suspend_with(value);
                    self.rec.push(Event::Got {
                        co: self.spec.id,
                        input,
                    });
                }
                Step::PushGuard(id) => {
                    let _guard = self.rec.guard(id);
                    match self.exec(h) {
                        Flow::PopGuard => {}
                        other => return other,
                    }
                }
                Step::PopGuard => return Flow::PopGuard,
                Step::Call(id) => {
                    let _frame = self.rec.guard(id);
                    match self.exec(h) {
                        Flow::RetLevel => {}
                        Flow::PopGuard => unreachable!("PopGuard right inside a Call frame"),
                        other => return other,
                    }
                }
                Step::Ret => return Flow::RetLevel,
                Step::Panic(payload) => panic::panic_any(Boom(payload)),
                Step::Return(value) => return Flow::Return(value),
                Step::CreateChild(spec) => {
                    let id = spec.id;
                    let co = build(spec, self.rec.clone());
                    self.kids.0.push((id, co));
                }
                Step::ResumeChild { kid, input, catch } => {
                    let at = self.kids.position(kid);
                    let co = &mut self.kids.0[at].1;
                    let outcome = if catch {
                        match panic::catch_unwind(AssertUnwindSafe(|| co.resume_with(input))) {
                            Ok(result) => from_result(result),
                            Err(payload) => classify(payload).unwrap_or_else(|payload| {
                                // Not ours: let it out, the top level reports it.
                                panic::resume_unwind(payload)
                            }),
                        }
                    } else {
                        from_result(co.resume_with(input))
                    };
                    self.rec.push(Event::Kid { kid, outcome });
                    self.rec.push(Event::KidState {
                        kid,
                        started: co.is_started(),
                        completed: co.is_completed(),
                    });
                }
                Step::DropChild(kid) => {
                    let at = self.kids.position(kid);
                    drop(self.kids.0.remove(at));
                    self.rec.push(Event::KidDropped(kid));
                }
            }
        }
    }
}

fn from_result(result: CoroutineResult<u32, u32>) -> Outcome {
    match result {
        CoroutineResult::Yield(v) => Outcome::Yield(v),
        CoroutineResult::Return(v) => Outcome::Return(v),
    }
}

/// Our payloads as outcomes; anything else is handed back.
fn classify(payload: common::Payload) -> Result<Outcome, common::Payload> {
    if let Some(Boom(n)) = payload.downcast_ref::<Boom>() {
        return Ok(Outcome::Panic(*n));
    }
    match common::message(&payload) {
        Some(text) if text.contains("resumed a coroutine that has already completed") => {
            Ok(Outcome::ResumedCompleted)
        }
        _ => Err(payload),
    }
}

/// Builds the coroutine `spec` describes.
fn build(spec: Rc<Spec>, rec: Recorder) -> Co {
    let captured = rec.guard(spec.captured);
    let kind = spec.stack;
    let body = move |h: &mut Handle, input: u32| -> u32 {
        // Dropped last: after the interpreter's frames and the children.
        let _captured = captured;
        let mut interp = Interp {
            spec,
            pc: 0,
            rec,
            kids: Kids(Vec::new()),
        };
        interp.rec.push(Event::Got {
            co: interp.spec.id,
            input,
        });
        match interp.exec(h) {
            Flow::Return(value) => value,
            other => unreachable!("the generator balances scopes, got {other:?} at the root"),
        }
    };
    match kind {
        StackKind::Pooled => Coroutine::with_input(body),
        StackKind::Small => Builder::new()
            .stack_size(SMALL_STACK)
            .build_with_input(body)
            .expect("a small stack"),
    }
}

// ---------------------------------------------------------------------------
// The model.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MState {
    Unstarted,
    Suspended,
    Completed,
}

struct MCo {
    spec: Rc<Spec>,
    pc: usize,
    /// Open scopes, innermost last: (is a Call frame, guard).
    scopes: Vec<(bool, u32)>,
    /// Live children, in the order built.
    kids: Vec<u32>,
    state: MState,
}

#[derive(Default)]
struct Model {
    cos: HashMap<u32, MCo>,
    events: Vec<Event>,
    /// Guards made and not dropped yet.
    live: BTreeSet<u32>,
}

impl Model {
    fn co(&mut self, id: u32) -> &mut MCo {
        self.cos.get_mut(&id).expect("a known coroutine")
    }

    fn state(&self, id: u32) -> MState {
        self.cos[&id].state
    }

    fn make_guard(&mut self, id: u32) {
        assert!(self.live.insert(id), "model: guard {id} made twice");
    }

    fn drop_guard(&mut self, id: u32) {
        assert!(self.live.remove(&id), "model: guard {id} dropped twice");
        self.events.push(Event::Dropped(id));
    }

    fn create(&mut self, spec: &Rc<Spec>) {
        self.make_guard(spec.captured);
        let co = MCo {
            spec: spec.clone(),
            pc: 0,
            scopes: Vec::new(),
            kids: Vec::new(),
            state: MState::Unstarted,
        };
        assert!(self.cos.insert(spec.id, co).is_none());
    }

    fn resume(&mut self, id: u32, input: u32) -> Outcome {
        match self.co(id).state {
            MState::Completed => return Outcome::ResumedCompleted,
            MState::Unstarted => self.co(id).state = MState::Suspended,
            MState::Suspended => {}
        }
        self.events.push(Event::Got { co: id, input });
        loop {
            let co = self.co(id);
            let pc = co.pc;
            co.pc += 1;
            let step = co.spec.script[pc].clone();
            self.events.push(Event::Step {
                co: id,
                pc: pc as u32,
            });
            match step {
                Step::Suspend(value) => return Outcome::Yield(value),
                Step::PushGuard(g) => {
                    self.co(id).scopes.push((false, g));
                    self.make_guard(g);
                }
                Step::PopGuard => {
                    let (frame, g) = self.co(id).scopes.pop().expect("an open scope");
                    assert!(!frame, "model: PopGuard on a Call frame");
                    self.drop_guard(g);
                }
                Step::Call(g) => {
                    self.co(id).scopes.push((true, g));
                    self.make_guard(g);
                }
                Step::Ret => loop {
                    let (frame, g) = self.co(id).scopes.pop().expect("a Call frame");
                    self.drop_guard(g);
                    if frame {
                        break;
                    }
                },
                Step::Panic(payload) => {
                    self.unwind(id);
                    return Outcome::Panic(payload);
                }
                Step::Return(value) => {
                    self.unwind(id);
                    return Outcome::Return(value);
                }
                Step::CreateChild(spec) => {
                    self.create(&spec);
                    self.co(id).kids.push(spec.id);
                }
                Step::ResumeChild { kid, input, catch } => {
                    let outcome = self.resume(kid, input);
                    let panicked = matches!(outcome, Outcome::Panic(_) | Outcome::ResumedCompleted);
                    if panicked && !catch {
                        // The child's panic unwinds this body too.
                        self.unwind(id);
                        return outcome;
                    }
                    self.events.push(Event::Kid { kid, outcome });
                    let state = self.state(kid);
                    self.events.push(Event::KidState {
                        kid,
                        started: state != MState::Unstarted,
                        completed: state == MState::Completed,
                    });
                }
                Step::DropChild(kid) => {
                    let kids = &mut self.co(id).kids;
                    let at = kids.iter().position(|&k| k == kid).expect("a live child");
                    kids.remove(at);
                    self.drop_co(kid);
                    self.events.push(Event::KidDropped(kid));
                }
            }
        }
    }

    /// The body ends (returns, panics or is unwound by a drop): its scopes
    /// close innermost first, then its children drop (last built first),
    /// then the guard its closure captured.
    fn unwind(&mut self, id: u32) {
        let co = self.co(id);
        co.state = MState::Completed;
        let scopes = std::mem::take(&mut co.scopes);
        let kids = std::mem::take(&mut co.kids);
        let captured = co.spec.captured;
        for (_, g) in scopes.into_iter().rev() {
            self.drop_guard(g);
        }
        for kid in kids.into_iter().rev() {
            self.drop_co(kid);
        }
        self.drop_guard(captured);
    }

    /// Runs one top-level operation; returns the outcome of a resume.
    fn apply(&mut self, op: &Op) -> Option<Outcome> {
        match op {
            Op::Create(spec) => self.create(spec),
            Op::Resume { co, input } => return Some(self.resume(*co, *input)),
            Op::Drop(co) => self.drop_co(*co),
        }
        None
    }

    fn drop_co(&mut self, id: u32) {
        match self.state(id) {
            MState::Unstarted => {
                self.co(id).state = MState::Completed;
                let captured = self.co(id).spec.captured;
                self.drop_guard(captured);
            }
            MState::Suspended => self.unwind(id),
            MState::Completed => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Running a case.

/// Runs `program` for real and in the model; the first disagreement is the
/// error, with what led to it.
fn check_program(program: &[Op]) -> Result<Stats, String> {
    let mut stats = Stats::default();
    let rec = Recorder::default();
    let mut model = Model::default();
    let mut real: HashMap<u32, Co> = HashMap::new();
    let mut trail = String::new();

    for (index, op) in program.iter().enumerate() {
        let _ = writeln!(trail, "  op {index}: {}", short(op));
        match op {
            Op::Create(spec) => {
                real.insert(spec.id, build(spec.clone(), rec.clone()));
                model.create(spec);
            }
            Op::Resume { co, input } => {
                stats.resumes += 1;
                let expected = model.resume(*co, *input);
                let coroutine = real.get_mut(co).expect("a live top-level coroutine");
                let got = match panic::catch_unwind(AssertUnwindSafe(|| {
                    coroutine.resume_with(*input)
                })) {
                    Ok(result) => from_result(result),
                    Err(payload) => classify(payload).map_err(|payload| {
                        format!(
                            "{trail}op {index}: resume panicked with an unexpected payload: {:?}",
                            common::message(&payload)
                        )
                    })?,
                };
                let _ = writeln!(trail, "    -> {got:?}");
                match got {
                    Outcome::Yield(_) => stats.yields += 1,
                    Outcome::Return(_) => stats.returns += 1,
                    Outcome::Panic(_) => stats.panics += 1,
                    Outcome::ResumedCompleted => stats.resumed_completed += 1,
                }
                if got != expected {
                    return Err(format!(
                        "{trail}op {index}: resume of {co} gave {got:?}, the model says {expected:?}"
                    ));
                }
            }
            Op::Drop(co) => {
                let coroutine = real.remove(co).expect("a live top-level coroutine");
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(coroutine)))
                {
                    return Err(format!(
                        "{trail}op {index}: dropping {co} panicked: {:?}",
                        common::message(&payload)
                    ));
                }
                model.drop_co(*co);
            }
        }
        let got = rec.take();
        let expected = std::mem::take(&mut model.events);
        stats.ops += 1;
        stats.events += got.len();
        stats.nested_resumes += got
            .iter()
            .filter(|e| matches!(e, Event::Kid { .. }))
            .count();
        if got != expected {
            return Err(format!(
                "{trail}op {index}: events differ\n    real:  {got:?}\n    model: {expected:?}"
            ));
        }
        for (&id, co) in &real {
            let state = model.state(id);
            let expected = (state != MState::Unstarted, state == MState::Completed);
            let got = (co.is_started(), co.is_completed());
            if got != expected {
                return Err(format!(
                    "{trail}op {index}: coroutine {id} is (started, completed) = {got:?}, \
                     the model says {expected:?}"
                ));
            }
        }
    }
    if !real.is_empty() {
        return Err("the program left coroutines alive".into());
    }
    if !model.live.is_empty() {
        return Err(format!("model: guards never dropped: {:?}", model.live));
    }
    if rec.live_guards.get() != 0 {
        return Err(format!(
            "{trail}{} guards were never dropped",
            rec.live_guards.get()
        ));
    }
    Ok(stats)
}

/// What the cases did, to show that they did something.
#[derive(Default, Debug)]
struct Stats {
    ops: usize,
    resumes: usize,
    yields: usize,
    returns: usize,
    panics: usize,
    resumed_completed: usize,
    nested_resumes: usize,
    events: usize,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        self.ops += other.ops;
        self.resumes += other.resumes;
        self.yields += other.yields;
        self.returns += other.returns;
        self.panics += other.panics;
        self.resumed_completed += other.resumed_completed;
        self.nested_resumes += other.nested_resumes;
        self.events += other.events;
    }
}

fn short(op: &Op) -> String {
    match op {
        Op::Create(spec) => format!("create {spec:?}"),
        other => format!("{other:?}"),
    }
}

thread_local! {
    /// Set while cases run on this thread: the panic hook stays quiet (the
    /// cases panic thousands of times on purpose).
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

fn parse_seed(text: &str) -> u64 {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("SURE_PROPTEST_SEED={text:?} is not a number"))
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("SURE_PROPTEST_SEED") {
        return vec![parse_seed(&seed)];
    }
    let cases = std::env::var("SURE_PROPTEST_CASES")
        .ok()
        .map_or(DEFAULT_CASES, |n| n.parse().expect("SURE_PROPTEST_CASES"));
    (0..cases)
        .map(|i| SEED_BASE.wrapping_add(i.wrapping_mul(SEED_STEP)))
        .collect()
}

/// Runs one seed; on failure, explains it and how to run it again.
fn run_seed(seed: u64) -> Stats {
    let mut rng = Rng::new(seed);
    let program = gen_program(&mut rng);
    QUIET.with(|q| q.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| check_program(&program)));
    QUIET.with(|q| q.set(false));
    let failure = match result {
        Ok(Ok(stats)) => return stats,
        Ok(Err(report)) => report,
        Err(payload) => format!(
            "the case panicked: {}",
            common::message(&payload).unwrap_or("(a payload that is not a message)")
        ),
    };
    let mut listing = String::new();
    for (i, op) in program.iter().enumerate() {
        let _ = writeln!(listing, "  {i}: {}", short(op));
    }
    panic!(
        "property failed for seed {seed:#x}\n\
         reproduce with: SURE_PROPTEST_SEED={seed:#x} cargo test -p sure-coro --test property\n\
         program:\n{listing}\nfailure:\n{failure}"
    );
}

#[test]
fn random_programs_agree_with_the_model() {
    install_quiet_hook();
    let seeds = seeds();
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    for &seed in &seeds {
        total += run_seed(seed);
    }
    assert!(!std::thread::panicking());
    println!(
        "{} random programs agreed with the model in {:.2?}: {total:?}",
        seeds.len(),
        started.elapsed()
    );
}

/// The generator itself: the programs it makes cover what they should, so
/// that a passing run means something.
#[test]
fn the_generator_covers_every_kind_of_step_and_outcome() {
    install_quiet_hook();
    let mut seen_steps = BTreeSet::new();
    let mut seen_outcomes = BTreeSet::new();
    let mut nested = 0;
    let mut max_depth = 0;
    for i in 0..300u64 {
        let mut rng = Rng::new(SEED_BASE.wrapping_add(i.wrapping_mul(SEED_STEP)));
        let program = gen_program(&mut rng);
        fn walk(
            spec: &Spec,
            nest: u32,
            seen: &mut BTreeSet<&'static str>,
            nested: &mut u32,
            depth: &mut usize,
        ) {
            if nest > 0 {
                *nested += 1;
            }
            let mut calls = 0usize;
            for step in &spec.script {
                let name = match step {
                    Step::Suspend(_) => "suspend",
                    Step::PushGuard(_) => "push",
                    Step::PopGuard => "pop",
                    Step::Call(_) => {
                        calls += 1;
                        *depth = (*depth).max(calls);
                        "call"
                    }
                    Step::Ret => {
                        calls = calls.saturating_sub(1);
                        "ret"
                    }
                    Step::Panic(_) => "panic",
                    Step::Return(_) => "return",
                    Step::CreateChild(child) => {
                        walk(child, nest + 1, seen, nested, depth);
                        "create"
                    }
                    Step::ResumeChild { catch: true, .. } => "resume-catch",
                    Step::ResumeChild { catch: false, .. } => "resume-nocatch",
                    Step::DropChild(_) => "drop-child",
                };
                seen.insert(name);
            }
        }
        // Run the model alone to see which outcomes happen.
        let mut model = Model::default();
        for op in &program {
            if let Op::Create(spec) = op {
                walk(spec, 0, &mut seen_steps, &mut nested, &mut max_depth);
            }
            if let Some(outcome) = model.apply(op) {
                seen_outcomes.insert(match outcome {
                    Outcome::Yield(_) => "yield",
                    Outcome::Return(_) => "return",
                    Outcome::Panic(_) => "panic",
                    Outcome::ResumedCompleted => "resumed-completed",
                });
            }
        }
        assert!(model.live.is_empty());
        for event in &model.events {
            if let Event::Kid { outcome, .. } = event {
                seen_outcomes.insert(match outcome {
                    Outcome::Yield(_) => "kid-yield",
                    Outcome::Return(_) => "kid-return",
                    Outcome::Panic(_) => "kid-panic",
                    Outcome::ResumedCompleted => "kid-resumed-completed",
                });
            }
        }
    }
    let all_steps = [
        "suspend",
        "push",
        "pop",
        "call",
        "ret",
        "panic",
        "return",
        "create",
        "resume-catch",
        "resume-nocatch",
        "drop-child",
    ];
    for step in all_steps {
        assert!(seen_steps.contains(step), "no {step} step generated");
    }
    let all_outcomes = [
        "yield",
        "return",
        "panic",
        "resumed-completed",
        "kid-yield",
        "kid-return",
        "kid-panic",
        "kid-resumed-completed",
    ];
    for outcome in all_outcomes {
        assert!(seen_outcomes.contains(outcome), "no {outcome} outcome seen");
    }
    assert!(nested > 100, "only {nested} nested coroutines");
    assert!(max_depth >= 3, "calls only {max_depth} deep");
}

/// The seed parser takes what the failure message prints.
#[test]
fn seeds_parse_in_hex_and_decimal() {
    assert_eq!(parse_seed("0x1F"), 31);
    assert_eq!(parse_seed(" 42 "), 42);
    assert_eq!(parse_seed(&format!("{:#x}", SEED_BASE)), SEED_BASE);
}
