//! Importing traces that real systems produced — Jaeger JSON (Jaeger UI's `{"data": …}`
//! wrapper, or a bare trace) and OTLP/JSON — into the same store the simulation fills.
//! Ids that are not hex are hashed (the original kept as `import.span_id`); shape problems in
//! the trees (orphans, cycles, skew) are left for `TraceTree` to report, never rejected.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde_json::Value as Json;

use crate::telemetry::{
    Attributes, Events, Fields, ServiceId, Span, SpanId, SpanKind, SpanStatus, Sym, Telemetry,
    TraceId, Value,
};
use crate::time::SimTime;

/// The format a file was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jaeger,
    Otlp,
}

/// Traces read from a file, with their times shifted so the earliest span starts at zero.
pub struct Imported {
    pub format: Format,
    pub telemetry: Telemetry,
    /// Microseconds since the Unix epoch of the earliest span start (SimTime zero).
    pub epoch_unix_us: u64,
    /// Problems with single spans that were skipped or repaired, each naming the span.
    pub notes: Vec<String>,
}

/// Why a file could not be imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("neither Jaeger JSON (`data` or `spans`) nor OTLP/JSON (`resourceSpans`)")]
    UnknownFormat,
    #[error("the file holds no spans")]
    NoSpans,
}

/// One span as read, before ids and times are settled.
struct RawSpan {
    trace: String,
    span: String,
    parent: Option<String>,
    follows_from: bool,
    service: String,
    instance: Option<String>,
    operation: String,
    kind: SpanKind,
    start_us: u64,
    end_us: u64,
    error: bool,
    attributes: Vec<(String, Json)>,
}

pub fn import_json(text: &str) -> Result<Imported, ImportError> {
    let doc: Json = serde_json::from_str(text).map_err(|e| ImportError::NotJson(e.to_string()))?;
    let mut notes = Vec::new();
    let (format, raw) = if doc.get("resourceSpans").is_some() {
        (Format::Otlp, read_otlp(&doc, &mut notes))
    } else if let Some(data) = doc.get("data") {
        let traces: Vec<&Json> = match data {
            Json::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        (
            Format::Jaeger,
            traces
                .into_iter()
                .flat_map(|t| read_jaeger_trace(t, &mut notes))
                .collect(),
        )
    } else if doc.get("spans").is_some() {
        (Format::Jaeger, read_jaeger_trace(&doc, &mut notes))
    } else {
        return Err(ImportError::UnknownFormat);
    };
    if raw.is_empty() {
        return Err(ImportError::NoSpans);
    }
    Ok(build(format, raw, notes))
}

fn text(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A u64 given as a JSON number or a decimal string (OTLP/JSON allows both).
fn number(v: Option<&Json>) -> Option<u64> {
    match v? {
        Json::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn read_jaeger_trace(trace: &Json, notes: &mut Vec<String>) -> Vec<RawSpan> {
    let empty = Vec::new();
    let processes = trace.get("processes");
    let spans = trace
        .get("spans")
        .and_then(Json::as_array)
        .unwrap_or(&empty);
    let mut out = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        let (Some(span), Some(start_us)) = (text(s.get("spanID")), number(s.get("startTime")))
        else {
            notes.push(format!(
                "spans[{i}]: skipped, it has no spanID or startTime"
            ));
            continue;
        };
        let trace_id = text(s.get("traceID"))
            .or_else(|| text(trace.get("traceID")))
            .unwrap_or_default();
        let duration = number(s.get("duration")).unwrap_or(0);
        let references = s
            .get("references")
            .and_then(Json::as_array)
            .unwrap_or(&empty);
        let reference = references
            .iter()
            .find(|r| r.get("refType").and_then(Json::as_str) == Some("CHILD_OF"))
            .or_else(|| references.first());
        let parent = reference
            .and_then(|r| text(r.get("spanID")))
            .or_else(|| text(s.get("parentSpanID")));
        let follows_from = reference
            .and_then(|r| r.get("refType"))
            .and_then(Json::as_str)
            == Some("FOLLOWS_FROM");
        let process = s
            .get("processID")
            .and_then(Json::as_str)
            .and_then(|p| processes?.get(p))
            .or_else(|| s.get("process"));
        let service = process
            .and_then(|p| text(p.get("serviceName")))
            .unwrap_or_else(|| "unknown".into());
        let tag = |list: Option<&Json>, key: &str| -> Option<Json> {
            list?
                .as_array()?
                .iter()
                .find(|t| t.get("key").and_then(Json::as_str) == Some(key))
                .and_then(|t| t.get("value").cloned())
        };
        let process_tags = process.and_then(|p| p.get("tags"));
        let instance = tag(process_tags, "service.instance.id")
            .or_else(|| tag(process_tags, "hostname"))
            .and_then(|v| text(Some(&v)));
        let tags = s.get("tags");
        let kind = match tag(tags, "span.kind").as_ref().and_then(Json::as_str) {
            Some("server") => SpanKind::Server,
            Some("client") => SpanKind::Client,
            Some("producer") => SpanKind::Producer,
            Some("consumer") => SpanKind::Consumer,
            _ => SpanKind::Internal,
        };
        let error = matches!(tag(tags, "error"), Some(Json::Bool(true)))
            || tag(tags, "error").as_ref().and_then(Json::as_str) == Some("true")
            || tag(tags, "otel.status_code")
                .as_ref()
                .and_then(Json::as_str)
                == Some("ERROR");
        let attributes = tags
            .and_then(Json::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|t| {
                        Some((t.get("key")?.as_str()?.to_string(), t.get("value")?.clone()))
                    })
                    // Kind, status and scope are the span's own fields, not attributes.
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "span.kind" | "error" | "otel.status_code" | "otel.scope.name"
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(RawSpan {
            trace: trace_id,
            span,
            parent,
            follows_from,
            service,
            instance,
            operation: text(s.get("operationName")).unwrap_or_default(),
            kind,
            start_us,
            end_us: start_us.saturating_add(duration),
            error,
            attributes,
        });
    }
    out
}

fn otlp_value(v: &Json) -> Json {
    for key in ["stringValue", "boolValue", "doubleValue"] {
        if let Some(x) = v.get(key) {
            return x.clone();
        }
    }
    if let Some(values) = v.pointer("/arrayValue/values").and_then(Json::as_array) {
        // An array (a captured header, command arguments) reads as its items' text, joined.
        let items: Vec<String> = values
            .iter()
            .map(|item| match otlp_value(item) {
                Json::String(s) => s,
                other => other.to_string(),
            })
            .collect();
        return Json::String(items.join(", "));
    }
    match v.get("intValue") {
        Some(x) => number(Some(x)).map_or(x.clone(), Json::from),
        None => Json::Null,
    }
}

fn read_otlp(doc: &Json, notes: &mut Vec<String>) -> Vec<RawSpan> {
    let empty = Vec::new();
    let mut out = Vec::new();
    for (r, resource) in doc["resourceSpans"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let attrs = resource
            .pointer("/resource/attributes")
            .and_then(Json::as_array)
            .unwrap_or(&empty);
        let attr = |key: &str| {
            attrs
                .iter()
                .find(|a| a.get("key").and_then(Json::as_str) == Some(key))
                .and_then(|a| a.get("value"))
                .map(otlp_value)
        };
        let service = attr("service.name")
            .and_then(|v| text(Some(&v)))
            .unwrap_or_else(|| "unknown".into());
        let instance = attr("service.instance.id")
            .or_else(|| attr("host.name"))
            .and_then(|v| text(Some(&v)));
        for scope in resource
            .get("scopeSpans")
            .and_then(Json::as_array)
            .unwrap_or(&empty)
        {
            for (i, s) in scope
                .get("spans")
                .and_then(Json::as_array)
                .unwrap_or(&empty)
                .iter()
                .enumerate()
            {
                let (Some(span), Some(start_ns)) =
                    (text(s.get("spanId")), number(s.get("startTimeUnixNano")))
                else {
                    notes.push(format!("resourceSpans[{r}] span {i}: skipped, it has no spanId or startTimeUnixNano"));
                    continue;
                };
                let end_ns = number(s.get("endTimeUnixNano")).unwrap_or(start_ns);
                let kind = match number(s.get("kind")) {
                    Some(2) => SpanKind::Server,
                    Some(3) => SpanKind::Client,
                    Some(4) => SpanKind::Producer,
                    Some(5) => SpanKind::Consumer,
                    _ => SpanKind::Internal,
                };
                let attributes = s
                    .get("attributes")
                    .and_then(Json::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|a| {
                                Some((
                                    a.get("key")?.as_str()?.to_string(),
                                    otlp_value(a.get("value")?),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(RawSpan {
                    trace: text(s.get("traceId")).unwrap_or_default(),
                    span,
                    parent: text(s.get("parentSpanId")).filter(|p| !p.is_empty()),
                    follows_from: false,
                    service: service.clone(),
                    instance: instance.clone(),
                    operation: text(s.get("name")).unwrap_or_default(),
                    kind,
                    start_us: start_ns / 1_000,
                    end_us: end_ns.max(start_ns) / 1_000,
                    error: number(s.pointer("/status/code")) == Some(2),
                    attributes,
                });
            }
        }
    }
    out
}

/// FNV-1a, 64 bits, with a seed: stable ids for ids that are not hex.
fn fnv(text: &str, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A span id from its hex text, or a hash of the text (false) when it is not one: not hex,
/// too long, or zero, which is no span id (a parent spelled so still finds its span).
fn hex_or_hash_span_id(id: &str) -> (SpanId, bool) {
    match u64::from_str_radix(id, 16).ok().and_then(SpanId::new) {
        Some(n) if id.len() <= 16 => (n, true),
        _ => (
            SpanId(NonZeroU64::new(fnv(id, 0)).unwrap_or(NonZeroU64::MAX)),
            false,
        ),
    }
}

fn hex_or_hash_u128(id: &str) -> u128 {
    match u128::from_str_radix(id, 16) {
        Ok(n) if !id.is_empty() && id.len() <= 32 => n,
        _ => (u128::from(fnv(id, 1)) << 64) | u128::from(fnv(id, 2)),
    }
}

fn build(format: Format, raw: Vec<RawSpan>, notes: Vec<String>) -> Imported {
    let epoch = raw.iter().map(|s| s.start_us).min().unwrap_or(0);
    let mut telemetry = Telemetry::default();
    let mut services: BTreeMap<String, ServiceId> = BTreeMap::new();
    let mut instances: BTreeMap<(ServiceId, String), u16> = BTreeMap::new();
    let original_key = telemetry.strings.intern("import.span_id");
    let follows_key = telemetry.strings.intern("import.follows_from");
    for s in raw {
        let next = ServiceId(services.len() as u16);
        let service = *services.entry(s.service.clone()).or_insert_with(|| {
            telemetry
                .service_names
                .push(telemetry.strings.intern(&s.service));
            next
        });
        let next_instance = instances.keys().filter(|(svc, _)| *svc == service).count() as u16;
        let instance = *instances
            .entry((service, s.instance.clone().unwrap_or_default()))
            .or_insert(next_instance);
        let (span_id, hex) = hex_or_hash_span_id(&s.span);
        let mut attributes: Vec<(Sym, Value)> = s
            .attributes
            .iter()
            .map(|(k, v)| {
                let key = telemetry.strings.intern(k);
                let value = match v {
                    Json::Bool(b) => Value::Bool(*b),
                    Json::Number(n) if n.is_i64() => Value::int(n.as_i64().unwrap_or_default()),
                    Json::String(text) => Value::Str(telemetry.strings.intern(text)),
                    other => Value::Str(telemetry.strings.intern(&other.to_string())),
                };
                (key, value)
            })
            .collect();
        if !hex {
            attributes.push((original_key, Value::Str(telemetry.strings.intern(&s.span))));
        }
        if s.follows_from {
            attributes.push((follows_key, Value::Bool(true)));
        }
        let mut span = Span {
            trace_id: TraceId(hex_or_hash_u128(&s.trace.to_ascii_lowercase())),
            span_id,
            parent: s.parent.as_deref().map(|p| hex_or_hash_span_id(p).0),
            service,
            instance,
            operation: telemetry.strings.intern(&s.operation),
            kind: if s.follows_from && s.kind == SpanKind::Internal {
                SpanKind::Consumer
            } else {
                s.kind
            },
            start: SimTime(s.start_us - epoch),
            end_time: Span::OPEN,
            status: if s.error {
                SpanStatus::Error
            } else {
                SpanStatus::Unset
            },
            attributes: Attributes::default(),
            events: Events::new(),
        };
        span.set_end(SimTime(s.end_us - epoch));
        telemetry.push_span(span, attributes);
    }
    Imported {
        format,
        telemetry,
        epoch_unix_us: epoch,
        notes,
    }
}

/// Reads NDJSON logs as `export::ndjson_logs` writes them (one object per line with `ts`,
/// `level`, `service`, `instance`, `msg`, optional `trace_id` and `span_id`, then fields).
/// Err names the first line that is not such an object.
pub fn import_ndjson_logs(text: &str) -> Result<Telemetry, String> {
    use crate::telemetry::{Level, LogLine};
    let mut t = Telemetry::default();
    let mut services: BTreeMap<String, ServiceId> = BTreeMap::new();
    let mut epoch: Option<u64> = None;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = |what: &str| format!("line {}: {what}", n + 1);
        let doc: Json = serde_json::from_str(line).map_err(|e| at(&format!("not JSON: {e}")))?;
        let object = doc.as_object().ok_or_else(|| at("not a JSON object"))?;
        let field = |k: &str| object.get(k).and_then(Json::as_str);
        let service_name = field("service").ok_or_else(|| at("no `service`"))?;
        let next = ServiceId(services.len() as u16);
        let service = *services.entry(service_name.to_string()).or_insert_with(|| {
            t.service_names.push(t.strings.intern(service_name));
            next
        });
        let instance = field("instance")
            .and_then(|i| i.rsplit_once('-'))
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0);
        let level = match field("level") {
            Some("debug") => Level::Debug,
            Some("warn" | "warning") => Level::Warn,
            Some("error") => Level::Error,
            _ => Level::Info,
        };
        let unix_us = field("ts")
            .and_then(parse_rfc3339_us)
            .ok_or_else(|| at("no RFC 3339 `ts`"))?;
        let epoch = *epoch.get_or_insert(unix_us);
        let mut fields = Fields::new();
        for (k, v) in object {
            if matches!(
                k.as_str(),
                "ts" | "level" | "service" | "instance" | "msg" | "trace_id" | "span_id"
            ) {
                continue;
            }
            let value = match v {
                Json::Bool(b) => Value::Bool(*b),
                Json::Number(n) if n.is_i64() => Value::int(n.as_i64().unwrap_or_default()),
                Json::String(s) => Value::Str(t.strings.intern(s)),
                other => Value::Str(t.strings.intern(&other.to_string())),
            };
            fields.push((t.strings.intern(k), value));
        }
        let zone_minutes = field("ts").map_or(0, zone_of);
        t.logs.push(LogLine {
            time: SimTime(unix_us.saturating_sub(epoch)),
            // A log file holds only the node's clock: read back, that is the only time there is.
            clock_offset_us: 0,
            zone_minutes,
            service,
            instance,
            level,
            trace_id: field("trace_id")
                .and_then(|id| u128::from_str_radix(id, 16).ok())
                .map(TraceId),
            span_id: field("span_id")
                .and_then(|id| u64::from_str_radix(id, 16).ok())
                .and_then(SpanId::new),
            message: t.strings.intern(field("msg").unwrap_or_default()),
            fields,
        });
    }
    Ok(t)
}

/// The zone offset of an RFC 3339 timestamp in minutes east of UTC (0 for `Z`).
fn zone_of(text: &str) -> i16 {
    let Some((_, clock)) = text.split_once('T') else {
        return 0;
    };
    let Some(at) = clock.find(['+', '-']) else {
        return 0;
    };
    let sign = if clock[at..].starts_with('-') { -1 } else { 1 };
    let (h, m) = clock[at + 1..].split_once(':').unwrap_or(("0", "0"));
    sign * (h.parse::<i16>().unwrap_or(0) * 60 + m.parse::<i16>().unwrap_or(0))
}

/// `2026-01-01T00:00:01.234567Z` (or with a `+hh:mm` offset) to microseconds since the epoch.
pub fn parse_rfc3339_us(text: &str) -> Option<u64> {
    let (date, rest) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut c = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (c.next()??, c.next()??, c.next()??);
    let micros: i64 = format!("{fraction:0<6}")[..6].parse().ok()?;
    let offset_s = match zone {
        "" | "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (oh, om) = z[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3_600 + om.parse::<i64>().ok()? * 60)
        }
    };
    // Days from civil (Howard Hinnant), the inverse of time::civil_from_days.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3_600 + min * 60 + s - offset_s;
    u64::try_from(secs * 1_000_000 + micros).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for us in [
            86_400_000_000u64,
            crate::time::RUN_EPOCH_UNIX_US + 1_234_567,
            1_709_164_800_000_000,
        ] {
            for offset in [0, 120, -330] {
                let text = crate::time::rfc3339(us, offset);
                assert_eq!(parse_rfc3339_us(&text), Some(us), "{text}");
            }
        }
        assert_eq!(parse_rfc3339_us("yesterday"), None);
    }

    #[test]
    fn a_zero_span_id_is_hashed_and_its_children_still_find_it() {
        let span = |id: &str, parent: &str| {
            format!(
                r#"{{"traceId": "01", "spanId": "{id}", "parentSpanId": "{parent}", "name": "op",
                    "startTimeUnixNano": "1000", "endTimeUnixNano": "2000"}}"#
            )
        };
        let doc = format!(
            r#"{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{}, {}]}}]}}]}}"#,
            span("0000000000000000", ""),
            span("00000000000000ff", "0000000000000000")
        );
        let t = import_json(&doc).unwrap().telemetry;
        let (root, child) = (&t.spans[0], &t.spans[1]);
        assert_eq!((root.parent, child.parent), (None, Some(root.span_id)));
        assert_eq!(child.span_id.get(), 0xff);
        let original = t.strings.lookup("import.span_id").unwrap();
        let kept = |s: &Span| {
            t.attributes(s)
                .iter()
                .find(|(k, _)| *k == original)
                .map(|(_, v)| t.value_text(v))
        };
        assert_eq!(kept(root).as_deref(), Some("0000000000000000"));
        assert_eq!(kept(child), None);
        assert_eq!(root.end(), Some(SimTime(1)));
    }

    #[test]
    fn exported_logs_read_back_the_same() {
        let t = crate::run(&crate::mesh::default_mesh(20.0, 2_000), 4).unwrap();
        let back = import_ndjson_logs(&crate::export::ndjson_logs(&t)).unwrap();
        assert_eq!(back.logs.len(), t.logs.len());
        let first = t.logs[0].time.0;
        for (a, b) in t.logs.iter().zip(&back.logs) {
            assert_eq!(b.time.0, a.time.0 - first);
            assert_eq!(
                (t.text(a.message), a.level, a.instance),
                (back.text(b.message), b.level, b.instance)
            );
            assert_eq!((a.trace_id, a.span_id), (b.trace_id, b.span_id));
            assert_eq!(t.service_name(a.service), back.service_name(b.service));
            assert_eq!(a.fields.len(), b.fields.len());
        }
        assert_eq!(
            import_ndjson_logs("{\"level\":\"info\"}").unwrap_err(),
            "line 1: no `service`"
        );
    }
}
