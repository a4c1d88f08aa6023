//! What a Push addressed to us may make us do. A Push names an address to
//! connect to; unchecked, any peer could make the servent open thousands of
//! connections at once, or aim it at a third party. Every Push for us passes
//! here first (PROTOCOL-NOTES §4 for the callback itself):
//! - a link sending more Pushes for us than a downloader plausibly would is
//!   a flood: the link is dropped;
//! - a repeat of the same (address, file) within [`DUPLICATE_WINDOW`] is
//!   ignored (its callback is under way or was just made);
//! - callbacks to one IP, and in all, are rate-limited.
//!
//! The file index is checked against the library by the caller (a Push for a
//! file we do not share is ignored), and the node bounds how many callbacks
//! are in flight at once.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::limits::{KeyedRates, Rate, RateSpec, RecentSet};
use super::ConnId;

/// Pushes for us one link may send: 20 per 10 s.
const PER_LINK: RateSpec = RateSpec::new(20, Duration::from_secs(10), 20);
/// Callbacks to one IP: 6 a minute, 3 at once.
const PER_TARGET: RateSpec = RateSpec::new(6, Duration::from_secs(60), 3);
/// Callbacks in all: 60 a minute, 10 at once.
const TOTAL: RateSpec = RateSpec::new(60, Duration::from_secs(60), 10);
/// The same (address, file index) is called back once per this window.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(30);
/// Table sizes: links, targets, recent callbacks.
const TABLE: usize = 1024;

/// What to do with a Push for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushVerdict {
    /// Connect back and send the GIV.
    CallBack,
    /// The link floods Pushes: drop it.
    Flood,
    /// Already called back for this recently.
    Duplicate,
    /// Too many callbacks to that IP, or in all, right now.
    RateLimited,
}

#[derive(Debug, Clone)]
pub struct PushGuard {
    per_link: KeyedRates<ConnId>,
    recent: RecentSet<(SocketAddr, u32)>,
    per_target: KeyedRates<IpAddr>,
    total: Rate,
}

impl Default for PushGuard {
    fn default() -> Self {
        PushGuard {
            per_link: KeyedRates::new(PER_LINK, TABLE),
            recent: RecentSet::new(DUPLICATE_WINDOW, TABLE),
            per_target: KeyedRates::new(PER_TARGET, TABLE),
            total: Rate::new(TOTAL),
        }
    }
}

impl PushGuard {
    /// Judges one Push for us from link `from`, asking for a callback to
    /// `target` for `file_index`.
    pub fn check(
        &mut self,
        from: ConnId,
        target: SocketAddr,
        file_index: u32,
        now: Instant,
    ) -> PushVerdict {
        if !self.per_link.allow(from, now) {
            return PushVerdict::Flood;
        }
        if !self.recent.insert((target, file_index), now) {
            return PushVerdict::Duplicate;
        }
        if !self.per_target.allow(target.ip(), now) || !self.total.allow(now) {
            return PushVerdict::RateLimited;
        }
        PushVerdict::CallBack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 6346))
    }

    #[test]
    fn two_thousand_pushes_make_a_handful_of_callbacks_and_a_flood() {
        let t0 = Instant::now();
        let mut g = PushGuard::default();
        let verdicts: Vec<PushVerdict> = (0..2000u32)
            .map(|i| g.check(1, addr((i % 200) as u8), i, t0))
            .collect();
        let callbacks = verdicts
            .iter()
            .filter(|v| **v == PushVerdict::CallBack)
            .count();
        assert!(callbacks <= 10, "{callbacks} callbacks at once");
        assert!(verdicts.contains(&PushVerdict::Flood));
    }

    #[test]
    fn one_target_is_called_back_at_its_own_pace_and_repeats_are_ignored() {
        let t0 = Instant::now();
        let mut g = PushGuard::default();
        let victim = addr(9);
        assert_eq!(g.check(1, victim, 1, t0), PushVerdict::CallBack);
        assert_eq!(g.check(2, victim, 1, t0), PushVerdict::Duplicate);
        let mut calls = 1;
        // Many links, many files, one victim, for ten minutes.
        for s in 0..600u32 {
            let now = t0 + Duration::from_secs(u64::from(s));
            if g.check(u64::from(s % 50 + 10), victim, s + 2, now) == PushVerdict::CallBack {
                calls += 1;
            }
        }
        assert!(
            calls <= 3 + 60,
            "{calls} callbacks to one IP in ten minutes"
        );
        assert_eq!(
            g.check(
                1,
                victim,
                1,
                t0 + DUPLICATE_WINDOW + Duration::from_secs(600)
            ),
            PushVerdict::CallBack
        );
    }

    #[test]
    fn an_honest_downloader_is_called_back() {
        let t0 = Instant::now();
        let mut g = PushGuard::default();
        for file in 0..3 {
            let now = t0 + Duration::from_secs(u64::from(file) * 20);
            assert_eq!(g.check(1, addr(1), file, now), PushVerdict::CallBack);
        }
    }
}
