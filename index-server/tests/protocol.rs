//! Protocol tests: the real server on loopback, driven by test clients, one
//! test per behaviour a Napster client would see.

mod support;

use std::net::Ipv4Addr;

use std::io::Write;

use hazel_index::metrics::DropReason;
use support::{wire_ip, TestServer};

const LOCALHOST_WIRE: u32 = 16_777_343;

#[test]
fn guest_login_gets_ack_motd_and_stats() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(2, "guest1 anything 6699 \"nap v0.8\" 3");
    let ack = c.recv();
    assert_eq!((ack.kind, ack.text().as_str()), (3, "anon@hazel-index"));
    let motd = c.recv();
    assert_eq!(
        (motd.kind, motd.text().as_str()),
        (621, "hello from the test server")
    );
    let stats = c.recv();
    assert_eq!((stats.kind, stats.text().as_str()), (214, "1 0 0"));
    // A guest is not stored: its nick is still free to register.
    let mut other = server.connect();
    other.send(7, "guest1");
    assert_eq!(other.recv().kind, 9, "online nick is taken");
    drop(c);
    server.wait_users(0);
    other.send(7, "guest1");
    assert_eq!(other.recv().kind, 8, "guest nick not registered");
}

#[test]
fn new_user_registers_and_then_needs_its_password() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(7, "alice");
    assert_eq!(c.recv().kind, 8);
    c.send(6, "alice s3cret 6699 \"nap v0.8\" 3 alice@example.org");
    let ack = c.recv();
    assert_eq!((ack.kind, ack.text().as_str()), (3, "alice@example.org"));
    drop(c);
    server.wait_users(0);

    let mut checker = server.connect();
    checker.send(7, "ALICE");
    assert_eq!(checker.recv().kind, 9, "registered, case-insensitively");

    let mut wrong = server.connect();
    wrong.send(2, "alice guess 6699 \"nap v0.8\" 3");
    let refusal = wrong.recv();
    assert_eq!(
        (refusal.kind, refusal.text().as_str()),
        (0, "Invalid password")
    );
    assert!(wrong.closed_by_server());

    let mut right = server.connect();
    right.send(2, "alice s3cret 6699 \"nap v0.8\" 3");
    let ack = right.recv();
    assert_eq!((ack.kind, ack.text().as_str()), (3, "alice@example.org"));

    // Registering a taken nick is refused.
    let mut dup = server.connect();
    dup.send(6, "Alice other 6699 \"nap v0.8\" 3 x@y");
    let refusal = dup.recv();
    assert_eq!(refusal.kind, 0);
    assert!(refusal.text().contains("already registered"));
}

#[test]
fn registration_closed_refuses_new_users_but_admits_guests() {
    let server =
        TestServer::start_with(|c| c.registration = hazel_index::config::Registration::Closed);
    let mut c = server.connect();
    c.send(6, "bob pw 0 \"nap\" 3 b@b");
    let refusal = c.recv();
    assert_eq!(
        (refusal.kind, refusal.text().as_str()),
        (0, "Registration is closed")
    );
    assert!(c.closed_by_server());
    let _guest = server.login("bob", 0);
}

#[test]
fn invalid_and_duplicate_nicks_are_refused() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(7, "bad\"nick");
    assert_eq!(c.recv().kind, 10);
    c.send(7, "waytoolongnickname12345");
    assert_eq!(c.recv().kind, 10);
    c.send(2, "bad/nick pw 0 \"nap\" 3");
    assert_eq!(c.recv().kind, 0);
    assert!(c.closed_by_server());

    let _first = server.login("carol", 0);
    let mut second = server.connect();
    second.send(2, "carol pw 0 \"nap\" 3");
    let refusal = second.recv();
    assert_eq!(refusal.kind, 0);
    assert!(
        refusal.text().contains("already active"),
        "{}",
        refusal.text()
    );
}

#[test]
fn commands_before_login_get_error_zero() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(200, "FILENAME CONTAINS \"x\" MAX_RESULTS 10");
    let e = c.recv();
    assert_eq!((e.kind, e.text().as_str()), (0, "You must log in first"));
    c.login("late", 0);
}

#[test]
fn share_search_and_result_format() {
    let server = TestServer::start();
    let mut sharer = server.sharer(
        "sharer",
        6699,
        &[
            ("C:\\Music\\Daft Punk\\One More Time.mp3", 4_000_000),
            ("C:\\Music\\Daft Punk\\Aerodynamic.mp3", 3_000_000),
            ("C:\\Music\\Other\\Time After Time.mp3", 2_000_000),
        ],
    );

    let mut searcher = server.login("searcher", 6699);
    let results = searcher.search("FILENAME CONTAINS \"time\" MAX_RESULTS 100");
    assert_eq!(results.len(), 2);
    let one_more = results
        .iter()
        .find(|r| r.contains("One More Time"))
        .expect("One More Time found");
    assert_eq!(
        one_more,
        &format!(
            "\"C:\\Music\\Daft Punk\\One More Time.mp3\" 0123456789abcdef0123456789abcdef 4000000 128 44100 200 sharer {LOCALHOST_WIRE} 7"
        )
    );
    assert_eq!(wire_ip(Ipv4Addr::LOCALHOST), LOCALHOST_WIRE);

    // Terms are ANDed, whole words only, parent directory included.
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"daft time\" MAX_RESULTS 10")
            .len(),
        1
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"punk\" MAX_RESULTS 10")
            .len(),
        2
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"tim\" MAX_RESULTS 10")
            .len(),
        0
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"mp3\" MAX_RESULTS 10")
            .len(),
        0,
        "extension dropped"
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"music\" MAX_RESULTS 10")
            .len(),
        0,
        "grandparent not indexed"
    );
    // EXCLUDES, numeric filters, MAX_RESULTS.
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"time\" FILENAME EXCLUDES \"after\" MAX_RESULTS 10")
            .len(),
        1
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"time\" MAX_RESULTS 10 SIZE \"AT LEAST\" \"3000000\"")
            .len(),
        1
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"time\" MAX_RESULTS 10 BITRATE \"AT LEAST\" \"192\"")
            .len(),
        0
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"time\" MAX_RESULTS 10 LINESPEED \"EQUAL TO\" 7")
            .len(),
        2
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"time\" MAX_RESULTS 10 FREQ \"AT BEST\" \"22050\"")
            .len(),
        0
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"time\" MAX_RESULTS 1")
            .len(),
        1
    );
    // The searcher's own files are never returned.
    assert_eq!(
        sharer
            .search("FILENAME CONTAINS \"time\" MAX_RESULTS 10")
            .len(),
        0
    );
}

#[test]
fn results_are_capped_at_the_server_maximum() {
    let server = TestServer::start_with(|c| c.max_results = 5);
    let mut sharer = server.login("many", 0);
    for i in 0..20 {
        sharer.share(&format!("dir\\common song {i}.mp3"), 1000);
    }
    sharer.sync();
    let mut searcher = server.login("finder", 0);
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"common\" MAX_RESULTS 100")
            .len(),
        5
    );
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"common\" MAX_RESULTS 3")
            .len(),
        3
    );
}

#[test]
fn batched_share_unshare_and_unshare_all() {
    let server = TestServer::start();
    let mut sharer = server.login("batch", 0);
    sharer.send(
        870,
        "\"C:\\Albums\\Moby\" \"Porcelain.mp3\" aaaa 100 128 44100 10 \"Natural Blues.mp3\" bbbb 200 160 44100 20",
    );
    sharer.sync();
    let mut searcher = server.login("looker", 0);
    let results = searcher.search("FILENAME CONTAINS \"moby\" MAX_RESULTS 10");
    assert_eq!(results.len(), 2);
    assert!(results
        .iter()
        .any(|r| r
            .starts_with("\"C:\\Albums\\Moby\\Natural Blues.mp3\" bbbb 200 160 44100 20 batch")));
    searcher.send(214, "");
    assert_eq!(searcher.recv_kind(214).text(), "2 2 0");

    sharer.send(102, "C:\\Albums\\Moby\\Porcelain.mp3");
    sharer.sync();
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"moby\" MAX_RESULTS 10")
            .len(),
        1
    );
    sharer.send(102, "C:\\not\\shared.mp3");
    assert_eq!(sharer.recv().kind, 404);
    sharer.send(110, "");
    sharer.sync();
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"moby\" MAX_RESULTS 10")
            .len(),
        0
    );
    searcher.send(214, "");
    assert_eq!(searcher.recv_kind(214).text(), "2 0 0");
}

#[test]
fn files_leave_with_their_owner() {
    let server = TestServer::start();
    let sharer = server.sharer("leaver", 0, &[("x\\unique words here.mp3", 10)]);
    let mut searcher = server.login("stayer", 0);
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"unique\" MAX_RESULTS 10")
            .len(),
        1
    );
    drop(sharer);
    server.wait_users(1);
    assert_eq!(
        searcher
            .search("FILENAME CONTAINS \"unique\" MAX_RESULTS 10")
            .len(),
        0
    );
    assert_eq!(server.metric("hazel_index_files"), 0.0);
}

#[test]
fn browse_lists_a_users_files() {
    let server = TestServer::start();
    let _sharer = server.sharer("browsed", 0, &[("a\\first.mp3", 11), ("a\\second.mp3", 22)]);
    let mut viewer = server.login("viewer", 0);
    viewer.send(211, "browsed");
    let msgs = viewer.recv_until(213);
    let entries: Vec<String> = msgs
        .iter()
        .filter(|m| m.kind == 212)
        .map(|m| m.text())
        .collect();
    assert_eq!(
        entries,
        vec![
            "browsed \"a\\first.mp3\" 0123456789abcdef0123456789abcdef 11 128 44100 200",
            "browsed \"a\\second.mp3\" 0123456789abcdef0123456789abcdef 22 128 44100 200",
        ]
    );
    assert_eq!(
        msgs.last().unwrap().text(),
        format!("browsed {LOCALHOST_WIRE}")
    );
    viewer.send(211, "nobody");
    let e = viewer.recv();
    assert_eq!(e.kind, 404);
    assert_eq!(viewer.recv().kind, 213);
}

#[test]
fn download_negotiation_goes_through_the_sharer() {
    let server = TestServer::start();
    let mut sharer = server.sharer("up", 6699, &[("m\\song.mp3", 1234)]);
    let mut down = server.login("down", 7000);

    down.send(203, "up \"m\\song.mp3\"");
    let ask = sharer.recv_kind(607);
    assert_eq!(ask.text(), "down \"m\\song.mp3\" 7");
    sharer.send(608, "down \"m\\song.mp3\"");
    let ack = down.recv_kind(204);
    assert_eq!(
        ack.text(),
        format!("up {LOCALHOST_WIRE} 6699 \"m\\song.mp3\" 0123456789abcdef0123456789abcdef 7")
    );

    // Unknown file, unknown user: 206.
    down.send(203, "up \"m\\other.mp3\"");
    assert_eq!(down.recv().text(), "up \"m\\other.mp3\"");
    down.send(203, "ghost \"m\\song.mp3\"");
    let err = down.recv();
    assert_eq!(
        (err.kind, err.text().as_str()),
        (206, "ghost \"m\\song.mp3\"")
    );
    // A 608 nobody asked for is ignored.
    sharer.send(608, "down \"m\\song.mp3\"");
    down.sync();
    // The sharer's queue is full: 619 becomes 620 for the downloader.
    down.send(203, "up \"m\\song.mp3\"");
    sharer.recv_kind(607);
    sharer.send(619, "down \"m\\song.mp3\" 3");
    let full = down.recv_kind(620);
    assert_eq!(full.text(), "up \"m\\song.mp3\" 1234 3");
}

#[test]
fn firewalled_download_is_relayed_as_501() {
    let server = TestServer::start();
    let mut sharer = server.sharer("walled", 0, &[("m\\tune.mp3", 99)]);
    let mut down = server.login("open", 7001);
    down.send(203, "walled \"m\\tune.mp3\"");
    sharer.recv_kind(607);
    sharer.send(608, "open \"m\\tune.mp3\"");
    let ack = down.recv_kind(204);
    assert!(
        ack.text()
            .starts_with(&format!("walled {LOCALHOST_WIRE} 0 ")),
        "{}",
        ack.text()
    );
    down.send(500, "walled \"m\\tune.mp3\"");
    let push = sharer.recv_kind(501);
    assert_eq!(
        push.text(),
        format!("open {LOCALHOST_WIRE} 7001 \"m\\tune.mp3\" 0123456789abcdef0123456789abcdef 7")
    );
    // Both firewalled: an error, no 501.
    let mut also_walled = server.login("walled2", 0);
    also_walled.send(500, "walled \"m\\tune.mp3\"");
    assert_eq!(also_walled.recv().kind, 404);
}

#[test]
fn pings_motd_and_stats_on_request() {
    let server = TestServer::start();
    let mut a = server.login("pinger", 0);
    let mut b = server.login("pinged", 0);
    a.send(750, "");
    assert_eq!(a.recv().kind, 750);
    a.send(751, "pinged");
    let ping = b.recv_kind(751);
    assert_eq!(ping.text(), "pinger");
    b.send(752, "pinger");
    let pong = a.recv_kind(752);
    assert_eq!(pong.text(), "pinged");
    a.send(751, "absent");
    let e = a.recv();
    assert_eq!(
        (e.kind, e.text().as_str()),
        (404, "ping failed, absent is not online")
    );
    a.send(621, "");
    assert_eq!(a.recv().text(), "hello from the test server");
    a.send(214, "");
    assert_eq!(a.recv().text(), "2 0 0");
}

#[test]
fn stats_are_sent_periodically() {
    let server = TestServer::start_with(|c| c.stats_interval = std::time::Duration::from_secs(1));
    let mut c = server.login("idle", 0);
    // No request: the server pushes 214 on its own.
    let m = c.recv();
    assert_eq!((m.kind, m.text().as_str()), (214, "1 0 0"));
}

#[test]
fn transfer_counters_show_in_whois() {
    let server = TestServer::start();
    let mut a = server.login("counter", 0);
    let mut b = server.login("watcher", 0);
    for k in [218, 218, 219, 220, 220, 220, 221] {
        a.send(k, "");
    }
    a.sync();
    b.send(603, "counter");
    let whois = b.recv_kind(604);
    let t = whois.text();
    assert!(t.starts_with("counter \"User\" "), "{t}");
    // shared downloads uploads link "client"
    assert!(
        t.ends_with(" \"\" \"Active\" 0 1 2 7 \"hazel-test 1.0\""),
        "{t}"
    );
}

#[test]
fn unknown_message_types_are_counted_and_ignored() {
    let server = TestServer::start();
    let mut c = server.login("curious", 0);
    c.send(9999, "whatever");
    c.send(1234, "");
    c.sync();
    assert_eq!(server.metric("hazel_index_unknown_messages_total"), 2.0);
    assert_eq!(
        server.metric("hazel_index_messages_total{type=\"unknown\"}"),
        2.0
    );
    assert_eq!(
        server.metric_opt("hazel_index_messages_total{type=\"9999\"}"),
        None,
        "no series per unknown number"
    );
    c.send(214, "");
    assert_eq!(c.recv().kind, 214, "still served");
}

#[test]
fn malformed_messages_get_errors_not_disconnects() {
    let server = TestServer::start();
    let mut c = server.login("sloppy", 0);
    c.send(100, "\"unterminated 1234");
    assert_eq!(c.recv().kind, 404);
    c.send(100, "\"name.mp3\" md5 notanumber 128 44100 10");
    assert_eq!(c.recv().kind, 404);
    c.send(
        200,
        "FILENAME CONTAINS \"a \"quoted\" string\" MAX_RESULTS 100",
    );
    let e = c.recv();
    assert_eq!((e.kind, e.text().as_str()), (404, "Invalid search request"));
    assert_eq!(c.recv().kind, 202);
    c.send_bytes(200, &[0xff, 0x00, 0x22, 0x80]);
    assert_eq!(c.recv().kind, 404);
    assert_eq!(c.recv().kind, 202);
    c.send(203, "");
    assert_eq!(c.recv().kind, 404);
    c.send(870, "\"dir\" \"f.mp3\" md5 1");
    assert_eq!(c.recv().kind, 404);
    c.send(214, "");
    assert_eq!(c.recv().kind, 214);

    // A malformed login ends the connection with error 0.
    let mut bad = server.connect();
    bad.send(2, "onlynick");
    assert_eq!(bad.recv().kind, 0);
    assert!(bad.closed_by_server());
}

#[test]
fn a_length_over_the_limit_disconnects_only_that_client() {
    let server = TestServer::start_with(|c| c.max_command_length = 512);
    let mut bystander = server.login("bystander", 0);
    let mut big = server.login("big", 0);
    // Header alone declaring 4000 bytes: refused before anything is buffered.
    big.stream
        .write_all(&[0xa0, 0x0f, 0x64, 0x00])
        .expect("send header");
    assert!(big.closed_by_server());
    assert_eq!(server.drops(DropReason::CommandTooLong), 1.0);
    bystander.send(214, "");
    assert_eq!(bystander.recv().text(), "1 0 0");
}

#[test]
fn a_search_flood_is_refused_then_disconnected() {
    let server = TestServer::start_with(|c| c.searches_per_minute = 5);
    let _sharer = server.sharer("provider", 0, &[("x\\flood target.mp3", 1)]);
    let mut flooder = server.login("flooder", 0);
    for _ in 0..5 {
        assert_eq!(
            flooder
                .search("FILENAME CONTAINS \"flood\" MAX_RESULTS 10")
                .len(),
            1
        );
    }
    flooder.send(200, "FILENAME CONTAINS \"flood\" MAX_RESULTS 10");
    let e = flooder.recv();
    assert_eq!(e.kind, 404);
    assert!(e.text().contains("Too many searches"), "{}", e.text());
    assert_eq!(flooder.recv().kind, 202);
    for _ in 0..50 {
        // The server may close the connection before the flood ends.
        if !flooder.try_send(200, "FILENAME CONTAINS \"flood\" MAX_RESULTS 10") {
            break;
        }
    }
    assert!(flooder.closed_by_server());
    assert_eq!(server.drops(DropReason::SearchFlood), 1.0);
    // Everyone else is unaffected.
    let mut other = server.login("patient", 0);
    assert_eq!(
        other
            .search("FILENAME CONTAINS \"flood\" MAX_RESULTS 10")
            .len(),
        1
    );
}

#[test]
fn a_message_flood_disconnects_the_flooder() {
    let server = TestServer::start_with(|c| c.max_messages_per_second = 50);
    let mut flooder = server.login("noisy", 0);
    let burst: Vec<u8> = (0..500).flat_map(|_| support::frame(218, b"")).collect();
    flooder.stream.write_all(&burst).unwrap();
    assert!(flooder.closed_by_server());
    assert_eq!(server.drops(DropReason::MessageFlood), 1.0);
    let mut quiet = server.login("quiet", 0);
    quiet.sync();
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_memory_stays_bounded() {
    let cap = 64 * 1024;
    let server = TestServer::start_with(|c| {
        c.output_queue_cap = cap;
        c.max_messages_per_second = 100_000;
    });
    let mut sharer = server.login("library", 0);
    for i in 0..200 {
        sharer.share(
            &format!("some\\long directory name\\track number {i} of the big collection.mp3"),
            1,
        );
    }
    sharer.sync();
    // The stalled client asks for browses (~24 KB each) and never reads.
    let mut stalled = server.login("stalled", 0);
    let request = support::frame(211, b"library");
    let mut sent = 0;
    let mut dropped = false;
    for _ in 0..2000 {
        if stalled.stream.write_all(&request).is_err() {
            dropped = true;
            break;
        }
        sent += 1;
        if sent % 50 == 0 && server.drops(DropReason::OutputQueueFull) >= 1.0 {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "the server kept queueing for a client that does not read"
    );
    assert_eq!(server.drops(DropReason::OutputQueueFull), 1.0);
    server.wait_users(1);
    // The well-behaved client still gets its answers.
    let mut reader = server.login("reader", 0);
    reader.send(211, "library");
    let msgs = reader.recv_until(213);
    assert_eq!(msgs.iter().filter(|m| m.kind == 212).count(), 200);
}

#[test]
fn connection_limits_refuse_with_an_error() {
    let server = TestServer::start_with(|c| {
        c.max_connections = 3;
        c.clones_per_ip = 2;
    });
    let _a = server.login("one", 0);
    let _b = server.login("two", 0);
    let mut clone = server.connect();
    let e = clone.recv();
    assert_eq!(e.kind, 0);
    assert!(e.text().contains("Too many connections"), "{}", e.text());
    assert!(clone.closed_by_server());
    assert_eq!(server.drops(DropReason::ClonesPerIp), 1.0);
}

#[test]
fn max_connections_is_enforced() {
    let server = TestServer::start_with(|c| c.max_connections = 2);
    let _a = server.login("one", 0);
    let _b = server.login("two", 0);
    let mut third = server.connect();
    let e = third.recv();
    assert_eq!((e.kind, e.text().as_str()), (0, "Server is full"));
}

#[test]
fn login_timeout_drops_silent_connections() {
    let server =
        TestServer::start_with(|c| c.login_timeout = std::time::Duration::from_millis(1000));
    let mut silent = server.connect();
    let e = silent.recv();
    assert_eq!((e.kind, e.text().as_str()), (0, "Login timed out"));
    assert!(silent.closed_by_server());
    let mut prompt = server.connect();
    prompt.login("prompt", 0);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    prompt.sync();
}

#[test]
fn share_limit_gives_an_error() {
    let server = TestServer::start_with(|c| c.max_shares = 3);
    let mut c = server.login("hoarder", 0);
    for i in 0..3 {
        c.share(&format!("d\\f{i}.mp3"), 1);
    }
    c.share("d\\f3.mp3", 1);
    let e = c.recv();
    assert_eq!(
        (e.kind, e.text().as_str()),
        (404, "You may share at most 3 files")
    );
    c.send(214, "");
    assert_eq!(c.recv().text(), "1 3 0");
}

#[test]
fn admin_kill_ban_and_levels() {
    let server = TestServer::start_with(|c| c.admins = vec!["root".to_string()]);
    let mut admin = server.register("root", "rootpw");

    let mut user = server.login("user1", 0);
    // Ordinary users may not kill or ban.
    user.send(610, "root");
    assert_eq!(user.recv().text(), "permission denied");
    user.send(612, "root");
    assert_eq!(user.recv().text(), "permission denied");

    // Kill.
    admin.send(610, "user1 \"be nice\"");
    let notice = user.recv();
    assert_eq!(
        (notice.kind, notice.text().as_str()),
        (404, "You were killed by root: be nice")
    );
    assert!(user.closed_by_server());
    assert_eq!(admin.recv_kind(404).text(), "user1 killed: be nice");

    // Ban by nick: the banned nick cannot log in again.
    let mut troll = server.login("troll", 0);
    admin.send(612, "troll \"spam\"");
    assert_eq!(troll.recv().text(), "You were banned by root: spam");
    assert!(troll.closed_by_server());
    admin.recv_kind(404);
    let mut again = server.connect();
    again.send(2, "troll pw 0 \"nap\" 3");
    let refusal = again.recv();
    assert_eq!(
        (refusal.kind, refusal.text().as_str()),
        (0, "You are banned from this server: spam")
    );

    // Ban list, unban.
    admin.send(615, "");
    let list = admin.recv_until(615);
    assert_eq!(list.len(), 2);
    assert!(
        list[0].text().starts_with("troll root \"spam\" "),
        "{}",
        list[0].text()
    );
    admin.send(614, "troll");
    assert_eq!(admin.recv().text(), "troll unbanned");
    let _back = server.login("troll", 0);

    // Levels: register a user, promote to moderator, who can then kill.
    let mut moderator = server.connect();
    moderator.send(6, "mod1 modpw 0 \"nap\" 3 m@m");
    assert_eq!(moderator.recv().kind, 3);
    moderator.sync();
    admin.send(606, "mod1 moderator");
    assert_eq!(admin.recv().text(), "mod1 is now Moderator");
    moderator.send(610, "troll");
    assert_eq!(moderator.recv_kind(404).text(), "troll killed: ");
    // A moderator cannot kill an admin.
    moderator.send(610, "root");
    assert_eq!(moderator.recv().text(), "permission denied");
}

#[test]
fn ip_ban_refuses_new_connections() {
    let server = TestServer::start_with(|c| c.admins = vec!["root".to_string()]);
    let mut admin = server.register("root", "rootpw");
    // Banning the prefix of our own address: others from it are cut off,
    // the admin who set it stays.
    let mut victim = server.login("victim", 0);
    admin.send(612, "127.0.0. \"local abuse\"");
    assert!(victim.closed_by_server());
    let mut newcomer = server.connect();
    let e = newcomer.recv();
    assert_eq!(
        (e.kind, e.text().as_str()),
        (0, "You are banned from this server: local abuse")
    );
    assert!(newcomer.closed_by_server());
    admin.recv_kind(404);
    admin.send(614, "127.0.0.");
    assert_eq!(admin.recv().text(), "127.0.0. unbanned");
    let _ok = server.login("welcome", 0);
}

#[test]
fn metrics_report_users_files_searches_and_latency() {
    let server = TestServer::start();
    let _a = server.sharer("m1", 0, &[("d\\metric song.mp3", 1)]);
    let mut b = server.login("m2", 0);
    assert_eq!(
        b.search("FILENAME CONTAINS \"metric\" MAX_RESULTS 5").len(),
        1
    );
    let text = server.metrics();
    assert!(text.contains("hazel_index_users 2\n"), "{text}");
    assert!(text.contains("hazel_index_files 1\n"), "{text}");
    assert!(text.contains("hazel_index_searches_total 1\n"), "{text}");
    assert!(
        text.contains("hazel_index_search_latency_seconds_count 1\n"),
        "{text}"
    );
    assert!(
        text.contains("hazel_index_messages_total{type=\"200\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE hazel_index_search_latency_seconds histogram"));
    assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
    assert!(text.contains("\nhazel_index_index_bytes "), "{text}");
}

#[test]
fn ghost_of_a_registered_nick_is_replaced() {
    let server = TestServer::start();
    let mut first = server.connect();
    first.send(6, "dave pw 0 \"nap\" 3 d@d");
    assert_eq!(first.recv().kind, 3);
    first.sync();
    let mut second = server.connect();
    second.send(2, "dave pw 0 \"nap\" 3");
    assert_eq!(second.recv().kind, 3);
    assert!(first.closed_by_server());
    second.sync();
    assert_eq!(server.metric("hazel_index_users"), 1.0);
}

#[test]
fn password_hashing_does_not_stall_other_clients() {
    // A deliberately expensive hash: the registration takes a while…
    let server = TestServer::start_with(|c| {
        c.password_cost = hazel_index::store::PasswordCost {
            memory_kib: 16 * 1024,
            iterations: 3,
        }
    });
    let mut other = server.login("bystander", 0);
    let mut registering = server.connect();
    registering.send(6, "slowhash pw 0 \"nap\" 3 s@s");
    // Let the server pick the registration up first (a blocking hash
    // would then hold the bystander's ping until it finished).
    std::thread::sleep(std::time::Duration::from_millis(100));
    // …and meanwhile everyone else is served.
    other.sync();
    other.send(214, "");
    assert_eq!(other.recv().kind, 214);
    assert!(
        registering.nothing_arrived(),
        "the registration finished before the bystander was served; hashing is too cheap to tell"
    );
    let ack = registering.recv();
    assert_eq!(ack.kind, 3, "{}", ack.text());
}

#[test]
fn frames_pipelined_behind_a_registered_login_wait_for_it() {
    let server = TestServer::start();
    let mut first = server.connect();
    first.send(6, "piper pw 0 \"nap\" 3 p@p");
    assert_eq!(first.recv().kind, 3);
    drop(first);
    server.wait_users(0);
    // Login, a share and a stats request in one write, before any answer.
    let mut c = server.connect();
    let mut burst = support::frame(2, b"piper pw 0 \"nap\" 3");
    burst.extend(support::frame(
        100,
        b"\"d\\pipelined song.mp3\" m 1 128 44100 60",
    ));
    burst.extend(support::frame(214, b""));
    c.stream.write_all(&burst).unwrap();
    assert_eq!(c.recv().kind, 3);
    assert_eq!(c.recv().kind, 621);
    assert_eq!(c.recv().text(), "1 0 0", "stats sent at login");
    assert_eq!(
        c.recv().text(),
        "1 1 0",
        "the share was handled after the login"
    );
}

#[test]
fn many_concurrent_clients_share_and_search_consistently() {
    const CLIENTS: usize = 16;
    const FILES: usize = 300;
    let server = TestServer::start_with(|c| {
        c.max_shares = FILES;
        c.searches_per_minute = 0;
    });
    let addr = server.addr;
    // Client i shares FILES files; file f of every client contains the word
    // "common", and the word "only<i>x<f mod 3>" for exact expectations.
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = support::Client::connect(addr);
                c.login(&format!("peer{i}"), 0);
                let mut batch = String::new();
                for f in 0..FILES {
                    let entry = format!(
                        " \"common only{i}x{} n{f}.mp3\" 0123456789abcdef0123456789abcdef {f} 128 44100 60",
                        f % 3
                    );
                    if batch.len() + entry.len() > 1900 {
                        c.send(870, &format!("\"C:\\dir{i}\"{batch}"));
                        batch.clear();
                    }
                    batch.push_str(&entry);
                }
                c.send(870, &format!("\"C:\\dir{i}\"{batch}"));
                c.sync();
                c
            })
        })
        .collect();
    let mut clients: Vec<support::Client> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(server.metric("hazel_index_files") as usize, CLIENTS * FILES);
    for (i, c) in clients.iter_mut().enumerate() {
        let other = (i + 1) % CLIENTS;
        // 100 files of the other client match "only<other>x1"; capped at 50.
        let hits = c.search(&format!(
            "FILENAME CONTAINS \"only{other}x1\" MAX_RESULTS 50"
        ));
        assert_eq!(hits.len(), 50);
        assert!(hits.iter().all(|h| h.contains(&format!(" peer{other} "))));
        // Two words ANDed, own files excluded.
        let own = c.search(&format!(
            "FILENAME CONTAINS \"common only{i}x2\" MAX_RESULTS 100"
        ));
        assert!(own.is_empty());
    }
    drop(clients);
    server.wait_users(0);
    assert_eq!(server.metric("hazel_index_files"), 0.0);
}

#[test]
fn a_library_shared_in_one_burst_is_not_a_flood() {
    let server = TestServer::start_with(|c| {
        c.max_messages_per_second = 50;
        c.max_shares = 3000;
    });
    let mut c = server.login("bigshare", 0);
    let burst: Vec<u8> = (0..3000)
        .flat_map(|i| {
            let share =
                format!("\"lib\\track {i}.mp3\" 0123456789abcdef0123456789abcdef 1 128 44100 60");
            support::frame(100, share.as_bytes())
        })
        .collect();
    c.stream.write_all(&burst).unwrap();
    c.sync();
    assert_eq!(server.metric("hazel_index_files"), 3000.0);
    assert_eq!(server.drops(DropReason::MessageFlood), 0.0);
}
