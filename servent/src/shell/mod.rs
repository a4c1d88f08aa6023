//! The servent's command language, shared by the interactive terminal, headless
//! stdin and the control socket.
//!
//! A line of text parses into a [`Command`]; the reactor answers with a
//! [`Reply`] (a kind plus a JSON value), which [`render_text`] turns into
//! human-readable lines or which is sent as JSON as it is. Keeping the reply
//! as data means `hazel ctl --json` and the terminal print the same facts.

pub mod line;
mod render;
pub mod terminal;
pub mod tui;

pub use render::render_text;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Anything that can answer a parsed command (the running servent).
pub trait Requests: Clone + Send + 'static {
    /// Hands `command` to the servent and waits up to `timeout` for its answer.
    fn request(&self, command: Command, timeout: Duration) -> Response;
}

/// Parses one line and, when it is a command, asks the servent; one response either way.
pub fn answer_line<R: Requests>(requests: &R, line: &str, timeout: Duration) -> Response {
    match Command::parse(line)
        .map_err(|e| e.to_string())
        .and_then(Command::resolve)
    {
        Ok(command) => requests.request(command, timeout),
        Err(e) => Response::error(e),
    }
}

/// `IP:PORT`, or `NAME:PORT` with a plausible host name.
fn parse_target(target: &str) -> Option<Command> {
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Some(Command::Connect(addr));
    }
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let plausible = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    plausible.then(|| Command::ConnectHost(host.to_string(), port))
}

/// One thing a user can ask the running servent to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open an outgoing Gnutella connection.
    Connect(SocketAddr),
    /// `connect NAME:PORT` with a host name: resolved (off the event loop) by
    /// [`Command::resolve`] into `Connect` before the servent sees it.
    ConnectHost(String, u16),
    /// Close the connection with this id (as shown by `peers`).
    Disconnect(u64),
    /// List the connections.
    Peers,
    /// Send a Query (and a 200 to every index) for these keywords; the
    /// reply carries the search id.
    Search(SearchRequest),
    /// `index connect HOST:PORT NICK [PASSWORD]`, `index disconnect
    /// [HOST:PORT]`, `index status`.
    Index(IndexCommand),
    /// `browse NICK`: a user's files, from every index logged in to.
    Browse(String),
    /// Results of one search, or of every search.
    Results(Option<u64>),
    /// The shared library: file count, size, hashing progress, files (with
    /// a magnet link each when asked).
    Shares {
        magnets: bool,
    },
    /// Download: results by id, a `urn:sha1:` (with an optional name), or a
    /// magnet link.
    Get(GetTarget),
    /// A magnet link for a result.
    Magnet(u64),
    /// Downloads and uploads.
    Transfers,
    Pause(u64),
    Resume(u64),
    /// Stop a download and remove its partial file.
    Cancel(u64),
    /// Restart a failed download with every source forgiven.
    Retry(u64),
    /// Rescan the shared directories.
    Rescan,
    /// Routing counters: received / forwarded / dropped by type and reason.
    Stats,
    /// The host cache.
    Hosts,
    /// The list of commands.
    Help,
    /// Say Bye to every peer, save the host cache and exit.
    Quit,
}

/// Where a search goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Networks {
    #[default]
    Both,
    /// `--index`: only the index servers.
    Index,
    /// `--gnutella`: only the overlay.
    Gnutella,
}

/// `search [--index|--gnutella] [--max N] [--min-bitrate N] [--exclude WORD]... WORDS...`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchRequest {
    pub words: Vec<String>,
    pub networks: Networks,
    pub index: crate::core::napster::IndexSearchOptions,
}

impl SearchRequest {
    /// A search of both networks for `words`.
    pub fn words(words: &[&str]) -> SearchRequest {
        SearchRequest {
            words: words.iter().map(|w| w.to_string()).collect(),
            ..SearchRequest::default()
        }
    }
}

/// The `index` commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexCommand {
    Connect {
        addr: SocketAddr,
        nick: String,
        password: Option<String>,
    },
    Disconnect(Option<SocketAddr>),
    Status,
}

const SEARCH_USAGE: &str = "search [--index|--gnutella] [--max N] [--min-bitrate KBPS] \
                            [--exclude WORD]... WORDS...";
const INDEX_USAGE: &str =
    "index connect HOST:PORT NICK [PASSWORD] | index disconnect [HOST:PORT] | index status";

/// `search`'s arguments.
fn parse_search(rest: &[&str]) -> Result<SearchRequest, ParseError> {
    let mut request = SearchRequest::default();
    let mut words = rest.iter();
    let number = |w: Option<&&str>| -> Result<u32, ParseError> {
        w.and_then(|w| w.parse().ok())
            .ok_or(ParseError::Usage(SEARCH_USAGE))
    };
    while let Some(word) = words.next() {
        match *word {
            "--index" => request.networks = Networks::Index,
            "--gnutella" => request.networks = Networks::Gnutella,
            "--max" => request.index.max_results = Some(number(words.next())?),
            "--min-bitrate" => request.index.min_bitrate = Some(number(words.next())?),
            "--exclude" => match words.next() {
                Some(w) if !w.starts_with("--") && !w.contains('"') => {
                    request.index.exclude.push(w.to_string())
                }
                _ => return Err(ParseError::Usage(SEARCH_USAGE)),
            },
            w if w.starts_with("--") => return Err(ParseError::Usage(SEARCH_USAGE)),
            w => request.words.push(w.to_string()),
        }
    }
    if request.words.is_empty() || request.words.iter().any(|w| w.contains('"')) {
        return Err(ParseError::Usage(SEARCH_USAGE));
    }
    Ok(request)
}

/// `index`'s arguments.
fn parse_index(rest: &[&str]) -> Result<IndexCommand, ParseError> {
    let addr = |w: &str| {
        w.parse::<SocketAddr>()
            .map_err(|_| ParseError::Usage(INDEX_USAGE))
    };
    let nick_ok = |n: &str| !n.is_empty() && n.len() <= 64 && !n.contains('"');
    match rest {
        ["connect", target, nick] if nick_ok(nick) => Ok(IndexCommand::Connect {
            addr: addr(target)?,
            nick: nick.to_string(),
            password: None,
        }),
        ["connect", target, nick, password] if nick_ok(nick) => Ok(IndexCommand::Connect {
            addr: addr(target)?,
            nick: nick.to_string(),
            password: Some(password.to_string()),
        }),
        ["disconnect"] => Ok(IndexCommand::Disconnect(None)),
        ["disconnect", target] => Ok(IndexCommand::Disconnect(Some(addr(target)?))),
        ["status"] => Ok(IndexCommand::Status),
        _ => Err(ParseError::Usage(INDEX_USAGE)),
    }
}

/// What `get` downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetTarget {
    /// Results by id (as `results` shows them).
    Results(Vec<u64>),
    /// A `urn:sha1:` found by a URN query, named as given.
    Urn {
        sha1: [u8; 20],
        name: Option<String>,
    },
    /// A magnet link.
    Magnet(hazel_protocol::magnet::Magnet),
}

/// Why a line is not a command. Shown to the user as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but whitespace.
    Empty,
    /// The first word is not a command.
    Unknown(String),
    /// A known command with wrong or missing arguments; the text says what it expects.
    Usage(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => write!(f, "empty command (try `help`)"),
            ParseError::Unknown(word) => write!(f, "unknown command `{word}` (try `help`)"),
            ParseError::Usage(usage) => write!(f, "usage: {usage}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// One line per command, shown by `help`.
pub const HELP: &[(&str, &str)] = &[
    ("connect HOST:PORT", "open a Gnutella connection"),
    ("disconnect ID", "close the connection with this id"),
    (
        "peers",
        "connections: id, address, direction, protocol, agent, age, traffic, queue",
    ),
    (
        "search [--index|--gnutella] [--max N] [--min-bitrate KBPS] [--exclude WORD] WORDS...",
        "search the overlay and every index logged in to; prints the search id",
    ),
    (
        "index connect HOST:PORT NICK [PASSWORD] | index disconnect [HOST:PORT] | index status",
        "log in to an OpenNap index, leave it, or show the sessions (MOTD, server stats)",
    ),
    (
        "browse NICK",
        "a Napster user's files, as the results of a search",
    ),
    ("results [SEARCH-ID]", "results of one search, or of all"),
    (
        "shares [--magnet]",
        "the shared library (with a magnet link per file)",
    ),
    (
        "get RESULT-ID... | get urn:sha1:HASH [NAME] | get MAGNET",
        "download (alias: download); `transfers` follows it",
    ),
    ("magnet RESULT-ID", "a magnet link for a result"),
    (
        "transfers",
        "downloads and uploads: size, done, rate, ETA, sources, state, last error",
    ),
    ("pause ID / resume ID", "pause or resume a download"),
    ("cancel ID", "stop a download and remove its partial file"),
    ("retry ID", "restart a failed download"),
    ("rescan", "rescan the shared directories"),
    (
        "stats",
        "descriptors received/forwarded/dropped, table sizes, host cache",
    ),
    ("hosts", "the host cache"),
    ("help", "this list"),
    ("quit", "say Bye to peers, save the host cache, exit"),
];

/// Longest command line accepted, from any source (a line beyond it is an error).
pub const MAX_LINE: usize = 4096;

impl Command {
    /// Resolves `ConnectHost` to `Connect` (first IPv4 address; may block on
    /// DNS, so never call it on the event loop); other commands pass through.
    pub fn resolve(self) -> Result<Command, String> {
        match self {
            Command::ConnectHost(host, port) => {
                use std::net::ToSocketAddrs;
                (host.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .find(SocketAddr::is_ipv4)
                    .map(Command::Connect)
                    .ok_or_else(|| format!("{host} has no IPv4 address"))
            }
            other => Ok(other),
        }
    }

    /// Parses one command line. Words are separated by whitespace; command names
    /// are case-insensitive.
    pub fn parse(line: &str) -> Result<Command, ParseError> {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else {
            return Err(ParseError::Empty);
        };
        let rest: Vec<&str> = words.collect();
        let name = first.to_ascii_lowercase();
        let no_args = |cmd: Command, usage: &'static str| {
            if rest.is_empty() {
                Ok(cmd)
            } else {
                Err(ParseError::Usage(usage))
            }
        };
        match name.as_str() {
            "connect" => match rest.as_slice() {
                [target] => parse_target(target).ok_or(ParseError::Usage("connect HOST:PORT")),
                _ => Err(ParseError::Usage("connect HOST:PORT")),
            },
            "disconnect" => match rest.as_slice() {
                [id] => id
                    .parse::<u64>()
                    .map(Command::Disconnect)
                    .map_err(|_| ParseError::Usage("disconnect ID")),
                _ => Err(ParseError::Usage("disconnect ID")),
            },
            "peers" => no_args(Command::Peers, "peers"),
            "search" => parse_search(&rest).map(Command::Search),
            "index" => parse_index(&rest).map(Command::Index),
            "browse" => match rest.as_slice() {
                [nick] if !nick.contains('"') => Ok(Command::Browse(nick.to_string())),
                _ => Err(ParseError::Usage("browse NICK")),
            },
            "results" => match rest.as_slice() {
                [] => Ok(Command::Results(None)),
                [id] => id
                    .parse::<u64>()
                    .map(|id| Command::Results(Some(id)))
                    .map_err(|_| ParseError::Usage("results [SEARCH-ID]")),
                _ => Err(ParseError::Usage("results [SEARCH-ID]")),
            },
            "shares" => match rest.as_slice() {
                [] => Ok(Command::Shares { magnets: false }),
                ["--magnet"] | ["--magnets"] => Ok(Command::Shares { magnets: true }),
                _ => Err(ParseError::Usage("shares [--magnet]")),
            },
            "get" | "download" => parse_get(&rest).map(Command::Get),
            "magnet" => one_id(&rest, "magnet RESULT-ID").map(Command::Magnet),
            "transfers" => no_args(Command::Transfers, "transfers"),
            "pause" => one_id(&rest, "pause DOWNLOAD-ID").map(Command::Pause),
            "resume" => one_id(&rest, "resume DOWNLOAD-ID").map(Command::Resume),
            "cancel" => one_id(&rest, "cancel DOWNLOAD-ID").map(Command::Cancel),
            "retry" => one_id(&rest, "retry DOWNLOAD-ID").map(Command::Retry),
            "rescan" => no_args(Command::Rescan, "rescan"),
            "stats" => no_args(Command::Stats, "stats"),
            "hosts" => no_args(Command::Hosts, "hosts"),
            "help" | "?" => Ok(Command::Help),
            "quit" | "exit" => no_args(Command::Quit, "quit"),
            _ => Err(ParseError::Unknown(first.chars().take(64).collect())),
        }
    }
}

/// The one id argument of a command.
fn one_id(rest: &[&str], usage: &'static str) -> Result<u64, ParseError> {
    match rest {
        [id] => id.parse().map_err(|_| ParseError::Usage(usage)),
        _ => Err(ParseError::Usage(usage)),
    }
}

const GET_USAGE: &str = "get RESULT-ID... | get urn:sha1:HASH [NAME] | get MAGNET";

/// `get`'s arguments: ids, a urn (and a name), or a magnet link.
fn parse_get(rest: &[&str]) -> Result<GetTarget, ParseError> {
    let Some(first) = rest.first() else {
        return Err(ParseError::Usage(GET_USAGE));
    };
    if first.len() >= 7 && first[..7].eq_ignore_ascii_case("magnet:") {
        if rest.len() != 1 {
            return Err(ParseError::Usage(GET_USAGE));
        }
        return hazel_protocol::magnet::Magnet::parse(first)
            .map(GetTarget::Magnet)
            .map_err(|_| ParseError::Usage("get magnet:?xt=urn:sha1:…"));
    }
    if first.len() >= 4 && first[..4].eq_ignore_ascii_case("urn:") {
        let sha1 = hazel_protocol::huge::Urn::parse(first.as_bytes())
            .sha1()
            .ok_or(ParseError::Usage(
                "get urn:sha1:HASH [NAME] (32 base32 characters)",
            ))?;
        let name = (rest.len() > 1).then(|| rest[1..].join(" "));
        return Ok(GetTarget::Urn { sha1, name });
    }
    let ids: Result<Vec<u64>, _> = rest.iter().map(|w| w.parse::<u64>()).collect();
    match ids {
        Ok(ids) if ids.len() <= 100 => Ok(GetTarget::Results(ids)),
        _ => Err(ParseError::Usage(GET_USAGE)),
    }
}

/// The answer to a command: what kind of answer, and its facts as JSON.
///
/// `kind` names the shape of `data` (`peers`, `stats`, `search`, ...), so a
/// reader of the JSON form knows what it got without guessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub kind: String,
    pub data: serde_json::Value,
}

impl Reply {
    /// A reply with structured data.
    pub fn new(kind: &str, data: serde_json::Value) -> Reply {
        Reply {
            kind: kind.to_string(),
            data,
        }
    }

    /// A reply that only says something happened.
    pub fn message(text: impl Into<String>) -> Reply {
        Reply::new("message", serde_json::Value::String(text.into()))
    }

    /// The `help` reply.
    pub fn help() -> Reply {
        let rows: Vec<serde_json::Value> = HELP
            .iter()
            .map(|(usage, what)| serde_json::json!({ "command": usage, "does": what }))
            .collect();
        Reply::new("help", serde_json::Value::Array(rows))
    }
}

/// One line on the control socket, answering one request line: either a reply or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply: Option<Reply>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl Response {
    pub fn ok(reply: Reply) -> Response {
        Response {
            ok: true,
            reply: Some(reply),
            error: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Response {
        // One line, whatever the cause said.
        let message: String = message.into().replace(['\n', '\r'], " ");
        Response {
            ok: false,
            reply: None,
            error: Some(message),
        }
    }

    /// The response as human-readable text (an error is one line starting `error:`).
    pub fn to_text(&self) -> String {
        match (&self.reply, &self.error) {
            (Some(reply), _) if self.ok => render_text(reply),
            (_, Some(error)) => format!("error: {error}"),
            _ => "error: empty response".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(
            Command::parse("connect 127.0.0.1:6346"),
            Ok(Command::Connect("127.0.0.1:6346".parse().unwrap()))
        );
        assert_eq!(
            Command::parse("  DISCONNECT 7 "),
            Ok(Command::Disconnect(7))
        );
        assert_eq!(
            Command::parse("connect gnutella.example:6346"),
            Ok(Command::ConnectHost("gnutella.example".into(), 6346))
        );
        assert_eq!(Command::parse("peers"), Ok(Command::Peers));
        assert_eq!(
            Command::parse("search free  music"),
            Ok(Command::Search(SearchRequest::words(&["free", "music"])))
        );
        assert_eq!(
            Command::parse("search --index --max 5 --min-bitrate 128 --exclude live jazz"),
            Ok(Command::Search(SearchRequest {
                words: vec!["jazz".into()],
                networks: Networks::Index,
                index: crate::core::napster::IndexSearchOptions {
                    max_results: Some(5),
                    min_bitrate: Some(128),
                    exclude: vec!["live".into()],
                },
            }))
        );
        assert_eq!(
            Command::parse("search --gnutella a"),
            Ok(Command::Search(SearchRequest {
                networks: Networks::Gnutella,
                ..SearchRequest::words(&["a"])
            }))
        );
        assert_eq!(
            Command::parse("index connect 127.0.0.1:8888 me secret"),
            Ok(Command::Index(IndexCommand::Connect {
                addr: "127.0.0.1:8888".parse().unwrap(),
                nick: "me".into(),
                password: Some("secret".into()),
            }))
        );
        assert_eq!(
            Command::parse("index disconnect"),
            Ok(Command::Index(IndexCommand::Disconnect(None)))
        );
        assert_eq!(
            Command::parse("index status"),
            Ok(Command::Index(IndexCommand::Status))
        );
        assert_eq!(
            Command::parse("browse lefty"),
            Ok(Command::Browse("lefty".into()))
        );
        assert_eq!(Command::parse("results"), Ok(Command::Results(None)));
        assert_eq!(Command::parse("results 3"), Ok(Command::Results(Some(3))));
        assert_eq!(
            Command::parse("shares"),
            Ok(Command::Shares { magnets: false })
        );
        assert_eq!(
            Command::parse("shares --magnet"),
            Ok(Command::Shares { magnets: true })
        );
        assert_eq!(
            Command::parse("get 3 4"),
            Ok(Command::Get(GetTarget::Results(vec![3, 4])))
        );
        assert_eq!(
            Command::parse("download 7"),
            Ok(Command::Get(GetTarget::Results(vec![7])))
        );
        assert!(matches!(
            Command::parse("get urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB Free Song.ogg"),
            Ok(Command::Get(GetTarget::Urn { name: Some(n), .. })) if n == "Free Song.ogg"
        ));
        assert!(matches!(
            Command::parse("get magnet:?xt=urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB&dn=a"),
            Ok(Command::Get(GetTarget::Magnet(_)))
        ));
        assert_eq!(Command::parse("magnet 5"), Ok(Command::Magnet(5)));
        assert_eq!(Command::parse("transfers"), Ok(Command::Transfers));
        assert_eq!(Command::parse("pause 1"), Ok(Command::Pause(1)));
        assert_eq!(Command::parse("resume 1"), Ok(Command::Resume(1)));
        assert_eq!(Command::parse("cancel 2"), Ok(Command::Cancel(2)));
        assert_eq!(Command::parse("retry 2"), Ok(Command::Retry(2)));
        assert_eq!(Command::parse("rescan"), Ok(Command::Rescan));
        assert_eq!(Command::parse("stats"), Ok(Command::Stats));
        assert_eq!(Command::parse("hosts"), Ok(Command::Hosts));
        assert_eq!(Command::parse("help"), Ok(Command::Help));
        assert_eq!(Command::parse("quit"), Ok(Command::Quit));
    }

    #[test]
    fn rejects_unknown_and_malformed_lines_with_one_line_errors() {
        let cases = [
            ("", ParseError::Empty),
            ("   ", ParseError::Empty),
            ("frobnicate 1", ParseError::Unknown("frobnicate".into())),
            ("connect", ParseError::Usage("connect HOST:PORT")),
            ("connect nowhere", ParseError::Usage("connect HOST:PORT")),
            (
                "connect 1.2.3.4:99999",
                ParseError::Usage("connect HOST:PORT"),
            ),
            (
                "connect bad/host:80",
                ParseError::Usage("connect HOST:PORT"),
            ),
            ("connect :80", ParseError::Usage("connect HOST:PORT")),
            ("disconnect x", ParseError::Usage("disconnect ID")),
            ("disconnect 1 2", ParseError::Usage("disconnect ID")),
            ("search", ParseError::Usage(SEARCH_USAGE)),
            ("search --max x a", ParseError::Usage(SEARCH_USAGE)),
            ("search --index", ParseError::Usage(SEARCH_USAGE)),
            ("search --bogus a", ParseError::Usage(SEARCH_USAGE)),
            ("index", ParseError::Usage(INDEX_USAGE)),
            ("index connect nowhere me", ParseError::Usage(INDEX_USAGE)),
            ("index status now", ParseError::Usage(INDEX_USAGE)),
            ("browse", ParseError::Usage("browse NICK")),
            ("results -1", ParseError::Usage("results [SEARCH-ID]")),
            ("peers now", ParseError::Usage("peers")),
            ("quit please", ParseError::Usage("quit")),
            ("get", ParseError::Usage(GET_USAGE)),
            ("get x", ParseError::Usage(GET_USAGE)),
            (
                "get urn:sha1:SHORT",
                ParseError::Usage("get urn:sha1:HASH [NAME] (32 base32 characters)"),
            ),
            (
                "get magnet:?dn=nohash",
                ParseError::Usage("get magnet:?xt=urn:sha1:…"),
            ),
            ("pause", ParseError::Usage("pause DOWNLOAD-ID")),
            ("cancel x", ParseError::Usage("cancel DOWNLOAD-ID")),
            ("shares --all", ParseError::Usage("shares [--magnet]")),
        ];
        for (line, expected) in cases {
            let err = Command::parse(line).unwrap_err();
            assert_eq!(err, expected, "line {line:?}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    proptest::proptest! {
        /// Any line, however strange, parses or gives a one-line error.
        #[test]
        fn any_line_parses_or_gives_a_one_line_error(line in "\\PC{0,200}") {
            if let Err(e) = Command::parse(&line) {
                proptest::prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn localhost_resolves_to_a_connect() {
        let command = Command::parse("connect localhost:6346").unwrap();
        assert_eq!(
            command.resolve(),
            Ok(Command::Connect("127.0.0.1:6346".parse().unwrap()))
        );
        assert_eq!(Command::Stats.resolve(), Ok(Command::Stats));
    }

    #[test]
    fn a_long_unknown_word_is_cut_in_the_error() {
        let line = "x".repeat(1000);
        let err = Command::parse(&line).unwrap_err().to_string();
        assert!(err.len() < 120, "{err}");
    }

    #[test]
    fn response_round_trips_through_one_json_line() {
        let response = Response::ok(Reply::new(
            "search",
            serde_json::json!({ "search_id": 4, "words": ["a", "b"] }),
        ));
        let line = serde_json::to_string(&response).unwrap();
        assert!(!line.contains('\n'));
        let back: Response = serde_json::from_str(&line).unwrap();
        assert_eq!(back, response);

        let error = Response::error("bad\nthing");
        assert_eq!(error.to_text(), "error: bad thing");
    }
}
