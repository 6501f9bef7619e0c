//! Which IPv4 prefixes of up to /24 hold a rule, one bit per prefix.
//!
//! Removing a rule from the IPv4 trie repaints its range with the longest
//! shorter rule that covers it, found by trying each shorter length in
//! turn. Probing the rule map for each is a cache miss per length (a dozen
//! for a /24 of a full table); these bits (4 MiB for every length up to
//! /24, the short lengths a few KiB) answer most of the tries from cache,
//! and the map is read once, for the rule that is there.

/// Longest length with bits.
pub const MAX_LEN: u8 = 24;

pub struct PrefixBits {
    /// Per length `l`, 2^l bits.
    by_len: Vec<Vec<u64>>,
}

impl Default for PrefixBits {
    fn default() -> Self {
        PrefixBits {
            by_len: (0..=MAX_LEN)
                .map(|l| vec![0u64; (1usize << l).div_ceil(64)])
                .collect(),
        }
    }
}

/// The word and bit of `addr/len` (`len` ≤ [`MAX_LEN`]).
fn place(addr: u32, len: u8) -> (usize, u64) {
    let i = if len == 0 {
        0
    } else {
        (addr >> (32 - len)) as usize
    };
    (i / 64, 1 << (i % 64))
}

impl PrefixBits {
    pub fn set(&mut self, addr: u32, len: u8, on: bool) {
        let (w, b) = place(addr, len);
        let word = &mut self.by_len[usize::from(len)][w];
        if on {
            *word |= b;
        } else {
            *word &= !b;
        }
    }

    pub fn get(&self, addr: u32, len: u8) -> bool {
        let (w, b) = place(addr, len);
        self.by_len[usize::from(len)][w] & b != 0
    }

    /// Starts bringing in the word of `addr/len` (see
    /// [`crate::prefetch::line`]).
    pub fn prefetch(&self, addr: u32, len: u8) {
        let (w, _) = place(addr, len);
        crate::prefetch::line(&self.by_len[usize::from(len)][w]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_follow_prefixes() {
        let mut p = PrefixBits::default();
        let a = 0x0a01_0200; // 10.1.2.0
        for len in [0, 1, 8, 23, 24] {
            assert!(!p.get(a, len));
            p.set(a, len, true);
            assert!(p.get(a, len));
        }
        // Another /24 beside it, and the same /23 from its other half.
        assert!(!p.get(a + 0x100 * 2, 24));
        assert!(p.get(a | 0x100, 23));
        p.set(a, 24, false);
        assert!(!p.get(a, 24) && p.get(a, 23) && p.get(0, 0));
    }
}
