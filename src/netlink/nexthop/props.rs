//! Property tests of the nexthop-message parser, which reads bytes from the
//! kernel that no library checked first: any input is an error or an
//! event, never a panic, and every message the kernel can send parses back
//! to the object it describes.
//!
//! `PROPTEST_CASES=N` sets the cases per property (10,000 by default; see
//! docs/fuzzing.md for a long run). A failure prints the minimal input and
//! records its seed in proptest-regressions/, which is replayed first on
//! every later run.

use std::net::IpAddr;

use proptest::collection::vec;
use proptest::prelude::*;

use super::attribute::*;
use super::test_wire::{attr, group_members, msg, new_nexthop, nlmsg, AF_INET, AF_INET6};
use super::*;
use crate::model::NhFlags;
use netlink_packet_core::{NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLMSG_DONE};

/// Attribute types the parser does not know (NHA_GROUPS, NHA_MASTER,
/// NHA_OP_FLAGS... and beyond), which it must skip.
const UNKNOWN_ATTRS: [u16; 6] = [0, 9, 10, 13, 14, 200];

fn gateway() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

/// A single next hop as the kernel can announce one.
fn single() -> impl Strategy<Value = NexthopObject> {
    (
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(gateway()),
        any::<bool>(),
        any::<u8>().prop_map(NhFlags::from_bits_retain),
        any::<bool>(),
    )
        .prop_map(
            |(id, ifindex, gateway, blackhole, flags, special)| NexthopObject::Single {
                id,
                ifindex,
                gateway,
                blackhole,
                flags,
                special,
            },
        )
}

/// A group: weights 1..=65536 (16-bit on the wire since Linux 6.12).
fn group() -> impl Strategy<Value = NexthopObject> {
    let kind = prop_oneof![
        Just(GroupKind::Multipath),
        Just(GroupKind::Resilient),
        (1u16..).prop_map(GroupKind::Other),
    ];
    (any::<u32>(), kind, vec((any::<u32>(), weight()), 0..40))
        .prop_map(|(id, kind, members)| NexthopObject::Group { id, kind, members })
}

/// Weights 1..=65536, the edges of the 8- and 16-bit wire fields often.
fn weight() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![1u32, 2, 255, 256, 257, 65535, 65536]),
        1u32..=65536,
    ]
}

fn object() -> impl Strategy<Value = NexthopObject> {
    prop_oneof![single(), group()]
}

/// The attributes announcing `o`, in the kernel's order; the family byte.
fn attributes(o: &NexthopObject) -> (u8, u32, Vec<Vec<u8>>) {
    let mut a = vec![attr(NHA_ID, &o.id().to_ne_bytes())];
    match o {
        NexthopObject::Single {
            ifindex,
            gateway,
            blackhole,
            flags,
            special,
            ..
        } => {
            let family = match gateway {
                Some(IpAddr::V4(g)) => {
                    a.push(attr(NHA_GATEWAY, &g.octets()));
                    AF_INET
                }
                Some(IpAddr::V6(g)) => {
                    a.push(attr(NHA_GATEWAY, &g.octets()));
                    AF_INET6
                }
                None => AF_INET,
            };
            if let Some(i) = ifindex {
                a.push(attr(NHA_OIF, &i.to_ne_bytes()));
            }
            if *blackhole {
                a.push(attr(NHA_BLACKHOLE, &[]));
            }
            if *special {
                a.push(attr(NHA_ENCAP_TYPE, &1u16.to_ne_bytes()));
            }
            (family, u32::from(flags.bits()), a)
        }
        NexthopObject::Group { kind, members, .. } => {
            a.push(attr(NHA_GROUP, &group_members(members)));
            match kind {
                GroupKind::Multipath => {}
                GroupKind::Resilient => {
                    a.push(attr(NHA_GROUP_TYPE, &1u16.to_ne_bytes()));
                    a.push(attr(NHA_RES_GROUP, &[]));
                }
                GroupKind::Other(t) => a.push(attr(NHA_GROUP_TYPE, &t.to_ne_bytes())),
            }
            (0, 0, a)
        }
    }
}

/// `o` as a message whose attributes come in an order of the test's
/// choosing, with unknown attributes between them and the NLA_F_* bits
/// set on some: none of that may change what it says.
fn encode(
    o: &NexthopObject,
    order: &[usize],
    noise: &[(usize, Vec<u8>)],
    bits: &[bool],
) -> Vec<u8> {
    let (family, flags, mut attrs) = attributes(o);
    for (i, a) in attrs.iter_mut().enumerate() {
        if bits.get(i).copied().unwrap_or(false) {
            let kind = u16::from_ne_bytes([a[2], a[3]]) | NLA_F_NET_BYTEORDER;
            a[2..4].copy_from_slice(&kind.to_ne_bytes());
        }
    }
    let n = attrs.len();
    let mut shuffled: Vec<Vec<u8>> = Vec::new();
    let mut taken = vec![false; n];
    for k in order.iter().map(|k| k % n) {
        if !taken[k] {
            taken[k] = true;
            shuffled.push(attrs[k].clone());
        }
    }
    shuffled.extend((0..n).filter(|k| !taken[*k]).map(|k| attrs[k].clone()));
    for (at, payload) in noise {
        let kind = UNKNOWN_ATTRS[at % UNKNOWN_ATTRS.len()] | NLA_F_NESTED;
        shuffled.insert(at % (shuffled.len() + 1), attr(kind, payload));
    }
    msg(family, flags, &shuffled)
}

/// What a mutation does to a valid message.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Truncate(usize),
    Insert {
        at: usize,
        byte: u8,
    },
    Remove(usize),
    /// Overwrite a 16-bit field (attribute lengths and types are).
    Word {
        at: usize,
        value: u16,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), any::<u16>()).prop_map(|(at, value)| Mutation::Word { at, value }),
    ]
}

fn mutate(m: &mut Vec<u8>, how: &Mutation) {
    let n = m.len().max(1);
    match *how {
        Mutation::Flip { at, mask } => {
            if let Some(b) = m.get_mut(at % n) {
                *b ^= mask;
            }
        }
        Mutation::Truncate(at) => m.truncate(at % n),
        Mutation::Insert { at, byte } => m.insert(at % (m.len() + 1), byte),
        Mutation::Remove(at) => {
            if !m.is_empty() {
                m.remove(at % n);
            }
        }
        Mutation::Word { at, value } => {
            let at = at % n;
            if at + 2 <= m.len() {
                m[at..at + 2].copy_from_slice(&value.to_ne_bytes());
            }
        }
    }
}

/// One netlink message of any type the socket may see (nexthop or not,
/// NLMSG_ERROR and NLMSG_DONE with payloads of any length), its length
/// field true to its bytes.
fn message() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        Just(RTM_NEWNEXTHOP),
        Just(RTM_DELNEXTHOP),
        Just(NLMSG_ERROR),
        Just(NLMSG_DONE),
        any::<u16>(),
    ];
    // Short payloads often: control messages too short for what they
    // announce are the interesting ones.
    let payload = prop_oneof![
        object().prop_map(|o| encode(&o, &[], &[], &[])),
        vec(any::<u8>(), 0..8),
        vec(any::<u8>(), 0..40),
    ];
    (kind, payload).prop_map(|(kind, p)| nlmsg(kind, &p))
}

/// 10,000 cases per property unless PROPTEST_CASES says otherwise: about
/// a second in all, enough to reach the short control messages at the end
/// of a datagram (a case 1 in a few thousand).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 10_000;
    }
    c
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_kernel_message_parses_back(
        o in object(),
        order in vec(any::<usize>(), 0..8),
        noise in vec((any::<usize>(), vec(any::<u8>(), 0..12)), 0..3),
        bits in vec(any::<bool>(), 0..8),
    ) {
        let m = encode(&o, &order, &noise, &bits);
        prop_assert_eq!(parse(RTM_NEWNEXTHOP, &m), Ok(Some(NexthopEvent::New(o.clone()))));
        prop_assert_eq!(parse(RTM_DELNEXTHOP, &m), Ok(Some(NexthopEvent::Del(o.id()))));
    }

    #[test]
    fn arbitrary_bytes_never_panic(kind in 100u16..110, bytes in vec(any::<u8>(), 0..300)) {
        let r = parse(kind, &bytes);
        if kind != RTM_NEWNEXTHOP && kind != RTM_DELNEXTHOP {
            prop_assert_eq!(r, Ok(None));
        } else if bytes.len() < 8 {
            prop_assert_eq!(r, Err(NexthopParseError::Truncated));
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        o in object(),
        mutations in vec(mutation(), 1..6),
    ) {
        let mut m = encode(&o, &[], &[], &[]);
        for how in &mutations {
            mutate(&mut m, how);
        }
        let new = parse(RTM_NEWNEXTHOP, &m);
        let del = parse(RTM_DELNEXTHOP, &m);
        // Whatever the bytes, both message types agree on the id.
        match (new, del) {
            (Ok(Some(NexthopEvent::New(o))), Ok(Some(NexthopEvent::Del(id)))) => {
                prop_assert_eq!(o.id(), id)
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (new, del) => prop_assert!(false, "NEW gave {:?}, DEL gave {:?}", new, del),
        }
    }

    #[test]
    fn datagrams_yield_every_message_in_order(
        objects in vec(object(), 0..6),
        done in any::<bool>(),
    ) {
        let mut d = Vec::new();
        for o in &objects {
            d.extend(new_nexthop(&encode(o, &[], &[], &[])));
        }
        if done {
            d.extend(nlmsg(NLMSG_DONE, &0u32.to_ne_bytes()));
        }
        let want: Vec<NexthopEvent> = objects.into_iter().map(NexthopEvent::New).collect();
        prop_assert_eq!(parse_datagram(&d, true), Ok(Datagram { events: want, done, interrupted: false }));
    }

    #[test]
    fn mutated_datagrams_never_panic(
        messages in vec(message(), 1..5),
        mutations in vec(mutation(), 0..4),
        dumping in any::<bool>(),
    ) {
        let mut d: Vec<u8> = messages.concat();
        for how in &mutations {
            mutate(&mut d, how);
        }
        let _ = parse_datagram(&d, dumping);
    }
}
