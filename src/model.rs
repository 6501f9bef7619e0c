//! The kernel's forwarding state as accel understands it, independent of
//! netlink encoding and of BPF map layout.

use std::fmt;
use std::net::IpAddr;

pub use netlink_packet_route::neighbour::NeighbourState;
pub use netlink_packet_route::route::RouteNextHopFlags as NhFlags;
pub use netlink_packet_route::route::RouteProtocol;
pub use netlink_packet_route::rule::RuleAction;

pub const TABLE_LOCAL: u32 = 255;
pub const TABLE_MAIN: u32 = 254;
pub const TABLE_DEFAULT: u32 = 253;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn max_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// A destination prefix with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Builds a prefix, clearing host bits; `None` if `len` is too long.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        let addr = match addr {
            IpAddr::V4(a) => {
                if len > 32 {
                    return None;
                }
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                if len > 128 {
                    return None;
                }
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Some(Prefix { addr, len })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Inside IPv6 multicast (ff00::/8) or link-local unicast (fe80::/10):
    /// routes no lookup of the datapath's reaches, as it hands every packet
    /// to or from them to the kernel first (`ipv6_special` in
    /// src/bpf/parse.h), and a longest match for any other address cannot
    /// end in them. Every IPv6 interface has such routes of its own
    /// with keys it shares with the others (fe80::/64, ff00::/8, the
    /// anycast fe80::/128), so their removal would say nothing exact.
    pub fn is_link_scoped(&self) -> bool {
        let IpAddr::V6(a) = self.addr else {
            return false;
        };
        let top = a.segments()[0];
        (self.len >= 8 && top >> 8 == 0xff) || (self.len >= 10 && top & 0xffc0 == 0xfe80)
    }

    /// True when `other` lies inside this prefix (or equals it).
    pub fn contains(&self, other: &Prefix) -> bool {
        if self.family() != other.family() || other.len < self.len {
            return false;
        }
        Prefix::new(other.addr, self.len).map(|p| p.addr) == Some(self.addr)
    }

    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        let max = Family::of(&addr).max_len();
        Prefix::new(addr, max).is_some_and(|host| self.contains(&host))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// rtm_type of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    Unicast,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Other(u8),
}

/// A route's paths: one for almost every route, kept inline (no
/// allocation per route event).
pub type NextHops = smallvec::SmallVec<[NextHop; 1]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
    /// RTNH_F_* flags (onlink, dead, linkdown...).
    pub flags: NhFlags,
    /// 1-based weight as the kernel reports it (rtnh_hops + 1).
    pub weight: u16,
}

/// What identifies a route in the kernel: two routes with the same key
/// cannot coexist; a NewRoute with an existing key replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub table: u32,
    pub prefix: Prefix,
    pub tos: u8,
    pub metric: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub key: RouteKey,
    pub kind: RouteKind,
    pub protocol: RouteProtocol,
    /// Empty for routes without a next hop (blackhole, local, ...).
    pub nexthops: NextHops,
    /// RTA_NH_ID: the route uses a nexthop object.
    pub nhid: Option<u32>,
    /// RTAX_MTU from RTA_METRICS.
    pub mtu: Option<u32>,
    /// Source prefix length (RTA_SRC / rtm_src_len, IPv6 subtrees).
    pub src_len: u8,
    /// RTA_ENCAP / lightweight tunnel present.
    pub encap: bool,
    /// The route expires (IPv6: a nonzero rta_expires in RTA_CACHEINFO,
    /// or RTA_EXPIRES): RA-learned routes, `ip -6 route add ... expires`.
    pub expires: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// IFF_UP
    pub admin_up: bool,
    /// IFF_LOWER_UP (carrier)
    pub carrier: bool,
    /// IFF_RUNNING (up and operationally up: RFC 2863 operstate up or
    /// unknown)
    pub running: bool,
    /// The device's own ignore_routes_with_linkdown, IPv4 or IPv6, as the
    /// link message carries it (IPv4's "all" is not in it).
    pub ignores_linkdown: bool,
    /// IFLA_CARRIER_DOWN_COUNT: how many times the carrier went (0 where
    /// the kernel does not say). A carrier lost and back between two link
    /// messages shows only here.
    pub carrier_downs: u32,
    /// IFLA_OPERSTATE dormant (carrier, but waiting: 802.1X). Else a link
    /// with carrier that is not running had its operstate set by
    /// linkwatch for a carrier loss (or is in a self-test).
    pub dormant: bool,
    /// IFLA_INFO_KIND, e.g. "veth", "bridge".
    pub kind: Option<String>,
    /// IFLA_MASTER: the bridge, bond, team or VRF device this one is a
    /// port of.
    pub master: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub mac: Option<[u8; 6]>,
    pub state: NeighbourState,
}

impl Neighbour {
    /// The MAC a forwarded packet may be sent to, if the entry is usable.
    pub fn usable_mac(&self) -> Option<[u8; 6]> {
        // NUD_VALID: the states in which the kernel transmits to the
        // cached address, exactly the set bpf_fib_lookup accepts.
        use NeighbourState as S;
        if matches!(
            self.state,
            S::Permanent | S::Noarp | S::Reachable | S::Probe | S::Stale | S::Delay
        ) {
            self.mac
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub family: Family,
    pub priority: u32,
    pub table: u32,
    /// What the rule does (to a table, blackhole, goto...).
    pub action: RuleAction,
    /// Any selector besides "from all": src/dst prefix, iif, oif, fwmark,
    /// tos, ports, protocol, uid range, l3mdev, not-flag...
    pub has_selectors: bool,
    /// The source prefix, when it is the rule's only selector: such rules
    /// are mirrored (packets from the prefix go to bpf_fib_lookup).
    pub src_only: Option<Prefix>,
    /// The input interface, when it is the rule's only selector: such
    /// rules are mirrored too (packets arriving there go to
    /// bpf_fib_lookup).
    pub iif_only: Option<String>,
}

impl Rule {
    /// True for the rules the kernel creates in every namespace.
    pub fn is_default(&self) -> bool {
        if self.has_selectors || self.action != RuleAction::ToTable {
            return false;
        }
        matches!(
            (self.family, self.priority, self.table),
            (_, 0, TABLE_LOCAL) | (_, 32766, TABLE_MAIN) | (Family::V4, 32767, TABLE_DEFAULT)
        )
    }
}

/// How a group spreads flows over its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// Hash-threshold multipath, as plain multipath routes.
    Multipath,
    /// Resilient (bucket table): member choice is kernel state accel
    /// cannot reproduce.
    Resilient,
    Other(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NexthopObject {
    Single {
        id: u32,
        ifindex: Option<u32>,
        gateway: Option<IpAddr>,
        blackhole: bool,
        /// RTNH_F_* (onlink, dead, linkdown).
        flags: NhFlags,
        /// Encapsulation or FDB nexthops: not plain forwarding.
        special: bool,
    },
    Group {
        id: u32,
        kind: GroupKind,
        /// (member id, weight 1..=65536).
        members: Vec<(u32, u32)>,
    },
}

impl NexthopObject {
    pub fn id(&self) -> u32 {
        match self {
            NexthopObject::Single { id, .. } | NexthopObject::Group { id, .. } => *id,
        }
    }
}

/// How a route was added (not replacing one): beside others with its key,
/// after or before them, or, as the kernel's NLM_F_EXCL says, alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAdd {
    Append,
    Prepend,
    /// No other route had its key: any the mirror holds for it is stale
    /// (an event replayed onto a dump that already holds its route).
    Alone,
}

/// One change reported by the kernel.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A route added exclusively or replacing the one with its key.
    NewRoute(Route),
    /// A route added, not replacing one: alone with its key, or beside
    /// those with it (`ip route append/prepend`). IPv6 gateway routes join
    /// the existing ones as multipath; otherwise two routes with one key
    /// now coexist.
    AddRoute(Route, RouteAdd),
    DelRoute(Route),
    NewLink(Link),
    DelLink(u32),
    NewAddr(Addr),
    DelAddr(Addr),
    NewNeigh(Neighbour),
    DelNeigh(Neighbour),
    /// A rule was added or removed: rules are few, so they are re-read.
    RulesChanged,
    /// A per-interface setting the kernel announces changed (netconf:
    /// forwarding, rp_filter): the sysctls are re-read at once rather
    /// than at the next poll, so that no rp_filter drop outlives the
    /// setting that made it.
    NetconfChanged,
    /// A nexthop object was added or replaced.
    NewNexthop(NexthopObject),
    /// A nexthop object was deleted (by id).
    DelNexthop(u32),
    /// The socket overflowed: events were lost and a full resync is due.
    Overrun,
}

impl Event {
    /// The prefix of a route notification.
    pub fn route_prefix(&self) -> Option<&Prefix> {
        self.route().map(|r| &r.key.prefix)
    }

    /// The route a route notification is about.
    pub fn route(&self) -> Option<&Route> {
        match self {
            Event::NewRoute(r) | Event::AddRoute(r, _) | Event::DelRoute(r) => Some(r),
            _ => None,
        }
    }

    /// A route notification (the others carry interface, address,
    /// neighbour, rule and nexthop-object state).
    pub fn is_route(&self) -> bool {
        matches!(
            self,
            Event::NewRoute(_) | Event::AddRoute(..) | Event::DelRoute(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
    }

    #[test]
    fn prefix_clears_host_bits() {
        assert_eq!(p("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(p("1.2.3.4/0").to_string(), "0.0.0.0/0");
        assert!(Prefix::new("1.2.3.4".parse().unwrap(), 33).is_none());
    }

    #[test]
    fn prefix_containment() {
        assert!(p("10.0.0.0/8").contains(&p("10.1.0.0/16")));
        assert!(p("10.0.0.0/8").contains(&p("10.0.0.0/8")));
        assert!(!p("10.1.0.0/16").contains(&p("10.0.0.0/8")));
        assert!(!p("10.0.0.0/8").contains(&p("11.0.0.0/16")));
        assert!(!p("0.0.0.0/0").contains(&p("::/0")));
        assert!(p("0.0.0.0/0").contains_addr("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn default_rules_are_recognised() {
        let r = |family, priority, table| Rule {
            family,
            priority,
            table,
            action: RuleAction::ToTable,
            has_selectors: false,
            src_only: None,
            iif_only: None,
        };
        assert!(r(Family::V4, 0, TABLE_LOCAL).is_default());
        assert!(r(Family::V4, 32767, TABLE_DEFAULT).is_default());
        assert!(!r(Family::V6, 32767, TABLE_DEFAULT).is_default());
        assert!(!r(Family::V4, 100, 10).is_default());
        let mut sel = r(Family::V4, 32766, TABLE_MAIN);
        sel.has_selectors = true;
        assert!(!sel.is_default());
    }
}

/// Everything accel mirrors, as read by one full dump (the routes of a
/// large table may be streamed into the mirror instead: then `routes` is
/// empty).
#[derive(Debug, Clone, Default)]
pub struct KernelState {
    pub links: Vec<Link>,
    pub addrs: Vec<Addr>,
    pub routes: Vec<Route>,
    pub neighbours: Vec<Neighbour>,
    pub rules: Vec<Rule>,
    pub nexthops: Vec<NexthopObject>,
}
