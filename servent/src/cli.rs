//! The `hazel` command line: running a servent, or `hazel ctl` to talk to a
//! running one through its control socket.

use crate::config::{Config, Limits, ProtocolVersion};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Hazel, a Gnutella servent.
#[derive(Debug, Parser)]
#[command(name = "hazel", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<SubCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum SubCommand {
    /// Send one command to a running servent (through its control socket) and print its reply.
    Ctl(CtlArgs),
}

/// Options of a running servent.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// No terminal: read commands from stdin and from DATA-DIR/control.sock.
    #[arg(long)]
    pub headless: bool,
    /// Line mode instead of the full-screen terminal: a prompt, replies and
    /// events as lines (what `hazel` does anyway when stdout is not a terminal).
    #[arg(long, conflicts_with = "headless")]
    pub line: bool,
    /// The playground: start, on 127.0.0.1 only, a hazel-index and a few
    /// servents sharing sample files, and join them (everything in a
    /// temporary directory removed on exit).
    #[arg(long, conflicts_with = "headless")]
    pub demo: bool,
    /// Keep the playground in DIR (created if missing, not removed on exit).
    #[arg(long, value_name = "DIR", requires = "demo")]
    pub demo_dir: Option<PathBuf>,
    /// Address and port to listen on (port 0 picks a free one; it is printed and
    /// written to DATA-DIR/port).
    #[arg(long, default_value = "0.0.0.0:6346", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// A directory to share (repeatable).
    #[arg(long = "share", value_name = "DIR")]
    pub shares: Vec<PathBuf>,
    /// Where the servent keeps its files (created if missing) [default: the
    /// platform's data directory, e.g. ~/.local/share/hazel].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A peer to connect to at start (repeatable).
    #[arg(long = "connect", value_name = "HOST:PORT")]
    pub connect: Vec<String>,
    /// Outgoing connections to keep up.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub peers: usize,
    /// Most connections accepted; beyond, 503 with X-Try.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_peers: usize,
    /// TTL of the queries and pings this servent originates (1..=7).
    #[arg(long, default_value_t = 7, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=7))]
    pub ttl: u8,
    /// Behind a firewall: Pongs carry port 0, QueryHits ask for a Push.
    #[arg(long)]
    pub firewalled: bool,
    /// Also share what symbolic links inside a shared folder point to outside
    /// it (by default only files whose real path is inside a share are shared).
    #[arg(long)]
    pub follow_links_out: bool,
    /// Where finished downloads go [default: DATA-DIR/downloads].
    #[arg(long, value_name = "DIR")]
    pub downloads: Option<PathBuf>,
    /// Sources one download fetches from at once.
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=16))]
    pub sources_per_download: u64,
    /// Seconds a download connection may go without a byte before its range
    /// goes to another source.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", help_heading = "Limits",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub transfer_stall_timeout: u64,
    /// A host cache to ask when there is no host to connect to: a UDP host
    /// cache as HOST:PORT, or a GWebCache as http://HOST[:PORT]/PATH
    /// (repeatable; asked before the ones shipped with Hazel).
    #[arg(long, value_name = "HOST:PORT|URL", value_parser = parse_cache)]
    pub bootstrap: Vec<crate::core::bootstrap::CacheSpec>,
    /// Do not ask the host caches shipped with Hazel (only --bootstrap ones).
    #[arg(long)]
    pub no_default_caches: bool,
    /// Handshake version used for outgoing connections.
    #[arg(long, default_value = "0.6", value_name = "0.4|0.6")]
    pub protocol: ProtocolVersion,
    /// Files uploaded at once; beyond, requests get 503 and QueryHits say busy.
    #[arg(long, default_value_t = 4, value_name = "N", help_heading = "Limits")]
    pub upload_slots: usize,
    /// Files uploaded at once to one client address.
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Limits")]
    pub upload_slots_per_ip: usize,
    /// Seconds an upload may go without the client reading a byte before it
    /// is cut and its slot freed.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", help_heading = "Limits",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_stall_timeout: u64,
    /// Seconds a client has to send a whole request head (HTTP GET/HEAD, GIV).
    #[arg(long, default_value_t = 20, value_name = "SECONDS", help_heading = "Limits",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub head_timeout: u64,
    /// An OpenNap (Napster) index server to log in to (repeatable; needs --nick).
    #[arg(long = "index", value_name = "HOST:PORT", help_heading = "Napster")]
    pub index: Vec<String>,
    /// The nick on index servers (registered with --password when free).
    #[arg(long, value_name = "NICK", help_heading = "Napster")]
    pub nick: Option<String>,
    /// The password of the nick.
    #[arg(
        long,
        value_name = "PASSWORD",
        help_heading = "Napster",
        requires = "nick"
    )]
    pub password: Option<String>,
    /// The Napster data port other Napster clients download from [default:
    /// a second free port, printed at start].
    #[arg(
        long,
        default_value_t = 0,
        hide_default_value = true,
        value_name = "PORT",
        help_heading = "Napster"
    )]
    pub napster_port: u16,
    /// Log level (error, warn, info, debug, trace), or an env_logger filter.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
}

/// Options of `hazel ctl`.
#[derive(Debug, Args, Clone)]
pub struct CtlArgs {
    /// The running servent's data directory (its control socket is there)
    /// [default: the platform's data directory, as for the servent].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the reply as one line of JSON.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
    /// The command and its arguments (see `help`); `--json` may also follow it.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub words: Vec<String>,
}

/// The data directory used when `--data-dir` is not given: the platform's
/// (XDG on Linux: `$XDG_DATA_HOME/hazel` or `~/.local/share/hazel`).
pub fn default_data_dir() -> Result<PathBuf, String> {
    directories::ProjectDirs::from("", "", "hazel")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .ok_or_else(|| "no home directory to keep data in: give one with --data-dir DIR".into())
}

impl CtlArgs {
    /// `--data-dir`, or the default one.
    pub fn data_dir(&self) -> Result<PathBuf, String> {
        self.data_dir.clone().map_or_else(default_data_dir, Ok)
    }

    /// The command line to send, and whether JSON was asked for anywhere on the line.
    pub fn command_line(&self) -> (String, bool) {
        let mut json = self.json;
        let mut words = Vec::with_capacity(self.words.len());
        for word in &self.words {
            if word == "--json" {
                json = true;
            } else {
                words.push(word.as_str());
            }
        }
        (words.join(" "), json)
    }
}

impl RunArgs {
    /// Turns the options into a [`Config`], resolving `--connect` host names.
    pub fn to_config(&self) -> Result<Config, String> {
        let connect = resolve_all(&self.connect, "--connect")?;
        let index = resolve_all(&self.index, "--index")?;
        if !index.is_empty() && self.nick.is_none() {
            return Err("--index needs --nick NICK (the name to log in with)".to_string());
        }
        if self.max_peers == 0 {
            return Err("--max-peers must be at least 1".to_string());
        }
        for share in &self.shares {
            match std::fs::metadata(share) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(format!(
                        "--share {}: not a directory (share folders, not single files)",
                        share.display()
                    ))
                }
                Err(e) => return Err(format!("--share {}: {e}", share.display())),
            }
        }
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        Ok(Config {
            headless: self.headless,
            listen: self.listen,
            shares: self.shares.clone(),
            data_dir,
            connect,
            peers: self.peers,
            max_peers: self.max_peers,
            ttl: self.ttl,
            firewalled: self.firewalled,
            protocol: self.protocol,
            follow_links_out: self.follow_links_out,
            downloads: self.downloads.clone(),
            sources_per_download: self.sources_per_download as usize,
            transfer_stall: Duration::from_secs(self.transfer_stall_timeout),
            bootstrap: self.bootstrap.clone(),
            default_caches: !self.no_default_caches,
            index,
            nick: self.nick.clone(),
            password: self.password.clone(),
            napster_port: self.napster_port,
            limits: Limits {
                upload_slots: self.upload_slots,
                upload_slots_per_ip: self.upload_slots_per_ip,
                upload_stall: Duration::from_secs(self.upload_stall_timeout),
                head_timeout: Duration::from_secs(self.head_timeout),
            },
        })
    }
}

/// Each `HOST:PORT` resolved to its first IPv4 address (`flag` names the
/// option in errors).
fn resolve_all(targets: &[String], flag: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    targets
        .iter()
        .map(|target| {
            target
                .to_socket_addrs()
                .map_err(|e| format!("{flag} {target}: {e}"))?
                .find(SocketAddr::is_ipv4)
                .ok_or_else(|| format!("{flag} {target}: no IPv4 address"))
        })
        .collect()
}

/// `--bootstrap`'s value.
fn parse_cache(text: &str) -> Result<crate::core::bootstrap::CacheSpec, String> {
    crate::core::bootstrap::CacheSpec::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_command_line_parses() {
        let cli = Cli::try_parse_from([
            "hazel",
            "--headless",
            "--listen",
            "127.0.0.1:0",
            "--share",
            ".",
            "--share",
            "/",
            "--data-dir",
            "d",
            "--connect",
            "127.0.0.1:6346",
            "--connect",
            "127.0.0.1:6347",
            "--peers",
            "2",
            "--max-peers",
            "9",
            "--ttl",
            "3",
            "--firewalled",
            "--protocol",
            "0.4",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let config = cli.run.to_config().unwrap();
        assert!(config.headless && config.firewalled);
        assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.shares, vec![PathBuf::from("."), PathBuf::from("/")]);
        assert_eq!(config.connect.len(), 2);
        assert_eq!((config.peers, config.max_peers, config.ttl), (2, 9, 3));
        assert_eq!(config.protocol, ProtocolVersion::V04);
    }

    #[test]
    fn out_of_range_ttl_and_unknown_protocol_are_refused() {
        assert!(Cli::try_parse_from(["hazel", "--ttl", "8"]).is_err());
        assert!(Cli::try_parse_from(["hazel", "--ttl", "0"]).is_err());
        assert!(Cli::try_parse_from(["hazel", "--protocol", "0.5"]).is_err());
    }

    #[test]
    fn ctl_takes_the_command_words_and_json_anywhere() {
        let cli = Cli::try_parse_from([
            "hazel",
            "ctl",
            "--data-dir",
            "d",
            "search",
            "a",
            "b",
            "--json",
        ])
        .unwrap();
        let Some(SubCommand::Ctl(ctl)) = cli.command else {
            panic!("not ctl")
        };
        assert_eq!(ctl.data_dir, Some(PathBuf::from("d")));
        assert_eq!(ctl.command_line(), ("search a b".to_string(), true));

        let cli = Cli::try_parse_from(["hazel", "ctl", "--json", "peers"]).unwrap();
        let Some(SubCommand::Ctl(ctl)) = cli.command else {
            panic!("not ctl")
        };
        assert_eq!(ctl.command_line(), ("peers".to_string(), true));
    }
}
