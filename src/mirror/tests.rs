use super::decision::FibReason;
use super::*;
use crate::model::{
    GroupKind, Neighbour, NeighbourState, NextHop, NexthopObject, RouteAdd, RouteKey, RouteKind,
    RouteProtocol, RuleAction, TABLE_MAIN,
};

pub(super) const LAN: u32 = 2;
pub(super) const WAN: u32 = 3;
const OTHER: u32 = 9;

pub(super) fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

pub(super) fn route(
    table: u32,
    p: &str,
    metric: u32,
    kind: RouteKind,
    nh: Option<(u32, Option<&str>)>,
) -> Route {
    Route {
        key: RouteKey {
            table,
            prefix: prefix(p),
            tos: 0,
            metric,
        },
        kind,
        protocol: if table == TABLE_LOCAL {
            RouteProtocol::Kernel
        } else {
            RouteProtocol::Static
        },
        nexthops: nh
            .into_iter()
            .map(|(ifindex, gw)| NextHop {
                ifindex,
                gateway: gw.map(|g| g.parse().unwrap()),
                flags: crate::model::NhFlags::empty(),
                weight: 1,
            })
            .collect(),
        nhid: None,
        mtu: None,
        src_len: 0,
        encap: false,
        expires: false,
    }
}

pub(super) fn link(ifindex: u32, up: bool) -> Link {
    Link {
        ifindex,
        name: format!("eth{ifindex}"),
        mac: Some([2, 0, 0, 0, 0, ifindex as u8]),
        mtu: 1500,
        admin_up: up,
        carrier: up,
        running: up,
        ignores_linkdown: false,
        carrier_downs: 0,
        dormant: false,
        kind: Some("veth".into()),
        master: None,
    }
}

pub(super) fn neigh(ifindex: u32, addr: &str, state: NeighbourState) -> Neighbour {
    Neighbour {
        ifindex,
        addr: addr.parse().unwrap(),
        mac: Some([0xaa, 0, 0, 0, 0, ifindex as u8]),
        state,
    }
}

fn mirror() -> Mirror {
    mirror_with(&Limits {
        nexthops: 1024,
        ..Limits::default()
    })
}

/// A mirror of LAN and WAN with maps sized by `limits`.
pub(super) fn mirror_with(limits: &Limits) -> Mirror {
    let fwd = IfFlags::ACCEL_IF_FWD4.0 | IfFlags::ACCEL_IF_FWD6.0;
    let ifaces = [
        (
            LAN,
            IfaceConf {
                slot: 0,
                sysctl_flags: fwd,
                hook_flags: 0,
                tc_flags: 0,
                mtu6: 1500,
            },
        ),
        (
            WAN,
            IfaceConf {
                slot: 1,
                sysctl_flags: fwd,
                hook_flags: 0,
                tc_flags: 0,
                mtu6: 1500,
            },
        ),
    ];
    Mirror::new(ifaces.into_iter().collect(), false, limits)
}

/// An IPv4 rule to `table`, selecting source `src` or everything.
pub(super) fn rule4(priority: u32, table: u32, src: Option<&str>) -> Rule {
    Rule {
        family: Family::V4,
        priority,
        table,
        action: RuleAction::ToTable,
        has_selectors: src.is_some(),
        src_only: src.map(prefix),
        iif_only: None,
    }
}

fn snapshot() -> KernelState {
    KernelState {
        links: vec![link(LAN, true), link(WAN, true), link(OTHER, true)],
        addrs: vec![Addr {
            ifindex: LAN,
            addr: "10.0.1.1".parse().unwrap(),
            prefix_len: 24,
        }],
        routes: vec![
            route(
                TABLE_MAIN,
                "10.0.1.0/24",
                0,
                RouteKind::Unicast,
                Some((LAN, None)),
            ),
            route(
                TABLE_MAIN,
                "0.0.0.0/0",
                0,
                RouteKind::Unicast,
                Some((WAN, Some("10.0.2.2"))),
            ),
            route(
                TABLE_MAIN,
                "198.51.100.0/24",
                0,
                RouteKind::Unicast,
                Some((WAN, Some("10.0.2.2"))),
            ),
            route(
                TABLE_LOCAL,
                "10.0.1.1/32",
                0,
                RouteKind::Local,
                Some((LAN, None)),
            ),
            route(
                TABLE_LOCAL,
                "127.0.0.0/8",
                0,
                RouteKind::Local,
                Some((1, None)),
            ),
            route(10, "192.0.2.0/24", 0, RouteKind::Unicast, Some((WAN, None))),
        ],
        neighbours: vec![
            neigh(WAN, "10.0.2.2", NeighbourState::Reachable),
            neigh(LAN, "10.0.1.7", NeighbourState::Failed),
            neigh(OTHER, "10.9.9.9", NeighbourState::Reachable),
        ],
        rules: vec![],
        nexthops: vec![],
    }
}

fn puts(changes: &[Change]) -> HashMap<Prefix, RouteEntry> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::PutRoute { prefix, entry, .. } => Some((*prefix, *entry)),
            _ => None,
        })
        .collect()
}

#[test]
fn first_sync_writes_next_hops_before_routes() {
    let mut m = mirror();
    let changes = m.resync(snapshot());
    let wan_gw = NhKey {
        ifindex: WAN,
        gateway: Some("10.0.2.2".parse().unwrap()),
    };
    let nh_pos = changes
        .iter()
        .position(|c| matches!(c, Change::PutNexthop { nh, .. } if *nh == wan_gw))
        .expect("next hop written");
    let route_pos = changes
        .iter()
        .position(|c| matches!(c, Change::PutRoute { entry: RouteEntry::Unicast(nh), .. } if *nh == wan_gw))
        .unwrap();
    assert!(nh_pos < route_pos);
    // Two routes share one next hop.
    let nh_puts = changes
        .iter()
        .filter(|c| matches!(c, Change::PutNexthop { nh, .. } if *nh == wan_gw))
        .count();
    assert_eq!(nh_puts, 1);

    let routes = puts(&changes);
    assert_eq!(routes.len(), 5, "table 10 is not mirrored: {routes:?}");
    assert_eq!(routes[&prefix("10.0.1.1/32")], RouteEntry::Local);
    // Only usable neighbours on accel's interfaces.
    let neighs: Vec<_> = changes
        .iter()
        .filter(|c| matches!(c, Change::PutNeigh { .. }))
        .collect();
    assert_eq!(neighs.len(), 1);
    assert!(changes.contains(&Change::PutLocal4("10.0.1.1".parse().unwrap())));
    assert!(changes.contains(&Change::Config(0)));
    let ifaces = changes
        .iter()
        .filter(|c| matches!(c, Change::PutIface { .. }))
        .count();
    assert_eq!(ifaces, 2);
}

#[test]
fn resync_is_mark_and_sweep() {
    let mut m = mirror();
    m.resync(snapshot());
    assert!(
        m.resync(snapshot()).is_empty(),
        "nothing changed, nothing written"
    );

    let mut snap = snapshot();
    snap.routes
        .retain(|r| r.key.prefix != prefix("198.51.100.0/24"));
    snap.neighbours.clear();
    let changes = m.resync(snap);
    assert_eq!(
        changes,
        vec![
            Change::DelRoute(prefix("198.51.100.0/24")),
            Change::DelNeigh {
                ifindex: WAN,
                addr: "10.0.2.2".parse().unwrap()
            }
        ]
    );
}

#[test]
fn local_table_wins_over_longer_main_routes() {
    let mut m = mirror();
    m.resync(snapshot());
    let o = m.apply(Event::NewRoute(route(
        TABLE_MAIN,
        "127.5.0.0/16",
        0,
        RouteKind::Unicast,
        Some((WAN, None)),
    )));
    assert_eq!(puts(&o.changes)[&prefix("127.5.0.0/16")], RouteEntry::Local);

    // Removing the covering local route exposes the main route.
    let o = m.apply(Event::DelRoute(route(
        TABLE_LOCAL,
        "127.0.0.0/8",
        0,
        RouteKind::Local,
        None,
    )));
    assert!(o.changes.contains(&Change::DelRoute(prefix("127.0.0.0/8"))));
    assert!(matches!(
        puts(&o.changes)[&prefix("127.5.0.0/16")],
        RouteEntry::Unicast(_)
    ));
}

#[test]
fn lowest_metric_wins_and_the_next_takes_over() {
    let mut m = mirror();
    m.resync(snapshot());
    let p = "203.0.113.0/24";
    m.apply(Event::NewRoute(route(
        TABLE_MAIN,
        p,
        30,
        RouteKind::Blackhole,
        None,
    )));
    let o = m.apply(Event::NewRoute(route(
        TABLE_MAIN,
        p,
        10,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.3"))),
    )));
    assert!(matches!(
        puts(&o.changes)[&prefix(p)],
        RouteEntry::Unicast(_)
    ));
    // A higher metric changes nothing.
    let o = m.apply(Event::NewRoute(route(
        TABLE_MAIN,
        p,
        20,
        RouteKind::Unreachable,
        None,
    )));
    assert!(o.changes.is_empty());
    let o = m.apply(Event::DelRoute(route(
        TABLE_MAIN,
        p,
        10,
        RouteKind::Unicast,
        None,
    )));
    assert_eq!(puts(&o.changes)[&prefix(p)], RouteEntry::Unreachable);
    assert_eq!(m.nexthop_count(), 2, "10.0.2.3 was released");
}

/// A main-table IPv6 route to `p` (metric 1024) via fe80::1 on WAN and
/// fe80::2 on LAN.
fn two_path_v6_route(p: &str) -> Route {
    let mut r = route(
        TABLE_MAIN,
        p,
        1024,
        RouteKind::Unicast,
        Some((WAN, Some("fe80::1"))),
    );
    r.nexthops.push(NextHop {
        ifindex: LAN,
        gateway: Some("fe80::2".parse().unwrap()),
        flags: crate::model::NhFlags::empty(),
        weight: 1,
    });
    r
}

#[test]
fn ipv6_partial_multipath_delete() {
    let mut m = mirror();
    m.resync(snapshot());
    let mp = two_path_v6_route("2001:db8::/32");
    let o = m.apply(Event::NewRoute(mp));
    assert!(matches!(
        puts(&o.changes)[&prefix("2001:db8::/32")],
        RouteEntry::Multipath(_)
    ));
    assert_eq!(groups_put(&o.changes)[0].2.len(), 2);
    let one = route(
        TABLE_MAIN,
        "2001:db8::/32",
        1024,
        RouteKind::Unicast,
        Some((LAN, Some("fe80::2"))),
    );
    let o = m.apply(Event::DelRoute(one));
    assert_eq!(
        puts(&o.changes)[&prefix("2001:db8::/32")],
        RouteEntry::Unicast(NhKey {
            ifindex: WAN,
            gateway: Some("fe80::1".parse().unwrap())
        })
    );
}

#[test]
fn custom_rules_switch_to_policy_mode() {
    let mut m = mirror();
    m.resync(snapshot());
    let rule = Rule {
        family: Family::V4,
        priority: 100,
        table: 10,
        action: RuleAction::ToTable,
        has_selectors: true,
        src_only: None,
        iif_only: None,
    };
    let c = m.set_rules(vec![rule]);
    let want = CfgFlags::ACCEL_CFG_POLICY4.0 | CfgFlags::ACCEL_CFG_SRC_FULL4.0;
    assert_eq!(c, vec![Change::Config(want)]);
    // Removing the rule ends policy mode, but source validation stays full,
    // as it does in the kernel.
    let c = m.set_rules(vec![]);
    assert_eq!(c, vec![Change::Config(CfgFlags::ACCEL_CFG_SRC_FULL4.0)]);
}

#[test]
fn xfrm_policies_set_the_config_flag_until_they_are_gone() {
    let xfrm = CfgFlags::ACCEL_CFG_XFRM.0;
    let mut m = mirror();
    // Before the first dump: the flag is written before anything forwards.
    let c = m.set_xfrm(true);
    assert!(c.contains(&Change::Config(xfrm)), "{c:?}");
    m.resync(snapshot());
    assert_eq!(m.config_flags(), xfrm, "a resync keeps it");
    assert!(m.set_xfrm(true).is_empty(), "no change, no write");
    let c = m.set_rules(vec![rule4(100, 10, None)]);
    assert_ne!(m.config_flags() & xfrm, 0, "kept beside other flags: {c:?}");
    m.set_rules(Vec::new());
    let c = m.set_xfrm(false);
    assert_eq!(c, vec![Change::Config(CfgFlags::ACCEL_CFG_SRC_FULL4.0)]);
}

/// IPv4's default rules, and the same with one from 10.9.0.0/16.
fn source_rule_set() -> (Vec<Rule>, Vec<Rule>) {
    let r = rule4;
    let defaults = vec![r(0, 255, None), r(32766, 254, None), r(32767, 253, None)];
    let mut rules = defaults.clone();
    rules.push(r(100, 10, Some("10.9.0.0/16")));
    (defaults, rules)
}

/// What mirroring [`source_rule_set`]'s source rule changes.
fn source_rule_mirrored() -> Vec<Change> {
    let want = CfgFlags::ACCEL_CFG_SRC_RULES4.0 | CfgFlags::ACCEL_CFG_SRC_FULL4.0;
    vec![
        Change::PutSrcRule(prefix("10.9.0.0/16")),
        Change::Config(want),
    ]
}

/// A rule event does not say which rule changed: until the rules are read
/// again, both families go to bpf_fib_lookup (the source rules leave the
/// map only after the flags say so), and a dump's rules meanwhile do not
/// end that (it may predate the change).
#[test]
fn changed_rules_go_to_fib_until_read() {
    let mut m = mirror();
    m.resync(snapshot());
    let (_, rules) = source_rule_set();
    m.set_rules(rules.clone());
    let o = m.apply(Event::RulesChanged);
    assert!(o.reread_rules);
    let both = CfgFlags::ACCEL_CFG_POLICY4.0
        | CfgFlags::ACCEL_CFG_POLICY6.0
        | CfgFlags::ACCEL_CFG_SRC_FULL4.0;
    assert_eq!(
        o.changes,
        vec![
            Change::Config(both),
            Change::DelSrcRule(prefix("10.9.0.0/16"))
        ]
    );
    let mut snap = snapshot();
    snap.rules = rules.clone();
    let c = m.resync(snap);
    assert!(
        !c.iter().any(|c| matches!(c, Change::Config(_))),
        "a dump leaves the rules unread: {c:?}"
    );
    let c = m.set_rules(rules);
    assert_eq!(c, source_rule_mirrored());
}

#[test]
fn neighbours_follow_their_state() {
    let mut m = mirror();
    m.resync(snapshot());
    let o = m.apply(Event::NewNeigh(neigh(
        LAN,
        "10.0.1.7",
        NeighbourState::Stale,
    )));
    assert_eq!(o.changes.len(), 1);
    let o = m.apply(Event::NewNeigh(neigh(
        LAN,
        "10.0.1.7",
        NeighbourState::Incomplete,
    )));
    assert_eq!(
        o.changes,
        vec![Change::DelNeigh {
            ifindex: LAN,
            addr: "10.0.1.7".parse().unwrap()
        }]
    );
}

#[test]
fn link_down_marks_the_interface_and_asks_for_a_dump() {
    let mut m = mirror();
    m.resync(snapshot());
    let o = m.apply(Event::NewLink(link(WAN, false)));
    assert!(o.resync);
    match &o.changes[..] {
        [Change::PutIface { ifindex, entry }] => {
            assert_eq!(*ifindex, WAN);
            assert_eq!(entry.flags & IfFlags::ACCEL_IF_UP.0, 0);
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn puts_iface(o: &EventOutcome, which: u32) -> bool {
    o.changes
        .iter()
        .any(|c| matches!(c, Change::PutIface { ifindex, .. } if *ifindex == which))
}

/// An interface made a port of a bridge (or bond): the bridge's
/// rx_handler takes what arrives there and routes it as arriving on the
/// bridge, with the bridge's settings. The interface's entry goes, so that
/// the datapath leaves all of it to the kernel; a VRF's port stays routed.
#[test]
fn an_interface_made_a_bridge_port_is_no_longer_served() {
    const BR: u32 = 20;
    let mut m = mirror();
    m.resync(snapshot());
    let mut br = link(BR, true);
    br.kind = Some("bridge".into());
    m.apply(Event::NewLink(br));
    let mut port = link(WAN, true);
    port.master = Some(BR);
    let o = m.apply(Event::NewLink(port.clone()));
    assert!(
        o.changes.contains(&Change::DelIface(WAN)),
        "{:?}",
        o.changes
    );
    assert_eq!(m.port_of(&port), Some((BR, "eth20")));

    // Out of the bridge: served again.
    let o = m.apply(Event::NewLink(link(WAN, true)));
    assert!(puts_iface(&o, WAN), "{:?}", o.changes);

    // A master not known yet counts as a port's; a VRF's port is served.
    let mut vrf_port = link(WAN, true);
    vrf_port.master = Some(BR + 1);
    let o = m.apply(Event::NewLink(vrf_port.clone()));
    assert!(o.changes.contains(&Change::DelIface(WAN)));
    let mut vrf = link(BR + 1, true);
    vrf.kind = Some("vrf".into());
    let o = m.apply(Event::NewLink(vrf));
    assert!(puts_iface(&o, WAN), "{:?}", o.changes);
    assert_eq!(m.port_of(&vrf_port), None);
}

/// A carrier change alone (an access port flapping): the kernel only
/// flags the next hops through the link (RTNH_F_LINKDOWN), which decides
/// nothing for a route's only path, and flushes the nexthop objects
/// through it without a word (nexthop_flush_dev). The mirror removes
/// those as the kernel does and needs no dump; the interface entry stops
/// the datapath from sending out of the link.
#[test]
fn carrier_loss_alone_costs_no_dump_and_flushes_the_objects_through_the_link() {
    let mut m = mirror_with_group_route(single(2, LAN, "10.0.1.7"));
    let o = m.apply(Event::NewLink(without_carrier(WAN)));
    assert!(!o.resync, "{o:?}");
    assert!(o.settle_objects, "object 1 flushed with the carrier");
    let g = groups_put(&o.changes);
    assert!(
        g.iter().any(|(_, _, paths)| paths.len() == 1),
        "group 10 keeps member 2 only: {:?}",
        o.changes
    );
    let up_flag = o.changes.iter().find_map(|c| match c {
        Change::PutIface { ifindex, entry } if *ifindex == WAN => Some(entry.flags),
        _ => None,
    });
    assert_eq!(up_flag.map(|f| f & IfFlags::ACCEL_IF_UP.0), Some(0));
    assert!(!m.settle_objects().resync, "no route used object 1 itself");

    // Carrier back: nothing comes back by itself (FRR adds objects again).
    let o = m.apply(Event::NewLink(link(WAN, true)));
    assert!(!o.resync && !o.settle_objects, "{o:?}");
}

/// Carrier lost and back between two link messages: both say carrier,
/// only the count of losses moved. Back before linkwatch ran, the kernel
/// changed nothing, and its message says running. Back between
/// linkwatch's notifiers, which flushed the objects through the link
/// (nexthop_flush_dev), and the message it then built: running is still
/// off (the operstate set for the loss), and a dump is due.
#[test]
fn carrier_lost_and_back_unseen_asks_for_a_dump_if_the_kernel_acted() {
    let mut m = mirror_with_group_route(single(2, LAN, "10.0.1.7"));
    let before_linkwatch = Link {
        carrier_downs: 1,
        ..link(WAN, true)
    };
    let o = m.apply(Event::NewLink(before_linkwatch));
    assert!(!o.resync && !o.settle_objects, "{o:?}");
    let during_linkwatch = Link {
        carrier_downs: 2,
        running: false,
        ..link(WAN, true)
    };
    assert!(m.apply(Event::NewLink(during_linkwatch.clone())).resync);
    assert!(
        !m.apply(Event::NewLink(during_linkwatch)).resync,
        "same count"
    );
    // A loss the messages show accounts for one count; a second does not.
    let lost = Link {
        carrier_downs: 3,
        ..without_carrier(WAN)
    };
    assert!(!m.apply(Event::NewLink(lost)).resync);
    let back = Link {
        carrier_downs: 3,
        ..link(WAN, true)
    };
    assert!(!m.apply(Event::NewLink(back)).resync);
    let twice = Link {
        carrier_downs: 5,
        ..without_carrier(WAN)
    };
    assert!(m.apply(Event::NewLink(twice)).resync);
}

/// Another message (an MTU change, a dump) between a carrier loss and
/// linkwatch's run says no carrier, still running (the operstate is set
/// by linkwatch), and already counts the loss. Linkwatch then flushes,
/// and the carrier is back before its message: carrier, not running,
/// the count unchanged. A dormant link (carrier, waiting for 802.1X) is
/// not running either, and nothing is flushed for it. An older message
/// replayed onto a newer dump counts no loss.
#[test]
fn linkwatch_acting_on_a_loss_the_mirror_saw_too_early_asks_for_a_dump() {
    let mut m = mirror_with_group_route(single(2, LAN, "10.0.1.7"));
    let early = Link {
        carrier: false,
        carrier_downs: 1,
        ..link(WAN, true)
    };
    let o = m.apply(Event::NewLink(early.clone()));
    assert!(!o.resync && !o.settle_objects, "still running: {o:?}");
    let acted = Link {
        running: false,
        carrier_downs: 1,
        ..link(WAN, true)
    };
    assert!(m.apply(Event::NewLink(acted)).resync);

    let mut m = mirror_with_group_route(single(2, LAN, "10.0.1.7"));
    let dormant = Link {
        running: false,
        dormant: true,
        ..link(WAN, true)
    };
    assert!(!m.apply(Event::NewLink(dormant.clone())).resync);
    let older = Link {
        carrier_downs: 0,
        ..dormant.clone()
    };
    m.apply(Event::NewLink(Link {
        carrier_downs: 2,
        ..dormant
    }));
    assert!(!m.apply(Event::NewLink(older)).resync, "count went back");
}

/// A mirror of the snapshot with object 1 (via 10.0.2.2 on WAN), object
/// `second` (id 2), group 10 of both, and 203.0.113.0/24 through group 10.
fn mirror_with_group_route(second: NexthopObject) -> Mirror {
    let mut m = mirror();
    let mut snap = snapshot();
    snap.nexthops = vec![
        single(1, WAN, "10.0.2.2"),
        second,
        group(10, &[(1, 1), (2, 1)]),
    ];
    m.resync(snap);
    m.apply(Event::AddRoute(
        via_object("203.0.113.0/24", 10),
        RouteAdd::Alone,
    ));
    m
}

fn without_carrier(ifindex: u32) -> Link {
    Link {
        carrier: false,
        running: false,
        ..link(ifindex, true)
    }
}

/// `ip route add P nexthop via 10.0.2.2 dev WAN nexthop via 10.0.1.7 dev LAN`.
fn multipath(p: &str) -> Route {
    multipath_via(p, "10.0.1.7", 1)
}

/// `ip route add P nexthop via 10.0.2.2 dev WAN nexthop via GW dev LAN
/// weight W`.
fn multipath_via(p: &str, gw: &str, weight: u16) -> Route {
    let mut r = route(
        TABLE_MAIN,
        p,
        0,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.2"))),
    );
    r.nexthops.push(NextHop {
        ifindex: LAN,
        gateway: Some(gw.parse().unwrap()),
        flags: crate::model::NhFlags::empty(),
        weight,
    });
    r
}

/// A multipath route through the link: the kernel splits the hash by
/// weights fixed at its last rebalance, with the linkdown flag and
/// ignore_routes_with_linkdown as they were then, which accel cannot see:
/// a carrier change asks for a dump, which sends the route to
/// bpf_fib_lookup while a member has no carrier. Going down always does.
#[test]
fn carrier_change_under_a_multipath_route_asks_for_a_dump() {
    let mut m = mirror();
    m.resync(snapshot_with(multipath("203.0.113.0/24")));
    assert!(m.apply(Event::NewLink(without_carrier(WAN))).resync);
    assert!(m.apply(Event::NewLink(link(WAN, true))).resync);
    assert!(
        m.apply(Event::NewLink(link(WAN, false))).resync,
        "admin down"
    );
    assert!(
        !m.apply(Event::NewLink(without_carrier(OTHER))).resync,
        "a link no multipath route uses"
    );
    // Dormant with carrier (802.1X, a self-test): IPv6 flags the next
    // hops linkdown (addrconf_link_ready), and the egress is not used.
    m.resync(snapshot_with(multipath("203.0.113.0/24")));
    let dormant = Link {
        running: false,
        ..link(WAN, true)
    };
    let o = m.apply(Event::NewLink(dormant));
    assert!(o.resync && !o.settle_objects, "{o:?}");
    let flags = o.changes.iter().find_map(|c| match c {
        Change::PutIface { ifindex, entry } if *ifindex == WAN => Some(entry.flags),
        _ => None,
    });
    assert_eq!(flags.map(|f| f & IfFlags::ACCEL_IF_UP.0), Some(0));
}

fn snapshot_with(r: Route) -> KernelState {
    let mut snap = snapshot();
    snap.routes.push(r);
    snap
}

/// Under ignore_routes_with_linkdown the kernel passes over a next hop
/// without carrier, even a route's only one, and reports it dead: a
/// carrier change asks for a dump, as does the sysctl changing while the
/// link has no carrier.
#[test]
fn carrier_change_where_the_kernel_ignores_linkdown_routes_asks_for_a_dump() {
    let mut m = mirror();
    m.resync(snapshot());
    assert!(!m.set_ignores_linkdown(WAN, true), "WAN has carrier");
    assert!(m.apply(Event::NewLink(without_carrier(WAN))).resync);
    assert!(
        m.set_ignores_linkdown(WAN, false),
        "changed without carrier"
    );
    assert!(!m.set_ignores_linkdown(WAN, false), "unchanged");
    assert!(!m.apply(Event::NewLink(link(WAN, true))).resync);
}

/// A device coming up revives the dead next hops through it without a
/// word (fib_sync_up; IPv6 once it is operationally up, rt6_sync_up),
/// as does an IPv4 address added (fib_inetaddr_event): a dump only
/// where the view holds a route with a dead one. A link just created and
/// brought up (a VLAN, a tunnel, a PPP session) costs none.
#[test]
fn coming_up_asks_for_a_dump_only_where_dead_next_hops_could_revive() {
    let mut m = mirror();
    m.resync(snapshot());
    let new = 11;
    assert!(
        !m.apply(Event::NewLink(link(new, false))).resync,
        "created down"
    );
    assert!(
        !m.apply(Event::NewLink(link(new, true))).resync,
        "brought up"
    );

    // WAN went down under a multipath route: the dump shows its path dead.
    let mut r = multipath("203.0.113.0/24");
    r.nexthops[0].flags = crate::model::NhFlags::Dead | crate::model::NhFlags::Linkdown;
    let mut snap = snapshot();
    snap.links[1] = link(WAN, false);
    snap.routes.push(r.clone());
    m.resync(snap.clone());
    assert!(
        m.apply(Event::NewLink(link(WAN, true))).resync,
        "its path revives"
    );
    // Up without carrier, then carrier (IPv6 revives only then).
    m.resync(snap.clone());
    assert!(m.apply(Event::NewLink(without_carrier(WAN))).resync);
    assert!(m.apply(Event::NewLink(link(WAN, true))).resync);
    let addr = Addr {
        ifindex: WAN,
        addr: "10.0.2.1".parse().unwrap(),
        prefix_len: 24,
    };
    m.resync(snap.clone());
    assert!(
        m.apply(Event::NewAddr(addr)).resync,
        "an address revives it"
    );
    assert!(
        !m.apply(Event::NewAddr(addr)).resync,
        "its lifetime refreshed"
    );

    // Once the route is gone, nothing is left to revive.
    m.resync(snap.clone());
    m.apply(Event::DelRoute(r));
    assert!(!m.apply(Event::NewLink(link(WAN, true))).resync);
    assert!(!m.apply(Event::NewAddr(addr)).resync);
}

/// A route's only next hop without carrier is forwarded to (the datapath
/// then finds the egress without carrier and hands the kernel the
/// packet); a multipath member without carrier sends the route to
/// bpf_fib_lookup. A dump agrees with what the events left.
#[test]
fn a_link_down_next_hop_alone_is_used_in_a_multipath_route_not() {
    let mut lone = route(
        TABLE_MAIN,
        "203.0.113.0/24",
        0,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.2"))),
    );
    lone.nexthops[0].flags = crate::model::NhFlags::Linkdown;
    let mut mp = multipath("192.0.2.0/24");
    mp.nexthops[0].flags = crate::model::NhFlags::Linkdown;
    let mut m = mirror();
    m.resync(snapshot());
    let o = m.apply(Event::NewRoute(lone.clone()));
    assert!(matches!(
        puts(&o.changes).get(&prefix("203.0.113.0/24")),
        Some(RouteEntry::Unicast(_))
    ));
    let o = m.apply(Event::NewRoute(mp.clone()));
    assert!(matches!(
        puts(&o.changes).get(&prefix("192.0.2.0/24")),
        Some(RouteEntry::Fib(FibReason::DeadNexthop))
    ));
    let mut snap = snapshot();
    snap.routes.extend([lone, mp]);
    assert!(m.dry_run(snap).is_empty(), "the dump agrees");
}

#[test]
fn fib_only_mode_mirrors_no_routes() {
    let mut m = Mirror::new(
        HashMap::new(),
        true,
        &Limits {
            nexthops: 16,
            ..Limits::default()
        },
    );
    let changes = m.resync(snapshot());
    assert!(puts(&changes).is_empty());
    assert!(changes.contains(&Change::Config(CfgFlags::ACCEL_CFG_FIB_ONLY.0)));
}

#[test]
fn dry_run_reports_what_a_resync_would_do_and_changes_nothing() {
    let mut m = mirror();
    m.resync(snapshot());
    assert!(m.dry_run(snapshot()).is_empty(), "in sync");
    let nexthops = m.nexthop_count();

    let mut snap = snapshot();
    snap.routes
        .retain(|r| r.key.prefix != prefix("198.51.100.0/24"));
    for r in snap.routes.iter_mut() {
        if r.key.prefix == prefix("0.0.0.0/0") {
            r.nexthops[0].gateway = Some("10.0.2.9".parse().unwrap());
        }
    }
    let dry = m.dry_run(snap.clone());
    let new_gw = NhKey {
        ifindex: WAN,
        gateway: Some("10.0.2.9".parse().unwrap()),
    };
    assert!(dry.contains(&Change::DelRoute(prefix("198.51.100.0/24"))));
    assert_eq!(
        puts(&dry)[&prefix("0.0.0.0/0")],
        RouteEntry::Unicast(new_gw)
    );
    // The mirror still holds the old state...
    assert!(m.entry(&prefix("198.51.100.0/24")).is_some());
    assert_eq!(m.nexthop_count(), nexthops);
    assert_eq!(m.dry_run(snap.clone()), dry, "a dry run leaves no trace");
    // ...and the real resync makes exactly the changes announced.
    assert_eq!(m.resync(snap.clone()), dry);
    assert!(m.dry_run(snap).is_empty());
    assert_eq!(
        m.entry(&prefix("0.0.0.0/0")),
        Some(RouteEntry::Unicast(new_gw))
    );
}

#[test]
fn gateway_neighbours_are_those_of_mirrored_gateways_on_accel_interfaces() {
    let mut m = mirror();
    let mut snap = snapshot();
    // A gateway on a non-accel interface, with its entry.
    snap.routes.push(route(
        TABLE_MAIN,
        "203.0.113.0/24",
        0,
        RouteKind::Unicast,
        Some((OTHER, Some("10.9.9.9"))),
    ));
    // A directly connected host's entry (10.0.1.7 on LAN, no gateway) and
    // an entry for an address no route uses as gateway.
    snap.neighbours
        .push(neigh(WAN, "10.0.2.99", NeighbourState::Stale));
    m.resync(snap);
    let got: Vec<_> = m.gateway_neighbours().collect();
    assert_eq!(
        got,
        vec![(
            (WAN, "10.0.2.2".parse().unwrap()),
            NeighbourState::Reachable
        )]
    );

    // State changes come from events; a deleted entry is not nudged.
    m.apply(Event::NewNeigh(neigh(
        WAN,
        "10.0.2.2",
        NeighbourState::Stale,
    )));
    let mut n = nudge::Nudger::default();
    let now = std::time::Instant::now();
    assert_eq!(
        n.select(now, m.gateway_neighbours(), 10),
        vec![(WAN, "10.0.2.2".parse().unwrap())]
    );
    m.apply(Event::DelNeigh(neigh(
        WAN,
        "10.0.2.2",
        NeighbourState::Stale,
    )));
    assert_eq!(m.gateway_neighbours().count(), 0);
}

fn single(id: u32, ifindex: u32, gw: &str) -> NexthopObject {
    NexthopObject::Single {
        id,
        ifindex: Some(ifindex),
        gateway: Some(gw.parse().unwrap()),
        blackhole: false,
        flags: crate::model::NhFlags::empty(),
        special: false,
    }
}

fn group(id: u32, members: &[(u32, u32)]) -> NexthopObject {
    NexthopObject::Group {
        id,
        kind: GroupKind::Multipath,
        members: members.to_vec(),
    }
}

type GroupPut = (u32, bool, Vec<(u32, u32)>);

fn groups_put(changes: &[Change]) -> Vec<GroupPut> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::PutGroup {
                id,
                blackhole,
                paths,
            } => Some((*id, *blackhole, paths.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn routes_through_an_object_share_one_group_rewritten_on_replace() {
    let mut m = mirror();
    let mut snap = snapshot();
    snap.nexthops = vec![
        single(1, WAN, "10.0.2.2"),
        single(2, WAN, "10.0.2.3"),
        group(10, &[(1, 1), (2, 1)]),
    ];
    for p in ["203.0.113.0/24", "203.0.114.0/24"] {
        let mut r = route(TABLE_MAIN, p, 20, RouteKind::Unicast, None);
        r.nhid = Some(10);
        snap.routes.push(r);
    }
    let c = m.resync(snap);
    let g = groups_put(&c);
    assert_eq!(g.len(), 1, "one group for both routes: {c:?}");
    let (gid, _, paths) = &g[0];
    assert_eq!(paths.len(), 2);
    // Next hops and the group come before the routes that use them.
    let first_route = c.iter().position(|c| matches!(c, Change::PutRoute { prefix, .. } if prefix.to_string() == "203.0.113.0/24")).unwrap();
    let group_at = c
        .iter()
        .position(|c| matches!(c, Change::PutGroup { .. }))
        .unwrap();
    assert!(group_at < first_route);

    // ip nexthop replace: the group is rewritten in place, no route moves.
    let o = m.apply(Event::NewNexthop(group(10, &[(1, 1)])));
    assert!(puts(&o.changes).is_empty(), "{:?}", o.changes);
    let g = groups_put(&o.changes);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0, *gid);
    assert_eq!(g[0].2.len(), 1);
    assert_eq!(g[0].2[0].1, (1 << 31) - 1);

    // A member replaced: the group that uses it follows.
    let o = m.apply(Event::NewNexthop(single(1, WAN, "10.0.2.9")));
    let nh = o.changes.iter().find_map(|c| match c {
        Change::PutNexthop { nh, .. } => Some(*nh),
        _ => None,
    });
    assert_eq!(
        nh.and_then(|n| n.gateway),
        Some("10.0.2.9".parse().unwrap())
    );
    assert_eq!(groups_put(&o.changes).len(), 1);

    // Deleted: the group is left to bpf_fib_lookup until the routes go.
    let o = m.apply(Event::DelNexthop(10));
    assert_eq!(groups_put(&o.changes), vec![(*gid, false, vec![])]);
}

#[test]
fn a_route_seen_before_its_object_is_fixed_when_the_object_comes() {
    let mut m = mirror();
    m.resync(snapshot());
    let mut r = route(TABLE_MAIN, "203.0.113.0/24", 20, RouteKind::Unicast, None);
    r.nhid = Some(5);
    let o = m.apply(Event::NewRoute(r));
    let g = groups_put(&o.changes);
    assert_eq!(g.len(), 1);
    assert!(g[0].2.is_empty(), "unknown object: fib");
    let o = m.apply(Event::NewNexthop(single(5, WAN, "10.0.2.2")));
    let g2 = groups_put(&o.changes);
    assert_eq!((g2[0].0, g2[0].2.len()), (g[0].0, 1));
}

#[test]
fn multipath_routes_with_equal_paths_share_a_group() {
    let mut m = mirror();
    m.resync(snapshot());
    let mp = |p: &str| multipath_via(p, "10.0.1.9", 3);
    let o = m.apply(Event::NewRoute(mp("203.0.113.0/24")));
    let g = groups_put(&o.changes);
    assert_eq!(g.len(), 1);
    assert_eq!(
        g[0].2.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![536_870_911, (1 << 31) - 1]
    );
    let o = m.apply(Event::NewRoute(mp("203.0.114.0/24")));
    assert!(groups_put(&o.changes).is_empty(), "shared: {:?}", o.changes);
    // Seed unknown: the datapath is told to leave multipath to the kernel.
    assert_eq!(m.config_flags() & CfgFlags::ACCEL_CFG_MP_HASH4.0, 0);
    let c = m.set_forwarding_sysctls(ForwardingSysctls {
        seed: 7,
        policy4: 1,
        policy6: 2,
        update_priority4: true,
    });
    assert!(c.contains(&Change::MpSeed(7)));
    let f = m.config_flags();
    assert_ne!(f & CfgFlags::ACCEL_CFG_MP_HASH4.0, 0);
    assert_ne!(f & CfgFlags::ACCEL_CFG_MP_L4_4.0, 0);
    assert_eq!(
        f & CfgFlags::ACCEL_CFG_MP_HASH6.0,
        0,
        "policy 2 is not reproduced"
    );
    // Nor left to bpf_fib_lookup for tunnelled packets, whose inner
    // headers only the kernel's own path hashes; seed or not.
    assert_ne!(f & CfgFlags::ACCEL_CFG_MP_INNER6.0, 0);
    assert_eq!(f & CfgFlags::ACCEL_CFG_MP_INNER4.0, 0);
    m.set_forwarding_sysctls(ForwardingSysctls {
        seed: 0,
        policy4: 3,
        policy6: 0,
        update_priority4: false,
    });
    let f = m.config_flags();
    assert_ne!(f & CfgFlags::ACCEL_CFG_MP_INNER4.0, 0);
    assert_eq!(f & CfgFlags::ACCEL_CFG_MP_INNER6.0, 0);
}

#[test]
fn blackholes_get_their_own_drop_counter_slot() {
    let mut m = mirror();
    m.resync(snapshot());
    let bh = |p| route(TABLE_MAIN, p, 0, RouteKind::Blackhole, None);
    let o = m.apply(Event::NewRoute(bh("192.0.2.0/24")));
    let slot = o.changes.iter().find_map(|c| match c {
        Change::PutBlackhole { id, prefix } => Some((*id, *prefix)),
        _ => None,
    });
    let (id, p) = slot.expect("a counter slot");
    assert_eq!(p, prefix("192.0.2.0/24"));
    assert!(o.changes.iter().any(
        |c| matches!(c, Change::PutRoute { entry: RouteEntry::Blackhole, nh_id, .. } if *nh_id == id)
    ));
    let o = m.apply(Event::DelRoute(bh("192.0.2.0/24")));
    assert!(o.changes.contains(&Change::DelBlackhole(id)));
}

#[test]
fn source_prefix_rules_are_mirrored_the_rest_uses_the_mirror() {
    let mut m = mirror();
    m.resync(snapshot());
    let (defaults, rules) = source_rule_set();
    let c = m.set_rules(rules);
    assert_eq!(
        c,
        source_rule_mirrored(),
        "the prefix is in the map before the flag"
    );
    let c = m.set_rules(defaults);
    assert_eq!(
        c,
        vec![
            Change::Config(CfgFlags::ACCEL_CFG_SRC_FULL4.0),
            Change::DelSrcRule(prefix("10.9.0.0/16"))
        ]
    );
}

#[test]
fn ipv6_append_joins_the_multipath_route_in_kernel_order() {
    let mut m = mirror();
    m.resync(snapshot());
    let r = |gw: &str, ifindex| {
        route(
            TABLE_MAIN,
            "2001:db8:9::/48",
            1024,
            RouteKind::Unicast,
            Some((ifindex, Some(gw))),
        )
    };
    m.apply(Event::NewRoute(r("fe80::1", WAN)));
    // The notification of an append lists the new path first.
    let mut e = r("fe80::2", LAN);
    e.nexthops.push(r("fe80::1", WAN).nexthops[0].clone());
    let o = m.apply(Event::AddRoute(e, RouteAdd::Append));
    let g = groups_put(&o.changes);
    assert_eq!(g.len(), 1, "{:?}", o.changes);
    let ids: Vec<u32> = g[0].2.iter().map(|p| p.0).collect();
    let id_of = |gw: &str| {
        o.changes
            .iter()
            .chain(std::iter::empty())
            .find_map(|c| match c {
                Change::PutNexthop { id, nh } if nh.gateway == Some(gw.parse().unwrap()) => {
                    Some(*id)
                }
                _ => None,
            })
    };
    // fe80::1's id was written by the first event; fe80::2's by this one.
    assert_eq!(
        ids[1],
        id_of("fe80::2").unwrap(),
        "the appended path is last"
    );
}

#[test]
fn routes_sharing_a_key_go_to_fib_and_their_removal_asks_for_a_dump() {
    let mut m = mirror();
    m.resync(snapshot());
    let r = |gw: &str| {
        route(
            TABLE_MAIN,
            "203.0.113.0/24",
            0,
            RouteKind::Unicast,
            Some((WAN, Some(gw))),
        )
    };
    m.apply(Event::NewRoute(r("10.0.2.2")));
    // The same route re-announced (an event replayed onto a dump that has
    // it), added alone (NLM_F_EXCL): nothing ambiguous.
    let o = m.apply(Event::AddRoute(r("10.0.2.2"), RouteAdd::Alone));
    assert!(puts(&o.changes).is_empty());
    assert!(!m.apply(Event::DelRoute(r("10.0.2.2"))).resync);
    m.apply(Event::NewRoute(r("10.0.2.2")));
    let o = m.apply(Event::AddRoute(r("10.0.2.3"), RouteAdd::Append));
    assert_eq!(
        puts(&o.changes)[&prefix("203.0.113.0/24")],
        RouteEntry::Fib(FibReason::SameKey)
    );
    let o = m.apply(Event::DelRoute(r("10.0.2.3")));
    assert!(o.resync, "which route remains is only known from a dump");

    // A dump with two routes of one key.
    let mut snap = snapshot();
    snap.routes.push(r("10.0.2.2"));
    snap.routes.push(r("10.0.2.3"));
    let mut m = mirror();
    let c = m.resync(snap);
    assert_eq!(
        puts(&c)[&prefix("203.0.113.0/24")],
        RouteEntry::Fib(FibReason::SameKey)
    );
}

/// IPv6 announces an address's local route with its device; an add of it
/// that a dump already held (an event replayed onto the dump) is the same
/// route, not a second one with its key. Seen in e2e under load, with a
/// link-local address (no longer mirrored, see
/// [`crate::model::Prefix::is_link_scoped`]): `fe80::.../128: mirror has
/// Fib(SameKey), kernel says Local`.
#[test]
fn a_local_route_announced_again_stays_local() {
    let mut m = mirror();
    m.resync(snapshot());
    let local = route(
        TABLE_LOCAL,
        "2001:db8::1/128",
        0,
        RouteKind::Local,
        Some((WAN, None)),
    );
    m.apply(Event::NewRoute(local.clone()));
    let o = m.apply(Event::AddRoute(local.clone(), RouteAdd::Prepend));
    assert!(puts(&o.changes).is_empty(), "{:?}", o.changes);
    assert_eq!(m.entry(&prefix("2001:db8::1/128")), Some(RouteEntry::Local));
    // It may as well have been a second route on another device: removing
    // one must not leave the mirror without the other unchecked.
    let o = m.apply(Event::DelRoute(local.clone()));
    assert!(o.resync, "which route remains is only known from a dump");
    // The same through a dump and the replay of the event that came
    // during it.
    let mut snap = snapshot();
    snap.routes.push(local.clone());
    let mut view = dumped_view(&m, &snap);
    m.replay(&mut view, &Event::AddRoute(local, RouteAdd::Prepend));
    assert_eq!(
        view.effective(&prefix("2001:db8::1/128"))
            .map(|c| m.nh_table.borrow().decode(c)),
        Some(RouteEntry::Local)
    );
}

/// A mirror synced with the default rules that has just seen a rule
/// event; the snapshot it synced from, and the rules with a source rule.
fn rules_being_read() -> (Mirror, KernelState, Vec<Rule>) {
    let mut m = mirror();
    let (defaults, rules) = source_rule_set();
    let mut before = snapshot();
    before.rules = defaults;
    m.resync(before.clone());
    m.apply(Event::RulesChanged);
    (m, before, rules)
}

/// A rule changed while a check dumped: the daemon read the rules after
/// the event, so they, not the dump's, are what the kernel has.
#[test]
fn a_check_takes_rules_read_after_a_rule_event() {
    let (mut m, before, rules) = rules_being_read();
    let pending = m.non_route_differences(before.clone(), &[Event::RulesChanged]);
    assert_eq!(
        pending,
        vec![],
        "still reading: both send all to the kernel"
    );
    m.set_rules(rules);
    let read = m.non_route_differences(before.clone(), &[Event::RulesChanged]);
    assert_eq!(read, vec![], "the rules read after the event count");
    // Without a rule event since the dump, its rules count: a difference.
    let drift = m.non_route_differences(before, &[]);
    assert!(
        drift.contains(&Change::DelSrcRule(prefix("10.9.0.0/16"))),
        "{drift:?}"
    );
}

/// A rule event before a check's dump whose rules are still being read:
/// the dump's (newer) rules say nothing about what the mirror will read.
#[test]
fn a_check_while_rules_are_read_is_clean() {
    let (m, before, rules) = rules_being_read();
    let mut after = before;
    after.rules = rules;
    let c = m.non_route_differences(after, &[]);
    assert_eq!(c, vec![]);
}

/// An `ip rule iif` interface keeps its flag while the rules are unread,
/// and one a newly read rule selects is flagged before the config lets
/// the datapath trust the mirror again.
#[test]
fn rule_interfaces_are_flagged_before_the_policy_flags_lift() {
    let mut m = mirror();
    m.resync(snapshot());
    let iif_rule = |name: String| Rule {
        has_selectors: true,
        iif_only: Some(name),
        ..rule4(100, 10, None)
    };
    let (mut rules, _) = source_rule_set();
    rules.push(iif_rule(format!("eth{LAN}")));
    m.set_rules(rules.clone());
    let o = m.apply(Event::RulesChanged);
    assert!(
        !o.changes
            .iter()
            .any(|c| matches!(c, Change::PutIface { .. })),
        "{:?}",
        o.changes
    );
    rules.push(iif_rule(format!("eth{WAN}")));
    let c = m.set_rules(rules);
    let flagged = |c: &Change| {
        matches!(c, Change::PutIface { ifindex, entry }
            if *ifindex == WAN && entry.flags & IfFlags::ACCEL_IF_RULES4.0 != 0)
    };
    let iface = c.iter().position(flagged).expect("WAN flagged");
    let config = c.iter().position(|c| matches!(c, Change::Config(_)));
    assert!(iface < config.expect("policy lifted"), "{c:?}");
}

/// A view of `snap`'s routes, built as a background dump builds one.
fn dumped_view(m: &Mirror, snap: &KernelState) -> View {
    fed(m.check_builder(), snap).finish()
}

/// `b` with `snap`'s routes added, as a dump's batches add them.
fn fed(mut b: ViewBuilder, snap: &KernelState) -> ViewBuilder {
    for r in snap.routes.iter().cloned() {
        b.add(r);
    }
    b
}

/// How many of `changes` are of the kind `kind` says.
fn count(changes: &[Change], kind: impl Fn(&Change) -> bool) -> usize {
    changes.iter().filter(|c| kind(c)).count()
}

/// `snap`'s routes read by `b` as a job reads a dump's batches, sealed.
fn read(m: &Mirror, mut b: DumpBuilder, snap: &KernelState) -> KernelRoutes {
    for r in snap.routes.iter().cloned() {
        b.add(r, m);
    }
    let mut k = b.finish(m);
    k.seal();
    k
}

/// What a check compares for `snap`: a full view of it (`full`), or an
/// overlay read against `m`'s live view.
fn checked(m: &Mirror, snap: &KernelState, full: bool) -> Checked {
    match read(m, m.check_dump_builder(full), snap) {
        KernelRoutes::Full(d) => Checked::Full(Box::new(d.view)),
        KernelRoutes::Against(o) => {
            assert!(!o.split(), "the test's dump is grouped by prefix");
            Checked::Against(o)
        }
    }
}

/// Both ways a check reads a dump.
const BOTH: [bool; 2] = [true, false];

fn compare_all(m: &Mirror, k: &Checked, snap: KernelState) -> Comparison {
    let others = m.non_route_differences(snap, &[]);
    let mut c = m.compare_start(&others, 10);
    // One prefix per step: the slowest interleaving.
    while !m.compare_step(k, &mut c, 1) {}
    c
}

#[test]
fn a_stepwise_check_finds_what_a_resync_would_change() {
    for full in BOTH {
        a_stepwise_check_finds_what_a_resync_would_change_(full);
    }
}

fn a_stepwise_check_finds_what_a_resync_would_change_(full: bool) {
    let mut m = mirror();
    m.resync(snapshot());
    let in_sync = compare_all(&m, &checked(&m, &snapshot(), full), snapshot());
    assert_eq!(in_sync.summary.total(), 0, "{:?}", in_sync.examples);

    let mut snap = snapshot();
    snap.routes
        .retain(|r| r.key.prefix != prefix("198.51.100.0/24"));
    snap.routes.push(route(
        TABLE_MAIN,
        "203.0.113.0/24",
        0,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.2"))),
    ));
    let c = compare_all(&m, &checked(&m, &snap, full), snap.clone());
    assert_eq!((c.summary.routes_put, c.summary.routes_deleted), (1, 1));
    assert!(c.examples.iter().any(|e| e.contains("198.51.100.0/24")));
    assert!(c
        .examples
        .iter()
        .any(|e| e.contains("missing from the mirror")));
    assert_eq!(m.entry(&prefix("203.0.113.0/24")), None, "nothing changed");
}

#[test]
fn events_after_the_dump_are_not_differences_once_replayed() {
    for full in BOTH {
        events_after_the_dump_are_not_differences_once_replayed_(full);
    }
}

fn events_after_the_dump_are_not_differences_once_replayed_(full: bool) {
    let mut m = mirror();
    m.resync(snapshot());
    let mut k = checked(&m, &snapshot(), full);
    // A route changes after the dump: the live mirror applies it...
    let moved = route(
        TABLE_MAIN,
        "198.51.100.0/24",
        0,
        RouteKind::Unicast,
        Some((LAN, Some("10.0.1.9"))),
    );
    let ev = Event::NewRoute(moved);
    m.apply(ev.clone());
    // ...and a check that did not see it would report it (the overlay
    // lets the live view stand in for what the dump saw as it was);
    let missed = compare_all(&m, &k, snapshot()).summary.total();
    assert_eq!(missed, usize::from(full));
    // replayed onto the check's view, it is no difference.
    m.replay_checked(&mut k, &ev);
    assert_eq!(compare_all(&m, &k, snapshot()).summary.total(), 0);
}

#[test]
fn events_between_sweep_steps_are_never_undone() {
    let mut m = mirror();
    m.resync(snapshot());
    let snap = snapshot();
    let view = dumped_view(&m, &snap);
    let mut out = Vec::new();
    let mut sweep = m.install(view, snap.clone(), &mut out);
    // Mid-sweep, a route is withdrawn and another added.
    m.sweep_step(&mut sweep, 1, &mut out);
    let gone = route(
        TABLE_MAIN,
        "198.51.100.0/24",
        0,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.2"))),
    );
    let new = route(
        TABLE_MAIN,
        "203.0.113.0/24",
        0,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.2"))),
    );
    m.apply(Event::DelRoute(gone.clone()));
    m.apply(Event::NewRoute(new.clone()));
    while !m.sweep_step(&mut sweep, 1, &mut out) {}
    assert_eq!(m.entry(&gone.key.prefix), None, "the withdrawal stands");
    assert!(m.entry(&new.key.prefix).is_some(), "the addition stands");
    let mut now = snapshot();
    now.routes.retain(|r| r.key.prefix != gone.key.prefix);
    now.routes.push(new);
    assert!(m.dry_run(now).is_empty(), "exactly the kernel's state");
}

/// The maps' pass of a check and of a resync reads the maps a part at a
/// time: stale routes spread over every part are all found.
/// [`snapshot`] and `n` more /24 routes under 100.0.0.0/8: spread over
/// every part of the maps.
fn snapshot_with_many(n: usize) -> KernelState {
    let mut snap = snapshot();
    for i in 0..n {
        let p = format!("100.{}.{}.0/24", i / 256, i % 256);
        let via = Some((WAN, Some("10.0.2.2")));
        snap.routes
            .push(route(TABLE_MAIN, &p, 0, RouteKind::Unicast, via));
    }
    snap
}

#[test]
fn the_maps_pass_finds_stale_routes_in_every_part() {
    for full in BOTH {
        the_maps_pass_finds_stale_routes_in_every_part_(full);
    }
}

fn the_maps_pass_finds_stale_routes_in_every_part_(full: bool) {
    let mut m = mirror();
    let stale = 3000;
    let snap = snapshot_with_many(stale);
    m.resync(snap.clone());
    let mut now = snap;
    now.routes
        .retain(|r| !r.key.prefix.to_string().starts_with("100."));
    let c = compare_all(&m, &checked(&m, &now, full), now.clone());
    assert_eq!(c.summary.routes_deleted, stale);
    let mut out = Vec::new();
    let mut sweep = resync_start(&mut m, &now, full, &[], &mut out);
    while !m.sweep_step(&mut sweep, 7, &mut out) {}
    assert_eq!(count(&out, |c| matches!(c, Change::DelRoute(_))), stale);
    assert!(m.dry_run(now).is_empty(), "exactly the kernel's state");
}

/// The view's pass of a check reads the dumped view a part at a time:
/// routes the mirror lacks, spread over every part, are all found.
#[test]
fn the_views_pass_finds_missing_routes_in_every_part() {
    for full in BOTH {
        let mut m = mirror();
        let missing = 3000;
        let snap = snapshot_with_many(missing);
        m.resync(snapshot());
        let c = compare_all(&m, &checked(&m, &snap, full), snap.clone());
        assert_eq!(c.summary.routes_put, missing, "{:?}", c.examples);
        assert_eq!(c.summary.routes_deleted, 0);
    }
}

/// A resync into filled maps passes its new view by parts, without a
/// sorted list: routes spread over every part are all written.
#[test]
fn a_resync_into_filled_maps_sweeps_the_view_by_parts() {
    let mut m = mirror();
    m.resync(snapshot());
    let added = 3000;
    let full = snapshot_with_many(added);
    let dumped = fed(m.view_builder(), &full).finish_with_prefixes();
    assert!(dumped.prefixes.is_none(), "no list into filled maps");
    let mut out = Vec::new();
    let mut sweep = m.install_sorted(dumped, full.clone(), &mut out);
    while !m.sweep_step(&mut sweep, 7, &mut out) {}
    assert_eq!(count(&out, |c| matches!(c, Change::PutRoute { .. })), added);
    assert!(m.dry_run(full).is_empty(), "exactly the kernel's state");
}

/// A prefix with routes in both the main and the local table is in two
/// parts of the view: a check counts its difference once, as a resync
/// makes one change.
#[test]
fn a_check_counts_a_prefix_of_two_tables_once() {
    for full in BOTH {
        a_check_counts_a_prefix_of_two_tables_once_(full);
    }
}

fn a_check_counts_a_prefix_of_two_tables_once_(full: bool) {
    let mut m = mirror();
    m.resync(snapshot());
    let mut k = snapshot();
    let local = route(
        TABLE_LOCAL,
        "198.51.100.0/24",
        0,
        RouteKind::Local,
        Some((LAN, None)),
    );
    k.routes.push(local);
    let c = compare_all(&m, &checked(&m, &k, full), k.clone());
    let resync = m.dry_run(k);
    let routes = |c: &Change| matches!(c, Change::PutRoute { .. } | Change::DelRoute(_));
    assert_eq!(count(&resync, routes), 1);
    assert_eq!(c.summary.total(), 1, "{:?}", c.examples);
    assert_eq!(c.examples.len(), 1);
}

/// A prefix an event adds to a part of the view already passed, and that
/// the maps' pass then skips because the view has it, is compared at the
/// end: the mirror's stale route under it is found. (The same holds for
/// one that moves from the local table, passed last, to the main one.)
#[test]
fn a_check_compares_what_events_touched_after_its_part_passed() {
    let mut m = mirror();
    let q = "203.0.113.0/24";
    let mut before = snapshot();
    let stale = route(
        TABLE_MAIN,
        q,
        10,
        RouteKind::Unicast,
        Some((LAN, Some("10.0.1.9"))),
    );
    before.routes.push(stale);
    m.resync(before);
    let k = snapshot();
    let view = dumped_view(&m, &k);
    let mut view = Checked::Full(Box::new(view.clone()));
    let others = m.non_route_differences(k, &[]);
    let mut c = m.compare_start(&others, 10);
    // One prefix a step, through the whole view pass: its local part,
    // passed last, holds some.
    let Checked::Full(v) = &view else {
        unreachable!()
    };
    let locals = v.local_prefixes().count();
    assert!(locals > 0);
    for _ in 0..v.main_prefixes().count() + locals {
        assert!(!m.compare_step(&view, &mut c, 1));
    }
    let main = route(
        TABLE_MAIN,
        q,
        20,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.2"))),
    );
    let ev = Event::NewRoute(main.clone());
    m.replay_compared(&mut view, &mut c, &ev);
    m.apply(ev);
    while !m.compare_step(&view, &mut c, 1) {}
    let mut now = snapshot();
    now.routes.push(main);
    assert!(!m.dry_run(now).is_empty(), "the mirror is stale");
    assert_eq!(c.summary.total(), 1, "{:?}", c.examples);
}

/// Starts a resync to `snap` as a job does, reading its dump into a full
/// view or an overlay on the live view; `log` (events that came during
/// the dump, already applied to `m`) is replayed after the install.
fn resync_start(
    m: &mut Mirror,
    snap: &KernelState,
    full: bool,
    log: &[Event],
    out: &mut Vec<Change>,
) -> Sweep {
    let routes = read(m, m.resync_builder(full), snap);
    install_read(m, routes, snap, log, out)
}

/// Installs what a resync's dump read, as a job does, and replays `log`
/// (the events that came during the dump, already applied to `m`): all
/// of it after a full view, what the overlay claims after an overlay.
fn install_read(
    m: &mut Mirror,
    routes: KernelRoutes,
    snap: &KernelState,
    log: &[Event],
    out: &mut Vec<Change>,
) -> Sweep {
    let (sweep, replayed) = match routes {
        KernelRoutes::Full(d) => (m.install_sorted(d, snap.clone(), out), log.to_vec()),
        KernelRoutes::Against(mut o) => {
            assert!(!o.split(), "the test's dump is grouped by prefix");
            let replayed = o.claim_logged(log.to_vec());
            (m.install_overlay(*o, snap.clone(), out), replayed)
        }
    };
    for ev in replayed {
        out.extend(m.apply(ev).changes);
    }
    sweep
}

fn via_wan(p: &str, metric: u32) -> Route {
    route(
        TABLE_MAIN,
        p,
        metric,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.2"))),
    )
}

/// A mirror gone stale, and the kernel's dump read while routes change:
/// - 40 prefixes the mirror has were withdrawn, 40 it lacks announced;
/// - 203.0.113.0/24 has a stale metric-10 route in the mirror; an event
///   during the dump adds one with metric 20 (the kernel's only one);
/// - another event withdraws a prefix the dump read already, and a third
///   announces one it reads later (its dump shows it).
///
/// Returns the mirror (events applied), what the job read, the events
/// logged, and the kernel's routes once they are all done.
struct Stale {
    m: Mirror,
    read: KernelRoutes,
    log: Vec<Event>,
    kernel: KernelState,
}

/// A mirror of [`snapshot_with_many`]`(400)` and a metric-10 route to
/// 203.0.113.0/24 via LAN that the kernel will have lost.
fn mirror_with_a_stale_route() -> Mirror {
    let mut m = mirror();
    let mut before = snapshot_with_many(400);
    before.routes.push(route(
        TABLE_MAIN,
        "203.0.113.0/24",
        10,
        RouteKind::Unicast,
        Some((LAN, Some("10.0.1.9"))),
    ));
    m.resync(before);
    m
}

fn stale_mirror_dumped_under_events(full: bool, check: bool) -> Stale {
    let mut m = mirror_with_a_stale_route();
    let mut now = snapshot_with_many(400);
    let withdrawn_before: Vec<Prefix> = (0..40)
        .map(|i| prefix(&format!("100.1.{i}.0/24")))
        .collect();
    now.routes
        .retain(|r| !withdrawn_before.contains(&r.key.prefix));
    for i in 0..40 {
        now.routes.push(via_wan(&format!("101.0.{i}.0/24"), 0));
    }
    let withdrawn = via_wan("100.0.0.0/24", 0);
    let announced = via_wan("101.1.0.0/24", 0);
    let q = via_wan("203.0.113.0/24", 20);
    // The dump as the kernel gives it: the announced prefix (read after
    // its event) at the end.
    let mut dump = now.clone();
    dump.routes.push(announced.clone());
    let mut b = if check {
        m.check_dump_builder(full)
    } else {
        m.resync_builder(full)
    };
    let half = dump.routes.len() / 2;
    assert!(dump.routes[..half].contains(&withdrawn));
    for r in dump.routes[..half].iter().cloned() {
        b.add(r, &m);
    }
    let log = vec![
        Event::NewRoute(q.clone()),
        Event::DelRoute(withdrawn.clone()),
        Event::NewRoute(announced.clone()),
    ];
    for ev in &log {
        m.apply(ev.clone());
    }
    for r in dump.routes[half..].iter().cloned() {
        b.add(r, &m);
    }
    let mut read = b.finish(&m);
    read.seal();
    let mut kernel = dump;
    kernel.routes.retain(|r| *r != withdrawn);
    kernel.routes.push(q);
    Stale {
        m,
        read,
        log,
        kernel,
    }
}

/// A check reads the dump against the live view while routes change: it
/// finds exactly what a resync would change (a stale route under a
/// prefix the dump lacked and an event set included), whichever way it
/// reads the dump.
#[test]
fn a_check_under_events_finds_what_a_resync_would_change() {
    for full in BOTH {
        let Stale {
            m,
            read,
            log,
            kernel,
        } = stale_mirror_dumped_under_events(full, true);
        let mut k = match read {
            KernelRoutes::Full(d) => Checked::Full(Box::new(d.view)),
            KernelRoutes::Against(o) => Checked::Against(o),
        };
        assert_eq!(matches!(k, Checked::Full(_)), full);
        for ev in &log {
            m.replay_checked(&mut k, ev);
        }
        let c = compare_all(&m, &k, kernel.clone());
        let resync = m.dry_run(kernel);
        let puts = count(&resync, |c| matches!(c, Change::PutRoute { .. }));
        let dels = count(&resync, |c| matches!(c, Change::DelRoute(_)));
        assert_eq!((puts, dels), (41, 40), "{resync:?}");
        assert_eq!(
            (c.summary.routes_put, c.summary.routes_deleted),
            (puts, dels),
            "full view: {full}; {:?}",
            c.examples
        );
    }
}

/// A resync reads the dump against the live view while routes change,
/// and more change during its sweep: it ends exactly at the kernel's
/// state, having kept what the events set.
#[test]
fn an_overlay_resync_under_events_ends_at_the_kernels_state() {
    for full in BOTH {
        let Stale {
            mut m,
            read,
            log,
            mut kernel,
        } = stale_mirror_dumped_under_events(full, false);
        let mut out = Vec::new();
        assert_eq!(matches!(read, KernelRoutes::Full(_)), full);
        let mut sweep = install_read(&mut m, read, &kernel, &log, &mut out);
        m.sweep_step(&mut sweep, 5, &mut out);
        let late = via_wan("102.0.0.0/24", 0);
        let gone = via_wan("100.1.100.0/24", 0);
        for ev in [Event::NewRoute(late.clone()), Event::DelRoute(gone.clone())] {
            m.note_swept(&mut sweep, &ev);
            out.extend(m.apply(ev).changes);
        }
        while !m.sweep_step(&mut sweep, 5, &mut out) {}
        kernel.routes.retain(|r| *r != gone);
        kernel.routes.push(late.clone());
        assert!(
            m.entry(&late.key.prefix).is_some(),
            "the late addition stands"
        );
        assert_eq!(
            m.entry(&prefix("203.0.113.0/24")),
            m.entry(&prefix("101.0.0.0/24")),
            "the stale metric-10 route is gone: via WAN now"
        );
        assert!(
            m.dry_run(kernel).is_empty(),
            "full view: {full}: exactly the kernel's state"
        );
    }
}

/// Should a dump bring a prefix's main routes in two runs, the overlay
/// says so (the job reads it again into a full view).
#[test]
fn an_overlay_knows_when_a_prefix_came_in_two_runs() {
    let mut m = mirror();
    m.resync(snapshot());
    let mut snap = snapshot();
    // Another main-table prefix in between: local routes do not end a run.
    snap.routes.push(via_wan("192.0.2.0/24", 0));
    snap.routes.push(via_wan("198.51.100.0/24", 50));
    match read(&m, m.check_dump_builder(false), &snap) {
        KernelRoutes::Against(o) => assert!(o.split()),
        KernelRoutes::Full(_) => panic!("an overlay was asked for"),
    }
    match read(&m, m.check_dump_builder(false), &snapshot()) {
        KernelRoutes::Against(o) => assert!(!o.split()),
        KernelRoutes::Full(_) => panic!("an overlay was asked for"),
    }
}

/// A prefix the dump lacked keeps its (stale) routes in the live view
/// until the sweep passes it (found by review). An event during the sweep
/// that adds a route to it with another metric must not leave the stale
/// route beside the new one (the kernel has only the new one).
#[test]
fn an_event_during_an_overlay_sweep_leaves_no_stale_route_beside_its_own() {
    for full in BOTH {
        let mut m = mirror_with_a_stale_route();
        // The kernel lost 203.0.113.0/24 (the event was lost: a stale
        // resync); its dump lacks it.
        let mut kernel = snapshot_with_many(400);
        let mut out = Vec::new();
        let mut sweep = resync_start(&mut m, &kernel, full, &[], &mut out);
        // Before the sweep reaches it, the prefix is announced again with
        // another metric.
        let new = via_wan("203.0.113.0/24", 20);
        let ev = Event::NewRoute(new.clone());
        m.note_swept(&mut sweep, &ev);
        out.extend(m.apply(ev).changes);
        while !m.sweep_step(&mut sweep, 5, &mut out) {}
        kernel.routes.push(new);
        assert_eq!(
            m.entry(&prefix("203.0.113.0/24")),
            m.entry(&prefix("100.0.0.0/24")),
            "full view: {full}: via WAN, the kernel's only route"
        );
        assert!(
            m.dry_run(kernel).is_empty(),
            "full view: {full}: exactly the kernel's state"
        );
    }
}

/// 2001:db8::/32 via two paths; one is deleted (applied live, logged)
/// while a resync's dump is read, before the dump reads the prefix or
/// after. Either way the resync ends with the path left.
fn a_partial_multipath_delete_during_a_resync(full: bool, dump_read_first: bool) {
    let mut m = mirror();
    let path = |ifindex, gw: &str| NextHop {
        ifindex,
        gateway: Some(gw.parse().unwrap()),
        flags: crate::model::NhFlags::empty(),
        weight: 1,
    };
    let v6 = |paths: Vec<NextHop>| Route {
        nexthops: paths.into(),
        ..route(TABLE_MAIN, "2001:db8::/32", 1024, RouteKind::Unicast, None)
    };
    let mut before = snapshot();
    before
        .routes
        .push(v6(vec![path(WAN, "fe80::1"), path(LAN, "fe80::2")]));
    m.resync(before.clone());
    let mut kernel = snapshot();
    kernel.routes.push(v6(vec![path(WAN, "fe80::1")]));
    let log = vec![Event::DelRoute(v6(vec![path(LAN, "fe80::2")]))];
    // Read first, the dump has both paths (the overlay lets the live
    // view stand in); read after, it has the one left.
    let dumped = if dump_read_first { &before } else { &kernel };
    let routes = read(&m, m.resync_builder(full), dumped);
    for ev in &log {
        m.apply(ev.clone());
    }
    let mut out = Vec::new();
    let mut sweep = install_read(&mut m, routes, &kernel, &log, &mut out);
    while !m.sweep_step(&mut sweep, 5, &mut out) {}
    let how = format!("full view: {full}, dump read first: {dump_read_first}");
    assert_eq!(
        m.entry(&prefix("2001:db8::/32")),
        Some(RouteEntry::Unicast(NhKey {
            ifindex: WAN,
            gateway: Some("fe80::1".parse().unwrap())
        })),
        "{how}: the path left stands"
    );
    assert!(m.dry_run(kernel).is_empty(), "{how}");
}

/// Replayed onto the live view, which had it already, a partial deletion
/// must not be applied twice (the overlay replays only what it holds;
/// found by review).
#[test]
fn an_overlay_resync_applies_a_partial_multipath_delete_once() {
    for full in BOTH {
        a_partial_multipath_delete_during_a_resync(full, true);
    }
}

/// Replayed onto a dump read after it, a partial deletion names a path
/// that is gone: it must not take the path left (the kernel's notification
/// names only the deleted path).
#[test]
fn a_partial_multipath_delete_replayed_onto_a_dump_that_has_it_removes_nothing() {
    for full in BOTH {
        a_partial_multipath_delete_during_a_resync(full, false);
    }
}

/// A resync replays, after installing an overlay, only the logged events
/// the live view has not applied: those of prefixes the overlay holds,
/// and all but main-table route events.
#[test]
fn an_overlay_replays_only_what_the_live_view_lacks() {
    let mut m = mirror();
    m.resync(snapshot());
    let KernelRoutes::Against(mut o) = read(&m, m.resync_builder(false), &snapshot()) else {
        panic!("an overlay into a filled mirror");
    };
    let seen = Event::NewRoute(via_wan("198.51.100.0/24", 0));
    let unseen = Event::NewRoute(via_wan("203.0.113.0/24", 0));
    let local = Event::NewRoute(route(
        TABLE_LOCAL,
        "10.0.1.7/32",
        0,
        RouteKind::Local,
        Some((LAN, None)),
    ));
    let link = Event::NewLink(link(LAN, true));
    let log = vec![seen, unseen.clone(), local.clone(), link.clone()];
    assert_eq!(o.claim_logged(log), vec![unseen, local, link]);
}

/// An IPv6 route through a nexthop group (nexthop_compat_mode=1: its
/// paths come expanded) never has sibling routes, so the kernel never
/// deletes one of its paths alone. When a member leaves the group (`ip
/// nexthop del`), the kernel sends no route event (remove_nh_grp_entry
/// notifies only RTM_NEWNEXTHOP): the stored expansion keeps the old
/// member. `ip -6 route del` then names fewer paths than stored, and must
/// still remove the whole route.
#[test]
fn an_ipv6_route_through_a_group_that_shrank_is_deleted_whole() {
    let mut m = mirror();
    let mut snap = snapshot();
    snap.nexthops = vec![
        single(1, WAN, "fe80::1"),
        single(2, LAN, "fe80::2"),
        group(10, &[(1, 1), (2, 1)]),
    ];
    m.resync(snap);
    let p = "2001:db8:5::/48";
    let mut r = two_path_v6_route(p);
    r.nhid = Some(10);
    m.apply(Event::NewRoute(r.clone()));
    assert_eq!(m.entry(&prefix(p)), Some(RouteEntry::Object(10)));
    // ip nexthop del id 2: the group shrinks, no route event.
    m.apply(Event::NewNexthop(group(10, &[(1, 1)])));
    m.apply(Event::DelNexthop(2));
    // ip -6 route del 2001:db8:5::/48: the whole route, as expanded now.
    r.nexthops.truncate(1);
    let o = m.apply(Event::DelRoute(r));
    assert!(
        o.changes.contains(&Change::DelRoute(prefix(p))),
        "{:?}",
        o.changes
    );
    assert_eq!(m.entry(&prefix(p)), None, "the kernel has no such route");
}

/// `ip -4 addr flush dev WAN`: with its last IPv4 address the kernel
/// disables IPv4 on the device (fib_inetaddr_event -> fib_disable_ip)
/// and deletes the routes through it without a notification; the
/// removal of one address of several does not.
#[test]
fn a_devices_last_ipv4_address_removed_asks_for_a_dump() {
    let mut m = mirror();
    let wan = |a: &str| Addr {
        ifindex: WAN,
        addr: a.parse().unwrap(),
        prefix_len: 24,
    };
    let mut snap = snapshot();
    snap.addrs
        .extend([wan("10.0.2.1"), wan("10.0.2.9"), wan("2001:db8:2::1")]);
    m.resync(snap);
    let o = m.apply(Event::DelAddr(wan("10.0.2.9")));
    assert!(!o.resync, "10.0.2.1 is left");
    let o = m.apply(Event::DelAddr(wan("2001:db8:2::1")));
    assert!(!o.resync, "IPv6 is not flushed with it");
    let o = m.apply(Event::DelAddr(wan("10.0.2.1")));
    assert!(o.resync, "the IPv4 routes through WAN went silently");
    // The same removal replayed onto a dump that already lacks it flushed
    // nothing the mirror holds.
    let o = m.apply(Event::DelAddr(wan("10.0.2.1")));
    assert!(!o.resync, "a removal the mirror had already seen");
}

/// A main-table IPv4 route to `p` via `gw` on `ifindex`.
fn via4(p: &str, ifindex: u32, gw: &str) -> Route {
    route(
        TABLE_MAIN,
        p,
        0,
        RouteKind::Unicast,
        Some((ifindex, Some(gw))),
    )
}

/// `ip route add blackhole 10.0.0.0/8 table local; ip route add
/// 10.1.0.0/16 via X`: without custom rules the kernel keeps the local and
/// main tables in one trie (fib_trie's merged tables; fib_unmerge splits
/// them once a rule is added, for good), so 10.1.1.1 takes the longer
/// main route; with a rule ever added, the local table's blackhole wins.
/// Which, accel cannot know: bpf_fib_lookup decides.
#[test]
fn a_main_route_inside_a_custom_local_route_goes_to_the_kernel() {
    let mut m = mirror();
    m.resync(snapshot());
    let mut bh = route(TABLE_LOCAL, "10.0.0.0/8", 0, RouteKind::Blackhole, None);
    bh.protocol = RouteProtocol::Boot;
    m.apply(Event::AddRoute(bh, RouteAdd::Prepend));
    m.apply(Event::AddRoute(
        via4("10.1.0.0/16", WAN, "10.0.2.2"),
        RouteAdd::Prepend,
    ));
    assert!(
        matches!(m.entry(&prefix("10.1.0.0/16")), Some(RouteEntry::Fib(_))),
        "{:?}",
        m.entry(&prefix("10.1.0.0/16"))
    );
    assert_eq!(m.entry(&prefix("10.0.0.0/8")), Some(RouteEntry::Blackhole));
    // Inside the kernel's own 127.0.0.0/8 (type local): passed to the
    // kernel either way, as before.
    m.apply(Event::AddRoute(
        via4("127.5.0.0/16", WAN, "10.0.2.2"),
        RouteAdd::Prepend,
    ));
    assert_eq!(m.entry(&prefix("127.5.0.0/16")), Some(RouteEntry::Local));
}

/// An RA-learned default route (`proto ra ... expires 1799sec`): once it
/// expires the kernel stops using it (fib6_check_expired) but deletes it
/// only at its next GC run; until then the mirror must not forward by it.
#[test]
fn a_route_that_expires_is_left_to_the_kernel() {
    let mut m = mirror();
    m.resync(snapshot());
    let mut ra = route(
        TABLE_MAIN,
        "::/0",
        1024,
        RouteKind::Unicast,
        Some((WAN, Some("fe80::1"))),
    );
    ra.expires = true;
    m.apply(Event::AddRoute(ra.clone(), RouteAdd::Prepend));
    assert_eq!(
        m.entry(&prefix("::/0")),
        Some(RouteEntry::Fib(FibReason::Expires))
    );
    // The same route made permanent (`ip -6 route replace` without
    // expires) is the mirror's again.
    ra.expires = false;
    m.apply(Event::NewRoute(ra));
    assert!(matches!(
        m.entry(&prefix("::/0")),
        Some(RouteEntry::Unicast(_))
    ));
}
/// `ip route add P via A; append P via B; replace P via C; del P via C`:
/// IPv4 replaces the first route of the key (fib_table_insert's
/// fa_first), which lookups then take; `P via B` stays, so deleting C
/// leaves the kernel with B, which only a dump tells.
#[test]
fn a_replace_among_routes_sharing_a_key_keeps_the_others() {
    let mut m = mirror();
    m.resync(snapshot());
    let p = "203.0.113.0/24";
    m.apply(Event::AddRoute(via4(p, LAN, "10.0.1.7"), RouteAdd::Prepend));
    m.apply(Event::AddRoute(via4(p, LAN, "10.0.1.8"), RouteAdd::Append));
    let c = via4(p, WAN, "10.0.2.2");
    m.apply(Event::NewRoute(c.clone()));
    assert!(
        matches!(m.entry(&prefix(p)), Some(RouteEntry::Unicast(k)) if k.ifindex == WAN),
        "the replacing route is first: {:?}",
        m.entry(&prefix(p))
    );
    let o = m.apply(Event::DelRoute(c));
    assert!(o.resync, "P via 10.0.1.8 remains");
    assert_eq!(
        m.entry(&prefix(p)),
        Some(RouteEntry::Fib(FibReason::SameKey)),
        "until the dump, bpf_fib_lookup decides"
    );
}

/// `ip route add P via A proto static; append P via A proto bgp; del P
/// proto bgp`: the same path, but two routes (fib_table_insert's
/// fa_match compares the whole fib_info, protocol included).
#[test]
fn an_ipv4_route_appended_with_the_same_path_is_a_second_route() {
    let mut m = mirror();
    m.resync(snapshot());
    let p = "203.0.113.0/24";
    m.apply(Event::AddRoute(via4(p, WAN, "10.0.2.2"), RouteAdd::Prepend));
    let mut bgp = via4(p, WAN, "10.0.2.2");
    bgp.protocol = RouteProtocol::Bgp;
    m.apply(Event::AddRoute(bgp.clone(), RouteAdd::Append));
    assert!(matches!(m.entry(&prefix(p)), Some(RouteEntry::Unicast(_))));
    let o = m.apply(Event::DelRoute(bgp.clone()));
    assert!(o.resync, "the static route remains");
    assert_eq!(
        m.entry(&prefix(p)),
        Some(RouteEntry::Fib(FibReason::SameKey))
    );

    // Both in a dump: two routes, not one announced twice.
    let mut snap = snapshot();
    snap.routes.push(via4(p, WAN, "10.0.2.2"));
    snap.routes.push(bgp.clone());
    let mut m = mirror();
    m.resync(snap);
    assert!(m.apply(Event::DelRoute(bgp)).resync);
}

/// `ip -6 route add P dev LAN metric 100; append P via gw1 dev WAN;
/// replace P via gw2 dev WAN`: IPv6 replaces the route that can join a
/// multipath route (fib6_add_rt2node) and picks between the two left by
/// score and round robin (find_rr_leaf): not the mirror's to tell.
#[test]
fn an_ipv6_replace_among_routes_sharing_a_key_stays_with_the_kernel() {
    let mut m = mirror();
    m.resync(snapshot());
    let p = "2001:db8:1::/64";
    let v6 = |nh| route(TABLE_MAIN, p, 100, RouteKind::Unicast, Some(nh));
    m.apply(Event::AddRoute(v6((LAN, None)), RouteAdd::Prepend));
    m.apply(Event::AddRoute(
        v6((WAN, Some("2001:db8:b::1"))),
        RouteAdd::Append,
    ));
    m.apply(Event::NewRoute(v6((WAN, Some("2001:db8:b::2")))));
    assert_eq!(
        m.entry(&prefix(p)),
        Some(RouteEntry::Fib(FibReason::SameKey))
    );
}

/// A route the kernel added alone with its key (NLM_F_EXCL), replayed
/// onto a dump that had two routes with the key: whatever the dump had
/// is gone, the route is the mirror's again and its removal is plain.
#[test]
fn a_route_added_alone_ends_what_shared_its_key() {
    let p = "203.0.113.0/24";
    let mut snap = snapshot();
    snap.routes.push(via4(p, WAN, "10.0.2.2"));
    snap.routes.push(via4(p, LAN, "10.0.1.7"));
    let mut m = mirror();
    m.resync(snap);
    assert_eq!(
        m.entry(&prefix(p)),
        Some(RouteEntry::Fib(FibReason::SameKey))
    );
    let a = via4(p, WAN, "10.0.2.3");
    m.apply(Event::AddRoute(a.clone(), RouteAdd::Alone));
    assert!(matches!(m.entry(&prefix(p)), Some(RouteEntry::Unicast(k)) if k.ifindex == WAN));
    let o = m.apply(Event::DelRoute(a));
    assert!(!o.resync);
    assert_eq!(m.entry(&prefix(p)), None);
}

/// A main-table route to `p` through nexthop object `id`.
fn via_object(p: &str, id: u32) -> Route {
    let mut r = route(TABLE_MAIN, p, 0, RouteKind::Unicast, None);
    r.nhid = Some(id);
    r
}

/// `ip nexthop add id 1 ...; ip route add P nhid 1; ip nexthop del id 1`:
/// the kernel deletes P with the object (__remove_nexthop_fib), telling
/// nothing for IPv4. Re-added, id 1 must not bring P back; once the
/// route events sent before the deletion are in, P still there means a
/// dump is due.
#[test]
fn a_route_through_a_deleted_object_is_not_revived_by_its_id() {
    let mut m = mirror();
    let mut snap = snapshot();
    snap.nexthops = vec![single(1, WAN, "10.0.2.2")];
    m.resync(snap.clone());
    let p = "203.0.113.0/24";
    m.apply(Event::AddRoute(via_object(p, 1), RouteAdd::Alone));
    let o = m.apply(Event::DelNexthop(1));
    assert!(o.settle_objects && !o.resync);
    let o = m.apply(Event::NewNexthop(single(1, LAN, "10.0.1.7")));
    assert!(
        groups_put(&o.changes)
            .iter()
            .all(|(_, _, paths)| paths.is_empty()),
        "P would be forwarded through the new object 1: {:?}",
        o.changes
    );
    let o = m.settle_objects();
    assert!(o.resync, "the kernel deleted P with object 1");
    assert!(o.changes.is_empty(), "1 stays unresolved: {:?}", o.changes);

    // The resync's dump: object 1 again, P gone. Once swept, 1 is the
    // mirror's again.
    snap.nexthops = vec![single(1, LAN, "10.0.1.7")];
    let c = m.resync(snap);
    assert!(c.contains(&Change::DelRoute(prefix(p))));
    let o = m.apply(Event::AddRoute(via_object(p, 1), RouteAdd::Alone));
    assert_eq!(groups_put(&o.changes)[0].2.len(), 1, "{:?}", o.changes);
}

/// FRR deletes nexthop groups no route uses any more, routinely, and the
/// route events that moved the routes off them may come after the
/// deletion (another socket): no dump for either.
#[test]
fn deleting_an_unused_object_costs_no_dump() {
    let mut m = mirror();
    let mut snap = snapshot();
    snap.nexthops = vec![single(1, WAN, "10.0.2.2"), single(2, WAN, "10.0.2.3")];
    m.resync(snap);
    let p = "203.0.113.0/24";
    m.apply(Event::AddRoute(via_object(p, 1), RouteAdd::Alone));
    m.apply(Event::DelNexthop(5));
    m.apply(Event::DelNexthop(1));
    // Sent before the deletion, applied after it.
    m.apply(Event::NewRoute(via_object(p, 2)));
    let o = m.settle_objects();
    assert!(!o.resync && o.changes.is_empty(), "{o:?}");
    assert!(m.settle_objects().changes.is_empty(), "settled once");
}

/// Deleting a group's member: the group shrinks (remove_nh_grp_entry),
/// its routes stay; deleting its last member takes the group, and its
/// routes, with it.
#[test]
fn a_group_follows_its_members_deletion() {
    let mut m = mirror_with_group_route(single(2, WAN, "10.0.2.3"));
    let o = m.apply(Event::DelNexthop(1));
    let g = groups_put(&o.changes);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].2.len(), 1, "group 10 keeps member 2");
    let o = m.settle_objects();
    assert!(!o.resync, "no route used object 1 itself");
    let o = m.apply(Event::DelNexthop(2));
    assert_eq!(groups_put(&o.changes)[0].2, vec![], "group 10 is gone");
    assert!(m.settle_objects().resync, "and its route with it");
}

/// IPv6 with nexthop_compat_mode 1 announces the deletion of the routes
/// through a deleted object (ip6_del_rt): once they are in, nothing is
/// left to a dump, and the id, added again, resolves.
#[test]
fn announced_deletions_settle_an_object_without_a_dump() {
    let mut m = mirror();
    let mut snap = snapshot();
    snap.nexthops = vec![single(1, WAN, "fe80::1")];
    m.resync(snap);
    let mut r = via_object("2001:db8:5::/48", 1);
    r.key.metric = 1024;
    m.apply(Event::AddRoute(r.clone(), RouteAdd::Alone));
    m.apply(Event::DelNexthop(1));
    m.apply(Event::NewNexthop(single(1, LAN, "fe80::2")));
    m.apply(Event::DelRoute(r.clone()));
    let o = m.settle_objects();
    assert!(!o.resync, "{o:?}");
    let o = m.apply(Event::AddRoute(r, RouteAdd::Alone));
    let g = groups_put(&o.changes);
    assert_eq!(g[0].2.len(), 1, "object 1 resolves: {:?}", o.changes);
}

/// A resync into filled maps after a used object was deleted and added
/// again: the route through it leaves the maps only when the sweep
/// passes it, so the object resolves only once the sweep is done. A
/// deletion during the dump (replayed) is settled afresh.
#[test]
fn a_resync_resolves_a_deleted_object_once_swept() {
    for full in [false, true] {
        let mut m = mirror();
        let mut snap = snapshot();
        snap.nexthops = vec![single(1, WAN, "10.0.2.2"), single(2, WAN, "10.0.2.3")];
        m.resync(snap.clone());
        m.apply(Event::AddRoute(
            via_object("203.0.113.0/24", 1),
            RouteAdd::Alone,
        ));
        m.apply(Event::AddRoute(
            via_object("203.0.114.0/24", 2),
            RouteAdd::Alone,
        ));
        m.apply(Event::DelNexthop(1));
        m.apply(Event::NewNexthop(single(1, LAN, "10.0.1.7")));
        assert!(m.settle_objects().resync);
        // The dump: 1 back, its route gone; 2 deleted during the dump.
        snap.nexthops = vec![single(1, LAN, "10.0.1.7"), single(2, WAN, "10.0.2.3")];
        snap.routes.push(via_object("203.0.114.0/24", 2));
        let log = [Event::DelNexthop(2)];
        m.apply(log[0].clone());
        let mut out = Vec::new();
        let mut sweep = resync_start(&mut m, &snap, full, &log, &mut out);
        while !m.sweep_step(&mut sweep, 1, &mut out) {}
        assert!(
            groups_put(&out)
                .iter()
                .all(|(_, _, paths)| paths.is_empty()),
            "full view: {full}: {out:?}"
        );
        assert!(out.contains(&Change::DelRoute(prefix("203.0.113.0/24"))));
        // Once swept, 1 is the mirror's again: a route through it resolves.
        let o = m.apply(Event::AddRoute(
            via_object("203.0.115.0/24", 1),
            RouteAdd::Alone,
        ));
        assert_eq!(
            groups_put(&o.changes).first().map(|g| g.2.len()),
            Some(1),
            "full view: {full}: {:?}",
            o.changes
        );
        assert!(m.settle_objects().resync, "full view: {full}: 2's route");
    }
}

/// With the code table full, a route through a next hop it has no room
/// for goes to bpf_fib_lookup, marked as a lack of room (`accel lookup`
/// says so), and the routes interned before keep theirs.
#[test]
fn a_full_code_table_leaves_new_next_hops_to_bpf_fib_lookup() {
    let mut m = mirror();
    // The snapshot's main-table next hops: (LAN, none), (WAN, 10.0.2.2).
    m.limit_interning(2);
    m.resync(snapshot());
    assert_eq!((m.interned(), m.interned_refused()), (2, 0));
    let o = m.apply(Event::NewRoute(route(
        TABLE_MAIN,
        "203.0.113.0/24",
        0,
        RouteKind::Unicast,
        Some((WAN, Some("10.0.2.9"))),
    )));
    let put = o.changes.iter().find_map(|c| match c {
        Change::PutRoute {
            prefix: p,
            entry,
            nh_id,
        } if *p == prefix("203.0.113.0/24") => Some((*entry, *nh_id)),
        _ => None,
    });
    assert_eq!(
        put,
        Some((
            RouteEntry::Fib(FibReason::Capacity),
            crate::bpf::types::accel_fib_mark::ACCEL_FIB_CAPACITY.0
        ))
    );
    assert_eq!(m.interned_refused(), 1);
    assert!(matches!(
        m.entry(&prefix("198.51.100.0/24")),
        Some(RouteEntry::Unicast(_))
    ));
}
