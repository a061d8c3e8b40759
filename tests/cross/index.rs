//! The index answers exactly as a scan of every span and line would: trace search, trace ids,
//! one trace's spans and LogQL (with time ranges) compared with brute-force scans, over runs
//! with faults, mid-run between `step_until` calls, imported traces and out-of-order logs.

use std::collections::{BTreeMap, BTreeSet};

use faultline_engine::import::{import_json, import_ndjson_logs};
use faultline_engine::logql;
use faultline_engine::mesh::default_mesh;
use faultline_engine::query::{TraceQuery, TraceSummary, parse_tags, search_traces};
use faultline_engine::scenario::{FaultEffect, FaultSpec, Scenario};
use faultline_engine::telemetry::{Span, SpanStatus, Telemetry, TraceId};
use faultline_engine::trace::{TraceTree, trace_ids};
use faultline_engine::{Duration, SimTime, Simulation};
use faultline_tests::shared_fixtures;

// ------------------------------------------------------------ brute-force references

fn scan_span_matches(t: &Telemetry, s: &Span, q: &TraceQuery) -> bool {
    q.service
        .as_deref()
        .is_none_or(|name| t.service_name(s.service) == name)
        && q.operation
            .as_deref()
            .is_none_or(|op| t.text(s.operation) == op)
        && q.tags.iter().all(|(key, value)| {
            if key == "error" {
                return (s.status == SpanStatus::Error).to_string() == *value;
            }
            t.attributes(s)
                .iter()
                .any(|(k, v)| t.text(*k) == key && t.value_text(v) == *value)
        })
}

/// Trace search as it was before the index: group every span by trace, then filter and sort.
fn scan_search(t: &Telemetry, q: &TraceQuery) -> Vec<TraceSummary> {
    let mut traces: BTreeMap<TraceId, Vec<&Span>> = BTreeMap::new();
    for s in &t.spans {
        traces.entry(s.trace_id).or_default().push(s);
    }
    let mut rows: Vec<TraceSummary> = traces
        .into_iter()
        .filter(|(_, spans)| spans.iter().any(|s| scan_span_matches(t, s, q)))
        .map(|(trace_id, spans)| scan_summarize(t, trace_id, &spans))
        .filter(|row| {
            q.min_duration.is_none_or(|d| row.duration >= d)
                && q.max_duration.is_none_or(|d| row.duration <= d)
                && (!q.errors_only || row.errors > 0)
                && q.from.is_none_or(|f| row.start >= f)
                && q.until.is_none_or(|u| row.start < u)
        })
        .collect();
    rows.sort_by(|a, b| b.start.cmp(&a.start).then(a.trace_id.cmp(&b.trace_id)));
    rows.truncate(if q.limit == 0 { 20 } else { q.limit as usize });
    rows
}

fn scan_summarize(t: &Telemetry, trace_id: TraceId, spans: &[&Span]) -> TraceSummary {
    let ids: BTreeSet<_> = spans.iter().map(|s| s.span_id).collect();
    let root = spans
        .iter()
        .filter(|s| s.parent.is_none_or(|p| !ids.contains(&p)))
        .min_by_key(|s| s.start)
        .unwrap_or(&spans[0]);
    let start = spans.iter().map(|s| s.start).min().unwrap_or_default();
    let end = spans
        .iter()
        .map(|s| s.end().unwrap_or(s.start))
        .max()
        .unwrap_or_default();
    let mut services: BTreeMap<String, u32> = BTreeMap::new();
    for s in spans {
        *services
            .entry(t.service_name(s.service).to_string())
            .or_default() += 1;
    }
    TraceSummary {
        trace_id,
        root_service: t.service_name(root.service).to_string(),
        root_operation: t.text(root.operation).to_string(),
        start,
        duration: end.since(start),
        spans: spans.len() as u32,
        errors: spans
            .iter()
            .filter(|s| s.status == SpanStatus::Error)
            .count() as u32,
        open: spans.iter().filter(|s| s.end().is_none()).count() as u32,
        services: services.into_iter().collect(),
    }
}

fn scan_logs(
    t: &Telemetry,
    q: &logql::LogQuery,
    from: Option<SimTime>,
    until: Option<SimTime>,
) -> Vec<u32> {
    (0..t.logs.len() as u32)
        .filter(|&i| {
            let line = &t.logs[i as usize];
            from.is_none_or(|f| line.time >= f)
                && until.is_none_or(|u| line.time < u)
                && q.keeps(t, line)
        })
        .collect()
}

// ------------------------------------------------------------ the comparisons

fn trace_queries(t: &Telemetry, now: SimTime) -> Vec<TraceQuery> {
    let q = |f: &dyn Fn(&mut TraceQuery)| {
        let mut q = TraceQuery {
            limit: 100_000,
            ..TraceQuery::default()
        };
        f(&mut q);
        q
    };
    let mut queries = vec![
        TraceQuery::default(),
        q(&|_| {}),
        q(&|q| q.limit = 7),
        q(&|q| q.errors_only = true),
        q(&|q| q.min_duration = Some(Duration::from_ms(300))),
        q(&|q| q.max_duration = Some(Duration::from_ms(20))),
        q(&|q| q.operation = Some("POST /orders".into())),
        q(&|q| q.service = Some("no such service".into())),
        q(&|q| {
            q.from = Some(SimTime(now.0 / 3));
            q.until = Some(SimTime(now.0 / 2));
        }),
        q(&|q| q.until = Some(SimTime(now.0 / 4))),
        q(&|q| q.from = Some(SimTime(now.0 / 4 * 3))),
    ];
    for name in t.service_names.iter().map(|s| t.text(*s)) {
        queries.push(q(&|q| q.service = Some(name.to_string())));
        queries.push(q(&|q| {
            q.service = Some(name.to_string());
            q.errors_only = true;
            q.limit = 5;
        }));
    }
    for tags in [
        "error=true",
        "error=false",
        "error=maybe",
        "http.response.status_code=500",
        "http.response.status_code=504",
        "http.response.status_code=200",
        "http.response.status_code=0200",
        "error.type=timeout",
        "error.type=timeout peer.service=payments",
        "peer.service=payments error=true",
        "retry.attempt=1",
        "retry.attempt=2",
        "idempotency.key=3",
        "queue_wait_ms=0",
        r#"http.route="/orders""#,
        r#"http.request.method=GET"#,
        "no.such.key=1",
        "import.span_id=x",
    ] {
        queries.push(q(&|q| q.tags = parse_tags(tags).unwrap()));
        queries.push(q(&|q| {
            q.tags = parse_tags(tags).unwrap();
            q.service = Some("gateway".into());
            q.limit = 3;
        }));
    }
    queries
}

const LOG_QUERIES: &[&str] = &[
    r#"{service="payments"}"#,
    r#"{service="payments", level=~"warn|error"} |= "timeout""#,
    r#"{service=~".+"} | json | duration_ms > 100"#,
    r#"{level="info"} |~ "card_number=[0-9]{13,19}""#,
    r#"{level!="debug", service=~"pay.*|gate.*"} != "timeout""#,
    r#"{instance="payments-1"}"#,
    r#"{instance=~"auth-.*", level="warn"} |= "retrying""#,
    r#"{service=~".+"} |= "ms""#,
    r#"{service=~".+"} |= """#,
    r#"{service=~".+"} |= "500""#,
    r#"{service=~".+"} |= "-1""#,
    r#"{service=~".+"} |= "true""#,
    r#"{service=~".+"} |= "ed, r""#,
    r#"{service=~".+"} |= "=timeout""#,
    r#"{service=~".+"} |~ "time.ut""#,
    r#"{service=~".+"} !~ "(?i)TIMEOUT""#,
    r#"{service=~".+"} |~ "request (completed|failed)" != "orders""#,
    r#"{service=~".+"} |~ "\\d{3}""#,
    r#"{msg="request failed"}"#,
    r#"{service="gateway", msg=~"call.*"} | backoff_ms >= 0"#,
    r#"{level="warn"} | peer_service="payments" or error_type="timeout""#,
    r#"{trace_id="0000000000000000000000000000000a"}"#,
    r#"{trace_id="nonsense"}"#,
    r#"{service="gateway", trace_id=""}"#,
    r#"{service=~".+", trace_id!=""} |= "payments""#,
];

/// Compares every indexed answer with its scan on `t`, with time windows around `now`.
fn assert_same(t: &Telemetry, now: SimTime, context: &str) {
    let ids = trace_ids(t);
    let mut seen = BTreeSet::new();
    let scanned: Vec<TraceId> = t
        .spans
        .iter()
        .filter(|s| seen.insert(s.trace_id))
        .map(|s| s.trace_id)
        .collect();
    assert_eq!(ids, scanned, "{context}: trace ids");
    for id in ids.iter().step_by(7).chain(ids.last()) {
        let tree = TraceTree::new(t, *id);
        let scan: Vec<&Span> = t.spans.iter().filter(|s| s.trace_id == *id).collect();
        assert!(
            tree.spans.len() == scan.len()
                && tree
                    .spans
                    .iter()
                    .zip(&scan)
                    .all(|(a, b)| std::ptr::eq(*a, *b)),
            "{context}: spans of trace {id}"
        );
    }
    for q in trace_queries(t, now) {
        assert_eq!(search_traces(t, &q), scan_search(t, &q), "{context}: {q:?}");
    }
    let mut queries: Vec<String> = LOG_QUERIES.iter().map(|q| q.to_string()).collect();
    for line in t.logs.iter().filter(|l| l.trace_id.is_some()).step_by(97) {
        queries.push(format!(
            r#"{{trace_id="{}", level=~"info|warn"}}"#,
            line.trace_id.unwrap()
        ));
    }
    let windows = [
        (None, None),
        (Some(SimTime(now.0 / 3)), Some(SimTime(now.0 / 2))),
        (None, Some(SimTime(now.0 / 5))),
        (Some(SimTime(now.0 / 5 * 4)), None),
        (Some(SimTime(now.0 / 2)), Some(SimTime(now.0 / 2))),
    ];
    for query in &queries {
        let parsed = logql::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        for (from, until) in windows {
            assert_eq!(
                parsed.run_between(t, from, until),
                scan_logs(t, &parsed, from, until),
                "{context}: {query} in [{from:?}, {until:?})"
            );
        }
    }
}

fn fault(service: &str, from_ms: u64, until_ms: u64, effect: FaultEffect) -> FaultSpec {
    FaultSpec::new(service, None, from_ms, until_ms, effect)
}

fn scenarios() -> Vec<(Scenario, u64)> {
    let mut faulty = default_mesh(40.0, 6_000);
    faulty.faults = vec![
        fault(
            "payments",
            1_000,
            3_000,
            FaultEffect::Latency { extra_ms: 900 },
        ),
        fault("auth", 2_000, 4_000, FaultEffect::ErrorRate { rate: 0.3 }),
        fault("payments", 500, 5_000, FaultEffect::CardNumbersLogged),
        fault("orders", 1_500, 4_500, FaultEffect::ContextDropped),
        fault("inventory", 3_000, 5_000, FaultEffect::Crash),
    ];
    let mut partitioned = default_mesh(30.0, 4_000);
    partitioned.faults = vec![
        fault(
            "orders",
            1_000,
            2_500,
            FaultEffect::Partition {
                peer: "payments".into(),
            },
        ),
        fault("gateway", 0, 4_000, FaultEffect::RetryStorm),
        fault("payments", 0, 4_000, FaultEffect::LogLevelWarn),
    ];
    vec![
        (default_mesh(30.0, 4_000), 1),
        (faulty.clone(), 2),
        (faulty, 11),
        (partitioned, 5),
    ]
}

#[test]
fn indexed_queries_answer_as_scans_do_at_the_end_of_runs() {
    for (scenario, seed) in scenarios() {
        let (t, _) = Simulation::new(scenario.clone(), seed).unwrap().finish();
        let end = t.logs.last().map_or(SimTime(0), |l| l.time);
        assert_same(&t, end, &format!("{} seed {seed}", scenario.name));
    }
}

#[test]
fn indexed_queries_answer_as_scans_do_mid_run() {
    for (scenario, seed) in scenarios().into_iter().skip(1) {
        let mut sim = Simulation::new(scenario.clone(), seed).unwrap();
        let mut open_steps = 0;
        // The same store queried between steps: the index catches up each time.
        for step_ms in [
            1, 600, 1_100, 1_700, 2_300, 2_900, 3_100, 3_500, 3_900, 5_500,
        ] {
            let now = SimTime::from_ms(step_ms);
            sim.step_until(now);
            let t = sim.telemetry();
            open_steps += usize::from(t.spans.iter().any(|s| s.end().is_none()));
            assert_same(t, now, &format!("seed {seed} at {step_ms} ms"));
        }
        // Most instants inside a run find a request in flight (at 30 requests a second, at
        // least 4 of the 8 did over 60 seeds).
        assert!(
            open_steps >= 3,
            "seed {seed}: mid-run stores have open spans"
        );
        // A clone starts with an empty index and builds it in one go: same answers.
        let t = sim.telemetry().clone();
        assert_same(&t, sim.now(), &format!("seed {seed}, clone"));
    }
}

#[test]
fn indexed_queries_answer_as_scans_do_on_imported_traces() {
    let dir = shared_fixtures().join("traces");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{}", dir.display());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let imported = import_json(&text).unwrap();
        let t = &imported.telemetry;
        let end = t
            .spans
            .iter()
            .filter_map(|s| s.end())
            .max()
            .unwrap_or(SimTime(0));
        assert_same(t, end, &path.display().to_string());
    }
}

#[test]
fn indexed_log_queries_answer_as_scans_do_on_out_of_order_logs() {
    let (scenario, seed) = scenarios().remove(1);
    let t = faultline_engine::run(&scenario, seed).unwrap();
    let end = t.logs.last().unwrap().time;
    // Imported NDJSON keeps the file's order, which need not be time order.
    let ndjson = faultline_engine::export::ndjson_logs(&t);
    // Every third line loses its trace context (its id becomes a plain `trace` field).
    let mut lines: Vec<String> = ndjson
        .lines()
        .enumerate()
        .map(|(n, l)| match n % 3 {
            1 => l.replace("\"trace_id\":", "\"trace\":"),
            _ => l.to_string(),
        })
        .collect();
    // The first line stays first: it sets the epoch the others are read against.
    lines[1..].reverse();
    let mut text = lines.join("\n");
    text.push('\n');
    let imported = import_ndjson_logs(&text).unwrap();
    assert!(imported.logs.windows(2).any(|w| w[1].time < w[0].time));
    assert!(imported.logs.iter().any(|l| l.trace_id.is_none()));
    assert_same(&imported, end, "out-of-order NDJSON");
}
