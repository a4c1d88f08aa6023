//! Gnutella descriptors: a header's id/TTL/hops plus a typed payload.
//!
//! [`Descriptor::parse`] reads one whole descriptor (header + payload);
//! [`Payload::parse`] reads a payload whose header was already read (the
//! framer's case). Ping, Pong, Query, QueryHit, Push and Bye are decoded;
//! every other payload type is kept whole as [`Payload::Unknown`].
//!
//! Every decoder is total (a value or a [`DecodeError`], never a panic) and
//! keeps enough of what it read for `encode` to give back the same bytes.
//!
//! [`DescriptorRef`] and the other `…Ref` types are zero-copy views that
//! make exactly the same checks; the owned types are built from them, so
//! the two decoders cannot disagree. Use the views on hot paths (routing,
//! forwarding), the owned types where values are kept or built.

use std::fmt;
use std::net::Ipv4Addr;

use crate::error::{DecodeError, Result};
use crate::ggep::Ggep;
use crate::header::{DescriptorId, Header, PayloadType, HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::huge::Urn;

mod bye;
mod ping;
mod pong;
mod push;
mod query;
mod query_hit;
mod view;

pub use bye::Bye;
pub use ping::Ping;
pub use pong::{Pong, PongFixed};
pub use push::{Push, PushFixed};
pub use query::{Query, SpeedField};
pub use query_hit::{HitResult, QhdFlags, QhdTrailer, QueryHit};
pub(crate) use view::find_byte;
pub use view::{
    ByeRef, DescriptorRef, ExtensionIter, ExtensionRef, ExtensionsRef, HitResultIter, HitResultRef,
    PayloadRef, PingRef, PongRef, PushRef, QhdTrailerRef, QueryHitRef, QueryRef,
};

/// Size policy (PROTOCOL-NOTES §1, after the 0.6 draft and gtk-gnutella's
/// defaults): a Query payload longer than this is not forwarded.
pub const QUERY_FORWARD_MAX_LEN: usize = 256;
/// A Query payload longer than this is dropped outright.
pub const QUERY_MAX_LEN: usize = 4096;
/// A QueryHit payload longer than this is not forwarded.
pub const QUERY_HIT_FORWARD_MAX_LEN: usize = 16384;
/// Fixed part of a Pong; anything shorter is malformed.
pub const PONG_MIN_LEN: usize = 14;
/// Fixed part of a Push; anything shorter is malformed.
pub const PUSH_MIN_LEN: usize = 26;
/// Fixed part of a QueryHit before the results (count, port, ip, speed).
pub const QUERY_HIT_FIXED_LEN: usize = 11;
/// The servent id that ends every QueryHit.
pub const SERVENT_ID_LEN: usize = 16;
/// Separator between Query / result extensions.
pub const EXTENSION_SEPARATOR: u8 = 0x1C;

/// A servent's 16-byte id (the last 16 bytes of its QueryHits; the target of a Push).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ServentId(pub [u8; 16]);

impl fmt::Display for ServentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ServentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServentId({self})")
    }
}

/// One whole descriptor. The header's payload type and length follow from
/// the payload, so they are not stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub id: DescriptorId,
    pub ttl: u8,
    pub hops: u8,
    pub payload: Payload,
}

/// A descriptor's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Ping(Ping),
    Pong(Pong),
    Query(Query),
    QueryHit(QueryHit),
    Push(Push),
    Bye(Bye),
    /// Any other payload type, kept whole. `payload_type` is never one of
    /// the decoded codes (a value built with one would decode as that type).
    Unknown {
        payload_type: u8,
        bytes: Vec<u8>,
    },
}

impl Descriptor {
    /// Parses one whole descriptor: 23 header bytes, then exactly the
    /// declared payload length.
    pub fn parse(bytes: &[u8]) -> Result<Descriptor> {
        let header = Header::parse(bytes)?;
        let payload = &bytes[HEADER_LEN..];
        let declared = header.payload_len as usize;
        if payload.len() < declared {
            return Err(DecodeError::Truncated);
        }
        if payload.len() > declared {
            return Err(DecodeError::TrailingBytes);
        }
        Descriptor::parse_payload(&header, payload)
    }

    /// Builds a descriptor from an already parsed header and its payload bytes.
    pub fn parse_payload(header: &Header, payload: &[u8]) -> Result<Descriptor> {
        if payload.len() != header.payload_len as usize {
            return Err(DecodeError::BadField("payload length"));
        }
        Ok(Descriptor {
            id: header.id,
            ttl: header.ttl,
            hops: header.hops,
            payload: Payload::parse(header.payload_type, payload)?,
        })
    }

    /// The header this descriptor is sent with.
    pub fn header(&self) -> Header {
        Header {
            id: self.id,
            payload_type: self.payload.payload_type(),
            ttl: self.ttl,
            hops: self.hops,
            payload_len: self.payload.encoded_len() as u32,
        }
    }

    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.encoded_len()
    }

    /// Appends header and payload. A payload over [`MAX_PAYLOAD_LEN`] is
    /// written anyway; peers will reject it (check `encoded_len` first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        self.header().encode(out);
        self.payload.encode(out);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }

    /// Whether the encoded payload fits the 64 KiB limit every peer enforces.
    pub fn fits_limit(&self) -> bool {
        self.payload.encoded_len() <= MAX_PAYLOAD_LEN
    }
}

impl Payload {
    /// Decodes a payload of the given type.
    pub fn parse(payload_type: PayloadType, bytes: &[u8]) -> Result<Payload> {
        PayloadRef::parse(payload_type, bytes).map(PayloadRef::into_owned)
    }

    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Ping(_) => PayloadType::Ping,
            Payload::Pong(_) => PayloadType::Pong,
            Payload::Query(_) => PayloadType::Query,
            Payload::QueryHit(_) => PayloadType::QueryHit,
            Payload::Push(_) => PayloadType::Push,
            Payload::Bye(_) => PayloadType::Bye,
            Payload::Unknown { payload_type, .. } => PayloadType::from_u8(*payload_type),
        }
    }

    pub fn encoded_len(&self) -> usize {
        match self {
            Payload::Ping(p) => p.encoded_len(),
            Payload::Pong(p) => p.encoded_len(),
            Payload::Query(p) => p.encoded_len(),
            Payload::QueryHit(p) => p.encoded_len(),
            Payload::Push(p) => p.encoded_len(),
            Payload::Bye(p) => p.encoded_len(),
            Payload::Unknown { bytes, .. } => bytes.len(),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Ping(p) => p.encode(out),
            Payload::Pong(p) => p.encode(out),
            Payload::Query(p) => p.encode(out),
            Payload::QueryHit(p) => p.encode(out),
            Payload::Push(p) => p.encode(out),
            Payload::Bye(p) => p.encode(out),
            Payload::Unknown { bytes, .. } => out.extend_from_slice(bytes),
        }
    }
}

/// One extension of a Query or of a QueryHit result, in wire order.
///
/// Invariants for exact re-encoding: no item contains 0x1C, and no
/// non-GGEP item contains 0x00 (results end at a NUL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// A HUGE urn (`urn:...`).
    Urn(Urn),
    /// XML metadata (starts with `<`, or `{` for `{deflate}` / `{plaintext}` forms).
    Xml(Vec<u8>),
    /// A GGEP block.
    Ggep(Ggep),
    /// Anything else (old plain-text metadata such as "128 kbps 44 kHz").
    Text(Vec<u8>),
}

impl Extension {
    pub fn encoded_len(&self) -> usize {
        match self {
            Extension::Urn(u) => u.encoded_len(),
            Extension::Xml(b) | Extension::Text(b) => b.len(),
            Extension::Ggep(g) => g.encoded_len(),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Extension::Urn(u) => u.encode(out),
            Extension::Xml(b) | Extension::Text(b) => out.extend_from_slice(b),
            Extension::Ggep(g) => g.encode(out),
        }
    }
}

/// Splits an extension area at 0x1C separators. A GGEP block is read by its
/// own structure (its data may hold 0x1C); anything else runs to the next
/// separator. Never fails: what is not a urn, XML or GGEP is text.
pub fn parse_extensions(area: &[u8]) -> Vec<Extension> {
    ExtensionsRef::new(area).into_owned()
}

/// Writes extensions joined by 0x1C.
pub fn encode_extensions(items: &[Extension], out: &mut Vec<u8>) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(EXTENSION_SEPARATOR);
        }
        item.encode(out);
    }
}

/// Length of [`encode_extensions`]' output.
pub fn extensions_len(items: &[Extension]) -> usize {
    items.iter().map(Extension::encoded_len).sum::<usize>() + items.len().saturating_sub(1)
}

/// Reads the fixed-size fields of a payload. Every accessor checks its
/// bounds and reports `Truncated`, so callers never index peer input.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16_le(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// An IPv4 address in network order.
    pub(crate) fn ipv4(&mut self) -> Result<Ipv4Addr> {
        Ok(Ipv4Addr::from(self.array::<4>()?))
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn rest_peek(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.bytes.get(self.pos..).unwrap_or(&[]);
        self.pos = self.bytes.len();
        out
    }
}

pub(crate) fn optional_ggep_len(ggep: &Option<Ggep>) -> usize {
    ggep.as_ref().map_or(0, Ggep::encoded_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
    }

    #[test]
    fn unknown_payload_kept_whole() {
        // A 0x44 (Mojito DHT) datagram from the ndpi-gtkg UDP trace.
        let bytes = hex("f7483102b05f56722c92b7b9fa24a83a440000260000000147544b470000289d0a8d06deffc8263c33897c2c9179fd84ab61045d2fe235700901010000");
        let d = Descriptor::parse(&bytes).unwrap();
        assert_eq!(d.ttl, 0);
        match &d.payload {
            Payload::Unknown {
                payload_type,
                bytes: body,
            } => {
                assert_eq!(*payload_type, 0x44);
                assert_eq!(body.len(), 38);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.to_bytes(), bytes);
    }

    #[test]
    fn payload_length_must_match() {
        let bytes = hex("8de431024929251cff297df9e926040300010005000000c382514b40");
        assert!(Descriptor::parse(&bytes).is_ok());
        assert_eq!(
            Descriptor::parse(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated)
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Descriptor::parse(&longer), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn extension_area_split() {
        let area = b"urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI\x1c<xml/>\x1c\xc3\x81A\x42\x1c\x00\x1cplain";
        let items = parse_extensions(area);
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(matches!(items[0], Extension::Urn(Urn::Sha1(_))));
        assert_eq!(items[1], Extension::Xml(b"<xml/>".to_vec()));
        let Extension::Ggep(g) = &items[2] else {
            panic!("{:?}", items[2])
        };
        assert_eq!(
            g.get(b"A").unwrap().data,
            [0x1c, 0x00],
            "0x1C inside GGEP data"
        );
        assert_eq!(items[3], Extension::Text(b"plain".to_vec()));
        let mut out = Vec::new();
        encode_extensions(&items, &mut out);
        assert_eq!(out, area);
        assert_eq!(extensions_len(&items), area.len());
    }

    #[test]
    fn extension_area_oddities_round_trip() {
        for area in [
            &b""[..],
            b"\x1c",
            b"\x1c\x1c",
            b"abc\x1c",
            b"\xc3",
            b"\xc3\x81A\x40junk",
            b"\xc3\x81A\x40\x1c",
        ] {
            let items = parse_extensions(area);
            let mut out = Vec::new();
            encode_extensions(&items, &mut out);
            assert_eq!(out, area, "{items:?}");
        }
    }
}
