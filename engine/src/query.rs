//! Questions the app asks of a run, answered in the screen's vocabulary: trace search as
//! Jaeger's search form poses it (service, operation, `key=value` tags, duration bounds, errors
//! only, time range, limit), returning one summary row per matching trace.

mod choices;
pub mod logs;
pub mod map;
pub mod metrics;
mod trace_compare;
mod trace_stats;
mod trace_view;

pub use choices::SearchChoices;
pub use trace_compare::{CompareRow, Presence, TraceComparison, compare_traces};
pub use trace_stats::{OperationStats, trace_statistics};
pub use trace_view::{
    EventRow, LogRow, ServiceCount, SpanDetail, SpanRow, TraceView, kind_name, span_detail,
    trace_view,
};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::index::{Index, ValueKey};
use crate::telemetry::{ServiceId, Span, SpanStatus, Sym, Telemetry, TraceId};
use crate::time::{Duration, SimTime};

/// A trace search. Empty fields match everything; all given conditions must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    /// Some span of the trace is from this service...
    pub service: Option<String>,
    /// ...and (on that same span) has this operation.
    pub operation: Option<String>,
    /// `key=value` pairs that one span (the same one as above, when given) must all carry.
    pub tags: Vec<(String, String)>,
    pub min_duration: Option<Duration>,
    pub max_duration: Option<Duration>,
    pub errors_only: bool,
    /// The trace starts in [from, until).
    pub from: Option<SimTime>,
    pub until: Option<SimTime>,
    /// Most rows returned; newest traces first, as Jaeger lists them. 0 means 20.
    pub limit: u32,
}

/// One row of the result list.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    pub root_service: String,
    pub root_operation: String,
    pub start: SimTime,
    pub duration: Duration,
    pub spans: u32,
    pub errors: u32,
    /// Spans not yet ended at the run's current time: the trace is still in progress.
    pub open: u32,
    /// Distinct services with their span counts, by name.
    pub services: Vec<(String, u32)>,
}

/// `12,345`: a count as the screens write it.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Parses Jaeger's tag box: `key=value` pairs separated by spaces; a value may be quoted to
/// hold spaces (`error.type="deadline exceeded"`).
pub fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut tags = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| {
            format!(
                "`{}` has no `=`: write key=value",
                rest.split_whitespace().next().unwrap_or(rest)
            )
        })?;
        let key = rest[..eq].trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("`{}` is not a tag key", &rest[..eq]));
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let close = quoted
                .find('"')
                .ok_or_else(|| format!("the value of `{key}` has no closing quote"))?;
            value = quoted[..close].to_string();
            rest = &quoted[close + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = &rest[end..];
        }
        tags.push((key.to_string(), value));
        rest = rest.trim_start();
    }
    Ok(tags)
}

/// The span-level conditions of a query with its names resolved to symbols once, so that
/// checking a span compares integers. Strings are interned once each, so a name the store
/// never interned is on no span, and equal symbols mean equal text.
struct SpanFilter {
    /// The services with the asked-for name (None: any service).
    services: Option<Vec<ServiceId>>,
    /// None: any operation; Some(None): a name no span has.
    operation: Option<Option<Sym>>,
    tags: Vec<TagFilter>,
}

enum TagFilter {
    /// `error=true` or `error=false` (on the span's status); None for any other value, which
    /// no span matches.
    Error(Option<bool>),
    /// `key=value`: the key's symbol (None: no span has it) and every stored value whose text
    /// is `value`: a string, an integer, a boolean.
    Attribute {
        key: Option<Sym>,
        values: Vec<ValueKey>,
    },
}

impl SpanFilter {
    fn new(t: &Telemetry, q: &TraceQuery) -> SpanFilter {
        let services = q.service.as_deref().map(|name| {
            (0..t.service_names.len() as u16)
                .map(ServiceId)
                .filter(|&id| t.service_name(id) == name)
                .collect()
        });
        let operation = q.operation.as_deref().map(|op| t.strings.lookup(op));
        let tags = q
            .tags
            .iter()
            .map(|(key, value)| {
                if key == "error" {
                    return TagFilter::Error(value.parse::<bool>().ok());
                }
                let mut values = Vec::new();
                values.extend(t.strings.lookup(value).map(ValueKey::Str));
                if let Ok(i) = value.parse::<i64>() {
                    if i.to_string() == *value {
                        values.push(ValueKey::Int(i));
                    }
                }
                if let Ok(b) = value.parse::<bool>() {
                    values.push(ValueKey::Bool(b));
                }
                TagFilter::Attribute {
                    key: t.strings.lookup(key),
                    values,
                }
            })
            .collect();
        SpanFilter {
            services,
            operation,
            tags,
        }
    }

    fn is_empty(&self) -> bool {
        self.services.is_none() && self.operation.is_none() && self.tags.is_empty()
    }

    /// Whether one span satisfies the conditions: the service, the operation and every tag.
    fn matches(&self, t: &Telemetry, s: &Span) -> bool {
        self.services
            .as_ref()
            .is_none_or(|ids| ids.contains(&s.service))
            && self.operation.is_none_or(|op| op == Some(s.operation))
            && self.tags.iter().all(|tag| match tag {
                TagFilter::Error(want) => *want == Some(s.status == SpanStatus::Error),
                TagFilter::Attribute { key, values } => key.is_some_and(|key| {
                    t.attributes(s)
                        .iter()
                        .any(|(k, v)| *k == key && values.contains(&ValueKey::of(v)))
                }),
            })
    }
}

/// Runs a trace search. The index supplies the candidate spans (those of the service, or
/// carrying the rarest tag) and the traces newest first. With fewer candidates than traces in
/// the time range, the traces of the matching candidates are sorted and read; otherwise the
/// traces are walked newest first, each checked through its own spans, up to the limit.
pub fn search_traces(t: &Telemetry, q: &TraceQuery) -> Vec<TraceSummary> {
    let index = t.index();
    let limit = if q.limit == 0 { 20 } else { q.limit as usize };
    let in_range = index.traces_newest_first(q.from, q.until);
    let filter = SpanFilter::new(t, q);
    let conditions = !filter.is_empty();
    let candidates = if conditions {
        candidate_spans(&index, &filter)
    } else {
        None
    };
    let selective =
        |lists: &Vec<&[u32]>| lists.iter().map(|l| l.len()).sum::<usize>() < in_range.len();
    let walk = conditions && !candidates.as_ref().is_some_and(selective);
    let matched: Vec<u32>;
    let order: &[u32] = match candidates {
        Some(lists) if !walk => {
            let mut traces: Vec<u32> = lists
                .into_iter()
                .flatten()
                .filter(|&&i| filter.matches(t, &t.spans[i as usize]))
                .map(|&i| index.trace_of_span(i))
                .collect();
            traces.sort_unstable();
            traces.dedup();
            let (from, until) = (q.from, q.until);
            traces.retain(|&n| {
                let start = index.trace_entry(n).start;
                from.is_none_or(|f| start >= f) && until.is_none_or(|u| start < u)
            });
            traces.sort_unstable_by_key(|&n| {
                let e = index.trace_entry(n);
                (Reverse(e.start), e.id)
            });
            matched = traces;
            &matched
        }
        _ => in_range,
    };
    // Errors only: the traces holding an error span, marked from the index of them.
    let mut erroneous = Vec::new();
    if q.errors_only {
        erroneous.resize(index.traces().len(), false);
        let open_errors = index
            .open_spans()
            .iter()
            .filter(|&&i| t.spans[i as usize].status == SpanStatus::Error);
        for &i in index.ended_error_spans().iter().chain(open_errors) {
            erroneous[index.trace_of_span(i) as usize] = true;
        }
    }
    let mut rows = Vec::new();
    for &n in order {
        if rows.len() >= limit {
            break;
        }
        if q.errors_only && !erroneous[n as usize] {
            continue;
        }
        let entry = index.trace_entry(n);
        if walk
            && !entry
                .spans
                .iter()
                .any(|&i| filter.matches(t, &t.spans[i as usize]))
        {
            continue;
        }
        let spans: Vec<&Span> = entry.spans.iter().map(|&i| &t.spans[i as usize]).collect();
        let end = spans
            .iter()
            .map(|s| s.end().unwrap_or(s.start))
            .max()
            .unwrap_or_default();
        let duration = end.since(entry.start);
        if q.min_duration.is_some_and(|d| duration < d)
            || q.max_duration.is_some_and(|d| duration > d)
        {
            continue;
        }
        rows.push(summarize(t, entry.id, &spans));
    }
    rows
}

/// The smallest list of spans that holds every span satisfying the query's span conditions,
/// as slices of the index; None when no condition narrows it (then every span is a candidate).
fn candidate_spans<'a>(index: &'a Index, filter: &SpanFilter) -> Option<Vec<&'a [u32]>> {
    let mut best: Option<Vec<&'a [u32]>> = None;
    let mut consider = |lists: Vec<&'a [u32]>| {
        let size = |l: &Vec<&[u32]>| l.iter().map(|s| s.len()).sum::<usize>();
        if best.as_ref().is_none_or(|b| size(&lists) < size(b)) {
            best = Some(lists);
        }
    };
    if let Some(ids) = &filter.services {
        consider(
            ids.iter()
                .flat_map(|&id| index.spans_of_service(id))
                .collect(),
        );
    }
    for tag in &filter.tags {
        // Attributes and status are indexed once a span ends; open spans are checked directly.
        let mut lists = vec![index.open_spans()];
        match tag {
            TagFilter::Error(Some(true)) => lists.push(index.ended_error_spans()),
            TagFilter::Error(Some(false)) => continue, // most spans: no help narrowing
            TagFilter::Error(None) | TagFilter::Attribute { key: None, .. } => {} // none match
            TagFilter::Attribute {
                key: Some(key),
                values,
            } => lists.extend(values.iter().map(|&v| index.ended_spans_with(*key, v))),
        }
        consider(lists);
    }
    best
}

fn summarize(t: &Telemetry, trace_id: TraceId, spans: &[&Span]) -> TraceSummary {
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

/// One row of the lab's overview: what a service has answered so far, from its request metrics
/// (every instance and route), as a RED dashboard's summary row reads.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSummary {
    pub service: String,
    /// Instances that answered at least one request.
    pub instances: u32,
    pub requests: u64,
    /// Answers with status 500 and above.
    pub errors: u64,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
}

/// Every service with request metrics, in the scenario's order.
pub fn service_summaries(t: &Telemetry) -> Vec<ServiceSummary> {
    let mut rows: BTreeMap<ServiceId, (BTreeSet<u16>, crate::metrics::RequestStats)> =
        BTreeMap::new();
    for (((service, instance, _route), _bucket), stats) in &t.metrics.requests {
        let (instances, total) = rows.entry(*service).or_default();
        instances.insert(*instance);
        total.count += stats.count;
        total.errors += stats.errors;
        total.latency.merge(&stats.latency);
    }
    rows.into_iter()
        .map(|(service, (instances, total))| ServiceSummary {
            service: t.service_name(service).to_string(),
            instances: instances.len() as u32,
            requests: u64::from(total.count),
            errors: u64::from(total.errors),
            p50: total.latency.quantile(0.50),
            p99: total.latency.quantile(0.99),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec};

    fn telemetry() -> Telemetry {
        let mut scenario = default_mesh(40.0, 10_000);
        scenario.faults.push(FaultSpec {
            service: "payments".into(),
            instance: None,
            from_ms: 5_000,
            until_ms: 10_000,
            effect: FaultEffect::Latency { extra_ms: 1_500 },
        });
        crate::run(&scenario, 3).unwrap()
    }

    #[test]
    fn tags_parse_like_jaegers_search_box() {
        assert_eq!(
            parse_tags(r#"http.response.status_code=504  error.type="deadline exceeded""#).unwrap(),
            [
                ("http.response.status_code".to_string(), "504".to_string()),
                ("error.type".to_string(), "deadline exceeded".to_string())
            ]
        );
        assert_eq!(parse_tags("  ").unwrap(), []);
        assert_eq!(
            parse_tags("error").unwrap_err(),
            "`error` has no `=`: write key=value"
        );
        assert!(parse_tags("a=\"open").is_err());
    }

    #[test]
    fn a_run_caught_mid_way_marks_its_traces_in_progress() {
        let mut sim = crate::Simulation::new(crate::mesh::default_mesh(50.0, 2_000), 7).unwrap();
        sim.step_until(SimTime::from_ms(1_000));
        let q = TraceQuery {
            limit: 1_000,
            ..TraceQuery::default()
        };
        let rows = search_traces(sim.telemetry(), &q);
        let open: Vec<_> = rows.iter().filter(|r| r.open > 0).collect();
        assert!(
            !open.is_empty() && open.len() < rows.len(),
            "{} of {}",
            open.len(),
            rows.len()
        );
        for r in &rows {
            let view = trace_view::trace_view(sim.telemetry(), r.trace_id).unwrap();
            assert_eq!(r.open, view.open, "{:?}", r.trace_id);
        }
        // Once the run is over every trace has ended.
        sim.step_until(SimTime(u64::MAX));
        assert!(
            search_traces(sim.telemetry(), &q)
                .iter()
                .all(|r| r.open == 0)
        );
    }

    #[test]
    fn duration_bounds_find_the_slow_checkouts() {
        let t = telemetry();
        let q = TraceQuery {
            service: Some("payments".into()),
            min_duration: Some(Duration::parse("1s").unwrap()),
            limit: 1_000,
            ..TraceQuery::default()
        };
        let rows = search_traces(&t, &q);
        assert!(rows.len() > 10, "{}", rows.len());
        assert!(
            rows.iter()
                .all(|r| r.duration >= Duration::from_secs(1) && r.start.0 >= 4_000_000)
        );
        // Checkouts, and payments' settlement job slowed the same way.
        let checkouts = rows.iter().filter(|r| r.root_operation == "POST /orders");
        assert!(checkouts.count() > 10);
        assert!(
            rows.iter()
                .all(|r| r.root_operation == "POST /orders" || r.root_operation == "settle")
        );
        assert!(
            rows.windows(2).all(|w| w[0].start >= w[1].start),
            "newest first"
        );
    }

    #[test]
    fn errors_tags_and_limits_narrow_the_list() {
        let t = telemetry();
        let timeouts = TraceQuery {
            tags: parse_tags("error.type=timeout peer.service=payments").unwrap(),
            errors_only: true,
            limit: 5,
            ..TraceQuery::default()
        };
        let rows = search_traces(&t, &timeouts);
        assert_eq!(rows.len(), 5);
        assert!(rows.iter().all(|r| r.errors > 0));
        let none = TraceQuery {
            service: Some("ledger".into()),
            ..TraceQuery::default()
        };
        assert!(search_traces(&t, &none).is_empty());
        let early = TraceQuery {
            until: Some(SimTime::from_ms(1_000)),
            limit: 1_000,
            ..TraceQuery::default()
        };
        assert!(
            search_traces(&t, &early)
                .iter()
                .all(|r| r.start < SimTime::from_ms(1_000))
        );
    }

    #[test]
    fn a_time_range_keeps_the_traces_that_start_in_it() {
        let t = telemetry();
        let all = TraceQuery {
            limit: 100_000,
            ..TraceQuery::default()
        };
        let every = search_traces(&t, &all);
        // The range's ends are two traces' own starts: the first is in, the second is out.
        let start_near = |ms: u64| {
            every
                .iter()
                .map(|r| r.start)
                .filter(|s| *s >= SimTime::from_ms(ms))
                .min()
                .unwrap()
        };
        let (from, until) = (start_near(3_000), start_near(6_000));
        // Without a condition (the traces by start) and with ones that pick candidates from the
        // index (a service; a tag), with errors only, and past the run's end.
        let searches = [
            TraceQuery::default(),
            TraceQuery {
                service: Some("payments".into()),
                ..TraceQuery::default()
            },
            TraceQuery {
                tags: parse_tags("peer.service=payments").unwrap(),
                errors_only: true,
                ..TraceQuery::default()
            },
        ];
        for base in searches {
            let unbounded = search_traces(
                &t,
                &TraceQuery {
                    limit: 100_000,
                    ..base.clone()
                },
            );
            for (from, until) in [
                (Some(from), Some(until)),
                (Some(from), None),
                (None, Some(until)),
                (Some(SimTime::from_ms(60_000)), None),
            ] {
                let ranged = TraceQuery {
                    from,
                    until,
                    limit: 100_000,
                    ..base.clone()
                };
                let expected: Vec<TraceSummary> = unbounded
                    .iter()
                    .filter(|r| from.is_none_or(|f| r.start >= f))
                    .filter(|r| until.is_none_or(|u| r.start < u))
                    .cloned()
                    .collect();
                assert_eq!(search_traces(&t, &ranged), expected, "{ranged:?}");
            }
        }
        let ranged = search_traces(
            &t,
            &TraceQuery {
                from: Some(from),
                until: Some(until),
                limit: 100_000,
                ..TraceQuery::default()
            },
        );
        assert!(
            ranged.len() > 50 && ranged.len() < every.len() / 2,
            "{}",
            ranged.len()
        );
        assert_eq!(ranged.last().map(|r| r.start), Some(from), "from is in");
        assert!(ranged.iter().all(|r| r.start < until), "until is out");
        assert!(every.iter().any(|r| r.start == until));
        // A limit keeps the newest of the range.
        let newest = search_traces(
            &t,
            &TraceQuery {
                from: Some(from),
                until: Some(until),
                limit: 5,
                ..TraceQuery::default()
            },
        );
        assert_eq!(newest, ranged[..5]);
        // An empty range finds nothing.
        let empty = TraceQuery {
            from: Some(until),
            until: Some(from),
            ..TraceQuery::default()
        };
        assert!(search_traces(&t, &empty).is_empty());
    }

    #[test]
    fn service_summaries_add_up_every_instance_and_route() {
        let t = crate::Simulation::new(crate::mesh::default_mesh(50.0, 3_000), 5)
            .unwrap()
            .run();
        let rows = service_summaries(&t);
        let gateway = rows.iter().find(|r| r.service == "gateway").unwrap();
        let roots = t
            .spans
            .iter()
            .filter(|s| s.parent.is_none() && t.service_name(s.service) == "gateway")
            .count();
        assert_eq!(gateway.requests, roots as u64);
        assert!(gateway.instances >= 1 && gateway.p50 <= gateway.p99 && gateway.p99.is_some());
        let names: Vec<&str> = rows.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(names[0], "gateway", "in the scenario's order: {names:?}");
    }
}
