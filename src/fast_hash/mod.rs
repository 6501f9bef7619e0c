//! Hash maps on the per-event path (every route change looks its prefix,
//! next hop and leaf rules up several times): foldhash is several times
//! faster than the standard SipHash, and still keyed per process, so that
//! announced prefixes cannot be chosen to collide.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::RandomState;

mod table;

use table::Table;

pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Keys warmed together (see [`ShardedMap::warm`]) by the event loop in a
/// burst: enough to overlap many misses, few enough that what they bring
/// in (several pages per route event) is still cached when they are
/// applied. With `accel-bench events` on the full table, 16-32 were best
/// and 64 already lost some.
/// It also sizes the stack arrays in which the warm-up keeps a burst
/// (`datapath::trie::WarmBatches`), so it must be a size smallvec supports.
pub const WARM_AHEAD: usize = 32;

/// Shards of a [`ShardedMap`], as a power of two.
const SHARD_BITS: u32 = 8;
pub const SHARDS: usize = 1 << SHARD_BITS;

/// A map of up to millions of entries that never grows all at once.
///
/// A hash table doubles when it fills: every entry is moved in one call.
/// For the per-prefix maps at full-table size that is half a million
/// entries, and the three IPv4 maps cross the same size at the same route,
/// a stall of tens of milliseconds in the middle of a BGP session bringing
/// the table in. Split by hash into [`SHARDS`] tables, each one grows on
/// its own, a 256th of the entries at a time, and the shards reach their
/// thresholds spread over thousands of inserts.
///
/// The key is hashed once: the shard is taken from hash bits that the
/// tables leave unused (they take the group from the low bits and a tag
/// from the top seven), so the tables see independent bits.
#[derive(Debug, Clone)]
pub struct ShardedMap<K, V> {
    hasher: RandomState,
    shards: Box<[Table<K, V>]>,
    len: usize,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Table::default()).collect(),
            len: 0,
        }
    }
}

impl<K, V> ShardedMap<K, V> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// The keys of shard `i` (of [`SHARDS`]): a pass over the map a
    /// 256th at a time, between which the map may change.
    pub fn shard_keys(&self, i: usize) -> impl Iterator<Item = &K> {
        self.shards[i].iter().map(|(k, _)| k)
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    /// The key's hash and its shard.
    fn locate(&self, k: &K) -> (u64, usize) {
        let h = self.hasher.hash_one(k);
        (h, (h >> (57 - SHARD_BITS)) as usize & (SHARDS - 1))
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        let (h, s) = self.locate(k);
        self.shards[s].get(h, k)
    }

    /// Starts bringing in what looking `k` up reads, and returns at once.
    /// Run over a batch of keys before the batch is applied, every miss of
    /// the batch is in flight together, and each key's slot is in cache
    /// when its change comes (unless its first group was full when it was
    /// inserted: then the lookup misses again in each group it passes).
    pub fn warm(&self, k: &K) {
        let (h, s) = self.locate(k);
        self.shards[s].prefetch(h);
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let (h, s) = self.locate(k);
        self.shards[s].get_mut(h, k)
    }
}

impl<K: Hash + Eq + Default, V: Default> ShardedMap<K, V> {
    /// The key's hash, its shard, the hasher (a shard rebuilt rehashes its
    /// keys) and the count to keep.
    fn parts(&mut self, k: &K) -> (u64, &mut Table<K, V>, &RandomState, &mut usize) {
        let (h, s) = self.locate(k);
        (h, &mut self.shards[s], &self.hasher, &mut self.len)
    }

    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        let (h, shard, hasher, len) = self.parts(&k);
        let old = shard.insert(h, k, v, |k| hasher.hash_one(k));
        *len += usize::from(old.is_none());
        old
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let (h, shard, _, len) = self.parts(k);
        let removed = shard.remove(h, k)?;
        *len -= 1;
        Some(removed)
    }

    pub fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        let (h, shard, hasher, len) = self.parts(&k);
        let (v, fresh) = shard.get_or_insert_with(h, k, f, |k| hasher.hash_one(k));
        *len += usize::from(fresh);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_hash_map() {
        let mut m = ShardedMap::default();
        let mut want = HashMap::new();
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let x = rng.u64(..);
            let k = (x % 5000) as u32;
            match x >> 62 {
                0 => assert_eq!(m.insert(k, x), want.insert(k, x)),
                1 => assert_eq!(m.remove(&k), want.remove(&k)),
                2 => {
                    *m.get_or_insert_with(k, || 7) += 1;
                    *want.entry(k).or_insert(7) += 1;
                }
                _ => {
                    if let Some(v) = m.get_mut(&k) {
                        *v += 3;
                    }
                    if let Some(v) = want.get_mut(&k) {
                        *v += 3;
                    }
                }
            }
            assert_eq!(m.len(), want.len());
            assert_eq!(m.get(&k), want.get(&k));
        }
        let mut got: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
        let mut all: Vec<_> = want.into_iter().collect();
        got.sort_unstable();
        all.sort_unstable();
        assert_eq!(got, all);
        assert_eq!(m.keys().count(), m.len());
    }

    /// The reason for the shards: no insert moves more than a small share
    /// of the entries. Counted through the shards' capacities (a shard that
    /// grew moved all its entries), not timed.
    #[test]
    fn growth_moves_a_shard_at_a_time() {
        let mut m = ShardedMap::default();
        let mut caps: Vec<usize> = m.shards.iter().map(|s| s.slots()).collect();
        let mut worst = 0;
        for k in 0..400_000u32 {
            let (_, s) = m.locate(&k);
            let before = m.shards[s].len();
            m.insert(k, ());
            if m.shards[s].slots() != caps[s] {
                caps[s] = m.shards[s].slots();
                worst = worst.max(before);
            }
        }
        assert!(worst > 0);
        assert!(worst < 400_000 / 64, "one insert moved {worst} entries");
    }
}
