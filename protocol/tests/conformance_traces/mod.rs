//! Finding and loading the third-party captures shared by the conformance
//! tests. They live outside the repository, at `../shared/traces` relative to
//! the workspace root, or wherever `$HAZEL_TRACES` points. A missing trace is
//! a test failure with a message saying where it was looked for, never a pass.

#![allow(dead_code)]

use hazel_protocol::handshake::{Handshake, Headers, Parsed};
use serde_json::Value;

pub use hazel_protocol::traces::read as read_trace;

/// One JSON value per non-empty line.
pub fn read_jsonl(name: &str) -> Vec<Value> {
    let text = String::from_utf8(read_trace(name)).expect("expected file is UTF-8");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{name} line {}: {e}", i + 1))
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

pub const NDPI: &str = "ndpi-gtkg-0.6-2022";
pub const PPA: &str = "ppa1e-bearshare-get-2001";

/// The consecutive handshake blocks at the start of one direction, each as
/// (raw bytes including the blank line, parsed block).
pub fn handshake_blocks(bytes: &[u8]) -> Vec<(Vec<u8>, Handshake)> {
    let mut blocks = Vec::new();
    let mut rest = bytes;
    while rest.starts_with(b"GNUTELLA") {
        match Handshake::parse(rest) {
            Ok(Parsed::Complete { message, consumed }) => {
                blocks.push((rest[..consumed].to_vec(), message));
                rest = &rest[consumed..];
            }
            Ok(Parsed::NeedMore) => panic!(
                "handshake block cut short: {:?}",
                String::from_utf8_lossy(rest)
            ),
            Err(e) => panic!(
                "handshake block does not parse ({e}): {:?}",
                String::from_utf8_lossy(rest)
            ),
        }
    }
    blocks
}

pub struct Link {
    pub established: bool,
    pub tls_upgrade: bool,
    pub c2s_deflate: bool,
    pub s2c_deflate: bool,
    pub g2: bool,
}

/// What the 0.6 three-step handshake agreed: the server's block (step 2) and
/// the client's answer (step 3) decide.
pub fn link(client: &[(Vec<u8>, Handshake)], server: &[(Vec<u8>, Handshake)]) -> Option<Link> {
    let (_, step2) = server.first()?;
    let (_, step3) = client.get(1)?;
    let (h2, h3) = (step2.headers()?, step3.headers()?);
    let g2 = |h: &Headers| {
        h.get("Content-Type")
            .is_some_and(|v| v.eq_ignore_ascii_case("application/x-gnutella2"))
    };
    Some(Link {
        established: step2.code() == Some(200) && step3.code() == Some(200),
        tls_upgrade: h2.get("Upgrade").is_some_and(|v| v.starts_with("TLS"))
            && h3.has_token("Connection", "Upgrade"),
        c2s_deflate: h3.content_deflate(),
        s2c_deflate: h2.content_deflate(),
        g2: g2(h2) || g2(h3),
    })
}

impl Link {
    /// A Gnutella 0.6 link compressed both ways that can be decoded (no TLS, not G2).
    pub fn is_deflate_gnutella(&self) -> bool {
        self.established && self.c2s_deflate && self.s2c_deflate && !self.tls_upgrade && !self.g2
    }
}
