//! Nexthop objects (RTM_NEWNEXTHOP / RTM_DELNEXTHOP), which FRR installs and
//! routes refer to by `nhid`. netlink-packet-route 0.34 has no such message
//! family, so accel has its own, shaped like the crate's: [`header`]
//! (struct nhmsg), [`attribute`] (NHA_*) and [`message`], built on
//! netlink-packet-core's buffers.

pub mod attribute;
pub mod header;
pub mod message;

use netlink_packet_core::{ErrorBuffer, NetlinkBuffer, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR};

pub use crate::model::{GroupKind, NexthopObject};
use message::NexthopMessage;

pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NexthopEvent {
    New(NexthopObject),
    Del(u32),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NexthopParseError {
    #[error("nexthop message truncated")]
    Truncated,
    #[error("nexthop message without NHA_ID")]
    NoId,
}

/// Parses the payload (after the nlmsghdr) of a nexthop message. Returns
/// `Ok(None)` for message types that are not about nexthops.
pub fn parse(msg_type: u16, payload: &[u8]) -> Result<Option<NexthopEvent>, NexthopParseError> {
    if msg_type != RTM_NEWNEXTHOP && msg_type != RTM_DELNEXTHOP {
        return Ok(None);
    }
    NexthopMessage::parse(payload)?.event(msg_type).map(Some)
}

/// What one datagram of a nexthop socket held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Datagram {
    pub events: Vec<NexthopEvent>,
    /// It ended a dump (NLMSG_DONE, or the final ack of one).
    pub done: bool,
    /// A message of the dump carried NLM_F_DUMP_INTR: the objects changed
    /// while they were dumped, so the dump may be inconsistent.
    pub interrupted: bool,
}

/// Splits a datagram into netlink messages and parses the nexthop ones;
/// messages that do not parse are logged and skipped, as is a tail too
/// short for its own header. Err(errno) when the kernel answered with an
/// error.
pub fn parse_datagram(mut b: &[u8], dumping: bool) -> Result<Datagram, i32> {
    let mut d = Datagram::default();
    while let Ok(msg) = NetlinkBuffer::new_checked(b) {
        let len = msg.length() as usize;
        d.interrupted |= msg.flags() & NLM_F_DUMP_INTR != 0;
        match msg.message_type() {
            NLMSG_DONE => {
                d.done = true;
                return Ok(d);
            }
            NLMSG_ERROR => {
                // struct nlmsgerr starts with the (negative) errno; a
                // message too short for it acknowledges nothing.
                let errno = ErrorBuffer::new_checked(msg.payload())
                    .ok()
                    .and_then(|e| e.code())
                    .map_or(0, |c| c.get());
                if errno != 0 {
                    return Err(errno.wrapping_neg());
                }
                if dumping {
                    d.done = true;
                    return Ok(d);
                }
            }
            kind => match parse(kind, msg.payload()) {
                Ok(Some(e)) => d.events.push(e),
                Ok(None) => {}
                Err(e) => log::debug!("skipping a nexthop message: {e}"),
            },
        }
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(d)
}

#[cfg(test)]
mod test_wire;

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::attribute::*;
    use super::test_wire::{attr, group_members, msg, new_nexthop, nlmsg, AF_INET, AF_INET6};
    use super::*;
    use crate::model::NhFlags;
    use netlink_packet_core::NLMSG_ERROR;
    use std::net::{IpAddr, Ipv6Addr};

    #[test]
    fn single_ipv4_nexthop() {
        let m = msg(
            AF_INET,
            0,
            &[
                attr(NHA_ID, &12u32.to_ne_bytes()),
                attr(NHA_GATEWAY, &[192, 0, 2, 1]),
                attr(NHA_OIF, &3u32.to_ne_bytes()),
            ],
        );
        assert_eq!(
            parse(RTM_NEWNEXTHOP, &m),
            Ok(Some(NexthopEvent::New(NexthopObject::Single {
                id: 12,
                ifindex: Some(3),
                gateway: Some("192.0.2.1".parse().unwrap()),
                blackhole: false,
                flags: NhFlags::empty(),
                special: false,
            })))
        );
    }

    #[test]
    fn ipv6_link_local_gateway_and_onlink_flag() {
        let gw: Ipv6Addr = "fe80::1".parse().unwrap();
        let m = msg(
            AF_INET6,
            4,
            &[
                attr(NHA_ID, &7u32.to_ne_bytes()),
                attr(NHA_GATEWAY, &gw.octets()),
                attr(NHA_OIF, &2u32.to_ne_bytes()),
            ],
        );
        match parse(RTM_NEWNEXTHOP, &m) {
            Ok(Some(NexthopEvent::New(NexthopObject::Single { gateway, flags, .. }))) => {
                assert_eq!(gateway, Some(IpAddr::V6(gw)));
                assert_eq!(flags, NhFlags::Onlink);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn multipath_group_with_weights() {
        let mut members = Vec::new();
        for (id, w) in [(12u32, 0u8), (13, 2)] {
            members.extend(id.to_ne_bytes());
            members.extend([w, 0, 0, 0]);
        }
        let m = msg(
            0,
            0,
            &[
                attr(NHA_ID, &40u32.to_ne_bytes()),
                attr(NHA_GROUP, &members),
            ],
        );
        assert_eq!(
            parse(RTM_NEWNEXTHOP, &m),
            Ok(Some(NexthopEvent::New(NexthopObject::Group {
                id: 40,
                kind: GroupKind::Multipath,
                members: vec![(12, 1), (13, 3)],
            })))
        );
    }

    #[test]
    fn resilient_groups_blackholes_and_deletes() {
        let m = msg(
            0,
            0,
            &[
                attr(NHA_ID, &41u32.to_ne_bytes()),
                attr(NHA_GROUP, &[12, 0, 0, 0, 0, 0, 0, 0]),
                attr(NHA_GROUP_TYPE, &1u16.to_ne_bytes()),
                attr(NHA_RES_GROUP, &[]),
            ],
        );
        assert!(matches!(
            parse(RTM_NEWNEXTHOP, &m),
            Ok(Some(NexthopEvent::New(NexthopObject::Group {
                kind: GroupKind::Resilient,
                ..
            })))
        ));
        let bh = msg(
            AF_INET,
            0,
            &[attr(NHA_ID, &5u32.to_ne_bytes()), attr(NHA_BLACKHOLE, &[])],
        );
        assert!(matches!(
            parse(RTM_NEWNEXTHOP, &bh),
            Ok(Some(NexthopEvent::New(NexthopObject::Single {
                blackhole: true,
                ..
            })))
        ));
        let del = msg(AF_INET, 0, &[attr(NHA_ID, &5u32.to_ne_bytes())]);
        assert_eq!(parse(RTM_DELNEXTHOP, &del), Ok(Some(NexthopEvent::Del(5))));
    }

    #[test]
    fn group_weights_use_all_16_bits() {
        // Linux 6.12 extended NHA_GROUP weights to 1..=65536.
        let members = [(12, 65536), (13, 256), (14, 257), (15, 1)];
        let m = msg(
            0,
            0,
            &[
                attr(NHA_ID, &40u32.to_ne_bytes()),
                attr(NHA_GROUP, &group_members(&members)),
            ],
        );
        assert_eq!(
            parse(RTM_NEWNEXTHOP, &m),
            Ok(Some(NexthopEvent::New(NexthopObject::Group {
                id: 40,
                kind: GroupKind::Multipath,
                members: members.to_vec(),
            })))
        );
    }

    #[test]
    fn datagram_ending_in_a_short_error_message() {
        // nlmsg_len 16: no room for the errno; it acknowledges nothing.
        let mut d = new_nexthop(&msg(AF_INET, 0, &[attr(NHA_ID, &5u32.to_ne_bytes())]));
        d.extend(nlmsg(NLMSG_ERROR, &[]));
        let got = parse_datagram(&d, false).expect("no error");
        assert_eq!(got.events.len(), 1);
        assert!(!got.done);
        let mut err = nlmsg(NLMSG_ERROR, &(-libc::ENOENT).to_ne_bytes());
        assert_eq!(parse_datagram(&err, true), Err(libc::ENOENT));
        err.truncate(18);
        assert_eq!(parse_datagram(&err, true), Ok(Datagram::default()));
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        assert_eq!(
            parse(RTM_NEWNEXTHOP, &[2, 0, 0]),
            Err(NexthopParseError::Truncated)
        );
        let no_id = msg(AF_INET, 0, &[attr(NHA_OIF, &1u32.to_ne_bytes())]);
        assert_eq!(parse(RTM_NEWNEXTHOP, &no_id), Err(NexthopParseError::NoId));
        let mut bad_len = msg(AF_INET, 0, &[attr(NHA_ID, &1u32.to_ne_bytes())]);
        bad_len[8] = 200;
        assert_eq!(
            parse(RTM_NEWNEXTHOP, &bad_len),
            Err(NexthopParseError::Truncated)
        );
        let bad_gw = msg(
            AF_INET,
            0,
            &[
                attr(NHA_ID, &1u32.to_ne_bytes()),
                attr(NHA_GATEWAY, &[1, 2]),
            ],
        );
        assert_eq!(
            parse(RTM_NEWNEXTHOP, &bad_gw),
            Err(NexthopParseError::Truncated)
        );
        assert_eq!(parse(24, &[]), Ok(None));
    }
}

#[cfg(test)]
mod captured {
    //! Real kernel bytes (see captured/README.md).
    use super::*;
    use crate::model::NhFlags;

    fn datagrams(hex: &str) -> Vec<Vec<u8>> {
        hex.lines()
            .map(|l| {
                (0..l.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                    .collect()
            })
            .collect()
    }

    fn single(id: u32, gw: Option<&str>, flags: NhFlags) -> NexthopObject {
        NexthopObject::Single {
            id,
            ifindex: gw.map(|_| 3),
            gateway: gw.map(|g| g.parse().unwrap()),
            blackhole: gw.is_none(),
            flags,
            special: false,
        }
    }

    #[test]
    fn a_dump_from_linux_6_18() {
        let d = datagrams(include_str!("nexthop/captured/dump.hex"));
        assert_eq!(d.len(), 1);
        let got = parse_datagram(&d[0], true).unwrap();
        assert!(got.done && !got.interrupted);
        let none = NhFlags::empty();
        let want = vec![
            single(1, Some("192.0.2.1"), none),
            single(2, Some("fe80::1"), none),
            single(3, Some("192.0.2.9"), NhFlags::Onlink),
            single(4, None, none),
            NexthopObject::Group {
                id: 10,
                kind: GroupKind::Multipath,
                members: vec![(1, 1), (3, 200)],
            },
            NexthopObject::Group {
                id: 11,
                kind: GroupKind::Resilient,
                members: vec![(1, 1), (3, 1)],
            },
        ];
        let want: Vec<NexthopEvent> = want.into_iter().map(NexthopEvent::New).collect();
        assert_eq!(got.events, want);
    }

    #[test]
    fn notifications_from_linux_6_18() {
        let d = datagrams(include_str!("nexthop/captured/events.hex"));
        let events: Vec<NexthopEvent> = d
            .iter()
            .flat_map(|g| parse_datagram(g, false).unwrap().events)
            .collect();
        assert_eq!(
            events,
            vec![
                NexthopEvent::New(single(1, Some("192.0.2.5"), NhFlags::empty())),
                NexthopEvent::Del(10),
            ]
        );
    }

    /// NLM_F_DUMP_INTR on any message of a dump marks the datagram.
    #[test]
    fn an_interrupted_dump_is_flagged() {
        let mut d = datagrams(include_str!("nexthop/captured/dump.hex")).remove(0);
        // nlmsg_flags of the first message (bytes 6-7).
        let flags = u16::from_ne_bytes([d[6], d[7]]) | NLM_F_DUMP_INTR;
        d[6..8].copy_from_slice(&flags.to_ne_bytes());
        assert!(parse_datagram(&d, true).unwrap().interrupted);
    }
}
