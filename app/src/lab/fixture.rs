//! Synthetic traces the lab opens as `#/lab?scenario=debug-wide-trace`, read through the
//! engine's Jaeger importer: one of 5,000 spans (a fan-out of eight per level over eight
//! services), to time the waterfall on a trace far bigger than the default mesh makes, and a
//! small broken one (a span whose parent is missing, a child starting before its parent).

use faultline_engine::Telemetry;
use faultline_engine::import::import_json;

pub const WIDE_TRACE: &str = "debug-wide-trace";
pub const WIDE_TRACE_SPANS: u32 = 5_000;
const FAN_OUT: u32 = 8;
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SERVICES: [&str; 8] = [
    "gateway",
    "orders",
    "inventory",
    "payments",
    "pricing",
    "search",
    "users",
    "shipping",
];

/// The trace as Jaeger JSON: span `i`'s parent is `(i - 1) / 8`, each child inside its parent's
/// time with a gap either side, every 97th span in error.
pub fn wide_trace_json() -> String {
    let n = WIDE_TRACE_SPANS as usize;
    let mut window = vec![(0u64, 0u64); n];
    let mut depth = vec![0u32; n];
    window[0] = (0, 2_000_000);
    let mut spans = Vec::with_capacity(n);
    for i in 0..n {
        let parent = (i > 0).then(|| (i - 1) / FAN_OUT as usize);
        if let Some(p) = parent {
            let k = ((i - 1) % FAN_OUT as usize) as u64;
            let (start, end) = window[p];
            let slot = (end - start) / (u64::from(FAN_OUT) + 1);
            let child_start = start + slot / 2 + slot * k + (i as u64 % 7) * slot / 40;
            window[i] = (child_start, child_start + slot * (3 + i as u64 % 5) / 8);
            depth[i] = depth[p] + 1;
        }
        let (start, end) = window[i];
        let service = SERVICES[(i * 3 + depth[i] as usize) % SERVICES.len()];
        let references = parent.map_or_else(String::new, |p| {
            format!(
                r#"{{"refType":"CHILD_OF","traceID":"{TRACE_ID}","spanID":"{:x}"}}"#,
                p + 1
            )
        });
        let error = if i % 97 == 3 {
            r#",{"key":"error","type":"bool","value":true}"#
        } else {
            ""
        };
        spans.push(format!(
            r#"{{"traceID":"{TRACE_ID}","spanID":"{:x}","operationName":"step {}","references":[{references}],"startTime":{},"duration":{},"processID":"{service}","tags":[{{"key":"span.kind","type":"string","value":"{}"}},{{"key":"fanout.index","type":"int64","value":{i}}}{error}]}}"#,
            i + 1,
            depth[i],
            1_700_000_000_000_000u64 + start,
            end - start,
            if parent.is_some() { "client" } else { "server" },
        ));
    }
    let processes: Vec<String> = SERVICES
        .iter()
        .map(|s| format!(r#""{s}":{{"serviceName":"{s}","tags":[]}}"#))
        .collect();
    format!(
        r#"{{"data":[{{"traceID":"{TRACE_ID}","spans":[{}],"processes":{{{}}}}},{BROKEN_TRACE}]}}"#,
        spans.join(","),
        processes.join(",")
    )
}

/// Four spans: `b` starts 2 ms before its parent `a` (clock skew), and `d`'s parent `c` was
/// never received (an orphan, so the trace is incomplete).
const BROKEN_TRACE: &str = r#"{"traceID":"0af7651916cd43dd8448eb211c80319c","processes":{"p1":{"serviceName":"gateway","tags":[]},"p2":{"serviceName":"orders","tags":[]}},"spans":[
{"traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"a1","operationName":"GET /orders","references":[],"startTime":1700000001000000,"duration":80000,"processID":"p1","tags":[{"key":"span.kind","type":"string","value":"server"}]},
{"traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"b2","operationName":"list","references":[{"refType":"CHILD_OF","traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"a1"}],"startTime":1700000000998000,"duration":30000,"processID":"p2","tags":[{"key":"span.kind","type":"string","value":"server"}]},
{"traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"d4","operationName":"SELECT","references":[{"refType":"CHILD_OF","traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"c3"}],"startTime":1700000001040000,"duration":12000,"processID":"p2","tags":[{"key":"span.kind","type":"string","value":"client"},{"key":"db.system","type":"string","value":"postgresql"}]}
]}"#;

pub fn wide_trace() -> Telemetry {
    import_json(&wide_trace_json())
        .map(|imported| imported.telemetry)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_engine::query::trace_view;

    #[test]
    fn the_wide_trace_has_five_thousand_spans_in_one_tree() {
        let t = wide_trace();
        assert_eq!(t.spans.len() as u32, WIDE_TRACE_SPANS + 3);
        let id = t.spans[0].trace_id;
        let view = trace_view(&t, id).unwrap();
        assert!(
            !view.incomplete,
            "{:?}",
            &view.warnings[..view.warnings.len().min(3)]
        );
        assert!(view.warnings.is_empty(), "{:?}", &view.warnings[..3]);
        assert_eq!(view.rows[0].descendants + 1, WIDE_TRACE_SPANS);
        assert!(view.depth >= 5 && view.errors > 40);
        assert!(view.rows.iter().any(|r| r.critical.len() > 1));
    }

    #[test]
    fn the_broken_trace_is_incomplete_and_skewed() {
        let t = wide_trace();
        let id = t.spans.last().unwrap().trace_id;
        let view = trace_view(&t, id).unwrap();
        assert!(view.incomplete);
        assert_eq!(view.warnings.len(), 2, "{:?}", view.warnings);
        assert!(view.warnings.iter().any(|w| w.starts_with("clock skew")));
        assert!(view.rows.iter().any(|r| r.orphan));
    }
}
