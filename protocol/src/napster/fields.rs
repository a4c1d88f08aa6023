//! Reading and writing the space-separated, quote-delimited fields of an
//! OpenNap payload.
//!
//! Reading tolerates runs of spaces (some clients send two between fields);
//! writing always emits the canonical form (one space, names quoted).

use super::EncodeError;
use crate::error::{DecodeError, Result};
use std::net::Ipv4Addr;

/// A cursor over one payload.
pub(crate) struct FieldReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> FieldReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        FieldReader { buf, pos: 0 }
    }

    fn skip_spaces(&mut self) {
        while self.buf.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    /// True when only spaces remain.
    pub(crate) fn at_end(&mut self) -> bool {
        self.skip_spaces();
        self.pos >= self.buf.len()
    }

    /// The next unquoted field (up to a space or the end).
    pub(crate) fn token(&mut self, what: &'static str) -> Result<&'a [u8]> {
        if self.at_end() {
            return Err(DecodeError::BadField(what));
        }
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        self.pos += len;
        Ok(rest.get(..len).unwrap_or(&[]))
    }

    /// The next field in double quotes (no escapes: it ends at the next `"`,
    /// which must be followed by a space or the end). A field without quotes
    /// is accepted as a plain token, as lenient servers do.
    pub(crate) fn quoted(&mut self, what: &'static str) -> Result<&'a [u8]> {
        if self.at_end() {
            return Err(DecodeError::BadField(what));
        }
        if self.buf.get(self.pos) != Some(&b'"') {
            return self.token(what);
        }
        let rest = self.buf.get(self.pos + 1..).unwrap_or(&[]);
        let len = rest
            .iter()
            .position(|&b| b == b'"')
            .ok_or(DecodeError::BadField(what))?;
        let after = self.pos + 1 + len + 1;
        match self.buf.get(after) {
            None | Some(b' ') => {}
            Some(_) => return Err(DecodeError::BadField(what)),
        }
        self.pos = after;
        Ok(rest.get(..len).unwrap_or(&[]))
    }

    /// The next field as an owned UTF-8 string (nicks and the like).
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String> {
        let bytes = self.token(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadField(what))
    }

    /// The next field as an unsigned decimal number.
    pub(crate) fn number<T: TryFrom<u64>>(&mut self, what: &'static str) -> Result<T> {
        let token = self.token(what)?;
        parse_decimal(token).ok_or(DecodeError::BadField(what))
    }

    /// A decimal number that may be quoted (`BITRATE "AT LEAST" "128"`).
    /// Returns the value and whether it was quoted.
    pub(crate) fn maybe_quoted_number(&mut self, what: &'static str) -> Result<(u64, bool)> {
        self.skip_spaces();
        let was_quoted = self.buf.get(self.pos) == Some(&b'"');
        let token = self.quoted(what)?;
        let value = parse_decimal(token).ok_or(DecodeError::BadField(what))?;
        Ok((value, was_quoted))
    }

    /// A signed decimal number (the optional weight of a 201).
    pub(crate) fn signed(&mut self, what: &'static str) -> Result<i32> {
        let token = self.token(what)?;
        let (negative, digits) = match token.split_first() {
            Some((b'-', digits)) => (true, digits),
            _ => (false, token),
        };
        let magnitude: u64 = parse_decimal(digits).ok_or(DecodeError::BadField(what))?;
        let value = if negative {
            -(magnitude as i64)
        } else {
            magnitude as i64
        };
        i32::try_from(value).map_err(|_| DecodeError::BadField(what))
    }

    /// An IPv4 address as the decimal u32 of its in_addr read little-endian.
    pub(crate) fn ip(&mut self, what: &'static str) -> Result<Ipv4Addr> {
        let raw: u32 = self.number(what)?;
        Ok(ip_from_wire(raw))
    }

    /// Everything after the next run of spaces, verbatim (free text tails).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        self.skip_spaces();
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        rest
    }

    /// Succeeds only if nothing but spaces remains.
    pub(crate) fn finish(mut self) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Strict unsigned decimal: 1 to 20 ASCII digits, no sign, no overflow.
pub(crate) fn parse_decimal<T: TryFrom<u64>>(digits: &[u8]) -> Option<T> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    T::try_from(value).ok()
}

/// The wire form of an address: 127.0.0.1 → 16777343.
pub fn ip_to_wire(ip: Ipv4Addr) -> u32 {
    u32::from_le_bytes(ip.octets())
}

/// The address a wire number stands for: 16777343 → 127.0.0.1.
pub fn ip_from_wire(raw: u32) -> Ipv4Addr {
    Ipv4Addr::from(raw.to_le_bytes())
}

/// Builds one payload in canonical form.
pub(crate) struct FieldWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> FieldWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        FieldWriter { out, first: true }
    }

    fn separator(&mut self) {
        if !self.first {
            self.out.push(b' ');
        }
        self.first = false;
    }

    pub(crate) fn token(
        &mut self,
        what: &'static str,
        bytes: &[u8],
    ) -> std::result::Result<(), EncodeError> {
        if bytes.is_empty() || bytes.iter().any(|&b| b == b' ' || b == b'"') {
            return Err(EncodeError::BadToken(what));
        }
        self.separator();
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    pub(crate) fn quoted(
        &mut self,
        what: &'static str,
        bytes: &[u8],
    ) -> std::result::Result<(), EncodeError> {
        if bytes.contains(&b'"') {
            return Err(EncodeError::QuoteInField(what));
        }
        self.separator();
        self.out.push(b'"');
        self.out.extend_from_slice(bytes);
        self.out.push(b'"');
        Ok(())
    }

    pub(crate) fn number(&mut self, value: u64) {
        self.separator();
        self.out.extend_from_slice(value.to_string().as_bytes());
    }

    pub(crate) fn signed(&mut self, value: i32) {
        self.separator();
        self.out.extend_from_slice(value.to_string().as_bytes());
    }

    pub(crate) fn quoted_number(&mut self, value: u64) {
        self.separator();
        self.out.push(b'"');
        self.out.extend_from_slice(value.to_string().as_bytes());
        self.out.push(b'"');
    }

    pub(crate) fn ip(&mut self, ip: Ipv4Addr) {
        self.number(u64::from(ip_to_wire(ip)));
    }

    /// A literal keyword (`FILENAME`, `"AT LEAST"`), written as given.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.separator();
        self.out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_encoding_matches_the_notes() {
        assert_eq!(ip_to_wire(Ipv4Addr::new(127, 0, 0, 1)), 16777343);
        assert_eq!(ip_from_wire(16777343), Ipv4Addr::new(127, 0, 0, 1));
    }

    #[test]
    fn reader_tolerates_extra_spaces_and_unquoted_names() {
        let mut r = FieldReader::new(b"  \"a b\"   tok  \"\"  plain 12 ");
        assert_eq!(r.quoted("n").unwrap(), b"a b");
        assert_eq!(r.token("t").unwrap(), b"tok");
        assert_eq!(r.quoted("e").unwrap(), b"");
        assert_eq!(r.quoted("p").unwrap(), b"plain");
        assert_eq!(r.number::<u32>("x").unwrap(), 12);
        assert!(r.finish().is_ok());
    }

    #[test]
    fn reader_rejects_text_glued_to_a_closing_quote_and_bad_numbers() {
        assert!(FieldReader::new(b"\"a\"b").quoted("n").is_err());
        assert!(FieldReader::new(b"\"open").quoted("n").is_err());
        assert!(FieldReader::new(b"12a").number::<u32>("x").is_err());
        assert!(FieldReader::new(b"70000").number::<u16>("x").is_err());
        assert!(FieldReader::new(b"99999999999999999999999")
            .number::<u64>("x")
            .is_err());
        assert_eq!(FieldReader::new(b"-5").signed("w").unwrap(), -5);
    }
}
