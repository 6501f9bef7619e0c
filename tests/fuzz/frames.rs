//! Random frames for a world, then mutated: truncated headers, bad IHL and
//! lengths, options and extension-header chains, fragments, every
//! EtherType, odd MAC bits. Most start valid and aimed at the world's
//! addresses, so that mutations land near the checks that matter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use accel::model::Prefix;

use super::addrs::{pool_addr, Family};
use super::pkt::{csum, eth, icmp, udp, ETH_HLEN, ETH_P_IP, ETH_P_IPV6, V4, V6};
use super::rng::Rng;
use super::world::World;

/// BPF_PROG_TEST_RUN refuses XDP frames shorter than an Ethernet header;
/// longer than a page minus head- and tailroom does not fit either.
pub const MIN_FRAME: usize = ETH_HLEN;
pub const MAX_FRAME: usize = 3000;

pub struct Frame {
    pub ingress: u32,
    pub bytes: Vec<u8>,
    /// How it was made, for the failure report.
    pub recipe: String,
}

pub fn frame(w: &World, rng: &mut Rng) -> Frame {
    let ingress = &w.ifaces[rng.weighted(&[70, 20, 10])];
    let (ethertype, l3, mut recipe) = match rng.weighted(&[45, 45, 10]) {
        0 => (ETH_P_IP, ipv4(w, rng), "ipv4".to_string()),
        1 => (ETH_P_IPV6, ipv6(w, rng), "ipv6".to_string()),
        _ => other_l3(rng),
    };
    let mut bytes = eth(dst_mac(ingress.mac, w, rng), src_mac(rng), ethertype, &l3);
    if rng.chance(10) {
        // Ethernet padding (or trailing junk) beyond the IP length.
        let n = rng.range(1, 40);
        bytes.extend(rng.bytes(n));
        recipe.push_str(&format!(" +{n} trailing"));
    }
    if rng.chance(35) {
        for _ in 0..rng.range(1, 3) {
            recipe.push_str(&format!(", {}", mutate(&mut bytes, rng)));
        }
    }
    bytes.truncate(MAX_FRAME);
    if bytes.len() < MIN_FRAME {
        bytes.resize(MIN_FRAME, 0);
    }
    Frame {
        ingress: ingress.ifindex,
        bytes,
        recipe,
    }
}

fn dst_mac(ingress: [u8; 6], w: &World, rng: &mut Rng) -> [u8; 6] {
    match rng.weighted(&[85, 3, 3, 3, 3, 3]) {
        0 => ingress,
        1 => [0xff; 6],
        2 => *rng.pick(&[[0x01, 0x00, 0x5e, 0, 0, 5], [0x33, 0x33, 0, 0, 0, 1]]),
        3 => {
            // The interface's MAC with the group bit set, or one bit off.
            let mut m = ingress;
            m[rng.below(6)] ^= 1 << rng.below(8);
            if rng.chance(50) {
                m = ingress;
                m[0] |= 1;
            }
            m
        }
        4 => w.ifaces[rng.below(w.ifaces.len())].mac,
        _ => rng.bytes(6).try_into().expect("6 bytes"),
    }
}

fn src_mac(rng: &mut Rng) -> [u8; 6] {
    let mut m = [0x02, 0, 0, 0, 0x01, 0x02];
    if rng.chance(10) {
        m = rng.bytes(6).try_into().expect("6 bytes");
    }
    m
}

fn other_l3(rng: &mut Rng) -> (u16, Vec<u8>, String) {
    let t = *rng.pick(&[
        0x0806, 0x8100, 0x88a8, 0x8847, 0x88cc, 0x86dd, 0x0800, 0x0000, 0xffff,
    ]);
    let t = if rng.chance(30) { rng.u16() } else { t };
    let n = rng.range(0, 80);
    (
        t,
        rng.bytes(n),
        format!("ethertype {t:#06x}, {n} random bytes"),
    )
}

/// A source or destination: the world's neighbours and gateways, the
/// router's own addresses, or the pool.
fn address(w: &World, rng: &mut Rng, fam: Family) -> IpAddr {
    let mut known: Vec<IpAddr> = w
        .mirror
        .neigh
        .keys()
        .chain(w.kernel.neigh.keys())
        .map(|(_, a)| *a)
        .filter(|a| a.is_ipv4() == (fam == Family::V4))
        .collect();
    known.sort();
    if !known.is_empty() && rng.chance(30) {
        return *rng.pick(&known);
    }
    // Inside a route's prefix, mirror or kernel: where forwards happen.
    let mut prefixes: Vec<Prefix> = w
        .mirror
        .routes
        .iter()
        .map(|(p, _)| *p)
        .chain(w.kernel.routes.iter().map(|(p, _)| *p))
        .filter(|p| p.addr().is_ipv4() == (fam == Family::V4))
        .collect();
    prefixes.sort_by_key(|p| (p.addr(), p.len()));
    if !prefixes.is_empty() && rng.chance(40) {
        return inside(rng.pick(&prefixes), rng);
    }
    if fam == Family::V4 && rng.chance(5) {
        let locals: Vec<Ipv4Addr> = w.mirror.local4.iter().copied().collect();
        let mut locals = locals;
        locals.sort();
        return IpAddr::V4(*rng.pick(&locals));
    }
    pool_addr(rng, fam)
}

/// A random address of `p`, its first and last ones often.
fn inside(p: &Prefix, rng: &mut Rng) -> IpAddr {
    let host_bits = match p.addr() {
        IpAddr::V4(_) => 32 - u32::from(p.len()),
        IpAddr::V6(_) => 128 - u32::from(p.len()),
    };
    let mask = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
    let host = match rng.below(4) {
        0 => 0,
        1 => mask,
        _ => (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) & mask,
    };
    match p.addr() {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) | host as u32)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) | host)),
    }
}

fn ttl(rng: &mut Rng) -> u8 {
    *rng.pick(&[0, 1, 2, 2, 64, 64, 64, 255])
}

/// An L4 payload of protocol `proto`: UDP, TCP-ish bytes, ICMP (errors
/// and echoes) or random.
fn l4(rng: &mut Rng, proto: u8, icmp_types: &[u8]) -> Vec<u8> {
    let len = *rng.pick(&[0usize, 8, 18, 40, 200, 1000, 1400, 1460, 1480, 2000]);
    match proto {
        17 => udp(rng.u16(), rng.u16(), len.saturating_sub(8)),
        1 | 58 => {
            let body = rng.bytes(len.saturating_sub(8));
            icmp(*rng.pick(icmp_types), rng.byte() & 3, &body)
        }
        _ => rng.bytes(len),
    }
}

fn ipv4(w: &World, rng: &mut Rng) -> Vec<u8> {
    let proto = *rng.pick(&[17, 17, 6, 1, 1, 47, 50, 132, 253]);
    let mut p = V4::udp(
        as4(address(w, rng, Family::V4)),
        as4(address(w, rng, Family::V4)),
    );
    p.proto = proto;
    p.payload = l4(rng, proto, &[0, 3, 4, 5, 8, 11, 12, 13]);
    p.ttl = ttl(rng);
    p.tos = if rng.chance(20) { rng.byte() } else { 0 };
    p.id = rng.u16();
    p.frag = match rng.weighted(&[60, 20, 10, 10]) {
        0 => 0x4000,
        1 => 0,
        2 => 0x2000 | (rng.u16() & 0x1fff),
        _ => rng.u16(),
    };
    if rng.chance(8) {
        let n = 4 * rng.range(1, 10);
        p.options = if rng.chance(50) {
            rng.bytes(n)
        } else {
            // Record route, then end of options.
            let mut o = vec![7, (n - 1).min(39) as u8, 4];
            o.resize(n, 0);
            o
        };
    }
    p.build()
}

fn as4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!("an IPv4 address was asked for"),
    }
}

fn as6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(_) => unreachable!("an IPv6 address was asked for"),
    }
}

/// Extension headers (hop-by-hop, routing, fragment, destination options,
/// AH, and ones the datapath has no name for) in front of an upper layer.
fn ext_chain(rng: &mut Rng, upper: u8, payload: Vec<u8>) -> (u8, Vec<u8>) {
    let mut next = upper;
    let mut body = payload;
    for _ in 0..rng.range(0, 4) {
        let kind = *rng.pick(&[0u8, 43, 44, 60, 51, 135, 139, 140]);
        let mut h = match kind {
            44 => {
                let off = if rng.chance(50) {
                    0
                } else {
                    rng.u16() & 0xfff9
                };
                let mut f = vec![next, 0];
                f.extend(off.to_be_bytes());
                f.extend(rng.u32().to_be_bytes());
                f
            }
            51 => {
                let units = rng.range(1, 4);
                let mut a = vec![next, units as u8];
                a.extend(rng.bytes((units + 2) * 4 - 2));
                a
            }
            _ => {
                let units = rng.range(0, 2);
                let mut e = vec![next, units as u8];
                e.extend(rng.bytes(units * 8 + 6));
                e
            }
        };
        h.extend(body);
        body = h;
        next = kind;
    }
    (next, body)
}

fn ipv6(w: &World, rng: &mut Rng) -> Vec<u8> {
    let upper = *rng.pick(&[17, 17, 6, 58, 58, 59, 50, 132]);
    let payload = l4(rng, upper, &[1, 2, 3, 4, 127, 128, 129, 133, 135, 136]);
    let (next, payload) = if rng.chance(30) {
        ext_chain(rng, upper, payload)
    } else {
        (upper, payload)
    };
    let mut p = V6::udp(
        as6(address(w, rng, Family::V6)),
        as6(address(w, rng, Family::V6)),
    );
    p.next = next;
    p.payload = payload;
    p.hop = ttl(rng);
    p.flow = rng.u32() & 0xfffff;
    p.tclass = if rng.chance(20) { rng.byte() } else { 0 };
    p.build()
}

/// Recomputes the IPv4 header checksum, so that a mutated header still
/// passes ip_rcv's first check and reaches the later ones.
fn fix_ipv4_checksum(f: &mut [u8]) {
    if f.len() < ETH_HLEN + 20 || f[12..14] != ETH_P_IP.to_be_bytes() {
        return;
    }
    let ihl = usize::from(f[ETH_HLEN] & 0x0f) * 4;
    if ihl < 20 || f.len() < ETH_HLEN + ihl {
        return;
    }
    f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&[0, 0]);
    let c = csum(&f[ETH_HLEN..ETH_HLEN + ihl]);
    f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&c.to_be_bytes());
}

/// One mutation; returns what it did.
fn mutate(f: &mut Vec<u8>, rng: &mut Rng) -> String {
    let l3 = ETH_HLEN;
    let what = match rng.weighted(&[20, 20, 10, 10, 10, 10, 8, 7, 5]) {
        0 => {
            let n = rng.range(MIN_FRAME, f.len().max(MIN_FRAME));
            f.truncate(n);
            format!("truncated to {n}")
        }
        1 => {
            let at = rng.below(f.len().min(l3 + 60));
            let bit = rng.below(8);
            f[at] ^= 1 << bit;
            format!("bit {bit} of byte {at} flipped")
        }
        2 if f.len() > l3 => {
            let v = rng.byte() & 0x0f;
            f[l3] = (f[l3] & 0xf0) | v;
            format!("IHL/version nibble set to {v}")
        }
        3 if f.len() > l3 => {
            let v = rng.byte() >> 4;
            f[l3] = (f[l3] & 0x0f) | v << 4;
            format!("version set to {v}")
        }
        4 if f.len() >= l3 + 6 => {
            // tot_len (IPv4) or payload_len (IPv6) near the truth.
            let at = if f[12..14] == ETH_P_IPV6.to_be_bytes() {
                l3 + 4
            } else {
                l3 + 2
            };
            let old = u16::from_be_bytes([f[at], f[at + 1]]);
            let v = match rng.below(3) {
                0 => old.wrapping_add(1),
                1 => old.wrapping_sub(rng.range(1, 30) as u16),
                _ => rng.u16(),
            };
            f[at..at + 2].copy_from_slice(&v.to_be_bytes());
            format!("length field {old} -> {v}")
        }
        5 => {
            let n = rng.range(1, 200);
            f.extend(rng.bytes(n));
            format!("{n} bytes appended")
        }
        6 if f.len() >= l3 + 8 => {
            let at = l3 + rng.below(f.len().min(l3 + 48) - l3);
            let v = rng.byte();
            f[at] = v;
            format!("byte {at} set to {v:#04x}")
        }
        7 => {
            let t = if rng.chance(50) { ETH_P_IP } else { ETH_P_IPV6 };
            f[12..14].copy_from_slice(&t.to_be_bytes());
            format!("ethertype set to {t:#06x}")
        }
        _ => "no change".to_string(),
    };
    if rng.chance(60) {
        fix_ipv4_checksum(f);
        what + " (checksum fixed)"
    } else {
        what
    }
}
