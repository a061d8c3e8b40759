//! Gets the engine ready while the learner reads. Right after start-up, in idle time and in
//! slices of a few milliseconds, a run of the default mesh as big as a lesson lets the browser
//! compile the engine's hot code with its optimizing tier, and the wasm memory grows to what a
//! lesson needs; short timed runs then wait for the speed to settle. So the first lesson runs
//! at full speed instead of paying for all that while the learner waits.

use std::cell::RefCell;

use faultline_engine::{SimTime, Simulation, mesh::default_mesh};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

/// The warm-up run: the default mesh at this rate for this long, 30,000 requests, twice a
/// five-minute lesson at 50 a second. What counts is the amount of work, not the simulated
/// time it spans (300 s at 20 a second helped less), as expected of V8, which moves a wasm
/// function to its optimizing tier once that function has run for a budget of its own. After a
/// 20 s run at 50 a second the first lesson took 92–132 ms in Chromium and the next 82–87 ms.
/// Measured on one machine over 12 fresh browsers each: after 15,000 requests the first lesson
/// took 98–138 ms (median 109) and the next 101; after these 30,000, 98–109 ms (median 101)
/// and the next 100 (the whole warm-up, memory included, is about 520 ms of work in idle time,
/// against 390).
const RATE_PER_S: f64 = 150.0;
const RUN_S: u64 = 200;
/// Simulated time per step of the warm-up run: well under a millisecond of work.
const STEP_US: u64 = 100_000;
/// Memory grown and touched ahead: what a five-minute lesson takes, with room to spare.
const RESERVE_MB: usize = 128;
/// Memory touched per step.
const PIECE_MB: usize = 4;
/// Then short runs, the same each time (1,500 requests, about 10 ms), until two in a row take
/// as long as each other within this ratio: the browser may still be compiling what the run
/// made hot, on another thread, or busy with the page. Over 16 fresh Chromium browsers, a
/// first lesson run 50 ms after the warm-up took 86–132 ms (two over 100), and run 3 s after
/// it 87–93 ms.
const CHECK_S: u64 = 10;
const STEADY: f64 = 1.05;
const CHECKS_MAX: usize = 12;

enum Phase {
    NotStarted,
    Running {
        simulation: Box<Simulation>,
        at: u64,
    },
    Reserving {
        pieces: Vec<Vec<u8>>,
    },
    /// How long each check run took, in milliseconds.
    Checking {
        times: Vec<f64>,
    },
    Done,
}

struct State {
    phase: Phase,
    /// Main-thread time the warm-up took, in milliseconds, and when it started and ended.
    busy_ms: f64,
    started_ms: f64,
    ended_ms: f64,
    /// Check runs made.
    checks: usize,
    waiting: Vec<Box<dyn FnOnce()>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        phase: Phase::NotStarted,
        busy_ms: 0.0,
        started_ms: 0.0,
        ended_ms: 0.0,
        checks: 0,
        waiting: Vec::new(),
    });
}

/// What the warm-up cost, once it is done: main-thread milliseconds, and milliseconds from its
/// start to its end (it runs only when the page is idle).
#[derive(Clone, Copy, PartialEq)]
pub struct Cost {
    pub busy_ms: f64,
    pub elapsed_ms: f64,
    /// Check runs it took until two in a row ran as fast as each other.
    pub checks: usize,
}

/// Starts the warm-up in the page's idle time. `#/debug/bench?cold` skips it, to measure a first
/// run with nothing warmed.
pub fn start() {
    let cold = web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .is_some_and(|hash| hash.starts_with("#/debug/bench?cold"));
    let begin = STATE.with_borrow_mut(|state| {
        if !matches!(state.phase, Phase::NotStarted) {
            return false;
        }
        if cold {
            state.phase = Phase::Done;
            return false;
        }
        let simulation = Simulation::new(default_mesh(RATE_PER_S, RUN_S * 1_000), 1)
            .expect("the default mesh is valid");
        state.phase = Phase::Running {
            simulation: Box::new(simulation),
            at: 0,
        };
        state.started_ms = now_ms();
        true
    });
    if begin {
        schedule();
    }
}

/// Runs `f` once the warm-up is done (at once if it is done or was skipped).
pub fn when_ready(f: impl FnOnce() + 'static) {
    let f: Box<dyn FnOnce()> = Box::new(f);
    let now = STATE.with_borrow_mut(|state| {
        if matches!(state.phase, Phase::Done) {
            Some(f)
        } else {
            state.waiting.push(f);
            None
        }
    });
    if let Some(f) = now {
        f();
    }
}

/// The warm-up's cost, or `None` when it was skipped or is not done.
pub fn cost() -> Option<Cost> {
    STATE.with_borrow(|state| {
        (matches!(state.phase, Phase::Done) && state.started_ms > 0.0).then_some(Cost {
            busy_ms: state.busy_ms,
            elapsed_ms: state.ended_ms - state.started_ms,
            checks: state.checks,
        })
    })
}

/// Asks for the next idle period (or a short timer where the browser has no idle callbacks).
fn schedule() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let has_idle = js_sys::Reflect::has(&window, &"requestIdleCallback".into()).unwrap_or(false);
    if has_idle {
        let callback = Closure::once_into_js(|deadline: web_sys::IdleDeadline| {
            slice(|| deadline.time_remaining() > 1.0)
        });
        let _ = window.request_idle_callback(callback.unchecked_ref());
    } else {
        let started = now_ms();
        let callback = Closure::once_into_js(move || slice(move || now_ms() - started < 8.0));
        let _ = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), 16);
    }
}

/// Works while `more_time` says so, then asks for the next slice or wakes who is waiting.
fn slice(more_time: impl Fn() -> bool) {
    let started = now_ms();
    let done = STATE.with_borrow_mut(|state| {
        loop {
            match &mut state.phase {
                Phase::Running { simulation, at } => {
                    *at += STEP_US;
                    simulation.step_until(SimTime(*at));
                    if *at >= RUN_S * 1_000_000 {
                        state.phase = Phase::Reserving { pieces: Vec::new() };
                    }
                }
                Phase::Reserving { pieces } => {
                    // Written, not only allocated: fresh wasm pages cost the most at first touch.
                    let mut piece = Vec::<u8>::with_capacity(PIECE_MB << 20);
                    piece.resize(PIECE_MB << 20, 1);
                    pieces.push(piece);
                    if pieces.len() * PIECE_MB >= RESERVE_MB {
                        // Freed together, the pieces make one free region the allocator reuses.
                        state.phase = Phase::Checking { times: Vec::new() };
                    }
                }
                Phase::Checking { times } => {
                    let run_started = now_ms();
                    let check = Simulation::new(default_mesh(RATE_PER_S, CHECK_S * 1_000), 2)
                        .expect("the default mesh is valid")
                        .run();
                    drop(check);
                    times.push(now_ms() - run_started);
                    state.checks = times.len();
                    let steady = match times[..] {
                        [.., a, b] => a.max(b) <= a.min(b) * STEADY,
                        _ => false,
                    };
                    if steady || times.len() >= CHECKS_MAX {
                        state.phase = Phase::Done;
                    }
                }
                Phase::NotStarted | Phase::Done => break,
            }
            if !more_time() {
                break;
            }
        }
        state.busy_ms += now_ms() - started;
        let done = matches!(state.phase, Phase::Done);
        if done {
            state.ended_ms = now_ms();
        }
        done
    });
    if done {
        let waiting = STATE.with_borrow_mut(|state| std::mem::take(&mut state.waiting));
        for f in waiting {
            f();
        }
    } else {
        schedule();
    }
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}
