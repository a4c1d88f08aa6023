//! Pong (0x01): port, IP, shared files and kilobytes (14 bytes), then an
//! optional GGEP block (`UP`, `VC`, `DU`, `GUE`, `IPP` …).

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::ggep::Ggep;

use super::view::PongRef;
use super::{optional_ggep_len, Reader, PONG_MIN_LEN};

/// The fixed 14 bytes of a Pong, read without looking at the extension after
/// them: what routing and host caches need. [`PongRef`] reads them this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PongFixed {
    pub port: u16,
    pub ip: Ipv4Addr,
    pub files: u32,
    pub kbytes: u32,
}

impl PongFixed {
    /// Reads the first 14 bytes of a Pong payload (`Truncated` if shorter).
    pub fn read(payload: &[u8]) -> Result<PongFixed> {
        let mut r = Reader::new(payload.get(..PONG_MIN_LEN).unwrap_or(payload));
        Ok(PongFixed {
            port: r.u16_le()?,
            ip: r.ipv4()?,
            files: r.u32_le()?,
            kbytes: r.u32_le()?,
        })
    }

    /// The 14 bytes: a whole Pong payload without extension.
    pub fn to_bytes(&self) -> [u8; PONG_MIN_LEN] {
        let mut out = [0u8; PONG_MIN_LEN];
        out[0..2].copy_from_slice(&self.port.to_le_bytes());
        out[2..6].copy_from_slice(&self.ip.octets());
        out[6..10].copy_from_slice(&self.files.to_le_bytes());
        out[10..14].copy_from_slice(&self.kbytes.to_le_bytes());
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    pub port: u16,
    pub ip: Ipv4Addr,
    pub files: u32,
    /// Kilobytes shared. Ultrapeers announce a power of two here (a mark,
    /// not a size).
    pub kbytes: u32,
    pub ggep: Option<Ggep>,
}

impl Pong {
    pub fn parse(payload: &[u8]) -> Result<Pong> {
        PongRef::parse(payload).map(PongRef::into_owned)
    }

    pub fn encoded_len(&self) -> usize {
        PONG_MIN_LEN + optional_ggep_len(&self.ggep)
    }

    /// The fixed part.
    pub fn fixed(&self) -> PongFixed {
        PongFixed {
            port: self.port,
            ip: self.ip,
            files: self.files,
            kbytes: self.kbytes,
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

    #[test]
    fn pong_from_trace() {
        // Frame 674 of the ndpi-gtkg UDP trace: 113.252.86.162:9239, 22 files,
        // 67108864 kB (an ultrapeer mark), GGEP UP + deflated IPP.
        let body = data_encoding::HEXLOWER.decode(b"172471fc56a21600000000000004c302555043010b06a349505069789c011e00e1ffdaa4c61b2aeb24ea12a6dcf1b4da87dec411721b185fa32c01acb8307713ffa90ec2").unwrap();
        let pong = Pong::parse(&body).unwrap();
        assert_eq!(pong.port, 9239);
        assert_eq!(pong.ip, Ipv4Addr::new(113, 252, 86, 162));
        assert_eq!(pong.files, 22);
        assert_eq!(pong.kbytes, 67108864);
        assert!(pong.ggep.as_ref().unwrap().get(b"IPP").is_some());
        let mut out = Vec::new();
        pong.encode(&mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn the_fixed_part_reads_without_the_extension() {
        let f = PongFixed {
            port: 6346,
            ip: Ipv4Addr::new(127, 0, 0, 1),
            files: 3,
            kbytes: 10,
        };
        let bytes = f.to_bytes();
        assert_eq!(
            &bytes[..6],
            &[0xca, 0x18, 127, 0, 0, 1],
            "port LE, IP in network order"
        );
        assert_eq!(PongFixed::read(&bytes), Ok(f));
        let mut junk_ext = bytes.to_vec();
        junk_ext.push(1);
        assert_eq!(
            PongFixed::read(&junk_ext),
            Ok(f),
            "a bad extension is not its business"
        );
        assert_eq!(PongFixed::read(&bytes[..13]), Err(DecodeError::Truncated));
    }

    #[test]
    fn short_or_junk_pongs_fail() {
        assert_eq!(Pong::parse(&[0; 13]), Err(DecodeError::Truncated));
        let plain = Pong::parse(&[0; 14]).unwrap();
        assert_eq!(plain.ggep, None);
        let mut junk = vec![0u8; 15];
        junk[14] = 1;
        assert_eq!(
            Pong::parse(&junk),
            Err(DecodeError::BadField("pong extension"))
        );
    }
}
