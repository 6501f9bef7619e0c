//! When the datapath may trust the mirror: the two deadlines of
//! `struct accel_config` (see accel.h) and the rule for renewing them.
//!
//! The mirror lease is renewed only by a control plane that has applied
//! everything the kernel has told it by some moment, and only for
//! [`MIRROR_LEASE`] past that moment: no overrun pending, no resync under
//! way, and either no event waiting in a socket or a queue (the moment is
//! now) or, in a burst whose queues are never empty, every event queued
//! before a moment the reader found its socket empty applied: the latest
//! such moment whose batch the loop has used up (see [`Exact`]). The
//! first grant after a resync needs the former. The moment the control
//! plane learns that its mirror is stale (lost events, the start of a
//! resync), the lease is revoked. A paused or starved daemon stops renewing,
//! and the datapath stops using the mirror within [`MIRROR_LEASE`].
//! Without the lease the datapath forwards through `bpf_fib_lookup`, so
//! neither a resync nor a pause makes forwarding fall to kernel speed.
//!
//! The alive deadline is renewed by any running control plane, fresh or
//! not; once it passes (a daemon stopped for good while its program stays
//! attached, as after a failed handover), every packet goes to the kernel.
//!
//! Deadlines are in the datapath's clock (see [`crate::datapath::clock`]):
//! the time is read before looking at the queues, so a lease never reaches
//! further than [`MIRROR_LEASE`] past a moment at which the mirror was
//! known to be exact.

use std::time::{Duration, Instant};

/// How long the mirror may be used after the last moment the control plane
/// vouched for it: the longest a paused daemon's mirror can be used.
pub const MIRROR_LEASE: Duration = Duration::from_millis(500);
/// How long the datapath forwards at all (through bpf_fib_lookup) after
/// the last sign of a running control plane.
pub const ALIVE_LEASE: Duration = Duration::from_secs(30);
/// How often the control plane renews.
pub const RENEW_EVERY: Duration = Duration::from_millis(100);

/// What the control plane can vouch for at a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exact {
    /// The mirror is exact now: nothing waits anywhere.
    Now,
    /// The mirror was exact at this moment (the datapath's clock): every
    /// event the kernel had queued by then is applied, and more came since
    /// (a burst of route changes, read and applied as it comes).
    AsOf(u64),
    /// Events wait, and no moment is known as of which all were applied.
    Unknown,
}

/// Deadlines to write into the datapath's config, in its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub lease_ns: u64,
    pub alive_ns: u64,
}

impl Deadlines {
    /// Neither the mirror nor the datapath may be used: the kernel alone.
    pub const NONE: Deadlines = Deadlines {
        lease_ns: 0,
        alive_ns: 0,
    };
}

fn after(now_ns: u64, d: Duration) -> u64 {
    now_ns.saturating_add(d.as_nanos() as u64)
}

/// The control plane's side of the lease.
#[derive(Debug)]
pub struct Lease {
    /// The mirror is known to be stale until a resync completes.
    stale: bool,
    /// The mirror lease last written.
    lease_ns: u64,
    last_renewal: Option<Instant>,
    /// A resync settled and no renewal has granted the lease since.
    awaiting_grant: bool,
    /// The last renewal was the first grant after a settle.
    first_grant: bool,
    /// Revocations so far: a resync settles the lease only if none came
    /// after it started (events lost during its dump or sweep may be
    /// missing from what it installed).
    revocations: u64,
}

impl Default for Lease {
    fn default() -> Self {
        Lease::new()
    }
}

impl Lease {
    /// A lease not granted yet: the mirror is stale until the first resync.
    pub fn new() -> Lease {
        Lease {
            stale: true,
            lease_ns: 0,
            last_renewal: None,
            awaiting_grant: false,
            first_grant: false,
            revocations: 0,
        }
    }

    /// The mirror is known to be stale (events were lost, a resync starts):
    /// the deadlines that revoke the lease at once.
    pub fn revoke(&mut self, now_ns: u64) -> Deadlines {
        self.stale = true;
        self.lease_ns = 0;
        self.revocations += 1;
        Deadlines {
            lease_ns: 0,
            alive_ns: after(now_ns, ALIVE_LEASE),
        }
    }

    /// How many revocations there have been: what a resync that starts
    /// now passes to [`Lease::settle`] when it is done.
    pub fn revocations(&self) -> u64 {
        self.revocations
    }

    /// A resync that started after revocation number `since` made the
    /// mirror exact again; the next renewal, due at once, may grant the
    /// lease if nothing is waiting by then. A revocation since then (lost
    /// events, a link change) keeps it stale for the resync that follows:
    /// false.
    pub fn settle(&mut self, since: u64) -> bool {
        if self.revocations != since {
            return false;
        }
        self.stale = false;
        self.last_renewal = None;
        self.awaiting_grant = true;
        true
    }

    /// Whether the last renewal granted the lease for the first time since
    /// a resync settled (the mirror has just gone live); asks once.
    pub fn take_first_grant(&mut self) -> bool {
        std::mem::take(&mut self.first_grant)
    }

    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Whether a renewal is due at `at`.
    pub fn due(&self, at: Instant) -> bool {
        self.last_renewal
            .is_none_or(|t| at.duration_since(t) >= RENEW_EVERY)
    }

    /// The deadlines of a renewal. `now_ns` must have been read before
    /// `exact` was established: the lease then covers no moment at which
    /// an event could have been waiting unseen for longer than the lease.
    pub fn renew(&mut self, at: Instant, now_ns: u64, exact: Exact) -> Deadlines {
        self.last_renewal = Some(at);
        match exact {
            _ if self.stale => {}
            Exact::Now => {
                self.lease_ns = after(now_ns, MIRROR_LEASE);
                self.first_grant = std::mem::take(&mut self.awaiting_grant);
            }
            // A moment before now extends a lease granted since the last
            // settle, never grants one: the first grant vouches for a
            // moment after the resync, and every later moment that
            // extends it is after that grant (else it extends nothing).
            Exact::AsOf(moment_ns) if !self.awaiting_grant => {
                self.lease_ns = self.lease_ns.max(after(moment_ns, MIRROR_LEASE));
            }
            Exact::AsOf(_) | Exact::Unknown => {}
        }
        Deadlines {
            lease_ns: self.lease_ns,
            alive_ns: after(now_ns, ALIVE_LEASE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_000_000_000_000;

    #[test]
    fn no_lease_before_the_first_resync() {
        let mut l = Lease::new();
        let d = l.renew(Instant::now(), T0, Exact::Now);
        assert_eq!(d.lease_ns, 0);
        assert_eq!(d.alive_ns, T0 + ALIVE_LEASE.as_nanos() as u64);
        assert!(l.settle(0));
        let d = l.renew(Instant::now(), T0, Exact::Now);
        assert_eq!(d.lease_ns, T0 + MIRROR_LEASE.as_nanos() as u64);
        assert!(l.take_first_grant(), "the mirror went live");
        assert!(!l.take_first_grant(), "said once");
        l.renew(Instant::now(), T0 + 1, Exact::Now);
        assert!(!l.take_first_grant(), "later renewals are not news");
    }

    #[test]
    fn a_control_plane_with_events_waiting_does_not_renew() {
        let mut l = Lease::new();
        assert!(l.settle(0));
        let granted = l.renew(Instant::now(), T0, Exact::Now).lease_ns;
        // Later, events are waiting: the lease keeps its old deadline and
        // lapses by itself unless they are applied.
        let d = l.renew(Instant::now(), T0 + 200_000_000, Exact::Unknown);
        assert_eq!(d.lease_ns, granted);
        assert!(d.alive_ns > granted, "still alive");
        let d = l.renew(Instant::now(), T0 + 300_000_000, Exact::Now);
        assert_eq!(
            d.lease_ns,
            T0 + 300_000_000 + MIRROR_LEASE.as_nanos() as u64
        );
    }

    /// In a burst the queues are never empty: a moment as of which every
    /// event was applied keeps the lease for the lease's length after it.
    #[test]
    fn a_burst_extends_the_lease_from_the_moment_it_vouches_for() {
        const MS: u64 = 1_000_000;
        let lease = MIRROR_LEASE.as_nanos() as u64;
        let mut l = Lease::new();
        assert!(l.settle(0));
        assert_eq!(l.renew(Instant::now(), T0, Exact::Now).lease_ns, T0 + lease);
        assert!(l.take_first_grant());
        let d = l.renew(Instant::now(), T0 + 300 * MS, Exact::AsOf(T0 + 298 * MS));
        assert_eq!(d.lease_ns, T0 + 298 * MS + lease);
        // An older moment never shortens it.
        let d = l.renew(Instant::now(), T0 + 400 * MS, Exact::AsOf(T0 + 100 * MS));
        assert_eq!(d.lease_ns, T0 + 298 * MS + lease);
        // Revoked, then settled: only a moment with nothing waiting grants
        // the lease again, a burst's moment does not.
        l.revoke(T0 + 500 * MS);
        let d = l.renew(Instant::now(), T0 + 501 * MS, Exact::AsOf(T0 + 500 * MS));
        assert_eq!(d.lease_ns, 0, "stale");
        assert!(l.settle(l.revocations()));
        let d = l.renew(Instant::now(), T0 + 600 * MS, Exact::AsOf(T0 + 599 * MS));
        assert_eq!(d.lease_ns, 0, "no first grant from a burst");
        assert!(!l.take_first_grant());
        let d = l.renew(Instant::now(), T0 + 700 * MS, Exact::Now);
        assert_eq!(d.lease_ns, T0 + 700 * MS + lease);
        assert!(l.take_first_grant());
    }

    #[test]
    fn a_known_stale_mirror_revokes_at_once_and_stays_revoked() {
        let mut l = Lease::new();
        assert!(l.settle(0));
        l.renew(Instant::now(), T0, Exact::Now);
        let d = l.revoke(T0 + 1);
        assert_eq!(d.lease_ns, 0);
        assert!(d.alive_ns > T0);
        // Drained queues do not bring it back: only a completed resync does.
        assert_eq!(l.renew(Instant::now(), T0 + 2, Exact::Now).lease_ns, 0);
        assert!(l.settle(l.revocations()));
        assert!(l.due(Instant::now()), "due at once after a resync");
        assert!(l.renew(Instant::now(), T0 + 3, Exact::Now).lease_ns > T0);
    }

    /// Events lost while a resync runs may be missing from what it
    /// installs: its end must not grant the lease; the next resync's does.
    #[test]
    fn a_resync_overtaken_by_a_revocation_does_not_settle() {
        let mut l = Lease::new();
        let first = l.revocations();
        l.revoke(T0);
        let second = l.revocations();
        assert!(!l.settle(first), "revoked after the first resync started");
        assert_eq!(l.renew(Instant::now(), T0 + 1, Exact::Now).lease_ns, 0);
        assert!(l.settle(second));
        assert!(l.renew(Instant::now(), T0 + 2, Exact::Now).lease_ns > T0);
    }

    #[test]
    fn renewals_are_paced() {
        let mut l = Lease::new();
        let t = Instant::now();
        assert!(l.due(t));
        l.renew(t, T0, Exact::Now);
        assert!(!l.due(t + RENEW_EVERY / 2));
        assert!(l.due(t + RENEW_EVERY));
    }

    #[test]
    fn the_lease_is_never_longer_than_a_second() {
        assert!(MIRROR_LEASE <= Duration::from_secs(1));
        assert!(RENEW_EVERY < MIRROR_LEASE / 2);
    }
}
