//! A deterministic, sans-IO network of servent cores: the one harness behind
//! the unit tests, the simulations, the benches, the `core_stream` fuzz target
//! and `hazel-lab`.
//!
//! - [`Net`]: N [`Core`]s joined by in-memory links. Virtual time (no clock is
//!   read: time moves only when the caller advances it), a latency per link
//!   drawn from a seeded generator when the link opens, and deliveries in a
//!   single time-ordered queue, so a run is the same for the same seed and the
//!   same calls. Every byte passes through the cores' real handshakes,
//!   framing and (when negotiated) deflate. Bandwidth is unlimited: whatever a
//!   core writes arrives whole after the link's latency.
//! - One core driven by hand ([`attach_leaf`], [`drain`], [`frames`]): a test
//!   peer that speaks raw handshake and descriptor bytes, for unit tests,
//!   benches and fuzzing of a single core.
//!
//! Sizes: a core's tables are sized by its [`CoreConfig`]; with small tables
//! (`dedup_capacity` in the hundreds, `host_cache_capacity` in the tens) a
//! `Net` holds a hundred thousand cores in a few GiB.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hazel_protocol::framer::Framer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::{Action, ConnId, Core, CoreConfig, CoreEvent, Direction};

/// A core's place in a [`Net`].
pub type NodeId = usize;

/// Everything a core wrote on `id` until its output was empty.
pub fn drain(core: &mut Core, id: ConnId, now: Instant) -> Vec<u8> {
    let mut all = Vec::new();
    drain_into(core, id, now, &mut all);
    all
}

/// [`drain`] appending to `all`.
fn drain_into(core: &mut Core, id: ConnId, now: Instant, all: &mut Vec<u8>) {
    // Bounded: a core's output is finite (its queues are).
    for _ in 0..100_000 {
        let out = core.output(id);
        if out.is_empty() {
            break;
        }
        let n = out.len();
        all.extend_from_slice(out);
        core.consume_output(id, n, now);
    }
}

/// Consumes everything a core wrote on `id` without copying it (a socket
/// that drains as fast as the core writes); how many bytes.
pub fn discard(core: &mut Core, id: ConnId, now: Instant) -> usize {
    let mut total = 0;
    for _ in 0..100_000 {
        let n = core.output(id).len();
        if n == 0 {
            break;
        }
        total += n;
        core.consume_output(id, n, now);
    }
    total
}

/// A descriptor stream split into whole descriptors (header and payload).
/// Panics if the stream does not end on a descriptor boundary or is out of
/// sync: for tests, where either is a bug.
pub fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut framer = Framer::new();
    framer
        .feed(bytes, &mut Vec::new(), |f| {
            out.push(f.bytes.to_vec());
            true
        })
        .expect("a descriptor stream in sync");
    assert_eq!(framer.buffered(), 0, "stream ends on a descriptor boundary");
    out
}

/// The CONNECT a test leaf sends (0.6, Bye-Packet, a `Listen-IP`).
pub fn leaf_connect(listen: SocketAddr) -> String {
    format!(
        "GNUTELLA CONNECT/0.6\r\nUser-Agent: harness\r\nBye-Packet: 0.1\r\nX-Ultrapeer: False\r\nListen-IP: {listen}\r\n\r\n"
    )
}

/// Opens connection `id` from a hand-driven leaf at `peer` to `core`, plays
/// the 0.6 handshake, and returns what the core sent after it (its greeting
/// Ping). Panics if the core refuses.
pub fn attach_leaf(core: &mut Core, id: ConnId, peer: SocketAddr, now: Instant) -> Vec<u8> {
    core.on_connection(id, Direction::Incoming, peer, now);
    let listen = SocketAddr::new(peer.ip(), 6346);
    core.on_bytes(id, leaf_connect(listen).as_bytes(), now);
    let reply = drain(core, id, now);
    assert!(
        reply.starts_with(b"GNUTELLA/0.6 200"),
        "refused: {}",
        String::from_utf8_lossy(&reply)
    );
    core.on_bytes(id, b"GNUTELLA/0.6 200 OK\r\n\r\n", now);
    drain(core, id, now)
}

/// One end of an in-memory connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct End {
    pub node: NodeId,
    pub conn: ConnId,
}

/// How long bytes take on a link: `base`, plus up to `jitter` drawn per link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub base: Duration,
    pub jitter: Duration,
}

impl Latency {
    pub const ZERO: Latency = Latency {
        base: Duration::ZERO,
        jitter: Duration::ZERO,
    };
}

#[derive(Debug)]
enum Delivery {
    /// A connect from `from` to `to` arrives: both ends open.
    Open {
        from: End,
        to: End,
        addr: SocketAddr,
    },
    Bytes {
        to: End,
        bytes: Vec<u8>,
    },
    Closed {
        to: End,
    },
    /// A core's timer.
    Timer {
        node: NodeId,
    },
}

/// Counts of what crossed the links.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Writes delivered (each a batch of descriptors, or a handshake block).
    pub deliveries: u64,
    pub bytes: u64,
    pub links_opened: u64,
}

/// N cores on in-memory links (see the module doc).
pub struct Net {
    /// Virtual time now.
    pub now: Instant,
    /// Virtual time at the start.
    pub start: Instant,
    pub cores: Vec<Core>,
    by_addr: HashMap<SocketAddr, NodeId>,
    /// The other end and the latency of each open link's ends, indexed by
    /// connection id (ids are the harness's, dense and never reused).
    links: Vec<Option<(End, Duration)>>,
    open_links: usize,
    /// Emptied delivery buffers, for the next writes.
    spare_buffers: Vec<Vec<u8>>,
    /// (virtual nanoseconds since `start`, sequence, slot): plain integers
    /// compare faster than `Instant`s and make a smaller heap.
    queue: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// Deliveries by slot; the heap orders (time, sequence, slot).
    slots: Vec<Option<Delivery>>,
    free_slots: Vec<usize>,
    seq: u64,
    next_conn: ConnId,
    latency: Latency,
    rng: StdRng,
    /// Events per node, kept when `keep_events` is on.
    pub events: Vec<Vec<CoreEvent>>,
    keep_events: bool,
    timers_armed: Vec<bool>,
    /// Deliveries queued that are not timers (opens, bytes, closes).
    in_flight: usize,
    pub traffic: Traffic,
    /// Nodes that had something delivered since [`Net::take_touched`], when
    /// tracking is on: a large run reads the counters of those alone.
    touched: Vec<NodeId>,
    is_touched: Vec<bool>,
    track_touched: bool,
}

impl Net {
    /// An empty network whose randomness (per-link latency) comes from `seed`.
    pub fn new(seed: u64) -> Net {
        // Any fixed instant will do: time only moves when the caller says so.
        let now = Instant::now();
        Net {
            now,
            start: now,
            cores: Vec::new(),
            by_addr: HashMap::new(),
            links: Vec::new(),
            open_links: 0,
            spare_buffers: Vec::new(),
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            seq: 0,
            next_conn: 1,
            latency: Latency::ZERO,
            rng: StdRng::seed_from_u64(seed),
            events: Vec::new(),
            keep_events: true,
            timers_armed: Vec::new(),
            in_flight: 0,
            traffic: Traffic::default(),
            touched: Vec::new(),
            is_touched: Vec::new(),
            track_touched: false,
        }
    }

    /// The latency of links opened from now on.
    pub fn set_latency(&mut self, latency: Latency) {
        self.latency = latency;
    }

    /// Whether events are kept in [`Net::events`] (off for large runs).
    pub fn keep_events(&mut self, keep: bool) {
        self.keep_events = keep;
    }

    /// Whether nodes that get deliveries are remembered for
    /// [`Net::take_touched`] (off by default).
    pub fn track_touched(&mut self, track: bool) {
        self.track_touched = track;
        self.touched.clear();
        self.is_touched.iter_mut().for_each(|t| *t = false);
    }

    /// The nodes that had a delivery (bytes, an open, a close or a timer)
    /// since the last call, each once, in the order they first had one.
    pub fn take_touched(&mut self) -> Vec<NodeId> {
        for &node in &self.touched {
            self.is_touched[node] = false;
        }
        std::mem::take(&mut self.touched)
    }

    fn touch(&mut self, node: NodeId) {
        if self.track_touched && !self.is_touched[node] {
            self.is_touched[node] = true;
            self.touched.push(node);
        }
    }

    /// Adds a core listening at `config.listen_addr`; its id.
    pub fn add(&mut self, config: CoreConfig) -> NodeId {
        let node = self.cores.len();
        self.by_addr.insert(config.listen_addr, node);
        self.cores.push(Core::new(config, self.now));
        self.events.push(Vec::new());
        self.timers_armed.push(false);
        self.is_touched.push(false);
        node
    }

    /// A listen address for node number `n` (10.x.y.1:6346), unique per `n`.
    pub fn address_for(n: usize) -> SocketAddr {
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)),
            6346,
        )
    }

    /// Where node `node` listens.
    pub fn addr_of(&self, node: NodeId) -> SocketAddr {
        self.cores[node].config().listen_addr
    }

    /// The node listening at `addr`.
    pub fn node_at(&self, addr: &SocketAddr) -> Option<NodeId> {
        self.by_addr.get(addr).copied()
    }

    /// `from` dials `to`; the link opens after its latency (run the net).
    pub fn dial(&mut self, from: NodeId, to: NodeId) {
        let addr = self.addr_of(to);
        let now = self.now;
        self.cores[from].connect(addr, now);
        self.pump(from);
    }

    /// Arms the timers of every core (housekeeping: keep-alive, upkeep).
    /// Without it, cores only act on what they receive.
    pub fn start_timers(&mut self) {
        for node in 0..self.cores.len() {
            self.arm_timer(node);
        }
    }

    fn arm_timer(&mut self, node: NodeId) {
        if self.timers_armed[node] {
            return;
        }
        if let Some(at) = self.cores[node].poll_timeout() {
            self.timers_armed[node] = true;
            let at = at.max(self.now);
            self.schedule(at, Delivery::Timer { node });
        }
    }

    fn schedule(&mut self, at: Instant, delivery: Delivery) {
        if !matches!(delivery, Delivery::Timer { .. }) {
            self.in_flight += 1;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot] = Some(delivery);
                slot
            }
            None => {
                self.slots.push(Some(delivery));
                self.slots.len() - 1
            }
        };
        self.seq += 1;
        self.queue
            .push(Reverse((self.nanos(at), self.seq, slot as u32)));
    }

    /// Virtual time `at` as nanoseconds since the start.
    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_nanos() as u64
    }

    /// Carries out what `node`'s core asks until it is quiet.
    pub fn pump(&mut self, node: NodeId) {
        // Bounded: each input gives a finite number of actions.
        for _ in 0..1_000_000 {
            let Some(action) = self.cores[node].poll_action() else {
                return;
            };
            match action {
                Action::Connect(addr) => self.connect(node, addr),
                // Cores serve no files in the harness: downloads find nobody.
                Action::ConnectTransfer(addr) => {
                    let now = self.now;
                    self.cores[node].on_transfer_connect_failed(
                        addr,
                        "no file transfers in the harness",
                        now,
                    );
                }
                Action::PauseReading(_)
                | Action::ResumeReading(_)
                | Action::Disk(_)
                | Action::SendDatagram(..) => {}
                // No names and no web caches in the harness.
                Action::Resolve { token, .. } => {
                    let now = self.now;
                    self.cores[node].on_resolved(token, Err("no DNS in the harness".into()), now);
                }
                // No index servers in the harness.
                Action::ConnectIndex(addr) => {
                    let now = self.now;
                    self.cores[node].on_index_connect_failed(addr, "no index in the harness", now);
                }
                Action::ConnectNapsterData(addr) => {
                    self.cores[node]
                        .on_napster_data_connect_failed(addr, "no data ports in the harness");
                }
                Action::NapsterPush(_) | Action::NapsterListPush(..) => {}
                Action::ConnectCache(addr) => {
                    let now = self.now;
                    self.cores[node].on_cache_connect_failed(addr, "no web in the harness", now);
                }
                Action::WantWrite(conn) => self.flush(End { node, conn }),
                Action::Close(conn) => self.close(End { node, conn }),
                Action::Event(event) => {
                    if self.keep_events {
                        self.events[node].push(event);
                    }
                }
            }
        }
        panic!("node {node} produced an unbounded number of actions");
    }

    fn connect(&mut self, node: NodeId, addr: SocketAddr) {
        let Some(to) = self.node_at(&addr) else {
            let now = self.now;
            self.cores[node].on_connect_failed(addr, "connection refused", now);
            return;
        };
        let from = End {
            node,
            conn: self.next_conn,
        };
        let to = End {
            node: to,
            conn: self.next_conn + 1,
        };
        self.next_conn += 2;
        let jitter = self.latency.jitter.as_nanos() as u64;
        let extra = if jitter == 0 {
            0
        } else {
            self.rng.gen_range(0..=jitter)
        };
        let latency = self.latency.base + Duration::from_nanos(extra);
        let last = to.conn as usize;
        if self.links.len() <= last {
            self.links.resize(last + 1, None);
        }
        self.links[from.conn as usize] = Some((to, latency));
        self.links[to.conn as usize] = Some((from, latency));
        self.open_links += 1;
        self.schedule(self.now + latency, Delivery::Open { from, to, addr });
    }

    /// The other end of `end`'s link and its latency, while it is open.
    fn link(&self, end: End) -> Option<(End, Duration)> {
        self.links
            .get(end.conn as usize)
            .copied()
            .flatten()
            .filter(|(to, _)| self.links[to.conn as usize].is_some_and(|(e, _)| e == end))
    }

    /// Moves what `end` wrote to the other end, arriving after the latency.
    fn flush(&mut self, end: End) {
        let now = self.now;
        let mut bytes = self.spare_buffers.pop().unwrap_or_default();
        drain_into(&mut self.cores[end.node], end.conn, now, &mut bytes);
        match self.link(end) {
            Some((to, latency)) if !bytes.is_empty() => {
                self.schedule(now + latency, Delivery::Bytes { to, bytes });
            }
            _ => self.spare(bytes),
        }
    }

    /// Keeps an emptied buffer for a later write (a bounded number of them,
    /// none very large).
    fn spare(&mut self, mut bytes: Vec<u8>) {
        if self.spare_buffers.len() < 4096 && bytes.capacity() <= 64 * 1024 {
            bytes.clear();
            self.spare_buffers.push(bytes);
        }
    }

    fn close(&mut self, end: End) {
        if let Some((to, latency)) = self.link(end) {
            self.links[end.conn as usize] = None;
            self.links[to.conn as usize] = None;
            self.open_links -= 1;
            self.schedule(self.now + latency, Delivery::Closed { to });
        }
    }

    /// Runs every delivery and timer due up to `until`, in time order; false
    /// when `max_steps` ran out first.
    pub fn run_until(&mut self, until: Instant, max_steps: usize) -> bool {
        let until_ns = self.nanos(until);
        for _ in 0..max_steps {
            match self.queue.peek() {
                Some(Reverse((at, _, _))) if *at <= until_ns => {}
                _ => {
                    self.now = self.now.max(until);
                    return true;
                }
            }
            let Some(Reverse((at, _, slot))) = self.queue.pop() else {
                break;
            };
            self.now = self.now.max(self.start + Duration::from_nanos(at));
            let slot = slot as usize;
            let Some(delivery) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            self.free_slots.push(slot);
            if !matches!(delivery, Delivery::Timer { .. }) {
                self.in_flight -= 1;
            }
            self.deliver(delivery);
        }
        false
    }

    /// Advances virtual time by `d`, running everything due.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        let done = self.run_until(until, usize::MAX);
        debug_assert!(done);
    }

    /// Runs until no bytes, opens or closes are in flight (timers that fall
    /// due meanwhile run too); false when `max_steps` ran out first.
    pub fn settle(&mut self, max_steps: usize) -> bool {
        for _ in 0..max_steps {
            if self.in_flight == 0 {
                return true;
            }
            let Some(Reverse((at, _, _))) = self.queue.peek() else {
                return true;
            };
            let at = self.start + Duration::from_nanos(*at);
            self.run_until(at, 1);
        }
        self.in_flight == 0
    }

    fn deliver(&mut self, delivery: Delivery) {
        let now = self.now;
        match delivery {
            Delivery::Open { from, to, addr } => {
                if self.link(from).is_none() {
                    return;
                }
                self.traffic.links_opened += 1;
                self.touch(to.node);
                self.touch(from.node);
                // The acceptor sees the dialler's address with an ephemeral port.
                let seen_as = SocketAddr::new(self.addr_of(from.node).ip(), 40_000);
                self.cores[to.node].on_connection(to.conn, Direction::Incoming, seen_as, now);
                self.cores[from.node].on_connection(from.conn, Direction::Outgoing, addr, now);
                self.pump(to.node);
                self.pump(from.node);
            }
            Delivery::Bytes { to, bytes } => {
                if self.link(to).is_none() {
                    self.spare(bytes);
                    return;
                }
                self.traffic.deliveries += 1;
                self.traffic.bytes += bytes.len() as u64;
                self.touch(to.node);
                self.cores[to.node].on_bytes(to.conn, &bytes, now);
                self.spare(bytes);
                self.pump(to.node);
            }
            Delivery::Closed { to } => {
                self.touch(to.node);
                self.cores[to.node].on_closed(to.conn, now);
                self.pump(to.node);
            }
            Delivery::Timer { node } => {
                self.timers_armed[node] = false;
                self.touch(node);
                self.cores[node].handle_timeout(now);
                self.pump(node);
                self.arm_timer(node);
            }
        }
    }

    /// Takes the events `node` produced so far.
    pub fn take_events(&mut self, node: NodeId) -> Vec<CoreEvent> {
        std::mem::take(&mut self.events[node])
    }

    /// Links open now (each counted once).
    pub fn link_count(&self) -> usize {
        self.open_links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: usize) -> CoreConfig {
        let mut id = [0x5e; 16];
        id[..8].copy_from_slice(&(n as u64).to_le_bytes());
        let mut c = CoreConfig::new(id, Net::address_for(n));
        c.peers = 0;
        c.dedup_capacity = 256;
        c.seed = n as u64;
        c
    }

    #[test]
    fn a_line_links_up_and_a_query_travels_with_the_links_latency() {
        let mut net = Net::new(1);
        net.set_latency(Latency {
            base: Duration::from_millis(50),
            jitter: Duration::ZERO,
        });
        let nodes: Vec<NodeId> = (0..4).map(|n| net.add(config(n))).collect();
        for w in nodes.windows(2) {
            net.dial(w[0], w[1]);
        }
        assert!(net.settle(100_000));
        assert_eq!(net.link_count(), 3);
        assert!(net.cores.iter().all(|c| !c.established_ids().is_empty()));
        let start = net.now;
        let now = net.now;
        net.cores[0].search_with_ttl("anything", 3, now);
        net.pump(0);
        // One hop per 50 ms: the far end sees the query after 150 ms, not before.
        net.run_until(start + Duration::from_millis(149), 100_000);
        assert_eq!(net.cores[3].stats().received.query, 0);
        net.run_until(start + Duration::from_millis(150), 100_000);
        assert_eq!(net.cores[3].stats().received.query, 1);
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let run = |seed: u64| {
            let mut net = Net::new(seed);
            net.set_latency(Latency {
                base: Duration::from_millis(10),
                jitter: Duration::from_millis(90),
            });
            for n in 0..30 {
                net.add(config(n));
            }
            let mut rng = StdRng::seed_from_u64(seed);
            for n in 1..30 {
                let m = rng.gen_range(0..n);
                net.dial(n, m);
            }
            net.settle(1_000_000);
            let now = net.now;
            net.cores[0].search_with_ttl("x", 4, now);
            net.pump(0);
            net.settle(1_000_000);
            let received: Vec<u64> = net.cores.iter().map(|c| c.stats().received.query).collect();
            (received, net.now - net.start, net.traffic)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7).1, run(8).1, "another seed, other latencies");
    }

    #[test]
    fn touched_nodes_are_those_a_query_reached() {
        let mut net = Net::new(3);
        // A line 0-1-2-3-4: a TTL 2 query from 0 reaches 1 and 2 (and its
        // hits, none here, would come back the same way).
        for n in 0..5 {
            net.add(config(n));
        }
        for n in 0..4 {
            net.dial(n, n + 1);
        }
        assert!(net.settle(100_000));
        net.track_touched(true);
        let now = net.now;
        net.cores[0].search_with_ttl("x", 2, now);
        net.pump(0);
        assert!(net.settle(100_000));
        let mut touched = net.take_touched();
        touched.sort();
        assert_eq!(touched, vec![1, 2]);
        assert!(net.take_touched().is_empty(), "taken once");
        assert_eq!(net.cores[2].counters().received.query, 1);
        assert_eq!(net.cores[3].counters().received.query, 0);
    }

    #[test]
    fn a_ping_with_ttl_is_answered_by_every_host_within_reach() {
        let mut net = Net::new(4);
        for n in 0..5 {
            let mut c = config(n);
            // No pong cache: every Ping travels its whole TTL.
            c.pong_cache_fresh = Duration::ZERO;
            net.add(c);
        }
        for n in 0..4 {
            net.dial(n, n + 1);
        }
        assert!(net.settle(100_000));
        // Past the link-up Pings' throttle.
        net.advance(Duration::from_secs(10));
        let before: Vec<_> = net.cores.iter().map(|c| c.counters()).collect();
        let now = net.now;
        net.cores[0].ping_with_ttl(3, now);
        net.pump(0);
        assert!(net.settle(100_000));
        let delta = |n: usize, f: fn(&crate::core::Counters) -> u64| {
            f(&net.cores[n].counters()) - f(&before[n])
        };
        // Nodes 1, 2, 3 answer; 4 is out of reach.
        assert_eq!(delta(0, |c| c.received.pong), 3);
        assert_eq!(delta(3, |c| c.received.ping), 1);
        assert_eq!(delta(4, |c| c.received.ping), 0);
    }

    #[test]
    fn an_unknown_address_fails_the_connect() {
        let mut net = Net::new(1);
        let a = net.add(config(0));
        let now = net.now;
        net.cores[a].connect(Net::address_for(99), now);
        net.pump(a);
        assert!(net.events[a]
            .iter()
            .any(|e| matches!(e, CoreEvent::ConnectFailed { .. })));
    }
}
