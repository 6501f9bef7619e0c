//! What the mirror has no room for in the datapath, and getting it back in.
//!
//! Ids (next hops, groups, blackhole counters) and the neighbour and local
//! address maps are bounded ([`Limits`]). When one is full, the entries
//! that need it are written so that the datapath asks bpf_fib_lookup:
//!
//! - a route without a next-hop or group id becomes a "FIB" route, while the
//!   mirror keeps its real entry with id 0, so that `accel sync --check`
//!   compares what the kernel says with what the mirror means to forward;
//! - a group whose paths lack next-hop ids is written unresolved;
//! - a neighbour without room is left out (the datapath asks bpf_fib_lookup
//!   when it finds no neighbour);
//! - local4 without room for every local address sets
//!   ACCEL_CFG_LOCAL4_PARTIAL, under which the datapath validates every
//!   source with the kernel's reverse lookup;
//! - a blackhole prefix without a counter slot counts in the shared slot 0.
//!
//! [`Mirror::retry_capacity`] moves them back once room frees up (freed ids
//! after their grace period); neighbours and local addresses move back as
//! soon as others leave. A full resync does the same.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use super::code::{AppliedCode, Code};
use super::decision::{FibReason, NhKey, RouteEntry};
use super::{group_key, Change, Mirror};
use crate::bpf::types::accel_fib_mark;
use crate::capacity::{Structure, Usage};
use crate::model::{Family, Prefix};

/// Index of a family in per-family arrays.
fn fi(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

#[derive(Debug, Clone, Default)]
pub struct Shortfall {
    /// Unicast routes without a next-hop id.
    nh_routes: BTreeSet<Prefix>,
    /// Multipath and nexthop-object routes without a group id.
    group_routes: BTreeSet<Prefix>,
    /// Groups written unresolved for lack of next-hop ids for their paths.
    pub(super) groups: BTreeSet<u32>,
    /// Blackhole prefixes counting in the shared slot 0.
    blackholes: BTreeSet<Prefix>,
    /// Neighbours in the maps, and usable ones waiting for room, per
    /// family.
    neigh_applied: [usize; 2],
    neigh_waiting: [BTreeMap<(u32, IpAddr), [u8; 6]>; 2],
    /// Local IPv4 addresses local4 has no room for.
    local4: usize,
    /// When more than fit: the number of source prefixes, per family.
    pub(super) src_rules: [usize; 2],
    /// SharedIds::handed_out() of next hops and groups at the last retry.
    retried_nh: u64,
    retried_groups: u64,
}

impl Shortfall {
    /// Forgets what route `p` lacked: it is about to be decided anew.
    pub(super) fn forget_route(&mut self, p: &Prefix) {
        self.nh_routes.remove(p);
        self.group_routes.remove(p);
        self.blackholes.remove(p);
    }

    pub(super) fn local4_partial(&self) -> bool {
        self.local4 > 0
    }

    pub(super) fn waiting_neighbours(&self) -> impl Iterator<Item = &(u32, IpAddr)> {
        self.neigh_waiting.iter().flat_map(BTreeMap::keys)
    }
}

impl Mirror {
    /// The map entry for route `p`, whose mirror entry is `code`, with the
    /// ids it needs (written first when new): (entry, id in the map, id the
    /// mirror stores). Without room the entry says "ask bpf_fib_lookup" and
    /// the stored id is 0 until [`Mirror::retry_capacity`] finds room.
    pub(super) fn route_ids(
        &mut self,
        p: Prefix,
        code: Code,
        out: &mut Vec<Change>,
    ) -> (RouteEntry, u32, u32) {
        self.shortfall.forget_route(&p);
        let entry = self.nh_table.borrow().decode(code);
        let fib = (
            RouteEntry::Fib(FibReason::Capacity),
            accel_fib_mark::ACCEL_FIB_CAPACITY.0,
            0,
        );
        match entry {
            RouteEntry::Unicast(nh) => match self.acquire_nexthop(nh, out) {
                Some(id) => (entry, id, id),
                None => {
                    self.shortfall.nh_routes.insert(p);
                    fib
                }
            },
            RouteEntry::Multipath(_) | RouteEntry::Object(_) => {
                match self.acquire_group(group_key(entry), out) {
                    Some(id) => (entry, id, id),
                    None => {
                        self.shortfall.group_routes.insert(p);
                        fib
                    }
                }
            }
            // Its own drop counter, or the shared slot 0 when all are taken.
            RouteEntry::Blackhole => match self.ids.blackholes.acquire(p) {
                Some((id, fresh)) => {
                    if fresh {
                        out.push(Change::PutBlackhole { id, prefix: p });
                    }
                    (entry, id, id)
                }
                None => {
                    self.shortfall.blackholes.insert(p);
                    (entry, 0, 0)
                }
            },
            // Next hops the mirror's table had no room to intern (see
            // NhTable): marked so, for `accel lookup`.
            RouteEntry::Fib(FibReason::Capacity) => fib,
            e => (e, 0, 0),
        }
    }

    /// Drops the references of route `p`'s previous entry `old`, stored
    /// with id `id` (0: it had none).
    pub(super) fn release_route_ids(&mut self, p: Prefix, old: AppliedCode, out: &mut Vec<Change>) {
        if !old.holds_id() {
            return;
        }
        let entry = self.nh_table.borrow().decode(old.code());
        match entry {
            RouteEntry::Unicast(nh) => {
                self.ids.nexthops.release(&nh);
            }
            e @ (RouteEntry::Multipath(_) | RouteEntry::Object(_)) => {
                self.release_group(group_key(e))
            }
            RouteEntry::Blackhole => {
                if let Some(id) = self.ids.blackholes.release(&p) {
                    out.push(Change::DelBlackhole(id));
                }
            }
            _ => {}
        }
    }

    /// A reference on `nh`'s id, written first if new; `None` when every
    /// id is taken.
    pub(super) fn acquire_nexthop(&mut self, nh: NhKey, out: &mut Vec<Change>) -> Option<u32> {
        let (id, fresh) = self.ids.nexthops.acquire(nh)?;
        if fresh {
            out.push(Change::PutNexthop { id, nh });
        }
        Some(id)
    }

    /// Whether next-hop ids can be had for every one of `nhs` now.
    pub(super) fn nexthops_fit<'a>(&mut self, nhs: impl Iterator<Item = &'a NhKey>) -> bool {
        let missing: HashSet<&NhKey> = nhs
            .filter(|nh| self.ids.nexthops.get(nh).is_none())
            .collect();
        missing.is_empty() || missing.len() <= self.ids.nexthops.available()
    }

    /// Moves back into the mirror what had no room, where there is room
    /// now: groups first (their routes may then use them), then routes,
    /// blackhole counters, neighbours. Call it about once a second.
    pub fn retry_capacity(&mut self) -> Vec<Change> {
        let mut out = Vec::new();
        for id in self.shortfall.groups.clone() {
            if let Some((key, _)) = self.applied.groups.get(&id) {
                let key = *key;
                self.try_write_group(id, key, &mut out);
            }
        }
        // Routes wait for ids freed (after their grace period) or handed
        // out to the key they need; otherwise nothing changed for them.
        let nh_room = self.ids.nexthops.available() > 0
            || self.ids.nexthops.handed_out() != self.shortfall.retried_nh;
        let group_room = self.ids.groups.available() > 0
            || self.ids.groups.handed_out() != self.shortfall.retried_groups;
        let mut routes: Vec<Prefix> = Vec::new();
        if nh_room {
            routes.extend(&self.shortfall.nh_routes);
        }
        if group_room {
            routes.extend(&self.shortfall.group_routes);
        }
        if self.ids.blackholes.available() > 0 {
            routes.extend(&self.shortfall.blackholes);
        }
        for p in routes {
            self.retry_route(p, &mut out);
        }
        self.shortfall.retried_nh = self.ids.nexthops.handed_out();
        self.shortfall.retried_groups = self.ids.groups.handed_out();
        for f in [Family::V4, Family::V6] {
            self.admit_neighbours(f, &mut out);
        }
        out
    }

    /// Writes route `p` with its ids if they can be had now.
    fn retry_route(&mut self, p: Prefix, out: &mut Vec<Change>) {
        let Some(have) = self.applied_routes.get(&p).copied() else {
            return;
        };
        if have.holds_id() {
            return;
        }
        let (entry, nh_id, id) = self.route_ids(p, have.code(), out);
        if id != 0 {
            self.applied_routes
                .insert(p, AppliedCode::new(have.code(), true));
            out.push(Change::PutRoute {
                prefix: p,
                entry,
                nh_id,
            });
        }
    }

    // ------------------------------------------------------- neighbours

    /// Writes a usable neighbour, or keeps it waiting when its map is full.
    pub(super) fn put_neigh(&mut self, k: (u32, IpAddr), mac: [u8; 6], out: &mut Vec<Change>) {
        let f = fi(Family::of(&k.1));
        let full = self.shortfall.neigh_applied[f] >= self.limits.neighbours as usize;
        if full && !self.applied.neigh.contains_key(&k) {
            self.shortfall.neigh_waiting[f].insert(k, mac);
            return;
        }
        if self.applied.neigh.insert(k, mac).is_none() {
            self.shortfall.neigh_applied[f] += 1;
        }
        out.push(Change::PutNeigh {
            ifindex: k.0,
            addr: k.1,
            mac,
        });
    }

    /// A neighbour is no longer usable: out of the maps, or no longer
    /// waiting; the room it leaves goes to a waiting one.
    pub(super) fn del_neigh(&mut self, k: (u32, IpAddr), out: &mut Vec<Change>) {
        let f = Family::of(&k.1);
        self.shortfall.neigh_waiting[fi(f)].remove(&k);
        if self.applied.neigh.remove(&k).is_some() {
            self.shortfall.neigh_applied[fi(f)] -= 1;
            out.push(Change::DelNeigh {
                ifindex: k.0,
                addr: k.1,
            });
            self.admit_neighbours(f, out);
        }
    }

    fn admit_neighbours(&mut self, f: Family, out: &mut Vec<Change>) {
        while self.shortfall.neigh_applied[fi(f)] < self.limits.neighbours as usize {
            let Some((k, mac)) = self.shortfall.neigh_waiting[fi(f)].pop_first() else {
                break;
            };
            self.put_neigh(k, mac, out);
        }
    }

    // -------------------------------------------------- local addresses

    /// Brings local4 in line with the local IPv4 addresses, as far as it
    /// has room. ACCEL_CFG_LOCAL4_PARTIAL is set before an address is left
    /// out and cleared only once all are in.
    pub(super) fn sync_local4(&mut self, out: &mut Vec<Change>) {
        let want: BTreeSet<Ipv4Addr> = self
            .kernel
            .addrs
            .iter()
            .filter_map(|a| match a.addr {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        let room = self.limits.local_addrs as usize;
        let left_out = want.len().saturating_sub(room);
        if left_out > 0 && !self.shortfall.local4_partial() {
            self.shortfall.local4 = left_out;
            self.sync_config(out);
        }
        // Those gone first, to make room.
        let gone: Vec<Ipv4Addr> = self
            .applied
            .local4
            .iter()
            .filter(|a| !want.contains(a))
            .copied()
            .collect();
        for a in gone {
            self.applied.local4.remove(&a);
            out.push(Change::DelLocal4(a));
        }
        for a in want {
            if self.applied.local4.len() >= room {
                break;
            }
            if self.applied.local4.insert(a) {
                out.push(Change::PutLocal4(a));
            }
        }
        let was_partial = self.shortfall.local4_partial();
        self.shortfall.local4 = left_out;
        if was_partial && left_out == 0 {
            self.sync_config(out);
        }
    }

    /// Ids reused at once, for tests without a concurrent reader.
    #[cfg(test)]
    pub(super) fn without_grace(mut self) -> Self {
        self.ids.nexthops = self.ids.nexthops.without_grace();
        self.ids.groups = self.ids.groups.without_grace();
        self.ids.blackholes = self.ids.blackholes.without_grace();
        self
    }

    // ---------------------------------------------------------- figures

    /// How full the structures the mirror allocates are.
    pub fn capacity_usage(&self) -> Vec<(Structure, Usage)> {
        let l = &self.limits;
        let s = &self.shortfall;
        let ids = |limit: u32| limit as usize - 1;
        let src = |f: Family| {
            let n = self
                .applied
                .src_rules
                .iter()
                .filter(|p| p.family() == f)
                .count();
            Usage::new(l.src_rules as usize, n).degraded(s.src_rules[fi(f)], 0)
        };
        vec![
            (
                Structure::Nexthops,
                Usage::new(ids(l.nexthops), self.ids.nexthops.len())
                    .degraded(s.nh_routes.len() + s.groups.len(), 0),
            ),
            (
                Structure::NhGroups,
                Usage::new(ids(l.nh_groups), self.ids.groups.len())
                    .degraded(s.group_routes.len(), 0),
            ),
            (
                Structure::Neigh4,
                Usage::new(l.neighbours as usize, s.neigh_applied[0])
                    .degraded(s.neigh_waiting[0].len(), 0),
            ),
            (
                Structure::Neigh6,
                Usage::new(l.neighbours as usize, s.neigh_applied[1])
                    .degraded(s.neigh_waiting[1].len(), 0),
            ),
            (
                Structure::Local4,
                Usage::new(l.local_addrs as usize, self.applied.local4.len()).degraded(s.local4, 0),
            ),
            (
                Structure::Blackholes,
                Usage::new(ids(l.blackholes), self.ids.blackholes.len())
                    .degraded(s.blackholes.len(), 0),
            ),
            (Structure::SrcRules4, src(Family::V4)),
            (Structure::SrcRules6, src(Family::V6)),
        ]
    }
}

#[cfg(test)]
mod tests;
