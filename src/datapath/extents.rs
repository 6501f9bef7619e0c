//! Extents of an array (the IPv4 ranges), handed out in power-of-two sizes
//! by a buddy allocator, and handed out again only after a grace period.
//!
//! A chunk's ranges are replaced by writing the new ones elsewhere and then
//! switching the chunk's word, so that the datapath sees the old ranges or
//! the new, never a mix; the old extent must outlive every reader that
//! may have read the old word ([`crate::slots::GRACE`], as for slots).
//! Freed buddies merge again, so that a long run of changes cannot break
//! the array into pieces too small for a large chunk.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::slots::GRACE;

/// The largest extent is 2^MAX_LOG entries: a chunk of /32s alternating
/// between two leaves has a range per address.
pub const MAX_LOG: u8 = crate::bpf::types::accel_fib4::ACCEL_FIB4_MAX_LOG.0 as u8;

#[derive(Debug, Clone)]
pub struct Extents {
    grace: Duration,
    capacity: u32,
    /// Free extents by size (log2), by first entry.
    free: Vec<BTreeSet<u32>>,
    quarantine: VecDeque<(Instant, u32, u8)>,
    in_use: u32,
}

impl Extents {
    /// Entries `0..capacity`, cut into the largest aligned power-of-two
    /// extents (so that buddies always lie inside).
    pub fn new(capacity: u32) -> Self {
        let mut e = Extents {
            grace: GRACE,
            capacity,
            free: vec![BTreeSet::new(); usize::from(MAX_LOG) + 1],
            quarantine: VecDeque::new(),
            in_use: 0,
        };
        let mut at = 0u32;
        while at < capacity {
            let align = if at == 0 {
                MAX_LOG
            } else {
                at.trailing_zeros() as u8
            };
            let fits = (capacity - at).ilog2() as u8;
            let log = align.min(fits).min(MAX_LOG);
            e.free[usize::from(log)].insert(at);
            at += 1 << log;
        }
        e
    }

    /// Extents reused at once, for tests without a concurrent reader.
    #[cfg(test)]
    pub fn without_grace(mut self) -> Self {
        self.grace = Duration::ZERO;
        self
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Entries handed out and not released (quarantined ones included).
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// The first entry of a free extent of 2^log entries, or `None` when
    /// no free extent is that large.
    pub fn take(&mut self, log: u8) -> Option<u32> {
        assert!(log <= MAX_LOG, "extent of 2^{log} entries");
        self.end_grace();
        let from = (log..=MAX_LOG).find(|&l| !self.free[usize::from(l)].is_empty())?;
        let base = self.free[usize::from(from)].pop_first()?;
        // Split: the upper halves stay free.
        for l in (log..from).rev() {
            self.free[usize::from(l)].insert(base + (1 << l));
        }
        self.in_use += 1 << log;
        Some(base)
    }

    /// Gives back the extent `take(log)` returned; reused after the grace
    /// period.
    pub fn release(&mut self, base: u32, log: u8) {
        self.quarantine.push_back((Instant::now(), base, log));
    }

    fn end_grace(&mut self) {
        while let Some(&(freed, base, log)) = self.quarantine.front() {
            if freed.elapsed() < self.grace {
                break;
            }
            self.quarantine.pop_front();
            self.in_use -= 1 << log;
            self.merge(base, log);
        }
    }

    /// Frees an extent, merged with its buddy while that is free too.
    fn merge(&mut self, mut base: u32, mut log: u8) {
        while log < MAX_LOG {
            let buddy = base ^ (1 << log);
            if !self.free[usize::from(log)].remove(&buddy) {
                break;
            }
            base = base.min(buddy);
            log += 1;
        }
        self.free[usize::from(log)].insert(base);
    }
}

/// The size class of `n` entries: the smallest log with 2^log >= n.
pub fn log_for(n: usize) -> u8 {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_powers_of_two() {
        assert_eq!(log_for(1), 0);
        assert_eq!(log_for(2), 1);
        assert_eq!(log_for(3), 2);
        assert_eq!(log_for(4), 2);
        assert_eq!(log_for(5), 3);
        assert_eq!(log_for(16384), 14);
    }

    #[test]
    fn extents_do_not_overlap_and_merge_back() {
        let mut e = Extents::new(100).without_grace();
        let mut taken = Vec::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            if taken.is_empty() || rng.bool() {
                let log = rng.u8(0..5);
                if let Some(b) = e.take(log) {
                    assert_eq!(b % (1 << log), 0, "aligned");
                    assert!(b + (1 << log) <= 100, "inside");
                    taken.push((b, log));
                }
            } else {
                let (b, log) = taken.swap_remove(rng.usize(..taken.len()));
                e.release(b, log);
            }
            let mut spans: Vec<_> = taken.iter().map(|&(b, l)| (b, b + (1 << l))).collect();
            spans.sort();
            assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "{spans:?}");
        }
        for (b, log) in taken.drain(..) {
            e.release(b, log);
        }
        e.end_grace();
        assert_eq!(e.in_use(), 0);
        // Everything merged back: the largest aligned extents are whole.
        assert_eq!(e.take(6), Some(0));
        assert_eq!(e.take(5), Some(64));
        assert_eq!(e.take(2), Some(96));
        assert_eq!(e.take(0), None);
    }

    #[test]
    fn a_released_extent_waits_out_the_grace_period() {
        let mut e = Extents::new(4);
        let b = e.take(2).unwrap();
        e.release(b, 2);
        assert_eq!(e.take(0), None, "still in its grace period");
        assert_eq!(e.in_use(), 4);
    }
}
