//! Dumps and notifications over a plain netlink socket, for the sockets
//! whose messages accel reads a few fields of (tc, nftables): the request
//! sent, every datagram read to the dump's end, each message handed over.

use std::io;

use std::sync::atomic::{AtomicU32, Ordering};

use netlink_packet_core::{
    Emitable, ErrorBuffer, NetlinkBuffer, NetlinkHeader, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_sys::Socket;

/// Room for one datagram (the kernel fills dumps up to 32 KiB).
const DATAGRAM: usize = 1 << 16;

/// A dump request of type `kind` with a zeroed family header of
/// `body_len` bytes after the netlink header (at [`HEADER_LEN`]); its
/// sequence number is set by [`dump`].
pub fn request(kind: u16, body_len: usize) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.length = (HEADER_LEN + body_len) as u32;
    header.message_type = kind;
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut req = vec![0u8; header.length as usize];
    header.emit(&mut req);
    req
}

/// struct nlmsghdr's size.
pub const HEADER_LEN: usize = 16;

/// A socket of `protocol`, bound, joined to `group` if given.
pub fn socket(protocol: isize, group: Option<u32>) -> io::Result<Socket> {
    let mut sock = Socket::new(protocol)?;
    sock.bind_auto()?;
    if let Some(g) = group {
        sock.add_membership(g)?;
    }
    Ok(sock)
}

/// How often a dump the kernel flags NLM_F_DUMP_INTR (the state changed
/// between two of its parts) is asked again before it counts as failed.
const DUMP_ATTEMPTS: u32 = 3;

/// Sends the dump request `req` (its sequence number is set here) and
/// hands `each` the type and payload of every message of the answer.
/// Messages of an earlier request (the rest of a dump that failed) are
/// skipped; the dump is read to its end even after an error, so that the
/// socket is clean for the next request, and the first error is
/// returned. `parse` turns a message (type, payload) into what is kept.
/// A dump the kernel says was interrupted is asked again.
pub fn dump<T>(
    sock: &Socket,
    req: &mut [u8],
    mut parse: impl FnMut(u16, &[u8]) -> io::Result<Option<T>>,
) -> io::Result<Vec<T>> {
    static SEQ: AtomicU32 = AtomicU32::new(1);
    let mut found = Vec::new();
    for _ in 0..DUMP_ATTEMPTS {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        req[8..12].copy_from_slice(&seq.to_ne_bytes());
        found.clear();
        let mut each = |kind, payload: &[u8]| {
            found.extend(parse(kind, payload)?);
            Ok(())
        };
        if !dump_once(sock, req, seq, &mut each)? {
            return Ok(found);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EINTR))
}

/// One request and its answer; true if the kernel flagged it interrupted.
fn dump_once(
    sock: &Socket,
    req: &[u8],
    seq: u32,
    each: &mut impl FnMut(u16, &[u8]) -> io::Result<()>,
) -> io::Result<bool> {
    sock.send(req, 0)?;
    let mut failed = None;
    let mut interrupted = false;
    let mut buf = Vec::with_capacity(DATAGRAM);
    loop {
        buf.clear();
        sock.recv(&mut buf, 0)?;
        let end = walk(&buf, seq, |kind, flags, payload| {
            interrupted |= flags & NLM_F_DUMP_INTR != 0;
            if failed.is_none() {
                failed = each(kind, payload).err();
            }
        });
        match end {
            Ok(false) => {}
            Ok(true) => return failed.map_or(Ok(interrupted), Err),
            Err(e) => return Err(failed.unwrap_or(e)),
        }
    }
}

/// The messages of one datagram with sequence number `seq` (others are
/// skipped); true at the dump's end. An errno in NLMSG_ERROR, or in
/// NLMSG_DONE's payload (a dump callback that failed midway:
/// netlink_dump() puts its error there), is an error.
fn walk(mut b: &[u8], seq: u32, mut each: impl FnMut(u16, u16, &[u8])) -> io::Result<bool> {
    while let Ok(msg) = NetlinkBuffer::new_checked(b) {
        let len = msg.length() as usize;
        let ours = msg.sequence_number() == seq;
        match msg.message_type() {
            _ if !ours => {}
            NLMSG_DONE => {
                let errno = msg
                    .payload()
                    .first_chunk::<4>()
                    .map_or(0, |e| i32::from_ne_bytes(*e));
                return errno_result(errno);
            }
            NLMSG_ERROR => {
                let errno = ErrorBuffer::new_checked(msg.payload())
                    .ok()
                    .and_then(|e| e.code())
                    .map_or(0, |c| c.get());
                return errno_result(errno);
            }
            kind => each(kind, msg.flags(), msg.payload()),
        }
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(false)
}

fn errno_result(errno: i32) -> io::Result<bool> {
    match errno {
        0 => Ok(true),
        e => Err(io::Error::from_raw_os_error(e.wrapping_abs())),
    }
}

/// The messages of one datagram of notifications (sequence number 0).
fn notifications(mut b: &[u8], mut each: impl FnMut(u16, &[u8])) {
    while let Ok(msg) = NetlinkBuffer::new_checked(b) {
        let len = msg.length() as usize;
        each(msg.message_type(), msg.payload());
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
}

/// Reads every notification queued, without blocking: for sockets whose
/// notifications only say that something changed. An overrun (ENOBUFS)
/// says as much as one. `each` sees every message.
pub fn drain(sock: &Socket, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
    let mut buf = Vec::with_capacity(DATAGRAM);
    loop {
        buf.clear();
        match sock.recv(&mut buf, libc::MSG_DONTWAIT) {
            Ok(_) => notifications(&buf, &mut each),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A netlink message of type `kind` around `payload`, padded, with
    /// sequence number 7.
    pub fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 2]);
        m.extend_from_slice(&7u32.to_ne_bytes());
        m.extend_from_slice(&[0u8; 4]);
        m.extend_from_slice(payload);
        m.resize((m.len() + 3) & !3, 0);
        m
    }

    #[test]
    fn a_dump_ends_at_done_and_fails_on_an_errno_in_it() {
        let mut seen = Vec::new();
        let ok = [
            message(36, b"abcd"),
            message(NLMSG_DONE, &0i32.to_ne_bytes()),
        ]
        .concat();
        let mut keep = |k: u16, _: u16, p: &[u8]| seen.push((k, p.to_vec()));
        assert!(walk(&ok, 7, &mut keep).unwrap());
        assert_eq!(seen, [(36, b"abcd".to_vec())]);
        assert!(!walk(&ok[..20], 7, |_, _, _| {}).unwrap(), "no end yet");
        let other = |_: u16, _: u16, _: &[u8]| panic!("another request's message");
        assert!(!walk(&ok, 6, other).unwrap(), "another request's end");
        let cut = message(NLMSG_DONE, &(-libc::EMSGSIZE).to_ne_bytes());
        let e = walk(&cut, 7, |_, _, _| {}).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE));
        let mut err = (-libc::EPERM).to_ne_bytes().to_vec();
        err.extend_from_slice(&[0u8; 16]);
        let e = walk(&message(NLMSG_ERROR, &err), 7, |_, _, _| {}).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }
}
