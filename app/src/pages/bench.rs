//! The engine benchmark, run in this browser: the same runs as `faultline bench` (about
//! 100,000 requests on the default mesh) and a five-minute lesson at 50 requests a second,
//! timed with `performance.now()`, after the app's idle-time warm-up (`warmup`), or with nothing
//! warmed at `#/debug/bench?cold`. The browser tests open it both ways and print the figures.

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

#[component]
pub fn Bench() -> Html {
    let results = use_state(Vec::<Figures>::new);
    {
        let results = results.clone();
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
                <p class="muted" id="bench-warmup" data-busy={warm.map_or(0.0, |c| c.busy_ms).to_string()}>
                    { match warm {
                        Some(c) => format!("The engine was warmed up in idle time first: {:.0} ms of work over {:.0} ms.", c.busy_ms, c.elapsed_ms),
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
