//! One test's private router: a fresh network namespace with veth pairs, the
//! loaded datapath with its maps, and BPF_PROG_TEST_RUN with expectations.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

use accel::bpf::types::{accel_if_flags, accel_stat, accel_stats};
use accel::capacity::Limits;
use accel::datapath::{load, Loaded};
use accel::mirror::decision::{NhKey, RouteEntry};
use accel::mirror::{Change, IfaceEntry};
use accel::model::Prefix;

use super::pkt::{hex_diff, hex_dump, ipv4_csum_valid, ETH_HLEN, ETH_P_IP, ETH_P_IPV6};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;

/// The TC program's verdicts (linux/pkt_cls.h; UNSPEC is tcx's NEXT).
const TC_ACT_UNSPEC: u32 = -1i32 as u32;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

/// How many programs [`Lab::expect`] runs each frame through: counters
/// outside the per-outcome ones move once per program.
pub const HOOKS: u64 = 2;

/// Which of the datapath's two programs a frame runs through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Xdp,
    Tc,
}

/// One BPF_PROG_TEST_RUN: the program's return value and output bytes.
fn test_run(prog: &libbpf_rs::ProgramMut<'_>, ctx: &mut [u8], data: &[u8]) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; 8192];
    let input = libbpf_rs::ProgramInput {
        context_in: Some(ctx),
        data_in: Some(data),
        data_out: Some(&mut out),
        repeat: 1,
        ..Default::default()
    };
    let res = prog.test_run(input).expect("BPF_PROG_TEST_RUN");
    (res.return_value, res.data.expect("output data").to_vec())
}

/// The XDP action a TC verdict stands for (unknown ones as 100 + verdict).
fn tc_as_xdp(verdict: u32) -> u32 {
    match verdict {
        TC_ACT_UNSPEC => XDP_PASS,
        TC_ACT_SHOT => XDP_DROP,
        TC_ACT_REDIRECT => XDP_REDIRECT,
        v => 100 + v,
    }
}

/// `struct __sk_buff` as BPF_PROG_TEST_RUN takes it: 192 bytes, of which
/// the test sets ingress_ifindex, ifindex and gso_segs/gso_size.
const SKB_CTX_LEN: usize = 192;
const SKB_PRIORITY: usize = 32;
const SKB_INGRESS_IFINDEX: usize = 36;
const SKB_IFINDEX: usize = 40;
const SKB_GSO_SEGS: usize = 164;
const SKB_GSO_SIZE: usize = 176;

/// The host sending into in0 (in0p's MAC).
pub const IN_PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
pub const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
pub const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
pub const OUT_PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x02];
pub const X_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x03, 0x01];
/// The next hop's MAC as the mirror knows it.
pub const MIRROR_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];
/// The next hop's MAC as the kernel's neighbour table knows it: a frame
/// carrying it took the bpf_fib_lookup path.
pub const KERNEL_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 0x01];

pub const FLAGS_ALL: u32 = accel_if_flags::ACCEL_IF_UP.0
    | accel_if_flags::ACCEL_IF_FWD4.0
    | accel_if_flags::ACCEL_IF_FWD6.0;

/// The datapath's counter names, in the shared enum's order (the
/// product's own table, so a new counter cannot be missed here).
pub const STAT_NAMES: [&str; accel::stats::COUNTERS.len()] = {
    let mut names = [""; accel::stats::COUNTERS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = accel::stats::COUNTERS[i].1;
        i += 1;
    }
    names
};

/// Whether the golden tiers can run here; says once, on stderr, that they
/// are skipped when they cannot.
pub fn is_root() -> bool {
    static NOTE: std::sync::Once = std::sync::Once::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    NOTE.call_once(|| {
        // Straight to the stream: the harness captures eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "golden: SKIPPED (needs root: loads the XDP program and creates network namespaces)"
        );
    });
    false
}

pub fn action_name(a: u32) -> String {
    match a {
        0 => "XDP_ABORTED".into(),
        1 => "XDP_DROP".into(),
        2 => "XDP_PASS".into(),
        3 => "XDP_TX".into(),
        4 => "XDP_REDIRECT".into(),
        n => format!("action {n}"),
    }
}

pub fn stat_name(s: accel_stat) -> &'static str {
    STAT_NAMES.get(s.0 as usize).copied().unwrap_or("?")
}

pub fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').expect("prefix needs /len");
    Prefix::new(a.parse().expect("address"), l.parse().expect("length")).expect("prefix")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[derive(Clone, Copy, Debug)]
pub struct Iface {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub slot: u16,
}

pub struct Lab {
    pub dp: Loaded,
    /// Ingress, attached (slot 0).
    pub inp: Iface,
    /// Egress, attached (slot 1).
    pub out: Iface,
    /// A third interface the kernel routes through but accel does not own.
    pub x: Iface,
}

fn run_cmd(prog: &str, args: &[&str], stdin: Option<&str>) {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {prog}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?} failed ({}):\n{}{}\ninput:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        stdin.unwrap_or("")
    );
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Lab {
    /// A private netns (for this thread) with in0/in0p, out0/out0p and
    /// x0/x0p, forwarding on, the datapath loaded with in0 and out0 as
    /// its interfaces, an empty mirror and a live lease.
    ///
    /// `None` without root: the test is skipped, which is said once on
    /// stderr (past the test harness's output capture), so that `cargo
    /// test` as a normal user passes and tells what it left out.
    pub fn new() -> Option<Lab> {
        Lab::with_limits(&Limits::default())
    }

    /// [`Lab::new`] with maps sized by `limits`.
    pub fn with_limits(limits: &Limits) -> Option<Lab> {
        if !is_root() {
            return None;
        }
        // SAFETY: affects only the calling thread's netns.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );

        let batch = format!(
            "link set lo up
link add in0 address {in_mac} type veth peer name in0p address {in_peer}
link add out0 address {out_mac} type veth peer name out0p address {out_peer}
link add x0 address {x_mac} type veth peer name x0p
link set in0 up
link set in0p up
link set out0 up
link set out0p up
link set x0 up
link set x0p up
addr add 10.0.1.1/24 dev in0
addr add 10.0.2.1/24 dev out0
addr add 10.0.3.1/24 dev x0
addr add 2001:db8:1::1/64 dev in0 nodad
addr add 2001:db8:2::1/64 dev out0 nodad
addr add 2001:db8:3::1/64 dev x0 nodad
",
            in_mac = mac_str(IN_MAC),
            in_peer = mac_str(IN_PEER_MAC),
            out_mac = mac_str(OUT_MAC),
            out_peer = mac_str(OUT_PEER_MAC),
            x_mac = mac_str(X_MAC),
        );
        run_cmd("ip", &["-batch", "-"], Some(&batch));
        run_cmd(
            "sysctl",
            &[
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
            None,
        );

        let inp = Iface {
            ifindex: accel::runtime::ifindex("in0").expect("lab interface"),
            mac: IN_MAC,
            slot: 0,
        };
        let out = Iface {
            ifindex: accel::runtime::ifindex("out0").expect("lab interface"),
            mac: OUT_MAC,
            slot: 1,
        };
        let x = Iface {
            ifindex: accel::runtime::ifindex("x0").expect("lab interface"),
            mac: X_MAC,
            slot: 2,
        };
        let dp = load(limits).expect("loading the datapath (root? BPF?)");
        let lab = Lab { dp, inp, out, x };
        lab.apply(&[
            lab.put_iface(&inp, FLAGS_ALL, 1500),
            lab.put_iface(&out, FLAGS_ALL, 1500),
        ]);
        lab.apply(&[Change::Config(0)]);
        lab.dp
            .maps
            .set_deadlines(u64::MAX, u64::MAX)
            .expect("lease");
        Some(lab)
    }

    /// Runs `ip -batch` lines in this netns (family is inferred from the
    /// addresses).
    pub fn ip(&self, lines: &[&str]) {
        run_cmd("ip", &["-batch", "-"], Some(&(lines.join("\n") + "\n")));
    }

    /// `nft -f -` in the lab's namespace.
    pub fn nft(&self, ruleset: &str) {
        run_cmd("nft", &["-f", "-"], Some(ruleset));
    }

    pub fn sysctl(&self, settings: &[&str]) {
        let mut args = vec!["-q", "-w"];
        args.extend_from_slice(settings);
        run_cmd("sysctl", &args, None);
    }

    pub fn apply(&self, changes: &[Change]) {
        self.dp.maps.apply(changes).expect("Maps::apply");
    }

    // ------------------------------------------------------- mirror DSL

    pub fn put_iface(&self, i: &Iface, flags: u32, mtu: u32) -> Change {
        Change::PutIface {
            ifindex: i.ifindex,
            entry: IfaceEntry {
                mac: i.mac,
                slot: i.slot,
                mtu,
                flags,
                mtu6: mtu,
            },
        }
    }

    /// A unicast route through `gw` (None: directly connected) on `dev`.
    pub fn route(&self, prefix: &str, dev: &Iface, gw: Option<&str>, nh_id: u32) -> Vec<Change> {
        let nh = NhKey {
            ifindex: dev.ifindex,
            gateway: gw.map(ip),
        };
        vec![
            Change::PutNexthop { id: nh_id, nh },
            Change::PutRoute {
                prefix: pfx(prefix),
                entry: RouteEntry::Unicast(nh),
                nh_id,
            },
        ]
    }

    /// A route of another type (blackhole, unreachable, local, fib).
    pub fn route_kind(&self, prefix: &str, entry: RouteEntry) -> Change {
        Change::PutRoute {
            prefix: pfx(prefix),
            entry,
            nh_id: 0,
        }
    }

    pub fn neigh(&self, dev: &Iface, addr: &str, mac: [u8; 6]) -> Change {
        Change::PutNeigh {
            ifindex: dev.ifindex,
            addr: ip(addr),
            mac,
        }
    }

    pub fn local4(&self, addr: &str) -> Change {
        Change::PutLocal4(addr.parse::<Ipv4Addr>().expect("IPv4 address"))
    }

    // ------------------------------------------------------ test runs

    /// BPF_PROG_TEST_RUN of `frame` arriving on `ingress`, with `meta` bytes
    /// of XDP metadata in front (0 normally). Returns the action and the
    /// output frame (metadata removed).
    pub fn run_on(&self, ingress: u32, frame: &[u8], meta: usize) -> (u32, Vec<u8>) {
        self.run_xdp(ingress, frame, meta)
    }

    /// A run through either program; the TC program's verdict is given as
    /// the XDP action it stands for (pass, drop, redirect), so that one
    /// expectation serves both.
    pub fn run_hook(&self, hook: Hook, ingress: u32, frame: &[u8], meta: usize) -> (u32, Vec<u8>) {
        match hook {
            Hook::Xdp => self.run_xdp(ingress, frame, meta),
            Hook::Tc => {
                let (verdict, out) = self.run_tc(ingress, frame, 0);
                (tc_as_xdp(verdict), out)
            }
        }
    }

    /// BPF_PROG_TEST_RUN of the TC program: `frame` as an skb received on
    /// `ingress`, a GSO packet of `gso_size`-byte segments unless 0.
    pub fn run_tc(&self, ingress: u32, frame: &[u8], gso_size: u32) -> (u32, Vec<u8>) {
        let mut ctx = vec![0u8; SKB_CTX_LEN];
        let mut put = |off: usize, v: u32| ctx[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        put(SKB_INGRESS_IFINDEX, ingress);
        put(SKB_IFINDEX, ingress);
        if gso_size != 0 {
            put(SKB_GSO_SIZE, gso_size);
            put(SKB_GSO_SEGS, (frame.len() as u32).div_ceil(gso_size));
        }
        test_run(&self.dp.skel.progs.accel_tc, &mut ctx, frame)
    }

    /// [`Lab::run_tc`] of a packet with skb->priority `priority` (not GSO)
    /// on in0, run as a TC interface: the verdict and the priority the
    /// program left.
    pub fn tc_priority(&self, frame: &[u8], priority: u32) -> (u32, u32) {
        let mut ctx = vec![0u8; SKB_CTX_LEN];
        let mut put = |off: usize, v: u32| ctx[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        put(SKB_INGRESS_IFINDEX, self.inp.ifindex);
        put(SKB_IFINDEX, self.inp.ifindex);
        put(SKB_PRIORITY, priority);
        let mut ctx_out = vec![0u8; SKB_CTX_LEN];
        let mut out = vec![0u8; 8192];
        let run = || {
            let input = libbpf_rs::ProgramInput {
                context_in: Some(&mut ctx),
                context_out: Some(&mut ctx_out),
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: 1,
                ..Default::default()
            };
            let prog = &self.dp.skel.progs.accel_tc;
            prog.test_run(input)
                .expect("BPF_PROG_TEST_RUN")
                .return_value
        };
        let verdict = tc_as_xdp(self.as_tc_interface(run));
        let at = SKB_PRIORITY;
        let got = u32::from_ne_bytes(ctx_out[at..at + 4].try_into().unwrap());
        (verdict, got)
    }

    fn run_xdp(&self, ingress: u32, frame: &[u8], meta: usize) -> (u32, Vec<u8>) {
        let mut data = vec![0u8; meta];
        data.extend_from_slice(frame);
        let md: [u32; 6] = [meta as u32, data.len() as u32, 0, ingress, 0, 0];
        let mut ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let (action, got) = test_run(&self.dp.skel.progs.accel_xdp, &mut ctx, &data);
        (action, got[meta.min(got.len())..].to_vec())
    }

    fn all_stats(&self) -> Vec<accel_stats> {
        (0..3u16)
            .map(|s| self.dp.maps.stats(s).expect("stats"))
            .collect()
    }

    /// Runs `frame` on in0 through both programs, XDP and TC, and checks
    /// for each the action, the output bytes, and that exactly counter
    /// `stat` of in0's slot moved by one (and, for a forward, fwd_bytes by
    /// the output length). Where the TC program differs by design it is
    /// held to its own expectation ([`tc_expectation`]).
    #[track_caller]
    pub fn expect(&self, frame: &[u8], meta: usize, action: u32, want: &[u8], stat: accel_stat) {
        self.expect_on(Hook::Xdp, frame, meta, action, want, stat);
        if !skb_test_run_takes(frame) {
            return;
        }
        let (action, want, stat) = tc_expectation(frame, action, want, stat);
        self.expect_on(Hook::Tc, frame, meta, action, &want, stat);
    }

    /// [`Lab::expect`] for one program.
    #[track_caller]
    pub fn expect_on(
        &self,
        hook: Hook,
        frame: &[u8],
        meta: usize,
        action: u32,
        want: &[u8],
        stat: accel_stat,
    ) {
        let run = || match hook {
            Hook::Xdp => self.run_hook(hook, self.inp.ifindex, frame, meta),
            Hook::Tc => self.as_tc_interface(|| self.run_hook(hook, self.inp.ifindex, frame, meta)),
        };
        self.expect_run(&format!("{hook:?} program"), run, frame, action, want, stat);
    }

    /// Runs `f` with in0 marked as served through TC (ACCEL_IF_TC): the TC
    /// program decides everything arriving there, as on a TC interface.
    pub fn as_tc_interface<T>(&self, f: impl FnOnce() -> T) -> T {
        let e = self.dp.maps.iface(self.inp.ifindex).expect("in0's entry");
        let put = |flags: u32| Change::PutIface {
            ifindex: self.inp.ifindex,
            entry: IfaceEntry {
                mac: e.mac,
                slot: e.slot,
                mtu: e.mtu,
                flags,
                mtu6: e.mtu6,
            },
        };
        self.apply(&[put(e.flags | accel_if_flags::ACCEL_IF_TC.0)]);
        let r = f();
        self.apply(&[put(e.flags)]);
        r
    }

    /// [`Lab::expect`] for the TC program with `frame` as a GSO packet of
    /// `gso_size`-byte segments (GRO merged it).
    #[track_caller]
    pub fn expect_gso(
        &self,
        frame: &[u8],
        gso_size: u32,
        action: u32,
        want: &[u8],
        stat: accel_stat,
    ) {
        let run = || {
            let (verdict, out) =
                self.as_tc_interface(|| self.run_tc(self.inp.ifindex, frame, gso_size));
            (tc_as_xdp(verdict), out)
        };
        self.expect_run(
            &format!("TC, GSO {gso_size}"),
            run,
            frame,
            action,
            want,
            stat,
        );
    }

    #[track_caller]
    fn expect_run(
        &self,
        what: &str,
        run: impl FnOnce() -> (u32, Vec<u8>),
        frame: &[u8],
        action: u32,
        want: &[u8],
        stat: accel_stat,
    ) {
        let before = self.all_stats();
        let (got_action, got) = run();
        let after = self.all_stats();

        let mut errors = Vec::new();
        if got_action != action {
            errors.push(format!(
                "action: expected {}, got {}",
                action_name(action),
                action_name(got_action)
            ));
        }
        if got != want {
            errors.push(format!(
                "output bytes differ:\n{}",
                hex_diff("expected", want, "got", &got)
            ));
        }
        let mut moved = Vec::new();
        for (slot, (b, a)) in before.iter().zip(after.iter()).enumerate() {
            for i in 0..STAT_NAMES.len() {
                let d = a.packets[i].wrapping_sub(b.packets[i]);
                if d != 0 {
                    moved.push((slot, i, d));
                }
            }
            let fb = a.fwd_bytes.wrapping_sub(b.fwd_bytes);
            let want_fb = if action == XDP_REDIRECT && slot == self.inp.slot as usize {
                want.len() as u64
            } else {
                0
            };
            if fb != want_fb {
                errors.push(format!(
                    "slot {slot} fwd_bytes moved by {fb}, expected {want_fb}"
                ));
            }
        }
        let expected_moved = vec![(self.inp.slot as usize, stat.0 as usize, 1u64)];
        if moved != expected_moved {
            let fmt = |v: &[(usize, usize, u64)]| {
                v.iter()
                    .map(|(s, i, d)| format!("slot {s} {} +{d}", STAT_NAMES[*i]))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            errors.push(format!(
                "counters: expected [{}], got [{}]",
                fmt(&expected_moved),
                fmt(&moved)
            ));
        }
        if !errors.is_empty() {
            panic!(
                "golden packet mismatch, {what} (expected {} / {}):\n  {}\ninput frame:\n{}",
                action_name(action),
                stat_name(stat),
                errors.join("\n  "),
                hex_dump(frame)
            );
        }
    }

    /// XDP_PASS with the frame unchanged and counter `stat` moved.
    #[track_caller]
    pub fn pass(&self, frame: &[u8], stat: accel_stat) {
        self.expect(frame, 0, XDP_PASS, frame, stat);
    }

    /// XDP_DROP (frame unchanged) and counter `stat` moved.
    #[track_caller]
    pub fn drop(&self, frame: &[u8], stat: accel_stat) {
        self.expect(frame, 0, XDP_DROP, frame, stat);
    }

    /// XDP_REDIRECT with the frame rewritten as the kernel would forward it
    /// to `dmac` through `out`.
    #[track_caller]
    pub fn forward(&self, frame: &[u8], dmac: [u8; 6], out: &Iface, stat: accel_stat) {
        let want = forwarded(frame, dmac, out.mac);
        self.expect(frame, 0, XDP_REDIRECT, &want, stat);
        // The expected bytes were built with the kernel's ip_decrease_ttl;
        // check independently that the result is a valid header.
        if ethertype(&want) == ETH_P_IP {
            let ihl = (want[ETH_HLEN] & 0x0f) as usize * 4;
            assert!(
                ipv4_csum_valid(&want[ETH_HLEN..ETH_HLEN + ihl]),
                "forwarded IPv4 header checksum does not verify"
            );
        }
    }
}

/// Whether BPF_PROG_TEST_RUN builds an skb from `frame`: it refuses
/// frames shorter than an Ethernet header, or than the IPv4 or IPv6
/// header their ethertype announces (bpf_prog_test_run_skb pulls it).
/// Such runts reach a real TC hook, but the test cannot hand them over.
pub fn skb_test_run_takes(frame: &[u8]) -> bool {
    frame.len() >= ETH_HLEN
        && match ethertype(frame) {
            ETH_P_IP => frame.len() >= ETH_HLEN + 20,
            ETH_P_IPV6 => frame.len() >= ETH_HLEN + 40,
            _ => true,
        }
}

/// What the TC program does where the XDP program was expected to do
/// `action` / `stat`: the same, except that a next hop without a resolved
/// neighbour is forwarded through bpf_redirect_neigh (the kernel writes the
/// MACs once it resolves it) where XDP has to pass the packet.
pub fn tc_expectation(
    frame: &[u8],
    action: u32,
    want: &[u8],
    stat: accel_stat,
) -> (u32, Vec<u8>, accel_stat) {
    if stat == accel_stat::ACCEL_STAT_PASS_NO_NEIGH {
        let dmac: [u8; 6] = frame[0..6].try_into().unwrap();
        let smac: [u8; 6] = frame[6..12].try_into().unwrap();
        return (
            XDP_REDIRECT,
            forwarded(frame, dmac, smac),
            accel_stat::ACCEL_STAT_FWD_NEIGH,
        );
    }
    (action, want.to_vec(), stat)
}

pub fn ethertype(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[12], f[13]])
}

/// The frame the kernel's forwarding path would transmit: new MACs,
/// Ethernet padding removed, TTL/hop limit decremented (IPv4 checksum
/// patched like ip_decrease_ttl()).
pub fn forwarded(frame: &[u8], dmac: [u8; 6], smac: [u8; 6]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[0..6].copy_from_slice(&dmac);
    f[6..12].copy_from_slice(&smac);
    let l3 = ETH_HLEN;
    match ethertype(frame) {
        ETH_P_IP => {
            let tot = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize;
            f.truncate(l3 + tot);
            // ip_decrease_ttl(), on the checksum as stored in memory.
            let mut check = u16::from_ne_bytes([f[l3 + 10], f[l3 + 11]]) as u32;
            check += u16::from_ne_bytes([0x01, 0x00]) as u32;
            let check = (check + (check >= 0xffff) as u32) as u16;
            f[l3 + 10..l3 + 12].copy_from_slice(&check.to_ne_bytes());
            f[l3 + 8] -= 1;
        }
        ETH_P_IPV6 => {
            let plen = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) as usize;
            f.truncate(l3 + 40 + plen);
            f[l3 + 7] -= 1;
        }
        t => panic!("cannot forward ethertype {t:#06x}"),
    }
    f
}
