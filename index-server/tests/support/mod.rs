//! Test harness: the real server in-process on loopback (port 0), and a
//! blocking OpenNap test client with bounded waits.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hazel_index::config::Config;
use hazel_index::store::PasswordCost;
use hazel_index::Shutdown;

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

    /// The Prometheus text from `--stats-listen`.
    pub fn metrics(&self) -> String {
        let mut s = TcpStream::connect(self.stats_addr).expect("stats connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).expect("stats read");
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
        text
    }

    /// The value of one metric line (`name{labels}`), 0 if absent.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.metrics();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().unwrap())
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

pub fn frame(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 4);
    v.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
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
            if self.buf.len() >= 4 {
                let len = usize::from(u16::from_le_bytes([self.buf[0], self.buf[1]]));
                if self.buf.len() >= 4 + len {
                    let kind = u16::from_le_bytes([self.buf[2], self.buf[3]]);
                    let payload = self.buf[4..4 + len].to_vec();
                    self.buf.drain(..4 + len);
                    return Some(Msg { kind, payload });
                }
            }
            assert!(Instant::now() < deadline, "no frame within {WAIT:?}");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
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
    u32::from_le_bytes(ip.octets())
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
        if !self.buf.is_empty() {
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
