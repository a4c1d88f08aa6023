//! The one error type of every decoder in this crate.

use std::fmt;

/// Why a byte sequence could not be decoded.
///
/// Decoders that work on a growing buffer (framers, handshakes, HTTP heads)
/// report "need more input" through their return value, never through this
/// type: a `DecodeError` always means the input is wrong, not short of a
/// boundary the caller has yet to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends before the message does.
    Truncated,
    /// A declared length is larger than this decoder accepts.
    TooLong { len: usize, max: usize },
    /// A field holds a value the format does not allow; the name says which.
    BadField(&'static str),
    /// Bytes remain where the format says the message ends.
    TrailingBytes,
    /// Compressed data (deflate / zlib) that does not inflate.
    Inflate,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "input ends inside the message"),
            DecodeError::TooLong { len, max } => {
                write!(f, "declared length {len} exceeds the limit of {max}")
            }
            DecodeError::BadField(name) => write!(f, "invalid {name}"),
            DecodeError::TrailingBytes => write!(f, "unexpected bytes after the message"),
            DecodeError::Inflate => write!(f, "compressed data does not inflate"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, DecodeError>;
