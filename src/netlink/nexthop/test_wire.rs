//! Test-only encoder of nexthop messages, as the kernel lays them out
//! (struct nhmsg, then netlink attributes padded to 4 bytes).

use super::RTM_NEWNEXTHOP;

pub const AF_INET: u8 = libc::AF_INET as u8;
pub const AF_INET6: u8 = libc::AF_INET6 as u8;

/// One netlink attribute: header, payload, padding.
pub fn attr(kind: u16, v: &[u8]) -> Vec<u8> {
    let mut a = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
    a.extend(kind.to_ne_bytes());
    a.extend(v);
    while a.len() % 4 != 0 {
        a.push(0);
    }
    a
}

/// struct nhmsg (family, scope 0, protocol 196 as FRR, flags) and the
/// attributes.
pub fn msg(family: u8, flags: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![family, 0, 196, 0];
    m.extend(flags.to_ne_bytes());
    for a in attrs {
        m.extend(a);
    }
    m
}

/// The payload of NHA_GROUP: struct nexthop_grp { u32 id; u8 weight;
/// u8 weight_high; u16 resvd; } per member, with the weight as the
/// kernel sends it (the real weight minus one, 16 bits since Linux 6.12).
pub fn group_members(members: &[(u32, u32)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (id, weight) in members {
        let wire = (weight - 1) as u16;
        v.extend(id.to_ne_bytes());
        v.extend([wire as u8, (wire >> 8) as u8, 0, 0]);
    }
    v
}

/// A whole netlink message (nlmsghdr + payload), as one datagram carries
/// several of.
pub fn nlmsg(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = ((16 + payload.len()) as u32).to_ne_bytes().to_vec();
    m.extend(kind.to_ne_bytes());
    m.extend(0u16.to_ne_bytes()); // flags
    m.extend(1u32.to_ne_bytes()); // seq
    m.extend(0u32.to_ne_bytes()); // pid
    m.extend(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

/// The nlmsg of an RTM_NEWNEXTHOP.
pub fn new_nexthop(payload: &[u8]) -> Vec<u8> {
    nlmsg(RTM_NEWNEXTHOP, payload)
}
