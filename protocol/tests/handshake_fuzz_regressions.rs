//! Replays the `handshake` fuzz target's regression corpus (`fuzz/corpus/regressions/handshake`)
//! through the same checks the target runs (fuzz/checks/handshake.rs), so an input that once
//! broke the handshake or GIV parser stays covered by `cargo test`. Hand-made edge cases (split
//! blank lines, folds, over-long GIV indexes) live there beside inputs found by fuzzing.

mod fuzz_corpus;
use fuzz_corpus::corpus;

use hazel_protocol::giv::Giv;
use hazel_protocol::handshake::{Handshake, Parsed};
use hazel_protocol::DecodeError;

#[path = "../../fuzz/checks/handshake.rs"]
mod handshake_checks;

fn input(name: &str) -> Vec<u8> {
    fuzz_corpus::input("handshake", name)
}

#[test]
fn handshake_regressions_replay() {
    let files = corpus("handshake");
    for (name, data) in &files {
        println!("replaying handshake/{name} ({} bytes)", data.len());
        handshake_checks::check_handshake(data);
    }
    println!("{} handshake inputs replayed", files.len());
}

#[test]
fn edge_cases_give_the_expected_answers() {
    let folded = input("folded-block-then-stream");
    let (block, used) = Handshake::parse(&folded).unwrap().complete().unwrap();
    assert_eq!(
        used,
        folded.len() - 1,
        "the byte after the blank line is left alone"
    );
    assert_eq!(block.headers().unwrap().x_try_ultrapeers().len(), 2);
    assert_eq!(
        Handshake::parse(&input("blank-line-missing-lf")),
        Ok(Parsed::NeedMore)
    );
    assert_eq!(
        Handshake::parse(&input("leading-continuation")),
        Err(DecodeError::BadField("handshake start line"))
    );
    assert_eq!(
        Giv::parse(&input("giv-index-over-u32")),
        Err(DecodeError::BadField("GIV file index"))
    );
    assert_eq!(
        Giv::parse(&input("giv-short-id")),
        Err(DecodeError::BadField("GIV servent id"))
    );
}
