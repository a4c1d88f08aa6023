//! `hazel-load index`: load for any OpenNap-protocol index server.
//!
//! Workload: `--clients` sharers log in as guests (login 2) and
//! share `--files` files between them, names of `--words-per-name` words drawn
//! from a `--vocabulary`-word vocabulary (100 × 1,000 files of 4 words from
//! 5,000 give ≈ 80 hits per one-word search); then, for each concurrency in
//! `--concurrency`, `--searches` one-word and as many two-word searches
//! (the two words taken from a shared name, so each has a hit). Each sharer
//! ends its shares with a search for a word no name contains and waits for
//! its 202: the server handles one client's messages in order, so that 202
//! means all of that client's shares are indexed.
//!
//! Reported: files indexed per second, searches per second, p50/p99 search
//! latency (200 written → 202 read), mean results, and, with `--server-pid`,
//! the server's CPU per indexed file and per search (utime+stime deltas from
//! /proc/<pid>/stat) and resident memory per indexed file (VmRSS delta).
//!
//! With `--login-storm N`, three login storms follow (see [`storm`]): N
//! clients log in at once as guests, then register, then log in to the
//! accounts just made, while a client already online measures the server's
//! responsiveness with pings. `--files 0 --searches 0` runs the storms alone.
//!
//! Plain blocking sockets and one thread per client. Every read and write
//! has a timeout (`--timeout`), every wait for another thread is bounded,
//! and the run stops by itself.

mod storm;

use super::percentile;
use super::proc_stats::{self, ProcSample};
use hazel_protocol::napster::message::kind;
use hazel_protocol::napster::{
    ClientMessage, Frame, Login, NapsterFramer, SearchQuery, SharedFile,
};
use serde::Serialize;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Options of `hazel-load index`.
#[derive(clap::Args, Debug, Clone)]
pub struct IndexLoadArgs {
    /// The server to load, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: String,
    /// The server's process id, to report its CPU and memory from /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Sharing clients.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub clients: usize,
    /// Files shared in total (split evenly between the clients).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub files: usize,
    /// Distinct words names are drawn from (at most 6,400).
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    pub vocabulary: usize,
    /// Words in each file name.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub words_per_name: usize,
    /// Searches of each kind (one-word, two-word) per concurrency level.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub searches: usize,
    /// Concurrent searching clients, comma-separated levels.
    #[arg(
        long,
        value_name = "N,N",
        value_delimiter = ',',
        default_value = "1,16"
    )]
    pub concurrency: Vec<usize>,
    /// MAX_RESULTS sent with each search.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_results: u32,
    /// Seconds any single wait (connect, read, write, other threads) may take.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// Seed of the workload (names, md5s, search words).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Prefix of the guest nicks used.
    #[arg(long, value_name = "TEXT", default_value = "load")]
    pub nick_prefix: String,
    /// Clients that log in at once in each of the three login storms run
    /// after the searches (guests, registrations, registered logins), while
    /// an online client pings the server; 0: no storms. Registrations are
    /// permanent: run the storms against a scratch server.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub login_storm: usize,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What one search phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPhase {
    pub words: usize,
    pub concurrency: usize,
    pub searches: usize,
    pub seconds: f64,
    pub searches_per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_results: f64,
    /// Server CPU (user+system) per search, µs, with `--server-pid`.
    pub server_cpu_us_per_search: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct IndexLoadReport {
    pub server: String,
    pub clients: usize,
    pub files: usize,
    pub vocabulary: usize,
    pub index_seconds: f64,
    pub files_indexed_per_second: f64,
    pub share_errors: usize,
    pub server_cpu_us_per_file: Option<f64>,
    pub server_rss_bytes_per_file: Option<f64>,
    pub server_rss_bytes_after_indexing: Option<u64>,
    pub phases: Vec<SearchPhase>,
    pub storms: Vec<storm::StormPhase>,
}

impl IndexLoadReport {
    /// Human-readable lines.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "hazel-load index against {}: {} clients, {} files, {}-word vocabulary\n",
            self.server, self.clients, self.files, self.vocabulary
        );
        s += &format!(
            "indexing: {:.2} s, {:.0} files/s, {} share errors",
            self.index_seconds, self.files_indexed_per_second, self.share_errors
        );
        if let Some(cpu) = self.server_cpu_us_per_file {
            s += &format!(", server CPU {cpu:.2} µs/file");
        }
        if let Some(rss) = self.server_rss_bytes_per_file {
            s += &format!(", server RSS {rss:.0} B/file");
        }
        s.push('\n');
        for p in &self.phases {
            s += &format!(
                "search {}-word x{:<2}: {} searches in {:.2} s, {:.0}/s, p50 {:.0} µs, p99 {:.0} µs, {:.1} results avg",
                p.words, p.concurrency, p.searches, p.seconds, p.searches_per_second, p.p50_us, p.p99_us, p.mean_results
            );
            if let Some(cpu) = p.server_cpu_us_per_search {
                s += &format!(", server CPU {cpu:.1} µs/search");
            }
            s.push('\n');
        }
        for storm in &self.storms {
            s += &storm.to_text();
            s.push('\n');
        }
        s
    }
}

/// The i-th vocabulary word: two consonant-vowel syllable pairs, distinct
/// for every i below 6,400.
pub fn word(i: usize) -> String {
    const C: &[u8] = b"bcdfghjklmnprstv";
    const V: &[u8] = b"aeiou";
    let syllable = |n: usize| [char::from(C[n % 16]), char::from(V[(n / 16) % 5])];
    let (a, b) = (syllable(i % 80), syllable((i / 80) % 80));
    format!("{}{}{}{}", a[0], a[1], b[0], b[1])
}

/// SplitMix64: a small deterministic generator, so that any file's words
/// can be recomputed from its number without storing them.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The deterministic workload: which words and attributes file `n` has.
#[derive(Debug, Clone)]
pub struct Workload {
    pub seed: u64,
    pub vocabulary: Vec<String>,
    pub words_per_name: usize,
}

impl Workload {
    pub fn new(seed: u64, vocabulary: usize, words_per_name: usize) -> Self {
        Workload {
            seed,
            vocabulary: (0..vocabulary.clamp(1, 6_400)).map(word).collect(),
            words_per_name: words_per_name.max(1),
        }
    }

    /// Vocabulary indices of the words of file `n`.
    pub fn file_words(&self, n: u64) -> impl Iterator<Item = usize> + '_ {
        let base = mix(self.seed ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d));
        (0..self.words_per_name as u64)
            .map(move |k| (mix(base.wrapping_add(k)) % self.vocabulary.len() as u64) as usize)
    }

    /// The shared file `n` as a client announces it (100).
    pub fn shared_file(&self, n: u64) -> SharedFile {
        let mut name = String::from("C:\\mp3\\");
        for (k, w) in self.file_words(n).enumerate() {
            if k > 0 {
                name.push(' ');
            }
            name.push_str(&self.vocabulary[w]);
        }
        name.push_str(".mp3");
        let r = mix(self.seed.wrapping_add(n) ^ 0x5eed);
        SharedFile {
            name: name.into_bytes(),
            md5: format!("{:016x}{:016x}", r, mix(r)).into_bytes(),
            size: 1_000_000 + r % 9_000_000,
            bitrate: 128,
            freq: 44100,
            duration: 60 + (r >> 32) as u32 % 540,
        }
    }
}

/// A word no generated name contains (vocabulary words are 4 letters).
const SYNC_WORD: &[u8] = b"hazelloadsync";

pub(crate) type LoadResult<T> = Result<T, String>;

/// One blocking OpenNap client connection.
/// One OpenNap client connection (also `hazel-lab live`'s).
pub(crate) struct Client {
    stream: TcpStream,
    framer: NapsterFramer,
    buf: Vec<u8>,
    timeout: Duration,
    nick: String,
}

impl Client {
    pub(crate) fn connect(addr: SocketAddr, nick: String, timeout: Duration) -> LoadResult<Client> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("{nick}: connecting to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .and_then(|_| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| format!("{nick}: socket options: {e}"))?;
        Ok(Client {
            stream,
            framer: NapsterFramer::new(u16::MAX as usize),
            buf: vec![0; 64 * 1024],
            timeout,
            nick,
        })
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) -> LoadResult<()> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("{}: writing: {e}", self.nick))
    }

    pub(crate) fn send_message(&mut self, msg: &ClientMessage) -> LoadResult<()> {
        let bytes = msg
            .to_bytes()
            .map_err(|e| format!("{}: encoding: {e}", self.nick))?;
        self.send(&bytes)
    }

    /// The next frame, waiting at most until `deadline`.
    fn next_frame(&mut self, deadline: Instant, waiting_for: &str) -> LoadResult<Frame> {
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(format!("{}: bad frame from server: {e}", self.nick)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "{}: timed out waiting for {waiting_for}",
                    self.nick
                ));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| format!("{}: {e}", self.nick))?;
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    return Err(format!(
                        "{}: server closed the connection while waiting for {waiting_for}",
                        self.nick
                    ))
                }
                Ok(n) => self.framer.push(self.buf.get(..n).unwrap_or(&[])),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{}: reading: {e}", self.nick)),
            }
        }
    }

    /// Logs in as a guest (2) and waits for the ack (3).
    pub(crate) fn login(&mut self) -> LoadResult<()> {
        let login = ClientMessage::Login(Login {
            nick: self.nick.clone(),
            password: b"hazel-load".to_vec(),
            port: 6699,
            client_info: b"hazel-load".to_vec(),
            link_speed: 7,
            build: None,
        });
        self.login_with(&login)
    }

    /// Sends a login (2 or 6) and waits for the ack (3).
    fn login_with(&mut self, login: &ClientMessage) -> LoadResult<()> {
        self.send_message(login)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let frame = self.next_frame(deadline, "the login ack")?;
            match frame.kind {
                kind::LOGIN_ACK => return Ok(()),
                kind::ERROR => {
                    return Err(format!(
                        "{}: login refused: {}",
                        self.nick,
                        String::from_utf8_lossy(&frame.payload)
                    ))
                }
                _ => {}
            }
        }
    }

    /// One server ping (750) and its echo: the round trip.
    fn ping(&mut self) -> LoadResult<Duration> {
        let started = Instant::now();
        self.send_message(&ClientMessage::ServerPing { args: Vec::new() })?;
        let deadline = started + self.timeout;
        loop {
            if self.next_frame(deadline, "a ping's echo (750)")?.kind == kind::SERVER_PING {
                return Ok(started.elapsed());
            }
        }
    }

    /// Sends one search and reads until its 202. Returns (latency, 201s, 404s).
    pub(crate) fn search(&mut self, query: &SearchQuery) -> LoadResult<(Duration, usize, usize)> {
        let bytes = ClientMessage::Search(query.clone())
            .to_bytes()
            .map_err(|e| format!("{}: encoding a search: {e}", self.nick))?;
        let started = Instant::now();
        self.send(&bytes)?;
        let deadline = started + self.timeout;
        let (mut results, mut errors) = (0, 0);
        loop {
            let frame = self.next_frame(deadline, "the end of a search (202)")?;
            match frame.kind {
                kind::SEARCH_RESULT => results += 1,
                kind::SEARCH_END => return Ok((started.elapsed(), results, errors)),
                // A refused search (rate limit, invalid request) is a 404
                // followed by the 202; count it so the run can fail loudly.
                kind::ERROR_MESSAGE => errors += 1,
                _ => {}
            }
        }
    }

    /// Reads and discards whatever the server sends until `stop` is set, so
    /// that periodic messages never pile up in the server's queue.
    fn drain_until(&mut self, stop: &AtomicBool, limit: Instant) {
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(100)));
        while !stop.load(Ordering::Relaxed) && Instant::now() < limit {
            match self.stream.read(&mut self.buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// Waits until `flag` is set or `timeout` passes; false on timeout.
fn wait_for(flag: &AtomicBool, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    while !flag.load(Ordering::Acquire) {
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_micros(200));
    }
    true
}

fn sample(pid: Option<u32>) -> LoadResult<Option<ProcSample>> {
    match pid {
        None => Ok(None),
        Some(pid) => proc_stats::sample(pid)
            .map(Some)
            .map_err(|e| format!("reading /proc/{pid}: {e}")),
    }
}

fn cpu_delta_us(before: Option<ProcSample>, after: Option<ProcSample>) -> Option<f64> {
    Some(after?.cpu.saturating_sub(before?.cpu).as_secs_f64() * 1e6)
}

/// Runs the whole load and returns its report.
pub fn run(args: &IndexLoadArgs) -> LoadResult<IndexLoadReport> {
    let addr = args
        .server
        .to_socket_addrs()
        .map_err(|e| format!("resolving {}: {e}", args.server))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", args.server))?;
    if args.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let timeout = Duration::from_secs(args.timeout.max(1));
    let workload = Arc::new(Workload::new(
        args.seed,
        args.vocabulary,
        args.words_per_name,
    ));
    let baseline = sample(args.server_pid)?;

    // Sharers: log in, wait for the start signal, share, sync, then stay
    // connected (their files must stay indexed) until the searches end.
    let go = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<LoadResult<()>>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<LoadResult<(Instant, usize)>>();
    let per_client = args.files / args.clients;
    let extra = args.files % args.clients;
    let mut sharers = Vec::new();
    let mut first_file = 0u64;
    let run_limit = Instant::now() + timeout * 8 + Duration::from_secs(args.searches as u64);
    for i in 0..args.clients {
        let count = per_client + usize::from(i < extra);
        let range = first_file..first_file + count as u64;
        first_file += count as u64;
        let nick = format!("{}s{i}", args.nick_prefix);
        let (workload, go, stop) = (workload.clone(), go.clone(), stop.clone());
        let (ready_tx, done_tx) = (ready_tx.clone(), done_tx.clone());
        let handle = thread::Builder::new()
            .name(nick.clone())
            .spawn(move || {
                let mut client = match Client::connect(addr, nick, timeout)
                    .and_then(|mut c| c.login().map(|_| c))
                {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                if !wait_for(&go, timeout) {
                    return;
                }
                let result = share_all(&mut client, &workload, range);
                let ok = result.is_ok();
                let _ = done_tx.send(result);
                if ok {
                    client.drain_until(&stop, run_limit);
                }
            })
            .map_err(|e| format!("spawning a client thread: {e}"))?;
        sharers.push(handle);
    }
    drop((ready_tx, done_tx));
    let finish = |stop: &AtomicBool, handles: Vec<thread::JoinHandle<()>>| {
        stop.store(true, Ordering::Release);
        go.store(true, Ordering::Release);
        for h in handles {
            let _ = h.join();
        }
    };
    for _ in 0..args.clients {
        match ready_rx.recv_timeout(timeout) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                finish(&stop, sharers);
                return Err(e);
            }
            Err(_) => {
                finish(&stop, sharers);
                return Err("timed out waiting for the sharers to log in".into());
            }
        }
    }
    let before_index = sample(args.server_pid)?;
    let started = Instant::now();
    go.store(true, Ordering::Release);
    let mut last_done = started;
    let mut share_errors = 0;
    for _ in 0..args.clients {
        match done_rx.recv_timeout(timeout * 4) {
            Ok(Ok((at, errors))) => {
                last_done = last_done.max(at);
                share_errors += errors;
            }
            Ok(Err(e)) => {
                finish(&stop, sharers);
                return Err(e);
            }
            Err(_) => {
                finish(&stop, sharers);
                return Err("timed out waiting for the shares to be indexed".into());
            }
        }
    }
    let index_seconds = last_done.duration_since(started).as_secs_f64();
    let after_index = sample(args.server_pid)?;

    let mut phases = Vec::new();
    let search_levels = if args.searches == 0 {
        &[][..]
    } else {
        &args.concurrency[..]
    };
    for &concurrency in search_levels {
        for words in [1usize, 2] {
            match search_phase(args, addr, &workload, concurrency.max(1), words, timeout) {
                Ok(phase) => phases.push(phase),
                Err(e) => {
                    finish(&stop, sharers);
                    return Err(e);
                }
            }
        }
    }
    let storms = if args.login_storm == 0 {
        Ok(Vec::new())
    } else {
        storm::run_storms(addr, &args.nick_prefix, args.login_storm, timeout)
    };
    finish(&stop, sharers);
    let storms = storms?;

    let files = args.files;
    Ok(IndexLoadReport {
        server: args.server.clone(),
        clients: args.clients,
        files,
        vocabulary: workload.vocabulary.len(),
        index_seconds,
        files_indexed_per_second: files as f64 / index_seconds.max(1e-9),
        share_errors,
        server_cpu_us_per_file: cpu_delta_us(before_index, after_index)
            .map(|us| us / files.max(1) as f64),
        server_rss_bytes_per_file: match (baseline, after_index) {
            (Some(b), Some(a)) => {
                Some(a.rss_bytes.saturating_sub(b.rss_bytes) as f64 / files.max(1) as f64)
            }
            _ => None,
        },
        server_rss_bytes_after_indexing: after_index.map(|a| a.rss_bytes),
        phases,
        storms,
    })
}

/// Shares files `range` (in 64 KiB writes), then syncs with a search that
/// matches nothing. Returns when the sync's 202 arrived and how many 404s
/// (refused shares) came before it.
fn share_all(
    client: &mut Client,
    workload: &Workload,
    range: std::ops::Range<u64>,
) -> LoadResult<(Instant, usize)> {
    let mut out = Vec::with_capacity(80 * 1024);
    for n in range {
        ClientMessage::Share(workload.shared_file(n))
            .encode(&mut out)
            .map_err(|e| format!("{}: encoding a share: {e}", client.nick))?;
        if out.len() >= 64 * 1024 {
            client.send(&out)?;
            out.clear();
        }
    }
    ClientMessage::Search(SearchQuery::simple(SYNC_WORD, 1))
        .encode(&mut out)
        .map_err(|e| format!("{}: encoding the sync search: {e}", client.nick))?;
    client.send(&out)?;
    let deadline = Instant::now() + client.timeout * 4;
    let mut errors = 0;
    loop {
        let frame = client.next_frame(deadline, "the sync search's 202")?;
        match frame.kind {
            kind::SEARCH_END => return Ok((Instant::now(), errors)),
            kind::ERROR_MESSAGE => errors += 1,
            _ => {}
        }
    }
}

/// `searches` searches of `words` words from `concurrency` clients.
fn search_phase(
    args: &IndexLoadArgs,
    addr: SocketAddr,
    workload: &Arc<Workload>,
    concurrency: usize,
    words: usize,
    timeout: Duration,
) -> LoadResult<SearchPhase> {
    let go = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<LoadResult<()>>();
    let mut handles = Vec::new();
    for j in 0..concurrency {
        let count = args.searches / concurrency + usize::from(j < args.searches % concurrency);
        let nick = format!("{}q{words}c{concurrency}n{j}", args.nick_prefix);
        let (workload, go, ready_tx) = (workload.clone(), go.clone(), ready_tx.clone());
        let seed = args.seed ^ mix((words * 1_000 + concurrency * 100 + j) as u64);
        let (max_results, files) = (args.max_results, args.files.max(1) as u64);
        let handle = thread::Builder::new()
            .name(nick.clone())
            .spawn(move || -> LoadResult<(Vec<Duration>, usize, usize)> {
                let mut client = match Client::connect(addr, nick, timeout)
                    .and_then(|mut c| c.login().map(|_| c))
                {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.clone()));
                        return Err(e);
                    }
                };
                let _ = ready_tx.send(Ok(()));
                if !wait_for(&go, timeout) {
                    return Err("never told to start".into());
                }
                let mut latencies = Vec::with_capacity(count);
                let (mut results, mut errors) = (0, 0);
                for k in 0..count as u64 {
                    let r = mix(seed.wrapping_add(k));
                    let phrase = if words == 1 {
                        workload.vocabulary[(r % workload.vocabulary.len() as u64) as usize].clone()
                    } else {
                        // Two distinct words of one shared name.
                        let ws: Vec<usize> = workload.file_words(r % files).collect();
                        let a = ws.first().copied().unwrap_or(0);
                        let b = ws.iter().copied().find(|&w| w != a).unwrap_or(a);
                        format!("{} {}", workload.vocabulary[a], workload.vocabulary[b])
                    };
                    let query = SearchQuery::simple(phrase.as_bytes(), max_results);
                    let (latency, n, e) = client.search(&query)?;
                    latencies.push(latency);
                    results += n;
                    errors += e;
                }
                Ok((latencies, results, errors))
            })
            .map_err(|e| format!("spawning a search thread: {e}"))?;
        handles.push(handle);
    }
    drop(ready_tx);
    let mut failure = None;
    for _ in 0..concurrency {
        match ready_rx.recv_timeout(timeout) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("timed out waiting for the searchers to log in".into()),
        }
        if failure.is_some() {
            break;
        }
    }
    let before = sample(args.server_pid)?;
    let started = Instant::now();
    go.store(true, Ordering::Release);
    let mut latencies = Vec::with_capacity(args.searches);
    let (mut results, mut errors) = (0usize, 0usize);
    for h in handles {
        match h.join() {
            Ok(Ok((l, r, e))) => {
                latencies.extend(l);
                results += r;
                errors += e;
            }
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some("a search thread panicked".into())),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = sample(args.server_pid)?;
    if let Some(e) = failure {
        return Err(e);
    }
    if errors > 0 {
        return Err(format!(
            "the server refused {errors} searches (404); run it without search rate limits"
        ));
    }
    latencies.sort_unstable();
    let searches = latencies.len();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(SearchPhase {
        words,
        concurrency,
        searches,
        seconds,
        searches_per_second: searches as f64 / seconds.max(1e-9),
        p50_us: us(percentile(&latencies, 50.0)),
        p99_us: us(percentile(&latencies, 99.0)),
        mean_results: results as f64 / searches.max(1) as f64,
        server_cpu_us_per_search: cpu_delta_us(before, after).map(|c| c / searches.max(1) as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn vocabulary_words_are_distinct() {
        let words: HashSet<String> = (0..6_400).map(word).collect();
        assert_eq!(words.len(), 6_400);
    }

    #[test]
    fn workload_is_deterministic_and_gives_about_80_names_per_word() {
        let w = Workload::new(1, 5_000, 4);
        assert_eq!(w.shared_file(17), w.shared_file(17));
        assert_ne!(w.shared_file(17).name, w.shared_file(18).name);
        let f = w.shared_file(3);
        let name = String::from_utf8(f.name.clone()).unwrap();
        assert!(name.starts_with("C:\\mp3\\") && name.ends_with(".mp3"));
        assert_eq!(name.trim_start_matches("C:\\mp3\\").split(' ').count(), 4);
        assert_eq!(f.md5.len(), 32);
        // 100,000 names × 4 words over 5,000 words ≈ 80 names per word.
        let mut per_word = vec![0u32; 5_000];
        for n in 0..100_000 {
            let distinct: HashSet<usize> = w.file_words(n).collect();
            for i in distinct {
                per_word[i] += 1;
            }
        }
        let mean = per_word.iter().map(|&c| f64::from(c)).sum::<f64>() / 5_000.0;
        assert!((75.0..=81.0).contains(&mean), "mean {mean}");
        assert!(per_word.iter().all(|&c| c > 30), "every word is used");
    }

    #[test]
    fn sync_word_matches_no_generated_name() {
        let w = Workload::new(9, 5_000, 4);
        let sync = String::from_utf8(SYNC_WORD.to_vec()).unwrap();
        assert!(!w.vocabulary.contains(&sync));
    }

    #[test]
    fn unreachable_server_is_a_clear_error_within_the_timeout() {
        // Bind then drop a listener: the port is (almost surely) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args = IndexLoadArgs {
            server: format!("127.0.0.1:{port}"),
            server_pid: None,
            clients: 2,
            files: 10,
            vocabulary: 50,
            words_per_name: 4,
            searches: 1,
            concurrency: vec![1],
            max_results: 10,
            timeout: 2,
            seed: 1,
            nick_prefix: "t".into(),
            login_storm: 0,
            json: false,
        };
        let started = Instant::now();
        let err = run(&args).unwrap_err();
        assert!(err.contains("connecting"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
