//! A resync or a check in steps, so that the event loop can apply route
//! changes between them: a full table is swept a few thousand prefixes at
//! a time, never in one go.
//!
//! Every step decides prefixes anew from the view as it is at that moment
//! ([`Mirror::sync_prefix`] is idempotent), so events applied between
//! steps are never undone: a prefix an event changed is either swept
//! before (and then changed again by the event) or after (and swept to
//! the event's state).

use std::collections::HashSet;
use std::net::IpAddr;

use super::overlay::Overlay;
use super::prefixmap::{PrefixList, PrefixMap, PARTS};
use super::{Change, ChangeSummary, Dumped, Mirror, View};
use crate::model::KernelState;
use crate::model::{Event, Prefix, TABLE_MAIN};

/// Where a sweep is.
enum Stage {
    /// The prefixes of the new view.
    View,
    /// The prefixes the maps hold, a part of the map at a time (see
    /// [`Mirror::next_applied_part`]): those the new view lacks are
    /// removed.
    Applied,
    Neighbours,
    Done,
}

/// A resync in progress: see [`Mirror::install`].
pub struct Sweep {
    stage: Stage,
    /// The view is passed a part at a time rather than by a sorted list.
    by_parts: bool,
    keys: PrefixList,
    next: usize,
    part: usize,
    /// After [`Mirror::install_overlay`]: which main-table prefixes of the
    /// live view the kernel still has.
    kept: Option<Box<Kept>>,
}

/// The live view's main-table prefixes that stay through an overlay's
/// sweep: those the dump had and those the overlay or events since set.
/// The others the kernel does not have: the sweep removes them.
struct Kept {
    seen: PrefixList,
    set: PrefixMap<()>,
}

impl Kept {
    fn keeps(&self, p: &Prefix) -> bool {
        self.set.get(p).is_some() || self.seen.contains(p)
    }
}

impl Sweep {
    /// A sweep with nothing left to do.
    pub fn finished() -> Sweep {
        Sweep {
            stage: Stage::Done,
            by_parts: false,
            keys: PrefixList::default(),
            next: 0,
            part: 0,
            kept: None,
        }
    }

    pub fn done(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }
}

impl Mirror {
    /// Installs a dumped view and the rest of the kernel's state, writes
    /// what does not depend on routes (interfaces, config, local
    /// addresses, groups) into `out`, and returns the sweep that brings
    /// the routes and neighbours into line, step by step.
    pub fn install(&mut self, view: View, snap: KernelState, out: &mut Vec<Change>) -> Sweep {
        let prefixes = Some(self.view_prefixes(&view));
        self.install_sorted(Dumped { view, prefixes }, snap, out)
    }

    /// [`Mirror::install`] with the view's prefixes already sorted (see
    /// [`super::sort_prefixes`]), so that nothing here takes long; without
    /// them, the sweep passes the view by parts (see
    /// [`Mirror::view_builder`]).
    pub fn install_sorted(
        &mut self,
        dumped: Dumped,
        snap: KernelState,
        out: &mut Vec<Change>,
    ) -> Sweep {
        let Dumped { view, prefixes } = dumped;
        self.view = view;
        self.install_state(snap, out);
        Sweep {
            stage: Stage::View,
            by_parts: prefixes.is_none(),
            keys: prefixes.unwrap_or_default(),
            next: 0,
            part: 0,
            kept: None,
        }
    }

    /// Takes the rest of a dump's state once its routes are in the view,
    /// and writes what does not depend on routes into `out`.
    fn install_state(&mut self, snap: KernelState, out: &mut Vec<Change>) {
        self.kernel.custom_local_seen |= self.view.custom_local_seen;
        // The dump settles the objects deleted before it (those deleted
        // during it are flushed again as the log is replayed), but the
        // routes through them leave the maps only as the sweep passes.
        let flushed = std::mem::take(&mut self.kernel.flushed);
        self.kernel.flushed_before_dump.extend(flushed);
        self.set_state(snap);
        self.sync_ifaces(out);
        self.sync_config(out);
        self.sync_local4(out);
        self.sync_groups(|_| true, out);
    }

    /// [`Mirror::install_sorted`] for a dump read against the live view
    /// (sealed, not split, with the prefixes of the events logged during
    /// the dump claimed: see [`Overlay::claim`]). The routes the overlay
    /// holds replace the live view's, its local table replaces the live
    /// one; the sweep removes the main-table prefixes the dump lacked as
    /// it passes them. Replay the logged events afterwards.
    pub fn install_overlay(
        &mut self,
        overlay: Overlay,
        snap: KernelState,
        out: &mut Vec<Change>,
    ) -> Sweep {
        let (mut dumped, mut set, seen) = overlay.into_parts();
        // Held without routes: the kernel has none.
        for p in set.keys() {
            self.view.take_main(&p);
        }
        let mut held = PrefixList::default();
        dumped.main_prefixes().for_each(|p| held.push(p));
        for i in 0..held.len() {
            let p = held.get(i);
            self.view.put_main(p, dumped.take_main(&p));
            set.insert(p, ());
        }
        self.view.take_local(&mut dumped);
        self.install_state(snap, out);
        Sweep {
            stage: Stage::View,
            by_parts: true,
            keys: PrefixList::default(),
            next: 0,
            part: 0,
            kept: Some(Box::new(Kept { seen, set })),
        }
    }

    /// An event about to be applied during sweep `s`: a main-table prefix
    /// it sets stays, whether or not the dump had it. One the dump lacked
    /// starts from no route (as [`Overlay::claim`] decides): what the live
    /// view has of it is stale, and would stay beside the event's route.
    pub fn note_swept(&mut self, s: &mut Sweep, ev: &Event) {
        if let (Some(kept), Some(r)) = (&mut s.kept, ev.route()) {
            let p = r.key.prefix;
            if r.key.table == TABLE_MAIN && !kept.keeps(&p) {
                kept.set.insert(p, ());
                // The maps follow when the event's refresh or the
                // sweep's pass over the maps reaches `p`.
                self.view.take_main(&p);
            }
        }
    }

    /// Takes the non-route state of a dump.
    pub(super) fn set_state(&mut self, snap: KernelState) {
        self.kernel.links = snap.links.into_iter().map(|l| (l.ifindex, l)).collect();
        self.kernel.addrs = snap.addrs.into_iter().collect();
        self.kernel.neighbours = snap
            .neighbours
            .iter()
            .filter_map(|n| n.usable_mac().map(|m| ((n.ifindex, n.addr), m)))
            .collect();
        self.kernel.neigh_states = snap
            .neighbours
            .iter()
            .filter(|n| self.ifaces.contains_key(&n.ifindex))
            .map(|n| ((n.ifindex, n.addr), n.state))
            .collect();
        self.kernel.rules = snap.rules;
        self.kernel.objects = snap.nexthops.into_iter().map(|o| (o.id(), o)).collect();
    }

    /// The prefixes of `view`, sorted (see [`super::sort_prefixes`]).
    fn view_prefixes(&self, view: &View) -> PrefixList {
        let mut list = PrefixList::default();
        view.main_prefixes()
            .chain(view.local_prefixes())
            .for_each(|p| list.push(p));
        super::sort_prefixes(list)
    }

    /// Sweeps up to `budget` prefixes into `out`; true once done. A next
    /// hop and the route that needs it stay in one step.
    pub fn sweep_step(&mut self, s: &mut Sweep, budget: usize, out: &mut Vec<Change>) -> bool {
        match s.stage {
            Stage::View | Stage::Applied => {
                let end = (s.next + budget).min(s.keys.len());
                for i in s.next..end {
                    let p = s.keys.get(i);
                    if let Some(kept) = &s.kept {
                        // The dump lacked it and no event set it since.
                        if !kept.keeps(&p) && self.view.has_main(&p) {
                            self.view.take_main(&p);
                        }
                    }
                    self.sync_prefix(p, out);
                }
                s.next = end;
                if s.next == s.keys.len() {
                    s.next = 0;
                    if matches!(s.stage, Stage::View) {
                        // A prefix an event added to a part already
                        // passed was synced by the event.
                        if s.by_parts && self.view.next_part(&mut s.part, &mut s.keys) {
                            return false;
                        }
                        s.stage = Stage::Applied;
                        s.part = 0;
                        // The view's list (11 MiB at full table) goes
                        // before the maps' is read.
                        s.keys = PrefixList::default();
                    }
                    if !self.next_applied_part(&mut s.part, &mut s.keys) {
                        s.stage = Stage::Neighbours;
                        s.keys = PrefixList::default();
                    }
                }
            }
            Stage::Neighbours => {
                let keys: HashSet<(u32, IpAddr)> = self
                    .kernel
                    .neighbours
                    .keys()
                    .chain(self.applied.neigh.keys())
                    .chain(self.shortfall.waiting_neighbours())
                    .copied()
                    .collect();
                for k in keys {
                    self.sync_neigh(k, out);
                }
                let settled = std::mem::take(&mut self.kernel.flushed_before_dump);
                self.resolve_again(&settled, out);
                s.stage = Stage::Done;
            }
            Stage::Done => {}
        }
        s.done()
    }

    /// Fills `keys` with the prefixes of the maps' next part (after
    /// `part`) that has any; false when none is left. A pass over the
    /// maps' million prefixes holds a few thousand at a time.
    fn next_applied_part(&self, part: &mut usize, keys: &mut PrefixList) -> bool {
        keys.clear();
        while keys.is_empty() && *part < PARTS {
            self.applied_routes.part_keys(*part, keys);
            *part += 1;
        }
        !keys.is_empty()
    }
}

/// A check in progress: what a resync to `view` would change, routes
/// compared step by step (see [`Mirror::compare_step`]).
pub struct Comparison {
    /// The prefixes of the part being compared: the view's parts, then
    /// the maps', then those events touched.
    keys: PrefixList,
    next: usize,
    pass: Pass,
    part: usize,
    /// The prefixes of the route events replayed during the comparison
    /// (see [`Mirror::replay_compared`]): compared once more at the end.
    touched: PrefixList,
    /// The prefixes counted as different, so that none counts twice (one
    /// in the main and the local table is in two parts; a touched one is
    /// compared again). As many as the differences: few.
    counted: PrefixMap<()>,
    pub summary: ChangeSummary,
    /// The first few differences, described.
    pub examples: Vec<String>,
    max_examples: usize,
}

/// The kernel's routes a check compares with the maps.
pub enum Checked {
    /// A view of the whole dump.
    Full(Box<View>),
    /// The dump read against the live view.
    Against(Box<Overlay>),
}

/// Where a comparison is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The view's parts: every prefix the kernel has (the dumped view's,
    /// or the live view's against an overlay).
    View,
    /// The prefixes an overlay has (some the live view lacks).
    Held,
    /// The maps' parts: those the view lacks.
    Applied,
    /// The prefixes events touched meanwhile: one may have moved from a
    /// part not yet passed to one passed already (a route of another
    /// table, or one the view lacked when its part was passed).
    Touched,
}

impl Mirror {
    /// Starts comparing the routes of `view` (a dump, with the events
    /// since applied to it) with the maps; `non_routes` are the other
    /// differences, found on a copy of the mirror without its routes.
    pub fn compare_start(&self, non_routes: &[Change], max_examples: usize) -> Comparison {
        let mut c = Comparison {
            keys: PrefixList::default(),
            next: 0,
            pass: Pass::View,
            part: 0,
            touched: PrefixList::default(),
            counted: PrefixMap::default(),
            summary: ChangeSummary::of(non_routes),
            examples: Vec::new(),
            max_examples,
        };
        for ch in non_routes.iter().take(max_examples) {
            c.examples.push(format!("{ch:?}"));
        }
        c
    }

    /// Compares up to `budget` prefixes; true once done. The view is
    /// passed a part at a time (in no order: a check changes nothing, and
    /// needs no sorted list of a million prefixes), then the maps are,
    /// then the prefixes events touched meanwhile.
    pub fn compare_step(&self, k: &Checked, c: &mut Comparison, budget: usize) -> bool {
        let mut left = budget.max(1);
        while left > 0 {
            if c.next == c.keys.len() && !self.next_compared(k, c) {
                return true;
            }
            let end = (c.next + left).min(c.keys.len());
            for i in c.next..end {
                let p = c.keys.get(i);
                // In the view's pass every prefix counts; in the maps'
                // pass only those the view lacks (the others were compared).
                if c.pass == Pass::Applied && self.dumped_has(k, &p) {
                    continue;
                }
                self.compare_prefix(k, p, c);
            }
            left -= end - c.next;
            c.next = end;
        }
        false
    }

    /// Whether the views passed before the maps have `p`.
    fn dumped_has(&self, k: &Checked, p: &Prefix) -> bool {
        match k {
            Checked::Full(view) => view.has(p),
            Checked::Against(o) => self.view.has(p) || o.has(p),
        }
    }

    /// Loads the next prefixes to compare into `c.keys`; false when none
    /// is left.
    fn next_compared(&self, k: &Checked, c: &mut Comparison) -> bool {
        c.next = 0;
        if c.pass == Pass::View {
            let view = match k {
                Checked::Full(view) => view,
                Checked::Against(_) => &self.view,
            };
            if view.next_part(&mut c.part, &mut c.keys) {
                return true;
            }
            (c.pass, c.part) = (Pass::Held, 0);
            if let Checked::Against(o) = k {
                c.keys = o.prefixes();
                if !c.keys.is_empty() {
                    return true;
                }
            }
        }
        if c.pass == Pass::Held {
            c.pass = Pass::Applied;
        }
        if c.pass == Pass::Applied {
            if self.next_applied_part(&mut c.part, &mut c.keys) {
                return true;
            }
            c.pass = Pass::Touched;
            c.touched.sort();
            c.keys = std::mem::take(&mut c.touched);
            return !c.keys.is_empty();
        }
        false
    }

    /// [`Mirror::replay`] onto the view a check is comparing, noting the
    /// event's prefix for the comparison's last pass.
    pub fn replay_compared(&self, k: &mut Checked, c: &mut Comparison, ev: &Event) {
        self.replay_checked(k, ev);
        if let Some(p) = ev.route_prefix() {
            match c.pass {
                Pass::Touched => c.keys.push(*p),
                _ => c.touched.push(*p),
            }
        }
    }

    fn compare_prefix(&self, k: &Checked, p: Prefix, c: &mut Comparison) {
        let want = match k {
            _ if self.fib_only => None,
            Checked::Full(view) => view.effective(&p),
            Checked::Against(o) => o.effective(&self.view, &p),
        };
        let have = self.applied_routes.get(&p).map(|h| h.code());
        if want == have || c.counted.insert(p, ()).is_some() {
            return;
        }
        let nh = self.nh_table.borrow();
        match want {
            Some(_) => c.summary.routes_put += 1,
            None => c.summary.routes_deleted += 1,
        }
        if c.examples.len() < c.max_examples {
            c.examples.push(match (have, want) {
                (Some(h), Some(w)) => format!(
                    "route {p}: mirror has {:?}, kernel says {:?}",
                    nh.decode(h),
                    nh.decode(w)
                ),
                (None, Some(w)) => {
                    format!(
                        "route {p}: missing from the mirror, kernel says {:?}",
                        nh.decode(w)
                    )
                }
                (Some(h), None) => format!(
                    "route {p}: mirror has {:?}, the kernel has no such route",
                    nh.decode(h)
                ),
                (None, None) => unreachable!("equal"),
            });
        }
    }

    /// [`Mirror::replay`] onto what a check compares.
    pub fn replay_checked(&self, k: &mut Checked, ev: &Event) {
        match k {
            Checked::Full(view) => self.replay(view, ev),
            Checked::Against(o) => o.replay(ev, &mut self.nh_table.borrow_mut()),
        }
    }

    /// Brings a view built from a dump up to date with a route event that
    /// came during the dump (other events are ignored here).
    pub fn replay(&self, view: &mut View, ev: &Event) {
        let nh = &mut self.nh_table.borrow_mut();
        match ev {
            Event::NewRoute(r) => {
                view.insert(r.clone(), nh);
            }
            Event::AddRoute(r, how) => {
                view.add_beside(r.clone(), *how, nh);
            }
            Event::DelRoute(r) => {
                view.remove(r, nh);
            }
            _ => {}
        }
    }

    /// What a resync to `snap` would change besides routes: on a copy of
    /// the mirror without its routes (at full-table size those are most of
    /// its memory).
    pub fn non_route_differences(&self, snap: KernelState, since: &[Event]) -> Vec<Change> {
        let mut scratch = self.scratch_without_routes();
        scratch.set_state(snap);
        // What changed after the dump was applied to this mirror already.
        let mut ignored = super::EventOutcome::default();
        let rules_event = |e: &&Event| matches!(e, Event::RulesChanged);
        for ev in since.iter().filter(|e| !e.is_route() && !rules_event(e)) {
            ignored.clear();
            scratch.apply_into(ev.clone(), &mut ignored);
        }
        // A rule event since the dump, or one before it whose rules are
        // still being read: this mirror reads the rules after the event
        // (see Mirror::set_rules); it has them or is still reading them,
        // and the dump's say nothing about which.
        if self.kernel.rules_pending || since.iter().any(|e| rules_event(&e)) {
            scratch.kernel.rules_pending = self.kernel.rules_pending;
            scratch.kernel.rules = self.kernel.rules.clone();
        }
        let mut out = Vec::new();
        scratch.sync_ifaces(&mut out);
        scratch.sync_config(&mut out);
        scratch.sync_local4(&mut out);
        scratch.sync_groups(|_| true, &mut out);
        let mut s = Sweep {
            stage: Stage::Neighbours,
            ..Sweep::finished()
        };
        scratch.sweep_step(&mut s, 0, &mut out);
        out
    }
}
