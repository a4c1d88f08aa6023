//! The workload every architecture gets: distinct files replicated on a
//! Zipf-distributed number of nodes (a few on many, most on one), queries
//! alternating between popular and rare files, and churn.
//!
//! A file's name carries one keyword of fixed width (`q0000042.mp3`), so a
//! search for it matches that file only in every architecture (no keyword
//! is a prefix of another), and "found" means the file was found.

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::Rng;

/// The shape of the workload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkloadConfig {
    /// Distinct files (0: one per ten nodes, at least 50).
    pub files: usize,
    /// Zipf exponent of the replica counts.
    pub alpha: f64,
    /// Share of the nodes holding the most popular file.
    pub top_share: f64,
    pub queries: usize,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            files: 0,
            alpha: 1.0,
            top_share: 0.05,
            queries: 200,
        }
    }
}

/// One distinct file.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub keyword: String,
    pub name: String,
    pub size: u64,
    /// The nodes holding a copy (distinct).
    pub holders: Vec<u32>,
}

/// One query: who asks for which file.
#[derive(Debug, Clone, Copy)]
pub struct QuerySpec {
    pub origin: u32,
    pub file: u32,
    /// For one of the most replicated files (else one with a single copy).
    pub popular: bool,
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub files: Vec<FileSpec>,
    /// Files held by each node (indices into `files`).
    pub per_node: Vec<Vec<u32>>,
}

impl Workload {
    /// Files for `nodes` nodes: file `i` (0-based rank) gets
    /// max(1, round(top_share·nodes / (i+1)^alpha)) copies on distinct nodes.
    pub fn new(nodes: usize, config: &WorkloadConfig, rng: &mut StdRng) -> Workload {
        let count = if config.files == 0 {
            (nodes / 10).max(50)
        } else {
            config.files
        };
        let top = (config.top_share * nodes as f64).max(1.0);
        let mut per_node = vec![Vec::new(); nodes];
        let files = (0..count)
            .map(|i| {
                let copies = (top / ((i + 1) as f64).powf(config.alpha)).round().max(1.0) as usize;
                let holders: Vec<u32> = sample(rng, nodes, copies.min(nodes))
                    .into_iter()
                    .map(|n| n as u32)
                    .collect();
                for &h in &holders {
                    per_node[h as usize].push(i as u32);
                }
                let keyword = format!("q{i:07}");
                FileSpec {
                    name: format!("{keyword}.mp3"),
                    keyword,
                    size: 3_000_000 + (i as u64 % 1000) * 1000,
                    holders,
                }
            })
            .collect();
        Workload { files, per_node }
    }

    /// The files counted as popular: the top 1% of ranks (at least one).
    pub fn popular_count(&self) -> usize {
        (self.files.len() / 100).max(1)
    }

    /// The next query: popular and rare in turn; the origin is a node that
    /// `online` says is up and that holds no copy.
    pub fn query(&self, n: usize, online: &[bool], rng: &mut StdRng) -> QuerySpec {
        let popular = n.is_multiple_of(2);
        let file = if popular {
            rng.gen_range(0..self.popular_count())
        } else {
            // Files with a single copy are the tail; pick among those.
            let first_single = self
                .files
                .partition_point(|f| f.holders.len() > 1)
                .min(self.files.len() - 1);
            rng.gen_range(first_single..self.files.len())
        };
        let holders = &self.files[file].holders;
        let nodes = online.len();
        let mut origin = rng.gen_range(0..nodes);
        for _ in 0..nodes {
            if online[origin] && !holders.contains(&(origin as u32)) {
                break;
            }
            origin = rng.gen_range(0..nodes);
        }
        QuerySpec {
            origin: origin as u32,
            file: file as u32,
            popular,
        }
    }
}

/// Which nodes leave and which come back before one query: `rate` of the
/// online nodes leave (rounded at random), and as many offline nodes rejoin.
pub fn churn_step(online: &[bool], rate: f64, rng: &mut StdRng) -> (Vec<u32>, Vec<u32>) {
    if rate <= 0.0 {
        return (Vec::new(), Vec::new());
    }
    let up: Vec<u32> = (0..online.len() as u32)
        .filter(|&n| online[n as usize])
        .collect();
    let down: Vec<u32> = (0..online.len() as u32)
        .filter(|&n| !online[n as usize])
        .collect();
    let expected = rate * up.len() as f64;
    let mut leaving = expected.floor() as usize;
    if rng.gen::<f64>() < expected.fract() {
        leaving += 1;
    }
    let leave: Vec<u32> = sample(rng, up.len(), leaving.min(up.len().saturating_sub(2)))
        .into_iter()
        .map(|i| up[i])
        .collect();
    let join: Vec<u32> = sample(rng, down.len(), leaving.min(down.len()))
        .into_iter()
        .map(|i| down[i])
        .collect();
    (leave, join)
}

/// Replication buckets for "success against replication": upper bounds.
pub const REPLICA_BUCKETS: [usize; 5] = [1, 3, 10, 100, usize::MAX];

/// The bucket of a replica count.
pub fn replica_bucket(copies: usize) -> usize {
    REPLICA_BUCKETS
        .iter()
        .position(|&hi| copies <= hi)
        .unwrap_or(REPLICA_BUCKETS.len() - 1)
}

/// Labels of the buckets, for tables and plots.
pub const REPLICA_LABELS: [&str; 5] = ["1", "2-3", "4-10", "11-100", ">100"];

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn replicas_follow_zipf_with_a_long_single_copy_tail() {
        let mut rng = StdRng::seed_from_u64(1);
        let w = Workload::new(10_000, &WorkloadConfig::default(), &mut rng);
        assert_eq!(w.files.len(), 1000);
        assert_eq!(w.files[0].holders.len(), 500);
        assert_eq!(w.files[1].holders.len(), 250);
        assert_eq!(w.files[9].holders.len(), 50);
        let singles = w.files.iter().filter(|f| f.holders.len() == 1).count();
        assert!(singles > 300, "{singles} single-copy files");
        let held: usize = w.per_node.iter().map(Vec::len).sum();
        let copies: usize = w.files.iter().map(|f| f.holders.len()).sum();
        assert_eq!(held, copies);
    }

    #[test]
    fn queries_alternate_and_never_ask_a_holder() {
        let mut rng = StdRng::seed_from_u64(2);
        let w = Workload::new(1000, &WorkloadConfig::default(), &mut rng);
        let online = vec![true; 1000];
        for n in 0..100 {
            let q = w.query(n, &online, &mut rng);
            assert_eq!(q.popular, n.is_multiple_of(2));
            let f = &w.files[q.file as usize];
            assert!(!f.holders.contains(&q.origin));
            if !q.popular {
                assert_eq!(f.holders.len(), 1);
            }
        }
    }

    #[test]
    fn churn_keeps_the_number_online() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut online = vec![true; 100];
        online[..10].fill(false);
        let (leave, join) = churn_step(&online, 0.05, &mut rng);
        assert!((4..=5).contains(&leave.len()));
        assert_eq!(leave.len(), join.len());
        assert!(leave.iter().all(|&n| online[n as usize]));
        assert!(join.iter().all(|&n| !online[n as usize]));
    }
}
