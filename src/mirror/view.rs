//! The kernel's routes as the mirror last saw them: the local and main
//! tables (the ones the default rules consult), by prefix, in compact form.
//! A fresh view is built route by route while a dump streams in, so that a
//! full-table dump is never held as a `Vec<Route>`.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::code::{Code, NhTable};
use super::entries::is_custom_local_route;
use super::prefixmap::PrefixMap;
use super::routeset::RouteSet;
use crate::model::{Family, Prefix, Route, RouteAdd, TABLE_LOCAL, TABLE_MAIN};

#[derive(Debug, Clone, Default)]
pub struct View {
    main: PrefixMap<RouteSet>,
    /// The local table holds the host's own addresses: few routes, and kept
    /// ordered for the covering-route search.
    local: BTreeMap<Prefix, RouteSet>,
    /// The local-table prefixes that can contain another prefix (all but
    /// host routes), longest first: the covering search of every route
    /// event runs over these (usually one or two: 127.0.0.0/8, ff00::/8)
    /// instead of the whole local table (two entries per address).
    local_covering: Vec<Prefix>,
    /// A local-table route the kernel did not create was seen.
    pub(super) custom_local_seen: bool,
    /// One of several routes with one key was removed: which remain is
    /// only known from a dump.
    pub(super) resync_wanted: bool,
}

impl View {
    pub fn route_count(&self) -> usize {
        self.main.len() + self.local.len()
    }

    /// Returns false for routes the mirror does not track (other tables).
    pub fn insert(&mut self, r: Route, nh: &mut NhTable) -> bool {
        match self.set_for(&r) {
            Some(set) => {
                set.insert(r, nh);
                true
            }
            None => false,
        }
    }

    /// A route added beside others with its key (an event; see
    /// [`RouteSet::add_beside`]). Returns false for untracked tables.
    pub fn add_beside(&mut self, r: Route, how: RouteAdd, nh: &mut NhTable) -> bool {
        match self.set_for(&r) {
            Some(set) => {
                set.add_beside(r, how, nh);
                true
            }
            None => false,
        }
    }

    /// The routes of `r`'s prefix in its table, created if need be; `None`
    /// for tables the mirror does not track.
    fn set_for(&mut self, r: &Route) -> Option<&mut RouteSet> {
        let table = r.key.table;
        if table != TABLE_LOCAL && table != TABLE_MAIN {
            return None;
        }
        if is_custom_local_route(r) {
            self.custom_local_seen = true;
        }
        let p = r.key.prefix;
        Some(if table == TABLE_LOCAL {
            if let Entry::Vacant(e) = self.local.entry(p) {
                e.insert(RouteSet::default());
                self.local_keys_changed(&p);
            }
            self.local.get_mut(&p).expect("inserted above")
        } else {
            self.main.get_or_insert_with(p, RouteSet::default)
        })
    }

    /// A route of a dump: a second one with the same key means routes
    /// coexist (`ip route append`), as in [`View::add_beside`].
    pub fn insert_dumped(&mut self, r: Route, nh: &mut NhTable) -> bool {
        self.add_beside(r, RouteAdd::Prepend, nh)
    }

    pub fn remove(&mut self, r: &Route, nh: &mut NhTable) -> bool {
        let table = r.key.table;
        let p = r.key.prefix;
        let set = match table {
            TABLE_LOCAL => self.local.get_mut(&p),
            TABLE_MAIN => self.main.get_mut(&p),
            _ => return false,
        };
        let Some(set) = set else { return false };
        if set.is_ambiguous(r.key.metric, r.key.tos) {
            self.resync_wanted = true;
        }
        // IPv6 announces the removal of one path of a multipath route as a
        // DelRoute carrying only that path.
        if !set.remove(r, p.family() == Family::V6, nh) {
            return false;
        }
        if set.is_empty() {
            if table == TABLE_LOCAL {
                self.local.remove(&p);
                self.local_keys_changed(&p);
            } else {
                self.main.remove(&p);
            }
        }
        true
    }

    /// The decision the kernel's default rules reach for destinations whose
    /// longest match among local and main routes is `p`.
    pub fn effective(&self, p: &Prefix) -> Option<Code> {
        // The local table is consulted first, whatever the prefix lengths.
        if let Some(e) = self.local.get(p).and_then(RouteSet::best) {
            return Some(e);
        }
        let main = self.main.get(p)?.best()?;
        Some(self.covering_local(p).unwrap_or(main))
    }

    /// The longest local-table route strictly containing `p`: it wins over
    /// any main route at `p`.
    fn covering_local(&self, p: &Prefix) -> Option<Code> {
        self.local_covering
            .iter()
            .find(|l| l.len() < p.len() && l.contains(p))
            .and_then(|l| self.local.get(l))
            .and_then(RouteSet::best)
    }

    /// Recomputes [`View::local_covering`] after local-table prefix `p`
    /// came or went; host routes (most of the local table, one or two per
    /// address) are never in it.
    fn local_keys_changed(&mut self, p: &Prefix) {
        if p.len() == p.family().max_len() {
            return;
        }
        self.local_covering = self
            .local
            .keys()
            .filter(|l| l.len() < l.family().max_len())
            .copied()
            .collect();
        self.local_covering
            .sort_by_key(|l| std::cmp::Reverse(l.len()));
    }

    /// The prefixes with main routes inside `p` (longer than it).
    pub fn main_inside<'a>(&'a self, p: &'a Prefix) -> impl Iterator<Item = Prefix> + 'a {
        self.main
            .keys()
            .filter(move |q| q.len() > p.len() && p.contains(q))
    }

    /// Touches the main-table routes of `p` (see [`PrefixMap::warm`]).
    pub fn warm(&self, p: &Prefix) {
        self.main.warm(p);
    }

    /// Whether the view holds routes for exactly `p`.
    pub fn has(&self, p: &Prefix) -> bool {
        self.main.get(p).is_some() || self.local.contains_key(p)
    }

    pub fn local_prefixes(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.local.keys().copied()
    }

    pub(super) fn main(&self) -> &PrefixMap<RouteSet> {
        &self.main
    }
}
