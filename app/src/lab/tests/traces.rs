//! The trace search rendered over a finished run: the service and minimum duration from the URL
//! list the traces `search_traces` returns, newest first as it orders them, with a scatter
//! point for each.

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::Duration;
use faultline_engine::query::{TraceQuery, TraceSummary, search_traces};

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
