//! `hazel-load`: load generators and measurements for Hazel's programs.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "hazel-load", version, about)]
struct Cli {
    #[command(subcommand)]
    workload: Load,
}

#[derive(Subcommand)]
enum Load {
    /// Route, idle-connection and dedup measurements of a real `hazel` servent.
    Servent(hazel_tools::load::servent::ServentArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.workload {
        Load::Servent(args) => hazel_tools::load::servent::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hazel-load: {e}");
            ExitCode::FAILURE
        }
    }
}
