//! A whole RTM_NEWNEXTHOP / RTM_DELNEXTHOP message: header and attributes,
//! and what it says about a nexthop object.

use std::net::IpAddr;

use netlink_packet_core::NlasIterator;

use super::attribute::NexthopAttribute;
use super::header::{NexthopHeader, NHMSG_LEN};
use super::{GroupKind, NexthopEvent, NexthopObject, NexthopParseError, RTM_DELNEXTHOP};

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
const NEXTHOP_GRP_TYPE_MPATH: u16 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexthopMessage {
    pub header: NexthopHeader,
    pub attributes: Vec<NexthopAttribute>,
}

impl NexthopMessage {
    /// Parses the payload after the nlmsghdr.
    pub fn parse(payload: &[u8]) -> Result<NexthopMessage, NexthopParseError> {
        let header = NexthopHeader::parse(payload)?;
        let attributes = NlasIterator::new(&payload[NHMSG_LEN..])
            .map(|nla| {
                let nla = nla.map_err(|_| NexthopParseError::Truncated)?;
                NexthopAttribute::parse(&nla)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NexthopMessage { header, attributes })
    }

    /// What the message announces: a new or replaced object (RTM_NEWNEXTHOP)
    /// or a deleted one.
    pub fn event(&self, msg_type: u16) -> Result<NexthopEvent, NexthopParseError> {
        let mut id = None;
        let mut ifindex = None;
        let mut gateway = None;
        let mut blackhole = false;
        let mut special = false;
        let mut group = None;
        let mut group_type = NEXTHOP_GRP_TYPE_MPATH;
        let mut resilient = false;
        for a in &self.attributes {
            match a {
                NexthopAttribute::Id(v) => id = Some(*v),
                NexthopAttribute::Oif(v) => ifindex = Some(*v),
                NexthopAttribute::Blackhole => blackhole = true,
                NexthopAttribute::Gateway(g) => gateway = Some(self.gateway(*g)?),
                NexthopAttribute::Special => special = true,
                NexthopAttribute::GroupType(t) => group_type = *t,
                NexthopAttribute::Resilient => resilient = true,
                NexthopAttribute::Group(members) => group = Some(members.clone()),
                NexthopAttribute::Other(_) => {}
            }
        }
        let id = id.ok_or(NexthopParseError::NoId)?;
        if msg_type == RTM_DELNEXTHOP {
            return Ok(NexthopEvent::Del(id));
        }
        Ok(NexthopEvent::New(match group {
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
                flags: self.header.flags,
                special,
            },
        }))
    }

    /// The gateway, which must be of the message's family (nh_fill_info
    /// sets nh_family to the gateway's).
    fn gateway(&self, g: IpAddr) -> Result<IpAddr, NexthopParseError> {
        match (self.header.family, g) {
            (AF_INET, IpAddr::V4(_)) | (AF_INET6, IpAddr::V6(_)) => Ok(g),
            _ => Err(NexthopParseError::Truncated),
        }
    }
}
