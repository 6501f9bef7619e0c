//! The IPv4 FIB the datapath reads: DXR's range layout (see
//! [`super::dxr`]), kept up to date one route at a time.
//!
//! One word per chunk (a /20; `fib4_dir`, 4 MiB) holds either the leaf of
//! the whole chunk or, where the chunk holds longer rules, where its ranges
//! lie in `fib4_ranges`: 2^log sorted (start, leaf) ranges, padded past
//! the last with starts no address reaches, found by a binary search of
//! `log` steps (dxr.h). A full table needs about 11 MiB, so a lookup stays
//! in cache where DIR-24-8's 64 MiB first level did not.
//!
//! Updates are old-or-new: a chunk is rebuilt into a fresh extent, which is
//! complete before the chunk's word points to it; the old extent is reused
//! only after a grace period ([`super::extents`]). Changes mark their
//! chunks and [`Fib4::flush`] rebuilds each marked chunk once, so that a
//! batch of routes into one chunk (a full table arriving) costs one rebuild
//! and one extent, not one per route.
//!
//! When no extent is free, the chunk is *degraded*: its word becomes a
//! "FIB" leaf (bpf_fib_lookup decides, exact for every address), its rules
//! are kept, and [`Fib4::retry`] rebuilds its ranges once room is free.

use std::collections::{BTreeSet, HashMap};

use super::dxr::{chunk_of, chunk_ranges_into, offset, Range, CHUNKS, DIR_BITS, SPAN};
use super::extents::{log_for, Extents};
use super::leaf::{fib_leaf, LeafStore};
use crate::bpf::types::accel_fib4 as F;

/// The start written past a chunk's last range: above every offset.
const PAD: u32 = SPAN;

/// A rule longer than the chunks, inside its chunk: (offset, length, leaf).
type Inner = (u16, u8, u32);

fn mask(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - len))
    }
}

fn is_chunk(word: u32) -> bool {
    word & F::ACCEL_FIB4_CHUNK.0 != 0
}

fn chunk_word(base: u32, log: u8) -> u32 {
    F::ACCEL_FIB4_CHUNK.0 | (u32::from(log) << F::ACCEL_FIB4_LOG_SHIFT.0) | base
}

/// (first range, log2 of the extent) of a chunk word.
fn extent_of(word: u32) -> (u32, u8) {
    (
        word & F::ACCEL_FIB4_BASE_MASK.0,
        ((word >> F::ACCEL_FIB4_LOG_SHIFT.0) & F::ACCEL_FIB4_LOG_MASK.0) as u8,
    )
}

/// dxr.h's search: the leaf of the last range starting at or before the
/// address's offset in its chunk, reading ranges through `range` ((start,
/// leaf) of an entry; `None` if unreadable).
pub fn search(word: u32, addr: u32, range: impl Fn(u32) -> Option<(u32, u32)>) -> Option<u32> {
    if !is_chunk(word) {
        return Some(word);
    }
    let (base, log) = extent_of(word);
    let key = u32::from(offset(addr));
    let mut i = 0u32;
    for step in (0..log).rev().map(|l| 1u32 << l) {
        if range(base + i + step)?.0 <= key {
            i += step;
        }
    }
    range(base + i).map(|(_, leaf)| leaf)
}

pub struct Fib4<S: LeafStore> {
    /// A word per chunk.
    dir: S,
    /// Two u32 per range: start, leaf.
    ranges: S,
    extents: Extents,
    /// Rules no longer than the chunks.
    short: HashMap<(u32, u8), u32>,
    short_per_len: [u32; 33],
    /// Per chunk: the leaf of its longest rule covering all of it, and that
    /// rule's length + 1 (0: none).
    background: Vec<(u32, u8)>,
    /// Per chunk: its longer rules, sorted by start and then length.
    inner: Vec<Vec<Inner>>,
    inner_rules: usize,
    /// Chunks left to bpf_fib_lookup for lack of room.
    degraded: BTreeSet<u32>,
    /// Chunks changed since the last flush, once each.
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    /// Buffers of the chunk builder, reused.
    scratch: (Vec<Range>, Vec<(u32, u32)>),
}

impl<S: LeafStore> Fib4<S> {
    /// `dir` holds [`CHUNKS`] words, `ranges` 2 * `capacity` u32; both
    /// start zeroed (no routes).
    pub fn new(dir: S, ranges: S, capacity: u32) -> Self {
        Self::with_extents(dir, ranges, Extents::new(capacity))
    }

    fn with_extents(dir: S, ranges: S, extents: Extents) -> Self {
        Fib4 {
            dir,
            ranges,
            extents,
            short: HashMap::new(),
            short_per_len: [0; 33],
            background: vec![(0, 0); CHUNKS],
            inner: vec![Vec::new(); CHUNKS],
            inner_rules: 0,
            degraded: BTreeSet::new(),
            dirty: Vec::new(),
            is_dirty: vec![false; CHUNKS],
            scratch: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.short.len() + self.inner_rules
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Range entries allocated (in extents of powers of two).
    pub fn ranges_in_use(&self) -> usize {
        self.extents.in_use() as usize
    }

    pub fn capacity(&self) -> usize {
        self.extents.capacity() as usize
    }

    /// Chunks left to bpf_fib_lookup for lack of room.
    pub fn degraded_chunks(&self) -> usize {
        self.degraded.len()
    }

    /// Rules longer than the chunks inside degraded chunks.
    pub fn degraded_rules(&self) -> usize {
        self.degraded
            .iter()
            .map(|&c| self.inner[c as usize].len())
            .sum()
    }

    /// Adds or replaces the rule for `addr/len` (host byte order); the
    /// datapath sees it after the next [`Fib4::flush`].
    pub fn insert(&mut self, addr: u32, len: u8, leaf: u32) {
        let addr = mask(addr, len);
        if len <= DIR_BITS {
            match self.short.insert((addr, len), leaf) {
                Some(old) if old == leaf => return,
                Some(_) => {}
                None => self.short_per_len[usize::from(len)] += 1,
            }
            let depth = len + 1;
            self.paint(addr, len, |d| d <= depth, leaf, depth);
            return;
        }
        let c = chunk_of(addr);
        let rule = (offset(addr), len, leaf);
        let rules = &mut self.inner[c];
        match rules.binary_search_by_key(&(rule.0, len), |r| (r.0, r.1)) {
            Ok(i) if rules[i].2 == leaf => return,
            Ok(i) => rules[i].2 = leaf,
            Err(i) => {
                rules.insert(i, rule);
                self.inner_rules += 1;
            }
        }
        self.mark(c);
    }

    pub fn remove(&mut self, addr: u32, len: u8) {
        let addr = mask(addr, len);
        if len <= DIR_BITS {
            if self.short.remove(&(addr, len)).is_none() {
                return;
            }
            self.short_per_len[usize::from(len)] -= 1;
            let (leaf, depth) = self.covering(addr, len);
            let own = len + 1;
            self.paint(addr, len, |d| d == own, leaf, depth);
            return;
        }
        let c = chunk_of(addr);
        let rules = &mut self.inner[c];
        let Ok(i) = rules.binary_search_by_key(&(offset(addr), len), |r| (r.0, r.1)) else {
            return;
        };
        rules.remove(i);
        self.inner_rules -= 1;
        if rules.is_empty() {
            // Give back the memory of a chunk that lost its last long rule.
            *rules = Vec::new();
        }
        self.mark(c);
    }

    /// Writes every chunk changed since the last flush.
    pub fn flush(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &c in &dirty {
            self.is_dirty[c as usize] = false;
            self.rebuild(c as usize);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    fn mark(&mut self, c: usize) {
        if !self.is_dirty[c] {
            self.is_dirty[c] = true;
            self.dirty.push(c as u32);
        }
    }

    /// Gives degraded chunks their ranges back, in address order, while
    /// there is room (a released extent after its grace period). Returns
    /// how many came back.
    pub fn retry(&mut self) -> usize {
        self.flush();
        let chunks: Vec<u32> = self.degraded.iter().copied().collect();
        chunks
            .into_iter()
            .take_while(|&c| {
                self.rebuild(c as usize);
                !self.degraded.contains(&c)
            })
            .count()
    }

    /// What the datapath finds for `addr`: the route leaf, or 0.
    pub fn lookup(&self, addr: u32) -> u32 {
        let word = self.dir.get(chunk_of(addr));
        search(word, addr, |i| {
            let i = i as usize * 2;
            Some((self.ranges.get(i), self.ranges.get(i + 1)))
        })
        .unwrap_or(0)
    }

    /// The longest rule no longer than the chunks, strictly shorter than
    /// `len`, covering `addr`: (leaf, length + 1), or (0, 0).
    fn covering(&self, addr: u32, len: u8) -> (u32, u8) {
        (0..len)
            .rev()
            .filter(|l| self.short_per_len[usize::from(*l)] > 0)
            .find_map(|l| {
                self.short
                    .get(&(mask(addr, l), l))
                    .map(|leaf| (*leaf, l + 1))
            })
            .unwrap_or((0, 0))
    }

    /// Gives `leaf` to the chunks of `addr/len` (len <= DIR_BITS) whose
    /// background depth passes `take`, and marks them.
    fn paint(&mut self, addr: u32, len: u8, take: impl Fn(u8) -> bool, leaf: u32, depth: u8) {
        let first = chunk_of(addr);
        for c in first..first + (1usize << (DIR_BITS - len)) {
            if take(self.background[c].1) {
                self.background[c] = (leaf, depth);
                self.mark(c);
            }
        }
    }

    /// Rewrites chunk `c`'s word, and its ranges if it needs them, from its
    /// background and its rules.
    fn rebuild(&mut self, c: usize) {
        let background = self.background[c].0;
        let old = self.dir.get(c);
        let rules = &self.inner[c];
        let mut degrade = false;
        let new = if rules.is_empty() {
            background
        } else {
            let (mut ranges, mut open) = std::mem::take(&mut self.scratch);
            chunk_ranges_into(background, rules, &mut ranges, &mut open);
            let word = match ranges.as_slice() {
                [only] => only.leaf,
                _ => self.write_chunk(&ranges).unwrap_or_else(|| {
                    degrade = true;
                    fib_leaf()
                }),
            };
            self.scratch = (ranges, open);
            word
        };
        if degrade {
            self.degraded.insert(c as u32);
        } else {
            self.degraded.remove(&(c as u32));
        }
        if new == old {
            return;
        }
        self.dir.set(c, new);
        if is_chunk(old) {
            let (base, log) = extent_of(old);
            self.extents.release(base, log);
        }
    }

    /// Writes `ranges` into a fresh extent, padded to its size, and
    /// returns the word that points to it; `None` without room.
    fn write_chunk(&mut self, ranges: &[Range]) -> Option<u32> {
        let log = log_for(ranges.len());
        let base = self.extents.take(log)?;
        for i in 0..1usize << log {
            let at = (base as usize + i) * 2;
            let (start, leaf) = ranges
                .get(i)
                .map_or((PAD, 0), |r| (u32::from(r.start), r.leaf));
            self.ranges.set(at, start);
            self.ranges.set(at + 1, leaf);
        }
        // The chunk is complete before the word points to it.
        self.ranges.publish();
        Some(chunk_word(base, log))
    }
}

#[cfg(test)]
mod tests;
