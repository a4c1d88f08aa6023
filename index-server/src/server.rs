//! The server state: every session, users by nick, the catalog of shared
//! files, the account store; and what each client message does to them.
//!
//! Pure protocol logic: the reactor hands it connections, frames and the
//! current time, and it answers with frames to send and connections to
//! close (an [`Outbox`]). Behaviour follows opennap-ng where the written
//! specification and opennap-ng differ.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use log::{info, warn};

use crate::catalog::{AddRefused, Catalog};
use crate::config::{Config, Registration};
use crate::metrics::{DropReason, Metrics};
use crate::search::Query;
use crate::session::{ConnId, Phase, Session, SharedFile, UserInfo};
use crate::store::{BanKind, Credentials, Level, Store, StoreError};
use crate::wire::{ip_to_wire, put_frame, Fields, Payload};

/// Message numbers the server reads or writes.
pub mod kind {
    pub const ERROR: u16 = 0;
    pub const LOGIN: u16 = 2;
    pub const LOGIN_ACK: u16 = 3;
    pub const VERSION_CHECK: u16 = 4;
    pub const NEW_USER_LOGIN: u16 = 6;
    pub const NICK_CHECK: u16 = 7;
    pub const NICK_FREE: u16 = 8;
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
    pub const BROWSE: u16 = 211;
    pub const BROWSE_ENTRY: u16 = 212;
    pub const BROWSE_END: u16 = 213;
    pub const STATS: u16 = 214;
    pub const DOWNLOADING: u16 = 218;
    pub const DOWNLOAD_DONE: u16 = 219;
    pub const UPLOADING: u16 = 220;
    pub const UPLOAD_DONE: u16 = 221;
    pub const ERROR_MESSAGE: u16 = 404;
    pub const FIREWALLED_DOWNLOAD: u16 = 500;
    pub const FIREWALLED_ACK: u16 = 501;
    pub const WHOIS: u16 = 603;
    pub const WHOIS_RESPONSE: u16 = 604;
    pub const WHOWAS: u16 = 605;
    pub const SET_LEVEL: u16 = 606;
    pub const UPLOAD_REQUEST: u16 = 607;
    pub const UPLOAD_ACCEPT: u16 = 608;
    pub const KILL: u16 = 610;
    pub const NUKE: u16 = 611;
    pub const BAN: u16 = 612;
    pub const UNBAN: u16 = 614;
    pub const BAN_LIST: u16 = 615;
    pub const BAN_ENTRY: u16 = 616;
    pub const QUEUE_LIMIT: u16 = 619;
    pub const QUEUE_LIMIT_NOTICE: u16 = 620;
    pub const MOTD: u16 = 621;
    pub const SERVER_PING: u16 = 750;
    pub const PING: u16 = 751;
    pub const PONG: u16 = 752;
    pub const CHANGE_PASSWORD: u16 = 753;
    pub const ADD_FILES_BY_DIRECTORY: u16 = 870;
}

/// Longest nick accepted (opennap-ng's default).
pub const MAX_NICK_LEN: usize = 19;
/// Download requests a sharer may have outstanding (607 sent, no 608 yet).
const MAX_PENDING_UPLOADS: usize = 64;

/// Frames to write and connections to close, produced by one call.
#[derive(Debug, Default)]
pub struct Outbox {
    frames: Vec<(ConnId, Vec<u8>)>,
    close: Vec<ConnId>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Queues one frame for `to`; consecutive frames to one connection share
    /// a buffer, so a search's results leave in one write.
    pub fn send(&mut self, to: ConnId, kind: u16, payload: &[u8]) {
        match self.frames.last_mut() {
            Some((id, buf)) if *id == to => put_frame(buf, kind, payload),
            _ => {
                let mut buf = Vec::with_capacity(payload.len() + 4);
                put_frame(&mut buf, kind, payload);
                self.frames.push((to, buf));
            }
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
        self.frames.is_empty() && self.close.is_empty()
    }

    /// Connections asked to be closed so far.
    pub fn closing(&self) -> &[ConnId] {
        &self.close
    }
}

/// A download the server asked a sharer about (607), awaiting 608.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingUpload {
    downloader: ConnId,
    file: Vec<u8>,
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
    next_stats: Instant,
}

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

fn is_known(kind: u16) -> bool {
    use kind::*;
    matches!(
        kind,
        LOGIN
            | VERSION_CHECK
            | NEW_USER_LOGIN
            | NICK_CHECK
            | SHARE
            | UNSHARE
            | UNSHARE_ALL
            | SEARCH
            | DOWNLOAD_REQUEST
            | BROWSE
            | STATS
            | DOWNLOADING
            | DOWNLOAD_DONE
            | UPLOADING
            | UPLOAD_DONE
            | FIREWALLED_DOWNLOAD
            | WHOIS
            | SET_LEVEL
            | UPLOAD_ACCEPT
            | KILL
            | NUKE
            | BAN
            | UNBAN
            | BAN_LIST
            | QUEUE_LIMIT
            | MOTD
            | SERVER_PING
            | PING
            | PONG
            | CHANGE_PASSWORD
            | ADD_FILES_BY_DIRECTORY
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Server {
    pub fn new(config: Config, mut store: Store, now: Instant) -> Server {
        for admin in &config.admins {
            match store.set_level(admin, Level::Admin) {
                Ok(true) => info!("{admin} is an admin"),
                Ok(false) => {}
                Err(e) => warn!("cannot make {admin} an admin: {e}"),
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
            next_stats,
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
        } else if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.config.clones_per_ip {
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
                    warn!("ban lookup failed: {e}");
                    None
                }
            }
        };
        if let Some((reason, message)) = refusal {
            self.metrics.count_drop(reason);
            out.send(id, kind::ERROR, message.as_bytes());
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
        self.refresh_gauges();
    }

    /// A client sent a frame longer than `--max-command-length`.
    pub fn on_oversized_frame(&mut self, id: ConnId, len: usize, out: &mut Outbox) {
        self.metrics.count_drop(DropReason::CommandTooLong);
        let message = format!(
            "Message of {len} bytes exceeds the limit of {}",
            self.config.max_command_length
        );
        self.send_error(id, &message, out);
        out.close(id);
    }

    /// A client sent bytes that are not a frame (only possible with a broken framer).
    fn send_error(&self, id: ConnId, message: &str, out: &mut Outbox) {
        let online = self.sessions.get(&id).is_some_and(|s| s.user().is_some());
        let kind = if online {
            kind::ERROR_MESSAGE
        } else {
            kind::ERROR
        };
        out.send(id, kind, message.as_bytes());
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
            out.send(id, kind::ERROR, b"Login timed out");
            out.close(id);
        }
        if now >= self.next_stats {
            self.next_stats = now + self.config.stats_interval;
            let stats = self.stats_payload();
            let mut online: Vec<ConnId> = self.nicks.values().copied().collect();
            online.sort();
            for id in online {
                out.send(id, kind::STATS, &stats);
            }
        }
        self.metrics.sample_rates(now);
        self.refresh_gauges();
    }

    fn stats_payload(&self) -> Vec<u8> {
        let gigabytes = self.catalog.total_bytes() / (1 << 30);
        Payload::new()
            .num(self.nicks.len())
            .num(self.catalog.total_files())
            .num(gigabytes)
            .0
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
        if session.messages.hit(now) > self.config.max_messages_per_second {
            self.metrics.count_drop(DropReason::MessageFlood);
            let online = session.user().is_some();
            let k = if online {
                kind::ERROR_MESSAGE
            } else {
                kind::ERROR
            };
            out.send(id, k, b"Flooding: disconnected");
            out.close(id);
            return;
        }
        let online = session.user().is_some();
        if !is_known(kind) {
            self.metrics.unknown_messages += 1;
            self.metrics.count_message(kind);
            return;
        }
        self.metrics.count_message(kind);
        match kind {
            kind::LOGIN | kind::NEW_USER_LOGIN => {
                if online {
                    out.send(id, kind::ERROR_MESSAGE, b"You are already logged in");
                } else {
                    self.login(id, kind == kind::NEW_USER_LOGIN, payload, now, out);
                }
            }
            kind::NICK_CHECK => self.nick_check(id, payload, out),
            kind::VERSION_CHECK => {}
            _ if !online => {
                out.send(id, kind::ERROR, b"You must log in first");
            }
            _ => self.online_message(id, kind, payload, now, out),
        }
        self.refresh_gauges();
    }

    fn online_message(
        &mut self,
        id: ConnId,
        k: u16,
        payload: &[u8],
        now: Instant,
        out: &mut Outbox,
    ) {
        match k {
            kind::SHARE => self.share(id, payload, out),
            kind::ADD_FILES_BY_DIRECTORY => self.share_directory(id, payload, out),
            kind::UNSHARE => {
                let name = Fields::new(payload).remainder();
                if !self.catalog.remove(id, name) {
                    let msg = format!("Not sharing \"{}\"", text(name));
                    out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
                }
            }
            kind::UNSHARE_ALL => self.catalog.remove_owner(id),
            kind::SEARCH => self.search(id, payload, now, out),
            kind::DOWNLOAD_REQUEST => self.download_request(id, payload, out),
            kind::UPLOAD_ACCEPT => self.upload_accept(id, payload, out),
            kind::QUEUE_LIMIT => self.queue_limit(id, payload, out),
            kind::FIREWALLED_DOWNLOAD => self.firewalled_download(id, payload, out),
            kind::BROWSE => self.browse(id, payload, out),
            kind::STATS => out.send(id, kind::STATS, &self.stats_payload()),
            kind::DOWNLOADING | kind::DOWNLOAD_DONE | kind::UPLOADING | kind::UPLOAD_DONE => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    match k {
                        kind::DOWNLOADING => s.downloads = s.downloads.saturating_add(1),
                        kind::DOWNLOAD_DONE => s.downloads = s.downloads.saturating_sub(1),
                        kind::UPLOADING => s.uploads = s.uploads.saturating_add(1),
                        _ => s.uploads = s.uploads.saturating_sub(1),
                    }
                }
            }
            kind::MOTD => self.send_motd(id, out),
            kind::SERVER_PING => out.send(id, kind::SERVER_PING, b""),
            kind::PING | kind::PONG => self.relay_ping(id, k, payload, out),
            kind::WHOIS => self.whois(id, payload, now, out),
            kind::KILL => self.kill(id, payload, out),
            kind::BAN => self.ban(id, payload, out),
            kind::UNBAN => self.unban(id, payload, out),
            kind::BAN_LIST => self.ban_list(id, out),
            kind::SET_LEVEL => self.set_level(id, payload, out),
            kind::NUKE => self.nuke(id, payload, out),
            kind::CHANGE_PASSWORD => self.change_password(id, payload, out),
            _ => {}
        }
    }

    fn session(&self, id: ConnId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    fn online_by_nick(&self, nick: &[u8]) -> Option<&Session> {
        let nick = std::str::from_utf8(nick).ok()?;
        let id = self.nicks.get(&nick_key(nick))?;
        self.sessions.get(id)
    }

    fn nick_check(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let nick = Fields::new(payload).remainder();
        let reply = if !valid_nick(nick) {
            kind::NICK_INVALID
        } else {
            match self.store.account(&text(nick)) {
                Ok(Some(_)) => kind::NICK_REGISTERED,
                Ok(None) if self.online_by_nick(nick).is_some() => kind::NICK_REGISTERED,
                Ok(None) => kind::NICK_FREE,
                Err(e) => {
                    warn!("nick check: {e}");
                    kind::NICK_REGISTERED
                }
            }
        };
        out.send(id, reply, b"");
    }

    fn refuse_login(&mut self, id: ConnId, reason: DropReason, message: &str, out: &mut Outbox) {
        self.metrics.count_drop(reason);
        out.send(id, kind::ERROR, message.as_bytes());
        out.close(id);
    }

    fn login(
        &mut self,
        id: ConnId,
        new_user: bool,
        payload: &[u8],
        now: Instant,
        out: &mut Outbox,
    ) {
        struct Login<'a> {
            nick: &'a [u8],
            password: &'a str,
            port: u16,
            client: &'a [u8],
            link: u32,
            email: &'a [u8],
        }
        let parse = || -> Result<Login<'_>, hazel_protocol::DecodeError> {
            let mut f = Fields::new(payload);
            let nick = f.field("nick")?;
            let password = f.text("password")?;
            let port = f.number("data port")?;
            let client = f.field("client info")?;
            let link = f.number("link type")?;
            let email = if new_user { f.field("email")? } else { b"" };
            Ok(Login {
                nick,
                password,
                port,
                client,
                link,
                email,
            })
        };
        let login = match parse() {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("Invalid login message: {e}");
                return self.refuse_login(id, DropReason::LoginRefused, &msg, out);
            }
        };
        if !valid_nick(login.nick) {
            return self.refuse_login(id, DropReason::LoginRefused, "Invalid nickname", out);
        }
        let nick = text(login.nick);
        let Some(ip) = self.session(id).map(|s| s.ip) else {
            return;
        };
        match self.store.ban_for(&nick, ip) {
            Ok(Some(ban)) => {
                let msg = format!("You are banned from this server: {}", ban.reason);
                return self.refuse_login(id, DropReason::Banned, &msg, out);
            }
            Ok(None) => {}
            Err(e) => warn!("ban lookup failed: {e}"),
        }
        let is_admin_nick = self
            .config
            .admins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&nick));
        let account = if new_user {
            if self.config.registration == Registration::Closed {
                return self.refuse_login(
                    id,
                    DropReason::LoginRefused,
                    "Registration is closed",
                    out,
                );
            }
            let level = if is_admin_nick {
                Level::Admin
            } else {
                Level::User
            };
            match self
                .store
                .register(&nick, login.password, &text(login.email), level)
            {
                Ok(acct) => {
                    info!("registered {nick}");
                    Some(acct)
                }
                Err(StoreError::NickTaken) => {
                    return self.refuse_login(
                        id,
                        DropReason::LoginRefused,
                        "Nickname is already registered",
                        out,
                    )
                }
                Err(e) => {
                    warn!("register {nick}: {e}");
                    return self.refuse_login(id, DropReason::LoginRefused, "Server error", out);
                }
            }
        } else {
            match self.store.check_login(&nick, login.password) {
                Ok(Credentials::Accepted(acct)) => Some(acct),
                Ok(Credentials::Unregistered) => None,
                Ok(Credentials::WrongPassword) => {
                    return self.refuse_login(id, DropReason::LoginRefused, "Invalid password", out)
                }
                Err(e) => {
                    warn!("login {nick}: {e}");
                    return self.refuse_login(id, DropReason::LoginRefused, "Server error", out);
                }
            }
        };
        let key = nick_key(&nick);
        if let Some(&other) = self.nicks.get(&key) {
            if account.is_some() {
                // The account holder proved the password: the old
                // connection is a ghost (opennap-ng kills it).
                out.send(
                    other,
                    kind::ERROR_MESSAGE,
                    b"You logged in from another connection",
                );
                out.close(other);
                self.metrics.count_drop(DropReason::Killed);
                self.on_disconnect(other);
            } else {
                let msg = format!("Nick {nick} is already active");
                return self.refuse_login(id, DropReason::LoginRefused, &msg, out);
            }
        }
        let (nick, email, level, registered) = match account {
            Some(acct) => (acct.nick, acct.email, acct.level, true),
            None => (
                nick,
                format!("anon@{}", self.config.server_name),
                Level::User,
                false,
            ),
        };
        self.nicks.insert(key, id);
        if let Some(s) = self.sessions.get_mut(&id) {
            s.phase = Phase::Online(UserInfo {
                nick: nick.clone(),
                data_port: login.port,
                client: login.client.to_vec(),
                link_speed: login.link,
                level,
                registered,
                email: email.clone(),
                logged_in_at: now,
            });
        }
        info!("{nick} logged in from {ip}");
        out.send(id, kind::LOGIN_ACK, email.as_bytes());
        self.send_motd(id, out);
        out.send(id, kind::STATS, &self.stats_payload());
    }

    fn send_motd(&self, id: ConnId, out: &mut Outbox) {
        for line in &self.config.motd {
            out.send(id, kind::MOTD, line.as_bytes());
        }
    }

    fn parse_share(
        f: &mut Fields<'_>,
        name: Vec<u8>,
    ) -> Result<SharedFile, hazel_protocol::DecodeError> {
        Ok(SharedFile {
            name,
            md5: f.field("md5")?.to_vec(),
            size: f.number("size")?,
            bitrate: f.number("bitrate")?,
            frequency: f.number("frequency")?,
            duration: f.number("duration")?,
        })
    }

    fn add_share(&mut self, id: ConnId, file: SharedFile, out: &mut Outbox) -> bool {
        let link = self
            .session(id)
            .and_then(|s| s.user())
            .map_or(0, |u| u.link_speed);
        match self.catalog.add(id, link, file, self.config.max_shares) {
            Ok(()) | Err(AddRefused::Duplicate) => true,
            Err(AddRefused::Limit) => {
                self.metrics.count_drop(DropReason::ShareLimit);
                let msg = format!("You may share at most {} files", self.config.max_shares);
                out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
                false
            }
        }
    }

    fn share(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let mut f = Fields::new(payload);
        let parsed = f
            .field("file name")
            .map(<[u8]>::to_vec)
            .and_then(|name| Self::parse_share(&mut f, name));
        match parsed {
            Ok(file) if !file.name.is_empty() => {
                self.add_share(id, file, out);
            }
            _ => out.send(id, kind::ERROR_MESSAGE, b"Invalid share request"),
        }
    }

    fn share_directory(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let mut f = Fields::new(payload);
        let Ok(dir) = f.field("directory") else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid share request");
        };
        while !f.is_empty() {
            let parsed = f.field("file name").and_then(|file| {
                let mut name = Vec::with_capacity(dir.len() + 1 + file.len());
                name.extend_from_slice(dir);
                name.push(b'\\');
                name.extend_from_slice(file);
                Self::parse_share(&mut f, name)
            });
            match parsed {
                Ok(file) => {
                    if !self.add_share(id, file, out) {
                        return;
                    }
                }
                Err(_) => return out.send(id, kind::ERROR_MESSAGE, b"Invalid share request"),
            }
        }
    }

    fn search(&mut self, id: ConnId, payload: &[u8], now: Instant, out: &mut Outbox) {
        let limit = self.config.searches_per_minute;
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let count = session.searches.hit(now);
        if count > limit {
            // Over the limit: refuse politely; far over it: a flooder.
            if count > limit.saturating_mul(2).max(limit.saturating_add(10)) {
                self.metrics.count_drop(DropReason::SearchFlood);
                out.send(id, kind::ERROR_MESSAGE, b"Search flood: disconnected");
                out.close(id);
            } else {
                self.metrics.count_drop(DropReason::SearchRateLimited);
                let msg = format!("Too many searches: at most {limit} per minute");
                out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
                out.send(id, kind::SEARCH_END, b"");
            }
            return;
        }
        let query = match Query::parse(payload) {
            Ok(q) if !q.include.is_empty() => q,
            _ => {
                out.send(id, kind::ERROR_MESSAGE, b"Invalid search request");
                out.send(id, kind::SEARCH_END, b"");
                return;
            }
        };
        self.metrics.searches_total += 1;
        let cap = query
            .max_results
            .filter(|&n| n > 0)
            .map_or(self.config.max_results, |n| n.min(self.config.max_results));
        for hit in self.catalog.search(&query, id, cap) {
            let Some(owner) = self.sessions.get(&hit.owner) else {
                continue;
            };
            let Some(user) = owner.user() else {
                continue;
            };
            let f = hit.file;
            let p = Payload::new()
                .quoted(&f.name)
                .word(&f.md5)
                .num(f.size)
                .num(f.bitrate)
                .num(f.frequency)
                .num(f.duration)
                .text(&user.nick)
                .num(ip_to_wire(owner.ip))
                .num(user.link_speed);
            out.send(id, kind::SEARCH_RESULT, &p.0);
        }
        out.send(id, kind::SEARCH_END, b"");
    }

    /// `<nick> "<file>"`, the shape of 203, 500 and 608.
    fn nick_and_file(payload: &[u8]) -> Option<(&[u8], &[u8])> {
        let mut f = Fields::new(payload);
        let nick = f.field("nick").ok()?;
        let file = f.field("file name").ok()?;
        Some((nick, file))
    }

    fn download_error(id: ConnId, nick: &[u8], file: &[u8], out: &mut Outbox) {
        out.send(
            id,
            kind::DOWNLOAD_ERROR,
            &Payload::new().word(nick).quoted(file).0,
        );
    }

    fn download_request(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let Some((nick, file)) = Self::nick_and_file(payload) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid download request");
        };
        let Some(sharer) = self.online_by_nick(nick) else {
            return Self::download_error(id, nick, file, out);
        };
        let sharer_id = sharer.id;
        if sharer_id == id || self.catalog.file(sharer_id, file).is_none() {
            return Self::download_error(id, nick, file, out);
        }
        let Some(me) = self.session(id).and_then(|s| s.user()) else {
            return;
        };
        let request = Payload::new()
            .text(&me.nick)
            .quoted(file)
            .num(me.link_speed);
        out.send(sharer_id, kind::UPLOAD_REQUEST, &request.0);
        let pending = self.pending.entry(sharer_id).or_default();
        if pending.len() >= MAX_PENDING_UPLOADS {
            pending.remove(0);
        }
        pending.push(PendingUpload {
            downloader: id,
            file: file.to_vec(),
        });
    }

    /// Removes and returns the pending request `sharer` is answering.
    fn take_pending(
        &mut self,
        sharer: ConnId,
        downloader_nick: &[u8],
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

    fn upload_accept(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let Some((nick, file)) = Self::nick_and_file(payload) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid upload accept");
        };
        let Some(downloader) = self.take_pending(id, nick, file) else {
            return; // Not asked, or the downloader left: nothing to answer.
        };
        let Some(sharer) = self.session(id) else {
            return;
        };
        let Some(user) = sharer.user() else {
            return;
        };
        match self.catalog.file(id, file) {
            Some(shared) => {
                let ack = Payload::new()
                    .text(&user.nick)
                    .num(ip_to_wire(sharer.ip))
                    .num(user.data_port)
                    .quoted(file)
                    .word(&shared.md5)
                    .num(user.link_speed);
                out.send(downloader, kind::DOWNLOAD_ACK, &ack.0);
            }
            None => Self::download_error(downloader, user.nick.as_bytes(), file, out),
        }
    }

    fn queue_limit(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let mut f = Fields::new(payload);
        let (Ok(nick), Ok(file), Ok(limit)) =
            (f.field("nick"), f.field("file"), f.number::<u32>("limit"))
        else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid queue limit");
        };
        let Some(downloader) = self.take_pending(id, nick, file) else {
            return;
        };
        let (Some(sharer), Some(shared)) = (
            self.session(id).and_then(|s| s.user()),
            self.catalog.file(id, file),
        ) else {
            return;
        };
        let notice = Payload::new()
            .text(&sharer.nick)
            .quoted(file)
            .num(shared.size)
            .num(limit);
        out.send(downloader, kind::QUEUE_LIMIT_NOTICE, &notice.0);
    }

    fn firewalled_download(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let Some((nick, file)) = Self::nick_and_file(payload) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid download request");
        };
        let Some(sharer) = self.online_by_nick(nick) else {
            let msg = format!("User {} is not currently online", text(nick));
            return out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
        };
        let sharer_id = sharer.id;
        let Some(shared) = self.catalog.file(sharer_id, file) else {
            return Self::download_error(id, nick, file, out);
        };
        let Some(me) = self.session(id) else {
            return;
        };
        let Some(user) = me.user() else {
            return;
        };
        if user.data_port == 0 {
            return out.send(
                id,
                kind::ERROR_MESSAGE,
                b"Both you and the sharer are firewalled",
            );
        }
        let ack = Payload::new()
            .text(&user.nick)
            .num(ip_to_wire(me.ip))
            .num(user.data_port)
            .quoted(file)
            .word(&shared.md5)
            .num(user.link_speed);
        out.send(sharer_id, kind::FIREWALLED_ACK, &ack.0);
    }

    fn browse(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let nick = Fields::new(payload).remainder();
        let Some(target) = self.online_by_nick(nick) else {
            let msg = format!("User {} is not currently online", text(nick));
            out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
            out.send(id, kind::BROWSE_END, nick);
            return;
        };
        let Some(user) = target.user() else {
            return;
        };
        for f in self.catalog.files_of(target.id) {
            let entry = Payload::new()
                .text(&user.nick)
                .quoted(&f.name)
                .word(&f.md5)
                .num(f.size)
                .num(f.bitrate)
                .num(f.frequency)
                .num(f.duration);
            out.send(id, kind::BROWSE_ENTRY, &entry.0);
        }
        let end = Payload::new().text(&user.nick).num(ip_to_wire(target.ip));
        out.send(id, kind::BROWSE_END, &end.0);
    }

    fn relay_ping(&mut self, id: ConnId, k: u16, payload: &[u8], out: &mut Outbox) {
        let nick = Fields::new(payload).remainder();
        let Some(me) = self.session(id).and_then(|s| s.nick()) else {
            return;
        };
        match self.online_by_nick(nick) {
            Some(target) => out.send(target.id, k, me.as_bytes()),
            None => {
                let msg = format!("ping failed, {} is not online", text(nick));
                out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
            }
        }
    }

    fn whois(&mut self, id: ConnId, payload: &[u8], now: Instant, out: &mut Outbox) {
        let nick = Fields::new(payload).remainder();
        let asker_level = self.session(id).map_or(Level::User, Session::level);
        if let Some(target) = self.online_by_nick(nick) {
            let Some(user) = target.user() else {
                return;
            };
            let mut p = Payload::new()
                .text(&user.nick)
                .quoted(user.level.name().as_bytes())
                .num(now.saturating_duration_since(user.logged_in_at).as_secs())
                .quoted(b"")
                .quoted(b"Active")
                .num(self.catalog.count_of(target.id))
                .num(target.downloads)
                .num(target.uploads)
                .num(user.link_speed)
                .quoted(&user.client);
            if asker_level >= Level::Moderator {
                p = p
                    .num(0)
                    .num(0)
                    .text(&target.ip.to_string())
                    .num(0)
                    .num(user.data_port)
                    .text(&user.email);
            }
            out.send(id, kind::WHOIS_RESPONSE, &p.0);
            return;
        }
        match self.store.account(&text(nick)) {
            Ok(Some(acct)) => {
                let p = Payload::new()
                    .text(&acct.nick)
                    .text(acct.level.name())
                    .num(0);
                out.send(id, kind::WHOWAS, &p.0);
            }
            _ => {
                let msg = format!("User {} is not currently online", text(nick));
                out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
            }
        }
    }

    /// The sender's nick and level, if it has at least `needed`.
    fn require(&self, id: ConnId, needed: Level, out: &mut Outbox) -> Option<(String, Level)> {
        let user = self.session(id)?.user()?;
        if user.level >= needed {
            Some((user.nick.clone(), user.level))
        } else {
            out.send(id, kind::ERROR_MESSAGE, b"permission denied");
            None
        }
    }

    /// `<target> ["<reason>"]`, the shape of kill, ban and unban.
    fn target_and_reason(payload: &[u8]) -> Option<(String, String)> {
        let mut f = Fields::new(payload);
        let target = text(f.field("target").ok()?);
        let reason = f.remainder();
        let reason = reason
            .strip_prefix(b"\"")
            .and_then(|r| r.strip_suffix(b"\""))
            .unwrap_or(reason);
        Some((target, text(reason)))
    }

    fn disconnect_user(
        &mut self,
        target: ConnId,
        message: &str,
        reason: DropReason,
        out: &mut Outbox,
    ) {
        self.metrics.count_drop(reason);
        out.send(target, kind::ERROR_MESSAGE, message.as_bytes());
        out.close(target);
        self.on_disconnect(target);
    }

    fn kill(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let Some((me, my_level)) = self.require(id, Level::Moderator, out) else {
            return;
        };
        let Some((target, reason)) = Self::target_and_reason(payload) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid kill request");
        };
        let Some(victim) = self.online_by_nick(target.as_bytes()) else {
            let msg = format!("User {target} is not currently online");
            return out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
        };
        if victim.level() >= my_level && my_level != Level::Elite {
            return out.send(id, kind::ERROR_MESSAGE, b"permission denied");
        }
        let victim = victim.id;
        info!("{me} killed {target}: {reason}");
        let msg = format!("You were killed by {me}: {reason}");
        self.disconnect_user(victim, &msg, DropReason::Killed, out);
        let msg = format!("{target} killed: {reason}");
        out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
    }

    fn ban(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let Some((me, _)) = self.require(id, Level::Moderator, out) else {
            return;
        };
        let Some((target, reason)) = Self::target_and_reason(payload) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid ban request");
        };
        let looks_like_ip = target.parse::<Ipv4Addr>().is_ok()
            || (target.ends_with('.') && target.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        let kind_of = if looks_like_ip {
            BanKind::Ip
        } else {
            BanKind::Nick
        };
        if let Err(e) = self.store.ban(&target, kind_of, &me, &reason) {
            warn!("ban {target}: {e}");
            return out.send(id, kind::ERROR_MESSAGE, b"Server error");
        }
        info!("{me} banned {target}: {reason}");
        // Everyone now matched by the ban leaves.
        let victims: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.id != id)
            .filter(|s| match kind_of {
                BanKind::Nick => s.nick().is_some_and(|n| n.eq_ignore_ascii_case(&target)),
                BanKind::Ip => {
                    let ip = s.ip.to_string();
                    ip == target || (target.ends_with('.') && ip.starts_with(&target))
                }
            })
            .map(|s| s.id)
            .collect();
        for victim in victims {
            let msg = format!("You were banned by {me}: {reason}");
            self.disconnect_user(victim, &msg, DropReason::Banned, out);
        }
        let msg = format!("{target} banned: {reason}");
        out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
    }

    fn unban(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let Some((me, _)) = self.require(id, Level::Moderator, out) else {
            return;
        };
        let Some((target, _)) = Self::target_and_reason(payload) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid unban request");
        };
        let msg = match self.store.unban(&target) {
            Ok(true) => {
                info!("{me} unbanned {target}");
                format!("{target} unbanned")
            }
            Ok(false) => format!("{target} is not banned"),
            Err(e) => {
                warn!("unban {target}: {e}");
                "Server error".to_string()
            }
        };
        out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
    }

    fn ban_list(&mut self, id: ConnId, out: &mut Outbox) {
        if self.require(id, Level::Moderator, out).is_none() {
            return;
        }
        for ban in self.store.bans().unwrap_or_default() {
            let p = Payload::new()
                .text(&ban.target)
                .text(&ban.set_by)
                .quoted(ban.reason.as_bytes())
                .num(ban.created)
                .num(0);
            out.send(id, kind::BAN_ENTRY, &p.0);
        }
        out.send(id, kind::BAN_LIST, b"");
    }

    fn set_level(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        let Some((me, my_level)) = self.require(id, Level::Admin, out) else {
            return;
        };
        let mut f = Fields::new(payload);
        let (Ok(target), Ok(level)) = (f.text("nick"), f.text("level")) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid level change");
        };
        let Some(level) = Level::parse(level) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid level");
        };
        if level >= my_level && my_level != Level::Elite {
            return out.send(id, kind::ERROR_MESSAGE, b"permission denied");
        }
        match self.store.set_level(target, level) {
            Ok(true) => {
                if let Some(&tid) = self.nicks.get(&nick_key(target)) {
                    if let Some(Phase::Online(u)) =
                        self.sessions.get_mut(&tid).map(|s| &mut s.phase)
                    {
                        u.level = level;
                    }
                }
                info!("{me} set {target} to {}", level.name());
                let msg = format!("{target} is now {}", level.name());
                out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
            }
            Ok(false) => {
                let msg = format!("{target} is not registered");
                out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
            }
            Err(e) => {
                warn!("set level {target}: {e}");
                out.send(id, kind::ERROR_MESSAGE, b"Server error");
            }
        }
    }

    fn nuke(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        if self.require(id, Level::Admin, out).is_none() {
            return;
        }
        let target = text(Fields::new(payload).remainder());
        let msg = match self.store.delete_account(&target) {
            Ok(true) => format!("{target} nuked"),
            Ok(false) => format!("{target} is not registered"),
            Err(e) => {
                warn!("nuke {target}: {e}");
                "Server error".to_string()
            }
        };
        out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
    }

    fn change_password(&mut self, id: ConnId, payload: &[u8], out: &mut Outbox) {
        if self.require(id, Level::Admin, out).is_none() {
            return;
        }
        let mut f = Fields::new(payload);
        let (Ok(target), Ok(password)) = (f.text("nick"), f.text("password")) else {
            return out.send(id, kind::ERROR_MESSAGE, b"Invalid password change");
        };
        let msg = match self.store.set_password(target, password) {
            Ok(true) => format!("Password for {target} changed"),
            Ok(false) => format!("{target} is not registered"),
            Err(e) => {
                warn!("password {target}: {e}");
                "Server error".to_string()
            }
        };
        out.send(id, kind::ERROR_MESSAGE, msg.as_bytes());
    }
}
