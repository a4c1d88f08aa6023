//! The running servent: the sans-IO [`Core`], the uploads, and the library
//! scanner put together behind the event loop's [`Handler`] interface, with
//! the shell's commands answered from them (`answers`).
//!
//! Besides the overlay (handed to the core), the servent serves the other
//! kinds of connection the event loop sniffs: HTTP `GET`/`HEAD` and GIV
//! callbacks for Pushes addressed to us ([`uploads`]). A GIV arriving unasked
//! is closed: Hazel has no downloads waiting for one.

mod answers;
pub mod napster_port;
pub mod uploads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use hazel_protocol::text::Escaped;

use crate::config::Config;
use crate::core::shares::upload::PushProxyAsk;
use crate::core::shares::Library;
use crate::core::transfers::{DiskEvent, DownloadEvent};
use crate::core::{self, Core, CoreEvent};
use crate::data_dir::{DataDir, HOST_CACHE_FILE};
use crate::disk::DiskWorker;
use crate::reactor::{Action, ConnId, Direction, Flow, Handler, Kind, Output};
use crate::scanner::LibraryScanner;
use crate::shell::{Command, Response};
use std::collections::VecDeque;
use uploads::Uploads;

/// How other threads reach a running servent.
pub type Handle = crate::reactor::Handle<Command, Response>;

/// The servent behind the event loop.
pub struct Servent {
    core: Core,
    uploads: Uploads,
    /// The Napster data port's connections (uploads, pushes).
    napster_port: napster_port::NapsterPort,
    disk: DiskWorker,
    disk_events: Receiver<DiskEvent>,
    /// Host names looked up for the bootstrap.
    resolver: crate::resolver::Resolver,
    /// Actions of the servent's own (closing an unwanted connection).
    own: VecDeque<Action>,
    data: DataDir,
    scanner: Option<LibraryScanner>,
    libraries: Receiver<Arc<Library>>,
    /// Where events go: printed, logged, or handed to a terminal's thread.
    events: EventSink,
    /// Reads md5s and MP3 headers for the index, off the loop.
    index_shares: Option<crate::napster_shares::IndexSharesWorker>,
    index_share_lists: Option<Receiver<Vec<crate::core::napster::IndexShare>>>,
    /// The port of our Napster data port listener (announced as 0 when
    /// firewalled).
    napster_data_port: u16,
    started: Instant,
    shutting_down: bool,
}

impl Servent {
    /// Puts together a core (configured and with its host cache reloaded),
    /// the uploads, and a running scanner whose libraries arrive on
    /// `libraries`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        core: Core,
        uploads: Uploads,
        disk: DiskWorker,
        disk_events: Receiver<DiskEvent>,
        resolver: crate::resolver::Resolver,
        data: DataDir,
        scanner: LibraryScanner,
        libraries: Receiver<Arc<Library>>,
        config: &Config,
        now: Instant,
    ) -> Servent {
        let mut servent = Servent {
            core,
            uploads,
            napster_port: napster_port::NapsterPort::default(),
            disk,
            disk_events,
            resolver,
            own: VecDeque::new(),
            data,
            scanner: Some(scanner),
            libraries,
            events: if config.headless {
                EventSink::Log
            } else {
                EventSink::Print
            },
            started: now,
            shutting_down: false,
            index_shares: None,
            index_share_lists: None,
            napster_data_port: 0,
        };
        // With no upload slot at all, hits and index answers say so from the start.
        servent.publish_upload_state();
        servent
    }

    /// The data port announced to index servers by `index connect`.
    pub fn set_napster_data_port(&mut self, port: u16) {
        self.napster_data_port = port;
    }

    /// The thread that prepares the library for index servers.
    pub fn set_index_shares_worker(
        &mut self,
        worker: crate::napster_shares::IndexSharesWorker,
        lists: Receiver<Vec<crate::core::napster::IndexShare>>,
    ) {
        if let Some(library) = Some(Arc::clone(self.core.library())).filter(|l| !l.is_empty()) {
            worker.update(library);
        }
        self.index_shares = Some(worker);
        self.index_share_lists = Some(lists);
    }

    /// Hands events to `sink` from now on.
    pub fn set_event_sink(&mut self, sink: EventSink) {
        self.events = sink;
    }

    /// The core, for inspection.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Tells the core whether uploads are busy (QueryHit flags).
    /// Calls `f` with the data port and what it borrows from the servent.
    fn with_napster_port<R>(
        &mut self,
        f: impl FnOnce(&mut napster_port::NapsterPort, napster_port::Parts<'_>) -> R,
    ) -> R {
        let library = Arc::clone(self.core.library());
        let (slots, confinement) = self.uploads.slots_and_confinement();
        let parts = napster_port::Parts {
            core: &mut self.core,
            slots,
            confinement,
            library: &library,
        };
        f(&mut self.napster_port, parts)
    }

    fn publish_upload_state(&mut self) {
        self.core
            .set_upload_state(self.uploads.busy(), self.uploads.have_uploaded());
    }
}

/// Where the servent's events go.
#[derive(Debug, Clone)]
pub enum EventSink {
    /// Logged (headless).
    Log,
    /// Printed on stdout, one line each (line mode without a terminal).
    Print,
    /// Sent to another thread (a terminal interface), dropped when it falls
    /// behind by [`EVENT_BACKLOG`]: the event loop never waits for it.
    Channel(crossbeam_channel::Sender<CoreEvent>),
}

/// Events a terminal thread may fall behind by.
pub const EVENT_BACKLOG: usize = 65_536;

/// An event as a line for the terminal or the log. Everything a peer chose
/// (agents, reasons, names) is escaped: it must not act on the terminal or
/// forge a line.
pub fn event_text(event: &CoreEvent) -> String {
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
        CoreEvent::Download(DownloadEvent::Started { id, name }) => {
            format!("download {id} started: {}", Escaped::new(name))
        }
        CoreEvent::Download(DownloadEvent::Completed { id, name, path, .. }) => format!(
            "download {id} complete: {} saved as {}",
            Escaped::new(name),
            hazel_protocol::text::escape_path(path)
        ),
        CoreEvent::Notice(text) => Escaped::new(text).to_string(),
        CoreEvent::Download(DownloadEvent::Saved { id, name, path }) => format!(
            "download {id} complete: {} saved as {}",
            Escaped::new(name),
            hazel_protocol::text::escape_path(path)
        ),
        CoreEvent::Download(DownloadEvent::Failed { id, name, reason }) => format!(
            "download {id} failed: {}: {}",
            Escaped::new(name),
            Escaped::new(reason)
        ),
    }
}

impl Handler for Servent {
    type Request = Command;
    type Response = Response;

    fn on_connection(
        &mut self,
        id: ConnId,
        direction: Direction,
        kind: Kind,
        peer: SocketAddr,
        now: Instant,
    ) {
        match kind {
            Kind::Overlay => self.core.on_connection(id, direction, peer, now),
            Kind::Http => self.uploads.open_request(id, peer, now),
            Kind::Giv if direction == Direction::Outgoing => {
                self.uploads.open_callback(id, peer, now)
            }
            // A firewalled source answering one of our Pushes.
            Kind::Giv => self.core.on_giv(id, peer, now),
            Kind::Download => {
                if !self.core.on_transfer_connected(id, peer, now) {
                    self.own.push_back(Action::Close(id));
                }
            }
            Kind::Cache => {
                if !self.core.on_cache_connected(id, peer, now) {
                    self.own.push_back(Action::Close(id));
                }
            }
            Kind::Index => {
                if !self.core.on_index_connected(id, peer, now) {
                    self.own.push_back(Action::Close(id));
                }
            }
            Kind::NapsterData if direction == Direction::Incoming => {
                self.napster_port.accepted(id, peer, now)
            }
            Kind::NapsterData => {
                if !self.napster_port.connected(id, peer, now)
                    && !self.core.on_napster_data_connected(id, peer, now)
                {
                    self.own.push_back(Action::Close(id));
                }
            }
        }
    }

    fn on_connect_failed(&mut self, addr: SocketAddr, kind: Kind, error: &str, now: Instant) {
        match kind {
            Kind::Overlay => self.core.on_connect_failed(addr, error, now),
            Kind::Download => self.core.on_transfer_connect_failed(addr, error, now),
            Kind::Cache => self.core.on_cache_connect_failed(addr, error, now),
            Kind::Index => self.core.on_index_connect_failed(addr, error, now),
            Kind::NapsterData => {
                if !self.napster_port.connect_failed(addr, error) {
                    self.core.on_napster_data_connect_failed(addr, error);
                }
            }
            _ => self.uploads.callback_failed(addr, error),
        }
    }

    fn on_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        if self.uploads.contains(id) {
            let library = Arc::clone(self.core.library());
            let core = &mut self.core;
            let mut relay = |ask: PushProxyAsk| {
                core.relay_push(ask.guid, ask.file, ask.node, ask.requester, now)
            };
            self.uploads.on_bytes(id, bytes, &library, &mut relay, now);
            self.publish_upload_state();
        } else if self.napster_port.contains(id) {
            self.with_napster_port(|port, parts| port.on_bytes(id, bytes, parts, now));
            self.publish_upload_state();
        } else {
            self.core.on_bytes(id, bytes, now);
        }
    }

    fn on_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        self.core.on_datagram(from, bytes, now);
    }

    fn on_closed(&mut self, id: ConnId, now: Instant) {
        if self.uploads.contains(id) {
            self.uploads.on_closed(id);
            self.publish_upload_state();
        } else if self.napster_port.contains(id) {
            let (slots, _) = self.uploads.slots_and_confinement();
            self.napster_port.on_closed(id, &mut self.core, slots);
            self.publish_upload_state();
        } else {
            self.core.on_closed(id, now);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        self.uploads.tick(now);
        if self.napster_port.poll_timeout().is_some_and(|t| t <= now) {
            self.with_napster_port(|port, parts| port.settle(parts, now));
            self.publish_upload_state();
        }
        self.napster_port.tick(now, self.uploads.stall_limit());
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.core.poll_timeout(), self.napster_port.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        loop {
            if let Some(action) = self.own.pop_front() {
                return Some(action);
            }
            if let Some(action) = self.uploads.poll_action() {
                return Some(action);
            }
            if let Some(action) = self.napster_port.poll_action() {
                return Some(action);
            }
            return Some(match self.core.poll_action()? {
                core::Action::Connect(addr) => Action::Connect(addr),
                core::Action::ConnectTransfer(addr) => Action::ConnectAs(addr, Kind::Download),
                core::Action::Close(id) => Action::Close(id),
                core::Action::WantWrite(id) => Action::WantWrite(id),
                core::Action::PauseReading(id) => Action::PauseReading(id),
                core::Action::SendDatagram(to, bytes) => Action::SendDatagram(to, bytes),
                core::Action::ConnectCache(addr) => Action::ConnectAs(addr, Kind::Cache),
                core::Action::ConnectIndex(addr) => Action::ConnectAs(addr, Kind::Index),
                core::Action::ConnectNapsterData(addr) => {
                    Action::ConnectAs(addr, Kind::NapsterData)
                }
                core::Action::NapsterPush(push) => {
                    self.napster_port
                        .start_push(push.addr, push.index, push.name);
                    continue;
                }
                core::Action::NapsterListPush(addr, list) => {
                    self.napster_port.start_list_push(addr, list);
                    continue;
                }
                core::Action::Resolve { token, host, port } => {
                    self.resolver.resolve(token, host, port);
                    continue;
                }
                core::Action::ResumeReading(id) => Action::ResumeReading(id),
                core::Action::Disk(job) => {
                    self.disk.submit(job);
                    continue;
                }
                core::Action::Event(event) => {
                    match &event {
                        CoreEvent::PushRequest(push) => {
                            let library = Arc::clone(self.core.library());
                            self.uploads.start_giv(push, &library);
                        }
                        CoreEvent::Download(DownloadEvent::Completed { sha1, sources, .. }) => {
                            self.uploads
                                .verified_sources(*sha1, sources, Instant::now());
                        }
                        _ => {}
                    }
                    match &self.events {
                        EventSink::Log => Action::Event(event_text(&event)),
                        EventSink::Print => {
                            // The terminal shows it; logging it too would say it twice.
                            println!("{}", event_text(&event));
                            continue;
                        }
                        EventSink::Channel(tx) => {
                            let _ = tx.try_send(event);
                            continue;
                        }
                    }
                }
            });
        }
    }

    fn output(&mut self, id: ConnId) -> Output<'_> {
        if self.uploads.contains(id) {
            self.uploads.output(id)
        } else if self.napster_port.contains(id) {
            self.napster_port.output(id)
        } else {
            Output::Bytes(self.core.output(id))
        }
    }

    fn consume_output(&mut self, id: ConnId, n: usize) {
        let now = Instant::now();
        if self.uploads.contains(id) {
            let library = Arc::clone(self.core.library());
            let core = &mut self.core;
            let mut relay = |ask: PushProxyAsk| {
                core.relay_push(ask.guid, ask.file, ask.node, ask.requester, now)
            };
            self.uploads.consume(id, n, &library, &mut relay, now);
            self.publish_upload_state();
        } else if self.napster_port.contains(id) {
            self.napster_port.consume(id, n, now);
        } else {
            self.core.consume_output(id, n, now);
        }
    }

    fn on_wake(&mut self, now: Instant) {
        while let Ok(event) = self.disk_events.try_recv() {
            self.core.on_disk(event, now);
        }
        for (token, answer) in self.resolver.answers() {
            self.core.on_resolved(token, answer, now);
        }
        // Only the newest library matters.
        if let Some(library) = self.libraries.try_iter().last() {
            log::info!(
                "library: {} files, {} pending hashes",
                library.len(),
                library.pending_hashes()
            );
            if let Some(worker) = &self.index_shares {
                worker.update(Arc::clone(&library));
            }
            self.core.set_library(library);
        }
        let newest = self
            .index_share_lists
            .as_ref()
            .and_then(|rx| rx.try_iter().last());
        if let Some(list) = newest {
            log::info!("index shares: {} files ready", list.len());
            self.core.set_index_shares(list);
        }
    }

    fn refusal(&mut self, kind: Kind, peer: SocketAddr) -> Vec<u8> {
        match kind {
            Kind::Overlay => self.core.busy_refusal(peer),
            Kind::Http => format!(
                "HTTP/1.1 503 Service Unavailable\r\nServer: {}\r\nRetry-After: 60\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n",
                self.core.config().user_agent
            )
            .into_bytes(),
            Kind::Giv | Kind::Download | Kind::Cache | Kind::Index | Kind::NapsterData => {
                Vec::new()
            }
        }
    }

    fn request(&mut self, command: Command, now: Instant) -> (Response, Flow) {
        match command {
            Command::Quit => (
                Response::ok(crate::shell::Reply::message("bye")),
                Flow::Quit,
            ),
            _ if self.shutting_down => (
                Response::error("the servent is shutting down"),
                Flow::Continue,
            ),
            command => (self.answer(command, now), Flow::Continue),
        }
    }

    fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.core.shutdown(now);
    }

    fn save(&mut self) {
        let bytes = self.core.host_cache().to_bytes();
        if let Err(e) = self.data.save_atomic(HOST_CACHE_FILE, &bytes) {
            log::warn!("saving the host cache: {e}");
        }
    }
}

impl Drop for Servent {
    fn drop(&mut self) {
        if let Some(scanner) = self.scanner.take() {
            scanner.shutdown();
        }
    }
}
