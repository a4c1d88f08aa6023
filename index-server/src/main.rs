//! `hazel-index`: parse the command line, bind, run until SIGTERM/SIGINT.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
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

/// Binds `addr`, or says which address failed and what to do about it.
fn bind(addr: SocketAddr, option: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| {
        let what_to_do = match e.kind() {
            ErrorKind::AddrInUse => format!(
                "another program (another hazel-index?) is listening there; stop it, or give {option} another port"
            ),
            ErrorKind::PermissionDenied => format!(
                "ports below 1024 need privileges; give {option} a port of 1024 or above, or grant the binary CAP_NET_BIND_SERVICE"
            ),
            ErrorKind::AddrNotAvailable => format!(
                "that address is not one of this machine's; give {option} 0.0.0.0 or one of its addresses"
            ),
            _ => format!("check the address given to {option}"),
        };
        format!("cannot listen on {addr} ({option}): {e}; {what_to_do}")
    })
}

fn serve(cli: &Cli) -> Result<(), String> {
    let config = cli.to_config().map_err(|e| e.to_string())?;
    let listener = bind(cli.listen, "--listen")?;
    let stats = match cli.stats_listen {
        Some(addr) => Some(bind(addr, "--stats-listen")?),
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
