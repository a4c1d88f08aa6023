//! hazel-servent: the Gnutella servent (library part of the `hazel` binary).

pub mod core;
pub mod library;
