//! Call timeouts, kept beside the event queue rather than in it: nearly every call is answered
//! well before its timeout, so a timeout per call in the queue is put in and taken out again
//! for nothing. Timeouts of one length come due in the order they were set, so each length
//! keeps them in a line, and only the first one still waiting is in the event queue.

use std::collections::VecDeque;

use super::{CallId, Event, Scheduled, Simulation};

/// No lane: the policy sets no timeout.
const NO_LANE: u16 = u16::MAX;

#[derive(Default)]
pub(super) struct Deadlines {
    /// Per timeout length: the timeouts set and not yet taken out, as (event key, call,
    /// attempt), keys ascending (the same length from a clock that never goes back, and
    /// sequence numbers that only grow). A lane holds timeouts exactly when its first is in
    /// the event queue, as `Event::Deadline(lane)` with that timeout's key.
    lanes: Vec<VecDeque<(u128, CallId, u32)>>,
    /// The lane of each call policy (by its index in `Simulation::policies`), or `NO_LANE`.
    by_policy: Vec<u16>,
}

impl Deadlines {
    /// One lane per distinct timeout among `timeouts_ms`, a policy's each.
    pub(super) fn new(timeouts_ms: impl Iterator<Item = Option<u64>>) -> Deadlines {
        let mut lengths: Vec<u64> = Vec::new();
        let by_policy = timeouts_ms
            .map(|ms| match ms {
                None => NO_LANE,
                Some(ms) => {
                    let lane = lengths.iter().position(|l| *l == ms).unwrap_or_else(|| {
                        lengths.push(ms);
                        lengths.len() - 1
                    });
                    u16::try_from(lane).unwrap_or(NO_LANE)
                }
            })
            .collect();
        Deadlines {
            lanes: lengths.iter().map(|_| VecDeque::new()).collect(),
            by_policy,
        }
    }

    pub(super) fn clear(&mut self) {
        self.lanes.iter_mut().for_each(VecDeque::clear);
    }
}

impl Simulation {
    /// Sets the timeout of a call's attempt `ms` from now. Its key is the one `schedule` would
    /// have given the timeout event, so events come out as if it were in the queue, and the
    /// run lasts until it comes (`cancelled_until`), even when it comes to nothing.
    pub(super) fn set_deadline(&mut self, call: CallId, attempt: u32, ms: u64) {
        self.sequence += 1;
        let at = self.now.after(crate::time::Duration::from_ms(ms));
        let key = (u128::from(at.0) << 64) | u128::from(self.sequence);
        self.cancelled_until = self.cancelled_until.max(key);
        let policy = self.calls[call.0 as usize].policy as usize;
        let lane = self.deadlines.by_policy[policy];
        let line = &mut self.deadlines.lanes[usize::from(lane)];
        line.push_back((key, call, attempt));
        if line.len() == 1 {
            let event = Event::Deadline(lane);
            self.queue.push(self.now.0, Scheduled { key, event });
        }
    }

    /// The first timeout of `lane` has come, at `key`: the timeout event to handle, or None
    /// when its attempt has ended already (nothing happens then, as a timeout event would
    /// have done nothing). Either way the lane's next timeout still waiting goes in the queue.
    pub(super) fn deadline_due(&mut self, lane: u16, key: u128) -> Option<Event> {
        let line = &mut self.deadlines.lanes[usize::from(lane)];
        let (first, call, attempt) = line.pop_front().expect("a queued lane holds timeouts");
        debug_assert_eq!(first, key);
        let waiting = |sim: &Simulation, call: CallId, attempt: u32| {
            let c = &sim.calls[call.0 as usize];
            !c.done && !c.settled && c.attempt == attempt
        };
        let due = waiting(self, call, attempt).then_some(Event::Timeout { call, attempt });
        // Timeouts of attempts that have ended go; the first still waiting is queued.
        let line = &self.deadlines.lanes[usize::from(lane)];
        let ended = line
            .iter()
            .take_while(|(_, call, attempt)| !waiting(self, *call, *attempt))
            .count();
        let line = &mut self.deadlines.lanes[usize::from(lane)];
        line.drain(..ended);
        if let Some(&(next, _, _)) = line.front() {
            let event = Event::Deadline(lane);
            let now = (key >> 64) as u64;
            self.queue.push(now, Scheduled { key: next, event });
        }
        due
    }
}
