//! hazel-servent: the Gnutella servent (library part of the `hazel` binary).
//!
//! Map of the crate:
//! - [`core`]: the sans-IO servent (routing, connections, hosts, shares); no sockets, no clock.
//! - [`library`]: scanning and hashing the shared directories on their own thread.
//! - [`reactor`]: the mio event loop, the only module that touches sockets.
//! - [`shell`]: the command language (`peers`, `search`, ...) and its text/JSON replies.
//! - [`control`]: the control socket `<data-dir>/control.sock` and its client (`hazel ctl`).
//! - [`node`]: the core and the library scanner behind the reactor; [`node::run`] runs
//!   `hazel`, [`node::spawn`] runs a servent on a thread (tests, embedding).
//! - [`store`]: the data directory and atomic file replacement.
//! - [`cli`], [`config`]: the command line and the settings it produces.

pub mod cli;
pub mod config;
pub mod control;
pub mod core;
pub mod harness;
pub mod library;
pub mod node;
pub mod reactor;
pub mod shell;
pub mod store;
