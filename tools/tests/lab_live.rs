//! `hazel-lab live` on five real servents linked as a tree and a real
//! `hazel-index`: the counts read from the servents' `stats` match the
//! simulation of the same graph, files and queries exactly (on a tree they
//! do not depend on timing), and so do the index's answers.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The `hazel` binary next to `hazel-lab` (and `hazel-index` beside it),
/// built if they are not there yet (`CARGO_BIN_EXE_hazel` exists only
/// inside the servent's package).
fn hazel() -> PathBuf {
    let lab = PathBuf::from(env!("CARGO_BIN_EXE_hazel-lab"));
    let dir = lab.parent().expect("hazel-lab lives in a directory");
    for (package, binary) in [("hazel-servent", "hazel"), ("hazel-index", "hazel-index")] {
        if dir.join(binary).exists() {
            continue;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", package, "--bin", binary]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building {binary} failed");
    }
    dir.join("hazel")
}

#[test]
fn five_servents_count_what_the_simulation_counts() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hazel-lab"))
        .args(["live", "--servents", "5", "--tree", "--ttl", "3"])
        .args(["--queries", "4", "--seed", "2", "--json", "--hazel"])
        .arg(hazel())
        .output()
        .expect("hazel-lab runs");
    assert!(
        out.status.success(),
        "hazel-lab live failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let queries = report["queries"].as_array().expect("queries");
    assert_eq!(queries.len(), 4);
    for q in queries {
        for side in ["sim", "live"] {
            assert!(q[side]["query_messages"].as_u64().unwrap_or(0) > 0, "{q}");
            assert_eq!(q[side]["duplicates"], 0, "a tree has no duplicates: {q}");
        }
        assert_eq!(
            q["sim"]["query_messages"], q["live"]["query_messages"],
            "{q}"
        );
        assert_eq!(q["sim"]["reached"], q["live"]["reached"], "{q}");
        assert_eq!(q["sim"]["hit_messages"], q["live"]["hit_messages"], "{q}");
        assert_eq!(q["sim"]["found"], q["live"]["found"], "{q}");
    }
    assert_eq!(report["identical_counts"], 4);
    // The index: the request, one 201 per copy, the 202.
    let index = report["index_queries"].as_array().expect("index queries");
    assert_eq!(index.len(), 4);
    for q in index {
        let copies = q["copies"].as_u64().expect("copies");
        assert_eq!(q["live"]["hit_messages"].as_u64(), Some(copies + 1), "{q}");
        assert_eq!(q["sim"]["hit_messages"], q["live"]["hit_messages"], "{q}");
        assert_eq!(q["live"]["found"], true, "{q}");
    }
    assert_eq!(report["index_identical"], 4);
}
