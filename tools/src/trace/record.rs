//! What `hazel-trace` prints: one [`Record`] per message seen in a capture,
//! rendered either as a readable line or as one JSON object per line.

use std::fmt::Write as _;
use std::net::SocketAddr;

use hazel_protocol::pcap::{Direction, Timestamp};
use serde_json::{Map, Value};

/// The transport a message came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Where and when a message was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The frame that completed the message.
    pub frame: u32,
    /// Time since the first frame of the capture.
    pub time: Timestamp,
    /// The frame's own timestamp (seconds since the epoch, as captured).
    pub epoch: Timestamp,
    pub transport: Transport,
    /// tshark's `tcp.stream` / `udp.stream`.
    pub stream: u32,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub dir: Direction,
}

/// One decoded message (or a note about a stream, such as a gap).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub origin: Origin,
    /// `handshake`, `descriptor`, `http_request`, `http_response`, `giv`,
    /// `opennap`, `gap`, `note`, `error`.
    pub kind: &'static str,
    /// The short text after the endpoints: the message in one line.
    pub text: String,
    /// The decoded fields for `--json` (merged with the origin fields).
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn new(
        origin: Origin,
        kind: &'static str,
        text: String,
        fields: Map<String, Value>,
    ) -> Record {
        Record {
            origin,
            kind,
            text,
            fields,
        }
    }

    /// One readable line, e.g.
    /// `   673     0.000000 udp#136 10.0.2.15:28681 > 113.252.86.162:9239 Ping ttl=1 hops=0 …`.
    pub fn to_line(&self) -> String {
        let o = &self.origin;
        let mut line = String::new();
        let _ = write!(
            line,
            "{:>6} {:>12} {}#{} {} > {} {}",
            o.frame,
            o.time.to_string(),
            o.transport.as_str(),
            o.stream,
            o.src,
            o.dst,
            self.text
        );
        line
    }

    /// The record as a JSON object: origin fields, `kind`, then the decoded fields.
    pub fn to_json(&self) -> Value {
        let o = &self.origin;
        let mut m = Map::new();
        m.insert("frame".into(), o.frame.into());
        m.insert("time".into(), Value::from(o.time.as_secs_f64()));
        m.insert("epoch".into(), Value::from(o.epoch.as_secs_f64()));
        m.insert("transport".into(), o.transport.as_str().into());
        m.insert("stream".into(), o.stream.into());
        m.insert("src".into(), o.src.to_string().into());
        m.insert("dst".into(), o.dst.to_string().into());
        m.insert("dir".into(), o.dir.label().into());
        m.insert("kind".into(), self.kind.into());
        for (k, v) in &self.fields {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes shown as text when they are printable ASCII, else as hex with a `0x` prefix.
pub fn text_or_hex(bytes: &[u8]) -> String {
    if !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        String::from_utf8_lossy(bytes).into_owned()
    } else if bytes.is_empty() {
        String::new()
    } else {
        format!("0x{}", hex(bytes))
    }
}

/// A string for a line: quoted, with non-printable bytes escaped, cut to `max` chars.
pub fn quoted(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::from("\"");
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_helpers() {
        assert_eq!(hex(&[0, 0xff, 0x10]), "00ff10");
        assert_eq!(text_or_hex(b"GTKG"), "GTKG");
        assert_eq!(text_or_hex(&[1, 2]), "0x0102");
        assert_eq!(text_or_hex(b""), "");
        assert_eq!(quoted(b"a\"b\\c\n", 10), "\"a\\\"b\\\\c\\x0a\"");
        assert_eq!(quoted("héllo wörld".as_bytes(), 5), "\"héllo…\"");
        assert_eq!(quoted(&[0xff, b'a'], 5), "\"\u{fffd}a\"");
    }

    #[test]
    fn line_and_json_carry_the_origin() {
        let origin = Origin {
            frame: 12,
            time: Timestamp {
                secs: 3,
                nanos: 500_000_000,
            },
            epoch: Timestamp {
                secs: 1_000_000_003,
                nanos: 500_000_000,
            },
            transport: Transport::Udp,
            stream: 4,
            src: "10.0.0.1:1".parse().unwrap(),
            dst: "10.0.0.2:2".parse().unwrap(),
            dir: Direction::ServerToClient,
        };
        let mut f = Map::new();
        f.insert("x".into(), 1.into());
        let r = Record::new(origin, "descriptor", "Ping".into(), f);
        assert_eq!(
            r.to_line(),
            "    12     3.500000 udp#4 10.0.0.1:1 > 10.0.0.2:2 Ping"
        );
        let j = r.to_json();
        assert_eq!(j["frame"], 12);
        assert_eq!(j["time"], 3.5);
        assert_eq!(j["epoch"], 1_000_000_003.5);
        assert_eq!(j["dir"], "resp>orig");
        assert_eq!(j["kind"], "descriptor");
        assert_eq!(j["x"], 1);
    }
}
