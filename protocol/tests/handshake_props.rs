//! Property tests for handshake blocks: encode/decode round trips, folded blocks re-encoding to
//! their own bytes, split-anywhere feeding, and totality on arbitrary bytes.

use hazel_protocol::handshake::{Handshake, Headers, Parsed, MAX_HANDSHAKE_HEAD};
use proptest::prelude::*;

fn header_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,20}"
}

/// Printable values without leading/trailing whitespace (what a sender writes after `: `).
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[!-~]([ -~]{0,40}[!-~])?",
        "[a-z0-9 ,.:;/()=+-]{0,10}[a-z0-9]",
        "[\\u{a1}-\\u{2fff}]{1,8}",
    ]
}

fn headers() -> impl Strategy<Value = Headers> {
    prop::collection::vec((header_name(), header_value()), 0..12).prop_map(|pairs| {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.push(&n, &v);
        }
        h
    })
}

fn handshake() -> impl Strategy<Value = Handshake> {
    prop_oneof![
        Just(Handshake::Connect04),
        Just(Handshake::Ok04),
        ("[0-9]\\.[0-9]{1,2}", headers()).prop_map(|(version, headers)| {
            // 0.4 without headers is the 0.4 line itself.
            if version == "0.4" && headers.is_empty() {
                Handshake::Connect04
            } else {
                Handshake::Connect { version, headers }
            }
        }),
        (
            "[0-9]\\.[0-9]",
            100u16..1000,
            "([!-~][ -~]{0,30})?",
            headers()
        )
            .prop_map(|(version, code, reason, headers)| Handshake::Status {
                version,
                code,
                reason: reason.trim_end().to_string(),
                headers,
            }),
    ]
}

/// A raw block with folded continuation lines and odd spacing, CRLF line ends.
fn raw_folded_block() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        header_name(),
        "[ \t]{0,2}",
        "[ \t]{0,3}",
        "[!-~]{1,12}",
        prop::collection::vec(("[ \t]{1,3}", "[!-~]{1,12}"), 0..3),
    );
    prop::collection::vec(line, 1..8).prop_map(|lines| {
        let mut block = b"GNUTELLA/0.6 503 Busy\r\n".to_vec();
        for (name, before_colon, after_colon, value, folds) in lines {
            block.extend_from_slice(
                format!("{name}{before_colon}:{after_colon}{value}\r\n").as_bytes(),
            );
            for (indent, more) in folds {
                block.extend_from_slice(format!("{indent}{more}\r\n").as_bytes());
            }
        }
        block.extend_from_slice(b"\r\n");
        block
    })
}

proptest! {
    #[test]
    fn round_trip(msg in handshake()) {
        let bytes = msg.to_bytes();
        prop_assert_eq!(bytes.len(), msg.encoded_len());
        let (back, used) = Handshake::parse(&bytes).unwrap().complete().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn split_anywhere_needs_more_then_completes(msg in handshake(), tail in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut bytes = msg.to_bytes();
        let len = bytes.len();
        for cut in 0..len {
            prop_assert_eq!(Handshake::parse(&bytes[..cut]), Ok(Parsed::NeedMore), "cut {}", cut);
        }
        bytes.extend_from_slice(&tail);
        let (back, used) = Handshake::parse(&bytes).unwrap().complete().unwrap();
        prop_assert_eq!(used, len);
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn folded_blocks_reencode_to_their_bytes(block in raw_folded_block()) {
        let (msg, used) = Handshake::parse(&block).unwrap().complete().unwrap();
        prop_assert_eq!(used, block.len());
        prop_assert_eq!(msg.to_bytes(), block.clone());
        // Unfolded values contain no line breaks and no outer whitespace.
        for h in msg.headers().unwrap() {
            prop_assert!(!h.value().contains(['\r', '\n']));
            prop_assert_eq!(h.value(), h.value().trim());
        }
    }

    #[test]
    fn lf_blocks_parse_like_crlf_blocks(msg in handshake()) {
        let crlf = msg.to_bytes();
        let lf: Vec<u8> = String::from_utf8(crlf.clone()).unwrap().replace("\r\n", "\n").into_bytes();
        let (back, used) = Handshake::parse(&lf).unwrap().complete().unwrap();
        prop_assert_eq!(used, lf.len());
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Parsed::Complete { consumed, .. }) = Handshake::parse(&bytes) {
            prop_assert!(consumed <= bytes.len());
        }
    }

    #[test]
    fn gnutella_prefixed_noise_never_panics(tail in prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b' '), Just(b':'), Just(b'\t'), any::<u8>()], 0..300)) {
        let mut bytes = b"GNUTELLA".to_vec();
        bytes.extend_from_slice(&tail);
        bytes.extend_from_slice(b"\r\n\r\n");
        match Handshake::parse(&bytes) {
            Ok(Parsed::Complete { consumed, .. }) => prop_assert!(consumed <= bytes.len()),
            Ok(Parsed::NeedMore) => prop_assert!(false, "a blank line was present"),
            Err(_) => {}
        }
    }
}

#[test]
fn cap_applies_to_a_never_ending_block() {
    let mut bytes = b"GNUTELLA CONNECT/0.6\r\n".to_vec();
    bytes.resize(MAX_HANDSHAKE_HEAD - 1, b'x');
    assert_eq!(Handshake::parse(&bytes), Ok(Parsed::NeedMore));
    bytes.push(b'x');
    assert!(Handshake::parse(&bytes).is_err());
}
