//! Next hops as the datapath reads them: one entry per next-hop id with the
//! gateway's MAC and the egress interface's entry already in it, so that a
//! forwarded frame needs no neighbour hash lookup and no interface lookup
//! after its route (map lookups are the largest per-frame cost,
//! BENCHMARKS.md).
//!
//! A next hop's MAC changes with its neighbour and its egress entry with
//! the interface, while routes keep naming the next hop by id, so the
//! entry cannot be rewritten in place: a reader could see half of a
//! changed MAC. As for the interfaces, `nh_index`
//! holds per id 1 + the slot of `nexthops` with the current entry (0:
//! none, bpf_fib_lookup decides); a change is written into a fresh slot
//! before the index names it, and the old slot is reused only after the
//! grace period of [`crate::slots`].
//!
//! This module decides the writes; [`super::maps::Maps`] makes them in
//! order.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::keys::gateway_of;
use crate::bpf::bytes_of;
use crate::bpf::types::{accel_iface, accel_nexthop, accel_nh_flags as F};
use crate::slots::GraceSlots;

/// Slots of `nexthops` for `ids` next-hop ids: one per id and room for
/// the changes waiting out their grace period.
pub fn slots_for(ids: u32) -> u32 {
    ids.saturating_add((ids / 4).max(64))
}

/// One map write, in the order given.
#[derive(Debug, Clone, Copy)]
pub enum Write {
    /// `nexthops[slot] = entry`.
    Entry { slot: u32, entry: accel_nexthop },
    /// `nh_index[id] = word` (1 + slot, or 0).
    Index { id: u32, word: u32 },
}

pub struct NexthopVersions {
    slots: GraceSlots,
    /// The live slot of each id that has one.
    slot_of: HashMap<u32, usize>,
    /// Each id's entry as the mirror wrote it (no MAC).
    base: HashMap<u32, accel_nexthop>,
    /// The ids whose gateway is this neighbour (one in use: the mirror
    /// gives each gateway one id; a freed id may keep it until reused).
    by_gateway: HashMap<(u32, IpAddr), BTreeSet<u32>>,
    /// The ids whose egress is this ifindex.
    by_ifindex: HashMap<u32, BTreeSet<u32>>,
    /// The neighbours the mirror has written, with their MACs.
    macs: HashMap<(u32, IpAddr), [u8; 6]>,
    /// accel's interfaces, with their entries.
    ifaces: HashMap<u32, accel_iface>,
    /// Ids whose current entry found no free slot (their index is 0).
    pending: BTreeSet<u32>,
}

impl NexthopVersions {
    pub fn new(slots: usize) -> Self {
        NexthopVersions {
            slots: GraceSlots::new(0, slots),
            slot_of: HashMap::new(),
            base: HashMap::new(),
            by_gateway: HashMap::new(),
            by_ifindex: HashMap::new(),
            macs: HashMap::new(),
            ifaces: HashMap::new(),
            pending: BTreeSet::new(),
        }
    }

    /// Slots reused at once, for tests without a concurrent reader.
    #[cfg(test)]
    fn without_grace(mut self) -> Self {
        self.slots = self.slots.without_grace();
        self
    }

    /// Id `id` now stands for `entry` (a new next hop, or an id reused
    /// after its grace period).
    pub fn put_nexthop(&mut self, id: u32, entry: accel_nexthop, out: &mut Vec<Write>) {
        if let Some(old) = self.base.insert(id, entry) {
            if let Some(ids) = gateway_key(&old).and_then(|k| self.by_gateway.get_mut(&k)) {
                ids.remove(&id);
            }
            if let Some(ids) = self.by_ifindex.get_mut(&old.ifindex) {
                ids.remove(&id);
            }
        }
        if let Some(k) = gateway_key(&entry) {
            self.by_gateway.entry(k).or_default().insert(id);
        }
        self.by_ifindex.entry(entry.ifindex).or_default().insert(id);
        self.publish(id, out);
    }

    /// Interface `ifindex` is accel's, with `entry` (new or changed).
    pub fn put_iface(&mut self, ifindex: u32, entry: accel_iface, out: &mut Vec<Write>) {
        let old = self.ifaces.insert(ifindex, entry);
        if old.is_some_and(|o| bytes_of(&o) == bytes_of(&entry)) {
            return;
        }
        self.publish_egress(ifindex, out);
    }

    /// Interface `ifindex` is not accel's any more.
    pub fn del_iface(&mut self, ifindex: u32, out: &mut Vec<Write>) {
        if self.ifaces.remove(&ifindex).is_some() {
            self.publish_egress(ifindex, out);
        }
    }

    fn publish_egress(&mut self, ifindex: u32, out: &mut Vec<Write>) {
        self.publish_all(ids_of(self.by_ifindex.get(&ifindex)), out);
    }

    fn publish_all(&mut self, ids: Vec<u32>, out: &mut Vec<Write>) {
        for id in ids {
            self.publish(id, out);
        }
    }

    pub fn put_neigh(&mut self, ifindex: u32, addr: IpAddr, mac: [u8; 6], out: &mut Vec<Write>) {
        if self.macs.insert((ifindex, addr), mac) == Some(mac) {
            return;
        }
        self.publish_all(ids_of(self.by_gateway.get(&(ifindex, addr))), out);
    }

    pub fn del_neigh(&mut self, ifindex: u32, addr: IpAddr, out: &mut Vec<Write>) {
        if self.macs.remove(&(ifindex, addr)).is_none() {
            return;
        }
        self.publish_all(ids_of(self.by_gateway.get(&(ifindex, addr))), out);
    }

    /// Writes the entries that found no slot, now that released slots
    /// may have waited out their grace period.
    pub fn retry(&mut self, out: &mut Vec<Write>) {
        let pending: Vec<u32> = std::mem::take(&mut self.pending).into_iter().collect();
        for id in pending {
            self.publish(id, out);
        }
    }

    /// The entry of `id` as the datapath should now read it.
    fn current(&self, id: u32) -> Option<accel_nexthop> {
        let mut e = *self.base.get(&id)?;
        if let Some(iface) = self.ifaces.get(&e.ifindex) {
            e.out = *iface;
            e.flags |= F::ACCEL_NH_EGRESS.0;
        }
        if let Some(mac) = gateway_key(&e).and_then(|k| self.macs.get(&k)) {
            e.mac = *mac;
            e.flags |= F::ACCEL_NH_MAC.0;
        }
        Some(e)
    }

    /// Writes `id`'s current entry into a fresh slot and points the index
    /// at it; without a free slot the index says "none" (bpf_fib_lookup
    /// decides, slower, never wrong) until [`NexthopVersions::retry`].
    fn publish(&mut self, id: u32, out: &mut Vec<Write>) {
        let Some(entry) = self.current(id) else {
            return;
        };
        let slot = self.slots.take();
        match slot {
            Some(s) => {
                self.pending.remove(&id);
                out.push(Write::Entry {
                    slot: s as u32,
                    entry,
                });
            }
            None => {
                // Once per shortage, not once per next hop: an interface
                // change republishes every next hop through it.
                if self.pending.is_empty() {
                    log::warn!("no free nexthops slot for next hop {id} (and perhaps others): bpf_fib_lookup decides for their routes until the capacity round finds slots");
                }
                self.pending.insert(id);
            }
        }
        out.push(Write::Index {
            id,
            word: slot.map_or(0, |s| s as u32 + 1),
        });
        let old = match slot {
            Some(s) => self.slot_of.insert(id, s),
            None => self.slot_of.remove(&id),
        };
        if let Some(old) = old {
            self.slots.release(old);
        }
    }
}

fn ids_of(set: Option<&BTreeSet<u32>>) -> Vec<u32> {
    set.map(|s| s.iter().copied().collect()).unwrap_or_default()
}

/// The neighbour a next hop's MAC comes from: its gateway (IPv4, or IPv6
/// for IPv4 routes via IPv6 gateways); none for a connected next hop,
/// whose neighbour is each packet's destination.
fn gateway_key(e: &accel_nexthop) -> Option<(u32, IpAddr)> {
    gateway_of(e).map(|gw| (e.ifindex, gw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::keys::nexthop_value;
    use crate::mirror::decision::NhKey;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn gw(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nh(ifindex: u32, gateway: Option<&str>) -> accel_nexthop {
        nexthop_value(&NhKey {
            ifindex,
            gateway: gateway.map(gw),
        })
    }

    /// What the datapath would read for `id` after `writes`, replayed on
    /// maps of their own.
    #[derive(Default)]
    struct Replay {
        index: HashMap<u32, u32>,
        entries: HashMap<u32, accel_nexthop>,
    }

    impl Replay {
        fn apply(&mut self, writes: &mut Vec<Write>) {
            for w in writes.drain(..) {
                match w {
                    Write::Entry { slot, entry } => {
                        self.entries.insert(slot, entry);
                    }
                    Write::Index { id, word } => {
                        self.index.insert(id, word);
                    }
                }
            }
        }

        fn read(&self, id: u32) -> Option<accel_nexthop> {
            let word = *self.index.get(&id)?;
            (word != 0).then(|| self.entries[&(word - 1)])
        }

        fn mac(&self, id: u32) -> Option<[u8; 6]> {
            self.read(id)
                .filter(|e| e.flags & F::ACCEL_NH_MAC.0 != 0)
                .map(|e| e.mac)
        }
    }

    #[test]
    fn the_gateway_mac_follows_its_neighbour() {
        let mut v = NexthopVersions::new(8).without_grace();
        let (mut w, mut r) = (Vec::new(), Replay::default());
        v.put_nexthop(1, nh(3, Some("10.0.0.1")), &mut w);
        r.apply(&mut w);
        assert_eq!(r.read(1).unwrap().ifindex, 3);
        assert_eq!(r.mac(1), None, "no neighbour yet");
        v.put_neigh(3, gw("10.0.0.1"), MAC, &mut w);
        r.apply(&mut w);
        assert_eq!(r.mac(1), Some(MAC));
        v.put_neigh(3, gw("10.0.0.1"), MAC2, &mut w);
        r.apply(&mut w);
        assert_eq!(r.mac(1), Some(MAC2));
        v.del_neigh(3, gw("10.0.0.1"), &mut w);
        r.apply(&mut w);
        assert_eq!(r.mac(1), None);
        assert_eq!(r.read(1).unwrap().ifindex, 3, "the next hop stays");
        // Another interface's neighbour with the same address is another.
        v.put_neigh(4, gw("10.0.0.1"), MAC, &mut w);
        assert!(w.is_empty());
    }

    #[test]
    fn a_known_neighbour_is_in_a_new_next_hop_at_once() {
        let mut v = NexthopVersions::new(8).without_grace();
        let (mut w, mut r) = (Vec::new(), Replay::default());
        v.put_neigh(5, gw("fe80::1"), MAC, &mut w);
        assert!(w.is_empty(), "no next hop uses it");
        v.put_nexthop(7, nh(5, Some("fe80::1")), &mut w);
        r.apply(&mut w);
        assert_eq!(r.mac(7), Some(MAC));
        // A connected next hop has no MAC of its own.
        v.put_nexthop(8, nh(5, None), &mut w);
        r.apply(&mut w);
        assert_eq!(r.mac(8), None);
        // An unchanged neighbour writes nothing.
        v.put_neigh(5, gw("fe80::1"), MAC, &mut w);
        assert!(w.is_empty());
    }

    #[test]
    fn the_egress_entry_follows_its_interface() {
        let mut v = NexthopVersions::new(8).without_grace();
        let (mut w, mut r) = (Vec::new(), Replay::default());
        let up = accel_iface {
            mtu: 1500,
            flags: 1,
            ..Default::default()
        };
        v.put_nexthop(1, nh(3, Some("10.0.0.1")), &mut w);
        r.apply(&mut w);
        assert_eq!(r.read(1).unwrap().flags & F::ACCEL_NH_EGRESS.0, 0);
        v.put_iface(3, up, &mut w);
        r.apply(&mut w);
        let e = r.read(1).unwrap();
        assert_ne!(e.flags & F::ACCEL_NH_EGRESS.0, 0);
        assert_eq!(e.out.mtu, 1500);
        v.put_iface(3, up, &mut w);
        assert!(w.is_empty(), "an unchanged interface writes nothing");
        v.put_iface(3, accel_iface { mtu: 9000, ..up }, &mut w);
        r.apply(&mut w);
        assert_eq!(r.read(1).unwrap().out.mtu, 9000);
        // A next hop moved to another interface leaves this one's set.
        v.put_nexthop(1, nh(4, Some("10.0.0.1")), &mut w);
        r.apply(&mut w);
        v.put_iface(3, up, &mut w);
        assert!(w.is_empty());
        v.put_nexthop(2, nh(3, None), &mut w);
        v.del_iface(3, &mut w);
        r.apply(&mut w);
        assert_eq!(r.read(2).unwrap().flags & F::ACCEL_NH_EGRESS.0, 0);
    }

    #[test]
    fn a_reused_id_forgets_its_old_gateway() {
        let mut v = NexthopVersions::new(8).without_grace();
        let (mut w, mut r) = (Vec::new(), Replay::default());
        v.put_nexthop(1, nh(3, Some("10.0.0.1")), &mut w);
        v.put_nexthop(1, nh(3, Some("10.0.0.2")), &mut w);
        r.apply(&mut w);
        v.put_neigh(3, gw("10.0.0.1"), MAC, &mut w);
        assert!(w.is_empty());
        v.put_neigh(3, gw("10.0.0.2"), MAC2, &mut w);
        r.apply(&mut w);
        assert_eq!(r.mac(1), Some(MAC2));
    }

    /// Random next hops, neighbours and interfaces against a plain model:
    /// after every change each id reads its gateway's current MAC and its
    /// egress's current entry, and no write lands in a slot an index names.
    #[test]
    fn random_changes_read_as_the_model_says() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut v = NexthopVersions::new(64).without_grace();
        let (mut w, mut r) = (Vec::new(), Replay::default());
        let gws = [Some("10.0.0.1"), Some("10.0.0.2"), Some("fe80::1"), None];
        let mut base: HashMap<u32, (u32, Option<&str>)> = HashMap::new();
        let mut macs: HashMap<(u32, IpAddr), [u8; 6]> = HashMap::new();
        let mut ifaces: HashMap<u32, u32> = HashMap::new();
        for step in 0..5000 {
            let ifindex = rng.u32(1..4);
            let gw = gws[rng.usize(..gws.len())];
            match rng.u8(..5) {
                0 => {
                    let id = rng.u32(1..7);
                    base.insert(id, (ifindex, gw));
                    v.put_nexthop(id, nh(ifindex, gw), &mut w);
                }
                1 | 2 => {
                    let Some(a) = gw.map(super::tests::gw) else {
                        continue;
                    };
                    if rng.bool() {
                        let mac = [2, 0, 0, 0, 0, rng.u8(1..4)];
                        macs.insert((ifindex, a), mac);
                        v.put_neigh(ifindex, a, mac, &mut w);
                    } else {
                        macs.remove(&(ifindex, a));
                        v.del_neigh(ifindex, a, &mut w);
                    }
                }
                3 => {
                    let mtu = 1500 + rng.u32(..3);
                    ifaces.insert(ifindex, mtu);
                    let e = accel_iface {
                        mtu,
                        ..Default::default()
                    };
                    v.put_iface(ifindex, e, &mut w);
                }
                _ => {
                    ifaces.remove(&ifindex);
                    v.del_iface(ifindex, &mut w);
                }
            }
            for write in &w {
                match write {
                    Write::Entry { slot, .. } => {
                        assert!(
                            !r.index.values().any(|x| *x == slot + 1),
                            "step {step}: live slot {slot} rewritten"
                        );
                    }
                    Write::Index { id, word } => {
                        r.index.insert(*id, *word);
                    }
                }
                if let Write::Entry { slot, entry } = write {
                    r.entries.insert(*slot, *entry);
                }
            }
            w.clear();
            for (&id, &(ifindex, gw)) in &base {
                let e = r.read(id).expect("every id has a slot");
                assert_eq!(e.ifindex, ifindex, "step {step}");
                let mac = gw.and_then(|g| macs.get(&(ifindex, super::tests::gw(g))));
                assert_eq!(r.mac(id), mac.copied(), "step {step}: id {id}");
                let egress = (e.flags & F::ACCEL_NH_EGRESS.0 != 0).then_some(e.out.mtu);
                assert_eq!(
                    egress,
                    ifaces.get(&ifindex).copied(),
                    "step {step}: id {id}"
                );
            }
        }
    }

    #[test]
    fn entries_are_never_rewritten_in_a_slot_the_index_names() {
        let mut v = NexthopVersions::new(4);
        let (mut w, mut r) = (Vec::new(), Replay::default());
        v.put_nexthop(1, nh(3, Some("10.0.0.1")), &mut w);
        r.apply(&mut w);
        for mac in [MAC, MAC2, MAC, MAC2, MAC] {
            v.put_neigh(3, gw("10.0.0.1"), mac, &mut w);
            let live = r.index[&1];
            for write in &w {
                if let Write::Entry { slot, .. } = write {
                    assert_ne!(slot + 1, live, "rewrote the live slot");
                }
            }
            r.apply(&mut w);
        }
        // 4 slots, each released one waiting out its grace period: the
        // fifth change found none, and the index says "none" rather
        // than keep a stale MAC.
        assert!(r.read(1).is_none());
        std::thread::sleep(crate::slots::GRACE);
        v.retry(&mut w);
        r.apply(&mut w);
        assert_eq!(r.mac(1), Some(MAC));
    }
}
