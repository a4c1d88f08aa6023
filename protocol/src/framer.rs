//! Bytes in, whole descriptors out: one [`Framer`] per Gnutella stream.
//!
//! Bytes may arrive split anywhere. The framer checks each header as soon
//! as its 23 bytes are in, so a declared payload length over
//! [`MAX_PAYLOAD_LEN`](crate::header::MAX_PAYLOAD_LEN) is an error before any of that payload is buffered,
//! and no buffer is ever sized from a length field: the buffer only holds
//! bytes that actually arrived (at most one partial descriptor beyond the
//! complete ones the caller has not taken yet).
//!
//! Frames come out raw (header + payload bytes, for cheap forwarding) and
//! decode on request, so a malformed payload of a known type costs that one
//! descriptor, never stream sync.
//!
//! 0.6 links that agreed on `Content-Encoding: deflate` carry a zlib stream
//! per direction: in the captured links every direction starts with a zlib
//! header (`78 da`, or `68 81` for a 16 KiB window), never raw deflate.
//! [`Framer::deflated`] inflates incoming bytes in bounded steps, only when
//! no complete frame is waiting, so a small compressed input cannot grow
//! the buffer beyond one descriptor plus one step. [`Deflater`] compresses
//! the outgoing side with a sync flush after each batch. [`Inflater`] is the
//! incoming side on its own, for callers that frame elsewhere.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::descriptor::Descriptor;
use crate::error::{DecodeError, Result};
use crate::header::{Header, HEADER_LEN};

/// Largest number of inflated bytes produced per inflate step.
pub const INFLATE_STEP: usize = 16 * 1024;

/// Consumed bytes are dropped from the front of the buffer once this many
/// have accumulated (or whenever the buffer is fully consumed).
const COMPACT_AFTER: usize = 64 * 1024;

/// One whole descriptor as it travelled: header and payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    /// Header + payload, `HEADER_LEN + header.payload_len` bytes.
    pub bytes: Vec<u8>,
}

/// A borrowed [`Frame`], valid until the framer is used again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub header: Header,
    pub bytes: &'a [u8],
}

impl Frame {
    pub fn payload(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Decodes the payload according to the header's type.
    pub fn decode(&self) -> Result<Descriptor> {
        Descriptor::parse_payload(&self.header, self.payload())
    }

    /// The frame of a descriptor about to be sent.
    pub fn from_descriptor(d: &Descriptor) -> Frame {
        Frame {
            header: d.header(),
            bytes: d.to_bytes(),
        }
    }

    /// Rewrites TTL and hops in place (for forwarding without re-encoding).
    pub fn set_ttl_hops(&mut self, ttl: u8, hops: u8) {
        self.header.ttl = ttl;
        self.header.hops = hops;
        if let Some(b) = self.bytes.get_mut(17) {
            *b = ttl;
        }
        if let Some(b) = self.bytes.get_mut(18) {
            *b = hops;
        }
    }
}

impl<'a> FrameRef<'a> {
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or(&[])
    }

    pub fn decode(&self) -> Result<Descriptor> {
        Descriptor::parse_payload(&self.header, self.payload())
    }

    pub fn to_frame(&self) -> Frame {
        Frame {
            header: self.header,
            bytes: self.bytes.to_vec(),
        }
    }
}

/// Reads the frame at the start of `buf`: `Ok(None)` when more bytes are
/// needed, the header and the frame's total length when it is complete.
/// Stateless; for datagram-like buffers that hold several descriptors.
pub fn split_frame(buf: &[u8]) -> Result<Option<(Header, usize)>> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let header = Header::parse(buf)?;
    let total = HEADER_LEN + header.payload_len as usize;
    Ok((buf.len() >= total).then_some((header, total)))
}

/// Reassembles descriptors from one stream.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of the first complete frame not yet handed out.
    read_pos: usize,
    /// Start of the frame being assembled; `read_pos..partial_start` holds
    /// complete frames only.
    partial_start: usize,
    /// Total length of the frame being assembled, once its header is in.
    partial_len: Option<usize>,
    inflater: Option<Inflater>,
    /// Where one inflate step lands: allocated and zeroed once per compressed link, not on
    /// every call (a peer dribbling compressed bytes would otherwise cost an allocation and a
    /// 16 KiB fill per read).
    step: Vec<u8>,
    failed: Option<DecodeError>,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    /// A framer for an uncompressed stream.
    pub fn new() -> Framer {
        Framer {
            buf: Vec::new(),
            read_pos: 0,
            partial_start: 0,
            partial_len: None,
            inflater: None,
            step: Vec::new(),
            failed: None,
        }
    }

    /// A framer for a stream compressed with `Content-Encoding: deflate`.
    pub fn deflated() -> Framer {
        Framer {
            inflater: Some(Inflater::new()),
            ..Framer::new()
        }
    }

    pub fn is_deflated(&self) -> bool {
        self.inflater.is_some()
    }

    /// Hands the framer bytes read from the socket.
    ///
    /// Uncompressed: fails as soon as a header declares more than
    /// [`MAX_PAYLOAD_LEN`](crate::header::MAX_PAYLOAD_LEN); the stream is then out of sync and every later
    /// call fails too (frames completed before the bad header can still be
    /// taken). Compressed: the bytes are queued, and errors show up in
    /// [`Framer::next_frame`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match &mut self.inflater {
            Some(inflater) => {
                inflater.push(bytes);
                Ok(())
            }
            None => self.absorb(bytes),
        }
    }

    /// Bytes held: complete frames not yet taken plus the partial one (plus
    /// compressed input not yet inflated).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.read_pos + self.inflater.as_ref().map_or(0, |i| i.pending_input())
    }

    /// The next complete frame, borrowed. `Ok(None)`: push more bytes.
    pub fn next_frame_ref(&mut self) -> Result<Option<FrameRef<'_>>> {
        if self.read_pos == self.partial_start {
            self.refill()?;
        }
        if self.read_pos == self.partial_start {
            return match &self.failed {
                Some(e) => Err(e.clone()),
                None => Ok(None),
            };
        }
        // Every header in read_pos..partial_start was checked on the way in.
        let (header, total) = split_frame(&self.buf[self.read_pos..self.partial_start])?
            .ok_or(DecodeError::Truncated)?;
        let start = self.read_pos;
        self.read_pos += total;
        Ok(Some(FrameRef {
            header,
            bytes: &self.buf[start..start + total],
        }))
    }

    /// The next complete frame, owned.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        Ok(self.next_frame_ref()?.map(|f| f.to_frame()))
    }

    /// The next complete frame with its decoding (a payload that does not
    /// decode is reported next to its frame; the stream stays in sync).
    pub fn next_descriptor(&mut self) -> Result<Option<(Frame, Result<Descriptor>)>> {
        Ok(self.next_frame()?.map(|f| {
            let d = f.decode();
            (f, d)
        }))
    }

    /// Inflates one bounded step when the stream is compressed and no
    /// complete frame is waiting, until a frame completes or input runs out.
    fn refill(&mut self) -> Result<()> {
        if self.failed.is_some() {
            return Ok(());
        }
        if self.inflater.is_none() {
            return Ok(());
        }
        let mut step = std::mem::take(&mut self.step);
        step.resize(INFLATE_STEP, 0);
        let result = self.refill_with(&mut step);
        self.step = step;
        result
    }

    fn refill_with(&mut self, step: &mut [u8]) -> Result<()> {
        loop {
            let Some(inflater) = &mut self.inflater else {
                return Ok(());
            };
            let produced = match inflater.inflate_into(step) {
                Ok(n) => n,
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(e);
                }
            };
            if produced == 0 {
                return Ok(());
            }
            if let Err(e) = self.absorb(step.get(..produced).unwrap_or_default()) {
                // Frames that completed in this step before the bad header are handed out
                // first (as on a plain stream); the stored error follows them.
                if self.read_pos != self.partial_start {
                    return Ok(());
                }
                return Err(e);
            }
            if self.read_pos != self.partial_start {
                return Ok(());
            }
        }
    }

    /// Appends uncompressed bytes, checking each header as it completes.
    fn absorb(&mut self, mut input: &[u8]) -> Result<()> {
        self.compact();
        while !input.is_empty() {
            let have = self.buf.len() - self.partial_start;
            let want = match self.partial_len {
                None => HEADER_LEN - have,
                Some(total) => total - have,
            };
            let take = want.min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
            let have = have + take;
            if self.partial_len.is_none() && have == HEADER_LEN {
                match Header::parse(&self.buf[self.partial_start..]) {
                    Ok(h) => self.partial_len = Some(HEADER_LEN + h.payload_len as usize),
                    Err(e) => {
                        self.buf.truncate(self.partial_start);
                        self.failed = Some(e.clone());
                        return Err(e);
                    }
                }
            }
            if self.partial_len == Some(have) {
                self.partial_start = self.buf.len();
                self.partial_len = None;
            }
        }
        Ok(())
    }

    fn compact(&mut self) {
        if self.read_pos == 0 {
            return;
        }
        if self.read_pos == self.buf.len() || self.read_pos >= COMPACT_AFTER {
            self.buf.drain(..self.read_pos);
            self.partial_start -= self.read_pos;
            self.read_pos = 0;
        }
    }
}

/// The incoming half of a compressed link: compressed bytes in, inflated
/// bytes out, a bounded amount per call. Accepts a zlib stream (what the
/// captured gtk-gnutella links use) and, if the first two bytes are not a
/// zlib header, raw deflate.
#[derive(Debug)]
pub struct Inflater {
    z: Option<Decompress>,
    pending: Vec<u8>,
    pos: usize,
    finished: bool,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

/// Whether two bytes form a valid zlib header (deflate method, window ≤ 32 KiB,
/// check bits), as RFC 1950 defines it.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0F == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

impl Inflater {
    pub fn new() -> Inflater {
        Inflater {
            z: None,
            pending: Vec::new(),
            pos: 0,
            finished: false,
        }
    }

    /// Queues compressed bytes.
    pub fn push(&mut self, compressed: &[u8]) {
        if self.pos > 0 && (self.pos == self.pending.len() || self.pos >= COMPACT_AFTER) {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        self.pending.extend_from_slice(compressed);
    }

    /// Compressed bytes queued and not yet inflated.
    pub fn pending_input(&self) -> usize {
        self.pending.len() - self.pos
    }

    /// Appends at most `max_out` inflated bytes to `out` and returns how
    /// many; 0 means more input is needed (or the stream has ended).
    pub fn inflate(&mut self, out: &mut Vec<u8>, max_out: usize) -> Result<usize> {
        let start = out.len();
        out.resize(start + max_out, 0);
        let result = self.inflate_into(out.get_mut(start..).unwrap_or_default());
        out.truncate(start + *result.as_ref().unwrap_or(&0));
        result
    }

    /// Inflates into `buf` (at most `buf.len()` bytes) and returns how many bytes were written
    /// at its start; 0 means more input is needed (or the stream has ended). For callers that
    /// keep one buffer across calls instead of growing a vector each time.
    pub fn inflate_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.z.is_none() {
            let [cmf, flg] = match self.pending.get(self.pos..self.pos.saturating_add(2)) {
                Some(&[a, b]) => [a, b],
                _ => return Ok(0),
            };
            self.z = Some(Decompress::new(is_zlib_header(cmf, flg)));
        }
        let Some(z) = &mut self.z else {
            return Ok(0);
        };
        let input = self.pending.get(self.pos..).unwrap_or_default();
        if self.finished {
            return if input.is_empty() {
                Ok(0)
            } else {
                Err(DecodeError::TrailingBytes)
            };
        }
        // Even with no input left, the inflater may hold output from the
        // last call that did not fit: always ask.
        if buf.is_empty() {
            return Ok(0);
        }
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let status = z.decompress(input, buf, FlushDecompress::None);
        let consumed = (z.total_in() - in_before) as usize;
        let produced = (z.total_out() - out_before) as usize;
        self.pos += consumed;
        match status {
            Ok(Status::StreamEnd) => self.finished = true,
            Ok(_) => {}
            Err(_) => return Err(DecodeError::Inflate),
        }
        Ok(produced)
    }
}

/// The four bytes that end every completed sync flush (an empty stored block's length fields).
pub const SYNC_FLUSH_MARKER: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// The outgoing half of a compressed link: a zlib stream, sync-flushed
/// after each batch so the peer can decode everything sent so far.
pub struct Deflater {
    z: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater::new()
    }
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("total_in", &self.z.total_in())
            .field("total_out", &self.z.total_out())
            .finish()
    }
}

impl Deflater {
    pub fn new() -> Deflater {
        Deflater {
            z: Compress::new(Compression::default(), true),
        }
    }

    /// Compresses `plain` and sync-flushes, appending to `out`.
    pub fn compress_batch(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        if plain.is_empty() {
            return;
        }
        let start_in = self.z.total_in();
        loop {
            let done = (self.z.total_in() - start_in) as usize;
            let rest = plain.get(done..).unwrap_or(&[]);
            out.reserve(rest.len() / 2 + 64);
            let before = (self.z.total_in(), self.z.total_out());
            match self.z.compress_vec(rest, out, FlushCompress::Sync) {
                Ok(_) => {}
                // In-memory compression only fails on misuse of the API.
                Err(_) => return,
            }
            let all_in = (self.z.total_in() - start_in) as usize == plain.len();
            // A completed sync flush ends with an empty stored block, `00 00 ff ff`. Having
            // room left in `out` is not enough: after all input is taken the compressor can
            // return with part of the flush still held (seen after tiny batches), and the peer
            // would never see the batch's last bytes.
            if all_in && out.len() < out.capacity() && out.ends_with(&SYNC_FLUSH_MARKER) {
                return;
            }
            if (self.z.total_in(), self.z.total_out()) == before && out.len() < out.capacity() {
                // No progress with room to spare: nothing more will come out.
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::Payload;
    use crate::header::{DescriptorId, PayloadType, MAX_PAYLOAD_LEN};

    fn ping(n: u8) -> Vec<u8> {
        let mut v = vec![n; 16];
        v.extend_from_slice(&[0x00, 7, 0, 0, 0, 0, 0]);
        v
    }

    fn with_payload(ty: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![9; 16];
        v.extend_from_slice(&[ty, 1, 2]);
        v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn frames_split_byte_by_byte() {
        let mut stream = ping(1);
        stream.extend(with_payload(0x31, b"vendor stuff"));
        stream.extend(ping(2));
        let mut f = Framer::new();
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b)).unwrap();
            while let Some(frame) = f.next_frame().unwrap() {
                got.push(frame);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].header.id, DescriptorId([1; 16]));
        assert_eq!(got[1].header.payload_type, PayloadType::Other(0x31));
        assert_eq!(got[1].payload(), b"vendor stuff");
        assert!(matches!(
            got[1].decode().unwrap().payload,
            Payload::Unknown {
                payload_type: 0x31,
                ..
            }
        ));
        let joined: Vec<u8> = got.iter().flat_map(|f| f.bytes.clone()).collect();
        assert_eq!(joined, stream);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn oversized_length_fails_before_buffering_payload() {
        let mut f = Framer::new();
        let mut head = ping(3);
        head[19..23].copy_from_slice(&(MAX_PAYLOAD_LEN as u32 + 1).to_le_bytes());
        let mut stream = ping(1);
        stream.extend_from_slice(&head);
        stream.extend(vec![0u8; 1000]);
        let err = f.push(&stream).unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { .. }));
        // Only the complete ping before it is held; none of the payload.
        assert_eq!(f.buffered(), HEADER_LEN);
        assert!(f.next_frame().unwrap().is_some());
        assert!(f.next_frame().is_err());
        assert!(f.push(&ping(4)).is_err(), "the stream stays failed");
    }

    #[test]
    fn malformed_payload_keeps_sync() {
        let mut stream = with_payload(0x01, &[0; 5]); // a 5-byte Pong
        stream.extend(ping(2));
        let mut f = Framer::new();
        f.push(&stream).unwrap();
        let (_, bad) = f.next_descriptor().unwrap().unwrap();
        assert!(bad.is_err());
        let (_, good) = f.next_descriptor().unwrap().unwrap();
        assert!(matches!(good.unwrap().payload, Payload::Ping(_)));
        assert!(f.next_frame().unwrap().is_none());
    }

    #[test]
    fn frame_of_a_descriptor_reads_back() {
        let d = Descriptor {
            id: DescriptorId([7; 16]),
            ttl: 7,
            hops: 0,
            payload: Payload::Bye(crate::descriptor::Bye {
                code: 200,
                message: b"bye".to_vec(),
            }),
        };
        let frame = Frame::from_descriptor(&d);
        assert_eq!(frame.header.payload_len, 6);
        let mut f = Framer::new();
        f.push(&frame.bytes).unwrap();
        let back = f.next_frame().unwrap().unwrap();
        assert_eq!(back, frame);
        assert_eq!(back.decode().unwrap(), d);
    }

    #[test]
    fn set_ttl_hops_rewrites_bytes() {
        let mut f = Framer::new();
        f.push(&ping(1)).unwrap();
        let mut frame = f.next_frame().unwrap().unwrap();
        frame.set_ttl_hops(6, 1);
        assert_eq!(Header::parse(&frame.bytes).unwrap(), frame.header);
        assert_eq!((frame.bytes[17], frame.bytes[18]), (6, 1));
    }

    #[test]
    fn deflated_stream_round_trip() {
        let mut plain = Vec::new();
        for i in 0..200u8 {
            plain.extend(ping(i));
            plain.extend(with_payload(0x80, b"\x80\x00some search\x00"));
        }
        let mut d = Deflater::new();
        let mut wire = Vec::new();
        let half = plain.len() / 2;
        d.compress_batch(&plain[..half], &mut wire);
        let first_batch = wire.len();
        d.compress_batch(&plain[half..], &mut wire);
        assert_eq!(wire[0], 0x78, "zlib header");

        // The first batch alone decodes fully: the sync flush worked.
        let mut f = Framer::deflated();
        f.push(&wire[..first_batch]).unwrap();
        let mut out = Vec::new();
        while let Some(fr) = f.next_frame().unwrap() {
            out.extend(fr.bytes);
        }
        assert_eq!(out, plain[..half]);

        // And the whole stream, pushed in odd pieces.
        let mut f = Framer::deflated();
        let mut out = Vec::new();
        for piece in wire.chunks(7) {
            f.push(piece).unwrap();
            while let Some(fr) = f.next_frame().unwrap() {
                out.extend(fr.bytes);
            }
        }
        assert_eq!(out, plain);
    }

    #[test]
    fn inflater_output_is_bounded_per_call() {
        let plain = vec![0u8; 1_000_000];
        let mut wire = Vec::new();
        Deflater::new().compress_batch(&plain, &mut wire);
        assert!(wire.len() < 10_000);
        let mut inf = Inflater::new();
        inf.push(&wire);
        let mut out = Vec::new();
        let mut calls = 0;
        loop {
            let before = out.len();
            let n = inf.inflate(&mut out, 4096).unwrap();
            assert!(n <= 4096 && out.len() - before == n);
            calls += 1;
            if n == 0 || calls > 1000 {
                break;
            }
        }
        assert_eq!(out.len(), plain.len(), "after {calls} calls");
        assert!(out == plain);
    }

    #[test]
    fn deflated_flood_is_inflated_a_step_at_a_time() {
        // 2.3 MB of zeros compress to a few kB and inflate to 100 000 empty
        // Pings (a zero header declares length 0). The framer must not
        // inflate them all at once: it holds at most one step of output.
        let plain = vec![0u8; 23 * 100_000];
        let mut wire = Vec::new();
        Deflater::new().compress_batch(&plain, &mut wire);
        let mut f = Framer::deflated();
        f.push(&wire).unwrap();
        assert!(f.next_frame().unwrap().is_some());
        assert!(f.buffered() <= wire.len() + INFLATE_STEP);
    }

    #[test]
    fn raw_deflate_is_accepted_and_garbage_is_an_error() {
        let mut raw = Compress::new(Compression::default(), false);
        let plain = ping(5);
        let mut wire = Vec::with_capacity(1024);
        raw.compress_vec(&plain, &mut wire, FlushCompress::Sync)
            .unwrap();
        let mut f = Framer::deflated();
        f.push(&wire).unwrap();
        assert_eq!(f.next_frame().unwrap().unwrap().bytes, plain);

        let mut f = Framer::deflated();
        f.push(&[0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!(f.next_frame(), Err(DecodeError::Inflate));
    }

    #[test]
    fn split_frame_needs_whole_frames() {
        let p = ping(1);
        assert_eq!(split_frame(&p[..22]).unwrap(), None);
        let (h, len) = split_frame(&p).unwrap().unwrap();
        assert_eq!((h.payload_type, len), (PayloadType::Ping, 23));
        let q = with_payload(0x80, b"\x80\x00x\x00");
        assert_eq!(split_frame(&q[..q.len() - 1]).unwrap(), None);
    }

    #[test]
    fn deflated_frames_before_a_bad_header_come_out_first() {
        // One inflate step holds two good pings and then a header declaring 64 KiB + 1.
        let mut plain = ping(1);
        plain.extend(ping(2));
        let mut bad = ping(3);
        bad[19..23].copy_from_slice(&(MAX_PAYLOAD_LEN as u32 + 1).to_le_bytes());
        plain.extend(&bad[..HEADER_LEN]);
        let mut wire = Vec::new();
        Deflater::new().compress_batch(&plain, &mut wire);
        let mut f = Framer::deflated();
        f.push(&wire).unwrap();
        assert_eq!(f.next_frame().unwrap().expect("first ping").bytes, ping(1));
        assert_eq!(f.next_frame().unwrap().expect("second ping").bytes, ping(2));
        assert!(matches!(f.next_frame(), Err(DecodeError::TooLong { .. })));
        assert!(f.next_frame().is_err(), "the stream stays failed");
        assert!(f.push(b"more").is_err());
    }

    #[test]
    fn inflate_into_a_kept_buffer_gives_the_stream() {
        let mut plain = Vec::new();
        for i in 0..50u8 {
            plain.extend(ping(i));
        }
        let mut wire = Vec::new();
        Deflater::new().compress_batch(&plain, &mut wire);
        let mut inf = Inflater::new();
        let mut buf = [0u8; 100];
        let mut out = Vec::new();
        for byte in wire.chunks(1) {
            inf.push(byte);
            loop {
                let n = inf.inflate_into(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                assert!(n <= buf.len());
                out.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(out, plain);
        assert_eq!(inf.inflate_into(&mut []), Ok(0));
        let mut garbage = Inflater::new();
        garbage.push(&[0x78, 0x9c, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(garbage.inflate_into(&mut buf), Err(DecodeError::Inflate));
    }

    #[test]
    fn deflater_flushes_a_large_batch_after_tiny_ones() {
        // Found by the deflated framer proptest: after two 1-byte batches, the flush of a 31 KiB
        // incompressible batch came back incomplete (67 bytes short), so the peer could never
        // read the last descriptor. Every batch must inflate completely on its own.
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
            let mut d = Deflater::new();
            let mut wire = Vec::new();
            let mut inf = Inflater::new();
            let mut plain = Vec::new();
            for end in [a, b, data.len()] {
                let start = wire.len();
                d.compress_batch(&data[plain.len()..end], &mut wire);
                assert!(
                    wire.ends_with(&SYNC_FLUSH_MARKER),
                    "batch ends with a sync flush"
                );
                inf.push(&wire[start..]);
                while inf.inflate(&mut plain, INFLATE_STEP).unwrap() > 0 {}
                assert_eq!(plain, data[..end], "everything sent so far arrives");
            }
            assert_eq!(plain, data, "batches {a}/{b}");
        }
    }
}
