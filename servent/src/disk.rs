//! The downloads' disk work, off the event loop so it never waits for a
//! disk: `.part` files written at their offsets, synced before each state
//! file that vouches for them, hashed, moved into the downloads folder under
//! a name that overwrites nothing, removed when cancelled. Jobs come in order
//! (per download, the order the core asked); what happened goes back as
//! [`DiskEvent`]s.
//!
//! Three threads, so that no kind of work holds up another:
//! - `hazel-disk` writes, and hashes the SHA-1 as the bytes go by: while
//!   they arrive in order the whole-file check costs nothing at the end
//!   (bytes written out of order are read back once the prefix reaches
//!   them, and a rewrite inside the hashed prefix starts the hash over);
//! - `hazel-sync` syncs the `.part` file and then writes the state file (a
//!   checkpoint), and finishes and removes downloads, in the order asked,
//!   while writing goes on;
//! - `hazel-hash` checks Tiger tree units, reading back what was written.
//!
//! Layout: `DATA-DIR/incomplete/<stem>.part` and `<stem>.state` (see
//! `core::transfers::record`), finished files in the downloads folder.
//! A full disk or a folder that cannot be written is an error on that
//! download (one [`DiskEvent::Failed`]), never a crash.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use hazel_protocol::text::escape_path;
use sha1::{Digest, Sha1};

use crate::core::transfers::record::DownloadRecord;
use crate::core::transfers::{DiskEvent, DiskJob, DownloadId};

/// The folder of partial downloads inside the data directory.
pub const INCOMPLETE_DIR: &str = "incomplete";
/// Bytes read per call when hashing a finished file.
const HASH_BUFFER: usize = 1024 * 1024;

/// How the worker tells what happened (called on its threads).
type Report = Arc<dyn Fn(DiskEvent) + Send + Sync>;

/// Bytes written before the event loop hears of them (so it is not woken
/// for every write), unless the queue runs dry first.
const WRITTEN_BATCH: usize = 1024 * 1024;

/// The disk worker's handle.
pub struct DiskWorker {
    jobs: Option<Sender<DiskJob>>,
    thread: Option<JoinHandle<()>>,
}

impl DiskWorker {
    /// Starts the worker; `report` is called (on the worker's threads) with
    /// each event.
    pub fn spawn(
        incomplete: PathBuf,
        downloads: PathBuf,
        report: impl Fn(DiskEvent) + Send + Sync + 'static,
    ) -> io::Result<DiskWorker> {
        let report: Report = Arc::new(report);
        let (tx, rx) = crossbeam_channel::unbounded();
        let (sync_tx, sync_rx) = crossbeam_channel::unbounded();
        let (hash_tx, hash_rx) = crossbeam_channel::unbounded();
        let syncer = {
            let mut syncer = Syncer {
                downloads,
                report: report.clone(),
            };
            std::thread::Builder::new()
                .name("hazel-sync".into())
                .spawn(move || syncer.run(sync_rx))?
        };
        let hasher = {
            let report = report.clone();
            std::thread::Builder::new()
                .name("hazel-hash".into())
                .spawn(move || check_units(hash_rx, &report))?
        };
        let mut writer = Writer {
            incomplete,
            open: HashMap::new(),
            failed: HashMap::new(),
            report,
            sync: Some(sync_tx),
            hash: Some(hash_tx),
            helpers: vec![syncer, hasher],
        };
        let thread = std::thread::Builder::new()
            .name("hazel-disk".into())
            .spawn(move || writer.run(rx))?;
        Ok(DiskWorker {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn submit(&self, job: DiskJob) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }
}

impl Drop for DiskWorker {
    fn drop(&mut self) {
        // Every queued job is done before the threads end (checkpoints too).
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The saved downloads in `incomplete` (unreadable state files are skipped,
/// and said so in the log).
pub fn load_records(incomplete: &Path) -> Vec<DownloadRecord> {
    let Ok(entries) = fs::read_dir(incomplete) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("state") {
            continue;
        }
        let read = fs::metadata(&path)
            .ok()
            .filter(|m| m.len() <= crate::core::transfers::record::MAX_RECORD_LEN as u64)
            .and_then(|_| fs::read(&path).ok());
        match read.as_deref().and_then(DownloadRecord::from_bytes) {
            Some(record) => records.push(record),
            None => log::warn!("{}: not a download state file; ignored", escape_path(&path)),
        }
    }
    records.sort_by_key(|r| r.id);
    records
}

/// An open `.part` file and how far its SHA-1 got.
struct OpenPart {
    stem: String,
    file: File,
    /// The SHA-1 of bytes `0..hashed`.
    hasher: Sha1,
    hashed: u64,
    /// Spans written (merged), to catch up the hash over bytes written
    /// ahead of it.
    written: BTreeMap<u64, u64>,
}

impl OpenPart {
    fn new(stem: String, file: File) -> OpenPart {
        OpenPart {
            stem,
            file,
            hasher: Sha1::new(),
            hashed: 0,
            written: BTreeMap::new(),
        }
    }

    /// `data` was written at `offset`: the hash goes on if it can.
    fn wrote(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset + data.len() as u64;
        self.note_written(offset, end);
        if offset < self.hashed {
            // Bytes under the hash were replaced (refetched): it starts over,
            // from the disk, when the file is checked.
            self.hasher = Sha1::new();
            self.hashed = 0;
        } else if offset == self.hashed {
            self.hasher.update(data);
            self.hashed = end;
            // What was written ahead of it follows.
            self.catch_up(u64::MAX)?;
        }
        Ok(())
    }

    fn note_written(&mut self, start: u64, end: u64) {
        let (mut start, mut end) = (start, end);
        // Merge with every span touching [start, end).
        let touching: Vec<(u64, u64)> = self
            .written
            .range(..=end)
            .rev()
            .take_while(|(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.written.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.written.insert(start, end);
    }

    /// Hashes written bytes from where the hash stands, up to `limit`.
    fn catch_up(&mut self, limit: u64) -> io::Result<()> {
        let Some((_, &end)) = self
            .written
            .range(..=self.hashed)
            .next_back()
            .filter(|(_, &e)| e > self.hashed)
        else {
            return Ok(());
        };
        let end = end.min(limit);
        let mut buffer = vec![0u8; HASH_BUFFER];
        while self.hashed < end {
            let want = ((end - self.hashed) as usize).min(buffer.len());
            self.file.read_exact_at(&mut buffer[..want], self.hashed)?;
            self.hasher.update(&buffer[..want]);
            self.hashed += want as u64;
        }
        Ok(())
    }

    /// The SHA-1 of the first `size` bytes: what is not hashed yet is read.
    fn digest(&mut self, size: u64) -> io::Result<[u8; 20]> {
        self.note_written(0, size);
        self.catch_up(size)?;
        if self.hashed != size {
            // The file holds more than the download (cannot happen: it is
            // set to the size): hash it anew.
            self.hasher = Sha1::new();
            self.hashed = 0;
            self.catch_up(size)?;
        }
        Ok(self.hasher.clone().finalize().into())
    }
}

/// Work the sync thread does, in order.
enum SyncJob {
    /// Sync the `.part` file (when given), then replace the state file with `record`.
    Checkpoint {
        download: DownloadId,
        file: Option<File>,
        part: PathBuf,
        state: PathBuf,
        record: Vec<u8>,
    },
    /// Move the `.part` file into the downloads folder.
    Finish {
        download: DownloadId,
        file: File,
        part: PathBuf,
        state: PathBuf,
        name: String,
    },
    /// The state file of a cancelled download goes (its `.part` is gone).
    Remove { state: PathBuf },
}

/// The writing thread.
struct Writer {
    incomplete: PathBuf,
    open: HashMap<DownloadId, OpenPart>,
    /// Downloads whose disk work failed (their later jobs are skipped).
    failed: HashMap<DownloadId, String>,
    report: Report,
    sync: Option<Sender<SyncJob>>,
    hash: Option<Sender<(DiskJob, File)>>,
    helpers: Vec<JoinHandle<()>>,
}

impl Writer {
    fn run(&mut self, jobs: Receiver<DiskJob>) {
        let mut unreported: HashMap<DownloadId, usize> = HashMap::new();
        for job in jobs.iter() {
            let download = job_download(&job);
            let written = match &job {
                DiskJob::Write { data, .. } => data.len(),
                _ => 0,
            };
            let skip = self.failed.contains_key(&download)
                && !matches!(job, DiskJob::Remove { .. } | DiskJob::Open { .. });
            if !skip {
                if let Err(error) = self.handle(job) {
                    self.failed.insert(download, error.clone());
                    (self.report)(DiskEvent::Failed { download, error });
                }
            }
            if written > 0 {
                *unreported.entry(download).or_default() += written;
            }
            if jobs.is_empty() || unreported.values().sum::<usize>() >= WRITTEN_BATCH {
                for (download, bytes) in unreported.drain() {
                    (self.report)(DiskEvent::Written { download, bytes });
                }
            }
        }
        for (download, bytes) in unreported.drain() {
            (self.report)(DiskEvent::Written { download, bytes });
        }
        // The queue closed: the helpers finish theirs, then what is open is synced.
        self.sync.take();
        self.hash.take();
        for helper in self.helpers.drain(..) {
            let _ = helper.join();
        }
        for part in self.open.values() {
            let _ = part.file.sync_data();
        }
    }

    fn part_path(&self, stem: &str) -> PathBuf {
        self.incomplete.join(format!("{stem}.part"))
    }

    fn state_path(&self, stem: &str) -> PathBuf {
        self.incomplete.join(format!("{stem}.state"))
    }

    fn to_sync(&self, job: SyncJob) {
        if let Some(sync) = &self.sync {
            let _ = sync.send(job);
        }
    }

    /// A handle on download `download`'s open file for another thread.
    fn share(&self, download: DownloadId, what: &str) -> Result<(&OpenPart, File), String> {
        let part = self
            .open
            .get(&download)
            .ok_or_else(|| format!("{what} before open"))?;
        let file = part
            .file
            .try_clone()
            .map_err(|e| describe(&e, &self.part_path(&part.stem)))?;
        Ok((part, file))
    }

    fn handle(&mut self, job: DiskJob) -> Result<(), String> {
        match job {
            DiskJob::Open {
                download,
                stem,
                size,
            } => {
                self.failed.remove(&download);
                fs::create_dir_all(&self.incomplete).map_err(|e| describe(&e, &self.incomplete))?;
                let path = self.part_path(&stem);
                let part = match self.open.remove(&download) {
                    Some(part) if part.stem == stem => part,
                    _ => OpenPart::new(
                        stem,
                        OpenOptions::new()
                            .read(true)
                            .write(true)
                            .create(true)
                            .truncate(false)
                            .open(&path)
                            .map_err(|e| describe(&e, &path))?,
                    ),
                };
                if let Some(size) = size {
                    let len = part.file.metadata().map_err(|e| describe(&e, &path))?.len();
                    if len != size {
                        // Sparse: nothing is allocated until written.
                        part.file.set_len(size).map_err(|e| describe(&e, &path))?;
                    }
                }
                self.open.insert(download, part);
                Ok(())
            }
            DiskJob::Write {
                download,
                offset,
                data,
            } => {
                let path = |part: &OpenPart| self.incomplete.join(format!("{}.part", part.stem));
                let part = self.open.get_mut(&download).ok_or("write before open")?;
                part.file
                    .write_all_at(&data, offset)
                    .and_then(|()| part.wrote(offset, &data))
                    .map_err(|e| describe(&e, &path(part)))
            }
            DiskJob::Checkpoint {
                download,
                record,
                sync,
            } => {
                let (part, file) = self.share(download, "checkpoint")?;
                let job = SyncJob::Checkpoint {
                    download,
                    file: sync.then_some(file),
                    part: self.part_path(&part.stem),
                    state: self.state_path(&part.stem),
                    record,
                };
                self.to_sync(job);
                Ok(())
            }
            job @ DiskJob::CheckUnit { .. } => {
                let (_, file) = self.share(job_download(&job), "check")?;
                if let Some(hash) = &self.hash {
                    let _ = hash.send((job, file));
                }
                Ok(())
            }
            DiskJob::Verify { download, sha1 } => {
                let path = |part: &OpenPart| self.incomplete.join(format!("{}.part", part.stem));
                let part = self.open.get_mut(&download).ok_or("verify before open")?;
                let size = part
                    .file
                    .metadata()
                    .map_err(|e| describe(&e, &path(part)))?
                    .len();
                let ok = part.digest(size).map_err(|e| describe(&e, &path(part)))? == sha1;
                (self.report)(DiskEvent::Verified { download, ok });
                Ok(())
            }
            DiskJob::Finish { download, name } => {
                let part = self.open.remove(&download).ok_or("finish before open")?;
                let job = SyncJob::Finish {
                    download,
                    part: self.part_path(&part.stem),
                    state: self.state_path(&part.stem),
                    file: part.file,
                    name,
                };
                self.to_sync(job);
                Ok(())
            }
            DiskJob::Remove { download } => {
                self.failed.remove(&download);
                if let Some(part) = self.open.remove(&download) {
                    drop(part.file);
                    let _ = fs::remove_file(self.part_path(&part.stem));
                    self.to_sync(SyncJob::Remove {
                        state: self.state_path(&part.stem),
                    });
                }
                Ok(())
            }
        }
    }
}

/// The sync thread: checkpoints, finishing, removing, in order.
struct Syncer {
    downloads: PathBuf,
    report: Report,
}

impl Syncer {
    fn run(&mut self, jobs: Receiver<SyncJob>) {
        for job in jobs {
            match job {
                SyncJob::Checkpoint {
                    download,
                    file,
                    part,
                    state,
                    record,
                } => {
                    // The data first: the state file may only vouch for
                    // verified bytes that are on the disk.
                    let done = file
                        .map_or(Ok(()), |f| f.sync_data())
                        .map_err(|e| describe(&e, &part))
                        .and_then(|()| {
                            replace_atomically(&state, &record).map_err(|e| describe(&e, &state))
                        });
                    if let Err(error) = done {
                        (self.report)(DiskEvent::Failed { download, error });
                    }
                }
                SyncJob::Finish {
                    download,
                    file,
                    part,
                    state,
                    name,
                } => {
                    drop(file);
                    let placed = fs::create_dir_all(&self.downloads)
                        .map_err(|e| describe(&e, &self.downloads))
                        .and_then(|()| place_without_overwriting(&part, &self.downloads, &name));
                    match placed {
                        Ok(to) => {
                            let _ = fs::remove_file(&state);
                            (self.report)(DiskEvent::Finished { download, path: to });
                        }
                        Err(error) => (self.report)(DiskEvent::Failed { download, error }),
                    }
                }
                SyncJob::Remove { state } => {
                    let _ = fs::remove_file(&state);
                }
            }
        }
    }
}

/// The hashing thread: Tiger tree units, read back from the file.
fn check_units(jobs: Receiver<(DiskJob, File)>, report: &Report) {
    for (job, file) in jobs {
        if let DiskJob::CheckUnit {
            download,
            unit,
            generation,
            offset,
            len,
            tree,
        } = job
        {
            match unit_matches(&file, &tree, unit, offset, len) {
                Ok(ok) => report(DiskEvent::UnitChecked {
                    download,
                    unit,
                    generation,
                    ok,
                }),
                Err(e) => report(DiskEvent::Failed {
                    download,
                    error: format!("reading back a written range: {e}"),
                }),
            }
        }
    }
}

fn job_download(job: &DiskJob) -> DownloadId {
    match job {
        DiskJob::Open { download, .. }
        | DiskJob::Write { download, .. }
        | DiskJob::Checkpoint { download, .. }
        | DiskJob::Verify { download, .. }
        | DiskJob::CheckUnit { download, .. }
        | DiskJob::Finish { download, .. }
        | DiskJob::Remove { download } => *download,
    }
}

/// An IO error on `path`, as a user reads it.
fn describe(e: &io::Error, path: &Path) -> String {
    let shown = escape_path(path);
    match e.raw_os_error() {
        Some(libc::ENOSPC) => format!("the disk is full (writing {shown})"),
        Some(libc::EDQUOT) => format!("over the disk quota (writing {shown})"),
        Some(libc::EROFS) => format!("{shown} is on a read-only file system"),
        Some(libc::EACCES) | Some(libc::EPERM) => {
            format!("no permission to write {shown}")
        }
        _ => format!("{shown}: {e}"),
    }
}

/// Replaces `path` with `bytes`: a temporary file, synced, renamed over it,
/// the folder synced.
fn replace_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = path.with_extension("state.tmp");
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Whether `len` bytes of `file` from `offset` are unit `unit` of `tree`,
/// read in bounded pieces.
fn unit_matches(
    file: &File,
    tree: &hazel_protocol::thex::TigerTree,
    unit: usize,
    offset: u64,
    len: u64,
) -> io::Result<bool> {
    let Some(mut hasher) = tree.node_hasher(unit) else {
        return Ok(false);
    };
    let mut buffer = vec![0u8; HASH_BUFFER.min(len as usize).max(1)];
    let mut at = offset;
    let end = offset + len;
    while at < end {
        let want = ((end - at) as usize).min(buffer.len());
        file.read_exact_at(&mut buffer[..want], at)?;
        hasher.update(&buffer[..want]);
        at += want as u64;
    }
    Ok(hasher.finish())
}

/// `name`, or `name (1).ext`, `name (2).ext`…: the first that does not exist.
pub fn candidate_names(name: &str) -> impl Iterator<Item = String> + '_ {
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    std::iter::once(name.to_string()).chain((1..).map(move |n| format!("{stem} ({n}){ext}")))
}

/// Moves `from` into `dir` under the first free variant of `name`, never
/// replacing a file: a hard link fails if the name exists (and is atomic);
/// across file systems the bytes are copied to a file created new.
fn place_without_overwriting(from: &Path, dir: &Path, name: &str) -> Result<PathBuf, String> {
    for candidate in candidate_names(name).take(10_000) {
        let to = dir.join(&candidate);
        match fs::hard_link(from, &to) {
            Ok(()) => {
                let _ = fs::remove_file(from);
                return Ok(to);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e)
                if e.raw_os_error() == Some(libc::EXDEV)
                    || e.kind() == io::ErrorKind::Unsupported =>
            {
                let mut out = match OpenOptions::new().write(true).create_new(true).open(&to) {
                    Ok(out) => out,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(describe(&e, &to)),
                };
                let mut input = File::open(from).map_err(|e| describe(&e, from))?;
                if let Err(e) = io::copy(&mut input, &mut out).and_then(|_| out.sync_all()) {
                    let _ = fs::remove_file(&to);
                    return Err(describe(&e, &to));
                }
                let _ = fs::remove_file(from);
                return Ok(to);
            }
            Err(e) => return Err(describe(&e, &to)),
        }
    }
    Err(format!("no free name for {name} in {}", escape_path(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_overwrite() {
        let names: Vec<String> = candidate_names("song.mp3").take(3).collect();
        assert_eq!(names, vec!["song.mp3", "song (1).mp3", "song (2).mp3"]);
        let names: Vec<String> = candidate_names("README").take(2).collect();
        assert_eq!(names, vec!["README", "README (1)"]);
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.part");
        fs::write(dir.path().join("x.txt"), b"old").unwrap();
        fs::write(&src, b"new").unwrap();
        let to = place_without_overwriting(&src, dir.path(), "x.txt").unwrap();
        assert_eq!(to, dir.path().join("x (1).txt"));
        assert_eq!(fs::read(dir.path().join("x.txt")).unwrap(), b"old");
        assert_eq!(fs::read(&to).unwrap(), b"new");
        assert!(!src.exists());
    }

    #[test]
    fn a_download_is_written_checkpointed_verified_and_moved() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = DiskWorker::spawn(
            dir.path().join("incomplete"),
            dir.path().join("downloads"),
            move |e| {
                let _ = tx.send(e);
            },
        )
        .unwrap();
        let data = b"hello, hazel".to_vec();
        let sha1: [u8; 20] = Sha1::digest(&data).into();
        worker.submit(DiskJob::Open {
            download: 1,
            stem: "greeting.txt".into(),
            size: Some(data.len() as u64),
        });
        worker.submit(DiskJob::Write {
            download: 1,
            offset: 7,
            data: data[7..].to_vec(),
        });
        worker.submit(DiskJob::Write {
            download: 1,
            offset: 0,
            data: data[..7].to_vec(),
        });
        worker.submit(DiskJob::Checkpoint {
            download: 1,
            record: b"{}".to_vec(),
            sync: true,
        });
        // The written bytes against their own tree, and against another's.
        for (generation, content) in [(1, &data[..]), (2, &b"hello, world"[..])] {
            worker.submit(DiskJob::CheckUnit {
                download: 1,
                unit: 0,
                generation,
                offset: 0,
                len: data.len() as u64,
                tree: std::sync::Arc::new(hazel_protocol::thex::TigerTree::of(content)),
            });
        }
        worker.submit(DiskJob::Verify { download: 1, sha1 });
        worker.submit(DiskJob::Finish {
            download: 1,
            name: "greeting.txt".into(),
        });
        let mut finished = None;
        let mut verified = None;
        let mut units = Vec::new();
        for _ in 0..10 {
            match rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap() {
                DiskEvent::Verified { ok, .. } => verified = Some(ok),
                DiskEvent::UnitChecked { generation, ok, .. } => units.push((generation, ok)),
                DiskEvent::Finished { path, .. } => {
                    finished = Some(path);
                    break;
                }
                DiskEvent::Failed { error, .. } => panic!("{error}"),
                DiskEvent::Written { .. } => {}
            }
        }
        assert_eq!(verified, Some(true));
        assert_eq!(units, [(1, true), (2, false)]);
        let path = finished.unwrap();
        assert_eq!(fs::read(&path).unwrap(), data);
        assert!(!dir.path().join("incomplete/greeting.txt.part").exists());
        assert!(!dir.path().join("incomplete/greeting.txt.state").exists());
        drop(worker);
    }

    #[test]
    fn a_read_only_folder_is_an_error_on_that_download_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("blocked");
        fs::write(&blocked, b"a file, not a folder").unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker =
            DiskWorker::spawn(blocked.join("incomplete"), dir.path().join("d"), move |e| {
                let _ = tx.send(e);
            })
            .unwrap();
        worker.submit(DiskJob::Open {
            download: 9,
            stem: "x".into(),
            size: Some(10),
        });
        worker.submit(DiskJob::Write {
            download: 9,
            offset: 0,
            data: vec![1; 10],
        });
        let first = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert!(
            matches!(first, DiskEvent::Failed { download: 9, .. }),
            "{first:?}"
        );
        let second = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(
            second,
            DiskEvent::Written {
                download: 9,
                bytes: 10
            },
            "skipped, but accounted"
        );
    }

    #[test]
    fn a_full_disk_is_an_error_on_that_download_saying_so() {
        // `/dev/full` answers every write with ENOSPC, as a full disk does:
        // the partial file is a link to it.
        if !Path::new("/dev/full").exists() {
            panic!("this test needs /dev/full");
        }
        let dir = tempfile::tempdir().unwrap();
        let incomplete = dir.path().join("incomplete");
        fs::create_dir_all(&incomplete).unwrap();
        std::os::unix::fs::symlink("/dev/full", incomplete.join("x.part")).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = DiskWorker::spawn(incomplete, dir.path().join("d"), move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        for (download, stem) in [(3, "x"), (4, "y")] {
            worker.submit(DiskJob::Open {
                download,
                stem: stem.into(),
                size: None,
            });
            worker.submit(DiskJob::Write {
                download,
                offset: 0,
                data: vec![7; 4096],
            });
        }
        let mut events = Vec::new();
        while let Ok(e) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
            events.push(e);
            if events.len() == 3 {
                break;
            }
        }
        let reason = events.iter().find_map(|e| match e {
            DiskEvent::Failed { download: 3, error } => Some(error.clone()),
            _ => None,
        });
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.contains("the disk is full")),
            "{events:?}"
        );
        // The other download is untouched by it.
        assert!(
            events.contains(&DiskEvent::Written {
                download: 4,
                bytes: 4096
            }),
            "{events:?}"
        );
        assert!(!events
            .iter()
            .any(|e| matches!(e, DiskEvent::Failed { download: 4, .. })));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the order of the writes, and whatever is written twice
        /// (a refetched range), the SHA-1 is the file's.
        #[test]
        fn the_running_hash_is_the_files_whatever_the_write_order(
            len in 1usize..300_000,
            cuts in proptest::collection::vec(0usize..300_000, 0..12),
            order_seed in 0u64..u64::MAX,
            rewrite in proptest::option::of(0usize..12),
        ) {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 + i / 977) as u8).collect();
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % len).collect();
            bounds.extend([0, len]);
            bounds.sort_unstable();
            bounds.dedup();
            let mut pieces: Vec<(usize, usize)> =
                bounds.windows(2).map(|w| (w[0], w[1])).collect();
            // A deterministic shuffle.
            let mut x = order_seed | 1;
            for i in (1..pieces.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                pieces.swap(i, (x % (i as u64 + 1)) as usize);
            }
            if let Some(again) = rewrite {
                let piece = pieces[again % pieces.len()];
                pieces.push(piece);
            }
            let dir = tempfile::tempdir().unwrap();
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.path().join("p"))
                .unwrap();
            file.set_len(len as u64).unwrap();
            let mut part = OpenPart::new("p".into(), file);
            for (a, b) in pieces {
                part.file.write_all_at(&data[a..b], a as u64).unwrap();
                part.wrote(a as u64, &data[a..b]).unwrap();
            }
            let expected: [u8; 20] = Sha1::digest(&data).into();
            proptest::prop_assert_eq!(part.digest(len as u64).unwrap(), expected);
        }
    }
}
