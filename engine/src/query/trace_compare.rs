//! Two traces side by side, as Jaeger UI's trace compare: spans matched by their path from the
//! root (each step a service and operation), with counts and summed durations on each side, so
//! spans present in one trace only, and the steps that got slower, stand out.

use std::collections::BTreeMap;

use crate::telemetry::{Telemetry, TraceId};
use crate::time::Duration;
use crate::trace::TraceTree;

/// Whether a path is in the first trace, the second, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Both,
    OnlyFirst,
    OnlySecond,
}

/// One path (root to span) of either trace.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRow {
    pub depth: u32,
    pub service: String,
    pub service_index: u16,
    pub operation: String,
    pub presence: Presence,
    /// Spans on this path, and their summed durations, in each trace.
    pub count: [u32; 2],
    pub duration: [Duration; 2],
}

impl CompareRow {
    /// Second minus first, in microseconds.
    pub fn delta_us(&self) -> i64 {
        self.duration[1].0 as i64 - self.duration[0].0 as i64
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceComparison {
    pub traces: [TraceId; 2],
    pub durations: [Duration; 2],
    pub spans: [u32; 2],
    /// Paths in tree order: the first trace's, then the second's own, each under its parent.
    pub rows: Vec<CompareRow>,
}

/// A path's key: the (service, operation) names from the root down.
type PathKey = Vec<(String, String)>;

struct Side {
    /// Paths in tree order with the service index of the span that first had it.
    order: Vec<(PathKey, u16)>,
    sums: BTreeMap<PathKey, (u32, Duration)>,
    duration: Duration,
    spans: u32,
}

fn side(t: &Telemetry, id: TraceId) -> Option<Side> {
    let tree = TraceTree::new(t, id);
    let start = tree.spans.iter().map(|s| s.start).min()?;
    let last = tree
        .spans
        .iter()
        .map(|s| s.end().unwrap_or(s.start))
        .max()
        .unwrap_or(start);
    let mut order = Vec::new();
    let mut sums: BTreeMap<PathKey, (u32, Duration)> = BTreeMap::new();
    let mut stack: Vec<(usize, PathKey)> =
        tree.roots.iter().rev().map(|&r| (r, Vec::new())).collect();
    while let Some((i, mut path)) = stack.pop() {
        let s = tree.spans[i];
        path.push((
            t.service_name(s.service).to_string(),
            t.text(s.operation).to_string(),
        ));
        let length = s.end().unwrap_or(last).since(s.start);
        let sum = sums.entry(path.clone()).or_insert_with(|| {
            order.push((path.clone(), s.service.0));
            (0, Duration::ZERO)
        });
        sum.0 += 1;
        sum.1 = Duration(sum.1.0 + length.0);
        for &c in tree.children[i].iter().rev() {
            stack.push((c, path.clone()));
        }
    }
    Some(Side {
        order,
        sums,
        duration: last.since(start),
        spans: tree.spans.len() as u32,
    })
}

/// Compares two traces of the store; None when either is not there.
pub fn compare_traces(t: &Telemetry, first: TraceId, second: TraceId) -> Option<TraceComparison> {
    let a = side(t, first)?;
    let b = side(t, second)?;
    // The first trace's paths in its order; a path only in the second goes after the last row
    // of its parent's subtree so far (a root's, at the end).
    let mut paths: Vec<(PathKey, u16)> = a.order.clone();
    for (path, service) in &b.order {
        if a.sums.contains_key(path) {
            continue;
        }
        let parent = &path[..path.len() - 1];
        let at = if parent.is_empty() {
            paths.len()
        } else {
            paths
                .iter()
                .rposition(|(p, _)| p.starts_with(parent))
                .map_or(paths.len(), |i| i + 1)
        };
        paths.insert(at, (path.clone(), *service));
    }
    let rows = paths
        .into_iter()
        .map(|(path, service_index)| {
            let (ca, da) = a.sums.get(&path).copied().unwrap_or((0, Duration::ZERO));
            let (cb, db) = b.sums.get(&path).copied().unwrap_or((0, Duration::ZERO));
            let presence = match (ca > 0, cb > 0) {
                (true, true) => Presence::Both,
                (true, false) => Presence::OnlyFirst,
                _ => Presence::OnlySecond,
            };
            let (service, operation) = path.last().cloned().unwrap_or_default();
            CompareRow {
                depth: path.len() as u32 - 1,
                service,
                service_index,
                operation,
                presence,
                count: [ca, cb],
                duration: [da, db],
            }
        })
        .collect();
    Some(TraceComparison {
        traces: [first, second],
        durations: [a.duration, b.duration],
        spans: [a.spans, b.spans],
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Span;
    use crate::time::SimTime;

    /// Spans as (trace, id, parent, operation, start ms, end ms), all of service `svc`.
    fn telemetry(rows: &[(u128, u64, u64, &str, u64, u64)]) -> Telemetry {
        let mut t = Telemetry::default();
        t.service_names.push(t.strings.intern("svc"));
        for &(trace, id, parent, op, start, end) in rows {
            let operation = t.strings.intern(op);
            let (start, end) = (SimTime::from_ms(start), Some(SimTime::from_ms(end)));
            t.spans
                .push(Span::for_test(trace, id, parent, operation, start, end));
        }
        t
    }

    #[test]
    fn paths_match_across_traces_and_the_odd_ones_out_are_marked() {
        let t = telemetry(&[
            // Trace 1: root > a, root > b.
            (1, 1, 0, "root", 0, 100),
            (1, 2, 1, "a", 10, 30),
            (1, 3, 1, "b", 40, 60),
            // Trace 2: root > a (twice, a retry), root > c > d; no b.
            (2, 11, 0, "root", 0, 300),
            (2, 12, 11, "a", 10, 110),
            (2, 13, 11, "a", 120, 220),
            (2, 14, 11, "c", 230, 250),
            (2, 15, 14, "d", 232, 240),
        ]);
        let c = compare_traces(&t, TraceId(1), TraceId(2)).unwrap();
        let rows: Vec<(u32, &str, Presence, [u32; 2])> = c
            .rows
            .iter()
            .map(|r| (r.depth, r.operation.as_str(), r.presence, r.count))
            .collect();
        assert_eq!(
            rows,
            [
                (0, "root", Presence::Both, [1, 1]),
                (1, "a", Presence::Both, [1, 2]),
                (1, "b", Presence::OnlyFirst, [1, 0]),
                (1, "c", Presence::OnlySecond, [0, 1]),
                (2, "d", Presence::OnlySecond, [0, 1]),
            ]
        );
        assert_eq!(c.rows[1].delta_us(), 180_000);
        assert_eq!(
            c.durations,
            [Duration::from_ms(100), Duration::from_ms(300)]
        );
        assert_eq!(c.spans, [3, 5]);
        assert!(compare_traces(&t, TraceId(1), TraceId(9)).is_none());
    }
}
