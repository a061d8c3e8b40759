//! Room reserved ahead in the run's big vectors (spans, their attributes, log lines, invocations, calls), from how
//! fast they filled per expected arrival so far. In wasm a vector that outgrows its room is copied
//! (dlmalloc has no mremap), so doubling copies each about twice over; capacity only, never output.

use super::Simulation;
use crate::scenario::Workload;

/// No projection before this share of the run's expected arrivals has come (1/16): noisy before.
const FIRST_SHARE: f64 = 1.0 / 16.0;
/// Never reserve more than this many times a vector's length, whatever the projection: the
/// first projection (at a sixteenth of the run) and its eighth of margin, no more.
const MOST_FACTOR: usize = 18;
/// Steps of the midpoint rule over the arrival rate (piecewise linear, so this is close).
const STEPS: u32 = 64;

/// Requests expected to arrive by `until_ms`: the rate (after ramps) integrated, plus bursts.
fn expected_arrivals(workload: &Workload, until_ms: f64) -> f64 {
    let step = until_ms / f64::from(STEPS);
    let steady: f64 = (0..STEPS)
        .map(|i| workload.rate_at((f64::from(i) + 0.5) * step) * step / 1_000.0)
        .sum();
    let bursts: f64 = workload
        .bursts
        .iter()
        .filter(|b| (b.at_ms as f64) < until_ms)
        .map(|b| f64::from(b.requests))
        .sum();
    steady + bursts
}

/// Capacity for a vector of `len` items (room for `capacity`) when `share` of the run's expected
/// arrivals have come: the whole run at that pace plus an eighth, so a pace that rises over
/// the run (caches missing more as keys expire) costs a copy per eighth it rises, no more;
/// `None` while the room is enough or it is too early to tell.
fn wanted(len: usize, capacity: usize, share: f64) -> Option<usize> {
    if !(FIRST_SHARE..1.0).contains(&share) || len == 0 {
        return None;
    }
    let at_pace = (len as f64 / share) as usize;
    (at_pace > capacity).then(|| {
        (at_pace + at_pace / 8)
            .min(len.saturating_mul(MOST_FACTOR))
            .max(len)
    })
}

fn reserve_to<T>(v: &mut Vec<T>, share: f64) {
    if let Some(target) = wanted(v.len(), v.capacity(), share) {
        v.reserve_exact(target - v.len());
    }
}

/// Shrinks a vector to its length once its unused room is over a quarter of its length. In wasm
/// shrinking a big vector copies it whole (dlmalloc cannot resize what it took straight from
/// `memory.grow` in place) and linear memory never shrinks, so the eighth `reserve_ahead` leaves
/// is kept; the slack of a plain doubling (up to as much again) is still given back.
pub(super) fn give_back_slack<T>(v: &mut Vec<T>) {
    if v.capacity() - v.len() > v.len() / 4 {
        v.shrink_to_fit();
    }
}

impl Simulation {
    /// At each metrics sample: a big vector on course to outgrow its room before the run ends
    /// gets room for the whole run at the pace so far, in one copy instead of several.
    pub(super) fn reserve_ahead(&mut self) {
        let workload = &self.scenario.workload;
        let now_ms = (self.now.0 / 1_000) as f64;
        let end_ms = self.scenario.duration_ms as f64;
        if now_ms >= end_ms {
            return;
        }
        let total = expected_arrivals(workload, end_ms);
        if total <= 0.0 {
            return;
        }
        let share = expected_arrivals(workload, now_ms) / total;
        reserve_to(&mut self.telemetry.spans, share);
        reserve_to(self.telemetry.attribute_list(), share);
        reserve_to(&mut self.telemetry.logs, share);
        reserve_to(&mut self.invocations, share);
        reserve_to(&mut self.calls, share);
    }
}

#[cfg(test)]
mod tests {
    use super::{expected_arrivals, wanted};
    use crate::mesh::default_mesh;
    use crate::scenario::{Burst, Ramp};

    #[test]
    fn projects_the_pace_with_a_margin_and_a_ceiling() {
        // Too early, or room enough: nothing.
        assert_eq!(wanted(100, 100, 0.01), None);
        assert_eq!(wanted(100, 1_000, 0.5), None);
        // Half-way with 100 items: 200 at this pace, plus an eighth.
        assert_eq!(wanted(100, 128, 0.5), Some(225));
        // Just over the room: the pace plus an eighth.
        assert_eq!(wanted(100, 190, 0.5), Some(225));
        // At the first projection, an eighth more than the pace; never more than that.
        assert_eq!(wanted(100, 128, 0.0625), Some(1_800));
        assert_eq!(wanted(100, 128, 0.01), None);
        assert_eq!(wanted(100, 128, 0.07), Some(1_606));
    }

    #[test]
    fn slack_is_given_back_only_past_a_quarter() {
        let mut v: Vec<u8> = Vec::with_capacity(125);
        v.extend([0; 100]);
        super::give_back_slack(&mut v);
        assert_eq!(v.capacity(), 125);
        v.reserve_exact(26);
        super::give_back_slack(&mut v);
        assert_eq!(v.capacity(), 100);
    }

    #[test]
    fn expected_arrivals_follow_ramps_and_bursts() {
        let mut workload = default_mesh(100.0, 10_000).workload;
        assert!((expected_arrivals(&workload, 10_000.0) - 1_000.0).abs() < 1e-6);
        workload.ramps = vec![Ramp {
            from_ms: 0,
            until_ms: 10_000,
            to_rate_per_s: 300.0,
        }];
        workload.bursts = vec![Burst {
            at_ms: 5_000,
            requests: 500,
        }];
        // 100 → 300 linearly over 10 s: 2,000 requests, plus the burst.
        assert!((expected_arrivals(&workload, 10_000.0) - 2_500.0).abs() < 1e-6);
        assert!(expected_arrivals(&workload, 4_000.0) < 1_000.0);
    }
}
