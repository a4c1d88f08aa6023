//! Hostile and unusual input, end to end: the real server on loopback, fed
//! what broke it before (a guest kicked by a registration, metric series
//! grown without bound, a real client's login refused, pings and browse
//! requests left unanswered, control bytes written raw into the log) and
//! malformed frames. Each test keeps one of those fixed.

mod support;

use std::io::Write;
use std::sync::{Mutex, Once};

use hazel_protocol::text::is_unsafe;
use support::{frame, TestServer};

/// Every log line the server writes in this test process.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureLog;

impl log::Log for CaptureLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        if let Ok(mut lines) = LOG.lock() {
            lines.push(line);
        }
    }

    fn flush(&self) {}
}

static CAPTURE: CaptureLog = CaptureLog;

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn log_lines() -> Vec<String> {
    LOG.lock().expect("the log capture lock").clone()
}

/// Log lines holding `needle`, failing if a line holds a character a
/// terminal would act on.
fn logged(needle: &str) -> Vec<String> {
    let lines = log_lines();
    for line in &lines {
        assert!(
            !line.chars().any(is_unsafe),
            "a raw control character reached the log: {line:?}"
        );
    }
    lines.into_iter().filter(|l| l.contains(needle)).collect()
}

const TEKNAP_LOGIN: &[u8] = b"tekuser secret 6699 \"TekNap-1.3g\" 0 5201 0";

#[test]
fn registering_the_nick_of_an_online_guest_is_refused_and_the_guest_stays() {
    let server = TestServer::start();
    let mut guest = server.sharer("alice", 6699, &[("music\\guest song.mp3", 1234)]);

    let mut thief = server.connect();
    thief.send(7, "alice");
    assert_eq!(thief.recv().kind, 9, "the nick is in use");
    thief.send(6, "alice stolen 0 \"nap v0.8\" 3 thief@example.org");
    let refusal = thief.recv();
    assert_eq!(
        (refusal.kind, refusal.text().as_str()),
        (0, "alice is already active")
    );
    assert!(thief.closed_by_server());

    // The guest kept its connection and its files.
    guest.sync();
    let mut searcher = server.login("searcher", 0);
    let hits = searcher.search("FILENAME CONTAINS \"guest\" MAX_RESULTS 10");
    assert_eq!(hits.len(), 1, "the guest's file is still indexed");
    assert!(hits[0].contains(" alice "), "{}", hits[0]);
    // Nothing was registered: once the guest leaves, the nick is free.
    drop(guest);
    server.wait_users(1);
    let mut later = server.connect();
    later.send(7, "alice");
    assert_eq!(later.recv().kind, 8);
}

#[test]
fn five_thousand_unknown_types_add_one_metric_series() {
    let server = TestServer::start_with(|c| c.max_messages_per_second = 0);
    let before_text = server.metrics();
    let before = series(&before_text);
    let mut c = server.login("prober", 0);
    let mut burst = Vec::new();
    for kind in 20_000u16..25_000 {
        burst.extend_from_slice(&frame(kind, b"x"));
    }
    c.stream.write_all(&burst).expect("send the burst");
    for kind in 20_000u16..25_000 {
        let reply = c.recv();
        assert_eq!(
            (reply.kind, reply.text()),
            (404, format!("Unknown command code {kind}"))
        );
    }
    c.sync();
    let text = server.metrics();
    let after = series(&text);
    assert!(
        after.len() <= before.len() + 8,
        "{} series before, {} after:\n{text}",
        before.len(),
        after.len()
    );
    assert_eq!(
        server.metric("hazel_index_messages_total{type=\"unknown\"}"),
        5000.0
    );
    assert_eq!(server.metric("hazel_index_unknown_messages_total"), 5000.0);
}

/// The metric lines (one per series) of a metrics answer; fails if the
/// answer has no body or the body no series (a count of nothing proves
/// nothing).
fn series(text: &str) -> Vec<&str> {
    let (_, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of the HTTP head in {text:?}"));
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!lines.is_empty(), "no series in {text:?}");
    lines
}

#[test]
fn teknap_logs_in_with_its_exact_bytes() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send_bytes(2, TEKNAP_LOGIN);
    let ack = c.recv();
    assert_eq!(ack.kind, 3, "refused: {}", ack.text());
    c.recv_kind(214);
    // TekNap's registration: 7, then 6 with the same shape.
    let mut r = server.connect();
    r.send(7, "teknew");
    assert_eq!(r.recv().kind, 8);
    r.send(6, "teknew pw 6699 \"TekNap-1.3g\" 0 tek@example.org");
    assert_eq!(r.recv().kind, 3);
    // And its pong carries arguments after the nick.
    r.sync();
    c.send(751, "teknew");
    assert_eq!(r.recv_kind(751).text(), "tekuser");
    r.send(752, "tekuser 1796596048 626009");
    assert_eq!(c.recv_kind(752).text(), "teknew");
}

#[test]
fn server_ping_is_echoed_byte_for_byte() {
    let server = TestServer::start();
    let mut c = server.login("pinger", 0);
    for args in [
        b"127.0.0.1 1796596048 626009".as_slice(),
        b"pinger",
        b"",
        b"hazel-index LAG 1 2",
        b"  two  spaces  ",
        b"\xe9t\xe9 \x01",
    ] {
        c.send_bytes(750, args);
        let pong = c.recv();
        assert_eq!((pong.kind, pong.payload.as_slice()), (750, args));
    }
}

#[test]
fn direct_browse_is_relayed_and_refused_at_once_when_it_cannot_work() {
    let server = TestServer::start();
    let mut sharer = server.sharer("sharer", 6699, &[("music\\browse me.mp3", 1)]);
    let mut browser = server.login("browser", 6700);
    let mut empty = server.login("empty", 6701);
    empty.sync();
    let mut walled = server.sharer("walled", 0, &[("music\\walled.mp3", 1)]);
    let mut walled_too = server.login("walledtoo", 0);

    // The sharer is asked, accepts, and the browser learns where to connect.
    browser.send(640, "sharer");
    assert_eq!(sharer.recv_kind(640).text(), "browser");
    sharer.send(641, "browser");
    assert_eq!(
        browser.recv_kind(641).text(),
        format!("sharer {} 6699", support::wire_ip([127, 0, 0, 1].into()))
    );
    // A firewalled browsee is given the browser's address to push to.
    browser.send(640, "walled");
    assert_eq!(
        walled.recv_kind(640).text(),
        format!("browser {} 6700", support::wire_ip([127, 0, 0, 1].into()))
    );
    // What cannot work is refused at once, so the client falls back to 211.
    browser.send(640, "empty");
    assert_eq!(
        browser.recv_kind(642).text(),
        "empty \"empty is not sharing any files.\""
    );
    walled_too.send(640, "walled");
    let refusal = walled_too.recv_kind(642);
    assert!(refusal.text().starts_with("walled \"Both you and walled"));
    browser.send(640, "nobody");
    assert_eq!(
        browser.recv_kind(642).text(),
        "nobody \"nobody is not online.\""
    );
    // An accept nobody asked for goes nowhere.
    empty.send(641, "browser");
    empty.sync();
    browser.send(750, "");
    assert_eq!(browser.recv().kind, 750, "no 641 came first");
}

#[test]
fn an_unanswered_direct_browse_is_refused_after_the_timeout() {
    let server =
        TestServer::start_with(|c| c.direct_browse_timeout = std::time::Duration::from_millis(300));
    let mut silent = server.sharer("silent", 6699, &[("music\\never browsed.mp3", 1)]);
    let mut browser = server.login("browser", 6700);
    browser.send(640, "silent");
    assert_eq!(silent.recv_kind(640).text(), "browser");
    let refusal = browser.recv_kind(642);
    assert_eq!(
        refusal.text(),
        "silent \"silent did not answer the browse request.\""
    );
    // Too late: the accept is dropped, the browser already fell back.
    silent.send(641, "browser");
    silent.sync();
    browser.send(211, "silent");
    let list = browser.recv_until(213);
    assert_eq!(list.len(), 2);
}

#[test]
fn server_info_requests_are_answered() {
    let server = TestServer::start_with(|c| c.admins = vec!["root".to_string()]);
    let mut user = server.sharer("plain", 0, &[("music\\one.mp3", 2_000_000)]);

    // 10115: the 16 fields TekNap's /admin stats reads.
    user.send(10115, "");
    let usage = user.recv();
    assert_eq!(usage.kind, 10115);
    let text = usage.text();
    let fields: Vec<&str> = text.split(' ').collect();
    assert_eq!(fields.len(), 16, "{fields:?}");
    assert!(
        fields.iter().all(|f| f.parse::<u64>().is_ok()),
        "{fields:?}"
    );
    assert_eq!(
        (fields[0], fields[1], fields[2], fields[3]),
        ("1", "0", "1", "1")
    );
    assert_eq!(fields[4], "2000000", "bytes shared");

    // 801: the version, for moderators and up as with opennap-ng.
    user.send(801, "");
    assert_eq!(user.recv().text(), "permission denied");
    let mut admin = server.register("root", "rootpw");
    admin.send(801, "");
    let lines: Vec<String> = (0..3).map(|_| admin.recv()).map(|m| m.text()).collect();
    assert_eq!(
        lines,
        [
            "--",
            &format!("hazel-index {}", env!("CARGO_PKG_VERSION")),
            "--"
        ]
    );

    // 10112: no linked servers, an empty list.
    user.send(10112, "");
    let links = user.recv();
    assert_eq!((links.kind, links.text().as_str()), (10112, ""));
    // 10118: client versions, for moderators.
    admin.send(10118, "");
    let mut versions = Vec::new();
    loop {
        let m = admin.recv_kind(10118);
        if m.payload.is_empty() {
            break;
        }
        versions.push(m.text());
        assert!(versions.len() < 10, "no end of the list: {versions:?}");
    }
    versions.sort();
    assert_eq!(versions, ["\"hazel-test 1.0\" 1", "\"nap\" 1"]);
    // 4: the version check the Windows client waits for.
    user.send(4, "2.0");
    let check = user.recv();
    assert_eq!((check.kind, check.text().as_str()), (4, ""));

    // Anything else: 404 naming the code, and the connection stays.
    user.send(12345, "anything");
    let unknown = user.recv();
    assert_eq!(
        (unknown.kind, unknown.text().as_str()),
        (404, "Unknown command code 12345")
    );
    user.send(214, "");
    assert_eq!(user.recv().kind, 214);
}

#[test]
fn control_bytes_from_the_network_never_reach_the_log_raw() {
    capture_logs();
    let server = TestServer::start_with(|c| c.admins = vec!["root".to_string()]);
    // A refused login names its reason and the nick, escaped.
    let mut evil = server.connect();
    evil.send(2, "\u{1b}[2Jevil\u{7} pw 0 \"x\u{9b}31m\" 3");
    assert_eq!(evil.recv().kind, 0);
    assert!(evil.closed_by_server());
    let refused = logged("Invalid nickname");
    assert!(
        refused.iter().any(|l| l.contains("\\e[2Jevil\\x07")),
        "the refusal is logged with the nick escaped: {refused:?}"
    );
    // A kill reason with a forged log line in it.
    let mut admin = server.register("root", "rootpw");
    let _victim = server.login("victim", 0);
    admin.send(
        610,
        "victim \"bye\nINFO root is now Elite\u{202e}\u{1b}]2;pwned\u{7}\"",
    );
    admin.recv_kind(404);
    let kills = logged("killed victim");
    assert!(
        kills
            .iter()
            .any(|l| l.contains("bye\\nINFO root is now Elite\\u{202e}\\e]2;pwned\\x07")),
        "{kills:?}"
    );
    // Targets that are not even valid nicks.
    admin.send(612, "\u{1b}[31mred\r \"r\u{85}\"");
    admin.recv_kind(404);
    assert!(!logged("\\e[31mred\\r").is_empty(), "{:?}", log_lines());
    // A nick that is not UTF-8 is refused and logged without its bytes.
    let mut bytes = server.connect();
    bytes.send_bytes(2, b"\xff\x1b[2J pw 0 \"x\" 3");
    assert_eq!(bytes.recv().kind, 0);
    assert!(bytes.closed_by_server());
    assert!(!logged("Invalid login message").is_empty());
}

#[test]
fn malformed_frames_never_stop_the_server() {
    let server = TestServer::start_with(|c| {
        c.max_command_length = 1024;
        c.clones_per_ip = 0;
    });
    let mut witness = server.sharer("witness", 0, &[("music\\still here.mp3", 1)]);

    // Garbage in every known field position, logged in and not.
    let kinds = [
        2u16, 4, 6, 7, 100, 102, 110, 200, 203, 211, 214, 218, 500, 603, 606, 608, 610, 611, 612,
        614, 615, 619, 621, 640, 641, 750, 751, 752, 753, 801, 870, 10112, 10115, 10118,
    ];
    let payloads: [&[u8]; 6] = [
        b"",
        b"\"",
        b"\" \" \" \"",
        b"\xff\xfe\x00\x01 \x1b[2J",
        b"nick \"unterminated",
        b"99999999999999999999999 -1 \"\" \"\" 0",
    ];
    let mut online = server.login("fuzzer", 0);
    for kind in kinds {
        for payload in payloads {
            // The server may refuse and close at once: ignore write errors.
            let mut fresh = server.connect();
            let _ = fresh.stream.write_all(&frame(kind, payload));
            let _ = fresh.stream.write_all(&frame(214, b""));
            online.send_bytes(kind, payload);
        }
    }
    online.sync();

    // A header that claims more than the limit: only that client goes.
    let mut big = server.connect();
    big.stream.write_all(&[0xff, 0xff, 0xc8, 0x00]).unwrap();
    assert!(big.closed_by_server());
    // A frame cut off mid-payload by a client that leaves.
    let mut cut = server.connect();
    cut.stream.write_all(&[50, 0, 2, 0, b'a']).unwrap();
    drop(cut);

    assert_eq!(
        witness
            .search("FILENAME CONTAINS \"still\" MAX_RESULTS 5")
            .len(),
        0,
        "own files are never returned"
    );
    let mut searcher = server.login("searcher", 0);
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"still\" MAX_RESULTS 5")
            .len(),
        1
    );
    witness.sync();
}
