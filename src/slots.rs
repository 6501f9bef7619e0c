//! Numbered slots (next-hop ids, IPv4 groups, IPv6 trie nodes) that the
//! datapath reads by number, handed out again only after a grace period.
//!
//! The datapath may have read a slot's number just before the entry that
//! named it changed; it must not then find another owner's data there. XDP
//! runs to completion in microseconds, so a grace period far longer than
//! that makes reuse safe without tracking readers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const GRACE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct GraceSlots {
    grace: Duration,
    next_fresh: usize,
    limit: usize,
    free: Vec<usize>,
    quarantine: VecDeque<(Instant, usize)>,
}

impl GraceSlots {
    /// Slots `first..limit`.
    pub fn new(first: usize, limit: usize) -> Self {
        GraceSlots {
            grace: GRACE,
            next_fresh: first,
            limit,
            free: Vec::new(),
            quarantine: VecDeque::new(),
        }
    }

    /// A slot no reader can still be looking at, or `None` when all are in
    /// use or still in their grace period.
    pub fn take(&mut self) -> Option<usize> {
        self.end_grace();
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        if self.next_fresh < self.limit {
            self.next_fresh += 1;
            return Some(self.next_fresh - 1);
        }
        None
    }

    /// How many slots [`GraceSlots::take`] would hand out now.
    pub fn available(&mut self) -> usize {
        self.end_grace();
        self.free.len() + (self.limit - self.next_fresh)
    }

    /// Frees the slots whose grace period is over.
    fn end_grace(&mut self) {
        while let Some((freed, slot)) = self.quarantine.front().copied() {
            if freed.elapsed() < self.grace {
                break;
            }
            self.quarantine.pop_front();
            self.free.push(slot);
        }
    }

    /// Slots that are reused at once, for tests that replay every write in
    /// order and have no concurrent reader.
    #[cfg(test)]
    pub fn without_grace(mut self) -> Self {
        self.grace = Duration::ZERO;
        self
    }

    /// Gives a slot back; it is reused after [`GRACE`].
    pub fn release(&mut self, slot: usize) {
        self.quarantine.push_back((Instant::now(), slot));
    }

    /// Slots handed out and not released.
    pub fn in_use(&self, first: usize) -> usize {
        self.next_fresh - first - self.free.len() - self.quarantine.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_slots_wait_out_the_grace_period() {
        let mut s = GraceSlots::new(1, 3);
        assert_eq!(s.take(), Some(1));
        assert_eq!(s.take(), Some(2));
        assert_eq!(s.in_use(1), 2);
        s.release(1);
        assert_eq!(s.in_use(1), 1);
        assert_eq!(s.take(), None, "slot 1 is still in its grace period");
        assert_eq!(s.available(), 0);
        std::thread::sleep(GRACE);
        assert_eq!(s.available(), 1);
        assert_eq!(s.take(), Some(1));
        assert_eq!(s.available(), 0);
    }
}
