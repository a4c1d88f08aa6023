//! What must hold for any input to the incremental handshake and GIV parsers. Shared by the
//! `handshake` fuzz target and the regression replay test in
//! protocol/tests/handshake_fuzz_regressions.rs.

use hazel_protocol::giv::Giv;
use hazel_protocol::handshake::{Handshake, HeadScanner, Parsed};

/// Never panics; a complete block consumes no more than it was given, every prefix of it asks for
/// more, it re-encodes to something that parses back to the same message; and the resumable
/// parse, fed the same bytes in pieces, reaches the same answer as the whole-buffer parse.
pub fn check_handshake(data: &[u8]) {
    let whole = Handshake::parse(data);
    if let Ok(Parsed::Complete { message, consumed }) = &whole {
        let consumed = *consumed;
        assert!(consumed <= data.len());
        for cut in [0, consumed / 2, consumed.saturating_sub(1)] {
            assert_eq!(Handshake::parse(&data[..cut]), Ok(Parsed::NeedMore));
        }
        let bytes = message.to_bytes();
        assert_eq!(bytes.len(), message.encoded_len());
        let (back, used) = Handshake::parse(&bytes)
            .expect("re-encoded block parses")
            .complete()
            .expect("re-encoded block is complete");
        assert_eq!(used, bytes.len());
        assert_eq!(&back, message);
        if let Some(headers) = message.headers() {
            let _ = headers.x_try();
            let _ = headers.x_try_ultrapeers();
            let _ = headers.remote_ip();
            let _ = headers.listen_addr();
            let _ = headers.accepts_deflate();
        }
    }
    let (at, dribbled) = dribble(data, Handshake::parse_from);
    assert_eq!(
        dribbled,
        Handshake::parse(&data[..at]),
        "resumable parse agrees"
    );

    if let Ok(Parsed::Complete { message, consumed }) = Giv::parse(data) {
        assert!(consumed <= data.len());
        let bytes = message.to_bytes();
        let (back, used) = Giv::parse(&bytes)
            .expect("GIV parses")
            .complete()
            .expect("complete");
        assert_eq!(used, bytes.len());
        // Names with line ends are rewritten on encode; anything else must survive.
        if !message.file_name.iter().any(|&b| b == b'\r' || b == b'\n') {
            assert_eq!(back, message);
        }
    }
    let (at, dribbled) = dribble(data, Giv::parse_from);
    assert_eq!(
        dribbled,
        Giv::parse(&data[..at]),
        "resumable GIV parse agrees"
    );
}

/// Feeds growing prefixes of `data` (piece size from its length, 1 to 7 bytes) to a resumable
/// parser with one scanner; returns where it stopped and its answer there.
fn dribble<T>(
    data: &[u8],
    parse_from: fn(&[u8], &mut HeadScanner) -> hazel_protocol::error::Result<Parsed<T>>,
) -> (usize, hazel_protocol::error::Result<Parsed<T>>) {
    let piece = data.len() % 7 + 1;
    let mut scan = HeadScanner::new();
    let mut len = 0;
    loop {
        let got = parse_from(&data[..len], &mut scan);
        if !matches!(got, Ok(Parsed::NeedMore)) || len == data.len() {
            return (len, got);
        }
        len = (len + piece).min(data.len());
    }
}
