//! The kernel's own answer for one destination: RTM_GETROUTE with
//! RTM_F_FIB_MATCH (`ip route get fibmatch ADDR`), which returns the FIB
//! entry that matched (prefix, type, next hops, table) rather than a
//! cached result, and answers for blackhole, unreachable and prohibit
//! routes too.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::AddressFamily;

use super::{parse, NetlinkError};
use crate::model::Route;

/// The route the kernel's FIB lookup for `addr` matches; `None` when it
/// has none (ENETUNREACH).
pub async fn fib_match(addr: IpAddr) -> Result<Option<Route>, NetlinkError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|source| NetlinkError::Socket {
            context: "opening a netlink connection",
            source,
        })?;
    tokio::spawn(connection);
    let mut m = RouteMessage::default();
    let (family, len, dst) = match addr {
        IpAddr::V4(a) => (AddressFamily::Inet, 32, RouteAddress::Inet(a)),
        IpAddr::V6(a) => (AddressFamily::Inet6, 128, RouteAddress::Inet6(a)),
    };
    m.header.address_family = family;
    m.header.destination_prefix_length = len;
    m.header.flags = RouteFlags::FibMatch;
    m.attributes.push(RouteAttribute::Destination(dst));
    let mut replies = handle.route().get(m).execute();
    match replies.try_next().await {
        Ok(reply) => Ok(reply.as_ref().and_then(parse::route_any)),
        Err(rtnetlink::Error::NetlinkError(e))
            if e.raw_code() == -libc::ENETUNREACH || e.raw_code() == -libc::ESRCH =>
        {
            Ok(None)
        }
        Err(source) => Err(NetlinkError::Get {
            what: "the route to an address",
            source,
        }),
    }
}
