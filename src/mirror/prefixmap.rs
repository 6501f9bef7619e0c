//! A map keyed by [`Prefix`] that stores its keys compactly: one table per
//! family, IPv4 keys as (u32, u8). A `Prefix` takes 18 bytes whatever the
//! family; with a million IPv4 prefixes in the full table, the per-family
//! keys keep the tables at half the size.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::fast_hash::{ShardedMap, SHARDS};

use crate::model::Prefix;

/// IPv4 prefix key. Ordered as `Prefix` orders IPv4 prefixes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key4 {
    addr: u32,
    len: u8,
}

/// IPv6 prefix key: byte arrays keep it at 17 bytes (a u128 would align
/// the entry to 16).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key6 {
    addr: [u8; 16],
    len: u8,
}

impl Key4 {
    fn prefix(self) -> Prefix {
        Prefix::new(IpAddr::V4(Ipv4Addr::from(self.addr)), self.len).expect("valid length")
    }
}

impl Key6 {
    fn prefix(self) -> Prefix {
        Prefix::new(IpAddr::V6(Ipv6Addr::from(self.addr)), self.len).expect("valid length")
    }
}

enum Key {
    V4(Key4),
    V6(Key6),
}

fn key(p: &Prefix) -> Key {
    match p.addr() {
        IpAddr::V4(a) => Key::V4(Key4 {
            addr: a.into(),
            len: p.len(),
        }),
        IpAddr::V6(a) => Key::V6(Key6 {
            addr: a.octets(),
            len: p.len(),
        }),
    }
}

#[derive(Debug, Clone)]
pub struct PrefixMap<V> {
    v4: ShardedMap<Key4, V>,
    v6: ShardedMap<Key6, V>,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: ShardedMap::default(),
            v6: ShardedMap::default(),
        }
    }
}

impl<V> PrefixMap<V> {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries per family: (IPv4, IPv6).
    pub fn len_by_family(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    pub fn get(&self, p: &Prefix) -> Option<&V> {
        match key(p) {
            Key::V4(k) => self.v4.get(&k),
            Key::V6(k) => self.v6.get(&k),
        }
    }

    /// See [`ShardedMap::warm`].
    pub fn warm(&self, p: &Prefix) {
        match key(p) {
            Key::V4(k) => self.v4.warm(&k),
            Key::V6(k) => self.v6.warm(&k),
        }
    }

    pub fn get_mut(&mut self, p: &Prefix) -> Option<&mut V> {
        match key(p) {
            Key::V4(k) => self.v4.get_mut(&k),
            Key::V6(k) => self.v6.get_mut(&k),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Prefix, &V)> {
        let v4 = self.v4.iter().map(|(k, v)| (k.prefix(), v));
        v4.chain(self.v6.iter().map(|(k, v)| (k.prefix(), v)))
    }

    pub fn keys(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.iter().map(|(p, _)| p)
    }

    /// Appends the prefixes of part `i` of the map (of [`PARTS`]) to
    /// `out`: a pass over a full table that never holds a million keys at
    /// once, and that the map may change between parts (a key added to a
    /// part already passed is missed, one removed from a later part is
    /// not found).
    pub fn part_keys(&self, i: usize, out: &mut PrefixList) {
        if i < SHARDS {
            out.v4.extend(self.v4.shard_keys(i));
        } else {
            out.v6.extend(self.v6.shard_keys(i - SHARDS));
        }
    }
}

/// Changes: an empty slot of the tables holds a `Default` value.
impl<V: Default> PrefixMap<V> {
    pub fn insert(&mut self, p: Prefix, v: V) -> Option<V> {
        match key(&p) {
            Key::V4(k) => self.v4.insert(k, v),
            Key::V6(k) => self.v6.insert(k, v),
        }
    }

    pub fn remove(&mut self, p: &Prefix) -> Option<V> {
        match key(p) {
            Key::V4(k) => self.v4.remove(&k),
            Key::V6(k) => self.v6.remove(&k),
        }
    }

    pub fn get_or_insert_with(&mut self, p: Prefix, f: impl FnOnce() -> V) -> &mut V {
        match key(&p) {
            Key::V4(k) => self.v4.get_or_insert_with(k, f),
            Key::V6(k) => self.v6.get_or_insert_with(k, f),
        }
    }
}

/// A list of prefixes as compact keys: a full table's million, sorted for
/// a resync's sweep, take 11 MiB where a `Vec<Prefix>` takes 21 (18 bytes
/// a prefix, whatever the family). Indexed IPv4 first.
#[derive(Debug, Clone, Default)]
pub struct PrefixList {
    v4: Vec<Key4>,
    v6: Vec<Key6>,
    /// After [`PrefixList::index`]: where the IPv4 prefixes of each /16
    /// start in the sorted list (one more for the end).
    by_16: Vec<u32>,
}

impl PrefixList {
    /// Room for this many prefixes of each family.
    pub fn with_capacity((v4, v6): (usize, usize)) -> Self {
        PrefixList {
            v4: Vec::with_capacity(v4),
            v6: Vec::with_capacity(v6),
            by_16: Vec::new(),
        }
    }

    pub fn push(&mut self, p: Prefix) {
        debug_assert!(self.by_16.is_empty(), "an indexed list stays unchanged");
        match key(&p) {
            Key::V4(k) => self.v4.push(k),
            Key::V6(k) => self.v6.push(k),
        }
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Prefix `i`, IPv4 first.
    pub fn get(&self, i: usize) -> Prefix {
        match self.v4.get(i) {
            Some(k) => k.prefix(),
            None => self.v6[i - self.v4.len()].prefix(),
        }
    }

    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
        self.by_16 = Vec::new();
    }

    /// In `Prefix` order, each prefix once; returns how many repeats
    /// were dropped.
    pub fn sort(&mut self) -> usize {
        let before = self.len();
        self.v4.sort_unstable();
        self.v4.dedup();
        self.v6.sort_unstable();
        self.v6.dedup();
        before - self.len()
    }

    /// Makes [`PrefixList::contains`] search only the IPv4 prefixes of
    /// the address's /16 (a handful, in one or two cache lines, where a
    /// search of the whole list misses the cache a dozen times: with a
    /// million lookups in a resync's sweep, a quarter of its time). The
    /// list must be sorted and stay unchanged; the index takes 256 KiB.
    pub fn index(&mut self) {
        let mut by_16 = Vec::with_capacity((1 << 16) + 1);
        let mut i = 0;
        for hi in 0..=(1u32 << 16) {
            while i < self.v4.len() && self.v4[i].addr >> 16 < hi {
                i += 1;
            }
            by_16.push(i as u32);
        }
        self.by_16 = by_16;
    }

    /// Whether the list holds `p`; the list must be sorted.
    pub fn contains(&self, p: &Prefix) -> bool {
        match key(p) {
            Key::V4(k) if !self.by_16.is_empty() => {
                let hi = (k.addr >> 16) as usize;
                let range = self.by_16[hi] as usize..self.by_16[hi + 1] as usize;
                self.v4[range].binary_search(&k).is_ok()
            }
            Key::V4(k) => self.v4.binary_search(&k).is_ok(),
            Key::V6(k) => self.v6.binary_search(&k).is_ok(),
        }
    }
}

/// Parts of a [`PrefixMap`] for [`PrefixMap::part_keys`]: the shards of
/// both families.
pub const PARTS: usize = 2 * SHARDS;

/// The prefixes of two maps and of `extra`, each once, in `Prefix` order.
/// Collected as compact keys: at full-table size a `Vec<Prefix>` would be
/// twice as big.
pub fn sorted_union<A, B>(
    a: &PrefixMap<A>,
    b: &PrefixMap<B>,
    extra: Vec<Prefix>,
) -> impl Iterator<Item = Prefix> {
    let mut v4: Vec<Key4> = a.v4.keys().chain(b.v4.keys()).copied().collect();
    let mut v6: Vec<Key6> = a.v6.keys().chain(b.v6.keys()).copied().collect();
    for p in extra {
        match key(&p) {
            Key::V4(k) => v4.push(k),
            Key::V6(k) => v6.push(k),
        }
    }
    v4.sort_unstable();
    v4.dedup();
    v6.sort_unstable();
    v6.dedup();
    let v4 = v4.into_iter().map(Key4::prefix);
    v4.chain(v6.into_iter().map(Key6::prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
    }

    #[test]
    fn union_is_sorted_like_prefixes() {
        let mut a = PrefixMap::default();
        let mut b = PrefixMap::default();
        for s in ["2001:db8::/32", "10.0.0.0/8", "10.0.0.0/16", "::/0"] {
            a.insert(p(s), ());
        }
        for s in ["10.0.0.0/8", "9.0.0.0/8", "2001:db8::/48"] {
            b.insert(p(s), 1u32);
        }
        let got: Vec<Prefix> = sorted_union(&a, &b, vec![p("8.0.0.0/8")]).collect();
        let mut want: Vec<Prefix> = a.keys().chain(b.keys()).collect();
        want.push(p("8.0.0.0/8"));
        want.sort_unstable();
        want.dedup();
        assert_eq!(got, want);
        let mut list = PrefixList::default();
        for q in a.keys().chain(b.keys()).chain([p("8.0.0.0/8")]) {
            list.push(q);
        }
        list.sort();
        let listed: Vec<Prefix> = (0..list.len()).map(|i| list.get(i)).collect();
        assert_eq!(listed, want);
        let absent = ["10.0.0.0/24", "9.0.0.0/16", "2001:db8::/33", "0.0.0.0/0"];
        for indexed in [false, true] {
            if indexed {
                list.index();
            }
            assert!(want.iter().all(|q| list.contains(q)));
            assert!(!absent.iter().any(|q| list.contains(&p(q))));
        }
        assert_eq!(a.get(&p("10.0.0.0/16")), Some(&()));
        assert_eq!(b.remove(&p("2001:db8::/48")), Some(1));
        assert_eq!(b.len(), 2);
    }
}
