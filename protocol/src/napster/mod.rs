//! OpenNap (Napster) wire format: frames, messages, the search grammar, and
//! the client-to-client data-port exchange.
//!
//! A frame is `u16 payload length (LE, header excluded) · u16 type (LE) ·
//! payload`. Payloads are ASCII-ish text: fields separated by spaces, file
//! names in double quotes with no escape mechanism, IPv4 addresses as the
//! decimal u32 of the `in_addr` bytes read little-endian.
//!
//! Map of the module:
//! - this file: [`Frame`], [`NapsterFramer`] (bytes in, split anywhere, whole
//!   frames out), [`EncodeError`], [`encode_fields`].
//! - [`fields`]: [`FieldReader`] and [`FieldWriter`], the payload fields
//!   every message is made of.
//! - [`codec`]: [`Fields`], the one reader and writer of each payload
//!   shape, and [`encode_payload`].
//! - [`message`]: [`ClientMessage`] (client → server) and [`ServerMessage`]
//!   (server → client), one variant per message number Hazel handles, and
//!   `Unknown { kind, payload }` for the rest; [`message::payload`] holds
//!   the payload types, among them [`SearchResultRef`], the borrowing 201
//!   encoder a server writes its results with.
//! - [`search`]: the 200 search request parsed into a [`SearchQuery`].
//! - [`transfer`]: the data-port pieces (`1`, `GET`, `SEND`, size/offset
//!   replies), as incremental parsers over a buffer.
//!
//! Decoders are total; encoders are exact inverses of the decoders for
//! canonical input (single spaces, quoted names where the format quotes them).

pub mod codec;
pub mod fields;
pub mod message;
pub mod search;
pub mod transfer;

pub use codec::{encode_payload, Fields};
pub use fields::{FieldReader, FieldWriter};
pub use message::payload::*;
pub use message::{ClientMessage, ServerMessage};
pub use search::{Comparison, NumericField, SearchClause, SearchQuery};

use crate::error::{DecodeError, Result};
use std::fmt;

/// Bytes of the frame header: u16 length, u16 type.
pub const HEADER_LEN: usize = 4;

/// The largest payload the u16 length field can describe.
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize;

/// Default cap on a frame payload accepted by [`NapsterFramer::new`].
///
/// opennap-ng refuses commands longer than a few KiB by default; batched
/// shares (870) are the longest legitimate messages and clients keep them
/// near 2 KiB, so 8 KiB leaves room without letting a peer park 64 KiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 8192;

/// One OpenNap frame: its message number and raw payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u16,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Parses exactly one frame occupying all of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Frame> {
        let (len, kind) = parse_header(bytes)?;
        let payload = bytes.get(HEADER_LEN..).ok_or(DecodeError::Truncated)?;
        match payload.len().cmp(&len) {
            std::cmp::Ordering::Less => Err(DecodeError::Truncated),
            std::cmp::Ordering::Greater => Err(DecodeError::TrailingBytes),
            std::cmp::Ordering::Equal => Ok(Frame {
                kind,
                payload: payload.to_vec(),
            }),
        }
    }

    /// Bytes [`Frame::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Appends header and payload to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
        encode_frame(self.kind, &self.payload, out)
    }
}

/// Reads the 4-byte header: (payload length, message type).
pub fn parse_header(bytes: &[u8]) -> Result<(usize, u16)> {
    match bytes {
        [l0, l1, t0, t1, ..] => Ok((
            u16::from_le_bytes([*l0, *l1]) as usize,
            u16::from_le_bytes([*t0, *t1]),
        )),
        _ => Err(DecodeError::Truncated),
    }
}

/// Appends one frame with the given type and payload.
pub fn encode_frame(
    kind: u16,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> std::result::Result<(), EncodeError> {
    let len =
        u16::try_from(payload.len()).map_err(|_| EncodeError::TooLong { len: payload.len() })?;
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends one frame of type `kind` whose payload `body` writes field by
/// field (for messages without a typed form). The length is patched in
/// afterwards; on error `out` is left as it was.
#[inline]
pub fn encode_fields(
    kind: u16,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut FieldWriter<'_>) -> std::result::Result<(), EncodeError>,
) -> std::result::Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&kind.to_le_bytes());
    let result = body(&mut FieldWriter::new(out));
    let len = out.len() - start - HEADER_LEN;
    if let Err(err) = result {
        out.truncate(start);
        return Err(err);
    }
    if len > MAX_PAYLOAD_LEN {
        out.truncate(start);
        return Err(EncodeError::TooLong { len });
    }
    let len_bytes = (len as u16).to_le_bytes();
    if let Some(slot) = out.get_mut(start..start + 2) {
        slot.copy_from_slice(&len_bytes);
    }
    Ok(())
}

/// Why a message could not be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A quoted field contains `"`, which the format cannot express.
    QuoteInField(&'static str),
    /// An unquoted field contains a space or `"`, or is empty, so it would
    /// not read back as one field.
    BadToken(&'static str),
    /// The payload does not fit the u16 length field.
    TooLong { len: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::QuoteInField(name) => {
                write!(
                    f,
                    "{name} contains a double quote, which OpenNap cannot carry"
                )
            }
            EncodeError::BadToken(name) => {
                write!(f, "{name} is empty or contains a space or double quote")
            }
            EncodeError::TooLong { len } => {
                write!(
                    f,
                    "payload of {len} bytes exceeds the 65535-byte frame limit"
                )
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// Splits an OpenNap byte stream into frames, wherever the reads happen to
/// cut it.
///
/// Push bytes with [`NapsterFramer::push`], then call
/// [`NapsterFramer::next_frame`] until it returns `Ok(None)`. A header that
/// declares a payload over the limit is an error as soon as its 4 bytes are
/// seen, before any of that payload is waited for; after an error the stream
/// is out of sync and the framer keeps returning the error.
#[derive(Debug)]
pub struct NapsterFramer {
    buf: Vec<u8>,
    start: usize,
    max_payload: usize,
    failed: Option<DecodeError>,
}

impl Default for NapsterFramer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PAYLOAD)
    }
}

impl NapsterFramer {
    /// A framer accepting payloads up to `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        NapsterFramer {
            buf: Vec::new(),
            start: 0,
            max_payload: max_payload.min(MAX_PAYLOAD_LEN),
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        Ok(self.next_frame_ref()?.map(|(kind, payload)| Frame {
            kind,
            payload: payload.to_vec(),
        }))
    }

    /// Like [`NapsterFramer::next_frame`] without copying: the payload
    /// borrows the framer's buffer until the next call.
    pub fn next_frame_ref(&mut self) -> Result<Option<(u16, &[u8])>> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let pending = self.buf.get(self.start..).unwrap_or(&[]);
        let (len, kind) = match parse_header(pending) {
            Ok(header) => header,
            Err(_) => return Ok(None),
        };
        if len > self.max_payload {
            let err = DecodeError::TooLong {
                len,
                max: self.max_payload,
            };
            self.failed = Some(err.clone());
            return Err(err);
        }
        let end = HEADER_LEN + len;
        if pending.len() < end {
            return Ok(None);
        }
        let from = self.start + HEADER_LEN;
        self.start += end;
        Ok(self
            .buf
            .get(from..self.start)
            .map(|payload| (kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_bytes_follow_the_spec_example() {
        // "foo badpass 6699 "nap v0.8" 3" as a login (type 2).
        let payload = b"foo badpass 6699 \"nap v0.8\" 3";
        let mut out = Vec::new();
        encode_frame(2, payload, &mut out).unwrap();
        assert_eq!(&out[..4], &[29, 0, 2, 0]);
        assert_eq!(Frame::parse(&out).unwrap().payload, payload.to_vec());
    }

    #[test]
    fn framer_waits_for_the_whole_payload() {
        let mut framer = NapsterFramer::default();
        framer.push(&[3, 0, 0xd6]);
        assert_eq!(framer.next_frame().unwrap(), None);
        framer.push(&[0, b'a', b'b']);
        assert_eq!(framer.next_frame().unwrap(), None);
        framer.push(&[b'c', 0, 0, 202, 0]);
        assert_eq!(
            framer.next_frame().unwrap(),
            Some(Frame {
                kind: 214,
                payload: b"abc".to_vec()
            })
        );
        assert_eq!(
            framer.next_frame().unwrap(),
            Some(Frame {
                kind: 202,
                payload: vec![]
            })
        );
        assert_eq!(framer.next_frame().unwrap(), None);
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn framer_rejects_an_oversized_length_from_the_header_alone() {
        let mut framer = NapsterFramer::new(100);
        framer.push(&[101, 0, 200, 0]);
        assert_eq!(
            framer.next_frame(),
            Err(DecodeError::TooLong { len: 101, max: 100 })
        );
        framer.push(&[0; 4]);
        assert!(framer.next_frame().is_err(), "the error is sticky");
    }

    #[test]
    fn frame_parse_reports_short_and_long_input() {
        assert_eq!(Frame::parse(&[1, 0]), Err(DecodeError::Truncated));
        assert_eq!(Frame::parse(&[1, 0, 0, 0]), Err(DecodeError::Truncated));
        assert_eq!(
            Frame::parse(&[0, 0, 0, 0, 9]),
            Err(DecodeError::TrailingBytes)
        );
    }

    #[test]
    fn encode_refuses_a_payload_over_u16() {
        let mut out = Vec::new();
        assert_eq!(
            encode_frame(1, &vec![b'a'; 70_000], &mut out),
            Err(EncodeError::TooLong { len: 70_000 })
        );
        assert!(out.is_empty());
    }
}
