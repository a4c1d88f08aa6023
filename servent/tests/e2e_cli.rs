//! End-to-end: the `hazel` command line — `hazel ctl` text and JSON replies,
//! one-line errors, signals, and the host cache surviving a restart.

mod e2e_support;

use e2e_support::{num, wait_until, Servent, WAIT};
use std::process::Command;
use std::time::Duration;

fn ctl(servent: &Servent, words: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hazel"))
        .arg("ctl")
        .arg("--data-dir")
        .arg(&servent.data_dir)
        .args(words)
        .output()
        .expect("run hazel ctl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn ctl_prints_text_and_json_and_bad_commands_get_one_line_errors() {
    let a = Servent::start("a", &["--peers", "0"], &[("song.ogg", b"la la")]);
    let (ok, out, _) = ctl(&a, &["help"]);
    assert!(ok);
    for command in [
        "connect",
        "disconnect",
        "peers",
        "search",
        "results",
        "shares",
        "rescan",
        "stats",
        "quit",
    ] {
        assert!(out.contains(command), "help lacks {command}:\n{out}");
    }
    let (ok, out, _) = ctl(&a, &["stats", "--json"]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(json["ok"], true);
    assert_eq!(json["reply"]["kind"], "stats");
    assert!(json["reply"]["data"]["received"].is_object(), "{json}");

    let (ok, out, _) = ctl(&a, &["search", "la", "la"]);
    assert!(ok);
    assert!(out.starts_with("search 1 started"), "{out}");

    for bad in [
        &["frobnicate"][..],
        &["connect", "nowhere"],
        &["disconnect", "99"],
        &["results", "x"],
    ] {
        let (ok, out, err) = ctl(&a, bad);
        assert!(!ok, "{bad:?} succeeded: {out}");
        assert_eq!(err.lines().count(), 1, "{bad:?}: {err}");
        assert!(err.starts_with("error: "), "{bad:?}: {err}");
    }
    // Still running and answering.
    assert!(wait_until(WAIT, || num(&a.must("shares"), "files") == 1));
    let (ok, out, _) = ctl(&a, &["peers"]);
    assert!(ok);
    assert_eq!(out.trim(), "(none)");
}

#[test]
fn sigterm_says_bye_saves_the_host_cache_and_a_restart_reloads_it() {
    let b = Servent::start("b", &["--peers", "0"], &[]);
    let temp = tempfile::tempdir().unwrap();
    // A data dir that does not exist yet, two levels down.
    let data = temp.path().join("new/data");
    let share = temp.path().join("share");
    let b_addr = b.addr.to_string();
    let mut a = Servent::start_in(
        "a",
        &data,
        &share,
        &["--peers", "0", "--connect", &b_addr],
        &[],
    );
    a.wait_established(1);
    b.wait_established(1);
    a.signal(libc::SIGTERM);
    let status = a.wait_exit(WAIT).expect("a did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    // b saw the link go (a Bye, then the close).
    assert!(wait_until(WAIT, || b.established() == 0));
    let saved = std::fs::read_to_string(data.join("hosts")).expect("host cache saved");
    assert!(saved.contains(&b_addr), "host cache: {saved:?}");
    assert!(
        !data.join("control.sock").exists(),
        "control socket removed"
    );

    let restarted = Servent::start_in("a2", &data, &share, &["--peers", "0"], &[]);
    let hosts = restarted.must("hosts");
    assert!(
        hosts
            .as_array()
            .is_some_and(|h| h.iter().any(|a| a == b_addr.as_str())),
        "host cache not reloaded: {hosts}"
    );
    // quit over the control socket ends it too, with status 0.
    let mut restarted = restarted;
    assert!(restarted.ask("quit").is_ok());
    let status = restarted
        .wait_exit(Duration::from_secs(20))
        .expect("no exit after quit");
    assert!(status.success());
}
