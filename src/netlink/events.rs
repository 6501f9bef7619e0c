//! The subscribed rtnetlink socket and its stream of [`Event`]s.
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
//! The subscribed socket is read by a thread of its own
//! ([`super::event_reader`]), which hands bursts over in batches.
//!
//! Overruns: when the socket's receive buffer is full the kernel drops
//! notifications and the next `recvmsg` fails with ENOBUFS; that is
//! reported as [`Event::Overrun`], as is a real NLMSG_OVERRUN.

use std::collections::VecDeque;
use std::time::Instant;

use log::{debug, warn};
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_APPEND, NLM_F_EXCL, NLM_F_REPLACE,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use rtnetlink::Handle;

use super::event_reader::{Batch, Reader};
use super::{parse, NetlinkError};
use crate::model::{Event, RouteAdd};

/// Receive buffer requested with SO_RCVBUFFORCE by [`subscribe`].
pub const DEFAULT_RCVBUF: usize = 64 << 20;

/// The groups accel listens to (RTNLGRP_*).
pub const GROUPS: [u32; 10] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_IPV6_ROUTE,
    libc::RTNLGRP_NEIGH,
    libc::RTNLGRP_IPV4_RULE,
    libc::RTNLGRP_IPV6_RULE,
    // Forwarding and rp_filter changes (see Event::NetconfChanged).
    libc::RTNLGRP_IPV4_NETCONF,
    libc::RTNLGRP_IPV6_NETCONF,
];

/// The subscribed socket, and a connection for requests.
///
/// Requests (dumps, NTF_USE) never share the subscribed socket: when a
/// burst of notifications fills its receive buffer, the kernel drops the
/// answers to requests made there too (an ack, the error of a dump that
/// cannot start), and the request would wait forever. Lost notifications
/// are recovered by a resync; a lost answer is not.
pub struct Subscription {
    /// The request connection's I/O driver: spawn it
    /// (`tokio::spawn(connection)`); no dump progresses until it runs.
    pub connection: rtnetlink::proto::Connection<RouteNetlinkMessage>,
    /// Request handle, on a socket of its own, for [`super::dump`].
    pub handle: Handle,
    /// Notifications converted to [`Event`]s.
    pub events: EventStream,
}

/// Opens the subscribed socket (groups [`GROUPS`], a 64 MiB receive
/// buffer) and the request connection.
pub fn subscribe() -> Result<Subscription, NetlinkError> {
    subscribe_with_rcvbuf(DEFAULT_RCVBUF)
}

fn socket_error(context: &'static str) -> impl FnOnce(std::io::Error) -> NetlinkError {
    move |source| NetlinkError::Socket { context, source }
}

/// [`subscribe`] with an explicit receive buffer size in bytes (the kernel
/// doubles it). SO_RCVBUFFORCE is tried first (needs CAP_NET_ADMIN); on
/// failure SO_RCVBUF is used, which net.core.rmem_max caps.
pub fn subscribe_with_rcvbuf(rcvbuf: usize) -> Result<Subscription, NetlinkError> {
    let mut sock =
        Socket::new(NETLINK_ROUTE).map_err(socket_error("opening the subscribed socket"))?;
    sock.bind_auto()
        .map_err(socket_error("binding the subscribed socket"))?;
    for g in GROUPS {
        sock.add_membership(g)
            .map_err(socket_error("joining an rtnetlink group"))?;
    }
    sock.set_non_blocking(true)
        .map_err(socket_error("making the subscribed socket non-blocking"))?;
    use rustix::net::sockopt;
    if let Err(e) = sockopt::set_socket_recv_buffer_size_force(&sock, rcvbuf) {
        warn!("SO_RCVBUFFORCE({rcvbuf}) failed ({e}), falling back to SO_RCVBUF (capped by net.core.rmem_max)");
        sockopt::set_socket_recv_buffer_size(&sock, rcvbuf)
            .map_err(|e| socket_error("setting SO_RCVBUF")(e.into()))?;
    }
    match sockopt::socket_recv_buffer_size(&sock) {
        Ok(v) => debug!("netlink receive buffer: {v} bytes"),
        Err(e) => debug!("getsockopt(SO_RCVBUF): {e}"),
    }
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(socket_error("opening the request connection"))?;
    Ok(Subscription {
        connection,
        handle,
        events: EventStream {
            reader: Reader::start(sock).map_err(socket_error("starting the netlink reader"))?,
            pending: VecDeque::new(),
            pending_since: Instant::now(),
            mark: Watermark::default(),
            arrivals: Vec::new(),
            batches_taken: 0,
        },
    })
}

/// A route notification's flags (the kernel's: fib_table_insert and
/// fib6_add_rt2node set them): `None` for a replace, else how the route
/// was added. NLM_F_EXCL stays only when no other route had its key
/// (both clear it when one has; IPv6 multipath adds never set it).
fn route_add(flags: u16) -> Option<RouteAdd> {
    if flags & NLM_F_REPLACE != 0 {
        None
    } else if flags & NLM_F_EXCL != 0 {
        Some(RouteAdd::Alone)
    } else if flags & NLM_F_APPEND != 0 {
        Some(RouteAdd::Append)
    } else {
        Some(RouteAdd::Prepend)
    }
}

/// A route notification as an event: a deletion, a replacement, or an
/// addition beside the routes of the same key.
pub(super) fn route_event(new: bool, flags: u16, r: crate::model::Route) -> Event {
    if !new {
        return Event::DelRoute(r);
    }
    match route_add(flags) {
        Some(how) => Event::AddRoute(r, how),
        None => Event::NewRoute(r),
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
        M::NewRoute(m) => parse::route(m).map(|r| route_event(true, flags, r)),
        M::DelRoute(m) => parse::route(m).map(|r| route_event(false, flags, r)),
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

/// As of when the events taken are complete, from the batches'
/// [`Batch::complete_as_of`].
#[derive(Debug, Default)]
struct Watermark {
    /// The latest moment a batch taken and used up vouched for.
    done: Option<Instant>,
    /// The moment the batch being taken vouches for once it is used up.
    current: Option<Instant>,
}

impl Watermark {
    /// A batch is taken: the one before it is used up.
    fn next_batch(&mut self, complete_as_of: Option<Instant>) {
        self.done = self.done.max(self.current.take());
        self.current = complete_as_of;
    }

    /// The moment vouched for, the current batch `used_up` or not.
    fn as_of(&self, used_up: bool) -> Option<Instant> {
        match used_up {
            true => self.done.max(self.current),
            false => self.done,
        }
    }
}

/// Stream of [`Event`]s from the subscribed socket, read by its own
/// thread (see [`super::event_reader`]).
pub struct EventStream {
    reader: Reader,
    /// Received, not yet taken.
    pending: VecDeque<Event>,
    /// When the pending events were found readable.
    pending_since: Instant,
    /// As of when the events taken are complete.
    mark: Watermark,
    /// Events taken, by when they were found readable, until
    /// [`EventStream::take_arrivals`] (for the change-latency figures).
    arrivals: Vec<(Instant, u64)>,
    /// Batches taken from the reader.
    batches_taken: u64,
}

impl EventStream {
    /// Waits for the next event; `None` once the reader stopped (its
    /// socket failed).
    pub async fn next(&mut self) -> Option<Event> {
        if self.pending.is_empty() {
            let batch = self.reader.batches.recv().await?;
            self.take_batch(batch);
        }
        self.pop()
    }

    fn pop(&mut self) -> Option<Event> {
        let ev = self.pending.pop_front()?;
        match self.arrivals.last_mut() {
            Some((at, n)) if *at == self.pending_since => *n += 1,
            _ => self.arrivals.push((self.pending_since, 1)),
        }
        Some(ev)
    }

    /// How many events were taken since the last call, by when they were
    /// found readable.
    pub fn take_arrivals(&mut self) -> impl Iterator<Item = (Instant, u64)> + '_ {
        self.arrivals.drain(..)
    }

    /// The next event already received, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        if self.pending.is_empty() {
            if let Ok(batch) = self.reader.batches.try_recv() {
                self.take_batch(batch);
            }
        }
        self.pop()
    }

    /// Makes `batch` the pending events (the empty queue they replace
    /// goes back to the reader).
    fn take_batch(&mut self, batch: Batch) {
        // The batch before this one is used up.
        self.reader.used_up(self.batches_taken);
        self.batches_taken += 1;
        self.pending_since = batch.readable;
        self.mark.next_batch(batch.complete_as_of);
        let emptied = std::mem::replace(&mut self.pending, batch.events);
        self.reader.recycle(emptied);
    }

    /// Whether every batch the reader handed over has been taken and used
    /// up (called once the events taken are applied); tells the reader so.
    pub fn caught_up(&self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        self.reader.used_up(self.batches_taken);
        self.reader.batches.is_empty()
    }

    /// Starts bringing the first `n` events received and not yet taken
    /// into this CPU's cache. The reader thread wrote them on another CPU,
    /// so each line of an event (104 bytes, two or three lines) is a miss
    /// served from that CPU's cache when it is first read.
    pub fn prefetch_pending(&self, n: usize) {
        let (a, b) = self.pending.as_slices();
        let from_a = n.min(a.len());
        crate::prefetch::all(&a[..from_a]);
        crate::prefetch::all(&b[..(n - from_a).min(b.len())]);
    }

    /// The events received and not yet taken, in order.
    pub fn pending(&self) -> impl Iterator<Item = &Event> + Clone {
        self.pending.iter()
    }

    /// Returns an event taken with [`EventStream::try_next`]: it comes
    /// next again.
    pub fn put_back(&mut self, ev: Event) {
        if let Some((_, n)) = self.arrivals.last_mut() {
            *n -= 1;
        }
        self.pending.push_front(ev);
    }

    /// A moment as of which every event the kernel had queued has been
    /// taken, when more may have come since (a burst). The event loop
    /// applies each event in the turn that takes it, before it renews the
    /// lease: a caller that did otherwise could not count a taken event as
    /// applied. `None` while lost events wait at the front (put back by
    /// [`EventStream::put_back`]): the mirror is stale, whatever came
    /// before.
    pub fn exact_as_of(&self) -> Option<Instant> {
        if let Some(Event::Overrun) = self.pending.front() {
            return None;
        }
        self.mark.as_of(self.pending.is_empty())
    }

    /// Whether every event the kernel has sent so far has been taken: none
    /// in the socket, being read, or waiting in here.
    pub fn drained(&mut self) -> bool {
        self.pending.is_empty() && self.reader.drained()
    }
}

#[cfg(test)]
mod tests {
    use super::super::event_reader::tests::{oversized_message, route_message, socket_pair};
    use super::*;
    use std::time::Duration;

    /// Lost events put back at the front (the loop leaves them for its
    /// next turn) vouch for nothing: the moment of the batches before them
    /// must not renew the lease meanwhile. Through the reader's thread and
    /// a real netlink socket.
    #[test]
    fn lost_events_waiting_vouch_for_nothing() {
        let (rx, tx, to) = socket_pair();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut stream = EventStream {
                reader: Reader::start(rx).expect("reader"),
                pending: VecDeque::new(),
                pending_since: Instant::now(),
                mark: Watermark::default(),
                arrivals: Vec::new(),
                batches_taken: 0,
            };
            tx.send_to(&route_message(1, 0), &to, 0).unwrap();
            assert!(matches!(stream.next().await, Some(Event::AddRoute(..))));
            assert!(stream.exact_as_of().is_some(), "read to the end, all taken");
            tx.send_to(&route_message(2, 0), &to, 0).unwrap();
            tx.send_to(&oversized_message(), &to, 0).unwrap();
            assert!(matches!(stream.next().await, Some(Event::AddRoute(..))));
            let lost = stream.next().await.expect("the oversized datagram");
            assert!(matches!(lost, Event::Overrun));
            stream.put_back(lost);
            assert_eq!(stream.exact_as_of(), None);
            assert!(matches!(stream.try_next(), Some(Event::Overrun)));
        });
    }

    /// The flags of fib_table_insert's and fib6_add_rt2node's
    /// notifications: a fresh key keeps NLM_F_EXCL, even when appended.
    #[test]
    fn route_notification_flags() {
        use netlink_packet_core::NLM_F_CREATE;
        assert_eq!(route_add(NLM_F_REPLACE), None);
        assert_eq!(route_add(NLM_F_EXCL | NLM_F_CREATE), Some(RouteAdd::Alone));
        assert_eq!(route_add(NLM_F_CREATE), Some(RouteAdd::Prepend));
        assert_eq!(
            route_add(NLM_F_CREATE | NLM_F_APPEND),
            Some(RouteAdd::Append)
        );
    }

    /// A batch vouches for its moment only once it is used up, and a batch
    /// cut short (more waiting) vouches for nothing new.
    #[test]
    fn the_watermark_follows_batches_used_up() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut m = Watermark::default();
        assert_eq!(m.as_of(true), None);
        m.next_batch(Some(at(1)));
        assert_eq!(m.as_of(false), None, "its events are not all taken");
        assert_eq!(m.as_of(true), Some(at(1)));
        m.next_batch(None);
        assert_eq!(m.as_of(false), Some(at(1)), "the one before is used up");
        assert_eq!(m.as_of(true), Some(at(1)), "cut short: nothing new");
        m.next_batch(Some(at(3)));
        assert_eq!(m.as_of(false), Some(at(1)));
        assert_eq!(m.as_of(true), Some(at(3)));
    }
}
