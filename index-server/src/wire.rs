//! Payload helpers for what `hazel_protocol::napster` keeps untyped (whois,
//! nuke, password change, ban lists):
//! reading space-separated, double-quoted fields, and building payloads.
//!
//! Payloads are kept as bytes: 2000-era clients send Latin-1 names, and a
//! name must come back to them byte for byte or their downloads fail.

use hazel_protocol::DecodeError;

/// Builds a payload field by field: `p.word(..).quoted(..).num(..)`.
#[derive(Debug, Default)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    pub fn new() -> Payload {
        Payload(Vec::with_capacity(64))
    }

    fn sep(&mut self) {
        if !self.0.is_empty() {
            self.0.push(b' ');
        }
    }

    pub fn word(mut self, w: &[u8]) -> Self {
        self.sep();
        self.0.extend_from_slice(w);
        self
    }

    pub fn text(self, s: &str) -> Self {
        self.word(s.as_bytes())
    }

    pub fn quoted(mut self, w: &[u8]) -> Self {
        self.sep();
        self.0.push(b'"');
        self.0.extend_from_slice(w);
        self.0.push(b'"');
        self
    }

    pub fn num(self, n: impl std::fmt::Display) -> Self {
        self.text(&n.to_string())
    }
}

/// Reads the fields of a payload one at a time.
///
/// Fields are separated by runs of spaces (real clients sometimes send two);
/// a field that starts with `"` runs to the next `"` (no escapes exist).
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(payload: &'a [u8]) -> Fields<'a> {
        Fields { rest: payload }
    }

    fn skip_spaces(&mut self) {
        let n = self.rest.iter().take_while(|&&b| b == b' ').count();
        self.rest = &self.rest[n..];
    }

    /// The next field, quoted or not; `None` at the end of the payload.
    pub fn next_field(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        self.skip_spaces();
        match self.rest.first() {
            None => Ok(None),
            Some(b'"') => {
                let body = &self.rest[1..];
                let end = body
                    .iter()
                    .position(|&b| b == b'"')
                    .ok_or(DecodeError::BadField("unterminated quoted string"))?;
                self.rest = &body[end + 1..];
                Ok(Some(&body[..end]))
            }
            Some(_) => {
                let end = self
                    .rest
                    .iter()
                    .position(|&b| b == b' ')
                    .unwrap_or(self.rest.len());
                let (field, rest) = self.rest.split_at(end);
                self.rest = rest;
                Ok(Some(field))
            }
        }
    }

    /// A required field.
    pub fn field(&mut self, name: &'static str) -> Result<&'a [u8], DecodeError> {
        self.next_field()?.ok_or(DecodeError::BadField(name))
    }

    /// A required field as UTF-8 text.
    pub fn text(&mut self, name: &'static str) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.field(name)?).map_err(|_| DecodeError::BadField(name))
    }

    /// A required unsigned decimal field.
    pub fn number<T: std::str::FromStr>(&mut self, name: &'static str) -> Result<T, DecodeError> {
        self.text(name)?
            .parse()
            .map_err(|_| DecodeError::BadField(name))
    }

    /// An optional trailing unsigned decimal field.
    pub fn opt_number<T: std::str::FromStr>(
        &mut self,
        name: &'static str,
    ) -> Result<Option<T>, DecodeError> {
        match self.next_field()? {
            None => Ok(None),
            Some(f) => std::str::from_utf8(f)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or(DecodeError::BadField(name)),
        }
    }

    /// Everything left, with leading spaces removed (free text, unquoted names).
    pub fn remainder(&mut self) -> &'a [u8] {
        self.skip_spaces();
        std::mem::take(&mut self.rest)
    }

    pub fn is_empty(&mut self) -> bool {
        self.skip_spaces();
        self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields_handle_quotes_and_extra_spaces() {
        let mut f = Fields::new(b"  lefty  \"band - song.mp3\" 7 \"\"");
        assert_eq!(f.field("nick").unwrap(), b"lefty");
        assert_eq!(f.field("file").unwrap(), b"band - song.mp3");
        assert_eq!(f.number::<u32>("speed").unwrap(), 7);
        assert_eq!(f.field("empty").unwrap(), b"");
        assert_eq!(f.next_field().unwrap(), None);
        let mut bad = Fields::new(b"\"open");
        assert!(bad.next_field().is_err());
    }

    proptest! {
        #[test]
        fn fields_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut f = Fields::new(&bytes);
            for _ in 0..bytes.len() + 1 {
                match f.next_field() {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
    }
}
