//! The search request (200): its query grammar and opennap's tokenization.
//!
//! `[FILENAME CONTAINS "w"] MAX_RESULTS n [FILENAME EXCLUDES "w"]
//! [LINESPEED|BITRATE|FREQ|SIZE|DURATION "AT LEAST"|"AT BEST"|"EQUAL TO" n]
//! [WMA-FILE] [LOCAL_ONLY] [TYPE t]`, in any order.

use hazel_protocol::DecodeError;

use crate::session::SharedFile;
use crate::wire::Fields;

/// A numeric comparison in a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    AtLeast,
    AtBest,
    EqualTo,
}

impl Compare {
    pub fn holds(self, value: u64, bound: u64) -> bool {
        match self {
            Compare::AtLeast => value >= bound,
            Compare::AtBest => value <= bound,
            Compare::EqualTo => value == bound,
        }
    }
}

/// Which attribute a numeric filter looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    /// The sharer's link speed (0–10), not the file's.
    LineSpeed,
    Bitrate,
    Frequency,
    Size,
    Duration,
}

/// One `ATTRIBUTE <compare> n` clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub attribute: Attribute,
    pub compare: Compare,
    pub bound: u64,
}

impl Filter {
    /// Whether a file shared by a user on `link_speed` passes this filter.
    pub fn accepts(&self, file: &SharedFile, link_speed: u32) -> bool {
        let value = match self.attribute {
            Attribute::LineSpeed => u64::from(link_speed),
            Attribute::Bitrate => u64::from(file.bitrate),
            Attribute::Frequency => u64::from(file.frequency),
            Attribute::Size => file.size,
            Attribute::Duration => u64::from(file.duration),
        };
        self.compare.holds(value, self.bound)
    }
}

/// A parsed search request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Words every result must contain (lower-cased tokens).
    pub include: Vec<Vec<u8>>,
    /// Words no result may contain.
    pub exclude: Vec<Vec<u8>>,
    /// The client's MAX_RESULTS, if it gave one.
    pub max_results: Option<usize>,
    pub filters: Vec<Filter>,
}

fn keyword(field: &[u8], word: &str) -> bool {
    field.eq_ignore_ascii_case(word.as_bytes())
}

fn parse_compare(field: &[u8]) -> Result<Compare, DecodeError> {
    if keyword(field, "AT LEAST") {
        Ok(Compare::AtLeast)
    } else if keyword(field, "AT BEST") {
        Ok(Compare::AtBest)
    } else if keyword(field, "EQUAL TO") {
        Ok(Compare::EqualTo)
    } else {
        Err(DecodeError::BadField("search comparison"))
    }
}

impl Query {
    /// Parses a 200 payload.
    pub fn parse(payload: &[u8]) -> Result<Query, DecodeError> {
        let mut q = Query::default();
        let mut fields = Fields::new(payload);
        while let Some(field) = fields.next_field()? {
            if keyword(field, "FILENAME") {
                let how = fields.field("FILENAME CONTAINS|EXCLUDES")?;
                let words = tokenize(fields.field("search words")?);
                if keyword(how, "CONTAINS") {
                    q.include.extend(words);
                } else if keyword(how, "EXCLUDES") {
                    q.exclude.extend(words);
                } else {
                    return Err(DecodeError::BadField("FILENAME CONTAINS|EXCLUDES"));
                }
            } else if keyword(field, "MAX_RESULTS") {
                q.max_results = Some(fields.number("MAX_RESULTS")?);
            } else if keyword(field, "WMA-FILE") || keyword(field, "LOCAL_ONLY") {
                // Only one server and no WMA distinction: nothing to do.
            } else if keyword(field, "TYPE") {
                fields.field("TYPE")?;
            } else {
                let attribute = if keyword(field, "LINESPEED") {
                    Attribute::LineSpeed
                } else if keyword(field, "BITRATE") {
                    Attribute::Bitrate
                } else if keyword(field, "FREQ") {
                    Attribute::Frequency
                } else if keyword(field, "SIZE") {
                    Attribute::Size
                } else if keyword(field, "DURATION") {
                    Attribute::Duration
                } else {
                    return Err(DecodeError::BadField("search keyword"));
                };
                let compare = parse_compare(fields.field("search comparison")?)?;
                let bound = fields.number("search bound")?;
                q.filters.push(Filter {
                    attribute,
                    compare,
                    bound,
                });
            }
        }
        q.include.sort();
        q.include.dedup();
        Ok(q)
    }

    /// Whether a file matches, given its words (see [`file_words`]).
    pub fn matches(&self, words: &[Vec<u8>], file: &SharedFile, link_speed: u32) -> bool {
        self.include.iter().all(|w| words.contains(w))
            && !self.exclude.iter().any(|w| words.contains(w))
            && self.filters.iter().all(|f| f.accepts(file, link_speed))
    }
}

/// opennap's word rule: runs of ASCII alphanumerics, `'` and bytes > 127,
/// ASCII letters folded to lower case.
pub fn tokenize(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|&b| !(b.is_ascii_alphanumeric() || b == b'\'' || b > 127))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect()
}

/// The searchable words of a shared path: the file name without its
/// extension, plus the name of its parent directory.
pub fn file_words(path: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = path.rsplit(|&b| b == b'\\' || b == b'/');
    let base = parts.next().unwrap_or_default();
    let parent = parts.next().unwrap_or_default();
    let stem = match base.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => &base[..dot],
        _ => base,
    };
    let mut words = tokenize(stem);
    words.extend(tokenize(parent));
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bitrate: u32) -> SharedFile {
        SharedFile {
            name: name.as_bytes().to_vec(),
            md5: b"x".to_vec(),
            size: 1000,
            bitrate,
            frequency: 44100,
            duration: 60,
        }
    }

    #[test]
    fn parses_the_spec_examples() {
        let q = Query::parse(
            b"FILENAME CONTAINS \"Sneaker Pimps\" MAX_RESULTS 75 FILENAME CONTAINS \"tesko suicide\" BITRATE \"AT LEAST\" \"128\"",
        )
        .unwrap();
        assert_eq!(q.include.len(), 4);
        assert!(q.include.contains(&b"sneaker".to_vec()));
        assert_eq!(q.max_results, Some(75));
        assert_eq!(
            q.filters,
            vec![Filter {
                attribute: Attribute::Bitrate,
                compare: Compare::AtLeast,
                bound: 128
            }]
        );
        let q = Query::parse(
            b"MAX_RESULTS 100 FILENAME CONTAINS \"Ventolin\" LINESPEED \"EQUAL TO\" 10",
        )
        .unwrap();
        assert_eq!(q.include, vec![b"ventolin".to_vec()]);
        assert_eq!(q.filters[0].attribute, Attribute::LineSpeed);
    }

    #[test]
    fn rejects_what_opennap_rejects() {
        assert!(
            Query::parse(b"FILENAME CONTAINS \"a \"quoted\" string\" MAX_RESULTS 100").is_err()
        );
        assert!(Query::parse(b"BITRATE \"MORE THAN\" 3").is_err());
        assert!(Query::parse(b"MAX_RESULTS lots").is_err());
        assert!(Query::parse(b"COLOUR \"blue\"").is_err());
    }

    #[test]
    fn words_come_from_name_and_parent_without_extension() {
        let w = file_words(b"C:\\Music\\Daft Punk\\One More Time.mp3");
        assert_eq!(
            w,
            vec![
                b"one".to_vec(),
                b"more".to_vec(),
                b"time".to_vec(),
                b"daft".to_vec(),
                b"punk".to_vec()
            ]
        );
        assert!(!w.contains(&b"mp3".to_vec()));
        assert!(!w.contains(&b"music".to_vec()), "only the parent directory");
        assert_eq!(
            tokenize(b"don't stop\xe9t\xe9"),
            vec![b"don't".to_vec(), b"stop\xe9t\xe9".to_vec()]
        );
    }

    #[test]
    fn matching_ands_words_and_applies_filters() {
        let q = Query::parse(
            b"FILENAME CONTAINS \"time more\" FILENAME EXCLUDES \"live\" BITRATE \"AT LEAST\" 128",
        )
        .unwrap();
        let f = file("Daft Punk\\One More Time.mp3", 192);
        assert!(q.matches(&file_words(&f.name), &f, 3));
        let live = file("Daft Punk\\One More Time live.mp3", 192);
        assert!(!q.matches(&file_words(&live.name), &live, 3));
        let low = file("Daft Punk\\One More Time.mp3", 96);
        assert!(!q.matches(&file_words(&low.name), &low, 3));
        let partial = file("Daft Punk\\Timeless.mp3", 192);
        assert!(
            !q.matches(&file_words(&partial.name), &partial, 3),
            "whole words only"
        );
    }
}
