//! Push proxies, both ways, and the vendor messages they need.
//!
//! - Every 0.6 link is told which vendor messages we understand (*Messages
//!   Supported*), and we read the peer's list.
//! - As a firewalled leaf, we ask each peer that understands it to be our
//!   push proxy (`LIME`/21, the descriptor id being our servent id); the
//!   peers that acknowledge (`LIME`/22) are named in our QueryHits (GGEP
//!   `PUSH`, at most [`MAX_PROXIES`]) so downloaders can ask them — over
//!   HTTP — to relay a Push to us, without a route through the overlay.
//! - When not firewalled, we act as push proxy for the peers that ask: an
//!   HTTP `GET /gnutella/push-proxy?ServerId=…&file=…` with an `X-Node`
//!   header becomes a Push on that peer's link (TTL 1). Relays are limited
//!   per requesting address and per proxied peer, so a proxy cannot be used
//!   to make our leaves connect to third parties at a stranger's rate (the
//!   leaf's own Push guard limits its callbacks too).
//!
//! Unknown vendor messages are read and ignored; a known one that does not
//! decode is dropped and counted.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use hazel_protocol::descriptor::{PushFixed, ServentId};
use hazel_protocol::header::{DescriptorId, Header, PayloadType};
use hazel_protocol::vendor::{
    encode_proxy_ack, encode_supported, parse_proxy_ack, parse_supported, VendorKind,
    VendorMessage, MESSAGES_SUPPORTED, PUSH_PROXY_ACK, PUSH_PROXY_REQUEST, VENDOR_TYPE,
};

use super::ids::{ConnId, ProtocolVersion};
use super::limits::{KeyedRates, RateSpec};
use super::queue::Class;
use super::Core;

/// Push proxies named in our QueryHits.
pub const MAX_PROXIES: usize = 4;
/// Relays one address may ask of us.
pub const RELAYS_PER_REQUESTER: RateSpec = RateSpec::new(20, Duration::from_secs(60), 5);
/// Relays to one proxied peer.
pub const RELAYS_PER_LEAF: RateSpec = RateSpec::new(60, Duration::from_secs(60), 10);

/// The vendor messages we understand.
const SUPPORTED: [VendorKind; 4] = [
    VendorKind::new(b"LIME", 21, 1),
    VendorKind::new(b"LIME", 21, 2),
    VendorKind::new(b"LIME", 22, 1),
    VendorKind::new(b"LIME", 22, 2),
];

/// What a push-proxy request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVerdict {
    /// The Push went to the peer.
    Relayed,
    /// We do not proxy for that servent (any more).
    NotProxied,
    /// Too many from this address, or to that peer: try later.
    RateLimited,
}

/// Push-proxy bookkeeping.
pub(super) struct Proxies {
    per_requester: KeyedRates<IpAddr>,
    per_leaf: KeyedRates<[u8; 16]>,
    pub stats: ProxyStats,
}

/// Push-proxy counters, for `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyStats {
    pub vendor_received: u64,
    pub vendor_malformed: u64,
    pub proxy_requests_sent: u64,
    pub proxy_acks_received: u64,
    pub proxying_for: u64,
    pub relays: u64,
    pub relays_refused: u64,
}

impl Default for Proxies {
    fn default() -> Proxies {
        Proxies {
            per_requester: KeyedRates::new(RELAYS_PER_REQUESTER, 4096),
            per_leaf: KeyedRates::new(RELAYS_PER_LEAF, 1024),
            stats: ProxyStats::default(),
        }
    }
}

/// Per-link push-proxy state (kept in the connection).
#[derive(Debug, Clone, Default)]
pub struct LinkProxy {
    /// The vendor messages the peer said it understands.
    pub supported: Option<Vec<VendorKind>>,
    /// We asked it to be our push proxy.
    pub requested: bool,
    /// It acknowledged: where downloaders reach it.
    pub acked: Option<SocketAddrV4>,
    /// It asked us to be its push proxy: its servent id.
    pub proxied: Option<[u8; 16]>,
}

fn vendor_frame(id: [u8; 16], kind: VendorKind, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8 + data.len());
    VendorMessage::encode(kind, data, &mut payload);
    Header::frame(DescriptorId(id), VENDOR_TYPE, 1, 0, &payload)
}

impl Core {
    /// A 0.6 link came up: say which vendor messages we understand.
    pub(super) fn send_messages_supported(&mut self, id: ConnId) {
        let is_06 = self
            .links
            .get(id)
            .is_some_and(|c| c.version == ProtocolVersion::V06);
        if !is_06 {
            return;
        }
        let frame = vendor_frame([0; 16], MESSAGES_SUPPORTED, &encode_supported(&SUPPORTED));
        self.enqueue(id, Class::Other, frame.into());
    }

    /// A vendor message from neighbour `from`.
    pub(super) fn on_vendor(
        &mut self,
        from: ConnId,
        header: &Header,
        payload: &[u8],
        now: Instant,
    ) {
        self.proxies.stats.vendor_received += 1;
        let Ok(message) = VendorMessage::parse(payload) else {
            self.proxies.stats.vendor_malformed += 1;
            return;
        };
        let kind = message.kind;
        if kind == MESSAGES_SUPPORTED {
            let Ok(list) = parse_supported(message.data) else {
                self.proxies.stats.vendor_malformed += 1;
                return;
            };
            if let Some(conn) = self.links.get_mut(from) {
                conn.proxy.supported = Some(list);
            }
            self.maybe_request_proxy(from);
        } else if kind.same_message(&PUSH_PROXY_REQUEST) {
            self.proxy_requested(from, header.id.0);
        } else if kind.same_message(&PUSH_PROXY_ACK) {
            self.proxy_acked(from, kind.version, message.data, now);
        }
    }

    /// As a firewalled servent, asks `id`'s peer to be our push proxy if it
    /// says it can (once per link).
    fn maybe_request_proxy(&mut self, id: ConnId) {
        if !self.config.firewalled {
            return;
        }
        let ask = self.links.get(id).is_some_and(|c| {
            !c.proxy.requested
                && c.proxy
                    .supported
                    .as_ref()
                    .is_some_and(|s| s.iter().any(|k| k.same_message(&PUSH_PROXY_REQUEST)))
        });
        if !ask {
            return;
        }
        if let Some(conn) = self.links.get_mut(id) {
            conn.proxy.requested = true;
        }
        self.proxies.stats.proxy_requests_sent += 1;
        // The descriptor id is our servent id: that is whom the proxy relays to.
        let frame = vendor_frame(self.config.servent_id, PUSH_PROXY_REQUEST, &[]);
        self.enqueue(id, Class::Other, frame.into());
        self.links.want_write(id);
    }

    /// `from` asks us to relay Pushes for servent `guid`.
    fn proxy_requested(&mut self, from: ConnId, guid: [u8; 16]) {
        if self.config.firewalled || guid == self.config.servent_id {
            // A proxy must be reachable; and we never proxy for ourselves.
            return;
        }
        let Some(conn) = self.links.get_mut(from) else {
            return;
        };
        if conn.proxy.proxied.is_none() {
            self.proxies.stats.proxying_for += 1;
        }
        conn.proxy.proxied = Some(guid);
        let data = encode_proxy_ack(self.advertised_ip(), self.config.listen_addr.port());
        let frame = vendor_frame(guid, PUSH_PROXY_ACK, &data);
        self.enqueue(from, Class::Other, frame.into());
        self.links.want_write(from);
    }

    /// `from` acknowledged being our push proxy.
    fn proxy_acked(&mut self, from: ConnId, version: u16, data: &[u8], now: Instant) {
        let Ok((ip, port)) = parse_proxy_ack(version, data) else {
            self.proxies.stats.vendor_malformed += 1;
            return;
        };
        let Some(conn) = self.links.get_mut(from) else {
            return;
        };
        if !conn.proxy.requested {
            // Not asked: an unsolicited ack names nothing we trust.
            return;
        }
        let ip = match (ip, conn.peer.ip()) {
            (Some(ip), _) => ip,
            (None, IpAddr::V4(peer)) => peer,
            (None, IpAddr::V6(_)) => return,
        };
        let addr = SocketAddrV4::new(ip, port);
        if !super::hosts::is_dialable(&SocketAddr::V4(addr)) {
            return;
        }
        conn.proxy.acked = Some(addr);
        self.proxies.stats.proxy_acks_received += 1;
        log::info!("push proxy {addr} (link {from})");
        let _ = now;
    }

    /// Our push proxies (acknowledged by links still up), for our QueryHits.
    pub fn push_proxies(&self) -> Vec<SocketAddrV4> {
        let mut proxies: Vec<SocketAddrV4> = self
            .links
            .iter()
            .filter(|c| c.is_established() && !c.is_closing())
            .filter_map(|c| c.proxy.acked)
            .collect();
        proxies.sort();
        proxies.dedup();
        proxies.truncate(MAX_PROXIES);
        proxies
    }

    /// An HTTP push-proxy request from `requester`: relay a Push for file
    /// `file` of servent `guid` to the peer we proxy for, telling it to
    /// connect back to `node`.
    pub fn relay_push(
        &mut self,
        guid: [u8; 16],
        file: u32,
        node: SocketAddrV4,
        requester: IpAddr,
        now: Instant,
    ) -> ProxyVerdict {
        let link = self
            .links
            .iter()
            .find(|c| c.is_established() && !c.is_closing() && c.proxy.proxied == Some(guid))
            .map(|c| c.id);
        let Some(link) = link else {
            self.proxies.stats.relays_refused += 1;
            return ProxyVerdict::NotProxied;
        };
        if !self.proxies.per_requester.allow(requester, now)
            || !self.proxies.per_leaf.allow(guid, now)
        {
            self.proxies.stats.relays_refused += 1;
            return ProxyVerdict::RateLimited;
        }
        let push = PushFixed {
            servent_id: ServentId(guid),
            file_index: file,
            ip: *node.ip(),
            port: node.port(),
        };
        let id = self.new_descriptor_id();
        let frame = Header::frame(DescriptorId(id), PayloadType::PUSH, 1, 0, &push.to_bytes());
        self.enqueue(link, Class::Keep, frame.into());
        self.links.want_write(link);
        self.proxies.stats.relays += 1;
        ProxyVerdict::Relayed
    }

    /// Push-proxy counters.
    pub fn proxy_stats(&self) -> &ProxyStats {
        &self.proxies.stats
    }
}
