//! The mirror with tiny structures against the same mirror with room to
//! spare: every route forwards to the same next hops or asks
//! bpf_fib_lookup, never anything else; neighbours and local addresses are
//! left out only when there is no room, with the datapath told so; what was
//! left out comes back once there is room; a resync finds nothing to change.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use super::super::tests::{link, mirror_with, neigh, prefix, route, rule4, LAN, WAN};
use super::*;
use crate::capacity::Limits;
use crate::mirror::{CfgFlags, KernelState};
use crate::model::{Addr, Event, NeighbourState, NextHop, Route, RouteKind, TABLE_MAIN};

/// The datapath's maps, as the changes leave them.
#[derive(Debug, Default)]
struct Dp {
    nexthops: HashMap<u32, NhKey>,
    groups: HashMap<u32, (bool, Vec<(u32, u32)>)>,
    routes: HashMap<Prefix, (RouteEntry, u32)>,
    neigh: HashMap<(u32, IpAddr), [u8; 6]>,
    local4: HashSet<Ipv4Addr>,
    src_rules: HashSet<Prefix>,
    config: u32,
}

/// What a route makes the datapath do.
#[derive(Debug, PartialEq, Eq)]
enum Does {
    /// Forward by one of these (next hop, upper bound) paths; drop when
    /// blackhole.
    Paths(bool, Vec<(NhKey, u32)>),
    AskFib,
    Other(RouteEntry),
}

impl Dp {
    fn apply(&mut self, changes: &[Change]) {
        for c in changes.iter().cloned() {
            match c {
                Change::PutNexthop { id, nh } => {
                    self.nexthops.insert(id, nh);
                }
                Change::PutGroup {
                    id,
                    blackhole,
                    paths,
                } => {
                    self.groups.insert(id, (blackhole, paths));
                }
                Change::PutRoute {
                    prefix,
                    entry,
                    nh_id,
                } => {
                    self.routes.insert(prefix, (entry, nh_id));
                }
                Change::DelRoute(p) => {
                    self.routes.remove(&p);
                }
                Change::PutNeigh { ifindex, addr, mac } => {
                    self.neigh.insert((ifindex, addr), mac);
                }
                Change::DelNeigh { ifindex, addr } => {
                    self.neigh.remove(&(ifindex, addr));
                }
                Change::PutLocal4(a) => {
                    self.local4.insert(a);
                }
                Change::DelLocal4(a) => {
                    self.local4.remove(&a);
                }
                Change::PutSrcRule(p) => {
                    self.src_rules.insert(p);
                }
                Change::DelSrcRule(p) => {
                    self.src_rules.remove(&p);
                }
                Change::Config(f) => self.config = f,
                _ => {}
            }
        }
    }

    fn does(&self, p: &Prefix) -> Option<Does> {
        let (entry, id) = *self.routes.get(p)?;
        Some(match entry {
            RouteEntry::Unicast(_) => Does::Paths(false, vec![(self.nexthops[&id], 0)]),
            RouteEntry::Multipath(_) | RouteEntry::Object(_) => {
                let (blackhole, paths) = &self.groups[&id];
                if !blackhole && paths.is_empty() {
                    Does::AskFib
                } else {
                    let paths = paths.iter().map(|(n, b)| (self.nexthops[n], *b));
                    Does::Paths(*blackhole, paths.collect())
                }
            }
            RouteEntry::Fib(_) => Does::AskFib,
            // Which counter slot a blackhole uses does not change what
            // happens to the packet.
            other => Does::Other(other),
        })
    }
}

fn gw(i: u64) -> String {
    format!("10.0.2.{}", 2 + i)
}

fn multipath(p: &str, gws: &[String]) -> Route {
    let mut r = route(TABLE_MAIN, p, 0, RouteKind::Unicast, None);
    r.nexthops = gws
        .iter()
        .map(|g| NextHop {
            ifindex: WAN,
            gateway: Some(g.parse().unwrap()),
            flags: crate::model::NhFlags::empty(),
            weight: 1,
        })
        .collect();
    r
}

fn addr(a: &str) -> Addr {
    Addr {
        ifindex: LAN,
        addr: a.parse().unwrap(),
        prefix_len: 24,
    }
}

struct Rnd(fastrand::Rng);
impl Rnd {
    fn next(&mut self) -> u64 {
        self.0.u64(..)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random kernel change among 12 prefixes, 6 gateways, 4 addresses.
fn random_event(rnd: &mut Rnd, kernel: &KernelState) -> Event {
    let p = format!("10.{}.0.0/16", 10 + rnd.below(12));
    match rnd.below(10) {
        0..=3 => {
            let r = route(
                TABLE_MAIN,
                &p,
                0,
                RouteKind::Unicast,
                Some((WAN, Some(&gw(rnd.below(6))))),
            );
            Event::NewRoute(r)
        }
        4 => {
            let n = 2 + rnd.below(2);
            let gws: Vec<String> = (0..n).map(|_| gw(rnd.below(6))).collect();
            Event::NewRoute(multipath(&p, &gws))
        }
        5 => Event::NewRoute(route(TABLE_MAIN, &p, 0, RouteKind::Blackhole, None)),
        6 => match kernel.routes.iter().find(|r| r.key.prefix == prefix(&p)) {
            Some(r) => Event::DelRoute(r.clone()),
            None => Event::Overrun,
        },
        7 => {
            let state = [NeighbourState::Reachable, NeighbourState::Failed][rnd.below(2) as usize];
            Event::NewNeigh(neigh(WAN, &gw(rnd.below(6)), state))
        }
        _ => {
            let a = addr(&format!("10.0.1.{}", 1 + rnd.below(4)));
            if rnd.below(2) == 0 {
                Event::NewAddr(a)
            } else {
                Event::DelAddr(a)
            }
        }
    }
}

/// Keeps `kernel` what the kernel holds after `ev`.
fn track(kernel: &mut KernelState, ev: &Event) {
    match ev {
        Event::NewRoute(r) => {
            kernel.routes.retain(|k| k.key != r.key);
            kernel.routes.push(r.clone());
        }
        Event::DelRoute(r) => kernel.routes.retain(|k| k.key != r.key),
        Event::NewNeigh(n) => {
            kernel
                .neighbours
                .retain(|k| (k.ifindex, k.addr) != (n.ifindex, n.addr));
            kernel.neighbours.push(n.clone());
        }
        Event::NewAddr(a) => {
            kernel.addrs.retain(|k| k != a);
            kernel.addrs.push(*a);
        }
        Event::DelAddr(a) => kernel.addrs.retain(|k| k != a),
        _ => {}
    }
}

/// The tiny mirror's maps do what the roomy one's do, or ask
/// bpf_fib_lookup; neighbours and local addresses are left out only for
/// lack of room.
fn compare(tiny: &Dp, roomy: &Dp, limits: &Limits) {
    assert_eq!(
        tiny.routes.keys().collect::<HashSet<_>>(),
        roomy.routes.keys().collect::<HashSet<_>>()
    );
    for p in roomy.routes.keys() {
        let (t, r) = (tiny.does(p).unwrap(), roomy.does(p).unwrap());
        assert!(t == r || t == Does::AskFib, "{p}: {t:?} instead of {r:?}");
    }
    for (k, mac) in &tiny.neigh {
        assert_eq!(roomy.neigh.get(k), Some(mac), "neighbour {k:?}");
    }
    let room = limits.neighbours as usize;
    assert_eq!(tiny.neigh.len(), roomy.neigh.len().min(room));
    let partial = tiny.config & CfgFlags::ACCEL_CFG_LOCAL4_PARTIAL.0 != 0;
    assert!(tiny.local4.is_subset(&roomy.local4));
    if roomy.local4.len() <= limits.local_addrs as usize {
        assert_eq!(tiny.local4, roomy.local4);
        assert!(!partial, "flag cleared once all addresses fit");
    } else {
        assert!(partial, "a missing local address is announced");
        assert_eq!(tiny.local4.len(), limits.local_addrs as usize);
    }
}

#[test]
fn tiny_structures_forward_like_roomy_ones_or_ask_the_kernel() {
    let limits = Limits {
        nexthops: 4,
        nh_groups: 3,
        neighbours: 2,
        local_addrs: 2,
        blackholes: 2,
        ..Limits::default()
    };
    let mut tiny = mirror_with(&limits).without_grace();
    let mut roomy = mirror_with(&Limits::default()).without_grace();
    let mut kernel = KernelState {
        links: vec![link(LAN, true), link(WAN, true)],
        ..KernelState::default()
    };
    let (mut dt, mut dr) = (Dp::default(), Dp::default());
    dt.apply(&tiny.resync(kernel.clone()));
    dr.apply(&roomy.resync(kernel.clone()));
    let mut rnd = Rnd(fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d));
    let mut short = 0;
    for step in 0..3000 {
        let ev = random_event(&mut rnd, &kernel);
        track(&mut kernel, &ev);
        dt.apply(&tiny.apply(ev.clone()).changes);
        dr.apply(&roomy.apply(ev).changes);
        if step % 5 == 0 {
            dt.apply(&tiny.retry_capacity());
        }
        compare(&dt, &dr, &limits);
        short += usize::from(tiny.capacity_usage().iter().any(|(_, u)| u.is_degraded()));
        if step % 50 == 0 {
            // What retry can move back, it has; a resync has nothing to do.
            dt.apply(&tiny.retry_capacity());
            assert_eq!(tiny.dry_run(kernel.clone()), vec![], "step {step}");
        }
    }
    assert!(short > 1000, "short of room in {short} steps");

    // Pressure off: two routes and one address are left, and once retried
    // the tiny mirror does exactly what the roomy one does.
    let gone: Vec<Route> = kernel.routes.iter().skip(2).cloned().collect();
    let addrs: Vec<Addr> = kernel.addrs.iter().skip(1).copied().collect();
    let events = gone
        .into_iter()
        .map(Event::DelRoute)
        .chain(addrs.into_iter().map(Event::DelAddr));
    for ev in events {
        track(&mut kernel, &ev);
        dt.apply(&tiny.apply(ev.clone()).changes);
        dr.apply(&roomy.apply(ev).changes);
    }
    dt.apply(&tiny.retry_capacity());
    for p in dr.routes.keys() {
        assert_eq!(dt.does(p), dr.does(p), "{p}");
    }
    assert!(tiny
        .capacity_usage()
        .iter()
        .all(|(s, u)| !u.is_degraded() || matches!(s, Structure::Neigh4)));
    assert_eq!(dt.config & CfgFlags::ACCEL_CFG_LOCAL4_PARTIAL.0, 0);
    assert_eq!(tiny.dry_run(kernel), vec![]);
}

#[test]
fn local4_partial_is_announced_before_and_withdrawn_after() {
    let limits = Limits {
        local_addrs: 1,
        ..Limits::default()
    };
    let mut m = mirror_with(&limits);
    m.resync(KernelState::default());
    let flag = CfgFlags::ACCEL_CFG_LOCAL4_PARTIAL.0;
    let a1 = m.apply(Event::NewAddr(addr("10.0.1.1"))).changes;
    assert_eq!(a1, vec![Change::PutLocal4("10.0.1.1".parse().unwrap())]);
    // The second does not fit: the flag first, and nothing written.
    let a2 = m.apply(Event::NewAddr(addr("10.0.1.2"))).changes;
    assert_eq!(a2, vec![Change::Config(flag)]);
    let usage = m.capacity_usage();
    let local = usage
        .iter()
        .find(|(s, _)| *s == Structure::Local4)
        .unwrap()
        .1;
    assert_eq!((local.used, local.degraded), (1, 1));
    // The first leaves: the second moves in, then the flag goes.
    let d1 = m.apply(Event::DelAddr(addr("10.0.1.1"))).changes;
    assert_eq!(
        d1,
        vec![
            Change::DelLocal4("10.0.1.1".parse().unwrap()),
            Change::PutLocal4("10.0.1.2".parse().unwrap()),
            Change::Config(0),
        ]
    );
}

#[test]
fn neighbours_wait_for_room_and_move_in_when_one_leaves() {
    let limits = Limits {
        neighbours: 1,
        ..Limits::default()
    };
    let mut m = mirror_with(&limits);
    let snap = KernelState {
        links: vec![link(LAN, true), link(WAN, true)],
        neighbours: vec![
            neigh(WAN, "10.0.2.2", NeighbourState::Reachable),
            neigh(WAN, "10.0.2.3", NeighbourState::Reachable),
        ],
        ..KernelState::default()
    };
    let first = m.resync(snap.clone());
    let put: Vec<&Change> = first
        .iter()
        .filter(|c| matches!(c, Change::PutNeigh { .. }))
        .collect();
    assert_eq!(put.len(), 1, "{first:?}");
    let Change::PutNeigh { addr: a, .. } = put[0] else {
        unreachable!()
    };
    let other: IpAddr = if a.to_string() == "10.0.2.2" {
        "10.0.2.3".parse().unwrap()
    } else {
        "10.0.2.2".parse().unwrap()
    };
    assert_eq!(m.dry_run(snap), vec![], "waiting is not a difference");
    let o = m.apply(Event::DelNeigh(neigh(
        WAN,
        &a.to_string(),
        NeighbourState::Reachable,
    )));
    assert_eq!(
        o.changes,
        vec![
            Change::DelNeigh {
                ifindex: WAN,
                addr: *a
            },
            Change::PutNeigh {
                ifindex: WAN,
                addr: other,
                mac: [0xaa, 0, 0, 0, 0, WAN as u8]
            },
        ]
    );
}

#[test]
fn source_rules_beyond_room_send_the_family_to_the_kernel() {
    let limits = Limits {
        src_rules: 1,
        ..Limits::default()
    };
    let mut m = mirror_with(&limits);
    m.resync(KernelState::default());
    let rule = rule4;
    let defaults = vec![
        rule(0, 255, None),
        rule(32766, 254, None),
        rule(32767, 253, None),
    ];
    let mut two = defaults.clone();
    two.push(rule(100, 10, Some("10.1.0.0/16")));
    two.push(rule(101, 10, Some("10.2.0.0/16")));
    // (Custom rules also make source validation full: SRC_FULL4.)
    let full = CfgFlags::ACCEL_CFG_SRC_FULL4.0;
    let c = m.set_rules(two);
    assert_eq!(
        c,
        vec![Change::Config(CfgFlags::ACCEL_CFG_POLICY4.0 | full)]
    );
    let usage = m.capacity_usage();
    let src4 = usage
        .iter()
        .find(|(s, _)| *s == Structure::SrcRules4)
        .unwrap()
        .1;
    assert_eq!((src4.used, src4.degraded), (0, 2));
    // One fits: mirrored, prefix written before the flag.
    let mut one = defaults;
    one.push(rule(100, 10, Some("10.1.0.0/16")));
    let c = m.set_rules(one);
    assert_eq!(
        c,
        vec![
            Change::PutSrcRule(prefix("10.1.0.0/16")),
            Change::Config(CfgFlags::ACCEL_CFG_SRC_RULES4.0 | full),
        ]
    );
}
