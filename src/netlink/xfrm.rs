//! IPsec as it bears on forwarding: whether the kernel would apply XFRM
//! policies to a packet it forwards, in this network namespace.
//!
//! ip_forward() calls xfrm4_policy_check(NULL, XFRM_POLICY_FWD, skb) (a
//! FWD policy may require the packet to have arrived protected: plaintext
//! is dropped) and xfrm4_route_forward() (an OUT policy encrypts it and
//! sends it to the tunnel's peer); ip6_forward() their IPv6 twins. Both
//! let the packet through without looking at it only when the namespace
//! has no main policy in that direction (`policy_count[dir]`) and the
//! default policy for it (`policy_default[dir]`, `ip xfrm policy
//! setdefault`) is accept: __xfrm_check_nopolicy() and
//! xfrm_route_forward() in include/net/xfrm.h. The kernel reports both:
//! XFRM_MSG_GETSPDINFO answers the counts per direction (xfrm_spd_getinfo,
//! the same `policy_count`), XFRM_MSG_GETDEFAULT the default policies.
//! Socket policies are counted apart (the `s` counts) and apply only to
//! their socket's own traffic, never to a forwarded packet.
//!
//! Notifications on XFRMNLGRP_POLICY (policy changes, and since 5.16 a new
//! default, xfrm_notify_userpolicy) only say that something changed: the
//! state is always read again from the kernel's answers, so a message
//! nobody should have sent can do no more than cause another read.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use netlink_packet_core::{Emitable, ErrorBuffer, NetlinkBuffer, NetlinkHeader};
use netlink_packet_core::{NLMSG_ERROR, NLM_F_REQUEST};
use netlink_sys::protocols::NETLINK_XFRM;
use netlink_sys::Socket;

use super::attrs::attrs;

/// enum xfrm_nlgroups: policy changes and new default policies.
const XFRMNLGRP_POLICY: u32 = 4;
/// Message types (uapi linux/xfrm.h, from XFRM_MSG_BASE 0x10).
const XFRM_MSG_NEWSPDINFO: u16 = 0x24;
const XFRM_MSG_GETSPDINFO: u16 = 0x25;
const XFRM_MSG_GETDEFAULT: u16 = 0x28;
/// enum xfrm_spdattr_type_t: struct xfrmu_spdinfo.
const XFRMA_SPD_INFO: u16 = 1;
/// struct xfrm_userpolicy_default's values (XFRM_USERPOLICY_*).
pub const XFRM_USERPOLICY_BLOCK: u8 = 1;
pub const XFRM_USERPOLICY_ACCEPT: u8 = 2;

/// The kernel answers a request while it is sent (xfrm_netlink_rcv runs
/// in sendmsg); a reply later than this will not come.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Room for one reply or notification (a policy with its templates is a
/// few hundred bytes).
const DATAGRAM: usize = 16 << 10;

#[derive(Debug, thiserror::Error)]
pub enum XfrmError {
    #[error("NETLINK_XFRM socket: {context}")]
    Socket {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the kernel refused {what}")]
    Refused {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the thread that watches them ended")]
    WatchEnded,
    #[error("malformed answer to {what}: {why}")]
    Malformed {
        what: &'static str,
        why: &'static str,
    },
}

/// Main policies per direction (struct xfrmu_spdinfo's incnt, outcnt,
/// fwdcnt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyCounts {
    pub inbound: u32,
    pub outbound: u32,
    pub forward: u32,
}

/// The default policies (struct xfrm_userpolicy_default): what applies
/// where no policy matches, XFRM_USERPOLICY_*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    pub inbound: u8,
    pub forward: u8,
    pub outbound: u8,
}

impl Defaults {
    /// A kernel without default policies (before 5.15) accepts.
    pub const ACCEPT: Defaults = Defaults {
        inbound: XFRM_USERPOLICY_ACCEPT,
        forward: XFRM_USERPOLICY_ACCEPT,
        outbound: XFRM_USERPOLICY_ACCEPT,
    };
}

/// The kernel's IPsec policy database as far as forwarding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XfrmState {
    pub policies: PolicyCounts,
    pub defaults: Defaults,
}

impl XfrmState {
    /// A kernel without XFRM: nothing applies.
    pub const NONE: XfrmState = XfrmState {
        policies: PolicyCounts {
            inbound: 0,
            outbound: 0,
            forward: 0,
        },
        defaults: Defaults::ACCEPT,
    };

    /// Whether ip_forward()/ip6_forward() would consult XFRM for a packet:
    /// a FWD or OUT policy, or a default for fwd or out other than accept
    /// (anything else, UNSPEC included, is not what the kernel lets
    /// through unchecked).
    pub fn applies_to_forwarding(&self) -> bool {
        self.policies.forward > 0
            || self.policies.outbound > 0
            || self.defaults.forward != XFRM_USERPOLICY_ACCEPT
            || self.defaults.outbound != XFRM_USERPOLICY_ACCEPT
    }

    /// For the log: "2 fwd and 1 out policies, default fwd block".
    pub fn describe(&self) -> String {
        let name = |d: u8| match d {
            XFRM_USERPOLICY_ACCEPT => "accept".to_string(),
            XFRM_USERPOLICY_BLOCK => "block".to_string(),
            other => format!("{other}"),
        };
        format!(
            "{} fwd and {} out policies, default fwd {} and out {}",
            self.policies.forward,
            self.policies.outbound,
            name(self.defaults.forward),
            name(self.defaults.outbound)
        )
    }
}

/// A request to the kernel and the reply it answers with.
trait Query {
    const WHAT: &'static str;
    const REQUEST: u16;
    const REPLY: u16;
    /// What follows the nlmsghdr.
    const PAYLOAD: &'static [u8];
    type Reply;
    /// The reply's payload (after its nlmsghdr).
    fn parse(payload: &[u8]) -> Result<Self::Reply, XfrmError>;
}

/// XFRM_MSG_GETSPDINFO: a u32 of flags the kernel only echoes (all ones,
/// as iproute2's `ip xfrm policy count` sends). Answered with
/// XFRM_MSG_NEWSPDINFO: the u32, then attributes.
struct GetSpdInfo;

impl Query for GetSpdInfo {
    const WHAT: &'static str = "XFRM_MSG_GETSPDINFO";
    const REQUEST: u16 = XFRM_MSG_GETSPDINFO;
    const REPLY: u16 = XFRM_MSG_NEWSPDINFO;
    const PAYLOAD: &'static [u8] = &[0xff; 4];
    type Reply = PolicyCounts;

    fn parse(payload: &[u8]) -> Result<PolicyCounts, XfrmError> {
        let malformed = |why| XfrmError::Malformed {
            what: Self::WHAT,
            why,
        };
        let rest = payload.get(4..).ok_or(malformed("no flags"))?;
        for a in attrs(rest) {
            let a = a.map_err(|_| malformed("a malformed attribute"))?;
            if a.kind != XFRMA_SPD_INFO {
                continue;
            }
            let u32_at = |i: usize| {
                let b = a.value.get(4 * i..4 * i + 4)?;
                Some(u32::from_ne_bytes(b.try_into().ok()?))
            };
            let (Some(inbound), Some(outbound), Some(forward)) = (u32_at(0), u32_at(1), u32_at(2))
            else {
                return Err(malformed("XFRMA_SPD_INFO too short"));
            };
            return Ok(PolicyCounts {
                inbound,
                outbound,
                forward,
            });
        }
        Err(malformed("no XFRMA_SPD_INFO"))
    }
}

/// XFRM_MSG_GETDEFAULT: a struct xfrm_userpolicy_default (three u8, not
/// read in a request); answered with the same type and struct.
struct GetDefault;

impl Query for GetDefault {
    const WHAT: &'static str = "XFRM_MSG_GETDEFAULT";
    const REQUEST: u16 = XFRM_MSG_GETDEFAULT;
    const REPLY: u16 = XFRM_MSG_GETDEFAULT;
    const PAYLOAD: &'static [u8] = &[0; 3];
    type Reply = Defaults;

    fn parse(payload: &[u8]) -> Result<Defaults, XfrmError> {
        match payload {
            [inbound, forward, outbound, ..] => Ok(Defaults {
                inbound: *inbound,
                forward: *forward,
                outbound: *outbound,
            }),
            _ => Err(XfrmError::Malformed {
                what: Self::WHAT,
                why: "shorter than struct xfrm_userpolicy_default",
            }),
        }
    }
}

/// The request message for `Q` with sequence number `seq`.
fn request<Q: Query>(seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.length = (header.buffer_len() + Q::PAYLOAD.len()) as u32;
    header.message_type = Q::REQUEST;
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut msg = vec![0u8; header.length as usize];
    header.emit(&mut msg);
    msg[header.buffer_len()..].copy_from_slice(Q::PAYLOAD);
    msg
}

/// What one datagram from the kernel says about request `seq`: `None`
/// when it is not the answer to it (a late reply to an earlier one).
fn answer<Q: Query>(datagram: &[u8], seq: u32) -> Option<Result<Q::Reply, XfrmError>> {
    let msg = NetlinkBuffer::new_checked(datagram).ok()?;
    if msg.sequence_number() != seq {
        return None;
    }
    match msg.message_type() {
        NLMSG_ERROR => {
            let errno = ErrorBuffer::new_checked(msg.payload())
                .ok()
                .and_then(|e| e.code())
                .map_or(0, |c| c.get());
            Some(Err(XfrmError::Refused {
                what: Q::WHAT,
                source: io::Error::from_raw_os_error(errno.wrapping_neg()),
            }))
        }
        t if t == Q::REPLY => Some(Q::parse(msg.payload())),
        _ => None,
    }
}

/// A NETLINK_XFRM socket of this namespace.
pub struct XfrmSocket {
    sock: Socket,
    seq: u32,
}

impl XfrmSocket {
    /// `None` when the kernel has no XFRM (EPROTONOSUPPORT): then no
    /// policy can apply.
    pub fn open() -> Result<Option<XfrmSocket>, XfrmError> {
        let socket = |source| XfrmError::Socket {
            context: "opening",
            source,
        };
        let mut sock = match Socket::new(NETLINK_XFRM) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) => return Ok(None),
            Err(e) => return Err(socket(e)),
        };
        sock.bind_auto().map_err(socket)?;
        rustix::net::sockopt::set_socket_timeout(
            &sock,
            rustix::net::sockopt::Timeout::Recv,
            Some(REPLY_TIMEOUT),
        )
        .map_err(|e| socket(e.into()))?;
        Ok(Some(XfrmSocket { sock, seq: 0 }))
    }

    /// Joins XFRMNLGRP_POLICY, non-blocking: a socket to wait on, whose
    /// messages say that the policies or defaults changed.
    pub fn subscribe(&self) -> Result<(), XfrmError> {
        let socket = |source| XfrmError::Socket {
            context: "joining XFRMNLGRP_POLICY",
            source,
        };
        self.sock.add_membership(XFRMNLGRP_POLICY).map_err(socket)?;
        self.sock.set_non_blocking(true).map_err(socket)
    }

    /// Reads what is queued (notifications) without waiting; true when
    /// anything was, or notifications were lost (ENOBUFS).
    pub fn drain(&self) -> Result<bool, XfrmError> {
        let mut any = false;
        let mut buf = Vec::with_capacity(DATAGRAM);
        loop {
            buf.clear();
            match self.sock.recv(&mut buf, 0) {
                Ok(_) => any = true,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => any = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(any),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(XfrmError::Socket {
                        context: "receiving policy notifications",
                        source,
                    })
                }
            }
        }
    }

    /// The kernel's policy counts and default policies, now.
    pub fn state(&mut self) -> Result<XfrmState, XfrmError> {
        let policies = self.ask::<GetSpdInfo>()?;
        let defaults = match self.ask::<GetDefault>() {
            Ok(d) => d,
            // A kernel before default policies (5.15) knows no such
            // message (xfrm_user_rcv_msg: EINVAL) and lets through what no
            // policy matches.
            Err(XfrmError::Refused { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL)
                    || source.raw_os_error() == Some(libc::EOPNOTSUPP) =>
            {
                Defaults::ACCEPT
            }
            Err(e) => return Err(e),
        };
        Ok(XfrmState { policies, defaults })
    }

    /// Sends `Q` and waits for the kernel's answer (only the kernel's:
    /// port 0).
    fn ask<Q: Query>(&mut self) -> Result<Q::Reply, XfrmError> {
        let socket = |context, source| XfrmError::Socket { context, source };
        self.seq = self.seq.wrapping_add(1);
        self.sock
            .send(&request::<Q>(self.seq), 0)
            .map_err(|e| socket("sending a request", e))?;
        let mut buf = Vec::with_capacity(DATAGRAM);
        loop {
            buf.clear();
            let (_, from) = match self.sock.recv_from(&mut buf, 0) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(socket("waiting for the kernel's answer", e)),
            };
            if from.port_number() != 0 {
                continue;
            }
            if let Some(answer) = answer::<Q>(&buf, self.seq) {
                return answer;
            }
        }
    }
}

impl AsFd for XfrmSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests;
