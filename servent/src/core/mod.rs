//! The sans-IO core of the servent: handed bytes, events and the current
//! time, it returns what to send and what happened. No sockets, no clock,
//! no threads; the same inputs always give the same outputs (randomness comes
//! from a seed in [`CoreConfig`]).
//!
//! # Contract with the reactor
//!
//! Inputs (the reactor calls these):
//! - [`Core::on_connection`]`(id, direction, peer, now)`: a socket is ready
//!   for the Gnutella overlay — an incoming socket whose first bytes were
//!   sniffed as `GNUTELLA CONNECT/` (pass those sniffed bytes with
//!   [`Core::on_bytes`] right after), or an outgoing connect that completed.
//!   `id` is allocated by the reactor, never repeats, and is never `u64::MAX`.
//! - [`Core::on_connect_failed`]`(addr, now)`: an outgoing connect failed.
//! - [`Core::on_bytes`]`(id, bytes, now)`: bytes read from the socket.
//! - [`Core::on_closed`]`(id, now)`: the socket closed or failed (EOF, error).
//! - [`Core::handle_timeout`]`(now)`: call when [`Core::poll_timeout`] is due
//!   (calling it earlier or more often is harmless).
//! - Commands: [`Core::connect`], [`Core::disconnect`], [`Core::search`],
//!   [`Core::send_push`], [`Core::set_library`], [`Core::shutdown`].
//!
//! Outputs (the reactor pulls these after every input):
//! - [`Core::poll_action`] until `None`:
//!   - [`Action::Connect`]`(addr)`: start a non-blocking connect; report it with
//!     `on_connection(.., Outgoing, addr, ..)` or `on_connect_failed(addr, ..)`.
//!   - [`Action::WantWrite`]`(id)`: output is waiting; keep WRITABLE interest
//!     until [`Core::output`] returns an empty slice.
//!   - [`Action::Close`]`(id)`: close the socket now (any Bye or refusal was
//!     already drained through `output`). Do not call `on_closed` for it
//!     (doing so is harmless).
//!   - [`Action::Event`]: something for the user or the shell ([`CoreEvent`]).
//! - [`Core::output`]`(id)` gives the bytes to write; after writing `n` of
//!   them call [`Core::consume_output`]`(id, n)`. Descriptors wait in a
//!   per-connection priority queue and are moved (and deflated, when the link
//!   compresses) into that byte buffer only as the socket drains, so the drop
//!   policy of PROTOCOL-NOTES §2 acts on the real backlog.
//! - [`Core::poll_timeout`]: when to call `handle_timeout` next.
//!
//! Queries: [`Core::peers`], [`Core::stats`], [`Core::results`],
//! [`Core::host_cache`] (bytes to persist with [`HostCache::to_bytes`]).
//!
//! # Map
//! - [`connection`]: one link's state, buffers, deflate, send queue.
//! - `router` (private): PROTOCOL-NOTES §2, descriptor by descriptor.
//! - [`seen`]: bounded two-generation tables for duplicates and reverse
//!   paths (allocated once; memory does not grow under a flood).
//! - [`queue`]: the per-connection send queue and its drop policy.
//! - [`hosts`]: the host cache. [`pongs`]: the pong cache.
//! - [`limits`]: rate limits; `push_guard` (private): what a Push for us may
//!   make us do (a link flooding Pushes is dropped, callbacks rate-limited).
//! - [`wire`]: raw header/payload offsets for the routing hot path.
//! - `qrt` (private): our query routing table, sent as RESET + PATCHes to
//!   each ultrapeer on link-up and as a diff patch at the first tick after
//!   [`Core::set_library`] changed it.
//! - [`stats`]: counters. [`shares`]: the shared library (servent-shares).

pub mod connection;
mod handshake;
pub mod hosts;
pub mod limits;
pub mod pongs;
mod push_guard;
mod qrt;
pub mod queue;
mod router;
pub mod seen;
pub mod shares;
pub mod stats;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hazel_protocol::qrp::PAYLOAD_TYPE;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

pub use connection::{Direction, ProtocolVersion};
pub use hosts::HostCache;
pub use stats::{DropReason, Stats, TypeCounts};

use connection::{Connection, Phase};
use pongs::PongCache;
use queue::{Class, SendQueue};
use seen::SeenTable;
use shares::Library;
use stats::DropCounts;

/// A connection id, allocated by the reactor; never reused.
pub type ConnId = u64;
/// The id of a search we originated.
pub type SearchId = u64;

/// Reverse-path value meaning "we originated this".
const LOCAL: u64 = u64::MAX;

/// Everything the core needs to know about itself.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Our servent id (last 16 bytes of our QueryHits; Pushes for it are ours).
    pub servent_id: [u8; 16],
    /// The address we listen on (its port is advertised unless firewalled).
    pub listen_addr: SocketAddr,
    /// Behind a firewall: Pongs carry port 0, Queries carry `C0 00`.
    pub firewalled: bool,
    /// The handshake we initiate with (hazel↔hazel use 0.6 unless told 0.4).
    pub protocol: ProtocolVersion,
    /// Outgoing connections to keep up.
    pub peers: usize,
    /// Most connections accepted (incoming + outgoing); beyond: 503 + X-Try.
    pub max_peers: usize,
    /// TTL of Queries we originate (1..=max_ttl).
    pub ttl: u8,
    /// Clamp for TTL + hops when forwarding.
    pub max_ttl: u8,
    pub user_agent: String,
    /// Upload speed announced in QueryHits (kb/s).
    pub speed_kbps: u32,
    /// Offer and accept deflate on 0.6 links.
    pub deflate: bool,
    /// Seed of the random generator (descriptor ids, hash keys).
    pub seed: u64,
    pub handshake_timeout: Duration,
    /// A TTL=1 Ping is sent on a link quiet for this long.
    pub keepalive_interval: Duration,
    /// A link silent (nothing received) or leaving our keep-alive Pings
    /// without a Pong for this long is dropped (Bye 406).
    pub idle_timeout: Duration,
    /// One Ping accepted per neighbour per this interval.
    pub ping_throttle: Duration,
    /// Pong cache answers Pings while refreshed within this.
    pub pong_cache_fresh: Duration,
    /// Entries per generation of the Query table (Ping and Push tables are
    /// a quarter of it). Each entry lives at least `dedup_age`.
    pub dedup_capacity: usize,
    pub dedup_age: Duration,
    pub host_cache_capacity: usize,
    /// Send queue limits per connection (bytes): droppable traffic is dropped
    /// above the soft limit; above the hard limit the neighbour is dropped.
    pub send_queue_soft: usize,
    pub send_queue_hard: usize,
    /// How long to wait for a Bye or refusal to drain before closing anyway.
    pub close_linger: Duration,
}

impl CoreConfig {
    pub fn new(servent_id: [u8; 16], listen_addr: SocketAddr) -> CoreConfig {
        CoreConfig {
            servent_id,
            listen_addr,
            firewalled: false,
            protocol: ProtocolVersion::V06,
            peers: 4,
            max_peers: 32,
            ttl: 7,
            max_ttl: 7,
            user_agent: format!("Hazel/{}", env!("CARGO_PKG_VERSION")),
            speed_kbps: 1000,
            deflate: true,
            seed: 0x4a7e_1c0d_e5e7_0001,
            handshake_timeout: Duration::from_secs(20),
            keepalive_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(120),
            ping_throttle: Duration::from_secs(3),
            pong_cache_fresh: Duration::from_secs(5),
            dedup_capacity: 229_376,
            dedup_age: Duration::from_secs(600),
            host_cache_capacity: 1000,
            send_queue_soft: 256 * 1024,
            send_queue_hard: 1024 * 1024,
            close_linger: Duration::from_secs(10),
        }
    }
}

/// What the reactor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Connect(SocketAddr),
    Close(ConnId),
    WantWrite(ConnId),
    Event(CoreEvent),
}

/// Something that happened, for the user or the shell.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CoreEvent {
    /// A handshake completed.
    PeerUp(PeerInfo),
    /// A connection ended (or a handshake failed or was refused).
    PeerDown {
        id: ConnId,
        addr: SocketAddr,
        reason: String,
    },
    /// A new result for one of our searches.
    SearchResult(SearchResult),
    /// A Push for our servent id: connect to `addr` and send a GIV for
    /// `file_index`.
    PushRequest(PushRequest),
    /// A connection the user asked for could not be opened.
    ConnectFailed { addr: SocketAddr, reason: String },
}

/// What [`Core::connect`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// Dialling; the outcome arrives as an event.
    Dialling,
    /// The address is this servent.
    Ourselves,
    /// A link to it exists or is being opened.
    AlreadyConnected,
    ShuttingDown,
}

/// A Push addressed to us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushRequest {
    pub file_index: u32,
    pub addr: SocketAddr,
    /// Our servent id as the Push carried it (for the GIV line).
    pub servent_id: String,
}

/// One connection as `peers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerInfo {
    pub id: ConnId,
    pub addr: SocketAddr,
    pub listen_addr: Option<SocketAddr>,
    pub direction: Direction,
    pub protocol: ProtocolVersion,
    pub state: &'static str,
    pub user_agent: String,
    pub ultrapeer: Option<bool>,
    pub age_secs: u64,
    pub descriptors_in: u64,
    pub descriptors_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub queued_descriptors: usize,
    pub queued_bytes: usize,
    pub dropped: u64,
    pub deflate_in: bool,
    pub deflate_out: bool,
}

/// One file found by one of our searches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchResult {
    pub search: SearchId,
    /// The responding servent's id, 32 hex digits.
    pub servent_id: String,
    pub addr: SocketAddr,
    pub file_index: u32,
    pub size: u64,
    pub name: String,
    /// `urn:sha1:...` when the hit carried one.
    pub urn: Option<String>,
    /// The responder is firewalled (a download needs a Push).
    pub needs_push: bool,
    pub hops: u8,
}

/// A search we originated and what came back.
struct Search {
    text: String,
    query_id: [u8; 16],
    results: Vec<SearchResult>,
    seen: HashSet<([u8; 16], u32)>,
}

/// Most searches remembered; the oldest is forgotten first.
const MAX_SEARCHES: usize = 64;
/// Most results kept per search.
const MAX_RESULTS_PER_SEARCH: usize = 2000;
/// Housekeeping period.
const TICK: Duration = Duration::from_secs(1);
/// A pending connect the reactor never reported is forgotten after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A compressed link that wrote nothing for this long frees its compressor.
const DEFLATER_IDLE: Duration = Duration::from_secs(5);
/// Hosts offered in X-Try headers.
const X_TRY_HOSTS: usize = 10;
/// User-requested connects remembered (to report their failure).
const MAX_USER_CONNECTS: usize = 64;

/// The servent's protocol core. See the module documentation for the contract.
pub struct Core {
    config: CoreConfig,
    rng: StdRng,
    conns: HashMap<ConnId, Connection, seen::ConnIdHashBuilder>,
    /// Established connections, for broadcasts.
    established: Vec<ConnId>,
    pending_connects: HashMap<SocketAddr, Instant>,
    /// Pending connects the user asked for: their failure is an event.
    user_connects: HashSet<SocketAddr>,
    actions: VecDeque<Action>,
    /// Ping id → origin connection (or LOCAL): dedup and reverse path.
    ping_routes: SeenTable,
    /// Query id → origin connection (or LOCAL): dedup and reverse path.
    query_routes: SeenTable,
    /// Push ids seen: dedup only.
    push_seen: SeenTable,
    /// Servent id → connection its QueryHits arrived on.
    push_routes: SeenTable,
    /// What Pushes for us may make us do (floods, repeats, callback rates).
    push_guard: push_guard::PushGuard,
    hosts: HostCache,
    pong_cache: PongCache,
    library: Arc<Library>,
    /// The query routing table of `library` (built when first needed).
    qrt: Option<Arc<hazel_protocol::qrp::QueryRouteTable>>,
    /// QRP messages (RESET and PATCH pieces) sent to ultrapeers.
    qrp_sent: u64,
    searches: VecDeque<(SearchId, Search)>,
    next_search: SearchId,
    received: TypeCounts,
    forwarded: TypeCounts,
    originated: TypeCounts,
    dropped: TypeCounts,
    drops: DropCounts,
    pings_from_cache: u64,
    next_tick: Instant,
    /// Addresses found to be ourselves.
    self_addrs: HashSet<SocketAddr>,
    /// Our address as peers see it (Remote-IP), used when listening on 0.0.0.0.
    external_ip: Option<Ipv4Addr>,
    shutting_down: bool,
    /// Every upload slot is taken (QueryHits say busy).
    uploads_busy: bool,
    /// An upload completed at least once (QueryHits say so).
    have_uploaded: bool,
    /// Scratch buffer for inflated input.
    inflate_scratch: Vec<u8>,
}

impl Core {
    pub fn new(config: CoreConfig, now: Instant) -> Core {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let cap = config.dedup_capacity.max(16);
        let age = config.dedup_age;
        let ping_routes = SeenTable::new(cap / 4, age, rng.gen(), now);
        let query_routes = SeenTable::new(cap, age, rng.gen(), now);
        let push_seen = SeenTable::new(cap / 4, age, rng.gen(), now);
        let push_routes = SeenTable::new(cap / 4, age, rng.gen(), now);
        Core {
            hosts: HostCache::new(config.host_cache_capacity),
            pong_cache: PongCache::new(config.pong_cache_fresh),
            rng,
            conns: HashMap::with_hasher(seen::ConnIdHashBuilder),
            established: Vec::new(),
            pending_connects: HashMap::new(),
            user_connects: HashSet::new(),
            actions: VecDeque::new(),
            ping_routes,
            query_routes,
            push_seen,
            push_routes,
            push_guard: push_guard::PushGuard::default(),
            library: Arc::new(Library::empty()),
            qrt: None,
            qrp_sent: 0,
            searches: VecDeque::new(),
            next_search: 1,
            received: TypeCounts::default(),
            forwarded: TypeCounts::default(),
            originated: TypeCounts::default(),
            dropped: TypeCounts::default(),
            drops: DropCounts::default(),
            pings_from_cache: 0,
            next_tick: now,
            self_addrs: HashSet::new(),
            external_ip: None,
            shutting_down: false,
            uploads_busy: false,
            have_uploaded: false,
            inflate_scratch: Vec::new(),
            config,
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    // ----- inputs -------------------------------------------------------

    /// A socket for the overlay is ready (see the module doc).
    pub fn on_connection(
        &mut self,
        id: ConnId,
        direction: Direction,
        peer: SocketAddr,
        now: Instant,
    ) {
        if self.conns.contains_key(&id) {
            return;
        }
        let version = match direction {
            Direction::Outgoing => self.config.protocol,
            // Learned from the peer's CONNECT line.
            Direction::Incoming => ProtocolVersion::V06,
        };
        let queue = SendQueue::new(self.config.send_queue_soft, self.config.send_queue_hard);
        let mut conn = Connection::new(id, direction, peer, version, queue, now);
        if direction == Direction::Outgoing {
            self.pending_connects.remove(&peer);
            self.user_connects.remove(&peer);
            let block = self.connect_block(peer);
            conn.write_raw(&block);
        }
        self.conns.insert(id, conn);
        if direction == Direction::Outgoing {
            self.want_write(id);
        }
    }

    /// An outgoing connect failed (`error` says why): back off that host, and
    /// tell the user when they asked for this connection.
    pub fn on_connect_failed(&mut self, addr: SocketAddr, error: &str, now: Instant) {
        self.pending_connects.remove(&addr);
        self.hosts.failed(&addr, now);
        if self.user_connects.remove(&addr) {
            self.actions
                .push_back(Action::Event(CoreEvent::ConnectFailed {
                    addr,
                    reason: error.to_string(),
                }));
        }
    }

    /// Bytes read from connection `id`.
    pub fn on_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.bytes_in += bytes.len() as u64;
        conn.last_received = now;
        match conn.phase {
            Phase::Closing { .. } => {}
            Phase::Established => self.on_stream_bytes(id, bytes, now),
            _ => {
                // Bytes after the final head are descriptors, whatever their
                // amount (a peer may send its final 200 and a burst of
                // descriptors in one write): the handshake takes its blocks
                // from the front and hands the rest to the router. Only a
                // head that has not ended within the limit is too long.
                // Memory stays bounded: one read at most is buffered here.
                conn.inbuf.extend_from_slice(bytes);
                self.drive_handshake(id, now);
                let unfinished_head = self.conns.get(&id).is_some_and(|c| {
                    !c.is_established()
                        && !c.is_closing()
                        && c.inbuf.len() > hazel_protocol::handshake::MAX_HANDSHAKE_HEAD
                });
                if unfinished_head {
                    self.drop_conn(id, "handshake too long", now);
                }
            }
        }
    }

    /// The socket closed or failed.
    pub fn on_closed(&mut self, id: ConnId, now: Instant) {
        if let Some(conn) = self.conns.get(&id) {
            if conn.direction == Direction::Outgoing && !conn.is_established() && !conn.is_closing()
            {
                // Closed during the handshake (gtk-gnutella does this to 0.4).
                let addr = conn.peer;
                self.hosts.failed(&addr, now);
            }
            self.remove_conn(id, "closed by peer");
        }
    }

    /// Housekeeping: handshake timeouts, keep-alive, idle links, lingering
    /// closes, table ageing, outgoing connection upkeep.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.refresh_query_routes(now);
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            match conn.phase {
                Phase::Closing { deadline } => {
                    if now >= deadline {
                        self.close_now(id, "close linger expired");
                    }
                }
                Phase::Established => {
                    let quiet_in = now.saturating_duration_since(conn.last_received);
                    let quiet_out = now.saturating_duration_since(conn.last_sent);
                    let unanswered = conn
                        .unanswered_ping_since
                        .map(|t| now.saturating_duration_since(t))
                        .unwrap_or_default();
                    if quiet_in >= self.config.idle_timeout
                        || unanswered >= self.config.idle_timeout
                    {
                        self.bye_and_close(id, 406, "No reply to alive pings", now);
                        continue;
                    }
                    let since_ping = conn
                        .last_keepalive
                        .map(|t| now.saturating_duration_since(t))
                        .unwrap_or(Duration::MAX);
                    let interval = self.config.keepalive_interval;
                    if (quiet_in >= interval || quiet_out >= interval) && since_ping >= interval {
                        self.send_keepalive(id, now);
                    } else if quiet_out >= DEFLATER_IDLE {
                        let flushed = self
                            .conns
                            .get_mut(&id)
                            .is_some_and(|c| c.release_idle_deflater());
                        if flushed {
                            self.want_write(id);
                        }
                    }
                }
                _ => {
                    if now.saturating_duration_since(conn.created) >= self.config.handshake_timeout
                    {
                        let addr = conn.peer;
                        if conn.direction == Direction::Outgoing {
                            self.hosts.failed(&addr, now);
                        }
                        self.drop_conn(id, "handshake timeout", now);
                    }
                }
            }
        }
        self.pending_connects
            .retain(|_, started| now.saturating_duration_since(*started) < CONNECT_TIMEOUT);
        let pending = &self.pending_connects;
        self.user_connects.retain(|a| pending.contains_key(a));
        self.ping_routes.rotate_if_due(now);
        self.query_routes.rotate_if_due(now);
        self.push_seen.rotate_if_due(now);
        self.push_routes.rotate_if_due(now);
        self.pong_cache.expire(now, Duration::from_secs(60));
        if !self.shutting_down {
            self.maintain_outgoing(now);
        }
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    /// The next action for the reactor.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Bytes waiting to be written on `id` (empty when none).
    pub fn output(&mut self, id: ConnId) -> &[u8] {
        match self.conns.get_mut(&id) {
            Some(conn) => {
                if !conn.has_output() {
                    conn.write_signalled = false;
                }
                conn.output()
            }
            None => &[],
        }
    }

    /// `n` bytes of [`Core::output`] were written.
    pub fn consume_output(&mut self, id: ConnId, n: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.consume_output(n, now);
        if !conn.has_output() {
            conn.write_signalled = false;
            if conn.is_closing() {
                self.close_now(id, "closed after flush");
            }
        }
    }

    // ----- commands -----------------------------------------------------

    /// Connect to `addr` now, whatever its backoff (the user asked). It joins
    /// the host cache once a connection to it works; a failure is reported
    /// with [`CoreEvent::ConnectFailed`].
    pub fn connect(&mut self, addr: SocketAddr, now: Instant) -> ConnectOutcome {
        if self.is_self_addr(&addr) {
            return ConnectOutcome::Ourselves;
        }
        if self.is_connected_to(&addr) {
            return ConnectOutcome::AlreadyConnected;
        }
        if self.shutting_down {
            return ConnectOutcome::ShuttingDown;
        }
        self.hosts.dialling(&addr, now);
        self.pending_connects.insert(addr, now);
        if self.user_connects.len() < MAX_USER_CONNECTS {
            self.user_connects.insert(addr);
        }
        self.actions.push_back(Action::Connect(addr));
        ConnectOutcome::Dialling
    }

    /// Close connection `id` (with a Bye when the peer understands it).
    /// Returns false for an unknown id.
    pub fn disconnect(&mut self, id: ConnId, now: Instant) -> bool {
        if !self.conns.contains_key(&id) {
            return false;
        }
        self.bye_and_close(id, 200, "Disconnected by user", now);
        true
    }

    /// Originates a Query for `text` to every established neighbour, with
    /// the configured TTL.
    pub fn search(&mut self, text: &str, now: Instant) -> SearchId {
        self.search_with_ttl(text, self.config.ttl, now)
    }

    /// Like [`Core::search`] with an explicit TTL (clamped to 1..=max TTL).
    pub fn search_with_ttl(&mut self, text: &str, ttl: u8, now: Instant) -> SearchId {
        let query_id = self.new_descriptor_id();
        let payload = wire::query_payload(text, self.config.firewalled);
        let ttl = ttl.clamp(1, self.config.max_ttl.max(1));
        let frame: queue::Frame = wire::descriptor(query_id, wire::QUERY, ttl, 0, &payload).into();
        self.query_routes.insert_new(&query_id, LOCAL, now);
        let search_id = self.next_search;
        self.next_search += 1;
        if self.searches.len() >= MAX_SEARCHES {
            self.searches.pop_front();
        }
        self.searches.push_back((
            search_id,
            Search {
                text: text.to_string(),
                query_id,
                results: Vec::new(),
                seen: HashSet::new(),
            },
        ));
        self.originated.add(wire::QUERY, 1);
        for i in 0..self.established.len() {
            let Some(&to) = self.established.get(i) else {
                break;
            };
            self.enqueue(to, Class::Query { hops: 0 }, frame.clone(), now);
        }
        search_id
    }

    /// Results of one search, or of all remembered searches.
    pub fn results(&self, search: Option<SearchId>) -> Vec<SearchResult> {
        self.searches
            .iter()
            .filter(|(id, _)| search.is_none() || search == Some(*id))
            .flat_map(|(_, s)| s.results.iter().cloned())
            .collect()
    }

    /// The searches remembered: id and text.
    pub fn searches(&self) -> Vec<(SearchId, String)> {
        self.searches
            .iter()
            .map(|(id, s)| (*id, s.text.clone()))
            .collect()
    }

    /// Sends a Push asking `servent_id` (learned from its QueryHits) to
    /// connect back to us for `file_index`. False when no route is known.
    pub fn send_push(&mut self, servent_id: [u8; 16], file_index: u32, now: Instant) -> bool {
        let Some(to) = self.push_routes.get(&servent_id) else {
            return false;
        };
        if !self.conns.get(&to).is_some_and(|c| c.is_established()) {
            return false;
        }
        let ip = match self.advertised_ip() {
            IpAddr::V4(ip) => ip.octets(),
            IpAddr::V6(_) => [0; 4],
        };
        let payload = wire::PushFields {
            servent_id,
            file_index,
            ip,
            port: self.config.listen_addr.port(),
        }
        .payload();
        let id = self.new_descriptor_id();
        self.push_seen.insert_new(&id, 0, now);
        let ttl = self.config.max_ttl.max(1);
        let frame = wire::descriptor(id, wire::PUSH, ttl, 0, &payload).into();
        self.originated.add(wire::PUSH, 1);
        self.enqueue(to, Class::Keep, frame, now);
        true
    }

    /// Replaces the shared library (answers and Pong totals use it from now).
    /// Ultrapeers that hold our query routing table get a patch with the
    /// difference at the next tick.
    pub fn set_library(&mut self, library: Arc<Library>) {
        self.library = library;
        self.qrt = None;
    }

    /// Sends a diff patch to every ultrapeer whose copy of our query
    /// routing table is older than the library.
    fn refresh_query_routes(&mut self, now: Instant) {
        let current = self.qrt.clone();
        let stale: Vec<ConnId> = self
            .established
            .iter()
            .copied()
            .filter(|id| {
                self.conns
                    .get(id)
                    .is_some_and(|c| match (&c.qrt_sent, &current) {
                        (None, _) => false,
                        (Some(_), None) => true,
                        (Some(sent), Some(cur)) => !Arc::ptr_eq(sent, cur),
                    })
            })
            .collect();
        for id in stale {
            self.send_query_routes(id, now);
        }
    }

    /// Sends `id` (an ultrapeer we are a leaf of) what it lacks of our
    /// current query routing table: RESET + PATCHes the first time, a diff
    /// patch later, nothing when it is up to date.
    fn send_query_routes(&mut self, id: ConnId, now: Instant) {
        let current = match &self.qrt {
            Some(t) => Arc::clone(t),
            None => {
                let t = Arc::new(qrt::table_for(&self.library));
                self.qrt = Some(Arc::clone(&t));
                t
            }
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let payloads = qrt::messages(&current, conn.qrt_sent.as_ref());
        conn.qrt_sent = Some(Arc::clone(&current));
        for payload in payloads {
            let frame = wire::descriptor(self.new_descriptor_id(), PAYLOAD_TYPE, 1, 0, &payload);
            // Never dropped: a lost piece would spoil the whole patch.
            if self.enqueue(id, Class::Keep, frame.into(), now) {
                self.originated.add(PAYLOAD_TYPE, 1);
                self.qrp_sent += 1;
            }
        }
    }

    /// Upload state for the flags of our QueryHits (the reactor knows it).
    pub fn set_upload_state(&mut self, busy: bool, have_uploaded: bool) {
        self.uploads_busy = busy;
        self.have_uploaded = have_uploaded;
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    /// The host cache (for saving with [`HostCache::to_bytes`]).
    pub fn host_cache(&self) -> &HostCache {
        &self.hosts
    }

    /// Replaces the host cache (loaded from the data directory at start).
    pub fn set_host_cache(&mut self, hosts: HostCache) {
        self.hosts = hosts;
    }

    /// Bye to every peer that announced Bye-Packet, close the others; no new
    /// connections from now on. The reactor keeps running until every
    /// connection is closed (at most `close_linger`).
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.pending_connects.clear();
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.bye_and_close(id, 200, "Shutting down", now);
        }
    }

    /// True once shutdown was asked and every connection is closed.
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down && self.conns.is_empty()
    }

    pub fn peers(&self, now: Instant) -> Vec<PeerInfo> {
        let mut list: Vec<PeerInfo> = self.conns.values().map(|c| peer_info(c, now)).collect();
        list.sort_by_key(|p| p.id);
        list
    }

    pub fn stats(&self) -> Stats {
        Stats {
            received: self.received,
            forwarded: self.forwarded,
            originated: self.originated,
            dropped: self.dropped,
            drops_by_reason: self.drops.to_map(),
            pings_answered_from_cache: self.pings_from_cache,
            qrp_sent: self.qrp_sent,
            ping_table: self.ping_routes.len(),
            query_table: self.query_routes.len(),
            push_table: self.push_seen.len(),
            push_routes: self.push_routes.len(),
            routing_memory_bytes: self.ping_routes.memory_bytes()
                + self.query_routes.memory_bytes()
                + self.push_seen.memory_bytes()
                + self.push_routes.memory_bytes(),
            host_cache: self.hosts.len(),
            pong_cache: self.pong_cache.len(),
            connections: self.conns.len(),
            established: self.established.len(),
            searches: self.searches.len(),
        }
    }

    /// A drop counter (for tests and benches).
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops.get(reason)
    }

    // ----- internals ----------------------------------------------------

    fn new_descriptor_id(&mut self) -> [u8; 16] {
        let mut id: [u8; 16] = self.rng.gen();
        // Modern ids: byte 8 = 0xFF, byte 15 = 0x00 (PROTOCOL-NOTES §1).
        id[8] = 0xff;
        id[15] = 0x00;
        id
    }

    fn want_write(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.write_signalled {
                conn.write_signalled = true;
                self.actions.push_back(Action::WantWrite(id));
            }
        }
    }

    /// Queues a descriptor for `to`, applying the drop policy and
    /// disconnecting a neighbour that cannot drain what must not be lost.
    fn enqueue(&mut self, to: ConnId, class: Class, frame: queue::Frame, now: Instant) -> bool {
        let Some(conn) = self.conns.get_mut(&to) else {
            return false;
        };
        if !conn.is_established() {
            return false;
        }
        let dropped = conn.enqueue(class, frame);
        let overflowed = conn.queue.overflowed();
        let signal = !conn.write_signalled;
        conn.write_signalled = true;
        if dropped.total() > 0 {
            self.drops
                .add(DropReason::QueueFullPing, u64::from(dropped.pings));
            self.drops
                .add(DropReason::QueueFullQuery, u64::from(dropped.queries));
            self.drops
                .add(DropReason::QueueFullPong, u64::from(dropped.pongs));
            self.drops
                .add(DropReason::QueueFullOther, u64::from(dropped.others));
        }
        if overflowed {
            // It cannot drain QueryHits/Pushes: nothing more will reach it.
            self.close_now(to, "send queue overflow");
            let _ = now;
            return false;
        }
        if signal {
            self.actions.push_back(Action::WantWrite(to));
        }
        true
    }

    fn send_keepalive(&mut self, id: ConnId, now: Instant) {
        let ping_id = self.new_descriptor_id();
        self.ping_routes.insert_new(&ping_id, LOCAL, now);
        let frame = wire::descriptor(ping_id, wire::PING, 1, 0, &[]).into();
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.last_keepalive = Some(now);
            conn.unanswered_ping_since.get_or_insert(now);
        }
        self.originated.add(wire::PING, 1);
        self.enqueue(id, Class::Ping, frame, now);
    }

    /// Sends a Bye (to peers that announced Bye-Packet on an established
    /// link) and closes once it drained; otherwise closes at once.
    fn bye_and_close(&mut self, id: ConnId, code: u16, text: &str, now: Instant) {
        let linger = self.config.close_linger;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.is_closing() {
            return;
        }
        if conn.is_established() && conn.peer_bye && conn.version == ProtocolVersion::V06 {
            let payload = wire::bye_payload(code, text);
            let bye_id: [u8; 16] = self.rng.gen();
            let frame = wire::descriptor(bye_id, wire::BYE, 1, 0, &payload);
            conn.queue.clear();
            conn.enqueue(Class::Keep, frame.into());
            conn.phase = Phase::Closing {
                deadline: now + linger,
            };
            self.originated.add(wire::BYE, 1);
            self.established.retain(|c| *c != id);
            let addr = conn.peer;
            self.actions.push_back(Action::Event(CoreEvent::PeerDown {
                id,
                addr,
                reason: format!("sent Bye {code} {text}"),
            }));
            conn.write_signalled = false;
            self.want_write(id);
        } else {
            self.close_now(id, text);
        }
    }

    /// Drops a connection for a protocol violation or a failed handshake.
    fn drop_conn(&mut self, id: ConnId, reason: &str, now: Instant) {
        let established = self.conns.get(&id).is_some_and(|c| c.is_established());
        if established {
            self.bye_and_close(id, 400, reason, now);
        } else {
            self.close_now(id, reason);
        }
    }

    /// Tells the reactor to close `id` and forgets it.
    fn close_now(&mut self, id: ConnId, reason: &str) {
        if self.conns.contains_key(&id) {
            self.actions.push_back(Action::Close(id));
            self.remove_conn(id, reason);
        }
    }

    fn remove_conn(&mut self, id: ConnId, reason: &str) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        self.established.retain(|c| *c != id);
        if !conn.is_closing() {
            self.actions.push_back(Action::Event(CoreEvent::PeerDown {
                id,
                addr: conn.peer,
                reason: reason.to_string(),
            }));
        }
    }

    fn is_self_addr(&self, addr: &SocketAddr) -> bool {
        if self.self_addrs.contains(addr) || *addr == self.config.listen_addr {
            return true;
        }
        // Listening on 0.0.0.0:P: any local address with port P is us.
        let listen = self.config.listen_addr;
        listen.ip().is_unspecified() && addr.port() == listen.port() && addr.ip().is_loopback()
    }

    fn is_connected_to(&self, addr: &SocketAddr) -> bool {
        self.pending_connects.contains_key(addr)
            || self
                .conns
                .values()
                .any(|c| c.peer == *addr || c.listen_addr == Some(*addr))
    }

    fn outgoing_count(&self) -> usize {
        self.pending_connects.len()
            + self
                .conns
                .values()
                .filter(|c| c.direction == Direction::Outgoing && !c.is_closing())
                .count()
    }

    fn maintain_outgoing(&mut self, now: Instant) {
        // A few attempts per tick, so a cache of dead hosts is not dialled all at once.
        for _ in 0..4 {
            if self.outgoing_count() >= self.config.peers
                || self.conns.len() + self.pending_connects.len() >= self.config.max_peers
            {
                return;
            }
            let pick = self
                .hosts
                .pick(now, |a| self.is_self_addr(a) || self.is_connected_to(a));
            let Some(addr) = pick else {
                return;
            };
            self.hosts.dialling(&addr, now);
            self.pending_connects.insert(addr, now);
            self.actions.push_back(Action::Connect(addr));
        }
    }

    /// Our IP for Pongs and Pushes: the listen address, or what peers told us.
    fn advertised_ip(&self) -> IpAddr {
        let ip = self.config.listen_addr.ip();
        if ip.is_unspecified() {
            self.external_ip
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        } else {
            ip
        }
    }

    /// Established links the simulation and benches can inspect.
    pub fn established_ids(&self) -> &[ConnId] {
        &self.established
    }
}

fn peer_info(c: &Connection, now: Instant) -> PeerInfo {
    PeerInfo {
        id: c.id,
        addr: c.peer,
        listen_addr: c.listen_addr,
        direction: c.direction,
        protocol: c.version,
        state: match c.phase {
            Phase::AwaitingConnect | Phase::AwaitingResponse | Phase::AwaitingFinal => "handshake",
            Phase::Established => "established",
            Phase::Closing { .. } => "closing",
        },
        user_agent: c.user_agent.clone(),
        ultrapeer: c.peer_ultrapeer,
        age_secs: now.saturating_duration_since(c.created).as_secs(),
        descriptors_in: c.descriptors_in,
        descriptors_out: c.descriptors_out,
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
        queued_descriptors: c.queue.len(),
        queued_bytes: c.queued_bytes(),
        dropped: c.dropped,
        deflate_in: c.deflate_in,
        deflate_out: c.deflate_out,
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
