//! Writing small legacy pcap files, so tests can build captures of traffic
//! no real capture has (OpenNap, GIV, damaged streams) and run the same
//! reader and decoders over them.
//!
//! Frames are Ethernet II with IPv4 or IPv6 and TCP or UDP, built by
//! `etherparse`. [`PcapWriter::tcp_conversation`] lays out a whole TCP
//! connection (three-way handshake, data both ways with correct sequence
//! numbers, FIN) from a list of payloads.

use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

use super::file::Timestamp;

/// The transport header of a frame to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp {
        seq: u32,
        ack: u32,
        syn: bool,
        fin: bool,
        rst: bool,
    },
    Udp,
}

/// Builds one Ethernet frame. Both addresses must be of the same IP version.
pub fn ethernet_frame(
    src: SocketAddr,
    dst: SocketAddr,
    transport: Transport,
    payload: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let link = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => link.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => link.ipv6(s.octets(), d.octets(), 64),
        _ => return Err("source and destination are of different IP versions"),
    };
    let mut out = Vec::new();
    match transport {
        Transport::Udp => ip
            .udp(src.port(), dst.port())
            .write(&mut out, payload)
            .map_err(|_| "UDP packet does not fit")?,
        Transport::Tcp {
            seq,
            ack,
            syn,
            fin,
            rst,
        } => {
            let mut b = ip.tcp(src.port(), dst.port(), seq, 65535);
            if !(syn && ack == 0) {
                b = b.ack(ack);
            }
            if syn {
                b = b.syn();
            }
            if fin {
                b = b.fin();
            }
            if rst {
                b = b.rst();
            }
            b.write(&mut out, payload)
                .map_err(|_| "TCP packet does not fit")?
        }
    }
    Ok(out)
}

/// Accumulates a legacy pcap file (little-endian, microseconds, Ethernet).
#[derive(Debug, Clone)]
pub struct PcapWriter {
    bytes: Vec<u8>,
    /// Time of the next frame; each frame advances it by a millisecond.
    clock: Timestamp,
}

impl Default for PcapWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl PcapWriter {
    pub fn new() -> PcapWriter {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&262_144u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        PcapWriter {
            bytes,
            clock: Timestamp {
                secs: 1_000_000_000,
                nanos: 0,
            },
        }
    }

    /// Appends a frame, keeping at most `keep` bytes of it (snap length).
    pub fn push_cut(&mut self, frame: &[u8], keep: usize) {
        let kept = &frame[..keep.min(frame.len())];
        let secs = u32::try_from(self.clock.secs).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&secs.to_le_bytes());
        self.bytes
            .extend_from_slice(&(self.clock.nanos / 1000).to_le_bytes());
        self.bytes
            .extend_from_slice(&(kept.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(kept);
        self.clock.nanos += 1_000_000;
        if self.clock.nanos >= 1_000_000_000 {
            self.clock.nanos -= 1_000_000_000;
            self.clock.secs += 1;
        }
    }

    /// Appends a whole frame.
    pub fn push(&mut self, frame: &[u8]) {
        self.push_cut(frame, frame.len());
    }

    /// Appends one UDP datagram.
    pub fn udp(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> &mut Self {
        if let Ok(f) = ethernet_frame(src, dst, Transport::Udp, payload) {
            self.push(&f);
        }
        self
    }

    /// Appends a complete TCP connection from `client` to `server`: SYN,
    /// SYN-ACK, ACK, then each `(from_client, payload)` as one segment, then
    /// FIN both ways. Initial sequence numbers are fixed and distinct.
    pub fn tcp_conversation(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        segments: &[(bool, &[u8])],
    ) -> &mut Self {
        self.tcp_conversation_losing(client, server, segments, &[])
    }

    /// Like [`PcapWriter::tcp_conversation`], but the segments whose
    /// positions are in `lost` are left out of the capture (their sequence
    /// numbers are still used, as if the capture had missed them).
    pub fn tcp_conversation_losing(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        segments: &[(bool, &[u8])],
        lost: &[usize],
    ) -> &mut Self {
        self.tcp_layout(client, server, segments, lost, true)
    }

    /// A TCP connection whose capture started after it was opened: no SYN,
    /// SYN-ACK or ACK, the segments (minus those in `lost`) with sequence
    /// numbers that do not start at an initial sequence number, then FIN
    /// both ways. The first segment captured decides which side counts as
    /// the client, as it does for a reader that never saw the SYN.
    pub fn tcp_midstream(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        segments: &[(bool, &[u8])],
        lost: &[usize],
    ) -> &mut Self {
        self.tcp_layout(client, server, segments, lost, false)
    }

    fn tcp_layout(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        segments: &[(bool, &[u8])],
        lost: &[usize],
        open: bool,
    ) -> &mut Self {
        let mut c_seq: u32 = 0x1000_0000;
        let mut s_seq: u32 = 0x7fff_fff0; // wraps past 2^31 on purpose
        let mut frame = |src, dst, t, p: &[u8]| {
            if let Ok(f) = ethernet_frame(src, dst, t, p) {
                self.push(&f);
            }
        };
        let tcp = |seq, ack, syn, fin| Transport::Tcp {
            seq,
            ack,
            syn,
            fin,
            rst: false,
        };
        if open {
            frame(client, server, tcp(c_seq, 0, true, false), &[]);
            frame(
                server,
                client,
                tcp(s_seq, c_seq.wrapping_add(1), true, false),
                &[],
            );
            c_seq = c_seq.wrapping_add(1);
            s_seq = s_seq.wrapping_add(1);
            frame(client, server, tcp(c_seq, s_seq, false, false), &[]);
        } else {
            // Somewhere in the middle of the connection's sequence space.
            c_seq = c_seq.wrapping_add(0x0012_3457);
            s_seq = s_seq.wrapping_add(0x0001_2347);
        }
        for (i, &(from_client, payload)) in segments.iter().enumerate() {
            let captured = !lost.contains(&i);
            if from_client {
                if captured {
                    frame(client, server, tcp(c_seq, s_seq, false, false), payload);
                }
                c_seq = c_seq.wrapping_add(payload.len() as u32);
            } else {
                if captured {
                    frame(server, client, tcp(s_seq, c_seq, false, false), payload);
                }
                s_seq = s_seq.wrapping_add(payload.len() as u32);
            }
        }
        frame(client, server, tcp(c_seq, s_seq, false, true), &[]);
        frame(
            server,
            client,
            tcp(s_seq, c_seq.wrapping_add(1), false, true),
            &[],
        );
        self
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Rewrites a capture as pcapng (little-endian, one interface per link
/// type, nanosecond timestamps), frame for frame. Lets tests run the pcapng
/// path of the reader over the same traffic as a legacy file.
pub fn to_pcapng(capture: &super::file::Capture<'_>) -> Result<Vec<u8>, super::file::CaptureError> {
    fn block(out: &mut Vec<u8>, block_type: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        out.extend_from_slice(&block_type.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&total.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut interfaces: Vec<i32> = Vec::new();
    for frame in capture.frames() {
        let frame = frame?;
        let if_id = match interfaces.iter().position(|&l| l == frame.linktype) {
            Some(i) => i,
            None => {
                let mut idb = Vec::new();
                idb.extend_from_slice(&(frame.linktype as u16).to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&262_144u32.to_le_bytes());
                // if_tsresol = 9 (nanoseconds), then opt_endofopt.
                idb.extend_from_slice(&9u16.to_le_bytes());
                idb.extend_from_slice(&1u16.to_le_bytes());
                idb.extend_from_slice(&[9, 0, 0, 0]);
                idb.extend_from_slice(&[0, 0, 0, 0]);
                block(&mut out, 1, &idb);
                interfaces.push(frame.linktype);
                interfaces.len() - 1
            }
        };
        let ticks = (frame.timestamp.secs.max(0) as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(frame.timestamp.nanos));
        let mut epb = Vec::new();
        epb.extend_from_slice(&(if_id as u32).to_le_bytes());
        epb.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ticks as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&frame.orig_len.to_le_bytes());
        epb.extend_from_slice(frame.data);
        block(&mut out, 6, &epb);
    }
    Ok(out)
}
