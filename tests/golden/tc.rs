//! What only the TC program sees: GSO packets, which GRO merged and which
//! the kernel checks against the egress MTU segment by segment
//! (ip_exceeds_mtu(), ip6_pkt_too_big(): skb_gso_validate_network_len()).
//! Every other golden case runs through the TC program too (Lab::expect).

use super::*;

const PROTO_TCP: u8 = 6;

/// A TCP segment with a 32-byte header (doff 8: timestamps) and `data`
/// bytes after it.
fn tcp_segment(data: usize) -> Vec<u8> {
    let mut seg = vec![0u8; 32 + data];
    seg[0..2].copy_from_slice(&40000u16.to_be_bytes());
    seg[2..4].copy_from_slice(&5001u16.to_be_bytes());
    seg[12] = 8 << 4;
    seg[13] = 0x10; // ACK
    seg
}

fn tcp4(data: usize) -> V4 {
    V4 {
        proto: PROTO_TCP,
        payload: tcp_segment(data),
        ..udp4(REMOTE4)
    }
}

fn tcp6(data: usize) -> V6 {
    V6 {
        next: PROTO_TCP,
        payload: tcp_segment(data),
        ..udp6(remote6())
    }
}

/// A mirror route through out0 with an MTU of 1400.
fn mirror_mtu_1400(lab: &Lab) {
    mirror_gw(lab);
    lab.ip(&["link set out0 mtu 1400"]);
    lab.apply(&[lab.put_iface(&lab.out, FLAGS_ALL, 1400)]);
}

/// A UDP GSO packet may be plain UDP segments (SKB_GSO_UDP_L4: 20 + 8 +
/// 1372 = 1400 would fit) or a UDP tunnel's (GRO merged a VXLAN flow:
/// every segment also carries the inner headers, and may not fit). TC
/// cannot read gso_type: the kernel measures such a packet.
#[test]
fn gso_udp_goes_to_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    mirror_mtu_1400(&lab);
    let big = f4(&lab, &udp4(REMOTE4).total(3000));
    lab.expect_gso(&big, 1372, XDP_PASS, &big, S::ACCEL_STAT_PASS_MTU);
    let big6 = f6(&lab, &udp6(remote6()).total(3000));
    lab.expect_gso(&big6, 1352, XDP_PASS, &big6, S::ACCEL_STAT_PASS_MTU);
    // Not GSO, the same bytes are one packet too big.
    lab.expect_on(Hook::Tc, &big, 0, XDP_PASS, &big, S::ACCEL_STAT_PASS_MTU);
}

#[test]
fn gso_tcp_v4_counts_the_tcp_header_with_options() {
    let Some(lab) = Lab::new() else { return };
    mirror_mtu_1400(&lab);
    let big = f4(&lab, &tcp4(3000));
    let fwd = forwarded(&big, MIRROR_MAC, lab.out.mac);
    // 20 + 32 + 1348 = 1400.
    lab.expect_gso(&big, 1348, XDP_REDIRECT, &fwd, S::ACCEL_STAT_FWD_MIRROR);
    lab.expect_gso(&big, 1349, XDP_PASS, &big, S::ACCEL_STAT_PASS_MTU);
}

#[test]
fn gso_tcp_v6_is_checked_per_segment() {
    let Some(lab) = Lab::new() else { return };
    mirror_mtu_1400(&lab);
    let big = f6(&lab, &tcp6(3000));
    let fwd = forwarded(&big, MIRROR_MAC, lab.out.mac);
    // 40 + 32 + 1328 = 1400.
    lab.expect_gso(&big, 1328, XDP_REDIRECT, &fwd, S::ACCEL_STAT_FWD_MIRROR);
    lab.expect_gso(&big, 1329, XDP_PASS, &big, S::ACCEL_STAT_PASS_MTU);
}

/// On the bpf_fib_lookup path the segment length is what the kernel's
/// lookup holds against the route's MTU.
#[test]
fn gso_on_the_fib_path_v4() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    kernel_neighs(&lab);
    lab.ip(&["link set out0 mtu 1400"]);
    lab.apply(&[lab.put_iface(&lab.out, FLAGS_ALL, 1400)]);
    let big = f4(&lab, &tcp4(3000));
    let fwd = forwarded(&big, KERNEL_MAC, lab.out.mac);
    lab.expect_gso(&big, 1348, XDP_REDIRECT, &fwd, S::ACCEL_STAT_FWD_FIB);
    lab.expect_gso(&big, 1349, XDP_PASS, &big, S::ACCEL_STAT_PASS_MTU);
}

/// BIG TCP: a GRO packet beyond 64 KiB says length 0; the kernel measures
/// it by the skb. The datapath leaves it to the kernel.
#[test]
fn gso_with_length_zero_goes_to_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let mut p = tcp4(2000);
    p.tot_len = Some(0);
    let f = f4(&lab, &p);
    lab.expect_gso(&f, 1000, XDP_PASS, &f, S::ACCEL_STAT_PASS_MTU);
    let mut p6 = udp6(remote6()).total(2000);
    p6.payload_len = Some(0);
    let f = f6(&lab, &p6);
    lab.expect_gso(&f, 1000, XDP_PASS, &f, S::ACCEL_STAT_PASS_MTU);
}

/// ip_forward() gives a forwarded IPv4 packet the priority of its TOS
/// (rt_tos2priority()) when ip_forward_update_priority is on; the TC
/// program does the same, and leaves it alone when the sysctl is off.
#[test]
fn tc_sets_the_priority_ip_forward_would() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    // TOS 0x08 (throughput): bulk; 0x10 (low delay): interactive; both:
    // interactive bulk; 0x04 (reliability) is not among the bits used.
    let cases = [
        (0x00u8, 0u32),
        (0x04, 0),
        (0x08, 2),
        (0x10, 6),
        (0x18, 4),
        (0xb8, 4),
    ];
    lab.apply(&[Change::Config(C::ACCEL_CFG_UPDATE_PRIO4.0)]);
    for (tos, want) in cases {
        let f = f4(
            &lab,
            &V4 {
                tos,
                ..udp4(REMOTE4)
            },
        );
        assert_eq!(lab.tc_priority(&f, 3), (XDP_REDIRECT, want), "TOS {tos:#x}");
    }
    lab.apply(&[Change::Config(0)]);
    let f = f4(
        &lab,
        &V4 {
            tos: 0x10,
            ..udp4(REMOTE4)
        },
    );
    assert_eq!(lab.tc_priority(&f, 3), (XDP_REDIRECT, 3), "sysctl off");
}

// ------------------------------------------------ XDP and TC together

/// Expects the XDP program to hand `f` to the TC program beside it:
/// passed unchanged, behind the metadata that says so where the kernel
/// lets XDP write metadata, unmarked where it does not.
#[track_caller]
fn expect_handoff(lab: &Lab, f: &[u8]) {
    let mark = accel::bpf::types::accel_handoff::ACCEL_HANDOFF_MARK.0;
    let handed = if lab.dp.handoff_meta {
        [&mark.to_ne_bytes()[..], f].concat()
    } else {
        f.to_vec()
    };
    lab.expect_on(Hook::Xdp, f, 0, XDP_PASS, &handed, S::ACCEL_STAT_HANDOFF_TC);
}

/// Runs `hook` on `f` and expects it forwarded from the mirror through
/// the gateway out of `out_mac`'s interface.
fn expect_forwarded(lab: &Lab, hook: Hook, f: &[u8], out_mac: [u8; 6]) {
    let fwd = forwarded(f, MIRROR_MAC, out_mac);
    lab.expect_on(hook, f, 0, XDP_REDIRECT, &fwd, S::ACCEL_STAT_FWD_MIRROR);
}

/// An XDP redirect cannot reach an interface accel serves through TC (a
/// bridge, a tunnel): the XDP program hands such frames, unchanged, to
/// the TC program beside it, or, without one, to the kernel.
#[test]
fn xdp_hands_frames_for_tc_interfaces_to_tc() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let o = lab.out;
    lab.apply(&[lab.put_iface(&o, FLAGS_ALL | F::ACCEL_IF_TC.0, 1500)]);
    let f = f4(&lab, &udp4(REMOTE4));
    lab.expect_on(Hook::Xdp, &f, 0, XDP_PASS, &f, S::ACCEL_STAT_PASS_EGRESS);
    lab.apply(&[lab.put_iface(&lab.inp, FLAGS_ALL | F::ACCEL_IF_TC_BESIDE.0, 1500)]);
    expect_handoff(&lab, &f);
    let f6 = f6(&lab, &udp6(remote6()));
    expect_handoff(&lab, &f6);
    // TC itself sends there (bpf_redirect reaches any device).
    expect_forwarded(&lab, Hook::Tc, &f, o.mac);
}

/// A qdisc or tc egress filters configured on the egress: an XDP redirect
/// would pass them by, so XDP hands the frame to TC (whose redirect goes
/// through them) or to the kernel, as for a TC interface; with the flag
/// gone, XDP redirects again.
#[test]
fn xdp_leaves_an_egress_with_a_configured_qdisc_to_tc() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let o = lab.out;
    lab.apply(&[lab.put_iface(&o, FLAGS_ALL | F::ACCEL_IF_EGRESS_TC.0, 1500)]);
    let f = f4(&lab, &udp4(REMOTE4));
    lab.expect_on(Hook::Xdp, &f, 0, XDP_PASS, &f, S::ACCEL_STAT_PASS_EGRESS);
    lab.apply(&[lab.put_iface(&lab.inp, FLAGS_ALL | F::ACCEL_IF_TC_BESIDE.0, 1500)]);
    expect_handoff(&lab, &f);
    expect_handoff(&lab, &f6(&lab, &udp6(remote6())));
    expect_forwarded(&lab, Hook::Tc, &f, o.mac);
    lab.apply(&[lab.put_iface(&o, FLAGS_ALL, 1500)]);
    expect_forwarded(&lab, Hook::Xdp, &f, o.mac);
}

/// tc ingress filters besides accel's on the ingress: they run after XDP
/// and before the IP layer, so neither program forwards what arrives
/// there, not even what the kernel would drop (the filters come first).
#[test]
fn ingress_tc_filters_leave_every_frame_to_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    mirror_gw(&lab);
    let i = lab.inp;
    lab.apply(&[lab.put_iface(&i, FLAGS_ALL | F::ACCEL_IF_INGRESS_TC.0, 1500)]);
    let f = f4(&lab, &udp4(REMOTE4));
    let mut bad_csum = f.clone();
    bad_csum[24] ^= 0xff;
    let pass = S::ACCEL_STAT_PASS_TC_FILTERS;
    for hook in [Hook::Xdp, Hook::Tc] {
        for frame in [&f, &bad_csum, &f6(&lab, &udp6(remote6()))] {
            lab.expect_on(hook, frame, 0, XDP_PASS, frame, pass);
        }
    }
    lab.apply(&[lab.put_iface(&i, FLAGS_ALL, 1500)]);
    expect_forwarded(&lab, Hook::Xdp, &f, lab.out.mac);
}

/// A neighbour to resolve: XDP cannot queue the frame, TC can
/// (bpf_redirect_neigh); beside TC, XDP hands it over.
#[test]
fn xdp_hands_frames_for_unresolved_neighbours_to_tc() {
    let Some(lab) = Lab::new() else { return };
    kernel_routes(&lab);
    let f = f4(&lab, &udp4(REMOTE4));
    lab.expect_on(Hook::Xdp, &f, 0, XDP_PASS, &f, S::ACCEL_STAT_PASS_NO_NEIGH);
    lab.apply(&[lab.put_iface(&lab.inp, FLAGS_ALL | F::ACCEL_IF_TC_BESIDE.0, 1500)]);
    expect_handoff(&lab, &f);
}

/// Beside an XDP program, the TC program leaves alone what it was not
/// handed: XDP decided and counted it already.
#[test]
fn tc_beside_xdp_takes_only_what_it_is_handed() {
    let Some(lab) = Lab::new() else { return };
    if !lab.dp.handoff_meta {
        eprintln!("skipped: this kernel refuses XDP metadata (see tc_beside_xdp_decides_again_*)");
        return;
    }
    mirror_gw(&lab);
    let f = f4(&lab, &udp4(REMOTE4));
    let before = lab.dp.maps.stats(lab.inp.slot).unwrap();
    let (verdict, out) = lab.run_hook(Hook::Tc, lab.inp.ifindex, &f, 0);
    let after = lab.dp.maps.stats(lab.inp.slot).unwrap();
    assert_eq!((verdict, out), (XDP_PASS, f), "passed on, unchanged");
    assert_eq!(before.packets, after.packets, "and counted nowhere");
}

/// Where the kernel refuses XDP metadata, the TC program beside XDP cannot
/// tell a handed frame from a passed one: it decides again whatever XDP
/// passed, and counts only its forwards (XDP counted the rest).
#[test]
fn tc_beside_xdp_decides_again_what_xdp_passed_without_metadata() {
    let Some(lab) = Lab::new() else { return };
    if lab.dp.handoff_meta {
        eprintln!("skipped: this kernel lets XDP mark the frames it hands to TC");
        return;
    }
    mirror_gw(&lab);
    let run_beside = |f: &[u8]| {
        let before = lab.dp.maps.stats(lab.inp.slot).unwrap();
        let run = lab.run_hook(Hook::Tc, lab.inp.ifindex, f, 0);
        let after = lab.dp.maps.stats(lab.inp.slot).unwrap();
        let counted: Vec<_> = (0..after.packets.len())
            .filter(|&i| after.packets[i] != before.packets[i])
            .map(|i| (i, after.packets[i] - before.packets[i]))
            .collect();
        (run, counted)
    };
    // XDP passed this one (pass_ttl, counted there): TC passes it again,
    // counted nowhere.
    let ttl1 = f4(&lab, &udp4(REMOTE4).ttl(1));
    assert_eq!(
        run_beside(&ttl1),
        ((XDP_PASS, ttl1), vec![]),
        "passed, uncounted"
    );
    // XDP handed this one over (its egress is served through TC): TC
    // forwards it, counted as forwarded.
    lab.apply(&[lab.put_iface(&lab.out, FLAGS_ALL | F::ACCEL_IF_TC.0, 1500)]);
    let f = f4(&lab, &udp4(REMOTE4));
    let fwd = forwarded(&f, MIRROR_MAC, lab.out.mac);
    let fwd_mirror = S::ACCEL_STAT_FWD_MIRROR.0 as usize;
    assert_eq!(
        run_beside(&f),
        ((XDP_REDIRECT, fwd), vec![(fwd_mirror, 1)]),
        "forwarded, counted once"
    );
    // XDP hands this one over too (the egress decides before the TTL):
    // TC passes it, counted as passed, as a marked handoff would be.
    let ttl1 = f4(&lab, &udp4(REMOTE4).ttl(1));
    let pass_ttl = S::ACCEL_STAT_PASS_TTL.0 as usize;
    assert_eq!(
        run_beside(&ttl1),
        ((XDP_PASS, ttl1), vec![(pass_ttl, 1)]),
        "passed, counted once"
    );
}
