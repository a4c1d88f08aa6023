//! The one codec of each OpenNap payload.
//!
//! A payload of several fields is a type implementing [`Fields`]: it reads
//! its fields from a [`FieldReader`] and writes them with a [`FieldWriter`],
//! and that pair is the only code that knows their order. A message both
//! sides send (751, 752, 750), or whose shape several messages share (`nick
//! "file"` is 203, 206, 500, 608 and 609), goes through the same type in
//! [`ClientMessage`](super::ClientMessage) and
//! [`ServerMessage`](super::ServerMessage) alike.
//!
//! How strict reading is belongs to the reader, not to the codec: a server
//! reads what clients send with a reader that ignores trailing fields, a
//! client reads what servers send with one that refuses them (see
//! [`FieldReader::ignoring_trailing_fields`]).
//!
//! Types with a lifetime borrow their fields (from the payload when read,
//! from the caller when written), so a server can encode a search result
//! from its index without building an owned message first
//! ([`SearchResultRef`](super::SearchResultRef)).

use super::fields::{FieldReader, FieldWriter};
use super::{encode_fields, EncodeError};
use crate::error::Result;

/// A group of payload fields with one reader and one writer.
pub trait Fields<'a>: Sized {
    /// Reads the fields from where `r` stands; what follows is left to the
    /// caller (and to the reader's trailing-field rule).
    fn read(r: &mut FieldReader<'a>) -> Result<Self>;

    /// Writes the fields in canonical form, refusing what would not read
    /// back as the same value.
    fn write(&self, w: &mut FieldWriter<'_>) -> std::result::Result<(), EncodeError>;
}

/// Appends a whole frame of type `kind` whose payload is `fields`; on error
/// nothing is appended.
pub fn encode_payload<'a, T: Fields<'a>>(
    kind: u16,
    fields: &T,
    out: &mut Vec<u8>,
) -> std::result::Result<(), EncodeError> {
    encode_fields(kind, out, |w| fields.write(w))
}
