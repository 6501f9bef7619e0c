//! The mirror: the kernel's forwarding state as accel last saw it, and the
//! map entries that state calls for. Every input (a dump, an event) yields
//! the list of map changes that bring the datapath in line with it; the
//! changes are ordered so that the datapath never sees a route whose next
//! hop has not been written yet.

pub mod capacity;
pub mod code;
pub mod decision;
pub mod entries;
pub mod groups;
pub mod nexthops;
pub mod nudge;
pub mod overlay;
pub mod prefixmap;
pub mod routeset;
mod sweep;
pub use sweep::{Checked, Comparison, Sweep};
pub mod rules;
pub mod view;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use crate::capacity::Limits;
use crate::model::{
    Addr, Event, Family, KernelState, Link, NeighbourState, NexthopObject, Prefix, Route, Rule,
    TABLE_LOCAL,
};
use capacity::Shortfall;
use code::{AppliedCode, NhTable};
use decision::{NhKey, RouteEntry};
use groups::{GroupContent, GroupKey};
use nexthops::{NexthopIds, SharedIds};
use overlay::{Overlay, OverlayBuilder};
pub use prefixmap::PrefixList;
use prefixmap::PrefixMap;
pub use view::View;

pub use crate::bpf::types::{accel_cfg_flags as CfgFlags, accel_if_flags as IfFlags};

/// The interface data the datapath needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfaceEntry {
    pub mac: [u8; 6],
    pub slot: u16,
    pub mtu: u32,
    pub flags: u32,
    pub mtu6: u32,
}

/// One write to the datapath's maps.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    PutNexthop {
        id: u32,
        nh: NhKey,
    },
    /// A multipath or nexthop-object group: (next-hop id, upper bound) per
    /// path; no paths and not blackhole: bpf_fib_lookup decides.
    PutGroup {
        id: u32,
        blackhole: bool,
        paths: Vec<(u32, u32)>,
    },
    PutRoute {
        prefix: Prefix,
        entry: RouteEntry,
        nh_id: u32,
    },
    DelRoute(Prefix),
    /// Blackhole prefix `prefix` counts its drops in slot `id` (counters
    /// start from zero).
    PutBlackhole {
        id: u32,
        prefix: Prefix,
    },
    /// Slot `id` counts no prefix any more.
    DelBlackhole(u32),
    /// Packets from this prefix are subject to an ip rule: bpf_fib_lookup.
    PutSrcRule(Prefix),
    DelSrcRule(Prefix),
    PutNeigh {
        ifindex: u32,
        addr: IpAddr,
        mac: [u8; 6],
    },
    DelNeigh {
        ifindex: u32,
        addr: IpAddr,
    },
    PutIface {
        ifindex: u32,
        entry: IfaceEntry,
    },
    DelIface(u32),
    PutLocal4(Ipv4Addr),
    DelLocal4(Ipv4Addr),
    Config(u32),
    /// The multipath hash seed (0: unknown, see ACCEL_CFG_MP_HASH4).
    MpSeed(u32),
}

/// What a batch of changes did, for `accel sync` and the logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeSummary {
    pub routes_put: usize,
    pub routes_deleted: usize,
    pub nexthops_put: usize,
    pub groups_put: usize,
    pub neighbours_put: usize,
    pub neighbours_deleted: usize,
    pub ifaces_put: usize,
    pub local_addrs_changed: usize,
    pub config_changed: usize,
}

impl ChangeSummary {
    pub fn of(changes: &[Change]) -> Self {
        let mut s = ChangeSummary::default();
        for c in changes {
            match c {
                Change::PutNexthop { .. } => s.nexthops_put += 1,
                Change::PutGroup { .. } => s.groups_put += 1,
                Change::PutRoute { .. } => s.routes_put += 1,
                Change::DelRoute(_) => s.routes_deleted += 1,
                Change::PutBlackhole { .. } | Change::DelBlackhole(_) => {}
                Change::PutSrcRule(_) | Change::DelSrcRule(_) => s.config_changed += 1,
                Change::PutNeigh { .. } => s.neighbours_put += 1,
                Change::DelNeigh { .. } => s.neighbours_deleted += 1,
                Change::PutIface { .. } | Change::DelIface(_) => s.ifaces_put += 1,
                Change::PutLocal4(_) | Change::DelLocal4(_) => s.local_addrs_changed += 1,
                Change::Config(_) | Change::MpSeed(_) => s.config_changed += 1,
            }
        }
        s
    }

    /// Adds another batch's counts.
    pub fn add(&mut self, o: &ChangeSummary) {
        self.routes_put += o.routes_put;
        self.routes_deleted += o.routes_deleted;
        self.nexthops_put += o.nexthops_put;
        self.groups_put += o.groups_put;
        self.neighbours_put += o.neighbours_put;
        self.neighbours_deleted += o.neighbours_deleted;
        self.ifaces_put += o.ifaces_put;
        self.local_addrs_changed += o.local_addrs_changed;
        self.config_changed += o.config_changed;
    }

    pub fn total(&self) -> usize {
        self.routes_put
            + self.routes_deleted
            + self.nexthops_put
            + self.groups_put
            + self.neighbours_put
            + self.neighbours_deleted
            + self.ifaces_put
            + self.local_addrs_changed
            + self.config_changed
    }
}

impl std::fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "routes +{} -{}, next hops +{}, groups +{}, neighbours +{} -{}, interfaces {}, local addresses {}, config {}",
            self.routes_put,
            self.routes_deleted,
            self.nexthops_put,
            self.groups_put,
            self.neighbours_put,
            self.neighbours_deleted,
            self.ifaces_put,
            self.local_addrs_changed,
            self.config_changed
        )
    }
}

/// An interface accel is attached to.
#[derive(Debug, Clone, Copy)]
pub struct IfaceConf {
    pub slot: u16,
    /// ACCEL_IF_FWD4/FWD6/RPF_* as read from sysctl.
    pub sysctl_flags: u32,
    /// conf/<if>/mtu of IPv6, 0 where IPv6 is off on the interface.
    pub mtu6: u32,
    /// ACCEL_IF_TC / ACCEL_IF_TC_BESIDE: how accel's programs run on it.
    pub hook_flags: u32,
    /// ACCEL_IF_INGRESS_TC / ACCEL_IF_EGRESS_TC: tc configuration that acts
    /// on its traffic (see [`crate::netlink::tc`]).
    pub tc_flags: u32,
}

/// Namespace-wide sysctls of the kernel's forwarding path: its multipath
/// hash, and the priority ip_forward() gives packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ForwardingSysctls {
    /// net.ipv4.fib_multipath_hash_seed; 0 means a random seed the kernel
    /// keeps to itself.
    pub seed: u32,
    pub policy4: u32,
    pub policy6: u32,
    /// net.ipv4.ip_forward_update_priority: ip_forward() sets
    /// skb->priority from the TOS (ACCEL_CFG_UPDATE_PRIO4).
    pub update_priority4: bool,
}

/// A fresh view being filled from a dump, route by route. It shares the
/// mirror's next-hop table, so its entries compare with the applied ones.
/// The interned next hops, shared by the mirror's view and a view being
/// built from a dump beside it (both on the event loop's thread): codes
/// mean the same in both, so the new view can replace the old one or be
/// compared with it as it is.
pub type SharedNh = Rc<RefCell<NhTable>>;

pub struct ViewBuilder {
    view: View,
    nh: SharedNh,
    /// The prefixes added, as they came: a resync's work list, gathered
    /// here so that it need not be collected from the view in one go.
    /// `None` when the view is to be passed by parts instead (see
    /// [`Mirror::view_builder`]).
    prefixes: Option<PrefixList>,
}

/// A dumped view and its prefixes (see [`ViewBuilder::finish_with_prefixes`]).
pub struct Dumped {
    pub view: View,
    pub prefixes: Option<PrefixList>,
}

impl ViewBuilder {
    pub fn add(&mut self, r: Route) {
        let p = r.key.prefix;
        if self.view.insert_dumped(r, &mut self.nh.borrow_mut()) {
            if let Some(list) = &mut self.prefixes {
                list.push(p);
            }
        }
    }

    /// Drops what was added so far (the dump starts over).
    pub fn restart(&mut self) {
        self.view = View::default();
        if let Some(list) = &mut self.prefixes {
            list.clear();
        }
    }

    pub fn finish(self) -> View {
        self.view
    }

    /// The view and its prefixes (none for a check), unsorted and with
    /// repeats (several routes per prefix): see [`sort_prefixes`].
    pub fn finish_with_prefixes(self) -> Dumped {
        Dumped {
            view: self.view,
            prefixes: self.prefixes,
        }
    }
}

/// What a job's dump is read into: a full view (the start, into an empty
/// mirror; and a job an overlay could not serve), or an overlay on the
/// live view (see [`overlay`]).
// One per job, moved a few times: the size of either variant is no matter.
#[allow(clippy::large_enum_variant)]
pub enum DumpBuilder {
    Full(ViewBuilder),
    Against(Box<OverlayBuilder>),
}

/// A job's dump, read (see [`DumpBuilder`]).
#[allow(clippy::large_enum_variant)]
pub enum KernelRoutes {
    Full(Dumped),
    Against(Box<Overlay>),
}

impl DumpBuilder {
    pub fn add(&mut self, r: Route, m: &Mirror) {
        match self {
            DumpBuilder::Full(b) => b.add(r),
            DumpBuilder::Against(b) => b.add(r, &m.view, &mut m.nh_table.borrow_mut()),
        }
    }

    /// Drops what was added so far (the dump starts over).
    pub fn restart(&mut self) {
        match self {
            DumpBuilder::Full(b) => b.restart(),
            DumpBuilder::Against(b) => b.restart(),
        }
    }

    /// What was read, once the dump's last route came; [`KernelRoutes::seal`]
    /// it before use.
    pub fn finish(self, m: &Mirror) -> KernelRoutes {
        match self {
            DumpBuilder::Full(b) => KernelRoutes::Full(b.finish_with_prefixes()),
            DumpBuilder::Against(b) => KernelRoutes::Against(Box::new(b.finish(&m.view))),
        }
    }
}

impl KernelRoutes {
    /// Sorts what must be sorted: tens of milliseconds at a full table,
    /// for a thread beside the event loop.
    pub fn seal(&mut self) {
        match self {
            KernelRoutes::Full(d) => d.prefixes = d.prefixes.take().map(sort_prefixes),
            KernelRoutes::Against(o) => o.seal(),
        }
    }
}

/// A sweep's work list: in address order (so that when a structure is too
/// small for the table, the same prefixes, the last ones, are left to
/// bpf_fib_lookup whatever the order of the dump), each prefix once. Takes
/// a while at full-table size: the event loop runs it on another thread.
pub fn sort_prefixes(mut prefixes: PrefixList) -> PrefixList {
    prefixes.sort();
    prefixes
}

/// The kernel as last seen, besides its routes (see [`View`]).
#[derive(Debug, Clone, Default)]
struct Kernel {
    links: HashMap<u32, Link>,
    addrs: BTreeSet<Addr>,
    neighbours: HashMap<(u32, IpAddr), [u8; 6]>,
    /// NUD state of every neighbour entry on accel's interfaces, usable or
    /// not (for [`Mirror::gateway_neighbours`]).
    neigh_states: HashMap<(u32, IpAddr), NeighbourState>,
    rules: Vec<Rule>,
    /// The rules changed and have not been read since: until they are,
    /// both families go to bpf_fib_lookup, which applies the rules as they
    /// are now (see [`Mirror::set_rules`]). A dump's rules do not clear
    /// it: one started before the change may have missed it.
    rules_pending: bool,
    /// Nexthop objects by id.
    objects: HashMap<u32, NexthopObject>,
    /// Deleted objects (see [`Mirror::delete_object`]) whose routes the
    /// kernel deleted without telling, if the mirror still holds any: not
    /// resolved, even if added again, until [`Mirror::settle_objects`].
    flushed: BTreeSet<u32>,
    /// Those of `flushed` when a resync installed its dump: resolved again
    /// once its sweep has removed the routes through them that the maps
    /// and the live view still had.
    flushed_before_dump: BTreeSet<u32>,
    multipath: ForwardingSysctls,
    /// Devices whose next hops the kernel passes over, and reports dead,
    /// once they lose carrier (ignore_routes_with_linkdown, as read by the
    /// daemon at their last link event: see
    /// [`Mirror::set_ignores_linkdown`]).
    ignores_linkdown: HashSet<u32>,
    /// IPsec (XFRM) policies apply to forwarded packets (see
    /// [`Mirror::set_xfrm`]).
    xfrm: bool,
    /// Netfilter chains on the forwarding path appeared while accel runs,
    /// and whether some are at the ingress hook (see
    /// [`Mirror::set_netfilter`]).
    netfilter: bool,
    netfilter_ingress: bool,
    // The kernel never clears these once set (fib_has_custom_local_routes,
    // fib_has_custom_rules), so neither does accel.
    custom_local_seen: bool,
    custom_rules_seen: bool,
}

/// What the maps hold, besides the routes.
#[derive(Debug, Clone, Default)]
struct Applied {
    neigh: HashMap<(u32, IpAddr), [u8; 6]>,
    ifaces: HashMap<u32, IfaceEntry>,
    local4: HashSet<Ipv4Addr>,
    config: Option<u32>,
    seed: Option<u32>,
    src_rules: BTreeSet<Prefix>,
    /// What each group id holds (its paths hold next-hop references).
    groups: HashMap<u32, (GroupKey, GroupContent)>,
    /// Interfaces that mirrored `ip rule iif` rules select, with the
    /// ACCEL_IF_RULES* flag of the rule's family.
    rule_iifs: Vec<(String, u32)>,
}

/// The ids of the maps' indexed entries, handed out and reclaimed.
#[derive(Clone)]
struct Ids {
    nexthops: NexthopIds,
    groups: SharedIds<GroupKey>,
    /// Drop-counter slots of blackhole prefixes.
    blackholes: SharedIds<Prefix>,
}

pub struct Mirror {
    ifaces: HashMap<u32, IfaceConf>,
    fib_only: bool,
    limits: Limits,
    /// The kernel's routes (at full-table size, most of the memory).
    view: View,
    kernel: Kernel,
    /// What the route maps hold.
    applied_routes: PrefixMap<AppliedCode>,
    applied: Applied,
    ids: Ids,
    /// Interned next hops of every stored entry (view and applied).
    nh_table: SharedNh,
    /// What had no room in the datapath (see [`capacity`]).
    shortfall: Shortfall,
}

/// The result of applying one event.
#[derive(Debug, Default)]
pub struct EventOutcome {
    pub changes: Vec<Change>,
    /// The kernel may have changed state without telling (IPv4 routes over
    /// a link that went down, or that lost its last IPv4 address, vanish
    /// silently): dump again.
    pub resync: bool,
    /// Rules changed: re-read them and call `set_rules`.
    pub reread_rules: bool,
    /// Netconf changed: the daemon re-reads the interface sysctls.
    pub reread_sysctls: bool,
    /// A nexthop object was deleted: call [`Mirror::settle_objects`] once
    /// every route event the kernel sent before is applied.
    pub settle_objects: bool,
}

impl EventOutcome {
    /// Empties it for the next event, keeping the allocation.
    pub fn clear(&mut self) {
        self.changes.clear();
        self.resync = false;
        self.reread_rules = false;
        self.reread_sysctls = false;
        self.settle_objects = false;
    }
}

impl Mirror {
    /// A mirror for maps sized by `limits`.
    pub fn new(ifaces: HashMap<u32, IfaceConf>, fib_only: bool, limits: &Limits) -> Self {
        Mirror {
            ifaces,
            fib_only,
            limits: *limits,
            view: View::default(),
            kernel: Kernel::default(),
            applied_routes: PrefixMap::default(),
            applied: Applied::default(),
            ids: Ids {
                nexthops: NexthopIds::new(limits.nexthops),
                groups: SharedIds::new(limits.nh_groups),
                blackholes: SharedIds::new(limits.blackholes),
            },
            nh_table: SharedNh::default(),
            shortfall: Shortfall::default(),
        }
    }

    /// Replaces the whole view with a fresh dump and returns the changes
    /// that make the maps equal to it (mark and sweep).
    pub fn resync(&mut self, mut snap: KernelState) -> Vec<Change> {
        let mut b = self.view_builder();
        for r in std::mem::take(&mut snap.routes) {
            b.add(r);
        }
        let view = b.finish();
        self.resync_view(view, snap)
    }

    /// What [`Mirror::resync`] would change, without changing anything.
    pub fn dry_run(&self, snap: KernelState) -> Vec<Change> {
        self.scratch().resync(snap)
    }

    /// [`Mirror::scratch`] without the routes the maps hold either: enough
    /// to find the other differences (see [`Mirror::non_route_differences`]).
    pub fn scratch_without_routes(&self) -> Mirror {
        self.copy(false)
    }

    /// A copy to try a resync on ([`Mirror::dry_run`]). The current view is
    /// left out: a resync replaces it, and at full-table size it is tens of
    /// megabytes.
    pub fn scratch(&self) -> Mirror {
        self.copy(true)
    }

    fn copy(&self, with_routes: bool) -> Mirror {
        Mirror {
            ifaces: self.ifaces.clone(),
            fib_only: self.fib_only,
            limits: self.limits,
            view: View::default(),
            kernel: self.kernel.clone(),
            applied_routes: if with_routes {
                self.applied_routes.clone()
            } else {
                PrefixMap::default()
            },
            applied: self.applied.clone(),
            ids: self.ids.clone(),
            // A copy of its own: the scratch mirror interns anew.
            nh_table: Rc::new(RefCell::new(self.nh_table.borrow().clone())),
            shortfall: self.shortfall.clone(),
        }
    }

    /// Forgets the routes of the current view ahead of a resync, so that the
    /// old and the new view (tens of MB each at full-table size) never
    /// coexist. The maps are untouched. Events must not be applied until
    /// [`Mirror::resync_view`] has installed a new view: a caller whose
    /// resync fails must stop using this mirror.
    pub fn drop_view(&mut self) {
        self.view = View::default();
    }

    /// Starts a fresh view for a resync ([`Mirror::install_sorted`]);
    /// feed it the routes of a dump as they arrive.
    ///
    /// Into empty maps (the start), every route is written: in address
    /// order, so that consecutive writes meet the same trie nodes in
    /// cache, and so that when a structure is too small for the table the
    /// same prefixes, the last ones, are left to bpf_fib_lookup whatever
    /// the order of the dump. The builder gathers the list to sort.
    ///
    /// Into filled maps, almost every prefix is found as it was and
    /// nothing is written; the order buys little, and the list (11 MiB at
    /// a full table) would come on top of the old view and the new one,
    /// the daemon's peak. The sweep passes the new view by parts instead.
    /// (A job into a filled mirror reads its dump into an [`Overlay`]
    /// rather than a second view; a full view is its fallback.)
    pub fn view_builder(&self) -> ViewBuilder {
        // Room for the routes and an eighth more: grown by doubling from
        // nothing, the list of a full table's 1.06M prefixes would take
        // 2M places.
        let (v4, v6) = self.view.main_len_by_family();
        let list = || PrefixList::with_capacity((v4 + v4 / 8, v6 + v6 / 8));
        ViewBuilder {
            view: View::default(),
            nh: self.nh_table.clone(),
            // (`--mode fib` writes no routes: by parts always.)
            prefixes: (self.applied_routes.is_empty() && !self.fib_only).then(list),
        }
    }

    /// What a resync's dump is read into: a full view when the live one
    /// is empty (the start: nothing to read it against) or `full` is
    /// asked for, an overlay on the live view otherwise.
    pub fn resync_builder(&self, full: bool) -> DumpBuilder {
        if full || self.view.route_count() == 0 {
            DumpBuilder::Full(self.view_builder())
        } else {
            DumpBuilder::Against(Box::default())
        }
    }

    /// What a check's dump is read into: an overlay on the live view,
    /// or a full view if `full`.
    pub fn check_dump_builder(&self, full: bool) -> DumpBuilder {
        if full {
            DumpBuilder::Full(self.check_builder())
        } else {
            DumpBuilder::Against(Box::default())
        }
    }

    /// [`Mirror::view_builder`] for a check, which needs no list of the
    /// prefixes (see [`Mirror::compare_step`]).
    pub fn check_builder(&self) -> ViewBuilder {
        ViewBuilder {
            view: View::default(),
            nh: self.nh_table.clone(),
            prefixes: None,
        }
    }

    /// [`Mirror::resync`] with the routes already in `view` (built by
    /// [`Mirror::view_builder`] of this mirror); `snap.routes` is ignored.
    pub fn resync_view(&mut self, view: View, snap: KernelState) -> Vec<Change> {
        let mut all = Vec::new();
        self.resync_view_chunked(view, snap, &mut |chunk: &mut Vec<Change>| {
            all.append(chunk);
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        all
    }

    /// [`Mirror::resync_view`] that hands the changes to `sink` in chunks,
    /// in order, as it computes them, so that a full-table resync never
    /// holds a million changes at once. The sink must empty the chunk. A
    /// sink error stops the resync (the maps then lag the mirror: the
    /// caller must give up on them).
    pub fn resync_view_chunked<E>(
        &mut self,
        view: View,
        snap: KernelState,
        sink: &mut dyn FnMut(&mut Vec<Change>) -> Result<(), E>,
    ) -> Result<(), E> {
        const CHUNK: usize = 4096;
        let mut out = Vec::with_capacity(CHUNK);
        let mut sweep = self.install(view, snap, &mut out);
        sink(&mut out)?;
        while !self.sweep_step(&mut sweep, CHUNK, &mut out) {
            sink(&mut out)?;
        }
        sink(&mut out)
    }

    pub fn apply(&mut self, event: Event) -> EventOutcome {
        let mut o = EventOutcome::default();
        self.apply_into(event, &mut o);
        o
    }

    /// [`Mirror::apply`] into `o`, which must start empty (see
    /// [`EventOutcome::clear`]): the event loop reuses one, so that a
    /// million route events do not allocate a million change lists.
    pub fn apply_into(&mut self, event: Event, o: &mut EventOutcome) {
        match event {
            Event::NewRoute(r) => {
                let (p, local) = (r.key.prefix, r.key.table == TABLE_LOCAL);
                if self.view.insert(r, &mut self.nh_table.borrow_mut()) {
                    self.kernel.custom_local_seen |= self.view.custom_local_seen;
                    self.refresh(p, local, &mut o.changes);
                }
            }
            Event::AddRoute(r, how) => {
                let (p, local) = (r.key.prefix, r.key.table == TABLE_LOCAL);
                if self
                    .view
                    .add_beside(r, how, &mut self.nh_table.borrow_mut())
                {
                    self.kernel.custom_local_seen |= self.view.custom_local_seen;
                    self.refresh(p, local, &mut o.changes);
                }
            }
            Event::DelRoute(r) => {
                let (p, local) = (r.key.prefix, r.key.table == TABLE_LOCAL);
                if self.view.remove(&r, &mut self.nh_table.borrow_mut()) {
                    self.refresh(p, local, &mut o.changes);
                }
                o.resync |= std::mem::take(&mut self.view.resync_wanted);
            }
            Event::NewLink(l) => {
                let old = self.kernel.links.insert(l.ifindex, l.clone());
                if let Some(old) = old {
                    self.link_changed(&old, &l, o);
                }
                self.sync_ifaces(&mut o.changes);
            }
            Event::DelLink(ifindex) => {
                self.kernel.links.remove(&ifindex);
                o.resync = true;
                self.sync_ifaces(&mut o.changes);
            }
            Event::NewAddr(a) => {
                // A new IPv4 address revives the dead next hops through its
                // device (fib_inetaddr_event -> fib_sync_up), silently; a
                // lifetime refreshed (DHCP) does not.
                let new = self.kernel.addrs.insert(a);
                o.resync |= new && a.addr.is_ipv4() && self.view.has_dead_paths();
                self.sync_local4(&mut o.changes);
                self.sync_ifaces(&mut o.changes);
            }
            Event::DelAddr(a) => {
                // A removal the mirror already lacks (replayed onto a dump
                // taken after it) flushed nothing it holds.
                let was_there = self.kernel.addrs.remove(&a);
                o.resync |= was_there && self.last_addr4_gone(&a);
                self.sync_local4(&mut o.changes);
                self.sync_ifaces(&mut o.changes);
            }
            Event::NewNeigh(n) => {
                let k = (n.ifindex, n.addr);
                if self.ifaces.contains_key(&n.ifindex) {
                    self.kernel.neigh_states.insert(k, n.state);
                }
                match n.usable_mac() {
                    Some(mac) => self.kernel.neighbours.insert(k, mac),
                    None => self.kernel.neighbours.remove(&k),
                };
                self.sync_neigh(k, &mut o.changes);
            }
            Event::DelNeigh(n) => {
                let k = (n.ifindex, n.addr);
                self.kernel.neigh_states.remove(&k);
                self.kernel.neighbours.remove(&k);
                self.sync_neigh(k, &mut o.changes);
            }
            Event::RulesChanged => {
                // The event does not say which rule, and reading them
                // takes the RTNL lock: the daemon reads them beside the
                // event loop. Meanwhile the datapath asks the kernel.
                self.kernel.rules_pending = true;
                self.sync_config(&mut o.changes);
                o.reread_rules = true;
            }
            Event::NetconfChanged => o.reread_sysctls = true,
            Event::NewNexthop(obj) => {
                let id = obj.id();
                self.kernel.objects.insert(id, obj);
                self.sync_object(id, &mut o.changes);
            }
            Event::DelNexthop(id) => {
                self.delete_object(id, &mut o.changes);
                o.settle_objects = true;
            }
            Event::Overrun => o.resync = true,
        }
    }

    /// What the kernel changed without telling when link `new` (was `old`)
    /// changed state:
    /// - down (NETDEV_DOWN): the next hops through it marked dead, the
    ///   routes left without one flushed (fib_sync_down_dev, fib_flush):
    ///   only a dump tells;
    /// - up (NETDEV_UP), or operationally up later (IPv6 waits for it:
    ///   addrconf_notify -> rt6_sync_up): the dead next hops through it
    ///   revived (fib_sync_up), which changes only routes the view holds
    ///   as dead-pathed (none, unless a device went down under a
    ///   multipath route); the routes of its addresses come with
    ///   notifications. A link created and brought up costs no dump;
    /// - carrier lost or back while up (NETDEV_CHANGE, on `dev_get_flags()
    ///   & (IFF_RUNNING | IFF_LOWER_UP)`): the RTNH_F_LINKDOWN flags of its
    ///   next hops, which matter only in multipath routes and under
    ///   ignore_routes_with_linkdown (see [`entries::path_key`]), and,
    ///   when carrier goes, the nexthop
    ///   objects through it (nh_netdev_event -> nexthop_flush_dev),
    ///   removed here as the kernel does. A flapping access port costs no
    ///   dump, and the lease holds through it.
    fn link_changed(&mut self, old: &Link, new: &Link, o: &mut EventOutcome) {
        if old.admin_up != new.admin_up {
            o.resync |= !new.admin_up || self.view.has_dead_paths();
            return;
        }
        if !new.admin_up {
            return;
        }
        // Linkwatch acts on a carrier change in one run (linkwatch_do_dev):
        // it sets the operstate (rfc2863_policy: down without carrier),
        // runs the notifiers (which flush and flag as for a loss when the
        // device is neither running nor has carrier), then builds the
        // message. Carrier back in between: the message says carrier, and
        // not running (the operstate set for the loss). A link the mirror
        // took for running (whatever its carrier) now so, and not dormant
        // (a state that needs carrier): linkwatch acted on a loss the
        // mirror did not act on. A loss no message showed (the count moved
        // by more), with a link not running now: the same, or a loss and
        // return before linkwatch ran (then the message says running, and
        // the kernel changed nothing).
        let seen = i32::from(old.carrier && !new.carrier);
        // Negative for an older message replayed onto a newer dump.
        let unseen = new.carrier_downs.wrapping_sub(old.carrier_downs) as i32 > seen;
        let acted = old.running && new.carrier && !new.running && !new.dormant;
        o.resync |= acted || unseen && !new.running;
        // IPv4 flags its next hops linkdown, and flushes the objects
        // through it, on `!(IFF_RUNNING | IFF_LOWER_UP)`; IPv6 flags them on
        // `!IFF_RUNNING` alone (addrconf_notify: !addrconf_link_ready, as
        // when the operstate goes dormant with carrier).
        let linked = |l: &Link| l.carrier || l.running;
        if old.carrier != new.carrier || old.running != new.running {
            o.resync |= self.kernel.ignores_linkdown.contains(&new.ifindex)
                || self
                    .view
                    .multipath_through(new.ifindex, &self.nh_table.borrow());
        }
        if linked(old) && !linked(new) {
            self.flush_objects_through(new.ifindex, o);
        }
        if new.running && !old.running || new.carrier && !old.carrier {
            o.resync |= self.view.has_dead_paths();
        }
    }

    /// Whether the kernel passes over the next hops through `ifindex` that
    /// lost carrier (ignore_routes_with_linkdown, taken by the daemon from
    /// each link event before it is applied, and read on netconf events
    /// for the links without carrier). True when that changed for a link
    /// without carrier: the kernel then reports its next hops dead, or no
    /// longer, without telling (a dump is due).
    pub fn set_ignores_linkdown(&mut self, ifindex: u32, ignores: bool) -> bool {
        let changed = if ignores {
            self.kernel.ignores_linkdown.insert(ifindex)
        } else {
            self.kernel.ignores_linkdown.remove(&ifindex)
        };
        changed && self.links_without_carrier().any(|(i, _)| i == ifindex)
    }

    /// The bridge, bond, team or Open vSwitch device `l` is a port of, as
    /// (ifindex, name): what arrives on a port is that device's (its
    /// rx_handler takes the frame in __netif_receive_skb_core(), and what
    /// is routed is routed as arriving on it, with its settings), never
    /// this interface's. A VRF's ports are not such: the kernel routes what
    /// arrives there itself, in the VRF's table (whose l3mdev rule sends
    /// that family to bpf_fib_lookup, see rules). A master not known yet
    /// counts: its link message comes, and the port's entry follows it.
    pub fn port_of(&self, l: &Link) -> Option<(u32, &str)> {
        let m = l.master?;
        match self.kernel.links.get(&m) {
            Some(ml) if ml.kind.as_deref() == Some("vrf") => None,
            Some(ml) => Some((m, ml.name.as_str())),
            None => Some((m, "")),
        }
    }

    /// The kernel's link `ifindex` as the mirror knows it.
    pub fn link(&self, ifindex: u32) -> Option<&Link> {
        self.kernel.links.get(&ifindex)
    }

    /// The links that are up without carrier, or not running (IPv6 takes
    /// those for linkdown too): (ifindex, name).
    pub fn links_without_carrier(&self) -> impl Iterator<Item = (u32, &str)> + '_ {
        self.kernel
            .links
            .values()
            .filter(|l| l.admin_up && !(l.carrier && l.running))
            .map(|l| (l.ifindex, l.name.as_str()))
    }

    /// nexthop_flush_dev() for a device that lost carrier: every object
    /// through it goes, blackholes (reject_nh, bound to lo) excepted. The
    /// kernel tells nothing: IPv4 routes through them vanish silently,
    /// IPv6 ones too unless nexthop_compat_mode is 1 (see
    /// [`Mirror::settle_objects`]).
    fn flush_objects_through(&mut self, ifindex: u32, o: &mut EventOutcome) {
        let through: Vec<u32> = self
            .kernel
            .objects
            .values()
            .filter_map(|obj| match obj {
                NexthopObject::Single {
                    id,
                    ifindex: Some(i),
                    blackhole: false,
                    ..
                } if *i == ifindex => Some(*id),
                _ => None,
            })
            .collect();
        for id in through {
            // A group emptied by an earlier one is gone already.
            if self.kernel.objects.contains_key(&id) {
                self.delete_object(id, &mut o.changes);
                o.settle_objects = true;
            }
        }
    }

    /// Whether removing `a` left its device without an IPv4 address. The
    /// kernel then disables IPv4 on it (fib_inetaddr_event ->
    /// fib_disable_ip): fib_sync_down_dev(force) marks every next hop
    /// through the device dead and fib_flush deletes the routes left
    /// without a live one, gateway routes and RFC 5549 ones alike, with no
    /// notification. Only a dump tells what remains.
    fn last_addr4_gone(&self, a: &Addr) -> bool {
        a.addr.is_ipv4()
            && !self
                .kernel
                .addrs
                .iter()
                .any(|x| x.ifindex == a.ifindex && x.addr.is_ipv4())
    }

    /// Touches what applying `events` will read first, for every route
    /// event among them, before they are applied one by one: the lookups
    /// of a batch overlap instead of each waiting for its own cache miss.
    pub fn warm<'a>(&self, events: impl Iterator<Item = &'a Event>) {
        for p in events.filter_map(Event::route_prefix) {
            self.view.warm(p);
            self.applied_routes.warm(p);
        }
    }

    /// New multipath hash settings (polled sysctls).
    pub fn set_forwarding_sysctls(&mut self, conf: ForwardingSysctls) -> Vec<Change> {
        self.kernel.multipath = conf;
        let mut out = Vec::new();
        self.sync_config(&mut out);
        out
    }

    /// Whether the kernel would apply IPsec (XFRM) policies to forwarded
    /// packets (read over NETLINK_XFRM): while it would, the datapath
    /// hands every packet it would forward to the kernel
    /// (ACCEL_CFG_XFRM).
    pub fn set_xfrm(&mut self, applies: bool) -> Vec<Change> {
        self.kernel.xfrm = applies;
        let mut out = Vec::new();
        self.sync_config(&mut out);
        out
    }

    /// Whether netfilter chains are on the forwarding path
    /// (ACCEL_CFG_NETFILTER: the datapath hands the kernel every packet
    /// past ip_rcv_core()'s checks), some at the ingress hook
    /// (ACCEL_CFG_NF_INGRESS: every frame).
    pub fn set_netfilter(&mut self, present: bool, ingress: bool) -> Vec<Change> {
        self.kernel.netfilter = present;
        self.kernel.netfilter_ingress = present && ingress;
        let mut out = Vec::new();
        self.sync_config(&mut out);
        out
    }

    /// The rules may have changed since they were read (a rule event
    /// came during a dump): until [`Mirror::set_rules`], as after the
    /// event itself.
    pub fn rules_unread(&mut self) {
        self.kernel.rules_pending = true;
    }

    /// The rules as read after the last [`Event::RulesChanged`].
    pub fn set_rules(&mut self, rules: Vec<Rule>) -> Vec<Change> {
        self.kernel.rules = rules;
        self.kernel.rules_pending = false;
        let mut out = Vec::new();
        self.sync_config(&mut out);
        out
    }

    /// New sysctl-derived settings for an interface (forwarding,
    /// rp_filter, IPv6 MTU).
    pub fn set_sysctls(&mut self, ifindex: u32, flags: u32, mtu6: u32) -> Vec<Change> {
        let mut out = Vec::new();
        if let Some(c) = self.ifaces.get_mut(&ifindex) {
            c.sysctl_flags = flags;
            c.mtu6 = mtu6;
            self.sync_ifaces(&mut out);
        }
        out
    }

    /// How accel's programs run on an interface (ACCEL_IF_TC,
    /// ACCEL_IF_TC_BESIDE), once they are attached.
    pub fn set_hook_flags(&mut self, ifindex: u32, flags: u32) -> Vec<Change> {
        let mut out = Vec::new();
        if let Some(c) = self.ifaces.get_mut(&ifindex) {
            c.hook_flags = flags;
            self.sync_ifaces(&mut out);
        }
        out
    }

    /// The tc configuration that acts on an interface's traffic
    /// (ACCEL_IF_INGRESS_TC, ACCEL_IF_EGRESS_TC).
    pub fn set_tc_flags(&mut self, ifindex: u32, flags: u32) -> Vec<Change> {
        let mut out = Vec::new();
        if let Some(c) = self.ifaces.get_mut(&ifindex) {
            c.tc_flags = flags;
            self.sync_ifaces(&mut out);
        }
        out
    }

    /// An interface's flags from [`Mirror::set_tc_flags`] (0 if not
    /// accel's).
    pub fn tc_flags(&self, ifindex: u32) -> u32 {
        self.ifaces.get(&ifindex).map_or(0, |c| c.tc_flags)
    }

    /// Changes that withdraw every entry (used on shutdown of a shared map
    /// set, and by tests).
    pub fn route_count(&self) -> usize {
        self.applied_routes.len()
    }

    /// bpf_fib_lookup decides every packet (`--mode fib`).
    pub fn fib_only(&self) -> bool {
        self.fib_only
    }

    /// Mirrored prefixes per family: (IPv4, IPv6).
    pub fn route_count_by_family(&self) -> (usize, usize) {
        self.applied_routes.len_by_family()
    }

    /// Mirrored neighbours per family: (IPv4, IPv6).
    pub fn neighbour_count_by_family(&self) -> (usize, usize) {
        let v4 = self
            .applied
            .neigh
            .keys()
            .filter(|(_, a)| a.is_ipv4())
            .count();
        (v4, self.applied.neigh.len() - v4)
    }

    /// Values the mirror's code table has interned since it was made
    /// (see [`NhTable`]: it never forgets one).
    pub fn interned(&self) -> usize {
        self.nh_table.borrow().interned()
    }

    /// A code table holding at most `room` values per list: tests of a
    /// full table. Before anything is encoded.
    #[cfg(test)]
    pub(super) fn limit_interning(&mut self, room: u32) {
        assert_eq!(self.interned(), 0, "nothing encoded yet");
        *self.nh_table.borrow_mut() = NhTable::with_room(room);
    }

    /// Values the code table had no room to intern (their routes go to
    /// bpf_fib_lookup).
    pub fn interned_refused(&self) -> u64 {
        self.nh_table.borrow().refused()
    }

    pub fn nexthop_count(&self) -> usize {
        self.ids.nexthops.len()
    }

    /// The ids of the next hops in use, ascending.
    pub fn nexthop_ids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.ids.nexthops.ids().collect();
        v.sort_unstable();
        v
    }

    /// Multipath and nexthop-object groups in use.
    pub fn group_count(&self) -> usize {
        self.ids.groups.len()
    }

    /// The kernel's neighbour entries for the gateways of the next hops
    /// the mirrored routes use, on accel's interfaces, with their NUD
    /// state. Gateways without an entry are left out: accel never asks the
    /// kernel to create one (the kernel does when it forwards the first
    /// packet that XDP passed to it).
    pub fn gateway_neighbours(&self) -> impl Iterator<Item = ((u32, IpAddr), NeighbourState)> + '_ {
        self.ids.nexthops.keys().filter_map(|k| {
            let key = (k.ifindex, k.gateway?);
            if !self.ifaces.contains_key(&k.ifindex) {
                return None;
            }
            self.kernel.neigh_states.get(&key).map(|s| (key, *s))
        })
    }

    pub fn neighbour_count(&self) -> usize {
        self.applied.neigh.len()
    }

    /// What the mirror holds for a prefix, for `accel lookup`.
    pub fn entry(&self, p: &Prefix) -> Option<RouteEntry> {
        self.applied_routes
            .get(p)
            .map(|a| self.nh_table.borrow().decode(a.code()))
    }

    pub fn config_flags(&self) -> u32 {
        self.applied.config.unwrap_or(0)
    }

    // ------------------------------------------------------------- diffing

    fn refresh(&mut self, p: Prefix, local_table: bool, out: &mut Vec<Change>) {
        if local_table {
            if p.family() == Family::V4 {
                self.sync_config(out);
            }
            let mut inside: Vec<Prefix> = self
                .view
                .main_inside(&p)
                .chain(self.view.local_prefixes())
                .chain(self.applied_routes.keys())
                .filter(|q| q.len() > p.len() && p.contains(q))
                .collect();
            inside.sort_unstable();
            inside.dedup();
            for q in inside {
                self.sync_prefix(q, out);
            }
        }
        self.sync_prefix(p, out);
    }

    fn sync_prefix(&mut self, p: Prefix, out: &mut Vec<Change>) {
        let want = if self.fib_only {
            None
        } else {
            self.view.effective(&p)
        };
        let have = self.applied_routes.get(&p).copied();
        if want == have.map(AppliedCode::code) {
            return;
        }
        self.shortfall.forget_route(&p);
        match want {
            None => {
                self.applied_routes.remove(&p);
                out.push(Change::DelRoute(p));
            }
            Some(code) => {
                let (entry, nh_id, id) = self.route_ids(p, code, out);
                self.applied_routes
                    .insert(p, AppliedCode::new(code, id != 0));
                out.push(Change::PutRoute {
                    prefix: p,
                    entry,
                    nh_id,
                });
            }
        }
        // Only now: the new entry may share what the old one held.
        if let Some(old) = have {
            self.release_route_ids(p, old, out);
        }
    }

    /// A reference on the group for `key`, written first if new; `None`
    /// when every group id is taken.
    fn acquire_group(&mut self, key: GroupKey, out: &mut Vec<Change>) -> Option<u32> {
        let (id, fresh) = self.ids.groups.acquire(key)?;
        if fresh {
            self.write_group(id, key, out);
        }
        Some(id)
    }

    fn release_group(&mut self, key: GroupKey) {
        if let Some(id) = self.ids.groups.release(&key) {
            self.shortfall.groups.remove(&id);
            if let Some((_, content)) = self.applied.groups.remove(&id) {
                for p in &content.paths {
                    self.ids.nexthops.release(&p.nh);
                }
            }
        }
    }

    fn group_content(&self, key: GroupKey) -> GroupContent {
        match key {
            GroupKey::Paths(set) => GroupContent {
                blackhole: false,
                paths: self.nh_table.borrow().paths(set).to_vec(),
            },
            GroupKey::Object(id) if self.is_flushed(id) => GroupContent::unknown(),
            GroupKey::Object(id) => groups::resolve_object(id, &self.kernel.objects),
        }
    }

    fn is_flushed(&self, id: u32) -> bool {
        self.kernel.flushed.contains(&id) || self.kernel.flushed_before_dump.contains(&id)
    }

    /// (Re)writes group `id` from what `key` resolves to now; without
    /// next-hop ids for its paths, as unresolved (bpf_fib_lookup decides)
    /// until [`Mirror::retry_capacity`] finds room.
    fn write_group(&mut self, id: u32, key: GroupKey, out: &mut Vec<Change>) {
        if !self.try_write_group(id, key, out) {
            self.shortfall.groups.insert(id);
            self.put_group(id, key, GroupContent::unknown(), Vec::new(), out);
        }
    }

    /// Writes group `id` from what `key` resolves to now if every path can
    /// have a next-hop id; changes nothing otherwise.
    fn try_write_group(&mut self, id: u32, key: GroupKey, out: &mut Vec<Change>) -> bool {
        let content = self.group_content(key);
        if !self.nexthops_fit(content.paths.iter().map(|p| &p.nh)) {
            return false;
        }
        let ids = content
            .paths
            .iter()
            .map(|p| self.acquire_nexthop(p.nh, out).expect("nexthops_fit"))
            .collect();
        self.shortfall.groups.remove(&id);
        self.put_group(id, key, content, ids, out);
        true
    }

    /// Writes group `id`, next hops first (`ids` holds references on
    /// them), and only then releases the next hops it used before.
    fn put_group(
        &mut self,
        id: u32,
        key: GroupKey,
        content: GroupContent,
        ids: Vec<u32>,
        out: &mut Vec<Change>,
    ) {
        let weights: Vec<u32> = content.paths.iter().map(|p| p.weight).collect();
        let bounds = groups::upper_bounds(&weights);
        out.push(Change::PutGroup {
            id,
            blackhole: content.blackhole,
            paths: ids.into_iter().zip(bounds).collect(),
        });
        if let Some((_, old)) = self.applied.groups.insert(id, (key, content)) {
            for p in &old.paths {
                self.ids.nexthops.release(&p.nh);
            }
        }
    }

    /// Rewrites the applied groups `which` selects whose content changed.
    fn sync_groups(&mut self, which: impl Fn(&GroupKey) -> bool, out: &mut Vec<Change>) {
        let mut stale: Vec<(u32, GroupKey)> = self
            .applied
            .groups
            .iter()
            // Groups short of next-hop ids wait for retry_capacity().
            .filter(|(id, (key, content))| {
                which(key)
                    && !self.shortfall.groups.contains(id)
                    && self.group_content(*key) != *content
            })
            .map(|(id, (key, _))| (*id, *key))
            .collect();
        stale.sort_unstable_by_key(|(id, _)| *id);
        for (id, key) in stale {
            self.write_group(id, key, out);
        }
    }

    /// After nexthop object `changed` came, went or was replaced.
    fn sync_object(&mut self, changed: u32, out: &mut Vec<Change>) {
        let objects = std::mem::take(&mut self.kernel.objects);
        let affected: HashSet<u32> = self
            .applied
            .groups
            .values()
            .filter_map(|(key, _)| match key {
                GroupKey::Object(id) if groups::depends_on(*id, changed, &objects) => Some(*id),
                _ => None,
            })
            .collect();
        self.kernel.objects = objects;
        self.sync_groups(
            |k| matches!(k, GroupKey::Object(id) if affected.contains(id)),
            out,
        );
    }

    /// `ip nexthop del`: the object goes, with the groups it leaves empty
    /// (see [`groups::remove_object`]). The kernel deletes every route
    /// through them with them (__remove_nexthop_fib: fib_flush for IPv4,
    /// ip6_del_rt announcing nothing when nexthop_compat_mode is 0). Which
    /// of the mirror's routes through them are those, it cannot tell yet:
    /// route events the kernel sent before the deletion may still be on
    /// their way (another socket). So the ids are flushed: their routes go
    /// to bpf_fib_lookup, even if they come back, until
    /// [`Mirror::settle_objects`].
    fn delete_object(&mut self, id: u32, out: &mut Vec<Change>) {
        let affected: HashSet<u32> = self
            .applied
            .groups
            .values()
            .filter_map(|(key, _)| match key {
                GroupKey::Object(g) if groups::depends_on(*g, id, &self.kernel.objects) => Some(*g),
                _ => None,
            })
            .collect();
        let gone = groups::remove_object(id, &mut self.kernel.objects);
        self.kernel.flushed.extend(gone);
        self.sync_groups(
            |k| matches!(k, GroupKey::Object(g) if affected.contains(g)),
            out,
        );
    }

    /// Once every route event the kernel sent before the deletions since
    /// the last call is applied: a flushed object no mirrored route uses
    /// any more is resolved again (it may have come back); one still used
    /// asks for a resync, the routes through it being gone from the
    /// kernel (or, through an object added again, new: only a dump tells).
    /// Deleting unused objects (FRR does routinely) costs no dump.
    pub fn settle_objects(&mut self) -> EventOutcome {
        let mut o = EventOutcome::default();
        let flushed = std::mem::take(&mut self.kernel.flushed);
        let (used, unused): (BTreeSet<u32>, BTreeSet<u32>) =
            flushed.into_iter().partition(|id| self.object_routed(*id));
        o.resync = !used.is_empty();
        self.kernel.flushed = used;
        self.resolve_again(&unused, &mut o.changes);
        o
    }

    /// Whether a route of the view goes through object `id`.
    fn object_routed(&self, id: u32) -> bool {
        let code = self.nh_table.borrow().object_code(id);
        code.is_some_and(|c| self.view.uses_object(c))
    }

    /// Rewrites the applied groups of objects no longer flushed.
    fn resolve_again(&mut self, ids: &BTreeSet<u32>, out: &mut Vec<Change>) {
        if !ids.is_empty() {
            self.sync_groups(|k| matches!(k, GroupKey::Object(g) if ids.contains(g)), out);
        }
    }

    fn sync_neigh(&mut self, k: (u32, IpAddr), out: &mut Vec<Change>) {
        let want = if self.ifaces.contains_key(&k.0) {
            self.kernel.neighbours.get(&k).copied()
        } else {
            None
        };
        match want {
            Some(mac) if self.applied.neigh.get(&k) != Some(&mac) => self.put_neigh(k, mac, out),
            Some(_) => {}
            None => self.del_neigh(k, out),
        }
    }

    fn sync_ifaces(&mut self, out: &mut Vec<Change>) {
        let mut ids: Vec<u32> = self.ifaces.keys().copied().collect();
        ids.sort_unstable();
        for ifindex in ids {
            let conf = self.ifaces[&ifindex];
            // A port is no routed interface: nothing arriving there is
            // forwarded, nothing is sent out through it (the kernel does
            // either, if it does).
            let link = self.kernel.links.get(&ifindex);
            let want = link.filter(|l| self.port_of(l).is_none()).and_then(|l| {
                let mut flags = conf.sysctl_flags | conf.hook_flags | conf.tc_flags;
                // Carrier, and operationally up: IPv6 takes a dormant
                // device's next hops for linkdown (addrconf_link_ready).
                if l.admin_up && l.carrier && l.running {
                    flags |= IfFlags::ACCEL_IF_UP.0;
                }
                let addr4 = |a: &Addr| a.ifindex == ifindex && a.addr.is_ipv4();
                if !self.kernel.addrs.iter().any(addr4) {
                    flags |= IfFlags::ACCEL_IF_NO_ADDR4.0;
                }
                for (name, flag) in &self.applied.rule_iifs {
                    if *name == l.name {
                        flags |= flag;
                    }
                }
                Some(IfaceEntry {
                    mac: l.mac?,
                    slot: conf.slot,
                    mtu: l.mtu,
                    flags,
                    // The kernel keeps mtu6 <= the device MTU; the sysctl is
                    // polled, the link MTU arrives by event, so take the
                    // smaller one in between.
                    mtu6: conf.mtu6.min(l.mtu),
                })
            });
            let have = self.applied.ifaces.get(&ifindex).copied();
            if want == have {
                continue;
            }
            match want {
                Some(entry) => {
                    self.applied.ifaces.insert(ifindex, entry);
                    out.push(Change::PutIface { ifindex, entry });
                }
                None => {
                    self.applied.ifaces.remove(&ifindex);
                    out.push(Change::DelIface(ifindex));
                }
            }
        }
    }

    fn sync_config(&mut self, out: &mut Vec<Change>) {
        let mp = self.kernel.multipath;
        if self.applied.seed != Some(mp.seed) {
            self.applied.seed = Some(mp.seed);
            out.push(Change::MpSeed(mp.seed));
        }
        self.kernel.custom_rules_seen |= self
            .kernel
            .rules
            .iter()
            .any(|r| r.family == Family::V4 && !r.is_default());
        let (mut flags, src_rules, rule_iifs) = self.rule_config();
        if self.kernel.custom_rules_seen || self.kernel.custom_local_seen {
            flags |= CfgFlags::ACCEL_CFG_SRC_FULL4.0;
        }
        if self.shortfall.local4_partial() {
            flags |= CfgFlags::ACCEL_CFG_LOCAL4_PARTIAL.0;
        }
        if self.fib_only {
            flags |= CfgFlags::ACCEL_CFG_FIB_ONLY.0;
        }
        flags |= multipath_flags(mp);
        if mp.update_priority4 {
            flags |= CfgFlags::ACCEL_CFG_UPDATE_PRIO4.0;
        }
        if self.kernel.xfrm {
            flags |= CfgFlags::ACCEL_CFG_XFRM.0;
        }
        if self.kernel.netfilter {
            flags |= CfgFlags::ACCEL_CFG_NETFILTER.0;
        }
        if self.kernel.netfilter_ingress {
            flags |= CfgFlags::ACCEL_CFG_NF_INGRESS.0;
        }
        // Interfaces a rule selects are flagged before a config without
        // the family's policy flag lets the datapath trust the mirror for
        // their packets, and unflagged only after.
        let iifs_changed = rule_iifs != self.applied.rule_iifs;
        if iifs_changed {
            let added: Vec<_> = rule_iifs
                .iter()
                .filter(|i| !self.applied.rule_iifs.contains(i))
                .cloned()
                .collect();
            self.applied.rule_iifs.extend(added);
            self.sync_ifaces(out);
        }
        // Prefixes are in the map before a flag makes the datapath look,
        // and leave it only after.
        let new: Vec<Prefix> = src_rules
            .difference(&self.applied.src_rules)
            .copied()
            .collect();
        let gone: Vec<Prefix> = self
            .applied
            .src_rules
            .difference(&src_rules)
            .copied()
            .collect();
        out.extend(new.into_iter().map(Change::PutSrcRule));
        if self.applied.config != Some(flags) {
            self.applied.config = Some(flags);
            out.push(Change::Config(flags));
        }
        out.extend(gone.into_iter().map(Change::DelSrcRule));
        self.applied.src_rules = src_rules;
        if iifs_changed {
            self.applied.rule_iifs = rule_iifs;
            self.sync_ifaces(out);
        }
    }

    /// The config flags, source prefixes and `iif` interfaces the kernel's
    /// rules call for, per family: mirrored rules (sources checked by
    /// bpf_fib_lookup, rule interfaces flagged), or the whole family to
    /// bpf_fib_lookup when the rules cannot be mirrored or hold more
    /// sources than the datapath does.
    fn rule_config(&mut self) -> (u32, BTreeSet<Prefix>, Vec<(String, u32)>) {
        let mut flags = 0;
        let mut src_rules = BTreeSet::new();
        let mut rule_iifs = Vec::new();
        for (f, policy, srcs, iif) in [
            (
                Family::V4,
                CfgFlags::ACCEL_CFG_POLICY4,
                CfgFlags::ACCEL_CFG_SRC_RULES4,
                IfFlags::ACCEL_IF_RULES4,
            ),
            (
                Family::V6,
                CfgFlags::ACCEL_CFG_POLICY6,
                CfgFlags::ACCEL_CFG_SRC_RULES6,
                IfFlags::ACCEL_IF_RULES6,
            ),
        ] {
            self.shortfall.src_rules[f as usize] = 0;
            if self.kernel.rules_pending {
                flags |= policy.0;
                continue;
            }
            match rules::mirrorable(&self.kernel.rules, f) {
                None => flags |= policy.0,
                Some(m) if m.sources.len() > self.limits.src_rules as usize => {
                    self.shortfall.src_rules[f as usize] = m.sources.len();
                    flags |= policy.0;
                }
                Some(m) => {
                    if !m.sources.is_empty() {
                        flags |= srcs.0;
                        src_rules.extend(m.sources);
                    }
                    rule_iifs.extend(m.iifs.into_iter().map(|name| (name, iif.0)));
                }
            }
        }
        if self.kernel.rules_pending {
            // Policy flags send everything to bpf_fib_lookup meanwhile; the
            // interfaces stay flagged for when they are lifted.
            rule_iifs = self.applied.rule_iifs.clone();
        }
        (flags, src_rules, rule_iifs)
    }
}

/// The group an entry points to.
/// The multipath hash flags: policies 0 (L3) and 1 (L4) are reproduced;
/// 2 (inner headers) and 3 (custom fields), and an unknown seed, are left
/// to bpf_fib_lookup, but for tunnelled packets under 2 and 3, whose inner
/// headers only the kernel's own path (with the skb) hashes.
fn multipath_flags(mp: ForwardingSysctls) -> u32 {
    let mut flags = 0;
    for (policy, inner) in [
        (mp.policy4, CfgFlags::ACCEL_CFG_MP_INNER4),
        (mp.policy6, CfgFlags::ACCEL_CFG_MP_INNER6),
    ] {
        if policy >= 2 {
            flags |= inner.0;
        }
    }
    if mp.policy6 == 1 {
        flags |= CfgFlags::ACCEL_CFG_MP_EXT6.0;
    }
    if mp.seed == 0 {
        return flags;
    }
    for (policy, hash, l4) in [
        (
            mp.policy4,
            CfgFlags::ACCEL_CFG_MP_HASH4,
            CfgFlags::ACCEL_CFG_MP_L4_4,
        ),
        (
            mp.policy6,
            CfgFlags::ACCEL_CFG_MP_HASH6,
            CfgFlags::ACCEL_CFG_MP_L4_6,
        ),
    ] {
        match policy {
            0 => flags |= hash.0,
            1 => flags |= hash.0 | l4.0,
            _ => {}
        }
    }
    flags
}

fn group_key(e: RouteEntry) -> GroupKey {
    match e {
        RouteEntry::Multipath(set) => GroupKey::Paths(set),
        RouteEntry::Object(id) => GroupKey::Object(id),
        other => unreachable!("{other:?} has no group"),
    }
}

#[cfg(test)]
mod tests;
