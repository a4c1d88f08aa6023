//! One client's protocol state: where it is in the login, who it is once
//! logged in, and the counters that enforce its limits.
//!
//! Pure: no sockets and no clock; the caller passes `now` in. The
//! server state ([`crate::server`]) owns one `Session` per connection and
//! decides what each message does with it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::store::Level;

/// A connection's id. Slab keys are reused; these never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// What the client told us at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub nick: String,
    pub data_port: u16,
    pub client: Vec<u8>,
    pub link_speed: u32,
    pub level: Level,
    pub registered: bool,
    pub email: String,
    pub logged_in_at: Instant,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connected, no successful login yet.
    AwaitingLogin {
        since: Instant,
    },
    Online(UserInfo),
}

/// Counts events in a sliding fixed window (one bucket per window).
#[derive(Debug, Clone, Copy)]
pub struct RateWindow {
    window: Duration,
    started: Instant,
    count: u32,
}

impl RateWindow {
    pub fn new(window: Duration, now: Instant) -> RateWindow {
        RateWindow {
            window,
            started: now,
            count: 0,
        }
    }

    /// Records one event and returns how many fell in the current window.
    pub fn hit(&mut self, now: Instant) -> u32 {
        if now.saturating_duration_since(self.started) >= self.window {
            self.started = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count
    }
}

/// One client connection's state.
#[derive(Debug)]
pub struct Session {
    pub id: ConnId,
    pub ip: Ipv4Addr,
    pub phase: Phase,
    pub downloads: u32,
    pub uploads: u32,
    pub messages: RateWindow,
    pub searches: RateWindow,
}

impl Session {
    pub fn new(id: ConnId, ip: Ipv4Addr, now: Instant) -> Session {
        Session {
            id,
            ip,
            phase: Phase::AwaitingLogin { since: now },
            downloads: 0,
            uploads: 0,
            messages: RateWindow::new(Duration::from_secs(1), now),
            searches: RateWindow::new(Duration::from_secs(60), now),
        }
    }

    pub fn user(&self) -> Option<&UserInfo> {
        match &self.phase {
            Phase::Online(u) => Some(u),
            Phase::AwaitingLogin { .. } => None,
        }
    }

    pub fn nick(&self) -> Option<&str> {
        self.user().map(|u| u.nick.as_str())
    }

    pub fn level(&self) -> Level {
        self.user().map_or(Level::User, |u| u.level)
    }

    /// True if the login window has passed without a login.
    pub fn login_expired(&self, now: Instant, timeout: Duration) -> bool {
        match self.phase {
            Phase::AwaitingLogin { since } => now.saturating_duration_since(since) >= timeout,
            Phase::Online(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_resets_after_its_window() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(60), t0);
        assert_eq!(w.hit(t0), 1);
        assert_eq!(w.hit(t0 + Duration::from_secs(59)), 2);
        assert_eq!(w.hit(t0 + Duration::from_secs(60)), 1);
    }

    #[test]
    fn login_timeout_applies_only_before_login() {
        let t0 = Instant::now();
        let mut s = Session::new(ConnId(1), Ipv4Addr::LOCALHOST, t0);
        let later = t0 + Duration::from_secs(61);
        assert!(s.login_expired(later, Duration::from_secs(60)));
        s.phase = Phase::Online(UserInfo {
            nick: "a".into(),
            data_port: 0,
            client: Vec::new(),
            link_speed: 0,
            level: Level::User,
            registered: false,
            email: String::new(),
            logged_in_at: t0,
        });
        assert!(!s.login_expired(later, Duration::from_secs(60)));
    }
}
