//! The routing rules of PROTOCOL-NOTES §2, descriptor by descriptor: TTL and
//! hops, duplicate suppression, reverse paths for Pong and QueryHit, Push by
//! servent id, the size policy, the per-neighbour Ping throttle, and a
//! counted reason for every drop.
//!
//! The [`Router`] owns what those rules need to remember (the route tables)
//! and the routing counters, and decides; it never touches a connection.
//! [`Router::route`] turns one descriptor from a neighbour into a
//! [`Decision`] that the core carries out (answer, flood, forward along a
//! route, deliver to us), reporting back what it could not do
//! ([`Router::count_drop`], [`Router::count_forwarded`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hazel_protocol::descriptor::{
    ByeRef, PongFixed, PushFixed, QueryHitRef, QUERY_HIT_FORWARD_MAX_LEN, QUERY_MAX_LEN,
};
use hazel_protocol::header::{Header, PayloadType};

use super::id_table::{RouteTable, SeenIds};
use super::ids::{ConnId, ConnIdHashBuilder, Origin};
use super::queue::Class;
use super::stats::{DropCounts, DropReason, TypeCounts};

/// Anything with TTL + hops above this is dropped on arrival.
const MAX_TTL_PLUS_HOPS: u16 = 15;

/// TTL and hops of a copy sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub ttl: u8,
    pub hops: u8,
}

/// What the core must do with one descriptor from a neighbour. Drops are
/// already counted when a decision says nothing more is to be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing (dropped and counted, or fully handled here).
    Done,
    /// The neighbour said Bye: close its link, saying why.
    Bye(String),
    /// A new Ping: send our Pong back with `pong_ttl`; when `travel` is set
    /// (not throttled, TTL left) it may go on — answered from the pong cache
    /// while fresh, else flooded with that hop.
    Ping { pong_ttl: u8, travel: Option<Hop> },
    /// A new Query: ask the library (hits go back to the sender), and flood
    /// it when `flood` is set.
    Query { flood: Option<Hop> },
    /// A Pong: it names a host; it answered one of our Pings (`ours`), or
    /// goes on to `forward`.
    Pong {
        fixed: PongFixed,
        ours: bool,
        forward: Option<(ConnId, Hop)>,
    },
    /// A QueryHit for one of our searches.
    HitForUs,
    /// A reply or Push to send on along its route.
    Forward { to: ConnId, hop: Hop, class: Class },
    /// A Push addressed to us.
    PushForUs(PushFixed),
    /// A vendor message from the neighbour itself (never forwarded).
    Vendor,
}

/// What the router is told about the servent.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub servent_id: [u8; 16],
    /// Clamp for TTL + hops when forwarding.
    pub max_ttl: u8,
    /// One Ping accepted per neighbour per this interval.
    pub ping_throttle: Duration,
    /// Entries per generation of the Query table (the others get a quarter).
    pub dedup_capacity: usize,
    /// How long each entry lives at least.
    pub dedup_age: Duration,
}

/// Route tables, rules and counters.
pub struct Router {
    config: RouterConfig,
    /// Ping id → where it came from: dedup and reverse path of its Pongs.
    pings: RouteTable,
    /// Query id → where it came from: dedup and reverse path of its hits.
    queries: RouteTable,
    /// Push ids seen: dedup only.
    pushes: SeenIds,
    /// Servent id → the link its QueryHits arrived on.
    push_routes: RouteTable,
    /// When each neighbour last had a Ping accepted (the throttle).
    last_ping: HashMap<ConnId, Instant, ConnIdHashBuilder>,
    received: TypeCounts,
    forwarded: TypeCounts,
    originated: TypeCounts,
    dropped: TypeCounts,
    drops: DropCounts,
}

/// The router's counters, for `stats`.
#[derive(Debug, Clone)]
pub struct RouterStats {
    pub received: TypeCounts,
    pub forwarded: TypeCounts,
    pub originated: TypeCounts,
    pub dropped: TypeCounts,
    pub drops: DropCounts,
    pub ping_table: usize,
    pub query_table: usize,
    pub push_table: usize,
    pub push_routes: usize,
    pub memory_bytes: usize,
}

impl Router {
    /// Tables are allocated once, up front; `seeds` key their hashes.
    pub fn new(config: RouterConfig, seeds: [u64; 4], now: Instant) -> Router {
        let cap = config.dedup_capacity.max(16);
        let age = config.dedup_age;
        Router {
            pings: RouteTable::new(cap / 4, age, seeds[0], now),
            queries: RouteTable::new(cap, age, seeds[1], now),
            pushes: SeenIds::new(cap / 4, age, seeds[2], now),
            push_routes: RouteTable::new(cap / 4, age, seeds[3], now),
            last_ping: HashMap::with_hasher(ConnIdHashBuilder),
            received: TypeCounts::default(),
            forwarded: TypeCounts::default(),
            originated: TypeCounts::default(),
            dropped: TypeCounts::default(),
            drops: DropCounts::default(),
            config,
        }
    }

    /// One descriptor from neighbour `from` (`payload` is all of its payload).
    pub fn route(
        &mut self,
        from: ConnId,
        header: &Header,
        payload: &[u8],
        now: Instant,
    ) -> Decision {
        let kind = header.payload_type.to_u8();
        self.received.add(kind, 1);
        match header.payload_type {
            // Only from the neighbour itself; never forwarded.
            PayloadType::Bye => return Decision::Bye(bye_text(payload)),
            PayloadType::Other(hazel_protocol::vendor::VENDOR_TYPE) => return Decision::Vendor,
            PayloadType::Other(_) => {
                // QRP, HSEP...: read, not forwarded.
                self.count_drop(kind, DropReason::UnknownType);
                return Decision::Done;
            }
            _ => {}
        }
        if header.ttl == 0 {
            self.count_drop(kind, DropReason::TtlZero);
            return Decision::Done;
        }
        if u16::from(header.ttl) + u16::from(header.hops) > MAX_TTL_PLUS_HOPS {
            self.count_drop(kind, DropReason::TtlHopsOver15);
            return Decision::Done;
        }
        match header.payload_type {
            PayloadType::Ping => self.ping(from, header, now),
            PayloadType::Query => self.query(from, header, payload, now),
            PayloadType::Pong => self.pong(from, header, payload),
            PayloadType::QueryHit => self.query_hit(from, header, payload, now),
            _ => self.push(from, header, payload, now),
        }
    }

    /// TTL and hops for the next hop, or `None` when the TTL runs out here:
    /// TTL down, hops up, TTL + hops clamped to our maximum, hops never lowered.
    fn next_hop(&self, header: &Header) -> Option<Hop> {
        let ttl = header.ttl.saturating_sub(1);
        let hops = header.hops.saturating_add(1);
        let ttl = ttl.min(self.config.max_ttl.saturating_sub(hops));
        (ttl > 0).then_some(Hop { ttl, hops })
    }

    fn ping(&mut self, from: ConnId, header: &Header, now: Instant) -> Decision {
        if !self.pings.insert_new(&header.id.0, Origin::Link(from), now) {
            self.count_drop(PayloadType::PING, DropReason::Duplicate);
            return Decision::Done;
        }
        // Every Ping gets our Pong (gtk opens a link with two Pings back to
        // back and expects both answered); the throttle only limits the work
        // a Ping causes beyond that.
        let pong_ttl = header
            .hops
            .saturating_add(1)
            .min(self.config.max_ttl.max(1));
        let throttle = self.config.ping_throttle;
        let throttled = self
            .last_ping
            .get(&from)
            .is_some_and(|t| now.saturating_duration_since(*t) < throttle);
        let travel = if throttled {
            self.count_drop(PayloadType::PING, DropReason::PingThrottled);
            None
        } else {
            self.last_ping.insert(from, now);
            let hop = self.next_hop(header);
            if hop.is_none() {
                self.count_drop(PayloadType::PING, DropReason::TtlExpired);
            }
            hop
        };
        Decision::Ping { pong_ttl, travel }
    }

    fn query(&mut self, from: ConnId, header: &Header, payload: &[u8], now: Instant) -> Decision {
        if payload.len() > QUERY_MAX_LEN {
            self.count_drop(PayloadType::QUERY, DropReason::QueryTooLong);
            return Decision::Done;
        }
        if !self
            .queries
            .insert_new(&header.id.0, Origin::Link(from), now)
        {
            self.count_drop(PayloadType::QUERY, DropReason::Duplicate);
            return Decision::Done;
        }
        let flood = if payload.len() > hazel_protocol::descriptor::QUERY_FORWARD_MAX_LEN {
            self.count_drop(PayloadType::QUERY, DropReason::QueryNotForwardedTooLong);
            None
        } else {
            let hop = self.next_hop(header);
            if hop.is_none() {
                self.count_drop(PayloadType::QUERY, DropReason::TtlExpired);
            }
            hop
        };
        Decision::Query { flood }
    }

    fn pong(&mut self, from: ConnId, header: &Header, payload: &[u8]) -> Decision {
        let Ok(fixed) = PongFixed::read(payload) else {
            self.count_drop(PayloadType::PONG, DropReason::Malformed);
            return Decision::Done;
        };
        let (ours, forward) = match self.pings.get(&header.id.0) {
            Some(Origin::Us) => (true, None),
            Some(Origin::Link(to)) if to != from => match self.next_hop(header) {
                Some(hop) => (false, Some((to, hop))),
                None => {
                    self.count_drop(PayloadType::PONG, DropReason::TtlExpired);
                    (false, None)
                }
            },
            _ => {
                self.count_drop(PayloadType::PONG, DropReason::NoRoute);
                (false, None)
            }
        };
        Decision::Pong {
            fixed,
            ours,
            forward,
        }
    }

    fn query_hit(
        &mut self,
        from: ConnId,
        header: &Header,
        payload: &[u8],
        now: Instant,
    ) -> Decision {
        let Ok(servent_id) = QueryHitRef::servent_id_of(payload) else {
            self.count_drop(PayloadType::QUERY_HIT, DropReason::Malformed);
            return Decision::Done;
        };
        let route = self.queries.get(&header.id.0);
        // Pushes for this servent go back the way its hits came, learned
        // only from hits that answer a query we routed (or sent): an
        // unsolicited hit must not divert the Pushes meant for another
        // servent.
        let solicited = matches!(route, Some(Origin::Us))
            || matches!(route, Some(Origin::Link(to)) if to != from);
        if solicited && servent_id.0 != self.config.servent_id {
            self.push_routes
                .upsert(&servent_id.0, Origin::Link(from), now);
        }
        match route {
            Some(Origin::Us) => Decision::HitForUs,
            Some(Origin::Link(to)) if to != from => {
                if payload.len() > QUERY_HIT_FORWARD_MAX_LEN {
                    self.count_drop(PayloadType::QUERY_HIT, DropReason::QueryHitTooLong);
                    return Decision::Done;
                }
                self.forward(to, header, Class::Keep)
            }
            _ => {
                self.count_drop(PayloadType::QUERY_HIT, DropReason::NoRoute);
                Decision::Done
            }
        }
    }

    fn push(&mut self, from: ConnId, header: &Header, payload: &[u8], now: Instant) -> Decision {
        let Ok(push) = PushFixed::read(payload) else {
            self.count_drop(PayloadType::PUSH, DropReason::Malformed);
            return Decision::Done;
        };
        if !self.pushes.insert_new(&header.id.0, now) {
            self.count_drop(PayloadType::PUSH, DropReason::Duplicate);
            return Decision::Done;
        }
        if push.servent_id.0 == self.config.servent_id {
            return Decision::PushForUs(push);
        }
        match self.push_routes.get(&push.servent_id.0) {
            Some(Origin::Link(to)) if to != from => self.forward(to, header, Class::Keep),
            _ => {
                self.count_drop(PayloadType::PUSH, DropReason::NoRoute);
                Decision::Done
            }
        }
    }

    fn forward(&mut self, to: ConnId, header: &Header, class: Class) -> Decision {
        match self.next_hop(header) {
            Some(hop) => Decision::Forward { to, hop, class },
            None => {
                self.count_drop(header.payload_type.to_u8(), DropReason::TtlExpired);
                Decision::Done
            }
        }
    }

    // ----- what the core tells the router --------------------------------

    /// A Ping we send (keep-alive, discovery): its Pongs are ours.
    pub fn sent_ping(&mut self, id: &[u8; 16], now: Instant) {
        self.pings.insert_new(id, Origin::Us, now);
        self.originated.add(PayloadType::PING, 1);
    }

    /// A Query we send: its hits are ours.
    pub fn sent_query(&mut self, id: &[u8; 16], now: Instant) {
        self.queries.insert_new(id, Origin::Us, now);
        self.originated.add(PayloadType::QUERY, 1);
    }

    /// A Push we send: a copy coming back is a duplicate.
    pub fn sent_push(&mut self, id: &[u8; 16], now: Instant) {
        self.pushes.insert_new(id, now);
        self.originated.add(PayloadType::PUSH, 1);
    }

    /// The link whose hits came from `servent_id` (where a Push for it goes).
    pub fn push_route(&self, servent_id: &[u8; 16]) -> Option<ConnId> {
        match self.push_routes.get(servent_id) {
            Some(Origin::Link(id)) => Some(id),
            _ => None,
        }
    }

    /// A link closed: forget its throttle.
    pub fn link_closed(&mut self, id: ConnId) {
        self.last_ping.remove(&id);
    }

    /// Retires table generations that are due (call from the tick).
    pub fn tick(&mut self, now: Instant) {
        self.pings.rotate_if_due(now);
        self.queries.rotate_if_due(now);
        self.pushes.rotate_if_due(now);
        self.push_routes.rotate_if_due(now);
    }

    pub fn count_drop(&mut self, payload_type: u8, reason: DropReason) {
        self.drops.add(reason, 1);
        self.dropped.add(payload_type, 1);
    }

    /// Descriptors removed from a full send queue (not received ones: only
    /// the reason is counted).
    pub fn count_queue_drops(&mut self, reason: DropReason, n: u64) {
        self.drops.add(reason, n);
    }

    pub fn count_forwarded(&mut self, payload_type: u8, n: u64) {
        self.forwarded.add(payload_type, n);
    }

    pub fn count_originated(&mut self, payload_type: u8, n: u64) {
        self.originated.add(payload_type, n);
    }

    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops.get(reason)
    }

    pub fn counters(&self) -> super::stats::Counters {
        super::stats::Counters {
            received: self.received,
            forwarded: self.forwarded,
            originated: self.originated,
            dropped: self.dropped,
            duplicates: self.drops.get(DropReason::Duplicate),
        }
    }

    pub fn stats(&self) -> RouterStats {
        RouterStats {
            received: self.received,
            forwarded: self.forwarded,
            originated: self.originated,
            dropped: self.dropped,
            drops: self.drops.clone(),
            ping_table: self.pings.len(),
            query_table: self.queries.len(),
            push_table: self.pushes.len(),
            push_routes: self.push_routes.len(),
            memory_bytes: self.pings.memory_bytes()
                + self.queries.memory_bytes()
                + self.pushes.memory_bytes()
                + self.push_routes.memory_bytes(),
        }
    }
}

/// How a peer's Bye reads in a `PeerDown` reason (kept raw: displays escape).
fn bye_text(payload: &[u8]) -> String {
    match ByeRef::read_lenient(payload) {
        Some(bye) => format!(
            "peer sent Bye {} {}",
            bye.code,
            String::from_utf8_lossy(bye.message)
        ),
        None => "peer sent Bye".to_string(),
    }
}

/// Where a Pong says its host listens.
pub fn pong_host(fixed: &PongFixed) -> SocketAddr {
    SocketAddr::from((fixed.ip, fixed.port))
}
