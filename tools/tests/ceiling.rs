//! The ceiling forwarder through BPF_PROG_TEST_RUN: it sends each frame to
//! the adjacency its tag names, with the TTL / hop limit decreased (the
//! IPv4 checksum still valid) and the MACs rewritten, and refuses what a
//! router must not forward. Needs root (loads BPF); skipped otherwise.

use accel_packet::{csum, eth, ETH_HLEN, ETH_P_IP, ETH_P_IPV6, V4, V6};
use accel_tools::ceiling::{self, CeilingSkel};
use libbpf_rs::ProgramInput;

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("ceiling: skipped (loading BPF needs root)");
        return false;
    }
    true
}

fn load() -> Option<CeilingSkel<'static>> {
    if !is_root() {
        return None;
    }
    let skel = ceiling::load().unwrap();
    set_adjacencies(&skel);
    Some(skel)
}

fn set_adjacencies(skel: &CeilingSkel<'_>) {
    for tag in 0..ceiling::TAGS {
        // dmac 02:aa:00:00:00:<tag>, smac 02:bb:00:00:00:01.
        let dmac = [2, 0xaa, 0, 0, 0, tag as u8];
        ceiling::set_adjacency(skel, tag, dmac, [2, 0xbb, 0, 0, 0, 1]).unwrap();
    }
}

fn run(skel: &CeilingSkel<'_>, frame: &[u8]) -> (u32, Vec<u8>) {
    run_prog(&skel.progs.ceiling_fwd, frame)
}

fn run_prog(prog: &libbpf_rs::ProgramMut<'_>, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; frame.len()];
    let input = ProgramInput {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    };
    let r = prog.test_run(input).unwrap();
    (r.return_value, out)
}

#[test]
fn frames_go_to_their_tags_adjacency_ttl_decreased() {
    let Some(skel) = load() else { return };
    let mut p = V4::udp("10.0.0.1".parse().unwrap(), "198.51.100.7".parse().unwrap());
    p.id = 13; // tag 13: adjacency 5
    let f = eth(IN_MAC, [2, 0, 0, 0, 0, 2], ETH_P_IP, &p.build());
    let (action, out) = run(&skel, &f);
    // An empty devmap slot: the redirect's fallback, the rewrite done.
    assert!(
        action == XDP_REDIRECT || action == XDP_PASS,
        "action {action}"
    );
    assert_eq!(out[..6], [2, 0xaa, 0, 0, 0, 5]);
    assert_eq!(out[6..12], [2, 0xbb, 0, 0, 0, 1]);
    assert_eq!(out[ETH_HLEN + 8], 63, "TTL - 1");
    assert_eq!(
        csum(&out[ETH_HLEN..ETH_HLEN + 20]),
        0,
        "IPv4 checksum still valid"
    );

    let mut p6 = V6::udp(
        "2001:db8::1".parse().unwrap(),
        "2001:db8:1::7".parse().unwrap(),
    );
    p6.flow = 2; // tag 2
    let f6 = eth(IN_MAC, [2, 0, 0, 0, 0, 2], ETH_P_IPV6, &p6.build());
    let (_, out) = run(&skel, &f6);
    assert_eq!(out[..6], [2, 0xaa, 0, 0, 0, 2]);
    assert_eq!(out[ETH_HLEN + 7], 63, "hop limit - 1");
}

#[test]
fn ttl_1_goes_to_the_kernel_unchanged() {
    let Some(skel) = load() else { return };
    let mut p = V4::udp("10.0.0.1".parse().unwrap(), "198.51.100.7".parse().unwrap());
    p.ttl = 1;
    let f = eth(IN_MAC, [2, 0, 0, 0, 0, 2], ETH_P_IP, &p.build());
    let (action, out) = run(&skel, &f);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out, f);
}

/// The forwarder that also reads lines (forwarding.sh's ceiling-read
/// modes) sends every frame where the plain one does, whatever its reads,
/// and refuses sizes it cannot have.
#[test]
fn reading_forwarder_forwards_as_the_plain_one() {
    if !is_root() {
        return;
    }
    // Strides as forwarding.sh uses them (9.4 MiB in 65: not a divisor of
    // its lines) and up to the whole array (0.001 MiB: 16 lines).
    for (mib, reads, stride) in [
        (0.001, 1, 1),
        (1.0, 3, 1),
        (4.0, ceiling::MAX_READS, 1),
        (9.4, 1, 65),
        (4.0, 2, 64),
        (0.001, 1, 16),
    ] {
        let skel = ceiling::load_reading(mib, reads, stride).unwrap();
        set_adjacencies(&skel);
        // The destination feeds the lines' hash: several, with several tags.
        let dests = ["198.51.100.7", "10.1.2.3", "255.255.255.254", "1.0.0.0"];
        for (id, dst) in [0u16, 5, 13, 4242].into_iter().zip(dests) {
            let mut p = V4::udp("10.0.0.1".parse().unwrap(), dst.parse().unwrap());
            p.id = id;
            let f = eth(IN_MAC, [2, 0, 0, 0, 0, 2], ETH_P_IP, &p.build());
            let plain = run(&skel, &f);
            let read = run_prog(&skel.progs.ceiling_read_fwd, &f);
            assert_eq!(
                read, plain,
                "{mib} MiB, {reads} reads, stride {stride}, id {id}"
            );
        }
    }
    for (mib, reads, stride) in [
        (0.0, 1, 1),
        (1.0, 0, 1),
        (1.0, ceiling::MAX_READS + 1, 1),
        (1.0, 1, 0),
        (0.001, 1, 17),
    ] {
        assert!(
            ceiling::load_reading(mib, reads, stride).is_err(),
            "{mib} MiB, {reads} reads, stride {stride}"
        );
    }
}
