//! The multicast rtnetlink connection and its stream of [`Event`]s.
//!
//! Usage (subscribe, then dump, then apply the events that were queued
//! during the dump):
//!
//! ```no_run
//! # async fn f() -> Result<(), accel::netlink::NetlinkError> {
//! let accel::netlink::Subscription { connection, handle, mut events } =
//!     accel::netlink::subscribe()?;
//! tokio::spawn(connection);
//! let state = accel::netlink::dump(&handle).await?;
//! while let Some(ev) = events.next().await {
//!     // Event::Overrun => full resync (dump again, mark and sweep)
//! }
//! # Ok(()) }
//! ```
//!
//! Overruns: when the socket's receive buffer is full the kernel drops
//! multicast messages and the next `recvmsg` fails with ENOBUFS.
//! netlink-proto 0.14 turns that error into a synthetic
//! `NetlinkPayload::Overrun` message (sequence 0, port 0), which is routed to
//! the unsolicited-message channel like any notification; it is reported
//! here as [`Event::Overrun`]. A real NLMSG_OVERRUN from the kernel (never
//! sent in practice) is reported the same way.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc::UnboundedReceiver;
use futures::Stream;
use log::{debug, warn};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, MulticastGroup};
use rustix::event::{PollFd, PollFlags};

use super::{parse, NetlinkError};
use crate::model::{Event, RouteAdd};

/// Receive buffer requested with SO_RCVBUFFORCE by [`subscribe`].
pub const DEFAULT_RCVBUF: usize = 64 << 20;

/// The groups accel listens to.
pub const GROUPS: [MulticastGroup; 8] = [
    MulticastGroup::Link,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
    MulticastGroup::Neigh,
    MulticastGroup::Ipv4Rule,
    MulticastGroup::Ipv6Rule,
];

/// A subscribed rtnetlink connection, and one for requests.
///
/// Requests (dumps, NTF_USE) never share the subscribed socket: when a
/// burst of notifications fills its receive buffer, the kernel drops the
/// answers to requests made there too (an ack, the error of a dump that
/// cannot start), and the request would wait forever. Lost notifications
/// are recovered by a resync; a lost answer is not.
pub struct Subscription {
    /// The I/O drivers of both sockets: spawn it (`tokio::spawn(connection)`).
    /// Nothing, neither dumps nor events, progresses until it runs.
    pub connection: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    /// Request handle, on the socket of its own, for [`super::dump`].
    pub handle: Handle,
    /// Notifications converted to [`Event`]s.
    pub events: EventStream,
}

/// Opens one rtnetlink socket subscribed to [`GROUPS`] with a 64 MiB receive
/// buffer.
pub fn subscribe() -> Result<Subscription, NetlinkError> {
    subscribe_with_rcvbuf(DEFAULT_RCVBUF)
}

/// [`subscribe`] with an explicit receive buffer size in bytes (the kernel
/// doubles it). SO_RCVBUFFORCE is tried first (needs CAP_NET_ADMIN); on
/// failure SO_RCVBUF is used, which net.core.rmem_max caps.
pub fn subscribe_with_rcvbuf(rcvbuf: usize) -> Result<Subscription, NetlinkError> {
    let (mut connection, _, messages) =
        rtnetlink::new_multicast_connection(&GROUPS).map_err(|source| NetlinkError::Socket {
            context: "opening the multicast rtnetlink connection",
            source,
        })?;
    let (requests, handle, _) =
        rtnetlink::new_connection().map_err(|source| NetlinkError::Socket {
            context: "opening the rtnetlink request connection",
            source,
        })?;
    let fd = connection.socket_mut().socket_mut().as_raw_fd();
    let size = libc::c_int::try_from(rcvbuf).unwrap_or(libc::c_int::MAX);
    if let Err(e) = set_int_opt(fd, libc::SO_RCVBUFFORCE, size) {
        warn!("SO_RCVBUFFORCE({rcvbuf}) failed ({e}), falling back to SO_RCVBUF (capped by net.core.rmem_max)");
        set_int_opt(fd, libc::SO_RCVBUF, size).map_err(|source| NetlinkError::Socket {
            context: "setting SO_RCVBUF",
            source,
        })?;
    }
    match get_int_opt(fd, libc::SO_RCVBUF) {
        Ok(v) => debug!("netlink receive buffer: {v} bytes"),
        Err(e) => debug!("getsockopt(SO_RCVBUF): {e}"),
    }
    // A second descriptor of the same socket, to see whether the kernel
    // has queued messages the connection task has not read yet.
    let sock = connection
        .socket_mut()
        .socket_mut()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| NetlinkError::Socket {
            context: "duplicating the netlink socket",
            source,
        })?;
    let both = futures::future::join(connection, requests);
    Ok(Subscription {
        connection: Box::pin(async move {
            both.await;
        }),
        handle,
        events: EventStream {
            rx: messages,
            ahead: None,
            sock,
        },
    })
}

fn set_int_opt(fd: i32, opt: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: fd is a valid socket owned by the connection; value is a c_int
    // living for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn get_int_opt(fd: i32, opt: libc::c_int) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of their sizes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_APPEND: u16 = 0x800;

/// A route notification's flags (those of the request that made it, or
/// the kernel's own): `None` for a replace, else how the route was added
/// beside any others with its key.
fn route_add(flags: u16) -> Option<RouteAdd> {
    if flags & NLM_F_REPLACE != 0 {
        None
    } else if flags & NLM_F_APPEND != 0 {
        Some(RouteAdd::Append)
    } else {
        Some(RouteAdd::Prepend)
    }
}

/// Converts one unsolicited netlink message into an [`Event`]; `None` for
/// messages accel does not mirror or cannot parse.
pub fn to_event(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<Event> {
    use RouteNetlinkMessage as M;
    let flags = msg.header.flags;
    let inner = match msg.payload {
        NetlinkPayload::InnerMessage(inner) => inner,
        NetlinkPayload::Overrun(_) => return Some(Event::Overrun),
        NetlinkPayload::Error(e) => {
            // Unsolicited errors only come from the kernel refusing to
            // deliver; ENOBUFS is handled above by netlink-proto.
            warn!("unsolicited netlink error: {e}");
            return None;
        }
        other => {
            debug!("ignoring netlink message {other:?}");
            return None;
        }
    };
    let ev = match &inner {
        M::NewRoute(m) => parse::route(m).map(|r| match route_add(flags) {
            Some(how) => Event::AddRoute(r, how),
            None => Event::NewRoute(r),
        }),
        M::DelRoute(m) => parse::route(m).map(Event::DelRoute),
        M::NewLink(m) => parse::link(m).map(Event::NewLink),
        M::DelLink(m) => parse::link(m).map(|l| Event::DelLink(l.ifindex)),
        M::NewAddress(m) => parse::addr(m).map(Event::NewAddr),
        M::DelAddress(m) => parse::addr(m).map(Event::DelAddr),
        M::NewNeighbour(m) => parse::neighbour(m).map(Event::NewNeigh),
        M::DelNeighbour(m) => parse::neighbour(m).map(Event::DelNeigh),
        M::NewRule(_) | M::DelRule(_) => Some(Event::RulesChanged),
        _ => None,
    };
    if ev.is_none() {
        debug!("skipping netlink message {inner:?}");
    }
    ev
}

/// Stream of [`Event`]s from a [`Subscription`]. Ends when the connection
/// task stops.
pub struct EventStream {
    rx: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    /// An event taken off the queue by [`EventStream::drained`].
    ahead: Option<Event>,
    sock: OwnedFd,
}

/// Whether the kernel has nothing queued on `sock`: no message (POLLIN)
/// and no pending error such as the ENOBUFS of lost messages (POLLERR).
pub fn socket_idle(sock: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(&sock, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(0) => true,
        Ok(_) => fds[0].revents().is_empty(),
        Err(_) => false,
    }
}

impl EventStream {
    /// Waits for the next event; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<Event> {
        futures::StreamExt::next(self).await
    }

    /// Whether every event the kernel has sent so far has been taken from
    /// this stream: nothing in the socket, nothing in the queue between the
    /// connection task and the stream.
    pub fn drained(&mut self) -> bool {
        if self.ahead.is_some() {
            return false;
        }
        self.ahead = self.try_next();
        self.ahead.is_none() && socket_idle(self.sock.as_fd())
    }

    /// Returns an event taken with [`EventStream::try_next`]: it comes
    /// next again.
    pub fn put_back(&mut self, ev: Event) {
        debug_assert!(self.ahead.is_none());
        self.ahead = Some(ev);
    }

    /// The next event already queued, without waiting: `None` when the
    /// queue is empty (or the connection is gone). Handy to drain the events
    /// buffered during a dump.
    pub fn try_next(&mut self) -> Option<Event> {
        if let Some(ev) = self.ahead.take() {
            return Some(ev);
        }
        while let Ok((msg, _)) = self.rx.try_recv() {
            if let Some(ev) = to_event(msg) {
                return Some(ev);
            }
        }
        None
    }
}

impl Stream for EventStream {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        if let Some(ev) = this.ahead.take() {
            return Poll::Ready(Some(ev));
        }
        loop {
            match Pin::new(&mut this.rx).poll_next(cx) {
                Poll::Ready(Some((msg, _))) => {
                    if let Some(ev) = to_event(msg) {
                        return Poll::Ready(Some(ev));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
