//! End-to-end: a servent faced with hostile or broken peers (raw test
//! sockets) drops them, and every other link keeps working.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{
    drops, new_id, num, query_hit_payload, query_payload, wait_until, RawPeer, Servent, WAIT,
};

#[test]
fn garbage_oversized_lengths_and_ttl0_are_dropped_and_other_links_keep_working() {
    let b = Servent::start("b", &["--peers", "0"], &[]);
    let a = Servent::start(
        "a",
        &["--peers", "0", "--connect", &b.addr.to_string()],
        &[],
    );
    a.wait_established(1);
    b.wait_established(1);

    // 1. Garbage instead of a handshake: closed without a byte.
    let mut garbage = TcpStream::connect(a.addr).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    garbage
        .write_all(b"\x16\x03\x01 hello, is this TLS?\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(garbage.read(&mut buf), Ok(0) | Err(_)),
        "garbage got an answer"
    );

    // 2. A handshaken peer that then sends garbage bytes where descriptors belong.
    let mut oversized = RawPeer::connect(a.addr);
    let mut wellbehaved = RawPeer::connect(a.addr);
    a.wait_established(3);
    let hdr_len = 70_000u32; // above the 64 KiB limit
    let mut bad = new_id(1).to_vec();
    bad.extend_from_slice(&[0x80, 5, 0]);
    bad.extend_from_slice(&hdr_len.to_le_bytes());
    oversized.stream.write_all(&bad).unwrap();
    assert!(
        oversized.closed_within(WAIT),
        "a descriptor declaring 70000 bytes did not get the link closed"
    );

    // 3. A TTL=0 Query is dropped and counted, not forwarded.
    let before_a = a.stats();
    let before_b = b.stats();
    wellbehaved.send(new_id(2), 0x80, 0, 2, &query_payload("ttl zero"));
    assert!(wait_until(WAIT, || {
        drops(&a.stats(), "ttl_zero") > drops(&before_a, "ttl_zero")
    }));
    // ...and a TTL=0, hops=0 one too.
    wellbehaved.send(new_id(3), 0x80, 0, 0, &query_payload("ttl zero hops zero"));
    assert!(wait_until(WAIT, || {
        drops(&a.stats(), "ttl_zero") >= drops(&before_a, "ttl_zero") + 2
    }));

    // Every other link keeps working: a normal Query from the same raw peer
    // crosses a to b, and a search from b reaches a.
    wellbehaved.send(new_id(4), 0x80, 3, 0, &query_payload("still alive"));
    assert!(
        wait_until(WAIT, || num(&b.stats(), "received.query")
            == num(&before_b, "received.query") + 1),
        "the a-b link stopped carrying queries\n{}",
        a.log()
    );
    let a_before = num(&a.stats(), "received.query");
    b.must("search from b");
    assert!(wait_until(WAIT, || num(&a.stats(), "received.query") > a_before));
    assert_eq!(a.established(), 2, "a keeps b and the well-behaved peer");
    assert!(!wellbehaved.closed_within(Duration::from_millis(300)));
}

#[test]
fn a_peer_that_sends_random_bytes_after_the_handshake_is_dropped() {
    let a = Servent::start("a", &["--peers", "0"], &[]);
    let mut noisy = RawPeer::connect(a.addr);
    let mut calm = RawPeer::connect(a.addr);
    a.wait_established(2);
    // Bytes that make a header with a huge length sooner or later.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80)
        .collect();
    let _ = noisy.stream.write_all(&noise);
    assert!(noisy.closed_within(WAIT), "the noisy peer was not dropped");
    assert!(wait_until(WAIT, || a.established() == 1));
    let before = num(&a.stats(), "received.query");
    calm.send(new_id(9), 0x80, 2, 0, &query_payload("calm"));
    assert!(wait_until(WAIT, || num(&a.stats(), "received.query") == before + 1));
}

/// A file name (and later a Bye reason) written to take over a terminal:
/// retitle it, clear it, forge a prompt line, a one-byte CSI, a
/// right-to-left override.
const EVIL: &[u8] = b"\x1b]2;owned\x07\x1b[2Jsong\nhazel> quit\r\xc2\x9b31m\xe2\x80\xaegpj.exe";

/// Bytes that must never reach a terminal from a peer.
fn raw_controls(text: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for (what, needle) in [
        ("ESC", &b"\x1b"[..]),
        ("BEL", b"\x07"),
        ("CR", b"\r"),
        ("C1 CSI", b"\xc2\x9b"),
        ("RLO", b"\xe2\x80\xae"),
    ] {
        if text.windows(needle.len()).any(|w| w == needle) {
            found.push(what.to_string());
        }
    }
    if String::from_utf8_lossy(text)
        .lines()
        .any(|l| l.starts_with("hazel> quit"))
    {
        found.push("a forged prompt line".into());
    }
    found
}

fn bye_payload(code: u16, text: &[u8]) -> Vec<u8> {
    let mut p = code.to_le_bytes().to_vec();
    p.extend_from_slice(text);
    p.push(0);
    p
}

/// The raw peer answers the servent's next Query with a hit named `EVIL`.
fn answer_with_evil_hit(peer: &mut RawPeer) {
    let (qid, _, hops, _) = peer
        .read_until_type(0x80, WAIT)
        .expect("the servent's query");
    peer.send(
        qid,
        0x81,
        hops + 1,
        0,
        &query_hit_payload(1, 100, EVIL, 6346, [0x42; 16]),
    );
}

fn ctl(servent: &Servent, args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_hazel"))
        .arg("ctl")
        .arg("--data-dir")
        .arg(&servent.data_dir)
        .args(args)
        .output()
        .expect("hazel ctl");
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

#[test]
fn names_and_reasons_from_peers_reach_the_terminal_and_log_escaped_and_json_exact() {
    let a = Servent::start("a", &["--peers", "0"], &[]);
    let mut peer = RawPeer::connect(a.addr);
    a.wait_established(1);
    a.must("search evil");
    answer_with_evil_hit(&mut peer);
    assert!(wait_until(WAIT, || a
        .must("results")
        .as_array()
        .is_some_and(|r| r.len() == 1)));

    let text = ctl(&a, &["results"]);
    assert_eq!(raw_controls(&text), Vec::<String>::new(), "{text:?}");
    let text = String::from_utf8(text).expect("text");
    assert_eq!(text.lines().count(), 2, "a header and one row: {text}");
    assert!(
        text.contains("\\e]2;owned\\x07\\e[2Jsong\\nhazel> quit\\r"),
        "{text}"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&ctl(&a, &["--json", "results"])).expect("json");
    assert_eq!(
        json["reply"]["data"][0]["name"],
        String::from_utf8_lossy(EVIL).as_ref(),
        "JSON carries the exact name"
    );

    peer.send(new_id(77), 0x02, 1, 0, &bye_payload(200, EVIL));
    assert!(wait_until(WAIT, || a.established() == 0));
    let log = std::fs::read(a.data_dir.with_extension("log")).expect("log");
    assert!(
        String::from_utf8_lossy(&log).contains("peer sent Bye 200"),
        "the Bye is logged"
    );
    assert_eq!(
        raw_controls(&log),
        Vec::<String>::new(),
        "log:\n{}",
        a.log()
    );
}

#[test]
fn the_interactive_terminal_prints_hostile_names_escaped() {
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let out_path = temp.path().join("stdout");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hazel"))
        .args(["--listen", "127.0.0.1:0", "--peers", "0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("hazel");
    let mut addr = None;
    assert!(wait_until(WAIT, || {
        addr = std::fs::read_to_string(data.join("port"))
            .ok()
            .and_then(|t| t.trim().parse::<std::net::SocketAddr>().ok());
        addr.is_some()
    }));
    let mut peer = RawPeer::connect(addr.expect("port"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"search evil\n").expect("type");
    answer_with_evil_hit(&mut peer);
    std::thread::sleep(Duration::from_millis(300));
    peer.send(new_id(78), 0x02, 1, 0, &bye_payload(200, EVIL));
    stdin.write_all(b"results\nquit\n").expect("type");
    let mut exited = false;
    assert!(wait_until(WAIT, || {
        exited = child.try_wait().ok().flatten().is_some();
        exited
    }));
    let shown = std::fs::read(&out_path).expect("stdout");
    let text = String::from_utf8_lossy(&shown);
    assert!(text.contains("\\e]2;owned"), "the hit was shown:\n{text}");
    assert!(
        text.contains("peer sent Bye 200"),
        "the Bye was shown:\n{text}"
    );
    assert_eq!(raw_controls(&shown), Vec::<String>::new(), "{text}");
}

/// Sends one HTTP request on a new connection; the status line and the body
/// bytes read before the servent closed or 5 s passed.
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    conn.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .expect("request");
    let mut all = Vec::new();
    let _ = conn.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    (status, all)
}

fn shared_names(servent: &Servent) -> Vec<String> {
    servent.must("shares")["list"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|f| f["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn links_out_of_a_shared_folder_are_neither_listed_nor_served() {
    let outside = tempfile::tempdir().expect("temp");
    let secret_content = b"root:x:0:0:SECRET-OUTSIDE-THE-SHARE:/root:/bin/sh\n";
    let secret = outside.path().join("passwd");
    std::fs::write(&secret, secret_content).expect("secret");
    std::fs::create_dir(outside.path().join("private")).expect("dir");
    std::fs::write(outside.path().join("private/diary.txt"), b"SECRET DIARY").expect("diary");

    let a = Servent::start("a", &["--peers", "0"], &[("song.mp3", b"SONG BYTES")]);
    std::os::unix::fs::symlink(&secret, a.share_dir.join("passwd.mp3")).expect("link");
    std::os::unix::fs::symlink(outside.path().join("private"), a.share_dir.join("more"))
        .expect("dir link");
    std::os::unix::fs::symlink(a.share_dir.join("song.mp3"), a.share_dir.join("alias.mp3"))
        .expect("inside link");
    a.must("rescan");
    assert!(wait_until(WAIT, || num(&a.must("shares"), "scan.scans")
        >= 2
        && !shared_names(&a).is_empty()));
    let names = shared_names(&a);
    assert_eq!(
        names.len(),
        1,
        "one of song.mp3/alias.mp3, nothing else: {names:?}"
    );
    for index in 0..20 {
        for name in ["passwd.mp3", "passwd", "diary.txt"] {
            let (status, body) = http_get(a.addr, &format!("/get/{index}/{name}"));
            let body = String::from_utf8_lossy(&body);
            assert!(!body.contains("SECRET"), "{status}: {body}");
        }
    }
}

#[test]
fn a_shared_file_swapped_for_a_link_out_after_the_scan_is_not_served() {
    let outside = tempfile::tempdir().expect("temp");
    let a = Servent::start(
        "a",
        &["--peers", "0"],
        &[("notes.txt", b"PUBLIC NOTES 0123")],
    );
    let mut index = None;
    assert!(wait_until(WAIT, || {
        index = a.must("shares")["list"].as_array().and_then(|l| {
            l.iter()
                .find(|f| f["name"] == "notes.txt" && f["sha1"].is_string())
                .map(|f| num(f, "index"))
        });
        index.is_some()
    }));
    let index = index.expect("listed");
    let (status, body) = http_get(a.addr, &format!("/get/{index}/notes.txt"));
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.ends_with(b"PUBLIC NOTES 0123"));
    // Same size and mtime as the listed file, so only the folder check can catch it.
    let shared = a.share_dir.join("notes.txt");
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, b"SECRET NOTES 4567").expect("secret");
    let mtime = std::fs::metadata(&shared)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::File::options()
        .write(true)
        .open(&secret)
        .and_then(|f| f.set_modified(mtime))
        .expect("set mtime");
    std::fs::remove_file(&shared).expect("remove");
    std::os::unix::fs::symlink(&secret, &shared).expect("link");
    let (status, body) = http_get(a.addr, &format!("/get/{index}/notes.txt"));
    assert!(
        !String::from_utf8_lossy(&body).contains("SECRET"),
        "served a file outside the share: {status}"
    );
}

/// Reads a response head (up to the blank line) from `conn`.
fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn a_request_head_dribbled_byte_by_byte_is_cut_at_the_head_deadline() {
    let a = Servent::start("a", &["--peers", "0", "--head-timeout", "2"], &[]);
    let mut slow = TcpStream::connect(a.addr).expect("connect");
    slow.write_all(b"GET /get/1/").expect("start");
    let started = std::time::Instant::now();
    let mut cut = false;
    // Keep dribbling (never idle for long): only a total deadline ends it.
    while started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        if slow.write_all(b"a").is_err() {
            cut = true;
            break;
        }
        slow.set_read_timeout(Some(Duration::from_millis(1)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        if matches!(slow.read(&mut buf), Ok(0)) {
            cut = true;
            break;
        }
    }
    assert!(cut, "a dribbled head held the socket for 15 s");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut after {:?}",
        started.elapsed()
    );
}

#[test]
fn clients_that_never_read_lose_their_slots_and_one_address_cannot_take_them_all() {
    // Larger than what the socket buffers of a stuck reader absorb.
    let big: Vec<u8> = (0..48 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let a = Servent::start(
        "a",
        &[
            "--peers",
            "0",
            "--upload-slots",
            "2",
            "--upload-slots-per-ip",
            "1",
            "--upload-stall-timeout",
            "3",
        ],
        &[("big.bin", &big)],
    );
    drop(big);
    let mut index = None;
    assert!(wait_until(WAIT, || {
        index = a.must("shares")["list"]
            .as_array()
            .and_then(|l| l.first().map(|f| num(f, "index")));
        index.is_some()
    }));
    let request = format!(
        "GET /get/{}/big.bin HTTP/1.1\r\n\r\n",
        index.expect("index")
    );
    // Two downloaders that read the head and then nothing more.
    let mut stuck = Vec::new();
    for from in [[127, 0, 0, 2], [127, 0, 0, 3]] {
        let mut conn = support::connect_from(from, a.addr);
        conn.write_all(request.as_bytes()).expect("request");
        let head = read_head(&mut conn);
        assert!(head.contains(" 200 "), "{head}");
        stuck.push(conn);
    }
    // A second request from an address that already holds its slot.
    let mut greedy = support::connect_from([127, 0, 0, 2], a.addr);
    greedy.write_all(request.as_bytes()).expect("request");
    let head = read_head(&mut greedy);
    assert!(head.contains(" 503 "), "one slot per address: {head}");
    // Every slot is held: an honest client is told to come back.
    let mut honest = support::connect_from([127, 0, 0, 4], a.addr);
    honest.write_all(request.as_bytes()).expect("request");
    let head = read_head(&mut honest);
    assert!(
        head.contains(" 503 ") && head.contains("Retry-After"),
        "{head}"
    );
    // Once the stuck ones have read nothing for the stall timeout, their
    // slots are free again.
    let started = std::time::Instant::now();
    let mut served = false;
    while started.elapsed() < WAIT && !served {
        std::thread::sleep(Duration::from_millis(500));
        let mut honest = support::connect_from([127, 0, 0, 4], a.addr);
        honest
            .write_all(
                format!(
                    "GET /get/{}/big.bin HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n",
                    index.expect("index")
                )
                .as_bytes(),
            )
            .expect("request");
        served = read_head(&mut honest).contains(" 206 ");
    }
    assert!(served, "the stalled uploads never gave their slots back");
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(stuck);
}

#[test]
fn with_every_descriptor_in_use_newcomers_get_a_503_and_service_resumes() {
    // 128 descriptors: the servent budgets about 70 sockets from them.
    let a = Servent::start_limited(
        "a",
        &["--peers", "0", "--head-timeout", "60"],
        &[("small.txt", b"SMALL FILE")],
        128,
    );
    let mut index = None;
    assert!(wait_until(WAIT, || {
        index = a.must("shares")["list"]
            .as_array()
            .and_then(|l| l.first().map(|f| num(f, "index")));
        index.is_some()
    }));
    let index = index.expect("index");
    // 300 clients that send the start of a request head and then dribble:
    // they are past sniffing, so nothing marks them as the least useful.
    let mut hogs = Vec::new();
    for _ in 0..300 {
        if let Ok(mut c) = TcpStream::connect(a.addr) {
            let _ = c.write_all(b"GET /get/1/x");
            hogs.push(c);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    // Newcomers are answered at once with a refusal, not left hanging.
    let started = std::time::Instant::now();
    let (status, _) = http_get(a.addr, &format!("/get/{index}/small.txt"));
    assert!(status.contains(" 503 "), "HTTP newcomer got: {status:?}");
    let mut overlay = TcpStream::connect(a.addr).expect("connect");
    overlay
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    overlay
        .write_all(b"GNUTELLA CONNECT/0.6\r\nUser-Agent: t\r\nX-Ultrapeer: False\r\n\r\n")
        .expect("hello");
    let head = read_head(&mut overlay);
    assert!(
        head.starts_with("GNUTELLA/0.6 503"),
        "overlay newcomer got: {head:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The control socket still answers.
    assert!(a.ask("stats").is_ok());
    // The hogs leave: service is back at once, not after a minute of EMFILE.
    drop(hogs);
    let mut back = false;
    assert!(wait_until(Duration::from_secs(10), || {
        back = http_get(a.addr, &format!("/get/{index}/small.txt"))
            .0
            .contains(" 200 ");
        back
    }));
    let log = std::fs::read_to_string(a.data_dir.with_extension("log")).expect("the log");
    let accept_errors = log.matches("accept: ").count();
    assert!(
        accept_errors <= 1,
        "accept failed {accept_errors} times:\n{}",
        a.log()
    );
}

#[test]
fn silent_connections_make_room_for_newcomers_when_descriptors_run_out() {
    let a = Servent::start_limited("a", &["--peers", "0"], &[("small.txt", b"SMALL")], 128);
    let mut index = None;
    assert!(wait_until(WAIT, || {
        index = a.must("shares")["list"]
            .as_array()
            .and_then(|l| l.first().map(|f| num(f, "index")));
        index.is_some()
    }));
    // 300 connections that never say a word (the sniff timeout is 10 s).
    let silent: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(a.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // The least useful of them (silent longest) give way: a newcomer is served.
    let (status, body) = http_get(a.addr, &format!("/get/{}/small.txt", index.expect("index")));
    assert!(status.contains(" 200 "), "{status:?}");
    assert!(body.ends_with(b"SMALL"));
    drop(silent);
}
