//! Netlink attributes walked in place, for the one message the event path
//! parses a million times (route notifications). netlink-packet-core's
//! `NlasIterator` checks and re-reads each header through its generic
//! buffer accessors (about 3% of accel's CPU while a full table streams
//! in); this reads each header once and applies the same checks.

use netlink_packet_core::{NlaBuffer, NLA_TYPE_MASK};

const HEADER: usize = 4;

/// One attribute: its type (flags masked off, as `NlaBuffer::kind`), its
/// value, and the whole attribute for the library's typed parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub kind: u16,
    pub value: &'a [u8],
    whole: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The attribute as netlink-packet-core's buffer (its length checked).
    pub fn buffer(&self) -> NlaBuffer<&'a [u8]> {
        NlaBuffer::new(self.whole)
    }
}

/// An attribute whose length is below its header or past the end of the
/// message: the rest of the message cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The attributes of `b` in order; after a malformed one, nothing more
/// (as `NlasIterator`).
pub fn attrs(b: &[u8]) -> Attrs<'_> {
    Attrs { rest: b }
}

pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = std::mem::take(&mut self.rest);
        let Some(h) = b.first_chunk::<HEADER>() else {
            return Some(Err(Malformed));
        };
        // struct rtattr / nlattr: u16 length (header included), u16 type,
        // host byte order; the next one starts at the length rounded up to
        // 4 (NLA_ALIGN).
        let len = usize::from(u16::from_ne_bytes([h[0], h[1]]));
        if len < HEADER || len > b.len() {
            return Some(Err(Malformed));
        }
        let kind = u16::from_ne_bytes([h[2], h[3]]) & NLA_TYPE_MASK;
        self.rest = b.get((len + 3) & !3..).unwrap_or(&[]);
        Some(Ok(Attr {
            kind,
            value: &b[HEADER..len],
            whole: &b[..len],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NlasIterator;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = ((HEADER + value.len()) as u16).to_ne_bytes().to_vec();
        v.extend(kind.to_ne_bytes());
        v.extend(value);
        v.resize((v.len() + 3) & !3, 0);
        v
    }

    /// What netlink-packet-core's iterator makes of `b`: (kind, value)
    /// per attribute, `None` for its error.
    fn library(b: &[u8]) -> Vec<Option<(u16, Vec<u8>)>> {
        NlasIterator::new(b)
            .map(|a| a.ok().map(|a| (a.kind(), a.value().to_vec())))
            .collect()
    }

    fn ours(b: &[u8]) -> Vec<Option<(u16, Vec<u8>)>> {
        attrs(b)
            .map(|a| a.ok().map(|a| (a.kind, a.value.to_vec())))
            .collect()
    }

    #[test]
    fn walks_like_the_library() {
        let mut msg = attr(1, &[10, 0, 0, 0]);
        msg.extend(attr(5, &[1, 2, 3])); // padded to 8
        msg.extend(attr(9 | 0x8000, &[])); // nested flag masked off
        msg.extend(attr(30, &7u32.to_ne_bytes()));
        let want = vec![
            Some((1, vec![10, 0, 0, 0])),
            Some((5, vec![1, 2, 3])),
            Some((9, vec![])),
            Some((30, 7u32.to_ne_bytes().to_vec())),
        ];
        assert_eq!(ours(&msg), want);
        assert_eq!(library(&msg), want);
        // The last attribute unpadded (a message may end at its length).
        let short = attr(2, &[1]);
        assert_eq!(ours(&short[..5]), library(&short[..5]));
        assert_eq!(ours(&short[..5]), vec![Some((2, vec![1]))]);
    }

    #[test]
    fn stops_at_a_malformed_attribute_like_the_library() {
        let good = attr(1, &[1, 2, 3, 4]);
        let cases: Vec<Vec<u8>> = vec![
            vec![1, 0],                                                // shorter than a header
            [&3u16.to_ne_bytes()[..], &[1, 0]].concat(),               // length below the header
            [&good[..], &40u16.to_ne_bytes(), &[1, 0, 0, 0]].concat(), // past the end
        ];
        for b in cases {
            let got = ours(&b);
            assert_eq!(got, library(&b), "{b:?}");
            assert_eq!(got.last(), Some(&None), "{b:?}");
        }
    }

    #[test]
    fn buffer_is_the_attribute() {
        let b = attr(15, &254u32.to_ne_bytes());
        let a = attrs(&b).next().unwrap().unwrap();
        assert_eq!(a.buffer().kind(), 15);
        assert_eq!(a.buffer().value(), &254u32.to_ne_bytes());
    }
}
