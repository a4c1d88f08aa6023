//! Query (0x80): the 2-byte speed/flags field, the search text ending in
//! NUL, then optional extensions separated by 0x1C (HUGE urns, XML, GGEP
//! last). Some servents add a stray NUL after the extensions; it is
//! accepted and kept so the query re-encodes byte for byte.

use crate::error::Result;
use crate::ggep::Ggep;

use super::view::QueryRef;
use super::{encode_extensions, extensions_len, Extension};

/// The first two bytes of a Query, in both of their meanings
/// (PROTOCOL-NOTES §1): when bit 7 of the first byte is set they are a
/// flags word read big-endian (0.6); otherwise a little-endian minimum
/// speed (0.4). The raw bytes are kept, so every value re-encodes exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpeedField(pub [u8; 2]);

impl SpeedField {
    /// Flags in use (always set when the field is a flags word).
    pub const FLAGS_IN_USE: u16 = 0x8000;
    /// The sender is firewalled: only non-firewalled hosts should answer.
    pub const FIREWALLED: u16 = 0x4000;
    /// The sender wants XML metadata in hits.
    pub const WANTS_XML: u16 = 0x2000;

    /// A 0.6 flags word; `FLAGS_IN_USE` is always added. Hazel sends
    /// `80 00` or `C0 00` — never `00 00`, which gtk-gnutella drops as ancient.
    pub fn flags(flags: u16) -> SpeedField {
        SpeedField((flags | Self::FLAGS_IN_USE).to_be_bytes())
    }

    /// A 0.4 minimum speed. `None` when the low byte has bit 7 set: such a
    /// value would be read back as a flags word.
    pub fn min_speed(speed: u16) -> Option<SpeedField> {
        let bytes = speed.to_le_bytes();
        (bytes[0] & 0x80 == 0).then_some(SpeedField(bytes))
    }

    pub fn is_flags(&self) -> bool {
        self.0[0] & 0x80 != 0
    }

    /// The flags word, when the field is one.
    pub fn flags_word(&self) -> Option<u16> {
        self.is_flags().then(|| u16::from_be_bytes(self.0))
    }

    /// The 0.4 minimum speed, when the field is one.
    pub fn min_speed_value(&self) -> Option<u16> {
        (!self.is_flags()).then(|| u16::from_le_bytes(self.0))
    }

    pub fn firewalled(&self) -> bool {
        self.flags_word().is_some_and(|f| f & Self::FIREWALLED != 0)
    }

    pub fn wants_xml(&self) -> bool {
        self.flags_word().is_some_and(|f| f & Self::WANTS_XML != 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub speed: SpeedField,
    /// The search text without its NUL (bytes: peers send any encoding).
    pub search: Vec<u8>,
    /// Extensions after the NUL, in wire order.
    pub extensions: Vec<Extension>,
    /// A NUL followed the extensions on the wire.
    pub stray_nul: bool,
}

impl Query {
    /// A plain query: the given field and search text, no extensions.
    pub fn new(speed: SpeedField, search: impl Into<Vec<u8>>) -> Query {
        Query {
            speed,
            search: search.into(),
            extensions: Vec::new(),
            stray_nul: false,
        }
    }

    pub fn parse(payload: &[u8]) -> Result<Query> {
        QueryRef::parse(payload).map(QueryRef::into_owned)
    }

    /// The GGEP block among the extensions, if any.
    pub fn ggep(&self) -> Option<&Ggep> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Ggep(g) => Some(g),
            _ => None,
        })
    }

    pub fn encoded_len(&self) -> usize {
        2 + self.search.len() + 1 + extensions_len(&self.extensions) + self.stray_nul as usize
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.speed.0);
        out.extend_from_slice(&self.search);
        out.push(0);
        encode_extensions(&self.extensions, out);
        if self.stray_nul {
            out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;
    use crate::huge::Urn;

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
    }

    fn round_trip(body: &[u8]) -> Query {
        let q = Query::parse(body).unwrap();
        let mut out = Vec::new();
        q.encode(&mut out);
        assert_eq!(out, body);
        assert_eq!(q.encoded_len(), body.len());
        q
    }

    #[test]
    fn guess_query_from_trace() {
        // UDP trace: `f9 00` + "pinkfloyd" + GGEP QK/SCP/Z/PR. Wireshark calls
        // the field "min speed 249"; it is a 0.6 flags word 0xF900 (bit 7 of
        // the first byte is set): flags in use, firewalled, XML, and more.
        let body = hex("f90070696e6b666c6f796400c302514b445acaf69d0353435040015a4082505240");
        let q = round_trip(&body);
        assert!(q.speed.is_flags());
        assert_eq!(q.speed.flags_word(), Some(0xF900));
        assert_eq!(q.speed.min_speed_value(), None);
        assert!(q.speed.firewalled() && q.speed.wants_xml());
        assert_eq!(q.search, b"pinkfloyd");
        let ids: Vec<String> = q
            .ggep()
            .unwrap()
            .extensions
            .iter()
            .map(|e| e.id.to_string())
            .collect();
        assert_eq!(ids, ["QK", "SCP", "Z", "PR"]);
        assert!(!q.stray_nul);
    }

    #[test]
    fn xml_then_ggep_from_trace() {
        // Inflated stream: "periscope" NUL, XML, 0x1C, GGEP MA/SO. Wireshark: min speed 165 (a5 00).
        let search_field = hex("7065726973636f7065003c766964656f733e3c766964656f207469746c653d227065726973636f7065222f3e3c2f766964656f733e1cc3014d410882534f40");
        let mut body = vec![0xa5, 0x00];
        body.extend_from_slice(&search_field);
        let q = round_trip(&body);
        assert_eq!(q.speed.flags_word(), Some(0xA500));
        assert_eq!(q.extensions.len(), 2);
        assert!(matches!(&q.extensions[0], Extension::Xml(x) if x.starts_with(b"<videos>")));
        assert!(matches!(&q.extensions[1], Extension::Ggep(_)));
    }

    #[test]
    fn old_min_speed_and_urn_and_stray_nul() {
        let q = round_trip(b"\x64\x00madonna\x00");
        assert_eq!(q.speed.min_speed_value(), Some(100));
        assert!(!q.speed.firewalled());
        assert!(q.extensions.is_empty() && !q.stray_nul);

        let q = round_trip(b"\x80\x00\\\x00urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI\x00");
        assert!(q.stray_nul);
        assert!(matches!(q.extensions[..], [Extension::Urn(Urn::Sha1(_))]));

        let q = round_trip(b"\x80\x00abc\x00\x00");
        assert!(q.stray_nul && q.extensions.is_empty());

        // A GGEP block whose last data byte is 0 is not a stray NUL.
        let q = round_trip(b"\x80\x00abc\x00\xc3\x81A\x41\x00");
        assert!(!q.stray_nul);
        // ... but a NUL after a complete block is.
        let q = round_trip(b"\x80\x00abc\x00\xc3\x81A\x41\x00\x00");
        assert!(q.stray_nul);
        assert!(matches!(q.extensions[..], [Extension::Ggep(_)]));
    }

    #[test]
    fn speed_field_constructors() {
        assert_eq!(SpeedField::flags(0).0, [0x80, 0x00]);
        assert_eq!(SpeedField::flags(SpeedField::FIREWALLED).0, [0xC0, 0x00]);
        assert_eq!(SpeedField::min_speed(0x0100).unwrap().0, [0x00, 0x01]);
        assert_eq!(SpeedField::min_speed(0x00F9), None);
    }

    #[test]
    fn malformed_queries() {
        assert_eq!(Query::parse(b"\x80"), Err(DecodeError::Truncated));
        assert!(Query::parse(b"\x80\x00no nul").is_err());
    }
}
