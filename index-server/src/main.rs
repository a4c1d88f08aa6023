//! `hazel-index`: parse the command line, bind, run until SIGTERM/SIGINT.

use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use hazel_index::config::Cli;
use hazel_index::Shutdown;

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(&cli.log_level))
        .init();
    match serve(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hazel-index: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: &Cli) -> Result<(), String> {
    let config = cli
        .to_config()
        .map_err(|e| format!("reading the MOTD file: {e}"))?;
    let listener =
        TcpListener::bind(cli.listen).map_err(|e| format!("listening on {}: {e}", cli.listen))?;
    let stats = match cli.stats_listen {
        Some(addr) => {
            Some(TcpListener::bind(addr).map_err(|e| format!("stats listener on {addr}: {e}"))?)
        }
        None => None,
    };
    let shutdown = Shutdown::new();
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, shutdown.flag())
            .map_err(|e| format!("installing the signal handler: {e}"))?;
    }
    hazel_index::run(listener, stats, config, shutdown).map_err(|e| e.to_string())?;
    log::info!("hazel-index stopped");
    Ok(())
}
