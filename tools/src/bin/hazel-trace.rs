//! `hazel-trace FILE.pcap [--port N]... [--json]`: prints every Gnutella and
//! OpenNap message in a capture, one per line or as JSON lines.

use std::io::{self, BufWriter};
use std::path::PathBuf;

use clap::Parser;
use hazel_tools::trace::{run, Options};

/// Decode Gnutella (handshakes, descriptors, deflate links, HTTP, GIV) and
/// OpenNap traffic in a pcap or pcapng capture.
///
/// A link whose start is not in the capture (the capture started late, or
/// inside a descriptor) is recognised by its descriptor headers, and
/// decoding picks up again after lost segments; the bytes skipped are
/// reported. A deflate-compressed link can only be read from its start.
/// Strings from the capture are shown escaped (control, bidi and zero-width
/// characters); --json keeps their exact values.
#[derive(Parser, Debug)]
#[command(name = "hazel-trace", version)]
struct Cli {
    /// The capture file (pcap or pcapng).
    file: PathBuf,
    /// Only decode TCP streams and UDP datagrams using this port (repeatable).
    /// By default every stream is examined and recognised by its content.
    /// Like 6346 and 6347, a port given here is taken as a Gnutella port: a
    /// late-captured link on it is recognised from fewer descriptor headers,
    /// and a direction that holds none is reported.
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
