//! `hazel-load`: load generators and benchmarks. One subcommand per target;
//! each lives in its own module under `hazel_tools::load`.

use clap::{Parser, Subcommand};
use hazel_tools::load::index::{self, IndexLoadArgs};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "hazel-load",
    version,
    about = "Load generators and benchmarks for Hazel"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Share and search against an OpenNap-protocol index server; reports
    /// files/s, searches/s, latency, server CPU and memory.
    ///
    /// The workload: 100 guest clients share 100,000 files between them,
    /// each name 4 words drawn from a 5,000-word vocabulary (about 80 names
    /// per word); then, at each concurrency (1 and 16 clients), 10,000
    /// one-word searches and 10,000 two-word searches (two words of one
    /// shared name, so each has a hit), MAX_RESULTS 100. Every number is an
    /// option below.
    ///
    /// The server must let one client share and search fast: for
    /// hazel-index, `--searches-per-minute 0 --max-messages-per-second 0
    /// --clones-per-ip 0 --max-shares <files per client>` and
    /// `--max-connections` above clients + the largest concurrency.
    /// Memory per file is meaningful on a freshly started server.
    Index(IndexLoadArgs),
    /// Measure a real `hazel` servent: routed descriptors/s, CPU per routed
    /// descriptor, memory per idle connection, dedup table memory.
    ///
    /// The workloads: `route`, neighbours flood TTL-2 queries that the
    /// servent forwards to each other; `idle`, many connections complete the
    /// handshake and stay idle; `dedup`, one neighbour sends unique TTL-1
    /// queries that the servent must remember; `all` runs the three.
    Servent(hazel_tools::load::servent::ServentArgs),
    /// File transfer over loopback beside a reference in the same run:
    /// hazel → hazel and nginx (sendfile, one worker) → curl; three hazel
    /// sources at once; four curl clients at once; routing and control
    /// socket latency while uploads run.
    ///
    /// Throughput, CPU seconds per GiB on each side and the downloader's
    /// peak RSS, each as a range over the runs (Hazel and nginx alternate).
    /// Needs `nginx` and `curl` (or `--nginx none` to measure Hazel alone).
    Transfer(hazel_tools::load::transfer::TransferArgs),
    /// The two architectures side by side: a hazel-index and an overlay of
    /// real hazel servents on loopback, all logged in to the index and
    /// sharing the same files; one user searches the index alone and the
    /// overlay alone, alternately. Time to the first and the last result,
    /// results found, messages and bytes the network carried, as ranges
    /// over the runs. Needs `hazel` and `hazel-index` beside hazel-load.
    Compare(hazel_tools::load::compare::CompareArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Index(args) => match index::run(&args) {
            Ok(report) => {
                if args.json {
                    match serde_json::to_string(&report) {
                        Ok(line) => println!("{line}"),
                        Err(e) => {
                            eprintln!("hazel-load: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                } else {
                    print!("{}", report.to_text());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hazel-load index: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Transfer(args) => match hazel_tools::load::transfer::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hazel-load transfer: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Compare(args) => match hazel_tools::load::compare::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hazel-load compare: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Servent(args) => match hazel_tools::load::servent::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hazel-load servent: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
