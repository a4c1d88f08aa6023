//! `hazel-load compare`: the two architectures from the user's chair. One
//! `hazel-index` and an overlay of `--servents` real `hazel` processes on
//! loopback (a random topology: each servent connects to `--degree`
//! earlier ones), every servent logged in to the index and sharing the same
//! files to both networks; one more servent, the user, joined to both. The
//! same search is then sent by the user to the overlay alone (a Query
//! flood) and to the index alone (one 200), alternating which goes first,
//! `--runs` times.
//!
//! For each: time from the command to the first and to the last result
//! (the last result is the one after which nothing came for `--settle-ms`),
//! results found, and what the network carried for it: for the flood, the
//! Queries and QueryHits every servent received and the bytes every link
//! carried in the window (compressed, as on the wire, keep-alives included);
//! for the index, the frames and bytes between the user and the server (the
//! server talks to nobody else for a search).
//!
//! Every process is killed and every file removed at the end, also on
//! error; every wait has a deadline.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::servent::raise_fd_limit;
use super::transfer::Hazel;

/// Options of `hazel-load compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Servents in the overlay (the user comes on top).
    #[arg(long, default_value_t = 50)]
    pub servents: usize,
    /// Earlier servents each one connects to.
    #[arg(long, default_value_t = 3)]
    pub degree: usize,
    /// Searches of each kind.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Every `--share-every`th servent shares a file matching the search.
    #[arg(long, default_value_t = 5)]
    pub share_every: usize,
    /// A search is over when no result came for this long.
    #[arg(long, default_value_t = 2000)]
    pub settle_ms: u64,
    /// The topology's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The `hazel` and `hazel-index` binaries' folder (default: this
    /// executable's).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Where the servents' data goes (default: the temp dir).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// One search as the user saw it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    first_ms: Option<f64>,
    last_ms: Option<f64>,
    results: usize,
    messages: u64,
    bytes: u64,
}

/// A process killed on drop.
pub(crate) struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A folder removed on drop.
pub(crate) struct WorkDir(pub(crate) PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running world, killed and removed on drop (the fields drop in
/// order: processes first, then their folder).
struct World {
    _index: Killed,
    index_addr: SocketAddr,
    servents: Vec<Hazel>,
    user: Hazel,
    _work: WorkDir,
}

/// The search every run makes, and the names that match it.
const WORD: &str = "needle";

/// An MP3-looking file of `frames` frames.
fn mp3(frames: usize, tag: u8) -> Vec<u8> {
    let mut data = Vec::with_capacity(frames * 417);
    for _ in 0..frames {
        data.extend([0xFF, 0xFB, 0x90, 0x00]);
        data.resize(data.len() + 413, tag);
    }
    data
}

pub(crate) fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

pub(crate) fn wait_for(
    deadline: Duration,
    what: &str,
    mut ok: impl FnMut() -> bool,
) -> io::Result<()> {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(io::Error::other(format!("timed out waiting for {what}")))
}

/// A `hazel-index` on a free loopback port with its data and log under
/// `work` (no limits on clones, searches or message rates), once it
/// accepts connections; `extra` goes on its command line.
pub(crate) fn start_index(
    binary: &Path,
    work: &Path,
    extra: &[&str],
) -> io::Result<(Killed, SocketAddr)> {
    let addr = free_port()?;
    let mut command = Command::new(binary);
    command
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(work.join("index"))
        .args(["--clones-per-ip", "0", "--searches-per-minute", "0"])
        .args(["--max-messages-per-second", "0", "--log-level", "warn"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("index.log"))?);
    super::die_with_parent(&mut command);
    let index = Killed(
        command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", binary.display())))?,
    );
    wait_for(Duration::from_secs(20), "hazel-index", || {
        TcpStream::connect(addr).is_ok()
    })?;
    Ok((index, addr))
}

/// Waits (bounded) until servent `i` is logged in to its index and shares
/// `files` there.
pub(crate) fn wait_on_index(servent: &Hazel, i: usize, files: u64) -> io::Result<()> {
    wait_for(
        Duration::from_secs(60),
        &format!("servent {i} on the index"),
        || {
            servent
                .ask("index status")
                .is_ok_and(|v| v[0]["state"] == "online" && v[0]["shared"].as_u64() == Some(files))
        },
    )
}

impl World {
    fn start(args: &CompareArgs) -> io::Result<World> {
        let bins = match &args.bin_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()?
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| io::Error::other("cannot locate the binaries"))?,
        };
        let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
        let work = base.join(format!("hazel-load-compare-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        let work_dir = WorkDir(work.clone());
        let (index_process, index_addr) = start_index(&bins.join("hazel-index"), &work, &[])?;
        let mut servents: Vec<Hazel> = Vec::new();
        let hazel = bins.join("hazel");
        let index = index_addr.to_string();
        let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
        for i in 0..args.servents {
            let share = work.join(format!("share-{i}"));
            std::fs::create_dir_all(&share)?;
            std::fs::write(share.join(format!("hay {i} a.mp3")), mp3(8, i as u8))?;
            std::fs::write(share.join(format!("hay {i} b.mp3")), mp3(9, i as u8))?;
            if i.is_multiple_of(args.share_every.max(1)) {
                let name = format!("{WORD} track {i}.mp3");
                std::fs::write(share.join(name), mp3(10 + i, i as u8))?;
            }
            let mut earlier: Vec<usize> = (0..i).collect();
            earlier.shuffle(&mut rng);
            let mut extra: Vec<String> = vec![
                "--index".into(),
                index.clone(),
                "--nick".into(),
                format!("s{i}"),
            ];
            for &j in earlier.iter().take(args.degree) {
                extra.push("--connect".into());
                extra.push(servents[j].addr.to_string());
            }
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            let dir = work.join(format!("s{i}"));
            servents.push(Hazel::spawn(&hazel, &dir, Some(&share), &extra)?);
        }
        // The user: a servent of its own, joined to a few peers and the index.
        let mut peers: Vec<usize> = (0..args.servents).collect();
        peers.shuffle(&mut rng);
        let mut extra = vec![
            "--index".to_string(),
            index.clone(),
            "--nick".into(),
            "user".into(),
        ];
        for &j in peers.iter().take(args.degree) {
            extra.push("--connect".into());
            extra.push(servents[j].addr.to_string());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let user = Hazel::spawn(&hazel, &work.join("user"), None, &extra)?;
        let world = World {
            _index: index_process,
            index_addr,
            servents,
            user,
            _work: work_dir,
        };
        world.wait_ready(args)?;
        Ok(world)
    }

    /// Every servent logged in and sharing, the user linked.
    fn wait_ready(&self, args: &CompareArgs) -> io::Result<()> {
        let expected = |i: usize| {
            if i.is_multiple_of(args.share_every.max(1)) {
                3
            } else {
                2
            }
        };
        for (i, s) in self.servents.iter().enumerate() {
            wait_on_index(s, i, expected(i))?;
        }
        wait_for(Duration::from_secs(60), "the user", || {
            let online = self
                .user
                .ask("index status")
                .is_ok_and(|v| v[0]["state"] == "online");
            let linked = self
                .user
                .ask("stats")
                .is_ok_and(|v| v["established"].as_u64().unwrap_or(0) >= 1);
            online && linked
        })
    }

    /// Queries and QueryHits received, and link bytes, over every servent.
    fn flood_counters(&self) -> io::Result<(u64, u64)> {
        let mut messages = 0;
        let mut bytes = 0;
        for s in self.servents.iter().chain(std::iter::once(&self.user)) {
            let stats = s.ask("stats")?;
            messages += stats["received"]["query"].as_u64().unwrap_or(0)
                + stats["received"]["query_hit"].as_u64().unwrap_or(0);
            let peers = s.ask("peers")?;
            for p in peers.as_array().into_iter().flatten() {
                bytes += p["bytes_in"].as_u64().unwrap_or(0);
            }
        }
        Ok((messages, bytes))
    }

    /// Frames and bytes between the user and the index.
    fn index_counters(&self) -> io::Result<(u64, u64)> {
        let status = self.user.ask("index status")?;
        let s = &status[0];
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        Ok((
            n("messages_in") + n("messages_out"),
            n("bytes_in") + n("bytes_out"),
        ))
    }

    /// One search by the user, timed from the command.
    fn search(&self, flood: bool, settle: Duration) -> io::Result<Sample> {
        let before = if flood {
            self.flood_counters()?
        } else {
            self.index_counters()?
        };
        let line = if flood {
            format!("search --gnutella {WORD}")
        } else {
            format!("search --index {WORD}")
        };
        let started = Instant::now();
        let id = self.user.ask(&line)?["search_id"]
            .as_u64()
            .ok_or_else(|| io::Error::other("no search id"))?;
        let mut first = None;
        let mut last = None;
        let mut count = 0;
        let mut last_change = started;
        let deadline = started + Duration::from_secs(30);
        while Instant::now() < deadline && last_change.elapsed() < settle {
            let n = self
                .user
                .ask(&format!("results {id}"))?
                .as_array()
                .map_or(0, Vec::len);
            let at = started.elapsed().as_secs_f64() * 1000.0;
            if n > count {
                first.get_or_insert(at);
                last = Some(at);
                count = n;
                last_change = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let after = if flood {
            self.flood_counters()?
        } else {
            self.index_counters()?
        };
        Ok(Sample {
            first_ms: first,
            last_ms: last,
            results: count,
            messages: after.0.saturating_sub(before.0),
            bytes: after.1.saturating_sub(before.1),
        })
    }
}

/// `a–b` over the samples' values.
fn range<T: PartialOrd + Copy>(
    values: impl Iterator<Item = T>,
    show: impl Fn(T) -> String,
) -> String {
    let values: Vec<T> = values.collect();
    let lo = values
        .iter()
        .copied()
        .fold(None, |m: Option<T>, v| match m {
            Some(m) if m <= v => Some(m),
            _ => Some(v),
        });
    let hi = values
        .iter()
        .copied()
        .fold(None, |m: Option<T>, v| match m {
            Some(m) if m >= v => Some(m),
            _ => Some(v),
        });
    match (lo, hi) {
        (Some(lo), Some(hi)) if show(lo) == show(hi) => show(lo),
        (Some(lo), Some(hi)) => format!("{}–{}", show(lo), show(hi)),
        _ => "-".into(),
    }
}

fn row(name: &str, samples: &[Sample]) -> String {
    let ms = |v: f64| format!("{v:.1} ms");
    format!(
        "| {name} | {} | {} | {} | {} | {} |",
        range(samples.iter().filter_map(|s| s.first_ms), ms),
        range(samples.iter().filter_map(|s| s.last_ms), ms),
        range(samples.iter().map(|s| s.results), |v| v.to_string()),
        range(samples.iter().map(|s| s.messages), |v| v.to_string()),
        range(samples.iter().map(|s| s.bytes), |v| v.to_string()),
    )
}

/// Starts the world, runs the searches, prints the table.
pub fn run(args: &CompareArgs) -> io::Result<()> {
    raise_fd_limit();
    let started = Instant::now();
    let world = World::start(args)?;
    println!(
        "compare: hazel-index at {} and {} servents (degree {}), {} sharing `{WORD}`; ready in {:.1} s",
        world.index_addr,
        args.servents,
        args.degree,
        args.servents.div_ceil(args.share_every.max(1)),
        started.elapsed().as_secs_f64()
    );
    let settle = Duration::from_millis(args.settle_ms);
    let mut flood = Vec::new();
    let mut index = Vec::new();
    for run in 0..args.runs.max(1) {
        let order = if run % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_flood in order {
            let sample = world.search(is_flood, settle)?;
            println!(
                "run {run} {}: first {:?} ms, last {:?} ms, {} results, {} messages, {} bytes",
                if is_flood { "flood" } else { "index" },
                sample.first_ms.map(|v| (v * 10.0).round() / 10.0),
                sample.last_ms.map(|v| (v * 10.0).round() / 10.0),
                sample.results,
                sample.messages,
                sample.bytes
            );
            if is_flood {
                flood.push(sample);
            } else {
                index.push(sample);
            }
        }
    }
    println!();
    println!(
        "| one search for `{WORD}` | first result | last result | results | messages | bytes |"
    );
    println!("|---|---|---|---|---|---|");
    println!("{}", row("index (one 200, the 201s, 202)", &index));
    println!("{}", row("flood (Query TTL 7, QueryHits)", &flood));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(first: f64, last: f64, results: usize, messages: u64, bytes: u64) -> Sample {
        Sample {
            first_ms: Some(first),
            last_ms: Some(last),
            results,
            messages,
            bytes,
        }
    }

    #[test]
    fn a_row_gives_each_measure_as_a_range_over_the_runs() {
        let runs = [
            sample(1.25, 2.0, 10, 12, 900),
            sample(0.5, 3.0, 10, 12, 1000),
        ];
        assert_eq!(
            row("index", &runs),
            "| index | 0.5 ms–1.2 ms | 2.0 ms–3.0 ms | 10 | 12 | 900–1000 |"
        );
        let nothing = Sample {
            first_ms: None,
            last_ms: None,
            ..sample(0.0, 0.0, 0, 0, 0)
        };
        assert_eq!(row("flood", &[nothing]), "| flood | - | - | 0 | 0 | 0 |");
    }
}
