//! The tc configuration that acts on an interface's traffic, as it bears
//! on forwarding in XDP.
//!
//! A packet the kernel forwards passes the interface's tc ingress filters
//! (`__netif_receive_skb_core()`: tcx, then the clsact or ingress qdisc's
//! filters) before the IP layer, and leaves through the egress device's
//! qdisc and tc egress filters (`__dev_queue_xmit()`). XDP runs before
//! the first and an XDP redirect hands the frame to the driver, past the
//! second: a policer, a mirror to a capture port or a shaper the operator
//! configured would no longer see forwarded traffic. So accel reads what
//! is configured: qdiscs (the kernel's default ones have handle 0:, any
//! other someone added) and the filters of the ingress and clsact qdiscs,
//! and the datapath leaves such traffic to the kernel or to its TC
//! program, whose redirect goes through the egress qdisc and filters.
//!
//! Dumped over a plain NETLINK_ROUTE socket, and only the header and
//! TCA_KIND of each message read: options and statistics differ per kind,
//! and none of them matters here.

use std::io;

use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::Socket;

use super::attrs::attrs;
use super::raw_dump;

/// rtnetlink message types (uapi linux/rtnetlink.h).
const RTM_GETQDISC: u16 = 38;
const RTM_GETTFILTER: u16 = 46;
/// struct tcmsg: family, two pad bytes, ifindex, handle, parent, info.
const TCMSG_LEN: usize = 20;
const TCA_KIND: u16 = 1;
/// The ingress and clsact qdiscs' filters' parents (TC_H_MAKE(TC_H_CLSACT,
/// TC_H_MIN_INGRESS / EGRESS)).
pub const PARENT_INGRESS: u32 = 0xffff_fff2;
pub const PARENT_EGRESS: u32 = 0xffff_fff3;

#[derive(Debug, thiserror::Error)]
pub enum TcError {
    #[error("rtnetlink socket for tc: {context}")]
    Socket {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("dumping {what}")]
    Dump {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the thread that watches it ended")]
    WatchEnded,
    #[error("accel's own TC program has no id: {0}")]
    OwnProgram(String),
}

/// One qdisc or filter as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcObject {
    pub ifindex: u32,
    pub handle: u32,
    pub parent: u32,
    /// tcm_info: for a filter, its priority (high 16 bits) and protocol.
    pub info: u32,
    pub kind: String,
}

impl TcObject {
    /// A filter's priority (`tc filter ... pref`).
    pub fn priority(&self) -> u32 {
        self.info >> 16
    }

    /// The ethertype a filter is for (`tc filter ... protocol`): the low
    /// half of tcm_info, in network order (tcf_fill_node()).
    pub fn protocol(&self) -> u16 {
        u16::from_be(self.info as u16)
    }

    /// Whether a filter can act on IP packets: tcf_classify() skips those
    /// for other protocols (an ARP filter never sees one).
    pub fn sees_ip(&self) -> bool {
        const ALL: u16 = libc::ETH_P_ALL as u16;
        const IP: u16 = libc::ETH_P_IP as u16;
        const IPV6: u16 = libc::ETH_P_IPV6 as u16;
        matches!(self.protocol(), ALL | IP | IPV6)
    }
}

/// A filter that is accel's own (its cls_bpf filter on kernels without
/// tcx, at a handle and priority of its own), and so acts on nothing the
/// datapath must leave to the kernel.
pub type IsOurs = dyn Fn(&TcObject) -> bool;

/// What acts on an interface's traffic besides accel, in words: empty
/// when nothing does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcIface {
    /// Filters on arrival (tc ingress filters, tcx ingress programs).
    pub ingress: Vec<String>,
    /// What leaving traffic goes through (a configured qdisc, tc egress
    /// filters, tcx egress programs).
    pub egress: Vec<String>,
}

impl TcIface {
    /// The interface's ACCEL_IF_INGRESS_TC / ACCEL_IF_EGRESS_TC flags.
    pub fn flags(&self) -> u32 {
        use crate::bpf::types::accel_if_flags as F;
        let mut flags = 0;
        if !self.ingress.is_empty() {
            flags |= F::ACCEL_IF_INGRESS_TC.0;
        }
        if !self.egress.is_empty() {
            flags |= F::ACCEL_IF_EGRESS_TC.0;
        }
        flags
    }
}

/// The qdiscs of `ifindex` among `qdiscs`: whether it has an ingress or
/// clsact qdisc (whose filters are to read) and a clsact one (egress
/// filters too); configured ones are added to `found.egress`.
pub fn judge_qdiscs(ifindex: u32, qdiscs: &[TcObject], found: &mut TcIface) -> (bool, bool) {
    let (mut ingress, mut clsact) = (false, false);
    for q in qdiscs.iter().filter(|q| q.ifindex == ifindex) {
        match q.kind.as_str() {
            "clsact" => (ingress, clsact) = (true, true),
            "ingress" => ingress = true,
            // The kernel's own qdiscs (attach_default_qdiscs(), and the
            // default a deleted root falls back to) have handle 0:.
            _ if q.handle >> 16 == 0 => {}
            kind => found
                .egress
                .push(format!("qdisc {kind} {:x}:", q.handle >> 16)),
        }
    }
    (ingress, clsact)
}

/// Filters other than accel's own that can act on IP packets, in words.
pub fn judge_filters(filters: &[TcObject], ours: &IsOurs, hook: &str, out: &mut Vec<String>) {
    for f in filters.iter().filter(|f| f.sees_ip() && !ours(f)) {
        let what = format!("tc {hook} filter {} pref {}", f.kind, f.priority());
        // A dump lists each filter's container (handle 0) and then each
        // of its filters: one line per priority is enough.
        if !out.contains(&what) {
            out.push(what);
        }
    }
}

/// A NETLINK_ROUTE socket for tc dumps; subscribed, it also receives
/// RTNLGRP_TC's notifications of changes.
pub struct TcSocket {
    sock: Socket,
}

impl TcSocket {
    pub fn open(subscribe: bool) -> io::Result<TcSocket> {
        let group = subscribe.then_some(libc::RTNLGRP_TC);
        Ok(TcSocket {
            sock: raw_dump::socket(NETLINK_ROUTE, group)?,
        })
    }

    /// Every qdisc of the namespace.
    pub fn qdiscs(&self) -> io::Result<Vec<TcObject>> {
        self.dump(RTM_GETQDISC, 0, 0)
    }

    /// The filters of `ifindex` under `parent` (every chain).
    pub fn filters(&self, ifindex: u32, parent: u32) -> io::Result<Vec<TcObject>> {
        self.dump(RTM_GETTFILTER, ifindex, parent)
    }

    fn dump(&self, kind: u16, ifindex: u32, parent: u32) -> io::Result<Vec<TcObject>> {
        let mut req = raw_dump::request(kind, TCMSG_LEN);
        let tcm = &mut req[raw_dump::HEADER_LEN..];
        tcm[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        tcm[12..16].copy_from_slice(&parent.to_ne_bytes());
        raw_dump::dump(&self.sock, &mut req, |_, payload| parse(payload).map(Some))
    }

    /// Reads every notification queued (non-blocking); true if one was
    /// about a qdisc or filter of `ifaces`, or of a shared block (ifindex
    /// TCM_IFINDEX_MAGIC_BLOCK), or could not be read.
    pub fn drain(&self, ifaces: &[u32]) -> io::Result<bool> {
        let mut relevant = false;
        raw_dump::drain(&self.sock, |kind, payload| {
            let ours = |o: TcObject| ifaces.contains(&o.ifindex) || o.ifindex == u32::MAX;
            // Qdiscs, classes, filters, chains: each with a struct tcmsg.
            let tc = matches!(kind, 36 | 37 | 40 | 41 | 44 | 45 | 100 | 101);
            relevant |= !tc || parse(payload).map_or(true, ours);
        })?;
        Ok(relevant)
    }
}

impl std::os::fd::AsFd for TcSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

fn parse(p: &[u8]) -> io::Result<TcObject> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed tc message");
    let tcm = p.get(..TCMSG_LEN).ok_or_else(malformed)?;
    let word = |at: usize| u32::from_ne_bytes(tcm[at..at + 4].try_into().expect("4 bytes"));
    let mut kind = String::new();
    for a in attrs(&p[TCMSG_LEN..]) {
        let a = a.map_err(|_| malformed())?;
        if a.kind == TCA_KIND {
            let name = a.value.split(|c| *c == 0).next().unwrap_or_default();
            kind = String::from_utf8_lossy(name).into_owned();
        }
    }
    Ok(TcObject {
        ifindex: word(4),
        handle: word(8),
        parent: word(12),
        info: word(16),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ingress and clsact qdiscs' parent.
    const TC_H_INGRESS: u32 = 0xffff_fff1;

    fn obj(ifindex: u32, handle: u32, parent: u32, kind: &str) -> TcObject {
        TcObject {
            ifindex,
            handle,
            parent,
            info: 0,
            kind: kind.into(),
        }
    }

    #[test]
    fn default_qdiscs_act_on_nothing_configured_ones_do() {
        let qdiscs = [
            obj(2, 0, 0xffff_ffff, "noqueue"),
            obj(3, 0, 0xffff_ffff, "mq"),
            obj(3, 0, 0x0000_0001, "pfifo_fast"),
            obj(4, 0x0001_0000, 0xffff_ffff, "htb"),
            obj(4, 0xffff_0000, TC_H_INGRESS, "clsact"),
            obj(5, 0xffff_0000, TC_H_INGRESS, "ingress"),
        ];
        let mut f = TcIface::default();
        assert_eq!(judge_qdiscs(2, &qdiscs, &mut f), (false, false));
        assert_eq!(judge_qdiscs(3, &qdiscs, &mut f), (false, false));
        assert_eq!(f, TcIface::default());
        assert_eq!(f.flags(), 0);
        assert_eq!(judge_qdiscs(4, &qdiscs, &mut f), (true, true));
        assert_eq!(f.egress, ["qdisc htb 1:"]);
        let mut g = TcIface::default();
        assert_eq!(judge_qdiscs(5, &qdiscs, &mut g), (true, false));
        assert!(g.egress.is_empty());
    }

    #[test]
    fn filters_other_than_ours_count_once_per_priority() {
        // tcm_info: priority, then the ethertype in network order.
        let info = |prio: u32, proto: u16| prio << 16 | u32::from(proto.to_be());
        let mut mine = obj(4, 0, PARENT_INGRESS, "bpf");
        mine.info = info(0xacce, libc::ETH_P_ALL as u16);
        let mut u32_tp = obj(4, 0, PARENT_INGRESS, "u32");
        u32_tp.info = info(49152, libc::ETH_P_IP as u16);
        let mut u32_f = u32_tp.clone();
        u32_f.handle = 0x8000_0800;
        let mut arp = obj(4, 0x8000_0800, PARENT_INGRESS, "u32");
        arp.info = info(7, libc::ETH_P_ARP as u16);
        let ours = |f: &TcObject| f.kind == "bpf" && f.priority() == 0xacce;
        let mut out = Vec::new();
        judge_filters(&[mine.clone(), arp], &ours, "ingress", &mut out);
        assert!(out.is_empty());
        judge_filters(&[mine, u32_tp, u32_f], &ours, "ingress", &mut out);
        assert_eq!(out, ["tc ingress filter u32 pref 49152"]);
        let f = TcIface {
            ingress: out,
            egress: Vec::new(),
        };
        assert_eq!(
            f.flags(),
            crate::bpf::types::accel_if_flags::ACCEL_IF_INGRESS_TC.0
        );
    }

    #[test]
    fn a_message_is_read_as_its_header_and_kind() {
        let mut tcm = vec![0u8; TCMSG_LEN];
        tcm[4..8].copy_from_slice(&7u32.to_ne_bytes());
        tcm[8..12].copy_from_slice(&0x0001_0000u32.to_ne_bytes());
        tcm[12..16].copy_from_slice(&0xffff_ffffu32.to_ne_bytes());
        let kind = b"htb\0";
        tcm.extend_from_slice(&((4 + kind.len()) as u16).to_ne_bytes());
        tcm.extend_from_slice(&TCA_KIND.to_ne_bytes());
        tcm.extend_from_slice(kind);
        assert_eq!(
            parse(&tcm).unwrap(),
            obj(7, 0x0001_0000, 0xffff_ffff, "htb")
        );
        assert!(parse(&[0u8; 8]).is_err());
        let mut bad = tcm.clone();
        bad[TCMSG_LEN] = 200;
        assert!(parse(&bad).is_err(), "an attribute past the end");
    }
}
