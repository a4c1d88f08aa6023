//! The full-screen terminal in a real terminal: `hazel --demo` run inside
//! tmux (on a tmux server of its own), driven with `send-keys` and read with
//! `capture-pane`, as a person would: search, see grouped results, download
//! one, see it complete, quit; then the terminal is back to normal and every
//! process of the playground is gone.
//!
//! tmux must be installed (`.ci/run` installs it): without it this test fails.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server for this test only, killed (with what runs in it) on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.as_ref().is_ok_and(|o| o.status.success()),
            "tmux is not installed: this test drives a real terminal through it \
             (apt-get install tmux; .ci/run installs it)"
        );
        let tmux = Tmux {
            socket: format!("hazel-test-{}", std::process::id()),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend(keys);
        assert!(self.run(&args).status.success());
    }

    fn type_text(&self, text: &str) {
        assert!(self
            .run(&["send-keys", "-t", "0", "-l", text])
            .status
            .success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "0"]).stdout).into_owned()
    }

    fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .run(&["display-message", "-p", "-t", "0", format])
                .stdout,
        )
        .trim()
        .to_string()
    }

    /// Waits (bounded) until `check` accepts the screen; the last screen either way.
    fn wait_for(&self, what: &str, within: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The number in the Src column of the row naming `name` (Name, Size, Src, …).
fn sources_of(screen: &str, name: &str) -> usize {
    screen
        .lines()
        .find(|l| l.contains(name))
        .and_then(|l| {
            let after = l.split(name).nth(1)?;
            // Size is two words (`1.5 MiB`), then the source count.
            after.split_whitespace().nth(2)?.parse().ok()
        })
        .unwrap_or(0)
}

fn alive(pid: &str) -> bool {
    Path::new("/proc").join(pid.trim()).exists()
}

#[test]
fn the_playground_searches_downloads_and_quits_leaving_the_terminal_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = dir.path().join("demo");
    let command = format!(
        "'{}' --demo --demo-dir '{}'; echo \"hazel exited with $?\"; stty -a; exec sleep 600",
        env!("CARGO_BIN_EXE_hazel"),
        demo.display()
    );
    // The smallest terminal the interface promises to work in.
    let tmux = Tmux::start(80, 24, &command);
    let long = Duration::from_secs(60);
    tmux.wait_for("the Search screen", long, |s| {
        s.contains("Press / and type some words") && s.contains("This is the playground")
    });
    assert_eq!(tmux.display("#{alternate_on}"), "1");

    // The Network screen shows this servent's index session, logged in.
    tmux.keys(&["3"]);
    tmux.wait_for("the index session", long, |s| {
        s.contains("index: 127.0.0.1:") && s.contains("as you: online")
    });
    tmux.keys(&["1"]);
    tmux.keys(&["/"]);
    tmux.type_text("hazel trio");
    tmux.keys(&["Enter"]);
    let live = "Hazel Trio - Live at the Loopback.ogg";
    let morning = "Hazel Trio - Ambient Morning.ogg";
    // Each file is held by two to four servents: one row each, with its sources counted.
    // The overlay's hits and the index's (every servent shares there too)
    // are one row per file, marked as found on both.
    let row_has =
        |s: &str, name: &str, what: &str| s.lines().any(|l| l.contains(name) && l.contains(what));
    let screen = tmux.wait_for("both files, each from several sources", long, |s| {
        sources_of(s, live) >= 2
            && sources_of(s, morning) >= 2
            && row_has(s, live, "both")
            && row_has(s, morning, "both")
    });
    assert!(screen.contains("and 1 index server"), "{screen}");
    assert_eq!(screen.matches(live).count(), 1, "{screen}");
    assert!(screen.contains(" hazel trio (2) "), "{screen}");
    assert!(
        screen
            .lines()
            .any(|l| l.contains(live) && l.contains("1.5 MiB")),
        "{screen}"
    );

    // Sorted by name the live recording is second: download it.
    tmux.keys(&["o"]);
    tmux.wait_for("the list sorted by name", long, |s| s.contains("Name▲"));
    tmux.keys(&["Down", "Enter"]);
    // (The status bar keeps the latest message: a fast download may already
    // say it is complete.)
    tmux.wait_for("the download to start", long, |s| {
        s.contains("download 1 started") || s.contains("download 1 complete")
    });
    tmux.keys(&["2"]);
    let screen = tmux.wait_for("the download to complete", long, |s| {
        s.lines()
            .any(|l| l.starts_with("1   Hazel Trio") && l.contains("100%") && l.contains("done"))
    });
    assert!(screen.contains("Downloads (1)"), "{screen}");
    let downloads = demo.join("you").join("downloads");
    let saved = downloads.join(live);
    // (Placed before the row says done; a short wait only makes a failure
    // say what is there instead.)
    let deadline = Instant::now() + Duration::from_secs(5);
    while !saved.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let listing: Vec<String> = std::fs::read_dir(&downloads)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    format!(
                        "{:?} {:?}",
                        e.file_name(),
                        e.metadata().map(|m| m.len()).ok()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        std::fs::metadata(&saved).map(|m| m.len()).unwrap_or(0),
        1536 * 1024,
        "{}: the downloads folder holds {listing:?}; the screen was\n{screen}",
        saved.display()
    );

    let pids = std::fs::read_to_string(demo.join("pids")).expect("the playground's pids");
    assert!(pids.lines().count() >= 8, "{pids}");
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("hazel to exit", long, |s| s.contains("hazel exited with"));
    assert!(screen.contains("hazel exited with 0"), "{screen}");
    // The terminal is restored: the main screen, the cursor shown, cooked mode with echo.
    assert_eq!(tmux.display("#{alternate_on}"), "0");
    assert_eq!(tmux.display("#{cursor_flag}"), "1");
    let stty = screen
        .split("hazel exited with 0")
        .nth(1)
        .unwrap_or_default();
    let flags: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(flags.contains(&flag), "{flag} not set:\n{stty}");
    }
    // Every child of the playground is gone.
    for pid in pids.lines() {
        assert!(!alive(pid), "process {pid} of the playground still runs");
    }
}
