//! The running servent: the sans-IO [`Core`] and the library scanner put
//! together behind the reactor's [`Engine`] interface, the shell's commands
//! answered from them, and [`run`], which starts everything `hazel` needs.
//!
//! Besides the overlay (handed to the core), the node serves the other kinds
//! of connection the reactor sniffs: HTTP `GET`/`HEAD` through the shares'
//! upload session (file bodies read in 64 KiB chunks as the socket drains),
//! and GIV callbacks for Pushes addressed to us (connect out, send the GIV,
//! serve the `GET` that follows). A GIV arriving unasked is closed: Hazel has
//! no downloads waiting for one. Files it writes: `hosts`, `servent-id`,
//! `port` and `control.sock` in the data dir (the library adds its SHA-1 cache).

use crate::config::{Config, Limits, ProtocolVersion};
use crate::control;
use crate::core::shares::upload::{FileSpan, UploadConfig, UploadPoll, UploadSession, UploadSlots};
use crate::core::shares::Library;
use crate::core::{
    self as core_mod, Action, ConnectOutcome, Core, CoreConfig, CoreEvent, HostCache,
};
use crate::library::{Confinement, LibraryConfig, LibraryScanner};
use crate::reactor::{
    socket_budget, ConnId, Direction, Engine, EngineAction, Handle, Reactor, ReactorConfig, Sniffed,
};
use crate::shell::{Command, Reply, Response};
use crate::store::{DataDir, CONTROL_SOCKET, HOST_CACHE_FILE, PORT_FILE, SERVENT_ID_FILE};
use crossbeam_channel::Receiver;
use hazel_protocol::text::{escape_path, Escaped};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Most files listed by `shares` (the totals always count all of them).
const SHARES_LISTED: usize = 1000;
/// Most hosts listed by `hosts`.
const HOSTS_LISTED: usize = 1000;

/// Bytes of a file read per refill of an upload's output (one disk read of
/// this size happens on the loop thread only when the socket has drained).
const UPLOAD_CHUNK: usize = 64 * 1024;

/// GIV callbacks connecting at once; further Pushes wait for the next one.
const MAX_GIV_CALLBACKS: usize = 8;
/// A kept-alive HTTP connection with nothing in flight is closed after this long.
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// The rest of a file body being sent.
struct Body {
    file: std::fs::File,
    remaining: u64,
}

/// An HTTP connection (an incoming `GET`/`HEAD`, or our GIV callback that a
/// downloader then sends its `GET` on), driven by the shares' upload session.
struct Upload {
    session: UploadSession,
    peer: SocketAddr,
    /// Output ready to write: a response head, then body chunks.
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
    /// Last time a byte of a reply was written: a reply that makes no
    /// progress for the stall timeout is cut and its slot freed.
    last_progress: Instant,
}

impl Upload {
    fn new(peer: SocketAddr, now: Instant) -> Upload {
        Upload {
            session: UploadSession::for_peer(UploadConfig::default(), peer.ip()),
            head_started: Some(now),
            last_progress: now,
            peer,
            out: Vec::new(),
            sent: 0,
            body: None,
            replying: false,
            close_after: false,
            closing: false,
            last_activity: now,
        }
    }

    fn pending(&self) -> &[u8] {
        self.out.get(self.sent..).unwrap_or_default()
    }
}

/// Opens the file of a span, checking it is still what the library saw and
/// still inside the shared folders.
fn open_span(span: &FileSpan, confinement: &Confinement) -> io::Result<Body> {
    let file = crate::library::open_span(span, confinement)?;
    Ok(Body {
        file,
        remaining: span.len,
    })
}

/// The servent behind the reactor.
pub struct Node {
    core: Core,
    data: DataDir,
    scanner: Option<LibraryScanner>,
    libraries: Receiver<Arc<Library>>,
    /// Where uploaded files may really be (checked on every file opened).
    confinement: Confinement,
    /// Print events on stdout (interactive terminal) rather than only logging them.
    print_events: bool,
    uploads: HashMap<ConnId, Upload>,
    slots: UploadSlots,
    limits: Limits,
    /// GIV callbacks being connected: address → (file index, GIV line).
    pending_givs: HashMap<SocketAddr, Vec<u8>>,
    own_actions: VecDeque<EngineAction>,
    started: Instant,
}

impl Node {
    /// Builds the core from `config` (reloading the host cache) and starts the
    /// library scanner, which wakes the loop through `handle` with each new library.
    pub fn new(
        config: &Config,
        listen_addr: SocketAddr,
        data: DataDir,
        handle: Handle,
        now: Instant,
    ) -> io::Result<Node> {
        let servent_id = load_or_make_servent_id(&data);
        log::info!("servent id {}", data_encoding::HEXLOWER.encode(&servent_id));
        let mut core_config = CoreConfig::new(servent_id, listen_addr);
        core_config.firewalled = config.firewalled;
        core_config.protocol = match config.protocol {
            ProtocolVersion::V04 => core_mod::ProtocolVersion::V04,
            ProtocolVersion::V06 => core_mod::ProtocolVersion::V06,
        };
        core_config.peers = config.peers;
        core_config.max_peers = config.max_peers;
        core_config.ttl = config.ttl;
        core_config.seed = rand::random();
        let mut core = Core::new(core_config, now);
        match data.load(HOST_CACHE_FILE) {
            Ok(Some(bytes)) => {
                let capacity = core.config().host_cache_capacity;
                let hosts = HostCache::from_bytes(&bytes, capacity, now);
                log::info!("host cache: {} hosts reloaded", hosts.len());
                core.set_host_cache(hosts);
            }
            Ok(None) => {}
            Err(e) => log::warn!("reading the host cache: {e}"),
        }
        for addr in &config.connect {
            core.connect(*addr, now);
        }
        let (tx, libraries) = crossbeam_channel::unbounded();
        let mut library_config =
            LibraryConfig::new(config.shares.clone(), data.root().to_path_buf());
        library_config.follow_links_out = config.follow_links_out;
        let confinement = library_config.confinement();
        let scanner = LibraryScanner::spawn(library_config, move |library| {
            if tx.send(library).is_ok() {
                handle.wake();
            }
        })?;
        Ok(Node {
            core,
            data,
            scanner: Some(scanner),
            libraries,
            confinement,
            print_events: !config.headless,
            uploads: HashMap::new(),
            slots: UploadSlots::with_per_ip(
                config.limits.upload_slots,
                config.limits.upload_slots_per_ip,
            ),
            limits: config.limits.clone(),
            pending_givs: HashMap::new(),
            own_actions: VecDeque::new(),
            started: now,
        })
    }

    /// The core, for inspection.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// An event as a line for the terminal or the log. Everything a peer
    /// chose (agents, reasons, names) is escaped: it must not act on the
    /// terminal or forge a line.
    fn event_text(event: &CoreEvent) -> String {
        match event {
            CoreEvent::PeerUp(peer) => format!(
                "peer {} up: {} {:?} {} {}",
                peer.id,
                peer.addr,
                peer.direction,
                peer.protocol.as_str(),
                Escaped::new(&peer.user_agent)
            ),
            CoreEvent::PeerDown { id, addr, reason } => {
                format!("peer {id} down: {addr} ({})", Escaped::new(reason))
            }
            CoreEvent::SearchResult(r) => format!(
                "search {}: {} ({} bytes) at {}",
                r.search,
                Escaped::new(&r.name),
                r.size,
                r.addr
            ),
            CoreEvent::PushRequest(p) => format!(
                "push for file {}: calling back {} with a GIV",
                p.file_index, p.addr
            ),
            CoreEvent::ConnectFailed { addr, reason } => {
                format!("could not connect to {addr}: {}", Escaped::new(reason))
            }
        }
    }

    /// Lets the upload session answer what it has buffered; queues its reply.
    fn drive_upload(&mut self, id: ConnId) {
        let library = self.core.library().clone();
        let Some(upload) = self.uploads.get_mut(&id) else {
            return;
        };
        if upload.replying || upload.closing {
            return;
        }
        match upload.session.poll(&library, &mut self.slots) {
            UploadPoll::NeedMore => return,
            UploadPoll::Close => {
                upload.closing = true;
                self.own_actions.push_back(EngineAction::Close(id));
                return;
            }
            UploadPoll::Respond(reply) => {
                log::info!("HTTP {} to {}", reply.status, upload.peer);
                upload.out.extend_from_slice(&reply.head);
                upload.replying = true;
                upload.head_started = None;
                upload.last_progress = Instant::now();
                upload.close_after = !reply.keep_alive;
                if let Some(span) = &reply.body {
                    match open_span(span, &self.confinement) {
                        Ok(body) => upload.body = Some(body),
                        Err(e) => {
                            // The head promised bytes we cannot send: end the connection.
                            log::warn!(
                                "upload of {}: {e}",
                                Escaped::new(&span.path.to_string_lossy())
                            );
                            upload.out.clear();
                            upload.closing = true;
                            self.own_actions.push_back(EngineAction::Close(id));
                            return;
                        }
                    }
                }
            }
        }
        self.own_actions.push_back(EngineAction::WantWrite(id));
        self.publish_upload_state();
    }

    /// Moves the next chunk of a body into the output once the previous one is written.
    fn refill_upload(&mut self, id: ConnId) {
        use std::io::Read;
        let Some(upload) = self.uploads.get_mut(&id) else {
            return;
        };
        if !upload.pending().is_empty() {
            return;
        }
        if let Some(body) = &mut upload.body {
            let want = body.remaining.min(UPLOAD_CHUNK as u64) as usize;
            upload.out.clear();
            upload.sent = 0;
            upload.out.resize(want, 0);
            match body.file.read(&mut upload.out) {
                Ok(n) if n > 0 => {
                    upload.out.truncate(n);
                    body.remaining -= n as u64;
                    if body.remaining == 0 {
                        upload.body = None;
                    }
                }
                _ => {
                    // Short file or read error: the announced length cannot be met.
                    upload.out.clear();
                    upload.body = None;
                    upload.closing = true;
                    self.own_actions.push_back(EngineAction::Close(id));
                }
            }
        } else if upload.close_after && !upload.replying && !upload.closing {
            upload.closing = true;
            self.own_actions.push_back(EngineAction::Close(id));
        }
    }

    /// Tells the core whether uploads are busy (QueryHit flags).
    fn publish_upload_state(&mut self) {
        self.core
            .set_upload_state(self.slots.all_taken(), self.slots.have_uploaded());
    }

    /// Starts a GIV callback for a Push addressed to us (the core already
    /// rate-limited them; at most [`MAX_GIV_CALLBACKS`] connect at once).
    fn start_giv(&mut self, push: &core_mod::PushRequest) {
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
        let name = self
            .core
            .library()
            .get(push.file_index)
            .map(|f| f.name.clone().into_bytes())
            .unwrap_or_default();
        let giv = hazel_protocol::giv::Giv {
            file_index: push.file_index,
            servent_id,
            file_name: name,
        };
        let mut line = Vec::with_capacity(giv.encoded_len());
        giv.encode(&mut line);
        self.pending_givs.insert(push.addr, line);
        self.own_actions
            .push_back(EngineAction::ConnectAs(push.addr, Sniffed::Giv));
    }

    fn shares_reply(&self) -> Reply {
        let library = self.core.library();
        let (files, kbytes) = library.totals();
        let listed: Vec<serde_json::Value> = library
            .files()
            .iter()
            .take(SHARES_LISTED)
            .map(|f| {
                json!({
                    "index": f.index,
                    "name": f.name,
                    "size": f.size,
                    "sha1": f.sha1.map(|d| format!(
                        "urn:sha1:{}",
                        data_encoding::BASE32.encode(&d)
                    )),
                })
            })
            .collect();
        let scan = self.scanner.as_ref().map(|s| s.stats());
        Reply::new(
            "shares",
            json!({
                "files": files,
                "kbytes": kbytes,
                "pending_hashes": library.pending_hashes(),
                "scan": scan,
                "list": listed,
            }),
        )
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

impl Engine for Node {
    fn on_connection(
        &mut self,
        id: ConnId,
        direction: Direction,
        kind: Sniffed,
        peer: SocketAddr,
        now: Instant,
    ) {
        match kind {
            Sniffed::Overlay => {
                let direction = match direction {
                    Direction::Incoming => core_mod::Direction::Incoming,
                    Direction::Outgoing => core_mod::Direction::Outgoing,
                };
                self.core.on_connection(id, direction, peer, now);
            }
            Sniffed::Http => {
                self.uploads.insert(id, Upload::new(peer, now));
            }
            Sniffed::Giv if direction == Direction::Outgoing => {
                // Our callback: announce the file, then serve the GET that follows.
                let mut upload = Upload::new(peer, now);
                if let Some(line) = self.pending_givs.remove(&peer) {
                    upload.out = line;
                }
                self.uploads.insert(id, upload);
                self.own_actions.push_back(EngineAction::WantWrite(id));
            }
            Sniffed::Giv => {
                // A GIV answers a Push we sent; Hazel has no downloads to match it with.
                log::info!("GIV from {peer}: no download is waiting for it, closing");
                self.uploads.insert(id, Upload::new(peer, now));
                self.own_actions.push_back(EngineAction::Close(id));
            }
        }
    }

    fn on_connect_failed(&mut self, addr: SocketAddr, kind: Sniffed, error: &str, now: Instant) {
        match kind {
            Sniffed::Overlay => self.core.on_connect_failed(addr, error, now),
            _ => {
                log::info!("GIV callback to {addr} failed: {error}");
                self.pending_givs.remove(&addr);
            }
        }
    }

    fn on_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        if let Some(upload) = self.uploads.get_mut(&id) {
            upload.last_activity = now;
            if !bytes.is_empty() {
                // The next head began (it may wait behind a reply in flight).
                upload.head_started.get_or_insert(now);
            }
            upload.session.on_bytes(bytes);
            self.drive_upload(id);
        } else {
            self.core.on_bytes(id, bytes, now);
        }
    }

    fn on_closed(&mut self, id: ConnId, now: Instant) {
        if let Some(mut upload) = self.uploads.remove(&id) {
            upload.session.on_close(&mut self.slots);
            log::debug!("HTTP connection {id} from {} closed", upload.peer);
            self.publish_upload_state();
        } else {
            self.core.on_closed(id, now);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        let limits = &self.limits;
        for (&id, upload) in self.uploads.iter_mut() {
            if upload.closing {
                continue;
            }
            let in_flight =
                upload.replying || !upload.pending().is_empty() || upload.body.is_some();
            let why = if in_flight {
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
                self.own_actions.push_back(EngineAction::Close(id));
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    fn poll_action(&mut self) -> Option<EngineAction> {
        loop {
            if let Some(action) = self.own_actions.pop_front() {
                return Some(action);
            }
            return Some(match self.core.poll_action()? {
                Action::Connect(addr) => EngineAction::Connect(addr),
                Action::Close(id) => EngineAction::Close(id),
                Action::WantWrite(id) => EngineAction::WantWrite(id),
                Action::Event(event) => {
                    if let CoreEvent::PushRequest(push) = &event {
                        self.start_giv(push);
                    }
                    let text = Self::event_text(&event);
                    if self.print_events {
                        // The terminal shows it; logging it too would say it twice.
                        println!("{text}");
                        continue;
                    }
                    EngineAction::Event(text)
                }
            });
        }
    }

    fn output(&mut self, id: ConnId) -> &[u8] {
        if !self.uploads.contains_key(&id) {
            return self.core.output(id);
        }
        self.refill_upload(id);
        self.uploads.get(&id).map_or(&[], Upload::pending)
    }

    fn consume_output(&mut self, id: ConnId, n: usize) {
        let Some(upload) = self.uploads.get_mut(&id) else {
            self.core.consume_output(id, n, Instant::now());
            return;
        };
        upload.sent = (upload.sent + n).min(upload.out.len());
        let now = Instant::now();
        upload.last_activity = now;
        if n > 0 {
            upload.last_progress = now;
        }
        if upload.sent == upload.out.len() {
            upload.out.clear();
            upload.sent = 0;
            if upload.body.is_none() && upload.replying {
                // Head (and body) written: the reply is complete.
                upload.replying = false;
                upload.session.reply_sent(&mut self.slots);
                self.publish_upload_state();
                self.drive_upload(id);
            }
        }
    }

    fn on_wake(&mut self, _now: Instant) {
        // Only the newest library matters.
        if let Some(library) = self.libraries.try_iter().last() {
            log::info!(
                "library: {} files, {} pending hashes",
                library.len(),
                library.pending_hashes()
            );
            self.core.set_library(library);
        }
    }

    fn refusal(&mut self, kind: Sniffed, peer: SocketAddr) -> Vec<u8> {
        match kind {
            Sniffed::Overlay => self.core.busy_refusal(peer),
            Sniffed::Http => format!(
                "HTTP/1.1 503 Service Unavailable\r\nServer: {}\r\nRetry-After: 60\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n",
                self.core.config().user_agent
            )
            .into_bytes(),
            Sniffed::Giv => Vec::new(),
        }
    }

    fn command(&mut self, command: Command, now: Instant) -> Response {
        let reply = match command {
            Command::Connect(addr) => match self.core.connect(addr, now) {
                ConnectOutcome::Dialling => Reply::message(format!("connecting to {addr}")),
                ConnectOutcome::Ourselves => {
                    return Response::error(format!("{addr} is this servent"))
                }
                ConnectOutcome::AlreadyConnected => {
                    return Response::error(format!("already connected (or connecting) to {addr}"))
                }
                ConnectOutcome::ShuttingDown => {
                    return Response::error("the servent is shutting down")
                }
            },
            Command::ConnectHost(host, _) => {
                // Resolved before it reaches the loop; never block here on DNS.
                return Response::error(format!("{host} was not resolved"));
            }
            Command::Disconnect(id) => {
                if !self.core.disconnect(id, now) {
                    return Response::error(format!("no connection {id}"));
                }
                Reply::message(format!("disconnecting {id}"))
            }
            Command::Peers => Reply::new("peers", to_value(&self.core.peers(now))),
            Command::Search(words) => {
                let text = words.join(" ");
                let id = self.core.search(&text, now);
                let sent_to = self.core.established_ids().len();
                Reply::new(
                    "search",
                    json!({ "search_id": id, "text": text, "sent_to": sent_to }),
                )
            }
            Command::Results(search) => {
                if let Some(id) = search {
                    if !self.core.searches().iter().any(|(s, _)| *s == id) {
                        return Response::error(format!("no search {id}"));
                    }
                }
                Reply::new("results", to_value(&self.core.results(search)))
            }
            Command::Shares => self.shares_reply(),
            Command::Rescan => match &self.scanner {
                Some(scanner) => {
                    scanner.rescan();
                    Reply::message("rescanning")
                }
                None => return Response::error("the library scanner is not running"),
            },
            Command::Stats => {
                let mut stats = to_value(&self.core.stats());
                if let serde_json::Value::Object(map) = &mut stats {
                    map.insert(
                        "uptime_secs".into(),
                        json!(now.saturating_duration_since(self.started).as_secs()),
                    );
                }
                Reply::new("stats", stats)
            }
            Command::Hosts => {
                let hosts: Vec<String> = self
                    .core
                    .host_cache()
                    .recent(HOSTS_LISTED)
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                Reply::new("hosts", json!(hosts))
            }
            Command::Help => Reply::help(),
            Command::Quit => Reply::message("bye"),
        };
        Response::ok(reply)
    }

    fn shutdown(&mut self, now: Instant) {
        self.core.shutdown(now);
    }

    fn save(&mut self) {
        let bytes = self.core.host_cache().to_bytes();
        if let Err(e) = self.data.save_atomic(HOST_CACHE_FILE, &bytes) {
            log::warn!("saving the host cache: {e}");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(scanner) = self.scanner.take() {
            scanner.shutdown();
        }
    }
}

/// Our servent id, kept in the data dir so QueryHits (and the Pushes that
/// follow them) name the same servent across restarts. A missing or damaged
/// file gets a fresh id.
fn load_or_make_servent_id(data: &DataDir) -> [u8; 16] {
    let stored = data
        .load(SERVENT_ID_FILE)
        .ok()
        .flatten()
        .and_then(|bytes| {
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(bytes.trim_ascii())
                .ok()
        })
        .and_then(|bytes| <[u8; 16]>::try_from(bytes.as_slice()).ok());
    if let Some(id) = stored {
        return id;
    }
    let mut id = *uuid::Uuid::new_v4().as_bytes();
    // The modern id shape (PROTOCOL-NOTES §1).
    id[8] = 0xff;
    id[15] = 0x00;
    let text = format!("{}\n", data_encoding::HEXLOWER.encode(&id));
    if let Err(e) = data.save_atomic(SERVENT_ID_FILE, text.as_bytes()) {
        log::warn!("saving the servent id: {e}");
    }
    id
}

/// Runs a servent until `quit` or SIGINT/SIGTERM; returns when it has said Bye
/// and saved its host cache.
pub fn run(config: Config) -> io::Result<()> {
    raise_fd_limit();
    let (mut reactor, data) = build(&config)?;
    let listen_addr = reactor.local_addr();
    let handle = reactor.handle();
    let socket = data.path(CONTROL_SOCKET);
    let _control = control::serve(&socket, handle.clone()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("control socket {}: {e}", socket.display()),
        )
    })?;
    // Announce the port last, once commands can be taken: tests wait for this file.
    data.save_atomic(PORT_FILE, format!("{listen_addr}\n").as_bytes())?;
    println!("listening on {listen_addr}");
    println!("data directory: {}", escape_path(&config.data_dir));
    if config.shares.is_empty() {
        println!("sharing nothing (add --share DIR to share a folder)");
    } else {
        let shares: Vec<String> = config.shares.iter().map(|p| escape_path(p)).collect();
        println!("sharing {}", shares.join(", "));
    }
    spawn_signal_thread(handle.clone())?;
    let terminal = crate::shell::terminal::spawn_stdin(handle, !config.headless)?;
    let result = reactor.run();
    // A `quit` typed on stdin: let the terminal print its answer before the
    // process ends (bounded: the thread may instead be blocked reading).
    let deadline = Instant::now() + std::time::Duration::from_millis(300);
    while !terminal.is_finished() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(data.path(PORT_FILE));
    result
}

/// The data dir, the listener, the node and its reactor, ready to run.
fn build(config: &Config) -> io::Result<(Reactor<Node>, DataDir)> {
    let data = DataDir::open(&config.data_dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "data directory {}: {e} (choose another with --data-dir DIR)",
                escape_path(&config.data_dir)
            ),
        )
    })?;
    let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::AddrInUse => {
                "; another program (another hazel?) uses that port: pick another with \
                 --listen ADDR:PORT (port 0 picks a free one)"
            }
            io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need privileges: use --listen with a higher port"
            }
            io::ErrorKind::AddrNotAvailable => {
                "; that address is not one of this machine's: use --listen 0.0.0.0:PORT"
            }
            _ => "",
        };
        io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}{hint}", config.listen),
        )
    })?;
    let listen_addr = listener.local_addr()?;
    let now = Instant::now();
    let fd_limit = open_file_limit();
    // Descriptors for everything but sockets: a file per upload slot and per
    // hashing or saving job, the control socket and its clients, stdio,
    // the poller and its waker.
    let reserved = 48 + config.limits.upload_slots;
    let reactor_config = ReactorConfig {
        max_sockets: socket_budget(fd_limit, reserved),
        ..ReactorConfig::default()
    };
    if config.max_peers > reactor_config.max_sockets {
        log::warn!(
            "--max-peers {} is more than the {} sockets the open-file limit ({fd_limit}) allows",
            config.max_peers,
            reactor_config.max_sockets
        );
    }
    let reactor = Reactor::new(listener, reactor_config, |handle| {
        Node::new(config, listen_addr, data.clone(), handle, now)
    })?;
    Ok((reactor, data))
}

/// The soft limit on open files (what this process may hold now).
fn open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    }
}

/// A servent running on a thread of this process (for tests of several
/// servents, or embedding): no stdin, no signal handlers, but the control
/// socket in its data dir as usual. Dropping it quits it and waits.
pub struct RunningServent {
    /// The bound listening address.
    pub addr: SocketAddr,
    handle: Handle,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    _control: control::ControlServer,
}

impl RunningServent {
    /// Answers one command line, as the terminal or the control socket would.
    pub fn command(&self, line: &str) -> Response {
        control::answer_line(&self.handle, line, std::time::Duration::from_secs(10))
    }

    /// Says Bye, saves, and waits for the loop to end.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        use control::Requests;
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self
            .handle
            .request(Command::Quit, std::time::Duration::from_secs(10));
        thread
            .join()
            .map_err(|_| io::Error::other("the servent thread panicked"))?
    }
}

impl Drop for RunningServent {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts a servent on a new thread (see [`RunningServent`]).
pub fn spawn(config: Config) -> io::Result<RunningServent> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let thread = std::thread::Builder::new()
        .name("servent".into())
        .spawn(move || {
            let (mut reactor, data) = match build(&config) {
                Ok(built) => built,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok((reactor.local_addr(), reactor.handle(), data)));
            reactor.run()
        })?;
    let (addr, handle, data) = ready_rx
        .recv()
        .map_err(|_| io::Error::other("the servent thread ended before starting"))??;
    let control = control::serve(&data.path(CONTROL_SOCKET), handle.clone())?;
    Ok(RunningServent {
        addr,
        handle,
        thread: Some(thread),
        _control: control,
    })
}

/// Lifts the soft limit on open files to the hard limit (at most 65536), so
/// `--max-peers` in the thousands is not cut short by a default of 1024.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            let wanted = limit.rlim_max.min(65536);
            if limit.rlim_cur < wanted {
                limit.rlim_cur = wanted;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    log::warn!("could not raise the open-file limit");
                }
            }
        }
    }
}

/// SIGINT and SIGTERM become a `quit` command.
fn spawn_signal_thread(handle: Handle) -> io::Result<()> {
    use control::Requests;
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                log::info!("signal {signal}: quitting");
                let _ = handle.request(Command::Quit, std::time::Duration::from_secs(5));
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProtocolVersion;
    use std::time::Duration;

    fn config(dir: &std::path::Path, shares: Vec<std::path::PathBuf>) -> Config {
        Config {
            headless: true,
            listen: "127.0.0.1:0".parse().unwrap(),
            shares,
            data_dir: dir.to_path_buf(),
            connect: Vec::new(),
            peers: 0,
            max_peers: 8,
            ttl: 7,
            firewalled: false,
            protocol: ProtocolVersion::V06,
            follow_links_out: false,
            limits: crate::config::Limits::default(),
        }
    }

    fn wait(mut f: impl FnMut() -> bool) -> bool {
        for _ in 0..300 {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    #[test]
    fn two_servents_in_one_process_link_up_and_find_each_others_files() {
        let temp = tempfile::tempdir().unwrap();
        let share = temp.path().join("share");
        std::fs::create_dir_all(&share).unwrap();
        std::fs::write(share.join("in process.txt"), b"12345").unwrap();
        let a = spawn(config(&temp.path().join("a"), Vec::new())).unwrap();
        let b = spawn(config(&temp.path().join("b"), vec![share])).unwrap();
        assert!(a.command(&format!("connect {}", b.addr)).ok);
        let files = |s: &RunningServent| {
            s.command("shares")
                .reply
                .and_then(|r| r.data.get("files")?.as_u64())
                .unwrap_or(0)
        };
        assert!(wait(|| files(&b) == 1));
        let established = |s: &RunningServent| {
            s.command("stats")
                .reply
                .and_then(|r| r.data.get("established")?.as_u64())
                .unwrap_or(0)
        };
        assert!(wait(|| established(&a) == 1));
        let search = a.command("search in process");
        assert!(search.ok, "{search:?}");
        assert!(wait(|| {
            a.command("results").reply.is_some_and(|r| {
                r.data
                    .as_array()
                    .is_some_and(|hits| hits.iter().any(|h| h["name"] == "in process.txt"))
            })
        }));
        // The control socket works for these too.
        let via_socket = control::send_command(
            &temp.path().join("a").join(CONTROL_SOCKET),
            "peers",
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(via_socket.ok);
        b.stop().unwrap();
        assert!(wait(|| established(&a) == 0));
        a.stop().unwrap();
        assert!(temp.path().join("a").join(HOST_CACHE_FILE).exists());
    }
}
