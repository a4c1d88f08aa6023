//! hazel-index: a headless index server speaking the OpenNap (Napster) protocol.
//!
//! Map of the crate (data flows top to bottom):
//! - [`reactor`]: the only module that touches sockets (mio): accepts,
//!   reads frames, writes replies, enforces the output queue cap; serves
//!   `--stats-listen`; runs the password worker and the store writer
//!   threads the server's slow work goes to.
//! - Frames and every message, read and written, come from
//!   `hazel_protocol::napster` (and the metrics answer's HTTP head from
//!   `hazel_protocol::http`): nothing here encodes a wire format by hand.
//! - [`server`]: what every client message does (frames in; frames,
//!   closes, password jobs and store writes out), one file per job:
//!   `outbox`, `jobs`, `login`, `sharing`, `transfers`, `browse`, `admin`,
//!   `info`, `pings`, `ticks` (and `tests`); [`session`]: one connection's
//!   state and limits.
//! - [`catalog`]: every online user's shared files (the [`index`] keyed by
//!   connection, with the share limit and duplicate check);
//!   [`index`]: the inverted index and opennap's tokenization.
//! - [`store`]: accounts (argon2id hashes) and bans in `<data-dir>/index.db`:
//!   the event loop only reads it (microseconds); writes are committed by
//!   the store writer thread.
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
use std::path::Path;

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
    prepare_data_dir(&config.data_dir)?;
    let open = || {
        store::Store::open(&config.data_dir, config.password_cost).map_err(|e| {
            io::Error::other(format!(
                "cannot open the account database {}: {e}; the data directory must be writable by this user (see --data-dir)",
                config.data_dir.join(store::DATABASE_FILE).display()
            ))
        })
    };
    // Two connections: the event loop reads, the store writer commits.
    let (store, writer) = (open()?, open()?);
    log::info!("hazel-index listening on {}", listener.local_addr()?);
    if let Some(stats) = &stats_listener {
        log::info!("metrics served on {}", stats.local_addr()?);
    }
    let server = server::Server::new(config, store, std::time::Instant::now());
    reactor::run(listener, stats_listener, server, writer, shutdown)
}

/// Creates the data directory if needed; the error names it and says what
/// to do.
fn prepare_data_dir(dir: &Path) -> io::Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "the data directory {} exists and is not a directory; give --data-dir a directory (it is created if missing)",
                dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot create the data directory {}: {e}; create it, or give --data-dir a directory this user can write",
                dir.display()
            ),
        )
    })
}
