//! The trace search rendered over a finished run: the service, minimum duration and time range
//! from the URL list the traces `search_traces` returns, newest first as it orders them, with
//! a scatter point for each; a range that does not parse, or one given with a lookback, is
//! refused at its field.

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::query::{TraceQuery, TraceSummary, search_traces};
use faultline_engine::{Duration, SimTime};

use super::html::{by_id, find};
use super::{finished_default_run, render_at};
use crate::lab::run::Run;

/// The engine's answer to a search, asked directly (not through the view's form reading).
fn engine_search(run: &Run, service: Option<&str>, min_ms: Option<u64>) -> Vec<TraceSummary> {
    search_traces(
        run.telemetry(),
        &TraceQuery {
            service: service.map(str::to_string),
            min_duration: min_ms.map(Duration::from_ms),
            limit: 20,
            ..TraceQuery::default()
        },
    )
}

fn listed(page: &str) -> Vec<String> {
    let list = by_id(page, "trace-results").expect("the result list");
    list.find("li", "trace-result")
        .iter()
        .map(|li| li.attr("data-trace-id").expect("a trace id").to_string())
        .collect()
}

fn ids(results: &[TraceSummary]) -> Vec<String> {
    results.iter().map(|r| r.trace_id.to_string()).collect()
}

#[test]
fn the_url_s_service_and_minimum_list_what_the_engine_finds_in_its_order() {
    let run = Rc::new(RefCell::new(finished_default_run(10_000)));
    let r = run.borrow();
    // The minimum: the median payments trace, in whole milliseconds, so it splits them.
    let mut all = search_traces(
        r.telemetry(),
        &TraceQuery {
            service: Some("payments".into()),
            limit: 1_500,
            ..TraceQuery::default()
        },
    );
    assert!(all.len() > 40, "{} payments traces", all.len());
    all.sort_by_key(|s| s.duration);
    let min = all[all.len() / 2].duration.0 / 1_000;
    let page = render_at(
        &format!("/lab?view=traces&service=payments&min={min}ms"),
        &run,
    );
    let found = engine_search(&r, Some("payments"), Some(min));
    assert_eq!(
        found.len(),
        20,
        "half the payments traces take {min} ms or more"
    );
    // The search narrows: without the minimum, or without the service, the engine lists others.
    assert_ne!(ids(&found), ids(&engine_search(&r, Some("payments"), None)));
    assert_ne!(ids(&found), ids(&engine_search(&r, None, Some(40))));

    assert_eq!(listed(&page), ids(&found));
    let items = find(&page, "li", "trace-result");
    for (li, s) in items.iter().zip(&found) {
        assert!(s.duration >= Duration::from_ms(min));
        assert!(s.services.iter().any(|(name, _)| name == "payments"));
        assert_eq!(
            li.attr("data-duration-us"),
            Some(s.duration.0.to_string().as_str())
        );
        assert_eq!(li.find("span", "result-op")[0].text(), s.root_operation);
        assert_eq!(li.has_class("has-errors"), s.errors > 0);
    }
    let count = by_id(&page, "results-count").unwrap().text();
    assert_eq!(count, format!("{} traces", found.len()));

    let scatter = by_id(&page, "trace-scatter").expect("the scatter");
    let dots = scatter.find("circle", "dot");
    assert_eq!(dots.len(), found.len());
    let red = dots.iter().filter(|d| d.has_class("error")).count();
    assert_eq!(red, found.iter().filter(|s| s.errors > 0).count());
    // Each point's tooltip names its trace's root and span count, in the results' order.
    for (dot, s) in dots.iter().zip(&found) {
        let title = dot.find("title", "")[0].text();
        assert!(title.starts_with(&format!("{}: {}", s.root_service, s.root_operation)));
        assert!(title.ends_with(&format!(" · {} spans", s.spans)), "{title}");
    }
}

#[test]
fn a_minimum_above_every_trace_lists_none_and_plots_none() {
    let run = Rc::new(RefCell::new(finished_default_run(3_000)));
    let page = render_at("/lab?view=traces&min=1h", &run);
    assert!(engine_search(&run.borrow(), None, Some(3_600_000)).is_empty());
    assert!(listed(&page).is_empty());
    assert!(by_id(&page, "no-results").is_some());
    assert!(find(&page, "circle", "dot").is_empty());
    // Without it, the newest twenty.
    let page = render_at("/lab?view=traces", &run);
    let all = engine_search(&run.borrow(), None, None);
    assert_eq!(all.len(), 20);
    assert_eq!(listed(&page), ids(&all));
}

/// The engine's answer to a search of traces that start in [from, until), up to `limit`.
fn engine_range(run: &Run, from: Option<u64>, until: Option<u64>, limit: u32) -> Vec<TraceSummary> {
    search_traces(
        run.telemetry(),
        &TraceQuery {
            from: from.map(SimTime::from_ms),
            until: until.map(SimTime::from_ms),
            limit,
            ..TraceQuery::default()
        },
    )
}

#[test]
fn the_url_s_from_and_to_list_the_traces_that_start_in_that_range() {
    let run = Rc::new(RefCell::new(finished_default_run(10_000)));
    let r = run.borrow();
    let page = render_at("/lab?view=traces&from=0:03&to=6s&limit=1500", &run);
    let found = engine_range(&r, Some(3_000), Some(6_000), 1_500);
    assert!(found.len() > 50, "{} traces in 0:03 to 0:06", found.len());
    assert!(
        found
            .iter()
            .all(|s| s.start >= SimTime::from_ms(3_000) && s.start < SimTime::from_ms(6_000))
    );
    assert!(engine_range(&r, None, None, 1_500).len() > found.len() * 2);
    assert_eq!(listed(&page), ids(&found));
    let value = |id: &str| by_id(&page, id).and_then(|i| i.attr("value").map(str::to_string));
    assert_eq!(value("search-from").as_deref(), Some("0:03"));
    assert_eq!(value("search-to").as_deref(), Some("6s"));
    assert!(by_id(&page, "search-from-error").is_none());
    assert!(by_id(&page, "search-lookback-error").is_none());

    // One end open: from 0:08 to the end of the run.
    let page = render_at("/lab?view=traces&from=8s&limit=1500", &run);
    assert_eq!(
        listed(&page),
        ids(&engine_range(&r, Some(8_000), None, 1_500))
    );
}

#[test]
fn a_bad_range_or_a_range_with_a_lookback_is_refused_at_its_field() {
    let run = Rc::new(RefCell::new(finished_default_run(10_000)));
    let r = run.borrow();
    let error = |page: &str, id: &str| by_id(page, &format!("{id}-error")).map(|e| e.text());
    let submit_disabled =
        |page: &str| by_id(page, "search-submit").is_some_and(|b| b.open.contains(" disabled"));

    // Seconds past 59 and a number without a unit: each said at its field, neither searched.
    let page = render_at("/lab?view=traces&from=0:75&to=9", &run);
    let from = error(&page, "search-from").expect("an error at From");
    assert!(
        from.starts_with("`0:75`: the seconds after `:` go from 00 to 59"),
        "{from}"
    );
    let to = error(&page, "search-to").expect("an error at To");
    assert!(to.contains("`9` has no unit; write 9s"), "{to}");
    assert!(submit_disabled(&page));
    assert_eq!(listed(&page), ids(&engine_range(&r, None, None, 20)));

    // An end before the start: said at To, the start still searched.
    let page = render_at("/lab?view=traces&from=0:06&to=0:03", &run);
    let to = error(&page, "search-to").expect("an error at To");
    assert_eq!(to, "the end is not after the start (0:06.000)");
    assert_eq!(listed(&page), ids(&engine_range(&r, Some(6_000), None, 20)));

    // A lookback and a range: the range is searched, the lookback refused at its field.
    let page = render_at("/lab?view=traces&lookback=10s&from=0:02&to=0:04", &run);
    let lookback = error(&page, "search-lookback").expect("an error at Lookback");
    assert!(lookback.contains("do not mix"), "{lookback}");
    assert!(submit_disabled(&page));
    let ranged = engine_range(&r, Some(2_000), Some(4_000), 20);
    assert_eq!(listed(&page), ids(&ranged));
    assert_ne!(ranged, engine_range(&r, None, None, 20));
}
