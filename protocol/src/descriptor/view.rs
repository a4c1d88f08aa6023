//! Zero-copy descriptor views: [`DescriptorRef`] and one `…Ref` per payload.
//!
//! Parsing a view does all the checking the owned decoder does — the same
//! inputs are accepted and rejected, with the same errors — but copies
//! nothing: names, extension areas and GGEP blocks stay borrowed slices,
//! and results, extensions and GGEP extensions are iterated on demand from
//! the validated bytes. The owned types are built from these views
//! (`into_owned`), so the two can never disagree.
//!
//! This is what the router uses on its hot path: it needs the header, a
//! Query's text or a QueryHit's servent id, not owned copies of everything.

use std::net::Ipv4Addr;

use crate::error::{DecodeError, Result};
use crate::ggep::{BlockSearch, GgepRef, GGEP_MAGIC};
use crate::header::{DescriptorId, Header, PayloadType, HEADER_LEN};
use crate::huge::Urn;

use super::{
    Bye, Descriptor, Extension, HitResult, Payload, Ping, Pong, PongFixed, Push, PushFixed,
    QhdFlags, QhdTrailer, Query, QueryHit, Reader, ServentId, SpeedField, EXTENSION_SEPARATOR,
    PONG_MIN_LEN, PUSH_MIN_LEN, QUERY_HIT_FIXED_LEN, SERVENT_ID_LEN,
};

/// The first position of `needle` in `haystack`. Names and extension
/// areas are scanned for NUL and 0x1C on every decode; reading eight bytes
/// at a time (the classic "has zero byte" test) keeps that from dominating.
pub(crate) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = LOW.wrapping_mul(needle as u64);
    let chunks = haystack.chunks_exact(8);
    let tail_start = haystack.len() - chunks.remainder().len();
    for (i, chunk) in chunks.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // The lowest flagged byte is exact; flags above it may be spurious.
        let found = x.wrapping_sub(LOW) & !x & HIGH;
        if found != 0 {
            return Some(i * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    haystack[tail_start..]
        .iter()
        .position(|&b| b == needle)
        .map(|p| tail_start + p)
}

/// A whole descriptor, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorRef<'a> {
    pub header: Header,
    pub payload: PayloadRef<'a>,
}

/// A payload, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadRef<'a> {
    Ping(PingRef<'a>),
    Pong(PongRef<'a>),
    Query(QueryRef<'a>),
    QueryHit(QueryHitRef<'a>),
    Push(PushRef<'a>),
    Bye(ByeRef<'a>),
    Unknown { payload_type: u8, bytes: &'a [u8] },
}

impl<'a> DescriptorRef<'a> {
    /// Parses one whole descriptor (header + exactly the declared payload).
    pub fn parse(bytes: &'a [u8]) -> Result<DescriptorRef<'a>> {
        let header = Header::parse(bytes)?;
        let payload = &bytes[HEADER_LEN..];
        let declared = header.payload_len as usize;
        if payload.len() < declared {
            return Err(DecodeError::Truncated);
        }
        if payload.len() > declared {
            return Err(DecodeError::TrailingBytes);
        }
        DescriptorRef::parse_payload(header, payload)
    }

    /// Parses a payload whose header was already read.
    pub fn parse_payload(header: Header, payload: &'a [u8]) -> Result<DescriptorRef<'a>> {
        if payload.len() != header.payload_len as usize {
            return Err(DecodeError::BadField("payload length"));
        }
        Ok(DescriptorRef {
            header,
            payload: PayloadRef::parse(header.payload_type, payload)?,
        })
    }

    pub fn id(&self) -> DescriptorId {
        self.header.id
    }

    pub fn into_owned(self) -> Descriptor {
        Descriptor {
            id: self.header.id,
            ttl: self.header.ttl,
            hops: self.header.hops,
            payload: self.payload.into_owned(),
        }
    }
}

impl<'a> PayloadRef<'a> {
    pub fn parse(payload_type: PayloadType, bytes: &'a [u8]) -> Result<PayloadRef<'a>> {
        Ok(match payload_type {
            PayloadType::Ping => PayloadRef::Ping(PingRef::parse(bytes)?),
            PayloadType::Pong => PayloadRef::Pong(PongRef::parse(bytes)?),
            PayloadType::Query => PayloadRef::Query(QueryRef::parse(bytes)?),
            PayloadType::QueryHit => PayloadRef::QueryHit(QueryHitRef::parse(bytes)?),
            PayloadType::Push => PayloadRef::Push(PushRef::parse(bytes)?),
            PayloadType::Bye => PayloadRef::Bye(ByeRef::parse(bytes)?),
            PayloadType::Other(code) => PayloadRef::Unknown {
                payload_type: code,
                bytes,
            },
        })
    }

    pub fn into_owned(self) -> Payload {
        match self {
            PayloadRef::Ping(p) => Payload::Ping(p.into_owned()),
            PayloadRef::Pong(p) => Payload::Pong(p.into_owned()),
            PayloadRef::Query(p) => Payload::Query(p.into_owned()),
            PayloadRef::QueryHit(p) => Payload::QueryHit(p.into_owned()),
            PayloadRef::Push(p) => Payload::Push(p.into_owned()),
            PayloadRef::Bye(p) => Payload::Bye(p.into_owned()),
            PayloadRef::Unknown {
                payload_type,
                bytes,
            } => Payload::Unknown {
                payload_type,
                bytes: bytes.to_vec(),
            },
        }
    }
}

/// An optional GGEP block that must fill `rest` exactly.
fn optional_ggep_ref<'a>(rest: &'a [u8], what: &'static str) -> Result<Option<GgepRef<'a>>> {
    match rest.first() {
        None => Ok(None),
        Some(&GGEP_MAGIC) => GgepRef::parse(rest).map(Some),
        Some(_) => Err(DecodeError::BadField(what)),
    }
}

/// A borrowed [`Ping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingRef<'a> {
    pub ggep: Option<GgepRef<'a>>,
}

impl<'a> PingRef<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<PingRef<'a>> {
        Ok(PingRef {
            ggep: optional_ggep_ref(payload, "ping payload")?,
        })
    }

    pub fn into_owned(self) -> Ping {
        Ping {
            ggep: self.ggep.map(GgepRef::into_owned),
        }
    }
}

/// A borrowed [`Pong`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PongRef<'a> {
    pub port: u16,
    pub ip: Ipv4Addr,
    pub files: u32,
    pub kbytes: u32,
    pub ggep: Option<GgepRef<'a>>,
}

impl<'a> PongRef<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<PongRef<'a>> {
        if payload.len() < PONG_MIN_LEN {
            return Err(DecodeError::Truncated);
        }
        let fixed = PongFixed::read(payload)?;
        Ok(PongRef {
            port: fixed.port,
            ip: fixed.ip,
            files: fixed.files,
            kbytes: fixed.kbytes,
            ggep: optional_ggep_ref(
                payload.get(PONG_MIN_LEN..).unwrap_or_default(),
                "pong extension",
            )?,
        })
    }

    pub fn into_owned(self) -> Pong {
        Pong {
            port: self.port,
            ip: self.ip,
            files: self.files,
            kbytes: self.kbytes,
            ggep: self.ggep.map(GgepRef::into_owned),
        }
    }
}

/// A borrowed [`Push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushRef<'a> {
    pub servent_id: ServentId,
    pub file_index: u32,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ggep: Option<GgepRef<'a>>,
}

impl<'a> PushRef<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<PushRef<'a>> {
        if payload.len() < PUSH_MIN_LEN {
            return Err(DecodeError::Truncated);
        }
        let fixed = PushFixed::read(payload)?;
        Ok(PushRef {
            servent_id: fixed.servent_id,
            file_index: fixed.file_index,
            ip: fixed.ip,
            port: fixed.port,
            ggep: optional_ggep_ref(
                payload.get(PUSH_MIN_LEN..).unwrap_or_default(),
                "push extension",
            )?,
        })
    }

    pub fn into_owned(self) -> Push {
        Push {
            servent_id: self.servent_id,
            file_index: self.file_index,
            ip: self.ip,
            port: self.port,
            ggep: self.ggep.map(GgepRef::into_owned),
        }
    }
}

/// A borrowed [`Bye`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByeRef<'a> {
    pub code: u16,
    pub message: &'a [u8],
}

impl<'a> ByeRef<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<ByeRef<'a>> {
        let (code, rest) = payload.split_at_checked(2).ok_or(DecodeError::Truncated)?;
        let code = u16::from_le_bytes([code[0], code[1]]);
        let nul = find_byte(rest, 0).ok_or(DecodeError::BadField("bye text not NUL-terminated"))?;
        if nul + 1 != rest.len() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(ByeRef {
            code,
            message: &rest[..nul],
        })
    }

    /// Reads a Bye as leniently as a display needs: the code, and the text up
    /// to a NUL or the end (some servents omit the NUL). `None` when even the
    /// code is missing.
    pub fn read_lenient(payload: &'a [u8]) -> Option<ByeRef<'a>> {
        let (code, rest) = payload.split_at_checked(2)?;
        let end = find_byte(rest, 0).unwrap_or(rest.len());
        Some(ByeRef {
            code: u16::from_le_bytes([code[0], code[1]]),
            message: &rest[..end],
        })
    }

    pub fn into_owned(self) -> Bye {
        Bye {
            code: self.code,
            message: self.message.to_vec(),
        }
    }
}

/// One extension, borrowed (see [`Extension`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionRef<'a> {
    /// The urn's text; [`Urn::parse`] reads it.
    Urn(&'a [u8]),
    Xml(&'a [u8]),
    Ggep(GgepRef<'a>),
    Text(&'a [u8]),
}

impl<'a> ExtensionRef<'a> {
    fn classify(item: &'a [u8]) -> ExtensionRef<'a> {
        if Urn::is_urn(item) {
            ExtensionRef::Urn(item)
        } else if matches!(item.first(), Some(b'<') | Some(b'{')) {
            ExtensionRef::Xml(item)
        } else {
            ExtensionRef::Text(item)
        }
    }

    pub fn into_owned(self) -> Extension {
        match self {
            ExtensionRef::Urn(t) => Extension::Urn(Urn::parse(t)),
            ExtensionRef::Xml(b) => Extension::Xml(b.to_vec()),
            ExtensionRef::Ggep(g) => Extension::Ggep(g.into_owned()),
            ExtensionRef::Text(b) => Extension::Text(b.to_vec()),
        }
    }
}

/// An extension area (Query tail, or a result's bytes between its NULs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionsRef<'a> {
    area: &'a [u8],
}

impl<'a> ExtensionsRef<'a> {
    pub fn new(area: &'a [u8]) -> ExtensionsRef<'a> {
        ExtensionsRef { area }
    }

    /// The area's bytes, separators included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.area
    }

    pub fn iter(&self) -> ExtensionIter<'a> {
        ExtensionIter {
            area: self.area,
            pos: 0,
            done: self.area.is_empty(),
            ggep_search: BlockSearch::default(),
        }
    }

    pub fn into_owned(self) -> Vec<Extension> {
        self.iter().map(ExtensionRef::into_owned).collect()
    }
}

/// Splits an extension area at 0x1C separators. A GGEP block is read by its
/// own structure (its data may hold 0x1C); anything else runs to the next
/// separator. What is not a urn, XML or GGEP is text.
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    area: &'a [u8],
    pos: usize,
    done: bool,
    /// Remembers GGEP attempts that failed, so that a crafted area cannot make the attempts
    /// at successive items walk the same long chain again and again.
    ggep_search: BlockSearch,
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = ExtensionRef<'a>;

    fn next(&mut self) -> Option<ExtensionRef<'a>> {
        if self.done {
            return None;
        }
        let rest = self.area.get(self.pos..).unwrap_or(&[]);
        if rest.first() == Some(&GGEP_MAGIC) {
            // A GGEP item must end the area or be followed by a separator.
            let area = self.area;
            let usable = |end: usize| matches!(area.get(end), None | Some(&EXTENSION_SEPARATOR));
            let found = if self.ggep_search.is_fresh() {
                // No attempt has failed yet (valid traffic): the plain walk, and the
                // remembering walk only when this one fails.
                match GgepRef::parse_prefix(rest) {
                    Ok((_, used)) if usable(self.pos + used) => Some(used),
                    _ => self.ggep_search.block_at(area, self.pos, usable),
                }
            } else {
                self.ggep_search.block_at(area, self.pos, usable)
            };
            if let Some(used) = found {
                if let Some(block) = rest.get(..used) {
                    if rest.get(used).is_none() {
                        self.done = true;
                    } else {
                        self.pos += used + 1;
                    }
                    return Some(ExtensionRef::Ggep(GgepRef::validated(block)));
                }
            }
        }
        let end = find_byte(rest, EXTENSION_SEPARATOR).unwrap_or(rest.len());
        if end == rest.len() {
            self.done = true;
        } else {
            self.pos += end + 1;
        }
        Some(ExtensionRef::classify(&rest[..end]))
    }
}

/// A borrowed [`Query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryRef<'a> {
    pub speed: SpeedField,
    pub search: &'a [u8],
    pub extensions: ExtensionsRef<'a>,
    pub stray_nul: bool,
}

impl<'a> QueryRef<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<QueryRef<'a>> {
        let (speed, rest) = payload.split_at_checked(2).ok_or(DecodeError::Truncated)?;
        let speed = SpeedField([speed[0], speed[1]]);
        let nul = find_byte(rest, 0).ok_or(DecodeError::BadField(
            "query search text not NUL-terminated",
        ))?;
        let area = &rest[nul + 1..];
        let (area, stray_nul) = match area.split_last() {
            // A final NUL is a stray one unless it is the last byte of a
            // GGEP block that ends the area.
            Some((0, body)) => {
                let ends_in_ggep = matches!(
                    ExtensionsRef::new(area).iter().last(),
                    Some(ExtensionRef::Ggep(_))
                );
                if ends_in_ggep {
                    (area, false)
                } else {
                    (body, true)
                }
            }
            _ => (area, false),
        };
        Ok(QueryRef {
            speed,
            search: &rest[..nul],
            extensions: ExtensionsRef::new(area),
            stray_nul,
        })
    }

    /// The GGEP block among the extensions, if any.
    pub fn ggep(&self) -> Option<GgepRef<'a>> {
        self.extensions.iter().find_map(|e| match e {
            ExtensionRef::Ggep(g) => Some(g),
            _ => None,
        })
    }

    pub fn into_owned(self) -> Query {
        Query {
            speed: self.speed,
            search: self.search.to_vec(),
            extensions: self.extensions.into_owned(),
            stray_nul: self.stray_nul,
        }
    }
}

/// A borrowed [`QueryHit`]. The results were located and checked by
/// `parse`; [`QueryHitRef::results`] walks them again without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryHitRef<'a> {
    pub port: u16,
    pub ip: Ipv4Addr,
    pub speed: u32,
    result_count: u8,
    results_area: &'a [u8],
    pub trailer: Option<QhdTrailerRef<'a>>,
    pub servent_id: ServentId,
}

/// A borrowed [`HitResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HitResultRef<'a> {
    pub index: u32,
    pub size: u32,
    pub name: &'a [u8],
    pub extensions: ExtensionsRef<'a>,
}

/// A borrowed [`QhdTrailer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QhdTrailerRef<'a> {
    pub vendor: [u8; 4],
    pub open_data: &'a [u8],
    pub private_data: &'a [u8],
}

fn take_to_nul<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<&'a [u8]> {
    let rest = r.rest_peek();
    let nul = find_byte(rest, 0).ok_or(DecodeError::BadField(what))?;
    let out = r.take(nul)?;
    r.take(1)?;
    Ok(out)
}

impl<'a> HitResultRef<'a> {
    fn read(r: &mut Reader<'a>) -> Result<HitResultRef<'a>> {
        let index = r.u32_le()?;
        let size = r.u32_le()?;
        let name = take_to_nul(r, "hit name not NUL-terminated")?;
        let area = take_to_nul(r, "hit extensions not NUL-terminated")?;
        Ok(HitResultRef {
            index,
            size,
            name,
            extensions: ExtensionsRef::new(area),
        })
    }

    /// The SHA-1 of the first HUGE urn that names one (as [`HitResult::sha1`]).
    pub fn sha1(&self) -> Option<crate::huge::Sha1Digest> {
        self.extensions.iter().find_map(|e| match e {
            ExtensionRef::Urn(text) => Urn::parse(text).sha1(),
            _ => None,
        })
    }

    /// The Tiger tree root of the file: the second half of a `urn:bitprint:` urn, else a GGEP
    /// `TT` extension (the 24 raw bytes gtk-gnutella sends beside a `urn:sha1:`).
    pub fn tiger(&self) -> Option<crate::huge::TigerDigest> {
        let from_urn = self.extensions.iter().find_map(|e| match e {
            ExtensionRef::Urn(text) => Urn::parse(text).tiger(),
            _ => None,
        });
        from_urn.or_else(|| {
            self.extensions.iter().find_map(|e| match e {
                ExtensionRef::Ggep(g) => {
                    let value = g.get(b"TT")?.into_owned().value().ok()?;
                    value.try_into().ok()
                }
                _ => None,
            })
        })
    }

    pub fn into_owned(self) -> HitResult {
        HitResult {
            index: self.index,
            size: self.size,
            name: self.name.to_vec(),
            extensions: self.extensions.into_owned(),
        }
    }
}

impl<'a> QhdTrailerRef<'a> {
    fn parse(area: &'a [u8]) -> Result<QhdTrailerRef<'a>> {
        let mut r = Reader::new(area);
        let vendor = r.array::<4>()?;
        let open_len = r.u8()? as usize;
        let open_data = r
            .take(open_len)
            .map_err(|_| DecodeError::BadField("query hit open data size"))?;
        Ok(QhdTrailerRef {
            vendor,
            open_data,
            private_data: r.rest(),
        })
    }

    pub fn flags(&self) -> QhdFlags {
        QhdFlags::from_open_data(self.open_data)
    }

    /// The push proxies the responder names (GGEP `PUSH`), at most 8.
    pub fn push_proxies(&self) -> Vec<std::net::SocketAddrV4> {
        super::query_hit::push_proxies_in(self.private_data)
    }

    pub fn into_owned(self) -> QhdTrailer {
        QhdTrailer {
            vendor: self.vendor,
            open_data: self.open_data.to_vec(),
            private_data: self.private_data.to_vec(),
        }
    }
}

impl<'a> QueryHitRef<'a> {
    /// The responder's servent id (the last 16 bytes), checking only that the
    /// payload is long enough to be a QueryHit: what routing Pushes needs.
    pub fn servent_id_of(payload: &[u8]) -> Result<ServentId> {
        if payload.len() < QUERY_HIT_FIXED_LEN + SERVENT_ID_LEN {
            return Err(DecodeError::Truncated);
        }
        let tail = &payload[payload.len() - SERVENT_ID_LEN..];
        let mut id = [0u8; SERVENT_ID_LEN];
        id.copy_from_slice(tail);
        Ok(ServentId(id))
    }

    pub fn parse(payload: &'a [u8]) -> Result<QueryHitRef<'a>> {
        if payload.len() < QUERY_HIT_FIXED_LEN + SERVENT_ID_LEN {
            return Err(DecodeError::Truncated);
        }
        let (body, id) = payload.split_at(payload.len() - SERVENT_ID_LEN);
        let mut servent_id = [0u8; SERVENT_ID_LEN];
        servent_id.copy_from_slice(id);
        let mut r = Reader::new(body);
        let result_count = r.u8()?;
        let port = r.u16_le()?;
        let ip = r.ipv4()?;
        let speed = r.u32_le()?;
        let results_start = body.len() - r.rest_peek().len();
        for _ in 0..result_count {
            HitResultRef::read(&mut r)?;
        }
        let area = r.rest();
        let results_area = &body[results_start..body.len() - area.len()];
        let trailer = if area.is_empty() {
            None
        } else {
            Some(QhdTrailerRef::parse(area)?)
        };
        Ok(QueryHitRef {
            port,
            ip,
            speed,
            result_count,
            results_area,
            trailer,
            servent_id: ServentId(servent_id),
        })
    }

    pub fn result_count(&self) -> usize {
        self.result_count as usize
    }

    pub fn results(&self) -> HitResultIter<'a> {
        HitResultIter {
            reader: Reader::new(self.results_area),
            remaining: self.result_count,
        }
    }

    pub fn into_owned(self) -> QueryHit {
        QueryHit {
            port: self.port,
            ip: self.ip,
            speed: self.speed,
            results: {
                let mut results = Vec::with_capacity(self.result_count as usize);
                results.extend(self.results().map(HitResultRef::into_owned));
                results
            },
            trailer: self.trailer.map(QhdTrailerRef::into_owned),
            servent_id: self.servent_id,
        }
    }
}

/// The results of a [`QueryHitRef`].
pub struct HitResultIter<'a> {
    reader: Reader<'a>,
    remaining: u8,
}

impl<'a> Iterator for HitResultIter<'a> {
    type Item = HitResultRef<'a>;

    fn next(&mut self) -> Option<HitResultRef<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Checked by QueryHitRef::parse; an error would just end the walk.
        HitResultRef::read(&mut self.reader).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_matches_position() {
        let mut hay: Vec<u8> = (1..=200u8).collect();
        for needle in [0u8, 0x1C, 1, 0x80, 0xFF, 200] {
            for len in 0..hay.len() {
                assert_eq!(
                    find_byte(&hay[..len], needle),
                    hay[..len].iter().position(|&b| b == needle),
                    "needle {needle} len {len}"
                );
            }
        }
        // Bytes just above the needle next to it (the borrow case of the trick).
        hay = vec![1, 1, 0, 1, 0x1D, 0x1C, 0, 0];
        assert_eq!(find_byte(&hay, 0), Some(2));
        assert_eq!(find_byte(&hay, 0x1C), Some(5));
        assert_eq!(find_byte(&[0x81, 0x01], 0x80), None);
    }

    #[test]
    fn view_agrees_with_owned_on_a_hit() {
        // The gtk-gnutella-relayed Shareaza hit of query_hit.rs, with a header.
        let body = data_encoding::HEXLOWER.decode(b"010c4a021f0ceb000100002e650000870400005370696465724d616e2e4e6f2e5761792e486f6d652e323032312e56322e783236342e3830304d422e4141432e484443414d2d48757368526970732e6d6b762e746f7272656e740075726e3a6269747072696e743a425a44435542525a594e495356464d51585a4a534d505a4d4f4f3243413358592e4f544c4a56374e574d4b50425541495a36374b414232575135554459594c3237493334335156591c75726e3a6564326b686173683a38323065303961383030323938303563373562646137306339343266326661381c75726e3a6d64353a33633034303232323261633661653066626434373663616231333761616162381cc382435444efa3bf610052415a41043c21b60000c3824248407b6465666c6174657d78da3dcedd0a82401040e15759e6015c233008b58b32caccfe28a4bbc9a676415dd959547afa20aafbc3c70967435d898e2c6bd34430f27c98c5a133d652e3580caca78dc9b1266eb1a453a9a8c6cc94e83eb972ae9d4ad9f7bdc70a2de10bbdd2d4923f1dcb9b765fca1bf80e7f58b45677e8e851e1338207564c207473a721021f844256111c9741b64a2745302e92f5f9b0b89ee7fb7499ecf2ed659c6e7629c83894bfd3f80d6a6945cd00e795275ae2eb0f4a8b3ec6ad550688d6").unwrap();
        let view = QueryHitRef::parse(&body).unwrap();
        assert_eq!(view.result_count(), 1);
        let r = view.results().next().unwrap();
        assert!(r.name.ends_with(b".torrent"));
        let kinds: Vec<&str> = r
            .extensions
            .iter()
            .map(|e| match e {
                ExtensionRef::Urn(_) => "urn",
                ExtensionRef::Xml(_) => "xml",
                ExtensionRef::Ggep(_) => "ggep",
                ExtensionRef::Text(_) => "text",
            })
            .collect();
        assert_eq!(kinds, ["urn", "urn", "urn", "ggep"]);
        assert_eq!(view.trailer.unwrap().flags().ggep, Some(true));
        let owned = view.into_owned();
        let mut out = Vec::new();
        owned.encode(&mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn view_rejects_what_owned_rejects() {
        for (ty, bytes) in [
            (PayloadType::Pong, &[0u8; 13][..]),
            (PayloadType::Ping, b"x"),
            (PayloadType::Query, b"\x80\x00abc"),
            (PayloadType::QueryHit, &[2u8; 30][..]),
            (PayloadType::Bye, b"\xc8\x00a\x00b"),
            (PayloadType::Push, &[0u8; 27][..]),
        ] {
            let view = PayloadRef::parse(ty, bytes).map(PayloadRef::into_owned);
            assert!(view.is_err(), "{ty:?}");
            assert_eq!(view, Payload::parse(ty, bytes), "{ty:?}");
        }
    }

    /// Interleaved GGEP chains: from the magic byte after every 0x1C a valid chain of extensions
    /// runs to the end of the area without a last flag. Each unit is one outer extension
    /// `01 'X' 47 <7 data bytes>` whose data `1C C3 02 Y Y 46 Z` holds a separator, a magic byte
    /// and the start of an inner chain with the same period.
    fn interleaved_chains(units: usize) -> Vec<u8> {
        let unit = [0x01u8, 0x58, 0x47, 0x1C, 0xC3, 0x02, 0x59, 0x59, 0x46, 0x5A];
        unit.iter()
            .copied()
            .cycle()
            .take(unit.len() * units)
            .collect()
    }

    /// The extension iterator as it was before failed GGEP attempts were remembered: every item
    /// starting with the magic byte is walked from scratch.
    fn naive_items(area: &[u8]) -> Vec<ExtensionRef<'_>> {
        let mut out = Vec::new();
        let mut pos = 0;
        if area.is_empty() {
            return out;
        }
        loop {
            let rest = &area[pos..];
            if rest.first() == Some(&GGEP_MAGIC) {
                if let Ok((ggep, used)) = GgepRef::parse_prefix(rest) {
                    match rest.get(used) {
                        None => {
                            out.push(ExtensionRef::Ggep(ggep));
                            return out;
                        }
                        Some(&EXTENSION_SEPARATOR) => {
                            out.push(ExtensionRef::Ggep(ggep));
                            pos += used + 1;
                            continue;
                        }
                        Some(_) => {}
                    }
                }
            }
            let end = rest.iter().position(|&b| b == EXTENSION_SEPARATOR);
            out.push(ExtensionRef::classify(&rest[..end.unwrap_or(rest.len())]));
            match end {
                Some(e) => pos += e + 1,
                None => return out,
            }
        }
    }

    fn extension_reads() -> usize {
        crate::ggep::tests::EXTENSION_READS.with(|n| n.get())
    }

    #[test]
    fn interleaved_ggep_chains_cost_linear_time() {
        // 64 KiB of interleaved chains used to cost ~21 million extension reads (seconds per
        // Query); remembering dead chains keeps it to a few reads per byte.
        let area = interleaved_chains(6500);
        let before = extension_reads();
        let items: Vec<_> = ExtensionsRef::new(&area).iter().collect();
        let reads = extension_reads() - before;
        assert_eq!(
            items.len(),
            6501,
            "one text item per separator, plus the last"
        );
        assert!(items.iter().all(|i| matches!(i, ExtensionRef::Text(_))));
        assert!(
            reads <= 2 * area.len(),
            "{reads} extension reads for {} bytes",
            area.len()
        );
        assert_eq!(items, naive_items(&area));

        // The same area as a Query's extensions and as a hit result's extensions.
        let mut query = vec![0, 0, b'a', 0];
        query.extend_from_slice(&area);
        let before = extension_reads();
        let q = QueryRef::parse(&query).expect("query decodes").into_owned();
        assert_eq!(q.extensions.len(), 6501);
        assert!(extension_reads() - before <= 4 * area.len());
    }

    #[test]
    fn qhd_private_data_search_is_linear() {
        // Magic bytes all through the private data, each starting a chain that never ends.
        let mut private = vec![0xC3];
        private.extend(interleaved_chains(6000));
        let trailer = QhdTrailer {
            vendor: *b"GTKG",
            open_data: vec![0x20, 0x20],
            private_data: private.clone(),
        };
        let before = extension_reads();
        assert_eq!(trailer.ggep(), None);
        let reads = extension_reads() - before;
        assert!(
            reads <= 2 * private.len(),
            "{reads} reads for {} bytes",
            private.len()
        );
        // A valid block after the junk is still found.
        let mut with_block = private;
        with_block.extend_from_slice(&[0x1C, 0xC3, 0x82, b'B', b'H', 0x41, 0x07]);
        let trailer = QhdTrailer {
            private_data: with_block,
            ..trailer
        };
        let g = trailer.ggep().expect("the trailing block");
        assert_eq!(g.get(b"BH").expect("BH").data, [0x07]);
    }

    #[test]
    fn block_end_inside_another_chain_is_not_dead() {
        // The block at 0 is valid but ends at 10, where no separator follows: unusable. Its data
        // holds a separator and a second block at 5 whose first extension ends at 10 too, where
        // the byte 0x81 starts its last extension: that block fills the rest and is usable.
        let area = [
            0xC3, 0x81, 0x41, 0x46, 0x1C, 0xC3, 0x01, 0x42, 0x41, 0x78, 0x81, 0x43, 0x40,
        ];
        let items: Vec<_> = ExtensionsRef::new(&area).iter().collect();
        assert_eq!(items, naive_items(&area));
        assert_eq!(items.len(), 2);
        let ExtensionRef::Ggep(g) = items[1] else {
            panic!("{:?}", items[1])
        };
        assert_eq!(g.iter().map(|e| e.id).collect::<Vec<_>>(), [b"B", b"C"]);
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2000))]

        /// Remembering failed GGEP attempts never changes how an area is split.
        #[test]
        fn remembered_attempts_split_like_naive(
            tokens in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(vec![GGEP_MAGIC]),
                    proptest::strategy::Just(vec![EXTENSION_SEPARATOR]),
                    // An extension header: flags (last or not, 1-byte id), id, 1-byte length.
                    (
                        proptest::sample::select(vec![0x01u8, 0x81, 0x02, 0x21]),
                        proptest::prelude::any::<u8>(),
                        0u8..10,
                    )
                        .prop_map(|(flags, id, len)| vec![flags, id, 0x40 | len]),
                    proptest::prelude::any::<u8>().prop_map(|b| vec![b]),
                ],
                0..40,
            )
        ) {
            let area = tokens.concat();
            let items: Vec<_> = ExtensionsRef::new(&area).iter().collect();
            proptest::prop_assert_eq!(items, naive_items(&area));
        }
    }
}
