//! Metrics in fixed time buckets, as a Prometheus scrape would see them: per application service,
//! instance and route the request count, errors and a latency histogram (p50/p95/p99 derived as
//! `histogram_quantile` does); per instance busy workers and queue depth; retries; breaker state;
//! heap use and garbage-collection pauses of managed runtimes; cache keys, hits and misses; queue
//! depth, consumer lag and messages published and consumed; database connections and transactions.

use std::collections::BTreeMap;

use crate::telemetry::{ServiceId, Sym};
use crate::time::{Duration, SimTime};

/// Upper bounds of the latency buckets in microseconds: four per doubling from 100 µs to about
/// 88 s, so a derived percentile is within 19% of the true one. The last bucket is +Inf.
pub fn latency_bounds_us() -> &'static [u64] {
    &LATENCY_BOUNDS_US
}

pub(crate) const LATENCY_BUCKETS: usize = 81;
static LATENCY_BOUNDS_US: [u64; LATENCY_BUCKETS - 1] = latency_bounds();

const fn latency_bounds() -> [u64; LATENCY_BUCKETS - 1] {
    // 2^(k/4) for k = 0..4, scaled by 10^6 and rounded.
    const QUARTERS: [u64; 4] = [1_000_000, 1_189_207, 1_414_214, 1_681_793];
    let mut bounds = [0u64; LATENCY_BUCKETS - 1];
    let mut i = 0;
    while i < LATENCY_BUCKETS - 1 {
        let doubling = (i / 4) as u32;
        bounds[i] = 100 * (1u64 << doubling) * QUARTERS[i % 4] / 1_000_000;
        i += 1;
    }
    bounds
}

/// The first bucket whose bound is at least `us`. Bound 4k is 100 µs times 2^k exactly, so
/// the search starts at the last doubling at or below `us` and moves at most four steps on.
pub(crate) fn latency_bucket(us: u64) -> u8 {
    let mut b = match us / 100 {
        0 => 0,
        hundreds => (4 * hundreds.ilog2() as usize).min(LATENCY_BUCKETS - 1),
    };
    while b < LATENCY_BUCKETS - 1 && LATENCY_BOUNDS_US[b] < us {
        b += 1;
    }
    b as u8
}

/// A sparse latency histogram: (bucket index, count), ascending by index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: Vec<(u8, u32)>,
}

impl Histogram {
    pub fn observe(&mut self, latency: Duration) {
        let b = latency_bucket(latency.0);
        match self.buckets.binary_search_by_key(&b, |(i, _)| *i) {
            Ok(at) => self.buckets[at].1 += 1,
            Err(at) => self.buckets.insert(at, (b, 1)),
        }
    }

    /// The histogram of `counts` by bucket index (zeros left out).
    pub(crate) fn from_counts(counts: &[u32; LATENCY_BUCKETS]) -> Histogram {
        let buckets = (0u8..)
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| (b, *n))
            .collect();
        Histogram { buckets }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (b, n) in &other.buckets {
            match self.buckets.binary_search_by_key(b, |(i, _)| *i) {
                Ok(at) => self.buckets[at].1 += n,
                Err(at) => self.buckets.insert(at, (*b, *n)),
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    /// Buckets as (upper bound in µs, or None for +Inf; count), ascending.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<u64>, u32)> + '_ {
        self.buckets
            .iter()
            .map(|(b, n)| (LATENCY_BOUNDS_US.get(usize::from(*b)).copied(), *n))
    }

    /// The q-quantile (0..=1) by linear interpolation inside the bucket that holds it, as
    /// Prometheus's histogram_quantile; None when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut seen = 0u64;
        for (b, n) in &self.buckets {
            let before = seen;
            seen += u64::from(*n);
            if seen as f64 >= rank {
                let b = usize::from(*b);
                let upper = *LATENCY_BOUNDS_US
                    .get(b)
                    .unwrap_or(&LATENCY_BOUNDS_US[LATENCY_BUCKETS - 2]);
                if b >= LATENCY_BUCKETS - 1 {
                    return Some(Duration(upper)); // +Inf: the highest finite bound, as Prometheus
                }
                let lower = if b == 0 { 0 } else { LATENCY_BOUNDS_US[b - 1] };
                let within = (rank - before as f64) / f64::from(*n);
                return Some(Duration(lower + ((upper - lower) as f64 * within) as u64));
            }
        }
        None
    }
}

/// Requests that finished in one time bucket on one (service, instance, route).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub count: u32,
    /// Responses with status 500 and above.
    pub errors: u32,
    pub latency: Histogram,
    /// Sum of the latencies, for Prometheus's `_sum` and exact means.
    pub latency_sum_us: u64,
}

/// One instance's gauges sampled at the end of a time bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceSample {
    pub bucket: u32,
    pub service: ServiceId,
    pub instance: u16,
    pub busy_workers: u16,
    pub queue_depth: u32,
    /// Connections taken from the instance's pool (0 without a pool), leaked ones included.
    pub pool_in_use: u16,
    /// Calls waiting for a pool connection.
    pub pool_waiters: u32,
}

/// A managed runtime's heap sampled at the end of a time bucket, with the collections (and
/// their stop-the-world pause time) in that bucket. Only instances whose service has `gc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeSample {
    pub bucket: u32,
    pub service: ServiceId,
    pub instance: u16,
    /// 0 while the instance is down after an out-of-memory kill.
    pub heap_used_bytes: u64,
    pub heap_max_bytes: u64,
    pub gc_collections: u32,
    pub gc_pause_us: u64,
}

/// A breaker's state sampled at the end of a time bucket: 0 closed, 1 half-open, 2 open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSample {
    pub bucket: u32,
    pub service: ServiceId,
    pub instance: u16,
    pub peer: ServiceId,
    pub operation: Sym,
    pub state: u8,
}

/// A cache service's key count and its lookups so far, sampled at the end of a time bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSample {
    pub bucket: u32,
    pub service: ServiceId,
    /// Keys stored; expired keys are dropped before each sample, as Redis expires keys actively.
    pub keys: u32,
    /// Lookups since the start of the run, as counters.
    pub hits_total: u64,
    pub misses_total: u64,
}

/// One queue (an exchange's messages for one consuming service), sampled at the end of a time
/// bucket, as the RabbitMQ Prometheus plugin reports a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSample {
    pub bucket: u32,
    /// The broker service, the exchange (topic), and the consuming service.
    pub queue: ServiceId,
    pub topic: Sym,
    pub group: ServiceId,
    /// Messages ready, waiting to be delivered to a consumer.
    pub depth: u32,
    /// Messages delivered to a consumer and not yet acknowledged.
    pub unacked: u32,
    /// Age of the oldest ready message in microseconds; 0 when none waits.
    pub lag_us: u64,
    /// Since the start of the run: messages published to the exchange, processed and
    /// acknowledged, requeued after a failed delivery, and dead-lettered after the last one.
    pub published_total: u64,
    pub consumed_total: u64,
    pub redelivered_total: u64,
    pub dead_lettered_total: u64,
}

/// One database instance, sampled at the end of a time bucket, as postgres_exporter reads
/// `pg_stat_activity` and `pg_stat_database`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatabaseSample {
    pub bucket: u32,
    pub service: ServiceId,
    pub instance: u16,
    /// Connections running a statement (`state = 'active'`).
    pub active: u16,
    /// Since the start of the run: transactions committed, and rolled back (a statement that
    /// failed).
    pub xact_commit_total: u64,
    pub xact_rollback_total: u64,
}

/// (service, instance, route)
pub type SeriesKey = (ServiceId, u16, Sym);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    pub bucket: Duration,
    /// Keyed by series then bucket index, so one series reads as a contiguous range.
    pub requests: BTreeMap<(SeriesKey, u32), RequestStats>,
    /// Retries sent, by (service, instance, bucket).
    pub retries: BTreeMap<(ServiceId, u16, u32), u32>,
    pub instances: Vec<InstanceSample>,
    pub breakers: Vec<BreakerSample>,
    pub runtime: Vec<RuntimeSample>,
    pub caches: Vec<CacheSample>,
    pub queues: Vec<QueueSample>,
    pub databases: Vec<DatabaseSample>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Duration::from_ms(1_000))
    }
}

/// One point of a RED chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RedPoint {
    pub start: SimTime,
    pub requests_per_s: f64,
    /// Share of requests that failed, 0 to 1.
    pub error_ratio: f64,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
}

impl Metrics {
    pub fn new(bucket: Duration) -> Metrics {
        Metrics {
            bucket,
            requests: BTreeMap::new(),
            retries: BTreeMap::new(),
            instances: Vec::new(),
            breakers: Vec::new(),
            runtime: Vec::new(),
            caches: Vec::new(),
            queues: Vec::new(),
            databases: Vec::new(),
        }
    }

    pub fn bucket_of(&self, time: SimTime) -> u32 {
        u32::try_from(time.0 / self.bucket.0.max(1)).unwrap_or(u32::MAX)
    }

    pub fn observe_request(
        &mut self,
        key: SeriesKey,
        end: SimTime,
        latency: Duration,
        status: u16,
    ) {
        let bucket = self.bucket_of(end);
        let stats = self.requests.entry((key, bucket)).or_default();
        stats.count += 1;
        if status >= 500 {
            stats.errors += 1;
        }
        stats.latency.observe(latency);
        stats.latency_sum_us += latency.0;
    }

    pub fn observe_retry(&mut self, service: ServiceId, instance: u16, at: SimTime) {
        let bucket = self.bucket_of(at);
        *self.retries.entry((service, instance, bucket)).or_default() += 1;
    }

    /// Rate, errors and duration over time for the series that match: a service, optionally
    /// one instance and one route. Buckets with no requests are included, empty.
    pub fn red(
        &self,
        service: ServiceId,
        instance: Option<u16>,
        route: Option<Sym>,
    ) -> Vec<RedPoint> {
        let mut merged: BTreeMap<u32, RequestStats> = BTreeMap::new();
        let mut last = 0;
        for ((key, bucket), stats) in &self.requests {
            last = last.max(*bucket);
            if key.0 != service
                || instance.is_some_and(|i| i != key.1)
                || route.is_some_and(|r| r != key.2)
            {
                continue;
            }
            let m = merged.entry(*bucket).or_default();
            m.count += stats.count;
            m.errors += stats.errors;
            m.latency.merge(&stats.latency);
        }
        let seconds = self.bucket.0 as f64 / 1_000_000.0;
        (0..=last)
            .map(|b| {
                let stats = merged.remove(&b).unwrap_or_default();
                RedPoint {
                    start: SimTime(u64::from(b) * self.bucket.0),
                    requests_per_s: f64::from(stats.count) / seconds,
                    error_ratio: if stats.count == 0 {
                        0.0
                    } else {
                        f64::from(stats.errors) / f64::from(stats.count)
                    },
                    p50: stats.latency.quantile(0.50),
                    p95: stats.latency.quantile(0.95),
                    p99: stats.latency.quantile(0.99),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_grow_by_a_quarter_doubling() {
        let b = latency_bounds_us();
        assert_eq!(&b[..5], &[100, 118, 141, 168, 200]);
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert!(*b.last().unwrap() > 60_000_000); // a minute-long request still has a bucket
        assert_eq!(latency_bucket(100), 0);
        assert_eq!(latency_bucket(101), 1);
        assert_eq!(latency_bucket(u64::MAX), (LATENCY_BUCKETS - 1) as u8);
        // The same as a search of every bound, at and around each of them.
        let search = |us: u64| LATENCY_BOUNDS_US.partition_point(|bound| *bound < us) as u8;
        for &bound in b {
            for us in [bound - 1, bound, bound + 1] {
                assert_eq!(latency_bucket(us), search(us), "{us}");
            }
        }
        for us in (0..2_000).chain((0..64).map(|k| 1u64 << k)) {
            assert_eq!(latency_bucket(us), search(us), "{us}");
        }
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.observe(Duration::from_ms(ms));
        }
        for (q, exact_ms) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = h.quantile(q).unwrap().0 as f64 / 1_000.0;
            assert!(
                (got - exact_ms).abs() / exact_ms < 0.19,
                "q{q}: {got} vs {exact_ms}"
            );
        }
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn red_merges_instances_and_fills_empty_buckets() {
        let mut m = Metrics::new(Duration::from_ms(1_000));
        let route = Sym(0);
        m.observe_request(
            (ServiceId(0), 0, route),
            SimTime::from_ms(100),
            Duration::from_ms(5),
            200,
        );
        m.observe_request(
            (ServiceId(0), 1, route),
            SimTime::from_ms(200),
            Duration::from_ms(5),
            500,
        );
        m.observe_request(
            (ServiceId(0), 1, route),
            SimTime::from_ms(2_500),
            Duration::from_ms(5),
            200,
        );
        let all = m.red(ServiceId(0), None, None);
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].requests_per_s, all[0].error_ratio), (2.0, 0.5));
        assert_eq!(all[1].requests_per_s, 0.0);
        assert_eq!(all[1].p99, None);
        let one = m.red(ServiceId(0), Some(0), None);
        assert_eq!(one[0].error_ratio, 0.0);
    }
}
