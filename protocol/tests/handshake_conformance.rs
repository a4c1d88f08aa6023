//! Conformance of the handshake and HTTP-head parsers against the 55 records of
//! `ndpi-gtkg-0.6-2022.handshakes.jsonl` (real gtk-gnutella, Foxy, Shareaza and Phex traffic,
//! March 2022): 52 Gnutella 0.6 handshakes and 3 HTTP download exchanges.
//!
//! Each record stores every header block verbatim (CRLF kept) but without the blank line that
//! ends it; the tests append it, parse, and check what a peer would act on: the status line, the
//! deflate flags, the number of headers (a folded header counts once), the X-Try-Ultrapeers
//! addresses, and that re-encoding gives back the identical bytes.
//!
//! The traces live outside the repository: `$HAZEL_TRACES` or `../shared/traces` relative to the
//! workspace root. A missing trace fails the test; it never passes vacuously.

use hazel_protocol::handshake::{Handshake, Headers, Parsed};
use hazel_protocol::http::{ByteRange, ByteSpan, ContentRange, Request, Resource, Response};
use hazel_protocol::traces;
use serde_json::Value;

fn load_records(name: &str) -> Vec<Value> {
    let text = String::from_utf8(traces::read(name)).expect("trace file is UTF-8");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON record per line"))
        .collect()
}

/// The block as it was on the wire: the stored text plus the blank line.
fn wire_block(stored: &Value) -> Vec<u8> {
    let text = stored.as_str().expect("blocks are strings");
    format!("{text}\r\n\r\n").into_bytes()
}

/// Header count seen independently of the parser: lines after the first that do not start
/// with SP or TAB (continuations belong to the header above).
fn expected_header_count(block: &[u8]) -> usize {
    let text = std::str::from_utf8(block).expect("trace blocks are UTF-8");
    text.trim_end_matches("\r\n")
        .split("\r\n")
        .skip(1)
        .filter(|line| !line.starts_with([' ', '\t']))
        .count()
}

/// Entries of a host list counted the simple way: comma-separated, non-empty.
fn expected_host_entries(value: &str) -> usize {
    value.split(',').filter(|e| !e.trim().is_empty()).count()
}

/// Parses a complete handshake block, checks it takes all bytes and re-encodes identically, and
/// that every proper prefix asks for more.
fn parse_block(block: &[u8], what: &str) -> Handshake {
    let (msg, used) = match Handshake::parse(block) {
        Ok(Parsed::Complete { message, consumed }) => (message, consumed),
        other => panic!("{what}: expected a complete block, got {other:?}"),
    };
    assert_eq!(used, block.len(), "{what}: consumed length");
    assert_eq!(
        msg.to_bytes(),
        block,
        "{what}: re-encoding differs from the wire bytes"
    );
    assert_eq!(msg.encoded_len(), block.len(), "{what}: encoded_len");
    for cut in [1, block.len() / 2, block.len() - 1] {
        assert_eq!(
            Handshake::parse(&block[..cut]),
            Ok(Parsed::NeedMore),
            "{what}: prefix of {cut} bytes"
        );
    }
    // Bytes after the block (the compressed stream, say) are left alone.
    let mut with_tail = block.to_vec();
    with_tail.extend_from_slice(b"\x78\x9c\x00\x01");
    let (again, used) = Handshake::parse(&with_tail).unwrap().complete().unwrap();
    assert_eq!(
        (&again, used),
        (&msg, block.len()),
        "{what}: with trailing bytes"
    );
    let headers = msg.headers().expect("0.6 blocks have headers");
    assert_eq!(
        headers.len(),
        expected_header_count(block),
        "{what}: header count"
    );
    // The typed accessors understand every value these peers sent.
    if headers.contains("Remote-IP") {
        assert!(headers.remote_ip().is_some(), "{what}: Remote-IP");
    }
    if headers.contains("X-Ultrapeer") {
        assert!(headers.ultrapeer().is_some(), "{what}: X-Ultrapeer");
    }
    if headers.contains("Listen-IP") || headers.contains("Node") {
        assert!(headers.listen_addr().is_some(), "{what}: Listen-IP / Node");
    }
    if let Some(bye) = headers.bye_packet() {
        assert_eq!(bye, "0.1", "{what}: Bye-Packet");
    }
    if let Some(agent) = headers.user_agent() {
        assert!(!agent.is_empty(), "{what}: User-Agent");
    }
    msg
}

/// Checks X-Try-Ultrapeers / X-Try addresses: as many as the raw list has entries, each one
/// spelled in the block.
fn check_try_lists(headers: &Headers, block: &[u8], what: &str) -> usize {
    let text = String::from_utf8_lossy(block);
    let mut found = 0;
    for (name, addrs) in [
        ("X-Try-Ultrapeers", headers.x_try_ultrapeers()),
        ("X-Try", headers.x_try()),
    ] {
        let entries: usize = headers.get_all(name).map(expected_host_entries).sum();
        assert_eq!(addrs.len(), entries, "{what}: {name} addresses");
        for addr in &addrs {
            assert!(
                text.contains(&addr.to_string()),
                "{what}: {addr} not in the block"
            );
            assert_ne!(addr.port(), 0, "{what}: {addr}");
        }
        found += addrs.len();
    }
    found
}

#[test]
fn gtkg_handshake_records() {
    let records = load_records("ndpi-gtkg-0.6-2022.handshakes.jsonl");
    assert_eq!(records.len(), 55, "record count");
    let mut handshakes = 0;
    let mut blocks = 0;
    let mut folded = 0;
    let mut try_addrs = 0;
    let mut deflate_checked = 0;
    let mut statuses = 0;
    for rec in records.iter().filter(|r| r["kind"] == "gnutella-handshake") {
        handshakes += 1;
        let stream = rec["stream"].as_u64().expect("stream number");
        let client: Vec<Vec<u8>> = rec["client_blocks"]
            .as_array()
            .expect("client_blocks")
            .iter()
            .map(wire_block)
            .collect();
        let server: Vec<Vec<u8>> = rec["server_blocks"]
            .as_array()
            .expect("server_blocks")
            .iter()
            .map(wire_block)
            .collect();
        let mut parsed_client = Vec::new();
        for (i, block) in client.iter().enumerate() {
            let what = format!("stream {stream} client block {i}");
            let msg = parse_block(block, &what);
            try_addrs += check_try_lists(msg.headers().unwrap(), block, &what);
            parsed_client.push(msg);
        }
        let mut parsed_server = Vec::new();
        for (i, block) in server.iter().enumerate() {
            let what = format!("stream {stream} server block {i}");
            let msg = parse_block(block, &what);
            try_addrs += check_try_lists(msg.headers().unwrap(), block, &what);
            parsed_server.push(msg);
        }
        blocks += client.len() + server.len();
        folded += client
            .iter()
            .chain(&server)
            .filter(|b| String::from_utf8_lossy(b).contains("\r\n\t"))
            .count();

        // Step 1 is always the client's 0.6 connect.
        match parsed_client.first() {
            Some(Handshake::Connect { version, .. }) => assert_eq!(version, "0.6"),
            other => panic!("stream {stream}: first client block is {other:?}"),
        }
        // Step 3, when present, is a status from the client.
        if let Some(third) = parsed_client.get(1) {
            assert!(
                matches!(third, Handshake::Status { .. }),
                "stream {stream}: third step {third:?}"
            );
        }

        // Step 2: the server's status line.
        match rec["status"].as_str() {
            Some(status) => {
                let reply = parsed_server.first().expect("a server block");
                assert_eq!(reply.start_line(), status, "stream {stream}: status line");
                let code: u16 = status[13..16].parse().expect("status code");
                assert_eq!(reply.code(), Some(code), "stream {stream}: code");
                statuses += 1;
            }
            None => assert!(server.is_empty(), "stream {stream}: no status, no block"),
        }

        if rec["established"] == true {
            assert_eq!(parsed_server[0].code(), Some(200), "stream {stream}");
            assert_eq!(parsed_client[1].code(), Some(200), "stream {stream}");
        }

        // Deflate per direction: the client's final block and the server's reply announce what
        // each side sends from then on.
        if let Some(c2s) = rec["c2s_deflate"].as_bool() {
            let third = parsed_client[1].headers().unwrap();
            assert_eq!(third.content_deflate(), c2s, "stream {stream}: c2s deflate");
            assert!(
                parsed_server[0].headers().unwrap().accepts_deflate() || !c2s,
                "stream {stream}: client deflates to a server that did not accept it"
            );
            deflate_checked += 1;
        }
        if let Some(s2c) = rec["s2c_deflate"].as_bool() {
            let reply = parsed_server[0].headers().unwrap();
            assert_eq!(reply.content_deflate(), s2c, "stream {stream}: s2c deflate");
            assert!(
                parsed_client[0].headers().unwrap().accepts_deflate() || !s2c,
                "stream {stream}: server deflates to a client that did not accept it"
            );
            deflate_checked += 1;
        }
    }
    println!(
        "handshakes: {handshakes} records, {blocks} blocks ({folded} with folded lines), \
         {statuses} status lines, {try_addrs} X-Try addresses, {deflate_checked} deflate flags"
    );
    assert_eq!(handshakes, 52);
    assert!(folded > 0, "the capture has folded X-Try-Ultrapeers lines");
    assert!(try_addrs > 0);
    assert!(deflate_checked > 0);
}

#[test]
fn gtkg_stream_105_third_step_refusal() {
    // The client (gtk-gnutella) accepted the server's 200 with a 503 of its own in step 3, with
    // a folded X-Try-Ultrapeers list of 10 hosts.
    let records = load_records("ndpi-gtkg-0.6-2022.handshakes.jsonl");
    let rec = records
        .iter()
        .find(|r| r["stream"] == 105)
        .expect("stream 105 in the trace");
    let third = parse_block(&wire_block(&rec["client_blocks"][1]), "stream 105 step 3");
    assert_eq!(third.code(), Some(503));
    let hosts = third.headers().unwrap().x_try_ultrapeers();
    assert_eq!(hosts.len(), 10);
    assert_eq!(hosts[0].to_string(), "118.168.15.71:3931");
    assert_eq!(hosts[9].to_string(), "77.58.211.52:3806");
    assert_eq!(third.headers().unwrap().ultrapeer(), Some(false));
}

#[test]
fn gtkg_http_records() {
    let records = load_records("ndpi-gtkg-0.6-2022.handshakes.jsonl");
    let mut checked = 0;
    for rec in records.iter().filter(|r| r["kind"] == "http") {
        let stream = rec["stream"].as_u64().expect("stream number");
        let request_block = wire_block(&rec["request"][0]);
        let (request, used) = Request::parse(&request_block)
            .unwrap_or_else(|e| panic!("stream {stream}: request: {e}"))
            .complete()
            .expect("complete request");
        assert_eq!(used, request_block.len());
        assert_eq!(
            request.to_bytes(),
            request_block,
            "stream {stream}: request bytes"
        );
        assert_eq!(
            request.headers.len(),
            expected_header_count(&request_block),
            "stream {stream}: request headers"
        );
        // X-FW-Node-Info is folded over three continuation lines.
        let node_info = request
            .headers
            .get("x-fw-node-info")
            .expect("X-FW-Node-Info");
        assert!(node_info.ends_with("104.156.226.72:53258; 75.133.101.93:52367"));

        let response_block = wire_block(&rec["response"][0]);
        let (response, used) = Response::parse(&response_block)
            .unwrap_or_else(|e| panic!("stream {stream}: response: {e}"))
            .complete()
            .expect("complete response");
        assert_eq!(used, response_block.len());
        assert_eq!(
            response.to_bytes(),
            response_block,
            "stream {stream}: response bytes"
        );
        assert_eq!(
            response.headers.len(),
            expected_header_count(&response_block),
            "stream {stream}: response headers"
        );
        let length = response.content_length().expect("valid Content-Length");

        match stream {
            134 | 135 => {
                let Resource::Sha1 { sha1 } = request.resource() else {
                    panic!(
                        "stream {stream}: N2R resource, got {:?}",
                        request.resource()
                    );
                };
                assert_eq!(
                    data_encoding_base32(&sha1),
                    "LXIP2A72T5H3BU3GRUMZFYNU3OYDK6FI"
                );
                let range = request.range().expect("a Range").expect("valid Range");
                let cr = response
                    .content_range()
                    .expect("a Content-Range")
                    .expect("valid Content-Range");
                // Shareaza answers with the non-RFC `bytes=a-b/total` form.
                assert!(cr.equals_sign);
                assert_eq!(cr.total, Some(3_234_212));
                let served = range.satisfy(3_234_212).expect("satisfiable");
                assert_eq!(cr.span, Some(served), "stream {stream}");
                assert_eq!(length, Some(served.len()));
                assert_eq!(response.code, 206);
                if stream == 134 {
                    assert_eq!(
                        range,
                        ByteRange::FromTo {
                            first: 0,
                            last: 1_048_575
                        }
                    );
                } else {
                    assert_eq!(
                        cr,
                        ContentRange {
                            span: Some(ByteSpan {
                                first: 2_709_924,
                                last: 3_234_211
                            }),
                            total: Some(3_234_212),
                            equals_sign: true
                        }
                    );
                }
            }
            136 => {
                assert!(matches!(request.resource(), Resource::Other(_)));
                assert_eq!(response.code, 200);
                assert_eq!(length, Some(10_164));
            }
            other => panic!("unexpected http record for stream {other}"),
        }
        checked += 1;
    }
    println!("http exchanges in the handshake records: {checked}");
    assert_eq!(checked, 3);
}

/// RFC 4648 base32 of a digest, spelled out here so the check does not reuse the parser's code.
fn data_encoding_base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}
