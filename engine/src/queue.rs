//! A RabbitMQ-style queue as the simulation keeps it: per exchange (topic) and consuming
//! service, one queue whose ready messages wait in order (each with its trace context), the
//! messages delivered to each consumer instance and not yet acknowledged (at most the prefetch
//! count), and the counts behind the ready, unacked, redelivered and dead-lettered metrics.

use std::collections::VecDeque;

use crate::telemetry::{SpanId, Sym, TraceId};
use crate::time::{Duration, SimTime};

/// The longest wait before a redelivery.
pub const REDELIVERY_WAIT_MAX: Duration = Duration(60_000_000);

/// A published message: when, the trace context it carries, and how often it was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its place in publish order, from 0.
    pub sequence: u64,
    pub published: SimTime,
    pub trace: TraceId,
    /// The producer span, the consumer span's parent; None when context was not propagated.
    pub parent: Option<SpanId>,
    /// Deliveries so far that ended without an acknowledgement (as `x-delivery-count`).
    pub deliveries: u16,
}

/// One queue bound to one exchange (topic) of one broker service, and the service whose
/// instances consume from it, competing for its messages.
#[derive(Debug)]
pub struct Group {
    pub queue: u16,
    pub topic: Sym,
    /// The queue's name, `{consumer service}.{topic}`.
    pub name: Sym,
    /// The consuming service and the operation it runs per message.
    pub service: u16,
    pub operation: u16,
    /// Unacknowledged messages the broker lets each instance hold (`basic.qos` prefetch):
    /// one per consumer.
    pub prefetch: u16,
    /// Deliveries after which a message that keeps failing is dead-lettered.
    pub max_deliveries: u16,
    /// Before redelivery n (n from 1), a failed message waits `redelivery_delay * 2^(n-1)`,
    /// at most `REDELIVERY_WAIT_MAX`.
    pub redelivery_delay: Duration,
    pub ready: VecDeque<Message>,
    /// Messages delivered and not yet acknowledged, per instance.
    pub unacked: Vec<u16>,
    /// Messages delivered to an instance whose consumers are stalled: they wait there,
    /// unacknowledged, until the stall ends.
    pub parked: Vec<VecDeque<Message>>,
    /// The last delivery tag used on each instance's channel.
    pub delivery_tags: Vec<u64>,
    /// The instance the last delivery went to.
    pub last_picked: u16,
    pub published: u64,
    /// Messages processed and acknowledged.
    pub consumed: u64,
    pub redelivered: u64,
    pub dead_lettered: u64,
    /// Messages up to this sequence number were held back while consumers were stalled, by
    /// that fault.
    pub held: Option<(u64, usize)>,
    /// A wake-up is scheduled for this time (when the fault holding consumers back ends).
    pub wake_at: Option<SimTime>,
}

impl Group {
    pub fn new(
        queue: u16,
        topic: Sym,
        name: Sym,
        (service, operation): (u16, u16),
        instances: u16,
    ) -> Group {
        Group {
            queue,
            topic,
            name,
            service,
            operation,
            prefetch: 1,
            max_deliveries: 1,
            redelivery_delay: Duration::ZERO,
            ready: VecDeque::new(),
            unacked: vec![0; usize::from(instances)],
            parked: vec![VecDeque::new(); usize::from(instances)],
            delivery_tags: vec![0; usize::from(instances)],
            last_picked: instances.saturating_sub(1),
            published: 0,
            consumed: 0,
            redelivered: 0,
            dead_lettered: 0,
            held: None,
            wake_at: None,
        }
    }

    /// Appends a message to the queue.
    pub fn publish(&mut self, at: SimTime, trace: TraceId, parent: Option<SpanId>) {
        self.ready.push_back(Message {
            sequence: self.published,
            published: at,
            trace,
            parent,
            deliveries: 0,
        });
        self.published += 1;
    }

    /// The sequence number of the last message published, if any.
    pub fn last_sequence(&self) -> Option<u64> {
        self.published.checked_sub(1)
    }

    /// Age of the oldest ready message.
    pub fn lag(&self, now: SimTime) -> Duration {
        self.ready
            .front()
            .map_or(Duration::ZERO, |m| now.since(m.published))
    }

    /// Messages delivered and not yet acknowledged, over all instances.
    pub fn unacked_total(&self) -> u32 {
        self.unacked.iter().map(|n| u32::from(*n)).sum()
    }

    /// The next instance, round-robin from the one after the last picked, with room under its
    /// prefetch count among those `connected` allows, as RabbitMQ takes its consumers in turn.
    /// The caller records the delivery in `last_picked`.
    pub fn next_instance(&self, connected: impl Fn(u16) -> bool) -> Option<u16> {
        let n = self.unacked.len() as u16;
        (1..=n)
            .map(|k| (self.last_picked + k) % n)
            .find(|&i| self.unacked[usize::from(i)] < self.prefetch && connected(i))
    }

    /// What becomes of a message whose delivery ended unacknowledged: redelivered after the
    /// returned wait, or dead-lettered (None) once it has been delivered `max_deliveries`
    /// times.
    pub fn nack(&mut self, message: &mut Message) -> Option<Duration> {
        message.deliveries = message.deliveries.saturating_add(1);
        if message.deliveries >= self.max_deliveries {
            self.dead_lettered += 1;
            return None;
        }
        self.redelivered += 1;
        let exponent = u32::from(message.deliveries - 1).min(16);
        let wait = crate::time::saturating_mul(self.redelivery_delay.0, 1 << exponent);
        Some(Duration(wait.min(REDELIVERY_WAIT_MAX.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_order_and_lag_is_the_oldest_ones_age() {
        let mut g = Group::new(0, Sym(0), Sym(1), (1, 0), 2);
        assert_eq!(g.lag(SimTime::from_ms(5)), Duration::ZERO);
        assert_eq!(g.last_sequence(), None);
        g.publish(SimTime::from_ms(10), TraceId(1), None);
        g.publish(SimTime::from_ms(30), TraceId(2), SpanId::new(3));
        assert_eq!(g.lag(SimTime::from_ms(50)), Duration::from_ms(40));
        assert_eq!(g.ready.pop_front().map(|m| m.sequence), Some(0));
        assert_eq!(g.lag(SimTime::from_ms(50)), Duration::from_ms(20));
        assert_eq!(g.last_sequence(), Some(1));
    }

    #[test]
    fn connected_instances_with_prefetch_room_take_messages_in_turn() {
        let mut g = Group::new(0, Sym(0), Sym(1), (1, 0), 3);
        g.prefetch = 2;
        g.unacked = vec![1, 0, 2];
        assert_eq!(g.unacked_total(), 3);
        let take = |g: &mut Group, connected: fn(u16) -> bool| {
            let pick = g.next_instance(connected);
            g.last_picked = pick.unwrap_or(g.last_picked);
            pick
        };
        assert_eq!(take(&mut g, |_| true), Some(0));
        assert_eq!(take(&mut g, |_| true), Some(1)); // 2's prefetch is full
        assert_eq!(take(&mut g, |_| true), Some(0));
        assert_eq!(take(&mut g, |i| i != 1), Some(0));
        assert_eq!(take(&mut g, |i| i == 2), None);
    }

    #[test]
    fn a_failing_message_is_redelivered_with_backoff_then_dead_lettered() {
        let mut g = Group::new(0, Sym(0), Sym(1), (1, 0), 1);
        (g.max_deliveries, g.redelivery_delay) = (3, Duration::from_ms(100));
        g.publish(SimTime::ZERO, TraceId(1), None);
        let mut m = g.ready.pop_front().unwrap();
        assert_eq!(g.nack(&mut m), Some(Duration::from_ms(100)));
        assert_eq!(g.nack(&mut m), Some(Duration::from_ms(200)));
        assert_eq!(g.nack(&mut m), None);
        assert_eq!((m.deliveries, g.redelivered, g.dead_lettered), (3, 2, 1));
    }
}
