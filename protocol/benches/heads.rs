//! Cost of parsing a head (handshake block, HTTP request head) that arrives one byte per read,
//! the worst case a slow or hostile peer can impose.
//!
//! - `rescan`: the stateless `parse` called on the whole buffer after every byte, as a reader
//!   without a [`HeadScanner`] does: each call searches the buffer from its first byte for the
//!   blank line, so an n-byte head costs about n²/2 byte checks.
//! - `resume`: `parse_from` with one [`HeadScanner`] kept across reads: each call looks only at
//!   the new byte, so the whole head costs one pass plus one final parse.
//!
//! - `dribbled_deflate_link`: a compressed 0.6 link (pings and queries, deflated as a servent
//!   sends them) pushed into a [`Framer`] one compressed byte per read, every frame taken: what a
//!   slow peer on a `Content-Encoding: deflate` link costs per byte.
//!
//! Throughput is in head bytes delivered (compressed bytes for the link). Heads are built here: a gtk-gnutella-sized 0.6 block
//! (~1.3 KiB) and blocks of ~8 and ~15 KiB (just under the 16 KiB cap) of ordinary headers.
//!
//! Run: `cargo bench -p hazel-protocol --bench heads -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hazel_protocol::framer::{Deflater, Framer};
use hazel_protocol::handshake::{Handshake, HeadScanner, Parsed};
use hazel_protocol::http::Request;

/// A block with the given start line and headers added until it is about `size` bytes.
fn head(start: &str, size: usize) -> Vec<u8> {
    let mut out = format!("{start}\r\n").into_bytes();
    let mut i = 0;
    while out.len() + 80 < size {
        let line = format!(
            "X-Try-Ultrapeers-{i}: 198.51.{}.{}:6346 2022-03-07T03:22Z, 203.0.113.{}:24567\r\n",
            i % 256,
            (i * 7) % 256,
            (i * 13) % 256
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Feeds `data` one byte at a time to the stateless parse; returns the consumed length.
fn rescan<T>(data: &[u8], parse: fn(&[u8]) -> hazel_protocol::error::Result<Parsed<T>>) -> usize {
    for n in 1..=data.len() {
        if let Ok(Parsed::Complete { consumed, .. }) = parse(black_box(&data[..n])) {
            return consumed;
        }
    }
    0
}

/// Feeds `data` one byte at a time to the resumable parse; returns the consumed length.
fn resume<T>(
    data: &[u8],
    parse_from: fn(&[u8], &mut HeadScanner) -> hazel_protocol::error::Result<Parsed<T>>,
) -> usize {
    let mut scan = HeadScanner::new();
    for n in 1..=data.len() {
        if let Ok(Parsed::Complete { consumed, .. }) = parse_from(black_box(&data[..n]), &mut scan)
        {
            return consumed;
        }
    }
    0
}

fn heads(c: &mut Criterion) {
    let mut group = c.benchmark_group("dribbled_handshake");
    group.sample_size(10);
    for size in [1300, 8 * 1024, 15 * 1024] {
        let block = head("GNUTELLA/0.6 200 OK", size);
        assert_eq!(rescan(&block, Handshake::parse), block.len());
        assert_eq!(resume(&block, Handshake::parse_from), block.len());
        group.throughput(Throughput::Bytes(block.len() as u64));
        group.bench_with_input(BenchmarkId::new("rescan", block.len()), &block, |b, d| {
            b.iter(|| rescan(d, Handshake::parse))
        });
        group.bench_with_input(BenchmarkId::new("resume", block.len()), &block, |b, d| {
            b.iter(|| resume(d, Handshake::parse_from))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("dribbled_http_request");
    group.sample_size(10);
    let request = head(
        "GET /get/17/Some Artist - Some Title.mp3 HTTP/1.1",
        15 * 1024,
    );
    assert_eq!(rescan(&request, Request::parse), request.len());
    assert_eq!(resume(&request, Request::parse_from), request.len());
    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_with_input(
        BenchmarkId::new("rescan", request.len()),
        &request,
        |b, d| b.iter(|| rescan(d, Request::parse)),
    );
    group.bench_with_input(
        BenchmarkId::new("resume", request.len()),
        &request,
        |b, d| b.iter(|| resume(d, Request::parse_from)),
    );
    group.finish();
}

/// 300 descriptors (a ping and a query each time), deflated in one batch.
fn deflated_link() -> (Vec<u8>, usize) {
    let mut plain = Vec::new();
    let mut count = 0;
    for i in 0..150u8 {
        plain.extend_from_slice(&[i; 16]);
        plain.extend_from_slice(&[0x00, 7, 0, 0, 0, 0, 0]);
        plain.extend_from_slice(&[i; 16]);
        let query = b"\xe0\x00some artist some title\x00";
        plain.extend_from_slice(&[0x80, 7, 0]);
        plain.extend_from_slice(&(query.len() as u32).to_le_bytes());
        plain.extend_from_slice(query);
        count += 2;
    }
    let mut wire = Vec::new();
    Deflater::new().compress_batch(&plain, &mut wire);
    (wire, count)
}

/// Pushes `wire` one byte at a time, taking every frame; returns the number of frames.
fn dribble_link(wire: &[u8]) -> usize {
    let mut framer = Framer::deflated();
    let mut frames = 0;
    for byte in wire.chunks(1) {
        framer.push(byte).expect("valid link");
        while let Ok(Some(frame)) = framer.next_frame_ref() {
            black_box(frame.bytes);
            frames += 1;
        }
    }
    frames
}

fn links(c: &mut Criterion) {
    let (wire, count) = deflated_link();
    assert_eq!(dribble_link(&wire), count);
    let mut group = c.benchmark_group("dribbled_deflate_link");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function(BenchmarkId::new("one_byte_reads", wire.len()), |b| {
        b.iter(|| dribble_link(&wire))
    });
    group.finish();
}

criterion_group!(benches, heads, links);
criterion_main!(benches);
