//! hazel-index: a headless index server speaking the OpenNap (Napster) protocol.

pub mod index;
