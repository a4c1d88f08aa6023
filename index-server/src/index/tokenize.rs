//! Splitting shared file names and search phrases into index words, the way
//! opennap-ng does, so that clients see the matches they expect.
//!
//! A word is a run of ASCII alphanumerics, `'` and bytes above 127 (names
//! arrive in whatever 8-bit charset the client used); ASCII letters are
//! folded to lower case; everything else separates words. A shared name is
//! indexed by its last path component without its extension plus the name
//! of its parent directory (Napster clients send `\` paths; `/` is accepted
//! too).

/// True for bytes that belong to a word.
pub fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'\'' || b >= 0x80
}

/// Calls `f` with each word of `text`, lower-cased, in order (duplicates
/// included). `scratch` is reused to avoid allocating per word.
pub fn for_each_word(text: &[u8], scratch: &mut Vec<u8>, mut f: impl FnMut(&[u8])) {
    let mut i = 0;
    while i < text.len() {
        while i < text.len() && !text.get(i).copied().is_some_and(is_word_byte) {
            i += 1;
        }
        scratch.clear();
        while let Some(&b) = text.get(i) {
            if !is_word_byte(b) {
                break;
            }
            scratch.push(b.to_ascii_lowercase());
            i += 1;
        }
        if !scratch.is_empty() {
            f(scratch);
        }
    }
}

/// The parts of a shared path that are indexed: (parent directory name,
/// file name without extension).
pub fn indexed_parts(path: &[u8]) -> (&[u8], &[u8]) {
    let is_sep = |b: &u8| *b == b'\\' || *b == b'/';
    let (dir, file) = match path.iter().rposition(is_sep) {
        Some(at) => (
            path.get(..at).unwrap_or(&[]),
            path.get(at + 1..).unwrap_or(&[]),
        ),
        None => (&[][..], path),
    };
    let parent = match dir.iter().rposition(is_sep) {
        Some(at) => dir.get(at + 1..).unwrap_or(&[]),
        None => dir,
    };
    let stem = match file.iter().rposition(|&b| b == b'.') {
        Some(at) if at > 0 => file.get(..at).unwrap_or(&[]),
        _ => file,
    };
    (parent, stem)
}

/// A reusable list of distinct words (one flat buffer, no allocation per
/// word once warmed up).
#[derive(Debug, Default, Clone)]
pub struct WordList {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    scratch: Vec<u8>,
}

impl WordList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The words, in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(move |(start, end)| self.bytes.get(start..end).unwrap_or(&[]))
    }

    fn contains(&self, word: &[u8]) -> bool {
        self.iter().any(|seen| seen == word)
    }

    fn push_distinct(bytes: &mut Vec<u8>, ends: &mut Vec<usize>, word: &[u8]) {
        let mut start = 0;
        for &end in ends.iter() {
            if bytes.get(start..end) == Some(word) {
                return;
            }
            start = end;
        }
        bytes.extend_from_slice(word);
        ends.push(bytes.len());
    }

    /// Adds the distinct words of free text (a search phrase).
    pub fn add_text(&mut self, text: &[u8]) {
        let (bytes, ends) = (&mut self.bytes, &mut self.ends);
        for_each_word(text, &mut self.scratch, |w| {
            Self::push_distinct(bytes, ends, w)
        });
    }

    /// Adds the distinct words a shared path is indexed under.
    pub fn add_path(&mut self, path: &[u8]) {
        let (parent, stem) = indexed_parts(path);
        self.add_text(stem);
        self.add_text(parent);
    }

    /// True if `word` is in the list.
    pub fn has(&self, word: &[u8]) -> bool {
        self.contains(word)
    }
}

/// The distinct words under which a shared path is indexed, in order of
/// first appearance.
pub fn path_words(path: &[u8]) -> Vec<Vec<u8>> {
    let mut list = WordList::new();
    list.add_path(path);
    list.iter().map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(path: &[u8]) -> Vec<String> {
        path_words(path)
            .into_iter()
            .map(|w| String::from_utf8_lossy(&w).into_owned())
            .collect()
    }

    #[test]
    fn backslash_path_gives_stem_and_parent_words() {
        assert_eq!(
            words(b"C:\\mp3\\Sneaker Pimps\\06 - Tesko Suicide.MP3"),
            ["06", "tesko", "suicide", "sneaker", "pimps"]
        );
    }

    #[test]
    fn slashes_apostrophes_and_high_bytes() {
        assert_eq!(
            words(b"/home/u/Guns N' Roses/Don't Cry.ogg"),
            ["don't", "cry", "guns", "n'", "roses"]
        );
        assert_eq!(
            path_words(b"Bj\xf6rk_Joga.mp3"),
            vec![b"bj\xf6rk".to_vec(), b"joga".to_vec()]
        );
    }

    #[test]
    fn duplicates_collapse_and_grandparents_are_ignored() {
        assert_eq!(words(b"a\\b\\c\\song song.mp3"), ["song", "c"]);
        assert_eq!(words(b".hidden"), ["hidden"]);
        assert_eq!(words(b"no extension"), ["no", "extension"]);
        assert!(words(b"").is_empty());
        assert!(words(b"\\\\..").is_empty());
    }
}
