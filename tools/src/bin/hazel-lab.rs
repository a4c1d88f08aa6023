//! `hazel-lab`: file-sharing search architectures measured side by side.
//!
//! - `hazel-lab sim`: runs scenarios (architecture × size × TTL × topology ×
//!   pong cache) and prints one row of measurements per run, as CSV or JSON.
//! - `hazel-lab report OUT-DIR`: runs the report's sweep and writes the
//!   table (Markdown, CSV, JSON) and the plots (SVG).
//! - `hazel-lab live --servents N`: the flooding workload on N real `hazel`
//!   processes on loopback and the index workload by the same servents on a
//!   real `hazel-index`, next to their simulation.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use hazel_tools::lab::live::LiveConfig;
use hazel_tools::lab::report::{self, Sweep};
use hazel_tools::lab::topology::Topology;
use hazel_tools::lab::{run, Arch, Row, Scenario};

/// A simulation allocates and frees small buffers by the million across
/// gigabytes of cores: mimalloc takes a quarter to a third off a
/// 100,000-node run compared with the system allocator (README, "How the
/// architectures compare").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "hazel-lab", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenarios: every combination of the lists given.
    Sim(SimArgs),
    /// Run the report's sweep and write tables and plots into OUT-DIR.
    Report(ReportArgs),
    /// Run the flooding workload on real `hazel` servents and the index
    /// workload by the same servents on a real `hazel-index` on 127.0.0.1,
    /// and compare them with their simulation.
    Live(LiveArgs),
}

#[derive(Args, Debug)]
struct LiveArgs {
    /// Servents to run.
    #[arg(long, default_value_t = 8)]
    servents: usize,
    /// Links per servent (a ring plus random links).
    #[arg(long, default_value_t = 3)]
    degree: usize,
    /// Link the servents as a random tree instead (no cycles: the counts
    /// must equal the simulation's exactly).
    #[arg(long)]
    tree: bool,
    #[arg(long, default_value_t = 4)]
    ttl: u8,
    #[arg(long, default_value_t = 10)]
    queries: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The `hazel` binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    hazel: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct SimArgs {
    /// Architectures: flood, index, super, dht (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "flood,index,super,dht")]
    arch: Vec<Arch>,
    /// Network sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    nodes: Vec<usize>,
    /// Flood TTLs (comma-separated; `1..7` for a range).
    #[arg(long, value_delimiter = ',', default_value = "7", value_parser = parse_ttls)]
    ttl: Vec<Vec<u8>>,
    /// Overlay topologies for flood and super: random, powerlaw.
    #[arg(long, value_delimiter = ',', default_value = "random")]
    topology: Vec<Topology>,
    /// Neighbours per node on random overlays (ultrapeers among themselves for super).
    #[arg(long, default_value_t = 4)]
    degree: usize,
    /// Pong caching: on, off or both.
    #[arg(long, default_value = "on")]
    pong_cache: PongCache,
    /// Queries per run.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Distinct files (0: one per ten nodes, at least 50).
    #[arg(long, default_value_t = 0)]
    files: usize,
    /// Zipf exponent of the replica counts.
    #[arg(long, default_value_t = 1.0)]
    alpha: f64,
    /// Share of the nodes leaving (and as many rejoining) before each query.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Host-discovery Pings before each query (flood and super).
    #[arg(long, default_value_t = 1)]
    pings_per_query: usize,
    /// Virtual time between queries (ms).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Leaves per ultrapeer (super).
    #[arg(long, default_value_t = 30)]
    leaves_per_ultrapeer: usize,
    /// Link latency: base and jitter (ms).
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    #[arg(long, default_value_t = 80)]
    jitter_ms: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads the simulated network runs on (1 to 16). Results depend on
    /// the seed and on this, not on the machine.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    threads: u16,
    /// Output format.
    #[arg(long, default_value = "csv")]
    format: Format,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Where the table and plots go (created if missing).
    out_dir: PathBuf,
    /// The largest network of the size sweep.
    #[arg(long, default_value_t = 100_000)]
    max_nodes: usize,
    /// Queries per run.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PongCache {
    On,
    Off,
    Both,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Csv,
    Json,
}

fn parse_ttls(s: &str) -> Result<Vec<u8>, String> {
    let parse = |t: &str| -> Result<u8, String> {
        match t.trim().parse::<u8>() {
            Ok(n) if (1..=15).contains(&n) => Ok(n),
            _ => Err(format!("bad TTL {t:?} (1..15)")),
        }
    };
    match s.split_once("..") {
        Some((a, b)) => Ok((parse(a)?..=parse(b)?).collect()),
        None => Ok(vec![parse(s)?]),
    }
}

fn scenarios(args: &SimArgs) -> Vec<Scenario> {
    let ttls: Vec<u8> = args.ttl.iter().flatten().copied().collect();
    let caches: &[bool] = match args.pong_cache {
        PongCache::On => &[true],
        PongCache::Off => &[false],
        PongCache::Both => &[true, false],
    };
    let mut out = Vec::new();
    for &nodes in &args.nodes {
        for &arch in &args.arch {
            let (topologies, ttls, caches): (&[Topology], &[u8], &[bool]) = match arch {
                Arch::Flood | Arch::Super => (&args.topology, &ttls, caches),
                Arch::Index | Arch::Dht => (&[Topology::Random], &[7], &[true]),
            };
            for &topology in topologies {
                for &ttl in ttls {
                    for &pong_cache in caches {
                        let mut s = Scenario::new(arch, nodes);
                        s.topology = topology;
                        s.ttl = ttl;
                        s.pong_cache = pong_cache;
                        s.degree = args.degree;
                        s.churn = args.churn;
                        s.pings_per_query = args.pings_per_query;
                        s.interval_ms = args.interval_ms;
                        s.leaves_per_ultrapeer = args.leaves_per_ultrapeer;
                        s.latency_ms = args.latency_ms;
                        s.jitter_ms = args.jitter_ms;
                        s.seed = args.seed;
                        s.threads = usize::from(args.threads);
                        s.workload.queries = args.queries;
                        s.workload.files = args.files;
                        s.workload.alpha = args.alpha;
                        out.push(s);
                    }
                }
            }
        }
    }
    out
}

fn sim(args: &SimArgs) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if matches!(args.format, Format::Csv) {
        writeln!(out, "{}", report::CSV_HEADER)?;
    }
    for scenario in scenarios(args) {
        let row: Row = run(&scenario);
        // The process's peak so far: the largest run's, when several ran.
        let peak = hazel_tools::load::proc_stats::peak_rss_bytes(std::process::id()).map_or_else(
            |_| "?".to_string(),
            |b| format!("{:.2}", b as f64 / (1u64 << 30) as f64),
        );
        eprintln!(
            "{} n={} ttl={} {}: {:.1} s (setup {:.1} s; {} queries with {} messages in {:.1} s, \
             {:.2} µs per message; peak RSS {peak} GiB)",
            row.arch,
            row.nodes,
            row.ttl,
            row.topology,
            row.wall_secs,
            row.setup_secs,
            row.queries,
            row.simulated_messages,
            row.wall_secs - row.setup_secs,
            row.micros_per_message()
        );
        match args.format {
            Format::Csv => writeln!(out, "{}", report::csv_line(&row))?,
            Format::Json => writeln!(out, "{}", serde_json::to_string(&row)?)?,
        }
        out.flush()?;
    }
    Ok(())
}

fn live(args: &LiveArgs) -> io::Result<()> {
    let hazel = hazel_tools::load::hazel_binary(args.hazel.as_deref())?;
    let config = LiveConfig {
        servents: args.servents,
        tree: args.tree,
        degree: args.degree,
        ttl: args.ttl,
        queries: args.queries,
        seed: args.seed,
        hazel,
        query_timeout: Duration::from_secs(10),
    };
    let report = hazel_tools::lab::live::run(&config)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", hazel_tools::lab::live::render(&report));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => sim(&args),
        Command::Live(args) => live(&args),
        Command::Report(args) => {
            let sweep = Sweep {
                max_nodes: args.max_nodes,
                queries: args.queries,
                seed: args.seed,
            };
            report::write(&args.out_dir, &sweep, |line| eprintln!("{line}")).map(|_| ())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hazel-lab: {e}");
            ExitCode::FAILURE
        }
    }
}
