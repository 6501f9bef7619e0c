//! Map keys and values built from mirror entries.

use std::net::IpAddr;

use crate::bpf::types::{
    accel_blackhole_prefix, accel_fib_mark, accel_group_flags, accel_iface, accel_neigh,
    accel_neigh4_key, accel_neigh6_key, accel_nexthop, accel_nh_flags, accel_nh_group, accel_route,
    accel_route4_key, accel_route6_key, accel_route_type,
};
use crate::mirror::decision::{NhKey, RouteEntry};
use crate::mirror::IfaceEntry;
use crate::model::Prefix;

pub enum RouteKey {
    V4(accel_route4_key),
    V6(accel_route6_key),
}

pub fn route_key(p: &Prefix) -> RouteKey {
    match p.addr() {
        IpAddr::V4(a) => RouteKey::V4(accel_route4_key {
            prefixlen: p.len() as u32,
            addr: u32::from_ne_bytes(a.octets()),
        }),
        IpAddr::V6(a) => RouteKey::V6(accel_route6_key {
            prefixlen: p.len() as u32,
            addr: a.octets(),
        }),
    }
}

/// A host route key for a lookup of one address.
pub fn host_key(addr: IpAddr) -> RouteKey {
    let len = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    route_key(&Prefix::new(addr, len).expect("host length is valid"))
}

pub fn route_value(entry: &RouteEntry, nh_id: u32) -> accel_route {
    let t = match entry {
        RouteEntry::Unicast(_) => accel_route_type::ACCEL_RT_UNICAST,
        RouteEntry::Blackhole => accel_route_type::ACCEL_RT_BLACKHOLE,
        RouteEntry::Unreachable => accel_route_type::ACCEL_RT_UNREACHABLE,
        RouteEntry::Local => accel_route_type::ACCEL_RT_LOCAL,
        RouteEntry::Fib(_) => accel_route_type::ACCEL_RT_FIB,
        RouteEntry::FibWithinMtu(mtu) => {
            return accel_route {
                r#type: accel_route_type::ACCEL_RT_FIB.0,
                nh_id: accel_fib_mark::ACCEL_FIB_MTU.0 | u32::from(*mtu),
            }
        }
        RouteEntry::Multipath(_) | RouteEntry::Object(_) => accel_route_type::ACCEL_RT_MULTIPATH,
    };
    accel_route { r#type: t.0, nh_id }
}

/// The label of a blackhole drop-counter slot.
pub fn blackhole_prefix_value(p: &Prefix) -> accel_blackhole_prefix {
    let mut v = accel_blackhole_prefix {
        prefixlen: u32::from(p.len()),
        ..Default::default()
    };
    match p.addr() {
        IpAddr::V4(a) => {
            v.family = 2;
            v.addr[..4].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            v.family = 10;
            v.addr = a.octets();
        }
    }
    v
}

pub fn prefix_of_blackhole(v: &accel_blackhole_prefix) -> Option<Prefix> {
    let addr: IpAddr = match v.family {
        2 => std::net::Ipv4Addr::new(v.addr[0], v.addr[1], v.addr[2], v.addr[3]).into(),
        10 => std::net::Ipv6Addr::from(v.addr).into(),
        _ => return None,
    };
    Prefix::new(addr, v.prefixlen as u8)
}

/// A group: up to ACCEL_MAX_PATHS (next-hop id, upper bound) pairs; the
/// mirror never makes larger ones.
pub fn group_value(blackhole: bool, paths: &[(u32, u32)]) -> accel_nh_group {
    let mut g = accel_nh_group::default();
    if blackhole {
        g.flags = accel_group_flags::ACCEL_GROUP_BLACKHOLE.0;
    }
    for (slot, (nh_id, bound)) in g.paths.iter_mut().zip(paths) {
        slot.nh_id = *nh_id;
        slot.upper_bound = *bound;
    }
    g.count = paths.len().min(g.paths.len()) as u32;
    g
}

pub fn nexthop_value(nh: &NhKey) -> accel_nexthop {
    let mut v = accel_nexthop {
        ifindex: nh.ifindex,
        ..Default::default()
    };
    match nh.gateway {
        Some(IpAddr::V4(a)) => {
            v.flags = accel_nh_flags::ACCEL_NH_GATEWAY.0;
            v.gw[..4].copy_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            v.flags = accel_nh_flags::ACCEL_NH_GATEWAY.0 | accel_nh_flags::ACCEL_NH_GW6.0;
            v.gw = a.octets();
        }
        None => {}
    }
    v
}

/// The gateway of a next hop as [`nexthop_value`] wrote it; None for a
/// directly connected one.
pub fn gateway_of(nh: &accel_nexthop) -> Option<IpAddr> {
    if nh.flags & accel_nh_flags::ACCEL_NH_GATEWAY.0 == 0 {
        None
    } else if nh.flags & accel_nh_flags::ACCEL_NH_GW6.0 != 0 {
        Some(std::net::Ipv6Addr::from(nh.gw).into())
    } else {
        Some(std::net::Ipv4Addr::new(nh.gw[0], nh.gw[1], nh.gw[2], nh.gw[3]).into())
    }
}

pub enum NeighKey {
    V4(accel_neigh4_key),
    V6(accel_neigh6_key),
}

pub fn neigh_key(ifindex: u32, addr: IpAddr) -> NeighKey {
    match addr {
        IpAddr::V4(a) => NeighKey::V4(accel_neigh4_key {
            ifindex,
            addr: u32::from_ne_bytes(a.octets()),
        }),
        IpAddr::V6(a) => NeighKey::V6(accel_neigh6_key {
            ifindex,
            addr: a.octets(),
        }),
    }
}

pub fn neigh_value(mac: [u8; 6]) -> accel_neigh {
    accel_neigh { mac, pad: 0 }
}

pub fn iface_value(e: &IfaceEntry) -> accel_iface {
    accel_iface {
        mac: e.mac,
        slot: e.slot,
        mtu: e.mtu,
        flags: e.flags,
        mtu6: e.mtu6,
    }
}
