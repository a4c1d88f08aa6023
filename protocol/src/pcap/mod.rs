//! Reading captures: frames from pcap/pcapng files, UDP datagrams, and TCP
//! streams reassembled per direction. Used by the conformance tests and by
//! `hazel-trace`; nothing here runs on a live network.
//!
//! - [`file`]: the capture container (legacy pcap, pcapng) → numbered [`Frame`]s.
//! - [`packet`]: one frame's link/IP/TCP/UDP/ICMP headers → [`Packet`].
//! - [`tcp`]: in-order TCP reassembly with tshark's stream numbering.
//! - [`writer`]: small pcap files for tests.
//!
//! [`TrafficReader`] ties them together as a stream of [`Event`]s; use
//! [`read_capture`] to collect a whole (small) capture in memory.

pub mod file;
pub mod packet;
pub mod tcp;
pub mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;

pub use file::{Capture, CaptureError, Frame, Timestamp};
pub use packet::{decode_frame, Packet, TcpFlags, TcpSegment, UdpPacket};
pub use tcp::{Direction, StreamInfo, TcpEvent, TcpReassembler, TcpStats};

use crate::error::DecodeError;

/// One UDP datagram, with tshark's `udp.stream` number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDatagram {
    pub frame: u32,
    pub timestamp: Timestamp,
    pub stream: u32,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Relative to the first datagram of the conversation.
    pub dir: Direction,
    pub payload: Vec<u8>,
}

/// What the reader sees, frame by frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A frame whose headers could not be read; decoding goes on.
    FrameError {
        frame: u32,
        error: DecodeError,
        captured: usize,
        on_wire: u32,
    },
    Udp(UdpDatagram),
    Tcp(TcpEvent),
}

/// Turns frames into [`Event`]s.
#[derive(Debug, Default)]
pub struct TrafficReader {
    tcp: TcpReassembler,
    udp: HashMap<(SocketAddr, SocketAddr), (u32, SocketAddr)>,
    frames: u32,
    frame_errors: u32,
}

impl TrafficReader {
    pub fn new() -> TrafficReader {
        TrafficReader::default()
    }

    /// Frames seen, and how many of them could not be read.
    pub fn frame_counts(&self) -> (u32, u32) {
        (self.frames, self.frame_errors)
    }

    pub fn tcp_stats(&self) -> TcpStats {
        self.tcp.stats()
    }

    /// Number of UDP conversations seen so far.
    pub fn udp_streams(&self) -> u32 {
        self.udp.len() as u32
    }

    pub fn push_frame(&mut self, frame: &Frame<'_>, out: &mut Vec<Event>) {
        self.frames += 1;
        match decode_frame(frame) {
            Err(error) => {
                self.frame_errors += 1;
                out.push(Event::FrameError {
                    frame: frame.number,
                    error,
                    captured: frame.data.len(),
                    on_wire: frame.orig_len,
                });
            }
            Ok(Packet::Tcp(seg)) => {
                let mut events = Vec::new();
                self.tcp
                    .push(frame.number, frame.timestamp, &seg, &mut events);
                out.extend(events.into_iter().map(Event::Tcp));
            }
            Ok(Packet::Udp(udp)) => {
                let key = if udp.src <= udp.dst {
                    (udp.src, udp.dst)
                } else {
                    (udp.dst, udp.src)
                };
                let next_id = self.udp.len() as u32;
                let &mut (stream, first_src) = self.udp.entry(key).or_insert((next_id, udp.src));
                out.push(Event::Udp(UdpDatagram {
                    frame: frame.number,
                    timestamp: frame.timestamp,
                    stream,
                    src: udp.src,
                    dst: udp.dst,
                    dir: if udp.src == first_src {
                        Direction::ClientToServer
                    } else {
                        Direction::ServerToClient
                    },
                    payload: udp.payload.to_vec(),
                }));
            }
            Ok(_) => {}
        }
    }

    /// End of capture: releases what reassembly still holds.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let mut events = Vec::new();
        self.tcp.finish(&mut events);
        out.extend(events.into_iter().map(Event::Tcp));
    }
}

/// Where a delivered segment's bytes sit in its direction's [`StreamBytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRef {
    pub frame: u32,
    /// Offset in the direction's byte stream (gaps included).
    pub offset: u64,
    pub len: usize,
}

/// One direction of a reassembled TCP stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamBytes {
    /// The delivered bytes in order. Gap bytes are not in here.
    pub bytes: Vec<u8>,
    pub segments: Vec<SegmentRef>,
    /// `(offset, len)` of every hole, in stream offsets.
    pub gaps: Vec<(u64, u64)>,
    /// `Some(reset)` once the direction ended.
    pub closed: Option<bool>,
}

/// A reassembled TCP stream, both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpStream {
    pub info: StreamInfo,
    /// Indexed by [`Direction::index`].
    pub halves: [StreamBytes; 2],
}

impl TcpStream {
    pub fn half(&self, dir: Direction) -> &StreamBytes {
        &self.halves[dir.index()]
    }
}

/// A whole capture, read into memory.
#[derive(Debug, Clone, Default)]
pub struct CaptureContents {
    pub frames: u32,
    /// Damage in the file itself (a truncated end, bad record headers), in order.
    pub file_errors: Vec<CaptureError>,
    /// `(frame, error)` for every frame whose headers did not parse.
    pub frame_errors: Vec<(u32, DecodeError)>,
    pub udp: Vec<UdpDatagram>,
    /// Indexed by stream id.
    pub tcp: Vec<TcpStream>,
}

/// Reads every frame of a capture held in memory. Fails only when the bytes
/// are not a capture at all; damage later on is in `file_error`.
pub fn read_capture(bytes: &[u8]) -> Result<CaptureContents, CaptureError> {
    let capture = Capture::open(bytes)?;
    let mut reader = TrafficReader::new();
    let mut contents = CaptureContents::default();
    let mut events = Vec::new();
    for frame in capture.frames() {
        match frame {
            Ok(frame) => reader.push_frame(&frame, &mut events),
            Err(e) => contents.file_errors.push(e),
        }
        absorb(&mut contents, &mut events);
    }
    reader.finish(&mut events);
    absorb(&mut contents, &mut events);
    contents.frames = reader.frame_counts().0;
    Ok(contents)
}

fn absorb(contents: &mut CaptureContents, events: &mut Vec<Event>) {
    for event in events.drain(..) {
        match event {
            Event::FrameError { frame, error, .. } => contents.frame_errors.push((frame, error)),
            Event::Udp(d) => contents.udp.push(d),
            Event::Tcp(TcpEvent::Opened(info)) => contents.tcp.push(TcpStream {
                info,
                halves: Default::default(),
            }),
            Event::Tcp(TcpEvent::Data {
                stream,
                dir,
                frame,
                offset,
                data,
                ..
            }) => {
                if let Some(s) = contents.tcp.get_mut(stream as usize) {
                    let half = &mut s.halves[dir.index()];
                    half.segments.push(SegmentRef {
                        frame,
                        offset,
                        len: data.len(),
                    });
                    half.bytes.extend_from_slice(&data);
                }
            }
            Event::Tcp(TcpEvent::Gap {
                stream,
                dir,
                offset,
                len,
                ..
            }) => {
                if let Some(s) = contents.tcp.get_mut(stream as usize) {
                    s.halves[dir.index()].gaps.push((offset, len));
                }
            }
            Event::Tcp(TcpEvent::Closed {
                stream, dir, reset, ..
            }) => {
                if let Some(s) = contents.tcp.get_mut(stream as usize) {
                    s.halves[dir.index()].closed = Some(reset);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::writer::PcapWriter;
    use super::*;

    #[test]
    fn written_conversation_reads_back() {
        let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6346".parse().unwrap();
        let mut w = PcapWriter::new();
        w.tcp_conversation(
            client,
            server,
            &[
                (true, b"GNUTELLA CONNECT/0.6\r\n"),
                (true, b"\r\n"),
                (false, b"GNUTELLA/0.6 200 OK\r\n\r\n"),
            ],
        );
        w.udp(client, server, b"datagram");
        let c = read_capture(w.bytes()).unwrap();
        assert_eq!(c.frames, 9);
        assert!(c.file_errors.is_empty() && c.frame_errors.is_empty());
        assert_eq!(c.tcp.len(), 1);
        let s = &c.tcp[0];
        assert_eq!((s.info.client, s.info.server), (client, server));
        assert_eq!(
            s.half(Direction::ClientToServer).bytes,
            b"GNUTELLA CONNECT/0.6\r\n\r\n"
        );
        assert_eq!(
            s.half(Direction::ServerToClient).bytes,
            b"GNUTELLA/0.6 200 OK\r\n\r\n"
        );
        assert_eq!(s.half(Direction::ClientToServer).segments.len(), 2);
        assert_eq!(s.half(Direction::ServerToClient).closed, Some(false));
        assert_eq!(c.udp.len(), 1);
        assert_eq!(c.udp[0].payload, b"datagram");
        assert_eq!(c.udp[0].frame, 9);
    }

    #[test]
    fn conversation_captured_midstream_reads_back() {
        let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6346".parse().unwrap();
        let mut w = PcapWriter::new();
        // The server's segment comes first, so the reader takes it for the client.
        w.tcp_midstream(
            client,
            server,
            &[
                (false, b"abc"),
                (true, b"12"),
                (true, b"lost"),
                (true, b"345"),
            ],
            &[2],
        );
        let c = read_capture(w.bytes()).unwrap();
        assert_eq!(c.frames, 5, "3 data segments and 2 FINs, no SYN");
        let s = &c.tcp[0];
        assert_eq!((s.info.client, s.info.server), (server, client));
        assert_eq!(s.half(Direction::ClientToServer).bytes, b"abc");
        let from_client = s.half(Direction::ServerToClient);
        assert_eq!(from_client.bytes, b"12345");
        assert_eq!(from_client.gaps, vec![(2, 4)]);
        assert_eq!(from_client.closed, Some(false));
    }

    #[test]
    fn damaged_frames_and_truncated_file() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2".parse().unwrap();
        let frame = writer::ethernet_frame(a, b, writer::Transport::Udp, b"hello").unwrap();
        let mut w = PcapWriter::new();
        w.push_cut(&frame, 4);
        w.push(&frame);
        let mut bytes = w.into_bytes();
        bytes.extend_from_slice(&[1, 2, 3]);
        let c = read_capture(&bytes).unwrap();
        assert_eq!(c.frame_errors, vec![(1, DecodeError::Truncated)]);
        assert_eq!(c.udp.len(), 1);
        assert_eq!(c.udp[0].frame, 2);
        assert!(matches!(
            c.file_errors[..],
            [CaptureError::Truncated { frame: 3, .. }]
        ));
    }
}

#[cfg(test)]
mod proptests {
    use super::writer::PcapWriter;
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let c: SocketAddr = "10.1.1.1:3000".parse().unwrap();
        let s: SocketAddr = "10.1.1.2:6346".parse().unwrap();
        let mut w = PcapWriter::new();
        w.tcp_conversation(
            c,
            s,
            &[
                (true, b"GET /get/1/a HTTP/1.0\r\n\r\n"),
                (false, b"HTTP 503 Busy\r\n\r\n"),
            ],
        );
        w.udp(c, s, &[0u8; 23]);
        w.into_bytes()
    }

    proptest! {
        /// Any bytes at all: a value or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = read_capture(&bytes);
            let mut with_header = sample()[..24].to_vec();
            with_header.extend_from_slice(&bytes);
            let _ = read_capture(&with_header);
        }

        /// pcapng: a valid file with bytes flipped or cut anywhere never panics.
        #[test]
        fn damaged_pcapng_never_panics(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12),
            cut in any::<usize>(),
            tail in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let good = sample();
            let mut ng = writer::to_pcapng(&Capture::open(&good).unwrap()).unwrap();
            let whole = read_capture(&ng).unwrap();
            prop_assert_eq!(whole.frames, 8);
            for (at, b) in flips {
                let at = at % ng.len();
                ng[at] = b;
            }
            let _ = read_capture(&ng);
            ng.truncate(cut % (ng.len() + 1));
            let _ = read_capture(&ng);
            ng.extend_from_slice(&tail);
            let _ = read_capture(&ng);
        }

        /// A real capture damaged anywhere: frames before the damage read as before.
        #[test]
        fn damage_leaves_earlier_frames_alone(at in 24usize..400, junk in proptest::collection::vec(any::<u8>(), 1..40), cut in any::<bool>()) {
            let good = sample();
            let at = at.min(good.len() - 1);
            let mut bad = good[..at].to_vec();
            if !cut {
                bad.extend_from_slice(&junk);
                bad.extend_from_slice(good.get(at + junk.len()..).unwrap_or(&[]));
            }
            let whole: Vec<Frame> = Capture::open(&good).unwrap().frames().map(|f| f.unwrap()).collect();
            let Ok(damaged) = Capture::open(&bad) else {
                return Ok(());
            };
            for (i, f) in damaged.frames().enumerate() {
                let Ok(f) = f else { break };
                if i < whole.len() && (f.data.as_ptr() as usize - bad.as_ptr() as usize) + f.data.len() <= at {
                    prop_assert_eq!(f.data, whole[i].data);
                }
            }
            let _ = read_capture(&bad);
        }
    }
}
