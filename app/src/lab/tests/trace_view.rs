//! The trace page rendered over a finished run and over an imported file: its rows are the
//! trace's spans in the engine's tree order (the virtualized list's first window of them), the
//! critical-path marks are the engine's critical path, the span detail lists the span's
//! attributes, and a trace with orphans says it is incomplete with the importer's warnings.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use faultline_engine::Telemetry;
use faultline_engine::import::import_json;
use faultline_engine::query::{TraceQuery, search_traces, trace_view};
use faultline_engine::telemetry::{Span, SpanId, TraceId};
use faultline_engine::trace::{TraceTree, trace_ids};
use yew::prelude::*;

use super::html::{Element, by_id, find};
use super::{WithRun, WithRunProps, finished_default_run, render, render_at};
use crate::components::virtual_list::visible_range;
use crate::lab::run::Run;
use crate::lab::trace_view::{ROW_HEIGHT, SpanDetailPanel};

fn trace_url(id: TraceId) -> String {
    format!("/lab?view=traces&trace={id}")
}

fn spans_of(t: &Telemetry, id: TraceId) -> Vec<&Span> {
    t.spans.iter().filter(|s| s.trace_id == id).collect()
}

fn rows(page: &str) -> Vec<Element<'_>> {
    find(page, "div", "span-row")
}

fn span_id_of(row: &Element) -> String {
    row.attr("data-span-id").expect("a span id").to_string()
}

/// The default run's traces, most spans first.
fn biggest_traces(t: &Telemetry) -> Vec<(TraceId, u32)> {
    let mut all: Vec<(TraceId, u32)> = search_traces(
        t,
        &TraceQuery {
            limit: 1_500,
            ..TraceQuery::default()
        },
    )
    .into_iter()
    .map(|s| (s.trace_id, s.spans))
    .collect();
    all.sort_by_key(|(_, spans)| std::cmp::Reverse(*spans));
    all
}

/// Checks the rows drawn for a trace against the engine: its spans in tree order, as many as
/// the list's first window holds, each marked critical as often as the critical path passes
/// through it.
fn check_rows(page: &str, t: &Telemetry, id: TraceId) -> usize {
    let spans = spans_of(t, id);
    let view = trace_view(t, id).expect("the trace is in the run");
    assert_eq!(view.rows.len(), spans.len());
    let shown = rows(page);
    // The waterfall is as tall as its rows, up to 540 px; the list draws what is in view.
    let height = 540.min(spans.len() as u32 * ROW_HEIGHT + 2);
    let window = visible_range(0.0, height, ROW_HEIGHT, spans.len() as u32, 10);
    assert_eq!(shown.len(), window.len());
    let expected: Vec<String> = view.rows[..shown.len()]
        .iter()
        .map(|r| r.span_id.to_string())
        .collect();
    let drawn: Vec<String> = shown.iter().map(span_id_of).collect();
    assert_eq!(drawn, expected);
    // Every row drawn is one of the trace's spans, with its service and operation.
    for row in &shown {
        let s = spans
            .iter()
            .find(|s| s.span_id.to_string() == span_id_of(row))
            .expect("a span of the trace");
        assert_eq!(
            row.find("span", "span-service")[0].text(),
            t.service_name(s.service)
        );
        assert_eq!(row.find("span", "span-op")[0].text(), t.text(s.operation));
    }
    let total = by_id(page, "trace-span-count").unwrap().text();
    assert_eq!(total.replace(',', ""), spans.len().to_string());

    let mut sections: BTreeMap<SpanId, usize> = BTreeMap::new();
    for section in TraceTree::new(t, id).critical_path() {
        *sections.entry(section.span).or_default() += 1;
    }
    assert!(!sections.is_empty());
    for row in &shown {
        let span = view
            .rows
            .iter()
            .find(|r| r.span_id.to_string() == span_id_of(row))
            .unwrap()
            .span_id;
        let marks = row.find("div", "span-critical").len();
        assert_eq!(marks, sections.get(&span).copied().unwrap_or(0), "{span}");
        assert_eq!(row.has_class("critical"), sections.contains_key(&span));
    }
    shown.len()
}

#[test]
fn the_rows_are_the_trace_s_spans_with_the_engine_s_critical_path() {
    let run = Rc::new(RefCell::new(finished_default_run(10_000)));
    let r = run.borrow();
    let t = r.telemetry();
    let traces = biggest_traces(t);
    // The biggest trace fits in the first window: every span is drawn.
    let (id, spans) = traces[0];
    assert!(spans > 5, "{spans} spans");
    let page = render_at(&trace_url(id), &run);
    assert_eq!(check_rows(&page, t, id), spans as usize);
    let critical = rows(&page)
        .iter()
        .filter(|row| row.has_class("critical"))
        .count();
    assert!(critical > 1 && critical < spans as usize, "{critical}");
    // The smallest too.
    let (id, spans) = traces[traces.len() - 1];
    let page = render_at(&trace_url(id), &run);
    assert_eq!(check_rows(&page, t, id), spans as usize);
}

#[test]
fn a_wide_trace_draws_only_the_rows_in_view() {
    let run = Rc::new(RefCell::new(Run::finished_with(
        crate::lab::fixture::wide_trace(),
    )));
    let r = run.borrow();
    let t = r.telemetry();
    let id = trace_ids(t)[0];
    assert!(spans_of(t, id).len() > 1_000);
    let page = render_at(&trace_url(id), &run);
    let drawn = check_rows(&page, t, id);
    assert!(drawn < 100, "{drawn} rows drawn");
}

#[test]
fn the_span_detail_lists_the_span_s_attributes() {
    let run = Rc::new(RefCell::new(finished_default_run(5_000)));
    let r = run.borrow();
    let t = r.telemetry();
    // A client span with the most attributes: a call with its peer, method and status.
    let span = t
        .spans
        .iter()
        .max_by_key(|s| s.attributes.len())
        .expect("spans");
    assert!(span.attributes.len() > 3);
    let page = render::<WithRun>(WithRunProps {
        run: run.clone(),
        children: html! {
            <SpanDetailPanel trace_id={span.trace_id} span_id={span.span_id} refresh={1}
                             service_index={span.service.0} on_close={Callback::noop()} />
        },
    });
    let detail = by_id(&page, "span-detail").expect("the span detail");
    let head = detail.find("p", "span-detail-service")[0].text();
    assert_eq!(
        head,
        format!(
            "{} · instance {}",
            t.service_name(span.service),
            span.instance
        )
    );
    assert_eq!(detail.find("h3", "")[0].text(), t.text(span.operation));
    let attributes = by_id(&page, "span-attributes").expect("the attributes");
    assert_eq!(
        attributes.find("h4", "")[0].text(),
        format!("Attributes ({})", span.attributes.len())
    );
    let pairs: Vec<(String, String)> = attributes
        .find("tr", "")
        .iter()
        .map(|tr| (tr.find("th", "")[0].text(), tr.find("td", "")[0].text()))
        .collect();
    let expected: Vec<(String, String)> = t
        .attributes(span)
        .iter()
        .map(|(k, v)| (t.text(*k).to_string(), t.value_text(v)))
        .collect();
    assert_eq!(pairs, expected);
}

#[test]
fn an_imported_trace_with_orphans_says_it_is_incomplete_and_why() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/traces/jaeger-multiple-orphans.json"
    ))
    .expect("../shared holds the fixtures");
    let imported = import_json(&text).expect("the fixture imports");
    let run = Rc::new(RefCell::new(Run::finished_with(imported.telemetry)));
    let r = run.borrow();
    let t = r.telemetry();
    let id = trace_ids(t)[0];
    let page = render_at(&trace_url(id), &run);
    check_rows(&page, t, id);

    let tree = TraceTree::new(t, id);
    assert!(tree.incomplete());
    assert_eq!(
        by_id(&page, "trace-incomplete").map(|e| e.text()),
        Some("incomplete".to_string())
    );
    let warnings = by_id(&page, "trace-warnings").expect("the warnings");
    assert_eq!(
        warnings.find("strong", "")[0].text(),
        "This trace is incomplete."
    );
    let listed: Vec<String> = warnings.find("li", "").iter().map(|l| l.text()).collect();
    let expected: Vec<String> = tree.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(listed, expected);
    // An orphan mark on each span whose parent the file does not hold.
    let spans = spans_of(t, id);
    let orphans: Vec<String> = spans
        .iter()
        .filter(|s| {
            s.parent
                .is_some_and(|p| !spans.iter().any(|o| o.span_id == p))
        })
        .map(|s| s.span_id.to_string())
        .collect();
    assert_eq!(orphans.len(), 2);
    let marked: Vec<String> = rows(&page)
        .iter()
        .filter(|row| !row.find("span", "span-orphan").is_empty())
        .map(span_id_of)
        .collect();
    let mut sorted = marked.clone();
    sorted.sort();
    let mut expected_sorted = orphans.clone();
    expected_sorted.sort();
    assert_eq!(sorted, expected_sorted);
}
