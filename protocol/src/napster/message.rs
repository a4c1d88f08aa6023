//! OpenNap messages, typed: [`ClientMessage`] (client → server) and
//! [`ServerMessage`] (server → client).
//!
//! Several numbers mean different things in each direction (214 is a stats
//! request from a client and a stats line from the server; 750 carries the
//! client's nick one way and nothing the other), so the direction is chosen
//! by the type you decode into. A number that type does not know is kept as
//! `Unknown { kind, payload }`; a known number with a malformed payload is a
//! [`DecodeError`].

use super::fields::{FieldReader, FieldWriter};
use super::search::SearchQuery;
use super::{EncodeError, Frame, HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::error::{DecodeError, Result};
use std::net::Ipv4Addr;

/// Message numbers, named.
pub mod kind {
    pub const ERROR: u16 = 0;
    pub const LOGIN: u16 = 2;
    pub const LOGIN_ACK: u16 = 3;
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
    pub const SET_USER_LEVEL: u16 = 606;
    pub const UPLOAD_REQUEST: u16 = 607;
    pub const UPLOAD_ACCEPT: u16 = 608;
    pub const UPLOAD_REFUSED: u16 = 609;
    pub const KILL: u16 = 610;
    pub const BAN: u16 = 612;
    pub const UNBAN: u16 = 614;
    pub const SHOW_BANS: u16 = 615;
    pub const QUEUE_LIMIT: u16 = 619;
    pub const QUEUE_LIMIT_REACHED: u16 = 620;
    pub const MOTD: u16 = 621;
    pub const SERVER_PING: u16 = 750;
    pub const PING_USER: u16 = 751;
    pub const PONG_USER: u16 = 752;
    pub const SHARE_BATCH: u16 = 870;
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

/// What a client sends to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// 2.
    Login(Login),
    /// 6.
    NewUserLogin(NewUserLogin),
    /// 7: is this nick registered?
    NickCheck { nick: String },
    /// 100.
    Share(SharedFile),
    /// 102: the name is the whole payload, unquoted.
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
    /// 606: `<nick> <level>` (admin only); the level as sent.
    SetUserLevel { nick: String, level: Vec<u8> },
    /// 608: the sharer accepts a 607.
    UploadAccept { nick: String, name: Vec<u8> },
    /// 610: `<nick> ["<reason>"]`.
    Kill {
        nick: String,
        reason: Option<Vec<u8>>,
    },
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
    /// 750: the client's answer to a server ping, usually with its nick.
    ServerPing { nick: Option<String> },
    /// 751: ping another user.
    PingUser { nick: String },
    /// 752: answer to a 751.
    PongUser { nick: String },
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
    /// 750 with no data.
    ServerPing,
    /// 751: `<nick>` is pinging you.
    PingUser { nick: String },
    /// 752: `<nick>` answered your ping.
    PongUser { nick: String },
    /// Any other number, kept whole.
    Unknown { kind: u16, payload: Vec<u8> },
}

type EncodeResult = std::result::Result<(), EncodeError>;

/// Writes a frame header, lets `body` write the payload, then patches the
/// length; on error `out` is left as it was.
fn write_frame(
    kind: u16,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut FieldWriter<'_>) -> EncodeResult,
) -> EncodeResult {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&kind.to_le_bytes());
    let result = body(&mut FieldWriter::new(out));
    let len = out.len() - start - HEADER_LEN;
    if let Err(err) = result {
        out.truncate(start);
        return Err(err);
    }
    if len > MAX_PAYLOAD_LEN {
        out.truncate(start);
        return Err(EncodeError::TooLong { len });
    }
    let len_bytes = (len as u16).to_le_bytes();
    if let Some(slot) = out.get_mut(start..start + 2) {
        slot.copy_from_slice(&len_bytes);
    }
    Ok(())
}

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

/// A trailing optional reason: quoted as clients should send it, or bare
/// text as some do.
fn read_reason(r: &mut FieldReader<'_>) -> Option<Vec<u8>> {
    let rest = r.rest();
    if rest.is_empty() {
        return None;
    }
    let inner = match rest {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    Some(inner.to_vec())
}

fn nick_and_name(payload: &[u8]) -> Result<(String, Vec<u8>)> {
    let mut r = FieldReader::new(payload);
    let nick = r.string("nick")?;
    let name = r.quoted("file name")?.to_vec();
    r.finish()?;
    Ok((nick, name))
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
            ClientMessage::SetUserLevel { .. } => SET_USER_LEVEL,
            ClientMessage::UploadAccept { .. } => UPLOAD_ACCEPT,
            ClientMessage::Kill { .. } => KILL,
            ClientMessage::Ban { .. } => BAN,
            ClientMessage::Unban { .. } => UNBAN,
            ClientMessage::ShowBans => SHOW_BANS,
            ClientMessage::QueueLimit { .. } => QUEUE_LIMIT,
            ClientMessage::MotdRequest => MOTD,
            ClientMessage::ServerPing { .. } => SERVER_PING,
            ClientMessage::PingUser { .. } => PING_USER,
            ClientMessage::PongUser { .. } => PONG_USER,
            ClientMessage::Unknown { kind, .. } => *kind,
        }
    }

    /// Decodes a frame received by a server.
    pub fn from_frame(frame: &Frame) -> Result<ClientMessage> {
        Self::parse(frame.kind, &frame.payload)
    }

    /// Decodes the payload of message number `kind`.
    pub fn parse(kind: u16, payload: &[u8]) -> Result<ClientMessage> {
        use kind::*;
        let mut r = FieldReader::new(payload);
        let msg = match kind {
            LOGIN => {
                let login = Login {
                    nick: r.string("nick")?,
                    password: r.token("password")?.to_vec(),
                    port: r.number("port")?,
                    client_info: r.quoted("client info")?.to_vec(),
                    link_speed: r.number("link speed")?,
                    build: if r.at_end() {
                        None
                    } else {
                        Some(r.number("build")?)
                    },
                };
                r.finish()?;
                ClientMessage::Login(login)
            }
            NEW_USER_LOGIN => {
                let login = NewUserLogin {
                    nick: r.string("nick")?,
                    password: r.token("password")?.to_vec(),
                    port: r.number("port")?,
                    client_info: r.quoted("client info")?.to_vec(),
                    link_speed: r.number("link speed")?,
                    email: r.token("email")?.to_vec(),
                };
                r.finish()?;
                ClientMessage::NewUserLogin(login)
            }
            NICK_CHECK => {
                let nick = r.string("nick")?;
                r.finish()?;
                ClientMessage::NickCheck { nick }
            }
            SHARE => {
                let name = r.quoted("file name")?;
                let file = read_file_fields(&mut r, name)?;
                r.finish()?;
                ClientMessage::Share(file)
            }
            UNSHARE => {
                if payload.is_empty() {
                    return Err(DecodeError::BadField("file name"));
                }
                ClientMessage::Unshare {
                    name: payload.to_vec(),
                }
            }
            UNSHARE_ALL => {
                empty(payload)?;
                ClientMessage::UnshareAll
            }
            SHARE_BATCH => {
                let directory = r.quoted("directory")?.to_vec();
                let mut files = Vec::new();
                while !r.at_end() {
                    let name = r.quoted("file name")?;
                    files.push(read_file_fields(&mut r, name)?);
                }
                if files.is_empty() {
                    return Err(DecodeError::BadField("file name"));
                }
                ClientMessage::ShareBatch { directory, files }
            }
            SEARCH => ClientMessage::Search(SearchQuery::parse(payload)?),
            DOWNLOAD_REQUEST => {
                let (nick, name) = nick_and_name(payload)?;
                ClientMessage::DownloadRequest { nick, name }
            }
            FIREWALLED_DOWNLOAD_REQUEST => {
                let (nick, name) = nick_and_name(payload)?;
                ClientMessage::FirewalledDownloadRequest { nick, name }
            }
            UPLOAD_ACCEPT => {
                let (nick, name) = nick_and_name(payload)?;
                ClientMessage::UploadAccept { nick, name }
            }
            BROWSE => {
                let nick = r.string("nick")?;
                r.finish()?;
                ClientMessage::Browse { nick }
            }
            STATS => {
                empty(payload)?;
                ClientMessage::StatsRequest
            }
            DOWNLOAD_STARTED => {
                empty(payload)?;
                ClientMessage::DownloadStarted
            }
            DOWNLOAD_FINISHED => {
                empty(payload)?;
                ClientMessage::DownloadFinished
            }
            UPLOAD_STARTED => {
                empty(payload)?;
                ClientMessage::UploadStarted
            }
            UPLOAD_FINISHED => {
                empty(payload)?;
                ClientMessage::UploadFinished
            }
            SET_USER_LEVEL => {
                let nick = r.string("nick")?;
                let level = r.token("level")?.to_vec();
                r.finish()?;
                ClientMessage::SetUserLevel { nick, level }
            }
            KILL => ClientMessage::Kill {
                nick: r.string("nick")?,
                reason: read_reason(&mut r),
            },
            BAN => ClientMessage::Ban {
                target: r.string("ban target")?,
                reason: read_reason(&mut r),
            },
            UNBAN => ClientMessage::Unban {
                target: r.string("ban target")?,
                reason: read_reason(&mut r),
            },
            SHOW_BANS => {
                empty(payload)?;
                ClientMessage::ShowBans
            }
            QUEUE_LIMIT => {
                let nick = r.string("nick")?;
                let name = r.quoted("file name")?.to_vec();
                let limit = r.number("queue limit")?;
                r.finish()?;
                ClientMessage::QueueLimit { nick, name, limit }
            }
            MOTD => {
                empty(payload)?;
                ClientMessage::MotdRequest
            }
            SERVER_PING => {
                let nick = if r.at_end() {
                    None
                } else {
                    Some(r.string("nick")?)
                };
                r.finish()?;
                ClientMessage::ServerPing { nick }
            }
            PING_USER => {
                let nick = r.string("nick")?;
                r.finish()?;
                ClientMessage::PingUser { nick }
            }
            PONG_USER => {
                let nick = r.string("nick")?;
                r.finish()?;
                ClientMessage::PongUser { nick }
            }
            other => ClientMessage::Unknown {
                kind: other,
                payload: payload.to_vec(),
            },
        };
        Ok(msg)
    }

    /// Appends the whole frame (header and payload) to `out`. On error
    /// nothing is appended.
    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        write_frame(self.kind(), out, |w| self.write_payload(w))
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
            | ClientMessage::PingUser { nick }
            | ClientMessage::PongUser { nick }
            | ClientMessage::ServerPing { nick: Some(nick) } => {
                w.token("nick", nick.as_bytes())?;
            }
            ClientMessage::Share(f) => write_file_fields(w, f)?,
            ClientMessage::Unshare { name } => {
                // The one unquoted name: the whole payload. Leading or
                // trailing spaces are part of it and survive a round trip.
                if name.is_empty() {
                    return Err(EncodeError::BadToken("file name"));
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
            | ClientMessage::ServerPing { nick: None } => {}
            ClientMessage::Unknown { payload, .. } => {
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
            ServerMessage::ServerPing => SERVER_PING,
            ServerMessage::PingUser { .. } => PING_USER,
            ServerMessage::PongUser { .. } => PONG_USER,
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
                let (nick, name) = nick_and_name(payload)?;
                ServerMessage::DownloadError { nick, name }
            }
            UPLOAD_REFUSED => {
                let (nick, name) = nick_and_name(payload)?;
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
            SERVER_PING => {
                empty(payload)?;
                ServerMessage::ServerPing
            }
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
        write_frame(self.kind(), out, |w| self.write_payload(w))
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
            | ServerMessage::Unknown { payload: text, .. } => {
                if !text.is_empty() {
                    w.raw(text);
                }
            }
            ServerMessage::NickNotRegistered
            | ServerMessage::NickRegistered
            | ServerMessage::NickInvalid
            | ServerMessage::SearchEnd
            | ServerMessage::ServerPing => {}
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
