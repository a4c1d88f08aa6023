//! Where the shared third-party captures live, for the conformance tests, benches and tools that
//! read them.
//!
//! The captures are not part of the repository: they sit in `shared/traces` beside the checkout
//! (the workspace's `../shared/traces`), or wherever `$HAZEL_TRACES` points. A test that needs a
//! capture asks [`require`] or [`read`], which fail with one message saying which file is missing,
//! where it was looked for and how to provide it, so a missing capture is never a silent pass.

use std::path::{Path, PathBuf};

/// The environment variable that overrides where the captures are looked for.
pub const ENV: &str = "HAZEL_TRACES";

/// The directory holding the captures: `$HAZEL_TRACES` when set (and not empty), else the
/// workspace's `../shared/traces`.
pub fn dir() -> PathBuf {
    match std::env::var_os(ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // This crate sits one level below the workspace root.
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("..")
            .join("shared")
            .join("traces"),
    }
}

/// The path of capture `name`.
///
/// # Panics
///
/// When the file is not there, with a message naming the file, the directory searched (and why
/// that one) and the fix.
#[track_caller]
pub fn require(name: &str) -> PathBuf {
    let dir = dir();
    let path = dir.join(name);
    if !path.is_file() {
        panic!("{}", missing_message(name, &dir));
    }
    path
}

/// The bytes of capture `name`.
///
/// # Panics
///
/// When the file is missing (see [`require`]) or cannot be read.
#[track_caller]
pub fn read(name: &str) -> Vec<u8> {
    let path = require(name);
    match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => panic!("cannot read trace {}: {e}", path.display()),
    }
}

/// The one explanation given for a missing capture.
fn missing_message(name: &str, dir: &Path) -> String {
    let source = match std::env::var_os(ENV) {
        Some(value) if !value.is_empty() => format!("${ENV} is set"),
        _ => format!("${ENV} is not set, so the workspace's ../shared/traces"),
    };
    format!(
        "trace file `{name}` is missing: looked in {} ({source}). Put the shared/ directory \
         (with shared/traces) beside the checkout, or set {ENV} to the directory that holds the \
         traces.",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_trace_names_the_file_the_place_and_the_fix() {
        let message = missing_message("nothing-here.pcap", Path::new("some/where"));
        assert!(
            message.contains("`nothing-here.pcap` is missing"),
            "{message}"
        );
        assert!(message.contains("some/where"), "{message}");
        assert!(message.contains("shared/"), "{message}");
        assert!(message.contains(ENV), "{message}");
    }

    #[test]
    fn require_panics_for_a_file_that_is_not_there() {
        let outcome = std::panic::catch_unwind(|| require("no-such-trace-file.never"));
        assert!(outcome.is_err(), "a missing trace must fail, never pass");
    }
}
