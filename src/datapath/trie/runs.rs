//! A node's 256 leaves as the trie keeps them: the runs of equal leaf and
//! depth, in order.
//!
//! Most nodes hold a few runs (the full IPv6 table averages 7.7 a node,
//! IPv4 39), so a node takes 8 bytes a run where 256 leaves and their
//! depths took 1,280: about 15 MiB for both full tables instead of 80. An
//! update rewrites the runs it covers; the datapath's runs (equal leaves,
//! whatever their depth) are derived from these at the flush.

use thin_vec::ThinVec;

use super::{is_node, NODE_LEAVES};

/// Leaves `start..` (up to the next run's start) hold `leaf`, set by a
/// rule of depth `depth` (prefix length + 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub leaf: u32,
    pub start: u8,
    pub depth: u8,
}

impl Run {
    fn same(&self, o: &Run) -> bool {
        (self.leaf, self.depth) == (o.leaf, o.depth)
    }
}

/// Runs in order of their start, the first at 0, no two neighbours alike.
/// One pointer (the length lives with the runs) keeps a node's
/// bookkeeping in one cache line (see `encode::Meta`).
#[derive(Clone, Default)]
pub(super) struct Runs(ThinVec<Run>);

impl Runs {
    /// One run: every leaf `leaf` at `depth`.
    pub fn fill(&mut self, leaf: u32, depth: u8) {
        self.0.clear();
        self.0.push(Run {
            leaf,
            start: 0,
            depth,
        });
    }

    /// The node is gone: its memory with it.
    pub fn release(&mut self) {
        self.0 = ThinVec::new();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The run holding leaf `j`. A linear scan, not a binary search: the
    /// runs are usually cold (a route event touches a node once), and a
    /// scan's loads do not wait for each other, where a binary search's
    /// misses come one after the other (6 of them for 39 runs, the IPv4
    /// average).
    fn at(&self, j: usize) -> usize {
        self.0
            .iter()
            .position(|r| usize::from(r.start) > j)
            .unwrap_or(self.0.len())
            - 1
    }

    /// Asks for the cache line the runs start in, without reading it
    /// (see `Trie::warm`).
    pub fn prefetch_start(&self) {
        // Header and first runs. The data pointer is the header's plus 16
        // (as_ptr() goes through as_slice(), whose load of the length is
        // unused here and compiled away).
        let data = self.0.as_ptr();
        crate::prefetch::line(data.cast::<u8>().wrapping_sub(16));
        crate::prefetch::line(data);
    }

    /// Asks for the rest of the runs' lines; their start is in cache.
    pub fn prefetch_rest(&self) {
        const PER_LINE: usize = 64 / std::mem::size_of::<Run>();
        // Every 64 bytes from the start, and the last run, whose line a
        // step can pass over when the runs do not start a line.
        for r in self.0.iter().step_by(PER_LINE).skip(1).chain(self.0.last()) {
            crate::prefetch::line(r);
        }
    }

    /// Where run `k` ends (exclusive).
    pub fn end(&self, k: usize) -> usize {
        self.0
            .get(k + 1)
            .map_or(NODE_LEAVES, |r| usize::from(r.start))
    }

    /// Leaf `j` and its depth.
    pub fn get(&self, j: usize) -> (u32, u8) {
        let r = self.0[self.at(j)];
        (r.leaf, r.depth)
    }

    /// Whether any leaf passes `keeps` (leaf, depth).
    pub fn any(&self, keeps: impl Fn(u32, u8) -> bool) -> bool {
        self.0.iter().any(|r| keeps(r.leaf, r.depth))
    }

    /// Leaves `lo..hi` whose leaf and depth pass `take` become `leaf` at
    /// `depth`; `below` is told of every node pointer among them that is
    /// not taken. Returns the span of the leaves that changed (start, end
    /// exclusive), if any: the flush writes those. `scratch` is kept by
    /// the caller for its allocation.
    #[allow(clippy::too_many_arguments)]
    pub fn paint(
        &mut self,
        lo: usize,
        hi: usize,
        take: impl Fn(u32, u8) -> bool,
        leaf: u32,
        depth: u8,
        scratch: &mut Vec<Run>,
        mut below: impl FnMut(u32),
    ) -> Option<(usize, usize)> {
        // The runs the range touches and their neighbours, which a new
        // run may join.
        let at_lo = self.at(lo);
        let at_hi = if hi == lo + 1 { at_lo } else { self.at(hi - 1) };
        let first = at_lo.saturating_sub(1);
        let last = (at_hi + 1).min(self.0.len() - 1);
        scratch.clear();
        let mut changed: Option<(usize, usize)> = None;
        let mut push = |r: Run| match scratch.last() {
            Some(p) if p.same(&r) => {}
            _ => scratch.push(r),
        };
        for k in first..=last {
            let r = self.0[k];
            let (s, e) = (usize::from(r.start), self.end(k));
            if e <= lo || s >= hi || !take(r.leaf, r.depth) {
                if e > lo && s < hi && is_node(r.leaf) {
                    below(r.leaf);
                }
                push(r);
                continue;
            }
            if s < lo {
                push(r);
            }
            if (r.leaf, r.depth) != (leaf, depth) {
                let (a, b) = (s.max(lo), e.min(hi));
                changed = Some(changed.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            }
            push(Run {
                leaf,
                start: s.max(lo) as u8,
                depth,
            });
            if e > hi {
                push(Run {
                    start: hi as u8,
                    ..r
                });
            }
        }
        // Taken leaves that were already `leaf` at `depth` leave the runs
        // as they were.
        if changed.is_some() {
            self.0.splice(first..=last, scratch.drain(..));
        }
        changed
    }

    /// The runs from the one holding leaf `j` on: (start, end, leaf).
    pub fn from(&self, j: usize) -> impl Iterator<Item = (usize, usize, u32)> + '_ {
        (self.at(j)..self.0.len())
            .map(|k| (usize::from(self.0[k].start), self.end(k), self.0[k].leaf))
    }

    /// Where the runs of equal leaves (leaves of one value, whatever their
    /// depths) start, a bit per leaf, and how many there are: what the
    /// flush needs of every changed node. One pass without a branch on
    /// the leaves: they change unpredictably from run to run, and a loop
    /// that branched on them mispredicted at most run boundaries.
    pub fn leaf_run_starts(&self) -> ([u64; 4], usize) {
        let mut bits = [0u64; 4];
        // No leaf is u64::MAX: the first run always starts one.
        let mut prev = u64::MAX;
        for r in self.0.iter() {
            let starts = u64::from(u64::from(r.leaf) != prev);
            bits[usize::from(r.start) / 64] |= starts << (r.start % 64);
            prev = u64::from(r.leaf);
        }
        let runs = bits.iter().map(|b| b.count_ones() as usize).sum();
        (bits, runs)
    }

    /// The runs of equal leaves the datapath sees, whatever their depths:
    /// (start, end, leaf) in order.
    #[cfg(test)]
    pub fn leaf_runs(&self) -> impl Iterator<Item = (usize, usize, u32)> + '_ {
        let mut k = 0;
        std::iter::from_fn(move || {
            let r = self.0.get(k)?;
            let mut e = k + 1;
            while self.0.get(e).is_some_and(|n| n.leaf == r.leaf) {
                e += 1;
            }
            k = e;
            Some((usize::from(r.start), self.end(e - 1), r.leaf))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 256 leaves and depths the runs stand for.
    fn expand(r: &Runs) -> Vec<(u32, u8)> {
        (0..NODE_LEAVES).map(|j| r.get(j)).collect()
    }

    fn check(r: &Runs) {
        assert_eq!(r.0[0].start, 0);
        for w in r.0.windows(2) {
            assert!(w[0].start < w[1].start, "{:?}", r.0);
            assert!(!w[0].same(&w[1]), "neighbours alike: {:?}", r.0);
        }
    }

    /// Random paints against the same paints on 256 plain leaves.
    #[test]
    fn paints_match_plain_leaves() {
        let mut rng = fastrand::Rng::with_seed(0x5eed_0012);
        let mut scratch = Vec::new();
        for _ in 0..200 {
            let mut r = Runs::default();
            r.fill(1, 1);
            let mut plain = vec![(1u32, 1u8); NODE_LEAVES];
            for _ in 0..60 {
                let lo = rng.usize(..NODE_LEAVES);
                let len = rng.usize(1..80);
                let hi = rng.usize(lo + 1..=NODE_LEAVES.min(lo + len));
                let (leaf, depth) = (rng.u32(1..4), rng.u8(1..6));
                let max = rng.u8(1..6);
                let take = |_: u32, d: u8| d <= max;
                let before = plain.clone();
                for p in &mut plain[lo..hi] {
                    if take(p.0, p.1) {
                        *p = (leaf, depth);
                    }
                }
                let diff: Vec<usize> = (0..NODE_LEAVES)
                    .filter(|&j| before[j] != plain[j])
                    .collect();
                match r.paint(lo, hi, take, leaf, depth, &mut scratch, |_| {}) {
                    None => assert!(diff.is_empty()),
                    Some((a, b)) => {
                        assert!(
                            a <= diff[0] && diff[diff.len() - 1] < b,
                            "{a}..{b}: {diff:?}"
                        );
                        assert!(a >= lo && b <= hi);
                    }
                }
                check(&r);
                assert_eq!(expand(&r), plain);
                let runs: Vec<_> = r.leaf_runs().collect();
                let mut at = 0;
                for (i, &(s, e, l)) in runs.iter().enumerate() {
                    assert_eq!(s, at);
                    assert!(plain[s..e].iter().all(|p| p.0 == l));
                    if i > 0 {
                        assert_ne!(runs[i - 1].2, l);
                    }
                    at = e;
                }
                assert_eq!(at, NODE_LEAVES);
                let (bits, count) = r.leaf_run_starts();
                assert_eq!(count, runs.len());
                for (s, _, _) in runs {
                    assert!(bits[s / 64] & (1 << (s % 64)) != 0, "run at {s}");
                }
            }
        }
    }

    #[test]
    fn children_and_keepers() {
        let mut r = Runs::default();
        let mut scratch = Vec::new();
        r.fill(5, 1);
        let node = crate::bpf::types::accel_leaf::ACCEL_LEAF_EXT.0 | 3;
        r.paint(10, 11, |_, _| true, node, 1, &mut scratch, |_| {});
        r.paint(20, 30, |_, _| true, 6, 9, &mut scratch, |_| {});
        let mut seen = Vec::new();
        let not_nodes = |l: u32, _| !is_node(l);
        r.paint(0, NODE_LEAVES, not_nodes, 7, 2, &mut scratch, |c| {
            seen.push(c)
        });
        assert_eq!(seen, [node], "the node pointer is passed on, not painted");
        seen.clear();
        r.paint(11, 20, not_nodes, 8, 2, &mut scratch, |c| seen.push(c));
        assert!(seen.is_empty());
        assert_eq!(r.get(10).0, node);
        assert_eq!(r.get(15), (8, 2));
        assert!(!r.any(|_, d| d > 2));
        assert!(r.any(|l, _| is_node(l)));
        assert_eq!(r.len(), 4);
    }
}
