//! Exceptions accel watches for in itself, once a second: each condition
//! starts when its figures cross a threshold and ends once they have stayed
//! clear for [`CLEAR_AFTER`], with one WARN line at each end (with the
//! figures) and a metric while it lasts. `accel health` reports the ones in
//! progress.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::warn;
use serde::{Deserialize, Serialize};

pub mod health;
mod thresholds;
pub use thresholds::{ThresholdError, Thresholds, NAMES as THRESHOLD_NAMES};

use crate::capacity::Figures;
use crate::status::now_unix_ms;

/// A condition ends after its figures stayed clear this long, so that one
/// hovering around its threshold logs one start and one end, not a line a
/// second.
pub const CLEAR_AFTER: Duration = Duration::from_secs(10);
/// Rates are judged over this window...
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// ... shares and storms over this one.
const SLOW_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Too much transit traffic goes to bpf_fib_lookup or the kernel.
    NotAccelerating,
    /// A check found the mirror different from the kernel.
    Drift,
    /// Resyncs follow each other.
    ResyncStorm,
    /// The kernel dropped netlink notifications.
    Overruns,
    /// A bounded structure is nearly full, or full.
    Capacity,
    /// Many packets wait for unresolved neighbours.
    UnresolvedNeighbours,
    /// Many packets hit blackhole routes.
    BlackholeDrops,
    /// The datapath does not trust the mirror.
    LeaseLapsed,
    /// accel's program is no longer attached to an interface.
    Detached,
}

impl Condition {
    pub const ALL: [Condition; 9] = [
        Condition::NotAccelerating,
        Condition::Drift,
        Condition::ResyncStorm,
        Condition::Overruns,
        Condition::Capacity,
        Condition::UnresolvedNeighbours,
        Condition::BlackholeDrops,
        Condition::LeaseLapsed,
        Condition::Detached,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Condition::NotAccelerating => "not_accelerating",
            Condition::Drift => "drift",
            Condition::ResyncStorm => "resync_storm",
            Condition::Overruns => "overruns",
            Condition::Capacity => "capacity",
            Condition::UnresolvedNeighbours => "unresolved_neighbours",
            Condition::BlackholeDrops => "blackhole_drops",
            Condition::LeaseLapsed => "lease_lapsed",
            Condition::Detached => "detached",
        }
    }
}

/// A condition in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    pub condition: Condition,
    pub severity: Severity,
    pub since_unix_ms: u64,
    /// What the figures were when it started (or last got worse).
    pub detail: String,
}

/// Datapath counters summed over accel's interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets that crossed the router, or should have: forwarded, or
    /// passed for a reason the mirror could have served.
    pub transit: u64,
    /// Of those, the ones the mirror did not forward.
    pub not_accelerated: u64,
    pub no_neigh: u64,
    pub blackhole: u64,
}

/// What one look at the daemon found.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub now: Instant,
    pub traffic: Traffic,
    pub lease_live: bool,
    pub resyncs: u64,
    pub overruns: u64,
    pub capacity: &'a Figures,
    /// Differences the last check found.
    pub drift: u64,
    /// Interfaces accel's program is no longer attached to.
    pub detached: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    traffic: Traffic,
    resyncs: u64,
    overruns: u64,
}

#[derive(Debug)]
struct State {
    active: Active,
    /// Last time the condition's figures were over the threshold.
    last_seen: Instant,
}

/// The conditions and the recent samples their rates come from.
#[derive(Debug, Default)]
pub struct Watch {
    pub thresholds: Thresholds,
    samples: VecDeque<Sample>,
    states: Vec<State>,
    lease_lapsed_since: Option<Instant>,
}

/// Per-second rate of a counter between two samples.
fn rate(new: u64, old: u64, over: Duration) -> f64 {
    new.saturating_sub(old) as f64 / over.as_secs_f64().max(1e-3)
}

impl Watch {
    pub fn new(thresholds: Thresholds) -> Watch {
        Watch {
            thresholds,
            ..Default::default()
        }
    }

    /// The oldest sample within `window` of `now` (the newest is `now`'s).
    fn since(&self, now: Instant, window: Duration) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|s| now.duration_since(s.at) <= window)
            .filter(|s| s.at < now)
    }

    /// Judges one observation; logs conditions that start or end.
    pub fn observe(&mut self, o: &Observation<'_>) {
        self.samples.push_back(Sample {
            at: o.now,
            traffic: o.traffic,
            resyncs: o.resyncs,
            overruns: o.overruns,
        });
        while self
            .samples
            .front()
            .is_some_and(|s| o.now.duration_since(s.at) > SLOW_WINDOW + Duration::from_secs(2))
        {
            self.samples.pop_front();
        }
        let found = self.judge(o);
        self.update(o.now, found);
    }

    /// The conditions over their thresholds now, with their figures.
    fn judge(&mut self, o: &Observation<'_>) -> Vec<(Condition, Severity, String)> {
        let t = &self.thresholds;
        let mut found = Vec::new();
        if let Some(old) = self.since(o.now, SLOW_WINDOW) {
            let over = o.now.duration_since(old.at);
            let transit = rate(o.traffic.transit, old.traffic.transit, over);
            let slow = rate(o.traffic.not_accelerated, old.traffic.not_accelerated, over);
            if transit >= t.min_transit_pps && slow / transit > t.not_accelerated_share {
                found.push((
                    Condition::NotAccelerating,
                    Severity::Warning,
                    format!(
                        "{:.0}% of {transit:.0} transit packets/s not forwarded from the mirror \
                         (threshold {:.0}%)",
                        100.0 * slow / transit,
                        100.0 * t.not_accelerated_share
                    ),
                ));
            }
            let resyncs = o.resyncs - old.resyncs;
            if resyncs >= t.resyncs_per_minute {
                found.push((
                    Condition::ResyncStorm,
                    Severity::Warning,
                    format!(
                        "{resyncs} resyncs in {over:.0?} (threshold {}/min)",
                        t.resyncs_per_minute
                    ),
                ));
            }
            if o.overruns > old.overruns {
                found.push((
                    Condition::Overruns,
                    Severity::Warning,
                    format!(
                        "{} receive-buffer overruns in {over:.0?}",
                        o.overruns - old.overruns
                    ),
                ));
            }
        }
        if let Some(old) = self.since(o.now, RATE_WINDOW) {
            let over = o.now.duration_since(old.at);
            let no_neigh = rate(o.traffic.no_neigh, old.traffic.no_neigh, over);
            if no_neigh > t.no_neigh_pps {
                found.push((
                    Condition::UnresolvedNeighbours,
                    Severity::Warning,
                    format!(
                        "{no_neigh:.0} packets/s passed for unresolved neighbours (threshold {})",
                        t.no_neigh_pps
                    ),
                ));
            }
            let bh = rate(o.traffic.blackhole, old.traffic.blackhole, over);
            if bh > t.blackhole_pps {
                found.push((
                    Condition::BlackholeDrops,
                    Severity::Warning,
                    format!(
                        "{bh:.0} packets/s dropped by blackhole routes (threshold {})",
                        t.blackhole_pps
                    ),
                ));
            }
        }
        self.judge_state(o, &mut found);
        found
    }

    /// Conditions of the state rather than of rates.
    fn judge_state(&mut self, o: &Observation<'_>, found: &mut Vec<(Condition, Severity, String)>) {
        let t = &self.thresholds;
        if o.drift > 0 {
            found.push((
                Condition::Drift,
                Severity::Warning,
                format!(
                    "the last check found {} differences from the kernel (a resync corrects them)",
                    o.drift
                ),
            ));
        }
        if let Some(c) = capacity_detail(o.capacity, t.capacity_share) {
            found.push(c);
        }
        if o.lease_live {
            self.lease_lapsed_since = None;
        } else {
            let since = *self.lease_lapsed_since.get_or_insert(o.now);
            let lapsed = o.now.duration_since(since);
            if lapsed >= t.lease_grace {
                found.push((
                    Condition::LeaseLapsed,
                    Severity::Critical,
                    format!("the lease has been lapsed for {lapsed:.0?}: bpf_fib_lookup decides every packet"),
                ));
            }
        }
        if !o.detached.is_empty() {
            found.push((
                Condition::Detached,
                Severity::Critical,
                format!(
                    "accel's program is no longer attached to {}",
                    o.detached.join(", ")
                ),
            ));
        }
    }

    fn update(&mut self, now: Instant, found: Vec<(Condition, Severity, String)>) {
        for (condition, severity, detail) in found {
            match self
                .states
                .iter_mut()
                .find(|s| s.active.condition == condition)
            {
                Some(s) => {
                    s.last_seen = now;
                    if severity > s.active.severity {
                        warn!(
                            "alert {}: now {}: {detail}",
                            condition.name(),
                            severity.name()
                        );
                        s.active.severity = severity;
                        s.active.detail = detail;
                    }
                }
                None => {
                    warn!(
                        "alert {} started ({}): {detail}",
                        condition.name(),
                        severity.name()
                    );
                    self.states.push(State {
                        active: Active {
                            condition,
                            severity,
                            since_unix_ms: now_unix_ms(),
                            detail,
                        },
                        last_seen: now,
                    });
                }
            }
        }
        self.states.retain(|s| {
            let over = now.duration_since(s.last_seen) < CLEAR_AFTER;
            if !over {
                let lasted = (now_unix_ms().saturating_sub(s.active.since_unix_ms)) / 1000;
                warn!(
                    "alert {} ended after {lasted} s (it was: {})",
                    s.active.condition.name(),
                    s.active.detail
                );
            }
            over
        });
    }

    /// The conditions in progress, most severe first.
    pub fn active(&self) -> Vec<Active> {
        let mut v: Vec<Active> = self.states.iter().map(|s| s.active.clone()).collect();
        v.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.condition.cmp(&b.condition))
        });
        v
    }
}

/// The fullest structure at or over `share`; critical once routes are left
/// out for lack of room.
fn capacity_detail(f: &Figures, share: f64) -> Option<(Condition, Severity, String)> {
    if let Some((s, u)) = f.iter().find(|(_, u)| u.is_degraded()) {
        let detail = format!("{} full: {}", s.what(), s.effect(&u));
        return Some((Condition::Capacity, Severity::Critical, detail));
    }
    let fill = |u: &crate::capacity::Usage| u.used as f64 / u.capacity as f64;
    let (s, u) = f
        .iter()
        .filter(|(_, u)| u.capacity > 0)
        .max_by(|a, b| fill(&a.1).total_cmp(&fill(&b.1)))?;
    (fill(&u) >= share).then(|| {
        let detail = format!(
            "{} {:.0}% full ({} of {}; threshold {:.0}%)",
            s.what(),
            100.0 * fill(&u),
            u.used,
            u.capacity,
            100.0 * share
        );
        (Condition::Capacity, Severity::Warning, detail)
    })
}

#[cfg(test)]
mod tests;
