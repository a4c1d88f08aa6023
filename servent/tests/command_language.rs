//! The command language against a real servent (on a thread, on loopback):
//! every command is answered, and every bad input gets one line saying what
//! was wrong, as the terminal, the full-screen `:` line and `hazel ctl`
//! show it.

use clap::Parser;
use hazel_servent::cli::Cli;
use hazel_servent::config::Config;
use hazel_servent::run::spawn;

/// A headless servent's settings as its command line gives them, sharing one file.
fn config(dir: &std::path::Path) -> Config {
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("song.ogg"), b"la la la").unwrap();
    let data = dir.join("data");
    let cli = Cli::try_parse_from([
        "hazel".as_ref(),
        "--headless".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--peers".as_ref(),
        "0".as_ref(),
        "--share".as_ref(),
        share.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ])
    .unwrap();
    cli.run.to_config().unwrap()
}

const URN: &str = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";

#[test]
fn every_command_is_answered_and_bad_input_gets_a_useful_line() {
    let dir = tempfile::tempdir().unwrap();
    let servent = spawn(config(dir.path())).unwrap();
    // Every command of `help`, in a form that works: the answer's first line.
    let good = [
        ("connect 127.0.0.1:9", "connecting to 127.0.0.1:9"),
        ("peers", ""),
        ("search la la", "search 1 started, but no peer is connected"),
        ("results", "(none)"),
        ("results 1", "(none)"),
        ("shares", ""),
        ("shares --magnet", ""),
        (&format!("get {URN} wanted.ogg"), "download 1 started"),
        (
            &format!("download magnet:?xt={URN}&dn=again.ogg"),
            "download 1 already exists",
        ),
        ("transfers", "downloads:"),
        ("pause 1", "download 1 paused"),
        ("resume 1", "download 1 resumed"),
        ("cancel 1", "download 1 cancelled, its partial file removed"),
        ("rescan", "rescanning"),
        ("stats", "up "),
        ("hosts", ""),
        ("index status", "no index session"),
        (
            "index connect 127.0.0.1:9 me",
            "logging in to 127.0.0.1:9 as me",
        ),
        ("index disconnect 127.0.0.1:9", "left 127.0.0.1:9"),
        (
            "search --gnutella --max 5 la",
            "search 4 started, but no peer",
        ),
        (
            "search --index la",
            "search 5 started, but no index session is online",
        ),
        ("help", ""),
    ];
    for (line, first) in good {
        let response = servent.command(line);
        assert!(response.ok, "{line}: {response:?}");
        let text = response.to_text();
        assert!(text.starts_with(first), "{line}: {text}");
    }
    let help = servent.command("help").to_text();
    for (usage, _) in hazel_servent::shell::HELP {
        assert!(help.contains(usage), "help lacks {usage}");
    }
    // Bad input: one line, starting `error:`, saying what is wrong or what is expected.
    let bad = [
        ("", "empty command"),
        ("frobnicate", "unknown command `frobnicate` (try `help`)"),
        ("connect nowhere", "usage: connect HOST:PORT"),
        ("disconnect 99", "no connection 99"),
        ("disconnect x", "usage: disconnect ID"),
        ("peers now", "usage: peers"),
        ("search", "usage: search [--index|--gnutella]"),
        ("search --max x la", "usage: search [--index|--gnutella]"),
        ("index", "usage: index connect HOST:PORT NICK"),
        (
            "index connect nowhere me",
            "usage: index connect HOST:PORT NICK",
        ),
        ("index disconnect", "no index session"),
        ("browse", "usage: browse NICK"),
        ("browse bob", "not logged in to any index"),
        ("results 99", "no search 99"),
        ("results x", "usage: results [SEARCH-ID]"),
        ("shares --all", "usage: shares [--magnet]"),
        ("get", "usage: get RESULT-ID..."),
        ("get 99", "no result 99"),
        ("get urn:sha1:SHORT", "32 base32 characters"),
        ("get magnet:?dn=nohash", "usage: get magnet:?xt=urn:sha1:"),
        ("magnet 99", "99"),
        ("transfers all", "usage: transfers"),
        ("pause 99", "99"),
        ("resume x", "usage: resume DOWNLOAD-ID"),
        ("cancel", "usage: cancel DOWNLOAD-ID"),
        ("retry 99", "99"),
        ("rescan now", "usage: rescan"),
        ("stats all", "usage: stats"),
        ("hosts 1", "usage: hosts"),
        ("quit now", "usage: quit"),
    ];
    for (line, says) in bad {
        let response = servent.command(line);
        assert!(!response.ok, "{line:?} succeeded: {response:?}");
        let text = response.to_text();
        assert_eq!(text.lines().count(), 1, "{line:?}: {text}");
        assert!(text.starts_with("error: "), "{line:?}: {text}");
        assert!(text.contains(says), "{line:?}: {text}");
    }
    let response = servent.command("quit");
    assert!(response.ok);
    assert_eq!(response.to_text(), "bye");
    servent.stop().unwrap();
}
