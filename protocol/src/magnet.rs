//! Magnet links as Gnutella servents exchange them:
//! `magnet:?xt=urn:sha1:<b32>&dn=<name>&xl=<size>&xs=http://host:port/uri-res/N2R?urn:sha1:<b32>`.
//!
//! - `xt` (exact topic): the file's urn (`urn:sha1:`, `urn:bitprint:`); other topics are kept as
//!   text and ignored by Hazel.
//! - `dn` (display name), `xl` (exact length in bytes).
//! - `xs` (exact source) and `as` (acceptable source): HTTP URLs of servents that have the file;
//!   gtk-gnutella writes `http://ip:port/uri-res/N2R?urn:sha1:…`. Only `http://HOST:PORT/…`
//!   sources with a numeric IPv4 host are read as addresses (a download never resolves names on
//!   the event loop); others are kept as text.
//!
//! Parameters are `&`-separated `key=value` pairs, percent-encoded (`+` is a space in `dn`).
//! Repeated keys (`xs.1`, `xs.2` …, or `xs` several times) are all kept. Unknown keys are
//! skipped. The parser is total: any text gives a [`Magnet`] or a typed error, and what it keeps is
//! bounded ([`MAX_MAGNET_LEN`], [`MAX_SOURCES`]).

use std::net::{SocketAddr, SocketAddrV4};

use crate::error::{DecodeError, Result};
use crate::http::percent_decode;
use crate::huge::{sha1_urn, Sha1Digest, Urn};

/// Longest magnet accepted.
pub const MAX_MAGNET_LEN: usize = 16 * 1024;
/// Most sources kept from one magnet.
pub const MAX_SOURCES: usize = 64;

/// A magnet link's meaning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Magnet {
    /// The first `xt` that names a SHA-1 (sha1 or bitprint urn).
    pub sha1: Option<Sha1Digest>,
    /// The Tiger tree root, when an `xt` is a bitprint.
    pub tiger: Option<[u8; 24]>,
    pub name: Option<String>,
    pub size: Option<u64>,
    /// `xs`/`as` sources that are `http://IPv4:PORT/…` URLs.
    pub sources: Vec<SocketAddr>,
}

impl Magnet {
    /// Reads a `magnet:?…` link.
    pub fn parse(text: &str) -> Result<Magnet> {
        if text.len() > MAX_MAGNET_LEN {
            return Err(DecodeError::TooLong {
                len: text.len(),
                max: MAX_MAGNET_LEN,
            });
        }
        let query = text
            .strip_prefix("magnet:?")
            .or_else(|| text.strip_prefix("MAGNET:?"))
            .ok_or(DecodeError::BadField("magnet: prefix"))?;
        let mut magnet = Magnet::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            // `xs.1`, `xt.2`: numbered repeats of a key.
            let key = key.split('.').next().unwrap_or(key).to_ascii_lowercase();
            let value_bytes = percent_decode(value.as_bytes());
            match key.as_str() {
                "xt" => {
                    let urn = Urn::parse(&value_bytes);
                    if magnet.sha1.is_none() {
                        magnet.sha1 = urn.sha1();
                        if let Urn::Bitprint { tiger, .. } = urn {
                            magnet.tiger = Some(tiger);
                        }
                    }
                }
                "dn" => {
                    // `+` is a space in a query, before escapes are decoded.
                    let spaced = value.replace('+', " ");
                    let name =
                        String::from_utf8_lossy(&percent_decode(spaced.as_bytes())).into_owned();
                    if !name.is_empty() {
                        magnet.name = Some(name);
                    }
                }
                "xl" => {
                    magnet.size = std::str::from_utf8(&value_bytes)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                }
                "xs" | "as" if magnet.sources.len() < MAX_SOURCES => {
                    if let Some(addr) = http_source(&value_bytes) {
                        if !magnet.sources.contains(&addr) {
                            magnet.sources.push(addr);
                        }
                    }
                }
                _ => {}
            }
        }
        if magnet.sha1.is_none() {
            return Err(DecodeError::BadField(
                "magnet without a sha1 or bitprint urn",
            ));
        }
        Ok(magnet)
    }

    /// The link, as gtk-gnutella writes them: `xt` (a `urn:bitprint:` when
    /// the Tiger root is known), `dn`, `xl`, then each source as
    /// `xs=http://IP:PORT/uri-res/N2R?urn:sha1:…`.
    pub fn to_link(&self) -> String {
        let mut out = String::from("magnet:?");
        let mut first = true;
        let mut push = |out: &mut String, key: &str, value: &str| {
            if !first {
                out.push('&');
            }
            first = false;
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        };
        let urn = self.sha1.map(|d| sha1_urn(&d));
        // With the Tiger root known, the topic is the bitprint (it names both).
        match (&self.sha1, &self.tiger, &urn) {
            (Some(sha1), Some(tiger), _) => {
                push(&mut out, "xt", &crate::huge::bitprint_urn(sha1, tiger))
            }
            (_, _, Some(urn)) => push(&mut out, "xt", urn),
            _ => {}
        }
        if let Some(name) = &self.name {
            push(&mut out, "dn", &encode_component(name.as_bytes()));
        }
        if let Some(size) = self.size {
            push(&mut out, "xl", &size.to_string());
        }
        for source in &self.sources {
            let url = match &urn {
                Some(urn) => format!("http://{source}/uri-res/N2R?{urn}"),
                None => format!("http://{source}/"),
            };
            push(&mut out, "xs", &url);
        }
        out
    }
}

/// Percent-encodes a query value: only letters, digits and `-._~` stay.
fn encode_component(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `http://A.B.C.D:PORT/…` (port 80 when absent) as an address; anything
/// else (a host name, https, IPv6) is not a source Hazel can dial as is.
fn http_source(url: &[u8]) -> Option<SocketAddr> {
    let text = std::str::from_utf8(url).ok()?;
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("HTTP://"))?;
    let authority = rest.split(['/', '?']).next()?;
    let addr = match authority.parse::<SocketAddrV4>() {
        Ok(addr) => addr,
        Err(_) => SocketAddrV4::new(authority.parse().ok()?, 80),
    };
    (addr.port() != 0 && !addr.ip().is_unspecified()).then_some(SocketAddr::V4(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";

    #[test]
    fn a_gtk_gnutella_magnet_reads_whole() {
        let link = format!(
            "magnet:?xt={SHA1}&dn=Free+Software+Song.ogg&xl=1048576\
             &xs=http://192.0.2.7:6346/uri-res/N2R?{SHA1}&xs=http://198.51.100.3:16000/uri-res/N2R?{SHA1}\
             &as=http://example.org/song.ogg&tr=udp://tracker:1&x.unknown=1"
        );
        let m = Magnet::parse(&link).unwrap();
        assert_eq!(m.sha1.map(|d| sha1_urn(&d)).as_deref(), Some(SHA1));
        assert_eq!(m.name.as_deref(), Some("Free Software Song.ogg"));
        assert_eq!(m.size, Some(1_048_576));
        assert_eq!(
            m.sources,
            vec![
                "192.0.2.7:6346".parse::<SocketAddr>().unwrap(),
                "198.51.100.3:16000".parse().unwrap()
            ]
        );
    }

    #[test]
    fn printing_and_reading_back_agree() {
        let m = Magnet {
            sha1: Urn::parse(SHA1.as_bytes()).sha1(),
            tiger: None,
            name: Some("a b&c=d%+.mp3".into()),
            size: Some(42),
            sources: vec!["10.0.0.1:6346".parse().unwrap()],
        };
        let link = m.to_link();
        assert!(link.starts_with(&format!("magnet:?xt={SHA1}&dn=a%20b%26c%3Dd%25%2B.mp3&xl=42&xs=http://10.0.0.1:6346/uri-res/N2R?{SHA1}")), "{link}");
        assert_eq!(Magnet::parse(&link).unwrap(), m);
        let with_root = Magnet {
            tiger: Some([7; 24]),
            ..m
        };
        let link = with_root.to_link();
        assert!(
            link.starts_with("magnet:?xt=urn:bitprint:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB."),
            "{link}"
        );
        assert!(link.contains(&format!("/uri-res/N2R?{SHA1}")), "{link}");
        assert_eq!(Magnet::parse(&link).unwrap(), with_root);
    }

    #[test]
    fn numbered_keys_bitprints_and_bad_links() {
        let bitprint =
            "urn:bitprint:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB.QLFYWY2RI5WZCTEP6MJKR5CAFGP7FQ5X2WK3WHQ";
        let m = Magnet::parse(&format!(
            "magnet:?xt.1={bitprint}&xs.1=http://10.0.0.2/uri-res/N2R?x"
        ))
        .unwrap();
        assert!(m.sha1.is_some() && m.tiger.is_some());
        assert_eq!(
            m.sources,
            vec!["10.0.0.2:80".parse::<SocketAddr>().unwrap()]
        );
        assert!(Magnet::parse("http://example.org").is_err());
        assert!(Magnet::parse("magnet:?dn=no+hash").is_err());
        assert!(Magnet::parse(&format!("magnet:?xt={SHA1}&xl=huge&xs=http://[::1]:80/")).is_ok());
        assert!(Magnet::parse(&"x".repeat(MAX_MAGNET_LEN + 1)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_cleanly(text in "\\PC{0,300}") {
            let _ = Magnet::parse(&text);
            let _ = Magnet::parse(&format!("magnet:?{text}"));
        }

        #[test]
        fn sources_are_bounded(n in 0usize..200) {
            let sources: String = (0..n).map(|i| format!("&xs=http://10.0.{}.{}:1/", i / 250, i % 250 + 1)).collect();
            let m = Magnet::parse(&format!("magnet:?xt={SHA1}{sources}")).unwrap();
            proptest::prop_assert!(m.sources.len() <= MAX_SOURCES);
        }
    }
}
