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

    /// Frames `input` and hands each complete frame to `sink`, copying as
    /// little as possible: frames lying whole inside `input` are handed
    /// straight from it, and only an unfinished frame (its completion, or a
    /// tail left for next time) is copied into the framer. On a compressed
    /// stream the input is inflated [`INFLATE_STEP`] bytes at a time into
    /// `scratch` (one buffer can serve every framer of a thread), each step
    /// framed the same way, so a small input cannot make the framer hold
    /// more than one descriptor.
    ///
    /// `sink` returns false to stop: the rest of the input is discarded (the
    /// link is going away). Frames completed earlier with [`Framer::push`] come
    /// first. An out-of-sync header or a corrupt compressed stream is an
    /// error, as with [`Framer::push`], after every frame before it.
    pub fn feed(
        &mut self,
        input: &[u8],
        scratch: &mut Vec<u8>,
        mut sink: impl FnMut(FrameRef<'_>) -> bool,
    ) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while self.read_pos < self.partial_start {
            let Some(frame) = self.next_frame_ref()? else {
                break;
            };
            if !sink(frame) {
                return Ok(());
            }
        }
        let Some(mut inflater) = self.inflater.take() else {
            return self.feed_plain(input, &mut sink).map(|_| ());
        };
        inflater.push(input);
        scratch.resize(INFLATE_STEP, 0);
        let result = loop {
            let produced = match inflater.inflate_into(scratch) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => {
                    self.failed = Some(e.clone());
                    break Err(e);
                }
            };
            match self.feed_plain(scratch.get(..produced).unwrap_or_default(), &mut sink) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.inflater = Some(inflater);
        result
    }

    /// [`Framer::feed`] on uncompressed bytes; Ok(false) when `sink` stopped.
    fn feed_plain(
        &mut self,
        mut input: &[u8],
        sink: &mut impl FnMut(FrameRef<'_>) -> bool,
    ) -> Result<bool> {
        // Finish the frame begun in an earlier read, copying only what it lacks.
        if self.partial_start < self.buf.len() {
            // At most two rounds: the rest of the header, then the payload.
            while self.partial_start < self.buf.len() && !input.is_empty() {
                let have = self.buf.len() - self.partial_start;
                let need = match self.partial_len {
                    Some(total) => total - have,
                    None => HEADER_LEN - have,
                };
                let take = need.min(input.len());
                self.absorb(&input[..take])?;
                input = &input[take..];
            }
            if self.read_pos < self.partial_start {
                let go_on = match self.next_frame_ref()? {
                    Some(frame) => sink(frame),
                    None => true,
                };
                self.release_buffer();
                if !go_on {
                    return Ok(false);
                }
            }
            if self.partial_start < self.buf.len() {
                // Still unfinished: everything was taken.
                return Ok(true);
            }
        }
        // Whole frames straight from the input.
        while input.len() >= HEADER_LEN {
            let header = match Header::parse(input) {
                Ok(h) => h,
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(e);
                }
            };
            let total = HEADER_LEN + header.payload_len as usize;
            let Some(bytes) = input.get(..total) else {
                break;
            };
            if !sink(FrameRef { header, bytes }) {
                return Ok(false);
            }
            input = &input[total..];
        }
        self.absorb(input)?;
        Ok(true)
    }

    /// Forgets a fully taken buffer, freeing it when a large frame grew it.
    fn release_buffer(&mut self) {
        if self.read_pos == self.buf.len() {
            self.buf.clear();
            self.read_pos = 0;
            self.partial_start = 0;
            if self.buf.capacity() > 2 * crate::header::MAX_PAYLOAD_LEN {
                self.buf = Vec::new();
            }
        }
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
///
/// A compressor holds about 300 KiB; [`Deflater::release`] ends the current
/// deflate state with a full flush and frees it (for an idle link), and the
/// next batch continues the same stream with a fresh compressor writing raw
/// deflate blocks (only the first one writes the zlib header). A full flush
/// resets the dictionary, so the peer's inflater reads on without a seam.
pub struct Deflater {
    z: Option<Compress>,
    header_sent: bool,
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater::new()
    }
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("holds_state", &self.z.is_some())
            .field("header_sent", &self.header_sent)
            .finish()
    }
}

impl Deflater {
    pub fn new() -> Deflater {
        Deflater {
            z: None,
            header_sent: false,
        }
    }

    /// A deflater that continues a zlib stream begun elsewhere (its header
    /// and earlier blocks already sent, ending on a flush): it writes raw
    /// deflate blocks only.
    pub fn continuing() -> Deflater {
        Deflater {
            z: None,
            header_sent: true,
        }
    }

    /// Compresses `plain` and sync-flushes, appending to `out`.
    pub fn compress_batch(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        self.compress_parts(&[plain], out);
    }

    /// Compresses the parts one after the other (descriptors taken from a
    /// queue, without joining them first) and sync-flushes after the last.
    pub fn compress_parts(&mut self, parts: &[&[u8]], out: &mut Vec<u8>) {
        let Some((last, first)) = parts.split_last() else {
            return;
        };
        let header = !self.header_sent;
        let z = self
            .z
            .get_or_insert_with(|| Compress::new(Compression::default(), header));
        self.header_sent = true;
        for part in first {
            deflate_into(z, part, FlushCompress::None, out);
        }
        deflate_into(z, last, FlushCompress::Sync, out);
    }

    /// Ends the deflate state with a full flush and frees the compressor.
    /// True when flush bytes were appended to `out`.
    pub fn release(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut z) = self.z.take() else {
            return false;
        };
        let before = out.len();
        deflate_into(&mut z, &[], FlushCompress::Full, out);
        out.len() > before
    }

    /// Whether a compressor is allocated now.
    pub fn holds_state(&self) -> bool {
        self.z.is_some()
    }
}

/// Deflates all of `input` into `out`, then applies `flush`, and returns only
/// once a sync or full flush is complete: room left in `out` alone is not
/// proof (the compressor was caught returning after tiny batches with part
/// of a flush still held, and the peer would never see the batch's end).
fn deflate_into(z: &mut Compress, input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    let mut consumed = 0usize;
    // Each round consumes input or grows the output; bounded because deflate
    // output for n input bytes is at most n plus a small overhead.
    for _ in 0..64 {
        out.reserve(input.len() - consumed + 64);
        let (before_in, before_out) = (z.total_in(), z.total_out());
        let status = z.compress_vec(input.get(consumed..).unwrap_or_default(), out, flush);
        consumed += (z.total_in() - before_in) as usize;
        let produced = z.total_out() - before_out;
        if status.is_err() {
            // In-memory compression only fails on misuse of the API.
            return;
        }
        let flushed = matches!(flush, FlushCompress::None) || out.ends_with(&SYNC_FLUSH_MARKER);
        if consumed >= input.len() && out.len() < out.capacity() && flushed {
            return;
        }
        if produced == 0 && consumed >= input.len() && out.len() < out.capacity() {
            return;
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

    /// Feeds `pieces` one after the other; the frames handed out, and how
    /// many of them came straight from the input (not copied).
    fn feed_all(framer: &mut Framer, pieces: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
        let mut got = Vec::new();
        let mut borrowed = 0;
        let mut scratch = Vec::new();
        for piece in pieces {
            let range = piece.as_ptr_range();
            framer
                .feed(piece, &mut scratch, |f| {
                    if range.contains(&f.bytes.as_ptr()) {
                        borrowed += 1;
                    }
                    got.push(f.bytes.to_vec());
                    true
                })
                .unwrap();
        }
        (got, borrowed)
    }

    #[test]
    fn feed_hands_whole_frames_from_the_input_and_copies_only_the_split_one() {
        let frames = [
            ping(1),
            with_payload(0x80, b"\x80\x00query\x00"),
            ping(2),
            ping(3),
        ];
        let stream: Vec<u8> = frames.concat();
        // One read: every frame straight from it.
        let (got, borrowed) = feed_all(&mut Framer::new(), &[&stream]);
        assert_eq!(got, frames.to_vec());
        assert_eq!(borrowed, 4);
        // Split inside the second frame's payload, and inside the fourth header.
        let cut1 = frames[0].len() + 30;
        let cut2 = stream.len() - 10;
        let (got, borrowed) = feed_all(
            &mut Framer::new(),
            &[&stream[..cut1], &stream[cut1..cut2], &stream[cut2..]],
        );
        assert_eq!(got, frames.to_vec());
        assert_eq!(borrowed, 2, "the first and third frames were never copied");
    }

    #[test]
    fn feed_agrees_with_push_wherever_the_stream_is_split() {
        let frames = [
            ping(1),
            with_payload(0x31, &[7; 300]),
            ping(2),
            with_payload(0x81, b"x"),
        ];
        let stream: Vec<u8> = frames.concat();
        for step in [1, 2, 5, 22, 23, 24, 100, 333] {
            let pieces: Vec<&[u8]> = stream.chunks(step).collect();
            let (got, _) = feed_all(&mut Framer::new(), &pieces);
            assert_eq!(got, frames.to_vec(), "pieces of {step}");
        }
    }

    #[test]
    fn feed_stops_when_asked_and_reports_a_bad_header_after_the_good_frames() {
        let mut stream = ping(1);
        stream.extend(ping(2));
        let mut scratch = Vec::new();
        let mut seen = 0;
        Framer::new()
            .feed(&stream, &mut scratch, |_| {
                seen += 1;
                false
            })
            .unwrap();
        assert_eq!(seen, 1);
        let mut bad = ping(3);
        bad[19..23].copy_from_slice(&(MAX_PAYLOAD_LEN as u32 + 1).to_le_bytes());
        stream.extend(bad);
        let mut framer = Framer::new();
        let mut seen = 0;
        let result = framer.feed(&stream, &mut scratch, |_| {
            seen += 1;
            true
        });
        assert!(matches!(result, Err(DecodeError::TooLong { .. })));
        assert_eq!(seen, 2);
        assert!(
            framer.feed(&ping(4), &mut scratch, |_| true).is_err(),
            "out of sync for good"
        );
    }

    #[test]
    fn feed_inflates_a_compressed_stream_a_step_at_a_time() {
        let frames: Vec<Vec<u8>> = (0..200u8).map(|n| with_payload(0x80, &[n; 200])).collect();
        let plain: Vec<u8> = frames.concat();
        let mut deflater = Deflater::new();
        let mut wire = Vec::new();
        deflater.compress_batch(&plain[..5000], &mut wire);
        deflater.compress_batch(&plain[5000..], &mut wire);
        let mut framer = Framer::deflated();
        let mut scratch = Vec::new();
        let mut got = Vec::new();
        for piece in wire.chunks(7) {
            framer
                .feed(piece, &mut scratch, |f| {
                    got.push(f.bytes.to_vec());
                    true
                })
                .unwrap();
            assert!(
                framer.buffered() <= 16 * 1024 + 250,
                "{}",
                framer.buffered()
            );
        }
        assert_eq!(got, frames);
        assert!(framer
            .feed(b"\xff\xff garbage", &mut scratch, |_| true)
            .is_err());
    }

    #[test]
    fn a_released_deflater_continues_the_same_stream() {
        let mut deflater = Deflater::new();
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for round in 0..3u8 {
            let parts: Vec<Vec<u8>> = (0..5u8).map(|n| vec![round ^ n; 30]).collect();
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            deflater.compress_parts(&refs, &mut wire);
            expected.extend(parts.concat());
            assert!(deflater.holds_state());
            assert!(deflater.release(&mut wire));
            assert!(!deflater.holds_state());
        }
        assert_eq!(&wire[..1], &[0x78], "one zlib header, at the start");
        let mut inflater = Inflater::new();
        inflater.push(&wire);
        let mut got = Vec::new();
        while inflater.inflate(&mut got, 1024).unwrap() > 0 {}
        assert_eq!(got, expected);
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
