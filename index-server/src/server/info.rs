//! Questions about the server and its users: stats (214), whois (603 →
//! 604 or 605), version (801), linked servers (10112), usage (10115),
//! client versions (10118).

use std::collections::HashMap;
use std::time::Instant;

use hazel_protocol::napster::{
    ClientVersionCount, ServerMessage, ServerStats, UsageStats, WhoisDetails, WhoisResponse, Whowas,
};
use log::warn;

use super::{error_message, Outbox, Server};
use crate::session::{ConnId, Session};
use crate::store::Level;

impl Server {
    /// 10112: no linked servers, so the list is just its terminator.
    pub(super) fn server_links(id: ConnId, out: &mut Outbox) {
        out.message(id, &ServerMessage::ServerLinks { line: Vec::new() });
    }

    pub(super) fn stats(&self) -> ServerMessage {
        ServerMessage::Stats(ServerStats {
            users: self.nicks.len() as u64,
            files: self.catalog.total_files(),
            gigabytes: self.catalog.total_gigabytes(),
        })
    }

    pub(super) fn whois(&mut self, id: ConnId, nick: &str, now: Instant, out: &mut Outbox) {
        let asker_level = self.session(id).map_or(Level::User, Session::level);
        if let Some(target) = self.online_by_nick(nick) {
            let Some(user) = target.user() else {
                return;
            };
            let online_for = now.saturating_duration_since(user.logged_in_at).as_secs();
            let shared = self.catalog.count_of(target.id) as u64;
            let whois = WhoisResponse {
                nick: user.nick.clone(),
                level: user.level.wire(),
                online_seconds: online_for,
                channels: Vec::new(),
                status: b"Active".to_vec(),
                shared,
                downloads: u64::from(target.downloads),
                uploads: u64::from(target.uploads),
                link_speed: user.link_speed,
                client: user.client.clone(),
                details: (asker_level >= Level::Moderator).then(|| WhoisDetails {
                    total_downloads: 0,
                    total_uploads: 0,
                    ip: target.ip,
                    connecting_port: 0,
                    data_port: user.data_port,
                    email: user.email.as_bytes().to_vec(),
                }),
            };
            out.message(id, &ServerMessage::WhoisResponse(whois));
            return;
        }
        match self.store.account(nick) {
            Ok(Some(acct)) => {
                let whowas = Whowas {
                    nick: acct.nick,
                    level: acct.level.wire(),
                    last_seen: 0,
                };
                out.message(id, &ServerMessage::Whowas(whowas));
            }
            _ => {
                let msg = format!("User {nick} is not currently online");
                out.message(id, &error_message(msg));
            }
        }
    }

    /// 801: the server's name and version, for moderators and up (as
    /// opennap-ng), in 404 lines.
    pub(super) fn server_version(&mut self, id: ConnId, out: &mut Outbox) {
        if self.require(id, Level::Moderator, out).is_none() {
            return;
        }
        let version = concat!("hazel-index ", env!("CARGO_PKG_VERSION"));
        for line in ["--", version, "--"] {
            out.message(id, &error_message(line));
        }
    }

    /// 10115: server usage, opennap-ng's sixteen numbers (channels, linked
    /// servers and pending searches are always 0 here).
    pub(super) fn usage_stats(&mut self, id: ConnId, now: Instant, out: &mut Outbox) {
        let users = self.nicks.len() as u64;
        let registered = self.store.account_count().unwrap_or_else(|e| {
            warn!("counting accounts: {e}");
            0
        });
        let m = &self.metrics;
        let stats = UsageStats {
            local_clients: users,
            linked_servers: 0,
            users,
            files: self.catalog.total_files(),
            shared_bytes: self.catalog.total_bytes(),
            channels: 0,
            started_at: self.started_unix,
            uptime_seconds: now.saturating_duration_since(m.started()).as_secs(),
            memory_bytes: m.index_bytes,
            registered_users: registered,
            kib_in_per_second: (m.bytes_in_per_second / 1024.0) as u64,
            kib_out_per_second: (m.bytes_out_per_second / 1024.0) as u64,
            searches_per_second: m.searches_per_second.round() as u64,
            bytes_in: m.bytes_in,
            bytes_out: m.bytes_out,
            pending_searches: 0,
        };
        out.message(id, &ServerMessage::UsageStats(stats));
    }

    /// 10118: online users per client version, for moderators and up;
    /// an empty 10118 ends the list.
    pub(super) fn client_versions(&mut self, id: ConnId, out: &mut Outbox) {
        if self.require(id, Level::Moderator, out).is_none() {
            return;
        }
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for session in self.sessions.values() {
            if let Some(user) = session.user() {
                *counts.entry(user.client.as_slice()).or_insert(0) += 1;
            }
        }
        let mut counts: Vec<(&[u8], u64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (client, users) in counts {
            let count = ClientVersionCount {
                client: client.to_vec(),
                users,
            };
            out.message(id, &ServerMessage::ClientVersionCount(count));
        }
        out.message(id, &ServerMessage::ClientVersionsEnd);
    }
}
