//! `hazel --demo`: a playground on 127.0.0.1 for someone with no other
//! servent anywhere. It starts a `hazel-index` and 8–12 background `hazel`
//! servents (child processes of the real binaries, found next to this one)
//! linked in a random topology, each sharing generated sample files (some
//! files held by several servents, some servents `--firewalled`), then runs
//! this servent's interface joined to that overlay.
//!
//! Everything lives in one directory, a temporary one removed on exit unless
//! `--demo-dir DIR` names one to keep. Every child is stopped on every way
//! out: [`World`]'s `Drop` runs on a normal return, an error and a panic
//! (signals become a `quit` first), and on Linux each child also gets
//! SIGKILL when this process dies without unwinding (`PR_SET_PDEATHSIG`).
//!
//! Every servent, this one too (as `you`), logs in to the index and shares
//! its samples there, so a search lists hits from both networks.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};

use crate::cli::RunArgs;
use crate::data_dir::PORT_FILE;
use crate::run::{self, Frontend};
use crate::shell::tui::DemoInfo;

/// Sample files: name and size in KiB. The first [`POPULAR`] are shared by
/// several servents (their results group into one file with many sources).
pub const SAMPLES: &[(&str, u64)] = &[
    ("Hazel Trio - Live at the Loopback.ogg", 1536),
    ("Hazel Trio - Ambient Morning.ogg", 400),
    ("rain on a tin roof (field recording).flac", 600),
    ("Gnutella Protocol Specification v0.4.txt", 40),
    ("sunset over the bay.jpg", 150),
    ("Café del Mar – sunrise mix.mp3", 300),
    ("ambient drone study no. 2.ogg", 220),
    ("ambient piano loops.zip", 250),
    ("rain and thunder - 10 minutes.ogg", 240),
    ("city rain at night.mp3", 180),
    ("loopback networking for beginners.pdf", 90),
    ("open source peer to peer handbook.epub", 130),
    ("kitten on a keyboard.jpg", 60),
    ("mountain trail map.png", 80),
    ("jazz standards - blue in green.mp3", 200),
    ("jazz trio rehearsal (rough mix).ogg", 160),
    ("piano sonata in C minor.flac", 250),
    ("holiday photos 2003.zip", 200),
    ("recipe - sourdough bread.txt", 8),
    ("chess openings cheat sheet.pdf", 50),
    ("synthwave night drive.mp3", 190),
    ("lecture notes - distributed systems.pdf", 120),
    ("ocean waves for sleep.ogg", 230),
    ("birdsong at dawn.ogg", 140),
];
/// How many of [`SAMPLES`] (from the start) are held by several servents.
pub const POPULAR: usize = 6;
/// Words that find something in the playground.
pub const SUGGESTIONS: &[&str] = &["hazel trio", "ambient", "rain", "jazz"];
/// How long a child may take to announce its port.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long children get to quit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// The file in the playground directory listing the children's process ids.
pub const PIDS_FILE: &str = "pids";

/// The playground: its directory and its processes, both cleaned up on drop
/// (the processes first).
struct World {
    children: Vec<Child>,
    dir: PathBuf,
    /// The temporary directory, removed when dropped (None with `--demo-dir`).
    _temp: Option<tempfile::TempDir>,
}

impl World {
    fn create(keep: Option<&Path>) -> io::Result<World> {
        let (dir, temp) = match keep {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (dir.to_path_buf(), None)
            }
            None => {
                let temp = tempfile::Builder::new().prefix("hazel-demo-").tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        Ok(World {
            children: Vec::new(),
            dir,
            _temp: temp,
        })
    }

    /// Starts `program` with `args`, its stderr into `log`; the child dies with us.
    fn spawn(&mut self, program: &Path, args: &[String], log: &Path) -> io::Result<u32> {
        let log = std::fs::File::create(log)?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", program.display())))?;
        let pid = child.id();
        self.children.push(child);
        let pids: Vec<String> = self.children.iter().map(|c| c.id().to_string()).collect();
        std::fs::write(self.dir.join(PIDS_FILE), pids.join("\n") + "\n")?;
        Ok(pid)
    }

    /// SIGTERM to every child, a bounded wait, then SIGKILL to the rest.
    fn stop(&mut self) {
        for child in &self.children {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill only sends a signal to our own child.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline
            && self
                .children
                .iter_mut()
                .any(|c| matches!(c.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for child in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop();
    }
}

/// On Linux, the child gets SIGKILL when the thread that started it (ours,
/// the main thread) ends, however it ends.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

/// The bytes of a sample file: the same for every servent holding it (so
/// they share one SHA-1), different from every other file.
fn sample_bytes(name: &str, kib: u64) -> Vec<u8> {
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = vec![0u8; (kib * 1024) as usize];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// Which samples each of `servents` shares: every one some of the rest, the
/// popular ones two to four servents each.
pub fn deal_samples(servents: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    let mut shares = vec![Vec::new(); servents];
    for sample in 0..POPULAR {
        let holders = rng.gen_range(2..=4).min(servents);
        let mut who: Vec<usize> = (0..servents).collect();
        who.shuffle(rng);
        for s in &who[..holders] {
            shares[*s].push(sample);
        }
    }
    let mut rest: Vec<usize> = (POPULAR..SAMPLES.len()).collect();
    rest.shuffle(rng);
    for (i, sample) in rest.into_iter().enumerate() {
        shares[i % servents].push(sample);
    }
    shares
}

/// Writes the chosen samples into `dir`.
fn write_samples(dir: &Path, samples: &[usize]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for &i in samples {
        let (name, kib) = SAMPLES[i];
        std::fs::write(dir.join(name), sample_bytes(name, kib))?;
    }
    Ok(())
}

/// Waits (bounded) for a servent to write its address into `DATA-DIR/port`.
fn wait_for_port(data_dir: &Path, child: &mut Child) -> io::Result<SocketAddr> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(data_dir.join(PORT_FILE)) {
            if let Ok(addr) = text.trim().parse() {
                return Ok(addr);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(io::Error::other(format!(
                "a servent of the playground exited at start ({status}); see {}",
                data_dir.join("servent.log").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(io::Error::other(
        "a servent of the playground did not start in time",
    ))
}

/// Waits (bounded) for the index to log its listening address.
fn wait_for_index(log: &Path, child: &mut Child) -> Result<String, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("listening on ").nth(1) {
            if let Some(addr) = rest.split_whitespace().next() {
                return Ok(addr.to_string());
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("hazel-index exited at start ({status})"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err("hazel-index did not start in time".into())
}

/// Waits, at most [`INDEX_SHARES_WAIT`] in all, until each servent says it
/// is logged in to the index and shares something there.
fn wait_for_index_shares(data_dirs: &[PathBuf]) {
    let deadline = Instant::now() + INDEX_SHARES_WAIT;
    for dir in data_dirs {
        let socket = dir.join(crate::data_dir::CONTROL_SOCKET);
        while Instant::now() < deadline {
            let shared =
                crate::control::send_command(&socket, "index status", Duration::from_secs(1))
                    .ok()
                    .and_then(|r| r.reply)
                    .is_some_and(|r| {
                        r.data[0]["state"] == "online"
                            && r.data[0]["shared"].as_u64().unwrap_or(0) > 0
                    });
            if shared {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The longest the playground waits for its servents to share on the index.
const INDEX_SHARES_WAIT: Duration = Duration::from_secs(10);

/// `hazel --demo`: builds the playground, runs the interface, cleans up.
pub fn run(args: &RunArgs) -> io::Result<()> {
    let started = Instant::now();
    let mut world = World::create(args.demo_dir.as_deref())?;
    let dir = world.dir.clone();
    let own = std::env::current_exe()?;
    let bin_dir = own
        .parent()
        .ok_or_else(|| io::Error::other("cannot locate the directory of the hazel binary"))?;
    let mut rng = rand::thread_rng();

    // The index, if it was built beside us.
    let index_bin = bin_dir.join("hazel-index");
    let index = if index_bin.exists() {
        let index_dir = dir.join("index");
        std::fs::create_dir_all(&index_dir)?;
        let log = index_dir.join("index.log");
        let args: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            index_dir.display().to_string(),
            "--log-level".into(),
            "info".into(),
            // Every servent of the playground logs in from 127.0.0.1.
            "--clones-per-ip".into(),
            "0".into(),
        ];
        world.spawn(&index_bin, &args, &log)?;
        let child = world.children.last_mut().expect("just spawned");
        wait_for_index(&log, child)
    } else {
        Err("hazel-index is not built beside hazel: `cargo build --release -p hazel-index`".into())
    };

    // The servents, each linked to one or two started before it.
    let count = rng.gen_range(8..=12);
    let dealt = deal_samples(count, &mut rng);
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut data_dirs: Vec<PathBuf> = Vec::new();
    let mut firewalled = 0;
    for (i, samples) in dealt.iter().enumerate() {
        let data_dir = dir.join(format!("servent-{:02}", i + 1));
        let share = data_dir.join("share");
        write_samples(&share, samples)?;
        let mut child_args: Vec<String> = [
            "--headless",
            "--listen",
            "127.0.0.1:0",
            "--peers",
            "2",
            "--max-peers",
            "16",
            "--log-level",
            "warn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        child_args.extend(["--data-dir".into(), data_dir.display().to_string()]);
        child_args.extend(["--share".into(), share.display().to_string()]);
        let links = rng.gen_range(1..=2).min(addrs.len());
        for addr in addrs.choose_multiple(&mut rng, links) {
            child_args.extend(["--connect".into(), addr.to_string()]);
        }
        // Every one logs in to the index and shares there too.
        if let Ok(addr) = &index {
            child_args.extend(["--index".into(), addr.clone()]);
            child_args.extend(["--nick".into(), format!("demo{:02}", i + 1)]);
        }
        // Some servents behind a "firewall" (never the first two, which others reach first).
        if i >= 2 && rng.gen_bool(0.3) {
            child_args.push("--firewalled".into());
            firewalled += 1;
        }
        world.spawn(&own, &child_args, &data_dir.join("servent.log"))?;
        let child = world.children.last_mut().expect("just spawned");
        addrs.push(wait_for_port(&data_dir, child)?);
        data_dirs.push(data_dir);
    }
    // A first search should find everything: give the servents a moment
    // (bounded) to log in to the index and share there.
    if index.is_ok() {
        wait_for_index_shares(&data_dirs);
    }

    // This servent: linked to three of them, sharing two samples of its own.
    let you = dir.join("you");
    let share = you.join("share");
    write_samples(&share, &[SAMPLES.len() - 1, SAMPLES.len() - 2])?;
    let mut own_args = args.clone();
    own_args.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    own_args.data_dir = Some(you.clone());
    own_args.shares = vec![share];
    own_args.downloads = Some(you.join("downloads"));
    own_args.connect = addrs
        .choose_multiple(&mut rng, 3)
        .map(|a| a.to_string())
        .collect();
    own_args.peers = 3;
    own_args.firewalled = false;
    if let Ok(addr) = &index {
        own_args.index = vec![addr.clone()];
        own_args.nick = Some("you".into());
    }
    let config = own_args
        .to_config()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let frontend = Frontend::choose(false, args.line);
    run::init_logging(&args.log_level, frontend, &you);
    let info = DemoInfo {
        dir: dir.clone(),
        servents: count,
        firewalled,
        index: index.clone(),
        suggestions: SUGGESTIONS.iter().map(|s| s.to_string()).collect(),
    };
    if frontend != Frontend::FullScreen {
        println!(
            "playground: {count} servents ({firewalled} firewalled) on 127.0.0.1 in {}, ready in {} ms",
            hazel_protocol::text::escape_path(&dir),
            started.elapsed().as_millis()
        );
        match &index {
            Ok(addr) => println!(
                "hazel-index runs at {addr}; every servent, this one too (as `you`), shares there"
            ),
            Err(why) => println!("no index: {why}"),
        }
        println!("try: search {}", SUGGESTIONS.join(" | search "));
    }
    let result = run::run_as(config, frontend, Some(info));
    drop(world);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_dealt_and_popular_ones_to_several_servents() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for servents in 8..=12 {
            let dealt = deal_samples(servents, &mut rng);
            assert_eq!(dealt.len(), servents);
            for sample in 0..SAMPLES.len() {
                let holders = dealt.iter().filter(|s| s.contains(&sample)).count();
                if sample < POPULAR {
                    assert!((2..=4).contains(&holders), "sample {sample}: {holders}");
                } else {
                    assert_eq!(holders, 1, "sample {sample}");
                }
            }
            assert!(dealt.iter().all(|s| !s.is_empty()));
        }
    }

    #[test]
    fn a_sample_has_the_same_bytes_everywhere_and_differs_from_the_others() {
        let a = sample_bytes(SAMPLES[0].0, 4);
        assert_eq!(a, sample_bytes(SAMPLES[0].0, 4));
        assert_ne!(a, sample_bytes(SAMPLES[1].0, 4));
        assert_eq!(a.len(), 4096);
    }

    #[test]
    fn the_suggestions_find_samples() {
        for words in SUGGESTIONS {
            assert!(
                SAMPLES.iter().any(|(name, _)| words
                    .split_whitespace()
                    .all(|w| name.to_lowercase().contains(w))),
                "{words}"
            );
        }
    }
}
