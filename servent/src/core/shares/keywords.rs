//! Keywords of file names and queries, and the inverted index from keyword to files.
//!
//! A keyword is a maximal run of Unicode alphanumeric characters (combining marks stay inside the
//! word), folded for matching:
//! - case: Unicode's full lower-case mapping plus the folds of ß, final sigma and long s, so
//!   "Ünïcode" and "ÜNÏCODE" give the same keyword, and "STRASSE" the same as "Straße";
//! - diacritics: combining marks are dropped and precomposed Latin, Greek and Cyrillic letters
//!   become their base letter (a table generated from the Unicode data), so "Beyoncé",
//!   "BEYONCE" and a decomposed "Beyonce\u{301}" (as macOS writes names) all give "beyonce".
//!   Letters that have no decomposition (ø, ł, đ) stay as they are, and kana keep their voicing
//!   marks.
//!
//! Matching rule: a query keyword matches a file when it is a prefix of one of the file name's
//! keywords ("beat" finds "Beatles.mp3", "eatles" does not). Prefix matching is what lets the index
//! answer from a sorted vocabulary instead of scanning every name, while still letting a user type
//! the start of a word, as Gnutella users expect.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::fold_table::BASE_LETTERS;

/// True for characters that belong inside a keyword.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// The common blocks of combining marks (the standard library has no general-category lookup).
fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// Appends the folded form of an already lower-cased character (see the module doc). Lower-casing
/// is not quite case folding: ß, final sigma and long s are the differences that matter for names
/// (Unicode CaseFolding.txt, full foldings).
fn fold_into(lower: char, out: &mut String) {
    match lower {
        'ß' => out.push_str("ss"),
        'ς' => out.push('σ'),
        'ſ' => out.push('s'),
        c if c.is_ascii() => out.push(c),
        c if is_combining_mark(c) => {}
        c => out.push(base_letter(c)),
    }
}

/// The letter without its diacritics, for the scripts in the fold table.
fn base_letter(c: char) -> char {
    match BASE_LETTERS.binary_search_by_key(&c, |&(precomposed, _)| precomposed) {
        Ok(at) => BASE_LETTERS.get(at).map_or(c, |&(_, base)| base),
        Err(_) => c,
    }
}

/// Splits `text` into folded keywords, in order, duplicates kept.
pub fn keywords(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if is_word_char(c) {
            for lower in c.to_lowercase() {
                fold_into(lower, &mut current);
            }
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Keywords of `text`, sorted and without duplicates.
pub fn keyword_set(text: &str) -> Vec<String> {
    let mut words = keywords(text);
    words.sort_unstable();
    words.dedup();
    words
}

/// Inverted index: keyword → sorted positions (into the library's file table) of the files whose
/// name contains that keyword. The vocabulary is a sorted vector so that every keyword starting
/// with a given prefix is one contiguous run, found by binary search.
#[derive(Debug, Default, Clone)]
pub struct KeywordIndex {
    postings: Vec<(String, Vec<u32>)>,
}

impl KeywordIndex {
    /// Builds the index from each file's keyword set; `names[i]` is the set of file position `i`.
    pub fn build<'a>(names: impl IntoIterator<Item = &'a [String]>) -> Self {
        // A hash map while collecting (cheap lookups), sorted once at the end.
        let mut collecting: HashMap<&'a str, Vec<u32>> = HashMap::new();
        for (position, words) in names.into_iter().enumerate() {
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            for word in words {
                collecting.entry(word.as_str()).or_default().push(position);
            }
        }
        // Positions were pushed in increasing order, so every list is already sorted.
        let mut postings: Vec<(String, Vec<u32>)> = collecting
            .into_iter()
            .map(|(word, list)| (word.to_owned(), list))
            .collect();
        postings.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        KeywordIndex { postings }
    }

    /// Number of distinct keywords.
    pub fn vocabulary_len(&self) -> usize {
        self.postings.len()
    }

    /// The posting lists of every keyword that starts with `prefix`.
    fn lists_with_prefix<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'s Vec<u32>> + 's {
        let start = self
            .postings
            .partition_point(|(word, _)| word.as_str() < prefix);
        self.postings
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(move |(word, _)| word.starts_with(prefix))
            .map(|(_, list)| list)
    }

    /// How many (keyword, file) pairs a prefix covers: a cheap upper bound on its matches, used to
    /// start from the most selective keyword.
    fn prefix_weight(&self, prefix: &str) -> usize {
        self.lists_with_prefix(prefix).map(Vec::len).sum()
    }

    /// Positions of the files matched by every keyword of `query` (AND), sorted, at most `limit`.
    /// `file_words(position)` returns a file's sorted keyword set, used to check the remaining
    /// keywords on the candidates of the most selective one.
    pub fn search<'w>(
        &self,
        query: &[String],
        limit: usize,
        file_words: impl Fn(u32) -> &'w [String],
    ) -> Vec<u32> {
        if query.is_empty() || limit == 0 {
            return Vec::new();
        }
        let mut order: Vec<(usize, &str)> = query
            .iter()
            .map(|k| (self.prefix_weight(k), k.as_str()))
            .collect();
        order.sort_unstable();
        let Some(&(weight, first)) = order.first() else {
            return Vec::new();
        };
        if weight == 0 {
            return Vec::new();
        }
        // The candidates of the most selective keyword, in position order, from the sorted
        // posting lists of every word it prefixes.
        let lists: Vec<&[u32]> = self.lists_with_prefix(first).map(Vec::as_slice).collect();
        let rest = order.get(1..).unwrap_or(&[]);
        let matches_rest = |position: u32| {
            let words = file_words(position);
            rest.iter()
                .all(|&(_, keyword)| has_word_with_prefix(words, keyword))
        };
        if let [only] = lists.as_slice() {
            // One word has the prefix: its list is already in order.
            return only
                .iter()
                .copied()
                .filter(|&p| matches_rest(p))
                .take(limit)
                .collect();
        }
        if limit >= weight || !rest.is_empty() {
            // Every candidate may have to be looked at (all wanted, or other keywords may reject
            // most of them): gathering and sorting beats the heap.
            let mut candidates: Vec<u32> = Vec::with_capacity(weight);
            for list in &lists {
                candidates.extend_from_slice(list);
            }
            candidates.sort_unstable();
            candidates.dedup();
            candidates.retain(|&p| matches_rest(p));
            candidates.truncate(limit);
            return candidates;
        }
        // One keyword covering many words, and a limit: every candidate matches, so a merge in
        // position order can stop after `limit` files.
        let mut heads: BinaryHeap<Reverse<(u32, usize)>> = lists
            .iter()
            .enumerate()
            .filter_map(|(list, positions)| positions.first().map(|&p| Reverse((p, list))))
            .collect();
        let mut offsets: Vec<usize> = vec![0; lists.len()];
        let mut out = Vec::new();
        let mut last: Option<u32> = None;
        while let Some(Reverse((position, list))) = heads.pop() {
            if let (Some(offset), Some(positions)) = (offsets.get_mut(list), lists.get(list)) {
                *offset += 1;
                if let Some(&next) = positions.get(*offset) {
                    heads.push(Reverse((next, list)));
                }
            }
            // A file can contain several words with the prefix: list it once.
            if last == Some(position) {
                continue;
            }
            last = Some(position);
            if matches_rest(position) {
                out.push(position);
                if out.len() >= limit {
                    break;
                }
            }
        }
        out
    }
}

/// True when some word of the sorted set `words` starts with `prefix`.
pub fn has_word_with_prefix(words: &[String], prefix: &str) -> bool {
    let start = words.partition_point(|w| w.as_str() < prefix);
    words.get(start).is_some_and(|w| w.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_non_alphanumerics_and_lowercases() {
        assert_eq!(
            keywords("The_Beatles - Let.It.Be (1970).mp3"),
            vec!["the", "beatles", "let", "it", "be", "1970", "mp3"]
        );
        assert!(keywords("  --__..  ").is_empty());
    }

    #[test]
    fn unicode_case_folding() {
        assert_eq!(keywords("Ünïcode"), keywords("ÜNÏCODE"));
        assert_eq!(keywords("ÜNÏCODE"), vec!["unicode"]);
        assert_eq!(keywords("ΣΟΦΙΑ_Straße"), vec!["σοφια", "strasse"]);
        assert_eq!(keywords("STRASSE"), keywords("straße"));
        assert_eq!(keywords("STRAẞE"), keywords("straße"));
        assert_eq!(keywords("σοφίας"), keywords("ΣΟΦΊΑΣ"));
        assert_eq!(keywords("日本語の歌"), vec!["日本語の歌"]);
    }

    #[test]
    fn combining_marks_stay_inside_words() {
        // "U" + COMBINING DIAERESIS, decomposed: one word, the same as the precomposed form.
        assert_eq!(keywords("U\u{308}nicode song"), vec!["unicode", "song"]);
        assert_eq!(keywords("U\u{308}nicode"), keywords("Ünicode"));
    }

    #[test]
    fn diacritics_are_folded_for_the_common_scripts() {
        assert_eq!(keywords("Beyoncé"), vec!["beyonce"]);
        assert_eq!(keywords("BEYONCÉ"), keywords("beyonce"));
        assert_eq!(keywords("Beyonce\u{301}"), keywords("beyonce"));
        assert_eq!(keywords("Ἀθῆναι Ёлка Łódź"), vec!["αθηναι", "елка", "łodz"]);
        // İ lower-cases to i + COMBINING DOT ABOVE: the mark goes.
        assert_eq!(keywords("İstanbul"), vec!["istanbul"]);
        // Kana keep their voicing mark; letters without decomposition stay.
        assert_ne!(keywords("が"), keywords("か"));
        assert_eq!(keywords("Øre"), vec!["øre"]);
        // The table is sorted (binary search) and maps only to letters.
        assert!(BASE_LETTERS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(BASE_LETTERS.iter().all(|&(_, base)| base.is_alphabetic()));
    }

    #[test]
    fn keyword_set_is_sorted_and_unique() {
        assert_eq!(keyword_set("b a B a"), vec!["a", "b"]);
    }

    #[test]
    fn prefix_lookup_in_sorted_words() {
        let words = keyword_set("beatles help");
        assert!(has_word_with_prefix(&words, "beat"));
        assert!(has_word_with_prefix(&words, "help"));
        assert!(!has_word_with_prefix(&words, "eatles"));
        assert!(!has_word_with_prefix(&words, "helpless"));
    }

    #[test]
    fn index_search_is_and_of_prefixes() {
        let names: Vec<Vec<String>> = ["beatles help", "beatles yesterday", "stones help"]
            .iter()
            .map(|n| keyword_set(n))
            .collect();
        let index = KeywordIndex::build(names.iter().map(Vec::as_slice));
        let words = |p: u32| names[p as usize].as_slice();
        let q = |text: &str| index.search(&keywords(text), usize::MAX, words);
        assert_eq!(q("help"), vec![0, 2]);
        assert_eq!(q("beat help"), vec![0]);
        assert_eq!(q("HELP Stones"), vec![2]);
        assert_eq!(q("help yesterday"), Vec::<u32>::new());
        assert_eq!(q("nothing"), Vec::<u32>::new());
        assert_eq!(q(""), Vec::<u32>::new());
        assert_eq!(index.search(&keywords("help"), 1, words), vec![0]);
    }

    #[test]
    fn every_search_strategy_gives_positions_in_order() {
        // "beat" prefixes three words: limited searches merge their lists, unlimited ones sort.
        let names: Vec<Vec<String>> = [
            "beatnik one",
            "beat two",
            "beatles three",
            "beat beatles four",
            "other",
            "beatnik two",
        ]
        .iter()
        .map(|n| keyword_set(n))
        .collect();
        let index = KeywordIndex::build(names.iter().map(Vec::as_slice));
        let words = |p: u32| names[p as usize].as_slice();
        let q = |text: &str, limit: usize| index.search(&keywords(text), limit, words);
        assert_eq!(q("beat", usize::MAX), vec![0, 1, 2, 3, 5]);
        assert_eq!(q("beat", 2), vec![0, 1]);
        assert_eq!(q("beat", 4), vec![0, 1, 2, 3]);
        assert_eq!(q("beat two", 1), vec![1]);
        assert_eq!(q("beat two", usize::MAX), vec![1, 5]);
        assert_eq!(q("beatles", 1), vec![2]);
        assert_eq!(q("beatles", usize::MAX), vec![2, 3]);
    }
}
