//! The log view's questions, answered in its vocabulary: a line as a row (timestamp on the
//! node's own clock or on true time), the volume of matching lines by level over time (Grafana
//! Explore's histogram), the fields of the hits with their commonest values (Kibana Discover's
//! sidebar, from a sample), and a hit's context: the lines around it on the same instance.

use std::collections::BTreeMap;

use crate::telemetry::{Level, LogLine, SpanId, Telemetry, TraceId};
use crate::time::{SimTime, rfc3339};

/// Which clock a log line's timestamp is read on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// What the node wrote: its own clock, skew included, in the zone it logs in.
    Node,
    /// When it really happened, in UTC: lines of different nodes line up.
    True,
}

/// One line of the log view.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    /// The line's number in the run's logs.
    pub line: u32,
    pub timestamp: String,
    pub level: Level,
    pub service: String,
    /// `payments-1`, as the `instance` label spells it.
    pub instance: String,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub message: String,
    /// The typed fields as text, in the line's order.
    pub fields: Vec<(String, String)>,
}

pub fn log_row(t: &Telemetry, line: u32, clock: Clock) -> LogRow {
    let l = &t.logs[line as usize];
    let service = t.service_name(l.service).to_string();
    LogRow {
        line,
        timestamp: timestamp(l, clock),
        level: l.level,
        instance: format!("{service}-{}", l.instance),
        service,
        trace_id: l.trace_id,
        span_id: l.span_id,
        message: t.text(l.message).to_string(),
        fields: l
            .fields
            .iter()
            .map(|(k, v)| (t.text(*k).to_string(), t.value_text(v)))
            .collect(),
    }
}

/// RFC 3339 with microseconds, on the chosen clock.
pub fn timestamp(line: &LogLine, clock: Clock) -> String {
    match clock {
        Clock::Node => rfc3339(line.node_unix_us(), i32::from(line.zone_minutes)),
        Clock::True => rfc3339(line.time.unix_us(), 0),
    }
}

/// One bar of the volume histogram: lines by level, debug to error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeBar {
    pub start: SimTime,
    pub by_level: [u32; 4],
}

/// The lines `hits` counted by level in `bars` equal slices of [from, until) of true time.
pub fn log_volume(
    t: &Telemetry,
    hits: &[u32],
    from: SimTime,
    until: SimTime,
    bars: u32,
) -> Vec<VolumeBar> {
    let bars = bars.max(1);
    let span = until.0.saturating_sub(from.0).max(1);
    let width = span.div_ceil(u64::from(bars)).max(1);
    let mut out: Vec<VolumeBar> = (0..u64::from(bars))
        .map(|b| VolumeBar {
            start: SimTime(from.0 + b * width),
            by_level: [0; 4],
        })
        .collect();
    for &i in hits {
        let line = &t.logs[i as usize];
        if line.time < from || line.time >= until {
            continue;
        }
        let bar = ((line.time.0 - from.0) / width) as usize;
        if let Some(bar) = out.get_mut(bar) {
            bar.by_level[line.level as usize] += 1;
        }
    }
    out
}

/// A field of the hits, with how many sampled lines carry it and its commonest values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSummary {
    /// The label name a query uses for it (`service`, `level`, `http.route`...).
    pub name: String,
    /// Sampled lines that carry the field.
    pub lines: u32,
    /// Values with their counts among the sampled lines, commonest first, at most `top`.
    pub top: Vec<(String, u32)>,
    /// Distinct values among the sampled lines.
    pub distinct: u32,
}

/// Kibana Discover's field list: the fields of the newest `sample` hits (Kibana samples 500),
/// the labels `service`, `instance` and `level` first, then the typed fields by how many lines
/// carry them.
pub fn field_summaries(
    t: &Telemetry,
    hits: &[u32],
    sample: usize,
    top: usize,
) -> Vec<FieldSummary> {
    let start = hits.len().saturating_sub(sample);
    let sampled = &hits[start..];
    // Field name -> value -> count; the labels kept apart to come first.
    let mut labels: [BTreeMap<String, u32>; 3] = Default::default();
    let mut fields: BTreeMap<&str, BTreeMap<String, u32>> = BTreeMap::new();
    for &i in sampled {
        let line = &t.logs[i as usize];
        let service = t.service_name(line.service);
        *labels[0].entry(service.to_string()).or_default() += 1;
        *labels[1]
            .entry(format!("{service}-{}", line.instance))
            .or_default() += 1;
        *labels[2].entry(line.level.name().to_string()).or_default() += 1;
        for (k, v) in &line.fields {
            *fields
                .entry(t.text(*k))
                .or_default()
                .entry(t.value_text(v))
                .or_default() += 1;
        }
    }
    let summary = |name: &str, values: BTreeMap<String, u32>| {
        let lines = values.values().sum();
        let distinct = values.len() as u32;
        let mut ranked: Vec<(String, u32)> = values.into_iter().collect();
        // Commonest first; equal counts in the values' order, so the list is stable.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(top);
        FieldSummary {
            name: name.to_string(),
            lines,
            top: ranked,
            distinct,
        }
    };
    let mut out: Vec<FieldSummary> = ["service", "instance", "level"]
        .into_iter()
        .zip(labels)
        .filter(|(_, values)| !values.is_empty())
        .map(|(name, values)| summary(name, values))
        .collect();
    let mut rest: Vec<FieldSummary> = fields
        .into_iter()
        .map(|(name, values)| summary(name, values))
        .collect();
    rest.sort_by(|a, b| b.lines.cmp(&a.lines).then_with(|| a.name.cmp(&b.name)));
    out.extend(rest);
    out
}

/// Up to `before` lines written just before line `line` and `after` just after it by the same
/// instance, in time order: what the process was doing around a hit.
pub fn context_lines(
    t: &Telemetry,
    line: u32,
    before: usize,
    after: usize,
) -> (Vec<u32>, Vec<u32>) {
    let Some(hit) = t.logs.get(line as usize) else {
        return (Vec::new(), Vec::new());
    };
    let same = |l: &LogLine| l.service == hit.service && l.instance == hit.instance;
    let mut earlier: Vec<u32> = (0..line)
        .rev()
        .filter(|&i| same(&t.logs[i as usize]))
        .take(before)
        .collect();
    earlier.reverse();
    let later: Vec<u32> = (line + 1..t.logs.len() as u32)
        .filter(|&i| same(&t.logs[i as usize]))
        .take(after)
        .collect();
    (earlier, later)
}

/// The query with one more condition, as clicking a value in the fields panel adds it: a stream
/// label (`service`, `instance`, `level`) joins the selector, any other field becomes a label
/// filter on its Loki name (`http.route` → `| http_route="/orders"`); `keep` false excludes the
/// value instead (`!=`). An empty query starts a selector (of every service, for a field).
pub fn with_filter(query: &str, name: &str, value: &str, keep: bool) -> String {
    let op = if keep { "=" } else { "!=" };
    let quoted = format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""));
    let query = query.trim();
    if matches!(name, "service" | "instance" | "level") {
        let matcher = format!("{name}{op}{quoted}");
        return match selector_end(query) {
            Some(end) => {
                let inside = query[1..end].trim();
                let joined = if inside.is_empty() {
                    matcher
                } else {
                    format!("{inside}, {matcher}")
                };
                format!("{{{joined}}}{}", &query[end + 1..])
            }
            None if query.is_empty() => format!("{{{matcher}}}"),
            None => format!("{{{matcher}}} {query}"),
        };
    }
    let filter = format!("{}{op}{quoted}", crate::logql::label_name(name));
    if query.is_empty() {
        // Loki wants a selector with a matcher that cannot match empty: every service.
        format!("{{service=~\".+\"}} | {filter}")
    } else {
        format!("{query} | {filter}")
    }
}

/// Where the stream selector that opens `query` closes: the byte offset of its `}`, skipping
/// quoted strings.
fn selector_end(query: &str) -> Option<usize> {
    if !query.starts_with('{') {
        return None;
    }
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in query.char_indices().skip(1) {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '}' => return Some(i),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Simulation;
    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec};

    fn run() -> Telemetry {
        Simulation::new(default_mesh(50.0, 5_000), 3).unwrap().run()
    }

    #[test]
    fn a_row_reads_the_line_on_either_clock() {
        let mut scenario = default_mesh(50.0, 3_000);
        scenario.faults.push(FaultSpec::new(
            "orders",
            None,
            0,
            3_000,
            FaultEffect::LocalTimeLogs { zone_minutes: 120 },
        ));
        let t = Simulation::new(scenario, 3).unwrap().run();
        let i = t
            .logs
            .iter()
            .position(|l| t.service_name(l.service) == "orders")
            .unwrap() as u32;
        let node = log_row(&t, i, Clock::Node);
        let truth = log_row(&t, i, Clock::True);
        assert!(node.timestamp.ends_with("+02:00"), "{}", node.timestamp);
        assert!(truth.timestamp.ends_with('Z'), "{}", truth.timestamp);
        assert_eq!(node.service, "orders");
        assert!(node.instance.starts_with("orders-"));
        assert_eq!(node.fields.len(), t.logs[i as usize].fields.len());
    }

    #[test]
    fn the_volume_counts_every_hit_once_by_level() {
        let t = run();
        let hits: Vec<u32> = (0..t.logs.len() as u32).collect();
        let end = t.logs.iter().map(|l| l.time).max().unwrap();
        let bars = log_volume(&t, &hits, SimTime::ZERO, SimTime(end.0 + 1), 30);
        assert_eq!(bars.len(), 30);
        let total: u32 = bars.iter().flat_map(|b| b.by_level).sum();
        assert_eq!(total as usize, t.logs.len());
        let info: u32 = bars.iter().map(|b| b.by_level[Level::Info as usize]).sum();
        let expected = t.logs.iter().filter(|l| l.level == Level::Info).count();
        assert_eq!(info as usize, expected);
    }

    #[test]
    fn fields_come_labels_first_with_their_commonest_values() {
        let t = run();
        let hits: Vec<u32> = (0..t.logs.len() as u32).collect();
        let fields = field_summaries(&t, &hits, 500, 5);
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(&names[..3], &["service", "instance", "level"]);
        let service = &fields[0];
        assert_eq!(service.lines, 500, "the sample is the newest 500 lines");
        assert!(service.top.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(service.top.len() <= 5);
        // Counted against the sample by hand.
        let gateway = hits[hits.len() - 500..]
            .iter()
            .filter(|&&i| t.service_name(t.logs[i as usize].service) == "gateway")
            .count() as u32;
        let shown = service
            .top
            .iter()
            .find(|(v, _)| v == "gateway")
            .map_or(0, |v| v.1);
        assert_eq!(shown, gateway);
        assert!(fields[3..].windows(2).all(|w| w[0].lines >= w[1].lines));
    }

    #[test]
    fn context_is_the_same_instance_around_the_hit() {
        let t = run();
        let hit = (t.logs.len() / 2) as u32;
        let (before, after) = context_lines(&t, hit, 5, 5);
        assert_eq!((before.len(), after.len()), (5, 5));
        let h = &t.logs[hit as usize];
        for &i in before.iter().chain(&after) {
            let l = &t.logs[i as usize];
            assert_eq!((l.service, l.instance), (h.service, h.instance));
        }
        assert!(before.iter().all(|&i| i < hit) && after.iter().all(|&i| i > hit));
        assert!(before.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(context_lines(&t, u32::MAX, 5, 5), (vec![], vec![]));
    }

    #[test]
    fn a_clicked_value_joins_the_selector_or_becomes_a_label_filter() {
        let cases = [
            ("", "service", "payments", true, r#"{service="payments"}"#),
            (
                r#"{level="error"}"#,
                "service",
                "payments",
                true,
                r#"{level="error", service="payments"}"#,
            ),
            (
                r#"{level="error"} |= "timeout""#,
                "instance",
                "orders-1",
                false,
                r#"{level="error", instance!="orders-1"} |= "timeout""#,
            ),
            (
                r#"{msg=~"a}b"}"#,
                "level",
                "warn",
                true,
                r#"{msg=~"a}b", level="warn"}"#,
            ),
            (
                r#"|= "x""#,
                "level",
                "warn",
                true,
                r#"{level="warn"} |= "x""#,
            ),
            (
                r#"{service="gateway"}"#,
                "http.route",
                "/orders",
                true,
                r#"{service="gateway"} | http_route="/orders""#,
            ),
            (
                "",
                "error.type",
                r#"say "hi""#,
                false,
                r#"{service=~".+"} | error_type!="say \"hi\"""#,
            ),
        ];
        for (query, name, value, keep, expected) in cases {
            assert_eq!(
                with_filter(query, name, value, keep),
                expected,
                "{query} + {name}"
            );
        }
        // What it builds is a query the parser takes.
        for (query, name, _, _, expected) in cases {
            assert!(
                crate::logql::parse(expected).is_ok(),
                "{query} + {name}: {expected}"
            );
        }
    }
}
