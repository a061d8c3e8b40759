//! Request metrics of the buckets in progress, gathered per series (service, instance, route)
//! in a short list per instance, and merged into `Metrics::requests` when a series moves on to
//! the next bucket or a step of the run ends: one map insertion per series and bucket, not one
//! map search per request. Merging gives the same stats as observing each request there.

use super::Simulation;
use crate::metrics::{RequestStats, SeriesKey};
use crate::telemetry::{ServiceId, Sym};
use crate::time::Duration;

/// One series' requests in its current bucket.
struct Open {
    route: Sym,
    bucket: u32,
    stats: RequestStats,
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
            Some(at) => {
                if list[at].bucket != bucket {
                    let done = std::mem::replace(
                        &mut list[at],
                        Open {
                            route,
                            bucket,
                            stats: RequestStats::default(),
                        },
                    );
                    merge(&mut self.telemetry.metrics, key, done);
                }
                at
            }
            None => {
                list.push(Open {
                    route,
                    bucket,
                    stats: RequestStats::default(),
                });
                list.len() - 1
            }
        };
        let stats =
            &mut self.series.by_instance[usize::from(service)][usize::from(instance)][at].stats;
        stats.count += 1;
        if status >= 500 {
            stats.errors += 1;
        }
        stats.latency.observe(latency);
        stats.latency_sum_us += latency.0;
    }

    /// Merges every open series into `Metrics::requests`, so the telemetry is whole.
    pub(super) fn close_series(&mut self) {
        if !std::mem::take(&mut self.series.any) {
            return;
        }
        for (service, instances) in self.series.by_instance.iter_mut().enumerate() {
            for (instance, list) in instances.iter_mut().enumerate() {
                for open in list.drain(..) {
                    let key = (ServiceId(service as u16), instance as u16, open.route);
                    merge(&mut self.telemetry.metrics, key, open);
                }
            }
        }
    }
}

fn merge(metrics: &mut crate::metrics::Metrics, key: SeriesKey, open: Open) {
    use std::collections::btree_map::Entry;
    match metrics.requests.entry((key, open.bucket)) {
        Entry::Vacant(v) => {
            v.insert(open.stats);
        }
        Entry::Occupied(mut o) => {
            let stats = o.get_mut();
            stats.count += open.stats.count;
            stats.errors += open.stats.errors;
            stats.latency.merge(&open.stats.latency);
            stats.latency_sum_us += open.stats.latency_sum_us;
        }
    }
}
