//! DXR's D16R layout of an IPv4 FIB, built from rules (issue 12, first
//! step of the compact FIB; not yet used by the datapath).
//!
//! One word per /16 (256 KiB for the whole space) holds the leaf of the
//! longest rule of /16 or shorter covering it; a /16 that also holds
//! longer rules gets a chunk: its address ranges, sorted, each with the
//! leaf of the innermost rule covering it, found by a binary search. A full
//! table needs a few MiB instead of DIR-24-8's 64 MiB first level, so a
//! lookup stays in cache (BENCHMARKS.md, "Per stage, warm caches": the
//! first level's misses are ~125 ns of a ~290 ns frame). The design and the
//! plan are in the notes; this module is the reference builder and
//! lookup that the datapath's layout, its incremental updates and its BPF
//! search will be tested against.
//!
//! Leaves are the datapath's 32-bit route leaves (0: no route), as in
//! [`super::dir24`].

use std::collections::BTreeMap;

/// /16s in the address space.
pub const CHUNKS: usize = 1 << 16;

/// A range of a chunk: from `start` (the address's low 16 bits) up to the
/// next range's start, `leaf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u16,
    pub leaf: u32,
}

/// The D16R form of a set of IPv4 rules.
pub struct D16r {
    /// Per /16, the leaf of the longest rule of /16 or shorter covering it.
    direct: Vec<u32>,
    /// The ranges of every /16 holding rules longer than /16.
    chunks: BTreeMap<u16, Vec<Range>>,
}

/// How big a [`D16r`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// /16s with a chunk.
    pub chunks: usize,
    /// Ranges over all chunks.
    pub ranges: usize,
}

impl Size {
    /// Bytes with 4-byte ranges (16-bit start, 16-bit leaf id) and the
    /// direct table, as the datapath would lay them out.
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

impl D16r {
    /// Builds the layout of `rules` ((address, length) -> leaf; the
    /// address's bits past the length are ignored).
    pub fn build(rules: &BTreeMap<(u32, u8), u32>) -> D16r {
        let mut direct = vec![0u32; CHUNKS];
        let mut inner: BTreeMap<u16, Vec<(u16, u8, u32)>> = BTreeMap::new();
        let mut short: Vec<(u32, u8, u32)> = Vec::new();
        for (&(addr, len), &leaf) in rules {
            let addr = mask(addr, len);
            if len <= 16 {
                short.push((addr, len, leaf));
            } else {
                inner
                    .entry((addr >> 16) as u16)
                    .or_default()
                    .push((addr as u16, len, leaf));
            }
        }
        // Shorter rules first, so that longer ones paint over them.
        short.sort_by_key(|&(_, len, _)| len);
        for (addr, len, leaf) in short {
            let first = (addr >> 16) as usize;
            let n = 1usize << (16 - len);
            direct[first..first + n].fill(leaf);
        }
        let mut chunks = BTreeMap::new();
        for (c, mut rules) in inner {
            // Outer rules before the rules nested in them.
            rules.sort_by_key(|&(start, len, _)| (start, len));
            let ranges = chunk_ranges(direct[usize::from(c)], &rules);
            match ranges.as_slice() {
                // Longer rules with one leaf over the whole /16 (two /17s
                // alike): that leaf is the /16's, no chunk.
                [only] => direct[usize::from(c)] = only.leaf,
                _ => {
                    chunks.insert(c, ranges);
                }
            }
        }
        D16r { direct, chunks }
    }

    /// The leaf for `addr`: 0 without a route.
    pub fn lookup(&self, addr: u32) -> u32 {
        let c = (addr >> 16) as u16;
        match self.chunks.get(&c) {
            None => self.direct[usize::from(c)],
            Some(ranges) => {
                let key = addr as u16;
                // The last range starting at or before key; the first
                // starts at 0.
                let i = ranges.partition_point(|r| r.start <= key);
                ranges[i - 1].leaf
            }
        }
    }

    /// The ranges of `addr`'s /16, if it has a chunk.
    pub fn chunk(&self, c: u16) -> Option<&[Range]> {
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

/// The ranges of one /16 whose background (its longest covering rule of
/// /16 or shorter) is `background`, from its longer rules as (low 16 bits
/// of the address, length, leaf), sorted by start and then length, so that
/// a rule comes before the rules nested in it. A sweep with a stack of the
/// rules still open, as FreeBSD's DXR builds its chunks.
fn chunk_ranges(background: u32, rules: &[(u16, u8, u32)]) -> Vec<Range> {
    let mut out = vec![Range {
        start: 0,
        leaf: background,
    }];
    // (end, exclusive, as u32 so that 65536 fits; leaf) of open rules.
    let mut open: Vec<(u32, u32)> = vec![(1 << 16, background)];
    for &(start, len, leaf) in rules {
        let s = u32::from(start);
        close_until(&mut out, &mut open, s);
        emit(&mut out, start, leaf);
        open.push((s + (1u32 << (32 - len)), leaf));
    }
    close_until(&mut out, &mut open, 1 << 16);
    out
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
        if end < 1 << 16 {
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
        let d = D16r::build(rules);
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

    /// Random rules nested in a few /16s, with short rules above them,
    /// against brute-force matching.
    #[test]
    fn matches_the_longest_prefix_everywhere() {
        let mut rng = fastrand::Rng::with_seed(0x0d16);
        for round in 0..300 {
            let mut rules = BTreeMap::new();
            let bases = [0x0a00_0000u32, 0x0a01_0000, 0xc0a8_0000, 0xffff_0000];
            for _ in 0..rng.usize(1..40) {
                let len = match rng.u8(..10) {
                    0 => rng.u8(0..=16),
                    1 => rng.u8(25..=32),
                    _ => rng.u8(17..=24),
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
        let d = D16r::build(&rules);
        assert_eq!(d.chunk(0x0a01), None);
        assert_eq!(
            d.chunk(0x0a02),
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
        // Two /17s alike cover their /16 with one leaf: no chunk, and the
        // /16's word says so (it has no shorter rule of its own).
        let mut rules = BTreeMap::new();
        rules.insert((0x0106_0000, 17), 5);
        rules.insert((0x0106_8000, 17), 5);
        let d = D16r::build(&rules);
        assert_eq!(d.chunk(0x0106), None);
        assert_eq!(d.lookup(0x0106_0000), 5);
        assert_eq!(d.lookup(0x0106_ffff), 5);
    }
}
