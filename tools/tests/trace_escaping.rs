//! Strings chosen by a peer never drive the terminal `hazel-trace` prints to:
//! QueryHit names, a QHD vendor code, a Query, a Bye reason, handshake and
//! HTTP headers, a GIV name and OpenNap fields holding terminal escapes
//! (`ESC ]2;…BEL` retitles, `ESC [2J` clears), a newline followed by a forged
//! line, the one-byte CSI U+009B and the right-to-left override U+202E are
//! shown escaped in the text output (stdout and stderr), and kept exact in
//! the `--json` output.

mod support;

use std::net::Ipv4Addr;

use hazel_protocol::descriptor::{
    Bye, Descriptor, HitResult, Payload, QhdFlags, QhdTrailer, Query, QueryHit, ServentId,
    SpeedField,
};
use hazel_protocol::header::DescriptorId;
use hazel_protocol::napster::{SearchResult, ServerMessage};
use hazel_protocol::pcap::writer::PcapWriter;
use hazel_protocol::text::is_unsafe;
use serde_json::Value;
use support::*;

const TITLE: &str = "\u{1b}]2;pwned\u{7}title.mp3";
const CLEAR: &str = "\u{1b}[2Jclear.mp3";
const FORGED: &str = "a.mp3\n  9999     0.000000 tcp#7 6.6.6.6:1 > 6.6.6.6:2 forged line";
const CSI: &str = "\u{9b}31mred.mp3";
const RLO: &str = "song\u{202e}3pm.exe";
const BYE: &str = "bye\u{1b}]2;x\u{7}\nforged\u{9b}2J\u{202e}";
const AGENT: &str = "Evil\u{202e}gpj.exe\u{200b}";
// The HTTP head parser refuses C0 and C1 controls in values; format characters pass.
const SERVER: &str = "Shareaza\u{202e}\u{200b}x";

/// A QueryHit naming `names` (a line shows the first three names of a hit).
fn hit(n: u8, names: &[&str]) -> Vec<u8> {
    Descriptor {
        id: DescriptorId::modern([n; 16]),
        ttl: 3,
        hops: 1,
        payload: Payload::QueryHit(QueryHit {
            port: 6346,
            ip: Ipv4Addr::new(192, 0, 2, 1),
            speed: 1,
            results: names
                .iter()
                .enumerate()
                .map(|(i, n)| HitResult {
                    index: i as u32,
                    size: 1000,
                    name: n.as_bytes().to_vec(),
                    extensions: Vec::new(),
                })
                .collect(),
            trailer: Some(QhdTrailer::new(
                *b"\x1b[2J",
                QhdFlags::default(),
                Vec::new(),
            )),
            servent_id: ServentId([2; 16]),
        }),
    }
    .to_bytes()
}

fn capture() -> Vec<u8> {
    let hits = [hit(1, &[TITLE, CLEAR, FORGED]), hit(2, &[CSI, RLO])].concat();
    let query = Descriptor {
        id: DescriptorId::modern([3; 16]),
        ttl: 3,
        hops: 1,
        payload: Payload::Query(Query::new(SpeedField::flags(0), TITLE)),
    }
    .to_bytes();
    let bye = Descriptor {
        id: DescriptorId::modern([4; 16]),
        ttl: 1,
        hops: 0,
        payload: Payload::Bye(Bye {
            code: 400,
            message: BYE.as_bytes().to_vec(),
        }),
    }
    .to_bytes();
    let connect =
        format!("GNUTELLA CONNECT/0.6\r\nUser-Agent: {AGENT}\r\nX-Ultrapeer: False\r\n\r\n");
    let ok = format!("GNUTELLA/0.6 200 OK\u{202e}\r\nUser-Agent: {AGENT}\r\n\r\n");
    let mut w = PcapWriter::new();
    w.tcp_conversation(
        addr("10.0.0.1:40000"),
        addr("10.0.0.2:6346"),
        &[
            (true, connect.as_bytes()),
            (false, ok.as_bytes()),
            (true, b"GNUTELLA/0.6 200 OK\r\n\r\n"),
            (true, &query),
            (false, &hits),
            (false, &bye),
        ],
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nContent-Range: bytes 0-0/1\u{202e}\r\nContent-Length: 1\r\n\r\nx"
    );
    let giv = format!("GIV 1:0123456789abcdef0123456789abcdef/{RLO}\n\n");
    w.tcp_conversation(
        addr("10.0.0.5:6346"),
        addr("10.0.0.1:6347"),
        &[(true, giv.as_bytes()), (true, response.as_bytes())],
    );
    let result = ServerMessage::SearchResult(SearchResult {
        name: format!("C:\\{RLO}").into_bytes(),
        md5: b"nomd5computed".to_vec(),
        size: 1,
        bitrate: 128,
        freq: 44100,
        duration: 1,
        nick: "bob".into(),
        ip: Ipv4Addr::new(127, 0, 0, 1),
        link_speed: 3,
        weight: None,
    })
    .to_bytes()
    .unwrap();
    w.tcp_conversation(
        addr("127.0.0.1:40001"),
        addr("127.0.0.1:8888"),
        &[(false, &result)],
    );
    w.into_bytes()
}

/// Every line of `text`, with what makes it unsafe.
fn unsafe_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.chars().any(is_unsafe))
        .map(|l| format!("{l:?}"))
        .collect()
}

#[test]
fn text_output_shows_network_strings_escaped() {
    let file = TempFile::new("escaping", &capture());
    let out = hazel_trace(&[], &file.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    println!("{}", out.stdout);
    assert_eq!(unsafe_lines(&out.stdout), Vec::<String>::new());
    assert_eq!(unsafe_lines(&out.stderr), Vec::<String>::new());
    // The forged line stays inside its record.
    assert!(
        !out.lines()
            .iter()
            .any(|l| l.trim_start().starts_with("9999")),
        "{}",
        out.stdout
    );
    let has = |needle: &str| out.stdout.contains(needle);
    for shown in [
        "\\e]2;pwned\\x07title.mp3",
        "\\e[2Jclear.mp3",
        "a.mp3\\n  9999     0.000000 tcp#7",
        "\\u{9b}31mred.mp3",
        "song\\u{202e}3pm.exe",
        "vendor=0x1b5b324a",
        "400 \"bye\\e]2;x\\x07\\nforged\\u{9b}2J\\u{202e}\"",
        "User-Agent: Evil\\u{202e}gpj.exe\\u{200b}",
        "handshake: GNUTELLA/0.6 200 OK\\u{202e}",
        "Server: Shareaza\\u{202e}\\u{200b}x",
        "Content-Range: bytes 0-0/1\\u{202e}",
        "name=\"song\\u{202e}3pm.exe\"",
        "C:\\\\song\\u{202e}3pm.exe",
    ] {
        assert!(has(shown), "missing {shown:?} in\n{}", out.stdout);
    }
}

#[test]
fn json_output_keeps_the_exact_strings() {
    let file = TempFile::new("escaping-json", &capture());
    let out = hazel_trace(&["--json"], &file.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // JSON escapes only: nothing a terminal acts on is written raw either.
    assert_eq!(unsafe_lines(&out.stdout), Vec::<String>::new());
    let records = out.json();
    let hits: Vec<&Value> = records
        .iter()
        .filter(|r| r["type_name"] == "QueryHit")
        .collect();
    let names: Vec<&str> = hits
        .iter()
        .flat_map(|hit| hit["queryhit"]["hits"].as_array().unwrap())
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [TITLE, CLEAR, FORGED, CSI, RLO]);
    assert_eq!(hits[0]["queryhit"]["trailer"]["vendor"], "\u{1b}[2J");
    let query = records.iter().find(|r| r["type_name"] == "Query").unwrap();
    assert_eq!(query["query"]["search"], TITLE);
    let bye = records.iter().find(|r| r["type_name"] == "Bye").unwrap();
    assert_eq!(bye["bye"]["message"], BYE);
    let header = |r: &Value, name: &str| -> Option<String> {
        r["headers"]
            .as_array()?
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_string())
    };
    let hs: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "handshake")
        .collect();
    assert_eq!(hs.len(), 3);
    assert_eq!(header(hs[0], "User-Agent").as_deref(), Some(AGENT));
    assert_eq!(hs[1]["start_line"], "GNUTELLA/0.6 200 OK\u{202e}");
    let response = records
        .iter()
        .find(|r| r["kind"] == "http_response")
        .unwrap();
    assert_eq!(header(response, "Server").as_deref(), Some(SERVER));
    let giv = records.iter().find(|r| r["kind"] == "giv").unwrap();
    assert_eq!(giv["name"], RLO);
    let nap = records.iter().find(|r| r["kind"] == "opennap").unwrap();
    assert!(nap["payload"]
        .as_str()
        .unwrap()
        .starts_with(&format!("\"C:\\{RLO}\"")));
}
