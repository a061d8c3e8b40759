//! A message queue as the simulation keeps it: per topic and consumer group, the messages
//! waiting in publish order (each carrying its trace context), the consumers busy on each
//! instance of the group, and the counts behind the depth and lag metrics.

use std::collections::VecDeque;

use crate::telemetry::{SpanId, Sym, TraceId};
use crate::time::{Duration, SimTime};

/// A published message: when, and the trace context it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its offset in the group's log, from 0.
    pub offset: u64,
    pub published: SimTime,
    pub trace: TraceId,
    /// The producer span, the consumer span's parent; None when context was not propagated.
    pub parent: Option<SpanId>,
}

/// One consumer group reading one topic of one queue service.
#[derive(Debug)]
pub struct Group {
    pub queue: u16,
    pub topic: Sym,
    /// The consuming service and the operation it runs per message.
    pub service: u16,
    pub operation: u16,
    /// Consumers per instance.
    pub concurrency: u16,
    pub waiting: VecDeque<Message>,
    /// Messages in processing, per instance of the consuming service.
    pub busy: Vec<u16>,
    pub published: u64,
    pub consumed: u64,
    /// Messages up to this offset were held back while consumers were stalled, by that fault.
    pub held: Option<(u64, usize)>,
    /// A wake-up is scheduled for this time (when the fault holding consumers back ends).
    pub wake_at: Option<SimTime>,
}

impl Group {
    pub fn new(
        queue: u16,
        topic: Sym,
        service: u16,
        operation: u16,
        concurrency: u16,
        instances: u16,
    ) -> Group {
        Group {
            queue,
            topic,
            service,
            operation,
            concurrency,
            waiting: VecDeque::new(),
            busy: vec![0; usize::from(instances)],
            published: 0,
            consumed: 0,
            held: None,
            wake_at: None,
        }
    }

    /// Appends a message to the group's log.
    pub fn publish(&mut self, at: SimTime, trace: TraceId, parent: Option<SpanId>) {
        self.waiting.push_back(Message {
            offset: self.published,
            published: at,
            trace,
            parent,
        });
        self.published += 1;
    }

    /// The offset of the last message published, if any.
    pub fn last_offset(&self) -> Option<u64> {
        self.published.checked_sub(1)
    }

    /// Age of the oldest waiting message.
    pub fn lag(&self, now: SimTime) -> Duration {
        self.waiting
            .front()
            .map_or(Duration::ZERO, |m| now.since(m.published))
    }

    /// The instance with a free consumer and the fewest busy ones (lowest index on ties),
    /// among those `usable` allows.
    pub fn free_instance(&self, usable: impl Fn(u16) -> bool) -> Option<u16> {
        (0..self.busy.len() as u16)
            .filter(|&i| self.busy[usize::from(i)] < self.concurrency && usable(i))
            .min_by_key(|&i| (self.busy[usize::from(i)], i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_order_and_lag_is_the_oldest_ones_age() {
        let mut g = Group::new(0, Sym(0), 1, 0, 2, 2);
        assert_eq!(g.lag(SimTime::from_ms(5)), Duration::ZERO);
        assert_eq!(g.last_offset(), None);
        g.publish(SimTime::from_ms(10), TraceId(1), None);
        g.publish(SimTime::from_ms(30), TraceId(2), Some(SpanId(3)));
        assert_eq!(g.lag(SimTime::from_ms(50)), Duration::from_ms(40));
        assert_eq!(g.waiting.pop_front().map(|m| m.offset), Some(0));
        assert_eq!(g.lag(SimTime::from_ms(50)), Duration::from_ms(20));
        assert_eq!(g.last_offset(), Some(1));
    }

    #[test]
    fn the_least_busy_usable_instance_takes_the_next_message() {
        let mut g = Group::new(0, Sym(0), 1, 0, 2, 3);
        g.busy = vec![1, 0, 2];
        assert_eq!(g.free_instance(|_| true), Some(1));
        assert_eq!(g.free_instance(|i| i != 1), Some(0));
        assert_eq!(g.free_instance(|i| i == 2), None); // full
    }
}
