//! Pure conversions from netlink-packet-route 0.34 messages to [`crate::model`]
//! types. Every function returns `None` for messages accel does not mirror
//! (other address families, cloned routes, bridge link messages...).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{Nla, ParseableParametrized};

use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{
        AfSpecInet, AfSpecInet6, AfSpecUnspec, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType,
        LinkMessage, State,
    },
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage},
    route::{
        RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteLwEnCapType, RouteMessage,
        RouteMetric, RouteType, RouteVia,
    },
    rule::{RuleAttribute, RuleFlags, RuleMessage},
    AddressFamily,
};

use super::attrs::attrs;
use crate::model::{self, Family, NextHop, NextHops, NhFlags, Prefix, RouteKey, RouteKind};

/// FRA_PAD: padding attribute the kernel may put in rule messages.
const FRA_PAD: u16 = 18;

fn family(f: AddressFamily) -> Option<Family> {
    match f {
        AddressFamily::Inet => Some(Family::V4),
        AddressFamily::Inet6 => Some(Family::V6),
        _ => None,
    }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn via_addr(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn mac6(bytes: &[u8]) -> Option<[u8; 6]> {
    <[u8; 6]>::try_from(bytes).ok()
}

fn route_kind(k: RouteType) -> RouteKind {
    match k {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::Local => RouteKind::Local,
        RouteType::Broadcast => RouteKind::Broadcast,
        RouteType::Anycast => RouteKind::Anycast,
        RouteType::Multicast => RouteKind::Multicast,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
        RouteType::Throw => RouteKind::Throw,
        other => RouteKind::Other(u8::from(other)),
    }
}

/// Gateway of a next hop: RTA_GATEWAY, or RTA_VIA (RFC 5549: IPv4 route
/// through an IPv6 gateway).
fn gateway_of(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => route_addr(g),
        RouteAttribute::Via(v) => via_addr(v),
        _ => None,
    })
}

fn has_encap(attrs: &[RouteAttribute]) -> bool {
    attrs
        .iter()
        .any(|a| matches!(a, RouteAttribute::Encap(_) | RouteAttribute::EncapType(_)))
}

/// RTM_NEWROUTE / RTM_DELROUTE -> [`model::Route`], for the mirror: `None`
/// also for the routes it does not mirror (see [`mirrored`]).
pub fn route(msg: &RouteMessage) -> Option<model::Route> {
    route_any(msg).filter(mirrored)
}

/// [`route`] whatever its prefix: the kernel's answer to `accel lookup`.
pub fn route_any(msg: &RouteMessage) -> Option<model::Route> {
    let mut f = RouteFields::new(&msg.header)?;
    for a in &msg.attributes {
        f.take(a);
    }
    f.finish(&msg.header)
}

/// Not IPv6 link-local or multicast ([`Prefix::is_link_scoped`]): no
/// lookup of the datapath's ever reaches those.
fn mirrored(r: &model::Route) -> bool {
    !r.key.prefix.is_link_scoped()
}

/// Route attribute types (`enum rtattr_type_t`, include/uapi/linux/
/// rtnetlink.h); libc lacks the newer ones.
mod rta {
    pub const DST: u16 = 1;
    pub const OIF: u16 = 4;
    pub const GATEWAY: u16 = 5;
    pub const PRIORITY: u16 = 6;
    pub const METRICS: u16 = 8;
    pub const MULTIPATH: u16 = 9;
    pub const TABLE: u16 = 15;
    pub const CACHEINFO: u16 = 12;
    pub const VIA: u16 = 18;
    pub const ENCAP_TYPE: u16 = 21;
    pub const ENCAP: u16 = 22;
    pub const EXPIRES: u16 = 23;
    pub const NH_ID: u16 = 30;
}

/// [`route`] straight from an RTM_NEWROUTE/RTM_DELROUTE payload, one
/// attribute at a time: the event path parses a million of these for a
/// full table, and a `RouteMessage` would collect every attribute into a
/// vector (after a first pass for the encapsulation type) only to be
/// read once. Encapsulation is only noted, not parsed.
pub fn route_payload(payload: &[u8]) -> Option<model::Route> {
    const ROUTE_HEADER_LEN: usize = 12;
    let h = RouteHeader::parse(payload).ok()?;
    let mut f = RouteFields::new(&h)?;
    for a in attrs(payload.get(ROUTE_HEADER_LEN..)?) {
        let a = a.ok()?;
        if a.kind == rta::ENCAP || a.kind == rta::ENCAP_TYPE {
            f.encap = true;
            continue;
        }
        // Every attribute the kernel sends would otherwise be parsed into
        // its typed form and dropped: IPv6 cache info and preference,
        // protocol info, preferred source. At a full-table burst that was
        // about 5% of accel's CPU.
        if !RouteFields::TAKEN.contains(&a.kind) || f.take_fixed(a.kind, a.value) {
            continue;
        }
        let param = (h.address_family, h.kind, RouteLwEnCapType::None);
        match RouteAttribute::parse_with_param(&a.buffer(), param) {
            Ok(a) => f.take(&a),
            // What the library cannot parse, it cannot have been needed
            // for: the full parse would have failed the whole message.
            Err(_) => return None,
        }
    }
    f.finish(&h).filter(mirrored)
}

/// The attributes of a route message that the mirror uses, gathered one
/// by one.
struct RouteFields {
    fam: Family,
    table: u32,
    dst: Option<IpAddr>,
    metric: u32,
    oif: Option<u32>,
    gateway: Option<IpAddr>,
    multipath: Option<NextHops>,
    nhid: Option<u32>,
    mtu: Option<u32>,
    encap: bool,
    expires: bool,
}

impl RouteFields {
    /// The attributes [`RouteFields::take`] uses.
    const TAKEN: [u16; 11] = [
        rta::DST,
        rta::OIF,
        rta::GATEWAY,
        rta::PRIORITY,
        rta::METRICS,
        rta::MULTIPATH,
        rta::TABLE,
        rta::VIA,
        rta::NH_ID,
        rta::CACHEINFO,
        rta::EXPIRES,
    ];

    /// `None` for messages the mirror never takes (other families, routes
    /// cloned into the cache).
    fn new(h: &RouteHeader) -> Option<Self> {
        let fam = family(h.address_family)?;
        if h.flags.contains(RouteFlags::Cloned) {
            return None;
        }
        Some(RouteFields {
            fam,
            table: u32::from(h.table),
            dst: None,
            metric: 0,
            oif: None,
            gateway: None,
            multipath: None,
            nhid: None,
            mtu: None,
            encap: false,
            expires: false,
        })
    }

    /// The fixed-size attributes every route event carries (RTA_DST,
    /// RTA_GATEWAY, RTA_OIF, RTA_PRIORITY, RTA_TABLE, RTA_NH_ID, and IPv6's
    /// RTA_CACHEINFO), read in
    /// place; false for the others and for sizes the kernel does not
    /// send, which go to the library (and fail there as before). Its typed parse built and
    /// dropped a `RouteAttribute` for each: about 4% of accel's CPU while
    /// a full table streams in.
    fn take_fixed(&mut self, kind: u16, v: &[u8]) -> bool {
        // Attributes are in host byte order, addresses in network order.
        match kind {
            rta::DST | rta::GATEWAY => {
                let addr = match self.fam {
                    Family::V4 => <[u8; 4]>::try_from(v).map(|a| IpAddr::V4(a.into())).ok(),
                    Family::V6 => <[u8; 16]>::try_from(v).map(|a| IpAddr::V6(a.into())).ok(),
                };
                let Some(a) = addr else {
                    return false;
                };
                if kind == rta::DST {
                    self.dst = Some(a);
                } else if self.gateway.is_none() {
                    // The first gateway (or via) counts, as in take().
                    self.gateway = Some(a);
                }
            }
            rta::OIF | rta::PRIORITY | rta::TABLE | rta::NH_ID => {
                let Ok(w) = <[u8; 4]>::try_from(v).map(u32::from_ne_bytes) else {
                    return false;
                };
                match kind {
                    rta::OIF => self.oif = Some(w),
                    rta::PRIORITY => self.metric = w,
                    rta::TABLE => self.table = w,
                    _ => self.nhid = Some(w),
                }
            }
            // struct rta_cacheinfo: rta_expires is the third u32, in
            // clock ticks, 0 when the route does not expire (negative once
            // it has: rt6_fill_node -> rtnl_put_cacheinfo). Every IPv6
            // route carries one; read in place, not parsed.
            rta::CACHEINFO => {
                if let Some(e) = v.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                    self.expires |= i32::from_ne_bytes(e) != 0;
                }
            }
            // Only its presence counts (the kernel takes it on input).
            rta::EXPIRES => self.expires = true,
            _ => return false,
        }
        true
    }

    fn take(&mut self, a: &RouteAttribute) {
        match a {
            RouteAttribute::Table(t) => self.table = *t,
            RouteAttribute::Destination(d) => self.dst = route_addr(d),
            RouteAttribute::Priority(p) => self.metric = *p,
            RouteAttribute::Oif(i) => self.oif = Some(*i),
            RouteAttribute::Gateway(_) | RouteAttribute::Via(_) if self.gateway.is_none() => {
                self.gateway = gateway_of(std::slice::from_ref(a))
            }
            RouteAttribute::MultiPath(hops) => {
                self.multipath = Some(
                    hops.iter()
                        .map(|nh| {
                            self.encap |= has_encap(&nh.attributes);
                            NextHop {
                                ifindex: nh.interface_index,
                                gateway: gateway_of(&nh.attributes),
                                flags: nh.flags,
                                weight: u16::from(nh.hops) + 1,
                            }
                        })
                        .collect(),
                )
            }
            RouteAttribute::NhId(id) => self.nhid = Some(*id),
            RouteAttribute::Metrics(ms) => {
                for m in ms {
                    if let RouteMetric::Mtu(v) = m {
                        self.mtu = Some(*v);
                    }
                }
            }
            RouteAttribute::Encap(_) | RouteAttribute::EncapType(_) => self.encap = true,
            RouteAttribute::CacheInfo(ci) => self.expires |= ci.expires != 0,
            RouteAttribute::Expires(_) | RouteAttribute::MulticastExpires(_) => self.expires = true,
            _ => {}
        }
    }

    fn finish(self, h: &RouteHeader) -> Option<model::Route> {
        let dst = self.dst.unwrap_or(match self.fam {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        if Family::of(&dst) != self.fam {
            return None;
        }
        let prefix = Prefix::new(dst, h.destination_prefix_length)?;
        let nexthops = match self.multipath {
            Some(hops) => hops,
            None if self.oif.is_some() || self.gateway.is_some() => smallvec::smallvec![NextHop {
                ifindex: self.oif.unwrap_or(0),
                gateway: self.gateway,
                // RTNH_F_* live in the low byte of rtm_flags
                // (rt_nexthop_info / fib_nexthop_info).
                flags: NhFlags::from_bits_retain(h.flags.bits() as u8),
                weight: 1,
            }],
            None => NextHops::new(),
        };
        Some(model::Route {
            key: RouteKey {
                table: self.table,
                prefix,
                tos: h.tos,
                metric: self.metric,
            },
            kind: route_kind(h.kind),
            protocol: h.protocol,
            nexthops,
            nhid: self.nhid,
            mtu: self.mtu,
            src_len: h.source_prefix_length,
            encap: self.encap,
            expires: self.expires,
        })
    }
}

/// RTM_NEWLINK / RTM_DELLINK -> [`model::Link`]. Only AF_UNSPEC messages
/// describe a device; AF_BRIDGE ones (bridge port notifications, which the
/// bridge also sends as RTM_DELLINK when a port leaves) are ignored.
pub fn link(msg: &LinkMessage) -> Option<model::Link> {
    let h = &msg.header;
    if h.interface_family != AddressFamily::Unspec || h.index == 0 {
        return None;
    }
    let mut l = model::Link {
        ifindex: h.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        admin_up: h.flags.contains(LinkFlags::Up),
        carrier: h.flags.contains(LinkFlags::LowerUp),
        running: h.flags.contains(LinkFlags::Running),
        ignores_linkdown: false,
        carrier_downs: 0,
        dormant: false,
        kind: None,
        master: None,
    };
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            // Only Ethernet addresses: loopback and tun devices report
            // zeros or nothing, and no frame can be forwarded to them.
            LinkAttribute::Address(mac) if h.link_layer_type == LinkLayerType::Ether => {
                l.mac = mac6(mac)
            }
            LinkAttribute::Mtu(m) => l.mtu = *m,
            LinkAttribute::Controller(i) if *i != 0 => l.master = Some(*i),
            LinkAttribute::CarrierDownCount(n) => l.carrier_downs = *n,
            LinkAttribute::OperState(st) => l.dormant = *st == State::Dormant,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(k.to_string());
                    }
                }
            }
            LinkAttribute::AfSpecUnspec(specs) => l.ignores_linkdown = ignores_linkdown(specs),
            _ => {}
        }
    }
    Some(l)
}

/// The device's own ignore_routes_with_linkdown, IPv4 or IPv6, as the
/// kernel reports it with the link (IFLA_INET_CONF, IFLA_INET6_CONF).
fn ignores_linkdown(specs: &[AfSpecUnspec]) -> bool {
    specs.iter().any(|s| match s {
        AfSpecUnspec::Inet(v) => v
            .iter()
            .any(|a| matches!(a, AfSpecInet::DevConf(c) if c.ignore_routes_with_linkdown != 0)),
        AfSpecUnspec::Inet6(v) => v
            .iter()
            .any(|a| matches!(a, AfSpecInet6::DevConf(c) if c.ignore_routes_with_linkdown != 0)),
        _ => false,
    })
}

/// RTM_NEWADDR / RTM_DELADDR -> [`model::Addr`]. IPv4 uses IFA_LOCAL (the
/// interface's own address; IFA_ADDRESS is the peer on point-to-point links),
/// IPv6 uses IFA_ADDRESS.
pub fn addr(msg: &AddressMessage) -> Option<model::Addr> {
    let h = &msg.header;
    let fam = family(h.family)?;
    let mut address = None;
    let mut local = None;
    for a in &msg.attributes {
        match a {
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Local(ip) => local = Some(*ip),
            _ => {}
        }
    }
    let ip = match fam {
        Family::V4 => local.or(address),
        Family::V6 => address.or(local),
    }?;
    if Family::of(&ip) != fam || h.prefix_len > fam.max_len() {
        return None;
    }
    Some(model::Addr {
        ifindex: h.index,
        addr: ip,
        prefix_len: h.prefix_len,
    })
}

/// RTM_NEWNEIGH / RTM_DELNEIGH -> [`model::Neighbour`]. IPv4/IPv6 only
/// (bridge FDB entries are AF_BRIDGE); proxy entries are ignored.
pub fn neighbour(msg: &NeighbourMessage) -> Option<model::Neighbour> {
    let h = &msg.header;
    let fam = family(h.family)?;
    if h.flags.contains(NeighbourFlags::Proxy) {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for a in &msg.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(ll) => mac = mac6(ll),
            _ => {}
        }
    }
    let ip = ip?;
    // Multicast entries (NOARP, e.g. ff02::16) appear with no RTM_NEWNEIGH, and are never next hops.
    if Family::of(&ip) != fam || ip.is_multicast() {
        return None;
    }
    Some(model::Neighbour {
        ifindex: h.ifindex,
        addr: ip,
        mac,
        state: h.state,
    })
}

/// RTM_NEWRULE / RTM_DELRULE -> [`model::Rule`].
pub fn rule(msg: &RuleMessage) -> Option<model::Rule> {
    let h = &msg.header;
    let fam = family(h.family)?;
    let mut priority = 0;
    let mut table = u32::from(h.table);
    let mut other_selectors = h.dst_len > 0 || h.tos != 0 || h.flags.contains(RuleFlags::Invert);
    let mut src = None;
    let mut iif = None;
    for a in &msg.attributes {
        match a {
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Table(t) => table = *t,
            // Who installed the rule: not a selector.
            RuleAttribute::Protocol(_) => {}
            RuleAttribute::Other(nla) if nla.kind() == FRA_PAD => {}
            // FRA_FWMARK/FWMASK are only sent when a mark is set; a
            // suppress_* attribute only when it is not the -1 default.
            RuleAttribute::SuppressPrefixLen(v) | RuleAttribute::SuppressIfGroup(v)
                if *v == u32::MAX => {}
            RuleAttribute::FwMark(0) | RuleAttribute::FwMask(0) => {}
            RuleAttribute::L3MDev(false) => {}
            RuleAttribute::Source(a) => src = Some(*a),
            RuleAttribute::Iifname(name) => iif = Some(name.clone()),
            // dst with length 0 is covered by the header length.
            RuleAttribute::Destination(_) => {}
            // Everything else (iif/oif names, fwmark, ports, ip proto, uid
            // range, l3mdev, suppress_*, goto, realm, tun_id, and attributes
            // this crate does not know, e.g. FRA_DSCP / FRA_FLOWLABEL) selects.
            _ => other_selectors = true,
        }
    }
    let src_prefix = match src {
        Some(a) if h.src_len > 0 => Prefix::new(a, h.src_len),
        _ => None,
    };
    if h.src_len > 0 && src_prefix.is_none() {
        other_selectors = true;
    }
    Some(model::Rule {
        family: fam,
        priority,
        table,
        action: h.action,
        has_selectors: other_selectors || h.src_len > 0 || iif.is_some(),
        src_only: src_prefix.filter(|_| !other_selectors && iif.is_none()),
        iif_only: iif.filter(|_| !other_selectors && h.src_len == 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::DefaultNla;
    use netlink_packet_route::{
        link::InfoKind,
        neighbour::NeighbourState,
        route::{RouteLwEnCapType, RouteNextHop, RouteNextHopFlags, RouteProtocol},
        rule::{RuleAction, RuleUidRange},
    };

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn pfx(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
    }

    /// Parses `m` both ways, from the message and from its bytes (as the
    /// event path does), and checks they agree.
    fn both(m: &RouteMessage) -> Option<model::Route> {
        use netlink_packet_core::Emitable;
        let mut bytes = vec![0u8; m.buffer_len()];
        m.emit(&mut bytes);
        let whole = route(m);
        assert_eq!(
            route_payload(&bytes),
            whole,
            "payload parse differs for {m:?}"
        );
        whole
    }

    fn route_msg(fam: AddressFamily, dst_len: u8, attrs: Vec<RouteAttribute>) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = fam;
        m.header.destination_prefix_length = dst_len;
        m.header.table = 254;
        m.header.protocol = RouteProtocol::Static;
        m.header.kind = RouteType::Unicast;
        m.attributes = attrs;
        m
    }

    fn nh(ifindex: u32, hops: u8, attrs: Vec<RouteAttribute>) -> RouteNextHop {
        let mut n = RouteNextHop::default();
        n.interface_index = ifindex;
        n.hops = hops;
        n.attributes = attrs;
        n
    }

    /// A route message's bytes: an IPv4 /24 in main, then `attrs` as
    /// (type, payload) NLAs.
    fn raw_route(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
        // type, flags (u32).
        let mut b = vec![2, 24, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0];
        for (kind, v) in attrs {
            b.extend_from_slice(&(4 + v.len() as u16).to_ne_bytes());
            b.extend_from_slice(&kind.to_ne_bytes());
            b.extend_from_slice(v);
            b.resize(b.len().next_multiple_of(4), 0);
        }
        b
    }

    #[test]
    fn fixed_size_attributes_are_read_in_place() {
        let r = route_payload(&raw_route(&[
            (rta::DST, &[10, 1, 2, 0]),
            (rta::OIF, &7u32.to_ne_bytes()),
            (rta::GATEWAY, &[192, 0, 2, 1]),
            (rta::PRIORITY, &20u32.to_ne_bytes()),
            (rta::TABLE, &1000u32.to_ne_bytes()),
            (rta::NH_ID, &9u32.to_ne_bytes()),
        ]))
        .unwrap();
        assert_eq!(r.key.prefix, pfx("10.1.2.0/24"));
        assert_eq!((r.key.table, r.key.metric, r.nhid), (1000, 20, Some(9)));
        assert_eq!(r.nexthops[0].ifindex, 7);
        assert_eq!(r.nexthops[0].gateway, Some(IpAddr::V4(v4("192.0.2.1"))));
    }

    /// Every IPv6 interface's own fe80::/64, its anycast fe80::/128 and
    /// ff00::/8 (local table) are not mirrored; fe80::/9 covers more than
    /// link-local addresses and is.
    #[test]
    fn ipv6_link_local_and_multicast_prefixes_are_not_taken() {
        let dev = |dst: &str, len: u8, table: u8| {
            let mut m = route_msg(
                AddressFamily::Inet6,
                len,
                vec![
                    RouteAttribute::Destination(RouteAddress::Inet6(v6(dst))),
                    RouteAttribute::Oif(3),
                ],
            );
            m.header.table = table;
            m
        };
        for (dst, len, table) in [
            ("fe80::", 64, 254),
            ("fe80::", 128, 255),
            ("fe80::1", 128, 255),
            ("febf::", 16, 254),
            ("ff00::", 8, 255),
            ("ff02::1", 128, 254),
        ] {
            assert_eq!(both(&dev(dst, len, table)), None, "{dst}/{len}");
        }
        for (dst, len) in [("fe80::", 9), ("fe00::", 7), ("fec0::", 10), ("::", 0)] {
            assert!(both(&dev(dst, len, 254)).is_some(), "{dst}/{len}");
        }
    }

    #[test]
    fn odd_sized_fixed_attributes_are_refused_as_the_library_would() {
        // An RTA_OIF of 3 bytes, an IPv4 RTA_DST of 16: not read in place,
        // and the library refuses them, so the message is not taken.
        assert_eq!(route_payload(&raw_route(&[(rta::OIF, &[7, 0, 0])])), None);
        assert_eq!(route_payload(&raw_route(&[(rta::DST, &[0; 16])])), None);
    }

    #[test]
    fn route_single_gateway() {
        let m = route_msg(
            AddressFamily::Inet,
            24,
            vec![
                RouteAttribute::Table(254),
                RouteAttribute::Destination(RouteAddress::Inet(v4("10.1.2.0"))),
                RouteAttribute::Priority(20),
                RouteAttribute::Gateway(RouteAddress::Inet(v4("192.0.2.1"))),
                RouteAttribute::Oif(3),
            ],
        );
        let r = both(&m).unwrap();
        assert_eq!(
            r.key,
            RouteKey {
                table: 254,
                prefix: pfx("10.1.2.0/24"),
                tos: 0,
                metric: 20
            }
        );
        assert_eq!(r.kind, RouteKind::Unicast);
        assert_eq!(r.protocol, RouteProtocol::Static);
        assert_eq!(
            r.nexthops.to_vec(),
            vec![NextHop {
                ifindex: 3,
                gateway: Some("192.0.2.1".parse().unwrap()),
                flags: NhFlags::empty(),
                weight: 1
            }]
        );
        assert_eq!((r.nhid, r.mtu, r.src_len, r.encap), (None, None, 0, false));
    }

    /// The event path skips what the mirror does not use (IPv6 routes
    /// carry cache info and a preference in every notification) and
    /// still reads the same route as the full parse.
    #[test]
    fn route_attributes_not_taken_are_skipped_alike() {
        let m = route_msg(
            AddressFamily::Inet6,
            48,
            vec![
                RouteAttribute::Destination(RouteAddress::Inet6(v6("2001:db8:1::"))),
                RouteAttribute::CacheInfo(
                    netlink_packet_route::route::RouteCacheInfo::parse(&[0; 32]).unwrap(),
                ),
                RouteAttribute::Preference(netlink_packet_route::route::RoutePreference::Medium),
                RouteAttribute::PrefSource(RouteAddress::Inet6(v6("2001:db8::1"))),
                RouteAttribute::Priority(1024),
                RouteAttribute::NhId(7),
            ],
        );
        let r = both(&m).unwrap();
        assert_eq!(r.key.prefix, pfx("2001:db8:1::/48"));
        assert_eq!(r.key.metric, 1024);
        assert!(!r.expires);
    }

    /// An IPv6 route that expires says so in its cache info (rta_expires,
    /// negative once past), in the dump and in events alike; RTA_EXPIRES
    /// counts too.
    #[test]
    fn routes_that_expire_are_seen_both_ways() {
        for ticks in [180_000i32, -5] {
            let mut info = [0u8; 32];
            info[8..12].copy_from_slice(&ticks.to_ne_bytes());
            let m = route_msg(
                AddressFamily::Inet6,
                0,
                vec![
                    RouteAttribute::CacheInfo(
                        netlink_packet_route::route::RouteCacheInfo::parse(&info).unwrap(),
                    ),
                    RouteAttribute::Gateway(RouteAddress::Inet6(v6("fe80::1"))),
                    RouteAttribute::Oif(3),
                ],
            );
            assert!(both(&m).unwrap().expires, "rta_expires {ticks}");
        }
        let r = route_payload(&raw_route(&[(rta::EXPIRES, &600u32.to_ne_bytes())])).unwrap();
        assert!(r.expires);
        let r = route_payload(&raw_route(&[(rta::CACHEINFO, &[0; 32])])).unwrap();
        assert!(!r.expires);
    }

    #[test]
    fn route_missing_destination_is_default() {
        let m = route_msg(AddressFamily::Inet, 0, vec![RouteAttribute::Oif(2)]);
        let r = both(&m).unwrap();
        assert_eq!(r.key.prefix, pfx("0.0.0.0/0"));
        assert_eq!(r.key.metric, 0);
        assert_eq!(r.nexthops[0].gateway, None);
        let m = route_msg(
            AddressFamily::Inet6,
            0,
            vec![RouteAttribute::Priority(1024)],
        );
        let r = both(&m).unwrap();
        assert_eq!(r.key.prefix, pfx("::/0"));
        assert_eq!(r.key.metric, 1024);
        assert!(r.nexthops.is_empty());
    }

    #[test]
    fn route_table_attribute_wins_over_header() {
        let mut m = route_msg(AddressFamily::Inet, 32, vec![RouteAttribute::Table(1000)]);
        m.header.table = 252; // RT_TABLE_COMPAT
        assert_eq!(both(&m).unwrap().key.table, 1000);
        m.attributes.clear();
        m.header.table = 100;
        assert_eq!(both(&m).unwrap().key.table, 100);
    }

    #[test]
    fn route_multipath() {
        let mut second = nh(
            5,
            2,
            vec![RouteAttribute::Gateway(RouteAddress::Inet6(v6("fe80::2")))],
        );
        second.flags = RouteNextHopFlags::Onlink | RouteNextHopFlags::Linkdown;
        let m = route_msg(
            AddressFamily::Inet6,
            48,
            vec![
                RouteAttribute::Destination(RouteAddress::Inet6(v6("2001:db8:1::"))),
                RouteAttribute::Priority(1024),
                RouteAttribute::MultiPath(vec![
                    nh(
                        4,
                        0,
                        vec![RouteAttribute::Gateway(RouteAddress::Inet6(v6("fe80::1")))],
                    ),
                    second,
                ]),
            ],
        );
        let r = both(&m).unwrap();
        assert_eq!(r.key.prefix, pfx("2001:db8:1::/48"));
        assert_eq!(
            r.nexthops.to_vec(),
            vec![
                NextHop {
                    ifindex: 4,
                    gateway: Some("fe80::1".parse().unwrap()),
                    flags: NhFlags::empty(),
                    weight: 1
                },
                NextHop {
                    ifindex: 5,
                    gateway: Some("fe80::2".parse().unwrap()),
                    flags: NhFlags::Onlink | NhFlags::Linkdown,
                    weight: 3
                },
            ]
        );
    }

    #[test]
    fn route_via_ipv6_gateway_for_ipv4() {
        let m = route_msg(
            AddressFamily::Inet,
            16,
            vec![
                RouteAttribute::Destination(RouteAddress::Inet(v4("172.16.0.0"))),
                RouteAttribute::Via(RouteVia::Inet6(v6("fe80::99"))),
                RouteAttribute::Oif(7),
            ],
        );
        let r = both(&m).unwrap();
        assert_eq!(r.nexthops[0].gateway, Some("fe80::99".parse().unwrap()));
        assert_eq!(r.nexthops[0].ifindex, 7);

        // Also inside RTA_MULTIPATH.
        let m = route_msg(
            AddressFamily::Inet,
            16,
            vec![RouteAttribute::MultiPath(vec![nh(
                7,
                0,
                vec![RouteAttribute::Via(RouteVia::Inet6(v6("fe80::98")))],
            )])],
        );
        let r = both(&m).unwrap();
        assert_eq!(r.nexthops[0].gateway, Some("fe80::98".parse().unwrap()));
    }

    #[test]
    fn route_nhid_mtu_encap_src_len_tos() {
        let mut m = route_msg(
            AddressFamily::Inet6,
            64,
            vec![
                RouteAttribute::Destination(RouteAddress::Inet6(v6("2001:db8::"))),
                RouteAttribute::NhId(42),
                RouteAttribute::Metrics(vec![RouteMetric::Hoplimit(9), RouteMetric::Mtu(1400)]),
                RouteAttribute::EncapType(RouteLwEnCapType::Seg6),
            ],
        );
        m.header.source_prefix_length = 56;
        m.header.tos = 0x10;
        m.header.kind = RouteType::BlackHole;
        let r = both(&m).unwrap();
        assert_eq!(r.nhid, Some(42));
        assert_eq!(r.mtu, Some(1400));
        assert!(r.encap);
        assert_eq!(r.src_len, 56);
        assert_eq!(r.key.tos, 0x10);
        assert_eq!(r.kind, RouteKind::Blackhole);
        assert!(r.nexthops.is_empty());
    }

    #[test]
    fn route_filters() {
        let mut m = route_msg(AddressFamily::Inet, 32, vec![]);
        m.header.flags = RouteFlags::Cloned;
        assert!(both(&m).is_none());
        let m = route_msg(AddressFamily::Mpls, 20, vec![]);
        assert!(both(&m).is_none());
        let mut m = route_msg(AddressFamily::Inet, 0, vec![]);
        m.header.kind = RouteType::Nat;
        assert_eq!(both(&m).unwrap().kind, RouteKind::Other(10));
        // Single-path flags come from the low byte of rtm_flags.
        let mut m = route_msg(AddressFamily::Inet, 0, vec![RouteAttribute::Oif(1)]);
        m.header.flags = RouteFlags::Linkdown | RouteFlags::Notify;
        assert_eq!(both(&m).unwrap().nexthops[0].flags, NhFlags::Linkdown);
    }

    fn link_msg(attrs: Vec<LinkAttribute>) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = 9;
        m.header.link_layer_type = LinkLayerType::Ether;
        m.attributes = attrs;
        m
    }

    /// The kernel sends each family's settings of the device with the link
    /// (inet_fill_link_af, inet6_fill_link_af).
    #[test]
    fn a_link_says_whether_it_ignores_linkdown_routes() {
        use netlink_packet_route::link::{Inet6DevConf, InetDevConf};
        let (mut v4, mut v6) = (InetDevConf::default(), Inet6DevConf::default());
        let with = |v4: InetDevConf, v6: Inet6DevConf| {
            link(&link_msg(vec![LinkAttribute::AfSpecUnspec(vec![
                AfSpecUnspec::Inet(vec![AfSpecInet::DevConf(v4)]),
                AfSpecUnspec::Inet6(vec![AfSpecInet6::DevConf(v6)]),
            ])]))
            .unwrap()
            .ignores_linkdown
        };
        assert!(!with(v4, v6));
        v6.ignore_routes_with_linkdown = 1;
        assert!(with(v4, v6));
        v6.ignore_routes_with_linkdown = 0;
        v4.ignore_routes_with_linkdown = 1;
        assert!(with(v4, v6));
    }

    #[test]
    fn only_ethernet_links_have_a_mac() {
        // What `lo` reports: six zero bytes, link type loopback.
        let mut m = link_msg(vec![LinkAttribute::Address(vec![0; 6])]);
        m.header.link_layer_type = LinkLayerType::Loopback;
        assert_eq!(link(&m).unwrap().mac, None);
    }

    #[test]
    fn link_fields() {
        let mut m = link_msg(vec![
            LinkAttribute::IfName("veth0".into()),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::Mtu(1500),
            LinkAttribute::CarrierDownCount(3),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ]);
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running;
        let l = link(&m).unwrap();
        assert_eq!(
            l,
            model::Link {
                ifindex: 9,
                name: "veth0".into(),
                mac: Some([2, 0, 0, 0, 0, 1]),
                mtu: 1500,
                admin_up: true,
                carrier: true,
                running: true,
                ignores_linkdown: false,
                carrier_downs: 3,
                dormant: false,
                kind: Some("veth".into()),
                master: None,
            }
        );

        // Waiting for 802.1X: carrier, not running, operstate dormant.
        let mut m = link_msg(vec![LinkAttribute::OperState(State::Dormant)]);
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        let l = link(&m).unwrap();
        assert!(l.carrier && !l.running && l.dormant);

        // Down, no carrier, non-Ethernet address, no kind (e.g. lo / tun).
        let m = link_msg(vec![
            LinkAttribute::IfName("gre0".into()),
            LinkAttribute::Address(vec![0, 0, 0, 0]),
        ]);
        let l = link(&m).unwrap();
        assert!(!l.admin_up && !l.carrier);
        assert_eq!((l.mac, l.kind), (None, None));

        // Bridge port notifications (AF_BRIDGE) are not device messages.
        let mut m = link_msg(vec![LinkAttribute::IfName("p1".into())]);
        m.header.interface_family = AddressFamily::Bridge;
        assert!(link(&m).is_none());
    }

    fn addr_msg(fam: AddressFamily, len: u8, attrs: Vec<AddressAttribute>) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = fam;
        m.header.prefix_len = len;
        m.header.index = 3;
        m.attributes = attrs;
        m
    }

    #[test]
    fn addr_v4_prefers_local() {
        let m = addr_msg(
            AddressFamily::Inet,
            32,
            vec![
                AddressAttribute::Address("10.0.0.2".parse().unwrap()),
                AddressAttribute::Local("10.0.0.1".parse().unwrap()),
            ],
        );
        assert_eq!(
            addr(&m).unwrap(),
            model::Addr {
                ifindex: 3,
                addr: "10.0.0.1".parse().unwrap(),
                prefix_len: 32
            }
        );
        let m = addr_msg(
            AddressFamily::Inet,
            24,
            vec![AddressAttribute::Address("10.0.0.5".parse().unwrap())],
        );
        assert_eq!(
            addr(&m).unwrap().addr,
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn addr_v6_uses_address() {
        let m = addr_msg(
            AddressFamily::Inet6,
            64,
            vec![AddressAttribute::Address("2001:db8::1".parse().unwrap())],
        );
        let a = addr(&m).unwrap();
        assert_eq!(a.addr, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(a.prefix_len, 64);
        assert!(addr(&addr_msg(AddressFamily::Inet6, 64, vec![])).is_none());
        assert!(addr(&addr_msg(AddressFamily::Packet, 0, vec![])).is_none());
    }

    fn neigh_msg(fam: AddressFamily, attrs: Vec<NeighbourAttribute>) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = fam;
        m.header.ifindex = 4;
        m.attributes = attrs;
        m
    }

    #[test]
    fn neighbour_fields() {
        let mut m = neigh_msg(
            AddressFamily::Inet,
            vec![
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4("10.0.0.9"))),
                NeighbourAttribute::LinkLayerAddress(vec![0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
            ],
        );
        m.header.state = NeighbourState::Permanent;
        let n = neighbour(&m).unwrap();
        assert_eq!(
            n,
            model::Neighbour {
                ifindex: 4,
                addr: "10.0.0.9".parse().unwrap(),
                mac: Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
                state: NeighbourState::Permanent
            }
        );

        let mut m = neigh_msg(
            AddressFamily::Inet6,
            vec![NeighbourAttribute::Destination(NeighbourAddress::Inet6(
                v6("fe80::1"),
            ))],
        );
        m.header.state = NeighbourState::Failed;
        let n = neighbour(&m).unwrap();
        assert_eq!((n.mac, n.state), (None, NeighbourState::Failed));
        assert_eq!(n.usable_mac(), None);

        let mut m = neigh_msg(AddressFamily::Bridge, vec![]);
        m.header.state = NeighbourState::Reachable;
        assert!(neighbour(&m).is_none());
        let mut m = neigh_msg(
            AddressFamily::Inet,
            vec![NeighbourAttribute::Destination(NeighbourAddress::Inet(v4(
                "10.0.0.9",
            )))],
        );
        m.header.flags = NeighbourFlags::Proxy;
        assert!(neighbour(&m).is_none());
    }

    fn rule_msg(fam: AddressFamily, attrs: Vec<RuleAttribute>) -> RuleMessage {
        let mut m = RuleMessage::default();
        m.header.family = fam;
        m.header.table = 254;
        m.header.action = RuleAction::ToTable;
        m.attributes = attrs;
        m
    }

    #[test]
    fn rule_defaults_have_no_selectors() {
        // What the kernel sends for "32766: from all lookup main".
        let m = rule_msg(
            AddressFamily::Inet,
            vec![
                RuleAttribute::Table(254),
                RuleAttribute::SuppressPrefixLen(u32::MAX),
                RuleAttribute::Priority(32766),
                RuleAttribute::Protocol(RouteProtocol::Kernel),
            ],
        );
        let r = rule(&m).unwrap();
        assert_eq!(
            r,
            model::Rule {
                family: Family::V4,
                priority: 32766,
                table: 254,
                action: RuleAction::ToTable,
                has_selectors: false,
                src_only: None,
                iif_only: None,
            }
        );
        assert!(r.is_default());
        // Priority 0 is absent from the message.
        let mut m = rule_msg(AddressFamily::Inet6, vec![RuleAttribute::Table(255)]);
        m.header.table = 255;
        let r = rule(&m).unwrap();
        assert_eq!((r.priority, r.table), (0, 255));
        assert!(r.is_default());
    }

    #[test]
    fn rule_table_attribute_and_selectors() {
        let mut m = rule_msg(
            AddressFamily::Inet,
            vec![RuleAttribute::Table(1000), RuleAttribute::Priority(100)],
        );
        m.header.table = 252;
        let r = rule(&m).unwrap();
        assert_eq!((r.table, r.has_selectors), (1000, false));

        let sel = |attrs: Vec<RuleAttribute>| rule(&rule_msg(AddressFamily::Inet, attrs)).unwrap();
        let r = sel(vec![RuleAttribute::Iifname("eth0".into())]);
        assert!(r.has_selectors);
        assert_eq!((r.iif_only.as_deref(), r.src_only), (Some("eth0"), None));
        let r = sel(vec![
            RuleAttribute::Iifname("eth0".into()),
            RuleAttribute::FwMark(1),
            RuleAttribute::FwMask(u32::MAX),
        ]);
        assert_eq!(r.iif_only, None, "fwmark too: not iif-only");
        assert!(sel(vec![RuleAttribute::Oifname("eth0".into())]).has_selectors);
        assert!(
            sel(vec![
                RuleAttribute::FwMark(1),
                RuleAttribute::FwMask(u32::MAX)
            ])
            .has_selectors
        );
        assert!(sel(vec![RuleAttribute::SuppressPrefixLen(0)]).has_selectors);
        assert!(sel(vec![RuleAttribute::L3MDev(true)]).has_selectors);
        assert!(sel(vec![RuleAttribute::TunId(5)]).has_selectors);
        assert!(
            sel(vec![RuleAttribute::UidRange(RuleUidRange {
                start: 1,
                end: 2
            })])
            .has_selectors
        );
        assert!(sel(vec![RuleAttribute::Goto(200)]).has_selectors);
        assert!(sel(vec![RuleAttribute::Other(DefaultNla::new(25, vec![4]))]).has_selectors);
        assert!(!sel(vec![RuleAttribute::Other(DefaultNla::new(FRA_PAD, vec![]))]).has_selectors);

        let mut m = rule_msg(
            AddressFamily::Inet,
            vec![RuleAttribute::Source("10.0.0.0".parse().unwrap())],
        );
        m.header.src_len = 8;
        let r = rule(&m).unwrap();
        assert!(r.has_selectors);
        assert_eq!(r.src_only, Some(pfx("10.0.0.0/8")));
        m.header.tos = 4;
        assert_eq!(rule(&m).unwrap().src_only, None, "tos too: not source-only");
        let mut m = rule_msg(AddressFamily::Inet, vec![]);
        m.header.flags = RuleFlags::Invert;
        assert!(rule(&m).unwrap().has_selectors);
        let mut m = rule_msg(AddressFamily::Inet, vec![]);
        m.header.tos = 4;
        assert!(rule(&m).unwrap().has_selectors);
        let mut m = rule_msg(AddressFamily::Inet, vec![]);
        m.header.action = RuleAction::Blackhole;
        let r = rule(&m).unwrap();
        assert_eq!(r.action, RuleAction::Blackhole);
        assert!(!r.is_default());
        assert!(rule(&rule_msg(AddressFamily::Bridge, vec![])).is_none());
    }
}
