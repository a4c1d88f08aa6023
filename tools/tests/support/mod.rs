//! Running the built `hazel-trace` binary, finding the shared traces, and
//! the small builders and checks the trace tests share.

#![allow(dead_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a shared trace; panics with a clear message when it is missing.
#[track_caller]
pub fn trace(name: &str) -> PathBuf {
    hazel_protocol::traces::require(name)
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The final summary line.
    pub fn summary(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }

    /// Fails unless the summary line holds every one of `parts`.
    #[track_caller]
    pub fn assert_summary_has(&self, parts: &[&str]) {
        for part in parts {
            assert!(
                self.summary().contains(part),
                "no {part:?} in the summary: {}",
                self.summary()
            );
        }
    }

    /// Parses every stdout line as JSON (panics on the first that is not).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1))
            })
            .collect()
    }
}

/// Longest a `hazel-trace` run may take in these tests (debug build, shared machine).
pub const TIME_LIMIT: Duration = Duration::from_secs(300);

/// Address space a `hazel-trace` run may use. Far above what decoding needs, far below a
/// buffer sized from a hostile length field (4 GiB): such an allocation fails and the run
/// aborts instead of passing unnoticed.
pub const MEMORY_LIMIT: u64 = 1 << 30;

pub fn hazel_trace(args: &[&str], file: &Path) -> Output {
    hazel_trace_bounded(args, file, TIME_LIMIT)
}

/// Runs `hazel-trace` with `args` on `file`, killed (and the test failed) after `limit`,
/// with its address space capped at [`MEMORY_LIMIT`].
#[track_caller]
pub fn hazel_trace_bounded(args: &[&str], file: &Path, limit: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hazel-trace"));
    command
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit,
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let cap = libc::rlimit {
                rlim_cur: MEMORY_LIMIT as libc::rlim_t,
                rlim_max: MEMORY_LIMIT as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("hazel-trace runs");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for hazel-trace") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hazel-trace {args:?} {} still running after {limit:?}: killed",
                file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let stderr = String::from_utf8(stderr).expect("stderr is UTF-8");
    assert!(
        !stderr.contains("panicked"),
        "hazel-trace panicked: {stderr}"
    );
    Output {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr,
    }
}

/// The `id`s of the descriptor records of `records`, in order.
pub fn descriptor_ids(records: &[serde_json::Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["kind"] == "descriptor")
        .map(|r| r["id"].as_str().unwrap_or("").to_string())
        .collect()
}

/// An address written as text (`"10.0.0.1:6346"`).
pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

/// The bytes of one Gnutella descriptor whose id is `n` repeated.
pub fn descriptor(
    n: u8,
    ttl: u8,
    hops: u8,
    payload: hazel_protocol::descriptor::Payload,
) -> Vec<u8> {
    hazel_protocol::descriptor::Descriptor {
        id: hazel_protocol::header::DescriptorId::modern([n; 16]),
        ttl,
        hops,
        payload,
    }
    .to_bytes()
}

/// Hex text to bytes (panics on bad hex: the inputs are the project's own expected files).
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// A copy of a real capture keeping only TCP stream `stream`, as if the capture had started
/// late: in each direction the bytes before `from[direction index]` are gone (a segment that
/// straddles the cut keeps its tail, with its sequence number moved on), and so are the
/// SYNs and every segment without data before the first one kept.
pub fn cut_stream(pcap: &[u8], stream: u32, from: [u64; 2]) -> Vec<u8> {
    use hazel_protocol::pcap::writer::{ethernet_frame, PcapWriter, Transport};
    use hazel_protocol::pcap::{decode_frame, read_capture, Capture, Direction, Packet};
    use std::collections::HashMap;

    let contents = read_capture(pcap).expect("a capture");
    let s = &contents.tcp[stream as usize];
    let mut placed: HashMap<u32, (Direction, u64)> = HashMap::new();
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        for seg in &s.half(dir).segments {
            placed.insert(seg.frame, (dir, seg.offset));
        }
    }
    let mut w = PcapWriter::new();
    let mut started = [false; 2];
    for frame in Capture::open(pcap).expect("a capture").frames() {
        let Ok(frame) = frame else { break };
        let Ok(Packet::Tcp(seg)) = decode_frame(&frame) else {
            continue;
        };
        let dir = if (seg.src, seg.dst) == (s.info.client, s.info.server) {
            Direction::ClientToServer
        } else if (seg.src, seg.dst) == (s.info.server, s.info.client) {
            Direction::ServerToClient
        } else {
            continue;
        };
        let d = dir.index();
        if seg.flags.syn {
            continue;
        }
        let Some(&(_, offset)) = placed.get(&frame.number) else {
            // No new data: keep it only once this direction's kept bytes have begun.
            if started[d] {
                w.push(frame.data);
            }
            continue;
        };
        let end = offset + seg.payload.len() as u64;
        if end <= from[d] {
            continue;
        }
        started[d] = true;
        let skip = from[d].saturating_sub(offset) as usize;
        if skip == 0 {
            w.push(frame.data);
            continue;
        }
        let rebuilt = ethernet_frame(
            seg.src,
            seg.dst,
            Transport::Tcp {
                seq: seg.seq.wrapping_add(skip as u32),
                ack: seg.ack,
                syn: false,
                fin: seg.flags.fin,
                rst: seg.flags.rst,
            },
            &seg.payload[skip..],
        )
        .expect("the tail of a segment fits in a frame");
        w.push(&rebuilt);
    }
    w.into_bytes()
}

/// A file in the temp directory that is removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "hazel-trace-test-{}-{tag}.pcap",
            std::process::id()
        ));
        std::fs::write(&path, bytes).expect("write temp capture");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
