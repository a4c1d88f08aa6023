//! Alternate locations (the download mesh): the other servents that have a
//! file, exchanged in transfer headers so a downloader finds more sources.
//!
//! - `X-Alt` (the compact form gtk-gnutella and LimeWire send): a comma-separated list of
//!   `IP[:PORT]` (port 6346 when absent) for direct sources, and `GUID;IP:PORT;IP:PORT…` (the
//!   servent id in base32, then its push proxies) for firewalled ones. Other tokens (gtk-gnutella's
//!   `tls=…` bitmap) are skipped.
//! - `X-Gnutella-Alternate-Location` (HUGE's older form): a comma-separated list of
//!   `http://IP:PORT/uri-res/N2R?urn:…` URLs, each optionally followed by a date.
//!
//! Parsers are total and keep at most [`MAX_ALT_LOCS`] entries; addresses that cannot be a
//! servent (port 0, 0.0.0.0, multicast) are dropped.

use std::net::{Ipv4Addr, SocketAddrV4};

/// Most alternate locations read from one header.
pub const MAX_ALT_LOCS: usize = 32;

/// One alternate location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltLoc {
    /// A servent that accepts connections.
    Direct(SocketAddrV4),
    /// A firewalled servent (its servent id) and its push proxies.
    Push {
        servent_id: [u8; 16],
        proxies: Vec<SocketAddrV4>,
    },
}

fn usable(addr: &SocketAddrV4) -> bool {
    addr.port() != 0
        && !addr.ip().is_unspecified()
        && !addr.ip().is_multicast()
        && !addr.ip().is_broadcast()
}

/// `IP[:PORT]` with the Gnutella port as default.
fn host(text: &str) -> Option<SocketAddrV4> {
    let text = text.trim();
    let addr = match text.parse::<SocketAddrV4>() {
        Ok(addr) => addr,
        Err(_) => SocketAddrV4::new(text.parse::<Ipv4Addr>().ok()?, 6346),
    };
    usable(&addr).then_some(addr)
}

/// Reads an `X-Alt` header value.
pub fn parse_x_alt(value: &str) -> Vec<AltLoc> {
    let mut out = Vec::new();
    for item in value.split(',') {
        if out.len() >= MAX_ALT_LOCS {
            break;
        }
        let item = item.trim();
        if item.contains(';') {
            let mut parts = item.split(';');
            let guid = parts.next().unwrap_or_default().trim();
            let Some(servent_id) = data_encoding::BASE32_NOPAD
                .decode(guid.to_ascii_uppercase().as_bytes())
                .ok()
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            else {
                continue;
            };
            let proxies: Vec<SocketAddrV4> = parts.filter_map(host).take(8).collect();
            out.push(AltLoc::Push {
                servent_id,
                proxies,
            });
        } else if let Some(addr) = host(item) {
            if !out.contains(&AltLoc::Direct(addr)) {
                out.push(AltLoc::Direct(addr));
            }
        }
    }
    out
}

/// Writes direct sources as an `X-Alt` value (`IP:PORT, IP:PORT`).
pub fn format_x_alt(sources: &[SocketAddrV4]) -> String {
    let items: Vec<String> = sources
        .iter()
        .take(MAX_ALT_LOCS)
        .map(|a| {
            if a.port() == 6346 {
                a.ip().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    items.join(", ")
}

/// Reads an `X-Gnutella-Alternate-Location` value: the hosts of its URLs.
pub fn parse_alternate_location(value: &str) -> Vec<SocketAddrV4> {
    let mut out = Vec::new();
    for item in value.split(',') {
        if out.len() >= MAX_ALT_LOCS {
            break;
        }
        let item = item.trim();
        let Some(rest) = item
            .strip_prefix("http://")
            .or_else(|| item.strip_prefix("HTTP://"))
        else {
            continue;
        };
        let authority = rest.split(['/', ' ', '?']).next().unwrap_or_default();
        let addr = match authority.parse::<SocketAddrV4>() {
            Ok(addr) => Some(addr),
            Err(_) => authority
                .parse::<Ipv4Addr>()
                .ok()
                .map(|ip| SocketAddrV4::new(ip, 80)),
        };
        if let Some(addr) = addr.filter(usable) {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_alt_direct_and_push_locations() {
        let guid = data_encoding::BASE32_NOPAD.encode(&[7u8; 16]);
        let value = format!(
            "tls=8, 192.0.2.1:6347,198.51.100.2, {guid};203.0.113.5:6346;203.0.113.6:7000, 0.0.0.0:1, 10.0.0.1:0, junk"
        );
        let locs = parse_x_alt(&value);
        assert_eq!(
            locs,
            vec![
                AltLoc::Direct("192.0.2.1:6347".parse().unwrap()),
                AltLoc::Direct("198.51.100.2:6346".parse().unwrap()),
                AltLoc::Push {
                    servent_id: [7; 16],
                    proxies: vec![
                        "203.0.113.5:6346".parse().unwrap(),
                        "203.0.113.6:7000".parse().unwrap()
                    ]
                },
            ]
        );
    }

    #[test]
    fn x_alt_round_trips_direct_sources() {
        let sources: Vec<SocketAddrV4> = vec![
            "192.0.2.1:6346".parse().unwrap(),
            "192.0.2.2:7".parse().unwrap(),
        ];
        let value = format_x_alt(&sources);
        assert_eq!(value, "192.0.2.1, 192.0.2.2:7");
        let back: Vec<SocketAddrV4> = parse_x_alt(&value)
            .into_iter()
            .filter_map(|l| match l {
                AltLoc::Direct(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(back, sources);
    }

    #[test]
    fn huge_alternate_locations_give_their_hosts() {
        let value = "http://192.0.2.9:6346/uri-res/N2R?urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB 2002-04-30T08:30Z, HTTP://192.0.2.10/get/1/a.mp3, ftp://x, http://name.example:1/";
        assert_eq!(
            parse_alternate_location(value),
            vec![
                "192.0.2.9:6346".parse::<SocketAddrV4>().unwrap(),
                "192.0.2.10:80".parse().unwrap()
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_header_parses_to_a_bounded_list(value in "\\PC{0,2000}") {
            proptest::prop_assert!(parse_x_alt(&value).len() <= MAX_ALT_LOCS);
            proptest::prop_assert!(parse_alternate_location(&value).len() <= MAX_ALT_LOCS);
        }
    }
}
