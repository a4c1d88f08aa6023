//! The hash cache in the data directory: SHA-1 and Tiger tree root (and the index announced for
//! the file) keyed by (path, size, mtime), so a restart or a rescan never re-reads an unchanged
//! file.
//!
//! Format (`sha1-cache` in the data directory), one UTF-8 text line per file:
//! `<hashes>\t<size>\t<mtime ns since the epoch, signed>\t<index>\t<percent-encoded path>`
//! after a `hazel-sha1-cache 2` header line, where `<hashes>` is the SHA-1 in base32, or
//! `<sha1 base32>.<tiger root base32>` (the bitprint spelling) once the tree is known. Version 1
//! files (the same lines, SHA-1 only) still load: their files keep their SHA-1 and index, and
//! get their tree on the next hashing pass. Paths are raw bytes (Unix): `%`, control bytes and
//! anything that is not printable ASCII are written `%XX`. The file is replaced atomically (temp
//! file, fsync, rename, fsync of the directory). A line that does not parse is skipped; a file with
//! another header is ignored entirely (the cache is then rebuilt by hashing).

use hazel_protocol::text::escape_path;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_encoding::{BASE32, BASE32_NOPAD};

/// The cache file's name inside the data directory.
pub const CACHE_FILE: &str = "sha1-cache";
const HEADER: &str = "hazel-sha1-cache 2";
/// The header of the SHA-1-only format, still read.
const HEADER_V1: &str = "hazel-sha1-cache 1";

/// A file's identity for the cache: the same path, size and mtime means the same content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub size: u64,
    /// Nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i128,
}

impl FileStamp {
    pub fn new(size: u64, mtime: SystemTime) -> Self {
        let mtime_ns = match mtime.duration_since(UNIX_EPOCH) {
            Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
            Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
        };
        FileStamp { size, mtime_ns }
    }

    /// The mtime back as a `SystemTime` (saturating at the representable range).
    pub fn mtime(&self) -> SystemTime {
        let magnitude = self.mtime_ns.unsigned_abs();
        let secs = u64::try_from(magnitude / 1_000_000_000).unwrap_or(u64::MAX);
        // The remainder is below 1e9, so it always fits.
        let nanos = u32::try_from(magnitude % 1_000_000_000).unwrap_or(0);
        let offset = Duration::new(secs, nanos);
        if self.mtime_ns >= 0 {
            UNIX_EPOCH.checked_add(offset).unwrap_or(UNIX_EPOCH)
        } else {
            UNIX_EPOCH.checked_sub(offset).unwrap_or(UNIX_EPOCH)
        }
    }
}

/// What the cache remembers about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedHash {
    pub stamp: FileStamp,
    pub sha1: [u8; 20],
    /// The Tiger tree root, when the file's tree was computed and stored.
    pub tiger: Option<[u8; 24]>,
    pub index: u32,
}

/// The whole cache, in memory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HashCache {
    entries: HashMap<PathBuf, CachedHash>,
}

impl HashCache {
    /// The digest of `path` if it was hashed with exactly this stamp.
    pub fn lookup(&self, path: &Path, stamp: FileStamp) -> Option<&CachedHash> {
        self.entries.get(path).filter(|c| c.stamp == stamp)
    }

    pub fn insert(&mut self, path: PathBuf, entry: CachedHash) {
        self.entries.insert(path, entry);
    }

    /// Keeps only the paths `keep` says are still shared.
    pub fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool) {
        self.entries.retain(|path, _| keep(path));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The highest index any entry announced.
    pub fn max_index(&self) -> Option<u32> {
        self.entries.values().map(|c| c.index).max()
    }

    /// Parses a cache file's text. Never fails: bad lines are skipped, a bad header gives an
    /// empty cache.
    pub fn parse(text: &str) -> HashCache {
        let mut lines = text.lines();
        let mut cache = HashCache::default();
        if !matches!(lines.next(), Some(HEADER | HEADER_V1)) {
            return cache;
        }
        for line in lines {
            if let Some((path, entry)) = parse_line(line) {
                cache.entries.insert(path, entry);
            }
        }
        cache
    }

    /// The cache file's text (entries sorted by path, so equal caches give equal files).
    pub fn to_text(&self) -> String {
        let mut entries: Vec<(&PathBuf, &CachedHash)> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = String::with_capacity(64 + entries.len() * 100);
        out.push_str(HEADER);
        out.push('\n');
        for (path, entry) in entries {
            out.push_str(&BASE32.encode(&entry.sha1));
            if let Some(tiger) = &entry.tiger {
                out.push('.');
                out.push_str(&BASE32_NOPAD.encode(tiger));
            }
            out.push('\t');
            out.push_str(&entry.stamp.size.to_string());
            out.push('\t');
            out.push_str(&entry.stamp.mtime_ns.to_string());
            out.push('\t');
            out.push_str(&entry.index.to_string());
            out.push('\t');
            percent_encode(path.as_os_str().as_bytes(), &mut out);
            out.push('\n');
        }
        out
    }

    /// Loads `<data_dir>/sha1-cache`; a missing or unreadable file gives an empty cache.
    pub fn load(data_dir: &Path) -> HashCache {
        let path = data_dir.join(CACHE_FILE);
        match fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => HashCache::parse(&text),
                Err(_) => {
                    log::warn!(
                        "{}: not UTF-8, rebuilding the SHA-1 cache",
                        escape_path(&path)
                    );
                    HashCache::default()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashCache::default(),
            Err(e) => {
                log::warn!("{}: {e}; rebuilding the SHA-1 cache", escape_path(&path));
                HashCache::default()
            }
        }
    }

    /// Writes `<data_dir>/sha1-cache` atomically: temp file, fsync, rename, fsync the directory.
    pub fn save(&self, data_dir: &Path) -> io::Result<()> {
        fs::create_dir_all(data_dir)?;
        let final_path = data_dir.join(CACHE_FILE);
        let temp_path = data_dir.join(format!("{CACHE_FILE}.tmp"));
        {
            let mut file = File::create(&temp_path)?;
            file.write_all(self.to_text().as_bytes())?;
            file.sync_all()?;
        }
        fs::rename(&temp_path, &final_path)?;
        // The rename is durable only once the directory entry is.
        File::open(data_dir)?.sync_all()
    }
}

fn parse_line(line: &str) -> Option<(PathBuf, CachedHash)> {
    let mut fields = line.splitn(5, '\t');
    let hashes_text = fields.next()?;
    let size = fields.next()?.parse::<u64>().ok()?;
    let mtime_ns = fields.next()?.parse::<i128>().ok()?;
    let index = fields.next()?.parse::<u32>().ok()?;
    let path_text = fields.next()?;
    let (sha1_text, tiger_text) = match hashes_text.split_once('.') {
        Some((sha1, tiger)) => (sha1, Some(tiger)),
        None => (hashes_text, None),
    };
    if sha1_text.len() != 32 {
        return None;
    }
    let digest = BASE32.decode(sha1_text.as_bytes()).ok()?;
    let sha1: [u8; 20] = digest.try_into().ok()?;
    let tiger = match tiger_text {
        None => None,
        Some(text) => Some(
            hazel_protocol::thex::parse_tiger_base32(text.as_bytes())
                .filter(|t| BASE32_NOPAD.encode(t) == text)?,
        ),
    };
    let path = PathBuf::from(OsString::from_vec(percent_decode(path_text)?));
    if path.as_os_str().is_empty() {
        return None;
    }
    Some((
        path,
        CachedHash {
            stamp: FileStamp { size, mtime_ns },
            sha1,
            tiger,
            index,
        },
    ))
}

fn percent_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, mtime_ns: i128, byte: u8, index: u32) -> CachedHash {
        CachedHash {
            stamp: FileStamp { size, mtime_ns },
            sha1: [byte; 20],
            tiger: byte.is_multiple_of(2).then_some([byte; 24]),
            index,
        }
    }

    #[test]
    fn version_1_lines_still_load_without_roots() {
        let sha1 = "A".repeat(32);
        let v1 = format!("hazel-sha1-cache 1\n{sha1}\t10\t20\t3\t/old/file\n");
        let cache = HashCache::parse(&v1);
        let entry = cache
            .lookup(
                Path::new("/old/file"),
                FileStamp {
                    size: 10,
                    mtime_ns: 20,
                },
            )
            .expect("a version 1 line loads");
        assert_eq!((entry.sha1, entry.tiger, entry.index), ([0; 20], None, 3));
        // Written back in version 2, the same line.
        let text = cache.to_text();
        assert!(text.starts_with("hazel-sha1-cache 2\n"));
        assert!(text.ends_with(&format!("{sha1}\t10\t20\t3\t/old/file\n")));
        // A root is written after the SHA-1, bitprint-style, and read back.
        let mut cache = cache;
        let root = [7u8; 24];
        cache.insert(
            "/old/file".into(),
            CachedHash {
                tiger: Some(root),
                ..*entry_of(&cache, "/old/file")
            },
        );
        let text = cache.to_text();
        assert!(text.contains(&format!("{sha1}.{}\t", BASE32_NOPAD.encode(&root))));
        assert_eq!(HashCache::parse(&text), cache);
        // A damaged root spoils its line only.
        let damaged = text.replace(&BASE32_NOPAD.encode(&root), "NOTBASE32");
        assert!(HashCache::parse(&damaged).is_empty());
    }

    fn entry_of<'a>(cache: &'a HashCache, path: &str) -> &'a CachedHash {
        cache.entries.get(Path::new(path)).expect("entry")
    }

    #[test]
    fn text_round_trip_with_odd_paths() {
        let mut cache = HashCache::default();
        cache.insert(
            "/music/a b.mp3".into(),
            entry(10, 1_700_000_000_123_456_789, 1, 4),
        );
        cache.insert("/music/tab\there%\n.ogg".into(), entry(0, -5, 2, 9));
        cache.insert(
            PathBuf::from(OsString::from_vec(b"/raw/\xff\xfe.bin".to_vec())),
            entry(u64::MAX, 0, 3, u32::MAX),
        );
        let text = cache.to_text();
        assert_eq!(text.lines().count(), 4);
        assert_eq!(HashCache::parse(&text), cache);
    }

    #[test]
    fn corrupt_lines_are_skipped_and_bad_header_ignored() {
        let mut cache = HashCache::default();
        cache.insert("/ok".into(), entry(1, 2, 7, 1));
        let good = cache.to_text();
        let text = format!(
            "{good}garbage\nAAAA\t1\t2\t3\t/short-sha\n{}\t1\t2\n",
            "A".repeat(32)
        );
        assert_eq!(HashCache::parse(&text), cache);
        assert!(HashCache::parse("not a cache\n").is_empty());
        assert!(HashCache::parse("").is_empty());
        let bad_percent = format!("{HEADER}\n{}\t1\t2\t3\t/x%G1\n", "A".repeat(32));
        assert!(HashCache::parse(&bad_percent).is_empty());
    }

    #[test]
    fn lookup_needs_same_stamp() {
        let mut cache = HashCache::default();
        cache.insert("/f".into(), entry(5, 100, 1, 1));
        assert!(cache
            .lookup(
                Path::new("/f"),
                FileStamp {
                    size: 5,
                    mtime_ns: 100
                }
            )
            .is_some());
        assert!(cache
            .lookup(
                Path::new("/f"),
                FileStamp {
                    size: 5,
                    mtime_ns: 101
                }
            )
            .is_none());
        assert!(cache
            .lookup(
                Path::new("/f"),
                FileStamp {
                    size: 6,
                    mtime_ns: 100
                }
            )
            .is_none());
    }

    #[test]
    fn stamp_mtime_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 42);
        assert_eq!(FileStamp::new(1, t).mtime(), t);
        let before = UNIX_EPOCH - Duration::new(3, 5);
        assert_eq!(FileStamp::new(1, before).mtime(), before);
    }

    proptest::proptest! {
        #[test]
        fn parse_is_total_and_round_trips(
            garbage in ".*",
            entries in proptest::collection::vec(
                (proptest::collection::vec(proptest::num::u8::ANY, 1..40), proptest::num::u64::ANY,
                 proptest::num::i64::ANY, proptest::array::uniform20(proptest::num::u8::ANY),
                 proptest::num::u32::ANY, proptest::option::of(proptest::array::uniform24(proptest::num::u8::ANY))),
                0..8),
        ) {
            // Any text parses to some cache, without panicking.
            let _ = HashCache::parse(&garbage);
            let _ = HashCache::parse(&format!("{HEADER}\n{garbage}"));
            let mut cache = HashCache::default();
            for (path, size, mtime, sha1, index, tiger) in entries {
                let mut bytes = b"/".to_vec();
                bytes.extend(path);
                cache.insert(
                    PathBuf::from(OsString::from_vec(bytes)),
                    CachedHash { stamp: FileStamp { size, mtime_ns: i128::from(mtime) }, sha1, tiger, index },
                );
            }
            proptest::prop_assert_eq!(HashCache::parse(&cache.to_text()), cache);
        }
    }

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = HashCache::default();
        cache.insert("/x/y".into(), entry(3, 4, 5, 6));
        cache.save(dir.path()).expect("save");
        assert_eq!(HashCache::load(dir.path()), cache);
        assert!(!dir.path().join("sha1-cache.tmp").exists());
        fs::write(dir.path().join(CACHE_FILE), b"\xff\xfe garbage").expect("write");
        assert!(HashCache::load(dir.path()).is_empty());
    }
}
