//! Finding the network from nothing. When no host in the cache can be dialled
//! and outgoing links are missing, a round asks up to [`PER_ROUND`] host
//! caches at once: UDP host caches (a Ping with GGEP `SCP`, answered with a
//! Pong whose `IPP` lists ultrapeers; see [`super::udp`]) and GWebCaches
//! (`GET URL?get=1&hostfile=1&net=gnutella&client=HZEL&version=…`, answered
//! with `H|ip:port` lines (v2) or bare `ip:port` lines (v1), and further
//! caches as `U|url` or `http://…` lines).
//!
//! The caches come from `--bootstrap` (asked first), from the list shipped
//! with the program (`servent/data/bootstrap.txt`, unless
//! `--no-default-caches`) and from the caches' own answers (at most
//! [`MAX_CACHES`] in all). Promises to their operators: one cache is asked
//! at most once per [`UHC_INTERVAL`] (UDP) or [`GWC_INTERVAL`] (web), as the
//! GWebCache specification asks of clients; rounds are at least
//! [`ROUND_PAUSE`] apart, and a round that found nothing doubles the pause
//! (up to [`MAX_PAUSE`]). Names are resolved off the event loop (the core
//! asks with [`Action::Resolve`]); web answers are read up to
//! [`MAX_ANSWER`] bytes, 3xx redirects followed twice at most, every wait
//! bounded by [`WEB_TIMEOUT`]. What it does is said to the user as
//! [`CoreEvent::Notice`]s.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use super::hosts::HostSource;
use super::ids::ConnId;
use super::{Action, Core, CoreEvent};

/// The caches shipped with the program.
const BUILTIN: &str = include_str!("../../data/bootstrap.txt");
/// Caches asked in one round.
pub const PER_ROUND: usize = 3;
/// A UDP host cache is asked at most this often.
pub const UHC_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// A GWebCache is asked at most this often.
pub const GWC_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Pause between rounds (doubled after a round that found nothing).
pub const ROUND_PAUSE: Duration = Duration::from_secs(30);
pub const MAX_PAUSE: Duration = Duration::from_secs(10 * 60);
/// Caches kept (given, shipped and learned).
pub const MAX_CACHES: usize = 64;
/// Bytes of a web cache's answer read.
pub const MAX_ANSWER: usize = 64 * 1024;
/// A web cache must have answered within this.
pub const WEB_TIMEOUT: Duration = Duration::from_secs(20);
/// Hosts taken from one answer.
const HOSTS_PER_ANSWER: usize = 100;
/// Caches learned from one answer.
const CACHES_PER_ANSWER: usize = 10;

/// A host cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSpec {
    /// A UDP host cache.
    Udp { host: String, port: u16 },
    /// A GWebCache: `http://host[:port]/path`.
    Web {
        host: String,
        port: u16,
        path: String,
    },
}

impl CacheSpec {
    /// `http://HOST[:PORT]/PATH` is a GWebCache; `HOST:PORT` a UDP host cache.
    pub fn parse(text: &str) -> Result<CacheSpec, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let (host, port) = split_host_port(authority, 80)?;
            if path.len() > 512 || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(format!("{text}: not a usable URL path"));
            }
            return Ok(CacheSpec::Web {
                host,
                port,
                path: path.to_string(),
            });
        }
        if text.contains("://") {
            return Err(format!("{text}: only http:// web caches are supported"));
        }
        let (host, port) = split_host_port(text, 0)?;
        if port == 0 {
            return Err(format!("{text}: a UDP host cache needs HOST:PORT"));
        }
        Ok(CacheSpec::Udp { host, port })
    }

    fn host(&self) -> (&str, u16) {
        match self {
            CacheSpec::Udp { host, port } | CacheSpec::Web { host, port, .. } => (host, *port),
        }
    }

    fn interval(&self) -> Duration {
        match self {
            CacheSpec::Udp { .. } => UHC_INTERVAL,
            CacheSpec::Web { .. } => GWC_INTERVAL,
        }
    }

    /// How the user reads it.
    pub fn name(&self) -> String {
        match self {
            CacheSpec::Udp { host, port } => format!("{host}:{port} (udp)"),
            CacheSpec::Web { host, port, path } => format!("http://{host}:{port}{path}"),
        }
    }
}

fn split_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (
            h,
            p.parse::<u16>().map_err(|_| format!("{text}: bad port"))?,
        ),
        _ => (text, default_port),
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !valid {
        return Err(format!("{text}: not a host name or IPv4 address"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// The caches shipped with the program.
pub fn builtin() -> Vec<CacheSpec> {
    BUILTIN
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (kind, rest) = l.split_once(' ')?;
            let spec = CacheSpec::parse(rest).ok()?;
            match (kind, &spec) {
                ("uhc", CacheSpec::Udp { .. }) | ("gwc", CacheSpec::Web { .. }) => Some(spec),
                _ => None,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `--bootstrap`: asked before the others.
    Given,
    Shipped,
    Learned,
}

#[derive(Debug, Clone)]
struct Cache {
    spec: CacheSpec,
    origin: Origin,
    last_asked: Option<Instant>,
    failures: u32,
}

/// A GWebCache request on a connection.
#[derive(Debug)]
struct WebFetch {
    cache: usize,
    out: Vec<u8>,
    out_pos: usize,
    answer: Vec<u8>,
    started: Instant,
    redirects: u8,
}

/// A request waiting for its name or its connection.
#[derive(Debug, Clone)]
struct Pending {
    cache: usize,
    redirects: u8,
    /// Where a redirect sent us (else the cache itself).
    target: Option<CacheSpec>,
}

impl Pending {
    fn spec<'a>(&'a self, caches: &'a [Cache]) -> Option<&'a CacheSpec> {
        self.target
            .as_ref()
            .or_else(|| caches.get(self.cache).map(|c| &c.spec))
    }
}

/// The bootstrap's state.
pub(super) struct Bootstrap {
    caches: Vec<Cache>,
    next_round: Option<Instant>,
    pause: Duration,
    /// Name resolutions asked, by token.
    resolving: HashMap<u64, Pending>,
    next_token: u64,
    connecting: HashMap<SocketAddr, VecDeque<Pending>>,
    fetches: HashMap<ConnId, WebFetch>,
    /// Requests of the current round not answered yet.
    outstanding: usize,
    /// Hosts learned in the current round.
    round_found: u64,
    pub stats: BootstrapStats,
}

/// Bootstrap counters, for `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BootstrapStats {
    pub rounds: u64,
    pub requests: u64,
    pub answers: u64,
    pub failures: u64,
    pub hosts_learned: u64,
    pub caches_known: usize,
}

impl Bootstrap {
    pub fn new(given: Vec<CacheSpec>, shipped: bool) -> Bootstrap {
        let mut caches: Vec<Cache> = given
            .into_iter()
            .map(|spec| Cache {
                spec,
                origin: Origin::Given,
                last_asked: None,
                failures: 0,
            })
            .collect();
        if shipped {
            caches.extend(builtin().into_iter().map(|spec| Cache {
                spec,
                origin: Origin::Shipped,
                last_asked: None,
                failures: 0,
            }));
        }
        caches.truncate(MAX_CACHES);
        Bootstrap {
            caches,
            next_round: None,
            pause: ROUND_PAUSE,
            resolving: HashMap::new(),
            next_token: 1,
            connecting: HashMap::new(),
            fetches: HashMap::new(),
            outstanding: 0,
            round_found: 0,
            stats: BootstrapStats::default(),
        }
    }

    pub fn owns(&self, id: ConnId) -> bool {
        self.fetches.contains_key(&id)
    }

    fn learn_cache(&mut self, spec: CacheSpec) {
        if self.caches.len() < MAX_CACHES && !self.caches.iter().any(|c| c.spec == spec) {
            self.caches.push(Cache {
                spec,
                origin: Origin::Learned,
                last_asked: None,
                failures: 0,
            });
        }
    }

    /// The request waiting for a connection to `addr`, if any.
    fn take_connecting(&mut self, addr: SocketAddr) -> Option<Pending> {
        let pending = self.connecting.get_mut(&addr)?.pop_front();
        self.connecting.retain(|_, q| !q.is_empty());
        pending
    }

    /// How the user reads cache `i`.
    fn cache_name(&self, i: usize) -> String {
        self.caches
            .get(i)
            .map(|c| c.spec.name())
            .unwrap_or_default()
    }

    /// Output for a web cache connection.
    pub fn output(&self, id: ConnId) -> &[u8] {
        self.fetches
            .get(&id)
            .map_or(&[], |f| f.out.get(f.out_pos..).unwrap_or_default())
    }

    pub fn consume_output(&mut self, id: ConnId, n: usize) {
        if let Some(f) = self.fetches.get_mut(&id) {
            f.out_pos = (f.out_pos + n).min(f.out.len());
        }
    }
}

/// What a GWebCache answered: hosts, further caches, or a redirect.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WebAnswer {
    pub hosts: Vec<SocketAddrV4>,
    pub caches: Vec<CacheSpec>,
    pub redirect: Option<CacheSpec>,
}

/// Reads a GWebCache's whole HTTP answer (v2 `H|`/`U|` lines, v1 bare
/// lines, a 3xx `Location`). Total: anything else reads as an empty answer
/// or an error saying why.
pub fn parse_web_answer(bytes: &[u8]) -> Result<WebAnswer, String> {
    let text = String::from_utf8_lossy(bytes.get(..MAX_ANSWER).unwrap_or(bytes));
    let (head, body) = match text.find("\r\n\r\n") {
        Some(i) => (&text[..i], &text[i + 4..]),
        None => match text.find("\n\n") {
            Some(i) => (&text[..i], &text[i + 2..]),
            None => return Err("no complete answer".into()),
        },
    };
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP answer: {}",
                hazel_protocol::text::escape(status)
            )
        })?;
    let mut answer = WebAnswer::default();
    if (300..400).contains(&code) {
        let location = lines.find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("location").then(|| v.trim())
        });
        answer.redirect = location.and_then(|l| CacheSpec::parse(l).ok());
        return match answer.redirect {
            Some(CacheSpec::Web { .. }) => Ok(answer),
            _ => Err(format!("answered {code} without a usable Location")),
        };
    }
    if code != 200 {
        return Err(format!("answered {code}"));
    }
    for line in body.lines().map(str::trim) {
        let mut fields = line.split('|');
        let first = fields.next().unwrap_or_default();
        let (host, url) = match first {
            "H" | "h" => (fields.next(), None),
            "U" | "u" => (None, fields.next()),
            other if other.starts_with("http://") => (None, Some(other)),
            other => (Some(other), None),
        };
        if let Some(h) = host {
            if let Ok(addr) = h.trim().parse::<SocketAddrV4>() {
                if answer.hosts.len() < HOSTS_PER_ANSWER && !answer.hosts.contains(&addr) {
                    answer.hosts.push(addr);
                }
            }
        }
        if let Some(u) = url {
            if let Ok(spec @ CacheSpec::Web { .. }) = CacheSpec::parse(u) {
                if answer.caches.len() < CACHES_PER_ANSWER {
                    answer.caches.push(spec);
                }
            }
        }
    }
    Ok(answer)
}

impl Core {
    /// Asks host caches when nothing can be dialled and links are missing.
    pub(super) fn maintain_bootstrap(&mut self, now: Instant) {
        self.expire_udp_pings(now);
        self.expire_web_fetches(now);
        if self.shutting_down || self.bootstrap.outstanding > 0 {
            return;
        }
        let missing = self.outgoing_count() < self.config.peers;
        if !missing {
            self.bootstrap.pause = ROUND_PAUSE;
            return;
        }
        let dialable = self
            .hosts
            .dialable_now(now, |a| self.is_self_addr(a) || self.is_connected_to(a));
        if dialable > 0 || self.bootstrap.next_round.is_some_and(|t| now < t) {
            return;
        }
        // Given caches first, then the others in a random order.
        let mut eligible: Vec<usize> = (0..self.bootstrap.caches.len())
            .filter(|&i| {
                let c = &self.bootstrap.caches[i];
                c.last_asked
                    .is_none_or(|t| now.saturating_duration_since(t) >= c.spec.interval())
            })
            .collect();
        eligible.shuffle(&mut self.rng);
        eligible.sort_by_key(|&i| self.bootstrap.caches[i].origin != Origin::Given);
        eligible.truncate(PER_ROUND);
        self.bootstrap.next_round = Some(now + self.bootstrap.pause);
        if eligible.is_empty() {
            return;
        }
        self.bootstrap.stats.rounds += 1;
        self.bootstrap.round_found = 0;
        self.links.event(CoreEvent::Notice(format!(
            "no host to connect to: asking {} host cache{}…",
            eligible.len(),
            if eligible.len() == 1 { "" } else { "s" }
        )));
        for i in eligible {
            self.bootstrap.caches[i].last_asked = Some(now);
            self.bootstrap.outstanding += 1;
            self.bootstrap.stats.requests += 1;
            self.ask_cache(
                Pending {
                    cache: i,
                    redirects: 0,
                    target: None,
                },
                now,
            );
        }
    }

    /// Starts asking a cache: at its address now if the name is one, else
    /// once the name is resolved.
    fn ask_cache(&mut self, pending: Pending, now: Instant) {
        let Some(spec) = pending.spec(&self.bootstrap.caches).cloned() else {
            return;
        };
        let (host, port) = spec.host();
        match host.parse::<IpAddr>() {
            Ok(ip) => self.cache_address(pending, &spec, SocketAddr::new(ip, port), now),
            Err(_) => {
                let token = self.bootstrap.next_token;
                self.bootstrap.next_token += 1;
                let host = host.to_string();
                self.bootstrap.resolving.insert(token, pending);
                self.links
                    .push_action(Action::Resolve { token, host, port });
            }
        }
    }

    /// The address of a cache is known: ping it or connect to it.
    fn cache_address(
        &mut self,
        pending: Pending,
        spec: &CacheSpec,
        addr: SocketAddr,
        now: Instant,
    ) {
        match spec {
            CacheSpec::Udp { .. } => self.ping_host_cache(addr, &spec.name(), now),
            CacheSpec::Web { .. } => {
                self.bootstrap
                    .connecting
                    .entry(addr)
                    .or_default()
                    .push_back(pending);
                self.links.push_action(Action::ConnectCache(addr));
            }
        }
    }

    /// A name asked with [`Action::Resolve`] was resolved (or not).
    pub fn on_resolved(
        &mut self,
        token: u64,
        result: Result<Vec<SocketAddr>, String>,
        now: Instant,
    ) {
        let Some(pending) = self.bootstrap.resolving.remove(&token) else {
            return;
        };
        let Some(spec) = pending.spec(&self.bootstrap.caches).cloned() else {
            return;
        };
        match result
            .ok()
            .and_then(|addrs| addrs.into_iter().find(SocketAddr::is_ipv4))
        {
            Some(addr) => self.cache_address(pending, &spec, addr, now),
            None => self.bootstrap_failed(&spec.name(), "its name does not resolve", now),
        }
    }

    /// A connection to a web cache opened.
    pub fn on_cache_connected(&mut self, id: ConnId, addr: SocketAddr, now: Instant) -> bool {
        let Some(pending) = self.bootstrap.take_connecting(addr) else {
            return false;
        };
        let Some(CacheSpec::Web { host, port, path }) = pending.spec(&self.bootstrap.caches) else {
            return false;
        };
        let separator = if path.contains('?') { '&' } else { '?' };
        let version = env!("CARGO_PKG_VERSION");
        let request = format!(
            "GET {path}{separator}get=1&hostfile=1&net=gnutella&client=HZEL&version={version} HTTP/1.0\r\n\
             Host: {host}:{port}\r\nUser-Agent: Hazel/{version}\r\nConnection: close\r\n\r\n"
        );
        self.bootstrap.fetches.insert(
            id,
            WebFetch {
                cache: pending.cache,
                out: request.into_bytes(),
                out_pos: 0,
                answer: Vec::new(),
                started: now,
                redirects: pending.redirects,
            },
        );
        self.links.push_action(Action::WantWrite(id));
        true
    }

    /// A connection to a web cache could not be opened.
    pub fn on_cache_connect_failed(&mut self, addr: SocketAddr, error: &str, now: Instant) {
        let Some(pending) = self.bootstrap.take_connecting(addr) else {
            return;
        };
        let name = self.bootstrap.cache_name(pending.cache);
        self.bootstrap_failed(&name, error, now);
    }

    /// Bytes from a web cache.
    pub(super) fn cache_bytes(&mut self, id: ConnId, bytes: &[u8]) {
        if let Some(f) = self.bootstrap.fetches.get_mut(&id) {
            let room = MAX_ANSWER.saturating_sub(f.answer.len());
            f.answer.extend_from_slice(&bytes[..bytes.len().min(room)]);
            if f.answer.len() >= MAX_ANSWER {
                // Enough: what was read is the answer.
                self.links.push_action(Action::Close(id));
            }
        }
    }

    /// A web cache connection ended: its answer is complete.
    pub(super) fn cache_closed(&mut self, id: ConnId, now: Instant) {
        let Some(fetch) = self.bootstrap.fetches.remove(&id) else {
            return;
        };
        let name = self.bootstrap.cache_name(fetch.cache);
        match parse_web_answer(&fetch.answer) {
            Ok(WebAnswer {
                redirect: Some(target),
                ..
            }) => {
                if fetch.redirects >= 2 {
                    self.bootstrap_failed(&name, "too many redirects", now);
                } else {
                    self.ask_cache(
                        Pending {
                            cache: fetch.cache,
                            redirects: fetch.redirects + 1,
                            target: Some(target),
                        },
                        now,
                    );
                }
            }
            Ok(answer) => {
                let mut learned = 0;
                for host in answer.hosts {
                    let addr = SocketAddr::V4(host);
                    if !self.is_self_addr(&addr) && self.hosts.add(addr, HostSource::WebCache, now)
                    {
                        learned += 1;
                    }
                }
                for spec in answer.caches {
                    self.bootstrap.learn_cache(spec);
                }
                self.bootstrap_answered(&name, learned, now);
            }
            Err(why) => self.bootstrap_failed(&name, &why, now),
        }
    }

    /// Web fetches past their deadline are closed (and count as failures).
    fn expire_web_fetches(&mut self, now: Instant) {
        let late: Vec<ConnId> = self
            .bootstrap
            .fetches
            .iter()
            .filter(|(_, f)| now.saturating_duration_since(f.started) >= WEB_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(f) = self.bootstrap.fetches.remove(&id) {
                self.links.push_action(Action::Close(id));
                let name = self.bootstrap.cache_name(f.cache);
                self.bootstrap_failed(&name, "no answer in time", now);
            }
        }
    }

    /// A cache answered with `learned` new hosts.
    pub(super) fn bootstrap_answered(&mut self, name: &str, learned: u64, now: Instant) {
        let b = &mut self.bootstrap;
        b.outstanding = b.outstanding.saturating_sub(1);
        b.stats.answers += 1;
        b.stats.hosts_learned += learned;
        b.round_found += learned;
        self.links.event(CoreEvent::Notice(format!(
            "host cache {}: got {learned} address{}",
            hazel_protocol::text::escape(name),
            if learned == 1 { "" } else { "es" }
        )));
        self.round_done(now);
    }

    /// Asking a cache failed.
    pub(super) fn bootstrap_failed(&mut self, name: &str, why: &str, now: Instant) {
        let b = &mut self.bootstrap;
        b.outstanding = b.outstanding.saturating_sub(1);
        b.stats.failures += 1;
        if let Some(c) = b.caches.iter_mut().find(|c| c.spec.name() == name) {
            c.failures = c.failures.saturating_add(1);
        }
        log::info!(
            "host cache {}: {}",
            hazel_protocol::text::escape(name),
            hazel_protocol::text::escape(why)
        );
        self.round_done(now);
    }

    fn round_done(&mut self, now: Instant) {
        let b = &mut self.bootstrap;
        if b.outstanding > 0 {
            return;
        }
        // A round that found nothing: wait longer before the next.
        b.pause = if b.round_found == 0 {
            (b.pause * 2).min(MAX_PAUSE)
        } else {
            ROUND_PAUSE
        };
        b.next_round = Some(now + b.pause);
        b.stats.caches_known = b.caches.len();
    }

    /// Bootstrap counters.
    pub fn bootstrap_stats(&self) -> BootstrapStats {
        let mut stats = self.bootstrap.stats.clone();
        stats.caches_known = self.bootstrap.caches.len();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_specs_read_both_kinds_and_refuse_the_rest() {
        assert_eq!(
            CacheSpec::parse("1.uhc.gtk-gnutella.nl:19104"),
            Ok(CacheSpec::Udp {
                host: "1.uhc.gtk-gnutella.nl".into(),
                port: 19104
            })
        );
        assert_eq!(
            CacheSpec::parse("http://Cache.Example:8080/gwc.php?net=x"),
            Ok(CacheSpec::Web {
                host: "cache.example".into(),
                port: 8080,
                path: "/gwc.php?net=x".into()
            })
        );
        assert_eq!(
            CacheSpec::parse("http://10.0.0.1"),
            Ok(CacheSpec::Web {
                host: "10.0.0.1".into(),
                port: 80,
                path: "/".into()
            })
        );
        for bad in [
            "example.org",
            "https://example.org/",
            "http://exa mple/",
            "host:99999",
            "http://h/\x1b[2J",
            ":80",
        ] {
            assert!(CacheSpec::parse(bad).is_err(), "{bad:?}");
        }
        let shipped = builtin();
        assert!(shipped.len() >= 9, "{shipped:?}");
        assert!(shipped.iter().any(|c| matches!(c, CacheSpec::Web { .. })));
    }

    #[test]
    fn web_answers_of_both_versions_and_redirects_read() {
        let v2 = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n\
            I|pong|Crab 1.0\r\nH|10.0.0.1:6346|60\r\nH|10.0.0.2:6347\r\nH|bogus\r\n\
            U|http://other.example/gwc.php|3600\r\nU|ftp://nope\r\n";
        let answer = parse_web_answer(v2).unwrap();
        assert_eq!(
            answer.hosts,
            vec![
                "10.0.0.1:6346".parse().unwrap(),
                "10.0.0.2:6347".parse().unwrap()
            ]
        );
        assert_eq!(answer.caches.len(), 1);
        let v1 = b"HTTP/1.0 200 OK\n\n10.1.1.1:6346\nhttp://x.example/c.php\nERROR\n";
        let answer = parse_web_answer(v1).unwrap();
        assert_eq!(answer.hosts, vec!["10.1.1.1:6346".parse().unwrap()]);
        assert_eq!(answer.caches.len(), 1);
        let moved = b"HTTP/1.1 302 Found\r\nLocation: http://new.example/gwc.php\r\n\r\n";
        assert!(parse_web_answer(moved).unwrap().redirect.is_some());
        assert!(parse_web_answer(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(parse_web_answer(b"garbage").is_err());
        let mut flood = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        for i in 0..5000u32 {
            flood.extend_from_slice(format!("H|10.{}.{}.1:6346\n", i / 250, i % 250).as_bytes());
        }
        assert_eq!(
            parse_web_answer(&flood).unwrap().hosts.len(),
            HOSTS_PER_ANSWER
        );
    }

    proptest::proptest! {
        #[test]
        fn any_answer_or_spec_parses_or_fails_cleanly(text in "\\PC{0,400}") {
            let _ = parse_web_answer(text.as_bytes());
            let _ = CacheSpec::parse(&text);
        }
    }
}
