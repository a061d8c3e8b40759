//! The service map's question: over a recent window, which service calls which, how often, how
//! slowly and how badly, and what each circuit breaker says — read from the spans (server spans
//! for a service's own traffic, client and producer spans for the calls, so uninstrumented
//! databases, caches and brokers appear through their callers) and the breaker samples.

use std::collections::{BTreeMap, BTreeSet};

use crate::telemetry::{ServiceId, SpanKind, SpanStatus, Telemetry, Value};
use crate::time::{Duration, SimTime};

/// A service on the map.
#[derive(Clone, Debug, PartialEq)]
pub struct MapNode {
    pub service: String,
    /// Instances seen in the window.
    pub instances: u32,
    /// Call depth from the services the workload calls (0), for the layout.
    pub depth: u32,
    /// Requests per second it served, failed share and 99th percentile: from its server spans,
    /// or, for a service that writes none (a database, a cache, a broker), from its callers'.
    pub rate_per_s: f64,
    pub error_ratio: f64,
    pub p99: Option<Duration>,
    /// Writes no spans of its own: seen only through its callers.
    pub uninstrumented: bool,
}

/// Calls from one service to another.
#[derive(Clone, Debug, PartialEq)]
pub struct MapEdge {
    pub from: String,
    pub to: String,
    pub rate_per_s: f64,
    pub error_ratio: f64,
    pub p99: Option<Duration>,
    /// The worst breaker state among the caller's instances at the window's end: `open`,
    /// `half_open`, `closed`, or None when the edge has no breaker.
    pub breaker: Option<&'static str>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceMap {
    pub nodes: Vec<MapNode>,
    pub edges: Vec<MapEdge>,
}

#[derive(Default)]
struct Tally {
    count: u32,
    errors: u32,
    durations: Vec<u64>,
    instances: BTreeSet<u16>,
}

impl Tally {
    fn add(&mut self, error: bool, duration_us: u64, instance: u16) {
        self.count += 1;
        self.errors += u32::from(error);
        self.durations.push(duration_us);
        self.instances.insert(instance);
    }

    fn p99(&mut self) -> Option<Duration> {
        if self.durations.is_empty() {
            return None;
        }
        self.durations.sort_unstable();
        let rank = (self.durations.len() as f64 * 0.99).ceil() as usize;
        Some(Duration(
            self.durations[rank.clamp(1, self.durations.len()) - 1],
        ))
    }
}

/// The map of the spans that ended in [until - window, until).
pub fn service_map(t: &Telemetry, until: SimTime, window: Duration) -> ServiceMap {
    let from = SimTime(until.0.saturating_sub(window.0));
    let seconds = (until.0 - from.0).max(1) as f64 / 1e6;
    let peer_key = t.strings.lookup("peer.service");
    let topic_key = t.strings.lookup("messaging.destination.name");
    let text_of = |s: &crate::telemetry::Span, key: Option<crate::telemetry::Sym>| {
        key.and_then(|k| {
            t.attributes(s)
                .iter()
                .find(|(a, _)| *a == k)
                .and_then(|(_, v)| match v {
                    Value::Str(p) => Some(t.text(*p).to_string()),
                    _ => None,
                })
        })
    };
    // A broker's deliveries: its consumers' spans name the topic; its producers' spans name
    // the topic and the broker.
    let mut broker_of_topic: BTreeMap<String, String> = BTreeMap::new();
    let mut deliveries: Vec<(String, ServiceId, bool, u64, u16)> = Vec::new();
    // Spans are stored as they start, so the window's spans sit near the end: any span that
    // ended in the window started at most the longest possible span earlier; scan from where
    // spans start a minute before the window.
    let scan_from = SimTime(from.0.saturating_sub(60_000_000));
    let first = t.spans.partition_point(|s| s.start < scan_from);
    let mut served: BTreeMap<ServiceId, Tally> = BTreeMap::new();
    let mut calls: BTreeMap<(ServiceId, String), Tally> = BTreeMap::new();
    let mut roots: BTreeSet<ServiceId> = BTreeSet::new();
    for s in &t.spans[first..] {
        let Some(end) = s.end().filter(|e| *e >= from && *e < until) else {
            continue;
        };
        let error = s.status == SpanStatus::Error;
        let duration = end.0.saturating_sub(s.start.0);
        match s.kind {
            SpanKind::Server | SpanKind::Consumer => {
                served
                    .entry(s.service)
                    .or_default()
                    .add(error, duration, s.instance);
                if s.parent.is_none() {
                    roots.insert(s.service);
                }
                if let (SpanKind::Consumer, Some(topic)) = (s.kind, text_of(s, topic_key)) {
                    deliveries.push((topic, s.service, error, duration, s.instance));
                }
            }
            SpanKind::Client | SpanKind::Producer => {
                let Some(peer) = text_of(s, peer_key) else {
                    continue;
                };
                if s.kind == SpanKind::Producer {
                    if let Some(topic) = text_of(s, topic_key) {
                        broker_of_topic.insert(topic, peer.clone());
                    }
                }
                calls
                    .entry((s.service, peer))
                    .or_default()
                    .add(error, duration, s.instance);
            }
            SpanKind::Internal => {}
        }
    }
    let name = |id: ServiceId| t.service_name(id).to_string();
    let id_of = |service: &str| {
        (0..t.service_names.len() as u16)
            .map(ServiceId)
            .find(|id| t.service_name(*id) == service)
    };
    for (topic, consumer, error, duration, instance) in deliveries {
        if let Some(broker) = broker_of_topic.get(&topic).and_then(|b| id_of(b)) {
            calls
                .entry((broker, name(consumer)))
                .or_default()
                .add(error, duration, instance);
        }
    }
    // Depth: the workload's entry services at 0, each callee one past its deepest caller
    // (calls never loop, so this settles), which keeps every arrow pointing right.
    let mut depth: BTreeMap<String, u32> = roots.iter().map(|r| (name(*r), 0)).collect();
    for _ in 0..t.service_names.len() {
        let mut changed = false;
        for (caller, callee) in calls.keys() {
            if let Some(d) = depth.get(&name(*caller)).copied() {
                let entry = depth.entry(callee.clone()).or_insert(0);
                if d + 1 > *entry {
                    *entry = d + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // The breakers' last samples in the window, worst state per edge.
    let last_bucket = t.metrics.bucket_of(until).saturating_sub(1);
    let mut breakers: BTreeMap<(ServiceId, ServiceId), u8> = BTreeMap::new();
    for b in t
        .metrics
        .breakers
        .iter()
        .filter(|b| b.bucket == last_bucket)
    {
        let worst = breakers.entry((b.service, b.peer)).or_insert(0);
        *worst = (*worst).max(b.state);
    }
    let breaker_of = |caller: ServiceId, callee: &str| {
        let peer = id_of(callee)?;
        breakers.get(&(caller, peer)).map(|state| match state {
            0 => "closed",
            1 => "half_open",
            _ => "open",
        })
    };
    let mut nodes: BTreeMap<String, MapNode> = BTreeMap::new();
    for (id, tally) in &mut served {
        nodes.insert(
            name(*id),
            MapNode {
                service: name(*id),
                instances: tally.instances.len() as u32,
                depth: 0,
                rate_per_s: f64::from(tally.count) / seconds,
                error_ratio: f64::from(tally.errors) / f64::from(tally.count.max(1)),
                p99: tally.p99(),
                uninstrumented: false,
            },
        );
    }
    let mut edges = Vec::new();
    // Services that serve nothing in their own spans: what their callers saw, summed.
    let mut seen_by_callers: BTreeMap<String, Tally> = BTreeMap::new();
    for ((caller, callee), tally) in &mut calls {
        edges.push(MapEdge {
            from: name(*caller),
            to: callee.clone(),
            rate_per_s: f64::from(tally.count) / seconds,
            error_ratio: f64::from(tally.errors) / f64::from(tally.count.max(1)),
            p99: tally.p99(),
            breaker: breaker_of(*caller, callee),
        });
        if !nodes.contains_key(callee) {
            let all = seen_by_callers.entry(callee.clone()).or_default();
            all.count += tally.count;
            all.errors += tally.errors;
            all.durations.extend_from_slice(&tally.durations);
        }
    }
    for (callee, mut tally) in seen_by_callers {
        nodes.insert(
            callee.clone(),
            MapNode {
                service: callee,
                instances: 0,
                depth: 0,
                rate_per_s: f64::from(tally.count) / seconds,
                error_ratio: f64::from(tally.errors) / f64::from(tally.count.max(1)),
                p99: tally.p99(),
                uninstrumented: true,
            },
        );
    }
    let mut nodes: Vec<MapNode> = nodes
        .into_values()
        .map(|mut n| {
            n.depth = depth
                .get(&n.service)
                .copied()
                .filter(|d| *d != u32::MAX)
                .unwrap_or(0);
            n
        })
        .collect();
    nodes.sort_by(|a, b| {
        a.depth
            .cmp(&b.depth)
            .then_with(|| a.service.cmp(&b.service))
    });
    ServiceMap { nodes, edges }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Simulation;
    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec};

    #[test]
    fn the_default_mesh_maps_its_calls_in_layers() {
        let t = Simulation::new(default_mesh(50.0, 20_000), 3)
            .unwrap()
            .run();
        let map = service_map(&t, SimTime::from_ms(20_000), Duration::from_ms(10_000));
        let node = |n: &str| map.nodes.iter().find(|x| x.service == n).unwrap();
        assert_eq!(node("gateway").depth, 0);
        assert_eq!(node("orders").depth, 1);
        assert_eq!(node("payments").depth, 2);
        // Below its deepest caller (payments), so arrows all point one way.
        assert_eq!(node("database").depth, 3);
        // The broker delivers to its consumers.
        assert!(
            map.edges
                .iter()
                .any(|e| e.from == "queue" && e.to == "notifications")
        );
        assert_eq!(node("notifications").depth, node("queue").depth + 1);
        // The database writes no spans: it shows through its callers.
        assert!(node("database").uninstrumented && node("database").rate_per_s > 0.0);
        assert!(!node("gateway").uninstrumented);
        // About 50 requests a second come in.
        assert!(
            (node("gateway").rate_per_s - 50.0).abs() < 10.0,
            "{}",
            node("gateway").rate_per_s
        );
        let edge = map
            .edges
            .iter()
            .find(|e| e.from == "gateway" && e.to == "orders")
            .unwrap();
        assert!(edge.rate_per_s > 30.0 && edge.p99.is_some() && edge.error_ratio == 0.0);
        assert!(map.nodes.windows(2).all(|w| w[0].depth <= w[1].depth));
    }

    #[test]
    fn an_error_fault_shows_on_the_service_and_its_incoming_edges() {
        let mut scenario = default_mesh(50.0, 20_000);
        scenario.faults.push(FaultSpec::new(
            "payments",
            None,
            5_000,
            20_000,
            FaultEffect::ErrorRate { rate: 0.5 },
        ));
        let t = Simulation::new(scenario, 3).unwrap().run();
        let map = service_map(&t, SimTime::from_ms(20_000), Duration::from_ms(10_000));
        let payments = map.nodes.iter().find(|n| n.service == "payments").unwrap();
        assert!(payments.error_ratio > 0.3, "{}", payments.error_ratio);
        let into = map.edges.iter().find(|e| e.to == "payments").unwrap();
        assert!(into.error_ratio > 0.1, "{}", into.error_ratio);
        let auth = map.nodes.iter().find(|n| n.service == "auth").unwrap();
        assert_eq!(auth.error_ratio, 0.0);
    }
}
