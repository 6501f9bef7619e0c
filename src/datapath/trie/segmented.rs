//! Per-leaf arrays of a trie's nodes that grow without moving: segments
//! of [`SEGMENT`] leaves (whole nodes) allocated as nodes are taken.
//! A `Vec` doubled instead, copying everything it held: 22 ms at 32,768
//! nodes, a stall of the event loop in the middle of a full table.

use std::ops::{Index, IndexMut, Range};

use super::NODE_LEAVES;

/// Leaves per segment: 1,024 nodes.
const SEGMENT: usize = 1024 * NODE_LEAVES;

pub(super) struct Segmented<T> {
    segments: Vec<Box<[T]>>,
}

impl<T: Copy + Default> Segmented<T> {
    pub fn new() -> Self {
        Segmented {
            segments: Vec::new(),
        }
    }

    /// Room for `len` leaves, zeroed (for integers: pages the kernel hands
    /// out as they are first touched).
    pub fn ensure(&mut self, len: usize) {
        while self.segments.len() * SEGMENT < len {
            self.segments
                .push(vec![T::default(); SEGMENT].into_boxed_slice());
        }
    }

    /// The leaves of `range`, which lies within one node.
    pub fn slice(&self, range: Range<usize>) -> &[T] {
        debug_assert_eq!(range.start / NODE_LEAVES, (range.end - 1) / NODE_LEAVES);
        &self.segments[range.start / SEGMENT][range.start % SEGMENT..][..range.len()]
    }

    pub fn slice_mut(&mut self, range: Range<usize>) -> &mut [T] {
        debug_assert_eq!(range.start / NODE_LEAVES, (range.end - 1) / NODE_LEAVES);
        &mut self.segments[range.start / SEGMENT][range.start % SEGMENT..][..range.len()]
    }
}

impl<T> Index<usize> for Segmented<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.segments[i / SEGMENT][i % SEGMENT]
    }
}

impl<T> IndexMut<usize> for Segmented<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.segments[i / SEGMENT][i % SEGMENT]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_without_moving_and_indexes_across_segments() {
        let mut s: Segmented<u32> = Segmented::new();
        s.ensure(10);
        s[3] = 7;
        let first = s.slice(0..NODE_LEAVES).as_ptr();
        s.ensure(3 * SEGMENT);
        assert_eq!(s.slice(0..NODE_LEAVES).as_ptr(), first, "not moved");
        assert_eq!(s[3], 7);
        s[SEGMENT + 5] = 9;
        s.slice_mut(2 * SEGMENT..2 * SEGMENT + NODE_LEAVES).fill(4);
        assert_eq!(s[SEGMENT + 5], 9);
        assert_eq!(s[2 * SEGMENT + NODE_LEAVES - 1], 4);
        assert_eq!(s[2 * SEGMENT + NODE_LEAVES], 0);
    }
}
