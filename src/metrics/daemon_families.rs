//! The families only the control plane knows: mirror sizes, resyncs by
//! cause, failed upgrades in place by purpose, events, overruns, the last
//! check, change latency, alerts and the attached interfaces.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{counter_family, gauge_family};
use crate::alerts::{Condition, Severity};
use crate::status::{
    now_unix_ms, HandoverFor, LatencyHistogram, ResyncCause, Status, LATENCY_BUCKETS,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PurposeLabels {
    purpose: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    condition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttachLabels {
    interface: String,
    /// xdp or tc.
    hook: String,
    xdp_mode: String,
}

/// The daemon's histogram as prometheus-client encodes one.
#[derive(Debug)]
struct Latency(LatencyHistogram);

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .enumerate()
            .map(|(i, b)| (b, self.0.counts.get(i).copied().unwrap_or(0)))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.0.sum_seconds, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    r.register(name, help, ConstCounter::new(v));
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: f64) {
    r.register(name, help, ConstGauge::new(v));
}

fn per_family(r: &mut Registry, name: &str, help: &str, v4: u64, v6: u64) {
    let l = |f: &str| FamilyLabels { family: f.into() };
    gauge_family(
        r,
        name,
        help,
        [(l("ipv4"), v4 as i64), (l("ipv6"), v6 as i64)],
    );
}

fn register_mirror(r: &mut Registry, s: &Status) {
    let m = &s.mirror;
    per_family(
        r,
        "accel_mirror_routes",
        "Prefixes in the mirror",
        m.routes_v4,
        m.routes_v6,
    );
    per_family(
        r,
        "accel_mirror_neighbours",
        "Neighbour entries in the mirror",
        m.neighbours_v4,
        m.neighbours_v6,
    );
    gauge(
        r,
        "accel_mirror_nexthops",
        "Next hops in the mirror",
        m.nexthops as f64,
    );
    gauge(
        r,
        "accel_mirror_groups",
        "Multipath and nexthop-object groups in the mirror",
        m.groups as f64,
    );
}

/// Every key of `all` with its count in `counts` (0 when absent), as the
/// labels `label` makes of it: a series per key from the start.
fn every<K: Ord + Copy, L, const N: usize>(
    all: [K; N],
    counts: &std::collections::BTreeMap<K, u64>,
    label: impl Fn(K) -> L,
) -> [(L, u64); N] {
    all.map(|k| (label(k), counts.get(&k).copied().unwrap_or(0)))
}

fn register_events(r: &mut Registry, s: &Status, now_ms: u64) {
    counter_family(
        r,
        "accel_resyncs",
        "Full resyncs of the mirror with the kernel, by cause",
        every(ResyncCause::ALL, &s.resyncs, |c| CauseLabels {
            cause: c.name().into(),
        }),
    );
    counter_family(
        r,
        "accel_handover_failures",
        "Upgrades in place this instance started that failed (the binary refused, the links not pinned or the successor not started, or the successor exited before taking over), by purpose: it carries on with its binary",
        every(HandoverFor::ALL, &s.handovers_failed, |p| PurposeLabels {
            purpose: p.name().into(),
        }),
    );
    counter(
        r,
        "accel_netlink_events",
        "Netlink notifications applied to the mirror",
        s.events_applied,
    );
    counter(
        r,
        "accel_netlink_overruns",
        "Times the kernel dropped notifications for accel (receive buffer overrun)",
        s.overruns,
    );
    counter(
        r,
        "accel_event_loop_raises",
        "Times the netlink reader raised the event loop to real-time priority because a batch of notifications had waited 2 ms or more for it (a sign of contended CPUs; stays 0 without real-time priority and during resyncs and checks)",
        s.loop_raises,
    );
    gauge(
        r,
        "accel_seconds_since_resync",
        "Seconds since the last full resync (or the start)",
        s.seconds_since_resync(now_ms),
    );
    counter(
        r,
        "accel_checks",
        "Comparisons of the mirror with a fresh kernel dump (periodic and asked for)",
        s.checks,
    );
    gauge(
        r,
        "accel_drift_differences",
        "Differences the last comparison found between mirror and kernel",
        s.drift.map_or(0.0, |d| d.differences as f64),
    );
    r.register(
        "accel_change_latency_seconds",
        "Time from a netlink event's arrival in accel to its map writes",
        Latency(s.latency.clone()),
    );
}

fn register_alerts(r: &mut Registry, s: &Status, now_ms: u64) {
    gauge_family(
        r,
        "accel_alert",
        "Exceptions accel watches for: 0 clear, 1 warning, 2 critical",
        Condition::ALL.map(|c| {
            let level =
                s.alerts
                    .iter()
                    .find(|a| a.condition == c)
                    .map_or(0, |a| match a.severity {
                        Severity::Warning => 1,
                        Severity::Critical => 2,
                    });
            (
                ConditionLabels {
                    condition: c.name().into(),
                },
                level,
            )
        }),
    );
    gauge(
        r,
        "accel_status_age_seconds",
        "Seconds since the event loop last reported (it reports every second)",
        s.age(now_ms).as_secs_f64(),
    );
    gauge_family(
        r,
        "accel_interface_attached",
        "1 while accel's program is attached to the interface, else 0",
        s.interfaces.iter().map(|i| {
            let l = AttachLabels {
                interface: i.name.clone(),
                hook: i.hook.clone(),
                xdp_mode: i.xdp_mode.clone(),
            };
            (l, i64::from(i.attached))
        }),
    );
}

pub(super) fn register(r: &mut Registry, s: &Status) {
    let now = now_unix_ms();
    register_mirror(r, s);
    register_events(r, s, now);
    register_alerts(r, s, now);
}
