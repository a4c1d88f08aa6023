//! End-to-end: networks of real `hazel` processes on loopback, observed
//! through `stats`, `peers` and `results` on their control sockets.

mod support;

use std::time::Duration;
use support::{num, stat, wait_until, Servent, WAIT};

/// Starts `n` servents where servent i connects to servent i+1 (a line),
/// with `--peers 0` so no other links form; the first gets `first_args`.
fn line(n: usize, first_args: &[&str], last_files: &[(&str, &[u8])]) -> Vec<Servent> {
    let mut servents: Vec<Servent> = Vec::new();
    for i in (0..n).rev() {
        let name = format!("s{i}");
        let next = servents.last().map(|s| s.addr.to_string());
        let mut args = vec!["--peers", "0"];
        if let Some(next) = &next {
            args.extend(["--connect", next.as_str()]);
        }
        if i == 0 {
            args.extend_from_slice(first_args);
        }
        let files = if i == n - 1 { last_files } else { &[] };
        servents.push(Servent::start(&name, &args, files));
    }
    servents.reverse();
    for (i, s) in servents.iter().enumerate() {
        let links = if i == 0 || i == n - 1 { 1 } else { 2 };
        s.wait_established(links);
    }
    servents
}

#[test]
fn a_ttl3_query_on_a_line_of_five_reaches_the_next_three_and_not_the_fifth() {
    let line = line(5, &["--ttl", "3"], &[]);
    let before: Vec<_> = line.iter().map(Servent::stats).collect();
    let search = line[0].must("search nothing here");
    assert!(num(&search, "search_id") >= 1, "{search}");
    // s3 is the last to hear it; then give s4 the time it would have needed.
    let reached = wait_until(WAIT, || {
        num(&line[3].stats(), "received.query") > num(&before[3], "received.query")
    });
    assert!(reached, "the query never reached s3\n{}", line[3].log());
    std::thread::sleep(Duration::from_secs(1));
    let after: Vec<_> = line.iter().map(Servent::stats).collect();
    let delta = |i: usize, path: &str| stat(&after[i], path) - stat(&before[i], path);
    for hop in 1..=3 {
        assert_eq!(delta(hop, "received.query"), 1, "s{hop} received it once");
    }
    assert_eq!(delta(4, "received.query"), 0, "s4 is 4 hops away");
    assert_eq!(delta(1, "forwarded.query"), 1, "s1 forwards with TTL 2");
    assert_eq!(delta(2, "forwarded.query"), 1, "s2 forwards with TTL 1");
    assert_eq!(delta(3, "forwarded.query"), 0, "TTL runs out at s3");
    assert_eq!(
        delta(3, "drops_by_reason.ttl_expired"),
        1,
        "s3 counts the expiry"
    );
}

#[test]
fn a_search_from_one_end_finds_the_file_shared_at_the_other() {
    let content = b"not really an mp3, but shared all the same".to_vec();
    let line = line(
        4,
        &[],
        &[
            ("Hazel Ring Tone.mp3", &content),
            ("unrelated.txt", b"other"),
        ],
    );
    // The far end must have scanned its share before it can answer.
    let far = &line[3];
    assert!(
        wait_until(WAIT, || num(&far.must("shares"), "files") == 2),
        "share scan: {}",
        far.must("shares")
    );
    let search = line[0].must("search ring tone");
    let id = num(&search, "search_id");
    let mut results = serde_json::Value::Null;
    let found = wait_until(WAIT, || {
        results = line[0].must(&format!("results {id}"));
        results.as_array().is_some_and(|r| !r.is_empty())
    });
    assert!(found, "no results at s0\ns3 log:\n{}", far.log());
    let hits = results.as_array().unwrap();
    assert_eq!(hits.len(), 1, "{results}");
    assert_eq!(hits[0]["name"], "Hazel Ring Tone.mp3");
    assert_eq!(num(&hits[0], "size"), content.len() as u64);
    assert_eq!(hits[0]["addr"], far.addr.to_string());
}

#[test]
fn duplicates_on_a_ring_with_chords_are_suppressed_and_counted() {
    // Six servents in a ring, plus chords 0-3 and 1-4: every servent is
    // reachable along several paths.
    let n = 6;
    let mut servents: Vec<Servent> = Vec::new();
    for i in 0..n {
        servents.push(Servent::start(&format!("r{i}"), &["--peers", "0"], &[]));
    }
    let mut links = vec![0u64; n];
    let mut link = |a: usize, b: usize| {
        servents[a].must(&format!("connect {}", servents[b].addr));
        links[a] += 1;
        links[b] += 1;
    };
    for i in 0..n {
        link(i, (i + 1) % n);
    }
    link(0, 3);
    link(1, 4);
    for (i, s) in servents.iter().enumerate() {
        s.wait_established(links[i]);
    }
    // Let the start-up Ping flood settle before taking the baseline.
    std::thread::sleep(Duration::from_secs(1));
    let before: Vec<_> = servents.iter().map(Servent::stats).collect();
    servents[0].must("search ring of servents");
    // Everyone hears it from each neighbour that forwards it; wait for quiet.
    let mut last = Vec::new();
    let settled = wait_until(WAIT, || {
        let now: Vec<u64> = servents
            .iter()
            .map(|s| num(&s.stats(), "received.query"))
            .collect();
        let quiet = now == last && now.iter().skip(1).all(|&q| q > 0);
        last = now;
        if quiet {
            std::thread::sleep(Duration::from_millis(500));
        }
        quiet
    });
    assert!(settled, "the query did not reach every servent");
    let after: Vec<_> = servents.iter().map(Servent::stats).collect();
    let delta = |i: usize, path: &str| stat(&after[i], path) - stat(&before[i], path);
    let mut duplicates = 0;
    for (i, &degree) in links.iter().enumerate().skip(1) {
        let received = delta(i, "received.query");
        let dropped = delta(i, "dropped.query");
        assert!(received >= 1, "r{i} never got the query");
        assert_eq!(
            received - dropped,
            1,
            "r{i} handled the query exactly once (received {received}, dropped {dropped})"
        );
        assert!(
            delta(i, "forwarded.query") < degree,
            "r{i} forwarded to at most its other neighbours"
        );
        assert!(delta(i, "drops_by_reason.duplicate") >= dropped);
        duplicates += dropped;
    }
    // The origin drops the copies that come back to it as duplicates too.
    duplicates += delta(0, "dropped.query");
    assert!(
        duplicates > 0,
        "a graph with cycles must produce duplicates"
    );
}

#[test]
fn killing_a_middle_servent_leaves_the_others_reconnecting_through_the_host_cache() {
    let middle = Servent::start("middle", &["--peers", "0"], &[]);
    let middle_addr = middle.addr.to_string();
    let right = Servent::start("right", &["--peers", "1", "--connect", &middle_addr], &[]);
    right.wait_established(1);
    let left = Servent::start("left", &["--peers", "1", "--connect", &middle_addr], &[]);
    left.wait_established(1);
    middle.wait_established(2);
    // The ends learn of each other through the middle (Pongs, X-Try).
    let right_addr = right.addr.to_string();
    let learned = wait_until(WAIT, || {
        left.must("hosts")
            .as_array()
            .is_some_and(|h| h.iter().any(|a| a["addr"] == right_addr.as_str()))
    });
    assert!(
        learned,
        "left never learned right's address: {}",
        left.must("hosts")
    );
    let mut middle = middle;
    middle.kill();
    // With the middle gone, the only servent either end can be linked to is the other.
    let reconnected = wait_until(Duration::from_secs(60), || {
        left.established() >= 1 && right.established() >= 1
    });
    assert!(
        reconnected,
        "left and right did not reconnect\nleft peers: {}\nleft log:\n{}",
        left.must("peers"),
        left.log()
    );
    // And the new link carries traffic: a search from left reaches right.
    let before = num(&right.stats(), "received.query");
    left.must("search after the crash");
    assert!(wait_until(WAIT, || num(&right.stats(), "received.query") > before));
}
