//! OpenNap messages, typed: [`ClientMessage`] (client → server) and
//! [`ServerMessage`] (server → client).
//!
//! Several numbers mean different things in each direction (214 is a stats
//! request from a client and a stats line from the server; 750 carries the
//! client's nick one way and nothing the other), so the direction is chosen
//! by the type you decode into. A number that type does not know is kept as
//! `Unknown { kind, payload }`; a known number with a malformed payload is a
//! [`DecodeError`].
//!
//! Tolerant in what is accepted, exact in what is sent: a client message may
//! carry fields after the ones its format defines (clients extend messages
//! freely), and [`ClientMessage::parse`] ignores them, for every message, by
//! reading every payload with one [`FieldReader`] that ignores trailing
//! fields. An optional field (the build of a login, the reason of a kill) is
//! read where it stands, as opennap-ng reads it; what follows it is ignored.
//! Known fields must still be well formed. [`ServerMessage::parse`] is
//! strict, so tests and tools see exactly what a server sent; encoders emit
//! the canonical form only.

use super::fields::{FieldReader, FieldWriter};
use super::search::SearchQuery;
use super::{encode_fields, EncodeError, Frame};
use crate::error::{DecodeError, Result};
use std::net::Ipv4Addr;

/// Message numbers, named.
pub mod kind {
    pub const ERROR: u16 = 0;
    pub const LOGIN: u16 = 2;
    pub const LOGIN_ACK: u16 = 3;
    pub const VERSION_CHECK: u16 = 4;
    pub const NEW_USER_LOGIN: u16 = 6;
    pub const NICK_CHECK: u16 = 7;
    pub const NICK_NOT_REGISTERED: u16 = 8;
    pub const NICK_REGISTERED: u16 = 9;
    pub const NICK_INVALID: u16 = 10;
    pub const SHARE: u16 = 100;
    pub const UNSHARE: u16 = 102;
    pub const UNSHARE_ALL: u16 = 110;
    pub const SEARCH: u16 = 200;
    pub const SEARCH_RESULT: u16 = 201;
    pub const SEARCH_END: u16 = 202;
    pub const DOWNLOAD_REQUEST: u16 = 203;
    pub const DOWNLOAD_ACK: u16 = 204;
    pub const DOWNLOAD_ERROR: u16 = 206;
    pub const USER_SIGNOFF: u16 = 210;
    pub const BROWSE: u16 = 211;
    pub const BROWSE_ENTRY: u16 = 212;
    pub const BROWSE_END: u16 = 213;
    pub const STATS: u16 = 214;
    pub const DOWNLOAD_STARTED: u16 = 218;
    pub const DOWNLOAD_FINISHED: u16 = 219;
    pub const UPLOAD_STARTED: u16 = 220;
    pub const UPLOAD_FINISHED: u16 = 221;
    pub const ERROR_MESSAGE: u16 = 404;
    pub const FIREWALLED_DOWNLOAD_REQUEST: u16 = 500;
    pub const FIREWALLED_DOWNLOAD_ACK: u16 = 501;
    pub const WHOIS: u16 = 603;
    pub const WHOIS_RESPONSE: u16 = 604;
    pub const WHOWAS: u16 = 605;
    pub const SET_USER_LEVEL: u16 = 606;
    pub const UPLOAD_REQUEST: u16 = 607;
    pub const UPLOAD_ACCEPT: u16 = 608;
    pub const UPLOAD_REFUSED: u16 = 609;
    pub const KILL: u16 = 610;
    pub const NUKE: u16 = 611;
    pub const BAN: u16 = 612;
    pub const UNBAN: u16 = 614;
    pub const SHOW_BANS: u16 = 615;
    pub const BAN_ENTRY: u16 = 616;
    pub const QUEUE_LIMIT: u16 = 619;
    pub const QUEUE_LIMIT_REACHED: u16 = 620;
    pub const MOTD: u16 = 621;
    pub const DIRECT_BROWSE: u16 = 640;
    pub const DIRECT_BROWSE_ACCEPT: u16 = 641;
    pub const DIRECT_BROWSE_ERROR: u16 = 642;
    pub const SERVER_PING: u16 = 750;
    pub const PING_USER: u16 = 751;
    pub const PONG_USER: u16 = 752;
    pub const CHANGE_PASSWORD: u16 = 753;
    pub const SERVER_VERSION: u16 = 801;
    pub const SHARE_BATCH: u16 = 870;
    pub const SERVER_LINKS: u16 = 10112;
    pub const USAGE_STATS: u16 = 10115;
    pub const CLIENT_VERSIONS: u16 = 10118;
}

/// A user's privilege level, as opennap-ng names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserLevel {
    Leech,
    User,
    Moderator,
    Admin,
    Elite,
}

impl UserLevel {
    /// The wire name (`"User"`, `"Admin"`…).
    pub fn name(self) -> &'static str {
        match self {
            UserLevel::Leech => "Leech",
            UserLevel::User => "User",
            UserLevel::Moderator => "Moderator",
            UserLevel::Admin => "Admin",
            UserLevel::Elite => "Elite",
        }
    }

    /// Reads a level name, case-insensitively (clients send `admin`).
    pub fn from_name(name: &[u8]) -> Option<UserLevel> {
        [
            UserLevel::Leech,
            UserLevel::User,
            UserLevel::Moderator,
            UserLevel::Admin,
            UserLevel::Elite,
        ]
        .into_iter()
        .find(|l| l.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Login (2): `<nick> <password> <port> "<client-info>" <link-type> [build]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub nick: String,
    pub password: Vec<u8>,
    /// Data port; 0 means firewalled (push only).
    pub port: u16,
    pub client_info: Vec<u8>,
    pub link_speed: u32,
    pub build: Option<u32>,
}

/// New-user login (6): a login plus the e-mail address to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUserLogin {
    pub nick: String,
    pub password: Vec<u8>,
    pub port: u16,
    pub client_info: Vec<u8>,
    pub link_speed: u32,
    pub email: Vec<u8>,
}

/// A shared file as announced by 100 (`name` is the full path as the client
/// sent it, usually with `\` separators), or one entry of an 870 batch
/// (`name` is then relative to the batch's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub name: Vec<u8>,
    /// An md5 hex string, or whatever the client put there (`nomd5computed`,
    /// `WMA-FILE`).
    pub md5: Vec<u8>,
    pub size: u64,
    pub bitrate: u32,
    pub freq: u32,
    pub duration: u32,
}

/// One file of a batched share (870); the same fields as [`SharedFile`].
pub type BatchFile = SharedFile;

/// A search result (201).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    pub name: Vec<u8>,
    pub md5: Vec<u8>,
    pub size: u64,
    pub bitrate: u32,
    pub freq: u32,
    pub duration: u32,
    pub nick: String,
    pub ip: Ipv4Addr,
    pub link_speed: u32,
    pub weight: Option<i32>,
}

/// Where to fetch a file: the download ack (204) and its firewalled twin
/// (501, sent to the sharer with the downloader's address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadAck {
    pub nick: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub name: Vec<u8>,
    pub md5: Vec<u8>,
    pub link_speed: u32,
}

/// Server usage (10115), the sixteen numbers opennap-ng sends and TekNap's
/// `/admin stats` prints, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageStats {
    pub local_clients: u64,
    pub linked_servers: u64,
    pub users: u64,
    pub files: u64,
    /// Total size of the shared files, in bytes.
    pub shared_bytes: u64,
    pub channels: u64,
    /// When the server started, Unix seconds.
    pub started_at: u64,
    pub uptime_seconds: u64,
    /// Memory in use, bytes (opennap-ng's figure; TekNap prints it only if
    /// it is not positive, so 0 is a fine "unknown").
    pub memory_bytes: u64,
    pub registered_users: u64,
    pub kib_in_per_second: u64,
    pub kib_out_per_second: u64,
    pub searches_per_second: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub pending_searches: u64,
}

impl UsageStats {
    fn fields(&self) -> [u64; 16] {
        [
            self.local_clients,
            self.linked_servers,
            self.users,
            self.files,
            self.shared_bytes,
            self.channels,
            self.started_at,
            self.uptime_seconds,
            self.memory_bytes,
            self.registered_users,
            self.kib_in_per_second,
            self.kib_out_per_second,
            self.searches_per_second,
            self.bytes_in,
            self.bytes_out,
            self.pending_searches,
        ]
    }

    fn from_fields(f: [u64; 16]) -> UsageStats {
        let [local_clients, linked_servers, users, files, shared_bytes, channels, started_at, uptime_seconds, memory_bytes, registered_users, kib_in_per_second, kib_out_per_second, searches_per_second, bytes_in, bytes_out, pending_searches] =
            f;
        UsageStats {
            local_clients,
            linked_servers,
            users,
            files,
            shared_bytes,
            channels,
            started_at,
            uptime_seconds,
            memory_bytes,
            registered_users,
            kib_in_per_second,
            kib_out_per_second,
            searches_per_second,
            bytes_in,
            bytes_out,
            pending_searches,
        }
    }
}

/// What a client sends to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// 2.
    Login(Login),
    /// 4: `<version>` (Napster 2.0 sends `2.0`; empty if absent).
    VersionCheck { version: Vec<u8> },
    /// 6.
    NewUserLogin(NewUserLogin),
    /// 7: is this nick registered?
    NickCheck { nick: String },
    /// 100.
    Share(SharedFile),
    /// 102: the name is the whole payload, unquoted (a quoted name may be
    /// followed by further fields).
    Unshare { name: Vec<u8> },
    /// 110.
    UnshareAll,
    /// 870: `"<dir>" "<file>" md5 size bitrate freq duration [...]`.
    ShareBatch {
        directory: Vec<u8>,
        files: Vec<BatchFile>,
    },
    /// 200.
    Search(SearchQuery),
    /// 203: `<nick> "<file>"`.
    DownloadRequest { nick: String, name: Vec<u8> },
    /// 500: ask a firewalled sharer to push.
    FirewalledDownloadRequest { nick: String, name: Vec<u8> },
    /// 211.
    Browse { nick: String },
    /// 214 with no data.
    StatsRequest,
    /// 218.
    DownloadStarted,
    /// 219.
    DownloadFinished,
    /// 220.
    UploadStarted,
    /// 221.
    UploadFinished,
    /// 603: `<nick>`.
    Whois { nick: String },
    /// 606: `<nick> <level>` (admin only); the level as sent.
    SetUserLevel { nick: String, level: Vec<u8> },
    /// 608: the sharer accepts a 607.
    UploadAccept { nick: String, name: Vec<u8> },
    /// 610: `<nick> ["<reason>"]` (the reason is one field: quoted, or a
    /// single word).
    Kill {
        nick: String,
        reason: Option<Vec<u8>>,
    },
    /// 611: `<nick>`, delete the account.
    Nuke { nick: String },
    /// 612: `<nick|ip> ["<reason>"]`.
    Ban {
        target: String,
        reason: Option<Vec<u8>>,
    },
    /// 614: `<nick|ip> ["<reason>"]`.
    Unban {
        target: String,
        reason: Option<Vec<u8>>,
    },
    /// 615: list bans.
    ShowBans,
    /// 619: the sharer refuses because the downloader hit its queue limit.
    QueueLimit {
        nick: String,
        name: Vec<u8>,
        limit: u32,
    },
    /// 621 with no data: send the MOTD again.
    MotdRequest,
    /// 640: `<nick>`, browse that user's files directly.
    DirectBrowse { nick: String },
    /// 641: `<nick>`, the browsee accepts the direct browse from `nick`.
    DirectBrowseAccept { nick: String },
    /// 750: a server ping. Its arguments (Napster 2.0 sends its nick,
    /// TekNap a server name and a time stamp) are the whole payload, kept
    /// byte for byte: the answer carries them back.
    ServerPing { args: Vec<u8> },
    /// 751: ping another user.
    PingUser { nick: String },
    /// 752: answer to a 751.
    PongUser { nick: String },
    /// 753: `<nick> <password> ["<reason>"]`, an admin sets a password.
    ChangePassword {
        nick: String,
        password: Vec<u8>,
        reason: Option<Vec<u8>>,
    },
    /// 801: the server's version.
    VersionRequest,
    /// 10112: the linked servers.
    LinksRequest,
    /// 10115: server usage statistics.
    UsageStatsRequest,
    /// 10118: how many users each client version has.
    ClientVersionsRequest,
    /// Any other number, kept whole.
    Unknown { kind: u16, payload: Vec<u8> },
}

/// What the server sends to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// 0: error during login, free text.
    Error { message: Vec<u8> },
    /// 3: login accepted; the registered e-mail or a dummy.
    LoginAck { email: Vec<u8> },
    /// 4 with no data: the answer Napster's Windows client waits for after
    /// its version check.
    VersionCheck,
    /// 8.
    NickNotRegistered,
    /// 9.
    NickRegistered,
    /// 10.
    NickInvalid,
    /// 201.
    SearchResult(SearchResult),
    /// 202.
    SearchEnd,
    /// 204.
    DownloadAck(DownloadAck),
    /// 206: `<nick> "<file>"`.
    DownloadError { nick: String, name: Vec<u8> },
    /// 210: user signed off / browse of an absent user.
    UserSignoff { nick: String },
    /// 212: `<nick> "<file>" md5 size bitrate freq duration`.
    BrowseEntry { nick: String, file: SharedFile },
    /// 213: `<nick> [ip]`.
    BrowseEnd { nick: String, ip: Option<Ipv4Addr> },
    /// 214: `<users> <files> <gigabytes>`.
    Stats {
        users: u64,
        files: u64,
        gigabytes: u64,
    },
    /// 404: error after login, free text.
    ErrorMessage { message: Vec<u8> },
    /// 501: tell a firewalled sharer where to push.
    FirewalledDownloadAck(DownloadAck),
    /// 607: `<nick> "<file>" [speed]`, someone wants a file of yours.
    UploadRequest {
        nick: String,
        name: Vec<u8>,
        link_speed: Option<u32>,
    },
    /// 609: the sharer did not accept.
    UploadRefused { nick: String, name: Vec<u8> },
    /// 620: `<nick> "<file>" <size> <limit>`.
    QueueLimitReached {
        nick: String,
        name: Vec<u8>,
        size: u64,
        limit: u32,
    },
    /// 621: one line of the message of the day.
    Motd { line: Vec<u8> },
    /// 640: `<nick> [<ip> <port>]`, `nick` wants to browse your files; the
    /// address is given when you are firewalled, to connect to `nick`.
    DirectBrowseRequest {
        nick: String,
        connect_to: Option<(Ipv4Addr, u16)>,
    },
    /// 641: `<nick> <ip> <port>`, where to connect to browse `nick`.
    DirectBrowseAccept {
        nick: String,
        ip: Ipv4Addr,
        port: u16,
    },
    /// 642: `<nick> "<message>"`, the direct browse of `nick` cannot be made.
    DirectBrowseError { nick: String, message: Vec<u8> },
    /// 750: the answer to a server ping, carrying its arguments back.
    ServerPing { args: Vec<u8> },
    /// 751: `<nick>` is pinging you.
    PingUser { nick: String },
    /// 752: `<nick>` answered your ping.
    PongUser { nick: String },
    /// 10115: server usage.
    UsageStats(UsageStats),
    /// Any other number, kept whole.
    Unknown { kind: u16, payload: Vec<u8> },
}

type EncodeResult = std::result::Result<(), EncodeError>;

fn read_file_fields(r: &mut FieldReader<'_>, name: &[u8]) -> Result<SharedFile> {
    Ok(SharedFile {
        name: name.to_vec(),
        md5: r.token("md5")?.to_vec(),
        size: r.number("size")?,
        bitrate: r.number("bitrate")?,
        freq: r.number("frequency")?,
        duration: r.number("duration")?,
    })
}

fn write_file_fields(w: &mut FieldWriter<'_>, f: &SharedFile) -> EncodeResult {
    w.quoted("file name", &f.name)?;
    w.token("md5", &f.md5)?;
    w.number(f.size);
    w.number(u64::from(f.bitrate));
    w.number(u64::from(f.freq));
    w.number(u64::from(f.duration));
    Ok(())
}

/// An optional reason: one field, quoted as clients send it (or a single
/// bare word, as opennap-ng reads it).
fn read_reason(r: &mut FieldReader<'_>) -> Result<Option<Vec<u8>>> {
    if r.at_end() {
        return Ok(None);
    }
    Ok(Some(r.quoted("reason")?.to_vec()))
}

fn nick_and_name(r: &mut FieldReader<'_>) -> Result<(String, Vec<u8>)> {
    let nick = r.string("nick")?;
    let name = r.quoted("file name")?.to_vec();
    Ok((nick, name))
}

/// One file of a batch (870): a quoted name and its five fields, or `None`
/// (and nothing read) if what follows is not a whole entry.
fn read_batch_entry(r: &mut FieldReader<'_>) -> Option<SharedFile> {
    if !r.next_is_quoted() {
        return None;
    }
    let mut attempt = r.clone();
    let name = attempt.quoted("file name").ok()?;
    let file = read_file_fields(&mut attempt, name).ok()?;
    *r = attempt;
    Some(file)
}

fn empty(payload: &[u8]) -> Result<()> {
    FieldReader::new(payload).finish()
}

fn read_ack(payload: &[u8]) -> Result<DownloadAck> {
    let mut r = FieldReader::new(payload);
    let ack = DownloadAck {
        nick: r.string("nick")?,
        ip: r.ip("ip")?,
        port: r.number("port")?,
        name: r.quoted("file name")?.to_vec(),
        md5: r.token("md5")?.to_vec(),
        link_speed: r.number("link speed")?,
    };
    r.finish()?;
    Ok(ack)
}

fn write_ack(w: &mut FieldWriter<'_>, a: &DownloadAck) -> EncodeResult {
    w.token("nick", a.nick.as_bytes())?;
    w.ip(a.ip);
    w.number(u64::from(a.port));
    w.quoted("file name", &a.name)?;
    w.token("md5", &a.md5)?;
    w.number(u64::from(a.link_speed));
    Ok(())
}

impl ClientMessage {
    /// The message number.
    pub fn kind(&self) -> u16 {
        use kind::*;
        match self {
            ClientMessage::Login(_) => LOGIN,
            ClientMessage::VersionCheck { .. } => VERSION_CHECK,
            ClientMessage::NewUserLogin(_) => NEW_USER_LOGIN,
            ClientMessage::NickCheck { .. } => NICK_CHECK,
            ClientMessage::Share(_) => SHARE,
            ClientMessage::Unshare { .. } => UNSHARE,
            ClientMessage::UnshareAll => UNSHARE_ALL,
            ClientMessage::ShareBatch { .. } => SHARE_BATCH,
            ClientMessage::Search(_) => SEARCH,
            ClientMessage::DownloadRequest { .. } => DOWNLOAD_REQUEST,
            ClientMessage::FirewalledDownloadRequest { .. } => FIREWALLED_DOWNLOAD_REQUEST,
            ClientMessage::Browse { .. } => BROWSE,
            ClientMessage::StatsRequest => STATS,
            ClientMessage::DownloadStarted => DOWNLOAD_STARTED,
            ClientMessage::DownloadFinished => DOWNLOAD_FINISHED,
            ClientMessage::UploadStarted => UPLOAD_STARTED,
            ClientMessage::UploadFinished => UPLOAD_FINISHED,
            ClientMessage::Whois { .. } => WHOIS,
            ClientMessage::SetUserLevel { .. } => SET_USER_LEVEL,
            ClientMessage::UploadAccept { .. } => UPLOAD_ACCEPT,
            ClientMessage::Kill { .. } => KILL,
            ClientMessage::Nuke { .. } => NUKE,
            ClientMessage::Ban { .. } => BAN,
            ClientMessage::Unban { .. } => UNBAN,
            ClientMessage::ShowBans => SHOW_BANS,
            ClientMessage::QueueLimit { .. } => QUEUE_LIMIT,
            ClientMessage::MotdRequest => MOTD,
            ClientMessage::DirectBrowse { .. } => DIRECT_BROWSE,
            ClientMessage::DirectBrowseAccept { .. } => DIRECT_BROWSE_ACCEPT,
            ClientMessage::ServerPing { .. } => SERVER_PING,
            ClientMessage::PingUser { .. } => PING_USER,
            ClientMessage::PongUser { .. } => PONG_USER,
            ClientMessage::ChangePassword { .. } => CHANGE_PASSWORD,
            ClientMessage::VersionRequest => SERVER_VERSION,
            ClientMessage::LinksRequest => SERVER_LINKS,
            ClientMessage::UsageStatsRequest => USAGE_STATS,
            ClientMessage::ClientVersionsRequest => CLIENT_VERSIONS,
            ClientMessage::Unknown { kind, .. } => *kind,
        }
    }

    /// Decodes a frame received by a server.
    pub fn from_frame(frame: &Frame) -> Result<ClientMessage> {
        Self::parse(frame.kind, &frame.payload)
    }

    /// Decodes the payload of message number `kind`. Fields after the ones
    /// the message defines are ignored (see the module docs).
    pub fn parse(kind: u16, payload: &[u8]) -> Result<ClientMessage> {
        use kind::*;
        // The one place the tolerance is decided: every message below is
        // read through this reader and ends with `r.finish()`.
        let mut r = FieldReader::new(payload).ignoring_trailing_fields();
        let msg = match kind {
            LOGIN => ClientMessage::Login(Login {
                nick: r.string("nick")?,
                password: r.token("password")?.to_vec(),
                port: r.number("port")?,
                client_info: r.quoted("client info")?.to_vec(),
                link_speed: r.number("link speed")?,
                build: r.optional_number("build")?,
            }),
            VERSION_CHECK => ClientMessage::VersionCheck {
                version: if r.at_end() {
                    Vec::new()
                } else {
                    r.token("version")?.to_vec()
                },
            },
            NEW_USER_LOGIN => ClientMessage::NewUserLogin(NewUserLogin {
                nick: r.string("nick")?,
                password: r.token("password")?.to_vec(),
                port: r.number("port")?,
                client_info: r.quoted("client info")?.to_vec(),
                link_speed: r.number("link speed")?,
                email: r.token("email")?.to_vec(),
            }),
            NICK_CHECK => ClientMessage::NickCheck {
                nick: r.string("nick")?,
            },
            SHARE => {
                let name = r.quoted("file name")?;
                ClientMessage::Share(read_file_fields(&mut r, name)?)
            }
            UNSHARE => {
                // The whole payload is the name (it may hold spaces), unless
                // it is quoted: then it is one field like any other.
                let name = if r.next_is_quoted() {
                    let mut quoted = r.clone();
                    match quoted.quoted("file name") {
                        Ok(name) => {
                            r = quoted;
                            name.to_vec()
                        }
                        Err(_) => payload.to_vec(),
                    }
                } else {
                    payload.to_vec()
                };
                if name.is_empty() {
                    return Err(DecodeError::BadField("file name"));
                }
                ClientMessage::Unshare { name }
            }
            UNSHARE_ALL => ClientMessage::UnshareAll,
            SHARE_BATCH => {
                // The files are the run of whole entries after the
                // directory; whatever follows them is trailing fields.
                let directory = r.quoted("directory")?.to_vec();
                let mut files = Vec::new();
                while let Some(file) = read_batch_entry(&mut r) {
                    files.push(file);
                }
                if files.is_empty() {
                    // Say which field of the first entry is wrong.
                    let name = r.quoted("file name")?;
                    read_file_fields(&mut r, name)?;
                    return Err(DecodeError::BadField("file name"));
                }
                ClientMessage::ShareBatch { directory, files }
            }
            SEARCH => ClientMessage::Search(SearchQuery::parse(payload)?),
            DOWNLOAD_REQUEST => {
                let (nick, name) = nick_and_name(&mut r)?;
                ClientMessage::DownloadRequest { nick, name }
            }
            FIREWALLED_DOWNLOAD_REQUEST => {
                let (nick, name) = nick_and_name(&mut r)?;
                ClientMessage::FirewalledDownloadRequest { nick, name }
            }
            UPLOAD_ACCEPT => {
                let (nick, name) = nick_and_name(&mut r)?;
                ClientMessage::UploadAccept { nick, name }
            }
            BROWSE => ClientMessage::Browse {
                nick: r.string("nick")?,
            },
            STATS => ClientMessage::StatsRequest,
            DOWNLOAD_STARTED => ClientMessage::DownloadStarted,
            DOWNLOAD_FINISHED => ClientMessage::DownloadFinished,
            UPLOAD_STARTED => ClientMessage::UploadStarted,
            UPLOAD_FINISHED => ClientMessage::UploadFinished,
            WHOIS => ClientMessage::Whois {
                nick: r.string("nick")?,
            },
            SET_USER_LEVEL => ClientMessage::SetUserLevel {
                nick: r.string("nick")?,
                level: r.token("level")?.to_vec(),
            },
            KILL => ClientMessage::Kill {
                nick: r.string("nick")?,
                reason: read_reason(&mut r)?,
            },
            NUKE => ClientMessage::Nuke {
                nick: r.string("nick")?,
            },
            BAN => ClientMessage::Ban {
                target: r.string("ban target")?,
                reason: read_reason(&mut r)?,
            },
            UNBAN => ClientMessage::Unban {
                target: r.string("ban target")?,
                reason: read_reason(&mut r)?,
            },
            SHOW_BANS => ClientMessage::ShowBans,
            QUEUE_LIMIT => ClientMessage::QueueLimit {
                nick: r.string("nick")?,
                name: r.quoted("file name")?.to_vec(),
                limit: r.number("queue limit")?,
            },
            MOTD => ClientMessage::MotdRequest,
            DIRECT_BROWSE => ClientMessage::DirectBrowse {
                nick: r.string("nick")?,
            },
            DIRECT_BROWSE_ACCEPT => ClientMessage::DirectBrowseAccept {
                nick: r.string("nick")?,
            },
            // Byte for byte, spaces included: nothing here is a field.
            SERVER_PING => {
                return Ok(ClientMessage::ServerPing {
                    args: payload.to_vec(),
                })
            }
            PING_USER => ClientMessage::PingUser {
                nick: r.string("nick")?,
            },
            PONG_USER => ClientMessage::PongUser {
                nick: r.string("nick")?,
            },
            CHANGE_PASSWORD => ClientMessage::ChangePassword {
                nick: r.string("nick")?,
                password: r.token("password")?.to_vec(),
                reason: read_reason(&mut r)?,
            },
            SERVER_VERSION => ClientMessage::VersionRequest,
            SERVER_LINKS => ClientMessage::LinksRequest,
            USAGE_STATS => ClientMessage::UsageStatsRequest,
            CLIENT_VERSIONS => ClientMessage::ClientVersionsRequest,
            other => {
                return Ok(ClientMessage::Unknown {
                    kind: other,
                    payload: payload.to_vec(),
                })
            }
        };
        r.finish()?;
        Ok(msg)
    }

    /// Appends the whole frame (header and payload) to `out`. On error
    /// nothing is appended.
    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        encode_fields(self.kind(), out, |w| self.write_payload(w))
    }

    /// The whole frame as a new buffer.
    pub fn to_bytes(&self) -> std::result::Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    fn write_payload(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        match self {
            ClientMessage::Login(l) => {
                w.token("nick", l.nick.as_bytes())?;
                w.token("password", &l.password)?;
                w.number(u64::from(l.port));
                w.quoted("client info", &l.client_info)?;
                w.number(u64::from(l.link_speed));
                if let Some(build) = l.build {
                    w.number(u64::from(build));
                }
            }
            ClientMessage::VersionCheck { version } => {
                if !version.is_empty() {
                    w.token("version", version)?;
                }
            }
            ClientMessage::NewUserLogin(l) => {
                w.token("nick", l.nick.as_bytes())?;
                w.token("password", &l.password)?;
                w.number(u64::from(l.port));
                w.quoted("client info", &l.client_info)?;
                w.number(u64::from(l.link_speed));
                w.token("email", &l.email)?;
            }
            ClientMessage::NickCheck { nick }
            | ClientMessage::Browse { nick }
            | ClientMessage::Whois { nick }
            | ClientMessage::Nuke { nick }
            | ClientMessage::DirectBrowse { nick }
            | ClientMessage::DirectBrowseAccept { nick }
            | ClientMessage::PingUser { nick }
            | ClientMessage::PongUser { nick } => {
                w.token("nick", nick.as_bytes())?;
            }
            ClientMessage::Share(f) => write_file_fields(w, f)?,
            ClientMessage::Unshare { name } => {
                // The one unquoted name: the whole payload. Leading or
                // trailing spaces are part of it and survive a round trip; a
                // double quote would not (no name can hold one).
                if name.is_empty() {
                    return Err(EncodeError::BadToken("file name"));
                }
                if name.contains(&b'"') {
                    return Err(EncodeError::QuoteInField("file name"));
                }
                w.raw(name);
            }
            ClientMessage::ShareBatch { directory, files } => {
                if files.is_empty() {
                    return Err(EncodeError::BadToken("file name"));
                }
                w.quoted("directory", directory)?;
                for f in files {
                    write_file_fields(w, f)?;
                }
            }
            ClientMessage::Search(q) => {
                let mut payload = Vec::new();
                q.encode_payload(&mut payload)?;
                if !payload.is_empty() {
                    w.raw(&payload);
                }
            }
            ClientMessage::DownloadRequest { nick, name }
            | ClientMessage::FirewalledDownloadRequest { nick, name }
            | ClientMessage::UploadAccept { nick, name } => {
                w.token("nick", nick.as_bytes())?;
                w.quoted("file name", name)?;
            }
            ClientMessage::SetUserLevel { nick, level } => {
                w.token("nick", nick.as_bytes())?;
                w.token("level", level)?;
            }
            ClientMessage::Kill { nick, reason } => {
                w.token("nick", nick.as_bytes())?;
                if let Some(reason) = reason {
                    w.quoted("reason", reason)?;
                }
            }
            ClientMessage::Ban { target, reason } | ClientMessage::Unban { target, reason } => {
                w.token("ban target", target.as_bytes())?;
                if let Some(reason) = reason {
                    w.quoted("reason", reason)?;
                }
            }
            ClientMessage::ChangePassword {
                nick,
                password,
                reason,
            } => {
                w.token("nick", nick.as_bytes())?;
                w.token("password", password)?;
                if let Some(reason) = reason {
                    w.quoted("reason", reason)?;
                }
            }
            ClientMessage::QueueLimit { nick, name, limit } => {
                w.token("nick", nick.as_bytes())?;
                w.quoted("file name", name)?;
                w.number(u64::from(*limit));
            }
            ClientMessage::UnshareAll
            | ClientMessage::StatsRequest
            | ClientMessage::DownloadStarted
            | ClientMessage::DownloadFinished
            | ClientMessage::UploadStarted
            | ClientMessage::UploadFinished
            | ClientMessage::ShowBans
            | ClientMessage::MotdRequest
            | ClientMessage::VersionRequest
            | ClientMessage::LinksRequest
            | ClientMessage::UsageStatsRequest
            | ClientMessage::ClientVersionsRequest => {}
            ClientMessage::ServerPing { args: payload }
            | ClientMessage::Unknown { payload, .. } => {
                if !payload.is_empty() {
                    w.raw(payload);
                }
            }
        }
        Ok(())
    }
}

impl ServerMessage {
    /// The message number.
    pub fn kind(&self) -> u16 {
        use kind::*;
        match self {
            ServerMessage::Error { .. } => ERROR,
            ServerMessage::LoginAck { .. } => LOGIN_ACK,
            ServerMessage::VersionCheck => VERSION_CHECK,
            ServerMessage::NickNotRegistered => NICK_NOT_REGISTERED,
            ServerMessage::NickRegistered => NICK_REGISTERED,
            ServerMessage::NickInvalid => NICK_INVALID,
            ServerMessage::SearchResult(_) => SEARCH_RESULT,
            ServerMessage::SearchEnd => SEARCH_END,
            ServerMessage::DownloadAck(_) => DOWNLOAD_ACK,
            ServerMessage::DownloadError { .. } => DOWNLOAD_ERROR,
            ServerMessage::UserSignoff { .. } => USER_SIGNOFF,
            ServerMessage::BrowseEntry { .. } => BROWSE_ENTRY,
            ServerMessage::BrowseEnd { .. } => BROWSE_END,
            ServerMessage::Stats { .. } => STATS,
            ServerMessage::ErrorMessage { .. } => ERROR_MESSAGE,
            ServerMessage::FirewalledDownloadAck(_) => FIREWALLED_DOWNLOAD_ACK,
            ServerMessage::UploadRequest { .. } => UPLOAD_REQUEST,
            ServerMessage::UploadRefused { .. } => UPLOAD_REFUSED,
            ServerMessage::QueueLimitReached { .. } => QUEUE_LIMIT_REACHED,
            ServerMessage::Motd { .. } => MOTD,
            ServerMessage::DirectBrowseRequest { .. } => DIRECT_BROWSE,
            ServerMessage::DirectBrowseAccept { .. } => DIRECT_BROWSE_ACCEPT,
            ServerMessage::DirectBrowseError { .. } => DIRECT_BROWSE_ERROR,
            ServerMessage::ServerPing { .. } => SERVER_PING,
            ServerMessage::PingUser { .. } => PING_USER,
            ServerMessage::PongUser { .. } => PONG_USER,
            ServerMessage::UsageStats(_) => USAGE_STATS,
            ServerMessage::Unknown { kind, .. } => *kind,
        }
    }

    /// Decodes a frame received by a client.
    pub fn from_frame(frame: &Frame) -> Result<ServerMessage> {
        Self::parse(frame.kind, &frame.payload)
    }

    /// Decodes the payload of message number `kind`.
    pub fn parse(kind: u16, payload: &[u8]) -> Result<ServerMessage> {
        use kind::*;
        let mut r = FieldReader::new(payload);
        let msg = match kind {
            ERROR => ServerMessage::Error {
                message: payload.to_vec(),
            },
            LOGIN_ACK => ServerMessage::LoginAck {
                email: payload.to_vec(),
            },
            VERSION_CHECK => {
                empty(payload)?;
                ServerMessage::VersionCheck
            }
            NICK_NOT_REGISTERED => {
                empty(payload)?;
                ServerMessage::NickNotRegistered
            }
            NICK_REGISTERED => {
                empty(payload)?;
                ServerMessage::NickRegistered
            }
            NICK_INVALID => {
                empty(payload)?;
                ServerMessage::NickInvalid
            }
            SEARCH_RESULT => {
                let name = r.quoted("file name")?;
                let file = read_file_fields(&mut r, name)?;
                let result = SearchResult {
                    name: file.name,
                    md5: file.md5,
                    size: file.size,
                    bitrate: file.bitrate,
                    freq: file.freq,
                    duration: file.duration,
                    nick: r.string("nick")?,
                    ip: r.ip("ip")?,
                    link_speed: r.number("link speed")?,
                    weight: if r.at_end() {
                        None
                    } else {
                        Some(r.signed("weight")?)
                    },
                };
                r.finish()?;
                ServerMessage::SearchResult(result)
            }
            SEARCH_END => {
                empty(payload)?;
                ServerMessage::SearchEnd
            }
            DOWNLOAD_ACK => ServerMessage::DownloadAck(read_ack(payload)?),
            FIREWALLED_DOWNLOAD_ACK => ServerMessage::FirewalledDownloadAck(read_ack(payload)?),
            DOWNLOAD_ERROR => {
                let (nick, name) = nick_and_name(&mut r)?;
                r.finish()?;
                ServerMessage::DownloadError { nick, name }
            }
            UPLOAD_REFUSED => {
                let (nick, name) = nick_and_name(&mut r)?;
                r.finish()?;
                ServerMessage::UploadRefused { nick, name }
            }
            USER_SIGNOFF => {
                let nick = r.string("nick")?;
                r.finish()?;
                ServerMessage::UserSignoff { nick }
            }
            BROWSE_ENTRY => {
                let nick = r.string("nick")?;
                let name = r.quoted("file name")?;
                let file = read_file_fields(&mut r, name)?;
                r.finish()?;
                ServerMessage::BrowseEntry { nick, file }
            }
            BROWSE_END => {
                let nick = r.string("nick")?;
                let ip = if r.at_end() { None } else { Some(r.ip("ip")?) };
                r.finish()?;
                ServerMessage::BrowseEnd { nick, ip }
            }
            STATS => {
                let stats = ServerMessage::Stats {
                    users: r.number("users")?,
                    files: r.number("files")?,
                    gigabytes: r.number("gigabytes")?,
                };
                r.finish()?;
                stats
            }
            ERROR_MESSAGE => ServerMessage::ErrorMessage {
                message: payload.to_vec(),
            },
            UPLOAD_REQUEST => {
                let nick = r.string("nick")?;
                let name = r.quoted("file name")?.to_vec();
                let link_speed = if r.at_end() {
                    None
                } else {
                    Some(r.number("link speed")?)
                };
                r.finish()?;
                ServerMessage::UploadRequest {
                    nick,
                    name,
                    link_speed,
                }
            }
            QUEUE_LIMIT_REACHED => {
                let msg = ServerMessage::QueueLimitReached {
                    nick: r.string("nick")?,
                    name: r.quoted("file name")?.to_vec(),
                    size: r.number("size")?,
                    limit: r.number("queue limit")?,
                };
                r.finish()?;
                msg
            }
            MOTD => ServerMessage::Motd {
                line: payload.to_vec(),
            },
            DIRECT_BROWSE => {
                let nick = r.string("nick")?;
                let connect_to = if r.at_end() {
                    None
                } else {
                    Some((r.ip("ip")?, r.number("port")?))
                };
                r.finish()?;
                ServerMessage::DirectBrowseRequest { nick, connect_to }
            }
            DIRECT_BROWSE_ACCEPT => {
                let msg = ServerMessage::DirectBrowseAccept {
                    nick: r.string("nick")?,
                    ip: r.ip("ip")?,
                    port: r.number("port")?,
                };
                r.finish()?;
                msg
            }
            DIRECT_BROWSE_ERROR => {
                let nick = r.string("nick")?;
                let message = r.quoted("message")?.to_vec();
                r.finish()?;
                ServerMessage::DirectBrowseError { nick, message }
            }
            SERVER_PING => ServerMessage::ServerPing {
                args: payload.to_vec(),
            },
            PING_USER => {
                let nick = r.string("nick")?;
                r.finish()?;
                ServerMessage::PingUser { nick }
            }
            PONG_USER => {
                let nick = r.string("nick")?;
                r.finish()?;
                ServerMessage::PongUser { nick }
            }
            USAGE_STATS => {
                let mut fields = [0u64; 16];
                for field in fields.iter_mut() {
                    *field = r.number("usage statistic")?;
                }
                r.finish()?;
                ServerMessage::UsageStats(UsageStats::from_fields(fields))
            }
            other => ServerMessage::Unknown {
                kind: other,
                payload: payload.to_vec(),
            },
        };
        Ok(msg)
    }

    /// Appends the whole frame (header and payload) to `out`. On error
    /// nothing is appended. A server writes all 201s of one search into one
    /// buffer this way and sends it in one write.
    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        encode_fields(self.kind(), out, |w| self.write_payload(w))
    }

    /// The whole frame as a new buffer.
    pub fn to_bytes(&self) -> std::result::Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    fn write_payload(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        match self {
            ServerMessage::Error { message: text }
            | ServerMessage::LoginAck { email: text }
            | ServerMessage::ErrorMessage { message: text }
            | ServerMessage::Motd { line: text }
            | ServerMessage::ServerPing { args: text }
            | ServerMessage::Unknown { payload: text, .. } => {
                if !text.is_empty() {
                    w.raw(text);
                }
            }
            ServerMessage::NickNotRegistered
            | ServerMessage::NickRegistered
            | ServerMessage::NickInvalid
            | ServerMessage::SearchEnd
            | ServerMessage::VersionCheck => {}
            ServerMessage::SearchResult(s) => {
                w.quoted("file name", &s.name)?;
                w.token("md5", &s.md5)?;
                w.number(s.size);
                w.number(u64::from(s.bitrate));
                w.number(u64::from(s.freq));
                w.number(u64::from(s.duration));
                w.token("nick", s.nick.as_bytes())?;
                w.ip(s.ip);
                w.number(u64::from(s.link_speed));
                if let Some(weight) = s.weight {
                    w.signed(weight);
                }
            }
            ServerMessage::DownloadAck(a) | ServerMessage::FirewalledDownloadAck(a) => {
                write_ack(w, a)?
            }
            ServerMessage::DownloadError { nick, name }
            | ServerMessage::UploadRefused { nick, name } => {
                w.token("nick", nick.as_bytes())?;
                w.quoted("file name", name)?;
            }
            ServerMessage::UserSignoff { nick }
            | ServerMessage::PingUser { nick }
            | ServerMessage::PongUser { nick } => w.token("nick", nick.as_bytes())?,
            ServerMessage::DirectBrowseRequest { nick, connect_to } => {
                w.token("nick", nick.as_bytes())?;
                if let Some((ip, port)) = connect_to {
                    w.ip(*ip);
                    w.number(u64::from(*port));
                }
            }
            ServerMessage::DirectBrowseAccept { nick, ip, port } => {
                w.token("nick", nick.as_bytes())?;
                w.ip(*ip);
                w.number(u64::from(*port));
            }
            ServerMessage::DirectBrowseError { nick, message } => {
                w.token("nick", nick.as_bytes())?;
                w.quoted("message", message)?;
            }
            ServerMessage::UsageStats(stats) => {
                for value in stats.fields() {
                    w.number(value);
                }
            }
            ServerMessage::BrowseEntry { nick, file } => {
                w.token("nick", nick.as_bytes())?;
                write_file_fields(w, file)?;
            }
            ServerMessage::BrowseEnd { nick, ip } => {
                w.token("nick", nick.as_bytes())?;
                if let Some(ip) = ip {
                    w.ip(*ip);
                }
            }
            ServerMessage::Stats {
                users,
                files,
                gigabytes,
            } => {
                w.number(*users);
                w.number(*files);
                w.number(*gigabytes);
            }
            ServerMessage::UploadRequest {
                nick,
                name,
                link_speed,
            } => {
                w.token("nick", nick.as_bytes())?;
                w.quoted("file name", name)?;
                if let Some(speed) = link_speed {
                    w.number(u64::from(*speed));
                }
            }
            ServerMessage::QueueLimitReached {
                nick,
                name,
                size,
                limit,
            } => {
                w.token("nick", nick.as_bytes())?;
                w.quoted("file name", name)?;
                w.number(*size);
                w.number(u64::from(*limit));
            }
        }
        Ok(())
    }
}

/// The full path of a batched file: `<directory>\<file>`, the separator
/// Napster clients use (not added when the directory already ends in one).
pub fn batch_path(directory: &[u8], file: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(directory.len() + 1 + file.len());
    path.extend_from_slice(directory);
    if !directory.is_empty() && !matches!(directory.last(), Some(b'\\') | Some(b'/')) {
        path.push(b'\\');
    }
    path.extend_from_slice(file);
    path
}
