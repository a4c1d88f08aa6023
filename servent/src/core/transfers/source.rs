//! Where a download can come from: a servent that has the file (reached
//! directly, or through a Push when it is firewalled), how it has behaved,
//! and when it may be asked again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How a source was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A search result.
    Search,
    /// A magnet link's `xs`/`as`.
    Magnet,
    /// Another source's `X-Alt` / alternate-location header.
    Mesh,
}

/// Why a source is no longer asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// 404 or 410: it does not have the file (any more).
    NotFound,
    /// 416 or a size that disagrees with the download's.
    WrongSize,
    /// It sent bytes that proved wrong.
    Corrupt,
    /// Failed too many times in a row.
    Unreachable(String),
    /// It serves another file under this URN.
    WrongFile,
}

/// One source of one download.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where to connect (for a firewalled source, where it would be).
    pub addr: SocketAddr,
    /// Its servent id, when known (needed for a Push).
    pub servent_id: Option<[u8; 16]>,
    /// The file's index there (for `/get/<index>/<name>` and Pushes).
    pub file_index: Option<u32>,
    /// It cannot accept connections: reach it through a Push.
    pub needs_push: bool,
    pub origin: Origin,
    /// Not to be asked before this.
    pub wait_until: Option<Instant>,
    /// Consecutive failures (reset by a good transfer).
    pub failures: u32,
    /// Wrong-file-hash verdicts it took part in.
    pub suspicion: u32,
    pub dropped: Option<Dropped>,
    /// Not asked while its parts are fetched from the others (finding who
    /// sent wrong bytes).
    pub set_aside: bool,
    /// A connection (or a Push) is working for it now.
    pub busy: bool,
    /// Bytes it delivered.
    pub delivered: u64,
    /// Its last measured rate, bytes per second.
    pub rate: f64,
    /// The last failure, for `transfers`.
    pub last_error: Option<String>,
    /// Its push proxies (from its hit's GGEP `PUSH`): asked over HTTP to
    /// relay a Push before one is routed through the overlay.
    pub proxies: Vec<std::net::SocketAddrV4>,
}

/// Consecutive failures after which a source is given up.
pub const MAX_FAILURES: u32 = 5;

impl Source {
    pub fn new(
        addr: SocketAddr,
        servent_id: Option<[u8; 16]>,
        file_index: Option<u32>,
        needs_push: bool,
        origin: Origin,
    ) -> Source {
        Source {
            addr,
            servent_id,
            file_index,
            needs_push,
            origin,
            wait_until: None,
            failures: 0,
            suspicion: 0,
            dropped: None,
            set_aside: false,
            busy: false,
            delivered: 0,
            rate: 0.0,
            last_error: None,
            proxies: Vec::new(),
        }
    }

    /// Whether a new connection may be opened to it now.
    pub fn ready(&self, now: Instant) -> bool {
        self.dropped.is_none()
            && !self.set_aside
            && !self.busy
            && self.wait_until.is_none_or(|t| t <= now)
    }

    pub fn usable(&self) -> bool {
        self.dropped.is_none()
    }

    /// A failure: back off (doubling from 10 s, at most 10 minutes), and
    /// give up after [`MAX_FAILURES`] in a row.
    pub fn failed(&mut self, why: &str, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(why.to_string());
        if self.failures >= MAX_FAILURES {
            self.dropped = Some(Dropped::Unreachable(why.to_string()));
            return;
        }
        let shift = self.failures.saturating_sub(1).min(6);
        let delay = (Duration::from_secs(10) * (1 << shift)).min(Duration::from_secs(600));
        self.wait_until = Some(now + delay);
    }

    /// Busy (`503`): ask again after `retry_after` (at least 10 s), without
    /// counting it as a failure.
    pub fn busy_until(&mut self, retry_after: Duration, now: Instant) {
        let wait = retry_after.clamp(Duration::from_secs(10), Duration::from_secs(3600));
        self.wait_until = Some(now + wait);
        self.last_error = Some(format!("busy, asked to retry in {}s", wait.as_secs()));
    }

    pub fn drop_for(&mut self, why: Dropped) {
        self.last_error = Some(format!("{why:?}"));
        self.dropped = Some(why);
    }

    /// Dropped on the word of a Tiger tree that proved wrong: usable again.
    pub fn pardon(&mut self) {
        if self.dropped == Some(Dropped::Corrupt) {
            self.dropped = None;
            self.last_error = Some("no longer blamed: the Tiger tree was wrong".into());
        }
    }

    /// A span came in whole from it, at `rate` bytes a second.
    pub fn span_done(&mut self, rate: f64) {
        self.failures = 0;
        self.rate = if self.rate == 0.0 {
            rate
        } else {
            0.7 * self.rate + 0.3 * rate
        };
    }

    /// Same place (address, or servent id for a firewalled one).
    pub fn same_as(&self, addr: SocketAddr, servent_id: Option<[u8; 16]>) -> bool {
        self.addr == addr || (servent_id.is_some() && self.servent_id == servent_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_then_drop_and_success_forgives() {
        let t0 = Instant::now();
        let mut s = Source::new(
            "10.0.0.1:6346".parse().unwrap(),
            None,
            Some(1),
            false,
            Origin::Search,
        );
        assert!(s.ready(t0));
        s.failed("refused", t0);
        assert!(!s.ready(t0 + Duration::from_secs(9)));
        assert!(s.ready(t0 + Duration::from_secs(10)));
        s.span_done(50.0);
        assert_eq!(s.failures, 0);
        for _ in 0..MAX_FAILURES {
            s.failed("refused", t0);
        }
        assert!(matches!(s.dropped, Some(Dropped::Unreachable(_))));
        assert!(!s.ready(t0 + Duration::from_secs(10_000)));
    }

    #[test]
    fn busy_waits_without_counting_a_failure() {
        let t0 = Instant::now();
        let mut s = Source::new(
            "10.0.0.1:6346".parse().unwrap(),
            None,
            None,
            false,
            Origin::Mesh,
        );
        s.busy_until(Duration::from_secs(1), t0);
        assert_eq!(s.failures, 0);
        assert!(!s.ready(t0 + Duration::from_secs(9)), "at least 10 s");
        assert!(s.ready(t0 + Duration::from_secs(10)));
    }
}
