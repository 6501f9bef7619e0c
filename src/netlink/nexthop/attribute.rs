//! The NHA_* attributes of a nexthop message (include/uapi/linux/nexthop.h),
//! as far as accel reads them.

use std::net::IpAddr;

use netlink_packet_core::{parse_ip, parse_u16, parse_u32, NlaBuffer};

use super::NexthopParseError;

pub const NHA_ID: u16 = 1;
pub const NHA_GROUP: u16 = 2;
pub const NHA_GROUP_TYPE: u16 = 3;
pub const NHA_BLACKHOLE: u16 = 4;
pub const NHA_OIF: u16 = 5;
pub const NHA_GATEWAY: u16 = 6;
pub const NHA_ENCAP_TYPE: u16 = 7;
pub const NHA_ENCAP: u16 = 8;
pub const NHA_FDB: u16 = 11;
pub const NHA_RES_GROUP: u16 = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NexthopAttribute {
    Id(u32),
    /// (member id, weight 1..=65536).
    Group(Vec<(u32, u32)>),
    GroupType(u16),
    Blackhole,
    Oif(u32),
    Gateway(IpAddr),
    /// NHA_ENCAP_TYPE, NHA_ENCAP or NHA_FDB: not plain forwarding.
    Special,
    /// NHA_RES_GROUP: a resilient group.
    Resilient,
    Other(u16),
}

impl NexthopAttribute {
    pub fn parse(nla: &NlaBuffer<&[u8]>) -> Result<NexthopAttribute, NexthopParseError> {
        let v = nla.value();
        let bad = |_| NexthopParseError::Truncated;
        Ok(match nla.kind() {
            NHA_ID => NexthopAttribute::Id(parse_u32(v).map_err(bad)?),
            NHA_OIF => NexthopAttribute::Oif(parse_u32(v).map_err(bad)?),
            NHA_BLACKHOLE => NexthopAttribute::Blackhole,
            // 4 or 16 bytes by the message's family.
            NHA_GATEWAY => NexthopAttribute::Gateway(parse_ip(v).map_err(bad)?),
            NHA_ENCAP_TYPE | NHA_ENCAP | NHA_FDB => NexthopAttribute::Special,
            NHA_GROUP_TYPE => NexthopAttribute::GroupType(parse_u16(v).map_err(bad)?),
            NHA_RES_GROUP => NexthopAttribute::Resilient,
            NHA_GROUP => NexthopAttribute::Group(group_members(v)),
            other => NexthopAttribute::Other(other),
        })
    }
}

/// struct nexthop_grp { u32 id; u8 weight; u8 weight_high; u16 resvd; }
/// per member; the weight is sent minus one, in 16 bits since Linux 6.12
/// (so 65536 is a valid weight).
fn group_members(v: &[u8]) -> Vec<(u32, u32)> {
    v.chunks_exact(8)
        .map(|m| {
            let id = u32::from_ne_bytes([m[0], m[1], m[2], m[3]]);
            let weight = (u32::from(m[5]) << 8 | u32::from(m[4])) + 1;
            (id, weight)
        })
        .collect()
}
