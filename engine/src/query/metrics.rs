//! The lab's metrics dashboard in the screen's vocabulary: one service's (or one instance's)
//! RED series, saturation gauges, a managed runtime's heap and pauses, a cache's keys and hit
//! ratio, queues, retries and breaker states over the run's time buckets, and the exemplar
//! trace of a latency bucket (its slowest request).

use std::collections::{BTreeMap, BTreeSet};

use crate::metrics::RedPoint;
use crate::telemetry::{ServiceId, SpanKind, Telemetry, TraceId};
use crate::time::{Duration, SimTime};

/// One time bucket of a service's dashboard. Gauges are None in a bucket with no sample.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsPoint {
    /// Rate, errors and latency quantiles, as `Metrics::red` gives them.
    pub red: RedPoint,
    /// Summed over the instances shown, as `sum(...)` in a Grafana panel.
    pub busy_workers: Option<u32>,
    /// Requests waiting for a worker.
    pub backlog: Option<u32>,
    pub pool_in_use: Option<u32>,
    pub pool_waiters: Option<u32>,
    /// Retries the service sent to its peers.
    pub retries_per_s: f64,
    /// A managed runtime's heap in use and its size at the bucket's end (MB), and the
    /// stop-the-world pause time of the collections in the bucket; None without `gc`.
    pub heap_used_mb: Option<f64>,
    pub heap_max_mb: Option<f64>,
    pub gc_pause: Option<Duration>,
    /// A cache service's keys at the bucket's end, and the share of its lookups in the bucket
    /// that hit (None in a bucket without lookups).
    pub cache_keys: Option<u32>,
    pub cache_hit_ratio: Option<f64>,
}

/// A message queue the service publishes through as a broker or consumes from.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSeries {
    /// `broker/topic → consumer`.
    pub name: String,
    pub depth: Vec<Option<u32>>,
    pub lag: Vec<Option<Duration>>,
}

/// The service's circuit breakers toward one peer: per bucket the worst state over its
/// instances and the peer's operations (0 closed, 1 half-open, 2 open).
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerSeries {
    pub peer: String,
    pub state: Vec<Option<u8>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceMetrics {
    pub service: String,
    /// The instance shown; None for all of them.
    pub instance: Option<u16>,
    /// Instances of the service that reported anything, ascending.
    pub instances: Vec<u16>,
    pub bucket: Duration,
    /// Every bucket from the start of the run to the newest one reported.
    pub points: Vec<MetricsPoint>,
    /// Whether any instance of the service (shown or not) ever had a connection taken or
    /// waited for one.
    pub has_pool: bool,
    /// Whether the service runs a managed runtime (heap and collections reported), and
    /// whether it is a cache (keys and lookups reported).
    pub has_gc: bool,
    pub has_cache: bool,
    pub queues: Vec<QueueSeries>,
    pub breakers: Vec<BreakerSeries>,
}

/// Services with request metrics or instance samples, in the scenario's order.
pub fn metric_services(t: &Telemetry) -> Vec<String> {
    let mut ids: BTreeSet<ServiceId> = t.metrics.instances.iter().map(|s| s.service).collect();
    ids.extend(t.metrics.requests.keys().map(|((service, ..), _)| *service));
    ids.extend(t.metrics.caches.iter().map(|c| c.service));
    ids.into_iter()
        .map(|id| t.service_name(id).to_string())
        .collect()
}

fn service_id(t: &Telemetry, name: &str) -> Option<ServiceId> {
    (0..t.service_names.len())
        .map(|i| ServiceId(i as u16))
        .find(|&id| t.service_name(id) == name)
}

/// The dashboard of `service`, for one instance or (None) all of them; None when the run has
/// no service of that name.
pub fn service_metrics(
    t: &Telemetry,
    service: &str,
    instance: Option<u16>,
) -> Option<ServiceMetrics> {
    let id = service_id(t, service)?;
    let m = &t.metrics;
    let shown = |i: u16| instance.is_none_or(|want| want == i);
    let red = m.red(id, instance, None);
    let mut instances: BTreeSet<u16> = BTreeSet::new();
    let mut last = red.len();
    for ((key, _), _) in m.requests.range(((id, 0, crate::telemetry::Sym(0)), 0)..) {
        if key.0 != id {
            break;
        }
        instances.insert(key.1);
    }
    for s in &m.instances {
        last = last.max(s.bucket as usize + 1);
        if s.service == id {
            instances.insert(s.instance);
        }
    }
    let seconds = m.bucket.0.max(1) as f64 / 1_000_000.0;
    let mut points: Vec<MetricsPoint> = (0..last)
        .map(|b| {
            let r = red.get(b);
            MetricsPoint {
                red: r.copied().unwrap_or(RedPoint {
                    start: SimTime(b as u64 * m.bucket.0),
                    requests_per_s: 0.0,
                    error_ratio: 0.0,
                    p50: None,
                    p95: None,
                    p99: None,
                }),
                busy_workers: None,
                backlog: None,
                pool_in_use: None,
                pool_waiters: None,
                retries_per_s: 0.0,
                heap_used_mb: None,
                heap_max_mb: None,
                gc_pause: None,
                cache_keys: None,
                cache_hit_ratio: None,
            }
        })
        .collect();
    let mut has_pool = false;
    for s in m.instances.iter().filter(|s| s.service == id) {
        // Any instance's use shows the service has a pool: every instance gets the panel,
        // also one whose pool was idle at every sample.
        has_pool |= s.pool_in_use > 0 || s.pool_waiters > 0;
        if !shown(s.instance) {
            continue;
        }
        let p = &mut points[s.bucket as usize];
        let add = |gauge: &mut Option<u32>, v: u32| *gauge = Some(gauge.unwrap_or(0) + v);
        add(&mut p.busy_workers, u32::from(s.busy_workers));
        add(&mut p.backlog, s.queue_depth);
        add(&mut p.pool_in_use, u32::from(s.pool_in_use));
        add(&mut p.pool_waiters, s.pool_waiters);
    }
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let mut has_gc = false;
    for s in m
        .runtime
        .iter()
        .filter(|s| s.service == id && shown(s.instance))
    {
        let Some(p) = points.get_mut(s.bucket as usize) else {
            continue;
        };
        has_gc = true;
        p.heap_used_mb = Some(p.heap_used_mb.unwrap_or(0.0) + mb(s.heap_used_bytes));
        p.heap_max_mb = Some(p.heap_max_mb.unwrap_or(0.0) + mb(s.heap_max_bytes));
        p.gc_pause = Some(Duration(p.gc_pause.unwrap_or_default().0 + s.gc_pause_us));
    }
    // A cache's lookups are counters: a bucket's are the growth since the sample before.
    let mut has_cache = false;
    let mut before = (0u64, 0u64);
    for c in m.caches.iter().filter(|c| c.service == id) {
        has_cache = true;
        let (hits, misses) = (
            c.hits_total.saturating_sub(before.0),
            c.misses_total.saturating_sub(before.1),
        );
        before = (c.hits_total, c.misses_total);
        if let Some(p) = points.get_mut(c.bucket as usize) {
            p.cache_keys = Some(c.keys);
            p.cache_hit_ratio = (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64);
        }
    }
    for (&(_, i, bucket), &n) in m.retries.range((id, 0, 0)..=(id, u16::MAX, u32::MAX)) {
        if let Some(p) = points.get_mut(bucket as usize).filter(|_| shown(i)) {
            p.retries_per_s += f64::from(n) / seconds;
        }
    }
    // Queues the service brokers or consumes: not per instance, so shown either way.
    let mut queues: BTreeMap<(ServiceId, u32, ServiceId), QueueSeries> = BTreeMap::new();
    for q in m.queues.iter().filter(|q| q.queue == id || q.group == id) {
        let series = queues
            .entry((q.queue, q.topic.0, q.group))
            .or_insert_with(|| QueueSeries {
                name: format!(
                    "{}/{} → {}",
                    t.service_name(q.queue),
                    t.text(q.topic),
                    t.service_name(q.group)
                ),
                depth: vec![None; points.len()],
                lag: vec![None; points.len()],
            });
        let b = q.bucket as usize;
        if b < points.len() {
            series.depth[b] = Some(series.depth[b].unwrap_or(0) + q.depth);
            series.lag[b] = Some(series.lag[b].unwrap_or_default().max(Duration(q.lag_us)));
        }
    }
    let mut breakers: BTreeMap<ServiceId, Vec<Option<u8>>> = BTreeMap::new();
    for s in m
        .breakers
        .iter()
        .filter(|s| s.service == id && shown(s.instance))
    {
        let states = breakers
            .entry(s.peer)
            .or_insert_with(|| vec![None; points.len()]);
        if let Some(state) = states.get_mut(s.bucket as usize) {
            *state = Some(state.unwrap_or(0).max(s.state));
        }
    }
    Some(ServiceMetrics {
        service: service.to_string(),
        instance,
        instances: instances.into_iter().collect(),
        bucket: m.bucket,
        points,
        has_pool,
        has_gc,
        has_cache,
        queues: queues.into_values().collect(),
        breakers: breakers
            .into_iter()
            .map(|(peer, state)| BreakerSeries {
                peer: t.service_name(peer).to_string(),
                state,
            })
            .collect(),
    })
}

/// The exemplar of a latency bucket: the trace of the slowest request `service` (or one of its
/// instances) answered in that time bucket, as Grafana links an exemplar from a histogram.
/// Requests are the server and consumer spans that ended in the bucket.
pub fn exemplar(
    t: &Telemetry,
    service: &str,
    instance: Option<u16>,
    bucket: u32,
) -> Option<TraceId> {
    let id = service_id(t, service)?;
    let from = SimTime(u64::from(bucket) * t.metrics.bucket.0);
    let until = SimTime(from.0.saturating_add(t.metrics.bucket.0));
    let index = t.index();
    let lists: Vec<&[u32]> = match instance {
        Some(i) => vec![index.spans_of_instance(id, i)],
        None => index.spans_of_service(id).collect(),
    };
    lists
        .into_iter()
        .flatten()
        .map(|&i| &t.spans[i as usize])
        .filter(|s| matches!(s.kind, SpanKind::Server | SpanKind::Consumer))
        .filter_map(|s| {
            let end = s.end()?;
            (end >= from && end < until).then_some((end.since(s.start), s.trace_id))
        })
        .max_by_key(|&(d, trace)| (d, std::cmp::Reverse(trace)))
        .map(|(_, trace)| trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec};

    fn telemetry() -> Telemetry {
        let mut scenario = default_mesh(40.0, 12_000);
        scenario.faults.push(FaultSpec {
            service: "payments".into(),
            instance: None,
            from_ms: 5_000,
            until_ms: 9_000,
            effect: FaultEffect::Latency { extra_ms: 800 },
        });
        crate::run(&scenario, 3).unwrap()
    }

    #[test]
    fn red_series_follow_a_latency_fault_and_add_up_over_instances() {
        let t = telemetry();
        let all = service_metrics(&t, "payments", None).unwrap();
        assert!(all.points.len() >= 12, "{}", all.points.len());
        assert!(all.instances.len() > 1, "{:?}", all.instances);
        let p99 = |b: usize| all.points[b].red.p99.unwrap_or_default();
        assert!(p99(7) >= Duration::from_ms(800), "{:?}", p99(7));
        // Before it, a second's p99 is a few of its slowest charges: up to 404 ms over 80 seeds.
        assert!(p99(2) < Duration::from_ms(600), "{:?}", p99(2));
        for p in &all.points {
            assert!(p.red.p50 <= p.red.p95 && p.red.p95 <= p.red.p99);
            assert!((0.0..=1.0).contains(&p.red.error_ratio));
        }
        // The instances' rates add up to the service's.
        let sum: f64 = all
            .instances
            .iter()
            .map(|&i| {
                service_metrics(&t, "payments", Some(i)).unwrap().points[3]
                    .red
                    .requests_per_s
            })
            .sum();
        assert!((sum - all.points[3].red.requests_per_s).abs() < 1e-9);
        assert!(all.points[3].red.requests_per_s > 0.0);
        // Gauges are sampled every bucket; workers are busy while requests flow.
        assert!(all.points[..10].iter().all(|p| p.busy_workers.is_some()));
        assert!(all.points[6].busy_workers.unwrap() > 0);
        assert!(service_metrics(&t, "nonesuch", None).is_none());
        let names = metric_services(&t);
        assert_eq!(names[0], "gateway");
        assert!(names.iter().any(|n| n == "payments"));
    }

    #[test]
    fn callers_show_retries_breakers_and_queues() {
        let t = telemetry();
        let every: Vec<ServiceMetrics> = metric_services(&t)
            .iter()
            .map(|s| service_metrics(&t, s, None).unwrap())
            .collect();
        let retries: f64 = every
            .iter()
            .flat_map(|m| &m.points)
            .map(|p| p.retries_per_s)
            .sum();
        let stored: u32 = t.metrics.retries.values().sum();
        let seconds = t.metrics.bucket.0 as f64 / 1e6;
        assert!((retries * seconds - f64::from(stored)).abs() < 1e-6);
        let breakers = every.iter().flat_map(|m| &m.breakers).count();
        assert_eq!(
            breakers > 0,
            !t.metrics.breakers.is_empty(),
            "a breaker series per peer with samples"
        );
        for m in &every {
            for b in &m.breakers {
                assert_eq!(b.state.len(), m.points.len());
                assert!(b.state.iter().flatten().all(|&s| s <= 2));
            }
        }
        if !t.metrics.queues.is_empty() {
            assert!(every.iter().any(|m| !m.queues.is_empty()));
        }
    }

    #[test]
    fn a_breaker_reads_open_while_its_peer_fails_and_closed_after() {
        let mut scenario = default_mesh(60.0, 16_000);
        assert_eq!(
            scenario.edit_calls("orders", "payments", |policy| {
                policy.breaker = Some(crate::edge::BreakerPolicy {
                    consecutive_failures: 5,
                    open_ms: 2_000,
                    ..Default::default()
                });
            }),
            1
        );
        scenario.faults.push(FaultSpec::new(
            "payments",
            None,
            3_000,
            9_000,
            FaultEffect::ErrorRate { rate: 1.0 },
        ));
        let t = crate::run(&scenario, 6).unwrap();
        let orders = service_metrics(&t, "orders", None).unwrap();
        assert_eq!(orders.breakers.len(), 1, "{:?}", orders.breakers);
        let payments = &orders.breakers[0];
        assert_eq!(payments.peer, "payments");
        assert_eq!(payments.state[1], Some(0), "closed before the fault");
        assert!(
            payments.state[4..9].contains(&Some(2)),
            "{:?}",
            payments.state
        );
        assert_eq!(payments.state[14], Some(0), "closed again after it");
        // One instance's breaker opens too, and the error panel sees the failures.
        let one = service_metrics(&t, "orders", Some(0)).unwrap();
        assert!(one.breakers[0].state[4..9].contains(&Some(2)));
        assert!(orders.points[5].red.error_ratio > 0.0);
    }

    #[test]
    fn a_leaking_instance_s_heap_climbs_and_a_cache_outage_empties_the_cache() {
        let mut scenario = default_mesh(40.0, 12_000);
        scenario.faults = vec![
            FaultSpec::new(
                "orders",
                Some(1),
                2_000,
                12_000,
                FaultEffect::MemoryLeak { mb_per_s: 20 },
            ),
            FaultSpec::new("cache", None, 4_000, 8_000, FaultEffect::CacheOutage),
        ];
        let t = crate::run(&scenario, 3).unwrap();
        let heap = |i: u16, b: usize| {
            let m = service_metrics(&t, "orders", Some(i)).unwrap();
            assert!(m.has_gc && !m.has_cache);
            m.points[b].heap_used_mb.unwrap()
        };
        // Live data grows 20 MB a second: the heap left after collections climbs by it.
        assert!(
            heap(1, 11) > heap(0, 11) + 100.0,
            "{} {}",
            heap(1, 11),
            heap(0, 11)
        );
        assert!(heap(0, 11) < 512.0);
        let all = service_metrics(&t, "orders", None).unwrap();
        let max = all.points[5].heap_max_mb.unwrap();
        assert!(
            (max - 3.0 * 512.0).abs() < 1e-6,
            "three 512 MB heaps: {max}"
        );
        assert!(
            all.points
                .iter()
                .any(|p| p.gc_pause.is_some_and(|d| d.0 > 0))
        );
        // Gauges of the runtime are summed over instances, as the other gauges are.
        let sum: f64 = (0..3).map(|i| heap(i, 6)).sum();
        assert!((sum - all.points[6].heap_used_mb.unwrap()).abs() < 1e-6);
        assert!(!service_metrics(&t, "gateway", None).unwrap().has_gc);

        assert!(metric_services(&t).iter().any(|s| s == "cache"));
        let cache = service_metrics(&t, "cache", None).unwrap();
        assert!(cache.has_cache && !cache.has_gc);
        let keys = |b: usize| cache.points[b].cache_keys.unwrap();
        let hits = |b: usize| cache.points[b].cache_hit_ratio;
        assert!(keys(3) > 100, "warm: {}", keys(3));
        assert_eq!((keys(5), keys(7)), (0, 0), "its contents lost while down");
        assert!(hits(2).unwrap() > 0.5, "{:?}", hits(2));
        assert!(hits(6).is_none_or(|h| h == 0.0), "{:?}", hits(6));
        // Back cold: misses first, then the keys fill again.
        assert!(hits(8).unwrap() < hits(2).unwrap());
        assert!(keys(11) > keys(8));
    }

    #[test]
    fn the_exemplar_is_the_slowest_request_ending_in_the_bucket() {
        let t = telemetry();
        let id = service_id(&t, "payments").unwrap();
        let trace = exemplar(&t, "payments", None, 7).unwrap();
        let slowest = t
            .spans
            .iter()
            .filter(|s| s.service == id && s.kind == SpanKind::Server)
            .filter(|s| s.end().is_some_and(|e| e.0 / 1_000_000 == 7))
            .max_by_key(|s| s.end().unwrap().since(s.start))
            .unwrap();
        assert_eq!(trace, slowest.trace_id);
        assert!(slowest.end().unwrap().since(slowest.start) >= Duration::from_ms(800));
        let one = exemplar(&t, "payments", Some(slowest.instance), 7);
        assert_eq!(one, Some(trace));
        assert_eq!(exemplar(&t, "payments", None, 10_000), None);
        assert_eq!(exemplar(&t, "nonesuch", None, 7), None);
    }
}
