//! The shared library's pure part: file entries, the keyword index, SHA-1 lookup, QueryHit
//! building and the upload state machine. No IO here: `crate::scanner` scans and hashes on its own
//! thread and publishes each result as a new immutable `Arc<Library>`.
//!
//! # API
//! - [`SharedFile`]: one shared file (`index` stable while the file is unchanged, `name`, relative
//!   and absolute path, `size`, `mtime`, `sha1` and `tiger` root once hashed).
//! - [`Library::new`] builds the indexes from files; [`Library::with_hashes`] (and
//!   [`Library::with_sha1s`]) is a cheap copy with new digests (hashing progress; the keyword
//!   index is shared); [`Library::with_thex_dir`] says where the files' THEX trees are stored and
//!   [`Library::tree_file`] finds one.
//! - [`Library::search`] / [`Library::search_limited`] answer a [`SearchCriteria`] (search text +
//!   `urn:sha1` values); [`Library::totals`] gives `(files, kbytes)` for Pongs; [`Library::get`]
//!   finds a file by index, [`Library::by_sha1`] by digest, [`Library::files`] lists them all.
//! - [`query_hits::build_query_hits`] encodes matches into QueryHit descriptors of at most
//!   16 KiB each, with HUGE urns, the `HZEL` trailer and correct open-data flags;
//!   [`Library::answer_query`] does search + build for a received Query, and
//!   [`SearchCriteria::from_query`] is what a Query is reduced to (search text + HUGE sha1 urns).
//! - [`upload`]: a sans-IO HTTP upload state machine (`GET`/`HEAD` of `/get/<index>/<name>` and
//!   `/uri-res/N2R?urn:sha1:…`): request bytes in, response head + file span out; its
//!   [`upload::UploadSlots`] also give the QueryHit busy / have-uploaded flags.
//! - [`mesh`]: other servents known to have a shared file, learned from downloaders and from our
//!   own verified downloads, named in upload replies (`X-Alt`).
//!
//! # Matching
//! A query matches a file when every keyword of its search text is a prefix of a keyword of the
//! file name (see [`keywords`] for the tokenization), or when one of its `urn:sha1` equals the
//! file's SHA-1. A search text without keywords matches nothing by text (it never lists the
//! whole library).

mod fold_table;
pub mod keywords;
pub mod mesh;
pub mod query_hits;
pub mod upload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use keywords::{keyword_set, keywords as split_keywords, KeywordIndex};

/// One file of the shared set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// The index announced in QueryHits and requested in `/get/<index>/…`. Stable across rescans
    /// while the file's path, size and mtime stay the same; a changed file gets a new index.
    pub index: u32,
    /// The file name (last path component; lossily converted to UTF-8 if needed).
    pub name: String,
    /// The path relative to its share root (for display).
    pub rel_path: PathBuf,
    /// The absolute path, the only thing an upload ever opens.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time as seen by the scan.
    pub mtime: SystemTime,
    /// SHA-1 of the content, once hashed.
    pub sha1: Option<[u8; 20]>,
    /// Tiger tree root of the content, once hashed and its tree stored: hits then carry
    /// `urn:bitprint:`, file replies `X-Thex-URI`, and `/uri-res/N2X` serves the tree.
    pub tiger: Option<[u8; 24]>,
}

/// What a query asks for, reduced to what the library matches on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchCriteria {
    /// The search text (keywords are extracted from it).
    pub text: String,
    /// SHA-1 digests from the query's HUGE `urn:sha1:` extensions.
    pub sha1_urns: Vec<[u8; 20]>,
}

impl SearchCriteria {
    /// Criteria for a plain keyword search.
    pub fn text(text: &str) -> Self {
        SearchCriteria {
            text: text.to_owned(),
            sha1_urns: Vec::new(),
        }
    }
}

/// The keyword side of a library: it depends only on the names, so libraries that differ only in
/// SHA-1s (every publish while hashing) share it.
#[derive(Debug, Default)]
struct NameIndex {
    /// Sorted keyword set of each file, parallel to `Library::files`.
    file_words: Vec<Vec<String>>,
    index: KeywordIndex,
}

/// The shared set at one moment: immutable once built, shared with the reactor as `Arc<Library>`.
#[derive(Debug, Default, Clone)]
pub struct Library {
    /// Files sorted by index. Each behind an `Arc` so that a library differing only in a few
    /// digests shares every other entry with its predecessor.
    files: Vec<Arc<SharedFile>>,
    names: Arc<NameIndex>,
    by_sha1: HashMap<[u8; 20], u32>,
    total_bytes: u64,
    /// Where the THEX trees of files with a `tiger` root are stored (see [`Library::tree_file`]).
    thex_dir: Option<Arc<PathBuf>>,
}

/// The stored THEX message of a file: what `/uri-res/N2X` sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: PathBuf,
    /// Its exact length: the message of the tree kept for this file size (the scanner stores
    /// nothing else under that name).
    pub len: u64,
}

/// `(index, sha1, tiger root)` of a file just hashed, for [`Library::with_hashes`].
pub type FileHashes = (u32, [u8; 20], Option<[u8; 24]>);

/// The file name of a stored tree: the content's SHA-1 in base32, `.dime`.
pub fn tree_file_name(sha1: &[u8; 20]) -> String {
    format!("{}.dime", data_encoding::BASE32.encode(sha1))
}

/// Digest → position of the first file with it.
fn sha1_table(files: &[Arc<SharedFile>]) -> HashMap<[u8; 20], u32> {
    let mut by_sha1 = HashMap::with_capacity(files.len());
    for (position, file) in files.iter().enumerate() {
        if let (Some(digest), Ok(position)) = (file.sha1, u32::try_from(position)) {
            by_sha1.entry(digest).or_insert(position);
        }
    }
    by_sha1
}

impl Library {
    /// An empty library (nothing shared).
    pub fn empty() -> Self {
        Library::default()
    }

    /// Builds the library and its indexes. Files with a duplicate index keep the first one.
    pub fn new(mut files: Vec<SharedFile>) -> Self {
        files.sort_by_key(|f| f.index);
        files.dedup_by_key(|f| f.index);
        let file_words: Vec<Vec<String>> = files.iter().map(|f| keyword_set(&f.name)).collect();
        let index = KeywordIndex::build(file_words.iter().map(Vec::as_slice));
        let total_bytes = files.iter().map(|f| f.size).fold(0u64, u64::saturating_add);
        let files: Vec<Arc<SharedFile>> = files.into_iter().map(Arc::new).collect();
        Library {
            by_sha1: sha1_table(&files),
            files,
            names: Arc::new(NameIndex { file_words, index }),
            total_bytes,
            thex_dir: None,
        }
    }

    /// The same library, its files' trees stored in `dir` (as `<SHA-1 base32>.dime`).
    pub fn with_thex_dir(mut self, dir: PathBuf) -> Library {
        self.thex_dir = Some(Arc::new(dir));
        self
    }

    /// The stored THEX tree of `file`: known once the file has a SHA-1 and a Tiger root and the
    /// library a tree directory.
    pub fn tree_file(&self, file: &SharedFile) -> Option<TreeFile> {
        let dir = self.thex_dir.as_ref()?;
        let sha1 = file.sha1.as_ref()?;
        file.tiger?;
        let depth = hazel_protocol::thex::kept_depth(file.size);
        Some(TreeFile {
            path: dir.join(tree_file_name(sha1)),
            len: hazel_protocol::thex::dime::message_len(file.size, depth)?,
        })
    }

    /// A copy with the SHA-1 of some files set (`(index, digest)`; unknown indexes ignored), and
    /// their Tiger roots cleared. The keyword index is shared, not rebuilt: this is how hashing
    /// progress is published cheaply.
    pub fn with_sha1s(&self, digests: &[(u32, [u8; 20])]) -> Library {
        let hashes: Vec<FileHashes> = digests.iter().map(|&(i, d)| (i, d, None)).collect();
        self.with_hashes(&hashes)
    }

    /// A copy with the SHA-1 and Tiger root of some files set (`(index, sha1, tiger)`; unknown
    /// indexes ignored), sharing the keyword index like [`Library::with_sha1s`].
    pub fn with_hashes(&self, digests: &[FileHashes]) -> Library {
        let mut files = self.files.clone();
        let mut by_sha1 = self.by_sha1.clone();
        // Digests replaced on a file that the table pointed at: another file may still have them
        // (rare: only a changed digest). Found again in one pass at the end.
        let mut lost: Vec<[u8; 20]> = Vec::new();
        for (index, digest, tiger) in digests {
            let Ok(position) = files.binary_search_by_key(index, |f| f.index) else {
                continue;
            };
            let (Some(file), Ok(position_key)) = (files.get_mut(position), u32::try_from(position))
            else {
                continue;
            };
            if file.sha1 == Some(*digest) {
                if file.tiger != *tiger {
                    Arc::make_mut(file).tiger = *tiger;
                }
                continue;
            }
            let replaced = file.sha1;
            let file = Arc::make_mut(file);
            file.sha1 = Some(*digest);
            file.tiger = *tiger;
            by_sha1.entry(*digest).or_insert(position_key);
            if let Some(old) = replaced {
                if by_sha1.get(&old) == Some(&position_key) {
                    by_sha1.remove(&old);
                    lost.push(old);
                }
            }
        }
        if !lost.is_empty() {
            let lost: std::collections::HashSet<[u8; 20]> = lost.into_iter().collect();
            for (position, file) in files.iter().enumerate() {
                if let (Some(digest), Ok(position)) = (file.sha1, u32::try_from(position)) {
                    if lost.contains(&digest) {
                        by_sha1.entry(digest).or_insert(position);
                    }
                }
            }
        }
        Library {
            by_sha1,
            files,
            names: Arc::clone(&self.names),
            total_bytes: self.total_bytes,
            thex_dir: self.thex_dir.clone(),
        }
    }

    /// Every file, sorted by index.
    pub fn files(&self) -> &[Arc<SharedFile>] {
        &self.files
    }

    /// Number of shared files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when nothing is shared.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Files whose SHA-1 is not known yet.
    pub fn pending_hashes(&self) -> usize {
        self.files.iter().filter(|f| f.sha1.is_none()).count()
    }

    /// Total size of all shared files in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// `(files, kbytes)` as a Pong reports them (saturating at `u32::MAX`; kilobytes rounded up).
    pub fn totals(&self) -> (u32, u32) {
        let files = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        let kbytes = u32::try_from(self.total_bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        (files, kbytes)
    }

    /// The file with this index.
    pub fn get(&self, index: u32) -> Option<&SharedFile> {
        let position = self.files.binary_search_by_key(&index, |f| f.index).ok()?;
        self.files.get(position).map(|f| &**f)
    }

    /// The file with this SHA-1.
    pub fn by_sha1(&self, digest: &[u8; 20]) -> Option<&SharedFile> {
        let position = *self.by_sha1.get(digest)?;
        self.files
            .get(usize::try_from(position).ok()?)
            .map(|f| &**f)
    }

    /// Number of distinct keywords in the index.
    pub fn vocabulary_len(&self) -> usize {
        self.names.index.vocabulary_len()
    }

    /// Every file matching `criteria` (see the module doc), urn matches first, then keyword matches
    /// in index order; no file twice.
    pub fn search(&self, criteria: &SearchCriteria) -> Vec<&SharedFile> {
        self.search_limited(criteria, usize::MAX)
    }

    /// Like [`Library::search`], stopping after `limit` files.
    pub fn search_limited(&self, criteria: &SearchCriteria, limit: usize) -> Vec<&SharedFile> {
        let mut out: Vec<&SharedFile> = Vec::new();
        for digest in &criteria.sha1_urns {
            if out.len() >= limit {
                return out;
            }
            if let Some(file) = self.by_sha1(digest) {
                if !out.iter().any(|f| f.index == file.index) {
                    out.push(file);
                }
            }
        }
        let remaining = limit.saturating_sub(out.len());
        if remaining == 0 {
            return out;
        }
        let mut query = split_keywords(&criteria.text);
        query.sort_unstable();
        query.dedup();
        let urn_hits = out.len();
        let positions = self.names.index.search(&query, remaining + urn_hits, |p| {
            usize::try_from(p)
                .ok()
                .and_then(|p| self.names.file_words.get(p))
                .map_or(&[][..], Vec::as_slice)
        });
        for position in positions {
            if out.len() >= limit {
                break;
            }
            let Some(file) = usize::try_from(position)
                .ok()
                .and_then(|p| self.files.get(p))
                .map(|f| &**f)
            else {
                continue;
            };
            if !out
                .get(..urn_hits)
                .unwrap_or(&[])
                .iter()
                .any(|f| f.index == file.index)
            {
                out.push(file);
            }
        }
        out
    }

    /// The same search by a linear scan of every file's (pre-split) keywords: the reference the
    /// index is tested and benchmarked against.
    pub fn search_linear(&self, criteria: &SearchCriteria) -> Vec<&SharedFile> {
        let mut query = split_keywords(&criteria.text);
        query.sort_unstable();
        query.dedup();
        let mut out: Vec<&SharedFile> = Vec::new();
        for digest in &criteria.sha1_urns {
            if let Some(file) = self.files.iter().find(|f| f.sha1.as_ref() == Some(digest)) {
                if !out.iter().any(|f| f.index == file.index) {
                    out.push(&**file);
                }
            }
        }
        let urn_hits = out.len();
        if query.is_empty() {
            return out;
        }
        for (file, words) in self.files.iter().zip(&self.names.file_words) {
            if query
                .iter()
                .all(|k| keywords::has_word_with_prefix(words, k))
                && !out
                    .get(..urn_hits)
                    .unwrap_or(&[])
                    .iter()
                    .any(|f| f.index == file.index)
            {
                out.push(file);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    pub(crate) fn file(index: u32, name: &str, size: u64, sha1: Option<[u8; 20]>) -> SharedFile {
        SharedFile {
            index,
            name: name.to_owned(),
            rel_path: PathBuf::from(name),
            path: PathBuf::from("/shared").join(name),
            size,
            mtime: UNIX_EPOCH,
            sha1,
            tiger: None,
        }
    }

    fn sample() -> Library {
        Library::new(vec![
            file(3, "The Beatles - Help.mp3", 3000, Some([3; 20])),
            file(1, "Ünïcode Song.ogg", 1025, Some([1; 20])),
            file(2, "Rolling Stones - Help.mp3", 2048, None),
            file(7, "readme.txt", 0, Some([7; 20])),
        ])
    }

    fn indexes(files: Vec<&SharedFile>) -> Vec<u32> {
        files.into_iter().map(|f| f.index).collect()
    }

    #[test]
    fn and_semantics_over_keywords() {
        let lib = sample();
        assert_eq!(
            indexes(lib.search(&SearchCriteria::text("help"))),
            vec![2, 3]
        );
        assert_eq!(
            indexes(lib.search(&SearchCriteria::text("beatles help"))),
            vec![3]
        );
        assert_eq!(
            indexes(lib.search(&SearchCriteria::text("beatles stones"))),
            Vec::<u32>::new()
        );
        assert_eq!(
            indexes(lib.search(&SearchCriteria::text("MP3"))),
            vec![2, 3]
        );
    }

    #[test]
    fn unicode_query_matches_other_case() {
        let lib = sample();
        assert_eq!(
            indexes(lib.search(&SearchCriteria::text("ÜNÏCODE"))),
            vec![1]
        );
        assert_eq!(indexes(lib.search(&SearchCriteria::text("ünï"))), vec![1]);
        // Diacritics are folded too (see `keywords`).
        assert_eq!(
            indexes(lib.search(&SearchCriteria::text("unicode"))),
            vec![1]
        );
    }

    #[test]
    fn empty_text_matches_nothing() {
        let lib = sample();
        assert!(lib.search(&SearchCriteria::text("")).is_empty());
        assert!(lib.search(&SearchCriteria::text(" - . ")).is_empty());
    }

    #[test]
    fn urn_matches_regardless_of_text() {
        let lib = sample();
        let criteria = SearchCriteria {
            text: "nothing like it".into(),
            sha1_urns: vec![[7; 20]],
        };
        assert_eq!(indexes(lib.search(&criteria)), vec![7]);
        let unknown = SearchCriteria {
            text: String::new(),
            sha1_urns: vec![[9; 20]],
        };
        assert!(lib.search(&unknown).is_empty());
        // urn and text matching the same file: listed once.
        let both = SearchCriteria {
            text: "help".into(),
            sha1_urns: vec![[3; 20], [3; 20]],
        };
        assert_eq!(indexes(lib.search(&both)), vec![3, 2]);
    }

    #[test]
    fn limit_is_respected() {
        let lib = sample();
        let criteria = SearchCriteria {
            text: "help".into(),
            sha1_urns: vec![[7; 20]],
        };
        assert_eq!(indexes(lib.search_limited(&criteria, 2)), vec![7, 2]);
        assert_eq!(indexes(lib.search_limited(&criteria, 1)), vec![7]);
        assert!(lib.search_limited(&criteria, 0).is_empty());
    }

    #[test]
    fn index_agrees_with_linear_scan() {
        let lib = sample();
        for text in ["help", "the", "s", "mp3 help", "", "ü", "readme txt", "zzz"] {
            let c = SearchCriteria::text(text);
            assert_eq!(
                indexes(lib.search(&c)),
                indexes(lib.search_linear(&c)),
                "{text}"
            );
        }
    }

    #[test]
    fn with_sha1s_updates_lookup_and_keeps_search() {
        let lib = sample();
        let updated = lib.with_sha1s(&[(2, [2; 20]), (99, [9; 20])]);
        assert_eq!(updated.by_sha1(&[2; 20]).map(|f| f.index), Some(2));
        assert!(updated.by_sha1(&[9; 20]).is_none());
        assert_eq!(updated.pending_hashes(), 0);
        assert_eq!(lib.pending_hashes(), 1, "the original is unchanged");
        assert_eq!(
            indexes(updated.search(&SearchCriteria::text("help"))),
            vec![2, 3]
        );
        assert_eq!(updated.totals(), lib.totals());
    }

    #[test]
    fn totals_lookup_and_pending() {
        let lib = sample();
        // 3000 + 1025 + 2048 + 0 = 6073 bytes → 6 KiB rounded up.
        assert_eq!(lib.totals(), (4, 6));
        assert_eq!(
            lib.get(2).map(|f| f.name.as_str()),
            Some("Rolling Stones - Help.mp3")
        );
        assert!(lib.get(4).is_none());
        assert_eq!(lib.by_sha1(&[1; 20]).map(|f| f.index), Some(1));
        assert!(lib.by_sha1(&[2; 20]).is_none());
        assert_eq!(lib.pending_hashes(), 1);
        assert_eq!(Library::empty().totals(), (0, 0));
    }
}
