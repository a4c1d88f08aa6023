//! The host cache: addresses of servents we may connect to, fed by Pongs,
//! `X-Try` / `X-Try-Ultrapeers` headers and `connect` commands.
//!
//! Bounded (the least recently seen host is evicted), with per-host backoff
//! after failed connects. Persisted by the reactor as text lines
//! (`ip:port`, most recently seen first) through [`HostCache::to_bytes`] and
//! [`HostCache::from_bytes`]; the file write itself is the reactor's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct HostEntry {
    last_seen: Instant,
    failures: u32,
    retry_at: Option<Instant>,
}

/// Bounded set of known hosts with connect backoff.
#[derive(Debug, Clone)]
pub struct HostCache {
    hosts: HashMap<SocketAddr, HostEntry>,
    capacity: usize,
}

/// First retry delay after a failed connect; doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// Whether an address can be a servent at all (not 0.0.0.0, not port 0,
/// not multicast/broadcast). Loopback and private ranges are allowed:
/// tests and LANs use them.
pub fn is_dialable(addr: &SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(ip) => !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast()),
        IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

impl HostCache {
    pub fn new(capacity: usize) -> HostCache {
        HostCache {
            hosts: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn contains(&self, addr: &SocketAddr) -> bool {
        self.hosts.contains_key(addr)
    }

    /// Records that `addr` was heard of now. Returns false for addresses that
    /// cannot be dialled.
    pub fn add(&mut self, addr: SocketAddr, now: Instant) -> bool {
        if !is_dialable(&addr) {
            return false;
        }
        if let Some(entry) = self.hosts.get_mut(&addr) {
            entry.last_seen = now;
            return true;
        }
        if self.hosts.len() >= self.capacity {
            // Evict the host heard of longest ago.
            if let Some(oldest) = self
                .hosts
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(a, _)| *a)
            {
                self.hosts.remove(&oldest);
            }
        }
        self.hosts.insert(
            addr,
            HostEntry {
                last_seen: now,
                failures: 0,
                retry_at: None,
            },
        );
        true
    }

    pub fn remove(&mut self, addr: &SocketAddr) {
        self.hosts.remove(addr);
    }

    /// A connect to `addr` failed (or the handshake was refused): back off.
    pub fn failed(&mut self, addr: &SocketAddr, now: Instant) {
        if let Some(entry) = self.hosts.get_mut(addr) {
            entry.failures = entry.failures.saturating_add(1);
            let shift = entry.failures.saturating_sub(1).min(10);
            let delay = (BACKOFF_BASE * (1u32 << shift)).min(BACKOFF_MAX);
            entry.retry_at = Some(now + delay);
        }
    }

    /// A connection to `addr` was established: forget its failures.
    pub fn succeeded(&mut self, addr: &SocketAddr, now: Instant) {
        if let Some(entry) = self.hosts.get_mut(addr) {
            entry.failures = 0;
            entry.retry_at = None;
            entry.last_seen = now;
        }
    }

    /// The most recently seen host that is not backing off and that `skip`
    /// does not exclude (already connected, ourselves, ...).
    pub fn pick(&self, now: Instant, skip: impl Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        self.hosts
            .iter()
            .filter(|(addr, e)| !matches!(e.retry_at, Some(t) if t > now) && !skip(addr))
            .max_by_key(|(addr, e)| (e.last_seen, std::cmp::Reverse(**addr)))
            .map(|(addr, _)| *addr)
    }

    /// Up to `n` hosts, most recently seen first (for X-Try headers and saving).
    pub fn recent(&self, n: usize) -> Vec<SocketAddr> {
        let mut all: Vec<(&SocketAddr, &HostEntry)> = self.hosts.iter().collect();
        all.sort_by_key(|(addr, e)| (std::cmp::Reverse(e.last_seen), **addr));
        all.into_iter().take(n).map(|(a, _)| *a).collect()
    }

    /// One `ip:port` line per host, most recently seen first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for addr in self.recent(self.hosts.len()) {
            out.extend_from_slice(addr.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Reads lines written by [`HostCache::to_bytes`]; malformed lines are
    /// skipped (a damaged file loses those hosts, not the servent).
    pub fn from_bytes(bytes: &[u8], capacity: usize, now: Instant) -> HostCache {
        let mut cache = HostCache::new(capacity);
        let text = String::from_utf8_lossy(bytes);
        // Earlier lines were seen more recently: give them later timestamps.
        for (i, line) in text.lines().take(capacity).enumerate() {
            if let Ok(addr) = line.trim().parse::<SocketAddr>() {
                let age = Duration::from_millis(i as u64);
                let seen = now.checked_sub(age).unwrap_or(now);
                cache.add(addr, seen);
            }
        }
        cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn bounded_and_evicts_the_oldest() {
        let t0 = Instant::now();
        let mut c = HostCache::new(2);
        c.add(a("10.0.0.1:6346"), t0);
        c.add(a("10.0.0.2:6346"), t0 + Duration::from_secs(1));
        c.add(a("10.0.0.3:6346"), t0 + Duration::from_secs(2));
        assert_eq!(c.len(), 2);
        assert!(!c.contains(&a("10.0.0.1:6346")));
    }

    #[test]
    fn undialable_addresses_are_refused() {
        let mut c = HostCache::new(10);
        let now = Instant::now();
        assert!(!c.add(a("0.0.0.0:6346"), now));
        assert!(!c.add(a("10.0.0.1:0"), now));
        assert!(!c.add(a("224.0.0.1:6346"), now));
        assert!(c.is_empty());
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        let h = a("10.0.0.1:6346");
        c.add(h, t0);
        c.failed(&h, t0);
        assert_eq!(c.pick(t0, |_| false), None);
        assert_eq!(c.pick(t0 + Duration::from_secs(11), |_| false), Some(h));
        c.failed(&h, t0);
        assert_eq!(c.pick(t0 + Duration::from_secs(11), |_| false), None);
        assert_eq!(c.pick(t0 + Duration::from_secs(21), |_| false), Some(h));
        c.succeeded(&h, t0);
        assert_eq!(c.pick(t0, |_| false), Some(h));
        assert_eq!(c.pick(t0, |x| *x == h), None);
    }

    #[test]
    fn save_and_reload_keeps_hosts_and_order() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        c.add(a("10.0.0.1:6346"), t0);
        c.add(a("10.0.0.2:6347"), t0 + Duration::from_secs(5));
        let bytes = c.to_bytes();
        assert_eq!(bytes, b"10.0.0.2:6347\n10.0.0.1:6346\n");
        let mut garbage = bytes.clone();
        garbage.extend_from_slice(b"not a host\n\xff\xfe\n");
        let back = HostCache::from_bytes(&garbage, 10, t0);
        assert_eq!(back.recent(10), c.recent(10));
    }
}
