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
//! The central index runs live too: a real `hazel-index` process, to which
//! the lab logs each node in as an OpenNap client (the servent's own Napster
//! client is not part of this tree), shares the node's files and sends the
//! same queries; the simulation runs the index code in process
//! ([`Napster`]). A search's messages (the request, a 201 per result, the
//! 202) must agree exactly.
//!
//! Every wait is bounded. The servents die with the lab: each is killed
//! when the fleet is dropped (errors and panics included) and, should the
//! lab itself be killed, by the kernel (`PR_SET_PDEATHSIG`).

use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
use crate::load::index::Client;
use crate::load::servent::control_command;
use hazel_protocol::napster::{ClientMessage, SearchQuery};

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
    /// The `hazel` binary.
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

/// What one query did, as counted from the cores' counters.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Observed {
    pub query_messages: u64,
    pub hit_messages: u64,
    pub reached: usize,
    pub duplicates: u64,
    pub found: bool,
    /// Wall or virtual ms to the first result (live: measured by polling).
    pub latency_ms: Option<f64>,
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
    /// The same queries to a live `hazel-index` and to the index in process.
    pub index_queries: Vec<QueryPair>,
    pub index_identical: usize,
}

/// Running servents; killed and their directory removed on drop.
struct Fleet {
    children: Vec<Child>,
    index: Option<Child>,
    dir: PathBuf,
    data: Vec<PathBuf>,
    ports: Vec<SocketAddr>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in self.children.iter_mut().chain(self.index.iter_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(hazel: &Path, data: &Path, share: &Path, ttl: u8) -> io::Result<Child> {
    let log = std::fs::File::create(data.join("hazel.log"))?;
    let mut command = Command::new(hazel);
    command
        .args(["--headless", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--share")
        .arg(share)
        .args(["--peers", "0", "--max-peers", "64", "--no-default-caches"])
        .args(["--ttl", &ttl.to_string(), "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    spawn_dying_with_us(command, hazel)
}

/// A `hazel-index` on 127.0.0.1, port chosen by the system and read back
/// from its log; the child and its address.
fn spawn_index(binary: &Path, data: &Path) -> io::Result<(Child, SocketAddr)> {
    let log_path = data.join("hazel-index.log");
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(binary);
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(["--clones-per-ip", "0", "--searches-per-minute", "0"])
        .args(["--max-messages-per-second", "0", "--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let child = spawn_dying_with_us(command, binary)?;
    let addr = wait_for(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log_path).ok()?;
        let rest = text.split("listening on ").nth(1)?;
        rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
    });
    match addr {
        Some(addr) => Ok((child, addr)),
        None => {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::other(
                "hazel-index did not say where it listens within 20 s",
            ))
        }
    }
}

fn spawn_dying_with_us(mut command: Command, binary: &Path) -> io::Result<Child> {
    // SAFETY: prctl only sets a flag of the child process, between fork and
    // exec; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", binary.display())))
}

/// Polls `check` every 50 ms until it gives a value or `limit` passes.
fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
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
        let mut fleet = Fleet {
            children: Vec::new(),
            index: None,
            dir: dir.clone(),
            data: Vec::new(),
            ports: Vec::new(),
        };
        for (node, held) in workload.per_node.iter().enumerate() {
            let data = dir.join(format!("node{node}"));
            let share = data.join("share");
            std::fs::create_dir_all(&share)?;
            for &f in held {
                let file = &workload.files[f as usize];
                // Small files: the name is what is searched.
                std::fs::write(share.join(&file.name), file.keyword.as_bytes())?;
            }
            fleet
                .children
                .push(spawn(&config.hazel, &data, &share, config.ttl)?);
            fleet.data.push(data);
        }
        for data in fleet.data.clone() {
            let port = wait_for(Duration::from_secs(20), || {
                std::fs::read_to_string(data.join("port"))
                    .ok()?
                    .trim()
                    .parse::<SocketAddr>()
                    .ok()
            })
            .ok_or_else(|| io::Error::other(format!("{}: no port within 20 s", data.display())))?;
            fleet.ports.push(port);
        }
        Ok(fleet)
    }

    fn ctl(&self, node: usize, line: &str) -> io::Result<Value> {
        let answer = control_command(&self.data[node].join("control.sock"), line)?;
        if answer.get("ok") != Some(&Value::Bool(true)) {
            return Err(io::Error::other(format!("node {node}: {line}: {answer}")));
        }
        Ok(answer
            .get("reply")
            .and_then(|r| r.get("data"))
            .cloned()
            .unwrap_or(Value::Null))
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
        (0..self.data.len()).map(|n| self.stats(n)).collect()
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
    let (edges, workload, queries) = plan(config);
    let sim = simulate(config, &edges, &workload, &queries);
    let mut fleet = Fleet::start(config, &workload)?;
    let mut degree = vec![0u64; config.servents];
    for &(a, b) in &edges {
        degree[a as usize] += 1;
        degree[b as usize] += 1;
        fleet.ctl(a as usize, &format!("connect {}", fleet.ports[b as usize]))?;
    }
    let linked = wait_for(Duration::from_secs(30), || {
        let stats = fleet.all_stats().ok()?;
        stats
            .iter()
            .zip(&degree)
            .all(|(s, &d)| s.established == d)
            .then_some(())
    });
    linked.ok_or_else(|| io::Error::other("the servents did not all link up within 30 s"))?;
    let scanned = wait_for(Duration::from_secs(30), || {
        (0..config.servents)
            .all(|n| {
                fleet
                    .ctl(n, "shares")
                    .ok()
                    .and_then(|s| s.get("files").and_then(Value::as_u64))
                    == Some(workload.per_node[n].len() as u64)
            })
            .then_some(())
    });
    scanned.ok_or_else(|| io::Error::other("the libraries were not scanned within 30 s"))?;
    let mut pairs = Vec::new();
    for (q, sim) in queries.iter().zip(sim) {
        let live = live_query(&fleet, q, &workload, config.query_timeout)?;
        pairs.push(QueryPair {
            origin: q.origin,
            keyword: workload.files[q.file as usize].keyword.clone(),
            copies: workload.files[q.file as usize].holders.len(),
            sim,
            live,
        });
    }
    let index_queries = index_run(config, &mut fleet, &workload, &queries)?;
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

/// Queries whose messages, nodes reached and outcome agree.
fn identical(pairs: &[QueryPair]) -> usize {
    let key = |o: &Observed| (o.query_messages, o.hit_messages, o.reached, o.found);
    pairs.iter().filter(|p| key(&p.sim) == key(&p.live)).count()
}

/// The queries against a live `hazel-index` (every node logged in as a
/// client, sharing its files) and against the index in process.
fn index_run(
    config: &LiveConfig,
    fleet: &mut Fleet,
    workload: &Workload,
    queries: &[QuerySpec],
) -> io::Result<Vec<QueryPair>> {
    let mut scenario = Scenario::new(Arch::Index, config.servents);
    scenario.seed = config.seed;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut napster = Napster::new(&scenario, workload, &mut rng);
    let data = fleet.dir.join("index");
    std::fs::create_dir_all(&data)?;
    let (child, addr) = spawn_index(&config.hazel.with_file_name("hazel-index"), &data)?;
    fleet.index = Some(child);
    let failed = |e: String| io::Error::other(format!("hazel-index: {e}"));
    let timeout = Duration::from_secs(10);
    let mut clients = Vec::new();
    for node in 0..workload.per_node.len() as u32 {
        let mut client = Client::connect(addr, format!("node{node}"), timeout).map_err(failed)?;
        client.login().map_err(failed)?;
        for file in napster.shared_files(node) {
            client
                .send_message(&ClientMessage::Share(file.clone()))
                .map_err(failed)?;
        }
        // A search on the same connection ends after the shares before it.
        client
            .search(&SearchQuery::simple(b"hazellabsync", 1))
            .map_err(failed)?;
        clients.push(client);
    }
    let mut pairs = Vec::new();
    for q in queries {
        let keyword = &workload.files[q.file as usize].keyword;
        let sim = napster.query(q, workload);
        let request = SearchQuery::simple(keyword.as_bytes(), MAX_RESULTS as u32);
        let (latency, results, errors) = clients[q.origin as usize]
            .search(&request)
            .map_err(failed)?;
        if errors > 0 {
            return Err(io::Error::other(format!("hazel-index refused {keyword}")));
        }
        pairs.push(QueryPair {
            origin: q.origin,
            keyword: keyword.clone(),
            copies: workload.files[q.file as usize].holders.len(),
            sim: Observed {
                query_messages: sim.query_messages,
                hit_messages: sim.messages - sim.query_messages,
                reached: sim.reached,
                duplicates: 0,
                found: sim.found,
                latency_ms: sim.latency.map(|l| l.as_secs_f64() * 1000.0),
            },
            live: Observed {
                query_messages: 1,
                hit_messages: results as u64 + 1,
                reached: 1,
                duplicates: 0,
                found: results > 0,
                latency_ms: Some(latency.as_secs_f64() * 1000.0),
            },
        });
    }
    Ok(pairs)
}

fn simulate(
    config: &LiveConfig,
    edges: &[(u32, u32)],
    workload: &Workload,
    queries: &[QuerySpec],
) -> Vec<Observed> {
    let mut scenario = Scenario::new(Arch::Flood, config.servents);
    scenario.ttl = config.ttl;
    scenario.seed = config.seed;
    // Like loopback: every link as fast as the others, so copies arrive
    // first along the shortest paths, as they mostly do live.
    scenario.latency_ms = 1;
    scenario.jitter_ms = 0;
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
            }
        })
        .collect()
}

fn live_query(
    fleet: &Fleet,
    q: &QuerySpec,
    workload: &Workload,
    timeout: Duration,
) -> io::Result<Observed> {
    let origin = q.origin as usize;
    let keyword = &workload.files[q.file as usize].keyword;
    let before = fleet.all_stats()?;
    let start = Instant::now();
    let search = fleet.ctl(origin, &format!("search {keyword}"))?;
    let id = search
        .get("search_id")
        .and_then(Value::as_u64)
        .ok_or_else(|| io::Error::other(format!("search answered {search}")))?;
    let mut latency_ms = None;
    let mut last = before.clone();
    let mut quiet_since = Instant::now();
    // Until nothing has moved for 300 ms (the flood is over), bounded.
    while start.elapsed() < timeout {
        if latency_ms.is_none() {
            let results = fleet.ctl(origin, &format!("results {id}"))?;
            if results.as_array().is_some_and(|r| !r.is_empty()) {
                latency_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let now = fleet.all_stats()?;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_millis(300) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
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

/// Milliseconds in a table cell.
fn ms(x: Option<f64>) -> String {
    x.map_or("–".to_string(), |v| format!("{v:.1}"))
}

/// The side-by-side tables of a live run.
pub fn render(report: &LiveReport) -> String {
    let mut out = render_flood(report);
    out.push_str(&format!(
        "\nhazel-index: {} of {} queries counted the same live as simulated\n\
         | query | copies | messages sim / live (request, results, end) | found sim / live | ms sim / live |\n\
         |---|---:|---:|---:|---:|\n",
        report.index_identical,
        report.index_queries.len()
    ));
    for p in &report.index_queries {
        out.push_str(&format!(
            "| {} from {} | {} | {} / {} | {} / {} | {} / {} |\n",
            p.keyword,
            p.origin,
            p.copies,
            p.sim.query_messages + p.sim.hit_messages,
            p.live.query_messages + p.live.hit_messages,
            p.sim.found,
            p.live.found,
            ms(p.sim.latency_ms),
            ms(p.live.latency_ms),
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
        out.push_str(&format!(
            "| {} from {} | {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} |\n",
            p.keyword,
            p.origin,
            p.copies,
            p.sim.query_messages,
            p.live.query_messages,
            p.sim.hit_messages,
            p.live.hit_messages,
            p.sim.reached,
            p.live.reached,
            p.sim.duplicates,
            p.live.duplicates,
            p.sim.found,
            p.live.found,
            ms(p.sim.latency_ms),
            ms(p.live.latency_ms),
        ));
    }
    out
}
