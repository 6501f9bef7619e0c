//! Benchmark traffic: the skeleton of `src/bpf/trafgen.bpf.c` and the pure
//! parts of `accel-trafgen` (frame templates, checksums, destinations drawn
//! from inside a set of prefixes).

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};

use accel_packet::{self as packet, V4, V6};

accel::skeleton!("trafgen.skel.rs");
pub use skel::*;

pub use accel_packet::ETH_HLEN;
pub const IPV4_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
pub const UDP_HLEN: usize = 8;
/// Frame-check sequence: counted on the wire, absent from the buffer.
pub const FCS_LEN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl std::str::FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (a, l) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.parse().map_err(|e| format!("{s}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = if l.is_empty() {
            max
        } else {
            l.parse::<u8>().map_err(|e| format!("{s}: {e}"))?
        };
        if len > max {
            return Err(format!("{s}: prefix length above {max}"));
        }
        Ok(Prefix { addr, len })
    }
}

/// A random address inside `p`: the prefix bits kept, the rest random.
pub fn random_in(p: &Prefix, rng: &mut fastrand::Rng) -> IpAddr {
    match p.addr {
        IpAddr::V4(a) => {
            let base = u32::from(a);
            let host = if p.len == 0 {
                u32::MAX
            } else {
                u32::MAX.checked_shr(p.len as u32).unwrap_or(0)
            };
            IpAddr::V4(Ipv4Addr::from((base & !host) | (rng.u32(..) & host)))
        }
        IpAddr::V6(a) => {
            let base = u128::from(a);
            let host = if p.len == 0 {
                u128::MAX
            } else {
                u128::MAX.checked_shr(p.len as u32).unwrap_or(0)
            };
            IpAddr::V6(Ipv6Addr::from((base & !host) | (rng.u128(..) & host)))
        }
    }
}

/// `count` destinations: each from a prefix chosen uniformly (every route
/// equally likely, whatever its size), host bits random; with the index of
/// its prefix.
pub fn draw(prefixes: &[Prefix], count: usize, seed: u64) -> Vec<(IpAddr, usize)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|_| {
            let i = rng.usize(..prefixes.len());
            (random_in(&prefixes[i], &mut rng), i)
        })
        .collect()
}

/// One's-complement sum of 16-bit words in memory order (the BPF program
/// adds words the same way, so byte order takes care of itself).
pub fn csum_add(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut it = bytes.chunks_exact(2);
    for w in &mut it {
        sum += u16::from_ne_bytes([w[0], w[1]]) as u32;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if let [b] = it.remainder() {
        sum += u16::from_ne_bytes([*b, 0]) as u32;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

pub fn csum_fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// A frame template with the destination address zero, and the partial
/// checksums the program completes once it has written the destination.
#[derive(Debug, Clone)]
pub struct Template {
    pub frame: Vec<u8>,
    pub ip_csum_base: u32,
    pub udp_csum_base: u32,
    /// Offset and length of the destination address in the frame.
    pub dst_off: usize,
    pub dst_len: usize,
}

pub struct FrameSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// Size on the wire including the FCS (64 for minimum-size frames);
    /// raised to the smallest frame the headers fit in.
    pub wire_size: usize,
    pub ttl: u8,
}

impl FrameSpec {
    /// Buffer length (without FCS) of the frames this spec builds.
    pub fn frame_len(&self) -> usize {
        let hdrs = ETH_HLEN
            + UDP_HLEN
            + if self.src.is_ipv4() {
                IPV4_HLEN
            } else {
                IPV6_HLEN
            };
        (self.wire_size.saturating_sub(FCS_LEN)).max(hdrs).max(60)
    }
}

/// The frame with a zero destination (built with accel-packet, the
/// tests' builder too), and its partial checksums.
pub fn template(spec: &FrameSpec) -> Template {
    let len = spec.frame_len();
    let ip = ETH_HLEN;
    match spec.src {
        IpAddr::V4(src) => {
            let mut p = V4::udp(src, Ipv4Addr::UNSPECIFIED);
            p.ttl = spec.ttl;
            p.id = 0;
            p.payload = packet::udp(spec.sport, spec.dport, len - ip - IPV4_HLEN - UDP_HLEN);
            // The program completes the checksum; UDP's stays 0 (none,
            // allowed over IPv4).
            p.check = Some(0);
            let frame = packet::eth(spec.dst_mac, spec.src_mac, packet::ETH_P_IP, &p.build());
            Template {
                ip_csum_base: csum_add(0, &frame[ip..ip + IPV4_HLEN]),
                udp_csum_base: 0,
                dst_off: ip + 16,
                dst_len: 4,
                frame,
            }
        }
        IpAddr::V6(src) => {
            let mut p = V6::udp(src, Ipv6Addr::UNSPECIFIED);
            p.hop = spec.ttl;
            p.flow = 0;
            p.payload = packet::udp(spec.sport, spec.dport, len - ip - IPV6_HLEN - UDP_HLEN);
            let frame = packet::eth(spec.dst_mac, spec.src_mac, packet::ETH_P_IPV6, &p.build());
            let udp = ip + IPV6_HLEN;
            let pl_len = (len - udp) as u32;
            // Pseudo-header (source, zero destination, length, next
            // header) plus the UDP header and payload.
            let mut sum = csum_add(0, &src.octets());
            sum = csum_add(sum, &pl_len.to_be_bytes());
            sum = csum_add(sum, &17u32.to_be_bytes());
            sum = csum_add(sum, &frame[udp..]);
            Template {
                ip_csum_base: 0,
                udp_csum_base: sum,
                dst_off: ip + 24,
                dst_len: 16,
                frame,
            }
        }
    }
}

/// The frame `trafgen_tx` sends for `dst` (for tests and for `data_in`).
pub fn frame_for(t: &Template, dst: IpAddr) -> Vec<u8> {
    let mut f = t.frame.clone();
    match dst {
        IpAddr::V4(d) => {
            f[t.dst_off..t.dst_off + 4].copy_from_slice(&d.octets());
            let c = csum_fold(csum_add(t.ip_csum_base, &d.octets()));
            f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&c.to_ne_bytes());
        }
        IpAddr::V6(d) => {
            f[t.dst_off..t.dst_off + 16].copy_from_slice(&d.octets());
            let c = csum_fold(csum_add(t.udp_csum_base, &d.octets()));
            let c = if c == 0 { 0xffff } else { c };
            let udp = ETH_HLEN + IPV6_HLEN;
            f[udp + 6..udp + 8].copy_from_slice(&c.to_ne_bytes());
        }
    }
    f
}

/// Reads prefixes, one a line (CRLF tolerated, `#` comments and blank
/// lines skipped), keeping those of one family (4 or 6).
pub fn parse_prefixes(text: &str, family: u8) -> Result<Vec<Prefix>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let p: Prefix = line.parse().map_err(|e| format!("line {}: {e}", n + 1))?;
        if (family == 4) == p.addr.is_ipv4() {
            out.push(p);
        }
    }
    Ok(out)
}

/// The trafgen object, opened (not loaded).
pub fn open() -> Result<OpenTrafgenSkel<'static>> {
    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    TrafgenSkelBuilder::default()
        .open(object)
        .context("opening the trafgen BPF object")
}

/// The trafgen object loaded with the frame template and the
/// destinations, its sink counting UDP to the template's port.
pub fn load(
    spec: &FrameSpec,
    dests: &[(IpAddr, u32)],
    pick: types::trafgen_pick,
) -> Result<(TrafgenSkel<'static>, Template)> {
    let t = template(spec);
    let mut open = open()?;
    open.maps
        .dests
        .set_max_entries(dests.len() as u32)
        .context("sizing the destination map")?;
    {
        let bss = open.maps.bss_data.as_deref_mut().context("no .bss")?;
        bss.sink_cfg.udp_dport = spec.dport;
        let c = &mut bss.cfg;
        c.frame[..t.frame.len()].copy_from_slice(&t.frame);
        c.frame_len = t.frame.len() as u32;
        c.family = if spec.src.is_ipv4() { 4 } else { 6 };
        c.n_dests = dests.len() as u32;
        c.pick = pick.0;
        c.ip_csum_base = t.ip_csum_base;
        c.udp_csum_base = t.udp_csum_base;
    }
    let skel = open.load().context("loading the trafgen BPF object")?;
    fill_dests(&skel, dests)?;
    Ok((skel, t))
}

/// The destination array, filled in batches.
pub fn fill_dests(skel: &TrafgenSkel<'_>, dests: &[(IpAddr, u32)]) -> Result<()> {
    const CHUNK: usize = 65536;
    let size = std::mem::size_of::<types::trafgen_dst>();
    for (ci, chunk) in dests.chunks(CHUNK).enumerate() {
        let mut keys = Vec::with_capacity(chunk.len() * 4);
        let mut vals = Vec::with_capacity(chunk.len() * size);
        for (i, (a, tag)) in chunk.iter().enumerate() {
            keys.extend_from_slice(&((ci * CHUNK + i) as u32).to_ne_bytes());
            let mut v = [0u8; 16];
            match a {
                IpAddr::V4(a) => v[..4].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => v.copy_from_slice(&a.octets()),
            }
            vals.extend_from_slice(&v);
            vals.extend_from_slice(&tag.to_ne_bytes());
        }
        skel.maps
            .dests
            .update_batch(
                &keys,
                &vals,
                chunk.len() as u32,
                MapFlags::ANY,
                MapFlags::ANY,
            )
            .context("filling the destination map")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_csum(b: &[u8]) -> u16 {
        csum_fold(csum_add(0, b))
    }

    fn spec(src: &str) -> FrameSpec {
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: src.parse().unwrap(),
            sport: 4000,
            dport: 9,
            wire_size: 64,
            ttl: 64,
        }
    }

    #[test]
    fn ipv4_frame_is_60_bytes_with_a_valid_header_checksum() {
        let t = template(&spec("10.98.0.2"));
        assert_eq!(t.frame.len(), 60);
        let f = frame_for(&t, "203.0.113.77".parse().unwrap());
        assert_eq!(full_csum(&f[14..34]), 0, "header checksum verifies");
        assert_eq!(&f[30..34], &[203, 0, 113, 77]);
        assert_eq!(f[22], 64, "TTL");
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 46);
    }

    #[test]
    fn ipv6_frame_has_a_valid_udp_checksum() {
        let t = template(&spec("fd00:98::2"));
        assert_eq!(t.frame.len(), 62, "the smallest Ethernet+IPv6+UDP frame");
        let d: Ipv6Addr = "2001:db8:1234::99".parse().unwrap();
        let f = frame_for(&t, IpAddr::V6(d));
        let udp = &f[54..];
        let mut sum = csum_add(0, &f[22..38]);
        sum = csum_add(sum, &d.octets());
        sum = csum_add(sum, &(udp.len() as u32).to_be_bytes());
        sum = csum_add(sum, &17u32.to_be_bytes());
        sum = csum_add(sum, udp);
        assert_eq!(csum_fold(sum), 0, "UDP checksum verifies");
        assert_eq!(f[21], 64, "hop limit");
    }

    #[test]
    fn draws_stay_inside_their_prefixes() {
        let ps = parse_prefixes("1.2.3.0/24\r\n10.0.0.0/8\n2001:db8::/32\n# x\n", 4).unwrap();
        assert_eq!(ps.len(), 2);
        let d = draw(&ps, 1000, 7);
        assert!(d.iter().all(|(a, i)| match a {
            IpAddr::V4(a) => {
                let o = a.octets();
                (*i == 0 && o[0..3] == [1, 2, 3]) || (*i == 1 && o[0] == 10)
            }
            _ => false,
        }));
        assert_eq!(d, draw(&ps, 1000, 7), "seeded");
        let ps6 = parse_prefixes("2001:db8::/32\n2001:db8:1::1/128", 6).unwrap();
        for (a, _) in draw(&ps6, 100, 1) {
            let IpAddr::V6(a) = a else { panic!() };
            assert_eq!(a.segments()[0..2], [0x2001, 0xdb8]);
        }
    }
}
