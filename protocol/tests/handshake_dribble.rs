//! Resumable head parsing: feeding a handshake block, an HTTP head or a GIV line in pieces
//! through one `HeadScanner` gives, at every step, exactly what the stateless parse of the same
//! prefix gives — need more, the same message and length, or the same error — so readers can
//! switch to `parse_from` without any change in behaviour, only in cost.

use hazel_protocol::giv::Giv;
use hazel_protocol::handshake::Handshake;
use hazel_protocol::handshake::{HeadScanner, Parsed};
use hazel_protocol::http::{Request, Response};
use hazel_protocol::DecodeError;
use proptest::prelude::*;

type ParseFn<T> = fn(&[u8]) -> Result<Parsed<T>, DecodeError>;
type ParseFromFn<T> = fn(&[u8], &mut HeadScanner) -> Result<Parsed<T>, DecodeError>;

/// Feeds `data` in pieces of the given sizes (cycled), comparing every step with the stateless
/// parse, and stops at the first answer that is not "need more". Returns that answer.
fn feed<T: PartialEq + std::fmt::Debug>(
    data: &[u8],
    pieces: &[usize],
    parse: ParseFn<T>,
    parse_from: ParseFromFn<T>,
) -> Result<Parsed<T>, DecodeError> {
    let mut scan = HeadScanner::new();
    let mut len = 0;
    let mut sizes = pieces.iter().cycle();
    loop {
        let got = parse_from(&data[..len], &mut scan);
        assert_eq!(
            got,
            parse(&data[..len]),
            "after {len} of {} bytes",
            data.len()
        );
        if got != Ok(Parsed::NeedMore) || len == data.len() {
            return got;
        }
        len = (len + sizes.next().copied().unwrap_or(1)).min(data.len());
    }
}

fn check_all(data: &[u8], pieces: &[usize]) {
    let h = feed(data, pieces, Handshake::parse, Handshake::parse_from);
    assert_eq!(h, Handshake::parse(&data[..consumed_or_all(&h, data)]));
    // Each feed compares every step with the stateless parse; the final answers need no more.
    let _ = feed(data, pieces, Request::parse, Request::parse_from);
    let _ = feed(data, pieces, Response::parse, Response::parse_from);
    let _ = feed(data, pieces, Giv::parse, Giv::parse_from);
}

fn consumed_or_all<T>(r: &Result<Parsed<T>, DecodeError>, data: &[u8]) -> usize {
    match r {
        Ok(Parsed::Complete { consumed, .. }) => *consumed,
        _ => data.len(),
    }
}

/// Bytes that look like heads: a plausible first word, then lines made of a small alphabet
/// rich in CR, LF, colons and spaces, so blank lines, folds and bad lines all occur.
fn head_like() -> impl Strategy<Value = Vec<u8>> {
    let start = prop_oneof![
        Just(b"GNUTELLA CONNECT/0.6\r\n".to_vec()),
        Just(b"GNUTELLA/0.6 200 OK\r\n".to_vec()),
        Just(b"GNUTELLA OK\n".to_vec()),
        Just(b"GET /get/1/a b.mp3 HTTP/1.1\r\n".to_vec()),
        Just(b"HTTP/1.1 206 Partial\r\n".to_vec()),
        Just(b"HTTP 503 Busy\r\n".to_vec()),
        Just(b"GIV 5:0123456789abcdef0123456789ABCDEF/f".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    let body = prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(b"ab: \t-1".to_vec()),
            2 => Just(b'\n'),
            2 => Just(b'\r'),
            1 => any::<u8>(),
        ],
        0..200,
    );
    (start, body).prop_map(|(mut s, b)| {
        s.extend(b);
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pieces_parse_like_the_whole(data in head_like(), pieces in prop::collection::vec(1usize..9, 1..6)) {
        check_all(&data, &pieces);
    }

    #[test]
    fn single_bytes_parse_like_the_whole(data in head_like()) {
        check_all(&data, &[1]);
    }
}

/// A 0.6 block as gtk-gnutella sends it, one byte per read: the scanner looks at each byte once
/// and the answer is the block, complete exactly when its blank line is in.
#[test]
fn gtkg_block_one_byte_per_read() {
    let block: &[u8] = b"GNUTELLA/0.6 200 OK\r\nUser-Agent: gtk-gnutella/1.2.1 (2022-02-25)\r\n\
Pong-Caching: 0.1\r\nBye-Packet: 0.1\r\nAccept-Encoding: deflate\r\nX-Ultrapeer: True\r\n\
X-Try-Ultrapeers: 93.184.216.34:6346 2022-03-07T03:22Z, 198.51.100.7:24567\r\n   2022-03-07T03:20Z\r\n\
\r\n";
    let mut stream = block.to_vec();
    stream.extend_from_slice(b"\x78\xda"); // the deflate stream that follows
    let got = feed(&stream, &[1], Handshake::parse, Handshake::parse_from);
    let (message, consumed) = got.expect("valid").complete().expect("complete");
    assert_eq!(consumed, block.len());
    assert_eq!(message.code(), Some(200));
    assert_eq!(
        message.headers().expect("headers").x_try_ultrapeers().len(),
        2
    );
    assert_eq!(message.to_bytes(), block);
}

/// A BearShare GET split over two reads (as in the ppa1e capture) and a GIV dribbled in.
#[test]
fn http_and_giv_one_byte_per_read() {
    let get: &[u8] = b"GET /get/1/Redhead Anal.mpg HTTP/1.0\r\nUser-Agent: BearShare 2.2.6\r\n\
Range: bytes=0-\r\n\r\n";
    let (req, used) = feed(get, &[40], Request::parse, Request::parse_from)
        .expect("valid")
        .complete()
        .expect("complete");
    assert_eq!(
        (used, req.target.as_slice()),
        (get.len(), &b"/get/1/Redhead Anal.mpg"[..])
    );
    let giv: &[u8] = b"GIV 17:0123456789abcdef0123456789abcdef/song.mp3\n\nGET ";
    let (g, used) = feed(giv, &[1], Giv::parse, Giv::parse_from)
        .expect("valid")
        .complete()
        .expect("complete");
    assert_eq!(
        (g.file_index, g.file_name.as_slice(), used),
        (17, &b"song.mp3"[..], giv.len() - 4)
    );
}
