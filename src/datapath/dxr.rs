//! DXR's range layout of an IPv4 FIB, built from rules at once: the
//! reference that the datapath's incremental FIB ([`super::fib4`]) is
//! tested against, and its chunk builder.
//!
//! The address space is cut into 2^[`DIR_BITS`] chunks (/20s). One word
//! per chunk (4 MiB for the whole space) holds the leaf of the longest rule
//! covering the whole chunk; a chunk that also holds longer rules gets its
//! address ranges, sorted, each with the leaf of the innermost rule
//! covering it, found by a binary search. A full table needs about 11 MiB
//! instead of DIR-24-8's 64 MiB first level, so a lookup stays in cache
//! (BENCHMARKS.md, "Per stage, warm caches": the first level's misses were
//! ~125 ns of a ~290 ns frame). FreeBSD's in_fib_dxr.c calls the layout
//! DnR by its direct table's bits: this is D20R.
//!
//! Leaves are the datapath's 32-bit route leaves (0: no route), as in
//! [`super::leaf`].

use std::collections::BTreeMap;

use crate::bpf::types::accel_fib4 as F;

/// Bits of an address that pick its chunk.
pub const DIR_BITS: u8 = F::ACCEL_FIB4_DIR_BITS.0 as u8;
/// Chunks in the address space.
pub const CHUNKS: usize = 1 << DIR_BITS;
/// Addresses in a chunk.
pub const SPAN: u32 = 1 << (32 - DIR_BITS);
// A range's start is an offset in its chunk.
const _: () = assert!(DIR_BITS >= 16 && DIR_BITS < 32);

/// The chunk of `addr`.
pub fn chunk_of(addr: u32) -> usize {
    (addr >> (32 - DIR_BITS)) as usize
}

/// `addr`'s offset in its chunk.
pub fn offset(addr: u32) -> u16 {
    (addr & (SPAN - 1)) as u16
}

/// A range of a chunk: from `start` (an offset in the chunk) up to the
/// next range's start, `leaf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u16,
    pub leaf: u32,
}

/// The DXR form of a set of IPv4 rules.
pub struct Dxr {
    /// Per chunk, the leaf of the longest rule covering all of it.
    direct: Vec<u32>,
    /// The ranges of every chunk holding longer rules.
    chunks: BTreeMap<usize, Vec<Range>>,
}

/// How big a [`Dxr`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Chunks with ranges.
    pub chunks: usize,
    /// Ranges over all chunks.
    pub ranges: usize,
}

impl Size {
    /// Bytes with 4-byte ranges (16-bit start, 16-bit leaf id) and the
    /// direct table: DXR's own layout, the least this one could be.
    pub fn bytes(&self) -> usize {
        CHUNKS * 4 + self.ranges * 4
    }
}

fn mask(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - len))
    }
}

impl Dxr {
    /// Builds the layout of `rules` ((address, length) -> leaf; the
    /// address's bits past the length are ignored).
    pub fn build(rules: &BTreeMap<(u32, u8), u32>) -> Dxr {
        let mut direct = vec![0u32; CHUNKS];
        let mut inner: BTreeMap<usize, Vec<(u16, u8, u32)>> = BTreeMap::new();
        let mut short: Vec<(u32, u8, u32)> = Vec::new();
        for (&(addr, len), &leaf) in rules {
            let addr = mask(addr, len);
            if len <= DIR_BITS {
                short.push((addr, len, leaf));
            } else {
                inner
                    .entry(chunk_of(addr))
                    .or_default()
                    .push((offset(addr), len, leaf));
            }
        }
        // Shorter rules first, so that longer ones paint over them.
        short.sort_by_key(|&(_, len, _)| len);
        for (addr, len, leaf) in short {
            let first = chunk_of(addr);
            let n = 1usize << (DIR_BITS - len);
            direct[first..first + n].fill(leaf);
        }
        let mut chunks = BTreeMap::new();
        for (c, mut rules) in inner {
            // Outer rules before the rules nested in them.
            rules.sort_by_key(|&(start, len, _)| (start, len));
            let ranges = chunk_ranges(direct[c], &rules);
            match ranges.as_slice() {
                // Longer rules with one leaf over the whole chunk (two
                // halves alike): that leaf is the chunk's, no ranges.
                [only] => direct[c] = only.leaf,
                _ => {
                    chunks.insert(c, ranges);
                }
            }
        }
        Dxr { direct, chunks }
    }

    /// The leaf for `addr`: 0 without a route.
    pub fn lookup(&self, addr: u32) -> u32 {
        let c = chunk_of(addr);
        match self.chunks.get(&c) {
            None => self.direct[c],
            Some(ranges) => {
                let key = offset(addr);
                // The last range starting at or before key; the first
                // starts at 0.
                let i = ranges.partition_point(|r| r.start <= key);
                ranges[i - 1].leaf
            }
        }
    }

    /// The ranges of chunk `c`, if it has them.
    pub fn chunk(&self, c: usize) -> Option<&[Range]> {
        self.chunks.get(&c).map(Vec::as_slice)
    }

    pub fn size(&self) -> Size {
        Size {
            chunks: self.chunks.len(),
            ranges: self.chunks.values().map(Vec::len).sum(),
        }
    }
}

/// Appends a range starting at `start`, or, where one starts there
/// already, gives it `leaf`; neighbours with one leaf are one range.
fn emit(out: &mut Vec<Range>, start: u16, leaf: u32) {
    if let Some(last) = out.last_mut() {
        if last.start == start {
            last.leaf = leaf;
            let n = out.len();
            if n >= 2 && out[n - 2].leaf == leaf {
                out.pop();
            }
            return;
        }
        if last.leaf == leaf {
            return;
        }
    }
    out.push(Range { start, leaf });
}

/// The ranges of one chunk whose background (its longest rule covering all
/// of it) is `background`, from its longer rules as (offset in the chunk,
/// length, leaf), sorted by start and then length, so that
/// a rule comes before the rules nested in it. A sweep with a stack of the
/// rules still open, as FreeBSD's DXR builds its chunks.
fn chunk_ranges(background: u32, rules: &[(u16, u8, u32)]) -> Vec<Range> {
    let mut out = Vec::new();
    chunk_ranges_into(background, rules, &mut out, &mut Vec::new());
    out
}

/// [`chunk_ranges`] into `out`, with `open` as the stack: buffers reused
/// from one chunk to the next (the incremental FIB rebuilds one per
/// route event).
pub(super) fn chunk_ranges_into(
    background: u32,
    rules: &[(u16, u8, u32)],
    out: &mut Vec<Range>,
    open: &mut Vec<(u32, u32)>,
) {
    out.clear();
    out.push(Range {
        start: 0,
        leaf: background,
    });
    // (end, exclusive, as u32 so that SPAN fits; leaf) of open rules.
    open.clear();
    open.push((SPAN, background));
    for &(start, len, leaf) in rules {
        let s = u32::from(start);
        close_until(out, open, s);
        emit(out, start, leaf);
        open.push((s + (1u32 << (32 - len)), leaf));
    }
    close_until(out, open, SPAN);
}

/// Closes the open rules that end at or before `at`: past each one's end
/// the rule it is nested in applies again.
fn close_until(out: &mut Vec<Range>, open: &mut Vec<(u32, u32)>, at: u32) {
    while open.len() > 1 {
        let (end, _) = open[open.len() - 1];
        if end > at {
            break;
        }
        open.pop();
        let outer = open[open.len() - 1].1;
        if end < SPAN {
            emit(out, end as u16, outer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Longest-prefix match by trying every rule: the oracle.
    fn reference(rules: &BTreeMap<(u32, u8), u32>, addr: u32) -> u32 {
        rules
            .iter()
            .filter(|((a, len), _)| mask(addr, *len) == mask(*a, *len))
            .max_by_key(|((_, len), _)| *len)
            .map_or(0, |(_, leaf)| *leaf)
    }

    /// The addresses where an answer can change: each rule's first and
    /// last address and their neighbours.
    fn edges(rules: &BTreeMap<(u32, u8), u32>) -> Vec<u32> {
        let mut v = Vec::new();
        for &(a, len) in rules.keys() {
            let first = mask(a, len);
            let host_bits = if len == 0 {
                u32::MAX
            } else {
                !(u32::MAX << (32 - len))
            };
            let last = first | host_bits;
            v.extend([first, first.wrapping_sub(1), last, last.wrapping_add(1)]);
        }
        v
    }

    fn check(rules: &BTreeMap<(u32, u8), u32>, rng: &mut fastrand::Rng) {
        let d = Dxr::build(rules);
        let mut probes = edges(rules);
        probes.extend((0..2000).map(|_| rng.u32(..)));
        // Random addresses near the rules too (the space is mostly empty).
        for &(a, _) in rules.keys() {
            probes.push(a ^ rng.u32(..0x0001_0000));
        }
        for addr in probes {
            assert_eq!(
                d.lookup(addr),
                reference(rules, addr),
                "address {addr:#010x}, rules {rules:?}"
            );
        }
        for (c, ranges) in &d.chunks {
            assert_eq!(ranges[0].start, 0, "chunk {c}");
            assert!(ranges.windows(2).all(|w| w[0].start < w[1].start));
            assert!(ranges.windows(2).all(|w| w[0].leaf != w[1].leaf));
        }
    }

    /// Random rules nested in a few chunks, with short rules above them,
    /// against brute-force matching.
    #[test]
    fn matches_the_longest_prefix_everywhere() {
        let mut rng = fastrand::Rng::with_seed(0x0d16);
        for round in 0..300 {
            let mut rules = BTreeMap::new();
            let bases = [0x0a00_0000u32, 0x0a01_0000, 0xc0a8_0000, 0xffff_0000];
            for _ in 0..rng.usize(1..40) {
                let len = match rng.u8(..10) {
                    0 => rng.u8(0..=DIR_BITS),
                    1 => rng.u8(25..=32),
                    _ => rng.u8(DIR_BITS + 1..=24),
                };
                let addr = bases[rng.usize(..bases.len())] | rng.u32(..0x0001_0000);
                rules.insert((mask(addr, len), len), 0x2000_0000 | rng.u32(1..6));
            }
            if round % 3 == 0 {
                rules.insert((0, 0), 0x2000_0009);
            }
            check(&rules, &mut rng);
        }
    }

    #[test]
    fn a_chunk_is_made_only_where_its_ranges_differ() {
        let mut rules = BTreeMap::new();
        rules.insert((0x0a00_0000, 8), 7);
        // The same leaf as its background: no chunk.
        rules.insert((0x0a01_0200, 24), 7);
        // Another leaf: a chunk of three ranges.
        rules.insert((0x0a02_0300, 24), 9);
        let d = Dxr::build(&rules);
        assert_eq!(d.chunk(chunk_of(0x0a01_0200)), None);
        assert_eq!(
            d.chunk(chunk_of(0x0a02_0300)),
            Some(
                &[
                    Range { start: 0, leaf: 7 },
                    Range {
                        start: 0x0300,
                        leaf: 9
                    },
                    Range {
                        start: 0x0400,
                        leaf: 7
                    }
                ][..]
            )
        );
        assert_eq!(
            d.size(),
            Size {
                chunks: 1,
                ranges: 3
            }
        );
        assert_eq!(d.lookup(0x0a02_03ff), 9);
        assert_eq!(d.lookup(0x0b00_0000), 0);
        // Two halves alike cover their chunk with one leaf: no ranges, and
        // the chunk's word says so (it has no shorter rule of its own).
        let mut rules = BTreeMap::new();
        let half = 1u32 << (31 - DIR_BITS);
        rules.insert((0x0106_0000, DIR_BITS + 1), 5);
        rules.insert((0x0106_0000 + half, DIR_BITS + 1), 5);
        let d = Dxr::build(&rules);
        assert_eq!(d.chunk(chunk_of(0x0106_0000)), None);
        assert_eq!(d.lookup(0x0106_0000), 5);
        assert_eq!(d.lookup(0x0106_0000 + SPAN - 1), 5);
        assert_eq!(d.lookup(0x0106_0000 + SPAN), 0);
    }
}
