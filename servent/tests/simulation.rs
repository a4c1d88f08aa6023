//! In-memory simulation of many servent cores on the harness
//! (`hazel_servent::harness`): no sockets, virtual time, every byte passes
//! between cores through their real handshakes and framing. Links have no
//! latency here and deliveries run in the order they were sent, so a flood
//! travels breadth-first, as it would on links of equal latency.
//!
//! On seeded random graphs of 1000 nodes: a Query reaches exactly the nodes
//! within TTL hops of its origin, no node handles it twice, every QueryHit
//! reaches the origin along the reverse path and nowhere else, and a Push
//! reaches its target.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hazel_servent::core::shares::{Library, SharedFile};
use hazel_servent::core::{CoreConfig, CoreEvent, DropReason, ProtocolVersion, Stats};
use hazel_servent::harness::{self, NodeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Most deliveries one `settle` may take.
const MAX_STEPS: usize = 10_000_000;

fn listen_addr(node: usize) -> SocketAddr {
    harness::Net::address_for(node)
}

fn servent_id(node: usize) -> [u8; 16] {
    let mut id = [0x5e; 16];
    id[..8].copy_from_slice(&(node as u64).to_le_bytes());
    id
}

fn library(node: usize) -> Arc<Library> {
    let name = format!("common tune {node}.ogg");
    Arc::new(Library::new(vec![SharedFile {
        index: 1,
        name: name.clone(),
        rel_path: name.clone().into(),
        path: name.into(),
        size: 1000 + node as u64,
        mtime: SystemTime::UNIX_EPOCH,
        sha1: Some([node as u8; 20]),
        tiger: None,
    }]))
}

/// The harness's network, with this simulation's cores (one shared file
/// each) and the checks' views of it.
struct Net {
    net: harness::Net,
}

impl Net {
    fn new(n: usize, seed: u64, deflate: bool) -> Net {
        let mut net = harness::Net::new(seed);
        for node in 0..n {
            let mut config = CoreConfig::new(servent_id(node), listen_addr(node));
            config.peers = 0;
            config.max_peers = 64;
            config.deflate = deflate;
            config.protocol = ProtocolVersion::V06;
            config.seed = seed ^ (node as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            // Small tables: a thousand cores share this process.
            config.dedup_capacity = 1024;
            let id = net.add(config);
            net.cores[id].set_library(library(node));
        }
        Net { net }
    }

    /// `from` dials `to`; the connection completes in the next `settle`.
    fn dial(&mut self, from: usize, to: usize) {
        self.net.dial(from, to);
    }

    /// Delivers everything in flight until nothing moves.
    fn settle(&mut self) {
        assert!(
            self.net.settle(MAX_STEPS),
            "the network did not settle in {MAX_STEPS} deliveries"
        );
    }

    fn stats(&self) -> Vec<Stats> {
        self.net.cores.iter().map(|c| c.stats()).collect()
    }

    fn duplicates(&self) -> Vec<u64> {
        self.net
            .cores
            .iter()
            .map(|c| c.drop_count(DropReason::Duplicate))
            .collect()
    }

    fn node_at(&self, addr: &SocketAddr) -> NodeId {
        self.net.node_at(addr).expect("a node of this net")
    }
}

/// A connected random graph: a random spanning tree plus random chords,
/// each edge dialled by its first node.
fn random_graph(n: usize, extra_edges: usize, rng: &mut StdRng) -> Vec<(usize, usize)> {
    let mut edges = HashSet::new();
    for node in 1..n {
        let parent = rng.gen_range(0..node);
        edges.insert((parent.min(node), parent.max(node)));
    }
    let mut tries = 0;
    while edges.len() < n - 1 + extra_edges && tries < 100 * extra_edges {
        tries += 1;
        let a = rng.gen_range(0..n);
        let b = rng.gen_range(0..n);
        if a != b {
            edges.insert((a.min(b), a.max(b)));
        }
    }
    let mut list: Vec<(usize, usize)> = edges.into_iter().collect();
    list.sort();
    list
}

fn distances(n: usize, edges: &[(usize, usize)], origin: usize) -> Vec<Option<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut dist = vec![None; n];
    dist[origin] = Some(0);
    let mut queue = VecDeque::from([origin]);
    while let Some(u) = queue.pop_front() {
        let d = dist[u].unwrap_or(0);
        for &v in &adj[u] {
            if dist[v].is_none() {
                dist[v] = Some(d + 1);
                queue.push_back(v);
            }
        }
    }
    dist
}

fn build(n: usize, extra: usize, seed: u64, deflate: bool) -> (Net, Vec<(usize, usize)>) {
    build_on(n, extra, seed, deflate, 1)
}

/// [`build`] on `threads` threads, with 20 ms of latency on every link (so
/// the threads have windows to run side by side in; equal latencies, so a
/// query's first copy still comes along a shortest path, as the checks
/// expect).
fn build_on(
    n: usize,
    extra: usize,
    seed: u64,
    deflate: bool,
    threads: usize,
) -> (Net, Vec<(usize, usize)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let edges = random_graph(n, extra, &mut rng);
    let mut net = Net::new(n, seed, deflate);
    if threads > 1 {
        net.net.set_latency(harness::Latency {
            base: std::time::Duration::from_millis(20),
            jitter: std::time::Duration::ZERO,
        });
        net.net.set_threads(threads);
    }
    for &(a, b) in &edges {
        net.dial(a, b);
    }
    net.settle();
    for (node, core) in net.net.cores.iter().enumerate() {
        let degree = edges
            .iter()
            .filter(|(a, b)| *a == node || *b == node)
            .count();
        assert_eq!(
            core.established_ids().len(),
            degree,
            "node {node}: every edge completed its handshake"
        );
    }
    // Let the discovery pings and their pongs die out.
    net.settle();
    (net, edges)
}

/// Runs one search with `ttl` from `origin` and checks reach, duplicates
/// and the QueryHits' paths. Returns the responders and their distances.
fn check_search(
    net: &mut Net,
    edges: &[(usize, usize)],
    origin: usize,
    ttl: u8,
) -> Vec<(usize, usize)> {
    let n = net.net.cores.len();
    let dist = distances(n, edges, origin);
    let before = net.stats();
    let dup_before = net.duplicates();
    let now = net.net.now;
    let search = net.net.cores[origin].search_with_ttl("common tune", ttl, now);
    net.net.pump(origin);
    net.settle();
    let after = net.stats();
    let dup_after = net.duplicates();

    let mut responders = Vec::new();
    let mut expected_hit_hops = 0usize;
    for node in 0..n {
        let received = after[node].received.query - before[node].received.query;
        let dups = dup_after[node] - dup_before[node];
        let handled = received - dups;
        let within = dist[node].is_some_and(|d| d >= 1 && d <= usize::from(ttl));
        if node == origin {
            assert_eq!(handled, 0, "the origin never handles its own query");
        } else if within {
            assert_eq!(
                handled, 1,
                "node {node} at {:?} hops handles it once",
                dist[node]
            );
            let d = dist[node].unwrap_or(0);
            responders.push((node, d));
            expected_hit_hops += d;
        } else {
            assert_eq!(
                received, 0,
                "node {node} at {:?} hops must not see it",
                dist[node]
            );
        }
        let originated = after[node].originated.query_hit - before[node].originated.query_hit;
        assert_eq!(
            originated,
            u64::from(within && node != origin),
            "node {node} answers iff reached"
        );
    }
    // Each hit is received once per hop of its reverse path and nowhere else.
    let hits_received: u64 = (0..n)
        .map(|i| after[i].received.query_hit - before[i].received.query_hit)
        .sum();
    assert_eq!(
        hits_received as usize, expected_hit_hops,
        "QueryHits travel only their reverse paths"
    );
    let hit_drops: u64 = (0..n)
        .map(|i| after[i].dropped.query_hit - before[i].dropped.query_hit)
        .sum();
    assert_eq!(hit_drops, 0, "no QueryHit is dropped");
    let results = net.net.cores[origin].results(Some(search));
    let mut from: Vec<String> = results.iter().map(|r| r.servent_id.clone()).collect();
    from.sort();
    from.dedup();
    assert_eq!(
        results.len(),
        responders.len(),
        "one result per responder reaches the origin"
    );
    assert_eq!(from.len(), responders.len());
    for r in &results {
        let node = net.node_at(&r.addr);
        assert_eq!(r.name, format!("common tune {node}.ogg"));
        assert_eq!(usize::from(r.hops), dist[node].unwrap_or(0) - 1);
    }
    responders
}

fn check_push(net: &mut Net, origin: usize, target: usize, distance: usize) {
    let before = net.stats();
    for events in &mut net.net.events {
        events.clear();
    }
    let now = net.net.now;
    assert!(
        net.net.cores[origin].send_push(servent_id(target), 1, now),
        "route known"
    );
    net.net.pump(origin);
    net.settle();
    let after = net.stats();
    for (node, events) in net.net.events.iter().enumerate() {
        let pushes: Vec<_> = events
            .iter()
            .filter_map(|(_, e)| match e {
                CoreEvent::PushRequest(p) => Some(p),
                _ => None,
            })
            .collect();
        if node == target {
            assert_eq!(pushes.len(), 1, "the target gets the Push");
            assert_eq!(pushes[0].addr, listen_addr(origin), "call back the origin");
            assert_eq!(pushes[0].file_index, 1);
        } else {
            assert!(pushes.is_empty(), "node {node} got a Push not meant for it");
        }
    }
    let received: u64 = (0..net.net.cores.len())
        .map(|i| after[i].received.push - before[i].received.push)
        .sum();
    assert_eq!(
        received as usize, distance,
        "the Push travels the hit's path only"
    );
}

#[test]
fn a_thousand_nodes_route_queries_hits_and_pushes() {
    let started = std::time::Instant::now();
    let (mut net, edges) = build(1000, 1000, 0x5eed_0001, false);
    for (origin, ttl) in [(0usize, 3u8), (517, 4)] {
        let responders = check_search(&mut net, &edges, origin, ttl);
        assert!(
            responders.len() > 10,
            "a meaningful reach: {}",
            responders.len()
        );
        assert!(responders.len() < 999, "TTL {ttl} must not reach everyone");
        let &(target, distance) = responders
            .iter()
            .max_by_key(|(node, d)| (*d, std::cmp::Reverse(*node)))
            .expect("a responder");
        assert!(distance >= 2);
        check_push(&mut net, origin, target, distance);
    }
    eprintln!("1000-node simulation took {:?}", started.elapsed());
}

#[test]
fn on_two_threads_queries_hits_and_pushes_route_the_same() {
    let (mut net, edges) = build_on(1000, 1000, 0x5eed_0004, false, 2);
    for (origin, ttl) in [(3usize, 3u8), (800, 4)] {
        let responders = check_search(&mut net, &edges, origin, ttl);
        assert!(responders.len() > 10, "reach: {}", responders.len());
        let &(target, distance) = responders
            .iter()
            .max_by_key(|(node, d)| (*d, std::cmp::Reverse(*node)))
            .expect("a responder");
        check_push(&mut net, origin, target, distance);
    }
}

#[test]
fn a_second_seed_with_denser_chords() {
    let (mut net, edges) = build(1000, 2000, 0x5eed_0002, false);
    let responders = check_search(&mut net, &edges, 42, 2);
    assert!(!responders.is_empty());
    let dups: u64 = net.duplicates().iter().sum();
    assert!(dups > 0, "chords make duplicates, and they are suppressed");
}

#[test]
fn compressed_links_route_the_same() {
    let (mut net, edges) = build(60, 60, 0x5eed_0003, true);
    assert!(net
        .net
        .cores
        .iter()
        .flat_map(|c| c.peers(net.net.now))
        .all(|p| p.deflate_in && p.deflate_out));
    let responders = check_search(&mut net, &edges, 7, 3);
    assert!(!responders.is_empty());
}

#[test]
fn virtual_time_keeps_links_alive_and_tables_bounded() {
    // Compressed links: idle compressors are freed and the streams go on.
    let (mut net, edges) = build(50, 50, 0x5eed_0004, true);
    let links: usize = net
        .net
        .cores
        .iter()
        .map(|c| c.established_ids().len())
        .sum();
    // Ten quiet minutes: keep-alive pings and pongs keep every link up.
    net.net.start_timers();
    for _ in 0..60 {
        net.net.advance(Duration::from_secs(10));
        net.settle();
    }
    let after: usize = net
        .net
        .cores
        .iter()
        .map(|c| c.established_ids().len())
        .sum();
    assert_eq!(after, links, "no link dropped while pings are answered");
    assert!(
        net.net.cores.iter().all(|c| c.stats().host_cache > 0),
        "pongs fed the host caches"
    );
    let responders = check_search(&mut net, &edges, 3, 3);
    assert!(
        !responders.is_empty(),
        "searches still work after idle periods"
    );
}

#[test]
fn links_stay_up_through_hours_of_quiet_virtual_time() {
    // A gtk-gnutella ultrapeer drops a link that leaves its pings unanswered
    // for about two minutes; Hazel must keep a quiet link alive by itself for
    // hours. Three virtual hours in 5 s steps, compressed links, no traffic
    // but what the cores generate.
    let (mut net, edges) = build(3, 0, 0x5eed_0005, true);
    let links: usize = net
        .net
        .cores
        .iter()
        .map(|c| c.established_ids().len())
        .sum();
    assert_eq!(links, 2 * edges.len());
    net.net.start_timers();
    for step in 0..(3 * 3600 / 5) {
        net.net.advance(Duration::from_secs(5));
        net.settle();
        let up: usize = net
            .net
            .cores
            .iter()
            .map(|c| c.established_ids().len())
            .sum();
        assert_eq!(up, links, "a link dropped after {} s", (step + 1) * 5);
    }
    let pings: u64 = net.stats().iter().map(|s| s.received.ping).sum();
    assert!(
        pings >= 2 * 3 * 3600 / 20,
        "keep-alive pings flowed on every quiet link ({pings} received)"
    );
    let responders = check_search(&mut net, &edges, 2, 2);
    assert!(
        !responders.is_empty(),
        "searches still work after three hours"
    );
}
