use std::collections::BTreeMap;

use super::*;
use crate::datapath::dxr::Dxr;

fn fib(capacity: u32) -> Fib4<Vec<u32>> {
    Fib4::with_extents(
        vec![0; CHUNKS],
        vec![0; capacity as usize * 2],
        Extents::new(capacity).without_grace(),
    )
}

/// Random rules nested in a few /16s (several chunks each), with short
/// rules above them.
fn random_rule(rng: &mut fastrand::Rng) -> (u32, u8, u32) {
    let bases = [0x0a00_0000u32, 0x0a01_0000, 0xc0a8_0000, 0xffff_0000];
    let len = match rng.u8(..10) {
        0 => rng.u8(0..=16),
        1 => rng.u8(25..=32),
        _ => rng.u8(17..=24),
    };
    let addr = bases[rng.usize(..bases.len())] | rng.u32(..0x0001_0000);
    (mask(addr, len), len, 0x2000_0000 | rng.u32(1..6))
}

/// Every address where an answer can change, and random ones near the rules.
fn probes(rules: &BTreeMap<(u32, u8), u32>, rng: &mut fastrand::Rng) -> Vec<u32> {
    let mut v: Vec<u32> = (0..200).map(|_| rng.u32(..)).collect();
    for &(a, len) in rules.keys() {
        let last = a | (u32::MAX.checked_shr(u32::from(len)).unwrap_or(0));
        v.extend([a, a.wrapping_sub(1), last, last.wrapping_add(1)]);
        v.push(a ^ rng.u32(..0x0001_0000));
    }
    v
}

/// After every flush, the incremental FIB answers as the reference built
/// from scratch.
#[test]
fn updates_one_at_a_time_match_a_fresh_build() {
    let mut rng = fastrand::Rng::with_seed(0xf1b4);
    for _ in 0..60 {
        let mut f = fib(1 << 12);
        let mut rules: BTreeMap<(u32, u8), u32> = BTreeMap::new();
        for _ in 0..rng.usize(1..80) {
            // A batch of one to three changes, then a flush.
            for _ in 0..rng.usize(1..4) {
                let (addr, len, leaf) = random_rule(&mut rng);
                if rng.u8(..3) == 0 && !rules.is_empty() {
                    let k = *rules.keys().nth(rng.usize(..rules.len())).unwrap();
                    rules.remove(&k);
                    f.remove(k.0, k.1);
                } else {
                    rules.insert((addr, len), leaf);
                    f.insert(addr, len, leaf);
                }
            }
            f.flush();
            let want = Dxr::build(&rules);
            for a in probes(&rules, &mut rng) {
                assert_eq!(f.lookup(a), want.lookup(a), "address {a:#010x}");
            }
            assert_eq!(f.len(), rules.len());
            assert_eq!(f.degraded_chunks(), 0);
        }
        // Withdrawing everything leaves nothing behind.
        for (a, len) in rules.keys() {
            f.remove(*a, *len);
            f.flush();
        }
        let left: Vec<_> = f.dir.iter().enumerate().filter(|(_, w)| **w != 0).collect();
        assert!(left.is_empty(), "{left:x?}");
        f.extents.take(0);
        assert_eq!(f.ranges_in_use(), 1, "only the extent taken above");
    }
}

/// Without room a chunk goes to bpf_fib_lookup as a whole, and gets its ranges
/// back once room is free again.
#[test]
fn a_chunk_without_room_is_degraded_then_restored() {
    let mut f = fib(4);
    f.insert(0x0a00_0000, 8, 7);
    f.flush();
    f.insert(0x0a01_0100, 24, 9);
    f.flush(); // 3 ranges: 4 entries
    assert_eq!(f.ranges_in_use(), 4);
    f.insert(0x0a02_0100, 24, 9);
    f.flush(); // no room
    assert_eq!(f.degraded_chunks(), 1);
    assert_eq!(f.degraded_rules(), 1);
    assert_eq!(f.lookup(0x0a02_0105), fib_leaf());
    assert_eq!(f.lookup(0x0a02_0205), fib_leaf(), "the whole chunk");
    assert_eq!(f.lookup(0x0a01_0105), 9, "others unaffected");
    assert_eq!(f.retry(), 0);
    f.remove(0x0a01_0100, 24);
    f.flush();
    assert_eq!(f.lookup(0x0a01_0105), 7);
    assert_eq!(f.retry(), 1);
    assert_eq!(f.degraded_chunks(), 0);
    assert_eq!(f.lookup(0x0a02_0105), 9);
    assert_eq!(f.lookup(0x0a02_0205), 7);
    // Losing its last long rule also ends a degradation.
    f.insert(0x0a03_0100, 24, 9);
    f.flush();
    assert_eq!(f.degraded_chunks(), 1);
    f.remove(0x0a03_0100, 24);
    f.flush();
    assert_eq!(f.degraded_chunks(), 0);
    assert_eq!(f.lookup(0x0a03_0105), 7);
}

/// The datapath may still read the ranges a chunk's old word pointed to: they
/// stay untouched through the grace period.
#[test]
fn an_old_chunk_outlives_its_readers() {
    let mut f = Fib4::new(vec![0; CHUNKS], vec![0; 64], 32);
    f.insert(0x0a01_0100, 24, 9);
    f.flush();
    let old_word = f.dir[crate::datapath::dxr::chunk_of(0x0a01_0100)];
    let old = f.ranges.clone();
    for i in 0..20 {
        f.insert(0x0a01_0200 + (i << 8), 24, 9 + i);
        f.flush();
    }
    let (base, log) = extent_of(old_word);
    let span = base as usize * 2..(base as usize + (1 << log)) * 2;
    assert_eq!(f.ranges[span.clone()], old[span]);
    assert_eq!(
        search(old_word, 0x0a01_0105, |i| Some((
            old[i as usize * 2],
            old[i as usize * 2 + 1]
        ))),
        Some(9)
    );
}

/// A changed default route reaches every chunk, those with ranges included.
#[test]
fn a_short_rule_repaints_the_chunks_below_it() {
    let mut f = fib(64);
    f.insert(0, 0, 1);
    f.flush();
    f.insert(0xc0a8_0100, 24, 2);
    f.flush();
    assert_eq!(f.lookup(0xc0a8_0001), 1);
    f.insert(0, 0, 3);
    f.flush();
    assert_eq!(f.lookup(0xc0a8_0001), 3);
    assert_eq!(f.lookup(0xc0a8_0101), 2);
    assert_eq!(f.lookup(0x0808_0808), 3);
    f.insert(0xc0a8_0000, 16, 4);
    f.flush();
    f.remove(0, 0);
    f.flush();
    assert_eq!(f.lookup(0xc0a8_0001), 4);
    assert_eq!(f.lookup(0x0808_0808), 0);
    f.remove(0xc0a8_0000, 16);
    f.flush();
    assert_eq!(f.lookup(0xc0a8_0001), 0);
    assert_eq!(f.lookup(0xc0a8_0101), 2);
}
