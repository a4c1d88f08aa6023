//! HTTP heads of Gnutella file transfers: request and status lines, header blocks, `Range` and
//! `Content-Range` values, and the `/get/`, `/uri-res/N2R` and `/uri-res/N2X` resources.
//!
//! Real transfer traffic is untidy (see PROTOCOL-NOTES §4): raw spaces inside the request path,
//! the version-less status line `HTTP 503 Server Busy`, `Referrer:` for `Referer:`, requests split
//! over several segments, bare-LF line ends, folded header lines in requests, and
//! `Content-Range: bytes=a-b/total` with a non-RFC `=`. The request line is therefore parsed by
//! hand (the method is the first word, the version the last, everything between is the target),
//! and header blocks go through the tolerant parser shared with [`crate::handshake`] (httparse
//! rejects folded request headers and spaces in the path).
//!
//! Heads are parsed incrementally ([`Parsed::NeedMore`] until the blank line) with a cap of
//! [`MAX_HTTP_HEAD`]; a body that follows is left in the buffer for the caller. Readers that call
//! again after every read keep a [`HeadScanner`] and use `parse_from`, so each byte is searched
//! for the blank line once.

use std::fmt;

use crate::error::{DecodeError, Result};
use crate::giv::parse_u32;
use crate::handshake::{parse_code_reason, parse_header_lines, split_head};
pub use crate::handshake::{HeadScanner, Header, Headers, Parsed};

/// Largest request or response head accepted, blank line included.
///
/// Captured heads are under 1.5 KiB; 16 KiB is generous for long file names and URN lists and
/// bounds what a peer can make us buffer before the head ends.
pub const MAX_HTTP_HEAD: usize = 16 * 1024;

/// Longest method token accepted (`OPTIONS` is 7; anything much longer is not HTTP).
const MAX_METHOD_LEN: usize = 16;

/// An HTTP version `HTTP/<major>.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpVersion {
    pub major: u8,
    pub minor: u8,
}

impl HttpVersion {
    /// HTTP/1.0, what 0.4-era servents speak.
    pub const HTTP_10: HttpVersion = HttpVersion { major: 1, minor: 0 };
    /// HTTP/1.1.
    pub const HTTP_11: HttpVersion = HttpVersion { major: 1, minor: 1 };

    /// Parses `HTTP/<digits>.<digits>`.
    pub fn parse(token: &[u8]) -> Option<HttpVersion> {
        let rest = token.strip_prefix(b"HTTP/")?;
        let dot = rest.iter().position(|&b| b == b'.')?;
        let major = parse_u32(&rest[..dot])?;
        let minor = parse_u32(&rest[dot + 1..])?;
        Some(HttpVersion {
            major: u8::try_from(major).ok()?,
            minor: u8::try_from(minor).ok()?,
        })
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/{}.{}", self.major, self.minor)
    }
}

/// A request method. Hazel serves `GET` and `HEAD`; others are kept so the server can answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    /// Any other token, as sent.
    Other(String),
}

impl Method {
    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Other(s) => s,
        }
    }
}

/// Method names: RFC 9110 allows any token, but every real method is upper-case letters, and
/// insisting on that rejects non-HTTP bytes (`No listener`, TLS records) at the first byte.
fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request target exactly as sent (raw spaces and percent escapes included); see
    /// [`Request::resource`] for its meaning.
    pub target: Vec<u8>,
    pub version: HttpVersion,
    pub headers: Headers,
}

impl Request {
    /// A request with no headers yet.
    pub fn new(method: Method, target: Vec<u8>, version: HttpVersion) -> Request {
        Request {
            method,
            target,
            version,
            headers: Headers::new(),
        }
    }

    /// Parses a request head from the start of `buf` (see the module doc).
    ///
    /// Scans the whole buffer on every call; a reader that calls again as bytes arrive should use
    /// [`Request::parse_from`].
    pub fn parse(buf: &[u8]) -> Result<Parsed<Request>> {
        Request::parse_from(buf, &mut HeadScanner::new())
    }

    /// [`Request::parse`] for a buffer that grows between calls: `scan` remembers how far the
    /// blank line was searched for, so each call looks only at the new bytes (see
    /// [`HeadScanner`]; reset it after taking a head).
    pub fn parse_from(buf: &[u8], scan: &mut HeadScanner) -> Result<Parsed<Request>> {
        // Reject non-HTTP bytes early instead of buffering up to the cap.
        for (i, &b) in buf.iter().take(MAX_METHOD_LEN + 1).enumerate() {
            if b == b' ' && i > 0 {
                break;
            }
            if !is_method_byte(b) || i == MAX_METHOD_LEN {
                return Err(DecodeError::BadField("request method"));
            }
        }
        let Some(end) = scan.find_end(buf, MAX_HTTP_HEAD)? else {
            return Ok(Parsed::NeedMore);
        };
        let head = split_head(buf.get(..end).unwrap_or(buf));
        let line = head.start_line;
        let sp = line
            .iter()
            .position(|&b| b == b' ')
            .ok_or(DecodeError::BadField("request line"))?;
        let method = match &line[..sp] {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            other => Method::Other(
                std::str::from_utf8(other)
                    .map_err(|_| DecodeError::BadField("request method"))?
                    .to_string(),
            ),
        };
        let rest = trim_ws(&line[sp + 1..]);
        let last_sp = rest
            .iter()
            .rposition(|&b| b == b' ' || b == b'\t')
            .ok_or(DecodeError::BadField("request version"))?;
        let version = HttpVersion::parse(&rest[last_sp + 1..])
            .ok_or(DecodeError::BadField("request version"))?;
        let target = trim_ws(&rest[..last_sp]);
        if target.is_empty() || target.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(DecodeError::BadField("request target"));
        }
        let headers = parse_header_lines(head.header_lines)?;
        Ok(Parsed::Complete {
            message: Request {
                method,
                target: target.to_vec(),
                version,
                headers,
            },
            consumed: end,
        })
    }

    /// What the target asks for.
    pub fn resource(&self) -> Resource {
        Resource::from_target(&self.target)
    }

    /// The `Range` header: `None` when absent, else its parse.
    pub fn range(&self) -> Option<Result<ByteRange>> {
        self.headers.get("Range").map(ByteRange::parse)
    }

    /// Whether the client wants the connection kept open after the response: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: Keep-Alive`.
    pub fn keep_alive(&self) -> bool {
        if self.headers.has_token("Connection", "close") {
            false
        } else if self.version >= HttpVersion::HTTP_11 {
            true
        } else {
            self.headers.has_token("Connection", "keep-alive")
        }
    }

    /// Bytes [`Request::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        self.method.as_str().len()
            + 1
            + self.target.len()
            + 1
            + self.version.to_string().len()
            + 2
            + self.headers.encoded_len()
            + 2
    }

    /// Writes the request line, the headers and the blank line, CRLF throughout.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.push(b' ');
        out.extend_from_slice(self.version.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        self.headers.encode(out);
        out.extend_from_slice(b"\r\n");
    }

    /// The encoded head as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// What a request target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `/get/<index>/<name>` (with or without a trailing `/`); `name` is percent-decoded bytes.
    File { index: u32, name: Vec<u8> },
    /// `/uri-res/N2R?urn:sha1:<32 base32>` (or a `urn:bitprint:` whose first half is the SHA-1).
    Sha1 { sha1: [u8; 20] },
    /// `/uri-res/N2X?urn:sha1:<32 base32>`: the THEX tree of that file (see [`crate::thex`]).
    /// gtk-gnutella may ask with `urn:bitprint:<sha1>.<tiger root>`; `tiger` is then the root it
    /// expects.
    Tree {
        sha1: [u8; 20],
        tiger: Option<[u8; 24]>,
    },
    /// A push-proxy request: relay a Push to the firewalled leaf `guid`
    /// (`/gnutella/push-proxy?ServerId=<base32>&file=<index>`, LimeWire's and
    /// gtk-gnutella's form; also `/gnutella/pushproxy?` and
    /// `/gnet/push-proxy?guid=<hex>`). `file` is 0 when not given.
    PushProxy { guid: [u8; 16], file: u32 },
    /// Anything else, raw.
    Other(Vec<u8>),
}

/// Reads a push-proxy query: `key` names the servent id (base32, 26 or 32
/// characters, or hex when `hex`), `file` the index.
fn push_proxy_query(query: &[u8], key: &[u8], hex: bool) -> Option<Resource> {
    let mut guid = None;
    let mut file = 0;
    for pair in query.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => continue,
        };
        let value = percent_decode(value);
        if name.eq_ignore_ascii_case(key) {
            let decoded = if hex {
                data_encoding::HEXLOWER_PERMISSIVE.decode(&value).ok()
            } else {
                let upper = value.to_ascii_uppercase();
                let trimmed: Vec<u8> = upper.iter().copied().filter(|&b| b != b'=').collect();
                data_encoding::BASE32_NOPAD.decode(&trimmed).ok()
            };
            guid = decoded.and_then(|d| <[u8; 16]>::try_from(d.as_slice()).ok());
        } else if name.eq_ignore_ascii_case(b"file") {
            file = parse_u32(&value)?;
        }
    }
    guid.map(|guid| Resource::PushProxy { guid, file })
}

impl Resource {
    /// Interprets a raw request target.
    pub fn from_target(target: &[u8]) -> Resource {
        if let Some(rest) = target.strip_prefix(b"/get/") {
            if let Some(slash) = rest.iter().position(|&b| b == b'/') {
                if let Some(index) = parse_u32(&rest[..slash]) {
                    let name = &rest[slash + 1..];
                    let name = name.strip_suffix(b"/").unwrap_or(name);
                    return Resource::File {
                        index,
                        name: percent_decode(name),
                    };
                }
            }
        }
        if let Some(query) = strip_prefix_ignore_case(target, b"/uri-res/N2R?") {
            if let Some(sha1) = parse_sha1_urn(query) {
                return Resource::Sha1 { sha1 };
            }
        }
        if let Some(query) = strip_prefix_ignore_case(target, b"/uri-res/N2X?") {
            if let Some(sha1) = parse_sha1_urn(query) {
                let tiger = strip_prefix_ignore_case(query, b"urn:bitprint:")
                    .and_then(|rest| rest.get(33..))
                    .and_then(crate::thex::parse_tiger_base32);
                return Resource::Tree { sha1, tiger };
            }
        }
        for (prefix, key, hex) in [
            (&b"/gnutella/push-proxy?"[..], &b"serverid"[..], false),
            (&b"/gnutella/pushproxy?"[..], &b"serverid"[..], false),
            (&b"/gnet/push-proxy?"[..], &b"guid"[..], true),
        ] {
            if let Some(query) = strip_prefix_ignore_case(target, prefix) {
                if let Some(resource) = push_proxy_query(query, key, hex) {
                    return resource;
                }
            }
        }
        Resource::Other(target.to_vec())
    }

    /// The request target that asks for this resource (names percent-encoded).
    pub fn to_target(&self) -> Vec<u8> {
        match self {
            Resource::File { index, name } => {
                let mut t = format!("/get/{index}/").into_bytes();
                t.extend_from_slice(percent_encode(name).as_bytes());
                t
            }
            Resource::Sha1 { sha1 } => {
                let mut t = b"/uri-res/N2R?urn:sha1:".to_vec();
                t.extend_from_slice(data_encoding::BASE32.encode(sha1).as_bytes());
                t
            }
            Resource::PushProxy { guid, file } => format!(
                "/gnutella/push-proxy?ServerId={}&file={file}",
                data_encoding::BASE32_NOPAD.encode(guid)
            )
            .into_bytes(),
            Resource::Tree { sha1, tiger } => {
                let mut t = b"/uri-res/N2X?".to_vec();
                match tiger {
                    None => t.extend_from_slice(crate::huge::sha1_urn(sha1).as_bytes()),
                    Some(tiger) => t.extend_from_slice(
                        crate::huge::Urn::Bitprint {
                            sha1: *sha1,
                            tiger: *tiger,
                        }
                        .to_bytes()
                        .as_slice(),
                    ),
                }
                t
            }
            Resource::Other(raw) => raw.clone(),
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `urn:sha1:<32 base32>` or `urn:bitprint:<32 base32>.<39 base32>` (case-insensitive) → SHA-1.
fn parse_sha1_urn(urn: &[u8]) -> Option<[u8; 20]> {
    let b32 = if let Some(rest) = strip_prefix_ignore_case(urn, b"urn:sha1:") {
        (rest.len() == 32).then_some(rest)?
    } else {
        let rest = strip_prefix_ignore_case(urn, b"urn:bitprint:")?;
        match (rest.get(..32), rest.get(32..33)) {
            (Some(sha1), Some(b".")) => sha1,
            _ => return None,
        }
    };
    let upper = b32.to_ascii_uppercase();
    let bytes = data_encoding::BASE32.decode(&upper).ok()?;
    bytes.try_into().ok()
}

/// Decodes `%XX` escapes into bytes. A `%` not followed by two hex digits is kept as is (real
/// clients send raw `%` in names); `+` is not a space in a path.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                input.get(i + 1).and_then(|&c| hex_digit(c)),
                input.get(i + 2).and_then(|&c| hex_digit(c)),
            ) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a name for a path segment: letters, digits and `-._~()!*',;=&+@$` stay, every
/// other byte (space, `/`, `%`, `?`, `#`, non-ASCII, ...) becomes `%XX`.
pub fn percent_encode(name: &[u8]) -> String {
    const KEEP: &[u8] = b"-._~()!*',;=&+@$";
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || KEEP.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `None` for the version-less `HTTP 503 Server Busy` of old BearShare.
    pub version: Option<HttpVersion>,
    pub code: u16,
    pub reason: String,
    pub headers: Headers,
}

const HTTP: &[u8] = b"HTTP";

impl Response {
    /// An HTTP/1.1 response with no headers yet.
    pub fn new(code: u16, reason: &str) -> Response {
        Response {
            version: Some(HttpVersion::HTTP_11),
            code,
            reason: reason.to_string(),
            headers: Headers::new(),
        }
    }

    /// Parses a response head from the start of `buf` (see the module doc).
    ///
    /// Scans the whole buffer on every call; a reader that calls again as bytes arrive should use
    /// [`Response::parse_from`].
    pub fn parse(buf: &[u8]) -> Result<Parsed<Response>> {
        Response::parse_from(buf, &mut HeadScanner::new())
    }

    /// [`Response::parse`] for a buffer that grows between calls (see [`HeadScanner`]; reset it
    /// after taking a head).
    pub fn parse_from(buf: &[u8], scan: &mut HeadScanner) -> Result<Parsed<Response>> {
        let probe = buf.get(..HTTP.len()).unwrap_or(buf);
        if !HTTP.starts_with(probe) {
            return Err(DecodeError::BadField("status line"));
        }
        let Some(end) = scan.find_end(buf, MAX_HTTP_HEAD)? else {
            return Ok(Parsed::NeedMore);
        };
        let head = split_head(buf.get(..end).unwrap_or(buf));
        let line = head.start_line;
        let sp = line
            .iter()
            .position(|&b| b == b' ')
            .ok_or(DecodeError::BadField("status line"))?;
        let version = match &line[..sp] {
            b"HTTP" => None,
            token => Some(HttpVersion::parse(token).ok_or(DecodeError::BadField("status line"))?),
        };
        let (code, reason) = parse_code_reason(&line[sp + 1..], "status code")?;
        let headers = parse_header_lines(head.header_lines)?;
        Ok(Parsed::Complete {
            message: Response {
                version,
                code,
                reason,
                headers,
            },
            consumed: end,
        })
    }

    /// `Content-Length`: `Ok(None)` when absent, an error when malformed or contradictory.
    pub fn content_length(&self) -> Result<Option<u64>> {
        content_length(&self.headers)
    }

    /// `Content-Range`: `None` when absent, else its parse.
    pub fn content_range(&self) -> Option<Result<ContentRange>> {
        self.headers.get("Content-Range").map(ContentRange::parse)
    }

    /// The status line without its line end.
    pub fn status_line(&self) -> String {
        let version = match self.version {
            Some(v) => v.to_string(),
            None => "HTTP".to_string(),
        };
        if self.reason.is_empty() {
            format!("{version} {:03}", self.code)
        } else {
            format!("{version} {:03} {}", self.code, self.reason)
        }
    }

    /// Bytes [`Response::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        self.status_line().len() + 2 + self.headers.encoded_len() + 2
    }

    /// Writes the status line, the headers and the blank line, CRLF throughout.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.status_line().as_bytes());
        out.extend_from_slice(b"\r\n");
        self.headers.encode(out);
        out.extend_from_slice(b"\r\n");
    }

    /// The encoded head as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

/// `Content-Length` of a header block: `Ok(None)` when absent; every copy must agree.
pub fn content_length(headers: &Headers) -> Result<Option<u64>> {
    let mut found = None;
    for value in headers.get_all("Content-Length") {
        let n = parse_u64(value.as_bytes()).ok_or(DecodeError::BadField("Content-Length"))?;
        if found.is_some_and(|f| f != n) {
            return Err(DecodeError::BadField("Content-Length"));
        }
        found = Some(n);
    }
    Ok(found)
}

/// Decimal digits only, within u64.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// An inclusive span of bytes of a file, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteSpan {
    pub first: u64,
    pub last: u64,
}

impl ByteSpan {
    /// Number of bytes in the span (at least 1 for a valid span).
    pub fn len(&self) -> u64 {
        self.last.saturating_sub(self.first).saturating_add(1)
    }

    /// A span always holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A single `Range: bytes=...` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteRange {
    /// `bytes=a-b`, both inclusive (`a <= b`).
    FromTo { first: u64, last: u64 },
    /// `bytes=a-`: from `a` to the end.
    From { first: u64 },
    /// `bytes=-n`: the last `n` bytes.
    Last { len: u64 },
}

impl ByteRange {
    /// Parses a `Range` value. Accepted: `bytes=a-b`, `bytes=a-`, `bytes=-n`, with any case of
    /// `bytes`, spaces around `=` and `-`, and `bytes a-b` without `=`. Several ranges
    /// (`a-b,c-d`) are an error: Hazel serves one range, and a server may ignore `Range`.
    pub fn parse(value: &str) -> Result<ByteRange> {
        let bad = DecodeError::BadField("Range");
        let v = value.trim_matches(|c| c == ' ' || c == '\t');
        let unit = v.get(..5).ok_or(bad.clone())?;
        if !unit.eq_ignore_ascii_case("bytes") {
            return Err(bad);
        }
        let rest = v[5..].trim_start_matches([' ', '\t']);
        let rest = rest
            .strip_prefix('=')
            .unwrap_or(rest)
            .trim_matches([' ', '\t']);
        if rest.contains(',') {
            return Err(DecodeError::BadField("Range with several ranges"));
        }
        let (a, b) = rest.split_once('-').ok_or(bad.clone())?;
        let (a, b) = (a.trim_matches([' ', '\t']), b.trim_matches([' ', '\t']));
        let num = |s: &str| parse_u64(s.as_bytes()).ok_or(DecodeError::BadField("Range"));
        match (a.is_empty(), b.is_empty()) {
            (false, false) => {
                let (first, last) = (num(a)?, num(b)?);
                if first > last {
                    return Err(bad);
                }
                Ok(ByteRange::FromTo { first, last })
            }
            (false, true) => Ok(ByteRange::From { first: num(a)? }),
            (true, false) => Ok(ByteRange::Last { len: num(b)? }),
            (true, true) => Err(bad),
        }
    }

    /// The bytes this range selects from a file of `size` bytes, or `None` when it selects
    /// nothing (the server answers 416 with `Content-Range: bytes */size`).
    pub fn satisfy(&self, size: u64) -> Option<ByteSpan> {
        let end = size.checked_sub(1)?;
        match *self {
            ByteRange::FromTo { first, last } => {
                (first <= end && first <= last).then(|| ByteSpan {
                    first,
                    last: last.min(end),
                })
            }
            ByteRange::From { first } => (first <= end).then_some(ByteSpan { first, last: end }),
            ByteRange::Last { len } => (len > 0).then(|| ByteSpan {
                first: size - len.min(size),
                last: end,
            }),
        }
    }
}

impl fmt::Display for ByteRange {
    /// The header value, `bytes=a-b` / `bytes=a-` / `bytes=-n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByteRange::FromTo { first, last } => write!(f, "bytes={first}-{last}"),
            ByteRange::From { first } => write!(f, "bytes={first}-"),
            ByteRange::Last { len } => write!(f, "bytes=-{len}"),
        }
    }
}

/// A `Content-Range` value: `bytes a-b/total`, `bytes */total` (with 416), `bytes a-b/*`, and
/// gtk-gnutella's / Shareaza's `bytes=a-b/total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentRange {
    /// The bytes carried; `None` for `*` (unsatisfied range).
    pub span: Option<ByteSpan>,
    /// The full size; `None` for `*` (unknown).
    pub total: Option<u64>,
    /// Written with `bytes=` instead of the RFC's `bytes ` (kept to re-encode as received).
    pub equals_sign: bool,
}

impl ContentRange {
    /// The RFC form `bytes first-last/total` for a 206.
    pub fn partial(span: ByteSpan, total: u64) -> ContentRange {
        ContentRange {
            span: Some(span),
            total: Some(total),
            equals_sign: false,
        }
    }

    /// `bytes */total`, for a 416.
    pub fn unsatisfied(total: u64) -> ContentRange {
        ContentRange {
            span: None,
            total: Some(total),
            equals_sign: false,
        }
    }

    /// Parses a `Content-Range` value (see the type doc).
    pub fn parse(value: &str) -> Result<ContentRange> {
        let bad = DecodeError::BadField("Content-Range");
        let v = value.trim_matches([' ', '\t']);
        let unit = v.get(..5).ok_or(bad.clone())?;
        if !unit.eq_ignore_ascii_case("bytes") {
            return Err(bad);
        }
        let rest = &v[5..];
        let (equals_sign, rest) = match rest.strip_prefix('=') {
            Some(r) => (true, r),
            None if rest.starts_with([' ', '\t']) => (false, rest),
            None => return Err(bad),
        };
        let rest = rest.trim_matches([' ', '\t']);
        let (span, total) = rest.split_once('/').ok_or(bad.clone())?;
        let num = |s: &str| {
            parse_u64(s.trim_matches([' ', '\t']).as_bytes())
                .ok_or(DecodeError::BadField("Content-Range"))
        };
        let total = match total.trim_matches([' ', '\t']) {
            "*" => None,
            t => Some(num(t)?),
        };
        let span = match span.trim_matches([' ', '\t']) {
            "*" => None,
            s => {
                let (a, b) = s.split_once('-').ok_or(bad.clone())?;
                let (first, last) = (num(a)?, num(b)?);
                if first > last || total.is_some_and(|t| last >= t) {
                    return Err(bad);
                }
                Some(ByteSpan { first, last })
            }
        };
        if span.is_none() && total.is_none() {
            return Err(bad);
        }
        Ok(ContentRange {
            span,
            total,
            equals_sign,
        })
    }
}

impl fmt::Display for ContentRange {
    /// The header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.equals_sign { "bytes=" } else { "bytes " })?;
        match self.span {
            Some(s) => write!(f, "{}-{}/", s.first, s.last)?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_proxy_requests_in_their_three_spellings() {
        let guid: [u8; 16] = *b"0123456789abcdef";
        let b32 = data_encoding::BASE32_NOPAD.encode(&guid);
        let hex = data_encoding::HEXLOWER.encode(&guid);
        for target in [
            format!("/gnutella/push-proxy?ServerId={b32}&file=7"),
            format!("/gnutella/pushproxy?file=7&serverid={}", b32.to_lowercase()),
            format!("/gnet/push-proxy?guid={hex}&file=7"),
            format!("/gnutella/push-proxy?ServerId={}======&file=7", b32),
        ] {
            assert_eq!(
                Resource::from_target(target.as_bytes()),
                Resource::PushProxy { guid, file: 7 },
                "{target}"
            );
        }
        let ours = Resource::PushProxy { guid, file: 3 };
        assert_eq!(Resource::from_target(&ours.to_target()), ours);
        for bad in [
            "/gnutella/push-proxy?ServerId=SHORT",
            "/gnutella/push-proxy?file=1",
            "/gnutella/push-proxy?ServerId=ZZZ&file=x",
        ] {
            assert!(
                matches!(Resource::from_target(bad.as_bytes()), Resource::Other(_)),
                "{bad}"
            );
        }
    }

    fn request(buf: &[u8]) -> (Request, usize) {
        Request::parse(buf).unwrap().complete().unwrap()
    }

    fn response(buf: &[u8]) -> (Response, usize) {
        Response::parse(buf).unwrap().complete().unwrap()
    }

    #[test]
    fn bearshare_get_with_raw_spaces() {
        let raw = b"GET /get/1/Redhead Anal.mpg HTTP/1.0\r\nUser-Agent: BearShare 2.2.6\r\n\
Referrer: Gnutella\r\nConnection: Keep-Alive\r\nRange: bytes=0-\r\n\r\n";
        let (req, used) = request(raw);
        assert_eq!(used, raw.len());
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.target, b"/get/1/Redhead Anal.mpg");
        assert_eq!(req.version, HttpVersion::HTTP_10);
        assert_eq!(
            req.resource(),
            Resource::File {
                index: 1,
                name: b"Redhead Anal.mpg".to_vec()
            }
        );
        assert_eq!(req.range(), Some(Ok(ByteRange::From { first: 0 })));
        assert_eq!(req.headers.get("referrer"), Some("Gnutella"));
        assert!(req.keep_alive());
        assert_eq!(req.to_bytes(), raw);
        assert_eq!(req.encoded_len(), raw.len());
    }

    #[test]
    fn get_forms() {
        let file = |t: &[u8]| Resource::from_target(t);
        assert_eq!(
            file(b"/get/2468/Foobar.mp3/"),
            Resource::File {
                index: 2468,
                name: b"Foobar.mp3".to_vec()
            }
        );
        assert_eq!(
            file(b"/get/5/a%20b%2Fc%zz%4"),
            Resource::File {
                index: 5,
                name: b"a b/c%zz%4".to_vec()
            }
        );
        assert_eq!(
            file(b"/get/x/name"),
            Resource::Other(b"/get/x/name".to_vec())
        );
        assert_eq!(file(b"/get/7"), Resource::Other(b"/get/7".to_vec()));
        let sha1 = file(b"/uri-res/N2R?urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI");
        let Resource::Sha1 { sha1: digest } = sha1 else {
            panic!("expected a sha1 resource, got {sha1:?}");
        };
        assert_eq!(
            data_encoding::BASE32.encode(&digest),
            "LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI"
        );
        assert_eq!(
            file(b"/uri-res/n2r?URN:SHA1:lxip2a72t5h3bu3grumzfynu3oydk6fi"),
            Resource::Sha1 { sha1: digest }
        );
        assert_eq!(
            file(b"/uri-res/N2R?urn:bitprint:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI.3WMUS6WM2ZC7XIPRQDKXWHHJRV4IKYC4OX4ELCA"),
            Resource::Sha1 { sha1: digest }
        );
        assert!(matches!(
            file(b"/uri-res/N2R?urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6F1"),
            Resource::Other(_)
        ));
        // THEX trees: by sha1, or by bitprint (whose root is kept).
        let tree = Resource::Tree {
            sha1: digest,
            tiger: None,
        };
        assert_eq!(
            file(b"/uri-res/N2X?urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI"),
            tree
        );
        assert_eq!(Resource::from_target(&tree.to_target()), tree);
        let root = crate::thex::parse_tiger_base32(b"3WMUS6WM2ZC7XIPRQDKXWHHJRV4IKYC4OX4ELCA");
        assert!(root.is_some());
        let by_bitprint = file(b"/uri-res/n2x?urn:bitprint:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI.3wmus6wm2zc7xiprqdkxwhhjrv4ikyc4ox4elca");
        assert_eq!(
            by_bitprint,
            Resource::Tree {
                sha1: digest,
                tiger: root
            }
        );
        assert_eq!(
            by_bitprint.to_target(),
            b"/uri-res/N2X?urn:bitprint:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI.3WMUS6WM2ZC7XIPRQDKXWHHJRV4IKYC4OX4ELCA"
        );
        assert_eq!(Resource::from_target(&by_bitprint.to_target()), by_bitprint);
        assert!(matches!(
            file(b"/uri-res/N2X?urn:sha1:TOOSHORT"),
            Resource::Other(_)
        ));
        let back = Resource::File {
            index: 3,
            name: "a b/ü%.mp3".as_bytes().to_vec(),
        };
        assert_eq!(back.to_target(), b"/get/3/a%20b%2F%C3%BC%25.mp3");
        assert_eq!(Resource::from_target(&back.to_target()), back);
        let urn = Resource::Sha1 { sha1: digest };
        assert_eq!(Resource::from_target(&urn.to_target()), urn);
    }

    #[test]
    fn head_and_http11_keep_alive() {
        let (req, _) = request(
            b"HEAD /uri-res/N2R?urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI HTTP/1.1\nHost: x\n\n",
        );
        assert_eq!(req.method, Method::Head);
        assert!(req.keep_alive());
        let (req, _) = request(b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!req.keep_alive());
        let (req, _) = request(b"GET /a HTTP/1.0\r\n\r\n");
        assert!(!req.keep_alive());
        let (req, _) = request(b"POST  /a b  HTTP/1.1 \r\n\r\n");
        assert_eq!(req.method, Method::Other("POST".into()));
        assert_eq!(req.target, b"/a b");
    }

    #[test]
    fn request_split_in_two_needs_more_then_completes() {
        let raw =
            b"GET /get/24/Sorority Sex Kittens (xxx).asf HTTP/1.0\r\nRange: bytes=1221030-\r\n\r\n";
        assert_eq!(Request::parse(&raw[..30]), Ok(Parsed::NeedMore));
        for cut in 0..raw.len() {
            assert_eq!(
                Request::parse(&raw[..cut]),
                Ok(Parsed::NeedMore),
                "cut {cut}"
            );
        }
        let (req, _) = request(raw);
        assert_eq!(req.range(), Some(Ok(ByteRange::From { first: 1_221_030 })));
    }

    #[test]
    fn request_errors() {
        for bad in [
            &b"\x16\x03\x01"[..],
            b" GET / HTTP/1.0\r\n\r\n",
            b"GETTINGVERYLONGMETHOD / HTTP/1.0",
            b"GET\r\n\r\n",
            b"GET /a\r\n\r\n",
            b"GET /a HTTP/x.1\r\n\r\n",
            b"GET  HTTP/1.0\r\n\r\n",
            b"GET /a\x01b HTTP/1.0\r\n\r\n",
            b"GET /a HTTP/1.0\r\nbad header\r\n\r\n",
        ] {
            assert!(
                Request::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"GET /".to_vec();
        long.resize(MAX_HTTP_HEAD, b'a');
        assert!(matches!(
            Request::parse(&long),
            Err(DecodeError::TooLong {
                max: MAX_HTTP_HEAD,
                ..
            })
        ));
    }

    #[test]
    fn versionless_busy_and_body_left_alone() {
        let raw = b"HTTP 503 Server Busy\r\nServer: BearShare 2.2.6\r\n\r\n<!DOCTYPE HTML>\r";
        let (resp, used) = response(raw);
        assert_eq!(resp.version, None);
        assert_eq!(resp.code, 503);
        assert_eq!(resp.reason, "Server Busy");
        assert_eq!(&raw[used..], b"<!DOCTYPE HTML>\r");
        assert_eq!(resp.to_bytes(), &raw[..used]);
    }

    #[test]
    fn partial_content_with_equals_content_range() {
        let raw = b"HTTP/1.1 206 OK\r\nContent-Length: 1048576\r\nContent-Range: bytes=0-1048575/3234212\r\n\r\n";
        let (resp, _) = response(raw);
        assert_eq!(resp.version, Some(HttpVersion::HTTP_11));
        assert_eq!(resp.content_length(), Ok(Some(1_048_576)));
        let cr = resp.content_range().unwrap().unwrap();
        assert_eq!(
            cr,
            ContentRange {
                span: Some(ByteSpan {
                    first: 0,
                    last: 1_048_575
                }),
                total: Some(3_234_212),
                equals_sign: true
            }
        );
        assert_eq!(cr.to_string(), "bytes=0-1048575/3234212");
        assert_eq!(resp.to_bytes(), raw);
    }

    #[test]
    fn response_errors() {
        for bad in [
            &b"GNUTELLA/0.6 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1\r\n\r\n",
            b"HTTPS 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let parsed = Response::parse(bad);
            let failed = match parsed {
                Err(_) => true,
                Ok(Parsed::Complete { message, .. }) => message.content_length().is_err(),
                Ok(Parsed::NeedMore) => false,
            };
            assert!(failed, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Response::parse(b"HTT"), Ok(Parsed::NeedMore));
    }

    #[test]
    fn range_forms() {
        use ByteRange::*;
        assert_eq!(ByteRange::parse("bytes=0-"), Ok(From { first: 0 }));
        assert_eq!(
            ByteRange::parse("bytes=2709924-3234211"),
            Ok(FromTo {
                first: 2_709_924,
                last: 3_234_211
            })
        );
        assert_eq!(ByteRange::parse("bytes=-500"), Ok(Last { len: 500 }));
        assert_eq!(
            ByteRange::parse("Bytes = 5 - 9"),
            Ok(FromTo { first: 5, last: 9 })
        );
        assert_eq!(ByteRange::parse("bytes 7-"), Ok(From { first: 7 }));
        for bad in [
            "bytes=",
            "bytes=-",
            "bytes=9-5",
            "bytes=a-",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=99999999999999999999-",
            "bytes=1-2-3",
            "",
            "byt",
        ] {
            assert!(ByteRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(From { first: 3 }.to_string(), "bytes=3-");
        assert_eq!(Last { len: 3 }.to_string(), "bytes=-3");
        assert_eq!(FromTo { first: 1, last: 2 }.to_string(), "bytes=1-2");
    }

    #[test]
    fn range_resolution_against_file_size() {
        use ByteRange::*;
        let span = |first, last| Some(ByteSpan { first, last });
        assert_eq!(From { first: 0 }.satisfy(10), span(0, 9));
        assert_eq!(From { first: 9 }.satisfy(10), span(9, 9));
        assert_eq!(From { first: 10 }.satisfy(10), None);
        assert_eq!(
            FromTo {
                first: 2,
                last: 100
            }
            .satisfy(10),
            span(2, 9)
        );
        assert_eq!(
            FromTo {
                first: 10,
                last: 12
            }
            .satisfy(10),
            None
        );
        assert_eq!(Last { len: 3 }.satisfy(10), span(7, 9));
        assert_eq!(Last { len: 30 }.satisfy(10), span(0, 9));
        assert_eq!(Last { len: 0 }.satisfy(10), None);
        assert_eq!(From { first: 0 }.satisfy(0), None);
        assert_eq!(Last { len: 1 }.satisfy(0), None);
        assert_eq!(ByteSpan { first: 7, last: 9 }.len(), 3);
    }

    #[test]
    fn content_range_forms() {
        let cr = ContentRange::parse("bytes 0-9/10").unwrap();
        assert_eq!(
            cr,
            ContentRange::partial(ByteSpan { first: 0, last: 9 }, 10)
        );
        assert_eq!(cr.to_string(), "bytes 0-9/10");
        let star = ContentRange::parse("bytes */10").unwrap();
        assert_eq!(star, ContentRange::unsatisfied(10));
        assert_eq!(star.to_string(), "bytes */10");
        let unknown = ContentRange::parse("bytes 0-9/*").unwrap();
        assert_eq!(unknown.total, None);
        assert_eq!(unknown.to_string(), "bytes 0-9/*");
        for bad in [
            "bytes */*",
            "bytes 9-0/10",
            "bytes 0-10/10",
            "bytes0-9/10",
            "bytes 0-9",
            "items 0-9/10",
            "bytes 0-x/10",
        ] {
            assert!(ContentRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn built_response_encodes() {
        let mut resp = Response::new(206, "Partial Content");
        resp.headers
            .push(
                "Content-Range",
                &ContentRange::partial(ByteSpan { first: 5, last: 9 }, 10).to_string(),
            )
            .push("Content-Length", "5");
        let bytes = resp.to_bytes();
        assert_eq!(
            bytes,
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\n\r\n"
        );
        assert_eq!(resp.encoded_len(), bytes.len());
        assert_eq!(response(&bytes).0, resp);
    }
}
