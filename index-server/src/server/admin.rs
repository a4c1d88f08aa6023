//! Moderators' and admins' commands: kill (610), ban, unban and the ban
//! list (612, 614, 615), levels (606), nuke (611), passwords (753). A
//! command that changes the store is a [`StoreWrite`]; its effects and the
//! confirmation follow once it is on disk (the `…ed`/`…_set` methods).

use std::net::Ipv4Addr;

use hazel_protocol::napster::{BanEntry, ServerMessage};
use hazel_protocol::text::Escaped;
use log::{info, warn};

use super::jobs::{Change, StoreWrite};
use super::{error_message, nick_key, text, Outbox, Server};
use crate::metrics::DropReason;
use crate::session::{ConnId, Phase};
use crate::store::{BanKind, Level};

impl Server {
    /// The sender's nick and level, if it has at least `needed`.
    pub(super) fn require(
        &self,
        id: ConnId,
        needed: Level,
        out: &mut Outbox,
    ) -> Option<(String, Level)> {
        let user = self.session(id)?.user()?;
        if user.level >= needed {
            Some((user.nick.clone(), user.level))
        } else {
            out.message(id, &error_message("permission denied"));
            None
        }
    }

    pub(super) fn disconnect_user(
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

    pub(super) fn kill(
        &mut self,
        id: ConnId,
        target: &str,
        reason: Option<Vec<u8>>,
        out: &mut Outbox,
    ) {
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

    pub(super) fn ban(
        &mut self,
        id: ConnId,
        target: &str,
        reason: Option<Vec<u8>>,
        out: &mut Outbox,
    ) {
        let looks_like_ip = target.parse::<Ipv4Addr>().is_ok()
            || (target.ends_with('.') && target.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        let kind = if looks_like_ip {
            BanKind::Ip
        } else {
            BanKind::Nick
        };
        let (target, reason) = (target.to_string(), text(&reason.unwrap_or_default()));
        self.write_as(id, Level::Moderator, out, |by| Change::Ban {
            target,
            kind,
            by,
            reason,
        });
    }

    /// A ban is on disk: everyone it matches leaves (except whoever set
    /// it), and the moderator is told.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn banned(
        &mut self,
        id: ConnId,
        target: &str,
        kind: BanKind,
        me: &str,
        reason: &str,
        result: Result<bool, String>,
        out: &mut Outbox,
    ) {
        if let Err(e) = result {
            warn!("ban {}: {e}", Escaped::new(target));
            return out.message(id, &error_message("Server error"));
        }
        info!(
            "{} banned {}: {}",
            Escaped::new(me),
            Escaped::new(target),
            Escaped::new(reason)
        );
        let victims: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.id != id)
            .filter(|s| match kind {
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

    /// Queues the change `change` makes of the sender's nick, if the
    /// sender has at least `needed`.
    fn write_as(
        &mut self,
        id: ConnId,
        needed: Level,
        out: &mut Outbox,
        change: impl FnOnce(String) -> Change,
    ) {
        if let Some((me, _)) = self.require(id, needed, out) {
            out.write(StoreWrite {
                conn: id,
                change: change(me),
            });
        }
    }

    pub(super) fn unban(&mut self, id: ConnId, target: &str, out: &mut Outbox) {
        let target = target.to_string();
        self.write_as(id, Level::Moderator, out, |by| Change::Unban { target, by });
    }

    pub(super) fn unbanned(
        &mut self,
        id: ConnId,
        target: &str,
        me: &str,
        result: Result<bool, String>,
        out: &mut Outbox,
    ) {
        let done = format!("{target} unbanned");
        let absent = format!("{target} is not banned");
        if confirm(id, result, ("unban", target), done, absent, out) {
            info!("{} unbanned {}", Escaped::new(me), Escaped::new(target));
        }
    }

    pub(super) fn ban_list(&mut self, id: ConnId, out: &mut Outbox) {
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

    pub(super) fn set_level(&mut self, id: ConnId, target: &str, level: &[u8], out: &mut Outbox) {
        let Some((me, my_level)) = self.require(id, Level::Admin, out) else {
            return;
        };
        let Some(level) = Level::parse(&text(level)) else {
            return out.message(id, &error_message("Invalid level"));
        };
        if level >= my_level && my_level != Level::Elite {
            return out.message(id, &error_message("permission denied"));
        }
        let change = Change::SetLevel {
            nick: target.to_string(),
            level,
            by: me,
        };
        out.write(StoreWrite { conn: id, change });
    }

    /// A level is on disk: the user has it at once if online.
    pub(super) fn level_set(
        &mut self,
        id: ConnId,
        target: &str,
        level: Level,
        me: &str,
        result: Result<bool, String>,
        out: &mut Outbox,
    ) {
        let done = format!("{target} is now {}", level.name());
        if !confirm(
            id,
            result,
            ("set level", target),
            done,
            not_registered(target),
            out,
        ) {
            return;
        }
        if let Some(&tid) = self.nicks.get(&nick_key(target)) {
            if let Some(Phase::Online(u)) = self.sessions.get_mut(&tid).map(|s| &mut s.phase) {
                u.level = level;
            }
        }
        info!(
            "{} set {} to {}",
            Escaped::new(me),
            Escaped::new(target),
            level.name()
        );
    }

    pub(super) fn nuke(&mut self, id: ConnId, target: &str, out: &mut Outbox) {
        let nick = target.to_string();
        self.write_as(id, Level::Admin, out, |by| Change::DeleteAccount {
            nick,
            by,
        });
    }

    pub(super) fn nuked(
        &mut self,
        id: ConnId,
        target: &str,
        me: &str,
        result: Result<bool, String>,
        out: &mut Outbox,
    ) {
        let (done, absent) = (format!("{target} nuked"), not_registered(target));
        if confirm(id, result, ("nuke", target), done, absent, out) {
            info!("{} nuked {}", Escaped::new(me), Escaped::new(target));
        }
    }

    pub(super) fn change_password(
        &mut self,
        id: ConnId,
        target: &str,
        password: &[u8],
        out: &mut Outbox,
    ) {
        let (nick, password) = (target.to_string(), password.to_vec());
        self.write_as(id, Level::Admin, out, |by| Change::SetPassword {
            nick,
            password,
            by,
        });
    }

    pub(super) fn password_set(
        &mut self,
        id: ConnId,
        target: &str,
        me: &str,
        result: Result<bool, String>,
        out: &mut Outbox,
    ) {
        let done = format!("Password for {target} changed");
        if confirm(
            id,
            result,
            ("password", target),
            done,
            not_registered(target),
            out,
        ) {
            info!(
                "{} changed the password of {}",
                Escaped::new(me),
                Escaped::new(target)
            );
        }
    }
}

fn not_registered(nick: &str) -> String {
    format!("{nick} is not registered")
}

/// Tells an admin how a change went once the store has it: `done` if it
/// changed something, `absent` if there was nothing to change, "Server
/// error" (and a warning naming `what`) if it failed. True when done.
fn confirm(
    id: ConnId,
    result: Result<bool, String>,
    what: (&str, &str),
    done: String,
    absent: String,
    out: &mut Outbox,
) -> bool {
    let (msg, changed) = match result {
        Ok(true) => (done, true),
        Ok(false) => (absent, false),
        Err(e) => {
            warn!("{} {}: {e}", what.0, Escaped::new(what.1));
            ("Server error".to_string(), false)
        }
    };
    out.message(id, &error_message(msg));
    changed
}
