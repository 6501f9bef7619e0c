//! Golden tests whose map state comes from the real control plane: each
//! installs kernel state in the lab's namespace (multipath routes, nexthop
//! objects, blackholes, ip rules, RFC 5549 routes), fills the maps through
//! a dump, the mirror and the map writes, as `accel run` does, and checks
//! the datapath against the kernel.
//!
//! Multipath: the path the datapath picks from the mirror must be the one
//! the kernel picks. A few hundred random flows run twice: once decided by
//! the mirror, once by bpf_fib_lookup, which runs the kernel's own
//! fib_select_path. Every flow must leave to the same gateway MAC both
//! times, and the mirror run must not fall back.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use accel::bpf::types::{accel_cfg_flags as C, accel_stat as S};
use accel::capacity::Limits;
use accel::mirror::{Change, ForwardingSysctls, IfaceConf, Mirror};

use super::lab::*;
use super::pkt::*;

const X_PEER_MACS: [[u8; 6]; 2] = [[0x02, 0xcc, 0, 0, 0, 0x01], [0x02, 0xcc, 0, 0, 0, 0x02]];
const OUT_MACS: [[u8; 6]; 2] = [[0x02, 0xdd, 0, 0, 0, 0x01], [0x02, 0xdd, 0, 0, 0, 0x02]];

/// Four gateways, two behind out0 and two behind x0 (both accel's), with
/// permanent neighbours of distinct MACs; x0 joins the datapath.
fn four_gateways(lab: &Lab) {
    lab.apply(&[lab.put_iface(&lab.x, FLAGS_ALL, 1500)]);
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    lab.ip(&[
        &format!(
            "neigh add 10.0.2.2 lladdr {} dev out0 nud permanent",
            mac(OUT_MACS[0])
        ),
        &format!(
            "neigh add 10.0.2.3 lladdr {} dev out0 nud permanent",
            mac(OUT_MACS[1])
        ),
        &format!(
            "neigh add 10.0.3.2 lladdr {} dev x0 nud permanent",
            mac(X_PEER_MACS[0])
        ),
        &format!(
            "neigh add 10.0.3.3 lladdr {} dev x0 nud permanent",
            mac(X_PEER_MACS[1])
        ),
        &format!(
            "neigh add 2001:db8:2::2 lladdr {} dev out0 nud permanent",
            mac(OUT_MACS[0])
        ),
        &format!(
            "neigh add 2001:db8:2::3 lladdr {} dev out0 nud permanent",
            mac(OUT_MACS[1])
        ),
        &format!(
            "neigh add 2001:db8:3::2 lladdr {} dev x0 nud permanent",
            mac(X_PEER_MACS[0])
        ),
        &format!(
            "neigh add 2001:db8:3::3 lladdr {} dev x0 nud permanent",
            mac(X_PEER_MACS[1])
        ),
    ]);
}

/// The lab's three interfaces as the mirror's, with these sysctl flags.
fn iface_confs(lab: &Lab, sysctl_flags: u32) -> HashMap<u32, IfaceConf> {
    [&lab.inp, &lab.out, &lab.x]
        .iter()
        .map(|i| {
            let conf = IfaceConf {
                slot: i.slot,
                sysctl_flags,
                mtu6: 1500,
                hook_flags: 0,
                tc_flags: 0,
            };
            (i.ifindex, conf)
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Fills the maps from a dump of the namespace, as `accel run` does.
fn sync(lab: &Lab, mp: ForwardingSysctls) -> Mirror {
    sync_with(lab, mp, FLAGS_ALL)
}

fn sync_with(lab: &Lab, mp: ForwardingSysctls, sysctl_flags: u32) -> Mirror {
    let limits = Limits {
        nexthops: 1024,
        ..Limits::default()
    };
    mirror_with(lab, mp, sysctl_flags, &limits)
}

/// The maps filled from a dump by a mirror sized by `limits` (which must be
/// the lab's), default multipath settings.
pub fn mirror_from_kernel(lab: &Lab, limits: &Limits) -> Mirror {
    mirror_with(lab, ForwardingSysctls::default(), FLAGS_ALL, limits)
}

fn mirror_with(lab: &Lab, mp: ForwardingSysctls, sysctl_flags: u32, limits: &Limits) -> Mirror {
    let state = runtime().block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
        tokio::spawn(conn);
        accel::netlink::dump(&handle).await.expect("dump")
    });
    let mut m = Mirror::new(iface_confs(lab, sysctl_flags), false, limits);
    lab.apply(&m.set_forwarding_sysctls(mp));
    lab.apply(&m.resync(state));
    m
}

/// A UDP datagram arriving on in0.
pub fn v4_frame(lab: &Lab, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    eth(
        lab.inp.mac,
        IN_PEER_MAC,
        ETH_P_IP,
        &V4::udp(src, dst).build(),
    )
}

pub fn v6_frame(lab: &Lab, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    eth(
        lab.inp.mac,
        IN_PEER_MAC,
        ETH_P_IPV6,
        &V6::udp(src, dst).build(),
    )
}

const FLOWS: usize = 400;

enum Fam {
    V4,
    V6,
}

/// Random flows towards `dst_base` (a /16 or /48 the routes cover).
fn flows(lab: &Lab, fam: Fam, seed: u64, fragments: bool) -> Vec<Vec<u8>> {
    // Seeded, so that a failure reproduces.
    let mut r = fastrand::Rng::with_seed(seed);
    (0..FLOWS)
        .map(|_| {
            let x = r.u64(..);
            let (sport, dport) = (x as u16 | 1, (x >> 16) as u16 | 1);
            match fam {
                Fam::V4 => {
                    let src = Ipv4Addr::new(10, 0, 1, 2 + (x >> 32) as u8 % 250);
                    let dst = Ipv4Addr::new(198, 18, (x >> 40) as u8, (x >> 48) as u8);
                    let mut p = V4::udp(src, dst);
                    p.payload = udp(sport, dport, 16);
                    if fragments {
                        // First fragments (MF), later and last fragments
                        // (offset): the dissector reads ports from none.
                        p.frag = match x & 3 {
                            1 => 0x2000,
                            2 => 0x2000 | 185,
                            3 => 185,
                            _ => p.frag,
                        };
                    }
                    eth(lab.inp.mac, IN_PEER_MAC, ETH_P_IP, &p.build())
                }
                Fam::V6 => {
                    let y = r.u64(..);
                    let src: Ipv6Addr = format!("2001:db8:1::{:x}", (x >> 32) as u16 | 2)
                        .parse()
                        .unwrap();
                    let dst: Ipv6Addr =
                        format!("2001:db8:200:{:x}::{:x}", y as u16, (y >> 16) as u16)
                            .parse()
                            .unwrap();
                    let mut p = V6::udp(src, dst);
                    p.payload = udp(sport, dport, 16);
                    p.flow = (y >> 32) as u32 & 0xfffff;
                    eth(lab.inp.mac, IN_PEER_MAC, ETH_P_IPV6, &p.build())
                }
            }
        })
        .collect()
}

/// Runs every frame; returns the destination MACs and how many the given
/// counter took.
fn run_all(lab: &Lab, frames: &[Vec<u8>], stat: S) -> (Vec<[u8; 6]>, u64) {
    let before = lab.dp.maps.stats(lab.inp.slot).expect("stats").packets[stat.0 as usize];
    let macs = frames
        .iter()
        .map(|f| {
            let (action, out) = lab.run_on(lab.inp.ifindex, f, 0);
            assert_eq!(
                action_name(action),
                action_name(XDP_REDIRECT),
                "{}",
                hex_dump(f)
            );
            out[..6].try_into().unwrap()
        })
        .collect();
    let after = lab.dp.maps.stats(lab.inp.slot).expect("stats").packets[stat.0 as usize];
    (macs, after - before)
}

/// Packets forwarded through each of the mirror's next hops, by id.
fn nexthop_packets(lab: &Lab, m: &Mirror) -> Vec<u64> {
    m.nexthop_ids()
        .iter()
        .map(|id| lab.dp.maps.nexthop_stats(*id).packets)
        .collect()
}

/// The mirror and bpf_fib_lookup agree on every flow, the mirror decided
/// them all, and the flows spread over `paths` gateways.
#[track_caller]
fn agree(lab: &Lab, m: &Mirror, frames: &[Vec<u8>], paths: usize) {
    let nh0 = nexthop_packets(lab, m);
    let (mirror, n) = run_all(lab, frames, S::ACCEL_STAT_FWD_MIRROR);
    assert_eq!(n as usize, frames.len(), "the mirror decided every flow");
    let nh1 = nexthop_packets(lab, m);
    lab.apply(&[Change::Config(C::ACCEL_CFG_FIB_ONLY.0)]);
    let (kernel, n) = run_all(lab, frames, S::ACCEL_STAT_FWD_FIB);
    lab.apply(&[Change::Config(m.config_flags())]);
    assert_eq!(n as usize, frames.len());
    // Per next hop: the mirror's packets each counted once, on as many
    // next hops as there are paths; bpf_fib_lookup's on none.
    let delta: Vec<u64> = nh1.iter().zip(&nh0).map(|(a, b)| a - b).collect();
    assert_eq!(
        delta.iter().sum::<u64>() as usize,
        frames.len(),
        "next-hop counters"
    );
    assert_eq!(delta.iter().filter(|d| **d > 0).count(), paths);
    assert_eq!(
        nexthop_packets(lab, m),
        nh1,
        "bpf_fib_lookup's packets have no next hop"
    );
    let wrong: Vec<usize> = (0..frames.len())
        .filter(|i| mirror[*i] != kernel[*i])
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} flows took another path than the kernel's; first:\n{}",
        wrong.len(),
        frames.len(),
        hex_dump(&frames[wrong[0]])
    );
    let used: HashSet<[u8; 6]> = mirror.into_iter().collect();
    assert_eq!(used.len(), paths, "flows spread over every path");
}

const SEEDED_L3: ForwardingSysctls = ForwardingSysctls {
    seed: 0x5eed1234,
    policy4: 0,
    policy6: 0,
    update_priority4: true,
};
const SEEDED_L4: ForwardingSysctls = ForwardingSysctls {
    seed: 0x5eed1234,
    policy4: 1,
    policy6: 1,
    update_priority4: true,
};

fn kernel_multipath(lab: &Lab, mp: ForwardingSysctls) {
    lab.sysctl(&[
        &format!("net.ipv4.fib_multipath_hash_seed={}", mp.seed),
        &format!("net.ipv4.fib_multipath_hash_policy={}", mp.policy4),
        &format!("net.ipv6.fib_multipath_hash_policy={}", mp.policy6),
    ]);
}

fn ecmp_routes(lab: &Lab) {
    lab.ip(&[
        "route add 198.18.0.0/16 nexthop via 10.0.2.2 dev out0 nexthop via 10.0.3.2 dev x0 weight 2 \
         nexthop via 10.0.2.3 dev out0 nexthop via 10.0.3.3 dev x0 weight 3",
        "route add 2001:db8:200::/48 nexthop via 2001:db8:2::2 dev out0 \
         nexthop via 2001:db8:3::2 dev x0 weight 2 nexthop via 2001:db8:2::3 dev out0 \
         nexthop via 2001:db8:3::3 dev x0 weight 3",
    ]);
}

#[test]
fn multipath_l3_hash_matches_kernel_v4_v6() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    kernel_multipath(&lab, SEEDED_L3);
    ecmp_routes(&lab);
    let m = sync(&lab, SEEDED_L3);
    agree(&lab, &m, &flows(&lab, Fam::V4, 1, false), 4);
    agree(&lab, &m, &flows(&lab, Fam::V6, 2, false), 4);
}

/// A new seed takes effect at once, and an old one again after it: the
/// flows follow the kernel's paths under each (a datapath that kept
/// anything computed from the seed it saw first would not).
#[test]
fn multipath_l3_hash_follows_a_new_seed() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    ecmp_routes(&lab);
    for seed in [0x5eed1234, 0x0badf00d, 0x5eed1234] {
        let mp = ForwardingSysctls { seed, ..SEEDED_L3 };
        kernel_multipath(&lab, mp);
        let m = sync(&lab, mp);
        agree(&lab, &m, &flows(&lab, Fam::V4, 3, false), 4);
    }
}

#[test]
fn multipath_l4_hash_matches_kernel_v4_v6_and_fragments() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    kernel_multipath(&lab, SEEDED_L4);
    ecmp_routes(&lab);
    let m = sync(&lab, SEEDED_L4);
    agree(&lab, &m, &flows(&lab, Fam::V4, 3, false), 4);
    agree(&lab, &m, &flows(&lab, Fam::V4, 4, true), 4);
    agree(&lab, &m, &flows(&lab, Fam::V6, 5, false), 4);
}

#[test]
fn multipath_without_known_seed_goes_to_fib() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    ecmp_routes(&lab);
    // The kernel's seed is random: only bpf_fib_lookup knows the path.
    let m = sync(&lab, ForwardingSysctls::default());
    let frames = flows(&lab, Fam::V4, 6, false);
    let (_, n) = run_all(&lab, &frames, S::ACCEL_STAT_FWD_FIB);
    assert_eq!(n as usize, frames.len());
    assert_eq!(m.config_flags() & C::ACCEL_CFG_MP_HASH4.0, 0);
}

fn nexthop_objects(lab: &Lab) {
    lab.ip(&[
        "nexthop add id 1 via 10.0.2.2 dev out0",
        "nexthop add id 2 via 10.0.3.2 dev x0",
        "nexthop add id 3 via 10.0.2.3 dev out0",
        "nexthop add id 4 via 10.0.3.3 dev x0",
        "nexthop add id 10 group 1/2,2/3,3/4,4",
        "nexthop add id 11 via 2001:db8:2::2 dev out0",
        "nexthop add id 12 via 2001:db8:3::2 dev x0",
        "nexthop add id 20 group 11/12,3",
        "route add 198.18.0.0/16 nhid 10",
        "route add 2001:db8:200::/48 nhid 20",
    ]);
}

#[test]
fn nexthop_groups_match_kernel_in_both_compat_modes() {
    for compat in [1, 0] {
        let Some(lab) = Lab::new() else { return };
        four_gateways(&lab);
        kernel_multipath(&lab, SEEDED_L3);
        lab.sysctl(&[&format!("net.ipv4.nexthop_compat_mode={compat}")]);
        nexthop_objects(&lab);
        let m = sync(&lab, SEEDED_L3);
        agree(&lab, &m, &flows(&lab, Fam::V4, 7, false), 4);
        agree(&lab, &m, &flows(&lab, Fam::V6, 8, false), 2);

        // Replace the group: one map write moves every route using it.
        lab.ip(&["nexthop replace id 10 group 1/4,5"]);
        let m = sync(&lab, SEEDED_L3);
        agree(&lab, &m, &flows(&lab, Fam::V4, 9, false), 2);
    }
}

#[test]
fn single_nexthop_object_needs_no_seed_and_blackhole_object_drops() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    lab.ip(&[
        "nexthop add id 1 via 10.0.3.2 dev x0",
        "nexthop add id 2 blackhole",
        "route add 198.18.0.0/16 nhid 1",
        "route add 198.19.0.0/16 nhid 2",
    ]);
    let _m = sync(&lab, ForwardingSysctls::default());
    let frame = |dst| v4_frame(&lab, Ipv4Addr::new(10, 0, 1, 2), dst);
    lab.forward(
        &frame(Ipv4Addr::new(198, 18, 1, 1)),
        X_PEER_MACS[0],
        &lab.x,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    lab.drop(
        &frame(Ipv4Addr::new(198, 19, 1, 1)),
        S::ACCEL_STAT_DROP_BLACKHOLE,
    );
}

#[test]
fn ipv4_route_via_ipv6_gateway_rfc5549() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    // As a plain route, and through an IPv6 nexthop object (how FRR
    // installs BGP unnumbered routes).
    lab.ip(&[
        "route add 198.18.0.0/16 via inet6 2001:db8:3::2 dev x0",
        "nexthop add id 6 via 2001:db8:3::3 dev x0",
        "route add 198.19.0.0/16 nhid 6",
    ]);
    let _m = sync(&lab, ForwardingSysctls::default());
    let f = v4_frame(
        &lab,
        Ipv4Addr::new(10, 0, 1, 2),
        Ipv4Addr::new(198, 18, 1, 1),
    );
    lab.forward(&f, X_PEER_MACS[0], &lab.x, S::ACCEL_STAT_FWD_MIRROR);
    let f = v4_frame(
        &lab,
        Ipv4Addr::new(10, 0, 1, 2),
        Ipv4Addr::new(198, 19, 1, 1),
    );
    lab.forward(&f, X_PEER_MACS[1], &lab.x, S::ACCEL_STAT_FWD_MIRROR);
}

#[test]
fn blackhole_drops_are_counted_per_prefix() {
    let Some(lab) = Lab::new() else { return };
    lab.ip(&[
        "route add blackhole 198.18.0.0/16",
        "route add blackhole 198.19.0.0/16",
        "route add blackhole 2001:db8:300::/48",
    ]);
    let _m = sync(&lab, ForwardingSysctls::default());
    let v4 = |d| v4_frame(&lab, Ipv4Addr::new(10, 0, 1, 2), d);
    for i in 0..3 {
        lab.drop(
            &v4(Ipv4Addr::new(198, 18, 0, i)),
            S::ACCEL_STAT_DROP_BLACKHOLE,
        );
    }
    let f6 = eth(
        lab.inp.mac,
        IN_PEER_MAC,
        ETH_P_IPV6,
        &V6::udp(
            "2001:db8:1::2".parse().unwrap(),
            "2001:db8:300::1".parse().unwrap(),
        )
        .build(),
    );
    lab.drop(&f6, S::ACCEL_STAT_DROP_BLACKHOLE);
    let drops: HashMap<String, (u64, u64)> = lab
        .dp
        .maps
        .blackhole_drops()
        .into_iter()
        .filter_map(|(p, c)| Some((p?.to_string(), (c.packets, c.bytes))))
        .collect();
    // Every frame ran through both programs (HOOKS).
    assert_eq!(drops["198.18.0.0/16"].0, 3 * HOOKS);
    assert_eq!(
        drops["198.18.0.0/16"].1,
        3 * HOOKS * v4(Ipv4Addr::new(198, 18, 0, 0)).len() as u64
    );
    assert_eq!(drops["198.19.0.0/16"].0, 0);
    assert_eq!(drops["2001:db8:300::/48"], (HOOKS, HOOKS * f6.len() as u64));
}

#[test]
fn source_prefix_rule_only_its_sources_go_to_fib() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    lab.ip(&[
        "route add 198.18.0.0/16 via 10.0.3.2 dev x0",
        "route add 198.18.0.0/16 via 10.0.2.3 dev out0 table 10",
        "rule add from 10.0.1.64/26 table 10 pref 100",
        "route add 2001:db8:200::/48 via 2001:db8:3::2 dev x0",
        "route add 2001:db8:200::/48 via 2001:db8:2::3 dev out0 table 10",
    ]);
    // `ip -batch` cannot take -6, and infers IPv4 for rules.
    let ok = std::process::Command::new("ip")
        .args([
            "-6",
            "rule",
            "add",
            "from",
            "2001:db8:1::100/120",
            "table",
            "10",
            "pref",
            "100",
        ])
        .status()
        .expect("ip -6 rule");
    assert!(ok.success());
    let m = sync(&lab, ForwardingSysctls::default());
    assert_eq!(
        m.config_flags() & (C::ACCEL_CFG_POLICY4.0 | C::ACCEL_CFG_POLICY6.0),
        0,
        "source-prefix rules do not switch the family to bpf_fib_lookup"
    );
    let v4 = |s| v4_frame(&lab, s, Ipv4Addr::new(198, 18, 1, 1));
    lab.forward(
        &v4(Ipv4Addr::new(10, 0, 1, 2)),
        X_PEER_MACS[0],
        &lab.x,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    lab.forward(
        &v4(Ipv4Addr::new(10, 0, 1, 70)),
        OUT_MACS[1],
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
    let v6 = |s: &str| v6_frame(&lab, s.parse().unwrap(), "2001:db8:200::1".parse().unwrap());
    lab.forward(
        &v6("2001:db8:1::2"),
        X_PEER_MACS[0],
        &lab.x,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    lab.forward(
        &v6("2001:db8:1::1aa"),
        OUT_MACS[1],
        &lab.out,
        S::ACCEL_STAT_FWD_FIB,
    );
}

#[test]
fn multipath_l4_ipv6_behind_extension_headers_goes_to_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    kernel_multipath(&lab, SEEDED_L4);
    ecmp_routes(&lab);
    let _m = sync(&lab, SEEDED_L4);
    // A fragment header first: the kernel's dissector walks it to find the
    // ports; the datapath does not, and hands the packet up.
    let mut p = V6::udp(
        "2001:db8:1::2".parse().unwrap(),
        "2001:db8:200::1".parse().unwrap(),
    );
    let mut frag = vec![17u8, 0, 0, 1, 0, 0, 0, 7];
    frag.extend(udp(1000, 2000, 16));
    p.next = 44;
    p.payload = frag;
    let f = eth(lab.inp.mac, IN_PEER_MAC, ETH_P_IPV6, &p.build());
    lab.pass(&f, S::ACCEL_STAT_PASS_MP_HASH);
}

/// A mirror kept up to date by events, as `accel run` keeps it.
struct Live {
    rt: tokio::runtime::Runtime,
    events: accel::netlink::EventStream,
    m: Mirror,
}

impl Live {
    fn start(lab: &Lab, mp: ForwardingSysctls) -> Live {
        let rt = runtime();
        let (events, m) = rt.block_on(async {
            let sub = accel::netlink::subscribe().expect("subscribe");
            tokio::spawn(sub.connection);
            let state = accel::netlink::dump(&sub.handle).await.expect("dump");
            let mut m = Mirror::new(
                iface_confs(lab, FLAGS_ALL),
                false,
                &Limits {
                    nexthops: 1024,
                    ..Limits::default()
                },
            );
            lab.apply(&m.set_forwarding_sysctls(mp));
            lab.apply(&m.resync(state));
            (sub.events, m)
        });
        Live { rt, events, m }
    }

    /// Applies the events that arrive within 300 ms.
    fn follow(&mut self, lab: &Lab) {
        let Live { rt, events, m } = self;
        rt.block_on(async {
            while let Ok(Some(ev)) =
                tokio::time::timeout(std::time::Duration::from_millis(300), events.next()).await
            {
                lab.apply(&m.apply(ev).changes);
            }
        });
    }
}

#[test]
fn ipv6_append_events_keep_the_kernel_path_order() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    kernel_multipath(&lab, SEEDED_L3);
    let mut live = Live::start(&lab, SEEDED_L3);
    // Built one `append` at a time: each notification lists the new path
    // first, the kernel's own order has it last.
    let six = |args: &[&str]| {
        let ok = std::process::Command::new("ip")
            .arg("-6")
            .args(args)
            .status()
            .expect("ip -6");
        assert!(ok.success(), "ip -6 {args:?}");
    };
    six(&[
        "route",
        "add",
        "2001:db8:200::/48",
        "via",
        "2001:db8:2::2",
        "dev",
        "out0",
    ]);
    for (gw, dev) in [
        ("2001:db8:3::2", "x0"),
        ("2001:db8:2::3", "out0"),
        ("2001:db8:3::3", "x0"),
    ] {
        six(&[
            "route",
            "append",
            "2001:db8:200::/48",
            "via",
            gw,
            "dev",
            dev,
        ]);
    }
    live.follow(&lab);
    agree(&lab, &live.m, &flows(&lab, Fam::V6, 10, false), 4);
    // One path removed, then appended again (it goes last once more).
    six(&[
        "route",
        "del",
        "2001:db8:200::/48",
        "via",
        "2001:db8:2::2",
        "dev",
        "out0",
    ]);
    six(&[
        "route",
        "append",
        "2001:db8:200::/48",
        "via",
        "2001:db8:2::2",
        "dev",
        "out0",
    ]);
    live.follow(&lab);
    agree(&lab, &live.m, &flows(&lab, Fam::V6, 11, false), 4);
}

#[test]
fn ipv4_append_leaves_the_prefix_to_fib_events_and_dump_alike() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    let mut live = Live::start(&lab, ForwardingSysctls::default());
    lab.ip(&[
        "route add 198.18.0.0/16 via 10.0.2.2 dev out0",
        "route append 198.18.0.0/16 via 10.0.3.2 dev x0",
    ]);
    live.follow(&lab);
    let f = v4_frame(
        &lab,
        Ipv4Addr::new(10, 0, 1, 2),
        Ipv4Addr::new(198, 18, 1, 1),
    );
    // The kernel uses the first route; bpf_fib_lookup says so.
    lab.forward(&f, OUT_MACS[0], &lab.out, S::ACCEL_STAT_FWD_FIB);
    let m = sync(&lab, ForwardingSysctls::default());
    let p = pfx("198.18.0.0/16");
    assert_eq!(m.entry(&p), live.m.entry(&p), "events and dump agree");
    assert_eq!(
        m.entry(&p),
        Some(accel::mirror::decision::RouteEntry::Fib(
            accel::mirror::decision::FibReason::SameKey
        ))
    );
}

#[test]
fn input_interface_rule_sends_that_ingress_to_fib() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    lab.ip(&[
        "route add 198.18.0.0/16 via 10.0.3.2 dev x0",
        "route add 198.18.0.0/16 via 10.0.2.3 dev out0 table 10",
    ]);
    let frame = || {
        v4_frame(
            &lab,
            Ipv4Addr::new(10, 0, 1, 2),
            Ipv4Addr::new(198, 18, 1, 1),
        )
    };
    // A rule for another interface: in0's packets keep the mirror.
    lab.ip(&["rule add iif out0 table 10 pref 100"]);
    let m = sync(&lab, ForwardingSysctls::default());
    assert_eq!(m.config_flags() & C::ACCEL_CFG_POLICY4.0, 0);
    lab.forward(&frame(), X_PEER_MACS[0], &lab.x, S::ACCEL_STAT_FWD_MIRROR);
    // A rule for in0 itself: bpf_fib_lookup applies it.
    lab.ip(&["rule add iif in0 table 10 pref 101"]);
    let _m = sync(&lab, ForwardingSysctls::default());
    lab.forward(&frame(), OUT_MACS[1], &lab.out, S::ACCEL_STAT_FWD_FIB);
}

#[test]
fn reverse_path_through_nexthop_objects_v4() {
    let Some(lab) = Lab::new() else { return };
    four_gateways(&lab);
    lab.sysctl(&[
        "net.ipv4.conf.all.rp_filter=2",
        "net.ipv4.conf.in0.rp_filter=2",
    ]);
    lab.ip(&[
        "route add 198.18.0.0/16 via 10.0.3.2 dev x0",
        "nexthop add id 1 via 10.0.2.2 dev out0",
        "nexthop add id 2 blackhole",
        // Sources: one behind a group over out0, one behind a blackhole
        // object.
        "route add 172.16.1.0/24 nhid 1",
        "route add 172.16.2.0/24 nhid 2",
    ]);
    let flags_loose = FLAGS_ALL | accel::bpf::types::accel_if_flags::ACCEL_IF_RPF_LOOSE.0;
    let _m = sync_with(&lab, ForwardingSysctls::default(), flags_loose);
    let from = |s| v4_frame(&lab, s, Ipv4Addr::new(198, 18, 1, 1));
    // Loose mode: a source reachable through an object is accepted.
    lab.forward(
        &from(Ipv4Addr::new(172, 16, 1, 9)),
        X_PEER_MACS[0],
        &lab.x,
        S::ACCEL_STAT_FWD_MIRROR,
    );
    // A route through a blackhole object is a blackhole route (the kernel
    // says so in its type): the reverse lookup fails, and rp_filter
    // rejects the source (-EXDEV): dropped.
    lab.drop(
        &from(Ipv4Addr::new(172, 16, 2, 9)),
        S::ACCEL_STAT_DROP_RPFILTER,
    );
}
