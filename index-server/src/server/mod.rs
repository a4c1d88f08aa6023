//! The server state: every session, users by nick, the catalog of shared
//! files, the account store; and what each client message does to them.
//!
//! Protocol logic without sockets or threads: the reactor hands it
//! connections, frames and the current time, and it answers with frames to
//! send, connections to close and work for the reactor's worker threads
//! (an [`Outbox`]). It reads the account store directly (lookups of a few
//! microseconds) and never writes it: every change is a [`StoreWrite`].
//! Messages are decoded and encoded with `hazel_protocol::napster`. Behaviour follows opennap-ng where the written
//! specification and opennap-ng differ.
//!
//! One file per job: `outbox` (what a call produces), `jobs` (password
//! and store work the reactor runs off the event loop), `login` (nick
//! check, login, registration), `sharing` (shares,
//! unshares, searches), `transfers` (download negotiation 203/204/206,
//! 500/501, 607/608/619/620, counters 218–221), `browse` (211–213,
//! 640–642), `admin` (610–616, 606, 611, 753), `info` (214, 603–605,
//! 801, 10112, 10115, 10118), `pings` (751/752) and `ticks` (timeouts,
//! periodic stats). This file holds the state and the dispatch of each
//! message to its job.

mod admin;
mod browse;
mod info;
mod jobs;
mod login;
mod outbox;
mod pings;
mod sharing;
mod ticks;
mod transfers;

#[cfg(test)]
mod tests;

pub use jobs::{Change, PasswordJob, PasswordOutcome, StoreDone, StoreWrite};
pub use login::{valid_nick, MAX_NICK_LEN};
pub use outbox::Outbox;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use hazel_protocol::napster::{
    AdminTarget, ClientMessage, LevelChange, PasswordChange, QueueLimit, ServerMessage, UserFile,
};
use hazel_protocol::text::{escape_bytes, Escaped};
use log::{debug, info, warn};

use browse::PendingBrowse;
use login::{LoginRequest, PendingLogin};
use transfers::{PendingUpload, Transfer};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::metrics::{DropReason, Metrics};
use crate::session::{ConnId, Session};
use crate::store::{Level, Store};

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
    /// Nicks (lower-cased) whose registration is on its way to disk, and
    /// the registering connection.
    reserved: HashMap<String, ConnId>,
    /// Wall-clock start, Unix seconds (for 10115).
    started_unix: u64,
    next_stats: Instant,
    next_memory_sample: Instant,
}

fn nick_key(nick: &str) -> String {
    nick.to_ascii_lowercase()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn error_message(message: impl Into<Vec<u8>>) -> ServerMessage {
    ServerMessage::ErrorMessage {
        message: message.into(),
    }
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
            reserved: HashMap::new(),
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
            Ok(ClientMessage::Login(login)) if !online => {
                self.login(id, LoginRequest::login(login), now, out)
            }
            Ok(ClientMessage::NewUserLogin(login)) if !online => {
                self.login(id, LoginRequest::registration(login), now, out)
            }
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
            ClientMessage::ShareBatch(batch) => self.share_batch(id, batch, out),
            ClientMessage::Unshare { name } => self.unshare(id, &name, out),
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
            ClientMessage::DownloadStarted => self.count_transfer(id, Transfer::Download, 1),
            ClientMessage::DownloadFinished => self.count_transfer(id, Transfer::Download, -1),
            ClientMessage::UploadStarted => self.count_transfer(id, Transfer::Upload, 1),
            ClientMessage::UploadFinished => self.count_transfer(id, Transfer::Upload, -1),
            ClientMessage::MotdRequest => self.send_motd(id, out),
            ClientMessage::ServerPing { args } => Self::echo_ping(id, args, out),
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
            ClientMessage::LinksRequest => Self::server_links(id, out),
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
}
