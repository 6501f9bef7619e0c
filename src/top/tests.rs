use super::*;
use crate::metrics::NexthopTraffic;
use crate::stats::{BlackholeDrops, IfaceStats};

fn sample(scale: u64) -> Sample {
    let mut counters = std::collections::BTreeMap::new();
    counters.insert("fwd_mirror", 1000 * scale);
    counters.insert("pass_no_neigh", 10 * scale);
    counters.insert("pass_local", 3 * scale);
    counters.insert("drop_blackhole", 50 * scale);
    Sample {
        lease: crate::stats::LeaseState::Live,
        ifaces: vec![IfaceStats {
            iface: "eth0".into(),
            ifindex: 2,
            forwarded: 1000 * scale,
            forwarded_bytes: 64_000 * scale,
            passed_bytes: 0,
            dropped_bytes: 0,
            passed: 13 * scale,
            dropped: 50 * scale,
            no_lease: 0,
            hook: None,
            handoff: None,
            counters,
        }],
        capacity: Default::default(),
        blackholes: vec![BlackholeDrops {
            prefix: "192.0.2.0/24".into(),
            packets: 50 * scale,
            bytes: 0,
        }],
        source_blackholes: vec![],
        nexthops: (0..30)
            .map(|i| NexthopTraffic {
                gateway: format!("10.0.0.{i}"),
                interface: "eth1".into(),
                packets: (i + 1) * scale,
                bytes: 64 * (i + 1) * scale,
            })
            .collect(),
    }
}

#[test]
fn a_frame_shows_rates_and_fits_80x24() {
    let (a, b) = (sample(1), sample(3));
    let f = Frame {
        before: &a,
        after: &b,
        over: Duration::from_secs(2),
        status: None,
    };
    let lines = f.render(80, 24);
    assert!(lines.len() <= 24);
    assert!(lines.iter().all(|l| l.chars().count() <= 80));
    let eth0 = lines.iter().find(|l| l.starts_with("eth0")).unwrap();
    // 2000 packets over 2 s; 128 kB -> 512 kbit/s; drops 50/s.
    assert!(eth0.contains(" 1.0k "), "{eth0}");
    assert!(eth0.contains("512.0k"), "{eth0}");
    assert!(
        eth0.ends_with("blackhole 50, no_neigh 10, local 3"),
        "{eth0}"
    );
    // The busiest next hop first.
    let first = lines
        .iter()
        .position(|l| l.starts_with("NEXT HOP"))
        .unwrap()
        + 1;
    assert!(
        lines[first].starts_with("10.0.0.29 on eth1"),
        "{}",
        lines[first]
    );
    assert!(lines.iter().any(|l| l.starts_with("192.0.2.0/24")));
}

#[test]
fn human_units() {
    assert_eq!(human(999.0), "999");
    assert_eq!(human(1234.0), "1.2k");
    assert_eq!(human(2_500_000.0), "2.5M");
    assert_eq!(human(3.2e9), "3.2G");
}
