//! The address pool of the fuzz worlds: routes, neighbours and frames draw
//! from the same few networks (and from special addresses), so that frames
//! hit routes, their edges and their neighbours' addresses often.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use accel::model::Prefix;

use super::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4 = 4,
    V6 = 6,
}

/// Networks the worlds' routes and frames are made of (IPv4).
const ANCHORS4: [[u8; 4]; 9] = [
    [10, 0, 1, 0],
    [10, 0, 2, 0],
    [10, 0, 3, 0],
    [198, 51, 100, 0],
    [203, 0, 113, 0],
    [192, 0, 2, 0],
    [100, 64, 0, 0],
    [172, 16, 0, 0],
    [8, 8, 8, 0],
];

const ANCHORS6: [&str; 8] = [
    "2001:db8:1::",
    "2001:db8:2::",
    "2001:db8:3::",
    "2001:db8:100::",
    "2001:db8:200::",
    "2400:cb00:2048:1::",
    "fd00:1:2::",
    "2a00:1450:4001::",
];

/// Addresses the kernel never forwards as plain unicast, or only with
/// care: zeronet, loopback, multicast, class E, broadcast, link-local,
/// the router's own.
const SPECIAL4: [[u8; 4]; 11] = [
    [0, 0, 0, 0],
    [0, 1, 2, 3],
    [127, 0, 0, 1],
    [224, 0, 0, 5],
    [239, 1, 2, 3],
    [240, 0, 0, 1],
    [255, 255, 255, 255],
    [169, 254, 1, 1],
    [10, 0, 2, 255],
    [10, 0, 2, 1],
    [10, 0, 1, 0],
];

const SPECIAL6: [&str; 11] = [
    "::",
    "::1",
    "::ffff:10.0.2.9",
    "::10.0.2.9",
    "fe80::1",
    "fe80::2:3",
    "ff02::1",
    "ff0e::1",
    "ff01::1",
    "2001:db8:2::1",
    "2001:db8:2::",
];

fn from6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().expect("address"))
}

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(a: u128) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

pub fn any_family(rng: &mut Rng) -> Family {
    *rng.pick(&[Family::V4, Family::V6])
}

/// The lab's subnet on interface `i` (in0 0, out0 1, x0 2).
pub fn connected(fam: Family, i: usize) -> Prefix {
    match fam {
        Family::V4 => Prefix::new(v4(0x0a00_0000 | (i as u32 + 1) << 8), 24),
        Family::V6 => Prefix::new(v6(from6("2001:db8::") | (i as u128 + 1) << 80), 64),
    }
    .expect("prefix")
}

/// Host `h` of the subnet on interface `i`.
pub fn host_on(fam: Family, i: usize, h: u8) -> IpAddr {
    match connected(fam, i).addr() {
        IpAddr::V4(a) => v4(u32::from(a) | u32::from(h)),
        IpAddr::V6(a) => v6(u128::from(a) | u128::from(h)),
    }
}

/// What the kernel's local table holds for interface `i`: its address,
/// and the broadcast (IPv4) or subnet-router anycast (IPv6) address.
pub fn router_locals(fam: Family, i: usize) -> Vec<IpAddr> {
    match fam {
        // No entry for the network address (there was one before 5.x).
        Family::V4 => vec![host_on(fam, i, 1), host_on(fam, i, 255)],
        Family::V6 => vec![host_on(fam, i, 1), host_on(fam, i, 0)],
    }
}

/// A next hop's gateway: a host on a lab subnet, a link-local address, or
/// anything from the pool.
pub fn gateway(rng: &mut Rng, fam: Family) -> IpAddr {
    match rng.weighted(&[60, 15, 25]) {
        0 => host_on(fam, rng.below(3), rng.range(2, 9) as u8),
        1 if fam == Family::V6 => v6(from6("fe80::") | rng.range(1, 9) as u128),
        _ => pool_addr(rng, fam),
    }
}

/// An address: mostly near an anchor (low bits small or random), at times
/// special, at times anything.
pub fn pool_addr(rng: &mut Rng, fam: Family) -> IpAddr {
    let special = rng.chance(8);
    let anything = rng.chance(4);
    let low_bits = *rng.pick(&[4u32, 4, 8, 16]);
    match fam {
        Family::V4 if special => IpAddr::from(*rng.pick(&SPECIAL4)),
        Family::V4 if anything => v4(rng.u32()),
        Family::V4 => {
            let base = u32::from_be_bytes(*rng.pick(&ANCHORS4));
            v4(base ^ (rng.u32() & ((1 << low_bits) - 1)))
        }
        Family::V6 if special => v6(from6(SPECIAL6[rng.below(SPECIAL6.len())])),
        Family::V6 if anything => v6(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())),
        Family::V6 => {
            let base = from6(ANCHORS6[rng.below(ANCHORS6.len())]);
            let low = u128::from(rng.next_u64()) & ((1 << low_bits) - 1);
            let mid = if rng.chance(20) {
                u128::from(rng.u16()) << 64
            } else {
                0
            };
            v6(base ^ low ^ mid)
        }
    }
}

/// A prefix around a pool address, of any length (short ones rarely).
pub fn pool_prefix(rng: &mut Rng, fam: Family) -> Prefix {
    let addr = pool_addr(rng, fam);
    let len = match fam {
        Family::V4 => {
            if rng.chance(5) {
                rng.range(0, 7)
            } else {
                rng.range(8, 32)
            }
        }
        Family::V6 => match rng.weighted(&[5, 60, 20, 15]) {
            0 => rng.range(0, 15),
            1 => rng.range(16, 64),
            2 => rng.range(65, 127),
            _ => 128,
        },
    };
    Prefix::new(addr, len as u8).expect("prefix length in range")
}
