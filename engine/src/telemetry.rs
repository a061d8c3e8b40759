//! What a run emits, in the OpenTelemetry model: spans (with attributes and events) and
//! structured log lines, with strings interned. Also the canonical encoding of it all and its
//! SHA-256 digest, which tests pin to prove runs are byte-identical natively and in wasm.

use std::cell::Ref;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;

use sha2::{Digest, Sha256};
use smallvec::SmallVec;
pub use smallvec::smallvec;

use crate::index::{Index, IndexCell};
use crate::metrics::Metrics;
use crate::time::SimTime;

/// 16-byte trace id, shown as 32 lower-case hex digits (W3C trace context).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceId(pub u128);

/// 8-byte span id, shown as 16 hex digits. Never zero (W3C Trace Context: an all-zero id is
/// invalid), so an `Option<SpanId>`, such as a root's parent, takes 8 bytes and not 16.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpanId(pub NonZeroU64);

impl SpanId {
    /// The id, or None for zero, which is no span id.
    pub const fn new(id: u64) -> Option<SpanId> {
        match NonZeroU64::new(id) {
            Some(id) => Some(SpanId(id)),
            None => None,
        }
    }

    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

/// Index of a service in the scenario's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub u16);

/// An interned string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sym(pub u32);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.get())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanStatus {
    Unset,
    Ok,
    Error,
}

/// An attribute's or a log field's value. Build an integer with [`Value::int`] and read one
/// with [`Value::as_int`] (or `Int64::get` when matching).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Str(Sym),
    Int(Int64),
    Bool(bool),
}

impl Value {
    pub const fn int(n: i64) -> Value {
        Value::Int(Int64::new(n))
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(i.get()),
            _ => None,
        }
    }
}

/// A 64-bit integer (the OpenTelemetry int), held as two 32-bit halves so that a [`Value`]
/// aligns to 4 bytes: a key and its value then take 16 bytes where an `i64` would pad them to
/// 24, and attributes are much of a span's memory. Lossless: `get` gives back any `i64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Int64([u32; 2]);

impl Int64 {
    pub const fn new(n: i64) -> Int64 {
        Int64([n as u32, (n >> 32) as u32])
    }

    pub const fn get(self) -> i64 {
        (self.0[0] as i64) | ((self.0[1] as i64) << 32)
    }
}

impl From<i64> for Int64 {
    fn from(n: i64) -> Int64 {
        Int64::new(n)
    }
}

impl fmt::Debug for Int64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

impl fmt::Display for Int64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

// A key and value in 16 bytes, natively and in wasm (see `Int64`).
const _: () = assert!(std::mem::size_of::<(Sym, Value)>() == 16);

/// Where a span's attributes are in its telemetry's one list of them: `len` from `start`, with
/// room for `cap`. Read them with [`Telemetry::attributes`] and add them with
/// [`Telemetry::attributes_mut`]. (One list for every span saves an allocation per span and
/// 32 bytes in each: spans are most of a run's memory, and half of them carry five or more.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    start: u32,
    len: u16,
    cap: u16,
}

impl Attributes {
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A span's attributes, to add to: see [`Telemetry::attributes_mut`].
pub struct AttributesMut<'a> {
    range: &'a mut Attributes,
    list: &'a mut Vec<(Sym, Value)>,
}

/// What fills room reserved and not used yet.
const NO_ATTRIBUTE: (Sym, Value) = (Sym(0), Value::Bool(false));

impl AttributesMut<'_> {
    /// Makes room for `more` attributes, exactly: a span that needs more room than it has
    /// moves to the end of the list, and leaves its old room unused, unless it is there already.
    pub fn reserve_exact(&mut self, more: usize) {
        let r = *self.range;
        let needed = usize::from(r.len) + more;
        if needed <= usize::from(r.cap) {
            return;
        }
        let cap = u16::try_from(needed).unwrap_or(u16::MAX);
        let (start, end) = (r.start as usize, self.list.len());
        if r.cap == 0 {
            // A new span's first room (the common case): at the end, nothing to move.
            self.list
                .extend(std::iter::repeat_n(NO_ATTRIBUTE, usize::from(cap)));
            *self.range = Attributes {
                start: u32::try_from(end).unwrap_or(u32::MAX),
                len: 0,
                cap,
            };
            return;
        }
        if start + usize::from(r.cap) == end {
            // The last span's room: grow it where it is.
            self.list.resize(start + usize::from(cap), NO_ATTRIBUTE);
        } else {
            // A span's first room is at the end; more room moves it there.
            self.list.reserve(usize::from(cap));
            for i in start..start + usize::from(r.len) {
                self.list.push(self.list[i]);
            }
            self.list.resize(end + usize::from(cap), NO_ATTRIBUTE);
            self.range.start = u32::try_from(end).unwrap_or(u32::MAX);
        }
        self.range.cap = cap;
    }

    /// Adds one attribute (a span keeps at most 65,535: more are dropped).
    pub fn push(&mut self, attribute: (Sym, Value)) {
        if self.range.len == u16::MAX {
            return;
        }
        if self.range.len == self.range.cap {
            // Unplanned: room for a few more, so a run of pushes does not move it each time.
            self.reserve_exact(usize::from(self.range.len).clamp(1, 4));
        }
        self.list[self.range.start as usize + usize::from(self.range.len)] = attribute;
        self.range.len += 1;
    }

    pub fn extend(&mut self, attributes: impl IntoIterator<Item = (Sym, Value)>) {
        let attributes = attributes.into_iter();
        self.reserve_exact(attributes.size_hint().0);
        for a in attributes {
            self.push(a);
        }
    }

    /// Drops them all, keeping the room.
    pub fn clear(&mut self) {
        self.range.len = 0;
    }
}

/// A log line's fields: three inline, as most lines carry three; more go to the heap.
pub type Fields = SmallVec<[(Sym, Value); 3]>;

/// Something that happened at an instant inside a span: a retry, a timeout, an exception.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanEvent {
    pub time: SimTime,
    pub name: Sym,
    pub attributes: Vec<(Sym, Value)>,
}

/// A span's events. Most spans have none, so this is one pointer, and the list is boxed
/// only when the first event comes: it reads as a slice, and `push` adds one.
#[derive(Clone, Debug, Default, PartialEq)]
#[allow(clippy::box_collection)] // on purpose: a thin pointer in every span, the Vec only in some
pub struct Events(Option<Box<Vec<SpanEvent>>>);

impl Events {
    pub fn new() -> Events {
        Events(None)
    }

    pub fn push(&mut self, event: SpanEvent) {
        // Spans have one event or a few: grow one at a time, no slack.
        let events = self.0.get_or_insert_default();
        events.reserve_exact(1);
        events.push(event);
    }

    /// Bytes it holds on the heap, the events' own attributes left out.
    pub fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |v| {
            std::mem::size_of::<Vec<SpanEvent>>() + v.capacity() * std::mem::size_of::<SpanEvent>()
        })
    }
}

impl std::ops::Deref for Events {
    type Target = [SpanEvent];

    fn deref(&self) -> &[SpanEvent] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a SpanEvent;
    type IntoIter = std::slice::Iter<'a, SpanEvent>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl FromIterator<SpanEvent> for Events {
    fn from_iter<I: IntoIterator<Item = SpanEvent>>(iter: I) -> Events {
        let events: Vec<SpanEvent> = iter.into_iter().collect();
        Events((!events.is_empty()).then(|| Box::new(events)))
    }
}

/// One unit of work. The simulation fills in `end`, `status`, the attributes and events as the
/// work goes on; once `end` is set it changes nothing more (the index relies on this).
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub service: ServiceId,
    pub instance: u16,
    pub operation: Sym,
    pub kind: SpanKind,
    pub start: SimTime,
    /// When it ended, or `Span::OPEN` while it is still open (only seen mid-run, through
    /// `step_until`): read it with [`Span::end`]. (A time with a value set aside, where an
    /// `Option<SimTime>` would take 8 bytes more in every span.)
    pub(crate) end_time: SimTime,
    pub status: SpanStatus,
    pub attributes: Attributes,
    pub events: Events,
}

#[cfg(test)]
impl Span {
    /// A server span of service 0 with no attributes, for traces built by hand in tests; `end`
    /// None leaves it open, `parent` 0 makes it a root.
    pub(crate) fn for_test(
        trace: u128,
        id: u64,
        parent: u64,
        operation: Sym,
        start: SimTime,
        end: Option<SimTime>,
    ) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId::new(id).expect("test span ids are not zero"),
            parent: SpanId::new(parent),
            service: ServiceId(0),
            instance: 0,
            operation,
            kind: SpanKind::Server,
            start,
            end_time: end.unwrap_or(Span::OPEN),
            status: SpanStatus::Unset,
            attributes: Default::default(),
            events: Default::default(),
        }
    }
}

impl Span {
    /// `end_time` of a span still open.
    pub(crate) const OPEN: SimTime = SimTime(u64::MAX);

    /// When the span ended; None while it is still open (only seen mid-run).
    pub fn end(&self) -> Option<SimTime> {
        (self.end_time != Span::OPEN).then_some(self.end_time)
    }

    /// Ends the span at `time` (the last microsecond there is is taken as the one before).
    pub fn set_end(&mut self, time: SimTime) {
        self.end_time = SimTime(time.0.min(u64::MAX - 1));
    }

    /// The W3C `traceparent` header this span's request arrived with (version 00, the trace,
    /// the caller's span as parent, sampled): server and consumer spans with a remote parent.
    /// Derived, not stored: a span started without one (a root, or context dropped) has none.
    pub fn traceparent(&self) -> Option<String> {
        let parent = self.parent?;
        matches!(self.kind, SpanKind::Server | SpanKind::Consumer)
            .then(|| format!("00-{}-{parent}-01", self.trace_id))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLine {
    /// The node's own reading of the time, in microseconds since the Unix epoch: what its
    /// log timestamp says, skew included.
    pub fn node_unix_us(&self) -> u64 {
        self.time
            .unix_us()
            .saturating_add_signed(self.clock_offset_us)
    }
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One structured log line: a message plus typed fields, tied to a trace when there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// True (simulation) time of the event.
    pub time: SimTime,
    /// How far the node's clock was from true time when it wrote the line, in microseconds.
    pub clock_offset_us: i64,
    /// The zone the node writes its timestamps in, minutes east of UTC (0: it logs UTC).
    pub zone_minutes: i16,
    pub service: ServiceId,
    pub instance: u16,
    pub level: Level,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub message: Sym,
    pub fields: Fields,
}

/// Interns strings so each distinct one is stored once; symbols are numbered in first-seen
/// order, which is deterministic because the simulation is.
#[derive(Default, Debug, Clone)]
pub struct Strings {
    by_text: BTreeMap<String, Sym>,
    texts: Vec<String>,
}

impl Strings {
    pub fn intern(&mut self, text: &str) -> Sym {
        if let Some(sym) = self.by_text.get(text) {
            return *sym;
        }
        let sym = Sym(u32::try_from(self.texts.len()).expect("fewer than 2^32 distinct strings"));
        self.texts.push(text.to_string());
        self.by_text.insert(text.to_string(), sym);
        sym
    }

    pub fn get(&self, sym: Sym) -> &str {
        self.texts.get(sym.0 as usize).map_or("", String::as_str)
    }

    pub fn lookup(&self, text: &str) -> Option<Sym> {
        self.by_text.get(text).copied()
    }
}

/// Everything one run emitted, in the order it happened.
#[derive(Default, Debug, Clone)]
pub struct Telemetry {
    pub strings: Strings,
    pub service_names: Vec<Sym>,
    pub spans: Vec<Span>,
    /// Every span's attributes, each span's together (see [`Attributes`]).
    attribute_list: Vec<(Sym, Value)>,
    pub logs: Vec<LogLine>,
    pub metrics: Metrics,
    /// Indexes over spans and logs, caught up by `index()`; not telemetry (not in the digest).
    index: IndexCell,
}

impl Telemetry {
    /// The indexes over spans and logs, first caught up with whatever was appended or ended
    /// since the last call (mid-run too). The first call after a run builds them all.
    pub fn index(&self) -> Ref<'_, Index> {
        self.index.get(self)
    }

    /// A span's attributes, in the order they were added.
    pub fn attributes(&self, span: &Span) -> &[(Sym, Value)] {
        let r = span.attributes;
        self.attribute_list
            .get(r.start as usize..r.start as usize + usize::from(r.len))
            .unwrap_or(&[])
    }

    /// Span number `span`'s attributes, to add to.
    pub fn attributes_mut(&mut self, span: usize) -> AttributesMut<'_> {
        AttributesMut {
            range: &mut self.spans[span].attributes,
            list: &mut self.attribute_list,
        }
    }

    /// Pushes a span with these attributes; returns its number.
    pub fn push_span(
        &mut self,
        span: Span,
        attributes: impl IntoIterator<Item = (Sym, Value)>,
    ) -> usize {
        let n = self.spans.len();
        let mut span = span;
        span.attributes = Attributes::default();
        self.spans.push(span);
        self.attributes_mut(n).extend(attributes);
        n
    }

    /// Bytes the list of every span's attributes takes, room reserved included.
    pub fn attribute_bytes(&self) -> usize {
        self.attribute_list.capacity() * std::mem::size_of::<(Sym, Value)>()
    }

    /// The list every span's attributes are in, for reserving room ahead.
    pub(crate) fn attribute_list(&mut self) -> &mut Vec<(Sym, Value)> {
        &mut self.attribute_list
    }

    pub fn service_name(&self, id: ServiceId) -> &str {
        self.service_names
            .get(usize::from(id.0))
            .map_or("", |s| self.strings.get(*s))
    }

    pub fn text(&self, sym: Sym) -> &str {
        self.strings.get(sym)
    }

    /// An attribute or field value as text, the way logs and search boxes spell it.
    pub fn value_text(&self, value: &Value) -> String {
        match value {
            Value::Str(s) => self.text(*s).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }

    /// SHA-256 of the canonical encoding: every span then every log line, fields in order,
    /// strings as their UTF-8 bytes (not symbols, so interning order cannot hide a change).
    pub fn digest_hex(&self) -> String {
        let mut h = Canonical {
            hash: Sha256::new(),
            strings: &self.strings,
        };
        h.u64(self.spans.len() as u64);
        for s in &self.spans {
            h.bytes(&s.trace_id.0.to_le_bytes());
            h.u64(s.span_id.get());
            h.u64(s.parent.map_or(0, SpanId::get));
            h.text(self.service_names[usize::from(s.service.0)]);
            h.u64(u64::from(s.instance));
            h.text(s.operation);
            h.u64(s.kind as u64);
            h.u64(s.start.0);
            h.u64(s.end_time.0); // u64::MAX while open
            h.u64(s.status as u64);
            h.attributes(self.attributes(s));
            h.u64(s.events.len() as u64);
            for e in &s.events {
                h.u64(e.time.0);
                h.text(e.name);
                h.attributes(&e.attributes);
            }
        }
        h.u64(self.logs.len() as u64);
        for l in &self.logs {
            h.u64(l.time.0);
            h.bytes(&l.clock_offset_us.to_le_bytes());
            h.bytes(&l.zone_minutes.to_le_bytes());
            h.text(self.service_names[usize::from(l.service.0)]);
            h.u64(u64::from(l.instance));
            h.u64(l.level as u64);
            h.bytes(&l.trace_id.map_or(0, |t| t.0).to_le_bytes());
            h.u64(l.span_id.map_or(0, SpanId::get));
            h.text(l.message);
            h.attributes(&l.fields);
        }
        h.metrics(&self.metrics, &self.service_names);
        h.hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

struct Canonical<'a> {
    hash: Sha256,
    strings: &'a Strings,
}

impl Canonical<'_> {
    fn metrics(&mut self, m: &Metrics, services: &[Sym]) {
        let service = |id: ServiceId| services[usize::from(id.0)];
        self.u64(m.bucket.0);
        self.u64(m.requests.len() as u64);
        for (((s, instance, route), bucket), stats) in &m.requests {
            self.text(service(*s));
            self.u64(u64::from(*instance));
            self.text(*route);
            self.u64(u64::from(*bucket));
            self.u64(u64::from(stats.count));
            self.u64(u64::from(stats.errors));
            self.u64(stats.latency_sum_us);
            for (bound, count) in stats.latency.buckets() {
                self.u64(bound.unwrap_or(u64::MAX));
                self.u64(u64::from(count));
            }
        }
        self.u64(m.retries.len() as u64);
        for ((s, instance, bucket), n) in &m.retries {
            self.text(service(*s));
            self.u64(u64::from(*instance));
            self.u64(u64::from(*bucket));
            self.u64(u64::from(*n));
        }
        self.u64(m.instances.len() as u64);
        for i in &m.instances {
            self.u64(u64::from(i.bucket));
            self.text(service(i.service));
            self.u64(u64::from(i.instance));
            self.u64(u64::from(i.busy_workers));
            self.u64(u64::from(i.queue_depth));
            self.u64(u64::from(i.pool_in_use));
            self.u64(u64::from(i.pool_waiters));
        }
        self.u64(m.breakers.len() as u64);
        for b in &m.breakers {
            self.u64(u64::from(b.bucket));
            self.text(service(b.service));
            self.u64(u64::from(b.instance));
            self.text(service(b.peer));
            self.text(b.operation);
            self.u64(u64::from(b.state));
        }
        self.u64(m.runtime.len() as u64);
        for r in &m.runtime {
            self.u64(u64::from(r.bucket));
            self.text(service(r.service));
            self.u64(u64::from(r.instance));
            self.u64(r.heap_used_bytes);
            self.u64(r.heap_max_bytes);
            self.u64(u64::from(r.gc_collections));
            self.u64(r.gc_pause_us);
        }
        self.u64(m.caches.len() as u64);
        for c in &m.caches {
            self.u64(u64::from(c.bucket));
            self.text(service(c.service));
            self.u64(u64::from(c.keys));
            self.u64(c.hits_total);
            self.u64(c.misses_total);
        }
        self.u64(m.queues.len() as u64);
        for q in &m.queues {
            self.u64(u64::from(q.bucket));
            self.text(service(q.queue));
            self.text(q.topic);
            self.text(service(q.group));
            self.u64(u64::from(q.depth));
            self.u64(u64::from(q.unacked));
            self.u64(q.lag_us);
            self.u64(q.published_total);
            self.u64(q.consumed_total);
            self.u64(q.redelivered_total);
            self.u64(q.dead_lettered_total);
        }
        self.u64(m.databases.len() as u64);
        for d in &m.databases {
            self.u64(u64::from(d.bucket));
            self.text(service(d.service));
            self.u64(u64::from(d.instance));
            self.u64(u64::from(d.active));
            self.u64(d.xact_commit_total);
            self.u64(d.xact_rollback_total);
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.hash.update(b);
    }
    fn u64(&mut self, n: u64) {
        self.hash.update(n.to_le_bytes());
    }
    fn text(&mut self, sym: Sym) {
        let t = self.strings.get(sym);
        self.u64(t.len() as u64);
        self.hash.update(t.as_bytes());
    }
    fn attributes(&mut self, attributes: &[(Sym, Value)]) {
        self.u64(attributes.len() as u64);
        for (k, v) in attributes {
            self.text(*k);
            match v {
                Value::Str(s) => {
                    self.u64(0);
                    self.text(*s);
                }
                Value::Int(i) => {
                    self.u64(1);
                    self.bytes(&i.get().to_le_bytes());
                }
                Value::Bool(b) => {
                    self.u64(2);
                    self.u64(u64::from(*b));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_int64_gives_back_every_i64() {
        for n in [
            0,
            1,
            -1,
            i64::MIN,
            i64::MAX,
            1 << 32,
            -(1 << 32),
            u32::MAX as i64,
            0x1234_5678_9abc_def0,
        ] {
            assert_eq!(Int64::new(n).get(), n);
            assert_eq!(Value::int(n).as_int(), Some(n));
            assert_eq!(
                format!("{:?} {}", Value::int(n), Int64::new(n)),
                format!("Int({n}) {n}")
            );
        }
        assert_eq!(Value::Bool(true).as_int(), None);
    }

    #[test]
    fn a_span_stays_small() {
        // Spans are most of a run's memory: `faultline bench` prints bytes per span.
        assert_eq!(std::mem::size_of::<Option<SpanId>>(), 8);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<Span>(), 80);
    }

    #[test]
    fn each_span_keeps_its_own_attributes_in_the_one_list() {
        let mut t = Telemetry::default();
        let kv = |n: i64| (Sym(n as u32), Value::int(n));
        let span = |n: u64| Span::for_test(1, n, 0, Sym(0), SimTime(0), None);
        // Room reserved, then filled: the last span grows where it is.
        let a = t.push_span(span(1), []);
        t.attributes_mut(a).reserve_exact(2);
        t.attributes_mut(a).push(kv(1));
        let b = t.push_span(span(2), [kv(10), kv(11)]);
        t.attributes_mut(a).push(kv(2));
        assert_eq!(t.attribute_list.len(), 4, "both fit in the room they had");
        // Past its room a span moves to the end, its attributes kept in order.
        t.attributes_mut(a).push(kv(3));
        t.attributes_mut(b).push(kv(12));
        t.attributes_mut(b).push(kv(13));
        assert_eq!(t.attributes(&t.spans[a]), [kv(1), kv(2), kv(3)]);
        assert_eq!(t.attributes(&t.spans[b]), [kv(10), kv(11), kv(12), kv(13)]);
        // Cleared, then refilled in the same room.
        let before = t.attribute_list.len();
        t.attributes_mut(a).clear();
        t.attributes_mut(a).extend([kv(4), kv(5)]);
        assert_eq!(t.attributes(&t.spans[a]), [kv(4), kv(5)]);
        assert_eq!(t.attribute_list.len(), before);
        // A span keeps at most 65,535; more are dropped, not a panic.
        let c = t.push_span(span(3), []);
        t.attributes_mut(c).extend((0..70_000).map(kv));
        assert_eq!(t.attributes(&t.spans[c]).len(), usize::from(u16::MAX));
        assert_eq!(t.attributes(&t.spans[c])[65_534], kv(65_534));
        assert_eq!(t.attributes(&t.spans[b]).len(), 4);
        let end = t.attribute_list.len();
        t.attributes_mut(b).push(kv(14));
        t.attributes_mut(c).push(kv(1));
        assert_eq!(
            t.attribute_list.len(),
            end + 8,
            "b moved; c full, not moved"
        );
    }

    #[test]
    fn a_span_ends_once_set() {
        let mut s = Span {
            trace_id: TraceId(1),
            span_id: SpanId::new(2).unwrap(),
            parent: None,
            service: ServiceId(0),
            instance: 0,
            operation: Sym(0),
            kind: SpanKind::Server,
            start: SimTime(5),
            end_time: Span::OPEN,
            status: SpanStatus::Unset,
            attributes: Attributes::default(),
            events: Events::new(),
        };
        assert_eq!(s.end(), None);
        s.set_end(SimTime(7));
        assert_eq!(s.end(), Some(SimTime(7)));
        s.set_end(SimTime(u64::MAX));
        assert_eq!(s.end(), Some(SimTime(u64::MAX - 1)));
    }
}
