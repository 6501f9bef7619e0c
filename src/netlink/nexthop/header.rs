//! struct nhmsg, the fixed header of a nexthop message
//! (include/uapi/linux/nexthop.h).

use netlink_packet_core::{parse_u32, parse_u8};

use super::NexthopParseError;
use crate::model::NhFlags;

/// Its length on the wire: family, scope, protocol, a reserved byte and
/// 32 bits of flags.
pub const NHMSG_LEN: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NexthopHeader {
    pub family: u8,
    pub scope: u8,
    pub protocol: u8,
    /// nh_flags: RTNH_F_* (nh_fill_info puts nhi_flags there, all in the
    /// low byte).
    pub flags: NhFlags,
}

impl NexthopHeader {
    pub fn parse(payload: &[u8]) -> Result<NexthopHeader, NexthopParseError> {
        let b = payload
            .get(..NHMSG_LEN)
            .ok_or(NexthopParseError::Truncated)?;
        let byte = |i: usize| parse_u8(&b[i..=i]).map_err(|_| NexthopParseError::Truncated);
        let flags = parse_u32(&b[4..8]).map_err(|_| NexthopParseError::Truncated)?;
        Ok(NexthopHeader {
            family: byte(0)?,
            scope: byte(1)?,
            protocol: byte(2)?,
            flags: NhFlags::from_bits_retain(flags as u8),
        })
    }
}
