//! Counters the core keeps for `stats` and `peers`: descriptors by type and
//! drops by reason.

use std::collections::BTreeMap;

use serde::Serialize;

use hazel_protocol::header::PayloadType;

/// One counter per descriptor type.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    pub ping: u64,
    pub pong: u64,
    pub bye: u64,
    pub push: u64,
    pub query: u64,
    pub query_hit: u64,
    pub other: u64,
}

impl TypeCounts {
    pub fn add(&mut self, payload_type: u8, n: u64) {
        let slot = match payload_type {
            PayloadType::PING => &mut self.ping,
            PayloadType::PONG => &mut self.pong,
            PayloadType::BYE => &mut self.bye,
            PayloadType::PUSH => &mut self.push,
            PayloadType::QUERY => &mut self.query,
            PayloadType::QUERY_HIT => &mut self.query_hit,
            _ => &mut self.other,
        };
        *slot += n;
    }

    pub fn total(&self) -> u64 {
        self.ping + self.pong + self.bye + self.push + self.query + self.query_hit + self.other
    }
}

/// Why a descriptor was not (or not fully) passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// Arrived with TTL 0 (including TTL 0 and hops 0).
    TtlZero,
    /// Arrived with TTL + hops above 15.
    TtlHopsOver15,
    /// TTL reached 0 after the decrement: handled here, not forwarded.
    TtlExpired,
    /// (id, type) already seen.
    Duplicate,
    /// More than one Ping per throttle interval from one neighbour.
    PingThrottled,
    /// Query payload over 4 KiB.
    QueryTooLong,
    /// Query payload over 256 bytes: answered, not forwarded.
    QueryNotForwardedTooLong,
    /// QueryHit payload over 16 KiB: not forwarded.
    QueryHitTooLong,
    /// Reply or Push with no known route.
    NoRoute,
    /// The route's connection is gone.
    RouteGone,
    /// Payload too short for its type.
    Malformed,
    /// Payload type we do not route (QRP, vendor, HSEP...).
    UnknownType,
    /// Dropped from a full send queue.
    QueueFullPing,
    QueueFullQuery,
    QueueFullPong,
    QueueFullOther,
    /// A reply that came back to us for a search we no longer track.
    StaleReply,
    /// A Push for us naming a file we do not share.
    PushUnknownFile,
    /// A Push for us repeating one just called back.
    PushDuplicate,
    /// A Push for us over the callback rate (per target IP or in all).
    PushRateLimited,
    /// A Push for us from a link that floods them (the link is dropped).
    PushFlood,
}

impl DropReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::TtlZero => "ttl_zero",
            DropReason::TtlHopsOver15 => "ttl_plus_hops_over_15",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::Duplicate => "duplicate",
            DropReason::PingThrottled => "ping_throttled",
            DropReason::QueryTooLong => "query_over_4k",
            DropReason::QueryNotForwardedTooLong => "query_over_256_not_forwarded",
            DropReason::QueryHitTooLong => "query_hit_over_16k",
            DropReason::NoRoute => "no_route",
            DropReason::RouteGone => "route_gone",
            DropReason::Malformed => "malformed",
            DropReason::UnknownType => "unknown_type",
            DropReason::QueueFullPing => "queue_full_ping",
            DropReason::QueueFullQuery => "queue_full_query",
            DropReason::QueueFullPong => "queue_full_pong",
            DropReason::QueueFullOther => "queue_full_other",
            DropReason::StaleReply => "stale_reply",
            DropReason::PushUnknownFile => "push_unknown_file",
            DropReason::PushDuplicate => "push_duplicate",
            DropReason::PushRateLimited => "push_rate_limited",
            DropReason::PushFlood => "push_flood",
        }
    }

    pub const ALL: [DropReason; 21] = [
        DropReason::TtlZero,
        DropReason::TtlHopsOver15,
        DropReason::TtlExpired,
        DropReason::Duplicate,
        DropReason::PingThrottled,
        DropReason::QueryTooLong,
        DropReason::QueryNotForwardedTooLong,
        DropReason::QueryHitTooLong,
        DropReason::NoRoute,
        DropReason::RouteGone,
        DropReason::Malformed,
        DropReason::UnknownType,
        DropReason::QueueFullPing,
        DropReason::QueueFullQuery,
        DropReason::QueueFullPong,
        DropReason::QueueFullOther,
        DropReason::StaleReply,
        DropReason::PushUnknownFile,
        DropReason::PushDuplicate,
        DropReason::PushRateLimited,
        DropReason::PushFlood,
    ];
}

/// Drop counters indexed by reason.
#[derive(Debug, Default, Clone)]
pub struct DropCounts([u64; DropReason::ALL.len()]);

impl DropCounts {
    pub fn add(&mut self, reason: DropReason, n: u64) {
        if let Some(slot) = self.0.get_mut(reason as usize) {
            *slot += n;
        }
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.0.get(reason as usize).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Non-zero counters by name, for display.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        DropReason::ALL
            .iter()
            .filter(|r| self.get(**r) > 0)
            .map(|r| (r.as_str().to_string(), self.get(*r)))
            .collect()
    }
}

/// The descriptor counters of a core, without the rest of [`Stats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub received: TypeCounts,
    pub forwarded: TypeCounts,
    pub originated: TypeCounts,
    pub dropped: TypeCounts,
    /// Received descriptors dropped as already seen (all types).
    pub duplicates: u64,
}

/// A snapshot of the core's counters (`stats` command).
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Descriptors received from neighbours.
    pub received: TypeCounts,
    /// Copies queued to neighbours on behalf of others.
    pub forwarded: TypeCounts,
    /// Descriptors we created (our Pongs, QueryHits, Queries, keep-alive Pings, Byes).
    pub originated: TypeCounts,
    /// Received descriptors dropped, by type.
    pub dropped: TypeCounts,
    /// Every drop by reason.
    pub drops_by_reason: BTreeMap<String, u64>,
    /// Pings answered from the pong cache instead of being forwarded.
    pub pings_answered_from_cache: u64,
    /// QRP messages (RESET and PATCH pieces) sent to our ultrapeers.
    pub qrp_sent: u64,
    /// Entries in the duplicate / reverse-path tables.
    pub ping_table: usize,
    pub query_table: usize,
    pub push_table: usize,
    pub push_routes: usize,
    /// Bytes held by those tables (estimated from their allocation).
    pub routing_memory_bytes: usize,
    pub host_cache: usize,
    pub pong_cache: usize,
    pub connections: usize,
    pub established: usize,
    pub searches: usize,
}
