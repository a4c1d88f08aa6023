//! hazel-tools: shared code of the `hazel-trace`, `hazel-load` and
//! `hazel-lab` binaries.
//!
//! - [`lab`]: the architectures compared on one workload behind `hazel-lab`
//!   (flooding through real servent cores, the real index, ultrapeers with
//!   real QRP tables, a Chord model), and its report.
//! - [`trace`]: decoding captures for `hazel-trace` (handshakes, descriptors,
//!   deflate links, HTTP, GIV, OpenNap), as readable lines or JSON lines.
//! - [`load`]: the load generators behind `hazel-load` (`hazel-load index`,
//!   `hazel-load servent`).

pub mod lab;
pub mod load;
pub mod trace;
