//! An rtnetlink socket for nexthop objects: dumps them and, joined to
//! RTNLGRP_NEXTHOP, receives their changes (the rtnetlink crate's codec
//! drops these messages, so they cannot share its connection).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{Emitable, NetlinkHeader, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::Socket;

use super::nexthop::header::NHMSG_LEN;
use super::nexthop::{parse_datagram, NexthopEvent, NexthopObject, RTM_GETNEXTHOP};

/// Room for one datagram: the kernel's netlink dumps fill at most 32 KiB
/// (and notifications are smaller).
const DATAGRAM: usize = 1 << 16;

pub struct NexthopSocket {
    sock: Socket,
}

/// What one read of the socket brought.
#[derive(Debug)]
pub enum Received {
    Events(Vec<NexthopEvent>),
    /// ENOBUFS: changes were lost; dump again.
    Overrun,
}

/// The objects of one dump.
#[derive(Debug, Default)]
pub struct NexthopDump {
    pub objects: Vec<NexthopObject>,
    /// The kernel flagged it NLM_F_DUMP_INTR: objects changed meanwhile.
    pub interrupted: bool,
}

impl NexthopSocket {
    /// Opens the socket; with `subscribe`, joins RTNLGRP_NEXTHOP.
    pub fn open(subscribe: bool) -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        if subscribe {
            sock.add_membership(libc::RTNLGRP_NEXTHOP)?;
        }
        Ok(NexthopSocket { sock })
    }

    /// Every nexthop object of the namespace.
    pub fn dump(&self) -> io::Result<NexthopDump> {
        let mut header = NetlinkHeader::default();
        header.length = (header.buffer_len() + NHMSG_LEN) as u32;
        header.message_type = RTM_GETNEXTHOP;
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = 1;
        let mut req = vec![0u8; header.length as usize];
        header.emit(&mut req);
        // The struct nhmsg after the header stays zero: AF_UNSPEC, every
        // family.
        self.sock.send(&req, 0)?;
        let mut dump = NexthopDump::default();
        loop {
            let d = self.read(true)?;
            dump.interrupted |= d.interrupted;
            dump.objects
                .extend(d.events.into_iter().filter_map(|e| match e {
                    NexthopEvent::New(o) => Some(o),
                    NexthopEvent::Del(_) => None,
                }));
            if d.done {
                return Ok(dump);
            }
        }
    }

    /// Blocks for the next batch of change notifications.
    pub fn receive(&self) -> io::Result<Received> {
        match self.read(false) {
            Ok(d) => Ok(Received::Events(d.events)),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Received::Overrun),
            Err(e) => Err(e),
        }
    }

    /// One datagram.
    fn read(&self, dumping: bool) -> io::Result<super::nexthop::Datagram> {
        let mut buf = Vec::with_capacity(DATAGRAM);
        self.sock.recv(&mut buf, 0)?;
        parse_datagram(&buf, dumping).map_err(io::Error::from_raw_os_error)
    }
}

/// Nexthop-object change notifications for an async event loop.
pub struct NexthopEvents {
    sock: tokio::io::unix::AsyncFd<NexthopSocket>,
}

/// Receive buffer for the notifications: FRR can replace thousands of
/// objects at once when a peer flaps.
const EVENTS_RCVBUF: usize = 8 << 20;

impl NexthopEvents {
    /// Joins RTNLGRP_NEXTHOP; call before dumping so that no change falls
    /// between the dump and the first notification.
    pub fn subscribe() -> io::Result<Self> {
        let s = NexthopSocket::open(true)?;
        s.sock.set_non_blocking(true)?;
        // Best effort: without CAP_NET_ADMIN, rmem_default applies.
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&s.sock, EVENTS_RCVBUF);
        // SAFETY: `s` owns its descriptor and keeps it open, unchanged, for
        // as long as the AsyncFd holds it.
        let sock = unsafe { tokio::io::unix::AsyncFd::register(s) }?;
        Ok(NexthopEvents { sock })
    }

    /// Whether the kernel has nothing queued for this socket.
    pub fn drained(&self) -> bool {
        super::event_reader::socket_idle(self.sock.get_ref().sock.as_fd())
    }

    /// The next batch of changes (or an overrun).
    pub async fn next(&mut self) -> io::Result<Received> {
        loop {
            let mut guard = self.sock.readable().await?;
            match guard.try_io(|s| s.get_ref().receive()) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsRawFd for NexthopSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}
