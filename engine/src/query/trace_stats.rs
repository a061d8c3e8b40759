//! Jaeger UI's "trace statistics" of one trace: per service and operation, how many spans,
//! their total, average, shortest and longest durations, and their self time (the time no child
//! of the span covers), so the operations where a slow trace spent its time stand out.

use std::collections::BTreeMap;

use crate::telemetry::{ServiceId, SpanStatus, Sym, Telemetry, TraceId};
use crate::time::Duration;
use crate::trace::TraceTree;

/// One row of the statistics table.
#[derive(Clone, Debug, PartialEq)]
pub struct OperationStats {
    pub service: String,
    pub service_index: u16,
    pub operation: String,
    pub count: u32,
    pub errors: u32,
    pub total: Duration,
    pub average: Duration,
    pub min: Duration,
    pub max: Duration,
    /// Summed over the spans: each one's time not covered by any of its children.
    pub self_total: Duration,
    /// `self_total` as a share (0 to 1) of the trace's duration.
    pub self_share: f64,
}

/// The statistics of one trace, most self time first; empty when the store has no such trace.
/// A span still open counts to the trace's latest end.
pub fn trace_statistics(t: &Telemetry, trace_id: TraceId) -> Vec<OperationStats> {
    let tree = TraceTree::new(t, trace_id);
    let Some(start) = tree.spans.iter().map(|s| s.start).min() else {
        return Vec::new();
    };
    let end_of = |s: &crate::telemetry::Span| s.end().unwrap_or(s.start);
    let last = tree.spans.iter().map(|s| end_of(s)).max().unwrap_or(start);
    let trace_us = last.since(start).0.max(1);
    struct Sum {
        count: u32,
        errors: u32,
        total: u64,
        min: u64,
        max: u64,
        self_total: u64,
    }
    let mut sums: BTreeMap<(ServiceId, Sym), Sum> = BTreeMap::new();
    for (i, s) in tree.spans.iter().enumerate() {
        let span_end = s.end().unwrap_or(last);
        let length = span_end.since(s.start).0;
        // The union of the children's times, clipped to the span (children come by start).
        let mut covered = 0u64;
        let mut reach = s.start;
        for &c in &tree.children[i] {
            let child = tree.spans[c];
            let (from, to) = (
                child.start.max(reach),
                child.end().unwrap_or(last).min(span_end),
            );
            if to > from {
                covered += to.since(from).0;
                reach = to;
            }
        }
        let own = length.saturating_sub(covered);
        let sum = sums.entry((s.service, s.operation)).or_insert(Sum {
            count: 0,
            errors: 0,
            total: 0,
            min: u64::MAX,
            max: 0,
            self_total: 0,
        });
        sum.count += 1;
        sum.errors += u32::from(s.status == SpanStatus::Error);
        sum.total += length;
        sum.min = sum.min.min(length);
        sum.max = sum.max.max(length);
        sum.self_total += own;
    }
    let mut rows: Vec<OperationStats> = sums
        .into_iter()
        .map(|((service, operation), s)| OperationStats {
            service: t.service_name(service).to_string(),
            service_index: service.0,
            operation: t.text(operation).to_string(),
            count: s.count,
            errors: s.errors,
            total: Duration(s.total),
            average: Duration(s.total / u64::from(s.count.max(1))),
            min: Duration(s.min),
            max: Duration(s.max),
            self_total: Duration(s.self_total),
            self_share: s.self_total as f64 / trace_us as f64,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.self_total
            .cmp(&a.self_total)
            .then_with(|| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Span;
    use crate::time::SimTime;

    /// A trace from (id, parent, operation, start ms, end ms) rows, all of service `svc`.
    fn telemetry(rows: &[(u64, u64, &str, u64, u64)]) -> Telemetry {
        let mut t = Telemetry::default();
        t.service_names.push(t.strings.intern("svc"));
        for &(id, parent, op, start, end) in rows {
            let operation = t.strings.intern(op);
            let (start, end) = (SimTime::from_ms(start), Some(SimTime::from_ms(end)));
            t.spans
                .push(Span::for_test(1, id, parent, operation, start, end));
        }
        t
    }

    #[test]
    fn self_time_is_what_no_child_covers() {
        // root 0-100; two overlapping queries 10-40 and 30-60 (covering 10-60); a call 70-120
        // running past the root's end (counted to 100 within the root).
        let t = telemetry(&[
            (1, 0, "GET /", 0, 100),
            (2, 1, "SELECT", 10, 40),
            (3, 1, "SELECT", 30, 60),
            (4, 1, "call", 70, 120),
        ]);
        let rows = trace_statistics(&t, TraceId(1));
        let get = |op: &str| rows.iter().find(|r| r.operation == op).unwrap();
        let root = get("GET /");
        assert_eq!(root.self_total, Duration::from_ms(100 - 50 - 30));
        let select = get("SELECT");
        assert_eq!((select.count, select.total), (2, Duration::from_ms(60)));
        assert_eq!(
            (select.min, select.max, select.average),
            (
                Duration::from_ms(30),
                Duration::from_ms(30),
                Duration::from_ms(30)
            )
        );
        assert_eq!(select.self_total, Duration::from_ms(60));
        assert_eq!(get("call").self_total, Duration::from_ms(50));
        assert_eq!(rows[0].operation, "SELECT", "most self time first");
        assert!((select.self_share - 60.0 / 120.0).abs() < 1e-9);
        assert!(trace_statistics(&t, TraceId(2)).is_empty());
    }

    #[test]
    fn a_run_s_trace_adds_up() {
        let t = crate::run(&crate::mesh::default_mesh(40.0, 2_000), 3).unwrap();
        let id = t.spans[0].trace_id;
        let rows = trace_statistics(&t, id);
        let view = crate::query::trace_view(&t, id).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.count).sum::<u32>() as usize,
            view.rows.len()
        );
        // Self times never add up to more than the spans' whole lengths.
        for r in &rows {
            assert!(r.self_total <= r.total && r.min <= r.average && r.average <= r.max);
        }
    }
}
