//! Tests of the sandbox: the URL round trip, runs in slices ending in the engine's summary,
//! and components rendered natively by yew's server renderer (a setup form's problems beside
//! their fields, the comparison's rows, verdicts and charts).

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::sandbox::{RunSummary, Setup, compare};
use faultline_engine::scenario::{FaultEffect, FaultSpec};
use faultline_engine::{ScenarioError, Simulation};
use yew::Callback;

use super::compare::{Comparison, ComparisonProps};
use super::form::{SetupForm, SetupFormProps};
use super::{
    Column, SEED, SIDES, SandboxQuery, Side, Slots, Status, lab_query, start, status, tick,
};
use crate::lab::tests::html::{by_id, find};
use crate::lab::tests::render;

fn form(side: Side, column: Column) -> String {
    let errors = Rc::new(column.setup.scenario().err().unwrap_or_default());
    render::<SetupForm>(SetupFormProps {
        side,
        column,
        errors,
        on_change: Callback::noop(),
    })
}

#[test]
fn a_setup_s_problems_show_beside_the_fields_they_name() {
    let mut column = Column::default();
    column.setup.rate_per_s = 900.0;
    column.setup.faults.push(FaultSpec::new(
        "payments",
        None,
        30_000,
        10_000,
        FaultEffect::Latency { extra_ms: 900 },
    ));
    // Text that does not read stays in its field with the reason.
    let column = column.edited("faults[0].effect.extra_ms", "slow", |_, _| {
        Err("`slow` is not a whole number".into())
    });
    let html = form(Side::B, column.clone());
    let errors: Vec<ScenarioError> = column.setup.scenario().unwrap_err();
    let problem = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .unwrap()
            .problem
            .clone()
    };
    let rate = by_id(&html, "b-rate_per_s-error").expect("the rate's problem");
    assert_eq!(rate.text(), problem("rate_per_s"));
    let until = by_id(&html, "b-faults-0-until_ms-error").expect("the window's problem");
    assert_eq!(until.text(), problem("faults[0].until_ms"));
    let extra = by_id(&html, "b-faults-0-effect-extra_ms-error").expect("the typed text's problem");
    assert!(extra.text().contains("`slow`"));
    let input = by_id(&html, "b-faults-0-effect-extra_ms").unwrap();
    assert_eq!(input.attr("value"), Some("slow"));
    assert_eq!(input.attr("aria-invalid"), Some("true"));
    assert_eq!(
        input.attr("aria-describedby"),
        Some("b-faults-0-effect-extra_ms-error")
    );
    // Every input has a label.
    for input in find(&html, "input", "") {
        let id = input.attr("id").expect("an input with an id");
        assert!(html.contains(&format!("for=\"{id}\"")), "a label for {id}");
    }
    // A valid setup shows no problem; the fault's kind hint is there.
    let mut fine = Column::default();
    fine.setup.faults.push(FaultSpec::new(
        "orders",
        None,
        0,
        60_000,
        FaultEffect::NonIdempotentRetry,
    ));
    let html = form(Side::A, fine);
    assert!(find(&html, "span", "field-error").is_empty(), "{html}");
    assert!(html.contains("Charges go twice only when"));
    assert_eq!(
        find(&html, "tr", "edge-row").len(),
        Setup::default().edges().len()
    );
}

#[test]
fn the_comparison_shows_the_engine_s_rows_and_both_runs_charts() {
    let summary = |setup: &Setup| {
        let scenario = setup.scenario().unwrap();
        let (t, truth) = Simulation::new(scenario.clone(), 7).unwrap().finish();
        Rc::new(RunSummary::of(&scenario, &t, &truth))
    };
    let a_setup = Setup {
        duration_ms: 10_000,
        ..Setup::default()
    };
    let mut b_setup = a_setup.clone();
    b_setup.faults.push(FaultSpec::new(
        "payments",
        None,
        0,
        10_000,
        FaultEffect::ErrorRate { rate: 0.5 },
    ));
    let (a, b) = (summary(&a_setup), summary(&b_setup));
    let html = render::<Comparison>(ComparisonProps {
        a: a.clone(),
        b: b.clone(),
        stale: [false, true],
    });
    let rows = compare(&a, &b);
    let shown = find(&html, "tr", "")
        .into_iter()
        .filter(|tr| tr.attr("data-metric").is_some())
        .collect::<Vec<_>>();
    assert_eq!(shown.len(), rows.len());
    for (tr, row) in shown.iter().zip(&rows) {
        assert_eq!(tr.attr("data-metric"), Some(row.metric));
        assert_eq!(tr.attr("data-verdict"), Some(row.verdict.name()));
        let cells: Vec<String> = find(tr.inner, "td", "").iter().map(|c| c.text()).collect();
        assert_eq!(cells[0], row.a);
        assert_eq!(cells[1], row.b);
        assert_eq!(cells[2], row.change);
        // The verdict in words, not colour alone.
        assert!(cells[3].ends_with(row.verdict.name()), "{}", cells[3]);
    }
    let errors = rows.iter().find(|r| r.metric == "error rate").unwrap();
    assert_eq!(errors.verdict.name(), "worse");
    for id in ["chart-sandbox-p99", "chart-sandbox-errors"] {
        let chart = by_id(&html, id).expect("a chart");
        let legend: Vec<String> = chart.find("li", "").iter().map(|l| l.text()).collect();
        assert_eq!(legend, ["A", "B"]);
        assert!(chart.inner.contains("<svg"));
    }
    assert!(html.contains("Run B's setup has changed since it ran"));
}

#[test]
fn both_setups_and_seeds_go_through_the_url_and_back() {
    let mut b = Column::default();
    b.setup.faults.push(FaultSpec::new(
        "orders",
        None,
        12_000,
        48_000,
        FaultEffect::NonIdempotentRetry,
    ));
    b.seed = 11;
    let columns = [Column::default(), b];
    let q = SandboxQuery::of(&columns, [true, false]);
    assert_eq!(q.a, None, "the default setup is left out");
    assert_eq!(q.seed_a, None);
    assert_eq!(q.seed_b, Some(11));
    assert_eq!(q.run.as_deref(), Some("a"));
    assert!(q.ran(Side::A) && !q.ran(Side::B));
    let (back, problems) = q.columns();
    assert_eq!(back, columns);
    assert!(problems.is_empty());
    let bad = SandboxQuery {
        b: Some("{\"rate\":".into()),
        ..SandboxQuery::default()
    };
    let (back, problems) = bad.columns();
    assert_eq!(back[1], Column::default());
    assert!(problems[0].starts_with("Run B: the sandbox setup does not read"));
    let lab = lab_query(&columns[1]);
    assert_eq!(lab.scenario.as_deref(), Some("sandbox"));
    assert_eq!(lab.seed, Some(11));
    assert_eq!(
        Setup::from_text(lab.setup.as_deref().unwrap()).unwrap(),
        columns[1].setup
    );
}

#[test]
fn runs_advance_in_slices_and_end_in_the_engine_s_summary() {
    let mut fast = Column::default();
    fast.setup.duration_ms = 3_000;
    let mut invalid = Column::default();
    invalid.setup.rate_per_s = 0.0;
    let slots: Slots = Rc::new(RefCell::new([None, None]));
    assert!(!start(&slots, &[invalid.clone(), invalid], &SIDES, 0.0));
    assert!(start(&slots, &[fast.clone(), fast.clone()], &SIDES, 0.0));
    // A clock that moves 1 ms each time it is read: each frame gets a few steps.
    let clock = std::cell::Cell::new(0.0);
    let now = || {
        clock.set(clock.get() + 1.0);
        clock.get()
    };
    let mut frames = 0;
    while tick(&slots, &now) {
        frames += 1;
        assert!(frames < 10_000);
    }
    assert!(frames > 2, "the runs took {frames} frames");
    let s = slots.borrow();
    let scenario = fast.setup.scenario().unwrap();
    let (t, truth) = faultline_engine::Simulation::new(scenario.clone(), SEED)
        .unwrap()
        .finish();
    let whole = RunSummary::of(&scenario, &t, &truth);
    for slot in s.iter() {
        let slot = slot.as_ref().unwrap();
        assert!(slot.run.is_none());
        assert_eq!(slot.summary.as_deref(), Some(&whole));
        assert_eq!(
            status(Some(slot), &fast),
            Status::Done {
                summary: Rc::new(whole.clone()),
                wall_ms: slot.wall_ms,
                stale: false
            }
        );
    }
    let mut changed = fast.clone();
    changed.seed = 8;
    assert!(matches!(
        status(s[0].as_ref(), &changed),
        Status::Done { stale: true, .. }
    ));
}
