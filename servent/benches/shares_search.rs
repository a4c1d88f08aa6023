//! Search over a library of 100,000 files: the keyword index against a linear scan of the names.
//!
//! Run: `cargo bench -p hazel-servent --bench shares_search -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use criterion::{criterion_group, criterion_main, Criterion};
use hazel_servent::core::shares::{Library, SearchCriteria, SharedFile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const FILES: u32 = 100_000;

/// A deterministic library: names of 3–6 words drawn from a 5,000-word vocabulary with a skewed
/// (roughly Zipf-like) distribution, as real file names repeat common words.
fn library() -> (Library, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(0x4a7e1);
    let syllables = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "bel", "dor", "fen", "gar", "hul", "jin",
    ];
    let vocabulary: Vec<String> = (0..5_000)
        .map(|_| {
            let len = rng.gen_range(2..5);
            (0..len)
                .map(|_| syllables[rng.gen_range(0..syllables.len())])
                .collect()
        })
        .collect();
    let extensions = ["mp3", "ogg", "flac", "avi", "txt", "jpg"];
    let files = (0..FILES)
        .map(|index| {
            let words = rng.gen_range(3..7);
            let mut name: Vec<&str> = Vec::new();
            for _ in 0..words {
                // Squaring a uniform draw favours the start of the vocabulary.
                let u: f64 = rng.gen();
                let pick = ((u * u) * vocabulary.len() as f64) as usize;
                name.push(&vocabulary[pick.min(vocabulary.len() - 1)]);
            }
            let name = format!(
                "{}.{}",
                name.join(" - "),
                extensions[rng.gen_range(0..extensions.len())]
            );
            let mut sha1 = [0u8; 20];
            rng.fill(&mut sha1);
            SharedFile {
                index: index + 1,
                rel_path: PathBuf::from(&name),
                path: PathBuf::from("/shared").join(&name),
                name,
                size: rng.gen_range(1_000..10_000_000),
                mtime: UNIX_EPOCH,
                sha1: Some(sha1),
                tiger: None,
            }
        })
        .collect();
    (Library::new(files), vocabulary)
}

fn bench_search(c: &mut Criterion) {
    let (library, vocabulary) = library();
    let sample = library.files()[4_321].clone();
    let mut words = sample.name.split(" - ");
    let first = words.next().unwrap_or("ka").to_owned();
    let second = words.next().unwrap_or("lo").to_owned();
    let queries = [
        (
            "two_words",
            SearchCriteria::text(&format!("{first} {second}")),
        ),
        ("common_word", SearchCriteria::text(&vocabulary[0])),
        ("prefix_2_chars", SearchCriteria::text(&vocabulary[1][..2])),
        ("no_match", SearchCriteria::text("zzzz qqqq")),
        (
            "urn",
            SearchCriteria {
                text: String::new(),
                sha1_urns: vec![sample.sha1.unwrap_or_default()],
            },
        ),
    ];
    eprintln!(
        "library: {} files, {} distinct keywords",
        library.len(),
        library.vocabulary_len()
    );
    for (name, criteria) in &queries {
        let indexed = library.search_limited(criteria, 64).len();
        let all = library.search(criteria).len();
        assert_eq!(
            library
                .search(criteria)
                .iter()
                .map(|f| f.index)
                .collect::<Vec<_>>(),
            library
                .search_linear(criteria)
                .iter()
                .map(|f| f.index)
                .collect::<Vec<_>>(),
            "index and linear scan disagree on {name}"
        );
        eprintln!("query {name}: {all} matches ({indexed} with the limit of 64)");
        let mut group = c.benchmark_group(format!("search_100k/{name}"));
        group.bench_function("index_limit_64", |b| {
            b.iter(|| black_box(library.search_limited(black_box(criteria), 64).len()))
        });
        group.bench_function("index_all", |b| {
            b.iter(|| black_box(library.search(black_box(criteria)).len()))
        });
        group.bench_function("linear_scan", |b| {
            b.iter(|| black_box(library.search_linear(black_box(criteria)).len()))
        });
        group.finish();
    }
    // Publishing hashing progress: 1,000 new digests for files not hashed yet, on the same names
    // (the keyword index is shared).
    let unhashed = Library::new(
        library
            .files()
            .iter()
            .map(|f| SharedFile {
                sha1: None,
                tiger: None,
                ..SharedFile::clone(f)
            })
            .collect(),
    );
    let digests: Vec<(u32, [u8; 20])> = (1..=1000u32)
        .map(|i| {
            let mut digest = [0u8; 20];
            digest[..4].copy_from_slice(&i.to_le_bytes());
            (i * 37, digest)
        })
        .collect();
    c.bench_function("with_sha1s_100k", |b| {
        b.iter(|| black_box(unhashed.with_sha1s(black_box(&digests)).len()))
    });
    c.bench_function("build_library_100k", |b| {
        b.iter_batched(
            || {
                library
                    .files()
                    .iter()
                    .map(|f| SharedFile::clone(f))
                    .collect::<Vec<_>>()
            },
            |files| black_box(Library::new(files).len()),
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_search
}
criterion_main!(benches);
