//! Walking the share directories: every regular, readable file below each root.
//!
//! Policy:
//! - Symbolic links are followed (to files and directories) only while they lead to somewhere
//!   inside a shared folder: by default a link whose target's canonical path lies outside every
//!   share is not shared (a link to `/etc/passwd` dropped into a share must not publish it);
//!   [`ScanOptions::follow_links_out`] (`--follow-links-out`) lifts that. Uploads check it again on the
//!   file they open ([`Confinement::allows`]). A directory already visited (same device and inode)
//!   is skipped, which breaks symlink loops and overlapping shares. A file reached twice (hard
//!   link, symlink, overlapping roots) is listed once.
//! - Hidden entries (names starting with `.`) are skipped unless `include_hidden` is set; the
//!   share roots themselves are always walked.
//! - Only regular files are shared (no FIFOs, sockets or devices). A file that cannot be opened
//!   for reading, a broken symlink or an unreadable directory is logged and skipped.
//! - Directories listed in `exclude` (the data directory) are never walked, so Hazel never shares
//!   its own cache and state files.

use hazel_protocol::text::escape_path;
use std::collections::HashSet;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A file found by the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    /// The path as reached from the share root (symlinks not resolved).
    pub path: PathBuf,
    /// The path relative to its share root.
    pub rel_path: PathBuf,
    /// The last path component, lossily UTF-8.
    pub name: String,
    pub size: u64,
    pub mtime: SystemTime,
}

/// Options of a walk.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub include_hidden: bool,
    /// Directories never walked (compared by device and inode).
    pub exclude: Vec<PathBuf>,
    /// Share what links inside a share point to outside every share (default: no).
    pub follow_links_out: bool,
}

/// Where shared files may really live: inside the canonical share roots, or anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// Canonical roots; `None` means anywhere.
    roots: Option<Vec<PathBuf>>,
}

impl Confinement {
    /// Files must lie inside `shares` (resolved to canonical paths; a share that does not
    /// resolve confines nothing to it).
    pub fn within(shares: &[PathBuf]) -> Confinement {
        let roots = shares
            .iter()
            .filter_map(|p| fs::canonicalize(p).ok())
            .collect();
        Confinement { roots: Some(roots) }
    }

    /// Links out of the shares are followed (`--follow-links-out`).
    pub fn anywhere() -> Confinement {
        Confinement { roots: None }
    }

    /// Whether a file whose canonical path is `real` may be shared.
    pub fn allows(&self, real: &Path) -> bool {
        match &self.roots {
            None => true,
            Some(roots) => roots.iter().any(|root| real.starts_with(root)),
        }
    }

    /// Whether the file or directory at `path` (any spelling, links allowed) may be shared.
    pub fn allows_path(&self, path: &Path) -> bool {
        self.roots.is_none() || fs::canonicalize(path).is_ok_and(|real| self.allows(&real))
    }
}

/// Walks every root and returns the files found, in a deterministic order (sorted by path).
pub fn scan(roots: &[PathBuf], options: &ScanOptions) -> Vec<ScannedFile> {
    let excluded: HashSet<(u64, u64)> = options
        .exclude
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let confinement = if options.follow_links_out {
        Confinement::anywhere()
    } else {
        Confinement::within(roots)
    };
    let mut visited_dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut seen_files: HashSet<(u64, u64)> = HashSet::new();
    let mut out = Vec::new();
    for root in roots {
        let root_meta = match fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("share {}: {e}; skipped", escape_path(root));
                continue;
            }
        };
        if !root_meta.is_dir() {
            log::warn!("share {}: not a directory; skipped", escape_path(root));
            continue;
        }
        let root_id = (root_meta.dev(), root_meta.ino());
        if excluded.contains(&root_id) || !visited_dirs.insert(root_id) {
            continue;
        }
        // An explicit stack instead of recursion: deep trees cannot overflow the thread's stack.
        let mut stack: Vec<PathBuf> = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) => {
                    log::warn!("{}: {e}; directory skipped", escape_path(&dir));
                    continue;
                }
            };
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        log::warn!("{}: {e}; entry skipped", escape_path(&dir));
                        continue;
                    }
                };
                let file_name = entry.file_name();
                if !options.include_hidden && file_name.as_encoded_bytes().first() == Some(&b'.') {
                    continue;
                }
                let path = entry.path();
                let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
                if is_link && !confinement.allows_path(&path) {
                    log::info!(
                        "{}: a link to outside the shared folders; not shared \
                         (--follow-links-out shares such links)",
                        escape_path(&path)
                    );
                    continue;
                }
                // `fs::metadata` follows symlinks: a link is shared as what it points to.
                let meta = match fs::metadata(&path) {
                    Ok(meta) => meta,
                    Err(e) => {
                        log::warn!("{}: {e}; skipped", escape_path(&path));
                        continue;
                    }
                };
                let id = (meta.dev(), meta.ino());
                if meta.is_dir() {
                    if excluded.contains(&id) {
                        continue;
                    }
                    if visited_dirs.insert(id) {
                        stack.push(path);
                    } else {
                        log::debug!("{}: directory already walked; skipped", escape_path(&path));
                    }
                } else if meta.is_file() {
                    if !seen_files.insert(id) {
                        continue;
                    }
                    if let Err(e) = File::open(&path) {
                        log::warn!("{}: {e}; not shared", escape_path(&path));
                        continue;
                    }
                    let rel_path = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                    out.push(ScannedFile {
                        name: file_name.to_string_lossy().into_owned(),
                        rel_path,
                        path,
                        size: meta.len(),
                        mtime: meta.modified().unwrap_or(UNIX_EPOCH),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn names(files: &[ScannedFile]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.rel_path.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn recursive_walk_with_hidden_policy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).expect("mkdir");
        fs::create_dir_all(root.join(".hidden")).expect("mkdir");
        fs::write(root.join("top.mp3"), b"1").expect("write");
        fs::write(root.join("a/b/deep.ogg"), b"22").expect("write");
        fs::write(root.join(".secret"), b"x").expect("write");
        fs::write(root.join(".hidden/inside.txt"), b"x").expect("write");
        let files = scan(&[root.to_path_buf()], &ScanOptions::default());
        assert_eq!(names(&files), vec!["a/b/deep.ogg", "top.mp3"]);
        assert_eq!(files.first().map(|f| f.size), Some(2));
        assert_eq!(files.first().map(|f| f.name.as_str()), Some("deep.ogg"));
        let all = scan(
            &[root.to_path_buf()],
            &ScanOptions {
                include_hidden: true,
                ..ScanOptions::default()
            },
        );
        assert_eq!(
            names(&all),
            vec![".hidden/inside.txt", ".secret", "a/b/deep.ogg", "top.mp3"]
        );
    }

    #[test]
    fn symlink_loops_and_duplicates_are_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::create_dir_all(root.join("d")).expect("mkdir");
        fs::write(root.join("d/song.mp3"), b"abc").expect("write");
        symlink(root, root.join("d/loop")).expect("symlink");
        symlink(root.join("d/song.mp3"), root.join("alias.mp3")).expect("symlink");
        symlink(root.join("missing"), root.join("broken.mp3")).expect("symlink");
        let files = scan(&[root.to_path_buf()], &ScanOptions::default());
        // One of the two names of the file, never both, and the loop ends.
        assert_eq!(files.len(), 1, "{:?}", names(&files));
    }

    #[test]
    fn excluded_dir_and_special_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::create_dir_all(root.join("data")).expect("mkdir");
        fs::write(root.join("data/sha1-cache"), b"x").expect("write");
        fs::write(root.join("kept.txt"), b"x").expect("write");
        let fifo = root.join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path; mkfifo does not keep the pointer.
        let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
        assert_eq!(rc, 0, "mkfifo failed");
        let files = scan(
            &[root.to_path_buf()],
            &ScanOptions {
                include_hidden: false,
                exclude: vec![root.join("data")],
                follow_links_out: false,
            },
        );
        assert_eq!(names(&files), vec!["kept.txt"]);
    }

    #[test]
    fn links_out_of_the_share_are_shared_only_when_asked() {
        let outside = tempfile::tempdir().expect("temp dir");
        fs::write(outside.path().join("secret"), b"s").expect("write");
        fs::create_dir(outside.path().join("dir")).expect("mkdir");
        fs::write(outside.path().join("dir/deep"), b"d").expect("write");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::write(root.join("mine"), b"m").expect("write");
        symlink(outside.path().join("secret"), root.join("link-file")).expect("symlink");
        symlink(outside.path().join("dir"), root.join("link-dir")).expect("symlink");
        symlink(root.join("mine"), root.join("link-inside")).expect("symlink");
        let confined = scan(&[root.to_path_buf()], &ScanOptions::default());
        assert_eq!(names(&confined).len(), 1, "{:?}", names(&confined));
        let open = scan(
            &[root.to_path_buf()],
            &ScanOptions {
                follow_links_out: true,
                ..ScanOptions::default()
            },
        );
        assert_eq!(
            names(&open),
            vec!["link-dir/deep", "link-file", "mine"],
            "with --follow-links-out (the inside link and its target are one file)"
        );
        let c = Confinement::within(&[root.to_path_buf()]);
        assert!(c.allows_path(&root.join("mine")));
        assert!(!c.allows_path(&root.join("link-file")));
        assert!(Confinement::anywhere().allows_path(&root.join("link-file")));
    }

    /// Runs `f` on a thread whose file-system user is `nobody` when this
    /// process is root (a raw `setfsuid` changes only the calling thread, and
    /// drops the capabilities that let root read any file), so permission
    /// checks apply to it as to any user. Returns what `f` returned.
    fn as_unprivileged<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            // SAFETY: geteuid has no preconditions; the raw setfsuid syscall
            // only changes this thread's file-system uid.
            unsafe {
                if libc::geteuid() == 0 {
                    libc::syscall(libc::SYS_setfsuid, 65534);
                }
            }
            f()
        })
        .join()
        .expect("the unprivileged thread")
    }

    #[test]
    fn unreadable_file_is_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        // Everyone may walk the folder and read `open.txt`; nobody may read
        // `locked.txt` (root included, on the unprivileged thread).
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::write(root.join("open.txt"), b"x").expect("write");
        fs::set_permissions(root.join("open.txt"), fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let locked = root.join("locked.txt");
        fs::write(&locked, b"x").expect("write");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
        let (readable, files, missing) = as_unprivileged(move || {
            let readable = File::open(root.join("locked.txt")).is_ok();
            let files = scan(std::slice::from_ref(&root), &ScanOptions::default());
            let missing = scan(&[root.join("nope")], &ScanOptions::default());
            (readable, files, missing)
        });
        assert!(!readable, "the locked file must be unreadable here");
        assert_eq!(names(&files), vec!["open.txt"]);
        assert!(missing.is_empty());
    }
}
