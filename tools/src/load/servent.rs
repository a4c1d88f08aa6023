//! `hazel-load servent`: measures a real `hazel` process from the outside.
//!
//! The servent is spawned (`--hazel PATH`, run headless on loopback with its
//! own data dir) or given (`--target HOST:PORT --pid PID [--data-dir DIR]`).
//! Load-generator connections do the 0.6 handshake like any leaf, then:
//!
//! - `route`: N neighbours (default 8) flood TTL-2 Queries with unique ids; the
//!   servent forwards each to the other N-1 with TTL 1, where they are counted.
//!   Routed/s is what the neighbours receive; CPU comes from `/proc/PID/stat`.
//!   By default the flood is closed-loop (`--window`: at most that many routed
//!   descriptors outstanding), which measures routing capacity without drops;
//!   `--window 0` floods open-loop to watch the drop policy under overload.
//! - `idle`: M connections (default 1000) handshake and stay idle; memory per
//!   connection is the VmRSS delta divided by M.
//! - `dedup`: one neighbour sends U unique TTL-1 Queries (default 1 million);
//!   the servent must remember each id (dedup) without forwarding; the table
//!   sizes (`stats`, through the control socket) and VmRSS show the bound.
//!
//! Example: `cargo build --release -p hazel-servent -p hazel-tools` then
//! `target/release/hazel-load servent all` (finds `hazel` next to itself).
//!
//! Every wait is bounded; every socket is closed at the end; a spawned servent
//! is killed at the end even on error.

use hazel_protocol::header::{DescriptorId, Header, PayloadType, HEADER_LEN};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Options of `hazel-load servent`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServentArgs {
    /// What to measure.
    #[arg(value_enum, default_value = "all")]
    pub workload: Workload,
    /// The `hazel` binary to spawn (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub hazel: Option<PathBuf>,
    /// Measure a servent already running at this address instead of spawning one.
    #[arg(long, value_name = "HOST:PORT", requires = "pid")]
    pub target: Option<SocketAddr>,
    /// Process id of the servent given with --target (for CPU and memory).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Data dir of the servent given with --target (for `stats` through its control socket).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Flooding neighbours for `route`.
    #[arg(long, default_value_t = 8)]
    pub neighbours: usize,
    /// Seconds of measured flooding for `route` (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Routed descriptors `route` keeps outstanding (closed loop); 0 floods
    /// without waiting, to watch the drop policy under overload.
    #[arg(long, default_value_t = 20_000)]
    pub window: u64,
    /// Idle connections for `idle`.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Unique ids for `dedup`.
    #[arg(long, default_value_t = 1_000_000)]
    pub unique_ids: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    Route,
    Idle,
    Dedup,
    All,
}

/// Runs the chosen workloads and prints their numbers.
pub fn run(args: &ServentArgs) -> io::Result<()> {
    raise_fd_limit();
    let target = Target::start(args)?;
    println!(
        "servent at {} (pid {}){}",
        target.addr,
        target.pid,
        if target.child.is_some() {
            ", spawned"
        } else {
            ""
        }
    );
    let workloads: &[Workload] = match args.workload {
        Workload::All => &[Workload::Route, Workload::Dedup, Workload::Idle],
        Workload::Route => &[Workload::Route],
        Workload::Idle => &[Workload::Idle],
        Workload::Dedup => &[Workload::Dedup],
    };
    for workload in workloads {
        match workload {
            Workload::Route => route(&target, args.neighbours, args.seconds, args.window)?,
            Workload::Idle => idle(&target, args.connections)?,
            Workload::Dedup => dedup(&target, args.unique_ids)?,
            Workload::All => {}
        }
    }
    Ok(())
}

/// The servent under test.
struct Target {
    addr: SocketAddr,
    pid: u32,
    data_dir: Option<PathBuf>,
    child: Option<Child>,
    /// A data dir we made (removed at the end).
    own_dir: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.own_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Target {
    fn start(args: &ServentArgs) -> io::Result<Target> {
        if let (Some(addr), Some(pid)) = (args.target, args.pid) {
            return Ok(Target {
                addr,
                pid,
                data_dir: args.data_dir.clone(),
                child: None,
                own_dir: None,
            });
        }
        let hazel = super::hazel_binary(args.hazel.as_deref())?;
        let dir = std::env::temp_dir().join(format!("hazel-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("hazel.log"))?;
        let child = Command::new(&hazel)
            .args(["--headless", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .args(["--peers", "0", "--max-peers", "2000", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", hazel.display())))?;
        let pid = child.id();
        let mut target = Target {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            data_dir: Some(dir.clone()),
            child: Some(child),
            own_dir: Some(dir.clone()),
        };
        let port_file = dir.join("port");
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Ok(addr) = text.trim().parse() {
                    target.addr = addr;
                    return Ok(target);
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other(
            "the spawned servent did not write its port within 10 s",
        ))
    }

    fn stats(&self) -> Option<serde_json::Value> {
        let dir = self.data_dir.as_ref()?;
        control_command(&dir.join("control.sock"), "stats")
            .ok()
            .and_then(|mut v| v.get_mut("reply")?.get_mut("data").map(|d| d.take()))
    }
}

/// One command on a servent's control socket; its JSON response.
pub(crate) fn control_command(socket: &Path, line: &str) -> io::Result<serde_json::Value> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Lets this process (and a servent it spawns) open thousands of sockets.
pub(crate) fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Opens a connection and does the 0.6 handshake as a leaf.
fn handshake(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(
        b"GNUTELLA CONNECT/0.6\r\nUser-Agent: hazel-load\r\nX-Ultrapeer: False\r\n\r\n",
    )?;
    // Read the answer byte by byte so nothing after it is consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() > 8192 {
            return Err(io::Error::other("handshake answer too long"));
        }
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or(&[]))
        .trim()
        .to_string();
    if !status.starts_with("GNUTELLA/0.6 200") {
        return Err(io::Error::other(format!("refused: {status}")));
    }
    stream.write_all(b"GNUTELLA/0.6 200 OK\r\n\r\n")?;
    Ok(stream)
}

/// A Query descriptor with a unique id made of `stream` and `seq`.
fn push_query(out: &mut Vec<u8>, stream: u16, seq: u64, salt: u32, ttl: u8) {
    let payload: &[u8] = b"\x80\x00hazelload\x00";
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&seq.to_le_bytes());
    id[8] = 0xff;
    id[9..11].copy_from_slice(&stream.to_le_bytes());
    id[11..15].copy_from_slice(&salt.to_le_bytes());
    id[15] = 0;
    Header {
        id: DescriptorId(id),
        payload_type: PayloadType::Query,
        ttl,
        hops: 0,
        payload_len: payload.len() as u32,
    }
    .encode(out);
    out.extend_from_slice(payload);
}

/// Reads descriptors until `stop`, counting Queries; answers nothing.
fn count_queries(stream: TcpStream, queries: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    let mut head = [0u8; HEADER_LEN];
    let mut skip = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        match reader.read_exact(&mut head) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        let Ok(header) = Header::parse_array(&head) else {
            return;
        };
        let len = header.payload_len as usize;
        // A timeout inside a payload loses sync; such a read only happens at the very end.
        if reader.read_exact(&mut skip[..len]).is_err() {
            return;
        }
        if header.payload_type == PayloadType::Query {
            queries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// CPU seconds (user + system) of a process.
fn cpu_seconds(pid: u32) -> Option<f64> {
    super::proc_stats::sample(pid)
        .ok()
        .map(|s| s.cpu.as_secs_f64())
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    super::proc_stats::sample(pid)
        .ok()
        .map(|s| s.rss_bytes / 1024)
}

/// What one flood measured.
pub(crate) struct Flood {
    pub neighbours: usize,
    /// Seconds measured (after one second of warm-up).
    pub elapsed: f64,
    /// Queries the neighbours sent in the window.
    pub sent: u64,
    /// Descriptors the neighbours received (routed) in the window.
    pub routed: u64,
    /// The servent's CPU seconds in the window.
    pub cpu: Option<f64>,
    /// `stats` at the start and the end of the window.
    pub stats_before: Option<serde_json::Value>,
    pub stats_after: Option<serde_json::Value>,
}

impl Flood {
    pub fn routed_per_second(&self) -> f64 {
        self.routed as f64 / self.elapsed.max(1e-9)
    }
}

/// N neighbours flood TTL-2 Queries at the servent at `addr` (process
/// `pid`) for `seconds` after a second of warm-up; what they received.
pub(crate) fn flood(
    addr: SocketAddr,
    pid: u32,
    neighbours: usize,
    seconds: u64,
    window: u64,
    stats: impl Fn() -> Option<serde_json::Value>,
) -> io::Result<Flood> {
    let neighbours = neighbours.max(2);
    let mut streams = Vec::new();
    for _ in 0..neighbours {
        streams.push(handshake(addr)?);
    }
    // Let the servent see every link established before flooding.
    thread::sleep(Duration::from_millis(300));
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let salt: u32 = rand::random();
    let mut threads = Vec::new();
    for (n, stream) in streams.iter().enumerate() {
        let reader = stream.try_clone()?;
        let (received_r, stop_r) = (received.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            count_queries(reader, received_r, stop_r)
        }));
        let mut writer = stream.try_clone()?;
        let (sent, stop_w, received_w) = (sent.clone(), stop.clone(), received.clone());
        let fanout = neighbours as u64 - 1;
        threads.push(thread::spawn(move || {
            let mut batch = Vec::with_capacity(512 * 40);
            let mut seq = 0u64;
            while !stop_w.load(Ordering::Relaxed) {
                // Closed loop: keep at most `window` routed descriptors
                // outstanding, so the servent's send queues never overflow
                // and what is measured is routing, not dropping.
                let expected = sent.load(Ordering::Relaxed) * fanout;
                if window > 0 && expected > received_w.load(Ordering::Relaxed) + window {
                    thread::sleep(Duration::from_micros(200));
                    continue;
                }
                batch.clear();
                for _ in 0..512 {
                    push_query(&mut batch, n as u16, seq, salt, 2);
                    seq += 1;
                }
                // Blocking write: a timeout could cut a descriptor in half and
                // desynchronise the stream; shutdown() at the end unblocks it.
                if writer.write_all(&batch).is_err() {
                    return;
                }
                sent.fetch_add(512, Ordering::Relaxed);
            }
        }));
    }
    thread::sleep(Duration::from_secs(1));
    let stats_before = stats();
    let (r0, s0, c0, t0) = (
        received.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
        cpu_seconds(pid),
        Instant::now(),
    );
    thread::sleep(Duration::from_secs(seconds.max(1)));
    let (r1, s1, c1, elapsed) = (
        received.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
        cpu_seconds(pid),
        t0.elapsed().as_secs_f64(),
    );
    let stats_after = stats();
    stop.store(true, Ordering::Relaxed);
    for stream in &streams {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(Flood {
        neighbours,
        elapsed,
        sent: s1 - s0,
        routed: r1 - r0,
        cpu: c0.zip(c1).map(|(a, b)| b - a),
        stats_before,
        stats_after,
    })
}

fn route(target: &Target, neighbours: usize, seconds: u64, window: u64) -> io::Result<()> {
    let f = flood(target.addr, target.pid, neighbours, seconds, window, || {
        target.stats()
    })?;
    let (neighbours, elapsed) = (f.neighbours, f.elapsed);
    let routed = f.routed as f64;
    println!(
        "route: {neighbours} neighbours flooding TTL-2 Queries for {elapsed:.1} s (window {})",
        if window == 0 {
            "none".to_string()
        } else {
            window.to_string()
        }
    );
    println!(
        "  sent {:.0} queries/s, received (routed) {:.0} descriptors/s",
        f.sent as f64 / elapsed,
        routed / elapsed
    );
    if let Some(cpu) = f.cpu {
        println!(
            "  servent CPU {:.2} s in {:.1} s ({:.0}% of one core); {:.0} ns CPU per routed descriptor",
            cpu,
            elapsed,
            100.0 * cpu / elapsed,
            if routed > 0.0 { cpu * 1e9 / routed } else { f64::NAN }
        );
        if cpu > 0.0 {
            println!(
                "  => {:.0} routed descriptors per CPU-second of the servent",
                routed / cpu
            );
        }
    }
    if let (Some(before), Some(after)) = (f.stats_before, f.stats_after) {
        let get = |v: &serde_json::Value, a: &str, b: &str| {
            v.get(a)
                .and_then(|x| x.get(b))
                .and_then(|x| x.as_u64())
                .unwrap_or(0)
        };
        println!(
            "  servent stats: queries received {}, forwarded {}, dropped {} in the window",
            get(&after, "received", "query") - get(&before, "received", "query"),
            get(&after, "forwarded", "query") - get(&before, "forwarded", "query"),
            get(&after, "dropped", "query") - get(&before, "dropped", "query"),
        );
        if let Some(reasons) = after.get("drops_by_reason") {
            println!("  drops by reason (total): {reasons}");
        }
    }
    Ok(())
}

fn idle(target: &Target, connections: usize) -> io::Result<()> {
    // Settle, then take the baseline.
    thread::sleep(Duration::from_millis(500));
    let before = rss_kib(target.pid);
    let started = Instant::now();
    let mut streams = Vec::with_capacity(connections);
    for i in 0..connections {
        match handshake(target.addr) {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                println!("idle: connection {i} failed: {e}");
                break;
            }
        }
    }
    thread::sleep(Duration::from_secs(1));
    let after = rss_kib(target.pid);
    let open = streams.len();
    println!(
        "idle: {open} connections handshaken in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(stats) = target.stats() {
        println!(
            "  servent reports {} connections, {} established",
            stats.get("connections").unwrap_or(&serde_json::Value::Null),
            stats.get("established").unwrap_or(&serde_json::Value::Null)
        );
    }
    if let (Some(before), Some(after)) = (before, after) {
        let per = (after.saturating_sub(before)) as f64 / open.max(1) as f64;
        println!("  VmRSS {before} KiB -> {after} KiB: {per:.1} KiB per idle connection");
    }
    drop(streams);
    thread::sleep(Duration::from_millis(500));
    Ok(())
}

fn dedup(target: &Target, unique: u64) -> io::Result<()> {
    let mut stream = handshake(target.addr)?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    // Drain whatever the servent sends (keep-alive pings) so it never blocks on us.
    let reader = stream.try_clone()?;
    let stop = Arc::new(AtomicBool::new(false));
    let ignored = Arc::new(AtomicU64::new(0));
    let drain = {
        let (stop, ignored) = (stop.clone(), ignored.clone());
        thread::spawn(move || count_queries(reader, ignored, stop))
    };
    thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib(target.pid);
    let salt: u32 = rand::random();
    let started = Instant::now();
    let checkpoints = [unique / 4, unique / 2, unique * 3 / 4, unique];
    let mut seq = 0u64;
    let mut batch = Vec::with_capacity(1024 * 40);
    println!("dedup: {unique} unique TTL-1 Queries through one connection");
    for checkpoint in checkpoints {
        while seq < checkpoint {
            batch.clear();
            let end = (seq + 1024).min(checkpoint);
            while seq < end {
                push_query(&mut batch, 0xffff, seq, salt, 1);
                seq += 1;
            }
            stream.write_all(&batch)?;
        }
        // Let the servent catch up (bounded), then read its tables.
        let mut stats = None;
        for _ in 0..100 {
            stats = target.stats();
            let got = stats
                .as_ref()
                .and_then(|s| s.get("received")?.get("query")?.as_u64())
                .unwrap_or(0);
            if got >= checkpoint || target.data_dir.is_none() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let field = |name: &str| {
            stats
                .as_ref()
                .and_then(|s| s.get(name).cloned())
                .unwrap_or(serde_json::Value::Null)
        };
        println!(
            "  after {seq:>8} ids: query_table {} entries, routing tables {} bytes, VmRSS {} KiB",
            field("query_table"),
            field("routing_memory_bytes"),
            rss_kib(target.pid).map_or("?".to_string(), |k| k.to_string()),
        );
    }
    let rss_after = rss_kib(target.pid);
    println!(
        "  {:.1} s; VmRSS {} KiB -> {} KiB",
        started.elapsed().as_secs_f64(),
        rss_before.map_or("?".to_string(), |k| k.to_string()),
        rss_after.map_or("?".to_string(), |k| k.to_string()),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = drain.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_queries_are_well_formed_and_unique() {
        let mut out = Vec::new();
        push_query(&mut out, 3, 1, 7, 2);
        push_query(&mut out, 3, 2, 7, 2);
        let first = Header::parse(&out).unwrap();
        assert_eq!(first.payload_type, PayloadType::Query);
        assert_eq!((first.ttl, first.hops), (2, 0));
        assert!(first.id.is_modern());
        let len = HEADER_LEN + first.payload_len as usize;
        let second = Header::parse(&out[len..]).unwrap();
        assert_ne!(first.id, second.id);
        let payload = &out[HEADER_LEN..len];
        assert_eq!(&payload[..2], b"\x80\x00", "flags word, never 00 00");
        assert_eq!(payload.last(), Some(&0));
    }

    #[test]
    fn own_process_cpu_and_memory_are_readable() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        assert!(rss_kib(pid).is_some_and(|k| k > 0));
    }
}
