//! QueryHit (0x81): hit count, port, IP, speed, the results, an optional
//! trailer (QHD: vendor code, open data with flags, private data), and the
//! responding servent's id as the last 16 bytes.
//!
//! The trailer is found by counting: after the last result, everything up to
//! the final 16 bytes is trailer (PROTOCOL-NOTES §1).

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::ggep::{BlockSearch, Ggep, GGEP_MAGIC};
use crate::huge::Sha1Digest;

use super::view::QueryHitRef;
use super::{
    encode_extensions, extensions_len, Extension, ServentId, QUERY_HIT_FIXED_LEN, SERVENT_ID_LEN,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryHit {
    pub port: u16,
    pub ip: Ipv4Addr,
    /// Upload speed in kb/s, as the responder claims it.
    pub speed: u32,
    /// At most 255 (the count travels in one byte).
    pub results: Vec<HitResult>,
    pub trailer: Option<QhdTrailer>,
    pub servent_id: ServentId,
}

/// One file in a QueryHit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitResult {
    pub index: u32,
    pub size: u32,
    /// The file name without its NUL, as bytes (often UTF-8, not always).
    pub name: Vec<u8>,
    /// The extension area between the two NULs: HUGE urns, GGEP, text.
    pub extensions: Vec<Extension>,
}

/// The trailer between the results and the servent id ("QHD").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QhdTrailer {
    /// Four ASCII letters (`GTKG`, `RAZA`, `LIME`; Hazel uses `HZEL`).
    pub vendor: [u8; 4],
    /// The open data, kept raw (usually the 2 flag bytes; Shareaza adds 2
    /// more). [`QhdTrailer::flags`] reads it.
    pub open_data: Vec<u8>,
    /// Everything after the open data: GGEP when the GGEP flag is set,
    /// vendor-specific bytes otherwise.
    pub private_data: Vec<u8>,
}

/// The open-data flags. `None` = "not meaningful" (the sender did not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QhdFlags {
    /// The responder is firewalled: download through a Push.
    pub push: Option<bool>,
    pub busy: Option<bool>,
    pub have_uploaded: Option<bool>,
    /// The speed field is a measured upload speed.
    pub upload_speed: Option<bool>,
    /// The private data carries GGEP.
    pub ggep: Option<bool>,
}

mod qhd_bit {
    pub const PUSH: u8 = 0x01;
    pub const BUSY: u8 = 0x04;
    pub const HAVE_UPLOADED: u8 = 0x08;
    pub const UPLOAD_SPEED: u8 = 0x10;
    pub const GGEP: u8 = 0x20;
}

impl QhdFlags {
    /// Reads the first two bytes of the open data. For busy, uploaded,
    /// speed and GGEP the first byte says "meaningful" and the second holds
    /// the value; the push bit is the other way round.
    pub fn from_open_data(open: &[u8]) -> QhdFlags {
        let [first, second] = match open {
            [a, b, ..] => [*a, *b],
            _ => return QhdFlags::default(),
        };
        let normal = |bit: u8| (first & bit != 0).then_some(second & bit != 0);
        QhdFlags {
            push: (second & qhd_bit::PUSH != 0).then_some(first & qhd_bit::PUSH != 0),
            busy: normal(qhd_bit::BUSY),
            have_uploaded: normal(qhd_bit::HAVE_UPLOADED),
            upload_speed: normal(qhd_bit::UPLOAD_SPEED),
            ggep: normal(qhd_bit::GGEP),
        }
    }

    /// The two open-data bytes for these flags.
    pub fn to_bytes(&self) -> [u8; 2] {
        let mut first = 0u8;
        let mut second = 0u8;
        if let Some(v) = self.push {
            second |= qhd_bit::PUSH;
            if v {
                first |= qhd_bit::PUSH;
            }
        }
        for (flag, bit) in [
            (self.busy, qhd_bit::BUSY),
            (self.have_uploaded, qhd_bit::HAVE_UPLOADED),
            (self.upload_speed, qhd_bit::UPLOAD_SPEED),
            (self.ggep, qhd_bit::GGEP),
        ] {
            if let Some(v) = flag {
                first |= bit;
                if v {
                    second |= bit;
                }
            }
        }
        [first, second]
    }
}

impl QhdTrailer {
    /// A trailer with the two flag bytes as open data.
    pub fn new(vendor: [u8; 4], flags: QhdFlags, private_data: Vec<u8>) -> QhdTrailer {
        QhdTrailer {
            vendor,
            open_data: flags.to_bytes().to_vec(),
            private_data,
        }
    }

    pub fn flags(&self) -> QhdFlags {
        QhdFlags::from_open_data(&self.open_data)
    }

    /// The GGEP block of the private data: the first place from which a
    /// whole block parses (LimeWire and gtk-gnutella put it first; Shareaza
    /// puts a byte before it and `{deflate}` XML after it).
    pub fn ggep(&self) -> Option<Ggep> {
        private_ggep(&self.private_data)
    }

    /// The push proxies the responder names (GGEP `PUSH`), at most 8.
    pub fn push_proxies(&self) -> Vec<std::net::SocketAddrV4> {
        push_proxies_in(&self.private_data)
    }

    pub fn encoded_len(&self) -> usize {
        4 + 1 + self.open_data.len() + self.private_data.len()
    }

    /// Open data longer than 255 bytes cannot be expressed (a caller bug);
    /// its size byte is written modulo 256.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.vendor);
        out.push(self.open_data.len() as u8);
        out.extend_from_slice(&self.open_data);
        out.extend_from_slice(&self.private_data);
    }
}

/// The GGEP block of a trailer's private data: the first place from which a whole block parses
/// (LimeWire and gtk-gnutella put it first; Shareaza puts a byte before it and `{deflate}` XML
/// after it).
pub(crate) fn private_ggep(data: &[u8]) -> Option<Ggep> {
    // Remembers failed attempts: magic bytes inside extension data must not make each
    // attempt rewalk the same chain (quadratic on crafted private data).
    let mut search = BlockSearch::default();
    data.iter()
        .enumerate()
        .filter(|(_, &b)| b == GGEP_MAGIC)
        .find_map(|(at, _)| {
            search.block_at(data, at, |_| true)?;
            let rest = data.get(at..)?;
            Ggep::parse_prefix(rest).ok().map(|(g, _)| g)
        })
}

/// The push proxies of a trailer's private data (GGEP `PUSH`), at most 8.
pub(crate) fn push_proxies_in(data: &[u8]) -> Vec<std::net::SocketAddrV4> {
    private_ggep(data)
        .and_then(|g| g.get(b"PUSH").and_then(|e| e.value().ok()))
        .map(|v| crate::ggep::hosts::decode(&v).into_iter().take(8).collect())
        .unwrap_or_default()
}

impl HitResult {
    /// The SHA-1 of the first HUGE urn that names one.
    pub fn sha1(&self) -> Option<Sha1Digest> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Urn(u) => u.sha1(),
            _ => None,
        })
    }

    /// The first GGEP block among the extensions.
    pub fn ggep(&self) -> Option<&Ggep> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Ggep(g) => Some(g),
            _ => None,
        })
    }

    pub fn encoded_len(&self) -> usize {
        8 + self.name.len() + 1 + extensions_len(&self.extensions) + 1
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.name);
        out.push(0);
        encode_extensions(&self.extensions, out);
        out.push(0);
    }
}

impl QueryHit {
    pub fn parse(payload: &[u8]) -> Result<QueryHit> {
        QueryHitRef::parse(payload).map(QueryHitRef::into_owned)
    }

    pub fn encoded_len(&self) -> usize {
        QUERY_HIT_FIXED_LEN
            + self
                .results
                .iter()
                .map(HitResult::encoded_len)
                .sum::<usize>()
            + self.trailer.as_ref().map_or(0, QhdTrailer::encoded_len)
            + SERVENT_ID_LEN
    }

    /// More than 255 results cannot be expressed (a caller bug); the count
    /// byte is written modulo 256.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.results.len() as u8);
        out.extend_from_slice(&self.port.to_le_bytes());
        out.extend_from_slice(&self.ip.octets());
        out.extend_from_slice(&self.speed.to_le_bytes());
        for result in &self.results {
            result.encode(out);
        }
        if let Some(t) = &self.trailer {
            t.encode(out);
        }
        out.extend_from_slice(&self.servent_id.0);
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

    // A Shareaza (RAZA) hit from the inflated ndpi-gtkg stream 94, header stripped.
    const SHAREAZA_HIT: &str = "010c4a021f0ceb000100002e650000870400005370696465724d616e2e4e6f2e5761792e486f6d652e323032312e56322e783236342e3830304d422e4141432e484443414d2d48757368526970732e6d6b762e746f7272656e740075726e3a6269747072696e743a425a44435542525a594e495356464d51585a4a534d505a4d4f4f3243413358592e4f544c4a56374e574d4b50425541495a36374b414232575135554459594c3237493334335156591c75726e3a6564326b686173683a38323065303961383030323938303563373562646137306339343266326661381c75726e3a6d64353a33633034303232323261633661653066626434373663616231333761616162381cc382435444efa3bf610052415a41043c21b60000c3824248407b6465666c6174657d78da3dcedd0a82401040e15759e6015c233008b58b32caccfe28a4bbc9a676415dd959547afa20aafbc3c70967435d898e2c6bd34430f27c98c5a133d652e3580caca78dc9b1266eb1a453a9a8c6cc94e83eb972ae9d4ad9f7bdc70a2de10bbdd2d4923f1dcb9b765fca1bf80e7f58b45677e8e851e1338207564c207473a721021f844256111c9741b64a2745302e92f5f9b0b89ee7fb7499ecf2ed659c6e7629c83894bfd3f80d6a6945cd00e795275ae2eb0f4a8b3ec6ad550688d6";

    #[test]
    fn shareaza_hit_from_trace() {
        let body = hex(SHAREAZA_HIT);
        let hit = QueryHit::parse(&body).unwrap();
        assert_eq!(hit.port, 18956);
        assert_eq!(hit.ip, Ipv4Addr::new(2, 31, 12, 235));
        assert_eq!(hit.speed, 256);
        assert_eq!(hit.results.len(), 1);
        let r = &hit.results[0];
        assert_eq!((r.index, r.size), (25902, 1159));
        assert!(r.name.ends_with(b".mkv.torrent"));
        assert_eq!(r.extensions.len(), 4);
        assert!(matches!(
            r.extensions[0],
            Extension::Urn(Urn::Bitprint { .. })
        ));
        assert!(r.sha1().is_some());
        assert!(r.ggep().unwrap().get(b"CT").is_some());
        let t = hit.trailer.as_ref().unwrap();
        assert_eq!(&t.vendor, b"RAZA");
        assert_eq!(t.open_data, [0x3c, 0x21, 0xb6, 0x00]);
        let flags = t.flags();
        assert_eq!(flags.push, Some(false));
        assert_eq!(flags.ggep, Some(true));
        assert_eq!(flags.busy, Some(false));
        assert!(t.ggep().unwrap().get(b"BH").is_some());
        assert_eq!(
            hit.servent_id.to_string(),
            "e795275ae2eb0f4a8b3ec6ad550688d6"
        );
        let mut out = Vec::new();
        hit.encode(&mut out);
        assert_eq!(out, body);
        assert_eq!(hit.encoded_len(), body.len());
    }

    #[test]
    fn push_bit_is_reversed() {
        // Push: value in the first byte, "meaningful" in the second.
        let f = QhdFlags::from_open_data(&[0x01, 0x01]);
        assert_eq!(f.push, Some(true));
        assert_eq!(f.busy, None);
        let f = QhdFlags::from_open_data(&[0x01, 0x00]);
        assert_eq!(f.push, None, "value without the meaningful bit");
        let f = QhdFlags::from_open_data(&[0x00, 0x01]);
        assert_eq!(f.push, Some(false));
        // Busy: meaningful in the first byte, value in the second.
        let f = QhdFlags::from_open_data(&[0x04, 0x04]);
        assert_eq!(f.busy, Some(true));
        let f = QhdFlags::from_open_data(&[0x00, 0x04]);
        assert_eq!(f.busy, None);
        let f = QhdFlags::from_open_data(&[0x04, 0x00]);
        assert_eq!(f.busy, Some(false));
        assert_eq!(QhdFlags::from_open_data(&[0xff]), QhdFlags::default());

        let all = QhdFlags {
            push: Some(true),
            busy: Some(false),
            have_uploaded: Some(true),
            upload_speed: None,
            ggep: Some(true),
        };
        assert_eq!(all.to_bytes(), [0x2d, 0x29]);
        assert_eq!(QhdFlags::from_open_data(&all.to_bytes()), all);
    }

    #[test]
    fn hit_without_trailer_and_malformed_hits() {
        let mut body = vec![1, 0xBA, 0x18, 10, 0, 0, 1, 0x40, 0, 0, 0];
        body.extend_from_slice(&[7, 0, 0, 0, 0xE8, 0x03, 0, 0]);
        body.extend_from_slice(b"song.mp3\0\0");
        body.extend_from_slice(&[0xAA; 16]);
        let hit = QueryHit::parse(&body).unwrap();
        assert_eq!(hit.trailer, None);
        assert_eq!(hit.results[0].name, b"song.mp3");
        assert!(hit.results[0].extensions.is_empty());
        assert_eq!(hit.servent_id, ServentId([0xAA; 16]));
        let mut out = Vec::new();
        hit.encode(&mut out);
        assert_eq!(out, body);

        // Count says 2 results but only one is there.
        let mut two = body.clone();
        two[0] = 2;
        assert!(QueryHit::parse(&two).is_err());
        // A trailer too short for its vendor code.
        let mut short_trailer = body[..body.len() - 16].to_vec();
        short_trailer.extend_from_slice(b"GTK");
        short_trailer.extend_from_slice(&[0xAA; 16]);
        assert!(QueryHit::parse(&short_trailer).is_err());
        // Open-data size running past the end.
        let mut bad_open = body[..body.len() - 16].to_vec();
        bad_open.extend_from_slice(b"GTKG\x09\x01");
        bad_open.extend_from_slice(&[0xAA; 16]);
        assert_eq!(
            QueryHit::parse(&bad_open),
            Err(DecodeError::BadField("query hit open data size"))
        );
        assert_eq!(QueryHit::parse(&body[..20]), Err(DecodeError::Truncated));
    }
}
