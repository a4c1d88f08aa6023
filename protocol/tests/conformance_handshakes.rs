//! Every handshake block and HTTP head in the real captures, found by
//! reading the reassembled TCP streams with Hazel's own parsers, against the
//! blocks tshark's "follow stream" shows (`*.handshakes.jsonl`, the ppa
//! `expected.jsonl`). Each block is also re-encoded and compared byte for byte.

mod conformance_traces;

use std::collections::BTreeMap;

use conformance_traces::*;
use hazel_protocol::handshake::Parsed;
use hazel_protocol::http::{Request, Response};
use hazel_protocol::pcap::{read_capture, Direction, TcpStream};
use serde_json::Value;

/// A block as the expected file stores it: without its final blank line.
fn without_blank_line(raw: &[u8]) -> String {
    let s = String::from_utf8(raw.to_vec()).expect("handshake blocks in this trace are ASCII");
    s.strip_suffix("\r\n\r\n")
        .expect("0.6 blocks end in CRLF CRLF")
        .to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn ndpi_every_handshake_block_matches() {
    let pcap = read_trace(&format!("{NDPI}.pcap"));
    let c = read_capture(&pcap).expect("ndpi trace opens");
    let expected: BTreeMap<u64, Value> = read_jsonl(&format!("{NDPI}.handshakes.jsonl"))
        .into_iter()
        .map(|v| (v["stream"].as_u64().unwrap(), v))
        .collect();
    assert_eq!(expected.len(), 55);

    let (mut blocks_checked, mut http_heads, mut found) = (0, 0, Vec::new());
    let mut compressed_links = Vec::new();
    for s in &c.tcp {
        let id = u64::from(s.info.id);
        let c2s = &s.half(Direction::ClientToServer).bytes;
        let s2c = &s.half(Direction::ServerToClient).bytes;
        if c2s.starts_with(b"GNUTELLA") {
            found.push(id);
            let e = expected
                .get(&id)
                .unwrap_or_else(|| panic!("stream {id}: handshake not in expected file"));
            assert_eq!(e["kind"], "gnutella-handshake");
            let client = handshake_blocks(c2s);
            let server = handshake_blocks(s2c);
            let got_c: Vec<String> = client
                .iter()
                .map(|(raw, _)| without_blank_line(raw))
                .collect();
            let got_s: Vec<String> = server
                .iter()
                .map(|(raw, _)| without_blank_line(raw))
                .collect();
            assert_eq!(
                got_c,
                strings(&e["client_blocks"]),
                "client blocks of stream {id}"
            );
            assert_eq!(
                got_s,
                strings(&e["server_blocks"]),
                "server blocks of stream {id}"
            );
            for (raw, parsed) in client.iter().chain(&server) {
                assert_eq!(
                    &parsed.to_bytes(),
                    raw,
                    "stream {id}: re-encoded block differs"
                );
                blocks_checked += 1;
            }
            let status = server.first().map(|(_, h)| h.start_line());
            assert_eq!(
                status.as_deref(),
                e["status"].as_str(),
                "status of stream {id}"
            );
            let l = link(&client, &server);
            assert_eq!(
                l.as_ref().is_some_and(|l| l.established),
                e["established"] == true,
                "stream {id}"
            );
            if let Some(l) = l.filter(|l| l.established) {
                assert_eq!(
                    l.tls_upgrade,
                    e["tls_upgrade"] == true,
                    "tls_upgrade of stream {id}"
                );
                assert_eq!(
                    l.c2s_deflate,
                    e["c2s_deflate"] == true,
                    "c2s_deflate of stream {id}"
                );
                assert_eq!(
                    l.s2c_deflate,
                    e["s2c_deflate"] == true,
                    "s2c_deflate of stream {id}"
                );
                assert_eq!(l.g2, e["g2"] == true, "g2 of stream {id}");
                if l.c2s_deflate && l.s2c_deflate && !l.tls_upgrade && !l.g2 {
                    compressed_links.push(id);
                }
            }
        } else if let Ok(Parsed::Complete {
            message: req,
            consumed,
        }) = Request::parse(c2s)
        {
            found.push(id);
            let e = expected
                .get(&id)
                .unwrap_or_else(|| panic!("stream {id}: HTTP head not in expected file"));
            assert_eq!(e["kind"], "http");
            assert_eq!(
                vec![without_blank_line(&c2s[..consumed])],
                strings(&e["request"]),
                "request of stream {id}"
            );
            assert_eq!(
                req.to_bytes(),
                &c2s[..consumed],
                "stream {id}: re-encoded request differs"
            );
            let Ok(Parsed::Complete {
                message: resp,
                consumed,
            }) = Response::parse(s2c)
            else {
                panic!("stream {id}: no response head");
            };
            assert_eq!(
                vec![without_blank_line(&s2c[..consumed])],
                strings(&e["response"]),
                "response of stream {id}"
            );
            assert_eq!(
                resp.to_bytes(),
                &s2c[..consumed],
                "stream {id}: re-encoded response differs"
            );
            http_heads += 2;
        }
    }
    let want: Vec<u64> = expected.keys().copied().collect();
    assert_eq!(found, want, "streams with handshakes or HTTP heads");
    println!(
        "ndpi: {} streams with handshakes/HTTP ({blocks_checked} handshake blocks, {http_heads} HTTP heads) match and re-encode byte-exact; deflate links {compressed_links:?}",
        found.len()
    );
    assert_eq!(compressed_links, vec![94, 95, 122]);
}

fn expected_by_stream(records: &[Value], kind: &str) -> BTreeMap<u64, Value> {
    records
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| (r["stream"].as_u64().unwrap(), r.clone()))
        .collect()
}

fn headers_json(h: &hazel_protocol::handshake::Headers) -> Vec<(String, String)> {
    h.iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn ppa_http_requests_and_responses_match() {
    let pcap = read_trace(&format!("{PPA}.pcap"));
    let c = read_capture(&pcap).expect("ppa trace opens");
    let records = read_jsonl(&format!("{PPA}.expected.jsonl"));
    let requests = expected_by_stream(&records, "http_request");
    let responses = expected_by_stream(&records, "http_response");
    let (mut n_req, mut n_resp) = (0, 0);
    for s in &c.tcp {
        let id = u64::from(s.info.id);
        check_request(s, requests.get(&id), &mut n_req);
        check_response(s, responses.get(&id), &mut n_resp);
    }
    println!("ppa: {n_req} HTTP requests and {n_resp} responses match and re-encode byte-exact");
    assert_eq!((n_req, n_resp), (5, 5));
}

fn check_request(s: &TcpStream, e: Option<&Value>, n: &mut usize) {
    let id = s.info.id;
    let bytes = &s.half(Direction::ClientToServer).bytes;
    let parsed = Request::parse(bytes);
    let Some(e) = e else {
        assert!(
            !matches!(parsed, Ok(Parsed::Complete { .. })),
            "stream {id}: unexpected request"
        );
        return;
    };
    // Stream 82's request arrives as 30 + 121 bytes: the first segment alone is "need more".
    let first = s.half(Direction::ClientToServer).segments[0].len;
    if e["segment_lengths"].as_array().unwrap().len() > 1 {
        assert_eq!(
            Request::parse(&bytes[..first]),
            Ok(Parsed::NeedMore),
            "stream {id}"
        );
    }
    let Ok(Parsed::Complete {
        message: req,
        consumed,
    }) = parsed
    else {
        panic!("stream {id}: request does not parse: {parsed:?}");
    };
    let raw = unhex(e["raw_hex"].as_str().unwrap());
    assert_eq!(&bytes[..consumed], &raw[..], "stream {id}: request bytes");
    // tshark splits the line at the first space inside the path; Hazel takes the
    // method from the first word and the version from the last.
    let line = format!(
        "{} {} {}",
        req.method.as_str(),
        String::from_utf8_lossy(&req.target),
        req.version
    );
    assert_eq!(line, e["first_line"].as_str().unwrap(), "stream {id}");
    assert_eq!(
        headers_json(&req.headers),
        pairs(&e["headers"]),
        "stream {id}"
    );
    assert_eq!(
        req.to_bytes(),
        raw,
        "stream {id}: re-encoded request differs"
    );
    *n += 1;
}

fn check_response(s: &TcpStream, e: Option<&Value>, n: &mut usize) {
    let id = s.info.id;
    let bytes = &s.half(Direction::ServerToClient).bytes;
    let Some(e) = e else {
        return;
    };
    let Ok(Parsed::Complete {
        message: resp,
        consumed,
    }) = Response::parse(bytes)
    else {
        panic!("stream {id}: response does not parse");
    };
    let raw = unhex(e["raw_hex"].as_str().unwrap());
    assert_eq!(
        bytes.as_slice(),
        &raw[..],
        "stream {id}: response bytes (head and body)"
    );
    // "HTTP 503 Server Busy" has no version; tshark does not see a response at all there.
    assert_eq!(
        resp.status_line(),
        e["first_line"].as_str().unwrap(),
        "stream {id}"
    );
    assert_eq!(
        headers_json(&resp.headers),
        pairs(&e["headers"]),
        "stream {id}"
    );
    assert_eq!(
        bytes.len() - consumed,
        e["body_len"].as_u64().unwrap() as usize,
        "stream {id}: body length"
    );
    assert_eq!(
        resp.to_bytes(),
        &raw[..consumed],
        "stream {id}: re-encoded head differs"
    );
    *n += 1;
}
