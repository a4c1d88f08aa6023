//! Vendor messages (payload type 0x31): a 4-byte vendor code, a selector
//! and a version (both little-endian u16), then the message's own bytes.
//! Sent with TTL 1 and hops 0, never forwarded.
//!
//! The ones Hazel speaks (layouts as gtk-gnutella and LimeWire send them,
//! checked against the captured links in `shared/traces`):
//! - *Messages Supported* (`\0\0\0\0`/0 v0): a u16 count, then per message
//!   its vendor code, selector and version (8 bytes each).
//! - *Push-Proxy Request* (`LIME`/21 v1 or v2): no data; the descriptor id
//!   is the requesting leaf's servent id.
//! - *Push-Proxy Acknowledgement* (`LIME`/22): v2 carries the proxy's IPv4
//!   address (network order) and port (little-endian); v1 only the port
//!   (the address is the connection's).
//!
//! Every other vendor message is kept as [`VendorMessage`] and ignored by the
//! servent. Decoding is total: any bytes give a value or a typed error.

use std::net::Ipv4Addr;

use crate::error::{DecodeError, Result};

/// Payload type of a vendor message.
pub const VENDOR_TYPE: u8 = 0x31;
/// Bytes before a vendor message's own data.
pub const VENDOR_HEADER_LEN: usize = 8;
/// Most entries read from one Messages Supported.
pub const MAX_SUPPORTED: usize = 512;

/// A vendor code, selector and version: what a vendor message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VendorKind {
    pub vendor: [u8; 4],
    pub selector: u16,
    pub version: u16,
}

impl VendorKind {
    pub const fn new(vendor: &[u8; 4], selector: u16, version: u16) -> VendorKind {
        VendorKind {
            vendor: *vendor,
            selector,
            version,
        }
    }

    /// Same vendor and selector (any version).
    pub fn same_message(&self, other: &VendorKind) -> bool {
        self.vendor == other.vendor && self.selector == other.selector
    }
}

/// Messages Supported.
pub const MESSAGES_SUPPORTED: VendorKind = VendorKind::new(b"\0\0\0\0", 0, 0);
/// Push-Proxy Request, as LimeWire and gtk-gnutella send it (version 1).
pub const PUSH_PROXY_REQUEST: VendorKind = VendorKind::new(b"LIME", 21, 1);
/// Push-Proxy Acknowledgement, version 2 (with the proxy's address).
pub const PUSH_PROXY_ACK: VendorKind = VendorKind::new(b"LIME", 22, 2);

/// A vendor message, borrowed from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorMessage<'a> {
    pub kind: VendorKind,
    pub data: &'a [u8],
}

impl<'a> VendorMessage<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<VendorMessage<'a>> {
        let head = payload
            .get(..VENDOR_HEADER_LEN)
            .ok_or(DecodeError::Truncated)?;
        let mut vendor = [0u8; 4];
        vendor.copy_from_slice(&head[..4]);
        Ok(VendorMessage {
            kind: VendorKind {
                vendor,
                selector: u16::from_le_bytes([head[4], head[5]]),
                version: u16::from_le_bytes([head[6], head[7]]),
            },
            data: &payload[VENDOR_HEADER_LEN..],
        })
    }

    /// Appends a vendor message's payload.
    pub fn encode(kind: VendorKind, data: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&kind.vendor);
        out.extend_from_slice(&kind.selector.to_le_bytes());
        out.extend_from_slice(&kind.version.to_le_bytes());
        out.extend_from_slice(data);
    }
}

/// A Messages Supported list: the data of [`MESSAGES_SUPPORTED`].
pub fn encode_supported(kinds: &[VendorKind]) -> Vec<u8> {
    let count = kinds.len().min(MAX_SUPPORTED);
    let mut data = Vec::with_capacity(2 + 8 * count);
    data.extend_from_slice(&(count as u16).to_le_bytes());
    for k in &kinds[..count] {
        data.extend_from_slice(&k.vendor);
        data.extend_from_slice(&k.selector.to_le_bytes());
        data.extend_from_slice(&k.version.to_le_bytes());
    }
    data
}

/// Reads a Messages Supported list (at most [`MAX_SUPPORTED`] entries;
/// bytes after the counted entries are ignored).
pub fn parse_supported(data: &[u8]) -> Result<Vec<VendorKind>> {
    let count = data
        .get(..2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
        .ok_or(DecodeError::Truncated)?;
    let entries = data.get(2..).unwrap_or_default();
    if entries.len() < count.saturating_mul(8) {
        return Err(DecodeError::Truncated);
    }
    Ok(entries
        .chunks_exact(8)
        .take(count.min(MAX_SUPPORTED))
        .map(|e| VendorKind {
            vendor: [e[0], e[1], e[2], e[3]],
            selector: u16::from_le_bytes([e[4], e[5]]),
            version: u16::from_le_bytes([e[6], e[7]]),
        })
        .collect())
}

/// The data of a Push-Proxy Acknowledgement v2.
pub fn encode_proxy_ack(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut data = Vec::with_capacity(6);
    data.extend_from_slice(&ip.octets());
    data.extend_from_slice(&port.to_le_bytes());
    data
}

/// Reads a Push-Proxy Acknowledgement: the proxy's address (`None` in a
/// version 1, which names only the port) and port.
pub fn parse_proxy_ack(version: u16, data: &[u8]) -> Result<(Option<Ipv4Addr>, u16)> {
    if version >= 2 {
        let d = data.get(..6).ok_or(DecodeError::Truncated)?;
        Ok((
            Some(Ipv4Addr::new(d[0], d[1], d[2], d[3])),
            u16::from_le_bytes([d[4], d[5]]),
        ))
    } else {
        let d = data.get(..2).ok_or(DecodeError::Truncated)?;
        Ok((None, u16::from_le_bytes([d[0], d[1]])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured_vendor_payloads() -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for file in [
            "ndpi-gtkg-0.6-2022.expected.jsonl",
            "ndpi-gtkg-0.6-2022.inflated.expected.jsonl",
        ] {
            let text = String::from_utf8(crate::traces::read(file)).expect("utf-8");
            for line in text.lines() {
                let record: serde_json::Value = serde_json::from_str(line).expect("json");
                if record["type"] == 0x31 {
                    let raw = data_encoding::HEXLOWER
                        .decode(record["raw_hex"].as_str().expect("hex").as_bytes())
                        .expect("hex");
                    let sender = record["src"].as_str().unwrap_or("").to_string();
                    out.push((sender, raw[23..].to_vec()));
                }
            }
        }
        out
    }

    #[test]
    fn every_captured_vendor_message_decodes_and_the_known_ones_read_right() {
        let captured = captured_vendor_payloads();
        assert_eq!(
            captured.len(),
            304,
            "11 over UDP, 293 on the deflated links"
        );
        let (mut supported, mut requests, mut acks) = (0, 0, 0);
        for (sender, payload) in &captured {
            let m = VendorMessage::parse(payload).expect("a vendor message");
            let mut again = Vec::new();
            VendorMessage::encode(m.kind, m.data, &mut again);
            assert_eq!(&again, payload);
            if m.kind == MESSAGES_SUPPORTED {
                let kinds = parse_supported(m.data).expect("a list");
                assert!(kinds.contains(&PUSH_PROXY_REQUEST), "{kinds:?}");
                assert_eq!(encode_supported(&kinds), m.data);
                supported += 1;
            } else if m.kind.same_message(&PUSH_PROXY_REQUEST) {
                assert!(m.data.is_empty());
                requests += 1;
            } else if m.kind.same_message(&PUSH_PROXY_ACK) {
                let (ip, port) = parse_proxy_ack(m.kind.version, m.data).expect("an ack");
                // The ultrapeer names the address we reached it at.
                let ip = ip.expect("v2 has the address");
                assert_eq!(format!("{ip}:{port}"), *sender);
                assert_eq!(encode_proxy_ack(ip, port), m.data);
                acks += 1;
            }
        }
        assert_eq!((supported, requests, acks), (6, 3, 3));
    }

    #[test]
    fn short_and_lying_payloads_are_errors_not_panics() {
        assert_eq!(
            VendorMessage::parse(b"LIME\x15\0\x01"),
            Err(DecodeError::Truncated)
        );
        assert_eq!(parse_supported(&[]), Err(DecodeError::Truncated));
        assert_eq!(
            parse_supported(&[5, 0, 1, 2, 3]),
            Err(DecodeError::Truncated)
        );
        let huge = [0xff, 0xff];
        assert_eq!(parse_supported(&huge), Err(DecodeError::Truncated));
        assert_eq!(parse_proxy_ack(2, &[1, 2, 3]), Err(DecodeError::Truncated));
        assert_eq!(parse_proxy_ack(1, &[0x0a, 0xd0]), Ok((None, 53258)));
        // Extra bytes after the counted entries are skipped.
        let mut data = encode_supported(&[PUSH_PROXY_REQUEST]);
        data.extend_from_slice(b"more");
        assert_eq!(parse_supported(&data), Ok(vec![PUSH_PROXY_REQUEST]));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(m) = VendorMessage::parse(&bytes) {
                let _ = parse_supported(m.data);
                let _ = parse_proxy_ack(m.kind.version, m.data);
            }
        }
    }
}
