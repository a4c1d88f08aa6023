//! What must hold for any input to the HTTP head parsers and the Range / Content-Range / resource
//! interpreters. Shared by the `http` fuzz target and the regression replay test in
//! protocol/tests/http_fuzz_regressions.rs.

use hazel_protocol::handshake::{HeadScanner, Parsed};
use hazel_protocol::http::{ByteRange, ContentRange, Request, Resource, Response};

/// Never panics; complete heads re-encode to something that parses back the same; prefixes of a
/// complete head ask for more; the resumable parse fed in pieces agrees with the whole parse.
pub fn check_http(data: &[u8]) {
    if let Ok(Parsed::Complete { message, consumed }) = Request::parse(data) {
        assert!(consumed <= data.len());
        assert_eq!(
            Request::parse(&data[..consumed.saturating_sub(1)]),
            Ok(Parsed::NeedMore)
        );
        let resource = message.resource();
        if !matches!(resource, Resource::Other(_)) {
            assert_eq!(Resource::from_target(&resource.to_target()), resource);
        }
        if let Some(Ok(range)) = message.range() {
            assert_eq!(ByteRange::parse(&range.to_string()), Ok(range));
            for size in [0, 1, 1000, u64::MAX] {
                if let Some(span) = range.satisfy(size) {
                    assert!(span.first <= span.last && span.last < size);
                }
            }
        }
        let _ = message.keep_alive();
        let bytes = message.to_bytes();
        assert_eq!(bytes.len(), message.encoded_len());
        let (back, used) = Request::parse(&bytes)
            .expect("parses")
            .complete()
            .expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(back, message);
    }
    let (at, dribbled) = dribble(data, Request::parse_from);
    assert_eq!(
        dribbled,
        Request::parse(&data[..at]),
        "resumable request parse agrees"
    );

    if let Ok(Parsed::Complete { message, consumed }) = Response::parse(data) {
        assert!(consumed <= data.len());
        let _ = message.content_length();
        if let Some(Ok(cr)) = message.content_range() {
            assert_eq!(ContentRange::parse(&cr.to_string()), Ok(cr));
        }
        let bytes = message.to_bytes();
        let (back, used) = Response::parse(&bytes)
            .expect("parses")
            .complete()
            .expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(back, message);
    }
    let (at, dribbled) = dribble(data, Response::parse_from);
    assert_eq!(
        dribbled,
        Response::parse(&data[..at]),
        "resumable response parse agrees"
    );

    let _ = Resource::from_target(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(range) = ByteRange::parse(text) {
            assert_eq!(ByteRange::parse(&range.to_string()), Ok(range));
        }
        if let Ok(cr) = ContentRange::parse(text) {
            assert_eq!(ContentRange::parse(&cr.to_string()), Ok(cr));
        }
    }
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
