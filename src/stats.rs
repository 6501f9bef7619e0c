//! Names of the datapath's counters and their rendering.

use crate::bpf::types::{accel_stat as S, accel_stats};
use crate::capacity::Figures;
use crate::datapath::attach::{self, Hook};
use crate::datapath::handoff::{self, Handoff};

/// Every counter of the shared enum with the name operators see.
pub const COUNTERS: [(S, &str); S::ACCEL_STAT_MAX.0 as usize] = [
    (S::ACCEL_STAT_FWD_MIRROR, "fwd_mirror"),
    (S::ACCEL_STAT_FWD_FIB, "fwd_fib"),
    (S::ACCEL_STAT_DROP_BLACKHOLE, "drop_blackhole"),
    (S::ACCEL_STAT_PASS_NON_IP, "pass_non_ip"),
    (S::ACCEL_STAT_PASS_MALFORMED, "pass_malformed"),
    (S::ACCEL_STAT_PASS_NOT_FOR_US, "pass_not_for_us"),
    (S::ACCEL_STAT_PASS_FWD_DISABLED, "pass_fwd_disabled"),
    (S::ACCEL_STAT_PASS_TTL, "pass_ttl"),
    (S::ACCEL_STAT_PASS_OPTIONS, "pass_options"),
    (S::ACCEL_STAT_PASS_SPECIAL_ADDR, "pass_special_addr"),
    (S::ACCEL_STAT_PASS_LOCAL, "pass_local"),
    (S::ACCEL_STAT_PASS_SRC_CHECK, "pass_src_check"),
    (S::ACCEL_STAT_PASS_ICMP_ERROR, "pass_icmp_error"),
    (S::ACCEL_STAT_PASS_NO_ROUTE, "pass_no_route"),
    (S::ACCEL_STAT_PASS_NO_NEIGH, "pass_no_neigh"),
    (S::ACCEL_STAT_PASS_MTU, "pass_mtu"),
    (S::ACCEL_STAT_PASS_EGRESS, "pass_egress"),
    (S::ACCEL_STAT_PASS_FIB_OTHER, "pass_fib_other"),
    (S::ACCEL_STAT_PASS_INACTIVE, "pass_inactive"),
    (S::ACCEL_STAT_PASS_MP_HASH, "pass_mp_hash"),
    (S::ACCEL_STAT_DROP_RPFILTER, "drop_rpfilter"),
    (S::ACCEL_STAT_DROP_HDR_ERRORS, "drop_hdr_errors"),
    (S::ACCEL_STAT_DROP_TRUNCATED, "drop_truncated"),
    (S::ACCEL_STAT_DROP_MARTIAN_SRC, "drop_martian_src"),
    (S::ACCEL_STAT_FWD_NEIGH, "fwd_neigh"),
    (S::ACCEL_STAT_HANDOFF_TC, "handoff_tc"),
    (S::ACCEL_STAT_PASS_NDISC, "pass_ndisc"),
    (S::ACCEL_STAT_PASS_XFRM, "pass_xfrm"),
    (S::ACCEL_STAT_PASS_TC_FILTERS, "pass_tc_filters"),
    (S::ACCEL_STAT_PASS_NETFILTER, "pass_netfilter"),
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct IfaceStats {
    pub iface: String,
    pub ifindex: u32,
    pub forwarded: u64,
    pub forwarded_bytes: u64,
    pub passed: u64,
    pub passed_bytes: u64,
    pub dropped: u64,
    pub dropped_bytes: u64,
    /// Packets that arrived while the mirror's lease had lapsed (counted in
    /// the outcomes too): bpf_fib_lookup decided for them.
    pub no_lease: u64,
    /// Where accel's program runs on it ("native XDP", "TC ingress
    /// (tcx)"), None when it is not attached; filled by [`read_all`].
    pub hook: Option<String>,
    /// Under XDP: whether the frames it hands to the TC program beside it
    /// are marked; filled by [`read_all`].
    pub handoff: Option<Handoff>,
    pub counters: std::collections::BTreeMap<&'static str, u64>,
}

/// Whether the datapath trusts the mirror now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// The mirror decides.
    Live,
    /// A resync, lost events or a paused daemon: bpf_fib_lookup decides.
    Lapsed,
    /// No control plane: every packet goes to the kernel.
    Inactive,
}

/// The lease as of `now_ns` (the datapath's clock).
pub fn lease_state(c: &crate::bpf::types::accel_config, now_ns: u64) -> LeaseState {
    if now_ns >= c.alive_until_ns {
        LeaseState::Inactive
    } else if now_ns >= c.lease_until_ns {
        LeaseState::Lapsed
    } else {
        LeaseState::Live
    }
}

impl std::fmt::Display for LeaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeaseState::Live => "live (the mirror decides)",
            LeaseState::Lapsed => {
                "lapsed (resync, lost events or a paused daemon): bpf_fib_lookup decides"
            }
            LeaseState::Inactive => "inactive (no live control plane): the kernel decides",
        })
    }
}

pub fn summarise(iface: String, ifindex: u32, s: &accel_stats) -> IfaceStats {
    let mut out = IfaceStats {
        iface,
        ifindex,
        forwarded: 0,
        forwarded_bytes: s.fwd_bytes,
        passed: 0,
        passed_bytes: s.pass_bytes,
        dropped: 0,
        dropped_bytes: s.drop_bytes,
        no_lease: s.no_lease,
        hook: None,
        handoff: None,
        counters: Default::default(),
    };
    for (id, name) in COUNTERS {
        let v = s.packets[id.0 as usize];
        out.counters.insert(name, v);
        if name.starts_with("fwd_") {
            out.forwarded += v;
        } else if name.starts_with("handoff_") {
            // Counted again by the TC program's outcome.
        } else if name.starts_with("drop_") {
            out.dropped += v;
        } else {
            out.passed += v;
        }
    }
    out
}

/// The counters of every interface the datapath runs on, in slot order,
/// with the hook each runs on now.
pub fn read_all(
    maps: &crate::datapath::maps::Maps,
) -> Result<Vec<IfaceStats>, crate::datapath::DatapathError> {
    let mut all = read_counters(maps)?;
    for s in &mut all {
        let hook = attach::current_hook(s.ifindex);
        s.hook = hook.map(|h| h.to_string());
        if let Some(Hook::Xdp(_)) = hook {
            s.handoff = attach::attached_prog_id(s.ifindex).and_then(handoff::of_program);
        }
    }
    Ok(all)
}

/// The counters of every interface, in slot order, without `hook`: asking
/// which program an interface runs waits for the RTNL lock (see
/// `daemon::attach_probe`), which the daemon's event loop must not do.
pub fn read_counters(
    maps: &crate::datapath::maps::Maps,
) -> Result<Vec<IfaceStats>, crate::datapath::DatapathError> {
    let mut ifaces = maps.ifaces();
    ifaces.sort_by_key(|(_, i)| i.slot);
    let mut all = Vec::new();
    for (ifindex, i) in ifaces {
        let name = crate::runtime::ifname(ifindex).unwrap_or_else(|| format!("ifindex {ifindex}"));
        all.push(summarise(name, ifindex, &maps.stats(i.slot)?));
    }
    Ok(all)
}

/// The datapath's counters summed over interfaces, as the alerts judge
/// them. `fib_only`: bpf_fib_lookup is the design, not a fallback.
pub fn traffic(all: &[IfaceStats], fib_only: bool) -> crate::alerts::Traffic {
    let mut t = crate::alerts::Traffic::default();
    for i in all {
        let c = |name: &str| i.counters.get(name).copied().unwrap_or(0);
        // Transit packets the mirror could have forwarded; the others
        // (local, TTL, no route, ...) are the kernel's whatever accel does.
        let transit = c("fwd_mirror")
            + c("fwd_fib")
            + c("fwd_neigh")
            + c("pass_egress")
            + c("pass_fib_other")
            + c("pass_mp_hash")
            + c("pass_no_neigh");
        // fwd_neigh: the TC program's, through the kernel's neighbour
        // layer but past its IP stack.
        let fast = c("fwd_mirror") + c("fwd_neigh") + if fib_only { c("fwd_fib") } else { 0 };
        t.transit += transit;
        t.not_accelerated += transit - fast;
        t.no_neigh += c("pass_no_neigh");
        t.blackhole += c("drop_blackhole");
    }
    t
}

pub fn render(lease: LeaseState, all: &[IfaceStats]) -> String {
    let mut s = format!("mirror lease: {lease}\n");
    for i in all {
        let handoff = i.handoff.map(|h| format!(", {h}")).unwrap_or_default();
        s += &format!(
            "{} (ifindex {}, {}{handoff}): forwarded {} ({} bytes), passed to kernel {}, dropped {}\n",
            i.iface,
            i.ifindex,
            i.hook.as_deref().unwrap_or("not attached"),
            i.forwarded,
            i.forwarded_bytes,
            i.passed,
            i.dropped
        );
        for (name, v) in &i.counters {
            if *v != 0 {
                s += &format!("    {name:<20} {v}\n");
            }
        }
        if i.no_lease != 0 {
            s += &format!("    (without a lease:    {})\n", i.no_lease);
        }
    }
    if all.iter().any(|i| i.handoff == Some(Handoff::Unmarked)) {
        s += "frames to TC unmarked: this kernel refuses XDP metadata, so the TC program \
              beside XDP decides again every frame XDP passes\n";
    }
    s
}

/// `accel stats --capacity`: the table, or JSON.
pub fn capacity_report(f: &Figures, json: bool) -> String {
    if json {
        serde_json::to_string_pretty(f).expect("figures are plain numbers") + "\n"
    } else {
        f.render()
    }
}

/// One line per exhausted structure, under the counters of `accel stats`.
pub fn capacity_warnings(f: &Figures) -> String {
    f.iter()
        .filter(|(_, u)| u.is_degraded())
        .map(|(s, u)| format!("capacity: {} exhausted: {}\n", s.name(), s.effect(&u)))
        .collect()
}

/// Drops of one blackhole prefix.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BlackholeDrops {
    /// The prefix, or "other" for those sharing the overflow slot.
    pub prefix: String,
    pub packets: u64,
    pub bytes: u64,
}

/// The prefixes that dropped anything, most drops first.
pub fn blackholes(
    slots: &[(
        Option<crate::model::Prefix>,
        crate::bpf::types::accel_blackhole,
    )],
) -> Vec<BlackholeDrops> {
    let mut v: Vec<BlackholeDrops> = slots
        .iter()
        .filter(|(_, c)| c.packets != 0)
        .map(|(p, c)| BlackholeDrops {
            prefix: p.map_or_else(|| "other".to_string(), |p| p.to_string()),
            packets: c.packets,
            bytes: c.bytes,
        })
        .collect();
    v.sort_by(|a, b| {
        b.packets
            .cmp(&a.packets)
            .then_with(|| a.prefix.cmp(&b.prefix))
    });
    v
}

pub fn render_blackholes(v: &[BlackholeDrops]) -> String {
    if v.is_empty() {
        return "no packets dropped by blackhole routes\n".into();
    }
    let mut s = format!(
        "{:<44} {:>14} {:>16}\n",
        "blackhole prefix", "packets", "bytes"
    );
    for d in v {
        s += &format!("{:<44} {:>14} {:>16}\n", d.prefix, d.packets, d.bytes);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_named_once_in_enum_order() {
        for (i, (id, _)) in COUNTERS.iter().enumerate() {
            assert_eq!(id.0 as usize, i);
        }
        let mut names: Vec<_> = COUNTERS.iter().map(|c| c.1).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COUNTERS.len());
    }

    #[test]
    fn totals_split_by_outcome() {
        let mut s = accel_stats::default();
        s.packets[S::ACCEL_STAT_FWD_MIRROR.0 as usize] = 5;
        s.packets[S::ACCEL_STAT_FWD_FIB.0 as usize] = 2;
        s.packets[S::ACCEL_STAT_PASS_TTL.0 as usize] = 1;
        s.packets[S::ACCEL_STAT_DROP_BLACKHOLE.0 as usize] = 3;
        let sum = summarise("eth0".into(), 2, &s);
        assert_eq!((sum.forwarded, sum.passed, sum.dropped), (7, 1, 3));
        assert!(render(LeaseState::Live, &[sum]).contains("pass_ttl"));
    }

    #[test]
    fn an_unmarked_handoff_is_shown_and_explained() {
        let mut sum = summarise("eth0".into(), 2, &accel_stats::default());
        sum.hook = Some("native XDP".into());
        sum.handoff = Some(Handoff::Marked);
        let marked = render(LeaseState::Live, std::slice::from_ref(&sum));
        assert!(marked.contains("eth0 (ifindex 2, native XDP, frames to TC marked)"));
        assert!(!marked.contains("refuses"));
        sum.handoff = Some(Handoff::Unmarked);
        let unmarked = render(LeaseState::Live, &[sum]);
        assert!(unmarked.contains("native XDP, frames to TC unmarked)"));
        assert!(unmarked.contains("refuses XDP metadata"));
    }
}
