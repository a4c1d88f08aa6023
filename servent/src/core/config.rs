//! What the core needs to know about itself: identity, addresses, limits and
//! timers. [`CoreConfig::new`] gives the defaults a servent runs with.

use std::net::SocketAddr;
use std::time::Duration;

use super::ids::ProtocolVersion;
use super::transfers::TransfersConfig;

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
    /// The download engine's settings.
    pub transfers: TransfersConfig,
    /// Host caches given by the user (`--bootstrap`), asked first.
    pub bootstrap: Vec<super::bootstrap::CacheSpec>,
    /// Also ask the host caches shipped with the program.
    pub default_caches: bool,
    /// Who we are on OpenNap servers (`--nick`); None: no index sessions.
    pub napster: Option<super::napster::session::Identity>,
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
            transfers: TransfersConfig::default(),
            bootstrap: Vec::new(),
            default_caches: false,
            napster: None,
        }
    }
}
