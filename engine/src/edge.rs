//! Client-side protection on one call edge (a caller instance calling one operation): the
//! circuit breaker's state machine and the bulkhead's slots and queue. Pure state: the
//! simulation asks for admission and reports outcomes; transitions are checked for legality.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::time::{Duration, SimTime};

/// When a breaker opens, how long it stays open, and how it tests the water afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    /// Open after this many failures in a row; 0 turns this trigger off.
    pub consecutive_failures: u32,
    /// Open when at least this share of calls in the window failed; 0 turns this trigger off.
    pub failure_rate: f64,
    pub window_ms: u64,
    /// The failure-rate trigger waits for this many calls in the window.
    pub min_requests: u32,
    pub open_ms: u64,
    /// Calls let through while half-open; all must succeed to close again.
    pub half_open_probes: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            consecutive_failures: 5,
            failure_rate: 0.0,
            window_ms: 10_000,
            min_requests: 20,
            open_ms: 5_000,
            half_open_probes: 1,
        }
    }
}

/// At most `max_concurrent` calls in flight on the edge, `max_queue` more waiting for a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkheadPolicy {
    pub max_concurrent: u32,
    #[serde(default)]
    pub max_queue: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A change of breaker state, reported so it can be logged and drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: BreakerState,
    consecutive_failures: u32,
    /// Outcomes inside the window, oldest first: (time, succeeded).
    window: VecDeque<(SimTime, bool)>,
    /// How many of those failed, kept as they come and go rather than counted each time.
    window_failures: u32,
    open_until: SimTime,
    probes_in_flight: u32,
    probe_successes: u32,
    /// Counts half-open periods, so a late answer to a probe from an earlier one is ignored.
    generation: u32,
}

/// Whether a call may go ahead; a probe is a call let through while half-open, tagged with
/// the half-open period it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed { probe: Option<u32> },
    Rejected,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            window: VecDeque::new(),
            window_failures: 0,
            open_until: SimTime::ZERO,
            probes_in_flight: 0,
            probe_successes: 0,
            generation: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// The breaker of a process started afresh: closed, with no history and no probes out.
    pub fn reset(&mut self) {
        *self = Breaker::new(self.policy.clone());
    }

    /// Asks to make a call at `now`; an open breaker past its open time turns half-open first.
    pub fn admit(&mut self, now: SimTime) -> (Admission, Option<Transition>) {
        let mut transition = None;
        if self.state == BreakerState::Open && now >= self.open_until {
            transition = Some(self.move_to(BreakerState::HalfOpen));
            self.probes_in_flight = 0;
            self.probe_successes = 0;
            self.generation += 1;
        }
        let admission = match self.state {
            BreakerState::Closed => Admission::Allowed { probe: None },
            BreakerState::Open => Admission::Rejected,
            BreakerState::HalfOpen if self.probes_in_flight < self.policy.half_open_probes => {
                self.probes_in_flight += 1;
                Admission::Allowed {
                    probe: Some(self.generation),
                }
            }
            BreakerState::HalfOpen => Admission::Rejected,
        };
        (admission, transition)
    }

    /// Reports how an admitted call ended.
    pub fn record(
        &mut self,
        now: SimTime,
        succeeded: bool,
        probe: Option<u32>,
    ) -> Option<Transition> {
        match self.state {
            BreakerState::HalfOpen if probe == Some(self.generation) => {
                self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
                if !succeeded {
                    return Some(self.open(now));
                }
                self.probe_successes += 1;
                (self.probe_successes >= self.policy.half_open_probes).then(|| {
                    self.consecutive_failures = 0;
                    self.window.clear();
                    self.window_failures = 0;
                    self.move_to(BreakerState::Closed)
                })
            }
            // Answers to calls admitted before the breaker opened change nothing now.
            BreakerState::HalfOpen | BreakerState::Open => None,
            BreakerState::Closed => {
                self.consecutive_failures = if succeeded {
                    0
                } else {
                    self.consecutive_failures + 1
                };
                let horizon = SimTime(
                    now.0
                        .saturating_sub(Duration::from_ms(self.policy.window_ms).0),
                );
                while let Some(&(t, ok)) = self.window.front() {
                    if t >= horizon {
                        break;
                    }
                    self.window.pop_front();
                    self.window_failures -= u32::from(!ok);
                }
                self.window.push_back((now, succeeded));
                self.window_failures += u32::from(!succeeded);
                let calls = self.window.len() as u64;
                let failures = u64::from(self.window_failures);
                debug_assert_eq!(
                    failures,
                    self.window.iter().filter(|(_, ok)| !ok).count() as u64
                );
                let by_count = self.policy.consecutive_failures > 0
                    && self.consecutive_failures >= self.policy.consecutive_failures;
                let by_rate = self.policy.failure_rate > 0.0
                    && calls >= u64::from(self.policy.min_requests)
                    && failures as f64 >= self.policy.failure_rate * calls as f64;
                (by_count || by_rate).then(|| self.open(now))
            }
        }
    }

    fn open(&mut self, now: SimTime) -> Transition {
        self.open_until = now.after(Duration::from_ms(self.policy.open_ms));
        self.move_to(BreakerState::Open)
    }

    /// The only way the state changes: closed → open → half-open → closed or open.
    fn move_to(&mut self, to: BreakerState) -> Transition {
        use BreakerState::*;
        let from = self.state;
        let legal = matches!(
            (from, to),
            (Closed, Open) | (Open, HalfOpen) | (HalfOpen, Closed) | (HalfOpen, Open)
        );
        assert!(legal, "illegal breaker transition {from:?} -> {to:?}");
        self.state = to;
        Transition { from, to }
    }
}

/// What the bulkhead says to a call that wants a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Run,
    Queued,
    Rejected,
}

#[derive(Debug)]
pub struct Bulkhead {
    policy: BulkheadPolicy,
    active: u32,
    waiting: VecDeque<u32>,
}

impl Bulkhead {
    pub fn new(policy: BulkheadPolicy) -> Bulkhead {
        Bulkhead {
            policy,
            active: 0,
            waiting: VecDeque::new(),
        }
    }

    pub fn active(&self) -> u32 {
        self.active
    }

    pub fn enter(&mut self, call: u32) -> Entry {
        if self.active < self.policy.max_concurrent {
            self.active += 1;
            Entry::Run
        } else if (self.waiting.len() as u64) < u64::from(self.policy.max_queue) {
            self.waiting.push_back(call);
            Entry::Queued
        } else {
            Entry::Rejected
        }
    }

    /// Frees a slot; the next waiting call, if any, takes it and is returned to be run.
    pub fn leave(&mut self) -> Option<u32> {
        assert!(self.active > 0, "bulkhead slot released twice");
        match self.waiting.pop_front() {
            Some(next) => Some(next),
            None => {
                self.active -= 1;
                None
            }
        }
    }

    /// Empties it: the process whose calls held and awaited its slots is gone.
    pub fn reset(&mut self) {
        self.active = 0;
        self.waiting.clear();
    }

    /// Takes a waiting call out of the queue (it timed out while waiting).
    pub fn cancel(&mut self, call: u32) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|c| *c != call);
        self.waiting.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerPolicy {
            consecutive_failures: 3,
            open_ms: 100,
            half_open_probes: 2,
            ..BreakerPolicy::default()
        })
    }

    fn at(ms: u64) -> SimTime {
        SimTime::from_ms(ms)
    }

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_half_open() {
        let mut b = breaker();
        assert_eq!(b.record(at(1), false, None), None);
        assert_eq!(b.record(at(2), true, None), None); // a success resets the count
        b.record(at(3), false, None);
        b.record(at(4), false, None);
        let t = b.record(at(5), false, None).unwrap();
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(b.admit(at(50)).0, Admission::Rejected);
        let (admission, t) = b.admit(at(105));
        assert_eq!(admission, Admission::Allowed { probe: Some(1) });
        assert_eq!(t.unwrap().to, BreakerState::HalfOpen);
        assert_eq!(b.admit(at(106)).0, Admission::Allowed { probe: Some(1) });
        assert_eq!(b.admit(at(107)).0, Admission::Rejected); // only two probes
        assert_eq!(b.record(at(110), true, Some(1)), None);
        assert_eq!(
            b.record(at(111), true, Some(1)).unwrap().to,
            BreakerState::Closed
        );
    }

    #[test]
    fn a_late_probe_from_an_earlier_half_open_period_does_not_count() {
        let mut b = breaker(); // two probes, open for 100 ms
        for ms in 0..3 {
            b.record(at(ms), false, None);
        }
        let (a, _) = b.admit(at(200));
        let (late, _) = b.admit(at(201));
        assert_eq!(
            (a, late),
            (
                Admission::Allowed { probe: Some(1) },
                Admission::Allowed { probe: Some(1) }
            )
        );
        assert!(b.record(at(210), false, Some(1)).is_some()); // A fails: open again
        b.admit(at(320)); // half-open again: probe C of period 2
        // B, sent in period 1, answers late: it must neither free a probe slot nor count.
        assert_eq!(b.record(at(321), true, Some(1)), None);
        assert_eq!(b.admit(at(322)).0, Admission::Allowed { probe: Some(2) }); // D: 2nd slot
        assert_eq!(b.admit(at(323)).0, Admission::Rejected); // no third probe
        assert_eq!(b.record(at(330), true, Some(2)), None); // C alone does not close it
        assert_eq!(
            b.record(at(331), true, Some(2)).unwrap().to,
            BreakerState::Closed
        );
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let mut b = breaker();
        for ms in 0..3 {
            b.record(at(ms), false, None);
        }
        b.admit(at(200));
        let t = b.record(at(201), false, Some(1)).unwrap();
        assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
        assert_eq!(b.admit(at(250)).0, Admission::Rejected);
    }

    #[test]
    fn failure_rate_trigger_waits_for_enough_calls_in_the_window() {
        let mut b = Breaker::new(BreakerPolicy {
            consecutive_failures: 0,
            failure_rate: 0.5,
            window_ms: 1_000,
            min_requests: 4,
            ..BreakerPolicy::default()
        });
        assert_eq!(b.record(at(0), false, None), None);
        assert_eq!(b.record(at(10), true, None), None);
        assert_eq!(b.record(at(20), false, None), None); // 3 calls: too few
        assert!(b.record(at(30), true, None).is_some()); // 2 of 4 failed
        let mut b = Breaker::new(BreakerPolicy {
            consecutive_failures: 0,
            failure_rate: 0.5,
            window_ms: 1_000,
            min_requests: 4,
            ..BreakerPolicy::default()
        });
        b.record(at(0), false, None);
        b.record(at(1), false, None);
        b.record(at(2_000), true, None); // the early failures left the window
        b.record(at(2_001), true, None);
        assert_eq!(b.record(at(2_002), true, None), None);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn bulkhead_queues_then_rejects_and_hands_slots_on() {
        let mut h = Bulkhead::new(BulkheadPolicy {
            max_concurrent: 2,
            max_queue: 1,
        });
        assert_eq!(h.enter(1), Entry::Run);
        assert_eq!(h.enter(2), Entry::Run);
        assert_eq!(h.enter(3), Entry::Queued);
        assert_eq!(h.enter(4), Entry::Rejected);
        assert_eq!(h.leave(), Some(3));
        assert_eq!(h.active(), 2);
        assert_eq!(h.leave(), None);
        assert_eq!(h.active(), 1);
        assert_eq!(h.enter(5), Entry::Run);
        assert_eq!(h.enter(6), Entry::Queued);
        assert!(h.cancel(6));
        assert!(!h.cancel(6));
    }
}
