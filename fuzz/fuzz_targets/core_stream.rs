//! Arbitrary peer bytes into a servent Core: during the handshake, on an
//! established plain link, and on an established deflate link, split at
//! input-chosen points. The core must never panic, and a second, quiet link
//! must survive whatever the first one sends.
#![no_main]

use std::time::{Duration, Instant};

use hazel_servent::core::{Core, CoreConfig, Direction};
use hazel_servent::harness::{attach_leaf, discard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let mut config = CoreConfig::new([7; 16], "127.0.0.1:6346".parse().expect("addr"));
    config.peers = 0;
    config.dedup_capacity = 1024;
    config.deflate = mode & 1 == 1;
    let mut core = Core::new(config, now);
    // A quiet neighbour that must survive.
    attach_leaf(&mut core, 2, "10.0.0.2:1".parse().expect("addr"), now);
    core.on_connection(
        1,
        Direction::Incoming,
        "10.0.0.1:1".parse().expect("addr"),
        now,
    );
    if mode & 2 == 2 {
        // Complete the handshake first; the fuzz bytes are the descriptor stream.
        let hello: &[u8] = if mode & 1 == 1 {
            b"GNUTELLA CONNECT/0.6\r\nAccept-Encoding: deflate\r\n\r\n"
        } else {
            b"GNUTELLA CONNECT/0.6\r\n\r\n"
        };
        core.on_bytes(1, hello, now);
        discard(&mut core, 1, now);
        let last: &[u8] = if mode & 1 == 1 {
            b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n"
        } else {
            b"GNUTELLA/0.6 200 OK\r\n\r\n"
        };
        core.on_bytes(1, last, now);
    }
    let step = usize::from(mode >> 2).max(1);
    let mut t = now;
    for chunk in rest.chunks(step) {
        core.on_bytes(1, chunk, t);
        discard(&mut core, 1, t);
        discard(&mut core, 2, t);
        // 10 ms per chunk: even a 4 KiB input at one byte per chunk stays far
        // below the two-minute idle limit of the quiet link.
        t += Duration::from_millis(10);
        core.handle_timeout(t);
        while core.poll_action().is_some() {}
    }
    assert!(
        core.peers(t).iter().any(|p| p.id == 2),
        "the quiet link survives"
    );
});
