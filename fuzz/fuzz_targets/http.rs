//! Fuzz the HTTP head parsers and the Range / Content-Range / resource interpreters: never
//! panic; complete heads re-encode to something that parses back the same; prefixes of a
//! complete head ask for more.
#![no_main]

use hazel_protocol::http::{ByteRange, ContentRange, Parsed, Request, Resource, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Complete { message, consumed }) = Request::parse(data) {
        assert!(consumed <= data.len());
        assert_eq!(Request::parse(&data[..consumed.saturating_sub(1)]), Ok(Parsed::NeedMore));
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
        let (back, used) = Request::parse(&bytes).expect("parses").complete().expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(back, message);
    }
    if let Ok(Parsed::Complete { message, consumed }) = Response::parse(data) {
        assert!(consumed <= data.len());
        let _ = message.content_length();
        if let Some(Ok(cr)) = message.content_range() {
            assert_eq!(ContentRange::parse(&cr.to_string()), Ok(cr));
        }
        let bytes = message.to_bytes();
        let (back, used) = Response::parse(&bytes).expect("parses").complete().expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(back, message);
    }
    let _ = Resource::from_target(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(range) = ByteRange::parse(text) {
            assert_eq!(ByteRange::parse(&range.to_string()), Ok(range));
        }
        if let Ok(cr) = ContentRange::parse(text) {
            assert_eq!(ContentRange::parse(&cr.to_string()), Ok(cr));
        }
    }
});
