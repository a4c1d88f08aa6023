//! Joining from nothing: a Hazel with an empty host cache asks a UDP host
//! cache and a GWebCache (small servers written for the test) and connects to
//! the servents they name, asking each cache no more than it promises; and
//! its UDP port under hostile datagrams (random bytes, a Ping flood from one
//! address, Pings asking for hosts from many addresses): replies stay within
//! the stated bounds and memory stays flat.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hazel_protocol::descriptor::{Ping, Pong};
use hazel_protocol::ggep::{hosts as host_list, Ggep, GgepExtension, GgepId};
use hazel_protocol::header::{DescriptorId, Header, PayloadType, HEADER_LEN};
use support::{num, wait_until, Servent, WAIT};

fn datagram(payload_type: PayloadType, id: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Header {
        id: DescriptorId(id),
        payload_type,
        ttl: 1,
        hops: 0,
        payload_len: payload.len() as u32,
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

fn ggep(id: &[u8], value: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    Ggep::new(vec![GgepExtension::new(
        GgepId::new(id).expect("id"),
        value,
    )])
    .encode(&mut out);
    out
}

/// A UDP host cache: answers every Ping that carries SCP with a Pong whose
/// IPP lists `hosts`, and counts the Pings.
struct UdpHostCache {
    addr: SocketAddr,
    pings: Arc<AtomicU64>,
    _server: Stopper,
}

impl UdpHostCache {
    fn start(hosts: Vec<SocketAddr>) -> UdpHostCache {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let pings = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (pings.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let listed: Vec<std::net::SocketAddrV4> = hosts
                .iter()
                .filter_map(|h| match h {
                    SocketAddr::V4(v4) => Some(*v4),
                    SocketAddr::V6(_) => None,
                })
                .collect();
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(header) = Header::parse_array(buf[..HEADER_LEN].try_into().expect("23"))
                else {
                    continue;
                };
                if header.payload_type != PayloadType::Ping {
                    continue;
                }
                let ping = Ping::parse(&buf[HEADER_LEN..n]).expect("a ping");
                assert!(
                    ping.ggep.as_ref().is_some_and(|g| g.get(b"SCP").is_some()),
                    "a host cache is asked with SCP"
                );
                p.fetch_add(1, Ordering::Relaxed);
                let mut pong = hazel_protocol::descriptor::PongFixed {
                    port: addr.port(),
                    ip: std::net::Ipv4Addr::LOCALHOST,
                    files: 0,
                    kbytes: 0,
                }
                .to_bytes()
                .to_vec();
                pong.extend(ggep(b"IPP", host_list::encode(&listed)));
                let _ = socket.send_to(&datagram(PayloadType::Pong, header.id.0, &pong), from);
            }
        });
        UdpHostCache {
            addr,
            pings,
            _server: Stopper {
                stop,
                thread: Some(thread),
            },
        }
    }
}

/// A server thread stopped and joined on drop.
struct Stopper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A GWebCache: answers `?get=1` with `H|` lines for `hosts` and one `U|`
/// line, and keeps every request line.
struct WebCache {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    _server: Stopper,
}

impl WebCache {
    fn start(hosts: Vec<SocketAddr>) -> WebCache {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                stream.set_nonblocking(false).expect("blocking");
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                r.lock().expect("lock").push(line.trim().to_string());
                // The rest of the head.
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(n) if n > 2 => continue,
                        _ => break,
                    }
                }
                let mut body = String::from("I|pong|test cache\r\n");
                for h in &hosts {
                    body.push_str(&format!("H|{h}|30\r\n"));
                }
                body.push_str("U|http://127.0.0.1:9/other.php|60\r\n");
                let mut stream = reader.into_inner();
                let _ = stream.write_all(
                    format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{body}").as_bytes(),
                );
            }
        });
        WebCache {
            addr,
            requests,
            _server: Stopper {
                stop,
                thread: Some(thread),
            },
        }
    }
}

fn host_row(servent: &Servent, addr: SocketAddr) -> Option<serde_json::Value> {
    servent
        .must("hosts")
        .as_array()?
        .iter()
        .find(|h| h["addr"] == addr.to_string())
        .cloned()
}

#[test]
fn an_empty_host_cache_bootstraps_from_a_udp_cache_and_a_web_cache() {
    let a = Servent::start("a", &["--peers", "0"], &[]);
    let b = Servent::start("b", &["--peers", "0"], &[]);
    let uhc = UdpHostCache::start(vec![a.addr]);
    let gwc = WebCache::start(vec![b.addr]);
    let gwc_url = format!("http://{}/gwc.php", gwc.addr);
    let c = Servent::start(
        "c",
        &[
            "--peers",
            "2",
            "--bootstrap",
            &uhc.addr.to_string(),
            "--bootstrap",
            &gwc_url,
        ],
        &[],
    );
    c.wait_established(2);
    let peers = c.peer_addrs();
    for s in [&a, &b] {
        assert!(
            peers.contains(&s.addr.to_string()),
            "connected to {}: {peers:?}",
            s.addr
        );
    }
    let from_uhc = host_row(&c, a.addr).expect("a in the host cache");
    assert_eq!(from_uhc["source"], "udp-host-cache", "{from_uhc}");
    let from_gwc = host_row(&c, b.addr).expect("b in the host cache");
    assert_eq!(from_gwc["source"], "web-cache", "{from_gwc}");
    // What it asked: one request each, the GWebCache with the v2 form.
    let requests = gwc.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("GET /gwc.php?get=1&hostfile=1&net=gnutella&client=HZEL&version="),
        "{requests:?}"
    );
    assert_eq!(uhc.pings.load(Ordering::Relaxed), 1);
    let stats = c.stats();
    assert_eq!(num(&stats, "bootstrap.requests"), 2);
    assert_eq!(num(&stats, "bootstrap.hosts_learned"), 2);
    let log = std::fs::read_to_string(c.data_dir.with_extension("log")).unwrap_or_default();
    assert!(log.contains("asking 2 host caches"), "{}", c.log());
    assert!(log.contains("got 1 address"), "{}", c.log());
}

#[test]
fn caches_are_never_asked_more_often_than_promised() {
    // The caches name hosts that refuse every connection: the servent
    // stays without peers and keeps wanting hosts.
    let dead: Vec<SocketAddr> = (0..3)
        .map(|_| {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        })
        .collect();
    let uhc = UdpHostCache::start(dead.clone());
    let gwc = WebCache::start(dead);
    let gwc_url = format!("http://{}/", gwc.addr);
    let c = Servent::start(
        "c",
        &[
            "--peers",
            "2",
            "--bootstrap",
            &uhc.addr.to_string(),
            "--bootstrap",
            &gwc_url,
        ],
        &[],
    );
    // Long enough for several rounds' worth of pauses (30 s, then doubling):
    // the caches may be asked once each in 15 and 60 minutes.
    assert!(wait_until(WAIT, || num(&c.stats(), "bootstrap.answers") >= 2));
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(uhc.pings.load(Ordering::Relaxed), 1);
    assert_eq!(gwc.requests.lock().expect("lock").len(), 1);
    // It also learned the cache the web cache named.
    assert!(num(&c.stats(), "bootstrap.caches_known") >= 3);
}

/// Reads every datagram that arrives on `socket` within `quiet` of the last.
fn drain(socket: &UdpSocket, quiet: Duration) -> Vec<Vec<u8>> {
    socket.set_read_timeout(Some(quiet)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        out.push(buf[..n].to_vec());
        if out.len() > 100_000 {
            break;
        }
    }
    out
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn udp_pings_are_answered_within_bounds_and_hostile_datagrams_change_nothing() {
    let up = Servent::start("up", &["--peers", "0"], &[]);
    let s = Servent::start(
        "s",
        &["--peers", "0", "--connect", &up.addr.to_string()],
        &[],
    );
    s.wait_established(1);

    // One Ping asking for hosts gets a Pong listing the ultrapeer it knows...
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let scp_ping = datagram(PayloadType::Ping, [7; 16], &ggep(b"SCP", vec![0]));
    client.send_to(&scp_ping, s.addr).expect("send");
    let replies = drain(&client, Duration::from_secs(2));
    assert_eq!(replies.len(), 1, "one Pong");
    let reply = &replies[0];
    assert!(
        reply.len() <= 4 * scp_ping.len(),
        "{} vs {}",
        reply.len(),
        scp_ping.len()
    );
    let header = Header::parse_array(reply[..HEADER_LEN].try_into().expect("23")).expect("header");
    assert_eq!(header.payload_type, PayloadType::Pong);
    assert_eq!(header.id.0, [7; 16], "the Ping's id");
    let pong = Pong::parse(&reply[HEADER_LEN..]).expect("a pong");
    assert_eq!(pong.port, s.addr.port());
    let listed = pong
        .ggep
        .as_ref()
        .and_then(|g| g.get(b"IPP"))
        .map(|e| host_list::decode(&e.value().expect("ipp")))
        .unwrap_or_default();
    assert!(
        listed.iter().any(|h| SocketAddr::V4(*h) == up.addr),
        "the IPP names the ultrapeer: {listed:?}"
    );

    let pid = s.pid();
    let rss_before = rss_kib(pid);
    // Random bytes and broken descriptors from many sources: no answer.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|k| (x >> (k % 56)) as u8).collect();
        let noise = if i % 3 == 0 {
            // A header whose length lies.
            let mut d = datagram(PayloadType::Ping, [1; 16], &[]);
            d[19] = 0xff;
            d
        } else {
            bytes
        };
        let _ = client.send_to(&noise, s.addr);
    }
    // A flood of Pings from one address: a few answers, then silence.
    let flood = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..2000u32 {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_le_bytes());
        let _ = flood.send_to(
            &datagram(PayloadType::Ping, id, &ggep(b"SCP", vec![0])),
            s.addr,
        );
    }
    let answered = drain(&flood, Duration::from_secs(2));
    assert!(
        answered.len() <= 3,
        "one address gets its burst, not one answer per Ping: {}",
        answered.len()
    );
    // Pings asking for hosts from 120 addresses: the total reply rate holds,
    // and every reply stays within 4 times its request.
    let started = Instant::now();
    let mut sockets = Vec::new();
    for n in 2..122u8 {
        let Ok(sock) = UdpSocket::bind((std::net::Ipv4Addr::new(127, 0, 1, n), 0)) else {
            continue;
        };
        let small = datagram(PayloadType::Ping, [n; 16], &[]);
        for _ in 0..5 {
            let _ = sock.send_to(&small, s.addr);
        }
        sockets.push((sock, small.len()));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut total = 0;
    for (sock, request_len) in &sockets {
        for reply in drain(sock, Duration::from_millis(40)) {
            assert!(
                reply.len() <= 4 * request_len,
                "{} > 4 × {request_len}",
                reply.len()
            );
            total += 1;
        }
    }
    assert!(!sockets.is_empty());
    let allowed = 50.0 + 50.0 * (elapsed + 2.0 + 0.04 * sockets.len() as f64);
    assert!(
        total as f64 <= allowed && total <= 3 * sockets.len(),
        "{total} replies to {} addresses in {elapsed:.1}s",
        sockets.len()
    );
    // The servent is unharmed: its link is up, its memory flat, and it counted what it got.
    let stats = s.stats();
    assert_eq!(num(&stats, "established"), 1);
    assert!(num(&stats, "udp.malformed") >= 1000, "{stats}");
    // (UDP is lossy: the kernel may drop some of a burst before the servent reads it.)
    assert!(num(&stats, "udp.pings_not_answered") >= 1000, "{stats}");
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 8 * 1024,
        "memory grew from {rss_before} to {rss_after} KiB"
    );
    // Pongs nobody asked for teach it nothing.
    let hosts_before = s.must("hosts").as_array().map_or(0, Vec::len);
    let mut pong = hazel_protocol::descriptor::PongFixed {
        port: 6346,
        ip: std::net::Ipv4Addr::new(10, 9, 9, 9),
        files: 0,
        kbytes: 0,
    }
    .to_bytes()
    .to_vec();
    pong.extend(ggep(
        b"IPP",
        host_list::encode(&["10.8.8.8:6346".parse().expect("addr")]),
    ));
    for i in 0..50u8 {
        let _ = client.send_to(&datagram(PayloadType::Pong, [i; 16], &pong), s.addr);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(wait_until(WAIT, || num(
        &s.stats(),
        "udp.pongs_unsolicited"
    ) >= 40));
    assert_eq!(s.must("hosts").as_array().map_or(0, Vec::len), hosts_before);
}
