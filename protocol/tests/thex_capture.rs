//! THEX against the real capture: in ndpi-gtkg-0.6-2022.pcap, gtk-gnutella 1.2.2 fetches the
//! tree of a 3 234 212-byte MP3 from Shareaza 2.7.10.2 (`GET /gnutella/thex/v1?urn:tree:tiger/:…`,
//! tcp.stream 136) after two `/uri-res/N2R` range requests whose replies name the file's
//! `urn:bitprint:` (streams 134 and 135). The reply is a whole DIME message: a Shareaza-made tree,
//! nine rows deep, followed by an ed2k hash-set record. Every internal node in it was computed
//! by Shareaza, an implementation independent of ours, so decoding it checks our node hashing,
//! the odd-node rule (rows of 99, 25, 13 and 7 nodes) and the decoder's tolerance.

mod conformance_traces;

use conformance_traces::*;
use hazel_protocol::http::{Parsed, Response};
use hazel_protocol::huge::Urn;
use hazel_protocol::pcap::{read_capture, Direction, TcpStream};
use hazel_protocol::thex::dime::parse_records;
use hazel_protocol::thex::{tiger_base32, ThexError, ThexUri, TigerTree};

const FILE_SIZE: u64 = 3_234_212;
const ROOT: &str = "3WMUS6WM2ZC7XIPRQDKXWHHJRV4IKYC4OX4ELCA";

fn stream(streams: &[TcpStream], id: u32) -> &TcpStream {
    streams
        .iter()
        .find(|s| s.info.id == id)
        .unwrap_or_else(|| panic!("tcp.stream {id} not in the capture"))
}

/// The reply head and body of one HTTP exchange.
fn reply(s: &TcpStream) -> (Response, Vec<u8>) {
    let bytes = &s.half(Direction::ServerToClient).bytes;
    let Ok(Parsed::Complete { message, consumed }) = Response::parse(bytes) else {
        panic!("stream {}: no complete reply head", s.info.id)
    };
    (message, bytes[consumed..].to_vec())
}

#[test]
fn shareaza_tree_from_the_capture_decodes_and_checks() {
    let capture = read_capture(&read_trace(&format!("{NDPI}.pcap"))).expect("capture opens");

    // The root the downloader trusts comes from the file replies' bitprint urn.
    let (file_reply, _) = reply(stream(&capture.tcp, 134));
    let bitprint = file_reply
        .headers
        .get_all("X-Content-URN")
        .map(|v| Urn::parse(v.as_bytes()))
        .find_map(|urn| match urn {
            Urn::Bitprint { tiger, .. } => Some(tiger),
            _ => None,
        })
        .expect("a bitprint urn in the N2R reply");
    assert_eq!(tiger_base32(&bitprint), ROOT);
    let thex_uri = ThexUri::parse(file_reply.headers.get("X-Thex-URI").unwrap().as_bytes())
        .expect("X-Thex-URI parses");
    assert_eq!(thex_uri.root, Some(bitprint));
    assert!(thex_uri
        .uri
        .starts_with(b"/gnutella/thex/v1?urn:tree:tiger/:"));

    let (thex_reply, body) = reply(stream(&capture.tcp, 136));
    assert_eq!(thex_reply.code, 200);
    assert_eq!(
        thex_reply.headers.get("Content-Type"),
        Some("application/dime")
    );
    assert_eq!(body.len(), 10_164, "the whole DIME body is in the capture");

    // Three records: description (MB), tree, then Shareaza's ed2k hash set (ME), which the
    // THEX reader skips.
    let records = parse_records(&body).expect("DIME parses");
    assert_eq!(records.len(), 3);
    assert!(records[0].begin && !records[1].end && records[2].end);
    assert_eq!(records[1].data.len(), 399 * 24);
    assert_eq!(records[2].data.len(), 16);

    let tree = TigerTree::decode_dime(&body, &bitprint, FILE_SIZE).expect("Shareaza's tree");
    assert_eq!(tiger_base32(&tree.root()), ROOT);
    assert_eq!(tree.depth(), 8, "Shareaza's depth=\"9\" counts rows");
    let rows: Vec<usize> = tree.levels().iter().map(Vec::len).collect();
    assert_eq!(rows, [1, 2, 4, 7, 13, 25, 50, 99, 198]);
    assert_eq!(tree.unit(), 16 * 1024);
    assert_eq!(tree.span(197), Some(197 * 16384..FILE_SIZE));

    // Another size or root is refused.
    assert!(matches!(
        TigerTree::decode_dime(&body, &bitprint, FILE_SIZE + 1),
        Err(ThexError::FileSize { .. })
    ));
    let mut other = bitprint;
    other[23] ^= 1;
    assert!(matches!(
        TigerTree::decode_dime(&body, &other, FILE_SIZE),
        Err(ThexError::WrongRoot { .. })
    ));
    // Any digest of Shareaza's tree altered is caught.
    let tree_at = body.len() - records[1].data.len() - 68; // the ed2k record is 68 bytes
    assert_eq!(&body[tree_at..tree_at + 24], &bitprint);
    for i in (0..399 * 24).step_by(7) {
        let mut bad = body.clone();
        bad[tree_at + i] ^= 0x80;
        assert!(
            TigerTree::decode_dime(&bad, &bitprint, FILE_SIZE).is_err(),
            "byte {i} of the tree"
        );
    }

    // What Hazel would send for the same tree decodes to it, and so does the part of it Hazel
    // keeps for a file of this size (64 KiB units).
    let ours = tree.encode_dime();
    assert_eq!(
        TigerTree::decode_dime(&ours, &bitprint, FILE_SIZE),
        Ok(tree.clone())
    );
    let kept = tree.truncated(hazel_protocol::thex::kept_depth(FILE_SIZE));
    assert_eq!(kept.unit(), 64 * 1024);
    assert_eq!(
        TigerTree::decode_dime(&kept.encode_dime(), &bitprint, FILE_SIZE),
        Ok(kept)
    );
}

/// The QueryHits in the capture's inflated streams name Tiger roots two ways: Shareaza's
/// `urn:bitprint:` and gtk-gnutella's GGEP `TT` (24 raw bytes beside a `urn:sha1:`). A downloader
/// learns the root it trusts from either.
#[test]
fn capture_hits_carry_tiger_roots() {
    use hazel_protocol::descriptor::{ExtensionRef, QueryHitRef};
    let mut from_bitprint = 0;
    let mut from_tt = 0;
    for rec in read_jsonl(&format!("{NDPI}.inflated.expected.jsonl")) {
        if rec["type"].as_u64() != Some(0x81) {
            continue;
        }
        let raw = unhex(rec["raw_hex"].as_str().unwrap());
        let hit = QueryHitRef::parse(&raw[23..]).expect("captured QueryHit parses");
        for result in hit.results() {
            let Some(tiger) = result.tiger() else {
                continue;
            };
            let bitprint = result.extensions.iter().find_map(|e| match e {
                ExtensionRef::Urn(text) => Urn::parse(text).tiger(),
                _ => None,
            });
            match bitprint {
                Some(b) => {
                    assert_eq!(b, tiger);
                    from_bitprint += 1;
                }
                None => {
                    let tt = result
                        .extensions
                        .iter()
                        .any(|e| matches!(e, ExtensionRef::Ggep(g) if g.get(b"TT").is_some()));
                    assert!(tt, "a root without a bitprint came from GGEP TT");
                    from_tt += 1;
                }
            }
            assert!(result.sha1().is_some(), "a root comes with a SHA-1");
        }
    }
    println!("tiger roots: {from_bitprint} from urn:bitprint, {from_tt} from GGEP TT");
    assert!(from_bitprint >= 100, "{from_bitprint}");
    assert!(from_tt >= 1, "{from_tt}");
}
