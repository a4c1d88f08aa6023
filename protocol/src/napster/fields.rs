//! Reading and writing the space-separated, quote-delimited fields of an
//! OpenNap payload.
//!
//! Reading tolerates runs of spaces (some clients send two between fields)
//! and, with [`FieldReader::ignoring_trailing_fields`], fields after the
//! ones a message defines: clients extend messages freely (TekNap 1.3g's
//! login carries one field more than the message list names), so what a
//! server accepts from clients is read that way. Writing always emits the
//! canonical form (one space, names quoted), and refuses what would not read
//! back as the same fields.
//!
//! Every reader method is total: any bytes give a value or a
//! [`DecodeError`], never a panic, and nothing is allocated from a length
//! the input declares.

use super::codec::Fields;
use super::EncodeError;
use crate::error::{DecodeError, Result};
use std::net::Ipv4Addr;

/// What [`FieldReader::finish`] does with fields nobody read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trailing {
    /// They are an error ([`DecodeError::TrailingBytes`]).
    Reject,
    /// They are unknown extensions, skipped.
    Ignore,
}

/// A cursor over one payload.
#[derive(Debug, Clone)]
pub struct FieldReader<'a> {
    buf: &'a [u8],
    pos: usize,
    trailing: Trailing,
}

impl<'a> FieldReader<'a> {
    /// A reader for which fields left unread at [`FieldReader::finish`] are
    /// an error.
    pub fn new(buf: &'a [u8]) -> Self {
        FieldReader {
            buf,
            pos: 0,
            trailing: Trailing::Reject,
        }
    }

    /// Fields left after the known ones are ignored: [`FieldReader::finish`]
    /// succeeds whatever remains, and an optional field that does not parse
    /// ([`FieldReader::optional_number`]) is taken as the first unknown one.
    pub fn ignoring_trailing_fields(mut self) -> Self {
        self.trailing = Trailing::Ignore;
        self
    }

    fn skip_spaces(&mut self) {
        while self.buf.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    /// True when only spaces remain.
    pub fn at_end(&mut self) -> bool {
        self.skip_spaces();
        self.pos >= self.buf.len()
    }

    /// True if the next field starts with a double quote.
    pub fn next_is_quoted(&mut self) -> bool {
        self.skip_spaces();
        self.buf.get(self.pos) == Some(&b'"')
    }

    /// The next unquoted field (up to a space or the end).
    pub fn token(&mut self, what: &'static str) -> Result<&'a [u8]> {
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
    pub fn quoted(&mut self, what: &'static str) -> Result<&'a [u8]> {
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

    /// The next field as UTF-8 text (nicks and the like).
    pub fn str(&mut self, what: &'static str) -> Result<&'a str> {
        let bytes = self.token(what)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::BadField(what))
    }

    /// The next field as an owned UTF-8 string.
    pub fn string(&mut self, what: &'static str) -> Result<String> {
        self.str(what).map(str::to_owned)
    }

    /// A group of fields with a codec of its own (see [`Fields`]).
    pub fn read<T: Fields<'a>>(&mut self) -> Result<T> {
        T::read(self)
    }

    /// The next field as an unsigned decimal number.
    pub fn number<T: TryFrom<u64>>(&mut self, what: &'static str) -> Result<T> {
        let token = self.token(what)?;
        parse_decimal(token).ok_or(DecodeError::BadField(what))
    }

    /// An optional trailing number (the build of a login): `None` at the
    /// end. A field that is not such a number is an error, or, when
    /// trailing fields are ignored, the first of them (left unread).
    pub fn optional_number<T: TryFrom<u64>>(&mut self, what: &'static str) -> Result<Option<T>> {
        if self.at_end() {
            return Ok(None);
        }
        let mark = self.pos;
        match self.number(what) {
            Ok(n) => Ok(Some(n)),
            Err(_) if self.trailing == Trailing::Ignore => {
                self.pos = mark;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A decimal number that may be quoted (`BITRATE "AT LEAST" "128"`).
    /// Returns the value and whether it was quoted.
    pub fn maybe_quoted_number(&mut self, what: &'static str) -> Result<(u64, bool)> {
        let was_quoted = self.next_is_quoted();
        let token = self.quoted(what)?;
        let value = parse_decimal(token).ok_or(DecodeError::BadField(what))?;
        Ok((value, was_quoted))
    }

    /// A signed decimal number (the optional weight of a 201).
    pub fn signed(&mut self, what: &'static str) -> Result<i32> {
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
    pub fn ip(&mut self, what: &'static str) -> Result<Ipv4Addr> {
        let raw: u32 = self.number(what)?;
        Ok(ip_from_wire(raw))
    }

    /// An IPv4 address in dotted form (`127.0.0.1`), as a whois shows it.
    pub fn dotted_ip(&mut self, what: &'static str) -> Result<Ipv4Addr> {
        let token = self.str(what)?;
        token.parse().map_err(|_| DecodeError::BadField(what))
    }

    /// Everything after the next run of spaces, verbatim (free text tails).
    pub fn rest(&mut self) -> &'a [u8] {
        self.skip_spaces();
        self.verbatim()
    }

    /// Everything not read yet, spaces included: a payload that is one
    /// piece of free text (an error message, a ping's arguments).
    pub fn verbatim(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        rest
    }

    /// Ends the reading: succeeds if nothing but spaces remains, or
    /// whatever remains when trailing fields are ignored.
    pub fn finish(mut self) -> Result<()> {
        if self.trailing == Trailing::Ignore || self.at_end() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Strict unsigned decimal: 1 to 20 ASCII digits, no sign, no overflow.
pub fn parse_decimal<T: TryFrom<u64>>(digits: &[u8]) -> Option<T> {
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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True if any byte of `word` is zero.
#[inline]
fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

/// True if any byte `b` of `bytes` has `b | mask == target`, eight bytes at
/// a time: every name and token of every 201 is checked.
#[inline]
fn any_byte(bytes: &[u8], mask: u8, target: u8) -> bool {
    let (mask8, target8) = (ONES * u64::from(mask), ONES * u64::from(target));
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if has_zero_byte((u64::from_le_bytes(word) | mask8) ^ target8) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b | mask == target)
}

/// True if `bytes` holds a space (0x20) or a double quote (0x22): the bytes
/// `b` with `b | 0x02 == 0x22`.
#[inline]
fn has_space_or_quote(bytes: &[u8]) -> bool {
    any_byte(bytes, 0x02, b'"')
}

/// True if `bytes` holds a double quote.
#[inline]
fn has_quote(bytes: &[u8]) -> bool {
    any_byte(bytes, 0, b'"')
}

/// "00" to "99", for writing two digits at a time.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends `value` in decimal without allocating (numbers are most of a
/// 201, and a search writes hundreds of them).
#[inline]
fn push_decimal(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    while rest >= 10 && at >= 2 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        if let (Some(slot), Some(two)) =
            (digits.get_mut(at..at + 2), DIGIT_PAIRS.get(pair..pair + 2))
        {
            slot.copy_from_slice(two);
        }
    }
    if rest > 0 || at == digits.len() {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            *slot = b'0' + rest as u8;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or(&[]));
}

/// The wire form of an address: 127.0.0.1 → 16777343.
pub fn ip_to_wire(ip: Ipv4Addr) -> u32 {
    u32::from_le_bytes(ip.octets())
}

/// The address a wire number stands for: 16777343 → 127.0.0.1.
pub fn ip_from_wire(raw: u32) -> Ipv4Addr {
    Ipv4Addr::from(raw.to_le_bytes())
}

/// Builds one payload in canonical form. Each method refuses (with an
/// [`EncodeError`]) a value that would not read back as one field.
#[derive(Debug)]
pub struct FieldWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> FieldWriter<'a> {
    #[inline]
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        FieldWriter { out, first: true }
    }

    #[inline]
    fn separator(&mut self) {
        if !self.first {
            self.out.push(b' ');
        }
        self.first = false;
    }

    #[inline]
    pub fn token(
        &mut self,
        what: &'static str,
        bytes: &[u8],
    ) -> std::result::Result<(), EncodeError> {
        if bytes.is_empty() || has_space_or_quote(bytes) {
            return Err(EncodeError::BadToken(what));
        }
        self.separator();
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    pub fn quoted(
        &mut self,
        what: &'static str,
        bytes: &[u8],
    ) -> std::result::Result<(), EncodeError> {
        if has_quote(bytes) {
            return Err(EncodeError::QuoteInField(what));
        }
        self.separator();
        self.out.push(b'"');
        self.out.extend_from_slice(bytes);
        self.out.push(b'"');
        Ok(())
    }

    #[inline]
    pub fn number(&mut self, value: u64) {
        self.separator();
        push_decimal(self.out, value);
    }

    #[inline]
    pub fn signed(&mut self, value: i32) {
        self.separator();
        if value < 0 {
            self.out.push(b'-');
        }
        push_decimal(self.out, u64::from(value.unsigned_abs()));
    }

    #[inline]
    pub fn quoted_number(&mut self, value: u64) {
        self.separator();
        self.out.push(b'"');
        push_decimal(self.out, value);
        self.out.push(b'"');
    }

    #[inline]
    pub fn ip(&mut self, ip: Ipv4Addr) {
        self.number(u64::from(ip_to_wire(ip)));
    }

    /// An address in dotted form (`127.0.0.1`).
    #[inline]
    pub fn dotted_ip(&mut self, ip: Ipv4Addr) {
        self.separator();
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.out.push(b'.');
            }
            push_decimal(self.out, u64::from(octet));
        }
    }

    /// A group of fields with a codec of its own (see [`Fields`]).
    #[inline]
    pub fn write<'x, T: Fields<'x>>(&mut self, value: &T) -> std::result::Result<(), EncodeError> {
        value.write(self)
    }

    /// A literal keyword (`FILENAME`, `"AT LEAST"`), written as given.
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.separator();
        self.out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_plain_decimal() {
        let mut out = Vec::new();
        let mut w = FieldWriter::new(&mut out);
        for n in [0, 7, 10, 4_000_000, u64::MAX] {
            w.number(n);
        }
        for n in [0, -3, i32::MIN, i32::MAX] {
            w.signed(n);
        }
        w.quoted_number(128);
        w.dotted_ip(Ipv4Addr::new(10, 0, 255, 7));
        assert_eq!(
            out,
            b"0 7 10 4000000 18446744073709551615 0 -3 -2147483648 2147483647 \"128\" 10.0.255.7"
        );
        let mut r = FieldReader::new(b"10.0.255.7 1.2.3");
        assert_eq!(r.dotted_ip("ip"), Ok(Ipv4Addr::new(10, 0, 255, 7)));
        assert_eq!(r.dotted_ip("ip"), Err(DecodeError::BadField("ip")));
    }

    #[test]
    fn spaces_and_quotes_are_found_anywhere_in_a_token() {
        assert!(!has_space_or_quote(b""));
        assert!(!has_space_or_quote(
            b"0123456789abcdef0123456789abcdef!#~\x00\x02\xa0\xa2"
        ));
        for len in 1..20 {
            for at in 0..len {
                for bad in [b' ', b'"'] {
                    let mut token = vec![b'a'; len];
                    token[at] = bad;
                    assert!(has_space_or_quote(&token), "{len} {at} {bad}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_token_check_agrees_with_the_plain_one(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let plain = bytes.iter().any(|&b| b == b' ' || b == b'"');
            proptest::prop_assert_eq!(has_space_or_quote(&bytes), plain);
            proptest::prop_assert_eq!(has_quote(&bytes), bytes.contains(&b'"'));
        }

        #[test]
        fn numbers_read_back(value in proptest::prelude::any::<u64>()) {
            let mut out = Vec::new();
            push_decimal(&mut out, value);
            proptest::prop_assert_eq!(out, value.to_string().into_bytes());
        }
    }

    #[test]
    fn verbatim_keeps_every_space() {
        let mut r = FieldReader::new(b"  two  spaces  ");
        assert_eq!(r.verbatim(), b"  two  spaces  ");
        assert!(r.at_end());
    }

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

    #[test]
    fn trailing_fields_are_an_error_unless_ignored() {
        let mut strict = FieldReader::new(b"nick extra");
        assert_eq!(strict.token("n").unwrap(), b"nick");
        assert_eq!(strict.finish(), Err(DecodeError::TrailingBytes));
        let mut lenient = FieldReader::new(b"nick extra \"more\" 1").ignoring_trailing_fields();
        assert_eq!(lenient.token("n").unwrap(), b"nick");
        assert_eq!(lenient.finish(), Ok(()));
    }

    proptest::proptest! {
        /// The public reader is total: any bytes, any sequence of calls.
        #[test]
        fn reader_never_panics(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b' '),
                    proptest::strategy::Just(b'"'),
                    proptest::strategy::Just(b'7'),
                    proptest::prelude::any::<u8>(),
                ],
                0..80,
            ),
            calls in proptest::collection::vec(0u8..12, 0..20),
            lenient in proptest::prelude::any::<bool>(),
        ) {
            let mut r = FieldReader::new(&bytes);
            if lenient {
                r = r.ignoring_trailing_fields();
            }
            for call in calls {
                let _ = match call {
                    0 => r.token("t").map(|_| ()),
                    1 => r.quoted("q").map(|_| ()),
                    2 => r.string("s").map(|_| ()),
                    3 => r.number::<u64>("n").map(|_| ()),
                    4 => r.optional_number::<u16>("o").map(|_| ()),
                    5 => r.maybe_quoted_number("m").map(|_| ()),
                    6 => r.signed("i").map(|_| ()),
                    7 => r.ip("a").map(|_| ()),
                    8 => {
                        r.rest();
                        Ok(())
                    }
                    9 => r.dotted_ip("d").map(|_| ()),
                    10 => {
                        r.verbatim();
                        Ok(())
                    }
                    _ => {
                        r.next_is_quoted();
                        Ok(())
                    }
                };
                proptest::prop_assert!(r.pos <= bytes.len());
            }
            let _ = r.finish();
        }
    }

    #[test]
    fn an_optional_number_that_is_not_one_is_an_unknown_field_when_ignored() {
        let mut strict = FieldReader::new(b"beta");
        assert!(strict.optional_number::<u32>("build").is_err());
        let mut lenient = FieldReader::new(b"beta 5").ignoring_trailing_fields();
        assert_eq!(lenient.optional_number::<u32>("build"), Ok(None));
        assert_eq!(lenient.token("next").unwrap(), b"beta", "left unread");
        let mut present = FieldReader::new(b" 5201 0").ignoring_trailing_fields();
        assert_eq!(present.optional_number::<u32>("build"), Ok(Some(5201)));
        assert_eq!(
            FieldReader::new(b"  ").optional_number::<u32>("b"),
            Ok(None)
        );
    }
}
