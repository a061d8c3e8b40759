//! Writing a run's telemetry in the formats real tools read: OTLP/JSON and Jaeger JSON for
//! traces, NDJSON for logs, Prometheus text exposition for metrics. Timestamps are the run's
//! virtual time placed at `RUN_EPOCH_UNIX_US`, so exports are identical on every machine.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value as Json, json};

use crate::metrics::{SeriesKey, latency_bounds_us};
use crate::telemetry::{LogLine, Span, SpanKind, SpanStatus, Sym, Telemetry, Value};
use crate::time::rfc3339;

fn instance_name(t: &Telemetry, service: crate::telemetry::ServiceId, instance: u16) -> String {
    format!("{}-{instance}", t.service_name(service))
}

fn otlp_value(t: &Telemetry, v: &Value) -> Json {
    match v {
        Value::Str(s) => json!({ "stringValue": t.text(*s) }),
        Value::Int(i) => json!({ "intValue": i.to_string() }), // 64-bit ints are strings in OTLP/JSON
        Value::Bool(b) => json!({ "boolValue": b }),
    }
}

fn otlp_attributes(t: &Telemetry, attributes: &[(Sym, Value)]) -> Json {
    Json::Array(
        attributes
            .iter()
            .map(|(k, v)| json!({ "key": t.text(*k), "value": otlp_value(t, v) }))
            .collect(),
    )
}

/// OTLP/JSON (`ExportTraceServiceRequest`): one resource per service instance, lower-case hex
/// ids, integer enums, nanosecond times as strings.
pub fn otlp_json(t: &Telemetry) -> String {
    let mut by_resource: BTreeMap<(u16, u16), Vec<&Span>> = BTreeMap::new();
    for s in &t.spans {
        by_resource
            .entry((s.service.0, s.instance))
            .or_default()
            .push(s);
    }
    let resource_spans: Vec<Json> = by_resource
        .into_iter()
        .map(|((service, instance), spans)| {
            let service = crate::telemetry::ServiceId(service);
            let spans: Vec<Json> = spans
                .into_iter()
                .map(|s| {
                    let mut span = json!({
                        "traceId": s.trace_id.to_string(),
                        "spanId": s.span_id.to_string(),
                        "name": t.text(s.operation),
                        "kind": match s.kind {
                            SpanKind::Internal => 1,
                            SpanKind::Server => 2,
                            SpanKind::Client => 3,
                            SpanKind::Producer => 4,
                            SpanKind::Consumer => 5,
                        },
                        "startTimeUnixNano": (u128::from(s.start.unix_us()) * 1_000).to_string(),
                        "endTimeUnixNano": (u128::from(s.end().unwrap_or(s.start).unix_us()) * 1_000).to_string(),
                        "attributes": otlp_attributes(t, t.attributes(s)),
                        "events": s.events.iter().map(|e| json!({
                            "timeUnixNano": (u128::from(e.time.unix_us()) * 1_000).to_string(),
                            "name": t.text(e.name),
                            "attributes": otlp_attributes(t, &e.attributes),
                        })).collect::<Vec<_>>(),
                        "status": { "code": match s.status {
                            SpanStatus::Unset => 0,
                            SpanStatus::Ok => 1,
                            SpanStatus::Error => 2,
                        } },
                    });
                    if let Some(parent) = s.parent {
                        span["parentSpanId"] = json!(parent.to_string());
                    }
                    if let (Some(header), Some(list)) = (s.traceparent(), span["attributes"].as_array_mut()) {
                        // Semantic conventions: a captured header is an array of its values.
                        list.push(json!({ "key": TRACEPARENT, "value": { "arrayValue": { "values": [{ "stringValue": header }] } } }));
                    }
                    span
                })
                .collect();
            json!({
                "resource": { "attributes": [
                    { "key": "service.name", "value": { "stringValue": t.service_name(service) } },
                    { "key": "service.instance.id", "value": { "stringValue": instance_name(t, service, instance) } },
                ] },
                "scopeSpans": [{ "scope": { "name": SCOPE }, "spans": spans }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans }).to_string()
}

/// The attribute a captured W3C trace-context request header goes in.
const TRACEPARENT: &str = "http.request.header.traceparent";

/// The instrumentation scope every span is recorded under.
const SCOPE: &str = "faultline";

/// Integers beyond this lose digits as JavaScript numbers; Jaeger writes them as strings.
const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

fn jaeger_tag(t: &Telemetry, key: &str, v: &Value) -> Json {
    match v {
        Value::Str(s) => json!({ "key": key, "type": "string", "value": t.text(*s) }),
        Value::Int(i) if i.get().unsigned_abs() > JS_MAX_SAFE_INTEGER as u64 => {
            json!({ "key": key, "type": "int64", "value": i.to_string() })
        }
        Value::Int(i) => json!({ "key": key, "type": "int64", "value": i.get() }),
        Value::Bool(b) => json!({ "key": key, "type": "bool", "value": b }),
    }
}

/// Jaeger JSON as Jaeger UI's "JSON file" upload reads it: `{"data": [trace, …]}`, times in
/// microseconds, parents as CHILD_OF references, one process per service instance. Spans carry
/// the tags Jaeger's OTLP translator gives the same span (scope, kind, status), so this file and
/// `otlp_json` show alike in Jaeger UI (tests/cross/jaeger_ui.rs checks both against its code).
pub fn jaeger_json(t: &Telemetry) -> String {
    let mut traces: BTreeMap<crate::telemetry::TraceId, Vec<&Span>> = BTreeMap::new();
    let mut order = Vec::new();
    for s in &t.spans {
        let spans = traces.entry(s.trace_id).or_default();
        if spans.is_empty() {
            order.push(s.trace_id);
        }
        spans.push(s);
    }
    let data: Vec<Json> = order
        .iter()
        .map(|trace_id| {
            let spans = &traces[trace_id];
            let mut processes: BTreeMap<String, Json> = BTreeMap::new();
            let mut process_ids: BTreeMap<(u16, u16), String> = BTreeMap::new();
            let spans: Vec<Json> = spans
                .iter()
                .map(|s| {
                    let next = process_ids.len() + 1;
                    let pid = process_ids.entry((s.service.0, s.instance)).or_insert_with(|| format!("p{next}")).clone();
                    processes.entry(pid.clone()).or_insert_with(|| {
                        json!({
                            "serviceName": t.service_name(s.service),
                            "tags": [{ "key": "service.instance.id", "type": "string", "value": instance_name(t, s.service, s.instance) }],
                        })
                    });
                    let mut tags = vec![json!({ "key": "otel.scope.name", "type": "string", "value": SCOPE })];
                    tags.extend(t.attributes(s).iter().map(|(k, v)| jaeger_tag(t, t.text(*k), v)));
                    let kind = match s.kind {
                        SpanKind::Internal => "internal",
                        SpanKind::Server => "server",
                        SpanKind::Client => "client",
                        SpanKind::Producer => "producer",
                        SpanKind::Consumer => "consumer",
                    };
                    tags.push(json!({ "key": "span.kind", "type": "string", "value": kind }));
                    match s.status {
                        SpanStatus::Unset => {}
                        SpanStatus::Ok => tags.push(json!({ "key": "otel.status_code", "type": "string", "value": "OK" })),
                        SpanStatus::Error => {
                            tags.push(json!({ "key": "otel.status_code", "type": "string", "value": "ERROR" }));
                            tags.push(json!({ "key": "error", "type": "bool", "value": true }));
                        }
                    }
                    if let Some(header) = s.traceparent() {
                        tags.push(json!({ "key": TRACEPARENT, "type": "string", "value": header }));
                    }
                    let references: Vec<Json> = s
                        .parent
                        .map(|p| json!({ "refType": "CHILD_OF", "traceID": s.trace_id.to_string(), "spanID": p.to_string() }))
                        .into_iter()
                        .collect();
                    json!({
                        "traceID": s.trace_id.to_string(),
                        "spanID": s.span_id.to_string(),
                        "operationName": t.text(s.operation),
                        "references": references,
                        "startTime": s.start.unix_us(),
                        "duration": s.end().unwrap_or(s.start).since(s.start).0,
                        "tags": tags,
                        "logs": s.events.iter().map(|e| {
                            let mut fields = vec![json!({ "key": "event", "type": "string", "value": t.text(e.name) })];
                            fields.extend(e.attributes.iter().map(|(k, v)| jaeger_tag(t, t.text(*k), v)));
                            json!({ "timestamp": e.time.unix_us(), "fields": fields })
                        }).collect::<Vec<_>>(),
                        "processID": pid,
                        "warnings": null,
                    })
                })
                .collect();
            json!({ "traceID": trace_id.to_string(), "spans": spans, "processes": processes, "warnings": null })
        })
        .collect();
    json!({ "data": data }).to_string()
}

fn log_json(t: &Telemetry, line: &LogLine) -> Json {
    let mut object = serde_json::Map::new();
    // The node's own clock and zone, as its log file would have it.
    object.insert(
        "ts".into(),
        json!(rfc3339(line.node_unix_us(), i32::from(line.zone_minutes))),
    );
    object.insert("level".into(), json!(line.level.name()));
    object.insert("service".into(), json!(t.service_name(line.service)));
    object.insert(
        "instance".into(),
        json!(instance_name(t, line.service, line.instance)),
    );
    if let Some(trace_id) = line.trace_id {
        object.insert("trace_id".into(), json!(trace_id.to_string()));
    }
    if let Some(span_id) = line.span_id {
        object.insert("span_id".into(), json!(span_id.to_string()));
    }
    object.insert("msg".into(), json!(t.text(line.message)));
    for (k, v) in &line.fields {
        let v = match v {
            Value::Str(s) => json!(t.text(*s)),
            Value::Int(i) => json!(i.get()),
            Value::Bool(b) => json!(b),
        };
        object.insert(t.text(*k).to_string(), v);
    }
    Json::Object(object)
}

/// One JSON object per line, as Loki's and most shippers' NDJSON input expects.
pub fn ndjson_logs(t: &Telemetry) -> String {
    let mut out = String::new();
    for line in &t.logs {
        out.push_str(&log_json(t, line).to_string());
        out.push('\n');
    }
    out
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `service="…",instance="…"` for one instance.
fn instance_labels(t: &Telemetry, service: crate::telemetry::ServiceId, instance: u16) -> String {
    format!(
        "service=\"{}\",instance=\"{}\"",
        label(t.service_name(service)),
        label(&instance_name(t, service, instance))
    )
}

/// Prometheus text exposition (version 0.0.4) of the whole run: every series as it would have
/// been scraped at the end of each bucket, with that time as the sample timestamp (ms).
/// Counters and histogram buckets are cumulative from the start of the run.
pub fn prometheus(t: &Telemetry) -> String {
    let m = &t.metrics;
    let bounds = latency_bounds_us();
    let mut out = String::new();
    let ts =
        |bucket: u32| crate::time::SimTime((u64::from(bucket) + 1) * m.bucket.0).unix_us() / 1_000;

    out.push_str("# HELP faultline_requests_total Requests served, by service, instance, route and outcome.\n");
    out.push_str("# TYPE faultline_requests_total counter\n");
    let mut series: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for ((key, bucket), stats) in &m.requests {
        series.entry(*key).or_default().push((*bucket, stats));
    }
    let series_labels = |(service, instance, route): &SeriesKey| {
        format!(
            "{},route=\"{}\"",
            instance_labels(t, *service, *instance),
            label(t.text(*route))
        )
    };
    for (key, points) in &series {
        let labels = series_labels(key);
        let (mut ok, mut errors) = (0u64, 0u64);
        for (bucket, stats) in points {
            ok += u64::from(stats.count - stats.errors);
            errors += u64::from(stats.errors);
            let _ = writeln!(
                out,
                "faultline_requests_total{{{labels},outcome=\"ok\"}} {ok} {}",
                ts(*bucket)
            );
            let _ = writeln!(
                out,
                "faultline_requests_total{{{labels},outcome=\"error\"}} {errors} {}",
                ts(*bucket)
            );
        }
    }

    out.push_str("# HELP faultline_request_duration_seconds Server-side request latency.\n");
    out.push_str("# TYPE faultline_request_duration_seconds histogram\n");
    for (key, points) in &series {
        let labels = series_labels(key);
        let mut cumulative = vec![0u64; bounds.len() + 1];
        let (mut count, mut sum_us) = (0u64, 0u64);
        for (bucket, stats) in points {
            for (bound, n) in stats.latency.buckets() {
                let index = bound.map_or(bounds.len(), |b| bounds.partition_point(|x| *x < b));
                cumulative[index] += u64::from(n);
            }
            count += u64::from(stats.count);
            sum_us += stats.latency_sum_us;
            let mut running = 0u64;
            for (i, n) in cumulative.iter().enumerate() {
                running += n;
                let le = bounds
                    .get(i)
                    .map_or("+Inf".to_string(), |b| format!("{}", *b as f64 / 1e6));
                let _ = writeln!(
                    out,
                    "faultline_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {running} {}",
                    ts(*bucket)
                );
            }
            let _ = writeln!(
                out,
                "faultline_request_duration_seconds_sum{{{labels}}} {} {}",
                sum_us as f64 / 1e6,
                ts(*bucket)
            );
            let _ = writeln!(
                out,
                "faultline_request_duration_seconds_count{{{labels}}} {count} {}",
                ts(*bucket)
            );
        }
    }

    type Gauge = fn(&crate::metrics::InstanceSample) -> u64;
    let gauges: [(&str, &str, Gauge); 4] = [
        (
            "faultline_busy_workers",
            "Workers busy on an instance at the end of each bucket.",
            |s| u64::from(s.busy_workers),
        ),
        (
            "faultline_queue_depth",
            "Requests waiting for a worker on an instance.",
            |s| u64::from(s.queue_depth),
        ),
        (
            "faultline_pool_in_use",
            "Database connections taken from an instance's pool.",
            |s| u64::from(s.pool_in_use),
        ),
        (
            "faultline_pool_waiters",
            "Calls waiting for a pool connection on an instance.",
            |s| u64::from(s.pool_waiters),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in &m.instances {
            let labels = instance_labels(t, s.service, s.instance);
            let _ = writeln!(out, "{name}{{{labels}}} {} {}", value(s), ts(s.bucket));
        }
    }
    out.push_str("# HELP faultline_retries_total Retries sent by an instance.\n");
    out.push_str("# TYPE faultline_retries_total counter\n");
    let mut running: BTreeMap<(u16, u16), u64> = BTreeMap::new();
    for ((service, instance, bucket), n) in &m.retries {
        let total = running.entry((service.0, *instance)).or_default();
        *total += u64::from(*n);
        let labels = instance_labels(t, *service, *instance);
        let _ = writeln!(
            out,
            "faultline_retries_total{{{labels}}} {total} {}",
            ts(*bucket)
        );
    }
    out.push_str(
        "# HELP faultline_breaker_state Circuit breaker state: 0 closed, 1 half-open, 2 open.\n",
    );
    out.push_str("# TYPE faultline_breaker_state gauge\n");
    for b in &m.breakers {
        let _ = writeln!(
            out,
            "faultline_breaker_state{{{},peer_service=\"{}\",operation=\"{}\"}} {} {}",
            instance_labels(t, b.service, b.instance),
            label(t.service_name(b.peer)),
            label(t.text(b.operation)),
            b.state,
            ts(b.bucket)
        );
    }
    for (name, help, bytes) in [
        (
            "faultline_heap_used_bytes",
            "Heap in use on an instance with a managed runtime (0 while it is down).",
            (|r| r.heap_used_bytes) as fn(&crate::metrics::RuntimeSample) -> u64,
        ),
        (
            "faultline_heap_max_bytes",
            "Largest heap an instance's runtime may use.",
            |r| r.heap_max_bytes,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in &m.runtime {
            let labels = instance_labels(t, r.service, r.instance);
            let _ = writeln!(out, "{name}{{{labels}}} {} {}", bytes(r), ts(r.bucket));
        }
    }
    out.push_str("# HELP faultline_gc_pause_seconds Stop-the-world garbage-collection pauses.\n");
    out.push_str("# TYPE faultline_gc_pause_seconds summary\n");
    let mut totals: BTreeMap<(u16, u16), (u64, u64)> = BTreeMap::new();
    for r in &m.runtime {
        let total = totals.entry((r.service.0, r.instance)).or_default();
        total.0 += u64::from(r.gc_collections);
        total.1 += r.gc_pause_us;
        let labels = instance_labels(t, r.service, r.instance);
        let _ = writeln!(
            out,
            "faultline_gc_pause_seconds_count{{{labels}}} {} {}",
            total.0,
            ts(r.bucket)
        );
        let _ = writeln!(
            out,
            "faultline_gc_pause_seconds_sum{{{labels}}} {} {}",
            total.1 as f64 / 1e6,
            ts(r.bucket)
        );
    }
    cache_and_queue_series(t, &mut out);
    database_series(t, &mut out);
    out
}

/// The database series, named and labelled as postgres_exporter writes them (`datname` is the
/// database service's name, as `db.namespace` on its callers' spans).
fn database_series(t: &Telemetry, out: &mut String) {
    let m = &t.metrics;
    let ts =
        |bucket: u32| crate::time::SimTime((u64::from(bucket) + 1) * m.bucket.0).unix_us() / 1_000;
    type DatabaseField = fn(&crate::metrics::DatabaseSample) -> u64;
    let series: [(&str, &str, &str, &str, DatabaseField); 3] = [
        (
            "pg_stat_activity_count",
            "gauge",
            "number of connections in this state",
            ",state=\"active\"",
            |d| u64::from(d.active),
        ),
        (
            "pg_stat_database_xact_commit",
            "counter",
            "Number of transactions in this database that have been committed",
            "",
            |d| d.xact_commit_total,
        ),
        (
            "pg_stat_database_xact_rollback",
            "counter",
            "Number of transactions in this database that have been rolled back",
            "",
            |d| d.xact_rollback_total,
        ),
    ];
    for (name, kind, help, extra, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for d in &m.databases {
            let _ = writeln!(
                out,
                "{name}{{{},datname=\"{}\"{extra}}} {} {}",
                instance_labels(t, d.service, d.instance),
                label(t.service_name(d.service)),
                value(d),
                ts(d.bucket)
            );
        }
    }
}

/// The cache and queue series, named as users of the Redis exporter and of RabbitMQ's
/// Prometheus plugin would expect.
fn cache_and_queue_series(t: &Telemetry, out: &mut String) {
    let m = &t.metrics;
    let ts =
        |bucket: u32| crate::time::SimTime((u64::from(bucket) + 1) * m.bucket.0).unix_us() / 1_000;
    type CacheField = fn(&crate::metrics::CacheSample) -> u64;
    let caches: [(&str, &str, &str, CacheField); 3] = [
        (
            "faultline_cache_keys",
            "gauge",
            "Keys stored in a cache.",
            |c| u64::from(c.keys),
        ),
        (
            "faultline_cache_hits_total",
            "counter",
            "Cache lookups that found their key.",
            |c| c.hits_total,
        ),
        (
            "faultline_cache_misses_total",
            "counter",
            "Cache lookups that did not find their key.",
            |c| c.misses_total,
        ),
    ];
    for (name, kind, help, value) in caches {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for c in &m.caches {
            let _ = writeln!(
                out,
                "{name}{{service=\"{}\"}} {} {}",
                label(t.service_name(c.service)),
                value(c),
                ts(c.bucket)
            );
        }
    }
    type QueueField = fn(&crate::metrics::QueueSample) -> String;
    let queues: [(&str, &str, &str, QueueField); 7] = [
        (
            "faultline_queue_messages_ready",
            "gauge",
            "Messages ready to be delivered to a consumer.",
            |q| q.depth.to_string(),
        ),
        (
            "faultline_queue_messages_unacked",
            "gauge",
            "Messages delivered to a consumer and not yet acknowledged.",
            |q| q.unacked.to_string(),
        ),
        (
            "faultline_queue_head_message_age_seconds",
            "gauge",
            "Age of the oldest ready message.",
            |q| format!("{}", q.lag_us as f64 / 1e6),
        ),
        (
            "faultline_queue_messages_published_total",
            "counter",
            "Messages routed to the queue from its exchange.",
            |q| q.published_total.to_string(),
        ),
        (
            "faultline_queue_messages_acked_total",
            "counter",
            "Messages processed and acknowledged by a consumer.",
            |q| q.consumed_total.to_string(),
        ),
        (
            "faultline_queue_messages_redelivered_total",
            "counter",
            "Deliveries that ended unacknowledged, requeued for another try.",
            |q| q.redelivered_total.to_string(),
        ),
        (
            "faultline_queue_messages_dead_lettered_total",
            "counter",
            "Messages dead-lettered after their last delivery failed.",
            |q| q.dead_lettered_total.to_string(),
        ),
    ];
    for (name, kind, help, value) in queues {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for q in &m.queues {
            let _ = writeln!(
                out,
                "{name}{{broker=\"{}\",exchange=\"{}\",queue=\"{}.{}\"}} {} {}",
                label(t.service_name(q.queue)),
                label(t.text(q.topic)),
                label(t.service_name(q.group)),
                label(t.text(q.topic)),
                value(q),
                ts(q.bucket)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec};

    fn telemetry() -> Telemetry {
        let mut scenario = default_mesh(40.0, 3_000);
        scenario.faults.push(FaultSpec {
            service: "auth".into(),
            instance: None,
            from_ms: 0,
            until_ms: 3_000,
            effect: FaultEffect::ErrorRate { rate: 0.3 },
        });
        crate::run(&scenario, 21).unwrap()
    }

    #[test]
    fn otlp_has_one_resource_per_instance_and_wire_shaped_fields() {
        let t = telemetry();
        let doc: Json = serde_json::from_str(&otlp_json(&t)).unwrap();
        let resources = doc["resourceSpans"].as_array().unwrap();
        // Every instance of the default mesh served something; the database, the cache and the
        // queue (one instance each) write no spans.
        assert_eq!(resources.len(), 12);
        let spans: Vec<&Json> = resources
            .iter()
            .flat_map(|r| r["scopeSpans"][0]["spans"].as_array().unwrap())
            .collect();
        assert_eq!(spans.len(), t.spans.len());
        for s in &spans {
            assert_eq!(s["traceId"].as_str().unwrap().len(), 32);
            assert_eq!(s["spanId"].as_str().unwrap().len(), 16);
            assert!(s["startTimeUnixNano"].is_string());
            assert!((1..=5).contains(&s["kind"].as_u64().unwrap()));
        }
        let roots = spans
            .iter()
            .filter(|s| s.get("parentSpanId").is_none())
            .count();
        assert_eq!(roots, t.spans.iter().filter(|s| s.parent.is_none()).count());
        assert!(spans.iter().any(|s| s["status"]["code"] == 2));
    }

    #[test]
    fn server_spans_carry_the_traceparent_they_were_called_with() {
        let t = telemetry();
        let well_formed = |h: &str| {
            let parts: Vec<&str> = h.split('-').collect();
            parts.len() == 4
                && parts[0] == "00"
                && parts[3] == "01"
                && [(1, 32), (2, 16)].iter().all(|&(i, n)| {
                    parts[i].len() == n
                        && parts[i]
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                        && parts[i].bytes().any(|b| b != b'0')
                })
        };
        let doc: Json = serde_json::from_str(&jaeger_json(&t)).unwrap();
        let mut headers = 0;
        for s in doc["data"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["spans"].as_array().unwrap())
        {
            let tag = |key: &str| {
                s["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["key"] == key)
                    .map(|x| x["value"].clone())
            };
            let header = tag(TRACEPARENT);
            // Consumer spans carry the context their message arrived with, as a server its request's.
            let is_server =
                [Some(json!("server")), Some(json!("consumer"))].contains(&tag("span.kind"));
            let parent = s["references"]
                .as_array()
                .unwrap()
                .first()
                .map(|r| r["spanID"].as_str().unwrap().to_string());
            match (is_server, parent) {
                (true, Some(parent)) => {
                    let header = header.expect("a called server span has the header");
                    let header = header.as_str().unwrap();
                    assert!(well_formed(header), "{header}");
                    assert_eq!(
                        header,
                        format!("00-{}-{parent}-01", s["traceID"].as_str().unwrap())
                    );
                    headers += 1;
                }
                _ => assert!(header.is_none(), "{s}"),
            }
        }
        assert!(headers > 100);
        // OTLP carries it as an array of one value, and reads back as that value.
        let otlp = otlp_json(&t);
        let back = crate::import::import_json(&otlp).unwrap();
        let key = back.telemetry.strings.lookup(TRACEPARENT).unwrap();
        let read: Vec<String> = back
            .telemetry
            .spans
            .iter()
            .filter_map(|s| {
                back.telemetry
                    .attributes(s)
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| back.telemetry.value_text(v))
            })
            .collect();
        assert_eq!(read.len(), headers);
        assert!(read.iter().all(|h| well_formed(h)));
    }

    #[test]
    fn jaeger_groups_spans_by_trace_with_child_of_references() {
        let t = telemetry();
        let doc: Json = serde_json::from_str(&jaeger_json(&t)).unwrap();
        let traces = doc["data"].as_array().unwrap();
        assert_eq!(
            traces.len(),
            t.spans.iter().filter(|s| s.parent.is_none()).count()
        );
        for trace in traces {
            let spans = trace["spans"].as_array().unwrap();
            let ids: Vec<&str> = spans
                .iter()
                .map(|s| s["spanID"].as_str().unwrap())
                .collect();
            for s in spans {
                for r in s["references"].as_array().unwrap() {
                    assert_eq!(r["refType"], "CHILD_OF");
                    assert!(ids.contains(&r["spanID"].as_str().unwrap()));
                }
                assert!(
                    trace["processes"][s["processID"].as_str().unwrap()]["serviceName"].is_string()
                );
            }
        }
    }

    #[test]
    fn ndjson_has_a_parseable_line_per_log_line() {
        let t = telemetry();
        let text = ndjson_logs(&t);
        let lines: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), t.logs.len());
        assert!(
            lines[0]["ts"]
                .as_str()
                .unwrap()
                .starts_with("2026-01-01T00:00:0")
        );
        assert!(
            lines
                .iter()
                .any(|l| l["level"] == "warn" && l["msg"] == "call failed, retrying")
        );
    }

    #[test]
    fn prometheus_text_is_well_formed_and_counts_add_up() {
        let t = telemetry();
        let text = prometheus(&t);
        let mut last_total: BTreeMap<String, f64> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, rest) = line.rsplit_once('}').expect(line);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(fields.len(), 2, "{line}");
            let value: f64 = fields[0].parse().expect(line);
            fields[1].parse::<u64>().expect(line);
            if series.starts_with("faultline_requests_total") {
                let previous = last_total.insert(series.to_string(), value).unwrap_or(0.0);
                assert!(value >= previous, "counter went down: {line}");
            }
        }
        let total: f64 = last_total.values().sum();
        assert_eq!(
            total as usize,
            t.spans
                .iter()
                .filter(|s| matches!(s.kind, SpanKind::Server | SpanKind::Consumer))
                .count()
        );
        assert!(text.contains("le=\"+Inf\""));
        // Each family is declared once, and its samples follow its TYPE line together.
        let mut families: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split_whitespace().next().unwrap();
                assert!(!families.contains(&name), "{name} declared twice");
                families.push(name);
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = families.last().expect("a sample before any TYPE");
                let suffix = name.strip_prefix(family).expect(line);
                assert!(
                    ["", "_bucket", "_sum", "_count"].contains(&suffix),
                    "{line} is outside its family {family}"
                );
            }
        }
    }
}
