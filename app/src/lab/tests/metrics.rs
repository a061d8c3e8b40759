//! The Metrics view rendered over a finished run: the latency panel's plotters SVG draws one
//! series per percentile (p50, p95, p99), broken where a bucket has no requests, and each
//! bucket's hover title gives the values `service_metrics` computes for it.

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::Duration;
use faultline_engine::query::metrics::{metric_services, service_metrics};

use super::html::{Element, by_id, find};
use super::{finished_default_run, render_at};
use crate::lab::overview::duration;

/// How many unbroken stretches of values a series has: the lines plotters draws for it.
fn stretches(values: &[Option<Duration>]) -> usize {
    let mut n = 0;
    let mut inside = false;
    for v in values {
        if v.is_some() && !inside {
            n += 1;
        }
        inside = v.is_some();
    }
    n
}

/// The colour of a legend entry's swatch, as plotters writes it in a stroke (`#56A64B`).
fn swatch(li: &Element) -> String {
    let style = li.find("span", "swatch")[0]
        .attr("style")
        .unwrap_or_default();
    style
        .trim_start_matches("background: ")
        .to_ascii_uppercase()
}

#[test]
fn the_latency_panel_draws_a_series_per_percentile_with_the_engine_s_values() {
    let run = Rc::new(RefCell::new(finished_default_run(20_000)));
    let page = render_at("/lab?view=metrics", &run);
    let r = run.borrow();
    let t = r.telemetry();
    // The view opens on the first service the engine lists.
    let service = metric_services(t)[0].clone();
    let selected: Vec<String> = find(&page, "option", "")
        .iter()
        .filter(|o| o.open.contains(" selected"))
        .map(|o| o.text())
        .collect();
    assert_eq!(selected[0], service);
    let m = service_metrics(t, &service, None).expect("the service has metrics");
    let points = &m.points;
    assert!(points.len() >= 20, "{} buckets", points.len());

    let panel = by_id(&page, "chart-latency").expect("the latency panel");
    assert_eq!(
        panel.attr("data-buckets"),
        Some(points.len().to_string().as_str())
    );
    let legend = panel.find("ul", "chart-legend")[0].find("li", "");
    let names: Vec<String> = legend.iter().map(|li| li.text()).collect();
    assert_eq!(names, ["p50", "p95", "p99"]);
    let svg = panel.find("div", "chart-svg")[0];
    assert!(svg.inner.starts_with("<svg"), "plotters' SVG, as it is");
    let lines = svg.find("polyline", "");
    let percentiles: [Vec<Option<Duration>>; 3] = [
        points.iter().map(|p| p.red.p50).collect(),
        points.iter().map(|p| p.red.p95).collect(),
        points.iter().map(|p| p.red.p99).collect(),
    ];
    let mut series_lines = 0;
    for (li, values) in legend.iter().zip(&percentiles) {
        let stroke = format!("stroke=\"{}\"", swatch(li));
        let drawn = lines.iter().filter(|l| l.open.contains(&stroke)).count();
        assert!(stretches(values) > 0);
        assert_eq!(drawn, stretches(values), "{}", li.text());
        series_lines += drawn;
        // Each line has a point per bucket of its stretch.
        let points_drawn: usize = lines
            .iter()
            .filter(|l| l.open.contains(&stroke))
            .map(|l| {
                l.attr("points")
                    .unwrap_or_default()
                    .split_whitespace()
                    .count()
            })
            .sum();
        assert_eq!(points_drawn, values.iter().flatten().count());
    }
    // Nothing else is drawn as a coloured line: the axes and grid are in the text colour.
    let coloured = lines
        .iter()
        .filter(|l| !l.open.contains("currentColor"))
        .count();
    assert_eq!(coloured, series_lines);

    // The hover layer: a column per bucket whose title gives that bucket's percentiles.
    let columns = panel.find("rect", "chart-bucket");
    assert_eq!(columns.len(), points.len());
    for (b, (column, p)) in columns.iter().zip(points).enumerate() {
        assert_eq!(column.attr("data-bucket"), Some(b.to_string().as_str()));
        let seconds = p.red.start.0 / 1_000_000;
        let mut expected = format!("{}:{:02}", seconds / 60, seconds % 60);
        for (name, v) in [("p50", p.red.p50), ("p95", p.red.p95), ("p99", p.red.p99)] {
            let value = v.map_or("—".to_string(), duration);
            expected.push_str(&format!(" · {name} {value}"));
        }
        assert_eq!(column.find("title", "")[0].text(), expected);
    }
    let answered = points.iter().filter(|p| p.red.p99.is_some()).count();
    assert!(
        answered >= 20,
        "traffic in every second of the workload: {answered}"
    );
}

#[test]
fn the_service_and_instance_in_the_url_pick_what_the_panels_show() {
    let run = Rc::new(RefCell::new(finished_default_run(20_000)));
    let r = run.borrow();
    let t = r.telemetry();
    // Not the first service, so the default would show something else: one with requests on
    // more than one instance.
    let services = metric_services(t);
    let (service, all) = services[1..]
        .iter()
        .filter_map(|s| Some((s.clone(), service_metrics(t, s, None)?)))
        .find(|(_, m)| m.instances.len() > 1 && m.points.iter().any(|p| p.red.p99.is_some()))
        .expect("a service with requests on several instances");
    let instance = *all.instances.last().expect("instances");
    let one = service_metrics(t, &service, Some(instance)).expect("the instance has metrics");
    drop(r);

    let page = render_at(
        &format!("/lab?view=metrics&service={service}&instance={instance}"),
        &run,
    );
    let picked = |id: &str| -> Vec<String> {
        by_id(&page, id)
            .expect("a picker")
            .find("option", "")
            .iter()
            .filter(|o| o.open.contains(" selected"))
            .map(|o| o.text())
            .collect()
    };
    assert_eq!(picked("metrics-service"), std::slice::from_ref(&service));
    assert_eq!(
        picked("metrics-instance"),
        [format!("{service}-{instance}")]
    );
    // The latency panel's hover titles are the instance's figures, not the service's.
    let panel = by_id(&page, "chart-latency").expect("the latency panel");
    let titles: Vec<String> = panel
        .find("rect", "chart-bucket")
        .iter()
        .map(|c| c.find("title", "")[0].text())
        .collect();
    let p99 = |points: &[faultline_engine::query::metrics::MetricsPoint]| -> Vec<String> {
        points
            .iter()
            .map(|p| p.red.p99.map_or("—".to_string(), duration))
            .collect()
    };
    let shown: Vec<String> = titles
        .iter()
        .map(|t| t.rsplit("p99 ").next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(shown, p99(&one.points));
    assert_ne!(
        p99(&one.points),
        p99(&all.points),
        "one instance differs from all"
    );
}
