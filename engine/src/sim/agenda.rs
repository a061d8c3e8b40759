//! The event queue: events come out in (time, sequence) order. Most events are due within a
//! few seconds, so they wait in a calendar, a ring of about one-millisecond buckets found by a
//! bitmap, each searched for its earliest; events due later wait in a heap.

use std::collections::BinaryHeap;

use super::Scheduled;

/// A bucket holds the events of 2^BUCKET_BITS microseconds.
const BUCKET_BITS: u32 = 10;
/// Buckets in the ring: events up to about two seconds ahead (call timeouts included).
const BUCKETS: usize = 2_048;
const WORDS: usize = BUCKETS / 64;

pub(super) struct Agenda {
    /// The bucket number (time >> BUCKET_BITS) the ring starts at: every event in it is due in
    /// buckets `base..base + BUCKETS`, in slot `number % BUCKETS`.
    base: u64,
    ring: Vec<Vec<Scheduled>>,
    /// Which slots hold events, a bit each.
    occupied: [u64; WORDS],
    in_ring: usize,
    /// Events due past the ring's reach.
    later: BinaryHeap<Scheduled>,
}

impl Default for Agenda {
    fn default() -> Agenda {
        Agenda {
            base: 0,
            ring: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            in_ring: 0,
            later: BinaryHeap::new(),
        }
    }
}

impl Agenda {
    /// Adds an event scheduled at `now` (no earlier than anything taken out so far).
    pub(super) fn push(&mut self, now: u64, item: Scheduled) {
        if self.in_ring == 0 {
            self.base = now >> BUCKET_BITS;
        }
        let number = (item.key >> (64 + BUCKET_BITS)) as u64;
        let ahead = number.wrapping_sub(self.base);
        if ahead < BUCKETS as u64 {
            let slot = (number % BUCKETS as u64) as usize;
            self.ring[slot].push(item);
            self.occupied[slot / 64] |= 1 << (slot % 64);
            self.in_ring += 1;
        } else {
            self.later.push(item);
        }
    }

    /// The first slot from `base` on that holds events; the ring must hold some.
    fn first_slot(&self) -> usize {
        let start = (self.base % BUCKETS as u64) as usize;
        let (first_word, first_bit) = (start / 64, start % 64);
        let mut w = first_word;
        let mut word = self.occupied[w] & (!0u64 << first_bit);
        loop {
            if word != 0 {
                return w * 64 + word.trailing_zeros() as usize;
            }
            w = (w + 1) % WORDS;
            word = self.occupied[w];
            if w == first_word {
                // Around the ring: only the bits before the start are left.
                word &= (1u64 << first_bit).wrapping_sub(1);
                if word == 0 {
                    unreachable!("the ring holds events");
                }
            }
        }
    }

    /// Takes the earliest event if its key is at most `until_key`.
    pub(super) fn pop_until(&mut self, until_key: u128) -> Option<Scheduled> {
        let later = self.later.peek().map(|s| s.key);
        if self.in_ring > 0 {
            let slot = self.first_slot();
            let bucket = &self.ring[slot];
            let mut at = 0;
            for (k, item) in bucket.iter().enumerate().skip(1) {
                if item.key < bucket[at].key {
                    at = k;
                }
            }
            let key = bucket[at].key;
            if later.is_none_or(|l| key < l) {
                if key > until_key {
                    return None;
                }
                let bucket = &mut self.ring[slot];
                let item = bucket.swap_remove(at);
                if bucket.is_empty() {
                    self.occupied[slot / 64] &= !(1 << (slot % 64));
                }
                self.in_ring -= 1;
                self.base = (key >> (64 + BUCKET_BITS)) as u64;
                return Some(item);
            }
        }
        match later {
            Some(l) if l <= until_key => self.later.pop(),
            _ => None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.in_ring == 0 && self.later.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.ring.iter_mut().for_each(Vec::clear);
        self.occupied = [0; WORDS];
        self.in_ring = 0;
        self.later.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Event;

    /// A small linear congruential stream: `draw(n)` is below `n`.
    fn draws(mut state: u64) -> impl FnMut(u64) -> u64 {
        move |below: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % below
        }
    }

    /// Schedules event number `sequence` `delay` after `now` in both queues; gives its key.
    fn push_both(
        agenda: &mut Agenda,
        heap: &mut BinaryHeap<Scheduled>,
        now: u64,
        delay: u64,
        sequence: u64,
    ) -> u128 {
        let key = (u128::from(now + delay) << 64) | u128::from(sequence);
        let event = Event::Burst(sequence as u32);
        agenda.push(now, Scheduled { key, event });
        heap.push(Scheduled { key, event });
        key
    }

    /// Against a plain heap: the same events come out in the same order, with delays of none,
    /// within a bucket, across the ring and past it, and stops at `until` on the way.
    #[test]
    fn events_come_out_in_key_order_as_from_a_heap() {
        let (mut agenda, mut heap) = (Agenda::default(), BinaryHeap::new());
        let (mut now, mut sequence, mut draw) = (0u64, 0u64, draws(7));
        for round in 0..20_000u64 {
            for _ in 0..draw(3) {
                let delay = match draw(5) {
                    0 => 0,
                    1 => draw(1_024),
                    2 => draw(50_000),
                    3 => draw(4_000_000),
                    _ => 3_000_000 + draw(9_000_000),
                };
                sequence += 1;
                push_both(&mut agenda, &mut heap, now, delay, sequence);
            }
            let until = now + draw(3_000);
            let until_key = (u128::from(until) << 64) | u128::from(u64::MAX);
            let expected = match heap.peek() {
                Some(s) if s.key <= until_key => heap.pop().map(|s| s.key),
                _ => None,
            };
            let got = agenda.pop_until(until_key).map(|s| s.key);
            assert_eq!(got, expected, "round {round}");
            now = match got {
                Some(key) => (key >> 64) as u64,
                None => until.max(now),
            };
            assert_eq!(agenda.is_empty(), heap.is_empty());
        }
        while let Some(s) = heap.pop() {
            assert_eq!(agenda.pop_until(u128::MAX).map(|s| s.key), Some(s.key));
        }
        assert!(agenda.is_empty());
    }
}
