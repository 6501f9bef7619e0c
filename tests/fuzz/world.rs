//! Random but valid worlds: a mirror written through the daemon's own
//! `Change`s (interfaces with random sysctl flags and MTUs, config flags,
//! next hops, groups, routes of every type, neighbours, local addresses,
//! source rules) and kernel routes and neighbours in the lab namespace for
//! the bpf_fib_lookup path. Both are kept as models for the oracle.

use std::net::{IpAddr, Ipv4Addr};

use accel::bpf::types::{accel_cfg_flags as C, accel_if_flags as F};
use accel::mirror::decision::{FibReason, NhKey, PathSet, RouteEntry};
use accel::mirror::groups::upper_bounds;
use accel::mirror::{Change, IfaceEntry};
use accel::model::Prefix;

use super::addrs::{self, any_family, gateway, host_on, pool_addr, pool_prefix, Family};
use super::lab::Lab;
use super::model::{GroupModel, IfaceModel, KernelModel, KernelRoute, MirrorModel, MirrorRoute};
use super::rng::Rng;

/// An ifindex that no interface has: a next hop the datapath must not use.
const NO_SUCH_IFINDEX: u32 = 4242;

pub struct World {
    pub ifaces: Vec<IfaceModel>,
    pub mirror: MirrorModel,
    pub kernel: KernelModel,
    /// What was written, for the failure report.
    pub changes: Vec<Change>,
    pub ip_lines: Vec<String>,
}

impl World {
    pub fn iface(&self, ifindex: u32) -> Option<&IfaceModel> {
        self.ifaces.iter().find(|i| i.ifindex == ifindex)
    }
}

/// Builds a world in `lab` (a fresh one: its namespace and maps).
pub fn build(lab: &Lab, rng: &mut Rng) -> World {
    let ifaces: Vec<IfaceModel> = [("in0", lab.inp), ("out0", lab.out), ("x0", lab.x)]
        .into_iter()
        .map(|(name, i)| IfaceModel {
            name,
            ifindex: i.ifindex,
            mac: i.mac,
            entry: None,
        })
        .collect();
    let mut w = World {
        ifaces,
        mirror: MirrorModel::default(),
        kernel: KernelModel::default(),
        changes: Vec::new(),
        ip_lines: Vec::new(),
    };
    kernel_state(&mut w, rng);
    let lines: Vec<&str> = w.ip_lines.iter().map(String::as_str).collect();
    if !lines.is_empty() {
        lab.ip(&lines);
    }
    mirror_ifaces(&mut w, rng);
    mirror_config(&mut w, rng);
    mirror_nexthops(&mut w, rng);
    mirror_routes(&mut w, rng);
    mirror_neighbours(&mut w, rng);
    mirror_sources(&mut w, rng);
    lab.apply(&w.changes);
    w
}

// ------------------------------------------------------------- kernel

fn mac_str(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

/// The lab's connected subnets and addresses, permanent neighbours on
/// them, and random routes through them.
fn kernel_state(w: &mut World, rng: &mut Rng) {
    for (i, ifc) in w.ifaces.clone().iter().enumerate() {
        for fam in [Family::V4, Family::V6] {
            let subnet = addrs::connected(fam, i);
            w.kernel
                .routes
                .push((subnet, KernelRoute::Via(vec![(ifc.ifindex, None)])));
            w.kernel.locals.extend(addrs::router_locals(fam, i));
            for h in 2..=9u8 {
                if rng.chance(50) {
                    let a = host_on(fam, i, h);
                    let mac = [0x02, 0xbb, i as u8, h, fam as u8, 0];
                    w.kernel.neigh.insert((ifc.ifindex, a), mac);
                    w.ip_lines.push(format!(
                        "neigh replace {a} lladdr {} dev {} nud permanent",
                        mac_str(mac),
                        ifc.name
                    ));
                }
            }
        }
    }
    for fam in [Family::V4, Family::V6] {
        for _ in 0..rng.range(0, 6) {
            kernel_route(w, rng, fam);
        }
    }
}

fn kernel_route(w: &mut World, rng: &mut Rng, fam: Family) {
    let prefix = pool_prefix(rng, fam);
    // Inside a connected subnet a route could turn gateways invalid; an
    // equal prefix would replace the connected route.
    if (0..3).any(|i| addrs::connected(fam, i).contains(&prefix)) {
        return;
    }
    let (route, text) = match rng.weighted(&[70, 12, 10, 8]) {
        0 => {
            let paths = if rng.chance(30) { rng.range(2, 3) } else { 1 };
            match kernel_paths(w, rng, fam, paths) {
                Some(r) => r,
                None => return,
            }
        }
        1 => (KernelRoute::Blackhole, "blackhole".to_string()),
        2 => (KernelRoute::Unreachable, "unreachable".to_string()),
        _ => (KernelRoute::Prohibit, "prohibit".to_string()),
    };
    w.ip_lines.push(match route {
        KernelRoute::Via(_) => format!("route replace {prefix} {text}"),
        _ => format!("route replace {text} {prefix}"),
    });
    w.kernel.routes.retain(|(p, _)| *p != prefix);
    w.kernel.routes.push((prefix, route));
}

/// A route through `n` random paths (gateways on the lab's subnets, or
/// device routes) and its `ip route` text; None when nothing is left
/// (IPv6 multipath routes take gateways only).
fn kernel_paths(w: &World, rng: &mut Rng, fam: Family, n: usize) -> Option<(KernelRoute, String)> {
    let mut hops: Vec<(usize, Option<IpAddr>)> = (0..n)
        .map(|_| {
            let i = rng.below(3);
            (
                i,
                rng.chance(80)
                    .then(|| host_on(fam, i, rng.range(2, 9) as u8)),
            )
        })
        .collect();
    if n > 1 && fam == Family::V6 {
        hops.retain(|(_, gw)| gw.is_some());
    }
    // The kernel refuses a path given twice.
    let mut seen = Vec::new();
    hops.retain(|h| {
        let new = !seen.contains(h);
        seen.push(*h);
        new
    });
    let text: Vec<String> = hops
        .iter()
        .map(|(i, gw)| match gw {
            Some(g) => format!("via {g} dev {}", w.ifaces[*i].name),
            None => format!("dev {}", w.ifaces[*i].name),
        })
        .collect();
    let text = match &text[..] {
        [] => return None,
        [one] => one.clone(),
        many => format!("nexthop {}", many.join(" nexthop ")),
    };
    let paths = hops
        .iter()
        .map(|(i, gw)| (w.ifaces[*i].ifindex, *gw))
        .collect();
    Some((KernelRoute::Via(paths), text))
}

// ------------------------------------------------------------- mirror

const MTUS: [u32; 8] = [68, 576, 1280, 1400, 1500, 1500, 1500, 9000];

fn mirror_ifaces(w: &mut World, rng: &mut Rng) {
    for (slot, ifc) in w.ifaces.iter_mut().enumerate() {
        if !rng.chance(if slot == 0 { 92 } else { 85 }) {
            w.changes.push(Change::DelIface(ifc.ifindex));
            continue;
        }
        let mut flags = 0;
        for (flag, percent) in [
            (F::ACCEL_IF_UP.0, 92),
            (F::ACCEL_IF_FWD4.0, 88),
            (F::ACCEL_IF_FWD6.0, 88),
            (F::ACCEL_IF_RULES4.0, 6),
            (F::ACCEL_IF_RULES6.0, 6),
        ] {
            if rng.chance(percent) {
                flags |= flag;
            }
        }
        flags |= *rng.pick(&[
            0,
            0,
            0,
            0,
            F::ACCEL_IF_RPF_STRICT.0,
            F::ACCEL_IF_RPF_LOOSE.0,
        ]);
        let mtu = |rng: &mut Rng| {
            if rng.chance(20) {
                rng.range(68, 3000) as u32
            } else {
                *rng.pick(&MTUS)
            }
        };
        let entry = IfaceEntry {
            mac: ifc.mac,
            slot: slot as u16,
            mtu: mtu(rng),
            flags,
            mtu6: mtu(rng).max(1280),
        };
        ifc.entry = Some(entry);
        w.changes.push(Change::PutIface {
            ifindex: ifc.ifindex,
            entry,
        });
    }
}

fn mirror_config(w: &mut World, rng: &mut Rng) {
    let mut cfg = 0;
    for (flag, percent) in [
        (C::ACCEL_CFG_POLICY4.0, 6),
        (C::ACCEL_CFG_POLICY6.0, 6),
        (C::ACCEL_CFG_SRC_FULL4.0, 10),
        (C::ACCEL_CFG_FIB_ONLY.0, 5),
        (C::ACCEL_CFG_MP_HASH4.0, 60),
        (C::ACCEL_CFG_MP_HASH6.0, 60),
        (C::ACCEL_CFG_MP_L4_4.0, 40),
        (C::ACCEL_CFG_MP_L4_6.0, 40),
        (C::ACCEL_CFG_SRC_RULES4.0, 15),
        (C::ACCEL_CFG_SRC_RULES6.0, 15),
        (C::ACCEL_CFG_XFRM.0, 3),
    ] {
        if rng.chance(percent) {
            cfg |= flag;
        }
    }
    w.mirror.cfg = cfg;
    w.changes.push(Change::Config(cfg));
    w.changes.push(Change::MpSeed(rng.u32() | 1));
}

fn mirror_nexthops(w: &mut World, rng: &mut Rng) {
    for id in 1..=rng.range(1, 12) as u32 {
        let ifindex = if rng.chance(92) {
            w.ifaces[rng.below(3)].ifindex
        } else {
            NO_SUCH_IFINDEX
        };
        let gw = match rng.weighted(&[25, 45, 30]) {
            0 => None,
            1 => Some(gateway(rng, Family::V4)),
            _ => Some(gateway(rng, Family::V6)),
        };
        let nh = NhKey {
            ifindex,
            gateway: gw,
        };
        w.mirror.nexthops.insert(id, nh);
        w.changes.push(Change::PutNexthop { id, nh });
    }
    let ids: Vec<u32> = w.mirror.nexthops.keys().copied().collect();
    for id in 1..=rng.range(0, 4) as u32 {
        let g = match rng.weighted(&[10, 10, 80]) {
            0 => GroupModel {
                blackhole: true,
                paths: Vec::new(),
            },
            1 => GroupModel::default(),
            _ => GroupModel {
                blackhole: false,
                paths: (0..rng.range(1, 5)).map(|_| *rng.pick(&ids)).collect(),
            },
        };
        let weights: Vec<u32> = g.paths.iter().map(|_| rng.range(1, 300) as u32).collect();
        let paths = g
            .paths
            .iter()
            .copied()
            .zip(upper_bounds(&weights))
            .collect();
        w.changes.push(Change::PutGroup {
            id,
            blackhole: g.blackhole,
            paths,
        });
        w.mirror.groups.insert(id, g);
    }
}

fn mirror_routes(w: &mut World, rng: &mut Rng) {
    for id in 0..4u32 {
        let prefix = {
            let fam = any_family(rng);
            pool_prefix(rng, fam)
        };
        w.changes.push(Change::PutBlackhole { id, prefix });
    }
    let nh_ids: Vec<u32> = w.mirror.nexthops.keys().copied().collect();
    let group_ids: Vec<u32> = w.mirror.groups.keys().copied().collect();
    for fam in [Family::V4, Family::V6] {
        for _ in 0..rng.range(0, 24) {
            let prefix = pool_prefix(rng, fam);
            let (route, entry, nh_id) = match rng.weighted(&[45, 8, 6, 6, 8, 15]) {
                1 => (
                    MirrorRoute::Blackhole,
                    RouteEntry::Blackhole,
                    rng.below(5) as u32,
                ),
                2 => (MirrorRoute::Unreachable, RouteEntry::Unreachable, 0),
                3 => (MirrorRoute::Local, RouteEntry::Local, 0),
                4 => (MirrorRoute::Fib, RouteEntry::Fib(FibReason::OtherType), 0),
                5 if !group_ids.is_empty() => {
                    let g = *rng.pick(&group_ids);
                    (MirrorRoute::Group(g), RouteEntry::Multipath(PathSet(g)), g)
                }
                _ => {
                    let id = *rng.pick(&nh_ids);
                    let nh = w.mirror.nexthops[&id];
                    (MirrorRoute::Unicast(id), RouteEntry::Unicast(nh), id)
                }
            };
            w.mirror.routes.retain(|(p, _)| *p != prefix);
            w.mirror.routes.push((prefix, route));
            w.changes.push(Change::PutRoute {
                prefix,
                entry,
                nh_id,
            });
        }
    }
    // Removals exercise the tables' leaf restoring.
    for _ in 0..rng.range(0, 3) {
        if w.mirror.routes.is_empty() {
            break;
        }
        let (prefix, _) = w.mirror.routes.remove(rng.below(w.mirror.routes.len()));
        w.changes.push(Change::DelRoute(prefix));
    }
}

/// Neighbours for most gateways and for hosts the frames aim at; each MAC
/// is unique, so a forwarded frame tells which neighbour it went to.
fn mirror_neighbours(w: &mut World, rng: &mut Rng) {
    let mut n: u16 = 0;
    let mut put = |w: &mut World, ifindex: u32, addr: IpAddr| {
        n += 1;
        let mac = [0x02, 0xaa, 0, (n >> 8) as u8, n as u8, 0];
        w.mirror.neigh.insert((ifindex, addr), mac);
        w.changes.push(Change::PutNeigh { ifindex, addr, mac });
    };
    let nexthops: Vec<NhKey> = w.mirror.nexthops.values().copied().collect();
    for nh in nexthops {
        match nh.gateway {
            Some(gw) if rng.chance(80) => put(w, nh.ifindex, gw),
            Some(_) => {}
            None => {
                for _ in 0..rng.range(0, 6) {
                    let fam = any_family(rng);
                    put(w, nh.ifindex, pool_addr(rng, fam));
                }
            }
        }
    }
    for (ifindex, addr) in w.mirror.neigh.keys().copied().collect::<Vec<_>>() {
        if rng.chance(5) {
            w.mirror.neigh.remove(&(ifindex, addr));
            w.changes.push(Change::DelNeigh { ifindex, addr });
        }
    }
}

/// The router's own IPv4 addresses (the kernel's, and random ones) and
/// source prefixes of mirrored `ip rule from` rules.
fn mirror_sources(w: &mut World, rng: &mut Rng) {
    let mut locals: Vec<Ipv4Addr> = (0..3).map(|i| Ipv4Addr::new(10, 0, i + 1, 1)).collect();
    for _ in 0..rng.range(0, 3) {
        if let IpAddr::V4(a) = pool_addr(rng, Family::V4) {
            locals.push(a);
        }
    }
    for a in locals {
        w.mirror.local4.insert(a);
        w.changes.push(Change::PutLocal4(a));
    }
    for _ in 0..rng.range(0, 4) {
        let p: Prefix = {
            let fam = any_family(rng);
            pool_prefix(rng, fam)
        };
        w.mirror.src_rules.push(p);
        w.changes.push(Change::PutSrcRule(p));
    }
}
