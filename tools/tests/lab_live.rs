//! `hazel-lab live` on five real servents linked as a tree: the counts read
//! from their `stats` match the simulation of the same graph, files and
//! queries exactly (on a tree they do not depend on timing).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The `hazel` binary next to `hazel-lab`, built if it is not there yet
/// (`CARGO_BIN_EXE_hazel` exists only inside the servent's package).
fn hazel() -> PathBuf {
    let lab = PathBuf::from(env!("CARGO_BIN_EXE_hazel-lab"));
    let dir = lab.parent().expect("hazel-lab lives in a directory");
    let hazel = dir.join("hazel");
    if !hazel.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "hazel-servent", "--bin", "hazel"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building hazel failed");
    }
    hazel
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
}
