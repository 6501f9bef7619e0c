//! DIR-24-8: the IPv4 longest-prefix-match structure the datapath reads.
//!
//! A first level of 2^24 leaves indexed by the top 24 bits of the address,
//! and second-level groups of 256 leaves for the /24s that hold longer
//! prefixes. A lookup is one or two array reads whatever the table size.
//!
//! In front of them, a summary of 2^16 words (256 KiB, cache-resident):
//! a /16 that holds no rule longer than /16 has one answer for all its
//! addresses, and its word is that leaf; otherwise the word says "read the
//! first level". With a default route and few longer routes, most lookups
//! end in the summary instead of a cache and TLB miss in the 64 MiB first
//! level (BENCHMARKS.md, "Per stage": ~125 ns of a ~290 ns frame). The
//! first level is kept complete either way, and a summary word changes
//! only after the leaves it stands for are written.
//!
//! accel keeps the rule set and the depth of every leaf here, in userspace,
//! and writes the leaves straight into the memory-mapped BPF arrays.
//!
//! The datapath must never see a half-written state: a group is filled
//! before the first-level leaf points to it, and a group that is no longer
//! pointed to is reused only after a grace period.
//!
//! When every group is taken, a /24 that needs one is *degraded*: its
//! first-level leaf becomes a "FIB" route (bpf_fib_lookup decides), which
//! is exact for every address of the /24 since the kernel's own lookup
//! answers. Its rules are kept, and [`Dir24::retry`] rebuilds its group once
//! one is free again.

use super::prefix_bits::{self, PrefixBits};
use crate::fast_hash::ShardedMap;
use std::collections::BTreeMap;

use crate::bpf::types::{accel_dir24 as D, accel_fib_mark, accel_route_type};
use crate::slots::GraceSlots;

pub const TBL24_LEAVES: usize = D::ACCEL_TBL24_LEAVES.0 as usize;
pub const SUMMARY_WORDS: usize = D::ACCEL_SUMMARY_WORDS.0 as usize;
/// A summary word for a /16 with longer rules: read the first level.
pub const SUMMARY_DEEPER: u32 = D::ACCEL_LEAF_EXT.0;
pub const GROUP_LEAVES: usize = D::ACCEL_GROUP_LEAVES.0 as usize;

/// Leaf encoding, shared with the datapath through accel.h.
pub fn route_leaf(route_type: u32, nh_id: u32) -> u32 {
    D::ACCEL_LEAF_ROUTE.0
        | (route_type << D::ACCEL_LEAF_TYPE_SHIFT.0)
        | (nh_id & D::ACCEL_LEAF_ID_MASK.0)
}

/// What a degraded region holds: "ask bpf_fib_lookup", marked as a lack
/// of room for `accel lookup`.
pub fn fib_leaf() -> u32 {
    route_leaf(
        accel_route_type::ACCEL_RT_FIB.0,
        accel_fib_mark::ACCEL_FIB_CAPACITY.0,
    )
}

/// The depth of a degraded leaf: above every prefix's (1..=129), so that no
/// route paints over it.
pub const DEGRADED: u8 = u8::MAX;

fn group_leaf(g: usize) -> u32 {
    D::ACCEL_LEAF_EXT.0 | g as u32
}

fn is_group(leaf: u32) -> bool {
    leaf & D::ACCEL_LEAF_EXT.0 != 0
}

fn group_of(leaf: u32) -> usize {
    (leaf & D::ACCEL_LEAF_ID_MASK.0) as usize
}

/// Where leaves live: the BPF arrays in production, vectors in tests.
pub trait LeafStore {
    fn get(&self, i: usize) -> u32;
    fn set(&mut self, i: usize, leaf: u32);
    /// Orders earlier stores before later ones as the datapath sees them.
    fn publish(&self) {}
}

impl LeafStore for Vec<u32> {
    fn get(&self, i: usize) -> u32 {
        self[i]
    }
    fn set(&mut self, i: usize, leaf: u32) {
        self[i] = leaf;
    }
}

pub struct Dir24<S: LeafStore> {
    /// A word per /16: its leaf, or [`SUMMARY_DEEPER`].
    summary: S,
    /// Per /16, its rules longer than /16.
    longer16: Vec<u32>,
    tbl24: S,
    tbl8: S,
    /// Prefix length + 1 of the rule that set each leaf; 0: none.
    depth24: Vec<u8>,
    depth8: Vec<u8>,
    rules: ShardedMap<(u32, u8), u32>,
    /// Rules of each prefix length: the covering search skips the lengths
    /// no rule has (a full table uses about 25 of the 33).
    per_len: [u32; 33],
    /// The rules up to /24, as bits for the covering search.
    present: PrefixBits,
    groups: usize,
    group_slots: GraceSlots,
    /// Degraded /24s (first-level index) with the number of rules longer
    /// than /24 inside each, which is never 0.
    degraded: BTreeMap<usize, usize>,
}

fn mask(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - len))
    }
}

impl<S: LeafStore> Dir24<S> {
    /// The stores must start zeroed (no routes).
    pub fn new(summary: S, tbl24: S, tbl8: S, groups: usize) -> Self {
        Dir24 {
            summary,
            longer16: vec![0; SUMMARY_WORDS],
            tbl24,
            tbl8,
            depth24: vec![0; TBL24_LEAVES],
            depth8: vec![0; groups * GROUP_LEAVES],
            rules: ShardedMap::default(),
            per_len: [0; 33],
            present: PrefixBits::default(),
            groups,
            group_slots: GraceSlots::new(0, groups),
            degraded: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn groups_in_use(&self) -> usize {
        self.group_slots.in_use(0)
    }

    pub fn capacity(&self) -> usize {
        self.groups
    }

    /// The groups all the rules need: one per /24 holding a rule longer
    /// than /24, as [`Dir24::insert`] takes them (for growing the map).
    pub fn groups_needed(&self) -> usize {
        let blocks: std::collections::HashSet<u32, foldhash::fast::RandomState> = self
            .rules
            .keys()
            .filter(|(_, len)| *len > 24)
            .map(|(addr, _)| addr >> 8)
            .collect();
        blocks.len()
    }

    /// /24s left to bpf_fib_lookup for lack of a group.
    pub fn degraded_blocks(&self) -> usize {
        self.degraded.len()
    }

    /// Rules longer than /24 inside degraded /24s.
    pub fn degraded_rules(&self) -> usize {
        self.degraded.values().sum()
    }

    /// Adds or replaces the rule for `addr/len` (host byte order). Without a
    /// group for a rule longer than /24, its /24 is degraded.
    pub fn insert(&mut self, addr: u32, len: u8, leaf: u32) {
        let addr = mask(addr, len);
        // One probe of the rule map (a cache miss at full-table size) for
        // both the old value and the new one.
        let old = self.rules.insert((addr, len), leaf);
        if old == Some(leaf) {
            return;
        }
        let added = old.is_none();
        if added {
            self.count_rule(addr, len, true);
        }
        let block = (addr >> 8) as usize;
        // A degraded /24 that gets its group back is repainted from the
        // rules, the new one included.
        if len > 24 && !self.group_for(block) {
            self.degrade(block, usize::from(added));
            self.summarize(addr, len);
            return;
        }
        let depth = len + 1;
        self.paint(addr, len, |d| d <= depth, leaf, depth);
        self.summarize(addr, len);
    }

    /// Touches what a change of `addr/len` reads first: its rule and its
    /// first /24 (see [`crate::fast_hash::ShardedMap::warm`]).
    pub fn warm(&self, addr: u32, len: u8) {
        let addr = mask(addr, len);
        self.rules.warm(&(addr, len));
        let block = (addr >> 8) as usize;
        std::hint::black_box((self.tbl24.get(block), self.depth24[block]));
    }

    pub fn remove(&mut self, addr: u32, len: u8) {
        let addr = mask(addr, len);
        if self.rules.remove(&(addr, len)).is_none() {
            return;
        }
        self.count_rule(addr, len, false);
        let block = (addr >> 8) as usize;
        if len > 24 {
            if let Some(n) = self.degraded.get_mut(&block) {
                *n -= 1;
                if *n == 0 {
                    self.undegrade(block);
                }
                self.summarize(addr, len);
                return;
            }
        }
        let (leaf, depth) = self.covering(addr, len);
        let own = len + 1;
        self.paint(addr, len, |d| d == own, leaf, depth);
        if len > 24 {
            self.collapse_if_unneeded(block);
        }
        self.summarize(addr, len);
    }

    /// Rewrites the summary words of the /16s `addr/len` touches, once
    /// the leaves they stand for are written.
    fn summarize(&mut self, addr: u32, len: u8) {
        let first = (addr >> 16) as usize;
        let count = 1usize << 16u8.saturating_sub(len);
        self.tbl24.publish();
        self.tbl8.publish();
        for s in first..first + count {
            let word = if self.longer16[s] > 0 {
                SUMMARY_DEEPER
            } else {
                // No rule longer than /16: all 256 first-level leaves of
                // the /16 are the covering rule's.
                self.tbl24.get(s << 8)
            };
            if self.summary.get(s) != word {
                self.summary.set(s, word);
            }
        }
    }

    /// Gives degraded /24s their group back, in address order, while
    /// groups are free (a released one after its grace period). Returns
    /// how many came back.
    pub fn retry(&mut self) -> usize {
        let blocks: Vec<usize> = self.degraded.keys().copied().collect();
        blocks.into_iter().take_while(|b| self.restore(*b)).count()
    }

    /// What the datapath finds for `addr`: the route leaf, or 0.
    pub fn lookup(&self, addr: u32) -> u32 {
        let word = self.summary.get((addr >> 16) as usize);
        if word != SUMMARY_DEEPER {
            return word;
        }
        let leaf = self.tbl24.get((addr >> 8) as usize);
        if is_group(leaf) {
            self.tbl8
                .get(group_of(leaf) * GROUP_LEAVES + (addr & 0xff) as usize)
        } else {
            leaf
        }
    }

    /// Counts a rule added to (or removed from) the rule map.
    fn count_rule(&mut self, addr: u32, len: u8, added: bool) {
        let n = &mut self.per_len[usize::from(len)];
        if added {
            *n += 1;
        } else {
            *n -= 1;
        }
        if len > 16 {
            let n = &mut self.longer16[(addr >> 16) as usize];
            if added {
                *n += 1;
            } else {
                *n -= 1;
            }
        }
        if len <= prefix_bits::MAX_LEN {
            self.present.set(addr, len, added);
        }
    }

    /// The longest rule strictly shorter than `len` that covers `addr`.
    fn covering(&self, addr: u32, len: u8) -> (u32, u8) {
        (0..len)
            .rev()
            .filter(|l| self.per_len[usize::from(*l)] > 0)
            .filter(|l| *l > prefix_bits::MAX_LEN || self.present.get(addr, *l))
            .find_map(|l| {
                self.rules
                    .get(&(mask(addr, l), l))
                    .map(|leaf| (*leaf, l + 1))
            })
            .unwrap_or((0, 0))
    }

    /// Writes `leaf` into every leaf of `addr/len` whose depth passes `take`.
    fn paint(&mut self, addr: u32, len: u8, take: impl Fn(u8) -> bool, leaf: u32, depth: u8) {
        if len <= 24 {
            let first = (addr >> 8) as usize;
            let count = 1usize << (24 - len);
            for i in first..first + count {
                let cur = self.tbl24.get(i);
                if is_group(cur) {
                    let base = group_of(cur) * GROUP_LEAVES;
                    for j in base..base + GROUP_LEAVES {
                        if take(self.depth8[j]) {
                            self.depth8[j] = depth;
                            self.tbl8.set(j, leaf);
                        }
                    }
                } else if take(self.depth24[i]) {
                    self.depth24[i] = depth;
                    self.tbl24.set(i, leaf);
                }
            }
        } else {
            let cur = self.tbl24.get((addr >> 8) as usize);
            debug_assert!(is_group(cur));
            let base = group_of(cur) * GROUP_LEAVES;
            let first = base + (addr & 0xff) as usize;
            for j in first..first + (1usize << (32 - len)) {
                if take(self.depth8[j]) {
                    self.depth8[j] = depth;
                    self.tbl8.set(j, leaf);
                }
            }
        }
    }

    /// Makes sure /24 `i` has a group; false when none is free.
    fn group_for(&mut self, i: usize) -> bool {
        let cur = self.tbl24.get(i);
        if is_group(cur) {
            return true;
        }
        if self.degraded.contains_key(&i) {
            return self.restore(i);
        }
        let Some(g) = self.take_group() else {
            return false;
        };
        let base = g * GROUP_LEAVES;
        for j in base..base + GROUP_LEAVES {
            self.tbl8.set(j, cur);
            self.depth8[j] = self.depth24[i];
        }
        // The group is complete before anything points to it.
        self.tbl8.publish();
        self.tbl24.set(i, group_leaf(g));
        true
    }

    /// Leaves /24 `i`, which has no group, to bpf_fib_lookup, counting
    /// `added` more rules inside it.
    fn degrade(&mut self, i: usize, added: usize) {
        match self.degraded.get_mut(&i) {
            Some(n) => *n += added,
            None => {
                self.degraded.insert(i, added);
                self.depth24[i] = DEGRADED;
                self.tbl24.set(i, fib_leaf());
            }
        }
    }

    /// /24 `i` holds no rule longer than /24 any more: its covering route
    /// answers again (one store replaces "ask bpf_fib_lookup").
    fn undegrade(&mut self, i: usize) {
        self.degraded.remove(&i);
        let (leaf, depth) = self.covering((i as u32) << 8, 25);
        self.depth24[i] = depth;
        self.tbl24.set(i, leaf);
    }

    /// Gives degraded /24 `i` a group built from its rules, complete before
    /// the first level points to it; false when no group is free.
    fn restore(&mut self, i: usize) -> bool {
        let Some(g) = self.take_group() else {
            return false;
        };
        let block = (i as u32) << 8;
        let (leaf, depth) = self.covering(block, 25);
        let base = g * GROUP_LEAVES;
        for j in base..base + GROUP_LEAVES {
            self.tbl8.set(j, leaf);
            self.depth8[j] = depth;
        }
        // Shorter rules first, so that longer ones paint over them.
        for len in 25..=32u8 {
            let span = 1usize << (32 - len);
            for first in (0..GROUP_LEAVES).step_by(span) {
                if let Some(&l) = self.rules.get(&(block | first as u32, len)) {
                    for j in base + first..base + first + span {
                        self.tbl8.set(j, l);
                        self.depth8[j] = len + 1;
                    }
                }
            }
        }
        self.tbl8.publish();
        self.degraded.remove(&i);
        self.depth24[i] = depth;
        self.tbl24.set(i, group_leaf(g));
        true
    }

    fn collapse_if_unneeded(&mut self, i: usize) {
        let cur = self.tbl24.get(i);
        if !is_group(cur) {
            return;
        }
        let g = group_of(cur);
        let base = g * GROUP_LEAVES;
        if self.depth8[base..base + GROUP_LEAVES]
            .iter()
            .any(|d| *d > 25)
        {
            return;
        }
        // Only rules of /24 or shorter remain: all leaves are the same.
        self.depth24[i] = self.depth8[base];
        self.tbl24.set(i, self.tbl8.get(base));
        self.group_slots.release(g);
    }

    fn take_group(&mut self) -> Option<usize> {
        self.group_slots.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::GRACE;
    use std::collections::HashMap;

    fn table(groups: usize) -> Dir24<Vec<u32>> {
        Dir24::new(
            vec![0; SUMMARY_WORDS],
            vec![0; TBL24_LEAVES],
            vec![0; groups * GROUP_LEAVES],
            groups,
        )
    }

    fn a(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    /// Sets (`Some`) or removes the rule for `addr/len` in the table and in
    /// the reference rules alike.
    fn update(
        t: &mut Dir24<Vec<u32>>,
        rules: &mut HashMap<(u32, u8), u32>,
        addr: u32,
        len: u8,
        leaf: Option<u32>,
    ) {
        let key = (mask(addr, len), len);
        match leaf {
            Some(leaf) => {
                t.insert(addr, len, leaf);
                rules.insert(key, leaf);
            }
            None => {
                t.remove(addr, len);
                rules.remove(&key);
            }
        }
    }

    #[test]
    fn groups_needed_counts_the_24s_with_longer_rules() {
        let mut t = table(2);
        for (p, len) in [
            ("10.0.0.0", 8),
            ("10.1.2.0", 24),
            ("10.1.2.128", 25),
            ("10.1.2.192", 26),
            ("10.1.3.1", 32),
            ("10.1.4.0", 28),
        ] {
            t.insert(a(p), len, route_leaf(1, 1));
        }
        // Three /24s need a group; two fit, one is degraded.
        assert_eq!((t.groups_in_use(), t.degraded_blocks()), (2, 1));
        assert_eq!(t.groups_needed(), 3);
    }

    /// Longest-prefix match by brute force over the rules.
    fn reference(rules: &HashMap<(u32, u8), u32>, addr: u32) -> u32 {
        (0..=32u8)
            .rev()
            .find_map(|l| rules.get(&(mask(addr, l), l)).copied())
            .unwrap_or(0)
    }

    #[test]
    fn longest_prefix_wins_across_both_levels() {
        let mut t = table(4);
        t.insert(a("10.0.0.0"), 8, route_leaf(0, 1));
        t.insert(a("10.1.2.0"), 24, route_leaf(0, 2));
        t.insert(a("10.1.2.128"), 25, route_leaf(0, 3));
        t.insert(a("10.1.2.130"), 32, route_leaf(1, 0));
        assert_eq!(t.lookup(a("10.9.9.9")), route_leaf(0, 1));
        assert_eq!(t.lookup(a("10.1.2.1")), route_leaf(0, 2));
        assert_eq!(t.lookup(a("10.1.2.129")), route_leaf(0, 3));
        assert_eq!(t.lookup(a("10.1.2.130")), route_leaf(1, 0));
        assert_eq!(t.lookup(a("11.0.0.1")), 0);
        // A shorter route added later does not override longer ones.
        t.insert(a("10.0.0.0"), 7, route_leaf(0, 9));
        assert_eq!(t.lookup(a("10.1.2.129")), route_leaf(0, 3));
        assert_eq!(t.lookup(a("11.0.0.1")), route_leaf(0, 9));
    }

    /// A /16 without longer rules is answered by its summary word; one
    /// with them, by the levels below, and the word follows every change.
    #[test]
    fn the_summary_answers_for_a_16_without_longer_rules() {
        let mut t = table(4);
        let word = |t: &Dir24<Vec<u32>>, s: &str| t.summary[(a(s) >> 16) as usize];
        t.insert(0, 0, route_leaf(0, 1));
        assert_eq!(word(&t, "8.8.8.8"), route_leaf(0, 1), "the default route");
        t.insert(a("10.0.0.0"), 8, route_leaf(0, 2));
        assert_eq!(word(&t, "10.200.0.1"), route_leaf(0, 2));
        t.insert(a("10.1.0.0"), 16, route_leaf(0, 3));
        assert_eq!(word(&t, "10.1.0.1"), route_leaf(0, 3), "a /16 of its own");
        t.insert(a("10.1.2.0"), 24, route_leaf(0, 4));
        assert_eq!(word(&t, "10.1.0.1"), SUMMARY_DEEPER);
        assert_eq!(t.lookup(a("10.1.2.1")), route_leaf(0, 4));
        assert_eq!(t.lookup(a("10.1.3.1")), route_leaf(0, 3));
        // A shorter route's change reaches the /16s that it covers and that
        // have no longer rules, and not the others.
        t.insert(a("10.0.0.0"), 8, route_leaf(0, 5));
        assert_eq!(word(&t, "10.200.0.1"), route_leaf(0, 5));
        assert_eq!(word(&t, "10.1.0.1"), SUMMARY_DEEPER);
        t.remove(a("10.1.2.0"), 24);
        assert_eq!(word(&t, "10.1.0.1"), route_leaf(0, 3));
        t.remove(a("10.1.0.0"), 16);
        assert_eq!(word(&t, "10.1.0.1"), route_leaf(0, 5));
        t.remove(a("10.0.0.0"), 8);
        assert_eq!(word(&t, "10.1.0.1"), route_leaf(0, 1));
        t.remove(0, 0);
        assert!(t.summary.iter().all(|w| *w == 0));
    }

    #[test]
    fn removal_restores_the_covering_route_and_frees_groups() {
        let mut t = table(1);
        t.insert(a("192.0.2.0"), 24, route_leaf(0, 1));
        t.insert(a("192.0.2.64"), 26, route_leaf(0, 2));
        assert_eq!(t.groups_in_use(), 1);
        t.remove(a("192.0.2.64"), 26);
        assert_eq!(t.lookup(a("192.0.2.65")), route_leaf(0, 1));
        assert_eq!(t.groups_in_use(), 0, "the group was released");
        // Its reuse waits for the grace period: meanwhile the /24 that
        // needs a group goes to bpf_fib_lookup as a whole.
        t.insert(a("198.51.100.0"), 25, route_leaf(0, 3));
        assert_eq!(t.lookup(a("198.51.100.1")), fib_leaf());
        assert_eq!(t.lookup(a("198.51.100.200")), fib_leaf());
        assert_eq!((t.degraded_blocks(), t.degraded_rules()), (1, 1));
        std::thread::sleep(GRACE);
        assert_eq!(t.retry(), 1);
        assert_eq!(t.lookup(a("198.51.100.1")), route_leaf(0, 3));
        assert_eq!(t.lookup(a("198.51.100.200")), 0);
        assert_eq!(t.degraded_blocks(), 0);
        t.remove(a("192.0.2.0"), 24);
        assert_eq!(t.lookup(a("192.0.2.65")), 0);
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut t = table(2);
        t.insert(0, 0, route_leaf(0, 7));
        t.insert(a("203.0.113.5"), 32, route_leaf(3, 0));
        assert_eq!(t.lookup(a("1.2.3.4")), route_leaf(0, 7));
        assert_eq!(t.lookup(a("203.0.113.5")), route_leaf(3, 0));
        assert_eq!(t.lookup(a("203.0.113.6")), route_leaf(0, 7));
        t.remove(0, 0);
        assert_eq!(t.lookup(a("203.0.113.6")), 0);
        assert_eq!(t.lookup(a("203.0.113.5")), route_leaf(3, 0));
    }

    /// What a lookup must find with degradation: the exact answer, or
    /// "ask bpf_fib_lookup" for an address whose /24 is degraded, which
    /// happens only to a /24 that holds a rule longer than /24.
    fn check(t: &Dir24<Vec<u32>>, rules: &HashMap<(u32, u8), u32>, probe: u32) {
        let block = (probe >> 8) as usize;
        let long = rules
            .keys()
            .filter(|(p, l)| *l > 24 && (p >> 8) as usize == block)
            .count();
        if t.degraded.contains_key(&block) {
            assert_eq!(t.lookup(probe), fib_leaf(), "{probe:#x} is degraded");
            assert_eq!(t.degraded[&block], long, "rules counted in {block:#x}");
        } else {
            assert_eq!(t.lookup(probe), reference(rules, probe), "{probe:#x}");
        }
    }

    /// Random churn in 16 /24s with 6 groups: every address answers
    /// exactly or, when its /24 could not get a group, from
    /// bpf_fib_lookup; every /24 with long rules has a group or is
    /// degraded; once long rules leave and the grace period is over,
    /// retry() brings every degraded /24 back.
    #[test]
    fn degrades_to_fib_when_groups_run_out_and_recovers() {
        let groups = 6;
        let mut t = table(groups);
        let mut rules = HashMap::new();
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15u64);
        let mut rnd = move || rng.u64(..);
        let base = a("10.0.0.0");
        for round in 0..3 {
            for step in 0..300u32 {
                let addr = base | ((rnd() as u32 % 16) << 8) | (rnd() as u32 & 0xff);
                let len = [20u8, 24, 25, 26, 28, 32][(rnd() % 6) as usize];
                let leaf = (rnd() % 3 != 0).then(|| route_leaf((rnd() % 4) as u32, step));
                update(&mut t, &mut rules, addr, len, leaf);
                let long_blocks: std::collections::HashSet<u32> = rules
                    .keys()
                    .filter(|(_, l)| *l > 24)
                    .map(|(p, _)| p >> 8)
                    .collect();
                assert_eq!(t.groups_in_use() + t.degraded_blocks(), long_blocks.len());
                for b in 0..16u32 {
                    for probe in [0, 1, 127, 128, 200, 255] {
                        check(&t, &rules, base | (b << 8) | probe);
                    }
                }
            }
            assert!(t.degraded_blocks() > 0, "round {round} filled the table");
            // Long rules leave all but four /24s: their groups come back
            // after the grace period, and every degraded /24 with them.
            rules.retain(|(p, l), _| {
                let keep = *l <= 24 || (p >> 8) & 0xf < 4;
                if !keep {
                    t.remove(*p, *l);
                }
                keep
            });
            std::thread::sleep(GRACE);
            t.retry();
            assert_eq!(t.degraded_blocks(), 0, "round {round}: all restored");
            for probe in (0..16 * 256).map(|i| base + i) {
                assert_eq!(t.lookup(probe), reference(&rules, probe), "{probe:#x}");
            }
        }
    }

    /// Random inserts and removals, concentrated in a few /16s so that
    /// prefixes nest, checked against brute-force matching.
    #[test]
    fn matches_brute_force_under_random_churn() {
        let mut t = table(2048);
        let mut rules = HashMap::new();
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1du64);
        let mut rnd = move || rng.u64(..);
        let bases = [a("10.0.0.0"), a("10.1.0.0"), a("172.16.0.0"), a("0.0.0.0")];
        // Short prefixes paint millions of leaves: a few, fixed, underneath.
        for (addr, len) in [(0, 0u8), (a("10.0.0.0"), 8)] {
            t.insert(addr, len, route_leaf(0, 100 + len as u32));
            rules.insert((addr, len), route_leaf(0, 100 + len as u32));
        }
        for step in 0..4000 {
            let base = bases[(rnd() % 4) as usize];
            let addr = base | (rnd() as u32 & 0xffff);
            let len = [12u8, 16, 20, 23, 24, 25, 26, 28, 30, 31, 32][(rnd() % 11) as usize];
            let leaf = (rnd() % 3 != 0).then(|| route_leaf((rnd() % 4) as u32, step));
            update(&mut t, &mut rules, addr, len, leaf);
            if step == 2000 {
                t.remove(a("10.0.0.0"), 8);
                rules.remove(&(a("10.0.0.0"), 8));
            }
            if step % 50 == 0 {
                for _ in 0..200 {
                    let probe = bases[(rnd() % 4) as usize] | (rnd() as u32 & 0xffff);
                    assert_eq!(
                        t.lookup(probe),
                        reference(&rules, probe),
                        "probe {probe:#x}"
                    );
                }
            }
        }
    }
}
