//! Gnutella 0.4 flooding through real servent cores.
//!
//! [`Overlay`] is a harness [`Net`] of `Core`s linked along a graph (the
//! real 0.6 handshake, without deflate), whose counters are read after each
//! step: only the nodes a step touched are read, so a query on a network of
//! 100,000 cores costs what the query costs. [`Gnutella`] is the flooding
//! architecture on it: every node a servent sharing its files, queries and
//! Pings flooded with a TTL.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use hazel_servent::core::shares::{Library, SharedFile};
use hazel_servent::core::{CoreConfig, CoreEvent, Counters, TypeCounts};
use hazel_servent::harness::{Latency, Net};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::Rng;

use super::sim::{Architecture, Background, QueryOutcome, Scenario};
use super::topology;
use super::workload::{FileSpec, QuerySpec, Workload};

/// Most steps a single query or ping may take (a bound, never reached by a
/// finite flood).
const MAX_STEPS: usize = 100_000_000;

/// What the nodes touched by one step counted.
#[derive(Debug, Default, Clone)]
pub struct Delta {
    /// Descriptors received, by type (each message counted once, where it
    /// arrived).
    pub received: TypeCounts,
    /// Received descriptors dropped as already seen.
    pub duplicates: u64,
    /// Nodes that received the step's query at least once.
    pub reached: Vec<u32>,
    /// Bytes that crossed the links.
    pub bytes: u64,
    /// QueryHits the first node named in `also` received.
    pub first_hits: u64,
}

/// The first answer to a search.
#[derive(Debug, Clone, Copy)]
pub struct FirstAnswer {
    /// Links from the origin to the answering node.
    pub hops: u32,
    pub latency: Duration,
}

/// Real cores on a graph (see the module doc).
pub struct Overlay {
    pub net: Net,
    /// Each node's counters when last read.
    seen: Vec<Counters>,
    /// Messages each node handled when measuring started.
    load_base: Vec<u64>,
    /// Neighbours each node had at the start (how many it dials on rejoining).
    start_degree: Vec<u32>,
}

/// Messages a node handled: received, forwarded and originated.
fn handled(c: &Counters) -> u64 {
    c.received.total() + c.forwarded.total() + c.originated.total()
}

fn sub(a: &TypeCounts, b: &TypeCounts) -> TypeCounts {
    TypeCounts {
        ping: a.ping - b.ping,
        pong: a.pong - b.pong,
        bye: a.bye - b.bye,
        push: a.push - b.push,
        query: a.query - b.query,
        query_hit: a.query_hit - b.query_hit,
        other: a.other - b.other,
    }
}

fn add(a: &mut TypeCounts, b: &TypeCounts) {
    a.ping += b.ping;
    a.pong += b.pong;
    a.bye += b.bye;
    a.push += b.push;
    a.query += b.query;
    a.query_hit += b.query_hit;
    a.other += b.other;
}

/// The configuration of node `node`'s core in a lab run.
pub fn core_config(node: usize, scenario: &Scenario, max_peers: usize) -> CoreConfig {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(node as u64).to_le_bytes());
    id[8..].copy_from_slice(&scenario.seed.to_le_bytes());
    let mut c = CoreConfig::new(id, Net::address_for(node));
    // Links are made by the lab, along the graph.
    c.peers = 0;
    c.max_peers = max_peers;
    // Deflate needs a compressor per link: megabytes per node.
    c.deflate = false;
    c.seed = super::splitmix64(scenario.seed ^ (node as u64) << 20);
    // Small route tables: one query or ping is in flight at a time, so each
    // node inserts one id per step; 64 per generation (16 for Pings and
    // Pushes) outlive any step. 7 KiB per node instead of the servent's 29 MB.
    c.dedup_capacity = 64;
    c.host_cache_capacity = 16;
    c.ttl = scenario.ttl;
    c.max_ttl = c.max_ttl.max(scenario.ttl);
    if !scenario.pong_cache {
        c.pong_cache_fresh = Duration::ZERO;
    }
    c
}

/// The library a node shares: its copies of the workload's files.
pub fn library(files: &[(u32, &FileSpec)]) -> Arc<Library> {
    Arc::new(Library::new(
        files
            .iter()
            .map(|&(index, f)| SharedFile {
                index,
                name: f.name.clone(),
                rel_path: PathBuf::from(&f.name),
                path: PathBuf::from(&f.name),
                size: f.size,
                mtime: UNIX_EPOCH,
                sha1: None,
                tiger: None,
            })
            .collect(),
    ))
}

impl Overlay {
    /// `nodes` cores linked along `edges`, handshakes done.
    pub fn new(nodes: usize, edges: &[(u32, u32)], scenario: &Scenario) -> Overlay {
        let mut degree = vec![0u32; nodes];
        for &(a, b) in edges {
            degree[a as usize] += 1;
            degree[b as usize] += 1;
        }
        let max_degree = degree.iter().copied().max().unwrap_or(0) as usize;
        let mut net = Net::new(scenario.seed);
        net.keep_events(false);
        net.set_latency(Latency {
            base: Duration::from_millis(scenario.latency_ms),
            jitter: Duration::from_millis(scenario.jitter_ms),
        });
        for node in 0..nodes {
            // Room for the links of rejoining nodes.
            net.add(core_config(node, scenario, max_degree + 64));
        }
        net.set_threads(scenario.threads);
        for &(a, b) in edges {
            net.dial(a as usize, b as usize);
        }
        assert!(net.settle(usize::MAX), "the overlay links up");
        // Past the Ping throttle of the link-up Pings.
        net.advance(Duration::from_secs(5));
        let seen = net.cores.iter().map(|c| c.counters()).collect();
        net.track_touched(true);
        Overlay {
            net,
            seen,
            load_base: vec![0; nodes],
            start_degree: degree,
        }
    }

    pub fn len(&self) -> usize {
        self.net.cores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.net.cores.is_empty()
    }

    /// Reads the counters of the nodes touched since the last read (and of
    /// `also`), summing what changed.
    pub fn collect(&mut self, also: &[u32], bytes_before: u64) -> Delta {
        let mut nodes = self.net.take_touched();
        nodes.extend(also.iter().map(|&n| n as usize));
        let mut delta = Delta {
            bytes: self.net.traffic.bytes - bytes_before,
            ..Delta::default()
        };
        for node in nodes {
            let now = self.net.cores[node].counters();
            let before = std::mem::replace(&mut self.seen[node], now);
            // `also` may name a node twice (touched too): the second read
            // finds no change.
            let received = sub(&now.received, &before.received);
            if received.query > 0 {
                delta.reached.push(node as u32);
            }
            if also.first() == Some(&(node as u32)) {
                delta.first_hits += received.query_hit;
            }
            add(&mut delta.received, &received);
            delta.duplicates += now.duplicates - before.duplicates;
        }
        delta
    }

    /// Runs until nothing is in flight.
    fn settle(&mut self) {
        assert!(self.net.settle(MAX_STEPS), "a flood ends");
    }

    /// `origin` searches for `text` with `ttl`; the first answer (if any)
    /// and what the search cost.
    pub fn search(&mut self, origin: u32, text: &str, ttl: u8) -> (Option<FirstAnswer>, Delta) {
        let o = origin as usize;
        let bytes_before = self.net.traffic.bytes;
        self.net.keep_events(true);
        self.net.take_events(o);
        let start = self.net.now;
        let search = self.net.cores[o].search_with_ttl(text, ttl, start);
        self.net.pump(o);
        self.settle();
        // The first result of this search, and when it came.
        let first = self
            .net
            .take_events(o)
            .into_iter()
            .find_map(|(at, e)| match e {
                CoreEvent::SearchResult(r) if r.search == search => Some(FirstAnswer {
                    hops: u32::from(r.hops) + 1,
                    latency: at - start,
                }),
                _ => None,
            });
        self.net.keep_events(false);
        (first, self.collect(&[origin], bytes_before))
    }

    /// `origin` pings with `ttl`.
    pub fn ping(&mut self, origin: u32, ttl: u8) -> Delta {
        let bytes_before = self.net.traffic.bytes;
        let now = self.net.now;
        self.net.cores[origin as usize].ping_with_ttl(ttl, now);
        self.net.pump(origin as usize);
        self.settle();
        self.collect(&[origin], bytes_before)
    }

    /// Virtual time passes (nothing is in flight between steps).
    pub fn wait(&mut self, d: Duration) {
        self.net.advance(d);
    }

    /// `node` closes every link (with a Bye).
    pub fn leave(&mut self, node: u32) -> Delta {
        let bytes_before = self.net.traffic.bytes;
        let n = node as usize;
        let now = self.net.now;
        for id in self.net.cores[n].established_ids().to_vec() {
            self.net.cores[n].disconnect(id, now);
        }
        self.net.pump(n);
        self.settle();
        self.collect(&[node], bytes_before)
    }

    /// `node` dials as many random nodes of `candidates` as it had
    /// neighbours at the start.
    pub fn join(&mut self, node: u32, candidates: &[u32], rng: &mut StdRng) -> Delta {
        let bytes_before = self.net.traffic.bytes;
        let want = (self.start_degree[node as usize] as usize).min(candidates.len());
        for i in sample(rng, candidates.len(), want) {
            let to = candidates[i] as usize;
            if to != node as usize {
                self.net.dial(node as usize, to);
            }
        }
        self.settle();
        self.collect(&[node], bytes_before)
    }

    pub fn start_measuring(&mut self) {
        self.load_base = self
            .net
            .cores
            .iter()
            .map(|c| handled(&c.counters()))
            .collect();
    }

    /// Most messages one node handled since `start_measuring`, and which.
    pub fn busiest(&self) -> (u64, usize) {
        self.net
            .cores
            .iter()
            .enumerate()
            .map(|(n, _)| (self.load_of(n), n))
            .max()
            .unwrap_or((0, 0))
    }

    /// Messages `node` handled since `start_measuring`.
    pub fn load_of(&self, node: usize) -> u64 {
        handled(&self.net.cores[node].counters()) - self.load_base[node]
    }

    /// Bytes of routing state of each node (the route tables as the core
    /// reports them).
    pub fn routing_bytes(&self, node: usize) -> u64 {
        self.net.cores[node].stats().routing_memory_bytes as u64
    }
}

/// Gnutella 0.4: every node a servent; queries and Pings flooded.
pub struct Gnutella {
    overlay: Overlay,
    online: Vec<bool>,
    ttl: u8,
    pings_per_query: usize,
    interval: Duration,
}

impl Gnutella {
    pub fn new(scenario: &Scenario, workload: &Workload, rng: &mut StdRng) -> Gnutella {
        let edges = topology::build(scenario.topology, scenario.nodes, scenario.degree, rng);
        Gnutella::on_graph(scenario, workload, &edges)
    }

    /// The same on a given graph (the tree checks).
    pub fn on_graph(scenario: &Scenario, workload: &Workload, edges: &[(u32, u32)]) -> Gnutella {
        let nodes = workload.per_node.len();
        let mut overlay = Overlay::new(nodes, edges, scenario);
        for (node, held) in workload.per_node.iter().enumerate() {
            if held.is_empty() {
                continue;
            }
            let files: Vec<(u32, &FileSpec)> = held
                .iter()
                .map(|&f| (f, &workload.files[f as usize]))
                .collect();
            overlay.net.cores[node].set_library(library(&files));
        }
        Gnutella {
            overlay,
            online: vec![true; nodes],
            ttl: scenario.ttl,
            pings_per_query: scenario.pings_per_query,
            interval: Duration::from_millis(scenario.interval_ms),
        }
    }

    pub fn overlay(&mut self) -> &mut Overlay {
        &mut self.overlay
    }
}

/// Ping and Pong apart from the rest.
pub fn background(delta: &Delta) -> Background {
    let pp = delta.received.ping + delta.received.pong;
    Background {
        ping_pong: pp,
        other: delta.received.total() - pp,
        bytes: delta.bytes,
    }
}

impl Architecture for Gnutella {
    fn leave(&mut self, node: u32) -> Background {
        self.online[node as usize] = false;
        background(&self.overlay.leave(node))
    }

    fn join(&mut self, node: u32, rng: &mut StdRng) -> Background {
        self.online[node as usize] = true;
        let up: Vec<u32> = (0..self.online.len() as u32)
            .filter(|&n| n != node && self.online[n as usize])
            .collect();
        background(&self.overlay.join(node, &up, rng))
    }

    fn between_queries(&mut self, online: &[bool], rng: &mut StdRng) -> Background {
        self.overlay.wait(self.interval);
        let mut b = Background::default();
        for _ in 0..self.pings_per_query {
            let mut origin = rng.gen_range(0..online.len());
            while !online[origin] {
                origin = rng.gen_range(0..online.len());
            }
            b += background(&self.overlay.ping(origin as u32, self.ttl));
        }
        b
    }

    fn query(&mut self, query: &QuerySpec, workload: &Workload) -> QueryOutcome {
        let keyword = &workload.files[query.file as usize].keyword;
        let (first, delta) = self.overlay.search(query.origin, keyword, self.ttl);
        QueryOutcome {
            messages: delta.received.total(),
            query_messages: delta.received.query,
            bytes: delta.bytes,
            reached: delta.reached.iter().filter(|&&n| n != query.origin).count(),
            duplicates: delta.duplicates,
            found: first.is_some(),
            hops: first.map(|f| f.hops),
            latency: first.map(|f| f.latency),
        }
    }

    fn start_measuring(&mut self) {
        self.overlay.start_measuring();
    }

    fn busiest_load(&mut self) -> u64 {
        self.overlay.busiest().0
    }

    fn state_bytes(&self) -> (f64, u64) {
        let all: Vec<u64> = (0..self.overlay.len())
            .map(|n| self.overlay.routing_bytes(n))
            .collect();
        let max = all.iter().copied().max().unwrap_or(0);
        (
            all.iter().sum::<u64>() as f64 / all.len().max(1) as f64,
            max,
        )
    }
}
