//! The overview rendered over a finished run: its totals and one row per service with the
//! figures `service_summaries` gives.

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::query::service_summaries;

use super::html::{by_id, find};
use super::{finished_default_run, render_at};

/// `12,345` read back as a number.
fn number(text: &str) -> u64 {
    text.trim().replace(',', "").parse().expect("a count")
}

#[test]
fn one_row_per_service_with_the_engines_request_counts() {
    let run = Rc::new(RefCell::new(finished_default_run(10_000)));
    let page = render_at("/lab", &run);
    let r = run.borrow();
    let t = r.telemetry();
    let summaries = service_summaries(t);
    assert!(summaries.len() > 3, "the default mesh has several services");

    let table = by_id(&page, "service-table").expect("the service table");
    let rows = table.find("tbody", "")[0].find("tr", "");
    assert_eq!(rows.len(), summaries.len());
    for (row, s) in rows.iter().zip(&summaries) {
        let cells = row.find("td", "");
        assert_eq!(cells[0].text(), s.service);
        assert_eq!(number(&cells[1].text()), u64::from(s.instances));
        assert_eq!(number(&cells[2].text()), s.requests, "{}", s.service);
        assert_eq!(cells[3].has_class("bad"), s.errors > 0, "{}", s.service);
    }
    assert!(summaries.iter().map(|s| s.requests).sum::<u64>() > 0);

    let stat = |id: &str| number(&by_id(&page, id).expect(id).text());
    assert_eq!(stat("stat-spans"), t.spans.len() as u64);
    assert_eq!(stat("stat-logs"), t.logs.len() as u64);
    assert_eq!(
        stat("stat-traces"),
        faultline_engine::trace::trace_ids(t).len() as u64
    );
    assert_eq!(find(&page, "div", "stat").len(), 4);
}
