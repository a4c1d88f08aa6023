//! The downloads' disk work, on a thread of its own so the event loop never
//! waits for a disk: `.part` files written at their offsets, synced before
//! each state file that vouches for them, hashed when complete, moved into
//! the downloads folder under a name that overwrites nothing, removed when
//! cancelled. Jobs come in order (per download, the order the core asked);
//! what happened goes back as [`DiskEvent`]s.
//!
//! Layout: `DATA-DIR/incomplete/<stem>.part` and `<stem>.state` (see
//! `core::transfers::record`), finished files in the downloads folder.
//! A full disk or a folder that cannot be written is an error on that
//! download (one [`DiskEvent::Failed`]), never a crash.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
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

/// The disk worker's handle.
pub struct DiskWorker {
    jobs: Option<Sender<DiskJob>>,
    thread: Option<JoinHandle<()>>,
}

impl DiskWorker {
    /// Starts the worker; `report` is called (on the worker's thread) with
    /// each event.
    pub fn spawn(
        incomplete: PathBuf,
        downloads: PathBuf,
        report: impl FnMut(DiskEvent) + Send + 'static,
    ) -> io::Result<DiskWorker> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut worker = Worker {
            incomplete,
            downloads,
            open: HashMap::new(),
            failed: HashMap::new(),
            report: Box::new(report),
        };
        let thread = std::thread::Builder::new()
            .name("hazel-disk".into())
            .spawn(move || worker.run(rx))?;
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
        // Every queued job is done before the thread ends (checkpoints too).
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

struct OpenPart {
    stem: String,
    file: File,
}

struct Worker {
    incomplete: PathBuf,
    downloads: PathBuf,
    open: HashMap<DownloadId, OpenPart>,
    /// Downloads whose disk work failed (their later jobs are skipped).
    failed: HashMap<DownloadId, String>,
    report: Box<dyn FnMut(DiskEvent) + Send>,
}

impl Worker {
    fn run(&mut self, jobs: Receiver<DiskJob>) {
        for job in jobs {
            let download = job_download(&job);
            let written = match &job {
                DiskJob::Write { data, .. } => data.len(),
                _ => 0,
            };
            if self.failed.contains_key(&download)
                && !matches!(job, DiskJob::Remove { .. } | DiskJob::Open { .. })
            {
                if written > 0 {
                    (self.report)(DiskEvent::Written {
                        download,
                        bytes: written,
                    });
                }
                continue;
            }
            if let Err(error) = self.handle(job) {
                self.failed.insert(download, error.clone());
                (self.report)(DiskEvent::Failed { download, error });
            }
            if written > 0 {
                (self.report)(DiskEvent::Written {
                    download,
                    bytes: written,
                });
            }
        }
        // The channel closed: sync what is open.
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
                let file = match self.open.remove(&download) {
                    Some(part) if part.stem == stem => part.file,
                    _ => OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&path)
                        .map_err(|e| describe(&e, &path))?,
                };
                if let Some(size) = size {
                    let len = file.metadata().map_err(|e| describe(&e, &path))?.len();
                    if len != size {
                        // Sparse: nothing is allocated until written.
                        file.set_len(size).map_err(|e| describe(&e, &path))?;
                    }
                }
                self.open.insert(download, OpenPart { stem, file });
                Ok(())
            }
            DiskJob::Write {
                download,
                offset,
                data,
            } => {
                let part = self.open.get(&download).ok_or("write before open")?;
                part.file
                    .write_all_at(&data, offset)
                    .map_err(|e| describe(&e, &self.part_path(&part.stem)))
            }
            DiskJob::Checkpoint { download, record } => {
                let part = self.open.get(&download).ok_or("checkpoint before open")?;
                let path = self.part_path(&part.stem);
                // The data first: the state file may only vouch for synced bytes.
                part.file.sync_data().map_err(|e| describe(&e, &path))?;
                let state = self.state_path(&part.stem);
                replace_atomically(&state, &record).map_err(|e| describe(&e, &state))
            }
            DiskJob::CheckUnit {
                download,
                unit,
                generation,
                offset,
                len,
                tree,
            } => {
                let part = self.open.get(&download).ok_or("check before open")?;
                let path = self.part_path(&part.stem);
                let ok = unit_matches(&part.file, &tree, unit, offset, len)
                    .map_err(|e| describe(&e, &path))?;
                (self.report)(DiskEvent::UnitChecked {
                    download,
                    unit,
                    generation,
                    ok,
                });
                Ok(())
            }
            DiskJob::Verify { download, sha1 } => {
                let part = self.open.get(&download).ok_or("verify before open")?;
                let path = self.part_path(&part.stem);
                let ok = sha1_of(&path).map_err(|e| describe(&e, &path))? == sha1;
                (self.report)(DiskEvent::Verified { download, ok });
                Ok(())
            }
            DiskJob::Finish { download, name } => {
                let part = self.open.remove(&download).ok_or("finish before open")?;
                let _ = part.file.sync_all();
                drop(part.file);
                let from = self.part_path(&part.stem);
                fs::create_dir_all(&self.downloads).map_err(|e| describe(&e, &self.downloads))?;
                let to = place_without_overwriting(&from, &self.downloads, &name)?;
                let _ = fs::remove_file(self.state_path(&part.stem));
                (self.report)(DiskEvent::Finished { download, path: to });
                Ok(())
            }
            DiskJob::Remove { download } => {
                self.failed.remove(&download);
                if let Some(part) = self.open.remove(&download) {
                    drop(part.file);
                    let _ = fs::remove_file(self.part_path(&part.stem));
                    let _ = fs::remove_file(self.state_path(&part.stem));
                }
                Ok(())
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

/// The SHA-1 of a file, read in bounded pieces.
fn sha1_of(path: &Path) -> io::Result<[u8; 20]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha1::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
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
}
