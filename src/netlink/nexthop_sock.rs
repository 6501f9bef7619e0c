//! A raw rtnetlink socket for nexthop objects: dumps them and, joined to
//! RTNLGRP_NEXTHOP, receives their changes (the rtnetlink crate's codec
//! drops these messages, so they cannot share its connection).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use super::nexthop::{parse_datagram, NexthopEvent, NexthopObject, RTM_GETNEXTHOP};

const NLMSG_HDRLEN: usize = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;

pub struct NexthopSocket {
    fd: OwnedFd,
}

/// What one read of the socket brought.
#[derive(Debug)]
pub enum Received {
    Events(Vec<NexthopEvent>),
    /// ENOBUFS: changes were lost; dump again.
    Overrun,
}

impl NexthopSocket {
    /// Opens the socket; with `subscribe`, joins RTNLGRP_NEXTHOP.
    pub fn open(subscribe: bool) -> io::Result<Self> {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor from socket(2).
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_nl is a valid value (the kernel's
        // own initialisation).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: valid sockaddr_nl of the given size.
        let rc = unsafe {
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        if subscribe {
            let group = libc::RTNLGRP_NEXTHOP;
            // SAFETY: setsockopt with a u32 option value.
            let rc = unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_NETLINK,
                    libc::NETLINK_ADD_MEMBERSHIP,
                    (&group as *const u32).cast(),
                    4,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(NexthopSocket { fd })
    }

    /// Every nexthop object of the namespace.
    pub fn dump(&self) -> io::Result<Vec<NexthopObject>> {
        let mut req = Vec::with_capacity(NLMSG_HDRLEN + 8);
        req.extend(((NLMSG_HDRLEN + 8) as u32).to_ne_bytes());
        req.extend(RTM_GETNEXTHOP.to_ne_bytes());
        req.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend(1u32.to_ne_bytes()); // seq
        req.extend(0u32.to_ne_bytes()); // pid
        req.extend([0u8; 8]); // struct nhmsg, AF_UNSPEC: all families
                              // SAFETY: sending an initialised buffer.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut objects = Vec::new();
        loop {
            let (events, done) = self.read(true)?;
            objects.extend(events.into_iter().filter_map(|e| match e {
                NexthopEvent::New(o) => Some(o),
                NexthopEvent::Del(_) => None,
            }));
            if done {
                return Ok(objects);
            }
        }
    }

    /// Blocks for the next batch of change notifications.
    pub fn receive(&self) -> io::Result<Received> {
        match self.read(false) {
            Ok((events, _)) => Ok(Received::Events(events)),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Received::Overrun),
            Err(e) => Err(e),
        }
    }

    /// One datagram: its events, and whether it ended a dump.
    fn read(&self, dumping: bool) -> io::Result<(Vec<NexthopEvent>, bool)> {
        let mut buf = vec![0u8; 1 << 16];
        // SAFETY: receiving into a buffer of the given length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let d =
            parse_datagram(&buf[..n as usize], dumping).map_err(io::Error::from_raw_os_error)?;
        Ok((d.events, d.done))
    }
}

/// Nexthop-object change notifications for an async event loop.
pub struct NexthopEvents {
    sock: tokio::io::unix::AsyncFd<NexthopSocket>,
}

/// Receive buffer for the notifications: FRR can replace thousands of
/// objects at once when a peer flaps.
const EVENTS_RCVBUF: libc::c_int = 8 << 20;

impl NexthopEvents {
    /// Joins RTNLGRP_NEXTHOP; call before dumping so that no change falls
    /// between the dump and the first notification.
    pub fn subscribe() -> io::Result<Self> {
        let s = NexthopSocket::open(true)?;
        let fd = s.fd.as_raw_fd();
        // SAFETY: fcntl and setsockopt on a descriptor owned by `s`.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
            // Best effort: without CAP_NET_ADMIN, rmem_default applies.
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&EVENTS_RCVBUF as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        // SAFETY: `s` owns its descriptor and keeps it open, unchanged, for
        // as long as the AsyncFd holds it.
        let sock = unsafe { tokio::io::unix::AsyncFd::register(s) }?;
        Ok(NexthopEvents { sock })
    }

    /// Whether the kernel has nothing queued for this socket.
    pub fn drained(&self) -> bool {
        super::event_reader::socket_idle(self.sock.get_ref().fd.as_fd())
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
        self.fd.as_raw_fd()
    }
}
