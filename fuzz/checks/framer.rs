//! What must hold for any byte stream fed to the framer. Shared by the
//! `framer` fuzz target and the regression replay test in
//! protocol/tests/descriptor_fuzz_regressions.rs.

use hazel_protocol::framer::Framer;
use hazel_protocol::header::{HEADER_LEN, MAX_PAYLOAD_LEN};

/// The first byte picks read sizes; the rest is the stream. Fed plain: the
/// frames handed out are exactly the input's prefix, in order, and nothing
/// over the limit is ever buffered. Fed as a compressed stream: garbage is
/// an error, never a panic, and inflated output stays bounded.
pub fn check_framer(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let read = 1 + (seed as usize % 64) * (1 + seed as usize / 64);

    let mut framer = Framer::new();
    let mut out = Vec::new();
    let mut failed = false;
    for piece in stream.chunks(read) {
        if framer.push(piece).is_err() {
            failed = true;
        }
        // Bounded: each frame is at least 23 bytes of input.
        for _ in 0..=stream.len() / HEADER_LEN {
            match framer.next_frame() {
                Ok(Some(f)) => {
                    assert_eq!(f.bytes.len(), HEADER_LEN + f.header.payload_len as usize);
                    assert!(f.header.payload_len as usize <= MAX_PAYLOAD_LEN);
                    let _ = f.decode();
                    out.extend_from_slice(&f.bytes);
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(framer.buffered() <= HEADER_LEN + MAX_PAYLOAD_LEN);
        if failed {
            break;
        }
    }
    assert!(stream.starts_with(&out), "frames are the stream, in order");

    let mut framer = Framer::deflated();
    // Counted over the whole input: a small zlib bomb floods tiny frames, and checking them
    // all (per read) made each such input cost ~100 ms, starving the fuzzer of executions.
    let mut frames = 0;
    for piece in stream.chunks(read) {
        let _ = framer.push(piece);
        while let Ok(Some(f)) = framer.next_frame() {
            let _ = f.decode();
            frames += 1;
            // A flood of tiny frames from a small input: stop early.
            if frames > 10_000 {
                return;
            }
        }
        assert!(framer.buffered() <= stream.len() + HEADER_LEN + MAX_PAYLOAD_LEN);
    }
}
