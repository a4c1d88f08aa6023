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
//! Each payload has one codec whichever direction it travels: a payload of
//! several fields is a type of [`payload`] implementing
//! [`Fields`](super::codec::Fields) (`nick "file"` is [`UserFile`] in a 203
//! from a client and in a 206 from the server); a payload of one field is a
//! named variant read by that field's reader (a nick, a verbatim text), the
//! same in both enums. The enums only say which number carries which
//! payload.
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

pub mod payload;

pub use payload::{
    batch_path, AdminTarget, BanEntry, BatchFile, BrowseEnd, BrowseEntry, ClientVersionCount,
    DirectBrowseAddress, DirectBrowseError, DirectBrowseRequest, DownloadAck, LevelChange, Login,
    NewUserLogin, PasswordChange, QueueLimit, QueueLimitReached, SearchResult, SearchResultRef,
    ServerStats, ShareBatch, SharedFile, SharedFileRef, UploadRequest, UsageStats, UserFile,
    WhoisDetails, WhoisResponse, Whowas,
};

use super::fields::{FieldReader, FieldWriter};
use super::search::SearchQuery;
use super::{encode_fields, EncodeError, Frame};
use crate::error::{DecodeError, Result};

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
    /// 870.
    ShareBatch(ShareBatch),
    /// 200.
    Search(SearchQuery),
    /// 203: `<nick> "<file>"`.
    DownloadRequest(UserFile),
    /// 500: ask a firewalled sharer to push.
    FirewalledDownloadRequest(UserFile),
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
    /// 606 (admin only).
    SetUserLevel(LevelChange),
    /// 608: the sharer accepts a 607.
    UploadAccept(UserFile),
    /// 610: `<nick> ["<reason>"]` (the reason is one field: quoted, or a
    /// single word).
    Kill(AdminTarget),
    /// 611: `<nick>`, delete the account.
    Nuke { nick: String },
    /// 612: `<nick|ip> ["<reason>"]`.
    Ban(AdminTarget),
    /// 614: `<nick|ip> ["<reason>"]`.
    Unban(AdminTarget),
    /// 615: list bans.
    ShowBans,
    /// 619.
    QueueLimit(QueueLimit),
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
    /// 753: an admin sets a password.
    ChangePassword(PasswordChange),
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
    DownloadError(UserFile),
    /// 210: user signed off / browse of an absent user.
    UserSignoff { nick: String },
    /// 212.
    BrowseEntry(BrowseEntry),
    /// 213.
    BrowseEnd(BrowseEnd),
    /// 214.
    Stats(ServerStats),
    /// 404: error after login, free text.
    ErrorMessage { message: Vec<u8> },
    /// 501: tell a firewalled sharer where to push.
    FirewalledDownloadAck(DownloadAck),
    /// 604.
    WhoisResponse(WhoisResponse),
    /// 605.
    Whowas(Whowas),
    /// 607.
    UploadRequest(UploadRequest),
    /// 609: the sharer did not accept.
    UploadRefused(UserFile),
    /// 615 with no data: the end of a ban list.
    BanListEnd,
    /// 616.
    BanEntry(BanEntry),
    /// 620.
    QueueLimitReached(QueueLimitReached),
    /// 621: one line of the message of the day.
    Motd { line: Vec<u8> },
    /// 640.
    DirectBrowseRequest(DirectBrowseRequest),
    /// 641.
    DirectBrowseAccept(DirectBrowseAddress),
    /// 642.
    DirectBrowseError(DirectBrowseError),
    /// 750: the answer to a server ping, carrying its arguments back.
    ServerPing { args: Vec<u8> },
    /// 751: `<nick>` is pinging you.
    PingUser { nick: String },
    /// 752: `<nick>` answered your ping.
    PongUser { nick: String },
    /// 10112: one linked server as the server words it; an empty line ends
    /// the list.
    ServerLinks { line: Vec<u8> },
    /// 10115: server usage.
    UsageStats(UsageStats),
    /// 10118: one client version and its users.
    ClientVersionCount(ClientVersionCount),
    /// 10118 with no data: the end of the client versions.
    ClientVersionsEnd,
    /// Any other number, kept whole.
    Unknown { kind: u16, payload: Vec<u8> },
}

type EncodeResult = std::result::Result<(), EncodeError>;

// The payloads of one field, the same in both directions.

/// A payload that is one nick.
fn read_nick(r: &mut FieldReader<'_>) -> Result<String> {
    r.string("nick")
}

fn write_nick(w: &mut FieldWriter<'_>, nick: &str) -> EncodeResult {
    w.token("nick", nick.as_bytes())
}

/// A payload that is one piece of free text, kept byte for byte (spaces
/// included): error messages, a ping's arguments, unknown messages.
fn read_text(r: &mut FieldReader<'_>) -> Vec<u8> {
    r.verbatim().to_vec()
}

fn write_text(w: &mut FieldWriter<'_>, text: &[u8]) {
    if !text.is_empty() {
        w.raw(text);
    }
}

/// The name of an unshare (102): the whole payload (it may hold spaces),
/// unless it is quoted: then it is one field like any other.
fn read_unshare_name(r: &mut FieldReader<'_>) -> Result<Vec<u8>> {
    let whole = r.clone().verbatim();
    let mut quoted = r.clone();
    let name = match quoted.next_is_quoted().then(|| quoted.quoted("file name")) {
        Some(Ok(name)) => {
            *r = quoted;
            name
        }
        _ => {
            r.verbatim();
            whole
        }
    };
    if name.is_empty() {
        return Err(DecodeError::BadField("file name"));
    }
    Ok(name.to_vec())
}

fn write_unshare_name(w: &mut FieldWriter<'_>, name: &[u8]) -> EncodeResult {
    // The one unquoted name: the whole payload. Leading or trailing spaces
    // are part of it and survive a round trip; a double quote would not (no
    // name can hold one).
    if name.is_empty() {
        return Err(EncodeError::BadToken("file name"));
    }
    if name.contains(&b'"') {
        return Err(EncodeError::QuoteInField("file name"));
    }
    w.raw(name);
    Ok(())
}

/// The parts of a message type both directions share: decoding a frame or
/// a payload, encoding a frame. The reader decides the tolerance: what a
/// server receives is read ignoring trailing fields, what a client
/// receives strictly.
macro_rules! message_codec {
    ($message:ident, $direction:literal, $reader:expr) => {
        impl $message {
            #[doc = concat!("Decodes a frame received by a ", $direction, ".")]
            pub fn from_frame(frame: &Frame) -> Result<$message> {
                Self::parse(frame.kind, &frame.payload)
            }

            /// Decodes the payload of message number `kind` (see the module
            /// docs for what is tolerated).
            pub fn parse(kind: u16, payload: &[u8]) -> Result<$message> {
                let mut r: FieldReader<'_> = $reader(payload);
                let message = Self::read(kind, &mut r)?;
                r.finish()?;
                Ok(message)
            }

            /// Appends the whole frame (header and payload) to `out`. On
            /// error nothing is appended.
            pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
                encode_fields(self.kind(), out, |w| self.write(w))
            }

            /// The whole frame as a new buffer.
            pub fn to_bytes(&self) -> std::result::Result<Vec<u8>, EncodeError> {
                let mut out = Vec::new();
                self.encode(&mut out)?;
                Ok(out)
            }
        }
    };
}

message_codec!(ClientMessage, "server", |payload| {
    // The one place the tolerance is decided.
    FieldReader::new(payload).ignoring_trailing_fields()
});
message_codec!(ServerMessage, "client", FieldReader::new);

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
            ClientMessage::ShareBatch(_) => SHARE_BATCH,
            ClientMessage::Search(_) => SEARCH,
            ClientMessage::DownloadRequest(_) => DOWNLOAD_REQUEST,
            ClientMessage::FirewalledDownloadRequest(_) => FIREWALLED_DOWNLOAD_REQUEST,
            ClientMessage::Browse { .. } => BROWSE,
            ClientMessage::StatsRequest => STATS,
            ClientMessage::DownloadStarted => DOWNLOAD_STARTED,
            ClientMessage::DownloadFinished => DOWNLOAD_FINISHED,
            ClientMessage::UploadStarted => UPLOAD_STARTED,
            ClientMessage::UploadFinished => UPLOAD_FINISHED,
            ClientMessage::Whois { .. } => WHOIS,
            ClientMessage::SetUserLevel(_) => SET_USER_LEVEL,
            ClientMessage::UploadAccept(_) => UPLOAD_ACCEPT,
            ClientMessage::Kill(_) => KILL,
            ClientMessage::Nuke { .. } => NUKE,
            ClientMessage::Ban(_) => BAN,
            ClientMessage::Unban(_) => UNBAN,
            ClientMessage::ShowBans => SHOW_BANS,
            ClientMessage::QueueLimit(_) => QUEUE_LIMIT,
            ClientMessage::MotdRequest => MOTD,
            ClientMessage::DirectBrowse { .. } => DIRECT_BROWSE,
            ClientMessage::DirectBrowseAccept { .. } => DIRECT_BROWSE_ACCEPT,
            ClientMessage::ServerPing { .. } => SERVER_PING,
            ClientMessage::PingUser { .. } => PING_USER,
            ClientMessage::PongUser { .. } => PONG_USER,
            ClientMessage::ChangePassword(_) => CHANGE_PASSWORD,
            ClientMessage::VersionRequest => SERVER_VERSION,
            ClientMessage::LinksRequest => SERVER_LINKS,
            ClientMessage::UsageStatsRequest => USAGE_STATS,
            ClientMessage::ClientVersionsRequest => CLIENT_VERSIONS,
            ClientMessage::Unknown { kind, .. } => *kind,
        }
    }

    fn read(kind: u16, r: &mut FieldReader<'_>) -> Result<ClientMessage> {
        use kind::*;
        use ClientMessage as M;
        Ok(match kind {
            LOGIN => M::Login(r.read()?),
            VERSION_CHECK => M::VersionCheck {
                version: if r.at_end() {
                    Vec::new()
                } else {
                    r.token("version")?.to_vec()
                },
            },
            NEW_USER_LOGIN => M::NewUserLogin(r.read()?),
            NICK_CHECK => M::NickCheck {
                nick: read_nick(r)?,
            },
            SHARE => M::Share(r.read()?),
            UNSHARE => M::Unshare {
                name: read_unshare_name(r)?,
            },
            UNSHARE_ALL => M::UnshareAll,
            SHARE_BATCH => M::ShareBatch(r.read()?),
            SEARCH => M::Search(SearchQuery::parse(r.verbatim())?),
            DOWNLOAD_REQUEST => M::DownloadRequest(r.read()?),
            FIREWALLED_DOWNLOAD_REQUEST => M::FirewalledDownloadRequest(r.read()?),
            UPLOAD_ACCEPT => M::UploadAccept(r.read()?),
            BROWSE => M::Browse {
                nick: read_nick(r)?,
            },
            STATS => M::StatsRequest,
            DOWNLOAD_STARTED => M::DownloadStarted,
            DOWNLOAD_FINISHED => M::DownloadFinished,
            UPLOAD_STARTED => M::UploadStarted,
            UPLOAD_FINISHED => M::UploadFinished,
            WHOIS => M::Whois {
                nick: read_nick(r)?,
            },
            SET_USER_LEVEL => M::SetUserLevel(r.read()?),
            KILL => M::Kill(r.read()?),
            NUKE => M::Nuke {
                nick: read_nick(r)?,
            },
            BAN => M::Ban(r.read()?),
            UNBAN => M::Unban(r.read()?),
            SHOW_BANS => M::ShowBans,
            QUEUE_LIMIT => M::QueueLimit(r.read()?),
            MOTD => M::MotdRequest,
            DIRECT_BROWSE => M::DirectBrowse {
                nick: read_nick(r)?,
            },
            DIRECT_BROWSE_ACCEPT => M::DirectBrowseAccept {
                nick: read_nick(r)?,
            },
            SERVER_PING => M::ServerPing { args: read_text(r) },
            PING_USER => M::PingUser {
                nick: read_nick(r)?,
            },
            PONG_USER => M::PongUser {
                nick: read_nick(r)?,
            },
            CHANGE_PASSWORD => M::ChangePassword(r.read()?),
            SERVER_VERSION => M::VersionRequest,
            SERVER_LINKS => M::LinksRequest,
            USAGE_STATS => M::UsageStatsRequest,
            CLIENT_VERSIONS => M::ClientVersionsRequest,
            other => M::Unknown {
                kind: other,
                payload: read_text(r),
            },
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        use ClientMessage as M;
        match self {
            M::Login(login) => w.write(login),
            M::NewUserLogin(login) => w.write(login),
            M::VersionCheck { version } if version.is_empty() => Ok(()),
            M::VersionCheck { version } => w.token("version", version),
            M::NickCheck { nick }
            | M::Browse { nick }
            | M::Whois { nick }
            | M::Nuke { nick }
            | M::DirectBrowse { nick }
            | M::DirectBrowseAccept { nick }
            | M::PingUser { nick }
            | M::PongUser { nick } => write_nick(w, nick),
            M::Share(file) => w.write(file),
            M::Unshare { name } => write_unshare_name(w, name),
            M::ShareBatch(batch) => w.write(batch),
            M::Search(query) => {
                let mut payload = Vec::new();
                query.encode_payload(&mut payload)?;
                write_text(w, &payload);
                Ok(())
            }
            M::DownloadRequest(file)
            | M::FirewalledDownloadRequest(file)
            | M::UploadAccept(file) => w.write(file),
            M::SetUserLevel(change) => w.write(change),
            M::Kill(target) | M::Ban(target) | M::Unban(target) => w.write(target),
            M::ChangePassword(change) => w.write(change),
            M::QueueLimit(limit) => w.write(limit),
            M::UnshareAll
            | M::StatsRequest
            | M::DownloadStarted
            | M::DownloadFinished
            | M::UploadStarted
            | M::UploadFinished
            | M::ShowBans
            | M::MotdRequest
            | M::VersionRequest
            | M::LinksRequest
            | M::UsageStatsRequest
            | M::ClientVersionsRequest => Ok(()),
            M::ServerPing { args: text } | M::Unknown { payload: text, .. } => {
                write_text(w, text);
                Ok(())
            }
        }
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
            ServerMessage::DownloadError(_) => DOWNLOAD_ERROR,
            ServerMessage::UserSignoff { .. } => USER_SIGNOFF,
            ServerMessage::BrowseEntry(_) => BROWSE_ENTRY,
            ServerMessage::BrowseEnd(_) => BROWSE_END,
            ServerMessage::Stats(_) => STATS,
            ServerMessage::ErrorMessage { .. } => ERROR_MESSAGE,
            ServerMessage::FirewalledDownloadAck(_) => FIREWALLED_DOWNLOAD_ACK,
            ServerMessage::WhoisResponse(_) => WHOIS_RESPONSE,
            ServerMessage::Whowas(_) => WHOWAS,
            ServerMessage::UploadRequest(_) => UPLOAD_REQUEST,
            ServerMessage::UploadRefused(_) => UPLOAD_REFUSED,
            ServerMessage::BanListEnd => SHOW_BANS,
            ServerMessage::BanEntry(_) => BAN_ENTRY,
            ServerMessage::QueueLimitReached(_) => QUEUE_LIMIT_REACHED,
            ServerMessage::Motd { .. } => MOTD,
            ServerMessage::DirectBrowseRequest(_) => DIRECT_BROWSE,
            ServerMessage::DirectBrowseAccept(_) => DIRECT_BROWSE_ACCEPT,
            ServerMessage::DirectBrowseError(_) => DIRECT_BROWSE_ERROR,
            ServerMessage::ServerPing { .. } => SERVER_PING,
            ServerMessage::PingUser { .. } => PING_USER,
            ServerMessage::PongUser { .. } => PONG_USER,
            ServerMessage::ServerLinks { .. } => SERVER_LINKS,
            ServerMessage::UsageStats(_) => USAGE_STATS,
            ServerMessage::ClientVersionCount(_) | ServerMessage::ClientVersionsEnd => {
                CLIENT_VERSIONS
            }
            ServerMessage::Unknown { kind, .. } => *kind,
        }
    }

    fn read(kind: u16, r: &mut FieldReader<'_>) -> Result<ServerMessage> {
        use kind::*;
        use ServerMessage as M;
        Ok(match kind {
            ERROR => M::Error {
                message: read_text(r),
            },
            LOGIN_ACK => M::LoginAck {
                email: read_text(r),
            },
            VERSION_CHECK => M::VersionCheck,
            NICK_NOT_REGISTERED => M::NickNotRegistered,
            NICK_REGISTERED => M::NickRegistered,
            NICK_INVALID => M::NickInvalid,
            SEARCH_RESULT => M::SearchResult(r.read()?),
            SEARCH_END => M::SearchEnd,
            DOWNLOAD_ACK => M::DownloadAck(r.read()?),
            FIREWALLED_DOWNLOAD_ACK => M::FirewalledDownloadAck(r.read()?),
            DOWNLOAD_ERROR => M::DownloadError(r.read()?),
            UPLOAD_REFUSED => M::UploadRefused(r.read()?),
            USER_SIGNOFF => M::UserSignoff {
                nick: read_nick(r)?,
            },
            BROWSE_ENTRY => M::BrowseEntry(r.read()?),
            BROWSE_END => M::BrowseEnd(r.read()?),
            STATS => M::Stats(r.read()?),
            ERROR_MESSAGE => M::ErrorMessage {
                message: read_text(r),
            },
            WHOIS_RESPONSE => M::WhoisResponse(r.read()?),
            WHOWAS => M::Whowas(r.read()?),
            UPLOAD_REQUEST => M::UploadRequest(r.read()?),
            SHOW_BANS => M::BanListEnd,
            BAN_ENTRY => M::BanEntry(r.read()?),
            QUEUE_LIMIT_REACHED => M::QueueLimitReached(r.read()?),
            MOTD => M::Motd { line: read_text(r) },
            DIRECT_BROWSE => M::DirectBrowseRequest(r.read()?),
            DIRECT_BROWSE_ACCEPT => M::DirectBrowseAccept(r.read()?),
            DIRECT_BROWSE_ERROR => M::DirectBrowseError(r.read()?),
            SERVER_PING => M::ServerPing { args: read_text(r) },
            PING_USER => M::PingUser {
                nick: read_nick(r)?,
            },
            PONG_USER => M::PongUser {
                nick: read_nick(r)?,
            },
            SERVER_LINKS => M::ServerLinks { line: read_text(r) },
            USAGE_STATS => M::UsageStats(r.read()?),
            CLIENT_VERSIONS if r.at_end() => M::ClientVersionsEnd,
            CLIENT_VERSIONS => M::ClientVersionCount(r.read()?),
            other => M::Unknown {
                kind: other,
                payload: read_text(r),
            },
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        use ServerMessage as M;
        match self {
            M::Error { message: text }
            | M::LoginAck { email: text }
            | M::ErrorMessage { message: text }
            | M::Motd { line: text }
            | M::ServerPing { args: text }
            | M::ServerLinks { line: text }
            | M::Unknown { payload: text, .. } => {
                write_text(w, text);
                Ok(())
            }
            M::NickNotRegistered
            | M::NickRegistered
            | M::NickInvalid
            | M::SearchEnd
            | M::VersionCheck
            | M::BanListEnd
            | M::ClientVersionsEnd => Ok(()),
            M::SearchResult(result) => w.write(result),
            M::DownloadAck(ack) | M::FirewalledDownloadAck(ack) => w.write(ack),
            M::DownloadError(file) | M::UploadRefused(file) => w.write(file),
            M::UserSignoff { nick } | M::PingUser { nick } | M::PongUser { nick } => {
                write_nick(w, nick)
            }
            M::BrowseEntry(entry) => w.write(entry),
            M::BrowseEnd(end) => w.write(end),
            M::Stats(stats) => w.write(stats),
            M::WhoisResponse(whois) => w.write(whois),
            M::Whowas(whowas) => w.write(whowas),
            M::UploadRequest(request) => w.write(request),
            M::BanEntry(ban) => w.write(ban),
            M::QueueLimitReached(notice) => w.write(notice),
            M::DirectBrowseRequest(request) => w.write(request),
            M::DirectBrowseAccept(address) => w.write(address),
            M::DirectBrowseError(error) => w.write(error),
            M::UsageStats(stats) => w.write(stats),
            M::ClientVersionCount(count) => w.write(count),
        }
    }
}
