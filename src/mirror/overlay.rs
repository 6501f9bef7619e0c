//! A dump read against the live view, for a resync or a check into filled
//! maps: only where the kernel differs from the mirror is kept, so that a
//! second full view (30 MiB at a full table) never sits beside the live
//! one.
//!
//! The kernel dumps a prefix's routes of one table together
//! (`fn_trie_dump_leaf`, `fib6_dump_node`). When the last main-table route
//! of a prefix has come, its routes are compared with the live view's:
//! equal, only the prefix is noted as seen; different, the dumped routes
//! are kept. The local table (a few routes per address) is kept whole.
//!
//! Why the live view may stand in for what the dump saw equal: the events
//! of the dump's time are logged and replayed onto the dumped routes, and
//! replaying an event sets its route's state whatever it was. The live
//! view, compared at some point of the same event stream, had every event
//! up to that point applied; the dump equalled it then, so both end with
//! the same routes once every later event is applied to both. Only
//! prefixes the overlay holds ([`Overlay::claim`]) need the replay.
//!
//! Should the dump ever bring one prefix's main routes in two runs, the
//! first may have been compared incomplete: [`Overlay::split`] says so
//! and the job starts over with a full view.

use super::code::{Code, NhTable};
use super::prefixmap::{PrefixList, PrefixMap};
use super::View;
use crate::model::{Event, Prefix, Route, TABLE_LOCAL, TABLE_MAIN};

/// The kernel's routes as the live view and the differences from it.
#[derive(Debug, Default)]
pub struct Overlay {
    /// The main-table routes of the prefixes the overlay holds that have
    /// any, and the dump's local table, whole.
    view: View,
    /// The prefixes the overlay holds with no main-table route.
    absent: PrefixMap<()>,
    /// Every main-table prefix of the dump; sorted by [`Overlay::seal`].
    seen: PrefixList,
    /// The routes of the prefix being read (`run_prefix`).
    run: View,
    run_prefix: Option<Prefix>,
    split: bool,
}

/// Fills an [`Overlay`] from a dump's routes, as they come, against the
/// live view.
#[derive(Debug, Default)]
pub struct OverlayBuilder {
    overlay: Overlay,
}

impl OverlayBuilder {
    /// A route of the dump; `live` is the live view now.
    pub fn add(&mut self, r: Route, live: &View, nh: &mut NhTable) {
        match r.key.table {
            TABLE_LOCAL => {
                self.overlay.view.insert_dumped(r, nh);
            }
            TABLE_MAIN => {
                let p = r.key.prefix;
                if self.overlay.run_prefix != Some(p) {
                    self.close_run(live);
                    self.overlay.run_prefix = Some(p);
                }
                self.overlay.run.insert_dumped(r, nh);
            }
            // Other tables are not mirrored (see View::insert).
            _ => {}
        }
    }

    /// The prefix being read is complete: keep its routes if they differ
    /// from the live view's.
    fn close_run(&mut self, live: &View) {
        let o = &mut self.overlay;
        let Some(p) = o.run_prefix.take() else {
            return;
        };
        o.seen.push(p);
        let same = o.run.same_main(live, &p);
        let set = o.run.take_main(&p);
        if !same {
            o.view.put_main(p, set);
        }
    }

    /// The dump starts over: forget what it brought.
    pub fn restart(&mut self) {
        self.overlay = Overlay::default();
    }

    /// The overlay, once the dump's last route came; [`Overlay::seal`] it
    /// before use.
    pub fn finish(mut self, live: &View) -> Overlay {
        self.close_run(live);
        self.overlay
    }
}

impl Overlay {
    /// Sorts the seen prefixes (tens of milliseconds at a full table: off
    /// the event loop) and finds out whether a prefix came in two runs.
    pub fn seal(&mut self) {
        self.split = self.seen.sort() > 0;
        self.seen.index();
    }

    /// Whether a prefix's main routes came in two runs: the overlay cannot
    /// be trusted (see the module's comment).
    pub fn split(&self) -> bool {
        self.split
    }

    /// A local-table route the kernel did not create was dumped.
    pub fn custom_local_seen(&self) -> bool {
        self.view.custom_local_seen
    }

    /// Whether the dump had main-table routes for `p`.
    pub(super) fn seen(&self, p: &Prefix) -> bool {
        self.seen.contains(p)
    }

    /// Whether the overlay decides `p`'s main-table routes.
    fn holds(&self, p: &Prefix) -> bool {
        self.view.has_main(p) || self.absent.get(p).is_some()
    }

    /// Whether the overlay has anything of `p`: main routes it decides,
    /// or local ones.
    pub(super) fn has(&self, p: &Prefix) -> bool {
        self.holds(p) || self.view.has(p)
    }

    /// Makes the overlay decide `p`'s main-table routes from now on, if
    /// the live view cannot stand in for them: the dump did not have `p`
    /// (its routes are those events bring, from none). True when the
    /// overlay decides them.
    pub(super) fn claim(&mut self, p: &Prefix) -> bool {
        if self.holds(p) {
            return true;
        }
        if self.seen(p) {
            return false;
        }
        self.absent.insert(*p, ());
        true
    }

    /// Claims the prefixes of the main-table route events logged during
    /// the dump (see [`Overlay::claim`]), before a resync installs the
    /// overlay, and returns the events to replay after the install: all
    /// but the main-table route events of prefixes the live view stands
    /// in for, which it has applied already. (Applied twice, some would
    /// not be idempotent: an append marks a route as added twice.)
    pub fn claim_logged(&mut self, mut log: Vec<Event>) -> Vec<Event> {
        for r in log.iter().filter_map(Event::route) {
            if r.key.table == TABLE_MAIN {
                self.claim(&r.key.prefix);
            }
        }
        log.retain(|ev| match ev.route() {
            Some(r) if r.key.table == TABLE_MAIN => self.claim(&r.key.prefix),
            _ => true,
        });
        log
    }

    /// An event after the dump read its routes: applied to the routes the
    /// overlay holds (claiming its prefix first, see [`Overlay::claim`]).
    pub fn replay(&mut self, ev: &Event, nh: &mut NhTable) {
        let Some(r) = ev.route() else {
            return;
        };
        let p = r.key.prefix;
        let main = r.key.table == TABLE_MAIN;
        let held = match r.key.table {
            TABLE_MAIN => self.claim(&p),
            TABLE_LOCAL => true,
            _ => false,
        };
        if !held {
            return;
        }
        match ev {
            Event::NewRoute(r) => self.view.insert(r.clone(), nh),
            Event::AddRoute(r, how) => self.view.add_beside(r.clone(), *how, nh),
            Event::DelRoute(r) => self.view.remove(r, nh),
            _ => unreachable!("a route event"),
        };
        if main {
            if self.view.has_main(&p) {
                self.absent.remove(&p);
            } else {
                self.absent.insert(p, ());
            }
        }
    }

    /// The decision the kernel's default rules reach for `p`, by the dump
    /// (and the events replayed onto it), `live` standing in where it may.
    pub(super) fn effective(&self, live: &View, p: &Prefix) -> Option<Code> {
        self.view.effective_over(p, || {
            if self.view.has_main(p) {
                self.view.main_best(p)
            } else if self.absent.get(p).is_some() || !self.seen(p) {
                None
            } else {
                live.main_best(p)
            }
        })
    }

    /// The prefixes the overlay has anything of (see [`Overlay::has`]).
    pub(super) fn prefixes(&self) -> PrefixList {
        let mut list = PrefixList::default();
        self.view
            .main_prefixes()
            .chain(self.view.local_prefixes())
            .chain(self.absent.keys())
            .for_each(|p| list.push(p));
        list
    }

    /// Splits the overlay for a resync's install: its view (the held main
    /// routes and the local table), the prefixes it holds without routes,
    /// and the seen list.
    pub(super) fn into_parts(self) -> (View, PrefixMap<()>, PrefixList) {
        (self.view, self.absent, self.seen)
    }
}
