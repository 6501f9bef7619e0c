//! Dumps and notifications over a plain netlink socket, for the sockets
//! whose messages accel reads a few fields of (tc, nftables): the request
//! sent, every datagram read to the dump's end, each message handed over.

use std::io;

use netlink_packet_core::{ErrorBuffer, NetlinkBuffer, NLMSG_DONE, NLMSG_ERROR};
use netlink_sys::Socket;

/// Room for one datagram (the kernel fills dumps up to 32 KiB).
const DATAGRAM: usize = 1 << 16;

/// A socket of `protocol`, bound, joined to `group` if given.
pub fn socket(protocol: isize, group: Option<u32>) -> io::Result<Socket> {
    let mut sock = Socket::new(protocol)?;
    sock.bind_auto()?;
    if let Some(g) = group {
        sock.add_membership(g)?;
    }
    Ok(sock)
}

/// Sends the dump request `req` and hands `each` the type and payload of
/// every message of the answer. Reads to the end even after an error, so
/// that the socket is clean for the next request; the first error is
/// returned.
pub fn dump(
    sock: &Socket,
    req: &[u8],
    mut each: impl FnMut(u16, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    sock.send(req, 0)?;
    let mut failed = None;
    let mut buf = Vec::with_capacity(DATAGRAM);
    loop {
        buf.clear();
        sock.recv(&mut buf, 0)?;
        let end = walk(&buf, |kind, payload| {
            if failed.is_none() {
                failed = each(kind, payload).err();
            }
        });
        match end {
            Ok(false) => {}
            Ok(true) => return failed.map_or(Ok(()), Err),
            Err(e) => return Err(failed.unwrap_or(e)),
        }
    }
}

/// The messages of one datagram; true at the dump's end. An errno in
/// NLMSG_ERROR, or in NLMSG_DONE's payload (a dump callback that failed
/// midway: netlink_dump() puts its error there), is an error.
fn walk(mut b: &[u8], mut each: impl FnMut(u16, &[u8])) -> io::Result<bool> {
    while let Ok(msg) = NetlinkBuffer::new_checked(b) {
        let len = msg.length() as usize;
        match msg.message_type() {
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
            kind => each(kind, msg.payload()),
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

/// Reads every notification queued, without blocking: for sockets whose
/// notifications only say that something changed. An overrun (ENOBUFS)
/// says as much as one. `each` sees every message.
pub fn drain(sock: &Socket, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
    let mut buf = Vec::with_capacity(DATAGRAM);
    loop {
        buf.clear();
        match sock.recv(&mut buf, libc::MSG_DONTWAIT) {
            Ok(_) => {
                let _ = walk(&buf, &mut each);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A netlink message of type `kind` around `payload`, padded.
    pub fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
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
        assert!(walk(&ok, |k, p| seen.push((k, p.to_vec()))).unwrap());
        assert_eq!(seen, [(36, b"abcd".to_vec())]);
        assert!(!walk(&ok[..20], |_, _| {}).unwrap(), "no end yet");
        let cut = message(NLMSG_DONE, &(-libc::EMSGSIZE).to_ne_bytes());
        let e = walk(&cut, |_, _| {}).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE));
        let mut err = (-libc::EPERM).to_ne_bytes().to_vec();
        err.extend_from_slice(&[0u8; 16]);
        let e = walk(&message(NLMSG_ERROR, &err), |_, _| {}).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }
}
