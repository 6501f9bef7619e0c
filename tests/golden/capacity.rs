//! Golden tests with tiny structures (load-time sizes, see
//! `accel::capacity::Limits`): a route without room in the mirror is
//! forwarded through bpf_fib_lookup with the kernel's answer for every
//! address of its degraded region, and from the mirror again once room
//! frees up; a local4 without room for every local address leaves source
//! validation to the kernel's reverse lookup.

use std::net::{Ipv4Addr, Ipv6Addr};

use accel::bpf::types::{accel_cfg_flags as C, accel_route_type as Rt, accel_stat as S};
use accel::capacity::Limits;
use accel::mirror::Change;

use super::from_kernel::{mirror_from_kernel, v4_frame as f4, v6_frame};
use super::lab::*;

const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
/// A second kernel neighbour MAC, for the more specific route.
const KERNEL_MAC2: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 0x02];

fn f6(lab: &Lab, dst: &str) -> Vec<u8> {
    let src: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    v6_frame(lab, src, dst.parse().unwrap())
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

/// The kernel and the mirror hold the same routes, but the kernel's
/// neighbours have KERNEL_MAC(2) and the mirror's MIRROR_MAC: the MAC a
/// frame leaves with tells which answered.
fn same_routes_v4(lab: &Lab) {
    lab.ip(&[
        "route add 198.51.100.0/25 via 10.0.2.2 dev out0",
        "route add 203.0.113.0/24 via 10.0.2.2 dev out0",
        "route add 203.0.113.0/25 via 10.0.2.3 dev out0",
        "neigh add 10.0.2.2 lladdr 02:bb:00:00:00:01 dev out0 nud permanent",
        "neigh add 10.0.2.3 lladdr 02:bb:00:00:00:02 dev out0 nud permanent",
    ]);
    let o = lab.out;
    // The first /25 takes both nodes (its /16's and its /24's);
    // 203.0.113.0/24 needs a node for 203.0.0.0/16.
    let mut c = lab.route("198.51.100.0/25", &o, Some("10.0.2.2"), 1);
    c.extend(lab.route("203.0.113.0/24", &o, Some("10.0.2.2"), 1));
    c.extend(lab.route("203.0.113.0/25", &o, Some("10.0.2.3"), 2));
    c.push(lab.neigh(&o, "10.0.2.2", MIRROR_MAC));
    c.push(lab.neigh(&o, "10.0.2.3", MIRROR_MAC));
    lab.apply(&c);
}

#[test]
fn ipv4_range_without_a_node_forwards_with_the_kernels_answer() {
    let Some(lab) = Lab::with_limits(&limits(|l| l.ipv4_trie = 2)) else {
        return;
    };
    same_routes_v4(&lab);
    let maps = &lab.dp.maps;
    let at = |a: &str| maps.route_for(a.parse().unwrap()).unwrap();
    assert_eq!(at("203.0.113.7").r#type, Rt::ACCEL_RT_FIB.0, "degraded");
    assert_eq!(at("198.51.100.7").r#type, Rt::ACCEL_RT_UNICAST.0);
    // Every address of the degraded /16 gets the kernel's own answer,
    // under the /25 and beside it.
    let o = lab.out;
    let t = Ipv4Addr::new;
    lab.forward(
        &f4(&lab, SRC4, t(203, 0, 113, 7)),
        KERNEL_MAC2,
        &o,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f4(&lab, SRC4, t(203, 0, 113, 200)),
        KERNEL_MAC,
        &o,
        S::ACCEL_STAT_FWD_FIB,
    );
    // The /24 that fits forwards from the mirror; beside its /25 the kernel
    // has no route, and neither has the mirror.
    let fits = f4(&lab, SRC4, t(198, 51, 100, 7));
    lab.forward(&fits, MIRROR_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
    lab.pass(
        &f4(&lab, SRC4, t(198, 51, 100, 200)),
        S::ACCEL_STAT_PASS_NO_ROUTE,
    );

    // The nodes free up: after their grace period the degraded /16 gets
    // them and forwards from the mirror.
    lab.apply(&[Change::DelRoute(pfx("198.51.100.0/25"))]);
    std::thread::sleep(accel::slots::GRACE);
    assert_eq!(maps.retry_routes().unwrap(), (1, 0));
    lab.forward(
        &f4(&lab, SRC4, t(203, 0, 113, 7)),
        MIRROR_MAC,
        &o,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    lab.forward(
        &f4(&lab, SRC4, t(203, 0, 113, 200)),
        MIRROR_MAC,
        &o,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

#[test]
fn ipv6_range_without_a_node_forwards_with_the_kernels_answer() {
    // 2001:db8:100::/48 takes all four lines (a node of one line per level
    // below the root); 2002:db8:200::/48 needs four nodes of its own.
    let Some(lab) = Lab::with_limits(&limits(|l| l.ipv6_trie = 4)) else {
        return;
    };
    lab.ip(&[
        "route add 2001:db8:100::/48 via 2001:db8:2::2 dev out0",
        "route add 2002:db8:200::/48 via 2001:db8:2::3 dev out0",
        "neigh add 2001:db8:2::2 lladdr 02:bb:00:00:00:01 dev out0 nud permanent",
        "neigh add 2001:db8:2::3 lladdr 02:bb:00:00:00:02 dev out0 nud permanent",
    ]);
    let o = lab.out;
    let mut c = lab.route("2001:db8:100::/48", &o, Some("2001:db8:2::2"), 1);
    c.extend(lab.route("2002:db8:200::/48", &o, Some("2001:db8:2::3"), 2));
    c.push(lab.neigh(&o, "2001:db8:2::2", MIRROR_MAC));
    c.push(lab.neigh(&o, "2001:db8:2::3", MIRROR_MAC));
    lab.apply(&c);
    let leaf = |a: &str| lab.dp.maps.route_for(a.parse().unwrap()).unwrap();
    assert_eq!(leaf("2002:db8:200::7").r#type, Rt::ACCEL_RT_FIB.0);
    lab.forward(
        &f6(&lab, "2002:db8:200::7"),
        KERNEL_MAC2,
        &o,
        S::ACCEL_STAT_FWD_FIB,
    );
    lab.forward(
        &f6(&lab, "2001:db8:100::7"),
        MIRROR_MAC,
        &o,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    // The whole degraded range answers as the kernel does: no route here.
    lab.pass(&f6(&lab, "2002:db8:2ff::1"), S::ACCEL_STAT_PASS_NO_ROUTE);
}

/// 198.51.100.0/24 through 10.0.2.2 on out0, in the kernel.
fn route_via_out0(lab: &Lab) {
    lab.ip(&[
        "route add 198.51.100.0/24 via 10.0.2.2 dev out0",
        "neigh add 10.0.2.2 lladdr 02:bb:00:00:00:01 dev out0 nud permanent",
    ]);
}

/// The lab's router owns 10.0.1.1, 10.0.2.1 and 10.0.3.1; local4 holds one.
/// A frame from another of them (spoofed) must reach the kernel, which
/// drops it as a martian source; a frame from a neighbour is forwarded.
#[test]
fn local4_without_room_leaves_source_checks_to_the_kernel() {
    let Some(lab) = Lab::with_limits(&limits(|l| l.local_addrs = 1)) else {
        return;
    };
    route_via_out0(&lab);
    let m = mirror_from_kernel(&lab, &limits(|l| l.local_addrs = 1));
    assert_ne!(m.config_flags() & C::ACCEL_CFG_LOCAL4_PARTIAL.0, 0);
    let remote = Ipv4Addr::new(198, 51, 100, 7);
    let spoofed = f4(&lab, Ipv4Addr::new(10, 0, 3, 1), remote);
    lab.pass(&spoofed, S::ACCEL_STAT_PASS_SRC_CHECK);
    let o = lab.out;
    lab.forward(
        &f4(&lab, SRC4, remote),
        KERNEL_MAC,
        &o,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    // Without the flag the same partial map would let the spoof through:
    // what the flag is for.
    lab.apply(&[Change::Config(
        m.config_flags() & !C::ACCEL_CFG_LOCAL4_PARTIAL.0,
    )]);
    lab.forward(&spoofed, KERNEL_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
}

/// local4_bits answers "not local" without the hash for sources whose bit
/// is clear. An address that shares 10.0.3.1's bit coming and going must
/// leave the bit set: a spoof of 10.0.3.1 still reaches the kernel.
#[test]
fn a_local_source_keeps_its_bit_when_another_address_sharing_it_goes() {
    let Some(lab) = Lab::with_limits(&limits(|_| {})) else {
        return;
    };
    route_via_out0(&lab);
    mirror_from_kernel(&lab, &limits(|_| {}));
    let remote = Ipv4Addr::new(198, 51, 100, 7);
    let spoofed = f4(&lab, Ipv4Addr::new(10, 0, 3, 1), remote);
    lab.pass(&spoofed, S::ACCEL_STAT_PASS_SRC_CHECK);
    // The fold is (first two bytes) ^ (last two bytes), read as the key's
    // native u32: [10, 0, 3, 1] and [9, 1, 0, 0] give the same bit on
    // either byte order.
    let twin = Ipv4Addr::new(9, 1, 0, 0);
    lab.apply(&[Change::PutLocal4(twin), Change::DelLocal4(twin)]);
    lab.pass(&spoofed, S::ACCEL_STAT_PASS_SRC_CHECK);
    // A source that is no local address, whatever its bit, is forwarded.
    let o = lab.out;
    lab.forward(
        &f4(&lab, SRC4, remote),
        KERNEL_MAC,
        &o,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    lab.forward(
        &f4(&lab, twin, remote),
        KERNEL_MAC,
        &o,
        S::ACCEL_STAT_FWD_MIRROR,
    );
}

/// An interface's entry goes into a fresh iface_versions slot at every
/// change. A burst of changes larger than the free slots leaves the
/// interface's own frames to the kernel (never a half-written entry), and
/// the capacity round gives it a slot again after the grace period. Next
/// hops through it carry their own copy of its entry (in slots of their
/// own), so frames routed out through it are still forwarded.
#[test]
fn an_interface_change_burst_waits_for_free_slots() {
    let Some(lab) = Lab::new() else {
        return;
    };
    let o = lab.out;
    let mut c = lab.route("198.51.100.0/24", &o, Some("10.0.2.2"), 1);
    c.push(lab.neigh(&o, "10.0.2.2", MIRROR_MAC));
    lab.apply(&c);
    let frame = f4(&lab, SRC4, Ipv4Addr::new(198, 51, 100, 7));
    lab.forward(&frame, MIRROR_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
    let n = accel::bpf::types::accel_limits::ACCEL_IFACE_VERSIONS.0 as usize;
    let burst: Vec<Change> = (0..n).map(|_| lab.put_iface(&o, FLAGS_ALL, 1500)).collect();
    lab.apply(&burst);
    // XDP only: the TC run marks in0 as a TC interface, a change that
    // needs an iface_versions slot, and there is none left.
    let want = forwarded(&frame, MIRROR_MAC, o.mac);
    lab.expect_on(
        Hook::Xdp,
        &frame,
        0,
        XDP_REDIRECT,
        &want,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    // A frame arriving on it is counted in its slot only while it has an
    // entry (for another host: pass_not_for_us).
    let counted = |lab: &Lab| {
        let st = lab.dp.maps.stats(o.slot).unwrap();
        st.packets[S::ACCEL_STAT_PASS_NOT_FOR_US.0 as usize]
    };
    let before = counted(&lab);
    assert_eq!(lab.run_on(o.ifindex, &frame, 0).0, 2, "XDP_PASS");
    assert_eq!(counted(&lab), before, "no entry: the kernel's frame");
    std::thread::sleep(accel::slots::GRACE);
    lab.dp.maps.retry_ifaces().unwrap();
    assert_eq!(lab.run_on(o.ifindex, &frame, 0).0, 2, "XDP_PASS");
    assert_eq!(counted(&lab), before + 1, "accel's again");
    lab.forward(&frame, MIRROR_MAC, &o, S::ACCEL_STAT_FWD_MIRROR);
}

/// Interfaces with an ifindex past the array index are found through the
/// ifaces hash (here as egress).
#[test]
fn an_interface_past_the_index_is_found_through_the_hash() {
    let Some(lab) = Lab::new() else {
        return;
    };
    let past = accel::bpf::types::accel_limits::ACCEL_IFINDEX_CACHE.0 + 904;
    let mac = [0x02, 0xcc, 0, 0, 0, 0x50];
    lab.ip(&[
        &format!("link add hi0 index {past} address 02:cc:00:00:00:50 type veth peer name hi0p"),
        "link set hi0 up",
        "link set hi0p up",
        "addr add 10.0.9.1/24 dev hi0",
    ]);
    let hi = Iface {
        ifindex: accel::runtime::ifindex("hi0").expect("lab interface"),
        mac,
        slot: 3,
    };
    assert_eq!(hi.ifindex, past);
    let mut c = vec![lab.put_iface(&hi, FLAGS_ALL, 1500)];
    c.extend(lab.route("198.51.100.0/24", &hi, Some("10.0.9.2"), 1));
    c.push(lab.neigh(&hi, "10.0.9.2", MIRROR_MAC));
    lab.apply(&c);
    let frame = f4(&lab, SRC4, Ipv4Addr::new(198, 51, 100, 7));
    lab.forward(&frame, MIRROR_MAC, &hi, S::ACCEL_STAT_FWD_MIRROR);
    // Gone from the hash, it is no egress of accel's any more.
    lab.apply(&[Change::DelIface(hi.ifindex)]);
    lab.pass(&frame, S::ACCEL_STAT_PASS_EGRESS);
}
