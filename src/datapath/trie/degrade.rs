//! Degraded leaves of a route trie: what happens when nodes run out.
//!
//! A leaf that needs a node below it when none is free becomes "ask
//! bpf_fib_lookup" (with the depth [`DEGRADED`], which no route paints
//! over) for its whole range: exact, since the kernel's own lookup answers
//! for every address in it. The rules longer than the range that lie inside
//! it are kept per region, so that the region can be rebuilt once nodes are
//! free again ([`Trie::retry`]) or folds back into its covering route when
//! its last such rule leaves.
//!
//! A rebuild never shows the datapath a wrong answer: the new node is
//! filled with "ask bpf_fib_lookup" before it is linked, then each of its
//! leaves gets its final answer, or a node of its own the same way. When
//! nodes run out half-way, the leaves still waiting stay degraded as
//! regions of their own.

use std::collections::{BTreeMap, BTreeSet};

use super::{index, level_of, mask, node_leaf, Slot, Trie, NODE_LEAVES, STRIDE};
use crate::datapath::leaves::{fib_leaf, LeafStore, DEGRADED};

type Rule = (u128, u8);

impl<S: LeafStore> Trie<S> {
    /// Ranges left to bpf_fib_lookup for lack of nodes.
    pub fn degraded_regions(&self) -> usize {
        self.degraded.len()
    }

    /// Rules inside degraded ranges (longer than the range).
    pub fn degraded_rules(&self) -> usize {
        self.degraded.values().map(BTreeSet::len).sum()
    }

    /// Rebuilds degraded ranges, in address order, while nodes are free (a
    /// released one after its grace period), and gives the datapath's
    /// copy of nodes left without lines another try. Returns how many
    /// ranges came back (some of their sub-ranges may still wait).
    pub fn retry(&mut self) -> usize {
        let regions: Vec<Rule> = self.degraded.keys().copied().collect();
        let mut restored = 0;
        for r in regions {
            let slot = *self.path(r.0, level_of(r.1)).last().expect("root");
            if !self.restore(slot, r) {
                break;
            }
            restored += 1;
        }
        let unplaced = self.unplaced_tops().len();
        self.mark_unplaced();
        self.flush();
        restored + unplaced.saturating_sub(self.unplaced_tops().len())
    }

    /// Leaves `slot`, the leaf of `region` (which has no node), to
    /// bpf_fib_lookup, with `rule` inside.
    pub(super) fn degrade(&mut self, slot: Slot, region: Rule, rule: Rule) {
        let inside = self.degraded.entry(region).or_default();
        let fresh = inside.is_empty();
        inside.insert(rule);
        if fresh {
            self.set(slot, fib_leaf(), DEGRADED);
        }
    }

    /// `rule` left the degraded `region` at the end of `path`. After the
    /// last one, the region's covering route answers again and nodes that
    /// hold nothing more fold.
    pub(super) fn forget(&mut self, path: &[Slot], region: Rule, rule: Rule) {
        let inside = self
            .degraded
            .get_mut(&region)
            .expect("a degraded leaf has its region");
        inside.remove(&rule);
        if !inside.is_empty() {
            return;
        }
        self.degraded.remove(&region);
        let (leaf, depth) = self.covering(region.0, region.1 + 1);
        self.set(*path.last().expect("root"), leaf, depth);
        self.collapse(path);
    }

    /// Gives degraded `region`, whose leaf is `slot`, a node again (see the
    /// module comment); false when not even that node is free.
    pub(super) fn restore(&mut self, slot: Slot, region: Rule) -> bool {
        let Some(n) = self.take_node() else {
            return false;
        };
        let inside = self
            .degraded
            .remove(&region)
            .expect("restoring a degraded region");
        let base = n * NODE_LEAVES;
        self.fill_node(n, level_of(region.1 + 1), fib_leaf(), DEGRADED);
        let cover = self.covering(region.0, region.1 + 1);
        self.out.meta[n].base = cover;
        self.set(slot, node_leaf(n), cover.1);

        let child_len = region.1 + STRIDE;
        let k = level_of(child_len);
        let mut deeper: BTreeMap<usize, BTreeSet<Rule>> = BTreeMap::new();
        for r in inside.into_iter().filter(|r| r.1 > child_len) {
            deeper.entry(index(r.0, k)).or_default().insert(r);
        }
        for j in 0..NODE_LEAVES {
            let child = (region.0 | ((j as u128) << (128 - child_len)), child_len);
            let child_slot = Slot::Node(base + j);
            match deeper.remove(&j) {
                Some(rules) => {
                    // Stays degraded, as a region of its own, if no node is
                    // left for it.
                    self.degraded.insert(child, rules);
                    self.restore(child_slot, child);
                }
                None => {
                    let (leaf, depth) = self.answer(child, cover);
                    self.set(child_slot, leaf, depth);
                }
            }
        }
        true
    }

    /// The answer for the leaf of range `child` in a node: the longest rule
    /// of the node's level covering it, else `cover`, the node's covering
    /// rule (leaf and depth).
    fn answer(&self, child: Rule, cover: (u32, u8)) -> (u32, u8) {
        (child.1 - STRIDE + 1..=child.1)
            .rev()
            .find_map(|l| {
                self.rules
                    .get(mask(child.0, l), l)
                    .map(|leaf| (leaf, l + 1))
            })
            .unwrap_or(cover)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::tests::{a, logged, reference, states_seen, table, update, Rnd, LENS};
    use super::*;
    use crate::datapath::leaves::{is_capacity_leaf, route_leaf};
    use crate::slots::GRACE;

    /// The degraded region `addr` lies in, if any.
    fn region_of<S: LeafStore>(t: &Trie<S>, addr: u128) -> Option<Rule> {
        t.degraded
            .keys()
            .find(|(p, l)| mask(addr, *l) == *p)
            .copied()
    }

    /// An address answers exactly, or from bpf_fib_lookup inside a
    /// degraded region, which holds exactly the rules inside it that are
    /// longer than it.
    fn check<S: LeafStore>(t: &Trie<S>, rules: &HashMap<Rule, u32>, addr: u128) {
        match region_of(t, addr) {
            Some((p, l)) => {
                assert_eq!(t.lookup(addr), fib_leaf(), "{addr:#x} in {p:#x}/{l}");
                let want: BTreeSet<Rule> = rules
                    .keys()
                    .filter(|(rp, rl)| *rl > l && mask(*rp, l) == p)
                    .copied()
                    .collect();
                assert_eq!(t.degraded[&(p, l)], want, "rules of {p:#x}/{l}");
            }
            None => assert_eq!(t.lookup(addr), reference(rules, addr), "{addr:#x}"),
        }
    }

    /// Random churn with 40 nodes (the same workload needs hundreds):
    /// every address answers exactly or, inside a degraded range, from
    /// bpf_fib_lookup; once most rules leave and the grace period is over,
    /// retry() rebuilds every range and all answers are exact again.
    #[test]
    fn degrades_to_fib_when_nodes_run_out_and_recovers() {
        let mut t = table(40);
        let mut rules = HashMap::new();
        let mut rnd = Rnd(fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d));
        let bases = [a("2001:db8::"), a("2001:db9::"), a("2a00:1450::")];
        for round in 0..3 {
            for step in 0..400u32 {
                let addr = rnd.addr(&bases);
                let len = LENS[1 + (rnd.next() % (LENS.len() as u64 - 1)) as usize];
                let leaf = (rnd.next() % 3 != 0).then(|| route_leaf((rnd.next() % 4) as u32, step));
                update(&mut t, &mut rules, addr, len, leaf);
                for _ in 0..20 {
                    check(&t, &rules, rnd.addr(&bases));
                }
                for &(p, l) in rules.keys() {
                    check(&t, &rules, p);
                    check(&t, &rules, p | !mask(u128::MAX, l));
                }
            }
            assert!(t.degraded_regions() > 0, "round {round} ran out of nodes");
            // Keep only the rules that cover two /48s: they fit again.
            let keep = [a("2001:db8:12::"), a("2a00:1450:ab::")];
            rules.retain(|(p, l), _| {
                let kept = *l <= 48 && keep.iter().any(|k| mask(*k, *l) == *p);
                if !kept {
                    t.remove(*p, *l);
                }
                kept
            });
            std::thread::sleep(GRACE);
            t.retry();
            t.check_bases();
            assert_eq!(t.degraded_regions(), 0, "round {round}: all rebuilt");
            for _ in 0..2000 {
                let addr = rnd.addr(&bases);
                assert_eq!(t.lookup(addr), reference(&rules, addr), "{addr:#x}");
            }
            for &(p, l) in rules.keys() {
                for addr in [p, p | !mask(u128::MAX, l)] {
                    assert_eq!(t.lookup(addr), reference(&rules, addr), "{addr:#x}");
                }
            }
        }
    }

    /// Tiny trie, freed nodes reused at once, rebuilds every few steps:
    /// after every single leaf write of an update or a rebuild (partial
    /// ones included), a lookup finds what it found before, the exact
    /// answer from before (a degraded range rebuilt on the way to a new
    /// rule shows the old routes until the new one is painted, as any
    /// update does), the one from after, or "ask bpf_fib_lookup" (always
    /// right); after each, answers are exact outside degraded ranges.
    #[test]
    fn every_intermediate_state_answers_old_new_or_fib() {
        let mut t = logged(24);
        t.node_slots = t.node_slots.clone().without_grace();
        let mut rules = HashMap::new();
        let mut rnd = Rnd(fastrand::Rng::with_seed(0x853c_49e6_748f_ea9b));
        let bases = [a("2001:db8::"), a("2001:db9::")];
        let (mut degraded, mut restored) = (0, 0);
        for step in 0..1500u32 {
            let (mut addr, mut len) = (
                rnd.addr(&bases),
                LENS[1 + (rnd.next() % (LENS.len() as u64 - 1)) as usize],
            );
            let remove = rnd.next() % 2 == 0 && !rules.is_empty();
            if remove {
                // An existing rule, so that nodes free up.
                let mut keys: Vec<Rule> = rules.keys().copied().collect();
                keys.sort_unstable();
                (addr, len) = keys[(rnd.next() % keys.len() as u64) as usize];
            }
            let probes: Vec<u128> = (0..40)
                .map(|_| rnd.addr(&bases))
                .chain([mask(addr, len), addr])
                .collect();
            let before: Vec<u32> = probes.iter().map(|p| t.lookup(*p)).collect();
            let exact: Vec<u32> = probes.iter().map(|p| reference(&rules, *p)).collect();
            let leaf = (!remove).then(|| route_leaf(0, step + 1));
            let seen = states_seen(&mut t, &probes, |t| {
                if step % 7 == 0 {
                    restored += t.retry();
                    t.check_bases();
                } else {
                    update(t, &mut rules, addr, len, leaf);
                }
            });
            degraded += usize::from(t.degraded_regions() > 0);
            let after: Vec<u32> = probes.iter().map(|p| t.lookup(*p)).collect();
            for state in seen {
                for (k, p) in probes.iter().enumerate() {
                    assert!(
                        [before[k], exact[k], after[k]].contains(&state[k])
                            || is_capacity_leaf(state[k]),
                        "step {step}: {p:#x} saw {:#x}, not {:#x}, {:#x} or {:#x}",
                        state[k],
                        before[k],
                        exact[k],
                        after[k]
                    );
                }
            }
            for p in &probes {
                check(&t, &rules, *p);
            }
        }
        // Most of the run with some region degraded, else the test proves little.
        assert!(degraded > 200, "degraded in {degraded} steps");
        assert!(restored > 20, "{restored} rebuilds");
    }
}
