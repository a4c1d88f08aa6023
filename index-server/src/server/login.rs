//! Logging in: the nick check (7), login (2) and new-user login (6), and
//! what a client gets once online (3, the MOTD, 214). A registered login
//! waits for its password check, a registration for its hash and then for
//! its account to be on disk (see [`super::jobs`]); meanwhile the nick is
//! reserved and the client's further input waits unread.

use std::time::Instant;

use hazel_protocol::napster::{Login, NewUserLogin, ServerMessage};
use hazel_protocol::text::{escape_bytes, Escaped};
use log::{info, warn};

use super::jobs::{Change, PasswordJob, PasswordOutcome, StoreWrite};
use super::{error_message, nick_key, text, Outbox, Server};
use crate::config::Registration;
use crate::metrics::DropReason;
use crate::session::{ConnId, Phase, Session, UserInfo};
use crate::store::{Account, Level};

/// Longest nick accepted (opennap-ng's default).
pub const MAX_NICK_LEN: usize = 19;

/// A login waiting for its password job.
pub(super) struct PendingLogin {
    request: LoginRequest,
    /// The stored account for a login (2); None for a registration (6).
    account: Option<Account>,
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

/// A login (2) or new-user login (6), whichever arrived: the login's
/// fields, and the e-mail of a registration.
pub(super) struct LoginRequest {
    login: Login,
    email: Option<Vec<u8>>,
}

impl LoginRequest {
    pub(super) fn login(login: Login) -> LoginRequest {
        LoginRequest { login, email: None }
    }

    pub(super) fn registration(new_user: NewUserLogin) -> LoginRequest {
        let NewUserLogin {
            nick,
            password,
            port,
            client_info,
            link_speed,
            email,
        } = new_user;
        let login = Login {
            nick,
            password,
            port,
            client_info,
            link_speed,
            build: None,
        };
        LoginRequest {
            login,
            email: Some(email),
        }
    }
}

/// How a refused login's nick is shown in the log.
fn nick_detail(nick: &str) -> String {
    format!("nick \"{}\"", Escaped::new(nick))
}

impl Server {
    /// True while a login waits for its password job; the reactor leaves
    /// the connection's further input unread until then.
    pub fn is_authenticating(&self, id: ConnId) -> bool {
        self.authenticating.contains_key(&id)
    }

    pub(super) fn nick_check(&mut self, id: ConnId, nick: &[u8], out: &mut Outbox) {
        let reply = if !valid_nick(nick) {
            ServerMessage::NickInvalid
        } else {
            let nick = text(nick);
            match self.store.account(&nick) {
                Ok(Some(_)) => ServerMessage::NickRegistered,
                Ok(None) if self.online_by_nick(&nick).is_some() || self.is_reserved(&nick) => {
                    ServerMessage::NickRegistered
                }
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
    pub(super) fn refuse_login(
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

    pub(super) fn login(
        &mut self,
        id: ConnId,
        request: LoginRequest,
        now: Instant,
        out: &mut Outbox,
    ) {
        if self.is_online(id) || self.is_authenticating(id) {
            return out.message(id, &error_message("You are already logged in"));
        }
        let detail = format!(
            "nick \"{}\"",
            Escaped::new(&request.login.nick).max_chars(40)
        );
        if !valid_nick(request.login.nick.as_bytes()) {
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
        match self.store.ban_for(&request.login.nick, ip) {
            Ok(Some(ban)) => {
                let msg = format!("You are banned from this server: {}", ban.reason);
                return self.refuse_login(id, DropReason::Banned, &msg, &detail, out);
            }
            Ok(None) => {}
            Err(e) => warn!("ban lookup for {}: {e}", self.who(id)),
        }
        if request.email.is_some() {
            if self.config.registration == Registration::Closed {
                return self.refuse_login(
                    id,
                    DropReason::LoginRefused,
                    "Registration is closed",
                    &detail,
                    out,
                );
            }
            match self.store.account(&request.login.nick) {
                Ok(None) if !self.is_reserved(&request.login.nick) => {}
                Ok(_) => {
                    return self.refuse_login(
                        id,
                        DropReason::LoginRefused,
                        "Nickname is already registered",
                        &detail,
                        out,
                    )
                }
                Err(e) => {
                    warn!("register {}: {e}", Escaped::new(&request.login.nick));
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
            if let Some(msg) = self.nick_in_use(&request.login.nick) {
                return self.refuse_login(id, DropReason::LoginRefused, &msg, &detail, out);
            }
            out.job(PasswordJob::Hash {
                conn: id,
                password: request.login.password.clone(),
                cost: self.store.cost(),
            });
            self.authenticating.insert(
                id,
                PendingLogin {
                    request,
                    account: None,
                },
            );
            return;
        }
        match self.store.password_record(&request.login.nick) {
            // opennap-ng's default: an unregistered nick logs in as a guest.
            Ok(None) => self.complete_login(id, request, None, now, out),
            Ok(Some((account, hash))) => {
                out.job(PasswordJob::Verify {
                    conn: id,
                    hash,
                    password: request.login.password.clone(),
                });
                self.authenticating.insert(
                    id,
                    PendingLogin {
                        request,
                        account: Some(account),
                    },
                );
            }
            Err(e) => {
                warn!("login {}: {e}", Escaped::new(&request.login.nick));
                self.refuse_login(id, DropReason::LoginRefused, "Server error", &detail, out);
            }
        }
    }

    /// The refusal to give if `nick` is online (as a guest, or a registered
    /// user), None if it is free.
    pub(super) fn nick_in_use(&self, nick: &str) -> Option<String> {
        let user = self.online_by_nick(nick)?.user()?;
        Some(format!("{} is already active", user.nick))
    }

    /// True while a registration of `nick` waits for its account to be
    /// stored: the nick is taken, though not yet on disk.
    pub(super) fn is_reserved(&self, nick: &str) -> bool {
        self.reserved.contains_key(&nick_key(nick))
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
        let detail = nick_detail(&request.login.nick);
        match (outcome, pending.account) {
            (PasswordOutcome::Verified(true), Some(account)) => {
                out.write(StoreWrite {
                    conn: id,
                    change: Change::Touch {
                        nick: account.nick.clone(),
                    },
                });
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
                // A guest may have taken the nick while the hash was made,
                // or another registration of it be on its way to disk.
                if let Some(msg) = self.nick_in_use(&request.login.nick) {
                    return self.refuse_login(id, DropReason::LoginRefused, &msg, &detail, out);
                }
                if self.is_reserved(&request.login.nick) {
                    let msg = "Nickname is already registered";
                    return self.refuse_login(id, DropReason::LoginRefused, msg, &detail, out);
                }
                let is_admin = self
                    .config
                    .admins
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&request.login.nick));
                let level = if is_admin { Level::Admin } else { Level::User };
                let email = text(request.email.as_deref().unwrap_or_default());
                self.reserved.insert(nick_key(&request.login.nick), id);
                out.write(StoreWrite {
                    conn: id,
                    change: Change::Register {
                        nick: request.login.nick.clone(),
                        hash,
                        email,
                        level,
                    },
                });
                // Still authenticating: the connection stays paused until
                // the account is stored.
                self.authenticating.insert(
                    id,
                    PendingLogin {
                        request,
                        account: None,
                    },
                );
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

    /// A registration's account is stored (or could not be): the
    /// registering client goes online, or is refused.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn registered(
        &mut self,
        id: ConnId,
        nick: String,
        email: String,
        level: Level,
        result: Result<bool, String>,
        now: Instant,
        out: &mut Outbox,
    ) {
        if self.reserved.get(&nick_key(&nick)) == Some(&id) {
            self.reserved.remove(&nick_key(&nick));
        }
        let detail = nick_detail(&nick);
        match result {
            Ok(true) => info!("registered {}", Escaped::new(&nick)),
            Ok(false) => {}
            Err(ref e) => warn!("register {}: {e}", Escaped::new(&nick)),
        }
        let Some(pending) = self.authenticating.remove(&id) else {
            return; // The connection left meanwhile; the account stays.
        };
        match result {
            Ok(true) => {
                let account = Account { nick, email, level };
                self.complete_login(id, pending.request, Some(account), now, out);
            }
            Ok(false) => self.refuse_login(
                id,
                DropReason::LoginRefused,
                "Nickname is already registered",
                &detail,
                out,
            ),
            Err(_) => self.refuse_login(id, DropReason::LoginRefused, "Server error", &detail, out),
        }
    }

    /// Puts an authenticated (or guest) connection online: 3, MOTD, 214.
    pub(super) fn complete_login(
        &mut self,
        id: ConnId,
        request: LoginRequest,
        account: Option<Account>,
        now: Instant,
        out: &mut Outbox,
    ) {
        let key = nick_key(&request.login.nick);
        let holder = self.nicks.get(&key).copied();
        // The account holder proved the password: a connection online
        // under the same account is a ghost (opennap-ng kills it).
        let ghost = holder.filter(|other| {
            account.is_some()
                && self
                    .sessions
                    .get(other)
                    .and_then(Session::user)
                    .is_some_and(|u| u.registered)
        });
        let reserved = account.is_none() && self.reserved.contains_key(&key);
        if reserved || (holder.is_some() && ghost.is_none()) {
            let msg = format!("{} is already active", request.login.nick);
            let detail = nick_detail(&request.login.nick);
            return self.refuse_login(id, DropReason::LoginRefused, &msg, &detail, out);
        }
        if let Some(other) = ghost {
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
        }
        let (nick, email, level, registered) = match account {
            Some(acct) => (acct.nick, acct.email, acct.level, true),
            None => (
                request.login.nick,
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
        let client_shown = escape_bytes(&request.login.client_info);
        session.phase = Phase::Online(UserInfo {
            nick: nick.clone(),
            data_port: request.login.port,
            client: request.login.client_info,
            link_speed: request.login.link_speed,
            level,
            registered,
            email: email.clone(),
            logged_in_at: now,
        });
        self.catalog
            .add_owner(id, &nick, ip, request.login.link_speed);
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

    pub(super) fn send_motd(&self, id: ConnId, out: &mut Outbox) {
        for line in &self.config.motd {
            out.message(
                id,
                &ServerMessage::Motd {
                    line: line.as_bytes().to_vec(),
                },
            );
        }
    }
}
