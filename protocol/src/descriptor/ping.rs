//! Ping (0x00): an empty payload, or a GGEP block (`SCP`, `QK`, `VC` …).

use crate::error::Result;
use crate::ggep::Ggep;

use super::optional_ggep_len;
use super::view::PingRef;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ping {
    pub ggep: Option<Ggep>,
}

impl Ping {
    pub fn parse(payload: &[u8]) -> Result<Ping> {
        PingRef::parse(payload).map(PingRef::into_owned)
    }

    pub fn encoded_len(&self) -> usize {
        optional_ggep_len(&self.ggep)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
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
    fn empty_and_ggep_pings() {
        assert_eq!(Ping::parse(&[]).unwrap(), Ping { ggep: None });
        // SCP + VC + DHTIPP, from the ndpi-gtkg UDP trace (frame 673).
        let body = data_encoding::HEXLOWER
            .decode(b"c30353435041020256434547544b47628644485449505040")
            .unwrap();
        let ping = Ping::parse(&body).unwrap();
        assert_eq!(ping.ggep.as_ref().unwrap().extensions.len(), 3);
        let mut out = Vec::new();
        ping.encode(&mut out);
        assert_eq!(out, body);
        assert_eq!(ping.encoded_len(), body.len());
    }

    #[test]
    fn junk_payload_is_rejected() {
        assert_eq!(
            Ping::parse(b"x"),
            Err(DecodeError::BadField("ping payload"))
        );
        assert!(Ping::parse(&[0xC3]).is_err());
    }
}
