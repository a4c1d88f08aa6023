//! Overlay graphs for the flooding runs: random graphs of a given degree,
//! power-law graphs like the measured Gnutella 0.4 topology, and trees (for
//! the known-result checks). Edges are undirected pairs `(a, b)`, `a < b`,
//! each once; the same seed gives the same graph.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// Which graph a flooding run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Every node has `degree` stubs, paired at random (self-loops and
    /// repeated pairs removed, so a few nodes end with one or two less).
    Random,
    /// Degrees drawn from P(k) ∝ k^-2.3 (k ≥ 2, capped): the exponent Ripeanu
    /// et al. measured on the Gnutella 0.4 network in 2000–2001, paired like
    /// `Random` (a configuration model).
    PowerLaw,
}

impl Topology {
    pub fn name(self) -> &'static str {
        match self {
            Topology::Random => "random",
            Topology::PowerLaw => "powerlaw",
        }
    }
}

impl std::str::FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(Topology::Random),
            "powerlaw" | "power-law" => Ok(Topology::PowerLaw),
            _ => Err(format!("unknown topology {s:?} (random, powerlaw)")),
        }
    }
}

/// The measured exponent of Gnutella's degree distribution.
pub const GNUTELLA_EXPONENT: f64 = 2.3;
/// Most neighbours a node of the power-law graph gets.
pub const MAX_POWER_LAW_DEGREE: usize = 200;

/// A graph of `nodes` nodes of the given kind.
pub fn build(topology: Topology, nodes: usize, degree: usize, rng: &mut StdRng) -> Vec<(u32, u32)> {
    let degrees: Vec<usize> = match topology {
        Topology::Random => vec![degree; nodes],
        Topology::PowerLaw => power_law_degrees(nodes, GNUTELLA_EXPONENT, rng),
    };
    pair_stubs(&degrees, rng)
}

/// Degrees drawn from P(k) ∝ k^-gamma for 2 ≤ k ≤ cap (inverse transform on
/// the discrete distribution).
fn power_law_degrees(nodes: usize, gamma: f64, rng: &mut StdRng) -> Vec<usize> {
    let cap = MAX_POWER_LAW_DEGREE.min(nodes.saturating_sub(1)).max(2);
    let weights: Vec<f64> = (2..=cap).map(|k| (k as f64).powf(-gamma)).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut sum = 0.0;
    for w in &weights {
        sum += w / total;
        cumulative.push(sum);
    }
    (0..nodes)
        .map(|_| {
            let u: f64 = rng.gen();
            2 + cumulative
                .partition_point(|&c| c < u)
                .min(weights.len() - 1)
        })
        .collect()
}

/// The configuration model: one stub per unit of degree, shuffled and paired;
/// self-loops and repeated pairs are dropped.
fn pair_stubs(degrees: &[usize], rng: &mut StdRng) -> Vec<(u32, u32)> {
    let mut stubs: Vec<u32> = degrees
        .iter()
        .enumerate()
        .flat_map(|(node, &d)| std::iter::repeat_n(node as u32, d))
        .collect();
    stubs.shuffle(rng);
    let mut seen = HashSet::with_capacity(stubs.len() / 2);
    let mut edges = Vec::with_capacity(stubs.len() / 2);
    for pair in stubs.chunks_exact(2) {
        let (a, b) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
        if a != b && seen.insert((a, b)) {
            edges.push((a, b));
        }
    }
    edges
}

/// A tree in which every inner node has `degree` neighbours (the root
/// `degree` children, the others `degree - 1`), `depth` levels below the
/// root; node 0 is the root.
pub fn tree(degree: usize, depth: u32) -> (usize, Vec<(u32, u32)>) {
    let mut edges = Vec::new();
    let mut level = vec![0u32];
    let mut next_id = 1u32;
    for d in 0..depth {
        let children_each = if d == 0 { degree } else { degree - 1 };
        let mut next = Vec::with_capacity(level.len() * children_each);
        for &parent in &level {
            for _ in 0..children_each {
                edges.push((parent, next_id));
                next.push(next_id);
                next_id += 1;
            }
        }
        level = next;
    }
    (next_id as usize, edges)
}

/// Each node's neighbours.
pub fn adjacency(nodes: usize, edges: &[(u32, u32)]) -> Vec<Vec<u32>> {
    let mut adj = vec![Vec::new(); nodes];
    for &(a, b) in edges {
        adj[a as usize].push(b);
        adj[b as usize].push(a);
    }
    adj
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_graphs_have_about_the_asked_degree_and_no_loops_or_repeats() {
        let mut rng = StdRng::seed_from_u64(1);
        let edges = build(Topology::Random, 2000, 4, &mut rng);
        let mean = 2.0 * edges.len() as f64 / 2000.0;
        assert!((3.9..=4.0).contains(&mean), "mean degree {mean}");
        assert!(edges.iter().all(|(a, b)| a < b));
        let unique: HashSet<_> = edges.iter().collect();
        assert_eq!(unique.len(), edges.len());
    }

    #[test]
    fn power_law_graphs_have_hubs_and_many_small_degrees() {
        let mut rng = StdRng::seed_from_u64(2);
        let edges = build(Topology::PowerLaw, 20_000, 4, &mut rng);
        let adj = adjacency(20_000, &edges);
        let max = adj.iter().map(Vec::len).max().unwrap_or(0);
        let small = adj.iter().filter(|n| n.len() <= 3).count();
        assert!(max >= 100, "largest degree {max}");
        assert!(small > 20_000 / 2, "{small} nodes of degree ≤ 3");
    }

    #[test]
    fn trees_have_the_counted_nodes() {
        // 1 + 3 + 3·2 + 3·4 = 22
        let (n, edges) = tree(3, 3);
        assert_eq!(n, 22);
        assert_eq!(edges.len(), 21);
        let adj = adjacency(n, &edges);
        assert_eq!(adj[0].len(), 3);
        assert_eq!(adj[1].len(), 3);
    }

    #[test]
    fn the_same_seed_gives_the_same_graph() {
        let g = |seed| build(Topology::PowerLaw, 500, 4, &mut StdRng::seed_from_u64(seed));
        assert_eq!(g(9), g(9));
        assert_ne!(g(9), g(10));
    }
}
