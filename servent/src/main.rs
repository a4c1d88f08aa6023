//! `hazel`: run a Gnutella servent, or `hazel ctl` to command a running one.

use clap::Parser;
use hazel_servent::cli::{Cli, CtlArgs, SubCommand};
use hazel_servent::run::{self, Frontend};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(SubCommand::Ctl(args)) => ctl(&args),
        None if cli.run.demo => match hazel_servent::demo::run(&cli.run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hazel --demo: {e}");
                ExitCode::FAILURE
            }
        },
        None => {
            let config = match cli.run.to_config() {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("hazel: {e}");
                    return ExitCode::from(2);
                }
            };
            let frontend = Frontend::choose(config.headless, cli.run.line);
            run::init_logging(&cli.run.log_level, frontend, &config.data_dir);
            match run::run_as(config, frontend, None) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hazel: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Sends one command to the servent whose data dir is given; prints the reply.
fn ctl(args: &CtlArgs) -> ExitCode {
    let (line, json) = args.command_line();
    let data_dir = match args.data_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("hazel ctl: {e}");
            return ExitCode::from(2);
        }
    };
    let socket = data_dir.join(hazel_servent::data_dir::CONTROL_SOCKET);
    let timeout = Duration::from_secs(args.timeout.max(1));
    match hazel_servent::control::send_command(&socket, &line, timeout) {
        Ok(response) => {
            if json {
                match serde_json::to_string(&response) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("hazel ctl: {e}"),
                }
            } else if response.ok {
                println!("{}", response.to_text());
            } else {
                eprintln!("{}", response.to_text());
            }
            if response.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            let dir = data_dir.display();
            match e.kind() {
                std::io::ErrorKind::NotFound => eprintln!(
                    "hazel ctl: no servent is running with data directory {dir} (no control \
                     socket there); start one with `hazel --headless --data-dir {dir}`, or \
                     point --data-dir at the running one's"
                ),
                std::io::ErrorKind::ConnectionRefused => eprintln!(
                    "hazel ctl: the servent that used data directory {dir} is not running any \
                     more (its control socket is left over); start it again with \
                     `hazel --headless --data-dir {dir}`"
                ),
                std::io::ErrorKind::PermissionDenied => eprintln!(
                    "hazel ctl: {}: permission denied; run as the user the servent runs as",
                    socket.display()
                ),
                _ => eprintln!("hazel ctl: {}: {e}", socket.display()),
            }
            ExitCode::FAILURE
        }
    }
}
