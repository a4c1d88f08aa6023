//! `hazel-trace FILE.pcap [--port N]... [--json]`: prints every Gnutella and
//! OpenNap message in a capture, one per line or as JSON lines.

use std::io::{self, BufWriter};
use std::path::PathBuf;

use clap::Parser;
use hazel_tools::trace::{run, Options};

/// Decode Gnutella (handshakes, descriptors, deflate links, HTTP, GIV) and
/// OpenNap traffic in a pcap or pcapng capture.
#[derive(Parser, Debug)]
#[command(name = "hazel-trace", version)]
struct Cli {
    /// The capture file (pcap or pcapng).
    file: PathBuf,
    /// Only decode TCP streams and UDP datagrams using this port (repeatable).
    /// By default every stream is examined and recognised by its content.
    #[arg(long = "port", value_name = "N")]
    ports: Vec<u16>,
    /// Print one JSON object per line instead of readable lines.
    #[arg(long)]
    json: bool,
}

fn main() {
    let cli = Cli::parse();
    let options = Options {
        ports: cli.ports,
        json: cli.json,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let code = run(&cli.file, &options, &mut out, &mut io::stderr());
    drop(out);
    std::process::exit(code);
}
