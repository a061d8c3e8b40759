//! Reading one trace as a tree: its roots, orphans, parent cycles and clock-skewed children,
//! and its critical path computed the way Jaeger UI does (last-finishing child first, children
//! clipped to their parent, non-blocking producer/consumer subtrees left out).

use std::collections::{BTreeMap, BTreeSet};

use crate::telemetry::{Span, SpanId, SpanKind, Telemetry, TraceId};
use crate::time::SimTime;

/// A stretch of time during which one span is what the root is waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    pub span: SpanId,
    pub start: SimTime,
    pub end: SimTime,
}

/// Something wrong with a trace's shape, found while reading it; never fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceWarning {
    /// The span's parent is not in the trace (dropped context, or a lost span).
    Orphan {
        span: SpanId,
        missing_parent: SpanId,
    },
    /// These spans are each other's ancestors; the first is shown as a root.
    Cycle { spans: Vec<SpanId> },
    /// The child starts this many microseconds before its parent: their clocks disagree. A
    /// child that ends after its parent is not flagged: timeouts and async work do that.
    Skew {
        span: SpanId,
        parent: SpanId,
        early_us: u64,
    },
}

impl std::fmt::Display for TraceWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceWarning::Orphan {
                span,
                missing_parent,
            } => {
                write!(
                    f,
                    "orphan: span {span}'s parent {missing_parent} is not in the trace"
                )
            }
            TraceWarning::Cycle { spans } => {
                let ids: Vec<String> = spans.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "parent cycle: {} -> {}; {} is shown as a root",
                    ids.join(" -> "),
                    ids[0],
                    ids[0]
                )
            }
            TraceWarning::Skew {
                span,
                parent,
                early_us,
            } => write!(
                f,
                "clock skew: span {span} starts {early_us}µs before its parent {parent}"
            ),
        }
    }
}

/// One trace's spans arranged as a forest.
pub struct TraceTree<'a> {
    pub trace_id: TraceId,
    /// The trace's spans, in the store's order.
    pub spans: Vec<&'a Span>,
    /// Index into `spans` of each span's parent, when the parent is present and not cut.
    pub parent: Vec<Option<usize>>,
    pub children: Vec<Vec<usize>>,
    /// Spans with no parent in the tree: true roots, orphans and cycle breakers, by start.
    pub roots: Vec<usize>,
    pub warnings: Vec<TraceWarning>,
}

impl<'a> TraceTree<'a> {
    /// Builds the tree of one trace from the store, touching only its spans (through the index).
    pub fn new(telemetry: &'a Telemetry, trace_id: TraceId) -> TraceTree<'a> {
        let spans: Vec<&Span> = telemetry
            .index()
            .trace(trace_id)
            .map_or_else(Vec::new, |e| {
                e.spans
                    .iter()
                    .map(|&i| &telemetry.spans[i as usize])
                    .collect()
            });
        let index: BTreeMap<SpanId, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        let mut warnings = Vec::new();
        let mut parent: Vec<Option<usize>> = spans
            .iter()
            .map(|s| {
                let p = s.parent?;
                let found = index
                    .get(&p)
                    .copied()
                    .filter(|&pi| spans[pi].span_id != s.span_id);
                if found.is_none() {
                    warnings.push(TraceWarning::Orphan {
                        span: s.span_id,
                        missing_parent: p,
                    });
                }
                found
            })
            .collect();
        // Cut every parent cycle at its earliest-starting span.
        let mut settled = vec![false; spans.len()];
        for start in 0..spans.len() {
            let mut path = Vec::new();
            let mut on_path = BTreeSet::new();
            let mut at = Some(start);
            while let Some(i) = at {
                if settled[i] {
                    break;
                }
                if !on_path.insert(i) {
                    let cycle: Vec<usize> =
                        path[path.iter().position(|&p| p == i).unwrap_or(0)..].to_vec();
                    let cut = *cycle
                        .iter()
                        .min_by_key(|&&c| (spans[c].start, c))
                        .expect("cycle is not empty");
                    let mut ordered: Vec<usize> = cycle.clone();
                    ordered.rotate_left(cycle.iter().position(|&c| c == cut).unwrap_or(0));
                    warnings.push(TraceWarning::Cycle {
                        spans: ordered.iter().map(|&c| spans[c].span_id).collect(),
                    });
                    parent[cut] = None;
                    break;
                }
                path.push(i);
                at = parent[i];
            }
            for i in path {
                settled[i] = true;
            }
        }
        let mut children = vec![Vec::new(); spans.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
                let (child, par) = (spans[i], spans[*p]);
                let early_us = par.start.0.saturating_sub(child.start.0);
                if early_us > 0 {
                    warnings.push(TraceWarning::Skew {
                        span: child.span_id,
                        parent: par.span_id,
                        early_us,
                    });
                }
            }
        }
        for list in &mut children {
            list.sort_by_key(|&c| (spans[c].start, c));
        }
        let mut roots: Vec<usize> = (0..spans.len()).filter(|&i| parent[i].is_none()).collect();
        roots.sort_by_key(|&r| (spans[r].start, r));
        TraceTree {
            trace_id,
            spans,
            parent,
            children,
            roots,
            warnings,
        }
    }

    /// Whether the trace is missing spans (it has orphans).
    pub fn incomplete(&self) -> bool {
        self.warnings
            .iter()
            .any(|w| matches!(w, TraceWarning::Orphan { .. }))
    }

    /// From the first root's start to the latest end of any span.
    pub fn duration_us(&self) -> u64 {
        let start = self.spans.iter().map(|s| s.start).min().unwrap_or_default();
        let last = self.spans.iter().map(|s| end(s)).max().unwrap_or_default();
        last.since(start).0
    }

    /// The critical path of every root's tree, latest section first within each root, as
    /// Jaeger UI lists it.
    pub fn critical_path(&self) -> Vec<Section> {
        let mut sections = Vec::new();
        for &root in &self.roots {
            let clipped = self.clip_children(root);
            walk(self, &clipped, root, None, &mut sections);
        }
        sections
    }

    /// Start and end of each span under `root` after clipping to its parent (Jaeger UI's
    /// sanitizeOverFlowingChildren); None for spans dropped as outside their parent or as
    /// non-blocking (producer, consumer) subtrees.
    fn clip_children(&self, root: usize) -> Vec<Option<(SimTime, SimTime)>> {
        let mut clipped = vec![None; self.spans.len()];
        clipped[root] = Some((self.spans[root].start, end(self.spans[root])));
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            let Some((p_start, p_end)) = clipped[p] else {
                continue;
            };
            for &c in &self.children[p] {
                let child = self.spans[c];
                if matches!(child.kind, SpanKind::Producer | SpanKind::Consumer) {
                    continue;
                }
                let (c_start, c_end) = (child.start, end(child));
                if c_start >= p_end || (c_start < p_start && c_end <= p_start) {
                    continue;
                }
                clipped[c] = Some((c_start.max(p_start), c_end.min(p_end)));
                stack.push(c);
            }
        }
        clipped
    }
}

fn end(s: &Span) -> SimTime {
    s.end().unwrap_or(s.start)
}

/// Jaeger UI's computeCriticalPath, iterative in spirit but recursive here as there: the span's
/// time after its last-finishing child is critical, then that child's path, then back in the
/// parent before that child started.
fn walk(
    tree: &TraceTree,
    clipped: &[Option<(SimTime, SimTime)>],
    span: usize,
    returning_start: Option<SimTime>,
    out: &mut Vec<Section>,
) {
    let mut span = span;
    let mut returning_start = returning_start;
    // An explicit loop stands in for the tail calls, so deep traces cannot overflow the stack.
    loop {
        let Some((start, finish)) = clipped[span] else {
            return;
        };
        let section_end = returning_start.unwrap_or(finish);
        // The first child in start order with the strictly latest end, as Jaeger UI picks.
        let mut last_child: Option<(usize, SimTime)> = None;
        for &c in &tree.children[span] {
            let Some((_, e)) = clipped[c] else { continue };
            if returning_start.is_some_and(|r| e >= r) {
                continue;
            }
            if last_child.is_none_or(|(_, best)| e > best) {
                last_child = Some((c, e));
            }
        }
        match last_child {
            Some((child, child_end)) => {
                if child_end != section_end {
                    out.push(Section {
                        span: tree.spans[span].span_id,
                        start: child_end,
                        end: section_end,
                    });
                }
                span = child;
                returning_start = None;
            }
            None => {
                if start != section_end {
                    out.push(Section {
                        span: tree.spans[span].span_id,
                        start,
                        end: section_end,
                    });
                }
                match tree.parent[span] {
                    Some(p) => {
                        returning_start = Some(start);
                        span = p;
                    }
                    None => return,
                }
            }
        }
    }
}

/// Trace ids in the order their first span appears in the store.
pub fn trace_ids(telemetry: &Telemetry) -> Vec<TraceId> {
    telemetry.index().traces().iter().map(|e| e.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Sym;

    /// A trace from (id, parent, start ms, end ms, kind) rows.
    fn telemetry(rows: &[(u64, u64, u64, u64, SpanKind)]) -> Telemetry {
        let mut t = Telemetry::default();
        t.service_names.push(t.strings.intern("svc"));
        for &(id, parent, start, end, kind) in rows {
            let mut span = Span::for_test(
                1,
                id,
                parent,
                Sym(0),
                SimTime::from_ms(start),
                Some(SimTime::from_ms(end)),
            );
            span.kind = kind;
            t.spans.push(span);
        }
        t
    }

    fn path(t: &Telemetry) -> Vec<(u64, u64, u64)> {
        TraceTree::new(t, TraceId(1))
            .critical_path()
            .iter()
            .map(|s| (s.span.get(), s.start.0 / 1_000, s.end.0 / 1_000))
            .collect()
    }

    use SpanKind::*;

    #[test]
    fn the_path_runs_through_the_last_finishing_children() {
        // |-------------A (0-100)---------------|
        //    |--B (10-40)--|    |--C (50-80)--|
        let t = telemetry(&[
            (1, 0, 0, 100, Server),
            (2, 1, 10, 40, Client),
            (3, 1, 50, 80, Client),
        ]);
        assert_eq!(
            path(&t),
            [
                (1, 80, 100),
                (3, 50, 80),
                (1, 40, 50),
                (2, 10, 40),
                (1, 0, 10)
            ]
        );
    }

    #[test]
    fn overlapping_children_yield_to_the_later_finisher() {
        // B (10-60) and C (30-90) overlap: C finishes last, then B only up to C's start.
        let t = telemetry(&[
            (1, 0, 0, 100, Server),
            (2, 1, 10, 60, Client),
            (3, 1, 30, 90, Client),
        ]);
        assert_eq!(path(&t), [(1, 90, 100), (3, 30, 90), (1, 0, 30)]);
    }

    #[test]
    fn children_are_clipped_to_their_parent_and_async_subtrees_ignored() {
        let t = telemetry(&[
            (1, 0, 0, 100, Server),
            (2, 1, 80, 150, Client),  // ends after its parent: clipped to 100
            (3, 1, 100, 120, Client), // starts at the parent's end: dropped
            (4, 1, 20, 70, Producer), // non-blocking
        ]);
        assert_eq!(path(&t), [(2, 80, 100), (1, 0, 80)]);
    }

    #[test]
    fn orphans_cycles_and_skew_are_reported_not_fatal() {
        let t = telemetry(&[
            (1, 0, 10, 100, Server),
            (2, 1, 5, 50, Internal), // starts 5 ms before its parent
            (3, 9, 20, 30, Server),  // parent 9 is missing
            (4, 5, 40, 60, Internal),
            (5, 4, 41, 61, Internal), // 4 and 5 are each other's parent
        ]);
        let tree = TraceTree::new(&t, TraceId(1));
        let text: Vec<String> = tree.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "orphan: span 0000000000000003's parent 0000000000000009 is not in the trace",
                "parent cycle: 0000000000000004 -> 0000000000000005 -> 0000000000000004; 0000000000000004 is shown as a root",
                "clock skew: span 0000000000000002 starts 5000µs before its parent 0000000000000001",
            ]
        );
        assert!(tree.incomplete());
        assert_eq!(tree.roots.len(), 3); // 1, the orphan 3 and the cycle's cut 4
        assert!(!tree.critical_path().is_empty());
    }
}
