//! What the daemon counts about itself, the exceptions it watches for, and
//! the [`Status`] it publishes once a second for scrapes and `accel
//! health`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use tokio::sync::watch;

use super::jobs::Purpose;
use super::{Daemon, DaemonError, Running};
use crate::alerts::{Observation, Thresholds, Watch};
use crate::control::StatusFeed;
use crate::status::{
    now_unix_ms, Drift, HandoverFor, InterfaceStatus, LatencyHistogram, MirrorCounts, ResyncCause,
    Status,
};

/// How soon after a resync that corrected drift a check confirms it.
const RECHECK_AFTER_DRIFT: Duration = Duration::from_secs(10);

pub(super) struct Report {
    pub events_applied: u64,
    pub overruns: u64,
    resyncs: BTreeMap<ResyncCause, u64>,
    pub handovers_failed: BTreeMap<HandoverFor, u64>,
    last_resync_ms: Option<u64>,
    checks: u64,
    drift: Option<Drift>,
    pub latency: LatencyHistogram,
    watch: Watch,
    started_ms: u64,
    feed: watch::Sender<Arc<Status>>,
    /// Periodic checks: how often, and when the next one is due.
    check_every: Option<Duration>,
    next_check: Option<Instant>,
}

impl Report {
    pub fn new(thresholds: Thresholds, check_every: Option<Duration>) -> (Report, StatusFeed) {
        let started_ms = now_unix_ms();
        let first = Status {
            published_unix_ms: started_ms,
            started_unix_ms: started_ms,
            ..Default::default()
        };
        let (feed, rx) = watch::channel(Arc::new(first));
        let report = Report {
            events_applied: 0,
            overruns: 0,
            resyncs: BTreeMap::new(),
            handovers_failed: BTreeMap::new(),
            last_resync_ms: None,
            checks: 0,
            drift: None,
            latency: LatencyHistogram::default(),
            watch: Watch::new(thresholds),
            started_ms,
            feed,
            check_every,
            next_check: check_every.map(|e| Instant::now() + e),
        };
        (report, rx)
    }

    pub fn resync_done(&mut self, cause: ResyncCause) {
        *self.resyncs.entry(cause).or_default() += 1;
        self.last_resync_ms = Some(now_unix_ms());
        if cause == ResyncCause::Drift && self.check_every.is_some() {
            self.next_check = Some(Instant::now() + RECHECK_AFTER_DRIFT);
        }
    }

    pub fn resyncs_total(&self) -> u64 {
        self.resyncs.values().sum()
    }

    /// A check's result; true when it found drift.
    pub fn check_done(&mut self, differences: u64) -> bool {
        self.checks += 1;
        self.drift = Some(Drift {
            differences,
            checked_unix_ms: now_unix_ms(),
        });
        differences > 0
    }

    /// Whether a periodic check is due now (and when the next one is).
    fn check_due(&mut self, now: Instant) -> bool {
        match (self.check_every, self.next_check) {
            (Some(every), Some(at)) if now >= at => {
                self.next_check = Some(now + every);
                true
            }
            _ => false,
        }
    }
}

impl Daemon {
    /// Records the latency of the events taken since the last call.
    pub(super) fn note_latencies(&mut self) {
        let now = Instant::now();
        for (at, n) in self.events.take_arrivals() {
            self.report.latency.observe(now.duration_since(at), n);
        }
    }

    fn mirror_counts(&self) -> MirrorCounts {
        let (r4, r6) = self.mirror.route_count_by_family();
        let (n4, n6) = self.mirror.neighbour_count_by_family();
        MirrorCounts {
            routes_v4: r4 as u64,
            routes_v6: r6 as u64,
            nexthops: self.mirror.nexthop_count() as u64,
            groups: self.mirror.group_count() as u64,
            neighbours_v4: n4 as u64,
            neighbours_v6: n6 as u64,
        }
    }

    /// Starts a periodic check when one is due and nothing else runs.
    pub(super) fn periodic_check(&mut self) -> Result<(), DaemonError> {
        if !self.jobs.busy() && self.report.check_due(Instant::now()) {
            self.start_job(Purpose::Check, None)?;
        }
        Ok(())
    }

    /// A check found drift: resync, the lease revoked meanwhile.
    pub(super) fn correct_drift(&mut self, differences: u64) -> Result<(), DaemonError> {
        if self.report.check_done(differences) {
            warn!("check: the mirror differs from the kernel in {differences} places: full resync");
            let purpose = Purpose::Resync {
                cause: ResyncCause::Drift,
                stale: true,
            };
            self.start_job(purpose, None)?;
        }
        Ok(())
    }
}

impl Running {
    /// One entry per interface, under the name its device has now (as the
    /// packet counters, read by ifindex, and node_exporter's `device`
    /// label name it), or the name given at start once the device is gone;
    /// the TC program beside an XDP one counts towards its interface's
    /// `attached`, as the last probe answered (see
    /// [`super::attach_probe`]).
    fn interfaces(&self) -> Vec<InterfaceStatus> {
        let name_now = |a: &crate::datapath::attach::Attachment| {
            let now = (!a.is_released())
                .then(|| self.d.mirror.link(a.ifindex))
                .flatten()
                .filter(|l| !l.name.is_empty());
            now.map_or_else(|| a.name.clone(), |l| l.name.clone())
        };
        let current: Vec<(&crate::datapath::attach::Attachment, bool)> = self
            .attached
            .iter()
            .zip(self.attach_probe.live().iter().copied())
            .collect();
        let own: Vec<_> = current.iter().filter(|(a, _)| !a.beside).collect();
        let names = distinct_names(own.iter().map(|(a, _)| (a.name.as_str(), name_now(a))));
        own.iter()
            .zip(names)
            .map(|((a, live), name)| InterfaceStatus {
                name,
                hook: a.hook.kind().into(),
                xdp_mode: a.hook.xdp_mode().into(),
                attached: *live
                    && current
                        .iter()
                        .all(|(b, l)| !b.beside || b.ifindex != a.ifindex || *l),
            })
            .collect()
    }

    /// Judges the conditions and publishes the status (once a second).
    pub(super) fn publish_status(&mut self) -> Result<(), DaemonError> {
        self.attach_probe.tick();
        let interfaces = self.interfaces();
        let d = &mut self.d;
        let ifaces = crate::stats::read_counters(&d.maps)?;
        let lease_live = d.lease_live()?;
        let detached = interfaces
            .iter()
            .filter(|i| !i.attached)
            .map(|i| i.name.clone())
            .collect();
        let mirror = d.mirror_counts();
        let mut nexthop_ids = d.mirror.nexthop_ids();
        nexthop_ids.truncate(crate::status::MAX_NEXTHOP_SERIES);
        let r = &mut d.report;
        r.watch.observe(&Observation {
            now: Instant::now(),
            traffic: crate::stats::traffic(&ifaces, d.mirror.fib_only()),
            lease_live,
            resyncs: r.resyncs_total(),
            overruns: r.overruns,
            capacity: d.capacity.figures(),
            drift: r.drift.map_or(0, |x| x.differences),
            detached,
        });
        let status = Status {
            version: crate::VERSION.into(),
            mode: if d.mirror.fib_only() { "fib" } else { "mirror" }.into(),
            interfaces,
            published_unix_ms: now_unix_ms(),
            started_unix_ms: r.started_ms,
            mirror,
            lease_live,
            events_applied: r.events_applied,
            overruns: r.overruns,
            loop_raises: crate::realtime::loop_raises(),
            resyncs: r.resyncs.clone(),
            handovers_failed: r.handovers_failed.clone(),
            last_resync_unix_ms: r.last_resync_ms,
            checks: r.checks,
            drift: r.drift,
            latency: r.latency.clone(),
            nexthop_ids,
            alerts: r.watch.active(),
        };
        r.feed.send_replace(Arc::new(status));
        Ok(())
    }
}

/// The status's names of the interfaces, from (name given at start, name
/// of its device now): the name now, unless another interface has that
/// name too (one renamed to the start name of one gone, say), where the
/// renamed one keeps its start name: one series per interface in the
/// metrics, and a health line that names each once.
fn distinct_names<'a>(names: impl Iterator<Item = (&'a str, String)>) -> Vec<String> {
    let names: Vec<(&str, String)> = names.collect();
    let taken = |n: &str| names.iter().filter(|(_, now)| now == n).count() > 1;
    names
        .iter()
        .map(|(start, now)| {
            if taken(now) && now != start {
                start.to_string()
            } else {
                now.clone()
            }
        })
        .collect()
}

/// Logged once at start: what is watched.
pub(super) fn log_watching(check_every: Option<Duration>) {
    match check_every {
        Some(e) => info!("the mirror is compared with the kernel every {e:.0?} (--check-every)"),
        None => info!("periodic checks are off (--check-every 0)"),
    }
}

#[cfg(test)]
mod tests {
    use super::distinct_names;

    #[test]
    fn each_interface_has_a_name_of_its_own_in_the_status() {
        let names =
            |v: &[(&'static str, &str)]| distinct_names(v.iter().map(|(s, n)| (*s, n.to_string())));
        // Renamed: the name now.
        assert_eq!(names(&[("eth0", "wan"), ("eth1", "eth1")]), ["wan", "eth1"]);
        // eth1 gone (its start name), eth0 renamed eth1: eth0 keeps its own.
        assert_eq!(
            names(&[("eth0", "eth1"), ("eth1", "eth1")]),
            ["eth0", "eth1"]
        );
    }
}
