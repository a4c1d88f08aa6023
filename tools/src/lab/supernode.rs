//! Supernodes (Gnutella 0.6 ultrapeers, KaZaA): leaves hang under
//! ultrapeers and publish a query routing table of their keywords; a query
//! goes from a leaf to its ultrapeer, floods among the ultrapeers, and each
//! ultrapeer it reaches passes it to those of its leaves whose tables match.
//!
//! What is real and what is modelled:
//! - The ultrapeers are real `Core`s on an [`Overlay`]: the flood among them,
//!   dedup, TTL, reverse paths and the QueryHits are the servent's code.
//!   Hazel is a leaf and has no ultrapeer side, so each ultrapeer's core
//!   shares the files of its leaves (and its own) and answers for them: the
//!   hits that travel between ultrapeers are the core's (one QueryHit per
//!   ultrapeer, where a real ultrapeer relays one per leaf).
//! - Leaf tables are built by the servent's QRP builder
//!   ([`hazel_servent::core::query_route_table`]) into the protocol crate's
//!   tables, and matched with them (false positives included); a publish is
//!   counted as the RESET and PATCH messages the protocol crate encodes.
//! - The leaf links (leaf→ultrapeer query, ultrapeer→leaf query, leaf→
//!   ultrapeer hit, hits back to the asking leaf) are counted by the lab.

use std::time::Duration;

use hazel_protocol::qrp::QueryRouteTable;
use hazel_servent::core::query_route_table;
use rand::rngs::StdRng;
use rand::Rng;

use super::flood::{background, library, Overlay};
use super::sim::{Architecture, Background, QueryOutcome, Scenario};
use super::topology;
use super::workload::{FileSpec, QuerySpec, Workload};

/// A Gnutella header.
const HEADER_BYTES: u64 = 23;

pub struct Ultrapeers {
    overlay: Overlay,
    /// Nodes `0..ultrapeers` are ultrapeers, the rest leaves.
    ultrapeers: usize,
    /// Each leaf's ultrapeer (`None` while offline); unused for ultrapeers.
    parent: Vec<Option<u32>>,
    /// Each ultrapeer's leaves.
    leaves: Vec<Vec<u32>>,
    /// Each leaf's query routing table (`None`: it shares nothing, so no
    /// query is routed to it).
    tables: Vec<Option<QueryRouteTable>>,
    /// The bytes of one table (every table has the default size).
    table_bytes: u64,
    online: Vec<bool>,
    held: Vec<Vec<u32>>,
    files: Vec<FileSpec>,
    /// Messages on leaf links per node, since measuring started.
    leaf_load: Vec<u64>,
    ttl: u8,
    pings_per_query: usize,
    interval: Duration,
    seed: u64,
    latency_ms: (u64, u64),
}

/// The ultrapeers for `nodes` nodes with `per` leaves each (at least two).
pub fn ultrapeer_count(nodes: usize, per: usize) -> usize {
    nodes.div_ceil(per + 1).max(2).min(nodes)
}

impl Ultrapeers {
    pub fn new(scenario: &Scenario, workload: &Workload, rng: &mut StdRng) -> Ultrapeers {
        let n = workload.per_node.len();
        let u = ultrapeer_count(n, scenario.leaves_per_ultrapeer);
        let edges = topology::build(scenario.topology, u, scenario.degree.min(u - 1), rng);
        let overlay = Overlay::new(u, &edges, scenario);
        let mut leaves = vec![Vec::new(); u];
        let parent: Vec<Option<u32>> = (0..n)
            .map(|node| {
                (node >= u).then(|| {
                    let up = rng.gen_range(0..u);
                    leaves[up].push(node as u32);
                    up as u32
                })
            })
            .collect();
        let mut s = Ultrapeers {
            overlay,
            ultrapeers: u,
            parent,
            leaves,
            tables: vec![None; n],
            table_bytes: u64::from(QueryRouteTable::leaf_default().slots()),
            online: vec![true; n],
            held: workload.per_node.clone(),
            files: workload.files.clone(),
            leaf_load: vec![0; n],
            ttl: scenario.ttl,
            pings_per_query: scenario.pings_per_query,
            interval: Duration::from_millis(scenario.interval_ms),
            seed: scenario.seed,
            latency_ms: (scenario.latency_ms, scenario.jitter_ms),
        };
        for leaf in u..n {
            s.tables[leaf] = s.table_of(leaf as u32);
        }
        for up in 0..u {
            s.refresh_library(up as u32);
        }
        s
    }

    fn files_of(&self, node: u32) -> Vec<(u32, &FileSpec)> {
        self.held[node as usize]
            .iter()
            .map(|&f| (f, &self.files[f as usize]))
            .collect()
    }

    /// A leaf's table as the servent builds it.
    fn table_of(&self, leaf: u32) -> Option<QueryRouteTable> {
        let files = self.files_of(leaf);
        (!files.is_empty()).then(|| query_route_table(&library(&files)))
    }

    /// What an ultrapeer's core shares: its files and its online leaves'.
    fn refresh_library(&mut self, up: u32) {
        let mut files = self.files_of(up);
        for &leaf in &self.leaves[up as usize] {
            files.extend(self.files_of(leaf));
        }
        files.sort_by_key(|f| f.0);
        files.dedup_by_key(|f| f.0);
        let lib = library(&files);
        self.overlay.net.cores[up as usize].set_library(lib);
    }

    /// `leaf` attaches to a random live ultrapeer and publishes its table;
    /// the QRP messages that took.
    fn attach(&mut self, leaf: u32, rng: &mut StdRng) -> Background {
        let live: Vec<u32> = (0..self.ultrapeers as u32)
            .filter(|&u| self.online[u as usize])
            .collect();
        if live.is_empty() {
            return Background::default();
        }
        let up = live[rng.gen_range(0..live.len())];
        self.parent[leaf as usize] = Some(up);
        self.leaves[up as usize].push(leaf);
        self.refresh_library(up);
        let (messages, bytes) = match &self.tables[leaf as usize] {
            Some(table) => {
                let patch = table.patch_from(None);
                let bytes = patch
                    .iter()
                    .map(|m| HEADER_BYTES + m.encode().len() as u64)
                    .sum();
                (patch.len() as u64, bytes)
            }
            None => (0, 0),
        };
        self.leaf_load[leaf as usize] += messages;
        self.leaf_load[up as usize] += messages;
        Background {
            ping_pong: 0,
            other: messages,
            bytes,
        }
    }

    fn leaf_latency(&self, leaf: u32, up: u32) -> Duration {
        let (base, jitter) = self.latency_ms;
        Duration::from_millis(super::pair_latency_ms(self.seed, leaf, up, base, jitter))
    }
}

impl Architecture for Ultrapeers {
    fn leave(&mut self, node: u32) -> Background {
        self.online[node as usize] = false;
        if (node as usize) < self.ultrapeers {
            let b = background(&self.overlay.leave(node));
            // Its leaves find another ultrapeer (below, on their next
            // attach): they are orphaned now.
            let orphans = std::mem::take(&mut self.leaves[node as usize]);
            let mut rng = rand::SeedableRng::seed_from_u64(self.seed ^ u64::from(node));
            let mut total = b;
            for leaf in orphans {
                self.parent[leaf as usize] = None;
                total += self.attach(leaf, &mut rng);
            }
            self.refresh_library(node);
            return total;
        }
        if let Some(up) = self.parent[node as usize].take() {
            self.leaves[up as usize].retain(|&l| l != node);
            self.refresh_library(up);
        }
        Background::default()
    }

    fn join(&mut self, node: u32, rng: &mut StdRng) -> Background {
        self.online[node as usize] = true;
        if (node as usize) < self.ultrapeers {
            let live: Vec<u32> = (0..self.ultrapeers as u32)
                .filter(|&u| u != node && self.online[u as usize])
                .collect();
            self.refresh_library(node);
            return background(&self.overlay.join(node, &live, rng));
        }
        self.attach(node, rng)
    }

    fn between_queries(&mut self, _online: &[bool], rng: &mut StdRng) -> Background {
        self.overlay.wait(self.interval);
        let mut b = Background::default();
        for _ in 0..self.pings_per_query {
            let mut up = rng.gen_range(0..self.ultrapeers);
            while !self.online[up] {
                up = rng.gen_range(0..self.ultrapeers);
            }
            b += background(&self.overlay.ping(up as u32, self.ttl));
        }
        b
    }

    fn query(&mut self, query: &QuerySpec, workload: &Workload) -> QueryOutcome {
        let keyword = &workload.files[query.file as usize].keyword;
        let origin = query.origin;
        let (up, origin_messages, link) = if (origin as usize) < self.ultrapeers {
            (origin, 0u64, Duration::ZERO)
        } else {
            let Some(up) = self.parent[origin as usize] else {
                return QueryOutcome::default();
            };
            self.leaf_load[origin as usize] += 1;
            self.leaf_load[up as usize] += 1;
            (up, 1, self.leaf_latency(origin, up))
        };
        let (first, delta) = self.overlay.search(up, keyword, self.ttl);
        // Each ultrapeer reached (and the origin's) asks its matching leaves.
        let mut asked_ups = delta.reached.clone();
        if !asked_ups.contains(&up) {
            asked_ups.push(up);
        }
        let mut leaf_queries = 0u64;
        let mut leaf_hits = 0u64;
        let mut local_holder = false;
        for u in asked_ups {
            for &leaf in &self.leaves[u as usize] {
                let matches = leaf != origin
                    && self.tables[leaf as usize]
                        .as_ref()
                        .is_some_and(|t| t.contains_word(keyword));
                if !matches {
                    continue;
                }
                leaf_queries += 1;
                self.leaf_load[leaf as usize] += 1;
                self.leaf_load[u as usize] += 1;
                if self.held[leaf as usize].contains(&query.file) {
                    leaf_hits += 1;
                    self.leaf_load[leaf as usize] += 1;
                    self.leaf_load[u as usize] += 1;
                    local_holder |= u == up;
                }
            }
        }
        // Hits reach an asking leaf from its ultrapeer: those the ultrapeer's
        // core received, and its own leaves' answers.
        let to_origin = if origin_messages == 0 {
            0
        } else {
            delta.first_hits + u64::from(local_holder)
        };
        self.leaf_load[origin as usize] += to_origin;
        self.leaf_load[up as usize] += to_origin;
        let found = first.is_some() || local_holder;
        // Links: the asking leaf's both ways, the ultrapeers' (the core's
        // virtual time), and the answering leaf's both ways at the base latency.
        let answering_leaf = Duration::from_millis(2 * self.latency_ms.0);
        let (hops, latency) = match first {
            _ if local_holder => (1, answering_leaf),
            Some(f) => (f.hops + 1, f.latency + answering_leaf),
            None => (0, Duration::ZERO),
        };
        let leaf_link_messages = origin_messages + leaf_queries + leaf_hits + to_origin;
        let query_bytes = HEADER_BYTES + 3 + keyword.len() as u64;
        QueryOutcome {
            messages: delta.received.total() + leaf_link_messages,
            query_messages: origin_messages + delta.received.query + leaf_queries,
            bytes: delta.bytes + leaf_link_messages * query_bytes,
            reached: delta.reached.iter().filter(|&&n| n != up).count()
                + leaf_queries as usize
                + origin_messages as usize,
            duplicates: delta.duplicates,
            found,
            hops: found.then_some(hops + origin_messages as u32),
            latency: found.then_some(link * 2 + latency),
        }
    }

    fn start_measuring(&mut self) {
        self.overlay.start_measuring();
        self.leaf_load.iter_mut().for_each(|l| *l = 0);
    }

    fn busiest_load(&mut self) -> u64 {
        let (overlay_max, _) = self.overlay.busiest();
        let leaf_max = self.leaf_load.iter().copied().max().unwrap_or(0);
        // An ultrapeer's load is its core's plus its leaf links'.
        let up_max = (0..self.ultrapeers)
            .map(|u| self.overlay_load(u) + self.leaf_load[u])
            .max()
            .unwrap_or(0);
        up_max.max(leaf_max).max(overlay_max)
    }

    /// An ultrapeer: its route tables and its leaves' QRP tables; a leaf:
    /// its own table.
    fn state_bytes(&self) -> (f64, u64) {
        let mut total = 0u64;
        let mut max = 0u64;
        for node in 0..self.online.len() {
            let bytes = if node < self.ultrapeers {
                self.overlay.routing_bytes(node)
                    + self.leaves[node]
                        .iter()
                        .filter(|&&l| self.tables[l as usize].is_some())
                        .count() as u64
                        * self.table_bytes
            } else if self.tables[node].is_some() {
                self.table_bytes
            } else {
                0
            };
            total += bytes;
            max = max.max(bytes);
        }
        (total as f64 / self.online.len().max(1) as f64, max)
    }
}

impl Ultrapeers {
    fn overlay_load(&self, up: usize) -> u64 {
        self.overlay.load_of(up)
    }
}
