//! The upload state machine fed the real BearShare 2.2.6 requests of the 2001 capture
//! (`ppa1e-bearshare-get-2001.expected.jsonl`): raw spaces in the path, `Referrer`, HTTP/1.0
//! keep-alive, `Range: bytes=N-`, and a request split over two TCP segments.
//!
//! The traces are found at `$HAZEL_TRACES` or `../shared/traces` from the workspace root.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use hazel_protocol::traces;
use hazel_servent::core::shares::upload::{UploadConfig, UploadPoll, UploadSession, UploadSlots};
use hazel_servent::core::shares::{Library, SharedFile};

struct CapturedRequest {
    segments: Vec<Vec<u8>>,
    index: u32,
    name: String,
    range_start: u64,
}

fn captured_requests() -> Vec<CapturedRequest> {
    let text = String::from_utf8(traces::read("ppa1e-bearshare-get-2001.expected.jsonl"))
        .expect("trace file is UTF-8");
    let mut out = Vec::new();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        if record["kind"] != "http_request" {
            continue;
        }
        let raw = data_encoding::HEXLOWER
            .decode(record["raw_hex"].as_str().expect("raw_hex").as_bytes())
            .expect("hex");
        let mut segments = Vec::new();
        let mut at = 0usize;
        for len in record["segment_lengths"]
            .as_array()
            .expect("segment lengths")
        {
            let len = usize::try_from(len.as_u64().expect("length")).expect("small");
            segments.push(raw[at..at + len].to_vec());
            at += len;
        }
        assert_eq!(at, raw.len(), "segments cover the request");
        // "GET /get/<index>/<name> HTTP/1.0": the file the library must hold.
        let first_line = record["first_line"].as_str().expect("first line");
        let target = first_line
            .strip_prefix("GET /get/")
            .and_then(|t| t.strip_suffix(" HTTP/1.0"))
            .expect("a /get/ request");
        let (index, name) = target.split_once('/').expect("index/name");
        let range = record["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .find(|h| h[0] == "Range")
            .and_then(|h| h[1].as_str())
            .expect("a Range header");
        let range_start = range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse().ok())
            .expect("bytes=N-");
        out.push(CapturedRequest {
            segments,
            index: index.parse().expect("index"),
            name: name.to_owned(),
            range_start,
        });
    }
    out
}

const SIZE: u64 = 3_000_000;

fn library_for(requests: &[CapturedRequest]) -> Library {
    let mut files: Vec<SharedFile> = requests
        .iter()
        .map(|r| SharedFile {
            index: r.index,
            name: r.name.clone(),
            rel_path: PathBuf::from(&r.name),
            path: PathBuf::from("/shared").join(&r.name),
            size: SIZE,
            mtime: UNIX_EPOCH,
            sha1: None,
            tiger: None,
        })
        .collect();
    files.dedup_by_key(|f| f.index);
    Library::new(files)
}

#[test]
fn captured_bearshare_requests_get_206_from_their_offset() {
    let requests = captured_requests();
    assert_eq!(requests.len(), 5, "the capture holds 5 requests");
    assert!(
        requests.iter().any(|r| r.segments.len() == 2),
        "one request arrives in two segments"
    );
    let library = library_for(&requests);
    let mut slots = UploadSlots::new(4);
    for request in &requests {
        let mut session = UploadSession::new(UploadConfig::default());
        let last = request.segments.len() - 1;
        for (n, segment) in request.segments.iter().enumerate() {
            session.on_bytes(segment);
            let poll = session.poll(&library, &mut slots);
            if n < last {
                assert_eq!(
                    poll,
                    UploadPoll::NeedMore,
                    "{}: partial request",
                    request.name
                );
                continue;
            }
            let UploadPoll::Respond(reply) = poll else {
                panic!("{}: no reply", request.name);
            };
            let head = String::from_utf8(reply.head.clone()).expect("ASCII");
            assert_eq!(reply.status, 206, "{head}");
            let start = request.range_start;
            assert!(
                head.contains(&format!(
                    "\r\nContent-Range: bytes {start}-{}/{SIZE}\r\n",
                    SIZE - 1
                )),
                "{head}"
            );
            assert!(
                head.contains(&format!("\r\nContent-Length: {}\r\n", SIZE - start)),
                "{head}"
            );
            assert!(head.contains("\r\nConnection: Keep-Alive\r\n"), "{head}");
            assert!(reply.keep_alive, "BearShare asked for Keep-Alive");
            let body = reply.body.expect("a body");
            assert_eq!(
                (body.index, body.offset, body.len),
                (request.index, start, SIZE - start)
            );
            session.reply_sent(&mut slots);
            assert_eq!(session.poll(&library, &mut slots), UploadPoll::NeedMore);
        }
    }
    assert_eq!(slots.active(), 0);
}

#[test]
fn captured_requests_get_503_when_busy_and_404_when_not_shared() {
    let requests = captured_requests();
    let library = library_for(&requests);
    let mut no_slots = UploadSlots::new(0);
    let mut slots = UploadSlots::new(4);
    for request in &requests {
        let bytes: Vec<u8> = request.segments.concat();
        let mut session = UploadSession::new(UploadConfig::default());
        session.on_bytes(&bytes);
        let UploadPoll::Respond(busy) = session.poll(&library, &mut no_slots) else {
            panic!("no reply");
        };
        assert_eq!(busy.status, 503);
        let head = String::from_utf8(busy.head).expect("ASCII");
        assert!(head.contains("\r\nRetry-After: "), "{head}");

        let mut session = UploadSession::new(UploadConfig::default());
        session.on_bytes(&bytes);
        let UploadPoll::Respond(missing) = session.poll(&Library::empty(), &mut slots) else {
            panic!("no reply");
        };
        assert_eq!(missing.status, 404);
    }
}
