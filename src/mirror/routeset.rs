//! The routes of one prefix in one table, kept small: a full Internet table
//! has a million prefixes, almost all with one single-path route, which is
//! stored inline (8 bytes, no allocation). Anything else (several metrics,
//! a TOS, a multipath route) goes to a boxed list.

use std::net::IpAddr;

use super::code::{Code, NhTable};
use super::decision::{FibReason, RouteEntry};
use super::entries::route_entry;
use crate::model::{Family, Route, RouteAdd};

/// A route reduced to what the datapath entry needs. Multipath routes keep
/// their next hops, because IPv6 removes one path at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    metric: u32,
    tos: u8,
    entry: Code,
    multipath: Option<Box<Route>>,
    /// Added again without a replace while its decision keeps no path
    /// (see [`RouteSet::add_beside`]): it may be two routes the mirror
    /// cannot tell apart, so removing one asks for a dump.
    repeated: bool,
}

/// A prefix's routes when they fit in 8 bytes (see [`RouteSet::inline`]):
/// what a map of a million prefixes stores for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inline {
    metric: u32,
    entry: Code,
}

impl Inline {
    /// No route.
    pub const EMPTY: Inline = Inline {
        metric: 0,
        entry: Code::NONE,
    };
    /// The routes are kept elsewhere, as a [`RouteSet`].
    pub const ELSEWHERE: Inline = Inline {
        metric: 1,
        entry: Code::NONE,
    };
}

/// What a map's empty slot holds.
impl Default for Inline {
    fn default() -> Self {
        Inline::EMPTY
    }
}

impl From<Inline> for RouteSet {
    fn from(i: Inline) -> RouteSet {
        match i {
            Inline::EMPTY => RouteSet::Empty,
            Inline { metric, entry } => {
                debug_assert!(entry != Code::NONE, "no set is kept elsewhere");
                RouteSet::One { metric, entry }
            }
        }
    }
}

/// Ordered as the kernel tries them: lowest metric first. Two sets are
/// equal when they hold the same routes in the same form: a set kept as a
/// list may equal an inline one and still compare unequal.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RouteSet {
    #[default]
    Empty,
    /// One route with TOS 0 and at most one path.
    One {
        metric: u32,
        entry: Code,
    },
    Many(Box<Vec<Stored>>),
}

impl RouteSet {
    pub fn is_empty(&self) -> bool {
        matches!(self, RouteSet::Empty)
    }

    /// The set in 8 bytes, if it fits (one route, TOS 0, at most one path).
    pub fn inline(&self) -> Option<Inline> {
        match *self {
            RouteSet::Empty => Some(Inline::EMPTY),
            RouteSet::One { metric, entry } => Some(Inline { metric, entry }),
            RouteSet::Many(_) => None,
        }
    }

    /// Adds or replaces the route with the same metric and TOS.
    pub fn insert(&mut self, r: Route, nh: &mut NhTable) {
        let e = route_entry(&r, nh);
        let entry = nh.encode(e);
        let simple = r.key.tos == 0 && r.nexthops.len() <= 1;
        match self {
            RouteSet::Empty if simple => {
                *self = RouteSet::One {
                    metric: r.key.metric,
                    entry,
                };
                return;
            }
            RouteSet::One { metric, entry: e } if simple && *metric == r.key.metric => {
                *e = entry;
                return;
            }
            _ => {}
        }
        let list = self.list();
        let stored = Stored {
            metric: r.key.metric,
            tos: r.key.tos,
            entry,
            multipath: (r.nexthops.len() > 1).then(|| Box::new(r)),
            repeated: false,
        };
        let key = (stored.metric, stored.tos);
        match list.binary_search_by_key(&key, |s| (s.metric, s.tos)) {
            Ok(i) => list[i] = stored,
            Err(i) => list.insert(i, stored),
        }
        list.shrink_to_fit();
        self.compact();
    }

    /// `r` replacing a route with its key (NLM_F_REPLACE). Of several
    /// routes with the key, IPv4 replaces the first (fib_table_insert's
    /// fa_first), which lookups then take (fib_table_lookup walks them in
    /// order); the others stay, so removing `r` later asks for a dump.
    /// IPv6 replaces the first with `r`'s multipath eligibility
    /// (fib6_add_rt2node) and chooses among what is left by score and
    /// round robin (find_rr_leaf): bpf_fib_lookup decides.
    pub fn replace(&mut self, mut r: Route, nh: &mut NhTable) {
        let key = (r.key.metric, r.key.tos);
        if !self.is_ambiguous(key.0, key.1) {
            self.insert(r, nh);
        } else if r.key.prefix.family() == Family::V4 {
            self.insert(r, nh);
            self.mark_repeated(key);
        } else {
            r.nexthops.clear();
            self.insert(r, nh);
            self.set_entry(key, Code::fib(FibReason::SameKey));
        }
    }

    /// Adds `r` where a route with the same metric and TOS may exist
    /// (any add that is not NLM_F_REPLACE, see [`RouteAdd`]):
    /// - none exists, or the kernel says none did ([`RouteAdd::Alone`]):
    ///   a plain insert;
    /// - the same paths: IPv6 refuses a second route through the same
    ///   device and gateway (rt6_duplicate_nexthop), so this is the same
    ///   route again, kept in the stored path order; IPv4 takes one that
    ///   differs in anything else (protocol, scope, metrics: the whole
    ///   fib_info, fib_table_insert's fa_match), so two routes now share
    ///   the key and removing one asks for a dump;
    /// - the same path-less type: see below;
    /// - an IPv6 gateway route appended to one: it joins as multipath. The
    ///   kernel's notification lists the new paths first, its own list (and
    ///   so its hash order) has them last;
    /// - otherwise two routes with one key coexist and the kernel uses the
    ///   first of its list, which the mirror does not know: the prefix goes
    ///   to bpf_fib_lookup.
    pub fn add_beside(&mut self, mut r: Route, how: RouteAdd, nh: &mut NhTable) {
        let key = (r.key.metric, r.key.tos);
        let stored = match how {
            RouteAdd::Alone => None,
            _ => self.stored(key, nh),
        };
        let Some((old, old_entry)) = stored else {
            self.insert(r, nh);
            return;
        };
        let paths: Vec<(u32, Option<IpAddr>)> =
            r.nexthops.iter().map(|n| (n.ifindex, n.gateway)).collect();
        // A stored decision without paths (local, blackhole, unreachable,
        // a FIB reason) keeps no device to compare. An add with the same
        // decision is most likely the same route again (an event replayed
        // onto a dump that already holds its route, see `Mirror::replay`):
        // the decision stands, right either way. It may also be a second
        // route that differs only in its device; so that deleting one of
        // two never leaves the mirror without the other, a removal of this
        // key then asks for a dump, as for routes known to share a key.
        if old.is_empty() {
            if route_entry(&r, nh) == old_entry {
                self.insert(r, nh);
                self.mark_repeated(key);
                return;
            }
        } else if paths.len() == old.len() && old.iter().all(|o| paths.contains(o)) {
            r.nexthops
                .sort_by_key(|n| old.iter().position(|o| *o == (n.ifindex, n.gateway)));
            if r.key.prefix.family() == Family::V6 {
                self.insert(r, nh);
                return;
            }
            if route_entry(&r, nh) == old_entry {
                self.insert(r, nh);
                self.mark_repeated(key);
                return;
            }
        } else if how == RouteAdd::Append
            && r.key.prefix.family() == Family::V6
            && !old.is_empty()
            && paths.len() > old.len()
        {
            r.nexthops.rotate_left(paths.len() - old.len());
            let joined = r
                .nexthops
                .iter()
                .zip(&old)
                .all(|(n, o)| (n.ifindex, n.gateway) == *o);
            if joined {
                self.insert(r, nh);
                return;
            }
        }
        r.nexthops.clear();
        self.insert(r, nh);
        self.set_entry(key, Code::fib(FibReason::SameKey));
    }

    /// Notes that the route with this key was added again (see
    /// [`RouteSet::add_beside`]).
    fn mark_repeated(&mut self, key: (u32, u8)) {
        if let Some(s) = self.list().iter_mut().find(|s| (s.metric, s.tos) == key) {
            s.repeated = true;
        }
    }

    /// After the removal of a route that was, or may have been, one of
    /// several with its key (see [`RouteSet::is_ambiguous`]): another may
    /// remain, which only a dump tells; bpf_fib_lookup decides until then.
    pub fn mark_unknown(&mut self, metric: u32, tos: u8) {
        let entry = Code::fib(FibReason::SameKey);
        if tos == 0 && self.is_empty() {
            *self = RouteSet::One { metric, entry };
            return;
        }
        let stored = Stored {
            metric,
            tos,
            entry,
            multipath: None,
            repeated: false,
        };
        let list = self.list();
        match list.binary_search_by_key(&(metric, tos), |s| (s.metric, s.tos)) {
            Ok(i) => list[i] = stored,
            Err(i) => list.insert(i, stored),
        }
        self.compact();
    }

    /// True when the route with this metric and TOS is, or may be, one of
    /// several with its key (see [`RouteSet::add_beside`]).
    pub fn is_ambiguous(&self, metric: u32, tos: u8) -> bool {
        let amb = Code::fib(FibReason::SameKey);
        match self {
            RouteSet::One { metric: m, entry } => tos == 0 && *m == metric && *entry == amb,
            RouteSet::Many(list) => list
                .iter()
                .any(|s| s.metric == metric && s.tos == tos && (s.entry == amb || s.repeated)),
            RouteSet::Empty => false,
        }
    }

    /// The (interface, gateway) paths of the stored route with this key, in
    /// order, and its entry; `None` when there is none.
    #[allow(clippy::type_complexity)]
    fn stored(
        &self,
        key: (u32, u8),
        nh: &NhTable,
    ) -> Option<(Vec<(u32, Option<IpAddr>)>, RouteEntry)> {
        let one = |code: Code| match nh.decode(code) {
            RouteEntry::Unicast(k) => (vec![(k.ifindex, k.gateway)], RouteEntry::Unicast(k)),
            e => (Vec::new(), e),
        };
        match self {
            RouteSet::Empty => None,
            RouteSet::One { metric, entry } => (key == (*metric, 0)).then(|| one(*entry)),
            RouteSet::Many(list) => {
                let s = list.iter().find(|s| (s.metric, s.tos) == key)?;
                Some(match &s.multipath {
                    Some(route) => (
                        route
                            .nexthops
                            .iter()
                            .map(|n| (n.ifindex, n.gateway))
                            .collect(),
                        nh.decode(s.entry),
                    ),
                    None => one(s.entry),
                })
            }
        }
    }

    fn set_entry(&mut self, key: (u32, u8), code: Code) {
        match self {
            RouteSet::One { metric, entry } if key == (*metric, 0) => *entry = code,
            RouteSet::Many(list) => {
                if let Some(s) = list.iter_mut().find(|s| (s.metric, s.tos) == key) {
                    s.entry = code;
                    s.multipath = None;
                }
                self.compact();
            }
            _ => {}
        }
    }

    /// Removes `r`, or only the paths it names when it is a partial IPv6
    /// multipath deletion. Returns false when nothing matched.
    pub fn remove(&mut self, r: &Route, partial_paths: bool, nh: &mut NhTable) -> bool {
        let key = (r.key.metric, r.key.tos);
        // Routes through a nexthop object are never deleted a path at a
        // time (rt6_qualify_for_ecmp wants no object), and the paths they
        // carry (nexthop_compat_mode) go stale when the group changes.
        let partial = partial_paths && r.nhid.is_none() && !r.nexthops.is_empty();
        let list = match self {
            RouteSet::Empty => return false,
            RouteSet::One { metric, entry } => {
                if key != (*metric, 0) || partial && !has_a_path(*entry, None, r, nh) {
                    return false;
                }
                *self = RouteSet::Empty;
                return true;
            }
            RouteSet::Many(list) => list,
        };
        let Ok(i) = list.binary_search_by_key(&key, |s| (s.metric, s.tos)) else {
            return false;
        };
        if partial && !has_a_path(list[i].entry, list[i].multipath.as_deref(), r, nh) {
            return false;
        }
        let mut removed_paths = false;
        if partial {
            if let Some(route) = list[i].multipath.as_mut() {
                if r.nexthops.len() < route.nexthops.len() {
                    route.nexthops.retain(|nh| {
                        !r.nexthops
                            .iter()
                            .any(|d| d.ifindex == nh.ifindex && d.gateway == nh.gateway)
                    });
                    if !route.nexthops.is_empty() {
                        let e = route_entry(route, nh);
                        list[i].entry = nh.encode(e);
                        removed_paths = true;
                    }
                }
            }
        }
        if !removed_paths {
            list.remove(i);
        }
        self.compact();
        true
    }

    /// The codes of its routes through nexthop objects (see
    /// [`View::uses_object`](super::View::uses_object)).
    pub fn counted_codes(&self) -> smallvec::SmallVec<[Code; 1]> {
        match self {
            RouteSet::Empty => smallvec::SmallVec::new(),
            RouteSet::One { entry, .. } => (*entry)
                .is_counted()
                .then_some(*entry)
                .into_iter()
                .collect(),
            RouteSet::Many(list) => list
                .iter()
                .map(|s| s.entry)
                .filter(|c| c.is_counted())
                .collect(),
        }
    }

    /// The decision the kernel reaches among these routes.
    pub fn best(&self) -> Option<Code> {
        match self {
            RouteSet::Empty => None,
            RouteSet::One { entry, .. } => Some(*entry),
            // A TOS-specific route applies only to some packets.
            RouteSet::Many(list) if list.iter().any(|s| s.tos != 0) => {
                Some(Code::fib(FibReason::Tos))
            }
            RouteSet::Many(list) => list.first().map(|s| s.entry),
        }
    }

    /// The boxed list, converting an inline route into it.
    fn list(&mut self) -> &mut Vec<Stored> {
        let list = match std::mem::take(self) {
            RouteSet::Empty => Vec::new(),
            RouteSet::One { metric, entry } => vec![Stored {
                metric,
                tos: 0,
                entry,
                multipath: None,
                repeated: false,
            }],
            RouteSet::Many(list) => *list,
        };
        *self = RouteSet::Many(Box::new(list));
        match self {
            RouteSet::Many(list) => list,
            _ => unreachable!(),
        }
    }

    /// Back to the inline form when what is left allows it.
    fn compact(&mut self) {
        let RouteSet::Many(list) = self else { return };
        match list.as_slice() {
            [] => *self = RouteSet::Empty,
            [s] if s.tos == 0 && s.multipath.is_none() && !s.repeated => {
                *self = RouteSet::One {
                    metric: s.metric,
                    entry: s.entry,
                }
            }
            _ => {}
        }
    }
}

/// Whether a stored route (its entry, and its paths if multipath) has one
/// of the paths an IPv6 deletion names. The kernel announces the removal
/// of one path as a deletion naming only it; replayed onto a dump that was
/// read after it (see [`crate::mirror::sweep`]), it names a path that is
/// gone already and must not take the paths left. Entries that keep no
/// path (bpf_fib_lookup's, or a group's) cannot tell: they match.
fn has_a_path(entry: Code, multipath: Option<&Route>, r: &Route, nh: &NhTable) -> bool {
    let named = |ifindex: u32, gateway: Option<IpAddr>| {
        r.nexthops
            .iter()
            .any(|d| d.ifindex == ifindex && d.gateway == gateway)
    };
    match (multipath, nh.decode(entry)) {
        (Some(route), _) => route.nexthops.iter().any(|p| named(p.ifindex, p.gateway)),
        (None, RouteEntry::Unicast(k)) => named(k.ifindex, k.gateway),
        (None, _) => true,
    }
}
