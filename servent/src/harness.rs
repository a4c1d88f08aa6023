//! A deterministic, sans-IO network of servent cores: the one harness behind
//! the unit tests, the simulations, the benches, the `core_stream` fuzz target
//! and `hazel-lab`.
//!
//! - [`Net`]: N [`Core`]s joined by in-memory links. Virtual time (no clock is
//!   read: time moves only when the caller advances it), a latency per link
//!   drawn from a seeded generator when the link opens, and deliveries in
//!   time order, so a run is the same for the same seed and the same calls.
//!   Every byte passes through the cores' real handshakes, framing and (when
//!   negotiated) deflate. Bandwidth is unlimited: whatever a core writes
//!   arrives whole after the link's latency, and a close arrives after the
//!   bytes written before it.
//! - Threads ([`Net::set_threads`]): the nodes are split into shares, each
//!   with its own queue and thread; the threads run windows of virtual time
//!   as long as the shortest link latency (nothing sent in a window arrives
//!   within it) and exchange what crossed over between windows. Deliveries
//!   due at the same instant are ordered by keys the scheduling share makes,
//!   so a run is still the same for the same seed and thread count.
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hazel_protocol::framer::Framer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::ids::ConnIdHashBuilder;
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
    /// A connect from `from` reaches `to`: the acceptor's end opens, seeing
    /// the dialler as `seen_as`.
    Accept {
        to: End,
        from: End,
        latency: Duration,
        seen_as: SocketAddr,
    },
    /// The dialler's end of the same link opens (at the same instant).
    Dialled {
        end: End,
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

impl Delivery {
    /// The node it is for.
    fn node(&self) -> NodeId {
        match self {
            Delivery::Accept { to, .. } | Delivery::Bytes { to, .. } | Delivery::Closed { to } => {
                to.node
            }
            Delivery::Dialled { end, .. } => end.node,
            Delivery::Timer { node } => *node,
        }
    }

    fn is_timer(&self) -> bool {
        matches!(self, Delivery::Timer { .. })
    }
}

/// Counts of what crossed the links.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Writes delivered (each a batch of descriptors, or a handshake block).
    pub deliveries: u64,
    pub bytes: u64,
    pub links_opened: u64,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, o: Traffic) {
        self.deliveries += o.deliveries;
        self.bytes += o.bytes;
        self.links_opened += o.links_opened;
    }
}

/// Keys order deliveries due at the same instant: the scheduling shard's
/// sequence number times this, plus the shard's index. They are unique, and
/// they do not depend on which thread ran first.
const KEY_STRIDE: u64 = 16;

/// Most threads a [`Net`] runs on.
pub const MAX_THREADS: usize = KEY_STRIDE as usize;

/// A delivery waiting in a shard's queue or outbox: (virtual nanoseconds
/// since the start, key, the delivery).
type Scheduled = (u64, u64, Delivery);

/// One end of an open link, kept by the shard of its node.
#[derive(Debug, Clone, Copy)]
struct LinkEnd {
    node: NodeId,
    peer: End,
    latency: Duration,
}

/// Per-node flags of the harness.
#[derive(Debug, Default, Clone, Copy)]
struct NodeState {
    timer_armed: bool,
    touched: bool,
}

/// What every shard reads and none changes while the net runs.
struct Env {
    start: Instant,
    by_addr: HashMap<SocketAddr, NodeId>,
    latency: Latency,
    keep_events: bool,
    track_touched: bool,
    /// First node of each shard; the last shard runs to the end.
    bounds: Vec<NodeId>,
}

impl Env {
    fn shard_of(&self, node: NodeId) -> usize {
        self.bounds.partition_point(|&b| b <= node) - 1
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_nanos() as u64
    }
}

/// A share of the nodes with its own queue, run by one thread (see
/// [`Net::set_threads`]).
struct Shard {
    index: usize,
    /// Virtual time of this shard (the last delivery it ran).
    now: Instant,
    /// (virtual nanoseconds, key, slot): plain integers compare faster than
    /// `Instant`s and make a smaller heap.
    queue: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// Deliveries by slot.
    slots: Vec<Option<Delivery>>,
    free_slots: Vec<u32>,
    seq: u64,
    /// This shard's ends of open links.
    links: HashMap<ConnId, LinkEnd, ConnIdHashBuilder>,
    /// Connection ids are `first_conn + count * shards + index`.
    first_conn: u64,
    conns_made: u64,
    shards: u64,
    /// The shortest latency of a link this shard opened.
    min_latency: Duration,
    rng: StdRng,
    /// Emptied delivery buffers, for the next writes.
    spare_buffers: Vec<Vec<u8>>,
    /// Deliveries queued that are not timers (opens, bytes, closes).
    in_flight: usize,
    traffic: Traffic,
    touched: Vec<NodeId>,
    /// Deliveries for other shards' nodes, handed over between windows.
    outbox: Vec<Scheduled>,
    steps: usize,
}

impl Shard {
    fn new(
        index: usize,
        shards: usize,
        first_conn: u64,
        seq: u64,
        rng: StdRng,
        now: Instant,
    ) -> Shard {
        Shard {
            index,
            now,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            seq,
            links: HashMap::with_hasher(ConnIdHashBuilder),
            first_conn,
            conns_made: 0,
            shards: shards as u64,
            min_latency: Duration::MAX,
            rng,
            spare_buffers: Vec::new(),
            in_flight: 0,
            traffic: Traffic::default(),
            touched: Vec::new(),
            outbox: Vec::new(),
            steps: 0,
        }
    }

    /// Queues a delivery for one of this shard's nodes.
    fn push(&mut self, at: u64, key: u64, delivery: Delivery) {
        if !delivery.is_timer() {
            self.in_flight += 1;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(delivery);
                slot
            }
            None => {
                self.slots.push(Some(delivery));
                (self.slots.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, key, slot)));
    }

    /// Virtual nanoseconds of the next delivery.
    fn next_at(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the next delivery if it is due before `end` (exclusive).
    fn pop_before(&mut self, end: u64) -> Option<(u64, Delivery)> {
        loop {
            let &Reverse((at, _, slot)) = self.queue.peek()?;
            if at >= end {
                return None;
            }
            self.queue.pop();
            let Some(delivery) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
                continue;
            };
            self.free_slots.push(slot);
            if !delivery.is_timer() {
                self.in_flight -= 1;
            }
            return Some((at, delivery));
        }
    }

    /// Everything queued, in no particular order.
    fn drain_all(&mut self) -> Vec<Scheduled> {
        let mut all = std::mem::take(&mut self.outbox);
        for Reverse((at, key, slot)) in std::mem::take(&mut self.queue) {
            if let Some(d) = self.slots[slot as usize].take() {
                all.push((at, key, d));
            }
        }
        self.slots.clear();
        self.free_slots.clear();
        self.in_flight = 0;
        all
    }
}

/// One shard with its nodes, as a thread (or the caller) runs it.
struct Ctx<'a> {
    shard: &'a mut Shard,
    /// The first node of `cores`, `nodes` and `events`.
    lo: NodeId,
    cores: &'a mut [Core],
    nodes: &'a mut [NodeState],
    events: &'a mut [Vec<(Instant, CoreEvent)>],
    env: &'a Env,
}

impl Ctx<'_> {
    fn core(&mut self, node: NodeId) -> &mut Core {
        &mut self.cores[node - self.lo]
    }

    fn owns(&self, node: NodeId) -> bool {
        node >= self.lo && node - self.lo < self.cores.len()
    }

    fn schedule(&mut self, at: Instant, delivery: Delivery) {
        let at = self.env.nanos(at);
        let key = self.shard.seq * KEY_STRIDE + self.shard.index as u64;
        self.shard.seq += 1;
        if self.owns(delivery.node()) {
            self.shard.push(at, key, delivery);
        } else {
            self.shard.outbox.push((at, key, delivery));
        }
    }

    fn touch(&mut self, node: NodeId) {
        let state = &mut self.nodes[node - self.lo];
        if self.env.track_touched && !state.touched {
            state.touched = true;
            self.shard.touched.push(node);
        }
    }

    fn arm_timer(&mut self, node: NodeId) {
        if self.nodes[node - self.lo].timer_armed {
            return;
        }
        if let Some(at) = self.core(node).poll_timeout() {
            self.nodes[node - self.lo].timer_armed = true;
            let at = at.max(self.shard.now);
            self.schedule(at, Delivery::Timer { node });
        }
    }

    /// Carries out what `node`'s core asks until it is quiet.
    fn pump(&mut self, node: NodeId) {
        let now = self.shard.now;
        // Bounded: each input gives a finite number of actions.
        for _ in 0..1_000_000 {
            let Some(action) = self.core(node).poll_action() else {
                return;
            };
            match action {
                Action::Connect(addr) => self.connect(node, addr),
                // Cores serve no files in the harness: downloads find nobody.
                Action::ConnectTransfer(addr) => self.core(node).on_transfer_connect_failed(
                    addr,
                    "no file transfers in the harness",
                    now,
                ),
                Action::PauseReading(_)
                | Action::ResumeReading(_)
                | Action::Disk(_)
                | Action::SendDatagram(..) => {}
                // No names and no web caches in the harness.
                Action::Resolve { token, .. } => {
                    self.core(node)
                        .on_resolved(token, Err("no DNS in the harness".into()), now)
                }
                // No index servers in the harness.
                Action::ConnectIndex(addr) => {
                    self.core(node)
                        .on_index_connect_failed(addr, "no index in the harness", now)
                }
                Action::ConnectNapsterData(addr) => self
                    .core(node)
                    .on_napster_data_connect_failed(addr, "no data ports in the harness"),
                Action::NapsterPush(_) | Action::NapsterListPush(..) => {}
                Action::ConnectCache(addr) => {
                    self.core(node)
                        .on_cache_connect_failed(addr, "no web in the harness", now)
                }
                Action::WantWrite(conn) => self.flush(End { node, conn }),
                Action::Close(conn) => self.close(End { node, conn }),
                Action::Event(event) => {
                    if self.env.keep_events {
                        self.events[node - self.lo].push((now, event));
                    }
                }
            }
        }
        panic!("node {node} produced an unbounded number of actions");
    }

    fn new_conn(&mut self) -> ConnId {
        let s = &mut *self.shard;
        let id = s.first_conn + s.conns_made * s.shards + s.index as u64;
        s.conns_made += 1;
        id
    }

    fn connect(&mut self, node: NodeId, addr: SocketAddr) {
        let now = self.shard.now;
        let Some(&to) = self.env.by_addr.get(&addr) else {
            self.core(node)
                .on_connect_failed(addr, "connection refused", now);
            return;
        };
        let from = End {
            node,
            conn: self.new_conn(),
        };
        let to = End {
            node: to,
            conn: self.new_conn(),
        };
        let jitter = self.env.latency.jitter.as_nanos() as u64;
        let extra = if jitter == 0 {
            0
        } else {
            self.shard.rng.gen_range(0..=jitter)
        };
        let latency = self.env.latency.base + Duration::from_nanos(extra);
        self.shard.min_latency = self.shard.min_latency.min(latency);
        self.shard.links.insert(
            from.conn,
            LinkEnd {
                node,
                peer: to,
                latency,
            },
        );
        // The acceptor sees the dialler's address with an ephemeral port.
        let seen_as = SocketAddr::new(self.core(node).config().listen_addr.ip(), 40_000);
        self.schedule(
            now + latency,
            Delivery::Accept {
                to,
                from,
                latency,
                seen_as,
            },
        );
        self.schedule(now + latency, Delivery::Dialled { end: from, addr });
    }

    /// Moves what `end` wrote to the other end, arriving after the latency.
    fn flush(&mut self, end: End) {
        let now = self.shard.now;
        let mut bytes = self.shard.spare_buffers.pop().unwrap_or_default();
        drain_into(
            &mut self.cores[end.node - self.lo],
            end.conn,
            now,
            &mut bytes,
        );
        match self.shard.links.get(&end.conn) {
            Some(&LinkEnd { peer, latency, .. }) if !bytes.is_empty() => {
                self.schedule(now + latency, Delivery::Bytes { to: peer, bytes });
            }
            _ => self.spare(bytes),
        }
    }

    /// Keeps an emptied buffer for a later write (a bounded number of them,
    /// none very large).
    fn spare(&mut self, mut bytes: Vec<u8>) {
        if self.shard.spare_buffers.len() < 4096 && bytes.capacity() <= 64 * 1024 {
            bytes.clear();
            self.shard.spare_buffers.push(bytes);
        }
    }

    /// `end` closes: bytes it sent before arrive first, then the close.
    fn close(&mut self, end: End) {
        if let Some(link) = self.shard.links.remove(&end.conn) {
            let now = self.shard.now;
            self.schedule(now + link.latency, Delivery::Closed { to: link.peer });
        }
    }

    /// Runs this shard's deliveries due before `end` (virtual nanoseconds,
    /// exclusive), at most `max_steps`; how many ran.
    fn run(&mut self, end: u64, max_steps: usize) -> usize {
        let mut steps = 0;
        while steps < max_steps {
            let Some((at, delivery)) = self.shard.pop_before(end) else {
                break;
            };
            self.shard.now = self
                .shard
                .now
                .max(self.env.start + Duration::from_nanos(at));
            self.deliver(delivery);
            steps += 1;
        }
        self.shard.steps += steps;
        steps
    }

    fn deliver(&mut self, delivery: Delivery) {
        let now = self.shard.now;
        match delivery {
            Delivery::Accept {
                to,
                from,
                latency,
                seen_as,
            } => {
                self.shard.links.insert(
                    to.conn,
                    LinkEnd {
                        node: to.node,
                        peer: from,
                        latency,
                    },
                );
                self.touch(to.node);
                self.core(to.node)
                    .on_connection(to.conn, Direction::Incoming, seen_as, now);
                self.pump(to.node);
            }
            Delivery::Dialled { end, addr } => {
                if !self.shard.links.contains_key(&end.conn) {
                    return;
                }
                self.shard.traffic.links_opened += 1;
                self.touch(end.node);
                self.core(end.node)
                    .on_connection(end.conn, Direction::Outgoing, addr, now);
                self.pump(end.node);
            }
            Delivery::Bytes { to, bytes } => {
                if !self.shard.links.contains_key(&to.conn) {
                    self.spare(bytes);
                    return;
                }
                self.shard.traffic.deliveries += 1;
                self.shard.traffic.bytes += bytes.len() as u64;
                self.touch(to.node);
                self.core(to.node).on_bytes(to.conn, &bytes, now);
                self.spare(bytes);
                self.pump(to.node);
            }
            Delivery::Closed { to } => {
                self.shard.links.remove(&to.conn);
                self.touch(to.node);
                self.core(to.node).on_closed(to.conn, now);
                self.pump(to.node);
            }
            Delivery::Timer { node } => {
                self.nodes[node - self.lo].timer_armed = false;
                self.touch(node);
                self.core(node).handle_timeout(now);
                self.pump(node);
                self.arm_timer(node);
            }
        }
    }
}

/// What a shard tells the others between windows.
#[derive(Debug, Clone, Copy, Default)]
struct Status {
    next_at: Option<u64>,
    in_flight: usize,
    steps: usize,
}

/// A barrier that spins (then yields) instead of sleeping: the windows of
/// a run are short, and a thread put to sleep and woken at each would cost
/// more than the window's work.
struct SpinBarrier {
    arrived: AtomicUsize,
    generation: AtomicUsize,
    parties: usize,
    /// Set when a party panicked: the others stop waiting and panic too.
    broken: AtomicBool,
}

/// Breaks the barrier if its thread unwinds.
struct BreakOnPanic<'a>(&'a SpinBarrier);

impl Drop for BreakOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.broken.store(true, Ordering::Release);
        }
    }
}

impl SpinBarrier {
    fn new(parties: usize) -> SpinBarrier {
        SpinBarrier {
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            parties,
            broken: AtomicBool::new(false),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            assert!(
                !self.broken.load(Ordering::Acquire),
                "another thread of the net panicked"
            );
            if spins < 20_000 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                // Another thread may not be running (a busy machine).
                std::thread::yield_now();
            }
        }
    }
}

/// When a run stops.
#[derive(Debug, Clone, Copy)]
struct Goal {
    /// Run what is due up to here (virtual nanoseconds, inclusive).
    until: Option<u64>,
    /// Stop once no bytes, opens or closes are in flight.
    until_idle: bool,
    max_steps: usize,
}

impl Goal {
    /// Whether the run is over given every shard's status: `Some(done)`.
    fn over(&self, all: &[Status]) -> Option<bool> {
        let in_flight: usize = all.iter().map(|s| s.in_flight).sum();
        let steps: usize = all.iter().map(|s| s.steps).sum();
        if self.until_idle && in_flight == 0 {
            return Some(true);
        }
        if steps >= self.max_steps {
            return Some(false);
        }
        match all.iter().filter_map(|s| s.next_at).min() {
            None => Some(in_flight == 0 || !self.until_idle),
            Some(next) if self.until.is_some_and(|u| next > u) => Some(true),
            Some(_) => None,
        }
    }
}

/// N cores on in-memory links (see the module doc).
pub struct Net {
    /// Virtual time now.
    pub now: Instant,
    /// Virtual time at the start.
    pub start: Instant,
    pub cores: Vec<Core>,
    /// Each node's events with the virtual time they happened, kept when
    /// `keep_events` is on.
    pub events: Vec<Vec<(Instant, CoreEvent)>>,
    /// What crossed the links so far (brought up to date after each call).
    pub traffic: Traffic,
    env: Env,
    nodes: Vec<NodeState>,
    shards: Vec<Shard>,
    /// Threads asked for (see [`Net::set_threads`]).
    threads: usize,
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
            events: Vec::new(),
            traffic: Traffic::default(),
            env: Env {
                start: now,
                by_addr: HashMap::new(),
                latency: Latency::ZERO,
                keep_events: true,
                track_touched: false,
                bounds: vec![0],
            },
            nodes: Vec::new(),
            shards: vec![Shard::new(0, 1, 1, 0, StdRng::seed_from_u64(seed), now)],
            threads: 1,
        }
    }

    /// The latency of links opened from now on.
    pub fn set_latency(&mut self, latency: Latency) {
        self.env.latency = latency;
    }

    /// Runs the net on `threads` threads (at most [`MAX_THREADS`]), each
    /// with a share of the nodes, in windows of virtual time as long as the
    /// shortest link latency: nothing sent in a window can arrive within it,
    /// so the shares run side by side and meet between windows. A run is
    /// the same for the same seed, calls and number of threads, whatever the
    /// machine. With zero-latency links, or fewer than two nodes per thread,
    /// it runs on one.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.clamp(1, MAX_THREADS);
        self.repartition();
    }

    /// The shortest latency a link has or may get.
    fn lookahead(&self) -> Duration {
        self.shards
            .iter()
            .map(|s| s.min_latency)
            .fold(self.env.latency.base, Duration::min)
    }

    /// How many shards to run on now.
    fn wanted_shards(&self) -> usize {
        if self.threads > 1
            && self.lookahead() > Duration::ZERO
            && self.cores.len() >= 2 * self.threads
        {
            self.threads
        } else {
            1
        }
    }

    /// Splits the nodes into the shards wanted (when that changed), moving
    /// what is queued and the link ends to their new shards.
    fn repartition(&mut self) {
        let wanted = self.wanted_shards();
        if wanted == self.shards.len() {
            return;
        }
        let n = self.cores.len();
        let bounds: Vec<NodeId> = (0..wanted).map(|k| k * n / wanted).collect();
        let mut queued = Vec::new();
        let mut links = Vec::new();
        let mut touched = Vec::new();
        let mut traffic = Traffic::default();
        let mut next_conn = 1;
        let mut seq = 0;
        let mut min_latency = Duration::MAX;
        let mut spare = Vec::new();
        let rng_seed: u64 = self.shards[0].rng.gen();
        for s in &mut self.shards {
            queued.extend(s.drain_all());
            links.extend(s.links.drain());
            touched.append(&mut s.touched);
            traffic += s.traffic;
            next_conn = next_conn.max(s.first_conn + s.conns_made * s.shards + s.shards);
            seq = seq.max(s.seq);
            min_latency = min_latency.min(s.min_latency);
            spare.append(&mut s.spare_buffers);
        }
        self.env.bounds = bounds;
        self.shards = (0..wanted)
            .map(|k| {
                let rng = StdRng::seed_from_u64(
                    rng_seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                );
                let mut s = Shard::new(k, wanted, next_conn, seq + 1, rng, self.now);
                s.min_latency = min_latency;
                s
            })
            .collect();
        self.shards[0].touched = touched;
        self.shards[0].traffic = traffic;
        self.shards[0].spare_buffers = spare;
        for (conn, link) in links {
            let k = self.env.shard_of(link.node);
            self.shards[k].links.insert(conn, link);
        }
        for (at, key, d) in queued {
            let k = self.env.shard_of(d.node());
            self.shards[k].push(at, key, d);
        }
    }

    /// Runs `f` on the shard of `node`, from the caller's thread, then brings
    /// [`Net::traffic`] up to date.
    fn on_shard<T>(&mut self, node: NodeId, f: impl FnOnce(&mut Ctx) -> T) -> T {
        let k = self.env.shard_of(node);
        let lo = self.env.bounds[k];
        let hi = self
            .env
            .bounds
            .get(k + 1)
            .copied()
            .unwrap_or(self.cores.len());
        let shard = &mut self.shards[k];
        shard.now = self.now;
        let mut ctx = Ctx {
            shard,
            lo,
            cores: &mut self.cores[lo..hi],
            nodes: &mut self.nodes[lo..hi],
            events: &mut self.events[lo..hi],
            env: &self.env,
        };
        let out = f(&mut ctx);
        self.sum_traffic();
        out
    }

    fn sum_traffic(&mut self) {
        let mut t = Traffic::default();
        for s in &self.shards {
            t += s.traffic;
        }
        self.traffic = t;
    }

    /// Whether events are kept in [`Net::events`] (off for large runs).
    pub fn keep_events(&mut self, keep: bool) {
        self.env.keep_events = keep;
    }

    /// Whether nodes that get deliveries are remembered for
    /// [`Net::take_touched`] (off by default).
    pub fn track_touched(&mut self, track: bool) {
        self.env.track_touched = track;
        for s in &mut self.shards {
            s.touched.clear();
        }
        self.nodes.iter_mut().for_each(|n| n.touched = false);
    }

    /// The nodes that had a delivery (bytes, an open, a close or a timer)
    /// since the last call, each once: each thread's in the order they first
    /// had one.
    pub fn take_touched(&mut self) -> Vec<NodeId> {
        let mut all = Vec::new();
        for s in &mut self.shards {
            all.append(&mut s.touched);
        }
        for &node in &all {
            self.nodes[node].touched = false;
        }
        all
    }

    /// Adds a core listening at `config.listen_addr`; its id.
    pub fn add(&mut self, config: CoreConfig) -> NodeId {
        let node = self.cores.len();
        self.env.by_addr.insert(config.listen_addr, node);
        self.cores.push(Core::new(config, self.now));
        self.events.push(Vec::new());
        self.nodes.push(NodeState::default());
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
        self.env.by_addr.get(addr).copied()
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
            self.on_shard(node, |ctx| ctx.arm_timer(node));
        }
    }

    /// Carries out what `node`'s core asks until it is quiet.
    pub fn pump(&mut self, node: NodeId) {
        self.on_shard(node, |ctx| ctx.pump(node));
    }

    /// Runs every delivery and timer due up to `until`, in time order; false
    /// when `max_steps` ran out first (on several threads, the steps of a
    /// window are counted when it ends).
    pub fn run_until(&mut self, until: Instant, max_steps: usize) -> bool {
        let goal = Goal {
            until: Some(self.env.nanos(until)),
            until_idle: false,
            max_steps,
        };
        let done = self.run(goal);
        if done {
            self.now = self.now.max(until);
            for s in &mut self.shards {
                s.now = self.now;
            }
        }
        done
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
        self.run(Goal {
            until: None,
            until_idle: true,
            max_steps,
        })
    }

    /// Runs the deliveries in time order until `goal` is met; whether it was
    /// (rather than the steps running out).
    fn run(&mut self, goal: Goal) -> bool {
        self.repartition();
        // What callers queued for other shards since the last run.
        let mut handed = Vec::new();
        for s in &mut self.shards {
            s.now = self.now;
            s.steps = 0;
            handed.append(&mut s.outbox);
        }
        for (at, key, d) in handed {
            let k = self.env.shard_of(d.node());
            self.shards[k].push(at, key, d);
        }
        let done = if self.shards.len() == 1 {
            self.run_alone(goal)
        } else {
            self.run_together(goal)
        };
        self.now = self
            .shards
            .iter()
            .map(|s| s.now)
            .fold(self.now, Instant::max);
        for s in &mut self.shards {
            s.now = self.now;
        }
        self.sum_traffic();
        done
    }

    /// One shard, one delivery at a time.
    fn run_alone(&mut self, goal: Goal) -> bool {
        let n = self.cores.len();
        let mut ctx = Ctx {
            shard: &mut self.shards[0],
            lo: 0,
            cores: &mut self.cores[..n],
            nodes: &mut self.nodes[..n],
            events: &mut self.events[..n],
            env: &self.env,
        };
        loop {
            let status = Status {
                next_at: ctx.shard.next_at(),
                in_flight: ctx.shard.in_flight,
                steps: ctx.shard.steps,
            };
            if let Some(done) = goal.over(&[status]) {
                return done;
            }
            ctx.run(u64::MAX, 1);
        }
    }

    /// Every shard on its own thread, window by window.
    fn run_together(&mut self, goal: Goal) -> bool {
        let lookahead = self.lookahead().as_nanos() as u64;
        let shards = self.shards.len();
        let env = &self.env;
        let mut ctxs = Vec::with_capacity(shards);
        let (mut cores, mut nodes, mut events) = (
            &mut self.cores[..],
            &mut self.nodes[..],
            &mut self.events[..],
        );
        let mut lo = 0;
        for (k, shard) in self.shards.iter_mut().enumerate() {
            let hi = env.bounds.get(k + 1).copied().unwrap_or(lo + cores.len());
            let (c, rest_c) = std::mem::take(&mut cores).split_at_mut(hi - lo);
            let (n, rest_n) = std::mem::take(&mut nodes).split_at_mut(hi - lo);
            let (e, rest_e) = std::mem::take(&mut events).split_at_mut(hi - lo);
            (cores, nodes, events) = (rest_c, rest_n, rest_e);
            ctxs.push(Ctx {
                shard,
                lo,
                cores: c,
                nodes: n,
                events: e,
                env,
            });
            lo = hi;
        }
        let barrier = SpinBarrier::new(shards);
        // Per round parity, so a thread that is a window ahead never writes
        // what another is still reading.
        let inboxes: [Vec<Mutex<Vec<Scheduled>>>; 2] =
            std::array::from_fn(|_| (0..shards).map(|_| Mutex::new(Vec::new())).collect());
        let statuses: [Vec<Mutex<Status>>; 2] =
            std::array::from_fn(|_| (0..shards).map(|_| Mutex::new(Status::default())).collect());
        let worker = |mut ctx: Ctx| -> bool {
            let _guard = BreakOnPanic(&barrier);
            let me = ctx.shard.index;
            let mut sent = Status::default();
            let mut round = 0;
            loop {
                let parity = round % 2;
                // Own queue plus what was just sent to others.
                *statuses[parity][me].lock().unwrap() = Status {
                    next_at: match (ctx.shard.next_at(), sent.next_at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    },
                    in_flight: ctx.shard.in_flight + sent.in_flight,
                    steps: ctx.shard.steps,
                };
                barrier.wait();
                let all: Vec<Status> = statuses[parity]
                    .iter()
                    .map(|s| *s.lock().unwrap())
                    .collect();
                for (at, key, d) in std::mem::take(&mut *inboxes[parity][me].lock().unwrap()) {
                    ctx.shard.push(at, key, d);
                }
                if let Some(done) = goal.over(&all) {
                    return done;
                }
                let next = all.iter().filter_map(|s| s.next_at).min().unwrap_or(0);
                let mut end = next.saturating_add(lookahead);
                if let Some(until) = goal.until {
                    end = end.min(until.saturating_add(1));
                }
                let taken: usize = all.iter().map(|s| s.steps).sum();
                ctx.run(end, goal.max_steps.saturating_sub(taken));
                round += 1;
                sent = Status::default();
                let out = &inboxes[round % 2];
                for (at, key, d) in ctx.shard.outbox.drain(..) {
                    if !d.is_timer() {
                        sent.in_flight += 1;
                    }
                    sent.next_at = Some(sent.next_at.map_or(at, |n| n.min(at)));
                    out[env.shard_of(d.node())]
                        .lock()
                        .unwrap()
                        .push((at, key, d));
                }
            }
        };
        std::thread::scope(|scope| {
            let mut ctxs = ctxs.into_iter();
            let first = ctxs.next().expect("one shard at least");
            let others: Vec<_> = ctxs.map(|ctx| scope.spawn(|| worker(ctx))).collect();
            let done = worker(first);
            for h in others {
                h.join().expect("a shard's thread panicked");
            }
            done
        })
    }

    /// Takes the events `node` produced so far, with the virtual time of each.
    pub fn take_events(&mut self, node: NodeId) -> Vec<(Instant, CoreEvent)> {
        std::mem::take(&mut self.events[node])
    }

    /// Links open now (each counted once, once both ends know it).
    pub fn link_count(&self) -> usize {
        self.shards.iter().map(|s| s.links.len()).sum::<usize>() / 2
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

    /// `nodes` unlinked nodes on two threads, every link `latency_ms` long.
    fn two_thread_net(seed: u64, latency_ms: u64, nodes: usize) -> Net {
        let mut net = Net::new(seed);
        net.set_latency(Latency {
            base: Duration::from_millis(latency_ms),
            jitter: Duration::ZERO,
        });
        for n in 0..nodes {
            net.add(config(n));
        }
        net.set_threads(2);
        net
    }

    /// 60 nodes on a random graph (a ring plus chords), linked up.
    fn random_net(seed: u64, threads: usize, jitter: Duration) -> Net {
        let mut net = Net::new(seed);
        net.set_latency(Latency {
            base: Duration::from_millis(20),
            jitter,
        });
        for n in 0..60 {
            net.add(config(n));
        }
        net.set_threads(threads);
        let mut rng = StdRng::seed_from_u64(seed);
        for n in 0..60 {
            net.dial(n, (n + 1) % 60);
            let m = rng.gen_range(0..60);
            if m != n && m != (n + 1) % 60 && (m + 1) % 60 != n {
                net.dial(n, m);
            }
        }
        assert!(net.settle(10_000_000));
        net
    }

    fn flood_from(net: &mut Net, origin: NodeId, ttl: u8) -> Vec<u64> {
        let before: Vec<u64> = net
            .cores
            .iter()
            .map(|c| c.counters().received.query)
            .collect();
        let now = net.now;
        net.cores[origin].search_with_ttl("x", ttl, now);
        net.pump(origin);
        assert!(net.settle(10_000_000));
        net.cores
            .iter()
            .zip(before)
            .map(|(c, b)| c.counters().received.query - b)
            .collect()
    }

    #[test]
    fn two_threads_run_the_same_flood_as_one() {
        // Equal latencies: every copy of the query arrives at the same
        // virtual time whichever thread runs it, so the same nodes see it
        // and forward it, and as many copies travel. (Which neighbour a
        // node leaves out depends on which of two copies arriving at the
        // same instant it read first, so the copies per node may differ.)
        let mut one = random_net(5, 1, Duration::ZERO);
        let mut two = random_net(5, 2, Duration::ZERO);
        assert_eq!(two.shards.len(), 2, "the net runs on two threads");
        assert_eq!(one.link_count(), two.link_count());
        for (origin, ttl) in [(0, 3), (17, 5), (42, 7)] {
            let a = flood_from(&mut one, origin, ttl);
            let b = flood_from(&mut two, origin, ttl);
            let reached =
                |r: &[u64]| -> Vec<usize> { (0..r.len()).filter(|&n| r[n] > 0).collect() };
            assert!(reached(&a).len() > 10, "the flood spreads");
            assert_eq!(
                reached(&a),
                reached(&b),
                "nodes reached from {origin} with TTL {ttl}"
            );
            assert_eq!(a.iter().sum::<u64>(), b.iter().sum::<u64>(), "copies sent");
            assert_eq!(
                one.now - one.start,
                two.now - two.start,
                "the same virtual time"
            );
        }
        assert_eq!(one.traffic.links_opened, two.traffic.links_opened);
    }

    #[test]
    fn with_threads_the_same_seed_gives_the_same_run_and_latency_still_holds() {
        let run = |seed: u64| {
            let mut net = random_net(seed, 2, Duration::from_millis(90));
            let received = flood_from(&mut net, 3, 6);
            (received, net.now - net.start, net.traffic)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7).1, run(8).1, "another seed, other latencies");

        // A line on two threads: one hop per 50 ms, and nothing early.
        let mut net = two_thread_net(1, 50, 8);
        for n in 0..7 {
            net.dial(n, n + 1);
        }
        assert!(net.settle(100_000));
        assert_eq!(net.link_count(), 7);
        let start = net.now;
        net.cores[0].search_with_ttl("anything", 7, start);
        net.pump(0);
        net.run_until(start + Duration::from_millis(349), 100_000);
        assert_eq!(net.cores[7].stats().received.query, 0);
        assert_eq!(net.cores[6].stats().received.query, 1, "six hops in 300 ms");
        net.run_until(start + Duration::from_millis(350), 100_000);
        assert_eq!(net.cores[7].stats().received.query, 1);
        assert_eq!(net.now, start + Duration::from_millis(350));
    }

    #[test]
    fn zero_latency_links_run_on_one_thread() {
        let mut net = Net::new(1);
        for n in 0..10 {
            net.add(config(n));
        }
        net.set_threads(2);
        assert_eq!(net.shards.len(), 1, "no window to run side by side in");
        for n in 0..9 {
            net.dial(n, n + 1);
        }
        assert!(net.settle(100_000));
        assert_eq!(net.link_count(), 9);
    }

    #[test]
    fn a_close_arrives_after_the_bytes_sent_before_it() {
        // A Bye written just before the close reaches the peer, as over TCP.
        let mut net = two_thread_net(2, 30, 4);
        net.dial(0, 3);
        assert!(net.settle(100_000));
        let conn = net.cores[0].established_ids()[0];
        let now = net.now;
        net.cores[0].disconnect(conn, now);
        net.pump(0);
        net.advance(Duration::from_secs(5));
        assert_eq!(net.cores[3].counters().received.bye, 1);
        assert!(net.cores[3].established_ids().is_empty());
        assert_eq!(net.link_count(), 0);
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
            .any(|(_, e)| matches!(e, CoreEvent::ConnectFailed { .. })));
    }
}
