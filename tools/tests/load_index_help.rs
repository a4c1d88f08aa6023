//! `hazel-load index --help` says what the workload is: users read help
//! text, not the project's issue tracker.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hazel-load"))
        .args(args)
        .output()
        .expect("run hazel-load");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

#[test]
fn index_help_describes_the_workload_itself() {
    let top = help(&["--help"]);
    let index_line = top
        .lines()
        .find(|l| l.trim_start().starts_with("index"))
        .expect("an index subcommand");
    let detail = help(&["index", "--help"]);
    for text in [index_line, detail.as_str()] {
        assert!(!text.contains("issue"), "refers to an issue: {text}");
    }
    for words in [
        "100,000 files",
        "5,000-word vocabulary",
        "one-word",
        "two-word",
    ] {
        assert!(detail.contains(words), "no {words:?} in:\n{detail}");
    }
}
