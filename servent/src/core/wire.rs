//! Raw views of descriptor bytes for the routing hot path.
//!
//! The router reads five header fields and, for a few payload types, one or
//! two fixed-offset payload fields; decoding the whole descriptor for that
//! would cost more than routing it. Offsets are named once here. Full decoding
//! (search results, queries handed to the library) uses `hazel_protocol`.

// Sizes and codes are the protocol crate's, named once there.
pub use hazel_protocol::descriptor::{
    PONG_MIN_LEN, PUSH_MIN_LEN, QUERY_FORWARD_MAX_LEN, QUERY_HIT_FORWARD_MAX_LEN,
    QUERY_MAX_LEN as QUERY_DROP_LEN,
};
use hazel_protocol::descriptor::{QUERY_HIT_FIXED_LEN, SERVENT_ID_LEN};
use hazel_protocol::header::PayloadType;
pub use hazel_protocol::header::{HEADER_LEN, MAX_PAYLOAD_LEN};

/// Hit count, port, IP, speed, then at least the servent id.
pub const QUERY_HIT_MIN_LEN: usize = QUERY_HIT_FIXED_LEN + SERVENT_ID_LEN;
/// Anything with TTL + hops above this is dropped on arrival.
pub const MAX_TTL_PLUS_HOPS: u16 = 15;

pub const PING: u8 = PayloadType::PING;
pub const PONG: u8 = PayloadType::PONG;
pub const BYE: u8 = PayloadType::BYE;
pub const PUSH: u8 = PayloadType::PUSH;
pub const QUERY: u8 = PayloadType::QUERY;
pub const QUERY_HIT: u8 = PayloadType::QUERY_HIT;

mod field {
    use std::ops::Range;
    pub const ID: Range<usize> = 0..16;
    pub const TYPE: usize = 16;
    pub const TTL: usize = 17;
    pub const HOPS: usize = 18;
    pub const LEN: Range<usize> = 19..23;
}

/// The header fields of one descriptor, read from its first 23 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    pub id: [u8; 16],
    pub payload_type: u8,
    pub ttl: u8,
    pub hops: u8,
    pub payload_len: u32,
}

impl RawHeader {
    /// Reads a header; `None` when fewer than 23 bytes are given.
    pub fn read(bytes: &[u8]) -> Option<RawHeader> {
        let head = bytes.get(..HEADER_LEN)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&head[field::ID]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[field::LEN]);
        Some(RawHeader {
            id,
            payload_type: head[field::TYPE],
            ttl: head[field::TTL],
            hops: head[field::HOPS],
            payload_len: u32::from_le_bytes(len),
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id);
        out.push(self.payload_type);
        out.push(self.ttl);
        out.push(self.hops);
        out.extend_from_slice(&self.payload_len.to_le_bytes());
    }
}

/// A whole descriptor with new TTL and hops (the payload is copied as is),
/// shared: one allocation however many neighbours it is queued for.
pub fn with_ttl_hops(frame: &[u8], ttl: u8, hops: u8) -> std::sync::Arc<[u8]> {
    let mut out: std::sync::Arc<[u8]> = std::sync::Arc::from(frame);
    if let Some(bytes) = std::sync::Arc::get_mut(&mut out) {
        if let Some(t) = bytes.get_mut(field::TTL) {
            *t = ttl;
        }
        if let Some(h) = bytes.get_mut(field::HOPS) {
            *h = hops;
        }
    }
    out
}

/// Builds a whole descriptor from its parts.
pub fn descriptor(id: [u8; 16], payload_type: u8, ttl: u8, hops: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    RawHeader {
        id,
        payload_type,
        ttl,
        hops,
        payload_len: payload.len() as u32,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

/// Pong payload fields (the 14 fixed bytes; GGEP after them is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PongFields {
    pub port: u16,
    pub ip: [u8; 4],
    pub files: u32,
    pub kbytes: u32,
}

impl PongFields {
    pub fn read(payload: &[u8]) -> Option<PongFields> {
        let p = payload.get(..PONG_MIN_LEN)?;
        Some(PongFields {
            port: u16::from_le_bytes([p[0], p[1]]),
            ip: [p[2], p[3], p[4], p[5]],
            files: u32::from_le_bytes([p[6], p[7], p[8], p[9]]),
            kbytes: u32::from_le_bytes([p[10], p[11], p[12], p[13]]),
        })
    }

    pub fn payload(&self) -> [u8; PONG_MIN_LEN] {
        let mut p = [0u8; PONG_MIN_LEN];
        p[0..2].copy_from_slice(&self.port.to_le_bytes());
        p[2..6].copy_from_slice(&self.ip);
        p[6..10].copy_from_slice(&self.files.to_le_bytes());
        p[10..14].copy_from_slice(&self.kbytes.to_le_bytes());
        p
    }
}

/// Push payload fields (26 fixed bytes; GGEP after them is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushFields {
    pub servent_id: [u8; 16],
    pub file_index: u32,
    pub ip: [u8; 4],
    pub port: u16,
}

impl PushFields {
    pub fn read(payload: &[u8]) -> Option<PushFields> {
        let p = payload.get(..PUSH_MIN_LEN)?;
        let mut servent_id = [0u8; 16];
        servent_id.copy_from_slice(&p[..16]);
        Some(PushFields {
            servent_id,
            file_index: u32::from_le_bytes([p[16], p[17], p[18], p[19]]),
            ip: [p[20], p[21], p[22], p[23]],
            port: u16::from_le_bytes([p[24], p[25]]),
        })
    }

    pub fn payload(&self) -> [u8; PUSH_MIN_LEN] {
        let mut p = [0u8; PUSH_MIN_LEN];
        p[..16].copy_from_slice(&self.servent_id);
        p[16..20].copy_from_slice(&self.file_index.to_le_bytes());
        p[20..24].copy_from_slice(&self.ip);
        p[24..26].copy_from_slice(&self.port.to_le_bytes());
        p
    }
}

/// The servent id of a QueryHit: its last 16 bytes.
pub fn query_hit_servent_id(payload: &[u8]) -> Option<[u8; 16]> {
    if payload.len() < QUERY_HIT_MIN_LEN {
        return None;
    }
    let tail = payload.get(payload.len() - 16..)?;
    let mut id = [0u8; 16];
    id.copy_from_slice(tail);
    Some(id)
}

/// A Query payload: the flags word (`80 00`, or `C0 00` when firewalled),
/// the search text and its NUL.
pub fn query_payload(text: &str, firewalled: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(text.len() + 3);
    p.push(if firewalled { 0xC0 } else { 0x80 });
    p.push(0x00);
    p.extend_from_slice(text.as_bytes());
    p.push(0);
    p
}

/// A Bye payload: code (LE) and NUL-terminated text.
pub fn bye_payload(code: u16, text: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(text.len() + 3);
    p.extend_from_slice(&code.to_le_bytes());
    p.extend_from_slice(text.as_bytes());
    p.push(0);
    p
}

/// Reads a Bye payload's code and text (lossy; the text is only shown).
pub fn read_bye(payload: &[u8]) -> Option<(u16, String)> {
    let code = u16::from_le_bytes([*payload.first()?, *payload.get(1)?]);
    let text = payload.get(2..).unwrap_or_default();
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let text = text.get(..end).unwrap_or_default();
    Some((code, String::from_utf8_lossy(text).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_short_input() {
        let h = RawHeader {
            id: [7; 16],
            payload_type: QUERY,
            ttl: 3,
            hops: 2,
            payload_len: 0x0102_0304,
        };
        let mut v = Vec::new();
        h.write(&mut v);
        assert_eq!(v.len(), HEADER_LEN);
        assert_eq!(&v[19..23], &[4, 3, 2, 1], "length is little-endian");
        assert_eq!(RawHeader::read(&v), Some(h));
        assert_eq!(RawHeader::read(&v[..22]), None);
    }

    #[test]
    fn pong_ip_is_network_order_and_port_little_endian() {
        let p = PongFields {
            port: 6346,
            ip: [127, 0, 0, 1],
            files: 3,
            kbytes: 10,
        };
        let bytes = p.payload();
        assert_eq!(&bytes[..6], &[0xca, 0x18, 127, 0, 0, 1]);
        assert_eq!(PongFields::read(&bytes), Some(p));
        assert_eq!(PongFields::read(&bytes[..13]), None);
    }

    #[test]
    fn push_and_bye_fields() {
        let p = PushFields {
            servent_id: [9; 16],
            file_index: 5,
            ip: [10, 0, 0, 1],
            port: 80,
        };
        assert_eq!(PushFields::read(&p.payload()), Some(p));
        assert_eq!(PushFields::read(&[0; 25]), None);
        assert_eq!(
            read_bye(&bye_payload(200, "Shutting down")),
            Some((200, "Shutting down".to_string()))
        );
        assert_eq!(read_bye(&[1]), None);
    }

    #[test]
    fn query_flags_are_never_zero() {
        assert_eq!(&query_payload("a b", false)[..2], &[0x80, 0x00]);
        assert_eq!(&query_payload("a b", true)[..2], &[0xC0, 0x00]);
        assert_eq!(query_payload("ab", false).last(), Some(&0));
    }

    #[test]
    fn query_hit_servent_id_is_the_last_16_bytes() {
        let mut p = vec![0u8; 11];
        p.extend_from_slice(&[5; 16]);
        assert_eq!(query_hit_servent_id(&p), Some([5; 16]));
        assert_eq!(query_hit_servent_id(&p[1..]), None);
    }
}
