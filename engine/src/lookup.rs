//! `Lookup`: a hash map for keys the simulation looks up on every event, which nothing can
//! walk in order. A hash map's order differs between wasm and native (the hash works on the
//! pointer width), so output must never depend on it: this type only finds, adds, removes and sums.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// Keys to values, found by hash (rustc-hash's Fx: fast, and the same on every run). Where a
/// B-tree's ordered walk was a cache miss per level on the hot path.
#[derive(Debug)]
pub struct Lookup<K, V>(FxHashMap<K, V>);

impl<K, V> Default for Lookup<K, V> {
    fn default() -> Lookup<K, V> {
        Lookup(FxHashMap::default())
    }
}

impl<K: Hash + Eq, V> Lookup<K, V> {
    pub fn get(&self, key: &K) -> Option<&V> {
        self.0.get(key)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.0.get_mut(key)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }

    /// Sets `key` to `value`; gives back the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.0.insert(key, value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.0.remove(key)
    }

    /// The value of `key`, set to `value` first when it has none.
    pub fn or_insert(&mut self, key: K, value: V) -> &mut V {
        self.0.entry(key).or_insert(value)
    }

    /// The value of `key`, set to the default first when it has none.
    pub fn or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.0.entry(key).or_default()
    }

    /// Keeps the entries `keep` says to (it sees each once, in no set order).
    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain(keep);
    }

    /// The sum of `f` over the entries: an integer sum, the same in any order.
    pub fn sum_by(&self, f: impl Fn(&K, &V) -> u64) -> u64 {
        self.0.iter().map(|(k, v)| f(k, v)).sum()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_adds_removes_and_sums() {
        let mut m: Lookup<u32, u32> = Lookup::default();
        assert!(m.is_empty());
        *m.or_default(7) += 2;
        *m.or_default(7) += 1;
        assert_eq!(m.insert(9, 5), None);
        assert_eq!(*m.or_insert(9, 100), 5);
        assert_eq!(m.get(&7), Some(&3));
        assert!(m.contains_key(&9) && !m.contains_key(&8));
        assert_eq!(m.sum_by(|_, v| u64::from(*v)), 8);
        m.retain(|k, _| *k != 7);
        assert!(m.get_mut(&7).is_none());
        *m.get_mut(&9).unwrap() = 6;
        assert_eq!((m.len(), m.remove(&9), m.remove(&9)), (1, Some(6), None));
        assert!(m.is_empty());
    }
}
