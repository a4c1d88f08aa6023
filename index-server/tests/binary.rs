//! The real `hazel-index` binary: accounts survive `kill -9`, SIGTERM shuts
//! it down cleanly, `--help` documents the options.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{fetch_metrics, Client, WAIT};

struct Running {
    child: Child,
    addr: SocketAddr,
    stats_addr: SocketAddr,
}

/// Starts the binary on port 0 and reads the bound address from its log.
fn start(data_dir: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hazel-index"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args([
            "--stats-listen",
            "127.0.0.1:0",
            "--log-level",
            "info",
            "--password-memory-kib",
            "256",
            "--password-iterations",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hazel-index");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            for marker in ["listening on ", "metrics served on "] {
                if let Some(addr) = line.split(marker).nth(1) {
                    let _ = tx.send((marker, addr.trim().to_string()));
                }
            }
        }
    });
    let mut addr = None;
    let mut stats_addr = None;
    while addr.is_none() || stats_addr.is_none() {
        let (marker, text) = rx
            .recv_timeout(WAIT)
            .expect("server never logged its addresses");
        let parsed: SocketAddr = text.parse().expect("address");
        if marker.starts_with("listening") {
            addr = Some(parsed);
        } else {
            stats_addr = Some(parsed);
        }
    }
    Running {
        child,
        addr: addr.unwrap(),
        stats_addr: stats_addr.unwrap(),
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn accounts_survive_kill_dash_nine() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let mut c = Client::connect(server.addr);
    c.send(6, "survivor hunter2 0 \"nap\" 3 s@example.org");
    assert_eq!(c.recv().kind, 3);
    drop(c);
    server.child.kill().unwrap(); // SIGKILL: no chance to flush anything
    wait_exit(&mut server.child);

    let mut server = start(dir.path());
    let mut good = Client::connect(server.addr);
    good.send(2, "survivor hunter2 0 \"nap\" 3");
    let ack = good.recv();
    assert_eq!((ack.kind, ack.text().as_str()), (3, "s@example.org"));
    let mut bad = Client::connect(server.addr);
    bad.send(2, "survivor hunter3 0 \"nap\" 3");
    let refusal = bad.recv();
    assert_eq!(
        (refusal.kind, refusal.text().as_str()),
        (0, "Invalid password")
    );
    // The binary's metrics endpoint reports the refusal.
    let text = fetch_metrics(server.stats_addr);
    assert!(text.contains("hazel_index_users 1\n"), "{text}");
    assert!(
        text.contains("hazel_index_drops_total{reason=\"login_refused\"} 1\n"),
        "{text}"
    );
    server.child.kill().unwrap();
    wait_exit(&mut server.child);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let mut c = Client::connect(server.addr);
    c.login("leaving", 0);
    let pid = libc::pid_t::try_from(server.child.id()).unwrap();
    // SAFETY: sending a signal to a child process we spawned.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut server.child);
    assert!(status.success(), "exit status {status:?}");
    assert!(c.closed_by_server(), "clients are disconnected on shutdown");
}

#[test]
fn help_documents_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_hazel-index"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for option in [
        "--listen",
        "--data-dir",
        "--max-connections",
        "--max-results",
        "--max-shares",
        "--motd",
        "--motd-file",
        "--registration",
        "--stats-listen",
        "--log-level",
        "--searches-per-minute",
        "--clones-per-ip",
        "--login-timeout",
        "--max-command-length",
        "--output-queue-cap",
    ] {
        assert!(help.contains(option), "--help lacks {option}:\n{help}");
    }
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_hazel-index"))
        .args(["--listen", "not-an-address", "--data-dir", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty());
}

/// Runs the binary with `args` (plus cheap password settings) expecting it
/// to fail at once; returns its stderr.
fn failure(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hazel-index"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn an_address_in_use_is_named_with_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    for option in ["--listen", "--stats-listen"] {
        let listen = if option == "--listen" {
            addr.as_str()
        } else {
            "127.0.0.1:0"
        };
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--listen".as_ref(),
            listen.as_ref(),
            "--data-dir".as_ref(),
            dir.path().as_os_str(),
        ];
        if option == "--stats-listen" {
            args.extend(["--stats-listen".as_ref(), addr.as_ref()] as [&std::ffi::OsStr; 2]);
        }
        let err = failure(&args);
        assert!(err.contains(&addr), "{err}");
        assert!(err.contains(option), "{err}");
        assert!(err.contains("another program"), "{err}");
    }
}

#[test]
fn a_data_dir_that_is_a_file_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = failure(&[
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        file.as_os_str(),
    ]);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("is not a directory"), "{err}");
    assert!(err.contains("--data-dir"), "{err}");
}

#[test]
fn a_missing_motd_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let motd = dir.path().join("no-such-motd.txt");
    let err = failure(&[
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
        "--motd-file".as_ref(),
        motd.as_os_str(),
    ]);
    assert!(err.contains(&motd.display().to_string()), "{err}");
}
