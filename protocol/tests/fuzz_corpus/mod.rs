//! The fuzz targets' regression corpora (`fuzz/corpus/regressions/<target>`),
//! read by the tests that replay them through the targets' own checks.

#![allow(dead_code)]

use std::path::PathBuf;

/// Every input kept for `target`, as (file name, bytes), sorted by name.
/// An empty or missing corpus is a failure, never a vacuous pass.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
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

/// One named input of `target`'s corpus.
pub fn input(target: &str, name: &str) -> Vec<u8> {
    corpus(target)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("regression input {target}/{name} missing"))
        .1
}
