//! Counts for the summary line `hazel-trace` prints at the end.

use std::collections::BTreeMap;

use serde_json::{json, Value};

#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub frames: u32,
    pub unreadable_frames: u32,
    pub tcp_streams: u32,
    pub udp_datagrams: u64,
    pub gnutella_datagrams: u64,
    /// Messages by kind ("handshake", "HTTP request", "GIV", "OpenNap", …).
    pub messages: BTreeMap<String, u64>,
    /// Descriptors by type name.
    pub descriptors: BTreeMap<String, u64>,
    pub malformed_descriptors: u64,
    pub deflate_directions: u64,
    pub inflated_bytes: u64,
    pub tls_directions: u64,
    pub http_body_bytes: u64,
    /// File bytes seen on OpenNap data ports.
    pub nap_data_bytes: u64,
    pub gaps: u64,
    /// Times descriptors were found again by their headers (late capture start,
    /// after a gap, after a bad header), and the bytes skipped to get there.
    pub resyncs: u64,
    pub resync_skipped_bytes: u64,
    /// TCP directions searched for descriptor headers in vain (not decoded).
    pub unrecognised_directions: u64,
    pub notes: u64,
    pub errors: u64,
    /// Damage in the capture file itself (truncated end, bad record headers).
    pub file_errors: Vec<String>,
}

impl Summary {
    pub fn count(&mut self, kind: &str) {
        *self.messages.entry(kind.to_string()).or_default() += 1;
    }

    pub fn count_descriptor(&mut self, type_name: &str, malformed: bool) {
        *self.descriptors.entry(type_name.to_string()).or_default() += 1;
        if malformed {
            self.malformed_descriptors += 1;
        }
    }

    pub fn total_descriptors(&self) -> u64 {
        self.descriptors.values().sum()
    }

    pub fn to_line(&self) -> String {
        let by_type: Vec<String> = self
            .descriptors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let kinds: Vec<String> = self
            .messages
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let mut line = format!(
            "summary: {} frames ({} unreadable), {} TCP streams, {} UDP datagrams ({} Gnutella); {} descriptors",
            self.frames,
            self.unreadable_frames,
            self.tcp_streams,
            self.udp_datagrams,
            self.gnutella_datagrams,
            self.total_descriptors()
        );
        if !by_type.is_empty() {
            line.push_str(&format!(" ({})", by_type.join(", ")));
        }
        if self.malformed_descriptors > 0 {
            line.push_str(&format!(", {} malformed", self.malformed_descriptors));
        }
        if !kinds.is_empty() {
            line.push_str(&format!("; {}", kinds.join(", ")));
        }
        line.push_str(&format!(
            "; {} deflate directions inflated ({} bytes), {} TLS directions skipped; {} gaps, {} errors",
            self.deflate_directions, self.inflated_bytes, self.tls_directions, self.gaps, self.errors
        ));
        if self.resyncs > 0 {
            line.push_str(&format!(
                "; descriptors found by their headers {} time{} ({} bytes skipped)",
                self.resyncs,
                if self.resyncs == 1 { "" } else { "s" },
                self.resync_skipped_bytes
            ));
        }
        if self.unrecognised_directions > 0 {
            line.push_str(&format!(
                "; {} TCP direction{} not recognised",
                self.unrecognised_directions,
                if self.unrecognised_directions == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
        if let Some(first) = self.file_errors.first() {
            line.push_str(&format!(
                "; capture damaged ({} problem{}): {first}",
                self.file_errors.len(),
                if self.file_errors.len() == 1 { "" } else { "s" }
            ));
        }
        line
    }

    pub fn to_json(&self) -> Value {
        json!({
            "kind": "summary",
            "frames": self.frames,
            "unreadable_frames": self.unreadable_frames,
            "tcp_streams": self.tcp_streams,
            "udp_datagrams": self.udp_datagrams,
            "gnutella_datagrams": self.gnutella_datagrams,
            "descriptors": self.total_descriptors(),
            "descriptors_by_type": self.descriptors,
            "malformed_descriptors": self.malformed_descriptors,
            "messages": self.messages,
            "deflate_directions": self.deflate_directions,
            "inflated_bytes": self.inflated_bytes,
            "tls_directions": self.tls_directions,
            "http_body_bytes": self.http_body_bytes,
            "nap_data_bytes": self.nap_data_bytes,
            "gaps": self.gaps,
            "resyncs": self.resyncs,
            "resync_skipped_bytes": self.resync_skipped_bytes,
            "unrecognised_directions": self.unrecognised_directions,
            "errors": self.errors,
            "file_errors": self.file_errors,
        })
    }
}
