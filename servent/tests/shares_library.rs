//! The library thread on real temp directories: scan, background SHA-1, the cache file, rescans.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;
use data_encoding::BASE32;
use hazel_servent::core::shares::{Library, SearchCriteria};
use hazel_servent::scanner::cache::CACHE_FILE;
use hazel_servent::scanner::{sha1_of_file, LibraryConfig, LibraryScanner};

const WAIT: Duration = Duration::from_secs(20);

/// Waits (bounded) for a published library that satisfies `done`.
fn wait_for(rx: &Receiver<Arc<Library>>, done: impl Fn(&Library) -> bool) -> Arc<Library> {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(library) if done(&library) => return library,
            Ok(_) => continue,
            Err(e) => panic!("no matching library published within {WAIT:?}: {e}"),
        }
    }
}

fn fully_hashed(count: usize) -> impl Fn(&Library) -> bool {
    move |lib| lib.len() == count && lib.pending_hashes() == 0
}

fn start(share: &Path, data: &Path) -> (LibraryScanner, Receiver<Arc<Library>>) {
    let config = LibraryConfig::new(vec![share.to_path_buf()], data.to_path_buf());
    LibraryScanner::spawn_with_channel(config).expect("spawn library thread")
}

fn index_of(lib: &Library, name: &str) -> u32 {
    lib.files()
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.index)
        .unwrap_or_else(|| panic!("{name} not shared"))
}

#[test]
fn known_content_has_known_sha1() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    fs::write(share.path().join("abc.txt"), b"abc").expect("write");
    fs::write(share.path().join("empty.bin"), b"").expect("write");
    let (_scanner, rx) = start(share.path(), data.path());
    let lib = wait_for(&rx, fully_hashed(2));
    // FIPS 180-1 test vector "abc" and the digest of the empty input, as HUGE base32.
    let abc = lib
        .files()
        .iter()
        .find(|f| f.name == "abc.txt")
        .expect("abc");
    assert_eq!(
        BASE32.encode(&abc.sha1.expect("hashed")),
        "VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"
    );
    let empty = lib
        .files()
        .iter()
        .find(|f| f.name == "empty.bin")
        .expect("empty");
    assert_eq!(
        BASE32.encode(&empty.sha1.expect("hashed")),
        "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"
    );
    assert_eq!(
        sha1_of_file(&share.path().join("abc.txt")).expect("hash"),
        abc.sha1.expect("hashed")
    );
    assert_eq!(
        lib.by_sha1(&abc.sha1.expect("hashed")).map(|f| f.index),
        Some(abc.index)
    );
    assert!(abc.path.is_absolute());
}

#[test]
fn scan_is_recursive_and_searchable() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    fs::create_dir_all(share.path().join("rock/beatles")).expect("mkdir");
    fs::write(share.path().join("rock/beatles/Help!.mp3"), vec![7u8; 5000]).expect("write");
    fs::write(share.path().join("Ünïcode Song.ogg"), b"la la").expect("write");
    fs::write(share.path().join(".hidden.mp3"), b"secret").expect("write");
    let (scanner, rx) = start(share.path(), data.path());
    let lib = wait_for(&rx, fully_hashed(2));
    let hits = lib.search(&SearchCriteria::text("HELP mp3"));
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits.first().map(|f| f.rel_path.as_path()),
        Some(Path::new("rock/beatles/Help!.mp3"))
    );
    assert_eq!(lib.search(&SearchCriteria::text("ÜNÏCODE")).len(), 1);
    assert!(lib.search(&SearchCriteria::text("hidden")).is_empty());
    // 5000 + 5 bytes → 5 KiB rounded up.
    assert_eq!(lib.totals(), (2, 5));
    assert_eq!(scanner.stats().files_hashed, 2);
    assert_eq!(scanner.stats().bytes_hashed, 5005);
}

#[test]
fn rescan_picks_up_changes_and_keeps_unchanged_indexes() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    fs::write(share.path().join("stay.txt"), b"unchanged").expect("write");
    fs::write(share.path().join("edit.txt"), b"version 1").expect("write");
    fs::write(share.path().join("gone.txt"), b"to be removed").expect("write");
    let (scanner, rx) = start(share.path(), data.path());
    let first = wait_for(&rx, fully_hashed(3));
    assert_eq!(scanner.stats().files_hashed, 3);
    let stay = index_of(&first, "stay.txt");
    let edit = index_of(&first, "edit.txt");
    let gone = index_of(&first, "gone.txt");

    // Same size, other content, and a different mtime: must be re-read.
    fs::write(share.path().join("edit.txt"), b"version 2").expect("write");
    let file = fs::File::options()
        .write(true)
        .open(share.path().join("edit.txt"))
        .expect("open");
    file.set_modified(SystemTime::now() + Duration::from_secs(60))
        .expect("set mtime");
    drop(file);
    fs::remove_file(share.path().join("gone.txt")).expect("remove");
    fs::write(share.path().join("new.txt"), b"added").expect("write");
    scanner.rescan();
    let second = wait_for(&rx, |lib| {
        lib.len() == 3
            && lib.pending_hashes() == 0
            && lib.files().iter().any(|f| f.name == "new.txt")
    });
    // Exactly the changed and the added file were read again.
    assert_eq!(scanner.stats().files_hashed, 5);
    assert_eq!(index_of(&second, "stay.txt"), stay);
    let new_edit = index_of(&second, "edit.txt");
    assert_ne!(new_edit, edit, "changed content must not keep its index");
    assert!(second.get(gone).is_none());
    assert!(second.get(edit).is_none());
    let edited = second.get(new_edit).expect("edited file");
    assert_eq!(edited.sha1, Some(sha1_of_file(&edited.path).expect("hash")));

    // A rescan with nothing changed reads nothing.
    scanner.rescan();
    let deadline = Instant::now() + WAIT;
    while scanner.stats().scans < 3 {
        assert!(Instant::now() < deadline, "third scan did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(scanner.stats().files_hashed, 5);
}

#[test]
fn restart_reuses_the_cache_and_survives_corruption() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    for i in 0..5 {
        fs::write(
            share.path().join(format!("file{i}.dat")),
            vec![i as u8; 1000 * i],
        )
        .expect("write");
    }
    let indexes = {
        let (scanner, rx) = start(share.path(), data.path());
        let lib = wait_for(&rx, fully_hashed(5));
        assert_eq!(scanner.stats().files_hashed, 5);
        scanner.shutdown();
        lib.files()
            .iter()
            .map(|f| (f.name.clone(), f.index, f.sha1))
            .collect::<Vec<_>>()
    };
    assert!(data.path().join(CACHE_FILE).exists());

    // Restart: nothing is read again, and indexes survive.
    {
        let (scanner, rx) = start(share.path(), data.path());
        let lib = wait_for(&rx, fully_hashed(5));
        assert_eq!(scanner.stats().files_hashed, 0);
        assert_eq!(scanner.stats().cache_hits, 5);
        let again: Vec<_> = lib
            .files()
            .iter()
            .map(|f| (f.name.clone(), f.index, f.sha1))
            .collect();
        assert_eq!(again, indexes);
    }

    // A corrupt cache is tolerated: everything is hashed again and the file rewritten.
    fs::write(data.path().join(CACHE_FILE), b"\x00\x01garbage\nmore").expect("write");
    {
        let (scanner, rx) = start(share.path(), data.path());
        let lib = wait_for(&rx, fully_hashed(5));
        assert_eq!(scanner.stats().files_hashed, 5);
        let digests: Vec<_> = lib
            .files()
            .iter()
            .map(|f| (f.name.clone(), f.sha1))
            .collect();
        let expected: Vec<_> = indexes.iter().map(|(n, _, s)| (n.clone(), *s)).collect();
        assert_eq!(digests, expected);
        scanner.shutdown();
    }
    let text = fs::read_to_string(data.path().join(CACHE_FILE)).expect("cache file");
    assert!(text.starts_with("hazel-sha1-cache 2\n"));
    assert_eq!(text.lines().count(), 6);
}

#[test]
fn data_dir_inside_a_share_is_not_shared() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = share.path().join("state");
    fs::create_dir_all(&data).expect("mkdir");
    fs::write(share.path().join("song.mp3"), b"tune").expect("write");
    let (scanner, rx) = start(share.path(), &data);
    let lib = wait_for(&rx, fully_hashed(1));
    scanner.shutdown();
    assert!(data.join(CACHE_FILE).exists());
    assert_eq!(
        lib.files().first().map(|f| f.name.as_str()),
        Some("song.mp3")
    );
    // A rescan after the cache file exists still shares only the song.
    let (scanner, rx) = start(share.path(), &data);
    let lib = wait_for(&rx, fully_hashed(1));
    assert_eq!(scanner.stats().cache_hits, 1);
    assert_eq!(lib.len(), 1);
}

#[test]
fn upload_serves_the_requested_bytes_of_a_scanned_file() {
    use hazel_servent::core::shares::upload::{
        UploadConfig, UploadPoll, UploadSession, UploadSlots,
    };
    use hazel_servent::scanner::{open_span, Confinement};
    use std::io::Read;

    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(share.path().join("Some File.bin"), &content).expect("write");
    let (_scanner, rx) = start(share.path(), data.path());
    let lib = wait_for(&rx, fully_hashed(1));
    let index = index_of(&lib, "Some File.bin");

    let mut slots = UploadSlots::new(2);
    let mut session = UploadSession::new(UploadConfig::default());
    session.on_bytes(
        format!("GET /get/{index}/Some%20File.bin HTTP/1.1\r\nRange: bytes=1000-1999\r\n\r\n")
            .as_bytes(),
    );
    let UploadPoll::Respond(reply) = session.poll(&lib, &mut slots) else {
        panic!("reply expected");
    };
    assert_eq!(reply.status, 206);
    let span = reply.body.expect("a body");
    let confinement = Confinement::within(&[share.path().to_path_buf()]);
    let mut file = open_span(&span, &confinement).expect("open span");
    let mut sent = vec![0u8; usize::try_from(span.len).expect("small")];
    file.read_exact(&mut sent).expect("read span");
    assert_eq!(sent, content[1000..2000]);

    // Once the file changes on disk, the span is refused rather than sending other bytes.
    fs::write(share.path().join("Some File.bin"), b"short").expect("rewrite");
    let err = open_span(&span, &confinement).expect_err("changed file must be refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn hashing_progress_is_published_step_by_step() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    for i in 0..6 {
        fs::write(
            share.path().join(format!("track {i}.mp3")),
            vec![i as u8; 3000],
        )
        .expect("write");
    }
    let mut config =
        LibraryConfig::new(vec![share.path().to_path_buf()], data.path().to_path_buf());
    config.publish_interval = Duration::ZERO;
    let (scanner, rx) = LibraryScanner::spawn_with_channel(config).expect("spawn");
    let mut pending_seen = Vec::new();
    let last = wait_for(&rx, |lib| {
        // Every step lists every file and stays searchable while hashes arrive.
        assert_eq!(lib.len(), 6);
        assert_eq!(lib.search(&SearchCriteria::text("TRACK mp3")).len(), 6);
        true
    });
    pending_seen.push(last.pending_hashes());
    while pending_seen.last() != Some(&0) {
        let lib = wait_for(&rx, |_| true);
        assert_eq!(lib.len(), 6);
        assert_eq!(lib.search(&SearchCriteria::text("track")).len(), 6);
        pending_seen.push(lib.pending_hashes());
    }
    // The first library comes right after the walk, then one per hashed file.
    assert_eq!(pending_seen, vec![6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(scanner.stats().published, 7);
}

#[test]
fn file_changed_after_the_walk_is_rehashed_with_a_new_index() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    let path = share.path().join("growing.log");
    fs::write(&path, b"first version").expect("write");
    let config = LibraryConfig::new(vec![share.path().to_path_buf()], data.path().to_path_buf());
    let (tx, rx) = crossbeam_channel::unbounded();
    let writer_path = path.clone();
    // The callback runs on the library thread between the walk and the hashing: changing the
    // file there makes the hasher find a different size than the walk saw.
    let mut rewritten = false;
    let scanner = LibraryScanner::spawn(config, move |lib| {
        if !rewritten && lib.pending_hashes() == 1 {
            fs::write(&writer_path, b"second, longer version").expect("rewrite");
            rewritten = true;
        }
        let _ = tx.send(lib);
    })
    .expect("spawn");
    let first = wait_for(&rx, |lib| lib.len() == 1);
    let walked_index = index_of(&first, "growing.log");
    let done = wait_for(&rx, fully_hashed(1));
    let file = done.files().first().expect("the file is still shared");
    assert_eq!(file.size, b"second, longer version".len() as u64);
    assert_eq!(file.sha1, Some(sha1_of_file(&path).expect("hash")));
    assert_ne!(file.index, walked_index, "new content, new index");
    assert_eq!(scanner.stats().files_hashed, 1);
}
