//! The server's settings, and the command line that produces them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::store::PasswordCost;

/// Whether new-user login (6) may register nicks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    /// 6 registers any free, valid nick.
    Open,
    /// 6 is refused; only existing accounts and guests can log in.
    Closed,
}

/// Everything the server needs to know, with opennap-ng-like defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub max_connections: usize,
    pub max_results: usize,
    pub max_shares: usize,
    pub motd: Vec<String>,
    pub registration: Registration,
    pub server_name: String,
    /// 0 means unlimited.
    pub searches_per_minute: u32,
    /// 0 means unlimited.
    pub clones_per_ip: usize,
    pub login_timeout: Duration,
    pub max_command_length: usize,
    pub output_queue_cap: usize,
    pub stats_interval: Duration,
    /// Frames a client may send per second before it is disconnected as a
    /// flooder; 0 means unlimited.
    pub max_messages_per_second: u32,
    pub password_cost: PasswordCost,
    /// Nicks made Admin when they register (or at startup if registered).
    pub admins: Vec<String>,
    /// How long a direct browse (640) waits for the browsed client's 641
    /// before the requester is told (642) to fall back to a server browse.
    pub direct_browse_timeout: Duration,
}

impl Config {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            max_connections: 1000,
            max_results: 100,
            max_shares: 5000,
            motd: vec!["Welcome to hazel-index.".to_string()],
            registration: Registration::Open,
            server_name: "hazel-index".to_string(),
            searches_per_minute: 60,
            clones_per_ip: 3,
            login_timeout: Duration::from_secs(60),
            max_command_length: 2048,
            output_queue_cap: 1 << 20,
            stats_interval: Duration::from_secs(60),
            max_messages_per_second: 2000,
            password_cost: PasswordCost::default(),
            admins: Vec::new(),
            direct_browse_timeout: Duration::from_secs(10),
        }
    }
}

/// `hazel-index`: a headless Napster-style (OpenNap protocol) index server.
///
/// Clients log in, share their file lists, search, and negotiate downloads
/// with each other; files move directly between clients. Accounts and bans
/// live in `<data-dir>/index.db`; file lists are re-sent by clients on login.
/// SIGTERM or SIGINT shuts the server down gracefully.
#[derive(Debug, Parser)]
#[command(name = "hazel-index", version)]
pub struct Cli {
    /// Address and port clients connect to (e.g. 0.0.0.0:8888).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Directory for the account database (index.db); created if missing.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Most simultaneous client connections; more are refused with an error.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_connections: usize,
    /// Most results one search returns (a client's MAX_RESULTS is capped to this).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_results: usize,
    /// Most files one user may share; further shares get a 404 error.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_shares: usize,
    /// Message of the day sent (621) after login; `\n` separates lines.
    #[arg(long, value_name = "TEXT", conflicts_with = "motd_file")]
    pub motd: Option<String>,
    /// File whose lines are sent as the message of the day.
    #[arg(long, value_name = "FILE")]
    pub motd_file: Option<PathBuf>,
    /// Whether new-user login (6) registers nicks.
    #[arg(long, value_enum, default_value_t = Registration::Open)]
    pub registration: Registration,
    /// Serve Prometheus text metrics over HTTP on this address.
    #[arg(long, value_name = "ADDR:PORT")]
    pub stats_listen: Option<SocketAddr>,
    /// Log level: error, warn, info, debug or trace (RUST_LOG also works).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// Searches one client may make per minute; more get a 404 error, and a
    /// client far over the limit is disconnected. 0: unlimited (benchmarks).
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub searches_per_minute: u32,
    /// Most simultaneous connections from one IP address. 0: unlimited.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub clones_per_ip: usize,
    /// Seconds a connection may take to log in before it is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub login_timeout: u64,
    /// Longest payload accepted in one message, in bytes; a longer one
    /// disconnects the client.
    #[arg(long, value_name = "BYTES", default_value_t = 2048)]
    pub max_command_length: usize,
    /// Most bytes queued for one client; a client that stops reading and
    /// exceeds it is disconnected.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub output_queue_cap: usize,
    /// Seconds between the server stats (214) sent to every client.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub stats_interval: u64,
    /// Messages one client may send per second before it is disconnected.
    /// 0: unlimited.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub max_messages_per_second: u32,
    /// Nick given Admin level (repeatable): at registration, or at startup if
    /// it is registered already.
    #[arg(long = "admin", value_name = "NICK")]
    pub admins: Vec<String>,
    /// Memory cost of the argon2id password hash, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = 19 * 1024)]
    pub password_memory_kib: u32,
    /// Iterations of the argon2id password hash.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub password_iterations: u32,
    /// Server name shown in messages.
    #[arg(long, value_name = "NAME", default_value = "hazel-index")]
    pub server_name: String,
    /// Seconds a direct browse (640) waits for the browsed client to accept
    /// before the requester is told to browse through the server instead.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub direct_browse_timeout: u64,
}

impl Cli {
    /// Builds the configuration; fails only if the MOTD file cannot be read
    /// (the error names the file).
    pub fn to_config(&self) -> std::io::Result<Config> {
        let mut config = Config::new(self.data_dir.clone());
        config.max_connections = self.max_connections;
        config.max_results = self.max_results;
        config.max_shares = self.max_shares;
        if let Some(text) = &self.motd {
            config.motd = text.split("\\n").map(str::to_string).collect();
        } else if let Some(path) = &self.motd_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot read the MOTD file {}: {e}; check --motd-file",
                        path.display()
                    ),
                )
            })?;
            config.motd = text.lines().map(str::to_string).collect();
        }
        config.registration = self.registration;
        config.searches_per_minute = self.searches_per_minute;
        config.clones_per_ip = self.clones_per_ip;
        config.login_timeout = Duration::from_secs(self.login_timeout);
        config.max_command_length = self.max_command_length.min(u16::MAX as usize);
        config.output_queue_cap = self.output_queue_cap;
        config.stats_interval = Duration::from_secs(self.stats_interval.max(1));
        config.max_messages_per_second = self.max_messages_per_second;
        config.admins = self.admins.clone();
        config.password_cost = PasswordCost {
            memory_kib: self.password_memory_kib,
            iterations: self.password_iterations,
        };
        config.server_name = self.server_name.clone();
        config.direct_browse_timeout = Duration::from_secs(self.direct_browse_timeout.max(1));
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_maps_onto_config() {
        let cli = Cli::try_parse_from([
            "hazel-index",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "d",
            "--max-results",
            "7",
            "--motd",
            "one\\ntwo",
            "--registration",
            "closed",
            "--admin",
            "root",
        ])
        .unwrap();
        let config = cli.to_config().unwrap();
        assert_eq!(config.max_results, 7);
        assert_eq!(config.motd, vec!["one", "two"]);
        assert_eq!(config.registration, Registration::Closed);
        assert_eq!(config.admins, vec!["root"]);
    }

    #[test]
    fn motd_and_motd_file_conflict() {
        let parsed = Cli::try_parse_from([
            "hazel-index",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "d",
            "--motd",
            "x",
            "--motd-file",
            "f",
        ]);
        assert!(parsed.is_err());
    }
}
