//! Fuzz the incremental handshake and GIV parsers: never panic; a complete block consumes no
//! more than it was given, re-encodes to something that parses back to the same message, and
//! every prefix of a complete block asks for more instead of failing.
#![no_main]

use hazel_protocol::giv::Giv;
use hazel_protocol::handshake::{Handshake, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Complete { message, consumed }) = Handshake::parse(data) {
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
        assert_eq!(back, message);
        if let Some(headers) = message.headers() {
            let _ = headers.x_try();
            let _ = headers.x_try_ultrapeers();
            let _ = headers.remote_ip();
            let _ = headers.listen_addr();
            let _ = headers.accepts_deflate();
        }
    }
    if let Ok(Parsed::Complete { message, consumed }) = Giv::parse(data) {
        assert!(consumed <= data.len());
        let bytes = message.to_bytes();
        let (back, used) = Giv::parse(&bytes).expect("GIV parses").complete().expect("complete");
        assert_eq!(used, bytes.len());
        // Names with line ends are rewritten on encode; anything else must survive.
        if !message.file_name.iter().any(|&b| b == b'\r' || b == b'\n') {
            assert_eq!(back, message);
        }
    }
});
