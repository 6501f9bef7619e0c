//! `accel-bench stages`: where accel_xdp's time per frame goes, stage by
//! stage, against the ceiling forwarder (issue 12).
//!
//! The product's XDP program runs through BPF_PROG_TEST_RUN on frames that
//! stop at successive points of its path — a frame for another host (the
//! prologue: lease, route lookup (looked up first since 5d2937b, so stage
//! figures from before it are not comparable), interface, counters,
//! configuration, Ethernet), a TTL of 1 (parse, checks, next hop, egress:
//! everything before the neighbour and the source check), a forwarded
//! frame (neighbour, source check, counters, rewrite, redirect), the same
//! through bpf_fib_lookup —
//! and the ceiling forwarder (`ceiling.bpf.c`) runs on the forwarded frame.
//! One more forwarded frame per family reads a different number of trie
//! levels (fib.h) than the first: the IPv4 one goes three levels down
//! (under a /28), the IPv6 one none (under 2000::/3, which the root
//! answers), so that the difference is the levels' cost. And one per
//! family goes through a multipath route of four paths (a nexthop group),
//! the kernel's hash computed in XDP (multipath.h), as with
//! `fib_multipath_hash_seed` set.
//! Each frame is the same at every repetition, so the caches are warm:
//! these are the path's instruction costs; what the live benchmark adds on
//! top is memory (random destinations in large tables) and the transmit.
//!
//! The program rewrites a forwarded frame in place, and a test run repeats
//! on the same buffer: the TTL starts at 255 and a run repeats at most
//! [`FORWARD_REPEAT`] times, and the gateways' MAC is the ingress's own,
//! so that every repetition is again a frame for the router and still
//! forwards. A run counts only if every repetition ended in the stage's
//! own counter (a frame the mirror could not forward would still be
//! redirected, through bpf_fib_lookup, and counted there); otherwise the
//! tool stops and names the counters the frames went to.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context, Result};
use libbpf_rs::ProgramInput;

use accel::bpf::types::{accel_cfg_flags as Cfg, accel_if_flags as If, accel_stat as S};
use accel::capacity::Limits;
use accel::datapath::{load, Loaded};
use accel::mirror::decision::{NhKey, RouteEntry};
use accel::mirror::{Change, IfaceEntry};
use accel::model::Prefix;
use accel_packet as packet;

/// Repetitions of a run whose frame is forwarded (TTL 255 at the start).
pub const FORWARD_REPEAT: u32 = 250;
const XDP_REDIRECT: u32 = 4;

const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const IN_PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
/// The gateways' MAC is in0's own: a forwarded frame is rewritten to
/// in0's address, so that the next repetition on the same buffer is again
/// a frame for the router (see the module's comment).
const GW_MAC: [u8; 6] = IN_MAC;
const OTHER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x09, 0x09];
const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
/// Under 198.18.0.0/15 alone: the trie's root answers.
const DST4: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 9);
/// Under 198.19.3.0/28: the root, then the nodes of 198.19/16 and
/// 198.19.3/24.
const DST4_DEEP: Ipv4Addr = Ipv4Addr::new(198, 19, 3, 9);
const GW4: &str = "10.0.2.2";
const SRC6: &str = "2001:db8:1::2";
/// Under 2001:db8:77::/48: the root and four levels of nodes.
const DST6: &str = "2001:db8:77::9";
/// Under 2000::/3 alone: the root answers.
const DST6_ROOT: &str = "2a00::9";
const GW6: &str = "2001:db8:2::2";
/// Under routes over four paths (a nexthop group), hashed in XDP.
const DST4_ECMP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
const DST6_ECMP: &str = "2001:db8:99::9";
/// The group's id and its paths' gateways (next-hop ids 3..=6 and 7..=10).
const GROUP4: u32 = 20;
const GROUP6: u32 = 21;
const PATHS4: [&str; 4] = ["10.0.2.3", "10.0.2.4", "10.0.2.5", "10.0.2.6"];
const PATHS6: [&str; 4] = [
    "2001:db8:2::3",
    "2001:db8:2::4",
    "2001:db8:2::5",
    "2001:db8:2::6",
];
/// The kernel's multipath hash seed (net.ipv4.fib_multipath_hash_seed),
/// as the mirror would have read it.
const MP_SEED: u32 = 0x5eed;
/// With the seed known, multipath routes are hashed in XDP.
const MP_FLAGS: u32 = Cfg::ACCEL_CFG_MP_HASH4.0 | Cfg::ACCEL_CFG_MP_HASH6.0;

/// Where every repetition of a stage's frame must end.
#[derive(Clone, Copy)]
enum Expect {
    /// accel_xdp: in this counter.
    Counted(S),
    /// The ceiling forwarder (which counts nothing): redirected.
    Redirected,
}

/// One measured stage.
pub struct Stage {
    pub name: &'static str,
    /// Median ns per frame over the runs, and the fastest run's.
    pub median_ns: f64,
    pub min_ns: f64,
}

/// The datapath in a namespace of its own with two interfaces, one route
/// per family through a resolved gateway, and the ceiling forwarder.
struct Bench {
    dp: Loaded,
    ceiling: crate::ceiling::CeilingSkel<'static>,
    in_ifindex: u32,
}

fn ip_batch(lines: &str) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running ip")?;
    child
        .stdin
        .take()
        .context("ip's stdin")?
        .write_all(lines.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "ip -batch: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn mac(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').expect("literal prefix");
    Prefix::new(a.parse().expect("literal"), l.parse().expect("literal")).expect("literal")
}

impl Bench {
    fn new() -> Result<Bench> {
        // SAFETY: no memory-safety preconditions; it moves the calling
        // thread (and the `ip` it starts) into a new network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            bail!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
        }
        ip_batch(&format!(
            "link set lo up
link add in0 address {} type veth peer name in0p address {}
link add out0 address {} type veth peer name out0p address {}
link set in0 up
link set in0p up
link set out0 up
link set out0p up
addr add 10.0.1.1/24 dev in0
addr add 10.0.2.1/24 dev out0
addr add 2001:db8:1::1/64 dev in0 nodad
addr add 2001:db8:2::1/64 dev out0 nodad
route add 198.18.0.0/15 via {GW4}
route add 198.19.3.0/28 via {GW4}
route add 2001:db8:77::/48 via {GW6}
route add 2000::/3 via {GW6}
neigh add {GW4} lladdr {} dev out0 nud permanent
neigh add {GW6} lladdr {} dev out0 nud permanent
",
            mac(IN_MAC),
            mac(IN_PEER_MAC),
            mac(OUT_MAC),
            mac(GW_MAC),
            mac(GW_MAC),
            mac(GW_MAC),
        ))?;
        for s in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            let (k, v) = s.split_once('=').expect("literal");
            std::fs::write(format!("/proc/sys/{}", k.replace('.', "/")), v)
                .with_context(|| s.to_string())?;
        }
        let in_ifindex = accel::runtime::ifindex("in0")?;
        let out_ifindex = accel::runtime::ifindex("out0")?;
        let dp = load(&Limits::default()).context("loading the datapath")?;
        let flags = If::ACCEL_IF_UP.0 | If::ACCEL_IF_FWD4.0 | If::ACCEL_IF_FWD6.0;
        let iface = |ifindex, mac, slot| Change::PutIface {
            ifindex,
            entry: IfaceEntry {
                mac,
                slot,
                mtu: 1500,
                flags,
                mtu6: 1500,
            },
        };
        let route = |p: &str, gw: &str, id| {
            let nh = NhKey {
                ifindex: out_ifindex,
                gateway: Some(gw.parse().expect("literal")),
            };
            [
                Change::PutNexthop { id, nh },
                Change::PutRoute {
                    prefix: prefix(p),
                    entry: RouteEntry::Unicast(nh),
                    nh_id: id,
                },
                Change::PutNeigh {
                    ifindex: out_ifindex,
                    addr: gw.parse().expect("literal"),
                    mac: GW_MAC,
                },
            ]
        };
        let mut changes = vec![
            iface(in_ifindex, IN_MAC, 0),
            iface(out_ifindex, OUT_MAC, 1),
            Change::Config(0),
        ];
        changes.extend(route("198.18.0.0/15", GW4, 1));
        changes.extend(route("198.19.3.0/28", GW4, 1));
        changes.extend(route("2001:db8:77::/48", GW6, 2));
        changes.extend(route("2000::/3", GW6, 2));
        changes.extend(group("198.51.100.0/24", GROUP4, 3, &PATHS4, out_ifindex));
        changes.extend(group("2001:db8:99::/48", GROUP6, 7, &PATHS6, out_ifindex));
        changes.push(Change::MpSeed(MP_SEED));
        dp.maps.apply(&changes)?;
        dp.maps.set_deadlines(u64::MAX, u64::MAX)?;
        let ceiling = ceiling(out_ifindex)?;
        Ok(Bench {
            dp,
            ceiling,
            in_ifindex,
        })
    }

    fn set_config(&self, flags: u32) -> Result<()> {
        self.dp.maps.apply(&[Change::Config(flags)])?;
        Ok(())
    }

    /// ns per repetition of `frame` arriving on in0 through `prog`, after
    /// checking that every repetition ended where `want` says.
    fn run(
        &self,
        prog: &libbpf_rs::ProgramMut<'_>,
        frame: &[u8],
        repeat: u32,
        want: Expect,
    ) -> Result<u64> {
        let md: [u32; 6] = [0, frame.len() as u32, 0, self.in_ifindex, 0, 0];
        let mut ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut out = vec![0u8; 2048];
        let input = ProgramInput {
            context_in: Some(&mut ctx),
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..Default::default()
        };
        let before = self.dp.maps.stats(0)?;
        let r = prog.test_run(input).context("BPF_PROG_TEST_RUN")?;
        match want {
            // A test run returns the last repetition's verdict only; the
            // counters count them all.
            Expect::Counted(stat) => {
                let after = self.dp.maps.stats(0)?;
                let delta = |s: S| after.packets[s.0 as usize] - before.packets[s.0 as usize];
                if delta(stat) != u64::from(repeat) {
                    let went: Vec<String> = accel::stats::COUNTERS
                        .iter()
                        .filter(|(s, _)| delta(*s) != 0)
                        .map(|(s, name)| format!("{name} +{}", delta(*s)))
                        .collect();
                    bail!(
                        "{repeat} repetitions, {} of them counted as {} (counters: {})",
                        delta(stat),
                        accel::stats::COUNTERS[stat.0 as usize].1,
                        went.join(", ")
                    );
                }
            }
            Expect::Redirected => ensure!(
                r.return_value == XDP_REDIRECT,
                "the ceiling forwarder returned {} instead of XDP_REDIRECT",
                r.return_value
            ),
        }
        Ok(r.duration.as_nanos() as u64)
    }
}

/// A route over `gateways` on `out_ifindex` (next-hop ids from
/// `first_nh`), through group `id` of equal weights.
fn group(p: &str, id: u32, first_nh: u32, gateways: &[&str], out_ifindex: u32) -> Vec<Change> {
    let bounds = accel::mirror::groups::upper_bounds(&vec![1; gateways.len()]);
    let mut changes = Vec::new();
    let mut paths = Vec::new();
    for ((k, gw), bound) in gateways.iter().enumerate().zip(bounds) {
        let addr = gw.parse().expect("literal");
        let nh_id = first_nh + k as u32;
        let nh = NhKey {
            ifindex: out_ifindex,
            gateway: Some(addr),
        };
        changes.push(Change::PutNexthop { id: nh_id, nh });
        changes.push(Change::PutNeigh {
            ifindex: out_ifindex,
            addr,
            mac: GW_MAC,
        });
        paths.push((nh_id, bound));
    }
    changes.push(Change::PutGroup {
        id,
        blackhole: false,
        paths,
    });
    changes.push(Change::PutRoute {
        prefix: prefix(p),
        entry: RouteEntry::Object(id),
        nh_id: id,
    });
    changes
}

/// The ceiling forwarder with every tag sent to `out_ifindex`'s gateway.
fn ceiling(out_ifindex: u32) -> Result<crate::ceiling::CeilingSkel<'static>> {
    let skel = crate::ceiling::load()?;
    for tag in 0..crate::ceiling::TAGS {
        crate::ceiling::set_adjacency(&skel, tag, GW_MAC, OUT_MAC)?;
    }
    crate::ceiling::set_egress(&skel, out_ifindex)?;
    Ok(skel)
}

fn frame4(dst_mac: [u8; 6], ttl: u8, dst: Ipv4Addr) -> Vec<u8> {
    let p = packet::V4::udp(SRC4, dst).ttl(ttl).total(46);
    packet::eth(dst_mac, IN_PEER_MAC, packet::ETH_P_IP, &p.build())
}

fn frame6(dst_mac: [u8; 6], hop: u8, dst: &str) -> Vec<u8> {
    let src: Ipv6Addr = SRC6.parse().expect("literal");
    let dst: Ipv6Addr = dst.parse().expect("literal");
    let p = packet::V6::udp(src, dst).hop(hop).total(46 + 20);
    packet::eth(dst_mac, IN_PEER_MAC, packet::ETH_P_IPV6, &p.build())
}

/// Median and minimum of `runs` runs of `one`.
fn measure(runs: usize, mut one: impl FnMut() -> Result<u64>) -> Result<(f64, f64)> {
    let mut v = (0..runs).map(|_| one()).collect::<Result<Vec<u64>>>()?;
    v.sort_unstable();
    Ok((v[v.len() / 2] as f64, v[0] as f64))
}

/// Measures every stage of both families.
pub fn run(runs: usize, repeat: u32) -> Result<Vec<Stage>> {
    ensure!(
        runs > 0 && repeat > 0,
        "runs and repetitions must be at least 1"
    );
    let (not_for_us, ttl) = (
        Expect::Counted(S::ACCEL_STAT_PASS_NOT_FOR_US),
        Expect::Counted(S::ACCEL_STAT_PASS_TTL),
    );
    let (mirror, fib) = (
        Expect::Counted(S::ACCEL_STAT_FWD_MIRROR),
        Expect::Counted(S::ACCEL_STAT_FWD_FIB),
    );
    let b = Bench::new()?;
    let accel = &b.dp.skel.progs.accel_xdp;
    let ceiling = &b.ceiling.progs.ceiling_fwd;
    let fwd = FORWARD_REPEAT.min(repeat);
    let mut out = Vec::new();
    let mut stage = |name, r: (f64, f64)| {
        out.push(Stage {
            name,
            median_ns: r.0,
            min_ns: r.1,
        })
    };
    for v6 in [false, true] {
        let frame = |mac, ttl, other: bool| match (v6, other) {
            (true, false) => frame6(mac, ttl, DST6),
            (true, true) => frame6(mac, ttl, DST6_ROOT),
            (false, false) => frame4(mac, ttl, DST4),
            (false, true) => frame4(mac, ttl, DST4_DEEP),
        };
        let ecmp_frame = if v6 {
            frame6(IN_MAC, 255, DST6_ECMP)
        } else {
            frame4(IN_MAC, 255, DST4_ECMP)
        };
        let (not_us, ttl1, fwd_frame, other_depth) = (
            frame(OTHER_MAC, 64, false),
            frame(IN_MAC, 1, false),
            frame(IN_MAC, 255, false),
            frame(IN_MAC, 255, true),
        );
        let names: [&'static str; 7] = if v6 {
            [
                "IPv6 prologue (frame for another host)",
                "IPv6 up to the egress (hop limit 1)",
                "IPv6 forwarded from the mirror",
                "IPv6 forwarded through bpf_fib_lookup",
                "IPv6 ceiling forwarder",
                "IPv6 forwarded from the mirror, the root alone (2000::/3)",
                "IPv6 forwarded from the mirror, four paths hashed (a /48)",
            ]
        } else {
            [
                "IPv4 prologue (frame for another host)",
                "IPv4 up to the egress (TTL 1)",
                "IPv4 forwarded from the mirror",
                "IPv4 forwarded through bpf_fib_lookup",
                "IPv4 ceiling forwarder",
                "IPv4 forwarded from the mirror, three levels (a /28)",
                "IPv4 forwarded from the mirror, four paths hashed (a /24)",
            ]
        };
        stage(
            names[0],
            measure(runs, || b.run(accel, &not_us, repeat, not_for_us))?,
        );
        stage(
            names[1],
            measure(runs, || b.run(accel, &ttl1, repeat, ttl))?,
        );
        stage(
            names[2],
            measure(runs, || b.run(accel, &fwd_frame, fwd, mirror))?,
        );
        b.set_config(Cfg::ACCEL_CFG_FIB_ONLY.0)?;
        stage(
            names[3],
            measure(runs, || b.run(accel, &fwd_frame, fwd, fib))?,
        );
        b.set_config(0)?;
        stage(
            names[4],
            measure(runs, || b.run(ceiling, &fwd_frame, fwd, Expect::Redirected))?,
        );
        stage(
            names[5],
            measure(runs, || b.run(accel, &other_depth, fwd, mirror))?,
        );
        b.set_config(MP_FLAGS)?;
        stage(
            names[6],
            measure(runs, || b.run(accel, &ecmp_frame, fwd, mirror))?,
        );
        b.set_config(0)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// Every stage's frame ends where the stage says (the runs check each
    /// verdict); needs root for the namespace and the BPF programs.
    #[test]
    fn stages_reach_their_verdicts() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("stages: SKIPPED (needs root: BPF programs in a network namespace)");
            return;
        }
        let stages = super::run(3, 20).expect("every stage runs");
        assert_eq!(stages.len(), 14);
        assert!(stages.iter().all(|s| s.min_ns <= s.median_ns));
    }
}
