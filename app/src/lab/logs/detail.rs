//! One log line opened: its timestamp on both clocks (skew and time zones show here), its labels
//! and fields with filter buttons, the trace it belongs to, and its context: the lines the same
//! instance wrote just before and after it.

use faultline_engine::query::logs::{Clock, context_lines, log_row};
use faultline_engine::telemetry::TraceId;
use yew::prelude::*;

use crate::lab::LabRun;

/// Lines of context shown on each side.
const CONTEXT: usize = 5;

#[derive(Properties, PartialEq)]
pub struct DetailProps {
    pub line: u32,
    pub on_filter: Callback<(String, String, bool)>,
    pub on_trace: Callback<TraceId>,
    pub on_close: Callback<()>,
}

#[component]
pub fn Detail(props: &DetailProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let run = lab.run.borrow();
    let t = run.telemetry();
    let node = log_row(t, props.line, Clock::Node);
    let truth = log_row(t, props.line, Clock::True);
    let (before, after) = context_lines(t, props.line, CONTEXT, CONTEXT);
    let labels = [
        ("service", node.service.clone()),
        ("instance", node.instance.clone()),
        ("level", node.level.name().to_string()),
    ];
    let filter_buttons = |name: &str, value: &str| {
        let emit = |keep: bool| {
            let (cb, name, value) = (props.on_filter.clone(), name.to_string(), value.to_string());
            Callback::from(move |_: MouseEvent| cb.emit((name.clone(), value.clone(), keep)))
        };
        html! {
            <>
                <button class="icon-button" onclick={emit(true)} title="Filter for value"
                        aria-label={format!("Keep only {name} = {value}")}>{ "+" }</button>
                <button class="icon-button" onclick={emit(false)} title="Filter out value"
                        aria-label={format!("Drop {name} = {value}")}>{ "−" }</button>
            </>
        }
    };
    let context_row = |line: u32, hit: bool| {
        let r = log_row(t, line, Clock::Node);
        html! {
            <li class={classes!("context-line", hit.then_some("hit"))}>
                <span class="ts">{ r.timestamp }</span>
                <span class={classes!("lv", format!("lv-{}", r.level.name()))}>{ r.level.name() }</span>
                <span class="msg">{ r.message }
                    <span class="kv">{ r.fields.iter().map(|(k, v)| format!(" {k}={v}")).collect::<String>() }</span>
                </span>
            </li>
        }
    };
    let on_close = props.on_close.clone();
    html! {
        <section class="log-detail" aria-label="Log line details">
            <header>
                <h3>{ node.message.clone() }</h3>
                <button class="icon-button" onclick={move |_| on_close.emit(())} aria-label="Close details">{ "×" }</button>
            </header>
            <table class="kv-table">
                <tbody>
                    <tr><th>{ "node clock" }</th><td class="mono" id="detail-node-ts">{ node.timestamp.clone() }</td><td /></tr>
                    <tr><th>{ "true time" }</th><td class="mono" id="detail-true-ts">{ truth.timestamp.clone() }</td><td /></tr>
                    for (name, value) in labels.iter() {
                        <tr><th>{ *name }</th><td>{ value.clone() }</td><td class="actions">{ filter_buttons(name, value) }</td></tr>
                    }
                    for (name, value) in node.fields.iter() {
                        <tr><th>{ name.clone() }</th><td>{ value.clone() }</td><td class="actions">{ filter_buttons(name, value) }</td></tr>
                    }
                    if let Some(id) = node.trace_id {
                        <tr>
                            <th>{ "trace_id" }</th>
                            <td class="mono">
                                <a href="#" id="detail-trace" onclick={
                                    let cb = props.on_trace.clone();
                                    Callback::from(move |e: MouseEvent| { e.prevent_default(); cb.emit(id) })
                                }>{ id.to_string() }</a>
                            </td>
                            <td />
                        </tr>
                    }
                    if let Some(span) = node.span_id {
                        <tr><th>{ "span_id" }</th><td class="mono">{ span.to_string() }</td><td /></tr>
                    }
                </tbody>
            </table>
            <h4>{ format!("Context on {}", node.instance) }</h4>
            <ol class="context" id="log-context">
                for line in before.iter() { { context_row(*line, false) } }
                { context_row(props.line, true) }
                for line in after.iter() { { context_row(*line, false) } }
            </ol>
        </section>
    }
}
