//! Replays the `napster` fuzz target's kept inputs (fuzz/corpus/regressions/
//! napster) with the same checks the target makes, so a fixed crash stays
//! fixed without running the fuzzer.

use hazel_protocol::napster::transfer::{DataPortRequest, TransferReply};
use hazel_protocol::napster::{ClientMessage, Frame, NapsterFramer, SearchQuery, ServerMessage};
use std::path::PathBuf;

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

/// The body of the fuzz target (fuzz/fuzz_targets/napster.rs).
fn run_one(data: &[u8]) -> usize {
    let Some((c, stream)) = data.split_first() else {
        return 0;
    };
    let chunk = usize::from(*c % 17) + 1;
    let mut frames = 0;
    let mut framer = NapsterFramer::new(2048);
    'outer: for piece in stream.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    frames += 1;
                    check_frame(&frame)
                }
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
            assert_eq!(DataPortRequest::parse(&out).unwrap().unwrap().0, request);
        }
    }
    for eof in [false, true] {
        if let Ok(Some((_, used))) = TransferReply::parse(stream, eof) {
            assert!(used <= stream.len());
        }
    }
    frames
}

#[test]
fn fuzz_regressions_replay_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/regressions/napster");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz regression corpus missing at {}: {e}", dir.display()));
    let mut inputs = 0;
    let mut frames = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        frames += run_one(&data);
        inputs += 1;
    }
    println!("replayed {inputs} inputs, {frames} frames");
    assert!(inputs > 0, "no regression inputs in {}", dir.display());
}
