//! The node array's 64-byte lines, handed out in blocks of 1, 4 or 16
//! lines (the sizes of a node, accel.h), each aligned to its size inside a
//! chunk of 16, and reused only after a grace period ([`GRACE`]: the
//! datapath may have read a node's pointer just before it changed).
//!
//! Small blocks are cut from chunks already cut before a whole chunk is
//! split, so that whole chunks stay free for DIRECT nodes; a chunk whose
//! last block comes back is whole again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::slots::GRACE;

/// Lines per chunk: the largest block.
pub const CHUNK: usize = 16;

#[derive(Debug, Clone)]
pub struct Lines {
    grace: Duration,
    /// Per chunk: which of its lines are taken (or waiting out their grace).
    taken: Vec<u16>,
    /// Chunks never handed out yet start at `fresh`.
    fresh: usize,
    /// Whole chunks given back.
    whole: Vec<u32>,
    /// Cut chunks that may have room for a block of 1 (`cut[0]`) or of 4
    /// lines (`cut[1]`); checked when taken from.
    cut: [Vec<u32>; 2],
    /// Per chunk: bit `i` set while it is on `cut[i]`.
    listed: Vec<u8>,
    quarantine: VecDeque<(Instant, u32, u8)>,
    /// Lines handed out and not given back, and given back but still in
    /// their grace period.
    used: usize,
    waiting: usize,
    capacity: usize,
}

/// The lines of a block of `size` at `at` within its chunk.
fn block_mask(at: usize, size: usize) -> u16 {
    (((1u32 << size) - 1) << at) as u16
}

/// The first free block of `size` lines in a chunk with `taken` lines.
fn free_block(taken: u16, size: usize) -> Option<usize> {
    (0..CHUNK)
        .step_by(size)
        .find(|&at| taken & block_mask(at, size) == 0)
}

impl Lines {
    /// `lines` lines. A last chunk short of 16 lines (only tiny test
    /// tables have one) serves small blocks: the lines it lacks count as
    /// taken.
    pub fn new(lines: usize) -> Self {
        let chunks = lines.div_ceil(CHUNK);
        let mut l = Lines {
            grace: GRACE,
            taken: vec![0; chunks],
            fresh: 0,
            whole: Vec::new(),
            cut: [Vec::new(), Vec::new()],
            listed: vec![0; chunks],
            quarantine: VecDeque::new(),
            used: 0,
            waiting: 0,
            capacity: lines,
        };
        if lines % CHUNK != 0 {
            let last = chunks - 1;
            l.taken[last] = !block_mask(0, lines % CHUNK);
            l.list_room(last);
        }
        l
    }

    /// Chunks that can be handed out whole.
    fn whole_chunks(&self) -> usize {
        self.capacity / CHUNK
    }

    /// Blocks that are reused at once, for tests that replay every write in
    /// order and have no concurrent reader.
    #[cfg(test)]
    pub fn without_grace(mut self) -> Self {
        self.grace = Duration::ZERO;
        self
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Lines handed out and not given back.
    pub fn in_use(&self) -> usize {
        self.used
    }

    /// Lines free to be handed out now (some blocks may not fit them).
    pub fn free(&mut self) -> usize {
        self.end_grace(Instant::now());
        self.capacity - self.used - self.waiting
    }

    /// The first line of a free block of `size` (1, 4 or 16) lines, or
    /// `None` when there is none.
    #[cfg(test)]
    pub fn take(&mut self, size: usize) -> Option<usize> {
        self.end_grace(Instant::now());
        self.take_ready(size)
    }

    /// A block as `take` hands out, among the blocks whose grace had ended
    /// at the last [`Lines::end_grace`]: a flush reads the clock once for all the
    /// blocks it takes, not once each (a block whose grace ends meanwhile
    /// waits for the next flush).
    pub fn take_ready(&mut self, size: usize) -> Option<usize> {
        debug_assert!([1, 4, CHUNK].contains(&size), "block of {size}");
        let line = if size == CHUNK {
            self.take_chunk()?
        } else {
            self.take_cut(size)?
        };
        self.used += size;
        Some(line)
    }

    fn take_chunk(&mut self) -> Option<usize> {
        let c = match self.whole.pop() {
            Some(c) => c as usize,
            None if self.fresh < self.whole_chunks() => {
                self.fresh += 1;
                self.fresh - 1
            }
            None => return None,
        };
        self.taken[c] = u16::MAX;
        Some(c * CHUNK)
    }

    /// A block of 1 or 4 from a chunk already cut, else from a whole one.
    fn take_cut(&mut self, size: usize) -> Option<usize> {
        let list = usize::from(size != 1);
        while let Some(c) = self.cut[list].pop() {
            let c = c as usize;
            self.listed[c] &= !(1 << list);
            let taken = self.taken[c];
            // A chunk listed when it had room may have none left, or have
            // become whole again (then it is on `whole`).
            if taken == 0 {
                continue;
            }
            if let Some(at) = free_block(taken, size) {
                self.taken[c] |= block_mask(at, size);
                self.list_room(c);
                return Some(c * CHUNK + at);
            }
        }
        let line = self.take_chunk()?;
        let c = line / CHUNK;
        self.taken[c] = block_mask(0, size);
        self.list_room(c);
        Some(line)
    }

    /// Lists chunk `c` for the block sizes it has room for.
    fn list_room(&mut self, c: usize) {
        let taken = self.taken[c];
        for (list, size) in [(0, 1), (1, 4)] {
            if free_block(taken, size).is_some() && self.listed[c] & (1 << list) == 0 {
                self.listed[c] |= 1 << list;
                self.cut[list].push(c as u32);
            }
        }
    }

    /// Gives back the block of `size` lines at `line`; it is reused after
    /// the grace period.
    #[cfg(test)]
    pub fn release(&mut self, line: usize, size: usize) {
        self.release_at(line, size, Instant::now());
    }

    /// Gives back the block of `size` lines at `line`, which nothing points
    /// to since before `now`: it is reused after the grace period from
    /// then.
    pub fn release_at(&mut self, line: usize, size: usize, now: Instant) {
        self.used -= size;
        self.waiting += size;
        self.quarantine.push_back((now, line as u32, size as u8));
    }

    /// Makes the blocks whose grace period had ended by `now` free.
    pub fn end_grace(&mut self, now: Instant) {
        while let Some(&(freed, line, size)) = self.quarantine.front() {
            if now.saturating_duration_since(freed) < self.grace {
                break;
            }
            self.quarantine.pop_front();
            let (c, at, size) = (line as usize / CHUNK, line as usize % CHUNK, size as usize);
            self.waiting -= size;
            self.taken[c] &= !block_mask(at, size);
            if self.taken[c] == 0 {
                self.whole.push(c as u32);
            } else {
                self.list_room(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_small_ones_share_chunks() {
        let mut l = Lines::new(64).without_grace();
        assert_eq!(l.capacity(), 64);
        let a = l.take(1).unwrap();
        let b = l.take(4).unwrap();
        let c = l.take(1).unwrap();
        assert_eq!(
            (a / CHUNK, b / CHUNK, c / CHUNK),
            (0, 0, 0),
            "one chunk cut"
        );
        assert_eq!(b % 4, 0);
        assert_ne!(a, c);
        let d = l.take(16).unwrap();
        assert_eq!(d % CHUNK, 0);
        assert_ne!(d / CHUNK, 0);
        assert_eq!(l.in_use(), 22);
        // Two whole chunks left.
        assert!(l.take(16).is_some() && l.take(16).is_some());
        assert_eq!(l.take(16), None);
        // Chunk 0 still has room for small blocks.
        assert!(l.take(4).is_some() && l.take(4).is_some());
        assert_eq!(l.take(4), None, "chunk 0's four quarters are taken");
        assert!(l.take(1).is_some());
    }

    #[test]
    fn a_short_last_chunk_serves_small_blocks() {
        let mut l = Lines::new(18).without_grace();
        assert_eq!(l.capacity(), 18);
        assert_eq!(l.take(16), Some(0));
        assert_eq!(l.take(16), None);
        assert_eq!(l.take(4), None, "two lines left");
        assert_eq!(l.take(1), Some(16));
        assert_eq!(l.take(1), Some(17));
        assert_eq!(l.take(1), None);
        l.release(16, 1);
        assert_eq!(l.take(1), Some(16));
    }

    #[test]
    fn a_chunk_given_back_whole_serves_a_large_block() {
        let mut l = Lines::new(16).without_grace();
        let blocks: Vec<usize> = (0..4).map(|_| l.take(4).unwrap()).collect();
        assert_eq!(l.take(1), None);
        for b in blocks {
            l.release(b, 4);
        }
        assert_eq!(l.in_use(), 0);
        assert_eq!(l.take(16), Some(0));
    }

    #[test]
    fn released_blocks_wait_out_the_grace_period() {
        let mut l = Lines::new(16);
        let a = l.take(16).unwrap();
        l.release(a, 16);
        assert_eq!(l.free(), 0);
        assert_eq!(l.take(1), None, "still in its grace period");
        std::thread::sleep(GRACE);
        assert_eq!(l.take(16), Some(a));
    }

    /// Random takes and releases never hand out a line twice.
    #[test]
    fn never_hands_out_a_line_twice() {
        let mut l = Lines::new(256).without_grace();
        let mut rng = fastrand::Rng::with_seed(12);
        let mut owner = vec![false; 256];
        let mut held: Vec<(usize, usize)> = Vec::new();
        for _ in 0..20_000 {
            if rng.bool() && !held.is_empty() {
                let (line, size) = held.swap_remove(rng.usize(..held.len()));
                owner[line..line + size].iter_mut().for_each(|o| *o = false);
                l.release(line, size);
            } else {
                let size = [1, 4, 16][rng.usize(..3)];
                if let Some(line) = l.take(size) {
                    assert_eq!(line % size, 0);
                    assert!(owner[line..line + size].iter().all(|o| !o), "{line}");
                    owner[line..line + size].iter_mut().for_each(|o| *o = true);
                    held.push((line, size));
                }
            }
            assert_eq!(l.in_use(), owner.iter().filter(|o| **o).count());
            assert_eq!(l.free(), 256 - l.in_use());
        }
    }
}
