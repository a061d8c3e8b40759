//! Request metrics of the buckets in progress, gathered per series (service, instance, route)
//! in a short list per instance, latencies counted per histogram bucket, and merged into
//! `Metrics::requests` when a series moves on to the next bucket or a step of the run ends:
//! one map insertion per series and bucket, not one map search per request. Merging gives the
//! same stats as observing each request there.

use super::Simulation;
use crate::metrics::{Histogram, LATENCY_BUCKETS, RequestStats, SeriesKey, latency_bucket};
use crate::telemetry::{ServiceId, Sym};
use crate::time::Duration;

/// One series' requests in its current bucket (none yet when `count` is 0).
struct Open {
    route: Sym,
    bucket: u32,
    count: u32,
    errors: u32,
    latency_sum_us: u64,
    /// Requests by latency bucket.
    latency: Box<[u32; LATENCY_BUCKETS]>,
}

impl Open {
    fn new(route: Sym, bucket: u32) -> Open {
        Open {
            route,
            bucket,
            count: 0,
            errors: 0,
            latency_sum_us: 0,
            latency: Box::new([0; LATENCY_BUCKETS]),
        }
    }

    /// Its stats so far, and starts it over in `bucket`.
    fn take(&mut self, bucket: u32) -> RequestStats {
        let stats = RequestStats {
            count: self.count,
            errors: self.errors,
            latency: Histogram::from_counts(&self.latency),
            latency_sum_us: self.latency_sum_us,
        };
        (self.bucket, self.count, self.errors, self.latency_sum_us) = (bucket, 0, 0, 0);
        self.latency.fill(0);
        stats
    }
}

/// The open series of every instance, by service then instance.
#[derive(Default)]
pub(super) struct OpenSeries {
    by_instance: Vec<Vec<Vec<Open>>>,
    /// Whether anything is open (nothing to merge otherwise).
    any: bool,
}

impl Simulation {
    /// Counts a finished request in its series and bucket (the bucket of now).
    pub(super) fn observe_request(&mut self, key: SeriesKey, latency: Duration, status: u16) {
        let bucket = self.telemetry.metrics.bucket_of(self.now);
        let (ServiceId(service), instance, route) = key;
        let open = &mut self.series;
        if open.by_instance.len() <= usize::from(service) {
            open.by_instance
                .resize_with(usize::from(service) + 1, Vec::new);
        }
        let instances = &mut open.by_instance[usize::from(service)];
        if instances.len() <= usize::from(instance) {
            instances.resize_with(usize::from(instance) + 1, Vec::new);
        }
        let list = &mut instances[usize::from(instance)];
        open.any = true;
        let at = match list.iter().position(|o| o.route == route) {
            Some(at) => at,
            None => {
                list.push(Open::new(route, bucket));
                list.len() - 1
            }
        };
        let o = &mut list[at];
        if o.bucket != bucket {
            if o.count > 0 {
                let done_bucket = o.bucket;
                let stats = o.take(bucket);
                merge(&mut self.telemetry.metrics, key, done_bucket, stats);
            } else {
                o.bucket = bucket;
            }
        }
        o.count += 1;
        if status >= 500 {
            o.errors += 1;
        }
        o.latency[usize::from(latency_bucket(latency.0))] += 1;
        o.latency_sum_us += latency.0;
    }

    /// Merges every open series into `Metrics::requests`, so the telemetry is whole.
    pub(super) fn close_series(&mut self) {
        if !std::mem::take(&mut self.series.any) {
            return;
        }
        for (service, instances) in self.series.by_instance.iter_mut().enumerate() {
            for (instance, list) in instances.iter_mut().enumerate() {
                for open in list.iter_mut().filter(|o| o.count > 0) {
                    let key = (ServiceId(service as u16), instance as u16, open.route);
                    let bucket = open.bucket;
                    let stats = open.take(bucket);
                    merge(&mut self.telemetry.metrics, key, bucket, stats);
                }
            }
        }
    }
}

fn merge(metrics: &mut crate::metrics::Metrics, key: SeriesKey, bucket: u32, stats: RequestStats) {
    use std::collections::btree_map::Entry;
    match metrics.requests.entry((key, bucket)) {
        Entry::Vacant(v) => {
            v.insert(stats);
        }
        Entry::Occupied(mut o) => {
            let sum = o.get_mut();
            sum.count += stats.count;
            sum.errors += stats.errors;
            sum.latency.merge(&stats.latency);
            sum.latency_sum_us += stats.latency_sum_us;
        }
    }
}
