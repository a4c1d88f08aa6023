//! hazel-servent: the Gnutella servent (library part of the `hazel` binary).
//!
//! Map of the crate (layers from the bottom: the wire crate, the sans-IO core,
//! the event loop and the command language, the running servent, the binary):
//! - [`core`]: the sans-IO servent (routing, connections, hosts, shares); no sockets, no clock.
//! - [`harness`]: N cores on in-memory links with virtual time, for tests,
//!   simulations, benches, fuzzing and `hazel-lab`.
//! - [`scanner`]: scanning and hashing the shared directories on their own thread.
//! - [`reactor`]: the mio event loop, the only module that touches sockets; generic over
//!   the [`reactor::Handler`] it drives and the requests other threads send it.
//! - [`shell`]: the command language (`peers`, `search`, ...), its text/JSON replies, the
//!   line terminal (plain, or with line editing) and the full-screen terminal (`shell::tui`); [`control`]: the control socket `<data-dir>/control.sock` and its client.
//! - [`servent`]: the [`servent::Servent`] — core, uploads and scanner behind the event loop,
//!   answering the shell's commands.
//! - [`run`]: [`run::run`] runs `hazel`, [`run::spawn`] runs a servent on a thread.
//! - [`data_dir`]: the data directory and atomic file replacement; [`disk`]: the
//!   downloads' disk work on its own thread.
//! - [`cli`], [`config`]: the command line and the settings it produces; [`demo`]: the
//!   playground `hazel --demo` (a loopback overlay of child servents and an index).

pub mod cli;
pub mod config;
pub mod control;
pub mod core;
pub mod data_dir;
pub mod demo;
pub mod disk;
pub mod harness;
pub mod napster_shares;
pub mod reactor;
pub mod resolver;
pub mod run;
pub mod scanner;
pub mod servent;
pub mod shell;
