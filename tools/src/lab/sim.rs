//! One run: an architecture, a size and a workload; the query loop with
//! churn and background traffic, and what is measured ([`Row`]).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::topology::Topology;
use super::workload::{churn_step, replica_bucket, QuerySpec, Workload, WorkloadConfig};
use super::{central, dht, flood, supernode};

/// The architectures compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Gnutella 0.4: every query flooded with a TTL.
    Flood,
    /// Napster: one index server.
    Index,
    /// Gnutella 0.6 / KaZaA: leaves under ultrapeers with QRP tables.
    Super,
    /// Chord: exact-key lookups.
    Dht,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Flood => "flood",
            Arch::Index => "index",
            Arch::Super => "super",
            Arch::Dht => "dht",
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flood" | "gnutella" => Ok(Arch::Flood),
            "index" | "napster" => Ok(Arch::Index),
            "super" | "supernode" | "ultrapeer" => Ok(Arch::Super),
            "dht" | "chord" => Ok(Arch::Dht),
            _ => Err(format!(
                "unknown architecture {s:?} (flood, index, super, dht)"
            )),
        }
    }
}

/// Everything that defines a run.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub arch: Arch,
    pub nodes: usize,
    /// The overlay of a flood (and of the ultrapeers among themselves).
    pub topology: Topology,
    /// Neighbours per node of a random overlay.
    pub degree: usize,
    /// TTL of floods (queries and pings); of the ultrapeers' flood for `super`.
    pub ttl: u8,
    /// Nodes answer Pings from their pong cache while it is fresh.
    pub pong_cache: bool,
    /// Share of the online nodes leaving (and as many rejoining) before each query.
    pub churn: f64,
    /// Pings (host discovery, TTL = `ttl`) from random nodes before each query.
    pub pings_per_query: usize,
    /// Virtual time between queries (ms).
    pub interval_ms: u64,
    /// Link latency: base plus up to jitter (ms), drawn per link.
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Leaves per ultrapeer (`super`).
    pub leaves_per_ultrapeer: usize,
    pub seed: u64,
    /// Threads the simulated network runs on (see
    /// `hazel_servent::harness::Net::set_threads`): a run is the same for
    /// the same seed and thread count, on any machine.
    pub threads: usize,
    pub workload: WorkloadConfig,
}

impl Scenario {
    pub fn new(arch: Arch, nodes: usize) -> Scenario {
        Scenario {
            arch,
            nodes,
            topology: Topology::Random,
            degree: 4,
            ttl: 7,
            pong_cache: true,
            churn: 0.0,
            pings_per_query: 1,
            interval_ms: 1000,
            latency_ms: 20,
            jitter_ms: 80,
            leaves_per_ultrapeer: 30,
            seed: 1,
            threads: 2,
            workload: WorkloadConfig::default(),
        }
    }
}

/// What one query did.
#[derive(Debug, Default, Clone, Copy)]
pub struct QueryOutcome {
    /// Every message the query caused: the query's copies and the answers.
    pub messages: u64,
    /// The query's copies alone.
    pub query_messages: u64,
    pub bytes: u64,
    /// Nodes other than the origin that saw the query.
    pub reached: usize,
    /// Copies of the query dropped as already seen.
    pub duplicates: u64,
    pub found: bool,
    /// Overlay hops from the origin to the first answer's source.
    pub hops: Option<u32>,
    /// Virtual time from the query to its first answer.
    pub latency: Option<Duration>,
}

/// Traffic that is not a query's: Pings and Pongs, joins and publishing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Background {
    pub ping_pong: u64,
    pub other: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for Background {
    fn add_assign(&mut self, b: Background) {
        self.ping_pong += b.ping_pong;
        self.other += b.other;
        self.bytes += b.bytes;
    }
}

/// An architecture as the query loop drives it.
pub trait Architecture: Send {
    /// Node `node` goes away (its links, entries and copies with it).
    fn leave(&mut self, node: u32) -> Background;
    /// Node `node` comes back; what joining cost.
    fn join(&mut self, node: u32, rng: &mut StdRng) -> Background;
    /// Traffic between queries (pings); the default is none.
    fn between_queries(&mut self, _online: &[bool], _rng: &mut StdRng) -> Background {
        Background::default()
    }
    fn query(&mut self, query: &QuerySpec, workload: &Workload) -> QueryOutcome;
    /// Starts counting load per node (after setup).
    fn start_measuring(&mut self);
    /// Most messages sent plus received by one node since `start_measuring`.
    fn busiest_load(&mut self) -> u64;
    /// State held per node (bytes): mean and largest.
    fn state_bytes(&self) -> (f64, u64);
}

/// The measured quantities of one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub arch: String,
    /// `random`/`powerlaw` for flood and super, `-` otherwise.
    pub topology: String,
    pub nodes: usize,
    /// 0 where no TTL applies.
    pub ttl: u8,
    pub pong_cache: bool,
    pub churn: f64,
    pub seed: u64,
    pub queries: usize,
    pub messages_per_query: f64,
    pub query_messages_per_query: f64,
    pub bytes_per_query: f64,
    /// Mean share of the nodes that saw a query.
    pub reach: f64,
    pub duplicates_per_query: f64,
    pub success: f64,
    pub success_popular: f64,
    pub success_rare: f64,
    /// Success per replica bucket ([`super::workload::REPLICA_LABELS`]);
    /// NaN where no query fell in the bucket.
    pub success_by_replicas: [f64; 5],
    /// Mean over answered queries: hops to the first answer's source.
    pub hops_to_answer: f64,
    /// Mean over answered queries: virtual ms to the first answer.
    pub latency_ms: f64,
    /// The busiest node's messages (sent + received) per query.
    pub busiest_node_per_query: f64,
    pub state_bytes_mean: f64,
    pub state_bytes_max: u64,
    /// Ping and Pong among all messages (queries, answers, pings, pongs,
    /// joins, publishing).
    pub ping_pong_share: f64,
    /// Joins and publishing per query (churn's cost).
    pub maintenance_per_query: f64,
    /// Messages of the measured phase (queries, answers, pings, joins).
    pub simulated_messages: u64,
    /// Wall-clock seconds of the run, of its setup (building the network)
    /// and of its measured phase (not part of the result's identity).
    #[serde(skip)]
    pub wall_secs: f64,
    #[serde(skip)]
    pub setup_secs: f64,
}

impl Row {
    /// Wall-clock time per message of the measured phase (µs).
    pub fn micros_per_message(&self) -> f64 {
        (self.wall_secs - self.setup_secs) * 1e6 / self.simulated_messages.max(1) as f64
    }
}

/// Builds the architecture of `scenario` and runs its queries.
pub fn run(scenario: &Scenario) -> Row {
    let started = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let workload = Workload::new(scenario.nodes, &scenario.workload, &mut rng);
    let mut arch: Box<dyn Architecture> = match scenario.arch {
        Arch::Flood => Box::new(flood::Gnutella::new(scenario, &workload, &mut rng)),
        Arch::Index => Box::new(central::Napster::new(scenario, &workload, &mut rng)),
        Arch::Super => Box::new(supernode::Ultrapeers::new(scenario, &workload, &mut rng)),
        Arch::Dht => Box::new(dht::Chord::new(scenario, &workload, &mut rng)),
    };
    let setup_secs = started.elapsed().as_secs_f64();
    let mut row = run_queries(arch.as_mut(), scenario, &workload, &mut rng);
    row.wall_secs = started.elapsed().as_secs_f64();
    row.setup_secs = setup_secs;
    // Freeing a large network's cores takes seconds: off the caller's path.
    std::thread::spawn(move || drop(arch));
    row
}

/// Sums over the queries of a run.
#[derive(Default)]
struct Tally {
    messages: u64,
    query_messages: u64,
    bytes: u64,
    reach: f64,
    duplicates: u64,
    found: [u64; 2],
    asked: [u64; 2],
    by_bucket: [(u64, u64); 5],
    hops: u64,
    latency_ms: f64,
    answered: u64,
    background: Background,
    maintenance: u64,
}

fn run_queries(
    arch: &mut dyn Architecture,
    scenario: &Scenario,
    workload: &Workload,
    rng: &mut StdRng,
) -> Row {
    let n = scenario.nodes;
    let mut online = vec![true; n];
    let mut t = Tally::default();
    arch.start_measuring();
    for i in 0..scenario.workload.queries {
        let (leave, join) = churn_step(&online, scenario.churn, rng);
        for &node in &leave {
            let b = arch.leave(node);
            online[node as usize] = false;
            t.maintenance += b.other + b.ping_pong;
            t.background += b;
        }
        for &node in &join {
            online[node as usize] = true;
            let b = arch.join(node, rng);
            t.maintenance += b.other + b.ping_pong;
            t.background += b;
        }
        t.background += arch.between_queries(&online, rng);
        let q = workload.query(i, &online, rng);
        let out = arch.query(&q, workload);
        let up = online.iter().filter(|&&o| o).count().max(2) - 1;
        t.messages += out.messages;
        t.query_messages += out.query_messages;
        t.bytes += out.bytes;
        t.reach += out.reached as f64 / up as f64;
        t.duplicates += out.duplicates;
        let class = usize::from(q.popular);
        t.asked[class] += 1;
        let bucket = replica_bucket(workload.files[q.file as usize].holders.len());
        t.by_bucket[bucket].0 += 1;
        if out.found {
            t.found[class] += 1;
            t.by_bucket[bucket].1 += 1;
        }
        if let (Some(h), Some(l)) = (out.hops, out.latency) {
            t.answered += 1;
            t.hops += u64::from(h);
            t.latency_ms += l.as_secs_f64() * 1000.0;
        }
    }
    let q = scenario.workload.queries.max(1) as f64;
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    let all_messages = t.messages + t.background.ping_pong + t.background.other;
    let (state_mean, state_max) = arch.state_bytes();
    Row {
        arch: scenario.arch.name().into(),
        topology: match scenario.arch {
            Arch::Flood | Arch::Super => scenario.topology.name().into(),
            _ => "-".into(),
        },
        nodes: n,
        ttl: match scenario.arch {
            Arch::Flood | Arch::Super => scenario.ttl,
            _ => 0,
        },
        pong_cache: scenario.pong_cache,
        churn: scenario.churn,
        seed: scenario.seed,
        queries: scenario.workload.queries,
        messages_per_query: t.messages as f64 / q,
        query_messages_per_query: t.query_messages as f64 / q,
        bytes_per_query: t.bytes as f64 / q,
        reach: t.reach / q,
        duplicates_per_query: t.duplicates as f64 / q,
        success: ratio(t.found[0] + t.found[1], t.asked[0] + t.asked[1]),
        success_popular: ratio(t.found[1], t.asked[1]),
        success_rare: ratio(t.found[0], t.asked[0]),
        success_by_replicas: t.by_bucket.map(|(asked, found)| ratio(found, asked)),
        hops_to_answer: ratio(t.hops, t.answered),
        latency_ms: if t.answered == 0 {
            f64::NAN
        } else {
            t.latency_ms / t.answered as f64
        },
        busiest_node_per_query: arch.busiest_load() as f64 / q,
        state_bytes_mean: state_mean,
        state_bytes_max: state_max,
        ping_pong_share: ratio(t.background.ping_pong, all_messages),
        maintenance_per_query: t.maintenance as f64 / q,
        simulated_messages: all_messages,
        wall_secs: 0.0,
        setup_secs: 0.0,
    }
}
