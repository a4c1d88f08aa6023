//! End-to-end: files served over HTTP on the servent's one port (`GET`,
//! `HEAD`, ranges), and the push/GIV callback for firewalled downloads.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;
use support::{new_id, num, query_payload, wait_until, RawPeer, Servent, WAIT};

/// Sends `request` and reads one response: (status line, headers, body).
fn http(stream: &mut TcpStream, request: &str) -> (String, String, Vec<u8>) {
    stream.write_all(request.as_bytes()).unwrap();
    read_response(stream, !request.starts_with("HEAD"))
}

fn read_response(stream: &mut TcpStream, with_body: bool) -> (String, String, Vec<u8>) {
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
    let length: usize = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("Content-Length");
    let mut body = vec![0u8; if with_body { length } else { 0 }];
    stream.read_exact(&mut body).expect("body");
    (status.to_string(), headers.to_string(), body)
}

fn shared_index(servent: &Servent, name: &str) -> u64 {
    let mut index = None;
    assert!(wait_until(WAIT, || {
        let shares = servent.must("shares");
        index = shares["list"]
            .as_array()
            .and_then(|l| l.iter().find(|f| f["name"] == name))
            .map(|f| num(f, "index"));
        index.is_some()
    }));
    index.unwrap_or(0)
}

#[test]
fn get_head_and_ranges_are_served_on_the_gnutella_port() {
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let a = Servent::start("a", &["--peers", "0"], &[("big file.bin", &content)]);
    let index = shared_index(&a, "big file.bin");

    let mut conn = TcpStream::connect(a.addr).unwrap();
    let (status, headers, body) = http(
        &mut conn,
        &format!("GET /get/{index}/big%20file.bin HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    assert!(status.contains(" 200 "), "{status}");
    assert!(headers.contains("300000"), "{headers}");
    assert!(body == content, "the whole file, byte for byte");

    // Same connection (keep-alive): a range.
    let (status, headers, body) = http(
        &mut conn,
        &format!("GET /get/{index}/big%20file.bin HTTP/1.1\r\nRange: bytes=1000-1999\r\n\r\n"),
    );
    assert!(status.contains(" 206 "), "{status}");
    assert!(headers.contains("bytes 1000-1999/300000"), "{headers}");
    assert_eq!(body, &content[1000..2000]);

    let (status, _, body) = http(
        &mut conn,
        &format!("HEAD /get/{index}/big%20file.bin HTTP/1.1\r\n\r\n"),
    );
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.is_empty());

    // A name that does not match the index is not served.
    let mut other = TcpStream::connect(a.addr).unwrap();
    let (status, _, _) = http(
        &mut other,
        &format!("GET /get/{index}/..%2F..%2Fetc%2Fpasswd HTTP/1.0\r\n\r\n"),
    );
    assert!(status.contains(" 404 "), "{status}");
    // And the servent still routes after serving files.
    assert!(a.ask("stats").is_ok());
}

#[test]
fn a_push_for_us_makes_a_giv_callback_and_the_get_on_it_is_served() {
    let a = Servent::start(
        "a",
        &["--peers", "0", "--firewalled"],
        &[("pushed song.ogg", b"content behind a firewall")],
    );
    let index = shared_index(&a, "pushed song.ogg");
    let mut peer = RawPeer::connect(a.addr);
    a.wait_established(1);
    // Learn a's servent id from its QueryHit (the last 16 bytes of the payload).
    let query_id = new_id(7);
    peer.send(query_id, 0x80, 2, 0, &query_payload("pushed song"));
    let mut servent_id = None;
    let mut head = [0u8; 23];
    for _ in 0..50 {
        peer.stream
            .read_exact(&mut head)
            .expect("descriptor from a");
        let len = u32::from_le_bytes([head[19], head[20], head[21], head[22]]) as usize;
        let mut payload = vec![0u8; len];
        peer.stream.read_exact(&mut payload).unwrap();
        if head[16] == 0x81 && head[..16] == query_id {
            servent_id = payload.get(len.saturating_sub(16)..).map(|s| s.to_vec());
            break;
        }
    }
    let servent_id = servent_id.expect("a QueryHit from a");

    // Ask a to call us back on a listener of ours.
    let callback = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = callback.local_addr().unwrap().port();
    let mut push = servent_id.clone();
    push.extend_from_slice(&(index as u32).to_le_bytes());
    push.extend_from_slice(&[127, 0, 0, 1]);
    push.extend_from_slice(&port.to_le_bytes());
    peer.send(new_id(8), 0x40, 3, 0, &push);

    callback.set_nonblocking(true).unwrap();
    let mut accepted = None;
    assert!(
        wait_until(WAIT, || {
            accepted = callback.accept().ok();
            accepted.is_some()
        }),
        "no callback\n{}",
        a.log()
    );
    let (mut giv_conn, _) = accepted.unwrap();
    giv_conn.set_nonblocking(false).unwrap();
    giv_conn
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n\n") {
        assert!(line.len() < 4096);
        giv_conn.read_exact(&mut byte).expect("GIV line");
        line.push(byte[0]);
    }
    let hex: String = servent_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        String::from_utf8_lossy(&line),
        format!("GIV {index}:{hex}/pushed song.ogg\n\n")
    );
    let (status, _, body) = http(
        &mut giv_conn,
        &format!("GET /get/{index}/pushed%20song.ogg HTTP/1.0\r\n\r\n"),
    );
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, b"content behind a firewall");
}
