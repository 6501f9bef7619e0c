//! The longest-prefix-match structure the datapath reads for both
//! families (fib.h).
//!
//! A multibit trie with leaf pushing and strides 16-8-8-...-8: a root of
//! 2^16 leaves indexed by the first 16 bits of the address, then nodes of
//! 256 leaves, one level per further byte. Every leaf holds the answer for
//! all the addresses under it (a route, nothing, or the next node), so a
//! lookup reads one leaf per level and stops at the first that is not a
//! node: at most three reads for IPv4, five under an IPv6 /48, at most
//! fifteen.
//!
//! Addresses are kept left-aligned in a `u128` (an IPv4 address in the top
//! 32 bits, see [`v4`]), so that one implementation serves both families.
//! The full IPv4 table (902k prefixes) needs about 25,900 nodes, the full
//! IPv6 table (160k) about 38,000. A prefix of length L lives in the level
//! whose bits contain bit L; shorter prefixes cover their range of leaves
//! there and every node below. accel keeps the rule set and every node's
//! leaves with their depths here, as runs ([`runs`]); the datapath's copy stores
//! each node in the form its runs of equal leaves need, written through
//! the memory-mapped BPF arrays at each [`Trie::flush`] (see [`encode`]):
//! about 9.7 MiB for the full IPv4 table, where 256 leaves a node took
//! 25 (and a DIR-24-8 80).
//!
//! The datapath must never see a half-written state: a node is complete
//! before anything points to it, each word written in place replaces one
//! valid answer by another, and a block that nothing points to any more
//! is reused only after a grace period.
//!
//! When the datapath's lines run out, nodes without them are left to
//! bpf_fib_lookup (see [`encode`]); a trie built with a node limit (tests)
//! *degrades* the leaf that needed a node to "ask bpf_fib_lookup" for its
//! whole range (see [`degrade`]).

mod degrade;
mod encode;
mod lines;
mod rules;
mod runs;
mod segment;
mod warm;

use std::collections::{BTreeMap, BTreeSet};

use smallvec::SmallVec;

use super::leaves::{LeafStore, DEGRADED};
use super::prefix_bits::{self, PrefixBits};
use crate::bpf::types::{accel_leaf as D, accel_trie as T};
use crate::fast_hash::WARM_AHEAD;
use crate::model::Family;
use crate::slots::GraceSlots;

pub use encode::{node_word, LINE_WORDS};
pub use warm::WarmBatches;

pub const ROOT_LEAVES: usize = T::ACCEL_ROOT_LEAVES.0 as usize;
pub const NODE_LEAVES: usize = T::ACCEL_NODE_LEAVES.0 as usize;
/// The default number of node lines of each family's trie.
pub const LINES4: usize = T::ACCEL_LINES4.0 as usize;
pub const LINES6: usize = T::ACCEL_LINES6.0 as usize;
/// The most nodes a trie holds in its own memory: far beyond any table
/// (the datapath's lines run out long before), within a leaf's id.
const MAX_NODES: usize = 1 << 22;
const ROOT_BITS: u8 = 16;
const STRIDE: u8 = 8;

fn node_leaf(n: usize) -> u32 {
    D::ACCEL_LEAF_EXT.0 | n as u32
}

fn is_node(leaf: u32) -> bool {
    leaf & D::ACCEL_LEAF_EXT.0 != 0
}

/// Whether a leaf keeps its node (whose own rules have depths above
/// `own`) from folding into the parent: a node below it, a rule of the
/// node's level, or a degraded range.
fn keeps(leaf: u32, depth: u8, own: u8) -> bool {
    is_node(leaf) || depth > own
}

fn node_of(leaf: u32) -> usize {
    (leaf & D::ACCEL_LEAF_ID_MASK.0) as usize
}

/// An IPv4 address (host order) as the trie keeps it: in the top 32 bits.
pub fn v4(addr: u32) -> u128 {
    u128::from(addr) << 96
}

/// An address of either family as its trie keeps it.
pub fn bits(addr: std::net::IpAddr) -> u128 {
    match addr {
        std::net::IpAddr::V4(a) => v4(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
    }
}

pub fn mask(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - len))
    }
}

/// The last bit (exclusive) that level `k` indexes.
fn level_end(k: u8) -> u8 {
    ROOT_BITS + STRIDE * k
}

/// The first bit that level `k` indexes.
fn level_start(k: u8) -> u8 {
    if k == 0 {
        0
    } else {
        level_end(k - 1)
    }
}

/// The level that holds prefixes of length `len`.
fn level_of(len: u8) -> u8 {
    if len <= ROOT_BITS {
        0
    } else {
        (len - ROOT_BITS).div_ceil(STRIDE)
    }
}

/// The lengths searched for the rule that covers a removed rule of length
/// `len` (see [`Trie::covering_in`]): from the first bit its level indexes
/// (`level_start`) up to `len`, exclusive; rules above hold the node's
/// base.
fn covering_search(len: u8) -> std::ops::Range<u8> {
    level_start(level_of(len))..len
}

/// The index of `addr` in a level-`k` node (or in the root).
fn index(addr: u128, k: u8) -> usize {
    let bits = level_end(k) - level_start(k);
    ((addr >> (128 - level_end(k))) & ((1u128 << bits) - 1)) as usize
}

/// The range of the level-`k` leaf that `addr` falls in, as a prefix.
fn region(addr: u128, k: u8) -> (u128, u8) {
    (mask(addr, level_end(k)), level_end(k))
}

/// A leaf position: in the root, or in the node store.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Root(usize),
    Node(usize),
}

/// The most levels an address crosses (IPv6: the root and 14 node levels).
const LEVELS: usize = T::ACCEL_TRIE6_LEVELS.0 as usize;

/// The slots on an address's way down, without an allocation per route
/// event.
struct Path {
    slots: [Slot; LEVELS],
    len: usize,
}

impl std::ops::Deref for Path {
    type Target = [Slot];
    fn deref(&self) -> &[Slot] {
        &self.slots[..self.len]
    }
}

pub struct Trie<S: LeafStore> {
    family: Family,
    /// The trie's leaves: the root here, the nodes of 256 as runs in
    /// `out`'s per-node lines, node pointers by the node's number. The
    /// datapath's copy (`out`) stores the nodes in compact form (see
    /// [`encode`]).
    root: Vec<u32>,
    out: encode::Out<S>,
    /// [`runs::Runs::paint`]'s scratch runs and [`Trie::paint_below`]'s
    /// list of node ranges still to paint, kept for their allocations.
    scratch: Vec<runs::Run>,
    work: Vec<(usize, usize, usize)>,
    /// Prefix length + 1 of the rule that set each root leaf; 0: none.
    depth_root: Vec<u8>,
    rules: rules::Rules,
    /// Rules per prefix length: the covering search of a removal probes
    /// the rule map only at lengths that have rules (of the 48 lengths
    /// shorter than a /48, the full table uses 30).
    per_len: [u32; 129],
    /// IPv4 only: the rules up to /24 as bits, so that the covering search
    /// probes the rule map once, for the rule that is there (a dozen
    /// lengths are in use below a /24 of the full table).
    present: Option<PrefixBits>,
    node_slots: GraceSlots,
    /// Degraded leaves by their range, with the rules longer than the
    /// range inside it (never none).
    degraded: BTreeMap<(u128, u8), BTreeSet<(u128, u8)>>,
}

impl<S: LeafStore> Trie<S> {
    /// The datapath's stores must start zeroed (no routes): `root` holds
    /// ROOT_LEAVES leaves, `lines` `max_lines` lines of LINE_WORDS words.
    pub fn new(family: Family, root: S, lines: S, max_lines: usize) -> Self {
        Trie {
            family,
            root: vec![0; ROOT_LEAVES],
            out: encode::Out::new(root, lines, max_lines),
            scratch: Vec::new(),
            work: Vec::new(),
            depth_root: vec![0; ROOT_LEAVES],
            rules: rules::Rules::new(family),
            per_len: [0; 129],
            present: (family == Family::V4).then(PrefixBits::default),
            node_slots: GraceSlots::new(0, MAX_NODES),
            degraded: BTreeMap::new(),
        }
    }

    /// At most `max_nodes` nodes: where they run out, ranges are degraded
    /// (see [`degrade`]); for tests of that path.
    #[cfg(test)]
    pub fn with_node_limit(mut self, max_nodes: usize) -> Self {
        self.node_slots = GraceSlots::new(0, max_nodes);
        self
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.len() == 0
    }

    pub fn nodes_in_use(&self) -> usize {
        self.node_slots.in_use(0)
    }

    fn get(&self, s: Slot) -> u32 {
        match s {
            Slot::Root(i) => self.root[i],
            Slot::Node(i) => self.leaves(i / NODE_LEAVES).get(i % NODE_LEAVES).0,
        }
    }

    fn depth(&self, s: Slot) -> u8 {
        match s {
            Slot::Root(i) => self.depth_root[i],
            Slot::Node(i) => self.leaves(i / NODE_LEAVES).get(i % NODE_LEAVES).1,
        }
    }

    /// Node `n`'s leaves.
    fn leaves(&self, n: usize) -> &runs::Runs {
        &self.out.meta[n].leaves
    }

    /// The depth of node `n`'s level's shortest rule.
    fn own(&self, n: usize) -> u8 {
        self.out.meta[n].own
    }

    fn set(&mut self, s: Slot, leaf: u32, depth: u8) {
        if is_node(leaf) {
            self.out.set_parent(node_of(leaf), s);
        }
        match s {
            Slot::Root(i) => {
                self.depth_root[i] = depth;
                self.root[i] = leaf;
                self.out.dirty_root.push(i);
            }
            Slot::Node(i) => {
                let (n, j) = (i / NODE_LEAVES, i % NODE_LEAVES);
                let all = |_, _| true;
                let node = &mut self.out.meta[n].leaves;
                if node
                    .paint(j, j + 1, all, leaf, depth, &mut self.scratch, |_| {})
                    .is_some()
                {
                    self.out.mark(n, j);
                }
            }
        }
    }

    /// Fills node `n` of level `k` with `leaf` at `depth` everywhere, before
    /// anything points to it.
    fn fill_node(&mut self, n: usize, k: u8, leaf: u32, depth: u8) {
        self.out.meta[n].leaves.fill(leaf, depth);
        self.out.meta[n].own = level_start(k) + 1;
        self.out.meta[n].base = (leaf, depth);
        self.out.filled(n);
    }

    /// Adds or replaces the rule for `addr/len` (host byte order). Without
    /// the nodes down to its level, the leaf where they run out is
    /// degraded. The datapath sees it at the next [`Trie::flush`].
    pub fn insert(&mut self, addr: u128, len: u8, leaf: u32) {
        assert!(len <= self.family.max_len(), "prefix length {len}");
        let addr = mask(addr, len);
        // One probe of the rule map (a cache miss at full-table size) for
        // both the old leaf and the new one.
        match self.rules.insert(addr, len, leaf) {
            Some(old) if old == leaf => return,
            Some(_) => {}
            None => self.count_rule(addr, len, true),
        }
        let level = level_of(len);
        // The nodes down to the prefix's level, each complete before it is
        // linked.
        let mut slot = Slot::Root(index(addr, 0));
        for k in 1..=level {
            match self.node_below(slot, addr, k - 1) {
                Some(n) => slot = Slot::Node(n * NODE_LEAVES + index(addr, k)),
                None => {
                    self.degrade(slot, region(addr, k - 1), (addr, len));
                    return;
                }
            }
        }
        let depth = len + 1;
        self.paint(len, slot, |d| d <= depth, leaf, depth);
    }

    /// Counts a rule added to (or removed from) the rule map.
    fn count_rule(&mut self, addr: u128, len: u8, added: bool) {
        let n = &mut self.per_len[usize::from(len)];
        if added {
            *n += 1;
        } else {
            *n -= 1;
        }
        if let Some(bits) = self
            .present
            .as_mut()
            .filter(|_| len <= prefix_bits::MAX_LEN)
        {
            bits.set((addr >> 96) as u32, len, added);
        }
    }

    /// Whether a rule may exist at `addr/len`: false only where the IPv4
    /// bits say there is none.
    fn may_have(&self, addr: u128, len: u8) -> bool {
        match &self.present {
            Some(bits) if len <= prefix_bits::MAX_LEN => bits.get((addr >> 96) as u32, len),
            _ => true,
        }
    }

    /// Touches what changing the rules of `batch` (address, length) will
    /// read first: each rule, and the nodes on its path with their runs
    /// (see [`crate::fast_hash::ShardedMap::warm`]). The paths are walked
    /// a level at a time across the batch, each level in passes (prefetch
    /// the nodes, then the start of their runs, then the rest, then read
    /// the next leaf), so that the batch's misses overlap; walked one rule
    /// at a time, each would wait for the one before it.
    fn warm(&self, batch: &[(u128, u8)]) {
        for &(addr, len) in batch {
            self.rules.warm(mask(addr, len), len);
            // The rule's own presence bit, which its change sets or clears.
            self.prefetch_present(addr, len);
        }
        self.warm_paths(batch, |_, _| {});
    }

    /// Touches what removing the rules of `batch` reads besides what
    /// [`Trie::warm`] touches: the presence bits of the lengths searched
    /// for the covering rule, then that rule's slot in the rule map (see
    /// [`Trie::covering_in`]). Each is a cache miss after the routing
    /// daemon has had the CPU (BENCHMARKS.md "The live event's cost is
    /// cold caches"). IPv4 only: IPv6 has no presence bits to say which
    /// of its lengths hold a rule there.
    fn warm_covering(&self, batch: &[(u128, u8)]) {
        if self.present.is_none() {
            return;
        }
        for &(addr, len) in batch {
            if len > self.family.max_len() {
                continue;
            }
            for l in covering_search(len).filter(|&l| self.per_len[usize::from(l)] > 0) {
                self.prefetch_present(addr, l);
            }
        }
        for &(addr, len) in batch {
            if let Some(l) = self.covering_guess(addr, len) {
                self.rules.warm(mask(addr, l), l);
            }
        }
    }

    /// The length of the first rule [`Trie::covering_in`] probes for when
    /// `addr/len` is removed: the rule that covers it wherever the presence
    /// bits answer (up to /24).
    fn covering_guess(&self, addr: u128, len: u8) -> Option<u8> {
        if len > self.family.max_len() {
            return None;
        }
        self.candidates(addr, covering_search(len)).next()
    }

    fn prefetch_present(&self, addr: u128, len: u8) {
        if let Some(bits) = self
            .present
            .as_ref()
            .filter(|_| len <= prefix_bits::MAX_LEN)
        {
            bits.prefetch((addr >> 96) as u32, len);
        }
    }

    /// The walk of [`Trie::warm`]: tells `reached` (rule's index in
    /// `batch`, node) of each rule that reaches a node of its own level.
    fn warm_paths(&self, batch: &[(u128, u8)], mut reached: impl FnMut(usize, usize)) {
        // On the stack for a burst's worth (see WarmBatches).
        let mut leaves: SmallVec<[u32; WARM_AHEAD]> = batch
            .iter()
            .map(|&(addr, _)| self.root[index(addr, 0)])
            .collect();
        let mut below: SmallVec<[usize; WARM_AHEAD]> = SmallVec::new();
        for k in 1..LEVELS as u8 {
            // The rules whose path goes on into a node at level k.
            below.clear();
            below.extend(
                (0..batch.len()).filter(|&i| is_node(leaves[i]) && k <= level_of(batch[i].1)),
            );
            if below.is_empty() {
                break;
            }
            for &i in &below {
                crate::prefetch::line(&self.out.meta[node_of(leaves[i])]);
            }
            for &i in &below {
                self.leaves(node_of(leaves[i])).prefetch_start();
            }
            for &i in &below {
                self.leaves(node_of(leaves[i])).prefetch_rest();
            }
            for &i in &below {
                let n = node_of(leaves[i]);
                if k < level_of(batch[i].1) {
                    // The next node, where the path goes deeper.
                    leaves[i] = self.leaves(n).get(index(batch[i].0, k)).0;
                } else {
                    reached(i, n);
                    leaves[i] = 0;
                }
            }
        }
    }

    /// Removes the rule for `addr/len`; the datapath sees it at the next
    /// [`Trie::flush`].
    pub fn remove(&mut self, addr: u128, len: u8) {
        if len > self.family.max_len() {
            return;
        }
        let addr = mask(addr, len);
        if self.rules.remove(addr, len).is_none() {
            return;
        }
        self.count_rule(addr, len, false);
        let level = level_of(len);
        let path = self.path(addr, level);
        if path.len() <= level as usize {
            // Inside a degraded leaf above the rule's level.
            let k = path.len() as u8 - 1;
            self.forget(&path, region(addr, k), (addr, len));
            return;
        }
        let slot = *path.last().expect("the root is always on the path");
        let (leaf, depth) = self.covering_in(slot, addr, len);
        let own = len + 1;
        self.paint(len, slot, |d| d == own, leaf, depth);
        self.collapse(&path);
    }

    /// What the datapath finds for `addr`: the route leaf, or 0.
    pub fn lookup(&self, addr: u128) -> u32 {
        let mut leaf = self.root[index(addr, 0)];
        let mut k = 1;
        while is_node(leaf) {
            leaf = self.leaves(node_of(leaf)).get(index(addr, k)).0;
            k += 1;
        }
        leaf
    }

    /// The slots of `addr` from the root down to level `level`, or to the
    /// degraded leaf that stops the way there.
    fn path(&self, addr: u128, level: u8) -> Path {
        let mut path = Path {
            slots: [Slot::Root(index(addr, 0)); LEVELS],
            len: 1,
        };
        for k in 1..=level {
            let last = path.slots[path.len - 1];
            let cur = self.get(last);
            if !is_node(cur) {
                assert_eq!(self.depth(last), DEGRADED, "a rule's level is reachable");
                break;
            }
            path.slots[path.len] = Slot::Node(node_of(cur) * NODE_LEAVES + index(addr, k));
            path.len += 1;
        }
        path
    }

    /// The longest rule strictly shorter than `len` that covers `addr`,
    /// for a rule whose leaf is `slot`: the rules of the slot's level
    /// are searched (at most a stride's lengths), those above it are the
    /// node's base. A search of every shorter length probes the rule map
    /// up to 47 times for an IPv6 /48, most of them cache misses.
    fn covering_in(&self, slot: Slot, addr: u128, len: u8) -> (u32, u8) {
        let Slot::Node(i) = slot else {
            return self.covering(addr, len);
        };
        let found = self
            .longest_rule(addr, covering_search(len))
            .unwrap_or(self.out.meta[i / NODE_LEAVES].base);
        debug_assert_eq!(found, self.covering(addr, len), "{addr:#x}/{len}");
        found
    }

    /// The longest rule strictly shorter than `len` that covers `addr`.
    fn covering(&self, addr: u128, len: u8) -> (u32, u8) {
        self.longest_rule(addr, 0..len).unwrap_or((0, 0))
    }

    /// The longest rule of a length in `lens` that covers `addr`, as a leaf
    /// and its depth.
    fn longest_rule(&self, addr: u128, lens: std::ops::Range<u8>) -> Option<(u32, u8)> {
        self.candidates(addr, lens)
            .find_map(|l| self.rules.get(mask(addr, l), l).map(|leaf| (leaf, l + 1)))
    }

    /// The lengths in `lens`, longest first, at which a rule covering
    /// `addr` may exist: the rule map's probes of [`Trie::longest_rule`].
    fn candidates(&self, addr: u128, lens: std::ops::Range<u8>) -> impl Iterator<Item = u8> + '_ {
        lens.rev()
            .filter(move |&l| self.per_len[usize::from(l)] > 0 && self.may_have(addr, l))
    }

    /// Writes `leaf` into every leaf of a prefix of length `len` (whose
    /// first leaf is `first`, in the prefix's level) and of the nodes below them whose
    /// depth passes `take`.
    fn paint(
        &mut self,
        len: u8,
        first: Slot,
        take: impl Fn(u8) -> bool + Copy,
        leaf: u32,
        depth: u8,
    ) {
        let count = 1usize << (level_end(level_of(len)) - len.max(level_start(level_of(len))));
        match first {
            Slot::Root(j) => {
                for i in j..j + count {
                    let cur = self.root[i];
                    if is_node(cur) {
                        self.paint_base(node_of(cur), take, leaf, depth);
                        self.paint_below(node_of(cur), 0, NODE_LEAVES, take, leaf, depth);
                    } else if take(self.depth_root[i]) {
                        self.set(Slot::Root(i), leaf, depth);
                    }
                }
            }
            Slot::Node(i) => {
                let (n, j) = (i / NODE_LEAVES, i % NODE_LEAVES);
                self.paint_below(n, j, j + count, take, leaf, depth);
            }
        }
    }

    /// Paints leaves `lo..hi` of node `n` and every node below them.
    fn paint_below(
        &mut self,
        n: usize,
        lo: usize,
        hi: usize,
        take: impl Fn(u8) -> bool + Copy,
        leaf: u32,
        depth: u8,
    ) {
        let mut work = std::mem::take(&mut self.work);
        work.push((n, lo, hi));
        while let Some((n, lo, hi)) = work.pop() {
            let node = &mut self.out.meta[n].leaves;
            let routes = |l, d| !is_node(l) && take(d);
            let pending = work.len();
            let below = |c| work.push((node_of(c), 0, NODE_LEAVES));
            // Only the leaves that changed are written at the flush.
            if let Some((a, b)) = node.paint(lo, hi, routes, leaf, depth, &mut self.scratch, below)
            {
                self.out.mark(n, a);
                self.out.mark(n, b - 1);
            }
            for &(c, _, _) in &work[pending..] {
                self.paint_base(c, take, leaf, depth);
            }
        }
        self.work = work;
    }

    /// A rule above node `n`'s level painted over its range: its base, as
    /// the leaves would be.
    fn paint_base(&mut self, n: usize, take: impl Fn(u8) -> bool, leaf: u32, depth: u8) {
        let base = &mut self.out.meta[n].base;
        if take(base.1) {
            *base = (leaf, depth);
        }
    }

    /// The node under `slot`, a leaf of level `k` on `addr`'s way down:
    /// there already, new, or restored if the leaf was degraded; `None`
    /// when no node is free.
    fn node_below(&mut self, slot: Slot, addr: u128, k: u8) -> Option<usize> {
        let cur = self.get(slot);
        if is_node(cur) {
            return Some(node_of(cur));
        }
        if self.depth(slot) == DEGRADED {
            return self
                .restore(slot, region(addr, k))
                .then(|| node_of(self.get(slot)));
        }
        self.new_node(slot, k + 1)
    }

    /// A node of level `k` under leaf `s`, holding the leaf's answer
    /// everywhere.
    fn new_node(&mut self, s: Slot, k: u8) -> Option<usize> {
        let (cur, depth) = (self.get(s), self.depth(s));
        let n = self.take_node()?;
        // The node is complete before anything points to it.
        self.fill_node(n, k, cur, depth);
        self.set(s, node_leaf(n), depth);
        Some(n)
    }

    /// Folds the nodes of `path` (deepest first) that no longer hold
    /// anything longer than their parent leaf back into it.
    fn collapse(&mut self, path: &[Slot]) {
        for k in (1..path.len()).rev() {
            let parent = path[k - 1];
            let n = node_of(self.get(parent));
            let own = self.own(n);
            debug_assert_eq!(own, level_start(k as u8) + 1);
            if self.leaves(n).any(|l, d| keeps(l, d, own)) {
                return;
            }
            // Only shorter rules remain: all its leaves are the same.
            debug_assert_eq!(self.leaves(n).len(), 1, "node {n} folds");
            let (leaf, depth) = self.leaves(n).get(0);
            self.set(parent, leaf, depth);
            self.node_slots.release(n);
            self.out.drop_node(n);
        }
    }

    fn take_node(&mut self) -> Option<usize> {
        let n = self.node_slots.take()?;
        if n >= self.out.meta.len() {
            // Room for twice as many: a cache line a node, copied in about
            // a millisecond at full-table size.
            self.out.grow((2 * n).max(64));
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::leaves::{fib_leaf, route_leaf};
    use crate::slots::GRACE;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    /// Lines enough for any test's nodes, reused at once.
    const TEST_LINES: usize = 1 << 16;

    /// A trie of at most `nodes` nodes, with the datapath's copy in
    /// vectors; no reader runs beside it, so freed lines are reused at once.
    pub(super) fn table(nodes: usize) -> Trie<Vec<u32>> {
        family_table(Family::V6, nodes)
    }

    pub(super) fn family_table(family: Family, nodes: usize) -> Trie<Vec<u32>> {
        let mut t = Trie::new(
            family,
            vec![0; ROOT_LEAVES],
            vec![0; TEST_LINES * LINE_WORDS],
            TEST_LINES,
        )
        .with_node_limit(nodes);
        t.out.pool = t.out.pool.clone().without_grace();
        t
    }

    /// What fib.h finds for `addr` in the datapath's copy of `t`.
    pub(super) fn datapath_lookup(root: &[u32], lines: &[u32], addr: u128) -> u32 {
        let mut leaf = root[index(addr, 0)];
        let mut k = 1;
        while is_node(leaf) {
            leaf = node_word(|w| lines[w], leaf, index(addr, k)).map_or(0, |w| lines[w]);
            k += 1;
        }
        leaf
    }

    /// The datapath answers `addr` as the trie does.
    pub(super) fn check_datapath(t: &Trie<Vec<u32>>, addr: u128) {
        assert_eq!(
            datapath_lookup(&t.out.root, &t.out.lines, addr),
            t.lookup(addr),
            "datapath's copy at {addr:#x}"
        );
    }

    pub(super) fn a(s: &str) -> u128 {
        u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
    }

    /// Sets (`Some`) or removes the rule for `addr/len` in the trie and in
    /// the reference rules alike, and writes it to the datapath.
    pub(super) fn update<S: LeafStore>(
        t: &mut Trie<S>,
        rules: &mut HashMap<(u128, u8), u32>,
        addr: u128,
        len: u8,
        leaf: Option<u32>,
    ) {
        update_unflushed(t, rules, addr, len, leaf);
        t.flush();
    }

    /// [`update`] without the flush: for bursts written together.
    pub(super) fn update_unflushed<S: LeafStore>(
        t: &mut Trie<S>,
        rules: &mut HashMap<(u128, u8), u32>,
        addr: u128,
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
        t.check_bases();
    }

    /// Longest-prefix match by brute force over the rules.
    pub(super) fn reference(rules: &HashMap<(u128, u8), u32>, addr: u128) -> u32 {
        (0..=128u8)
            .rev()
            .find_map(|l| rules.get(&(mask(addr, l), l)).copied())
            .unwrap_or(0)
    }

    #[test]
    fn levels_and_indices() {
        assert_eq!(level_of(0), 0);
        assert_eq!(level_of(16), 0);
        assert_eq!(level_of(17), 1);
        assert_eq!(level_of(24), 1);
        assert_eq!(level_of(48), 4);
        assert_eq!(level_of(128), 14);
        assert_eq!(
            level_of(128) as u32 + 1,
            T::ACCEL_TRIE6_LEVELS.0,
            "fib.h's IPv6 levels"
        );
        let x = a("2001:db8:1234:5678::");
        assert_eq!(index(x, 0), 0x2001);
        assert_eq!(index(x, 1), 0x0d);
        assert_eq!(index(x, 2), 0xb8);
        assert_eq!(index(x, 4), 0x34);
        assert_eq!(index(u128::MAX, 14), 0xff);
    }

    /// Warming walks each rule's path to the node of its level, as an
    /// update of the rule does.
    #[test]
    fn warming_reaches_each_rules_node() {
        let mut t = table(64);
        for (p, len) in [
            ("2001:db8::", 32),
            ("2001:db8:1::", 48),
            ("2001:db8:1:8000::1", 128),
            ("2a00::", 12),
            ("2001:db8:ff00::", 40),
        ] {
            t.insert(a(p), len, route_leaf(0, 1));
        }
        t.flush();
        let mut batch = Vec::new();
        for p in [
            "2001:db8:1:8000::1",
            "2001:db8:1::",
            "2a00::",
            "fe80::",
            "2001:db8::",
        ] {
            for len in [0, 8, 16, 17, 24, 32, 40, 48, 49, 64, 127, 128] {
                batch.push((mask(a(p), len), len));
            }
        }
        let mut reached = vec![None; batch.len()];
        t.warm_paths(&batch, |i, n| reached[i] = Some(n));
        let mut deep = 0;
        for (&(addr, len), got) in batch.iter().zip(&reached) {
            // One step at a time, as lookup() walks.
            let level = level_of(len);
            let mut leaf = t.root[index(addr, 0)];
            let mut want = None;
            for k in 1..=level {
                if !is_node(leaf) {
                    break;
                }
                if k == level {
                    want = Some(node_of(leaf));
                }
                leaf = t.leaves(node_of(leaf)).get(index(addr, k)).0;
            }
            assert_eq!(*got, want, "{addr:#x}/{len}");
            deep += usize::from(level >= 4 && got.is_some());
        }
        assert!(deep >= 3, "some paths reach deep nodes: {deep}");
        t.warm(&batch);
        t.warm(&[]);
    }

    #[test]
    fn longest_prefix_wins_across_levels() {
        let mut t = table(16);
        t.insert(a("2001:db8::"), 32, route_leaf(0, 1));
        t.insert(a("2001:db8:1::"), 48, route_leaf(0, 2));
        t.insert(a("2001:db8:1:8000::"), 49, route_leaf(0, 3));
        t.insert(a("2001:db8:1:8000::1"), 128, route_leaf(1, 0));
        assert_eq!(t.lookup(a("2001:db8:9::1")), route_leaf(0, 1));
        assert_eq!(t.lookup(a("2001:db8:1::1")), route_leaf(0, 2));
        assert_eq!(t.lookup(a("2001:db8:1:8000::2")), route_leaf(0, 3));
        assert_eq!(t.lookup(a("2001:db8:1:8000::1")), route_leaf(1, 0));
        assert_eq!(t.lookup(a("2001:db9::1")), 0);
        // A shorter route added later does not override longer ones.
        t.insert(a("2001:db8::"), 31, route_leaf(0, 9));
        assert_eq!(t.lookup(a("2001:db8:1:8000::2")), route_leaf(0, 3));
        assert_eq!(t.lookup(a("2001:db9::1")), route_leaf(0, 9));
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut t = table(32);
        t.insert(0, 0, route_leaf(0, 7));
        t.insert(a("2001:db8::5"), 128, route_leaf(3, 0));
        assert_eq!(t.nodes_in_use(), 14);
        assert_eq!(t.lookup(a("fe80::1")), route_leaf(0, 7));
        assert_eq!(t.lookup(a("2001:db8::5")), route_leaf(3, 0));
        assert_eq!(t.lookup(a("2001:db8::6")), route_leaf(0, 7));
        assert_eq!(t.lookup(a("2001:db8::4")), route_leaf(0, 7));
        t.remove(0, 0);
        assert_eq!(t.lookup(a("2001:db8::6")), 0);
        assert_eq!(t.lookup(a("2001:db8::5")), route_leaf(3, 0));
        t.remove(a("2001:db8::5"), 128);
        assert_eq!(t.lookup(a("2001:db8::5")), 0);
        assert_eq!(t.nodes_in_use(), 0, "every node folded back");
        t.insert(u128::MAX, 128, route_leaf(0, 1));
        assert_eq!(t.lookup(u128::MAX), route_leaf(0, 1));
        assert_eq!(t.lookup(u128::MAX - 1), 0);
    }

    #[test]
    fn removal_restores_the_covering_route_and_frees_nodes() {
        let mut t = table(4);
        t.insert(a("2001:db8::"), 32, route_leaf(0, 1));
        t.insert(a("2001:db8:40::"), 44, route_leaf(0, 2));
        assert_eq!(t.nodes_in_use(), 4);
        t.remove(a("2001:db8:40::"), 44);
        assert_eq!(t.lookup(a("2001:db8:40::1")), route_leaf(0, 1));
        assert_eq!(t.nodes_in_use(), 2, "the /32 keeps its two nodes");
        // Reuse waits for the grace period: meanwhile the leaf of
        // 2001:db9::/32, which needs a node under it, goes to
        // bpf_fib_lookup as a whole.
        t.insert(a("2001:db9:1::"), 48, route_leaf(0, 3));
        assert_eq!(t.lookup(a("2001:db9:ffff::1")), fib_leaf());
        assert_eq!((t.degraded_regions(), t.degraded_rules()), (1, 1));
        t.remove(a("2001:db9:1::"), 48);
        assert_eq!(t.lookup(a("2001:db9:ffff::1")), 0, "nothing left inside");
        assert_eq!(t.degraded_regions(), 0);
        std::thread::sleep(GRACE);
        t.insert(a("2001:db9:1::"), 40, route_leaf(0, 3));
        t.remove(a("2001:db8::"), 32);
        assert_eq!(t.lookup(a("2001:db8:40::1")), 0);
        assert_eq!(t.lookup(a("2001:db9:1::1")), route_leaf(0, 3));
    }

    pub(super) struct Rnd(pub(super) fastrand::Rng);
    impl Rnd {
        pub(super) fn next(&mut self) -> u64 {
            self.0.u64(..)
        }
        pub(super) fn addr(&mut self, bases: &[u128]) -> u128 {
            let base = bases[(self.next() % bases.len() as u64) as usize];
            // Nest: random bits only in the second half of the /32 and in
            // the last 16 bits, so that prefixes share nodes.
            let r = ((self.next() as u128) << 64) | self.next() as u128;
            base | (r & 0x0000_0000_00ff_ff00_0000_0000_0000_ffff)
        }
    }

    pub(super) const LENS: [u8; 17] = [
        0, 16, 19, 24, 29, 32, 36, 40, 44, 47, 48, 52, 56, 64, 100, 127, 128,
    ];

    /// Random inserts and removals concentrated in a few /32s so that
    /// prefixes nest, checked against brute-force matching; when all rules
    /// are gone, so is every node.
    #[test]
    fn matches_brute_force_under_random_churn() {
        let mut t = table(32768);
        let mut rules = HashMap::new();
        let mut rnd = Rnd(fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d));
        let bases = [
            a("2001:db8::"),
            a("2001:db9::"),
            a("2a00:1450::"),
            a("::"),
            a("ffff:ffff::"),
        ];
        for step in 0..6000u32 {
            let addr = rnd.addr(&bases);
            let len = LENS[(rnd.next() % LENS.len() as u64) as usize];
            let leaf = (rnd.next() % 3 != 0).then(|| route_leaf((rnd.next() % 4) as u32, step));
            update(&mut t, &mut rules, addr, len, leaf);
            if step % 50 == 0 {
                for _ in 0..200 {
                    let probe = rnd.addr(&bases);
                    assert_eq!(t.lookup(probe), reference(&rules, probe), "{probe:#x}");
                    check_datapath(&t, probe);
                }
            }
            if step % 500 == 0 {
                // Right at the edges of every rule.
                for &(p, l) in rules.keys() {
                    let last = p | !mask(u128::MAX, l);
                    for probe in [p, last, p.wrapping_sub(1), last.wrapping_add(1)] {
                        assert_eq!(t.lookup(probe), reference(&rules, probe), "{probe:#x}");
                        check_datapath(&t, probe);
                    }
                }
            }
        }
        let keys: Vec<_> = rules.keys().copied().collect();
        for (p, l) in keys {
            t.remove(p, l);
        }
        t.flush();
        assert_eq!(t.nodes_in_use(), 0);
        assert_eq!(t.lines_in_use(), 0);
        assert!(t.root.iter().all(|l| *l == 0));
        assert!(t.out.root.iter().all(|l| *l == 0));
        assert!(t.per_len.iter().all(|n| *n == 0));
    }

    fn table4(nodes: usize) -> Trie<Vec<u32>> {
        family_table(Family::V4, nodes)
    }

    fn a4(s: &str) -> u128 {
        v4(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()))
    }

    /// IPv4 in the top bits: a /16 without longer routes is one root leaf,
    /// a /24 one node down, a /32 two (fib.h reads at most three leaves).
    #[test]
    fn ipv4_levels() {
        let mut t = table4(8);
        t.insert(a4("0.0.0.0"), 0, route_leaf(0, 1));
        t.insert(a4("10.0.0.0"), 8, route_leaf(0, 2));
        assert_eq!(t.nodes_in_use(), 0, "up to /16: the root alone");
        t.insert(a4("10.1.2.0"), 24, route_leaf(0, 3));
        assert_eq!(t.nodes_in_use(), 1);
        t.insert(a4("10.1.2.128"), 25, route_leaf(0, 4));
        t.insert(a4("10.1.2.129"), 32, route_leaf(1, 0));
        assert_eq!(t.nodes_in_use(), 2);
        assert_eq!(t.lookup(a4("11.0.0.1")), route_leaf(0, 1));
        assert_eq!(t.lookup(a4("10.9.0.1")), route_leaf(0, 2));
        assert_eq!(t.lookup(a4("10.1.2.1")), route_leaf(0, 3));
        assert_eq!(t.lookup(a4("10.1.2.130")), route_leaf(0, 4));
        assert_eq!(t.lookup(a4("10.1.2.129")), route_leaf(1, 0));
        // Removals find their covering routes through the presence bits.
        t.remove(a4("10.1.2.128"), 25);
        assert_eq!(t.lookup(a4("10.1.2.130")), route_leaf(0, 3));
        t.remove(a4("10.1.2.0"), 24);
        assert_eq!(t.lookup(a4("10.1.2.130")), route_leaf(0, 2));
        t.remove(a4("10.1.2.129"), 32);
        assert_eq!(t.lookup(a4("10.1.2.129")), route_leaf(0, 2));
        assert_eq!(t.nodes_in_use(), 0, "every node folded back");
    }

    /// IPv4 churn against brute force, prefixes nested in a few /8s; with
    /// few nodes part of the run is degraded (answers from bpf_fib_lookup),
    /// and once the rules leave everything folds away.
    #[test]
    fn ipv4_matches_brute_force_under_random_churn() {
        for nodes in [4096, 6] {
            let mut t = table4(nodes);
            let mut rules = HashMap::new();
            let mut rng = fastrand::Rng::with_seed(0x5eed_0004 + nodes as u64);
            let bases = [
                a4("10.0.0.0"),
                a4("192.168.0.0"),
                a4("0.0.0.0"),
                a4("255.0.0.0"),
            ];
            let lens = [0u8, 1, 8, 12, 15, 16, 17, 20, 23, 24, 25, 28, 31, 32];
            let addr = |rng: &mut fastrand::Rng| {
                // Random bits in the second octet's low nibble and the last
                // two octets, so that prefixes nest and share nodes.
                let r = v4(rng.u32(..) & 0x000f_ffff);
                bases[rng.usize(..bases.len())] | r
            };
            let mut degraded_seen = false;
            for step in 0..4000u32 {
                let at = addr(&mut rng);
                let len = lens[rng.usize(..lens.len())];
                let leaf = (rng.u8(..3) != 0).then(|| route_leaf(rng.u32(..4), step));
                update(&mut t, &mut rules, at, len, leaf);
                degraded_seen |= t.degraded_regions() > 0;
                for _ in 0..20 {
                    let probe = addr(&mut rng);
                    let got = t.lookup(probe);
                    check_datapath(&t, probe);
                    let degraded = t.degraded.keys().any(|(p, l)| mask(probe, *l) == *p);
                    if degraded {
                        assert_eq!(got, fib_leaf(), "{probe:#x}");
                    } else {
                        assert_eq!(got, reference(&rules, probe), "{probe:#x}");
                    }
                }
            }
            assert_eq!(degraded_seen, nodes < 100, "{nodes} nodes");
            let keys: Vec<_> = rules.keys().copied().collect();
            for (p, l) in keys {
                t.remove(p, l);
            }
            t.flush();
            assert_eq!(t.nodes_in_use(), 0);
            assert_eq!(t.degraded_regions(), 0);
            assert!(t.root.iter().all(|l| *l == 0));
        }
    }

    /// What `warm_covering` warms is what a removal reads: for each IPv4
    /// rule up to /24, the longest shorter rule of its level that covers
    /// it, as the rules themselves say.
    #[test]
    fn covering_guess_names_the_rule_a_removal_reads() {
        let mut t = table4(4096);
        let mut rules = HashMap::new();
        let mut rng = fastrand::Rng::with_seed(0x5eed_c0fe);
        let lens = [0u8, 8, 12, 16, 17, 19, 20, 22, 23, 24];
        for step in 0..3000u32 {
            let at = a4("10.0.0.0") | v4(rng.u32(..) & 0x000f_ff00);
            let len = lens[rng.usize(..lens.len())];
            let leaf = (rng.u8(..4) != 0).then(|| route_leaf(1, step));
            update(&mut t, &mut rules, at, len, leaf);
        }
        let mut found = 0;
        for &(p, l) in rules.keys() {
            // The covering rule a search of every shorter length finds,
            // when it lies in the lengths the removal searches.
            let (_, depth) = t.covering(p, l);
            let want = depth
                .checked_sub(1)
                .filter(|&c| c >= level_start(level_of(l)));
            assert_eq!(t.covering_guess(p, l), want, "{p:#x}/{l}");
            found += usize::from(want.is_some());
        }
        assert!(found > 100, "only {found} rules had a covering rule");
        // Warming is a hint at any length, in both families.
        let mut b = WarmBatches::default();
        let prefix = |a: &str, len| crate::model::Prefix::new(a.parse().unwrap(), len).unwrap();
        for len in [0, 1, 16, 17, 24, 25, 32] {
            b.push(&prefix("10.0.0.0", len), true);
        }
        for len in [0, 48, 64, 127, 128] {
            b.push(&prefix("2001:db8::", len), true);
        }
        b.warm(&t, &table(64));
    }

    /// Leaves as the datapath sees them: every write is logged in order, so
    /// that the test can replay the writes of one update one at a time.
    #[derive(Clone)]
    pub(super) struct Logged {
        pub(super) which: u8,
        pub(super) v: Vec<u32>,
        pub(super) log: Rc<RefCell<Vec<(u8, usize, u32)>>>,
    }

    impl LeafStore for Logged {
        fn get(&self, i: usize) -> u32 {
            self.v[i]
        }
        fn set(&mut self, i: usize, leaf: u32) {
            self.v[i] = leaf;
            self.log.borrow_mut().push((self.which, i, leaf));
        }
    }

    /// A trie of at most `nodes` nodes whose datapath writes are logged;
    /// freed lines wait out the grace period, as in production.
    pub(super) fn logged(nodes: usize) -> Trie<Logged> {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mk = |which, n| Logged {
            which,
            v: vec![0; n],
            log: log.clone(),
        };
        let lines = 1 << 14;
        Trie::new(
            Family::V6,
            mk(0, ROOT_LEAVES),
            mk(1, lines * LINE_WORDS),
            lines,
        )
        .with_node_limit(nodes)
    }

    /// Runs `update`, then replays its leaf writes one at a time on the
    /// arrays as they were before it: what a datapath lookup of each probe
    /// finds after each write.
    pub(super) fn states_seen(
        t: &mut Trie<Logged>,
        probes: &[u128],
        update: impl FnOnce(&mut Trie<Logged>),
    ) -> Vec<Vec<u32>> {
        let (mut root, mut nodes) = (t.out.root.v.clone(), t.out.lines.v.clone());
        t.out.root.log.borrow_mut().clear();
        update(t);
        let log = t.out.root.log.borrow();
        let mut seen = Vec::with_capacity(log.len());
        for &(which, i, leaf) in log.iter() {
            if which == 0 {
                root[i] = leaf;
            } else {
                nodes[i] = leaf;
            }
            seen.push(
                probes
                    .iter()
                    .map(|p| datapath_lookup(&root, &nodes, *p))
                    .collect(),
            );
        }
        assert_eq!(root, t.out.root.v, "the log holds every write");
        // Unless lines ran out, the datapath's copy ends where the trie is.
        if t.out.unplaced.is_empty() {
            for p in probes {
                assert_eq!(datapath_lookup(&root, &nodes, *p), t.lookup(*p), "{p:#x}");
            }
        }
        seen
    }

    /// After every single leaf write of an update, a lookup finds either
    /// the answer from before the update or the one from after it.
    #[test]
    fn every_intermediate_state_answers_old_or_new() {
        // Room for every rule: running out is degrade.rs's test.
        let mut t = logged(2048);
        let mut rules = HashMap::new();
        let mut rnd = Rnd(fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15));
        let bases = [a("2001:db8::"), a("2001:db9::")];
        for step in 0..400u32 {
            let addr = rnd.addr(&bases);
            let len = LENS[1 + (rnd.next() % (LENS.len() as u64 - 1)) as usize];
            let probes: Vec<u128> = (0..40)
                .map(|_| rnd.addr(&bases))
                .chain([mask(addr, len), addr])
                .collect();
            let before: Vec<u32> = probes.iter().map(|p| t.lookup(*p)).collect();
            let remove = rnd.next() % 3 == 0;
            let leaf = (!remove).then(|| route_leaf(0, step + 1));
            let seen = states_seen(&mut t, &probes, |t| update(t, &mut rules, addr, len, leaf));
            let after: Vec<u32> = probes.iter().map(|p| t.lookup(*p)).collect();
            assert!(!t.is_degraded(), "step {step}: ran out of nodes or lines");
            for (p, want) in probes.iter().zip(&after) {
                assert_eq!(*want, reference(&rules, *p));
            }
            for state in seen {
                for (k, p) in probes.iter().enumerate() {
                    assert!(
                        state[k] == before[k] || state[k] == after[k],
                        "step {step}: {p:#x} saw {:#x}, not {:#x} or {:#x}",
                        state[k],
                        before[k],
                        after[k]
                    );
                }
            }
        }
    }
}
