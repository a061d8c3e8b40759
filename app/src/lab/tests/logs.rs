//! The Logs view rendered at a URL's LogQL query: its rows are the lines the engine's LogQL
//! returns, newest first (the table's first window of them), on the clock the URL's `clock`
//! names; a query that does not parse shows the parser's error under the column it names, and
//! the fields panel gives the engine's field summaries of the hits.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use faultline_engine::SimTime;
use faultline_engine::logql;
use faultline_engine::mesh::default_mesh;
use faultline_engine::query::logs::{Clock, field_summaries, timestamp};
use faultline_engine::scenario::{FaultEffect, FaultSpec};

use super::html::{by_id, find};
use super::{finished_default_run, render_at};
use crate::lab::logs::table::{ROW_HEIGHT, visible_rows};
use crate::lab::run::Run;

/// The lab's URL for the Logs view with `q` as its query.
fn logs_url(q: &str) -> String {
    let mut encoded = String::new();
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/lab?view=logs&q={encoded}")
}

const QUERY: &str = r#"{service=~"orders|payments", level=~"info|warn"} |= "request""#;

#[test]
fn the_rows_are_the_lines_the_engine_s_logql_returns_newest_first() {
    let run = Rc::new(RefCell::new(finished_default_run(10_000)));
    let page = render_at(&logs_url(QUERY), &run);
    let r = run.borrow();
    let t = r.telemetry();
    let hits = logql::parse(QUERY).expect("the query parses").run(t);
    assert!(hits.len() > 50, "{} hits", hits.len());
    assert!(hits.len() < t.logs.len() / 2, "the query narrows");

    assert_eq!(
        by_id(&page, "logql-input").and_then(|i| i.attr("value").map(super::html::unescape)),
        Some(QUERY.to_string())
    );
    assert!(by_id(&page, "logql-error").is_none());
    let count = by_id(&page, "log-count").unwrap().text();
    assert_eq!(count.replace(',', ""), format!("{} lines", hits.len()));

    let rows = find(&page, "div", "log-row");
    let (first, end) = visible_rows(0.0, 560.0, hits.len());
    assert_eq!(rows.len(), end - first);
    assert!(rows.len() < hits.len());
    for (k, row) in rows.iter().enumerate() {
        let line = &t.logs[hits[hits.len() - 1 - k] as usize];
        assert_eq!(
            row.attr("aria-rowindex"),
            Some((k + 1).to_string().as_str())
        );
        assert_eq!(
            row.attr("style"),
            Some(format!("top: {}px", k as f64 * ROW_HEIGHT).as_str())
        );
        let message = row.find("span", "msg")[0];
        let fields = message.find("span", "kv")[0].text();
        let text = message.text();
        assert_eq!(&text[..text.len() - fields.len()], t.text(line.message));
        assert_eq!(
            row.find("span", "inst")[0].text(),
            format!("{}-{}", t.service_name(line.service), line.instance)
        );
        assert_eq!(row.find("span", "lv")[0].text(), line.level.name());
        let link = row.find("a", "trace-link");
        match line.trace_id {
            Some(id) => {
                assert_eq!(link.len(), 1);
                assert_eq!(link[0].text(), id.to_string()[..8]);
                assert_eq!(
                    link[0].attr("title"),
                    Some(format!("Open trace {id}").as_str())
                );
            }
            None => assert!(link.is_empty()),
        }
    }
    assert!(
        rows.iter().any(|r| !r.find("a", "trace-link").is_empty()),
        "request lines carry their trace"
    );
}

#[test]
fn a_query_that_does_not_parse_shows_the_error_at_its_column() {
    let run = Rc::new(RefCell::new(finished_default_run(2_000)));
    let bad = r#"{service="orders", level=} |= "x""#;
    let page = render_at(&logs_url(bad), &run);
    let error = logql::parse(bad).expect_err("a label with no value");
    assert!(error.offset > 0 && error.offset < bad.len());
    let shown = by_id(&page, "logql-error").expect("the error");
    assert_eq!(shown.find("p", "")[0].text(), error.to_string());
    assert!(
        error
            .to_string()
            .starts_with(&format!("parse error at column {}", error.offset + 1))
    );
    let pre = shown.find("pre", "")[0].text();
    assert_eq!(pre, format!("{bad}\n{}^", " ".repeat(error.offset)));
    assert!(find(&page, "div", "log-row").is_empty());
    assert_eq!(by_id(&page, "log-count").unwrap().text(), "0 lines");
}

#[test]
fn the_fields_panel_counts_what_the_engine_summarises() {
    let run = Rc::new(RefCell::new(finished_default_run(10_000)));
    let q = r#"{service=~"orders|payments"}"#;
    let page = render_at(&logs_url(q), &run);
    let r = run.borrow();
    let t = r.telemetry();
    let hits = logql::parse(q).expect("the query parses").run(t);
    assert!(hits.len() > 500, "more hits than the sample");
    let summaries = field_summaries(t, &hits, 500, 5);

    let panel = find(&page, "aside", "log-fields")[0];
    assert_eq!(
        panel.find("p", "")[0].text(),
        "From the newest 500 matching lines"
    );
    let fields = panel.find("details", "");
    assert_eq!(fields.len(), summaries.len());
    for (f, s) in fields.iter().zip(&summaries) {
        assert_eq!(f.find("span", "field-name")[0].text(), s.name);
        assert_eq!(
            f.find("span", "field-distinct")[0].text(),
            s.distinct.to_string()
        );
        let values: Vec<(String, String)> = f
            .find("li", "field-value")
            .iter()
            .map(|v| {
                (
                    v.find("span", "value")[0].text(),
                    v.find("span", "share")[0].text(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = s
            .top
            .iter()
            .map(|(v, n)| {
                let share = 100.0 * f64::from(*n) / f64::from(s.lines);
                (v.clone(), format!("{share:.0}%"))
            })
            .collect();
        assert_eq!(values, expected, "{}", s.name);
    }
    // The service label, counted here from the newest 500 hits themselves.
    let mut by_service: BTreeMap<&str, u32> = BTreeMap::new();
    for &i in &hits[hits.len() - 500..] {
        *by_service
            .entry(t.service_name(t.logs[i as usize].service))
            .or_default() += 1;
    }
    assert_eq!(by_service.len(), 2, "{by_service:?}");
    let service = fields[0];
    assert_eq!(service.find("span", "field-name")[0].text(), "service");
    assert_eq!(service.find("span", "field-distinct")[0].text(), "2");
    for v in service.find("li", "field-value") {
        let name = v.find("span", "value")[0].text();
        let n = by_service[name.as_str()];
        let share = format!("{:.0}%", 100.0 * f64::from(n) / 500.0);
        assert_eq!(v.find("span", "share")[0].text(), share, "{name}");
    }
}

/// The default mesh for 6 s, seed 7, with payments' clock 1.5 s fast and orders logging its
/// local time at +02:00 throughout, run to its end.
fn skewed_run() -> Rc<RefCell<Run>> {
    let mut scenario = default_mesh(50.0, 6_000);
    for (service, effect) in [
        (
            "payments",
            FaultEffect::ClockSkew {
                offset_ms: 1_500,
                drift_ppm: 0,
            },
        ),
        ("orders", FaultEffect::LocalTimeLogs { zone_minutes: 120 }),
    ] {
        scenario.faults.push(FaultSpec {
            service: service.into(),
            instance: None,
            from_ms: 0,
            until_ms: 6_000,
            effect,
        });
    }
    let mut run = Run::start(scenario, 7).expect("the mesh with clock faults runs");
    assert!(run.advance(SimTime(u64::MAX), || true));
    Rc::new(RefCell::new(run))
}

#[test]
fn the_url_s_clock_shows_the_node_clocks_by_default_or_true_time() {
    let run = skewed_run();
    let q = r#"{service=~"orders|payments"}"#;
    let r = run.borrow();
    let t = r.telemetry();
    let hits = logql::parse(q).expect("the query parses").run(t);
    let stamps_at = |suffix: &str| -> (Vec<String>, String) {
        let page = render_at(&format!("{}{suffix}", logs_url(q)), &run);
        let stamps = find(&page, "div", "log-row")
            .iter()
            .map(|row| row.find("span", "ts")[0].text())
            .collect();
        (stamps, page)
    };
    let expected = |clock: Clock| -> Vec<String> {
        let (first, end) = visible_rows(0.0, 560.0, hits.len());
        (first..end)
            .map(|k| timestamp(&t.logs[hits[hits.len() - 1 - k] as usize], clock))
            .collect()
    };
    let (node, true_time) = (expected(Clock::Node), expected(Clock::True));
    // The clocks differ here: orders' lines carry +02:00 and payments' are 1.5 s ahead on the
    // node clock, while true time is UTC for both.
    assert!(node.iter().any(|s| s.ends_with("+02:00")), "{node:?}");
    assert!(true_time.iter().all(|s| s.ends_with('Z')));
    assert_ne!(node, true_time);

    for (suffix, clock, stamps) in [
        ("", Clock::Node, &node),
        ("&clock=node", Clock::Node, &node),
        ("&clock=true", Clock::True, &true_time),
        ("&clock=sundial", Clock::Node, &node),
    ] {
        let (shown, page) = stamps_at(suffix);
        assert_eq!(&shown, stamps, "at {suffix:?}");
        let pressed = |id: &str| by_id(&page, id).and_then(|b| b.attr("aria-pressed"));
        let on_true = clock == Clock::True;
        assert_eq!(pressed("clock-true"), Some(on_true.to_string().as_str()));
        assert_eq!(pressed("clock-node"), Some((!on_true).to_string().as_str()));
    }
}
