//! An independent reference of what the kernel accepts for forwarding,
//! written from the kernel's receive and forwarding paths (not from the
//! datapath's C): necessary conditions only. A frame that fails them is one
//! the kernel drops, delivers locally, answers with an ICMP error, or
//! processes in ways XDP must leave to it; the datapath may never redirect
//! it, and may drop it only as the kernel would.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use accel::bpf::types::accel_if_flags as F;

use super::model::IfaceModel;
use super::pkt::{csum, ETH_HLEN, ETH_P_IP, ETH_P_IPV6};

/// The silent drop ip_rcv_core() / ip6_rcv_core(), or the martian-source
/// check at the top of ip_route_input_slow(), makes of a frame for this
/// host, named as the datapath's counter that stands for the kernel's
/// (InHdrErrors, InTruncatedPkts, in_martian_src).
pub fn header_drop(frame: &[u8], ingress: &IfaceModel) -> Option<&'static str> {
    let ip = &frame[ETH_HLEN.min(frame.len())..];
    match for_this_host(frame, ingress).ok()? {
        ETH_P_IP => ipv4_header_drop(ip),
        ETH_P_IPV6 => ipv6_header_drop(ip),
        _ => None,
    }
}

fn ipv4_header_drop(ip: &[u8]) -> Option<&'static str> {
    const HDR: Option<&str> = Some("drop_hdr_errors");
    if ip.len() < 20 {
        return HDR;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl || csum(&ip[..ihl]) != 0 {
        return HDR;
    }
    let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if tot > ip.len() {
        return Some("drop_truncated");
    }
    if tot < ihl {
        return HDR;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let unicast_dst =
        !(dst.is_multicast() || dst.is_broadcast() || dst.octets()[0] == 0 || dst.is_loopback());
    let martian = src.is_multicast() || src.is_broadcast() || src.octets()[0] == 0;
    (unicast_dst && martian).then_some("drop_martian_src")
}

fn ipv6_header_drop(ip: &[u8]) -> Option<&'static str> {
    const HDR: Option<&str> = Some("drop_hdr_errors");
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return HDR;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).expect("16 bytes"));
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).expect("16 bytes"));
    // Loopback either way off a loopback device; multicast destinations
    // of scope 0 or 1; a multicast source (RFC 4291).
    let scope = dst.octets()[1] & 0x0f;
    if src.is_loopback()
        || dst.is_loopback()
        || (dst.is_multicast() && scope <= 1)
        || src.is_multicast()
    {
        return HDR;
    }
    let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    // A zero length behind hop-by-hop options may be a jumbogram.
    ((plen != 0 || ip[6] != 0) && 40 + plen > ip.len()).then_some("drop_truncated")
}

/// A frame that reaches the kernel's route lookup.
#[derive(Debug, Clone, Copy)]
pub struct Routable {
    pub v6: bool,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IP packet's own length (tot_len, or payload_len + 40).
    pub l3_len: usize,
}

type Verdict = Result<Routable, &'static str>;

/// eth_type_trans(): only frames to the interface's own address are
/// PACKET_HOST; ip_rcv_core() and ipv6_rcv() drop PACKET_OTHERHOST, and
/// multicast or broadcast frames are never forwarded as unicast.
fn for_this_host(frame: &[u8], ingress: &IfaceModel) -> Result<u16, &'static str> {
    if frame.len() < ETH_HLEN {
        return Err("shorter than an Ethernet header");
    }
    if frame[0..6] != ingress.mac {
        return Err("destination MAC is not the interface's");
    }
    Ok(u16::from_be_bytes([frame[12], frame[13]]))
}

/// ip_rcv_core(), then the martian checks of ip_route_input_slow().
fn ipv4_routable(ip: &[u8]) -> Verdict {
    if ip.len() < 20 {
        return Err("truncated IPv4 header");
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 {
        return Err("IPv4 version or IHL invalid");
    }
    if ip.len() < ihl || csum(&ip[..ihl]) != 0 {
        return Err("IPv4 header truncated or checksum wrong");
    }
    let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if tot > ip.len() || tot < ihl {
        return Err("IPv4 total length beyond the frame or inside the header");
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if src.is_multicast() || src.is_broadcast() || src.octets()[0] == 0 || src.is_loopback() {
        return Err("martian source");
    }
    if dst.is_multicast() || dst.is_broadcast() || dst.octets()[0] == 0 || dst.is_loopback() {
        return Err("multicast, broadcast or martian destination");
    }
    Ok(Routable {
        v6: false,
        src: src.into(),
        dst: dst.into(),
        l3_len: tot,
    })
}

fn v4_mapped(a: &Ipv6Addr) -> bool {
    a.segments()[..6] == [0, 0, 0, 0, 0, 0xffff]
}

fn link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// ip6_rcv_core(): version, length, and the addresses RFC 4291 forbids on
/// the wire; hop-by-hop options are processed (and may be answered)
/// before any route is looked up.
fn ipv6_routable(ip: &[u8]) -> Verdict {
    if ip.len() < 40 {
        return Err("truncated IPv6 header");
    }
    if ip[0] >> 4 != 6 {
        return Err("IPv6 version invalid");
    }
    let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if 40 + plen > ip.len() {
        return Err("IPv6 payload length beyond the frame");
    }
    if ip[6] == 0 {
        return Err("hop-by-hop options (processed by the kernel first)");
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).expect("16 bytes"));
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).expect("16 bytes"));
    if src.is_multicast() || src.is_loopback() || v4_mapped(&src) {
        return Err("source multicast, loopback or v4-mapped");
    }
    if dst.is_loopback() || dst.is_multicast() || link_local(&dst) {
        // Multicast takes ip6_mc_input; link-local destinations are
        // looked up on the ingress only (rt6_need_strict).
        return Err("destination loopback, multicast or link-local");
    }
    Ok(Routable {
        v6: true,
        src: src.into(),
        dst: dst.into(),
        l3_len: 40 + plen,
    })
}

/// A frame the kernel would take to its route lookup (a blackhole route
/// then drops it silently, whatever its TTL).
pub fn routable(frame: &[u8], ingress: &IfaceModel) -> Verdict {
    match for_this_host(frame, ingress)? {
        ETH_P_IP => ipv4_routable(&frame[ETH_HLEN..]),
        ETH_P_IPV6 => ipv6_routable(&frame[ETH_HLEN..]),
        _ => Err("not IPv4 or IPv6"),
    }
}

/// A frame the kernel would forward as it is, given a route: routable,
/// forwarding on at the ingress (IN_DEV_FORWARD in ip_route_input_slow;
/// conf/<if>/forwarding for IPv6), TTL or hop limit above 1 (ip_forward,
/// ip6_forward), no IPv4 options (the kernel processes them: XDP must not
/// forward them), and a source ip6_forward accepts.
pub fn forwardable(frame: &[u8], ingress: &IfaceModel) -> Verdict {
    let r = routable(frame, ingress)?;
    let ip = &frame[ETH_HLEN..];
    let flags = ingress.entry.map_or(0, |e| e.flags);
    if r.v6 {
        if flags & F::ACCEL_IF_FWD6.0 == 0 {
            return Err("IPv6 forwarding off on the ingress");
        }
        if ip[7] <= 1 {
            return Err("hop limit <= 1");
        }
        let IpAddr::V6(src) = r.src else {
            unreachable!()
        };
        if src.is_unspecified() || link_local(&src) {
            return Err("source unspecified or link-local (ip6_forward)");
        }
    } else {
        if flags & F::ACCEL_IF_FWD4.0 == 0 {
            return Err("IPv4 forwarding off on the ingress");
        }
        if ip[0] & 0x0f != 5 {
            return Err("IPv4 options");
        }
        if ip[8] <= 1 {
            return Err("TTL <= 1");
        }
    }
    Ok(r)
}
