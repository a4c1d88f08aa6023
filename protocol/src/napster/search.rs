//! The search request (message 200) grammar.
//!
//! `[FILENAME CONTAINS "w"] MAX_RESULTS n [FILENAME EXCLUDES "w"]
//! [LINESPEED|BITRATE|FREQ|SIZE|DURATION <"AT LEAST"|"AT BEST"|"EQUAL TO"> n]
//! [TYPE t] [WMA-FILE] [LOCAL_ONLY]`, clauses in any order and repeatable.
//! Keywords are matched case-insensitively; clauses are kept in the order
//! received so that encoding gives back the same bytes. A field that starts
//! no known clause is an extension this server does not know, skipped like
//! the trailing fields of any client message; a known clause must be whole.

use super::fields::{FieldReader, FieldWriter};
use super::EncodeError;
use crate::error::{DecodeError, Result};

/// A numeric attribute a search can constrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumericField {
    /// The sharer's link type (0–10, see the login message).
    LineSpeed,
    /// kbps.
    Bitrate,
    /// Sample rate in Hz.
    Freq,
    /// File size in bytes.
    Size,
    /// Play time in seconds.
    Duration,
}

impl NumericField {
    fn keyword(self) -> &'static [u8] {
        match self {
            NumericField::LineSpeed => b"LINESPEED",
            NumericField::Bitrate => b"BITRATE",
            NumericField::Freq => b"FREQ",
            NumericField::Size => b"SIZE",
            NumericField::Duration => b"DURATION",
        }
    }

    fn from_keyword(word: &[u8]) -> Option<Self> {
        [
            NumericField::LineSpeed,
            NumericField::Bitrate,
            NumericField::Freq,
            NumericField::Size,
            NumericField::Duration,
        ]
        .into_iter()
        .find(|f| f.keyword().eq_ignore_ascii_case(word))
    }
}

/// How a numeric attribute is compared with the requested value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    AtLeast,
    AtBest,
    EqualTo,
}

impl Comparison {
    fn words(self) -> &'static [u8] {
        match self {
            Comparison::AtLeast => b"AT LEAST",
            Comparison::AtBest => b"AT BEST",
            Comparison::EqualTo => b"EQUAL TO",
        }
    }

    fn from_words(words: &[u8]) -> Option<Self> {
        [Comparison::AtLeast, Comparison::AtBest, Comparison::EqualTo]
            .into_iter()
            .find(|c| c.words().eq_ignore_ascii_case(words))
    }

    /// Whether `actual` satisfies `actual <op> wanted`.
    pub fn accepts(self, actual: u64, wanted: u64) -> bool {
        match self {
            Comparison::AtLeast => actual >= wanted,
            Comparison::AtBest => actual <= wanted,
            Comparison::EqualTo => actual == wanted,
        }
    }
}

/// One clause of a search request, in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchClause {
    /// `FILENAME CONTAINS "words"`: every word must appear in the name.
    Contains(Vec<u8>),
    /// `FILENAME EXCLUDES "words"`: no word may appear in the name.
    Excludes(Vec<u8>),
    /// `MAX_RESULTS n`.
    MaxResults(u32),
    /// `BITRATE "AT LEAST" "128"` and the like. `quoted` records whether the
    /// value was in quotes (clients quote BITRATE/FREQ, not LINESPEED).
    Compare {
        field: NumericField,
        op: Comparison,
        value: u64,
        quoted: bool,
    },
    /// `TYPE <mime-ish type>` (opennap-ng extension; not used for matching).
    Type(Vec<u8>),
    /// `WMA-FILE`.
    WmaFile,
    /// `LOCAL_ONLY`: do not forward to linked servers.
    LocalOnly,
}

/// A parsed 200 search request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    pub clauses: Vec<SearchClause>,
}

impl SearchQuery {
    /// Parses the payload of a 200 message.
    pub fn parse(payload: &[u8]) -> Result<SearchQuery> {
        let mut r = FieldReader::new(payload);
        let mut clauses = Vec::new();
        while !r.at_end() {
            if r.next_is_quoted() {
                // A quoted field where a keyword belongs: an unknown
                // clause's argument, skipped. An unterminated one ends the
                // request.
                if r.quoted("search field").is_err() {
                    r.rest();
                }
                continue;
            }
            let keyword = r.token("search keyword")?;
            let clause = if keyword.eq_ignore_ascii_case(b"FILENAME") {
                let how = r.token("FILENAME CONTAINS/EXCLUDES")?;
                let words = r.quoted("search words")?.to_vec();
                if how.eq_ignore_ascii_case(b"CONTAINS") {
                    SearchClause::Contains(words)
                } else if how.eq_ignore_ascii_case(b"EXCLUDES") {
                    SearchClause::Excludes(words)
                } else {
                    return Err(DecodeError::BadField("FILENAME CONTAINS/EXCLUDES"));
                }
            } else if keyword.eq_ignore_ascii_case(b"MAX_RESULTS") {
                SearchClause::MaxResults(r.number("MAX_RESULTS")?)
            } else if keyword.eq_ignore_ascii_case(b"WMA-FILE") {
                SearchClause::WmaFile
            } else if keyword.eq_ignore_ascii_case(b"LOCAL_ONLY") {
                SearchClause::LocalOnly
            } else if keyword.eq_ignore_ascii_case(b"TYPE") {
                SearchClause::Type(r.quoted("TYPE")?.to_vec())
            } else if let Some(field) = NumericField::from_keyword(keyword) {
                let op = read_comparison(&mut r)?;
                let (value, quoted) = r.maybe_quoted_number("search value")?;
                SearchClause::Compare {
                    field,
                    op,
                    value,
                    quoted,
                }
            } else {
                // An unknown word: skipped (it is read already).
                continue;
            };
            clauses.push(clause);
        }
        Ok(SearchQuery { clauses })
    }

    /// Appends the payload (no frame header).
    pub fn encode_payload(&self, out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
        let mut w = FieldWriter::new(out);
        for clause in &self.clauses {
            match clause {
                SearchClause::Contains(words) => {
                    w.raw(b"FILENAME CONTAINS");
                    w.quoted("search words", words)?;
                }
                SearchClause::Excludes(words) => {
                    w.raw(b"FILENAME EXCLUDES");
                    w.quoted("search words", words)?;
                }
                SearchClause::MaxResults(n) => {
                    w.raw(b"MAX_RESULTS");
                    w.number(u64::from(*n));
                }
                SearchClause::Compare {
                    field,
                    op,
                    value,
                    quoted,
                } => {
                    w.raw(field.keyword());
                    w.quoted("comparison", op.words())?;
                    if *quoted {
                        w.quoted_number(*value);
                    } else {
                        w.number(*value);
                    }
                }
                SearchClause::Type(t) => {
                    w.raw(b"TYPE");
                    w.quoted("TYPE", t)?;
                }
                SearchClause::WmaFile => w.raw(b"WMA-FILE"),
                SearchClause::LocalOnly => w.raw(b"LOCAL_ONLY"),
            }
        }
        Ok(())
    }

    /// The words phrases that must all match (`FILENAME CONTAINS`).
    pub fn contains(&self) -> impl Iterator<Item = &[u8]> {
        self.clauses.iter().filter_map(|c| match c {
            SearchClause::Contains(w) => Some(w.as_slice()),
            _ => None,
        })
    }

    /// The phrases whose words must not match (`FILENAME EXCLUDES`).
    pub fn excludes(&self) -> impl Iterator<Item = &[u8]> {
        self.clauses.iter().filter_map(|c| match c {
            SearchClause::Excludes(w) => Some(w.as_slice()),
            _ => None,
        })
    }

    /// The requested result cap (the last `MAX_RESULTS`, if any).
    pub fn max_results(&self) -> Option<u32> {
        self.clauses.iter().rev().find_map(|c| match c {
            SearchClause::MaxResults(n) => Some(*n),
            _ => None,
        })
    }

    /// The numeric constraints: (field, comparison, value).
    pub fn comparisons(&self) -> impl Iterator<Item = (NumericField, Comparison, u64)> + '_ {
        self.clauses.iter().filter_map(|c| match c {
            SearchClause::Compare {
                field, op, value, ..
            } => Some((*field, *op, *value)),
            _ => None,
        })
    }

    /// Convenience: `FILENAME CONTAINS "<words>" MAX_RESULTS <max>`.
    pub fn simple(words: &[u8], max_results: u32) -> SearchQuery {
        SearchQuery {
            clauses: vec![
                SearchClause::Contains(words.to_vec()),
                SearchClause::MaxResults(max_results),
            ],
        }
    }
}

/// `"AT LEAST"` quoted as clients send it, or the two bare words.
fn read_comparison(r: &mut FieldReader<'_>) -> Result<Comparison> {
    let first = r.quoted("comparison")?;
    if let Some(op) = Comparison::from_words(first) {
        return Ok(op);
    }
    let second = r.token("comparison")?;
    let mut words = first.to_vec();
    words.push(b' ');
    words.extend_from_slice(second);
    Comparison::from_words(&words).ok_or(DecodeError::BadField("comparison"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(payload: &[u8]) -> SearchQuery {
        let query = SearchQuery::parse(payload).unwrap();
        let mut out = Vec::new();
        query.encode_payload(&mut out).unwrap();
        assert_eq!(out, payload, "re-encoding gives the same bytes");
        query
    }

    #[test]
    fn spec_example_with_two_phrases_and_a_bitrate() {
        let q = round_trip(
            b"FILENAME CONTAINS \"Sneaker Pimps\" MAX_RESULTS 75 FILENAME CONTAINS \"tesko suicide\" BITRATE \"AT LEAST\" \"128\"",
        );
        assert_eq!(
            q.contains().collect::<Vec<_>>(),
            vec![&b"Sneaker Pimps"[..], &b"tesko suicide"[..]]
        );
        assert_eq!(q.max_results(), Some(75));
        assert_eq!(
            q.comparisons().collect::<Vec<_>>(),
            vec![(NumericField::Bitrate, Comparison::AtLeast, 128)]
        );
    }

    #[test]
    fn spec_example_with_an_unquoted_linespeed() {
        let q =
            round_trip(b"MAX_RESULTS 100 FILENAME CONTAINS \"Ventolin\" LINESPEED \"EQUAL TO\" 10");
        assert_eq!(
            q.comparisons().collect::<Vec<_>>(),
            vec![(NumericField::LineSpeed, Comparison::EqualTo, 10)]
        );
    }

    #[test]
    fn opennap_ng_extensions() {
        let q = round_trip(
            b"FILENAME CONTAINS \"a\" FILENAME EXCLUDES \"live\" SIZE \"AT BEST\" 5000000 DURATION \"AT LEAST\" 60 TYPE \"audio/mp3\" WMA-FILE LOCAL_ONLY",
        );
        assert_eq!(q.excludes().collect::<Vec<_>>(), vec![&b"live"[..]]);
        assert_eq!(q.max_results(), None);
        assert_eq!(q.comparisons().count(), 2);
    }

    #[test]
    fn lenient_forms_are_accepted() {
        let q = SearchQuery::parse(b" filename contains  \"x\"  max_results 5 freq AT BEST 44100 ")
            .unwrap();
        assert_eq!(q, {
            SearchQuery {
                clauses: vec![
                    SearchClause::Contains(b"x".to_vec()),
                    SearchClause::MaxResults(5),
                    SearchClause::Compare {
                        field: NumericField::Freq,
                        op: Comparison::AtBest,
                        value: 44100,
                        quoted: false,
                    },
                ],
            }
        });
    }

    #[test]
    fn malformed_searches_are_typed_errors() {
        for bad in [
            &b"FILENAME"[..],
            b"FILENAME MATCHES \"x\"",
            b"MAX_RESULTS",
            b"MAX_RESULTS many",
            b"BITRATE \"MORE THAN\" 3",
            b"BITRATE \"AT LEAST\"",
            b"FILENAME CONTAINS \"a \"quoted\" string\" MAX_RESULTS 100",
        ] {
            assert!(
                SearchQuery::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn unknown_clauses_are_skipped() {
        let q = SearchQuery::parse(
            b"DANCE FILENAME CONTAINS \"x\" COLOR \"deep red\" MAX_RESULTS 5 7 LOCAL_ONLY \"open",
        )
        .unwrap();
        assert_eq!(
            q.clauses,
            vec![
                SearchClause::Contains(b"x".to_vec()),
                SearchClause::MaxResults(5),
                SearchClause::LocalOnly,
            ]
        );
    }

    #[test]
    fn a_quote_inside_words_cannot_be_encoded() {
        let q = SearchQuery::simple(b"a\"b", 10);
        assert_eq!(
            q.encode_payload(&mut Vec::new()),
            Err(EncodeError::QuoteInField("search words"))
        );
    }
}
