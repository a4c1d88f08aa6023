//! Scanning the shared directories and hashing their files, on a thread of its own (never on the
//! event loop). Each finished step — a scan, then every `publish_interval` of hashing, then the end
//! of hashing — is published as a new immutable `Arc<Library>` through a callback (or a
//! crossbeam channel), which the reactor hands to the core.
//!
//! - [`LibraryScanner::spawn`] starts the thread and scans at once; [`LibraryScanner::rescan`]
//!   asks for a new scan (added, removed and changed files are picked up; several requests in a
//!   row coalesce); [`LibraryScanner::shutdown`] (or dropping the scanner) stops it after saving the
//!   SHA-1 cache.
//! - File indexes stay the same across rescans (and restarts, through the cache) while a file's
//!   path, size and mtime are unchanged, so downloads in flight keep working; a changed file gets a
//!   new index, and indexes are never reused for other content within a run.
//! - SHA-1 and the Tiger tree ([`hazel_protocol::thex`]) are computed in the same streaming read
//!   with one bounded buffer, skipping files whose digests are in the cache ([`cache`]) for the
//!   same (path, size, mtime). Each file's THEX tree (the DIME message `/uri-res/N2X` serves, at
//!   most about 50 KiB) is stored as `thex/<SHA-1 base32>.dime` in the data directory, written to
//!   a temporary name and renamed; a cached root whose tree file is missing or has another length
//!   is computed again (one read of the file). Tree files no shared file needs are removed after
//!   each complete hashing pass. A file that changed since the walk is hashed
//!   again once (with a new index: new content); one that keeps changing, or cannot be read, is
//!   left out of the library until the next rescan.
//! - [`open_span`] opens the file of an upload reply at its offset, refusing a file changed since
//!   the scan (the reactor streams `len` bytes from it).
//! - The walk's policy (symlinks, hidden files, the data directory) is described in [`mod@scan`].

pub mod cache;
pub mod scan;

use hazel_protocol::text::escape_path;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use sha1::{Digest, Sha1};

use hazel_protocol::thex::{TigerTree, TreeHasher};

use crate::core::shares::upload::{FileSpan, SpanSource};
use crate::core::shares::{tree_file_name, FileHashes, Library, SharedFile};
use cache::{CachedHash, FileStamp, HashCache};
pub use scan::Confinement;
use scan::{scan, ScanOptions, ScannedFile};

/// Bytes read per `read` call while hashing: the only buffer, whatever the file size.
const HASH_BUFFER: usize = 64 * 1024;
/// The directory of the stored THEX trees, inside the data directory.
pub const THEX_DIR: &str = "thex";
/// While hashing, the cache file is rewritten at most this often (and once at the end).
const CACHE_SAVE_INTERVAL: Duration = Duration::from_secs(30);
/// While hashing one file, commands are checked every this many buffers (4 MiB).
const COMMAND_CHECK_EVERY: u32 = 64;

/// What the scanner shares and where it keeps its cache.
#[derive(Debug, Clone)]
pub struct LibraryConfig {
    /// The `--share` directories.
    pub shares: Vec<PathBuf>,
    /// The `--data-dir`: holds the hash cache and the THEX trees, and is never shared even if
    /// inside a share.
    pub data_dir: PathBuf,
    /// Share files and directories whose name starts with `.` (default: no).
    pub include_hidden: bool,
    /// While hashing, publish progress at most this often (default 2 s).
    pub publish_interval: Duration,
    /// Share what symbolic links inside a share point to outside it (default: no).
    pub follow_links_out: bool,
}

impl LibraryConfig {
    /// Where shared files may really be (see [`scan::Confinement`]).
    pub fn confinement(&self) -> Confinement {
        if self.follow_links_out {
            Confinement::anywhere()
        } else {
            Confinement::within(&self.shares)
        }
    }

    pub fn new(shares: Vec<PathBuf>, data_dir: PathBuf) -> Self {
        LibraryConfig {
            shares,
            data_dir,
            include_hidden: false,
            publish_interval: Duration::from_secs(2),
            follow_links_out: false,
        }
    }
}

/// Counters of the scanner's work since it started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ScanStats {
    /// Scans completed (walks of every share).
    pub scans: u64,
    /// Files read completely to compute their SHA-1.
    pub files_hashed: u64,
    /// Bytes read to compute SHA-1s.
    pub bytes_hashed: u64,
    /// Files whose SHA-1 came from the cache file instead of being read.
    pub cache_hits: u64,
    /// Libraries handed to the publish callback.
    pub published: u64,
}

#[derive(Debug, Default)]
struct Counters {
    scans: AtomicU64,
    files_hashed: AtomicU64,
    bytes_hashed: AtomicU64,
    cache_hits: AtomicU64,
    published: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ScanStats {
        ScanStats {
            scans: self.scans.load(Ordering::Relaxed),
            files_hashed: self.files_hashed.load(Ordering::Relaxed),
            bytes_hashed: self.bytes_hashed.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Rescan,
    Shutdown,
}

/// The scanning thread's handle.
#[derive(Debug)]
pub struct LibraryScanner {
    commands: Sender<Command>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl LibraryScanner {
    /// Starts the thread; it scans at once and calls `publish` with each new library.
    pub fn spawn<F>(config: LibraryConfig, publish: F) -> io::Result<Self>
    where
        F: FnMut(Arc<Library>) + Send + 'static,
    {
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let counters = Arc::new(Counters::default());
        let worker = Worker::new(config, counters.clone(), Box::new(publish))?;
        let thread = std::thread::Builder::new()
            .name("hazel-library".into())
            .spawn(move || worker.run(command_rx))?;
        Ok(LibraryScanner {
            commands,
            counters,
            thread: Some(thread),
        })
    }

    /// Like [`LibraryScanner::spawn`], publishing into a channel.
    pub fn spawn_with_channel(config: LibraryConfig) -> io::Result<(Self, Receiver<Arc<Library>>)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let scanner = LibraryScanner::spawn(config, move |library| {
            // The receiver being gone only means nobody listens any more.
            let _ = tx.send(library);
        })?;
        Ok((scanner, rx))
    }

    /// Asks for a new scan of every share.
    pub fn rescan(&self) {
        let _ = self.commands.send(Command::Rescan);
    }

    /// The work done so far.
    pub fn stats(&self) -> ScanStats {
        self.counters.snapshot()
    }

    /// Stops the thread (after it saves the cache) and waits for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the library thread panicked");
            }
        }
    }
}

impl Drop for LibraryScanner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the scanner knows about one shared file.
#[derive(Debug, Clone)]
struct Entry {
    index: u32,
    stamp: FileStamp,
    sha1: Option<[u8; 20]>,
    /// Known once the tree is stored.
    tiger: Option<[u8; 24]>,
    name: String,
    rel_path: PathBuf,
}

enum HashOutcome {
    Digest([u8; 20], TigerTree),
    /// The file's size or mtime changed before or while it was read.
    Changed,
    /// A command arrived; hashing this file was abandoned.
    Interrupted,
}

type Publish = Box<dyn FnMut(Arc<Library>) + Send>;

struct Worker {
    config: LibraryConfig,
    counters: Arc<Counters>,
    publish: Publish,
    cache: HashCache,
    entries: HashMap<PathBuf, Entry>,
    next_index: u32,
    /// A command read while busy, handled at the next opportunity.
    pending: Option<Command>,
    /// The last library published, and what changed since.
    published: Option<Arc<Library>>,
    new_digests: Vec<FileHashes>,
    needs_rebuild: bool,
    buffer: Vec<u8>,
}

impl Worker {
    fn new(
        mut config: LibraryConfig,
        counters: Arc<Counters>,
        publish: Publish,
    ) -> io::Result<Self> {
        // Absolute paths: the library hands them to uploads, whatever the cwd is then.
        config.shares = config
            .shares
            .iter()
            .map(std::path::absolute)
            .collect::<io::Result<_>>()?;
        config.data_dir = std::path::absolute(&config.data_dir)?;
        let cache = HashCache::load(&config.data_dir);
        let next_index = cache
            .max_index()
            .and_then(|i| i.checked_add(1))
            .unwrap_or(1);
        Ok(Worker {
            config,
            counters,
            publish,
            cache,
            entries: HashMap::new(),
            next_index,
            pending: None,
            published: None,
            new_digests: Vec::new(),
            needs_rebuild: true,
            buffer: vec![0; HASH_BUFFER],
        })
    }

    fn run(mut self, commands: Receiver<Command>) {
        let mut want_scan = true;
        loop {
            if want_scan {
                self.scan_and_hash(&commands);
            }
            let command = match self.pending.take() {
                Some(command) => Ok(command),
                None => commands.recv(),
            };
            match command {
                Ok(Command::Rescan) => want_scan = true,
                Ok(Command::Shutdown) | Err(_) => break,
            }
        }
        self.save_cache();
    }

    /// Reads a command without blocking; true when one is waiting (kept in `pending`).
    /// Consecutive rescans coalesce; a shutdown wins over everything.
    fn poll_command(&mut self, commands: &Receiver<Command>) -> bool {
        loop {
            match commands.try_recv() {
                Ok(command) => {
                    if self.pending != Some(Command::Shutdown) {
                        self.pending = Some(command);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.pending = Some(Command::Shutdown);
                    break;
                }
            }
        }
        self.pending.is_some()
    }

    fn scan_and_hash(&mut self, commands: &Receiver<Command>) {
        let options = ScanOptions {
            include_hidden: self.config.include_hidden,
            exclude: vec![self.config.data_dir.clone()],
            follow_links_out: self.config.follow_links_out,
        };
        let scanned = scan(&self.config.shares, &options);
        self.reconcile(scanned);
        self.counters.scans.fetch_add(1, Ordering::Relaxed);
        self.needs_rebuild = true;
        self.publish_library();

        let mut pending: Vec<PathBuf> = self
            .entries
            .iter()
            .filter(|(_, e)| e.sha1.is_none() || e.tiger.is_none())
            .map(|(path, _)| path.clone())
            .collect();
        pending.sort();
        let mut pending: VecDeque<PathBuf> = pending.into();
        // Files that changed after the walk get one more chance in this pass (a file still being
        // written keeps changing and waits for the next rescan).
        let mut retried: HashSet<PathBuf> = HashSet::new();
        let mut last_publish = Instant::now();
        let mut last_save = Instant::now();
        let mut unsaved = false;
        let mut complete = true;
        while let Some(path) = pending.pop_front() {
            if self.poll_command(commands) {
                complete = false;
                break;
            }
            let Some(stamp) = self.entries.get(&path).map(|e| e.stamp) else {
                continue;
            };
            match self.hash_file(&path, stamp, commands) {
                Ok(HashOutcome::Digest(digest, tree)) => {
                    let tiger = match store_tree(&self.config.data_dir, &digest, &tree) {
                        Ok(()) => Some(tree.root()),
                        Err(e) => {
                            log::warn!(
                                "{}: storing its THEX tree: {e}; shared without one",
                                escape_path(&path)
                            );
                            None
                        }
                    };
                    if let Some(entry) = self.entries.get_mut(&path) {
                        entry.sha1 = Some(digest);
                        entry.tiger = tiger;
                        self.cache.insert(
                            path.clone(),
                            CachedHash {
                                stamp,
                                sha1: digest,
                                tiger,
                                index: entry.index,
                            },
                        );
                        self.new_digests.push((entry.index, digest, tiger));
                    }
                    unsaved = true;
                }
                Ok(HashOutcome::Changed) => {
                    self.needs_rebuild = true;
                    if retried.insert(path.clone()) && self.restamp(&path) {
                        log::debug!(
                            "{}: changed since the walk; hashed again",
                            escape_path(&path)
                        );
                        pending.push_back(path);
                    } else {
                        log::info!(
                            "{}: changed while hashing; left for the next rescan",
                            escape_path(&path)
                        );
                        self.entries.remove(&path);
                    }
                }
                Ok(HashOutcome::Interrupted) => {
                    complete = false;
                    break;
                }
                Err(e) => {
                    log::warn!("{}: {e}; not shared", escape_path(&path));
                    self.entries.remove(&path);
                    self.needs_rebuild = true;
                }
            }
            if self.has_unpublished() && last_publish.elapsed() >= self.config.publish_interval {
                self.publish_library();
                last_publish = Instant::now();
            }
            // Progress survives a crash without rewriting a large cache file every publish.
            if unsaved && last_save.elapsed() >= CACHE_SAVE_INTERVAL {
                self.save_cache();
                last_save = Instant::now();
                unsaved = false;
            }
        }
        if self.has_unpublished() {
            self.publish_library();
        }
        if unsaved {
            self.save_cache();
        }
        if complete {
            self.remove_unused_trees();
        }
    }

    /// Deletes the stored trees (and leftover temporary files) that no shared file needs.
    fn remove_unused_trees(&self) {
        let dir = self.config.data_dir.join(THEX_DIR);
        let Ok(listing) = std::fs::read_dir(&dir) else {
            return;
        };
        let needed: HashSet<String> = self
            .entries
            .values()
            .filter(|e| e.tiger.is_some())
            .filter_map(|e| e.sha1.as_ref().map(tree_file_name))
            .collect();
        for item in listing.flatten() {
            let name = item.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            // Only names this scanner makes: `<32 base32>.dime` and `….dime.tmp`.
            let stem = name.strip_suffix(".tmp").unwrap_or(name);
            let ours = stem.len() == 32 + ".dime".len()
                && stem.ends_with(".dime")
                && stem[..32]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
            if ours && (stem != name || !needed.contains(name)) {
                if let Err(e) = std::fs::remove_file(item.path()) {
                    log::debug!("removing {}: {e}", escape_path(&item.path()));
                }
            }
        }
    }

    /// Whether the tree of a file with this SHA-1 and size is stored, with the expected length.
    fn tree_stored(&self, sha1: &[u8; 20], size: u64) -> bool {
        let path = self
            .config
            .data_dir
            .join(THEX_DIR)
            .join(tree_file_name(sha1));
        let expected =
            hazel_protocol::thex::dime::message_len(size, hazel_protocol::thex::kept_depth(size));
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && Some(m.len()) == expected)
    }

    /// Matches a fresh walk against what was known: unchanged files keep their index and digest,
    /// files known to the cache get theirs from it, new or changed files get a fresh index.
    fn reconcile(&mut self, scanned: Vec<ScannedFile>) {
        let stamps: Vec<FileStamp> = scanned
            .iter()
            .map(|f| FileStamp::new(f.size, f.mtime))
            .collect();
        // (index, sha1, tiger) of each scanned file known from before.
        type Known = (u32, Option<[u8; 20]>, Option<[u8; 24]>);
        let mut assigned: Vec<Option<Known>> = vec![None; scanned.len()];
        let mut used: HashSet<u32> = HashSet::new();
        // Pass 1: files unchanged since the last scan keep their index.
        for ((file, stamp), slot) in scanned.iter().zip(&stamps).zip(assigned.iter_mut()) {
            if let Some(previous) = self.entries.get(&file.path) {
                if previous.stamp == *stamp && used.insert(previous.index) {
                    *slot = Some((previous.index, previous.sha1, previous.tiger));
                }
            }
        }
        // Pass 2: files the cache knows (first scan after a restart).
        for ((file, stamp), slot) in scanned.iter().zip(&stamps).zip(assigned.iter_mut()) {
            if slot.is_none() {
                if let Some(cached) = self.cache.lookup(&file.path, *stamp) {
                    if used.insert(cached.index) {
                        // A root counts only with its tree file: else the file is read again.
                        let tiger = cached
                            .tiger
                            .filter(|_| self.tree_stored(&cached.sha1, stamp.size));
                        *slot = Some((cached.index, Some(cached.sha1), tiger));
                        self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        // Pass 3: everything else is new content.
        let mut entries = HashMap::with_capacity(scanned.len());
        for ((file, stamp), slot) in scanned.into_iter().zip(stamps).zip(assigned) {
            let (index, sha1, tiger) = match slot {
                Some(found) => found,
                None => (self.allocate_index(&used), None, None),
            };
            used.insert(index);
            entries.insert(
                file.path,
                Entry {
                    index,
                    stamp,
                    sha1,
                    tiger,
                    name: file.name,
                    rel_path: file.rel_path,
                },
            );
        }
        self.entries = entries;
        let entries = &self.entries;
        self.cache.retain(|path| entries.contains_key(path));
    }

    fn allocate_index(&mut self, used: &HashSet<u32>) -> u32 {
        // Bounded: at most `used.len() + 1` candidates are taken before a free one.
        loop {
            let candidate = self.next_index;
            self.next_index = self.next_index.checked_add(1).unwrap_or(1);
            if !used.contains(&candidate) {
                return candidate;
            }
        }
    }

    fn hash_file(
        &mut self,
        path: &Path,
        expected: FileStamp,
        commands: &Receiver<Command>,
    ) -> io::Result<HashOutcome> {
        let mut file = File::open(path)?;
        let before = file.metadata()?;
        if FileStamp::new(before.len(), before.modified()?) != expected {
            return Ok(HashOutcome::Changed);
        }
        let mut hasher = Sha1::new();
        let mut tree = TreeHasher::new();
        let mut total: u64 = 0;
        let mut reads: u32 = 0;
        loop {
            let n = match file.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = self.buffer.get(..n).unwrap_or(&[]);
            hasher.update(chunk);
            tree.update(chunk);
            total = total.saturating_add(n as u64);
            self.counters
                .bytes_hashed
                .fetch_add(n as u64, Ordering::Relaxed);
            reads += 1;
            if reads >= COMMAND_CHECK_EVERY {
                reads = 0;
                if self.poll_command(commands) {
                    return Ok(HashOutcome::Interrupted);
                }
            }
        }
        let after = std::fs::metadata(path)?;
        if total != expected.size || FileStamp::new(after.len(), after.modified()?) != expected {
            return Ok(HashOutcome::Changed);
        }
        self.counters.files_hashed.fetch_add(1, Ordering::Relaxed);
        Ok(HashOutcome::Digest(hasher.finalize().into(), tree.finish()))
    }

    /// Takes a changed file's new size and mtime: new content, so a new index and no digest.
    /// False when it is no longer a readable regular file.
    fn restamp(&mut self, path: &Path) -> bool {
        let stamp = match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => match meta.modified() {
                Ok(mtime) => FileStamp::new(meta.len(), mtime),
                Err(_) => return false,
            },
            _ => return false,
        };
        let used: HashSet<u32> = self.entries.values().map(|e| e.index).collect();
        let index = self.allocate_index(&used);
        match self.entries.get_mut(path) {
            Some(entry) => {
                entry.stamp = stamp;
                entry.index = index;
                entry.sha1 = None;
                entry.tiger = None;
                true
            }
            None => false,
        }
    }

    fn has_unpublished(&self) -> bool {
        self.needs_rebuild || !self.new_digests.is_empty()
    }

    /// Publishes the current state: a full rebuild after a scan or a removal, else the last
    /// library with the new digests (sharing its keyword index).
    fn publish_library(&mut self) {
        let library = match (&self.published, self.needs_rebuild) {
            (Some(last), false) => Arc::new(last.with_hashes(&self.new_digests)),
            _ => Arc::new(self.build_library()),
        };
        self.needs_rebuild = false;
        self.new_digests.clear();
        self.published = Some(Arc::clone(&library));
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        (self.publish)(library);
    }

    fn build_library(&self) -> Library {
        let files: Vec<SharedFile> = self
            .entries
            .iter()
            .map(|(path, e)| SharedFile {
                index: e.index,
                name: e.name.clone(),
                rel_path: e.rel_path.clone(),
                path: path.clone(),
                size: e.stamp.size,
                mtime: e.stamp.mtime(),
                sha1: e.sha1,
                tiger: e.tiger,
            })
            .collect();
        Library::new(files).with_thex_dir(self.config.data_dir.join(THEX_DIR))
    }

    fn save_cache(&self) {
        if let Err(e) = self.cache.save(&self.config.data_dir) {
            log::warn!(
                "saving the hash cache in {}: {e}",
                self.config.data_dir.display()
            );
        }
    }
}

/// Opens the file of an upload reply, positioned at the span's first byte, after checking that
/// the file it opened really lies where `confinement` allows (a shared file replaced by a link to
/// outside the shares since the scan is refused: `ErrorKind::PermissionDenied`), and that it still
/// has the size and mtime the library announced (else its content may differ from what the head
/// promised, and the upload must not start: `ErrorKind::InvalidData`).
///
/// A [`SpanSource::TigerTree`] span is the stored THEX tree of a shared file (a path the library
/// made from a SHA-1 in the data directory): it is only checked to be a regular file of the
/// expected size.
pub fn open_span(span: &FileSpan, confinement: &Confinement) -> io::Result<File> {
    let mut file = File::open(&span.path)?;
    if span.source == SpanSource::TigerTree {
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() != span.expected_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "stored THEX tree has another size than announced",
            ));
        }
        file.seek(SeekFrom::Start(span.offset))?;
        return Ok(file);
    }
    if !confinement.allows(&opened_path(&file, &span.path)?) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the shared file now leads outside the shared folders",
        ));
    }
    let meta = file.metadata()?;
    if !meta.is_file()
        || meta.len() != span.expected_size
        || meta.modified()? != span.expected_mtime
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "shared file changed since the last scan",
        ));
    }
    file.seek(SeekFrom::Start(span.offset))?;
    Ok(file)
}

/// The canonical path of the file behind an open descriptor: what was really opened, whatever
/// links were swapped between a check and the open (Linux: `/proc/self/fd`; elsewhere the path
/// is resolved again).
fn opened_path(file: &File, path: &Path) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| std::fs::canonicalize(path))
}

/// Stores a file's THEX tree as `<data_dir>/thex/<SHA-1 base32>.dime`: written to a temporary
/// name, then renamed over the final one, so a reader never sees half a tree.
pub fn store_tree(data_dir: &Path, sha1: &[u8; 20], tree: &TigerTree) -> io::Result<()> {
    let dir = data_dir.join(THEX_DIR);
    std::fs::create_dir_all(&dir)?;
    let name = tree_file_name(sha1);
    let temp = dir.join(format!("{name}.tmp"));
    std::fs::write(&temp, tree.encode_dime())?;
    std::fs::rename(&temp, dir.join(name))
}

/// SHA-1 and Tiger tree of a whole file in one streaming read with a bounded buffer (what the
/// library thread computes for each file).
pub fn hashes_of_file(path: &Path) -> io::Result<([u8; 20], TigerTree)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha1::new();
    let mut tree = TreeHasher::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let chunk = buffer.get(..n).unwrap_or(&[]);
                hasher.update(chunk);
                tree.update(chunk);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((hasher.finalize().into(), tree.finish()))
}

/// SHA-1 of a whole file, streaming with a bounded buffer.
pub fn sha1_of_file(path: &Path) -> io::Result<[u8; 20]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha1::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(buffer.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}
