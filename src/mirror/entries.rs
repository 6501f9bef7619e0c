//! What a kernel route becomes in the datapath's route maps.

use std::net::IpAddr;

use super::code::NhTable;
use crate::bpf::types::accel_limits;
use crate::model::{Family, NextHop, Route, RouteKind, RouteProtocol};

/// RTNH_F_DEAD and RTNH_F_LINKDOWN: the kernel skips such next hops.
const RTNH_F_DEAD: u32 = 1;
const RTNH_F_LINKDOWN: u32 = 16;

/// A next hop as the datapath stores it; routes sharing one share an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhKey {
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
}

/// One path of a multipath route, in the kernel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    pub nh: NhKey,
    /// 1..=256 for a multipath route, 1..=65536 in a nexthop group.
    pub weight: u32,
}

/// An interned list of paths (see [`NhTable::intern_paths`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathSet(pub u32);

/// The most paths the datapath's groups hold.
pub const MAX_PATHS: usize = accel_limits::ACCEL_MAX_PATHS.0 as usize;

/// The decision stored for a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteEntry {
    Unicast(NhKey),
    /// A multipath route (RTA_MULTIPATH): the kernel's hash picks a path.
    Multipath(PathSet),
    /// A route through nexthop object `id` (RTA_NH_ID), resolved through
    /// the objects the kernel announced, so that `ip nexthop replace`
    /// moves every route using it at once.
    Object(u32),
    Blackhole,
    /// unreachable / prohibit: the kernel sends the ICMP error.
    Unreachable,
    /// local, broadcast, anycast, multicast: the kernel delivers.
    Local,
    /// The mirror cannot represent it exactly: bpf_fib_lookup decides.
    Fib(FibReason),
}

/// Why a route is left to bpf_fib_lookup (shown by `accel lookup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FibReason {
    Multipath,
    Tos,
    RouteMtu,
    SourceSpecific,
    Encap,
    Throw,
    NexthopObject,
    ForeignGateway,
    DeadNexthop,
    OtherType,
    /// Several routes share prefix, TOS and metric (`ip route append` or
    /// `prepend`): which one the kernel uses is list order the mirror does
    /// not keep.
    SameKey,
    /// The mirror has no room left for it (next-hop or group ids).
    Capacity,
}

impl std::fmt::Display for FibReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            FibReason::Multipath => "multipath route with too many paths",
            FibReason::Tos => "TOS-specific route",
            FibReason::RouteMtu => "route has its own MTU",
            FibReason::SourceSpecific => "source-specific route",
            FibReason::Encap => "lightweight tunnel encapsulation",
            FibReason::Throw => "throw route",
            FibReason::NexthopObject => "nexthop object without expansion",
            FibReason::ForeignGateway => "gateway of the other address family",
            FibReason::DeadNexthop => "next hop dead or link down",
            FibReason::OtherType => "route type the mirror does not model",
            FibReason::SameKey => "several routes with this prefix and metric (ip route append)",
            FibReason::Capacity => "no room left in the datapath's tables",
        };
        f.write_str(s)
    }
}

/// The datapath entry for one route, taken alone; multipath path lists
/// are interned in `nh`.
pub fn route_entry(route: &Route, nh: &mut NhTable) -> RouteEntry {
    match route.kind {
        RouteKind::Unicast => unicast_entry(route, nh),
        RouteKind::Blackhole => RouteEntry::Blackhole,
        RouteKind::Unreachable | RouteKind::Prohibit => RouteEntry::Unreachable,
        RouteKind::Local | RouteKind::Broadcast | RouteKind::Anycast | RouteKind::Multicast => {
            RouteEntry::Local
        }
        RouteKind::Throw => RouteEntry::Fib(FibReason::Throw),
        RouteKind::Other(_) => RouteEntry::Fib(FibReason::OtherType),
    }
}

fn unicast_entry(route: &Route, table: &mut NhTable) -> RouteEntry {
    let fib = |r| RouteEntry::Fib(r);
    if route.key.tos != 0 {
        return fib(FibReason::Tos);
    }
    if route.mtu.is_some() {
        return fib(FibReason::RouteMtu);
    }
    if route.src_len != 0 {
        return fib(FibReason::SourceSpecific);
    }
    if route.encap {
        return fib(FibReason::Encap);
    }
    // With nexthop_compat_mode=1 the route also carries the object's
    // paths, expanded; the object itself is the truth (and is all there is
    // in mode 0).
    if let Some(id) = route.nhid {
        return RouteEntry::Object(id);
    }
    let family = route.key.prefix.family();
    let paths: Result<Vec<Path>, FibReason> = route
        .nexthops
        .iter()
        .map(|nh| {
            path_key(nh, family).map(|key| Path {
                nh: key,
                weight: u32::from(nh.weight.max(1)),
            })
        })
        .collect();
    match paths {
        Err(reason) => fib(reason),
        Ok(p) if p.is_empty() => fib(FibReason::OtherType),
        Ok(p) if p.len() == 1 => RouteEntry::Unicast(p[0].nh),
        Ok(p) if p.len() > MAX_PATHS => fib(FibReason::Multipath),
        Ok(p) => RouteEntry::Multipath(table.intern_paths(p)),
    }
}

/// The next hop of one path, if the datapath can use it. IPv4 routes may
/// have IPv6 gateways (RFC 5549); the reverse does not exist.
pub fn path_key(nh: &NextHop, family: Family) -> Result<NhKey, FibReason> {
    if nh.flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN) != 0 || nh.ifindex == 0 {
        return Err(FibReason::DeadNexthop);
    }
    if let Some(gw) = nh.gateway {
        if family == Family::V6 && Family::of(&gw) == Family::V4 {
            return Err(FibReason::ForeignGateway);
        }
    }
    Ok(NhKey {
        ifindex: nh.ifindex,
        gateway: nh.gateway,
    })
}

/// A local-table route that the kernel did not create for an address: its
/// presence makes the kernel validate every source with a full lookup.
pub fn is_custom_local_route(route: &Route) -> bool {
    route.key.table == crate::model::TABLE_LOCAL
        && route.key.prefix.family() == Family::V4
        && route.protocol != RouteProtocol::Kernel
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NextHop, Prefix, RouteKey, TABLE_MAIN};

    pub(crate) fn route(prefix: &str, kind: RouteKind, nhs: &[(u32, Option<&str>)]) -> Route {
        let (a, l) = prefix.split_once('/').unwrap();
        Route {
            key: RouteKey {
                table: TABLE_MAIN,
                prefix: Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap(),
                tos: 0,
                metric: 0,
            },
            kind,
            protocol: RouteProtocol::Boot,
            nexthops: nhs
                .iter()
                .map(|(i, g)| NextHop {
                    ifindex: *i,
                    gateway: g.map(|g| g.parse().unwrap()),
                    flags: 0,
                    weight: 1,
                })
                .collect(),
            nhid: None,
            mtu: None,
            src_len: 0,
            encap: false,
        }
    }

    fn entry(r: &Route) -> RouteEntry {
        route_entry(r, &mut NhTable::default())
    }

    #[test]
    fn unicast_with_gateway() {
        let r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, Some("192.0.2.1"))]);
        assert_eq!(
            entry(&r),
            RouteEntry::Unicast(NhKey {
                ifindex: 3,
                gateway: Some("192.0.2.1".parse().unwrap())
            })
        );
    }

    #[test]
    fn multipath_routes_keep_their_paths_in_order() {
        let mut t = NhTable::default();
        let mut mp = route(
            "10.0.0.0/8",
            RouteKind::Unicast,
            &[(3, Some("192.0.2.1")), (4, Some("fe80::1"))],
        );
        mp.nexthops[1].weight = 3;
        let RouteEntry::Multipath(set) = route_entry(&mp, &mut t) else {
            panic!("multipath entry expected");
        };
        let p = t.paths(set);
        assert_eq!((p[0].nh.ifindex, p[0].weight), (3, 1));
        assert_eq!((p[1].nh.ifindex, p[1].weight), (4, 3));
        let too_many: Vec<(u32, Option<&str>)> =
            (1..=MAX_PATHS as u32 + 1).map(|i| (i, None)).collect();
        let big = route("10.0.0.0/8", RouteKind::Unicast, &too_many);
        assert_eq!(entry(&big), RouteEntry::Fib(FibReason::Multipath));
        let mut dead = mp.clone();
        dead.nexthops[0].flags = RTNH_F_DEAD;
        assert_eq!(entry(&dead), RouteEntry::Fib(FibReason::DeadNexthop));
    }

    #[test]
    fn nexthop_objects_are_referenced_not_expanded() {
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, Some("192.0.2.1"))]);
        r.nhid = Some(42);
        assert_eq!(entry(&r), RouteEntry::Object(42));
        r.nexthops.clear();
        assert_eq!(entry(&r), RouteEntry::Object(42));
    }

    #[test]
    fn ipv4_routes_may_use_ipv6_gateways() {
        let r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, Some("fe80::1"))]);
        assert!(
            matches!(entry(&r), RouteEntry::Unicast(nh) if nh.gateway == Some("fe80::1".parse().unwrap()))
        );
        let r = route(
            "2001:db8::/32",
            RouteKind::Unicast,
            &[(3, Some("192.0.2.1"))],
        );
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::ForeignGateway));
    }

    #[test]
    fn what_the_mirror_leaves_to_the_kernel() {
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.mtu = Some(1400);
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::RouteMtu));
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.key.tos = 0x10;
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::Tos));
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.nexthops[0].flags = RTNH_F_LINKDOWN;
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::DeadNexthop));
        let r = route("10.0.0.0/8", RouteKind::Throw, &[]);
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::Throw));
    }

    #[test]
    fn route_types() {
        assert_eq!(
            entry(&route("10.0.0.0/8", RouteKind::Blackhole, &[])),
            RouteEntry::Blackhole
        );
        assert_eq!(
            entry(&route("10.0.0.0/8", RouteKind::Prohibit, &[])),
            RouteEntry::Unreachable
        );
        assert_eq!(
            entry(&route("10.0.0.255/32", RouteKind::Broadcast, &[(2, None)])),
            RouteEntry::Local
        );
    }
}
