//! The closed loop's sink (`trafgen_loop`) through BPF_PROG_TEST_RUN: it
//! counts a test frame, rewrites it into the next one (the template, the
//! next destination and its tag, the checksum) and redirects it to the
//! generator's interface; anything else goes to the kernel untouched.
//! Needs root (loads BPF); skipped otherwise.

use std::net::IpAddr;

use accel_packet::{csum, ETH_HLEN};
use accel_tools::trafgen::{self, types, FrameSpec};
use libbpf_rs::{MapCore, MapFlags, ProgramInput};

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("trafgen_loop: skipped (loading BPF needs root)");
        return false;
    }
    true
}

fn spec() -> FrameSpec {
    FrameSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        src: "10.98.0.2".parse().unwrap(),
        sport: 40000,
        dport: 9,
        wire_size: 64,
        ttl: 64,
    }
}

#[test]
fn test_frames_come_back_rewritten_the_rest_goes_to_the_kernel() {
    if !is_root() {
        return;
    }
    let dests: Vec<(IpAddr, u32)> = vec![
        ("198.51.100.7".parse().unwrap(), 3),
        ("203.0.113.9".parse().unwrap(), 5),
    ];
    let (skel, t) = trafgen::load(&spec(), &dests, types::trafgen_pick::TRAFGEN_PICK_SEQ).unwrap();
    // The way back: lo will do for a test run (nothing is sent).
    skel.maps
        .loop_tx
        .update(&0u32.to_ne_bytes(), &1u32.to_ne_bytes(), MapFlags::ANY)
        .unwrap();
    let run = |frame: &[u8]| {
        let mut out = vec![0u8; frame.len()];
        let input = ProgramInput {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        };
        let r = skel.progs.trafgen_loop.test_run(input).unwrap();
        (r.return_value, out)
    };

    // A frame as the router forwarded it: another destination, TTL 63,
    // other MACs.
    let mut arrived = trafgen::frame_for(&t, "192.0.2.50".parse().unwrap());
    arrived[ETH_HLEN + 8] = 63;
    arrived[..12].copy_from_slice(&[2, 0xaa, 0, 0, 0, 9, 2, 0xbb, 0, 0, 0, 9]);
    let (action, out) = run(&arrived);
    assert_eq!(action, XDP_REDIRECT, "sent back");
    assert_eq!(out[..12], t.frame[..12], "the template's MACs");
    let ip = &out[ETH_HLEN..ETH_HLEN + 20];
    assert_eq!(ip[8], 64, "TTL from the template");
    assert_eq!(ip[16..20], [198, 51, 100, 7], "the first destination");
    assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 3, "its tag in the ID");
    assert_eq!(csum(ip), 0, "a valid header checksum");

    // Not test traffic (another UDP port): the kernel's, unchanged.
    let mut other = arrived.clone();
    other[ETH_HLEN + 22..ETH_HLEN + 24].copy_from_slice(&53u16.to_be_bytes());
    assert_eq!(run(&other), (XDP_PASS, other.clone()));

    let key = 0u32.to_ne_bytes();
    let per_cpu = skel
        .maps
        .tg_stats
        .lookup_percpu(&key, MapFlags::ANY)
        .unwrap()
        .unwrap();
    let word = |i: usize| -> u64 {
        per_cpu
            .iter()
            .map(|v| u64::from_ne_bytes(v[i * 8..i * 8 + 8].try_into().unwrap()))
            .sum()
    };
    assert_eq!((word(1), word(3)), (1, 1), "one counted, one passed");
}
