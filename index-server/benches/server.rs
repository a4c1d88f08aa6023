//! CPU cost of the server's protocol logic per message, without sockets:
//! a 200 search (decode, index lookup, encoding every 201 and the 202) and
//! a 100 share, on the workload shape (users × files drawn from a
//! 5,000-word vocabulary, four words per name).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hazel_index::config::Config;
use hazel_index::server::{Outbox, Server};
use hazel_index::session::ConnId;
use hazel_index::store::{PasswordCost, Store};

const VOCABULARY: usize = 5_000;
const USERS: u64 = 100;
const FILES_PER_USER: usize = 1_000;

/// A deterministic word list: "w0", "w1", … as distinct tokens.
fn word(i: usize) -> String {
    format!("w{i}")
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) as usize
    }
}

fn loaded_server() -> (Server, Outbox) {
    let now = Instant::now();
    let mut config = Config::new(".".into());
    config.max_shares = FILES_PER_USER * 2;
    config.searches_per_minute = 0;
    config.max_messages_per_second = 0;
    config.clones_per_ip = 0;
    config.max_connections = 10_000;
    let cost = PasswordCost {
        memory_kib: 64,
        iterations: 1,
    };
    let mut server = Server::new(config, Store::open_in_memory(cost).unwrap(), now);
    let mut out = Outbox::new();
    let mut rng = Lcg(42);
    for u in 0..USERS {
        let id = ConnId(u);
        server.on_connect(
            id,
            Ipv4Addr::new(10, 0, (u >> 8) as u8, u as u8),
            now,
            &mut out,
        );
        let login = format!("user{u} pw 6699 \"bench\" 7");
        server.on_frame(id, 2, login.as_bytes(), now, &mut out);
        for f in 0..FILES_PER_USER {
            let name: Vec<String> = (0..4).map(|_| word(rng.next() % VOCABULARY)).collect();
            let share = format!(
                "\"C:\\music\\{}\\{} {} {} {f}.mp3\" 0123456789abcdef0123456789abcdef 4000000 128 44100 240",
                name[0], name[1], name[2], name[3]
            );
            server.on_frame(id, 100, share.as_bytes(), now, &mut out);
        }
        out.take();
    }
    (server, out)
}

fn bench_search(c: &mut Criterion) {
    let (mut server, mut out) = loaded_server();
    let searcher = ConnId(10_000);
    let now = Instant::now();
    server.on_connect(searcher, Ipv4Addr::LOCALHOST, now, &mut out);
    server.on_frame(searcher, 2, b"searcher pw 0 \"bench\" 7", now, &mut out);
    out.take();
    let mut rng = Lcg(7);
    let mut group = c.benchmark_group("server");
    group.throughput(Throughput::Elements(1));
    group.bench_function("search_one_word", |b| {
        b.iter(|| {
            let q = format!(
                "FILENAME CONTAINS \"{}\" MAX_RESULTS 100",
                word(rng.next() % VOCABULARY)
            );
            server.on_frame(searcher, 200, q.as_bytes(), now, &mut out);
            black_box(out.take());
        })
    });
    group.bench_function("search_two_words", |b| {
        b.iter(|| {
            let q = format!(
                "FILENAME CONTAINS \"{} {}\" MAX_RESULTS 100",
                word(rng.next() % VOCABULARY),
                word(rng.next() % VOCABULARY)
            );
            server.on_frame(searcher, 200, q.as_bytes(), now, &mut out);
            black_box(out.take());
        })
    });
    group.finish();
}

fn bench_share(c: &mut Criterion) {
    let (mut server, mut out) = loaded_server();
    let sharer = ConnId(20_000);
    let now = Instant::now();
    server.on_connect(sharer, Ipv4Addr::LOCALHOST, now, &mut out);
    server.on_frame(sharer, 2, b"sharer pw 0 \"bench\" 7", now, &mut out);
    out.take();
    let mut rng = Lcg(9);
    let mut n = 0u64;
    let mut group = c.benchmark_group("server");
    group.throughput(Throughput::Elements(1));
    // Share then unshare, so the user stays under its share limit and the
    // index keeps its size: one iteration indexes and removes one file.
    group.bench_function("share_and_unshare_file", |b| {
        b.iter(|| {
            n += 1;
            let words: Vec<String> = (0..4).map(|_| word(rng.next() % VOCABULARY)).collect();
            let name = format!(
                "C:\\x\\{} {} {} {} {n}.mp3",
                words[0], words[1], words[2], words[3]
            );
            let share =
                format!("\"{name}\" 0123456789abcdef0123456789abcdef 4000000 128 44100 240");
            server.on_frame(sharer, 100, share.as_bytes(), now, &mut out);
            server.on_frame(sharer, 102, name.as_bytes(), now, &mut out);
            black_box(out.take());
        })
    });
    group.finish();
}

criterion_group!(benches, bench_search, bench_share);
criterion_main!(benches);
