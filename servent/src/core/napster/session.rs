//! One OpenNap server as a client sees it: connecting, logging in (nick
//! check, then a new-user login that registers a free nick or a login),
//! staying online (answering the server's pings, pinging it when quiet),
//! and going back to connecting with a growing backoff after a drop.
//!
//! Sans IO: bytes in, frames out, the time handed in. What the session
//! cannot decide alone (results, upload requests, download answers) goes up
//! to [`super::Napster`] as [`Incoming`] messages.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hazel_protocol::napster::{
    ClientMessage, Login, NapsterFramer, NewUserLogin, ServerMessage, ServerStats,
};
use hazel_protocol::text::escape_bytes;

use crate::core::ConnId;

/// A login must be answered within this time.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Ask the server something after this long without a byte from it.
pub const KEEPALIVE: Duration = Duration::from_secs(60);
/// Drop the session after this long without a byte from it.
pub const SILENCE: Duration = Duration::from_secs(180);
/// Backoff after a drop: doubles from the first to the last.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Most bytes queued for the server; beyond it the session is dropped
/// (the server does not read).
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// MOTD lines kept.
pub const MAX_MOTD_LINES: usize = 64;
/// Largest frame accepted from a server.
pub const MAX_FRAME: usize = 16 * 1024;

/// The client's identity on every server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub nick: String,
    pub password: Option<String>,
    /// The data port announced at login (0: firewalled).
    pub data_port: u16,
    /// Link speed code (0 unknown … 10 T3).
    pub link_speed: u32,
}

/// Where a session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Waiting to (re)connect at this time.
    Waiting {
        until: Instant,
    },
    /// A connect is in progress.
    Connecting {
        since: Instant,
    },
    /// Connected, login sent, no answer yet.
    LoggingIn {
        deadline: Instant,
    },
    Online {
        since: Instant,
    },
    /// The server refused the login: not retried until asked again.
    Refused,
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Waiting { .. } => "reconnecting",
            Phase::Connecting { .. } => "connecting",
            Phase::LoggingIn { .. } => "logging in",
            Phase::Online { .. } => "online",
            Phase::Refused => "refused",
        }
    }
}

/// A server message the session passes up (it handled the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Logged in: share the library now.
    LoggedIn,
    /// The connection is gone (the reason, for the user).
    Dropped(String),
    /// Something to tell the user (MOTD line, server error…), escaped.
    Notice(String),
    /// Any message after login that is not the session's own business.
    Message(ServerMessage),
}

/// Messages and bytes with one server, and what was skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Frames that did not decode and message numbers Hazel does not know.
    pub skipped: u64,
    /// Server errors (404) that repeated the one before (not shown again).
    pub repeated_errors: u64,
}

/// One server.
#[derive(Debug)]
pub struct Session {
    pub addr: SocketAddr,
    pub conn: Option<ConnId>,
    pub phase: Phase,
    framer: NapsterFramer,
    out: Vec<u8>,
    /// Consecutive failures (connects or sessions that ended).
    failures: u32,
    last_received: Instant,
    last_ping: Instant,
    pub motd: Vec<String>,
    pub stats: Option<ServerStats>,
    /// The last error the server or the network gave, escaped.
    pub last_error: Option<String>,
    /// What went over the sessions with this server, all of them.
    pub traffic: Traffic,
    /// Set once the nick check is answered: whether we are registering.
    registering: bool,
}

impl Session {
    pub fn new(addr: SocketAddr, now: Instant) -> Session {
        Session {
            addr,
            conn: None,
            phase: Phase::Waiting { until: now },
            framer: NapsterFramer::new(MAX_FRAME),
            out: Vec::new(),
            failures: 0,
            last_received: now,
            last_ping: now,
            motd: Vec::new(),
            stats: None,
            last_error: None,
            traffic: Traffic::default(),
            registering: false,
        }
    }

    pub fn is_online(&self) -> bool {
        matches!(self.phase, Phase::Online { .. })
    }

    /// Whether it is time to dial.
    pub fn due(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Waiting { until } if now >= until)
    }

    pub fn dialling(&mut self, now: Instant) {
        self.phase = Phase::Connecting { since: now };
    }

    /// The connect failed: wait and try again.
    pub fn connect_failed(&mut self, error: &str, now: Instant) {
        self.last_error = Some(escape_bytes(error.as_bytes()));
        self.back_off(now);
    }

    fn back_off(&mut self, now: Instant) {
        self.conn = None;
        let shift = self.failures.min(6);
        self.failures = self.failures.saturating_add(1);
        let wait = (BACKOFF_FIRST * (1u32 << shift)).min(BACKOFF_MAX);
        self.phase = Phase::Waiting { until: now + wait };
        self.framer = NapsterFramer::new(MAX_FRAME);
        self.out.clear();
        self.registering = false;
    }

    /// How long until the next attempt (for the user).
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        match self.phase {
            Phase::Waiting { until } => Some(until.saturating_duration_since(now)),
            _ => None,
        }
    }

    /// The socket is up: ask whether the nick is registered.
    pub fn connected(&mut self, id: ConnId, identity: &Identity, now: Instant) {
        self.conn = Some(id);
        self.last_received = now;
        self.phase = Phase::LoggingIn {
            deadline: now + LOGIN_TIMEOUT,
        };
        self.send(&ClientMessage::NickCheck {
            nick: identity.nick.clone(),
        });
    }

    /// Queues one message (dropped if it cannot be encoded: a name with a
    /// quote, say; the caller filtered those).
    pub fn send(&mut self, message: &ClientMessage) {
        if self.out.len() > MAX_OUTPUT {
            return;
        }
        if message.encode(&mut self.out).is_ok() {
            self.traffic.messages_out += 1;
        }
    }

    /// True when the output is over its bound (the server does not read).
    pub fn output_overflowed(&self) -> bool {
        self.out.len() > MAX_OUTPUT
    }

    pub fn output(&self) -> &[u8] {
        &self.out
    }

    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.out.len());
        self.out.drain(..n);
        self.traffic.bytes_out += n as u64;
    }

    /// The connection closed or failed.
    pub fn closed(&mut self, reason: &str, now: Instant) -> Incoming {
        let was_online = self.is_online();
        let refused = self.phase == Phase::Refused;
        self.conn = None;
        if refused {
            self.out.clear();
            return Incoming::Dropped(reason.to_string());
        }
        if was_online {
            // It worked: start the backoff again from its first step.
            self.failures = 0;
        }
        self.last_error.get_or_insert_with(|| reason.to_string());
        self.back_off(now);
        Incoming::Dropped(reason.to_string())
    }

    /// Bytes from the server: what the caller must act on.
    pub fn on_bytes(&mut self, bytes: &[u8], identity: &Identity, now: Instant) -> Vec<Incoming> {
        self.traffic.bytes_in += bytes.len() as u64;
        self.last_received = now;
        self.framer.push(bytes);
        let mut up = Vec::new();
        loop {
            let frame = match self.framer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    up.push(Incoming::Dropped(format!("bad frame from the server: {e}")));
                    break;
                }
            };
            self.traffic.messages_in += 1;
            let message = match ServerMessage::from_frame(&frame) {
                Ok(message) => message,
                Err(_) => {
                    // Tolerant: a message we cannot read is skipped.
                    self.traffic.skipped += 1;
                    continue;
                }
            };
            if let ServerMessage::Unknown { .. } = message {
                self.traffic.skipped += 1;
                continue;
            }
            self.on_message(message, identity, now, &mut up);
        }
        up
    }

    fn on_message(
        &mut self,
        message: ServerMessage,
        identity: &Identity,
        now: Instant,
        up: &mut Vec<Incoming>,
    ) {
        match message {
            ServerMessage::NickNotRegistered if !self.is_online() => match &identity.password {
                Some(password) => {
                    self.registering = true;
                    self.send(&ClientMessage::NewUserLogin(NewUserLogin {
                        nick: identity.nick.clone(),
                        password: password.as_bytes().to_vec(),
                        port: identity.data_port,
                        client_info: CLIENT_INFO.to_vec(),
                        link_speed: identity.link_speed,
                        email: b"anon@hazel".to_vec(),
                    }))
                }
                None => self.send_login(identity),
            },
            ServerMessage::NickRegistered if !self.is_online() => self.send_login(identity),
            ServerMessage::NickInvalid if !self.is_online() => {
                self.refuse("the server says the nick is invalid".to_string(), up);
            }
            ServerMessage::Error { message } => {
                let text = escape_bytes(&message);
                if self.is_online() {
                    up.push(Incoming::Notice(format!("server error: {text}")));
                    self.last_error = Some(text);
                } else {
                    self.refuse(format!("login refused: {text}"), up);
                }
            }
            ServerMessage::LoginAck { .. } if !self.is_online() => {
                self.phase = Phase::Online { since: now };
                self.failures = 0;
                self.last_error = None;
                self.motd.clear();
                up.push(Incoming::Notice(format!(
                    "logged in as {}{}",
                    identity.nick,
                    if self.registering {
                        " (nick registered)"
                    } else {
                        ""
                    }
                )));
                up.push(Incoming::LoggedIn);
            }
            ServerMessage::Motd { line } => {
                let line = escape_bytes(&line);
                if self.motd.len() < MAX_MOTD_LINES {
                    self.motd.push(line.clone());
                }
                up.push(Incoming::Notice(format!("motd: {line}")));
            }
            ServerMessage::Stats(stats) => {
                self.stats = Some(stats);
            }
            ServerMessage::ServerPing { .. } => {
                // Napster answers a server's ping with its nick.
                self.send(&ClientMessage::ServerPing {
                    args: identity.nick.as_bytes().to_vec(),
                });
            }
            ServerMessage::PingUser { nick } => {
                self.send(&ClientMessage::PongUser { nick });
            }
            ServerMessage::ErrorMessage { message } => {
                // The same error again (one per share over the server's
                // limit, say) is counted, not repeated to the user.
                let text = escape_bytes(&message);
                if self.last_error.as_deref() == Some(text.as_str()) {
                    self.traffic.repeated_errors += 1;
                } else {
                    self.last_error = Some(text.clone());
                    up.push(Incoming::Notice(format!("server: {text}")));
                }
            }
            other if self.is_online() => up.push(Incoming::Message(other)),
            _ => self.traffic.skipped += 1,
        }
    }

    fn send_login(&mut self, identity: &Identity) {
        self.registering = false;
        self.send(&ClientMessage::Login(Login {
            nick: identity.nick.clone(),
            // A guest still sends a password (the field cannot be empty).
            password: identity
                .password
                .as_deref()
                .unwrap_or(GUEST_PASSWORD)
                .as_bytes()
                .to_vec(),
            port: identity.data_port,
            client_info: CLIENT_INFO.to_vec(),
            link_speed: identity.link_speed,
            build: None,
        }));
    }

    fn refuse(&mut self, reason: String, up: &mut Vec<Incoming>) {
        self.phase = Phase::Refused;
        self.last_error = Some(reason.clone());
        up.push(Incoming::Notice(reason));
    }

    /// Timers: the login deadline, keep-alive pings, a silent server.
    /// Returns a reason when the session must be dropped.
    pub fn tick(&mut self, now: Instant) -> Option<String> {
        match self.phase {
            Phase::LoggingIn { deadline } if now >= deadline => {
                Some("no answer to the login".to_string())
            }
            Phase::Online { .. } => {
                let quiet = now.saturating_duration_since(self.last_received);
                if quiet >= SILENCE {
                    return Some("the server went silent".to_string());
                }
                if quiet >= KEEPALIVE && now.saturating_duration_since(self.last_ping) >= KEEPALIVE
                {
                    // A stats request: every server answers it (214), and
                    // `index status` stays current.
                    self.last_ping = now;
                    self.send(&ClientMessage::StatsRequest);
                }
                if self.output_overflowed() {
                    return Some("the server does not read".to_string());
                }
                None
            }
            _ => None,
        }
    }

    /// Forget everything queued (the user disconnected).
    pub fn stop(&mut self) {
        self.out.clear();
        self.conn = None;
        self.phase = Phase::Refused;
    }
}

/// The password a guest (no `--password`) logs in with.
pub const GUEST_PASSWORD: &str = "guest";

/// What we call ourselves at login.
pub const CLIENT_INFO: &[u8] = concat!("Hazel ", env!("CARGO_PKG_VERSION")).as_bytes();

/// Messages waiting for a reply, oldest first, with a bound.
#[derive(Debug, Default)]
pub struct Pending<T> {
    items: VecDeque<(T, Instant)>,
}

impl<T: PartialEq> Pending<T> {
    pub const MAX: usize = 256;

    pub fn push(&mut self, item: T, deadline: Instant) {
        if self.items.len() >= Self::MAX {
            self.items.pop_front();
        }
        self.items.push_back((item, deadline));
    }

    pub fn front(&self) -> Option<&T> {
        self.items.front().map(|(t, _)| t)
    }

    pub fn pop_front(&mut self) -> Option<T> {
        self.items.pop_front().map(|(t, _)| t)
    }

    /// Drops what is past its deadline.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let mut gone = Vec::new();
        while self.items.front().is_some_and(|(_, d)| *d <= now) {
            if let Some((t, _)) = self.items.pop_front() {
                gone.push(t);
            }
        }
        gone
    }

    /// Removes and returns the first item `matches` accepts.
    pub fn take(&mut self, matches: impl Fn(&T) -> bool) -> Option<T> {
        let pos = self.items.iter().position(|(t, _)| matches(t))?;
        self.items.remove(pos).map(|(t, _)| t)
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
