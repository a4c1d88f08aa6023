//! The persistent part of the server: registered accounts and bans, in SQLite.
//!
//! Shared file lists are soft state (clients re-share on login) and never
//! touch the disk; only what must survive a `kill -9` lives here. The
//! database runs in WAL mode with `synchronous=FULL`, so a committed
//! registration or ban is on disk before the client hears about it.
//! Passwords are kept only as salted argon2 hashes (PHC strings).
//!
//! The server opens two connections. The event loop's only reads: lookups
//! by nick and the ban list, 5 to 25 µs each (measured with 300 accounts).
//! Every write is a commit that waits for an fsync, so writes run on the
//! reactor's store writer thread with the other connection (see
//! `server::StoreWrite`); WAL lets the loop read meanwhile, and it sees a
//! change once the writer has reported it done.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hazel_protocol::napster::message::UserLevel;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};

/// File name of the database inside `--data-dir`.
pub const DATABASE_FILE: &str = "index.db";

/// A user's privilege level, as opennap names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    User,
    Moderator,
    Admin,
    Elite,
}

impl Level {
    /// The name a 604 whois or a 606 level change uses.
    pub fn name(self) -> &'static str {
        self.wire().name()
    }

    /// The level as the protocol names it (604 and 605 carry it).
    pub fn wire(self) -> UserLevel {
        match self {
            Level::User => UserLevel::User,
            Level::Moderator => UserLevel::Moderator,
            Level::Admin => UserLevel::Admin,
            Level::Elite => UserLevel::Elite,
        }
    }

    /// Parses a level name case-insensitively (`admin`, `Moderator` …).
    pub fn parse(name: &str) -> Option<Level> {
        match name.to_ascii_lowercase().as_str() {
            "user" => Some(Level::User),
            "moderator" | "mod" => Some(Level::Moderator),
            "admin" => Some(Level::Admin),
            "elite" => Some(Level::Elite),
            _ => None,
        }
    }

    fn code(self) -> i64 {
        match self {
            Level::User => 1,
            Level::Moderator => 2,
            Level::Admin => 3,
            Level::Elite => 4,
        }
    }

    fn from_code(code: i64) -> Level {
        match code {
            2 => Level::Moderator,
            3 => Level::Admin,
            4 => Level::Elite,
            _ => Level::User,
        }
    }
}

/// Cost of the password hash. The default is argon2id's recommended
/// interactive setting; tests lower it so debug builds stay quick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        PasswordCost {
            memory_kib: 19 * 1024,
            iterations: 2,
        }
    }
}

/// A registered nick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub nick: String,
    pub email: String,
    pub level: Level,
}

/// What a ban applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanKind {
    Nick,
    /// An address, or a prefix ending in `.` (`10.0.0.`) as opennap allows.
    Ip,
}

/// One ban, as listed by 615/616.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub target: String,
    pub kind: BanKind,
    pub set_by: String,
    pub reason: String,
    pub created: i64,
}

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    Database(rusqlite::Error),
    Hash(String),
    /// The nick is registered already.
    NickTaken,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database(e) => write!(f, "database: {e}"),
            StoreError::Hash(e) => write!(f, "password hash: {e}"),
            StoreError::NickTaken => write!(f, "nick is already registered"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e)
    }
}

/// Result of checking a login against the accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No account: opennap-ng's default lets the nick in as a guest.
    Unregistered,
    Accepted(Account),
    WrongPassword,
}

/// Hashes a password with argon2id and a fresh random salt, as a PHC
/// string. Slow by design: the reactor runs it on a worker thread.
pub fn hash_password(cost: PasswordCost, password: &[u8]) -> Result<String, StoreError> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| StoreError::Hash(e.to_string()))?;
    let mut salt_bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| StoreError::Hash(e.to_string()))?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password, &salt)
        .map_err(|e| StoreError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a PHC hash string (with the parameters
/// recorded in it). A malformed hash never matches.
pub fn verify_password(hash: &str, password: &[u8]) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
        .unwrap_or(false)
}

/// Accounts and bans in one SQLite database.
pub struct Store {
    db: Connection,
    cost: PasswordCost,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/index.db`.
    pub fn open(data_dir: &Path, cost: PasswordCost) -> Result<Store, StoreError> {
        let db = Connection::open(data_dir.join(DATABASE_FILE))?;
        // WAL keeps readers and the writer apart; FULL syncs the WAL on every
        // commit so accounts and bans survive a crash or `kill -9`.
        db.pragma_update(None, "journal_mode", "WAL")?;
        Self::init(db, cost)
    }

    /// A private, in-memory store (for unit tests of the session logic).
    pub fn open_in_memory(cost: PasswordCost) -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?, cost)
    }

    fn init(db: Connection, cost: PasswordCost) -> Result<Store, StoreError> {
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS accounts (
                 nick TEXT PRIMARY KEY COLLATE NOCASE,
                 password_hash TEXT NOT NULL,
                 email TEXT NOT NULL,
                 level INTEGER NOT NULL,
                 created INTEGER NOT NULL,
                 last_seen INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS bans (
                 target TEXT PRIMARY KEY COLLATE NOCASE,
                 kind TEXT NOT NULL,
                 set_by TEXT NOT NULL,
                 reason TEXT NOT NULL,
                 created INTEGER NOT NULL
             );",
        )?;
        Ok(Store { db, cost })
    }

    fn hash_password(&self, password: &[u8]) -> Result<String, StoreError> {
        hash_password(self.cost, password)
    }

    /// The cost new hashes are made with.
    pub fn cost(&self) -> PasswordCost {
        self.cost
    }

    /// Registers a nick. Fails with [`StoreError::NickTaken`] if it exists.
    pub fn register(
        &mut self,
        nick: &str,
        password: &[u8],
        email: &str,
        level: Level,
    ) -> Result<Account, StoreError> {
        if self.account(nick)?.is_some() {
            return Err(StoreError::NickTaken);
        }
        let hash = self.hash_password(password)?;
        self.insert_account(nick, &hash, email, level)
    }

    /// Stores an account whose password was hashed elsewhere (see
    /// [`hash_password`]). Fails with [`StoreError::NickTaken`] if it exists.
    pub fn insert_account(
        &mut self,
        nick: &str,
        password_hash: &str,
        email: &str,
        level: Level,
    ) -> Result<Account, StoreError> {
        let now = unix_now();
        let inserted = self.db.execute(
            "INSERT OR IGNORE INTO accounts (nick, password_hash, email, level, created, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![nick, password_hash, email, level.code(), now],
        )?;
        if inserted == 0 {
            return Err(StoreError::NickTaken);
        }
        Ok(Account {
            nick: nick.to_string(),
            email: email.to_string(),
            level,
        })
    }

    /// The account and its password hash, for verifying elsewhere (see
    /// [`verify_password`]).
    pub fn password_record(&self, nick: &str) -> Result<Option<(Account, String)>, StoreError> {
        Ok(self
            .db
            .prepare_cached(
                "SELECT nick, email, level, password_hash FROM accounts WHERE nick = ?1",
            )?
            .query_row(params![nick], |row| {
                Ok((
                    Account {
                        nick: row.get(0)?,
                        email: row.get(1)?,
                        level: Level::from_code(row.get(2)?),
                    },
                    row.get(3)?,
                ))
            })
            .optional()?)
    }

    /// Records a successful login.
    pub fn touch(&mut self, nick: &str) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE accounts SET last_seen = ?1 WHERE nick = ?2",
            params![unix_now(), nick],
        )?;
        Ok(())
    }

    /// The account registered under `nick` (case-insensitive), if any.
    pub fn account(&self, nick: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .db
            .prepare_cached("SELECT nick, email, level FROM accounts WHERE nick = ?1")?
            .query_row(params![nick], |row| {
                Ok(Account {
                    nick: row.get(0)?,
                    email: row.get(1)?,
                    level: Level::from_code(row.get(2)?),
                })
            })
            .optional()?)
    }

    /// Checks a login's password (hashing on the calling thread).
    pub fn check_login(&mut self, nick: &str, password: &[u8]) -> Result<Credentials, StoreError> {
        let Some((account, hash)) = self.password_record(nick)? else {
            return Ok(Credentials::Unregistered);
        };
        if verify_password(&hash, password) {
            self.touch(&account.nick)?;
            Ok(Credentials::Accepted(account))
        } else {
            Ok(Credentials::WrongPassword)
        }
    }

    /// Sets a registered nick's level; false if the nick is not registered.
    pub fn set_level(&mut self, nick: &str, level: Level) -> Result<bool, StoreError> {
        let changed = self.db.execute(
            "UPDATE accounts SET level = ?1 WHERE nick = ?2",
            params![level.code(), nick],
        )?;
        Ok(changed > 0)
    }

    /// Replaces a registered nick's password; false if not registered.
    pub fn set_password(&mut self, nick: &str, password: &[u8]) -> Result<bool, StoreError> {
        let hash = self.hash_password(password)?;
        let changed = self.db.execute(
            "UPDATE accounts SET password_hash = ?1 WHERE nick = ?2",
            params![hash, nick],
        )?;
        Ok(changed > 0)
    }

    /// How many accounts are registered.
    pub fn account_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .db
            .query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes an account (611 nuke); false if it did not exist.
    pub fn delete_account(&mut self, nick: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .execute("DELETE FROM accounts WHERE nick = ?1", params![nick])?
            > 0)
    }

    /// Adds or replaces a ban.
    pub fn ban(
        &mut self,
        target: &str,
        kind: BanKind,
        set_by: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let kind = match kind {
            BanKind::Nick => "nick",
            BanKind::Ip => "ip",
        };
        self.db.execute(
            "INSERT OR REPLACE INTO bans (target, kind, set_by, reason, created)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![target, kind, set_by, reason, unix_now()],
        )?;
        Ok(())
    }

    /// Lifts a ban; false if there was none.
    pub fn unban(&mut self, target: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .execute("DELETE FROM bans WHERE target = ?1", params![target])?
            > 0)
    }

    /// Every ban, oldest first.
    pub fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT target, kind, set_by, reason, created FROM bans ORDER BY created, target",
        )?;
        let rows = stmt.query_map([], |row| {
            let kind: String = row.get(1)?;
            Ok(Ban {
                target: row.get(0)?,
                kind: if kind == "ip" {
                    BanKind::Ip
                } else {
                    BanKind::Nick
                },
                set_by: row.get(2)?,
                reason: row.get(3)?,
                created: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The ban that keeps `nick` connecting from `ip` out, if any.
    pub fn ban_for(&self, nick: &str, ip: Ipv4Addr) -> Result<Option<Ban>, StoreError> {
        let ip_text = ip.to_string();
        Ok(self.bans()?.into_iter().find(|ban| match ban.kind {
            BanKind::Nick => ban.target.eq_ignore_ascii_case(nick),
            BanKind::Ip => {
                ban.target == ip_text
                    || (ban.target.ends_with('.') && ip_text.starts_with(&ban.target))
            }
        }))
    }

    /// The ban on an address alone (checked when a connection arrives).
    pub fn ip_ban(&self, ip: Ipv4Addr) -> Result<Option<Ban>, StoreError> {
        Ok(self.ban_for("", ip)?.filter(|b| b.kind == BanKind::Ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordCost {
        PasswordCost {
            memory_kib: 64,
            iterations: 1,
        }
    }

    #[test]
    fn registered_nick_needs_its_password() {
        let mut store = Store::open_in_memory(cheap()).unwrap();
        assert_eq!(
            store.check_login("alice", b"pw").unwrap(),
            Credentials::Unregistered
        );
        store
            .register("alice", b"s3cret", "a@example.org", Level::User)
            .unwrap();
        match store.check_login("ALICE", b"s3cret").unwrap() {
            Credentials::Accepted(acct) => {
                assert_eq!(acct.nick, "alice");
                assert_eq!(acct.email, "a@example.org");
            }
            other => panic!("expected acceptance, got {other:?}"),
        }
        assert_eq!(
            store.check_login("alice", b"wrong").unwrap(),
            Credentials::WrongPassword
        );
        assert!(matches!(
            store.register("Alice", b"x", "", Level::User),
            Err(StoreError::NickTaken)
        ));
    }

    #[test]
    fn password_is_stored_only_as_a_salted_hash() {
        let mut store = Store::open_in_memory(cheap()).unwrap();
        store.register("a", b"same", "", Level::User).unwrap();
        store.register("b", b"same", "", Level::User).unwrap();
        let hashes: Vec<String> = store
            .db
            .prepare("SELECT password_hash FROM accounts ORDER BY nick")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hashes.len(), 2);
        assert_ne!(hashes[0], hashes[1], "same password, different salts");
        for h in hashes {
            assert!(h.starts_with("$argon2id$"));
            assert!(!h.contains("same"));
        }
    }

    #[test]
    fn bans_match_nick_ip_and_prefix() {
        let mut store = Store::open_in_memory(cheap()).unwrap();
        store.ban("troll", BanKind::Nick, "op", "spam").unwrap();
        store.ban("10.1.2.", BanKind::Ip, "op", "range").unwrap();
        let home = Ipv4Addr::new(192, 168, 0, 1);
        assert!(store.ban_for("Troll", home).unwrap().is_some());
        assert!(store.ban_for("nice", home).unwrap().is_none());
        assert!(store
            .ban_for("nice", Ipv4Addr::new(10, 1, 2, 77))
            .unwrap()
            .is_some());
        assert!(store.ip_ban(Ipv4Addr::new(10, 1, 2, 77)).unwrap().is_some());
        assert!(store.ip_ban(Ipv4Addr::new(10, 1, 20, 7)).unwrap().is_none());
        assert!(store.unban("troll").unwrap());
        assert!(store.ban_for("troll", home).unwrap().is_none());
        assert_eq!(store.bans().unwrap().len(), 1);
    }

    #[test]
    fn accounts_and_levels_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path(), cheap()).unwrap();
            store.register("bob", b"pw", "", Level::User).unwrap();
            assert!(store.set_level("bob", Level::Admin).unwrap());
            store.ban("1.2.3.4", BanKind::Ip, "bob", "").unwrap();
        }
        let mut store = Store::open(dir.path(), cheap()).unwrap();
        assert_eq!(store.account("bob").unwrap().unwrap().level, Level::Admin);
        assert!(matches!(
            store.check_login("bob", b"pw").unwrap(),
            Credentials::Accepted(_)
        ));
        assert!(store.ip_ban(Ipv4Addr::new(1, 2, 3, 4)).unwrap().is_some());
    }
}
