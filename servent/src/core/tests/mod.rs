//! Router and connection tests: one Core, driven by hand-written peers that
//! speak raw handshake and descriptor bytes, asserting on the bytes each
//! peer receives. One test per rule of PROTOCOL-NOTES §2 (and §3 where the
//! core decides).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::harness;
use hazel_protocol::header::HEADER_LEN;
use wire::RawHeader;

/// The descriptor builders and readers these tests speak in, over the
/// protocol crate's codec.
mod wire {
    use hazel_protocol::descriptor::{ByeRef, PongFixed, PushFixed, Query, ServentId, SpeedField};
    use hazel_protocol::header::{DescriptorId, Header, HeaderView, PayloadType};
    use std::net::Ipv4Addr;

    pub use hazel_protocol::header::MAX_PAYLOAD_LEN;
    pub const PING: u8 = PayloadType::PING;
    pub const PONG: u8 = PayloadType::PONG;
    pub const BYE: u8 = PayloadType::BYE;
    pub const PUSH: u8 = PayloadType::PUSH;
    pub const QUERY: u8 = PayloadType::QUERY;
    pub const QUERY_HIT: u8 = PayloadType::QUERY_HIT;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RawHeader {
        pub id: [u8; 16],
        pub payload_type: u8,
        pub ttl: u8,
        pub hops: u8,
        pub payload_len: u32,
    }

    impl RawHeader {
        pub fn read(bytes: &[u8]) -> Option<RawHeader> {
            let view = HeaderView::new_checked(bytes).ok()?;
            Some(RawHeader {
                id: *view.id(),
                payload_type: view.payload_type(),
                ttl: view.ttl(),
                hops: view.hops(),
                payload_len: view.payload_len() as u32,
            })
        }
    }

    pub fn descriptor(
        id: [u8; 16],
        payload_type: u8,
        ttl: u8,
        hops: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        Header::frame(DescriptorId(id), payload_type, ttl, hops, payload)
    }

    pub fn query_payload(text: &str, firewalled: bool) -> Vec<u8> {
        let flags = if firewalled {
            SpeedField::FIREWALLED
        } else {
            0
        };
        let mut out = Vec::new();
        Query::new(SpeedField::flags(flags), text).encode(&mut out);
        out
    }

    pub struct PongFields {
        pub port: u16,
        pub ip: [u8; 4],
        pub files: u32,
        pub kbytes: u32,
    }

    impl PongFields {
        pub fn read(payload: &[u8]) -> Option<PongFields> {
            let f = PongFixed::read(payload).ok()?;
            Some(PongFields {
                port: f.port,
                ip: f.ip.octets(),
                files: f.files,
                kbytes: f.kbytes,
            })
        }

        pub fn payload(&self) -> Vec<u8> {
            PongFixed {
                port: self.port,
                ip: Ipv4Addr::from(self.ip),
                files: self.files,
                kbytes: self.kbytes,
            }
            .to_bytes()
            .to_vec()
        }
    }

    pub struct PushFields {
        pub servent_id: [u8; 16],
        pub file_index: u32,
        pub ip: [u8; 4],
        pub port: u16,
    }

    impl PushFields {
        pub fn payload(&self) -> Vec<u8> {
            PushFixed {
                servent_id: ServentId(self.servent_id),
                file_index: self.file_index,
                ip: Ipv4Addr::from(self.ip),
                port: self.port,
            }
            .to_bytes()
            .to_vec()
        }
    }

    pub fn read_bye(payload: &[u8]) -> Option<(u16, String)> {
        let bye = ByeRef::read_lenient(payload)?;
        Some((bye.code, String::from_utf8_lossy(bye.message).into_owned()))
    }
}
use super::*;

const OUR_ID: [u8; 16] = [0xAA; 16];

fn listen() -> SocketAddr {
    "127.0.0.1:6346".parse().expect("addr")
}

fn config() -> CoreConfig {
    let mut c = CoreConfig::new(OUR_ID, listen());
    c.deflate = false;
    c.peers = 0;
    // Small tables keep the hundreds of cores the proptests build cheap.
    c.dedup_capacity = 4096;
    c
}

/// One Core and the peers attached to it.
struct Rig {
    core: Core,
    now: Instant,
    next_id: ConnId,
}

impl Rig {
    fn new(config: CoreConfig) -> Rig {
        let now = Instant::now();
        Rig {
            core: Core::new(config, now),
            now,
            next_id: 1,
        }
    }

    /// An incoming 0.6 peer completing the handshake; its greeting ping is
    /// drained. Returns its connection id.
    fn attach(&mut self) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        let peer: SocketAddr = format!("10.0.0.{id}:5000").parse().expect("addr");
        let greeting = frames(&harness::attach_leaf(&mut self.core, id, peer, self.now));
        // A discovery ping, and the vendor messages we understand.
        assert_eq!(greeting.len(), 2, "{greeting:?}");
        assert_eq!(greeting[0][16], wire::PING);
        assert_eq!(greeting[1][16], hazel_protocol::vendor::VENDOR_TYPE);
        id
    }

    fn send(&mut self, id: ConnId, frame: &[u8]) {
        self.core.on_bytes(id, frame, self.now);
    }

    /// Everything written to `id`.
    fn drain(&mut self, id: ConnId) -> Vec<u8> {
        harness::drain(&mut self.core, id, self.now)
    }

    fn received(&mut self, id: ConnId) -> Vec<Vec<u8>> {
        frames(&self.drain(id))
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.core.poll_action()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
    }
}

/// Splits a byte stream into whole descriptors.
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    harness::frames(bytes)
}

fn id(n: u8) -> [u8; 16] {
    let mut b = [n; 16];
    b[8] = 0xff;
    b[15] = 0;
    b
}

fn query(n: u8, ttl: u8, hops: u8, text: &str) -> Vec<u8> {
    wire::descriptor(
        id(n),
        wire::QUERY,
        ttl,
        hops,
        &wire::query_payload(text, false),
    )
}

fn ping(n: u8, ttl: u8, hops: u8) -> Vec<u8> {
    wire::descriptor(id(n), wire::PING, ttl, hops, &[])
}

fn pong(n: u8, ttl: u8, hops: u8, last_octet: u8) -> Vec<u8> {
    let f = wire::PongFields {
        port: 6346,
        ip: [10, 1, 1, last_octet],
        files: 1,
        kbytes: 2,
    };
    wire::descriptor(id(n), wire::PONG, ttl, hops, &f.payload())
}

fn hit_payload(servent: [u8; 16]) -> Vec<u8> {
    // 1 result "a.txt", no trailer.
    let mut p = vec![1, 0x1a, 0x0b, 10, 9, 9, 9, 0, 0, 0, 0];
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(&100u32.to_le_bytes());
    p.extend_from_slice(b"a.txt\0\0");
    p.extend_from_slice(&servent);
    p
}

fn query_hit(n: u8, ttl: u8, hops: u8, servent: [u8; 16]) -> Vec<u8> {
    wire::descriptor(id(n), wire::QUERY_HIT, ttl, hops, &hit_payload(servent))
}

fn push(n: u8, ttl: u8, hops: u8, servent: [u8; 16]) -> Vec<u8> {
    let f = wire::PushFields {
        servent_id: servent,
        file_index: 7,
        ip: [10, 2, 2, 2],
        port: 6399,
    };
    wire::descriptor(id(n), wire::PUSH, ttl, hops, &f.payload())
}

fn header(frame: &[u8]) -> RawHeader {
    RawHeader::read(frame).expect("header")
}

#[test]
fn query_is_broadcast_to_every_other_neighbour_with_ttl_down_and_hops_up() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let c = rig.attach();
    rig.send(a, &query(1, 3, 1, "hazel"));
    assert!(rig.received(a).is_empty(), "never back to the sender");
    for peer in [b, c] {
        let got = rig.received(peer);
        assert_eq!(got.len(), 1);
        let h = header(&got[0]);
        assert_eq!((h.ttl, h.hops), (2, 2));
        assert_eq!(h.id, id(1));
        assert_eq!(
            &got[0][HEADER_LEN..],
            &query(1, 3, 1, "hazel")[HEADER_LEN..]
        );
    }
    assert_eq!(rig.core.stats().forwarded.query, 2);
}

#[test]
fn a_query_whose_ttl_runs_out_is_not_forwarded() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    rig.send(a, &query(1, 1, 0, "hazel"));
    assert!(rig.received(b).is_empty());
    assert_eq!(rig.core.drop_count(DropReason::TtlExpired), 1);
}

#[test]
fn forwarding_clamps_ttl_plus_hops_to_max_ttl() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    rig.send(a, &query(1, 10, 2, "x"));
    let got = rig.received(b);
    let h = header(&got[0]);
    assert_eq!(h.hops, 3, "hops never lowered");
    assert_eq!(h.ttl, 4, "TTL + hops = 7");
}

#[test]
fn ttl_plus_hops_over_15_and_ttl_zero_are_dropped_unanswered() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    rig.send(a, &query(1, 10, 6, "x"));
    rig.send(a, &ping(2, 0, 3));
    rig.send(a, &ping(3, 0, 0));
    rig.send(a, &ping(4, 9, 7));
    assert!(rig.received(b).is_empty());
    assert!(rig.received(a).is_empty(), "no Pong for dropped pings");
    assert_eq!(rig.core.drop_count(DropReason::TtlHopsOver15), 2);
    assert_eq!(rig.core.drop_count(DropReason::TtlZero), 2);
    // ttl + hops = 15 exactly is fine.
    rig.send(a, &query(5, 8, 7, "x"));
    assert_eq!(rig.core.drop_count(DropReason::TtlHopsOver15), 2);
}

#[test]
fn duplicates_of_ping_query_and_push_are_dropped_but_ids_are_per_type() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let c = rig.attach();
    rig.send(a, &query(1, 3, 0, "x"));
    rig.send(b, &query(1, 3, 0, "x"));
    assert_eq!(rig.received(c).len(), 1);
    assert_eq!(rig.core.drop_count(DropReason::Duplicate), 1);
    // Same id, another type: not a duplicate.
    rig.send(a, &ping(1, 2, 0));
    assert_eq!(rig.received(a).len(), 1, "our Pong");
    assert_eq!(rig.core.drop_count(DropReason::Duplicate), 1);
    // Push duplicates (the route comes from a hit answering a routed query).
    rig.send(b, &query(9, 3, 0, "y"));
    rig.received(a);
    rig.received(c);
    rig.send(a, &query_hit(9, 3, 0, [0x55; 16]));
    rig.received(b);
    rig.send(b, &push(7, 3, 0, [0x55; 16]));
    rig.send(c, &push(7, 3, 0, [0x55; 16]));
    assert_eq!(rig.received(a).len(), 1, "one Push routed");
    assert_eq!(rig.core.drop_count(DropReason::Duplicate), 2);
}

#[test]
fn replies_are_routed_back_and_never_deduplicated() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let c = rig.attach();
    rig.send(a, &query(1, 3, 0, "x"));
    rig.received(b);
    rig.received(c);
    // Two responders answer the same query id.
    rig.send(b, &query_hit(1, 2, 0, [0x11; 16]));
    rig.send(c, &query_hit(1, 2, 0, [0x22; 16]));
    let got = rig.received(a);
    assert_eq!(got.len(), 2);
    assert!(got
        .iter()
        .all(|f| header(f).hops == 1 && header(f).ttl == 1));
    assert!(rig.received(b).is_empty() && rig.received(c).is_empty());
}

#[test]
fn pong_goes_only_to_the_connection_that_delivered_the_ping() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let c = rig.attach();
    rig.send(a, &ping(1, 3, 0));
    rig.received(a);
    assert_eq!(
        rig.received(b).len(),
        1,
        "forwarded: the pong cache is empty"
    );
    rig.received(c);
    rig.send(b, &pong(1, 2, 0, 9));
    assert_eq!(rig.received(a).len(), 1);
    assert!(rig.received(c).is_empty());
    // Unknown ping id: dropped and counted.
    rig.send(b, &pong(99, 2, 0, 9));
    assert_eq!(rig.core.drop_count(DropReason::NoRoute), 1);
}

#[test]
fn a_reply_whose_route_is_gone_is_dropped() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    rig.send(a, &query(1, 3, 0, "x"));
    rig.received(b);
    rig.core.on_closed(a, rig.now);
    rig.send(b, &query_hit(1, 2, 0, [0x11; 16]));
    assert_eq!(rig.core.drop_count(DropReason::RouteGone), 1);
    rig.send(b, &query_hit(2, 2, 0, [0x11; 16]));
    assert_eq!(rig.core.drop_count(DropReason::NoRoute), 1);
}

#[test]
fn push_follows_the_servent_ids_query_hits_and_ours_becomes_an_event() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let c = rig.attach();
    rig.send(a, &query(1, 3, 0, "x"));
    rig.received(b);
    rig.received(c);
    rig.send(c, &query_hit(1, 2, 0, [0x33; 16]));
    rig.received(a);
    rig.send(a, &push(5, 3, 0, [0x33; 16]));
    let got = rig.received(c);
    assert_eq!(got.len(), 1);
    assert_eq!((header(&got[0]).ttl, header(&got[0]).hops), (2, 1));
    assert!(rig.received(b).is_empty());
    // Unknown servent: dropped.
    rig.send(a, &push(6, 3, 0, [0x44; 16]));
    assert_eq!(rig.core.drop_count(DropReason::NoRoute), 1);
    // Our own servent id, for a file we share: a GIV callback request.
    rig.core
        .set_library(Arc::new(shares::Library::new(vec![shared_file(
            7, "seven", 7,
        )])));
    rig.actions();
    rig.send(b, &push(7, 3, 0, OUR_ID));
    let events = rig.actions();
    assert!(events.iter().any(|a| matches!(a,
        Action::Event(CoreEvent::PushRequest(p))
            if p.file_index == 7 && p.addr == "10.2.2.2:6399".parse::<SocketAddr>().expect("addr"))));
}

#[test]
fn query_size_policy() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    rig.send(a, &query(1, 3, 0, &"x".repeat(253)));
    assert_eq!(rig.received(b).len(), 1, "256-byte payload forwarded");
    rig.send(a, &query(2, 3, 0, &"x".repeat(254)));
    assert!(rig.received(b).is_empty(), "257 bytes: not forwarded");
    assert_eq!(rig.core.drop_count(DropReason::QueryNotForwardedTooLong), 1);
    rig.send(a, &query(3, 3, 0, &"x".repeat(4095)));
    assert_eq!(rig.core.drop_count(DropReason::QueryTooLong), 1);
}

#[test]
fn a_query_hit_over_16k_is_not_forwarded() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    rig.send(a, &query(1, 3, 0, "x"));
    rig.received(b);
    let mut p = vec![1, 0x1a, 0x0b, 10, 9, 9, 9, 0, 0, 0, 0];
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&vec![b'n'; 16 * 1024]);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&[0x66; 16]);
    rig.send(b, &wire::descriptor(id(1), wire::QUERY_HIT, 2, 0, &p));
    assert!(rig.received(a).is_empty());
    assert_eq!(rig.core.drop_count(DropReason::QueryHitTooLong), 1);
    assert!(rig.core.has_link(b), "the link stays");
}

#[test]
fn unknown_types_are_skipped_not_forwarded_and_the_stream_stays_in_sync() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let mut bytes = wire::descriptor(id(1), 0x32, 3, 0, &[1, 2, 3, 4, 5]);
    // A vendor message too short to be one: read, counted, not forwarded.
    bytes.extend_from_slice(&wire::descriptor(id(3), 0x31, 1, 0, &[1, 2, 3]));
    bytes.extend_from_slice(&query(2, 3, 0, "after"));
    rig.send(a, &bytes);
    let got = rig.received(b);
    assert_eq!(got.len(), 1);
    assert_eq!(header(&got[0]).payload_type, wire::QUERY);
    assert_eq!(rig.core.drop_count(DropReason::UnknownType), 1);
    assert_eq!(rig.core.proxy_stats().vendor_malformed, 1);
}

#[test]
fn every_ping_gets_our_pong_with_port_zero_when_firewalled() {
    let mut cfg = config();
    cfg.firewalled = true;
    let mut rig = Rig::new(cfg);
    let a = rig.attach();
    rig.send(a, &ping(1, 1, 2));
    let got = rig.received(a);
    assert_eq!(got.len(), 1);
    let h = header(&got[0]);
    assert_eq!(h.payload_type, wire::PONG);
    assert_eq!(h.id, id(1));
    assert_eq!((h.ttl, h.hops), (3, 0), "TTL = ping hops + 1");
    let f = wire::PongFields::read(&got[0][HEADER_LEN..]).expect("pong");
    assert_eq!(f.port, 0);
    assert_eq!(f.ip, [127, 0, 0, 1]);
}

#[test]
fn pings_are_answered_from_a_fresh_pong_cache_instead_of_flooding() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let c = rig.attach();
    // Pongs passing through fill the cache.
    rig.send(a, &ping(1, 3, 0));
    rig.received(a);
    rig.received(c);
    assert_eq!(rig.received(b).len(), 1);
    rig.send(b, &pong(1, 3, 0, 20));
    rig.send(b, &pong(1, 3, 1, 21));
    assert_eq!(rig.received(a).len(), 2);
    // A new ping from c: our pong plus the two cached ones, nothing forwarded.
    rig.send(c, &ping(2, 3, 0));
    let got = rig.received(c);
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|f| header(f).payload_type == wire::PONG && header(f).id == id(2)));
    assert!(rig.received(a).is_empty() && rig.received(b).is_empty());
    assert_eq!(rig.core.stats().pings_answered_from_cache, 1);
    // Once stale, pings flood again.
    rig.now += Duration::from_secs(6);
    rig.send(c, &ping(3, 3, 0));
    assert_eq!(rig.received(a).len(), 1);
}

#[test]
fn every_ping_is_answered_but_a_neighbour_floods_at_most_one_per_3s() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    // gtk's link opening: a TTL-4 then a TTL-2 Ping, back to back.
    rig.send(a, &ping(1, 4, 0));
    rig.send(a, &ping(2, 2, 0));
    let got = rig.received(a);
    let answered: Vec<_> = got
        .iter()
        .map(|f| (header(f).payload_type, header(f).id))
        .collect();
    assert_eq!(answered, vec![(wire::PONG, id(1)), (wire::PONG, id(2))]);
    // Only the first travels on; the second is throttled (not flooded).
    let forwarded = rig.received(b);
    assert_eq!(forwarded.len(), 1);
    assert_eq!(header(&forwarded[0]).id, id(1));
    assert_eq!(rig.core.drop_count(DropReason::PingThrottled), 1);
    rig.now += Duration::from_secs(3);
    rig.send(a, &ping(3, 2, 0));
    assert_eq!(rig.received(a).len(), 1);
    assert_eq!(rig.received(b).len(), 1, "3 s later a ping floods again");
    assert_eq!(rig.core.drop_count(DropReason::PingThrottled), 1);
}

#[test]
fn our_queries_carry_flags_and_configured_ttl_and_hits_become_results() {
    let mut cfg = config();
    cfg.ttl = 4;
    cfg.firewalled = true;
    let mut rig = Rig::new(cfg);
    let a = rig.attach();
    let b = rig.attach();
    let search = rig.core.search("hazel nut", rig.now);
    let got = rig.received(a);
    assert_eq!(got.len(), 1);
    assert_eq!(rig.received(b).len(), 1);
    let h = header(&got[0]);
    assert_eq!((h.ttl, h.hops), (4, 0));
    assert_eq!(&got[0][HEADER_LEN..], b"\xC0\x00hazel nut\x00");
    assert_eq!(h.id[8], 0xff);
    assert_eq!(h.id[15], 0x00);
    let hit = wire::descriptor(h.id, wire::QUERY_HIT, 2, 1, &hit_payload([0x77; 16]));
    rig.send(a, &hit);
    rig.send(b, &hit);
    let results = rig.core.results(Some(search));
    assert_eq!(results.len(), 1, "deduplicated per (servent id, index)");
    assert_eq!(results[0].name, "a.txt");
    assert_eq!(results[0].file_index, 7);
    assert_eq!(results[0].size, 100);
    assert_eq!(
        results[0].addr,
        "10.9.9.9:2842".parse::<SocketAddr>().expect("addr")
    );
    assert!(
        rig.received(a).is_empty() && rig.received(b).is_empty(),
        "ours: consumed"
    );
}

#[test]
fn an_oversized_length_closes_that_link_with_a_bye_and_others_keep_working() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let c = rig.attach();
    let mut bad = wire::descriptor(id(1), wire::QUERY, 3, 0, &[]);
    bad[19..23].copy_from_slice(&(70_000u32).to_le_bytes());
    rig.send(a, &bad);
    let got = rig.received(a);
    assert_eq!(got.len(), 1);
    assert_eq!(header(&got[0]).payload_type, wire::BYE);
    assert_eq!(
        wire::read_bye(&got[0][HEADER_LEN..]).map(|b| b.0),
        Some(400)
    );
    assert!(rig.actions().contains(&Action::Close(a)));
    rig.send(b, &query(2, 3, 0, "still"));
    assert_eq!(rig.received(c).len(), 1);
}

#[test]
fn a_descriptor_split_anywhere_is_routed_once() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let b = rig.attach();
    let mut stream = query(1, 3, 0, "split me");
    stream.extend_from_slice(&query(2, 3, 0, "and me"));
    for cut in 1..stream.len() {
        let mut rig2 = Rig::new(config());
        let a2 = rig2.attach();
        let b2 = rig2.attach();
        rig2.send(a2, &stream[..cut]);
        rig2.send(a2, &stream[cut..]);
        assert_eq!(rig2.received(b2).len(), 2, "cut at {cut}");
    }
    rig.send(a, &stream);
    assert_eq!(rig.received(b).len(), 2);
}

#[test]
fn a_neighbour_that_cannot_drain_query_hits_is_disconnected() {
    let mut cfg = config();
    cfg.send_queue_soft = 1000;
    cfg.send_queue_hard = 2000;
    let mut rig = Rig::new(cfg);
    let a = rig.attach();
    let b = rig.attach();
    for n in 0..40u8 {
        rig.send(a, &query(n, 3, 0, "x"));
    }
    assert!(
        rig.core.drop_count(DropReason::QueueFullQuery) > 0,
        "queries dropped"
    );
    assert!(rig.core.has_link(b));
    for n in 0..40u8 {
        rig.send(b, &query_hit(n, 2, 0, [0x12; 16]));
    }
    assert!(!rig.core.has_link(a));
    assert!(rig.actions().contains(&Action::Close(a)));
}

#[test]
fn full_servent_refuses_with_503_and_x_try() {
    let mut cfg = config();
    cfg.max_peers = 1;
    let mut rig = Rig::new(cfg);
    let mut hosts = HostCache::new(10);
    hosts.add(
        "10.5.5.5:6346".parse().expect("addr"),
        crate::core::hosts::HostSource::User,
        rig.now,
    );
    rig.core.set_host_cache(hosts);
    let _ = rig.attach();
    rig.core.on_connection(
        50,
        Direction::Incoming,
        "10.0.0.50:1".parse().expect("a"),
        rig.now,
    );
    rig.core.on_bytes(
        50,
        b"GNUTELLA CONNECT/0.6\r\nUser-Agent: x\r\n\r\n",
        rig.now,
    );
    let reply = String::from_utf8(rig.drain(50)).expect("text");
    assert!(reply.starts_with("GNUTELLA/0.6 503 "), "{reply}");
    assert!(reply.contains("X-Try: "), "{reply}");
    assert!(reply.contains("10.5.5.5:6346"), "{reply}");
    assert!(rig.actions().contains(&Action::Close(50)));
}

#[test]
fn a_servent_refuses_itself() {
    let mut rig = Rig::new(config());
    rig.core.on_connection(
        9,
        Direction::Incoming,
        "127.0.0.1:4000".parse().expect("a"),
        rig.now,
    );
    let hello = format!(
        "GNUTELLA CONNECT/0.6\r\nGUID: {}\r\nListen-IP: 127.0.0.1:6346\r\n\r\n",
        hex(&OUR_ID)
    );
    rig.core.on_bytes(9, hello.as_bytes(), rig.now);
    let reply = String::from_utf8(rig.drain(9)).expect("text");
    assert!(reply.starts_with("GNUTELLA/0.6 409"), "{reply}");
    // The dialling side (ourselves, under another address) reads our GUID
    // in the refusal and never dials that address again.
    let other: SocketAddr = "192.168.1.5:6346".parse().expect("a");
    rig.core.connect(other, rig.now);
    rig.core
        .on_connection(10, Direction::Outgoing, other, rig.now);
    rig.drain(10);
    rig.core.on_bytes(10, reply.as_bytes(), rig.now);
    rig.actions();
    rig.core.connect(other, rig.now + Duration::from_secs(3600));
    assert!(!rig
        .actions()
        .iter()
        .any(|a| matches!(a, Action::Connect(_))));
    // And never dials its own listen address.
    rig.core.connect(listen(), rig.now);
    assert!(!rig
        .actions()
        .iter()
        .any(|a| matches!(a, Action::Connect(_))));
}

#[test]
fn handshake_0_4_both_ways() {
    let mut rig = Rig::new(config());
    rig.core.on_connection(
        1,
        Direction::Incoming,
        "10.0.0.1:1".parse().expect("a"),
        rig.now,
    );
    rig.core
        .on_bytes(1, b"GNUTELLA CONNECT/0.4\r\n\r\n", rig.now);
    let out = rig.drain(1);
    assert!(out.starts_with(b"GNUTELLA OK\n\n"));
    assert_eq!(rig.core.peers(rig.now)[0].protocol, ProtocolVersion::V04);
    // 0.4 with (unexpected) headers is still 0.4.
    rig.core.on_connection(
        3,
        Direction::Incoming,
        "10.0.0.3:1".parse().expect("a"),
        rig.now,
    );
    rig.core.on_bytes(
        3,
        b"GNUTELLA CONNECT/0.4\r\nUser-Agent: old\r\n\r\n",
        rig.now,
    );
    assert!(rig.drain(3).starts_with(b"GNUTELLA OK\n\n"));

    let mut cfg = config();
    cfg.protocol = ProtocolVersion::V04;
    let mut rig = Rig::new(cfg);
    let addr: SocketAddr = "10.0.0.2:6346".parse().expect("a");
    rig.core.connect(addr, rig.now);
    assert!(rig.actions().contains(&Action::Connect(addr)));
    rig.core
        .on_connection(2, Direction::Outgoing, addr, rig.now);
    assert_eq!(rig.drain(2), b"GNUTELLA CONNECT/0.4\n\n");
    rig.core.on_bytes(2, b"GNUTELLA OK\n\n", rig.now);
    assert_eq!(rig.core.established_ids(), &[2]);
}

#[test]
fn a_handshake_dribbled_one_byte_per_read_still_establishes() {
    let mut rig = Rig::new(config());
    let other = rig.attach();
    let dribbler = 9;
    rig.core.on_connection(
        dribbler,
        Direction::Incoming,
        "10.0.0.9:5000".parse().expect("addr"),
        rig.now,
    );
    let connect = b"GNUTELLA CONNECT/0.6\r\nUser-Agent: dribbler\r\nX-Ultrapeer: False\r\n\r\n";
    for (i, byte) in connect.iter().enumerate() {
        rig.core
            .on_bytes(dribbler, std::slice::from_ref(byte), rig.now);
        if i + 1 < connect.len() {
            assert!(
                rig.drain(dribbler).is_empty(),
                "answered after {} bytes",
                i + 1
            );
        }
    }
    let reply = rig.drain(dribbler);
    assert!(
        reply.starts_with(b"GNUTELLA/0.6 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // The final block and the first descriptor behind it, also one byte per read: the block
    // ends exactly once and the query that follows it is routed.
    let mut rest = b"GNUTELLA/0.6 200 OK\r\n\r\n".to_vec();
    rest.extend_from_slice(&query(7, 3, 1, "dribble"));
    for byte in &rest {
        rig.core
            .on_bytes(dribbler, std::slice::from_ref(byte), rig.now);
    }
    assert!(rig.core.established_ids().contains(&dribbler));
    let greeting = rig.received(dribbler);
    assert_eq!(
        greeting.len(),
        2,
        "a discovery ping and our vendor messages"
    );
    assert_eq!(greeting[0][16], wire::PING);
    let forwarded = rig.received(other);
    assert_eq!(
        forwarded.len(),
        1,
        "the dribbled query reaches the other peer"
    );
    assert_eq!(header(&forwarded[0]).id, id(7));
}

#[test]
fn outgoing_0_6_sends_leaf_headers_and_harvests_x_try_on_refusal() {
    let mut rig = Rig::new(config());
    let addr: SocketAddr = "10.0.0.2:6346".parse().expect("a");
    rig.core.connect(addr, rig.now);
    rig.core
        .on_connection(2, Direction::Outgoing, addr, rig.now);
    let hello = String::from_utf8(rig.drain(2)).expect("text");
    for needed in [
        "GNUTELLA CONNECT/0.6\r\n",
        "X-Ultrapeer: False\r\n",
        "Pong-Caching: 0.1\r\n",
        "Bye-Packet: 0.1\r\n",
        "GGEP: 0.5\r\n",
        "Remote-IP: 10.0.0.2\r\n",
        "User-Agent: Hazel/",
    ] {
        assert!(hello.contains(needed), "missing {needed:?} in {hello}");
    }
    rig.core.on_bytes(
        2,
        b"GNUTELLA/0.6 503 Full\r\nX-Try-Ultrapeers: 10.7.7.7:6346,10.7.7.8:6347\r\n\r\n",
        rig.now,
    );
    assert!(rig.actions().contains(&Action::Close(2)));
    assert!(rig
        .core
        .host_cache()
        .contains(&"10.7.7.8:6347".parse().expect("a")));
}

#[test]
fn keepalive_ping_on_a_quiet_link_and_silent_peers_are_dropped() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    rig.advance(Duration::from_secs(21));
    let got = rig.received(a);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (header(&got[0]).payload_type, header(&got[0]).ttl),
        (wire::PING, 1)
    );
    // The peer answers: the link lives on.
    let h = header(&got[0]);
    rig.send(a, &wire::descriptor(h.id, wire::PONG, 1, 0, &[0; 14]));
    for _ in 0..5 {
        rig.advance(Duration::from_secs(21));
    }
    assert!(rig.core.has_link(a));
    // Then silence for two minutes: Bye 406 and close.
    rig.received(a);
    rig.actions();
    let mut got = Vec::new();
    let mut closed = false;
    for _ in 0..7 {
        rig.advance(Duration::from_secs(20));
        got.extend(rig.received(a));
        closed |= rig.actions().contains(&Action::Close(a));
    }
    let bye = got.iter().find(|f| header(f).payload_type == wire::BYE);
    assert_eq!(
        bye.and_then(|f| wire::read_bye(&f[HEADER_LEN..]))
            .map(|b| b.0),
        Some(406)
    );
    assert!(closed);
}

#[test]
fn handshake_timeout_closes() {
    let mut rig = Rig::new(config());
    rig.core.on_connection(
        1,
        Direction::Incoming,
        "10.0.0.1:1".parse().expect("a"),
        rig.now,
    );
    rig.core.on_bytes(1, b"GNUTELLA CONN", rig.now);
    rig.advance(Duration::from_secs(21));
    assert!(rig.actions().contains(&Action::Close(1)));
}

#[test]
fn shutdown_sends_bye_to_peers_that_announced_it() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    rig.core.shutdown(rig.now);
    let got = rig.received(a);
    assert_eq!(got.len(), 1);
    assert_eq!(header(&got[0]).payload_type, wire::BYE);
    assert_eq!((header(&got[0]).ttl, header(&got[0]).hops), (1, 0));
    assert!(rig.actions().contains(&Action::Close(a)));
    assert!(rig.core.is_shut_down());
}

#[test]
fn keeps_peers_outgoing_connections_from_the_host_cache_with_backoff() {
    let mut cfg = config();
    cfg.peers = 2;
    let mut rig = Rig::new(cfg);
    let mut hosts = HostCache::new(10);
    for n in 1..=3u8 {
        hosts.add(
            format!("10.3.3.{n}:6346").parse().expect("a"),
            crate::core::hosts::HostSource::User,
            rig.now,
        );
    }
    rig.core.set_host_cache(hosts);
    rig.advance(Duration::from_secs(1));
    let dials: Vec<SocketAddr> = rig
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Connect(addr) => Some(addr),
            _ => None,
        })
        .collect();
    assert_eq!(dials.len(), 2);
    rig.core.on_connect_failed(dials[0], "refused", rig.now);
    rig.advance(Duration::from_secs(1));
    let again: Vec<Action> = rig.actions();
    assert_eq!(again.len(), 1, "one replacement dial");
    assert!(
        !again.contains(&Action::Connect(dials[0])),
        "the failed host backs off"
    );
}

fn shared_file(index: u32, name: &str, size: u64) -> shares::SharedFile {
    shares::SharedFile {
        index,
        name: name.to_string(),
        rel_path: name.into(),
        path: name.into(),
        size,
        mtime: std::time::SystemTime::UNIX_EPOCH,
        sha1: Some([index as u8; 20]),
        tiger: None,
    }
}

fn library() -> Arc<shares::Library> {
    let file = shared_file;
    Arc::new(shares::Library::new(vec![
        file(1, "hazel nut song.mp3", 4096),
        file(2, "other.txt", 2048),
    ]))
}

#[test]
fn queries_for_us_are_answered_with_hops_0_and_ttl_query_hops_plus_1() {
    let mut rig = Rig::new(config());
    rig.core.set_library(library());
    let a = rig.attach();
    rig.send(a, &query(1, 5, 2, "hazel song"));
    let got = rig.received(a);
    assert_eq!(got.len(), 1);
    let h = header(&got[0]);
    assert_eq!(h.payload_type, wire::QUERY_HIT);
    assert_eq!(h.id, id(1));
    assert_eq!((h.ttl, h.hops), (3, 0));
    let hit = hazel_protocol::descriptor::QueryHit::parse(&got[0][HEADER_LEN..]).expect("hit");
    assert_eq!(hit.servent_id.0, OUR_ID);
    assert_eq!(hit.results.len(), 1);
    assert_eq!(hit.results[0].index, 1);
    assert_eq!(hit.port, 6346);
    // Capped at max TTL.
    rig.send(a, &query(2, 1, 9, "hazel"));
    let got = rig.received(a);
    assert_eq!((header(&got[0]).ttl, header(&got[0]).hops), (7, 0));
    // No match: no hit.
    rig.send(a, &query(3, 5, 0, "absent"));
    assert!(rig.received(a).is_empty());
}

#[test]
fn our_pong_reports_the_librarys_files_and_kilobytes() {
    let mut rig = Rig::new(config());
    rig.core.set_library(library());
    let a = rig.attach();
    rig.send(a, &ping(1, 1, 0));
    let got = rig.received(a);
    let f = wire::PongFields::read(&got[0][HEADER_LEN..]).expect("pong");
    assert_eq!((f.files, f.kbytes), (2, 6));
    assert_eq!(f.port, 6346);
}

#[test]
fn a_second_link_to_the_same_servent_is_refused() {
    let mut rig = Rig::new(config());
    let hello = "GNUTELLA CONNECT/0.6\r\nGUID: 0123456789abcdef0123456789abcdef\r\n\r\n";
    rig.core.on_connection(
        1,
        Direction::Incoming,
        "10.0.0.1:1".parse().expect("a"),
        rig.now,
    );
    rig.core.on_bytes(1, hello.as_bytes(), rig.now);
    assert!(rig.drain(1).starts_with(b"GNUTELLA/0.6 200"));
    rig.core
        .on_bytes(1, b"GNUTELLA/0.6 200 OK\r\n\r\n", rig.now);
    rig.core.on_connection(
        2,
        Direction::Incoming,
        "10.0.0.1:2".parse().expect("a"),
        rig.now,
    );
    rig.core.on_bytes(2, hello.as_bytes(), rig.now);
    assert!(rig.drain(2).starts_with(b"GNUTELLA/0.6 409"));
    assert_eq!(rig.core.established_ids(), &[1]);
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any bytes during the handshake: no panic, bounded buffering.
        #[test]
        fn any_handshake_bytes(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..400), 1..6)) {
            let mut rig = Rig::new(config());
            rig.core.on_connection(1, Direction::Incoming, "10.0.0.1:1".parse().expect("a"), rig.now);
            for c in &chunks {
                rig.core.on_bytes(1, c, rig.now);
                rig.drain(1);
            }
            if let Some(conn) = rig.core.links.get(1) {
                prop_assert!(conn.inbuf.len() <= hazel_protocol::handshake::MAX_HANDSHAKE_HEAD);
            }
        }

        /// Any bytes on an established link (descriptor headers with
        /// arbitrary fields, or garbage): no panic, the other link survives,
        /// the input buffer stays under one maximal descriptor.
        #[test]
        fn any_descriptor_bytes(
            frames in proptest::collection::vec(
                (any::<[u8; 16]>(), any::<u8>(), any::<u8>(), any::<u8>(),
                 proptest::collection::vec(any::<u8>(), 0..80), any::<bool>()), 0..12),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut rig = Rig::new(config());
            rig.core.set_library(library());
            let a = rig.attach();
            let b = rig.attach();
            let mut stream = Vec::new();
            for (id, ty, ttl, hops, payload, known) in &frames {
                let ty = if *known {
                    [wire::PING, wire::PONG, wire::BYE, wire::PUSH, wire::QUERY, wire::QUERY_HIT][usize::from(*ty) % 6]
                } else {
                    *ty
                };
                stream.extend_from_slice(&wire::descriptor(*id, ty, *ttl, *hops, payload));
            }
            stream.extend_from_slice(&garbage);
            for piece in stream.chunks(37) {
                rig.core.on_bytes(a, piece, rig.now);
                rig.drain(a);
                rig.drain(b);
            }
            if let Some(conn) = rig.core.links.get(a) {
                prop_assert!(conn.inbuf.len() < HEADER_LEN + wire::MAX_PAYLOAD_LEN);
            }
            prop_assert!(rig.core.has_link(b));
        }

        /// A deflate link fed arbitrary bytes: closed or fine, never a panic.
        #[test]
        fn any_bytes_on_a_deflate_link(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut cfg = config();
            cfg.deflate = true;
            let mut rig = Rig::new(cfg);
            rig.core.on_connection(1, Direction::Incoming, "10.0.0.1:1".parse().expect("a"), rig.now);
            rig.core.on_bytes(1, b"GNUTELLA CONNECT/0.6\r\nAccept-Encoding: deflate\r\n\r\n", rig.now);
            rig.drain(1);
            rig.core.on_bytes(1, b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n", rig.now);
            rig.core.on_bytes(1, &bytes, rig.now);
            rig.drain(1);
        }
    }
}

#[test]
fn deflate_links_carry_descriptors_both_ways() {
    let mut cfg = config();
    cfg.deflate = true;
    let mut rig = Rig::new(cfg);
    rig.core.on_connection(
        1,
        Direction::Incoming,
        "10.0.0.1:1".parse().expect("a"),
        rig.now,
    );
    rig.core.on_bytes(
        1,
        b"GNUTELLA CONNECT/0.6\r\nAccept-Encoding: deflate\r\n\r\n",
        rig.now,
    );
    let reply = String::from_utf8(rig.drain(1)).expect("text");
    assert!(reply.contains("Content-Encoding: deflate\r\n"), "{reply}");
    // Our final block says we compress too; the descriptor follows in the same read.
    let mut compressed = Vec::with_capacity(1024);
    hazel_protocol::framer::Deflater::new().compress_batch(&ping(1, 1, 0), &mut compressed);
    let mut bytes = b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n".to_vec();
    bytes.extend_from_slice(&compressed);
    rig.core.on_bytes(1, &bytes, rig.now);
    let out = rig.drain(1);
    let mut inflater = hazel_protocol::framer::Inflater::new();
    inflater.push(&out);
    let mut plain = Vec::with_capacity(4096);
    while inflater.inflate(&mut plain, 4096).expect("inflate") > 0 {}
    let got = frames(&plain);
    // Our Pong for the peer's ping (sent first: Pongs outrank Pings), then
    // our discovery ping and the vendor messages we understand.
    assert_eq!(got.len(), 3);
    assert_eq!(header(&got[0]).payload_type, wire::PONG);
    assert_eq!(header(&got[0]).id, id(1));
    assert_eq!(header(&got[1]).payload_type, wire::PING);
    assert_eq!(got[2][16], hazel_protocol::vendor::VENDOR_TYPE);
}

#[test]
fn a_busy_peer_that_never_answers_our_pings_is_dropped() {
    let mut rig = Rig::new(config());
    let a = rig.attach();
    let mut closed = false;
    let mut byes = 0;
    // The peer keeps talking (queries) but never sends a Pong.
    for n in 0..20u8 {
        rig.send(a, &query(n, 1, 0, "chatter"));
        rig.advance(Duration::from_secs(10));
        byes += rig
            .received(a)
            .iter()
            .filter(|f| header(f).payload_type == wire::BYE)
            .count();
        closed |= rig.actions().contains(&Action::Close(a));
        if closed {
            break;
        }
    }
    assert!(closed, "dropped for not answering");
    assert_eq!(byes, 1);
}

/// An incoming 0.6 peer that says it is an ultrapeer; returns its id and
/// what we sent it once the link was up.
fn attach_ultrapeer(rig: &mut Rig) -> (ConnId, Vec<Vec<u8>>) {
    let id = rig.next_id;
    rig.next_id += 1;
    let peer: SocketAddr = format!("10.0.1.{id}:5000").parse().expect("addr");
    rig.core
        .on_connection(id, Direction::Incoming, peer, rig.now);
    let connect =
        "GNUTELLA CONNECT/0.6\r\nUser-Agent: gtk-gnutella/1.2.2\r\nX-Ultrapeer: True\r\n\r\n";
    rig.core.on_bytes(id, connect.as_bytes(), rig.now);
    let reply = rig.drain(id);
    assert!(reply.starts_with(b"GNUTELLA/0.6 200 OK\r\n"));
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.contains("\r\nX-Query-Routing: 0.1\r\n"),
        "we say we send a QRP table: {text}"
    );
    rig.core
        .on_bytes(id, b"GNUTELLA/0.6 200 OK\r\n\r\n", rig.now);
    (id, rig.received(id))
}

/// The QRP messages among `frames`, checked to be hops 0 / TTL 1.
fn qrp_messages(frames: &[Vec<u8>]) -> Vec<hazel_protocol::qrp::QrpMessage> {
    frames
        .iter()
        .filter(|f| header(f).payload_type == hazel_protocol::qrp::PAYLOAD_TYPE)
        .map(|f| {
            assert_eq!((header(f).ttl, header(f).hops), (1, 0));
            hazel_protocol::qrp::QrpMessage::decode(&f[HEADER_LEN..]).expect("our QRP decodes")
        })
        .collect()
}

#[test]
fn ultrapeers_get_our_query_routing_table_and_its_changes_as_patches() {
    use hazel_protocol::qrp::{QrpMessage, QrpReceiver};
    let mut rig = Rig::new(config());
    rig.core.set_library(library());
    let leaf = rig.attach();
    let (up, greeting) = attach_ultrapeer(&mut rig);
    let sent = qrp_messages(&greeting);
    assert!(
        matches!(
            sent.first(),
            Some(QrpMessage::Reset {
                table_length: 16384,
                infinity: 2
            })
        ),
        "{sent:?}"
    );
    assert!(sent.len() >= 2, "a reset and at least one patch");
    let mut ultrapeer = QrpReceiver::new();
    for m in &sent {
        ultrapeer.apply(m).expect("our table applies");
    }
    let table = ultrapeer.table().expect("table").clone();
    // Every word a matching query may use: whole keywords, their prefixes
    // (the library matches prefixes), the file's URN.
    for word in ["hazel", "haz", "nut", "song", "mp3", "other", "txt"] {
        assert!(table.contains_word(word), "{word}");
    }
    let urn = format!(
        "urn:sha1:{}",
        data_encoding::BASE32_NOPAD.encode(&[1u8; 20])
    );
    assert!(table.contains_word(&urn));
    assert!(!table.contains_word("walnut"));
    assert_eq!(rig.core.stats().qrp_sent, sent.len() as u64);
    assert!(
        qrp_messages(&rig.received(leaf)).is_empty(),
        "leaves get none"
    );

    // Nothing changes: nothing more is sent.
    rig.advance(Duration::from_secs(1));
    assert!(qrp_messages(&rig.received(up)).is_empty());

    // The library changes: a diff patch (no reset) at the next tick.
    let walnut = shares::SharedFile {
        index: 3,
        name: "Walnut.txt".into(),
        rel_path: "Walnut.txt".into(),
        path: "/shares/Walnut.txt".into(),
        size: 10,
        mtime: std::time::SystemTime::UNIX_EPOCH,
        sha1: None,
        tiger: None,
    };
    rig.core
        .set_library(Arc::new(shares::Library::new(vec![walnut])));
    rig.advance(Duration::from_secs(1));
    let diff = qrp_messages(&rig.received(up));
    assert!(!diff.is_empty());
    assert!(diff.iter().all(|m| matches!(m, QrpMessage::Patch { .. })));
    for m in &diff {
        ultrapeer.apply(m).expect("diff applies");
    }
    let table = ultrapeer.table().expect("table");
    assert!(table.contains_word("walnut") && table.contains_word("wal"));
    assert!(!table.contains_word("hazel") && !table.contains_word(&urn));
    assert!(qrp_messages(&rig.received(leaf)).is_empty());
    assert_eq!(rig.core.stats().qrp_sent, (sent.len() + diff.len()) as u64);

    // A peer's QRP is never forwarded.
    let reset = QrpMessage::Reset {
        table_length: 1024,
        infinity: 7,
    };
    rig.send(
        leaf,
        &wire::descriptor(
            id(9),
            hazel_protocol::qrp::PAYLOAD_TYPE,
            1,
            0,
            &reset.encode(),
        ),
    );
    assert!(rig.received(up).is_empty());
}

#[test]
fn a_g2_hubs_200_is_declined_and_the_link_closed() {
    let mut rig = Rig::new(config());
    let addr: SocketAddr = "10.0.0.2:6346".parse().expect("a");
    rig.core.connect(addr, rig.now);
    rig.core
        .on_connection(2, Direction::Outgoing, addr, rig.now);
    rig.drain(2);
    // Shareaza's hub answer (as captured): a 200 whose stream would be G2.
    rig.core.on_bytes(
        2,
        b"GNUTELLA/0.6 200 OK\r\nUser-Agent: Shareaza 2.7.10.2\r\nAccept: application/x-gnutella2\r\n\
Content-Type: application/x-gnutella2\r\nX-Hub: True\r\nX-Ultrapeer: True\r\n\r\n",
        rig.now,
    );
    let third = String::from_utf8(rig.drain(2)).expect("text");
    assert!(third.starts_with("GNUTELLA/0.6 406 "), "{third}");
    assert!(rig.core.established_ids().is_empty());
    rig.advance(Duration::from_secs(10));
    assert!(rig.actions().contains(&Action::Close(2)));
    assert!(!rig.core.host_cache().contains(&addr));
}

mod hostile;
