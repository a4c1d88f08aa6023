//! What `hazel-trace` prints: one [`Record`] per message seen in a capture,
//! rendered either as a readable line or as one JSON object per line.
//!
//! Every string that came from the capture (names, header values, vendor
//! codes, reasons, nicks) reaches the terminal escaped by the shared rules of
//! [`hazel_protocol::text`]: through [`quoted`] or [`shown`] where a line is
//! built, and once more over the whole line in [`Record::to_line`], so a
//! field that was missed still cannot drive the terminal. JSON keeps the
//! exact values: only JSON escapes are used, and [`to_json_line`] writes the
//! characters a terminal would act on (C1 controls, bidi and zero-width
//! characters) as `\uXXXX` escapes, which a JSON reader turns back into the
//! same characters.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;

use hazel_protocol::pcap::{Direction, Timestamp};
use hazel_protocol::text::{escape, escape_bytes, is_unsafe, Escaped};
use serde::Serialize;
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
    /// `opennap`, `opennap_data`, `gap`, `resync` (descriptors found again by
    /// their headers), `note`, `error`.
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
    /// Safe for a terminal whatever the capture held.
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
            Escaped::new(&self.text)
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

/// A string from the capture for a line: in double quotes, cut to `max`
/// characters (then `…`), with `"` and `\\` escaped for the quotes and
/// everything else by the shared rules ([`hazel_protocol::text`]): controls
/// as `\n`, `\e`, `\xNN`, C1, bidi and zero-width characters as `\u{NNNN}`,
/// bytes that are not UTF-8 as `\xNN`.
pub fn quoted(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    let mut n = 0;
    let mut cut = false;
    'chunks: for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if n == max {
                cut = true;
                break 'chunks;
            }
            n += 1;
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if is_unsafe(c) => out.push_str(&escape(c.encode_utf8(&mut [0; 4]))),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            if n == max {
                cut = true;
                break 'chunks;
            }
            n += 1;
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    if cut {
        out.push('…');
    }
    out.push('"');
    out
}

/// A string from the capture shown without quotes (a header value, a vendor
/// code): escaped by the shared rules, cut to `max` characters.
pub fn shown(text: &str, max: usize) -> String {
    Escaped::new(text).max_chars(max).to_string()
}

/// [`shown`] for bytes that may not be UTF-8.
pub fn shown_bytes(bytes: &[u8]) -> String {
    escape_bytes(bytes)
}

/// A JSON value as one line, with the characters a terminal would act on
/// written as `\uXXXX` escapes (the value read back is exactly the same).
pub fn to_json_line(value: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, TerminalSafe);
    if value.serialize(&mut ser).is_err() {
        return String::from("null");
    }
    // The formatter writes only valid UTF-8 (serde_json's own output, or ASCII escapes).
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// serde_json's compact output, with every character [`is_unsafe`] escaped.
/// serde_json already escapes `"`, `\\` and C0 controls; this adds DEL, the C1
/// controls and the bidi and zero-width characters (all in the BMP).
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
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
        assert_eq!(quoted(b"a\"b\\c\n", 10), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(quoted("héllo wörld".as_bytes(), 5), "\"héllo…\"");
        assert_eq!(quoted("héllo".as_bytes(), 5), "\"héllo\"");
        assert_eq!(quoted(&[0xff, b'a'], 5), "\"\\xffa\"");
        assert_eq!(quoted(&[b'a', 0xff, b'b'], 2), "\"a\\xff…\"");
        // The shared rules: terminal controls, C1, bidi overrides.
        assert_eq!(
            quoted(
                "\u{1b}]2;x\u{7}\u{1b}[2J\u{9b}1m\u{202e}gpj.exe".as_bytes(),
                100
            ),
            "\"\\e]2;x\\x07\\e[2J\\u{9b}1m\\u{202e}gpj.exe\""
        );
        assert_eq!(shown("ok\u{1b}[2J", 10), "ok\\e[2J");
        assert_eq!(shown("abcdef", 3), "abc…");
        assert_eq!(shown_bytes(b"\xe9\n"), "\\xe9\\n");
    }

    #[test]
    fn json_lines_escape_what_a_terminal_acts_on_and_keep_the_value() {
        let nasty = "a\u{1b}[2J\u{9b}31m\u{202e}gpj.exe\u{7f}\u{200b}\"\\\nz é";
        let v = serde_json::json!({"name": nasty, nasty: 1});
        let line = to_json_line(&v);
        assert!(!line.chars().any(is_unsafe), "{line}");
        assert!(line.contains("\\u009b") && line.contains("\\u202e") && line.contains('é'));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, v);
        assert_eq!(back["name"], nasty);
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
