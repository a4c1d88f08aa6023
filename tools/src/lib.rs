//! hazel-tools: shared code of the `hazel-trace` and `hazel-load` binaries.

pub mod load;
