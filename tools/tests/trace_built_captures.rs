//! `hazel-trace` on captures built in the test (no real capture has them):
//! an OpenNap session, a Gnutella 0.4 link, a 0.6 link compressed with
//! deflate, and a push callback (GIV then GET).

mod support;

use std::io::Write;
use std::net::Ipv4Addr;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use hazel_protocol::descriptor::{Bye, Payload, Ping, Pong, Query, SpeedField};
use hazel_protocol::napster::{ClientMessage, Login, SearchQuery, SearchResult, ServerMessage};
use hazel_protocol::pcap::writer::PcapWriter;
use support::*;

/// A fresh descriptor (TTL 7, no hops yet).
fn fresh(n: u8, payload: Payload) -> Vec<u8> {
    descriptor(n, 7, 0, payload)
}

#[test]
fn opennap_session() {
    let login = ClientMessage::Login(Login {
        nick: "alice".into(),
        password: b"secret".to_vec(),
        port: 6699,
        client_info: b"TekNap 1.3g".to_vec(),
        link_speed: 3,
        build: None,
    })
    .to_bytes()
    .unwrap();
    let ack = ServerMessage::LoginAck {
        email: b"anon@localhost".to_vec(),
    }
    .to_bytes()
    .unwrap();
    let search = ClientMessage::Search(
        SearchQuery::parse(b"FILENAME CONTAINS \"floyd\" MAX_RESULTS 10").unwrap(),
    )
    .to_bytes()
    .unwrap();
    let result = ServerMessage::SearchResult(SearchResult {
        name: b"pink floyd - time.mp3".to_vec(),
        md5: b"nomd5computed".to_vec(),
        size: 4_000_000,
        bitrate: 128,
        freq: 44100,
        duration: 240,
        nick: "bob".into(),
        ip: Ipv4Addr::new(127, 0, 0, 1),
        link_speed: 3,
        weight: None,
    })
    .to_bytes()
    .unwrap();
    let end = ServerMessage::SearchEnd.to_bytes().unwrap();
    // Login and search in one segment, the result split across two.
    let mut first = login;
    first.extend_from_slice(&search);
    let mut w = PcapWriter::new();
    w.tcp_conversation(
        addr("127.0.0.1:40001"),
        addr("127.0.0.1:8888"),
        &[
            (true, &first),
            (false, &ack),
            (false, &result[..7]),
            (false, &result[7..]),
            (false, &end),
        ],
    );
    let file = TempFile::new("opennap", w.bytes());
    let out = hazel_trace(&[], &file.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let nap: Vec<&str> = out
        .lines()
        .into_iter()
        .filter(|l| l.contains(" OpenNap ") && !l.starts_with("summary:"))
        .collect();
    println!("{}", nap.join("\n"));
    assert_eq!(nap.len(), 5, "{}", out.stdout);
    assert!(nap[0].contains("127.0.0.1:40001 > 127.0.0.1:8888 OpenNap 2 login \"alice secret 6699"));
    assert!(
        nap[1].contains("OpenNap 200 search \"FILENAME CONTAINS \\\"floyd\\\" MAX_RESULTS 10\"")
    );
    assert!(nap[2].contains("OpenNap 3 login ack \"anon@localhost\""));
    assert!(
        nap[3].contains("OpenNap 201 search result") && nap[3].contains("pink floyd - time.mp3")
    );
    assert!(nap[4].contains("OpenNap 202 end of search"));
    assert!(!out.stdout.contains("MALFORMED"));
    assert!(out.summary().contains("OpenNap 5"), "{}", out.summary());
    let json = hazel_trace(&["--json"], &file.0).json();
    let types: Vec<u64> = json
        .iter()
        .filter(|r| r["kind"] == "opennap")
        .map(|r| r["type"].as_u64().unwrap())
        .collect();
    assert_eq!(types, vec![2, 200, 3, 201, 202]);
    assert_eq!(json[0]["message"], "Login");
}

#[test]
fn gnutella_04_link_and_a_deflate_06_link() {
    let query = fresh(1, Payload::Query(Query::new(SpeedField::flags(0), "floyd")));
    let pong = fresh(
        2,
        Payload::Pong(Pong {
            port: 6346,
            ip: Ipv4Addr::new(10, 0, 0, 9),
            files: 12,
            kbytes: 3400,
            ggep: None,
        }),
    );
    let mut w = PcapWriter::new();
    // 0.4: CONNECT / OK, then plain descriptors; the query split mid-header.
    w.tcp_conversation(
        addr("10.0.0.1:5001"),
        addr("10.0.0.2:6346"),
        &[
            (true, b"GNUTELLA CONNECT/0.4\n\n"),
            (false, b"GNUTELLA OK\n\n"),
            (true, &query[..10]),
            (true, &query[10..]),
            (false, &pong),
        ],
    );
    // 0.6 with deflate both ways: the descriptors travel compressed.
    let ping = fresh(3, Payload::Ping(Ping { ggep: None }));
    let bye = fresh(
        4,
        Payload::Bye(Bye {
            code: 200,
            message: b"Servent shutdown".to_vec(),
        }),
    );
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&ping).unwrap();
    z.write_all(&bye).unwrap();
    let compressed = z.finish().unwrap();
    let mut zs = ZlibEncoder::new(Vec::new(), Compression::default());
    zs.write_all(&pong).unwrap();
    let compressed_pong = zs.finish().unwrap();
    let (half1, half2) = compressed.split_at(compressed.len() / 2);
    w.tcp_conversation(
        addr("10.0.0.1:5002"),
        addr("10.0.0.3:6346"),
        &[
            (
                true,
                b"GNUTELLA CONNECT/0.6\r\nUser-Agent: test\r\nAccept-Encoding: deflate\r\n\r\n",
            ),
            (
                false,
                b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n",
            ),
            (
                true,
                b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n",
            ),
            (true, half1),
            (false, &compressed_pong),
            (true, half2),
        ],
    );
    let file = TempFile::new("gnutella", w.bytes());
    let out = hazel_trace(&[], &file.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    println!("{}", out.stdout);
    let lines = out.lines();
    let find = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(find("handshake: GNUTELLA CONNECT/0.4"), 1);
    assert_eq!(find("handshake: GNUTELLA OK"), 1);
    assert_eq!(
        find("tcp#0 10.0.0.1:5001 > 10.0.0.2:6346 Query ttl=7 hops=0"),
        1
    );
    assert_eq!(find("\"floyd\" flags=0x8000"), 1);
    assert_eq!(
        find("tcp#0 10.0.0.2:6346 > 10.0.0.1:5001 Pong ttl=7 hops=0"),
        1
    );
    assert_eq!(find("10.0.0.9:6346 files=12 kbytes=3400"), 2);
    assert_eq!(
        find("Content-Encoding: deflate — inflating this direction"),
        2
    );
    assert_eq!(find("tcp#1 10.0.0.1:5002 > 10.0.0.3:6346 Ping ttl=7"), 1);
    assert_eq!(
        find("tcp#1 10.0.0.1:5002 > 10.0.0.3:6346 Bye ttl=7 hops=0"),
        1
    );
    assert_eq!(find("200 \"Servent shutdown\""), 1);
    out.assert_summary_has(&["5 descriptors", "2 deflate directions inflated", "0 errors"]);
}

#[test]
fn push_callback_giv_then_http() {
    let mut w = PcapWriter::new();
    let giv = b"GIV 7:0123456789abcdef0123456789abcdef/file\n\n";
    w.tcp_conversation(
        addr("10.0.0.5:6346"),
        addr("10.0.0.1:6347"),
        &[
            (true, giv),
            (
                false,
                b"GET /get/7/song%20one.mp3 HTTP/1.1\r\nRange: bytes=0-\r\n\r\n",
            ),
            (true, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            (false, b"GET /get/7/song%20one.mp3 HTTP/1.1\r\n\r\n"),
            (false, b"HEAD /get/7/song%20one.mp3 HTTP/1.1\r\n\r\n"),
            (true, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            (true, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        ],
    );
    let file = TempFile::new("giv", w.bytes());
    let out = hazel_trace(&[], &file.0);
    assert_eq!(out.code, 0);
    println!("{}", out.stdout);
    let lines = out.lines();
    assert!(lines[0].contains("GIV index=7 servent=0123456789abcdef0123456789abcdef name=\"file\""));
    assert!(
        lines[1].contains("HTTP request: \"GET /get/7/song%20one.mp3 HTTP/1.1\" Range: bytes=0-")
    );
    assert!(lines[2].contains("HTTP response: \"HTTP/1.1 200 OK\" body=5"));
    assert!(lines[3].contains("HTTP request"));
    assert!(lines[4].contains("HTTP request: \"HEAD /get/7/song%20one.mp3 HTTP/1.1\""));
    assert!(lines[5].contains("HTTP response: \"HTTP/1.1 200 OK\" body=5"));
    // The answer to the HEAD has a length but no body: the head is found.
    assert!(lines[6].contains("HTTP response: \"HTTP/1.1 200 OK\""));
    assert!(!lines[6].contains("body="));
    assert!(!out.stdout.contains("stream ends inside"));
    assert!(
        out.summary()
            .contains("GIV 1, HTTP request 3, HTTP response 3"),
        "{}",
        out.summary()
    );
}

#[test]
fn refused_handshake_and_a_gap_are_reported() {
    let query = fresh(5, Payload::Query(Query::new(SpeedField::flags(0), "lost")));
    let ping = fresh(6, Payload::Ping(Ping { ggep: None }));
    let mut w = PcapWriter::new();
    // Refused: whatever the server sends after its 503 is not decoded.
    w.tcp_conversation(
        addr("10.0.0.1:5003"),
        addr("10.0.0.4:6346"),
        &[
            (true, b"GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: False\r\n\r\n"),
            (
                false,
                b"GNUTELLA/0.6 503 Busy\r\nX-Try-Ultrapeers: 10.9.9.9:6346\r\n\r\n",
            ),
            (false, b"junk after refusal"),
        ],
    );
    // A 0.4 link whose capture missed one segment (a Ping and the start of a
    // Query): the gap is shown, the descriptors before it are decoded, the
    // rest of the Query is skipped, and decoding resumes at the next header.
    let lost = [&ping[..], &query[..10]].concat();
    w.tcp_conversation_losing(
        addr("10.0.0.1:5004"),
        addr("10.0.0.5:6346"),
        &[
            (true, b"GNUTELLA CONNECT/0.4\n\n"),
            (false, b"GNUTELLA OK\n\n"),
            (true, &ping),
            (true, &lost),
            (true, &query[10..]),
            (true, &ping),
        ],
        &[3],
    );
    let file = TempFile::new("refused", w.bytes());
    let out = hazel_trace(&[], &file.0);
    assert_eq!(out.code, 0);
    println!("{}", out.stdout);
    let lines = out.lines();
    let has = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(has("handshake: GNUTELLA/0.6 503 Busy"), 1);
    assert_eq!(
        has("tcp#0 10.0.0.4:6346 > 10.0.0.1:5003 handshake did not establish a link"),
        1
    );
    assert_eq!(has("tcp#1 10.0.0.1:5004 > 10.0.0.5:6346 Ping"), 2);
    assert_eq!(has("gap: 33 bytes at offset 45 were not captured"), 1);
    assert_eq!(
        has("resynchronised after the gap: skipped 20 bytes to the next descriptor header"),
        1
    );
    assert_eq!(has("Query"), 0);
    assert!(out.summary().contains("1 gaps"), "{}", out.summary());
    assert!(
        out.summary()
            .contains("descriptors found by their headers 1 time (20 bytes skipped)"),
        "{}",
        out.summary()
    );
}

#[test]
fn opennap_data_port_get_and_push() {
    let mut w = PcapWriter::new();
    // Direct: the downloader connects; the sharer greets with "1".
    w.tcp_conversation(
        addr("127.0.0.1:40010"),
        addr("127.0.0.1:6699"),
        &[
            (false, b"1"),
            (true, b"GET"),
            (true, b"alice \"C:\\mp3\\song one.mp3\" 1024"),
            (false, b"4000"),
            (false, &[0xffu8; 100]),
        ],
    );
    // Firewalled: the sharer connects to the downloader and pushes.
    w.tcp_conversation(
        addr("127.0.0.1:40011"),
        addr("127.0.0.1:6700"),
        &[
            (false, b"1"),
            (true, b"SENDbob \"song.mp3\" 4000"),
            (false, b"0"),
            (true, &[0xeeu8; 300]),
        ],
    );
    let file = TempFile::new("napdata", w.bytes());
    let out = hazel_trace(&[], &file.0);
    assert_eq!(out.code, 0);
    println!("{}", out.stdout);
    let data: Vec<&str> = out
        .lines()
        .into_iter()
        .filter(|l| l.contains("OpenNap data port:"))
        .collect();
    assert_eq!(data.len(), 6, "{}", out.stdout);
    assert!(data[0].contains("127.0.0.1:6699 > 127.0.0.1:40010 OpenNap data port: greeting \"1\""));
    assert!(data[1].contains("GET nick=\"alice\" file=\"C:\\\\mp3\\\\song one.mp3\" offset=1024"));
    assert!(data[2].contains("OpenNap data port: size 4000"));
    assert!(data[3].contains("127.0.0.1:6700 > 127.0.0.1:40011 OpenNap data port: greeting"));
    assert!(data[4].contains("SEND nick=\"bob\" file=\"song.mp3\" size=4000"));
    assert!(data[5].contains("OpenNap data port: offset 0"));
    assert!(!out.stdout.contains("stream ends inside"));
    let json = hazel_trace(&["--json"], &file.0).json();
    assert_eq!(json.last().unwrap()["nap_data_bytes"], 400);
}
