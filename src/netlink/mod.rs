//! Reading the kernel's forwarding state over rtnetlink: one multicast
//! connection that first subscribes to every relevant group, then dumps
//! (links, addresses, routes of all tables, neighbours, rules), after which
//! the events buffered meanwhile are applied on top of the dump.
//!
//! * [`parse`]: pure conversions from netlink-packet-route messages to
//!   [`crate::model`] types.
//! * [`dump`]: full dumps through an [`rtnetlink::Handle`].
//! * [`events`]: the subscribed connection and its stream of
//!   [`crate::model::Event`].
//! * [`tc`]: the qdiscs and tc filters that act on an interface's
//!   traffic.
//! * [`xfrm`]: whether IPsec (XFRM) policies apply to forwarded packets,
//!   over NETLINK_XFRM.

pub mod attrs;
pub mod dump;
pub mod event_reader;
pub mod events;
pub mod neigh_use;
pub mod nexthop;
pub mod nexthop_sock;
pub mod nf_chains;
pub mod parse;
pub mod raw_dump;
pub mod route_dump;
pub mod route_get;
pub mod tc;
pub mod xfrm;

pub use dump::{dump, dump_beside, dump_into, dump_rules, DumpedRoutes, RouteSink};
pub use events::{subscribe, subscribe_with_rcvbuf, EventStream, Subscription, DEFAULT_RCVBUF};

/// Errors from the netlink layer.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be created, bound or configured.
    #[error("netlink socket: {context}")]
    Socket {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A dump request failed (request could not be sent, or the kernel
    /// answered with an error).
    #[error("netlink dump of {what} failed")]
    Dump {
        what: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
    /// The kernel flagged the dump as inconsistent (NLM_F_DUMP_INTR) on
    /// every attempt.
    #[error(
        "netlink dump of {what} kept being interrupted (NLM_F_DUMP_INTR) after {attempts} attempts"
    )]
    DumpInterrupted { what: &'static str, attempts: u32 },
    /// The thread of a dump beside the event loop ended without a result.
    #[error("the dump thread ended without a result")]
    DumpThreadGone,
    /// A single request (not a dump) failed.
    #[error("netlink request for {what} failed")]
    Get {
        what: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
    /// A route dump (raw socket) failed.
    #[error("netlink dump of {what} failed")]
    RouteDump {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The nexthop-object dump (raw socket) failed.
    #[error("netlink dump of nexthop objects failed")]
    NexthopDump(#[source] std::io::Error),
}
