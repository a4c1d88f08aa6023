//! One download connection: connect (or Push and wait for the GIV), ask for
//! a span, read the answer's head, move the body to the disk, and on a
//! keep-alive connection ask for the next span. Every failure gives the
//! span back and tells the source why.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hazel_protocol::altloc::{parse_alternate_location, parse_x_alt, AltLoc};
use hazel_protocol::giv::{Giv, Parsed};
use hazel_protocol::handshake::HeadScanner;
use hazel_protocol::http::{HttpVersion, Method, Request, Response, MAX_HTTP_HEAD};
use hazel_protocol::thex::dime::MAX_DIME_LEN;

use super::pieces::{Chunk, Span};
use super::source::{Dropped, Origin};
use super::{
    DiskJob, DownloadId, FetchId, PendingGiv, SourceSpec, State, TransferAction, Transfers,
};
use crate::core::ids::ConnId;

/// A GIV line must arrive within this.
const GIV_TIMEOUT: Duration = Duration::from_secs(20);
/// A slow connection is compared after this long on one span.
const SLOW_AFTER: Duration = Duration::from_secs(10);
/// A connection this many times slower than the download's best loses its span.
const SLOW_RATIO: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Connecting,
    AwaitingGiv,
    /// The request went out; waiting for the answer's head.
    Head,
    Body,
}

/// What ended a fetch, for its source.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Outcome {
    /// A failure that backs the source off.
    Failed(String),
    /// `503`: ask again after this.
    Busy(Duration),
    Drop(Dropped),
}

pub(super) struct Fetch {
    pub download: DownloadId,
    pub source: usize,
    pub(super) conn: Option<ConnId>,
    pub(super) phase: Phase,
    /// The span asked for (`None` until the connection is ready).
    span: Option<Span>,
    /// Where the next body byte goes.
    next: u64,
    /// Body bytes the current answer still carries.
    body_left: u64,
    keep_alive: bool,
    inbuf: Vec<u8>,
    scan: HeadScanner,
    pub(super) out: Vec<u8>,
    out_pos: usize,
    pub(super) phase_since: Instant,
    pub(super) last_byte: Instant,
    span_started: Instant,
    pushes: u32,
    /// A Push held back by the target's pace goes at this time.
    pub(super) push_due: Option<Instant>,
    /// The request in flight asks for the Tiger tree: its body so far.
    tree: Option<Vec<u8>>,
    /// The span asked for is an endgame copy of a chunk another connection
    /// is fetching: its bytes so far (written only once whole).
    duplicate: Option<Vec<u8>>,
    /// The connection is to a push proxy of the source (not the source).
    pub(super) proxying: bool,
    /// Push proxies of the source tried so far.
    pub(super) proxy_tries: usize,
}

impl Fetch {
    fn new(download: DownloadId, source: usize, phase: Phase, now: Instant) -> Fetch {
        Fetch {
            download,
            source,
            conn: None,
            phase,
            span: None,
            next: 0,
            body_left: 0,
            keep_alive: false,
            inbuf: Vec::new(),
            scan: HeadScanner::new(),
            out: Vec::new(),
            out_pos: 0,
            phase_since: now,
            last_byte: now,
            span_started: now,
            pushes: 0,
            push_due: None,
            tree: None,
            duplicate: None,
            proxying: false,
            proxy_tries: 0,
        }
    }

    /// A new request is about to be written: for `span`, or (`None`) for the tree.
    fn start_request(&mut self, span: Option<Span>, now: Instant) {
        self.span = span;
        self.next = span.map_or(0, |s| s.start);
        self.tree = None;
        self.duplicate = None;
        self.phase = Phase::Head;
        self.phase_since = now;
        self.last_byte = now;
        self.span_started = now;
        self.inbuf.clear();
        self.scan.reset();
    }

    /// The request about to be written asks for the Tiger tree.
    pub(super) fn begin_tree_request(&mut self, now: Instant) {
        self.start_request(None, now);
        self.tree = Some(Vec::new());
    }

    /// Drops what was queued to write (the connection is going).
    pub(super) fn clear_output(&mut self) {
        self.out.clear();
        self.out_pos = 0;
    }

    pub(super) fn queue_request(&mut self, request: &Request) -> Option<ConnId> {
        request.encode(&mut self.out);
        self.conn
    }
}

impl Transfers {
    /// Begins fetching download `id` from source `source` (marked busy).
    pub(super) fn start_fetch(&mut self, id: DownloadId, source: usize, now: Instant) {
        let fid = self.next_fetch;
        self.next_fetch += 1;
        let Some(s) = self.downloads.get(&id).and_then(|d| d.sources.get(source)) else {
            return;
        };
        if s.needs_push {
            self.fetches
                .insert(fid, Fetch::new(id, source, Phase::AwaitingGiv, now));
            self.reach_firewalled(fid, now);
        } else {
            let addr = s.addr;
            self.fetches
                .insert(fid, Fetch::new(id, source, Phase::Connecting, now));
            self.connecting.entry(addr).or_default().push_back(fid);
            self.actions.push_back(TransferAction::Connect(addr));
        }
    }

    pub(super) fn send_push(&mut self, fid: FetchId, now: Instant) {
        let Some(f) = self.fetches.get(&fid) else {
            return;
        };
        let source = self
            .downloads
            .get(&f.download)
            .and_then(|d| d.sources.get(f.source));
        match source.and_then(|s| Some((s.servent_id?, s.file_index?))) {
            Some((servent_id, file_index)) => {
                if let Some(due) = self.push_paced(servent_id, now) {
                    if let Some(f) = self.fetches.get_mut(&fid) {
                        f.push_due = Some(due);
                    }
                    return;
                }
                if let Some(f) = self.fetches.get_mut(&fid) {
                    f.pushes += 1;
                    f.push_due = None;
                    f.phase_since = now;
                }
                self.actions.push_back(TransferAction::Push {
                    fetch: fid,
                    servent_id,
                    file_index,
                })
            }
            None => {
                let why = "firewalled, and its servent id or file index is unknown";
                self.end_fetch(
                    fid,
                    Some(Outcome::Drop(Dropped::Unreachable(why.into()))),
                    now,
                );
            }
        }
    }

    /// Counts a Push to `servent_id` now, or (`Some`) says when one may go.
    fn push_paced(&mut self, servent_id: [u8; 16], now: Instant) -> Option<Instant> {
        if let Some(pace) = self.push_pace.get_mut(&servent_id) {
            let quiet = now.saturating_duration_since(pace.last) >= super::PUSH_QUIET;
            if quiet {
                pace.burst = 0;
            } else if pace.burst >= super::PUSH_BURST {
                return Some(pace.last + super::PUSH_QUIET);
            }
            pace.burst += 1;
            pace.last = now;
            return None;
        }
        if self.push_pace.len() >= super::MAX_PUSH_PACES {
            // Forget the servents pushed to longest ago.
            let quiet =
                |p: &super::PushPace| now.saturating_duration_since(p.last) >= super::PUSH_QUIET;
            self.push_pace.retain(|_, p| !quiet(p));
            if self.push_pace.len() >= super::MAX_PUSH_PACES {
                if let Some(oldest) = self
                    .push_pace
                    .iter()
                    .min_by_key(|(_, p)| p.last)
                    .map(|(k, _)| *k)
                {
                    self.push_pace.remove(&oldest);
                }
            }
        }
        self.push_pace.insert(
            servent_id,
            super::PushPace {
                burst: 1,
                last: now,
            },
        );
        None
    }

    /// The Push for `fetch` could not be routed (no path to that servent).
    pub fn push_unroutable(&mut self, fetch: u64, now: Instant) {
        let _ = now;
        let why = "no route for a Push to it (its hits came on a link that is gone)";
        self.end_fetch(fetch, Some(Outcome::Failed(why.into())), now);
    }

    /// Our connect to `addr` succeeded as connection `conn`.
    pub fn on_connected(&mut self, conn: ConnId, addr: SocketAddr, now: Instant) -> bool {
        let fid = match self.connecting.get_mut(&addr).and_then(VecDequeExt::pop) {
            Some(fid) => fid,
            None => return false,
        };
        self.attach(fid, conn, now);
        true
    }

    /// Our connect to `addr` failed: the source backs off, or, when it is
    /// firewalled as far as we can tell and we know its servent id, we
    /// Push instead.
    pub fn on_connect_failed(&mut self, addr: SocketAddr, error: &str, now: Instant) -> bool {
        let Some(fid) = self.connecting.get_mut(&addr).and_then(VecDequeExt::pop) else {
            return false;
        };
        if self.fetches.get(&fid).is_some_and(|f| f.proxying) {
            self.proxy_failed(fid, error, now);
            return true;
        }
        let can_push = !self.config.firewalled
            && self.fetches.get(&fid).is_some_and(|f| {
                self.downloads
                    .get(&f.download)
                    .and_then(|d| d.sources.get(f.source))
                    .is_some_and(|s| s.servent_id.is_some() && s.file_index.is_some())
            });
        if can_push {
            if let Some(f) = self.fetches.get_mut(&fid) {
                f.phase = Phase::AwaitingGiv;
                f.phase_since = now;
                if let Some(s) = self
                    .downloads
                    .get_mut(&f.download)
                    .and_then(|d| d.sources.get_mut(f.source))
                {
                    s.needs_push = true;
                }
            }
            self.reach_firewalled(fid, now);
        } else {
            self.end_fetch(fid, Some(Outcome::Failed(error.to_string())), now);
        }
        true
    }

    /// An incoming connection that starts with `GIV `: a firewalled source
    /// answering one of our Pushes (its line follows in `on_bytes`).
    pub fn on_giv(&mut self, conn: ConnId, peer: SocketAddr, now: Instant) {
        self.givs.insert(
            conn,
            PendingGiv {
                peer,
                buf: Vec::new(),
                scan: HeadScanner::new(),
                since: now,
            },
        );
    }

    fn giv_bytes(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let Some(pending) = self.givs.get_mut(&conn) else {
            return;
        };
        pending.buf.extend_from_slice(bytes);
        let giv = match Giv::parse_from(&pending.buf, &mut pending.scan) {
            Ok(Parsed::NeedMore) => return,
            Ok(Parsed::Complete { message, consumed }) => {
                let rest = pending.buf.split_off(consumed.min(pending.buf.len()));
                (message, rest)
            }
            Err(_) => {
                log::info!("GIV from {}: malformed, closing", pending.peer);
                self.givs.remove(&conn);
                self.actions.push_back(TransferAction::Close(conn));
                return;
            }
        };
        let peer = pending.peer;
        self.givs.remove(&conn);
        let (giv, rest) = giv;
        // Matched by servent id and file index, never by name (gtk-gnutella
        // sends the literal name `file`).
        let waiting = self.fetches.iter().find_map(|(fid, f)| {
            let s = self.downloads.get(&f.download)?.sources.get(f.source)?;
            // A proxy may relay the Push faster than its `202` reaches us.
            let waiting = f.phase == Phase::AwaitingGiv || f.proxying;
            (waiting
                && s.servent_id == Some(giv.servent_id)
                && s.file_index.is_none_or(|i| i == giv.file_index))
            .then_some(*fid)
        });
        let Some(fid) = waiting else {
            log::info!("GIV from {peer}: no download is waiting for it, closing");
            self.actions.push_back(TransferAction::Close(conn));
            return;
        };
        if self.fetches.get(&fid).is_some_and(|f| f.proxying) {
            // Its answer no longer matters.
            self.detach_proxy(fid);
        }
        for queue in self.connecting.values_mut() {
            queue.retain(|q| *q != fid);
        }
        self.connecting.retain(|_, q| !q.is_empty());
        // The GIV comes from where the source really is.
        if let Some(f) = self.fetches.get(&fid) {
            if let Some(s) = self
                .downloads
                .get_mut(&f.download)
                .and_then(|d| d.sources.get_mut(f.source))
            {
                s.addr = SocketAddr::new(peer.ip(), s.addr.port());
            }
        }
        self.attach(fid, conn, now);
        if !rest.is_empty() {
            self.on_bytes(conn, &rest, now);
        }
    }

    /// Fetch `fid` has connection `conn`: ask for a span.
    fn attach(&mut self, fid: FetchId, conn: ConnId, now: Instant) {
        if let Some(f) = self.fetches.get_mut(&fid) {
            f.conn = Some(conn);
            self.by_conn.insert(conn, fid);
        }
        self.request_next(fid, now);
    }

    /// Takes the next span for fetch `fid` and sends its request; without
    /// work left, closes the connection.
    fn request_next(&mut self, fid: FetchId, now: Instant) {
        let Some(f) = self.fetches.get(&fid) else {
            return;
        };
        let (id, source) = (f.download, f.source);
        let chunks = self.config.request_chunks;
        let chunk_size = self.config.chunk_size;
        let Some(d) = self.downloads.get_mut(&id) else {
            self.end_fetch(fid, None, now);
            return;
        };
        if d.state != State::Running {
            self.end_fetch(fid, None, now);
            return;
        }
        if self.fetches.get(&fid).is_some_and(|f| f.proxying) {
            self.request_push_via_proxy(fid, now);
            return;
        }
        if self.request_tree(fid, now) {
            return;
        }
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let mut duplicate = false;
        let span = match &mut d.pieces {
            // The size is unknown: the first chunk's answer tells it.
            None => Span {
                start: 0,
                end: chunk_size,
            },
            Some(p) => match p.take_missing(chunks) {
                Some(span) => span,
                None => match p.take_duplicate() {
                    Some(span) => {
                        duplicate = true;
                        span
                    }
                    None => {
                        self.end_fetch(fid, None, now);
                        return;
                    }
                },
            },
        };
        let Some(s) = d.sources.get(source) else {
            return;
        };
        let host = s.addr;
        let use_get = s.file_index.is_some() && s.last_error.as_deref() == Some("no N2R");
        let target = match (use_get, s.file_index) {
            (true, Some(index)) => format!(
                "/get/{index}/{}",
                hazel_protocol::http::percent_encode(d.name.as_bytes())
            ),
            _ => format!("/uri-res/N2R?{}", hazel_protocol::huge::sha1_urn(&d.sha1)),
        };
        let mut request = Request::new(Method::Get, target.into_bytes(), HttpVersion::HTTP_11);
        request
            .headers
            .push("Host", &host.to_string())
            .push("User-Agent", &self.config.user_agent)
            .push("Range", &format!("bytes={}-{}", span.start, span.end - 1))
            .push("Connection", "Keep-Alive")
            .push(
                "X-Gnutella-Content-URN",
                &hazel_protocol::huge::sha1_urn(&d.sha1),
            );
        if let Some(SocketAddr::V4(own)) = self.config.own_addr {
            if !self.config.firewalled && !own.ip().is_unspecified() {
                // Where we listen, so the mesh the source names leaves us out.
                request.headers.push("X-Node", &own.to_string());
            }
        }
        let others: Vec<std::net::SocketAddrV4> = d
            .sources
            .iter()
            .filter(|o| o.delivered > 0 && !o.needs_push && o.addr != host)
            .filter_map(|o| match o.addr {
                SocketAddr::V4(v4) => Some(v4),
                SocketAddr::V6(_) => None,
            })
            .take(10)
            .collect();
        if !others.is_empty() {
            request
                .headers
                .push("X-Alt", &hazel_protocol::altloc::format_x_alt(&others));
        }
        let Some(f) = self.fetches.get_mut(&fid) else {
            return;
        };
        f.start_request(Some(span), now);
        if duplicate {
            f.duplicate = Some(Vec::with_capacity(span.len() as usize));
        }
        request.encode(&mut f.out);
        if let Some(conn) = f.conn {
            self.actions.push_back(TransferAction::WantWrite(conn));
        }
    }

    /// Bytes to write on `conn` (a request).
    pub fn output(&mut self, conn: ConnId) -> &[u8] {
        match self
            .by_conn
            .get(&conn)
            .and_then(|fid| self.fetches.get(fid))
        {
            Some(f) => f.out.get(f.out_pos..).unwrap_or_default(),
            None => &[],
        }
    }

    pub fn consume_output(&mut self, conn: ConnId, n: usize) {
        if let Some(f) = self
            .by_conn
            .get(&conn)
            .and_then(|fid| self.fetches.get_mut(fid))
        {
            f.out_pos = (f.out_pos + n).min(f.out.len());
            if f.out_pos == f.out.len() {
                f.out.clear();
                f.out_pos = 0;
            }
        }
    }

    /// Bytes read on a download connection (or a GIV).
    pub fn on_bytes(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        if self.givs.contains_key(&conn) {
            self.giv_bytes(conn, bytes, now);
            return;
        }
        let Some(&fid) = self.by_conn.get(&conn) else {
            return;
        };
        let mut input = bytes;
        // A keep-alive connection may carry a head, a body, the next head…
        for _ in 0..4 {
            if input.is_empty() {
                return;
            }
            let Some(f) = self.fetches.get_mut(&fid) else {
                return;
            };
            f.last_byte = now;
            match f.phase {
                Phase::Head => {
                    // What follows the head in the same read is body: only
                    // a head that has not ended within the limit is too long.
                    f.inbuf.extend_from_slice(input);
                    input = &[];
                    let buffered = std::mem::take(&mut f.inbuf);
                    match Response::parse_from(&buffered, &mut f.scan) {
                        Ok(Parsed::NeedMore) => {
                            if buffered.len() > MAX_HTTP_HEAD {
                                let why = "answer head too long";
                                self.end_fetch(fid, Some(Outcome::Failed(why.into())), now);
                                return;
                            }
                            if let Some(f) = self.fetches.get_mut(&fid) {
                                f.inbuf = buffered;
                            }
                        }
                        Ok(Parsed::Complete { message, consumed }) => {
                            let body = buffered.get(consumed..).unwrap_or_default().to_vec();
                            if !self.head(fid, &message, now) {
                                return;
                            }
                            if !body.is_empty() {
                                self.body(fid, &body, now);
                            }
                        }
                        Err(e) => {
                            let why = format!("unreadable answer: {e}");
                            self.end_fetch(fid, Some(Outcome::Failed(why.clone())), now);
                            return;
                        }
                    }
                }
                Phase::Body => {
                    let take = input.len().min(f.body_left as usize);
                    let (now_bytes, rest) = input.split_at(take);
                    input = rest;
                    self.body(fid, now_bytes, now);
                    if !input.is_empty()
                        && self
                            .fetches
                            .get(&fid)
                            .is_some_and(|f| f.phase == Phase::Body)
                    {
                        let why = "bytes beyond the announced length";
                        self.end_fetch(fid, Some(Outcome::Failed(why.into())), now);
                        return;
                    }
                }
                Phase::Connecting | Phase::AwaitingGiv => return,
            }
        }
    }

    /// The answer's head: true when a body follows for our span.
    fn head(&mut self, fid: FetchId, response: &Response, now: Instant) -> bool {
        let Some(f) = self.fetches.get(&fid) else {
            return false;
        };
        if f.proxying {
            self.proxy_answer(fid, response, now);
            return false;
        }
        if f.tree.is_some() {
            return self.tree_head(fid, response, now);
        }
        let (id, source_index) = (f.download, f.source);
        let span = f.span.unwrap_or(Span { start: 0, end: 0 });
        self.harvest_alt_locs(id, response);
        let Some(d) = self.downloads.get(&id) else {
            return false;
        };
        // Every urn the answer names (gtk-gnutella's header, Shareaza's
        // `X-Content-URN`, several per header or one per line) must be ours.
        let named = ["X-Gnutella-Content-URN", "X-Content-URN"]
            .iter()
            .flat_map(|h| response.headers.get_all(h))
            .flat_map(|v| v.split(','))
            .filter_map(|u| hazel_protocol::huge::Urn::parse(u.trim().as_bytes()).sha1());
        if named.into_iter().any(|s| s != d.sha1) {
            self.end_fetch(fid, Some(Outcome::Drop(Dropped::WrongFile)), now);
            return false;
        }
        match response.code {
            200 | 206 => {}
            503 => {
                let retry = response
                    .headers
                    .get("Retry-After")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(Duration::from_secs(60), Duration::from_secs);
                self.end_fetch(fid, Some(Outcome::Busy(retry)), now);
                return false;
            }
            404 | 410 => {
                // An old servent may know only `/get/<index>/<name>`.
                let s = d.sources.get(source_index);
                let fallback = s.is_some_and(|s| {
                    s.file_index.is_some() && s.last_error.as_deref() != Some("no N2R")
                });
                if fallback {
                    if let Some(s) = self
                        .downloads
                        .get_mut(&id)
                        .and_then(|d| d.sources.get_mut(source_index))
                    {
                        s.last_error = Some("no N2R".into());
                    }
                    self.end_fetch(fid, None, now);
                    return false;
                }
                self.end_fetch(fid, Some(Outcome::Drop(Dropped::NotFound)), now);
                return false;
            }
            416 => {
                self.end_fetch(fid, Some(Outcome::Drop(Dropped::WrongSize)), now);
                return false;
            }
            code => {
                let why = format!("answered {code} {}", response.reason);
                self.end_fetch(fid, Some(Outcome::Failed(why.clone())), now);
                return false;
            }
        }
        let length = match response.content_length() {
            Ok(Some(n)) => n,
            _ => {
                let why = "no usable Content-Length";
                self.end_fetch(fid, Some(Outcome::Failed(why.into())), now);
                return false;
            }
        };
        // What the answer carries: its Content-Range, or (200) the whole file.
        let (first, total) = if response.code == 206 {
            match response.content_range() {
                Some(Ok(range)) => match range.span {
                    Some(s) if s.last - s.first + 1 == length => (s.first, range.total),
                    _ => {
                        let why = "Content-Range and Content-Length disagree";
                        self.end_fetch(fid, Some(Outcome::Failed(why.into())), now);
                        return false;
                    }
                },
                _ => {
                    let why = "206 without a usable Content-Range";
                    self.end_fetch(fid, Some(Outcome::Failed(why.into())), now);
                    return false;
                }
            }
        } else {
            (0, Some(length))
        };
        let known = self.downloads.get(&id).and_then(|d| d.size());
        let mut span = span;
        match (known, total) {
            (Some(size), Some(total)) if size != total => {
                self.end_fetch(fid, Some(Outcome::Drop(Dropped::WrongSize)), now);
                return false;
            }
            (None, Some(total)) => {
                // The size probe: now the chunk map exists, and the probe
                // holds the chunks it covers.
                let chunk = self.config.chunk_size;
                span.end = span.end.min(total);
                if let Some(d) = self.downloads.get_mut(&id) {
                    d.set_size(total, chunk);
                    d.unsaved = true;
                    if let Some(p) = &mut d.pieces {
                        p.assign(span);
                    }
                    self.actions.push_back(TransferAction::Disk(DiskJob::Open {
                        download: id,
                        stem: d.stem.clone(),
                        size: Some(total),
                    }));
                }
            }
            (None, None) => {
                self.end_fetch(
                    fid,
                    Some(Outcome::Failed("it does not say the file's size".into())),
                    now,
                );
                return false;
            }
            _ => {}
        }
        if first != span.start {
            self.end_fetch(
                fid,
                Some(Outcome::Failed("it sent another range than asked".into())),
                now,
            );
            return false;
        }
        let end = (first + length).min(span.end);
        let keep_alive =
            response.code == 206 && first + length <= span.end && keeps_alive(response);
        // A shorter answer than asked: the chunks it will not fill go back
        // (the partial one too: it is fetched whole by someone else).
        if end < span.end {
            if let Some(p) = self.downloads.get_mut(&id).and_then(|d| d.pieces.as_mut()) {
                let cut = end / p.chunk_size() * p.chunk_size();
                let cut = cut.max(span.start);
                p.release(Span {
                    start: cut,
                    end: span.end,
                });
                span.end = cut;
            }
        }
        let Some(f) = self.fetches.get_mut(&fid) else {
            return false;
        };
        f.span = Some(span);
        f.phase = Phase::Body;
        f.phase_since = now;
        f.body_left = length;
        f.keep_alive = keep_alive;
        if length == 0 {
            self.span_done(fid, now);
        }
        true
    }

    /// The head of the answer to a tree request: true when the tree follows.
    fn tree_head(&mut self, fid: FetchId, response: &Response, now: Instant) -> bool {
        let Some(f) = self.fetches.get_mut(&fid) else {
            return false;
        };
        let id = f.download;
        let length = response.content_length().ok().flatten();
        match length {
            Some(n) if response.code == 200 && n <= MAX_DIME_LEN as u64 => {
                f.phase = Phase::Body;
                f.phase_since = now;
                f.body_left = n;
                f.keep_alive = keeps_alive(response);
                if n == 0 {
                    self.tree_done(fid, now);
                }
                true
            }
            _ => {
                // No tree here (a 404, a 503, too long): not the source's
                // fault; it is free again for the file itself.
                log::debug!(
                    "download {id}: no usable Tiger tree: {} {}",
                    response.code,
                    response.reason
                );
                self.end_fetch(fid, None, now);
                self.schedule(now);
                false
            }
        }
    }

    /// The whole tree body is in: use it, then go on with the file.
    fn tree_done(&mut self, fid: FetchId, now: Instant) {
        let Some(f) = self.fetches.get_mut(&fid) else {
            return;
        };
        let body = f.tree.take().unwrap_or_default();
        let (id, keep) = (f.download, f.keep_alive);
        self.tree_arrived(id, fid, &body);
        if keep {
            self.request_next(fid, now);
        } else {
            self.end_fetch(fid, None, now);
            self.schedule(now);
        }
    }

    /// Body bytes of the current answer.
    fn body(&mut self, fid: FetchId, bytes: &[u8], now: Instant) {
        let Some(f) = self.fetches.get_mut(&fid) else {
            return;
        };
        if let Some(tree) = &mut f.tree {
            let take = bytes.len().min(f.body_left as usize);
            tree.extend_from_slice(&bytes[..take]);
            f.body_left -= take as u64;
            if f.body_left == 0 {
                self.tree_done(fid, now);
            }
            return;
        }
        let span = f.span.unwrap_or(Span { start: 0, end: 0 });
        let take = bytes.len().min(f.body_left as usize);
        let bytes = &bytes[..take];
        f.body_left -= take as u64;
        let offset = f.next;
        // Bytes past our span (a 200 for the whole file) are not written.
        let useful = (span.end.saturating_sub(offset) as usize).min(bytes.len());
        f.next += take as u64;
        let (id, source) = (f.download, f.source);
        let body_left = f.body_left;
        let conn = f.conn;
        let reached = offset + useful as u64;
        // An endgame copy holds its bytes until its span is whole: two
        // connections never write the same chunk at once.
        let duplicate = match &mut f.duplicate {
            Some(held) => {
                held.extend_from_slice(&bytes[..useful]);
                Some(if reached >= span.end {
                    std::mem::take(held)
                } else {
                    Vec::new()
                })
            }
            None => None,
        };
        let mut received = None;
        let mut writes: Vec<(u64, Vec<u8>)> = Vec::new();
        if useful > 0 {
            if let Some(d) = self.downloads.get_mut(&id) {
                d.count_rate(useful as u64, now);
                d.unsaved = true;
                if let Some(p) = &mut d.pieces {
                    match duplicate {
                        Some(held) => {
                            if reached >= span.end {
                                // Whole: each chunk still wanted takes it (the
                                // other copy may have won already).
                                for i in p.chunks_of(span) {
                                    let whole = p.span(i);
                                    if !matches!(p.state(i), Some(Chunk::Assigned(_))) {
                                        continue;
                                    }
                                    let from = (whole.start - span.start) as usize;
                                    let to = (whole.end - span.start) as usize;
                                    if let Some(part) = held.get(from..to) {
                                        writes.push((whole.start, part.to_vec()));
                                        p.received(i);
                                        if let Some(slot) = d.chunk_source.get_mut(i) {
                                            *slot = u16::try_from(source).ok();
                                        }
                                        if let Some(s) = d.sources.get_mut(source) {
                                            s.delivered += whole.len();
                                        }
                                    }
                                }
                                received = Some(p.chunks_of(span));
                            }
                        }
                        None => {
                            // Only chunks still being fetched take the bytes: a
                            // chunk the endgame copy brought in first keeps its own.
                            for i in p.chunks_of(Span {
                                start: offset,
                                end: reached,
                            }) {
                                if !matches!(p.state(i), Some(Chunk::Assigned(_))) {
                                    continue;
                                }
                                let whole = p.span(i);
                                let (a, b) = (whole.start.max(offset), whole.end.min(reached));
                                let part = &bytes[(a - offset) as usize..(b - offset) as usize];
                                match writes.last_mut() {
                                    Some((at, data)) if *at + data.len() as u64 == a => {
                                        data.extend_from_slice(part)
                                    }
                                    _ => writes.push((a, part.to_vec())),
                                }
                            }
                            // Chunks this connection now holds whole.
                            let whole_chunks = p.chunks_of(Span {
                                start: span.start,
                                end: reached,
                            });
                            received = Some(whole_chunks.clone());
                            for i in whole_chunks {
                                let whole = p.span(i);
                                if whole.start >= span.start
                                    && whole.end <= reached
                                    && matches!(p.state(i), Some(Chunk::Assigned(_)))
                                {
                                    p.received(i);
                                    if let Some(slot) = d.chunk_source.get_mut(i) {
                                        *slot = u16::try_from(source).ok();
                                    }
                                    if let Some(s) = d.sources.get_mut(source) {
                                        s.delivered += whole.len();
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for (at, data) in writes {
            self.disk_in_flight += data.len();
            self.actions.push_back(TransferAction::Disk(DiskJob::Write {
                download: id,
                offset: at,
                data,
            }));
        }
        if self.disk_in_flight > self.config.disk_high_water {
            if let Some(conn) = conn {
                if self.reads_paused.insert(conn) {
                    self.actions.push_back(TransferAction::PauseReading(conn));
                }
            }
        }
        if let Some(chunks) = received {
            self.check_units(id, chunks);
        }
        let reached_end = self
            .fetches
            .get(&fid)
            .is_some_and(|f| f.next >= span.end || body_left == 0);
        if reached_end {
            self.span_done(fid, now);
        }
    }

    /// The span came in whole.
    fn span_done(&mut self, fid: FetchId, now: Instant) {
        let Some(f) = self.fetches.get_mut(&fid) else {
            return;
        };
        let span = f.span.take().unwrap_or(Span { start: 0, end: 0 });
        let elapsed = now
            .saturating_duration_since(f.span_started)
            .as_secs_f64()
            .max(0.001);
        let keep = f.keep_alive && f.body_left == 0;
        let (id, source) = (f.download, f.source);
        let complete = match self.downloads.get_mut(&id) {
            Some(d) => {
                if let Some(s) = d.sources.get_mut(source) {
                    s.span_done(span.len() as f64 / elapsed);
                }
                d.pieces.as_ref().is_some_and(|p| p.complete())
            }
            None => false,
        };
        if complete && self.downloads.get(&id).is_some_and(|d| d.tree.settled()) {
            self.all_in(id, now);
            return;
        }
        if keep {
            self.request_next(fid, now);
        } else {
            self.end_fetch(fid, None, now);
            self.schedule(now);
        }
    }

    /// Ends fetch `fid`: its connection closes, its span goes back, its
    /// source hears `outcome` (nothing: it did fine, it is free again).
    pub(super) fn end_fetch(&mut self, fid: FetchId, outcome: Option<Outcome>, now: Instant) {
        let Some(f) = self.fetches.remove(&fid) else {
            return;
        };
        if let Some(conn) = f.conn {
            self.by_conn.remove(&conn);
            self.reads_paused.remove(&conn);
            self.actions.push_back(TransferAction::Close(conn));
        }
        for queue in self.connecting.values_mut() {
            queue.retain(|q| *q != fid);
        }
        self.connecting.retain(|_, q| !q.is_empty());
        let Some(d) = self.downloads.get_mut(&f.download) else {
            return;
        };
        d.fetches = d.fetches.saturating_sub(1);
        d.tree.fetch_ended(fid);
        if let (Some(span), Some(p)) = (f.span, d.pieces.as_mut()) {
            p.release(span);
        }
        if let Some(s) = d.sources.get_mut(f.source) {
            s.busy = false;
            match outcome {
                None => {}
                Some(Outcome::Failed(reason)) => {
                    log::debug!("download {}: source {} failed: {reason}", d.id, s.addr);
                    s.failed(&reason, now);
                }
                Some(Outcome::Busy(wait)) => s.busy_until(wait, now),
                Some(Outcome::Drop(reason)) => s.drop_for(reason),
            }
        }
    }

    /// A download connection closed under us.
    pub fn on_closed(&mut self, conn: ConnId, now: Instant) {
        if self.givs.remove(&conn).is_some() {
            return;
        }
        let Some(&fid) = self.by_conn.get(&conn) else {
            return;
        };
        if self.fetches.get(&fid).is_some_and(|f| f.proxying) {
            self.by_conn.remove(&conn);
            if let Some(f) = self.fetches.get_mut(&fid) {
                f.conn = None;
            }
            self.proxy_failed(fid, "the proxy closed without answering", now);
            return;
        }
        // Closing cleanly after a complete, non-kept-alive answer is fine.
        let outcome = match self.fetches.get(&fid) {
            Some(f) if f.phase == Phase::Body || f.phase == Phase::Head => {
                Some(Outcome::Failed("closed in the middle of an answer".into()))
            }
            _ => None,
        };
        if let Some(f) = self.fetches.get_mut(&fid) {
            f.conn = None;
        }
        self.by_conn.remove(&conn);
        self.end_fetch(fid, outcome, now);
        self.schedule(now);
    }

    /// Stalls, Pushes without a GIV, GIV lines that never end, slow sources.
    pub(super) fn tick_fetches(&mut self, now: Instant) {
        let stall = self.config.stall_timeout;
        let push_timeout = self.config.push_timeout;
        let mut stalled = Vec::new();
        let mut repush = Vec::new();
        let mut held = Vec::new();
        for (&fid, f) in &self.fetches {
            match f.phase {
                Phase::Head | Phase::Body => {
                    if now.saturating_duration_since(f.last_byte) >= stall {
                        stalled.push(fid);
                    }
                }
                Phase::AwaitingGiv => match f.push_due {
                    Some(due) => {
                        if now >= due {
                            held.push(fid);
                        }
                    }
                    None => {
                        if now.saturating_duration_since(f.phase_since) >= push_timeout {
                            repush.push(fid);
                        }
                    }
                },
                Phase::Connecting => {}
            }
        }
        for fid in stalled {
            let why = format!("no byte for {} s", stall.as_secs());
            if self.fetches.get(&fid).is_some_and(|f| f.proxying) {
                self.proxy_failed(fid, &why, now);
            } else {
                self.end_fetch(fid, Some(Outcome::Failed(why.clone())), now);
            }
        }
        // Held Pushes go in the order they were asked for.
        held.sort_unstable();
        for fid in held {
            self.send_push(fid, now);
        }
        for fid in repush {
            let attempts = self.fetches.get(&fid).map_or(0, |f| f.pushes);
            if attempts >= self.config.push_attempts {
                let why = format!("no GIV after {attempts} Pushes");
                self.end_fetch(fid, Some(Outcome::Failed(why.clone())), now);
            } else if let Some(f) = self.fetches.get_mut(&fid) {
                f.phase_since = now;
                self.reach_firewalled(fid, now);
            }
        }
        let late: Vec<ConnId> = self
            .givs
            .iter()
            .filter(|(_, g)| now.saturating_duration_since(g.since) >= GIV_TIMEOUT)
            .map(|(c, _)| *c)
            .collect();
        for conn in late {
            self.givs.remove(&conn);
            self.actions.push_back(TransferAction::Close(conn));
        }
        self.replace_slow(now);
    }

    /// A connection far slower than the best of its download gives its span
    /// to a free source, when there is one.
    fn replace_slow(&mut self, now: Instant) {
        let mut slow = Vec::new();
        for d in self.downloads.values() {
            if d.state != State::Running || !d.sources.iter().any(|s| s.ready(now)) {
                continue;
            }
            let rates: Vec<(FetchId, f64)> = self
                .fetches
                .iter()
                .filter(|(_, f)| f.download == d.id && f.phase == Phase::Body)
                .filter(|(_, f)| now.saturating_duration_since(f.span_started) >= SLOW_AFTER)
                .map(|(fid, f)| {
                    let got = f.next - f.span.map_or(f.next, |s| s.start);
                    let secs = now.saturating_duration_since(f.span_started).as_secs_f64();
                    (*fid, got as f64 / secs.max(0.001))
                })
                .collect();
            let best = d.sources.iter().map(|s| s.rate).fold(0.0, f64::max);
            for (fid, rate) in rates {
                if best > 0.0 && rate * SLOW_RATIO < best {
                    slow.push(fid);
                }
            }
        }
        for fid in slow {
            self.end_fetch(
                fid,
                Some(Outcome::Failed("far slower than the others".into())),
                now,
            );
        }
    }

    /// Sources named by an answer's mesh headers join the download.
    fn harvest_alt_locs(&mut self, id: DownloadId, response: &Response) {
        let mut found = Vec::new();
        for value in response.headers.get_all("X-Alt") {
            for loc in parse_x_alt(value) {
                if let AltLoc::Direct(addr) = loc {
                    found.push(SocketAddr::V4(addr));
                }
            }
        }
        for value in response.headers.get_all("X-Gnutella-Alternate-Location") {
            found.extend(
                parse_alternate_location(value)
                    .into_iter()
                    .map(SocketAddr::V4),
            );
        }
        for addr in found {
            self.add_source(
                id,
                SourceSpec {
                    addr,
                    servent_id: None,
                    file_index: None,
                    needs_push: false,
                    origin: Origin::Mesh,
                    proxies: Vec::new(),
                },
            );
        }
    }
}

/// Whether the server keeps the connection open after this answer.
fn keeps_alive(response: &Response) -> bool {
    let connection = response.headers.get("Connection").unwrap_or_default();
    let close = connection
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("close"));
    let keep = connection
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("keep-alive"));
    match response.version {
        Some(v) if v >= HttpVersion::HTTP_11 => !close,
        _ => keep,
    }
}

/// `pop_front` under a name that reads well at the call sites.
trait VecDequeExt {
    fn pop(&mut self) -> Option<FetchId>;
}

impl VecDequeExt for std::collections::VecDeque<FetchId> {
    fn pop(&mut self) -> Option<FetchId> {
        self.pop_front()
    }
}
