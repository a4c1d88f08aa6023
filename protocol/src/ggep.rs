//! GGEP, the Gnutella Generic Extension Protocol (0.6 draft §2.3).
//!
//! A block is the magic byte 0xC3 followed by one or more extensions. Each
//! extension is a flags byte (0x80 last extension, 0x40 COBS-encoded, 0x20
//! deflated, 0x10 reserved, id length in the low 4 bits), the id, a length
//! in 1–3 bytes of 6 bits each (0x80 = more bytes follow, 0x40 = last byte),
//! and the data.
//!
//! Extensions keep their data exactly as it travels (still COBS-encoded or
//! deflated) so that re-encoding a parsed block gives back the same bytes;
//! [`GgepExtension::value`] undoes the encodings on request.

use std::fmt;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{DecodeError, Result};

/// The byte that opens every GGEP block.
pub const GGEP_MAGIC: u8 = 0xC3;

/// Largest data length the 3-byte length encoding can express.
pub const MAX_EXTENSION_DATA_LEN: usize = (1 << 18) - 1;

/// Cap on the inflated size of one deflated extension: a descriptor is at
/// most 64 KiB, and a small compressed value must not become a memory bomb.
pub const MAX_INFLATED_LEN: usize = 256 * 1024;

mod flag {
    pub const LAST: u8 = 0x80;
    pub const COBS: u8 = 0x40;
    pub const DEFLATE: u8 = 0x20;
    pub const RESERVED: u8 = 0x10;
    pub const ID_LEN: u8 = 0x0F;
}

mod len_flag {
    pub const MORE: u8 = 0x80;
    pub const LAST: u8 = 0x40;
    pub const BITS: u8 = 0x3F;
}

/// An extension id: 1 to 15 bytes, usually ASCII (`H`, `ALT`, `GUE`, `IPP` …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GgepId {
    len: u8,
    bytes: [u8; 15],
}

impl GgepId {
    /// `None` when `id` is empty or longer than 15 bytes.
    pub fn new(id: &[u8]) -> Option<GgepId> {
        if id.is_empty() || id.len() > 15 {
            return None;
        }
        let mut bytes = [0u8; 15];
        bytes[..id.len()].copy_from_slice(id);
        Some(GgepId {
            len: id.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Display for GgepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for GgepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GgepId({self})")
    }
}

/// One GGEP extension, its data kept in wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgepExtension {
    pub id: GgepId,
    /// The data is COBS-encoded on the wire.
    pub cobs: bool,
    /// The data is deflated (zlib) on the wire; applied before COBS.
    pub deflate: bool,
    /// The data exactly as it travels (after deflate and COBS, if flagged).
    pub data: Vec<u8>,
}

impl GgepExtension {
    /// An extension carrying `value` as is.
    pub fn new(id: GgepId, value: Vec<u8>) -> GgepExtension {
        GgepExtension {
            id,
            cobs: false,
            deflate: false,
            data: value,
        }
    }

    /// An extension carrying `value`, deflated and/or COBS-encoded as asked.
    pub fn encoded(id: GgepId, value: &[u8], deflate: bool, cobs: bool) -> GgepExtension {
        let mut data = if deflate {
            deflate_zlib(value)
        } else {
            value.to_vec()
        };
        if cobs {
            data = cobs_encode(&data);
        }
        GgepExtension {
            id,
            cobs,
            deflate,
            data,
        }
    }

    /// The value with COBS and deflate undone.
    pub fn value(&self) -> Result<Vec<u8>> {
        let unstuffed;
        let data: &[u8] = if self.cobs {
            unstuffed = cobs_decode(&self.data)?;
            &unstuffed
        } else {
            &self.data
        };
        if self.deflate {
            inflate_zlib(data, MAX_INFLATED_LEN)
        } else {
            Ok(data.to_vec())
        }
    }

    fn flags(&self, last: bool) -> u8 {
        let mut flags = self.id.len;
        if last {
            flags |= flag::LAST;
        }
        if self.cobs {
            flags |= flag::COBS;
        }
        if self.deflate {
            flags |= flag::DEFLATE;
        }
        flags
    }

    fn encoded_len(&self) -> usize {
        1 + self.id.len as usize + length_field_len(self.data.len()) + self.data.len()
    }
}

/// A GGEP block: one or more extensions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ggep {
    /// In wire order. A block on the wire has at least one; encoding an
    /// empty list writes the magic byte alone, which no decoder accepts.
    pub extensions: Vec<GgepExtension>,
}

impl Ggep {
    pub fn new(extensions: Vec<GgepExtension>) -> Ggep {
        Ggep { extensions }
    }

    /// The first extension with this id.
    pub fn get(&self, id: &[u8]) -> Option<&GgepExtension> {
        self.extensions.iter().find(|e| e.id.as_bytes() == id)
    }

    /// Parses a block at the start of `bytes` (magic byte included) and
    /// returns it with the number of bytes it took.
    pub fn parse_prefix(bytes: &[u8]) -> Result<(Ggep, usize)> {
        let mut extensions = Vec::new();
        let consumed = walk(bytes, |ext| extensions.push(ext.into_owned()))?;
        Ok((Ggep { extensions }, consumed))
    }

    /// Parses a block that fills `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Ggep> {
        let (ggep, used) = Ggep::parse_prefix(bytes)?;
        if used != bytes.len() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(ggep)
    }

    /// Checks a block at the start of `bytes` without copying anything and
    /// returns its length.
    pub fn validate_prefix(bytes: &[u8]) -> Result<usize> {
        walk(bytes, |_| {})
    }

    pub fn encoded_len(&self) -> usize {
        1 + self
            .extensions
            .iter()
            .map(GgepExtension::encoded_len)
            .sum::<usize>()
    }

    /// Appends the block. Data longer than [`MAX_EXTENSION_DATA_LEN`] cannot
    /// be expressed; its length is written modulo 2^18 (a caller bug).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(GGEP_MAGIC);
        let count = self.extensions.len();
        for (i, ext) in self.extensions.iter().enumerate() {
            out.push(ext.flags(i + 1 == count));
            out.extend_from_slice(ext.id.as_bytes());
            encode_length(ext.data.len(), out);
            out.extend_from_slice(&ext.data);
        }
    }
}

/// A borrowed view of one extension, as [`walk`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgepExtensionRef<'a> {
    pub id: &'a [u8],
    pub cobs: bool,
    pub deflate: bool,
    pub data: &'a [u8],
}

impl GgepExtensionRef<'_> {
    pub fn into_owned(self) -> GgepExtension {
        GgepExtension {
            // The reader only yields ids of 1..=15 bytes.
            id: GgepId::new(self.id).unwrap_or(GgepId {
                len: 0,
                bytes: [0; 15],
            }),
            cobs: self.cobs,
            deflate: self.deflate,
            data: self.data.to_vec(),
        }
    }
}

/// Reads the extension at `pos` (after the magic byte): returns it, the
/// position after it, and whether it carries the last-extension flag.
fn read_extension(bytes: &[u8], pos: usize) -> Result<(GgepExtensionRef<'_>, usize, bool)> {
    #[cfg(test)]
    tests::EXTENSION_READS.with(|n| n.set(n.get() + 1));
    let flags = *bytes.get(pos).ok_or(DecodeError::Truncated)?;
    let mut pos = pos + 1;
    if flags & flag::RESERVED != 0 {
        return Err(DecodeError::BadField("ggep reserved flag"));
    }
    let id_len = (flags & flag::ID_LEN) as usize;
    if id_len == 0 {
        return Err(DecodeError::BadField("ggep id length"));
    }
    let id = bytes.get(pos..pos + id_len).ok_or(DecodeError::Truncated)?;
    pos += id_len;
    let (data_len, len_bytes) = decode_length(bytes.get(pos..).unwrap_or(&[]))?;
    pos += len_bytes;
    let data = bytes
        .get(pos..pos + data_len)
        .ok_or(DecodeError::Truncated)?;
    pos += data_len;
    let ext = GgepExtensionRef {
        id,
        cobs: flags & flag::COBS != 0,
        deflate: flags & flag::DEFLATE != 0,
        data,
    };
    Ok((ext, pos, flags & flag::LAST != 0))
}

/// Walks a GGEP block at the start of `bytes`, calling `each` for every
/// extension, and returns the block's length. Never copies.
pub fn walk<'a>(bytes: &'a [u8], mut each: impl FnMut(GgepExtensionRef<'a>)) -> Result<usize> {
    match bytes.first() {
        Some(&GGEP_MAGIC) => {}
        Some(_) => return Err(DecodeError::BadField("ggep magic")),
        None => return Err(DecodeError::Truncated),
    }
    let mut pos = 1;
    loop {
        let (ext, next, last) = read_extension(bytes, pos)?;
        each(ext);
        pos = next;
        if last {
            return Ok(pos);
        }
    }
}

/// Searches for GGEP blocks inside a larger area (a Query's or a result's extension area, a
/// QueryHit's private data), where a block may be tried at many offsets.
///
/// Without memory this is quadratic: extension data may contain further magic bytes, so a
/// crafted area of interleaved extension chains makes every attempt walk to the end of the area
/// before failing (a 64 KiB Query took seconds). A walk is deterministic from an extension start,
/// so once a walk is found unusable every extension start it passed through is remembered as
/// dead, and a later attempt that reaches one stops there with the same answer. Each position is
/// marked at most once, so all attempts together cost time linear in the area.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlockSearch {
    /// One bit per offset of the area: set when a walk reaching this extension start is unusable.
    /// Empty until the first unusable walk (valid traffic never allocates).
    dead: Vec<u64>,
}

impl BlockSearch {
    /// True until a walk has been found unusable: until then the plain walk is just as fast.
    pub(crate) fn is_fresh(&self) -> bool {
        self.dead.is_empty()
    }

    fn is_dead(&self, pos: usize) -> bool {
        self.dead
            .get(pos / 64)
            .is_some_and(|word| word & (1 << (pos % 64)) != 0)
    }

    fn mark_dead(&mut self, area_len: usize, pos: usize) {
        if self.dead.is_empty() {
            self.dead = vec![0; area_len / 64 + 1];
        }
        if let Some(word) = self.dead.get_mut(pos / 64) {
            *word |= 1 << (pos % 64);
        }
    }

    /// The length of the block whose magic byte is at `start` in `area`, if it is valid and
    /// `usable(end)` accepts where it ends (`end` is an offset in `area`). Same answer as
    /// `walk(&area[start..])` followed by `usable`, but never walks a chain known to be unusable.
    pub(crate) fn block_at(
        &mut self,
        area: &[u8],
        start: usize,
        usable: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        if area.get(start) != Some(&GGEP_MAGIC) {
            return None;
        }
        let first = start + 1;
        let mut pos = first;
        let mut steps = 0usize;
        // Whether the walk stopped at an extension start that is itself dead (unreadable, or
        // marked before) rather than after a last extension (whose end is no extension start).
        let mut stopped_at_start = true;
        let end = loop {
            if self.is_dead(pos) {
                break None;
            }
            match read_extension(area, pos) {
                Ok((_, next, last)) => {
                    steps += 1;
                    pos = next;
                    if last {
                        stopped_at_start = false;
                        break Some(pos).filter(|&end| usable(end));
                    }
                }
                Err(_) => break None,
            }
        };
        if end.is_none() {
            // Walk the same chain again (it is deterministic) to mark its extension starts;
            // `steps` bounds the second walk to exactly the extensions the first one read.
            // The end of a block is not marked: another chain may pass through it and go on.
            let mut pos = first;
            for _ in 0..steps {
                self.mark_dead(area.len(), pos);
                match read_extension(area, pos) {
                    Ok((_, next, _)) => pos = next,
                    Err(_) => break,
                }
            }
            if stopped_at_start {
                self.mark_dead(area.len(), pos);
            }
        }
        end.map(|end| end - start)
    }
}

/// A validated GGEP block, borrowed: the zero-copy counterpart of [`Ggep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgepRef<'a> {
    bytes: &'a [u8],
}

impl<'a> GgepRef<'a> {
    /// Validates a block at the start of `bytes`; returns it and its length.
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<(GgepRef<'a>, usize)> {
        let used = walk(bytes, |_| {})?;
        Ok((
            GgepRef {
                bytes: &bytes[..used],
            },
            used,
        ))
    }

    /// A block already validated (by [`BlockSearch::block_at`]): `bytes` is exactly the block.
    pub(crate) fn validated(bytes: &'a [u8]) -> GgepRef<'a> {
        GgepRef { bytes }
    }

    /// Validates a block that fills `bytes` exactly.
    pub fn parse(bytes: &'a [u8]) -> Result<GgepRef<'a>> {
        let (g, used) = GgepRef::parse_prefix(bytes)?;
        if used != bytes.len() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(g)
    }

    /// The block's bytes, magic included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn iter(&self) -> GgepIter<'a> {
        GgepIter {
            bytes: self.bytes,
            pos: 1,
            done: false,
        }
    }

    /// The first extension with this id.
    pub fn get(&self, id: &[u8]) -> Option<GgepExtensionRef<'a>> {
        self.iter().find(|e| e.id == id)
    }

    pub fn into_owned(self) -> Ggep {
        Ggep {
            extensions: self.iter().map(GgepExtensionRef::into_owned).collect(),
        }
    }
}

/// The extensions of a [`GgepRef`], in wire order.
#[derive(Debug, Clone)]
pub struct GgepIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for GgepIter<'a> {
    type Item = GgepExtensionRef<'a>;

    fn next(&mut self) -> Option<GgepExtensionRef<'a>> {
        if self.done {
            return None;
        }
        // The block was validated when the GgepRef was made; an error here
        // cannot happen, and would simply end the iteration.
        match read_extension(self.bytes, self.pos) {
            Ok((ext, next, last)) => {
                self.pos = next;
                self.done = last;
                Some(ext)
            }
            Err(_) => {
                self.done = true;
                None
            }
        }
    }
}

/// Decodes the 1–3 byte length field; returns (length, bytes used).
/// Only the shortest form is accepted, so that encoding gives the same bytes.
fn decode_length(bytes: &[u8]) -> Result<(usize, usize)> {
    let mut value = 0usize;
    for i in 0..3 {
        let b = *bytes.get(i).ok_or(DecodeError::Truncated)?;
        let more = b & len_flag::MORE != 0;
        let last = b & len_flag::LAST != 0;
        if more == last {
            return Err(DecodeError::BadField("ggep length flags"));
        }
        if i == 0 && more && b & len_flag::BITS == 0 {
            // A leading zero group: not the shortest form.
            return Err(DecodeError::BadField("ggep length not minimal"));
        }
        value = (value << 6) | (b & len_flag::BITS) as usize;
        if last {
            return Ok((value, i + 1));
        }
    }
    Err(DecodeError::BadField("ggep length over 3 bytes"))
}

fn length_field_len(len: usize) -> usize {
    if len < 1 << 6 {
        1
    } else if len < 1 << 12 {
        2
    } else {
        3
    }
}

fn encode_length(len: usize, out: &mut Vec<u8>) {
    let len = len & MAX_EXTENSION_DATA_LEN;
    match length_field_len(len) {
        1 => out.push(len_flag::LAST | len as u8),
        2 => {
            out.push(len_flag::MORE | (len >> 6) as u8);
            out.push(len_flag::LAST | (len as u8 & len_flag::BITS));
        }
        _ => {
            out.push(len_flag::MORE | (len >> 12) as u8);
            out.push(len_flag::MORE | ((len >> 6) as u8 & len_flag::BITS));
            out.push(len_flag::LAST | (len as u8 & len_flag::BITS));
        }
    }
}

/// COBS (Consistent Overhead Byte Stuffing): removes every 0x00 byte.
pub fn cobs_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 254 + 2);
    let mut code_at = 0;
    out.push(0);
    let mut code: u8 = 1;
    for &b in data {
        if b == 0 {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(b);
            code += 1;
            if code == 0xFF {
                out[code_at] = code;
                code_at = out.len();
                out.push(0);
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out
}

/// Undoes [`cobs_encode`]. A zero byte or a block running past the end is
/// an error.
pub fn cobs_decode(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    let mut pos = 0;
    while pos < data.len() {
        let code = data[pos];
        if code == 0 {
            return Err(DecodeError::BadField("cobs zero byte"));
        }
        pos += 1;
        let run = code as usize - 1;
        let block = data
            .get(pos..pos + run)
            .ok_or(DecodeError::BadField("cobs block past end"))?;
        if block.contains(&0) {
            return Err(DecodeError::BadField("cobs zero byte"));
        }
        out.extend_from_slice(block);
        pos += run;
        if code != 0xFF && pos < data.len() {
            out.push(0);
        }
    }
    Ok(out)
}

/// Inflates a complete zlib stream, refusing output beyond `max_out` bytes.
pub fn inflate_zlib(data: &[u8], max_out: usize) -> Result<Vec<u8>> {
    let mut z = Decompress::new(true);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let in_before = z.total_in() as usize;
        let out_before = z.total_out();
        let input = data.get(in_before..).unwrap_or(&[]);
        let status = z
            .decompress(input, &mut chunk, FlushDecompress::None)
            .map_err(|_| DecodeError::Inflate)?;
        let produced = (z.total_out() - out_before) as usize;
        if out.len() + produced > max_out {
            return Err(DecodeError::TooLong {
                len: out.len() + produced,
                max: max_out,
            });
        }
        out.extend_from_slice(&chunk[..produced]);
        if status == Status::StreamEnd {
            if z.total_in() as usize != data.len() {
                return Err(DecodeError::TrailingBytes);
            }
            return Ok(out);
        }
        if produced == 0 && z.total_in() as usize == in_before {
            // Input exhausted before the end of the stream.
            return Err(DecodeError::Inflate);
        }
    }
}

/// Deflates `data` into one complete zlib stream.
pub fn deflate_zlib(data: &[u8]) -> Vec<u8> {
    let mut z = Compress::new(Compression::default(), true);
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        let consumed = z.total_in() as usize;
        let input = data.get(consumed..).unwrap_or(&[]);
        if out.len() == out.capacity() {
            out.reserve(out.len().max(64));
        }
        match z.compress_vec(input, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return out,
            Ok(_) => {}
            // Compressing from memory into a growing buffer cannot fail.
            Err(_) => return out,
        }
    }
}

/// Host lists: `IPP` (a pong's packed hosts, from a host cache or an
/// ultrapeer asked with `SCP`) and `PUSH` (a hit's push proxies) carry
/// IPv4 hosts as 6 bytes each: the address in network order, the port
/// little-endian.
pub mod hosts {
    use std::net::{Ipv4Addr, SocketAddrV4};

    /// Bytes per host.
    pub const HOST_LEN: usize = 6;
    /// Most hosts read from one extension.
    pub const MAX_HOSTS: usize = 200;

    /// The hosts of an `IPP` or `PUSH` value: whole 6-byte entries only (a
    /// trailing partial entry is ignored), at most [`MAX_HOSTS`], without
    /// port 0 or the unspecified address.
    pub fn decode(value: &[u8]) -> Vec<SocketAddrV4> {
        value
            .chunks_exact(HOST_LEN)
            .map(|e| {
                SocketAddrV4::new(
                    Ipv4Addr::new(e[0], e[1], e[2], e[3]),
                    u16::from_le_bytes([e[4], e[5]]),
                )
            })
            .filter(|a| a.port() != 0 && !a.ip().is_unspecified())
            .take(MAX_HOSTS)
            .collect()
    }

    /// The value listing `hosts`.
    pub fn encode(hosts: &[SocketAddrV4]) -> Vec<u8> {
        let mut out = Vec::with_capacity(hosts.len() * HOST_LEN);
        for h in hosts {
            out.extend_from_slice(&h.ip().octets());
            out.extend_from_slice(&h.port().to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Extension headers read on this thread, to check that searches stay linear.
        pub(crate) static EXTENSION_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_ping_ggep_from_trace() {
        // Ping payload from the ndpi-gtkg UDP trace: SCP (1 byte), VC "GTKGb", DHTIPP (empty).
        let bytes = hex("c30353435041020256434547544b47628644485449505040");
        let ggep = Ggep::parse(&bytes).unwrap();
        let ids: Vec<String> = ggep.extensions.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, ["SCP", "VC", "DHTIPP"]);
        assert_eq!(ggep.get(b"SCP").unwrap().data, [0x02]);
        assert_eq!(ggep.get(b"VC").unwrap().data, b"GTKGb");
        assert!(ggep.get(b"DHTIPP").unwrap().data.is_empty());
        let mut out = Vec::new();
        ggep.encode(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(ggep.encoded_len(), bytes.len());
    }

    #[test]
    fn deflated_extension_from_trace() {
        // Pong GGEP from the trace: UP then IPP deflated (0x6 = 0x20 | id len 3 ... flags 0x23).
        let bytes = hex("c302555043010b06a349505069789c011e00e1ffdaa4c61b2aeb24ea12a6dcf1b4da87dec411721b185fa32c01acb8307713ffa90ec2");
        let ggep = Ggep::parse(&bytes).unwrap();
        let ipp = ggep.get(b"IPP").unwrap();
        assert!(ipp.deflate && !ipp.cobs);
        let value = ipp.value().unwrap();
        assert_eq!(value.len(), 30, "IPP carries 5 ip:port pairs of 6 bytes");
        let mut out = Vec::new();
        ggep.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn length_encoding_forms() {
        for len in [0usize, 1, 63, 64, 4095, 4096, MAX_EXTENSION_DATA_LEN] {
            let mut out = Vec::new();
            encode_length(len, &mut out);
            assert_eq!(out.len(), length_field_len(len));
            assert_eq!(decode_length(&out).unwrap(), (len, out.len()));
        }
        // 64 = 0b1_000000: two bytes 0x81 0x40.
        let mut out = Vec::new();
        encode_length(64, &mut out);
        assert_eq!(out, [0x81, 0x40]);
        assert!(decode_length(&[0x80, 0x41]).is_err(), "non-minimal");
        assert!(decode_length(&[0xC1]).is_err(), "both flags");
        assert!(decode_length(&[0x01]).is_err(), "no flag");
        assert!(decode_length(&[0x81, 0x81, 0x81]).is_err(), "four bytes");
        assert_eq!(decode_length(&[0x81]), Err(DecodeError::Truncated));
    }

    #[test]
    fn rejects_bad_blocks() {
        assert_eq!(Ggep::parse(&[]), Err(DecodeError::Truncated));
        assert!(Ggep::parse(&[0xC2, 0x81, b'A', 0x40]).is_err());
        assert_eq!(Ggep::parse(&[0xC3]), Err(DecodeError::Truncated));
        assert!(Ggep::parse(&[0xC3, 0x80, 0x40]).is_err(), "empty id");
        assert!(
            Ggep::parse(&[0xC3, 0x91, b'A', 0x40]).is_err(),
            "reserved bit"
        );
        assert_eq!(
            Ggep::parse(&[0xC3, 0x81, b'A', 0x45, 1, 2]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Ggep::parse(&[0xC3, 0x01, b'A', 0x40]),
            Err(DecodeError::Truncated),
            "no last-extension flag"
        );
        assert_eq!(
            Ggep::parse(&[0xC3, 0x81, b'A', 0x40, 0]),
            Err(DecodeError::TrailingBytes)
        );
    }

    #[test]
    fn cobs_known_vectors() {
        assert_eq!(cobs_encode(&[]), [0x01]);
        assert_eq!(cobs_encode(&[0]), [0x01, 0x01]);
        assert_eq!(
            cobs_encode(&[0x11, 0x22, 0x00, 0x33]),
            [0x03, 0x11, 0x22, 0x02, 0x33]
        );
        assert_eq!(
            cobs_decode(&[0x03, 0x11, 0x22, 0x02, 0x33]).unwrap(),
            [0x11, 0x22, 0x00, 0x33]
        );
        let long: Vec<u8> = (1..=254).collect();
        let enc = cobs_encode(&long);
        assert_eq!(enc[0], 0xFF);
        assert!(!enc.contains(&0));
        assert_eq!(cobs_decode(&enc).unwrap(), long);
        assert!(cobs_decode(&[0x05, 1, 2]).is_err());
        assert!(cobs_decode(&[0x00]).is_err());
    }

    #[test]
    fn encoded_extension_values_come_back() {
        let id = GgepId::new(b"ALT").unwrap();
        let value = b"\x00\x01\x02\x00\x00hello hello hello hello".to_vec();
        for (deflate, cobs) in [(false, false), (true, false), (false, true), (true, true)] {
            let ext = GgepExtension::encoded(id, &value, deflate, cobs);
            if cobs {
                assert!(!ext.data.contains(&0));
            }
            assert_eq!(ext.value().unwrap(), value);
            let block = Ggep::new(vec![ext.clone()]);
            let mut out = Vec::new();
            block.encode(&mut out);
            assert_eq!(Ggep::parse(&out).unwrap(), block);
        }
    }

    #[test]
    fn inflate_is_bounded_and_checked() {
        let big = vec![b'a'; 100_000];
        let z = deflate_zlib(&big);
        assert_eq!(inflate_zlib(&z, 100_000).unwrap(), big);
        assert!(matches!(
            inflate_zlib(&z, 99_999),
            Err(DecodeError::TooLong { .. })
        ));
        assert_eq!(
            inflate_zlib(&z[..z.len() - 3], 200_000),
            Err(DecodeError::Inflate)
        );
        assert!(inflate_zlib(b"not zlib", 1000).is_err());
    }
}

#[cfg(test)]
mod host_list_tests {
    use super::hosts;
    use std::net::SocketAddrV4;

    #[test]
    fn captured_ipp_pongs_give_hosts_and_encode_back() {
        let text = String::from_utf8(crate::traces::read("ndpi-gtkg-0.6-2022.expected.jsonl"))
            .expect("utf-8");
        let (mut pongs, mut hosts_seen) = (0, 0);
        for line in text.lines() {
            let record: serde_json::Value = serde_json::from_str(line).expect("json");
            if record["type"] != 1 {
                continue;
            }
            let raw = data_encoding::HEXLOWER
                .decode(record["raw_hex"].as_str().expect("hex").as_bytes())
                .expect("hex");
            let pong = crate::descriptor::Pong::parse(&raw[23..]).expect("a pong");
            let Some(ipp) = pong.ggep.as_ref().and_then(|g| g.get(b"IPP")) else {
                continue;
            };
            let value = ipp.value().expect("value");
            let list = hosts::decode(&value);
            assert_eq!(
                list.len(),
                value.len() / hosts::HOST_LEN,
                "every entry usable"
            );
            assert_eq!(hosts::encode(&list), value);
            pongs += 1;
            hosts_seen += list.len();
        }
        assert!(
            pongs > 0 && hosts_seen > pongs,
            "{pongs} pongs, {hosts_seen} hosts"
        );
    }

    #[test]
    fn partial_zero_and_oversized_lists_are_bounded() {
        assert!(hosts::decode(&[1, 2, 3]).is_empty());
        assert!(hosts::decode(&[0, 0, 0, 0, 1, 0]).is_empty(), "0.0.0.0");
        assert!(hosts::decode(&[1, 2, 3, 4, 0, 0]).is_empty(), "port 0");
        let one: SocketAddrV4 = "1.2.3.4:6346".parse().unwrap();
        assert_eq!(hosts::decode(&hosts::encode(&[one])), vec![one]);
        let many = vec![one; 1000];
        assert_eq!(hosts::decode(&hosts::encode(&many)).len(), hosts::MAX_HOSTS);
    }
}
