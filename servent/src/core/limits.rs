//! Rate limits for what peers can make the servent do (connect back, open
//! sockets), deterministic in the `now` they are given.
//!
//! [`Rate`] is the generic cell rate algorithm: a theoretical arrival time
//! moves forward by one interval per allowed event; an event is refused when
//! it would move that time more than the burst ahead of now. [`KeyedRates`]
//! keeps one per key in a bounded table that, when full of active keys,
//! refuses new keys rather than growing (or forgetting a key an attacker is
//! still limited by).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// `count` events per `period`, with bursts of up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    pub count: u32,
    pub period: Duration,
    pub burst: u32,
}

impl RateSpec {
    pub const fn new(count: u32, period: Duration, burst: u32) -> RateSpec {
        RateSpec {
            count,
            period,
            burst,
        }
    }

    fn interval(&self) -> Duration {
        self.period / self.count.max(1)
    }

    fn tolerance(&self) -> Duration {
        self.interval() * self.burst.max(1).saturating_sub(1)
    }
}

/// One rate limit.
#[derive(Debug, Clone)]
pub struct Rate {
    spec: RateSpec,
    /// When the bucket is empty again (`None`: empty now).
    tat: Option<Instant>,
}

impl Rate {
    pub fn new(spec: RateSpec) -> Rate {
        Rate { spec, tat: None }
    }

    /// Counts one event; false (and nothing counted) when over the limit.
    pub fn allow(&mut self, now: Instant) -> bool {
        let tat = self.tat.map_or(now, |t| t.max(now));
        if tat.saturating_duration_since(now) > self.spec.tolerance() {
            return false;
        }
        self.tat = Some(tat + self.spec.interval());
        true
    }

    /// True when no event is being remembered (the limit is back to full).
    fn is_idle(&self, now: Instant) -> bool {
        self.tat.is_none_or(|t| t <= now)
    }
}

/// A [`Rate`] per key, at most `capacity` keys.
#[derive(Debug, Clone)]
pub struct KeyedRates<K> {
    spec: RateSpec,
    capacity: usize,
    rates: HashMap<K, Rate>,
}

impl<K: Hash + Eq + Copy> KeyedRates<K> {
    pub fn new(spec: RateSpec, capacity: usize) -> KeyedRates<K> {
        KeyedRates {
            spec,
            capacity: capacity.max(1),
            rates: HashMap::new(),
        }
    }

    /// Counts one event for `key`; false when over its limit, or when the
    /// table is full of keys still being limited.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if !self.rates.contains_key(&key) && self.rates.len() >= self.capacity {
            self.rates.retain(|_, r| !r.is_idle(now));
            if self.rates.len() >= self.capacity {
                return false;
            }
        }
        self.rates
            .entry(key)
            .or_insert_with(|| Rate::new(self.spec))
            .allow(now)
    }

    pub fn len(&self) -> usize {
        self.rates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }
}

/// Keys seen within `window`, at most `capacity` of them: a repeat within the
/// window is refused, and so is a new key while the table is full of recent ones.
#[derive(Debug, Clone)]
pub struct RecentSet<K> {
    window: Duration,
    capacity: usize,
    seen: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Copy> RecentSet<K> {
    pub fn new(window: Duration, capacity: usize) -> RecentSet<K> {
        RecentSet {
            window,
            capacity: capacity.max(1),
            seen: HashMap::new(),
        }
    }

    /// Records `key`; false when it was seen within the window (or no room).
    pub fn insert(&mut self, key: K, now: Instant) -> bool {
        let window = self.window;
        let fresh = |t: &Instant| now.saturating_duration_since(*t) < window;
        if self.seen.get(&key).is_some_and(fresh) {
            return false;
        }
        if !self.seen.contains_key(&key) && self.seen.len() >= self.capacity {
            self.seen.retain(|_, t| fresh(t));
            if self.seen.len() >= self.capacity {
                return false;
            }
        }
        self.seen.insert(key, now);
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_rate_allows_its_burst_then_its_pace() {
        let t0 = Instant::now();
        let mut r = Rate::new(RateSpec::new(2, 10 * S, 3));
        assert!((0..3).all(|_| r.allow(t0)), "the burst");
        assert!(!r.allow(t0));
        assert!(!r.allow(t0 + 4 * S));
        assert!(r.allow(t0 + 5 * S), "one interval later");
        assert!(!r.allow(t0 + 5 * S));
        // Over a long stretch, no more than the pace plus the burst.
        let mut r = Rate::new(RateSpec::new(2, 10 * S, 3));
        let allowed = (0..1000)
            .filter(|ms| r.allow(t0 + Duration::from_millis(ms * 100)))
            .count();
        assert_eq!(allowed, 3 + 19, "100 s at 2 per 10 s, plus the burst");
    }

    #[test]
    fn keyed_rates_are_independent_and_bounded() {
        let t0 = Instant::now();
        let mut r = KeyedRates::new(RateSpec::new(1, 60 * S, 1), 2);
        assert!(r.allow(1, t0));
        assert!(!r.allow(1, t0));
        assert!(r.allow(2, t0));
        assert!(
            !r.allow(3, t0),
            "full of limited keys: a new one is refused"
        );
        assert!(r.allow(3, t0 + 60 * S), "idle keys make room");
        assert!(r.len() <= 2);
    }

    #[test]
    fn recent_set_refuses_repeats_within_the_window() {
        let t0 = Instant::now();
        let mut s = RecentSet::new(30 * S, 2);
        assert!(s.insert("a", t0));
        assert!(!s.insert("a", t0 + 29 * S));
        assert!(s.insert("b", t0));
        assert!(!s.insert("c", t0), "full");
        assert!(s.insert("a", t0 + 30 * S));
        assert!(s.insert("c", t0 + 31 * S));
        assert!(s.len() <= 2);
    }
}
