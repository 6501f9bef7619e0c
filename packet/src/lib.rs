//! Hand-built frames: Ethernet + IPv4/IPv6 + UDP/ICMP, with every field
//! under the caller's control (including the broken ones). accel's one
//! packet builder: the golden and fuzz tests build their frames with it,
//! and accel-trafgen its frame template.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_HLEN: usize = 14;

pub const PROTO_HOPOPTS: u8 = 0;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_FRAG6: u8 = 44;
pub const PROTO_ICMPV6: u8 = 58;

pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;

/// Internet checksum (RFC 1071) of `data`, as the 16-bit value to store
/// big-endian.
pub fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when the IPv4 header `hdr` (ihl*4 bytes) has a valid checksum.
pub fn ipv4_csum_valid(hdr: &[u8]) -> bool {
    csum(hdr) == 0
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An UDP header + payload (checksum 0: routers do not look at it).
pub fn udp(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload_len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend((0..payload_len).map(|i| (i * 7 + 3) as u8));
    u
}

/// An ICMP / ICMPv6 message: type, code, checksum (computed over the
/// message only, fine for ICMPv4; routers never check it), 4 bytes rest,
/// body.
pub fn icmp(typ: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0, 0x12, 0x34, 0x00, 0x01];
    m.extend_from_slice(body);
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An IPv4 packet description; `build()` yields the bytes.
#[derive(Clone, Debug)]
pub struct V4 {
    pub version: u8,
    pub tos: u8,
    pub id: u16,
    /// flags (DF/MF) | fragment offset in 8-byte units
    pub frag: u16,
    pub ttl: u8,
    pub proto: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Raw option bytes (padded to 4 by the caller).
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
    pub tot_len: Option<u16>,
    /// Force this checksum instead of the correct one.
    pub check: Option<u16>,
}

impl V4 {
    pub fn udp(src: Ipv4Addr, dst: Ipv4Addr) -> V4 {
        V4 {
            version: 4,
            tos: 0,
            id: 0x1c46,
            frag: IP_DF,
            ttl: 64,
            proto: PROTO_UDP,
            src,
            dst,
            options: Vec::new(),
            payload: udp(40000, 5001, 18),
            tot_len: None,
            check: None,
        }
    }

    pub fn icmp(src: Ipv4Addr, dst: Ipv4Addr, typ: u8, code: u8, body: &[u8]) -> V4 {
        V4 {
            proto: PROTO_ICMP,
            payload: icmp(typ, code, body),
            ..V4::udp(src, dst)
        }
    }

    pub fn ttl(mut self, ttl: u8) -> V4 {
        self.ttl = ttl;
        self
    }

    /// Pads or sets the payload so the whole IPv4 packet is `len` bytes.
    pub fn total(mut self, len: usize) -> V4 {
        let hl = 20 + self.options.len();
        assert!(len >= hl + 8);
        self.payload = udp(40000, 5001, len - hl - 8);
        self.proto = PROTO_UDP;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        assert_eq!(self.options.len() % 4, 0, "options must be padded");
        let ihl = (20 + self.options.len()) / 4;
        let tot = self
            .tot_len
            .unwrap_or((ihl * 4 + self.payload.len()) as u16);
        let mut h = vec![0u8; 20];
        h[0] = (self.version << 4) | (ihl as u8 & 0x0f);
        h[1] = self.tos;
        h[2..4].copy_from_slice(&tot.to_be_bytes());
        h[4..6].copy_from_slice(&self.id.to_be_bytes());
        h[6..8].copy_from_slice(&self.frag.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.proto;
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        h.extend_from_slice(&self.options);
        let c = self.check.unwrap_or_else(|| csum(&h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&self.payload);
        h
    }
}

/// An IPv6 packet description.
#[derive(Clone, Debug)]
pub struct V6 {
    pub version: u8,
    pub tclass: u8,
    pub flow: u32,
    pub next: u8,
    pub hop: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub payload: Vec<u8>,
    pub payload_len: Option<u16>,
}

impl V6 {
    pub fn udp(src: Ipv6Addr, dst: Ipv6Addr) -> V6 {
        V6 {
            version: 6,
            tclass: 0,
            flow: 0x12345,
            next: PROTO_UDP,
            hop: 64,
            src,
            dst,
            payload: udp(40000, 5001, 18),
            payload_len: None,
        }
    }

    pub fn icmp(src: Ipv6Addr, dst: Ipv6Addr, typ: u8, code: u8, body: &[u8]) -> V6 {
        V6 {
            next: PROTO_ICMPV6,
            payload: icmp(typ, code, body),
            ..V6::udp(src, dst)
        }
    }

    pub fn hop(mut self, hop: u8) -> V6 {
        self.hop = hop;
        self
    }

    /// Sets the payload so the whole IPv6 packet is `len` bytes.
    pub fn total(mut self, len: usize) -> V6 {
        assert!(len >= 48);
        self.payload = udp(40000, 5001, len - 48);
        self.next = PROTO_UDP;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let plen = self.payload_len.unwrap_or(self.payload.len() as u16);
        let w0: u32 =
            ((self.version as u32) << 28) | ((self.tclass as u32) << 20) | (self.flow & 0xfffff);
        let mut h = Vec::with_capacity(40 + self.payload.len());
        h.extend_from_slice(&w0.to_be_bytes());
        h.extend_from_slice(&plen.to_be_bytes());
        h.push(self.next);
        h.push(self.hop);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&self.payload);
        h
    }
}

/// A classic hex dump of `a` against `b`, marking differing bytes with `*`.
pub fn hex_diff(label_a: &str, a: &[u8], label_b: &str, b: &[u8]) -> String {
    let mut s = format!(
        "{label_a} ({} bytes) vs {label_b} ({} bytes); '*' marks a difference\n",
        a.len(),
        b.len()
    );
    let n = a.len().max(b.len());
    let mut off = 0;
    while off < n {
        let row = |v: &[u8], other: &[u8]| -> String {
            (off..off + 16)
                .map(|i| match v.get(i) {
                    Some(x) => {
                        let mark = if other.get(i) == Some(x) { ' ' } else { '*' };
                        format!("{x:02x}{mark}")
                    }
                    None => "   ".to_string(),
                })
                .collect()
        };
        s.push_str(&format!("{off:04x}  {label_a:>8}: {}\n", row(a, b)));
        s.push_str(&format!("{off:04x}  {label_b:>8}: {}\n", row(b, a)));
        off += 16;
    }
    s
}

/// A plain hex dump, 16 bytes a row.
pub fn hex_dump(a: &[u8]) -> String {
    a.chunks(16)
        .enumerate()
        .map(|(i, row)| {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            format!("{:04x}  {}\n", i * 16, hex.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_has_a_valid_checksum_and_its_lengths() {
        let p = V4::udp(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 1)).total(100);
        let b = p.build();
        assert_eq!(b.len(), 100);
        assert!(ipv4_csum_valid(&b[..20]));
        assert_eq!(u16::from_be_bytes([b[2], b[3]]), 100);
        assert_eq!(u16::from_be_bytes([b[24], b[25]]), 80, "UDP length");
    }

    #[test]
    fn a_forced_checksum_is_kept() {
        let mut p = V4::udp(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
        p.check = Some(0xbeef);
        assert_eq!(&p.build()[10..12], &[0xbe, 0xef]);
    }

    #[test]
    fn ipv6_payload_length_and_frame_header() {
        let p = V6::udp(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST).total(100);
        let b = p.build();
        assert_eq!(u16::from_be_bytes([b[4], b[5]]), 60);
        let f = eth([2; 6], [4; 6], ETH_P_IPV6, &b);
        assert_eq!(f.len(), ETH_HLEN + 100);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
    }
}
