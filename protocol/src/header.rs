//! The 23-byte header in front of every Gnutella descriptor.
//!
//! Layout: descriptor id (16) · payload type (1) · TTL (1) · hops (1) ·
//! payload length (u32, little-endian). The payload length is the only way
//! to find the next descriptor on a stream, so it is checked against
//! [`MAX_PAYLOAD_LEN`] here, before any caller can size a buffer from it.

use std::fmt;

use crate::error::{DecodeError, Result};

/// Bytes in a descriptor header.
pub const HEADER_LEN: usize = 23;

/// Largest payload Hazel accepts. Anything larger means the stream is out of
/// sync or hostile (PROTOCOL-NOTES §1), and the connection is closed.
pub const MAX_PAYLOAD_LEN: usize = 65536;

/// Byte offsets inside the header, named once.
mod field {
    use std::ops::Range;
    pub const ID: Range<usize> = 0..16;
    pub const PAYLOAD_TYPE: usize = 16;
    pub const TTL: usize = 17;
    pub const HOPS: usize = 18;
    pub const PAYLOAD_LEN: Range<usize> = 19..23;
}

/// The 16-byte descriptor id (often called the GUID / message id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DescriptorId(pub [u8; 16]);

impl DescriptorId {
    /// A "modern" id as gtk-gnutella and LimeWire generate them: random bytes
    /// with byte 8 set to 0xFF and byte 15 set to 0x00. This crate has no RNG,
    /// so the caller passes the randomness.
    pub fn modern(random: [u8; 16]) -> DescriptorId {
        let mut bytes = random;
        bytes[8] = 0xFF;
        bytes[15] = 0x00;
        DescriptorId(bytes)
    }

    /// Whether the id carries the modern marks (byte 8 = 0xFF, byte 15 = 0x00).
    pub fn is_modern(&self) -> bool {
        self.0[8] == 0xFF && self.0[15] == 0x00
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for DescriptorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DescriptorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DescriptorId({self})")
    }
}

/// The payload type byte. Unknown codes are kept, never rejected: the
/// stream stays in sync and the router decides what to do with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    Ping,
    Pong,
    Bye,
    Push,
    Query,
    QueryHit,
    /// Any other code (QRP 0x30, vendor 0x31/0x32, HSEP 0xCD, Mojito 0x44 …).
    Other(u8),
}

impl PayloadType {
    pub const PING: u8 = 0x00;
    pub const PONG: u8 = 0x01;
    pub const BYE: u8 = 0x02;
    pub const PUSH: u8 = 0x40;
    pub const QUERY: u8 = 0x80;
    pub const QUERY_HIT: u8 = 0x81;

    pub fn from_u8(code: u8) -> PayloadType {
        match code {
            Self::PING => PayloadType::Ping,
            Self::PONG => PayloadType::Pong,
            Self::BYE => PayloadType::Bye,
            Self::PUSH => PayloadType::Push,
            Self::QUERY => PayloadType::Query,
            Self::QUERY_HIT => PayloadType::QueryHit,
            other => PayloadType::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            PayloadType::Ping => Self::PING,
            PayloadType::Pong => Self::PONG,
            PayloadType::Bye => Self::BYE,
            PayloadType::Push => Self::PUSH,
            PayloadType::Query => Self::QUERY,
            PayloadType::QueryHit => Self::QUERY_HIT,
            PayloadType::Other(code) => code,
        }
    }

    /// Whether Hazel decodes this type (the others are kept whole).
    pub fn is_known(self) -> bool {
        !matches!(self, PayloadType::Other(_))
    }
}

impl From<u8> for PayloadType {
    fn from(code: u8) -> Self {
        PayloadType::from_u8(code)
    }
}

/// A decoded descriptor header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub id: DescriptorId,
    pub payload_type: PayloadType,
    pub ttl: u8,
    pub hops: u8,
    /// Checked to be at most [`MAX_PAYLOAD_LEN`] by [`Header::parse`].
    pub payload_len: u32,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes` (more may follow).
    ///
    /// Fails with `Truncated` when fewer than 23 bytes are given and with
    /// `TooLong` when the declared payload length exceeds [`MAX_PAYLOAD_LEN`].
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        let head: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        Header::parse_array(head)
    }

    /// Parses an exact 23-byte array.
    pub fn parse_array(head: &[u8; HEADER_LEN]) -> Result<Header> {
        let mut id = [0u8; 16];
        id.copy_from_slice(&head[field::ID]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[field::PAYLOAD_LEN]);
        let payload_len = u32::from_le_bytes(len);
        if payload_len as usize > MAX_PAYLOAD_LEN {
            return Err(DecodeError::TooLong {
                len: payload_len as usize,
                max: MAX_PAYLOAD_LEN,
            });
        }
        Ok(Header {
            id: DescriptorId(id),
            payload_type: PayloadType::from_u8(head[field::PAYLOAD_TYPE]),
            ttl: head[field::TTL],
            hops: head[field::HOPS],
            payload_len,
        })
    }

    /// The 23 bytes of this header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[field::ID].copy_from_slice(&self.id.0);
        out[field::PAYLOAD_TYPE] = self.payload_type.to_u8();
        out[field::TTL] = self.ttl;
        out[field::HOPS] = self.hops;
        out[field::PAYLOAD_LEN].copy_from_slice(&self.payload_len.to_le_bytes());
        out
    }

    /// Appends the 23 bytes of this header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
    }
}

impl Header {
    /// A whole descriptor: this header's id, type, TTL and hops, and `payload`
    /// (the length field is set from it). For descriptors built in one go.
    pub fn frame(
        id: DescriptorId,
        payload_type: impl Into<PayloadType>,
        ttl: u8,
        hops: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let header = Header {
            id,
            payload_type: payload_type.into(),
            ttl,
            hops,
            payload_len: payload.len() as u32,
        };
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        header.encode(&mut out);
        out.extend_from_slice(payload);
        out
    }
}

/// A checked view of the header at the start of a buffer, read (and, for
/// `&mut` buffers, rewritten) in place: what forwarding needs without
/// decoding the descriptor. Once [`HeaderView::new_checked`] passed, no
/// accessor can panic (the smoltcp contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderView<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HeaderView<T> {
    /// Checks that `buffer` holds a whole header whose declared payload length is at most
    /// [`MAX_PAYLOAD_LEN`] (`Truncated` / `TooLong` otherwise). The payload may follow or not.
    pub fn new_checked(buffer: T) -> Result<HeaderView<T>> {
        let bytes = buffer.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        let len = u32::from_le_bytes([bytes[19], bytes[20], bytes[21], bytes[22]]) as usize;
        if len > MAX_PAYLOAD_LEN {
            return Err(DecodeError::TooLong {
                len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        Ok(HeaderView { buffer })
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn id(&self) -> &[u8; 16] {
        // Checked length: the slice is 16 bytes.
        self.bytes()[field::ID].try_into().unwrap_or(&[0; 16])
    }

    pub fn descriptor_id(&self) -> DescriptorId {
        DescriptorId(*self.id())
    }

    /// The payload type code (unknown codes included).
    pub fn payload_type(&self) -> u8 {
        self.bytes()[field::PAYLOAD_TYPE]
    }

    pub fn ttl(&self) -> u8 {
        self.bytes()[field::TTL]
    }

    pub fn hops(&self) -> u8 {
        self.bytes()[field::HOPS]
    }

    /// The declared payload length (at most [`MAX_PAYLOAD_LEN`]).
    pub fn payload_len(&self) -> usize {
        let b = &self.bytes()[field::PAYLOAD_LEN];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// Header plus declared payload.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// The payload bytes present in the buffer (all of them for a whole frame).
    pub fn payload(&self) -> &[u8] {
        let end = self.frame_len().min(self.bytes().len());
        &self.bytes()[HEADER_LEN..end]
    }

    /// The decoded header.
    pub fn header(&self) -> Header {
        Header {
            id: self.descriptor_id(),
            payload_type: PayloadType::from_u8(self.payload_type()),
            ttl: self.ttl(),
            hops: self.hops(),
            payload_len: self.payload_len() as u32,
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HeaderView<T> {
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub fn set_hops(&mut self, hops: u8) {
        self.buffer.as_mut()[field::HOPS] = hops;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Ping from the ndpi-gtkg UDP trace (frame 758): TTL 1, hops 0, 5-byte GGEP payload.
    const PING_HEAD: [u8; 23] = [
        0x8d, 0xe4, 0x31, 0x02, 0x49, 0x29, 0x25, 0x1c, 0xff, 0x29, 0x7d, 0xf9, 0xe9, 0x26, 0x04,
        0x03, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn parses_trace_header() {
        let h = Header::parse(&PING_HEAD).unwrap();
        assert_eq!(h.id.to_string(), "8de431024929251cff297df9e9260403");
        assert_eq!(h.payload_type, PayloadType::Ping);
        assert_eq!((h.ttl, h.hops, h.payload_len), (1, 0, 5));
        assert_eq!(h.to_bytes(), PING_HEAD);
    }

    #[test]
    fn short_input_is_truncated() {
        assert_eq!(Header::parse(&PING_HEAD[..22]), Err(DecodeError::Truncated));
        assert_eq!(Header::parse(&[]), Err(DecodeError::Truncated));
    }

    #[test]
    fn length_over_64k_is_rejected() {
        let mut head = PING_HEAD;
        head[19..23].copy_from_slice(&65537u32.to_le_bytes());
        assert_eq!(
            Header::parse(&head),
            Err(DecodeError::TooLong {
                len: 65537,
                max: MAX_PAYLOAD_LEN
            })
        );
        head[19..23].copy_from_slice(&65536u32.to_le_bytes());
        assert_eq!(Header::parse(&head).unwrap().payload_len, 65536);
        head[19..23].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Header::parse(&head).is_err());
    }

    #[test]
    fn unknown_types_are_kept() {
        let mut head = PING_HEAD;
        head[16] = 0xCD;
        let h = Header::parse(&head).unwrap();
        assert_eq!(h.payload_type, PayloadType::Other(0xCD));
        assert!(!h.payload_type.is_known());
        assert_eq!(h.to_bytes(), head);
    }

    #[test]
    fn payload_type_codes_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(PayloadType::from_u8(code).to_u8(), code);
        }
        assert_eq!(PayloadType::from_u8(0x81), PayloadType::QueryHit);
    }

    #[test]
    fn header_view_reads_and_rewrites_in_place() {
        let mut frame = PING_HEAD.to_vec();
        frame.extend_from_slice(&[0xC3, 0x81, 0x41, 0x40, 0x00]);
        let view = HeaderView::new_checked(&frame[..]).unwrap();
        assert_eq!(view.header(), Header::parse(&PING_HEAD).unwrap());
        assert_eq!((view.ttl(), view.hops(), view.payload_len()), (1, 0, 5));
        assert_eq!(view.payload_type(), PayloadType::PING);
        assert_eq!(view.payload(), &frame[23..]);
        assert_eq!(view.frame_len(), frame.len());
        let mut view = HeaderView::new_checked(&mut frame[..]).unwrap();
        view.set_ttl(6);
        view.set_hops(2);
        assert_eq!((frame[17], frame[18]), (6, 2));
        // A header whose payload has not arrived yet: an empty payload, no panic.
        let view = HeaderView::new_checked(&PING_HEAD[..]).unwrap();
        assert_eq!(view.payload(), &[] as &[u8]);
    }

    #[test]
    fn header_view_checks_length_once() {
        assert_eq!(
            HeaderView::new_checked(&PING_HEAD[..22]),
            Err(DecodeError::Truncated)
        );
        let mut head = PING_HEAD;
        head[19..23].copy_from_slice(&70_000u32.to_le_bytes());
        assert!(matches!(
            HeaderView::new_checked(&head[..]),
            Err(DecodeError::TooLong { len: 70_000, .. })
        ));
    }

    #[test]
    fn a_frame_is_its_header_then_its_payload() {
        let frame = Header::frame(DescriptorId([7; 16]), PayloadType::QUERY, 3, 1, b"ab");
        assert_eq!(frame.len(), 25);
        let h = Header::parse(&frame).unwrap();
        assert_eq!(
            (h.payload_type, h.ttl, h.hops, h.payload_len),
            (PayloadType::Query, 3, 1, 2)
        );
        assert_eq!(&frame[23..], b"ab");
    }

    #[test]
    fn modern_id_marks() {
        let id = DescriptorId::modern([0xAB; 16]);
        assert_eq!(id.0[8], 0xFF);
        assert_eq!(id.0[15], 0x00);
        assert_eq!(id.0[0], 0xAB);
        assert!(id.is_modern());
        assert!(!DescriptorId([0; 16]).is_modern());
    }
}
