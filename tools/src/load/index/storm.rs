//! Login storms: `--login-storm N` clients log in at the same moment while
//! one client already online pings the server (750), one ping a millisecond
//! (under any flood limit), the next sent as soon as the last is echoed
//! when an echo is late. The
//! pings' round trips show how long the server's event loop is held up by
//! the logins (account lookups, registrations, last-seen updates), apart
//! from how long the logins themselves take.
//!
//! Three storms, one after the other, with nicks unique to the run:
//! `guest` (login 2 with unregistered nicks), `register` (new-user login 6:
//! a password hash and an account insert each) and `registered` (login 2
//! of the nicks just registered: an account lookup, a password check and a
//! last-seen update each).

use super::{percentile, Client, LoadResult};
use hazel_protocol::napster::{ClientMessage, Login, NewUserLogin};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A gate hundreds of threads wait at without spinning (a spinning wait
/// would take the CPU the server under test needs).
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn open(&self) {
        if let Ok(mut open) = self.open.lock() {
            *open = true;
            self.opened.notify_all();
        }
    }

    /// Waits until the gate opens or `timeout` passes; false on timeout.
    fn wait(&self, timeout: Duration) -> bool {
        let Ok(open) = self.open.lock() else {
            return false;
        };
        self.opened
            .wait_timeout_while(open, timeout, |open| !*open)
            .is_ok_and(|(open, _)| *open)
    }
}

/// Which logins a storm is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormKind {
    Guest,
    Register,
    Registered,
}

impl StormKind {
    fn name(self) -> &'static str {
        match self {
            StormKind::Guest => "guest",
            StormKind::Register => "register",
            StormKind::Registered => "registered",
        }
    }
}

/// What one storm measured.
#[derive(Debug, Clone, Serialize)]
pub struct StormPhase {
    pub kind: &'static str,
    pub clients: usize,
    /// From the first login sent to the last answer read.
    pub seconds: f64,
    pub logins_per_second: f64,
    /// Login sent → login ack (3) read.
    pub login_p50_us: f64,
    pub login_p99_us: f64,
    /// Round trips of the online client's pings while the storm lasted.
    pub probe_pings: usize,
    pub probe_p50_us: f64,
    pub probe_p99_us: f64,
    pub probe_max_us: f64,
}

impl StormPhase {
    pub fn to_text(&self) -> String {
        format!(
            "login storm {:<10} x{}: {:.2} s, {:.0} logins/s, login p50 {:.0} µs p99 {:.0} µs; \
             meanwhile {} pings of an online client: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            self.kind,
            self.clients,
            self.seconds,
            self.logins_per_second,
            self.login_p50_us,
            self.login_p99_us,
            self.probe_pings,
            self.probe_p50_us,
            self.probe_p99_us,
            self.probe_max_us
        )
    }
}

/// A tag that keeps this run's nicks apart from earlier runs' accounts.
fn run_tag() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{:04x}", seconds & 0xffff)
}

const PASSWORD: &[u8] = b"storm-password";

/// How often the online client pings while a storm lasts.
const PING_INTERVAL: Duration = Duration::from_millis(1);

fn login_message(kind: StormKind, nick: String) -> ClientMessage {
    match kind {
        StormKind::Register => ClientMessage::NewUserLogin(NewUserLogin {
            nick,
            password: PASSWORD.to_vec(),
            port: 6699,
            client_info: b"hazel-load".to_vec(),
            link_speed: 7,
            email: b"storm@example.org".to_vec(),
        }),
        StormKind::Guest | StormKind::Registered => ClientMessage::Login(Login {
            nick,
            password: PASSWORD.to_vec(),
            port: 6699,
            client_info: b"hazel-load".to_vec(),
            link_speed: 7,
            build: None,
        }),
    }
}

/// Runs the three storms of `clients` logins each.
pub fn run_storms(
    addr: SocketAddr,
    nick_prefix: &str,
    clients: usize,
    timeout: Duration,
) -> LoadResult<Vec<StormPhase>> {
    let tag = run_tag();
    let mut probe = Client::connect(addr, format!("{nick_prefix}{tag}p"), timeout)?;
    probe.login()?;
    let mut phases = Vec::new();
    for kind in [StormKind::Guest, StormKind::Register, StormKind::Registered] {
        // Guests and accounts get different nicks; `registered` logs in
        // the accounts `register` made.
        let letter = if kind == StormKind::Guest { 'g' } else { 'r' };
        let nicks: Vec<String> = (0..clients)
            .map(|i| format!("{nick_prefix}{tag}{letter}{i}"))
            .collect();
        phases.push(storm(addr, kind, nicks, &mut probe, timeout)?);
        // Let the server see the storm's clients leave before the next one.
        thread::sleep(Duration::from_millis(500));
    }
    Ok(phases)
}

/// One storm: every client connects, then all send their login at once.
fn storm(
    addr: SocketAddr,
    kind: StormKind,
    nicks: Vec<String>,
    probe: &mut Client,
    timeout: Duration,
) -> LoadResult<StormPhase> {
    let clients = nicks.len();
    let go = Arc::new(Gate::default());
    let release = Arc::new(Gate::default());
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<LoadResult<()>>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<LoadResult<(Instant, Duration)>>();
    let mut handles = Vec::with_capacity(clients);
    for nick in nicks {
        let (go, release) = (go.clone(), release.clone());
        let (ready_tx, done_tx) = (ready_tx.clone(), done_tx.clone());
        let handle = thread::Builder::new()
            .name(nick.clone())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut client = match Client::connect(addr, nick.clone(), timeout) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                if !go.wait(timeout) {
                    return;
                }
                let sent = Instant::now();
                let result = client
                    .login_with(&login_message(kind, nick))
                    .map(|_| (Instant::now(), sent.elapsed()));
                let _ = done_tx.send(result);
                // Stay online until every login of the storm is answered.
                release.wait(timeout);
            })
            .map_err(|e| format!("spawning a storm client: {e}"))?;
        handles.push(handle);
    }
    drop((ready_tx, done_tx));
    let finish = |handles: Vec<thread::JoinHandle<()>>| {
        go.open();
        release.open();
        for h in handles {
            let _ = h.join();
        }
    };
    for _ in 0..clients {
        match ready_rx.recv_timeout(timeout) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                finish(handles);
                return Err(e);
            }
            Err(_) => {
                finish(handles);
                return Err("timed out waiting for the storm's clients to connect".into());
            }
        }
    }
    let started = Instant::now();
    go.open();
    let mut pings = Vec::new();
    let mut latencies = Vec::with_capacity(clients);
    let mut last = started;
    let mut failure = None;
    // Ping between answers until every login is answered.
    while latencies.len() < clients && failure.is_none() {
        for result in done_rx.try_iter() {
            match result {
                Ok((at, latency)) => {
                    last = last.max(at);
                    latencies.push(latency);
                }
                Err(e) => failure = Some(e),
            }
        }
        if latencies.len() == clients || failure.is_some() {
            break;
        }
        if started.elapsed() > timeout * 4 {
            failure = Some(format!(
                "{} storm: {} of {clients} logins answered in {:?}",
                kind.name(),
                latencies.len(),
                timeout * 4
            ));
            break;
        }
        match probe.ping() {
            Ok(rtt) => {
                pings.push(rtt);
                thread::sleep(PING_INTERVAL.saturating_sub(rtt));
            }
            Err(e) => failure = Some(e),
        }
    }
    finish(handles);
    if let Some(e) = failure {
        return Err(e);
    }
    let seconds = last.duration_since(started).as_secs_f64();
    latencies.sort_unstable();
    pings.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(StormPhase {
        kind: kind.name(),
        clients,
        seconds,
        logins_per_second: clients as f64 / seconds.max(1e-9),
        login_p50_us: us(percentile(&latencies, 50.0)),
        login_p99_us: us(percentile(&latencies, 99.0)),
        probe_pings: pings.len(),
        probe_p50_us: us(percentile(&pings, 50.0)),
        probe_p99_us: us(percentile(&pings, 99.0)),
        probe_max_us: us(pings.last().copied().unwrap_or_default()),
    })
}
