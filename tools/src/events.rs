//! `accel-bench events`: the control plane's cost per route event without
//! the kernel. The same mirror and route tables `accel run` keeps (the
//! tables in ordinary memory instead of BPF maps) take a whole table as
//! route additions in random order, then its removal in another random
//! order (or both in the table's order), timed in-process: what a BGP session's full-table announcement
//! and withdrawal cost the event loop, with nothing else on the clock
//! (no netlink copies, no reader thread, no other process). The live
//! figure, with FRR, is `scripts/bench/bgp.sh`'s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use accel::bpf::types::{accel_if_flags as IfFlags, accel_route};
use accel::capacity::Limits;
use accel::datapath::keys::route_value;
use accel::datapath::leaves::route_leaf;
use accel::datapath::trie::{self, Trie};
use accel::mirror::{Change, EventOutcome, IfaceConf, Mirror};
use accel::model::{
    Addr, Event, Family, KernelState, Link, Neighbour, NeighbourState, NextHop, NexthopObject,
    NhFlags, Prefix, Route, RouteKey, RouteKind, RouteProtocol, TABLE_MAIN,
};

const IFINDEX: u32 = 2;
const GW4: &str = "10.9.0.2";
const GW6: &str = "fd00:9::2";
/// The nexthop objects of the two gateways, as FRR's zebra makes them.
const NHID4: u32 = 10;
const NHID6: u32 = 11;

/// Per-phase results.
pub struct Phase {
    pub events: usize,
    pub took: Duration,
    /// Flushes after which some routes were left to bpf_fib_lookup (a
    /// node without lines, or a range without nodes): a phase that had
    /// any did less writing than `accel run` would, and more bookkeeping.
    pub short_flushes: usize,
}

impl Phase {
    pub fn ns_per_event(&self) -> f64 {
        self.took.as_nanos() as f64 / self.events.max(1) as f64
    }
}

/// The mirror and the two route tables, as `accel run` holds them.
struct Plane {
    mirror: Mirror,
    fib4: Trie<Vec<u32>>,
    fib6: Trie<Vec<u32>>,
    out: EventOutcome,
}

impl Plane {
    fn new(limits: &Limits) -> Plane {
        let flags = IfFlags::ACCEL_IF_FWD4.0 | IfFlags::ACCEL_IF_FWD6.0;
        let conf = IfaceConf {
            slot: 0,
            sysctl_flags: flags,
            mtu6: 1500,
            hook_flags: 0,
            tc_flags: 0,
        };
        let ifaces: HashMap<u32, IfaceConf> = [(IFINDEX, conf)].into_iter().collect();
        let trie = |family, lines: u32| {
            let lines = lines as usize;
            Trie::new(
                family,
                vec![0; trie::ROOT_LEAVES],
                vec![0; lines * trie::LINE_WORDS],
                lines,
            )
        };
        let mut plane = Plane {
            mirror: Mirror::new(ifaces, false, limits),
            fib4: trie(Family::V4, limits.ipv4_trie),
            fib6: trie(Family::V6, limits.ipv6_trie),
            out: EventOutcome::default(),
        };
        let changes = plane.mirror.resync(host_state());
        plane.write(&changes);
        plane
    }

    /// Touches what applying `events` will read first, as the daemon's
    /// event loop does before a burst (`Daemon::warm_ahead`).
    fn warm(&self, events: &[Event]) {
        self.mirror.warm(events.iter());
        trie::WarmBatches::of(events.iter()).warm(&self.fib4, &self.fib6);
    }

    fn fib_mut(&mut self, family: Family) -> &mut Trie<Vec<u32>> {
        match family {
            Family::V4 => &mut self.fib4,
            Family::V6 => &mut self.fib6,
        }
    }

    /// One event as the daemon applies it: mirror, then route tables.
    fn apply(&mut self, ev: Event) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.mirror.apply_into(ev, &mut out);
        self.write(&out.changes);
        self.out = out;
    }

    fn write(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::PutRoute {
                    prefix,
                    entry,
                    nh_id,
                } => {
                    let v: accel_route = route_value(entry, *nh_id);
                    let leaf = route_leaf(v.r#type, v.nh_id);
                    let addr = trie::bits(prefix.addr());
                    self.fib_mut(prefix.family())
                        .insert(addr, prefix.len(), leaf);
                }
                Change::DelRoute(prefix) => {
                    let addr = trie::bits(prefix.addr());
                    self.fib_mut(prefix.family()).remove(addr, prefix.len());
                }
                _ => {}
            }
        }
    }

    /// The tries' datapath copies written, as `accel run` does after every
    /// 64 route events of a burst and at its end.
    /// Returns whether some routes were left to bpf_fib_lookup (a node
    /// without lines, or a range degraded for lack of nodes).
    fn flush(&mut self) -> bool {
        self.fib4.flush();
        self.fib6.flush();
        self.fib4.is_degraded() || self.fib6.is_degraded()
    }
}

/// One interface with an IPv4 and an IPv6 gateway, both resolved.
fn host_state() -> KernelState {
    let link = Link {
        ifindex: IFINDEX,
        name: "r0".into(),
        mac: Some([2, 0, 0, 0, 0, 1]),
        mtu: 1500,
        admin_up: true,
        carrier: true,
        running: true,
        ignores_linkdown: false,
        carrier_downs: 0,
        dormant: false,
        kind: Some("veth".into()),
        master: None,
    };
    let addr = |a: &str, len| Addr {
        ifindex: IFINDEX,
        addr: a.parse().expect("literal"),
        prefix_len: len,
    };
    let neigh = |a: &str| Neighbour {
        ifindex: IFINDEX,
        addr: a.parse().expect("literal"),
        mac: Some([2, 0, 0, 0, 0, 2]),
        state: NeighbourState::Permanent,
    };
    let object = |id, gw: &str| NexthopObject::Single {
        id,
        ifindex: Some(IFINDEX),
        gateway: Some(gw.parse().expect("literal")),
        blackhole: false,
        flags: NhFlags::empty(),
        special: false,
    };
    KernelState {
        links: vec![link],
        addrs: vec![addr("10.9.0.1", 24), addr("fd00:9::1", 64)],
        neighbours: vec![neigh(GW4), neigh(GW6)],
        nexthops: vec![object(NHID4, GW4), object(NHID6, GW6)],
        ..KernelState::default()
    }
}

/// A BGP route to `p` through the family's gateway: as FRR installs it
/// (`objects`: through the gateway's nexthop object, which the kernel's
/// notification also expands into the path), or as BIRD does (the path
/// only).
fn bgp_route(p: Prefix, objects: bool) -> Route {
    let (gw, id): (IpAddr, u32) = match p.addr() {
        IpAddr::V4(_) => (GW4.parse().expect("literal"), NHID4),
        IpAddr::V6(_) => (GW6.parse().expect("literal"), NHID6),
    };
    Route {
        key: RouteKey {
            table: TABLE_MAIN,
            prefix: p,
            tos: 0,
            metric: 20,
        },
        kind: RouteKind::Unicast,
        protocol: RouteProtocol::Bgp,
        nexthops: [NextHop {
            ifindex: IFINDEX,
            gateway: Some(gw),
            flags: NhFlags::empty(),
            weight: 1,
        }]
        .into_iter()
        .collect(),
        nhid: objects.then_some(id),
        mtu: None,
        src_len: 0,
        encap: false,
        expires: false,
    }
}

/// The prefixes of a table file (one CIDR per line, both families).
pub fn parse_table(text: &str) -> Result<Vec<Prefix>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: {line:?} is not a prefix", n + 1);
        let (a, l) = line.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().map_err(|_| bad())?;
        out.push(Prefix::new(addr, len).ok_or_else(bad)?);
    }
    // A repeated prefix (or one differing only in host bits) would be an
    // event that changes nothing, timed as if it did.
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Route events between two writes of the tries' datapath copies (the
/// daemon's FLUSH_EVERY).
const FLUSH_EVERY: usize = 64;

/// The tries' node arrays, as a multiple of `accel run`'s default sizes.
/// A block a node leaves is reused only after its grace period (200 ms):
/// `accel run` meets a few thousand events in that time, this benchmark
/// a few hundred thousand, whose old blocks all wait out their grace at
/// once. At the default sizes the arrays ran out and over 8,000 nodes
/// were left unplaced (not written) in a random full-table run.
const LINES_FACTOR: u32 = 8;

/// How a run is driven.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Seed of the random orders; `None`: both phases in the given order.
    pub seed: Option<u64>,
    /// Routes through nexthop objects (as FRR installs them).
    pub objects: bool,
    /// Events looked up together before they are applied (see
    /// `accel::fast_hash::ShardedMap::warm`), 1 for none.
    pub warm: usize,
    /// Caches made cold between bursts, off the clock.
    pub cold: Option<Cold>,
}

/// Live, the event loop takes a burst (a batch from the netlink reader)
/// after the routing daemon's processes have run on its CPU, which leaves
/// little of the loop's tables in the caches. `Cold` reproduces that in
/// process: before every `every` events, `mib` MiB of other memory are
/// written, untimed (BENCHMARKS.md "The live event's cost is cold caches").
#[derive(Debug, Clone, Copy)]
pub struct Cold {
    pub every: usize,
    pub mib: usize,
}

/// Memory written between bursts to push the tables out of the caches.
struct Evictor {
    cold: Cold,
    junk: Vec<u64>,
    /// Events applied since the last eviction; `None` before the first.
    since: Option<usize>,
    /// Time spent evicting, taken off the phase's time.
    spent: Duration,
    evictions: usize,
}

impl Evictor {
    fn new(cold: Cold) -> Evictor {
        Evictor {
            cold,
            junk: vec![1; cold.mib << 17],
            since: None,
            spent: Duration::ZERO,
            evictions: 0,
        }
    }

    /// Before a chunk of `n` events: evicts first if a burst's worth was
    /// applied since the last time (or none has been yet).
    fn before(&mut self, n: usize) {
        if self.since.is_none_or(|s| s >= self.cold.every) {
            self.evict();
            self.since = Some(0);
        }
        self.since = self.since.map(|s| s + n);
    }

    fn evict(&mut self) {
        let t = Instant::now();
        for (i, x) in self.junk.iter_mut().enumerate() {
            *x = x.wrapping_add(i as u64);
        }
        std::hint::black_box(&mut self.junk);
        self.spent += t.elapsed();
        self.evictions += 1;
    }
}

/// Times the announcement of `prefixes` (in a random order of
/// `opts.seed`, or as given without one), then their withdrawal (in
/// another random order, or again as given).
pub fn run(prefixes: &[Prefix], opts: Options) -> (Phase, Phase) {
    let Options {
        seed,
        objects,
        warm,
        cold,
    } = opts;
    let defaults = Limits::default();
    let mut plane = Plane::new(&Limits {
        ipv4_trie: defaults.ipv4_trie * LINES_FACTOR,
        ipv6_trie: defaults.ipv6_trie * LINES_FACTOR,
        ..defaults
    });
    let mut rng = seed.map(fastrand::Rng::with_seed);
    let mut order = prefixes.to_vec();
    let mut shuffle = |order: &mut Vec<Prefix>| {
        if let Some(rng) = rng.as_mut() {
            rng.shuffle(order);
        }
    };
    shuffle(&mut order);
    let adds: Vec<Event> = order
        .iter()
        .map(|p| Event::NewRoute(bgp_route(*p, objects)))
        .collect();
    shuffle(&mut order);
    let dels: Vec<Event> = order
        .iter()
        .map(|p| Event::DelRoute(bgp_route(*p, objects)))
        .collect();
    let mut timed = |events: Vec<Event>| {
        let n = events.len();
        let mut evictor = cold.map(Evictor::new);
        let t = Instant::now();
        let (mut applied, mut short) = (0usize, 0usize);
        for chunk in events.chunks(warm) {
            if let Some(e) = evictor.as_mut() {
                e.before(chunk.len());
            }
            // As the daemon does with the events it has pending.
            accel::prefetch::all(chunk);
            if warm > 1 {
                plane.warm(chunk);
            }
            for ev in chunk {
                plane.apply(ev.clone());
                applied += 1;
                if applied % FLUSH_EVERY == 0 {
                    short += usize::from(plane.flush());
                }
            }
        }
        short += usize::from(plane.flush());
        Phase {
            events: n,
            took: t.elapsed() - evictor.map_or(Duration::ZERO, |e| e.spent),
            short_flushes: short,
        }
    };
    let add = timed(adds);
    let del = timed(dels);
    (add, del)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark applies what it times: announced prefixes are in the
    /// route tables afterwards, withdrawn ones are not.
    #[test]
    fn applies_announcements_and_withdrawals() {
        let prefixes = parse_table("192.0.2.0/24\n198.51.100.0/22\n2001:db8::/32\n").unwrap();
        let mut plane = Plane::new(&Limits::default());
        let v4 = |s: &str| trie::v4(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()));
        for objects in [true, false] {
            for p in &prefixes {
                plane.apply(Event::NewRoute(bgp_route(*p, objects)));
            }
            assert_ne!(plane.fib4.lookup(v4("192.0.2.9")), 0);
            assert_ne!(plane.fib4.lookup(v4("198.51.103.1")), 0);
            assert_eq!(plane.fib4.lookup(v4("198.51.104.1")), 0);
            let v6 = u128::from("2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap());
            assert_ne!(plane.fib6.lookup(v6), 0);
            for p in &prefixes {
                plane.apply(Event::DelRoute(bgp_route(*p, objects)));
            }
            assert_eq!(plane.fib4.lookup(v4("192.0.2.9")), 0);
            assert_eq!(plane.fib4.lookup(v4("198.51.103.1")), 0);
            assert_eq!(plane.fib6.lookup(v6), 0);
        }
    }

    /// Cold caches: an eviction before the first burst, then one per
    /// `every` events applied (chunks of the warm-up's size).
    #[test]
    fn evicts_once_per_burst() {
        let mut e = Evictor::new(Cold { every: 64, mib: 1 });
        assert_eq!(e.junk.len() * 8, 1 << 20);
        for _ in 0..8 {
            e.before(32);
        }
        assert_eq!(e.evictions, 4, "256 events in bursts of 64");
        let mut e = Evictor::new(Cold { every: 10, mib: 1 });
        for _ in 0..3 {
            e.before(32);
        }
        assert_eq!(e.evictions, 3, "a burst shorter than a chunk: every chunk");
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_table("192.0.2.0/24\n192.0.2.0/33\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(parse_table("nonsense").is_err());
    }
}
