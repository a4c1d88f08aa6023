//! TCP stream reassembly: segments in capture order in, each direction's
//! bytes in sequence order out.
//!
//! Streams are numbered from 0 in order of first appearance, the way tshark
//! numbers `tcp.stream`: every new address/port pair opens one, even a lone
//! SYN, and a fresh SYN on a pair whose connection already closed opens the
//! next. Per direction the reassembler drops retransmitted and overlapping
//! bytes, holds early segments (bounded in count and bytes) until the hole
//! before them fills, and when it must give up on a hole (buffer full, or the
//! capture ends) it reports a [`TcpEvent::Gap`] and carries on after it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::file::Timestamp;
use super::packet::TcpSegment;

/// Out-of-order bytes held per direction before a hole is declared lost.
pub const MAX_PENDING_BYTES: usize = 1 << 20;
/// Out-of-order segments held per direction before a hole is declared lost.
pub const MAX_PENDING_SEGMENTS: usize = 1024;

/// Which way bytes flow in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Sent by the endpoint that opened the connection (`orig>resp`).
    ClientToServer,
    /// Sent by the endpoint that accepted it (`resp>orig`).
    ServerToClient,
}

impl Direction {
    /// tshark-style label, as in the expected files.
    pub fn label(self) -> &'static str {
        match self {
            Direction::ClientToServer => "orig>resp",
            Direction::ServerToClient => "resp>orig",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }

    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// A TCP stream's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// tshark's `tcp.stream`.
    pub id: u32,
    /// The endpoint that sent the first SYN (or, with no SYN in the
    /// capture, the sender of the first segment seen).
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_frame: u32,
}

/// What reassembly tells its user, in an order consistent per direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpEvent {
    Opened(StreamInfo),
    /// In-order bytes: `offset` counts the bytes of this direction from 0.
    Data {
        stream: u32,
        dir: Direction,
        frame: u32,
        timestamp: Timestamp,
        offset: u64,
        data: Vec<u8>,
    },
    /// Bytes `offset..offset+len` of this direction were never captured.
    Gap {
        stream: u32,
        dir: Direction,
        frame: u32,
        offset: u64,
        len: u64,
    },
    /// The direction ended (FIN, or RST when `reset`) after all its bytes.
    Closed {
        stream: u32,
        dir: Direction,
        frame: u32,
        reset: bool,
    },
}

#[derive(Debug, Default)]
struct Half {
    /// Sequence number of this direction's byte 0.
    base: Option<u32>,
    /// Offset of the next byte to deliver.
    next: u64,
    pending: BTreeMap<u64, (u32, Timestamp, Vec<u8>)>,
    pending_bytes: usize,
    /// Offset just past the last byte, once a FIN was seen.
    fin_at: Option<u64>,
    close_frame: u32,
    reset: bool,
    closed_reported: bool,
    /// Bytes received again that had already been delivered.
    duplicate_bytes: u64,
}

#[derive(Debug)]
struct Conn {
    info: StreamInfo,
    client_isn: Option<u32>,
    halves: [Half; 2],
    saw_fin_or_rst: bool,
}

/// Totals for a summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TcpStats {
    pub streams: u32,
    pub segments: u64,
    pub bytes_delivered: u64,
    pub duplicate_bytes: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
}

/// The reassembler for all TCP streams of one capture.
#[derive(Debug, Default)]
pub struct TcpReassembler {
    by_pair: HashMap<(SocketAddr, SocketAddr), usize>,
    conns: Vec<Conn>,
    stats: TcpStats,
}

fn pair_key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Maps a 32-bit offset (modulo 2^32) to the 64-bit offset nearest `near`;
/// `None` if that would be before the start of the stream.
fn unwrap_offset(near: u64, rel: u32) -> Option<u64> {
    let near = i128::from(near);
    let span = 1i128 << 32;
    let mut c = (near & !(span - 1)) | i128::from(rel);
    if c - near > span / 2 {
        c -= span;
    } else if near - c > span / 2 {
        c += span;
    }
    u64::try_from(c).ok()
}

impl TcpReassembler {
    pub fn new() -> TcpReassembler {
        TcpReassembler::default()
    }

    pub fn stats(&self) -> TcpStats {
        self.stats
    }

    /// Feeds one segment; what it releases is appended to `out`.
    pub fn push(
        &mut self,
        frame: u32,
        timestamp: Timestamp,
        seg: &TcpSegment<'_>,
        out: &mut Vec<TcpEvent>,
    ) {
        self.stats.segments += 1;
        let key = pair_key(seg.src, seg.dst);
        let fresh_syn = seg.flags.syn && !seg.flags.ack;
        let idx = match self.by_pair.get(&key) {
            Some(&i)
                if !(fresh_syn
                    && self.conns[i].saw_fin_or_rst
                    && self.conns[i].client_isn != Some(seg.seq)) =>
            {
                i
            }
            existing => {
                if let Some(&old) = existing {
                    self.flush(old, out);
                }
                let (client, server) = if seg.flags.syn && seg.flags.ack {
                    (seg.dst, seg.src)
                } else {
                    (seg.src, seg.dst)
                };
                let info = StreamInfo {
                    id: self.conns.len() as u32,
                    client,
                    server,
                    first_frame: frame,
                };
                self.conns.push(Conn {
                    info,
                    client_isn: None,
                    halves: [Half::default(), Half::default()],
                    saw_fin_or_rst: false,
                });
                self.stats.streams += 1;
                out.push(TcpEvent::Opened(info));
                let i = self.conns.len() - 1;
                self.by_pair.insert(key, i);
                i
            }
        };
        let conn = &mut self.conns[idx];
        let dir = if seg.src == conn.info.client {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        if fresh_syn && dir == Direction::ClientToServer {
            conn.client_isn.get_or_insert(seg.seq);
        }
        if seg.flags.fin || seg.flags.rst {
            conn.saw_fin_or_rst = true;
        }
        let stream = conn.info.id;
        let half = &mut conn.halves[dir.index()];
        let stats = &mut self.stats;

        // Where this segment's payload starts in the sequence space.
        let data_seq = if seg.flags.syn {
            if half.base.is_none() || half.next == 0 {
                half.base = Some(seg.seq.wrapping_add(1));
            }
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let base = *half.base.get_or_insert(data_seq);
        let Some(offset) = unwrap_offset(half.next, data_seq.wrapping_sub(base)) else {
            // Before byte 0: an old retransmission.
            half.duplicate_bytes += seg.payload.len() as u64;
            stats.duplicate_bytes += seg.payload.len() as u64;
            return;
        };
        let end = offset + seg.payload.len() as u64;
        if seg.flags.fin && half.fin_at.is_none() {
            half.fin_at = Some(end);
            half.close_frame = frame;
        }
        if seg.flags.rst && !half.reset {
            half.reset = true;
            half.fin_at.get_or_insert(end.max(half.next));
            half.close_frame = frame;
        }
        if !seg.payload.is_empty() {
            if end <= half.next {
                half.duplicate_bytes += seg.payload.len() as u64;
                stats.duplicate_bytes += seg.payload.len() as u64;
            } else if offset <= half.next {
                let skip = (half.next - offset) as usize;
                let data = seg.payload.get(skip..).unwrap_or(&[]).to_vec();
                stats.duplicate_bytes += skip as u64;
                deliver(half, stream, dir, frame, timestamp, data, stats, out);
            } else {
                // Early: keep it (the longer copy wins at equal offsets).
                let keep = match half.pending.get(&offset) {
                    Some((_, _, d)) => d.len() < seg.payload.len(),
                    None => true,
                };
                if keep {
                    if let Some((_, _, old)) = half
                        .pending
                        .insert(offset, (frame, timestamp, seg.payload.to_vec()))
                    {
                        half.pending_bytes -= old.len();
                    }
                    half.pending_bytes += seg.payload.len();
                }
                while half.pending_bytes > MAX_PENDING_BYTES
                    || half.pending.len() > MAX_PENDING_SEGMENTS
                {
                    if !skip_hole(half, stream, dir, stats, out) {
                        break;
                    }
                }
            }
        }
        drain(half, stream, dir, stats, out);
        report_close(half, stream, dir, out);
    }

    /// Ends the capture: every hole still open is reported as a gap and the
    /// bytes after it are delivered.
    pub fn finish(&mut self, out: &mut Vec<TcpEvent>) {
        for i in 0..self.conns.len() {
            self.flush(i, out);
        }
    }

    fn flush(&mut self, idx: usize, out: &mut Vec<TcpEvent>) {
        let stats = &mut self.stats;
        let Some(conn) = self.conns.get_mut(idx) else {
            return;
        };
        let stream = conn.info.id;
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let half = &mut conn.halves[dir.index()];
            while skip_hole(half, stream, dir, stats, out) {}
            if let Some(fin) = half.fin_at {
                if fin > half.next && !half.reset {
                    gap(
                        half,
                        stream,
                        dir,
                        half.close_frame,
                        fin - half.next,
                        stats,
                        out,
                    );
                }
            }
            report_close(half, stream, dir, out);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn deliver(
    half: &mut Half,
    stream: u32,
    dir: Direction,
    frame: u32,
    timestamp: Timestamp,
    data: Vec<u8>,
    stats: &mut TcpStats,
    out: &mut Vec<TcpEvent>,
) {
    if data.is_empty() {
        return;
    }
    let offset = half.next;
    half.next += data.len() as u64;
    stats.bytes_delivered += data.len() as u64;
    out.push(TcpEvent::Data {
        stream,
        dir,
        frame,
        timestamp,
        offset,
        data,
    });
}

fn gap(
    half: &mut Half,
    stream: u32,
    dir: Direction,
    frame: u32,
    len: u64,
    stats: &mut TcpStats,
    out: &mut Vec<TcpEvent>,
) {
    out.push(TcpEvent::Gap {
        stream,
        dir,
        frame,
        offset: half.next,
        len,
    });
    half.next += len;
    stats.gaps += 1;
    stats.gap_bytes += len;
}

/// Delivers whatever pending segments now touch `next`.
fn drain(
    half: &mut Half,
    stream: u32,
    dir: Direction,
    stats: &mut TcpStats,
    out: &mut Vec<TcpEvent>,
) {
    while let Some(entry) = half.pending.first_entry() {
        let offset = *entry.key();
        if offset > half.next {
            break;
        }
        let (frame, ts, data) = entry.remove();
        half.pending_bytes -= data.len();
        let end = offset + data.len() as u64;
        if end <= half.next {
            half.duplicate_bytes += data.len() as u64;
            stats.duplicate_bytes += data.len() as u64;
            continue;
        }
        let skip = (half.next - offset) as usize;
        stats.duplicate_bytes += skip as u64;
        let tail = data.get(skip..).unwrap_or(&[]).to_vec();
        deliver(half, stream, dir, frame, ts, tail, stats, out);
    }
}

/// Gives up on the hole before the first pending segment. False if none.
fn skip_hole(
    half: &mut Half,
    stream: u32,
    dir: Direction,
    stats: &mut TcpStats,
    out: &mut Vec<TcpEvent>,
) -> bool {
    let Some((&offset, &(frame, _, _))) = half.pending.iter().next() else {
        return false;
    };
    if offset > half.next {
        gap(half, stream, dir, frame, offset - half.next, stats, out);
    }
    drain(half, stream, dir, stats, out);
    true
}

fn report_close(half: &mut Half, stream: u32, dir: Direction, out: &mut Vec<TcpEvent>) {
    if half.closed_reported {
        return;
    }
    let done = match half.fin_at {
        Some(fin) => half.reset || half.next >= fin,
        None => false,
    };
    if done && half.pending.is_empty() {
        half.closed_reported = true;
        out.push(TcpEvent::Closed {
            stream,
            dir,
            frame: half.close_frame,
            reset: half.reset,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::packet::TcpFlags;

    fn a() -> SocketAddr {
        "10.0.0.1:5000".parse().unwrap()
    }
    fn b() -> SocketAddr {
        "10.0.0.2:6346".parse().unwrap()
    }

    fn seg<'p>(
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        flags: &str,
        payload: &'p [u8],
    ) -> TcpSegment<'p> {
        TcpSegment {
            src,
            dst,
            seq,
            ack: 0,
            flags: TcpFlags {
                syn: flags.contains('S'),
                ack: flags.contains('A'),
                fin: flags.contains('F'),
                rst: flags.contains('R'),
                psh: false,
            },
            payload,
        }
    }

    /// Bytes delivered per (stream, direction), and the gaps.
    type Delivered = HashMap<(u32, Direction), Vec<u8>>;

    fn collect(events: &[TcpEvent]) -> (Delivered, Vec<(u32, u64, u64)>) {
        let mut data: HashMap<(u32, Direction), Vec<u8>> = HashMap::new();
        let mut gaps = Vec::new();
        for e in events {
            match e {
                TcpEvent::Data {
                    stream,
                    dir,
                    offset,
                    data: d,
                    ..
                } => {
                    let v = data.entry((*stream, *dir)).or_default();
                    let skipped: u64 = gaps.iter().map(|g: &(u32, u64, u64)| g.2).sum();
                    assert_eq!(*offset, v.len() as u64 + skipped);
                    v.extend_from_slice(d);
                }
                TcpEvent::Gap {
                    stream,
                    offset,
                    len,
                    ..
                } => gaps.push((*stream, *offset, *len)),
                _ => {}
            }
        }
        (data, gaps)
    }

    #[test]
    fn in_order_with_retransmission_and_reordering() {
        let mut r = TcpReassembler::new();
        let mut out = Vec::new();
        let t = Timestamp::default();
        r.push(1, t, &seg(a(), b(), 100, "S", b""), &mut out);
        r.push(2, t, &seg(b(), a(), 900, "SA", b""), &mut out);
        r.push(3, t, &seg(a(), b(), 101, "A", b"GNUTELLA "), &mut out);
        r.push(4, t, &seg(a(), b(), 118, "A", b"0.6\r\n"), &mut out); // early
        r.push(5, t, &seg(a(), b(), 101, "A", b"GNUTELLA CONN"), &mut out); // overlaps
        r.push(6, t, &seg(a(), b(), 110, "A", b"CONNECT/"), &mut out);
        r.push(
            7,
            t,
            &seg(b(), a(), 901, "A", b"GNUTELLA/0.6 200 OK"),
            &mut out,
        );
        r.push(8, t, &seg(a(), b(), 123, "FA", b""), &mut out);
        r.finish(&mut out);
        let (data, gaps) = collect(&out);
        assert_eq!(
            data[&(0, Direction::ClientToServer)],
            b"GNUTELLA CONNECT/0.6\r\n"
        );
        assert_eq!(
            data[&(0, Direction::ServerToClient)],
            b"GNUTELLA/0.6 200 OK"
        );
        assert!(gaps.is_empty());
        assert!(out.contains(&TcpEvent::Closed {
            stream: 0,
            dir: Direction::ClientToServer,
            frame: 8,
            reset: false
        }));
        assert!(matches!(out[0], TcpEvent::Opened(StreamInfo { id: 0, .. })));
        assert_eq!(r.stats().streams, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = TcpReassembler::new();
        let mut out = Vec::new();
        let t = Timestamp::default();
        r.push(1, t, &seg(a(), b(), u32::MAX - 2, "S", b""), &mut out);
        r.push(2, t, &seg(a(), b(), u32::MAX - 1, "A", b"abc"), &mut out);
        r.push(3, t, &seg(a(), b(), 1, "A", b"def"), &mut out);
        r.finish(&mut out);
        let (data, _) = collect(&out);
        assert_eq!(data[&(0, Direction::ClientToServer)], b"abcdef");
    }

    #[test]
    fn lost_segment_is_a_reported_gap() {
        let mut r = TcpReassembler::new();
        let mut out = Vec::new();
        let t = Timestamp::default();
        r.push(1, t, &seg(a(), b(), 0, "A", b"one"), &mut out);
        r.push(2, t, &seg(a(), b(), 10, "A", b"three"), &mut out);
        r.finish(&mut out);
        let (data, gaps) = collect(&out);
        assert_eq!(data[&(0, Direction::ClientToServer)], b"onethree");
        assert_eq!(gaps, vec![(0, 3, 7)]);
        assert_eq!(r.stats().gap_bytes, 7);
    }

    #[test]
    fn pending_buffer_is_bounded() {
        let mut r = TcpReassembler::new();
        let mut out = Vec::new();
        let t = Timestamp::default();
        r.push(1, t, &seg(a(), b(), 0, "A", b"x"), &mut out);
        let chunk = vec![7u8; 1000];
        // Never fill the hole at offset 1: holding stops at the bound.
        for i in 0..(MAX_PENDING_SEGMENTS as u32 + 10) {
            r.push(
                2 + i,
                t,
                &seg(a(), b(), 2 + i * 1000, "A", &chunk),
                &mut out,
            );
        }
        let (_, gaps) = collect(&out);
        assert_eq!(gaps.first(), Some(&(0, 1, 1)));
        let half = &r.conns[0].halves[0];
        assert!(half.pending.len() <= MAX_PENDING_SEGMENTS);
        assert!(half.pending_bytes <= MAX_PENDING_BYTES);
    }

    #[test]
    fn streams_numbered_by_first_appearance_and_port_reuse() {
        let mut r = TcpReassembler::new();
        let mut out = Vec::new();
        let t = Timestamp::default();
        let c: SocketAddr = "10.0.0.3:7000".parse().unwrap();
        r.push(1, t, &seg(a(), b(), 5, "S", b""), &mut out);
        r.push(2, t, &seg(a(), b(), 5, "S", b""), &mut out); // SYN retry: same stream
        r.push(3, t, &seg(c, b(), 1, "S", b""), &mut out);
        r.push(4, t, &seg(b(), a(), 0, "RA", b""), &mut out);
        r.push(5, t, &seg(a(), b(), 99, "S", b""), &mut out); // new connection, same ports
        let ids: Vec<(u32, SocketAddr)> = out
            .iter()
            .filter_map(|e| match e {
                TcpEvent::Opened(i) => Some((i.id, i.client)),
                _ => None,
            })
            .collect();
        assert_eq!(ids, vec![(0, a()), (1, c), (2, a())]);
    }

    #[test]
    fn unwrap_offsets() {
        assert_eq!(unwrap_offset(0, 5), Some(5));
        assert_eq!(unwrap_offset(0, u32::MAX), None);
        assert_eq!(
            unwrap_offset(u64::from(u32::MAX) - 3, 2),
            Some((1 << 32) + 2)
        );
        assert_eq!(
            unwrap_offset((1 << 32) + 10, u32::MAX),
            Some(u64::from(u32::MAX))
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::pcap::packet::TcpFlags;
    use proptest::prelude::*;

    fn a() -> SocketAddr {
        "192.0.2.1:40000".parse().unwrap()
    }
    fn b() -> SocketAddr {
        "192.0.2.2:6346".parse().unwrap()
    }

    fn segment(seq: u32, syn: bool, fin: bool, payload: &[u8]) -> TcpSegment<'_> {
        TcpSegment {
            src: a(),
            dst: b(),
            seq,
            ack: 0,
            flags: TcpFlags {
                syn,
                ack: !syn,
                fin,
                rst: false,
                psh: false,
            },
            payload,
        }
    }

    /// Cuts `data` at the given points into (offset, bytes) segments.
    fn cut(data: &[u8], mut points: Vec<usize>) -> Vec<(usize, Vec<u8>)> {
        points.retain(|&p| p > 0 && p < data.len());
        points.sort_unstable();
        points.dedup();
        let mut segs = Vec::new();
        let mut start = 0;
        for p in points.into_iter().chain(std::iter::once(data.len())) {
            segs.push((start, data[start..p].to_vec()));
            start = p;
        }
        segs
    }

    fn run(isn: u32, segs: &[(usize, Vec<u8>)], fin_at: usize) -> (Vec<u8>, Vec<(u64, u64)>, bool) {
        let mut r = TcpReassembler::new();
        let mut out = Vec::new();
        let t = Timestamp::default();
        r.push(1, t, &segment(isn, true, false, &[]), &mut out);
        for (i, (off, bytes)) in segs.iter().enumerate() {
            let seq = isn.wrapping_add(1).wrapping_add(*off as u32);
            r.push(
                2 + i as u32,
                t,
                &segment(seq, false, false, bytes),
                &mut out,
            );
        }
        let fin_seq = isn.wrapping_add(1).wrapping_add(fin_at as u32);
        r.push(9999, t, &segment(fin_seq, false, true, &[]), &mut out);
        r.finish(&mut out);
        let mut data = Vec::new();
        let mut gaps = Vec::new();
        let mut closed = false;
        for e in out {
            match e {
                TcpEvent::Data {
                    offset, data: d, ..
                } => {
                    assert_eq!(
                        offset,
                        (data.len() as u64) + gaps.iter().map(|g: &(u64, u64)| g.1).sum::<u64>()
                    );
                    data.extend_from_slice(&d);
                }
                TcpEvent::Gap { offset, len, .. } => gaps.push((offset, len)),
                TcpEvent::Closed { .. } => closed = true,
                TcpEvent::Opened(_) => {}
            }
        }
        (data, gaps, closed)
    }

    proptest! {
        /// Any segmentation, any duplication, any reordering within a window,
        /// any initial sequence number (wrapping included): the bytes come out
        /// whole and in order, with no gap.
        #[test]
        fn reordered_duplicated_segments_reassemble(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            points in proptest::collection::vec(0usize..3000, 0..40),
            swaps in proptest::collection::vec((0usize..64, 0usize..4), 0..40),
            dups in proptest::collection::vec(0usize..64, 0..10),
            isn in any::<u32>(),
        ) {
            let mut segs = cut(&data, points);
            for &d in &dups {
                if let Some(s) = segs.get(d % segs.len().max(1)).cloned() {
                    segs.push(s);
                }
            }
            for &(i, step) in &swaps {
                let n = segs.len();
                if n > 1 {
                    let i = i % n;
                    let j = (i + step).min(n - 1);
                    segs.swap(i, j);
                }
            }
            let (got, gaps, closed) = run(isn, &segs, data.len());
            prop_assert_eq!(got, data);
            prop_assert!(gaps.is_empty());
            prop_assert!(closed);
        }

        /// A segment never captured is reported as a gap of its exact size,
        /// and every other byte is still delivered.
        #[test]
        fn lost_segment_is_one_gap(
            data in proptest::collection::vec(any::<u8>(), 2..2000),
            points in proptest::collection::vec(1usize..2000, 1..20),
            lose in any::<usize>(),
            isn in any::<u32>(),
        ) {
            let mut segs = cut(&data, points);
            let lost = segs.remove(lose % segs.len());
            let (got, gaps, _) = run(isn, &segs, data.len());
            let mut want = data[..lost.0].to_vec();
            want.extend_from_slice(&data[lost.0 + lost.1.len()..]);
            prop_assert_eq!(got, want);
            prop_assert_eq!(gaps, vec![(lost.0 as u64, lost.1.len() as u64)]);
        }
    }
}
