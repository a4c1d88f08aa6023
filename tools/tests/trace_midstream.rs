//! `hazel-trace` on Gnutella links whose capture did not start with the
//! connection: started late (no handshake), started inside a descriptor,
//! or missing segments in the middle. Descriptor streams are recognised by
//! their content (a run of plausible headers that line up) and decoding
//! resynchronises after a gap; compressed links captured mid-stream are
//! named, not decoded into garbage; and bytes that are not descriptors
//! (random, TLS, text, zeros) on port 6346 are not taken for descriptors.

mod support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hazel_protocol::descriptor::{
    Descriptor, HitResult, Payload, Ping, Pong, Push, QhdFlags, QhdTrailer, Query, QueryHit,
    ServentId, SpeedField,
};
use hazel_protocol::header::DescriptorId;
use hazel_protocol::pcap::writer::PcapWriter;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use support::*;

/// A mixed set of descriptors, each with its own id (byte 0 = `n`).
fn descriptors(first: u8, count: u8) -> Vec<Vec<u8>> {
    (first..first + count)
        .map(|n| {
            let payload = match n % 6 {
                0 => Payload::Query(Query::new(SpeedField::flags(0), format!("query {n}"))),
                1 => Payload::Pong(Pong {
                    port: 6346,
                    ip: Ipv4Addr::new(10, 0, 0, n),
                    files: u32::from(n),
                    kbytes: 1000,
                    ggep: None,
                }),
                2 => Payload::Ping(Ping { ggep: None }),
                3 => Payload::QueryHit(QueryHit {
                    port: 6346,
                    ip: Ipv4Addr::new(192, 0, 2, n),
                    speed: 100,
                    results: vec![HitResult {
                        index: u32::from(n),
                        size: 4_000_000,
                        name: format!("song number {n}.mp3").into_bytes(),
                        extensions: Vec::new(),
                    }],
                    trailer: Some(QhdTrailer::new(*b"GTKG", QhdFlags::default(), Vec::new())),
                    servent_id: ServentId([n; 16]),
                }),
                4 => Payload::Push(Push {
                    servent_id: ServentId([0x55; 16]),
                    file_index: u32::from(n),
                    ip: Ipv4Addr::new(10, 1, 1, n),
                    port: 6346,
                    ggep: None,
                }),
                _ => Payload::Unknown {
                    payload_type: 0x31,
                    bytes: b"GTKG\x15\x00\x01\x00\x00\x00".to_vec(),
                },
            };
            let mut id = [0u8; 16];
            id[0] = n;
            id[1] = 0xd5;
            Descriptor {
                id: DescriptorId::modern(id),
                ttl: 4,
                hops: 2,
                payload,
            }
            .to_bytes()
        })
        .collect()
}

fn id_of(descriptor: &[u8]) -> String {
    descriptor[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The descriptor ids decoded per direction, keyed by the sending address.
fn ids_by_sender(records: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut by = BTreeMap::new();
    for r in records.iter().filter(|r| r["kind"] == "descriptor") {
        by.entry(r["src"].as_str().unwrap().to_string())
            .or_insert_with(Vec::new)
            .push(r["id"].as_str().unwrap().to_string());
    }
    by
}

fn records_of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

#[test]
fn late_capture_of_a_plain_link_is_recognised_by_content() {
    let from_client = descriptors(10, 6);
    let from_server = descriptors(40, 5);
    let mut segments: Vec<(bool, &[u8])> = Vec::new();
    // Interleaved, one descriptor per segment except two that share one.
    let joined = [from_server[3].clone(), from_server[4].clone()].concat();
    segments.push((true, &from_client[0]));
    segments.push((false, &from_server[0]));
    segments.push((true, &from_client[1]));
    segments.push((true, &from_client[2]));
    segments.push((false, &from_server[1]));
    segments.push((false, &from_server[2]));
    segments.push((true, &from_client[3]));
    segments.push((false, &joined));
    segments.push((true, &from_client[4]));
    segments.push((true, &from_client[5]));
    let client = addr("10.0.0.1:50123");
    for server in [addr("10.0.0.2:6346"), addr("10.0.0.2:31337")] {
        let mut w = PcapWriter::new();
        w.tcp_midstream(client, server, &segments, &[]);
        let file = TempFile::new(&format!("late-plain-{}", server.port()), w.bytes());
        let mut runs = vec![hazel_trace(&["--json"], &file.0)];
        if server.port() == 6346 {
            runs.push(hazel_trace(&["--json", "--port", "6346"], &file.0));
        }
        for out in runs {
            assert_eq!(out.code, 0, "{}", out.stderr);
            let records = out.json();
            let ids = ids_by_sender(&records);
            assert_eq!(
                ids[&client.to_string()],
                from_client.iter().map(|d| id_of(d)).collect::<Vec<_>>(),
                "port {}: {}",
                server.port(),
                out.stdout
            );
            assert_eq!(
                ids[&server.to_string()],
                from_server.iter().map(|d| id_of(d)).collect::<Vec<_>>()
            );
            assert!(
                records.iter().all(|r| r.get("error").is_none()),
                "{}",
                out.stdout
            );
            // Each descriptor carries the frame that completed it, though it could only be
            // recognised a few frames later (no SYN: the first data segment is frame 1).
            let frame_of = |d: &[u8]| {
                records
                    .iter()
                    .find(|r| r["kind"] == "descriptor" && r["id"] == id_of(d).as_str())
                    .map(|r| r["frame"].as_u64().unwrap())
            };
            assert_eq!(frame_of(&from_client[0]), Some(1));
            assert_eq!(frame_of(&from_client[1]), Some(3));
            assert_eq!(frame_of(&from_server[0]), Some(2));
            assert_eq!(frame_of(&from_server[4]), Some(8));
            // Said once per direction: recognised by content, nothing skipped.
            let resyncs = records_of_kind(&records, "resync");
            assert_eq!(resyncs.len(), 2, "{}", out.stdout);
            for r in resyncs {
                assert_eq!(r["cause"], "capture_start");
                assert_eq!(r["skipped"], 0);
            }
            let summary = records.last().unwrap();
            assert_eq!(summary["descriptors"], 11);
        }
        let text = hazel_trace(&[], &file.0);
        println!("{}", text.stdout);
        assert!(text
            .stdout
            .contains("no handshake in the capture (it starts mid-connection)"));
        assert!(text.stdout.contains("QueryHit ttl=4 hops=2"));
    }
}

#[test]
fn capture_starting_inside_a_descriptor_skips_to_the_next_header() {
    let ds = descriptors(60, 8);
    // The capture starts 17 bytes before the end of the QueryHit (ds[3]): its start and the
    // three descriptors before it were never captured.
    let hit = &ds[3];
    let tail = &hit[hit.len() - 17..];
    let rest = ds[4..].concat();
    let (a, b) = rest.split_at(50);
    let segments: Vec<(bool, &[u8])> = vec![(true, tail), (true, a), (true, b)];
    let mut w = PcapWriter::new();
    w.tcp_midstream(
        addr("10.0.0.1:40001"),
        addr("10.0.0.9:6346"),
        &segments,
        &[],
    );
    let file = TempFile::new("inside", w.bytes());
    let out = hazel_trace(&["--json"], &file.0);
    assert_eq!(out.code, 0);
    let records = out.json();
    assert_eq!(
        descriptor_ids(&records),
        ds[4..].iter().map(|d| id_of(d)).collect::<Vec<_>>(),
        "{}",
        out.stdout
    );
    let resyncs = records_of_kind(&records, "resync");
    assert_eq!(resyncs.len(), 1, "reported once: {}", out.stdout);
    assert_eq!(resyncs[0]["skipped"], 17);
    assert_eq!(resyncs[0]["offset"], 17);
    let text = hazel_trace(&[], &file.0);
    println!("{}", text.stdout);
    assert!(
        text.stdout
            .contains("skipped the first 17 bytes (the capture starts inside a message)"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_gap_in_a_plain_link_is_reported_and_decoding_resumes() {
    let ds = descriptors(80, 9);
    // Segments: handshake, ds0, ds1, [ds2 + first 10 bytes of ds3] lost, rest of ds3, ds4..
    let lost_piece = [ds[2].clone(), ds[3][..10].to_vec()].concat();
    let after = ds[3][10..].to_vec();
    let tail = ds[4..].concat();
    let segments: Vec<(bool, &[u8])> = vec![
        (true, b"GNUTELLA CONNECT/0.6\r\nUser-Agent: t\r\n\r\n"),
        (false, b"GNUTELLA/0.6 200 OK\r\nUser-Agent: u\r\n\r\n"),
        (true, b"GNUTELLA/0.6 200 OK\r\n\r\n"),
        (true, &ds[0]),
        (true, &ds[1]),
        (true, &lost_piece),
        (true, &after),
        (true, &tail),
    ];
    let mut w = PcapWriter::new();
    w.tcp_conversation_losing(
        addr("10.0.0.1:40002"),
        addr("10.0.0.3:6346"),
        &segments,
        &[5],
    );
    let file = TempFile::new("gap", w.bytes());
    let out = hazel_trace(&["--json"], &file.0);
    assert_eq!(out.code, 0);
    let records = out.json();
    let mut want: Vec<String> = ds[..2].iter().map(|d| id_of(d)).collect();
    want.extend(ds[4..].iter().map(|d| id_of(d)));
    assert_eq!(descriptor_ids(&records), want, "{}", out.stdout);
    let gaps = records_of_kind(&records, "gap");
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0]["len"], lost_piece.len());
    let resyncs = records_of_kind(&records, "resync");
    assert_eq!(resyncs.len(), 1, "{}", out.stdout);
    assert_eq!(resyncs[0]["cause"], "gap");
    assert_eq!(resyncs[0]["skipped"], after.len());
    let summary = records.last().unwrap();
    assert_eq!(summary["errors"], 0);
    let text = hazel_trace(&[], &file.0);
    println!("{}", text.stdout);
    assert!(text.stdout.contains(&format!(
        "resynchronised after the gap: skipped {} bytes",
        after.len()
    )));
}

/// The real capture's UDP descriptors (gtk-gnutella's Pings, Pongs, Queries and vendor
/// messages, as sent) laid end to end as one TCP direction on port 6346, and captured from
/// the middle of one of them, with one segment lost further on.
#[test]
fn real_descriptors_as_a_late_tcp_stream_with_a_lost_segment() {
    let expected = std::fs::read_to_string(trace("ndpi-gtkg-0.6-2022.expected.jsonl")).unwrap();
    let real: Vec<Vec<u8>> = expected
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "descriptor" && r["transport"] == "udp" && r["type"] != 0x44)
        .map(|r| unhex(r["raw_hex"].as_str().unwrap()))
        .collect();
    assert!(real.len() > 600, "{}", real.len());
    let stream = real.concat();
    // Where each descriptor starts in the stream.
    let mut starts = Vec::new();
    let mut at = 0;
    for d in &real {
        starts.push(at);
        at += d.len();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6346);
    let begin = starts[3] + 11; // inside the fourth descriptor
    let mut segments: Vec<(usize, usize)> = Vec::new();
    let mut pos = begin;
    while pos < stream.len() {
        let len = rng.gen_range(200..1400).min(stream.len() - pos);
        segments.push((pos, pos + len));
        pos += len;
    }
    let lost = segments.len() / 2;
    let (gap_start, gap_end) = segments[lost];
    let pieces: Vec<(bool, &[u8])> = segments
        .iter()
        .map(|&(a, b)| (true, &stream[a..b]))
        .collect();
    let mut w = PcapWriter::new();
    w.tcp_midstream(
        addr("10.0.2.15:28681"),
        addr("192.0.2.7:6346"),
        &pieces,
        &[lost],
    );
    let file = TempFile::new("real-late", w.bytes());
    let out = hazel_trace(&["--json"], &file.0);
    assert_eq!(out.code, 0);
    let records = out.json();
    // Every descriptor that starts after the capture's start and lies wholly before the
    // gap, then every one that starts after the gap.
    let want: Vec<String> = real
        .iter()
        .zip(&starts)
        .filter(|(d, &s)| (s >= begin && s + d.len() <= gap_start) || s >= gap_end)
        .map(|(d, _)| id_of(d))
        .collect();
    let got = descriptor_ids(&records);
    println!("{} of {} descriptors decoded", got.len(), real.len());
    assert_eq!(got, want);
    assert!(records.iter().all(|r| r.get("error").is_none()));
    let resyncs = records_of_kind(&records, "resync");
    assert_eq!(resyncs.len(), 2, "capture start and gap");
    let first_after_gap = *starts.iter().find(|&&s| s >= gap_end).unwrap();
    assert_eq!(resyncs[0]["skipped"], starts[4] - begin);
    assert_eq!(resyncs[1]["skipped"], first_after_gap - gap_end);
}

/// Stream 95 of the real capture is a deflate link. Cut so that the capture starts right
/// after the handshake, each direction starts with its zlib header and inflates as a whole;
/// cut anywhere later, it cannot be inflated and the output says so.
#[test]
fn real_deflate_link_captured_after_its_handshake() {
    let pcap = std::fs::read(trace("ndpi-gtkg-0.6-2022.pcap")).unwrap();
    let contents = hazel_protocol::pcap::read_capture(&pcap).unwrap();
    let s = &contents.tcp[95];
    // The client's CONNECT and third step, the server's answer: compressed bytes follow.
    let head_end = |bytes: &[u8], blocks: usize| {
        let mut at = 0;
        for _ in 0..blocks {
            at += bytes[at..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap()
                + 4;
        }
        at as u64
    };
    let client_bytes = &s.halves[0].bytes;
    let server_bytes = &s.halves[1].bytes;
    let starts = [head_end(client_bytes, 2), head_end(server_bytes, 1)];
    assert_eq!(client_bytes[starts[0] as usize], 0x78, "a zlib header");
    let expected =
        std::fs::read_to_string(trace("ndpi-gtkg-0.6-2022.inflated.expected.jsonl")).unwrap();
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in expected
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
    {
        if r["stream"] == 95 {
            want.entry(r["src"].as_str().unwrap().to_string())
                .or_default()
                .push(r["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(want.values().map(Vec::len).sum::<usize>(), 206);

    let file = TempFile::new("deflate-after-handshake", &cut_stream(&pcap, 95, starts));
    let out = hazel_trace(&["--json"], &file.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records = out.json();
    assert_eq!(ids_by_sender(&records), want, "{}", out.stdout);
    assert!(records.iter().all(|r| r.get("error").is_none()));
    let summary = records.last().unwrap();
    assert_eq!(summary["deflate_directions"], 2);

    // Cut 1000 bytes into the compressed bytes of each direction. Its ports are not
    // Gnutella's, so the user names one to hear about it; either way nothing is decoded.
    let later = [starts[0] + 1000, starts[1] + 1000];
    let file = TempFile::new("deflate-midstream", &cut_stream(&pcap, 95, later));
    for args in [&[][..], &["--port", "52367"][..]] {
        let out = hazel_trace(args, &file.0);
        assert_eq!(out.code, 0);
        println!("{}", out.stdout);
        out.assert_summary_has(&["; 0 descriptors", "2 TCP directions not recognised"]);
        assert!(!out.stdout.contains("MALFORMED"));
        let said = out
            .lines()
            .into_iter()
            .filter(|l| {
                l.contains("a deflate-compressed link captured after its start cannot be inflated")
            })
            .count();
        let want = if args.is_empty() { 0 } else { 2 };
        assert_eq!(said, want, "said once per direction: {}", out.stdout);
    }
}

/// Bytes that are not Gnutella descriptors, captured mid-connection on port 6346, are not
/// decoded as descriptors, and the output says what they look like.
#[test]
fn non_gnutella_bytes_on_the_gnutella_port_are_not_descriptors() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let random: Vec<u8> = (0..300_000).map(|_| rng.gen()).collect();
    let mut tls = Vec::new();
    while tls.len() < 200_000 {
        let len: u16 = rng.gen_range(100..16_384);
        tls.extend_from_slice(&[0x17, 0x03, 0x03]);
        tls.extend_from_slice(&len.to_be_bytes());
        tls.extend((0..len).map(|_| rng.gen::<u8>()));
    }
    let mut text = Vec::new();
    while text.len() < 100_000 {
        text.extend_from_slice(
            b"<tr><td class=\"name\">Pink Floyd - Time.mp3</td><td>4000000</td></tr>\r\n",
        );
    }
    // An HTTP response captured from the middle of its head.
    let http = [
        b"ontent-Type: text/html\r\nContent-Length: 100000\r\n\r\n".to_vec(),
        text[..60_000].to_vec(),
    ]
    .concat();
    let zeros = vec![0u8; 100_000];
    let cases: [(&str, &[u8], &str); 5] = [
        ("random", &random, "compressed or encrypted"),
        ("tls", &tls, "TLS records"),
        ("text", &text, "text"),
        ("http", &http, "text"),
        ("zeros", &zeros, "zeros"),
    ];
    let mut w = PcapWriter::new();
    for (i, (_, bytes, _)) in cases.iter().enumerate() {
        let pieces: Vec<(bool, &[u8])> = bytes.chunks(1460).map(|c| (true, c)).collect();
        w.tcp_midstream(
            addr(&format!("10.0.0.1:{}", 40100 + i)),
            addr("10.0.0.2:6346"),
            &pieces,
            &[],
        );
    }
    let file = TempFile::new("not-gnutella", w.bytes());
    for args in [&[][..], &["--port", "6346"][..]] {
        let out = hazel_trace(args, &file.0);
        assert_eq!(out.code, 0);
        println!("{}", out.stdout);
        out.assert_summary_has(&["; 0 descriptors"]);
        for (i, (name, _, looks)) in cases.iter().enumerate() {
            let notes: Vec<&str> = out
                .lines()
                .into_iter()
                .filter(|l| l.contains(&format!("tcp#{i} ")) && l.contains("not decoded"))
                .collect();
            assert_eq!(notes.len(), 1, "{name}: {}", out.stdout);
            assert!(
                notes[0].contains("no Gnutella handshake and no run of descriptor headers")
                    && notes[0].contains(looks),
                "{name}: {}",
                notes[0]
            );
        }
    }
}
