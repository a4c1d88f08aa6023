//! Serving shared files over HTTP, sans IO: request bytes in, a response head plus the span of the
//! file to send out. The reactor owns the socket and streams the span from disk.
//!
//! Served (PROTOCOL-NOTES §4): `GET` and `HEAD` of `/get/<index>/<name>` (the index selects the
//! file, the percent-decoded name must equal its name, `+` accepted for a space) and of `/uri-res/N2R?urn:sha1:<base32>`;
//! and the THEX tree of a shared file at `/uri-res/N2X?urn:sha1:<base32>` (or
//! `urn:bitprint:<sha1>.<root>`), `application/dime`, streamed from the tree file the scanner
//! stored ([`SpanSource::TigerTree`]; no upload slot taken). File replies of a file whose tree is
//! stored carry `X-Thex-URI: /uri-res/N2X?urn:sha1:<base32>;<root base32>`, as gtk-gnutella's do.
//! Only files of the current [`Library`] are ever served: a request never becomes a path, so no
//! spelling of a target (`..`, absolute paths, encoded slashes) reaches outside the shared set.
//!
//! One `Range` (`bytes=a-b`, `a-`, `-n`) gives `206` with `Content-Range`; a range outside the file
//! gives `416` with `Content-Range: bytes */size`; a malformed or multi-range `Range` is ignored
//! (RFC 9110 allows it) and the whole file is sent with `200`. Every response carries
//! `Content-Length`; file responses carry `X-Gnutella-Content-URN` once the SHA-1 is known. When
//! all upload slots are taken, or the client's address holds its share of them already, a `GET`
//! gets `503` with `Retry-After` (a `HEAD` needs no slot).
//! Keep-alive follows the request (HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
//! `Connection: Keep-Alive`); a request that cannot be parsed gets `400` and the connection ends.
//!
//! Driving it: [`UploadSession::on_bytes`] with whatever arrived, then [`UploadSession::poll`]:
//! `NeedMore`, `Respond(reply)` — write `reply.head`, then stream `reply.body` if any, then call
//! [`UploadSession::reply_sent`] — or `Close`. Pipelined requests wait in the buffer until the
//! previous reply is sent. [`UploadSession::on_close`] releases a slot still held.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use data_encoding::BASE32;
use hazel_protocol::http::{
    ContentRange, HeadScanner, HttpVersion, Method, Parsed, Request, Resource, Response,
    MAX_HTTP_HEAD,
};
use hazel_protocol::thex::ThexUri;

use hazel_protocol::altloc::{format_x_alt, parse_alternate_location, parse_x_alt, AltLoc};

use super::mesh::Mesh;
pub use crate::core::proxy::ProxyVerdict;

/// A push-proxy request, as the session hands it to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushProxyAsk {
    /// The firewalled servent to reach.
    pub guid: [u8; 16],
    pub file: u32,
    /// Where it must connect back (the downloader's `X-Node`).
    pub node: SocketAddrV4,
    /// Who asks.
    pub requester: IpAddr,
}

/// What serving needs beyond the library and the slots.
pub struct Serving<'a> {
    pub mesh: &'a mut Mesh,
    /// Relays a push-proxy request to the servent it names.
    pub relay: &'a mut dyn FnMut(PushProxyAsk) -> ProxyVerdict,
    pub now: Instant,
}
use super::{Library, SharedFile};

/// Bytes a client may send beyond one request head while a reply is being sent (pipelining);
/// past this the session closes rather than buffer without bound.
const MAX_BUFFERED: usize = 2 * MAX_HTTP_HEAD;

/// The direct locations a request's mesh headers name.
fn named_locations(request: &Request) -> Vec<SocketAddrV4> {
    let mut found = Vec::new();
    for value in request.headers.get_all("X-Alt") {
        found.extend(parse_x_alt(value).into_iter().filter_map(|loc| match loc {
            AltLoc::Direct(addr) => Some(addr),
            AltLoc::Push { .. } => None,
        }));
    }
    for value in request.headers.get_all("X-Gnutella-Alternate-Location") {
        found.extend(parse_alternate_location(value));
    }
    found
}

/// Whether a requested (percent-decoded) name names this file: the same bytes, or the same once
/// `+` is read as a space on both sides (form-encoding clients write spaces as `+`).
fn name_matches(file_name: &str, requested: &[u8]) -> bool {
    let file_name = file_name.as_bytes();
    file_name == requested
        || (file_name.len() == requested.len()
            && file_name
                .iter()
                .zip(requested)
                .all(|(&a, &b)| a == b || (a == b' ' || a == b'+') && (b == b' ' || b == b'+')))
}

/// Upload slots shared by every upload session of a servent: at most `max` file bodies at once,
/// and at most `max_per_ip` to one client address (so one client cannot hold them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSlots {
    max: usize,
    max_per_ip: usize,
    active: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Whether any upload has completed (the QueryHit "have uploaded" flag).
    have_uploaded: bool,
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    AllTaken,
    ThisAddress,
}

impl UploadSlots {
    /// `max` concurrent file bodies, with no limit per client address.
    pub fn new(max: usize) -> Self {
        UploadSlots::with_per_ip(max, max)
    }

    /// `max` concurrent file bodies, at most `max_per_ip` of them to one client address.
    pub fn with_per_ip(max: usize, max_per_ip: usize) -> Self {
        UploadSlots {
            max,
            max_per_ip: max_per_ip.max(1),
            active: 0,
            per_ip: HashMap::new(),
            have_uploaded: false,
        }
    }

    /// Bodies being sent to `ip` now.
    pub fn active_for(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Bodies being sent now.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The configured number of slots.
    pub fn max(&self) -> usize {
        self.max
    }

    /// True when a new `GET` would get `503` (the QueryHit "busy" flag).
    pub fn all_taken(&self) -> bool {
        self.active >= self.max
    }

    /// True once at least one file body was sent completely.
    pub fn have_uploaded(&self) -> bool {
        self.have_uploaded
    }

    /// Takes a slot for a body sent outside HTTP (the Napster data port);
    /// false when every slot, or every slot for `ip`, is taken.
    pub fn try_take(&mut self, ip: IpAddr) -> bool {
        self.try_acquire(ip).is_ok()
    }

    /// Gives back a slot taken with [`UploadSlots::try_take`]; `complete`
    /// when its body was sent whole.
    pub fn give_back(&mut self, ip: IpAddr, complete: bool) {
        self.release(ip);
        if complete {
            self.have_uploaded = true;
        }
    }

    fn try_acquire(&mut self, ip: IpAddr) -> Result<(), Busy> {
        if self.all_taken() {
            return Err(Busy::AllTaken);
        }
        let mine = self.per_ip.entry(ip).or_insert(0);
        if *mine >= self.max_per_ip {
            return Err(Busy::ThisAddress);
        }
        *mine += 1;
        self.active += 1;
        Ok(())
    }

    fn release(&mut self, ip: IpAddr) {
        self.active = self.active.saturating_sub(1);
        if let Some(mine) = self.per_ip.get_mut(&ip) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Fixed settings of the upload server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    /// The `Server` header.
    pub server: String,
    /// Seconds announced in `Retry-After` when busy.
    pub retry_after_secs: u32,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            server: format!("Hazel/{}", env!("CARGO_PKG_VERSION")),
            retry_after_secs: 60,
        }
    }
}

/// What a [`FileSpan`] streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanSource {
    /// A shared file: it must still lie inside the shared folders and have the size and mtime
    /// the library saw.
    SharedFile,
    /// The stored THEX tree of a shared file (in the data directory, named by its SHA-1, never
    /// from a request): it must have the expected size; its mtime is not checked. It takes no
    /// upload slot (a few kilobytes, like a head).
    TigerTree,
}

/// The part of a file to stream after the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpan {
    /// The shared file's index in the library.
    pub index: u32,
    /// What `path` is, and so what to check before sending it.
    pub source: SpanSource,
    /// The file to open (always a file of the library, or its stored tree).
    pub path: PathBuf,
    /// First byte to send.
    pub offset: u64,
    /// Bytes to send (never 0).
    pub len: u64,
    /// Size and mtime the library saw: if the file on disk differs, its content changed since the
    /// scan and the reactor should close instead of sending other bytes than announced.
    pub expected_size: u64,
    pub expected_mtime: SystemTime,
}

/// One response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReply {
    /// The status code (also in `head`), for logs and counters.
    pub status: u16,
    /// The encoded response head, blank line included.
    pub head: Vec<u8>,
    /// The file bytes to send after the head (`None` for `HEAD`, errors and empty files).
    pub body: Option<FileSpan>,
    /// Whether to read another request after this reply (else close once it is sent).
    pub keep_alive: bool,
}

/// What the session wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadPoll {
    /// Read more bytes (or wait for [`UploadSession::reply_sent`]).
    NeedMore,
    /// Send this reply, then call [`UploadSession::reply_sent`].
    Respond(UploadReply),
    /// Close the connection (after flushing what was already queued).
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a request head.
    Reading,
    /// A reply was handed out; `holds_slot` when its body took an upload slot.
    Replying {
        keep_alive: bool,
        holds_slot: bool,
    },
    Closed,
}

/// One HTTP upload connection.
#[derive(Debug, Clone)]
pub struct UploadSession {
    config: UploadConfig,
    buffer: Vec<u8>,
    /// How far `buffer` was searched for the end of the request head (reset whenever the buffer
    /// is drained or cleared), so a head sent in small pieces is scanned once.
    head_scan: HeadScanner,
    state: State,
    /// The client sent more than we buffer: close (kept apart from `state` so a slot held by the
    /// reply in flight is still released by `on_close`).
    overflowed: bool,
    requests: u64,
    /// The client's address (slots are limited per address).
    peer: IpAddr,
}

impl UploadSession {
    /// A session whose client address is unknown (all such sessions share one per-address quota).
    pub fn new(config: UploadConfig) -> Self {
        UploadSession::for_peer(config, IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    /// A session for a client at `peer`.
    pub fn for_peer(config: UploadConfig, peer: IpAddr) -> Self {
        UploadSession {
            peer,
            config,
            buffer: Vec::new(),
            head_scan: HeadScanner::new(),
            state: State::Reading,
            overflowed: false,
            requests: 0,
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Bytes received from the client.
    pub fn on_bytes(&mut self, bytes: &[u8]) {
        if self.state == State::Closed || self.overflowed {
            return;
        }
        if self.buffer.len().saturating_add(bytes.len()) > MAX_BUFFERED {
            // Either a head past the cap (the parser would reject it) or a client pushing bytes
            // we have no reason to hold: stop here.
            self.buffer.clear();
            self.head_scan.reset();
            self.overflowed = true;
            return;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Decides what to do with the buffered bytes, given the current library and slots, without
    /// a download mesh (nothing is learned from the request's `X-Alt`, none is sent) and without
    /// push-proxy relays (push-proxy requests get `410`).
    pub fn poll(&mut self, library: &Library, slots: &mut UploadSlots) -> UploadPoll {
        let mut mesh = Mesh::new();
        let mut relay = |_: PushProxyAsk| ProxyVerdict::NotProxied;
        self.poll_with(
            library,
            slots,
            &mut Serving {
                mesh: &mut mesh,
                relay: &mut relay,
                now: Instant::now(),
            },
        )
    }

    /// Like [`UploadSession::poll`], with what serving needs beyond the library: the download
    /// mesh (locations a request names are learned, known ones named in the reply as `X-Alt`,
    /// also on a `503`) and the push-proxy relay.
    pub fn poll_with(
        &mut self,
        library: &Library,
        slots: &mut UploadSlots,
        serving: &mut Serving<'_>,
    ) -> UploadPoll {
        if self.overflowed {
            return UploadPoll::Close;
        }
        match self.state {
            State::Closed => return UploadPoll::Close,
            State::Replying { .. } => return UploadPoll::NeedMore,
            State::Reading => {}
        }
        let (request, consumed) = match Request::parse_from(&self.buffer, &mut self.head_scan) {
            Ok(Parsed::NeedMore) => return UploadPoll::NeedMore,
            Ok(Parsed::Complete { message, consumed }) => (message, consumed),
            Err(_) => {
                self.buffer.clear();
                self.head_scan.reset();
                self.requests += 1;
                self.state = State::Replying {
                    keep_alive: false,
                    holds_slot: false,
                };
                return UploadPoll::Respond(self.error_reply(400, "Bad Request", false));
            }
        };
        self.buffer.drain(..consumed.min(self.buffer.len()));
        self.head_scan.reset();
        self.requests += 1;
        let reply = self.answer(&request, library, slots, serving);
        self.state = State::Replying {
            keep_alive: reply.keep_alive,
            holds_slot: reply
                .body
                .as_ref()
                .is_some_and(|b| b.source == SpanSource::SharedFile),
        };
        UploadPoll::Respond(reply)
    }

    /// The last reply (head and body) was written: release its slot, and either read the next
    /// request or close.
    pub fn reply_sent(&mut self, slots: &mut UploadSlots) {
        if let State::Replying {
            keep_alive,
            holds_slot,
        } = self.state
        {
            if holds_slot {
                slots.release(self.peer);
                slots.have_uploaded = true;
            }
            self.state = if keep_alive {
                State::Reading
            } else {
                State::Closed
            };
        }
    }

    /// The connection is gone (or being closed): release a slot still held.
    pub fn on_close(&mut self, slots: &mut UploadSlots) {
        if let State::Replying {
            holds_slot: true, ..
        } = self.state
        {
            slots.release(self.peer);
        }
        self.buffer.clear();
        self.state = State::Closed;
    }

    fn answer(
        &self,
        request: &Request,
        library: &Library,
        slots: &mut UploadSlots,
        serving: &mut Serving<'_>,
    ) -> UploadReply {
        let (mesh, now) = (&mut *serving.mesh, serving.now);
        let keep_alive = request.keep_alive();
        let head_only = match request.method {
            Method::Get => false,
            Method::Head => true,
            Method::Other(_) => return self.error_reply(501, "Not Implemented", keep_alive),
        };
        let file = match request.resource() {
            Resource::File { index, name } => library
                .get(index)
                .filter(|file| name_matches(&file.name, &name)),
            Resource::Sha1 { sha1 } => library.by_sha1(&sha1),
            Resource::Tree { sha1, tiger } => {
                return self.tree_reply(library, &sha1, tiger, head_only, keep_alive)
            }
            Resource::PushProxy { guid, file } => {
                return self.push_proxy_reply(request, guid, file, serving, keep_alive)
            }
            Resource::Other(_) => None,
        };
        let Some(file) = file else {
            return self.error_reply(404, "Not Found", keep_alive);
        };
        let alt_locs = match file.sha1 {
            Some(sha1) => {
                let listening = request
                    .headers
                    .get("X-Node")
                    .and_then(|v| v.trim().parse::<SocketAddrV4>().ok());
                // What it names is for the next downloaders, not told back to it.
                let known = mesh.for_reply(&sha1, listening, now);
                mesh.heard(sha1, named_locations(request), now);
                known
            }
            None => Vec::new(),
        };
        let span = match request.range() {
            None | Some(Err(_)) => None,
            Some(Ok(range)) => match range.satisfy(file.size) {
                Some(span) => Some(span),
                None => return self.unsatisfiable(file, keep_alive),
            },
        };
        let (offset, len) = match span {
            Some(span) => (span.first, span.len()),
            None => (0, file.size),
        };
        let wants_body = !head_only && len > 0;
        let busy = if wants_body {
            slots.try_acquire(self.peer).err()
        } else {
            None
        };
        if let Some(busy) = busy {
            let reason = match busy {
                Busy::AllTaken => "Service Unavailable",
                Busy::ThisAddress => "Too Many Uploads From Your Address",
            };
            let mut response = self.response(503, reason, false);
            response
                .headers
                .push("Retry-After", &self.config.retry_after_secs.to_string())
                .push("Content-Length", "0");
            if !alt_locs.is_empty() {
                // Busy here: the downloader can go to the others meanwhile.
                response.headers.push("X-Alt", &format_x_alt(&alt_locs));
            }
            return UploadReply {
                status: 503,
                head: response.to_bytes(),
                body: None,
                keep_alive: false,
            };
        }
        let (status, reason) = if span.is_some() {
            (206, "Partial Content")
        } else {
            (200, "OK")
        };
        let mut response = self.response(status, reason, keep_alive);
        response
            .headers
            .push("Content-Type", "application/binary")
            .push("Accept-Ranges", "bytes")
            .push("Content-Length", &len.to_string());
        if let Some(span) = span {
            response.headers.push(
                "Content-Range",
                &ContentRange::partial(span, file.size).to_string(),
            );
        }
        if let Some(sha1) = file.sha1 {
            response.headers.push(
                "X-Gnutella-Content-URN",
                &format!("urn:sha1:{}", BASE32.encode(&sha1)),
            );
            if let (Some(tiger), Some(_)) = (file.tiger, library.tree_file(file)) {
                response
                    .headers
                    .push("X-Thex-URI", &ThexUri::for_file(&sha1, &tiger).to_value());
            }
        }
        if !alt_locs.is_empty() {
            response.headers.push("X-Alt", &format_x_alt(&alt_locs));
        }
        UploadReply {
            status,
            head: response.to_bytes(),
            body: wants_body.then(|| FileSpan {
                index: file.index,
                source: SpanSource::SharedFile,
                path: file.path.clone(),
                offset,
                len,
                expected_size: file.size,
                expected_mtime: file.mtime,
            }),
            keep_alive,
        }
    }

    /// `/uri-res/N2X?urn:sha1:…` (or `urn:bitprint:…`): the file's stored THEX tree, whole
    /// (a `Range` is ignored, as gtk-gnutella does). Not found when no shared file has that SHA-1
    /// or when the bitprint names another root; `503` while the tree is still being computed.
    fn tree_reply(
        &self,
        library: &Library,
        sha1: &[u8; 20],
        tiger: Option<[u8; 24]>,
        head_only: bool,
        keep_alive: bool,
    ) -> UploadReply {
        let Some(file) = library.by_sha1(sha1) else {
            return self.error_reply(404, "Not Found", keep_alive);
        };
        if tiger.is_some() && file.tiger.is_some() && tiger != file.tiger {
            return self.error_reply(404, "Not Found", keep_alive);
        }
        let Some(tree) = library.tree_file(file) else {
            let mut response = self.response(503, "TTH Is Being Computed", keep_alive);
            response
                .headers
                .push("Retry-After", &self.config.retry_after_secs.to_string())
                .push("Content-Length", "0");
            return UploadReply {
                status: 503,
                head: response.to_bytes(),
                body: None,
                keep_alive,
            };
        };
        let mut response = self.response(200, "OK", keep_alive);
        response
            .headers
            .push("Content-Type", hazel_protocol::thex::dime::CONTENT_TYPE)
            .push("Content-Length", &tree.len.to_string())
            .push(
                "X-Gnutella-Content-URN",
                &format!("urn:sha1:{}", BASE32.encode(sha1)),
            );
        UploadReply {
            status: 200,
            head: response.to_bytes(),
            body: (!head_only && tree.len > 0).then_some(FileSpan {
                index: file.index,
                source: SpanSource::TigerTree,
                path: tree.path,
                offset: 0,
                len: tree.len,
                expected_size: tree.len,
                expected_mtime: std::time::UNIX_EPOCH,
            }),
            keep_alive,
        }
    }

    /// A push-proxy request: the Push is relayed (`202`), or we do not
    /// proxy for that servent (`410`), or not now (`503`); without a usable
    /// `X-Node` (where the leaf must connect back) it is a `400`.
    fn push_proxy_reply(
        &self,
        request: &Request,
        guid: [u8; 16],
        file: u32,
        serving: &mut Serving<'_>,
        keep_alive: bool,
    ) -> UploadReply {
        let node = request
            .headers
            .get("X-Node")
            .and_then(|v| v.trim().parse::<SocketAddrV4>().ok())
            .filter(|a| a.port() != 0 && !a.ip().is_unspecified());
        let Some(node) = node else {
            return self.error_reply(400, "Bad Request: no X-Node", keep_alive);
        };
        let verdict = (serving.relay)(PushProxyAsk {
            guid,
            file,
            node,
            requester: self.peer,
        });
        match verdict {
            ProxyVerdict::Relayed => self.error_reply(202, "Push Proxy: Message Sent", keep_alive),
            ProxyVerdict::NotProxied => {
                self.error_reply(410, "Push Proxy: Servent Not Connected", keep_alive)
            }
            ProxyVerdict::RateLimited => {
                let mut response = self.response(503, "Push Proxy: Busy", false);
                response
                    .headers
                    .push("Retry-After", "60")
                    .push("Content-Length", "0");
                UploadReply {
                    status: 503,
                    head: response.to_bytes(),
                    body: None,
                    keep_alive: false,
                }
            }
        }
    }

    fn unsatisfiable(&self, file: &SharedFile, keep_alive: bool) -> UploadReply {
        let mut response = self.response(416, "Range Not Satisfiable", keep_alive);
        response
            .headers
            .push(
                "Content-Range",
                &ContentRange::unsatisfied(file.size).to_string(),
            )
            .push("Content-Length", "0");
        UploadReply {
            status: 416,
            head: response.to_bytes(),
            body: None,
            keep_alive,
        }
    }

    fn error_reply(&self, status: u16, reason: &str, keep_alive: bool) -> UploadReply {
        let mut response = self.response(status, reason, keep_alive);
        response.headers.push("Content-Length", "0");
        UploadReply {
            status,
            head: response.to_bytes(),
            body: None,
            keep_alive,
        }
    }

    fn response(&self, status: u16, reason: &str, keep_alive: bool) -> Response {
        let mut response = Response::new(status, reason);
        response.version = Some(HttpVersion::HTTP_11);
        response.headers.push("Server", &self.config.server).push(
            "Connection",
            if keep_alive { "Keep-Alive" } else { "close" },
        );
        response
    }
}
