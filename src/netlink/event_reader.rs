//! The thread that reads the subscribed rtnetlink socket.
//!
//! Reading on a thread of its own lets a burst of notifications (a BGP
//! session bringing or taking a full table) be taken in batches: the
//! thread reads everything queued with `recvmmsg`, parses it, hands the
//! batch to the event loop in one message, and lets the next one gather
//! for a moment before reading again. The event loop then wakes once per
//! batch, not once per route, and the socket is still read as fast as the
//! kernel fills it. A single change (no burst) is handed over at once.
//!
//! The thread also watches that the loop keeps up: a batch it handed over
//! that the loop has not used up [`PATIENCE`] later raises the loop to
//! real-time priority (the loop wakes at normal priority: see
//! [`crate::realtime`]).

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use netlink_packet_core::NetlinkMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::Socket;
use rustix::event::{PollFd, PollFlags, Timespec};
use tokio::sync::mpsc;

use super::events::{route_event, to_event};
use super::parse;
use crate::model::Event;

/// Datagrams per `recvmmsg`.
const BATCH: usize = 64;
/// Room per datagram. Notifications are one message each, at most a few
/// KB (a link with all its attributes); one that does not fit is reported
/// as lost, which a resync recovers.
const SLOT: usize = 16 << 10;
/// Events handed over in one batch at most.
const MAX_BATCH: usize = 1024;
/// After handing a batch over, the next read waits this long for more to
/// gather: the first change after a quiet moment goes at once, and one that
/// follows within this time waits for it at most.
const GATHER: Duration = Duration::from_millis(1);
/// A batch handed over and not used up within this time raises the event
/// loop to real-time priority until it has caught up
/// (crate::realtime::raise_loop).
const PATIENCE: Duration = Duration::from_millis(2);
/// How often the reader looks again while a batch waits for the loop.
const WATCH_CHECK: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 500_000,
};
/// How often an idle reader looks whether it should stop.
const IDLE_CHECK: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 200_000_000,
};

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_NEWNETCONF: u16 = 80;
const RTM_DELNETCONF: u16 = 81;

struct Shared {
    /// Set while the thread has read (or is reading) events it has not
    /// handed over yet.
    busy: AtomicBool,
    stop: AtomicBool,
    /// Batches the event loop has used up (applied every event of).
    used_up: AtomicU64,
}

/// The batches the reader handed over and the loop has not used up yet,
/// by when each was handed over.
#[derive(Debug, Default)]
struct Handed {
    /// Batches handed over before the first of `times`.
    base: u64,
    times: VecDeque<Instant>,
}

impl Handed {
    fn sent(&mut self, now: Instant) {
        self.times.push_back(now);
    }

    /// Forgets the batches the loop has used up (`used_up` in all);
    /// whether one still waits.
    fn waiting(&mut self, used_up: u64) -> bool {
        while self.base < used_up && self.times.pop_front().is_some() {
            self.base += 1;
        }
        !self.times.is_empty()
    }

    /// Whether the oldest batch not used up was handed over PATIENCE or
    /// more before `now`.
    fn overdue(&mut self, used_up: u64, now: Instant) -> bool {
        self.waiting(used_up)
            && self
                .times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= PATIENCE)
    }
}

/// Events as the reader hands them over.
pub struct Batch {
    /// When the first of them was found readable.
    pub readable: Instant,
    /// A moment at which the socket held nothing more: every notification
    /// the kernel had queued by then is in this batch or an earlier one.
    /// `None` when the batch filled up at [`MAX_BATCH`] (more may have been
    /// waiting) or the read failed.
    pub complete_as_of: Option<Instant>,
    pub events: VecDeque<Event>,
}

/// The event loop's end of the reader.
pub struct Reader {
    pub batches: mpsc::UnboundedReceiver<Batch>,
    /// Emptied batches go back to the thread to be filled again: a burst
    /// then allocates nothing per batch (a fresh batch grew by
    /// reallocation to 1024 events, and freed, every time).
    recycle: std::sync::mpsc::Sender<VecDeque<Event>>,
    shared: Arc<Shared>,
    /// A descriptor of the same socket, to see what is queued in it.
    sock: std::os::fd::OwnedFd,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

impl Reader {
    /// Starts the thread on `sock` (subscribed, non-blocking).
    pub fn start(sock: Socket) -> std::io::Result<Reader> {
        let shared = Arc::new(Shared {
            busy: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            used_up: AtomicU64::new(0),
        });
        let dup = sock.as_fd().try_clone_to_owned()?;
        let (tx, batches) = mpsc::unbounded_channel();
        let (recycle, pool) = std::sync::mpsc::channel();
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("accel-netlink".into())
            .spawn(move || {
                crate::realtime::enter_reader();
                read_loop(sock, tx, &pool, &theirs)
            })?;
        Ok(Reader {
            batches,
            recycle,
            shared,
            sock: dup,
        })
    }

    /// The event loop has used up the first `n` batches it received.
    pub fn used_up(&self, n: u64) {
        self.shared.used_up.store(n, Ordering::SeqCst);
    }

    /// Gives an emptied batch back to the thread.
    pub fn recycle(&self, batch: VecDeque<Event>) {
        debug_assert!(batch.is_empty());
        // The thread is gone only when the stream ended.
        let _ = self.recycle.send(batch);
    }

    /// Nothing in the socket, nothing being read, nothing handed over and
    /// not yet received. The order of the looks matters: the thread sets
    /// `busy` before it reads and clears it only after handing over, so
    /// events read between two looks are seen by one of them.
    pub fn drained(&self) -> bool {
        let busy = || self.shared.busy.load(Ordering::SeqCst);
        !busy() && socket_idle(self.sock.as_fd()) && !busy() && self.batches.is_empty()
    }
}

/// Whether the kernel has nothing queued on `sock`: no message (POLLIN)
/// and no pending error such as the ENOBUFS of lost messages (POLLERR).
pub fn socket_idle(sock: BorrowedFd<'_>) -> bool {
    wait_readable(
        sock,
        &Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
    )
    .is_some_and(|ready| !ready)
}

/// Some(true) when `sock` has something (a message or an error) within
/// `timeout`, Some(false) when not, None when poll failed.
fn wait_readable(sock: BorrowedFd<'_>, timeout: &Timespec) -> Option<bool> {
    let mut fds = [PollFd::new(&sock, PollFlags::IN)];
    match rustix::event::poll(&mut fds, Some(timeout)) {
        Ok(0) => Some(false),
        Ok(_) => Some(!fds[0].revents().is_empty()),
        Err(rustix::io::Errno::INTR) => Some(false),
        Err(_) => None,
    }
}

fn read_loop(
    sock: Socket,
    tx: mpsc::UnboundedSender<Batch>,
    pool: &std::sync::mpsc::Receiver<VecDeque<Event>>,
    shared: &Shared,
) {
    let mut buf = vec![0u8; BATCH * SLOT];
    let mut batch = VecDeque::new();
    let mut handed = Handed::default();
    let used_up = || shared.used_up.load(Ordering::SeqCst);
    let look = |handed: &mut Handed| {
        // Not in unit tests: the loop a reader raises is the process's
        // one, which the priority's own tests stand in for.
        if handed.overdue(used_up(), Instant::now()) && !cfg!(test) {
            crate::realtime::raise_loop();
        }
    };
    while !shared.stop.load(Ordering::SeqCst) {
        let wait = if handed.waiting(used_up()) {
            &WATCH_CHECK
        } else {
            &IDLE_CHECK
        };
        let readable = wait_readable(sock.as_fd(), wait);
        look(&mut handed);
        match readable {
            Some(false) => continue,
            Some(true) => {}
            None => {
                warn!("waiting on the subscribed netlink socket failed: the event stream ends");
                return;
            }
        }
        shared.busy.store(true, Ordering::SeqCst);
        let readable = Instant::now();
        if batch.capacity() == 0 {
            batch = pool.try_recv().unwrap_or_default();
        }
        let result = read_into(&sock, &mut buf, &mut batch);
        let n = batch.len();
        if n > 0 {
            let handed_over = Batch {
                readable,
                complete_as_of: result.as_ref().ok().and_then(|c| *c),
                events: std::mem::take(&mut batch),
            };
            if tx.send(handed_over).is_err() {
                return;
            }
            handed.sent(Instant::now());
        }
        shared.busy.store(false, Ordering::SeqCst);
        if let Err(e) = result {
            warn!("reading the subscribed netlink socket: {e}: the event stream ends");
            return;
        }
        // After every batch, not only after large ones: a daemon installing
        // routes one by one leaves a few events per read, and reading them
        // as they come switched the reader and the loop every few events.
        if n > 0 {
            std::thread::sleep(GATHER);
            look(&mut handed);
        }
    }
}

/// Reads datagrams until the socket is empty or [`MAX_BATCH`] events are
/// read; lost notifications (ENOBUFS) become [`Event::Overrun`]. Returns
/// when the socket was found empty: the clock is read before each read,
/// so a read that finds nothing vouches for every notification queued
/// before its reading. `None` when the batch filled first.
fn read_into(
    sock: &Socket,
    buf: &mut [u8],
    out: &mut VecDeque<Event>,
) -> std::io::Result<Option<Instant>> {
    while out.len() < MAX_BATCH {
        let asked = Instant::now();
        match recv_batch(sock, buf, out) {
            Ok(0) => return Ok(Some(asked)),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => out.push_back(Event::Overrun),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(Some(asked)),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// One `recvmmsg`: up to [`BATCH`] datagrams, parsed into `out`; returns
/// how many datagrams came.
fn recv_batch(sock: &Socket, buf: &mut [u8], out: &mut VecDeque<Event>) -> std::io::Result<usize> {
    debug_assert_eq!(buf.len(), BATCH * SLOT);
    // SAFETY: all-zero iovec and mmsghdr are valid values; each entry is
    // then pointed at its own SLOT bytes of `buf`, which outlives the call.
    let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (i, (v, m)) in iov.iter_mut().zip(msgs.iter_mut()).enumerate() {
        v.iov_base = buf[i * SLOT..].as_mut_ptr().cast();
        v.iov_len = SLOT;
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: recvmmsg(2) on our socket with BATCH initialised headers;
    // netlink-sys offers no batched receive.
    let n = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    for (i, m) in msgs.iter().take(n as usize).enumerate() {
        if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            warn!("a netlink notification larger than {SLOT} bytes was cut: full resync");
            out.push_back(Event::Overrun);
            continue;
        }
        parse_datagram(&buf[i * SLOT..i * SLOT + m.msg_len as usize], out);
    }
    Ok(n as usize)
}

/// The messages of one datagram as events, in order.
pub fn parse_datagram(mut b: &[u8], out: &mut VecDeque<Event>) {
    const HDR: usize = 16;
    while b.len() >= HDR {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < HDR || len > b.len() {
            debug!(
                "truncated netlink message in a notification ({len} of {} bytes)",
                b.len()
            );
            return;
        }
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        let flags = u16::from_ne_bytes([b[6], b[7]]);
        if kind == RTM_NEWROUTE || kind == RTM_DELROUTE {
            // The bulk of any burst: parsed without building a message.
            match parse::route_payload(&b[HDR..len]) {
                Some(r) => out.push_back(route_event(kind == RTM_NEWROUTE, flags, r)),
                None => debug!("skipping a route notification accel does not mirror"),
            }
        } else if kind == RTM_NEWNETCONF || kind == RTM_DELNETCONF {
            // Which setting does not matter: all are re-read.
            out.push_back(Event::NetconfChanged);
        } else {
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b[..len]) {
                Ok(msg) => out.extend(to_event(msg)),
                Err(e) => debug!("skipping an unparsable notification: {e}"),
            }
        }
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use netlink_sys::{protocols::NETLINK_USERSOCK, SocketAddr};

    /// An RTM_NEWROUTE for 10.<i>.0.0/16 in the main table, its
    /// destination after `filler` bytes of attributes accel skips (type
    /// 20, RTA_PREF-like).
    pub(crate) fn route_message(i: u8, filler: usize) -> Vec<u8> {
        let mut attrs = Vec::new();
        let mut attr = |kind: u16, v: &[u8]| {
            attrs.extend(((4 + v.len()) as u16).to_ne_bytes());
            attrs.extend(kind.to_ne_bytes());
            attrs.extend(v);
            attrs.resize((attrs.len() + 3) & !3, 0);
        };
        for _ in 0..filler / 8 {
            attr(20, &[0; 4]);
        }
        attr(1, &[10, i, 0, 0]); // RTA_DST
        attr(4, &7u32.to_ne_bytes()); // RTA_OIF
                                      // rtmsg: AF_INET, /16, tos 0, table main, proto boot, scope
                                      // universe, unicast, no flags.
        let mut payload = vec![2, 16, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0];
        payload.extend(attrs);
        let mut msg = ((16 + payload.len()) as u32).to_ne_bytes().to_vec();
        msg.extend(RTM_NEWROUTE.to_ne_bytes());
        msg.extend(0x0400u16.to_ne_bytes()); // NLM_F_CREATE
        msg.extend([0; 8]); // sequence, port
        msg.extend(payload);
        msg
    }

    fn prefix_of(e: &Event) -> String {
        match e {
            Event::NewRoute(r) | Event::AddRoute(r, _) => r.key.prefix.to_string(),
            other => format!("{other:?}"),
        }
    }

    /// A non-blocking socket to read, one to write to it, and its address.
    /// The reader does not care about the protocol: NETLINK_USERSOCK lets
    /// one socket write to another without privilege (rtnetlink needs
    /// CAP_NET_ADMIN).
    pub(crate) fn socket_pair() -> (Socket, Socket, SocketAddr) {
        let mut rx = Socket::new(NETLINK_USERSOCK).expect("netlink socket");
        let rx_addr = rx.bind_auto().expect("bind");
        rx.set_non_blocking(true).unwrap();
        let mut tx = Socket::new(NETLINK_USERSOCK).expect("netlink socket");
        tx.bind_auto().expect("bind");
        (rx, tx, SocketAddr::new(rx_addr.port_number(), 0))
    }

    /// A datagram larger than a slot: read as [`Event::Overrun`].
    pub(crate) fn oversized_message() -> Vec<u8> {
        route_message(0, SLOT + 64)
    }

    /// A read that empties the socket says when it found it empty: after
    /// the last datagram was sent, before the read returned.
    #[test]
    fn a_read_to_the_end_says_when_the_socket_was_empty() {
        let (rx, tx, to) = socket_pair();
        for i in 0..3 {
            tx.send_to(&route_message(i, 0), &to, 0).expect("send");
        }
        let sent = Instant::now();
        let mut buf = vec![0u8; BATCH * SLOT];
        let mut out = VecDeque::new();
        let empty_at = read_into(&rx, &mut buf, &mut out).unwrap();
        let returned = Instant::now();
        assert_eq!(out.len(), 3);
        let empty_at = empty_at.expect("the socket was read to the end");
        assert!(sent <= empty_at && empty_at <= returned);
    }

    /// Datagrams of every size through a real netlink socket, each whole
    /// in one slot, and one past the room reported as lost.
    #[test]
    fn datagrams_of_any_size_come_whole() {
        let (rx, tx, to) = socket_pair();
        let sizes = [0, 900, 1100, 3000, SLOT - 200, SLOT + 64];
        for (i, filler) in sizes.iter().enumerate() {
            let m = route_message(i as u8, *filler);
            tx.send_to(&m, &to, 0).expect("send");
        }
        let mut buf = vec![0u8; BATCH * SLOT];
        let mut out = VecDeque::new();
        assert_eq!(recv_batch(&rx, &mut buf, &mut out).unwrap(), sizes.len());
        let got: Vec<String> = out.iter().map(prefix_of).collect();
        assert_eq!(
            got,
            [
                "10.0.0.0/16",
                "10.1.0.0/16",
                "10.2.0.0/16",
                "10.3.0.0/16",
                "10.4.0.0/16",
                "Overrun"
            ]
        );
    }

    /// The reader follows the batches the loop has not used up, by when
    /// each was handed over, and calls one overdue only past PATIENCE.
    #[test]
    fn a_batch_is_overdue_only_while_it_waits_past_patience() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut h = Handed::default();
        assert!(!h.waiting(0));
        assert!(!h.overdue(0, ms(100)));
        h.sent(ms(0));
        h.sent(ms(1));
        assert!(h.waiting(0));
        assert!(!h.overdue(0, ms(1)));
        assert!(h.overdue(0, ms(2)));
        // The first used up: the second is the oldest, 1 ms younger.
        assert!(!h.overdue(1, ms(2)));
        assert!(h.overdue(1, ms(3)));
        assert!(!h.overdue(2, ms(50)));
        // The loop may take a batch before the reader notes it as sent.
        h.sent(ms(60));
        assert!(!h.waiting(3));
        assert!(!h.overdue(3, ms(100)));
        h.sent(ms(100));
        assert!(h.overdue(3, ms(103)));
    }
}
