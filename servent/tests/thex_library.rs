//! Tiger trees in the library thread: each shared file gets its root and a stored THEX tree in the
//! same read as its SHA-1; a restart reuses both; an old (SHA-1 only) cache or a lost tree file
//! costs one read of the file; trees nobody shares any more are removed; the upload session
//! serves the stored tree.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use data_encoding::BASE32;
use hazel_protocol::thex::{root_of, tiger_base32, TigerTree};
use hazel_servent::core::shares::upload::{
    SpanSource, UploadConfig, UploadPoll, UploadSession, UploadSlots,
};
use hazel_servent::core::shares::{tree_file_name, Library, SharedFile};
use hazel_servent::scanner::cache::CACHE_FILE;
use hazel_servent::scanner::{
    hashes_of_file, open_span, Confinement, LibraryConfig, LibraryScanner, THEX_DIR,
};

const WAIT: Duration = Duration::from_secs(30);

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

/// Every file has its SHA-1 and its Tiger root.
fn all_trees(count: usize) -> impl Fn(&Library) -> bool {
    move |lib| lib.len() == count && lib.files().iter().all(|f| f.tiger.is_some())
}

fn start(share: &Path, data: &Path) -> (LibraryScanner, Receiver<Arc<Library>>) {
    let config = LibraryConfig::new(vec![share.to_path_buf()], data.to_path_buf());
    LibraryScanner::spawn_with_channel(config).expect("spawn library thread")
}

fn file<'a>(lib: &'a Library, name: &str) -> &'a SharedFile {
    lib.files()
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} not shared"))
}

fn tree_path(data: &Path, sha1: &[u8; 20]) -> std::path::PathBuf {
    data.join(THEX_DIR).join(tree_file_name(sha1))
}

fn contents() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty.bin", Vec::new()),
        ("small.txt", b"hello tiger".to_vec()),
        (
            "song.mp3",
            (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        ),
    ]
}

#[test]
fn shared_files_get_their_root_and_a_stored_tree_and_a_restart_reuses_them() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    for (name, content) in contents() {
        fs::write(share.path().join(name), content).expect("write");
    }
    let (scanner, rx) = start(share.path(), data.path());
    let lib = wait_for(&rx, all_trees(3));
    assert_eq!(scanner.stats().files_hashed, 3, "one read per file");
    scanner.shutdown();

    let mut stored = Vec::new();
    for (name, content) in contents() {
        let f = file(&lib, name);
        let root = root_of(&content);
        assert_eq!(f.tiger, Some(root), "{name}: the root of its content");
        let sha1 = f.sha1.expect("sha1");
        let path = tree_path(data.path(), &sha1);
        let bytes = fs::read(&path).expect("tree file stored");
        let tree = TigerTree::decode_dime(&bytes, &root, content.len() as u64)
            .unwrap_or_else(|e| panic!("{name}: stored tree does not decode: {e}"));
        for unit in 0..tree.unit_count() {
            let span = tree.span(unit).expect("span");
            assert!(tree.verify(unit, &content[span.start as usize..span.end as usize]));
        }
        assert_eq!(
            lib.tree_file(f).map(|t| t.len),
            Some(bytes.len() as u64),
            "{name}: the library announces the stored length"
        );
        // The same as hashing the file on its own.
        let (sha1_again, tree_again) = hashes_of_file(&share.path().join(name)).expect("hash");
        assert_eq!((sha1_again, &tree_again), (sha1, &tree));
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        stored.push((path, mtime));
    }
    // The 700 000-byte file keeps 64 KiB units.
    let song = file(&lib, "song.mp3");
    let song_tree = TigerTree::decode_dime(
        &fs::read(tree_path(data.path(), &song.sha1.unwrap())).unwrap(),
        &song.tiger.unwrap(),
        song.size,
    )
    .unwrap();
    assert_eq!((song_tree.unit(), song_tree.unit_count()), (65536, 11));
    // The cache line has the root, bitprint-style.
    let cache = fs::read_to_string(data.path().join(CACHE_FILE)).expect("cache");
    let line = format!(
        "{}.{}\t",
        BASE32.encode(&song.sha1.unwrap()),
        tiger_base32(&song.tiger.unwrap())
    );
    assert!(cache.contains(&line), "{cache}");

    // Restart: nothing is read, the roots come back, the tree files are untouched.
    let (scanner, rx) = start(share.path(), data.path());
    let again = wait_for(&rx, all_trees(3));
    assert_eq!(scanner.stats().files_hashed, 0);
    assert_eq!(scanner.stats().cache_hits, 3);
    for (name, _) in contents() {
        assert_eq!(file(&again, name).tiger, file(&lib, name).tiger);
    }
    scanner.shutdown();
    for (path, mtime) in stored {
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    }
}

#[test]
fn old_cache_and_lost_trees_cost_one_read_and_unused_trees_go() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    for (name, content) in contents() {
        fs::write(share.path().join(name), content).expect("write");
    }
    let (scanner, rx) = start(share.path(), data.path());
    let lib = wait_for(&rx, all_trees(3));
    scanner.shutdown();
    let song = file(&lib, "song.mp3").clone();

    // A version 1 cache (SHA-1 only): the SHA-1s and indexes are there at once, the roots come
    // after one read of each file.
    let cache = fs::read_to_string(data.path().join(CACHE_FILE)).expect("cache");
    let v1: String = cache
        .replacen("hazel-sha1-cache 2", "hazel-sha1-cache 1", 1)
        .lines()
        .map(|l| match l.split_once('\t') {
            Some((hashes, rest)) => format!("{}\t{rest}\n", &hashes[..32]),
            None => format!("{l}\n"),
        })
        .collect();
    fs::write(data.path().join(CACHE_FILE), &v1).expect("write v1 cache");
    let (scanner, rx) = start(share.path(), data.path());
    let first = wait_for(&rx, |l| l.len() == 3);
    assert_eq!(first.pending_hashes(), 0, "SHA-1s from the old cache");
    assert_eq!(file(&first, "song.mp3").index, song.index);
    let later = wait_for(&rx, all_trees(3));
    assert_eq!(file(&later, "song.mp3").tiger, song.tiger);
    assert_eq!(scanner.stats().files_hashed, 3);
    scanner.shutdown();

    // A lost (or cut) tree file: that file alone is read again, and its tree is back.
    let song_tree = tree_path(data.path(), &song.sha1.unwrap());
    let whole = fs::read(&song_tree).unwrap();
    fs::write(&song_tree, &whole[..whole.len() - 24]).unwrap();
    let (scanner, rx) = start(share.path(), data.path());
    let lib = wait_for(&rx, all_trees(3));
    assert_eq!(scanner.stats().files_hashed, 1);
    assert_eq!(fs::read(&song_tree).unwrap(), whole);
    assert_eq!(file(&lib, "song.mp3").tiger, song.tiger);

    // A file no longer shared: its tree is removed after the next pass; files that are not
    // trees of ours are left alone.
    let stranger = data.path().join(THEX_DIR).join("notes.txt");
    fs::write(&stranger, b"mine").unwrap();
    fs::write(
        data.path()
            .join(THEX_DIR)
            .join(format!("{}.tmp", tree_file_name(&[1; 20]))),
        b"x",
    )
    .unwrap();
    fs::remove_file(share.path().join("song.mp3")).unwrap();
    scanner.rescan();
    wait_for(&rx, all_trees(2));
    let deadline = Instant::now() + WAIT;
    while song_tree.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    scanner.shutdown();
    assert!(!song_tree.exists(), "the unused tree is removed");
    let left: Vec<String> = fs::read_dir(data.path().join(THEX_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&"notes.txt".to_string()), "{left:?}");
    assert!(left.iter().all(|n| !n.ends_with(".tmp")), "{left:?}");
}

#[test]
fn the_upload_session_serves_the_stored_tree() {
    let share = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(share.path().join("a.bin"), &content).expect("write");
    let (_scanner, rx) = start(share.path(), data.path());
    let lib = wait_for(&rx, all_trees(1));
    let f = file(&lib, "a.bin");
    let (sha1, root) = (f.sha1.unwrap(), f.tiger.unwrap());

    let mut slots = UploadSlots::new(1);
    let mut session = UploadSession::new(UploadConfig::default());
    session.on_bytes(
        format!(
            "GET /uri-res/N2X?urn:sha1:{} HTTP/1.1\r\n\r\n",
            BASE32.encode(&sha1)
        )
        .as_bytes(),
    );
    let UploadPoll::Respond(reply) = session.poll(&lib, &mut slots) else {
        panic!("reply expected");
    };
    assert_eq!(reply.status, 200);
    let span = reply.body.expect("the tree as body");
    assert_eq!(span.source, SpanSource::TigerTree);
    assert_eq!(slots.active(), 0, "a tree takes no upload slot");
    // The tree file lies outside the shares: the span is still served.
    let confinement = Confinement::within(&[share.path().to_path_buf()]);
    let mut opened = open_span(&span, &confinement).expect("open the tree");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut opened, &mut bytes).unwrap();
    assert_eq!(bytes.len() as u64, span.len);
    let head = String::from_utf8(reply.head).unwrap();
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", bytes.len())),
        "{head}"
    );
    let tree = TigerTree::decode_dime(&bytes, &root_of(&content), content.len() as u64)
        .expect("the served tree");
    assert_eq!(tree.root(), root);
    session.reply_sent(&mut slots);
    assert_eq!(slots.active(), 0);

    // A tree file of another length than announced is refused, like a changed shared file.
    fs::write(&span.path, &bytes[..bytes.len() - 1]).unwrap();
    let err = open_span(&span, &confinement).expect_err("a cut tree must be refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}
