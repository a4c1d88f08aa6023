//! Load generators behind `hazel-load`, one module per target:
//! - [`index`]: `hazel-load index`, OpenNap clients sharing and searching
//!   against any OpenNap-protocol server.
//! - [`servent`]: `hazel-load servent`, routing throughput, CPU per routed
//!   descriptor, memory per idle connection and dedup memory of a `hazel`.
//! - [`transfer`]: `hazel-load transfer`, file transfer hazel → hazel and
//!   to curl beside nginx in the same run, three sources, four readers, and
//!   routing while uploading.
//! - [`proc_stats`]: CPU time and resident memory of a process from /proc.

pub mod compare;
pub mod index;
pub mod proc_stats;
pub mod servent;
pub mod transfer;

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Has the kernel kill the child `command` starts when this process dies
/// (`PR_SET_PDEATHSIG`), so a killed tool leaves no servents behind.
pub(crate) fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl only sets a flag of the child process, between fork and
    // exec; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The `hazel` binary to spawn: the one given, or the one next to this
/// executable (how `cargo build` lays them out).
pub fn hazel_binary(given: Option<&Path>) -> io::Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_path_buf()),
        None => std::env::current_exe()?
            .parent()
            .map(|dir| dir.join("hazel"))
            .ok_or_else(|| io::Error::other("cannot locate the hazel binary")),
    }
}

/// Latency percentile (0–100) of an ascending-sorted sample; zero if empty.
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted
        .get(rank.min(sorted.len() - 1))
        .copied()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let sample: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&sample, 50.0), Duration::from_micros(51));
        assert_eq!(percentile(&sample, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&sample, 100.0), Duration::from_micros(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
