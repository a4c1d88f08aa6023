//! Replays the `thex` fuzz target's regression corpus (`fuzz/corpus/regressions/thex`) through the
//! checks the target runs (fuzz/checks/thex.rs). An input is one size byte (the file is
//! `byte * 1024 + 7` bytes), the 24-byte root expected, then the DIME message.

mod fuzz_corpus;
use fuzz_corpus::corpus;

use hazel_protocol::thex::TigerTree;

#[path = "../../fuzz/checks/thex.rs"]
mod thex_checks;

/// The seed inputs: a whole message (which must decode), and damaged copies of it.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let size_byte = 70u8;
    let data: Vec<u8> = (0..usize::from(size_byte) * 1024 + 7)
        .map(|i| (i % 251) as u8)
        .collect();
    let tree = TigerTree::of(&data);
    let mut good = vec![size_byte];
    good.extend_from_slice(&tree.root());
    good.extend_from_slice(&tree.encode_dime());
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 5);
    let mut lying = good.clone();
    // The first record's data length: 4 GiB - 1.
    lying[25 + 8..25 + 12].copy_from_slice(&[0xff; 4]);
    vec![
        ("valid-70k", good),
        ("truncated-tree", truncated),
        ("lying-data-length", lying),
    ]
}

#[test]
fn thex_regressions_replay() {
    let files = corpus("thex");
    for (name, data) in &files {
        println!("replaying thex/{name} ({} bytes)", data.len());
        thex_checks::check_thex(data);
    }
    // The kept seeds are still what `seeds()` makes, and the valid one still decodes.
    for (name, bytes) in seeds() {
        let kept = files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("seed thex/{name} missing: run the ignored `write_seeds`"));
        assert_eq!(kept.1, bytes, "seed {name} changed");
    }
    let (_, valid) = files.iter().find(|(n, _)| n == "valid-70k").unwrap();
    let root: [u8; 24] = valid[1..25].try_into().unwrap();
    assert!(TigerTree::decode_dime(&valid[25..], &root, 70 * 1024 + 7).is_ok());
}

/// `cargo test -p hazel-protocol --test thex_fuzz_regressions -- --ignored` rewrites the seeds.
#[test]
#[ignore]
fn write_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/regressions/thex");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
