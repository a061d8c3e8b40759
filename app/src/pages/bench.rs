//! The engine benchmark, run in this browser: the same runs as `faultline bench` (about
//! 100,000 requests on the default mesh), a five-minute lesson at 50 requests a second and log
//! queries over a run of a million lines, timed with `performance.now()` after the app's
//! idle-time warm-up (`warmup`), or with nothing warmed at `#/debug/bench?cold`. The browser
//! tests open it both ways and print the figures.

use faultline_engine::{Simulation, mesh::default_mesh};
use yew::prelude::*;

/// One timed run.
#[derive(Clone, PartialEq)]
struct Figures {
    name: &'static str,
    requests: usize,
    spans: usize,
    logs: usize,
    millis: f64,
    /// The size of the wasm memory after the run, in MB.
    memory_mb: f64,
}

fn memory_mb() -> f64 {
    use wasm_bindgen::JsCast;
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map_or(0.0, |m| {
            m.buffer()
                .dyn_into::<js_sys::ArrayBuffer>()
                .map_or(0.0, |b| f64::from(b.byte_length()) / 1e6)
        })
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

fn time_run(name: &'static str, rate_per_s: f64, duration_ms: u64) -> Figures {
    let scenario = default_mesh(rate_per_s, duration_ms);
    let started = now_ms();
    let telemetry = Simulation::new(scenario, 7).map(Simulation::run);
    let millis = now_ms() - started;
    let (requests, spans, logs) = telemetry.map_or((0, 0, 0), |t| {
        (
            t.spans.iter().filter(|s| s.parent.is_none()).count(),
            t.spans.len(),
            t.logs.len(),
        )
    });
    Figures {
        name,
        requests,
        spans,
        logs,
        millis,
        memory_mb: memory_mb(),
    }
}

/// One log query timed over a run of a million lines or more.
#[derive(Clone, PartialEq)]
struct QueryFigures {
    query: &'static str,
    lines: usize,
    hits: usize,
    /// The query alone, and with what the log view computes from its hits (the volume
    /// histogram and the fields panel).
    millis: f64,
    view_millis: f64,
}

/// The log view's queries, as the command-line bench times them.
const QUERIES: [&str; 5] = [
    r#"{service="payments", level=~"warn|error"} |= "timeout""#,
    r#"{service=~".+"} | json | duration_ms > 100"#,
    r#"{level="info"} |~ "card_number=[0-9]{13,19}""#,
    r#"{service=~".+"} |= "timeout""#,
    r#"{service=~".+"}"#,
];

/// Runs the default mesh at 1,000 requests a second with every service logging at debug until
/// it has written a million lines, then times each query over all of them (best of three).
fn time_queries() -> Vec<QueryFigures> {
    use faultline_engine::query::logs::{field_summaries, log_volume};
    use faultline_engine::{SimTime, logql};
    let mut scenario = default_mesh(1_000.0, 120_000);
    for service in &mut scenario.services {
        service.log_level = faultline_engine::scenario::LogLevel::Debug;
    }
    let Ok(simulation) = Simulation::new(scenario, 7) else {
        return Vec::new();
    };
    let t = simulation.run();
    let end = t.logs.iter().map(|l| l.time).max().unwrap_or(SimTime::ZERO);
    drop(t.index());
    QUERIES
        .iter()
        .filter_map(|&query| {
            let parsed = logql::parse(query).ok()?;
            let mut best = (f64::MAX, f64::MAX, 0);
            for _ in 0..3 {
                let started = now_ms();
                let hits = parsed.run(&t);
                let ran = now_ms();
                let volume = log_volume(&t, &hits, SimTime::ZERO, SimTime(end.0 + 1), 80);
                let fields = field_summaries(&t, &hits, 500, 5);
                std::hint::black_box((volume, fields));
                let done = now_ms();
                best = (
                    best.0.min(ran - started),
                    best.1.min(done - started),
                    hits.len(),
                );
            }
            Some(QueryFigures {
                query,
                lines: t.logs.len(),
                hits: best.2,
                millis: best.0,
                view_millis: best.1,
            })
        })
        .collect()
}

#[component]
pub fn Bench() -> Html {
    let results = use_state(Vec::<Figures>::new);
    let queries = use_state(Vec::<QueryFigures>::new);
    {
        let (results, queries) = (results.clone(), queries.clone());
        // After the first paint, so the page shows it is working while the engine runs.
        use_effect_with((), move |_| {
            // After the engine's warm-up (none with `?cold`) and the first paint, so the page
            // shows it is working while the engine runs.
            let cancelled = std::rc::Rc::new(std::cell::Cell::new(false));
            let flag = cancelled.clone();
            crate::warmup::when_ready(move || {
                after_paint(move || {
                    if flag.get() {
                        return;
                    }
                    let rows = vec![
                        time_run("lesson: 5 min at 50 req/s", 50.0, 300_000),
                        time_run("the same lesson again", 50.0, 300_000),
                        time_run("bench: 100 s at 1,000 req/s", 1_000.0, 100_000),
                    ];
                    results.set(rows);
                    after_paint(move || queries.set(time_queries()));
                });
            });
            // Leaving the page before it runs cancels the run.
            move || cancelled.set(true)
        });
    }
    let warm = if results.is_empty() {
        None
    } else {
        crate::warmup::cost()
    };
    html! {
        <>
            <header class="page-header">
                <p class="eyebrow">{ "Diagnostics" }</p>
                <h1>{ "Engine benchmark" }</h1>
                <p class="lede">{ "The default mesh, seed 7, all telemetry on, timed in this browser." }</p>
                <p class="muted" id="bench-warmup" data-busy={warm.map_or(0.0, |c| c.busy_ms).to_string()}
                    data-checks={warm.map_or(0, |c| c.checks).to_string()}>
                    { match warm {
                        Some(c) => format!("The engine was warmed up in idle time first: {:.0} ms of work over {:.0} ms, the last {} runs of it timed until two ran as fast.", c.busy_ms, c.elapsed_ms, c.checks),
                        None => "Nothing was warmed up first: the first run pays for compiling and for fresh memory.".to_string(),
                    } }
                </p>
            </header>
            <section class="card">
                if results.is_empty() {
                    <p class="muted" id="bench-running">{ "Running…" }</p>
                } else {
                    <table class="bench" id="bench-results">
                        <thead><tr>
                            <th>{ "run" }</th><th>{ "requests" }</th><th>{ "spans" }</th>
                            <th>{ "log lines" }</th><th>{ "time" }</th><th>{ "spans/s" }</th><th>{ "wasm memory" }</th>
                        </tr></thead>
                        <tbody>
                            for f in results.iter() {
                                <tr data-millis={f.millis.to_string()} data-spans={f.spans.to_string()}>
                                    <td>{ f.name }</td>
                                    <td>{ f.requests }</td>
                                    <td>{ f.spans }</td>
                                    <td>{ f.logs }</td>
                                    <td>{ format!("{:.0} ms", f.millis) }</td>
                                    <td>{ format!("{:.0}", f.spans as f64 / (f.millis / 1_000.0)) }</td>
                                    <td>{ format!("{:.0} MB", f.memory_mb) }</td>
                                </tr>
                            }
                        </tbody>
                    </table>
                }
            </section>
            <section class="card">
                <h2>{ "Log queries over a million lines" }</h2>
                if queries.is_empty() {
                    <p class="muted">{ "Waiting for the runs above…" }</p>
                } else {
                    <table class="bench" id="bench-logql">
                        <thead><tr>
                            <th>{ "query" }</th><th>{ "lines" }</th><th>{ "hits" }</th>
                            <th>{ "query time" }</th><th>{ "with volume and fields" }</th>
                        </tr></thead>
                        <tbody>
                            for q in queries.iter() {
                                <tr data-millis={q.millis.to_string()} data-view-millis={q.view_millis.to_string()}
                                    data-lines={q.lines.to_string()} data-hits={q.hits.to_string()}>
                                    <td class="mono">{ q.query }</td>
                                    <td>{ q.lines }</td>
                                    <td>{ q.hits }</td>
                                    <td>{ format!("{:.1} ms", q.millis) }</td>
                                    <td>{ format!("{:.1} ms", q.view_millis) }</td>
                                </tr>
                            }
                        </tbody>
                    </table>
                }
            </section>
        </>
    }
}

/// Runs `f` on a later turn of the event loop (after the browser has painted).
fn after_paint(f: impl FnOnce() + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Some(window) = web_sys::window() else {
        return;
    };
    let callback = Closure::once_into_js(f);
    let _ =
        window.set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), 50);
}
