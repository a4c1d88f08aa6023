//! End-to-end: the `hazel` command line — `hazel ctl` text and JSON replies,
//! one-line errors, signals, and the host cache surviving a restart.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{num, wait_until, Servent, WAIT};

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
    // Still running and answering; a rescan picks up a new file.
    assert!(wait_until(WAIT, || num(&a.must("shares"), "files") == 1));
    std::fs::write(a.share_dir.join("second.ogg"), b"da da").unwrap();
    let (ok, out, _) = ctl(&a, &["rescan"]);
    assert!(ok, "{out}");
    assert!(wait_until(WAIT, || num(&a.must("shares"), "files") == 2));
    let (ok, out, _) = ctl(&a, &["peers"]);
    assert!(ok);
    assert_eq!(out.trim(), "(none)");
    // `connect HOST:PORT` takes a host name.
    let b = Servent::start("b", &["--peers", "0"], &[]);
    let target = format!("localhost:{}", b.addr.port());
    let (ok, out, err) = ctl(&a, &["connect", &target]);
    assert!(ok, "{out}{err}");
    a.wait_established(1);
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
    // b saw the link go: a Bye, then the close.
    assert!(wait_until(WAIT, || b.established() == 0));
    assert!(
        wait_until(WAIT, || b.log().contains("peer sent Bye 200")),
        "b's log shows no Bye:\n{}",
        b.log()
    );
    let saved = std::fs::read_to_string(data.join("hosts")).expect("host cache saved");
    assert!(saved.contains(&b_addr), "host cache: {saved:?}");
    assert!(
        !data.join("control.sock").exists(),
        "control socket removed"
    );

    let id_before = std::fs::read_to_string(data.join("servent-id")).expect("servent id kept");
    let restarted = Servent::start_in("a2", &data, &share, &["--peers", "0"], &[]);
    assert_eq!(
        std::fs::read_to_string(data.join("servent-id")).unwrap(),
        id_before,
        "the servent id survives a restart"
    );
    assert!(
        restarted
            .log()
            .contains(&format!("servent id {}", id_before.trim())),
        "the restarted servent uses the kept id:\n{}",
        restarted.log()
    );
    let hosts = restarted.must("hosts");
    assert!(
        hosts.as_array().is_some_and(|h| h
            .iter()
            .any(|a| a["addr"] == b_addr.as_str() && a["source"] == "user")),
        "host cache not reloaded: {hosts}"
    );
    // `quit` over the control socket ends it too, with status 0.
    let mut restarted = restarted;
    assert!(restarted.ask("quit").is_ok());
    let status = restarted
        .wait_exit(Duration::from_secs(20))
        .expect("no exit after quit");
    assert!(status.success());
}

#[test]
fn sigint_quits_with_status_0_and_saves_the_host_cache() {
    let b = Servent::start("b", &["--peers", "0"], &[]);
    let b_addr = b.addr.to_string();
    let mut a = Servent::start("a", &["--peers", "0", "--connect", &b_addr], &[]);
    a.wait_established(1);
    a.signal(libc::SIGINT);
    let status = a.wait_exit(WAIT).expect("a did not exit after SIGINT");
    assert!(status.success(), "exit status {status:?}");
    let saved = std::fs::read_to_string(a.data_dir.join("hosts")).expect("host cache saved");
    assert!(saved.contains(&b_addr), "host cache: {saved:?}");
}

/// Runs `hazel` with commands on stdin; returns its exit status and stdout.
fn run_with_stdin(extra: &[&str], input: &str) -> (std::process::ExitStatus, String) {
    let temp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hazel"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--peers",
            "0",
            "--log-level",
            "warn",
        ])
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hazel");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Wait until it is up (it prints its address first), then type.
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
    // Then where its data is and what it shares.
    for expected in ["data directory: ", "sharing "] {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with(expected), "{line}");
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        rest
    });
    let mut status = None;
    let exited = wait_until(WAIT, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("hazel did not quit");
    }
    (status.unwrap(), reader.join().unwrap())
}

#[test]
fn the_interactive_terminal_prompts_answers_and_quits() {
    let (status, out) = run_with_stdin(&[], "peers\nbogus\nstats\nquit\n");
    assert!(status.success(), "{status:?}");
    assert!(
        out.starts_with("hazel> (none)\nhazel> error: unknown command `bogus`"),
        "{out}"
    );
    assert!(out.contains("descriptors  Ping  Pong"), "{out}");
    assert!(out.contains("hazel> bye"), "{out}");
}

#[test]
fn end_of_input_quits_the_interactive_terminal() {
    let (status, out) = run_with_stdin(&[], "peers\n");
    assert!(status.success(), "{status:?}");
    assert!(out.starts_with("hazel> (none)\nhazel> "), "{out}");
}

#[test]
fn headless_stdin_takes_commands_without_a_prompt() {
    let (status, out) = run_with_stdin(&["--headless"], "search two words\nquit\n");
    assert!(status.success(), "{status:?}");
    assert_eq!(
        out,
        "search 1 started, but no peer is connected: it reached nobody \
         (connect to one with `connect HOST:PORT`)\nbye\n"
    );
}

#[test]
fn protocol_04_links_are_made_when_asked() {
    let b = Servent::start("b", &["--peers", "0"], &[]);
    let a = Servent::start(
        "a",
        &[
            "--peers",
            "0",
            "--protocol",
            "0.4",
            "--connect",
            &b.addr.to_string(),
        ],
        &[],
    );
    a.wait_established(1);
    let peers = a.must("peers");
    assert_eq!(peers[0]["protocol"], "0.4", "{peers}");
    // A query crosses the 0.4 link.
    let before = num(&b.stats(), "received.query");
    a.must("search over old links");
    assert!(wait_until(WAIT, || num(&b.stats(), "received.query") > before));
}

#[test]
fn beyond_max_peers_a_newcomer_is_refused_with_503_and_x_try() {
    let b = Servent::start("b", &["--peers", "0"], &[]);
    let a = Servent::start(
        "a",
        &[
            "--peers",
            "0",
            "--max-peers",
            "1",
            "--connect",
            &b.addr.to_string(),
        ],
        &[],
    );
    a.wait_established(1);
    let mut late = std::net::TcpStream::connect(a.addr).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    late.write_all(b"GNUTELLA CONNECT/0.6\r\nUser-Agent: late\r\nX-Ultrapeer: False\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut late, &mut answer);
    assert!(answer.starts_with("GNUTELLA/0.6 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-try"),
        "no X-Try in {answer}"
    );
    assert_eq!(a.established(), 1, "the existing link stays");
}

/// Runs `hazel` with `args` until it exits (bounded); (exit ok, stdout, stderr).
fn run_hazel(args: &[&str], env: &[(&str, &std::path::Path)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hazel"));
    command.args(args).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hazel");
    let mut status = None;
    wait_until(WAIT, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn startup_errors_name_the_path_or_address_and_what_to_do() {
    let temp = tempfile::tempdir().expect("temp");
    let file = temp.path().join("a-file");
    std::fs::write(&file, b"x").expect("file");
    let bad_data = file.join("data");
    let (ok, _, err) = run_hazel(
        &[
            "--headless",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            bad_data.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(!ok);
    assert!(err.contains(bad_data.to_str().expect("utf8")), "{err}");
    assert!(err.contains("--data-dir"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    let data = temp.path().join("data");
    let (ok, _, err) = run_hazel(
        &[
            "--headless",
            "--listen",
            &taken_addr,
            "--data-dir",
            data.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains(&taken_addr) && err.contains("--listen"),
        "{err}"
    );

    let (ok, _, err) = run_hazel(
        &[
            "--headless",
            "--share",
            "/no/such/folder",
            "--data-dir",
            data.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(!ok);
    assert!(err.contains("--share /no/such/folder"), "{err}");

    let empty = temp.path().join("empty");
    let (ok, _, err) = run_hazel(
        &["ctl", "--data-dir", empty.to_str().expect("utf8"), "stats"],
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("no servent is running with data directory"),
        "{err}"
    );
    assert!(err.contains("hazel --headless --data-dir"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn the_default_data_directory_is_the_platforms_not_the_current_one() {
    let home = tempfile::tempdir().expect("home");
    let cwd = tempfile::tempdir().expect("cwd");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hazel"))
        .args([
            "--headless",
            "--listen",
            "127.0.0.1:0",
            "--no-default-caches",
        ])
        .current_dir(cwd.path())
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hazel");
    let expected = home.path().join(".local/share/hazel");
    let started = wait_until(WAIT, || expected.join("port").exists());
    let stdout = child.stdout.take().expect("stdout");
    let (ok, out, _) = run_hazel(&["ctl", "stats"], &[("HOME", home.path())]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "no port file in {}", expected.display());
    assert!(ok, "ctl found the servent through the same default: {out}");
    let mut first_lines = String::new();
    for line in BufReader::new(stdout).lines().take(3).map_while(Result::ok) {
        first_lines.push_str(&line);
        first_lines.push('\n');
    }
    assert!(
        first_lines.contains("sharing nothing (add --share DIR"),
        "{first_lines}"
    );
    assert!(
        std::fs::read_dir(cwd.path()).expect("cwd").next().is_none(),
        "nothing written to the current directory"
    );
}

#[test]
fn a_failed_connect_and_a_search_that_reached_nobody_are_said_on_the_terminal() {
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hazel"))
        .args(["--listen", "127.0.0.1:0", "--peers", "0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hazel");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "connect {dead_addr}").expect("type");
    writeln!(stdin, "search anything").expect("type");
    std::thread::sleep(Duration::from_millis(1500));
    writeln!(stdin, "hosts").expect("type");
    writeln!(stdin, "quit").expect("type");
    let mut exited = false;
    wait_until(WAIT, || {
        exited = child.try_wait().ok().flatten().is_some();
        exited
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "could not connect to {dead_addr}: connection refused"
        )),
        "{text}"
    );
    assert!(
        text.contains("no peer is connected: it reached nobody"),
        "{text}"
    );
    let saved =
        std::fs::read_to_string(data.join("hosts")).expect("the host cache is saved at quit");
    assert!(
        !saved.contains(&dead_addr.to_string()),
        "the dead address was kept: {saved}"
    );
}
