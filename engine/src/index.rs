//! Indexes over one run's telemetry, so queries touch only what can match: spans by trace, by
//! service and instance and by attribute; traces by start time; log lines by stream (service,
//! instance, level) and by trace. `Telemetry::index` catches them up with what was appended.
//!
//! Keys a span has from the moment the simulation hands control back (trace, ids, service,
//! instance, operation, kind, start) are indexed when the span is first seen; its end-time keys
//! (attributes, status) once it has ended, after which the simulation never changes it. Spans
//! still open are listed apart, so a query checks those few directly. Log lines never change.

use std::cell::{Ref, RefCell};
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;

use crate::telemetry::{Level, ServiceId, SpanStatus, Sym, Telemetry, TraceId, Value};
use crate::time::SimTime;

/// An attribute value as an index key (`Value` itself has no order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ValueKey {
    Str(Sym),
    Int(i64),
    Bool(bool),
}

impl ValueKey {
    pub fn of(value: &Value) -> ValueKey {
        match value {
            Value::Str(s) => ValueKey::Str(*s),
            Value::Int(i) => ValueKey::Int(i.get()),
            Value::Bool(b) => ValueKey::Bool(*b),
        }
    }
}

/// A log stream: the labels a LogQL stream selector sees (`service`, `instance`, `level`).
pub type Stream = (ServiceId, u16, Level);

/// Where one trace's spans are.
#[derive(Clone, Debug)]
pub struct TraceEntry {
    pub id: TraceId,
    /// The earliest start among its spans: the trace's start.
    pub start: SimTime,
    /// Its spans, as indexes into `Telemetry::spans`, ascending (the store's order).
    pub spans: Vec<u32>,
}

/// The indexes. Every list of spans or lines holds indexes into `Telemetry::spans` or
/// `Telemetry::logs`, never copies.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Spans `[0, spans_seen)` and lines `[0, logs_seen)` are indexed.
    spans_seen: u32,
    logs_seen: u32,
    /// Spans that were still open when last seen; their end-time keys are not indexed yet.
    open: Vec<u32>,
    /// Traces in the order their first span appeared.
    traces: Vec<TraceEntry>,
    trace_numbers: BTreeMap<TraceId, u32>,
    /// For each span, the number of its trace in `traces`.
    span_trace: Vec<u32>,
    /// Trace numbers by start, newest first; ties by trace id, ascending.
    newest_first: Vec<u32>,
    by_instance: BTreeMap<(ServiceId, u16), Vec<u32>>,
    /// Ended spans by attribute; a span is listed once per distinct (key, value) it carries.
    by_attribute: BTreeMap<(Sym, ValueKey), Vec<u32>>,
    /// Ended spans with status Error.
    errors: Vec<u32>,
    streams: BTreeMap<Stream, Vec<u32>>,
    logs_by_trace: BTreeMap<TraceId, Vec<u32>>,
    /// Whether some line is earlier than the one before it (imported logs can be).
    logs_unordered: bool,
}

impl Index {
    /// Whether nothing was appended, and no open span ended, since the last refresh.
    fn is_current(&self, t: &Telemetry) -> bool {
        self.spans_seen as usize == t.spans.len()
            && self.logs_seen as usize == t.logs.len()
            && self
                .open
                .iter()
                .all(|&i| t.spans.get(i as usize).is_none_or(|s| s.end().is_none()))
    }

    /// Indexes what was appended since the last refresh and the spans that ended since. Costs
    /// the new spans and lines plus the spans open last time, and a merge of the trace order.
    fn refresh(&mut self, t: &Telemetry) {
        if (self.spans_seen as usize) > t.spans.len() || (self.logs_seen as usize) > t.logs.len() {
            // The store shrank, which only a hand-edited store does: start over.
            *self = Index::default();
        }
        let mut open = std::mem::take(&mut self.open);
        open.retain(|&i| {
            let ended = t.spans[i as usize].end().is_some();
            if ended {
                self.index_ended(t, i);
            }
            !ended
        });
        self.open = open;

        let first_new_trace = self.traces.len() as u32;
        let mut moved: Vec<u32> = Vec::new();
        for i in self.spans_seen..t.spans.len() as u32 {
            let s = &t.spans[i as usize];
            let number = match self.trace_numbers.get(&s.trace_id) {
                Some(&n) => {
                    let entry = &mut self.traces[n as usize];
                    entry.spans.push(i);
                    if s.start < entry.start && n < first_new_trace {
                        moved.push(n);
                    }
                    entry.start = entry.start.min(s.start);
                    n
                }
                None => {
                    let n = self.traces.len() as u32;
                    self.traces.push(TraceEntry {
                        id: s.trace_id,
                        start: s.start,
                        spans: vec![i],
                    });
                    self.trace_numbers.insert(s.trace_id, n);
                    n
                }
            };
            self.span_trace.push(number);
            self.by_instance
                .entry((s.service, s.instance))
                .or_default()
                .push(i);
            if s.end().is_some() {
                self.index_ended(t, i);
            } else {
                self.open.push(i);
            }
        }
        self.spans_seen = t.spans.len() as u32;
        moved.extend(first_new_trace..self.traces.len() as u32);
        if !moved.is_empty() {
            self.reorder(moved);
        }

        for i in self.logs_seen..t.logs.len() as u32 {
            let line = &t.logs[i as usize];
            if i > 0 && line.time < t.logs[i as usize - 1].time {
                self.logs_unordered = true;
            }
            self.streams
                .entry((line.service, line.instance, line.level))
                .or_default()
                .push(i);
            if let Some(trace) = line.trace_id {
                self.logs_by_trace.entry(trace).or_default().push(i);
            }
        }
        self.logs_seen = t.logs.len() as u32;
    }

    /// Indexes the end-time keys of a span that has ended.
    fn index_ended(&mut self, t: &Telemetry, i: u32) {
        let s = &t.spans[i as usize];
        for (key, value) in t.attributes(s) {
            let list = self
                .by_attribute
                .entry((*key, ValueKey::of(value)))
                .or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
        if s.status == SpanStatus::Error {
            self.errors.push(i);
        }
    }

    /// Puts new traces, and traces whose start moved earlier, in their place in `newest_first`.
    fn reorder(&mut self, mut moved: Vec<u32>) {
        let traces = &self.traces;
        let key = |n: &u32| (Reverse(traces[*n as usize].start), traces[*n as usize].id);
        moved.sort_unstable_by_key(key);
        moved.dedup();
        let mut is_moved = vec![false; traces.len()];
        for &n in &moved {
            is_moved[n as usize] = true;
        }
        let old = std::mem::take(&mut self.newest_first);
        let mut merged = Vec::with_capacity(traces.len());
        let mut kept = old
            .into_iter()
            .filter(|&n| !is_moved[n as usize])
            .peekable();
        let mut moved = moved.into_iter().peekable();
        loop {
            let next = match (kept.peek(), moved.peek()) {
                (Some(a), Some(b)) if key(a) <= key(b) => kept.next(),
                (Some(_), Some(_)) | (None, Some(_)) => moved.next(),
                (Some(_), None) => kept.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        self.newest_first = merged;
    }

    /// Traces in the order their first span appeared.
    pub fn traces(&self) -> &[TraceEntry] {
        &self.traces
    }

    /// A trace by its number (its position in `traces()`).
    pub fn trace_entry(&self, number: u32) -> &TraceEntry {
        &self.traces[number as usize]
    }

    /// A trace by id, in O(log traces).
    pub fn trace(&self, id: TraceId) -> Option<&TraceEntry> {
        self.trace_numbers
            .get(&id)
            .map(|&n| &self.traces[n as usize])
    }

    /// The number of the trace a span belongs to.
    pub fn trace_of_span(&self, span: u32) -> u32 {
        self.span_trace[span as usize]
    }

    /// Numbers of the traces that start in [from, until), newest first (ties by trace id).
    pub fn traces_newest_first(&self, from: Option<SimTime>, until: Option<SimTime>) -> &[u32] {
        let start = |n: &u32| self.traces[*n as usize].start;
        let begin = until.map_or(0, |u| self.newest_first.partition_point(|n| start(n) >= u));
        let end = from.map_or(self.newest_first.len(), |f| {
            self.newest_first.partition_point(|n| start(n) >= f)
        });
        &self.newest_first[begin..end.max(begin)]
    }

    /// Spans of a service, one list per instance, each ascending.
    pub fn spans_of_service(&self, service: ServiceId) -> impl Iterator<Item = &[u32]> + '_ {
        self.by_instance
            .range((service, 0)..=(service, u16::MAX))
            .map(|(_, list)| list.as_slice())
    }

    /// Spans of one instance of a service, ascending.
    pub fn spans_of_instance(&self, service: ServiceId, instance: u16) -> &[u32] {
        self.by_instance
            .get(&(service, instance))
            .map_or(&[], Vec::as_slice)
    }

    /// Ended spans that carry the attribute `key` with `value`, in the order they ended.
    pub fn ended_spans_with(&self, key: Sym, value: ValueKey) -> &[u32] {
        self.by_attribute
            .get(&(key, value))
            .map_or(&[], Vec::as_slice)
    }

    /// Ended spans whose status is Error, in the order they ended.
    pub fn ended_error_spans(&self) -> &[u32] {
        &self.errors
    }

    /// Spans still open at the last refresh: none of their end-time keys is indexed.
    pub fn open_spans(&self) -> &[u32] {
        &self.open
    }

    /// Log streams with their lines, ascending.
    pub fn streams(&self) -> impl Iterator<Item = (Stream, &[u32])> + '_ {
        self.streams.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// Lines tied to a trace, ascending.
    pub fn logs_of_trace(&self, id: TraceId) -> &[u32] {
        self.logs_by_trace.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Whether every log line is at or after the one before it, so a time range is a
    /// binary search in any list of lines.
    pub fn logs_in_time_order(&self) -> bool {
        !self.logs_unordered
    }
}

/// The index held inside `Telemetry`, refreshed on demand. A clone starts empty and is
/// rebuilt when first asked for.
#[derive(Default)]
pub(crate) struct IndexCell(RefCell<Index>);

impl IndexCell {
    /// The index, first caught up with `t`. While the returned guard lives `t` cannot change
    /// (it is borrowed), so a nested call finds the index current and only reads it.
    pub(crate) fn get<'a>(&'a self, t: &Telemetry) -> Ref<'a, Index> {
        if !self.0.borrow().is_current(t) {
            self.0.borrow_mut().refresh(t);
        }
        self.0.borrow()
    }
}

impl Clone for IndexCell {
    fn clone(&self) -> IndexCell {
        IndexCell::default()
    }
}

impl fmt::Debug for IndexCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexCell")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Span;

    fn span(t: &mut Telemetry, trace: u128, id: u64, start: u64, end: Option<u64>) {
        let key = t.strings.intern("http.response.status_code");
        let s = Span::for_test(trace, id, 0, Sym(0), SimTime(start), end.map(SimTime));
        t.push_span(s, [(key, Value::int(200))]);
    }

    fn newest_first(t: &Telemetry) -> Vec<u128> {
        let index = t.index();
        let order = index.traces_newest_first(None, None);
        order.iter().map(|&n| index.trace_entry(n).id.0).collect()
    }

    #[test]
    fn traces_keep_their_start_order_as_spans_arrive() {
        let mut t = Telemetry::default();
        t.service_names.push(t.strings.intern("svc"));
        span(&mut t, 1, 1, 10, Some(20));
        span(&mut t, 2, 2, 5, None);
        assert_eq!(newest_first(&t), [1, 2]);
        // A span that starts before its trace's first one moves the trace.
        span(&mut t, 1, 3, 1, Some(4));
        span(&mut t, 3, 4, 5, Some(6));
        assert_eq!(newest_first(&t), [2, 3, 1], "ties by trace id");
        let index = t.index();
        assert_eq!(index.traces_newest_first(Some(SimTime(5)), None).len(), 2);
        assert_eq!(index.traces_newest_first(None, Some(SimTime(5))).len(), 1);
        assert_eq!(index.trace(TraceId(1)).unwrap().spans, [0, 2]);
        assert_eq!(index.trace_of_span(3), 2);
    }

    #[test]
    fn an_open_span_is_indexed_by_attribute_once_it_ends() {
        let mut t = Telemetry::default();
        t.service_names.push(t.strings.intern("svc"));
        span(&mut t, 1, 1, 10, None);
        let key = t.strings.lookup("http.response.status_code").unwrap();
        let ok = ValueKey::Int(200);
        assert_eq!(t.index().open_spans(), [0]);
        assert!(t.index().ended_spans_with(key, ok).is_empty());
        t.spans[0].set_end(SimTime(12));
        t.spans[0].status = SpanStatus::Error;
        assert!(t.index().open_spans().is_empty());
        assert_eq!(t.index().ended_spans_with(key, ok), [0]);
        assert_eq!(t.index().ended_error_spans(), [0]);
        assert_eq!(
            t.clone().index().ended_spans_with(key, ok),
            [0],
            "a clone rebuilds"
        );
    }
}
