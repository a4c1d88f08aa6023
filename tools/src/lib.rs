//! hazel-tools: shared code of the `hazel-trace` and `hazel-load` binaries.
//!
//! - [`load`]: the load generators behind `hazel-load` (`hazel-load index`).

pub mod load;
