//! A larger table made from the real one, for headroom runs (issue 12: "a
//! synthetic table of twice today's size ... with the real prefix-length
//! mix").
//!
//! Random prefixes with the right length mix (`accel-bench gen-table`) are
//! not enough: real prefixes cluster (the /24s of an allocation share their
//! /16, IPv6 /48s share their /32), and how much a route structure needs
//! (trie nodes) follows the clustering, not the count. So
//! the growth copies the real table whole, translated: copy k is every
//! prefix XORed with one pattern. XOR with a fixed pattern maps prefixes
//! to prefixes and keeps containment (`p` contains `q` exactly when `p ^ m`
//! contains `q ^ m`), so each copy has the real table's nesting, clustering
//! and length mix, somewhere else in the address space. The last copy is a
//! seeded random part of the table, to reach the count asked for.
//!
//! IPv4 patterns leave the top three bits alone (unicast stays unicast) and
//! prefixes that land in special-purpose space are left out; IPv6 patterns
//! keep 2000::/3. Duplicates (a translated prefix that already exists) are
//! left out too.

use std::collections::HashSet;

/// Special-purpose IPv4 space (RFC 6890) that no Internet table carries,
/// and 198.0.0.0/8, which holds the benchmark labs' own addresses
/// (198.18.0.0/15).
const NOT_IN_TABLE4: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8
    (0x0a00_0000, 8),  // 10.0.0.0/8
    (0x6440_0000, 10), // 100.64.0.0/10
    (0x7f00_0000, 8),  // 127.0.0.0/8
    (0xa9fe_0000, 16), // 169.254.0.0/16
    (0xac10_0000, 12), // 172.16.0.0/12
    (0xc0a8_0000, 16), // 192.168.0.0/16
    (0xc600_0000, 8),  // 198.0.0.0/8
    (0xe000_0000, 3),  // 224.0.0.0/3: multicast and reserved
];

pub fn mask4(a: u32, len: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - len as u32).unwrap_or(0)
}

pub fn mask6(a: u128, len: u8) -> u128 {
    a & u128::MAX.checked_shl(128 - len as u32).unwrap_or(0)
}

/// Whether `a/len` overlaps special-purpose space (see [`NOT_IN_TABLE4`]).
pub fn special4(a: u32, len: u8) -> bool {
    NOT_IN_TABLE4
        .iter()
        .any(|&(b, blen)| mask4(a, len.min(blen)) == mask4(b, len.min(blen)))
}

/// `base` grown to `want` IPv4 prefixes (address, length): `base` first,
/// then translated copies. Fewer when the space runs out (after 64 copies).
pub fn grow4(base: &[(u32, u8)], want: usize, rng: &mut fastrand::Rng) -> Vec<(u32, u8)> {
    let xlate = |&(a, len): &(u32, u8), m: u32| {
        let t = mask4(a ^ m, len);
        (!special4(t, len)).then_some((t, len))
    };
    grow(base, want, rng, |rng| rng.u32(..) & 0x1fff_ffff, xlate)
}

/// `base` grown to `want` IPv6 prefixes, inside 2000::/3.
pub fn grow6(base: &[(u128, u8)], want: usize, rng: &mut fastrand::Rng) -> Vec<(u128, u8)> {
    let xlate = |&(a, len): &(u128, u8), m: u128| {
        let t = mask6(a ^ m, len);
        (t >> 125 == 1).then_some((t, len))
    };
    grow(base, want, rng, |rng| rng.u128(..) >> 3, xlate)
}

fn grow<P, M>(
    base: &[P],
    want: usize,
    rng: &mut fastrand::Rng,
    pattern: impl Fn(&mut fastrand::Rng) -> M,
    xlate: impl Fn(&P, M) -> Option<P>,
) -> Vec<P>
where
    P: Copy + Eq + std::hash::Hash,
    M: Copy,
{
    let mut seen: HashSet<P> = HashSet::with_capacity(want);
    let mut out = Vec::with_capacity(want);
    for p in base {
        if out.len() < want && seen.insert(*p) {
            out.push(*p);
        }
    }
    // The copies take the table in a random order, so that a partial last
    // copy is a random part of it rather than its lowest addresses.
    let mut order: Vec<&P> = base.iter().collect();
    rng.shuffle(&mut order);
    for _ in 0..64 {
        if out.len() >= want {
            break;
        }
        let m = pattern(rng);
        for p in &order {
            if out.len() >= want {
                break;
            }
            if let Some(t) = xlate(p, m) {
                if seen.insert(t) {
                    out.push(t);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base4() -> Vec<(u32, u8)> {
        // An allocation and its more-specifics, and an unrelated /16.
        vec![
            (0x0b00_0000, 8),
            (0x0b01_0000, 16),
            (0x0b01_0200, 24),
            (0x0b01_0300, 24),
            (0x5000_0000, 16),
        ]
    }

    fn contains4(p: (u32, u8), q: (u32, u8)) -> bool {
        p.1 <= q.1 && mask4(q.0, p.1) == p.0
    }

    #[test]
    fn copies_keep_the_mix_and_the_nesting() {
        let base = base4();
        let mut rng = fastrand::Rng::with_seed(7);
        let got = grow4(&base, 15, &mut rng);
        assert_eq!(got.len(), 15);
        assert_eq!(&got[..5], &base[..]);
        let distinct: HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), got.len(), "no duplicates");
        for &(a, len) in &got {
            assert_eq!(mask4(a, len), a, "host bits clear");
            assert!(!special4(a, len), "{a:#x}/{len} is special-purpose");
        }
        // Each full copy holds one prefix per length of the base, and
        // nests as the base does: every /24 lies in one of the copies' /16s.
        let count = |l: u8| got.iter().filter(|p| p.1 == l).count();
        assert_eq!((count(8), count(16), count(24)), (3, 6, 6));
        for &q in got.iter().filter(|p| p.1 == 24) {
            assert!(got.iter().any(|&p| p.1 == 16 && contains4(p, q)));
        }
    }

    #[test]
    fn ipv6_stays_global_unicast_and_stops_at_the_count() {
        let base: Vec<(u128, u8)> = vec![
            (0x2001_0db8u128 << 96, 32),
            ((0x2001_0db8_0001u128) << 80, 48),
        ];
        let mut rng = fastrand::Rng::with_seed(1);
        let got = grow6(&base, 5, &mut rng);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|&(a, _)| a >> 125 == 1));
        // Asking for fewer than the base takes its first prefixes.
        assert_eq!(grow6(&base, 1, &mut rng), vec![base[0]]);
    }
}
