//! Conformance of the HTTP-head parsers against `ppa1e-bearshare-get-2001.expected.jsonl`: the
//! five BearShare 2.2.6 download requests and the five answers of July 2001 (raw spaces in the
//! path, `Referrer:`, `Range: bytes=N-`, the version-less `HTTP 503 Server Busy`, a request split
//! over two TCP segments), plus the "No listener" payloads of data-bearing RSTs.
//!
//! Every request is fed segment by segment as it arrived (stream 82: 30 + 121 bytes): each
//! partial buffer must ask for more, the whole one must parse. Expected values come from the
//! record (its first line and header list), not from the parser.
//!
//! The traces live outside the repository: `$HAZEL_TRACES` or `../shared/traces` relative to the
//! workspace root. A missing trace fails the test; it never passes vacuously.

use hazel_protocol::giv::Giv;
use hazel_protocol::handshake::Handshake;
use hazel_protocol::http::{ByteRange, HttpVersion, Method, Parsed, Request, Resource, Response};
use hazel_protocol::traces;
use serde_json::Value;

fn load_records(name: &str) -> Vec<Value> {
    let text = String::from_utf8(traces::read(name)).expect("trace file is UTF-8");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON record per line"))
        .collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    let pairs = hex.as_bytes().chunks_exact(2);
    assert!(pairs.remainder().is_empty(), "odd hex length");
    pairs
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ASCII hex");
            u8::from_str_radix(pair, 16).expect("hex digits")
        })
        .collect()
}

/// The record's header list as (name, value) pairs.
fn record_headers(rec: &Value) -> Vec<(String, String)> {
    rec["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().expect("name").to_string(),
                pair[1].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

fn segment_lengths(rec: &Value) -> Vec<usize> {
    rec["segment_lengths"]
        .as_array()
        .expect("segment_lengths")
        .iter()
        .map(|n| n.as_u64().expect("length") as usize)
        .collect()
}

#[test]
fn bearshare_requests() {
    let records = load_records("ppa1e-bearshare-get-2001.expected.jsonl");
    let mut requests = 0;
    let mut split = 0;
    for rec in records.iter().filter(|r| r["kind"] == "http_request") {
        let stream = rec["stream"].as_u64().expect("stream");
        let raw = unhex(rec["raw_hex"].as_str().expect("raw_hex"));

        // Feed the bytes as the segments delivered them.
        let segments = segment_lengths(rec);
        assert_eq!(segments.iter().sum::<usize>(), raw.len(), "stream {stream}");
        let mut have = 0;
        for (i, len) in segments.iter().enumerate() {
            have += len;
            let parsed = Request::parse(&raw[..have])
                .unwrap_or_else(|e| panic!("stream {stream}: after segment {i}: {e}"));
            if have < raw.len() {
                assert_eq!(parsed, Parsed::NeedMore, "stream {stream} segment {i}");
                split += 1;
            }
        }
        let (req, used) = Request::parse(&raw).unwrap().complete().expect("complete");
        assert_eq!(used, raw.len() - rec["body_len"].as_u64().unwrap() as usize);

        // Method, target and version from the record's first line: the method is the first
        // word, the version the last, the target everything between (spaces included).
        let first_line = rec["first_line"].as_str().expect("first_line");
        let (method, rest) = first_line.split_once(' ').unwrap();
        let (target, version) = rest.rsplit_once(' ').unwrap();
        assert_eq!(req.method.as_str(), method, "stream {stream}");
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.target, target.as_bytes(), "stream {stream}");
        assert_eq!(req.version.to_string(), version, "stream {stream}");
        assert_eq!(req.version, HttpVersion::HTTP_10);

        // /get/<index>/<name>, with the name's raw spaces kept.
        let (index, name) = target
            .strip_prefix("/get/")
            .and_then(|t| t.split_once('/'))
            .expect("a /get/ target");
        assert_eq!(
            req.resource(),
            Resource::File {
                index: index.parse().unwrap(),
                name: name.as_bytes().to_vec()
            },
            "stream {stream}"
        );

        // Headers in order, with the original spelling (`Referrer`).
        let got: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        assert_eq!(got, record_headers(rec), "stream {stream}");
        assert!(req.keep_alive(), "Connection: Keep-Alive on HTTP/1.0");

        // Range: bytes=N-
        let range_value = record_headers(rec)
            .into_iter()
            .find(|(n, _)| n == "Range")
            .map(|(_, v)| v)
            .expect("a Range header");
        let from: u64 = range_value
            .strip_prefix("bytes=")
            .and_then(|v| v.strip_suffix('-'))
            .expect("bytes=N-")
            .parse()
            .unwrap();
        assert_eq!(req.range(), Some(Ok(ByteRange::From { first: from })));

        assert_eq!(req.to_bytes(), raw, "stream {stream}: re-encoding");
        requests += 1;
    }
    println!("bearshare requests: {requests} parsed, {split} partial buffers answered NeedMore");
    assert_eq!(requests, 5);
    assert_eq!(split, 1, "stream 82 arrives in two segments");
}

#[test]
fn stream_82_split_after_30_bytes() {
    let records = load_records("ppa1e-bearshare-get-2001.expected.jsonl");
    let rec = records
        .iter()
        .find(|r| r["kind"] == "http_request" && r["stream"] == 82)
        .expect("stream 82 request");
    assert_eq!(segment_lengths(rec), [30, 121]);
    let raw = unhex(rec["raw_hex"].as_str().unwrap());
    assert_eq!(&raw[..30], b"GET /get/24/Sorority Sex Kitte");
    assert_eq!(Request::parse(&raw[..30]), Ok(Parsed::NeedMore));
    let (req, _) = Request::parse(&raw).unwrap().complete().unwrap();
    assert_eq!(
        req.resource(),
        Resource::File {
            index: 24,
            name: b"Sorority Sex Kittens (xxx).asf".to_vec()
        }
    );
    assert_eq!(req.range(), Some(Ok(ByteRange::From { first: 1_221_030 })));
}

#[test]
fn bearshare_responses() {
    let records = load_records("ppa1e-bearshare-get-2001.expected.jsonl");
    let mut responses = 0;
    let mut versionless = 0;
    for rec in records.iter().filter(|r| r["kind"] == "http_response") {
        let stream = rec["stream"].as_u64().expect("stream");
        let raw = unhex(rec["raw_hex"].as_str().expect("raw_hex"));
        let (resp, used) = Response::parse(&raw)
            .unwrap_or_else(|e| panic!("stream {stream}: {e}"))
            .complete()
            .expect("complete head");
        let body_len = rec["body_len"].as_u64().unwrap() as usize;
        assert_eq!(
            raw.len() - used,
            body_len,
            "stream {stream}: body left alone"
        );
        let first_line = rec["first_line"].as_str().unwrap();
        assert_eq!(resp.status_line(), first_line, "stream {stream}");

        // Status from the record's first line: `HTTP/1.0 503 ...` or version-less `HTTP 503 ...`.
        let (version, rest) = first_line.split_once(' ').unwrap();
        let (code, reason) = rest.split_once(' ').unwrap();
        assert_eq!(resp.code.to_string(), code);
        assert_eq!(resp.reason, reason);
        if version == "HTTP" {
            // tshark does not even see this as HTTP (its record fields are empty).
            assert_eq!(resp.version, None, "stream {stream}");
            assert_eq!(rec["tshark_http"]["code"], "");
            versionless += 1;
        } else {
            assert_eq!(
                resp.version.map(|v| v.to_string()).as_deref(),
                Some(version)
            );
            assert_eq!(rec["tshark_http"]["code"], code);
        }
        let got: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        assert_eq!(got, record_headers(rec), "stream {stream}");
        assert_eq!(
            resp.to_bytes(),
            &raw[..used],
            "stream {stream}: re-encoding"
        );
        for cut in 0..used {
            assert_eq!(
                Response::parse(&raw[..cut]),
                Ok(Parsed::NeedMore),
                "stream {stream}: prefix {cut}"
            );
        }
        responses += 1;
    }
    println!("bearshare responses: {responses} parsed, {versionless} without an HTTP version");
    assert_eq!(responses, 5);
    assert_eq!(versionless, 2);
}

#[test]
fn rst_payloads_are_not_mistaken_for_protocol_heads() {
    let records = load_records("ppa1e-bearshare-get-2001.expected.jsonl");
    let mut rst = 0;
    for rec in records.iter().filter(|r| r["kind"] == "tcp_payload_in_rst") {
        let raw = unhex(rec["payload_hex"].as_str().unwrap());
        assert_eq!(raw, rec["payload_ascii"].as_str().unwrap().as_bytes());
        assert!(Request::parse(&raw).is_err(), "{raw:?} as a request");
        assert!(Response::parse(&raw).is_err(), "{raw:?} as a response");
        assert!(Handshake::parse(&raw).is_err(), "{raw:?} as a handshake");
        assert!(Giv::parse(&raw).is_err(), "{raw:?} as a GIV");
        rst += 1;
    }
    println!("RST payloads rejected by every head parser: {rst}");
    assert_eq!(rst, 3);
}
