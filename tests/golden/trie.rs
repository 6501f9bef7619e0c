//! The route tries as the datapath's C code reads them (fib.h), against a
//! longest-prefix match of the test's own: random tables that give every
//! form of node (one-line and multi-line COMPACT nodes, whose leaf may lie
//! past the first line, SEGMENTED and DIRECT ones) at every level, probed
//! at the first and last address of every prefix and inside it, then half
//! the routes removed and others changed. The control plane's own reader of the
//! same arrays (`Maps::route_for`) is unit-tested against the trie; this
//! holds the BPF code to the same answers.
//!
//! A frame's XDP action tells its route apart: forwarded (the default route
//! and gateway routes), dropped (blackhole) or passed (unreachable).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use accel::mirror::decision::RouteEntry;
use accel::mirror::Change;

use super::lab::*;
use super::{f4, f6, udp4, udp6, GW4, GW6};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Gateway,
    Blackhole,
    Unreachable,
}

impl Kind {
    fn random(rng: &mut fastrand::Rng) -> Kind {
        [Kind::Gateway, Kind::Blackhole, Kind::Unreachable][rng.usize(..3)]
    }

    fn action(self) -> u32 {
        match self {
            Kind::Gateway => XDP_REDIRECT,
            Kind::Blackhole => XDP_DROP,
            Kind::Unreachable => XDP_PASS,
        }
    }
}

/// One family's table as the test holds it: (address, length) -> kind,
/// addresses as the top bits of a u128.
struct Table {
    bits: u8,
    routes: HashMap<(u128, u8), Kind>,
}

fn mask(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(len)))
    }
}

impl Table {
    fn new(bits: u8) -> Table {
        Table {
            bits,
            routes: HashMap::new(),
        }
    }

    fn text(&self, addr: u128, len: u8) -> String {
        if self.bits == 32 {
            format!("{}/{len}", Ipv4Addr::from((addr >> 96) as u32))
        } else {
            format!("{}/{len}", Ipv6Addr::from(addr))
        }
    }

    /// The longest prefix holding `addr`: the default route at worst.
    fn lookup(&self, addr: u128) -> Kind {
        (0..=self.bits)
            .rev()
            .find_map(|len| self.routes.get(&(mask(addr, len), len)).copied())
            .expect("a default route")
    }

    fn put(&mut self, lab: &Lab, out: &mut Vec<Change>, addr: u128, len: u8, kind: Kind) {
        let addr = mask(addr, len);
        self.routes.insert((addr, len), kind);
        let text = self.text(addr, len);
        match kind {
            Kind::Gateway if self.bits == 32 => {
                out.extend(lab.route(&text, &lab.out, Some(GW4), 1))
            }
            Kind::Gateway => out.extend(lab.route(&text, &lab.out, Some(GW6), 2)),
            Kind::Blackhole => out.push(lab.route_kind(&text, RouteEntry::Blackhole)),
            Kind::Unreachable => out.push(lab.route_kind(&text, RouteEntry::Unreachable)),
        }
    }

    /// Random prefixes of lengths `lens` inside `within/wlen`.
    fn fill(
        &mut self,
        lab: &Lab,
        out: &mut Vec<Change>,
        rng: &mut fastrand::Rng,
        (within, wlen): (u128, u8),
        lens: std::ops::RangeInclusive<u8>,
        count: usize,
    ) {
        for _ in 0..count {
            let len = rng.u8(lens.clone());
            let host = rng.u128(..) >> wlen;
            self.put(lab, out, within | host, len, Kind::random(rng));
        }
    }

    /// Where to look: each prefix's first and last address and one inside
    /// (not the default route's: its ends are special addresses, which the
    /// datapath leaves to the kernel whatever the route).
    fn probes(&self, rng: &mut fastrand::Rng) -> Vec<u128> {
        let mut out = Vec::new();
        for &(addr, len) in self.routes.keys().filter(|k| k.1 > 0) {
            let span = !(u128::MAX << (128 - u32::from(len)));
            let low = span & (u128::MAX << (128 - u32::from(self.bits)));
            out.extend([addr, addr | low, addr | (rng.u128(..) & low)]);
        }
        out
    }

    fn frame(&self, lab: &Lab, addr: u128) -> Vec<u8> {
        if self.bits == 32 {
            f4(lab, &udp4(Ipv4Addr::from((addr >> 96) as u32)))
        } else {
            f6(lab, &udp6(Ipv6Addr::from(addr)))
        }
    }

    /// Every probe's action as the table says; returns how many ran.
    fn check(&self, lab: &Lab, probes: &[u128], when: &str) -> usize {
        for &addr in probes {
            let want = self.lookup(addr);
            let (got, _) = lab.run_on(lab.inp.ifindex, &self.frame(lab, addr), 0);
            assert_eq!(
                got,
                want.action(),
                "{when}: {} should meet a {want:?} route, got action {}",
                self.text(addr, self.bits),
                action_name(got)
            );
        }
        probes.len()
    }

    /// Removes about half of the routes (never the default) and changes
    /// the kind of a quarter of the rest.
    fn churn(&mut self, lab: &Lab, out: &mut Vec<Change>, rng: &mut fastrand::Rng) {
        let mut keys: Vec<(u128, u8)> = self.routes.keys().copied().filter(|k| k.1 > 0).collect();
        keys.sort_unstable();
        for (addr, len) in keys {
            match rng.u8(..4) {
                0 | 1 => {
                    self.routes.remove(&(addr, len));
                    out.push(Change::DelRoute(pfx(&self.text(addr, len))));
                }
                2 => self.put(lab, out, addr, len, Kind::random(rng)),
                _ => {}
            }
        }
    }
}

fn v4(s: &str) -> u128 {
    u128::from(u32::from(s.parse::<Ipv4Addr>().unwrap())) << 96
}

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

/// Builds the table with `fill`, checks, churns, checks again.
fn run(
    lab: &Lab,
    mut table: Table,
    seed: u64,
    fill: impl Fn(&mut Table, &mut Vec<Change>, &mut fastrand::Rng),
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut changes = Vec::new();
    let gw = if table.bits == 32 { GW4 } else { GW6 };
    changes.push(lab.neigh(&lab.out, gw, MIRROR_MAC));
    table.put(lab, &mut changes, 0, 0, Kind::Gateway);
    fill(&mut table, &mut changes, &mut rng);
    lab.apply(&changes);
    let probes = table.probes(&mut rng);
    let n = table.check(lab, &probes, "built");
    changes.clear();
    table.churn(lab, &mut changes, &mut rng);
    lab.apply(&changes);
    // The old probes too: where routes went, their covering routes answer.
    let mut again = table.probes(&mut rng);
    again.extend(probes);
    let m = table.check(lab, &again, "after churn");
    eprintln!(
        "IPv{}: {} routes, {n} + {m} probes",
        if table.bits == 32 { 4 } else { 6 },
        table.routes.len()
    );
}

#[test]
fn ipv4_trie_in_bpf_answers_as_a_reference_lookup() {
    let Some(lab) = Lab::new() else { return };
    run(&lab, Table::new(32), 4, |t, c, rng| {
        // A /16 with two hundred /24s and longer, of three kinds of route:
        // its node is SEGMENTED (a few distinct leaves per 64).
        t.fill(&lab, c, rng, (v4("45.64.0.0"), 16), 17..=24, 200);
        // The same with tens of nodes below its first 64 leaves, each a
        // leaf of its own: DIRECT.
        t.fill(&lab, c, rng, (v4("45.67.0.0"), 16), 17..=24, 200);
        t.fill(&lab, c, rng, (v4("45.67.0.0"), 18), 25..=32, 60);
        // Some tens and a dozen nodes below: COMPACT in several lines.
        t.fill(&lab, c, rng, (v4("45.68.0.0"), 16), 18..=24, 25);
        t.fill(&lab, c, rng, (v4("45.68.0.0"), 18), 25..=32, 12);
        // Some tens: more runs than a line holds; SEGMENTED as well.
        t.fill(&lab, c, rng, (v4("45.65.0.0"), 16), 18..=24, 25);
        // A handful: one line.
        t.fill(&lab, c, rng, (v4("45.66.0.0"), 16), 20..=24, 3);
        // Third-level nodes of each form.
        t.fill(&lab, c, rng, (v4("45.64.7.0"), 24), 25..=32, 160);
        t.fill(&lab, c, rng, (v4("45.65.9.0"), 24), 26..=32, 20);
        t.fill(&lab, c, rng, (v4("45.66.1.0"), 24), 28..=32, 2);
        // Covering routes above the root's /16s.
        t.fill(&lab, c, rng, (v4("45.64.0.0"), 14), 8..=15, 6);
    });
}

#[test]
fn ipv6_trie_in_bpf_answers_as_a_reference_lookup() {
    let Some(lab) = Lab::new() else { return };
    run(&lab, Table::new(128), 6, |t, c, rng| {
        t.fill(&lab, c, rng, (v6("2a02:1000::"), 32), 40..=48, 200);
        t.fill(&lab, c, rng, (v6("2a02:4000::"), 32), 40..=48, 200);
        t.fill(&lab, c, rng, (v6("2a02:4000::"), 34), 41..=64, 60);
        t.fill(&lab, c, rng, (v6("2a02:2000::"), 32), 33..=48, 25);
        t.fill(&lab, c, rng, (v6("2a02:3000::"), 32), 36..=48, 3);
        t.fill(&lab, c, rng, (v6("2a02:1000:77::"), 48), 49..=64, 160);
        t.fill(&lab, c, rng, (v6("2a02:1000:77:1::"), 64), 65..=128, 40);
        t.fill(&lab, c, rng, (v6("2a02::"), 16), 17..=31, 8);
    });
}
