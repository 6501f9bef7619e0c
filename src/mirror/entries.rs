//! What a kernel route becomes in the datapath's route maps.

use std::net::IpAddr;

use crate::model::{Family, Route, RouteKind};

/// RTNH_F_DEAD and RTNH_F_LINKDOWN: the kernel skips such next hops.
const RTNH_F_DEAD: u32 = 1;
const RTNH_F_LINKDOWN: u32 = 16;
const RTPROT_KERNEL: u8 = 2;

/// A next hop as the datapath stores it; routes sharing one share an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhKey {
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
}

/// The decision stored for a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteEntry {
    Unicast(NhKey),
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
}

impl std::fmt::Display for FibReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            FibReason::Multipath => "multipath route",
            FibReason::Tos => "TOS-specific route",
            FibReason::RouteMtu => "route has its own MTU",
            FibReason::SourceSpecific => "source-specific route",
            FibReason::Encap => "lightweight tunnel encapsulation",
            FibReason::Throw => "throw route",
            FibReason::NexthopObject => "nexthop object without expansion",
            FibReason::ForeignGateway => "gateway of the other address family",
            FibReason::DeadNexthop => "next hop dead or link down",
            FibReason::OtherType => "route type the mirror does not model",
        };
        f.write_str(s)
    }
}

/// The datapath entry for one route, taken alone.
pub fn route_entry(route: &Route) -> RouteEntry {
    match route.kind {
        RouteKind::Unicast => unicast_entry(route),
        RouteKind::Blackhole => RouteEntry::Blackhole,
        RouteKind::Unreachable | RouteKind::Prohibit => RouteEntry::Unreachable,
        RouteKind::Local | RouteKind::Broadcast | RouteKind::Anycast | RouteKind::Multicast => {
            RouteEntry::Local
        }
        RouteKind::Throw => RouteEntry::Fib(FibReason::Throw),
        RouteKind::Other(_) => RouteEntry::Fib(FibReason::OtherType),
    }
}

fn unicast_entry(route: &Route) -> RouteEntry {
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
    let nh = match route.nexthops.as_slice() {
        [nh] => nh,
        [] => {
            return fib(if route.nhid.is_some() {
                FibReason::NexthopObject
            } else {
                FibReason::OtherType
            })
        }
        _ => return fib(FibReason::Multipath),
    };
    if nh.flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN) != 0 || nh.ifindex == 0 {
        return fib(FibReason::DeadNexthop);
    }
    if let Some(gw) = nh.gateway {
        if Family::of(&gw) != route.key.prefix.family() {
            return fib(FibReason::ForeignGateway);
        }
    }
    RouteEntry::Unicast(NhKey {
        ifindex: nh.ifindex,
        gateway: nh.gateway,
    })
}

/// A local-table route that the kernel did not create for an address: its
/// presence makes the kernel validate every source with a full lookup.
pub fn is_custom_local_route(route: &Route) -> bool {
    route.key.table == crate::model::TABLE_LOCAL
        && route.key.prefix.family() == Family::V4
        && route.protocol != RTPROT_KERNEL
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
            protocol: 3,
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

    #[test]
    fn unicast_with_gateway() {
        let r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, Some("192.0.2.1"))]);
        assert_eq!(
            route_entry(&r),
            RouteEntry::Unicast(NhKey {
                ifindex: 3,
                gateway: Some("192.0.2.1".parse().unwrap())
            })
        );
    }

    #[test]
    fn what_the_mirror_leaves_to_the_kernel() {
        let mp = route(
            "10.0.0.0/8",
            RouteKind::Unicast,
            &[(3, Some("192.0.2.1")), (4, None)],
        );
        assert_eq!(route_entry(&mp), RouteEntry::Fib(FibReason::Multipath));
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.mtu = Some(1400);
        assert_eq!(route_entry(&r), RouteEntry::Fib(FibReason::RouteMtu));
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.key.tos = 0x10;
        assert_eq!(route_entry(&r), RouteEntry::Fib(FibReason::Tos));
        let r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, Some("fe80::1"))]);
        assert_eq!(route_entry(&r), RouteEntry::Fib(FibReason::ForeignGateway));
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.nexthops[0].flags = RTNH_F_LINKDOWN;
        assert_eq!(route_entry(&r), RouteEntry::Fib(FibReason::DeadNexthop));
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[]);
        r.nhid = Some(7);
        assert_eq!(route_entry(&r), RouteEntry::Fib(FibReason::NexthopObject));
        let r = route("10.0.0.0/8", RouteKind::Throw, &[]);
        assert_eq!(route_entry(&r), RouteEntry::Fib(FibReason::Throw));
    }

    #[test]
    fn route_types() {
        assert_eq!(
            route_entry(&route("10.0.0.0/8", RouteKind::Blackhole, &[])),
            RouteEntry::Blackhole
        );
        assert_eq!(
            route_entry(&route("10.0.0.0/8", RouteKind::Prohibit, &[])),
            RouteEntry::Unreachable
        );
        assert_eq!(
            route_entry(&route("10.0.0.255/32", RouteKind::Broadcast, &[(2, None)])),
            RouteEntry::Local
        );
    }
}
