//! Load generators and measurements behind `hazel-load`.
//!
//! - [`servent`]: a real `hazel` under flood: descriptors routed per second,
//!   CPU per routed descriptor, memory per idle connection, dedup table memory.

pub mod servent;
