//! OpenNap frames inside a TCP stream: recognising a stream as OpenNap from
//! its first frame, then one record per frame with the message number, its
//! name, the payload text, and whether Hazel's OpenNap codec accepts it.

use hazel_protocol::napster::{self, ClientMessage, ServerMessage};
use hazel_protocol::pcap::Direction;
use serde_json::{Map, Value};

use super::record::quoted;

/// What the next frame in a buffer is.
pub enum Next {
    NeedMore,
    Message {
        consumed: usize,
        text: String,
        fields: Map<String, Value>,
    },
    Error(String),
}

/// Message names from the OpenNap protocol description.
pub fn message_name(kind: u16) -> &'static str {
    match kind {
        0 => "error",
        2 => "login",
        3 => "login ack",
        6 => "new user login",
        7 => "nick check",
        8 => "nick not registered",
        9 => "nick registered",
        10 => "invalid nick",
        100 => "share",
        102 => "unshare",
        110 => "unshare all",
        200 => "search",
        201 => "search result",
        202 => "end of search",
        203 => "download request",
        204 => "download ack",
        206 => "download error",
        211 => "browse",
        212 => "browse entry",
        213 => "browse end",
        214 => "server stats",
        218 => "downloading",
        219 => "download complete",
        220 => "uploading",
        221 => "upload complete",
        404 => "error message",
        500 => "firewalled download request",
        501 => "firewalled download ack",
        607 => "upload request",
        608 => "upload accept",
        621 => "motd",
        750 => "server ping",
        751 => "ping user",
        752 => "pong user",
        870 => "share batch",
        _ => "unknown",
    }
}

fn printable(payload: &[u8]) -> bool {
    payload.iter().all(|&b| b >= 0x20 || b == b'\t')
}

/// Decides from the first bytes of a direction whether it is OpenNap:
/// `Some(true)` when its first frame is a known message in the right
/// direction with a text payload, `Some(false)` when it cannot be,
/// `None` to wait for more bytes.
pub fn sniff(buf: &[u8], dir: Direction) -> Option<bool> {
    let Ok((len, kind)) = napster::parse_header(buf) else {
        return None;
    };
    if len > napster::DEFAULT_MAX_PAYLOAD || message_name(kind) == "unknown" {
        return Some(false);
    }
    // Decided as soon as the payload's first bytes show it is not text.
    let end = buf.len().min(napster::HEADER_LEN + len);
    if !printable(buf.get(napster::HEADER_LEN..end).unwrap_or_default()) {
        return Some(false);
    }
    let payload = buf.get(napster::HEADER_LEN..napster::HEADER_LEN + len)?;
    let known = match dir {
        Direction::ClientToServer => !matches!(
            ClientMessage::parse(kind, payload),
            Ok(ClientMessage::Unknown { .. }) | Err(_)
        ),
        Direction::ServerToClient => !matches!(
            ServerMessage::parse(kind, payload),
            Ok(ServerMessage::Unknown { .. }) | Err(_)
        ),
    };
    Some(known)
}

/// Variant name of a decoded message (`Login`, `Search`, …).
fn variant(debug: String) -> String {
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("")
        .to_string()
}

/// Reads the next frame from `buf`.
pub fn next(buf: &[u8], dir: Direction) -> Next {
    let Ok((len, kind)) = napster::parse_header(buf) else {
        return Next::NeedMore;
    };
    if len > napster::DEFAULT_MAX_PAYLOAD {
        return Next::Error(format!(
            "declared length {len} over the {} limit",
            napster::DEFAULT_MAX_PAYLOAD
        ));
    }
    let Some(payload) = buf.get(napster::HEADER_LEN..napster::HEADER_LEN + len) else {
        return Next::NeedMore;
    };
    let decoded = match dir {
        Direction::ClientToServer => {
            ClientMessage::parse(kind, payload).map(|m| variant(format!("{m:?}")))
        }
        Direction::ServerToClient => {
            ServerMessage::parse(kind, payload).map(|m| variant(format!("{m:?}")))
        }
    };
    let name = message_name(kind);
    let mut f = Map::new();
    f.insert("type".into(), kind.into());
    f.insert("name".into(), name.into());
    f.insert("payload".into(), String::from_utf8_lossy(payload).into());
    let status = match &decoded {
        Ok(v) => {
            f.insert("message".into(), v.clone().into());
            String::new()
        }
        Err(e) => {
            f.insert("error".into(), e.to_string().into());
            format!(" MALFORMED ({e})")
        }
    };
    Next::Message {
        consumed: napster::HEADER_LEN + len,
        text: format!("OpenNap {kind} {name}{status} {}", quoted(payload, 120)),
        fields: f,
    }
}
