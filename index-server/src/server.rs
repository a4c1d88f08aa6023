//! The server state: every session, users by nick, the catalog of shared
//! files, the account store; and what each client message does to them.
//!
//! Pure protocol logic: the reactor hands it connections, frames and the
//! current time, and it answers with frames to send and connections to
//! close (an [`Outbox`]). Messages are decoded and encoded with
//! `hazel_protocol::napster`. Behaviour follows opennap-ng where the written
//! specification and opennap-ng differ.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use hazel_protocol::napster::{
    batch_path, AdminTarget, BanEntry, BrowseEnd, BrowseEntry, ClientMessage, ClientVersionCount,
    DirectBrowseAddress, DirectBrowseError, DirectBrowseRequest, DownloadAck, LevelChange,
    PasswordChange, QueueLimit, QueueLimitReached, SearchQuery, ServerMessage, ServerStats,
    ShareBatch, SharedFile, UploadRequest, UsageStats, UserFile, WhoisDetails, WhoisResponse,
    Whowas,
};
use hazel_protocol::text::{escape_bytes, Escaped};
use log::{debug, info, warn};

use crate::catalog::{has_search_words, AddRefused, Catalog};
use crate::config::{Config, Registration};
use crate::metrics::{DropReason, Metrics};
use crate::session::{ConnId, Phase, Session, UserInfo};
use crate::store::{self, Account, BanKind, Level, PasswordCost, Store, StoreError};
/// Message numbers the server reads or writes.
pub mod kind {
    pub use hazel_protocol::napster::message::kind::*;
    /// 14: a Napster client's registration details (name, city …).
    pub const REGISTRATION_INFO: u16 = 14;
    /// 300: the port-check request.
    pub const CHECK_PORT: u16 = 300;
    /// 920: Napster 2.0 BETA 8's capability announcement (TekNap sends it
    /// too, before login).
    pub const CAPABILITIES: u16 = 920;
}

/// Numbers opennap-ng accepts and ignores; every other unknown number gets
/// a 404 after login.
const SILENTLY_IGNORED: [u16; 3] = [
    kind::REGISTRATION_INFO,
    kind::CHECK_PORT,
    kind::CAPABILITIES,
];

/// Longest nick accepted (opennap-ng's default).
pub const MAX_NICK_LEN: usize = 19;
/// Download requests a sharer may have outstanding (607 sent, no 608 yet).
const MAX_PENDING_UPLOADS: usize = 64;
/// Direct browses (640) one client may have waiting for an answer.
const MAX_PENDING_BROWSES: usize = 16;

/// Frames to write and connections to close, produced by one call.
#[derive(Debug, Default)]
pub struct Outbox {
    frames: Vec<(ConnId, Vec<u8>)>,
    close: Vec<ConnId>,
    jobs: Vec<PasswordJob>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// The buffer for `to`: consecutive frames to one connection share a
    /// buffer, so a search's results leave in one write.
    pub fn buffer(&mut self, to: ConnId) -> &mut Vec<u8> {
        if self.frames.last().map(|(id, _)| *id) != Some(to) {
            self.frames.push((to, Vec::with_capacity(256)));
        }
        let last = self.frames.len() - 1;
        &mut self.frames[last].1
    }

    /// Queues one typed message for `to`.
    pub fn message(&mut self, to: ConnId, message: &ServerMessage) {
        if let Err(e) = message.encode(self.buffer(to)) {
            warn!("cannot encode {} for {to:?}: {e}", message.kind());
        }
    }

    /// Asks for `id` to be closed once what is queued for it is written.
    pub fn close(&mut self, id: ConnId) {
        if !self.close.contains(&id) {
            self.close.push(id);
        }
    }

    /// Takes the queued frames (by connection) and closes.
    pub fn take(&mut self) -> (Vec<(ConnId, Vec<u8>)>, Vec<ConnId>) {
        (
            std::mem::take(&mut self.frames),
            std::mem::take(&mut self.close),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.close.is_empty() && self.jobs.is_empty()
    }

    /// Queues slow password work (see [`PasswordJob`]).
    pub fn job(&mut self, job: PasswordJob) {
        self.jobs.push(job);
    }

    /// Takes the queued password jobs.
    pub fn take_jobs(&mut self) -> Vec<PasswordJob> {
        std::mem::take(&mut self.jobs)
    }

    /// Connections asked to be closed so far.
    pub fn closing(&self) -> &[ConnId] {
        &self.close
    }
}

/// Password work too slow for the event loop (argon2 takes tens of
/// milliseconds by design): the reactor runs it on a worker thread and hands
/// the outcome back through [`Server::on_password_result`]. Until then the
/// connection's further input waits unread.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordJob {
    /// Check a login's password against the stored hash.
    Verify {
        conn: ConnId,
        hash: String,
        password: Vec<u8>,
    },
    /// Hash a new user's password.
    Hash {
        conn: ConnId,
        password: Vec<u8>,
        cost: PasswordCost,
    },
}

impl std::fmt::Debug for PasswordJob {
    // Never print a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordJob::Verify { conn, .. } => write!(f, "Verify({conn:?})"),
            PasswordJob::Hash { conn, .. } => write!(f, "Hash({conn:?})"),
        }
    }
}

/// The result of a [`PasswordJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordOutcome {
    Verified(bool),
    /// The PHC string, or None if hashing failed.
    Hashed(Option<String>),
    /// The worker could not take the job (queue full or gone).
    Unavailable,
}

impl PasswordJob {
    pub fn conn(&self) -> ConnId {
        match self {
            PasswordJob::Verify { conn, .. } | PasswordJob::Hash { conn, .. } => *conn,
        }
    }

    /// Does the work (slow; call it off the event loop).
    pub fn run(self) -> PasswordOutcome {
        match self {
            PasswordJob::Verify { hash, password, .. } => {
                PasswordOutcome::Verified(store::verify_password(&hash, &password))
            }
            PasswordJob::Hash { password, cost, .. } => {
                PasswordOutcome::Hashed(store::hash_password(cost, &password).ok())
            }
        }
    }
}

/// A login waiting for its password job.
struct PendingLogin {
    request: LoginRequest,
    /// The stored account for a login (2); None for a registration (6).
    account: Option<Account>,
}

/// A download the server asked a sharer about (607), awaiting 608.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingUpload {
    downloader: ConnId,
    file: Vec<u8>,
}

/// A direct browse the server passed on (640), awaiting the browsed
/// client's accept (641).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingBrowse {
    browsee: ConnId,
    browsee_nick: String,
    deadline: Instant,
}

/// The whole server state.
pub struct Server {
    config: Config,
    store: Store,
    pub metrics: Metrics,
    sessions: HashMap<ConnId, Session>,
    /// Online users by lower-cased nick.
    nicks: HashMap<String, ConnId>,
    per_ip: HashMap<Ipv4Addr, usize>,
    catalog: Catalog,
    pending: HashMap<ConnId, Vec<PendingUpload>>,
    /// Direct browses by requester.
    browses: HashMap<ConnId, Vec<PendingBrowse>>,
    authenticating: HashMap<ConnId, PendingLogin>,
    /// Wall-clock start, Unix seconds (for 10115).
    started_unix: u64,
    next_stats: Instant,
    next_memory_sample: Instant,
}

/// How often the index's memory use is measured for the metrics.
const MEMORY_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

fn nick_key(nick: &str) -> String {
    nick.to_ascii_lowercase()
}

/// opennap-ng's nick rule, simplified: 1–19 printable ASCII characters, none
/// of which would break a message (`"`, space) or look like a path.
pub fn valid_nick(nick: &[u8]) -> bool {
    !nick.is_empty()
        && nick.len() <= MAX_NICK_LEN
        && nick
            .iter()
            .all(|&b| b.is_ascii_graphic() && !b"\"\\/:,%*#".contains(&b))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn error_message(message: impl Into<Vec<u8>>) -> ServerMessage {
    ServerMessage::ErrorMessage {
        message: message.into(),
    }
}

/// A login (2) or new-user login (6), whichever arrived.
struct LoginRequest {
    nick: String,
    password: Vec<u8>,
    port: u16,
    client_info: Vec<u8>,
    link_speed: u32,
    /// Present for a new-user login.
    email: Option<Vec<u8>>,
}

impl Server {
    pub fn new(config: Config, mut store: Store, now: Instant) -> Server {
        for admin in &config.admins {
            match store.set_level(admin, Level::Admin) {
                Ok(true) => info!("{} is an admin", Escaped::new(admin)),
                Ok(false) => {}
                Err(e) => warn!("cannot make {} an admin: {e}", Escaped::new(admin)),
            }
        }
        let next_stats = now + config.stats_interval;
        Server {
            config,
            store,
            metrics: Metrics::new(now),
            sessions: HashMap::new(),
            nicks: HashMap::new(),
            per_ip: HashMap::new(),
            catalog: Catalog::new(),
            pending: HashMap::new(),
            browses: HashMap::new(),
            authenticating: HashMap::new(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            next_stats,
            next_memory_sample: now,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn users(&self) -> usize {
        self.nicks.len()
    }

    pub fn connections(&self) -> usize {
        self.sessions.len()
    }

    fn refresh_gauges(&mut self) {
        self.metrics.users = self.nicks.len() as u64;
        self.metrics.files = self.catalog.total_files();
        self.metrics.connections = self.sessions.len() as u64;
    }

    /// A new connection from `ip`. Refused (error frame + close) if the
    /// server is full, the address has too many connections, or is banned.
    pub fn on_connect(&mut self, id: ConnId, ip: Ipv4Addr, now: Instant, out: &mut Outbox) -> bool {
        let refusal = if self.sessions.len() >= self.config.max_connections {
            Some((DropReason::MaxConnections, "Server is full".to_string()))
        } else if self.config.clones_per_ip > 0
            && self.per_ip.get(&ip).copied().unwrap_or(0) >= self.config.clones_per_ip
        {
            Some((
                DropReason::ClonesPerIp,
                "Too many connections from your address".to_string(),
            ))
        } else {
            match self.store.ip_ban(ip) {
                Ok(Some(ban)) => Some((
                    DropReason::Banned,
                    format!("You are banned from this server: {}", ban.reason),
                )),
                Ok(None) => None,
                Err(e) => {
                    warn!("ban lookup for {ip} failed: {e}");
                    None
                }
            }
        };
        if let Some((reason, message)) = refusal {
            info!("connection from {ip} refused: {}", Escaped::new(&message));
            self.metrics.count_drop(reason);
            out.message(
                id,
                &ServerMessage::Error {
                    message: message.into(),
                },
            );
            out.close(id);
            return false;
        }
        *self.per_ip.entry(ip).or_insert(0) += 1;
        self.sessions.insert(id, Session::new(id, ip, now));
        self.refresh_gauges();
        true
    }

    /// The connection is gone (closed by either side): forget the user.
    pub fn on_disconnect(&mut self, id: ConnId) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_ip.get_mut(&session.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&session.ip);
            }
        }
        if let Some(nick) = session.nick() {
            let key = nick_key(nick);
            if self.nicks.get(&key) == Some(&id) {
                self.nicks.remove(&key);
            }
        }
        self.catalog.remove_owner(id);
        self.pending.remove(&id);
        self.authenticating.remove(&id);
        self.browses.remove(&id);
        self.refresh_gauges();
    }

    /// True while a login waits for its password job; the reactor leaves
    /// the connection's further input unread until then.
    pub fn is_authenticating(&self, id: ConnId) -> bool {
        self.authenticating.contains_key(&id)
    }

    fn is_online(&self, id: ConnId) -> bool {
        self.sessions.get(&id).is_some_and(|s| s.user().is_some())
    }

    /// An error in the form the client expects: 0 before login, 404 after.
    fn send_error(&self, id: ConnId, message: &str, out: &mut Outbox) {
        let message = message.as_bytes().to_vec();
        if self.is_online(id) {
            out.message(id, &ServerMessage::ErrorMessage { message });
        } else {
            out.message(id, &ServerMessage::Error { message });
        }
    }

    /// A client sent a frame longer than `--max-command-length`.
    pub fn on_oversized_frame(&mut self, id: ConnId, len: usize, out: &mut Outbox) {
        info!(
            "{}: message of {len} bytes over the limit: disconnected",
            self.who(id)
        );
        self.metrics.count_drop(DropReason::CommandTooLong);
        let message = format!(
            "Message of {len} bytes exceeds the limit of {}",
            self.config.max_command_length
        );
        self.send_error(id, &message, out);
        out.close(id);
    }

    /// Periodic work: login timeouts, stats (214) to everyone, rate gauges.
    pub fn on_tick(&mut self, now: Instant, out: &mut Outbox) {
        let timeout = self.config.login_timeout;
        let expired: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.login_expired(now, timeout))
            .map(|s| s.id)
            .collect();
        for id in expired {
            self.metrics.count_drop(DropReason::LoginTimeout);
            out.message(
                id,
                &ServerMessage::Error {
                    message: b"Login timed out".to_vec(),
                },
            );
            out.close(id);
        }
        self.expire_browses(now, out);
        if now >= self.next_stats {
            self.next_stats = now + self.config.stats_interval;
            let stats = self.stats();
            let mut online: Vec<ConnId> = self.nicks.values().copied().collect();
            online.sort();
            for id in online {
                out.message(id, &stats);
            }
        }
        if now >= self.next_memory_sample {
            self.next_memory_sample = now + MEMORY_SAMPLE_INTERVAL;
            self.metrics.index_bytes = self.catalog.memory_bytes() as u64;
        }
        self.metrics.sample_rates(now);
        self.refresh_gauges();
    }

    fn stats(&self) -> ServerMessage {
        ServerMessage::Stats(ServerStats {
            users: self.nicks.len() as u64,
            files: self.catalog.total_files(),
            gigabytes: self.catalog.total_gigabytes(),
        })
    }

    /// One frame from a client.
    pub fn on_frame(
        &mut self,
        id: ConnId,
        kind: u16,
        payload: &[u8],
        now: Instant,
        out: &mut Outbox,
    ) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let online = session.user().is_some();
        let per_second = self.config.max_messages_per_second;
        // Clients send their whole library (one 100 per file) right after
        // login; shares are bounded by --max-shares instead, so they do not
        // count as flooding. Unshares do, which bounds share/unshare loops.
        let is_share = kind == kind::SHARE || kind == kind::SHARE_BATCH;
        if per_second > 0 && !(online && is_share) && session.messages.hit(now) > per_second {
            info!("{}: message flood: disconnected", self.who(id));
            self.metrics.count_drop(DropReason::MessageFlood);
            self.send_error(id, "Flooding: disconnected", out);
            out.close(id);
            return;
        }
        let parsed = ClientMessage::parse(kind, payload);
        let known = !matches!(parsed, Ok(ClientMessage::Unknown { .. }));
        self.metrics.count_message(kind, known);
        match parsed {
            Ok(ClientMessage::Login(l)) if !online => self.login(
                id,
                LoginRequest {
                    nick: l.nick,
                    password: l.password,
                    port: l.port,
                    client_info: l.client_info,
                    link_speed: l.link_speed,
                    email: None,
                },
                now,
                out,
            ),
            Ok(ClientMessage::NewUserLogin(l)) if !online => self.login(
                id,
                LoginRequest {
                    nick: l.nick,
                    password: l.password,
                    port: l.port,
                    client_info: l.client_info,
                    link_speed: l.link_speed,
                    email: Some(l.email),
                },
                now,
                out,
            ),
            Ok(ClientMessage::NickCheck { nick }) => self.nick_check(id, nick.as_bytes(), out),
            Err(_) if kind == kind::NICK_CHECK => out.message(id, &ServerMessage::NickInvalid),
            Err(e) if !online && (kind == kind::LOGIN || kind == kind::NEW_USER_LOGIN) => {
                let msg = format!("Invalid login message: {e}");
                let shown = escape_bytes(payload);
                let detail = format!("payload \"{}\"", Escaped::new(&shown).max_chars(120));
                self.refuse_login(id, DropReason::LoginRefused, &msg, &detail, out);
            }
            // opennap-ng answers the version check only after login.
            Ok(ClientMessage::VersionCheck { .. }) if !online => {}
            Ok(ClientMessage::Unknown { kind: k, payload }) => {
                self.metrics.unknown_messages += 1;
                debug!(
                    "{}: unknown message {k}: {}",
                    self.who(id),
                    Escaped::new(&escape_bytes(&payload)).max_chars(120)
                );
                // Before login the client may announce things (920) it
                // expects no answer to; after it, every number gets one.
                if online && !SILENTLY_IGNORED.contains(&k) {
                    out.message(id, &error_message(format!("Unknown command code {k}")));
                }
            }
            _ if !online => {
                out.message(
                    id,
                    &ServerMessage::Error {
                        message: b"You must log in first".to_vec(),
                    },
                );
            }
            Err(e) => {
                let msg = if kind == kind::SEARCH {
                    "Invalid search request".to_string()
                } else {
                    format!("Invalid message {kind}: {e}")
                };
                out.message(id, &error_message(msg));
                if kind == kind::SEARCH {
                    out.message(id, &ServerMessage::SearchEnd);
                }
            }
            Ok(message) => self.online_message(id, message, now, out),
        }
        self.refresh_gauges();
    }

    /// How a connection is named in the log: its nick (escaped) once
    /// logged in, its address before.
    fn who(&self, id: ConnId) -> String {
        match self.sessions.get(&id) {
            Some(s) => match s.nick() {
                Some(nick) => format!("{} ({})", Escaped::new(nick), s.ip),
                None => s.ip.to_string(),
            },
            None => format!("{id:?}"),
        }
    }

    fn online_message(
        &mut self,
        id: ConnId,
        message: ClientMessage,
        now: Instant,
        out: &mut Outbox,
    ) {
        match message {
            ClientMessage::Login(_) | ClientMessage::NewUserLogin(_) => {
                out.message(id, &error_message("You are already logged in"));
            }
            ClientMessage::Share(file) => {
                self.add_share(id, file, out);
            }
            ClientMessage::ShareBatch(ShareBatch { directory, files }) => {
                for mut file in files {
                    file.name = batch_path(&directory, &file.name);
                    if !self.add_share(id, file, out) {
                        break;
                    }
                }
            }
            ClientMessage::Unshare { name } => {
                if !self.catalog.remove(id, &name) {
                    let msg = format!("Not sharing \"{}\"", text(&name));
                    out.message(id, &error_message(msg));
                }
            }
            ClientMessage::UnshareAll => self.catalog.remove_all(id),
            ClientMessage::Search(query) => self.search(id, &query, now, out),
            ClientMessage::DownloadRequest(UserFile { nick, name }) => {
                self.download_request(id, &nick, name, out)
            }
            ClientMessage::UploadAccept(UserFile { nick, name }) => {
                self.upload_accept(id, &nick, name, out)
            }
            ClientMessage::QueueLimit(QueueLimit {
                file: UserFile { nick, name },
                limit,
            }) => self.queue_limit(id, &nick, name, limit, out),
            ClientMessage::FirewalledDownloadRequest(UserFile { nick, name }) => {
                self.firewalled_download(id, &nick, name, out)
            }
            ClientMessage::Browse { nick } => self.browse(id, &nick, out),
            ClientMessage::StatsRequest => out.message(id, &self.stats()),
            ClientMessage::DownloadStarted
            | ClientMessage::DownloadFinished
            | ClientMessage::UploadStarted
            | ClientMessage::UploadFinished => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    match message {
                        ClientMessage::DownloadStarted => {
                            s.downloads = s.downloads.saturating_add(1)
                        }
                        ClientMessage::DownloadFinished => {
                            s.downloads = s.downloads.saturating_sub(1)
                        }
                        ClientMessage::UploadStarted => s.uploads = s.uploads.saturating_add(1),
                        _ => s.uploads = s.uploads.saturating_sub(1),
                    }
                }
            }
            ClientMessage::MotdRequest => self.send_motd(id, out),
            // Clients use the echo as a barrier (TekNap matches its time
            // stamp), so the arguments go back exactly as they came.
            ClientMessage::ServerPing { args } => {
                out.message(id, &ServerMessage::ServerPing { args })
            }
            ClientMessage::PingUser { nick } => self.relay_ping(id, &nick, true, out),
            ClientMessage::PongUser { nick } => self.relay_ping(id, &nick, false, out),
            ClientMessage::Kill(AdminTarget { target, reason }) => {
                self.kill(id, &target, reason, out)
            }
            ClientMessage::Ban(AdminTarget { target, reason }) => {
                self.ban(id, &target, reason, out)
            }
            ClientMessage::Unban(AdminTarget { target, .. }) => self.unban(id, &target, out),
            ClientMessage::ShowBans => self.ban_list(id, out),
            ClientMessage::SetUserLevel(LevelChange { nick, level }) => {
                self.set_level(id, &nick, &level, out)
            }
            ClientMessage::Whois { nick } => self.whois(id, &nick, now, out),
            ClientMessage::Nuke { nick } => self.nuke(id, &nick, out),
            ClientMessage::ChangePassword(PasswordChange { nick, password, .. }) => {
                self.change_password(id, &nick, &password, out)
            }
            ClientMessage::VersionCheck { .. } => out.message(id, &ServerMessage::VersionCheck),
            ClientMessage::DirectBrowse { nick } => self.direct_browse(id, &nick, now, out),
            ClientMessage::DirectBrowseAccept { nick } => self.direct_browse_accept(id, &nick, out),
            ClientMessage::VersionRequest => self.server_version(id, out),
            // No linked servers: the list is just its terminator.
            ClientMessage::LinksRequest => {
                out.message(id, &ServerMessage::ServerLinks { line: Vec::new() })
            }
            ClientMessage::UsageStatsRequest => self.usage_stats(id, now, out),
            ClientMessage::ClientVersionsRequest => self.client_versions(id, out),
            ClientMessage::NickCheck { .. } | ClientMessage::Unknown { .. } => {}
        }
    }

    fn session(&self, id: ConnId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    fn online_by_nick(&self, nick: &str) -> Option<&Session> {
        let id = self.nicks.get(&nick_key(nick))?;
        self.sessions.get(id)
    }

    fn nick_check(&mut self, id: ConnId, nick: &[u8], out: &mut Outbox) {
        let reply = if !valid_nick(nick) {
            ServerMessage::NickInvalid
        } else {
            let nick = text(nick);
            match self.store.account(&nick) {
                Ok(Some(_)) => ServerMessage::NickRegistered,
                Ok(None) if self.online_by_nick(&nick).is_some() => ServerMessage::NickRegistered,
                Ok(None) => ServerMessage::NickNotRegistered,
                Err(e) => {
                    warn!("nick check of {}: {e}", Escaped::new(&nick));
                    ServerMessage::NickRegistered
                }
            }
        };
        out.message(id, &reply);
    }

    /// Refuses a login with error 0 and closes; logs the refusal (who, why,
    /// and `detail`: the nick or the message that could not be read).
    fn refuse_login(
        &mut self,
        id: ConnId,
        reason: DropReason,
        message: &str,
        detail: &str,
        out: &mut Outbox,
    ) {
        info!(
            "{}: login refused: {} ({detail})",
            self.who(id),
            Escaped::new(message)
        );
        self.metrics.count_drop(reason);
        out.message(
            id,
            &ServerMessage::Error {
                message: message.as_bytes().to_vec(),
            },
        );
        out.close(id);
    }

    fn login(&mut self, id: ConnId, login: LoginRequest, now: Instant, out: &mut Outbox) {
        if self.is_online(id) || self.is_authenticating(id) {
            return out.message(id, &error_message("You are already logged in"));
        }
        let detail = format!("nick \"{}\"", Escaped::new(&login.nick).max_chars(40));
        if !valid_nick(login.nick.as_bytes()) {
            return self.refuse_login(
                id,
                DropReason::LoginRefused,
                "Invalid nickname",
                &detail,
                out,
            );
        }
        let Some(ip) = self.session(id).map(|s| s.ip) else {
            return;
        };
        match self.store.ban_for(&login.nick, ip) {
            Ok(Some(ban)) => {
                let msg = format!("You are banned from this server: {}", ban.reason);
                return self.refuse_login(id, DropReason::Banned, &msg, &detail, out);
            }
            Ok(None) => {}
            Err(e) => warn!("ban lookup for {}: {e}", self.who(id)),
        }
        if login.email.is_some() {
            if self.config.registration == Registration::Closed {
                return self.refuse_login(
                    id,
                    DropReason::LoginRefused,
                    "Registration is closed",
                    &detail,
                    out,
                );
            }
            match self.store.account(&login.nick) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    return self.refuse_login(
                        id,
                        DropReason::LoginRefused,
                        "Nickname is already registered",
                        &detail,
                        out,
                    )
                }
                Err(e) => {
                    warn!("register {}: {e}", Escaped::new(&login.nick));
                    return self.refuse_login(
                        id,
                        DropReason::LoginRefused,
                        "Server error",
                        &detail,
                        out,
                    );
                }
            }
            // A guest holds the nick: registering it would take it from
            // under them (opennap-ng refuses as well).
            if let Some(msg) = self.nick_in_use(&login.nick) {
                return self.refuse_login(id, DropReason::LoginRefused, &msg, &detail, out);
            }
            out.job(PasswordJob::Hash {
                conn: id,
                password: login.password.clone(),
                cost: self.store.cost(),
            });
            self.authenticating.insert(
                id,
                PendingLogin {
                    request: login,
                    account: None,
                },
            );
            return;
        }
        match self.store.password_record(&login.nick) {
            // opennap-ng's default: an unregistered nick logs in as a guest.
            Ok(None) => self.complete_login(id, login, None, now, out),
            Ok(Some((account, hash))) => {
                out.job(PasswordJob::Verify {
                    conn: id,
                    hash,
                    password: login.password.clone(),
                });
                self.authenticating.insert(
                    id,
                    PendingLogin {
                        request: login,
                        account: Some(account),
                    },
                );
            }
            Err(e) => {
                warn!("login {}: {e}", Escaped::new(&login.nick));
                self.refuse_login(id, DropReason::LoginRefused, "Server error", &detail, out);
            }
        }
    }

    /// The refusal to give if `nick` is online (as a guest, or a registered
    /// user), None if it is free.
    fn nick_in_use(&self, nick: &str) -> Option<String> {
        let user = self.online_by_nick(nick)?.user()?;
        Some(format!("{} is already active", user.nick))
    }

    /// A password job finished: complete or refuse the waiting login.
    pub fn on_password_result(
        &mut self,
        id: ConnId,
        outcome: PasswordOutcome,
        now: Instant,
        out: &mut Outbox,
    ) {
        let Some(pending) = self.authenticating.remove(&id) else {
            return; // The connection left meanwhile.
        };
        if !self.sessions.contains_key(&id) {
            return;
        }
        let request = pending.request;
        let detail = format!("nick \"{}\"", Escaped::new(&request.nick));
        match (outcome, pending.account) {
            (PasswordOutcome::Verified(true), Some(account)) => {
                if let Err(e) = self.store.touch(&account.nick) {
                    warn!("last-seen of {}: {e}", Escaped::new(&account.nick));
                }
                self.complete_login(id, request, Some(account), now, out);
            }
            (PasswordOutcome::Verified(false), _) => self.refuse_login(
                id,
                DropReason::LoginRefused,
                "Invalid password",
                &detail,
                out,
            ),
            (PasswordOutcome::Hashed(Some(hash)), None) => {
                // A guest may have taken the nick while the hash was made.
                if let Some(msg) = self.nick_in_use(&request.nick) {
                    return self.refuse_login(id, DropReason::LoginRefused, &msg, &detail, out);
                }
                let is_admin = self
                    .config
                    .admins
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&request.nick));
                let level = if is_admin { Level::Admin } else { Level::User };
                let email = text(request.email.as_deref().unwrap_or_default());
                match self
                    .store
                    .insert_account(&request.nick, &hash, &email, level)
                {
                    Ok(account) => {
                        info!("registered {}", Escaped::new(&account.nick));
                        self.complete_login(id, request, Some(account), now, out);
                    }
                    Err(StoreError::NickTaken) => self.refuse_login(
                        id,
                        DropReason::LoginRefused,
                        "Nickname is already registered",
                        &detail,
                        out,
                    ),
                    Err(e) => {
                        warn!("register {}: {e}", Escaped::new(&request.nick));
                        self.refuse_login(
                            id,
                            DropReason::LoginRefused,
                            "Server error",
                            &detail,
                            out,
                        );
                    }
                }
            }
            (PasswordOutcome::Unavailable, _) => self.refuse_login(
                id,
                DropReason::LoginRefused,
                "Server busy, try again",
                &detail,
                out,
            ),
            _ => self.refuse_login(id, DropReason::LoginRefused, "Server error", &detail, out),
        }
    }

    /// Puts an authenticated (or guest) connection online: 3, MOTD, 214.
    fn complete_login(
        &mut self,
        id: ConnId,
        login: LoginRequest,
        account: Option<Account>,
        now: Instant,
        out: &mut Outbox,
    ) {
        let key = nick_key(&login.nick);
        if let Some(&other) = self.nicks.get(&key) {
            let other_is_registered = self
                .sessions
                .get(&other)
                .and_then(Session::user)
                .is_some_and(|u| u.registered);
            if account.is_some() && other_is_registered {
                // The account holder proved the password: the old
                // connection is a ghost (opennap-ng kills it).
                info!(
                    "{}: replaced by a new login of the same account",
                    self.who(other)
                );
                self.disconnect_user(
                    other,
                    "You logged in from another connection",
                    DropReason::Killed,
                    out,
                );
            } else {
                let msg = format!("{} is already active", login.nick);
                let detail = format!("nick \"{}\"", Escaped::new(&login.nick));
                return self.refuse_login(id, DropReason::LoginRefused, &msg, &detail, out);
            }
        }
        let (nick, email, level, registered) = match account {
            Some(acct) => (acct.nick, acct.email, acct.level, true),
            None => (
                login.nick,
                format!("anon@{}", self.config.server_name),
                Level::User,
                false,
            ),
        };
        self.nicks.insert(key, id);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let ip = session.ip;
        let client_shown = escape_bytes(&login.client_info);
        session.phase = Phase::Online(UserInfo {
            nick: nick.clone(),
            data_port: login.port,
            client: login.client_info,
            link_speed: login.link_speed,
            level,
            registered,
            email: email.clone(),
            logged_in_at: now,
        });
        self.catalog.add_owner(id, &nick, ip, login.link_speed);
        info!(
            "{} logged in from {ip} with \"{}\"",
            Escaped::new(&nick),
            Escaped::new(&client_shown).max_chars(60)
        );
        out.message(
            id,
            &ServerMessage::LoginAck {
                email: email.into_bytes(),
            },
        );
        self.send_motd(id, out);
        out.message(id, &self.stats());
        self.refresh_gauges();
    }

    fn send_motd(&self, id: ConnId, out: &mut Outbox) {
        for line in &self.config.motd {
            out.message(
                id,
                &ServerMessage::Motd {
                    line: line.as_bytes().to_vec(),
                },
            );
        }
    }

    /// Adds one file; false (with a 404 sent) once the share limit is hit.
    fn add_share(&mut self, id: ConnId, file: SharedFile, out: &mut Outbox) -> bool {
        if file.name.is_empty() {
            out.message(id, &error_message("Invalid share request"));
            return true;
        }
        match self.catalog.add(id, &file, self.config.max_shares) {
            Ok(()) | Err(AddRefused::Duplicate) => true,
            Err(AddRefused::Limit) => {
                self.metrics.count_drop(DropReason::ShareLimit);
                let msg = format!("You may share at most {} files", self.config.max_shares);
                out.message(id, &error_message(msg));
                false
            }
            Err(AddRefused::NotOnline) => false,
            Err(AddRefused::Invalid(e)) => {
                let msg = format!("Cannot share \"{}\": {e}", text(&file.name));
                out.message(id, &error_message(msg));
                true
            }
        }
    }

    fn search(&mut self, id: ConnId, query: &SearchQuery, now: Instant, out: &mut Outbox) {
        let limit = self.config.searches_per_minute;
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let count = session.searches.hit(now);
        if limit > 0 && count > limit {
            // Over the limit: refuse politely; far over it: a flooder.
            if count > limit.saturating_mul(2).max(limit.saturating_add(10)) {
                self.metrics.count_drop(DropReason::SearchFlood);
                out.message(id, &error_message("Search flood: disconnected"));
                out.close(id);
            } else {
                self.metrics.count_drop(DropReason::SearchRateLimited);
                let msg = format!("Too many searches: at most {limit} per minute");
                out.message(id, &error_message(msg));
                out.message(id, &ServerMessage::SearchEnd);
            }
            return;
        }
        if !has_search_words(query) {
            out.message(id, &error_message("Invalid search request"));
            out.message(id, &ServerMessage::SearchEnd);
            return;
        }
        self.metrics.searches_total += 1;
        // Every 201 is encoded straight into the searcher's output buffer:
        // no allocation per result, and one write for the whole answer.
        let buffer = out.buffer(id);
        // Typical 201s are 100–200 bytes: one allocation for the whole answer.
        buffer.reserve(self.config.max_results.min(1000) * 160);
        self.catalog
            .search_into(query, id, self.config.max_results, buffer);
        out.message(id, &ServerMessage::SearchEnd);
    }

    fn download_error(id: ConnId, nick: &str, name: Vec<u8>, out: &mut Outbox) {
        out.message(
            id,
            &ServerMessage::DownloadError(UserFile {
                nick: nick.to_string(),
                name,
            }),
        );
    }

    fn download_request(&mut self, id: ConnId, nick: &str, name: Vec<u8>, out: &mut Outbox) {
        let Some(sharer) = self.online_by_nick(nick) else {
            return Self::download_error(id, nick, name, out);
        };
        let sharer_id = sharer.id;
        if sharer_id == id || self.catalog.file(sharer_id, &name).is_none() {
            return Self::download_error(id, nick, name, out);
        }
        let Some(me) = self.session(id).and_then(|s| s.user()) else {
            return;
        };
        out.message(
            sharer_id,
            &ServerMessage::UploadRequest(UploadRequest {
                file: UserFile {
                    nick: me.nick.clone(),
                    name: name.clone(),
                },
                link_speed: Some(me.link_speed),
            }),
        );
        let pending = self.pending.entry(sharer_id).or_default();
        if pending.len() >= MAX_PENDING_UPLOADS {
            pending.remove(0);
        }
        pending.push(PendingUpload {
            downloader: id,
            file: name,
        });
    }

    /// Removes and returns the pending request `sharer` is answering.
    fn take_pending(
        &mut self,
        sharer: ConnId,
        downloader_nick: &str,
        file: &[u8],
    ) -> Option<ConnId> {
        let downloader = self.online_by_nick(downloader_nick)?.id;
        let list = self.pending.get_mut(&sharer)?;
        let pos = list
            .iter()
            .position(|p| p.downloader == downloader && p.file == file)?;
        list.remove(pos);
        Some(downloader)
    }

    fn upload_accept(&mut self, id: ConnId, nick: &str, name: Vec<u8>, out: &mut Outbox) {
        let Some(downloader) = self.take_pending(id, nick, &name) else {
            return; // Not asked, or the downloader left: nothing to answer.
        };
        let Some(sharer) = self.session(id) else {
            return;
        };
        let Some(user) = sharer.user() else {
            return;
        };
        match self.catalog.file(id, &name) {
            Some(shared) => {
                let ack = DownloadAck {
                    nick: user.nick.clone(),
                    ip: sharer.ip,
                    port: user.data_port,
                    md5: shared.md5(),
                    name,
                    link_speed: user.link_speed,
                };
                out.message(downloader, &ServerMessage::DownloadAck(ack));
            }
            None => Self::download_error(downloader, &user.nick, name, out),
        }
    }

    fn queue_limit(&mut self, id: ConnId, nick: &str, name: Vec<u8>, limit: u32, out: &mut Outbox) {
        let Some(downloader) = self.take_pending(id, nick, &name) else {
            return;
        };
        let (Some(sharer), Some(shared)) = (
            self.session(id).and_then(|s| s.user()),
            self.catalog.file(id, &name),
        ) else {
            return;
        };
        let notice = ServerMessage::QueueLimitReached(QueueLimitReached {
            size: shared.size,
            file: UserFile {
                nick: sharer.nick.clone(),
                name,
            },
            limit,
        });
        out.message(downloader, &notice);
    }

    fn firewalled_download(&mut self, id: ConnId, nick: &str, name: Vec<u8>, out: &mut Outbox) {
        let Some(sharer) = self.online_by_nick(nick) else {
            let msg = format!("User {nick} is not currently online");
            return out.message(id, &error_message(msg));
        };
        let sharer_id = sharer.id;
        let Some(shared) = self.catalog.file(sharer_id, &name) else {
            return Self::download_error(id, nick, name, out);
        };
        let Some(me) = self.session(id) else {
            return;
        };
        let Some(user) = me.user() else {
            return;
        };
        if user.data_port == 0 {
            return out.message(id, &error_message("Both you and the sharer are firewalled"));
        }
        let ack = DownloadAck {
            nick: user.nick.clone(),
            ip: me.ip,
            port: user.data_port,
            md5: shared.md5(),
            name,
            link_speed: user.link_speed,
        };
        out.message(sharer_id, &ServerMessage::FirewalledDownloadAck(ack));
    }

    fn browse(&mut self, id: ConnId, nick: &str, out: &mut Outbox) {
        let Some(target) = self.online_by_nick(nick) else {
            let msg = format!("User {nick} is not currently online");
            out.message(id, &error_message(msg));
            out.message(
                id,
                &ServerMessage::BrowseEnd(BrowseEnd {
                    nick: nick.to_string(),
                    ip: None,
                }),
            );
            return;
        };
        let Some(user) = target.user() else {
            return;
        };
        for f in self.catalog.files_of(target.id) {
            out.message(
                id,
                &ServerMessage::BrowseEntry(BrowseEntry {
                    nick: user.nick.clone(),
                    file: f.to_shared_file(),
                }),
            );
        }
        out.message(
            id,
            &ServerMessage::BrowseEnd(BrowseEnd {
                nick: user.nick.clone(),
                ip: Some(target.ip),
            }),
        );
    }

    fn relay_ping(&mut self, id: ConnId, nick: &str, ping: bool, out: &mut Outbox) {
        let Some(me) = self.session(id).and_then(|s| s.nick()) else {
            return;
        };
        let me = me.to_string();
        match self.online_by_nick(nick) {
            Some(target) => {
                let message = if ping {
                    ServerMessage::PingUser { nick: me }
                } else {
                    ServerMessage::PongUser { nick: me }
                };
                out.message(target.id, &message);
            }
            None => {
                let msg = format!("ping failed, {nick} is not online");
                out.message(id, &error_message(msg));
            }
        }
    }

    fn whois(&mut self, id: ConnId, nick: &str, now: Instant, out: &mut Outbox) {
        let asker_level = self.session(id).map_or(Level::User, Session::level);
        if let Some(target) = self.online_by_nick(nick) {
            let Some(user) = target.user() else {
                return;
            };
            let online_for = now.saturating_duration_since(user.logged_in_at).as_secs();
            let shared = self.catalog.count_of(target.id) as u64;
            let whois = WhoisResponse {
                nick: user.nick.clone(),
                level: user.level.wire(),
                online_seconds: online_for,
                channels: Vec::new(),
                status: b"Active".to_vec(),
                shared,
                downloads: u64::from(target.downloads),
                uploads: u64::from(target.uploads),
                link_speed: user.link_speed,
                client: user.client.clone(),
                details: (asker_level >= Level::Moderator).then(|| WhoisDetails {
                    total_downloads: 0,
                    total_uploads: 0,
                    ip: target.ip,
                    connecting_port: 0,
                    data_port: user.data_port,
                    email: user.email.as_bytes().to_vec(),
                }),
            };
            out.message(id, &ServerMessage::WhoisResponse(whois));
            return;
        }
        match self.store.account(nick) {
            Ok(Some(acct)) => {
                let whowas = Whowas {
                    nick: acct.nick,
                    level: acct.level.wire(),
                    last_seen: 0,
                };
                out.message(id, &ServerMessage::Whowas(whowas));
            }
            _ => {
                let msg = format!("User {nick} is not currently online");
                out.message(id, &error_message(msg));
            }
        }
    }

    /// The sender's nick and level, if it has at least `needed`.
    fn require(&self, id: ConnId, needed: Level, out: &mut Outbox) -> Option<(String, Level)> {
        let user = self.session(id)?.user()?;
        if user.level >= needed {
            Some((user.nick.clone(), user.level))
        } else {
            out.message(id, &error_message("permission denied"));
            None
        }
    }

    fn disconnect_user(
        &mut self,
        target: ConnId,
        message: &str,
        reason: DropReason,
        out: &mut Outbox,
    ) {
        self.metrics.count_drop(reason);
        out.message(target, &error_message(message));
        out.close(target);
        self.on_disconnect(target);
    }

    fn kill(&mut self, id: ConnId, target: &str, reason: Option<Vec<u8>>, out: &mut Outbox) {
        let Some((me, my_level)) = self.require(id, Level::Moderator, out) else {
            return;
        };
        let reason = text(&reason.unwrap_or_default());
        let Some(victim) = self.online_by_nick(target) else {
            let msg = format!("User {target} is not currently online");
            return out.message(id, &error_message(msg));
        };
        if victim.level() >= my_level && my_level != Level::Elite {
            return out.message(id, &error_message("permission denied"));
        }
        let victim = victim.id;
        info!(
            "{} killed {}: {}",
            Escaped::new(&me),
            Escaped::new(target),
            Escaped::new(&reason)
        );
        let msg = format!("You were killed by {me}: {reason}");
        self.disconnect_user(victim, &msg, DropReason::Killed, out);
        out.message(id, &error_message(format!("{target} killed: {reason}")));
    }

    fn ban(&mut self, id: ConnId, target: &str, reason: Option<Vec<u8>>, out: &mut Outbox) {
        let Some((me, _)) = self.require(id, Level::Moderator, out) else {
            return;
        };
        let reason = text(&reason.unwrap_or_default());
        let looks_like_ip = target.parse::<Ipv4Addr>().is_ok()
            || (target.ends_with('.') && target.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        let kind_of = if looks_like_ip {
            BanKind::Ip
        } else {
            BanKind::Nick
        };
        if let Err(e) = self.store.ban(target, kind_of, &me, &reason) {
            warn!("ban {}: {e}", Escaped::new(target));
            return out.message(id, &error_message("Server error"));
        }
        info!(
            "{} banned {}: {}",
            Escaped::new(&me),
            Escaped::new(target),
            Escaped::new(&reason)
        );
        // Everyone now matched by the ban leaves (except whoever set it).
        let victims: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.id != id)
            .filter(|s| match kind_of {
                BanKind::Nick => s.nick().is_some_and(|n| n.eq_ignore_ascii_case(target)),
                BanKind::Ip => {
                    let ip = s.ip.to_string();
                    ip == target || (target.ends_with('.') && ip.starts_with(target))
                }
            })
            .map(|s| s.id)
            .collect();
        for victim in victims {
            let msg = format!("You were banned by {me}: {reason}");
            self.disconnect_user(victim, &msg, DropReason::Banned, out);
        }
        out.message(id, &error_message(format!("{target} banned: {reason}")));
    }

    fn unban(&mut self, id: ConnId, target: &str, out: &mut Outbox) {
        let Some((me, _)) = self.require(id, Level::Moderator, out) else {
            return;
        };
        let msg = match self.store.unban(target) {
            Ok(true) => {
                info!("{} unbanned {}", Escaped::new(&me), Escaped::new(target));
                format!("{target} unbanned")
            }
            Ok(false) => format!("{target} is not banned"),
            Err(e) => {
                warn!("unban {}: {e}", Escaped::new(target));
                "Server error".to_string()
            }
        };
        out.message(id, &error_message(msg));
    }

    fn ban_list(&mut self, id: ConnId, out: &mut Outbox) {
        if self.require(id, Level::Moderator, out).is_none() {
            return;
        }
        for ban in self.store.bans().unwrap_or_default() {
            let entry = BanEntry {
                target: ban.target,
                set_by: ban.set_by,
                reason: ban.reason.into_bytes(),
                set_at: u64::try_from(ban.created).unwrap_or(0),
                timeout: 0,
            };
            out.message(id, &ServerMessage::BanEntry(entry));
        }
        out.message(id, &ServerMessage::BanListEnd);
    }

    fn set_level(&mut self, id: ConnId, target: &str, level: &[u8], out: &mut Outbox) {
        let Some((me, my_level)) = self.require(id, Level::Admin, out) else {
            return;
        };
        let Some(level) = Level::parse(&text(level)) else {
            return out.message(id, &error_message("Invalid level"));
        };
        if level >= my_level && my_level != Level::Elite {
            return out.message(id, &error_message("permission denied"));
        }
        let msg = match self.store.set_level(target, level) {
            Ok(true) => {
                if let Some(&tid) = self.nicks.get(&nick_key(target)) {
                    if let Some(Phase::Online(u)) =
                        self.sessions.get_mut(&tid).map(|s| &mut s.phase)
                    {
                        u.level = level;
                    }
                }
                info!(
                    "{} set {} to {}",
                    Escaped::new(&me),
                    Escaped::new(target),
                    level.name()
                );
                format!("{target} is now {}", level.name())
            }
            Ok(false) => format!("{target} is not registered"),
            Err(e) => {
                warn!("set level {}: {e}", Escaped::new(target));
                "Server error".to_string()
            }
        };
        out.message(id, &error_message(msg));
    }

    fn nuke(&mut self, id: ConnId, target: &str, out: &mut Outbox) {
        let Some((me, _)) = self.require(id, Level::Admin, out) else {
            return;
        };
        let msg = match self.store.delete_account(target) {
            Ok(true) => {
                info!("{} nuked {}", Escaped::new(&me), Escaped::new(target));
                format!("{target} nuked")
            }
            Ok(false) => format!("{target} is not registered"),
            Err(e) => {
                warn!("nuke {}: {e}", Escaped::new(target));
                "Server error".to_string()
            }
        };
        out.message(id, &error_message(msg));
    }

    fn change_password(&mut self, id: ConnId, target: &str, password: &[u8], out: &mut Outbox) {
        let Some((me, _)) = self.require(id, Level::Admin, out) else {
            return;
        };
        let msg = match self.store.set_password(target, password) {
            Ok(true) => {
                info!(
                    "{} changed the password of {}",
                    Escaped::new(&me),
                    Escaped::new(target)
                );
                format!("Password for {target} changed")
            }
            Ok(false) => format!("{target} is not registered"),
            Err(e) => {
                warn!("password {}: {e}", Escaped::new(target));
                "Server error".to_string()
            }
        };
        out.message(id, &error_message(msg));
    }

    /// 640: ask `nick` to let the sender browse its files directly, or
    /// refuse at once (642) when that cannot work, so the client falls back
    /// to a browse through the server (211) without waiting. As opennap-ng
    /// does, except that the server also answers when the browsed client
    /// never does (see [`Server::expire_browses`]).
    fn direct_browse(&mut self, id: ConnId, nick: &str, now: Instant, out: &mut Outbox) {
        let Some(me) = self.session(id) else {
            return;
        };
        let Some(my) = me.user() else {
            return;
        };
        let (my_nick, my_ip, my_port) = (my.nick.clone(), me.ip, my.data_port);
        let refuse = |out: &mut Outbox, nick: &str, message: String| {
            out.message(
                id,
                &ServerMessage::DirectBrowseError(DirectBrowseError {
                    nick: nick.to_string(),
                    message: message.into_bytes(),
                }),
            );
        };
        let Some(target) = self.online_by_nick(nick) else {
            return refuse(out, nick, format!("{nick} is not online."));
        };
        let Some(browsee) = target.user() else {
            return;
        };
        let (browsee_id, browsee_nick, browsee_port) =
            (target.id, browsee.nick.clone(), browsee.data_port);
        if my_port == 0 && browsee_port == 0 {
            let msg = format!(
                "Both you and {browsee_nick} are firewalled; you cannot browse or download from them."
            );
            return refuse(out, &browsee_nick, msg);
        }
        if self.catalog.count_of(browsee_id) == 0 {
            let msg = format!("{browsee_nick} is not sharing any files.");
            return refuse(out, &browsee_nick, msg);
        }
        let waiting = self.browses.entry(id).or_default();
        waiting.retain(|p| p.browsee != browsee_id);
        if waiting.len() >= MAX_PENDING_BROWSES {
            let msg = "Too many browse requests waiting; try again later.".to_string();
            return refuse(out, &browsee_nick, msg);
        }
        waiting.push(PendingBrowse {
            browsee: browsee_id,
            browsee_nick,
            deadline: now + self.config.direct_browse_timeout,
        });
        // A firewalled client cannot be reached: it is given the
        // requester's address to push its list to.
        let connect_to = (browsee_port == 0).then_some((my_ip, my_port));
        out.message(
            browsee_id,
            &ServerMessage::DirectBrowseRequest(DirectBrowseRequest {
                nick: my_nick,
                connect_to,
            }),
        );
    }

    /// 641 from a browsed client: tell the requester where to connect. An
    /// accept nobody is waiting for goes nowhere.
    fn direct_browse_accept(&mut self, id: ConnId, requester: &str, out: &mut Outbox) {
        let Some(requester) = self.online_by_nick(requester).map(|s| s.id) else {
            return;
        };
        let Some(waiting) = self.browses.get_mut(&requester) else {
            return;
        };
        let Some(pos) = waiting.iter().position(|p| p.browsee == id) else {
            debug!("{}: direct browse accept nobody asked for", self.who(id));
            return;
        };
        waiting.remove(pos);
        let Some(me) = self.session(id) else {
            return;
        };
        let Some(user) = me.user() else {
            return;
        };
        let accept = ServerMessage::DirectBrowseAccept(DirectBrowseAddress {
            nick: user.nick.clone(),
            ip: me.ip,
            port: user.data_port,
        });
        out.message(requester, &accept);
    }

    /// Answers (642) the direct browses whose browsed client left or did not
    /// accept in time, so no client waits on an answer that will not come.
    fn expire_browses(&mut self, now: Instant, out: &mut Outbox) {
        if self.browses.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        for (&requester, waiting) in self.browses.iter_mut() {
            waiting.retain(|p| {
                let online = self
                    .sessions
                    .get(&p.browsee)
                    .and_then(Session::user)
                    .is_some();
                let gone = !online;
                if gone || now >= p.deadline {
                    let message = if gone {
                        format!("{} is not online.", p.browsee_nick)
                    } else {
                        format!("{} did not answer the browse request.", p.browsee_nick)
                    };
                    expired.push((requester, p.browsee_nick.clone(), message));
                    false
                } else {
                    true
                }
            });
        }
        self.browses.retain(|_, waiting| !waiting.is_empty());
        expired.sort();
        for (requester, nick, message) in expired {
            out.message(
                requester,
                &ServerMessage::DirectBrowseError(DirectBrowseError {
                    nick,
                    message: message.into_bytes(),
                }),
            );
        }
    }

    /// 801: the server's name and version, for moderators and up (as
    /// opennap-ng), in 404 lines.
    fn server_version(&mut self, id: ConnId, out: &mut Outbox) {
        if self.require(id, Level::Moderator, out).is_none() {
            return;
        }
        let version = concat!("hazel-index ", env!("CARGO_PKG_VERSION"));
        for line in ["--", version, "--"] {
            out.message(id, &error_message(line));
        }
    }

    /// 10115: server usage, opennap-ng's sixteen numbers (channels, linked
    /// servers and pending searches are always 0 here).
    fn usage_stats(&mut self, id: ConnId, now: Instant, out: &mut Outbox) {
        let users = self.nicks.len() as u64;
        let registered = self.store.account_count().unwrap_or_else(|e| {
            warn!("counting accounts: {e}");
            0
        });
        let m = &self.metrics;
        let stats = UsageStats {
            local_clients: users,
            linked_servers: 0,
            users,
            files: self.catalog.total_files(),
            shared_bytes: self.catalog.total_bytes(),
            channels: 0,
            started_at: self.started_unix,
            uptime_seconds: now.saturating_duration_since(m.started()).as_secs(),
            memory_bytes: m.index_bytes,
            registered_users: registered,
            kib_in_per_second: (m.bytes_in_per_second / 1024.0) as u64,
            kib_out_per_second: (m.bytes_out_per_second / 1024.0) as u64,
            searches_per_second: m.searches_per_second.round() as u64,
            bytes_in: m.bytes_in,
            bytes_out: m.bytes_out,
            pending_searches: 0,
        };
        out.message(id, &ServerMessage::UsageStats(stats));
    }

    /// 10118: online users per client version, for moderators and up;
    /// an empty 10118 ends the list.
    fn client_versions(&mut self, id: ConnId, out: &mut Outbox) {
        if self.require(id, Level::Moderator, out).is_none() {
            return;
        }
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for session in self.sessions.values() {
            if let Some(user) = session.user() {
                *counts.entry(user.client.as_slice()).or_insert(0) += 1;
            }
        }
        let mut counts: Vec<(&[u8], u64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (client, users) in counts {
            let count = ClientVersionCount {
                client: client.to_vec(),
                users,
            };
            out.message(id, &ServerMessage::ClientVersionCount(count));
        }
        out.message(id, &ServerMessage::ClientVersionsEnd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PasswordCost;
    use hazel_protocol::napster::{NapsterFramer, SearchResult};

    fn server(now: Instant) -> Server {
        let cost = PasswordCost {
            memory_kib: 64,
            iterations: 1,
        };
        Server::new(
            Config::new(std::path::PathBuf::from(".")),
            Store::open_in_memory(cost).unwrap(),
            now,
        )
    }

    /// Decodes everything queued for `id` as server messages.
    fn replies(out: &mut Outbox, id: ConnId) -> Vec<ServerMessage> {
        let (frames, _) = out.take();
        let mut framer = NapsterFramer::new(65535);
        for (to, bytes) in frames {
            if to == id {
                framer.push(&bytes);
            }
        }
        let mut got = Vec::new();
        while let Some(frame) = framer.next_frame().unwrap() {
            got.push(ServerMessage::from_frame(&frame).unwrap());
        }
        got
    }

    #[test]
    fn search_results_decode_as_the_protocol_crate_reads_them() {
        let now = Instant::now();
        let mut s = server(now);
        let mut out = Outbox::new();
        let (a, b) = (ConnId(1), ConnId(2));
        let ip = Ipv4Addr::new(10, 0, 0, 7);
        assert!(s.on_connect(a, ip, now, &mut out));
        assert!(s.on_connect(b, Ipv4Addr::LOCALHOST, now, &mut out));
        s.on_frame(a, 2, b"sharer pw 6699 \"nap\" 8", now, &mut out);
        s.on_frame(b, 2, b"seeker pw 0 \"nap\" 3", now, &mut out);
        s.on_frame(
            a,
            100,
            b"\"Music\\Artist\\Song Title.mp3\" abc123 5000 192 48000 240",
            now,
            &mut out,
        );
        out.take();
        s.on_frame(
            b,
            200,
            b"FILENAME CONTAINS \"song\" MAX_RESULTS 10",
            now,
            &mut out,
        );
        let got = replies(&mut out, b);
        assert_eq!(
            got,
            vec![
                ServerMessage::SearchResult(SearchResult {
                    name: b"Music\\Artist\\Song Title.mp3".to_vec(),
                    md5: b"abc123".to_vec(),
                    size: 5000,
                    bitrate: 192,
                    freq: 48000,
                    duration: 240,
                    nick: "sharer".to_string(),
                    ip,
                    link_speed: 8,
                    weight: None,
                }),
                ServerMessage::SearchEnd,
            ]
        );
    }

    #[test]
    fn all_results_of_a_search_share_one_buffer() {
        let now = Instant::now();
        let mut s = server(now);
        let mut out = Outbox::new();
        let (a, b) = (ConnId(1), ConnId(2));
        s.on_connect(a, Ipv4Addr::LOCALHOST, now, &mut out);
        s.on_connect(b, Ipv4Addr::LOCALHOST, now, &mut out);
        s.on_frame(a, 2, b"sharer pw 6699 \"nap\" 8", now, &mut out);
        s.on_frame(b, 2, b"seeker pw 0 \"nap\" 3", now, &mut out);
        for i in 0..30 {
            let share = format!("\"d\\common {i}.mp3\" m 1 128 44100 60");
            s.on_frame(a, 100, share.as_bytes(), now, &mut out);
        }
        out.take();
        s.on_frame(
            b,
            200,
            b"FILENAME CONTAINS \"common\" MAX_RESULTS 100",
            now,
            &mut out,
        );
        let (frames, closes) = out.take();
        assert!(closes.is_empty());
        assert_eq!(frames.len(), 1, "one batch for the searcher");
        assert_eq!(frames[0].0, b);
    }

    /// Runs the password jobs queued in `out`, as the reactor's worker does.
    fn run_jobs(s: &mut Server, out: &mut Outbox, now: Instant) {
        for job in out.take_jobs() {
            let conn = job.conn();
            let outcome = job.run();
            s.on_password_result(conn, outcome, now, out);
        }
    }

    #[test]
    fn a_registration_never_takes_the_nick_of_an_online_guest() {
        let now = Instant::now();
        let mut s = server(now);
        let mut out = Outbox::new();
        let (guest, thief, racer) = (ConnId(1), ConnId(2), ConnId(3));
        for id in [guest, thief, racer] {
            assert!(s.on_connect(id, Ipv4Addr::new(10, 0, 0, id.0 as u8), now, &mut out));
        }
        s.on_frame(guest, 2, b"alice pw 0 \"nap\" 3", now, &mut out);
        s.on_frame(
            guest,
            100,
            b"\"d\\song.mp3\" m 1 128 44100 60",
            now,
            &mut out,
        );
        out.take();
        s.on_frame(thief, 6, b"alice pw 0 \"nap\" 3 a@b", now, &mut out);
        run_jobs(&mut s, &mut out, now);
        assert_eq!(
            replies(&mut out, thief),
            vec![ServerMessage::Error {
                message: b"alice is already active".to_vec()
            }]
        );
        assert!(s.is_online(guest));
        assert_eq!(s.catalog.count_of(guest), 1, "the guest keeps its files");

        // The nick is free when the registration starts, and a guest takes
        // it while the password is being hashed: the guest stays.
        s.on_frame(racer, 6, b"bob pw 0 \"nap\" 3 b@b", now, &mut out);
        let late = ConnId(4);
        assert!(s.on_connect(late, Ipv4Addr::new(10, 0, 0, 4), now, &mut out));
        s.on_frame(late, 2, b"bob pw 0 \"nap\" 3", now, &mut out);
        out.take();
        run_jobs(&mut s, &mut out, now);
        let (_, closes) = out.take();
        assert_eq!(closes, vec![racer]);
        assert!(s.is_online(late));
        assert_eq!(s.store.account("bob").unwrap(), None, "nothing registered");
    }

    #[test]
    fn login_timeout_closes_only_silent_connections() {
        let t0 = Instant::now();
        let mut s = server(t0);
        let mut out = Outbox::new();
        s.on_connect(ConnId(1), Ipv4Addr::LOCALHOST, t0, &mut out);
        s.on_connect(ConnId(2), Ipv4Addr::LOCALHOST, t0, &mut out);
        s.on_frame(ConnId(2), 2, b"quick pw 0 \"nap\" 3", t0, &mut out);
        out.take();
        s.on_tick(t0 + s.config().login_timeout, &mut out);
        let (_, closes) = out.take();
        assert_eq!(closes, vec![ConnId(1)]);
    }

    /// Payloads that are valid for some message, to mix with random bytes.
    const TEMPLATES: &[&[u8]] = &[
        b"nick pw 6699 \"nap\" 3",
        b"nick pw 0 \"nap\" 3 e@x",
        b"\"d\\some song.mp3\" m 100 128 44100 60",
        b"\"d\" \"a.mp3\" m 1 128 44100 60 \"b.mp3\" m 2 128 44100 60",
        b"FILENAME CONTAINS \"song\" MAX_RESULTS 5",
        b"nick \"d\\some song.mp3\"",
        b"nick \"d\\some song.mp3\" 3",
        b"nick",
        b"nick admin",
        b"nick \"reason\"",
        b"d\\some song.mp3",
        b"",
    ];
    const KINDS: &[u16] = &[
        2, 6, 7, 100, 102, 110, 200, 203, 211, 214, 218, 219, 220, 221, 500, 603, 606, 608, 610,
        611, 612, 614, 615, 619, 621, 750, 751, 752, 753, 870, 9999,
    ];

    proptest::proptest! {
        #[test]
        fn any_message_sequence_keeps_the_server_consistent(
            steps in proptest::collection::vec(
                (0u64..4, 0usize..KINDS.len(), 0usize..TEMPLATES.len() + 1,
                 proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 0u8..3),
                1..60,
            )
        ) {
            let t0 = Instant::now();
            let mut s = server(t0);
            let mut out = Outbox::new();
            let nicks = ["nick", "other", "third", "fourth"];
            for c in 0..4u64 {
                s.on_connect(ConnId(c), Ipv4Addr::new(10, 0, 0, c as u8), t0, &mut out);
            }
            for (i, (conn, k, template, random, action)) in steps.into_iter().enumerate() {
                let now = t0 + std::time::Duration::from_millis(i as u64 * 10);
                let id = ConnId(conn);
                match action {
                    0 => {
                        let payload = match TEMPLATES.get(template) {
                            Some(t) => t.to_vec(),
                            None => random,
                        };
                        // Each connection uses its own nick in login templates.
                        let payload = if KINDS[k] == 2 || KINDS[k] == 6 {
                            let text = String::from_utf8_lossy(&payload)
                                .replacen("nick", nicks[conn as usize], 1);
                            text.into_bytes()
                        } else {
                            payload
                        };
                        s.on_frame(id, KINDS[k], &payload, now, &mut out);
                    }
                    1 => s.on_tick(now, &mut out),
                    _ => {
                        for job in out.take_jobs() {
                            let conn = job.conn();
                            let outcome = job.run();
                            s.on_password_result(conn, outcome, now, &mut out);
                        }
                    }
                }
                let (_, closes) = out.take();
                for id in closes {
                    s.on_disconnect(id);
                }
                proptest::prop_assert!(s.users() <= s.connections());
                proptest::prop_assert_eq!(s.metrics.files, s.catalog.total_files());
                let counted: usize = (0..4).map(|c| s.catalog.count_of(ConnId(c))).sum();
                proptest::prop_assert_eq!(counted as u64, s.catalog.total_files());
                for c in 0..4 {
                    if !s.is_online(ConnId(c)) {
                        proptest::prop_assert_eq!(s.catalog.count_of(ConnId(c)), 0);
                    }
                }
                for (nick, id) in &s.nicks {
                    let online = s.sessions.get(id).and_then(|x| x.nick()).map(nick_key);
                    proptest::prop_assert_eq!(online.as_deref(), Some(nick.as_str()));
                }
            }
        }
    }
}
