//! One trace as the lab's trace page draws it: a header, span rows in tree order with their
//! depth, bar offsets and critical-path sections (Jaeger UI's waterfall), which rows a set of
//! collapsed spans leaves visible, time-axis ticks, and the detail of one span with its logs.

use std::collections::{BTreeMap, BTreeSet};

use crate::telemetry::{Level, ServiceId, Span, SpanId, SpanKind, SpanStatus, Telemetry, TraceId};
use crate::time::{Duration, SimTime};
use crate::trace::TraceTree;

/// The trace page's data: the header's figures and one row per span, in tree order.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceView {
    pub trace_id: TraceId,
    pub root_service: String,
    pub root_operation: String,
    /// The earliest span start, and from it to the latest span end.
    pub start: SimTime,
    pub duration: Duration,
    /// Services with their span counts, in the scenario's order (`ServiceId`).
    pub services: Vec<ServiceCount>,
    /// Levels of the deepest branch (a lone root is 1).
    pub depth: u32,
    pub errors: u32,
    /// Spans still open (a run caught mid-way).
    pub open: u32,
    /// Some span's parent is missing from the trace.
    pub incomplete: bool,
    /// The tree's warnings (orphans, parent cycles, clock skew), as sentences.
    pub warnings: Vec<String>,
    pub rows: Vec<SpanRow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceCount {
    pub service: String,
    /// Its `ServiceId`, for a colour that stays the same across traces.
    pub service_index: u16,
    pub spans: u32,
}

/// One span on the waterfall.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRow {
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    /// Nesting level: roots (and orphans) are 0.
    pub depth: u32,
    pub has_children: bool,
    /// Rows below this one that belong to its subtree: the rows that follow it directly.
    pub descendants: u32,
    pub service: String,
    pub service_index: u16,
    pub instance: u16,
    pub operation: String,
    pub kind: &'static str,
    pub error: bool,
    /// Not ended yet; its bar runs to the trace's latest end.
    pub open: bool,
    /// Its parent is not in the trace.
    pub orphan: bool,
    /// Start after the trace's start, and length (to the latest end when still open).
    pub start_offset: Duration,
    pub duration: Duration,
    /// The bar: its left edge and width as shares (0 to 1) of the trace's duration.
    pub bar_left: f64,
    pub bar_width: f64,
    /// Stretches of this span on the trace's critical path, as (left, width) shares of the trace.
    pub critical: Vec<(f64, f64)>,
    pub events: u32,
}

impl SpanRow {
    pub fn on_critical_path(&self) -> bool {
        !self.critical.is_empty()
    }
}

/// A span kind as OpenTelemetry spells it in lower case (Jaeger's `span.kind` tag).
pub fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

fn status_name(status: SpanStatus) -> &'static str {
    match status {
        SpanStatus::Unset => "unset",
        SpanStatus::Ok => "ok",
        SpanStatus::Error => "error",
    }
}

fn span_end(s: &Span) -> SimTime {
    s.end().unwrap_or(s.start)
}

/// Builds the trace page of one trace; None when the store has no span of it.
pub fn trace_view(t: &Telemetry, trace_id: TraceId) -> Option<TraceView> {
    let tree = TraceTree::new(t, trace_id);
    if tree.spans.is_empty() {
        return None;
    }
    let start = tree.spans.iter().map(|s| s.start).min().unwrap_or_default();
    let last = tree
        .spans
        .iter()
        .map(|s| span_end(s))
        .max()
        .unwrap_or(start);
    let duration = last.since(start);
    let share = |d: u64| d as f64 / duration.0.max(1) as f64;

    // Tree order: each root by start, then its children by start, depth first.
    let mut order: Vec<(usize, u32)> = Vec::with_capacity(tree.spans.len());
    let mut stack: Vec<(usize, u32)> = tree.roots.iter().rev().map(|&r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        order.push((i, depth));
        stack.extend(tree.children[i].iter().rev().map(|&c| (c, depth + 1)));
    }
    // Subtree sizes, children before parents (reverse tree order).
    let mut size = vec![1u32; tree.spans.len()];
    for &(i, _) in order.iter().rev() {
        if let Some(p) = tree.parent[i] {
            size[p] += size[i];
        }
    }
    let mut critical: BTreeMap<SpanId, Vec<(f64, f64)>> = BTreeMap::new();
    for section in tree.critical_path() {
        critical.entry(section.span).or_default().push((
            share(section.start.since(start).0),
            share(section.end.since(section.start).0),
        ));
    }
    for sections in critical.values_mut() {
        sections.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let rows: Vec<SpanRow> = order
        .iter()
        .map(|&(i, depth)| {
            let s = tree.spans[i];
            let end = s.end().unwrap_or(last);
            let length = end.since(s.start);
            SpanRow {
                span_id: s.span_id,
                parent: s.parent,
                depth,
                has_children: !tree.children[i].is_empty(),
                descendants: size[i] - 1,
                service: t.service_name(s.service).to_string(),
                service_index: s.service.0,
                instance: s.instance,
                operation: t.text(s.operation).to_string(),
                kind: kind_name(s.kind),
                error: s.status == SpanStatus::Error,
                open: s.end().is_none(),
                orphan: s.parent.is_some() && tree.parent[i].is_none(),
                start_offset: s.start.since(start),
                duration: length,
                bar_left: share(s.start.since(start).0),
                bar_width: share(length.0),
                critical: critical.get(&s.span_id).cloned().unwrap_or_default(),
                events: s.events.len() as u32,
            }
        })
        .collect();
    let mut services: BTreeMap<ServiceId, u32> = BTreeMap::new();
    for s in &tree.spans {
        *services.entry(s.service).or_default() += 1;
    }
    let root = tree.spans[tree.roots[0]];
    Some(TraceView {
        trace_id,
        root_service: t.service_name(root.service).to_string(),
        root_operation: t.text(root.operation).to_string(),
        start,
        duration,
        services: services
            .into_iter()
            .map(|(id, spans)| ServiceCount {
                service: t.service_name(id).to_string(),
                service_index: id.0,
                spans,
            })
            .collect(),
        depth: order.iter().map(|&(_, d)| d + 1).max().unwrap_or(0),
        errors: rows.iter().filter(|r| r.error).count() as u32,
        open: rows.iter().filter(|r| r.open).count() as u32,
        incomplete: tree.incomplete(),
        warnings: tree.warnings.iter().map(ToString::to_string).collect(),
        rows,
    })
}

impl TraceView {
    /// Indexes into `rows` of the rows shown when the subtrees under `collapsed` are folded
    /// (the collapsed span itself stays, its descendants go).
    pub fn visible_rows(&self, collapsed: &BTreeSet<SpanId>) -> Vec<u32> {
        let mut visible = Vec::with_capacity(self.rows.len());
        let mut i = 0usize;
        while i < self.rows.len() {
            visible.push(i as u32);
            let row = &self.rows[i];
            i += 1;
            if row.has_children && collapsed.contains(&row.span_id) {
                i += row.descendants as usize;
            }
        }
        visible
    }

    /// Every span with children: collapsing them all leaves the roots.
    pub fn parents(&self) -> BTreeSet<SpanId> {
        self.rows
            .iter()
            .filter(|r| r.has_children)
            .map(|r| r.span_id)
            .collect()
    }

    /// `count` ticks of the time axis, evenly from 0 to the trace's duration, as Jaeger UI
    /// draws them: each as (share of the trace, time since its start).
    pub fn ticks(&self, count: u32) -> Vec<(f64, Duration)> {
        let intervals = u64::from(count.max(2) - 1);
        (0..=intervals)
            .map(|k| {
                (
                    k as f64 / intervals as f64,
                    Duration(self.duration.0 * k / intervals),
                )
            })
            .collect()
    }

    /// The row of a span, by position in `rows`.
    pub fn row_of(&self, span: SpanId) -> Option<u32> {
        self.rows
            .iter()
            .position(|r| r.span_id == span)
            .map(|i| i as u32)
    }
}

/// The span detail panel: what one span says, with its events and its log lines.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanDetail {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub service: String,
    pub instance: u16,
    pub operation: String,
    pub kind: &'static str,
    /// `unset`, `ok` or `error`.
    pub status: &'static str,
    pub start: SimTime,
    /// After the trace's start.
    pub start_offset: Duration,
    /// None while the span is open.
    pub duration: Option<Duration>,
    /// Attributes as `key`, value text, in the span's order.
    pub attributes: Vec<(String, String)>,
    pub events: Vec<EventRow>,
    pub logs: Vec<LogRow>,
}

/// A span event (a retry, an exception) at its time after the trace's start.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub offset: Duration,
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// A log line written inside the span, at its time after the trace's start.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub offset: Duration,
    pub level: &'static str,
    pub error: bool,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// The detail of one span of a trace; None when the trace has no such span.
pub fn span_detail(t: &Telemetry, trace_id: TraceId, span_id: SpanId) -> Option<SpanDetail> {
    let index = t.index();
    let entry = index.trace(trace_id)?;
    let trace_start = entry.start;
    let s = entry
        .spans
        .iter()
        .map(|&i| &t.spans[i as usize])
        .find(|s| s.span_id == span_id)?;
    let pairs = |list: &[(crate::telemetry::Sym, crate::telemetry::Value)]| {
        list.iter()
            .map(|(k, v)| (t.text(*k).to_string(), t.value_text(v)))
            .collect::<Vec<_>>()
    };
    let logs = index
        .logs_of_trace(trace_id)
        .iter()
        .map(|&i| &t.logs[i as usize])
        .filter(|l| l.span_id == Some(span_id))
        .map(|l| LogRow {
            offset: l.time.since(trace_start),
            level: l.level.name(),
            error: l.level == Level::Error,
            message: t.text(l.message).to_string(),
            fields: pairs(&l.fields),
        })
        .collect();
    Some(SpanDetail {
        trace_id,
        span_id,
        parent: s.parent,
        service: t.service_name(s.service).to_string(),
        instance: s.instance,
        operation: t.text(s.operation).to_string(),
        kind: kind_name(s.kind),
        status: status_name(s.status),
        start: s.start,
        start_offset: s.start.since(trace_start),
        duration: s.end().map(|e| e.since(s.start)),
        attributes: pairs(t.attributes(s)),
        events: s
            .events
            .iter()
            .map(|e| EventRow {
                offset: e.time.since(trace_start),
                name: t.text(e.name).to_string(),
                attributes: pairs(&e.attributes),
            })
            .collect(),
        logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{LogLine, Value, smallvec};

    /// A trace from (id, parent, start ms, end ms) rows, every span of service `svc`.
    fn telemetry(rows: &[(u64, u64, u64, Option<u64>)]) -> Telemetry {
        let mut t = Telemetry::default();
        t.service_names.push(t.strings.intern("svc"));
        let op = t.strings.intern("GET /");
        for &(id, parent, start, end) in rows {
            let end = end.map(SimTime::from_ms);
            t.spans.push(Span::for_test(
                1,
                id,
                parent,
                op,
                SimTime::from_ms(start),
                end,
            ));
        }
        t
    }

    /// Rows as (id, depth, descendants).
    fn shape(view: &TraceView) -> Vec<(u64, u32, u32)> {
        view.rows
            .iter()
            .map(|r| (r.span_id.get(), r.depth, r.descendants))
            .collect()
    }

    fn check_visible(view: &TraceView, collapsed: &[u64], expected: &[u64]) {
        let collapsed: BTreeSet<SpanId> =
            collapsed.iter().filter_map(|&i| SpanId::new(i)).collect();
        let ids: Vec<u64> = view
            .visible_rows(&collapsed)
            .iter()
            .map(|&i| view.rows[i as usize].span_id.get())
            .collect();
        assert_eq!(ids, expected, "collapsed {collapsed:?}");
    }

    #[test]
    fn rows_come_in_tree_order_with_depth_and_subtree_sizes() {
        // 1 (0-100) ── 3 (50-80) ── 4 (55-60)
        //           └─ 2 (10-40)
        let t = telemetry(&[
            (1, 0, 0, Some(100)),
            (3, 1, 50, Some(80)),
            (4, 3, 55, Some(60)),
            (2, 1, 10, Some(40)),
        ]);
        let view = trace_view(&t, TraceId(1)).unwrap();
        assert_eq!(shape(&view), [(1, 0, 3), (2, 1, 0), (3, 1, 1), (4, 2, 0)]);
        assert_eq!(view.depth, 3);
        assert_eq!(view.duration, Duration::from_ms(100));
        assert_eq!(
            (view.root_service.as_str(), view.root_operation.as_str()),
            ("svc", "GET /")
        );
        let third = &view.rows[2];
        assert_eq!((third.bar_left, third.bar_width), (0.5, 0.3));
        assert!(view.rows[0].has_children && !view.rows[1].has_children);
        check_visible(&view, &[], &[1, 2, 3, 4]);
        check_visible(&view, &[3], &[1, 2, 3]);
        check_visible(&view, &[1], &[1]);
        check_visible(&view, &[4], &[1, 2, 3, 4]); // a leaf has nothing to fold
        check_visible(
            &view,
            &view.parents().iter().map(|s| s.get()).collect::<Vec<_>>(),
            &[1],
        );
        assert_eq!(view.row_of(SpanId::new(4).unwrap()), Some(3));
        assert!(trace_view(&t, TraceId(2)).is_none());
    }

    #[test]
    fn critical_path_sections_are_shares_of_the_trace_on_their_rows() {
        let t = telemetry(&[
            (1, 0, 0, Some(100)),
            (2, 1, 10, Some(40)),
            (3, 1, 50, Some(80)),
        ]);
        let view = trace_view(&t, TraceId(1)).unwrap();
        let root = &view.rows[0];
        // The root is critical before 2, between 2 and 3, and after 3; in time order.
        assert_eq!(root.critical, [(0.0, 0.1), (0.4, 0.1), (0.8, 0.2)]);
        assert_eq!(view.rows[1].critical, [(0.1, 0.3)]);
        assert_eq!(view.rows[2].critical, [(0.5, 0.3)]);
        assert!(view.rows.iter().all(SpanRow::on_critical_path));
        let ticks = view.ticks(5);
        assert_eq!(ticks.len(), 5);
        assert_eq!(ticks[1], (0.25, Duration::from_ms(25)));
        assert_eq!(ticks[4], (1.0, Duration::from_ms(100)));
    }

    #[test]
    fn orphans_and_open_spans_are_marked() {
        let t = telemetry(&[
            (1, 0, 0, Some(50)),
            (2, 9, 20, None), // parent 9 missing, still open
        ]);
        let view = trace_view(&t, TraceId(1)).unwrap();
        assert!(view.incomplete);
        assert_eq!(view.warnings.len(), 1);
        assert!(
            view.warnings[0].starts_with("orphan"),
            "{:?}",
            view.warnings
        );
        let orphan = &view.rows[1];
        assert!(orphan.orphan && orphan.open && orphan.depth == 0);
        assert_eq!(
            orphan.duration,
            Duration::from_ms(30),
            "open: to the latest end"
        );
        assert_eq!(view.open, 1);
    }

    #[test]
    fn span_detail_has_attributes_events_and_the_span_s_own_logs() {
        let mut t = telemetry(&[(1, 0, 10, Some(100)), (2, 1, 20, Some(60))]);
        let key = t.strings.intern("http.response.status_code");
        let retry = t.strings.intern("retry");
        let msg = t.strings.intern("call failed, retrying");
        let attempt = t.strings.intern("attempt");
        t.attributes_mut(1).push((key, Value::int(503)));
        t.spans[1].status = SpanStatus::Error;
        t.spans[1].events.push(crate::telemetry::SpanEvent {
            time: SimTime::from_ms(30),
            name: retry,
            attributes: vec![(attempt, Value::int(2))],
        });
        for (span, level) in [(2, Level::Warn), (1, Level::Info)] {
            t.logs.push(LogLine {
                time: SimTime::from_ms(35),
                clock_offset_us: 0,
                zone_minutes: 0,
                service: ServiceId(0),
                instance: 0,
                level,
                trace_id: Some(TraceId(1)),
                span_id: SpanId::new(span),
                message: msg,
                fields: smallvec![(attempt, Value::int(2))],
            });
        }
        let d = span_detail(&t, TraceId(1), SpanId::new(2).unwrap()).unwrap();
        assert_eq!(d.status, "error");
        assert_eq!(d.kind, "server");
        assert_eq!(d.start_offset, Duration::from_ms(10));
        assert_eq!(d.duration, Some(Duration::from_ms(40)));
        assert_eq!(d.parent, Some(SpanId::new(1).unwrap()));
        assert_eq!(
            d.attributes,
            [("http.response.status_code".to_string(), "503".to_string())]
        );
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].offset, Duration::from_ms(20));
        assert_eq!(d.events[0].attributes[0].1, "2");
        assert_eq!(d.logs.len(), 1, "only the span's own lines");
        assert_eq!(
            (d.logs[0].level, d.logs[0].offset),
            ("warn", Duration::from_ms(25))
        );
        assert!(span_detail(&t, TraceId(1), SpanId::new(7).unwrap()).is_none());
    }

    #[test]
    fn a_run_s_slow_trace_reads_as_a_waterfall() {
        let t = crate::run(&crate::mesh::default_mesh(40.0, 3_000), 3).unwrap();
        let summary = &crate::query::search_traces(
            &t,
            &crate::query::TraceQuery {
                service: Some("payments".into()),
                limit: 1,
                ..Default::default()
            },
        )[0];
        let view = trace_view(&t, summary.trace_id).unwrap();
        assert_eq!(view.rows.len() as u32, summary.spans);
        assert_eq!(view.duration, summary.duration);
        assert_eq!(view.rows[0].descendants + 1, summary.spans);
        assert!(view.rows[0].on_critical_path());
        let span_total: u32 = view.services.iter().map(|s| s.spans).sum();
        assert_eq!(span_total, summary.spans);
        // Every row sits inside the trace; a parent's subtree follows it directly.
        for (i, r) in view.rows.iter().enumerate() {
            assert!(r.bar_left >= 0.0 && r.bar_left + r.bar_width <= 1.0 + 1e-9);
            for child in &view.rows[i + 1..=i + r.descendants as usize] {
                assert!(child.depth > r.depth);
            }
        }
    }
}
