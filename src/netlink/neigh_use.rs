//! Telling the kernel a neighbour entry is in use, as its transmit path
//! does (see [`crate::mirror::nudge`]).

use std::net::IpAddr;

use futures::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_route::{
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage},
    AddressFamily, RouteNetlinkMessage,
};
use rtnetlink::Handle;

/// RTM_NEWNEIGH with NTF_USE for an existing entry: the kernel runs
/// `neigh_event_send` on it (STALE -> DELAY -> PROBE). Sent without
/// NLM_F_CREATE (rtnetlink's `neighbours().add()` always sets it), so an
/// entry that vanished meanwhile is not created again: the kernel answers
/// ENOENT instead. The state in the header is ignored for NTF_USE.
pub async fn use_neighbour(
    handle: &Handle,
    ifindex: u32,
    addr: IpAddr,
) -> Result<(), rtnetlink::Error> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.ifindex = ifindex;
    msg.header.flags = NeighbourFlags::Use;
    msg.attributes
        .push(NeighbourAttribute::Destination(match addr {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(msg));
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    let mut answers = handle.clone().request(req)?;
    while let Some(answer) = answers.next().await {
        if let NetlinkPayload::Error(e) = answer.payload {
            return Err(rtnetlink::Error::NetlinkError(e));
        }
    }
    Ok(())
}
