//! The trace page, as Jaeger UI's: a header (root, duration, services, depth, spans, start),
//! warnings when the trace is incomplete or skewed, a time axis, and the waterfall: spans in
//! tree order, collapsible, coloured by service, with error marks and the critical path drawn
//! on the bars; rows are virtualized. A row opens the span detail panel beside it.

use std::collections::BTreeSet;
use std::rc::Rc;

use faultline_engine::query::{
    OperationStats, Presence, SpanDetail, SpanRow, TraceComparison, TraceQuery, TraceSummary,
    TraceView, compare_traces, search_traces, span_detail, trace_statistics, trace_view,
};
use faultline_engine::telemetry::{SpanId, TraceId};
use yew::prelude::*;

use super::LabRun;
use super::keys::{typed_into_field, use_keydown};
use super::overview::{count, duration};
use super::traces::{clock_ms, parse_trace_id, service_color, short_id, use_refresh};
use super::url::LabQuery;
use crate::components::virtual_list::VirtualList;

/// Height of a waterfall row in pixels (the virtual list needs them all equal).
pub const ROW_HEIGHT: u32 = 26;
/// Height of the waterfall's scrolling viewport in pixels.
const WATERFALL_HEIGHT: u32 = 540;
/// Ticks on the time axis, the first at 0 and the last at the trace's end, as Jaeger UI's five.
const TICKS: u32 = 5;
/// Pixels of indentation per level, and the level beyond which rows indent no further.
const INDENT_PX: u32 = 14;
const INDENT_LEVELS_MAX: u32 = 24;

/// What the trace page shows under its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Timeline,
    Statistics,
    Compare,
}

/// Whether the key press is on a button or link, which handles Enter and Space itself.
fn on_control(e: &KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    e.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "BUTTON" | "A"))
}

/// The row after (or before) `at` among the visible rows, or the first when none is selected.
pub fn step_selection(visible: &[u32], at: Option<u32>, forward: bool) -> Option<u32> {
    let last = visible.len().checked_sub(1)?;
    let pos = at.and_then(|row| visible.iter().position(|&r| r == row));
    let next = match (pos, forward) {
        (None, _) => 0,
        (Some(p), true) => (p + 1).min(last),
        (Some(p), false) => p.saturating_sub(1),
    };
    Some(visible[next])
}

#[derive(Properties, PartialEq)]
pub struct TracePageProps {
    pub trace_id: TraceId,
    pub query: LabQuery,
    pub on_navigate: Callback<LabQuery>,
}

#[component]
pub fn TracePage(props: &TracePageProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let refresh = use_refresh(&lab);
    let view: Rc<Option<TraceView>> = {
        let run = lab.run.clone();
        use_memo((props.trace_id, refresh), move |(id, _)| {
            trace_view(run.borrow().telemetry(), *id)
        })
    };
    let collapsed = use_state(|| Rc::new(BTreeSet::<SpanId>::new()));
    // The selected row (by index into the view's rows) and whether its detail is open.
    let selected = use_state(|| None::<u32>);
    let detail_open = use_state(|| false);
    // The timeline, the statistics table (Jaeger UI's "Trace Statistics") or the comparison.
    let compare_id = props.query.compare.as_deref().and_then(parse_trace_id);
    let mode = use_state(|| {
        if compare_id.is_some() {
            Mode::Compare
        } else {
            Mode::Timeline
        }
    });
    {
        let (collapsed, selected, detail_open) =
            (collapsed.clone(), selected.clone(), detail_open.clone());
        use_effect_with(props.trace_id, move |_| {
            collapsed.set(Rc::new(BTreeSet::new()));
            selected.set(None);
            detail_open.set(false);
        });
    }
    let visible: Rc<Vec<u32>> = {
        let view = view.clone();
        use_memo(
            (props.trace_id, refresh, (*collapsed).clone()),
            move |(_, _, collapsed)| {
                (*view)
                    .as_ref()
                    .map_or_else(Vec::new, |v| v.visible_rows(collapsed))
            },
        )
    };
    let back = {
        let (on_navigate, query) = (props.on_navigate.clone(), props.query.clone());
        Callback::from(move |_: ()| {
            on_navigate.emit(LabQuery {
                trace: None,
                compare: None,
                ..query.clone()
            })
        })
    };
    {
        let (selected, detail_open, visible, back) = (
            selected.clone(),
            detail_open.clone(),
            visible.clone(),
            back.clone(),
        );
        use_keydown(Callback::from(move |e: KeyboardEvent| {
            if typed_into_field(&e) {
                return;
            }
            match e.key().as_str() {
                "Escape" => {
                    e.prevent_default();
                    if *detail_open {
                        detail_open.set(false);
                    } else {
                        back.emit(());
                    }
                }
                "j" | "k" => {
                    e.prevent_default();
                    let forward = e.key() == "j";
                    selected.set(step_selection(&visible, *selected, forward).or(*selected));
                }
                "Enter" if !on_control(&e) => {
                    e.prevent_default();
                    if selected.is_none() {
                        selected.set(visible.first().copied());
                    }
                    detail_open.set(true);
                }
                _ => {}
            }
        }));
    }

    let Some(v) = (*view).as_ref() else {
        return html! {
            <section class="trace-page">
                <button class="button back" type="button" onclick={back.reform(|_: MouseEvent| ())}>{ "← Search" }</button>
                <p class="notice error" role="alert" id="trace-missing">
                    { format!("This run has no trace {} (yet).", props.trace_id) }
                </p>
            </section>
        };
    };

    let on_compare = {
        let (on_navigate, query) = (props.on_navigate.clone(), props.query.clone());
        Callback::from(move |other: Option<TraceId>| {
            on_navigate.emit(LabQuery {
                compare: other.map(|id| id.to_string()),
                ..query.clone()
            })
        })
    };
    let on_select = {
        let (selected, detail_open) = (selected.clone(), detail_open.clone());
        Callback::from(move |row: u32| {
            if *selected == Some(row) && *detail_open {
                detail_open.set(false);
            } else {
                selected.set(Some(row));
                detail_open.set(true);
            }
        })
    };
    let on_toggle = {
        let collapsed = collapsed.clone();
        Callback::from(move |span: SpanId| {
            let mut next = (**collapsed).clone();
            if !next.remove(&span) {
                next.insert(span);
            }
            collapsed.set(Rc::new(next));
        })
    };
    let expand_all = {
        let collapsed = collapsed.clone();
        move |_: MouseEvent| collapsed.set(Rc::new(BTreeSet::new()))
    };
    let collapse_all = {
        let (collapsed, parents) = (collapsed.clone(), v.parents());
        move |_: MouseEvent| collapsed.set(Rc::new(parents.clone()))
    };
    let render = {
        let (view, visible, collapsed) = (view.clone(), visible.clone(), (*collapsed).clone());
        let (selected, on_select, on_toggle) = (*selected, on_select.clone(), on_toggle.clone());
        Callback::from(move |pos: u32| {
            let Some(v) = (*view).as_ref() else {
                return Html::default();
            };
            let Some(&row) = visible.get(pos as usize) else {
                return Html::default();
            };
            let r = &v.rows[row as usize];
            span_row(
                r,
                row,
                selected == Some(row),
                collapsed.contains(&r.span_id),
                &on_select,
                &on_toggle,
            )
        })
    };
    let scroll_to =
        selected.and_then(|row| visible.iter().position(|&r| r == row).map(|p| p as u32));
    let detail = (*detail_open)
        .then_some(*selected)
        .flatten()
        .and_then(|row| v.rows.get(row as usize))
        .map(|r| {
            let detail_open = detail_open.clone();
            html! {
                <SpanDetailPanel trace_id={v.trace_id} span_id={r.span_id} {refresh}
                    service_index={r.service_index}
                    on_close={Callback::from(move |_| detail_open.set(false))} />
            }
        });
    let critical_spans = v.rows.iter().filter(|r| r.on_critical_path()).count() as u64;
    // Grafana's "logs for this trace": the log view on this trace's lines.
    let logs_of_trace = {
        let (on_navigate, query, id) = (props.on_navigate.clone(), props.query.clone(), v.trace_id);
        Callback::from(move |_: MouseEvent| {
            on_navigate.emit(LabQuery {
                view: Some("logs".into()),
                q: Some(format!("{{trace_id=\"{id}\"}}")),
                ..query.clone()
            })
        })
    };

    html! {
        <section class="trace-page" aria-label="Trace">
            <header class="trace-header">
                <button class="button back" type="button" id="trace-back"
                        onclick={back.reform(|_: MouseEvent| ())}>{ "← Search" }</button>
                <h2 class="trace-title">
                    <span class="trace-root">{ format!("{}: ", v.root_service) }</span>
                    <span class="trace-root-op">{ v.root_operation.clone() }</span>
                    <span class="trace-id" title={v.trace_id.to_string()}>{ short_id(v.trace_id) }</span>
                </h2>
                <button class="button small" type="button" id="trace-logs" onclick={logs_of_trace}>{ "Logs of this trace" }</button>
                <div class="trace-badges">
                    if v.incomplete {
                        <span class="pill warn" id="trace-incomplete" title="some spans' parents are missing">{ "incomplete" }</span>
                    }
                    if v.errors > 0 {
                        <span class="pill error">{ format!("{} error{}", v.errors, if v.errors == 1 { "" } else { "s" }) }</span>
                    }
                    if v.open > 0 {
                        <span class="pill">{ format!("{} in progress", v.open) }</span>
                    }
                </div>
                <dl class="trace-facts" id="trace-facts">
                    <div><dt>{ "Trace start" }</dt><dd>{ clock_ms(v.start) }</dd></div>
                    <div><dt>{ "Duration" }</dt><dd id="trace-duration">{ duration(v.duration) }</dd></div>
                    <div><dt>{ "Services" }</dt><dd>{ v.services.len() }</dd></div>
                    <div><dt>{ "Depth" }</dt><dd>{ v.depth }</dd></div>
                    <div><dt>{ "Total spans" }</dt><dd id="trace-span-count">{ count(v.rows.len() as u64) }</dd></div>
                    <div><dt>{ "On critical path" }</dt><dd>{ count(critical_spans) }</dd></div>
                </dl>
            </header>
            if !v.warnings.is_empty() {
                <div class="trace-warnings" role="note" id="trace-warnings">
                    <strong>{ if v.incomplete { "This trace is incomplete." } else { "This trace has clock problems." } }</strong>
                    <ul>
                        for w in v.warnings.iter().take(20) { <li>{ w.clone() }</li> }
                    </ul>
                    if v.warnings.len() > 20 {
                        <p class="muted">{ format!("and {} more", v.warnings.len() - 20) }</p>
                    }
                </div>
            }
            <div class="trace-toolbar">
                <div class="segmented" role="group" aria-label="Trace view">
                    for (m, id, label) in [(Mode::Timeline, "show-timeline", "Timeline"), (Mode::Statistics, "show-statistics", "Statistics"), (Mode::Compare, "show-compare", "Compare")] {
                        <button type="button" {id} aria-pressed={(*mode == m).to_string()}
                                onclick={{ let mode = mode.clone(); move |_: MouseEvent| mode.set(m) }}>{ label }</button>
                    }
                </div>
                if *mode == Mode::Timeline {
                    <button class="button small" type="button" id="expand-all" onclick={expand_all}>{ "Expand all" }</button>
                    <button class="button small" type="button" id="collapse-all" onclick={collapse_all}>{ "Collapse all" }</button>
                }
                <ul class="service-chips legend" aria-label="Services">
                    for s in v.services.iter() {
                        <li class="service-chip" style={format!("--svc:{}", service_color(s.service_index))}>
                            { format!("{} ({})", s.service, s.spans) }
                        </li>
                    }
                </ul>
                <span class="legend-critical"><span class="legend-swatch" aria-hidden="true"></span>{ "critical path" }</span>
            </div>
            if *mode == Mode::Statistics {
                <TraceStatistics trace_id={v.trace_id} {refresh} />
            } else if *mode == Mode::Compare {
                <TraceCompare trace_id={v.trace_id} compare={compare_id} {refresh}
                              root_service={v.root_service.clone()} root_operation={v.root_operation.clone()}
                              on_pick={on_compare} />
            } else {
            <div class={classes!("trace-body", detail.is_some().then_some("with-detail"))}>
                <div class="waterfall" id="waterfall" role="grid" aria-label="Spans" aria-rowcount={visible.len().to_string()}>
                    <div class="waterfall-head" role="row">
                        <div class="span-name" role="columnheader">{ "Service & operation" }</div>
                        <div class="time-axis" role="columnheader">
                            for (share, at) in v.ticks(TICKS) {
                                <span class="tick" style={format!("left:{:.3}%", share * 100.0)}>{ duration(at) }</span>
                            }
                        </div>
                    </div>
                    <VirtualList rows={visible.len() as u32} row_height={ROW_HEIGHT}
                                 height={WATERFALL_HEIGHT.min((visible.len() as u32).max(1) * ROW_HEIGHT + 2)}
                                 {render} {scroll_to} class="waterfall-rows" />
                </div>
                { detail }
            </div>
            }
        </section>
    }
}

/// One waterfall row: a plain function, not a component, as rows come and go with every
/// scroll step (a component's set-up costs more than the row's few elements).
fn span_row(
    r: &SpanRow,
    index: u32,
    selected: bool,
    collapsed: bool,
    on_select: &Callback<u32>,
    on_toggle: &Callback<SpanId>,
) -> Html {
    let span = r.span_id;
    let onclick = on_select.reform(move |_: MouseEvent| index);
    let toggle = on_toggle.clone();
    let on_toggle = move |e: MouseEvent| {
        e.stop_propagation();
        toggle.emit(span);
    };
    let indent = r.depth.min(INDENT_LEVELS_MAX) * INDENT_PX;
    let end = r.bar_left + r.bar_width;
    let label_style = if end < 0.8 {
        format!("left:calc({:.3}% + 6px)", end * 100.0)
    } else {
        format!("right:calc({:.3}% + 6px)", (1.0 - r.bar_left) * 100.0)
    };
    html! {
        <div key={index} class={classes!("span-row", selected.then_some("selected"), r.error.then_some("error"),
                             r.on_critical_path().then_some("critical"))}
             role="row" aria-selected={selected.to_string()}
             title={format!("{} {} · {}{}", r.service, r.operation, duration(r.duration), if r.error { " · error" } else { "" })}
             data-span-id={span.to_string()} data-depth={r.depth.to_string()}
             style={format!("--svc:{}", service_color(r.service_index))} {onclick}>
            <div class="span-name" role="gridcell" style={format!("padding-left:{}px;--indent:{indent}px", indent + 6)}>
                if r.has_children {
                    <button type="button" class="span-toggle" onclick={on_toggle}
                            aria-expanded={(!collapsed).to_string()}
                            aria-label={if collapsed { "Expand subtree" } else { "Collapse subtree" }}>
                        { if collapsed { "▸" } else { "▾" } }
                    </button>
                } else {
                    <span class="span-toggle-space" aria-hidden="true"></span>
                }
                if r.error {
                    <span class="span-error-mark" title="error" aria-label="error">{ "!" }</span>
                }
                <span class="span-service">{ r.service.clone() }</span>
                <span class="span-op">{ r.operation.clone() }</span>
                if collapsed {
                    <span class="span-hidden" title="spans folded under this one">{ format!("+{}", r.descendants) }</span>
                }
                if r.orphan {
                    <span class="span-orphan" title="its parent is not in the trace">{ "orphan" }</span>
                }
            </div>
            <div class="span-timeline" role="gridcell">
                <div class={classes!("span-bar", r.open.then_some("open"))}
                     style={format!("left:{:.4}%;width:{:.4}%", r.bar_left * 100.0, r.bar_width * 100.0)}></div>
                for (left, width) in r.critical.iter() {
                    <div class="span-critical"
                         style={format!("left:{:.4}%;width:{:.4}%", left * 100.0, width * 100.0)}></div>
                }
                <span class="span-duration" style={label_style}>
                    { if r.open { format!("{}+", duration(r.duration)) } else { duration(r.duration) } }
                </span>
            </div>
        </div>
    }
}

/// A dotted attribute key with a line-break opportunity after each dot, so a narrow panel
/// breaks `http.response.status_code` between its words, not inside one.
fn breakable(key: &str) -> Html {
    let parts: Vec<&str> = key.split_inclusive('.').collect();
    html! { for part in parts { { part }<wbr /> } }
}

#[derive(Properties, PartialEq)]
struct TraceStatisticsProps {
    trace_id: TraceId,
    refresh: u64,
}

/// Per service and operation: spans, total, average, shortest and longest, and self time with
/// its share of the trace, most self time first.
#[component]
fn TraceStatistics(props: &TraceStatisticsProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let rows: Rc<Vec<OperationStats>> = {
        let run = lab.run.clone();
        use_memo((props.trace_id, props.refresh), move |(id, _)| {
            trace_statistics(run.borrow().telemetry(), *id)
        })
    };
    html! {
        <table class="data-table trace-stats" id="trace-statistics">
            <thead><tr>
                <th scope="col">{ "service" }</th>
                <th scope="col">{ "operation" }</th>
                <th scope="col" class="num">{ "spans" }</th>
                <th scope="col" class="num">{ "errors" }</th>
                <th scope="col" class="num">{ "total" }</th>
                <th scope="col" class="num">{ "avg" }</th>
                <th scope="col" class="num">{ "min" }</th>
                <th scope="col" class="num">{ "max" }</th>
                <th scope="col" class="num">{ "self total" }</th>
                <th scope="col">{ "self, share of the trace" }</th>
            </tr></thead>
            <tbody>
                for r in rows.iter() {
                    <tr style={format!("--svc:{}", service_color(r.service_index))}>
                        <td class="stat-service">{ r.service.clone() }</td>
                        <td>{ r.operation.clone() }</td>
                        <td class="num">{ r.count }</td>
                        <td class={classes!("num", (r.errors > 0).then_some("bad"))}>{ r.errors }</td>
                        <td class="num">{ duration(r.total) }</td>
                        <td class="num">{ duration(r.average) }</td>
                        <td class="num">{ duration(r.min) }</td>
                        <td class="num">{ duration(r.max) }</td>
                        <td class="num">{ duration(r.self_total) }</td>
                        <td class="self-share">
                            <span class="share-bar" style={format!("width:{:.1}%", r.self_share * 100.0)}></span>
                            <span class="share-text">{ format!("{:.1}%", r.self_share * 100.0) }</span>
                        </td>
                    </tr>
                }
            </tbody>
        </table>
    }
}

#[derive(Properties, PartialEq)]
struct TraceCompareProps {
    trace_id: TraceId,
    compare: Option<TraceId>,
    refresh: u64,
    root_service: String,
    root_operation: String,
    on_pick: Callback<Option<TraceId>>,
}

/// Up to this many other traces of the same route are offered to compare with.
const COMPARE_CHOICES: u32 = 10;

/// Jaeger UI's trace compare: with no second trace chosen, recent traces of the same route to
/// pick from; with one, every path of either trace with its counts and durations on each side.
#[component]
fn TraceCompare(props: &TraceCompareProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let run = lab.run.clone();
    let deps = (
        props.trace_id,
        props.compare,
        props.refresh,
        props.root_service.clone(),
        props.root_operation.clone(),
    );
    let data: Rc<(Option<TraceComparison>, Vec<TraceSummary>)> =
        use_memo(deps, move |(id, other, _, service, operation)| {
            let r = run.borrow();
            let t = r.telemetry();
            match other {
                Some(other) => (compare_traces(t, *id, *other), Vec::new()),
                None => {
                    let q = TraceQuery {
                        service: Some(service.clone()),
                        operation: Some(operation.clone()),
                        limit: COMPARE_CHOICES + 1,
                        ..TraceQuery::default()
                    };
                    let mut choices = search_traces(t, &q);
                    choices.retain(|s| s.trace_id != *id);
                    choices.truncate(COMPARE_CHOICES as usize);
                    (None, choices)
                }
            }
        });
    let (comparison, choices) = &*data;
    let Some(c) = comparison else {
        return html! {
            <section class="compare-pick" id="compare-pick">
                <h3>{ format!("Compare with another {}: {}", props.root_service, props.root_operation) }</h3>
                if choices.is_empty() {
                    <p class="muted">{ "No other trace of this route yet." }</p>
                }
                <ul class="compare-choices">
                    for s in choices.iter() {
                        <li>
                            <button type="button" class="compare-choice"
                                    onclick={props.on_pick.reform({ let id = s.trace_id; move |_: MouseEvent| Some(id) })}>
                                <span class="trace-id">{ short_id(s.trace_id) }</span>
                                <span class="result-duration">{ duration(s.duration) }</span>
                                <span class="muted">{ format!("{} spans{}", s.spans, if s.errors > 0 { format!(", {} errors", s.errors) } else { String::new() }) }</span>
                                <span class="result-start">{ clock_ms(s.start) }</span>
                            </button>
                        </li>
                    }
                </ul>
            </section>
        };
    };
    let delta = |us: i64| {
        let text = duration(faultline_engine::Duration(us.unsigned_abs()));
        match us.signum() {
            1 => format!("+{text}"),
            -1 => format!("−{text}"),
            _ => "±0".to_string(),
        }
    };
    let side = |count: u32, d: faultline_engine::Duration| {
        if count == 0 {
            "—".to_string()
        } else if count == 1 {
            duration(d)
        } else {
            format!("{} × {count}", duration(d))
        }
    };
    html! {
        <section class="compare" id="trace-compare">
            <div class="compare-head">
                <span>{ "This trace " }<strong>{ duration(c.durations[0]) }</strong>{ format!(", {} spans", c.spans[0]) }</span>
                <span class="muted">{ "against" }</span>
                <span><span class="trace-id">{ short_id(c.traces[1]) }</span>{ " " }<strong>{ duration(c.durations[1]) }</strong>{ format!(", {} spans", c.spans[1]) }</span>
                <button type="button" class="button small" id="compare-other"
                        onclick={props.on_pick.reform(|_: MouseEvent| None)}>{ "Pick another" }</button>
                <span class="compare-legend">
                    <span class="only-first-mark">{ "only in this trace" }</span>
                    <span class="only-second-mark">{ "only in the other" }</span>
                </span>
            </div>
            <table class="data-table compare-table">
                <thead><tr>
                    <th scope="col">{ "service & operation" }</th>
                    <th scope="col" class="num">{ "this trace" }</th>
                    <th scope="col" class="num">{ "the other" }</th>
                    <th scope="col" class="num">{ "the other − this" }</th>
                </tr></thead>
                <tbody>
                    for r in c.rows.iter() {
                        <tr class={match r.presence { Presence::Both => None, Presence::OnlyFirst => Some("only-first"), Presence::OnlySecond => Some("only-second") }}
                            style={format!("--svc:{}", service_color(r.service_index))}>
                            <td class="compare-name" style={format!("padding-left:calc(0.8rem + {}px)", r.depth.min(INDENT_LEVELS_MAX) * INDENT_PX)}>
                                <span class="span-service">{ r.service.clone() }</span>{ " " }
                                <span class="span-op">{ r.operation.clone() }</span>
                            </td>
                            <td class="num">{ side(r.count[0], r.duration[0]) }</td>
                            <td class="num">{ side(r.count[1], r.duration[1]) }</td>
                            <td class={classes!("num", (r.delta_us() > 0).then_some("slower"), (r.delta_us() < 0).then_some("faster"))}>
                                { delta(r.delta_us()) }
                            </td>
                        </tr>
                    }
                </tbody>
            </table>
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub(super) struct SpanDetailProps {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub refresh: u64,
    pub service_index: u16,
    pub on_close: Callback<()>,
}

/// The selected span's detail; visible to the lab so its tests can draw it with a span selected
/// (the page opens it only on a click).
#[component]
pub(super) fn SpanDetailPanel(props: &SpanDetailProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let detail: Rc<Option<SpanDetail>> = {
        let run = lab.run.clone();
        use_memo(
            (props.trace_id, props.span_id, props.refresh),
            move |(trace, span, _)| span_detail(run.borrow().telemetry(), *trace, *span),
        )
    };
    let Some(d) = (*detail).as_ref() else {
        return Html::default();
    };
    let on_close = props.on_close.reform(|_: MouseEvent| ());
    let pairs = |list: &[(String, String)]| {
        html! {
            <table class="kv">
                <tbody>
                    for (k, v) in list.iter() {
                        <tr><th scope="row">{ breakable(k) }</th><td>{ v.clone() }</td></tr>
                    }
                </tbody>
            </table>
        }
    };
    html! {
        <aside class="span-detail" id="span-detail" aria-label="Span detail"
               style={format!("--svc:{}", service_color(props.service_index))}>
            <header class="span-detail-head">
                <div>
                    <p class="span-detail-service">{ format!("{} · instance {}", d.service, d.instance) }</p>
                    <h3>{ d.operation.clone() }</h3>
                </div>
                <button type="button" class="icon-button" id="span-detail-close" onclick={on_close}
                        aria-label="Close span detail (Esc)" title="Close (Esc)">{ "×" }</button>
            </header>
            <dl class="span-facts">
                <div><dt>{ "Kind" }</dt><dd>{ d.kind }</dd></div>
                <div><dt>{ "Status" }</dt><dd class={classes!((d.status == "error").then_some("bad"))} id="span-status">{ d.status }</dd></div>
                <div><dt>{ "Start" }</dt><dd>{ format!("+{}", duration(d.start_offset)) }<span class="muted">{ format!(" at {}", clock_ms(d.start)) }</span></dd></div>
                <div><dt>{ "Duration" }</dt><dd>{ d.duration.map_or_else(|| "in progress".to_string(), duration) }</dd></div>
                <div><dt>{ "Span" }</dt><dd class="mono">{ d.span_id.to_string() }</dd></div>
                <div><dt>{ "Parent" }</dt><dd class="mono">{ d.parent.map_or_else(|| "none (root)".to_string(), |p| p.to_string()) }</dd></div>
            </dl>
            <section class="span-section" id="span-attributes">
                <h4>{ format!("Attributes ({})", d.attributes.len()) }</h4>
                { pairs(&d.attributes) }
            </section>
            <section class="span-section" id="span-events">
                <h4>{ format!("Events ({})", d.events.len()) }</h4>
                if d.events.is_empty() { <p class="muted">{ "none" }</p> }
                <ol class="event-list">
                    for e in d.events.iter() {
                        <li>
                            <span class="offset">{ format!("+{}", duration(e.offset)) }</span>
                            <span class="event-name">{ e.name.clone() }</span>
                            { pairs(&e.attributes) }
                        </li>
                    }
                </ol>
            </section>
            <section class="span-section" id="span-logs">
                <h4>{ format!("Logs ({})", d.logs.len()) }</h4>
                if d.logs.is_empty() { <p class="muted">{ "no lines written inside this span" }</p> }
                <ol class="log-list">
                    for l in d.logs.iter() {
                        <li class={classes!("log-line", l.level)}>
                            <p class="log-line-head">
                                <span class="offset">{ format!("+{}", duration(l.offset)) }</span>
                                <span class="level">{ l.level }</span>
                                <span class="message">{ l.message.clone() }</span>
                            </p>
                            { pairs(&l.fields) }
                        </li>
                    }
                </ol>
            </section>
        </aside>
    }
}

#[cfg(test)]
mod tests {
    use super::step_selection;

    #[test]
    fn j_and_k_walk_the_visible_rows_and_stop_at_the_ends() {
        let visible = [0, 1, 4, 5];
        assert_eq!(step_selection(&visible, None, true), Some(0));
        assert_eq!(step_selection(&visible, Some(1), true), Some(4));
        assert_eq!(step_selection(&visible, Some(5), true), Some(5));
        assert_eq!(step_selection(&visible, Some(4), false), Some(1));
        assert_eq!(step_selection(&visible, Some(0), false), Some(0));
        // A selection folded away starts again at the top.
        assert_eq!(step_selection(&visible, Some(2), true), Some(0));
        assert_eq!(step_selection(&[], Some(2), true), None);
    }
}
