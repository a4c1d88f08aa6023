//! hazel-index: a headless index server speaking the OpenNap (Napster) protocol.

pub mod config;
pub mod index;
pub mod metrics;
pub mod store;
