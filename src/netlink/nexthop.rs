//! Nexthop objects (RTM_NEWNEXTHOP / RTM_DELNEXTHOP), which FRR installs and
//! routes refer to by `nhid`. netlink-packet-route 0.34 cannot decode these
//! messages, so accel reads them from raw netlink bytes itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::NhFlags;
pub use crate::model::{GroupKind, NexthopObject};

pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_GROUP_TYPE: u16 = 3;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NHA_ENCAP_TYPE: u16 = 7;
const NHA_ENCAP: u16 = 8;
const NHA_FDB: u16 = 11;
const NHA_RES_GROUP: u16 = 12;

const NEXTHOP_GRP_TYPE_MPATH: u16 = 0;
const NLA_TYPE_MASK: u16 = !(1 << 15 | 1 << 14);
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

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

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Iterates (type, payload) over netlink attributes.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), NexthopParseError>> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16_at(b, 0)? as usize;
        let kind = u16_at(b, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            b = &[];
            return Some(Err(NexthopParseError::Truncated));
        }
        let payload = &b[4..len];
        let aligned = (len + 3) & !3;
        b = b.get(aligned..).unwrap_or(&[]);
        Some(Ok((kind, payload)))
    })
}

/// Parses the payload (after the nlmsghdr) of a nexthop message. Returns
/// `Ok(None)` for message types that are not about nexthops.
pub fn parse(msg_type: u16, payload: &[u8]) -> Result<Option<NexthopEvent>, NexthopParseError> {
    if msg_type != RTM_NEWNEXTHOP && msg_type != RTM_DELNEXTHOP {
        return Ok(None);
    }
    // struct nhmsg { u8 family, scope, protocol, resvd; u32 flags; }
    let header = payload.get(..8).ok_or(NexthopParseError::Truncated)?;
    let family = header[0];
    let flags = u32_at(header, 4).ok_or(NexthopParseError::Truncated)?;

    let mut id = None;
    let mut ifindex = None;
    let mut gateway = None;
    let mut blackhole = false;
    let mut special = false;
    let mut group: Option<Vec<(u32, u32)>> = None;
    let mut group_type = NEXTHOP_GRP_TYPE_MPATH;
    let mut resilient = false;
    for attr in attrs(&payload[8..]) {
        let (kind, v) = attr?;
        match kind {
            NHA_ID => id = u32_at(v, 0),
            NHA_OIF => ifindex = u32_at(v, 0),
            NHA_BLACKHOLE => blackhole = true,
            NHA_GATEWAY => {
                gateway = match (family, v.len()) {
                    (AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
                    (AF_INET6, 16) => {
                        let octets: [u8; 16] = v.try_into().expect("length checked");
                        Some(IpAddr::V6(Ipv6Addr::from(octets)))
                    }
                    _ => return Err(NexthopParseError::Truncated),
                }
            }
            NHA_ENCAP_TYPE | NHA_ENCAP | NHA_FDB => special = true,
            NHA_GROUP_TYPE => group_type = u16_at(v, 0).ok_or(NexthopParseError::Truncated)?,
            NHA_RES_GROUP => resilient = true,
            // struct nexthop_grp { u32 id; u8 weight; u8 weight_high; u16 resvd; }
            NHA_GROUP => {
                let members = v
                    .chunks_exact(8)
                    .map(|m| {
                        let id = u32::from_ne_bytes(m[..4].try_into().expect("chunk of 8"));
                        // weight - 1 in 16 bits: 65536 is a valid weight.
                        let weight = (u32::from(m[5]) << 8 | u32::from(m[4])) + 1;
                        (id, weight)
                    })
                    .collect();
                group = Some(members);
            }
            _ => {}
        }
    }
    let id = id.ok_or(NexthopParseError::NoId)?;
    if msg_type == RTM_DELNEXTHOP {
        return Ok(Some(NexthopEvent::Del(id)));
    }
    let object = match group {
        Some(members) => NexthopObject::Group {
            id,
            kind: match (resilient, group_type) {
                (true, _) => GroupKind::Resilient,
                (false, NEXTHOP_GRP_TYPE_MPATH) => GroupKind::Multipath,
                (false, other) => GroupKind::Other(other),
            },
            members,
        },
        None => NexthopObject::Single {
            id,
            ifindex,
            gateway,
            blackhole,
            // nh_flags holds RTNH_F_* (nh_fill_info puts nhi_flags there).
            flags: NhFlags::from_bits_retain(flags as u8),
            special,
        },
    };
    Ok(Some(NexthopEvent::New(object)))
}

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// What one datagram of a nexthop socket held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Datagram {
    pub events: Vec<NexthopEvent>,
    /// It ended a dump (NLMSG_DONE, or the final ack of one).
    pub done: bool,
}

/// Splits a datagram into netlink messages and parses the nexthop ones;
/// messages that do not parse are logged and skipped, as is a tail too
/// short for its own header. Err(errno) when the kernel answered with an
/// error.
pub fn parse_datagram(mut b: &[u8], dumping: bool) -> Result<Datagram, i32> {
    let mut d = Datagram::default();
    while b.len() >= NLMSG_HDRLEN {
        let len = u32_at(b, 0).unwrap_or(0) as usize;
        let kind = u16_at(b, 4).unwrap_or(0);
        if len < NLMSG_HDRLEN || len > b.len() {
            break;
        }
        let payload = &b[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE => {
                d.done = true;
                return Ok(d);
            }
            NLMSG_ERROR => {
                // struct nlmsgerr starts with the (negative) errno; a
                // message too short for it acknowledges nothing.
                let errno = u32_at(payload, 0).unwrap_or(0) as i32;
                if errno != 0 {
                    return Err(errno.wrapping_neg());
                }
                if dumping {
                    d.done = true;
                    return Ok(d);
                }
            }
            _ => match parse(kind, payload) {
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
    use super::test_wire::{attr, group_members, msg, new_nexthop, nlmsg};
    use super::*;

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
