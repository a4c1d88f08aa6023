//! The running servent's settings, as given on the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::core::ProtocolVersion;

/// Everything the servent needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub headless: bool,
    pub listen: SocketAddr,
    pub shares: Vec<PathBuf>,
    pub data_dir: PathBuf,
    pub connect: Vec<SocketAddr>,
    pub peers: usize,
    pub max_peers: usize,
    pub ttl: u8,
    pub firewalled: bool,
    pub protocol: ProtocolVersion,
    /// Share what links inside a share point to outside it.
    pub follow_links_out: bool,
    pub limits: Limits,
    /// Where finished downloads go (`None`: `DATA-DIR/downloads`).
    pub downloads: Option<PathBuf>,
    /// Sources one download fetches from at once.
    pub sources_per_download: usize,
    /// A download connection with no byte for this long is given up.
    pub transfer_stall: Duration,
    /// Host caches to ask first when nothing can be dialled.
    pub bootstrap: Vec<crate::core::bootstrap::CacheSpec>,
    /// Also ask the host caches shipped with the program.
    pub default_caches: bool,
    /// OpenNap servers to log in to at start.
    pub index: Vec<SocketAddr>,
    /// The nick (and password) on index servers.
    pub nick: Option<String>,
    pub password: Option<String>,
    /// The Napster data port (0: a free one).
    pub napster_port: u16,
}

/// What peers and clients may hold, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// File bodies sent at once.
    pub upload_slots: usize,
    /// File bodies sent at once to one client address.
    pub upload_slots_per_ip: usize,
    /// A reply of which the client reads nothing for this long is cut.
    pub upload_stall: Duration,
    /// A request head (HTTP, GIV) must arrive whole within this time.
    pub head_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            upload_slots: 4,
            upload_slots_per_ip: 2,
            upload_stall: Duration::from_secs(60),
            head_timeout: Duration::from_secs(20),
        }
    }
}
