//! What the core hands back: actions for the event loop, and events for the
//! user (peers coming and going, search results, Push requests).

use std::net::SocketAddr;

use serde::Serialize;

use super::ids::{ConnId, Direction, ProtocolVersion, SearchId};
use super::transfers::{DiskJob, DownloadEvent};

/// What the reactor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open an overlay connection.
    Connect(SocketAddr),
    /// Open an HTTP connection for a download; report it with
    /// `on_transfer_connected` or `on_transfer_connect_failed`.
    ConnectTransfer(SocketAddr),
    Close(ConnId),
    WantWrite(ConnId),
    /// Stop reading this connection until `ResumeReading` (the disk is behind).
    PauseReading(ConnId),
    ResumeReading(ConnId),
    /// Disk work for a download, to be done off the event loop; its result
    /// comes back through `on_disk`.
    Disk(DiskJob),
    /// Send a UDP datagram from our port.
    SendDatagram(SocketAddr, Vec<u8>),
    /// Resolve a host name off the event loop; the answer comes back through
    /// `on_resolved` with this token.
    Resolve {
        token: u64,
        host: String,
        port: u16,
    },
    /// Open an HTTP connection to a web host cache; report it with
    /// `on_cache_connected` or `on_cache_connect_failed`.
    ConnectCache(SocketAddr),
    /// Open a connection to an OpenNap server; report it with
    /// `on_index_connected` or `on_index_connect_failed`.
    ConnectIndex(SocketAddr),
    /// Open a connection to a sharer's Napster data port for a download;
    /// report it with `on_napster_data_connected` or
    /// `on_napster_data_connect_failed`.
    ConnectNapsterData(SocketAddr),
    /// We are firewalled and a downloader at `addr` asked (501) for the
    /// shared file `index` (shared to the index as `name`): connect to it
    /// and push the file with `SEND` (an upload).
    NapsterPush(Box<NapsterPush>),
    /// We are firewalled and accepted a direct browse from the client at
    /// `.0`: connect to it and send `.1` (`SENDLIST <nick>` and our list).
    NapsterListPush(SocketAddr, Vec<u8>),
    Event(CoreEvent),
}

/// A push a firewalled sharer (us) was asked for (501).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NapsterPush {
    pub addr: SocketAddr,
    pub nick: String,
    pub index: u32,
    pub name: Vec<u8>,
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
    /// A download started, completed or failed.
    Download(DownloadEvent),
    /// Something the user should hear of (what the bootstrap is doing).
    Notice(String),
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
    /// This result's id (what `get` takes), unique for the servent's life.
    pub id: u64,
    pub search: SearchId,
    /// The responding servent's id, 32 hex digits.
    pub servent_id: String,
    pub addr: SocketAddr,
    pub file_index: u32,
    pub size: u64,
    pub name: String,
    /// `urn:sha1:...` when the hit carried one.
    pub urn: Option<String>,
    /// The Tiger tree root (39 base32 characters) when the hit named one (a `urn:bitprint:`, or
    /// gtk-gnutella's GGEP `TT`): the root a download checks the source's THEX tree against
    /// (`hazel_protocol::thex::parse_tiger_base32` reads it back).
    pub tiger: Option<String>,
    /// The responder is firewalled (a download needs a Push).
    pub needs_push: bool,
    /// Its push proxies (GGEP `PUSH`): where a Push can be asked for over HTTP.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub push_proxies: Vec<std::net::SocketAddrV4>,
    /// The responder said all its upload slots are taken (`None`: it did not say).
    pub busy: Option<bool>,
    /// The speed field of the hit (kbit/s, as the responder claims it).
    pub speed: u32,
    pub hops: u8,
    /// Where the result came from: `gnutella`, or `index:HOST:PORT` for an
    /// OpenNap server's 201.
    pub origin: String,
    /// The Napster fields of an index result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub napster: Option<Box<NapsterHit>>,
}

/// What an OpenNap search result (201) says beyond name and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NapsterHit {
    /// The sharer's nick.
    pub nick: String,
    /// The file name exactly as the sharer shared it (what 203 asks for).
    #[serde(skip)]
    pub raw_name: Vec<u8>,
    pub md5: String,
    pub bitrate: u32,
    pub frequency: u32,
    /// Play length in seconds.
    pub length: u32,
    /// Link speed code (0 unknown … 10 T3).
    pub link_speed: u32,
}

/// The origin of overlay results.
pub const ORIGIN_GNUTELLA: &str = "gnutella";
