//! Work too slow for the event loop, handed to the reactor's worker threads
//! as values and answered through [`Server::on_password_result`] and
//! [`Server::on_store_result`].
//!
//! - [`PasswordJob`]: argon2 takes tens of milliseconds by design.
//! - [`StoreWrite`]: every change to the accounts and bans is a SQLite
//!   commit, and a commit waits for its fsync (`synchronous=FULL`): about
//!   0.3 ms on a quiet disk, tens of milliseconds on a busy one. Run on the
//!   loop, a storm of registrations held every other client up for 0.4 s
//!   (see the README's login storm figures). The store writer thread runs
//!   them on its own connection; the loop keeps a connection for reads
//!   (lookups by primary key and the ban list, 5 to 25 µs each), which see
//!   every change once its outcome has arrived.
//!
//! Whoever waits for a change (a registering client, an admin's
//! confirmation) hears only once it is on disk, as before.

use std::time::Instant;

use hazel_protocol::text::Escaped;
use log::warn;

use super::{Outbox, Server};
use crate::session::ConnId;
use crate::store::{self, BanKind, Level, PasswordCost, Store, StoreError};

/// Password work: the reactor runs it on a worker thread. Until the outcome
/// arrives the connection's further input waits unread.
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

/// A change to the accounts and bans, for the store writer thread.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreWrite {
    /// The connection that waits for the outcome (the one that asked).
    pub conn: ConnId,
    pub change: Change,
}

/// What a [`StoreWrite`] changes. Admin changes carry the admin's nick
/// (`by`) for the log line written when they are done.
#[derive(Clone, PartialEq, Eq)]
pub enum Change {
    /// A registered login succeeded: its last-seen time. Nobody waits.
    Touch {
        nick: String,
    },
    /// A new account whose password is hashed already.
    Register {
        nick: String,
        hash: String,
        email: String,
        level: Level,
    },
    Ban {
        target: String,
        kind: BanKind,
        by: String,
        reason: String,
    },
    Unban {
        target: String,
        by: String,
    },
    SetLevel {
        nick: String,
        level: Level,
        by: String,
    },
    DeleteAccount {
        nick: String,
        by: String,
    },
    /// Hashes the password (on the writer thread) and stores the hash.
    /// The password is dropped once used.
    SetPassword {
        nick: String,
        password: Vec<u8>,
        by: String,
    },
}

impl std::fmt::Debug for StoreWrite {
    // Never print a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.change {
            Change::Touch { .. } => "Touch",
            Change::Register { .. } => "Register",
            Change::Ban { .. } => "Ban",
            Change::Unban { .. } => "Unban",
            Change::SetLevel { .. } => "SetLevel",
            Change::DeleteAccount { .. } => "DeleteAccount",
            Change::SetPassword { .. } => "SetPassword",
        };
        write!(f, "{what}({:?})", self.conn)
    }
}

/// A [`StoreWrite`] done: `Ok(true)` when it changed something, `Ok(false)`
/// when there was nothing to change (no such account or ban; for a
/// registration, the nick was taken), or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDone {
    pub write: StoreWrite,
    pub result: Result<bool, String>,
}

impl StoreWrite {
    /// Applies the change to `store` (a commit each: call it off the event
    /// loop, except in tests).
    pub fn run(mut self, store: &mut Store) -> StoreDone {
        let result = match &mut self.change {
            Change::Touch { nick } => store.touch(nick).map(|()| true),
            Change::Register {
                nick,
                hash,
                email,
                level,
            } => match store.insert_account(nick, hash, email, *level) {
                Ok(_) => Ok(true),
                Err(StoreError::NickTaken) => Ok(false),
                Err(e) => Err(e),
            },
            Change::Ban {
                target,
                kind,
                by,
                reason,
            } => store.ban(target, *kind, by, reason).map(|()| true),
            Change::Unban { target, .. } => store.unban(target),
            Change::SetLevel { nick, level, .. } => store.set_level(nick, *level),
            Change::DeleteAccount { nick, .. } => store.delete_account(nick),
            Change::SetPassword { nick, password, .. } => {
                let result = store.set_password(nick, password);
                *password = Vec::new();
                result
            }
        };
        StoreDone {
            write: self,
            result: result.map_err(|e| e.to_string()),
        }
    }

    /// The outcome when the writer cannot take the write (queue full or
    /// gone).
    pub fn refused(self) -> StoreDone {
        StoreDone {
            write: self,
            result: Err("the store writer is busy".to_string()),
        }
    }
}

impl Server {
    /// A store write finished: tell whoever waits for it.
    pub fn on_store_result(&mut self, done: StoreDone, now: Instant, out: &mut Outbox) {
        let StoreDone { write, result } = done;
        let id = write.conn;
        match write.change {
            Change::Touch { nick } => {
                if let Err(e) = result {
                    warn!("last-seen of {}: {e}", Escaped::new(&nick));
                }
            }
            Change::Register {
                nick, email, level, ..
            } => self.registered(id, nick, email, level, result, now, out),
            Change::Ban {
                target,
                kind,
                by,
                reason,
            } => self.banned(id, &target, kind, &by, &reason, result, out),
            Change::Unban { target, by } => self.unbanned(id, &target, &by, result, out),
            Change::SetLevel { nick, level, by } => {
                self.level_set(id, &nick, level, &by, result, out)
            }
            Change::DeleteAccount { nick, by } => self.nuked(id, &nick, &by, result, out),
            Change::SetPassword { nick, by, .. } => self.password_set(id, &nick, &by, result, out),
        }
    }
}
