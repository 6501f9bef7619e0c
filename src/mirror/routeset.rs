//! The routes of one prefix in one table, kept small: a full Internet table
//! has a million prefixes, almost all with one single-path route.

use super::entries::{route_entry, FibReason, RouteEntry};
use crate::model::Route;

/// A route reduced to what the datapath entry needs. Multipath routes keep
/// their next hops, because IPv6 removes one path at a time.
#[derive(Debug, Clone)]
struct Stored {
    metric: u32,
    tos: u8,
    entry: RouteEntry,
    multipath: Option<Box<Route>>,
}

/// Ordered as the kernel tries them: lowest metric first.
#[derive(Debug, Default, Clone)]
pub struct RouteSet(Vec<Stored>);

impl RouteSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds or replaces the route with the same metric and TOS.
    pub fn insert(&mut self, r: Route) {
        let key = (r.key.metric, r.key.tos);
        let stored = Stored {
            metric: r.key.metric,
            tos: r.key.tos,
            entry: route_entry(&r),
            multipath: (r.nexthops.len() > 1).then(|| Box::new(r)),
        };
        match self.0.binary_search_by_key(&key, |s| (s.metric, s.tos)) {
            Ok(i) => self.0[i] = stored,
            Err(i) => self.0.insert(i, stored),
        }
        self.0.shrink_to_fit();
    }

    /// Removes `r`, or only the paths it names when it is a partial IPv6
    /// multipath deletion. Returns false when nothing matched.
    pub fn remove(&mut self, r: &Route, partial_paths: bool) -> bool {
        let key = (r.key.metric, r.key.tos);
        let Ok(i) = self.0.binary_search_by_key(&key, |s| (s.metric, s.tos)) else {
            return false;
        };
        if partial_paths && !r.nexthops.is_empty() {
            if let Some(route) = self.0[i].multipath.as_mut() {
                if r.nexthops.len() < route.nexthops.len() {
                    route.nexthops.retain(|nh| {
                        !r.nexthops
                            .iter()
                            .any(|d| d.ifindex == nh.ifindex && d.gateway == nh.gateway)
                    });
                    if !route.nexthops.is_empty() {
                        self.0[i].entry = route_entry(route);
                        return true;
                    }
                }
            }
        }
        self.0.remove(i);
        true
    }

    /// The decision the kernel reaches among these routes.
    pub fn best(&self) -> Option<RouteEntry> {
        // A TOS-specific route applies only to some packets.
        if self.0.iter().any(|s| s.tos != 0) {
            return Some(RouteEntry::Fib(FibReason::Tos));
        }
        self.0.first().map(|s| s.entry)
    }
}
