//! Replays the `handshake` fuzz target's regression corpus (`fuzz/corpus/regressions/handshake`)
//! through the same checks the target runs (fuzz/checks/handshake.rs), so an input that once
//! broke the handshake or GIV parser stays covered by `cargo test`. Hand-made edge cases (split
//! blank lines, folds, over-long GIV indexes) live there beside inputs found by fuzzing.

use std::path::PathBuf;

use hazel_protocol::giv::Giv;
use hazel_protocol::handshake::{Handshake, Parsed};
use hazel_protocol::DecodeError;

#[path = "../../fuzz/checks/handshake.rs"]
mod handshake_checks;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus/regressions")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("regression corpus {} missing: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

fn input(name: &str) -> Vec<u8> {
    corpus("handshake")
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("regression input {name} missing"))
        .1
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
