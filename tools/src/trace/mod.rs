//! `hazel-trace`: every Gnutella and OpenNap message in a capture file.
//!
//! Frames come from [`hazel_protocol::pcap`] (file reading, TCP reassembly,
//! UDP); [`session`] decodes each TCP stream (handshakes, descriptors on
//! plain and deflate links, HTTP heads, GIV, OpenNap); [`resync`] finds
//! descriptors by their headers where a stream's start or some of its bytes
//! were not captured; [`describe`] turns a descriptor into a line and JSON;
//! [`record`] prints (escaping every string from the capture); [`summary`]
//! counts.
//!
//! A damaged capture is reported on the diagnostics stream and decoding goes
//! on with what could be read; only a file that cannot be read at all (or is
//! not a capture) is a failure.

pub mod describe;
pub mod opennap;
pub mod record;
pub mod resync;
pub mod session;
pub mod summary;

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use hazel_protocol::header::{Header, HEADER_LEN};
use hazel_protocol::pcap::{
    Capture, Direction, Event, Frame, TcpEvent, Timestamp, TrafficReader, UdpDatagram,
};
use hazel_protocol::text::Escaped;

use record::{Origin, Record, Transport};
use session::Session;
use summary::Summary;

/// Unreadable frames listed on stderr per kind of problem.
const FRAME_PROBLEMS_LISTED: u32 = 10;

/// The ports IANA registered for Gnutella.
pub const GNUTELLA_PORTS: [u16; 2] = [6346, 6347];

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only streams and datagrams with one of these ports (empty: all, by content).
    pub ports: Vec<u16>,
    /// JSON lines instead of readable lines.
    pub json: bool,
}

/// Decodes frames into records.
pub struct Tracer {
    options: Options,
    reader: TrafficReader,
    sessions: HashMap<u32, Session>,
    /// Unreadable frames so far, per problem: each problem is listed a few
    /// times, then only counted (a capture of an unsupported link type would
    /// otherwise print one line per frame).
    frame_problems: HashMap<String, u32>,
    first_time: Option<Timestamp>,
    pub summary: Summary,
    events: Vec<Event>,
}

impl Tracer {
    pub fn new(options: Options) -> Tracer {
        Tracer {
            options,
            reader: TrafficReader::new(),
            sessions: HashMap::new(),
            frame_problems: HashMap::new(),
            first_time: None,
            summary: Summary::default(),
            events: Vec::new(),
        }
    }

    fn watched(&self, a: u16, b: u16) -> bool {
        self.options.ports.is_empty()
            || self.options.ports.contains(&a)
            || self.options.ports.contains(&b)
    }

    /// Gnutella's registered ports, and any port the user named.
    fn gnutella_port(&self, port: u16) -> bool {
        GNUTELLA_PORTS.contains(&port) || self.options.ports.contains(&port)
    }

    fn relative(&self, t: Timestamp) -> Timestamp {
        t.since(self.first_time.unwrap_or(t))
    }

    /// Feeds one frame; records go to `out`, frame problems to `diag`.
    pub fn frame(&mut self, frame: &Frame<'_>, out: &mut Vec<Record>, diag: &mut Vec<String>) {
        self.first_time.get_or_insert(frame.timestamp);
        self.summary.frames += 1;
        let mut events = std::mem::take(&mut self.events);
        self.reader.push_frame(frame, &mut events);
        for e in events.drain(..) {
            self.event(e, out, diag);
        }
        self.events = events;
    }

    /// End of the capture: flush what reassembly and the sessions hold.
    pub fn finish(&mut self, out: &mut Vec<Record>, diag: &mut Vec<String>) {
        let mut events = std::mem::take(&mut self.events);
        self.reader.finish(&mut events);
        for e in events.drain(..) {
            self.event(e, out, diag);
        }
        let mut ids: Vec<u32> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(s) = self.sessions.get_mut(&id) {
                for dir in [Direction::ClientToServer, Direction::ServerToClient] {
                    s.end(dir, out, &mut self.summary);
                }
            }
        }
        self.sessions.clear();
        self.summary.tcp_streams = self.reader.tcp_stats().streams;
    }

    fn event(&mut self, event: Event, out: &mut Vec<Record>, diag: &mut Vec<String>) {
        match event {
            Event::FrameError {
                frame,
                error,
                captured,
                on_wire,
            } => {
                self.summary.unreadable_frames += 1;
                let seen = self.frame_problems.entry(error.to_string()).or_insert(0);
                *seen = seen.saturating_add(1);
                if *seen > FRAME_PROBLEMS_LISTED + 1 {
                    return;
                }
                let cut = if (captured as u64) < u64::from(on_wire) {
                    format!(" (captured {captured} of {on_wire} bytes)")
                } else {
                    String::new()
                };
                let more = if *seen > FRAME_PROBLEMS_LISTED {
                    "; further frames with this problem are counted in the summary, not listed"
                } else {
                    ""
                };
                diag.push(format!(
                    "frame {frame}: headers unreadable: {error}{cut}; skipped{more}"
                ));
            }
            Event::Udp(d) => self.udp(d, out),
            Event::Tcp(TcpEvent::Opened(info)) => {
                let (a, b) = (info.client.port(), info.server.port());
                if self.watched(a, b) {
                    let gnutella_port = self.gnutella_port(a) || self.gnutella_port(b);
                    self.sessions
                        .insert(info.id, Session::new(info, gnutella_port));
                }
            }
            Event::Tcp(TcpEvent::Data {
                stream,
                dir,
                frame,
                timestamp,
                offset,
                data,
            }) => {
                let time = self.relative(timestamp);
                if let Some(s) = self.sessions.get_mut(&stream) {
                    let at = session::At {
                        frame,
                        offset,
                        time,
                        epoch: timestamp,
                    };
                    s.data(dir, at, &data, out, &mut self.summary);
                }
            }
            Event::Tcp(TcpEvent::Gap {
                stream,
                dir,
                frame,
                offset,
                len,
            }) => {
                if let Some(s) = self.sessions.get_mut(&stream) {
                    s.gap(dir, frame, offset, len, out, &mut self.summary);
                }
            }
            Event::Tcp(TcpEvent::Closed { stream, dir, .. }) => {
                if let Some(s) = self.sessions.get_mut(&stream) {
                    s.end(dir, out, &mut self.summary);
                    // Keep memory flat on long captures: drop streams that are done.
                    if s.is_finished() {
                        self.sessions.remove(&stream);
                    }
                }
            }
        }
    }

    fn udp(&mut self, d: UdpDatagram, out: &mut Vec<Record>) {
        self.summary.udp_datagrams += 1;
        if !self.watched(d.src.port(), d.dst.port()) {
            return;
        }
        // A Gnutella datagram is exactly one descriptor: header + declared payload.
        let Ok(h) = Header::parse(&d.payload) else {
            return;
        };
        if d.payload.len() != HEADER_LEN + h.payload_len as usize {
            return;
        }
        self.summary.gnutella_datagrams += 1;
        let (text, fields, type_name) = describe::descriptor(&d.payload);
        self.summary
            .count_descriptor(&type_name, fields.contains_key("error"));
        let origin = Origin {
            frame: d.frame,
            time: self.relative(d.timestamp),
            epoch: d.timestamp,
            transport: Transport::Udp,
            stream: d.stream,
            src: d.src,
            dst: d.dst,
            dir: d.dir,
        };
        out.push(Record::new(origin, "descriptor", text, fields));
    }
}

/// Runs `hazel-trace` on a file: records to `out`, problems to `diag`.
/// Returns the process exit code: 0 when the file could be read (even if
/// damaged), 1 when it cannot be read or is not a capture.
pub fn run(path: &Path, options: &Options, out: &mut dyn Write, diag: &mut dyn Write) -> i32 {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(
                diag,
                "hazel-trace: cannot read {}: {e}",
                Escaped::new(&path.display().to_string())
            );
            return 1;
        }
    };
    match trace_bytes(&bytes, options, out, diag) {
        Ok(()) => 0,
        Err(TraceFailure::NotACapture) => {
            let _ = writeln!(
                diag,
                "hazel-trace: {} is not a pcap or pcapng capture file",
                Escaped::new(&path.display().to_string())
            );
            1
        }
        Err(TraceFailure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(TraceFailure::Output(e)) => {
            let _ = writeln!(diag, "hazel-trace: cannot write output: {e}");
            1
        }
    }
}

/// Why tracing stopped early.
#[derive(Debug)]
pub enum TraceFailure {
    NotACapture,
    Output(io::Error),
}

/// Decodes a capture held in memory, printing as it goes.
pub fn trace_bytes(
    bytes: &[u8],
    options: &Options,
    out: &mut dyn Write,
    diag: &mut dyn Write,
) -> Result<(), TraceFailure> {
    let capture = Capture::open(bytes).map_err(|_| TraceFailure::NotACapture)?;
    let mut tracer = Tracer::new(options.clone());
    let mut records = Vec::new();
    let mut notes = Vec::new();
    let print = |records: &mut Vec<Record>,
                 notes: &mut Vec<String>,
                 out: &mut dyn Write,
                 diag: &mut dyn Write|
     -> io::Result<()> {
        for n in notes.drain(..) {
            writeln!(diag, "hazel-trace: {}", Escaped::new(&n))?;
        }
        for r in records.drain(..) {
            if options.json {
                writeln!(out, "{}", record::to_json_line(&r.to_json()))?;
            } else {
                writeln!(out, "{}", r.to_line())?;
            }
        }
        Ok(())
    };
    for frame in capture.frames() {
        match frame {
            Ok(frame) => tracer.frame(&frame, &mut records, &mut notes),
            Err(e) => {
                tracer.summary.file_errors.push(e.to_string());
                notes.push(e.to_string());
            }
        }
        print(&mut records, &mut notes, out, diag).map_err(TraceFailure::Output)?;
    }
    tracer.finish(&mut records, &mut notes);
    print(&mut records, &mut notes, out, diag).map_err(TraceFailure::Output)?;
    let summary = if options.json {
        record::to_json_line(&tracer.summary.to_json())
    } else {
        Escaped::new(&tracer.summary.to_line()).to_string()
    };
    writeln!(out, "{summary}").map_err(TraceFailure::Output)?;
    Ok(())
}
