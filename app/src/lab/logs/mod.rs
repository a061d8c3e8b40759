//! The Logs view, as Grafana Explore reads Loki: a LogQL bar (a parse error is shown at its
//! column), the volume of matching lines by level over time, the lines themselves (virtualized,
//! newest first, on the node's own clock or true time as the URL says), Kibana's fields panel,
//! and a line's details with its context. While the run plays, the query re-runs a few times a
//! second.

mod detail;
mod fields;
pub(super) mod table;
mod volume;

use std::rc::Rc;

use gloo_events::{EventListener, EventListenerOptions};
use wasm_bindgen::JsCast;

use faultline_engine::SimTime;
use faultline_engine::logql;
use faultline_engine::query::logs::{
    Clock, FieldSummary, VolumeBar, field_summaries, log_volume, with_filter,
};
use faultline_engine::telemetry::TraceId;
use yew::prelude::*;

use super::LabRun;
use crate::frames::now_ms;

/// The query the view opens with: every line of every service.
pub const DEFAULT_QUERY: &str = r#"{service=~".+"}"#;
/// While the run plays, hits are computed again at most this often (ms of wall time).
const REFRESH_MS: f64 = 400.0;
/// Bars in the volume histogram.
const BARS: u32 = 80;
/// Lines the fields panel samples, newest first, as Kibana samples 500 documents.
const SAMPLE: usize = 500;

/// The URL's `clock`: `true` shows true time, anything else (or none) each node's own clock.
pub fn clock_from_url(value: Option<&str>) -> Clock {
    match value {
        Some("true") => Clock::True,
        _ => Clock::Node,
    }
}

/// A clock as the URL's `clock`: none for the node's own clock, the default.
pub fn clock_to_url(clock: Clock) -> Option<String> {
    (clock == Clock::True).then(|| "true".to_string())
}

#[derive(Properties, PartialEq)]
pub struct LogsProps {
    /// The query from the URL, if any.
    pub query: Option<String>,
    /// A query was run: for the URL.
    pub on_query: Callback<String>,
    /// The timestamps' clock, from the URL.
    pub clock: Clock,
    /// The clock was toggled: for the URL.
    pub on_clock: Callback<Clock>,
    pub on_trace: Callback<TraceId>,
}

/// The last answer, kept until the query changes or the run has moved on enough.
#[derive(Default)]
struct Answer {
    query: String,
    logs_seen: usize,
    at_ms: f64,
    took_ms: f64,
    hits: Rc<Vec<u32>>,
    volume: Vec<VolumeBar>,
    until: SimTime,
    fields: Vec<FieldSummary>,
}

#[component]
pub fn Logs(props: &LogsProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let initial = props
        .query
        .clone()
        .unwrap_or_else(|| DEFAULT_QUERY.to_string());
    let input = use_state(|| initial.clone());
    let query = use_state(|| initial);
    let selected = use_state(|| None::<u32>);
    let answer = use_mut_ref(Answer::default);
    let input_ref = use_node_ref();

    // A query arriving from the URL (Back, a link, a focused service) replaces the one shown.
    {
        let (input, query) = (input.clone(), query.clone());
        use_effect_with(props.query.clone(), move |from_url| {
            if let Some(q) = from_url.as_ref().filter(|q| **q != *query) {
                input.set(q.clone());
                query.set(q.clone());
            }
        });
    }
    let parsed = logql::parse(&query);
    {
        let run = lab.run.borrow();
        let t = run.telemetry();
        let mut a = answer.borrow_mut();
        // While the run moves, a few times a second; once it stops, at once.
        let stale = a.query != *query
            || (a.logs_seen != t.logs.len() && (!lab.moving || now_ms() - a.at_ms >= REFRESH_MS));
        if stale {
            let started = now_ms();
            let hits = parsed.as_ref().map(|q| q.run(t)).unwrap_or_default();
            let took_ms = now_ms() - started;
            let until = SimTime(run.now().0.max(1));
            *a = Answer {
                query: (*query).clone(),
                logs_seen: t.logs.len(),
                at_ms: now_ms(),
                took_ms,
                volume: log_volume(t, &hits, SimTime::ZERO, until, BARS),
                fields: field_summaries(t, &hits, SAMPLE, 5),
                hits: Rc::new(hits),
                until,
            };
        }
    }
    let a = answer.borrow();

    let run_query = {
        let (input, query, on_query, selected) = (
            input.clone(),
            query.clone(),
            props.on_query.clone(),
            selected.clone(),
        );
        move |text: String| {
            input.set(text.clone());
            query.set(text.clone());
            selected.set(None);
            on_query.emit(text);
        }
    };
    let onsubmit = {
        let (run_query, input) = (run_query.clone(), input.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            run_query((*input).clone());
        })
    };
    let oninput = {
        let input = input.clone();
        Callback::from(move |e: InputEvent| {
            let el: web_sys::HtmlInputElement = e.target_unchecked_into();
            input.set(el.value());
        })
    };
    let on_filter = {
        let (run_query, query) = (run_query.clone(), query.clone());
        Callback::from(move |(name, value, keep): (String, String, bool)| {
            run_query(with_filter(&query, &name, &value, keep));
        })
    };
    let on_select = {
        let selected = selected.clone();
        Callback::from(move |line: Option<u32>| selected.set(line))
    };
    let on_close = {
        let selected = selected.clone();
        Callback::from(move |()| selected.set(None))
    };
    let set_clock = |c: Clock| props.on_clock.reform(move |_: MouseEvent| c);
    // `/` focuses the query bar, as in Grafana and Kibana.
    {
        let input_ref = input_ref.clone();
        use_effect_with((), move |_| {
            let listener = web_sys::window().map(|w| {
                let options = EventListenerOptions::enable_prevent_default();
                EventListener::new_with_options(&w, "keydown", options, move |e| {
                    let Some(e) = e.dyn_ref::<web_sys::KeyboardEvent>() else {
                        return;
                    };
                    let typing = e
                        .target()
                        .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
                        .is_some_and(|el| {
                            matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                        });
                    if e.key() == "/" && !typing {
                        if let Some(el) = input_ref.cast::<web_sys::HtmlInputElement>() {
                            e.prevent_default();
                            let _ = el.focus();
                        }
                    }
                })
            });
            move || drop(listener)
        });
    }

    let error = parsed.as_ref().err().map(|e| {
        // The caret under the column the parser stopped at.
        let caret = format!("{}^", " ".repeat(query.chars().take(e.offset).count()));
        html! {
            <div class="logql-error" role="alert" id="logql-error">
                <pre>{ format!("{}\n{caret}", *query) }</pre>
                <p>{ e.to_string() }</p>
            </div>
        }
    });
    let clock_now = props.clock;
    html! {
        <section class="logs-view" aria-label="Logs">
            <form class="logql-bar" {onsubmit} role="search">
                <label for="logql-input" class="visually-hidden">{ "Log query (LogQL)" }</label>
                <input id="logql-input" ref={input_ref} class="mono" type="text" spellcheck="false"
                       autocomplete="off" value={(*input).clone()} {oninput}
                       placeholder={r#"{service="payments", level=~"warn|error"} |= "timeout""#} />
                <button class="button primary" type="submit" id="logql-run">{ "Run query" }</button>
            </form>
            { error.unwrap_or_default() }
            <div class="logs-toolbar">
                <span id="log-count">{ format!("{} lines", crate::lab::overview::count(a.hits.len() as u64)) }</span>
                <span class="muted" id="log-took">{ format!("query took {:.1} ms", a.took_ms) }</span>
                <div class="segmented" role="group" aria-label="Timestamps">
                    <button class={classes!("seg", (clock_now == Clock::Node).then_some("on"))} id="clock-node"
                            aria-pressed={(clock_now == Clock::Node).to_string()} onclick={set_clock(Clock::Node)}>{ "Node clock" }</button>
                    <button class={classes!("seg", (clock_now == Clock::True).then_some("on"))} id="clock-true"
                            aria-pressed={(clock_now == Clock::True).to_string()} onclick={set_clock(Clock::True)}>{ "True time" }</button>
                </div>
            </div>
            <volume::Volume bars={a.volume.clone()} until={a.until} />
            <div class="logs-body">
                <fields::Fields fields={a.fields.clone()} sampled={a.hits.len().min(SAMPLE) as u32}
                                on_filter={on_filter.clone()} />
                <div class="logs-main">
                    <div class="log-head" aria-hidden="true">
                        <span>{ "time" }</span><span>{ "level" }</span><span>{ "instance" }</span>
                        <span>{ "line" }</span><span>{ "trace" }</span>
                    </div>
                    <table::Table hits={a.hits.clone()} clock={clock_now} selected={*selected}
                                  {on_select} on_trace={props.on_trace.clone()} />
                    if let Some(line) = *selected {
                        <detail::Detail {line} {on_filter} on_trace={props.on_trace.clone()} {on_close} />
                    }
                </div>
            </div>
        </section>
    }
}
