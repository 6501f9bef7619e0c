//! An open-addressing hash table whose slot for a hash is known before
//! the table is read, so that a key can be warmed by a prefetch.
//!
//! The layout is hashbrown's, kept simple: a tag byte per slot (the top
//! seven bits of the hash, or empty, or deleted) in groups of eight read as
//! one word, the entries in a second array at the same indexes, and groups
//! probed in triangular order from the group the hash's low bits name. An
//! entry lies in its first group unless that group was full when it came,
//! so its tags and its entry are at addresses the hash alone gives. A
//! hashbrown lookup must read the tags before it knows where the entry
//! is, which is why [`super::ShardedMap::warm`] could only warm by looking
//! up: a load that holds its place in the reorder buffer until both
//! misses are served, where a prefetch retires at once.
//!
//! Entries of empty slots hold `Default` values instead of uninitialised
//! memory, so the table needs no `unsafe`; they cost nothing that
//! hashbrown's buckets do not (an entry's bytes per slot, a tag byte).

/// Slots per group: the tags of a group are one `u64`.
const GROUP: usize = 8;
/// The tag of a free slot that no probe has passed: one never used since
/// the last rebuild, or emptied in a group that had another. A probe
/// stops at a group holding one: no entry was ever placed past it.
const EMPTY: u8 = 0xff;
/// The tag of a slot emptied in a group that had no empty slot: probes
/// may have passed this group, so they must still pass it.
const DELETED: u8 = 0x80;
/// Tags of used slots have the top bit clear.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const LOW_BITS: u64 = 0x0101_0101_0101_0101;

/// The top seven bits of the hash, as the tag of the slot that holds it.
fn tag_of(hash: u64) -> u8 {
    (hash >> 57) as u8
}

/// Bits (the top bit of each byte) of a group's slots; iterates over their
/// indexes within the group.
#[derive(Clone, Copy)]
struct Bits(u64);

impl Bits {
    fn any(self) -> bool {
        self.0 != 0
    }
}

impl Iterator for Bits {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize / 8;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

/// Slots whose tag may be `tag` (a byte-wise zero test of the XOR; it can
/// report a byte above a true match, never miss one: candidates are
/// confirmed by comparing keys).
fn matching(group: u64, tag: u8) -> Bits {
    let x = group ^ (LOW_BITS * u64::from(tag));
    Bits(x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS)
}

/// Empty slots: both bits of 0xff, where a deleted slot (0x80) has only
/// the top one and a used slot neither.
fn empty(group: u64) -> Bits {
    Bits(group & (group << 1) & HIGH_BITS)
}

/// Empty or deleted slots: the top bit set.
fn free(group: u64) -> Bits {
    Bits(group & HIGH_BITS)
}

/// Used slots: the top bit clear.
fn used(group: u64) -> Bits {
    Bits(!group & HIGH_BITS)
}

#[derive(Debug, Clone)]
pub(super) struct Table<K, V> {
    /// One per slot; a power of two at least [`GROUP`], or none before the
    /// first insert.
    tags: Vec<u8>,
    entries: Vec<(K, V)>,
    len: usize,
    /// Inserts into empty slots left before the table must be rebuilt:
    /// at most 7/8 of the slots are used or deleted, so every probe meets
    /// a group with an empty slot.
    growth_left: usize,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            tags: Vec::new(),
            entries: Vec::new(),
            len: 0,
            growth_left: 0,
        }
    }
}

/// The groups a hash probes, in order: triangular steps over a power of
/// two of groups reach every group once.
fn probe(hash: u64, groups: usize) -> impl Iterator<Item = usize> {
    let mask = groups - 1;
    (0..groups).scan(hash as usize & mask, move |g, step| {
        let here = *g;
        *g = (*g + step + 1) & mask;
        Some(here)
    })
}

fn usable(slots: usize) -> usize {
    slots / 8 * 7
}

impl<K, V> Table<K, V> {
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Slots, used or not.
    #[cfg(test)]
    pub(super) fn slots(&self) -> usize {
        self.tags.len()
    }

    fn group(&self, g: usize) -> u64 {
        let at = g * GROUP;
        u64::from_le_bytes(self.tags[at..at + GROUP].try_into().expect("a group"))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        (0..self.tags.len() / GROUP).flat_map(move |g| {
            used(self.group(g)).map(move |i| {
                let (k, v) = &self.entries[g * GROUP + i];
                (k, v)
            })
        })
    }
}

impl<K: Eq, V> Table<K, V> {
    /// The slot holding `k`, whose hash is `hash`.
    fn find(&self, hash: u64, k: &K) -> Option<usize> {
        if self.tags.is_empty() {
            return None;
        }
        let tag = tag_of(hash);
        for g in probe(hash, self.tags.len() / GROUP) {
            let group = self.group(g);
            for i in matching(group, tag) {
                let slot = g * GROUP + i;
                if self.entries[slot].0 == *k {
                    return Some(slot);
                }
            }
            if empty(group).any() {
                return None;
            }
        }
        None
    }

    pub(super) fn get(&self, hash: u64, k: &K) -> Option<&V> {
        self.find(hash, k).map(|i| &self.entries[i].1)
    }

    pub(super) fn get_mut(&mut self, hash: u64, k: &K) -> Option<&mut V> {
        self.find(hash, k).map(|i| &mut self.entries[i].1)
    }

    /// Starts bringing in the lines a lookup of `hash` reads first: its
    /// group's tags and entries.
    pub(super) fn prefetch(&self, hash: u64) {
        if self.tags.is_empty() {
            return;
        }
        let at = (hash as usize & (self.tags.len() / GROUP - 1)) * GROUP;
        crate::prefetch::line(&self.tags[at]);
        crate::prefetch::all(&self.entries[at..at + GROUP]);
    }
}

impl<K: Eq + Default, V: Default> Table<K, V> {
    /// Where an absent key of this hash goes: the first free slot it
    /// probes.
    fn free_slot(&self, hash: u64) -> usize {
        for g in probe(hash, self.tags.len() / GROUP) {
            if let Some(i) = free(self.group(g)).next() {
                return g * GROUP + i;
            }
        }
        unreachable!("at most 7/8 of the slots are used or deleted")
    }

    /// Puts an absent key in; `rehash` gives the hash of any key (for a
    /// rebuild, when the slot found is empty and no empty slot may be
    /// used up any more). Returns the entry's slot.
    fn place(&mut self, hash: u64, k: K, v: V, rehash: impl Fn(&K) -> u64) -> usize {
        let mut slot = if self.tags.is_empty() {
            usize::MAX
        } else {
            self.free_slot(hash)
        };
        if slot == usize::MAX || (self.tags[slot] == EMPTY && self.growth_left == 0) {
            self.rebuild(rehash);
            slot = self.free_slot(hash);
        }
        if self.tags[slot] == EMPTY {
            self.growth_left -= 1;
        }
        self.tags[slot] = tag_of(hash);
        self.entries[slot] = (k, v);
        self.len += 1;
        slot
    }

    /// Rebuilt into twice the slots when the entries, the one about to
    /// come included, fill more than half the usable ones, else into as
    /// many (clearing the deleted ones).
    fn rebuild(&mut self, rehash: impl Fn(&K) -> u64) {
        let slots = match self.tags.len() {
            0 => GROUP,
            n if self.len + 1 > usable(n) / 2 => 2 * n,
            n => n,
        };
        let old_tags = std::mem::replace(&mut self.tags, vec![EMPTY; slots]);
        let old = std::mem::take(&mut self.entries);
        self.entries.resize_with(slots, Default::default);
        self.growth_left = usable(slots);
        for (tag, (k, v)) in old_tags.into_iter().zip(old) {
            if tag & 0x80 == 0 {
                let hash = rehash(&k);
                let slot = self.free_slot(hash);
                self.tags[slot] = tag;
                self.entries[slot] = (k, v);
                self.growth_left -= 1;
            }
        }
    }

    /// Inserts or replaces; the previous value if there was one.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        k: K,
        v: V,
        rehash: impl Fn(&K) -> u64,
    ) -> Option<V> {
        match self.find(hash, &k) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, v)),
            None => {
                self.place(hash, k, v, rehash);
                None
            }
        }
    }

    pub(super) fn get_or_insert_with(
        &mut self,
        hash: u64,
        k: K,
        f: impl FnOnce() -> V,
        rehash: impl Fn(&K) -> u64,
    ) -> (&mut V, bool) {
        let (slot, fresh) = match self.find(hash, &k) {
            Some(i) => (i, false),
            None => (self.place(hash, k, f(), rehash), true),
        };
        (&mut self.entries[slot].1, fresh)
    }

    pub(super) fn remove(&mut self, hash: u64, k: &K) -> Option<V> {
        let slot = self.find(hash, k)?;
        let g = slot / GROUP;
        // An empty slot in the group already: no probe ever passed it
        // (a group only loses its last empty slot to an insert), so this
        // one may stop probes too.
        self.tags[slot] = if empty(self.group(g)).any() {
            self.growth_left += 1;
            EMPTY
        } else {
            DELETED
        };
        self.len -= 1;
        Some(std::mem::take(&mut self.entries[slot]).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_bits() {
        let group = u64::from_le_bytes([0x11, EMPTY, 0x22, DELETED, 0x11, 0x01, 0x00, EMPTY]);
        let all = |b: Bits| b.collect::<Vec<_>>();
        assert_eq!(all(empty(group)), [1, 7]);
        assert_eq!(all(free(group)), [1, 3, 7]);
        assert_eq!(all(used(group)), [0, 2, 4, 5, 6]);
        // Every true match is reported (false positives are allowed).
        for tag in [0x00, 0x01, 0x11, 0x22] {
            let got = all(matching(group, tag));
            for (i, b) in group.to_le_bytes().iter().enumerate() {
                if *b == tag {
                    assert!(got.contains(&i), "tag {tag:#x} at {i}: {got:?}");
                }
            }
        }
        assert!(all(matching(group, 0x33)).is_empty());
    }

    #[test]
    fn probing_visits_every_group_once() {
        for groups in [1, 2, 8, 64] {
            for hash in [0, 5, 63, u64::MAX] {
                let mut seen: Vec<usize> = probe(hash, groups).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..groups).collect::<Vec<_>>());
            }
        }
    }

    /// Few hash values, so that groups fill, probes pass them and removals
    /// leave deleted slots behind: the table must still answer as a map.
    #[test]
    fn colliding_hashes_churned() {
        let hash = |k: &u32| u64::from(k % 7).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut t = Table::default();
        let mut want = std::collections::HashMap::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let k = rng.u32(..300);
            if rng.bool() {
                assert_eq!(t.insert(hash(&k), k, k * 2, hash), want.insert(k, k * 2));
            } else {
                assert_eq!(t.remove(hash(&k), &k), want.remove(&k));
            }
            assert_eq!(t.len(), want.len());
        }
        for k in 0..300 {
            assert_eq!(t.get(hash(&k), &k), want.get(&k));
        }
        assert_eq!(t.iter().count(), want.len());
        assert!(t.growth_left <= usable(t.slots()));
    }
}
