//! Replays the `http` fuzz target's regression corpus (`fuzz/corpus/regressions/http`) through
//! the same checks the target runs (fuzz/checks/http.rs), so an input that once broke an HTTP
//! head parser or a Range / Content-Range interpreter stays covered by `cargo test`.

mod fuzz_corpus;
use fuzz_corpus::corpus;

use hazel_protocol::http::{ByteRange, ContentRange, Parsed, Request, Resource, Response};

#[path = "../../fuzz/checks/http.rs"]
mod http_checks;

fn input(name: &str) -> Vec<u8> {
    fuzz_corpus::input("http", name)
}

#[test]
fn http_regressions_replay() {
    let files = corpus("http");
    for (name, data) in &files {
        println!("replaying http/{name} ({} bytes)", data.len());
        http_checks::check_http(data);
    }
    println!("{} http inputs replayed", files.len());
}

#[test]
fn edge_cases_give_the_expected_answers() {
    let (req, _) = Request::parse(&input("range-last-zero"))
        .unwrap()
        .complete()
        .unwrap();
    let range = req.range().expect("Range present").expect("Range parses");
    assert_eq!(range, ByteRange::Last { len: 0 });
    assert_eq!(range.satisfy(100), None, "the last 0 bytes select nothing");
    assert_eq!(
        Request::parse(&input("n2r-missing-final-lf")),
        Ok(Parsed::NeedMore)
    );
    let (resp, _) = Response::parse(&input("versionless-status"))
        .unwrap()
        .complete()
        .unwrap();
    assert_eq!((resp.version, resp.code), (None, 503));
    let (resp, _) = Response::parse(&input("content-length-overflow"))
        .unwrap()
        .complete()
        .unwrap();
    assert!(resp.content_length().is_err(), "20 nines do not fit a u64");
    let (resp, _) = Response::parse(&input("content-range-u64-max"))
        .unwrap()
        .complete()
        .unwrap();
    let cr: ContentRange = resp.content_range().unwrap().unwrap();
    assert_eq!(cr.total, Some(u64::MAX));
    let (req, _) = Request::parse(&input("bad-percent-escapes"))
        .unwrap()
        .complete()
        .unwrap();
    assert_eq!(
        req.resource(),
        Resource::File {
            index: 0,
            name: b"%zz%4".to_vec()
        },
        "a % without two hex digits is kept"
    );
}
