//! accel's maps as handles, usable from a freshly loaded skeleton or from
//! the pins of a running instance, and the writes that apply mirror changes.

use std::cell::{Cell, RefCell};

use libbpf_rs::{MapCore, MapFlags, MapHandle};
use log::warn;

use super::keys::{
    blackhole_prefix_value, group_value, host_key, iface_value, neigh_key, neigh_value,
    nexthop_value, route_key, route_value, NeighKey, RouteKey,
};
use super::leaves::route_leaf;
use super::mmap::MmapLeaves;
use super::nh_versions::{self, NexthopVersions, Write};
use super::pin::PinDir;
use super::trie::{self, Trie};
use super::DatapathError;
use crate::bpf::types::{
    accel_blackhole, accel_blackhole_prefix, accel_capacity, accel_config, accel_iface,
    accel_leaf as D, accel_leaves, accel_limits as L, accel_nexthop, accel_nh_stats, accel_route,
    accel_stats,
};
use crate::bpf::{bytes_of, from_bytes, AccelSkel, Pod};
use crate::capacity::{Figures, Limits, Structure, Usage};
use crate::mirror::decision::RouteEntry;
use crate::mirror::Change;
use crate::model::{Event, Family, Prefix};
use crate::slots::GraceSlots;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Route changes written to the datapath together at most (a few ms of
/// work).
const FLUSH_RUN: usize = 4096;

pub struct Maps {
    pub cfg: MapHandle,
    pub ifaces: MapHandle,
    pub iface_index: MapHandle,
    pub iface_versions: MapHandle,
    pub tx_ports: MapHandle,
    pub stats: MapHandle,
    pub fib4_root: MapHandle,
    pub fib4_nodes: MapHandle,
    pub fib6_root: MapHandle,
    pub fib6_nodes: MapHandle,
    pub nh_index: MapHandle,
    pub nexthops: MapHandle,
    pub nh_groups: MapHandle,
    pub blackhole_drops: MapHandle,
    pub nh_stats: MapHandle,
    pub src_blackhole_drops: MapHandle,
    pub blackhole_prefixes: MapHandle,
    pub src_rules4: MapHandle,
    pub src_rules6: MapHandle,
    pub neigh4: MapHandle,
    pub neigh6: MapHandle,
    pub local4: MapHandle,
    pub local4_bits: MapHandle,
    pub capacity: MapHandle,
    config: Cell<accel_config>,
    /// What the writer keeps beside the maps to write them consistently.
    books: RefCell<Books>,
    /// The writable IPv4 table; only the instance that created the maps
    /// has it (readers look leaves up through the map handles).
    fib4: Option<RefCell<Trie<MmapLeaves>>>,
    /// The writable IPv6 trie, likewise.
    fib6: Option<RefCell<Trie<MmapLeaves>>>,
    /// Route changes applied to the tries since their last flush.
    unflushed: std::cell::Cell<usize>,
}

fn handle<M>(name: &'static str, m: &M) -> Result<MapHandle, DatapathError>
where
    for<'a> MapHandle: TryFrom<&'a M, Error = libbpf_rs::Error>,
{
    MapHandle::try_from(m).map_err(failed(name, "dup"))
}

/// The writer's bookkeeping for the maps it keeps consistent by hand.
struct Books {
    /// The addresses in local4, how many fold to each bit of local4_bits,
    /// and the bits as written (the map is written from this copy, never
    /// read back).
    local4_addrs: HashSet<u32>,
    local4_counts: HashMap<u16, u32>,
    local4_words: Vec<u64>,
    /// The iface_versions slot of each indexed interface, the free slots,
    /// and the entries that found none (retried by
    /// [`Maps::retry_ifaces`]).
    iface_slot: HashMap<u32, usize>,
    iface_free: GraceSlots,
    iface_pending: HashMap<u32, accel_iface>,
    /// The nexthops slot of each next-hop id, with the gateway MACs.
    nexthops: NexthopVersions,
}

impl Books {
    fn new(nexthop_slots: u32) -> Self {
        Books {
            local4_addrs: HashSet::new(),
            local4_counts: HashMap::new(),
            local4_words: vec![0; L::ACCEL_LOCAL4_WORDS.0 as usize],
            iface_slot: HashMap::new(),
            iface_free: GraceSlots::new(0, L::ACCEL_IFACE_VERSIONS.0 as usize),
            iface_pending: HashMap::new(),
            nexthops: NexthopVersions::new(nexthop_slots as usize),
        }
    }
}

fn failed(map: &'static str, op: &'static str) -> impl FnOnce(libbpf_rs::Error) -> DatapathError {
    move |source| DatapathError::Map { map, op, source }
}

impl Maps {
    pub fn from_skel(skel: &AccelSkel<'_>, limits: &Limits) -> Result<Maps, DatapathError> {
        let m = &skel.maps;
        Maps {
            cfg: handle("accel_cfg", &m.accel_cfg)?,
            ifaces: handle("ifaces", &m.ifaces)?,
            iface_index: handle("iface_index", &m.iface_index)?,
            iface_versions: handle("iface_versions", &m.iface_versions)?,
            tx_ports: handle("tx_ports", &m.tx_ports)?,
            stats: handle("stats", &m.stats)?,
            fib4_root: handle("fib4_root", &m.fib4_root)?,
            fib4_nodes: handle("fib4_nodes", &m.fib4_nodes)?,
            fib6_root: handle("fib6_root", &m.fib6_root)?,
            fib6_nodes: handle("fib6_nodes", &m.fib6_nodes)?,
            nh_index: handle("nh_index", &m.nh_index)?,
            nexthops: handle("nexthops", &m.nexthops)?,
            nh_groups: handle("nh_groups", &m.nh_groups)?,
            blackhole_drops: handle("blackhole_drops", &m.blackhole_drops)?,
            nh_stats: handle("nh_stats", &m.nh_stats)?,
            src_blackhole_drops: handle("src_blackhole_drops", &m.src_blackhole_drops)?,
            blackhole_prefixes: handle("blackhole_prefixes", &m.blackhole_prefixes)?,
            src_rules4: handle("src_rules4", &m.src_rules4)?,
            src_rules6: handle("src_rules6", &m.src_rules6)?,
            neigh4: handle("neigh4", &m.neigh4)?,
            neigh6: handle("neigh6", &m.neigh6)?,
            local4: handle("local4", &m.local4)?,
            local4_bits: handle("local4_bits", &m.local4_bits)?,
            capacity: handle("capacity", &m.capacity)?,
            config: Cell::new(accel_config::default()),
            books: RefCell::new(Books::new(nh_versions::slots_for(limits.nexthops))),
            fib4: None,
            unflushed: std::cell::Cell::new(0),
            fib6: None,
        }
        .with_fib(Family::V4, limits.ipv4_trie as usize)?
        .with_fib(Family::V6, limits.ipv6_trie as usize)
    }

    /// Opens the maps a running `accel run` pinned in `pins`.
    pub fn open_pinned(pins: &PinDir) -> Result<Maps, DatapathError> {
        let open = |name: &str| pins.open_map(name);
        let cfg = open("accel_cfg")?;
        let current = lookup::<_, accel_config>(&cfg, &0u32).unwrap_or_default();
        Ok(Maps {
            cfg,
            ifaces: open("ifaces")?,
            iface_index: open("iface_index")?,
            iface_versions: open("iface_versions")?,
            tx_ports: open("tx_ports")?,
            stats: open("stats")?,
            fib4_root: open("fib4_root")?,
            fib4_nodes: open("fib4_nodes")?,
            fib6_root: open("fib6_root")?,
            fib6_nodes: open("fib6_nodes")?,
            nh_index: open("nh_index")?,
            nexthops: open("nexthops")?,
            nh_groups: open("nh_groups")?,
            blackhole_drops: open("blackhole_drops")?,
            nh_stats: open("nh_stats")?,
            src_blackhole_drops: open("src_blackhole_drops")?,
            blackhole_prefixes: open("blackhole_prefixes")?,
            src_rules4: open("src_rules4")?,
            src_rules6: open("src_rules6")?,
            neigh4: open("neigh4")?,
            neigh6: open("neigh6")?,
            local4: open("local4")?,
            local4_bits: open("local4_bits")?,
            capacity: open("capacity")?,
            config: Cell::new(current),
            // A reader: never writes next hops.
            books: RefCell::new(Books::new(0)),
            fib4: None,
            unflushed: std::cell::Cell::new(0),
            fib6: None,
        })
    }

    /// Every map with the name it is pinned under.
    pub fn named(&self) -> [(&'static str, &MapHandle); 24] {
        [
            ("accel_cfg", &self.cfg),
            ("ifaces", &self.ifaces),
            ("iface_index", &self.iface_index),
            ("iface_versions", &self.iface_versions),
            ("tx_ports", &self.tx_ports),
            ("stats", &self.stats),
            ("fib4_root", &self.fib4_root),
            ("fib4_nodes", &self.fib4_nodes),
            ("fib6_root", &self.fib6_root),
            ("fib6_nodes", &self.fib6_nodes),
            ("nh_index", &self.nh_index),
            ("nexthops", &self.nexthops),
            ("nh_groups", &self.nh_groups),
            ("blackhole_drops", &self.blackhole_drops),
            ("nh_stats", &self.nh_stats),
            ("src_blackhole_drops", &self.src_blackhole_drops),
            ("blackhole_prefixes", &self.blackhole_prefixes),
            ("src_rules4", &self.src_rules4),
            ("src_rules6", &self.src_rules6),
            ("neigh4", &self.neigh4),
            ("neigh6", &self.neigh6),
            ("local4", &self.local4),
            ("local4_bits", &self.local4_bits),
            ("capacity", &self.capacity),
        ]
    }

    /// Applies mirror changes in order. A run of route changes reaches the
    /// tries' datapath copies at once, at its end (each changed node
    /// written once, see trie/encode.rs), before any other change: one
    /// that frees what the old routes used (a next hop, a neighbour)
    /// comes after the routes that used it are gone.
    pub fn apply(&self, changes: &[Change]) -> Result<(), DatapathError> {
        self.apply_deferring_routes(changes)?;
        self.flush_routes()
    }

    /// [`Maps::apply`], leaving the last run of route changes for the
    /// caller's [`Maps::flush_routes`] (a burst of route events, written
    /// together).
    pub fn apply_deferring_routes(&self, changes: &[Change]) -> Result<(), DatapathError> {
        for c in changes {
            let route = matches!(c, Change::PutRoute { .. } | Change::DelRoute(_));
            // A long run (a resync's) is written in parts, so that no
            // change waits for thousands of others.
            if !route || self.unflushed.get() >= FLUSH_RUN {
                self.flush_routes()?;
            }
            self.apply_one(c)?;
            self.unflushed
                .set(self.unflushed.get() + usize::from(route));
        }
        Ok(())
    }

    /// Writes the route changes applied so far to the datapath.
    pub fn flush_routes(&self) -> Result<(), DatapathError> {
        self.unflushed.set(0);
        if self.fib4.is_some() {
            self.fib4()?.flush();
            self.fib6()?.flush();
        }
        Ok(())
    }

    fn put_route(
        &self,
        prefix: &Prefix,
        entry: &RouteEntry,
        nh_id: u32,
    ) -> Result<(), DatapathError> {
        let v = route_value(entry, nh_id);
        let leaf = route_leaf(v.r#type, v.nh_id);
        // Without room in the table, the route's region goes to
        // bpf_fib_lookup (see trie.rs).
        match route_key(prefix) {
            RouteKey::V4(k) => {
                let addr = trie::v4(u32::from_be(k.addr));
                self.fib4()?.insert(addr, k.prefixlen as u8, leaf);
            }
            RouteKey::V6(k) => {
                let addr = u128::from_be_bytes(k.addr);
                self.fib6()?.insert(addr, k.prefixlen as u8, leaf);
            }
        }
        Ok(())
    }

    /// Points iface_index at a fresh iface_versions slot holding `entry`
    /// (complete before the index names it), or at none; the old slot is
    /// reused after the grace period. Ifindexes past the index are found
    /// through the hash alone. Without a free slot the index says "not
    /// ours" for the moment, which hands the interface's frames to the
    /// kernel (slower, never wrong) until [`Maps::retry_ifaces`].
    fn index_iface(&self, ifindex: u32, entry: Option<&accel_iface>) -> Result<(), DatapathError> {
        if ifindex >= L::ACCEL_IFINDEX_CACHE.0 {
            return Ok(());
        }
        let mut b = self.books.borrow_mut();
        b.iface_pending.remove(&ifindex);
        let slot = match entry {
            Some(v) => match b.iface_free.take() {
                Some(s) => {
                    put(&self.iface_versions, "iface_versions", &(s as u32), v)?;
                    Some(s)
                }
                None => {
                    warn!("interface {ifindex}: no free iface_versions slot yet; the kernel forwards its frames meanwhile");
                    b.iface_pending.insert(ifindex, *v);
                    None
                }
            },
            None => None,
        };
        let word = slot.map_or(0, |s| s as u32 + 1);
        put(&self.iface_index, "iface_index", &ifindex, &word)?;
        let old = match slot {
            Some(s) => b.iface_slot.insert(ifindex, s),
            None => b.iface_slot.remove(&ifindex),
        };
        if let Some(old) = old {
            b.iface_free.release(old);
        }
        Ok(())
    }

    /// Indexes the interfaces that found no iface_versions slot, now that
    /// released ones may have waited out their grace period.
    pub fn retry_ifaces(&self) -> Result<(), DatapathError> {
        let pending: Vec<(u32, accel_iface)> =
            self.books.borrow_mut().iface_pending.drain().collect();
        for (ifindex, v) in pending {
            self.index_iface(ifindex, Some(&v))?;
        }
        Ok(())
    }

    /// Counts `key` (a local4 key) in or out of its local4_bits bit, and
    /// sets the bit when its first address comes, clears it when its last
    /// goes.
    fn local4_fold(&self, key: u32, add: bool) -> Result<(), DatapathError> {
        let mut guard = self.books.borrow_mut();
        let b = &mut *guard;
        let bit = local4_fold(key);
        let n = b.local4_counts.entry(bit).or_insert(0);
        let flip = if add {
            b.local4_addrs.insert(key) && {
                *n += 1;
                *n == 1
            }
        } else {
            b.local4_addrs.remove(&key) && {
                *n -= 1;
                *n == 0
            }
        };
        if *n == 0 {
            b.local4_counts.remove(&bit);
        }
        if !flip {
            return Ok(());
        }
        let ix = usize::from(bit / 64);
        b.local4_words[ix] ^= 1 << (bit % 64);
        put(
            &self.local4_bits,
            "local4_bits",
            &(ix as u32),
            &b.local4_words[ix],
        )
    }

    /// Zeroes slot `id` of a per-CPU counter array on every CPU.
    fn zero_percpu<T>(
        &self,
        map: &MapHandle,
        name: &'static str,
        id: u32,
    ) -> Result<(), DatapathError> {
        let zero = vec![0u8; std::mem::size_of::<T>()];
        let cpus = libbpf_rs::num_possible_cpus().map_err(failed(name, "cpus"))?;
        map.update_percpu(bytes_of(&id), &vec![zero; cpus], MapFlags::ANY)
            .map_err(failed(name, "update"))
    }

    /// What the mirror forwarded through next hop `id`, summed over CPUs.
    pub fn nexthop_stats(&self, id: u32) -> accel_nh_stats {
        let mut sum = accel_nh_stats::default();
        let per_cpu = self
            .nh_stats
            .lookup_percpu(bytes_of(&id), MapFlags::ANY)
            .ok()
            .flatten()
            .unwrap_or_default();
        for c in per_cpu
            .iter()
            .filter_map(|b| from_bytes::<accel_nh_stats>(b))
        {
            sum.packets += c.packets;
            sum.bytes += c.bytes;
        }
        sum
    }

    /// A blackhole prefix's drop-counter slot, its counters zeroed first.
    fn put_blackhole(&self, id: u32, prefix: &Prefix) -> Result<(), DatapathError> {
        self.zero_percpu::<accel_blackhole>(&self.blackhole_drops, "blackhole_drops", id)?;
        self.zero_percpu::<accel_blackhole>(&self.src_blackhole_drops, "src_blackhole_drops", id)?;
        put(
            &self.blackhole_prefixes,
            "blackhole_prefixes",
            &id,
            &blackhole_prefix_value(prefix),
        )
    }

    /// Makes the writes [`NexthopVersions`] decided, in order.
    fn write_nexthops(
        &self,
        f: impl FnOnce(&mut NexthopVersions, &mut Vec<Write>),
    ) -> Result<(), DatapathError> {
        let mut writes = Vec::new();
        f(&mut self.books.borrow_mut().nexthops, &mut writes);
        for w in writes {
            match w {
                Write::Entry { slot, entry } => put(&self.nexthops, "nexthops", &slot, &entry)?,
                Write::Index { id, word } => put(&self.nh_index, "nh_index", &id, &word)?,
            }
        }
        Ok(())
    }

    /// Writes the next hops that found no free slot, now that released
    /// ones may have waited out their grace period.
    pub fn retry_nexthops(&self) -> Result<(), DatapathError> {
        self.write_nexthops(|v, w| v.retry(w))
    }

    fn put_neigh(&self, ifindex: u32, addr: IpAddr, mac: [u8; 6]) -> Result<(), DatapathError> {
        // The next hops through this gateway carry its MAC, whether or
        // not the neighbour hash (for connected destinations) has room.
        self.write_nexthops(|v, w| v.put_neigh(ifindex, addr, mac, w))?;
        let v = neigh_value(mac);
        let r = match neigh_key(ifindex, addr) {
            NeighKey::V4(k) => self
                .neigh4
                .update(bytes_of(&k), bytes_of(&v), MapFlags::ANY),
            NeighKey::V6(k) => self
                .neigh6
                .update(bytes_of(&k), bytes_of(&v), MapFlags::ANY),
        };
        // The mirror never asks for more neighbours than fit, but should a
        // write fail anyway, a missing neighbour only sends its packets to
        // bpf_fib_lookup: no reason to stop.
        if let Err(e) = r {
            warn!("neighbour {addr} (ifindex {ifindex}) not written ({e}): bpf_fib_lookup resolves it");
            self.del_neigh(ifindex, addr, false)?;
        }
        Ok(())
    }

    /// Removes a neighbour from the hash, and with `gone` from the next
    /// hops through it.
    fn del_neigh(&self, ifindex: u32, addr: IpAddr, gone: bool) -> Result<(), DatapathError> {
        if gone {
            self.write_nexthops(|v, w| v.del_neigh(ifindex, addr, w))?;
        }
        match neigh_key(ifindex, addr) {
            NeighKey::V4(k) => del(&self.neigh4, "neigh4", &k),
            NeighKey::V6(k) => del(&self.neigh6, "neigh6", &k),
        }
    }

    fn apply_one(&self, c: &Change) -> Result<(), DatapathError> {
        match c {
            Change::PutNexthop { id, nh } => {
                // A new next hop in the slot: its counters start at 0.
                self.zero_percpu::<accel_nh_stats>(&self.nh_stats, "nh_stats", *id)?;
                let entry = nexthop_value(nh);
                self.write_nexthops(|v, w| v.put_nexthop(*id, entry, w))
            }
            Change::PutGroup {
                id,
                blackhole,
                paths,
            } => put(
                &self.nh_groups,
                "nh_groups",
                id,
                &group_value(*blackhole, paths),
            ),
            Change::PutRoute {
                prefix,
                entry,
                nh_id,
            } => self.put_route(prefix, entry, *nh_id),
            Change::PutBlackhole { id, prefix } => self.put_blackhole(*id, prefix),
            Change::DelBlackhole(id) => put(
                &self.blackhole_prefixes,
                "blackhole_prefixes",
                id,
                &accel_blackhole_prefix::default(),
            ),
            Change::PutSrcRule(prefix) => match route_key(prefix) {
                RouteKey::V4(k) => put(&self.src_rules4, "src_rules4", &k, &1u8),
                RouteKey::V6(k) => put(&self.src_rules6, "src_rules6", &k, &1u8),
            },
            Change::DelSrcRule(prefix) => match route_key(prefix) {
                RouteKey::V4(k) => del(&self.src_rules4, "src_rules4", &k),
                RouteKey::V6(k) => del(&self.src_rules6, "src_rules6", &k),
            },
            Change::DelRoute(prefix) => match route_key(prefix) {
                RouteKey::V4(k) => {
                    let addr = trie::v4(u32::from_be(k.addr));
                    self.fib4()?.remove(addr, k.prefixlen as u8);
                    Ok(())
                }
                RouteKey::V6(k) => {
                    let addr = u128::from_be_bytes(k.addr);
                    self.fib6()?.remove(addr, k.prefixlen as u8);
                    Ok(())
                }
            },
            Change::PutNeigh { ifindex, addr, mac } => self.put_neigh(*ifindex, *addr, *mac),
            Change::DelNeigh { ifindex, addr } => self.del_neigh(*ifindex, *addr, true),
            Change::PutIface { ifindex, entry } => {
                // The devmap entry exists before the datapath may pick the
                // interface as egress. The devmap takes only a device that
                // exists (dev_map_update_elem(): EINVAL), and events come
                // after the fact: a veth's last link message (down) is
                // applied after the device is gone. Such a device is no
                // egress: its entries go, as its RTM_DELLINK, next, asks.
                let slot = u32::from(entry.slot);
                let put_port =
                    self.tx_ports
                        .update(bytes_of(&slot), bytes_of(ifindex), MapFlags::ANY);
                match put_port {
                    Ok(()) => {}
                    Err(e)
                        if e.kind() == libbpf_rs::ErrorKind::InvalidInput
                            && matches!(crate::runtime::iface_name(*ifindex), Ok(None)) =>
                    {
                        log::debug!("ifindex {ifindex} is gone: its entries go");
                        return self.apply_one(&Change::DelIface(*ifindex));
                    }
                    Err(e) => return Err(failed("tx_ports", "update")(e)),
                }
                let v = iface_value(entry);
                put(&self.ifaces, "ifaces", ifindex, &v)?;
                self.index_iface(*ifindex, Some(&v))?;
                self.write_nexthops(|n, w| n.put_iface(*ifindex, v, w))
            }
            Change::DelIface(ifindex) => {
                let old: Option<accel_iface> = lookup(&self.ifaces, ifindex);
                self.write_nexthops(|n, w| n.del_iface(*ifindex, w))?;
                self.index_iface(*ifindex, None)?;
                del(&self.ifaces, "ifaces", ifindex)?;
                match old {
                    Some(v) => del(&self.tx_ports, "tx_ports", &u32::from(v.slot)),
                    None => Ok(()),
                }
            }
            Change::PutLocal4(a) => {
                // The bit before the address: the datapath never finds a
                // local address's bit clear.
                let key = u32::from_ne_bytes(a.octets());
                self.local4_fold(key, true)?;
                put(&self.local4, "local4", &key, &1u8)
            }
            Change::DelLocal4(a) => {
                let key = u32::from_ne_bytes(a.octets());
                del(&self.local4, "local4", &key)?;
                self.local4_fold(key, false)
            }
            Change::Config(flags) => {
                let mut c = self.config.get();
                c.flags = *flags;
                self.write_config(c)
            }
            Change::MpSeed(seed) => {
                let mut c = self.config.get();
                c.mp_seed = *seed;
                self.write_config(c)
            }
        }
    }

    /// Lets the datapath use the mirror until `lease_ns`, and forward at
    /// all until `alive_ns` (the datapath's clock, see [`super::clock`]).
    pub fn set_deadlines(&self, lease_ns: u64, alive_ns: u64) -> Result<(), DatapathError> {
        // The mirror's stores (the tries are written through memory-mapped
        // arrays) before the lease that vouches for them: the datapath
        // reads the lease first, then the tries (accel_run).
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        let mut c = self.config.get();
        c.lease_until_ns = lease_ns;
        c.alive_until_ns = alive_ns;
        self.write_config(c)
    }

    pub fn config(&self) -> accel_config {
        lookup(&self.cfg, &0u32).unwrap_or_default()
    }

    fn write_config(&self, c: accel_config) -> Result<(), DatapathError> {
        put(&self.cfg, "accel_cfg", &0u32, &c)?;
        self.config.set(c);
        Ok(())
    }

    /// Per-CPU counters of one interface slot, summed.
    pub fn stats(&self, slot: u16) -> Result<accel_stats, DatapathError> {
        let per_cpu = self
            .stats
            .lookup_percpu(bytes_of(&(slot as u32)), MapFlags::ANY)
            .map_err(failed("stats", "lookup"))?
            .unwrap_or_default();
        let mut sum = accel_stats::default();
        for cpu in per_cpu.iter().filter_map(|b| from_bytes::<accel_stats>(b)) {
            for (s, c) in sum.packets.iter_mut().zip(cpu.packets.iter()) {
                *s += c;
            }
            sum.fwd_bytes += cpu.fwd_bytes;
            sum.no_lease += cpu.no_lease;
            sum.pass_bytes += cpu.pass_bytes;
            sum.drop_bytes += cpu.drop_bytes;
        }
        Ok(sum)
    }

    pub fn iface(&self, ifindex: u32) -> Option<accel_iface> {
        lookup(&self.ifaces, &ifindex)
    }

    pub fn ifaces(&self) -> Vec<(u32, accel_iface)> {
        self.ifaces
            .keys()
            .filter_map(|k| {
                let ifindex = from_bytes::<u32>(&k)?;
                Some((ifindex, self.iface(ifindex)?))
            })
            .collect()
    }

    /// The route the datapath's longest-prefix match finds for `addr`.
    pub fn route_for(&self, addr: std::net::IpAddr) -> Option<accel_route> {
        match host_key(addr) {
            RouteKey::V4(k) => {
                let a = k.addr.to_ne_bytes();
                self.walk(&self.fib4_root, &self.fib4_nodes, &a)
            }
            RouteKey::V6(k) => self.walk(&self.fib6_root, &self.fib6_nodes, &k.addr),
        }
    }

    /// fib.h's walk down a trie, through the map handles: the root by the
    /// first two bytes of the address (network order), a node per further
    /// byte.
    fn walk(&self, root: &MapHandle, nodes: &MapHandle, a: &[u8]) -> Option<accel_route> {
        let mut leaf = self.leaf(root, (usize::from(a[0]) << 8) | usize::from(a[1]))?;
        for byte in &a[2..] {
            if leaf & D::ACCEL_LEAF_EXT.0 == 0 {
                break;
            }
            // A header or code word that cannot be read fails the walk.
            let unread = std::cell::Cell::new(false);
            let read = |w: usize| {
                self.leaf(nodes, w).unwrap_or_else(|| {
                    unread.set(true);
                    0
                })
            };
            let word = trie::node_word(read, leaf, usize::from(*byte));
            if unread.get() {
                return None;
            }
            leaf = match word {
                Some(w) => self.leaf(nodes, w)?,
                None => 0,
            };
        }
        route_of_leaf(leaf)
    }

    fn leaf(&self, map: &MapHandle, i: usize) -> Option<u32> {
        let per = D::ACCEL_LEAVES_PER_ENTRY.0 as usize;
        let e: accel_leaves = lookup(map, &((i / per) as u32))?;
        Some(e.leaf[i % per])
    }

    /// Maps the route trie of `family` (`lines` node lines) for writing.
    fn with_fib(mut self, family: Family, lines: usize) -> Result<Self, DatapathError> {
        let map = |m: &MapHandle, name, leaves| {
            MmapLeaves::map(m, leaves).map_err(|source| DatapathError::Mmap { map: name, source })
        };
        let (names, maps) = match family {
            Family::V4 => (
                ["fib4_root", "fib4_nodes"],
                [&self.fib4_root, &self.fib4_nodes],
            ),
            Family::V6 => (
                ["fib6_root", "fib6_nodes"],
                [&self.fib6_root, &self.fib6_nodes],
            ),
        };
        let root = map(maps[0], names[0], trie::ROOT_LEAVES)?;
        let leaves = map(maps[1], names[1], lines * trie::LINE_WORDS)?;
        let t = Some(RefCell::new(Trie::new(family, root, leaves, lines)));
        match family {
            Family::V4 => self.fib4 = t,
            Family::V6 => self.fib6 = t,
        }
        Ok(self)
    }

    fn fib6(&self) -> Result<std::cell::RefMut<'_, Trie<MmapLeaves>>, DatapathError> {
        Ok(self
            .fib6
            .as_ref()
            .expect("only the instance that loaded the datapath writes routes")
            .borrow_mut())
    }

    fn fib4(&self) -> Result<std::cell::RefMut<'_, Trie<MmapLeaves>>, DatapathError> {
        Ok(self
            .fib4
            .as_ref()
            .expect("only the instance that loaded the datapath writes routes")
            .borrow_mut())
    }

    /// Touches what writing a burst's routes will read first (see
    /// [`crate::fast_hash::ShardedMap::warm`]). Only the instance that
    /// loaded the datapath holds the tables; others have nothing to warm.
    pub fn warm_routes<'a>(&self, events: impl Iterator<Item = &'a Event>) {
        let (Some(fib4), Some(fib6)) = (&self.fib4, &self.fib6) else {
            return;
        };
        trie::WarmBatches::of(events).warm(&fib4.borrow(), &fib6.borrow());
    }

    /// Gives degraded regions of both route tries their nodes back where
    /// room freed up; returns how many came back (IPv4 and IPv6 ranges).
    pub fn retry_routes(&self) -> Result<(usize, usize), DatapathError> {
        Ok((self.fib4()?.retry(), self.fib6()?.retry()))
    }

    /// How full the IPv4 and IPv6 tries are.
    pub fn route_usage(&self) -> Result<[(Structure, Usage); 2], DatapathError> {
        let (mut t4, mut t6) = (self.fib4()?, self.fib6()?);
        Ok([
            (Structure::Ipv4Trie, t4.usage()),
            (Structure::Ipv6Trie, t6.usage()),
        ])
    }

    /// The node lines all the mirrored routes of `family` need, room or
    /// not (a pass over every node: for growing the map, not for every
    /// second's figures).
    pub fn lines_needed(&self, family: Family) -> Result<usize, DatapathError> {
        Ok(match family {
            Family::V4 => self.fib4()?.lines_needed(),
            Family::V6 => self.fib6()?.lines_needed(),
        })
    }

    /// Publishes the figures for `accel stats --capacity`.
    pub fn write_capacity(&self, f: &Figures) -> Result<(), DatapathError> {
        for (s, u) in f.iter() {
            let v = accel_capacity {
                capacity: u.capacity,
                used: u.used,
                degraded: u.degraded,
                regions: u.regions,
            };
            put(&self.capacity, "capacity", &s.index(), &v)?;
        }
        Ok(())
    }

    /// The figures the running instance published.
    pub fn read_capacity(&self) -> Figures {
        let mut f = Figures::default();
        for s in Structure::ALL {
            let v: accel_capacity = lookup(&self.capacity, &s.index()).unwrap_or_default();
            f.set(
                s,
                Usage {
                    capacity: v.capacity,
                    used: v.used,
                    degraded: v.degraded,
                    regions: v.regions,
                },
            );
        }
        f
    }

    /// Drops per blackhole prefix (slots with a prefix), summed over CPUs.
    pub fn blackhole_drops(&self) -> Vec<(Option<crate::model::Prefix>, accel_blackhole)> {
        self.drops_per_prefix(&self.blackhole_drops)
    }

    /// Source RTBH: drops of packets whose source's route is the blackhole
    /// prefix, summed over CPUs.
    pub fn source_blackhole_drops(&self) -> Vec<(Option<crate::model::Prefix>, accel_blackhole)> {
        self.drops_per_prefix(&self.src_blackhole_drops)
    }

    fn drops_per_prefix(
        &self,
        counters: &MapHandle,
    ) -> Vec<(Option<crate::model::Prefix>, accel_blackhole)> {
        (0..self.blackhole_prefixes.max_entries())
            .filter_map(|id| {
                let p: accel_blackhole_prefix = lookup(&self.blackhole_prefixes, &id)?;
                let prefix = super::keys::prefix_of_blackhole(&p);
                if prefix.is_none() && id != 0 {
                    return None;
                }
                let per_cpu = counters
                    .lookup_percpu(bytes_of(&id), MapFlags::ANY)
                    .ok()??;
                let mut sum = accel_blackhole::default();
                for c in per_cpu
                    .iter()
                    .filter_map(|b| from_bytes::<accel_blackhole>(b))
                {
                    sum.packets += c.packets;
                    sum.bytes += c.bytes;
                }
                Some((prefix, sum))
            })
            .collect()
    }

    pub fn group(&self, id: u32) -> Option<crate::bpf::types::accel_nh_group> {
        lookup(&self.nh_groups, &id)
    }

    /// Next hop `id` as the datapath reads it (through nh_index).
    pub fn nexthop(&self, id: u32) -> Option<accel_nexthop> {
        let word: u32 = lookup(&self.nh_index, &id)?;
        lookup(&self.nexthops, &word.checked_sub(1)?)
    }

    pub fn neighbour(&self, ifindex: u32, addr: std::net::IpAddr) -> Option<[u8; 6]> {
        let v: Option<crate::bpf::types::accel_neigh> = match neigh_key(ifindex, addr) {
            NeighKey::V4(k) => lookup(&self.neigh4, &k),
            NeighKey::V6(k) => lookup(&self.neigh6, &k),
        };
        v.map(|n| n.mac)
    }
}

/// The route a leaf of either table stands for, if any.
fn route_of_leaf(leaf: u32) -> Option<accel_route> {
    (leaf & D::ACCEL_LEAF_ROUTE.0 != 0).then_some(accel_route {
        r#type: (leaf >> D::ACCEL_LEAF_TYPE_SHIFT.0) & D::ACCEL_LEAF_TYPE_MASK.0,
        nh_id: leaf & D::ACCEL_LEAF_ID_MASK.0,
    })
}

fn put<K: Pod, V: Pod>(
    m: &MapHandle,
    name: &'static str,
    k: &K,
    v: &V,
) -> Result<(), DatapathError> {
    m.update(bytes_of(k), bytes_of(v), MapFlags::ANY)
        .map_err(failed(name, "update"))
}

/// local4_fold() of accel.bpf.c: the bit of local4_bits for a local4 key
/// (the address in network order, read as a native u32).
fn local4_fold(key: u32) -> u16 {
    ((key ^ (key >> 16)) & 0xffff) as u16
}

fn del<K: Pod>(m: &MapHandle, name: &'static str, k: &K) -> Result<(), DatapathError> {
    match m.delete(bytes_of(k)) {
        Ok(()) => Ok(()),
        // Already gone is what a delete wants.
        Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failed(name, "delete")(e)),
    }
}

fn lookup<K: Pod, V: Pod>(m: &MapHandle, k: &K) -> Option<V> {
    m.lookup(bytes_of(k), MapFlags::ANY)
        .ok()
        .flatten()
        .and_then(|b| from_bytes(&b))
}
