//! Property tests for HTTP heads: request and response round trips, resources through their
//! targets, raw-space names, split-anywhere feeding, Range / Content-Range round trips and range
//! resolution, and totality on arbitrary bytes.

use hazel_protocol::http::{
    percent_decode, percent_encode, ByteRange, ByteSpan, ContentRange, Headers, HttpVersion,
    Method, Parsed, Request, Resource, Response,
};
use proptest::prelude::*;

fn headers() -> impl Strategy<Value = Headers> {
    prop::collection::vec(
        ("[A-Za-z][A-Za-z0-9-]{0,16}", "([!-~]([ -~]{0,30}[!-~])?)?"),
        0..8,
    )
    .prop_map(|pairs| {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.push(&n, &v);
        }
        h
    })
}

fn version() -> impl Strategy<Value = HttpVersion> {
    prop_oneof![Just(HttpVersion::HTTP_10), Just(HttpVersion::HTTP_11)]
}

fn resource() -> impl Strategy<Value = Resource> {
    prop_oneof![
        (any::<u32>(), prop::collection::vec(any::<u8>(), 0..60))
            .prop_map(|(index, name)| Resource::File { index, name }),
        any::<[u8; 20]>().prop_map(|sha1| Resource::Sha1 { sha1 }),
        (any::<[u8; 20]>(), any::<Option<[u8; 24]>>())
            .prop_map(|(sha1, tiger)| Resource::Tree { sha1, tiger }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop_oneof![Just(Method::Get), Just(Method::Head)],
        resource(),
        version(),
        headers(),
    )
        .prop_map(|(method, res, version, headers)| Request {
            method,
            target: res.to_target(),
            version,
            headers,
        })
}

fn response() -> impl Strategy<Value = Response> {
    (
        prop::option::of(version()),
        100u16..1000,
        "([!-~]([ -~]{0,20}[!-~])?)?",
        headers(),
    )
        .prop_map(|(version, code, reason, headers)| Response {
            version,
            code,
            reason,
            headers,
        })
}

fn byte_range() -> impl Strategy<Value = ByteRange> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| ByteRange::FromTo {
            first: a.min(b),
            last: a.max(b)
        }),
        any::<u64>().prop_map(|first| ByteRange::From { first }),
        any::<u64>().prop_map(|len| ByteRange::Last { len }),
    ]
}

proptest! {
    #[test]
    fn request_round_trip(req in request()) {
        let bytes = req.to_bytes();
        prop_assert_eq!(bytes.len(), req.encoded_len());
        let (back, used) = Request::parse(&bytes).unwrap().complete().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(back.resource(), Resource::from_target(&req.target));
    }

    #[test]
    fn resource_round_trips_through_its_target(res in resource()) {
        prop_assert_eq!(Resource::from_target(&res.to_target()), res);
    }

    #[test]
    fn raw_space_names_survive(index in any::<u32>(), name in "[A-Za-z0-9 ()._-]{0,40}[A-Za-z0-9()._-]", slash in any::<bool>(), v in version()) {
        let line = format!("GET /get/{index}/{name}{} {v}\n\n", if slash { "/" } else { "" });
        let (req, _) = Request::parse(line.as_bytes()).unwrap().complete().unwrap();
        prop_assert_eq!(req.resource(), Resource::File { index, name: name.into_bytes() });
        prop_assert_eq!(req.version, v);
    }

    #[test]
    fn request_split_anywhere(req in request(), tail in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut bytes = req.to_bytes();
        let len = bytes.len();
        for cut in 0..len {
            prop_assert_eq!(Request::parse(&bytes[..cut]), Ok(Parsed::NeedMore), "cut {}", cut);
        }
        bytes.extend_from_slice(&tail);
        let (back, used) = Request::parse(&bytes).unwrap().complete().unwrap();
        prop_assert_eq!(used, len);
        prop_assert_eq!(back, req);
    }

    #[test]
    fn response_round_trip_and_split(resp in response()) {
        let bytes = resp.to_bytes();
        prop_assert_eq!(bytes.len(), resp.encoded_len());
        for cut in 0..bytes.len() {
            prop_assert_eq!(Response::parse(&bytes[..cut]), Ok(Parsed::NeedMore), "cut {}", cut);
        }
        let (back, used) = Response::parse(&bytes).unwrap().complete().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back, resp);
    }

    #[test]
    fn percent_codec_round_trip(name in prop::collection::vec(any::<u8>(), 0..80)) {
        let encoded = percent_encode(&name);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b'?' && b != b'#'));
        prop_assert_eq!(percent_decode(encoded.as_bytes()), name);
    }

    #[test]
    fn range_round_trip(range in byte_range()) {
        prop_assert_eq!(ByteRange::parse(&range.to_string()), Ok(range));
    }

    #[test]
    fn range_resolution_stays_inside_the_file(range in byte_range(), size in prop_oneof![0u64..64, any::<u64>()]) {
        match range.satisfy(size) {
            Some(span) => {
                prop_assert!(span.first <= span.last);
                prop_assert!(span.last < size);
                match range {
                    ByteRange::FromTo { first, last } => {
                        prop_assert_eq!(span.first, first);
                        prop_assert_eq!(span.last, last.min(size - 1));
                    }
                    ByteRange::From { first } => {
                        prop_assert_eq!((span.first, span.last), (first, size - 1));
                    }
                    ByteRange::Last { len } => {
                        prop_assert_eq!(span.last, size - 1);
                        prop_assert_eq!(span.len(), len.min(size));
                    }
                }
            }
            None => {
                // Unsatisfiable exactly when nothing of the file is selected.
                let empty = match range {
                    ByteRange::FromTo { first, .. } | ByteRange::From { first } => first >= size,
                    ByteRange::Last { len } => len == 0 || size == 0,
                };
                prop_assert!(empty, "{:?} of {} bytes", range, size);
            }
        }
    }

    #[test]
    fn content_range_round_trip(a in any::<u64>(), b in any::<u64>(), extra in 1u64..1000, eq in any::<bool>(), star_span in any::<bool>(), star_total in any::<bool>()) {
        let (first, last) = (a.min(b), a.max(b));
        let cr = ContentRange {
            span: if star_span { None } else { Some(ByteSpan { first, last }) },
            total: if star_total && !star_span { None } else { Some(last.saturating_add(extra)) },
            equals_sign: eq,
        };
        // `bytes a-b/t` needs b < t; u64::MAX cannot be a last byte with a known total.
        prop_assume!(cr.total.is_none() || cr.span.is_none() || last < u64::MAX);
        prop_assert_eq!(ContentRange::parse(&cr.to_string()), Ok(cr));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Request::parse(&bytes);
        let _ = Response::parse(&bytes);
        let _ = Resource::from_target(&bytes);
        let _ = percent_decode(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = ByteRange::parse(&text);
        let _ = ContentRange::parse(&text);
    }

    #[test]
    fn get_prefixed_noise_never_panics(tail in prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'%'), Just(b'/'), any::<u8>()], 0..200)) {
        let mut bytes = b"GET /get/".to_vec();
        bytes.extend_from_slice(&tail);
        bytes.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        if let Ok(Parsed::Complete { message, consumed }) = Request::parse(&bytes) {
            prop_assert!(consumed <= bytes.len());
            let _ = message.resource();
            let _ = message.range();
        }
    }
}
