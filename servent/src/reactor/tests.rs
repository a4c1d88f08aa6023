//! The event loop on real loopback sockets, driven by a handler that echoes
//! what it reads: sniffing, back-pressure, fairness, closes, the socket budget.

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::Mutex;

#[test]
fn sniffing_decides_on_the_first_bytes() {
    assert_eq!(sniff(b""), Sniff::NeedMore);
    assert_eq!(sniff(b"GNUTELLA CONN"), Sniff::NeedMore);
    assert_eq!(sniff(b"GNUTELLA CONNECT/0.6\r\n"), Sniff::Is(Kind::Overlay));
    assert_eq!(sniff(b"GE"), Sniff::NeedMore);
    assert_eq!(sniff(b"GET /get/1/a"), Sniff::Is(Kind::Http));
    assert_eq!(sniff(b"HEAD /"), Sniff::Is(Kind::Http));
    assert_eq!(sniff(b"GIV 1:"), Sniff::Is(Kind::Giv));
    assert_eq!(sniff(b"GNUTELLA OK"), Sniff::Foreign);
    assert_eq!(sniff(b"\x16\x03\x01"), Sniff::Foreign);
    assert_eq!(sniff(b"get /"), Sniff::Foreign);
}

/// What the echo handler saw, shared with the test thread.
#[derive(Default)]
struct Seen {
    events: Vec<String>,
}

/// A handler that writes back every byte it gets: enough to exercise the
/// reactor's sockets, buffers and timers without the servent.
struct EchoHandler {
    seen: Arc<Mutex<Seen>>,
    out: HashMap<ConnId, Vec<u8>>,
    actions: VecDeque<Action>,
}

impl EchoHandler {
    fn new() -> (EchoHandler, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let engine = EchoHandler {
            seen: seen.clone(),
            out: HashMap::new(),
            actions: VecDeque::new(),
        };
        (engine, seen)
    }
    fn note(&self, event: String) {
        self.seen.lock().unwrap().events.push(event);
    }
}

/// What the tests ask the echo handler.
enum Ask {
    Connect(SocketAddr),
    Disconnect(ConnId),
    Quit,
}

impl Handler for EchoHandler {
    type Request = Ask;
    type Response = String;
    fn on_connection(&mut self, id: ConnId, d: Direction, k: Kind, _: SocketAddr, _: Instant) {
        self.note(format!("open {id} {d:?} {k:?}"));
        self.out.insert(id, Vec::new());
    }
    fn on_connect_failed(&mut self, addr: SocketAddr, _: Kind, _: &str, _: Instant) {
        self.note(format!("failed {}", addr.port()));
    }
    fn on_bytes(&mut self, id: ConnId, bytes: &[u8], _: Instant) {
        self.out.entry(id).or_default().extend_from_slice(bytes);
        self.actions.push_back(Action::WantWrite(id));
    }
    fn on_closed(&mut self, id: ConnId, _: Instant) {
        self.out.remove(&id);
        self.note(format!("closed {id}"));
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
    fn output(&mut self, id: ConnId) -> Output<'_> {
        Output::Bytes(self.out.get(&id).map_or(&[], |v| v.as_slice()))
    }
    fn consume_output(&mut self, id: ConnId, n: usize) {
        if let Some(v) = self.out.get_mut(&id) {
            v.drain(..n);
        }
    }
    fn on_wake(&mut self, _: Instant) {}
    fn refusal(&mut self, kind: Kind, _: SocketAddr) -> Vec<u8> {
        format!("busy {kind:?}\n").into_bytes()
    }
    fn request(&mut self, request: Ask, _: Instant) -> (String, Flow) {
        match request {
            Ask::Connect(addr) => self.actions.push_back(Action::Connect(addr)),
            Ask::Disconnect(id) => {
                // Something to flush before the close.
                self.out.entry(id).or_default().extend_from_slice(b"bye\n");
                self.actions.push_back(Action::Close(id));
            }
            Ask::Quit => return ("bye".into(), Flow::Quit),
        }
        ("done".into(), Flow::Continue)
    }
    fn shutdown(&mut self, _: Instant) {
        let ids: Vec<ConnId> = self.out.keys().copied().collect();
        for id in ids {
            self.actions.push_back(Action::Close(id));
        }
    }
    fn save(&mut self) {
        self.note("saved".into());
    }
}

struct Running {
    addr: SocketAddr,
    handle: Handle<Ask, String>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start() -> Running {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (engine, seen) = EchoHandler::new();
        let config = ReactorConfig {
            sniff_timeout: Duration::from_millis(300),
            connect_timeout: Duration::from_secs(2),
            close_linger: Duration::from_millis(500),
            ..ReactorConfig::default()
        };
        let mut reactor = Reactor::new(listener, config, |_| Ok(engine)).unwrap();
        let addr = reactor.local_addr();
        let handle = reactor.handle();
        let thread = std::thread::spawn(move || reactor.run().unwrap());
        Running {
            addr,
            handle,
            seen,
            thread: Some(thread),
        }
    }
    fn events(&self) -> Vec<String> {
        self.seen.lock().unwrap().events.clone()
    }
    /// Waits (bounded) until an event matching `pred` was seen.
    fn wait_event(&self, what: &str) -> bool {
        for _ in 0..200 {
            if self.events().iter().any(|e| e == what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
    fn ask(&self, ask: Ask) -> bool {
        self.handle.request(ask, Duration::from_secs(5)).is_ok()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.ask(Ask::Quit);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn client(addr: SocketAddr) -> StdStream {
    let stream = StdStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

#[test]
fn garbage_and_silence_are_closed_before_reaching_the_engine() {
    let running = Running::start();
    let mut garbage = client(running.addr);
    garbage.write_all(b"HELLO THERE\r\n").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(garbage.read(&mut buf).unwrap(), 0, "closed without a byte");
    let mut silent = client(running.addr);
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "closed at sniff timeout");
    assert!(running.events().iter().all(|e| !e.starts_with("open")));
}

#[test]
fn a_handshake_split_over_writes_reaches_the_engine_whole() {
    let running = Running::start();
    let mut peer = client(running.addr);
    peer.write_all(b"GNUTELLA CON").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    peer.write_all(b"NECT/0.6\r\n\r\n").unwrap();
    let mut echoed = vec![0u8; 24];
    peer.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"GNUTELLA CONNECT/0.6\r\n\r\n");
    assert!(running.wait_event("open 1 Incoming Overlay"));
    let mut http = client(running.addr);
    http.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(running.wait_event("open 2 Incoming Http"));
}

#[test]
fn large_output_is_flushed_under_back_pressure() {
    let running = Running::start();
    let mut peer = client(running.addr);
    let mut reader = peer.try_clone().unwrap();
    let payload: Vec<u8> = b"GIV "
        .iter()
        .copied()
        .chain((0..4_000_000u32).map(|i| (i % 251) as u8))
        .collect();
    let expected = payload.clone();
    let writer = std::thread::spawn(move || peer.write_all(&payload).unwrap());
    let mut got = vec![0u8; expected.len()];
    reader.read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == expected, "echo differs");
}

#[test]
fn outgoing_connects_report_success_or_failure() {
    let running = Running::start();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert!(running.ask(Ask::Connect(target_addr)));
    let (mut accepted, _) = target.accept().unwrap();
    accepted
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(running.wait_event("open 1 Outgoing Overlay"));
    accepted.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    assert!(running.ask(Ask::Connect(closed_port)));
    assert!(running.wait_event(&format!("failed {}", closed_port.port())));
    // Ids never repeat: the failed connect used id 2, the next is 3.
    let mut third = client(running.addr);
    third.write_all(b"GIV x").unwrap();
    assert!(running.wait_event("open 3 Incoming Giv"));
}

#[test]
fn close_flushes_queued_output_then_closes_and_quit_saves() {
    let running = Running::start();
    let mut peer = client(running.addr);
    peer.write_all(b"GNUTELLA CONNECT/0.4\n\n").unwrap();
    let mut echoed = vec![0u8; 22];
    peer.read_exact(&mut echoed).unwrap();
    assert!(running.ask(Ask::Disconnect(1)));
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"bye\n");
    assert!(running.wait_event("closed 1"));
    running.ask(Ask::Quit);
    assert!(running.wait_event("saved"));
}

#[test]
fn a_flooding_connection_does_not_starve_a_quiet_one() {
    let running = Running::start();
    let mut flood = client(running.addr);
    flood.write_all(b"GIV ").unwrap();
    let mut flood_reader = flood.try_clone().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Keep the flood's echo drained so the flood never stalls on its own output.
    let drain_stop = stop.clone();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let _ = flood_reader.set_read_timeout(Some(Duration::from_millis(100)));
        while !drain_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = flood_reader.read(&mut buf);
        }
    });
    let flood_stop = stop.clone();
    let flooder = std::thread::spawn(move || {
        let chunk = vec![b'x'; 65536];
        let started = Instant::now();
        while !flood_stop.load(std::sync::atomic::Ordering::Relaxed)
            && started.elapsed() < Duration::from_secs(10)
        {
            if flood.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut quiet = client(running.addr);
    let asked = Instant::now();
    quiet.write_all(b"GIV quiet\n").unwrap();
    let mut echoed = [0u8; 10];
    quiet.read_exact(&mut echoed).unwrap();
    let waited = asked.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flooder.join().unwrap();
    drain.join().unwrap();
    assert_eq!(&echoed, b"GIV quiet\n");
    assert!(
        waited < Duration::from_secs(3),
        "quiet peer waited {waited:?}"
    );
}

#[test]
fn a_peer_that_never_reads_is_closed_after_the_linger() {
    let running = Running::start();
    let mut stuck = client(running.addr);
    // Far more echo than the socket buffers hold, and never read.
    let payload = vec![b'y'; 16 * 1024 * 1024];
    let mut writer = stuck.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(b"GIV ");
        let _ = writer.write_all(&payload);
    });
    assert!(running.wait_event("open 1 Incoming Giv"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(running.ask(Ask::Disconnect(1)));
    // Output is still queued, but the linger (500 ms here) ends it.
    assert!(running.wait_event("closed 1"), "{:?}", running.events());
    let _ = sender.join();
    let mut buf = vec![0u8; 65536];
    // Whatever was in flight, the socket ends (EOF or reset) promptly.
    let _ = stuck.set_read_timeout(Some(Duration::from_secs(5)));
    let mut ended = false;
    for _ in 0..10_000 {
        match stuck.read(&mut buf) {
            Ok(0) | Err(_) => {
                ended = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(ended);
}
