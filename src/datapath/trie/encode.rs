//! The datapath's copy of a trie: its nodes stored DIRECT, SEGMENTED or
//! COMPACT in the node array's 64-byte lines (accel.h), written after each
//! update.
//!
//! The trie itself keeps every node's leaves in memory of its own (as
//! runs, [`super::runs`]) and notes which nodes and root leaves an update
//! changed; [`Trie::flush`] then gives them lines, shallowest first, and
//! writes them to the datapath, deepest first:
//! - a node whose runs start where its block's do (and which keeps its
//!   size) gets its changed words written in place, each one leaf that
//!   answers old or new; so does a DIRECT node, and a SEGMENTED one whose
//!   lines can take the change ([`super::segment`]);
//! - any other node is written whole to a new block, then linked: its
//!   parent's word (a single-leaf run, since no two leaves point to the
//!   same node) or root leaf is switched to it, and the old block is
//!   reused after the grace period.
//!
//! A node's runs are those of its leaves as the trie holds them, so that
//! a node pointer is always a run of its own, whatever the pointer's
//! datapath value. When lines run out, a node that has no block gets none:
//! the word that would point to it says "ask bpf_fib_lookup" (exact, just
//! slower), and the node is placed when lines free up ([`Trie::retry`]).

use std::collections::BTreeSet;
use std::time::Instant;

use super::lines::{Lines, CHUNK};
use super::runs::Runs;
use super::segment;
use super::{is_node, node_of, Slot, Trie, NODE_LEAVES};
use crate::bpf::types::{accel_leaf as D, accel_trie as T};
use crate::datapath::leaves::{fib_leaf, unplaced_leaf, LeafStore};

pub const LINE_WORDS: usize = D::ACCEL_LEAVES_PER_ENTRY.0 as usize;
const COUNTS: usize = T::ACCEL_COMPACT_COUNTS.0 as usize;
const ENTRIES: usize = T::ACCEL_COMPACT_ENTRIES.0 as usize;
const SMALL: usize = T::ACCEL_COMPACT_SMALL.0 as usize;
const LARGE: usize = T::ACCEL_COMPACT_LARGE.0 as usize;
const DIRECT: u32 = D::ACCEL_LEAF_DIRECT.0;
const SEGMENTED: u32 = D::ACCEL_LEAF_SEGMENTED.0;
/// A node pointer's form bits: DIRECT, SEGMENTED or neither (COMPACT).
const FORM: u32 = DIRECT | SEGMENTED;

/// Where the bits set in a node's leaves start runs.
type Bitmap = [u64; 4];

/// What the trie keeps per node, in one cache line: a route event touches
/// one node, and should miss once for it, and once more for its runs.
#[derive(Clone, Default)]
#[repr(align(64))]
pub(super) struct Meta {
    /// Its leaves, as runs.
    pub leaves: Runs,
    /// The depth of its level's shortest rule (level start + 1).
    pub own: u8,
    /// The longest rule above its level covering its range, as its
    /// leaves would hold it (leaf, depth; 0, 0 for none): what a leaf of
    /// the node reverts to when the last rule of the node's level over it
    /// goes, found without searching the rules (`Trie::covering_in`).
    pub base: (u32, u8),
    /// Where the runs of its block start (COMPACT).
    bits: Bitmap,
    /// The lines its form takes, as of the last flush.
    lines: u8,
    /// The datapath's pointer to it (EXT [| form] | line), 0 while it
    /// has no block, and the block's lines.
    at: u32,
    size: u8,
    /// The leaf that points to it ([`pack`]).
    parent: u32,
    live: bool,
    /// Changed since the last flush: leaves `lo..=hi`.
    dirty: bool,
    lo: u8,
    hi: u8,
}

impl Meta {
    /// The lines of its block an in-place write of leaves lo..=hi changes:
    /// a DIRECT or SEGMENTED block's lines of those leaves; a COMPACT
    /// block is a few lines, any of which may change.
    fn lines_in_place(&self) -> std::ops::Range<usize> {
        let per = match self.at & FORM {
            DIRECT => LINE_WORDS,
            SEGMENTED => segment::LEAVES,
            _ => return 0..usize::from(self.size),
        };
        usize::from(self.lo) / per..usize::from(self.hi) / per + 1
    }
}

/// What a flush does with a changed node.
#[derive(Clone, Copy)]
pub(super) enum Step {
    InPlace,
    /// To a new block; the old one (pointer, lines) is given back.
    Moved((u32, u8)),
    /// Out of the datapath; likewise.
    Left((u32, u8)),
}

/// A leaf position in 32 bits: a root leaf with the top bit set.
fn pack(s: Slot) -> u32 {
    match s {
        Slot::Root(i) => i as u32 | 1 << 31,
        Slot::Node(i) => i as u32,
    }
}

fn unpack(p: u32) -> Slot {
    if p & 1 << 31 != 0 {
        Slot::Root((p & !(1 << 31)) as usize)
    } else {
        Slot::Node(p as usize)
    }
}

/// The datapath side of a trie.
pub(super) struct Out<S: LeafStore> {
    /// The datapath's root (ROOT_LEAVES words) and node lines.
    pub root: S,
    pub lines: S,
    pub pool: Lines,
    pub meta: Vec<Meta>,
    /// Nodes and root leaves changed since the last flush.
    dirty: Vec<usize>,
    pub dirty_root: Vec<usize>,
    /// The flush's plan, kept for its allocation.
    steps: Vec<(usize, Step)>,
    /// Blocks nothing will point to once the next flush is over (first
    /// line, lines): their grace period starts then, not before.
    freed: Vec<(usize, usize)>,
    counted: Option<Counted>,
    /// Live nodes without a block (lines ran out).
    pub unplaced: BTreeSet<usize>,
}

impl<S: LeafStore> Out<S> {
    pub fn new(root: S, lines: S, max_lines: usize) -> Self {
        Out {
            root,
            lines,
            pool: Lines::new(max_lines),
            meta: Vec::new(),
            dirty: Vec::new(),
            dirty_root: Vec::new(),
            steps: Vec::new(),
            freed: Vec::new(),
            counted: None,
            unplaced: BTreeSet::new(),
        }
    }

    /// Room for `nodes` nodes' bookkeeping.
    pub fn grow(&mut self, nodes: usize) {
        self.meta.resize_with(nodes, Meta::default);
    }

    pub fn set_parent(&mut self, n: usize, s: Slot) {
        self.meta[n].parent = pack(s);
    }

    fn parent(&self, n: usize) -> Slot {
        unpack(self.meta[n].parent)
    }

    /// Notes leaf `j` of node `n` as changed.
    pub fn mark(&mut self, n: usize, j: usize) {
        let m = &mut self.meta[n];
        if !m.dirty {
            (m.dirty, m.lo, m.hi) = (true, u8::MAX, 0);
            self.dirty.push(n);
        }
        m.lo = m.lo.min(j as u8);
        m.hi = m.hi.max(j as u8);
    }

    /// Node `n` was filled with one leaf: all of it changed.
    pub fn filled(&mut self, n: usize) {
        self.meta[n].live = true;
        self.mark(n, 0);
        self.mark(n, NODE_LEAVES - 1);
    }

    /// Node `n` left the trie: its block is reused after the grace period.
    pub fn drop_node(&mut self, n: usize) {
        self.meta[n].live = false;
        self.meta[n].leaves.release();
        self.unplaced.remove(&n);
        self.unlink_block(n);
    }

    fn unlink_block(&mut self, n: usize) {
        let old = (self.meta[n].at, self.meta[n].size);
        self.meta[n].at = 0;
        self.free_later(old);
    }

    /// Notes the block `old` (a pointer and its lines, or none) for release
    /// at the end of the flush: until the words above are rewritten, the
    /// datapath may still reach it.
    fn free_later(&mut self, old: (u32, u8)) {
        if old.0 != 0 {
            let line = (old.0 & D::ACCEL_LEAF_ID_MASK.0) as usize;
            self.freed.push((line, usize::from(old.1)));
        }
    }

    /// Whether the datapath reaches leaf `s`: the root's, or a node's
    /// whose every ancestor has a block.
    fn reachable_below(&self, mut s: Slot) -> bool {
        loop {
            match s {
                Slot::Root(_) => return true,
                Slot::Node(j) => {
                    let m = j / NODE_LEAVES;
                    if self.meta[m].at == 0 {
                        return false;
                    }
                    s = self.parent(m);
                }
            }
        }
    }

    /// What the datapath holds for a leaf of the trie.
    fn translate(&self, leaf: u32) -> u32 {
        if !is_node(leaf) {
            return leaf;
        }
        match self.meta[node_of(leaf)].at {
            0 => unplaced_leaf(node_of(leaf)),
            ptr => ptr,
        }
    }

    /// Asks for `lines` of the block at `ptr` ahead of their use.
    fn prefetch_lines(&self, ptr: u32, lines: std::ops::Range<usize>) {
        let base = (ptr & D::ACCEL_LEAF_ID_MASK.0) as usize * LINE_WORDS;
        for line in lines {
            self.lines.prefetch(base + line * LINE_WORDS);
        }
    }

    /// A block of at least `size` lines: a larger one when none of that
    /// size is left.
    fn take(&mut self, size: usize) -> Option<(usize, usize)> {
        [1, 4, CHUNK]
            .into_iter()
            .filter(|s| *s >= size)
            .find_map(|s| self.pool.take_ready(s).map(|line| (line, s)))
    }
}

/// The form (pointer bits) and lines of a node of `runs` runs, given
/// whether every 64 of its leaves fit a SEGMENTED line: COMPACT in a
/// line, else SEGMENTED, else COMPACT in 4 lines, else DIRECT. Each but the
/// 4-line COMPACT answers from one line read.
pub fn form_for(runs: usize, segments_fit: bool) -> (u32, usize) {
    if runs <= SMALL {
        (0, 1)
    } else if segments_fit {
        (SEGMENTED, 4)
    } else if runs <= LARGE {
        (0, 4)
    } else {
        (DIRECT, CHUNK)
    }
}

/// Whether every 64 leaves of a node fit a SEGMENTED line (its leaves
/// as the trie holds them: each node pointer distinct, as in the datapath).
fn segments_fit(leaves: &Runs) -> bool {
    segment::node_fits(leaves.from(0))
}

/// The bits set in `bits` up to and including bit `i`.
fn rank(bits: &Bitmap, i: usize) -> usize {
    let below: u32 = bits[..i / 64].iter().map(|b| b.count_ones()).sum();
    let upto = bits[i / 64] & (((2u128 << (i % 64)) - 1) as u64);
    below as usize + upto.count_ones() as usize
}

/// The word (of the whole node array) that holds leaf `i` of the node
/// `ptr` points to, reading the node's header or codes through `read`
/// (fib.h's fib_node_leaf); None where a SEGMENTED node says "no route".
pub fn node_word(read: impl Fn(usize) -> u32, ptr: u32, i: usize) -> Option<usize> {
    let base = (ptr & D::ACCEL_LEAF_ID_MASK.0) as usize * LINE_WORDS;
    if ptr & DIRECT != 0 {
        return Some(base + i);
    }
    if ptr & SEGMENTED != 0 {
        let line = base + i / segment::LEAVES * LINE_WORDS;
        return segment::word_of(read(line + segment::code_word(i)), i).map(|w| line + w);
    }
    let k = i / 64;
    let bits = u64::from(read(base + 2 * k)) | (u64::from(read(base + 2 * k + 1)) << 32);
    let upto = bits & (((2u128 << (i % 64)) - 1) as u64);
    let before = (read(base + COUNTS) >> (8 * k)) & 0xff;
    let rank = before as usize + upto.count_ones() as usize;
    Some(base + ENTRIES - 1 + rank)
}

impl<S: LeafStore> Trie<S> {
    /// Writes what the updates since the last flush changed to the
    /// datapath (see the module comment): each changed node once, however
    /// many updates changed it.
    pub fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.out.dirty);
        // Lines go to the shallowest nodes first (in the order they were
        // changed): when they run out, the nodes left out are the deepest,
        // not the parents that would make everything below unreachable.
        if dirty.len() > 1 {
            dirty.sort_by_key(|&n| self.own(n));
        }
        // Blocks are taken below among those free now.
        self.out.pool.end_grace(Instant::now());
        let mut steps = std::mem::take(&mut self.out.steps);
        for &n in &dirty {
            if self.out.meta[n].live {
                steps.push((n, self.decide(n)));
            }
        }
        // The blocks about to be written, asked for together: one node's
        // stores would otherwise wait for its lines before the next
        // node's are asked for.
        for &(n, step) in &steps {
            let m = &self.out.meta[n];
            if matches!(step, Step::Left(_)) || m.at == 0 {
                continue;
            }
            let lines = match step {
                Step::InPlace => m.lines_in_place(),
                _ => 0..usize::from(m.size),
            };
            self.out.prefetch_lines(m.at, lines);
        }
        // Written deepest first: a node's children have their blocks
        // before it is written or linked.
        for &(n, step) in steps.iter().rev() {
            self.write(n, step);
        }
        for &n in &dirty {
            self.out.meta[n].dirty = false;
        }
        steps.clear();
        self.out.steps = steps;
        dirty.clear();
        self.out.dirty = dirty;
        let mut roots = std::mem::take(&mut self.out.dirty_root);
        self.out.root.publish();
        for &i in &roots {
            let leaf = self.out.translate(self.root[i]);
            self.out.root.set(i, leaf);
        }
        roots.clear();
        self.out.dirty_root = roots;
        // Nothing points to these blocks any more: their grace starts now.
        // Drained, not taken: the list keeps its room for the next flush
        // (growing it anew was a malloc and a few reallocs per flush, each
        // as cold as the tables after the routing daemon had the CPU).
        let now = Instant::now();
        let out = &mut self.out;
        for (line, size) in out.freed.drain(..) {
            out.pool.release_at(line, size, now);
        }
    }

    /// Marks every node without a block for another try at the next flush
    /// (none while not a single line is free).
    pub(super) fn mark_unplaced(&mut self) {
        if self.out.unplaced.is_empty() || self.out.pool.free() == 0 {
            return;
        }
        let unplaced: Vec<usize> = self.out.unplaced.iter().copied().collect();
        for n in unplaced {
            self.out.mark(n, 0);
            self.out.mark(n, NODE_LEAVES - 1);
        }
    }

    /// How node `n` reaches the datapath: in place, in a new block (taken
    /// now), or not at all (no lines, or its parent has none).
    fn decide(&mut self, n: usize) -> Step {
        let m = &self.out.meta[n];
        let reachable = self.out.reachable_below(self.out.parent(n));
        // A SEGMENTED node is first tried in place (write_segments), and
        // its form looked at again only if its lines cannot take the
        // change: then it moves.
        if reachable && m.at & SEGMENTED != 0 && m.leaves.len() > SMALL {
            return Step::InPlace;
        }
        self.reform(n, reachable)
    }

    /// decide() for a node that is not written in place as it is: its form
    /// now, and in place if that can be, else a new block.
    fn reform(&mut self, n: usize, reachable: bool) -> Step {
        let (bits, runs) = self.out.meta[n].leaves.leaf_run_starts();
        let fit = runs > SMALL && segments_fit(&self.out.meta[n].leaves);
        let (form, size) = form_for(runs, fit);
        self.out.meta[n].lines = size as u8;
        if reachable && self.fits_in_place(n, form, size, &bits) {
            return Step::InPlace;
        }
        self.place(n, form, size, bits, reachable)
    }

    /// Whether node `n`, now of `form` and `size` lines (runs starting at
    /// `bits`), can be written over its block: a DIRECT one, or a COMPACT
    /// one of the same size and runs. (A SEGMENTED one was tried already.)
    fn fits_in_place(&self, n: usize, form: u32, size: usize, bits: &Bitmap) -> bool {
        let m = &self.out.meta[n];
        if m.at == 0 || m.at & FORM != form {
            return false;
        }
        match form {
            DIRECT => true,
            SEGMENTED => false,
            _ => size == usize::from(m.size) && m.bits == *bits,
        }
    }

    /// Gives node `n` a new block of `form` (or none: no lines, or not
    /// `reachable`).
    fn place(&mut self, n: usize, form: u32, size: usize, bits: Bitmap, reachable: bool) -> Step {
        let m = &self.out.meta[n];
        let old = (m.at, m.size);
        let taken = if reachable { self.out.take(size) } else { None };
        let meta = &mut self.out.meta[n];
        match taken {
            Some((line, got)) => {
                (meta.at, meta.size) = (D::ACCEL_LEAF_EXT.0 | form | line as u32, got as u8);
                meta.bits = bits;
                self.out.unplaced.remove(&n);
                Step::Moved(old)
            }
            None => {
                meta.at = 0;
                self.out.unplaced.insert(n);
                Step::Left(old)
            }
        }
    }

    /// Carries out `step` for node `n`; a block it left is reused after
    /// the grace period.
    fn write(&mut self, n: usize, step: Step) {
        let m = &self.out.meta[n];
        let (at, bits, lo, hi) = (m.at, m.bits, usize::from(m.lo), usize::from(m.hi));
        let old = match step {
            Step::InPlace if at & SEGMENTED != 0 => {
                if !self.write_segments(n, at, lo, hi, true) {
                    // Its lines cannot take the change: its form again, and
                    // a new block.
                    let step = self.reform(n, true);
                    self.write(n, step);
                }
                return;
            }
            Step::InPlace => {
                self.write_leaves(n, at, lo, hi);
                return;
            }
            Step::Moved(old) => {
                self.write_header(at, &bits);
                if at & SEGMENTED != 0 {
                    self.write_segments(n, at, 0, NODE_LEAVES - 1, false);
                } else {
                    self.write_leaves(n, at, 0, NODE_LEAVES - 1);
                }
                // The block is complete before anything points to it.
                self.out.lines.publish();
                old
            }
            Step::Left(old) => old,
        };
        self.link(n);
        self.out.free_later(old);
    }

    /// The runs of node `n`'s leaves `lo..=hi` that lie in its SEGMENTED
    /// line `k`, as the datapath is to hold them: (start, end) within the
    /// line, and the leaf.
    fn segment_runs(
        &self,
        n: usize,
        k: usize,
        lo: usize,
        hi: usize,
    ) -> impl Iterator<Item = (usize, usize, u32)> + '_ {
        let first = k * segment::LEAVES;
        let (lo, end) = (lo.max(first), (hi + 1).min(first + segment::LEAVES));
        self.out.meta[n]
            .leaves
            .from(lo)
            .take_while(move |r| r.0 < end)
            .map(move |(start, stop, leaf)| {
                let (a, b) = (start.max(lo), stop.min(end));
                (a - first, b - first, self.out.translate(leaf))
            })
    }

    fn segment_base(&self, ptr: u32, k: usize) -> usize {
        ((ptr & D::ACCEL_LEAF_ID_MASK.0) as usize + k) * LINE_WORDS
    }

    /// Writes the lines of leaves `lo..=hi` of the SEGMENTED node `n`: over
    /// the lines of its block (`in_place`: the words that change, palette
    /// first, then codes, see [`segment`]), or whole in a new block. False,
    /// with nothing written, when a line cannot take its leaves in place.
    fn write_segments(&mut self, n: usize, ptr: u32, lo: usize, hi: usize, in_place: bool) -> bool {
        const NONE: Option<(segment::Line, segment::Line)> = None;
        let mut lines = [NONE; NODE_LEAVES / segment::LEAVES];
        for (k, slot) in lines
            .iter_mut()
            .enumerate()
            .take(hi / segment::LEAVES + 1)
            .skip(lo / segment::LEAVES)
        {
            let base = self.segment_base(ptr, k);
            let runs = self.segment_runs(n, k, lo, hi);
            *slot = if in_place {
                let old: segment::Line = std::array::from_fn(|w| self.out.lines.get(base + w));
                match segment::update_in_place(&old, runs) {
                    Some(new) => Some((old, new)),
                    None => return false,
                }
            } else {
                // reform() found that they fit; should they not, the
                // range is bpf_fib_lookup's rather than wrong.
                let new = segment::fresh(runs)
                    .or_else(|| segment::fresh([(0, segment::LEAVES, fib_leaf())].into_iter()));
                // Every word of a new block: its lines held anything.
                new.map(|new| (new.map(|w| !w), new))
            };
        }
        for words in [segment::PALETTE_WORDS, segment::CODE_WORDS] {
            for (k, line) in lines.iter().enumerate() {
                let Some((old, new)) = line else { continue };
                let base = self.segment_base(ptr, k);
                for w in words.clone().filter(|&w| old[w] != new[w]) {
                    self.out.lines.set(base + w, new[w]);
                }
            }
            self.out.lines.publish();
        }
        true
    }

    /// A COMPACT block's bitmap and counts (accel.h).
    fn write_header(&mut self, ptr: u32, bits: &Bitmap) {
        if ptr & FORM != 0 {
            return;
        }
        let base = (ptr & D::ACCEL_LEAF_ID_MASK.0) as usize * LINE_WORDS;
        let (mut counts, mut before) = (0u32, 0u32);
        for (k, b) in bits.iter().enumerate() {
            self.out.lines.set(base + 2 * k, *b as u32);
            self.out.lines.set(base + 2 * k + 1, (*b >> 32) as u32);
            counts |= before << (8 * k);
            before += b.count_ones();
        }
        self.out.lines.set(base + COUNTS, counts);
    }

    /// Writes leaves `lo..=hi` of node `n` to its block at `ptr` (whose
    /// header is right): for a COMPACT block, the entry of every run they
    /// touch. Words that do not change are written all the same (with the
    /// same value): reading them first would cost a cache miss where a
    /// store costs none.
    fn write_leaves(&mut self, n: usize, ptr: u32, lo: usize, hi: usize) {
        let base = (ptr & D::ACCEL_LEAF_ID_MASK.0) as usize * LINE_WORDS;
        let direct = ptr & DIRECT != 0;
        let bits = self.out.meta[n].bits;
        // From the run holding `lo`, whose entry the bitmap's rank gives.
        let mut entry = rank(&bits, lo);
        for (start, end, leaf) in self.out.meta[n].leaves.from(lo) {
            if start > hi {
                break;
            }
            let v = self.out.translate(leaf);
            if direct {
                for i in start.max(lo)..end.min(hi + 1) {
                    self.out.lines.set(base + i, v);
                }
                continue;
            }
            // Runs of the same leaf at different depths share an entry.
            if start > lo && bits[start / 64] & (1 << (start % 64)) != 0 {
                entry += 1;
            }
            self.out.lines.set(base + ENTRIES + entry - 1, v);
        }
    }

    /// Points the leaf above node `n` at its block (or at bpf_fib_lookup
    /// without one), unless that leaf's own node is written later in
    /// this flush.
    fn link(&mut self, n: usize) {
        match self.out.parent(n) {
            Slot::Root(i) => self.out.dirty_root.push(i),
            Slot::Node(j) => {
                let m = j / NODE_LEAVES;
                let ptr = self.out.meta[m].at;
                if self.out.meta[m].dirty {
                    // Written later in this flush, this leaf included.
                    self.out.mark(m, j % NODE_LEAVES);
                    return;
                }
                if ptr == 0 {
                    return;
                }
                // A SEGMENTED parent's palette word of a node pointer is
                // named by this leaf alone, and may follow it (segment).
                let w = node_word(|w| self.out.lines.get(w), ptr, j % NODE_LEAVES);
                let v = self.out.translate(self.get(Slot::Node(j)));
                debug_assert!(w.is_some(), "a node pointer reads as no route");
                if let Some(w) = w {
                    self.out.lines.set(w, v);
                }
            }
        }
    }

    /// Lines of the datapath's node array.
    pub fn lines_capacity(&self) -> usize {
        self.out.pool.capacity()
    }

    pub fn lines_in_use(&self) -> usize {
        self.out.pool.in_use()
    }

    /// Whether some routes are left to bpf_fib_lookup for lack of room.
    pub fn is_degraded(&self) -> bool {
        self.degraded_regions() > 0 || !self.out.unplaced.is_empty()
    }

    /// How full the node array is (lines in their grace period count as
    /// used: they cannot be had yet), and the routes left to
    /// bpf_fib_lookup: for lack of nodes ([`super::degrade`]) or of lines.
    pub fn usage(&mut self) -> crate::capacity::Usage {
        let (regions, rules) = self.unplaced();
        let used = self.lines_capacity() - self.out.pool.free();
        crate::capacity::Usage::new(self.lines_capacity(), used).degraded(
            self.degraded_rules() + rules,
            self.degraded_regions() + regions,
        )
    }

    /// The lines the trie's nodes need, room or not (a pass over every
    /// node: for growing the map, not for every second's figures).
    pub fn lines_needed(&self) -> usize {
        self.out
            .meta
            .iter()
            .filter(|m| m.live)
            .map(|m| usize::from(m.lines))
            .sum()
    }

    /// The nodes left without a block whose parent has one (or is the
    /// root): the ranges the datapath leaves to bpf_fib_lookup for lack of
    /// lines.
    pub(super) fn unplaced_tops(&self) -> Vec<usize> {
        self.out
            .unplaced
            .iter()
            .copied()
            .filter(|&n| self.out.reachable_below(self.out.parent(n)))
            .collect()
    }

    /// Asserts that every live node's base is the longest rule above its
    /// level covering its range (what `Trie::covering_in` relies on).
    #[cfg(test)]
    pub(super) fn check_bases(&self) {
        for n in (0..self.out.meta.len()).filter(|&n| self.out.meta[n].live) {
            let (addr, len) = self.node_range(n);
            let want = self.covering(addr, len + 1);
            assert_eq!(
                self.out.meta[n].base, want,
                "base of node {n} at {addr:#x}/{len}"
            );
        }
    }

    /// The range node `n` covers, as a prefix.
    fn node_range(&self, n: usize) -> (u128, u8) {
        let end = self.own(n) - 1;
        let (mut addr, mut len) = (0u128, end);
        let mut slot = self.out.parent(n);
        loop {
            match slot {
                Slot::Root(i) => return (addr | ((i as u128) << (128 - super::level_end(0))), end),
                Slot::Node(j) => {
                    addr |= ((j % NODE_LEAVES) as u128) << (128 - len);
                    len -= super::STRIDE;
                    slot = self.out.parent(j / NODE_LEAVES);
                }
            }
        }
    }

    /// Ranges left to bpf_fib_lookup for lack of lines, and the rules
    /// inside them. Counting the rules is a pass over every rule (about
    /// 0.1 s at two million): while there are such ranges it is done at
    /// most every [`RECOUNT`], and the figure is that of the last count.
    pub fn unplaced(&mut self) -> (usize, usize) {
        let tops = self.unplaced_tops();
        if tops.is_empty() {
            self.out.counted = None;
            return (0, 0);
        }
        let stale = match &self.out.counted {
            Some(c) => c.at.elapsed() >= RECOUNT,
            None => true,
        };
        if stale {
            let rules = self.rules_under(&tops);
            self.out.counted = Some(Counted {
                rules,
                at: std::time::Instant::now(),
            });
        }
        (tops.len(), self.out.counted.as_ref().map_or(0, |c| c.rules))
    }

    /// The rules strictly inside the ranges of nodes `tops`: one pass over
    /// the rules, a probe per length the ranges have.
    fn rules_under(&self, tops: &[usize]) -> usize {
        let mut ranges: std::collections::BTreeMap<u8, std::collections::HashSet<u128>> =
            std::collections::BTreeMap::new();
        for &n in tops {
            let (addr, len) = self.node_range(n);
            ranges.entry(len).or_default().insert(addr);
        }
        self.rules
            .prefixes()
            .filter(|&(a, l)| {
                ranges
                    .range(..l)
                    .any(|(&len, set)| set.contains(&super::mask(a, len)))
            })
            .count()
    }
}

/// How often the rules under ranges without lines are counted again while
/// the ranges change.
const RECOUNT: std::time::Duration = std::time::Duration::from_secs(5);

/// The last count of [`Trie::unplaced`].
pub(super) struct Counted {
    rules: usize,
    at: std::time::Instant,
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        a, datapath_lookup, family_table, logged, reference, states_seen, update, update_unflushed,
        Rnd, LENS,
    };
    use super::super::{index, node_of};
    use super::*;
    use crate::datapath::leaves::{is_capacity_leaf, route_leaf};
    use crate::model::Family;
    use crate::slots::GRACE;
    use std::collections::HashMap;

    fn a4(s: &str) -> u128 {
        super::super::v4(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()))
    }

    /// Every address of 10.1.0.0/16 at /24 steps, and every address of
    /// 10.1.7.0/24: the datapath's copy answers as the trie.
    fn check_all(t: &Trie<Vec<u32>>) {
        for i in 0..256u32 {
            for addr in [
                a4("10.1.0.0") | (u128::from(i) << 104),
                a4("10.1.7.0") | (u128::from(i) << 96),
            ] {
                assert_eq!(
                    datapath_lookup(&t.out.root, &t.out.lines, addr),
                    t.lookup(addr),
                    "{addr:#x}"
                );
            }
        }
    }

    /// A node takes 1, 4 or 16 lines as its runs grow, and gives them back
    /// as they shrink, answering exactly in every form.
    #[test]
    fn nodes_take_the_form_their_runs_need() {
        let mut t = family_table(Family::V4, 64);
        t.insert(a4("10.1.0.0"), 16, route_leaf(0, 1));
        t.flush();
        t.insert(a4("10.1.7.0"), 24, route_leaf(0, 2));
        t.flush();
        assert_eq!(t.lines_in_use(), 1, "3 runs: one line");
        check_all(&t);
        // Every other /24 from 10.1.100.0: two runs each, then back.
        let sizes = [(2, 1), (8, 4), (26, 4), (40, CHUNK)];
        let mut added = 0;
        for (upto, lines) in sizes {
            for k in added..upto {
                t.insert(
                    a4("10.1.100.0") + (u128::from(2 * k as u32) << 104),
                    24,
                    route_leaf(0, 10 + k as u32),
                );
                t.flush();
            }
            added = upto;
            assert_eq!(t.lines_in_use(), lines, "{upto} /24s");
            assert_eq!(t.lines_needed(), lines);
            check_all(&t);
        }
        for k in 0..40u32 {
            t.remove(a4("10.1.100.0") + (u128::from(2 * k) << 104), 24);
            t.flush();
            check_all(&t);
        }
        assert_eq!(t.lines_in_use(), 1);
        // A /25 below 10.1.7.0/24 links a node under a COMPACT one.
        t.insert(a4("10.1.7.128"), 25, route_leaf(0, 3));
        t.flush();
        assert_eq!(t.lines_in_use(), 2);
        check_all(&t);
        t.insert(a4("10.1.7.128"), 25, route_leaf(0, 4));
        t.flush();
        check_all(&t);
    }

    /// With too few lines, whole nodes go to bpf_fib_lookup (their parent's
    /// word says so) and the usage says how many routes; once lines free
    /// up, retry() places them and every answer is exact again.
    #[test]
    fn nodes_without_lines_go_to_fib_and_come_back() {
        let mut t = family_table(Family::V4, 64);
        t.out.pool = Lines::new(CHUNK).without_grace();
        // 10.1.0.0/16 with 40 /24s: a DIRECT node, the whole chunk.
        for k in 0..40u32 {
            t.insert(
                a4("10.1.0.0") | (u128::from(2 * k) << 104),
                24,
                route_leaf(0, 1 + k),
            );
            t.flush();
        }
        assert_eq!(t.lines_in_use(), CHUNK);
        // 10.2.0.0/16 needs a node too: none left.
        t.insert(a4("10.2.3.0"), 24, route_leaf(0, 99));
        t.flush();
        let dp = |t: &Trie<Vec<u32>>, s| datapath_lookup(&t.out.root, &t.out.lines, a4(s));
        assert!(is_capacity_leaf(dp(&t, "10.2.3.1")));
        assert_eq!(dp(&t, "10.1.2.1"), route_leaf(0, 2));
        let u = t.usage();
        assert_eq!((u.degraded, u.regions), (1, 1));
        assert!(t.is_degraded());
        // The /16's node shrinks to 4 lines, room for 10.2.0.0/16's.
        for k in 10..40u32 {
            t.remove(a4("10.1.0.0") | (u128::from(2 * k) << 104), 24);
            t.flush();
        }
        t.retry();
        assert!(!t.is_degraded());
        assert_eq!(dp(&t, "10.2.3.1"), route_leaf(0, 99));
        assert_eq!(dp(&t, "10.1.2.1"), route_leaf(0, 2));
        assert_eq!(t.usage().degraded, 0);
    }

    /// Lines go to parents before their children: with one line, a /25's
    /// /16 node gets it and only the /24 below is left to bpf_fib_lookup,
    /// not the whole /16.
    #[test]
    fn parents_get_lines_first() {
        let mut t = family_table(Family::V4, 64);
        t.out.pool = Lines::new(1).without_grace();
        t.insert(a4("10.1.7.0"), 25, route_leaf(0, 1));
        t.flush();
        let dp = |t: &Trie<Vec<u32>>, s| datapath_lookup(&t.out.root, &t.out.lines, a4(s));
        assert!(is_capacity_leaf(dp(&t, "10.1.7.1")));
        assert_eq!(dp(&t, "10.1.8.1"), 0, "the /16's node is in the datapath");
        assert_eq!(t.usage().regions, 1);
    }

    /// A node folded by a removal keeps its block until the flush has
    /// pointed its parent elsewhere, however long after the removal the
    /// flush comes (found in review: the block was given back at the
    /// removal, handed to another node by the flush after the grace
    /// period, and written while the old parent still pointed to it).
    #[test]
    fn a_folded_node_keeps_its_block_until_unlinked() {
        let mut t = logged(64);
        let (r0, r1, r2) = (route_leaf(0, 10), route_leaf(0, 11), route_leaf(0, 12));
        t.insert(a("2001::"), 16, r0);
        t.insert(a("2001:db8::"), 31, r1);
        t.insert(a("2001:db8:1::"), 48, r2);
        t.flush();
        let probe = a("2001:db8:1::5");
        let seen = states_seen(&mut t, &[probe], |t| {
            t.remove(a("2001:db8:1::"), 48);
            std::thread::sleep(GRACE + std::time::Duration::from_millis(20));
            t.flush();
        });
        assert_eq!(t.lookup(probe), r1);
        for state in seen {
            assert!([r2, r1].contains(&state[0]), "saw {:#x}", state[0]);
        }
    }

    /// Bursts of updates per flush, lines scarce and reused at once after
    /// each flush, a retry every few bursts: after every single write of a
    /// flush each probe answers as before, as after, or "ask
    /// bpf_fib_lookup"; after it, exactly or bpf_fib_lookup.
    #[test]
    fn bursts_with_scarce_lines_answer_old_new_or_fib() {
        for (k, lines) in [5usize, 9, 20, 40, 100, 1 << 12].into_iter().enumerate() {
            let mut t = logged(1 << 12);
            t.out.pool = Lines::new(lines).without_grace();
            let mut rules: HashMap<(u128, u8), u32> = HashMap::new();
            let mut rnd = Rnd(fastrand::Rng::with_seed(0x5ca1e + k as u64));
            let bases = [a("2001:db8::"), a("2001:db9::"), a("2400::")];
            for step in 0..150u32 {
                let mut burst = Vec::new();
                for _ in 0..1 + rnd.next() % 12 {
                    let len = LENS[1 + (rnd.next() % (LENS.len() as u64 - 1)) as usize];
                    let (addr, len) =
                        match rules.keys().nth(rnd.next() as usize % (rules.len() + 1)) {
                            Some(&old) if rnd.next() % 3 == 0 => old,
                            _ => (rnd.addr(&bases), len),
                        };
                    let keep = !rules.contains_key(&(super::super::mask(addr, len), len))
                        || rnd.next() % 2 == 0;
                    burst.push((addr, len, keep.then(|| route_leaf(0, 1 + step % 7))));
                }
                let probes: Vec<u128> = (0..40)
                    .map(|_| rnd.addr(&bases))
                    .chain(
                        burst
                            .iter()
                            .flat_map(|u| [super::super::mask(u.0, u.1), u.0]),
                    )
                    .collect();
                let before: Vec<u32> = probes.iter().map(|p| t.lookup(*p)).collect();
                let seen = states_seen(&mut t, &probes, |t| {
                    for &(addr, len, leaf) in &burst {
                        update_unflushed(t, &mut rules, addr, len, leaf);
                    }
                    t.flush();
                    if step % 5 == 0 {
                        t.retry();
                    }
                });
                let after: Vec<u32> = probes.iter().map(|p| t.lookup(*p)).collect();
                for state in seen {
                    for (i, p) in probes.iter().enumerate() {
                        assert!(
                            [before[i], after[i]].contains(&state[i]) || is_capacity_leaf(state[i]),
                            "{lines} lines, step {step}: {p:#x} saw {:#x}, not {:#x} or {:#x}",
                            state[i],
                            before[i],
                            after[i]
                        );
                    }
                }
                for p in &probes {
                    let d = datapath_lookup(&t.out.root.v, &t.out.lines.v, *p);
                    assert!(
                        t.lookup(*p) == d || is_capacity_leaf(d),
                        "{lines} lines: {p:#x}"
                    );
                }
                if lines == 1 << 12 {
                    assert!(!t.is_degraded(), "step {step}");
                    assert_eq!(t.lines_in_use(), t.lines_needed(), "step {step}");
                }
            }
        }
    }

    /// Dense nodes of a few next hops take the SEGMENTED form, change in
    /// place or move, and answer old or new after every single write,
    /// children (a /48 under a /40) linked below them included.
    #[test]
    fn segmented_nodes_answer_old_or_new_under_churn() {
        let mut t = logged(512);
        let mut rules = HashMap::new();
        let mut rnd = Rnd(fastrand::Rng::with_seed(0x5e9));
        let base = a("2001:db8::");
        update(&mut t, &mut rules, base, 32, Some(route_leaf(0, 1)));
        let (mut segmented, mut in_place) = (0, 0);
        for step in 0..1500u32 {
            let byte = |r: &mut Rnd| u128::from(r.next() as u8);
            let k = byte(&mut rnd);
            // Children under three /40s; four next hops, and now and then
            // one that appears once (the palette's words never written run
            // out, and the node moves).
            let (addr, len) = match rnd.next() % 10 {
                0 => (base | (k % 3) << 88 | byte(&mut rnd) << 80, 48),
                _ => (base | k << 88, 40),
            };
            let nh = match rnd.next() % 60 {
                0 => 100 + step,
                r => 2 + (r % 4) as u32,
            };
            let leaf = (rnd.next() % 3 != 0).then(|| route_leaf(0, nh));
            let probes: Vec<u128> = (0..256u128)
                .map(|i| base | i << 88 | byte(&mut rnd) << 80)
                .chain([addr])
                .collect();
            let before: Vec<u32> = probes.iter().map(|p| t.lookup(*p)).collect();
            let seen = states_seen(&mut t, &probes, |t| update(t, &mut rules, addr, len, leaf));
            for (i, p) in probes.iter().enumerate() {
                assert_eq!(t.lookup(*p), reference(&rules, *p), "step {step}: {p:#x}");
                let after = t.lookup(*p);
                for state in &seen {
                    assert!(
                        state[i] == before[i] || state[i] == after,
                        "step {step}: {p:#x} saw {:#x}, not {:#x} or {after:#x}",
                        state[i],
                        before[i]
                    );
                }
            }
            // The node of the /40s: below the root and the /24 and /32 levels.
            let mut node = node_of(t.root[index(base, 0)]);
            for k in 1..3 {
                node = node_of(t.leaves(node).get(index(base, k)).0);
            }
            if t.out.meta[node].at & SEGMENTED != 0 {
                segmented += 1;
                // One write per line at most twice over: its palette and codes.
                in_place += usize::from(seen.len() <= 2 * 16);
            }
            assert_eq!(t.lines_in_use(), t.lines_needed(), "step {step}");
        }
        assert!(
            segmented > 500,
            "the node was SEGMENTED after {segmented} steps"
        );
        assert!(in_place > 200, "{in_place} small writes");
    }
}
