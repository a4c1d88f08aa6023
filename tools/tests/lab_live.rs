//! `hazel-lab live` on five real servents linked as a tree, each logged in
//! to a real `hazel-index`: the counts read from the servents' `stats`
//! match the simulation of the same graph, files and queries exactly (on a
//! tree they do not depend on timing), and so do the index searches the
//! servents make, as the index and the searchers count them. Nothing of the
//! run is left behind.

use std::path::PathBuf;
use std::process::{Command, Stdio};
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

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

#[test]
fn five_servents_count_what_the_simulation_counts() {
    let hazel = hazel();
    let started = Instant::now();
    let mut lab = Command::new(env!("CARGO_BIN_EXE_hazel-lab"))
        .args(["live", "--servents", "5", "--tree", "--ttl", "3"])
        .args(["--queries", "4", "--seed", "2", "--json", "--hazel"])
        .arg(hazel)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hazel-lab runs");
    // The run's folder, named after the lab's process and the seed.
    let work = format!("hazel-lab-live-{}-2", lab.id());
    while lab.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = lab.kill();
            panic!("hazel-lab live took over 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = lab.wait_with_output().expect("hazel-lab output");
    assert!(
        out.status.success(),
        "hazel-lab live failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The servents and the index are gone with their folder (the kernel may
    // take a moment to reap them).
    let until = Instant::now() + Duration::from_secs(10);
    while !processes_mentioning(&work).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        processes_mentioning(&work),
        Vec::<u32>::new(),
        "left running"
    );
    assert!(!std::env::temp_dir().join(&work).exists(), "{work} left");

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
    // The index, searched by the servents: one request as the index counted
    // it, then one 201 per copy and the 202 as the searcher counted them.
    let index = report["index_queries"].as_array().expect("index queries");
    assert_eq!(index.len(), 4);
    for q in index {
        let copies = q["copies"].as_u64().expect("copies");
        assert_eq!(q["live"]["query_messages"], 1, "{q}");
        assert_eq!(q["live"]["reached"], 1, "{q}");
        assert_eq!(q["live"]["hit_messages"].as_u64(), Some(copies + 1), "{q}");
        assert_eq!(q["live"]["found"], true, "{q}");
        // A header per message at least, and a file name per result.
        let bytes = q["live"]["bytes"].as_u64().expect("live bytes");
        assert!(bytes > 4 * (2 + copies) + 8 * copies, "{q}");
        assert!(q["live"]["latency_ms"].as_f64().is_some(), "{q}");
        for key in ["query_messages", "hit_messages", "reached", "found"] {
            assert_eq!(q["sim"][key], q["live"][key], "{key}: {q}");
        }
    }
    assert_eq!(report["index_identical"], 4);
}
