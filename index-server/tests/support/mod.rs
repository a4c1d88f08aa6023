//! Test harness: the real server in-process on loopback (port 0), a
//! blocking OpenNap test client with bounded waits, and the metrics
//! endpoint read as the tests need it (a metric that is not there is a
//! failure, never a zero).
//!
//! Frames are written and read with the protocol crate's codec; payloads
//! are plain text, so a test states the exact bytes a client sends and
//! sees.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hazel_index::config::Config;
use hazel_index::metrics::DropReason;
use hazel_index::store::PasswordCost;
use hazel_index::Shutdown;
use hazel_protocol::napster::{encode_frame, fields, NapsterFramer, ServerMessage};

/// How long any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Test password cost: argon2id still, but cheap enough for debug builds.
pub fn cheap_passwords() -> PasswordCost {
    PasswordCost {
        memory_kib: 256,
        iterations: 1,
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub stats_addr: SocketAddr,
    shutdown: Shutdown,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    pub fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new(dir.path().to_path_buf());
        config.password_cost = cheap_passwords();
        config.motd = vec!["hello from the test server".to_string()];
        config.clones_per_ip = 50;
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let stats = TcpListener::bind("127.0.0.1:0").expect("bind stats");
        let addr = listener.local_addr().unwrap();
        let stats_addr = stats.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let handle = shutdown.clone();
        let thread =
            std::thread::spawn(move || hazel_index::run(listener, Some(stats), config, handle));
        TestServer {
            addr,
            stats_addr,
            shutdown,
            thread: Some(thread),
            dir,
        }
    }

    /// The Prometheus text from `--stats-listen`, HTTP head included.
    pub fn metrics(&self) -> String {
        fetch_metrics(self.stats_addr)
    }

    /// The value of one metric line (`name{labels}`); fails if there is no
    /// such line.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.metrics();
        metric_value(&text, name).unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }

    /// The value of one metric line, None if there is no such line.
    pub fn metric_opt(&self, name: &str) -> Option<f64> {
        metric_value(&self.metrics(), name)
    }

    /// Connections dropped or requests refused for `reason`: a series
    /// appears with its first count, so an absent one is 0, but the family
    /// must be there.
    pub fn drops(&self, reason: DropReason) -> f64 {
        let text = self.metrics();
        assert!(
            text.contains("# TYPE hazel_index_drops_total counter\n"),
            "no drops counter in:\n{text}"
        );
        let name = format!("hazel_index_drops_total{{reason=\"{}\"}}", reason.label());
        metric_value(&text, &name).unwrap_or(0.0)
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A logged-in guest.
    pub fn login(&self, nick: &str, data_port: u16) -> Client {
        let mut c = self.connect();
        c.login(nick, data_port);
        c
    }

    /// A client that registered `nick` (new-user login 6) and is online,
    /// with everything it sent handled.
    pub fn register(&self, nick: &str, password: &str) -> Client {
        let mut c = self.connect();
        c.send(
            6,
            &format!("{nick} {password} 0 \"nap\" 3 {nick}@example.org"),
        );
        let ack = c.recv();
        assert_eq!(ack.kind, 3, "registration refused: {}", ack.text());
        c.sync();
        c
    }

    /// A logged-in guest that shares `files` (name, size), all indexed when
    /// this returns.
    pub fn sharer(&self, nick: &str, data_port: u16, files: &[(&str, u64)]) -> Client {
        let mut c = self.login(nick, data_port);
        for (name, size) in files {
            c.share(name, *size);
        }
        c.sync();
        c
    }

    /// Waits until the server reports `n` users (bounded).
    pub fn wait_users(&self, n: u64) {
        let deadline = Instant::now() + WAIT;
        while self.metric("hazel_index_users") as u64 != n {
            assert!(Instant::now() < deadline, "server never reached {n} users");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread").expect("server result");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One frame as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub kind: u16,
    pub payload: Vec<u8>,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

impl Msg {
    /// The frame decoded as a client decodes what a server sends (strictly).
    pub fn decode(&self) -> ServerMessage {
        ServerMessage::parse(self.kind, &self.payload)
            .unwrap_or_else(|e| panic!("frame {} {:?}: {e}", self.kind, self.text()))
    }
}

/// One whole frame, as a client writes it.
pub fn frame(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 4);
    encode_frame(kind, payload, &mut v).expect("a payload under 64 KiB");
    v
}

/// The Prometheus text served at `addr` (the HTTP head included); fails
/// unless the answer is a 200.
pub fn fetch_metrics(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("stats connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("stats read");
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    text
}

/// The value on the line of metric `name` (with its labels), if any.
fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().expect("a number"))
}

pub struct Client {
    pub stream: TcpStream,
    framer: NapsterFramer,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            framer: NapsterFramer::new(usize::from(u16::MAX)),
        }
    }

    pub fn send(&mut self, kind: u16, payload: &str) {
        self.send_bytes(kind, payload.as_bytes());
    }

    pub fn send_bytes(&mut self, kind: u16, payload: &[u8]) {
        self.stream.write_all(&frame(kind, payload)).expect("send");
    }

    /// Sends when the server still listens; false once it has closed (a
    /// flood the server cuts off half way).
    pub fn try_send(&mut self, kind: u16, payload: &str) -> bool {
        self.stream
            .write_all(&frame(kind, payload.as_bytes()))
            .is_ok()
    }

    /// The next frame, or None if the server closed the connection.
    pub fn try_recv(&mut self) -> Option<Msg> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(frame) = self.framer.next_frame().expect("a well-formed frame") {
                return Some(Msg {
                    kind: frame.kind,
                    payload: frame.payload,
                });
            }
            assert!(Instant::now() < deadline, "no frame within {WAIT:?}");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.framer.push(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed (timeout?): {e}"),
            }
        }
    }

    pub fn recv(&mut self) -> Msg {
        self.try_recv().expect("server closed the connection")
    }

    /// Skips frames until one of `kind` arrives (skipping at most 10,000).
    pub fn recv_kind(&mut self, kind: u16) -> Msg {
        for _ in 0..10_000 {
            let m = self.recv();
            if m.kind == kind {
                return m;
            }
        }
        panic!("no frame of type {kind}");
    }

    /// Frames up to and including the first of type `end`.
    pub fn recv_until(&mut self, end: u16) -> Vec<Msg> {
        let mut got = Vec::new();
        for _ in 0..10_000 {
            let m = self.recv();
            let done = m.kind == end;
            got.push(m);
            if done {
                return got;
            }
        }
        panic!("no frame of type {end}");
    }

    /// True once the server has closed the connection (bounded wait),
    /// skipping any frames it sent before closing.
    pub fn closed_by_server(&mut self) -> bool {
        for _ in 0..100_000 {
            if self.try_recv().is_none() {
                return true;
            }
        }
        false
    }

    /// Guest login (2): expects 3, the MOTD (621) and stats (214).
    pub fn login(&mut self, nick: &str, data_port: u16) {
        self.send(
            2,
            &format!("{nick} password {data_port} \"hazel-test 1.0\" 7"),
        );
        let ack = self.recv();
        assert_eq!(ack.kind, 3, "login refused: {}", ack.text());
        self.recv_kind(214);
    }

    /// Shares one file (100).
    pub fn share(&mut self, name: &str, size: u64) {
        self.send(
            100,
            &format!("\"{name}\" 0123456789abcdef0123456789abcdef {size} 128 44100 200"),
        );
    }

    /// Searches and returns the 201 payloads (after 202 ends the list).
    pub fn search(&mut self, query: &str) -> Vec<String> {
        self.send(200, query);
        let msgs = self.recv_until(202);
        msgs.iter()
            .filter(|m| m.kind == 201)
            .map(Msg::text)
            .collect()
    }
}

/// Napster's IP encoding (the in_addr bytes as a little-endian u32).
pub fn wire_ip(ip: Ipv4Addr) -> u32 {
    fields::ip_to_wire(ip)
}

impl Client {
    /// Round trip a server ping (750): everything sent before it has been
    /// handled by the server once this returns.
    pub fn sync(&mut self) {
        self.send(750, "");
        self.recv_kind(750);
    }
}

impl Client {
    /// True if nothing has arrived from the server yet (checked without waiting).
    pub fn nothing_arrived(&mut self) -> bool {
        if self.framer.buffered() > 0 {
            return false;
        }
        self.stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let empty =
            matches!(self.stream.peek(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).unwrap();
        empty
    }
}
