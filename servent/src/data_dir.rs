//! The servent's data directory: where its files live and how they are written.
//!
//! Files are replaced atomically (write a temporary file, fsync it, rename it
//! over the old one, fsync the directory) so a crash or a kill at any moment
//! leaves either the old or the new content, never a torn file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File name of the saved host cache.
pub const HOST_CACHE_FILE: &str = "hosts";
/// File name holding the bound listening address, written at start.
pub const PORT_FILE: &str = "port";
/// File name of the servent id (32 hex digits), made once and kept.
pub const SERVENT_ID_FILE: &str = "servent-id";
/// The control socket's file name.
pub const CONTROL_SOCKET: &str = "control.sock";

/// The data directory of one servent.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens the directory, creating it (and its parents) if missing.
    pub fn open(root: &Path) -> io::Result<DataDir> {
        fs::create_dir_all(root)?;
        Ok(DataDir {
            root: root.to_path_buf(),
        })
    }

    /// Where the directory is.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Replaces the file `name` with `bytes` atomically.
    pub fn save_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let target = self.path(name);
        let temp = self.path(&format!(".{name}.tmp.{}", std::process::id()));
        let result = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temp, &target)?;
            // Make the rename itself durable.
            fs::File::open(&self.root)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// The content of the file `name`, or `None` when it does not exist.
    pub fn load(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_the_directory_and_replaces_files_whole() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(&temp.path().join("a/b")).unwrap();
        assert!(dir.root().is_dir());
        assert_eq!(dir.load(HOST_CACHE_FILE).unwrap(), None);
        dir.save_atomic(HOST_CACHE_FILE, b"1.2.3.4:6346\n").unwrap();
        dir.save_atomic(HOST_CACHE_FILE, b"5.6.7.8:6346\n").unwrap();
        assert_eq!(
            dir.load(HOST_CACHE_FILE).unwrap().as_deref(),
            Some(&b"5.6.7.8:6346\n"[..])
        );
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(HOST_CACHE_FILE)]);
    }
}
