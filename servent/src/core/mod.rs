//! The sans-IO core of the servent: handed bytes, events and the current
//! time, it returns what to send and what happened. No sockets, no clock,
//! no threads; the same inputs always give the same outputs (randomness comes
//! from a seed in [`CoreConfig`]).
//!
//! # Contract with the event loop
//!
//! Inputs (the event loop, or the [`harness`](crate::harness), calls these):
//! - [`Core::on_connection`]`(id, direction, peer, now)`: a socket is ready
//!   for the Gnutella overlay — an incoming socket whose first bytes were
//!   sniffed as `GNUTELLA CONNECT/` (pass those sniffed bytes with
//!   [`Core::on_bytes`] right after), or an outgoing connect that completed.
//!   `id` is allocated by the caller and never repeats.
//! - [`Core::on_connect_failed`]`(addr, error, now)`: an outgoing connect failed.
//! - [`Core::on_bytes`]`(id, bytes, now)`: bytes read from the socket.
//! - [`Core::on_closed`]`(id, now)`: the socket closed or failed (EOF, error).
//! - [`Core::handle_timeout`]`(now)`: call when [`Core::poll_timeout`] is due
//!   (calling it earlier or more often is harmless).
//! - Commands: [`Core::connect`], [`Core::disconnect`], [`Core::search`],
//!   [`Core::send_push`], [`Core::set_library`], [`Core::shutdown`].
//!
//! Outputs (pulled after every input):
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
//! # Parts (one file each)
//! - [`ids`]: `ConnId`, `Direction`, `ProtocolVersion`, `Origin`.
//! - [`config`]: [`CoreConfig`]. [`events`]: [`Action`], [`CoreEvent`] and
//!   what they carry.
//! - [`connection`]: one link's state, buffers, framer, deflate, send queue;
//!   [`links`]: the set of links, queueing, flooding, closing; [`queue`]: the
//!   send queue's drop policy.
//! - `handshake` (private): the 0.4 and 0.6 handshakes as the core plays them.
//! - [`router`]: the [`Router`](router::Router) — route tables and the
//!   routing rules, deciding per descriptor; `dispatch` (private) carries its
//!   decisions out (answers, floods, forwards, deliveries to us).
//! - [`id_table`]: bounded two-generation id tables (routes, seen ids).
//! - `outgoing` (private): keeping outgoing links up from the host cache;
//!   `commands` (private): what the user asks (connect, search, push, quit).
//! - [`hosts`]: the host cache. [`pongs`]: the pong cache.
//! - [`searches`]: our searches and their results.
//! - [`limits`]: rate limits; `push_guard` (private): what a Push for us may
//!   make us do (a link flooding Pushes is dropped, callbacks rate-limited).
//! - `qrt` (private): our query routing table, sent as RESET + PATCHes to
//!   each ultrapeer on link-up and as a diff patch at the first tick after
//!   [`Core::set_library`] changed it.
//! - [`transfers`]: downloads (sources, ranges, retries, verification,
//!   Pushes and GIVs), sans IO; `downloads` (private) ties them to the
//!   searches, the Push routes and the event loop.
//! - [`napster`]: the servent as a Napster client: sessions with OpenNap
//!   index servers, the library shared there, index searches and browses
//!   into the same results, 607/608, downloads over the Napster data port.
//! - [`stats`]: counters. [`shares`]: the shared library (servent-shares).

pub mod bootstrap;
mod commands;
pub mod config;
pub mod connection;
mod dispatch;
mod downloads;
pub mod events;
mod handshake;
pub mod hosts;
pub mod id_table;
pub mod ids;
pub mod limits;
pub mod links;
pub mod napster;
mod outgoing;
pub mod pongs;
pub mod proxy;
mod push_guard;
mod qrt;
pub mod queue;
pub mod router;
pub mod searches;
pub mod shares;
pub mod stats;
pub mod transfers;
mod udp;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use config::CoreConfig;
pub use events::{Action, ConnectOutcome, CoreEvent, PeerInfo, PushRequest, SearchResult};
pub use hosts::HostCache;
pub use ids::{ConnId, Direction, ProtocolVersion, SearchId};
pub use qrt::table_for as query_route_table;
pub use stats::{Counters, DropReason, Stats, TypeCounts};

use connection::{Connection, Phase};
use links::Links;
use outgoing::Dialing;
use pongs::PongCache;
use queue::SendQueue;
use router::{Router, RouterConfig};
use searches::Searches;
use shares::Library;

/// Housekeeping period.
const TICK: Duration = Duration::from_secs(1);
/// A compressed link that wrote nothing for this long frees its compressor.
const DEFLATER_IDLE: Duration = Duration::from_secs(5);

/// What we share, as the core answers and announces it.
struct LocalShares {
    library: Arc<Library>,
    /// The query routing table of `library` (built when first needed).
    qrt: Option<Arc<hazel_protocol::qrp::QueryRouteTable>>,
    /// QRP messages (RESET and PATCH pieces) sent to ultrapeers.
    qrp_sent: u64,
    /// Every upload slot is taken (QueryHits say busy).
    uploads_busy: bool,
    /// An upload completed at least once (QueryHits say so).
    have_uploaded: bool,
    /// How many of our QueryHits named each file (by library index).
    hits_by_file: std::collections::HashMap<u32, u64>,
}

/// The servent's protocol core. See the module documentation for the contract.
pub struct Core {
    config: CoreConfig,
    rng: StdRng,
    links: Links,
    router: Router,
    hosts: HostCache,
    pong_cache: PongCache,
    dialing: Dialing,
    searches: Searches,
    push_guard: push_guard::PushGuard,
    shares: LocalShares,
    transfers: transfers::Transfers,
    /// Pings answered from the pong cache instead of being flooded.
    pings_from_cache: u64,
    next_tick: Instant,
    shutting_down: bool,
    /// Where inflate steps of compressed links land (one for all links).
    inflate_scratch: Vec<u8>,
    /// Pings and Pongs over UDP.
    udp: udp::Udp,
    /// Asking host caches when nobody can be dialled.
    bootstrap: bootstrap::Bootstrap,
    /// Push proxies, both ways.
    proxies: proxy::Proxies,
    /// The Napster client: index sessions, index downloads.
    napster: napster::Napster,
}

impl Core {
    pub fn new(config: CoreConfig, now: Instant) -> Core {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let router = Router::new(
            RouterConfig {
                servent_id: config.servent_id,
                max_ttl: config.max_ttl,
                ping_throttle: config.ping_throttle,
                dedup_capacity: config.dedup_capacity,
                dedup_age: config.dedup_age,
            },
            [rng.gen(), rng.gen(), rng.gen(), rng.gen()],
            now,
        );
        Core {
            rng,
            links: Links::new(config.close_linger),
            router,
            hosts: HostCache::new(config.host_cache_capacity),
            pong_cache: PongCache::new(config.pong_cache_fresh),
            dialing: Dialing::default(),
            searches: Searches::default(),
            push_guard: push_guard::PushGuard::default(),
            transfers: transfers::Transfers::new({
                let mut t = config.transfers.clone();
                t.firewalled = config.firewalled;
                t.user_agent = config.user_agent.clone();
                t.own_addr = Some(config.listen_addr);
                t
            }),
            shares: LocalShares {
                library: Arc::new(Library::empty()),
                qrt: None,
                qrp_sent: 0,
                uploads_busy: false,
                have_uploaded: false,
                hits_by_file: std::collections::HashMap::new(),
            },
            pings_from_cache: 0,
            next_tick: now,
            shutting_down: false,
            inflate_scratch: Vec::new(),
            udp: udp::Udp::default(),
            proxies: proxy::Proxies::default(),
            bootstrap: bootstrap::Bootstrap::new(config.bootstrap.clone(), config.default_caches),
            napster: napster::Napster::new(config.napster.clone()),
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
        if self.links.contains(id) {
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
            self.dialing.connected(&peer);
            conn.write_raw(&self.connect_block(peer));
        }
        self.links.insert(conn);
        if direction == Direction::Outgoing {
            self.links.want_write(id);
        }
    }

    /// An outgoing connect failed (`error` says why): back off that host, and
    /// tell the user when they asked for this connection.
    pub fn on_connect_failed(&mut self, addr: SocketAddr, error: &str, now: Instant) {
        self.hosts.failed(&addr, now);
        if self.dialing.failed(&addr) {
            self.links.event(CoreEvent::ConnectFailed {
                addr,
                reason: error.to_string(),
            });
        }
    }

    /// Bytes read from connection `id`.
    pub fn on_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        if self.bootstrap.owns(id) {
            self.cache_bytes(id, bytes);
            return;
        }
        if self.napster.owns_session(id) {
            self.index_bytes(id, bytes, now);
            return;
        }
        if self.napster.downloads.owns(id) {
            self.napster_data_bytes(id, bytes, now);
            return;
        }
        if self.transfers.owns(id) {
            self.transfers.on_bytes(id, bytes, now);
            self.pump_transfers(now);
            return;
        }
        let Some(conn) = self.links.get_mut(id) else {
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
                let unfinished_head = self.links.get(id).is_some_and(|c| {
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
        if self.bootstrap.owns(id) {
            self.cache_closed(id, now);
            return;
        }
        if self.napster.owns_session(id) {
            self.index_closed(id, "closed by the server", now);
            return;
        }
        if self.napster.downloads.owns(id) {
            self.napster_data_closed(id);
            return;
        }
        if self.transfers.owns(id) {
            self.transfers.on_closed(id, now);
            self.pump_transfers(now);
            return;
        }
        if let Some(conn) = self.links.get(id) {
            if conn.direction == Direction::Outgoing && !conn.is_established() && !conn.is_closing()
            {
                // Closed during the handshake (gtk-gnutella does this to 0.4).
                let addr = conn.peer;
                self.hosts.failed(&addr, now);
            }
            self.forget_link(id, "closed by peer");
        }
    }

    /// Housekeeping: handshake timeouts, keep-alive, idle links, lingering
    /// closes, table ageing, outgoing connection upkeep.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.maintain_index(now);
        let advertised = SocketAddr::new(
            std::net::IpAddr::V4(self.advertised_ip()),
            self.config.listen_addr.port(),
        );
        self.transfers.set_own_addr(advertised);
        self.refresh_query_routes(now);
        for id in self.links.ids() {
            self.tick_link(id, now);
        }
        self.dialing.expire(now);
        self.router.tick(now);
        self.pong_cache.expire(now, Duration::from_secs(60));
        if !self.shutting_down {
            self.maintain_outgoing(now);
            self.maintain_bootstrap(now);
            self.transfers.tick(now);
            self.pump_transfers(now);
        }
    }

    /// One link's timers: linger, keep-alive, silence, handshake deadline.
    fn tick_link(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.links.get(id) else {
            return;
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
                if quiet_in >= self.config.idle_timeout || unanswered >= self.config.idle_timeout {
                    self.bye_and_close(id, 406, "No reply to alive pings", now);
                    return;
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
                        .links
                        .get_mut(id)
                        .is_some_and(|c| c.release_idle_deflater());
                    if flushed {
                        self.links.want_write(id);
                    }
                }
            }
            _ => {
                if now.saturating_duration_since(conn.created) >= self.config.handshake_timeout {
                    let addr = conn.peer;
                    if conn.direction == Direction::Outgoing {
                        self.hosts.failed(&addr, now);
                    }
                    self.drop_conn(id, "handshake timeout", now);
                }
            }
        }
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    /// The next action for the event loop.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.links.poll_action()
    }

    /// Bytes waiting to be written on `id` (empty when none).
    pub fn output(&mut self, id: ConnId) -> &[u8] {
        if self.bootstrap.owns(id) {
            return self.bootstrap.output(id);
        }
        if self.napster.owns_session(id) {
            return self.index_output(id);
        }
        if self.napster.downloads.owns(id) {
            return self.napster_data_output(id);
        }
        if self.transfers.owns(id) {
            return self.transfers.output(id);
        }
        self.links.output(id)
    }

    /// `n` bytes of [`Core::output`] were written.
    pub fn consume_output(&mut self, id: ConnId, n: usize, now: Instant) {
        if self.bootstrap.owns(id) {
            self.bootstrap.consume_output(id, n);
            return;
        }
        if self.napster.owns_session(id) {
            self.index_consume(id, n);
            return;
        }
        if self.napster.downloads.owns(id) {
            self.napster_data_consume(id, n);
            return;
        }
        if self.transfers.owns(id) {
            self.transfers.consume_output(id, n);
            return;
        }
        if self.links.consume_output(id, n, now).is_some() {
            self.router.link_closed(id);
        }
    }

    // ----- queries ------------------------------------------------------

    /// Results of one search, or of all remembered searches.
    pub fn results(&self, search: Option<SearchId>) -> Vec<SearchResult> {
        self.searches.results(search)
    }

    /// The searches remembered: id and text.
    pub fn searches(&self) -> Vec<(SearchId, String)> {
        self.searches.list()
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.shares.library
    }

    /// How many of our QueryHits named the shared file with this index.
    pub fn hits_for_file(&self, index: u32) -> u64 {
        self.shares.hits_by_file.get(&index).copied().unwrap_or(0)
    }

    /// The host cache (for saving with [`HostCache::to_bytes`]).
    pub fn host_cache(&self) -> &HostCache {
        &self.hosts
    }

    /// Replaces the host cache (loaded from the data directory at start).
    pub fn set_host_cache(&mut self, hosts: HostCache) {
        self.hosts = hosts;
    }

    pub fn peers(&self, now: Instant) -> Vec<PeerInfo> {
        let mut list: Vec<PeerInfo> = self.links.iter().map(|c| peer_info(c, now)).collect();
        list.sort_by_key(|p| p.id);
        list
    }

    pub fn stats(&self) -> Stats {
        let routing = self.router.stats();
        Stats {
            received: routing.received,
            forwarded: routing.forwarded,
            originated: routing.originated,
            dropped: routing.dropped,
            drops_by_reason: routing.drops.to_map(),
            pings_answered_from_cache: self.pings_from_cache,
            qrp_sent: self.shares.qrp_sent,
            ping_table: routing.ping_table,
            query_table: routing.query_table,
            push_table: routing.push_table,
            push_routes: routing.push_routes,
            routing_memory_bytes: routing.memory_bytes,
            host_cache: self.hosts.len(),
            pong_cache: self.pong_cache.len(),
            connections: self.links.len(),
            established: self.links.established().len(),
            searches: self.searches.len(),
        }
    }

    /// The descriptor counters alone: cheap enough to read after every step
    /// of a large simulation (`stats` also sizes tables and names drops).
    pub fn counters(&self) -> Counters {
        self.router.counters()
    }

    /// A drop counter (for tests and benches).
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.router.drop_count(reason)
    }

    /// Established links, in the order they came up.
    pub fn established_ids(&self) -> &[ConnId] {
        self.links.established()
    }

    /// Whether a link with this id exists (in any phase).
    pub fn has_link(&self, id: ConnId) -> bool {
        self.links.contains(id)
    }

    // ----- small shared helpers ------------------------------------------

    /// A fresh descriptor id in the modern shape (PROTOCOL-NOTES §1).
    fn new_descriptor_id(&mut self) -> [u8; 16] {
        hazel_protocol::header::DescriptorId::modern(self.rng.gen()).0
    }

    /// Tells the event loop to close `id` and forgets it.
    fn close_now(&mut self, id: ConnId, reason: &str) {
        if self.links.close_now(id, reason).is_some() {
            self.router.link_closed(id);
        }
    }

    /// Forgets `id` (its socket is gone).
    fn forget_link(&mut self, id: ConnId, reason: &str) {
        if self.links.remove(id, reason).is_some() {
            self.router.link_closed(id);
        }
    }

    /// Our IP for Pongs, hits and Pushes: the listen address, or what peers
    /// told us (`Remote-IP`) when listening on 0.0.0.0.
    fn advertised_ip(&self) -> Ipv4Addr {
        match self.config.listen_addr.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_unspecified() => ip,
            std::net::IpAddr::V4(_) => self.dialing.external_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        }
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

/// Lower-case hex, as servent ids and GUIDs are shown.
fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}
