//! Jaeger UI's "JSON file" upload replayed in Rust: each rule its loading code applies to a file
//! (jaegertracing/jaeger-ui at c321fb32bbca0bdce9e8c2d40afb35abbf54c12b), checked on `jaeger_json`,
//! and on `otlp_json` through the Jaeger query service's `/api/transform` that the UI hands OTLP to.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use faultline_engine::export::{jaeger_json, otlp_json};
use faultline_engine::mesh::default_mesh;
use faultline_engine::scenario::{FaultEffect, FaultSpec};
use faultline_engine::telemetry::SpanStatus;
use serde_json::{Map, Value as Json, json};

// Where each rule comes from (paths in jaegertracing/jaeger-ui at c321fb32, under
// packages/jaeger-ui/src/, unless named otherwise):
const READ_JSON_FILE: &str = "utils/readJsonFile.ts readJsonFile";
const LOAD_TRACES: &str = "components/SearchTracePage/FileLoader.tsx loadTracesFromFile";
const TRANSFORM: &str = "model/transform-trace-data.ts transformTraceData";
const DEDUPLICATE_TAGS: &str = "model/transform-trace-data.ts deduplicateTags";
const SPAN_FACADE: &str = "model/OtelSpanFacade.ts constructor";
const SEARCH_PAGE: &str =
    "components/SearchTracePage/index.tsx (uploaded summaries deduplicated by traceID)";
// jaegertracing/jaeger at 8498073f: the JSON its own query API writes, which the UI is built for.
const FROM_DOMAIN: &str =
    "jaeger internal/uimodel/converter/v1/json/from_domain.go convertKeyValues";
const JAEGER_IDS: &str = "jaeger-idl model/v1/ids.go TraceID.String / SpanID.String";
// The OTLP path: readJsonFile sees `resourceSpans` and POSTs the file to the query service's
// `/api/transform` (api/jaeger.ts transformOTLP), which unmarshals it with the collector's
// ptrace.JSONUnmarshaler, converts it with the contrib Jaeger translator and writes it back with
// from_domain.go; the UI then loads the answer as above.
const PDATA_IDS: &str = "opentelemetry-collector pdata/internal/data/bytesid.go unmarshalJSON (\"invalid length for ID\")";
const PDATA_SPAN: &str =
    "opentelemetry-collector pdata/ptrace/internal/ptracejson/json.go readSpan";
const TRANSLATOR: &str =
    "opentelemetry-collector-contrib pkg/translator/jaeger/traces_to_jaegerproto.go";

/// What Jaeger UI's search list and trace page show for one uploaded trace.
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    trace_id: String,
    spans: usize,
    roots: usize,
    orphans: usize,
    root_service: String,
    root_operation: String,
    errors: usize,
    events: usize,
    start_us: u64,
    end_us: u64,
}

/// JavaScript's `Number.MAX_SAFE_INTEGER`: larger integers do not survive `JSON.parse`.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

/// A microsecond time or duration as the UI computes with it: a finite JSON number, whole
/// (all timestamps are in microseconds, types/trace.ts).
fn micros(v: &Json) -> Option<u64> {
    v.as_u64()
}

/// A time in microseconds since the Unix epoch, between 2000 and 2100: milliseconds or
/// nanoseconds would still load, but the UI would date and scale them wrongly.
fn epoch_micros(v: &Json) -> Option<u64> {
    micros(v).filter(|t| (946_684_800_000_000..4_102_444_800_000_000).contains(t))
}

/// One `{key, type, value}` as Jaeger's own writer makes it: the type names the value's JSON
/// type, and an int64 beyond what a JS number holds exactly is written as a string.
fn check_tag(tag: &Json, what: &str, p: &mut Vec<String>) {
    let Some(key) = tag["key"].as_str().filter(|k| !k.is_empty()) else {
        p.push(format!("{what}: tag without a key: {tag} ({TRANSFORM})"));
        return;
    };
    let v = &tag["value"];
    let ok = match tag["type"].as_str() {
        Some("string") | Some("binary") => v.is_string(),
        Some("bool") => v.is_boolean(),
        Some("int64") => match v {
            Json::String(s) => s
                .parse::<i64>()
                .is_ok_and(|i| i.unsigned_abs() > MAX_SAFE_INTEGER as u64),
            _ => v
                .as_i64()
                .is_some_and(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER as u64),
        },
        Some("float64") => v.is_number(),
        _ => false,
    };
    if !ok {
        p.push(format!(
            "{what}: tag {key} has type {} and value {v} ({FROM_DOMAIN})",
            tag["type"]
        ));
    }
}

fn tag<'a>(span: &'a Json, key: &str) -> Option<&'a Json> {
    span["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| &t["value"])
}

/// Loads a Jaeger JSON upload the way Jaeger UI does, returning what it would show and every
/// way the file falls short of what the UI's code needs.
fn jaeger_upload(text: &str) -> (Vec<Shown>, Vec<String>) {
    let mut p = Vec::new();
    // readJsonFile: JSON.parse of the whole file (NDJSON only as a fallback); an object with
    // `resourceSpans` would go to the OTLP converter instead.
    let doc: Json = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            return (
                vec![],
                vec![format!("JSON.parse fails: {e} ({READ_JSON_FILE})")],
            );
        }
    };
    if doc.get("resourceSpans").is_some() {
        p.push(format!(
            "has resourceSpans: read as OTLP ({READ_JSON_FILE})"
        ));
    }
    // loadTracesFromFile: `{data: [...]}` is a list of traces, each transformed on its own.
    let Some(traces) = doc["data"].as_array() else {
        p.push(format!("no `data` array of traces ({LOAD_TRACES})"));
        return (vec![], p);
    };
    let mut shown = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, trace) in traces.iter().enumerate() {
        let Some(s) = load_trace(trace, &format!("data[{i}]"), &mut p) else {
            continue;
        };
        if !ids.insert(s.trace_id.clone()) {
            p.push(format!(
                "trace {} appears twice: the second is dropped from the list ({SEARCH_PAGE})",
                s.trace_id
            ));
        }
        shown.push(s);
    }
    (shown, p)
}

fn load_trace(trace: &Json, at: &str, p: &mut Vec<String>) -> Option<Shown> {
    // transformTraceData: `if (!traceID) return null;` and the file reports it as not loaded.
    let Some(trace_id) = trace["traceID"].as_str().filter(|s| !s.is_empty()) else {
        p.push(format!("{at}: no traceID: not loaded ({TRANSFORM})"));
        return None;
    };
    let at = format!("{at} ({trace_id})");
    if !lower_hex(trace_id, 32) {
        p.push(format!(
            "{at}: trace id is not 32 lower-case hex digits ({JAEGER_IDS})"
        ));
    }
    let (Some(spans), Some(processes)) =
        (trace["spans"].as_array(), trace["processes"].as_object())
    else {
        p.push(format!(
            "{at}: no `spans` array or `processes` object ({TRANSFORM})"
        ));
        return None;
    };

    // First pass of transformTraceData: the span map, processes, tags, logs, references.
    let mut by_id: BTreeMap<&str, &Json> = BTreeMap::new();
    let (mut errors, mut events) = (0, 0);
    for s in spans {
        let Some(span_id) = s["spanID"].as_str() else {
            p.push(format!("{at}: span without a spanID ({TRANSFORM})"));
            continue;
        };
        let at = format!("{at} span {span_id}");
        if !lower_hex(span_id, 16) {
            p.push(format!(
                "{at}: span id is not 16 lower-case hex digits ({JAEGER_IDS})"
            ));
        }
        if by_id.insert(span_id, s).is_some() {
            p.push(format!(
                "{at}: duplicate spanID, renamed {span_id}_1 ({TRANSFORM})"
            ));
        }
        // OtelSpanFacade finds the parent among references whose traceID equals the span's own.
        if s["traceID"].as_str() != Some(trace_id) {
            p.push(format!(
                "{at}: span traceID {} is not the trace's ({SPAN_FACADE})",
                s["traceID"]
            ));
        }
        // `data.processes[processID] || { serviceName: 'unknown-service' }`
        let process = s["processID"].as_str().and_then(|pid| processes.get(pid));
        match process {
            Some(process) if process["serviceName"].is_string() => {
                for t in process["tags"].as_array().into_iter().flatten() {
                    check_tag(t, &format!("{at} process"), p);
                }
            }
            _ => p.push(format!(
                "{at}: processID {} names no process: shown as unknown-service ({TRANSFORM})",
                s["processID"]
            )),
        }
        if s["operationName"].as_str().is_none_or(str::is_empty) {
            p.push(format!("{at}: no operationName ({TRANSFORM})"));
        }
        // repairStartTime: a startTime that is not a finite number above 0 is replaced by the
        // parent's; processSpan adds `duration` to it for the trace's end.
        if epoch_micros(&s["startTime"]).is_none() {
            p.push(format!(
                "{at}: startTime {} is not microseconds ({TRANSFORM})",
                s["startTime"]
            ));
        }
        if micros(&s["duration"]).is_none() {
            p.push(format!(
                "{at}: duration {} is not microseconds ({TRANSFORM})",
                s["duration"]
            ));
        }
        let tags = s["tags"].as_array().map(Vec::as_slice).unwrap_or_default();
        let mut seen = BTreeSet::new();
        for t in tags {
            check_tag(t, &at, p);
            if !seen.insert((t["key"].to_string(), t["value"].to_string())) {
                p.push(format!(
                    "{at}: duplicate tag {}:{} ({DEDUPLICATE_TAGS})",
                    t["key"], t["value"]
                ));
            }
        }
        // OtelSpanFacade: kind from `span.kind` upper-cased, status ERROR when `error` is truthy.
        match tag(s, "span.kind").and_then(Json::as_str) {
            Some("server" | "client" | "producer" | "consumer" | "internal") => {}
            other => p.push(format!(
                "{at}: span.kind {other:?} reads as INTERNAL ({SPAN_FACADE})"
            )),
        }
        match tag(s, "error") {
            None => {}
            Some(Json::Bool(true)) => errors += 1,
            Some(v) => p.push(format!("{at}: error tag {v} is not `true` ({SPAN_FACADE})")),
        }
        for log in s["logs"].as_array().map(Vec::as_slice).unwrap_or_default() {
            events += 1;
            if epoch_micros(&log["timestamp"]).is_none() {
                p.push(format!(
                    "{at}: log timestamp {} is not microseconds ({TRANSFORM})",
                    log["timestamp"]
                ));
            }
            let Some(fields) = log["fields"].as_array() else {
                p.push(format!("{at}: log without fields ({TRANSFORM})"));
                continue;
            };
            for f in fields {
                check_tag(f, &format!("{at} log"), p);
            }
            // The event's name is its `event` field; without one the UI calls it "log".
            if !fields
                .iter()
                .any(|f| f["key"] == "event" && f["value"].is_string())
            {
                p.push(format!(
                    "{at}: log without an `event` field shows as \"log\" ({SPAN_FACADE})"
                ));
            }
        }
        for r in s["references"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if !matches!(r["refType"].as_str(), Some("CHILD_OF" | "FOLLOWS_FROM"))
                || !r["spanID"].is_string()
            {
                p.push(format!(
                    "{at}: reference {r} is not CHILD_OF/FOLLOWS_FROM a spanID ({TRANSFORM})"
                ));
            }
            if r["traceID"].as_str() != Some(trace_id) {
                p.push(format!(
                    "{at}: reference {r} names another trace: not the parent ({SPAN_FACADE})"
                ));
            }
        }
    }

    // Second pass: the parent is the first CHILD_OF/FOLLOWS_FROM reference in the span map; a
    // span with references but none found is a root and counts as an orphan.
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut roots = Vec::new();
    let mut orphans = 0;
    for (&id, s) in &by_id {
        let refs = s["references"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let parent = refs
            .iter()
            .filter_map(|r| r["spanID"].as_str())
            .find(|r| by_id.contains_key(r));
        match parent {
            Some(parent) => children.entry(parent).or_default().push(id),
            None => {
                if !refs.is_empty() {
                    orphans += 1;
                    p.push(format!("{at}: span {id} has a missing parent: the trace shows as incomplete ({TRANSFORM})"));
                }
                roots.push(id);
            }
        }
    }
    // processSpan walks from the roots; spans it never reaches (a reference cycle) are not shown.
    let start = |id: &str| micros(&by_id[id]["startTime"]).unwrap_or(0);
    let (mut first, mut last, mut reached) = (u64::MAX, 0, 0);
    let mut stack = roots.clone();
    while let Some(id) = stack.pop() {
        reached += 1;
        first = first.min(start(id));
        last = last.max(start(id) + micros(&by_id[id]["duration"]).unwrap_or(0));
        stack.extend(children.get(id).into_iter().flatten());
    }
    if reached != by_id.len() {
        p.push(format!(
            "{at}: {} spans sit in a reference cycle and are not shown ({TRANSFORM})",
            by_id.len() - reached
        ));
    }
    // The summary's root is the earliest root span (model/trace-summary.ts traceToTraceSummary).
    roots.sort_by_key(|id| start(id));
    let root = roots.first().map(|id| by_id[id]);
    let root_service = root
        .and_then(|r| processes.get(r["processID"].as_str()?))
        .and_then(|process| process["serviceName"].as_str())
        .unwrap_or_default();
    Some(Shown {
        trace_id: trace_id.to_string(),
        spans: spans.len(),
        roots: roots.len(),
        orphans,
        root_service: root_service.to_string(),
        root_operation: root
            .and_then(|r| r["operationName"].as_str())
            .unwrap_or_default()
            .to_string(),
        errors,
        events,
        start_us: first,
        end_us: last,
    })
}

/// An OTLP AnyValue as ptracejson reads it, turned into a Jaeger tag as the translator does
/// (arrays become their JSON text).
fn otlp_tag(key: &str, value: &Json, at: &str, p: &mut Vec<String>) -> Json {
    let (kind, v) = match value
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.as_str(), v))
    {
        Some(("stringValue", Json::String(s))) => ("string", json!(s)),
        Some(("boolValue", Json::Bool(b))) => ("bool", json!(b)),
        Some(("intValue", v)) => match v.as_str().map(str::parse::<i64>).or(v.as_i64().map(Ok)) {
            Some(Ok(i)) => ("int64", json!(i)),
            _ => {
                p.push(format!("{at}: intValue {v} is not an int64 ({PDATA_SPAN})"));
                ("int64", json!(0))
            }
        },
        Some(("doubleValue", v)) if v.is_number() => ("float64", v.clone()),
        // pcommon's AsString: the array's raw values as JSON text.
        Some(("arrayValue", v)) if v["values"].is_array() => {
            let raw: Vec<Json> = v["values"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|x| x.as_object()?.values().next().cloned())
                .collect();
            ("string", json!(Json::Array(raw).to_string()))
        }
        _ => {
            p.push(format!(
                "{at}: attribute {key} has value {value} ({PDATA_SPAN})"
            ));
            ("string", json!(""))
        }
    };
    json!({ "key": key, "type": kind, "value": v })
}

fn otlp_attributes(list: &Json, at: &str, p: &mut Vec<String>) -> Vec<Json> {
    list.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| otlp_tag(a["key"].as_str().unwrap_or_default(), &a["value"], at, p))
        .collect()
}

/// A nanosecond time as ptracejson's ReadUint64 takes it: a decimal string or a number.
fn nanos(v: &Json, at: &str, p: &mut Vec<String>) -> u64 {
    match v.as_str().map(str::parse::<u64>).or(v.as_u64().map(Ok)) {
        Some(Ok(ns)) => ns,
        _ => {
            p.push(format!(
                "{at}: time {v} is not uint64 nanoseconds ({PDATA_SPAN})"
            ));
            0
        }
    }
}

/// An OTLP/JSON upload through `/api/transform`: the Jaeger JSON the query service answers with,
/// and what it could not read.
fn otlp_upload(text: &str) -> (String, Vec<String>) {
    let mut p = Vec::new();
    let doc: Json = serde_json::from_str(text).expect("OTLP export parses");
    let Some(resources) = doc["resourceSpans"].as_array() else {
        p.push(format!(
            "no resourceSpans: not sent to /api/transform ({READ_JSON_FILE})"
        ));
        return (String::new(), p);
    };
    // otlp2traces (jaeger cmd/jaeger/internal/extension/jaegerquery/internal/otlp_translator.go):
    // spans grouped by trace id in the order first seen; from_domain names the
    // processes p1, p2, ... per trace.
    let mut order: Vec<String> = Vec::new();
    // Per trace: its spans, its processes by id, and the processes in the order first met.
    type Grouped = (Vec<Json>, Map<String, Json>, Vec<Json>);
    let mut traces: BTreeMap<String, Grouped> = BTreeMap::new();
    for (i, rs) in resources.iter().enumerate() {
        let at = format!("resourceSpans[{i}]");
        let mut resource = otlp_attributes(&rs["resource"]["attributes"], &at, &mut p);
        let name = resource.iter().position(|t| t["key"] == "service.name");
        let Some(name) = name.map(|i| resource.remove(i)) else {
            p.push(format!(
                "{at}: no service.name: the process is OTLPResourceNoServiceName ({TRANSLATOR})"
            ));
            continue;
        };
        let process = json!({ "serviceName": name["value"], "tags": resource });
        for ss in rs["scopeSpans"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            for s in ss["spans"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let trace_id = s["traceId"].as_str().unwrap_or_default().to_string();
                let span_id = s["spanId"].as_str().unwrap_or_default();
                let at = format!("{at} span {span_id}");
                if !lower_hex(&trace_id.to_ascii_lowercase(), 32)
                    || !lower_hex(&span_id.to_ascii_lowercase(), 16)
                {
                    p.push(format!("{at}: trace {trace_id} or span id is not 16/8 non-zero bytes of hex ({PDATA_IDS})"));
                }
                let parent = s
                    .get("parentSpanId")
                    .and_then(Json::as_str)
                    .filter(|p| !p.is_empty());
                if parent.is_some_and(|id| !lower_hex(&id.to_ascii_lowercase(), 16)) {
                    p.push(format!(
                        "{at}: parentSpanId {parent:?} is not 8 bytes of hex ({PDATA_IDS})"
                    ));
                }
                let start = nanos(&s["startTimeUnixNano"], &at, &mut p);
                let end = nanos(&s["endTimeUnixNano"], &at, &mut p);
                if end < start {
                    p.push(format!("{at}: ends before it starts ({TRANSLATOR})"));
                }
                // The scope's name first, then the attributes, kind and status (getJaegerProtoSpanTags).
                let mut tags = Vec::new();
                if let Some(scope) = ss["scope"]["name"].as_str().filter(|n| !n.is_empty()) {
                    tags.push(
                        json!({ "key": "otel.scope.name", "type": "string", "value": scope }),
                    );
                }
                tags.extend(otlp_attributes(&s["attributes"], &at, &mut p));
                let kind = match s["kind"].as_u64() {
                    Some(1) => "internal",
                    Some(2) => "server",
                    Some(3) => "client",
                    Some(4) => "producer",
                    Some(5) => "consumer",
                    _ => {
                        p.push(format!(
                            "{at}: kind {} is not a SpanKind enum value ({PDATA_SPAN})",
                            s["kind"]
                        ));
                        ""
                    }
                };
                tags.push(json!({ "key": "span.kind", "type": "string", "value": kind }));
                match s["status"]["code"].as_u64() {
                    None | Some(0) => {}
                    Some(1) => tags.push(
                        json!({ "key": "otel.status_code", "type": "string", "value": "OK" }),
                    ),
                    Some(2) => {
                        tags.push(json!({ "key": "otel.status_code", "type": "string", "value": "ERROR" }));
                        tags.push(json!({ "key": "error", "type": "bool", "value": true }));
                    }
                    Some(c) => p.push(format!("{at}: status code {c} ({PDATA_SPAN})")),
                }
                let logs: Vec<Json> = s["events"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        let mut fields = vec![json!({ "key": "event", "type": "string", "value": e["name"] })];
                        fields.extend(otlp_attributes(&e["attributes"], &at, &mut p));
                        json!({ "timestamp": nanos(&e["timeUnixNano"], &at, &mut p) / 1_000, "fields": fields })
                    })
                    .collect();
                let references: Vec<Json> = parent
                    .map(|id| json!({ "refType": "CHILD_OF", "traceID": trace_id, "spanID": id }))
                    .into_iter()
                    .collect();
                let (spans, processes, known) =
                    traces.entry(trace_id.clone()).or_insert_with(|| {
                        order.push(trace_id.clone());
                        Default::default()
                    });
                let pid = match known.iter().position(|k| *k == process) {
                    Some(i) => format!("p{}", i + 1),
                    None => {
                        known.push(process.clone());
                        let pid = format!("p{}", known.len());
                        processes.insert(pid.clone(), process.clone());
                        pid
                    }
                };
                spans.push(json!({
                    "traceID": trace_id, "spanID": span_id, "operationName": s["name"],
                    "references": references, "startTime": start / 1_000, "duration": (end.saturating_sub(start)) / 1_000,
                    "tags": tags, "logs": logs, "processID": pid,
                }));
            }
        }
    }
    let data: Vec<Json> = order
        .iter()
        .map(|id| {
            let (spans, processes, _) = &traces[id];
            json!({ "traceID": id, "spans": spans, "processes": processes })
        })
        .collect();
    (json!({ "data": data }).to_string(), p)
}

/// The default mesh with the faults whose traces are hardest to draw: context dropped midway
/// (split traces), errors that are retried, and calls that time out with an exception event.
fn faulty_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let mut scenario = default_mesh(40.0, 8_000);
        let fault = |service: &str, from_ms, until_ms, effect| FaultSpec {
            service: service.into(),
            instance: None,
            from_ms,
            until_ms,
            effect,
        };
        scenario.faults = vec![
            fault("orders", 2_000, 5_000, FaultEffect::ContextDropped),
            fault("auth", 0, 8_000, FaultEffect::ErrorRate { rate: 0.3 }),
            fault("payments", 0, 8_000, FaultEffect::Latency { extra_ms: 930 }),
            fault(
                "orders",
                5_000,
                7_000,
                FaultEffect::Partition {
                    peer: "inventory".into(),
                },
            ),
        ];
        let t = faultline_engine::run(&scenario, 5).expect("valid scenario");
        Run {
            jaeger: jaeger_json(&t),
            otlp: otlp_json(&t),
            spans: t.spans.len(),
            traces: t
                .spans
                .iter()
                .map(|s| s.trace_id)
                .collect::<BTreeSet<_>>()
                .len(),
            errors: t
                .spans
                .iter()
                .filter(|s| s.status == SpanStatus::Error)
                .count(),
            events: t.spans.iter().map(|s| s.events.len()).sum(),
        }
    })
}

/// A run's two trace exports and the counts they should show.
struct Run {
    jaeger: String,
    otlp: String,
    spans: usize,
    traces: usize,
    errors: usize,
    events: usize,
}

#[test]
fn jaeger_export_loads_in_jaeger_ui_as_whole_traces() {
    let t = faulty_run();
    let text = &t.jaeger;
    let (shown, problems) = jaeger_upload(text);
    assert!(
        problems.is_empty(),
        "{} problems, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );

    // Every span is shown, under the trace it belongs to, and every trace is whole.
    assert_eq!(shown.len(), t.traces);
    assert_eq!(shown.iter().map(|s| s.spans).sum::<usize>(), t.spans);
    for s in &shown {
        assert_eq!((s.roots, s.orphans), (1, 0), "{s:?}");
    }
    // Status and events come through: the UI's error count is the spans with status Error.
    assert_eq!(shown.iter().map(|s| s.errors).sum::<usize>(), t.errors);
    assert!(t.errors > 100, "{}", t.errors);
    assert_eq!(shown.iter().map(|s| s.events).sum::<usize>(), t.events);

    // Context dropped: the callees' halves are traces of their own, rooted at a server span
    // with no references at all (not a dangling one), so the UI shows them complete.
    let split = shown.iter().filter(|s| s.root_service != "gateway").count();
    assert!(split > 20, "{split}");
    let doc: Json = serde_json::from_str(text).unwrap();
    let all_spans = || {
        doc["data"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["spans"].as_array().unwrap())
    };
    // Retries: each attempt is its own client span, a sibling under the same parent: the
    // first one failed, and the next carries `retry.attempt`.
    let mut attempts: BTreeMap<(String, String), Vec<(i64, bool)>> = BTreeMap::new();
    for s in all_spans().filter(|s| tag(s, "span.kind") == Some(&json!("client"))) {
        if let Some(parent) = s["references"][0]["spanID"].as_str() {
            let attempt = tag(s, "retry.attempt").and_then(Json::as_i64).unwrap_or(0);
            attempts
                .entry((parent.into(), s["operationName"].to_string()))
                .or_default()
                .push((attempt, tag(s, "error").is_some()));
        }
    }
    let retried = attempts
        .values()
        .filter(|a| a.contains(&(0, true)) && a.iter().any(|(n, _)| *n == 1))
        .count();
    assert!(retried > 20, "{retried}");
    // Timeouts: an error span whose `exception` log falls within it, as the UI draws logs on
    // the span's bar.
    let mut timeouts = 0;
    for s in all_spans().filter(|s| tag(s, "error.type") == Some(&json!("timeout"))) {
        assert_eq!(tag(s, "error"), Some(&json!(true)));
        let (start, end) = (
            micros(&s["startTime"]).unwrap(),
            micros(&s["startTime"]).unwrap() + micros(&s["duration"]).unwrap(),
        );
        let exception = s["logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["fields"][0]["value"] == "exception")
            .unwrap_or_else(|| panic!("no exception log: {s}"));
        let at = micros(&exception["timestamp"]).unwrap();
        assert!((start..=end).contains(&at), "{s}");
        assert!(
            exception["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["key"] == "exception.message")
        );
        timeouts += 1;
    }
    assert!(timeouts > 20, "{timeouts}");
}

#[test]
fn otlp_export_goes_through_jaeger_transform_to_the_same_traces() {
    let t = faulty_run();
    let (converted, problems) = otlp_upload(&t.otlp);
    assert!(
        problems.is_empty(),
        "{} problems, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
    let (mut from_otlp, problems) = jaeger_upload(&converted);
    assert!(
        problems.is_empty(),
        "{} problems, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
    let ours = &t.jaeger;
    let (mut from_jaeger, _) = jaeger_upload(ours);
    from_otlp.sort_by(|a, b| a.trace_id.cmp(&b.trace_id));
    from_jaeger.sort_by(|a, b| a.trace_id.cmp(&b.trace_id));
    assert_eq!(from_otlp.len(), from_jaeger.len());
    for (a, b) in from_otlp.iter().zip(&from_jaeger) {
        assert_eq!(a, b);
    }
    // Span by span, the two files say the same: ids, parents, times, process, tags (which the
    // UI sorts by key, orderTags) and logs. One known difference: OTLP carries the captured
    // traceparent header as an array, which the translator writes as its JSON text.
    let via_otlp = spans_by_id(&converted);
    let direct = spans_by_id(ours);
    assert_eq!(via_otlp.len(), t.spans);
    assert_eq!(
        via_otlp.keys().collect::<Vec<_>>(),
        direct.keys().collect::<Vec<_>>()
    );
    let mut headers = 0;
    for (id, mut span) in direct {
        for tag in span["tags"].as_array_mut().unwrap() {
            if tag["key"] == "http.request.header.traceparent" {
                tag["value"] = json!(json!([tag["value"]]).to_string());
                headers += 1;
            }
        }
        assert_eq!(span, via_otlp[&id], "span {id}");
    }
    assert!(headers > 100, "{headers}");
}

/// Each span of a Jaeger JSON file with its process written in, tags sorted as the UI shows them.
fn spans_by_id(text: &str) -> BTreeMap<String, Json> {
    let doc: Json = serde_json::from_str(text).unwrap();
    let mut out = BTreeMap::new();
    for trace in doc["data"].as_array().unwrap() {
        for s in trace["spans"].as_array().unwrap() {
            let mut tags = s["tags"].as_array().unwrap().clone();
            tags.sort_by_key(|t| (t["key"].to_string(), t["value"].to_string()));
            let span = json!({
                "traceID": s["traceID"], "operationName": s["operationName"],
                "references": s["references"], "startTime": s["startTime"], "duration": s["duration"],
                "tags": tags, "logs": s["logs"],
                "process": trace["processes"][s["processID"].as_str().unwrap()],
            });
            out.insert(s["spanID"].as_str().unwrap().to_string(), span);
        }
    }
    out
}

/// The checks above can fail: each way of breaking a good file is caught.
#[test]
fn the_upload_checks_catch_broken_files() {
    let t = faulty_run();
    let good: Json = serde_json::from_str(&t.jaeger).unwrap();
    type Break = fn(&mut Json);
    let breaks: [(&str, Break); 11] = [
        ("startTime as a string", |d| {
            d["data"][0]["spans"][0]["startTime"] = json!("1767225600000000")
        }),
        ("startTime in nanoseconds", |d| {
            d["data"][0]["spans"][0]["startTime"] = json!(1_767_225_600_000_000_000_u64)
        }),
        ("startTime in nanoseconds as a float", |d| {
            d["data"][0]["spans"][0]["startTime"] = json!(1.7672256e18)
        }),
        ("a process left out", |d| {
            d["data"][0]["processes"].as_object_mut().unwrap().clear();
        }),
        ("a dangling parent", |d| {
            let s = d["data"][0]["spans"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|s| s["references"][0].is_object())
                .unwrap();
            s["references"][0]["spanID"] = json!("00000000000000ff");
        }),
        ("a trace id used twice", |d| {
            d["data"][1]["traceID"] = d["data"][0]["traceID"].clone()
        }),
        ("error as the string \"false\"", |d| {
            let tags = d["data"][0]["spans"][0]["tags"].as_array_mut().unwrap();
            // In place of the span's own `error` tag, if it has one (the first one counts).
            tags.retain(|t| t["key"] != "error");
            tags.push(json!({ "key": "error", "type": "string", "value": "false" }));
        }),
        ("an unknown span.kind", |d| {
            for t in d["data"][0]["spans"][0]["tags"].as_array_mut().unwrap() {
                if t["key"] == "span.kind" {
                    t["value"] = json!("rpc");
                }
            }
        }),
        ("a reference to another trace", |d| {
            let s = d["data"][0]["spans"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|s| s["references"][0].is_object())
                .unwrap();
            s["references"][0]["traceID"] = json!("0123456789abcdef0123456789abcdef");
        }),
        ("a span id in upper case", |d| {
            let id = d["data"][0]["spans"][0]["spanID"]
                .as_str()
                .unwrap()
                .to_ascii_uppercase();
            d["data"][0]["spans"][0]["spanID"] = json!(id);
        }),
        ("an int64 tag too large for JavaScript", |d| {
            let tags = d["data"][0]["spans"][0]["tags"].as_array_mut().unwrap();
            tags.push(json!({ "key": "big", "type": "int64", "value": 1_i64 << 60 }));
        }),
    ];
    for (what, break_it) in breaks {
        let mut doc = good.clone();
        break_it(&mut doc);
        let (_, problems) = jaeger_upload(&doc.to_string());
        assert!(!problems.is_empty(), "not caught: {what}");
    }
    let good: Json = serde_json::from_str(&t.otlp).unwrap();
    let otlp_breaks: [(&str, Break); 3] = [
        ("a trace id one digit short", |d| {
            let s = &mut d["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
            s["traceId"] = json!(s["traceId"].as_str().unwrap()[1..].to_string());
        }),
        ("a time in float notation", |d| {
            d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] =
                json!("1.7e18")
        }),
        ("a kind by its OpenTracing name", |d| {
            d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] = json!("server")
        }),
    ];
    for (what, break_it) in otlp_breaks {
        let mut doc = good.clone();
        break_it(&mut doc);
        let (_, problems) = otlp_upload(&doc.to_string());
        assert!(!problems.is_empty(), "not caught: {what}");
    }
}
