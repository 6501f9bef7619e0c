//! Keeping the kernel's neighbour state machine running for the gateways
//! XDP forwards to.
//!
//! When the kernel forwards a packet it calls `neigh_event_send` on the
//! gateway's entry: a STALE entry goes to DELAY, then PROBE, and is
//! confirmed by a unicast probe (back to REACHABLE) or fails (FAILED, and
//! the next packet resolves it afresh by broadcast). XDP skips all that:
//! without help a gateway used only by accel decays to STALE and stays
//! there, a changed gateway MAC is never noticed, and the STALE entry is
//! eventually garbage-collected.
//!
//! So accel does what the transmit path would: an RTM_NEWNEIGH with
//! NTF_USE (and without NLM_F_CREATE, so that no entry is ever created)
//! makes the kernel run `neigh_event_send` on the existing entry.
//!
//! Which entries: only the gateways of next hops that mirrored routes use,
//! on accel's interfaces, and only in STALE. `neigh_event_send` does
//! nothing for REACHABLE (or DELAY/PROBE, already probing; PERMANENT/NOARP
//! never change), so nudging those would only cost netlink messages; a
//! REACHABLE entry that expires becomes STALE (the kernel tells accel) and
//! is nudged on the next tick, just as the next forwarded packet would
//! have done. INCOMPLETE/FAILED entries are not usable, so XDP passes those
//! packets to the kernel, which resolves on its own.
//!
//! Directly connected destinations (routes without a gateway) are left
//! alone: their neighbour entries are per destination host, created by the
//! kernel for the packets XDP passed to it, and accel does not know which
//! of them still receive traffic. Nudging them all would keep every host
//! that ever received a packet probed forever.
//!
//! Rate: each entry at most once per [`INTERVAL`] (the kernel sends no
//! event for STALE -> DELAY, so the mirror keeps seeing STALE until the
//! probe's answer), and at most [`MAX_PER_TICK`] per tick overall.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::model::NeighbourState;

pub const INTERVAL: Duration = Duration::from_secs(3);
pub const MAX_PER_TICK: usize = 256;

type Key = (u32, IpAddr);

#[derive(Default)]
pub struct Nudger {
    last: HashMap<Key, Instant>,
}

impl Nudger {
    /// The entries to nudge now, out of `candidates` (gateway neighbours
    /// with their NUD state); records them as nudged at `now`.
    pub fn select(
        &mut self,
        now: Instant,
        candidates: impl Iterator<Item = (Key, NeighbourState)>,
        max: usize,
    ) -> Vec<Key> {
        self.last
            .retain(|_, t| now.saturating_duration_since(*t) < INTERVAL);
        let mut out = Vec::new();
        for (key, state) in candidates {
            if out.len() >= max {
                break;
            }
            if state != NeighbourState::Stale || self.last.contains_key(&key) {
                continue;
            }
            self.last.insert(key, now);
            out.push(key);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u32, a: &str) -> Key {
        (i, a.parse().unwrap())
    }

    #[test]
    fn only_stale_entries_are_nudged() {
        let mut n = Nudger::default();
        let now = Instant::now();
        let c = vec![
            (k(2, "10.0.2.2"), NeighbourState::Stale),
            (k(2, "10.0.2.3"), NeighbourState::Reachable),
            (k(2, "10.0.2.4"), NeighbourState::Delay),
            (k(2, "10.0.2.5"), NeighbourState::Probe),
            (k(2, "10.0.2.6"), NeighbourState::Permanent),
            (k(2, "10.0.2.7"), NeighbourState::Noarp),
            (k(2, "10.0.2.8"), NeighbourState::Failed),
            (k(2, "10.0.2.9"), NeighbourState::Incomplete),
            (k(2, "fe80::1"), NeighbourState::Stale),
        ];
        assert_eq!(
            n.select(now, c.into_iter(), 100),
            vec![k(2, "10.0.2.2"), k(2, "fe80::1")]
        );
    }

    #[test]
    fn each_entry_waits_an_interval() {
        let mut n = Nudger::default();
        let t0 = Instant::now();
        let c = || vec![(k(2, "10.0.2.2"), NeighbourState::Stale)].into_iter();
        assert_eq!(n.select(t0, c(), 10).len(), 1);
        // Still STALE a tick later (DELAY is not announced): not again yet.
        assert!(n.select(t0 + Duration::from_secs(1), c(), 10).is_empty());
        assert!(n
            .select(t0 + INTERVAL - Duration::from_millis(1), c(), 10)
            .is_empty());
        assert_eq!(n.select(t0 + INTERVAL, c(), 10).len(), 1);
    }

    #[test]
    fn work_per_tick_is_bounded_and_the_rest_follow() {
        let mut n = Nudger::default();
        let t0 = Instant::now();
        let c = || {
            (0..10u32).map(|i| {
                (
                    (2, IpAddr::from([10, 0, 2, i as u8])),
                    NeighbourState::Stale,
                )
            })
        };
        let first = n.select(t0, c(), 4);
        let second = n.select(t0 + Duration::from_secs(1), c(), 4);
        let third = n.select(t0 + Duration::from_secs(2), c(), 4);
        assert_eq!((first.len(), second.len(), third.len()), (4, 4, 2));
        let mut all: Vec<_> = first.into_iter().chain(second).chain(third).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10);
    }
}
