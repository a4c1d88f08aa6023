//! A process's CPU time and resident memory, read from /proc (Linux).

use std::time::Duration;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// User plus system CPU time consumed so far.
    pub cpu: Duration,
    /// Resident set size (VmRSS) in bytes.
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample(pid: u32) -> std::io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let ticks = cpu_ticks(&stat).ok_or_else(|| bad("unreadable /proc/<pid>/stat"))?;
    let rss_kib = vm_rss_kib(&status).ok_or_else(|| bad("no VmRSS in /proc/<pid>/status"))?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Ok(ProcSample {
        cpu: Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz),
        rss_bytes: rss_kib * 1024,
    })
}

/// utime + stime (fields 14 and 15) in clock ticks. The command name
/// (field 2) may contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after_name.split_whitespace();
    // after_name starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The VmRSS line of /proc/<pid>/status, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    status_kib(status, "VmRSS:")
}

/// Peak resident memory of a process so far (VmHWM), in bytes.
pub fn peak_rss_bytes(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_kib(&status, "VmHWM:")
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no VmHWM"))
}

/// A `Key:   N kB` line of /proc/<pid>/status.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_tricky_command_name() {
        let stat = "4242 (hazel (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 567 0 0 20 0 3 0 100 1000000 300 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\thazel-index\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(vm_rss_kib(status), Some(5120));
        assert_eq!(vm_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_bytes > 0);
    }
}
