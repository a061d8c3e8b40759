//! The comparison of Run A and Run B: the engine's `compare` rows as a table (metric, A, B,
//! change, verdict in words and colour) and plotters charts of p99 and error rate over time,
//! drawn and hovered as the lab's Metrics panels are.

use std::rc::Rc;

use faultline_engine::sandbox::{RunSummary, SeriesPoint, Verdict, compare};
use yew::prelude::*;

use crate::lab::metrics::{BLUE, Chart, Line, ORANGE, Panel, Unit, draw};

/// The length of a summary's series windows in microseconds.
fn window_us(series: &[SeriesPoint]) -> u64 {
    match series {
        [first, second, ..] => second.start.0 - first.start.0,
        _ => 1_000_000,
    }
}

/// Both runs' series on one time grid: the finer of their windows, over the longer run; each
/// run's value holds over its own window, and stops where its run does.
fn on_one_grid(
    a: &[SeriesPoint],
    b: &[SeriesPoint],
    value: fn(&SeriesPoint) -> Option<f64>,
) -> (Vec<Option<f64>>, Vec<Option<f64>>, f64) {
    let (wa, wb) = (window_us(a).max(1), window_us(b).max(1));
    let grid = wa.min(wb);
    let end = (a.len() as u64 * wa).max(b.len() as u64 * wb);
    let buckets = end.div_ceil(grid) as usize;
    let values = |series: &[SeriesPoint], window: u64| -> Vec<Option<f64>> {
        (0..buckets)
            .map(|k| {
                let at = k as u64 * grid;
                series.get((at / window) as usize).and_then(value)
            })
            .collect()
    };
    (values(a, wa), values(b, wb), grid as f64 / 1_000_000.0)
}

fn p99_ms(p: &SeriesPoint) -> Option<f64> {
    p.p99.map(|d| d.0 as f64 / 1_000.0)
}

fn error_percent(p: &SeriesPoint) -> Option<f64> {
    (p.requests > 0).then_some(100.0 * p.error_rate)
}

/// The two charts: p99 and error rate, A against B.
fn charts(a: &RunSummary, b: &RunSummary) -> Vec<(Chart, f64)> {
    let chart =
        |id: &'static str, title: &str, unit: Unit, value: fn(&SeriesPoint) -> Option<f64>| {
            let (va, vb, bucket_s) = on_one_grid(&a.series, &b.series, value);
            let line = |name: &str, color: &'static str, values: Vec<Option<f64>>| Line {
                name: name.into(),
                color,
                values,
            };
            (
                Chart {
                    id,
                    title: title.into(),
                    unit,
                    lines: vec![line("A", BLUE, va), line("B", ORANGE, vb)],
                    exemplars: false,
                },
                bucket_s,
            )
        };
    vec![
        chart(
            "sandbox-p99",
            "p99 latency of entry requests",
            Unit::Millis,
            p99_ms,
        ),
        chart(
            "sandbox-errors",
            "Error rate of entry requests (5xx)",
            Unit::Percent,
            error_percent,
        ),
    ]
}

/// `✓ better`: the verdict in words, with a mark that does not rely on colour.
fn verdict_text(v: Verdict) -> String {
    let mark = match v {
        Verdict::Better => "✓",
        Verdict::Worse => "✗",
        Verdict::Same => "=",
        Verdict::Neutral => "~",
    };
    format!("{mark} {}", v.name())
}

#[derive(Properties, PartialEq)]
pub struct ComparisonProps {
    pub a: Rc<RunSummary>,
    pub b: Rc<RunSummary>,
    /// Whether each side's form has changed since it ran.
    pub stale: [bool; 2],
}

#[component]
pub fn Comparison(props: &ComparisonProps) -> Html {
    let rows = use_memo((props.a.clone(), props.b.clone()), |(a, b)| compare(a, b));
    let panels = use_memo((props.a.clone(), props.b.clone()), |(a, b)| {
        charts(a, b)
            .into_iter()
            .map(|(chart, bucket_s)| Rc::new(draw(chart, bucket_s)))
            .collect::<Vec<_>>()
    });
    let hovered = use_state(|| None::<(usize, usize)>);
    let on_hover = {
        let hovered = hovered.clone();
        Callback::from(move |h: Option<(usize, usize)>| {
            if *hovered != h {
                hovered.set(h);
            }
        })
    };
    let worse = rows.iter().filter(|r| r.verdict == Verdict::Worse).count();
    let better = rows.iter().filter(|r| r.verdict == Verdict::Better).count();
    html! {
        <div class="versus-body">
            if props.stale.iter().any(|s| *s) {
                <p class="notice warn" role="status">{
                    match props.stale {
                        [true, true] => "Both setups have changed since these runs: run again to compare them.",
                        [true, false] => "Run A's setup has changed since it ran: run it again to compare.",
                        _ => "Run B's setup has changed since it ran: run it again to compare.",
                    }
                }</p>
            }
            <p class="versus-summary">{
                format!("B against A: {better} better, {worse} worse, {} unchanged or neutral.",
                    rows.len() - better - worse)
            }</p>
            <div class="versus-grid">
                <div class="versus-charts">
                    for (i, d) in panels.iter().enumerate() {
                        <Panel
                            key={d.chart.id}
                            index={i}
                            drawn={d.clone()}
                            hovered={hovered.map(|(panel, b)| (b, panel == i))}
                            on_hover={on_hover.clone()}
                            on_pick={None::<Callback<usize>>}
                        />
                    }
                </div>
                <table class="data-table versus-table" id="versus-table">
                    <caption class="sr-only">{ "Run B against Run A, metric by metric" }</caption>
                    <thead><tr>
                        <th scope="col">{ "metric" }</th>
                        <th scope="col" class="num">{ "A" }</th>
                        <th scope="col" class="num">{ "B" }</th>
                        <th scope="col" class="num">{ "change" }</th>
                        <th scope="col">{ "verdict" }</th>
                    </tr></thead>
                    <tbody>
                        for r in rows.iter() {
                            <tr data-metric={r.metric} data-verdict={r.verdict.name()}>
                                <th scope="row" title={r.help}>
                                    { r.metric }
                                    <span class="metric-help">{ r.help }</span>
                                </th>
                                <td class="num">{ r.a.clone() }</td>
                                <td class="num">{ r.b.clone() }</td>
                                <td class="num">{ r.change.clone() }</td>
                                <td><span class={classes!("verdict", r.verdict.name())}>{ verdict_text(r.verdict) }</span></td>
                            </tr>
                        }
                    </tbody>
                </table>
                <p class="versus-note">{
                    "Latencies here are exact percentiles of the entry requests' spans; the lab's \
                     overview and metrics read latency histograms, so their p99 can differ by a bucket."
                }</p>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_engine::{Duration, SimTime};

    fn series(window_s: u64, p99_ms: &[u64]) -> Vec<SeriesPoint> {
        p99_ms
            .iter()
            .enumerate()
            .map(|(i, ms)| SeriesPoint {
                start: SimTime(i as u64 * window_s * 1_000_000),
                requests: 10,
                error_rate: 0.1,
                p99: Some(Duration::from_ms(*ms)),
            })
            .collect()
    }

    #[test]
    fn runs_of_different_lengths_share_the_finer_grid() {
        let a = series(1, &[10, 20, 30, 40]);
        let b = series(2, &[100, 200, 300]);
        let (va, vb, bucket_s) = on_one_grid(&a, &b, p99_ms);
        assert_eq!(bucket_s, 1.0);
        assert_eq!(
            va,
            [Some(10.0), Some(20.0), Some(30.0), Some(40.0), None, None]
        );
        assert_eq!(
            vb,
            [100.0, 100.0, 200.0, 200.0, 300.0, 300.0]
                .map(Some)
                .to_vec()
        );
        let (same_a, same_b, _) = on_one_grid(&a, &a, error_percent);
        assert_eq!(same_a, same_b);
        assert_eq!(same_a[0], Some(10.0));
    }

    #[test]
    fn the_charts_draw_both_runs_and_the_verdict_reads_without_colour() {
        let a = RunSummary {
            series: series(1, &[10, 20, 30]),
            ..RunSummary::default()
        };
        let b = RunSummary {
            series: series(1, &[15, 25, 90]),
            ..RunSummary::default()
        };
        let drawn: Vec<_> = charts(&a, &b)
            .into_iter()
            .map(|(c, s)| draw(c, s))
            .collect();
        assert_eq!(drawn.len(), 2);
        assert_eq!(drawn[0].chart.lines[1].values[2], Some(90.0));
        assert!(drawn[0].svg.contains("<polyline") || drawn[0].svg.contains("<path"));
        assert_eq!(verdict_text(Verdict::Worse), "✗ worse");
        assert_eq!(verdict_text(Verdict::Neutral), "~ changed");
    }
}
