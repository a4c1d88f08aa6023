//! The upload state machine: request bytes in, response heads and file spans out.

use std::path::PathBuf;
use std::time::{Instant, UNIX_EPOCH};

use data_encoding::BASE32;
use hazel_servent::core::shares::mesh::Mesh;
use hazel_servent::core::shares::upload::{
    FileSpan, ProxyVerdict, PushProxyAsk, Serving, SpanSource, UploadConfig, UploadPoll,
    UploadReply, UploadSession, UploadSlots,
};
use hazel_servent::core::shares::{Library, SharedFile};

const SHA1: [u8; 20] = [0x11; 20];

fn library() -> Library {
    Library::new(vec![
        SharedFile {
            index: 5,
            name: "Song One.mp3".into(),
            rel_path: PathBuf::from("Song One.mp3"),
            path: PathBuf::from("/srv/music/Song One.mp3"),
            size: 1000,
            mtime: UNIX_EPOCH,
            sha1: Some(SHA1),
            tiger: None,
        },
        SharedFile {
            index: 6,
            name: "empty.txt".into(),
            rel_path: PathBuf::from("empty.txt"),
            path: PathBuf::from("/srv/music/empty.txt"),
            size: 0,
            mtime: UNIX_EPOCH,
            sha1: None,
            tiger: None,
        },
    ])
}

fn config() -> UploadConfig {
    UploadConfig {
        server: "Hazel/test".into(),
        retry_after_secs: 30,
    }
}

/// Feeds a whole request to a fresh session and returns the reply.
fn answer(request: &[u8], slots: &mut UploadSlots) -> (UploadSession, UploadReply) {
    let mut session = UploadSession::new(config());
    session.on_bytes(request);
    match session.poll(&library(), slots) {
        UploadPoll::Respond(reply) => (session, reply),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn head(reply: &UploadReply) -> String {
    String::from_utf8(reply.head.clone()).expect("ASCII head")
}

fn span(offset: u64, len: u64) -> Option<FileSpan> {
    Some(FileSpan {
        index: 5,
        source: SpanSource::SharedFile,
        path: PathBuf::from("/srv/music/Song One.mp3"),
        offset,
        len,
        expected_size: 1000,
        expected_mtime: UNIX_EPOCH,
    })
}

fn urn() -> String {
    format!("urn:sha1:{}", BASE32.encode(&SHA1))
}

#[test]
fn whole_file_by_index_and_name() {
    let mut slots = UploadSlots::new(4);
    let (_, reply) = answer(
        b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\nHost: x\r\n\r\n",
        &mut slots,
    );
    assert_eq!(
        head(&reply),
        format!(
            "HTTP/1.1 200 OK\r\nServer: Hazel/test\r\nConnection: Keep-Alive\r\n\
             Content-Type: application/binary\r\nAccept-Ranges: bytes\r\nContent-Length: 1000\r\n\
             X-Gnutella-Content-URN: {}\r\n\r\n",
            urn()
        )
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, span(0, 1000));
    assert!(reply.keep_alive);
    assert_eq!(slots.active(), 1);
}

#[test]
fn bearshare_style_request_with_raw_spaces_and_open_range() {
    let mut slots = UploadSlots::new(4);
    let request =
        b"GET /get/5/Song One.mp3 HTTP/1.0\nUser-Agent: BearShare 2.2.6\nReferrer: Gnutella\n\
                    Connection: Keep-Alive\nRange: bytes=0-\n\n";
    let (_, reply) = answer(request, &mut slots);
    assert_eq!(reply.status, 206);
    let text = head(&reply);
    assert!(
        text.starts_with("HTTP/1.1 206 Partial Content\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nContent-Range: bytes 0-999/1000\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nContent-Length: 1000\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: Keep-Alive\r\n"), "{text}");
    assert_eq!(reply.body, span(0, 1000));
}

#[test]
fn range_forms() {
    let cases: [(&str, u64, u64, &str); 4] = [
        ("bytes=100-199", 100, 100, "bytes 100-199/1000"),
        ("bytes=990-", 990, 10, "bytes 990-999/1000"),
        ("bytes=-10", 990, 10, "bytes 990-999/1000"),
        // A last byte past the end is clipped to the file.
        ("bytes=900-5000", 900, 100, "bytes 900-999/1000"),
    ];
    for (range, offset, len, content_range) in cases {
        let mut slots = UploadSlots::new(4);
        let request = format!("GET /get/5/Song%20One.mp3 HTTP/1.1\r\nRange: {range}\r\n\r\n");
        let (_, reply) = answer(request.as_bytes(), &mut slots);
        let text = head(&reply);
        assert_eq!(reply.status, 206, "{range}");
        assert!(
            text.contains(&format!("\r\nContent-Range: {content_range}\r\n")),
            "{range}: {text}"
        );
        assert!(
            text.contains(&format!("\r\nContent-Length: {len}\r\n")),
            "{range}: {text}"
        );
        assert_eq!(reply.body, span(offset, len), "{range}");
    }
}

#[test]
fn unsatisfiable_range_is_416_and_bad_range_is_ignored() {
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let mut slots = UploadSlots::new(4);
        let request = format!("GET /get/5/Song%20One.mp3 HTTP/1.1\r\nRange: {range}\r\n\r\n");
        let (_, reply) = answer(request.as_bytes(), &mut slots);
        assert_eq!(reply.status, 416, "{range}");
        let text = head(&reply);
        assert!(
            text.starts_with("HTTP/1.1 416 Range Not Satisfiable\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\nContent-Range: bytes */1000\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nContent-Length: 0\r\n"), "{text}");
        assert_eq!(reply.body, None);
        assert_eq!(slots.active(), 0, "a 416 takes no slot");
    }
    for range in ["lines=1-2", "bytes=5-1", "bytes=0-1,5-6"] {
        let mut slots = UploadSlots::new(4);
        let request = format!("GET /get/5/Song%20One.mp3 HTTP/1.1\r\nRange: {range}\r\n\r\n");
        let (_, reply) = answer(request.as_bytes(), &mut slots);
        assert_eq!(reply.status, 200, "{range}");
        assert_eq!(reply.body, span(0, 1000), "{range}");
    }
}

#[test]
fn head_has_length_but_no_body() {
    let mut slots = UploadSlots::new(1);
    let (_, reply) = answer(b"HEAD /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 200);
    assert!(head(&reply).contains("\r\nContent-Length: 1000\r\n"));
    assert_eq!(reply.body, None);
    assert_eq!(slots.active(), 0);
}

#[test]
fn by_sha1_urn() {
    let mut slots = UploadSlots::new(4);
    let request = format!("GET /uri-res/N2R?{} HTTP/1.1\r\n\r\n", urn());
    let (_, reply) = answer(request.as_bytes(), &mut slots);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, span(0, 1000));
    let unknown = format!(
        "GET /uri-res/N2R?urn:sha1:{} HTTP/1.1\r\n\r\n",
        BASE32.encode(&[0x22; 20])
    );
    let (_, reply) = answer(unknown.as_bytes(), &mut slots);
    assert_eq!(reply.status, 404);
}

#[test]
fn not_found_for_mismatch_and_traversal() {
    let targets = [
        "/get/7/Song%20One.mp3",
        "/get/5/Other.mp3",
        "/get/5/song%20one.mp3",
        "/get/5/../../../etc/passwd",
        "/get/5/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/get/5/Song%20One.mp3/../../../etc/passwd",
        "/etc/passwd",
        "/../srv/music/Song%20One.mp3",
        "/srv/music/Song%20One.mp3",
        "/get/6/Song%20One.mp3",
    ];
    for target in targets {
        let mut slots = UploadSlots::new(4);
        let request = format!("GET {target} HTTP/1.1\r\n\r\n");
        let (_, reply) = answer(request.as_bytes(), &mut slots);
        assert_eq!(reply.status, 404, "{target}");
        assert!(
            head(&reply).starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{target}"
        );
        assert!(
            head(&reply).contains("\r\nContent-Length: 0\r\n"),
            "{target}"
        );
        assert_eq!(reply.body, None, "{target}");
    }
}

#[test]
fn plus_for_space_is_accepted_but_other_names_are_not() {
    let mut slots = UploadSlots::new(4);
    let (_, reply) = answer(b"GET /get/5/Song+One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 200);
    let (_, reply) = answer(b"GET /get/5/Song+One.mp4 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 404);
    let (_, reply) = answer(b"GET /get/5/Song+One.mp3x HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 404);
}

#[test]
fn trailing_slash_form_and_empty_file() {
    let mut slots = UploadSlots::new(4);
    let (_, reply) = answer(b"GET /get/5/Song%20One.mp3/ HTTP/1.0\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 200);
    assert!(!reply.keep_alive, "HTTP/1.0 without Keep-Alive closes");
    assert!(head(&reply).contains("\r\nConnection: close\r\n"));
    let (_, reply) = answer(b"GET /get/6/empty.txt HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 200);
    assert!(head(&reply).contains("\r\nContent-Length: 0\r\n"));
    assert!(
        !head(&reply).contains("X-Gnutella-Content-URN"),
        "not hashed yet"
    );
    assert_eq!(reply.body, None);
}

#[test]
fn busy_when_all_slots_are_taken() {
    let mut slots = UploadSlots::new(1);
    let lib = library();
    let (mut first, reply) = answer(b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 200);
    assert!(slots.all_taken());
    assert!(!slots.have_uploaded());

    let (_, busy) = answer(b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(
        head(&busy),
        "HTTP/1.1 503 Service Unavailable\r\nServer: Hazel/test\r\nConnection: close\r\n\
         Retry-After: 30\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(!busy.keep_alive);
    // A HEAD needs no slot.
    let (_, head_reply) = answer(b"HEAD /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(head_reply.status, 200);

    first.reply_sent(&mut slots);
    assert!(!slots.all_taken());
    assert!(slots.have_uploaded());
    assert_eq!(first.poll(&lib, &mut slots), UploadPoll::NeedMore);
    let (_, again) = answer(b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(again.status, 200);
}

#[test]
fn closing_mid_body_releases_the_slot() {
    let mut slots = UploadSlots::new(1);
    let (mut session, _) = answer(b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(slots.active(), 1);
    session.on_close(&mut slots);
    assert_eq!(slots.active(), 0);
    assert!(!slots.have_uploaded());
    assert_eq!(session.poll(&library(), &mut slots), UploadPoll::Close);
}

#[test]
fn flood_during_a_reply_closes_and_still_releases_the_slot() {
    let mut slots = UploadSlots::new(1);
    let (mut session, reply) = answer(b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert!(reply.body.is_some());
    for _ in 0..64 {
        session.on_bytes(&[b'x'; 1024]);
    }
    assert_eq!(session.poll(&library(), &mut slots), UploadPoll::Close);
    session.on_close(&mut slots);
    assert_eq!(slots.active(), 0);
}

#[test]
fn pipelined_requests_wait_for_the_previous_reply() {
    let lib = library();
    let mut slots = UploadSlots::new(4);
    let mut session = UploadSession::new(config());
    session.on_bytes(
        b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n\
          HEAD /get/5/Song%20One.mp3 HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let UploadPoll::Respond(first) = session.poll(&lib, &mut slots) else {
        panic!("first reply expected");
    };
    assert_eq!(first.body, span(0, 10));
    assert_eq!(session.poll(&lib, &mut slots), UploadPoll::NeedMore);
    session.reply_sent(&mut slots);
    let UploadPoll::Respond(second) = session.poll(&lib, &mut slots) else {
        panic!("second reply expected");
    };
    assert_eq!(second.status, 200);
    assert!(!second.keep_alive);
    session.reply_sent(&mut slots);
    assert_eq!(session.poll(&lib, &mut slots), UploadPoll::Close);
    assert_eq!(session.requests(), 2);
}

#[test]
fn request_split_anywhere_needs_more_until_complete() {
    let lib = library();
    let request = b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\nRange: bytes=-10\r\n\r\n";
    let mut slots = UploadSlots::new(4);
    let mut session = UploadSession::new(config());
    for (i, byte) in request.iter().enumerate() {
        session.on_bytes(&[*byte]);
        let poll = session.poll(&lib, &mut slots);
        if i + 1 < request.len() {
            assert_eq!(poll, UploadPoll::NeedMore, "after {} bytes", i + 1);
        } else {
            let UploadPoll::Respond(reply) = poll else {
                panic!("reply expected at the end");
            };
            assert_eq!(reply.body, span(990, 10));
        }
    }
}

#[test]
fn a_second_keep_alive_request_dribbled_after_the_first_is_answered() {
    let lib = library();
    let mut slots = UploadSlots::new(4);
    let mut session = UploadSession::new(config());
    session
        .on_bytes(b"HEAD /get/5/Song%20One.mp3 HTTP/1.1\r\nUser-Agent: a long header line\r\n\r\n");
    let UploadPoll::Respond(first) = session.poll(&lib, &mut slots) else {
        panic!("first reply expected");
    };
    assert!(first.keep_alive);
    session.reply_sent(&mut slots);
    let second = b"GET /get/5/Song%20One.mp3 HTTP/1.1\r\nRange: bytes=0-0\r\n\r\n";
    for (i, byte) in second.iter().enumerate() {
        session.on_bytes(std::slice::from_ref(byte));
        let poll = session.poll(&lib, &mut slots);
        if i + 1 < second.len() {
            assert_eq!(poll, UploadPoll::NeedMore, "after {} bytes", i + 1);
        } else {
            let UploadPoll::Respond(reply) = poll else {
                panic!("second reply expected at the end");
            };
            assert_eq!(reply.body, span(0, 1));
        }
    }
    assert_eq!(session.requests(), 2);
}

#[test]
fn garbage_gets_400_then_close_and_floods_are_cut() {
    let lib = library();
    let mut slots = UploadSlots::new(4);
    let (mut session, reply) = answer(b"GET\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 400);
    assert!(!reply.keep_alive);
    session.reply_sent(&mut slots);
    assert_eq!(session.poll(&lib, &mut slots), UploadPoll::Close);

    let (_, reply) = answer(b"POST /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n", &mut slots);
    assert_eq!(reply.status, 501);

    let mut flood = UploadSession::new(config());
    let mut polls = 0;
    for _ in 0..100 {
        flood.on_bytes(&[b'A'; 1024]);
        polls += 1;
        match flood.poll(&lib, &mut slots) {
            UploadPoll::NeedMore => continue,
            UploadPoll::Respond(reply) => {
                assert_eq!(reply.status, 400);
                break;
            }
            UploadPoll::Close => break,
        }
    }
    assert!(
        polls < 100,
        "a head without end must not be buffered forever"
    );
}

// ---- THEX: /uri-res/N2X and X-Thex-URI ----

const TREE_SHA1: [u8; 20] = [0x33; 20];
const TREE_SIZE: u64 = 200_000;

fn tiger() -> [u8; 24] {
    hazel_protocol::thex::root_of(b"stand-in root")
}

/// A library with one file whose tree is stored (under /data/thex) and one still being hashed.
fn tree_library() -> Library {
    let file = |index: u32, name: &str, sha1: [u8; 20], tiger: Option<[u8; 24]>| SharedFile {
        index,
        name: name.into(),
        rel_path: PathBuf::from(name),
        path: PathBuf::from("/srv/music").join(name),
        size: TREE_SIZE,
        mtime: UNIX_EPOCH,
        sha1: Some(sha1),
        tiger,
    };
    Library::new(vec![
        file(7, "tree.bin", TREE_SHA1, Some(tiger())),
        file(8, "pending.bin", [0x44; 20], None),
    ])
    .with_thex_dir(PathBuf::from("/data/thex"))
}

fn answer_in(lib: &Library, request: &[u8], slots: &mut UploadSlots) -> UploadReply {
    let mut session = UploadSession::new(config());
    session.on_bytes(request);
    match session.poll(lib, slots) {
        UploadPoll::Respond(reply) => reply,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn tree_len() -> u64 {
    hazel_protocol::thex::dime::message_len(TREE_SIZE, hazel_protocol::thex::kept_depth(TREE_SIZE))
        .unwrap()
}

#[test]
fn n2x_serves_the_stored_tree_without_a_slot() {
    let lib = tree_library();
    // No slot free at all: the tree is still served (it takes none).
    let mut slots = UploadSlots::new(0);
    let b32 = BASE32.encode(&TREE_SHA1);
    let reply = answer_in(
        &lib,
        format!("GET /uri-res/N2X?urn:sha1:{b32} HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n").as_bytes(),
        &mut slots,
    );
    assert_eq!(
        head(&reply),
        format!(
            "HTTP/1.1 200 OK\r\nServer: Hazel/test\r\nConnection: Keep-Alive\r\n\
             Content-Type: application/dime\r\nContent-Length: {}\r\n\
             X-Gnutella-Content-URN: urn:sha1:{b32}\r\n\r\n",
            tree_len()
        ),
        "a Range is ignored: the whole tree, 200"
    );
    assert_eq!(
        reply.body,
        Some(FileSpan {
            index: 7,
            source: SpanSource::TigerTree,
            path: PathBuf::from(format!("/data/thex/{b32}.dime")),
            offset: 0,
            len: tree_len(),
            expected_size: tree_len(),
            expected_mtime: UNIX_EPOCH,
        })
    );
    assert_eq!(slots.active(), 0);

    // HEAD: the same head, no body.
    let reply = answer_in(
        &lib,
        format!("HEAD /uri-res/N2X?urn:sha1:{b32} HTTP/1.1\r\n\r\n").as_bytes(),
        &mut slots,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, None);
    assert!(head(&reply).contains(&format!("Content-Length: {}\r\n", tree_len())));
}

#[test]
fn n2x_by_bitprint_must_name_our_root() {
    let lib = tree_library();
    let mut slots = UploadSlots::new(1);
    let ours = hazel_protocol::huge::bitprint_urn(&TREE_SHA1, &tiger());
    let reply = answer_in(
        &lib,
        format!("GET /uri-res/N2X?{ours} HTTP/1.1\r\n\r\n").as_bytes(),
        &mut slots,
    );
    assert_eq!(reply.status, 200);
    let other =
        hazel_protocol::huge::bitprint_urn(&TREE_SHA1, &hazel_protocol::thex::root_of(b"x"));
    let reply = answer_in(
        &lib,
        format!("GET /uri-res/N2X?{other} HTTP/1.1\r\n\r\n").as_bytes(),
        &mut slots,
    );
    assert_eq!(reply.status, 404);
    assert!(reply.keep_alive);
    // An unknown SHA-1, and a malformed urn.
    for target in [
        format!("/uri-res/N2X?urn:sha1:{}", BASE32.encode(&[0x99; 20])),
        "/uri-res/N2X?urn:sha1:NOTBASE32".to_string(),
    ] {
        let reply = answer_in(
            &lib,
            format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes(),
            &mut slots,
        );
        assert_eq!(reply.status, 404, "{target}");
        assert_eq!(reply.body, None);
    }
}

#[test]
fn n2x_while_the_tree_is_computed_says_retry() {
    let lib = tree_library();
    let mut slots = UploadSlots::new(1);
    let reply = answer_in(
        &lib,
        format!(
            "GET /uri-res/N2X?urn:sha1:{} HTTP/1.1\r\n\r\n",
            BASE32.encode(&[0x44; 20])
        )
        .as_bytes(),
        &mut slots,
    );
    assert_eq!(reply.status, 503);
    assert!(
        head(&reply).contains("Retry-After: 30\r\n"),
        "{}",
        head(&reply)
    );
    assert_eq!(reply.body, None);
    assert!(
        reply.keep_alive,
        "a 503 for a tree does not end the connection"
    );
    // Without a tree directory no tree is ever announced or served.
    let bare = Library::new(
        tree_library()
            .files()
            .iter()
            .map(|f| (**f).clone())
            .collect(),
    );
    let reply = answer_in(
        &bare,
        format!(
            "GET /uri-res/N2X?urn:sha1:{} HTTP/1.1\r\n\r\n",
            BASE32.encode(&TREE_SHA1)
        )
        .as_bytes(),
        &mut slots,
    );
    assert_eq!(reply.status, 503);
    let reply = answer_in(&bare, b"HEAD /get/7/tree.bin HTTP/1.1\r\n\r\n", &mut slots);
    assert!(!head(&reply).contains("X-Thex-URI"), "{}", head(&reply));
}

#[test]
fn file_replies_name_the_tree_as_gtk_gnutella_does() {
    let lib = tree_library();
    let mut slots = UploadSlots::new(2);
    let b32 = BASE32.encode(&TREE_SHA1);
    let root = hazel_protocol::thex::tiger_base32(&tiger());
    for request in [
        "GET /get/7/tree.bin HTTP/1.1\r\n\r\n".to_string(),
        format!("GET /uri-res/N2R?urn:sha1:{b32} HTTP/1.1\r\nRange: bytes=5-9\r\n\r\n"),
        "HEAD /get/7/tree.bin HTTP/1.1\r\n\r\n".to_string(),
    ] {
        let reply = answer_in(&lib, request.as_bytes(), &mut slots);
        let text = head(&reply);
        assert!(
            text.contains(&format!(
                "\r\nX-Thex-URI: /uri-res/N2X?urn:sha1:{b32};{root}\r\n"
            )),
            "{request}: {text}"
        );
    }
    // The file still hashing has no X-Thex-URI.
    let reply = answer_in(
        &lib,
        b"HEAD /get/8/pending.bin HTTP/1.1\r\n\r\n",
        &mut slots,
    );
    assert!(!head(&reply).contains("X-Thex-URI"), "{}", head(&reply));
    // The header reads back as the protocol crate's ThexUri.
    let reply = answer_in(&lib, b"HEAD /get/7/tree.bin HTTP/1.1\r\n\r\n", &mut slots);
    let text = head(&reply);
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("X-Thex-URI: "))
        .expect("X-Thex-URI");
    let uri = hazel_protocol::thex::ThexUri::parse(value.as_bytes()).expect("parses");
    assert_eq!(uri.root, Some(tiger()));
    assert_eq!(
        hazel_protocol::http::Resource::from_target(&uri.uri),
        hazel_protocol::http::Resource::Tree {
            sha1: TREE_SHA1,
            tiger: None
        }
    );
}

/// Feeds a request to a fresh session with a mesh; the reply's head.
fn answer_meshed(request: &str, slots: &mut UploadSlots, mesh: &mut Mesh) -> String {
    let mut session = UploadSession::new(config());
    session.on_bytes(request.as_bytes());
    let mut relay = |_: PushProxyAsk| ProxyVerdict::NotProxied;
    let mut serving = Serving {
        mesh,
        relay: &mut relay,
        now: Instant::now(),
    };
    match session.poll_with(&library(), slots, &mut serving) {
        UploadPoll::Respond(reply) => head(&reply),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn x_alt(head: &str) -> Option<&str> {
    head.split("\r\n")
        .find_map(|line| line.strip_prefix("X-Alt: "))
}

#[test]
fn locations_one_downloader_names_are_passed_to_the_next_and_on_a_503() {
    let mut mesh = Mesh::new();
    let mut slots = UploadSlots::new(4);
    // The first downloader names two other sources (both mesh header forms).
    let first = answer_meshed(
        &format!(
            "GET /uri-res/N2R?{} HTTP/1.1\r\nX-Node: 10.0.0.9:6346\r\nX-Alt: 10.0.0.1:7000, 10.0.0.2\r\n\
             X-Gnutella-Alternate-Location: http://10.0.0.3:6348/uri-res/N2R?{}\r\n\r\n",
            urn(),
            urn()
        ),
        &mut slots,
        &mut mesh,
    );
    assert_eq!(x_alt(&first), None, "nothing known before: {first}");
    // The next one hears of them, but never of itself.
    let second = answer_meshed(
        "GET /get/5/Song%20One.mp3 HTTP/1.1\r\nX-Node: 10.0.0.2:6346\r\n\r\n",
        &mut slots,
        &mut mesh,
    );
    let named = x_alt(&second).expect("an X-Alt");
    let mut named: Vec<&str> = named.split(", ").collect();
    named.sort();
    assert_eq!(named, ["10.0.0.1:7000", "10.0.0.3:6348"], "{second}");
    // Busy: the 503 names them too, so the downloader goes there meanwhile.
    let mut full = UploadSlots::new(0);
    let busy = answer_meshed(
        "GET /get/5/Song%20One.mp3 HTTP/1.1\r\n\r\n",
        &mut full,
        &mut mesh,
    );
    assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
    assert_eq!(
        x_alt(&busy).map(|v| v.split(", ").count()),
        Some(3),
        "{busy}"
    );
    // A file without a SHA-1 has no mesh.
    let plain = answer_meshed(
        "GET /get/6/empty.txt HTTP/1.1\r\nX-Alt: 10.0.0.7\r\n\r\n",
        &mut slots,
        &mut mesh,
    );
    assert_eq!(x_alt(&plain), None, "{plain}");
}
