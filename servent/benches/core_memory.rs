//! Memory, measured with a counting allocator:
//! - dedup tables under a flood of one million unique Query ids: the heap
//!   held by a Core must not grow with the flood (the flood is also timed:
//!   Queries from one neighbour, nothing to forward to);
//! - heap per idle established connection, with and without deflate.
//!
//! `cargo bench -p hazel-servent --bench core_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use hazel_protocol::descriptor::{Query, SpeedField};
use hazel_protocol::header::{DescriptorId, Header, PayloadType};
use hazel_servent::core::{Core, CoreConfig, Direction};
use hazel_servent::harness::{attach_leaf, discard};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarding the caller's valid layout to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn flood(core: &mut Core, from: u64, first: u64, count: u64, now: Instant) {
    let mut payload = Vec::new();
    Query::new(SpeedField::flags(0), "flood").encode(&mut payload);
    let one = Header::frame(DescriptorId([0; 16]), PayloadType::QUERY, 3, 0, &payload);
    let mut batch = Vec::with_capacity(one.len() * 1024);
    let mut n = first;
    while n < first + count {
        batch.clear();
        for _ in 0..1024.min(first + count - n) {
            let at = batch.len();
            batch.extend_from_slice(&one);
            batch[at..at + 8].copy_from_slice(&n.to_le_bytes());
            n += 1;
        }
        core.on_bytes(from, &batch, now);
    }
}

fn core_with_one_neighbour(now: Instant) -> Core {
    let mut config = CoreConfig::new([0xCD; 16], "127.0.0.1:6346".parse().expect("addr"));
    config.peers = 0;
    config.deflate = false;
    let mut core = Core::new(config, now);
    let peer: SocketAddr = "10.0.0.1:5000".parse().expect("addr");
    attach_leaf(&mut core, 1, peer, now);
    core
}

fn dedup_memory(c: &mut Criterion) {
    let now = Instant::now();
    let base = live();
    let mut core = core_with_one_neighbour(now);
    let empty = live() - base;
    let mut samples = Vec::new();
    for step in 0..10u64 {
        flood(&mut core, 1, step * 100_000, 100_000, now);
        samples.push(live() - base);
    }
    let stats = core.stats();
    assert_eq!(stats.received.query, 1_000_000);
    let peak = samples.iter().copied().max().unwrap_or(0);
    eprintln!(
        "dedup under 1,000,000 unique query ids: core heap {} bytes before the flood, \
         {} bytes after 100k, {} bytes after 1M (peak {}); query table holds {} ids, \
         routing tables {} bytes",
        empty, samples[0], samples[9], peak, stats.query_table, stats.routing_memory_bytes
    );
    assert!(
        peak <= empty + 1024 * 1024,
        "memory bounded whatever the flood"
    );

    let mut next = 1_000_000u64;
    c.bench_function("core_memory/unique_query_flood_100k", |b| {
        b.iter(|| {
            flood(&mut core, 1, next, 100_000, now);
            next += 100_000;
        })
    });
}

/// Heap per idle established connection: 1000 peers complete the handshake
/// (and its discovery ping is drained), then sit idle.
fn idle_connection_memory(c: &mut Criterion) {
    for deflate in [false, true] {
        let now = Instant::now();
        let mut config = CoreConfig::new([0xEF; 16], "127.0.0.1:6346".parse().expect("addr"));
        config.peers = 0;
        config.max_peers = 2000;
        config.deflate = deflate;
        config.dedup_capacity = 1024;
        let mut core = Core::new(config, now);
        let hello: &[u8] = if deflate {
            b"GNUTELLA CONNECT/0.6\r\nAccept-Encoding: deflate\r\n\r\n"
        } else {
            b"GNUTELLA CONNECT/0.6\r\n\r\n"
        };
        let last: &[u8] = if deflate {
            b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n"
        } else {
            b"GNUTELLA/0.6 200 OK\r\n\r\n"
        };
        let before = live();
        const CONNS: u64 = 1000;
        for id in 1..=CONNS {
            let peer: SocketAddr = format!("10.{}.{}.1:5000", id >> 8, id & 0xff)
                .parse()
                .expect("addr");
            core.on_connection(id, Direction::Incoming, peer, now);
            core.on_bytes(id, hello, now);
            discard(&mut core, id, now);
            core.on_bytes(id, last, now);
            discard(&mut core, id, now);
        }
        // Idle for a few seconds: compressors are flushed and freed.
        let later = now + std::time::Duration::from_secs(6);
        core.handle_timeout(later);
        for id in 1..=CONNS {
            discard(&mut core, id, later);
        }
        while core.poll_action().is_some() {}
        assert_eq!(core.established_ids().len(), CONNS as usize);
        let per_conn = (live() - before) / CONNS as isize;
        eprintln!(
            "idle established connection (deflate {}): {} bytes of heap each (1000 connections)",
            if deflate { "on" } else { "off" },
            per_conn
        );
    }
    let _ = c;
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = idle_connection_memory, dedup_memory
}
criterion_main!(benches);
