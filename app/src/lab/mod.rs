//! The lab page: one run of a scenario, played on the browser's animation frames, and the views
//! that read it. The page owns the run and the playback; the views get the run through a context
//! whose `version` changes whenever the run has moved, and render from the engine's queries.

mod fixture;
mod import;
mod keys;
mod logs;
mod map;
pub mod metrics;
pub mod overview;
mod playback;
pub mod run;
mod tabs;
#[cfg(test)]
pub(crate) mod tests;
mod trace_view;
mod traces;
pub mod url;

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::SimTime;
use faultline_engine::mesh::default_mesh;
use faultline_engine::sandbox::Setup;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::frames::{self, FrameLoop};
use crate::route::Route;
use playback::PlaybackBar;
use run::Run;
use tabs::{TabBar, View};
use url::LabQuery;

/// Wall time the engine may take per frame while playing or jumping, in milliseconds: most of a
/// 60 Hz frame, leaving the rest for drawing.
const FRAME_BUDGET_MS: f64 = 10.0;
/// Playback speeds offered, in simulated seconds per second.
pub const SPEEDS: [u32; 7] = [1, 2, 5, 10, 25, 50, 100];

/// What the views read: the run, a number that changes whenever it has moved, and whether it
/// is moving (views that refresh less often than every frame catch up once it stops).
#[derive(Clone)]
pub struct LabRun {
    pub run: Rc<RefCell<Run>>,
    pub version: u64,
    pub moving: bool,
}

impl PartialEq for LabRun {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.run, &other.run)
            && self.version == other.version
            && self.moving == other.moving
    }
}

/// Moves keyboard focus to the element with this id, if there is one.
pub fn focus_element(id: &str) {
    use wasm_bindgen::JsCast;
    if let Some(element) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = element.focus();
    }
}

/// The scenario the lab opens for a name: `default`, or `sandbox` with the setup the URL holds
/// (the sandbox page's "Open in lab"). Err says what is wrong, naming the setup's fields.
fn scenario(name: &str, setup: Option<&str>) -> Result<faultline_engine::Scenario, String> {
    match name {
        "default" => Ok(default_mesh(50.0, 300_000)),
        SANDBOX => Setup::from_text(setup.unwrap_or("{}"))?
            .scenario()
            .map_err(|errors| {
                let problems: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.problem))
                    .collect();
                format!("The sandbox setup is not valid:\n{}", problems.join("\n"))
            }),
        _ => Err(format!("There is no scenario called `{name}`.")),
    }
}

/// The scenario name of a sandbox run opened in the lab.
pub const SANDBOX: &str = "sandbox";

#[derive(Clone, Copy, PartialEq)]
enum Motion {
    Paused,
    Playing,
    /// Running to a clock time (a shared link's `t`, or the end) as fast as frames allow.
    Seeking(SimTime),
}

#[component]
pub fn Lab() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let query: LabQuery = location
        .as_ref()
        .and_then(|l| l.query::<LabQuery>().ok())
        .unwrap_or_default();
    let name = query.scenario.clone().unwrap_or_else(|| "default".into());
    let seed = query.seed.unwrap_or(7);
    let setup = query.setup.clone();

    // The run, started once per scenario and seed.
    let run = use_mut_ref(|| None::<Rc<RefCell<Run>>>);
    let problem = use_state(|| None::<String>);
    let version = use_mut_ref(|| 0u64);
    let force = use_force_update();
    let motion = use_state(|| match query.t {
        Some(ms) => Motion::Seeking(SimTime::from_ms(ms)),
        None => Motion::Playing,
    });
    let speed = use_state(|| query.speed.filter(|s| SPEEDS.contains(s)).unwrap_or(10));
    // Counts restarts, so the frame loop picks up a new run even when the motion stays the same.
    let generation = use_state(|| 0u32);
    // Counts files opened, so a second file replaces the first under the same scenario name.
    let opened = use_state(|| 0u32);
    {
        let (run, problem) = (run.clone(), problem.clone());
        let (version, force) = (version.clone(), force.clone());
        use_effect_with(
            (name.clone(), setup.clone(), seed, *opened),
            move |(name, setup, seed, _)| {
                // A new run shows at once, even when nothing plays to draw it (a file, a fixture).
                let changed = move || {
                    *version.borrow_mut() += 1;
                    force.force_update();
                };
                if name == import::IMPORTED {
                    *run.borrow_mut() = import::opened()
                        .map(|(_, telemetry)| Rc::new(RefCell::new(Run::finished_with(telemetry))));
                    if run.borrow().is_none() {
                        problem.set(Some(import::gone()));
                    }
                    changed();
                    return;
                }
                if name == fixture::WIDE_TRACE {
                    let wide = Run::finished_with(fixture::wide_trace());
                    *run.borrow_mut() = Some(Rc::new(RefCell::new(wide)));
                    changed();
                    return;
                }
                *run.borrow_mut() =
                    match scenario(name, setup.as_deref()).map(|s| Run::start(s, *seed)) {
                        Ok(Ok(r)) => Some(Rc::new(RefCell::new(r))),
                        Ok(Err(errors)) => {
                            let first = errors
                                .first()
                                .map(|e| format!("{}: {}", e.field, e.problem));
                            problem.set(first);
                            None
                        }
                        Err(text) => {
                            problem.set(Some(text));
                            None
                        }
                    };
                changed();
            },
        );
    }

    // The frame loop, alive while the run moves.
    let frame_loop = use_mut_ref(|| None::<FrameLoop>);
    {
        let (run, version, force, motion_state) =
            (run.clone(), version.clone(), force.clone(), motion.clone());
        let frame_loop = frame_loop.clone();
        use_effect_with(
            (
                *motion,
                *speed,
                *generation,
                name.clone(),
                setup.clone(),
                seed,
            ),
            move |(m, s, ..)| {
                let (m, speed) = (*m, *s);
                let current = run.borrow().clone();
                *frame_loop.borrow_mut() = match (m, current) {
                    (Motion::Paused, _) | (_, None) => None,
                    (_, Some(current)) => {
                        let mut last: Option<f64> = None;
                        // Where the clock should be: it runs at `speed` from where the run is.
                        let mut target = current.borrow().now();
                        Some(frames::start(move |timestamp| {
                            let elapsed_ms =
                                last.map_or(0.0, |l| (timestamp - l).clamp(0.0, 100.0));
                            last = Some(timestamp);
                            let started = frames::now_ms();
                            let more_time = || frames::now_ms() - started < FRAME_BUDGET_MS;
                            let mut r = current.borrow_mut();
                            let done = match m {
                                Motion::Seeking(until) => r.advance(until, more_time),
                                _ => {
                                    let step = (elapsed_ms * 1_000.0 * f64::from(speed)) as u64;
                                    target = SimTime(target.0.saturating_add(step));
                                    r.advance(target, more_time) && r.finished()
                                }
                            };
                            drop(r);
                            *version.borrow_mut() += 1;
                            force.force_update();
                            if done {
                                motion_state.set(Motion::Paused);
                            }
                            !done
                        }))
                    }
                };
            },
        );
    }
    // Dropping the loop with the page stops it.
    {
        let frame_loop = frame_loop.clone();
        use_effect_with((), move |_| move || drop(frame_loop.borrow_mut().take()));
    }

    // Keep the URL in step when the run stops moving, so a reload or a shared link comes back.
    // The views' own state in it (the open view, a search, a trace) is kept.
    {
        let (run, navigator) = (run.clone(), navigator.clone());
        let (name, speed_now, current_query) = (name.clone(), *speed, query.clone());
        use_effect_with((*motion, *version.borrow()), move |(m, _)| {
            if *m == Motion::Paused {
                if let (Some(r), Some(nav)) = (run.borrow().as_ref(), navigator.as_ref()) {
                    let r = r.borrow();
                    let q = LabQuery {
                        scenario: Some(name),
                        seed: Some(r.seed),
                        t: Some(r.now().0 / 1_000),
                        speed: Some(speed_now),
                        ..current_query.clone()
                    };
                    if q != current_query {
                        let _ = nav.replace_with_query(&Route::Lab, &q);
                    }
                }
            }
        });
    }

    let Some(current) = run.borrow().clone() else {
        return html! {
            <>
                <header class="page-header">
                    <p class="eyebrow">{ "Lab" }</p>
                    <h1>{ "Investigate a running mesh" }</h1>
                </header>
                <p class="notice error" role="alert">
                    { (*problem).clone().unwrap_or_else(|| "Starting the run…".into()) }
                </p>
            </>
        };
    };
    let data = LabRun {
        run: current.clone(),
        version: *version.borrow(),
        moving: *motion != Motion::Paused,
    };
    let (now, duration, finished, progress) = {
        let r = current.borrow();
        (r.now(), r.duration, r.finished(), r.progress())
    };
    let on_play = {
        let motion = motion.clone();
        Callback::from(move |_| motion.set(Motion::Playing))
    };
    let on_pause = {
        let motion = motion.clone();
        Callback::from(move |_| motion.set(Motion::Paused))
    };
    let on_end = {
        let motion = motion.clone();
        Callback::from(move |_| motion.set(Motion::Seeking(SimTime(u64::MAX))))
    };
    let on_speed = {
        let speed = speed.clone();
        Callback::from(move |s: u32| speed.set(s))
    };
    let on_restart = {
        let (run, motion, generation) = (run.clone(), motion.clone(), generation.clone());
        let (name, setup) = (name.clone(), setup.clone());
        Callback::from(move |_| {
            if let Ok(Ok(r)) = scenario(&name, setup.as_deref()).map(|s| Run::start(s, seed)) {
                *run.borrow_mut() = Some(Rc::new(RefCell::new(r)));
                generation.set(*generation + 1);
                motion.set(Motion::Playing);
            }
        })
    };
    // A view's change of state goes into the URL as a new history entry, so Back returns.
    let on_navigate = {
        let navigator = navigator.clone();
        Callback::from(move |q: LabQuery| {
            if let Some(nav) = navigator.as_ref() {
                let _ = nav.push_with_query(&Route::Lab, &q);
            }
        })
    };
    let imported = name == import::IMPORTED;
    // A file read: the lab opens it on the Traces view.
    let on_opened = {
        let (on_navigate, opened) = (on_navigate.clone(), opened.clone());
        Callback::from(move |()| {
            opened.set(*opened + 1);
            on_navigate.emit(LabQuery {
                scenario: Some(import::IMPORTED.into()),
                view: View::Traces.query_value(),
                ..LabQuery::default()
            });
        })
    };
    let view = View::from_query(query.view.as_deref());
    let on_view = {
        let (on_navigate, query) = (on_navigate.clone(), query.clone());
        Callback::from(move |v: View| {
            if v != view {
                on_navigate.emit(LabQuery {
                    view: v.query_value(),
                    ..query.clone()
                });
            }
        })
    };
    let body = panel(view, &query, &on_navigate);
    html! {
        <ContextProvider<LabRun> context={data.clone()}>
            <div class="lab">
                <header class="lab-header">
                    <div>
                        <p class="eyebrow">{ "Lab" }</p>
                        <h1>{
                            if imported { "Imported traces" }
                            else if name == SANDBOX { "A sandbox run" }
                            else { "The default mesh" }
                        }</h1>
                    </div>
                    <div class="lab-header-side">
                        <p class="lab-run-meta">
                            { if imported { "from a file".to_string() } else { format!("scenario {name} · seed {seed}") } }
                        </p>
                        <import::OpenFile {on_opened} />
                    </div>
                </header>
                if imported {
                    <import::ImportSummary />
                }
                <PlaybackBar
                    {now} {duration} {finished} {progress}
                    playing={*motion == Motion::Playing}
                    seeking={matches!(*motion, Motion::Seeking(_))}
                    speed={*speed}
                    {on_play} {on_pause} {on_end} {on_speed} {on_restart}
                />
                <TabBar current={view} on_select={on_view} />
                <div class="lab-panel" role="tabpanel" id={tabs::panel_id(view)}
                     aria-labelledby={tabs::tab_id(view)}>
                    { body }
                </div>
            </div>
        </ContextProvider<LabRun>>
    }
}

/// The open view's panel, drawn from the lab's URL state; a view's change of state goes to
/// `on_navigate` as the new URL state.
fn panel(view: View, query: &LabQuery, on_navigate: &Callback<LabQuery>) -> Html {
    match view {
        View::Overview => html! { <overview::Overview /> },
        View::Map => {
            // Focusing a service narrows the trace search and the log query to it.
            let on_focus = {
                let (on_navigate, query) = (on_navigate.clone(), query.clone());
                Callback::from(move |service: Option<String>| {
                    let q = service.as_ref().map(|s| format!("{{service={s:?}}}"));
                    on_navigate.emit(LabQuery {
                        service,
                        operation: None,
                        instance: None,
                        q,
                        ..query.clone()
                    });
                })
            };
            html! { <map::Map focus={query.service.clone()} {on_focus} /> }
        }
        View::Traces => {
            html! { <traces::Traces query={query.clone()} on_navigate={on_navigate.clone()} /> }
        }
        View::Metrics => {
            html! { <metrics::MetricsView query={query.clone()} on_navigate={on_navigate.clone()} /> }
        }
        View::Logs => {
            let on_query = {
                let (on_navigate, query) = (on_navigate.clone(), query.clone());
                Callback::from(move |q: String| {
                    on_navigate.emit(LabQuery {
                        q: Some(q),
                        ..query.clone()
                    })
                })
            };
            let on_trace = {
                let (on_navigate, query) = (on_navigate.clone(), query.clone());
                Callback::from(move |id: faultline_engine::telemetry::TraceId| {
                    on_navigate.emit(LabQuery {
                        view: View::Traces.query_value(),
                        trace: Some(id.to_string()),
                        ..query.clone()
                    })
                })
            };
            let on_clock = {
                let (on_navigate, query) = (on_navigate.clone(), query.clone());
                Callback::from(move |c| {
                    on_navigate.emit(LabQuery {
                        clock: logs::clock_to_url(c),
                        ..query.clone()
                    })
                })
            };
            let clock = logs::clock_from_url(query.clock.as_deref());
            html! { <logs::Logs query={query.q.clone()} {on_query} {clock} {on_clock} {on_trace} /> }
        }
    }
}
