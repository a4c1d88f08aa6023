//! HUGE urns (Hash/URN Gnutella Extensions): `urn:sha1:` and `urn:bitprint:`.
//!
//! `urn:sha1:` carries a SHA-1 as 32 base32 characters; `urn:bitprint:` a
//! SHA-1 (32 characters), a dot, and a Tiger tree root (39 characters).
//! Any other urn (`urn:ed2khash:`, `urn:md5:`, `urn:btih:` …) is kept as
//! text. Parsing never fails, and only the canonical spelling becomes a
//! typed digest, so that encoding gives back the bytes that were read.

use std::fmt;

use data_encoding::{BASE32, BASE32_NOPAD};

const SHA1_PREFIX: &[u8] = b"urn:sha1:";
const BITPRINT_PREFIX: &[u8] = b"urn:bitprint:";
const SHA1_BASE32_LEN: usize = 32;
const TIGER_BASE32_LEN: usize = 39;

/// A SHA-1 digest.
pub type Sha1Digest = [u8; 20];
/// A Tiger tree root.
pub type TigerDigest = [u8; 24];

/// A HUGE urn.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Urn {
    /// `urn:sha1:<32 base32>`.
    Sha1(Sha1Digest),
    /// `urn:bitprint:<32 base32 sha1>.<39 base32 tiger>`.
    Bitprint {
        sha1: Sha1Digest,
        tiger: TigerDigest,
    },
    /// Any other urn, or a sha1/bitprint urn in a non-canonical spelling
    /// (lower-case base32, upper-case prefix), kept byte for byte.
    Other(Vec<u8>),
}

impl Urn {
    /// Whether `text` looks like an urn at all (`urn:` in any case).
    pub fn is_urn(text: &[u8]) -> bool {
        text.len() >= 4 && text[..4].eq_ignore_ascii_case(b"urn:")
    }

    /// Reads an urn; canonical sha1 and bitprint urns become digests.
    pub fn parse(text: &[u8]) -> Urn {
        if let Some(rest) = text.strip_prefix(SHA1_PREFIX) {
            if let Some(sha1) = decode_sha1(rest, false) {
                return Urn::Sha1(sha1);
            }
        } else if let Some(rest) = text.strip_prefix(BITPRINT_PREFIX) {
            if let Some((sha1, tiger)) = decode_bitprint(rest, false) {
                return Urn::Bitprint { sha1, tiger };
            }
        }
        Urn::Other(text.to_vec())
    }

    /// The SHA-1 this urn names, if any. Unlike [`Urn::parse`], this accepts
    /// any letter case, as peers are liberal in what they send.
    pub fn sha1(&self) -> Option<Sha1Digest> {
        match self {
            Urn::Sha1(d) => Some(*d),
            Urn::Bitprint { sha1, .. } => Some(*sha1),
            Urn::Other(text) => {
                if text.len() > SHA1_PREFIX.len()
                    && text[..SHA1_PREFIX.len()].eq_ignore_ascii_case(SHA1_PREFIX)
                {
                    decode_sha1(&text[SHA1_PREFIX.len()..], true)
                } else if text.len() > BITPRINT_PREFIX.len()
                    && text[..BITPRINT_PREFIX.len()].eq_ignore_ascii_case(BITPRINT_PREFIX)
                {
                    decode_bitprint(&text[BITPRINT_PREFIX.len()..], true).map(|(s, _)| s)
                } else {
                    None
                }
            }
        }
    }

    /// The Tiger tree root this urn names (a `urn:bitprint:`'s second half), in any letter case.
    pub fn tiger(&self) -> Option<TigerDigest> {
        match self {
            Urn::Bitprint { tiger, .. } => Some(*tiger),
            Urn::Sha1(_) => None,
            Urn::Other(text) => {
                if text.len() > BITPRINT_PREFIX.len()
                    && text[..BITPRINT_PREFIX.len()].eq_ignore_ascii_case(BITPRINT_PREFIX)
                {
                    decode_bitprint(&text[BITPRINT_PREFIX.len()..], true).map(|(_, t)| t)
                } else {
                    None
                }
            }
        }
    }

    pub fn encoded_len(&self) -> usize {
        match self {
            Urn::Sha1(_) => SHA1_PREFIX.len() + SHA1_BASE32_LEN,
            Urn::Bitprint { .. } => BITPRINT_PREFIX.len() + SHA1_BASE32_LEN + 1 + TIGER_BASE32_LEN,
            Urn::Other(text) => text.len(),
        }
    }

    /// Appends the urn's text.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Urn::Sha1(d) => {
                out.extend_from_slice(SHA1_PREFIX);
                out.extend_from_slice(BASE32.encode(d).as_bytes());
            }
            Urn::Bitprint { sha1, tiger } => {
                out.extend_from_slice(BITPRINT_PREFIX);
                out.extend_from_slice(BASE32.encode(sha1).as_bytes());
                out.push(b'.');
                out.extend_from_slice(BASE32_NOPAD.encode(tiger).as_bytes());
            }
            Urn::Other(text) => out.extend_from_slice(text),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

impl fmt::Display for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Debug for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Urn({self})")
    }
}

/// The canonical `urn:sha1:` text of a digest.
pub fn sha1_urn(digest: &Sha1Digest) -> String {
    format!("urn:sha1:{}", BASE32.encode(digest))
}

/// The canonical `urn:bitprint:<sha1>.<tiger root>` text.
pub fn bitprint_urn(sha1: &Sha1Digest, tiger: &TigerDigest) -> String {
    Urn::Bitprint {
        sha1: *sha1,
        tiger: *tiger,
    }
    .to_string()
}

fn decode_sha1(b32: &[u8], any_case: bool) -> Option<Sha1Digest> {
    if b32.len() != SHA1_BASE32_LEN {
        return None;
    }
    let mut upper = [0u8; SHA1_BASE32_LEN];
    upper.copy_from_slice(b32);
    if any_case {
        upper.make_ascii_uppercase();
    }
    let bytes = BASE32.decode(&upper).ok()?;
    bytes.try_into().ok()
}

fn decode_bitprint(text: &[u8], any_case: bool) -> Option<(Sha1Digest, TigerDigest)> {
    if text.len() != SHA1_BASE32_LEN + 1 + TIGER_BASE32_LEN || text[SHA1_BASE32_LEN] != b'.' {
        return None;
    }
    let sha1 = decode_sha1(&text[..SHA1_BASE32_LEN], any_case)?;
    let mut tiger_text = [0u8; TIGER_BASE32_LEN];
    tiger_text.copy_from_slice(&text[SHA1_BASE32_LEN + 1..]);
    if any_case {
        tiger_text.make_ascii_uppercase();
    }
    let tiger = BASE32_NOPAD.decode(&tiger_text).ok()?;
    // Reject spellings whose unused trailing bits are set: they would not
    // re-encode to the same text.
    if !any_case && BASE32_NOPAD.encode(&tiger).as_bytes() != tiger_text {
        return None;
    }
    Some((sha1, tiger.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_urn_round_trip() {
        // The urn requested in the ndpi-gtkg trace's /uri-res/N2R download.
        let text = b"urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI";
        let urn = Urn::parse(text);
        let Urn::Sha1(d) = urn else {
            panic!("not sha1: {urn:?}")
        };
        assert_eq!(d[0], 0x5d);
        assert_eq!(urn.to_bytes(), text);
        assert_eq!(sha1_urn(&d).as_bytes(), text);
        assert_eq!(urn.encoded_len(), text.len());
    }

    #[test]
    fn bitprint_from_trace() {
        // A result extension of a QueryHit in the inflated ndpi-gtkg streams.
        let text = b"urn:bitprint:BZDCUBRZYNISVFMQXZJSMPZMOO2CA3XY.OTLJV7NWMKPBUAIZ67KAB2WQ5UDYYL27I343QVY";
        let urn = Urn::parse(text);
        assert!(matches!(urn, Urn::Bitprint { .. }), "{urn:?}");
        assert_eq!(urn.to_bytes(), text);
        assert!(urn.sha1().is_some());
        let tiger = urn.tiger().expect("a bitprint names a tiger root");
        assert_eq!(
            bitprint_urn(&urn.sha1().unwrap(), &tiger).as_bytes(),
            &text[..]
        );
        // Any case, as sha1() reads it.
        let lower = Urn::parse(&text.to_ascii_lowercase()[..]);
        assert!(matches!(lower, Urn::Other(_)));
        assert_eq!(lower.tiger(), Some(tiger));
        assert_eq!(
            Urn::parse(b"urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI").tiger(),
            None
        );
    }

    #[test]
    fn other_urns_kept_as_text() {
        for text in [
            &b"urn:ed2khash:820e09a80029805c75bda70c942f2fa8"[..],
            b"urn:",
            b"urn:sha1:TOOSHORT",
            b"urn:sha1:1XIP2A72T5H3BU3GRUMZFYNU3OYDK6FI", // '1' is not base32
        ] {
            let urn = Urn::parse(text);
            assert_eq!(urn, Urn::Other(text.to_vec()));
            assert_eq!(urn.to_bytes(), text);
            assert_eq!(urn.sha1(), None);
        }
    }

    #[test]
    fn lower_case_kept_exact_but_sha1_readable() {
        let text = b"urn:sha1:lxip2a72t5h3bu3grumzfynu3oydk6fi";
        let urn = Urn::parse(text);
        assert!(matches!(urn, Urn::Other(_)));
        assert_eq!(urn.to_bytes(), text);
        assert_eq!(
            urn.sha1(),
            Urn::parse(b"urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI").sha1()
        );
        assert!(Urn::is_urn(b"URN:x"));
        assert!(!Urn::is_urn(b"ur"));
    }
}
