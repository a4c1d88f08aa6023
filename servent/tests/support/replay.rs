//! Shared by the replay tests: the gtk-gnutella ultrapeer side of the links
//! captured in `ndpi-gtkg-0.6-2022.pcap`, cut into what a test needs to play
//! it back against a real `hazel` (handshake blocks, the compressed
//! server-to-client byte stream in its captured TCP pieces, and the
//! descriptors inside it), plus a scripted loopback "ultrapeer" socket.
//!
//! The capture lives outside the repository (`../shared/traces` from the
//! workspace root, or `$HAZEL_TRACES`); a missing capture fails the test
//! with a message saying where it was looked for.

#![allow(dead_code)] // each test file uses a different part

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hazel_protocol::framer::{Frame, Framer};
use hazel_protocol::handshake::{Handshake, Parsed};
use hazel_protocol::pcap::{read_capture, CaptureContents, Direction};

/// The capture of a gtk-gnutella 1.2.2 leaf talking to real ultrapeers.
pub const NDPI_PCAP: &str = "ndpi-gtkg-0.6-2022.pcap";
/// The three links that were established with deflate both ways.
pub const DEFLATE_LINKS: [u32; 3] = [94, 95, 122];

pub use hazel_protocol::traces::read as read_trace;

/// The whole ndpi capture, reassembled.
pub fn ndpi_capture() -> CaptureContents {
    let pcap = read_trace(NDPI_PCAP);
    read_capture(&pcap).expect("the ndpi capture opens")
}

/// The consecutive handshake blocks at the start of one direction, raw
/// (each ending with its blank line), and the byte offset after the last.
pub fn handshake_blocks(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(rest) = bytes.get(at..).filter(|r| r.starts_with(b"GNUTELLA")) {
        match Handshake::parse(rest) {
            Ok(Parsed::Complete { consumed, .. }) => {
                blocks.push(rest[..consumed].to_vec());
                at += consumed;
            }
            other => panic!(
                "captured handshake block does not parse ({other:?}): {:?}",
                String::from_utf8_lossy(rest)
            ),
        }
    }
    (blocks, at)
}

/// One parsed handshake block.
pub fn parse_block(block: &[u8]) -> Handshake {
    match Handshake::parse(block) {
        Ok(Parsed::Complete { message, .. }) => message,
        other => panic!(
            "handshake block does not parse ({other:?}): {:?}",
            String::from_utf8_lossy(block)
        ),
    }
}

/// One descriptor of the captured server-to-client stream, and the index of
/// the captured TCP piece whose arrival completes it.
pub struct CapturedDescriptor {
    pub frame: Frame,
    pub piece: usize,
}

/// The ultrapeer side of one captured deflate link.
pub struct CapturedLink {
    pub stream: u32,
    /// The ultrapeer's `GNUTELLA/0.6 200 OK` block, verbatim.
    pub server_ok: Vec<u8>,
    /// The leaf's blocks (CONNECT, then its third step), verbatim.
    pub client_blocks: Vec<Vec<u8>>,
    /// The compressed bytes after the handshake, as the TCP segments carried them.
    pub pieces: Vec<Vec<u8>>,
    /// Every descriptor inside, in order.
    pub descriptors: Vec<CapturedDescriptor>,
}

/// One direction of a captured link: its handshake blocks verbatim, the
/// compressed bytes after them as the TCP segments carried them, and the
/// descriptors inside (framed with the protocol crate's framer).
pub struct CapturedHalf {
    pub blocks: Vec<Vec<u8>>,
    pub pieces: Vec<Vec<u8>>,
    pub descriptors: Vec<CapturedDescriptor>,
}

impl CapturedHalf {
    pub fn from_capture(capture: &CaptureContents, stream: u32, dir: Direction) -> CapturedHalf {
        let tcp = capture
            .tcp
            .get(stream as usize)
            .unwrap_or_else(|| panic!("tcp.stream {stream} is not in the capture"));
        let half = tcp.half(dir);
        assert!(half.gaps.is_empty(), "stream {stream} {dir:?} has holes");
        let (blocks, payload_start) = handshake_blocks(&half.bytes);

        // The segments' offsets are stream offsets; with no holes they index `bytes`.
        let mut pieces = Vec::new();
        for seg in &half.segments {
            let start = (seg.offset as usize).max(payload_start);
            let end = seg.offset as usize + seg.len;
            if let Some(piece) = half.bytes.get(start..end).filter(|p| !p.is_empty()) {
                pieces.push(piece.to_vec());
            }
        }
        let mut framer = Framer::deflated();
        let mut descriptors = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            framer
                .push(piece)
                .unwrap_or_else(|e| panic!("stream {stream} {dir:?} piece {i}: {e}"));
            // Bounded: each turn takes one whole frame out of what was pushed.
            while let Some(frame) = framer
                .next_frame()
                .unwrap_or_else(|e| panic!("stream {stream} {dir:?} piece {i}: {e}"))
            {
                descriptors.push(CapturedDescriptor { frame, piece: i });
            }
        }
        assert_eq!(
            framer.buffered(),
            0,
            "stream {stream} {dir:?}: the stream should end on a descriptor boundary"
        );
        CapturedHalf {
            blocks,
            pieces,
            descriptors,
        }
    }
}

impl CapturedLink {
    /// Cuts stream `stream` of the capture into handshake and payload pieces,
    /// and frames the inflated payload with the protocol crate's framer.
    pub fn from_capture(capture: &CaptureContents, stream: u32) -> CapturedLink {
        let server = CapturedHalf::from_capture(capture, stream, Direction::ServerToClient);
        let client = CapturedHalf::from_capture(capture, stream, Direction::ClientToServer);
        assert_eq!(server.blocks.len(), 1, "stream {stream}: one server block");
        CapturedLink {
            stream,
            server_ok: server.blocks[0].clone(),
            client_blocks: client.blocks,
            pieces: server.pieces,
            descriptors: server.descriptors,
        }
    }

    /// The ultrapeer's User-Agent.
    pub fn user_agent(&self) -> String {
        parse_block(&self.server_ok)
            .headers()
            .and_then(|h| h.user_agent())
            .expect("the captured 200 OK names its user agent")
            .to_string()
    }
}

/// Reads one handshake block (up to its blank line) from `stream`, bounded
/// in size and by the socket's read timeout.
pub fn read_block(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 * 1024, "handshake block too long");
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!(
                "hazel closed the link inside a handshake block: {:?}",
                String::from_utf8_lossy(&head)
            ),
            Err(e) => panic!(
                "no handshake block from hazel ({e}); so far: {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    head
}

/// Accepts one connection on `listener` within `timeout`.
pub fn accept_within(listener: &TcpListener, timeout: Duration) -> TcpStream {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking socket");
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("read timeout");
                return stream;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "hazel never connected");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Everything `stream` sends until it closes or `quiet` passes with nothing
/// new, bounded by `limit` overall. Returns the bytes and whether it closed.
pub fn drain(stream: &mut TcpStream, quiet: Duration, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    stream.set_read_timeout(Some(quiet)).expect("read timeout");
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (out, false)
            }
            Err(_) => return (out, true), // reset: closed too
        }
    }
    (out, false)
}

/// Writes `bytes`, failing the test with context when hazel is gone.
pub fn send(stream: &mut TcpStream, bytes: &[u8], what: &str) {
    stream
        .write_all(bytes)
        .unwrap_or_else(|e| panic!("sending {what}: {e}"));
}

/// The descriptors the gtk-gnutella leaf sent on captured link `stream`
/// (its compressed client-to-server side, inflated and framed).
pub fn client_frames(capture: &CaptureContents, stream: u32) -> Vec<Frame> {
    CapturedHalf::from_capture(capture, stream, Direction::ClientToServer)
        .descriptors
        .into_iter()
        .map(|d| d.frame)
        .collect()
}

/// Continues a captured compressed stream with more descriptors. The
/// captured sender flushed after each batch (every direction ends on a
/// byte-aligned, non-final block), so raw deflate blocks appended after it
/// inflate as part of the same zlib stream.
pub struct DeflateTail {
    deflater: hazel_protocol::framer::Deflater,
}

impl Default for DeflateTail {
    fn default() -> Self {
        DeflateTail {
            deflater: hazel_protocol::framer::Deflater::continuing(),
        }
    }
}

impl DeflateTail {
    /// `plain` compressed and sync-flushed, ready to send.
    pub fn compress(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + 64);
        self.deflater.compress_batch(plain, &mut out);
        out
    }
}
