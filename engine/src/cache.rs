//! A cache service's contents as the simulation keeps them: keys with the time they expire,
//! lookups counted as hits and misses, and the draw of which key a read-through step asks for.
//! The event loop (`sim`) decides when a lookup or a store happens; this holds no timing.

use crate::lookup::Lookup;

use crate::scenario::Popularity;
use crate::time::{Duration, SimTime};

/// One cache service's keyspace.
#[derive(Debug, Default)]
pub struct Cache {
    /// Key to the time it expires (nothing reads them in order).
    entries: Lookup<u64, SimTime>,
    /// When the contents were last lost (an outage began), and by which fault.
    pub wiped: Option<(SimTime, usize)>,
    /// Keys the last wipe lost, with the time each would have expired: a miss on one of them
    /// before then is the outage's doing.
    lost: Lookup<u64, SimTime>,
    pub hits: u64,
    pub misses: u64,
}

impl Cache {
    /// Looks `key` up at `now`: a hit when it is stored and not expired. An expired entry is
    /// evicted on the way, as Redis does lazily.
    pub fn get(&mut self, key: u64, now: SimTime) -> bool {
        let hit = match self.entries.get(&key) {
            Some(expires) if *expires > now => true,
            Some(_) => {
                self.entries.remove(&key);
                false
            }
            None => false,
        };
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        hit
    }

    /// Stores `key` until `now + ttl`.
    pub fn set(&mut self, key: u64, now: SimTime, ttl: Duration) {
        self.entries.insert(key, now.after(ttl));
    }

    /// Loses every key, as a cache that restarts without persistence does.
    pub fn wipe(&mut self, at: SimTime, fault: usize) {
        self.lost = std::mem::take(&mut self.entries);
        self.wiped = Some((at, fault));
    }

    /// Whether a miss on `key` at `now` is the last wipe's doing (the key would still be
    /// there); the key is forgotten by the wipe's record either way.
    pub fn lost_to_wipe(&mut self, key: u64, now: SimTime) -> bool {
        self.lost.remove(&key).is_some_and(|expires| expires > now)
    }

    /// Drops every key expired by `now`, as Redis's active expiry does between lookups.
    pub fn expire(&mut self, now: SimTime) {
        self.entries.retain(|_, expires| *expires > now);
    }

    /// Keys stored, including expired ones not yet evicted (see `expire`).
    pub fn len(&self) -> u32 {
        u32::try_from(self.entries.len()).unwrap_or(u32::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The key a lookup asks for, in `0..keys`, from one uniform sample `unit` in [0, 1). Zipf:
/// log-uniform, so key k comes up about 1/(k+1) times as often as key 0.
pub fn draw_key(unit: f64, keys: u32, popularity: Popularity) -> u64 {
    let keys = u64::from(keys.max(1));
    let key = match popularity {
        Popularity::Uniform => (unit * keys as f64) as u64,
        Popularity::Zipf => {
            (libm::exp(unit * libm::log(keys as f64 + 1.0)) as u64).saturating_sub(1)
        }
    };
    key.min(keys - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Random;

    #[test]
    fn keys_expire_after_their_ttl_and_a_wipe_loses_them_all() {
        let mut c = Cache::default();
        c.set(7, SimTime::from_ms(0), Duration::from_ms(100));
        assert!(c.get(7, SimTime::from_ms(99)));
        assert!(!c.get(7, SimTime::from_ms(100)));
        assert!(c.is_empty()); // the expired key was evicted by the lookup
        c.set(1, SimTime::from_ms(200), Duration::from_ms(100));
        c.set(2, SimTime::from_ms(200), Duration::from_ms(100));
        assert_eq!(c.len(), 2);
        c.wipe(SimTime::from_ms(250), 0);
        assert!(!c.get(1, SimTime::from_ms(260)));
        assert!(c.lost_to_wipe(1, SimTime::from_ms(260)));
        assert!(!c.lost_to_wipe(1, SimTime::from_ms(260))); // counted once
        assert!(!c.lost_to_wipe(2, SimTime::from_ms(300))); // would have expired anyway
        assert_eq!((c.hits, c.misses, c.len()), (1, 2, 0));
    }

    #[test]
    fn expiry_drops_keys_nobody_looks_up() {
        let mut c = Cache::default();
        c.set(1, SimTime::from_ms(0), Duration::from_ms(100));
        c.set(2, SimTime::from_ms(0), Duration::from_ms(300));
        c.expire(SimTime::from_ms(99));
        assert_eq!(c.len(), 2);
        c.expire(SimTime::from_ms(100));
        assert_eq!(c.len(), 1);
        assert!(c.get(2, SimTime::from_ms(200)));
        c.expire(SimTime::from_ms(300));
        assert!(c.is_empty());
    }

    #[test]
    fn zipf_keys_favour_the_head_and_stay_in_range() {
        let mut r = Random::new(5);
        let mut counts = [0u32; 1000];
        for _ in 0..100_000 {
            let k = draw_key(r.unit(), 1000, Popularity::Zipf);
            counts[k as usize] += 1;
        }
        // P(0) = ln 2 / ln 1001 ≈ 10%; P(9) ≈ ln(11/10) / ln 1001 ≈ 1.4%.
        assert!((9_000..11_000).contains(&counts[0]), "{}", counts[0]);
        assert!((1_100..1_700).contains(&counts[9]), "{}", counts[9]);
        assert!(counts[999] < 50);
        let head: u32 = counts[..100].iter().sum();
        assert!(head > 60_000, "{head}"); // a tenth of the keys take two thirds of the reads
        assert_eq!(draw_key(0.999_999_999, 10, Popularity::Zipf), 9);
        assert_eq!(draw_key(0.5, 10, Popularity::Uniform), 5);
        assert_eq!(draw_key(0.0, 1, Popularity::Zipf), 0);
    }
}
