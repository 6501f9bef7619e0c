//! Full dumps of the kernel state through an rtnetlink [`Handle`], and the
//! routes through a socket of their own ([`super::route_dump`]: a million
//! answers, parsed like the event path's notifications).
//!
//! All dumps are sent as raw requests so that the netlink header is visible:
//! routes need `rtm_table = RT_TABLE_UNSPEC` to get every table (the
//! high-level request builder sets 254), and NLM_F_DUMP_INTR can be checked
//! on every answer. Messages are converted while streaming so that a dump of
//! a million routes never holds the decoded netlink messages in memory.

use futures::StreamExt;
use log::{debug, warn};
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::{
    address::AddressMessage, link::LinkMessage, neighbour::NeighbourMessage, rule::RuleMessage,
    AddressFamily, RouteNetlinkMessage,
};
use rtnetlink::Handle;

use super::{parse, NetlinkError};
use crate::model::{Addr, KernelState, Link, Neighbour, NexthopObject, Route, Rule};

/// How many times a dump flagged NLM_F_DUMP_INTR is retried.
const DUMP_ATTEMPTS: u32 = 4;

/// Dumps links, addresses, routes of every table, neighbours and rules (IPv4
/// and IPv6). On a multicast connection, events that arrive meanwhile stay
/// queued in the subscription's stream and are to be applied afterwards.
pub async fn dump(handle: &Handle) -> Result<KernelState, NetlinkError> {
    let mut routes = Vec::new();
    let mut state = dump_into(handle, &mut routes).await?;
    state.routes = routes;
    Ok(state)
}

/// Where a streamed route dump goes.
pub trait RouteSink {
    /// Forget the routes received so far: the dump starts over.
    fn restart(&mut self);
    fn route(&mut self, r: Route);
}

impl RouteSink for Vec<Route> {
    fn restart(&mut self) {
        self.clear();
    }
    fn route(&mut self, r: Route) {
        self.push(r);
    }
}

/// [`dump`], with the routes handed to `routes` one by one as they are
/// decoded instead of collected (`KernelState::routes` stays empty): a full
/// table as `Vec<Route>` takes some 170 MB.
pub async fn dump_into(
    handle: &Handle,
    routes: &mut impl RouteSink,
) -> Result<KernelState, NetlinkError> {
    let links = dump_links(handle).await?;
    let addrs = dump_addrs(handle).await?;
    let nexthops = dump_nexthops()?;
    let n_routes = dump_routes_into(routes)?;
    let neighbours = dump_neighbours(handle).await?;
    let rules = dump_rules(handle).await?;
    debug!(
        "dump: {} links, {} addrs, {} routes, {} neighbours, {} rules",
        links.len(),
        addrs.len(),
        n_routes,
        neighbours.len(),
        rules.len()
    );
    Ok(KernelState {
        links,
        addrs,
        routes: Vec::new(),
        neighbours,
        rules,
        nexthops,
    })
}

/// [`dump`] without the routes: everything else accel mirrors, fast at
/// any table size.
pub async fn dump_state(handle: &Handle) -> Result<KernelState, NetlinkError> {
    Ok(KernelState {
        links: dump_links(handle).await?,
        addrs: dump_addrs(handle).await?,
        routes: Vec::new(),
        neighbours: dump_neighbours(handle).await?,
        rules: dump_rules(handle).await?,
        nexthops: dump_nexthops()?,
    })
}

/// What a dump beside the event loop hands over.
pub enum DumpedRoutes {
    /// The next routes of the dump.
    Batch(Vec<Route>),
    /// The dump started over (NLM_F_DUMP_INTR): forget the routes so far.
    Restart,
}

/// Routes handed over per batch.
const BATCH: usize = 1024;

/// Sends a dump's routes in batches; waits (on the dump's own thread)
/// while the receiver is behind, which holds the dump back.
struct BatchSender {
    tx: tokio::sync::mpsc::Sender<DumpedRoutes>,
    batch: Vec<Route>,
}

impl BatchSender {
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
            self.send(DumpedRoutes::Batch(batch));
        }
    }

    /// `blocking_send` would panic inside the dump thread's runtime; the
    /// thread has nothing else to do than wait, so it sleeps.
    fn send(&self, mut msg: DumpedRoutes) {
        use tokio::sync::mpsc::error::TrySendError;
        loop {
            match self.tx.try_send(msg) {
                Ok(()) | Err(TrySendError::Closed(_)) => return,
                Err(TrySendError::Full(back)) => {
                    msg = back;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
    }
}

impl RouteSink for BatchSender {
    fn restart(&mut self) {
        self.batch.clear();
        self.send(DumpedRoutes::Restart);
    }
    fn route(&mut self, r: Route) {
        self.batch.push(r);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }
}

/// The routes of a dump beside the event loop, then the rest of its state.
pub type DumpBeside = (
    tokio::sync::mpsc::Receiver<DumpedRoutes>,
    tokio::sync::oneshot::Receiver<Result<KernelState, NetlinkError>>,
);

/// [`dump_into`] on a thread of its own, with its own socket: reading and
/// parsing a million routes takes seconds, none of it on the event loop's
/// thread, which receives the routes in batches and the rest of the state
/// at the end.
pub fn dump_beside() -> Result<DumpBeside, NetlinkError> {
    let (tx, routes) = tokio::sync::mpsc::channel(16);
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("accel-dump".into())
        .spawn(move || {
            let result = dump_on_this_thread(tx);
            let _ = done_tx.send(result);
        });
    spawned.map_err(|source| NetlinkError::Socket {
        context: "starting the dump thread",
        source,
    })?;
    Ok((routes, done))
}

fn dump_on_this_thread(
    tx: tokio::sync::mpsc::Sender<DumpedRoutes>,
) -> Result<KernelState, NetlinkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|source| NetlinkError::Socket {
            context: "starting the dump thread's runtime",
            source,
        })?;
    rt.block_on(async move {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetlinkError::Socket {
                context: "opening the dump connection",
                source,
            })?;
        tokio::spawn(conn);
        let mut sink = BatchSender {
            tx,
            batch: Vec::with_capacity(BATCH),
        };
        let state = dump_into(&handle, &mut sink).await;
        sink.flush();
        state
    })
}

/// Every nexthop object (a raw socket: the rtnetlink crate cannot decode
/// them). A kernel without nexthop objects has none.
pub fn dump_nexthops() -> Result<Vec<NexthopObject>, NetlinkError> {
    let sock =
        super::nexthop_sock::NexthopSocket::open(false).map_err(NetlinkError::NexthopDump)?;
    for attempt in 1..=DUMP_ATTEMPTS {
        match sock.dump() {
            Ok(d) if !d.interrupted => return Ok(d.objects),
            Ok(_) => warn!(
                "nexthop object dump interrupted (NLM_F_DUMP_INTR), attempt \
                 {attempt}/{DUMP_ATTEMPTS}"
            ),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(NetlinkError::NexthopDump(e)),
        }
    }
    Err(NetlinkError::DumpInterrupted {
        what: "nexthop objects",
        attempts: DUMP_ATTEMPTS,
    })
}

pub async fn dump_links(handle: &Handle) -> Result<Vec<Link>, NetlinkError> {
    let req = RouteNetlinkMessage::GetLink(LinkMessage::default());
    raw_dump(handle, "links", req, |msg| match msg {
        RouteNetlinkMessage::NewLink(l) => parse::link(&l),
        _ => None,
    })
    .await
}

pub async fn dump_addrs(handle: &Handle) -> Result<Vec<Addr>, NetlinkError> {
    // AF_UNSPEC: both families in one dump.
    let req = RouteNetlinkMessage::GetAddress(AddressMessage::default());
    raw_dump(handle, "addresses", req, |msg| match msg {
        RouteNetlinkMessage::NewAddress(a) => parse::addr(&a),
        _ => None,
    })
    .await
}

/// Routes of all tables, IPv4 then IPv6 (blocking: on a dump's own thread,
/// see [`dump_beside`]). Cloned (cache) routes are not requested and would
/// be filtered by [`parse::route_payload`] anyway.
pub fn dump_routes() -> Result<Vec<Route>, NetlinkError> {
    let mut out = Vec::new();
    dump_routes_into(&mut out)?;
    Ok(out)
}

/// [`dump_routes`] into a sink; returns how many routes it received. An
/// interrupted dump restarts both families, after `sink.restart()`.
pub fn dump_routes_into(sink: &mut impl RouteSink) -> Result<usize, NetlinkError> {
    'attempt: for attempt in 1..=DUMP_ATTEMPTS {
        sink.restart();
        let mut count = 0;
        for (what, family) in [
            ("IPv4 routes", libc::AF_INET),
            ("IPv6 routes", libc::AF_INET6),
        ] {
            let mut each = |r| {
                count += 1;
                sink.route(r)
            };
            let interrupted = super::route_dump::dump_routes(family as u8, &mut each)
                .map_err(|source| NetlinkError::RouteDump { what, source })?;
            if interrupted {
                warn!(
                    "{what} dump interrupted (NLM_F_DUMP_INTR), attempt {attempt}/{DUMP_ATTEMPTS}"
                );
                continue 'attempt;
            }
        }
        return Ok(count);
    }
    Err(NetlinkError::DumpInterrupted {
        what: "routes",
        attempts: DUMP_ATTEMPTS,
    })
}

pub async fn dump_neighbours(handle: &Handle) -> Result<Vec<Neighbour>, NetlinkError> {
    let mut out = Vec::new();
    for (what, family) in [
        ("IPv4 neighbours", AddressFamily::Inet),
        ("IPv6 neighbours", AddressFamily::Inet6),
    ] {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        let req = RouteNetlinkMessage::GetNeighbour(m);
        out.extend(
            raw_dump(handle, what, req, |msg| match msg {
                RouteNetlinkMessage::NewNeighbour(n) => parse::neighbour(&n),
                _ => None,
            })
            .await?,
        );
    }
    Ok(out)
}

/// IPv4 and IPv6 policy routing rules.
pub async fn dump_rules(handle: &Handle) -> Result<Vec<Rule>, NetlinkError> {
    let mut out = Vec::new();
    for (what, family) in [
        ("IPv4 rules", AddressFamily::Inet),
        ("IPv6 rules", AddressFamily::Inet6),
    ] {
        let mut m = RuleMessage::default();
        m.header.family = family;
        let req = RouteNetlinkMessage::GetRule(m);
        out.extend(
            raw_dump(handle, what, req, |msg| match msg {
                RouteNetlinkMessage::NewRule(r) => parse::rule(&r),
                _ => None,
            })
            .await?,
        );
    }
    Ok(out)
}

/// Sends `req` as an NLM_F_DUMP request and converts every answer with
/// `conv` while streaming. A dump flagged NLM_F_DUMP_INTR (the table changed
/// while it was being read) is restarted, up to [`DUMP_ATTEMPTS`] times.
async fn raw_dump<T>(
    handle: &Handle,
    what: &'static str,
    req: RouteNetlinkMessage,
    mut conv: impl FnMut(RouteNetlinkMessage) -> Option<T>,
) -> Result<Vec<T>, NetlinkError> {
    for attempt in 1..=DUMP_ATTEMPTS {
        let mut out = Vec::new();
        if !dump_once(handle, what, req.clone(), &mut conv, &mut |x| out.push(x)).await? {
            return Ok(out);
        }
        warn!("{what} dump interrupted (NLM_F_DUMP_INTR), attempt {attempt}/{DUMP_ATTEMPTS}");
    }
    Err(NetlinkError::DumpInterrupted {
        what,
        attempts: DUMP_ATTEMPTS,
    })
}

/// One dump request; every converted answer goes to `each`. Returns true
/// when the kernel flagged the dump as interrupted.
async fn dump_once<T>(
    handle: &Handle,
    what: &'static str,
    req: RouteNetlinkMessage,
    mut conv: impl FnMut(RouteNetlinkMessage) -> Option<T>,
    each: &mut impl FnMut(T),
) -> Result<bool, NetlinkError> {
    let mut handle = handle.clone();
    let mut msg = NetlinkMessage::from(req);
    msg.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut answers = handle
        .request(msg)
        .map_err(|source| NetlinkError::Dump { what, source })?;
    let mut interrupted = false;
    while let Some(answer) = answers.next().await {
        interrupted |= answer.header.flags & NLM_F_DUMP_INTR != 0;
        match answer.payload {
            NetlinkPayload::InnerMessage(inner) => {
                if let Some(x) = conv(inner) {
                    each(x)
                }
            }
            NetlinkPayload::Error(e) if e.code.is_some() => {
                return Err(NetlinkError::Dump {
                    what,
                    source: rtnetlink::Error::NetlinkError(e),
                })
            }
            other => debug!("{what} dump: ignoring {other:?}"),
        }
    }
    Ok(interrupted)
}
