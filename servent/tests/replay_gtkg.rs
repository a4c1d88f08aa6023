//! A real `hazel` joins a gtk-gnutella ultrapeer as a leaf, and the
//! ultrapeer's side is what real gtk-gnutella ultrapeers sent in the
//! captured links of `ndpi-gtkg-0.6-2022.pcap` (tcp.stream 94, 95, 122):
//! their `200 OK` block verbatim and their zlib stream in the captured TCP
//! pieces. After the captured stream, the test plays on with descriptors
//! gtk-gnutella itself made in the same link (the leaf's Pings and its
//! `Bye 200 Servent shutdown`), compressed onto the same stream: the capture
//! has no Ping and no Bye from the ultrapeer side.
//!
//! A peer would see: hazel offers itself as a deflate-capable leaf, accepts
//! the compressed link, counts every descriptor by type, forwards none of
//! the vendor/HSEP messages, answers Pings (within its ping throttle) with
//! Pongs and the captured "periscope" Queries with QueryHits carrying the
//! file's urn:sha1, lists the 87 captured QueryHits (gtk-gnutella, Shareaza
//! and others answering "spiderman") as the results of its own search, and
//! closes the link on the Bye while it keeps running. The captured refusals
//! (503 with folded X-Try-Ultrapeers) feed its host cache, and every
//! captured answer to a 0.6 CONNECT gets the right third step.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddrV4, TcpListener};
use std::time::Duration;

use hazel_protocol::descriptor::{Descriptor, Extension, Payload};
use hazel_protocol::framer::{Frame, Framer};
use hazel_protocol::header::{DescriptorId, PayloadType};
use hazel_protocol::qrp::{QrpMessage, QrpReceiver, PAYLOAD_TYPE};
use serde_json::Value;
use sha1::{Digest, Sha1};
use support::replay::*;
use support::{drops, num, wait_until, RawPeer, Servent, WAIT};

/// The file hazel shares: its name matches every Query in the captured
/// streams (all are "periscope"; some ask for video through GGEP M / XML).
const SHARED_NAME: &str = "Periscope trailer.avi";
const SHARED_CONTENT: &[u8] = b"not really a video, but the bytes hazel hashes for urn:sha1\n";

/// hazel answers one Ping per 3 s from a neighbour (gtk-gnutella's rule for
/// ordinary pings); the test spaces two Pings by more than that.
const PING_THROTTLE_GAP: Duration = Duration::from_millis(3300);

/// The `stats` counter name of a payload type.
fn stats_key(payload_type: PayloadType) -> &'static str {
    match payload_type {
        PayloadType::Ping => "ping",
        PayloadType::Pong => "pong",
        PayloadType::Bye => "bye",
        PayloadType::Push => "push",
        PayloadType::Query => "query",
        PayloadType::QueryHit => "query_hit",
        PayloadType::Other(_) => "other",
    }
}

/// Descriptors by `stats` counter name.
fn count_by_type<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for key in ["ping", "pong", "bye", "push", "query", "query_hit", "other"] {
        counts.insert(key, 0);
    }
    for frame in frames {
        *counts
            .entry(stats_key(frame.header.payload_type))
            .or_default() += 1;
    }
    counts
}

/// What hazel sent on one link, framed as it arrives (inflated first on a
/// compressed link). Every frame must decode and re-encode to its bytes.
struct HazelOutput {
    who: &'static str,
    framer: Framer,
    frames: Vec<(Frame, Descriptor)>,
    closed: bool,
}

impl HazelOutput {
    fn new(who: &'static str, deflated: bool) -> HazelOutput {
        HazelOutput {
            who,
            framer: if deflated {
                Framer::deflated()
            } else {
                Framer::new()
            },
            frames: Vec::new(),
            closed: false,
        }
    }

    fn absorb(&mut self, bytes: &[u8]) {
        let who = self.who;
        self.framer
            .push(bytes)
            .unwrap_or_else(|e| panic!("{who}: hazel's stream does not inflate/frame: {e}"));
        while let Some(frame) = self
            .framer
            .next_frame()
            .unwrap_or_else(|e| panic!("{who}: hazel sent a bad descriptor header: {e}"))
        {
            let descriptor = frame.decode().unwrap_or_else(|e| {
                panic!(
                    "{who}: hazel sent {:?} that does not decode: {e}",
                    frame.header
                )
            });
            assert_eq!(
                descriptor.to_bytes(),
                frame.bytes,
                "{who}: hazel's {:?} does not re-encode byte-identically",
                frame.header.payload_type
            );
            self.frames.push((frame, descriptor));
        }
    }

    /// Reads until `done` holds for what arrived, the link closes, or `limit`
    /// passes; then whether `done` holds.
    fn read_until(
        &mut self,
        stream: &mut std::net::TcpStream,
        limit: Duration,
        done: impl Fn(&[(Frame, Descriptor)]) -> bool,
    ) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while !done(&self.frames) && !self.closed && std::time::Instant::now() < deadline {
            let (bytes, closed) = drain(stream, Duration::from_millis(200), Duration::from_secs(1));
            self.absorb(&bytes);
            self.closed = closed;
        }
        done(&self.frames)
    }

    /// Reads what arrives until `quiet` passes with nothing new (bounded by `WAIT`).
    fn read_quiet(&mut self, stream: &mut std::net::TcpStream, quiet: Duration) {
        let (bytes, closed) = drain(stream, quiet, WAIT);
        self.absorb(&bytes);
        self.closed |= closed;
    }

    /// Ends cleanly: no half descriptor left over.
    fn assert_whole(&self) {
        assert_eq!(
            self.framer.buffered(),
            0,
            "{}: hazel's stream stops inside a descriptor",
            self.who
        );
    }
}

fn received_total(stats: &Value) -> u64 {
    ["ping", "pong", "bye", "push", "query", "query_hit", "other"]
        .iter()
        .map(|k| num(stats, &format!("received.{k}")))
        .sum()
}

/// Waits until hazel has taken in `n` descriptors in all.
fn wait_received(hazel: &Servent, n: u64) {
    let ok = wait_until(WAIT, || {
        hazel.ask("stats").is_ok_and(|s| received_total(&s) >= n)
    });
    assert!(
        ok,
        "hazel took in {} descriptors, {n} were sent\nlog:\n{}",
        received_total(&hazel.stats()),
        hazel.log()
    );
}

/// A result as `results` lists it: (servent id, index, name, size, urn).
type Listed = (String, u64, String, u64, Option<String>);

/// The peer hazel lists with the captured user agent, if established.
fn gtk_peer(hazel: &Servent, user_agent: &str) -> Option<Value> {
    let peers = hazel.must("peers");
    peers
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["user_agent"].as_str() == Some(user_agent) && p["state"] == "established")
        .cloned()
}

fn replay_link(stream: u32) {
    let capture = ndpi_capture();
    let link = CapturedLink::from_capture(&capture, stream);
    let leaf_frames = client_frames(&capture, stream);
    let gtk_pings: Vec<&Frame> = leaf_frames
        .iter()
        .filter(|f| f.header.payload_type == PayloadType::Ping && f.header.ttl > 0)
        .collect();
    let gtk_bye = leaf_frames
        .iter()
        .find(|f| f.header.payload_type == PayloadType::Bye)
        .expect("the captured leaf said Bye");
    assert!(
        gtk_pings.len() >= 2,
        "stream {stream}: want two captured Pings"
    );
    let queries: Vec<&Frame> = link
        .descriptors
        .iter()
        .map(|d| &d.frame)
        .filter(|f| f.header.payload_type == PayloadType::Query)
        .collect();
    assert!(!queries.is_empty(), "stream {stream}: no captured Query");

    // What we will send after the captured stream, compressed onto it; check
    // first that it inflates as part of that stream.
    let mut tail = DeflateTail::default();
    let first_ping = tail.compress(&gtk_pings[0].bytes);
    let later_pings: Vec<u8> = gtk_pings[1..]
        .iter()
        .flat_map(|f| f.bytes.iter().copied())
        .collect();
    let later_pings = tail.compress(&later_pings);
    let mut check = Framer::deflated();
    for piece in link.pieces.iter().chain([&first_ping, &later_pings]) {
        check.push(piece).expect("the continued stream inflates");
    }
    let mut continued = 0;
    while check
        .next_frame()
        .expect("the continued stream frames")
        .is_some()
    {
        continued += 1;
    }
    assert_eq!(continued, link.descriptors.len() + gtk_pings.len());

    // The ultrapeer listens; hazel dials it as a leaf (one outgoing link, so
    // it does not also dial the captured Pongs' hosts while we watch).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_addr = listener.local_addr().expect("addr").to_string();
    let hazel = Servent::start(
        &format!("hazel-{stream}"),
        &["--connect", &up_addr, "--peers", "1"],
        &[(SHARED_NAME, SHARED_CONTENT)],
    );
    let mut up = accept_within(&listener, WAIT);

    let connect = read_block(&mut up);
    let text = String::from_utf8_lossy(&connect).to_string();
    assert!(
        connect.starts_with(b"GNUTELLA CONNECT/0.6\r\n"),
        "not a 0.6 CONNECT: {text}"
    );
    let offer = parse_block(&connect);
    let headers = offer.headers().expect("CONNECT has headers");
    assert_eq!(
        headers.ultrapeer(),
        Some(false),
        "hazel must offer itself as a leaf: {text}"
    );
    assert!(
        headers.accepts_deflate(),
        "no Accept-Encoding: deflate: {text}"
    );
    assert!(
        headers.user_agent().is_some_and(|ua| !ua.is_empty()),
        "{text}"
    );
    for name in ["Bye-Packet", "Pong-Caching", "GGEP"] {
        assert!(headers.contains(name), "CONNECT lacks {name}: {text}");
    }

    send(&mut up, &link.server_ok, "the captured 200 OK");
    let third = read_block(&mut up);
    let third_text = String::from_utf8_lossy(&third).to_string();
    let answer = parse_block(&third);
    assert_eq!(answer.code(), Some(200), "third step: {third_text}");
    assert!(
        answer.headers().is_some_and(|h| h.content_deflate()),
        "gtk accepted deflate, so hazel must compress: {third_text}"
    );

    // A second neighbour (plain 0.6, no compression) to see what hazel forwards.
    let mut other = RawPeer::connect(hazel.addr);
    hazel.wait_established(2);
    let user_agent = link.user_agent();
    let peer = gtk_peer(&hazel, &user_agent)
        .unwrap_or_else(|| panic!("no established gtk peer: {}", hazel.must("peers")));
    assert_eq!(peer["protocol"], "0.6");
    // The file must be hashed before the captured Queries arrive.
    let hashed = wait_until(WAIT, || {
        let shares = hazel.must("shares");
        num(&shares, "files") == 1
            && shares["list"]
                .as_array()
                .is_some_and(|l| l.iter().all(|f| f["sha1"].is_string()))
    });
    assert!(hashed, "share not hashed: {}", hazel.must("shares"));

    // The captured stream, piece by piece as TCP carried it.
    let mut out = HazelOutput::new("to the ultrapeer", true);
    for (i, piece) in link.pieces.iter().enumerate() {
        send(&mut up, piece, &format!("captured piece {i}"));
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_received(&hazel, link.descriptors.len() as u64);
    // gtk's Pings: the first, then (after hazel's per-neighbour ping
    // throttle) the second, then the rest at once.
    send(&mut up, &first_ping, "the first gtk Ping");
    wait_received(&hazel, link.descriptors.len() as u64 + 1);
    std::thread::sleep(PING_THROTTLE_GAP);
    send(&mut up, &later_pings, "the later gtk Pings");
    let sent_frames: Vec<&Frame> = link
        .descriptors
        .iter()
        .map(|d| &d.frame)
        .chain(gtk_pings.iter().copied())
        .collect();
    wait_received(&hazel, sent_frames.len() as u64);
    let stats = hazel.stats();
    let throttled = drops(&stats, "ping_throttled");
    let pong_for = |ping: &Frame, frames: &[(Frame, Descriptor)]| {
        frames.iter().any(|(f, _)| {
            f.header.payload_type == PayloadType::Pong
                && f.header.id == ping.header.id
                && f.header.hops == 0
                && f.header.ttl == ping.header.hops + 1
        })
    };
    let hit_for = |query: &Frame, frames: &[(Frame, Descriptor)]| {
        frames.iter().any(|(f, _)| {
            f.header.payload_type == PayloadType::QueryHit && f.header.id == query.header.id
        })
    };
    let all_answered = out.read_until(&mut up, WAIT, |frames| {
        let pongs = gtk_pings.iter().filter(|p| pong_for(p, frames)).count() as u64;
        pongs == gtk_pings.len() as u64
            && gtk_pings[..2].iter().all(|p| pong_for(p, frames))
            && queries.iter().all(|q| hit_for(q, frames))
    });
    assert!(
        !out.closed,
        "hazel closed the replayed link:\n{}",
        hazel.log()
    );

    // Still established, with the captured identity.
    let peer = gtk_peer(&hazel, &user_agent).unwrap_or_else(|| {
        panic!(
            "the gtk link is gone after the replay: {}\nlog:\n{}",
            hazel.must("peers"),
            hazel.log()
        )
    });
    assert_eq!(peer["protocol"], "0.6");
    assert_eq!(peer["deflate_in"], true);
    assert_eq!(peer["deflate_out"], true);

    // Counted by type, exactly what was sent.
    let expected = count_by_type(sent_frames.iter().copied());
    for (key, want) in &expected {
        assert_eq!(
            num(&stats, &format!("received.{key}")),
            *want,
            "received.{key}; stats {stats}"
        );
    }
    let unknown = expected["other"];
    assert!(
        unknown > 0,
        "the captured stream carries vendor/HSEP messages"
    );
    // Vendor messages are read (the push-proxy exchange); QRP and HSEP are skipped as unknown.
    assert_eq!(
        drops(&stats, "unknown_type") + num(&stats, "proxy.vendor_received"),
        unknown,
        "{stats}"
    );
    assert_eq!(num(&stats, "proxy.vendor_malformed"), 0, "{stats}");
    assert_eq!(num(&stats, "forwarded.other"), 0, "{stats}");
    assert_eq!(num(&peer, "descriptors_in"), sent_frames.len() as u64);

    // Vendor/HSEP messages are never echoed.
    // (id, type): gtk's vendor messages reuse Query ids (query status), so
    // a QueryHit with such an id is not an echo.
    // An echo is the same message sent back (our own Messages Supported
    // and push-proxy answers share ids with the peer's, not their bytes).
    let unknown_ids: BTreeSet<(DescriptorId, u8, Vec<u8>)> = sent_frames
        .iter()
        .filter(|f| !f.header.payload_type.is_known())
        .map(|f| {
            (
                f.header.id,
                f.header.payload_type.to_u8(),
                f.payload().to_vec(),
            )
        })
        .collect();
    assert!(
        out.frames.iter().all(|(f, _)| !unknown_ids.contains(&(
            f.header.id,
            f.header.payload_type.to_u8(),
            f.payload().to_vec()
        ))),
        "hazel echoed a vendor/HSEP message"
    );

    // Pings: every one got our Pong (same id, hops 0, TTL = hops + 1).
    let answered = gtk_pings
        .iter()
        .filter(|p| pong_for(p, &out.frames))
        .count();
    for ping in &gtk_pings[..2] {
        assert!(
            pong_for(ping, &out.frames),
            "Ping {} (the first, or sent {:?} after it) got no Pong",
            ping.header.id,
            PING_THROTTLE_GAP
        );
    }
    assert_eq!(
        answered,
        gtk_pings.len(),
        "every gtk Ping gets our own Pong ({throttled} throttled: not flooded); {stats}"
    );
    assert!(all_answered);

    // Queries: each captured "periscope" Query got a QueryHit for our file.
    let sha1: [u8; 20] = Sha1::digest(SHARED_CONTENT).into();
    for query in &queries {
        let hits: Vec<&(Frame, Descriptor)> = out
            .frames
            .iter()
            .filter(|(f, _)| {
                f.header.payload_type == PayloadType::QueryHit && f.header.id == query.header.id
            })
            .collect();
        assert!(
            !hits.is_empty(),
            "captured Query {} (hops {}) got no QueryHit",
            query.header.id,
            query.header.hops
        );
        for (frame, descriptor) in hits {
            assert_eq!(frame.header.hops, 0, "a QueryHit starts with hops 0");
            assert_eq!(
                frame.header.ttl,
                query.header.hops + 1,
                "TTL = query hops + 1"
            );
            let Payload::QueryHit(hit) = &descriptor.payload else {
                panic!("not a QueryHit");
            };
            let result = hit
                .results
                .iter()
                .find(|r| r.name == SHARED_NAME.as_bytes())
                .expect("the hit names our file");
            assert_eq!(u64::from(result.size), SHARED_CONTENT.len() as u64);
            assert!(
                result
                    .extensions
                    .iter()
                    .any(|e| matches!(e, Extension::Urn(u) if u.sha1() == Some(sha1))),
                "no urn:sha1 of the file in {:?}",
                result.extensions
            );
        }
    }

    // Our own search through the link: the leaf's captured "spiderman"
    // search, answered by the captured QueryHits (gtk-gnutella, Shareaza,
    // ... responders) with their id set to hazel's Query.
    let captured_hits: Vec<&Frame> = link
        .descriptors
        .iter()
        .map(|d| &d.frame)
        .filter(|f| f.header.payload_type == PayloadType::QueryHit)
        .collect();
    let hit_query_id = captured_hits.first().expect("captured QueryHits").header.id;
    let leaf_query = leaf_frames
        .iter()
        .find(|f| f.header.payload_type == PayloadType::Query && f.header.id == hit_query_id)
        .expect("the leaf's Query that the captured hits answer");
    let Ok(Descriptor {
        payload: Payload::Query(leaf_query),
        ..
    }) = leaf_query.decode()
    else {
        panic!("the leaf's Query does not decode");
    };
    let text = String::from_utf8_lossy(&leaf_query.search).to_string();
    let search = hazel.must(&format!("search {text}"));
    let search_id = num(&search, "search_id");
    let sent_query = out.read_until(&mut up, WAIT, |frames| {
        frames.iter().any(|(_, d)| {
            matches!(&d.payload, Payload::Query(q) if q.search == leaf_query.search) && d.hops == 0
        })
    });
    assert!(
        sent_query,
        "hazel's search for {text:?} never reached the ultrapeer"
    );
    let our_query = out
        .frames
        .iter()
        .find(|(_, d)| matches!(&d.payload, Payload::Query(q) if q.search == leaf_query.search))
        .map(|(f, _)| f.header)
        .expect("hazel's Query");
    assert!(our_query.ttl >= 1 && our_query.ttl <= 7, "{our_query:?}");
    let mut expected_results: BTreeSet<Listed> = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut hits_plain = Vec::new();
    for frame in &captured_hits {
        let mut bytes = frame.bytes.clone();
        bytes[..16].copy_from_slice(our_query.id.as_bytes());
        hits_plain.extend_from_slice(&bytes);
        let Ok(Descriptor {
            payload: Payload::QueryHit(hit),
            ..
        }) = frame.decode()
        else {
            panic!("a captured QueryHit does not decode");
        };
        for r in &hit.results {
            if seen.insert((hit.servent_id, r.index)) {
                expected_results.insert((
                    hit.servent_id.to_string(),
                    u64::from(r.index),
                    String::from_utf8_lossy(&r.name).into_owned(),
                    u64::from(r.size),
                    r.sha1().map(|d| hazel_protocol::huge::sha1_urn(&d)),
                ));
            }
        }
    }
    let hits_deflated = tail.compress(&hits_plain);
    send(&mut up, &hits_deflated, "the captured QueryHits");
    let listed = || -> BTreeSet<Listed> {
        hazel
            .must(&format!("results {search_id}"))
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["servent_id"].as_str().unwrap_or_default().to_string(),
                    num(r, "file_index"),
                    r["name"].as_str().unwrap_or_default().to_string(),
                    num(r, "size"),
                    r["urn"].as_str().map(str::to_string),
                )
            })
            .collect()
    };
    let all_listed = wait_until(WAIT, || listed().len() >= expected_results.len());
    assert!(
        all_listed,
        "hazel lists {} of {} results",
        listed().len(),
        expected_results.len()
    );
    assert_eq!(listed(), expected_results, "hazel's results for {text:?}");

    out.read_quiet(&mut up, Duration::from_millis(300));
    out.assert_whole();
    println!(
        "stream {stream}: {} captured pieces, {} descriptors received {expected:?}; \
         {answered} of {} gtk Pings answered, {throttled} throttled; {} captured QueryHits \
         gave {} results for {text:?}; hazel sent {} descriptors",
        link.pieces.len(),
        sent_frames.len(),
        gtk_pings.len(),
        captured_hits.len(),
        expected_results.len(),
        out.frames.len()
    );

    // The plain neighbour got nothing of the vendor/HSEP traffic, and its
    // stream is valid too.
    let mut other_out = HazelOutput::new("to the second neighbour", false);
    other_out.read_quiet(&mut other.stream, Duration::from_millis(300));
    other_out.assert_whole();
    assert!(
        other_out
            .frames
            .iter()
            // (our own Messages Supported is not the peer's traffic)
            .all(|(f, _)| !unknown_ids.contains(&(
                f.header.id,
                f.header.payload_type.to_u8(),
                f.payload().to_vec()
            ))),
        "hazel forwarded a vendor/HSEP message"
    );

    // The captured Bye: hazel closes the link and keeps running.
    let bye = tail.compress(&gtk_bye.bytes);
    send(&mut up, &bye, "gtk's Bye");
    let (_, closed) = drain(&mut up, Duration::from_secs(10), WAIT);
    assert!(
        closed,
        "hazel kept the link open after Bye:\n{}",
        hazel.log()
    );
    let gone = wait_until(WAIT, || gtk_peer(&hazel, &user_agent).is_none());
    assert!(
        gone,
        "peers still lists the gtk link: {}",
        hazel.must("peers")
    );
    let stats = hazel.stats();
    assert_eq!(num(&stats, "received.bye"), 1, "{stats}");
    assert!(
        hazel.ask("stats").is_ok(),
        "hazel stopped answering after the Bye"
    );
    let _ = hazel.ask("peers").expect("ctl still answers");
}

#[test]
fn gtk_ultrapeer_link_94_replays() {
    replay_link(94);
}

#[test]
fn gtk_ultrapeer_link_95_replays() {
    replay_link(95);
}

#[test]
fn gtk_ultrapeer_link_122_replays() {
    replay_link(122);
}

/// Every captured refusal that names other ultrapeers: (stream, block).
fn captured_refusals() -> Vec<(u32, Vec<u8>)> {
    let capture = ndpi_capture();
    let mut refusals = Vec::new();
    for tcp in &capture.tcp {
        let s2c = tcp.half(hazel_protocol::pcap::Direction::ServerToClient);
        if !s2c.bytes.starts_with(b"GNUTELLA/0.6 503") {
            continue;
        }
        let (blocks, _) = handshake_blocks(&s2c.bytes);
        let Some(block) = blocks.first() else {
            continue;
        };
        let refusal = parse_block(block);
        if refusal
            .headers()
            .is_some_and(|h| !h.x_try_ultrapeers().is_empty())
        {
            refusals.push((tcp.info.id, block.clone()));
        }
    }
    refusals
}

/// The hosts of a block's X-Try-Ultrapeers headers, read without the
/// protocol crate: continuation lines (starting with space or TAB) joined,
/// values split at commas.
fn x_try_ultrapeers_by_hand(block: &[u8]) -> Vec<SocketAddrV4> {
    let text = String::from_utf8_lossy(block)
        .replace("\r\n\t", " ")
        .replace("\r\n ", " ");
    text.split("\r\n")
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("X-Try-Ultrapeers")
                .then(|| value.to_string())
        })
        .flat_map(|value| {
            value
                .split(',')
                .filter_map(|h| h.trim().parse::<SocketAddrV4>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn captured_refusals_feed_the_host_cache() {
    let refusals = captured_refusals();
    assert!(
        refusals.len() >= 10,
        "the capture has many 503s with X-Try-Ultrapeers, found {}",
        refusals.len()
    );
    assert!(
        refusals
            .iter()
            .any(|(_, b)| b.windows(3).any(|w| w == b"\r\n\t")),
        "some captured refusal folds its header lines"
    );
    // No automatic dialling: the host cache holds only what the refusals said.
    let hazel = Servent::start("hazel-refused", &["--peers", "0"], &[]);
    let mut expected: BTreeSet<SocketAddrV4> = BTreeSet::new();
    for (stream, block) in &refusals {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        hazel.must(&format!("connect {addr}"));
        let mut up = accept_within(&listener, WAIT);
        let connect = read_block(&mut up);
        assert!(connect.starts_with(b"GNUTELLA CONNECT/0.6\r\n"));
        send(&mut up, block, &format!("the refusal of stream {stream}"));
        let (after, closed) = drain(&mut up, Duration::from_secs(5), WAIT);
        assert!(
            closed,
            "stream {stream}: hazel kept a refused link open (sent {:?})",
            String::from_utf8_lossy(&after)
        );
        let hosts = parse_block(block)
            .headers()
            .map(|h| h.x_try_ultrapeers())
            .unwrap_or_default();
        assert_eq!(
            hosts,
            x_try_ultrapeers_by_hand(block),
            "stream {stream}: the protocol crate reads the folded header differently"
        );
        expected.extend(hosts);
        let listed = hazel.must("hosts");
        let listed: BTreeSet<String> = listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["addr"].as_str())
            .map(str::to_string)
            .collect();
        let missing: Vec<String> = expected
            .iter()
            .map(SocketAddrV4::to_string)
            .filter(|h| !listed.contains(h))
            .collect();
        assert!(
            missing.is_empty(),
            "after stream {stream}'s refusal the host cache lacks {missing:?}\nrefusal:\n{}",
            String::from_utf8_lossy(block)
        );
    }
    println!(
        "{} captured refusals named {} ultrapeers; all are in hazel's host cache",
        refusals.len(),
        expected.len()
    );
    assert_eq!(hazel.established(), 0);
    assert!(hazel.ask("stats").is_ok(), "hazel stopped answering");
}

/// gtk-gnutella opens a link with two Pings back to back (captured: TTL 4,
/// then the TTL 2 "crawler" ping, both hops 0) and always answers alive
/// (TTL 1) and crawler (TTL 2) pings itself, unthrottled. PROTOCOL-NOTES
/// asks to answer every Ping: hazel's per-neighbour throttle (one Ping per
/// 3 s) limits only what a Ping causes beyond hazel's own Pong.
#[test]
fn gtk_handshake_ping_pair_is_answered() {
    let capture = ndpi_capture();
    let link = CapturedLink::from_capture(&capture, 94);
    let leaf_frames = client_frames(&capture, 94);
    let pair: Vec<&Frame> = leaf_frames
        .iter()
        .filter(|f| f.header.payload_type == PayloadType::Ping)
        .take(2)
        .collect();
    assert_eq!(pair.len(), 2);
    assert_eq!((pair[0].header.ttl, pair[0].header.hops), (4, 0));
    assert_eq!((pair[1].header.ttl, pair[1].header.hops), (2, 0));

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_addr = listener.local_addr().expect("addr").to_string();
    let hazel = Servent::start(
        "hazel-ping-pair",
        &["--connect", &up_addr, "--peers", "1"],
        &[],
    );
    let mut up = accept_within(&listener, WAIT);
    let _connect = read_block(&mut up);
    send(&mut up, &link.server_ok, "the captured 200 OK");
    let third = read_block(&mut up);
    assert_eq!(parse_block(&third).code(), Some(200));
    hazel.wait_established(1);

    // The captured zlib stream's first piece (it opens the stream), then the pair.
    send(&mut up, &link.pieces[0], "captured piece 0");
    let mut tail = DeflateTail::default();
    let pings: Vec<u8> = pair.iter().flat_map(|f| f.bytes.iter().copied()).collect();
    send(&mut up, &tail.compress(&pings), "gtk's ping pair");

    let mut out = HazelOutput::new("to the ultrapeer", true);
    let answered = |frames: &[(Frame, Descriptor)]| {
        pair.iter()
            .filter(|p| {
                frames.iter().any(|(f, _)| {
                    f.header.payload_type == PayloadType::Pong
                        && f.header.id == p.header.id
                        && f.header.hops == 0
                })
            })
            .count()
    };
    out.read_until(&mut up, Duration::from_secs(5), |frames| {
        answered(frames) == 2
    });
    assert_eq!(
        answered(&out.frames),
        2,
        "both pings of gtk's pair should get hazel's Pong; stats {}",
        hazel.stats()
    );
}

/// Every captured server answer to a `GNUTELLA CONNECT/0.6`: (stream, block).
fn captured_server_answers() -> Vec<(u32, Vec<u8>)> {
    let capture = ndpi_capture();
    let mut answers = Vec::new();
    for tcp in &capture.tcp {
        let c2s = tcp.half(hazel_protocol::pcap::Direction::ClientToServer);
        let s2c = tcp.half(hazel_protocol::pcap::Direction::ServerToClient);
        if !c2s.bytes.starts_with(b"GNUTELLA CONNECT/0.6")
            || !s2c.bytes.starts_with(b"GNUTELLA/0.6 ")
        {
            continue;
        }
        let (blocks, _) = handshake_blocks(&s2c.bytes);
        if let Some(block) = blocks.into_iter().next() {
            answers.push((tcp.info.id, block));
        }
    }
    answers
}

/// Every captured answer (gtk-gnutella, Foxy, Shareaza, Phex) played to
/// hazel's CONNECT: to a Gnutella `200` hazel completes the handshake,
/// asking for deflate exactly when the server offered it and never
/// upgrading to TLS; a G2 hub's `200` (Content-Type:
/// application/x-gnutella2) gets a non-200 third step and the link closes;
/// any other status ends the attempt with no `200` from hazel. hazel keeps running throughout.
#[test]
fn captured_server_answers_get_the_right_third_step() {
    let answers = captured_server_answers();
    // The capture's README: 45 streams got a reply.
    assert_eq!(answers.len(), 45, "captured answers to a 0.6 CONNECT");
    let hazel = Servent::start("hazel-answers", &["--peers", "0"], &[]);
    let (mut accepted, mut refused, mut g2) = (0, 0, 0);
    for (stream, block) in &answers {
        let answer = parse_block(block);
        let headers = answer.headers().expect("a 0.6 answer has headers");
        let is_g2 = headers
            .get("Content-Type")
            .is_some_and(|v| v.eq_ignore_ascii_case("application/x-gnutella2"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        hazel.must(&format!("connect {addr}"));
        let mut up = accept_within(&listener, WAIT);
        let connect = read_block(&mut up);
        assert!(connect.starts_with(b"GNUTELLA CONNECT/0.6\r\n"));
        send(&mut up, block, &format!("stream {stream}'s answer"));
        let block_text = String::from_utf8_lossy(block).to_string();
        if answer.code() == Some(200) && !is_g2 {
            accepted += 1;
            let third = read_block(&mut up);
            let third_text = String::from_utf8_lossy(&third).to_string();
            let step3 = parse_block(&third);
            assert_eq!(step3.code(), Some(200), "stream {stream}: {third_text}");
            let h3 = step3.headers().expect("third step headers");
            assert_eq!(
                h3.content_deflate(),
                headers.accepts_deflate(),
                "stream {stream}: deflate only when offered\n{block_text}\n{third_text}"
            );
            assert!(
                !h3.has_token("Connection", "Upgrade"),
                "stream {stream}: hazel does not do TLS: {third_text}"
            );
            hazel.wait_established(1);
            drop(up);
            let closed = wait_until(WAIT, || hazel.established() == 0);
            assert!(closed, "stream {stream}: hazel kept a closed link");
        } else if is_g2 {
            // A G2 hub's answer (Content-Type: application/x-gnutella2):
            // its stream would be G2, not Gnutella, so hazel declines it
            // with a non-200 third step and closes.
            g2 += 1;
            let (after, closed) = drain(&mut up, Duration::from_secs(5), WAIT);
            assert!(
                closed,
                "stream {stream}: hazel kept a G2 hub's link open\n{block_text}"
            );
            assert!(
                !after.starts_with(b"GNUTELLA/0.6 200"),
                "stream {stream}: hazel accepted a G2 hub: {:?}",
                String::from_utf8_lossy(&after)
            );
            if answer.code() == Some(200) {
                // A 200 is declined in words: a non-200 third step.
                assert!(
                    after.starts_with(b"GNUTELLA/0.6 "),
                    "stream {stream}: no third step to a G2 hub's 200: {:?}",
                    String::from_utf8_lossy(&after)
                );
            }
            assert_eq!(hazel.established(), 0, "stream {stream}");
        } else {
            refused += 1;
            let (after, closed) = drain(&mut up, Duration::from_secs(5), WAIT);
            assert!(
                closed,
                "stream {stream}: hazel kept a refused attempt open\n{block_text}"
            );
            assert!(
                !after.starts_with(b"GNUTELLA/0.6 200"),
                "stream {stream}: hazel accepted a refusal\n{block_text}"
            );
        }
        assert!(
            hazel.ask("stats").is_ok(),
            "hazel stopped after stream {stream}"
        );
    }
    println!(
        "{accepted} Gnutella 200 answers completed, {refused} refusals closed, {g2} G2 answers declined"
    );
    assert_eq!(hazel.established(), 0);
}

/// Lower-case alphanumeric words, as a keyword match sees a name.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The mirror of `replay_link`: the gtk-gnutella leaf of the captured link
/// connects to hazel. Its CONNECT, its third step and its whole compressed
/// stream (QRP tables, vendor messages, HSEP, Pings, its own Queries, its
/// Bye) are the captured bytes, sent as captured.
fn replay_leaf(stream: u32) {
    let capture = ndpi_capture();
    let leaf = CapturedHalf::from_capture(
        &capture,
        stream,
        hazel_protocol::pcap::Direction::ClientToServer,
    );
    assert_eq!(
        leaf.blocks.len(),
        2,
        "stream {stream}: CONNECT and third step"
    );
    let bye_at = leaf
        .descriptors
        .iter()
        .position(|d| d.frame.header.payload_type == PayloadType::Bye)
        .expect("the captured leaf said Bye");
    assert_eq!(
        bye_at + 1,
        leaf.descriptors.len(),
        "the Bye ends the stream"
    );
    let bye_piece = leaf.descriptors[bye_at].piece;
    let before_bye: Vec<&Frame> = leaf
        .descriptors
        .iter()
        .filter(|d| d.piece < bye_piece)
        .map(|d| &d.frame)
        .collect();
    let shared = "Spiderman periscope pinkfloyd.avi";
    let shared_words = words(shared);
    let queries: Vec<&Frame> = before_bye
        .iter()
        .copied()
        .filter(|f| f.header.payload_type == PayloadType::Query)
        .collect();
    let matching: Vec<&Frame> = queries
        .iter()
        .copied()
        .filter(|f| match f.decode() {
            Ok(Descriptor {
                payload: Payload::Query(q),
                ..
            }) => {
                let w = words(&String::from_utf8_lossy(&q.search));
                !w.is_empty() && w.is_subset(&shared_words)
            }
            _ => false,
        })
        .collect();
    assert!(
        !matching.is_empty(),
        "stream {stream}: no captured leaf Query to answer"
    );

    let hazel = Servent::start(
        &format!("hazel-leaf-{stream}"),
        &["--peers", "0"],
        &[(shared, SHARED_CONTENT)],
    );
    let hashed = wait_until(WAIT, || {
        let shares = hazel.must("shares");
        num(&shares, "files") == 1
            && shares["list"]
                .as_array()
                .is_some_and(|l| l.iter().all(|f| f["sha1"].is_string()))
    });
    assert!(hashed, "share not hashed: {}", hazel.must("shares"));

    let mut gtk = std::net::TcpStream::connect(hazel.addr).expect("connect to hazel");
    gtk.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    send(&mut gtk, &leaf.blocks[0], "the captured CONNECT");
    let reply = read_block(&mut gtk);
    let reply_text = String::from_utf8_lossy(&reply).to_string();
    let answer = parse_block(&reply);
    assert_eq!(answer.code(), Some(200), "hazel refused gtk: {reply_text}");
    let h = answer.headers().expect("headers");
    assert!(
        h.accepts_deflate() && h.content_deflate(),
        "gtk offered deflate: {reply_text}"
    );
    assert!(
        !h.has_token("Connection", "Upgrade"),
        "hazel does not do TLS: {reply_text}"
    );
    send(&mut gtk, &leaf.blocks[1], "the captured third step");
    hazel.wait_established(1);
    let user_agent = parse_block(&leaf.blocks[0])
        .headers()
        .and_then(|h| h.user_agent().map(str::to_string))
        .expect("gtk's User-Agent");
    let peer = gtk_peer(&hazel, &user_agent)
        .unwrap_or_else(|| panic!("no established gtk peer: {}", hazel.must("peers")));
    assert_eq!(peer["protocol"], "0.6");
    assert_eq!(peer["deflate_in"], true);
    assert_eq!(peer["deflate_out"], true);

    // Everything up to the piece that carries the Bye.
    for (i, piece) in leaf.pieces[..bye_piece].iter().enumerate() {
        send(&mut gtk, piece, &format!("captured piece {i}"));
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_received(&hazel, before_bye.len() as u64);
    let stats = hazel.stats();
    let expected = count_by_type(before_bye.iter().copied());
    for (key, want) in &expected {
        assert_eq!(
            num(&stats, &format!("received.{key}")),
            *want,
            "received.{key}; stats {stats}"
        );
    }
    assert_eq!(
        drops(&stats, "unknown_type") + num(&stats, "proxy.vendor_received"),
        expected["other"],
        "{stats}"
    );
    assert_eq!(num(&stats, "proxy.vendor_malformed"), 0, "{stats}");
    // The gtk-gnutella leaf asked us to be its push proxy, and we are.
    assert_eq!(num(&stats, "proxy.proxying_for"), 1, "{stats}");
    assert_eq!(num(&stats, "forwarded.other"), 0, "{stats}");

    let pings: Vec<&Frame> = before_bye
        .iter()
        .copied()
        .filter(|f| f.header.payload_type == PayloadType::Ping && f.header.ttl > 0)
        .collect();
    let throttled = drops(&stats, "ping_throttled");
    let pong_for = |ping: &Frame, frames: &[(Frame, Descriptor)]| {
        frames.iter().any(|(f, _)| {
            f.header.payload_type == PayloadType::Pong
                && f.header.id == ping.header.id
                && f.header.hops == 0
                && f.header.ttl == ping.header.hops + 1
        })
    };
    let hits_for = |query: &Frame, frames: &[(Frame, Descriptor)]| {
        frames
            .iter()
            .filter(|(f, _)| {
                f.header.payload_type == PayloadType::QueryHit && f.header.id == query.header.id
            })
            .count()
    };
    let mut out = HazelOutput::new("to the gtk leaf", true);
    out.read_until(&mut gtk, WAIT, |frames| {
        pings.iter().filter(|p| pong_for(p, frames)).count() == pings.len()
            && matching.iter().all(|q| hits_for(q, frames) > 0)
    });
    assert!(!out.closed, "hazel closed the gtk leaf:\n{}", hazel.log());
    if let Some(first) = pings.first() {
        assert!(pong_for(first, &out.frames), "gtk's first Ping got no Pong");
    }
    let answered = pings.iter().filter(|p| pong_for(p, &out.frames)).count();
    assert_eq!(
        answered,
        pings.len(),
        "every gtk Ping gets our own Pong ({throttled} throttled: not flooded); {stats}"
    );
    let sha1: [u8; 20] = Sha1::digest(SHARED_CONTENT).into();
    for query in &queries {
        let hits: Vec<&(Frame, Descriptor)> = out
            .frames
            .iter()
            .filter(|(f, _)| {
                f.header.payload_type == PayloadType::QueryHit && f.header.id == query.header.id
            })
            .collect();
        let should_match = matching.iter().any(|m| m.header.id == query.header.id);
        assert_eq!(
            !hits.is_empty(),
            should_match,
            "Query {:?}: a hit exactly when its words are in {shared:?}",
            query.decode().map(|d| d.payload)
        );
        for (frame, descriptor) in hits {
            assert_eq!(frame.header.hops, 0);
            assert_eq!(
                frame.header.ttl,
                query.header.hops + 1,
                "TTL = query hops + 1"
            );
            let Payload::QueryHit(hit) = &descriptor.payload else {
                panic!("not a QueryHit");
            };
            assert!(hit.results.iter().any(|r| r.name == shared.as_bytes()
                && r.extensions
                    .iter()
                    .any(|e| matches!(e, Extension::Urn(u) if u.sha1() == Some(sha1)))));
        }
    }
    let leaf_ids: BTreeSet<(DescriptorId, u8, Vec<u8>)> = before_bye
        .iter()
        .filter(|f| !f.header.payload_type.is_known())
        .map(|f| {
            (
                f.header.id,
                f.header.payload_type.to_u8(),
                f.payload().to_vec(),
            )
        })
        .collect();
    assert!(
        out.frames.iter().all(|(f, _)| !leaf_ids.contains(&(
            f.header.id,
            f.header.payload_type.to_u8(),
            f.payload().to_vec()
        ))),
        "hazel echoed a QRP/vendor/HSEP message: {:?}",
        out.frames
            .iter()
            .filter(|(f, _)| {
                leaf_ids.contains(&(
                    f.header.id,
                    f.header.payload_type.to_u8(),
                    f.payload().to_vec(),
                ))
            })
            .map(|(f, _)| f.header)
            .collect::<Vec<_>>()
    );
    println!(
        "leaf stream {stream}: {} pieces, {} descriptors before the Bye {expected:?}; \
         {answered} of {} Pings answered, {throttled} throttled; {} of {} Queries matched; \
         hazel sent {} descriptors",
        leaf.pieces.len(),
        before_bye.len(),
        pings.len(),
        matching.len(),
        queries.len(),
        out.frames.len()
    );

    // The rest, with the Bye: hazel closes and keeps running.
    for piece in &leaf.pieces[bye_piece..] {
        send(&mut gtk, piece, "the captured pieces with the Bye");
    }
    out.read_until(&mut gtk, WAIT, |_| false);
    assert!(out.closed, "hazel kept the link open after gtk's Bye");
    out.assert_whole();
    let gone = wait_until(WAIT, || hazel.established() == 0);
    assert!(gone, "peers still lists gtk: {}", hazel.must("peers"));
    let stats = hazel.stats();
    assert_eq!(
        received_total(&stats),
        leaf.descriptors.len() as u64,
        "{stats}"
    );
    assert_eq!(num(&stats, "received.bye"), 1);
}

#[test]
fn gtk_leaf_link_94_replays() {
    replay_leaf(94);
}

#[test]
fn gtk_leaf_link_95_replays() {
    replay_leaf(95);
}

#[test]
fn gtk_leaf_link_122_replays() {
    replay_leaf(122);
}

/// A gtk-gnutella ultrapeer routes a Query to a leaf only once the leaf has
/// sent its query routing table (QRP 0x30: a reset, then patches): gtk's
/// `qrt_build_query_target()` skips leaves with no table. The captured gtk
/// leaf sent its table at once on every link (3 resets, 6 patches), which
/// is why the "periscope" Queries reached it. hazel, as a leaf, sends a
/// RESET and zlib PATCHes whose table holds its shared name's words and
/// (once hashed, as a diff patch) its file's `urn:sha1:`.
#[test]
fn leaf_sends_its_query_routing_table_to_the_ultrapeer() {
    let capture = ndpi_capture();
    let link = CapturedLink::from_capture(&capture, 94);
    let leaf_qrp = client_frames(&capture, 94)
        .iter()
        .filter(|f| f.header.payload_type == PayloadType::Other(0x30))
        .count();
    assert!(leaf_qrp >= 2, "the captured gtk leaf sent its QRP table");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_addr = listener.local_addr().expect("addr").to_string();
    let hazel = Servent::start(
        "hazel-qrp",
        &["--connect", &up_addr, "--peers", "1"],
        &[(SHARED_NAME, SHARED_CONTENT)],
    );
    let mut up = accept_within(&listener, WAIT);
    let connect = read_block(&mut up);
    send(&mut up, &link.server_ok, "the captured 200 OK");
    let _third = read_block(&mut up);
    hazel.wait_established(1);
    send(&mut up, &link.pieces[0], "captured piece 0");

    let mut out = HazelOutput::new("to the ultrapeer", true);
    let sha1: [u8; 20] = Sha1::digest(SHARED_CONTENT).into();
    let urn = format!("urn:sha1:{}", data_encoding::BASE32_NOPAD.encode(&sha1));
    // What a gtk ultrapeer would hold after applying hazel's QRP messages.
    let ultrapeer_table = |frames: &[(Frame, Descriptor)]| {
        let mut rx = QrpReceiver::new();
        for (f, _) in frames
            .iter()
            .filter(|(f, _)| f.header.payload_type == PayloadType::Other(PAYLOAD_TYPE))
        {
            let msg = QrpMessage::decode(f.bytes.get(23..).unwrap_or_default())
                .unwrap_or_else(|e| panic!("hazel sent an undecodable QRP message: {e}"));
            rx.apply(&msg)
                .unwrap_or_else(|e| panic!("hazel's QRP does not apply: {e}"));
        }
        rx.table().cloned()
    };
    let routed = |frames: &[(Frame, Descriptor)]| {
        ultrapeer_table(frames).is_some_and(|t| {
            ["periscope", "trailer", "avi", "peri", urn.as_str()]
                .iter()
                .all(|w| t.contains_word(w))
        })
    };
    let sent_table = out.read_until(&mut up, Duration::from_secs(10), routed);
    let table = ultrapeer_table(&out.frames);
    assert!(
        sent_table,
        "hazel's QRP table does not cover its share in 10 s (CONNECT offered {:?}); it sent {:?}",
        String::from_utf8_lossy(&connect),
        out.frames
            .iter()
            .map(|(f, _)| f.header.payload_type)
            .collect::<Vec<_>>()
    );
    let table = table.expect("a table");
    assert_eq!(
        (table.slots(), table.infinity()),
        (16384, 2),
        "as gtk's leaf"
    );
    assert!(!table.contains_word("walnut"), "only shared words");
    assert_eq!(num(&hazel.stats(), "forwarded.other"), 0);
}

/// The links replayed above are exactly the capture's Gnutella 0.6 links
/// that were established with deflate both ways (no TLS upgrade, not G2),
/// and their ultrapeers are gtk-gnutella.
#[test]
fn replayed_links_are_the_captured_gtk_deflate_links() {
    let capture = ndpi_capture();
    let mut found = Vec::new();
    for tcp in &capture.tcp {
        let c2s = tcp.half(hazel_protocol::pcap::Direction::ClientToServer);
        let s2c = tcp.half(hazel_protocol::pcap::Direction::ServerToClient);
        if !c2s.bytes.starts_with(b"GNUTELLA CONNECT/0.6")
            || !s2c.bytes.starts_with(b"GNUTELLA/0.6")
        {
            continue;
        }
        let (client, _) = handshake_blocks(&c2s.bytes);
        let (server, _) = handshake_blocks(&s2c.bytes);
        let (Some(step2), Some(step3)) = (server.first(), client.get(1)) else {
            continue;
        };
        let (step2, step3) = (parse_block(step2), parse_block(step3));
        let (Some(h2), Some(h3)) = (step2.headers(), step3.headers()) else {
            continue;
        };
        let g2 = |h: &hazel_protocol::handshake::Headers| {
            h.get("Content-Type")
                .is_some_and(|v| v.eq_ignore_ascii_case("application/x-gnutella2"))
        };
        if step2.code() == Some(200)
            && step3.code() == Some(200)
            && h2.content_deflate()
            && h3.content_deflate()
            && !h3.has_token("Connection", "Upgrade")
            && !g2(h2)
            && !g2(h3)
        {
            assert!(
                h2.user_agent()
                    .is_some_and(|ua| ua.starts_with("gtk-gnutella/")),
                "stream {}: {:?}",
                tcp.info.id,
                h2.user_agent()
            );
            found.push(tcp.info.id);
        }
    }
    assert_eq!(found, DEFLATE_LINKS);
}
