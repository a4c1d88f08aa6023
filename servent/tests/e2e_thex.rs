//! End-to-end: a real `hazel` shares a file, names its tree in `X-Thex-URI`, serves the THEX
//! message at `/uri-res/N2X?…` over loopback, and the tree decoded with the protocol crate hashes
//! up to the file's own root and checks every unit of the file.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use data_encoding::BASE32;
use hazel_protocol::thex::{root_of, ThexUri, TigerTree};
use sha1::{Digest, Sha1};
use support::{new_id, query_payload, wait_until, RawPeer, Servent, WAIT};

/// Sends `request` and reads one response: (status line, headers, body).
fn http(stream: &mut TcpStream, request: &str) -> (String, String, Vec<u8>) {
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16384, "response head too long");
        stream.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap();
    let length: usize = header(headers, "content-length")
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    let with_body = !request.starts_with("HEAD");
    let mut body = vec![0u8; if with_body { length } else { 0 }];
    stream.read_exact(&mut body).expect("body");
    (status.to_string(), headers.to_string(), body)
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn the_tree_is_served_over_http_and_checks_the_file() {
    let content: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let a = Servent::start("a", &["--peers", "0"], &[("movie.bin", &content)]);
    let sha1: [u8; 20] = Sha1::digest(&content).into();
    let root = root_of(&content);
    let b32 = BASE32.encode(&sha1);
    let n2x = format!("/uri-res/N2X?urn:sha1:{b32}");

    // Until the file is hashed the tree is not there (404, then 503 while computed): poll.
    let mut reply = None;
    let served = wait_until(WAIT, || {
        let mut conn = TcpStream::connect(a.addr).unwrap();
        let r = http(&mut conn, &format!("GET {n2x} HTTP/1.1\r\n\r\n"));
        let ok = r.0.contains(" 200 ");
        reply = Some(r);
        ok
    });
    let (status, headers, body) = reply.expect("a reply");
    assert!(served, "{status}\n{headers}\nlog:\n{}", a.log());
    assert_eq!(header(&headers, "content-type"), Some("application/dime"));

    let tree = TigerTree::decode_dime(&body, &root, content.len() as u64)
        .unwrap_or_else(|e| panic!("the served tree does not decode: {e}"));
    assert_eq!(tree.root(), root);
    // 1.5 MB: units of 64 KiB.
    assert_eq!((tree.unit(), tree.unit_count()), (65536, 23));
    for unit in 0..tree.unit_count() {
        let span = tree.span(unit).unwrap();
        assert!(tree.verify(unit, &content[span.start as usize..span.end as usize]));
    }
    // A byte changed in transit would be caught in its unit.
    let mut lie = content[65536..131072].to_vec();
    lie[100] ^= 1;
    assert!(!tree.verify(1, &lie));

    // The file reply names the tree, with the root, as gtk-gnutella's do; and the uri it names
    // is the one just fetched.
    let mut conn = TcpStream::connect(a.addr).unwrap();
    let (status, headers, body) = http(
        &mut conn,
        &format!("GET /uri-res/N2R?urn:sha1:{b32} HTTP/1.1\r\nRange: bytes=0-99\r\n\r\n"),
    );
    assert!(status.contains(" 206 "), "{status}");
    assert_eq!(body, &content[..100]);
    let thex = ThexUri::parse(
        header(&headers, "x-thex-uri")
            .expect("X-Thex-URI")
            .as_bytes(),
    )
    .expect("X-Thex-URI parses");
    assert_eq!(thex.root, Some(root));
    assert_eq!(thex.uri, n2x.as_bytes());

    // Same connection: HEAD of the tree, then the tree by bitprint, then a wrong bitprint.
    let (status, headers, body) = http(&mut conn, &format!("HEAD {n2x} HTTP/1.1\r\n\r\n"));
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.is_empty());
    let tree_len = header(&headers, "content-length").unwrap().to_string();
    let bitprint = hazel_protocol::huge::bitprint_urn(&sha1, &root);
    let (status, _, body) = http(
        &mut conn,
        &format!("GET /uri-res/N2X?{bitprint} HTTP/1.1\r\n\r\n"),
    );
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body.len().to_string(), tree_len);
    assert_eq!(
        TigerTree::decode_dime(&body, &root, content.len() as u64),
        Ok(tree)
    );
    let wrong = hazel_protocol::huge::bitprint_urn(&sha1, &root_of(b"another file"));
    let (status, _, _) = http(
        &mut conn,
        &format!("GET /uri-res/N2X?{wrong} HTTP/1.1\r\n\r\n"),
    );
    assert!(status.contains(" 404 "), "{status}");

    // A search finds the file with its root: the hit carries urn:bitprint.
    let mut peer = RawPeer::connect(a.addr);
    peer.send(new_id(1), 0x80, 2, 0, &query_payload("movie"));
    let (_, _, _, payload) = peer
        .read_until_type(0x81, WAIT)
        .unwrap_or_else(|| panic!("no QueryHit; log:\n{}", a.log()));
    let hit = hazel_protocol::descriptor::QueryHitRef::parse(&payload).expect("hit parses");
    let result = hit.results().next().expect("one result");
    assert_eq!((result.sha1(), result.tiger()), (Some(sha1), Some(root)));
    let text = String::from_utf8_lossy(&payload);
    assert!(text.contains(&bitprint), "{text}");
    assert!(a.ask("stats").is_ok());
}
