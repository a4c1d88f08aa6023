//! hazel-index: a headless index server speaking the OpenNap (Napster) protocol.
//!
//! Map of the crate (data flows top to bottom):
//! - [`reactor`]: the only module that touches sockets (mio): accepts,
//!   reads frames, writes replies, enforces the output queue cap; also
//!   serves `--stats-listen`.
//! - Frames, typed messages and the payload fields of the few messages
//!   without a typed form all come from `hazel_protocol::napster`.
//! - [`server`]: what every client message does (pure: frames in, frames
//!   and closes out); [`session`]: one connection's state and limits.
//! - [`catalog`]: every online user's shared files (the [`index`] keyed by
//!   connection, with the share limit and duplicate check);
//!   [`index`]: the inverted index and opennap's tokenization.
//! - [`store`]: accounts (argon2id hashes) and bans in `<data-dir>/index.db`.
//! - [`metrics`]: Prometheus text; [`config`]: settings and the command line.
//!
//! [`run`] takes an already-bound listener, so tests bind port 0 and run
//! the real server in-process.

pub mod catalog;
pub mod config;
pub mod index;
pub mod metrics;
pub mod reactor;
pub mod server;
pub mod session;
pub mod store;

use std::io;
use std::net::TcpListener;

pub use config::Config;
pub use reactor::Shutdown;

/// Runs the index server on an already-bound `listener` (and the metrics
/// endpoint on `stats_listener`) until `shutdown` is triggered. Opens or
/// creates `<data-dir>/index.db`.
pub fn run(
    listener: TcpListener,
    stats_listener: Option<TcpListener>,
    config: Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store = store::Store::open(&config.data_dir, config.password_cost)
        .map_err(|e| io::Error::other(format!("opening the account database: {e}")))?;
    log::info!("hazel-index listening on {}", listener.local_addr()?);
    if let Some(stats) = &stats_listener {
        log::info!("metrics served on {}", stats.local_addr()?);
    }
    let server = server::Server::new(config, store, std::time::Instant::now());
    reactor::run(listener, stats_listener, server, shutdown)
}
