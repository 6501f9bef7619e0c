//! What a running `accel run` says about itself: the figures only the
//! control plane knows (mirror sizes, resyncs and why, events applied,
//! overruns, the drift its checks found, how long changes take to reach the
//! maps) and the exceptions it watches for. The event loop publishes one
//! [`Status`] a second; scrapes, `accel health` and `accel stats` read the
//! latest one without waiting for the loop.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::alerts::Active;

/// What an upgrade in place is for: a failed one counts against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverFor {
    /// SIGUSR2 or `accel upgrade`: the operator's.
    Upgrade,
    /// Maps grown for a structure short of room.
    Growth,
    /// An interface deleted and created again, attached anew.
    TakeBack,
    /// Starting afresh after a step of interned next hops.
    Refresh,
}

impl HandoverFor {
    pub const ALL: [HandoverFor; 4] = [
        HandoverFor::Upgrade,
        HandoverFor::Growth,
        HandoverFor::TakeBack,
        HandoverFor::Refresh,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HandoverFor::Upgrade => "upgrade",
            HandoverFor::Growth => "growth",
            HandoverFor::TakeBack => "take_back",
            HandoverFor::Refresh => "refresh",
        }
    }
}

/// Why a resync ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncCause {
    /// Building the mirror at start.
    Start,
    /// The kernel dropped notifications (receive buffer overrun).
    Overrun,
    /// A link going down or away (or changing carrier under a multipath
    /// route or ignore_routes_with_linkdown), a device's last IPv4 address
    /// or a nexthop object in use removed, or a removal whose effect one
    /// event cannot tell.
    Ambiguous,
    /// A check found the mirror different from the kernel.
    Drift,
    /// `accel sync`.
    Request,
}

impl ResyncCause {
    pub const ALL: [ResyncCause; 5] = [
        ResyncCause::Start,
        ResyncCause::Overrun,
        ResyncCause::Ambiguous,
        ResyncCause::Drift,
        ResyncCause::Request,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ResyncCause::Start => "start",
            ResyncCause::Overrun => "overrun",
            ResyncCause::Ambiguous => "ambiguous_change",
            ResyncCause::Drift => "drift",
            ResyncCause::Request => "request",
        }
    }

    /// For the log line of a resync.
    pub fn describe(self) -> &'static str {
        match self {
            ResyncCause::Start => "start",
            ResyncCause::Overrun => "netlink events were lost (receive buffer overrun)",
            ResyncCause::Ambiguous => {
                "a link gone down or away, a device's last IPv4 address or a nexthop object \
                 in use removed, or a route removed that may have shared its key with another"
            }
            ResyncCause::Drift => "a check found the mirror different from the kernel",
            ResyncCause::Request => "accel sync",
        }
    }
}

/// Upper bounds of the change-latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Time from a netlink event's arrival in accel to its map writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Per bucket of [`LATENCY_BUCKETS`], not cumulative; one more for
    /// longer ones.
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl LatencyHistogram {
    /// Records `n` events that took `took` each.
    pub fn observe(&mut self, took: Duration, n: u64) {
        if self.counts.len() != LATENCY_BUCKETS.len() + 1 {
            self.counts = vec![0; LATENCY_BUCKETS.len() + 1];
        }
        let s = took.as_secs_f64();
        let i = LATENCY_BUCKETS.partition_point(|b| *b < s);
        self.counts[i] += n;
        self.sum_seconds += s * n as f64;
        self.count += n;
    }

    /// (upper bound, cumulative count) per bucket, +Inf last.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        bounds
            .enumerate()
            .map(|(i, b)| {
                total += self.counts.get(i).copied().unwrap_or(0);
                (b, total)
            })
            .collect()
    }
}

/// How big the mirror is, per family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorCounts {
    pub routes_v4: u64,
    pub routes_v6: u64,
    pub nexthops: u64,
    pub groups: u64,
    pub neighbours_v4: u64,
    pub neighbours_v6: u64,
}

/// What the last comparison with the kernel found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub differences: u64,
    pub checked_unix_ms: u64,
}

/// An interface and how accel is attached to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    /// xdp or tc.
    #[serde(default)]
    pub hook: String,
    /// native or generic; none for TC.
    pub xdp_mode: String,
    /// Whether accel's program is still the one attached.
    pub attached: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    /// mirror or fib.
    pub mode: String,
    pub interfaces: Vec<InterfaceStatus>,
    /// When the event loop published this (a stalled loop stops publishing).
    pub published_unix_ms: u64,
    pub started_unix_ms: u64,
    pub mirror: MirrorCounts,
    pub lease_live: bool,
    pub events_applied: u64,
    pub overruns: u64,
    /// Times a batch of notifications waited 2 ms or more for the event
    /// loop, which the netlink reader then raised to real-time priority.
    #[serde(default)]
    pub loop_raises: u64,
    pub resyncs: BTreeMap<ResyncCause, u64>,
    /// Upgrades in place this instance started that failed (refused, or
    /// the successor exited before taking over), by purpose.
    #[serde(default)]
    pub handovers_failed: BTreeMap<HandoverFor, u64>,
    pub last_resync_unix_ms: Option<u64>,
    pub checks: u64,
    /// The last check's result, periodic or asked for.
    pub drift: Option<Drift>,
    pub latency: LatencyHistogram,
    /// The next hops in use, by id (at most [`MAX_NEXTHOP_SERIES`]), whose
    /// counters the metrics read.
    pub nexthop_ids: Vec<u32>,
    /// Exceptions in progress.
    pub alerts: Vec<Active>,
}

/// Next hops with metric series of their own, at most (a router has a
/// few gateways per interface; this bounds a pathological table).
pub const MAX_NEXTHOP_SERIES: usize = 1024;

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn now_unix_ms() -> u64 {
    unix_ms(SystemTime::now())
}

impl Status {
    /// How old this status is at `now_ms`.
    pub fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.published_unix_ms))
    }

    /// Seconds from the last resync (or the start) to `now_ms`.
    pub fn seconds_since_resync(&self, now_ms: u64) -> f64 {
        let at = self.last_resync_unix_ms.unwrap_or(self.started_unix_ms);
        now_ms.saturating_sub(at) as f64 / 1000.0
    }

    pub fn resyncs_total(&self) -> u64 {
        self.resyncs.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_bucket() {
        let mut h = LatencyHistogram::default();
        h.observe(Duration::from_micros(50), 3);
        h.observe(Duration::from_millis(1), 1); // on a bound: that bucket
        h.observe(Duration::from_secs(2), 1);
        let c = h.cumulative();
        assert_eq!(c[0], (0.0001, 3));
        assert_eq!(c[3], (0.001, 4));
        assert_eq!(c[11], (1.0, 4));
        assert_eq!(c[12], (f64::INFINITY, 5));
        assert_eq!(h.count, 5);
        assert!((h.sum_seconds - (0.00015 + 0.001 + 2.0)).abs() < 1e-9);
    }

    #[test]
    fn status_survives_json() {
        let mut s = Status {
            version: "x".into(),
            ..Default::default()
        };
        s.resyncs.insert(ResyncCause::Drift, 2);
        s.latency.observe(Duration::from_millis(3), 1);
        let back: Status = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.resyncs_total(), 2);
    }
}
