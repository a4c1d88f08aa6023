//! `hazel-load transfer`: file transfer over loopback, Hazel beside a
//! reference measured in the same run (nginx serving with sendfile, one
//! worker, fetched by curl).
//!
//! Workloads (`all` runs each, runs alternating Hazel and the reference):
//! - `single`: one file (`--size-mib`, default 1 GiB) from one source:
//!   hazel → hazel (a fresh downloader per run, `get` of a magnet naming the
//!   source) and nginx → curl. Throughput, CPU seconds per GiB on each side,
//!   the downloader's peak RSS (VmHWM). The downloader's time runs from
//!   `get` until the verified file appears in its downloads folder, so it
//!   includes the whole-file SHA-1 and the final sync; curl's ends when the
//!   last byte is written to the page cache.
//! - `three`: the same file from three hazel sources at once: throughput and
//!   how many bytes each source served.
//! - `four`: four curl clients fetch the file at once, from one hazel and
//!   then from nginx: aggregate rate and the spread between the four.
//! - `route`: `hazel-load servent route` against one hazel, first idle, then
//!   while four readers download the file from it over and over; the routed
//!   descriptors per second and the control socket's `stats` round trip
//!   (p50, p99, max), so serving files is seen not to starve the overlay.
//!
//! Every process is killed and every file removed at the end, also on
//! error; every wait has a deadline.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hazel_protocol::magnet::Magnet;

use super::proc_stats;
use super::servent::{control_command, flood, raise_fd_limit};

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// Options of `hazel-load transfer`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// What to measure.
    #[arg(value_enum, default_value = "all")]
    pub workload: TransferWorkload,
    /// The `hazel` binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub hazel: Option<PathBuf>,
    /// The reference server's binary, or `none` to measure Hazel alone.
    #[arg(long, default_value = "nginx")]
    pub nginx: String,
    /// The reference client.
    #[arg(long, default_value = "curl")]
    pub curl: String,
    /// Size of the file transferred, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Runs of each measurement (Hazel and the reference alternate).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the file, the servents' data and the downloads go (default: the temp dir).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Seconds of routing measured in `route`, idle and then under uploads.
    #[arg(long, default_value_t = 10)]
    pub route_seconds: u64,
    /// Flooding neighbours in `route`.
    #[arg(long, default_value_t = 8)]
    pub neighbours: usize,
    /// Give downloaders the file's Tiger root (a bitprint magnet), as a
    /// search result would: each range is then checked against the tree too.
    #[arg(long)]
    pub tiger: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransferWorkload {
    Single,
    Three,
    Four,
    Route,
    All,
}

/// Runs the chosen workloads and prints their numbers.
pub fn run(args: &TransferArgs) -> io::Result<()> {
    raise_fd_limit();
    let hazel = super::hazel_binary(args.hazel.as_deref())?;
    let work = WorkDir::create(args.dir.as_deref())?;
    let size = args.size_mib.max(1) * 1024 * 1024;
    let name = format!("bench-{}MiB.bin", args.size_mib.max(1));
    let share = work.path.join("share");
    std::fs::create_dir_all(&share)?;
    let started = Instant::now();
    write_content(&share.join(&name), size)?;
    println!(
        "transfer: a {} MiB file over loopback, {} run(s) each; file written in {:.1} s",
        size / (1024 * 1024),
        args.runs.max(1),
        started.elapsed().as_secs_f64()
    );
    let bench = Bench {
        hazel,
        work: work.path.clone(),
        share,
        name,
        size,
        runs: args.runs.max(1),
        args: args.clone(),
    };
    let nginx = if args.nginx == "none" {
        None
    } else {
        Some(Nginx::start(
            &args.nginx,
            &bench.work.join("nginx"),
            &bench.share,
        )?)
    };
    let source = bench.source("source")?;
    let file = FileInfo::wait_shared(&source, &bench.name, bench.size)?;
    let workloads: &[TransferWorkload] = match args.workload {
        TransferWorkload::All => &[
            TransferWorkload::Single,
            TransferWorkload::Three,
            TransferWorkload::Four,
            TransferWorkload::Route,
        ],
        TransferWorkload::Single => &[TransferWorkload::Single],
        TransferWorkload::Three => &[TransferWorkload::Three],
        TransferWorkload::Four => &[TransferWorkload::Four],
        TransferWorkload::Route => &[TransferWorkload::Route],
    };
    for workload in workloads {
        match workload {
            TransferWorkload::Single => bench.single(&source, &file, nginx.as_ref())?,
            TransferWorkload::Three => bench.three(&source, &file)?,
            TransferWorkload::Four => bench.four(&source, &file, nginx.as_ref())?,
            TransferWorkload::Route => bench.route(&source, &file)?,
            TransferWorkload::All => {}
        }
    }
    Ok(())
}

/// A working directory removed at the end.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(base: Option<&Path>) -> io::Result<WorkDir> {
        let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let path = base.join(format!("hazel-load-transfer-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Writes `size` bytes of pseudo-random content (incompressible, so nothing
/// on the way can shortcut it).
fn write_content(path: &Path, size: u64) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()
}

/// A running `hazel --headless`, killed on drop.
pub(crate) struct Hazel {
    child: Child,
    pid: u32,
    pub(crate) addr: SocketAddr,
    pub(crate) data_dir: PathBuf,
}

impl Drop for Hazel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Hazel {
    pub(crate) fn spawn(
        bin: &Path,
        data_dir: &Path,
        share: Option<&Path>,
        extra: &[&str],
    ) -> io::Result<Hazel> {
        std::fs::create_dir_all(data_dir)?;
        let log = std::fs::File::create(data_dir.join("hazel.log"))?;
        let mut command = Command::new(bin);
        command
            .args(["--headless", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--peers", "0", "--max-peers", "64", "--log-level", "warn"]);
        if let Some(share) = share {
            command.arg("--share").arg(share);
        }
        super::die_with_parent(&mut command);
        let child = command
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", bin.display())))?;
        let mut hazel = Hazel {
            pid: child.id(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let port = std::fs::read_to_string(data_dir.join("port")).unwrap_or_default();
            if let Ok(addr) = port.trim().parse() {
                hazel.addr = addr;
                if hazel.ask("stats").is_ok() {
                    return Ok(hazel);
                }
            }
            if let Ok(Some(status)) = hazel.child.try_wait() {
                return Err(io::Error::other(format!(
                    "hazel exited ({status}); see {}",
                    data_dir.join("hazel.log").display()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::other("hazel did not start within 20 s"))
    }

    /// One control command; the reply's data.
    pub(crate) fn ask(&self, line: &str) -> io::Result<serde_json::Value> {
        let mut answer = control_command(&self.data_dir.join("control.sock"), line)?;
        if answer["ok"] != true {
            return Err(io::Error::other(format!("`{line}`: {}", answer["error"])));
        }
        Ok(answer["reply"]["data"].take())
    }

    fn cpu(&self) -> f64 {
        cpu_of(self.pid)
    }
}

fn cpu_of(pid: u32) -> f64 {
    proc_stats::sample(pid).map_or(0.0, |s| s.cpu.as_secs_f64())
}

/// The shared file as the source announces it.
struct FileInfo {
    name: String,
    size: u64,
    urn: String,
    sha1: [u8; 20],
    /// The Tiger root the source announces (given to downloaders with `--tiger`).
    tiger: Option<[u8; 24]>,
}

impl FileInfo {
    /// Waits (bounded by the size) until `source` shares `name` with its SHA-1.
    fn wait_shared(source: &Hazel, name: &str, size: u64) -> io::Result<FileInfo> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60 + size / (20 << 20));
        while Instant::now() < deadline {
            let shares = source.ask("shares")?;
            let file = shares["list"]
                .as_array()
                .and_then(|list| list.iter().find(|f| f["name"] == name))
                .cloned()
                .unwrap_or_default();
            let urn = file["sha1"].as_str().map(str::to_string);
            let tiger = file["tiger"]
                .as_str()
                .and_then(|t| hazel_protocol::thex::parse_tiger_base32(t.as_bytes()));
            if let (Some(urn), Some(_)) = (urn, tiger) {
                let sha1 = Magnet::parse(&format!("magnet:?xt={urn}"))
                    .ok()
                    .and_then(|m| m.sha1)
                    .ok_or_else(|| io::Error::other(format!("unreadable urn {urn}")))?;
                println!(
                    "  the source hashed it in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return Ok(FileInfo {
                    name: name.to_string(),
                    size,
                    urn,
                    sha1,
                    tiger,
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::other("the source did not hash the file in time"))
    }

    fn magnet(&self, sources: &[SocketAddr], with_tiger: bool) -> String {
        Magnet {
            sha1: Some(self.sha1),
            tiger: self.tiger.filter(|_| with_tiger),
            name: Some(self.name.clone()),
            size: Some(self.size),
            sources: sources.to_vec(),
        }
        .to_link()
    }

    fn path_on(&self, addr: SocketAddr) -> String {
        format!("http://{addr}/uri-res/N2R?{}", self.urn)
    }
}

struct Bench {
    hazel: PathBuf,
    work: PathBuf,
    share: PathBuf,
    name: String,
    size: u64,
    runs: usize,
    args: TransferArgs,
}

/// One hazel → hazel download.
struct HazelRun {
    seconds: f64,
    getter_cpu: f64,
    sources_cpu: f64,
    peak_rss: u64,
    /// (source, bytes it served)
    split: Vec<(String, u64)>,
    /// How the download checked the bytes (`sha1`, or with the Tiger tree).
    verification: String,
}

/// One curl download.
struct CurlRun {
    seconds: f64,
    cpu: f64,
    server_cpu: f64,
}

impl Bench {
    /// A hazel sharing the benchmark folder, with room for many uploads.
    fn source(&self, name: &str) -> io::Result<Hazel> {
        Hazel::spawn(
            &self.hazel,
            &self.work.join(name),
            Some(&self.share),
            &["--upload-slots", "16", "--upload-slots-per-ip", "16"],
        )
    }

    fn mib_per_s(&self, seconds: f64) -> f64 {
        self.size as f64 / MIB / seconds.max(1e-9)
    }

    fn per_gib(&self, cpu: f64) -> f64 {
        cpu / (self.size as f64 / GIB)
    }

    /// A fresh downloader fetches the file from `sources`.
    fn hazel_get(&self, sources: &[&Hazel], file: &FileInfo, run: usize) -> io::Result<HazelRun> {
        let dir = self.work.join(format!("getter-{run}"));
        let downloads = dir.join("downloads");
        let per_download = sources.len().max(1).to_string();
        let downloads_arg = downloads.display().to_string();
        let getter = Hazel::spawn(
            &self.hazel,
            &dir,
            None,
            &[
                "--downloads",
                &downloads_arg,
                "--sources-per-download",
                &per_download,
            ],
        )?;
        let addrs: Vec<SocketAddr> = sources.iter().map(|s| s.addr).collect();
        let magnet = file.magnet(&addrs, self.args.tiger);
        let target = downloads.join(&file.name);
        let (getter_cpu0, sources_cpu0) =
            (getter.cpu(), sources.iter().map(|s| s.cpu()).sum::<f64>());
        let started = Instant::now();
        getter.ask(&format!("get {magnet}"))?;
        let deadline = started + Duration::from_secs(120 + self.size / (5 << 20));
        while !target.exists() {
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "the download did not finish in time: {}",
                    getter.ask("transfers").unwrap_or_default()
                )));
            }
            thread::sleep(Duration::from_millis(2));
        }
        let seconds = started.elapsed().as_secs_f64();
        let getter_cpu = getter.cpu() - getter_cpu0;
        let sources_cpu = sources.iter().map(|s| s.cpu()).sum::<f64>() - sources_cpu0;
        let peak_rss = proc_stats::peak_rss_bytes(getter.pid).unwrap_or(0);
        let got = std::fs::metadata(&target)?.len();
        if got != file.size {
            return Err(io::Error::other(format!(
                "downloaded {got} bytes of {}",
                file.size
            )));
        }
        let transfers = getter.ask("transfers")?;
        let split = transfers["downloads"][0]["sources"]
            .as_array()
            .map(|sources| {
                sources
                    .iter()
                    .map(|s| {
                        (
                            s["addr"].as_str().unwrap_or("?").to_string(),
                            s["delivered"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let verification = transfers["downloads"][0]["verification"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        drop(getter);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(HazelRun {
            verification,
            seconds,
            getter_cpu,
            sources_cpu,
            peak_rss,
            split,
        })
    }

    fn single(&self, source: &Hazel, file: &FileInfo, nginx: Option<&Nginx>) -> io::Result<()> {
        println!("single: one source, one downloader");
        let mut hazel_runs = Vec::new();
        let mut curl_runs = Vec::new();
        for run in 0..self.runs {
            let h = self.hazel_get(&[source], file, run)?;
            println!(
                "  run {}: hazel → hazel {:.0} MiB/s (downloader {:.2} CPU s/GiB, peak RSS {:.1} MiB; source {:.2} CPU s/GiB; checked by {})",
                run + 1,
                self.mib_per_s(h.seconds),
                self.per_gib(h.getter_cpu),
                h.peak_rss as f64 / MIB,
                self.per_gib(h.sources_cpu),
                h.verification,
            );
            hazel_runs.push(h);
            if let Some(nginx) = nginx {
                let out = self.work.join("curl.out");
                let c = curl_get(&self.args.curl, &nginx.url(&file.name), &out, nginx)?;
                let _ = std::fs::remove_file(&out);
                println!(
                    "  run {}: nginx → curl  {:.0} MiB/s (curl {:.2} CPU s/GiB; nginx {:.2} CPU s/GiB)",
                    run + 1,
                    self.mib_per_s(c.seconds),
                    self.per_gib(c.cpu),
                    self.per_gib(c.server_cpu),
                );
                curl_runs.push(c);
            }
        }
        let rates: Vec<f64> = hazel_runs
            .iter()
            .map(|h| self.mib_per_s(h.seconds))
            .collect();
        println!("  hazel → hazel: {} MiB/s", range(&rates, 0));
        println!(
            "    downloader CPU {} s/GiB, source CPU {} s/GiB, downloader peak RSS {} MiB",
            range(
                &hazel_runs
                    .iter()
                    .map(|h| self.per_gib(h.getter_cpu))
                    .collect::<Vec<_>>(),
                2
            ),
            range(
                &hazel_runs
                    .iter()
                    .map(|h| self.per_gib(h.sources_cpu))
                    .collect::<Vec<_>>(),
                2
            ),
            range(
                &hazel_runs
                    .iter()
                    .map(|h| h.peak_rss as f64 / MIB)
                    .collect::<Vec<_>>(),
                1
            ),
        );
        if !curl_runs.is_empty() {
            let reference: Vec<f64> = curl_runs
                .iter()
                .map(|c| self.mib_per_s(c.seconds))
                .collect();
            println!("  nginx → curl: {} MiB/s", range(&reference, 0));
            println!(
                "    curl CPU {} s/GiB, nginx CPU {} s/GiB",
                range(
                    &curl_runs
                        .iter()
                        .map(|c| self.per_gib(c.cpu))
                        .collect::<Vec<_>>(),
                    2
                ),
                range(
                    &curl_runs
                        .iter()
                        .map(|c| self.per_gib(c.server_cpu))
                        .collect::<Vec<_>>(),
                    2
                ),
            );
            let ratios: Vec<f64> = rates.iter().zip(&reference).map(|(h, n)| h / n).collect();
            println!(
                "  throughput ratio hazel/nginx per run: {}",
                range(&ratios, 2)
            );
        }
        Ok(())
    }

    fn three(&self, source: &Hazel, file: &FileInfo) -> io::Result<()> {
        println!("three: three hazel sources, one downloader");
        let second = self.source("source-2")?;
        let third = self.source("source-3")?;
        FileInfo::wait_shared(&second, &file.name, file.size)?;
        FileInfo::wait_shared(&third, &file.name, file.size)?;
        let mut rates = Vec::new();
        for run in 0..self.runs {
            let h = self.hazel_get(&[source, &second, &third], file, 100 + run)?;
            let split: Vec<String> = h
                .split
                .iter()
                .map(|(addr, bytes)| format!("{addr} {:.0} MiB", *bytes as f64 / MIB))
                .collect();
            println!(
                "  run {}: {:.0} MiB/s (downloader {:.2} CPU s/GiB, peak RSS {:.1} MiB); served: {}",
                run + 1,
                self.mib_per_s(h.seconds),
                self.per_gib(h.getter_cpu),
                h.peak_rss as f64 / MIB,
                split.join(", ")
            );
            rates.push(self.mib_per_s(h.seconds));
        }
        println!("  three sources: {} MiB/s", range(&rates, 0));
        Ok(())
    }

    fn four(&self, source: &Hazel, file: &FileInfo, nginx: Option<&Nginx>) -> io::Result<()> {
        println!("four: four curl clients at once");
        let mut hazel_aggr = Vec::new();
        let mut nginx_aggr = Vec::new();
        for run in 0..self.runs {
            let url = file.path_on(source.addr);
            let cpu0 = source.cpu();
            let seconds = curl_parallel(&self.args.curl, &url, 4)?;
            let cpu = source.cpu() - cpu0;
            let aggregate = 4.0 * self.size as f64 / MIB / max(&seconds);
            let each: Vec<f64> = seconds.iter().map(|s| self.mib_per_s(*s)).collect();
            println!(
                "  run {}: hazel aggregate {aggregate:.0} MiB/s, each {} MiB/s, {:.2} CPU s/GiB",
                run + 1,
                list(&each),
                cpu / (4.0 * self.size as f64 / GIB)
            );
            hazel_aggr.push(aggregate);
            if let Some(nginx) = nginx {
                let cpu0 = nginx.cpu();
                let seconds = curl_parallel(&self.args.curl, &nginx.url(&file.name), 4)?;
                let cpu = nginx.cpu() - cpu0;
                let aggregate = 4.0 * self.size as f64 / MIB / max(&seconds);
                let each: Vec<f64> = seconds.iter().map(|s| self.mib_per_s(*s)).collect();
                println!(
                    "  run {}: nginx aggregate {aggregate:.0} MiB/s, each {} MiB/s, {:.2} CPU s/GiB",
                    run + 1,
                    list(&each),
                    cpu / (4.0 * self.size as f64 / GIB)
                );
                nginx_aggr.push(aggregate);
            }
        }
        println!("  hazel aggregate: {} MiB/s", range(&hazel_aggr, 0));
        if !nginx_aggr.is_empty() {
            println!("  nginx aggregate: {} MiB/s", range(&nginx_aggr, 0));
            let ratios: Vec<f64> = hazel_aggr
                .iter()
                .zip(&nginx_aggr)
                .map(|(h, n)| h / n)
                .collect();
            println!(
                "  aggregate ratio hazel/nginx per run: {}",
                range(&ratios, 2)
            );
        }
        Ok(())
    }

    fn route(&self, source: &Hazel, file: &FileInfo) -> io::Result<()> {
        println!(
            "route: {} neighbours flooding for {} s, idle and then with four readers downloading",
            self.args.neighbours, self.args.route_seconds
        );
        let seconds = self.args.route_seconds.max(1);
        for run in 0..self.runs {
            let (idle, idle_ctl) = self.route_window(source)?;
            let readers = Readers::start(source.addr, file, 4);
            thread::sleep(Duration::from_secs(1));
            let read0 = readers.bytes.load(Ordering::Relaxed);
            let (loaded, loaded_ctl) = self.route_window(source)?;
            let read = readers.bytes.load(Ordering::Relaxed) - read0;
            let completed = readers.completed.load(Ordering::Relaxed);
            drop(readers);
            println!(
                "  run {}: idle {:.0} routed/s, ctl stats p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
                run + 1,
                idle,
                idle_ctl.0,
                idle_ctl.1,
                idle_ctl.2
            );
            println!(
                "  run {}: uploading {:.0} MiB/s ({} whole files): {:.0} routed/s ({:.2}× idle), ctl stats p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
                run + 1,
                read as f64 / MIB / (seconds as f64 + 1.0),
                completed,
                loaded,
                loaded / idle.max(1e-9),
                loaded_ctl.0,
                loaded_ctl.1,
                loaded_ctl.2
            );
        }
        Ok(())
    }

    /// One flood against `source` with the control socket sampled every
    /// 20 ms; routed/s and the `stats` round trip (p50, p99, max, in ms).
    fn route_window(&self, source: &Hazel) -> io::Result<(f64, (f64, f64, f64))> {
        let stop = Arc::new(AtomicBool::new(false));
        let socket = source.data_dir.join("control.sock");
        let sampler = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut samples = Vec::new();
                while !stop.load(Ordering::Relaxed) && samples.len() < 100_000 {
                    let t = Instant::now();
                    if control_command(&socket, "stats").is_ok() {
                        samples.push(t.elapsed());
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                samples
            })
        };
        let result = flood(
            source.addr,
            source.pid,
            self.args.neighbours,
            self.args.route_seconds.max(1),
            20_000,
            || None,
        );
        stop.store(true, Ordering::Relaxed);
        let mut samples = sampler.join().unwrap_or_default();
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let ctl = (
            ms(super::percentile(&samples, 50.0)),
            ms(super::percentile(&samples, 99.0)),
            ms(samples.last().copied().unwrap_or_default()),
        );
        Ok((result?.routed_per_second(), ctl))
    }
}

/// Threads that download a file from a servent over and over, counting bytes.
struct Readers {
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    completed: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Readers {
    fn start(addr: SocketAddr, file: &FileInfo, n: usize) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let completed = Arc::new(AtomicU64::new(0));
        let request = format!(
            "GET /uri-res/N2R?{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
            file.urn
        );
        let threads = (0..n)
            .map(|_| {
                let (stop, bytes, completed) = (stop.clone(), bytes.clone(), completed.clone());
                let request = request.clone();
                let size = file.size;
                thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut stream) = TcpStream::connect(addr) else {
                            thread::sleep(Duration::from_millis(50));
                            continue;
                        };
                        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                        if stream.write_all(request.as_bytes()).is_err() {
                            continue;
                        }
                        let mut got = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            match stream.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    got += n as u64;
                                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                        if got >= size {
                            completed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Readers {
            stop,
            bytes,
            completed,
            threads,
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// nginx serving the benchmark folder with sendfile and one worker.
struct Nginx {
    master: Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.master.kill();
        let _ = self.master.wait();
        // The worker follows its master; make sure.
        if let Some(worker) = self.worker() {
            // SAFETY: kill(2) on a pid we started (through its master).
            unsafe {
                libc::kill(worker as i32, libc::SIGKILL);
            }
        }
    }
}

impl Nginx {
    fn start(bin: &str, prefix: &Path, root: &Path) -> io::Result<Nginx> {
        std::fs::create_dir_all(prefix.join("tmp"))?;
        // A free port (the tiny race with another process is acceptable for a benchmark).
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let p = prefix.display();
        let conf = format!(
            "worker_processes 1;\n\
             daemon off;\n\
             master_process on;\n\
             pid {p}/nginx.pid;\n\
             error_log {p}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
               access_log off;\n\
               sendfile on;\n\
               tcp_nopush on;\n\
               default_type application/octet-stream;\n\
               client_body_temp_path {p}/tmp/body;\n\
               proxy_temp_path {p}/tmp/proxy;\n\
               fastcgi_temp_path {p}/tmp/fastcgi;\n\
               uwsgi_temp_path {p}/tmp/uwsgi;\n\
               scgi_temp_path {p}/tmp/scgi;\n\
               server {{ listen 127.0.0.1:{port}; root {}; }}\n\
             }}\n",
            root.display()
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let master = Command::new(bin)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{bin}: {e} (install nginx, or pass --nginx none)"),
                )
            })?;
        let nginx = Nginx { master, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() && nginx.worker().is_some() {
                let version = Command::new(bin)
                    .arg("-v")
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                    .unwrap_or_default();
                println!("  reference: {version}, sendfile on, 1 worker, at 127.0.0.1:{port}");
                return Ok(nginx);
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other(format!(
            "nginx did not listen within 10 s; see {}/error.log",
            prefix.display()
        )))
    }

    fn worker(&self) -> Option<u32> {
        let pid = self.master.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// CPU of the worker (the master does nothing per request).
    fn cpu(&self) -> f64 {
        self.worker().map_or(0.0, cpu_of)
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

/// curl fetches `url` into `out`; its time and CPU (from wait4), and the
/// server's CPU meanwhile.
fn curl_get(curl: &str, url: &str, out: &Path, server: &Nginx) -> io::Result<CurlRun> {
    let server_cpu0 = server.cpu();
    let started = Instant::now();
    let child = spawn_curl(curl, url, out)?;
    let cpu = wait_rusage(child)?;
    Ok(CurlRun {
        seconds: started.elapsed().as_secs_f64(),
        cpu,
        server_cpu: server.cpu() - server_cpu0,
    })
}

/// `n` curls fetch `url` at once (to /dev/null); each one's seconds.
fn curl_parallel(curl: &str, url: &str, n: usize) -> io::Result<Vec<f64>> {
    let started = Instant::now();
    let children = (0..n)
        .map(|_| spawn_curl(curl, url, Path::new("/dev/null")))
        .collect::<io::Result<Vec<Child>>>()?;
    let waits: Vec<thread::JoinHandle<io::Result<f64>>> = children
        .into_iter()
        .map(|child| {
            thread::spawn(move || {
                wait_rusage(child)?;
                Ok(started.elapsed().as_secs_f64())
            })
        })
        .collect();
    waits
        .into_iter()
        .map(|w| {
            w.join()
                .unwrap_or_else(|_| Err(io::Error::other("waiter panicked")))
        })
        .collect()
}

fn spawn_curl(curl: &str, url: &str, out: &Path) -> io::Result<Child> {
    Command::new(curl)
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--max-time",
            "600",
            "--output",
        ])
        .arg(out)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{curl}: {e}")))
}

/// Waits for a child with wait4; its CPU seconds. Fails if it failed.
fn wait_rusage(child: Child) -> io::Result<f64> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child; both pointers are valid for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    // The child is reaped: `Child` must not wait for it again (it does not on drop).
    drop(child);
    if r != pid {
        return Err(io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(io::Error::other(format!("curl failed (status {status})")));
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(secs(usage.ru_utime) + secs(usage.ru_stime))
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::MIN, f64::max).max(1e-9)
}

/// `min–max (median m)` of a sample.
fn range(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = sorted[sorted.len() / 2];
    format!(
        "{:.*}–{:.*} (median {:.*}, {} runs)",
        decimals,
        sorted[0],
        decimals,
        sorted[sorted.len() - 1],
        decimals,
        median,
        sorted.len()
    )
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_min_max_and_median() {
        assert_eq!(range(&[3.0, 1.0, 2.0], 1), "1.0–3.0 (median 2.0, 3 runs)");
        assert_eq!(range(&[], 0), "-");
    }

    #[test]
    fn content_is_written_to_the_size_asked() {
        let dir = std::env::temp_dir().join(format!("hazel-load-content-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("f");
        write_content(&path, 3 * 1024 * 1024 + 5).expect("write");
        let data = std::fs::read(&path).expect("read");
        assert_eq!(data.len(), 3 * 1024 * 1024 + 5);
        // Not a repeated block: the second MiB differs from the first.
        assert_ne!(data[..1 << 20], data[1 << 20..2 << 20]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
