//! The THEX serialization: a DIME message of two records, an XML description of the tree and the
//! tree itself (every kept digest, breadth-first from the root), as served at
//! `/uri-res/N2X?urn:sha1:…` with `Content-Type: application/dime`.
//!
//! # DIME (draft-nielsen-dime-02), as THEX peers use it
//! Each record: a 12-byte header — version (5 bits, always 1) · MB (message begin) · ME (message
//! end) · CF (chunked) in byte 0; the type format (4 bits: 1 = media type, 2 = absolute URI) and 4
//! reserved bits in byte 1; the options, id and type lengths (big-endian `u16`) and the data length
//! (big-endian `u32`) — then the options, id, type and data, each padded with zeros to a multiple
//! of 4 bytes. The first record has MB, the last ME.
//!
//! What Hazel sends (the layout gtk-gnutella sends): record 1, MB, media type `text/xml`, no id,
//! the description; record 2, ME, absolute URI [`TREE_TYPE`], id `uuid:…` (the same as the
//! description's `serializedtree uri`), the digests.
//!
//! What Hazel accepts (what gtk-gnutella accepts, and what the captured Shareaza reply needs):
//! version 1, MB on the first record, records up to the first with ME (what follows is ignored;
//! Shareaza 2.7 adds a third record, an ed2k hash set, which is skipped like any record of another
//! type); every field's padding present; the description
//! record found by type `text/xml` and the tree record by type [`TREE_TYPE`] and the id the
//! description names (any record of that type if none has that id: BearShare mangles the id),
//! types and ids compared without case. Chunked records (CF) are refused: no THEX peer sends them.
//!
//! The description must say `<file size=` the expected size `segmentsize="1024"`, `<digest
//! algorithm=`[`DIGEST_ALGORITHM`] `outputsize="24"`, `<serializedtree type=`[`TREE_TYPE`]. Its
//! `depth` is not trusted: gtk-gnutella writes the depth of the deepest row (root = 0) and
//! Shareaza the number of rows, so the rows are counted from the tree record's length instead.
//! The tree record must hold whole rows for the file size, start with the expected root, and every
//! row must hash to the row above ([`super::TigerTree::from_levels`]).

use std::fmt;

use super::{row_len, tiger_base32, TigerTree, DIGEST_LEN};
use crate::error::DecodeError;
use crate::huge::TigerDigest;

/// The `type` of the tree record and of `<serializedtree>`.
pub const TREE_TYPE: &str = "http://open-content.net/spec/thex/breadthfirst";
/// The description's `<!DOCTYPE hashtree SYSTEM …>`.
pub const DOCTYPE: &str = "http://open-content.net/spec/thex/thex.dtd";
/// `<digest algorithm=…>`.
pub const DIGEST_ALGORITHM: &str = "http://open-content.net/spec/digest/tiger";
/// The `Content-Type` of a THEX reply.
pub const CONTENT_TYPE: &str = "application/dime";
/// The largest THEX message decoded (gtk-gnutella reads at most 260 KiB of one). Enough for a
/// tree down to 12 levels; Hazel's own trees take under 50 KiB.
pub const MAX_DIME_LEN: usize = 260 * 1024;
/// Records read from one message at most.
const MAX_RECORDS: usize = 16;

const DIME_VERSION: u8 = 1;
const FLAG_MB: u8 = 0x04;
const FLAG_ME: u8 = 0x02;
const FLAG_CF: u8 = 0x01;
/// Type formats (TYPE_T).
pub const TYPE_MEDIA: u8 = 1;
pub const TYPE_URI: u8 = 2;
const HEADER_LEN: usize = 12;

/// Why a THEX reply was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThexError {
    /// The message is larger than [`MAX_DIME_LEN`].
    TooLong { len: usize, max: usize },
    /// The DIME container is malformed (truncated, a lying length, another version …).
    Dime(DecodeError),
    /// No `text/xml` record.
    NoDescription,
    /// The description lacks a field or has a value THEX does not allow; the name says which.
    Description(&'static str),
    /// The description is about a file of another size.
    FileSize { announced: u64, expected: u64 },
    /// No tree record.
    NoTree,
    /// The tree record is not a whole number of rows of digests for the file size.
    TreeLength,
    /// The tree's root is not the one expected: another file, or a lie.
    WrongRoot { found: TigerDigest },
    /// The row at `depth` does not hash to the row above it.
    Inconsistent { depth: usize },
}

impl fmt::Display for ThexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThexError::TooLong { len, max } => {
                write!(f, "THEX message of {len} bytes exceeds the limit of {max}")
            }
            ThexError::Dime(e) => write!(f, "malformed DIME message: {e}"),
            ThexError::NoDescription => write!(f, "no THEX description record"),
            ThexError::Description(what) => write!(f, "THEX description: bad or missing {what}"),
            ThexError::FileSize {
                announced,
                expected,
            } => write!(
                f,
                "THEX description is for {announced} bytes, the file has {expected}"
            ),
            ThexError::NoTree => write!(f, "no THEX tree record"),
            ThexError::TreeLength => {
                write!(f, "THEX tree record is not whole rows for the file size")
            }
            ThexError::WrongRoot { found } => {
                write!(
                    f,
                    "THEX tree has root {}, not the expected one",
                    tiger_base32(found)
                )
            }
            ThexError::Inconsistent { depth } => {
                write!(f, "THEX tree row {depth} does not hash to the row above")
            }
        }
    }
}

impl std::error::Error for ThexError {}

impl From<DecodeError> for ThexError {
    fn from(e: DecodeError) -> Self {
        ThexError::Dime(e)
    }
}

/// One DIME record, borrowing from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Message begin / message end flags.
    pub begin: bool,
    pub end: bool,
    /// The type format (TYPE_T): [`TYPE_MEDIA`], [`TYPE_URI`], …
    pub type_format: u8,
    pub options: &'a [u8],
    pub id: &'a [u8],
    pub type_name: &'a [u8],
    pub data: &'a [u8],
}

impl Record<'_> {
    /// Bytes of the encoded record, padding included (`None` if a field is too long for DIME).
    pub fn encoded_len(&self) -> Option<usize> {
        u16::try_from(self.options.len()).ok()?;
        u16::try_from(self.id.len()).ok()?;
        u16::try_from(self.type_name.len()).ok()?;
        u32::try_from(self.data.len()).ok()?;
        Some(
            HEADER_LEN
                + padded(self.options.len())
                + padded(self.id.len())
                + padded(self.type_name.len())
                + padded(self.data.len()),
        )
    }

    /// Appends the record. Fields too long for DIME's length fields are cut to the maximum
    /// (never the case for THEX: check [`Record::encoded_len`] first when in doubt).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let cut16 = |s: &[u8]| s.len().min(usize::from(u16::MAX));
        let options = &self.options[..cut16(self.options)];
        let id = &self.id[..cut16(self.id)];
        let type_name = &self.type_name[..cut16(self.type_name)];
        let data = &self.data[..self.data.len().min(u32::MAX as usize)];
        let mut flags = DIME_VERSION << 3;
        if self.begin {
            flags |= FLAG_MB;
        }
        if self.end {
            flags |= FLAG_ME;
        }
        out.push(flags);
        out.push((self.type_format & 0x0f) << 4);
        for len in [options.len(), id.len(), type_name.len()] {
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        for field in [options, id, type_name, data] {
            out.extend_from_slice(field);
            out.resize(out.len() + padded(field.len()) - field.len(), 0);
        }
    }
}

pub(crate) fn padded(len: usize) -> usize {
    len.div_ceil(4).saturating_mul(4)
}

/// Reads the records of a DIME message up to the one with ME; what follows it is ignored.
/// Total: a field whose (padded) length runs past the input is [`DecodeError::Truncated`], never
/// an allocation; at most 16 records are read.
pub fn parse_records(bytes: &[u8]) -> Result<Vec<Record<'_>>, DecodeError> {
    let mut records = Vec::new();
    let mut rest = bytes;
    loop {
        let (record, after) = parse_record(rest)?;
        if records.is_empty() && !record.begin {
            return Err(DecodeError::BadField("DIME message begin flag"));
        }
        let end = record.end;
        records.push(record);
        rest = after;
        if end {
            return Ok(records);
        }
        if records.len() >= MAX_RECORDS {
            return Err(DecodeError::TooLong {
                len: records.len() + 1,
                max: MAX_RECORDS,
            });
        }
    }
}

fn parse_record(bytes: &[u8]) -> Result<(Record<'_>, &[u8]), DecodeError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(DecodeError::Truncated)?;
    if header[0] >> 3 != DIME_VERSION {
        return Err(DecodeError::BadField("DIME version"));
    }
    if header[0] & FLAG_CF != 0 {
        return Err(DecodeError::BadField("DIME chunked record"));
    }
    let be16 = |i: usize| usize::from(u16::from_be_bytes([header[i], header[i + 1]]));
    let data_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    let mut rest = &bytes[HEADER_LEN..];
    let mut take = |len: usize| -> Result<&[u8], DecodeError> {
        // `padded` of a u32 cannot overflow a 64-bit usize; `get` bounds it by the input.
        let field = rest.get(..len).ok_or(DecodeError::Truncated)?;
        rest = rest.get(padded(len)..).ok_or(DecodeError::Truncated)?;
        Ok(field)
    };
    let options = take(be16(2))?;
    let id = take(be16(4))?;
    let type_name = take(be16(6))?;
    let data = take(usize::try_from(data_len).map_err(|_| DecodeError::Truncated)?)?;
    Ok((
        Record {
            begin: header[0] & FLAG_MB != 0,
            end: header[0] & FLAG_ME != 0,
            type_format: header[1] >> 4,
            options,
            id,
            type_name,
            data,
        },
        rest,
    ))
}

/// The `uri` that ties the description to the tree record: `uuid:` and the first 16 bytes of the
/// root as a UUID, so the same tree always gets the same message.
pub(crate) fn tree_uuid(root: &TigerDigest) -> String {
    let hex: String = root[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The XML description of a tree.
fn description(tree: &TigerTree, uri: &str) -> String {
    description_text(tree.file_size(), tree.depth(), uri)
}

fn description_text(size: u64, depth: u32, uri: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <!DOCTYPE hashtree SYSTEM \"{DOCTYPE}\">\r\n\
         <hashtree>\r\n\
         <file size=\"{size}\" segmentsize=\"{segment}\"/>\r\n\
         <digest algorithm=\"{DIGEST_ALGORITHM}\" outputsize=\"{DIGEST_LEN}\"/>\r\n\
         <serializedtree depth=\"{depth}\" type=\"{TREE_TYPE}\" uri=\"{uri}\"/>\r\n\
         </hashtree>\r\n",
        segment = super::BLOCK_SIZE,
    )
}

/// The length of [`TigerTree::encode_dime`] for a tree of a `file_size`-byte file keeping rows
/// down to `depth`, without the tree: what an upload announces as `Content-Length` for a stored
/// tree. `None` for a depth below the leaves.
pub fn message_len(file_size: u64, depth: u32) -> Option<u64> {
    let mut nodes: u64 = 0;
    for d in 0..=depth {
        nodes = nodes.checked_add(row_len(file_size, d)?)?;
    }
    // The description's length depends only on the size, the depth and the (fixed-length) uri.
    let uri = tree_uuid(&[0; 24]);
    let xml = description_text(file_size, depth, &uri).len();
    let digests = nodes.checked_mul(DIGEST_LEN as u64)?;
    let fixed = 2 * HEADER_LEN + padded(b"text/xml".len()) + padded(xml) + padded(uri.len());
    (fixed as u64 + padded(TREE_TYPE.len()) as u64).checked_add(digests.checked_add(3)? / 4 * 4)
}

impl TigerTree {
    /// The THEX DIME message of this tree (every kept row).
    pub fn encode_dime(&self) -> Vec<u8> {
        let uri = tree_uuid(&self.root());
        let xml = description(self, &uri);
        let mut digests = Vec::with_capacity(self.node_count() * DIGEST_LEN);
        for digest in self.breadth_first() {
            digests.extend_from_slice(digest);
        }
        let records = [
            Record {
                begin: true,
                end: false,
                type_format: TYPE_MEDIA,
                options: b"",
                id: b"",
                type_name: b"text/xml",
                data: xml.as_bytes(),
            },
            Record {
                begin: false,
                end: true,
                type_format: TYPE_URI,
                options: b"",
                id: uri.as_bytes(),
                type_name: TREE_TYPE.as_bytes(),
                data: &digests,
            },
        ];
        let len = records.iter().filter_map(Record::encoded_len).sum();
        let mut out = Vec::with_capacity(len);
        for record in &records {
            record.encode(&mut out);
        }
        out
    }

    /// Decodes a THEX DIME message about a file of `file_size` bytes whose root the caller
    /// trusts: any bytes give a tree that hashes up to `expected_root`, or an error saying why
    /// not. Never panics; allocates only in proportion to the input, which is capped at
    /// [`MAX_DIME_LEN`].
    pub fn decode_dime(
        bytes: &[u8],
        expected_root: &TigerDigest,
        file_size: u64,
    ) -> Result<TigerTree, ThexError> {
        if bytes.len() > MAX_DIME_LEN {
            return Err(ThexError::TooLong {
                len: bytes.len(),
                max: MAX_DIME_LEN,
            });
        }
        let records = parse_records(bytes)?;
        let xml = records
            .iter()
            .find(|r| r.type_name.eq_ignore_ascii_case(b"text/xml"))
            .ok_or(ThexError::NoDescription)?;
        let uri = check_description(xml.data, file_size)?;
        let is_tree = |r: &&Record<'_>| r.type_name.eq_ignore_ascii_case(TREE_TYPE.as_bytes());
        let tree = uri
            .and_then(|uri| {
                records
                    .iter()
                    .filter(is_tree)
                    .find(|r| r.id.eq_ignore_ascii_case(uri))
            })
            .or_else(|| records.iter().find(is_tree))
            .ok_or(ThexError::NoTree)?;
        TigerTree::from_breadth_first(file_size, expected_root, tree.data)
    }

    /// A tree from the digests of a THEX tree record (breadth-first from the root, whole rows),
    /// checked against the expected root and for consistency.
    pub fn from_breadth_first(
        file_size: u64,
        expected_root: &TigerDigest,
        digests: &[u8],
    ) -> Result<TigerTree, ThexError> {
        if digests.is_empty() || !digests.len().is_multiple_of(DIGEST_LEN) {
            return Err(ThexError::TreeLength);
        }
        let root: TigerDigest = digests
            .get(..DIGEST_LEN)
            .and_then(|r| r.try_into().ok())
            .ok_or(ThexError::TreeLength)?;
        if root != *expected_root {
            return Err(ThexError::WrongRoot { found: root });
        }
        let count = (digests.len() / DIGEST_LEN) as u64;
        // Which whole number of rows makes `count` digests (rows only get longer going down).
        let mut rows: Vec<usize> = Vec::new();
        let mut total: u64 = 0;
        let mut depth = 0u32;
        while total < count {
            let len = row_len(file_size, depth).ok_or(ThexError::TreeLength)?;
            total = total.saturating_add(len);
            rows.push(usize::try_from(len).map_err(|_| ThexError::TreeLength)?);
            depth += 1;
        }
        if total != count {
            return Err(ThexError::TreeLength);
        }
        let mut nodes = digests
            .chunks_exact(DIGEST_LEN)
            .filter_map(|d| TigerDigest::try_from(d).ok());
        let levels: Vec<Vec<TigerDigest>> = rows
            .iter()
            .map(|&len| nodes.by_ref().take(len).collect())
            .collect();
        TigerTree::from_levels(file_size, levels)
    }
}

/// Checks the description against THEX and the file size; returns the tree record's id if it
/// names one.
fn check_description(xml: &[u8], file_size: u64) -> Result<Option<&[u8]>, ThexError> {
    element(xml, b"hashtree").ok_or(ThexError::Description("hashtree element"))?;
    let file = element(xml, b"file").ok_or(ThexError::Description("file element"))?;
    let size = attribute(file, b"size")
        .and_then(parse_decimal)
        .ok_or(ThexError::Description("file size"))?;
    if size != file_size {
        return Err(ThexError::FileSize {
            announced: size,
            expected: file_size,
        });
    }
    if attribute(file, b"segmentsize") != Some(b"1024") {
        return Err(ThexError::Description("segmentsize"));
    }
    let digest = element(xml, b"digest").ok_or(ThexError::Description("digest element"))?;
    if attribute(digest, b"algorithm") != Some(DIGEST_ALGORITHM.as_bytes()) {
        return Err(ThexError::Description("digest algorithm"));
    }
    if attribute(digest, b"outputsize") != Some(b"24") {
        return Err(ThexError::Description("digest outputsize"));
    }
    let tree =
        element(xml, b"serializedtree").ok_or(ThexError::Description("serializedtree element"))?;
    if attribute(tree, b"type") != Some(TREE_TYPE.as_bytes()) {
        return Err(ThexError::Description("serializedtree type"));
    }
    Ok(attribute(tree, b"uri"))
}

/// Decimal digits only, no sign, no overflow.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// The bytes after `<name` of the first element so named (up to the end of the text; the
/// attribute reader stops at the tag's end).
fn element<'a>(xml: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut at = 0;
    while let Some(offset) = xml.get(at..)?.iter().position(|&b| b == b'<') {
        let start = at + offset + 1;
        let after = start + name.len();
        if xml.get(start..after) == Some(name) {
            match xml.get(after) {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>') | None => {
                    return xml.get(after..);
                }
                _ => {}
            }
        }
        at = start;
    }
    None
}

/// The value of attribute `name` in a tag's text (as [`element`] returns it); `None` when the tag
/// ends first or is malformed. Values are quoted with `"` or `'`; entities are not expanded
/// (THEX values never need them).
fn attribute<'a>(tag: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = tag;
    loop {
        rest = rest.trim_ascii_start();
        match rest.first() {
            None | Some(b'/' | b'>') => return None,
            _ => {}
        }
        let name_end = rest
            .iter()
            .position(|&b| b == b'=' || b.is_ascii_whitespace() || b == b'/' || b == b'>')?;
        let (attr, after) = rest.split_at(name_end);
        let after = after
            .trim_ascii_start()
            .strip_prefix(b"=")?
            .trim_ascii_start();
        let quote = *after.first().filter(|&&q| q == b'"' || q == b'\'')?;
        let value_and_rest = after.get(1..)?;
        let close = value_and_rest.iter().position(|&b| b == quote)?;
        if attr == name {
            return value_and_rest.get(..close);
        }
        rest = value_and_rest.get(close + 1..)?;
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builds odd DIME messages for the decoder's tests.
    pub(crate) use super::{padded, tree_uuid, Record};
}
