//! The small names every part of the servent shares: which connection, which
//! way it was opened, which handshake it speaks, which search.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;

use serde::Serialize;

/// A connection's identity for its whole life, allocated by the event loop
/// (or the harness). Never reused, although socket slots are.
pub type ConnId = u64;

/// The id of a search we originated.
pub type SearchId = u64;

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// The Gnutella handshake a link speaks (and outgoing links start with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ProtocolVersion {
    #[serde(rename = "0.4")]
    V04,
    #[serde(rename = "0.6")]
    V06,
}

impl ProtocolVersion {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProtocolVersion::V04 => "0.4",
            ProtocolVersion::V06 => "0.6",
        }
    }
}

impl FromStr for ProtocolVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0.4" => Ok(ProtocolVersion::V04),
            "0.6" => Ok(ProtocolVersion::V06),
            other => Err(format!("unknown protocol version {other:?} (0.4 or 0.6)")),
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a descriptor came from, as a reverse path remembers it: us, or
/// the link that delivered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Us,
    Link(ConnId),
}

/// Hasher for connection ids: the reactor allocates them sequentially, so
/// one multiply spreads them well; they are not chosen by peers.
#[derive(Clone, Copy, Default)]
pub struct ConnIdHashBuilder;

pub struct ConnIdHasher(u64);

impl Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = {
            let p = u128::from(self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (p as u64) ^ ((p >> 64) as u64)
        };
    }
}

impl BuildHasher for ConnIdHashBuilder {
    type Hasher = ConnIdHasher;
    fn build_hasher(&self) -> ConnIdHasher {
        ConnIdHasher(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_versions_read_and_print_as_on_the_command_line() {
        for v in [ProtocolVersion::V04, ProtocolVersion::V06] {
            assert_eq!(v.to_string().parse::<ProtocolVersion>(), Ok(v));
        }
        assert!("0.5".parse::<ProtocolVersion>().is_err());
        assert_eq!(
            serde_json::to_string(&ProtocolVersion::V06).unwrap(),
            "\"0.6\""
        );
        assert_eq!(
            serde_json::to_string(&Direction::Incoming).unwrap(),
            "\"incoming\""
        );
    }
}
