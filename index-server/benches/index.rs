//! Criterion bench `index`: indexing rate, one- and two-word search latency
//! and memory per file, on the workload `hazel-load index` puts on a server:
//! users × 1,000 files, names of 4 words drawn from a 5,000-word vocabulary
//! (≈ 80 hits per word at 100k files).
//!
//! `HAZEL_BENCH_FILES` sets the index size for the search and memory runs
//! (default 100,000; the 10-million-file run is `HAZEL_BENCH_FILES=10000000`).
//! The memory line is printed to stderr: bytes counted in the structures and
//! the RSS delta from /proc/self/statm, both per file.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hazel_index::index::{Index, UserId};
use hazel_protocol::napster::{SearchQuery, SharedFile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::net::Ipv4Addr;

const VOCABULARY: usize = 5_000;
const FILES_PER_USER: usize = 1_000;

/// The i-th vocabulary word: two consonant-vowel syllable pairs, distinct
/// for every i below 6,400.
fn word(i: usize) -> String {
    const C: &[u8] = b"bcdfghjklmnprstv";
    const V: &[u8] = b"aeiou";
    let syllable = |n: usize| [C[n % 16] as char, V[(n / 16) % 5] as char];
    let (a, b) = (syllable(i % 80), syllable(i / 80));
    format!("{}{}{}{}", a[0], a[1], b[0], b[1])
}

fn shared_file(rng: &mut StdRng, vocabulary: &[String]) -> SharedFile {
    let mut name = String::from("C:\\mp3\\");
    for k in 0..4 {
        if k > 0 {
            name.push(' ');
        }
        name.push_str(&vocabulary[rng.gen_range(0..vocabulary.len())]);
    }
    name.push_str(".mp3");
    SharedFile {
        name: name.into_bytes(),
        md5: format!("{:032x}", rng.gen::<u128>()).into_bytes(),
        size: rng.gen_range(1_000_000..10_000_000),
        bitrate: 128,
        freq: 44100,
        duration: rng.gen_range(60..600),
    }
}

fn build(files: usize, vocabulary: &[String], seed: u64) -> (Index, Vec<UserId>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut index = Index::new();
    let mut users = Vec::new();
    let mut user = None;
    for i in 0..files {
        if i % FILES_PER_USER == 0 {
            let id = index.add_user(&format!("user{}", users.len()), Ipv4Addr::LOCALHOST, 7);
            users.push(id);
            user = Some(id);
        }
        let file = shared_file(&mut rng, vocabulary);
        if let Some(u) = user {
            index.add_file(u, &file).expect("add file");
        }
    }
    (index, users)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

fn benches(c: &mut Criterion) {
    let vocabulary: Vec<String> = (0..VOCABULARY).map(word).collect();
    let files: usize = std::env::var("HAZEL_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);

    // Memory: structures counted, and resident-set growth.
    let rss_before = rss_bytes();
    let started = std::time::Instant::now();
    let (index, users) = build(files, &vocabulary, 1);
    let build_time = started.elapsed();
    let rss_after = rss_bytes();
    let mem = index.memory_use();
    eprintln!(
        "index memory: {files} files, {} words; structures {:.1} B/file ({mem:?}); RSS delta {:.1} B/file; one-shot build {:.2} µs/file",
        index.word_count(),
        mem.total() as f64 / files as f64,
        rss_after.saturating_sub(rss_before) as f64 / files as f64,
        build_time.as_secs_f64() * 1e6 / files as f64,
    );

    let mut group = c.benchmark_group("indexing");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("add_100k_files", |b| {
        let mut rng = StdRng::seed_from_u64(7);
        let batch: Vec<SharedFile> = (0..100_000)
            .map(|_| shared_file(&mut rng, &vocabulary))
            .collect();
        b.iter_batched(
            Index::new,
            |mut index| {
                let mut user = None;
                for (i, file) in batch.iter().enumerate() {
                    if i % FILES_PER_USER == 0 {
                        user = Some(index.add_user("u", Ipv4Addr::LOCALHOST, 7));
                    }
                    if let Some(u) = user {
                        index.add_file(u, file).expect("add");
                    }
                }
                index
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let searcher = users.first().copied();
    let one_word: Vec<SearchQuery> = (0..1_000)
        .map(|i| SearchQuery::simple(vocabulary[(i * 7919) % VOCABULARY].as_bytes(), 100))
        .collect();
    let two_word: Vec<SearchQuery> = (0..1_000)
        .map(|i| {
            let a = &vocabulary[(i * 7919) % VOCABULARY];
            let b = &vocabulary[(i * 104_729 + 13) % VOCABULARY];
            SearchQuery::simple(format!("{a} {b}").as_bytes(), 100)
        })
        .collect();
    let hits: usize = one_word
        .iter()
        .map(|q| index.search(q, searcher, 100).len())
        .sum();
    eprintln!(
        "one-word searches average {:.1} results at {files} files",
        hits as f64 / one_word.len() as f64
    );

    let mut group = c.benchmark_group(format!("search_{files}_files"));
    let mut ids = Vec::new();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut n = 0usize;
    group.bench_function("one_word_ids", |b| {
        b.iter(|| {
            n += 1;
            index.search_into(&one_word[n % one_word.len()], searcher, 100, &mut ids);
            black_box(ids.len())
        })
    });
    group.bench_function("one_word_encoded_201s", |b| {
        b.iter(|| {
            n += 1;
            index.search_into(&one_word[n % one_word.len()], searcher, 100, &mut ids);
            out.clear();
            for &id in &ids {
                if let Some(f) = index.file(id) {
                    f.encode_search_result(&mut out).expect("encode");
                }
            }
            black_box(out.len())
        })
    });
    group.bench_function("two_word_encoded_201s", |b| {
        b.iter(|| {
            n += 1;
            index.search_into(&two_word[n % two_word.len()], searcher, 100, &mut ids);
            out.clear();
            for &id in &ids {
                if let Some(f) = index.file(id) {
                    f.encode_search_result(&mut out).expect("encode");
                }
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(index_benches, benches);
criterion_main!(index_benches);
