//! The GIV line of a push callback: `GIV <index>:<servent id, 32 hex>/<name>\n\n`.
//!
//! A firewalled servent that receives a Push connects to the requester and sends this line; the
//! requester then sends its GET on the same socket. Parsing is incremental like the handshakes
//! ([`Parsed::NeedMore`] until the blank line); bytes after it belong to the HTTP exchange and are
//! left alone. LF or CRLF line ends are accepted; LF is emitted, as the 0.4 spec writes it.
//!
//! The name is kept as raw bytes: it is informative only (gtk-gnutella sends the literal name
//! `file`), and GIVs are matched to pending pushes by servent id and index.

use crate::error::{DecodeError, Result};
use crate::handshake::split_head;
pub use crate::handshake::{HeadScanner, Parsed};

/// Largest GIV accepted, blank line included (a file name plus about 50 bytes of fixed text).
pub const MAX_GIV_LEN: usize = 4096;

/// A push callback announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Giv {
    /// The file index from the Push.
    pub file_index: u32,
    /// The servent id of the announcing servent (the one the Push was addressed to).
    pub servent_id: [u8; 16],
    /// The file name, raw bytes as sent (may be empty).
    pub file_name: Vec<u8>,
}

const GIV: &[u8] = b"GIV ";

impl Giv {
    /// Parses a GIV from the start of `buf` (see the module doc).
    ///
    /// Scans the whole buffer on every call; a reader that calls again as bytes arrive should use
    /// [`Giv::parse_from`].
    pub fn parse(buf: &[u8]) -> Result<Parsed<Giv>> {
        Giv::parse_from(buf, &mut HeadScanner::new())
    }

    /// [`Giv::parse`] for a buffer that grows between calls (see [`HeadScanner`]; reset it after
    /// taking the line).
    pub fn parse_from(buf: &[u8], scan: &mut HeadScanner) -> Result<Parsed<Giv>> {
        let probe = buf.get(..GIV.len()).unwrap_or(buf);
        if !GIV.starts_with(probe) {
            return Err(DecodeError::BadField("GIV keyword"));
        }
        let Some(end) = scan.find_end(buf, MAX_GIV_LEN)? else {
            return Ok(Parsed::NeedMore);
        };
        let head = split_head(buf.get(..end).unwrap_or(buf));
        if !head.header_lines.is_empty() {
            return Err(DecodeError::BadField("GIV followed by more lines"));
        }
        let line = head
            .start_line
            .strip_prefix(GIV)
            .ok_or(DecodeError::BadField("GIV keyword"))?;
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(DecodeError::BadField("GIV file index"))?;
        let file_index =
            parse_u32(&line[..colon]).ok_or(DecodeError::BadField("GIV file index"))?;
        let rest = &line[colon + 1..];
        let id_hex = rest
            .get(..32)
            .ok_or(DecodeError::BadField("GIV servent id"))?;
        let servent_id = parse_hex_id(id_hex).ok_or(DecodeError::BadField("GIV servent id"))?;
        let file_name = match &rest[32..] {
            [] => Vec::new(),
            [b'/', name @ ..] => name.to_vec(),
            _ => return Err(DecodeError::BadField("GIV servent id")),
        };
        Ok(Parsed::Complete {
            message: Giv {
                file_index,
                servent_id,
                file_name,
            },
            consumed: end,
        })
    }

    /// Bytes [`Giv::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        GIV.len() + decimal_len(self.file_index) + 1 + 32 + 1 + self.file_name.len() + 2
    }

    /// Writes `GIV <index>:<id in lowercase hex>/<name>\n\n`.
    ///
    /// CR and LF in the name would end the line early; they are written as `_`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(GIV);
        out.extend_from_slice(self.file_index.to_string().as_bytes());
        out.push(b':');
        for b in self.servent_id {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        }
        out.push(b'/');
        out.extend(self.file_name.iter().map(|&b| match b {
            b'\r' | b'\n' => b'_',
            other => other,
        }));
        out.extend_from_slice(b"\n\n");
    }

    /// The encoded line as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decimal_len(mut n: u32) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Decimal digits only (no sign, no spaces), within u32.
pub(crate) fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    u32::try_from(n).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// 32 hex digits (either case) into 16 bytes.
fn parse_hex_id(hex: &[u8]) -> Option<[u8; 16]> {
    let mut id = [0u8; 16];
    for (slot, pair) in id.iter_mut().zip(hex.chunks_exact(2)) {
        *slot = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    (hex.len() == 32).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 16] = [
        0x74, 0xe8, 0x31, 0x02, 0x41, 0x4c, 0x9f, 0xb6, 0x17, 0xab, 0xb1, 0x0c, 0x97, 0x60, 0x59,
        0x4a,
    ];

    #[test]
    fn parses_and_encodes() {
        let line = b"GIV 17:74e83102414c9fb617abb10c9760594a/file\n\nGET /get/17/x HTTP/1.1\r\n";
        let (giv, used) = Giv::parse(line).unwrap().complete().unwrap();
        assert_eq!(
            giv,
            Giv {
                file_index: 17,
                servent_id: ID,
                file_name: b"file".to_vec()
            }
        );
        assert_eq!(&line[used..], b"GET /get/17/x HTTP/1.1\r\n");
        assert_eq!(giv.to_bytes(), &line[..used]);
        assert_eq!(giv.encoded_len(), used);
    }

    #[test]
    fn uppercase_hex_crlf_and_missing_name() {
        let (giv, used) = Giv::parse(b"GIV 0:74E83102414C9FB617ABB10C9760594A\r\n\r\n")
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(used, 42);
        assert_eq!(giv.servent_id, ID);
        assert!(giv.file_name.is_empty());
        let (giv, _) = Giv::parse(b"GIV 4294967295:74e83102414c9fb617abb10c9760594a/a/b c\n\n")
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(giv.file_index, u32::MAX);
        assert_eq!(giv.file_name, b"a/b c");
    }

    #[test]
    fn every_prefix_needs_more() {
        let line = b"GIV 3:74e83102414c9fb617abb10c9760594a/song.mp3\n\n";
        for cut in 0..line.len() {
            assert_eq!(Giv::parse(&line[..cut]), Ok(Parsed::NeedMore), "cut {cut}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"GIV x:74e83102414c9fb617abb10c9760594a/f\n\n",
            b"GIV 4294967296:74e83102414c9fb617abb10c9760594a/f\n\n",
            b"GIV :74e83102414c9fb617abb10c9760594a/f\n\n",
            b"GIV 1:74e83102414c9fb617abb10c9760594/f\n\n",
            b"GIV 1:74e83102414c9fb617abb10c9760594g/f\n\n",
            b"GIV 1:74e83102414c9fb617abb10c9760594aa/f\n\n",
            b"GIV 1 74e83102414c9fb617abb10c9760594a/f\n\n",
            b"GIV 1:74e83102414c9fb617abb10c9760594a/f\nX: y\n\n",
        ] {
            assert!(
                Giv::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"GIV 1:".as_slice(), &[b'a'; MAX_GIV_LEN]].concat();
        assert!(matches!(
            Giv::parse(&long),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn name_cannot_break_the_line() {
        let giv = Giv {
            file_index: 1,
            servent_id: ID,
            file_name: b"a\r\n\nb".to_vec(),
        };
        let bytes = giv.to_bytes();
        let (back, used) = Giv::parse(&bytes).unwrap().complete().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back.file_name, b"a___b");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn giv() -> impl Strategy<Value = Giv> {
            (
                any::<u32>(),
                any::<[u8; 16]>(),
                prop::collection::vec(
                    any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'),
                    0..100,
                ),
            )
                .prop_map(|(file_index, servent_id, file_name)| Giv {
                    file_index,
                    servent_id,
                    file_name,
                })
        }

        proptest! {
            #[test]
            fn round_trip_and_split_anywhere(giv in giv(), tail in prop::collection::vec(any::<u8>(), 0..8)) {
                let mut bytes = giv.to_bytes();
                let len = bytes.len();
                prop_assert_eq!(len, giv.encoded_len());
                for cut in 0..len {
                    prop_assert_eq!(Giv::parse(&bytes[..cut]), Ok(Parsed::NeedMore), "cut {}", cut);
                }
                bytes.extend_from_slice(&tail);
                let (back, used) = Giv::parse(&bytes).unwrap().complete().unwrap();
                prop_assert_eq!(used, len);
                prop_assert_eq!(back, giv);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                if let Ok(Parsed::Complete { consumed, .. }) = Giv::parse(&bytes) {
                    prop_assert!(consumed <= bytes.len());
                }
            }
        }
    }
}
