//! Route leaves, the words the datapath's route tries hold (accel.h): 0
//! (no route), a route (ROUTE | type << TYPE_SHIFT | nh_id) or the next
//! node (EXT | node). Both families' tries (see [`super::trie`]) use them.

use crate::bpf::types::{accel_fib_mark, accel_leaf as L, accel_route_type};

/// Leaf encoding, shared with the datapath through accel.h.
pub fn route_leaf(route_type: u32, nh_id: u32) -> u32 {
    L::ACCEL_LEAF_ROUTE.0
        | (route_type << L::ACCEL_LEAF_TYPE_SHIFT.0)
        | (nh_id & L::ACCEL_LEAF_ID_MASK.0)
}

/// What a degraded region holds: "ask bpf_fib_lookup", marked as a lack
/// of room for `accel lookup`.
pub fn fib_leaf() -> u32 {
    route_leaf(
        accel_route_type::ACCEL_RT_FIB.0,
        accel_fib_mark::ACCEL_FIB_CAPACITY.0,
    )
}

/// What a datapath leaf holds for trie node `n` while the node has no
/// lines: "ask bpf_fib_lookup" as [`fib_leaf`] does, but distinct for each
/// node, as node pointers are (a SEGMENTED node's palette relies on it).
pub fn unplaced_leaf(n: usize) -> u32 {
    debug_assert!(n < accel_fib_mark::ACCEL_FIB_UNPLACED.0 as usize);
    route_leaf(
        accel_route_type::ACCEL_RT_FIB.0,
        accel_fib_mark::ACCEL_FIB_UNPLACED.0 | n as u32,
    )
}

/// Whether a leaf is [`unplaced_leaf`]'s, for some node.
pub fn is_unplaced_leaf(leaf: u32) -> bool {
    let mark = accel_fib_mark::ACCEL_FIB_UNPLACED.0;
    leaf & !(mark - 1) == unplaced_leaf(0)
}

/// Whether a leaf is "ask bpf_fib_lookup" for lack of room: a degraded
/// region's or a node's without lines.
pub fn is_capacity_leaf(leaf: u32) -> bool {
    leaf == fib_leaf() || is_unplaced_leaf(leaf)
}

/// The depth of a degraded leaf: above every prefix's (1..=129), so that no
/// route paints over it.
pub const DEGRADED: u8 = u8::MAX;

/// Where leaves live: the BPF arrays in production, vectors in tests.
pub trait LeafStore {
    fn get(&self, i: usize) -> u32;
    fn set(&mut self, i: usize, leaf: u32);
    /// Orders earlier stores before later ones as the datapath sees them.
    fn publish(&self) {}
    /// Asks for leaf i's cache line ahead of a store to it (see
    /// [`crate::prefetch`]).
    fn prefetch(&self, _i: usize) {}
}

impl LeafStore for Vec<u32> {
    fn get(&self, i: usize) -> u32 {
        self[i]
    }
    fn set(&mut self, i: usize, leaf: u32) {
        self[i] = leaf;
    }
    fn prefetch(&self, i: usize) {
        crate::prefetch::line(self.as_ptr().wrapping_add(i));
    }
}
