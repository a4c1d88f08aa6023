//! Decoding speed on a mixed descriptor stream taken from the traces: every
//! `raw_hex` of `ndpi-gtkg-0.6-2022.expected.jsonl` (1016 UDP descriptors)
//! and `ndpi-gtkg-0.6-2022.inflated.expected.jsonl` (660 from the TCP
//! links), concatenated in file order.
//!
//! - `framing`: the [`Framer`] fed 64 KiB reads, every header validated,
//!   every frame handed out (borrowed). Throughput in bytes.
//! - `full_decode`: every frame decoded into owned [`Descriptor`]s.
//!   Throughput in descriptors.
//! - `full_decode/frame_and_decode_owned`: both, as a connection does it.
//! - `full_decode/borrowed_view`: every frame parsed into a zero-copy
//!   [`DescriptorRef`] (all checks of the owned decoder, no copies).
//! - `full_decode/borrowed_view_walk`: the same, then every hit result,
//!   every extension item and every GGEP extension visited.
//!
//! Every benchmark runs twice: `wall/…` measures wall-clock time (criterion's
//! default), `cpu/…` measures this thread's CPU time, which stays meaningful
//! when the machine is shared and the thread is descheduled for part of
//! the wall-clock interval.
//!
//! Run: `cargo bench -p hazel-protocol --bench descriptors -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hazel_protocol::descriptor::{Descriptor, DescriptorRef, ExtensionRef, PayloadRef};
use hazel_protocol::framer::{split_frame, Framer};
use hazel_protocol::header::Header;
use hazel_protocol::traces;

const READ_SIZE: usize = 64 * 1024;

/// The trace descriptors, one byte vector each.
fn trace_descriptors() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for file in [
        "ndpi-gtkg-0.6-2022.expected.jsonl",
        "ndpi-gtkg-0.6-2022.inflated.expected.jsonl",
    ] {
        let text = String::from_utf8(traces::read(file)).expect("trace file is UTF-8");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            if let Some(hex) = v["raw_hex"].as_str() {
                out.push(
                    data_encoding::HEXLOWER_PERMISSIVE
                        .decode(hex.as_bytes())
                        .expect("hex"),
                );
            }
        }
    }
    assert_eq!(out.len(), 1676, "expected 1016 + 660 trace descriptors");
    out
}

/// CPU time of the calling thread, in nanoseconds (CLOCK_THREAD_CPUTIME_ID).
struct ThreadCpuTime {
    wall: WallTime,
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, like wall time: reuse its formatting.
        self.wall.formatter()
    }
}

fn wall_benches(c: &mut Criterion) {
    benches(c, "wall");
}

fn cpu_benches(c: &mut Criterion<ThreadCpuTime>) {
    benches(c, "cpu");
}

fn benches<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let descriptors = trace_descriptors();
    let stream: Vec<u8> = descriptors.concat();
    let count = descriptors.len() as u64;
    eprintln!(
        "mixed stream: {count} descriptors, {} bytes (mean {:.1} bytes)",
        stream.len(),
        stream.len() as f64 / count as f64
    );
    // Frames as (header, payload) slices, for the decode-only benchmark.
    let frames: Vec<(Header, &[u8])> = {
        let mut v = Vec::new();
        let mut rest = &stream[..];
        while let Some((h, len)) = split_frame(rest).expect("valid stream") {
            v.push((h, &rest[23..len]));
            rest = &rest[len..];
        }
        v
    };
    assert_eq!(frames.len() as u64, count);

    let mut g = c.benchmark_group(format!("{clock}/framing"));
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("framer_64k_reads", |b| {
        let mut framer = Framer::new();
        b.iter(|| {
            let mut n = 0u64;
            for read in stream.chunks(READ_SIZE) {
                framer.push(black_box(read)).expect("valid");
                while let Some(f) = framer.next_frame_ref().expect("valid") {
                    n += f.header.ttl as u64 + 1;
                }
            }
            black_box(n)
        })
    });
    g.bench_function("split_frame_in_place", |b| {
        b.iter(|| {
            let mut rest = black_box(&stream[..]);
            let mut n = 0u64;
            while let Some((h, len)) = split_frame(rest).expect("valid") {
                n += h.ttl as u64 + 1;
                rest = &rest[len..];
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group(format!("{clock}/full_decode"));
    g.throughput(Throughput::Elements(count));
    g.bench_function("owned", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for (h, payload) in &frames {
                if let Ok(d) = Descriptor::parse_payload(h, black_box(payload)) {
                    ok += 1;
                    black_box(d);
                }
            }
            assert_eq!(ok, count);
        })
    });
    g.bench_function("borrowed_view", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for (h, payload) in &frames {
                if let Ok(d) = DescriptorRef::parse_payload(*h, black_box(payload)) {
                    ok += 1;
                    black_box(d);
                }
            }
            assert_eq!(ok, count);
        })
    });
    g.bench_function("borrowed_view_walk", |b| {
        b.iter(|| {
            let mut seen = 0u64;
            for (h, payload) in &frames {
                let Ok(d) = DescriptorRef::parse_payload(*h, black_box(payload)) else {
                    continue;
                };
                seen += visit(&d);
            }
            black_box(seen)
        })
    });
    g.bench_function("frame_and_decode_owned", |b| {
        let mut framer = Framer::new();
        b.iter(|| {
            let mut ok = 0u64;
            for read in stream.chunks(READ_SIZE) {
                framer.push(black_box(read)).expect("valid");
                while let Some(f) = framer.next_frame_ref().expect("valid") {
                    if let Ok(d) = f.decode() {
                        ok += 1;
                        black_box(d);
                    }
                }
            }
            assert_eq!(ok, count);
        })
    });
    g.finish();
}

/// Touches every part of a view; returns how many items it saw.
fn visit(d: &DescriptorRef<'_>) -> u64 {
    fn ext(e: ExtensionRef<'_>) -> u64 {
        match e {
            ExtensionRef::Ggep(g) => g.iter().map(|x| x.data.len() as u64 + 1).sum(),
            ExtensionRef::Urn(t) | ExtensionRef::Xml(t) | ExtensionRef::Text(t) => {
                t.len() as u64 + 1
            }
        }
    }
    match &d.payload {
        PayloadRef::Ping(p) => p.ggep.map_or(0, |g| g.iter().count() as u64),
        PayloadRef::Pong(p) => p.ggep.map_or(0, |g| g.iter().count() as u64) + p.files as u64,
        PayloadRef::Query(q) => q.extensions.iter().map(ext).sum::<u64>() + q.search.len() as u64,
        PayloadRef::QueryHit(h) => h
            .results()
            .map(|r| r.name.len() as u64 + r.extensions.iter().map(ext).sum::<u64>())
            .sum(),
        PayloadRef::Push(p) => p.file_index as u64,
        PayloadRef::Bye(b) => b.message.len() as u64,
        PayloadRef::Unknown { bytes, .. } => bytes.len() as u64,
    }
}

criterion_group!(wall, wall_benches);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime { wall: WallTime });
    targets = cpu_benches
}
criterion_main!(wall, cpu);
