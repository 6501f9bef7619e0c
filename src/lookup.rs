//! `accel lookup ADDR`: what the datapath would do for a destination, read
//! from the maps of the running instance, beside the kernel's own answer.

use std::net::IpAddr;

use crate::bpf::types::{
    accel_cfg_flags as Cfg, accel_fib_mark, accel_if_flags as If, accel_route_type as Rt,
};
use crate::datapath::maps::Maps;
use crate::error_chain;
use crate::model::{Route, RouteKind};
use crate::netlink::route_get;
use crate::runtime::{ifname, monotonic_coarse_ns};
use crate::stats::{lease_state, LeaseState};

fn special(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) => {
            let first = a.octets()[0];
            (first == 0 || first == 127 || first >= 224)
                .then_some("zeronet, loopback, multicast, class E or broadcast address")
        }
        IpAddr::V6(a) => {
            let seg = a.segments();
            (a.is_multicast()
                || a.is_loopback()
                || a.is_unspecified()
                || (seg[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some())
            .then_some("multicast, link-local, loopback, unspecified or v4-mapped address")
        }
    }
}

fn name(ifindex: u32) -> String {
    ifname(ifindex).unwrap_or_else(|| format!("ifindex {ifindex}"))
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The datapath's answer in words.
pub fn explain(maps: &Maps, addr: IpAddr) -> Vec<String> {
    let mut out = Vec::new();
    let cfg = maps.config();
    match lease_state(&cfg, monotonic_coarse_ns()) {
        LeaseState::Live => {}
        LeaseState::Lapsed => {
            out.push(
                "mirror lease lapsed (a resync, lost events or a paused daemon): bpf_fib_lookup \
                 decides every packet now; the mirror below is not consulted"
                    .into(),
            );
        }
        LeaseState::Inactive => {
            out.push(
                "datapath inactive (no live control plane): every packet goes to the kernel".into(),
            );
            return out;
        }
    }
    if let Some(why) = special(addr) {
        out.push(format!("passed to the kernel: {why}"));
        return out;
    }
    if cfg.flags & Cfg::ACCEL_CFG_NETFILTER.0 != 0 {
        out.push(
            "passed to the kernel: netfilter rules on the forwarding path appeared while \
             accel runs (the journal names them), which only the kernel runs"
                .into(),
        );
        return out;
    }
    if cfg.flags & Cfg::ACCEL_CFG_XFRM.0 != 0 {
        out.push(
            "passed to the kernel: IPsec (XFRM) policies apply to forwarded packets \
             (`ip xfrm policy`), which only the kernel can check and apply"
                .into(),
        );
        return out;
    }
    let mut filtered: Vec<String> = maps
        .ifaces()
        .into_iter()
        .filter(|(_, i)| i.flags & If::ACCEL_IF_INGRESS_TC.0 != 0)
        .map(|(ifindex, _)| name(ifindex))
        .collect();
    if !filtered.is_empty() {
        filtered.sort();
        out.push(format!(
            "arriving on {}: passed to the kernel, whose tc ingress filters there come first",
            filtered.join(", ")
        ));
    }
    let policy = match addr {
        IpAddr::V4(_) => Cfg::ACCEL_CFG_POLICY4.0,
        IpAddr::V6(_) => Cfg::ACCEL_CFG_POLICY6.0,
    };
    if cfg.flags & Cfg::ACCEL_CFG_FIB_ONLY.0 != 0 {
        out.push("fib mode: the mirror is not used; bpf_fib_lookup decides".into());
        return out;
    }
    if cfg.flags & policy != 0 {
        out.push("policy routing (non-default ip rules): bpf_fib_lookup decides".into());
        return out;
    }
    let src_rules = match addr {
        IpAddr::V4(_) => Cfg::ACCEL_CFG_SRC_RULES4.0,
        IpAddr::V6(_) => Cfg::ACCEL_CFG_SRC_RULES6.0,
    };
    if cfg.flags & src_rules != 0 {
        out.push(
            "(packets from sources an `ip rule from PREFIX` selects go to bpf_fib_lookup; \
             the answer below is for all other sources)"
                .into(),
        );
    }
    let Some(rt) = maps.route_for(addr) else {
        out.push(
            "no mirrored route: bpf_fib_lookup decides (the kernel has no route in local/main)"
                .into(),
        );
        return out;
    };
    match Rt(rt.r#type) {
        Rt::ACCEL_RT_BLACKHOLE => out.push("blackhole route: dropped in XDP".into()),
        Rt::ACCEL_RT_UNREACHABLE => out.push(
            "unreachable/prohibit route: passed to the kernel, which sends the ICMP error".into(),
        ),
        Rt::ACCEL_RT_LOCAL => {
            out.push("local, broadcast or anycast destination: passed to the kernel".into())
        }
        Rt::ACCEL_RT_FIB
            if rt.nh_id == accel_fib_mark::ACCEL_FIB_CAPACITY.0
                || rt.nh_id & accel_fib_mark::ACCEL_FIB_UNPLACED.0 != 0 =>
        {
            out.push(
                "no room for this route in the datapath's tables: bpf_fib_lookup decides \
             (see accel stats --capacity)"
                    .into(),
            )
        }
        Rt::ACCEL_RT_FIB
            if rt.nh_id & !accel_fib_mark::ACCEL_FIB_MTU_MASK.0
                == accel_fib_mark::ACCEL_FIB_MTU.0 =>
        {
            out.push(format!(
                "route with its own MTU ({}), which bpf_fib_lookup ignores: larger packets \
                 are passed to the kernel, the rest go to bpf_fib_lookup",
                rt.nh_id & accel_fib_mark::ACCEL_FIB_MTU_MASK.0
            ))
        }
        Rt::ACCEL_RT_FIB => out.push(
            "route the mirror leaves to bpf_fib_lookup (multipath, TOS, route MTU, ...)".into(),
        ),
        Rt::ACCEL_RT_UNICAST => unicast(maps, addr, rt.nh_id, &mut out),
        Rt::ACCEL_RT_MULTIPATH => multipath(maps, addr, rt.nh_id, cfg.flags, &mut out),
        other => out.push(format!("unknown route type {}", other.0)),
    }
    out
}

/// A multipath route or nexthop object: its paths, and whether the
/// datapath can pick among them itself.
fn multipath(maps: &Maps, addr: IpAddr, group: u32, flags: u32, out: &mut Vec<String>) {
    let Some(g) = maps.group(group) else {
        out.push(format!("group {group} missing: bpf_fib_lookup decides"));
        return;
    };
    if g.flags & crate::bpf::types::accel_group_flags::ACCEL_GROUP_BLACKHOLE.0 != 0 {
        out.push("blackhole nexthop object: dropped in XDP".into());
        return;
    }
    let n = (g.count as usize).min(g.paths.len());
    match n {
        0 => {
            out.push(format!(
                "group {group}: nexthop object the mirror cannot resolve (resilient, unknown or \
                 special): bpf_fib_lookup decides"
            ));
            return;
        }
        1 => return unicast(maps, addr, g.paths[0].nh_id, out),
        _ => {}
    }
    let hash = match addr {
        IpAddr::V4(_) => Cfg::ACCEL_CFG_MP_HASH4.0,
        IpAddr::V6(_) => Cfg::ACCEL_CFG_MP_HASH6.0,
    };
    out.push(format!("multipath route, {n} paths (group {group}):"));
    let mut prev = 0u64;
    for p in &g.paths[..n] {
        let share = (u64::from(p.upper_bound) + 1 - prev) as f64 / (1u64 << 31) as f64 * 100.0;
        prev = u64::from(p.upper_bound) + 1;
        out.push(format!("  {:.1}% of flows:", share));
        let mut lines = Vec::new();
        unicast(maps, addr, p.nh_id, &mut lines);
        out.extend(lines.into_iter().map(|l| format!("    {l}")));
    }
    if flags & hash == 0 {
        out.push(
            "the kernel's multipath hash seed is unknown (net.ipv4.fib_multipath_hash_seed = 0) \
             or its policy is not 0/1: bpf_fib_lookup picks the path"
                .into(),
        );
    } else {
        out.push("the datapath picks the path with the kernel's own hash".into());
    }
}

fn unicast(maps: &Maps, addr: IpAddr, nh_id: u32, out: &mut Vec<String>) {
    let Some(nh) = maps.nexthop(nh_id) else {
        out.push(format!("next hop {nh_id} missing: bpf_fib_lookup decides"));
        return;
    };
    let gw = crate::datapath::keys::gateway_of(&nh);
    let dev = name(nh.ifindex);
    out.push(match gw {
        Some(g) => format!("route: via {g} dev {dev} (next hop {nh_id})"),
        None => format!("route: directly connected on {dev} (next hop {nh_id})"),
    });
    match maps.iface(nh.ifindex) {
        None => {
            out.push(format!(
                "egress {dev} is not one of accel's interfaces: passed to the kernel"
            ));
            return;
        }
        Some(i) if i.flags & If::ACCEL_IF_UP.0 == 0 => {
            out.push(format!("egress {dev} is down: passed to the kernel"));
            return;
        }
        Some(i) => {
            out.push(format!(
                "egress {dev} ({}): MAC {}, MTU {}",
                crate::datapath::attach::current_hook(nh.ifindex)
                    .map_or_else(|| "not attached".to_string(), |h| h.to_string()),
                mac(i.mac),
                i.mtu
            ));
            if i.flags & If::ACCEL_IF_EGRESS_TC.0 != 0 {
                out.push(format!(
                    "a qdisc or tc egress filters configured on {dev}: forwarded through \
                     them by the TC program (from XDP: handed to it, or to the kernel)"
                ));
            }
        }
    }
    let target = gw.unwrap_or(addr);
    match maps.neighbour(nh.ifindex, target) {
        Some(m) => out.push(format!(
            "neighbour {target}: {} -> forwarded by the datapath",
            mac(m)
        )),
        None => out.push(format!(
            "neighbour {target} not resolved in the mirror: bpf_fib_lookup decides (arriving \
             through XDP: passed to the kernel, which resolves it; through TC: forwarded with \
             bpf_redirect_neigh, the kernel resolving it)"
        )),
    }
}

/// The kernel's own decision: the FIB entry its lookup matches (see
/// [`crate::netlink::route_get`]), described.
pub fn kernel_answer(addr: IpAddr) -> String {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return format!("(cannot ask the kernel: {e})"),
    };
    match rt.block_on(route_get::fib_match(addr)) {
        Ok(Some(r)) => describe(&r),
        Ok(None) => "no route: the kernel answers \"network unreachable\"".to_string(),
        Err(e) => format!("(asking the kernel failed: {})", error_chain(&e)),
    }
}

/// One line, in `ip route` words: type (unless unicast), prefix, paths,
/// then table, protocol and metric.
fn describe(r: &Route) -> String {
    let mut s = match r.kind {
        RouteKind::Unicast => String::new(),
        k => format!("{} ", format!("{k:?}").to_lowercase()),
    };
    s.push_str(&r.key.prefix.to_string());
    if let Some(id) = r.nhid {
        s.push_str(&format!(" nhid {id}"));
    }
    let multipath = r.nexthops.len() > 1;
    for nh in &r.nexthops {
        if multipath {
            s.push_str(" nexthop");
        }
        if let Some(gw) = nh.gateway {
            s.push_str(&format!(" via {gw}"));
        }
        let dev = ifname(nh.ifindex).unwrap_or_else(|| format!("ifindex {}", nh.ifindex));
        s.push_str(&format!(" dev {dev}"));
        if multipath {
            s.push_str(&format!(" weight {}", nh.weight));
        }
        if !nh.flags.is_empty() {
            s.push_str(&format!(" {}", nh.flags).to_lowercase());
        }
    }
    s.push_str(&format!(
        " (table {}, proto {:?}, metric {})",
        r.key.table, r.protocol, r.key.metric
    ));
    s
}
