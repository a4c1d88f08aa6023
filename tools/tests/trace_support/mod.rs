//! Running the built `hazel-trace` binary and finding the shared traces.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Path of a shared trace; panics with a clear message when it is missing.
#[track_caller]
pub fn trace(name: &str) -> PathBuf {
    hazel_protocol::traces::require(name)
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The final summary line.
    pub fn summary(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }

    /// Parses every stdout line as JSON (panics on the first that is not).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1))
            })
            .collect()
    }
}

pub fn hazel_trace(args: &[&str], file: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hazel-trace"))
        .args(args)
        .arg(file)
        .output()
        .expect("hazel-trace runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// A file in the temp directory that is removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "hazel-trace-test-{}-{tag}.pcap",
            std::process::id()
        ));
        std::fs::write(&path, bytes).expect("write temp capture");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
