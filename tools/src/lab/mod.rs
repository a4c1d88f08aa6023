//! `hazel-lab`: the architectures of file-sharing search measured side by
//! side on one workload, with Hazel's own code where Hazel has it.
//!
//! - [`topology`]: random, power-law and tree overlays.
//! - [`workload`]: Zipf-replicated files, popular and rare queries, churn.
//! - [`flood`]: Gnutella 0.4 flooding through the servent's real `Core`s on
//!   the deterministic harness (`hazel_servent::harness::Net`): handshakes,
//!   routing, dedup, TTL/hops, reverse paths, pong cache and the answers
//!   from each node's library are the servent's code.
//! - [`central`]: a Napster-style index: the real `hazel_index::index::Index`
//!   answers, messages are sized by the real OpenNap encoders.
//! - [`supernode`]: leaves publish QRP tables (the servent's table builder,
//!   the protocol crate's tables) to ultrapeers; ultrapeers are real `Core`s
//!   flooding among themselves.
//! - [`dht`]: a Chord model for exact-key lookups (Hazel has no DHT).
//! - [`live`]: the flooding workload on real `hazel` processes on loopback,
//!   read through their control sockets, and the index workload on a real
//!   `hazel-index`, next to their simulation.
//! - [`sim`]: one run of one architecture: the query loop, churn and the
//!   measured quantities ([`Row`]). [`report`]: tables and plots.
//!
//! Everything is seeded: the same scenario, seed and thread count
//! (`Scenario::threads`, the harness's shares of the network) give the same
//! numbers on any machine.

pub mod central;
pub mod dht;
pub mod flood;
pub mod live;
pub mod report;

pub mod sim;
pub mod supernode;
pub mod topology;
pub mod workload;

#[cfg(test)]
mod tests;

pub use sim::{run, Arch, Row, Scenario};

/// A deterministic latency for the link between `a` and `b` (the links the
/// harness does not carry: client–server, leaf–ultrapeer, DHT hops):
/// `base_ms` plus up to `jitter_ms`, from a hash of the pair and the seed.
pub fn pair_latency_ms(seed: u64, a: u32, b: u32, base_ms: u64, jitter_ms: u64) -> u64 {
    let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
    let h = splitmix64(seed ^ (lo << 32 | hi));
    base_ms
        + if jitter_ms == 0 {
            0
        } else {
            h % (jitter_ms + 1)
        }
}

/// SplitMix64: a well-mixed 64-bit hash of a 64-bit value (ids, keys).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
