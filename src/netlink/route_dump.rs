//! The route dump on a socket of its own, parsed as the event path parses
//! notifications ([`parse::route_payload`]).
//!
//! A full table is a million RTM_NEWROUTE answers. Through the rtnetlink
//! connection each one was decoded into a `RouteMessage` (every attribute
//! into a vector, cache info and preference included) before the mirror
//! took five of them; read raw, each is parsed once, attribute by
//! attribute, and what the mirror does not use is skipped by type. The
//! kernel does the dump's work in our `recvmsg` calls, on the dump's
//! thread (see `dump_beside`), not on the event loop's.

use std::io;

use log::debug;
use netlink_packet_core::{NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::Socket;

use super::parse;
use crate::model::Route;

/// The kernel fills at most 32 KiB per dump datagram; twice that for room.
const DATAGRAM: usize = 64 << 10;
const NLMSG_HDRLEN: usize = 16;
/// struct rtmsg.
const RTMSG_LEN: usize = 12;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;

/// Dumps the routes of every table of one family (`libc::AF_INET` or
/// `AF_INET6`), handing each one the mirror can use to `each`. Returns
/// true when the kernel flagged the dump NLM_F_DUMP_INTR (the table changed
/// while it was read: dump again).
pub fn dump_routes(family: u8, each: &mut impl FnMut(Route)) -> io::Result<bool> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.send(&request(family), 0)?;
    let mut buf = Vec::with_capacity(DATAGRAM);
    let mut interrupted = false;
    loop {
        buf.clear();
        sock.recv(&mut buf, 0)?;
        if answers(&buf, &mut interrupted, each)?.is_some() {
            return Ok(interrupted);
        }
    }
}

/// RTM_GETROUTE with NLM_F_DUMP for `family`, rtm_table RT_TABLE_UNSPEC
/// (0): every table, where the rtnetlink crate's builder would ask for
/// main only.
fn request(family: u8) -> Vec<u8> {
    let len = NLMSG_HDRLEN + RTMSG_LEN;
    let mut req = vec![0u8; len];
    req[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETROUTE.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // struct rtmsg: rtm_family first, the rest (table included) zero.
    req[NLMSG_HDRLEN] = family;
    req
}

/// The messages of one datagram of the dump; `Some(())` once it is done.
fn answers(
    mut b: &[u8],
    interrupted: &mut bool,
    each: &mut impl FnMut(Route),
) -> io::Result<Option<()>> {
    while b.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(io::Error::other(format!(
                "malformed route dump answer ({len} of {} bytes)",
                b.len()
            )));
        }
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        let flags = u16::from_ne_bytes([b[6], b[7]]);
        *interrupted |= flags & NLM_F_DUMP_INTR != 0;
        let payload = &b[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE | NLMSG_ERROR => {
                // Both carry an int: 0, or a negative errno.
                let code = payload
                    .get(..4)
                    .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                if code < 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
                if kind == NLMSG_DONE {
                    return Ok(Some(()));
                }
            }
            RTM_NEWROUTE => match parse::route_payload(payload) {
                Some(r) => each(r),
                None => debug!("route dump: skipping a route accel does not mirror"),
            },
            other => debug!("route dump: ignoring message type {other}"),
        }
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut m = vec![0u8; (len + 3) & !3];
        m[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[6..8].copy_from_slice(&flags.to_ne_bytes());
        m[NLMSG_HDRLEN..len].copy_from_slice(payload);
        m
    }

    #[test]
    fn the_request_asks_every_table_of_the_family() {
        let r = request(libc::AF_INET6 as u8);
        assert_eq!(r.len(), 28);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), RTM_GETROUTE);
        assert_eq!(r[16], libc::AF_INET6 as u8);
        assert!(r[17..].iter().all(|&b| b == 0), "rtm_table 0: all tables");
    }

    #[test]
    fn ends_at_done_notes_interruptions_and_reports_errors() {
        let mut seen = 0;
        let mut intr = false;
        // A default route (table 10: the mirror decides what it follows)
        // is handed over, a cloned one (RTM_F_CLONED) skipped; then done.
        let mut rt = vec![0u8; RTMSG_LEN];
        rt[0] = libc::AF_INET as u8;
        rt[4] = 10;
        rt[7] = 1; // RTN_UNICAST
        let mut cloned = rt.clone();
        cloned[8..12].copy_from_slice(&0x200u32.to_ne_bytes());
        let mut d = msg(RTM_NEWROUTE, NLM_F_DUMP_INTR, &rt);
        d.extend(msg(RTM_NEWROUTE, 0, &cloned));
        d.extend(msg(NLMSG_DONE, 0, &0i32.to_ne_bytes()));
        let r = answers(&d, &mut intr, &mut |_| seen += 1).unwrap();
        assert_eq!((r, intr, seen), (Some(()), true, 1));
        // Not done yet: more datagrams follow.
        let mut intr = false;
        let r = answers(&msg(RTM_NEWROUTE, 0, &rt), &mut intr, &mut |_| {}).unwrap();
        assert_eq!((r, intr), (None, false));
        // The kernel's error ends the dump as an error.
        let e = answers(
            &msg(NLMSG_ERROR, 0, &(-libc::EPERM).to_ne_bytes()),
            &mut intr,
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        // A length past the datagram is refused, not read.
        let mut bad = msg(NLMSG_DONE, 0, &0i32.to_ne_bytes());
        bad[0] = 200;
        assert!(answers(&bad, &mut intr, &mut |_| {}).is_err());
    }
}
