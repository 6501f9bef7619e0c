//! accel's figures as OpenMetrics (the text format Prometheus scrapes, and
//! node_exporter's textfile collector reads), encoded by prometheus-client
//! from one [`Sample`] read at scrape time: the datapath's per-CPU counters,
//! its lease, the fill of its bounded structures and the drops of its
//! blackhole prefixes. Reading per-CPU maps takes no lock the datapath
//! shares, so a scrape never slows forwarding.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::capacity::Figures;
use crate::datapath::maps::Maps;
use crate::datapath::DatapathError;
use crate::stats::{BlackholeDrops, IfaceStats, LeaseState};
use crate::status::Status;

mod daemon_families;

/// What one scrape reads.
pub struct Sample {
    pub lease: LeaseState,
    pub ifaces: Vec<IfaceStats>,
    pub capacity: Figures,
    /// Most drops first (see [`crate::stats::blackholes`]).
    pub blackholes: Vec<BlackholeDrops>,
    /// Source RTBH drops, by the blackhole prefix the source fell in.
    pub source_blackholes: Vec<BlackholeDrops>,
    pub nexthops: Vec<NexthopTraffic>,
}

/// What the mirror forwarded through one next hop.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NexthopTraffic {
    /// Empty for a directly connected destination.
    pub gateway: String,
    pub interface: String,
    pub packets: u64,
    pub bytes: u64,
}

/// The traffic of next hops `ids` (their labels from the datapath's own
/// next-hop table).
pub fn nexthop_traffic(maps: &Maps, ids: &[u32]) -> Vec<NexthopTraffic> {
    ids.iter()
        .filter_map(|id| {
            let nh = maps.nexthop(*id)?;
            let s = maps.nexthop_stats(*id);
            Some(NexthopTraffic {
                gateway: crate::datapath::keys::gateway_of(&nh)
                    .map_or(String::new(), |g| g.to_string()),
                interface: crate::runtime::ifname(nh.ifindex)
                    .unwrap_or_else(|| format!("ifindex {}", nh.ifindex)),
                packets: s.packets,
                bytes: s.bytes,
            })
        })
        .collect()
}

impl Sample {
    /// Reads the datapath through `maps` (per-CPU maps: no lock), with
    /// the counters of next hops `nexthop_ids`.
    pub fn read(maps: &Maps, nexthop_ids: &[u32]) -> Result<Sample, DatapathError> {
        Ok(Sample {
            lease: crate::stats::lease_state(&maps.config(), crate::runtime::monotonic_coarse_ns()),
            ifaces: crate::stats::read_all(maps)?,
            capacity: maps.read_capacity(),
            blackholes: crate::stats::blackholes(&maps.blackhole_drops()),
            source_blackholes: crate::stats::blackholes(&maps.source_blackhole_drops()),
            nexthops: nexthop_traffic(maps, nexthop_ids),
        })
    }
}

/// How many blackhole prefixes get a series of their own; the others are
/// summed under prefix="other" (bounded cardinality).
pub const DEFAULT_TOP_BLACKHOLES: usize = 20;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PacketLabels {
    interface: String,
    /// forwarded, dropped or passed (to the kernel).
    outcome: String,
    /// The datapath counter: mirror or fib for forwarded packets, why for
    /// the others.
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    interface: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InterfaceLabels {
    interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NexthopLabels {
    /// Empty for a directly connected destination.
    gateway: String,
    interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StructureLabels {
    structure: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
    /// The commit it was built from.
    commit: String,
    /// mirror or fib (unknown when the daemon did not answer).
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrefixLabels {
    prefix: String,
}

/// A counter family as the registry wants it.
fn counter_family<L>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, u64)>,
) where
    L: Clone + std::fmt::Debug + std::hash::Hash + Eq + EncodeLabelSet + Send + Sync + 'static,
{
    let family = Family::<L, Counter>::default();
    for (labels, v) in values {
        family.get_or_create(&labels).inc_by(v);
    }
    registry.register(name, help, family);
}

fn gauge_family<L>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, i64)>,
) where
    L: Clone + std::fmt::Debug + std::hash::Hash + Eq + EncodeLabelSet + Send + Sync + 'static,
{
    let family = Family::<L, Gauge>::default();
    for (labels, v) in values {
        family.get_or_create(&labels).set(v);
    }
    registry.register(name, help, family);
}

/// The outcome and reason of a datapath counter ("fwd_mirror" ->
/// forwarded / mirror).
fn outcome_reason(counter: &str) -> (&'static str, &str) {
    if let Some(r) = counter.strip_prefix("fwd_") {
        ("forwarded", r)
    } else if let Some(r) = counter.strip_prefix("drop_") {
        ("dropped", r)
    } else {
        ("passed", counter.strip_prefix("pass_").unwrap_or(counter))
    }
}

fn register_packets(r: &mut Registry, ifaces: &[IfaceStats]) {
    counter_family(
        r,
        "accel_packets",
        "Packets the datapath handled, by interface, outcome and reason",
        ifaces.iter().flat_map(|i| {
            i.counters.iter().map(|(name, v)| {
                let (outcome, reason) = outcome_reason(name);
                let labels = PacketLabels {
                    interface: i.iface.clone(),
                    outcome: outcome.into(),
                    reason: reason.into(),
                };
                (labels, *v)
            })
        }),
    );
    let iface = |i: &IfaceStats| InterfaceLabels {
        interface: i.iface.clone(),
    };
    counter_family(
        r,
        "accel_bytes",
        "Bytes of the frames the datapath handled, by ingress interface and outcome (forwarded: as sent)",
        ifaces.iter().flat_map(|i| {
            let label = |outcome: &str| OutcomeLabels {
                interface: i.iface.clone(),
                outcome: outcome.into(),
            };
            [
                (label("forwarded"), i.forwarded_bytes),
                (label("passed"), i.passed_bytes),
                (label("dropped"), i.dropped_bytes),
            ]
        }),
    );
    counter_family(
        r,
        "accel_no_lease_packets",
        "Packets that arrived while the mirror's lease had lapsed (bpf_fib_lookup decided)",
        ifaces.iter().map(|i| (iface(i), i.no_lease)),
    );
}

fn register_capacity(r: &mut Registry, f: &Figures) {
    let label = |s: crate::capacity::Structure| StructureLabels {
        structure: s.name().into(),
    };
    gauge_family(
        r,
        "accel_capacity_entries",
        "Entries a bounded datapath structure can hold",
        f.iter().map(|(s, u)| (label(s), u.capacity as i64)),
    );
    gauge_family(
        r,
        "accel_used_entries",
        "Entries in use in a bounded datapath structure",
        f.iter().map(|(s, u)| (label(s), u.used as i64)),
    );
    gauge_family(
        r,
        "accel_degraded_entries",
        "Routes or entries a structure had no room for (left to bpf_fib_lookup)",
        f.iter().map(|(s, u)| (label(s), u.degraded as i64)),
    );
}

fn register_nexthops(r: &mut Registry, nhs: &[NexthopTraffic]) {
    let label = |n: &NexthopTraffic| NexthopLabels {
        gateway: n.gateway.clone(),
        interface: n.interface.clone(),
    };
    counter_family(
        r,
        "accel_nexthop_packets",
        "Packets the mirror forwarded through a next hop (ECMP balance; bpf_fib_lookup's are not here)",
        nhs.iter().map(|n| (label(n), n.packets)),
    );
    counter_family(
        r,
        "accel_nexthop_bytes",
        "Bytes the mirror forwarded through a next hop",
        nhs.iter().map(|n| (label(n), n.bytes)),
    );
}

/// The `top` prefixes with most drops, the rest summed as "other".
fn register_blackholes(
    r: &mut Registry,
    name: &str,
    help: &str,
    drops: &[BlackholeDrops],
    top: usize,
) {
    let mut series: Vec<(String, u64)> = Vec::new();
    let mut other = 0;
    for d in drops {
        if series.len() < top && d.prefix != "other" {
            series.push((d.prefix.clone(), d.packets));
        } else {
            other += d.packets;
        }
    }
    if other > 0 {
        series.push(("other".into(), other));
    }
    counter_family(
        r,
        name,
        help,
        series
            .into_iter()
            .map(|(prefix, v)| (PrefixLabels { prefix }, v)),
    );
}

/// The two exposition formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (`text/plain`), which promtool and
    /// node_exporter's textfile collector read.
    Prometheus,
}

/// The sample in `format`.
pub fn encode_as(
    s: &Sample,
    status: Option<&Status>,
    top_blackholes: usize,
    format: Format,
) -> String {
    let om = encode_sample(s, status, top_blackholes);
    match format {
        Format::OpenMetrics => om,
        Format::Prometheus => prometheus_text(&om),
    }
}

/// OpenMetrics text as the Prometheus text format: the two differ, for what
/// accel exposes, only in that a counter family's HELP and TYPE name the
/// samples (`x_total`) rather than the family (`x`), and in the `# EOF`
/// terminator, which the older format does not have.
fn prometheus_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|t| t.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The sample in the OpenMetrics text format (ending in `# EOF`).
/// `status`: the daemon's own figures, when it could be asked.
pub fn encode_sample(s: &Sample, status: Option<&Status>, top_blackholes: usize) -> String {
    let mut r = Registry::default();
    if let Some(st) = status {
        daemon_families::register(&mut r, st);
    }
    register_packets(&mut r, &s.ifaces);
    let live = Gauge::<i64>::default();
    live.set(i64::from(s.lease == LeaseState::Live));
    r.register(
        "accel_lease_live",
        "1 while the datapath trusts the mirror (its lease is live), else 0",
        live,
    );
    let active = Gauge::<i64>::default();
    active.set(i64::from(s.lease != LeaseState::Inactive));
    r.register(
        "accel_datapath_active",
        "1 while a control plane keeps the datapath forwarding, else 0 (the kernel forwards)",
        active,
    );
    register_capacity(&mut r, &s.capacity);
    register_nexthops(&mut r, &s.nexthops);
    register_blackholes(
        &mut r,
        "accel_blackhole_dropped_packets",
        "Packets dropped in XDP by blackhole routes, by prefix (the top ones by drops)",
        &s.blackholes,
        top_blackholes,
    );
    register_blackholes(
        &mut r,
        "accel_source_blackhole_dropped_packets",
        "Packets dropped in XDP because their source's route is a blackhole (source RTBH, rp_filter on), by prefix",
        &s.source_blackholes,
        top_blackholes,
    );
    // A gauge at 1, the usual build_info form (Prometheus' text format,
    // which promtool checks, has no info type).
    gauge_family(
        &mut r,
        "accel_build_info",
        "The running accel's version, commit and mode (XDP mode per interface: accel_interface_attached)",
        [(
            VersionLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                commit: env!("ACCEL_COMMIT").into(),
                mode: status.map_or("unknown", |s| s.mode.as_str()).into(),
            },
            1,
        )],
    );
    let mut out = String::new();
    encode(&mut out, &r).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::{Structure, Usage};

    fn sample() -> Sample {
        let mut counters = std::collections::BTreeMap::new();
        counters.insert("fwd_mirror", 1000);
        counters.insert("fwd_fib", 7);
        counters.insert("drop_blackhole", 3);
        counters.insert("pass_ttl", 2);
        let mut capacity = Figures::default();
        capacity.set(Structure::Nexthops, Usage::new(4096, 12));
        Sample {
            lease: LeaseState::Live,
            ifaces: vec![IfaceStats {
                iface: "eth0".into(),
                ifindex: 2,
                forwarded: 1007,
                forwarded_bytes: 64_000,
                passed_bytes: 200,
                dropped_bytes: 300,
                passed: 2,
                dropped: 3,
                no_lease: 5,
                hook: None,
                handoff: None,
                counters,
            }],
            capacity,
            source_blackholes: vec![],
            nexthops: vec![NexthopTraffic {
                gateway: "10.0.0.1".into(),
                interface: "eth1".into(),
                packets: 900,
                bytes: 57_600,
            }],
            blackholes: (0..4)
                .map(|i| BlackholeDrops {
                    prefix: format!("192.0.2.{i}/32"),
                    packets: 10 - i,
                    bytes: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn families_follow_the_naming_conventions() {
        let text = encode_sample(&sample(), None, 2);
        for line in [
            "# TYPE accel_packets counter",
            r#"accel_packets_total{interface="eth0",outcome="forwarded",reason="mirror"} 1000"#,
            r#"accel_packets_total{interface="eth0",outcome="forwarded",reason="fib"} 7"#,
            r#"accel_packets_total{interface="eth0",outcome="dropped",reason="blackhole"} 3"#,
            r#"accel_packets_total{interface="eth0",outcome="passed",reason="ttl"} 2"#,
            r#"accel_bytes_total{interface="eth0",outcome="forwarded"} 64000"#,
            r#"accel_bytes_total{interface="eth0",outcome="passed"} 200"#,
            r#"accel_bytes_total{interface="eth0",outcome="dropped"} 300"#,
            r#"accel_no_lease_packets_total{interface="eth0"} 5"#,
            "accel_lease_live 1",
            "accel_datapath_active 1",
            r#"accel_nexthop_packets_total{gateway="10.0.0.1",interface="eth1"} 900"#,
            r#"accel_nexthop_bytes_total{gateway="10.0.0.1",interface="eth1"} 57600"#,
            r#"accel_capacity_entries{structure="nexthops"} 4096"#,
            r#"accel_used_entries{structure="nexthops"} 12"#,
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.contains("accel_build_info{version="));
        assert!(text.contains("# TYPE accel_build_info gauge"));
    }

    #[test]
    fn blackhole_series_are_bounded() {
        let text = encode_sample(&sample(), None, 2);
        // A family's series come in no particular order.
        let mut series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("accel_blackhole_dropped_packets_total"))
            .collect();
        series.sort_unstable();
        assert_eq!(
            series,
            vec![
                r#"accel_blackhole_dropped_packets_total{prefix="192.0.2.0/32"} 10"#,
                r#"accel_blackhole_dropped_packets_total{prefix="192.0.2.1/32"} 9"#,
                r#"accel_blackhole_dropped_packets_total{prefix="other"} 15"#,
            ]
        );
    }

    #[test]
    fn the_prometheus_text_names_counter_samples_in_help_and_type() {
        let text = encode_as(&sample(), None, 2, Format::Prometheus);
        assert!(text
            .lines()
            .any(|l| l == "# TYPE accel_packets_total counter"));
        assert!(text
            .lines()
            .any(|l| l.starts_with("# HELP accel_packets_total Packets")));
        assert!(text.lines().any(|l| l == "# TYPE accel_lease_live gauge"));
        assert!(!text.contains("# EOF"));
        assert!(!text.contains("# TYPE accel_packets counter"));
    }

    #[test]
    fn a_lapsed_lease_reads_zero() {
        let mut s = sample();
        s.lease = LeaseState::Lapsed;
        let text = encode_sample(&s, None, 2);
        assert!(text.lines().any(|l| l == "accel_lease_live 0"));
        assert!(text.lines().any(|l| l == "accel_datapath_active 1"));
    }

    #[test]
    fn the_control_plane_counters_from_the_status() {
        use crate::status::HandoverFor;
        let status = Status {
            events_applied: 12,
            overruns: 1,
            loop_raises: 3,
            handovers_failed: [(HandoverFor::Growth, 2)].into(),
            ..Default::default()
        };
        let text = encode_sample(&sample(), Some(&status), 2);
        for line in [
            "accel_netlink_events_total 12",
            "accel_netlink_overruns_total 1",
            "# TYPE accel_event_loop_raises counter",
            "accel_event_loop_raises_total 3",
            // Every purpose has its series, at 0 until one fails.
            r#"accel_handover_failures_total{purpose="growth"} 2"#,
            r#"accel_handover_failures_total{purpose="upgrade"} 0"#,
            r#"accel_handover_failures_total{purpose="take_back"} 0"#,
            r#"accel_handover_failures_total{purpose="refresh"} 0"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
