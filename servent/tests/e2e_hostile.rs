//! End-to-end: a servent faced with hostile or broken peers (raw test
//! sockets) drops them, and every other link keeps working.

mod e2e_support;

use e2e_support::{new_id, num, query_payload, wait_until, RawPeer, Servent, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn garbage_oversized_lengths_and_ttl0_are_dropped_and_other_links_keep_working() {
    let b = Servent::start("b", &["--peers", "0"], &[]);
    let a = Servent::start(
        "a",
        &["--peers", "0", "--connect", &b.addr.to_string()],
        &[],
    );
    a.wait_established(1);
    b.wait_established(1);

    // 1. Garbage instead of a handshake: closed without a byte.
    let mut garbage = TcpStream::connect(a.addr).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    garbage
        .write_all(b"\x16\x03\x01 hello, is this TLS?\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(garbage.read(&mut buf), Ok(0) | Err(_)),
        "garbage got an answer"
    );

    // 2. A handshaken peer that then sends garbage bytes where descriptors belong.
    let mut oversized = RawPeer::connect(a.addr);
    let mut wellbehaved = RawPeer::connect(a.addr);
    a.wait_established(3);
    let hdr_len = 70_000u32; // above the 64 KiB limit
    let mut bad = new_id(1).to_vec();
    bad.extend_from_slice(&[0x80, 5, 0]);
    bad.extend_from_slice(&hdr_len.to_le_bytes());
    oversized.stream.write_all(&bad).unwrap();
    assert!(
        oversized.closed_within(WAIT),
        "a descriptor declaring 70000 bytes did not get the link closed"
    );

    // 3. A TTL=0 Query is dropped and counted, not forwarded.
    let before_a = a.stats();
    let before_b = b.stats();
    wellbehaved.send(new_id(2), 0x80, 0, 2, &query_payload("ttl zero"));
    assert!(wait_until(WAIT, || {
        num(&a.stats(), "drops_by_reason.ttl_zero") > num(&before_a, "drops_by_reason.ttl_zero")
    }));
    // ...and a TTL=0, hops=0 one too.
    wellbehaved.send(new_id(3), 0x80, 0, 0, &query_payload("ttl zero hops zero"));
    assert!(wait_until(WAIT, || {
        num(&a.stats(), "drops_by_reason.ttl_zero")
            >= num(&before_a, "drops_by_reason.ttl_zero") + 2
    }));

    // Every other link keeps working: a normal Query from the same raw peer
    // crosses a to b, and a search from b reaches a.
    wellbehaved.send(new_id(4), 0x80, 3, 0, &query_payload("still alive"));
    assert!(
        wait_until(WAIT, || num(&b.stats(), "received.query")
            == num(&before_b, "received.query") + 1),
        "the a-b link stopped carrying queries\n{}",
        a.log()
    );
    let a_before = num(&a.stats(), "received.query");
    b.must("search from b");
    assert!(wait_until(WAIT, || num(&a.stats(), "received.query") > a_before));
    assert_eq!(a.established(), 2, "a keeps b and the well-behaved peer");
    assert!(!wellbehaved.closed_within(Duration::from_millis(300)));
}

#[test]
fn a_peer_that_sends_random_bytes_after_the_handshake_is_dropped() {
    let a = Servent::start("a", &["--peers", "0"], &[]);
    let mut noisy = RawPeer::connect(a.addr);
    let mut calm = RawPeer::connect(a.addr);
    a.wait_established(2);
    // Bytes that make a header with a huge length sooner or later.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80)
        .collect();
    let _ = noisy.stream.write_all(&noise);
    assert!(noisy.closed_within(WAIT), "the noisy peer was not dropped");
    assert!(wait_until(WAIT, || a.established() == 1));
    let before = num(&a.stats(), "received.query");
    calm.send(new_id(9), 0x80, 2, 0, &query_payload("calm"));
    assert!(wait_until(WAIT, || num(&a.stats(), "received.query") == before + 1));
}
