//! What the library looks like to a Napster index, worked out off the event
//! loop: each file's Napster md5 (of its first 300 KiB, as real clients send
//! it), and for MP3 files the bitrate, sample rate and play length from the
//! frame headers (the `mp3-metadata` crate reads them).
//!
//! A thread takes each new library, reads what it has not read before
//! (files are remembered by path, size and mtime), and hands back the whole
//! list of [`IndexShare`]s.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use md5::{Digest, Md5};

use crate::core::napster::IndexShare;
use crate::core::shares::{Library, SharedFile};

/// The part of a file the Napster md5 covers.
pub const MD5_SPAN: u64 = 300 * 1024;

/// What the frame headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mp3Info {
    pub bitrate: u32,
    pub frequency: u32,
    pub length: u32,
}

/// Reads an MP3's first frames from `head` (the file's start) and works
/// out its play length from `size` at that bitrate. None when `head` holds
/// fewer than a few frames in a row (not an MP3, or a damaged one).
pub fn mp3_info(head: &[u8], size: u64) -> Option<Mp3Info> {
    // The parser is a third party's: a file that trips it must not take the
    // servent down.
    let meta = std::panic::catch_unwind(|| mp3_metadata::read_from_slice(head))
        .ok()?
        .ok()?;
    let frames = &meta.frames;
    if frames.len() < 3 {
        return None;
    }
    let first = frames.first()?;
    let bitrate = u32::from(first.bitrate);
    let frequency = u32::from(first.sampling_freq);
    if bitrate == 0 || frequency == 0 {
        return None;
    }
    let length = size.saturating_mul(8) / (u64::from(bitrate) * 1000);
    Some(Mp3Info {
        bitrate,
        frequency,
        length: u32::try_from(length).unwrap_or(u32::MAX),
    })
}

/// The md5 of `head` as lower-case hex.
pub fn napster_md5(head: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Md5::digest(head))
}

/// The name a file is shared under: the shared folder's own name, then
/// the file's path below it, with `\` between the parts (as Napster
/// clients on every system do; they share whole paths such as
/// `C:\Music\song.mp3`, and clients such as TekNap find the file name
/// after the last `\`, showing nothing for a name without one). The
/// folder's name stands for the rest of its path, which stays private.
/// None for a name the protocol cannot carry (a `"`).
pub fn share_name(file: &SharedFile) -> Option<Vec<u8>> {
    let depth = file.rel_path.components().count();
    let folder = file
        .path
        .ancestors()
        .nth(depth)
        .and_then(Path::file_name)
        .map_or_else(
            || "shared".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
    let parts: Vec<String> = std::iter::once(folder)
        .chain(
            file.rel_path
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned()),
        )
        .collect();
    let name = parts.join("\\");
    (depth > 0 && !name.contains('"')).then(|| name.into_bytes())
}

/// What one file gave (kept while its path, size and mtime stay).
#[derive(Clone)]
struct Read_ {
    md5: String,
    mp3: Option<Mp3Info>,
}

fn read_file(file: &SharedFile) -> Option<Read_> {
    let mut head = Vec::new();
    std::fs::File::open(&file.path)
        .ok()?
        .take(MD5_SPAN)
        .read_to_end(&mut head)
        .ok()?;
    let is_mp3 = file
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp3"));
    Some(Read_ {
        md5: napster_md5(&head),
        mp3: if is_mp3 {
            mp3_info(&head, file.size)
        } else {
            None
        },
    })
}

/// The thread that reads files for the index.
pub struct IndexSharesWorker {
    libraries: Sender<Arc<Library>>,
}

impl IndexSharesWorker {
    /// Starts the thread; each list it makes goes to `done`.
    pub fn spawn(
        done: impl Fn(Vec<IndexShare>) + Send + 'static,
    ) -> std::io::Result<IndexSharesWorker> {
        let (tx, rx): (Sender<Arc<Library>>, Receiver<Arc<Library>>) =
            crossbeam_channel::bounded(4);
        std::thread::Builder::new()
            .name("index-shares".into())
            .spawn(move || {
                let mut cache: HashMap<(PathBuf, u64, SystemTime), Read_> = HashMap::new();
                while let Ok(mut library) = rx.recv() {
                    // Only the newest library matters.
                    while let Ok(newer) = rx.try_recv() {
                        library = newer;
                    }
                    let mut seen = std::collections::HashSet::new();
                    let mut shares = Vec::with_capacity(library.len());
                    let mut fresh = HashMap::with_capacity(library.len());
                    for file in library.files() {
                        let Some(name) = share_name(file) else {
                            continue;
                        };
                        if !seen.insert(name.clone()) {
                            continue;
                        }
                        let key = (file.path.clone(), file.size, file.mtime);
                        let read = match cache.remove(&key) {
                            Some(read) => read,
                            None => match read_file(file) {
                                Some(read) => read,
                                None => continue,
                            },
                        };
                        let mp3 = read.mp3.unwrap_or_default();
                        shares.push(IndexShare {
                            index: file.index,
                            name,
                            md5: read.md5.clone(),
                            size: file.size,
                            bitrate: mp3.bitrate,
                            frequency: mp3.frequency,
                            length: mp3.length,
                        });
                        fresh.insert(key, read);
                    }
                    cache = fresh;
                    done(shares);
                }
            })?;
        Ok(IndexSharesWorker { libraries: tx })
    }

    /// Hands a new library over (the oldest waiting one is dropped when the
    /// thread is behind).
    pub fn update(&self, library: Arc<Library>) {
        if let Err(crossbeam_channel::TrySendError::Full(library)) =
            self.libraries.try_send(library)
        {
            // The thread takes the newest anyway; wait for room once.
            let _ = self
                .libraries
                .send_timeout(library, std::time::Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One MPEG-1 Layer III frame header at 128 kbit/s, 44.1 kHz, no
    /// padding, followed by the rest of its 417-byte frame.
    fn frame() -> Vec<u8> {
        let mut f = vec![0xFF, 0xFB, 0x90, 0x00];
        f.resize(417, 0);
        f
    }

    #[test]
    fn frame_headers_give_bitrate_frequency_and_length() {
        let mut file = Vec::new();
        for _ in 0..20 {
            file.extend(frame());
        }
        let size = 1_600_000; // 100 s at 128 kbit/s
        let info = mp3_info(&file, size).unwrap();
        assert_eq!(
            info,
            Mp3Info {
                bitrate: 128,
                frequency: 44100,
                length: 100
            }
        );
    }

    #[test]
    fn what_is_not_an_mp3_gives_nothing() {
        assert_eq!(mp3_info(b"just some text, no frames", 25), None);
        assert_eq!(mp3_info(&[], 0), None);
        // One stray sync word is not a stream.
        let mut one = frame();
        one.truncate(100);
        assert_eq!(mp3_info(&one, 100), None);
    }

    #[test]
    fn the_md5_is_lower_case_hex_of_the_bytes_given() {
        assert_eq!(napster_md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(napster_md5(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn names_are_the_folder_then_the_path_with_backslashes_and_refuse_quotes() {
        let file = |path: &str, rel: &str| SharedFile {
            index: 1,
            name: String::new(),
            rel_path: PathBuf::from(rel),
            path: PathBuf::from(path),
            size: 1,
            mtime: SystemTime::UNIX_EPOCH,
            sha1: None,
            tiger: None,
        };
        assert_eq!(
            share_name(&file(
                "/home/u/Music/jazz/live/take 1.mp3",
                "jazz/live/take 1.mp3"
            ))
            .unwrap(),
            b"Music\\jazz\\live\\take 1.mp3".to_vec()
        );
        // A file at the top of its folder still has a folder before it.
        assert_eq!(
            share_name(&file("/srv/share/song.mp3", "song.mp3")).unwrap(),
            b"share\\song.mp3".to_vec()
        );
        assert_eq!(share_name(&file("/say \"hi\".mp3", "say \"hi\".mp3")), None);
    }
}
