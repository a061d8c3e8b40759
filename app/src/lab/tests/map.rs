//! The service map rendered over a finished run: a box per service and an arrow per call edge
//! that `service_map` returns, with its instances, and a breaker's state on the edge it guards
//! (a sandbox setup where payments fails and orders guards its calls with a breaker).

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::edge::BreakerPolicy;
use faultline_engine::query::map::{ServiceMap, service_map};
use faultline_engine::sandbox::Setup;
use faultline_engine::scenario::{FaultEffect, FaultSpec};
use faultline_engine::{Duration, SimTime};

use super::html::{Element, find, unescape};
use super::{finished_default_run, render_at};
use crate::lab::run::Run;

/// What the view asks the engine: the last 30 simulated seconds up to the run's clock.
fn engine_map(run: &Run) -> ServiceMap {
    service_map(run.telemetry(), run.now(), Duration::from_ms(30_000))
}

/// The arrows (a `g.edge` holding a path) and the labels (a `g.edge` holding a text), each in
/// document order.
fn arrows_and_labels(page: &str) -> (Vec<Element<'_>>, Vec<Element<'_>>) {
    let edges = find(page, "g", "edge");
    let arrows = edges
        .iter()
        .filter(|g| !g.find("path", "").is_empty())
        .copied()
        .collect();
    let labels = edges
        .iter()
        .filter(|g| !g.find("text", "edge-label").is_empty())
        .copied()
        .collect();
    (arrows, labels)
}

#[test]
fn a_box_per_service_and_an_arrow_per_call_the_engine_maps() {
    let run = Rc::new(RefCell::new(finished_default_run(10_000)));
    let page = render_at("/lab?view=map", &run);
    let map = engine_map(&run.borrow());
    assert!(map.nodes.len() > 3 && map.edges.len() > 3, "{map:?}");

    let nodes = find(&page, "g", "node");
    let shown: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n.attr("data-service"))
        .collect();
    let expected: Vec<&str> = map.nodes.iter().map(|n| n.service.as_str()).collect();
    assert_eq!(shown, expected);
    for (g, n) in nodes.iter().zip(&map.nodes) {
        assert_eq!(g.find("tspan", "node-name")[0].text(), n.service);
        let detail = g.find("tspan", "node-detail")[0].text();
        if n.uninstrumented {
            assert!(g.has_class("uninstrumented"), "{}", n.service);
            assert_eq!(detail, "via callers");
        } else {
            assert_eq!(detail, format!("× {}", n.instances), "{}", n.service);
        }
    }
    assert!(map.nodes.iter().any(|n| n.uninstrumented), "a database");

    let (arrows, labels) = arrows_and_labels(&page);
    assert_eq!(arrows.len(), map.edges.len());
    assert_eq!(labels.len(), map.edges.len());
    for (g, e) in arrows.iter().zip(&map.edges) {
        let title = g.find("title", "")[0].text();
        assert!(
            title.starts_with(&format!("{} → {}: ", e.from, e.to)),
            "{title}"
        );
        assert!(
            title.ends_with(&format!("{:.1}% errors", 100.0 * e.error_ratio)),
            "{title}"
        );
    }
    // No breaker in the default mesh's calls has opened: none is shown.
    assert!(
        map.edges
            .iter()
            .all(|e| e.breaker.is_none_or(|s| s == "closed"))
    );
    assert!(find(&page, "text", "breaker").is_empty());
}

#[test]
fn a_breaker_that_opened_shows_its_state_on_its_edge() {
    let mut setup = Setup {
        rate_per_s: 50.0,
        duration_ms: 20_000,
        ..Setup::default()
    };
    setup.faults.push(FaultSpec::new(
        "payments",
        None,
        2_000,
        20_000,
        FaultEffect::ErrorRate { rate: 1.0 },
    ));
    let mut policy = setup
        .edges()
        .into_iter()
        .find(|e| e.label() == "orders → payments:charge")
        .expect("orders calls payments")
        .policy;
    policy.breaker = Some(BreakerPolicy::default());
    setup.set_edge("orders", "payments", "charge", policy);
    let mut run = Run::start(setup.scenario().expect("a valid setup"), 7).expect("it runs");
    assert!(run.advance(SimTime(u64::MAX), || true));
    let run = Rc::new(RefCell::new(run));
    let page = render_at("/lab?view=map", &run);
    let map = engine_map(&run.borrow());

    let guarded = map
        .edges
        .iter()
        .position(|e| e.from == "orders" && e.to == "payments")
        .expect("an orders → payments edge");
    let state = map.edges[guarded].breaker.expect("the edge has a breaker");
    assert_ne!(state, "closed", "payments fails every call to the end");

    let (_, labels) = arrows_and_labels(&page);
    assert_eq!(labels.len(), map.edges.len());
    for (g, e) in labels.iter().zip(&map.edges) {
        let breaker = g.find("text", "breaker");
        match e.breaker.filter(|s| *s != "closed") {
            Some(state) => {
                assert_eq!(breaker.len(), 1, "{} → {}", e.from, e.to);
                assert!(breaker[0].has_class(state));
                assert_eq!(
                    unescape(&breaker[0].text()),
                    format!("breaker {}", state.replace('_', "-"))
                );
            }
            None => assert!(breaker.is_empty(), "{} → {}", e.from, e.to),
        }
    }
    assert_eq!(
        find(&page, "text", "breaker").len(),
        1,
        "only orders → payments"
    );
}
