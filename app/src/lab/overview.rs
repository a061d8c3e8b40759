//! The run at a glance: traces, spans, log lines and error spans so far, and one row per
//! service with its traffic, error rate and latency, as the top of a RED dashboard shows them.

use faultline_engine::Duration;
use faultline_engine::query::service_summaries;
use faultline_engine::telemetry::SpanStatus;
use yew::prelude::*;

use super::LabRun;

/// `12.3 ms`, `1.20 s`: the way trace tools write durations.
pub fn duration(d: Duration) -> String {
    let us = d.0;
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2} s", us as f64 / 1_000_000.0)
    }
}

/// `12,345`, as the engine's comparison writes counts too.
pub use faultline_engine::query::group_thousands as count;

#[component]
pub fn Overview() -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let run = lab.run.borrow();
    let t = run.telemetry();
    let traces = t.spans.iter().filter(|s| s.parent.is_none()).count() as u64;
    let errors = t
        .spans
        .iter()
        .filter(|s| s.status == SpanStatus::Error)
        .count() as u64;
    let rows = service_summaries(t);
    html! {
        <section class="overview" aria-label="Run overview">
            <div class="stat-row">
                <div class="stat"><span class="stat-value" id="stat-traces">{ count(traces) }</span><span class="stat-label">{ "traces" }</span></div>
                <div class="stat"><span class="stat-value" id="stat-spans">{ count(t.spans.len() as u64) }</span><span class="stat-label">{ "spans" }</span></div>
                <div class="stat"><span class="stat-value" id="stat-logs">{ count(t.logs.len() as u64) }</span><span class="stat-label">{ "log lines" }</span></div>
                <div class="stat"><span class="stat-value" id="stat-errors">{ count(errors) }</span><span class="stat-label">{ "error spans" }</span></div>
            </div>
            <table class="data-table" id="service-table">
                <thead><tr>
                    <th scope="col">{ "service" }</th>
                    <th scope="col" class="num">{ "instances" }</th>
                    <th scope="col" class="num">{ "requests" }</th>
                    <th scope="col" class="num">{ "errors" }</th>
                    <th scope="col" class="num">{ "p50" }</th>
                    <th scope="col" class="num">{ "p99" }</th>
                </tr></thead>
                <tbody>
                    for r in rows {
                        <tr>
                            <td>{ r.service.clone() }</td>
                            <td class="num">{ r.instances }</td>
                            <td class="num">{ count(r.requests) }</td>
                            <td class={classes!("num", (r.errors > 0).then_some("bad"))}>
                                { format!("{:.1}%", 100.0 * r.errors as f64 / r.requests.max(1) as f64) }
                            </td>
                            <td class="num">{ r.p50.map(duration).unwrap_or_default() }</td>
                            <td class="num">{ r.p99.map(duration).unwrap_or_default() }</td>
                        </tr>
                    }
                </tbody>
            </table>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::{count, duration};
    use faultline_engine::Duration;

    #[test]
    fn numbers_read_as_a_trace_tool_writes_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(duration(Duration(950)), "950 µs");
        assert_eq!(duration(Duration(12_340)), "12.3 ms");
        assert_eq!(duration(Duration(1_200_000)), "1.20 s");
    }
}
