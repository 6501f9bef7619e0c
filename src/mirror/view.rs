//! The kernel's routes as the mirror last saw them: the local and main
//! tables (the ones the default rules consult), by prefix, in compact form.
//! A fresh view is built route by route while a dump streams in, so that a
//! full-table dump is never held as a `Vec<Route>`.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::code::{Code, NhTable};
use super::decision::FibReason;
use super::entries::is_custom_local_route;
use super::prefixmap::{PrefixList, PrefixMap, PARTS};
use super::routeset::{Inline, RouteSet};
use crate::fast_hash::FastMap;
use crate::model::{Family, Prefix, Route, RouteAdd, TABLE_LOCAL, TABLE_MAIN};

#[derive(Debug, Clone, Default)]
pub struct View {
    /// The main table: a million prefixes, almost all with one simple
    /// route, kept inline in 8 bytes. A [`RouteSet`] takes 16 (its boxed
    /// list needs a pointer beside the tag); at a full table those 8 bytes
    /// a slot are 15 MiB, twice during a resync or a check.
    main: PrefixMap<Inline>,
    /// The main-table prefixes whose routes do not fit inline (marked
    /// [`Inline::ELSEWHERE`] in `main`): several metrics, a TOS, a
    /// multipath route.
    main_sets: PrefixMap<RouteSet>,
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
    /// How many main-table routes have each counted code
    /// ([`Code::is_counted`]: see [`View::uses_object`],
    /// [`View::has_dead_paths`] and [`View::multipath_through`]).
    counted: FastMap<Code, u32>,
}

impl View {
    pub fn route_count(&self) -> usize {
        self.main.len() + self.local.len()
    }

    /// A route replacing the one with its key (see [`RouteSet::replace`]).
    /// Returns false for routes the mirror does not track (other tables).
    pub fn insert(&mut self, r: Route, nh: &mut NhTable) -> bool {
        self.with_set(r, |set, r| set.replace(r, nh))
    }

    /// A route added beside others with its key (an event; see
    /// [`RouteSet::add_beside`]). Returns false for untracked tables.
    pub fn add_beside(&mut self, r: Route, how: RouteAdd, nh: &mut NhTable) -> bool {
        self.with_set(r, |set, r| set.add_beside(r, how, nh))
    }

    /// Runs `f` on the routes of `r`'s prefix in its table, created if
    /// need be; false (and `f` not run) for tables the mirror does not
    /// track.
    fn with_set(&mut self, r: Route, f: impl FnOnce(&mut RouteSet, Route)) -> bool {
        let table = r.key.table;
        if table != TABLE_LOCAL && table != TABLE_MAIN {
            return false;
        }
        if is_custom_local_route(&r) {
            self.custom_local_seen = true;
        }
        let p = r.key.prefix;
        if table == TABLE_LOCAL {
            if let Entry::Vacant(e) = self.local.entry(p) {
                e.insert(RouteSet::default());
                self.local_keys_changed(&p);
            }
            f(self.local.get_mut(&p).expect("inserted above"), r);
        } else {
            self.update_main(p, true, |set| f(set, r));
        }
        true
    }

    /// Runs `f` on the main-table routes of `p` (created empty if
    /// `create`, else `None` when there are none) and keeps what it
    /// leaves: inline when it fits, in `main_sets` when not, nothing when
    /// no route is left. One lookup in `main` for a prefix kept inline.
    fn update_main<T>(
        &mut self,
        p: Prefix,
        create: bool,
        f: impl FnOnce(&mut RouteSet) -> T,
    ) -> Option<T> {
        let View {
            main,
            main_sets,
            counted,
            ..
        } = self;
        let slot = if create {
            main.get_or_insert_with(p, || Inline::EMPTY)
        } else {
            main.get_mut(&p)?
        };
        let was_elsewhere = *slot == Inline::ELSEWHERE;
        let mut inline_set = RouteSet::default();
        let set = if was_elsewhere {
            main_sets
                .get_mut(&p)
                .expect("a set for each slot marked elsewhere")
        } else {
            inline_set = RouteSet::from(*slot);
            &mut inline_set
        };
        let counted_before = set.counted_codes();
        let out = f(set);
        let counted_now = set.counted_codes();
        if counted_now != counted_before {
            count_routes(counted, &counted_before, &counted_now);
        }
        let now = set.inline();
        *slot = now.unwrap_or(Inline::ELSEWHERE);
        match now {
            Some(Inline::EMPTY) => {
                main.remove(&p);
                if was_elsewhere {
                    main_sets.remove(&p);
                }
            }
            Some(_) if was_elsewhere => {
                main_sets.remove(&p);
            }
            None if !was_elsewhere => {
                main_sets.insert(p, inline_set);
            }
            _ => {}
        }
        Some(out)
    }

    /// Whether a route of the view goes through the nexthop object whose
    /// routes have code `object`.
    pub(super) fn uses_object(&self, object: Code) -> bool {
        self.counted_by(object)
    }

    /// Whether a route of the view has a next hop the kernel marked dead
    /// (see [`Code::DEAD_PATH`]).
    pub(super) fn has_dead_paths(&self) -> bool {
        self.counted_by(Code::DEAD_PATH)
    }

    /// Whether a multipath route of the view has a path through device
    /// `ifindex`.
    pub(super) fn multipath_through(&self, ifindex: u32, nh: &NhTable) -> bool {
        let through = |c: &Code| match nh.decode(*c) {
            super::decision::RouteEntry::Multipath(set) => {
                nh.paths(set).iter().any(|p| p.nh.ifindex == ifindex)
            }
            _ => false,
        };
        self.counted
            .iter()
            .any(|(c, n)| *n > 0 && c.is_multipath() && through(c))
            || self
                .local
                .values()
                .any(|set| set.counted_codes().iter().any(through))
    }

    /// Whether a route has counted code `c`: counted for the main table,
    /// looked for in the local one (a few routes per address).
    fn counted_by(&self, c: Code) -> bool {
        self.counted.get(&c).is_some_and(|n| *n > 0)
            || self
                .local
                .values()
                .any(|set| set.counted_codes().contains(&c))
    }

    /// The best main-table route of `p`.
    pub(super) fn main_best(&self, p: &Prefix) -> Option<Code> {
        match *self.main.get(p)? {
            Inline::ELSEWHERE => self.main_sets.get(p)?.best(),
            one => RouteSet::from(one).best(),
        }
    }

    /// Whether the view has main-table routes for `p`.
    pub(super) fn has_main(&self, p: &Prefix) -> bool {
        self.main.get(p).is_some()
    }

    /// Whether `p`'s main-table routes are the same here and in `other`
    /// (in the same form: see [`RouteSet`]'s equality).
    pub(super) fn same_main(&self, other: &View, p: &Prefix) -> bool {
        match (self.main.get(p), other.main.get(p)) {
            (None, None) => true,
            (Some(&Inline::ELSEWHERE), Some(&Inline::ELSEWHERE)) => {
                self.main_sets.get(p) == other.main_sets.get(p)
            }
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// Removes and returns `p`'s main-table routes.
    pub(super) fn take_main(&mut self, p: &Prefix) -> RouteSet {
        self.update_main(*p, false, std::mem::take)
            .unwrap_or_default()
    }

    /// Makes `set` `p`'s main-table routes (none if it is empty).
    pub(super) fn put_main(&mut self, p: Prefix, set: RouteSet) {
        if set.is_empty() {
            self.take_main(&p);
        } else {
            self.update_main(p, true, |s| *s = set);
        }
    }

    /// Takes `other`'s local table in place of this one's.
    pub(super) fn take_local(&mut self, other: &mut View) {
        self.local = std::mem::take(&mut other.local);
        self.local_covering = std::mem::take(&mut other.local_covering);
        self.custom_local_seen |= other.custom_local_seen;
    }

    /// A route of a dump: a second one with the same key means routes
    /// coexist (`ip route append`), as in [`View::add_beside`].
    pub fn insert_dumped(&mut self, r: Route, nh: &mut NhTable) -> bool {
        self.add_beside(r, RouteAdd::Prepend, nh)
    }

    pub fn remove(&mut self, r: &Route, nh: &mut NhTable) -> bool {
        let p = r.key.prefix;
        let mut ambiguous = false;
        let mut remove = |set: &mut RouteSet| {
            ambiguous = set.is_ambiguous(r.key.metric, r.key.tos);
            // IPv6 announces the removal of one path of a multipath route
            // as a DelRoute carrying only that path.
            let removed = set.remove(r, p.family() == Family::V6, nh);
            if removed && ambiguous {
                set.mark_unknown(r.key.metric, r.key.tos);
            }
            removed
        };
        let removed = match r.key.table {
            TABLE_LOCAL => {
                let Some(set) = self.local.get_mut(&p) else {
                    return false;
                };
                let removed = remove(set);
                if set.is_empty() {
                    self.local.remove(&p);
                    self.local_keys_changed(&p);
                }
                removed
            }
            TABLE_MAIN => self.update_main(p, false, remove).unwrap_or(false),
            _ => return false,
        };
        self.resync_wanted |= ambiguous;
        removed
    }

    /// The decision the kernel's default rules reach for destinations whose
    /// longest match among local and main routes is `p`.
    pub fn effective(&self, p: &Prefix) -> Option<Code> {
        self.effective_over(p, || self.main_best(p))
    }

    /// [`View::effective`] with this view's local table and the best
    /// main-table route `main` gives (see [`super::overlay::Overlay`]).
    pub(super) fn effective_over(
        &self,
        p: &Prefix,
        main: impl FnOnce() -> Option<Code>,
    ) -> Option<Code> {
        // At equal length the local table wins, merged with main or not
        // (fib_insert_alias puts the higher tb_id first).
        if let Some(e) = self.local.get(p).and_then(RouteSet::best) {
            return Some(e);
        }
        let main = main()?;
        Some(match self.covering_local(p) {
            None => main,
            Some(local) => merged_or_not(p, local),
        })
    }

    /// The longest local-table route strictly containing `p`: it wins over
    /// any main route at `p` while the two tables are apart (see
    /// [`merged_or_not`]).
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

    /// The main table's prefixes.
    pub fn main_prefixes(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.main.keys()
    }

    /// How many prefixes the main table holds, per family: (IPv4, IPv6).
    pub fn main_len_by_family(&self) -> (usize, usize) {
        self.main.len_by_family()
    }

    /// Fills `keys` with the prefixes of the view's next part (after
    /// `part`, of [`PARTS`] for the main table and one for the local) that
    /// has any; false when none is left. The view may change between two
    /// parts: see [`PrefixMap::part_keys`].
    pub fn next_part(&self, part: &mut usize, keys: &mut PrefixList) -> bool {
        keys.clear();
        while keys.is_empty() && *part <= PARTS {
            if *part < PARTS {
                self.main.part_keys(*part, keys);
            } else {
                self.local.keys().for_each(|p| keys.push(*p));
            }
            *part += 1;
        }
        !keys.is_empty()
    }
}

/// Follows a main-table prefix's counted routes from `before` to `now`.
fn count_routes(counts: &mut FastMap<Code, u32>, before: &[Code], now: &[Code]) {
    for c in before {
        if let Some(n) = counts.get_mut(c) {
            *n -= 1;
            if *n == 0 {
                counts.remove(c);
            }
        }
    }
    for c in now {
        *counts.entry(*c).or_insert(0) += 1;
    }
}

/// The decision for main-table prefix `p` inside local-table route
/// `local`. The kernel looks the local table up first once the IPv4
/// tables are apart (fib_unmerge, at the first custom rule, for good),
/// and IPv6 always does (fib6_rule_lookup). Until then IPv4 keeps both in
/// one trie (fib_new_table aliases local to main): the longest prefix
/// wins, `p` over `local`. Whether the tables were ever split (a rule
/// added and removed before accel started) accel cannot tell, so an IPv4
/// route of another type than local (which goes to the kernel anyway)
/// leaves `p` to bpf_fib_lookup. The kernel's own local table (host
/// routes, 127.0.0.0/8 of type local) never gets here.
fn merged_or_not(p: &Prefix, local: Code) -> Code {
    if p.family() == Family::V4 && local != Code::LOCAL {
        Code::fib(FibReason::LocalCover)
    } else {
        local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::tests::route;
    use crate::model::RouteKind;

    /// A prefix whose routes stop fitting inline moves to `main_sets` and
    /// back, and leaves nothing behind when its last route goes.
    #[test]
    fn main_routes_move_between_inline_and_a_set() {
        let mut nh = NhTable::default();
        let mut v = View::default();
        let via = |ifindex| {
            route(
                TABLE_MAIN,
                "10.0.0.0/8",
                ifindex * 10,
                RouteKind::Unicast,
                Some((ifindex, None)),
            )
        };
        let (a, b) = (via(1), via(2));
        let p = a.key.prefix;
        let code = |r: &Route, nh: &mut NhTable| {
            let e = super::super::entries::route_entry(r, nh);
            nh.encode(e)
        };
        let (ca, cb) = (code(&a, &mut nh), code(&b, &mut nh));
        assert!(v.insert(b.clone(), &mut nh));
        assert_eq!((v.main.len(), v.main_sets.len()), (1, 0));
        assert_eq!(v.effective(&p), Some(cb));
        assert!(v.insert(a.clone(), &mut nh));
        assert_eq!((v.main.len(), v.main_sets.len()), (1, 1));
        assert_eq!(v.effective(&p), Some(ca));
        assert!(v.remove(&a, &mut nh));
        assert_eq!((v.main.len(), v.main_sets.len()), (1, 0));
        assert_eq!(v.effective(&p), Some(cb));
        assert!(!v.remove(&a, &mut nh), "already gone");
        assert!(v.insert(a.clone(), &mut nh));
        assert!(v.remove(&b, &mut nh));
        assert!(v.remove(&a, &mut nh));
        assert_eq!((v.main.len(), v.main_sets.len()), (0, 0));
        assert_eq!(v.effective(&p), None);
        assert!(!v.has(&p));
    }

    /// The routes through a nexthop object are counted however the view
    /// changes: inline or in a set, moved out and back, removed.
    #[test]
    fn routes_through_an_object_are_counted() {
        let mut nh = NhTable::default();
        let mut v = View::default();
        let via = |p, metric, id| {
            let mut r = route(TABLE_MAIN, p, metric, RouteKind::Unicast, None);
            r.nhid = Some(id);
            r
        };
        let (a, b) = (via("10.0.0.0/8", 10, 7), via("10.0.0.0/8", 20, 7));
        let c = via("10.1.0.0/16", 10, 7);
        assert!(v.insert(a.clone(), &mut nh) && v.insert(b.clone(), &mut nh));
        assert!(v.insert(c.clone(), &mut nh));
        let seven = nh.object_code(7).unwrap();
        assert_eq!(v.counted.get(&seven), Some(&3));
        let p = a.key.prefix;
        let set = v.take_main(&p);
        assert_eq!(v.counted.get(&seven), Some(&1));
        v.put_main(p, set);
        assert!(v.remove(&a, &mut nh) && v.remove(&c, &mut nh));
        assert!(v.uses_object(seven));
        assert!(v.insert(via("10.0.0.0/8", 20, 8), &mut nh), "replaces b");
        assert!(!v.uses_object(seven));
        assert!(v.counted.values().all(|n| *n == 1));
    }
}
