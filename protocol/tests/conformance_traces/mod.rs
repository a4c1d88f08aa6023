//! Finding and loading the third-party captures shared by the conformance
//! tests. They live outside the repository, at `../shared/traces` relative to
//! the workspace root, or wherever `$HAZEL_TRACES` points. A missing trace is
//! a test failure with a message saying where it was looked for, never a pass.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub fn traces_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HAZEL_TRACES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces")
}

pub fn read_trace(name: &str) -> Vec<u8> {
    let path = traces_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "trace {name} is missing ({}: {e}). The conformance tests need the shared traces: \
             put them at ../shared/traces next to the workspace or set HAZEL_TRACES.",
            path.display()
        )
    })
}

/// One JSON value per non-empty line.
pub fn read_jsonl(name: &str) -> Vec<Value> {
    let text = String::from_utf8(read_trace(name)).expect("expected file is UTF-8");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{name} line {}: {e}", i + 1))
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

pub const NDPI: &str = "ndpi-gtkg-0.6-2022";
pub const PPA: &str = "ppa1e-bearshare-get-2001";
