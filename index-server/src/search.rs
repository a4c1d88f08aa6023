//! Searching: a decoded 200 request turned into words and filters, and
//! opennap's tokenization of both requests and shared names.

use hazel_protocol::napster::{Comparison, NumericField, SearchQuery, SharedFile};

/// One numeric clause: `attribute <comparison> bound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub attribute: NumericField,
    pub compare: Comparison,
    pub bound: u64,
}

impl Filter {
    /// Whether a file shared by a user on `link_speed` passes this filter
    /// (LINESPEED is the sharer's link type, not the file's).
    pub fn accepts(&self, file: &SharedFile, link_speed: u32) -> bool {
        let value = match self.attribute {
            NumericField::LineSpeed => u64::from(link_speed),
            NumericField::Bitrate => u64::from(file.bitrate),
            NumericField::Freq => u64::from(file.freq),
            NumericField::Size => file.size,
            NumericField::Duration => u64::from(file.duration),
        };
        self.compare.accepts(value, self.bound)
    }
}

/// A search request reduced to what matching needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Words every result must contain (lower-cased tokens, deduplicated).
    pub include: Vec<Vec<u8>>,
    /// Words no result may contain.
    pub exclude: Vec<Vec<u8>>,
    /// The client's MAX_RESULTS, if it gave one.
    pub max_results: Option<usize>,
    pub filters: Vec<Filter>,
}

impl Query {
    /// Tokenizes a decoded 200 request the way shared names are tokenized.
    pub fn from_request(request: &SearchQuery) -> Query {
        let mut include: Vec<Vec<u8>> = request.contains().flat_map(tokenize).collect();
        include.sort();
        include.dedup();
        Query {
            include,
            exclude: request.excludes().flat_map(tokenize).collect(),
            max_results: request.max_results().map(|n| n as usize),
            filters: request
                .comparisons()
                .map(|(attribute, compare, bound)| Filter {
                    attribute,
                    compare,
                    bound,
                })
                .collect(),
        }
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
            freq: 44100,
            duration: 60,
        }
    }

    fn query(payload: &[u8]) -> Query {
        Query::from_request(&SearchQuery::parse(payload).unwrap())
    }

    #[test]
    fn spec_example_becomes_words_and_filters() {
        let q = query(
            b"FILENAME CONTAINS \"Sneaker Pimps\" MAX_RESULTS 75 FILENAME CONTAINS \"tesko suicide\" BITRATE \"AT LEAST\" \"128\"",
        );
        assert_eq!(q.include.len(), 4);
        assert!(q.include.contains(&b"sneaker".to_vec()));
        assert_eq!(q.max_results, Some(75));
        assert_eq!(
            q.filters,
            vec![Filter {
                attribute: NumericField::Bitrate,
                compare: Comparison::AtLeast,
                bound: 128
            }]
        );
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
        assert_eq!(
            tokenize(b"don't stop\xe9t\xe9"),
            vec![b"don't".to_vec(), b"stop\xe9t\xe9".to_vec()]
        );
    }

    #[test]
    fn matching_ands_words_and_applies_filters() {
        let q = query(
            b"FILENAME CONTAINS \"time more\" FILENAME EXCLUDES \"live\" BITRATE \"AT LEAST\" 128",
        );
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
