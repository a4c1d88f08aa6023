//! The host cache: addresses of servents we may connect to, fed by Pongs,
//! `X-Try` / `X-Try-Ultrapeers` headers, host caches (UDP `IPP` pongs and
//! GWebCaches) and successful `connect` commands. Each host keeps where it
//! was learned ([`HostSource`]), whether it is known to be an ultrapeer
//! (which a leaf prefers) and when a connection to it last worked.
//!
//! Bounded (the least recently seen host is evicted), with backoff:
//! - per address after a failed connect (exponential) or a refusal (for the
//!   time the refusal names: `Retry-After`, or gtk-gnutella's `429 Banned
//!   for 5m 0s`; a fixed pause per status code otherwise);
//! - per IP: at most [`DIALS_PER_IP_PER_MINUTE`] attempts a minute, whatever
//!   the port (gtk-gnutella bans an address that opens more than 2 connections
//!   a minute), and a refusal from one port of an IP pauses them all. Loopback
//!   addresses are this machine, where many servents share 127.0.0.1 (tests,
//!   the playground) and no remote operator bans anyone: there the budget and
//!   the pause are per port.
//!
//! A host that keeps failing and never worked is forgotten. Persisted by the
//! node as text lines (`ip:port`, most recently seen first) through
//! [`HostCache::to_bytes`] and [`HostCache::from_bytes`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Where a host was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostSource {
    /// A Pong (over a link or UDP).
    Pong,
    /// A handshake's `X-Try` header.
    XTry,
    /// A handshake's `X-Try-Ultrapeers` header.
    XTryUltrapeers,
    /// A UDP host cache's `IPP` list.
    UdpHostCache,
    /// A GWebCache's host list.
    WebCache,
    /// The user (`connect`, `--connect`), or a peer that connected to us.
    User,
    /// The saved host cache of an earlier run (where it came from then is not kept).
    Saved,
}

impl HostSource {
    fn as_str(self) -> &'static str {
        match self {
            HostSource::Pong => "pong",
            HostSource::XTry => "x-try",
            HostSource::XTryUltrapeers => "x-try-ultrapeers",
            HostSource::UdpHostCache => "udp-host-cache",
            HostSource::WebCache => "web-cache",
            HostSource::User => "user",
            HostSource::Saved => "saved",
        }
    }

    fn parse(text: &str) -> Option<HostSource> {
        Some(match text {
            "pong" => HostSource::Pong,
            "x-try" => HostSource::XTry,
            "x-try-ultrapeers" => HostSource::XTryUltrapeers,
            "udp-host-cache" => HostSource::UdpHostCache,
            "web-cache" => HostSource::WebCache,
            "user" => HostSource::User,
            "saved" => HostSource::Saved,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
struct HostEntry {
    last_seen: Instant,
    failures: u32,
    retry_at: Option<Instant>,
    /// A connection to it was established at least once.
    worked: bool,
    source: HostSource,
    /// Known to be an ultrapeer (what a leaf connects to).
    ultrapeer: bool,
    /// When a connection to it last worked (wall clock, kept across runs).
    last_success: Option<std::time::SystemTime>,
}

/// A host as `hosts` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostInfo {
    pub addr: SocketAddr,
    pub source: HostSource,
    pub ultrapeer: bool,
    /// Seconds since a connection to it last worked.
    pub last_success_secs_ago: Option<u64>,
    pub failures: u32,
    /// Seconds before it may be dialled again.
    pub retry_in_secs: Option<u64>,
}

/// Bounded set of known hosts with connect backoff.
#[derive(Debug, Clone)]
pub struct HostCache {
    hosts: HashMap<SocketAddr, HostEntry>,
    capacity: usize,
    /// Per IP (see [`budget_key`]): the last dial attempts (most recent
    /// last) and a refusal pause.
    ips: HashMap<SocketAddr, IpEntry>,
}

#[derive(Debug, Clone, Default)]
struct IpEntry {
    dials: [Option<Instant>; DIALS_PER_IP_PER_MINUTE],
    paused_until: Option<Instant>,
}

/// First retry delay after a failed connect; doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(600);
/// Dial attempts allowed to one IP per [`DIAL_WINDOW`].
pub const DIALS_PER_IP_PER_MINUTE: usize = 2;
const DIAL_WINDOW: Duration = Duration::from_secs(60);
/// A refusal never pauses a host for longer than this.
const REFUSAL_MAX: Duration = Duration::from_secs(24 * 3600);
/// Consecutive failures after which a host that never worked is forgotten
/// (one that worked before is kept longer: it may come back).
const FORGET_NEVER_WORKED: u32 = 3;
const FORGET_WORKED: u32 = 8;

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

/// How long a refusal asks us to stay away: the `Retry-After` value when the
/// peer sent one, else a duration written in the reason (`Banned for 5m 0s`,
/// `Retry in 90s`), else a pause chosen by status code. `None` for a status
/// that is not a refusal.
pub fn refusal_pause(code: u16, reason: &str, retry_after: Option<&str>) -> Option<Duration> {
    if code == 200 {
        return None;
    }
    let named = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .or_else(|| duration_in_text(reason));
    let by_code = match code {
        // Banned: gtk-gnutella bans for 5 minutes.
        429 => Duration::from_secs(300),
        // Busy: other hosts first, this one again in a while.
        503 => Duration::from_secs(120),
        // A leaf that accepts no leaves ("Shielded leaf node"), or refused
        // for what we are ("Normal nodes refused"): it will not change soon.
        204 | 403 => Duration::from_secs(1800),
        _ => Duration::from_secs(300),
    };
    Some(named.unwrap_or(by_code).min(REFUSAL_MAX))
}

/// The first duration written as `1h 2m 3s` / `5m` / `90s` / `2 minutes` in `text`.
fn duration_in_text(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let mut total = 0u64;
    let mut found = false;
    let mut words = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .peekable();
    while let Some(word) = words.next() {
        let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            if found {
                break;
            }
            continue;
        }
        let Ok(n) = digits.parse::<u64>() else {
            continue;
        };
        let mut unit = word[digits.len()..].to_string();
        if unit.is_empty() {
            // "5 minutes": the unit is the next word.
            unit = words.peek().map(|w| w.to_string()).unwrap_or_default();
            if !unit.is_empty() {
                words.next();
            }
        }
        let secs = match unit.trim_end_matches('.') {
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "d" | "day" | "days" => 86_400,
            _ => {
                if found {
                    break;
                }
                continue;
            }
        };
        total = total.saturating_add(n.saturating_mul(secs));
        found = true;
    }
    found.then(|| Duration::from_secs(total))
}

/// What dial budgets and refusal pauses are kept per: the IP, or for
/// loopback addresses the whole socket address.
fn budget_key(addr: &SocketAddr) -> SocketAddr {
    if addr.ip().is_loopback() {
        *addr
    } else {
        SocketAddr::new(addr.ip(), 0)
    }
}

impl HostCache {
    pub fn new(capacity: usize) -> HostCache {
        HostCache {
            hosts: HashMap::new(),
            capacity: capacity.max(1),
            ips: HashMap::new(),
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

    /// Records that `addr` was heard of now, from `source`. Returns false for
    /// addresses that cannot be dialled.
    pub fn add(&mut self, addr: SocketAddr, source: HostSource, now: Instant) -> bool {
        self.add_host(addr, source, false, now)
    }

    /// Like [`HostCache::add`], for a host known to be an ultrapeer.
    pub fn add_ultrapeer(&mut self, addr: SocketAddr, source: HostSource, now: Instant) -> bool {
        self.add_host(addr, source, true, now)
    }

    /// Like [`HostCache::add`], saying whether it is an ultrapeer.
    pub fn add_host(
        &mut self,
        addr: SocketAddr,
        source: HostSource,
        ultrapeer: bool,
        now: Instant,
    ) -> bool {
        if !is_dialable(&addr) {
            return false;
        }
        if let Some(entry) = self.hosts.get_mut(&addr) {
            entry.last_seen = now;
            entry.ultrapeer |= ultrapeer;
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
                worked: false,
                source,
                ultrapeer,
                last_success: None,
            },
        );
        true
    }

    /// Hosts that may be dialled now (the bootstrap asks host caches when
    /// there are none).
    pub fn dialable_now(&self, now: Instant, skip: impl Fn(&SocketAddr) -> bool) -> usize {
        self.hosts
            .keys()
            .filter(|a| self.dial_allowed_at(a, now).is_none() && !skip(a))
            .count()
    }

    /// Up to `n` IPv4 hosts worth telling others about (a UDP Pong's
    /// `IPP`): ultrapeers, and hosts we connected to; ultrapeers that worked
    /// first, then the most recently seen. Hosts only heard of are not
    /// passed on.
    pub fn hosts_to_share(&self, n: usize, now: Instant) -> Vec<std::net::SocketAddrV4> {
        let mut ups: Vec<(&SocketAddr, &HostEntry)> = self
            .hosts
            .iter()
            .filter(|(a, e)| {
                (e.ultrapeer || e.worked) && a.is_ipv4() && self.dial_allowed_at(a, now).is_none()
            })
            .collect();
        ups.sort_by_key(|(a, e)| {
            (
                std::cmp::Reverse((e.ultrapeer && e.worked, e.ultrapeer, e.last_seen)),
                **a,
            )
        });
        ups.into_iter()
            .take(n)
            .filter_map(|(a, _)| match a {
                SocketAddr::V4(v4) => Some(*v4),
                SocketAddr::V6(_) => None,
            })
            .collect()
    }

    /// The hosts for `hosts`: most recently seen first, at most `n`.
    pub fn list(&self, n: usize, now: Instant) -> Vec<HostInfo> {
        let wall = std::time::SystemTime::now();
        self.recent(n)
            .into_iter()
            .filter_map(|addr| {
                let e = self.hosts.get(&addr)?;
                Some(HostInfo {
                    addr,
                    source: e.source,
                    ultrapeer: e.ultrapeer,
                    last_success_secs_ago: e
                        .last_success
                        .map(|t| wall.duration_since(t).unwrap_or_default().as_secs()),
                    failures: e.failures,
                    retry_in_secs: self
                        .dial_allowed_at(&addr, now)
                        .map(|t| t.saturating_duration_since(now).as_secs()),
                })
            })
            .collect()
    }

    pub fn remove(&mut self, addr: &SocketAddr) {
        self.hosts.remove(addr);
    }

    /// We are about to dial `addr` (counted against its IP's dial budget).
    pub fn dialling(&mut self, addr: &SocketAddr, now: Instant) {
        self.prune_ips(now);
        let entry = self.ips.entry(budget_key(addr)).or_default();
        entry.dials.rotate_left(1);
        if let Some(last) = entry.dials.last_mut() {
            *last = Some(now);
        }
    }

    /// A connect to `addr` failed (or the link broke during the handshake):
    /// back off, and forget a host that keeps failing.
    pub fn failed(&mut self, addr: &SocketAddr, now: Instant) {
        let Some(entry) = self.hosts.get_mut(addr) else {
            return;
        };
        entry.failures = entry.failures.saturating_add(1);
        let limit = if entry.worked {
            FORGET_WORKED
        } else {
            FORGET_NEVER_WORKED
        };
        if entry.failures >= limit {
            self.hosts.remove(addr);
            return;
        }
        let shift = entry.failures.saturating_sub(1).min(10);
        let delay = (BACKOFF_BASE * (1u32 << shift)).min(BACKOFF_MAX);
        entry.retry_at = Some(now + delay);
    }

    /// `addr` refused us for `pause` (see [`refusal_pause`]): neither it nor
    /// any other port of its IP is dialled again before then.
    pub fn refused(&mut self, addr: &SocketAddr, pause: Duration, now: Instant) {
        let until = now + pause;
        // Not counted as a failure: a busy or banning host exists and works.
        if let Some(entry) = self.hosts.get_mut(addr) {
            entry.retry_at = Some(entry.retry_at.map_or(until, |t| t.max(until)));
        }
        let ip = self.ips.entry(budget_key(addr)).or_default();
        ip.paused_until = Some(ip.paused_until.map_or(until, |t| t.max(until)));
    }

    /// A connection to `addr` was established (`ultrapeer`: it says it is
    /// one): remember it works.
    pub fn succeeded(&mut self, addr: &SocketAddr, ultrapeer: bool, now: Instant) {
        if !self.add_host(*addr, HostSource::User, ultrapeer, now) {
            return;
        }
        if let Some(entry) = self.hosts.get_mut(addr) {
            entry.failures = 0;
            entry.retry_at = None;
            entry.worked = true;
            entry.ultrapeer = ultrapeer;
            entry.last_seen = now;
            entry.last_success = Some(std::time::SystemTime::now());
        }
    }

    /// When `addr` may be dialled again (`None`: now), by its own backoff,
    /// its IP's refusal pause and its IP's dial budget.
    pub fn dial_allowed_at(&self, addr: &SocketAddr, now: Instant) -> Option<Instant> {
        let mut at = self
            .hosts
            .get(addr)
            .and_then(|e| e.retry_at)
            .filter(|t| *t > now);
        if let Some(ip) = self.ips.get(&budget_key(addr)) {
            if let Some(paused) = ip.paused_until.filter(|t| *t > now) {
                at = Some(at.map_or(paused, |t| t.max(paused)));
            }
            let recent = ip
                .dials
                .iter()
                .flatten()
                .filter(|t| now.saturating_duration_since(**t) < DIAL_WINDOW)
                .count();
            if recent >= DIALS_PER_IP_PER_MINUTE {
                let oldest = ip.dials.iter().flatten().min().copied();
                if let Some(free) = oldest.map(|t| t + DIAL_WINDOW) {
                    at = Some(at.map_or(free, |t| t.max(free)));
                }
            }
        }
        at
    }

    /// The host to dial next among those that may be dialled now and that
    /// `skip` does not exclude (already connected, ourselves, ...): an
    /// ultrapeer before any other (a leaf connects to ultrapeers), one that
    /// worked before, then the most recently seen.
    pub fn pick(&self, now: Instant, skip: impl Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        self.hosts
            .iter()
            .filter(|(addr, _)| self.dial_allowed_at(addr, now).is_none() && !skip(addr))
            .max_by_key(|(addr, e)| {
                (
                    e.ultrapeer,
                    e.worked,
                    e.last_seen,
                    std::cmp::Reverse(**addr),
                )
            })
            .map(|(addr, _)| *addr)
    }

    /// Forgets dial records that no longer limit anything (keeps the per-IP
    /// table bounded by the IPs dialled in the last minute or still paused).
    fn prune_ips(&mut self, now: Instant) {
        if self.ips.len() < 2 * self.capacity {
            return;
        }
        self.ips.retain(|_, e| {
            e.paused_until.is_some_and(|t| t > now)
                || e.dials
                    .iter()
                    .flatten()
                    .any(|t| now.saturating_duration_since(*t) < DIAL_WINDOW)
        });
    }

    /// Up to `n` hosts, most recently seen first (for X-Try headers and saving).
    pub fn recent(&self, n: usize) -> Vec<SocketAddr> {
        let mut all: Vec<(&SocketAddr, &HostEntry)> = self.hosts.iter().collect();
        all.sort_by_key(|(addr, e)| (std::cmp::Reverse(e.last_seen), **addr));
        all.into_iter().take(n).map(|(a, _)| *a).collect()
    }

    /// One line per host, most recently seen first: `ip:port`, where it was
    /// learned, `ultrapeer` or `leaf`, and the Unix time a connection to it
    /// last worked (`-` for never).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for addr in self.recent(self.hosts.len()) {
            let Some(e) = self.hosts.get(&addr) else {
                continue;
            };
            let success = e
                .last_success
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or("-".to_string(), |d| d.as_secs().to_string());
            let line = format!(
                "{addr} {} {} {success}\n",
                e.source.as_str(),
                if e.ultrapeer { "ultrapeer" } else { "leaf" }
            );
            out.extend_from_slice(line.as_bytes());
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
            // `ip:port [source] [ultrapeer|leaf] [unix-time|-]`; an older
            // file has the address alone.
            let mut fields = line.split_whitespace();
            let Some(Ok(addr)) = fields.next().map(str::parse::<SocketAddr>) else {
                continue;
            };
            let source = fields
                .next()
                .and_then(HostSource::parse)
                .unwrap_or(HostSource::Saved);
            let ultrapeer = fields.next() == Some("ultrapeer");
            let last_success = fields
                .next()
                .and_then(|t| t.parse::<u64>().ok())
                .map(|secs| std::time::UNIX_EPOCH + Duration::from_secs(secs));
            let age = Duration::from_millis(i as u64);
            let seen = now.checked_sub(age).unwrap_or(now);
            if cache.add_host(addr, source, ultrapeer, seen) {
                if let Some(e) = cache.hosts.get_mut(&addr) {
                    e.last_success = last_success;
                    e.worked = last_success.is_some();
                }
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
        c.add(a("10.0.0.1:6346"), HostSource::User, t0);
        c.add(
            a("10.0.0.2:6346"),
            HostSource::User,
            t0 + Duration::from_secs(1),
        );
        c.add(
            a("10.0.0.3:6346"),
            HostSource::User,
            t0 + Duration::from_secs(2),
        );
        assert_eq!(c.len(), 2);
        assert!(!c.contains(&a("10.0.0.1:6346")));
    }

    #[test]
    fn undialable_addresses_are_refused() {
        let mut c = HostCache::new(10);
        let now = Instant::now();
        assert!(!c.add(a("0.0.0.0:6346"), HostSource::User, now));
        assert!(!c.add(a("10.0.0.1:0"), HostSource::User, now));
        assert!(!c.add(a("224.0.0.1:6346"), HostSource::User, now));
        assert!(c.is_empty());
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        let h = a("10.0.0.1:6346");
        c.add(h, HostSource::User, t0);
        c.failed(&h, t0);
        assert_eq!(c.pick(t0, |_| false), None);
        assert_eq!(c.pick(t0 + Duration::from_secs(11), |_| false), Some(h));
        c.failed(&h, t0);
        assert_eq!(c.pick(t0 + Duration::from_secs(11), |_| false), None);
        assert_eq!(c.pick(t0 + Duration::from_secs(21), |_| false), Some(h));
        c.succeeded(&h, false, t0);
        assert_eq!(c.pick(t0, |_| false), Some(h));
        assert_eq!(c.pick(t0, |x| *x == h), None);
    }

    #[test]
    fn a_host_that_keeps_failing_and_never_worked_is_forgotten() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        let dead = a("10.0.0.1:6346");
        let flaky = a("10.0.0.2:6346");
        c.add(dead, HostSource::User, t0);
        c.succeeded(&flaky, false, t0);
        for _ in 0..FORGET_NEVER_WORKED {
            c.failed(&dead, t0);
            c.failed(&flaky, t0);
        }
        assert!(!c.contains(&dead));
        assert!(c.contains(&flaky), "a host that worked gets more chances");
        for _ in FORGET_NEVER_WORKED..FORGET_WORKED {
            c.failed(&flaky, t0);
        }
        assert!(!c.contains(&flaky));
    }

    #[test]
    fn success_adds_a_host_that_was_not_known() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        c.succeeded(&a("10.0.0.9:6346"), false, t0);
        assert!(c.contains(&a("10.0.0.9:6346")));
        c.succeeded(&a("0.0.0.0:6346"), false, t0);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn one_ip_is_dialled_at_most_twice_a_minute_whatever_the_port() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        for port in 1..=5u16 {
            c.add(
                SocketAddr::from(([10, 0, 0, 1], 6000 + port)),
                HostSource::User,
                t0,
            );
        }
        let mut dialled = Vec::new();
        let mut now = t0;
        // Try every second for two minutes.
        for _ in 0..120 {
            if let Some(addr) = c.pick(now, |_| false) {
                c.dialling(&addr, now);
                c.failed(&addr, now);
                dialled.push(now);
            }
            now += Duration::from_secs(1);
        }
        for (i, t) in dialled.iter().enumerate() {
            let in_window = dialled[i..]
                .iter()
                .filter(|u| u.saturating_duration_since(*t) < DIAL_WINDOW)
                .count();
            assert!(in_window <= DIALS_PER_IP_PER_MINUTE, "{dialled:?}");
        }
        assert!(dialled.len() >= 3, "the budget comes back after a minute");
    }

    #[test]
    fn a_ban_pauses_every_port_of_the_ip_for_the_time_it_names() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        let banned = a("10.0.0.1:6346");
        let sibling = a("10.0.0.1:6347");
        let other = a("10.0.0.2:6346");
        for h in [banned, sibling, other] {
            c.add(h, HostSource::User, t0);
        }
        let pause = refusal_pause(429, "Banned for 5m 0s", None).expect("a refusal");
        assert_eq!(pause, Duration::from_secs(300));
        c.refused(&banned, pause, t0);
        let later = t0 + Duration::from_secs(299);
        let allowed: Vec<SocketAddr> = [banned, sibling, other]
            .into_iter()
            .filter(|h| c.dial_allowed_at(h, later).is_none())
            .collect();
        assert_eq!(allowed, vec![other], "other hosts are preferred meanwhile");
        assert_eq!(c.pick(later, |h| *h == other), None);
        assert!(c
            .dial_allowed_at(&banned, t0 + Duration::from_secs(300))
            .is_none());
    }

    #[test]
    fn refusal_pauses_read_retry_after_and_reasons() {
        let p = |code, reason, retry| refusal_pause(code, reason, retry).map(|d| d.as_secs());
        assert_eq!(p(200, "OK", None), None);
        assert_eq!(p(503, "Busy", Some("42")), Some(42));
        assert_eq!(p(429, "Banned for 1h 2m 3s", None), Some(3723));
        assert_eq!(p(429, "Too many connections, retry in 90s", None), Some(90));
        assert_eq!(p(503, "Full, try again in 2 minutes", None), Some(120));
        assert_eq!(p(429, "Banned", None), Some(300));
        assert_eq!(p(204, "Shielded leaf node", None), Some(1800));
        assert_eq!(p(503, "Too many connections", None), Some(120));
        assert_eq!(p(429, "Banned for 99999d", None), Some(86_400));
        assert_eq!(p(503, "x", Some("junk")), Some(120));
    }

    #[test]
    fn on_loopback_the_budget_is_per_port() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        let local: Vec<SocketAddr> = (1..=4u16)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], 6000 + p)))
            .collect();
        for h in &local {
            c.add(*h, HostSource::User, t0);
            c.dialling(h, t0);
        }
        assert!(local.iter().all(|h| c.dial_allowed_at(h, t0).is_none()));
        c.dialling(&local[0], t0);
        assert!(c.dial_allowed_at(&local[0], t0).is_some());
        c.refused(&local[1], Duration::from_secs(60), t0);
        assert!(c.dial_allowed_at(&local[1], t0).is_some());
        assert!(c.dial_allowed_at(&local[2], t0).is_none());
    }

    #[test]
    fn save_and_reload_keeps_hosts_and_order() {
        let t0 = Instant::now();
        let mut c = HostCache::new(10);
        c.add(a("10.0.0.1:6346"), HostSource::User, t0);
        c.add(
            a("10.0.0.2:6347"),
            HostSource::User,
            t0 + Duration::from_secs(5),
        );
        c.add_ultrapeer(a("10.0.0.3:6346"), HostSource::UdpHostCache, t0);
        c.succeeded(&a("10.0.0.1:6346"), true, t0 + Duration::from_secs(9));
        let bytes = c.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "10.0.0.2:6347 user leaf -");
        assert_eq!(lines[2], "10.0.0.3:6346 udp-host-cache ultrapeer -");
        assert!(
            lines[0].starts_with("10.0.0.1:6346 user ultrapeer 1"),
            "{text}"
        );
        // Old files (an address per line), damaged lines: read what can be read.
        let mut garbage = bytes.clone();
        garbage.extend_from_slice(b"not a host\n\xff\xfe\n10.0.0.4:6346\n");
        let back = HostCache::from_bytes(&garbage, 10, t0);
        let mut expected = c.recent(10);
        expected.push(a("10.0.0.4:6346"));
        assert_eq!(back.recent(10), expected);
        let listed = back.list(10, t0);
        assert_eq!(listed[0].source, HostSource::User);
        assert!(listed[0].ultrapeer && listed[0].last_success_secs_ago.is_some());
        assert_eq!(listed[2].source, HostSource::UdpHostCache);
        assert_eq!(listed[3].source, HostSource::Saved);
        // An ultrapeer that worked is dialled first.
        assert_eq!(back.pick(t0, |_| false), Some(a("10.0.0.1:6346")));
    }
}
