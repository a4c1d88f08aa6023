//! The known results, checked against runs of the real code.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::central::Napster;
use super::flood::Overlay;
use super::sim::{Architecture, Scenario};
use super::topology::{self, Topology};
use super::workload::{QuerySpec, Workload};
use super::{run, Arch};

fn scenario(arch: Arch, nodes: usize) -> Scenario {
    let mut s = Scenario::new(arch, nodes);
    s.workload.queries = 20;
    s
}

/// n·Σ_{i=0}^{t-1} (n−1)^i
fn tree_bound(n: u64, t: u32) -> u64 {
    (0..t).map(|i| n * (n - 1).pow(i)).sum()
}

#[test]
fn a_flood_on_a_tree_sends_exactly_the_tree_bound() {
    for (degree, ttl) in [(3usize, 3u8), (4, 3), (3, 5)] {
        // One level deeper than the TTL: the TTL, not the tree, stops it.
        let (nodes, edges) = topology::tree(degree, u32::from(ttl) + 1);
        let mut overlay = Overlay::new(nodes, &edges, &scenario(Arch::Flood, nodes));
        let (_, delta) = overlay.search(0, "nothing", ttl);
        let bound = tree_bound(degree as u64, u32::from(ttl));
        assert_eq!(delta.received.query, bound, "degree {degree}, TTL {ttl}");
        assert_eq!(delta.duplicates, 0);
        assert_eq!(
            delta.reached.len() as u64,
            bound,
            "every copy reaches a new node"
        );
    }
}

#[test]
fn a_ping_on_a_tree_without_pong_cache_comes_back_from_every_node_in_reach() {
    let (degree, ttl) = (3usize, 4u8);
    let (nodes, edges) = topology::tree(degree, u32::from(ttl) + 1);
    let mut s = scenario(Arch::Flood, nodes);
    s.pong_cache = false;
    let mut overlay = Overlay::new(nodes, &edges, &s);
    let delta = overlay.ping(0, ttl);
    assert_eq!(
        delta.received.ping,
        tree_bound(degree as u64, u32::from(ttl))
    );
    // A node k hops away has its Pong received k times on the way back.
    let pongs: u64 = (1..=u64::from(ttl))
        .map(|k| k * degree as u64 * (degree as u64 - 1).pow(k as u32 - 1))
        .sum();
    assert_eq!(delta.received.pong, pongs);
}

#[test]
fn on_random_graphs_duplicates_account_for_the_reach_below_the_tree_bound() {
    let degree = 4;
    let nodes = 1500;
    let mut rng = StdRng::seed_from_u64(11);
    let edges = topology::build(Topology::Random, nodes, degree, &mut rng);
    let mut overlay = Overlay::new(nodes, &edges, &scenario(Arch::Flood, nodes));
    for (origin, ttl) in [(0u32, 4u8), (17, 6), (123, 7)] {
        let (_, delta) = overlay.search(origin, "nothing", ttl);
        let reached = delta.reached.iter().filter(|&&n| n != origin).count() as u64;
        let bound = tree_bound(degree as u64, u32::from(ttl));
        // Each copy sent arrives either first (a node reached) or again (a
        // duplicate, dropped): the duplicates are exactly the difference.
        assert_eq!(delta.received.query, reached + delta.duplicates);
        assert!(delta.received.query <= bound);
        assert!(
            reached < bound,
            "TTL {ttl}: reached {reached} of bound {bound}"
        );
        assert!(delta.duplicates > 0);
    }
}

#[test]
fn a_central_index_answers_a_single_copy_file_in_three_messages_at_any_size() {
    for nodes in [100, 10_000] {
        let s = scenario(Arch::Index, nodes);
        let mut rng = StdRng::seed_from_u64(s.seed);
        let workload = Workload::new(nodes, &s.workload, &mut rng);
        let mut napster = Napster::new(&s, &workload, &mut rng);
        let online = vec![true; nodes];
        for i in 0..40 {
            let q: QuerySpec = workload.query(i, &online, &mut rng);
            let out = napster.query(&q, &workload);
            let copies = workload.files[q.file as usize].holders.len() as u64;
            // Request, one result per copy (at most 100), end of results.
            assert_eq!(out.messages, 2 + copies.min(100), "N={nodes}");
            assert_eq!(out.query_messages, 1);
            assert!(out.found);
            if !q.popular {
                assert_eq!(out.messages, 3);
            }
        }
    }
}

#[test]
fn ultrapeers_pass_queries_only_to_leaves_whose_tables_match() {
    let nodes = 600;
    let mut s = scenario(Arch::Super, nodes);
    s.ttl = 3;
    s.degree = 6;
    let row = run(&s);
    let flood = run(&scenario(Arch::Flood, nodes));
    // The query reaches the ultrapeers (one node in 31) and few leaves.
    assert!(row.reach < 0.1, "reach {}", row.reach);
    assert!(row.messages_per_query < flood.messages_per_query / 4.0);
    assert!(row.success_rare >= 0.9, "rare success {}", row.success_rare);
    assert_eq!(row.success_popular, 1.0);
}

#[test]
fn the_same_seed_gives_the_same_numbers() {
    for arch in [Arch::Flood, Arch::Index, Arch::Super, Arch::Dht] {
        let mut s = scenario(arch, 250);
        s.churn = 0.01;
        s.seed = 5;
        let a = run(&s);
        let b = run(&s);
        assert_eq!(a.messages_per_query, b.messages_per_query, "{arch:?}");
        assert_eq!(super::report::csv_line(&a), super::report::csv_line(&b));
        s.seed = 6;
        let c = run(&s);
        assert_ne!(
            super::report::csv_line(&a),
            super::report::csv_line(&c),
            "{arch:?}: another seed, another run"
        );
    }
}

#[test]
fn churn_costs_success_and_maintenance() {
    let mut s = scenario(Arch::Dht, 2000);
    s.workload.queries = 200;
    let calm = run(&s);
    s.churn = 0.02;
    let churned = run(&s);
    assert_eq!(calm.maintenance_per_query, 0.0);
    assert!(churned.maintenance_per_query > 0.0);
    assert!(churned.success_rare < calm.success_rare);
}

#[test]
fn pong_caching_cuts_the_ping_pong_share() {
    let mut s = scenario(Arch::Flood, 500);
    s.ttl = 5;
    s.pings_per_query = 3;
    let cached = run(&s);
    s.pong_cache = false;
    let uncached = run(&s);
    assert!(
        cached.ping_pong_share < uncached.ping_pong_share,
        "{} vs {}",
        cached.ping_pong_share,
        uncached.ping_pong_share
    );
}

#[test]
fn one_thread_or_two_measure_the_same_flood() {
    // The thread count changes which of two deliveries due at the same
    // instant runs first, and the latency draws: not what a flood costs.
    let mut s = scenario(Arch::Flood, 1000);
    s.workload.queries = 40;
    s.threads = 1;
    let one = run(&s);
    s.threads = 2;
    let two = run(&s);
    let close = |a: f64, b: f64| (a - b).abs() <= 0.05 * a.max(b);
    assert!(
        close(one.messages_per_query, two.messages_per_query),
        "messages per query: {} on one thread, {} on two",
        one.messages_per_query,
        two.messages_per_query
    );
    assert!(
        close(one.reach, two.reach),
        "reach: {} vs {}",
        one.reach,
        two.reach
    );
    // Forty queries: two of them may go either way.
    assert!(
        (one.success - two.success).abs() <= 0.05,
        "success: {} vs {}",
        one.success,
        two.success
    );
}
