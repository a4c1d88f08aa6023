//! Gnutella connection handshakes: 0.4 (`GNUTELLA CONNECT/0.4` / `GNUTELLA OK`) and 0.6 (request and
//! status lines followed by an HTTP-like header block).
//!
//! Parsing is incremental: [`Handshake::parse`] is handed everything read so far and answers
//! [`Parsed::NeedMore`] until the blank line that ends the block has arrived, then the message and
//! the number of bytes it took. Bytes after the blank line belong to whatever follows (the next
//! handshake step or the descriptor stream) and are never looked at. A block that has not ended
//! within [`MAX_HANDSHAKE_HEAD`] bytes is an error, so a peer cannot make us buffer forever.
//! A reader that calls again after every read should keep a [`HeadScanner`] and use
//! [`Handshake::parse_from`]: the same answers, but each byte is searched once instead of on every
//! call (a head dribbled one byte per read otherwise costs quadratic time).
//!
//! Header blocks ([`Headers`]) keep every header in order with its original spelling, spacing and
//! folding, so a block read from the wire with CRLF line ends re-encodes to the same bytes. The same
//! header machinery serves the HTTP heads of [`crate::http`]. Names compare case-insensitively;
//! values are exposed unfolded (each continuation line joined with one space) and trimmed.
//!
//! Emitting: 0.4 lines end in bare LF (what every 0.4 servent expects), 0.6 blocks use CRLF.

use std::net::{IpAddr, SocketAddrV4};

use crate::descriptor::find_byte;
use crate::error::{DecodeError, Result};

/// Largest handshake block accepted, blank line included.
///
/// The biggest blocks in the captures are about 1.3 KiB (gtk-gnutella's with folded
/// `X-Try-Ultrapeers`); 16 KiB leaves ample room for verbose peers while bounding what a peer that
/// never sends the blank line can make us hold.
pub const MAX_HANDSHAKE_HEAD: usize = 16 * 1024;

/// Most headers accepted in one block (handshake or HTTP). Real blocks carry about twenty.
pub const MAX_HEADERS: usize = 256;

/// Outcome of an incremental parse over a growing buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The message has not ended yet: read more and call again with the whole buffer.
    NeedMore,
    /// A whole message; `consumed` bytes from the start of the buffer belong to it.
    Complete { message: T, consumed: usize },
}

impl<T> Parsed<T> {
    /// The message and its length, if complete.
    pub fn complete(self) -> Option<(T, usize)> {
        match self {
            Parsed::NeedMore => None,
            Parsed::Complete { message, consumed } => Some((message, consumed)),
        }
    }

    /// True when more input is needed.
    pub fn is_need_more(&self) -> bool {
        matches!(self, Parsed::NeedMore)
    }
}

/// One header of a block, as read (or as it will be written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The whole logical line without its final line end; continuation lines are joined with
    /// CRLF so the header re-encodes as it came.
    line: String,
    /// The name, without any spacing before the colon.
    name: String,
    /// The value: continuation lines joined with a single space, outer whitespace trimmed.
    value: String,
}

impl Header {
    /// A header to send, written `Name: value`.
    ///
    /// A value can never break the block: CR, LF and other control bytes are replaced by spaces,
    /// and bytes not allowed in a name (space, colon, controls) become `-`.
    pub fn new(name: &str, value: &str) -> Header {
        let name: String = if name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            name.to_string()
        } else {
            name.chars()
                .map(|c| {
                    if c.is_ascii_graphic() && c != ':' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        let unsafe_char = |c: char| c.is_control() && c != '\t';
        let value: String = if value.contains(unsafe_char) {
            let cleaned: String = value
                .chars()
                .map(|c| if unsafe_char(c) { ' ' } else { c })
                .collect();
            cleaned.trim_matches(is_ws).to_string()
        } else {
            value.trim_matches(is_ws).to_string()
        };
        let mut line = String::with_capacity(name.len() + 2 + value.len());
        line.push_str(&name);
        line.push_str(": ");
        line.push_str(&value);
        Header { line, name, value }
    }

    /// The header's name as spelled by the sender.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value, unfolded and trimmed.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The header as it appears on the wire, without the final line end.
    pub fn raw_line(&self) -> &str {
        &self.line
    }

    /// True if this header's name is `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// An ordered header block. Lookups ignore the case of names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    list: Vec<Header>,
}

impl Headers {
    /// An empty block.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Appends a header (see [`Header::new`] for how unsafe bytes are neutralised).
    pub fn push(&mut self, name: &str, value: &str) -> &mut Headers {
        self.list.push(Header::new(name, value));
        self
    }

    /// Appends a header that was already built or parsed.
    pub fn push_header(&mut self, header: Header) -> &mut Headers {
        self.list.push(header);
        self
    }

    /// Replaces every header called `name` by one with `value` (placed where the first was, or
    /// at the end).
    pub fn set(&mut self, name: &str, value: &str) -> &mut Headers {
        let header = Header::new(name, value);
        match self.list.iter().position(|h| h.is(name)) {
            Some(at) => {
                self.list[at] = header;
                let mut i = 0;
                self.list.retain(|h| {
                    let keep = i <= at || !h.is(name);
                    i += 1;
                    keep
                });
            }
            None => self.list.push(header),
        }
        self
    }

    /// Removes every header called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.list.len();
        self.list.retain(|h| !h.is(name));
        before - self.list.len()
    }

    /// The value of the first header called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.list.iter().find(|h| h.is(name)).map(Header::value)
    }

    /// The values of every header called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.list
            .iter()
            .filter(move |h| h.is(name))
            .map(Header::value)
    }

    /// Every header called `name` combined into one value, joined by `,` (the 0.6 draft says
    /// repeated headers are equivalent to one with the values comma-separated, in order).
    pub fn get_combined(&self, name: &str) -> Option<String> {
        let mut values = self.get_all(name);
        let mut combined = values.next()?.to_string();
        for value in values {
            combined.push(',');
            combined.push_str(value);
        }
        Some(combined)
    }

    /// True if a header called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.list.iter().any(|h| h.is(name))
    }

    /// True if any header called `name` lists `token` in its comma-separated value (ignoring
    /// case and any `;parameters`), e.g. `has_token("Accept-Encoding", "deflate")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|value| {
            value.split(',').any(|item| {
                let item = item.split(';').next().unwrap_or("");
                item.trim_matches(is_ws).eq_ignore_ascii_case(token)
            })
        })
    }

    /// The headers in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.list.iter()
    }

    /// Number of headers (a folded header counts once).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True if there is no header.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Bytes [`Headers::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        self.list.iter().map(|h| h.line.len() + 2).sum()
    }

    /// Writes each header followed by CRLF (not the blank line that ends a block).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for h in &self.list {
            out.extend_from_slice(h.line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    // --- Gnutella handshake headers -------------------------------------------------------

    /// `User-Agent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.get("User-Agent")
    }

    /// `Remote-IP`: the address the peer sees us at (accepts a bare IP or `ip:port`).
    pub fn remote_ip(&self) -> Option<IpAddr> {
        let value = self.get("Remote-IP")?;
        value
            .parse::<IpAddr>()
            .ok()
            .or_else(|| value.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
    }

    /// `X-Ultrapeer: True|False`; `None` when absent or neither word.
    pub fn ultrapeer(&self) -> Option<bool> {
        parse_bool(self.get("X-Ultrapeer")?)
    }

    /// `Bye-Packet`: the version the peer announces (e.g. `0.1`), meaning it understands Bye.
    pub fn bye_packet(&self) -> Option<&str> {
        self.get("Bye-Packet")
    }

    /// The peer accepts a deflate stream from us (`Accept-Encoding: deflate`).
    pub fn accepts_deflate(&self) -> bool {
        self.has_token("Accept-Encoding", "deflate")
    }

    /// The sender of this block will deflate what it sends next (`Content-Encoding: deflate`).
    pub fn content_deflate(&self) -> bool {
        self.has_token("Content-Encoding", "deflate")
    }

    /// Hosts from every `X-Try` header, in order.
    pub fn x_try(&self) -> Vec<SocketAddrV4> {
        self.get_all("X-Try").flat_map(parse_host_list).collect()
    }

    /// Hosts from every `X-Try-Ultrapeers` header, in order.
    pub fn x_try_ultrapeers(&self) -> Vec<SocketAddrV4> {
        self.get_all("X-Try-Ultrapeers")
            .flat_map(parse_host_list)
            .collect()
    }

    /// The address the peer listens on, from `Listen-IP` or `Node` (`ip:port`).
    pub fn listen_addr(&self) -> Option<SocketAddrV4> {
        self.get("Listen-IP")
            .or_else(|| self.get("Node"))
            .and_then(|v| parse_host_list(v).into_iter().next())
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

/// `True` / `False` in any case.
fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parses a host list as found in `X-Try`, `X-Try-Ultrapeers` and `X-Try-Hubs`: comma-separated
/// `ip:port` entries, with any spacing, each possibly followed by more words (a timestamp such as
/// `2022-03-07T03:22Z`). Entries that are not an IPv4 `ip:port` are skipped.
pub fn parse_host_list(value: &str) -> Vec<SocketAddrV4> {
    value
        .split(',')
        .filter_map(|entry| entry.split_whitespace().next())
        .filter_map(|addr| addr.parse::<SocketAddrV4>().ok())
        .collect()
}

/// Formats hosts for `X-Try` / `X-Try-Ultrapeers`: `ip:port,ip:port`.
pub fn format_host_list(hosts: &[SocketAddrV4]) -> String {
    let mut out = String::new();
    for (i, host) in hosts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&host.to_string());
    }
    out
}

/// One handshake block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// `GNUTELLA CONNECT/0.4`, no headers.
    Connect04,
    /// `GNUTELLA OK`, the 0.4 acceptance.
    Ok04,
    /// `GNUTELLA CONNECT/<version>` with headers (0.6 and later; also 0.4 if headers follow).
    Connect { version: String, headers: Headers },
    /// `GNUTELLA/<version> <code> <reason>` with headers: the second and third steps of 0.6.
    Status {
        version: String,
        code: u16,
        reason: String,
        headers: Headers,
    },
}

const GNUTELLA: &[u8] = b"GNUTELLA";

impl Handshake {
    /// A 0.6 connect request.
    pub fn connect06(headers: Headers) -> Handshake {
        Handshake::Connect {
            version: "0.6".to_string(),
            headers,
        }
    }

    /// A 0.6 status (`200 OK`, `503 Busy`, ...).
    pub fn status06(code: u16, reason: &str, headers: Headers) -> Handshake {
        Handshake::Status {
            version: "0.6".to_string(),
            code,
            reason: reason.to_string(),
            headers,
        }
    }

    /// Parses one block from the start of `buf` (see the module doc).
    ///
    /// Scans the whole buffer on every call; a reader that calls again as bytes arrive should use
    /// [`Handshake::parse_from`], which gives the same answers in one pass overall.
    pub fn parse(buf: &[u8]) -> Result<Parsed<Handshake>> {
        Handshake::parse_from(buf, &mut HeadScanner::new())
    }

    /// [`Handshake::parse`] for a buffer that grows between calls: `scan` remembers how far the
    /// blank line was searched for, so each call looks only at the new bytes (see [`HeadScanner`]
    /// for its contract; reset it after taking a block).
    pub fn parse_from(buf: &[u8], scan: &mut HeadScanner) -> Result<Parsed<Handshake>> {
        let probe = buf.get(..GNUTELLA.len()).unwrap_or(buf);
        if !GNUTELLA.starts_with(probe) {
            return Err(DecodeError::BadField("handshake start line"));
        }
        let Some(end) = scan.find_end(buf, MAX_HANDSHAKE_HEAD)? else {
            return Ok(Parsed::NeedMore);
        };
        let head = split_head(buf.get(..end).unwrap_or(buf));
        let start = head.start_line;
        let headers = parse_header_lines(head.header_lines)?;
        let message = if let Some(version) = start.strip_prefix(b"GNUTELLA CONNECT/") {
            let version = parse_version_token(version, "handshake version")?;
            if version == "0.4" && headers.is_empty() {
                Handshake::Connect04
            } else {
                Handshake::Connect { version, headers }
            }
        } else if start == b"GNUTELLA OK" {
            if !headers.is_empty() {
                return Err(DecodeError::BadField("headers after GNUTELLA OK"));
            }
            Handshake::Ok04
        } else if let Some(rest) = start.strip_prefix(b"GNUTELLA/") {
            let space = rest
                .iter()
                .position(|&b| b == b' ')
                .ok_or(DecodeError::BadField("handshake status line"))?;
            let version = parse_version_token(&rest[..space], "handshake version")?;
            let (code, reason) = parse_code_reason(&rest[space + 1..], "handshake status code")?;
            Handshake::Status {
                version,
                code,
                reason,
                headers,
            }
        } else {
            return Err(DecodeError::BadField("handshake start line"));
        };
        Ok(Parsed::Complete {
            message,
            consumed: end,
        })
    }

    /// The header block (empty for the 0.4 lines).
    pub fn headers(&self) -> Option<&Headers> {
        match self {
            Handshake::Connect04 | Handshake::Ok04 => None,
            Handshake::Connect { headers, .. } | Handshake::Status { headers, .. } => Some(headers),
        }
    }

    /// The status code of a status block (`GNUTELLA OK` counts as 200).
    pub fn code(&self) -> Option<u16> {
        match self {
            Handshake::Ok04 => Some(200),
            Handshake::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The first line, without its line end (e.g. `GNUTELLA/0.6 503 Busy`).
    pub fn start_line(&self) -> String {
        match self {
            Handshake::Connect04 => "GNUTELLA CONNECT/0.4".to_string(),
            Handshake::Ok04 => "GNUTELLA OK".to_string(),
            Handshake::Connect { version, .. } => format!("GNUTELLA CONNECT/{version}"),
            Handshake::Status {
                version,
                code,
                reason,
                ..
            } => {
                if reason.is_empty() {
                    format!("GNUTELLA/{version} {code:03}")
                } else {
                    format!("GNUTELLA/{version} {code:03} {reason}")
                }
            }
        }
    }

    /// Bytes [`Handshake::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        match self.headers() {
            None => self.start_line().len() + 2,
            Some(h) => self.start_line().len() + 2 + h.encoded_len() + 2,
        }
    }

    /// Writes the block with its final blank line: LF for the 0.4 lines, CRLF for 0.6 blocks.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.start_line().as_bytes());
        match self.headers() {
            None => out.extend_from_slice(b"\n\n"),
            Some(headers) => {
                out.extend_from_slice(b"\r\n");
                headers.encode(out);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// The encoded block as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

// --- Shared head machinery (also used by `giv` and `http`) -----------------------------------

/// Where the search for the blank line ending a head (handshake block, HTTP head, GIV line) got
/// to in a growing buffer, so that the next call looks only at the new bytes.
///
/// Without it, a head that arrives one byte per read is rescanned from its first byte on every
/// read: about n²/2 byte checks for an n-byte head, 134 million for a 16 KiB one. With it the whole
/// head costs one pass however it is split.
///
/// Contract: between calls the buffer may only grow at its end. Once a head has been taken (the
/// bytes drained from the buffer) or the buffer is replaced, call [`HeadScanner::reset`]. A
/// buffer shorter than what was already scanned is taken as a new buffer and scanned afresh.
/// Asking again after a head was found gives the same answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadScanner {
    /// Bytes of the buffer already searched: no blank line ends before this offset.
    scanned: usize,
    /// Start of the line that contains offset `scanned` (the line not yet ended).
    line_start: usize,
}

impl HeadScanner {
    /// A scanner for a new, empty buffer.
    pub fn new() -> HeadScanner {
        HeadScanner::default()
    }

    /// Forgets what was scanned, for a new head at the start of the buffer.
    pub fn reset(&mut self) {
        *self = HeadScanner::new();
    }

    /// How many bytes of the buffer have been searched so far.
    pub fn scanned(&self) -> usize {
        self.scanned
    }

    /// Like the stateless search: the offset just past the blank line (LF or CRLF) that closes the
    /// head, `Ok(None)` while it has not arrived and the buffer is within `max`, an error once the
    /// head is (or must be) longer than `max`. Only bytes after the last call's end are examined.
    pub fn find_end(&mut self, buf: &[u8], max: usize) -> Result<Option<usize>> {
        let window = buf.get(..max).unwrap_or(buf);
        if self.scanned > window.len() {
            // The buffer shrank (or the limit did): it is not the one scanned before.
            self.reset();
        }
        let mut pos = self.scanned;
        while let Some(offset) = window.get(pos..).and_then(|rest| find_byte(rest, b'\n')) {
            let lf = pos + offset;
            let line = window.get(self.line_start..lf).unwrap_or_default();
            if line.is_empty() || line == b"\r" {
                // Stay in front of the blank line, so that asking again finds it again.
                self.scanned = self.line_start;
                return Ok(Some(lf + 1));
            }
            self.line_start = lf + 1;
            pos = lf + 1;
        }
        self.scanned = window.len();
        if buf.len() >= max {
            Err(DecodeError::TooLong {
                len: buf.len(),
                max,
            })
        } else {
            Ok(None)
        }
    }
}

/// A complete head cut into its start line and its header lines (line ends removed).
pub(crate) struct HeadLines<'a> {
    pub start_line: &'a [u8],
    pub header_lines: Vec<&'a [u8]>,
}

/// Splits a head (ending with its blank line, as found by [`HeadScanner::find_end`]) into lines.
pub(crate) fn split_head(head: &[u8]) -> HeadLines<'_> {
    let mut lines = head.split(|&b| b == b'\n').map(strip_cr);
    let start_line = lines.next().unwrap_or(&[]);
    let header_lines = lines.take_while(|line| !line.is_empty()).collect();
    HeadLines {
        start_line,
        header_lines,
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Builds a header block from its lines, joining continuation lines (starting with SP or TAB).
pub(crate) fn parse_header_lines(lines: Vec<&[u8]>) -> Result<Headers> {
    let mut headers = Headers::new();
    for line in lines {
        let line =
            std::str::from_utf8(line).map_err(|_| DecodeError::BadField("header not UTF-8"))?;
        if line.starts_with([' ', '\t']) {
            let Some(last) = headers.list.last_mut() else {
                return Err(DecodeError::BadField("continuation line without a header"));
            };
            last.line.push_str("\r\n");
            last.line.push_str(line);
            let more = line.trim_matches(is_ws);
            if more.chars().any(|c| c.is_control() && c != '\t') {
                return Err(DecodeError::BadField("control byte in header value"));
            }
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            continue;
        }
        if headers.list.len() >= MAX_HEADERS {
            return Err(DecodeError::TooLong {
                len: headers.list.len() + 1,
                max: MAX_HEADERS,
            });
        }
        let colon = line
            .find(':')
            .ok_or(DecodeError::BadField("header line without a colon"))?;
        // Tolerate spacing between the name and the colon; the name itself is a token.
        let name = line[..colon].trim_end_matches(is_ws);
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DecodeError::BadField("header name"));
        }
        let value = line[colon + 1..].trim_matches(is_ws);
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(DecodeError::BadField("control byte in header value"));
        }
        headers.list.push(Header {
            line: line.to_string(),
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    Ok(headers)
}

/// A protocol version such as `0.6` or `1.1`: digits and dots only.
fn parse_version_token(bytes: &[u8], what: &'static str) -> Result<String> {
    if bytes.is_empty() || !bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return Err(DecodeError::BadField(what));
    }
    // Only ASCII digits and dots, so this cannot fail.
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| DecodeError::BadField(what))
}

/// `<3 digits>[ <reason>]`, as in status lines of handshakes and HTTP responses.
pub(crate) fn parse_code_reason(rest: &[u8], what: &'static str) -> Result<(u16, String)> {
    let (code, reason) = match rest.iter().position(|&b| b == b' ') {
        Some(sp) => (&rest[..sp], &rest[sp + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(DecodeError::BadField(what));
    }
    let code = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let reason = std::str::from_utf8(reason)
        .map_err(|_| DecodeError::BadField("status reason not UTF-8"))?;
    if reason.chars().any(|c| c.is_control() && c != '\t') {
        return Err(DecodeError::BadField("control byte in status reason"));
    }
    Ok((code, reason.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Handshake, usize) {
        Handshake::parse(buf)
            .expect("valid block")
            .complete()
            .expect("complete block")
    }

    #[test]
    fn connect04_with_lf_and_crlf() {
        assert_eq!(
            complete(b"GNUTELLA CONNECT/0.4\n\n"),
            (Handshake::Connect04, 22)
        );
        assert_eq!(
            complete(b"GNUTELLA CONNECT/0.4\r\n\r\n"),
            (Handshake::Connect04, 24)
        );
        assert_eq!(Handshake::Connect04.to_bytes(), b"GNUTELLA CONNECT/0.4\n\n");
        assert_eq!(Handshake::Connect04.encoded_len(), 22);
    }

    #[test]
    fn ok04_leaves_descriptor_bytes_alone() {
        let buf = b"GNUTELLA OK\n\n\x01\x02\x03";
        let (msg, used) = complete(buf);
        assert_eq!(msg, Handshake::Ok04);
        assert_eq!(&buf[used..], b"\x01\x02\x03");
        assert_eq!(Handshake::Ok04.to_bytes(), b"GNUTELLA OK\n\n");
        assert_eq!(msg.code(), Some(200));
    }

    #[test]
    fn connect06_headers_case_insensitive_and_reencoded() {
        let block = b"GNUTELLA CONNECT/0.6\r\nUser-Agent: Hazel/0.1\r\nx-ultrapeer: False\r\n\
Accept-Encoding: deflate\r\nBye-Packet: 0.1\r\nRemote-IP: 10.0.0.7\r\n\r\n";
        let (msg, used) = complete(block);
        assert_eq!(used, block.len());
        let h = msg.headers().expect("0.6 has headers");
        assert_eq!(h.len(), 5);
        assert_eq!(h.user_agent(), Some("Hazel/0.1"));
        assert_eq!(h.get("USER-AGENT"), Some("Hazel/0.1"));
        assert_eq!(h.ultrapeer(), Some(false));
        assert!(h.accepts_deflate());
        assert!(!h.content_deflate());
        assert_eq!(h.bye_packet(), Some("0.1"));
        assert_eq!(h.remote_ip(), Some("10.0.0.7".parse().unwrap()));
        assert_eq!(msg.to_bytes(), block);
    }

    #[test]
    fn status_lines() {
        let (msg, _) = complete(b"GNUTELLA/0.6 503 Too many leaf connections (300 max)\r\n\r\n");
        assert_eq!(msg.code(), Some(503));
        match &msg {
            Handshake::Status {
                version, reason, ..
            } => {
                assert_eq!(version, "0.6");
                assert_eq!(reason, "Too many leaf connections (300 max)");
            }
            other => panic!("expected a status, got {other:?}"),
        }
        let (msg, _) = complete(b"GNUTELLA/0.6 200\n\n");
        assert_eq!(msg.start_line(), "GNUTELLA/0.6 200");
        assert!(Handshake::parse(b"GNUTELLA/0.6 20x OK\r\n\r\n").is_err());
        assert!(Handshake::parse(b"GNUTELLA/0.6 2000 OK\r\n\r\n").is_err());
        assert!(Handshake::parse(b"GNUTELLA/ 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn folded_x_try_ultrapeers() {
        let block = b"GNUTELLA/0.6 503 Busy\r\nX-Try-Ultrapeers: 1.2.3.4:6346, 5.6.7.8:1,\r\n\t9.9.9.9:65535\r\n\
X-Try: 10.0.0.1:2 2022-03-07T03:22Z,bogus, 10.0.0.2:3\r\n\r\n";
        let (msg, _) = complete(block);
        let h = msg.headers().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(
            h.get("x-try-ultrapeers"),
            Some("1.2.3.4:6346, 5.6.7.8:1, 9.9.9.9:65535")
        );
        let ups: Vec<String> = h.x_try_ultrapeers().iter().map(|a| a.to_string()).collect();
        assert_eq!(ups, ["1.2.3.4:6346", "5.6.7.8:1", "9.9.9.9:65535"]);
        let tries: Vec<String> = h.x_try().iter().map(|a| a.to_string()).collect();
        assert_eq!(tries, ["10.0.0.1:2", "10.0.0.2:3"]);
        assert_eq!(msg.to_bytes(), block);
    }

    #[test]
    fn lf_only_block_reencodes_with_crlf() {
        let (msg, used) = complete(b"GNUTELLA CONNECT/0.6\nA: 1\n  more\nB:2\n\nrest");
        assert_eq!(used, 38);
        let h = msg.headers().unwrap();
        assert_eq!(h.get("a"), Some("1 more"));
        assert_eq!(h.get("b"), Some("2"));
        assert_eq!(
            msg.to_bytes(),
            b"GNUTELLA CONNECT/0.6\r\nA: 1\r\n  more\r\nB:2\r\n\r\n"
        );
    }

    #[test]
    fn every_prefix_needs_more() {
        let block = b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\nX-Try: 1.2.3.4:5,\r\n 6.7.8.9:10\r\n\r\n";
        for cut in 0..block.len() {
            assert_eq!(
                Handshake::parse(&block[..cut]),
                Ok(Parsed::NeedMore),
                "prefix of {cut} bytes"
            );
        }
        assert!(Handshake::parse(block).unwrap().complete().is_some());
    }

    #[test]
    fn garbage_is_rejected_early() {
        assert!(Handshake::parse(b"GET / HTTP/1.0").is_err());
        assert!(Handshake::parse(b"GNUTELLX").is_err());
        assert!(Handshake::parse(b"GNUTELLA HELLO\r\n\r\n").is_err());
        assert!(Handshake::parse(b"GNUTELLA OK\r\nX: y\r\n\r\n").is_err());
        assert_eq!(
            Handshake::parse(b"GNUTELLA CONNECT/0.6\r\n continuation first\r\n\r\n"),
            Err(DecodeError::BadField("continuation line without a header"))
        );
        assert_eq!(
            Handshake::parse(b"GNUTELLA CONNECT/0.6\r\nno colon here\r\n\r\n"),
            Err(DecodeError::BadField("header line without a colon"))
        );
        assert!(Handshake::parse(b"GNUTELLA CONNECT/0.6\r\nA: \xff\r\n\r\n").is_err());
    }

    #[test]
    fn head_over_cap_is_an_error() {
        let mut block = b"GNUTELLA CONNECT/0.6\r\n".to_vec();
        while block.len() < MAX_HANDSHAKE_HEAD {
            block.extend_from_slice(
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        assert!(matches!(
            Handshake::parse(&block),
            Err(DecodeError::TooLong {
                max: MAX_HANDSHAKE_HEAD,
                ..
            })
        ));
        // Ends exactly at the cap: accepted.
        let mut exact = b"GNUTELLA CONNECT/0.6\r\nX-Pad: ".to_vec();
        exact.resize(MAX_HANDSHAKE_HEAD - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        let (_, used) = complete(&exact);
        assert_eq!(used, MAX_HANDSHAKE_HEAD);
    }

    #[test]
    fn built_headers_cannot_break_the_block() {
        let mut h = Headers::new();
        h.push("X-Evil", "a\r\nInjected: yes");
        h.push("Bad Name:", "v");
        let msg = Handshake::status06(503, "Busy", h);
        let bytes = msg.to_bytes();
        let (back, used) = complete(&bytes);
        assert_eq!(used, bytes.len());
        let back_h = back.headers().unwrap();
        assert_eq!(back_h.len(), 2);
        assert!(!back_h.contains("Injected"));
        assert_eq!(back_h.get("Bad-Name-"), Some("v"));
    }

    #[test]
    fn set_replaces_and_remove_drops() {
        let mut h = Headers::new();
        h.push("A", "1").push("B", "2").push("a", "3");
        h.set("A", "9");
        assert_eq!(h.get_all("a").collect::<Vec<_>>(), ["9"]);
        assert_eq!(h.iter().map(Header::name).collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(h.remove("b"), 1);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn draft_examples() {
        // 0.6 draft §2.1: values of folded headers collapse to single spaces; the space after the
        // colon is not part of the value.
        let block =
            b"GNUTELLA CONNECT/0.6\r\nFirst-Field: this is the value of the first field\r\n\
Second-Field: this is the value\r\n    of the\r\n    second field\r\n\
Field: first\r\nField: second\r\nX-Try:1.2.3.4:1234,3.4.5.6:3456,\r\n\r\n";
        let (msg, _) = complete(block);
        let h = msg.headers().unwrap();
        assert_eq!(
            h.get("first-field"),
            Some("this is the value of the first field")
        );
        assert_eq!(
            h.get("second-field"),
            Some("this is the value of the second field")
        );
        assert_eq!(h.get_combined("field").as_deref(), Some("first,second"));
        assert_eq!(h.get_combined("absent"), None);
        let tries: Vec<String> = h.x_try().iter().map(|a| a.to_string()).collect();
        assert_eq!(tries, ["1.2.3.4:1234", "3.4.5.6:3456"]);
        assert_eq!(msg.to_bytes(), block);
        // Step 4 of the draft: "GNUTELLA/0.6 200 " with an empty reason.
        let (msg, used) = complete(b"GNUTELLA/0.6 200 \r\nX-Ultrapeer: TRUE\r\n\r\n");
        assert_eq!(used, 40);
        assert_eq!(msg.code(), Some(200));
        assert_eq!(msg.headers().unwrap().ultrapeer(), Some(true));
        // The draft's own X-Try-Ultrapeers example has a three-octet address: skipped.
        assert!(parse_host_list("24.37.144:6346").is_empty());
    }

    #[test]
    fn host_list_formats_and_parses() {
        let hosts = parse_host_list("1.2.3.4:5,6.7.8.9:10");
        assert_eq!(format_host_list(&hosts), "1.2.3.4:5,6.7.8.9:10");
        assert!(parse_host_list("").is_empty());
        assert!(parse_host_list("[::1]:5, host:6").is_empty());
    }

    /// A gtk-gnutella style 0.6 connect block, CRLF line ends, one folded header.
    const GTKG_CONNECT: &[u8] = b"GNUTELLA CONNECT/0.6\r\nUser-Agent: gtk-gnutella/1.2.1\r\n\
X-Ultrapeer: False\r\nX-Try-Ultrapeers: 1.2.3.4:6346,\r\n  5.6.7.8:6346\r\n\
Accept-Encoding: deflate\r\n\r\n\x00\x01";

    /// Feeds `buf` one byte at a time through one scanner and returns the first answer that is
    /// not "need more", with the length it was given at, checking each step against the
    /// stateless parse of the same prefix.
    fn dribble(buf: &[u8]) -> (usize, Result<Parsed<Handshake>>) {
        let mut scan = HeadScanner::new();
        for n in 0..=buf.len() {
            let got = Handshake::parse_from(&buf[..n], &mut scan);
            assert_eq!(got, Handshake::parse(&buf[..n]), "prefix of {n} bytes");
            if got != Ok(Parsed::NeedMore) {
                return (n, got);
            }
        }
        (buf.len(), Ok(Parsed::NeedMore))
    }

    #[test]
    fn dribbled_block_parses_like_whole_block() {
        let (n, got) = dribble(GTKG_CONNECT);
        assert_eq!(
            n,
            GTKG_CONNECT.len() - 2,
            "complete as soon as the blank line is in"
        );
        let (message, consumed) = got.unwrap().complete().unwrap();
        assert_eq!(consumed, n);
        assert_eq!(message.headers().unwrap().x_try_ultrapeers().len(), 2);
        // LF-only and the 0.4 lines, byte by byte.
        for block in [
            &b"GNUTELLA CONNECT/0.4\n\n"[..],
            b"GNUTELLA OK\n\n",
            b"GNUTELLA/0.6 200 OK\nX-Ultrapeer: True\n\n",
            b"GNUTELLA/0.6 503 Busy\r\n\r\n",
        ] {
            let (n, got) = dribble(block);
            assert_eq!(n, block.len());
            assert!(got.unwrap().complete().is_some(), "{block:?}");
        }
    }

    #[test]
    fn scanner_reads_each_byte_once_and_repeats_its_answer() {
        let mut scan = HeadScanner::new();
        let end = GTKG_CONNECT.len() - 2;
        for n in 0..end {
            assert_eq!(
                scan.find_end(&GTKG_CONNECT[..n], MAX_HANDSHAKE_HEAD),
                Ok(None)
            );
            assert_eq!(scan.scanned(), n, "resumes where the last call stopped");
        }
        for _ in 0..3 {
            assert_eq!(
                scan.find_end(GTKG_CONNECT, MAX_HANDSHAKE_HEAD),
                Ok(Some(end)),
                "asking again after the end was found gives the same end"
            );
        }
        // After the block is taken, a reset scanner finds the next head in the new buffer.
        scan.reset();
        assert_eq!(scan.find_end(b"GNUTELLA OK\n\n", 64), Ok(Some(13)));
    }

    #[test]
    fn scanner_starts_over_on_a_shorter_buffer() {
        let mut scan = HeadScanner::new();
        assert_eq!(
            scan.find_end(b"GNUTELLA/0.6 200 OK\r\nA: b\r\n", 1024),
            Ok(None)
        );
        // The caller replaced the buffer without a reset: it is shorter, so it is rescanned.
        assert_eq!(scan.find_end(b"X\r\n\r\n", 1024), Ok(Some(5)));
    }

    #[test]
    fn cr_and_lf_of_the_blank_line_in_separate_reads() {
        let block = b"GNUTELLA/0.6 200 OK\r\nA: b\r\n\r\n";
        let mut scan = HeadScanner::new();
        let cut = block.len() - 1;
        assert_eq!(
            Handshake::parse_from(&block[..cut], &mut scan),
            Ok(Parsed::NeedMore)
        );
        let (message, used) = Handshake::parse_from(block, &mut scan)
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!((message.code(), used), (Some(200), block.len()));
    }

    #[test]
    fn dribbled_head_over_cap_fails_at_the_cap() {
        // A header line that never ends: the error comes at exactly MAX_HANDSHAKE_HEAD bytes,
        // as with the stateless parse, however the bytes arrive.
        let mut long = b"GNUTELLA CONNECT/0.6\r\nX-Junk: ".to_vec();
        long.resize(MAX_HANDSHAKE_HEAD + 10, b'a');
        let mut scan = HeadScanner::new();
        let mut failed_at = None;
        for n in (0..=long.len()).step_by(7) {
            match Handshake::parse_from(&long[..n], &mut scan) {
                Ok(Parsed::NeedMore) => {}
                Err(e) => {
                    assert_eq!(Err(e.clone()), Handshake::parse(&long[..n]));
                    assert!(matches!(e, DecodeError::TooLong { .. }));
                    failed_at = Some(n);
                    break;
                }
                Ok(other) => panic!("{other:?}"),
            }
        }
        let at = failed_at.expect("the cap is enforced");
        assert!((MAX_HANDSHAKE_HEAD..MAX_HANDSHAKE_HEAD + 7).contains(&at));
    }
}
