//! Server metrics, rendered in the Prometheus text exposition format.
//!
//! Owned by the reactor thread and updated in place (no atomics needed);
//! `--stats-listen` serves [`Metrics::render`] over plain HTTP.
//!
//! Every label has a fixed, small set of values, whatever clients send:
//! message numbers the server does not know share `type="unknown"`, so a
//! client cannot grow the number of series (each one costs memory here and
//! in every scraper). Label values are written escaped as the exposition
//! format requires.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the search latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.1,
];

/// Why the server dropped a connection or refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    MaxConnections,
    ClonesPerIp,
    Banned,
    LoginTimeout,
    LoginRefused,
    CommandTooLong,
    MessageFlood,
    SearchFlood,
    OutputQueueFull,
    Killed,
    ShareLimit,
    SearchRateLimited,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            DropReason::MaxConnections => "max_connections",
            DropReason::ClonesPerIp => "clones_per_ip",
            DropReason::Banned => "banned",
            DropReason::LoginTimeout => "login_timeout",
            DropReason::LoginRefused => "login_refused",
            DropReason::CommandTooLong => "command_too_long",
            DropReason::MessageFlood => "message_flood",
            DropReason::SearchFlood => "search_flood",
            DropReason::OutputQueueFull => "output_queue_full",
            DropReason::Killed => "killed",
            DropReason::ShareLimit => "share_limit",
            DropReason::SearchRateLimited => "search_rate_limited",
        }
    }
}

/// A cumulative latency histogram.
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (bound, n) in LATENCY_BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if s <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += s;
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Everything `/metrics` reports.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    pub users: u64,
    pub files: u64,
    pub connections: u64,
    pub searches_total: u64,
    pub search_latency: Histogram,
    /// By message number; `None` for every number the server does not know.
    pub messages_by_type: BTreeMap<Option<u16>, u64>,
    pub unknown_messages: u64,
    pub drops: BTreeMap<DropReason, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// For searches/s: the total and time at the previous rate sample.
    rate_sample: (Instant, u64),
    pub searches_per_second: f64,
    /// Client bytes per second, in and out, over the last sample interval.
    pub bytes_in_per_second: f64,
    pub bytes_out_per_second: f64,
    bytes_sample: (u64, u64),
    /// Bytes held by the index structures (sampled periodically).
    pub index_bytes: u64,
    /// Resident memory of the process, when known (Linux).
    pub resident_bytes: Option<u64>,
}

impl Metrics {
    pub fn new(now: Instant) -> Metrics {
        Metrics {
            started: now,
            users: 0,
            files: 0,
            connections: 0,
            searches_total: 0,
            search_latency: Histogram::default(),
            messages_by_type: BTreeMap::new(),
            unknown_messages: 0,
            drops: BTreeMap::new(),
            bytes_in: 0,
            bytes_out: 0,
            rate_sample: (now, 0),
            searches_per_second: 0.0,
            bytes_in_per_second: 0.0,
            bytes_out_per_second: 0.0,
            bytes_sample: (0, 0),
            index_bytes: 0,
            resident_bytes: None,
        }
    }

    /// Counts one client message: by its number if `known` (a number the
    /// server handles, a bounded set), else under `unknown`.
    pub fn count_message(&mut self, kind: u16, known: bool) {
        let key = known.then_some(kind);
        *self.messages_by_type.entry(key).or_insert(0) += 1;
    }

    /// How many messages were counted under `kind` (`None`: unknown ones).
    pub fn messages(&self, kind: Option<u16>) -> u64 {
        self.messages_by_type.get(&kind).copied().unwrap_or(0)
    }

    /// When the metrics started (the server's start).
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn count_drop(&mut self, reason: DropReason) {
        *self.drops.entry(reason).or_insert(0) += 1;
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(&reason).copied().unwrap_or(0)
    }

    /// Updates the searches/s gauge from the totals since the last call
    /// (called on the reactor's periodic tick, at least a second apart).
    pub fn sample_rates(&mut self, now: Instant) {
        let (then, total) = self.rate_sample;
        let elapsed = now.saturating_duration_since(then).as_secs_f64();
        if elapsed >= 1.0 {
            self.searches_per_second = (self.searches_total - total) as f64 / elapsed;
            self.rate_sample = (now, self.searches_total);
            let (bytes_in, bytes_out) = self.bytes_sample;
            self.bytes_in_per_second = self.bytes_in.saturating_sub(bytes_in) as f64 / elapsed;
            self.bytes_out_per_second = self.bytes_out.saturating_sub(bytes_out) as f64 / elapsed;
            self.bytes_sample = (self.bytes_in, self.bytes_out);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, now: Instant) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            &mut out,
            "hazel_index_users",
            "Logged-in users.",
            self.users as f64,
        );
        gauge(
            &mut out,
            "hazel_index_files",
            "Shared files in the index.",
            self.files as f64,
        );
        gauge(
            &mut out,
            "hazel_index_connections",
            "Open client connections.",
            self.connections as f64,
        );
        gauge(
            &mut out,
            "hazel_index_searches_per_second",
            "Searches per second over the last sample interval.",
            self.searches_per_second,
        );
        gauge(
            &mut out,
            "hazel_index_uptime_seconds",
            "Seconds since the server started.",
            now.saturating_duration_since(self.started).as_secs_f64(),
        );
        gauge(
            &mut out,
            "hazel_index_index_bytes",
            "Bytes held by the inverted index (sampled every few seconds).",
            self.index_bytes as f64,
        );
        if let Some(rss) = self.resident_bytes {
            gauge(
                &mut out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss as f64,
            );
        }
        let _ = writeln!(
            out,
            "# HELP hazel_index_searches_total Searches answered.\n# TYPE hazel_index_searches_total counter\nhazel_index_searches_total {}",
            self.searches_total
        );
        let _ = writeln!(
            out,
            "# HELP hazel_index_bytes_total Bytes read from and written to clients.\n# TYPE hazel_index_bytes_total counter"
        );
        for (direction, n) in [("in", self.bytes_in), ("out", self.bytes_out)] {
            let _ = writeln!(
                out,
                "hazel_index_bytes_total{{direction=\"{}\"}} {n}",
                LabelValue(direction)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hazel_index_search_latency_seconds Time to answer one search.\n# TYPE hazel_index_search_latency_seconds histogram"
        );
        for (bound, n) in LATENCY_BUCKETS
            .iter()
            .zip(self.search_latency.buckets.iter())
        {
            let _ = writeln!(
                out,
                "hazel_index_search_latency_seconds_bucket{{le=\"{}\"}} {n}",
                LabelValue(&bound.to_string())
            );
        }
        let _ = writeln!(
            out,
            "hazel_index_search_latency_seconds_bucket{{le=\"+Inf\"}} {c}\nhazel_index_search_latency_seconds_sum {s}\nhazel_index_search_latency_seconds_count {c}",
            c = self.search_latency.count,
            s = self.search_latency.sum_seconds
        );
        let _ = writeln!(
            out,
            "# HELP hazel_index_messages_total Client messages received, by message number.\n# TYPE hazel_index_messages_total counter"
        );
        for (kind, n) in &self.messages_by_type {
            let label = kind.map_or_else(|| "unknown".to_string(), |k| k.to_string());
            let _ = writeln!(
                out,
                "hazel_index_messages_total{{type=\"{}\"}} {n}",
                LabelValue(&label)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hazel_index_unknown_messages_total Messages with a number the server does not know (answered with a 404 after login).\n# TYPE hazel_index_unknown_messages_total counter\nhazel_index_unknown_messages_total {}",
            self.unknown_messages
        );
        let _ = writeln!(
            out,
            "# HELP hazel_index_drops_total Connections dropped or requests refused, by reason.\n# TYPE hazel_index_drops_total counter"
        );
        for (reason, n) in &self.drops {
            let _ = writeln!(
                out,
                "hazel_index_drops_total{{reason=\"{}\"}} {n}",
                LabelValue(reason.label())
            );
        }
        out
    }
}

/// A label value written as the exposition format requires: backslash,
/// double quote and newline escaped.
struct LabelValue<'a>(&'a str);

impl std::fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_reports_counts_histogram_and_drops() {
        let t0 = Instant::now();
        let mut m = Metrics::new(t0);
        m.users = 3;
        m.files = 42;
        m.searches_total = 2;
        m.search_latency.observe(Duration::from_micros(30));
        m.search_latency.observe(Duration::from_millis(3));
        m.count_message(200, true);
        m.count_message(200, true);
        m.count_drop(DropReason::OutputQueueFull);
        let text = m.render(t0);
        assert!(text.contains("hazel_index_users 3\n"));
        assert!(text.contains("hazel_index_files 42\n"));
        assert!(text.contains("hazel_index_searches_total 2\n"));
        assert!(text.contains("hazel_index_search_latency_seconds_bucket{le=\"0.00005\"} 1\n"));
        assert!(text.contains("hazel_index_search_latency_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("hazel_index_search_latency_seconds_count 2\n"));
        assert!(text.contains("hazel_index_messages_total{type=\"200\"} 2\n"));
        assert!(text.contains("hazel_index_drops_total{reason=\"output_queue_full\"} 1\n"));
    }

    #[test]
    fn unknown_message_numbers_share_one_series() {
        let t0 = Instant::now();
        let mut m = Metrics::new(t0);
        for kind in 0..=u16::MAX {
            m.count_message(kind, false);
        }
        m.count_message(2, true);
        let text = m.render(t0);
        let series = text
            .lines()
            .filter(|l| l.starts_with("hazel_index_messages_total{"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(text.contains("hazel_index_messages_total{type=\"unknown\"} 65536\n"));
        assert!(text.contains("hazel_index_messages_total{type=\"2\"} 1\n"));
    }

    #[test]
    fn label_values_are_escaped_for_the_exposition_format() {
        assert_eq!(LabelValue("a\\b\"c\nd").to_string(), "a\\\\b\\\"c\\nd");
        assert_eq!(
            LabelValue("output_queue_full").to_string(),
            "output_queue_full"
        );
    }

    #[test]
    fn searches_per_second_is_sampled_over_elapsed_time() {
        let t0 = Instant::now();
        let mut m = Metrics::new(t0);
        m.searches_total = 50;
        m.sample_rates(t0 + Duration::from_secs(2));
        assert!((m.searches_per_second - 25.0).abs() < 1e-9);
    }
}
