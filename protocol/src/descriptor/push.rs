//! Push (0x40): asks a firewalled servent to connect out and offer a file.
//! Servent id (16), file index (u32 LE), IP (network order), port (u16 LE),
//! then an optional GGEP block.

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::ggep::Ggep;

use super::view::PushRef;
use super::{optional_ggep_len, Reader, ServentId, PUSH_MIN_LEN};

/// The fixed 26 bytes of a Push, read without looking at the extension after
/// them: what routing and a callback need. [`PushRef`] reads them this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushFixed {
    pub servent_id: ServentId,
    pub file_index: u32,
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl PushFixed {
    /// Reads the first 26 bytes of a Push payload (`Truncated` if shorter).
    pub fn read(payload: &[u8]) -> Result<PushFixed> {
        let mut r = Reader::new(payload.get(..PUSH_MIN_LEN).unwrap_or(payload));
        Ok(PushFixed {
            servent_id: ServentId(r.array()?),
            file_index: r.u32_le()?,
            ip: r.ipv4()?,
            port: r.u16_le()?,
        })
    }

    /// The 26 bytes: a whole Push payload without extension.
    pub fn to_bytes(&self) -> [u8; PUSH_MIN_LEN] {
        let mut out = [0u8; PUSH_MIN_LEN];
        out[..16].copy_from_slice(&self.servent_id.0);
        out[16..20].copy_from_slice(&self.file_index.to_le_bytes());
        out[20..24].copy_from_slice(&self.ip.octets());
        out[24..26].copy_from_slice(&self.port.to_le_bytes());
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The servent that should connect out.
    pub servent_id: ServentId,
    pub file_index: u32,
    /// Where it should connect to.
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ggep: Option<Ggep>,
}

impl Push {
    pub fn parse(payload: &[u8]) -> Result<Push> {
        PushRef::parse(payload).map(PushRef::into_owned)
    }

    pub fn encoded_len(&self) -> usize {
        PUSH_MIN_LEN + optional_ggep_len(&self.ggep)
    }

    /// The fixed part.
    pub fn fixed(&self) -> PushFixed {
        PushFixed {
            servent_id: self.servent_id,
            file_index: self.file_index,
            ip: self.ip,
            port: self.port,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.fixed().to_bytes());
        if let Some(g) = &self.ggep {
            g.encode(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    // The traces hold no Push; this vector follows the 0.4 spec layout.
    const PUSH: [u8; 26] = [
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
        0x00, // servent id
        0x2A, 0x00, 0x00, 0x00, // index 42
        0xC0, 0xA8, 0x01, 0x02, // 192.168.1.2
        0xBA, 0x18, // port 6330
    ];

    #[test]
    fn push_fields() {
        let p = Push::parse(&PUSH).unwrap();
        assert_eq!(p.servent_id.to_string(), "112233445566778899aabbccddeeff00");
        assert_eq!(p.file_index, 42);
        assert_eq!(p.ip, Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(p.port, 6330);
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(out, PUSH);
    }

    #[test]
    fn push_with_ggep_and_bad_tails() {
        let mut with = PUSH.to_vec();
        with.extend_from_slice(&[0xC3, 0x82, b'T', b'L', 0x40]);
        let p = Push::parse(&with).unwrap();
        assert!(p.ggep.as_ref().unwrap().get(b"TL").is_some());
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(out, with);
        assert_eq!(Push::parse(&PUSH[..25]), Err(DecodeError::Truncated));
        let mut junk = PUSH.to_vec();
        junk.push(0);
        assert!(Push::parse(&junk).is_err());
    }
}
