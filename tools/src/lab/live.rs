//! `hazel-lab live`: the flooding workload on real `hazel` processes on
//! loopback, next to the simulation of the same graph, files and queries.
//!
//! Each servent runs headless with its own data directory and a shared
//! folder holding its copies of the workload's files; the lab links them
//! along the graph (`connect` on their control sockets), waits until every
//! link is up and every library scanned, then issues each query with
//! `search` on the origin's control socket, waits for the flood to end (no
//! counter moves for a quiet period, bounded), and reads every servent's
//! `stats`. The simulation runs the same graph, files and queries through
//! the same `Core` code on the harness, every link taking 1 ms; the report
//! puts the two side by side. On a tree the counts must agree exactly; where
//! the graph has cycles, a copy that arrives first by another path (a
//! busy process, loopback scheduling) changes what is forwarded and which
//! way the hits go back, so a few queries may count differently.
//!
//! The central index runs live too: the same servents are logged in to a
//! real `hazel-index` with their own Napster client (`--index`, `--nick`),
//! sharing the same files there, and each query goes out again from the
//! same origin as `search --index`. The request is counted by the index
//! itself (its Prometheus metrics, `--stats-listen`), the answers (a 201 per
//! result, the 202) and the bytes by the searcher's index session (`index
//! status`); the simulation runs the index code in process ([`Napster`]).
//! The messages must agree exactly. (The flood's queries go out as `search
//! --gnutella`, so the index sees none of them.)
//!
//! Every wait is bounded. The servents die with the lab: each is killed
//! when the fleet is dropped (errors and panics included) and, should the
//! lab itself be killed, by the kernel (`PR_SET_PDEATHSIG`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use serde_json::Value;

use super::central::{Napster, MAX_RESULTS};
use super::flood::Gnutella;
use super::sim::{Architecture, Scenario};
use super::topology::{self, Topology};
use super::workload::{QuerySpec, Workload, WorkloadConfig};
use super::Arch;
use crate::load::compare::{free_port, start_index, wait_for, wait_on_index, Killed, WorkDir};
use crate::load::servent::raise_fd_limit;
use crate::load::transfer::Hazel;

/// What `hazel-lab live` runs.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub servents: usize,
    /// A random tree instead of a ring with random chords (`degree`).
    pub tree: bool,
    pub degree: usize,
    pub ttl: u8,
    pub queries: usize,
    pub seed: u64,
    /// The `hazel` binary (`hazel-index` is taken from beside it).
    pub hazel: PathBuf,
    /// How long a query may take to settle at most.
    pub query_timeout: Duration,
}

/// One query, simulated and live.
#[derive(Debug, Clone, Serialize)]
pub struct QueryPair {
    pub origin: u32,
    pub keyword: String,
    pub copies: usize,
    pub sim: Observed,
    pub live: Observed,
}

/// What one query did, as counted from the cores' counters (for the index:
/// the request as the server counted it, what came back to the searcher).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Observed {
    pub query_messages: u64,
    pub hit_messages: u64,
    pub reached: usize,
    pub duplicates: u64,
    pub found: bool,
    /// Wall or virtual ms to the first result (live: measured by polling).
    pub latency_ms: Option<f64>,
    /// Bytes between the searcher and the index, both ways (index only).
    pub bytes: Option<u64>,
}

/// The live run's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct LiveReport {
    pub servents: usize,
    pub edges: usize,
    pub ttl: u8,
    pub queries: Vec<QueryPair>,
    /// Live queries whose counts equal the simulation's.
    pub identical_counts: usize,
    /// The same queries by the servents to a live `hazel-index` (`search
    /// --index`) and to the index in process.
    pub index_queries: Vec<QueryPair>,
    pub index_identical: usize,
}

/// The running servents, each logged in to the running index; killed
/// (servents first) and their folder removed on drop.
struct Fleet {
    servents: Vec<Hazel>,
    _index: Killed,
    /// Where the index serves its Prometheus metrics.
    metrics: SocketAddr,
    _work: WorkDir,
}

impl Fleet {
    fn start(config: &LiveConfig, workload: &Workload) -> io::Result<Fleet> {
        let dir = std::env::temp_dir().join(format!(
            "hazel-lab-live-{}-{}",
            std::process::id(),
            config.seed
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let work = WorkDir(dir.clone());
        let metrics = free_port()?;
        let metrics_arg = metrics.to_string();
        // No periodic server stats (214) in the middle of a search's count.
        let (index, index_addr) = start_index(
            &config.hazel.with_file_name("hazel-index"),
            &dir,
            &["--stats-listen", &metrics_arg, "--stats-interval", "3600"],
        )?;
        let index_arg = index_addr.to_string();
        let ttl = config.ttl.to_string();
        let mut servents = Vec::new();
        for (node, held) in workload.per_node.iter().enumerate() {
            let data = dir.join(format!("node{node}"));
            let share = data.join("share");
            std::fs::create_dir_all(&share)?;
            for &f in held {
                let file = &workload.files[f as usize];
                // Small files: the name is what is searched.
                std::fs::write(share.join(&file.name), file.keyword.as_bytes())?;
            }
            let nick = format!("node{node}");
            let extra = [
                "--no-default-caches",
                "--ttl",
                &ttl,
                "--index",
                &index_arg,
                "--nick",
                &nick,
            ];
            servents.push(Hazel::spawn(&config.hazel, &data, Some(&share), &extra)?);
        }
        for (node, servent) in servents.iter().enumerate() {
            wait_on_index(servent, node, workload.per_node[node].len() as u64)?;
        }
        Ok(Fleet {
            servents,
            _index: index,
            metrics,
            _work: work,
        })
    }

    fn ctl(&self, node: usize, line: &str) -> io::Result<Value> {
        self.servents[node]
            .ask(line)
            .map_err(|e| io::Error::other(format!("node {node}: {e}")))
    }

    fn stats(&self, node: usize) -> io::Result<Counts> {
        let s = self.ctl(node, "stats")?;
        let num = |v: &Value, path: &[&str]| {
            path.iter()
                .try_fold(v, |v, k| v.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Ok(Counts {
            query: num(&s, &["received", "query"]),
            query_hit: num(&s, &["received", "query_hit"]),
            duplicates: num(&s, &["drops_by_reason", "duplicate"]),
            established: num(&s, &["established"]),
        })
    }

    fn all_stats(&self) -> io::Result<Vec<Counts>> {
        (0..self.servents.len()).map(|n| self.stats(n)).collect()
    }

    /// The searcher's side of its index session: messages in and out,
    /// bytes both ways.
    fn index_traffic(&self, node: usize) -> io::Result<IndexTraffic> {
        let status = self.ctl(node, "index status")?;
        let n = |k: &str| status[0][k].as_u64().unwrap_or(0);
        Ok(IndexTraffic {
            messages_in: n("messages_in"),
            messages_out: n("messages_out"),
            bytes: n("bytes_in") + n("bytes_out"),
        })
    }

    /// The index's own count of searches answered and of search requests
    /// (200) received, from its metrics.
    fn index_searches(&self) -> io::Result<(u64, u64)> {
        let text = http_get(self.metrics, "/metrics")?;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .map_or(0, |v| v as u64)
        };
        Ok((
            value("hazel_index_searches_total "),
            value("hazel_index_messages_total{type=\"200\"} "),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexTraffic {
    messages_in: u64,
    messages_out: u64,
    bytes: u64,
}

/// The body of a plain HTTP/1.0 GET (bounded by a 5 s timeout).
fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(body.to_string())
        }
        _ => Err(io::Error::other(format!(
            "GET {path} from {addr}: {answer:.80}"
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    query: u64,
    query_hit: u64,
    duplicates: u64,
    established: u64,
}

/// The graph, workload and queries of a live run (the simulation gets the
/// same).
fn plan(config: &LiveConfig) -> (Vec<(u32, u32)>, Workload, Vec<QuerySpec>) {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let n = config.servents;
    let workload = Workload::new(
        n,
        &WorkloadConfig {
            files: 2 * n,
            top_share: 0.4,
            ..WorkloadConfig::default()
        },
        &mut rng,
    );
    let edges = if config.tree {
        random_tree(n, &mut rng)
    } else {
        connected_graph(n, config.degree, &mut rng)
    };
    let online = vec![true; n];
    let queries = (0..config.queries)
        .map(|i| workload.query(i, &online, &mut rng))
        .collect();
    (edges, workload, queries)
}

/// A random graph of the degree asked, plus a ring so that no servent is cut
/// off (small fleets would often be split otherwise).
fn connected_graph(n: usize, degree: usize, rng: &mut StdRng) -> Vec<(u32, u32)> {
    let mut edges = topology::build(Topology::Random, n, degree.saturating_sub(2), rng);
    for a in 0..n as u32 {
        let b = (a + 1) % n as u32;
        let e = (a.min(b), a.max(b));
        if a != b && !edges.contains(&e) {
            edges.push(e);
        }
    }
    edges
}

/// A random tree: node `i` links to a random earlier node. On a tree a
/// flood's counts do not depend on which copy arrives first, so the live
/// run must count exactly what the simulation counts.
fn random_tree(n: usize, rng: &mut StdRng) -> Vec<(u32, u32)> {
    use rand::Rng;
    (1..n as u32).map(|i| (rng.gen_range(0..i), i)).collect()
}

/// Runs the live fleet and the simulation of the same run.
pub fn run(config: &LiveConfig) -> io::Result<LiveReport> {
    raise_fd_limit();
    let (edges, workload, queries) = plan(config);
    let sim = simulate(config, &edges, &workload, &queries);
    let fleet = Fleet::start(config, &workload)?;
    let mut degree = vec![0u64; config.servents];
    for &(a, b) in &edges {
        degree[a as usize] += 1;
        degree[b as usize] += 1;
        let to = fleet.servents[b as usize].addr;
        fleet.ctl(a as usize, &format!("connect {to}"))?;
    }
    // Every library is scanned: each servent shares all its files on the
    // index (Fleet::start waited for that).
    wait_for(Duration::from_secs(30), "the servents to link up", || {
        fleet
            .all_stats()
            .is_ok_and(|stats| stats.iter().zip(&degree).all(|(s, &d)| s.established == d))
    })?;
    let mut pairs = Vec::new();
    for (q, sim) in queries.iter().zip(sim) {
        let live = live_query(
            &fleet,
            q,
            &workload,
            config.query_timeout,
            Network::Gnutella,
        )?;
        pairs.push(pair(q, &workload, sim, live));
    }
    let index_queries = index_run(config, &fleet, &workload, &queries)?;
    Ok(LiveReport {
        servents: config.servents,
        edges: edges.len(),
        ttl: config.ttl,
        identical_counts: identical(&pairs),
        queries: pairs,
        index_identical: identical(&index_queries),
        index_queries,
    })
}

fn pair(q: &QuerySpec, workload: &Workload, sim: Observed, live: Observed) -> QueryPair {
    let file = &workload.files[q.file as usize];
    QueryPair {
        origin: q.origin,
        keyword: file.keyword.clone(),
        copies: file.holders.len(),
        sim,
        live,
    }
}

/// Queries whose messages, nodes reached and outcome agree.
fn identical(pairs: &[QueryPair]) -> usize {
    let key = |o: &Observed| (o.query_messages, o.hit_messages, o.reached, o.found);
    pairs.iter().filter(|p| key(&p.sim) == key(&p.live)).count()
}

/// The queries sent by the servents to the live `hazel-index` they are
/// logged in to (`search --index`), and to the index in process.
fn index_run(
    config: &LiveConfig,
    fleet: &Fleet,
    workload: &Workload,
    queries: &[QuerySpec],
) -> io::Result<Vec<QueryPair>> {
    let scenario = loopback(Arch::Index, config);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut napster = Napster::new(&scenario, workload, &mut rng);
    let mut pairs = Vec::new();
    for q in queries {
        let sim = napster.query(q, workload);
        let sim = Observed {
            query_messages: sim.query_messages,
            hit_messages: sim.messages - sim.query_messages,
            reached: sim.reached,
            duplicates: 0,
            found: sim.found,
            latency_ms: sim.latency.map(|l| l.as_secs_f64() * 1000.0),
            bytes: Some(sim.bytes),
        };
        let live = live_query(fleet, q, workload, config.query_timeout, Network::Index)?;
        pairs.push(pair(q, workload, sim, live));
    }
    Ok(pairs)
}

/// The simulated run of `arch`, like loopback: every link as fast as the
/// others (1 ms), so copies arrive first along the shortest paths, as they
/// mostly do live.
fn loopback(arch: Arch, config: &LiveConfig) -> Scenario {
    let mut scenario = Scenario::new(arch, config.servents);
    scenario.ttl = config.ttl;
    scenario.seed = config.seed;
    scenario.latency_ms = 1;
    scenario.jitter_ms = 0;
    scenario
}

fn simulate(
    config: &LiveConfig,
    edges: &[(u32, u32)],
    workload: &Workload,
    queries: &[QuerySpec],
) -> Vec<Observed> {
    let scenario = loopback(Arch::Flood, config);
    let mut gnutella = Gnutella::on_graph(&scenario, workload, edges);
    gnutella.start_measuring();
    queries
        .iter()
        .map(|q| {
            let keyword = &workload.files[q.file as usize].keyword;
            let (first, delta) = gnutella.overlay().search(q.origin, keyword, config.ttl);
            Observed {
                query_messages: delta.received.query,
                hit_messages: delta.received.query_hit,
                reached: delta.reached.iter().filter(|&&n| n != q.origin).count(),
                duplicates: delta.duplicates,
                found: first.is_some(),
                latency_ms: first.map(|f| f.latency.as_secs_f64() * 1000.0),
                bytes: None,
            }
        })
        .collect()
}

/// One query sent by its origin, to the overlay (`search --gnutella`) or
/// to the index (`search --index`), watched until it is over.
///
/// Flood: the Queries, QueryHits and duplicates every servent's `stats`
/// counted, the nodes the Query reached. Index: the request as the index
/// counted it (its metrics), the answers and bytes as the searcher counted
/// them (its index session).
fn live_query(
    fleet: &Fleet,
    q: &QuerySpec,
    workload: &Workload,
    timeout: Duration,
    network: Network,
) -> io::Result<Observed> {
    let origin = q.origin as usize;
    let keyword = &workload.files[q.file as usize].keyword;
    let watch = Watch {
        fleet,
        origin,
        timeout,
    };
    match network {
        Network::Gnutella => {
            let line = format!("search --gnutella {keyword}");
            let (before, last, latency_ms) = watch.run(&line, || fleet.all_stats(), |_, _| true)?;
            let mut observed = Observed {
                found: latency_ms.is_some(),
                latency_ms,
                ..Observed::default()
            };
            for (n, (b, a)) in before.iter().zip(&last).enumerate() {
                observed.query_messages += a.query - b.query;
                observed.hit_messages += a.query_hit - b.query_hit;
                observed.duplicates += a.duplicates - b.duplicates;
                if a.query > b.query && n != origin {
                    observed.reached += 1;
                }
            }
            Ok(observed)
        }
        Network::Index => {
            let (searches_before, requests_before) = fleet.index_searches()?;
            let line = format!("search --index --max {MAX_RESULTS} {keyword}");
            let read = || fleet.index_traffic(origin);
            let (before, last, latency_ms) = watch.run(&line, read, |before, last| {
                last.messages_in > before.messages_in
            })?;
            let (searches_after, requests_after) = fleet.index_searches()?;
            if last.messages_out - before.messages_out != requests_after - requests_before {
                return Err(io::Error::other(format!(
                    "{keyword}: node {origin} sent {} messages to the index, which counted {} requests",
                    last.messages_out - before.messages_out,
                    requests_after - requests_before
                )));
            }
            Ok(Observed {
                query_messages: requests_after - requests_before,
                hit_messages: last.messages_in - before.messages_in,
                reached: usize::from(searches_after > searches_before),
                duplicates: 0,
                found: latency_ms.is_some(),
                latency_ms,
                bytes: Some(last.bytes - before.bytes),
            })
        }
    }
}

/// Where a live query goes.
#[derive(Debug, Clone, Copy)]
enum Network {
    Gnutella,
    Index,
}

/// A search to watch: who sends it, for how long at most.
struct Watch<'a> {
    fleet: &'a Fleet,
    origin: usize,
    timeout: Duration,
}

impl Watch<'_> {
    /// Sends search `line` from the origin and watches it: the counters
    /// `read` gives before the search and once they stop moving (nothing for
    /// 300 ms after `started` holds between the two), bounded by the
    /// timeout, and the ms to the first result listed.
    fn run<T: PartialEq>(
        &self,
        line: &str,
        read: impl Fn() -> io::Result<T>,
        started: impl Fn(&T, &T) -> bool,
    ) -> io::Result<(T, T, Option<f64>)> {
        let (fleet, origin, timeout) = (self.fleet, self.origin, self.timeout);
        let before = read()?;
        let start = Instant::now();
        let search = fleet.ctl(origin, line)?;
        let id = search
            .get("search_id")
            .and_then(Value::as_u64)
            .ok_or_else(|| io::Error::other(format!("search answered {search}")))?;
        let mut latency_ms = None;
        let mut last = read()?;
        let mut quiet_since = Instant::now();
        while start.elapsed() < timeout {
            if latency_ms.is_none() {
                let results = fleet.ctl(origin, &format!("results {id}"))?;
                if results.as_array().is_some_and(|r| !r.is_empty()) {
                    latency_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
                }
            }
            let now = read()?;
            if now != last {
                last = now;
                quiet_since = Instant::now();
            } else if started(&before, &last) && quiet_since.elapsed() >= Duration::from_millis(300)
            {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok((before, last, latency_ms))
    }
}

/// A table row: the query, its copies, then `sim / live` per column.
fn row(p: &QueryPair, columns: &[(String, String)]) -> String {
    let mut line = format!("| {} from {} | {} |", p.keyword, p.origin, p.copies);
    for (sim, live) in columns {
        line.push_str(&format!(" {sim} / {live} |"));
    }
    line.push('\n');
    line
}

/// Milliseconds in a table cell.
fn ms(x: Option<f64>) -> String {
    x.map_or("–".to_string(), |v| format!("{v:.1}"))
}

/// The side-by-side tables of a live run.
pub fn render(report: &LiveReport) -> String {
    let mut out = render_flood(report);
    out.push_str(&format!(
        "\nhazel-index, searched by the servents (`search --index`): {} of {} queries counted \
         the same live as simulated (requests as the index counted them; answers and bytes as \
         the searcher's index session counted them; the bytes differ by the files' real sizes, \
         checksums and MP3 details)\n\
         | query | copies | requests sim / live | answers (results, end) sim / live | \
         bytes sim / live | found sim / live | ms sim / live |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        report.index_identical,
        report.index_queries.len()
    ));
    let bytes = |b: Option<u64>| b.map_or("–".to_string(), |b| b.to_string());
    for p in &report.index_queries {
        out.push_str(&row(
            p,
            &[
                (
                    p.sim.query_messages.to_string(),
                    p.live.query_messages.to_string(),
                ),
                (
                    p.sim.hit_messages.to_string(),
                    p.live.hit_messages.to_string(),
                ),
                (bytes(p.sim.bytes), bytes(p.live.bytes)),
                (p.sim.found.to_string(), p.live.found.to_string()),
                (ms(p.sim.latency_ms), ms(p.live.latency_ms)),
            ],
        ));
    }
    out
}

fn render_flood(report: &LiveReport) -> String {
    let mut out = format!(
        "{} servents, {} links, TTL {}: {} of {} queries counted the same live as simulated \
         (where the graph has cycles, which copy arrives first can differ, and with it the counts)\n\
         | query | copies | query msgs sim / live | hits sim / live | reached sim / live | \
         duplicates sim / live | found sim / live | ms to first result sim / live |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        report.servents,
        report.edges,
        report.ttl,
        report.identical_counts,
        report.queries.len()
    );
    for p in &report.queries {
        out.push_str(&row(
            p,
            &[
                (
                    p.sim.query_messages.to_string(),
                    p.live.query_messages.to_string(),
                ),
                (
                    p.sim.hit_messages.to_string(),
                    p.live.hit_messages.to_string(),
                ),
                (p.sim.reached.to_string(), p.live.reached.to_string()),
                (p.sim.duplicates.to_string(), p.live.duplicates.to_string()),
                (p.sim.found.to_string(), p.live.found.to_string()),
                (ms(p.sim.latency_ms), ms(p.live.latency_ms)),
            ],
        ));
    }
    out
}
