//! DIR-24-8: the IPv4 longest-prefix-match structure the datapath reads.
//!
//! A first level of 2^24 leaves indexed by the top 24 bits of the address,
//! and second-level groups of 256 leaves for the /24s that hold longer
//! prefixes. A lookup is one or two array reads whatever the table size.
//! accel keeps the rule set and the depth of every leaf here, in userspace,
//! and writes the leaves straight into the memory-mapped BPF arrays.
//!
//! The datapath must never see a half-written state: a group is filled
//! before the first-level leaf points to it, and a group that is no longer
//! pointed to is reused only after a grace period.

use std::collections::HashMap;

use crate::bpf::types::accel_dir24 as D;
use crate::slots::GraceSlots;

pub const TBL24_LEAVES: usize = D::ACCEL_TBL24_LEAVES.0 as usize;
pub const GROUP_LEAVES: usize = D::ACCEL_GROUP_LEAVES.0 as usize;

/// Leaf encoding, shared with the datapath through accel.h.
pub fn route_leaf(route_type: u32, nh_id: u32) -> u32 {
    D::ACCEL_LEAF_ROUTE.0
        | (route_type << D::ACCEL_LEAF_TYPE_SHIFT.0)
        | (nh_id & D::ACCEL_LEAF_ID_MASK.0)
}

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

#[derive(Debug, thiserror::Error)]
#[error("all {0} second-level groups are in use")]
pub struct GroupsExhausted(pub usize);

pub struct Dir24<S: LeafStore> {
    tbl24: S,
    tbl8: S,
    /// Prefix length + 1 of the rule that set each leaf; 0: none.
    depth24: Vec<u8>,
    depth8: Vec<u8>,
    rules: HashMap<(u32, u8), u32>,
    groups: usize,
    group_slots: GraceSlots,
}

fn mask(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - len))
    }
}

impl<S: LeafStore> Dir24<S> {
    /// Both stores must start zeroed (no routes).
    pub fn new(tbl24: S, tbl8: S, groups: usize) -> Self {
        Dir24 {
            tbl24,
            tbl8,
            depth24: vec![0; TBL24_LEAVES],
            depth8: vec![0; groups * GROUP_LEAVES],
            rules: HashMap::new(),
            groups,
            group_slots: GraceSlots::new(0, groups),
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

    /// Adds or replaces the rule for `addr/len` (host byte order).
    pub fn insert(&mut self, addr: u32, len: u8, leaf: u32) -> Result<(), GroupsExhausted> {
        let addr = mask(addr, len);
        if self.rules.get(&(addr, len)) == Some(&leaf) {
            return Ok(());
        }
        if len > 24 {
            self.ensure_group((addr >> 8) as usize)?;
        }
        self.rules.insert((addr, len), leaf);
        let depth = len + 1;
        self.paint(addr, len, |d| d <= depth, leaf, depth);
        Ok(())
    }

    pub fn remove(&mut self, addr: u32, len: u8) {
        let addr = mask(addr, len);
        if self.rules.remove(&(addr, len)).is_none() {
            return;
        }
        let (leaf, depth) = self.covering(addr, len);
        let own = len + 1;
        self.paint(addr, len, |d| d == own, leaf, depth);
        if len > 24 {
            self.collapse_if_unneeded((addr >> 8) as usize);
        }
    }

    /// What the datapath finds for `addr`: the route leaf, or 0.
    pub fn lookup(&self, addr: u32) -> u32 {
        let leaf = self.tbl24.get((addr >> 8) as usize);
        if is_group(leaf) {
            self.tbl8
                .get(group_of(leaf) * GROUP_LEAVES + (addr & 0xff) as usize)
        } else {
            leaf
        }
    }

    /// The longest rule strictly shorter than `len` that covers `addr`.
    fn covering(&self, addr: u32, len: u8) -> (u32, u8) {
        (0..len)
            .rev()
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

    fn ensure_group(&mut self, i: usize) -> Result<usize, GroupsExhausted> {
        let cur = self.tbl24.get(i);
        if is_group(cur) {
            return Ok(group_of(cur));
        }
        let g = self.take_group().ok_or(GroupsExhausted(self.groups))?;
        let base = g * GROUP_LEAVES;
        for j in base..base + GROUP_LEAVES {
            self.tbl8.set(j, cur);
            self.depth8[j] = self.depth24[i];
        }
        // The group is complete before anything points to it.
        self.tbl8.publish();
        self.tbl24.set(i, group_leaf(g));
        Ok(g)
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

    fn table(groups: usize) -> Dir24<Vec<u32>> {
        Dir24::new(
            vec![0; TBL24_LEAVES],
            vec![0; groups * GROUP_LEAVES],
            groups,
        )
    }

    fn a(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
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
        t.insert(a("10.0.0.0"), 8, route_leaf(0, 1)).unwrap();
        t.insert(a("10.1.2.0"), 24, route_leaf(0, 2)).unwrap();
        t.insert(a("10.1.2.128"), 25, route_leaf(0, 3)).unwrap();
        t.insert(a("10.1.2.130"), 32, route_leaf(1, 0)).unwrap();
        assert_eq!(t.lookup(a("10.9.9.9")), route_leaf(0, 1));
        assert_eq!(t.lookup(a("10.1.2.1")), route_leaf(0, 2));
        assert_eq!(t.lookup(a("10.1.2.129")), route_leaf(0, 3));
        assert_eq!(t.lookup(a("10.1.2.130")), route_leaf(1, 0));
        assert_eq!(t.lookup(a("11.0.0.1")), 0);
        // A shorter route added later does not override longer ones.
        t.insert(a("10.0.0.0"), 7, route_leaf(0, 9)).unwrap();
        assert_eq!(t.lookup(a("10.1.2.129")), route_leaf(0, 3));
        assert_eq!(t.lookup(a("11.0.0.1")), route_leaf(0, 9));
    }

    #[test]
    fn removal_restores_the_covering_route_and_frees_groups() {
        let mut t = table(1);
        t.insert(a("192.0.2.0"), 24, route_leaf(0, 1)).unwrap();
        t.insert(a("192.0.2.64"), 26, route_leaf(0, 2)).unwrap();
        assert_eq!(t.groups_in_use(), 1);
        t.remove(a("192.0.2.64"), 26);
        assert_eq!(t.lookup(a("192.0.2.65")), route_leaf(0, 1));
        assert_eq!(t.groups_in_use(), 0, "the group was released");
        // Its reuse waits for the grace period.
        assert!(t.insert(a("198.51.100.0"), 25, route_leaf(0, 3)).is_err());
        std::thread::sleep(GRACE);
        t.insert(a("198.51.100.0"), 25, route_leaf(0, 3)).unwrap();
        t.remove(a("192.0.2.0"), 24);
        assert_eq!(t.lookup(a("192.0.2.65")), 0);
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut t = table(2);
        t.insert(0, 0, route_leaf(0, 7)).unwrap();
        t.insert(a("203.0.113.5"), 32, route_leaf(3, 0)).unwrap();
        assert_eq!(t.lookup(a("1.2.3.4")), route_leaf(0, 7));
        assert_eq!(t.lookup(a("203.0.113.5")), route_leaf(3, 0));
        assert_eq!(t.lookup(a("203.0.113.6")), route_leaf(0, 7));
        t.remove(0, 0);
        assert_eq!(t.lookup(a("203.0.113.6")), 0);
        assert_eq!(t.lookup(a("203.0.113.5")), route_leaf(3, 0));
    }

    /// Random inserts and removals, concentrated in a few /16s so that
    /// prefixes nest, checked against brute-force matching.
    #[test]
    fn matches_brute_force_under_random_churn() {
        let mut t = table(2048);
        let mut rules = HashMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let bases = [a("10.0.0.0"), a("10.1.0.0"), a("172.16.0.0"), a("0.0.0.0")];
        // Short prefixes paint millions of leaves: a few, fixed, underneath.
        for (addr, len) in [(0, 0u8), (a("10.0.0.0"), 8)] {
            t.insert(addr, len, route_leaf(0, 100 + len as u32))
                .unwrap();
            rules.insert((addr, len), route_leaf(0, 100 + len as u32));
        }
        for step in 0..4000 {
            let base = bases[(rnd() % 4) as usize];
            let addr = base | (rnd() as u32 & 0xffff);
            let len = [12u8, 16, 20, 23, 24, 25, 26, 28, 30, 31, 32][(rnd() % 11) as usize];
            let key = (mask(addr, len), len);
            if rnd() % 3 == 0 {
                t.remove(addr, len);
                rules.remove(&key);
            } else {
                let leaf = route_leaf((rnd() % 4) as u32, step);
                t.insert(addr, len, leaf).unwrap();
                rules.insert(key, leaf);
            }
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
