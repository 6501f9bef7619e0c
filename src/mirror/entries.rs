//! What a kernel route becomes in the datapath's route maps.

use super::code::NhTable;
use super::decision::{FibReason, NhKey, Path, RouteEntry, MAX_PATHS};
use crate::model::{Family, NextHop, NhFlags, Route, RouteKind, RouteProtocol};

/// The datapath entry for one route, taken alone; multipath path lists
/// are interned in `nh`.
pub fn route_entry(route: &Route, nh: &mut NhTable) -> RouteEntry {
    // An expired IPv6 route is skipped by lookups at once (fib6_check_expired
    // in __find_rr_leaf) but deleted, with a notification, only by the
    // next GC run (fib6_run_gc), up to gc_interval later. bpf_fib_lookup
    // runs the same code: it decides for every route that can expire.
    if route.expires {
        return RouteEntry::Fib(FibReason::Expires);
    }
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
    if let Some(mtu) = route.mtu {
        // ip6_forward() holds packets to the interface's mtu6 unless the
        // route's MTU is locked, and bpf_fib_lookup to at most as much:
        // it may send some to the kernel, never forward one too many.
        return match route.key.prefix.family() {
            Family::V4 => RouteEntry::FibWithinMtu(u16::try_from(mtu).unwrap_or(u16::MAX)),
            Family::V6 => fib(FibReason::RouteMtu),
        };
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
    // Most routes have one path: no vector for it.
    if let [nh] = route.nexthops.as_slice() {
        return match path_key(nh, family, true) {
            Ok(key) => RouteEntry::Unicast(key),
            Err(reason) => fib(reason),
        };
    }
    let paths: Result<Vec<Path>, FibReason> = route
        .nexthops
        .iter()
        .map(|nh| {
            path_key(nh, family, false).map(|key| Path {
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
        Ok(p) => table
            .intern_paths(p)
            .map_or(fib(FibReason::Capacity), RouteEntry::Multipath),
    }
}

/// The next hop of one path, if the datapath can use it. IPv4 routes may
/// have IPv6 gateways (RFC 5549); the reverse does not exist.
///
/// The kernel skips dead next hops. One without carrier (RTNH_F_LINKDOWN,
/// set and cleared without a notification) it skips only under
/// ignore_routes_with_linkdown, and `lone` says how accel takes it:
/// - the only path of a route (`lone`): the kernel forwards to it, or,
///   under the sysctl, passes it over for another route (fib_table_lookup
///   and find_match test the flag at each lookup). The datapath, finding
///   the egress without carrier (ACCEL_IF_UP), hands the packet to the
///   kernel either way. Under the sysctl the kernel reports it dead as
///   well (fib_nexthop_info), and it is: the reverse lookup of the source
///   check passes it over too, so bpf_fib_lookup decides the route (a
///   carrier change under the sysctl asks for a dump, see
///   `Mirror::link_changed`);
/// - a member of a multipath route: the kernel's split of the hash counts
///   it as of the last rebalance (fib_rebalance, rt6_multipath_rebalance,
///   run on carrier changes with the sysctl as it was then), which accel
///   cannot see: bpf_fib_lookup decides the route.
pub fn path_key(nh: &NextHop, family: Family, lone: bool) -> Result<NhKey, FibReason> {
    let skipped = if lone {
        NhFlags::Dead
    } else {
        NhFlags::Dead | NhFlags::Linkdown
    };
    if nh.flags.intersects(skipped) || nh.ifindex == 0 {
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
                    flags: NhFlags::empty(),
                    weight: 1,
                })
                .collect(),
            nhid: None,
            mtu: None,
            src_len: 0,
            encap: false,
            expires: false,
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
        dead.nexthops[0].flags = NhFlags::Dead;
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
        // ip_forward() holds IPv4 packets to a route's MTU, which
        // bpf_fib_lookup ignores: the datapath needs the value.
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.mtu = Some(1400);
        assert_eq!(entry(&r), RouteEntry::FibWithinMtu(1400));
        let mut r = route("2001:db8::/32", RouteKind::Unicast, &[(3, None)]);
        r.mtu = Some(1400);
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::RouteMtu));
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.key.tos = 0x10;
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::Tos));
        let mut r = route("10.0.0.0/8", RouteKind::Unicast, &[(3, None)]);
        r.nexthops[0].flags = NhFlags::Dead;
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::DeadNexthop));
        // Alone, a next hop without carrier is the egress check's, unless
        // reported dead too (ignore_routes_with_linkdown).
        r.nexthops[0].flags = NhFlags::Linkdown;
        let nh = NhKey {
            ifindex: 3,
            gateway: None,
        };
        assert_eq!(entry(&r), RouteEntry::Unicast(nh));
        r.nexthops[0].flags = NhFlags::Linkdown | NhFlags::Dead;
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::DeadNexthop));
        let r = route("10.0.0.0/8", RouteKind::Throw, &[]);
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::Throw));
        let mut r = route("::/0", RouteKind::Unicast, &[(3, Some("fe80::1"))]);
        r.expires = true;
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::Expires));
        r.kind = RouteKind::Blackhole;
        assert_eq!(entry(&r), RouteEntry::Fib(FibReason::Expires));
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
