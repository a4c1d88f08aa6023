//! One neighbour connection: handshake phase, byte buffers, optional deflate
//! per direction, send queue, keep-alive bookkeeping and counters.
//!
//! The decisions (what to answer in a handshake, what to route) are the
//! core's; this module keeps the per-connection state and moves queued
//! descriptors into the output byte buffer, compressing when deflate is on,
//! only when the reactor asks for output — so the send queue's drop policy
//! sees the real backlog.

use std::net::SocketAddr;
use std::time::Instant;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use hazel_protocol::framer::SYNC_FLUSH_MARKER;
use hazel_protocol::handshake::HeadScanner;
use serde::Serialize;

use super::queue::{Class, Dropped, Frame, SendQueue};
use super::ConnId;

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Handshake version of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProtocolVersion {
    #[serde(rename = "0.4")]
    V04,
    #[serde(rename = "0.6")]
    V06,
}

impl ProtocolVersion {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProtocolVersion::V04 => "0.4",
            ProtocolVersion::V06 => "0.6",
        }
    }
}

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
    /// Input bytes not yet consumed (a partial handshake block or descriptor).
    pub inbuf: Vec<u8>,
    /// How far `inbuf` was searched for the blank line ending the current
    /// handshake block, so a block dribbled in small reads is scanned once.
    /// Reset whenever a block is drained from `inbuf`.
    pub head_scan: HeadScanner,
    pub inflater: Option<Decompress>,
    out: Vec<u8>,
    out_pos: usize,
    /// The compressor, present only while output flows: an idle link
    /// ends the deflate state with a full flush and frees it (a compressor
    /// holds ~300 KiB), and the next output continues the same stream with a
    /// fresh raw-deflate compressor.
    deflater: Option<Compress>,
    /// Output is deflated (negotiated and established).
    compressing: bool,
    /// The zlib header went out (only the first compressor writes one).
    zlib_header_sent: bool,
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
            inflater: None,
            out: Vec::new(),
            out_pos: 0,
            deflater: None,
            compressing: false,
            zlib_header_sent: false,
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
        self.compressing = true;
        self.deflate_out = true;
    }

    /// On an idle compressed link: full-flush and free the compressor.
    /// Returns true when flush bytes were added to the output.
    pub fn release_idle_deflater(&mut self) -> bool {
        if !self.queue.is_empty() {
            return false;
        }
        let Some(mut deflater) = self.deflater.take() else {
            return false;
        };
        let before = self.out.len();
        deflate_into(&mut deflater, &[], FlushCompress::Full, &mut self.out);
        self.out.len() > before
    }

    /// Whether a compressor is allocated now.
    pub fn holds_deflater(&self) -> bool {
        self.deflater.is_some()
    }

    pub fn start_deflate_in(&mut self) {
        self.inflater = Some(Decompress::new(true));
        self.deflate_in = true;
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
        let mut batch: Vec<Frame> = Vec::new();
        let mut batch_bytes = 0;
        while batch_bytes < REFILL_BYTES {
            let Some(frame) = self.queue.pop() else { break };
            batch_bytes += frame.len();
            batch.push(frame);
        }
        self.descriptors_out += batch.len() as u64;
        if self.compressing && self.deflater.is_none() && !batch.is_empty() {
            // After a full flush the stream continues as raw deflate blocks.
            self.deflater = Some(Compress::new(
                Compression::default(),
                !self.zlib_header_sent,
            ));
            self.zlib_header_sent = true;
        }
        match self.deflater.as_mut() {
            None => {
                for frame in &batch {
                    self.out.extend_from_slice(frame);
                }
            }
            Some(deflater) => {
                let count = batch.len();
                for (i, frame) in batch.iter().enumerate() {
                    // Sync-flush after the batch so the peer can decode it now.
                    let flush = if i + 1 == count {
                        FlushCompress::Sync
                    } else {
                        FlushCompress::None
                    };
                    deflate_into(deflater, frame, flush, &mut self.out);
                }
            }
        }
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

/// Deflates all of `input` into `out`, then applies `flush`.
fn deflate_into(deflater: &mut Compress, input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    let mut consumed = 0usize;
    // Each round either consumes input or grows the output; bounded because
    // deflate output for n input bytes is at most n + small overhead.
    for _ in 0..64 {
        out.reserve(input.len() - consumed + 64);
        let before_in = deflater.total_in();
        let before_out = deflater.total_out();
        let status = deflater.compress_vec(input.get(consumed..).unwrap_or_default(), out, flush);
        consumed += (deflater.total_in() - before_in) as usize;
        let produced = deflater.total_out() - before_out;
        match status {
            Ok(Status::Ok) | Ok(Status::BufError) | Ok(Status::StreamEnd) => {}
            Err(_) => return,
        }
        // Done when all input is in, the flush did not fill the space and,
        // for a sync or full flush, the flush is complete: room left alone is
        // not proof (the protocol crate's Deflater was caught returning with
        // part of a flush still held after tiny batches).
        let flushed = matches!(flush, FlushCompress::None) || out.ends_with(&SYNC_FLUSH_MARKER);
        if consumed >= input.len() && out.len() < out.capacity() && flushed {
            return;
        }
        if produced == 0 && consumed >= input.len() && out.len() < out.capacity() {
            return;
        }
    }
}

/// Inflates `input`, handing each output chunk to `sink`. Returns false when
/// the stream is corrupt. Output per chunk is bounded; the caller frames as
/// it goes, so a compression bomb cannot make us buffer more than a chunk.
pub fn inflate_chunks(
    inflater: &mut Decompress,
    input: &[u8],
    scratch: &mut Vec<u8>,
    mut sink: impl FnMut(&[u8]) -> bool,
) -> bool {
    const CHUNK: usize = 32 * 1024;
    let mut consumed = 0usize;
    // Every round consumes input or produces output; the input is finite and
    // output per input byte is bounded by deflate's maximum ratio (~1032:1).
    let max_rounds = input.len().saturating_mul(2).saturating_add(8).min(1 << 22);
    for _ in 0..max_rounds {
        scratch.clear();
        scratch.reserve(CHUNK);
        let before_in = inflater.total_in();
        let status = inflater.decompress_vec(
            input.get(consumed..).unwrap_or_default(),
            scratch,
            FlushDecompress::Sync,
        );
        consumed += (inflater.total_in() - before_in) as usize;
        match status {
            Ok(_) => {}
            Err(_) => return false,
        }
        if !scratch.is_empty() && !sink(scratch) {
            return true;
        }
        if consumed >= input.len() && scratch.len() < scratch.capacity() {
            return true;
        }
        if scratch.is_empty() && consumed >= input.len() {
            return true;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut inflater = Decompress::new(true);
        let mut got = Vec::new();
        let mut scratch = Vec::new();
        // Feed in small pieces: the stream can be split anywhere.
        for piece in wire.chunks(7) {
            assert!(inflate_chunks(&mut inflater, piece, &mut scratch, |c| {
                got.extend_from_slice(c);
                true
            }));
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
        let mut inflater = Decompress::new(true);
        let mut got = Vec::new();
        let mut scratch = Vec::new();
        assert!(inflate_chunks(&mut inflater, &wire, &mut scratch, |c| {
            got.extend_from_slice(c);
            true
        }));
        assert_eq!(got, expected);
    }

    #[test]
    fn corrupt_deflate_input_is_reported() {
        let mut inflater = Decompress::new(true);
        let mut scratch = Vec::new();
        assert!(!inflate_chunks(
            &mut inflater,
            b"\x00\x01garbage garbage",
            &mut scratch,
            |_| true
        ));
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
            let mut inflater = Decompress::new(true);
            let mut scratch = Vec::new();
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
                assert!(inflate_chunks(&mut inflater, &wire, &mut scratch, |c| {
                    got.extend_from_slice(c);
                    true
                }));
                assert_eq!(got, data[..end], "batches {a}/{b}: all sent so far arrives");
            }
        }
    }
}
