//! UDP on our port: Pings answered with a Pong (and, when the Ping asks with
//! GGEP `SCP`, an `IPP` list of ultrapeers we know), and the Pongs of the UDP
//! host caches we ask when there is nobody to connect to.
//!
//! Every datagram is untrusted, and a UDP source address can be forged, so:
//! - decoding is total (a datagram is one whole descriptor or it is dropped);
//! - a reply is never more than [`AMPLIFICATION`] times the size of the
//!   datagram it answers (a spoofed Ping cannot turn us into an amplifier);
//! - replies are limited per source address and in all ([`REPLIES_PER_IP`],
//!   [`REPLIES_TOTAL`]);
//! - a Pong is believed only as the answer to a Ping we sent to that address
//!   within [`PING_TIMEOUT`] (an unsolicited one cannot fill the host cache).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use hazel_protocol::descriptor::{Ping, PongFixed};
use hazel_protocol::ggep::{hosts as host_list, Ggep, GgepExtension, GgepId};
use hazel_protocol::header::{DescriptorId, Header, PayloadType, HEADER_LEN};
use serde::Serialize;

use super::hosts::HostSource;
use super::limits::{KeyedRates, Rate, RateSpec};
use super::{Action, Core};

/// A reply is at most this many times the size of the datagram it answers.
pub const AMPLIFICATION: usize = 4;
/// Replies to one source address.
pub const REPLIES_PER_IP: RateSpec = RateSpec::new(6, Duration::from_secs(60), 3);
/// Replies in all.
pub const REPLIES_TOTAL: RateSpec = RateSpec::new(50, Duration::from_secs(1), 50);
/// Source addresses whose reply rate is remembered.
const TRACKED_SOURCES: usize = 4096;
/// A Pong must answer one of our Pings within this.
pub const PING_TIMEOUT: Duration = Duration::from_secs(30);
/// Our Pings awaiting an answer.
const MAX_PENDING: usize = 64;

/// UDP counters, for `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UdpStats {
    pub received: u64,
    pub malformed: u64,
    pub pings_answered: u64,
    pub pings_not_answered: u64,
    pub pongs_accepted: u64,
    pub pongs_unsolicited: u64,
    pub other: u64,
    pub sent: u64,
    pub hosts_learned: u64,
}

/// What UDP keeps.
pub(super) struct Udp {
    per_ip: KeyedRates<IpAddr>,
    total: Rate,
    /// Our Pings by id: to whom, when, and what the answer is for.
    pending: HashMap<[u8; 16], PendingPing>,
    pub stats: UdpStats,
}

#[derive(Debug, Clone)]
pub(super) struct PendingPing {
    pub to: SocketAddr,
    pub sent: Instant,
    /// The host cache being asked (its name, for the user).
    pub cache: String,
}

impl Default for Udp {
    fn default() -> Udp {
        Udp {
            per_ip: KeyedRates::new(REPLIES_PER_IP, TRACKED_SOURCES),
            total: Rate::new(REPLIES_TOTAL),
            pending: HashMap::new(),
            stats: UdpStats::default(),
        }
    }
}

/// The hosts that fit in a Pong answering a datagram of `request_len`
/// bytes, given `fixed` bytes before the list (header, Pong, GGEP framing).
fn hosts_that_fit(request_len: usize, fixed: usize) -> usize {
    (request_len * AMPLIFICATION).saturating_sub(fixed) / host_list::HOST_LEN
}

impl Core {
    /// A datagram arrived on our port.
    pub fn on_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        self.udp.stats.received += 1;
        let Some(head) = bytes
            .get(..HEADER_LEN)
            .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
        else {
            self.udp.stats.malformed += 1;
            return;
        };
        let header = match Header::parse_array(head) {
            Ok(h) if h.payload_len as usize == bytes.len() - HEADER_LEN => h,
            _ => {
                self.udp.stats.malformed += 1;
                return;
            }
        };
        let payload = &bytes[HEADER_LEN..];
        match header.payload_type {
            PayloadType::Ping => self.udp_ping(from, &header, payload, bytes.len(), now),
            PayloadType::Pong => self.udp_pong(from, &header, payload, now),
            _ => self.udp.stats.other += 1,
        }
    }

    fn udp_ping(
        &mut self,
        from: SocketAddr,
        header: &Header,
        payload: &[u8],
        request_len: usize,
        now: Instant,
    ) {
        let Ok(ping) = Ping::parse(payload) else {
            self.udp.stats.malformed += 1;
            return;
        };
        if !super::hosts::is_dialable(&from)
            || !self.udp.per_ip.allow(from.ip(), now)
            || !self.udp.total.allow(now)
        {
            self.udp.stats.pings_not_answered += 1;
            return;
        }
        let wants_hosts = ping.ggep.as_ref().is_some_and(|g| g.get(b"SCP").is_some());
        let fixed: PongFixed = self.our_pong();
        let mut payload = fixed.to_bytes().to_vec();
        if wants_hosts {
            // Magic, flags, "IPP", up to 2 length bytes.
            let framing = HEADER_LEN + payload.len() + 1 + 1 + 3 + 2;
            let room = hosts_that_fit(request_len, framing);
            let hosts: Vec<SocketAddrV4> = self
                .hosts
                .hosts_to_share(room, now)
                .into_iter()
                .filter(|h| SocketAddr::V4(*h) != from)
                .collect();
            if !hosts.is_empty() {
                if let Some(id) = GgepId::new(b"IPP") {
                    Ggep::new(vec![GgepExtension::new(id, host_list::encode(&hosts))])
                        .encode(&mut payload);
                }
            }
        }
        let mut datagram = Vec::with_capacity(HEADER_LEN + payload.len());
        Header {
            id: header.id,
            payload_type: PayloadType::Pong,
            ttl: 1,
            hops: 0,
            payload_len: payload.len() as u32,
        }
        .encode(&mut datagram);
        datagram.extend_from_slice(&payload);
        debug_assert!(datagram.len() <= request_len * AMPLIFICATION || !wants_hosts);
        if datagram.len() > request_len * AMPLIFICATION {
            // Even a bare Pong is too big an answer to so small a datagram.
            self.udp.stats.pings_not_answered += 1;
            return;
        }
        self.udp.stats.pings_answered += 1;
        self.send_datagram(from, datagram);
    }

    fn udp_pong(&mut self, from: SocketAddr, header: &Header, payload: &[u8], now: Instant) {
        let expected = self.udp.pending.get(&header.id.0).is_some_and(|p| {
            p.to.ip() == from.ip() && now.saturating_duration_since(p.sent) < PING_TIMEOUT
        });
        if !expected {
            self.udp.stats.pongs_unsolicited += 1;
            return;
        }
        let Some(pending) = self.udp.pending.remove(&header.id.0) else {
            return;
        };
        let Ok(pong) = hazel_protocol::descriptor::Pong::parse(payload) else {
            self.udp.stats.malformed += 1;
            return;
        };
        self.udp.stats.pongs_accepted += 1;
        let listed = pong
            .ggep
            .as_ref()
            .and_then(|g| g.get(b"IPP"))
            .and_then(|e| e.value().ok())
            .map(|v| host_list::decode(&v))
            .unwrap_or_default();
        let mut learned = 0;
        for host in listed {
            let addr = SocketAddr::V4(host);
            if !self.is_self_addr(&addr)
                && self
                    .hosts
                    .add_ultrapeer(addr, HostSource::UdpHostCache, now)
            {
                learned += 1;
            }
        }
        self.udp.stats.hosts_learned += learned;
        self.bootstrap_answered(&pending.cache, learned, now);
    }

    /// Sends a Ping asking `to` (a UDP host cache named `cache`) for hosts.
    pub(super) fn ping_host_cache(&mut self, to: SocketAddr, cache: &str, now: Instant) {
        self.udp
            .pending
            .retain(|_, p| now.saturating_duration_since(p.sent) < PING_TIMEOUT);
        if self.udp.pending.len() >= MAX_PENDING {
            return;
        }
        let id = self.new_descriptor_id();
        // SCP: we want hosts packed in IPP; 0 = we are a leaf.
        let mut payload = Vec::new();
        if let Some(scp) = GgepId::new(b"SCP") {
            Ggep::new(vec![GgepExtension::new(scp, vec![0])]).encode(&mut payload);
        }
        let mut datagram = Vec::with_capacity(HEADER_LEN + payload.len());
        Header {
            id: DescriptorId(id),
            payload_type: PayloadType::Ping,
            ttl: 1,
            hops: 0,
            payload_len: payload.len() as u32,
        }
        .encode(&mut datagram);
        datagram.extend_from_slice(&payload);
        self.udp.pending.insert(
            id,
            PendingPing {
                to,
                sent: now,
                cache: cache.to_string(),
            },
        );
        self.send_datagram(to, datagram);
    }

    fn send_datagram(&mut self, to: SocketAddr, datagram: Vec<u8>) {
        self.udp.stats.sent += 1;
        self.links.push_action(Action::SendDatagram(to, datagram));
    }

    /// UDP counters.
    pub fn udp_stats(&self) -> &UdpStats {
        &self.udp.stats
    }

    /// Our Pings to host caches that went unanswered: forgotten, and the
    /// bootstrap told.
    pub(super) fn expire_udp_pings(&mut self, now: Instant) {
        let expired: Vec<[u8; 16]> = self
            .udp
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent) >= PING_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.udp.pending.remove(&id) {
                self.bootstrap_failed(&p.cache, "no answer", now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_for_hosts_follows_the_request_size() {
        // A bare 23-byte Ping: 92 bytes of answer; the Pong alone takes 37.
        assert_eq!(hosts_that_fit(23, 23 + 14 + 7), 8);
        // gtk-gnutella's 47-byte SCP Ping.
        assert_eq!(hosts_that_fit(47, 23 + 14 + 7), 24);
        assert_eq!(hosts_that_fit(10, 100), 0);
    }
}
