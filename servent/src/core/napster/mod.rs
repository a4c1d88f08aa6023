//! The servent as a Napster client: sessions with OpenNap servers
//! ([`session`]; this file keeps them: connect, status, timers, routing
//! their messages), the library shared to them and the upload requests
//! they pass on (`sharing`: 100/102, 607 → 608 or 619, 220/221), searches
//! and browses whose answers join the overlay's results (`search`), and
//! downloads over the Napster data port ([`download`]).
//!
//! Sans IO like the rest of the core: the event loop opens the sockets the
//! core asks for ([`Action::ConnectIndex`], [`Action::ConnectNapsterData`])
//! and hands their bytes back; every wait has a deadline, every queue a
//! bound.

pub mod download;
mod search;
pub mod session;
mod sharing;

pub use search::{search_query, IndexSearchOptions};

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hazel_protocol::napster::{ClientMessage, ServerMessage, SharedFile};
use serde::Serialize;

use super::{Action, ConnId, Core, CoreEvent, SearchId};
use session::{Identity, Incoming, Pending, Phase, Session};

/// Most index servers at once.
pub const MAX_SERVERS: usize = 16;
/// A search waits this long for its 202.
pub const SEARCH_TIMEOUT: Duration = Duration::from_secs(60);
/// An accepted upload (608 sent) may begin within this time.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(300);
/// An accepted direct browse (641 sent) may fetch our list within this time.
pub const BROWSE_ACCEPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Firewalled, we push our list (SENDLIST) at most this often to one nick…
pub const LIST_PUSH_INTERVAL: Duration = Duration::from_secs(60);
/// … and at most this many times in that interval to anyone.
pub const LIST_PUSHES_PER_INTERVAL: usize = 6;
/// Share messages queued for a server at a time: a large library goes out
/// as the socket drains, never past the session's output bound.
pub const SHARE_OUTPUT: usize = session::MAX_OUTPUT / 4;

/// One file of the library as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexShare {
    /// The library index of the file.
    pub index: u32,
    /// The name shared: the path below its shared folder, `\`-separated.
    pub name: Vec<u8>,
    pub md5: String,
    pub size: u64,
    pub bitrate: u32,
    pub frequency: u32,
    pub length: u32,
}

impl IndexShare {
    fn message(&self) -> ClientMessage {
        ClientMessage::Share(SharedFile {
            name: self.name.clone(),
            md5: self.md5.as_bytes().to_vec(),
            size: self.size,
            bitrate: self.bitrate,
            freq: self.frequency,
            duration: self.length,
        })
    }
}

/// One server as `index status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexStatus {
    pub server: SocketAddr,
    pub nick: String,
    /// Our data port as announced (0: firewalled).
    pub data_port: u16,
    pub state: &'static str,
    pub online_secs: Option<u64>,
    pub retry_in_secs: Option<u64>,
    pub shared: usize,
    pub users: Option<u64>,
    pub files: Option<u64>,
    pub gigabytes: Option<u64>,
    pub motd: Vec<String>,
    pub last_error: Option<String>,
    #[serde(flatten)]
    pub traffic: session::Traffic,
}

/// The Napster side of the core.
pub struct Napster {
    identity: Option<Identity>,
    sessions: Vec<Session>,
    /// Per server: its searches awaiting 202, oldest first (201s belong to
    /// the front one).
    searches: HashMap<SocketAddr, Pending<SearchId>>,
    /// Per server: the names shared to it.
    shared: HashMap<SocketAddr, HashSet<Vec<u8>>>,
    /// The library as shared to every server.
    shares: Vec<IndexShare>,
    /// Uploads we accepted (608): (downloader nick, file name).
    accepted: Pending<(String, Vec<u8>)>,
    /// Direct browses we accepted (641): the requester's nick, each good
    /// for one `GETLIST` on the data port.
    browsers: Pending<String>,
    /// Browse lists pushed (firewalled, SENDLIST): when, and to whom.
    list_pushes: std::collections::VecDeque<(Instant, String)>,
    pub(super) downloads: download::NapsterDownloads,
    /// Servers whose share list is not yet all sent.
    resync: HashSet<SocketAddr>,
    /// Browses (211) awaiting their 213: (server, nick) → the search their
    /// entries go to.
    browses: HashMap<(SocketAddr, String), SearchId>,
    /// Uploads reported to servers with 220 and not yet with 221.
    uploads_counted: u64,
}

impl Napster {
    pub fn new(identity: Option<Identity>) -> Napster {
        Napster {
            identity,
            sessions: Vec::new(),
            searches: HashMap::new(),
            shared: HashMap::new(),
            shares: Vec::new(),
            accepted: Pending::default(),
            browsers: Pending::default(),
            list_pushes: std::collections::VecDeque::new(),
            downloads: download::NapsterDownloads::default(),
            browses: HashMap::new(),
            resync: HashSet::new(),
            uploads_counted: 0,
        }
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Whether `id` is a server session.
    pub fn owns_session(&self, id: ConnId) -> bool {
        self.sessions.iter().any(|s| s.conn == Some(id))
    }

    fn session_mut(&mut self, id: ConnId) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.conn == Some(id))
    }

    fn by_addr(&mut self, addr: SocketAddr) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.addr == addr)
    }

    /// Servers logged in.
    pub fn online(&self) -> Vec<SocketAddr> {
        self.sessions
            .iter()
            .filter(|s| s.is_online())
            .map(|s| s.addr)
            .collect()
    }

    /// Whether an upload of `name` to `nick` was accepted (and forgets it).
    pub fn take_accepted(&mut self, nick: &[u8], name: &[u8]) -> bool {
        self.accepted
            .take(|(n, f)| n.as_bytes() == nick && f == name)
            .is_some()
    }

    /// The shared file with this Napster name.
    pub fn share_named(&self, name: &[u8]) -> Option<&IndexShare> {
        self.shares.iter().find(|s| s.name == name)
    }
}

/// `index:HOST:PORT`, the origin of a server's results.
pub fn origin(addr: SocketAddr) -> String {
    format!("index:{addr}")
}

impl Core {
    /// `index connect`: log in to `addr` as `identity` (replacing the
    /// identity used for every server).
    pub fn index_connect(
        &mut self,
        addr: SocketAddr,
        identity: Identity,
        now: Instant,
    ) -> Result<(), String> {
        self.napster.identity = Some(identity);
        if let Some(session) = self.napster.by_addr(addr) {
            if session.conn.is_some() && session.phase != Phase::Refused {
                return Err(format!("already connected to {addr}"));
            }
            session.phase = Phase::Waiting { until: now };
        } else {
            if self.napster.sessions.len() >= MAX_SERVERS {
                return Err(format!("at most {MAX_SERVERS} index servers"));
            }
            self.napster.sessions.push(Session::new(addr, now));
        }
        self.maintain_index(now);
        Ok(())
    }

    /// `index disconnect [ADDR]`: the servers left.
    pub fn index_disconnect(&mut self, addr: Option<SocketAddr>) -> Vec<SocketAddr> {
        let (gone, kept): (Vec<Session>, Vec<Session>) = std::mem::take(&mut self.napster.sessions)
            .into_iter()
            .partition(|s| addr.is_none() || Some(s.addr) == addr);
        self.napster.sessions = kept;
        let mut left = Vec::new();
        for session in gone {
            if let Some(id) = session.conn {
                self.links.push_action(Action::Close(id));
            }
            self.napster.searches.remove(&session.addr);
            self.napster.shared.remove(&session.addr);
            self.napster.resync.remove(&session.addr);
            left.push(session.addr);
        }
        left
    }

    /// Our nick on index servers.
    pub fn napster_nick(&self) -> Option<String> {
        self.napster.identity.as_ref().map(|i| i.nick.clone())
    }

    /// `index status`.
    pub fn index_status(&self, now: Instant) -> Vec<IndexStatus> {
        let nick = self
            .napster
            .identity
            .as_ref()
            .map(|i| i.nick.clone())
            .unwrap_or_default();
        self.napster
            .sessions
            .iter()
            .map(|s| IndexStatus {
                server: s.addr,
                nick: nick.clone(),
                data_port: self.napster.identity.as_ref().map_or(0, |i| i.data_port),
                state: s.phase.name(),
                online_secs: match s.phase {
                    Phase::Online { since } => Some(now.saturating_duration_since(since).as_secs()),
                    _ => None,
                },
                retry_in_secs: s.retry_in(now).map(|d| d.as_secs()),
                shared: self.napster.shared.get(&s.addr).map_or(0, |set| set.len()),
                users: s.stats.as_ref().map(|st| st.users),
                files: s.stats.as_ref().map(|st| st.files),
                gigabytes: s.stats.as_ref().map(|st| st.gigabytes),
                motd: s.motd.clone(),
                last_error: s.last_error.clone(),
                traffic: s.traffic,
            })
            .collect()
    }

    /// Dials the servers whose backoff is over; drops sessions whose
    /// timers ran out.
    pub(super) fn maintain_index(&mut self, now: Instant) {
        if self.shutting_down || self.napster.identity.is_none() {
            return;
        }
        let mut drops = Vec::new();
        for session in &mut self.napster.sessions {
            if session.due(now) {
                session.dialling(now);
                self.links.push_action(Action::ConnectIndex(session.addr));
            } else if let Some(reason) = session.tick(now) {
                if let Some(id) = session.conn {
                    drops.push((id, reason));
                }
            } else if let Some(id) = session.conn {
                if !session.output().is_empty() {
                    self.links.push_action(Action::WantWrite(id));
                }
            }
        }
        for (id, reason) in drops {
            self.links.push_action(Action::Close(id));
            self.index_closed(id, &reason, now);
        }
        // Share lists too long for one go continue as the output drains.
        let pending: Vec<SocketAddr> = self.napster.resync.iter().copied().collect();
        for addr in pending {
            let drained = self
                .napster
                .by_addr(addr)
                .is_some_and(|s| s.output().len() < SHARE_OUTPUT / 2);
            if drained {
                self.share_to(addr);
            }
        }
        // Searches whose 202 never came stop collecting.
        for pending in self.napster.searches.values_mut() {
            pending.expire(now);
        }
        self.napster.accepted.expire(now);
        self.napster.browsers.expire(now);
        self.tick_napster_downloads(now);
    }

    /// The socket to an index server is up.
    pub fn on_index_connected(&mut self, id: ConnId, addr: SocketAddr, now: Instant) -> bool {
        let Some(identity) = self.napster.identity.clone() else {
            return false;
        };
        let Some(session) = self.napster.by_addr(addr) else {
            return false;
        };
        if !matches!(session.phase, Phase::Connecting { .. }) {
            return false;
        }
        session.connected(id, &identity, now);
        self.links.push_action(Action::WantWrite(id));
        true
    }

    pub fn on_index_connect_failed(&mut self, addr: SocketAddr, error: &str, now: Instant) {
        let Some(session) = self.napster.by_addr(addr) else {
            return;
        };
        session.connect_failed(error, now);
        let wait = session.retry_in(now).unwrap_or_default().as_secs();
        self.links.event(CoreEvent::Notice(format!(
            "index {addr}: cannot connect ({error}); trying again in {wait}s"
        )));
    }

    /// The session's socket closed.
    pub(super) fn index_closed(&mut self, id: ConnId, reason: &str, now: Instant) {
        let Some(session) = self.napster.session_mut(id) else {
            return;
        };
        let addr = session.addr;
        let refused = session.phase == Phase::Refused;
        let was = session.phase.name();
        session.closed(reason, now);
        let wait = session.retry_in(now);
        self.napster.shared.remove(&addr);
        self.napster.resync.remove(&addr);
        if let Some(mut pending) = self.napster.searches.remove(&addr) {
            pending.clear();
        }
        let text = match (refused, wait) {
            (false, Some(wait)) => format!(
                "index {addr}: session lost while {was} ({reason}); reconnecting in {}s",
                wait.as_secs().max(1)
            ),
            _ => format!("index {addr}: closed ({reason})"),
        };
        self.links.event(CoreEvent::Notice(text));
        self.fail_downloads_via(addr, now);
    }

    pub(super) fn index_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(identity) = self.napster.identity.clone() else {
            return;
        };
        let Some(session) = self.napster.session_mut(id) else {
            return;
        };
        let addr = session.addr;
        let incoming = session.on_bytes(bytes, &identity, now);
        for item in incoming {
            match item {
                Incoming::LoggedIn => {
                    self.share_to(addr);
                    // Asked after our shares, so the answer counts them.
                    self.send_to(addr, &ClientMessage::StatsRequest);
                }
                Incoming::Dropped(reason) => {
                    self.links.push_action(Action::Close(id));
                    self.index_closed(id, &reason, now);
                    return;
                }
                Incoming::Notice(text) => self
                    .links
                    .event(CoreEvent::Notice(format!("index {addr}: {text}"))),
                Incoming::Message(message) => self.index_message(addr, message, now),
            }
        }
        let refused = self
            .napster
            .session_mut(id)
            .is_some_and(|s| s.phase == Phase::Refused);
        if refused {
            // Nothing more to say to a server that refused us; its socket
            // goes now rather than when (or if) the server closes it.
            if let Some(session) = self.napster.session_mut(id) {
                session.conn = None;
            }
            self.links.push_action(Action::Close(id));
            return;
        }
        self.links.push_action(Action::WantWrite(id));
    }

    fn index_message(&mut self, addr: SocketAddr, message: ServerMessage, now: Instant) {
        match message {
            ServerMessage::SearchResult(result) => self.index_result(addr, result),
            ServerMessage::SearchEnd => {
                if let Some(pending) = self.napster.searches.get_mut(&addr) {
                    pending.pop_front();
                }
            }
            ServerMessage::UploadRequest(request) => self.upload_request(addr, request.file, now),
            ServerMessage::DirectBrowseRequest(request) => {
                self.direct_browse_request(addr, request, now)
            }
            ServerMessage::BrowseEntry(entry) => {
                self.browse_entry(addr, entry);
            }
            ServerMessage::BrowseEnd(end) => self.browse_end(addr, &end.nick),
            ServerMessage::UserSignoff { nick } => self.browse_end(addr, &nick),
            other => self.napster_download_message(addr, other, now),
        }
    }

    /// Queues `message` for server `addr` (if it is connected).
    pub(super) fn send_to(&mut self, addr: SocketAddr, message: &ClientMessage) -> bool {
        let Some(session) = self.napster.by_addr(addr) else {
            return false;
        };
        let Some(id) = session.conn.filter(|_| session.is_online()) else {
            return false;
        };
        session.send(message);
        self.links.push_action(Action::WantWrite(id));
        true
    }

    pub(super) fn index_output(&mut self, id: ConnId) -> &[u8] {
        match self.napster.sessions.iter().find(|s| s.conn == Some(id)) {
            Some(session) => session.output(),
            None => &[],
        }
    }

    pub(super) fn index_consume(&mut self, id: ConnId, n: usize) {
        if let Some(session) = self.napster.session_mut(id) {
            session.consume_output(n);
        }
    }
}
