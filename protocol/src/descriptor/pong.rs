//! Pong (0x01): port, IP, shared files and kilobytes (14 bytes), then an
//! optional GGEP block (`UP`, `VC`, `DU`, `GUE`, `IPP` …).

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::ggep::Ggep;

use super::view::PongRef;
use super::{optional_ggep_len, PONG_MIN_LEN};

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

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.port.to_le_bytes());
        out.extend_from_slice(&self.ip.octets());
        out.extend_from_slice(&self.files.to_le_bytes());
        out.extend_from_slice(&self.kbytes.to_le_bytes());
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
