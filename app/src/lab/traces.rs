//! The Traces view, as Jaeger UI's search page: a search form (service, operation, tags,
//! duration bounds, a lookback or a from/to range on the run's clock, errors only, limit), a
//! scatter plot of the results' durations over time and the result list. With a trace open (`trace` in the URL) it shows the trace page instead.

use std::collections::BTreeMap;
use std::rc::Rc;

use faultline_engine::query::{SearchChoices, TraceQuery, TraceSummary, parse_tags, search_traces};
use faultline_engine::telemetry::{ServiceId, TraceId};
use faultline_engine::{Duration, SimTime};
use yew::prelude::*;

use super::keys::{typed_into_field, use_keydown};
use super::overview::{count, duration};
use super::trace_view::TracePage;
use super::url::LabQuery;
use super::{LabRun, focus_element};
use crate::frames;

/// While the run moves, views re-query at most this often (in wall milliseconds).
const REFRESH_MS: f64 = 250.0;
/// Rows a search returns when the form does not say, as Jaeger's default.
pub const DEFAULT_LIMIT: u32 = 20;
const LIMIT_MAX: u32 = 1_500;

/// A number that changes when the views should re-read the run: at every move when paused or
/// finished, at most every `REFRESH_MS` while it plays.
#[hook]
pub fn use_refresh(lab: &LabRun) -> u64 {
    let state = use_mut_ref(|| (0u64, f64::NEG_INFINITY, u64::MAX));
    let mut s = state.borrow_mut();
    if s.2 != lab.version {
        let now = frames::now_ms();
        if !lab.moving || now - s.1 >= REFRESH_MS {
            *s = (s.0 + 1, now, lab.version);
        }
    }
    s.0
}

/// Colours for services, by `ServiceId`, so a service keeps its colour in every trace; none is
/// the error red.
const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
    "#86bcb6", "#8cd17d", "#a0cbe8", "#d4a6c8",
];

pub fn service_color(index: u16) -> &'static str {
    PALETTE[usize::from(index) % PALETTE.len()]
}

/// `1:02.345` of simulated time: where a trace starts on the run's clock.
pub fn clock_ms(t: SimTime) -> String {
    let ms = t.0 / 1_000;
    format!("{}:{:02}.{:03}", ms / 60_000, (ms / 1_000) % 60, ms % 1_000)
}

/// The first seven hex digits of a trace id, as Jaeger UI shortens them.
pub fn short_id(id: TraceId) -> String {
    id.to_string()[..7].to_string()
}

pub fn parse_trace_id(hex: &str) -> Option<TraceId> {
    (!hex.is_empty() && hex.len() <= 32)
        .then(|| u128::from_str_radix(hex, 16).ok().map(TraceId))
        .flatten()
}

/// Problems with the search form's fields, each shown at its field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldErrors {
    pub tags: Option<String>,
    pub min: Option<String>,
    pub max: Option<String>,
    pub lookback: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        [
            &self.tags,
            &self.min,
            &self.max,
            &self.lookback,
            &self.from,
            &self.to,
        ]
        .iter()
        .any(|e| e.is_some())
    }
}

/// The time ranges the form offers, as the URL's `lookback` and a label.
const LOOKBACKS: [(&str, &str); 5] = [
    ("", "the whole run"),
    ("10s", "last 10 seconds"),
    ("30s", "last 30 seconds"),
    ("1m", "last minute"),
    ("5m", "last 5 minutes"),
];

/// The result list's orders, as the URL's `sort` and a label (Jaeger's choices).
const SORTS: [(&str, &str); 5] = [
    ("", "Most recent"),
    ("longest", "Longest first"),
    ("shortest", "Shortest first"),
    ("most-spans", "Most spans"),
    ("least-spans", "Fewest spans"),
];

/// Puts results in the order the URL's `sort` names (they come newest first; ties keep that).
pub fn sort_results(results: &mut [TraceSummary], sort: Option<&str>) {
    match sort {
        Some("longest") => results.sort_by_key(|r| std::cmp::Reverse(r.duration)),
        Some("shortest") => results.sort_by_key(|r| r.duration),
        Some("most-spans") => results.sort_by_key(|r| std::cmp::Reverse(r.spans)),
        Some("least-spans") => results.sort_by_key(|r| r.spans),
        _ => {}
    }
}

/// The search the URL's fields ask for at the run's clock `now`, and what is wrong with them (a
/// field in error is left out of the search). The time range is a lookback from `now` or a
/// from/to range; given both, the range wins and the lookback is refused at its field.
pub fn search_query(q: &LabQuery, now: SimTime) -> (TraceQuery, FieldErrors) {
    let mut errors = FieldErrors::default();
    fn text(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    fn duration_field(v: &Option<String>, slot: &mut Option<String>) -> Option<Duration> {
        text(v).and_then(|s| {
            Duration::parse(s)
                .map_err(|e| *slot = Some(e.to_string()))
                .ok()
        })
    }
    fn clock_field(v: &Option<String>, slot: &mut Option<String>) -> Option<SimTime> {
        text(v).and_then(|s| {
            SimTime::parse_clock(s)
                .map_err(|e| *slot = Some(e.to_string()))
                .ok()
        })
    }
    let min_duration = duration_field(&q.min, &mut errors.min);
    let max_duration = duration_field(&q.max, &mut errors.max);
    if let (Some(lo), Some(hi)) = (min_duration, max_duration) {
        if hi < lo {
            errors.max = Some(format!("the maximum is below the minimum ({lo})"));
        }
    }
    let from = clock_field(&q.from, &mut errors.from);
    let to = clock_field(&q.to, &mut errors.to);
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            errors.to = Some(format!(
                "the end is not after the start ({})",
                clock_ms(from)
            ));
        }
    }
    let ranged = text(&q.from).is_some() || text(&q.to).is_some();
    let lookback = text(&q.lookback).filter(|_| {
        if ranged {
            errors.lookback = Some(
                "a lookback and a from/to range do not mix: choose the whole run here, or clear \
                 From and To"
                    .into(),
            );
        }
        !ranged
    });
    let tags = match text(&q.tags).map(parse_tags) {
        Some(Ok(tags)) => tags,
        Some(Err(e)) => {
            errors.tags = Some(e);
            Vec::new()
        }
        None => Vec::new(),
    };
    let query = TraceQuery {
        service: text(&q.service).map(str::to_string),
        operation: text(&q.operation).map(str::to_string),
        tags,
        min_duration,
        max_duration: max_duration.filter(|_| errors.max.is_none()),
        errors_only: q.errors.unwrap_or(false),
        limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, LIMIT_MAX),
        from: lookback
            .and_then(|l| Duration::parse(l).ok())
            .map(|l| SimTime(now.0.saturating_sub(l.0)))
            .or(from),
        until: to.filter(|_| errors.to.is_none()),
    };
    (query, errors)
}

#[derive(Properties, PartialEq)]
pub struct TracesProps {
    pub query: LabQuery,
    pub on_navigate: Callback<LabQuery>,
}

#[component]
pub fn Traces(props: &TracesProps) -> Html {
    match props.query.trace.as_deref().and_then(parse_trace_id) {
        Some(trace_id) => html! {
            <TracePage {trace_id} query={props.query.clone()} on_navigate={props.on_navigate.clone()} />
        },
        None => {
            html! { <TraceSearch query={props.query.clone()} on_navigate={props.on_navigate.clone()} /> }
        }
    }
}

/// The form's fields as typed.
#[derive(Clone, Debug, Default, PartialEq)]
struct Form {
    service: String,
    operation: String,
    tags: String,
    min: String,
    max: String,
    errors: bool,
    limit: String,
    lookback: String,
    from: String,
    to: String,
}

impl Form {
    fn of(q: &LabQuery) -> Form {
        Form {
            service: q.service.clone().unwrap_or_default(),
            operation: q.operation.clone().unwrap_or_default(),
            tags: q.tags.clone().unwrap_or_default(),
            min: q.min.clone().unwrap_or_default(),
            max: q.max.clone().unwrap_or_default(),
            errors: q.errors.unwrap_or(false),
            limit: q.limit.unwrap_or(DEFAULT_LIMIT).to_string(),
            lookback: q.lookback.clone().unwrap_or_default(),
            from: q.from.clone().unwrap_or_default(),
            to: q.to.clone().unwrap_or_default(),
        }
    }

    fn into_query(self, base: &LabQuery) -> LabQuery {
        let some = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
        LabQuery {
            service: some(self.service),
            operation: some(self.operation),
            tags: some(self.tags),
            min: some(self.min),
            max: some(self.max),
            errors: self.errors.then_some(true),
            limit: self
                .limit
                .trim()
                .parse()
                .ok()
                .filter(|&l| l != DEFAULT_LIMIT),
            lookback: some(self.lookback),
            from: some(self.from),
            to: some(self.to),
            trace: None,
            compare: None,
            ..base.clone()
        }
    }
}

#[derive(Properties, PartialEq)]
struct SearchProps {
    query: LabQuery,
    on_navigate: Callback<LabQuery>,
}

#[component]
fn TraceSearch(props: &SearchProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let refresh = use_refresh(&lab);
    let form = use_state(|| Form::of(&props.query));
    {
        // Back and forward change the URL: the form follows.
        let form = form.clone();
        use_effect_with(props.query.clone(), move |q| form.set(Form::of(q)));
    }
    let now = lab.run.borrow().now();
    let (search, _) = search_query(&props.query, now);
    let (_, field_errors) = search_query(&(*form).clone().into_query(&props.query), now);

    // The run's services and operations, read incrementally; started afresh for a new run.
    let choices = use_mut_ref(|| (std::ptr::null(), SearchChoices::default()));
    let (services, operations) = {
        let run = lab.run.borrow();
        let t = run.telemetry();
        let mut c = choices.borrow_mut();
        let run_ptr = Rc::as_ptr(&lab.run);
        if c.0 != run_ptr {
            *c = (run_ptr, SearchChoices::default());
        }
        c.1.refresh(t);
        let service = Some(form.service.as_str()).filter(|s| !s.is_empty());
        (c.1.services(t), c.1.operations(t, service))
    };
    let color_of: Rc<BTreeMap<String, u16>> = {
        let run = lab.run.borrow();
        let t = run.telemetry();
        Rc::new(
            (0..t.service_names.len() as u16)
                .map(|i| (t.service_name(ServiceId(i)).to_string(), i))
                .collect(),
        )
    };
    let results: Rc<Vec<TraceSummary>> = {
        let run = lab.run.clone();
        let sort = props.query.sort.clone();
        (*use_memo((search.clone(), refresh, sort), move |(q, _, sort)| {
            let mut rows = search_traces(run.borrow().telemetry(), q);
            sort_results(&mut rows, sort.as_deref());
            Rc::new(rows)
        }))
        .clone()
    };

    let selected = use_state(|| None::<usize>);
    {
        let selected = selected.clone();
        // A new search starts the selection afresh; a refresh while the run plays keeps it.
        use_effect_with(props.query.clone(), move |_| selected.set(None));
    }
    let open = {
        let (on_navigate, query) = (props.on_navigate.clone(), props.query.clone());
        Callback::from(move |id: TraceId| {
            on_navigate.emit(LabQuery {
                trace: Some(id.to_string()),
                ..query.clone()
            })
        })
    };
    {
        let (selected, results, open) = (selected.clone(), results.clone(), open.clone());
        use_keydown(Callback::from(move |e: KeyboardEvent| {
            if typed_into_field(&e) || results.is_empty() {
                return;
            }
            let last = results.len() - 1;
            match e.key().as_str() {
                "/" => {
                    e.prevent_default();
                    focus_element("search-tags");
                }
                "j" => {
                    e.prevent_default();
                    selected.set(Some(selected.map_or(0, |s| (s + 1).min(last))));
                }
                "k" => {
                    e.prevent_default();
                    selected.set(Some(selected.map_or(0, |s| s.saturating_sub(1))));
                }
                "Enter" => {
                    if let Some(s) = *selected {
                        e.prevent_default();
                        open.emit(results[s].trace_id);
                    }
                }
                _ => {}
            }
        }));
    }

    let edit = |set: fn(&mut Form, String)| {
        let form = form.clone();
        Callback::from(move |e: Event| {
            let value = e
                .target_dyn_into::<web_sys::HtmlInputElement>()
                .map(|i| i.value())
                .or_else(|| {
                    e.target_dyn_into::<web_sys::HtmlSelectElement>()
                        .map(|s| s.value())
                })
                .unwrap_or_default();
            let mut f = (*form).clone();
            set(&mut f, value);
            form.set(f);
        })
    };
    let on_service = edit(|f, v| {
        f.service = v;
        f.operation.clear();
    });
    let on_operation = edit(|f, v| f.operation = v);
    let on_tags = edit(|f, v| f.tags = v);
    let on_min = edit(|f, v| f.min = v);
    let on_max = edit(|f, v| f.max = v);
    let on_limit = edit(|f, v| f.limit = v);
    let on_lookback = edit(|f, v| f.lookback = v);
    let on_from = edit(|f, v| f.from = v);
    let on_to = edit(|f, v| f.to = v);
    let on_sort = {
        let (on_navigate, query) = (props.on_navigate.clone(), props.query.clone());
        Callback::from(move |e: Event| {
            let value = e
                .target_dyn_into::<web_sys::HtmlSelectElement>()
                .map(|s| s.value())
                .unwrap_or_default();
            on_navigate.emit(LabQuery {
                sort: (!value.is_empty()).then_some(value),
                ..query.clone()
            });
        })
    };
    let on_errors = {
        let form = form.clone();
        Callback::from(move |e: Event| {
            let checked = e
                .target_dyn_into::<web_sys::HtmlInputElement>()
                .is_some_and(|i| i.checked());
            form.set(Form {
                errors: checked,
                ..(*form).clone()
            });
        })
    };
    let onsubmit = {
        let (form, on_navigate, query) =
            (form.clone(), props.on_navigate.clone(), props.query.clone());
        move |e: SubmitEvent| {
            e.prevent_default();
            let next = (*form).clone().into_query(&query);
            if !search_query(&next, SimTime::ZERO).1.any() {
                on_navigate.emit(next);
            }
        }
    };
    let field_error = |id: &str, error: &Option<String>| {
        error.as_ref().map(|message| {
            html! { <p class="field-error" id={format!("{id}-error")} role="alert">{ message.clone() }</p> }
        })
    };
    let input = |id: &'static str,
                 label: &'static str,
                 placeholder: &'static str,
                 value: &str,
                 onchange: Callback<Event>,
                 error: &Option<String>| {
        html! {
            <div class={classes!("field", error.is_some().then_some("invalid"))}>
                <label for={id}>{ label }</label>
                <input {id} type="text" value={value.to_string()} {placeholder} {onchange}
                       spellcheck="false" autocomplete="off"
                       aria-invalid={error.is_some().to_string()}
                       aria-describedby={error.is_some().then(|| format!("{id}-error"))} />
                { field_error(id, error) }
            </div>
        }
    };
    // A choice among what the run holds, with "all" first.
    let choose = |id: &'static str,
                  label: &'static str,
                  all: &'static str,
                  options: &[String],
                  chosen: &str,
                  onchange: Callback<Event>| {
        html! {
            <div class="field">
                <label for={id}>{ label }</label>
                <select {id} {onchange}>
                    <option value="" selected={chosen.is_empty()}>{ all }</option>
                    for o in options {
                        <option value={o.clone()} selected={chosen == o}>{ o.clone() }</option>
                    }
                </select>
            </div>
        }
    };
    let longest = results
        .iter()
        .map(|r| r.duration.0)
        .max()
        .unwrap_or(0)
        .max(1);
    html! {
        <div class="trace-search">
            <form class="search-form" {onsubmit} aria-label="Find traces" novalidate=true>
                <h2>{ "Search" }</h2>
                { choose("search-service", "Service", "all services", &services, &form.service, on_service) }
                { choose("search-operation", "Operation", "all operations", &operations, &form.operation, on_operation) }
                <div class={classes!("field", field_errors.lookback.is_some().then_some("invalid"))}>
                    <label for="search-lookback">{ "Lookback" }</label>
                    <select id="search-lookback" onchange={on_lookback}
                            aria-invalid={field_errors.lookback.is_some().to_string()}
                            aria-describedby={field_errors.lookback.is_some().then_some("search-lookback-error")}>
                        for (value, label) in LOOKBACKS {
                            <option {value} selected={form.lookback == value}>{ label }</option>
                        }
                    </select>
                    { field_error("search-lookback", &field_errors.lookback) }
                </div>
                <div class="field-pair">
                    { input("search-from", "From", "e.g. 1:05", &form.from, on_from, &field_errors.from) }
                    { input("search-to", "To", "e.g. 90s", &form.to, on_to, &field_errors.to) }
                </div>
                { input("search-tags", "Tags", "http.response.status_code=504 error=true", &form.tags, on_tags, &field_errors.tags) }
                <div class="field-pair">
                    { input("search-min", "Min duration", "e.g. 1.2s", &form.min, on_min, &field_errors.min) }
                    { input("search-max", "Max duration", "e.g. 300ms", &form.max, on_max, &field_errors.max) }
                </div>
                <div class="field-pair">
                    <div class="field">
                        <label for="search-limit">{ "Limit results" }</label>
                        <input id="search-limit" type="number" min="1" max={LIMIT_MAX.to_string()}
                               value={form.limit.clone()} onchange={on_limit} />
                    </div>
                    <label class="check" for="search-errors">
                        <input id="search-errors" type="checkbox" checked={form.errors} onchange={on_errors} />
                        { "Errors only" }
                    </label>
                </div>
                <button class="button primary" id="search-submit" type="submit"
                        disabled={field_errors.any()}>{ "Find traces" }</button>
                <p class="muted search-hint">{ "Keys: / tags · j k move · Enter opens" }</p>
            </form>
            <section class="search-results" aria-label="Search results">
                <Scatter results={results.clone()} on_open={open.clone()} />
                <div class="results-head">
                    <h2 id="results-count">{ format!("{} trace{}", results.len(), if results.len() == 1 { "" } else { "s" }) }</h2>
                    if lab.moving { <span class="muted">{ "refreshing as the run plays" }</span> }
                    <label class="results-sort">
                        <span class="muted">{ "Sort" }</span>
                        <select id="results-sort" onchange={on_sort}>
                            for (value, label) in SORTS {
                                <option {value} selected={props.query.sort.as_deref().unwrap_or("") == value}>{ label }</option>
                            }
                        </select>
                    </label>
                </div>
                if results.is_empty() {
                    <p class="empty-results" id="no-results">{ "No traces match. Loosen the search, or let the run play further." }</p>
                }
                <ol class="trace-results" id="trace-results">
                    for (i, r) in results.iter().enumerate() {
                        <ResultItem summary={r.clone()} longest_us={longest} selected={*selected == Some(i)}
                                    color_of={color_of.clone()} on_open={open.clone()} />
                    }
                </ol>
            </section>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct ResultItemProps {
    summary: TraceSummary,
    longest_us: u64,
    selected: bool,
    color_of: Rc<BTreeMap<String, u16>>,
    on_open: Callback<TraceId>,
}

#[component]
fn ResultItem(props: &ResultItemProps) -> Html {
    let r = &props.summary;
    let id = r.trace_id;
    let share = 100.0 * r.duration.0 as f64 / props.longest_us as f64;
    let onclick = props.on_open.reform(move |_: MouseEvent| id);
    let node = use_node_ref();
    {
        let node = node.clone();
        use_effect_with(props.selected, move |selected| {
            if *selected {
                if let Some(el) = node.cast::<web_sys::HtmlElement>() {
                    let _ = el.focus();
                }
            }
        });
    }
    html! {
        <li class={classes!("trace-result", props.selected.then_some("selected"), (r.errors > 0).then_some("has-errors"), (r.open > 0).then_some("in-progress"))}
            data-duration-us={r.duration.0.to_string()} data-trace-id={id.to_string()}>
            <button type="button" class="trace-result-title" ref={node} {onclick}>
                <span class="result-bar" style={format!("width:{share:.2}%")} aria-hidden="true"></span>
                <span class="result-name">
                    <span class="result-service">{ format!("{}: ", r.root_service) }</span>
                    <span class="result-op">{ r.root_operation.clone() }</span>
                    <span class="trace-id">{ short_id(id) }</span>
                </span>
                <span class="result-duration">{ format!("{}{}", duration(r.duration), if r.open > 0 { "+" } else { "" }) }</span>
            </button>
            <div class="trace-result-body">
                <span class="pill">{ format!("{} span{}", count(u64::from(r.spans)), if r.spans == 1 { "" } else { "s" }) }</span>
                if r.open > 0 {
                    <span class="pill">{ format!("{} in progress", r.open) }</span>
                }
                if r.errors > 0 {
                    <span class="pill error">{ format!("{} error{}", r.errors, if r.errors == 1 { "" } else { "s" }) }</span>
                }
                <ul class="service-chips" aria-label="Services">
                    for (service, n) in r.services.iter() {
                        <li class="service-chip"
                            style={format!("--svc:{}", service_color(props.color_of.get(service).copied().unwrap_or(0)))}>
                            { format!("{service} ({n})") }
                        </li>
                    }
                </ul>
                <span class="result-start" title="start, on the run's clock">{ clock_ms(r.start) }</span>
            </div>
        </li>
    }
}

#[derive(Properties, PartialEq)]
struct ScatterProps {
    results: Rc<Vec<TraceSummary>>,
    on_open: Callback<TraceId>,
}

/// The plot's size in its own units (the SVG scales to the width it is given).
const PLOT_W: f64 = 760.0;
const PLOT_H: f64 = 170.0;
const PLOT_LEFT: f64 = 62.0;
const PLOT_RIGHT: f64 = 16.0;
const PLOT_TOP: f64 = 12.0;
const PLOT_BOTTOM: f64 = 24.0;

/// Durations over start times, as Jaeger's search page plots its results: red for traces with
/// errors, bigger for more spans; a click opens the trace.
#[component]
fn Scatter(props: &ScatterProps) -> Html {
    let results = &props.results;
    if results.is_empty() {
        return html! { <div class="scatter empty" aria-hidden="true"></div> };
    }
    let first = results.iter().map(|r| r.start.0).min().unwrap_or(0);
    let last = results.iter().map(|r| r.start.0).max().unwrap_or(0);
    let (x0, x1) = if last > first {
        (first, last)
    } else {
        (first.saturating_sub(1_000_000), first + 1_000_000)
    };
    let longest = results
        .iter()
        .map(|r| r.duration.0)
        .max()
        .unwrap_or(0)
        .max(1);
    let y_top = longest as f64 * 1.1;
    let plot_w = PLOT_W - PLOT_LEFT - PLOT_RIGHT;
    let plot_h = PLOT_H - PLOT_TOP - PLOT_BOTTOM;
    let x = |t: u64| PLOT_LEFT + plot_w * (t - x0) as f64 / (x1 - x0) as f64;
    let y = |d: u64| PLOT_TOP + plot_h * (1.0 - d as f64 / y_top);
    let y_ticks: Vec<u64> = (0..=3)
        .map(|k| (y_top * f64::from(k) / 3.0) as u64)
        .collect();
    let x_ticks: Vec<u64> = (0..=4).map(|k| x0 + (x1 - x0) * k / 4).collect();
    html! {
        <figure class="scatter" id="trace-scatter">
            <svg viewBox={format!("0 0 {PLOT_W} {PLOT_H}")} role="img"
                 aria-label="Trace durations over their start times; red ones have errors">
                for d in y_ticks {
                    <g class="scatter-grid">
                        <line x1={PLOT_LEFT.to_string()} x2={(PLOT_W - PLOT_RIGHT).to_string()}
                              y1={y(d).to_string()} y2={y(d).to_string()} />
                        <text x={(PLOT_LEFT - 8.0).to_string()} y={(y(d) + 3.5).to_string()} text-anchor="end">
                            { duration(Duration(d)) }
                        </text>
                    </g>
                }
                for (k, t) in x_ticks.into_iter().enumerate() {
                    <text class="scatter-x" x={x(t).to_string()} y={(PLOT_H - 6.0).to_string()}
                          text-anchor={match k { 0 => "start", 4 => "end", _ => "middle" }}>
                        { clock_ms(SimTime(t)) }
                    </text>
                }
                for r in results.iter() {
                    <circle class={classes!("dot", (r.errors > 0).then_some("error"))}
                            cx={format!("{:.1}", x(r.start.0))} cy={format!("{:.1}", y(r.duration.0))}
                            r={format!("{:.1}", (3.0 + f64::from(r.spans).sqrt() * 0.6).min(9.0))}
                            onclick={props.on_open.reform({ let id = r.trace_id; move |_: MouseEvent| id })}>
                        <title>{ format!("{}: {} · {} · {} spans", r.root_service, r.root_operation, duration(r.duration), r.spans) }</title>
                    </circle>
                }
            </svg>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(min: &str, max: &str, tags: &str) -> LabQuery {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        LabQuery {
            min: opt(min),
            max: opt(max),
            tags: opt(tags),
            ..LabQuery::default()
        }
    }

    #[test]
    fn the_form_s_fields_become_a_search_with_errors_at_their_fields() {
        let (q, errors) = search_query(&query("1.2s", "", "error=true"), SimTime::ZERO);
        assert!(!errors.any());
        assert_eq!(q.min_duration, Some(Duration::from_ms(1_200)));
        assert_eq!(q.tags, [("error".to_string(), "true".to_string())]);
        assert_eq!(q.limit, DEFAULT_LIMIT);

        let (q, errors) = search_query(&query("12", "300 ms", "status"), SimTime::ZERO);
        assert!(q.min_duration.is_none() && q.tags.is_empty());
        assert_eq!(q.max_duration, Some(Duration::from_ms(300)));
        assert!(errors.min.unwrap().contains("no unit"));
        assert!(errors.tags.unwrap().contains("has no `=`"));

        let (q, errors) = search_query(&query("2s", "1s", ""), SimTime::ZERO);
        assert!(errors.max.unwrap().contains("below the minimum"));
        assert!(q.max_duration.is_none());
    }

    #[test]
    fn lookback_counts_back_from_the_clock_and_sorts_reorder() {
        let q = LabQuery {
            lookback: Some("10s".into()),
            ..LabQuery::default()
        };
        assert_eq!(
            search_query(&q, SimTime::from_ms(60_000)).0.from,
            Some(SimTime::from_ms(50_000))
        );
        assert_eq!(
            search_query(&q, SimTime::from_ms(4_000)).0.from,
            Some(SimTime::ZERO)
        );
        assert_eq!(
            search_query(&LabQuery::default(), SimTime::from_ms(4_000))
                .0
                .from,
            None
        );
        let row = |n: u128, ms: u64, spans: u32| TraceSummary {
            trace_id: TraceId(n),
            root_service: String::new(),
            root_operation: String::new(),
            start: SimTime::ZERO,
            duration: Duration::from_ms(ms),
            spans,
            errors: 0,
            open: 0,
            services: Vec::new(),
        };
        let order = |sort: Option<&str>| {
            let mut rows = vec![row(1, 5, 9), row(2, 50, 3), row(3, 20, 12)];
            sort_results(&mut rows, sort);
            rows.iter().map(|r| r.trace_id.0).collect::<Vec<_>>()
        };
        assert_eq!(order(None), [1, 2, 3]);
        assert_eq!(order(Some("longest")), [2, 3, 1]);
        assert_eq!(order(Some("shortest")), [1, 3, 2]);
        assert_eq!(order(Some("most-spans")), [3, 1, 2]);
        assert_eq!(order(Some("least-spans")), [2, 1, 3]);
    }

    #[test]
    fn a_from_to_range_is_read_on_the_run_s_clock_with_errors_at_its_fields() {
        let range = |lookback: &str, from: &str, to: &str| {
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let q = LabQuery {
                lookback: opt(lookback),
                from: opt(from),
                to: opt(to),
                ..LabQuery::default()
            };
            search_query(&q, SimTime::from_ms(120_000))
        };
        let (q, errors) = range("", "1:05", "90s");
        assert!(!errors.any());
        assert_eq!(
            (q.from, q.until),
            (
                Some(SimTime::from_ms(65_000)),
                Some(SimTime::from_ms(90_000))
            )
        );
        let (q, _) = range("", "", "0:30.5");
        assert_eq!((q.from, q.until), (None, Some(SimTime::from_ms(30_500))));

        let (q, errors) = range("", "1:75", "65");
        assert!(errors.from.unwrap().contains("go from 00 to 59"));
        assert!(errors.to.unwrap().contains("write 65s"));
        assert_eq!((q.from, q.until), (None, None));

        let (q, errors) = range("", "1:05", "1:00");
        assert_eq!(
            errors.to.as_deref(),
            Some("the end is not after the start (1:05.000)")
        );
        assert_eq!((q.from, q.until), (Some(SimTime::from_ms(65_000)), None));

        // A lookback with a range: the range is searched, the lookback refused at its field.
        let (q, errors) = range("10s", "0:20", "");
        assert!(errors.lookback.unwrap().contains("do not mix"));
        assert_eq!((q.from, q.until), (Some(SimTime::from_ms(20_000)), None));
        let (q, errors) = range("10s", "", "");
        assert!(!errors.any());
        assert_eq!(q.from, Some(SimTime::from_ms(110_000)));
    }

    #[test]
    fn the_form_writes_only_what_is_set_into_the_url() {
        let form = Form {
            service: "payments".into(),
            min: " 300ms ".into(),
            limit: "20".into(),
            from: "1:05".into(),
            ..Form::default()
        };
        let base = LabQuery {
            seed: Some(7),
            trace: Some("ab".into()),
            ..LabQuery::default()
        };
        let q = form.clone().into_query(&base);
        assert_eq!(q.service.as_deref(), Some("payments"));
        assert_eq!(q.min.as_deref(), Some("300ms"));
        assert_eq!((q.from.as_deref(), q.to.as_deref()), (Some("1:05"), None));
        assert_eq!(
            (q.limit, q.errors, q.trace.as_deref(), q.seed),
            (None, None, None, Some(7))
        );
        assert_eq!(
            Form::of(&q),
            Form {
                min: "300ms".into(),
                ..form
            }
        );
    }

    #[test]
    fn ids_and_clocks_read_as_jaeger_writes_them() {
        let id = TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(short_id(id), "4bf92f3");
        assert_eq!(parse_trace_id(&id.to_string()), Some(id));
        assert_eq!(parse_trace_id("xyz"), None);
        assert_eq!(parse_trace_id(""), None);
        assert_eq!(clock_ms(SimTime::from_ms(62_345)), "1:02.345");
        assert_ne!(service_color(0), service_color(1));
    }
}
