//! Bye (0x02, 0.6 only): a status code (u16 LE) and a NUL-terminated text
//! (which may carry header lines after a CRLF).

use crate::error::Result;

use super::view::ByeRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bye {
    pub code: u16,
    /// The text without its terminating NUL; must not contain NUL.
    pub message: Vec<u8>,
}

impl Bye {
    pub fn parse(payload: &[u8]) -> Result<Bye> {
        ByeRef::parse(payload).map(ByeRef::into_owned)
    }

    pub fn encoded_len(&self) -> usize {
        2 + self.message.len() + 1
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.code.to_le_bytes());
        out.extend_from_slice(&self.message);
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn bye_from_trace() {
        // gtk-gnutella's Bye in the inflated stream 94: 200 "Servent shutdown".
        let body = b"\xc8\x00Servent shutdown\x00";
        let bye = Bye::parse(body).unwrap();
        assert_eq!(bye.code, 200);
        assert_eq!(bye.message, b"Servent shutdown");
        let mut out = Vec::new();
        bye.encode(&mut out);
        assert_eq!(out, body);
        assert_eq!(bye.encoded_len(), body.len());
    }

    #[test]
    fn malformed_byes() {
        assert_eq!(Bye::parse(&[0xc8]), Err(DecodeError::Truncated));
        assert!(Bye::parse(b"\xc8\x00no nul").is_err());
        assert_eq!(
            Bye::parse(b"\xc8\x00a\x00b"),
            Err(DecodeError::TrailingBytes)
        );
    }
}
