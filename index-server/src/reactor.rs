//! The only module that touches sockets: one mio event loop for client
//! connections and the `--stats-listen` HTTP endpoint.
//!
//! Reads are drained until `WouldBlock` and cut into frames as they come;
//! each frame goes to the [`Server`]; what it answers is appended to the
//! connections' output queues and written after the whole batch of input is
//! handled, so all results of one search leave in one write. WRITABLE
//! interest is held only while output is queued; a client whose queue
//! exceeds the cap (it stopped reading) is dropped. Connection ids never
//! repeat even though slab keys do.
//!
//! Two threads take the server's slow work: the password worker (argon2)
//! and the store writer (SQLite commits, each an fsync). Their outcomes
//! come back over a channel and wake the loop.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown as SocketShutdown};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hazel_protocol::http::{HttpVersion, Parsed, Request, Response};
use hazel_protocol::napster::NapsterFramer;
use hazel_protocol::DecodeError;
use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::metrics::DropReason;
use crossbeam_channel::{Receiver, Sender};

use crate::server::{kind, Outbox, PasswordJob, PasswordOutcome, Server, StoreDone, StoreWrite};
use crate::session::ConnId;
use crate::store::Store;

const LISTENER: Token = Token(0);
const STATS_LISTENER: Token = Token(1);
const WAKER: Token = Token(2);
const FIRST_CONN: usize = 3;
/// How often timers (login timeout, periodic stats) are checked.
const TICK: Duration = Duration::from_millis(250);
/// Largest stats request head accepted (below the protocol's own cap on
/// HTTP heads).
const MAX_STATS_REQUEST: usize = 8192;
const READ_CHUNK: usize = 16 * 1024;
/// Simultaneous metrics requests served; more are closed at once.
const MAX_STATS_CLIENTS: usize = 16;
/// A metrics request must be answered within this time or is dropped.
const STATS_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks a running server to stop; cloneable, usable from any thread or a
/// signal handler (through [`Shutdown::flag`]).
#[derive(Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Arc<Waker>>>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// The flag itself, for `signal_hook::flag::register`. The reactor
    /// checks it at least every tick.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }

    /// Stops the server promptly.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Ok(guard) = self.waker.lock() {
            if let Some(w) = guard.as_ref() {
                let _ = w.wake();
            }
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

struct Client {
    id: ConnId,
    stream: TcpStream,
    framer: NapsterFramer,
    output: Vec<u8>,
    /// Bytes of `output` already written.
    written: usize,
    wants_writable: bool,
}

impl Client {
    fn queued(&self) -> usize {
        self.output.len() - self.written
    }
}

struct StatsClient {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    since: Instant,
}

enum Conn {
    Client(Client),
    Stats(StatsClient),
}

/// Writes as much of `output[*written..]` as the socket takes.
/// `Ok(true)` when everything is written.
fn flush(stream: &mut TcpStream, output: &mut Vec<u8>, written: &mut usize) -> io::Result<bool> {
    while *written < output.len() {
        match stream.write(&output[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Free rather than keep the capacity: the next reply brings its own
    // buffer, and thousands of idle clients must not each pin their
    // largest answer.
    *output = Vec::new();
    *written = 0;
    Ok(true)
}

/// The whole HTTP answer to a metrics request: the Prometheus text, then
/// the connection closes.
fn metrics_response(body: &str) -> Vec<u8> {
    let mut head = Response::new(200, "OK");
    head.version = Some(HttpVersion::HTTP_10);
    head.headers
        .push("Content-Type", "text/plain; version=0.0.4")
        .push("Content-Length", &body.len().to_string())
        .push("Connection", "close");
    let mut out = Vec::with_capacity(head.encoded_len() + body.len());
    head.encode(&mut out);
    out.extend_from_slice(body.as_bytes());
    out
}

/// The process's resident memory from `/proc/self/statm` (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok().map(|p| p * pages)
}

fn peer_ipv4(stream: &TcpStream) -> Ipv4Addr {
    match stream.peer_addr().map(|a| a.ip()) {
        Ok(IpAddr::V4(ip)) => ip,
        Ok(IpAddr::V6(ip)) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        Err(_) => Ipv4Addr::UNSPECIFIED,
    }
}

struct Reactor {
    poll: Poll,
    listener: TcpListener,
    stats_listener: Option<TcpListener>,
    conns: Slab<Conn>,
    by_id: HashMap<ConnId, usize>,
    next_id: u64,
    server: Server,
    outbox: Outbox,
    shutdown: Shutdown,
    /// Password jobs to the password worker, store writes to the store
    /// writer, and both threads' outcomes back.
    jobs: Option<Sender<PasswordJob>>,
    writes: Option<Sender<StoreWrite>>,
    outcomes: Receiver<Done>,
    stats_clients: usize,
}

/// Most password jobs waiting for the worker; a login beyond that is told
/// the server is busy rather than queued without bound.
const MAX_QUEUED_PASSWORD_JOBS: usize = 256;
/// Most store writes waiting for the writer; beyond that a write fails
/// (the one waiting for it hears "Server error").
const MAX_QUEUED_STORE_WRITES: usize = 1024;

/// What a worker thread finished.
enum Done {
    Password(ConnId, PasswordOutcome),
    Store(StoreDone),
}

/// Runs password jobs off the event loop, waking it with each outcome.
fn password_worker(jobs: Receiver<PasswordJob>, outcomes: Sender<Done>, waker: Arc<Waker>) {
    for job in jobs {
        let conn = job.conn();
        let outcome = job.run();
        if outcomes.send(Done::Password(conn, outcome)).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

/// Commits store writes off the event loop, on its own connection, waking
/// the loop with each outcome. Writes still queued at shutdown are done
/// before it returns.
fn store_writer(
    writes: Receiver<StoreWrite>,
    mut store: Store,
    outcomes: Sender<Done>,
    waker: Arc<Waker>,
) {
    for write in writes {
        let done = write.run(&mut store);
        if outcomes.send(Done::Store(done)).is_ok() {
            let _ = waker.wake();
        }
    }
}

/// Runs the server on `listener` (and metrics on `stats_listener`) until
/// `shutdown` is triggered; `writer` is the store connection the store
/// writer thread commits with.
pub fn run(
    listener: std::net::TcpListener,
    stats_listener: Option<std::net::TcpListener>,
    server: Server,
    writer: Store,
    shutdown: Shutdown,
) -> io::Result<()> {
    let poll = Poll::new()?;
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let stats_listener = match stats_listener {
        Some(l) => {
            l.set_nonblocking(true)?;
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, STATS_LISTENER, Interest::READABLE)?;
            Some(l)
        }
        None => None,
    };
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    if let Ok(mut slot) = shutdown.waker.lock() {
        *slot = Some(Arc::clone(&waker));
    }
    let (job_tx, job_rx) = crossbeam_channel::bounded(MAX_QUEUED_PASSWORD_JOBS);
    let (write_tx, write_rx) = crossbeam_channel::bounded(MAX_QUEUED_STORE_WRITES);
    let (outcome_tx, outcome_rx) = crossbeam_channel::unbounded();
    let worker = {
        let (outcomes, waker) = (outcome_tx.clone(), Arc::clone(&waker));
        std::thread::Builder::new()
            .name("password-worker".to_string())
            .spawn(move || password_worker(job_rx, outcomes, waker))?
    };
    let writer = std::thread::Builder::new()
        .name("store-writer".to_string())
        .spawn(move || store_writer(write_rx, writer, outcome_tx, waker))?;
    let mut reactor = Reactor {
        poll,
        listener,
        stats_listener,
        conns: Slab::new(),
        by_id: HashMap::new(),
        next_id: 1,
        server,
        outbox: Outbox::new(),
        shutdown,
        jobs: Some(job_tx),
        writes: Some(write_tx),
        outcomes: outcome_rx,
        stats_clients: 0,
    };
    let result = reactor.event_loop();
    // Closing the channels ends the password worker after its current job
    // and the writer once every queued write is committed.
    reactor.jobs = None;
    reactor.writes = None;
    let _ = worker.join();
    let _ = writer.join();
    result
}

impl Reactor {
    fn event_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        while !self.shutdown.is_triggered() {
            let now = Instant::now();
            let timeout = next_tick.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_clients()?,
                    STATS_LISTENER => self.accept_stats()?,
                    WAKER => self.job_outcomes(),
                    Token(t) => {
                        let key = t - FIRST_CONN;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(key);
                        }
                        if event.is_writable() {
                            self.write_ready(key);
                        }
                    }
                }
                self.apply_outbox();
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + TICK;
                self.server.on_tick(now, &mut self.outbox);
                self.apply_outbox();
                self.expire_stats_clients(now);
                // An accept that failed (out of descriptors) leaves the
                // backlog without a new readiness edge: retry each tick.
                self.accept_clients()?;
            }
        }
        info!("shutting down: closing {} connections", self.conns.len());
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.remove(key);
        }
        Ok(())
    }

    fn accept_clients(&mut self) -> io::Result<()> {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors and the like: keep serving the others.
                    warn!("accept: {e}");
                    return Ok(());
                }
            };
            // Opennap never set this, so every small reply waited for the
            // client's delayed ACK; Hazel always does.
            if let Err(e) = stream.set_nodelay(true) {
                debug!("TCP_NODELAY: {e}");
            }
            let ip = peer_ipv4(&stream);
            let id = ConnId(self.next_id);
            self.next_id += 1;
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(key + FIRST_CONN),
                Interest::READABLE,
            ) {
                warn!("register: {e}");
                continue;
            }
            entry.insert(Conn::Client(Client {
                id,
                stream,
                framer: NapsterFramer::new(self.server.config().max_command_length),
                output: Vec::new(),
                written: 0,
                wants_writable: false,
            }));
            self.by_id.insert(id, key);
            let now = Instant::now();
            if self.server.on_connect(id, ip, now, &mut self.outbox) {
                debug!("{id:?} connected from {ip}");
            }
            self.apply_outbox();
        }
    }

    fn accept_stats(&mut self) -> io::Result<()> {
        let Some(listener) = self.stats_listener.as_ref() else {
            return Ok(());
        };
        loop {
            let (mut stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("stats accept: {e}");
                    return Ok(());
                }
            };
            if self.stats_clients >= MAX_STATS_CLIENTS {
                continue; // Dropping the stream closes it.
            }
            let entry = self.conns.vacant_entry();
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(entry.key() + FIRST_CONN),
                    Interest::READABLE,
                )
                .is_ok()
            {
                entry.insert(Conn::Stats(StatsClient {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    written: 0,
                    since: Instant::now(),
                }));
                self.stats_clients += 1;
            }
        }
    }

    fn read(&mut self, key: usize) {
        match self.conns.get(key) {
            Some(Conn::Client(_)) => self.read_client(key),
            Some(Conn::Stats(_)) => self.read_stats(key),
            None => {}
        }
    }

    fn read_client(&mut self, key: usize) {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let Some(Conn::Client(client)) = self.conns.get_mut(key) else {
                return;
            };
            let id = client.id;
            if self.server.is_authenticating(id) {
                // Paused until the password job answers; resumed then.
                return;
            }
            match client.stream.read(&mut chunk) {
                Ok(0) => {
                    debug!("{id:?} closed by peer");
                    self.remove(key);
                    return;
                }
                Ok(n) => {
                    self.server.metrics.bytes_in += n as u64;
                    client.framer.push(&chunk[..n]);
                    if !self.handle_input(key) {
                        return;
                    }
                    self.release_burst_buffer(key, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("{id:?} read error: {e}");
                    self.remove(key);
                    return;
                }
            }
        }
    }

    /// Hands every whole frame in the client's input to the server. Returns
    /// false if the connection is being closed (stop reading).
    fn handle_input(&mut self, key: usize) -> bool {
        loop {
            let Some(Conn::Client(client)) = self.conns.get_mut(key) else {
                return false;
            };
            let id = client.id;
            if self.server.is_authenticating(id) {
                return false;
            }
            match client.framer.next_frame_ref() {
                Ok(Some((kind, payload))) => {
                    let now = Instant::now();
                    self.server
                        .on_frame(id, kind, payload, now, &mut self.outbox);
                    if kind == kind::SEARCH {
                        self.server.metrics.search_latency.observe(now.elapsed());
                    }
                    if self.outbox_closes(id) {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(e) => {
                    let len = match e {
                        DecodeError::TooLong { len, .. } => len,
                        _ => 0,
                    };
                    self.server.on_oversized_frame(id, len, &mut self.outbox);
                    return false;
                }
            }
        }
    }

    /// After a large read is fully consumed (a share burst at login), give
    /// the framer's grown buffer back, so idle connections stay small.
    fn release_burst_buffer(&mut self, key: usize, read: usize) {
        if read < READ_CHUNK / 4 {
            return;
        }
        if let Some(Conn::Client(client)) = self.conns.get_mut(key) {
            if client.framer.buffered() == 0 {
                client.framer = NapsterFramer::new(self.server.config().max_command_length);
            }
        }
    }

    fn outbox_closes(&self, id: ConnId) -> bool {
        self.outbox.closing().contains(&id)
    }

    fn read_stats(&mut self, key: usize) {
        let mut chunk = [0u8; 1024];
        loop {
            let Some(Conn::Stats(stats)) = self.conns.get_mut(key) else {
                return;
            };
            match stats.stream.read(&mut chunk) {
                Ok(0) => {
                    self.remove(key);
                    return;
                }
                Ok(n) => {
                    stats.input.extend_from_slice(&chunk[..n]);
                    if stats.input.len() > MAX_STATS_REQUEST {
                        self.remove(key);
                        return;
                    }
                    match Request::parse(&stats.input) {
                        Ok(Parsed::NeedMore) => {}
                        Ok(Parsed::Complete { .. }) if stats.output.is_empty() => {
                            self.server.metrics.resident_bytes = resident_bytes();
                            let body = self.server.metrics.render(Instant::now());
                            let Some(Conn::Stats(stats)) = self.conns.get_mut(key) else {
                                return;
                            };
                            stats.output = metrics_response(&body);
                            self.write_ready(key);
                            return;
                        }
                        Ok(Parsed::Complete { .. }) => return,
                        Err(_) => {
                            self.remove(key);
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.remove(key);
                    return;
                }
            }
        }
    }

    fn write_ready(&mut self, key: usize) {
        match self.conns.get_mut(key) {
            Some(Conn::Client(_)) => self.flush_client(key),
            Some(Conn::Stats(stats)) => {
                if stats.output.is_empty() {
                    return;
                }
                match flush(&mut stats.stream, &mut stats.output, &mut stats.written) {
                    Ok(true) => self.remove(key),
                    Ok(false) => {
                        let _ = self.poll.registry().reregister(
                            &mut stats.stream,
                            Token(key + FIRST_CONN),
                            Interest::READABLE | Interest::WRITABLE,
                        );
                    }
                    Err(_) => self.remove(key),
                }
            }
            None => {}
        }
    }

    /// Writes what the client's socket takes, and keeps WRITABLE interest
    /// exactly while something is still queued.
    fn flush_client(&mut self, key: usize) {
        let Some(Conn::Client(client)) = self.conns.get_mut(key) else {
            return;
        };
        let before = client.queued();
        let result = flush(&mut client.stream, &mut client.output, &mut client.written);
        self.server.metrics.bytes_out += (before - client.queued()) as u64;
        match result {
            Ok(done) => {
                if done == client.wants_writable {
                    let interest = if done {
                        Interest::READABLE
                    } else {
                        Interest::READABLE | Interest::WRITABLE
                    };
                    client.wants_writable = !done;
                    if let Err(e) = self.poll.registry().reregister(
                        &mut client.stream,
                        Token(key + FIRST_CONN),
                        interest,
                    ) {
                        warn!("reregister: {e}");
                    }
                }
            }
            Err(e) => {
                debug!("{:?} write error: {e}", client.id);
                self.remove(key);
            }
        }
    }

    /// Moves what the server produced onto the sockets.
    fn apply_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        for job in self.outbox.take_jobs() {
            let conn = job.conn();
            let sent = self.jobs.as_ref().map(|tx| tx.try_send(job));
            if !matches!(sent, Some(Ok(()))) {
                self.server.on_password_result(
                    conn,
                    PasswordOutcome::Unavailable,
                    Instant::now(),
                    &mut self.outbox,
                );
            }
        }
        for write in self.outbox.take_writes() {
            let refused = match self.writes.as_ref() {
                Some(tx) => tx.try_send(write).err().map(|e| e.into_inner()),
                None => Some(write),
            };
            if let Some(write) = refused {
                warn!("store writer busy: {write:?} not done");
                self.server
                    .on_store_result(write.refused(), Instant::now(), &mut self.outbox);
            }
        }
        let (frames, closes) = self.outbox.take();
        let cap = self.server.config().output_queue_cap;
        let mut touched = Vec::with_capacity(frames.len());
        for (id, bytes) in frames {
            let Some(&key) = self.by_id.get(&id) else {
                continue;
            };
            let Some(Conn::Client(client)) = self.conns.get_mut(key) else {
                continue;
            };
            if client.queued() + bytes.len() > cap && !closes.contains(&id) {
                // It stopped reading: drop it rather than grow without bound.
                info!("{id:?} output queue over {cap} bytes: dropped");
                self.server.metrics.count_drop(DropReason::OutputQueueFull);
                self.remove(key);
                continue;
            }
            if client.queued() == 0 {
                // The usual case: take the buffer as it is, no copy.
                client.output = bytes;
                client.written = 0;
            } else {
                client.output.extend_from_slice(&bytes);
            }
            touched.push(key);
        }
        touched.dedup();
        for key in touched {
            self.flush_client(key);
        }
        for id in closes {
            if let Some(&key) = self.by_id.get(&id) {
                // Best effort: the farewell is already flushed if the socket took it.
                self.flush_client(key);
                self.remove(key);
            }
        }
    }

    /// Hands the workers' outcomes to the server, then resumes reading the
    /// connections they completed a login of (input that arrived meanwhile
    /// is still queued).
    fn job_outcomes(&mut self) {
        let done: Vec<Done> = self.outcomes.try_iter().collect();
        for outcome in done {
            let conn = match outcome {
                Done::Password(conn, outcome) => {
                    self.server
                        .on_password_result(conn, outcome, Instant::now(), &mut self.outbox);
                    conn
                }
                Done::Store(done) => {
                    let conn = done.write.conn;
                    self.server
                        .on_store_result(done, Instant::now(), &mut self.outbox);
                    conn
                }
            };
            self.apply_outbox();
            if self.server.is_authenticating(conn) {
                continue;
            }
            if let Some(&key) = self.by_id.get(&conn) {
                if self.handle_input(key) {
                    self.read_client(key);
                }
                self.apply_outbox();
            }
        }
    }

    fn expire_stats_clients(&mut self, now: Instant) {
        if self.stats_clients == 0 {
            return;
        }
        let stale: Vec<usize> = self
            .conns
            .iter()
            .filter_map(|(key, conn)| match conn {
                Conn::Stats(s)
                    if now.saturating_duration_since(s.since) >= STATS_CLIENT_TIMEOUT =>
                {
                    Some(key)
                }
                _ => None,
            })
            .collect();
        for key in stale {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        match self.conns.remove(key) {
            Conn::Client(mut client) => {
                let _ = self.poll.registry().deregister(&mut client.stream);
                let _ = client.stream.shutdown(SocketShutdown::Both);
                self.by_id.remove(&client.id);
                self.server.on_disconnect(client.id);
            }
            Conn::Stats(mut stats) => {
                let _ = self.poll.registry().deregister(&mut stats.stream);
                self.stats_clients -= 1;
            }
        }
    }
}
