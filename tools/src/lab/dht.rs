//! Chord, as a model (Hazel has no DHT): exact-key lookups routed over
//! finger tables, the way Stoica et al. describe it (SIGCOMM 2001).
//!
//! - Node ids and keys are 64-bit (a file's key is a hash of its keyword);
//!   finger `i` of node `n` is the first node at or after `n + 2^i`.
//! - A lookup goes, hop by hop, to the closest finger preceding the key, then
//!   to the key's successor, which answers the origin directly. A finger
//!   that has left costs a timed-out message and the next finger is tried.
//! - A file's holders publish it to the key's successor and the
//!   [`REPLICAS`]` - 1` nodes after it. Nodes that left take their records
//!   with them; a node that comes back publishes its files again. Finger
//!   tables are not repaired (no stabilization): under churn they go stale,
//!   which is what the timeouts measure.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;

use super::sim::{Architecture, Background, QueryOutcome, Scenario};
use super::workload::{QuerySpec, Workload};

/// Nodes holding each record (the key's successor and the next ones).
pub const REPLICAS: usize = 4;
/// Length of each node's successor list (about log2 of the sizes run).
pub const SUCCESSORS: usize = 16;
/// What a lookup message and an answer take on the wire (UDP, as
/// Kademlia-style DHTs do): 20-byte ids, a small header; 6 bytes per holder.
const REQUEST_BYTES: u64 = 48;
const ANSWER_BYTES: u64 = 32;
const HOLDER_BYTES: u64 = 6;
/// Holders named in one answer at most.
const MAX_HOLDERS: usize = 20;
/// Waiting for a node that left.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Bytes of one finger or successor entry (id and address).
const ENTRY_BYTES: u64 = 14;

/// Where a lookup ended.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    // `hops` counts every node the lookup visits, the key's successor
    // included.
    /// The node that answered (the first live node at or after the key).
    pub node: u32,
    pub hops: u32,
    /// Messages sent to nodes that had left.
    pub timeouts: u32,
    pub latency: Duration,
}

pub struct Chord {
    /// Node id of each node.
    ids: Vec<u64>,
    /// Nodes in ring order (by id).
    ring: Vec<u32>,
    /// Each node's place in `ring`.
    place: Vec<u32>,
    /// Each node's distinct fingers, nearest first.
    fingers: Vec<Vec<u32>>,
    alive: Vec<bool>,
    /// File → key.
    keys: Vec<u64>,
    /// File → the nodes storing its record, and its holders.
    records: HashMap<u32, (Vec<u32>, Vec<u32>)>,
    /// Files each node holds.
    held: Vec<Vec<u32>>,
    load: Vec<u64>,
    seed: u64,
    latency_ms: (u64, u64),
}

/// Whether `x` lies on the ring in the half-open arc (a, b].
fn in_arc(x: u64, a: u64, b: u64) -> bool {
    if a < b {
        a < x && x <= b
    } else {
        x > a || x <= b
    }
}

impl Chord {
    pub fn new(scenario: &Scenario, workload: &Workload, _rng: &mut StdRng) -> Chord {
        let n = workload.per_node.len();
        let ids: Vec<u64> = (0..n as u64)
            .map(|i| super::splitmix64(scenario.seed.rotate_left(32) ^ i))
            .collect();
        let mut ring: Vec<u32> = (0..n as u32).collect();
        ring.sort_by_key(|&i| ids[i as usize]);
        let mut place = vec![0u32; n];
        for (p, &node) in ring.iter().enumerate() {
            place[node as usize] = p as u32;
        }
        let mut chord = Chord {
            ids,
            ring,
            place,
            fingers: Vec::new(),
            alive: vec![true; n],
            keys: (0..workload.files.len() as u64)
                .map(|f| super::splitmix64(f ^ 0x6b65_7973))
                .collect(),
            records: HashMap::new(),
            held: workload.per_node.clone(),
            load: vec![0; n],
            seed: scenario.seed,
            latency_ms: (scenario.latency_ms, scenario.jitter_ms),
        };
        chord.fingers = (0..n).map(|node| chord.finger_table(node as u32)).collect();
        for (file, spec) in workload.files.iter().enumerate() {
            let storing = chord.successors_of(chord.keys[file]);
            chord
                .records
                .insert(file as u32, (storing, spec.holders.clone()));
        }
        chord
    }

    /// The first node (alive or not) at or after `key`.
    fn successor(&self, key: u64) -> u32 {
        let p = self.ring.partition_point(|&n| self.ids[n as usize] < key);
        self.ring[p % self.ring.len()]
    }

    /// The first [`REPLICAS`] live nodes at or after `key`.
    fn successors_of(&self, key: u64) -> Vec<u32> {
        let start = self.place[self.successor(key) as usize] as usize;
        (0..self.ring.len())
            .map(|i| self.ring[(start + i) % self.ring.len()])
            .filter(|&n| self.alive[n as usize])
            .take(REPLICAS)
            .collect()
    }

    fn finger_table(&self, node: u32) -> Vec<u32> {
        let id = self.ids[node as usize];
        let mut out: Vec<u32> = Vec::new();
        for i in 0..64 {
            let f = self.successor(id.wrapping_add(1u64 << i));
            if f != node && out.last() != Some(&f) {
                out.push(f);
            }
        }
        out
    }

    fn hop_latency(&self, a: u32, b: u32) -> Duration {
        let (base, jitter) = self.latency_ms;
        Duration::from_millis(super::pair_latency_ms(self.seed, a, b, base, jitter))
    }

    /// The next live node after `node` on the ring (its successor list).
    fn live_successor(&self, node: u32) -> Option<u32> {
        let start = self.place[node as usize] as usize;
        (1..self.ring.len())
            .map(|i| self.ring[(start + i) % self.ring.len()])
            .take(SUCCESSORS)
            .find(|&n| self.alive[n as usize])
    }

    /// Routes a lookup for `key` from `origin`; `None` when a node's whole
    /// successor list has left.
    pub fn lookup(&mut self, origin: u32, key: u64) -> Option<Lookup> {
        let mut cur = origin;
        let mut hops = 0;
        let mut timeouts = 0;
        let mut latency = Duration::ZERO;
        // Bounded: every hop gets closer to the key.
        for _ in 0..self.ring.len() + 64 {
            let id = self.ids[cur as usize];
            let succ = self.live_successor(cur)?;
            if cur == origin && hops == 0 && self.responsible(cur, key) {
                return Some(Lookup {
                    node: cur,
                    hops,
                    timeouts,
                    latency,
                });
            }
            let next = if in_arc(key, id, self.ids[succ as usize]) {
                succ
            } else {
                let mut chosen = succ;
                for &f in self.fingers[cur as usize].iter().rev() {
                    if !in_arc(self.ids[f as usize], id, key.wrapping_sub(1)) {
                        continue;
                    }
                    if self.alive[f as usize] {
                        chosen = f;
                        break;
                    }
                    timeouts += 1;
                    latency += TIMEOUT;
                    self.load[cur as usize] += 1;
                }
                chosen
            };
            hops += 1;
            latency += self.hop_latency(cur, next);
            self.load[cur as usize] += 1;
            self.load[next as usize] += 1;
            if in_arc(key, id, self.ids[next as usize]) {
                return Some(Lookup {
                    node: next,
                    hops,
                    timeouts,
                    latency,
                });
            }
            cur = next;
        }
        None
    }

    /// Whether `node` is the first live node at or after `key`.
    fn responsible(&self, node: u32, key: u64) -> bool {
        self.successors_of(key).first() == Some(&node)
    }

    /// Mean path length of `lookups` lookups from random nodes for random
    /// keys, counted as Stoica et al. count it: the nodes contacted until one
    /// knows the key's successor (the lookup's hops less the last, which only
    /// fetches the record).
    pub fn mean_path_length(&mut self, lookups: usize) -> f64 {
        let n = self.ids.len() as u64;
        let mut total = 0u64;
        for i in 0..lookups as u64 {
            let origin = (super::splitmix64(i ^ 0x0123) % n) as u32;
            let key = super::splitmix64(i ^ 0xfeed);
            let found = self.lookup(origin, key).expect("no churn: lookups end");
            total += u64::from(found.hops.saturating_sub(1));
        }
        total as f64 / lookups as f64
    }
}

impl Architecture for Chord {
    fn leave(&mut self, node: u32) -> Background {
        self.alive[node as usize] = false;
        Background::default()
    }

    fn join(&mut self, node: u32, _rng: &mut StdRng) -> Background {
        self.alive[node as usize] = true;
        // Publishes its files again: one lookup per file, then a store at
        // each of the key's successors.
        let mut messages = 0u64;
        for file in self.held[node as usize].clone() {
            let key = self.keys[file as usize];
            if let Some(found) = self.lookup(node, key) {
                messages += u64::from(found.hops + found.timeouts);
            }
            let storing = self.successors_of(key);
            messages += storing.len() as u64;
            let record = self.records.entry(file).or_default();
            record.0 = storing;
            if !record.1.contains(&node) {
                record.1.push(node);
            }
        }
        Background {
            ping_pong: 0,
            other: messages,
            bytes: messages * REQUEST_BYTES,
        }
    }

    fn query(&mut self, query: &QuerySpec, _workload: &Workload) -> QueryOutcome {
        let key = self.keys[query.file as usize];
        let Some(found) = self.lookup(query.origin, key) else {
            return QueryOutcome::default();
        };
        let live_holders = self
            .records
            .get(&query.file)
            .map_or(0, |(storing, holders)| {
                if storing.contains(&found.node) {
                    holders.iter().filter(|&&h| self.alive[h as usize]).count()
                } else {
                    0
                }
            });
        // The answer goes straight back to the origin.
        self.load[found.node as usize] += 1;
        self.load[query.origin as usize] += 1;
        let path = u64::from(found.hops + found.timeouts);
        let ok = live_holders > 0;
        QueryOutcome {
            messages: path + 1,
            query_messages: path,
            bytes: path * REQUEST_BYTES
                + ANSWER_BYTES
                + HOLDER_BYTES * live_holders.min(MAX_HOLDERS) as u64,
            reached: found.hops as usize,
            duplicates: 0,
            found: ok,
            hops: ok.then_some(found.hops),
            latency: ok.then(|| found.latency + self.hop_latency(found.node, query.origin)),
        }
    }

    fn start_measuring(&mut self) {
        self.load.iter_mut().for_each(|l| *l = 0);
    }

    fn busiest_load(&mut self) -> u64 {
        self.load.iter().copied().max().unwrap_or(0)
    }

    /// Fingers and successor list, and the records a node stores.
    fn state_bytes(&self) -> (f64, u64) {
        let mut per_node: Vec<u64> = self
            .fingers
            .iter()
            .map(|f| (f.len() + SUCCESSORS) as u64 * ENTRY_BYTES)
            .collect();
        for (storing, holders) in self.records.values() {
            for &s in storing {
                per_node[s as usize] += 8 + HOLDER_BYTES * holders.len() as u64;
            }
        }
        let max = per_node.iter().copied().max().unwrap_or(0);
        (
            per_node.iter().sum::<u64>() as f64 / per_node.len().max(1) as f64,
            max,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::workload::WorkloadConfig;
    use rand::SeedableRng;

    fn chord(nodes: usize, seed: u64) -> Chord {
        let mut scenario = Scenario::new(crate::lab::Arch::Dht, nodes);
        scenario.seed = seed;
        let mut rng = StdRng::seed_from_u64(seed);
        let workload = Workload::new(nodes, &WorkloadConfig::default(), &mut rng);
        Chord::new(&scenario, &workload, &mut rng)
    }

    /// Stoica et al.: the mean path length is about ½·log2 N. Tolerance:
    /// within 10% of ½·log2 N at every size tried.
    #[test]
    fn lookups_take_about_half_log2_n_hops() {
        for (nodes, seed) in [(256, 1), (1024, 2), (4096, 3), (16384, 4)] {
            let mean = chord(nodes, seed).mean_path_length(4000);
            let expected = 0.5 * (nodes as f64).log2();
            assert!(
                (mean - expected).abs() <= 0.10 * expected,
                "N={nodes}: mean path {mean:.3}, ½·log2 N = {expected:.3}"
            );
        }
    }

    #[test]
    fn every_lookup_ends_at_the_keys_successor() {
        let mut c = chord(500, 5);
        for i in 0..500u64 {
            let key = crate::lab::splitmix64(i);
            let found = c.lookup((i % 500) as u32, key).expect("no churn");
            assert_eq!(found.node, c.successor(key));
        }
    }

    #[test]
    fn lookups_route_around_nodes_that_left_at_the_cost_of_timeouts() {
        let mut c = chord(1000, 6);
        for node in (0..1000).step_by(5) {
            c.leave(node);
        }
        let mut timeouts = 0;
        for i in 0..500u64 {
            let key = crate::lab::splitmix64(i ^ 77);
            let origin = 1 + (i as u32 % 199) * 5;
            let found = c
                .lookup(origin, key)
                .expect("successor lists cover a fifth gone");
            assert!(c.alive[found.node as usize]);
            assert_eq!(Some(&found.node), c.successors_of(key).first());
            timeouts += found.timeouts;
        }
        assert!(timeouts > 0, "stale fingers cost timeouts");
    }
}
