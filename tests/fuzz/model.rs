//! What a fuzz world holds, in plain Rust: the mirror as written to the
//! maps and the kernel's own routes and neighbours in the lab namespace.
//! The oracle asks these, never the maps, which forwarding decisions a
//! world allows.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use accel::mirror::decision::NhKey;
use accel::mirror::IfaceEntry;
use accel::model::Prefix;

/// One of the lab's interfaces, and its entry in the datapath if attached.
#[derive(Clone, Debug)]
pub struct IfaceModel {
    pub name: &'static str,
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub entry: Option<IfaceEntry>,
}

/// A mirrored route's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorRoute {
    Unicast(u32),
    Blackhole,
    Unreachable,
    Local,
    Fib,
    Group(u32),
}

#[derive(Clone, Debug, Default)]
pub struct GroupModel {
    pub blackhole: bool,
    /// Next-hop ids; empty (not blackhole): bpf_fib_lookup decides.
    pub paths: Vec<u32>,
}

/// A route in the kernel's main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelRoute {
    /// (device, gateway) per path; one path unless multipath.
    Via(Vec<(u32, Option<IpAddr>)>),
    Blackhole,
    Unreachable,
    Prohibit,
}

#[derive(Clone, Debug, Default)]
pub struct MirrorModel {
    pub cfg: u32,
    pub nexthops: HashMap<u32, NhKey>,
    pub groups: HashMap<u32, GroupModel>,
    pub routes: Vec<(Prefix, MirrorRoute)>,
    pub neigh: HashMap<(u32, IpAddr), [u8; 6]>,
    pub local4: HashSet<Ipv4Addr>,
    pub src_rules: Vec<Prefix>,
}

#[derive(Clone, Debug, Default)]
pub struct KernelModel {
    pub routes: Vec<(Prefix, KernelRoute)>,
    /// Local, broadcast and anycast addresses (the local table).
    pub locals: HashSet<IpAddr>,
    pub neigh: HashMap<(u32, IpAddr), [u8; 6]>,
}

/// The longest prefix among `routes` covering `addr` (the last one put
/// wins among equal prefixes: callers keep one per prefix).
fn longest<T>(routes: &[(Prefix, T)], addr: IpAddr) -> Option<&T> {
    routes
        .iter()
        .filter(|(p, _)| p.contains_addr(addr))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, r)| r)
}

/// An egress and the destination MAC a forward through it may carry.
pub type Hop = (u32, [u8; 6]);

impl MirrorModel {
    pub fn route(&self, addr: IpAddr) -> Option<MirrorRoute> {
        longest(&self.routes, addr).copied()
    }

    /// The next-hop ids a route may send `addr` to.
    pub fn paths(&self, route: MirrorRoute) -> Vec<u32> {
        match route {
            MirrorRoute::Unicast(id) => vec![id],
            MirrorRoute::Group(g) => self
                .groups
                .get(&g)
                .map(|g| g.paths.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Every (egress, MAC) the mirror may forward `dst` to.
    pub fn hops(&self, dst: IpAddr) -> Vec<Hop> {
        let Some(route) = self.route(dst) else {
            return Vec::new();
        };
        self.paths(route)
            .iter()
            .filter_map(|id| self.nexthops.get(id))
            .filter_map(|nh| {
                let next = nh.gateway.unwrap_or(dst);
                let mac = self.neigh.get(&(nh.ifindex, next))?;
                Some((nh.ifindex, *mac))
            })
            .collect()
    }

    pub fn blackholes(&self, dst: IpAddr) -> bool {
        match self.route(dst) {
            Some(MirrorRoute::Blackhole) => true,
            Some(MirrorRoute::Group(g)) => self.groups.get(&g).is_some_and(|g| g.blackhole),
            _ => false,
        }
    }

    /// A route with more than one path: only the kernel's hash may pick.
    pub fn is_multipath(&self, dst: IpAddr) -> bool {
        self.route(dst).is_some_and(|r| self.paths(r).len() > 1)
    }

    /// fib_validate_source() through the mirror: a forwarding route back
    /// to `src`, through `ingress` if `strict`.
    pub fn source_ok(&self, src: IpAddr, ingress: u32, strict: bool) -> bool {
        let Some(route) = self.route(src) else {
            return false;
        };
        if let MirrorRoute::Group(g) = route {
            if self
                .groups
                .get(&g)
                .is_none_or(|g| g.blackhole || g.paths.is_empty())
            {
                return false;
            }
        }
        let devs: Vec<u32> = self
            .paths(route)
            .iter()
            .filter_map(|id| self.nexthops.get(id).map(|nh| nh.ifindex))
            .collect();
        !devs.is_empty() && (!strict || devs.contains(&ingress))
    }

    pub fn src_rule(&self, addr: IpAddr) -> bool {
        self.src_rules.iter().any(|p| p.contains_addr(addr))
    }
}

impl KernelModel {
    pub fn route(&self, addr: IpAddr) -> Option<&KernelRoute> {
        if self.locals.contains(&addr) {
            return None;
        }
        longest(&self.routes, addr)
    }

    pub fn hops(&self, dst: IpAddr) -> Vec<Hop> {
        let Some(KernelRoute::Via(paths)) = self.route(dst) else {
            return Vec::new();
        };
        paths
            .iter()
            .filter_map(|(dev, gw)| {
                let mac = self.neigh.get(&(*dev, gw.unwrap_or(dst)))?;
                Some((*dev, *mac))
            })
            .collect()
    }

    pub fn blackholes(&self, dst: IpAddr) -> bool {
        self.route(dst) == Some(&KernelRoute::Blackhole)
    }

    pub fn source_ok(&self, src: IpAddr, ingress: u32, strict: bool) -> bool {
        match self.route(src) {
            Some(KernelRoute::Via(paths)) => !strict || paths.iter().any(|(d, _)| *d == ingress),
            _ => false,
        }
    }
}
