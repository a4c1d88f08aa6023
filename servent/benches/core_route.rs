//! Descriptors routed per second through one Core with 8 neighbours that
//! flood TTL-2 Queries with unique ids: each Query is deduplicated, its
//! reverse path recorded, and it is queued for the 7 other neighbours with
//! TTL 1; the neighbours' sockets drain everything (output + consume), so
//! the measured cost includes moving descriptors to the byte buffers.
//!
//! `cargo bench -p hazel-servent --bench core_route`

use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hazel_protocol::descriptor::{Query, SpeedField};
use hazel_protocol::header::{DescriptorId, Header, PayloadType};
use hazel_servent::core::{ConnId, Core, CoreConfig};
use hazel_servent::harness::{attach_leaf, discard};

const NEIGHBOURS: u64 = 8;
const QUERIES_PER_NEIGHBOUR: usize = 128;

fn attach(core: &mut Core, id: ConnId, now: Instant) {
    let peer: SocketAddr = format!("10.0.0.{id}:5000").parse().expect("addr");
    attach_leaf(core, id, peer, now);
}

/// One neighbour's burst: `QUERIES_PER_NEIGHBOUR` TTL-2 queries back to back.
fn burst() -> (Vec<u8>, usize) {
    let mut payload = Vec::new();
    Query::new(SpeedField::flags(0), "hazel nut").encode(&mut payload);
    let one = Header::frame(DescriptorId([0; 16]), PayloadType::QUERY, 2, 0, &payload);
    let mut bytes = Vec::new();
    for _ in 0..QUERIES_PER_NEIGHBOUR {
        bytes.extend_from_slice(&one);
    }
    (bytes, one.len())
}

fn route_flood(c: &mut Criterion) {
    let now = Instant::now();
    let mut config = CoreConfig::new([0xAB; 16], "127.0.0.1:6346".parse().expect("addr"));
    config.peers = 0;
    config.deflate = false;
    let mut core = Core::new(config, now);
    for id in 1..=NEIGHBOURS {
        attach(&mut core, id, now);
    }
    assert_eq!(core.established_ids().len(), NEIGHBOURS as usize);
    let (mut bytes, frame_len) = burst();
    let mut counter: u64 = 0;
    let per_iter = NEIGHBOURS * QUERIES_PER_NEIGHBOUR as u64;
    let mut group = c.benchmark_group("core_route");
    group.throughput(Throughput::Elements(per_iter));
    group.bench_function("ttl2_query_flood_8_neighbours", |b| {
        b.iter(|| {
            for from in 1..=NEIGHBOURS {
                // Fresh ids so nothing is a duplicate.
                for q in 0..QUERIES_PER_NEIGHBOUR {
                    counter += 1;
                    let at = q * frame_len;
                    bytes[at..at + 8].copy_from_slice(&counter.to_le_bytes());
                }
                core.on_bytes(from, &bytes, now);
            }
            for id in 1..=NEIGHBOURS {
                discard(&mut core, id, now);
            }
        })
    });
    group.finish();
    let stats = core.stats();
    assert_eq!(
        stats.received.query,
        stats.forwarded.query / (NEIGHBOURS - 1)
    );
    eprintln!(
        "routed {} queries, forwarded {} copies, drops {:?}, routing tables {} bytes",
        stats.received.query,
        stats.forwarded.query,
        stats.drops_by_reason,
        stats.routing_memory_bytes
    );
}

criterion_group!(benches, route_flood);
criterion_main!(benches);
