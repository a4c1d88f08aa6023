//! Periodic work, on the reactor's tick: login timeouts, expired direct
//! browses, the stats (214) pushed to everyone, the metrics' gauges.

use std::time::Instant;

use hazel_protocol::napster::ServerMessage;

use super::{Outbox, Server};
use crate::metrics::DropReason;
use crate::session::ConnId;

/// How often the index's memory use is measured for the metrics.
const MEMORY_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

impl Server {
    /// Periodic work: login timeouts, stats (214) to everyone, rate gauges.
    pub fn on_tick(&mut self, now: Instant, out: &mut Outbox) {
        let timeout = self.config.login_timeout;
        let expired: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.login_expired(now, timeout))
            .map(|s| s.id)
            .collect();
        for id in expired {
            self.metrics.count_drop(DropReason::LoginTimeout);
            out.message(
                id,
                &ServerMessage::Error {
                    message: b"Login timed out".to_vec(),
                },
            );
            out.close(id);
        }
        self.expire_browses(now, out);
        if now >= self.next_stats {
            self.next_stats = now + self.config.stats_interval;
            let stats = self.stats();
            let mut online: Vec<ConnId> = self.nicks.values().copied().collect();
            online.sort();
            for id in online {
                out.message(id, &stats);
            }
        }
        if now >= self.next_memory_sample {
            self.next_memory_sample = now + MEMORY_SAMPLE_INTERVAL;
            self.metrics.index_bytes = self.catalog.memory_bytes() as u64;
        }
        self.metrics.sample_rates(now);
        self.refresh_gauges();
    }
}
