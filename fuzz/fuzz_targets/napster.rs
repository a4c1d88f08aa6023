//! Fuzz target `napster`: the OpenNap framer, both message directions, the
//! search grammar and the data-port parsers, on arbitrary bytes.
//!
//! Besides "never panics", it checks the codec contract: any message that
//! decodes and re-encodes must decode again to the same value.
#![no_main]

use hazel_protocol::napster::transfer::{DataPortRequest, TransferReply};
use hazel_protocol::napster::{ClientMessage, Frame, NapsterFramer, SearchQuery, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a read size so the framer sees varied splits.
    let (chunk, stream) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 17) + 1, rest),
        None => return,
    };
    let mut framer = NapsterFramer::new(2048);
    'outer: for piece in stream.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => check_frame(&frame),
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }
    let _ = SearchQuery::parse(stream);
    if let Ok(Some((request, used))) = DataPortRequest::parse(stream) {
        assert!(used <= stream.len());
        let mut out = Vec::new();
        if request.encode(&mut out).is_ok() {
            let again = DataPortRequest::parse(&out).unwrap().unwrap();
            assert_eq!(again.0, request);
        }
    }
    for eof in [false, true] {
        if let Ok(Some((_, used))) = TransferReply::parse(stream, eof) {
            assert!(used <= stream.len());
        }
    }
});

fn check_frame(frame: &Frame) {
    if let Ok(msg) = ClientMessage::from_frame(frame) {
        if let Ok(bytes) = msg.to_bytes() {
            let again = ClientMessage::from_frame(&Frame::parse(&bytes).unwrap());
            assert_eq!(again.as_ref(), Ok(&msg));
        }
    }
    if let Ok(msg) = ServerMessage::from_frame(frame) {
        if let Ok(bytes) = msg.to_bytes() {
            let again = ServerMessage::from_frame(&Frame::parse(&bytes).unwrap());
            assert_eq!(again.as_ref(), Ok(&msg));
        }
    }
}
