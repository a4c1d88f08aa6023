//! Shared by the integration tests: real `hazel` processes on loopback,
//! commanded and observed through their control sockets, raw test peers, and
//! ([`replay`]) the captured gtk-gnutella links played back.
//!
//! Every process is killed when its [`Servent`] guard drops, so a failing
//! test leaves nothing running. Every wait is bounded.

#![allow(dead_code)] // each test file uses a different part

pub mod replay;

use hazel_servent::control::send_command;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any one condition may take to come true (a shared 2-core machine is slow).
pub const WAIT: Duration = Duration::from_secs(30);

/// A running `hazel --headless` process and its directories.
pub struct Servent {
    pub name: String,
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub share_dir: PathBuf,
    pub addr: SocketAddr,
    /// Keeps the directories alive (and removes them) unless the caller owns them.
    _temp: Option<tempfile::TempDir>,
}

impl Drop for Servent {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How a servent process is started.
struct Launch {
    /// Inside this network namespace (`ip netns exec`).
    netns: Option<String>,
    /// The `--listen` address.
    listen: String,
    /// Its open-file limit (soft and hard).
    nofile: Option<u64>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            netns: None,
            listen: "127.0.0.1:0".into(),
            nofile: None,
        }
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A number inside a JSON value by path (`"received.query"`). A missing
/// key fails the test: a renamed counter must not read as zero.
pub fn num(value: &Value, path: &str) -> u64 {
    let mut v = value;
    for key in path.split('.') {
        match v.get(key) {
            Some(next) => v = next,
            None => panic!("no `{key}` (of `{path}`) in {value}"),
        }
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("`{path}` is not a number in {value}"))
}

/// A drop counter from `stats`: the `drops_by_reason` map must be there; a
/// reason that never happened is absent from it and counts 0.
pub fn drops(stats: &Value, reason: &str) -> u64 {
    let map = stats
        .get("drops_by_reason")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no drops_by_reason in {stats}"));
    map.get(reason).map_or(0, |n| {
        n.as_u64()
            .unwrap_or_else(|| panic!("drop count {reason} is not a number"))
    })
}

/// A counter from `stats` by path: [`drops`] for `drops_by_reason.X`
/// (absent = never happened), [`num`] for everything else (absent = a bug).
pub fn stat(stats: &Value, path: &str) -> u64 {
    match path.strip_prefix("drops_by_reason.") {
        Some(reason) => drops(stats, reason),
        None => num(stats, path),
    }
}

impl Servent {
    /// Starts a servent with its own temporary data and share directories;
    /// `files` are written into the share directory first.
    pub fn start(name: &str, args: &[&str], files: &[(&str, &[u8])]) -> Servent {
        Servent::start_temp(name, args, files, Launch::default())
    }

    /// Starts a servent launched as `launch` says, in temporary directories
    /// removed with it.
    fn start_temp(name: &str, args: &[&str], files: &[(&str, &[u8])], launch: Launch) -> Servent {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let share_dir = temp.path().join("share");
        let mut servent = Servent::start_process(name, &data_dir, &share_dir, args, files, launch);
        servent._temp = Some(temp);
        servent
    }

    /// Like [`Servent::start`], with the process's open-file limit (soft and
    /// hard) set to `nofile`.
    pub fn start_limited(
        name: &str,
        args: &[&str],
        files: &[(&str, &[u8])],
        nofile: u64,
    ) -> Servent {
        let launch = Launch {
            nofile: Some(nofile),
            ..Launch::default()
        };
        Servent::start_temp(name, args, files, launch)
    }

    /// Starts a servent on given directories (to restart one on the same data dir).
    pub fn start_in(
        name: &str,
        data_dir: &Path,
        share_dir: &Path,
        args: &[&str],
        files: &[(&str, &[u8])],
    ) -> Servent {
        Servent::start_process(name, data_dir, share_dir, args, files, Launch::default())
    }

    /// Starts a servent inside network namespace `netns` (`ip netns exec`),
    /// listening on `ip` (root only).
    pub fn start_in_netns(
        name: &str,
        netns: &str,
        ip: &str,
        args: &[&str],
        files: &[(&str, &[u8])],
    ) -> Servent {
        let launch = Launch {
            netns: Some(netns.to_string()),
            listen: format!("{ip}:0"),
            nofile: None,
        };
        Servent::start_temp(name, args, files, launch)
    }

    fn start_process(
        name: &str,
        data_dir: &Path,
        share_dir: &Path,
        args: &[&str],
        files: &[(&str, &[u8])],
        launch: Launch,
    ) -> Servent {
        let Launch {
            netns,
            listen,
            nofile,
        } = launch;
        std::fs::create_dir_all(share_dir).expect("share dir");
        for (file, content) in files {
            let path = share_dir.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("share subfolder");
            }
            std::fs::write(path, content).expect("share file");
        }
        // The data dir may not exist yet: the servent creates it. A port
        // file left by a killed servent would be read as this one's.
        let _ = std::fs::remove_file(data_dir.join("port"));
        let log_path = data_dir.with_extension("log");
        if let Some(parent) = log_path.parent() {
            std::fs::create_dir_all(parent).expect("log dir");
        }
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = match &netns {
            Some(netns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_hazel")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_hazel")),
        };
        if let Some(nofile) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and only reads the struct.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: nofile,
                        rlim_max: nofile,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command
            .args(["--headless", "--listen", &listen, "--data-dir"])
            .arg(data_dir)
            .arg("--share")
            .arg(share_dir)
            .args(["--log-level", "debug"])
            // Tests never ask the host caches on the internet.
            .arg("--no-default-caches")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn hazel");
        let mut servent = Servent {
            name: name.to_string(),
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            share_dir: share_dir.to_path_buf(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _temp: None,
        };
        let port_file = data_dir.join("port");
        let mut addr = None;
        let started = wait_until(WAIT, || {
            addr = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.trim().parse().ok());
            addr.is_some()
        });
        assert!(
            started,
            "{name} did not write {} in time; log:\n{}",
            port_file.display(),
            servent.log()
        );
        servent.addr = addr.unwrap_or(servent.addr);
        servent
    }

    /// The servent's stderr so far (for failure messages).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Sends one command; the reply's data, or the error text.
    pub fn ask(&self, line: &str) -> Result<Value, String> {
        let socket = self.data_dir.join("control.sock");
        let response = send_command(&socket, line, Duration::from_secs(10))
            .map_err(|e| format!("{}: control socket: {e}", self.name))?;
        if response.ok {
            Ok(response.reply.map(|r| r.data).unwrap_or(Value::Null))
        } else {
            Err(response.error.unwrap_or_default())
        }
    }

    /// `ask` that must succeed.
    pub fn must(&self, line: &str) -> Value {
        match self.ask(line) {
            Ok(value) => value,
            Err(e) => panic!("{}: `{line}` failed: {e}\nlog:\n{}", self.name, self.log()),
        }
    }

    pub fn stats(&self) -> Value {
        self.must("stats")
    }

    /// Established overlay links, as `stats` counts them.
    pub fn established(&self) -> u64 {
        num(&self.stats(), "established")
    }

    /// Waits until at least `n` links are established; panics with the log otherwise.
    pub fn wait_established(&self, n: u64) {
        let ok = wait_until(WAIT, || {
            self.ask("stats").is_ok_and(|s| num(&s, "established") >= n)
        });
        assert!(
            ok,
            "{}: {} links established, wanted {n}\npeers: {}\nlog:\n{}",
            self.name,
            self.established(),
            self.must("peers"),
            self.log()
        );
    }

    /// The peers' addresses as this servent sees them (remote socket and listen address).
    pub fn peer_addrs(&self) -> Vec<String> {
        let peers = self.must("peers");
        let mut out = Vec::new();
        for peer in peers.as_array().into_iter().flatten() {
            for key in ["addr", "listen_addr"] {
                if let Some(a) = peer.get(key).and_then(Value::as_str) {
                    out.push(a.to_string());
                }
            }
        }
        out
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid() as i32, signal);
        }
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let mut status = None;
        wait_until(timeout, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Kills the process at once (no Bye, no save), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw test socket that did the 0.6 handshake as a leaf.
pub struct RawPeer {
    pub stream: TcpStream,
}

impl RawPeer {
    pub fn connect(addr: SocketAddr) -> RawPeer {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GNUTELLA CONNECT/0.6\r\nUser-Agent: e2e-raw\r\nX-Ultrapeer: False\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert!(head.len() < 8192, "handshake answer too long");
            stream.read_exact(&mut byte).expect("handshake answer");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"GNUTELLA/0.6 200"),
            "refused: {}",
            String::from_utf8_lossy(&head)
        );
        stream.write_all(b"GNUTELLA/0.6 200 OK\r\n\r\n").unwrap();
        RawPeer { stream }
    }

    /// Sends a descriptor: header fields as given, payload as given.
    pub fn send(&mut self, id: [u8; 16], payload_type: u8, ttl: u8, hops: u8, payload: &[u8]) {
        let mut bytes = Vec::with_capacity(23 + payload.len());
        bytes.extend_from_slice(&id);
        bytes.extend_from_slice(&[payload_type, ttl, hops]);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes).unwrap();
    }

    /// Reads descriptors until one of `payload_type` arrives (others are
    /// skipped); `None` if none comes within `timeout`. Returns the header
    /// (id, ttl, hops) and the payload.
    pub fn read_until_type(
        &mut self,
        payload_type: u8,
        timeout: Duration,
    ) -> Option<([u8; 16], u8, u8, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut header = [0u8; 23];
            let _ = self.stream.set_read_timeout(Some(Duration::from_secs(1)));
            if self.stream.read_exact(&mut header).is_err() {
                continue;
            }
            let len = u32::from_le_bytes([header[19], header[20], header[21], header[22]]);
            assert!(len <= 65536, "a descriptor of {len} bytes from the servent");
            let mut payload = vec![0u8; len as usize];
            let _ = self.stream.set_read_timeout(Some(Duration::from_secs(10)));
            self.stream.read_exact(&mut payload).expect("payload");
            if header[16] == payload_type {
                let mut id = [0u8; 16];
                id.copy_from_slice(&header[..16]);
                return Some((id, header[17], header[18], payload));
            }
        }
        None
    }

    /// True when the servent closes this socket within `timeout` (reads and
    /// discards what it sends until then).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let _ = self
                .stream
                .set_read_timeout(Some(Duration::from_millis(200)));
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true, // reset
            }
        }
        false
    }
}

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.x):
/// several clients on one machine that the servent sees as several addresses.
pub fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind the client address");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// A fresh modern descriptor id.
pub fn new_id(n: u8) -> [u8; 16] {
    let mut id: [u8; 16] = rand::random();
    id[0] = n;
    id[8] = 0xff;
    id[15] = 0;
    id
}

/// A QueryHit payload: one result (`index`, `size`, `name`), no trailer,
/// then `servent_id`; the responder at 127.0.0.1:`port`.
pub fn query_hit_payload(
    index: u32,
    size: u32,
    name: &[u8],
    port: u16,
    servent_id: [u8; 16],
) -> Vec<u8> {
    let mut p = vec![1];
    p.extend_from_slice(&port.to_le_bytes());
    p.extend_from_slice(&[127, 0, 0, 1]);
    p.extend_from_slice(&1000u32.to_le_bytes());
    p.extend_from_slice(&index.to_le_bytes());
    p.extend_from_slice(&size.to_le_bytes());
    p.extend_from_slice(name);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&servent_id);
    p
}

/// A Query payload with the flags word and `text`.
pub fn query_payload(text: &str) -> Vec<u8> {
    let mut payload = vec![0x80, 0x00];
    payload.extend_from_slice(text.as_bytes());
    payload.push(0);
    payload
}

/// How a scripted HTTP source behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves every range correctly.
    Honest,
    /// Serves every range correctly, at most this many bytes a second.
    Throttled(u64),
    /// Serves ranges with wrong bytes (every 1000th byte flipped).
    Corrupt,
    /// Sends the head and this many bytes of each answer, then nothing.
    StallAfter(u64),
    /// Sends the head and this many bytes of each answer, then closes.
    CloseAfter(u64),
    /// Answers every request with this status and no body (a `503` says
    /// `Retry-After: 1`).
    Status(u16),
}

/// A small HTTP server written for the tests: it serves one file at
/// `/uri-res/N2R?<urn>` with `Range` support and keep-alive, behaving as
/// told, and counts what it sent. Stops when dropped.
pub struct HttpSource {
    pub addr: SocketAddr,
    behaviour: std::sync::Arc<std::sync::Mutex<Behaviour>>,
    served: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpSource {
    pub fn start(data: Vec<u8>, behaviour: Behaviour) -> HttpSource {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let served = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let data = Arc::new(data);
        let behaviour = Arc::new(std::sync::Mutex::new(behaviour));
        let (served2, stop2, behaviour2) = (served.clone(), stop.clone(), behaviour.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (data, served, stop) = (data.clone(), served2.clone(), stop2.clone());
                        let behaviour = behaviour2.clone();
                        workers.push(std::thread::spawn(move || {
                            serve_connection(stream, &data, &behaviour, &served, &stop)
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            stop2.store(true, Ordering::Relaxed);
            for w in workers {
                let _ = w.join();
            }
        });
        HttpSource {
            addr,
            behaviour,
            served,
            stop,
            thread: Some(thread),
        }
    }

    /// From the next request on, behaves as `behaviour`.
    pub fn behave(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap_or_else(|e| e.into_inner()) = behaviour;
    }

    /// Body bytes sent so far.
    pub fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_connection(
    mut stream: TcpStream,
    data: &[u8],
    behaviour: &std::sync::Mutex<Behaviour>,
    served: &std::sync::atomic::AtomicU64,
    stop: &std::sync::atomic::AtomicBool,
) {
    use hazel_protocol::http::{Parsed, Request};
    use std::sync::atomic::Ordering;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        let (request, consumed) = match Request::parse(&buf) {
            Ok(Parsed::Complete { message, consumed }) => (message, consumed),
            Ok(Parsed::NeedMore) => continue,
            Err(_) => return,
        };
        buf.drain(..consumed);
        let behaviour = *behaviour.lock().unwrap_or_else(|e| e.into_inner());
        if let Behaviour::Status(code) = behaviour {
            let retry = if code == 503 {
                "Retry-After: 1\r\n"
            } else {
                ""
            };
            let head = format!(
                "HTTP/1.1 {code} Scripted\r\nServer: test-source\r\n{retry}Content-Length: 0\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let total = data.len() as u64;
        let span = match request.range() {
            Some(Ok(range)) => range.satisfy(total),
            _ => None,
        };
        let (first, last) = span.map_or((0, total.saturating_sub(1)), |s| (s.first, s.last));
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nServer: test-source\r\nContent-Range: bytes {first}-{last}/{total}\r\nContent-Length: {}\r\nConnection: Keep-Alive\r\n\r\n",
            last - first + 1
        );
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        let mut body = data[first as usize..=last as usize].to_vec();
        if behaviour == Behaviour::Corrupt {
            for b in body.iter_mut().step_by(1000) {
                *b ^= 0xff;
            }
        }
        let limit = match behaviour {
            Behaviour::StallAfter(n) | Behaviour::CloseAfter(n) => (n as usize).min(body.len()),
            _ => body.len(),
        };
        let mut sent = 0;
        while sent < limit && !stop.load(Ordering::Relaxed) {
            let step = match behaviour {
                Behaviour::Throttled(rate) => ((rate / 20).max(1) as usize).min(limit - sent),
                _ => (limit - sent).min(64 * 1024),
            };
            if stream.write_all(&body[sent..sent + step]).is_err() {
                return;
            }
            sent += step;
            served.fetch_add(step as u64, Ordering::Relaxed);
            if let Behaviour::Throttled(_) = behaviour {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        match behaviour {
            Behaviour::CloseAfter(_) => return,
            Behaviour::StallAfter(_) => {
                // Hold the connection, sending nothing, until told to stop.
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            _ => {}
        }
    }
}

/// A magnet link for `data` named `name` with these HTTP sources.
pub fn magnet_for(data: &[u8], name: &str, sources: &[SocketAddr]) -> String {
    use sha1::{Digest, Sha1};
    let sha1: [u8; 20] = Sha1::digest(data).into();
    hazel_protocol::magnet::Magnet {
        sha1: Some(sha1),
        tiger: None,
        name: Some(name.to_string()),
        size: Some(data.len() as u64),
        sources: sources.to_vec(),
    }
    .to_link()
}
