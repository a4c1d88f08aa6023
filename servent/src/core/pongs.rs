//! The pong cache: up to ten recent Pongs from distinct hosts, used to answer
//! Pings with TTL > 1 without flooding them (PROTOCOL-NOTES §2).
//!
//! Every Pong that reaches or passes through us refreshes the cache. A Ping
//! is answered from the cache only while it is fresh (refreshed within
//! `fresh_for`); a stale or empty cache lets the Ping be forwarded, and the
//! Pongs coming back for it refresh the cache.

use std::time::{Duration, Instant};

use hazel_protocol::descriptor::PongFixed;

/// Most Pongs kept.
pub const PONG_CACHE_SIZE: usize = 10;

#[derive(Debug, Clone, Copy)]
pub struct CachedPong {
    pub fields: PongFixed,
    /// Hops the Pong had travelled when we saw it.
    pub hops: u8,
    pub seen: Instant,
}

pub struct PongCache {
    pongs: Vec<CachedPong>,
    fresh_for: Duration,
}

impl PongCache {
    pub fn new(fresh_for: Duration) -> PongCache {
        PongCache {
            pongs: Vec::with_capacity(PONG_CACHE_SIZE),
            fresh_for,
        }
    }

    /// Remembers a Pong, replacing an older one from the same host, or the
    /// oldest when full.
    pub fn insert(&mut self, fields: PongFixed, hops: u8, now: Instant) {
        let entry = CachedPong {
            fields,
            hops,
            seen: now,
        };
        if let Some(same) = self
            .pongs
            .iter_mut()
            .find(|p| p.fields.ip == fields.ip && p.fields.port == fields.port)
        {
            *same = entry;
            return;
        }
        if self.pongs.len() < PONG_CACHE_SIZE {
            self.pongs.push(entry);
        } else if let Some(oldest) = self.pongs.iter_mut().min_by_key(|p| p.seen) {
            *oldest = entry;
        }
    }

    /// The cached Pongs if the cache is fresh enough to answer from.
    pub fn fresh(&self, now: Instant) -> Option<&[CachedPong]> {
        let newest = self.pongs.iter().map(|p| p.seen).max()?;
        if now.saturating_duration_since(newest) < self.fresh_for {
            Some(&self.pongs)
        } else {
            None
        }
    }

    /// Forgets Pongs older than `max_age`.
    pub fn expire(&mut self, now: Instant, max_age: Duration) {
        self.pongs
            .retain(|p| now.saturating_duration_since(p.seen) < max_age);
    }

    pub fn len(&self) -> usize {
        self.pongs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pongs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pong(last: u8) -> PongFixed {
        PongFixed {
            port: 6346,
            ip: std::net::Ipv4Addr::new(10, 0, 0, last),
            files: 1,
            kbytes: 1,
        }
    }

    #[test]
    fn at_most_ten_distinct_hosts() {
        let t0 = Instant::now();
        let mut c = PongCache::new(Duration::from_secs(5));
        for n in 0..30u8 {
            c.insert(pong(n % 15), 1, t0 + Duration::from_millis(u64::from(n)));
        }
        assert_eq!(c.len(), 10);
        let cached = c.fresh(t0 + Duration::from_millis(30)).expect("fresh");
        let mut ips: Vec<u8> = cached.iter().map(|p| p.fields.ip.octets()[3]).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 10);
    }

    #[test]
    fn stale_cache_does_not_answer() {
        let t0 = Instant::now();
        let mut c = PongCache::new(Duration::from_secs(5));
        assert!(c.fresh(t0).is_none());
        c.insert(pong(1), 1, t0);
        assert!(c.fresh(t0 + Duration::from_secs(4)).is_some());
        assert!(c.fresh(t0 + Duration::from_secs(5)).is_none());
        c.expire(t0 + Duration::from_secs(61), Duration::from_secs(60));
        assert!(c.is_empty());
    }
}
