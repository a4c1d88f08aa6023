//! The download engine driven by hand, against the answers real servents
//! gave in the shared captures (Shareaza's `206` with `Content-Range:
//! bytes=…`, BearShare's version-less `HTTP 503 Server Busy`, Gnotella's
//! `HTTP/1.0 503`), and the rules around them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;

/// The file of the captured Shareaza downloads (streams 134 and 135).
const SHA1: &str = "urn:sha1:LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI";
const SIZE: u64 = 3_234_212;

fn sha1() -> [u8; 20] {
    hazel_protocol::huge::Urn::parse(SHA1.as_bytes())
        .sha1()
        .expect("sha1")
}

fn source(addr: &str) -> SourceSpec {
    SourceSpec {
        addr: addr.parse().expect("addr"),
        servent_id: None,
        file_index: None,
        needs_push: false,
        origin: Origin::Search,
        proxies: Vec::new(),
    }
}

/// The captured HTTP answers of one stream, raw.
fn captured_response(stream: u64) -> Vec<u8> {
    let text = String::from_utf8(hazel_protocol::traces::read(
        "ndpi-gtkg-0.6-2022.handshakes.jsonl",
    ))
    .expect("utf-8");
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("json");
        if record["stream"] == stream && record["kind"] == "http" {
            let head = record["response"][0].as_str().expect("a response");
            let mut bytes = head.as_bytes().to_vec();
            if !bytes.ends_with(b"\r\n\r\n") {
                bytes.extend_from_slice(b"\r\n\r\n");
            }
            return bytes;
        }
    }
    panic!("no stream {stream} in the capture")
}

fn ppa1e_response(first_line: &str) -> Vec<u8> {
    let text = String::from_utf8(hazel_protocol::traces::read(
        "ppa1e-bearshare-get-2001.expected.jsonl",
    ))
    .expect("utf-8");
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("json");
        if record["kind"] == "http_response" && record["first_line"] == first_line {
            return data_encoding::HEXLOWER
                .decode(record["raw_hex"].as_str().expect("hex").as_bytes())
                .expect("hex");
        }
    }
    panic!("no {first_line:?} in the capture")
}

struct Bench {
    t: Transfers,
    now: Instant,
    actions: Vec<TransferAction>,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            t: Transfers::new(TransfersConfig::default()),
            now: Instant::now(),
            actions: Vec::new(),
        }
    }

    fn take(&mut self) -> Vec<TransferAction> {
        while let Some(a) = self.t.poll_action() {
            self.actions.push(a);
        }
        std::mem::take(&mut self.actions)
    }

    /// A download of the captured file from `addr`, connected as `conn`;
    /// the request it sent.
    fn connected(&mut self, addr: &str, conn: ConnId) -> String {
        let (id, new) = self
            .t
            .add(
                NewDownload {
                    name: "Hero.mp3".into(),
                    size: Some(SIZE),
                    sha1: sha1(),
                    tiger: None,
                    sources: vec![source(addr)],
                },
                self.now,
            )
            .expect("added");
        assert!(new && id == 1);
        let addr: SocketAddr = addr.parse().expect("addr");
        assert!(self.take().contains(&TransferAction::Connect(addr)));
        assert!(self.t.on_connected(conn, addr, self.now));
        let request = String::from_utf8(self.t.output(conn).to_vec()).expect("text");
        let n = request.len();
        self.t.consume_output(conn, n);
        request
    }

    fn state(&self) -> DownloadInfo {
        self.t.list(self.now).remove(0)
    }
}

#[test]
fn shareazas_captured_206_with_an_equals_sign_is_accepted_and_written() {
    let mut b = Bench::new();
    let request = b.connected("69.118.162.229:46906", 7);
    assert!(
        request.starts_with(&format!("GET /uri-res/N2R?{SHA1} HTTP/1.1\r\n")),
        "{request}"
    );
    assert!(request.contains("Range: bytes=0-1048575\r\n"), "{request}");
    let mut answer = captured_response(134);
    let body: Vec<u8> = (0..1_048_576u32).map(|i| i as u8).collect();
    answer.extend_from_slice(&body);
    b.t.on_bytes(7, &answer, b.now);
    let actions = b.take();
    let written: u64 = actions
        .iter()
        .map(|a| match a {
            TransferAction::Disk(DiskJob::Write { offset, data, .. }) => {
                assert!(*offset < 1_048_576);
                data.len() as u64
            }
            _ => 0,
        })
        .sum();
    assert_eq!(written, 1_048_576, "the whole body went to the disk");
    let info = b.state();
    assert_eq!(info.done, 1_048_576);
    assert_eq!(info.sources[0].delivered, 1_048_576);
    // Keep-alive: the next range goes out on the same connection.
    let next = String::from_utf8(b.t.output(7).to_vec()).expect("text");
    assert!(next.contains("Range: bytes=1048576-2097151\r\n"), "{next}");
}

#[test]
fn an_answer_for_another_range_is_refused() {
    let mut b = Bench::new();
    b.connected("189.147.72.83:26108", 7);
    // Stream 135 answered gtk-gnutella's request for bytes 2709924-…
    b.t.on_bytes(7, &captured_response(135), b.now);
    let actions = b.take();
    assert!(actions.contains(&TransferAction::Close(7)));
    let info = b.state();
    assert_eq!(info.done, 0);
    assert_eq!(
        info.sources[0].last_error.as_deref(),
        Some("it sent another range than asked")
    );
}

#[test]
fn captured_busy_answers_make_the_source_wait_not_drop() {
    for first_line in [
        "HTTP 503 Server Busy",
        "HTTP/1.0 503 Total Maximum Uploads Reached",
    ] {
        let mut b = Bench::new();
        b.connected("65.34.1.56:6346", 3);
        b.t.on_bytes(3, &ppa1e_response(first_line), b.now);
        assert!(b.take().contains(&TransferAction::Close(3)));
        let info = b.state();
        assert_eq!(info.sources[0].state, "waiting", "{first_line}: {info:?}");
        assert!(info.sources[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .starts_with("busy"));
        // It is asked again once the wait is over (a minute without a
        // Retry-After), not before.
        b.now += Duration::from_secs(30);
        b.t.tick(b.now);
        assert!(!b
            .take()
            .iter()
            .any(|a| matches!(a, TransferAction::Connect(_))));
        b.now += Duration::from_secs(31);
        b.t.tick(b.now);
        assert!(b
            .take()
            .iter()
            .any(|a| matches!(a, TransferAction::Connect(_))));
    }
}

#[test]
fn an_answer_naming_another_urn_drops_the_source() {
    let mut b = Bench::new();
    b.connected("10.0.0.1:6346", 4);
    let other = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nX-Content-URN: {other}\r\nContent-Range: bytes 0-1048575/{SIZE}\r\nContent-Length: 1048576\r\n\r\n"
    );
    b.t.on_bytes(4, head.as_bytes(), b.now);
    let info = b.state();
    assert_eq!(info.sources_known, 0, "{info:?}");
    assert_eq!(info.sources[0].state, "dropped");
}

#[test]
fn hostile_answers_never_panic_and_never_write_out_of_the_file() {
    let heads = [
        "HTTP/1.1 206 OK\r\nContent-Range: bytes 0-99/5\r\nContent-Length: 100\r\n\r\n",
        "HTTP/1.1 206 OK\r\nContent-Range: bytes 0-99\r\nContent-Length: 100\r\n\r\n",
        "HTTP/1.1 206 OK\r\nContent-Range: bytes 0-18446744073709551615/18446744073709551615\r\nContent-Length: 18446744073709551615\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        "HTTP/1.1 206 OK\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 999 What\r\n\r\n",
        "garbage\r\n\r\n",
    ];
    for head in heads {
        let mut b = Bench::new();
        b.connected("10.0.0.1:6346", 4);
        let mut bytes = head.as_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(0xAB, 200_000));
        b.t.on_bytes(4, &bytes, b.now);
        for a in b.take() {
            if let TransferAction::Disk(DiskJob::Write { offset, data, .. }) = a {
                assert!(offset + data.len() as u64 <= SIZE, "{head}");
            }
        }
    }
}

#[test]
fn a_size_learned_from_the_first_answer_builds_the_chunk_map() {
    let mut b = Bench::new();
    let (_, _) =
        b.t.add(
            NewDownload {
                name: "unknown size".into(),
                size: None,
                sha1: sha1(),
                tiger: None,
                sources: vec![source("10.0.0.2:6346")],
            },
            b.now,
        )
        .expect("added");
    let addr: SocketAddr = "10.0.0.2:6346".parse().expect("addr");
    b.take();
    assert!(b.t.on_connected(9, addr, b.now));
    let request = String::from_utf8(b.t.output(9).to_vec()).expect("text");
    assert!(request.contains("Range: bytes=0-262143\r\n"), "{request}");
    let head = "HTTP/1.1 206 OK\r\nContent-Range: bytes 0-999/1000\r\nContent-Length: 1000\r\n\r\n";
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend(vec![7u8; 1000]);
    b.t.on_bytes(9, &bytes, b.now);
    let info = b.state();
    assert_eq!(info.size, Some(1000));
    assert_eq!(info.done, 1000);
    assert_eq!(info.state, "verifying", "every chunk is in");
}

#[test]
fn a_mesh_naming_us_adds_the_others_not_us_and_requests_say_where_we_listen() {
    let mut b = Bench::new();
    b.t = Transfers::new(TransfersConfig {
        own_addr: Some("10.1.1.1:6346".parse().expect("addr")),
        ..TransfersConfig::default()
    });
    let request = b.connected("10.2.2.2:6346", 7);
    assert!(
        request.contains("\r\nX-Node: 10.1.1.1:6346\r\n"),
        "{request}"
    );
    let body = vec![0u8; 1_048_576];
    let mut answer = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1048575/{SIZE}\r\n\
         Content-Length: 1048576\r\nX-Alt: 10.1.1.1, 10.3.3.3:7000\r\n\r\n"
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    b.t.on_bytes(7, &answer, b.now);
    let sources: Vec<String> = b
        .state()
        .sources
        .iter()
        .map(|s| s.addr.to_string())
        .collect();
    assert_eq!(sources, ["10.2.2.2:6346", "10.3.3.3:7000"]);
}

/// gtk-gnutella (seen in the interop run against 1.2.3) answers at most four
/// Pushes naming one address within 30 s, and every Push, refused or not,
/// starts those 30 s again (whole seconds; an entry goes once more than 30
/// have passed). A Push resent every 30 s to a peer whose count is full was
/// refused until the fetch gave up on it: 100 s without a byte.
#[test]
fn a_resent_push_outwaits_a_push_throttle_that_each_push_restarts() {
    struct Throttle {
        count: u32,
        last: Instant,
    }
    impl Throttle {
        /// Whether the peer answers a Push at `now` (and counts it).
        fn push(&mut self, now: Instant) -> bool {
            if now.saturating_duration_since(self.last).as_secs() > 30 {
                self.count = 0;
            }
            self.count += 1;
            self.last = now;
            self.count < 5
        }
    }
    let mut b = Bench::new();
    let start = b.now;
    b.t.add(
        NewDownload {
            name: "Hero.mp3".into(),
            size: Some(SIZE),
            sha1: sha1(),
            tiger: None,
            sources: vec![SourceSpec {
                servent_id: Some([7; 16]),
                file_index: Some(3),
                needs_push: true,
                ..source("10.2.2.2:6346")
            }],
        },
        b.now,
    )
    .expect("added");
    // Four Pushes (other downloads' and busy retries) just went to it.
    let mut peer = Throttle {
        count: 4,
        last: start,
    };
    let mut answered = None;
    for _ in 0..200 {
        let pushes = b
            .take()
            .iter()
            .filter(|a| matches!(a, TransferAction::Push { .. }))
            .count();
        if (0..pushes).any(|_| peer.push(b.now)) {
            answered = Some(b.now - start);
            break;
        }
        b.now += Duration::from_secs(1);
        b.t.tick(b.now);
    }
    let answered = answered.expect("a Push is answered");
    assert!(
        answered <= Duration::from_secs(45),
        "first answered Push after {answered:?}"
    );
}

#[test]
fn several_downloads_from_one_firewalled_servent_pace_their_pushes() {
    // gtk-gnutella's rule: at most four Pushes from one address within
    // 30 s; every refused one starts the 30 s again.
    struct Throttle {
        count: u32,
        last: Option<Instant>,
    }
    impl Throttle {
        fn push(&mut self, now: Instant) -> bool {
            if self
                .last
                .is_some_and(|last| now.saturating_duration_since(last).as_secs() > 30)
            {
                self.count = 0;
            }
            self.count += 1;
            self.last = Some(now);
            self.count < 5
        }
    }
    let mut b = Bench::new();
    let start = b.now;
    for i in 0..7u8 {
        b.t.add(
            NewDownload {
                name: format!("part {i}.bin"),
                size: Some(SIZE),
                sha1: [i + 1; 20],
                tiger: None,
                sources: vec![SourceSpec {
                    servent_id: Some([9; 16]),
                    file_index: Some(u32::from(i)),
                    needs_push: true,
                    ..source("10.3.3.3:6346")
                }],
            },
            b.now,
        )
        .expect("added");
    }
    let mut peer = Throttle {
        count: 0,
        last: None,
    };
    let mut answered = std::collections::BTreeSet::new();
    let mut first_burst = None;
    for _ in 0..200 {
        let pushes: Vec<u32> = b
            .take()
            .iter()
            .filter_map(|a| match a {
                TransferAction::Push { file_index, .. } => Some(*file_index),
                _ => None,
            })
            .collect();
        first_burst.get_or_insert(pushes.len());
        for file in pushes {
            if peer.push(b.now) {
                answered.insert(file);
            }
        }
        if answered.len() == 7 {
            break;
        }
        b.now += Duration::from_secs(1);
        b.t.tick(b.now);
    }
    assert_eq!(first_burst, Some(4), "four Pushes at once, the rest held");
    assert_eq!(answered.len(), 7, "answered: {answered:?}");
    assert!(
        b.now - start <= Duration::from_secs(40),
        "every download reached its source after {:?}",
        b.now - start
    );
}
