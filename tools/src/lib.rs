//! hazel-tools: shared code of the `hazel-trace` and `hazel-load` binaries.
//!
//! - [`trace`]: decoding captures for `hazel-trace` (handshakes, descriptors,
//!   deflate links, HTTP, GIV, OpenNap), as readable lines or JSON lines.
//! - [`load`]: the load generators behind `hazel-load` (`hazel-load index`,
//!   `hazel-load servent`).

pub mod load;
pub mod trace;
