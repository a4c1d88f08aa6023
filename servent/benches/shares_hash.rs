//! Hashing throughput of shared files (the library thread's streaming reader), on a 64 MiB file
//! in a temp directory (so mostly from the page cache: this measures the CPU side): SHA-1 alone,
//! and SHA-1 plus the Tiger tree in the same read (what the scanner does for every file).
//!
//! Run: `cargo bench -p hazel-servent --bench shares_hash -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hazel_servent::scanner::{hashes_of_file, sha1_of_file};

const SIZE: usize = 64 * 1024 * 1024;

fn bench_hash(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.bin");
    let content: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&path, &content).expect("write");
    let mut group = c.benchmark_group("sha1_of_file");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    group.bench_function("64MiB", |b| {
        b.iter(|| black_box(sha1_of_file(black_box(&path)).expect("hash")))
    });
    group.bench_function("64MiB_sha1_and_tiger_tree", |b| {
        b.iter(|| black_box(hashes_of_file(black_box(&path)).expect("hash")))
    });
    group.finish();
}

criterion_group!(benches, bench_hash);
criterion_main!(benches);
