//! Serving shared files: the HTTP connections (an incoming `GET`/`HEAD`, or
//! our GIV callback that a downloader then sends its `GET` on), each driven
//! by the shares' sans-IO upload session. A file body is handed to the
//! reactor as a span of an open file ([`Output::File`]), which it sends with
//! `sendfile(2)` as the socket drains: no copy through user space, no buffer.
//!
//! Limits: a request head must arrive whole within the head timeout; a reply
//! the client reads nothing of for the stall timeout is cut and its slot
//! freed; slots are limited in all and per client address; at most
//! [`MAX_GIV_CALLBACKS`] callbacks connect at once; a kept-alive connection
//! with nothing in flight is closed after [`UPLOAD_IDLE`]. Every file opened
//! is checked to lie inside the shared folders.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use hazel_protocol::giv::Giv;
use hazel_protocol::text::escape_path;

use crate::config::Limits;
use crate::core::shares::mesh::Mesh;
use crate::core::shares::upload::{self, ProxyVerdict, PushProxyAsk};
use crate::core::shares::upload::{FileSpan, UploadConfig, UploadPoll, UploadSession, UploadSlots};
use crate::core::shares::Library;
use crate::core::{ConnId, PushRequest};
use crate::reactor::{Action, Kind, Output};
use crate::scanner::Confinement;

/// How push-proxy requests reach the core.
pub type Relay<'a> = &'a mut dyn FnMut(PushProxyAsk) -> ProxyVerdict;

/// GIV callbacks connecting at once; further Pushes wait for the next one.
pub const MAX_GIV_CALLBACKS: usize = 8;
/// A kept-alive HTTP connection with nothing in flight is closed after this long.
pub const UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// The rest of a file body being sent.
struct Body {
    file: std::fs::File,
    /// Where the next byte comes from in the file.
    offset: u64,
    remaining: u64,
}

/// One HTTP connection.
struct Upload {
    session: UploadSession,
    peer: SocketAddr,
    /// Output ready to write before the body: a response head (or a GIV line).
    out: Vec<u8>,
    sent: usize,
    body: Option<Body>,
    /// A reply is in flight (its head or body not yet fully written).
    replying: bool,
    /// Close once `out` and `body` are written.
    close_after: bool,
    closing: bool,
    /// Last byte received or sent.
    last_activity: Instant,
    /// When the request head being read began (its first byte, or the
    /// connection): the whole head must arrive within the head timeout.
    head_started: Option<Instant>,
    /// Last time a byte of a reply was written.
    last_progress: Instant,
    /// The file body being sent, for `transfers`.
    serving: Option<Serving>,
    /// The last file this connection was counted as an upload of.
    counted: Option<u32>,
}

/// A file body in flight.
struct Serving {
    name: String,
    len: u64,
    sent: u64,
    started: Instant,
}

/// A row of `transfers` for an upload.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UploadInfo {
    pub id: ConnId,
    pub peer: SocketAddr,
    /// The file being sent, if any.
    pub name: Option<String>,
    pub size: u64,
    pub done: u64,
    /// Bytes per second since the body began.
    pub rate: u64,
    pub state: &'static str,
}

impl Upload {
    fn new(peer: SocketAddr, now: Instant) -> Upload {
        Upload {
            session: UploadSession::for_peer(UploadConfig::default(), peer.ip()),
            peer,
            out: Vec::new(),
            sent: 0,
            body: None,
            replying: false,
            close_after: false,
            closing: false,
            last_activity: now,
            head_started: Some(now),
            last_progress: now,
            serving: None,
            counted: None,
        }
    }

    fn pending(&self) -> &[u8] {
        self.out.get(self.sent..).unwrap_or_default()
    }

    fn in_flight(&self) -> bool {
        self.replying || !self.pending().is_empty() || self.body.is_some()
    }
}

/// Every upload connection of the servent.
pub struct Uploads {
    conns: HashMap<ConnId, Upload>,
    slots: UploadSlots,
    limits: Limits,
    confinement: Confinement,
    /// Other servents known to have the files we share (named in replies).
    mesh: Mesh,
    /// GIV callbacks being connected: address → the GIV line to send.
    pending_givs: HashMap<SocketAddr, Vec<u8>>,
    actions: VecDeque<Action>,
    /// Uploads begun per shared file (by library index): a connection counts once per file.
    by_file: HashMap<u32, u64>,
}

impl Uploads {
    pub fn new(limits: Limits, confinement: Confinement) -> Uploads {
        Uploads {
            conns: HashMap::new(),
            slots: UploadSlots::with_per_ip(limits.upload_slots, limits.upload_slots_per_ip),
            limits,
            confinement,
            mesh: Mesh::new(),
            pending_givs: HashMap::new(),
            actions: VecDeque::new(),
            by_file: HashMap::new(),
        }
    }

    /// How many uploads of the shared file with this index have begun.
    pub fn uploads_of_file(&self, index: u32) -> u64 {
        self.by_file.get(&index).copied().unwrap_or(0)
    }

    pub fn contains(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    /// The slots and the shared folders' check, for the Napster data port.
    pub fn slots_and_confinement(&mut self) -> (&mut UploadSlots, &Confinement) {
        (&mut self.slots, &self.confinement)
    }

    /// How long a reader may read nothing of a body.
    pub fn stall_limit(&self) -> Duration {
        self.limits.upload_stall
    }

    /// Our download of `sha1` verified with bytes from `sources`: they are
    /// named to whoever downloads the file from us.
    pub fn verified_sources(&mut self, sha1: [u8; 20], sources: &[SocketAddrV4], now: Instant) {
        for &addr in sources {
            self.mesh.verified(sha1, addr, now);
        }
    }

    /// Every slot is taken (QueryHits say busy).
    pub fn busy(&self) -> bool {
        self.slots.all_taken()
    }

    /// An upload completed at least once (QueryHits say so).
    pub fn have_uploaded(&self) -> bool {
        self.slots.have_uploaded()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// An incoming connection sniffed as HTTP.
    pub fn open_request(&mut self, id: ConnId, peer: SocketAddr, now: Instant) {
        self.conns.insert(id, Upload::new(peer, now));
    }

    /// Our GIV callback connected: announce the file, then serve the GET
    /// that follows.
    pub fn open_callback(&mut self, id: ConnId, peer: SocketAddr, now: Instant) {
        let mut upload = Upload::new(peer, now);
        if let Some(line) = self.pending_givs.remove(&peer) {
            upload.out = line;
        }
        self.conns.insert(id, upload);
        self.actions.push_back(Action::WantWrite(id));
    }

    /// Starts a GIV callback for a Push addressed to us (the core already
    /// rate-limited them; at most [`MAX_GIV_CALLBACKS`] connect at once).
    pub fn start_giv(&mut self, push: &PushRequest, library: &Library) {
        if self.pending_givs.len() >= MAX_GIV_CALLBACKS
            || self.pending_givs.contains_key(&push.addr)
        {
            log::info!(
                "push for file {} from {}: {} callbacks already connecting, ignored",
                push.file_index,
                push.addr,
                self.pending_givs.len()
            );
            return;
        }
        let Ok(id) = data_encoding::HEXLOWER_PERMISSIVE.decode(push.servent_id.as_bytes()) else {
            return;
        };
        let Ok(servent_id) = <[u8; 16]>::try_from(id.as_slice()) else {
            return;
        };
        let giv = Giv {
            file_index: push.file_index,
            servent_id,
            file_name: library
                .get(push.file_index)
                .map(|f| f.name.clone().into_bytes())
                .unwrap_or_default(),
        };
        let mut line = Vec::with_capacity(giv.encoded_len());
        giv.encode(&mut line);
        self.pending_givs.insert(push.addr, line);
        self.actions
            .push_back(Action::ConnectAs(push.addr, Kind::Giv));
    }

    /// A GIV callback could not connect.
    pub fn callback_failed(&mut self, addr: SocketAddr, error: &str) {
        log::info!("GIV callback to {addr} failed: {error}");
        self.pending_givs.remove(&addr);
    }

    pub fn on_bytes(
        &mut self,
        id: ConnId,
        bytes: &[u8],
        library: &Library,
        relay: Relay<'_>,
        now: Instant,
    ) {
        let Some(upload) = self.conns.get_mut(&id) else {
            return;
        };
        upload.last_activity = now;
        if !bytes.is_empty() {
            // The next head began (it may wait behind a reply in flight).
            upload.head_started.get_or_insert(now);
        }
        upload.session.on_bytes(bytes);
        self.drive(id, library, relay, now);
    }

    pub fn on_closed(&mut self, id: ConnId) {
        if let Some(mut upload) = self.conns.remove(&id) {
            upload.session.on_close(&mut self.slots);
            log::debug!("HTTP connection {id} from {} closed", upload.peer);
        }
    }

    /// Lets the upload session answer what it has buffered; queues its reply.
    fn drive(&mut self, id: ConnId, library: &Library, relay: Relay<'_>, now: Instant) {
        let Some(upload) = self.conns.get_mut(&id) else {
            return;
        };
        if upload.replying || upload.closing {
            return;
        }
        match upload.session.poll_with(
            library,
            &mut self.slots,
            &mut upload::Serving {
                mesh: &mut self.mesh,
                relay,
                now,
            },
        ) {
            UploadPoll::NeedMore => return,
            UploadPoll::Close => {
                upload.closing = true;
                self.actions.push_back(Action::Close(id));
                return;
            }
            UploadPoll::Respond(reply) => {
                log::info!("HTTP {} to {}", reply.status, upload.peer);
                upload.out.extend_from_slice(&reply.head);
                upload.replying = true;
                upload.head_started = None;
                upload.last_progress = now;
                upload.close_after = !reply.keep_alive;
                if let Some(span) = &reply.body {
                    match open_span(span, &self.confinement) {
                        Ok(body) => {
                            if upload.counted != Some(span.index) {
                                upload.counted = Some(span.index);
                                *self.by_file.entry(span.index).or_insert(0) += 1;
                            }
                            upload.body = Some(body);
                            upload.serving = Some(Serving {
                                name: library
                                    .get(span.index)
                                    .map(|f| f.name.clone())
                                    .unwrap_or_default(),
                                len: span.len,
                                sent: 0,
                                started: now,
                            });
                        }
                        Err(e) => {
                            // The head promised bytes we cannot send: end the connection.
                            log::warn!("upload of {}: {e}", escape_path(&span.path));
                            upload.out.clear();
                            upload.closing = true;
                            self.actions.push_back(Action::Close(id));
                            return;
                        }
                    }
                }
            }
        }
        self.actions.push_back(Action::WantWrite(id));
    }

    /// What is ready to write on `id`: the head, then the body as a file span.
    pub fn output(&mut self, id: ConnId) -> Output<'_> {
        let Some(upload) = self.conns.get_mut(&id) else {
            return Output::Bytes(&[]);
        };
        if upload.sent < upload.out.len() {
            return Output::Bytes(&upload.out[upload.sent..]);
        }
        if let Some(body) = &upload.body {
            return Output::File {
                file: &body.file,
                offset: body.offset,
                len: body.remaining,
            };
        }
        if upload.close_after && !upload.replying && !upload.closing {
            upload.closing = true;
            self.actions.push_back(Action::Close(id));
        }
        Output::Bytes(&[])
    }

    /// `n` bytes of [`Uploads::output`] were written on `id`.
    pub fn consume(
        &mut self,
        id: ConnId,
        n: usize,
        library: &Library,
        relay: Relay<'_>,
        now: Instant,
    ) {
        let Some(upload) = self.conns.get_mut(&id) else {
            return;
        };
        upload.last_activity = now;
        if n > 0 {
            upload.last_progress = now;
        }
        if upload.sent < upload.out.len() {
            upload.sent = (upload.sent + n).min(upload.out.len());
            if upload.sent == upload.out.len() {
                upload.out.clear();
                upload.sent = 0;
            }
        } else if let Some(body) = &mut upload.body {
            let n = (n as u64).min(body.remaining);
            body.offset += n;
            body.remaining -= n;
            if let Some(serving) = &mut upload.serving {
                serving.sent += n;
            }
            if body.remaining == 0 {
                upload.body = None;
            }
        }
        if upload.out.is_empty() && upload.body.is_none() && upload.replying {
            // Head (and body) written: the reply is complete.
            upload.replying = false;
            upload.serving = None;
            upload.session.reply_sent(&mut self.slots);
            self.drive(id, library, relay, now);
        }
    }

    /// The upload connections, for `transfers`.
    pub fn list(&self, now: Instant) -> Vec<UploadInfo> {
        let mut rows: Vec<UploadInfo> = self
            .conns
            .iter()
            .map(|(&id, u)| {
                let (name, size, done, rate) = match &u.serving {
                    Some(s) => {
                        let secs = now.saturating_duration_since(s.started).as_secs_f64();
                        let rate = if secs > 0.0 {
                            s.sent as f64 / secs
                        } else {
                            0.0
                        };
                        (Some(s.name.clone()), s.len, s.sent, rate as u64)
                    }
                    None => (None, 0, 0, 0),
                };
                UploadInfo {
                    id,
                    peer: u.peer,
                    name,
                    size,
                    done,
                    rate,
                    state: if u.closing {
                        "closing"
                    } else if u.serving.is_some() {
                        "sending"
                    } else if u.replying {
                        "answering"
                    } else {
                        "waiting for a request"
                    },
                }
            })
            .collect();
        rows.sort_by_key(|r| r.id);
        rows
    }

    /// Closes what outstayed its limits.
    pub fn tick(&mut self, now: Instant) {
        let limits = &self.limits;
        for (&id, upload) in self.conns.iter_mut() {
            if upload.closing {
                continue;
            }
            let why = if upload.in_flight() {
                // A reply the client does not read: free its slot.
                (now.saturating_duration_since(upload.last_progress) >= limits.upload_stall)
                    .then_some("stalled: the client read nothing")
            } else if let Some(started) = upload.head_started {
                // A head dribbled byte by byte: a total deadline, not an idle one.
                (now.saturating_duration_since(started) >= limits.head_timeout)
                    .then_some("request head not complete in time")
            } else {
                (now.saturating_duration_since(upload.last_activity) >= UPLOAD_IDLE)
                    .then_some("idle")
            };
            if let Some(why) = why {
                log::info!("HTTP connection {id} from {}: {why}, closing", upload.peer);
                upload.closing = true;
                self.actions.push_back(Action::Close(id));
            }
        }
    }
}

/// Opens the file of a span, checking it is still what the library saw and
/// still inside the shared folders.
fn open_span(span: &FileSpan, confinement: &Confinement) -> io::Result<Body> {
    let file = crate::scanner::open_span(span, confinement)?;
    Ok(Body {
        file,
        offset: span.offset,
        remaining: span.len,
    })
}
