//! A trie's rules by prefix, keyed compactly per family: an IPv4 rule's
//! entry is 12 bytes and an IPv6 rule's 24, where a `u128` key (aligned
//! to 16) would make either 48. At a full table every route event misses
//! in this map once: the smaller it is, the fewer those misses and the
//! less memory.

use crate::fast_hash::ShardedMap;
use crate::model::Family;

pub(super) enum Rules {
    V4(ShardedMap<(u32, u8), u32>),
    V6(ShardedMap<(Words, u8), u32>),
}

/// An IPv4 trie keeps its addresses in the top 32 bits.
fn key4(addr: u128) -> u32 {
    (addr >> 96) as u32
}

/// An IPv6 address in words aligned to 4, hashed as the `u128` it is
/// (an array would be hashed as a byte slice with its length, slower on
/// the covering search's many probes).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Words([u32; 4]);

impl std::hash::Hash for Words {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(addr6(*self));
    }
}

fn key6(addr: u128) -> Words {
    Words([96, 64, 32, 0].map(|shift| (addr >> shift) as u32))
}

fn addr6(key: Words) -> u128 {
    key.0.iter().fold(0, |a, &w| a << 32 | u128::from(w))
}

impl Rules {
    pub(super) fn new(family: Family) -> Self {
        match family {
            Family::V4 => Rules::V4(ShardedMap::default()),
            Family::V6 => Rules::V6(ShardedMap::default()),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Rules::V4(m) => m.len(),
            Rules::V6(m) => m.len(),
        }
    }

    pub(super) fn get(&self, addr: u128, len: u8) -> Option<u32> {
        match self {
            Rules::V4(m) => m.get(&(key4(addr), len)).copied(),
            Rules::V6(m) => m.get(&(key6(addr), len)).copied(),
        }
    }

    /// The rule's previous leaf, if it had one.
    pub(super) fn insert(&mut self, addr: u128, len: u8, leaf: u32) -> Option<u32> {
        match self {
            Rules::V4(m) => m.insert((key4(addr), len), leaf),
            Rules::V6(m) => m.insert((key6(addr), len), leaf),
        }
    }

    pub(super) fn remove(&mut self, addr: u128, len: u8) -> Option<u32> {
        match self {
            Rules::V4(m) => m.remove(&(key4(addr), len)),
            Rules::V6(m) => m.remove(&(key6(addr), len)),
        }
    }

    /// See [`ShardedMap::warm`].
    pub(super) fn warm(&self, addr: u128, len: u8) {
        match self {
            Rules::V4(m) => m.warm(&(key4(addr), len)),
            Rules::V6(m) => m.warm(&(key6(addr), len)),
        }
    }

    /// Every rule's prefix, left-aligned, in no particular order.
    pub(super) fn prefixes(&self) -> Box<dyn Iterator<Item = (u128, u8)> + '_> {
        match self {
            Rules::V4(m) => Box::new(m.keys().map(|&(a, l)| (u128::from(a) << 96, l))),
            Rules::V6(m) => Box::new(m.keys().map(|&(a, l)| (addr6(a), l))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_rules_round_trip_through_the_compact_key() {
        let mut r = Rules::new(Family::V4);
        let a = 0xc633_6400u128 << 96; // 198.51.100.0
        assert_eq!(r.insert(a, 24, 7), None);
        assert_eq!(r.insert(a, 24, 8), Some(7));
        assert_eq!(r.get(a, 24), Some(8));
        assert_eq!(r.get(a, 23), None);
        assert_eq!(r.prefixes().collect::<Vec<_>>(), vec![(a, 24)]);
        assert_eq!(r.remove(a, 24), Some(8));
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn ipv6_rules_round_trip_through_the_compact_key() {
        let mut r = Rules::new(Family::V6);
        let a = 0x2001_0db8_0102_0304_0506_0708_090a_0b0cu128;
        assert_eq!(addr6(key6(a)), a);
        assert_eq!(r.insert(a, 128, 7), None);
        assert_eq!(r.get(a, 128), Some(7));
        assert_eq!(r.get(a ^ 1, 128), None);
        assert_eq!(r.prefixes().collect::<Vec<_>>(), vec![(a, 128)]);
        assert_eq!(std::mem::size_of::<((Words, u8), u32)>(), 24);
    }
}
