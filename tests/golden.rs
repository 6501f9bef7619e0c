//! Golden-packet tests of the datapath, run with BPF_PROG_TEST_RUN through
//! both of its programs, XDP and TC.
//!
//! Every test builds its own router in a private network namespace (see
//! `golden/lab.rs`), writes mirror state with `Maps::apply`, optionally adds
//! kernel routes and neighbours for the bpf_fib_lookup path, and checks for
//! each hand-built frame: the XDP action, the exact output bytes, and the one
//! counter that moved. Needs root: `cargo test --test golden`.

#[path = "golden/capacity.rs"]
mod capacity;
#[path = "golden/from_kernel.rs"]
mod from_kernel;
#[path = "golden/inlined.rs"]
mod inlined;
#[path = "golden/lab.rs"]
mod lab;
#[path = "golden/pkt.rs"]
mod pkt;
#[path = "golden/tc.rs"]
mod tc;
#[path = "golden/trie.rs"]
mod trie;

use std::net::{Ipv4Addr, Ipv6Addr};

use accel::bpf::types::{accel_cfg_flags as C, accel_if_flags as F, accel_stat as S};
use accel::mirror::decision::{FibReason, RouteEntry};
use accel::mirror::Change;
use lab::*;
use pkt::*;

// Addresses: the sender sits behind in0 (10.0.1.0/24, 2001:db8:1::/64), the
// next hop behind out0 (10.0.2.0/24, 2001:db8:2::/64); remote networks are
// 198.51.100.0/24 and 2001:db8:100::/48.
const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const GW4: &str = "10.0.2.2";
const REMOTE4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const HOST4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 9);

fn src6() -> Ipv6Addr {
    "2001:db8:1::2".parse().unwrap()
}
const GW6: &str = "2001:db8:2::2";
fn remote6() -> Ipv6Addr {
    "2001:db8:100::7".parse().unwrap()
}
fn host6() -> Ipv6Addr {
    "2001:db8:2::9".parse().unwrap()
}
fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The frame the sender puts on in0.
fn f4(lab: &Lab, p: &V4) -> Vec<u8> {
    eth(lab.inp.mac, IN_PEER_MAC, ETH_P_IP, &p.build())
}
fn f6(lab: &Lab, p: &V6) -> Vec<u8> {
    eth(lab.inp.mac, IN_PEER_MAC, ETH_P_IPV6, &p.build())
}
fn udp4(dst: Ipv4Addr) -> V4 {
    V4::udp(SRC4, dst)
}
fn udp6(dst: Ipv6Addr) -> V6 {
    V6::udp(src6(), dst)
}

/// Mirror: 198.51.100.0/24 and 2001:db8:100::/48 via the gateways on out0,
/// whose MAC the mirror knows as MIRROR_MAC.
fn mirror_gw(lab: &Lab) {
    let o = lab.out;
    let mut c = lab.route("198.51.100.0/24", &o, Some(GW4), 1);
    c.extend(lab.route("2001:db8:100::/48", &o, Some(GW6), 2));
    c.push(lab.neigh(&o, GW4, MIRROR_MAC));
    c.push(lab.neigh(&o, GW6, MIRROR_MAC));
    lab.apply(&c);
}

/// Mirror: default routes via the gateways on out0, so that anything the
/// datapath fails to refuse would be forwarded.
fn mirror_default(lab: &Lab) {
    let o = lab.out;
    let mut c = lab.route("0.0.0.0/0", &o, Some(GW4), 1);
    c.extend(lab.route("::/0", &o, Some(GW6), 2));
    c.push(lab.neigh(&o, GW4, MIRROR_MAC));
    c.push(lab.neigh(&o, GW6, MIRROR_MAC));
    lab.apply(&c);
}

/// Kernel: the same remote routes via the gateways on out0.
fn kernel_routes(lab: &Lab) {
    lab.ip(&[
        "route add 198.51.100.0/24 via 10.0.2.2 dev out0",
        "route add 2001:db8:100::/48 via 2001:db8:2::2 dev out0",
    ]);
}

/// Kernel: permanent neighbours for the gateways, with KERNEL_MAC.
fn kernel_neighs(lab: &Lab) {
    lab.ip(&[
        "neigh add 10.0.2.2 lladdr 02:bb:00:00:00:01 dev out0 nud permanent",
        "neigh add 2001:db8:2::2 lladdr 02:bb:00:00:00:01 dev out0 nud permanent",
    ]);
}

// ------------------------------------------------------------ forwarding

#[test]
fn forward_mirror_gateway_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let f = f4(&lab, &udp4(REMOTE4));
    lab.forward(&f, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
}

#[test]
fn forward_mirror_gateway_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let f = f6(&lab, &udp6(remote6()));
    lab.forward(&f, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
}

#[test]
fn forward_mirror_connected_v4() {
    let Some(lab) = Lab::new() else { return };
    let mut c = lab.route("10.0.2.0/24", &lab.out, None, 1);
    c.push(lab.neigh(&lab.out, "10.0.2.9", MIRROR_MAC));
    lab.apply(&c);
    let f = f4(&lab, &udp4(HOST4));
    lab.forward(&f, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
}

#[test]
fn forward_mirror_connected_v6() {
    let Some(lab) = Lab::new() else { return };
    let mut c = lab.route("2001:db8:2::/64", &lab.out, None, 1);
    c.push(lab.neigh(&lab.out, "2001:db8:2::9", MIRROR_MAC));
    lab.apply(&c);
    let f = f6(&lab, &udp6(host6()));
    lab.forward(&f, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
}

#[test]
fn forward_mirror_ttl_2_v4_and_hop_limit_2_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4).ttl(2)),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6()).hop(2)),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn forward_mirror_checksum_edge_cases_v4() {
    // Headers whose checksum is near the 0x0000/0xffff wrap of the
    // incremental update.
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    for id in [0u16, 0x0001, 0x00ff, 0xfeff, 0xff00, 0xffff, 0x8000, 0x1234] {
        for ttl in [2u8, 64, 255] {
            let mut p = udp4(REMOTE4).ttl(ttl);
            p.id = id;
            lab.forward(
                &f4(&lab, &p),
                MIRROR_MAC,
                &lab.out,
                S::ACCEL_STAT_FWD_MIRROR,
            );
        }
    }
}

#[test]
fn forward_fib_mirror_miss_v4() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let f = f4(&lab, &udp4(REMOTE4));
    lab.forward(&f, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
}

#[test]
fn forward_fib_mirror_miss_v6() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let f = f6(&lab, &udp6(remote6()));
    lab.forward(&f, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
}

#[test]
fn forward_fib_connected_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.ip(&[
        "neigh add 10.0.2.9 lladdr 02:bb:00:00:00:01 dev out0 nud permanent",
        "neigh add 2001:db8:2::9 lladdr 02:bb:00:00:00:01 dev out0 nud permanent",
    ]);
    lab.forward(
        &f4(&lab, &udp4(HOST4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f6(&lab, &udp6(host6())),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
}

#[test]
fn forward_fib_when_mirror_lacks_neighbour_v4() {
    let Some(lab) = Lab::new() else { return };
    lab.apply(&lab.route("198.51.100.0/24", &lab.out, Some(GW4), 1));
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let f = f4(&lab, &udp4(REMOTE4));
    lab.forward(&f, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
}

#[test]
fn forward_fib_when_mirror_lacks_neighbour_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.apply(&lab.route("2001:db8:100::/48", &lab.out, Some(GW6), 1));
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let f = f6(&lab, &udp6(remote6()));
    lab.forward(&f, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
}

/// The gateway's MAC travels in the next hop: a changed neighbour is
/// forwarded to at once with its new MAC, a removed one leaves the frame
/// to bpf_fib_lookup (and the kernel's own neighbour), never to the old MAC.
#[test]
fn next_hops_follow_their_gateways_neighbour() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let o = lab.out;
    let (v4, v6) = (f4(&lab, &udp4(REMOTE4)), f6(&lab, &udp6(remote6())));
    lab.forward(&v4, MIRROR_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
    lab.forward(&v6, MIRROR_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
    let moved = [0x02, 0xaa, 0, 0, 0, 0x02];
    lab.apply(&[lab.neigh(&o, GW4, moved), lab.neigh(&o, GW6, moved)]);
    lab.forward(&v4, moved, &o, S::ACCEL_STAT_FWD_MIRROR);
    lab.forward(&v6, moved, &o, S::ACCEL_STAT_FWD_MIRROR);
    lab.apply(&[
        Change::DelNeigh {
            ifindex: o.ifindex,
            addr: GW4.parse().unwrap(),
        },
        Change::DelNeigh {
            ifindex: o.ifindex,
            addr: GW6.parse().unwrap(),
        },
    ]);
    lab.forward(&v4, KERNEL_MAC, &o, S::ACCEL_STAT_FWD_FIB);
    lab.forward(&v6, KERNEL_MAC, &o, S::ACCEL_STAT_FWD_FIB);
}

#[test]
fn route_type_fib_goes_to_fib_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.apply(&[
        lab.neigh(&lab.out, GW4, MIRROR_MAC),
        lab.neigh(&lab.out, GW6, MIRROR_MAC),
        lab.route_kind("198.51.100.0/24", RouteEntry::Fib(FibReason::Multipath)),
        lab.route_kind("2001:db8:100::/48", RouteEntry::Fib(FibReason::Multipath)),
    ]);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
}

/// An IPv4 route with its own MTU: ip_forward() holds packets to it
/// (ip_dst_mtu_maybe_forward()), bpf_fib_lookup (ip_mtu_from_fib_result())
/// only when it is locked. Packets within it are bpf_fib_lookup's, larger
/// ones the kernel's, which sends "fragmentation needed" for this one (DF).
/// It holds on every way to bpf_fib_lookup: from the mirror's route, and
/// where a policy flag sends IPv4 there directly.
#[test]
fn route_mtu_v4_holds_packets_to_it() {
    let Some(lab) = Lab::new() else { return };
    lab.ip(&["route add 198.51.100.0/24 via 10.0.2.2 dev out0 mtu 1400"]);
    kernel_neighs(&lab);
    for config in [0, C::ACCEL_CFG_POLICY4.0] {
        lab.apply(&[
            lab.route_kind("198.51.100.0/24", RouteEntry::FibWithinMtu(1400)),
            Change::Config(config),
        ]);
        let fits = f4(&lab, &udp4(REMOTE4).total(1400));
        lab.forward(&fits, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
        let over = f4(&lab, &udp4(REMOTE4).total(1401));
        lab.pass(&over, S::ACCEL_STAT_PASS_MTU);
    }
}

#[test]
fn mirror_longest_prefix_wins_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    lab.apply(&[
        lab.route_kind("198.51.100.128/25", RouteEntry::Blackhole),
        lab.route_kind("2001:db8:100:8000::/49", RouteEntry::Blackhole),
    ]);
    let r4 = f4(&lab, &udp4(REMOTE4));
    lab.forward(&r4, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    let b4 = f4(&lab, &udp4(Ipv4Addr::new(198, 51, 100, 200)));
    lab.drop(&b4, S::ACCEL_STAT_DROP_BLACKHOLE);
    let r6 = f6(&lab, &udp6(remote6()));
    lab.forward(&r6, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    let b6 = f6(&lab, &udp6(a6("2001:db8:100:8000::1")));
    lab.drop(&b6, S::ACCEL_STAT_DROP_BLACKHOLE);
}

/// The IPv6 trie: a default route, a /48 and a /128 nested across trie
/// levels; removals fall back to the covering route, as `accel lookup`
/// (route_for) sees it too.
#[test]
fn mirror_ipv6_trie_nesting_and_removal() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let host = "2001:db8:100::7/128";
    lab.apply(&[
        lab.route_kind("2001:db8:100::/48", RouteEntry::Blackhole),
        lab.route_kind(host, RouteEntry::Unreachable),
    ]);
    let rt = |a: &str| lab.dp.maps.route_for(ip(a)).map(|r| (r.r#type, r.nh_id));
    assert_eq!(rt("2001:db8:100::7"), Some((2, 0)));
    assert_eq!(rt("2001:db8:100::8"), Some((1, 0)));
    assert_eq!(rt("2001:db8:101::8"), Some((0, 2)));
    let r = f6(&lab, &udp6(remote6()));
    lab.pass(&r, S::ACCEL_STAT_PASS_NO_ROUTE);
    let b = f6(&lab, &udp6(a6("2001:db8:100:ffff::1")));
    lab.drop(&b, S::ACCEL_STAT_DROP_BLACKHOLE);

    lab.apply(&[Change::DelRoute(pfx("2001:db8:100::/48"))]);
    assert_eq!(rt("2001:db8:100::8"), Some((0, 2)));
    assert_eq!(rt("2001:db8:100::7"), Some((2, 0)));
    lab.forward(&b, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    lab.pass(&r, S::ACCEL_STAT_PASS_NO_ROUTE);

    lab.apply(&[Change::DelRoute(pfx(host)), Change::DelRoute(pfx("::/0"))]);
    assert_eq!(rt("2001:db8:100::7"), None);
    assert_eq!(rt("2001:db8:100::8"), None);
}

#[test]
fn mirror_ipv4_via_ipv6_gateway_forwards_the_reverse_goes_to_fib() {
    // An IPv4 route via an IPv6 gateway (RFC 5549) resolves the gateway
    // with neighbour discovery; the reverse cannot exist in the kernel, so
    // a stray entry of it is left to bpf_fib_lookup.
    let Some(lab) = Lab::new() else { return };
    let o = lab.out;
    let mut c = lab.route("198.51.100.0/24", &o, Some(GW6), 1);
    c.extend(lab.route("2001:db8:100::/48", &o, Some(GW4), 2));
    c.push(lab.neigh(&o, GW4, MIRROR_MAC));
    c.push(lab.neigh(&o, GW6, MIRROR_MAC));
    lab.apply(&c);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let r4 = f4(&lab, &udp4(REMOTE4));
    lab.forward(&r4, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    let r6 = f6(&lab, &udp6(remote6()));
    lab.forward(&r6, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
}

#[test]
fn config_fib_only_skips_mirror() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.apply(&[Change::Config(C::ACCEL_CFG_FIB_ONLY.0)]);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
}

#[test]
fn config_fib_only_ignores_mirror_blackhole() {
    let Some(lab) = Lab::new() else { return };
    lab.apply(&[
        lab.route_kind("198.51.100.0/24", RouteEntry::Blackhole),
        lab.route_kind("2001:db8:100::/48", RouteEntry::Blackhole),
        Change::Config(C::ACCEL_CFG_FIB_ONLY.0),
    ]);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
}

/// Under hash policy 2 or 3 the kernel's forwarding path hashes a
/// tunnelled packet's inner headers, which bpf_fib_lookup (no skb) cannot:
/// GRE and IP in IP go to the kernel, other packets to bpf_fib_lookup.
#[test]
fn config_mp_inner_sends_tunnels_to_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.apply(&[Change::Config(
        C::ACCEL_CFG_MP_INNER4.0 | C::ACCEL_CFG_MP_INNER6.0,
    )]);
    let o = lab.out;
    for proto in [47u8, 4] {
        let gre = V4 {
            proto,
            ..udp4(REMOTE4)
        };
        lab.pass(&f4(&lab, &gre), S::ACCEL_STAT_PASS_MP_HASH);
        let gre6 = V6 {
            next: proto,
            ..udp6(remote6())
        };
        lab.pass(&f6(&lab, &gre6), S::ACCEL_STAT_PASS_MP_HASH);
    }
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &o,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        KERNEL_MAC,
        &o,
        S::ACCEL_STAT_FWD_FIB,
    );
}

/// Under the L4 policy the kernel's flow dissector walks IPv6 extension
/// headers to the ports it hashes; bpf_fib_lookup would get the first
/// header's number and no ports: such packets go to the kernel.
#[test]
fn config_mp_ext6_sends_extension_headers_to_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    // A destination options header (60) in front of UDP.
    let opts = V6 {
        next: 60,
        payload: [&[17u8, 0, 1, 4, 0, 0, 0, 0][..], &udp6(remote6()).payload].concat(),
        ..udp6(remote6())
    };
    let f = f6(&lab, &opts);
    lab.forward(&f, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
    lab.apply(&[Change::Config(C::ACCEL_CFG_MP_EXT6.0)]);
    lab.pass(&f, S::ACCEL_STAT_PASS_MP_HASH);
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
}

#[test]
fn config_policy4_ignores_mirror_for_ipv4_only() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.apply(&[Change::Config(C::ACCEL_CFG_POLICY4.0)]);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn config_policy6_ignores_mirror_for_ipv6_only() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.apply(&[Change::Config(C::ACCEL_CFG_POLICY6.0)]);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
}

#[test]
fn config_xfrm_hands_every_forward_to_the_kernel_v4_v6() {
    // IPsec policies in force: ip_forward() checks them
    // (xfrm4_policy_check(FWD)) before its TTL check and routes through
    // them (xfrm4_route_forward()), ip6_forward() likewise; neither the
    // mirror nor bpf_fib_lookup sees them.
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let xfrm = C::ACCEL_CFG_XFRM.0;
    let r4 = f4(&lab, &udp4(REMOTE4));
    let r6 = f6(&lab, &udp6(remote6()));
    lab.apply(&[Change::Config(xfrm)]);
    lab.pass(&r4, S::ACCEL_STAT_PASS_XFRM);
    lab.pass(&r6, S::ACCEL_STAT_PASS_XFRM);
    lab.pass(&f4(&lab, &udp4(REMOTE4).ttl(1)), S::ACCEL_STAT_PASS_XFRM);
    // What the kernel drops before ip_forward() is still dropped here.
    lab.drop(
        &f4(&lab, &V4::udp(Ipv4Addr::new(0, 1, 2, 3), REMOTE4)),
        S::ACCEL_STAT_DROP_MARTIAN_SRC,
    );
    // Through bpf_fib_lookup as through the mirror.
    lab.apply(&[Change::Config(xfrm | C::ACCEL_CFG_FIB_ONLY.0)]);
    lab.pass(&r4, S::ACCEL_STAT_PASS_XFRM);
    lab.pass(&r6, S::ACCEL_STAT_PASS_XFRM);
    // A lapsed lease replaces the flags the datapath decides with, not
    // this one.
    lab.apply(&[Change::Config(xfrm)]);
    lab.dp.maps.set_deadlines(0, u64::MAX).unwrap();
    lab.pass(&r4, S::ACCEL_STAT_PASS_XFRM);
    lab.pass(&r6, S::ACCEL_STAT_PASS_XFRM);
    // The policies gone: forwarded again.
    lab.dp.maps.set_deadlines(u64::MAX, u64::MAX).unwrap();
    lab.apply(&[Change::Config(0)]);
    lab.forward(&r4, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    lab.forward(&r6, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
}

#[test]
fn config_netfilter_hands_everything_past_the_header_checks_to_the_kernel_v4_v6() {
    // Netfilter chains appeared on the forwarding path while accel ran:
    // NF_INET_PRE_ROUTING follows ip_rcv_core()'s checks (ip_rcv()), so
    // what they drop is still dropped here and the rest is the kernel's,
    // even what its route lookup would drop (a martian source).
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let nf = C::ACCEL_CFG_NETFILTER.0;
    let r4 = f4(&lab, &udp4(REMOTE4));
    let r6 = f6(&lab, &udp6(remote6()));
    lab.apply(&[Change::Config(nf)]);
    lab.pass(&r4, S::ACCEL_STAT_PASS_NETFILTER);
    lab.pass(&r6, S::ACCEL_STAT_PASS_NETFILTER);
    let martian = f4(&lab, &V4::udp(Ipv4Addr::new(0, 1, 2, 3), REMOTE4));
    lab.pass(&martian, S::ACCEL_STAT_PASS_NETFILTER);
    let mut bad_csum = r4.clone();
    bad_csum[24] ^= 0xff;
    lab.drop(&bad_csum, S::ACCEL_STAT_DROP_HDR_ERRORS);
    // Whatever the lease says.
    lab.dp.maps.set_deadlines(0, u64::MAX).unwrap();
    lab.pass(&r4, S::ACCEL_STAT_PASS_NETFILTER);
    lab.dp.maps.set_deadlines(u64::MAX, u64::MAX).unwrap();
    // Chains at the ingress hook see every frame, before ip_rcv_core().
    lab.apply(&[Change::Config(nf | C::ACCEL_CFG_NF_INGRESS.0)]);
    lab.pass(&bad_csum, S::ACCEL_STAT_PASS_NETFILTER);
    lab.pass(&r6, S::ACCEL_STAT_PASS_NETFILTER);
    lab.apply(&[Change::Config(0)]);
    lab.forward(&r4, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
}

#[test]
fn nftables_chains_as_the_kernel_reports_them() {
    use accel::netlink::nf_chains::NfSocket;
    let Some(lab) = Lab::new() else { return };
    if !std::path::Path::new("/usr/sbin/nft").exists() {
        eprintln!("SKIPPED: no nft to add chains with");
        return;
    }
    let asker = NfSocket::open(false).expect("NETLINK_NETFILTER");
    let named = || -> Vec<String> {
        let chains = asker.base_chains().expect("chain dump");
        chains
            .iter()
            .filter_map(|c| c.forwarding_hook().map(|h| c.describe(h)))
            .collect()
    };
    assert!(named().is_empty(), "a fresh namespace has none");
    lab.nft(
        "table inet t {
            chain c_in { type filter hook input priority 0; }
            chain c_fwd { type filter hook forward priority 0; }
            chain c_reg { }
        }
        table ip6 n { chain post { type nat hook postrouting priority 100; }; }
        table netdev d { chain c_ing { type filter hook ingress device in0 priority 0; }; }",
    );
    assert_eq!(
        named(),
        [
            "nftables chain inet t c_fwd on hook forward",
            "nftables chain ip6 n post on hook postrouting",
            "nftables chain netdev d c_ing on hook ingress"
        ]
    );
    assert_eq!(
        asker.flowtables().expect("flowtable dump"),
        Vec::<String>::new()
    );
    lab.nft("delete table inet t\ndelete table ip6 n\ndelete table netdev d");
    assert!(named().is_empty(), "deleted");
}

#[test]
fn xfrm_policies_as_the_kernel_reports_them_set_the_flag() {
    use accel::netlink::xfrm::XfrmSocket;
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let Some(mut asker) = XfrmSocket::open().expect("NETLINK_XFRM") else {
        eprintln!("SKIPPED: this kernel has no XFRM");
        return;
    };
    let events = XfrmSocket::open().unwrap().unwrap();
    events.subscribe().unwrap();
    // What the daemon does with a reading (daemon/xfrm_watch.rs).
    let mut m = accel::mirror::Mirror::new(Default::default(), false, &Default::default());
    let mut applies = || {
        let on = asker.state().unwrap().applies_to_forwarding();
        lab.apply(&m.set_xfrm(on));
        on
    };
    let r4 = f4(&lab, &udp4(REMOTE4));
    assert!(!applies(), "a fresh namespace has no policy");
    lab.forward(&r4, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    assert!(!events.drain().unwrap(), "no notification yet");
    lab.ip(&[
        "xfrm policy add src 10.0.1.0/24 dst 198.51.100.0/24 dir out \
              tmpl src 10.0.2.1 dst 10.0.2.2 proto esp mode tunnel",
    ]);
    assert!(events.drain().unwrap(), "the new policy is notified");
    assert!(applies(), "an out policy");
    lab.pass(&r4, S::ACCEL_STAT_PASS_XFRM);
    lab.ip(&["xfrm policy flush"]);
    assert!(events.drain().unwrap(), "the flush is notified");
    assert!(!applies(), "flushed");
    lab.forward(&r4, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    lab.ip(&[
        "xfrm policy add src 10.0.1.0/24 dst 198.51.100.0/24 dir in \
              tmpl src 10.0.1.2 dst 10.0.1.1 proto esp mode tunnel",
    ]);
    assert!(!applies(), "an in policy concerns local delivery only");
    lab.ip(&["xfrm policy setdefault fwd block"]);
    assert!(events.drain().unwrap(), "the new default is notified");
    assert!(applies(), "default fwd block");
    lab.pass(&r4, S::ACCEL_STAT_PASS_XFRM);
}

// ------------------------------------------------- route types and misses

#[test]
fn blackhole_mirror_drops_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.apply(&[
        lab.route_kind("198.51.100.0/24", RouteEntry::Blackhole),
        lab.route_kind("2001:db8:100::/48", RouteEntry::Blackhole),
    ]);
    lab.drop(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_DROP_BLACKHOLE);
    lab.drop(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_DROP_BLACKHOLE);
}

#[test]
fn blackhole_fib_drops_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.ip(&[
        "route add blackhole 198.51.100.0/24",
        "route add blackhole 2001:db8:100::/48",
    ]);
    lab.drop(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_DROP_BLACKHOLE);
    lab.drop(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_DROP_BLACKHOLE);
}

#[test]
fn unreachable_mirror_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.apply(&[
        lab.route_kind("198.51.100.0/24", RouteEntry::Unreachable),
        lab.route_kind("2001:db8:100::/48", RouteEntry::Unreachable),
    ]);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_NO_ROUTE);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_NO_ROUTE);
}

#[test]
fn unreachable_and_prohibit_fib_pass_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.ip(&[
        "route add unreachable 198.51.100.0/24",
        "route add prohibit 203.0.113.0/24",
        "route add unreachable 2001:db8:100::/48",
        "route add prohibit 2001:db8:200::/48",
    ]);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_NO_ROUTE);
    lab.pass(
        &f4(&lab, &udp4(Ipv4Addr::new(203, 0, 113, 1))),
        S::ACCEL_STAT_PASS_NO_ROUTE,
    );
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_NO_ROUTE);
    lab.pass(
        &f6(&lab, &udp6(a6("2001:db8:200::1"))),
        S::ACCEL_STAT_PASS_NO_ROUTE,
    );
}

#[test]
fn local_mirror_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    lab.apply(&[
        lab.route_kind("10.0.2.1/32", RouteEntry::Local),
        lab.route_kind("2001:db8:2::1/128", RouteEntry::Local),
    ]);
    lab.pass(
        &f4(&lab, &udp4(Ipv4Addr::new(10, 0, 2, 1))),
        S::ACCEL_STAT_PASS_LOCAL,
    );
    lab.pass(
        &f6(&lab, &udp6(a6("2001:db8:2::1"))),
        S::ACCEL_STAT_PASS_LOCAL,
    );
}

#[test]
fn local_fib_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    // --mode fib: the router's own addresses, a directed broadcast, and
    // IPv6's subnet-router anycast address, as bpf_fib_lookup sees them.
    lab.apply(&[Change::Config(C::ACCEL_CFG_FIB_ONLY.0)]);
    lab.pass(
        &f4(&lab, &udp4(Ipv4Addr::new(10, 0, 2, 1))),
        S::ACCEL_STAT_PASS_LOCAL,
    );
    lab.pass(
        &f4(&lab, &udp4(Ipv4Addr::new(10, 0, 1, 1))),
        S::ACCEL_STAT_PASS_LOCAL,
    );
    lab.pass(
        &f4(&lab, &udp4(Ipv4Addr::new(10, 0, 2, 255))),
        S::ACCEL_STAT_PASS_LOCAL,
    );
    lab.pass(
        &f6(&lab, &udp6(a6("2001:db8:2::1"))),
        S::ACCEL_STAT_PASS_LOCAL,
    );
    lab.pass(
        &f6(&lab, &udp6(a6("2001:db8:2::"))),
        S::ACCEL_STAT_PASS_LOCAL,
    );
}

#[test]
fn no_route_anywhere_v4_v6() {
    // Neither the mirror nor the kernel has a route. bpf_fib_lookup answers
    // NOT_FWDED, as for local destinations; the mirror's local table tells
    // the two apart, and the packet counts as no route, as the kernel's
    // own statistics count it (it sends the ICMP error either way).
    let Some(lab) = Lab::new() else { return };
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_NO_ROUTE);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_NO_ROUTE);
    // Without a lease too (a withdrawal's backlog, say).
    lab.dp.maps.set_deadlines(0, u64::MAX).unwrap();
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_NO_ROUTE);
    // A local destination the mirror knows stays local.
    lab.apply(&[lab.route_kind("10.0.2.1/32", RouteEntry::Local)]);
    lab.pass(
        &f4(&lab, &udp4(Ipv4Addr::new(10, 0, 2, 1))),
        S::ACCEL_STAT_PASS_LOCAL,
    );
    // In --mode fib nothing tells them apart: local, as before.
    lab.apply(&[Change::Config(C::ACCEL_CFG_FIB_ONLY.0)]);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_LOCAL);
}

#[test]
fn no_neighbour_anywhere_v4() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    // Mirror miss, kernel route without neighbour.
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_NO_NEIGH);
    // Mirror route without neighbour, kernel neither.
    lab.apply(&lab.route("198.51.100.0/24", &lab.out, Some(GW4), 1));
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_NO_NEIGH);
    // Connected destination, no neighbour.
    lab.pass(&f4(&lab, &udp4(HOST4)), S::ACCEL_STAT_PASS_NO_NEIGH);
}

#[test]
fn no_neighbour_anywhere_v6() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_NO_NEIGH);
    lab.apply(&lab.route("2001:db8:100::/48", &lab.out, Some(GW6), 1));
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_NO_NEIGH);
    lab.pass(&f6(&lab, &udp6(host6())), S::ACCEL_STAT_PASS_NO_NEIGH);
}

// ------------------------------------------------------------- TTL

#[test]
fn ttl_1_and_0_pass_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    lab.pass(&f4(&lab, &udp4(REMOTE4).ttl(1)), S::ACCEL_STAT_PASS_TTL);
    lab.pass(&f4(&lab, &udp4(REMOTE4).ttl(0)), S::ACCEL_STAT_PASS_TTL);
}

/// The route decides before the TTL, as in the kernel (ip_route_input runs
/// before ip_forward): a TTL-1 packet for the router itself (eBGP sessions
/// send TTL 1) is local delivery, not an expired transit packet, and one
/// for a blackhole is dropped silently.
#[test]
fn ttl_1_counts_as_what_its_route_decides_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    lab.apply(&[
        lab.route_kind("10.0.2.1/32", RouteEntry::Local),
        lab.route_kind("2001:db8:2::1/128", RouteEntry::Local),
        lab.route_kind("192.0.2.0/24", RouteEntry::Blackhole),
    ]);
    lab.pass(
        &f4(&lab, &udp4(Ipv4Addr::new(10, 0, 2, 1)).ttl(1)),
        S::ACCEL_STAT_PASS_LOCAL,
    );
    lab.pass(
        &f6(&lab, &udp6(a6("2001:db8:2::1")).hop(1)),
        S::ACCEL_STAT_PASS_LOCAL,
    );
    lab.drop(
        &f4(&lab, &udp4(Ipv4Addr::new(192, 0, 2, 9)).ttl(1)),
        S::ACCEL_STAT_DROP_BLACKHOLE,
    );
}

#[test]
fn hop_limit_1_and_0_pass_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    lab.pass(&f6(&lab, &udp6(remote6()).hop(1)), S::ACCEL_STAT_PASS_TTL);
    lab.pass(&f6(&lab, &udp6(remote6()).hop(0)), S::ACCEL_STAT_PASS_TTL);
}

#[test]
fn ttl_1_pass_on_fib_path_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.pass(&f4(&lab, &udp4(REMOTE4).ttl(1)), S::ACCEL_STAT_PASS_TTL);
    lab.pass(&f6(&lab, &udp6(remote6()).hop(1)), S::ACCEL_STAT_PASS_TTL);
}

// ---------------------------------------------------------- options

#[test]
fn ipv4_options_pass() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let mut p = udp4(REMOTE4);
    p.options = vec![1, 1, 1, 0]; // NOP NOP NOP EOL: ihl 6
    lab.pass(&f4(&lab, &p), S::ACCEL_STAT_PASS_OPTIONS);
    // Record route (ihl 15 would be the max; 3 slots here: ihl 9).
    let mut p = udp4(REMOTE4);
    p.options = vec![7, 15, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    lab.pass(&f4(&lab, &p), S::ACCEL_STAT_PASS_OPTIONS);
}

#[test]
fn ipv6_hop_by_hop_pass() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let mut p = udp6(remote6());
    // Hop-by-hop header (next: UDP, len 0, PadN 4) then the UDP datagram.
    let mut payload = vec![PROTO_UDP, 0, 1, 4, 0, 0, 0, 0];
    payload.extend(udp(40000, 5001, 10));
    p.next = PROTO_HOPOPTS;
    p.payload = payload;
    lab.pass(&f6(&lab, &p), S::ACCEL_STAT_PASS_OPTIONS);
}

// --------------------------------------------------- special addresses

#[test]
fn special_addresses_pass_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    kernel_neighs(&lab);
    lab.ip(&["route add default via 10.0.2.2 dev out0"]);
    let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    for (src, dst) in [
        (SRC4, a("224.0.0.5")),
        (SRC4, a("239.1.2.3")),
        (SRC4, a("127.0.0.1")),
        (SRC4, a("127.1.2.3")),
        (SRC4, a("0.0.0.0")),
        (SRC4, a("0.1.2.3")),
        (SRC4, a("255.255.255.255")),
        (SRC4, a("240.0.0.1")),
        // route_localnet decides for loopback sources: the kernel's call.
        (a("127.0.0.1"), REMOTE4),
    ] {
        lab.pass(
            &f4(&lab, &V4::udp(src, dst)),
            S::ACCEL_STAT_PASS_SPECIAL_ADDR,
        );
    }
    // Martian sources of a unicast destination: ip_route_input_slow()
    // drops them before any lookup.
    for src in [
        "224.0.0.5",
        "239.1.2.3",
        "0.0.0.0",
        "0.1.2.3",
        "255.255.255.255",
    ] {
        lab.drop(
            &f4(&lab, &V4::udp(a(src), REMOTE4)),
            S::ACCEL_STAT_DROP_MARTIAN_SRC,
        );
    }
}

#[test]
fn special_addresses_pass_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    kernel_neighs(&lab);
    lab.ip(&["route add default via 2001:db8:2::2 dev out0"]);
    for (src, dst) in [
        (src6(), a6("ff02::1")),
        (src6(), a6("ff0e::1234")),
        (src6(), a6("fe80::1")),
        (src6(), a6("febf::1")),
        (src6(), a6("::")),
        (src6(), a6("::ffff:198.51.100.7")),
        (a6("fe80::1"), remote6()),
        (a6("::ffff:10.0.1.2"), remote6()),
    ] {
        lab.pass(
            &f6(&lab, &V6::udp(src, dst)),
            S::ACCEL_STAT_PASS_SPECIAL_ADDR,
        );
    }
    // ip6_rcv_core() drops these off loopback: ::1 either way, a
    // multicast source.
    for (src, dst) in [
        (src6(), a6("::1")),
        (a6("::1"), remote6()),
        (a6("ff02::1"), remote6()),
    ] {
        lab.drop(&f6(&lab, &V6::udp(src, dst)), S::ACCEL_STAT_DROP_HDR_ERRORS);
    }
}

// ------------------------------------------------------- L2 filtering

#[test]
fn non_ip_passes() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    // ARP request who-has 10.0.1.1 tell 10.0.1.2.
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&IN_PEER_MAC);
    arp.extend_from_slice(&[10, 0, 1, 2]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 0, 1, 1]);
    lab.pass(
        &eth([0xff; 6], IN_PEER_MAC, ETH_P_ARP, &arp),
        S::ACCEL_STAT_PASS_NON_IP,
    );
    lab.pass(
        &eth(lab.inp.mac, IN_PEER_MAC, ETH_P_ARP, &arp),
        S::ACCEL_STAT_PASS_NON_IP,
    );
    // An Ethernet header and nothing else.
    lab.pass(
        &eth(lab.inp.mac, IN_PEER_MAC, 0x88cc, &[]),
        S::ACCEL_STAT_PASS_NON_IP,
    );
}

#[test]
fn not_for_us_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let p4 = udp4(REMOTE4).build();
    let p6 = udp6(remote6()).build();
    for dst in [
        [0x02, 0, 0, 0, 0x09, 0x09],
        [0xff; 6],
        [0x01, 0x00, 0x5e, 0x00, 0x00, 0x05],
        [0x33, 0x33, 0, 0, 0, 1],
        OUT_MAC,
    ] {
        lab.pass(
            &eth(dst, IN_PEER_MAC, ETH_P_IP, &p4),
            S::ACCEL_STAT_PASS_NOT_FOR_US,
        );
        lab.pass(
            &eth(dst, IN_PEER_MAC, ETH_P_IPV6, &p6),
            S::ACCEL_STAT_PASS_NOT_FOR_US,
        );
    }
}

#[test]
fn forwarding_disabled_on_ingress_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let flags = F::ACCEL_IF_UP.0 | F::ACCEL_IF_FWD6.0;
    lab.apply(&[lab.put_iface(&lab.inp, flags, 1500)]);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_FWD_DISABLED);
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn forwarding_disabled_on_ingress_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let flags = F::ACCEL_IF_UP.0 | F::ACCEL_IF_FWD4.0;
    lab.apply(&[lab.put_iface(&lab.inp, flags, 1500)]);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_FWD_DISABLED);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn forwarding_disabled_in_kernel_fib_path_v4_v6() {
    // The mirror's flags say on, the kernel's sysctl says off: on the fib
    // path bpf_fib_lookup refuses with FWD_DISABLED.
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.sysctl(&[
        "net.ipv4.conf.in0.forwarding=0",
        "net.ipv6.conf.in0.forwarding=0",
    ]);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_FWD_DISABLED);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_FWD_DISABLED);
}

// ------------------------------------------------------------------ MTU

#[test]
fn mtu_mirror_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    lab.ip(&["link set out0 mtu 1400"]);
    lab.apply(&[lab.put_iface(&lab.out, FLAGS_ALL, 1400)]);
    let ok = f4(&lab, &udp4(REMOTE4).total(1400));
    lab.forward(&ok, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    lab.pass(
        &f4(&lab, &udp4(REMOTE4).total(1401)),
        S::ACCEL_STAT_PASS_MTU,
    );
    // Without DF too: the kernel fragments.
    let mut p = udp4(REMOTE4).total(1401);
    p.frag = 0;
    lab.pass(&f4(&lab, &p), S::ACCEL_STAT_PASS_MTU);
}

#[test]
fn mtu_mirror_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    lab.ip(&["link set out0 mtu 1400"]);
    lab.apply(&[lab.put_iface(&lab.out, FLAGS_ALL, 1400)]);
    let ok = f6(&lab, &udp6(remote6()).total(1400));
    lab.forward(&ok, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    lab.pass(
        &f6(&lab, &udp6(remote6()).total(1401)),
        S::ACCEL_STAT_PASS_MTU,
    );
}

/// IPv6 forwards up to the interface's IPv6 MTU (conf/<if>/mtu), which may
/// be below the device MTU that limits IPv4.
#[test]
fn ipv6_mtu_is_the_interface_ipv6_mtu() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let mut c = lab.put_iface(&lab.out, FLAGS_ALL, 1500);
    if let Change::PutIface { entry, .. } = &mut c {
        entry.mtu6 = 1280;
    }
    lab.apply(&[c]);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4).total(1500)),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    let ok = f6(&lab, &udp6(remote6()).total(1280));
    lab.forward(&ok, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    lab.pass(
        &f6(&lab, &udp6(remote6()).total(1281)),
        S::ACCEL_STAT_PASS_MTU,
    );
}

#[test]
fn mtu_fib_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.ip(&["link set out0 mtu 1400"]);
    lab.apply(&[lab.put_iface(&lab.out, FLAGS_ALL, 1400)]);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4).total(1400)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.pass(
        &f4(&lab, &udp4(REMOTE4).total(1401)),
        S::ACCEL_STAT_PASS_MTU,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6()).total(1400)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.pass(
        &f6(&lab, &udp6(remote6()).total(1401)),
        S::ACCEL_STAT_PASS_MTU,
    );
}

#[test]
fn mtu_fib_kernel_smaller_than_map_v4_v6() {
    // The kernel's MTU (bpf_fib_lookup's FRAG_NEEDED) is checked even when
    // the map still has the old, larger MTU.
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.ip(&["link set out0 mtu 1400"]);
    lab.pass(
        &f4(&lab, &udp4(REMOTE4).total(1401)),
        S::ACCEL_STAT_PASS_MTU,
    );
    lab.pass(
        &f6(&lab, &udp6(remote6()).total(1401)),
        S::ACCEL_STAT_PASS_MTU,
    );
}

// --------------------------------------------------------------- egress

#[test]
fn egress_hairpin_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    let i = lab.inp;
    let mut c = lab.route("198.51.100.0/24", &i, Some("10.0.1.3"), 1);
    c.extend(lab.route("2001:db8:100::/48", &i, Some("2001:db8:1::3"), 2));
    c.push(lab.neigh(&i, "10.0.1.3", MIRROR_MAC));
    c.push(lab.neigh(&i, "2001:db8:1::3", MIRROR_MAC));
    lab.apply(&c);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_EGRESS);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_EGRESS);
}

#[test]
fn egress_hairpin_fib_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.ip(&[
        "route add 198.51.100.0/24 via 10.0.1.3 dev in0",
        "route add 2001:db8:100::/48 via 2001:db8:1::3 dev in0",
        "neigh add 10.0.1.3 lladdr 02:bb:00:00:00:01 dev in0 nud permanent",
        "neigh add 2001:db8:1::3 lladdr 02:bb:00:00:00:01 dev in0 nud permanent",
    ]);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_EGRESS);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_EGRESS);
}

#[test]
fn egress_not_accels_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    let x = lab.x;
    let mut c = lab.route("198.51.100.0/24", &x, Some("10.0.3.2"), 1);
    c.extend(lab.route("2001:db8:100::/48", &x, Some("2001:db8:3::2"), 2));
    c.push(lab.neigh(&x, "10.0.3.2", MIRROR_MAC));
    c.push(lab.neigh(&x, "2001:db8:3::2", MIRROR_MAC));
    lab.apply(&c);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_EGRESS);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_EGRESS);
}

#[test]
fn egress_not_accels_fib_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    lab.ip(&[
        "route add 198.51.100.0/24 via 10.0.3.2 dev x0",
        "route add 2001:db8:100::/48 via 2001:db8:3::2 dev x0",
        "neigh add 10.0.3.2 lladdr 02:bb:00:00:00:01 dev x0 nud permanent",
        "neigh add 2001:db8:3::2 lladdr 02:bb:00:00:00:01 dev x0 nud permanent",
    ]);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_EGRESS);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_EGRESS);
}

#[test]
fn egress_down_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let flags = F::ACCEL_IF_FWD4.0 | F::ACCEL_IF_FWD6.0;
    lab.apply(&[lab.put_iface(&lab.out, flags, 1500)]);
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_EGRESS);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_EGRESS);
}

// -------------------------------------------------------- source checks

#[test]
fn source_is_local_address_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    lab.apply(&[lab.local4("10.0.2.1"), lab.local4("10.0.1.1")]);
    for src in [Ipv4Addr::new(10, 0, 2, 1), Ipv4Addr::new(10, 0, 1, 1)] {
        lab.pass(
            &f4(&lab, &V4::udp(src, REMOTE4)),
            S::ACCEL_STAT_PASS_SRC_CHECK,
        );
    }
    // A neighbour's address is fine.
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn source_is_local_address_fib_v4() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.apply(&[lab.local4("10.0.2.1")]);
    let p = V4::udp(Ipv4Addr::new(10, 0, 2, 1), REMOTE4);
    lab.pass(&f4(&lab, &p), S::ACCEL_STAT_PASS_SRC_CHECK);
}

#[test]
fn strict_rp_filter_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let i = lab.inp;
    lab.apply(&lab.route("10.0.1.0/24", &i, None, 3));
    lab.apply(&lab.route("10.0.3.0/24", &lab.x, None, 4));
    let flags = FLAGS_ALL | F::ACCEL_IF_RPF_STRICT.0;
    lab.apply(&[lab.put_iface(&i, flags, 1500)]);
    // Source reachable back through in0: forwarded.
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    // Source routed through x0, and a source without any route: the
    // kernel rejects both (-EXDEV, IPReversePathFilter): dropped here.
    let p = V4::udp(Ipv4Addr::new(10, 0, 3, 5), REMOTE4);
    lab.drop(&f4(&lab, &p), S::ACCEL_STAT_DROP_RPFILTER);
    let p = V4::udp(Ipv4Addr::new(192, 0, 2, 5), REMOTE4);
    lab.drop(&f4(&lab, &p), S::ACCEL_STAT_DROP_RPFILTER);
}

/// __fib_validate_source() with loose rp_filter: any unicast route back is
/// enough, unless the ingress has no IPv4 address (then only one through
/// the ingress); no route, and a blackhole or unreachable route (whose
/// lookup fails in the kernel as no route does: source RTBH), are -EXDEV:
/// dropped, the blackhole's drops counted under its prefix.
#[test]
fn loose_rp_filter_and_source_rtbh_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let i = lab.inp;
    lab.apply(&lab.route("10.0.1.0/24", &i, None, 3));
    lab.apply(&lab.route("10.0.3.0/24", &lab.x, None, 4));
    lab.apply(&[
        Change::PutBlackhole {
            id: 5,
            prefix: pfx("192.0.2.0/25"),
        },
        Change::PutRoute {
            prefix: pfx("192.0.2.0/25"),
            entry: RouteEntry::Blackhole,
            nh_id: 5,
        },
        lab.route_kind("192.0.2.128/25", RouteEntry::Unreachable),
    ]);
    let loose = FLAGS_ALL | F::ACCEL_IF_RPF_LOOSE.0;
    lab.apply(&[lab.put_iface(&i, loose, 1500)]);
    let from = |a, b, c, d| f4(&lab, &V4::udp(Ipv4Addr::new(a, b, c, d), REMOTE4));
    let o = lab.out;
    lab.forward(&from(10, 0, 3, 5), MIRROR_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
    lab.drop(&from(203, 0, 113, 5), S::ACCEL_STAT_DROP_RPFILTER);
    let bh = from(192, 0, 2, 5);
    lab.drop(&bh, S::ACCEL_STAT_DROP_RPFILTER);
    lab.drop(&from(192, 0, 2, 200), S::ACCEL_STAT_DROP_RPFILTER);
    let per_prefix = lab.dp.maps.source_blackhole_drops();
    let slot = per_prefix
        .iter()
        .find(|(p, _)| p.map(|p| p.to_string()).as_deref() == Some("192.0.2.0/25"))
        .expect("the blackhole's slot");
    assert_eq!(
        (slot.1.packets, slot.1.bytes),
        (HOOKS, HOOKS * bh.len() as u64)
    );
    // No IPv4 address on the ingress: a source routed elsewhere is
    // rejected even in loose mode; one routed back through it is not.
    lab.apply(&[lab.put_iface(&i, loose | F::ACCEL_IF_NO_ADDR4.0, 1500)]);
    lab.drop(&from(10, 0, 3, 5), S::ACCEL_STAT_DROP_RPFILTER);
    lab.forward(&from(10, 0, 1, 5), MIRROR_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
    // rp_filter off: no check at all (the kernel's fast path).
    lab.apply(&[lab.put_iface(&i, FLAGS_ALL, 1500)]);
    lab.forward(&bh, MIRROR_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
}

/// The kernel's reverse lookup has the egress as its input interface: with
/// an `ip rule iif EGRESS`, the mirror must not judge (let alone drop) the
/// source; bpf_fib_lookup does, and leaves a rejection to the kernel.
#[test]
fn egress_iif_rule_leaves_the_source_check_to_the_kernels_lookup_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let i = lab.inp;
    lab.apply(&lab.route("10.0.3.0/24", &lab.x, None, 4));
    lab.apply(&[lab.put_iface(&i, FLAGS_ALL | F::ACCEL_IF_RPF_STRICT.0, 1500)]);
    let spoofed = f4(&lab, &V4::udp(Ipv4Addr::new(10, 0, 3, 5), REMOTE4));
    lab.drop(&spoofed, S::ACCEL_STAT_DROP_RPFILTER);
    let o = lab.out;
    lab.apply(&[lab.put_iface(&o, FLAGS_ALL | F::ACCEL_IF_RULES4.0, 1500)]);
    lab.pass(&spoofed, S::ACCEL_STAT_PASS_SRC_CHECK);
}

#[test]
fn rp_filter_fib_path_v4() {
    // With --mode fib the reverse-path check is a bpf_fib_lookup (the
    // mirror, empty here, is never consulted).
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.apply(&[Change::Config(C::ACCEL_CFG_FIB_ONLY.0)]);
    let i = lab.inp;
    lab.apply(&[lab.put_iface(&i, FLAGS_ALL | F::ACCEL_IF_RPF_STRICT.0, 1500)]);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    // 10.0.3.0/24 is behind x0; 192.0.2.0/24 has no route at all.
    let via_x = f4(&lab, &V4::udp(Ipv4Addr::new(10, 0, 3, 5), REMOTE4));
    let unrouted = f4(&lab, &V4::udp(Ipv4Addr::new(192, 0, 2, 5), REMOTE4));
    lab.pass(&via_x, S::ACCEL_STAT_PASS_SRC_CHECK);
    lab.pass(&unrouted, S::ACCEL_STAT_PASS_SRC_CHECK);
    // Loose mode accepts any routed source.
    lab.apply(&[lab.put_iface(&i, FLAGS_ALL | F::ACCEL_IF_RPF_LOOSE.0, 1500)]);
    lab.forward(&via_x, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
    lab.pass(&unrouted, S::ACCEL_STAT_PASS_SRC_CHECK);
}

// ------------------------------------------------------------------ ICMP

#[test]
fn icmp_errors_pass_echo_forwarded_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    // Time exceeded quoting an inner header.
    let inner = V4::udp(REMOTE4, SRC4).build();
    // Time exceeded (11), unreachable (3), source quench (4), redirect
    // (5), parameter problem (12).
    for typ in [11u8, 3, 4, 5, 12] {
        let p = V4::icmp(SRC4, REMOTE4, typ, 0, &inner[..28]);
        lab.pass(&f4(&lab, &p), S::ACCEL_STAT_PASS_ICMP_ERROR);
    }
    // Echo request and reply are plain packets.
    let p = V4::icmp(SRC4, REMOTE4, 8, 0, b"ping-payload");
    lab.forward(
        &f4(&lab, &p),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    let p = V4::icmp(SRC4, REMOTE4, 0, 0, b"ping-payload");
    lab.forward(
        &f4(&lab, &p),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn icmp_errors_pass_echo_forwarded_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let inner = V6::udp(remote6(), src6()).build();
    // Unreachable (1), packet too big (2), time exceeded (3), parameter
    // problem (4).
    for typ in [3u8, 1, 2, 4] {
        let p = V6::icmp(src6(), remote6(), typ, 0, &inner[..48]);
        lab.pass(&f6(&lab, &p), S::ACCEL_STAT_PASS_ICMP_ERROR);
    }
    for typ in [128u8, 129] {
        let p = V6::icmp(src6(), remote6(), typ, 0, b"ping-payload");
        lab.forward(
            &f6(&lab, &p),
            MIRROR_MAC,
            &lab.out,
            S::ACCEL_STAT_FWD_MIRROR,
        );
    }
}

/// With proxy_ndp, ip6_forward() answers neighbour discovery for a proxied
/// address itself (ip6_forward_proxy_check()); the proxy table is not
/// mirrored, so every such message goes to the kernel. Other ICMPv6 types
/// around them are forwarded.
#[test]
fn neighbour_discovery_to_forward_goes_to_the_kernel_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    // Router solicitation and advertisement, neighbour solicitation and
    // advertisement, redirect.
    for typ in 133u8..=137 {
        let p = V6::icmp(src6(), remote6(), typ, 0, &[0u8; 20]);
        lab.pass(&f6(&lab, &p), S::ACCEL_STAT_PASS_NDISC);
    }
    for typ in [132u8, 138] {
        let p = V6::icmp(src6(), remote6(), typ, 0, &[0u8; 20]);
        lab.forward(
            &f6(&lab, &p),
            MIRROR_MAC,
            &lab.out,
            S::ACCEL_STAT_FWD_MIRROR,
        );
    }
}

// ----------------------------------------------------------------- lease

#[test]
fn no_control_plane_passes_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.dp.maps.set_deadlines(0, 0).unwrap();
    lab.pass(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_PASS_INACTIVE);
    lab.pass(&f6(&lab, &udp6(remote6())), S::ACCEL_STAT_PASS_INACTIVE);
    // Even garbage is left alone without a control plane.
    lab.pass(
        &f4(&lab, &udp4(REMOTE4).ttl(1)),
        S::ACCEL_STAT_PASS_INACTIVE,
    );
    lab.dp.maps.set_deadlines(u64::MAX, u64::MAX).unwrap();
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn lapsed_lease_forwards_through_the_kernels_lookup_v4_v6() {
    // The mirror says MIRROR_MAC, the kernel KERNEL_MAC: without a lease
    // only the kernel's answer may be used.
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.dp.maps.set_deadlines(0, u64::MAX).unwrap();
    let before = lab.dp.maps.stats(lab.inp.slot).unwrap().no_lease;
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f6(&lab, &udp6(remote6())),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    // A stale blackhole in the mirror that the kernel no longer has.
    lab.apply(&[lab.route_kind("198.51.100.0/24", RouteEntry::Blackhole)]);
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    let after = lab.dp.maps.stats(lab.inp.slot).unwrap().no_lease;
    assert_eq!(
        after - before,
        3 * HOOKS,
        "no_lease counts the packets decided without the mirror (each program's)"
    );
    // The lease back: the mirror decides again (its blackhole drops).
    lab.dp.maps.set_deadlines(u64::MAX, u64::MAX).unwrap();
    lab.drop(&f4(&lab, &udp4(REMOTE4)), S::ACCEL_STAT_DROP_BLACKHOLE);
}

#[test]
fn lapsed_lease_checks_sources_as_strictly_as_the_kernel_could() {
    // rp_filter is off in the mirror, but a lapsed lease means that may be
    // stale: a source routed back through another interface goes to the
    // kernel; one routed back through the ingress is forwarded.
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.dp.maps.set_deadlines(0, u64::MAX).unwrap();
    lab.forward(
        &f4(&lab, &udp4(REMOTE4)),
        KERNEL_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    let via_x = f4(&lab, &V4::udp(Ipv4Addr::new(10, 0, 3, 5), REMOTE4));
    lab.pass(&via_x, S::ACCEL_STAT_PASS_SRC_CHECK);
    // The router's own address as source, unknown to the mirror's local
    // addresses: the kernel's reverse lookup finds it local.
    let own = f4(&lab, &V4::udp(Ipv4Addr::new(10, 0, 2, 1), REMOTE4));
    lab.pass(&own, S::ACCEL_STAT_PASS_SRC_CHECK);
    // With the lease, rp_filter off as mirrored: forwarded.
    lab.dp.maps.set_deadlines(u64::MAX, u64::MAX).unwrap();
    lab.forward(&via_x, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
}

#[test]
fn the_leases_clock_is_the_datapaths() {
    let Some(mut lab) = Lab::new() else { return };
    let own = accel::runtime::monotonic_coarse_ns();
    let dp = accel::datapath::clock::datapath_now_ns(&mut lab.dp.skel.progs.accel_clock).unwrap();
    let diff = dp.abs_diff(own);
    assert!(
        diff < 1_000_000_000,
        "datapath clock {dp} vs host monotonic {own}: {diff} ns apart"
    );
}

// ------------------------------------------------------------- malformed

#[test]
fn malformed_frame_shorter_than_ethernet() {
    // Linux 6.18's BPF_PROG_TEST_RUN refuses XDP data shorter than an
    // Ethernet header (even after XDP metadata), so such a frame cannot
    // reach the program this way: check the refusal, then the shortest
    // frames it accepts, with and without metadata in front (which checks
    // that the program starts at ctx->data).
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    for meta in [0usize, 4] {
        let frame: Vec<u8> = [lab.inp.mac, IN_PEER_MAC].concat();
        let mut data = vec![0u8; meta];
        data.extend_from_slice(&frame);
        let md: [u32; 6] = [meta as u32, data.len() as u32, 0, lab.inp.ifindex, 0, 0];
        let mut ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let input = libbpf_rs::ProgramInput {
            context_in: Some(&mut ctx),
            data_in: Some(&data),
            ..Default::default()
        };
        let r = lab.dp.skel.progs.accel_xdp.test_run(input);
        assert!(
            r.is_err(),
            "a 12-byte frame was accepted by BPF_PROG_TEST_RUN"
        );

        for ethertype in [ETH_P_IP, ETH_P_IPV6] {
            let frame = eth(lab.inp.mac, IN_PEER_MAC, ethertype, &[]);
            // ip_rcv_core()/ip6_rcv_core(): no room for the header.
            lab.expect(
                &frame,
                meta,
                XDP_DROP,
                &frame,
                S::ACCEL_STAT_DROP_HDR_ERRORS,
            );
        }
    }
}

#[test]
fn malformed_truncated_ipv4_header() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let full = f4(&lab, &udp4(REMOTE4));
    for len in [ETH_HLEN, ETH_HLEN + 1, ETH_HLEN + 19] {
        lab.drop(&full[..len], S::ACCEL_STAT_DROP_HDR_ERRORS);
    }
}

#[test]
fn malformed_ipv4_tot_len_past_frame() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let mut p = udp4(REMOTE4);
    p.tot_len = Some(p.build().len() as u16 + 1);
    lab.drop(&f4(&lab, &p), S::ACCEL_STAT_DROP_TRUNCATED);
    p.tot_len = Some(0xffff);
    lab.drop(&f4(&lab, &p), S::ACCEL_STAT_DROP_TRUNCATED);
}

#[test]
fn malformed_ipv4_tot_len_below_20() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let mut p = udp4(REMOTE4);
    for t in [0u16, 19] {
        p.tot_len = Some(t);
        lab.drop(&f4(&lab, &p), S::ACCEL_STAT_DROP_HDR_ERRORS);
    }
}

#[test]
fn malformed_ipv4_version_not_4() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    for v in [0u8, 6, 5, 15] {
        let mut p = udp4(REMOTE4);
        p.version = v;
        lab.drop(&f4(&lab, &p), S::ACCEL_STAT_DROP_HDR_ERRORS);
    }
    // An IPv6 packet in an IPv4 ethertype.
    let b = udp6(remote6()).build();
    lab.drop(
        &eth(lab.inp.mac, IN_PEER_MAC, ETH_P_IP, &b),
        S::ACCEL_STAT_DROP_HDR_ERRORS,
    );
}

#[test]
fn malformed_ipv4_ihl_below_5() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let mut b = udp4(REMOTE4).build();
    b[0] = 0x44;
    lab.drop(
        &eth(lab.inp.mac, IN_PEER_MAC, ETH_P_IP, &b),
        S::ACCEL_STAT_DROP_HDR_ERRORS,
    );
}

#[test]
fn malformed_ipv4_bad_checksum() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let p = udp4(REMOTE4);
    let good = csum(&p.build()[..20]);
    for bad in [good ^ 0x0001, good.wrapping_add(0x0100), 0, 0xffff] {
        if bad == good {
            continue;
        }
        let mut q = p.clone();
        q.check = Some(bad);
        lab.drop(&f4(&lab, &q), S::ACCEL_STAT_DROP_HDR_ERRORS);
    }
}

#[test]
fn malformed_truncated_ipv6_header() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let full = f6(&lab, &udp6(remote6()));
    for len in [ETH_HLEN, ETH_HLEN + 1, ETH_HLEN + 39] {
        lab.drop(&full[..len], S::ACCEL_STAT_DROP_HDR_ERRORS);
    }
}

#[test]
fn malformed_ipv6_payload_len_past_frame() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let mut p = udp6(remote6());
    p.payload_len = Some(p.payload.len() as u16 + 1);
    lab.drop(&f6(&lab, &p), S::ACCEL_STAT_DROP_TRUNCATED);
    p.payload_len = Some(0xffff);
    lab.drop(&f6(&lab, &p), S::ACCEL_STAT_DROP_TRUNCATED);
}

#[test]
fn malformed_ipv6_version_not_6() {
    let Some(lab) = Lab::new() else { return };
    mirror_default(&lab);
    let mut p = udp6(remote6());
    p.version = 4;
    lab.drop(&f6(&lab, &p), S::ACCEL_STAT_DROP_HDR_ERRORS);
}

// ---------------------------------------------------- padding, fragments

#[test]
fn ethernet_padding_trimmed_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let mut p = udp4(REMOTE4);
    p.payload = udp(40000, 5001, 0);
    let mut frame = f4(&lab, &p);
    assert_eq!(frame.len(), 14 + 28);
    frame.resize(60, 0);
    lab.forward(&frame, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
    let (_, out) = lab.run_on(lab.inp.ifindex, &frame, 0);
    assert_eq!(out.len(), 14 + 28, "padding must be cut");
}

#[test]
fn ethernet_padding_trimmed_fib_v4() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    let mut p = udp4(REMOTE4);
    p.payload = udp(40000, 5001, 0);
    let mut frame = f4(&lab, &p);
    frame.resize(60, 0xee);
    lab.forward(&frame, KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
}

#[test]
fn trailing_bytes_trimmed_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let mut frame = f6(&lab, &udp6(remote6()));
    frame.extend_from_slice(&[0xee; 7]);
    lab.forward(&frame, MIRROR_MAC, &lab.out, S::ACCEL_STAT_FWD_MIRROR);
}

#[test]
fn fragments_forwarded_v4() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    // First fragment (MF, offset 0), middle (MF, offset 185), last
    // (offset 370), and DF-less unfragmented.
    for frag in [IP_MF, IP_MF | 185, 370, 0] {
        let mut p = udp4(REMOTE4);
        p.frag = frag;
        lab.forward(
            &f4(&lab, &p),
            MIRROR_MAC,
            &lab.out,
            S::ACCEL_STAT_FWD_MIRROR,
        );
    }
    // A non-first fragment of an ICMP error is not an ICMP header.
    let mut p = V4::icmp(SRC4, REMOTE4, 11, 0, &[0; 28]);
    p.frag = 3;
    lab.forward(
        &f4(&lab, &p),
        MIRROR_MAC,
        &lab.out,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn fragments_forwarded_fib_v4() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    for frag in [IP_MF, IP_MF | 185, 370] {
        let mut p = udp4(REMOTE4);
        p.frag = frag;
        lab.forward(&f4(&lab, &p), KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
    }
}

#[test]
fn fragments_forwarded_v6() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    kernel_routes(&lab);
    kernel_neighs(&lab);
    // Fragment header: next UDP, reserved, offset 0 + M, identification.
    for off_m in [0x0001u16, 0x05a9, 0x05a8] {
        let mut payload = vec![PROTO_UDP, 0];
        payload.extend_from_slice(&off_m.to_be_bytes());
        payload.extend_from_slice(&0xdeadbeefu32.to_be_bytes());
        payload.extend(udp(40000, 5001, 16));
        let mut p = udp6(remote6());
        p.next = PROTO_FRAG6;
        p.payload = payload;
        lab.forward(
            &f6(&lab, &p),
            MIRROR_MAC,
            &lab.out,
            S::ACCEL_STAT_FWD_MIRROR,
        );
        lab.apply(&[Change::Config(C::ACCEL_CFG_FIB_ONLY.0)]);
        lab.forward(&f6(&lab, &p), KERNEL_MAC, &lab.out, S::ACCEL_STAT_FWD_FIB);
        lab.apply(&[Change::Config(0)]);
    }
}

#[test]
fn unknown_ingress_is_left_alone() {
    // A frame from an interface accel does not own: XDP_PASS, no counter.
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let f = eth(lab.x.mac, IN_PEER_MAC, ETH_P_IP, &udp4(REMOTE4).build());
    let before: Vec<_> = (0..3)
        .map(|s| lab.dp.maps.stats(s).unwrap().packets)
        .collect();
    let (action, out) = lab.run_on(lab.x.ifindex, &f, 0);
    let after: Vec<_> = (0..3)
        .map(|s| lab.dp.maps.stats(s).unwrap().packets)
        .collect();
    assert_eq!(action_name(action), action_name(XDP_PASS));
    assert_eq!(out, f, "{}", hex_diff("expected", &f, "got", &out));
    assert_eq!(before, after);
}

/// A link message applied after its device was deleted (a veth's "down"
/// comes just before its RTM_DELLINK): the devmap refuses a device that is
/// gone, and the interface's entry must go rather than the daemon stop.
/// On the build before, Maps::apply failed ("map tx_ports: update failed")
/// and `accel run` exited.
#[test]
fn an_interface_entry_for_a_deleted_device_is_removed_not_an_error() {
    let Some(lab) = Lab::new() else { return };
    let x = lab.x;
    lab.apply(&[lab.put_iface(&x, F::ACCEL_IF_UP.0, 1500)]);
    assert!(lab.dp.maps.iface(x.ifindex).is_some());
    lab.ip(&["link del x0"]);
    lab.apply(&[lab.put_iface(&x, 0, 1500)]);
    assert!(lab.dp.maps.iface(x.ifindex).is_none());
    // A device that exists still gets its entry.
    lab.apply(&[lab.put_iface(&lab.out, F::ACCEL_IF_UP.0, 1500)]);
    assert!(lab.dp.maps.iface(lab.out.ifindex).is_some());
}
