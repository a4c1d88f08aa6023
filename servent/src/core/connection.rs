//! One neighbour connection: handshake phase, byte buffers, the framer of
//! its descriptor stream (inflating when the peer deflates), send queue,
//! keep-alive bookkeeping and counters.
//!
//! The decisions (what to answer in a handshake, what to route) are the
//! core's; this module keeps the per-connection state and moves queued
//! descriptors into the output byte buffer, compressing when deflate is on
//! (the protocol crate's [`Deflater`]), only when the event loop asks for
//! output — so the send queue's drop policy sees the real backlog.

use std::net::SocketAddr;
use std::time::Instant;

use hazel_protocol::framer::{Deflater, Framer};
use hazel_protocol::handshake::HeadScanner;

use super::ids::{ConnId, Direction, ProtocolVersion};
use super::queue::{Class, Dropped, Frame, SendQueue};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Incoming: waiting for the peer's `GNUTELLA CONNECT`.
    AwaitingConnect,
    /// Outgoing: we sent our CONNECT, waiting for the status (or `GNUTELLA OK`).
    AwaitingResponse,
    /// Incoming 0.6: we answered 200, waiting for the peer's final 200.
    AwaitingFinal,
    Established,
    /// A refusal or a Bye is being flushed; nothing more is read or queued.
    /// The reactor is told to close once the output drains or at `deadline`.
    Closing {
        deadline: Instant,
    },
}

/// Output bytes moved from the queue per refill: bounded so the drop policy
/// keeps acting on most of the backlog.
const REFILL_BYTES: usize = 16 * 1024;

pub struct Connection {
    pub id: ConnId,
    pub direction: Direction,
    pub peer: SocketAddr,
    /// The address the peer listens on, when it told us (or we dialled it).
    pub listen_addr: Option<SocketAddr>,
    pub created: Instant,
    pub established_at: Option<Instant>,
    pub phase: Phase,
    pub version: ProtocolVersion,
    pub user_agent: String,
    pub peer_ultrapeer: Option<bool>,
    /// The query routing table this (ultrapeer) peer holds from us, once
    /// sent: later library changes go as a diff against it.
    pub qrt_sent: Option<std::sync::Arc<hazel_protocol::qrp::QueryRouteTable>>,
    /// The peer announced `Bye-Packet`: it may be sent a Bye.
    pub peer_bye: bool,
    /// The peer's `GUID` header (lower-case hex), to spot a second link to it.
    pub peer_guid: Option<String>,
    /// Handshake bytes not yet consumed (a partial block).
    pub inbuf: Vec<u8>,
    /// How far `inbuf` was searched for the blank line ending the current
    /// handshake block, so a block dribbled in small reads is scanned once.
    /// Reset whenever a block is drained from `inbuf`.
    pub head_scan: HeadScanner,
    /// The descriptor stream once established (inflating if the peer
    /// deflates); taken out while its frames are routed.
    pub framer: Option<Framer>,
    out: Vec<u8>,
    out_pos: usize,
    /// Descriptors are deflated on the way out (negotiated and established).
    /// The deflater frees its state on an idle link (a compressor holds
    /// ~300 KiB) and continues the same stream when output resumes.
    deflater: Option<Deflater>,
    pub queue: SendQueue,
    /// A `WantWrite` was emitted and output has not yet been seen empty.
    pub write_signalled: bool,
    pub last_received: Instant,
    pub last_sent: Instant,
    pub last_keepalive: Option<Instant>,
    /// Since when our pings on this link have gone unanswered (no Pong for
    /// one of our Pings arrived since the first of them).
    pub unanswered_ping_since: Option<Instant>,
    pub last_ping_accepted: Option<Instant>,
    pub descriptors_in: u64,
    pub descriptors_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dropped: u64,
    pub deflate_in: bool,
    pub deflate_out: bool,
    /// Push proxies on this link, either way.
    pub proxy: super::proxy::LinkProxy,
}

impl Connection {
    pub fn new(
        id: ConnId,
        direction: Direction,
        peer: SocketAddr,
        version: ProtocolVersion,
        queue: SendQueue,
        now: Instant,
    ) -> Connection {
        Connection {
            id,
            direction,
            peer,
            listen_addr: match direction {
                Direction::Outgoing => Some(peer),
                Direction::Incoming => None,
            },
            created: now,
            established_at: None,
            phase: match direction {
                Direction::Incoming => Phase::AwaitingConnect,
                Direction::Outgoing => Phase::AwaitingResponse,
            },
            version,
            user_agent: String::new(),
            peer_ultrapeer: None,
            qrt_sent: None,
            peer_bye: false,
            peer_guid: None,
            inbuf: Vec::new(),
            head_scan: HeadScanner::new(),
            framer: None,
            out: Vec::new(),
            out_pos: 0,
            deflater: None,
            queue,
            write_signalled: false,
            last_received: now,
            last_sent: now,
            last_keepalive: None,
            unanswered_ping_since: None,
            last_ping_accepted: None,
            descriptors_in: 0,
            descriptors_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            dropped: 0,
            deflate_in: false,
            deflate_out: false,
            proxy: super::proxy::LinkProxy::default(),
        }
    }

    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
    }

    /// Raw bytes written straight to the output (handshake blocks), ahead of
    /// anything queued and never compressed.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// From now on, descriptors are deflated (zlib stream) on the way out.
    pub fn start_deflate_out(&mut self) {
        self.deflater = Some(Deflater::new());
        self.deflate_out = true;
    }

    /// On an idle compressed link: full-flush and free the compressor.
    /// Returns true when flush bytes were added to the output.
    pub fn release_idle_deflater(&mut self) -> bool {
        if !self.queue.is_empty() {
            return false;
        }
        self.deflater
            .as_mut()
            .is_some_and(|d| d.release(&mut self.out))
    }

    /// Whether a compressor is allocated now.
    pub fn holds_deflater(&self) -> bool {
        self.deflater.as_ref().is_some_and(Deflater::holds_state)
    }

    /// The link is established: descriptors follow, deflated when `deflate_in`.
    pub fn start_stream(&mut self) {
        self.framer = Some(if self.deflate_in {
            Framer::deflated()
        } else {
            Framer::new()
        });
    }

    /// Queues a descriptor; returns what the drop policy removed.
    pub fn enqueue(&mut self, class: Class, frame: Frame) -> Dropped {
        let dropped = self.queue.push(class, frame);
        self.dropped += u64::from(dropped.total());
        dropped
    }

    /// Whether any output is waiting (bytes or queued descriptors).
    pub fn has_output(&self) -> bool {
        self.out_pos < self.out.len() || !self.queue.is_empty()
    }

    /// The bytes ready to write, refilled from the queue when they run low.
    pub fn output(&mut self) -> &[u8] {
        if self.out.len() - self.out_pos < REFILL_BYTES && !self.queue.is_empty() {
            self.refill();
        }
        &self.out[self.out_pos..]
    }

    fn refill(&mut self) {
        if self.out_pos > 0 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        let Some(deflater) = self.deflater.as_mut() else {
            // Plain: frames are copied straight out of the queue.
            let mut batch_bytes = 0;
            while batch_bytes < REFILL_BYTES {
                let Some(frame) = self.queue.pop() else { break };
                batch_bytes += frame.len();
                self.out.extend_from_slice(&frame);
                self.descriptors_out += 1;
            }
            return;
        };
        let mut batch: Vec<Frame> = Vec::new();
        let mut batch_bytes = 0;
        while batch_bytes < REFILL_BYTES {
            let Some(frame) = self.queue.pop() else { break };
            batch_bytes += frame.len();
            batch.push(frame);
        }
        self.descriptors_out += batch.len() as u64;
        // Sync-flushed after the batch so the peer can decode it now.
        let parts: Vec<&[u8]> = batch.iter().map(|f| &f[..]).collect();
        deflater.compress_parts(&parts, &mut self.out);
    }

    /// The reactor wrote `n` bytes of [`Connection::output`].
    pub fn consume_output(&mut self, n: usize, now: Instant) {
        let n = n.min(self.out.len() - self.out_pos);
        self.out_pos += n;
        self.bytes_out += n as u64;
        if n > 0 {
            self.last_sent = now;
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            // An idle connection should hold little memory.
            if self.out.capacity() > 2 * REFILL_BYTES {
                self.out = Vec::new();
            }
        }
    }

    /// Bytes buffered for output plus bytes queued.
    pub fn queued_bytes(&self) -> usize {
        self.out.len() - self.out_pos + self.queue.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazel_protocol::framer::Inflater;
    use std::net::SocketAddr;

    /// Inflates `piece` into `got`; false when the stream is corrupt.
    fn inflate_into(inflater: &mut Inflater, piece: &[u8], got: &mut Vec<u8>) -> bool {
        inflater.push(piece);
        loop {
            match inflater.inflate(got, 32 * 1024) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// An outgoing 0.6 link with compression on towards the peer.
    fn deflating_link(now: Instant) -> Connection {
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let mut conn = Connection::new(
            1,
            Direction::Outgoing,
            peer,
            ProtocolVersion::V06,
            SendQueue::new(1 << 20, 1 << 21),
            now,
        );
        conn.start_deflate_out();
        conn
    }

    #[test]
    fn deflated_output_inflates_to_the_queued_descriptors() {
        let now = Instant::now();
        let mut conn = deflating_link(now);
        let mut expected = Vec::new();
        for n in 0..100u8 {
            let frame: Vec<u8> = (0..40).map(|i| n ^ i).collect();
            expected.extend_from_slice(&frame);
            conn.enqueue(Class::Keep, frame.into());
        }
        let mut wire = Vec::new();
        for _ in 0..100 {
            let out = conn.output().to_vec();
            if out.is_empty() {
                break;
            }
            wire.extend_from_slice(&out);
            conn.consume_output(out.len(), now);
        }
        assert_eq!(&wire[..1], &[0x78], "a zlib stream");
        let mut inflater = Inflater::new();
        let mut got = Vec::new();
        // Feed in small pieces: the stream can be split anywhere.
        for piece in wire.chunks(7) {
            assert!(inflate_into(&mut inflater, piece, &mut got));
        }
        assert_eq!(got, expected);
        assert_eq!(conn.descriptors_out, 100);
    }

    #[test]
    fn a_freed_idle_compressor_continues_the_same_stream() {
        let now = Instant::now();
        let mut conn = deflating_link(now);
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for round in 0..3u8 {
            for n in 0..5u8 {
                let frame: Vec<u8> = (0..30).map(|i| round ^ n ^ i).collect();
                expected.extend_from_slice(&frame);
                conn.enqueue(Class::Keep, frame.into());
            }
            for _ in 0..10 {
                let out = conn.output().to_vec();
                if out.is_empty() {
                    break;
                }
                wire.extend_from_slice(&out);
                conn.consume_output(out.len(), now);
            }
            assert!(conn.holds_deflater());
            assert!(conn.release_idle_deflater());
            assert!(!conn.holds_deflater());
            let out = conn.output().to_vec();
            wire.extend_from_slice(&out);
            conn.consume_output(out.len(), now);
        }
        let mut inflater = Inflater::new();
        let mut got = Vec::new();
        assert!(inflate_into(&mut inflater, &wire, &mut got));
        assert_eq!(got, expected);
    }

    #[test]
    fn corrupt_deflate_input_is_reported() {
        let mut conn = deflating_link(Instant::now());
        conn.deflate_in = true;
        conn.start_stream();
        let framer = conn.framer.as_mut().expect("a framer once established");
        assert!(framer
            .feed(b"\x78\x9cgarbage garbage", &mut Vec::new(), |_| true)
            .is_err());
    }
    #[test]
    fn a_large_batch_after_tiny_ones_is_flushed_whole() {
        // The case that broke the protocol crate's Deflater: after two tiny
        // batches, a ~31 KiB incompressible batch must still arrive whole.
        let now = Instant::now();
        let mut x: u64 = 0x1234_5678_9abc_def0;
        let data: Vec<u8> = (0..31814)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for (a, b) in [(1, 2), (1, 501), (332, 333), (5000, 14000)] {
            let mut conn = deflating_link(now);
            let mut inflater = Inflater::new();
            let mut got = Vec::new();
            for (start, end) in [(0, a), (a, b), (b, data.len())] {
                conn.enqueue(Class::Keep, data[start..end].to_vec().into());
                let mut wire = Vec::new();
                for _ in 0..100 {
                    let out = conn.output().to_vec();
                    if out.is_empty() {
                        break;
                    }
                    wire.extend_from_slice(&out);
                    conn.consume_output(out.len(), now);
                }
                assert!(inflate_into(&mut inflater, &wire, &mut got));
                assert_eq!(got, data[..end], "batches {a}/{b}: all sent so far arrives");
            }
        }
    }
}
