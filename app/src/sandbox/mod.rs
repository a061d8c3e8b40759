//! The sandbox page (`#/sandbox`): two setups of the default mesh, Run A and Run B, each run in
//! slices between animation frames and summarized by the engine, then compared side by side.
//! The URL holds both setups, seeds and which runs had finished, so a reload recomputes them.

mod compare;
mod form;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::sandbox::{RunSummary, Setup};
use faultline_engine::{Scenario, ScenarioError, SimTime};
use serde::{Deserialize, Serialize};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::frames::{self, FrameLoop};
use crate::lab::SANDBOX;
pub use crate::lab::overview::count;
use crate::lab::run::Run;
use crate::lab::url::LabQuery;
use crate::route::Route;
use form::{SetupForm, Typed, run_length};

/// Wall time the engine may take per frame, shared by the runs in progress, in milliseconds:
/// most of a 60 Hz frame, leaving the rest for drawing the progress.
const FRAME_BUDGET_MS: f64 = 12.0;
/// Both columns start on the lab's seed, so a change of setup is the only difference.
const SEED: u64 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    /// `a`: for ids and the URL.
    pub fn letter(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::A => "A",
            Side::B => "B",
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

const SIDES: [Side; 2] = [Side::A, Side::B];

/// One column's form: the setup, the seed, and text typed that did not read.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub setup: Setup,
    pub seed: u64,
    pub typed: Vec<Typed>,
}

impl Default for Column {
    fn default() -> Self {
        Column {
            setup: Setup::default(),
            seed: SEED,
            typed: vec![],
        }
    }
}

impl Column {
    /// What a run is of: the setup's text and the seed.
    fn key(&self) -> (String, u64) {
        (self.setup.to_text(), self.seed)
    }
}

/// The sandbox's state in the URL (after `#/sandbox?`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxQuery {
    /// Run A's and B's setups as `Setup::to_text` writes them; none is the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_a: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_b: Option<u64>,
    /// The runs made of these setups, finished or under way (`a`, `b`, `ab`): a reload runs
    /// them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl SandboxQuery {
    /// The two columns the URL holds, and a sentence for each setup that does not read (its
    /// column then starts from the default).
    fn columns(&self) -> ([Column; 2], Vec<String>) {
        let mut problems = Vec::new();
        let mut column = |side: Side, text: &Option<String>, seed: Option<u64>| {
            let setup = match text.as_deref().map(Setup::from_text) {
                None => Setup::default(),
                Some(Ok(setup)) => setup,
                Some(Err(e)) => {
                    problems.push(format!("Run {}: {e}", side.name()));
                    Setup::default()
                }
            };
            Column {
                setup,
                seed: seed.unwrap_or(SEED),
                typed: vec![],
            }
        };
        let a = column(Side::A, &self.a, self.seed_a);
        let b = column(Side::B, &self.b, self.seed_b);
        ([a, b], problems)
    }

    fn of(columns: &[Column; 2], finished: [bool; 2]) -> SandboxQuery {
        let text = |c: &Column| Some(c.setup.to_text()).filter(|t| t != "{}");
        let seed = |c: &Column| Some(c.seed).filter(|s| *s != SEED);
        let run: String = SIDES
            .iter()
            .filter(|s| finished[s.index()])
            .map(|s| s.letter())
            .collect();
        SandboxQuery {
            a: text(&columns[0]),
            b: text(&columns[1]),
            seed_a: seed(&columns[0]),
            seed_b: seed(&columns[1]),
            run: Some(run).filter(|r| !r.is_empty()),
        }
    }

    /// Whether the URL asks for this side's run.
    fn ran(&self, side: Side) -> bool {
        self.run
            .as_deref()
            .is_some_and(|r| r.contains(side.letter()))
    }
}

/// The lab's URL for a column's setup and seed.
pub fn lab_query(column: &Column) -> LabQuery {
    LabQuery {
        scenario: Some(SANDBOX.into()),
        setup: Some(column.setup.to_text()),
        seed: Some(column.seed),
        ..LabQuery::default()
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Columns([Column; 2]);

enum Action {
    Set(Side, Column),
    /// Both columns, from a URL.
    Load(Box<[Column; 2]>),
    CopyAToB,
}

impl Reducible for Columns {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Set(side, column) => next.0[side.index()] = column,
            Action::Load(columns) => next.0 = *columns,
            Action::CopyAToB => next.0[1] = next.0[0].clone(),
        }
        Rc::new(next)
    }
}

/// One side's run: in progress, then its summary (the telemetry is dropped once summarized,
/// so two ten-minute runs do not hold two sets of spans).
struct Slot {
    key: (String, u64),
    scenario: Scenario,
    run: Option<Run>,
    started_ms: f64,
    wall_ms: f64,
    summary: Option<Rc<RunSummary>>,
}

type Slots = Rc<RefCell<[Option<Slot>; 2]>>;

/// Starts the runs of `sides` whose setups are valid; the others keep what they had.
fn start(slots: &Slots, columns: &[Column; 2], sides: &[Side], now_ms: f64) -> bool {
    let mut started = false;
    let mut s = slots.borrow_mut();
    for side in sides {
        let column = &columns[side.index()];
        if !column.typed.is_empty() {
            continue;
        }
        let Ok(scenario) = column.setup.scenario() else {
            continue;
        };
        let Ok(run) = Run::start(scenario.clone(), column.seed) else {
            continue;
        };
        s[side.index()] = Some(Slot {
            key: column.key(),
            scenario,
            run: Some(run),
            started_ms: now_ms,
            wall_ms: 0.0,
            summary: None,
        });
        started = true;
    }
    started
}

/// One frame's work: each run in progress gets its share of the budget; a run that finishes
/// is summarized by the engine. False once nothing is left to run. `now` is the wall clock in
/// milliseconds.
fn tick(slots: &Slots, now: &dyn Fn() -> f64) -> bool {
    let begun = now();
    let mut s = slots.borrow_mut();
    let running: Vec<usize> = (0..2)
        .filter(|i| s[*i].as_ref().is_some_and(|x| x.run.is_some()))
        .collect();
    let n = running.len() as f64;
    for (k, i) in running.iter().enumerate() {
        let deadline = begun + FRAME_BUDGET_MS * (k + 1) as f64 / n;
        let Some(slot) = s[*i].as_mut() else { continue };
        let Some(run) = slot.run.as_mut() else {
            continue;
        };
        run.advance(SimTime(u64::MAX), || now() < deadline);
        if run.finished() {
            if let Some(truth) = run.truth() {
                slot.summary = Some(Rc::new(RunSummary::of(
                    &slot.scenario,
                    run.telemetry(),
                    truth,
                )));
            }
            slot.wall_ms = now() - slot.started_ms;
            slot.run = None;
        }
    }
    !running.is_empty()
}

/// What the page shows of one side's run.
#[derive(Clone, Debug, PartialEq)]
enum Status {
    Idle,
    Running {
        progress: f64,
        simulated: SimTime,
    },
    Done {
        summary: Rc<RunSummary>,
        wall_ms: f64,
        /// The form has changed since this run.
        stale: bool,
    },
}

fn status(slot: Option<&Slot>, column: &Column) -> Status {
    match slot {
        None => Status::Idle,
        Some(Slot { run: Some(run), .. }) => Status::Running {
            progress: run.progress(),
            simulated: run.now(),
        },
        Some(Slot {
            summary: Some(summary),
            wall_ms,
            key,
            ..
        }) => Status::Done {
            summary: summary.clone(),
            wall_ms: *wall_ms,
            stale: *key != column.key(),
        },
        Some(_) => Status::Idle,
    }
}

#[component]
pub fn Sandbox() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let query: SandboxQuery = location
        .as_ref()
        .and_then(|l| l.query::<SandboxQuery>().ok())
        .unwrap_or_default();
    let columns = {
        let first = query.columns().0;
        use_reducer(move || Columns(first))
    };
    // The query the page last read or wrote: a URL that differs came from elsewhere (a link,
    // Back, a reload) and is loaded.
    let known = use_mut_ref(|| None::<SandboxQuery>);
    let link_problems = use_state(Vec::<String>::new);
    let slots: Slots = use_mut_ref(|| [None, None]);
    let frame_loop = use_mut_ref(|| None::<FrameLoop>);
    let force = use_force_update();

    let run_sides = {
        let (slots, frame_loop, force) = (slots.clone(), frame_loop.clone(), force.clone());
        Rc::new(move |columns: &[Column; 2], sides: &[Side]| {
            if !start(&slots, columns, sides, frames::now_ms()) {
                return;
            }
            let (slots, redraw) = (slots.clone(), force.clone());
            *frame_loop.borrow_mut() = Some(frames::start(move |_| {
                let more = tick(&slots, &frames::now_ms);
                redraw.force_update();
                more
            }));
            force.force_update();
        })
    };
    // A URL from elsewhere: its setups fill the forms and its finished runs run again.
    {
        let (run_sides, known, slots) = (run_sides.clone(), known.clone(), slots.clone());
        let (dispatcher, link_problems) = (columns.dispatcher(), link_problems.clone());
        use_effect_with(query.clone(), move |query| {
            if known.borrow().as_ref() != Some(query) {
                *known.borrow_mut() = Some(query.clone());
                let (loaded, problems) = query.columns();
                *slots.borrow_mut() = [None, None];
                dispatcher.dispatch(Action::Load(Box::new(loaded.clone())));
                link_problems.set(problems);
                let sides: Vec<Side> = SIDES.into_iter().filter(|s| query.ran(*s)).collect();
                run_sides(&loaded, &sides);
            }
        });
    }
    {
        let frame_loop = frame_loop.clone();
        use_effect_with((), move |_| move || drop(frame_loop.borrow_mut().take()));
    }

    let statuses: Vec<Status> = {
        let s = slots.borrow();
        SIDES
            .iter()
            .map(|side| status(s[side.index()].as_ref(), &columns.0[side.index()]))
            .collect()
    };
    // Runs of the forms as they are, finished or on their way: a reload runs them again.
    let finished = {
        let s = slots.borrow();
        [0, 1].map(|i| {
            s[i].as_ref().is_some_and(|slot| {
                slot.key == columns.0[i].key() && (slot.run.is_some() || slot.summary.is_some())
            })
        })
    };
    // The URL follows the forms and the finished runs (replaced, so Back leaves the page).
    {
        let (navigator, known) = (navigator.clone(), known.clone());
        let current = query.clone();
        use_effect_with((columns.0.clone(), finished), move |(columns, finished)| {
            let q = SandboxQuery::of(columns, *finished);
            if q != current {
                *known.borrow_mut() = Some(q.clone());
                if let Some(nav) = navigator {
                    let _ = nav.replace_with_query(&Route::Sandbox, &q);
                }
            }
        });
    }

    let checked_a = use_memo(columns.0[0].setup.clone(), |s| s.scenario().err());
    let checked_b = use_memo(columns.0[1].setup.clone(), |s| s.scenario().err());
    let errors: [Rc<Vec<ScenarioError>>; 2] = [
        Rc::new((*checked_a).clone().unwrap_or_default()),
        Rc::new((*checked_b).clone().unwrap_or_default()),
    ];
    let on_change_a = use_callback(columns.dispatcher(), |c: Column, d| {
        d.dispatch(Action::Set(Side::A, c))
    });
    let on_change_b = use_callback(columns.dispatcher(), |c: Column, d| {
        d.dispatch(Action::Set(Side::B, c))
    });
    let runnable = |i: usize| errors[i].is_empty() && columns.0[i].typed.is_empty();
    let running = statuses.iter().any(|s| matches!(s, Status::Running { .. }));
    let on_run_both = {
        let (run_sides, columns) = (run_sides.clone(), columns.clone());
        Callback::from(move |_: MouseEvent| run_sides(&columns.0, &SIDES))
    };
    let on_copy = {
        let dispatcher = columns.dispatcher();
        Callback::from(move |_: MouseEvent| dispatcher.dispatch(Action::CopyAToB))
    };
    let column_view = |side: Side, on_change: Callback<Column>| {
        let i = side.index();
        let column = &columns.0[i];
        let on_run = {
            let (run_sides, columns) = (run_sides.clone(), columns.clone());
            Callback::from(move |_: MouseEvent| run_sides(&columns.0, &[side]))
        };
        let letter = side.letter();
        let problems = errors[i].len() + column.typed.len();
        html! {
            <section class="run-column" id={format!("run-{letter}")}
                     aria-labelledby={format!("run-{letter}-title")}>
                <header class="run-head">
                    <h2 id={format!("run-{letter}-title")}>
                        <span class={classes!("run-badge", letter)}>{ side.name() }</span>
                        { format!("Run {}", side.name()) }
                    </h2>
                    <span class="run-meta">{
                        format!("{} req/s · {} · seed {}", form::number(column.setup.rate_per_s),
                            run_length(column.setup.duration_ms), column.seed)
                    }</span>
                    <div class="run-actions">
                        <Link<Route, LabQuery> to={Route::Lab} query={Some(lab_query(column))}
                                               classes="button small quiet open-in-lab"
                                               disabled={!runnable(i)}>
                            { "Open in lab" }
                        </Link<Route, LabQuery>>
                        <button type="button" class="button small" id={format!("run-{letter}-start")}
                                onclick={on_run} disabled={!runnable(i)}>
                            { format!("Run {}", side.name()) }
                        </button>
                    </div>
                </header>
                <RunStatus {side} status={statuses[i].clone()} />
                if problems > 0 {
                    <div class="notice error setup-problems" role="alert" id={format!("problems-{letter}")}>
                        <strong>{
                            if problems == 1 { "1 problem: fix it to run.".to_string() }
                            else { format!("{problems} problems: fix them to run.") }
                        }</strong>
                        <ul>
                            for t in column.typed.iter() { <li>{ format!("{}: {}", t.field, t.problem) }</li> }
                            for e in errors[i].iter() { <li>{ format!("{}: {}", e.field, e.problem) }</li> }
                        </ul>
                    </div>
                }
                <SetupForm {side} column={column.clone()} errors={errors[i].clone()} {on_change} />
            </section>
        }
    };
    let comparison = match (&statuses[0], &statuses[1]) {
        (
            Status::Done {
                summary: a,
                stale: stale_a,
                ..
            },
            Status::Done {
                summary: b,
                stale: stale_b,
                ..
            },
        ) => html! {
            <compare::Comparison a={a.clone()} b={b.clone()} stale={[*stale_a, *stale_b]} />
        },
        _ => html! {
            <p class="versus-empty muted">{
                if running { "The comparison appears when both runs have finished." }
                else { "Run both to compare them: the table and charts appear here." }
            }</p>
        },
    };
    html! {
        <div class="sandbox">
            <header class="sandbox-header">
                <div>
                    <p class="eyebrow">{ "Sandbox" }</p>
                    <h1>{ "Break the mesh, change a policy, compare" }</h1>
                    <p class="lede">{
                        "Set up two runs of the default mesh: faults from the catalog, the policy on \
                         each call, stock. Copy A to B and change one thing, run both, and read what \
                         it did to the tail, the errors and the damage."
                    }</p>
                </div>
                <div class="sandbox-actions">
                    <button type="button" class="button" id="copy-a-b" onclick={on_copy}>{ "Copy A → B" }</button>
                    <button type="button" class="button primary" id="run-both" onclick={on_run_both}
                            disabled={!(runnable(0) && runnable(1))}>
                        { if running { "Running…" } else { "Run both" } }
                    </button>
                </div>
            </header>
            for p in link_problems.iter() {
                <p class="notice error" role="alert">{ format!("{p} (the form starts from the default)") }</p>
            }
            <div class="run-columns">
                { column_view(Side::A, on_change_a) }
                { column_view(Side::B, on_change_b) }
            </div>
            <section class="versus" aria-labelledby="versus-title">
                <h2 id="versus-title">{ "A against B" }</h2>
                { comparison }
            </section>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct RunStatusProps {
    side: Side,
    status: Status,
}

/// A run's progress while it runs; its figures once it has (with the engine's numbers in
/// data attributes, for tests to check against the engine).
#[component]
fn RunStatus(props: &RunStatusProps) -> Html {
    let letter = props.side.letter();
    match &props.status {
        Status::Idle => html! {
            <p class="run-state muted" id={format!("state-{letter}")}>{ "Not run yet." }</p>
        },
        Status::Running {
            progress,
            simulated,
        } => html! {
            <div class="run-state running" id={format!("state-{letter}")} role="status">
                <progress class="run-progress" max="1" value={progress.to_string()}
                          aria-label={format!("Run {} progress", props.side.name())}></progress>
                <span>{ format!("running · {:.0}% · {} simulated", progress * 100.0, clock(*simulated)) }</span>
            </div>
        },
        Status::Done {
            summary,
            wall_ms,
            stale,
        } => {
            let s = summary;
            let p99 = s.p99.map_or("—".into(), crate::lab::overview::duration);
            html! {
                <div class="run-state done" id={format!("state-{letter}")}>
                    <dl class="run-result" id={format!("result-{letter}")}
                        data-requests={s.requests.to_string()} data-errors={s.errors.to_string()}
                        data-p99-us={s.p99.map_or(String::new(), |d| d.0.to_string())}
                        data-retries={s.retries.to_string()}
                        data-duplicate-charges={s.duplicate_charges.to_string()}
                        data-oversold-units={s.oversold_units.to_string()}
                        data-wall-ms={format!("{wall_ms:.0}")}>
                        <div><dt>{ "requests" }</dt><dd>{ count(s.requests) }</dd></div>
                        <div><dt>{ "error rate" }</dt><dd>{ format!("{:.2}%", s.error_rate() * 100.0) }</dd></div>
                        <div><dt>{ "p99" }</dt><dd>{ p99 }</dd></div>
                        <div><dt>{ "duplicates" }</dt><dd>{ count(s.duplicate_charges) }</dd></div>
                        <div><dt>{ "oversold units" }</dt><dd>{ count(s.oversold_units) }</dd></div>
                    </dl>
                    <p class="run-note">{
                        if *stale { format!("ran in {:.1} s · the setup has changed since: run again", wall_ms / 1_000.0) }
                        else { format!("ran in {:.1} s", wall_ms / 1_000.0) }
                    }</p>
                </div>
            }
        }
    }
}

/// `4:05`: simulated time as a clock.
fn clock(t: SimTime) -> String {
    let s = t.0 / 1_000_000;
    format!("{}:{:02}", s / 60, s % 60)
}
