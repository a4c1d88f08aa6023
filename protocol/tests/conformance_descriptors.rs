//! Every Gnutella descriptor in `ndpi-gtkg-0.6-2022.pcap`, taken from the
//! capture itself, compared field by field with what Wireshark decoded:
//! - the 1016 UDP datagrams (matched by frame number) against
//!   `ndpi-gtkg-0.6-2022.expected.jsonl`;
//! - the 660 descriptors inside the three deflate-compressed TCP links,
//!   which are found from their handshakes, inflated and framed per
//!   direction by the protocol crate's framer (cross-checked against one
//!   direct inflate of the whole direction), against `ndpi-gtkg-0.6-2022.inflated.expected.jsonl`
//!   (matched by stream, direction and offset in the inflated bytes).
//!
//! Each descriptor is also re-encoded and must give back its exact bytes.
//! Where Wireshark is wrong the test says so and checks against the spec.

mod conformance_traces;

use std::collections::BTreeMap;

use conformance_traces::*;
use hazel_protocol::descriptor::{encode_extensions, Descriptor, Payload};
use hazel_protocol::framer::Framer;
use hazel_protocol::header::{Header, HEADER_LEN, MAX_PAYLOAD_LEN};
use hazel_protocol::pcap::{read_capture, Direction};
use serde_json::Value;

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

/// Compares one descriptor (its bytes from the capture) with tshark's record.
/// Returns every disagreement; an empty list means the record matches.
fn compare(rec: &Value, bytes: &[u8]) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    check(
        hex(bytes) == rec["raw_hex"].as_str().unwrap_or(""),
        "raw bytes".into(),
    );
    let d = match Descriptor::parse(bytes) {
        Ok(d) => d,
        Err(e) => {
            bad.push(format!("does not decode: {e}"));
            return bad;
        }
    };
    let h = d.header();
    check(
        hex(&h.id.0) == rec["id"].as_str().unwrap_or(""),
        "id".into(),
    );
    check(
        u64::from(h.payload_type.to_u8()) == num(rec, "type"),
        "type".into(),
    );
    check(u64::from(d.ttl) == num(rec, "ttl"), "ttl".into());
    check(u64::from(d.hops) == num(rec, "hops"), "hops".into());
    check(
        u64::from(h.payload_len) == num(rec, "length"),
        "length".into(),
    );
    check(
        d.to_bytes() == bytes,
        "re-encoding differs from the captured bytes".into(),
    );
    let payload = &bytes[HEADER_LEN..];
    match &d.payload {
        Payload::Pong(p) => {
            let e = &rec["pong"];
            check(u64::from(p.port) == num(e, "port"), "pong port".into());
            check(
                p.ip.to_string() == e["ip"].as_str().unwrap_or(""),
                "pong ip".into(),
            );
            check(u64::from(p.files) == num(e, "files"), "pong files".into());
            check(
                u64::from(p.kbytes) == num(e, "kbytes"),
                "pong kbytes".into(),
            );
        }
        Payload::Query(q) => {
            let e = &rec["query"];
            // Wireshark reads the 2-byte field as a little-endian minimum speed
            // (249 for `f9 00`). Per the 0.6 spec (PROTOCOL-NOTES §1) a first
            // byte with bit 7 set makes it a big-endian flags word: 0xF900.
            // Check that tshark's number is the LE reading of the same bytes,
            // and that Hazel reads them as the spec says.
            check(
                u64::from(u16::from_le_bytes(q.speed.0)) == num(e, "min_speed"),
                "query speed bytes".into(),
            );
            if q.speed.0[0] & 0x80 != 0 {
                check(
                    q.speed.flags_word() == Some(u16::from_be_bytes(q.speed.0)),
                    "query flags word".into(),
                );
                check(
                    q.speed.min_speed_value().is_none(),
                    "flags word read as a speed".into(),
                );
            } else {
                check(
                    q.speed.min_speed_value() == Some(u16::from_le_bytes(q.speed.0)),
                    "query min speed".into(),
                );
            }
            check(
                q.search == e["search"].as_str().unwrap_or("").as_bytes(),
                "query search".into(),
            );
            check(
                hex(&payload[2..]) == e["search_field_hex"].as_str().unwrap_or(""),
                "query search field".into(),
            );
        }
        Payload::QueryHit(qh) => {
            let e = &rec["queryhit"];
            check(
                qh.results.len() as u64 == num(e, "count"),
                "hit count".into(),
            );
            check(u64::from(qh.port) == num(e, "port"), "hit port".into());
            check(
                qh.ip.to_string() == e["ip"].as_str().unwrap_or(""),
                "hit ip".into(),
            );
            check(u64::from(qh.speed) == num(e, "speed"), "hit speed".into());
            check(
                qh.servent_id.to_string()
                    == e["servent_id"].as_str().unwrap_or("").replace(':', ""),
                "servent id".into(),
            );
            let hits = e["hits"].as_array().cloned().unwrap_or_default();
            check(hits.len() == qh.results.len(), "number of hits".into());
            for (i, (r, eh)) in qh.results.iter().zip(&hits).enumerate() {
                check(
                    u64::from(r.index) == num(eh, "index"),
                    format!("hit {i} index"),
                );
                check(
                    u64::from(r.size) == num(eh, "size"),
                    format!("hit {i} size"),
                );
                // Wireshark shows non-ASCII names with U+FFFD; the bytes are in name_hex.
                check(
                    hex(&r.name) == eh["name_hex"].as_str().unwrap_or(""),
                    format!("hit {i} name bytes"),
                );
                let mut area = Vec::new();
                encode_extensions(&r.extensions, &mut area);
                check(
                    hex(&area) == eh["extra_hex"].as_str().unwrap_or(""),
                    format!("hit {i} extensions"),
                );
            }
            let mut trailer = Vec::new();
            if let Some(t) = &qh.trailer {
                t.encode(&mut trailer);
            }
            check(
                hex(&trailer) == e["extra_hex"].as_str().unwrap_or(""),
                "QHD trailer".into(),
            );
        }
        Payload::Push(p) => {
            let e = &rec["push"];
            check(
                p.servent_id.to_string() == e["servent_id"].as_str().unwrap_or("").replace(':', ""),
                "push servent id".into(),
            );
            check(
                u64::from(p.file_index) == num(e, "index"),
                "push index".into(),
            );
            check(
                p.ip.to_string() == e["ip"].as_str().unwrap_or(""),
                "push ip".into(),
            );
            check(u64::from(p.port) == num(e, "port"), "push port".into());
        }
        Payload::Ping(_) | Payload::Bye(_) | Payload::Unknown { .. } => {}
    }
    bad
}

fn type_name(rec: &Value) -> String {
    format!("0x{:02x}", num(rec, "type"))
}

#[test]
fn ndpi_udp_descriptors_from_the_pcap_match_wireshark() {
    let pcap = read_trace(&format!("{NDPI}.pcap"));
    let c = read_capture(&pcap).expect("ndpi trace opens");
    let by_frame: BTreeMap<u32, &[u8]> = c
        .udp
        .iter()
        .map(|d| (d.frame, d.payload.as_slice()))
        .collect();
    let expected = read_jsonl(&format!("{NDPI}.expected.jsonl"));
    let mut failures = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for rec in &expected {
        let frame = num(rec, "frame") as u32;
        let Some(bytes) = by_frame.get(&frame) else {
            failures.push(format!("frame {frame}: no UDP datagram in the capture"));
            continue;
        };
        for what in compare(rec, bytes) {
            failures.push(format!("frame {frame}: {what}"));
        }
        *counts.entry(type_name(rec)).or_default() += 1;
    }
    // And nothing else in the capture is a Gnutella datagram that tshark missed:
    // a datagram whose length is exactly header + declared payload.
    let mut framed = 0;
    for d in &c.udp {
        if let Ok(h) = Header::parse(&d.payload) {
            if d.payload.len() == HEADER_LEN + h.payload_len as usize
                && (d.src.port() == 28681 || d.dst.port() == 28681)
            {
                framed += 1;
            }
        }
    }
    println!("ndpi UDP: {} descriptors compared field by field and re-encoded ({counts:?}); {} mismatches", expected.len(), failures.len());
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    assert_eq!(expected.len(), 1016);
    assert_eq!(
        framed, 1016,
        "UDP datagrams on the servent port that frame as one descriptor"
    );
}

/// Inflates one direction of a link: a zlib stream that the capture ends
/// before its final block (the links were still open), so inflate until the
/// input is used up rather than until the stream's end.
fn inflate(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(bytes.len() * 4);
    for _ in 0..100_000 {
        let used = z.total_in() as usize;
        if used >= bytes.len() {
            break;
        }
        out.reserve(64 * 1024);
        let status = z
            .decompress_vec(&bytes[used..], &mut out, flate2::FlushDecompress::Sync)
            .expect("the compressed direction inflates");
        if status == flate2::Status::StreamEnd {
            break;
        }
    }
    assert_eq!(
        z.total_in() as usize,
        bytes.len(),
        "all compressed bytes inflate"
    );
    out
}

#[test]
fn ndpi_deflate_links_inflated_and_framed_match_wireshark() {
    let pcap = read_trace(&format!("{NDPI}.pcap"));
    let c = read_capture(&pcap).expect("ndpi trace opens");
    let mut links = Vec::new();
    // (stream, dir label, offset in the inflated bytes) -> descriptor bytes
    let mut found: BTreeMap<(u64, String, u64), Vec<u8>> = BTreeMap::new();
    for s in &c.tcp {
        let client = handshake_blocks(&s.half(Direction::ClientToServer).bytes);
        let server = handshake_blocks(&s.half(Direction::ServerToClient).bytes);
        if !link(&client, &server).is_some_and(|l| l.is_deflate_gnutella()) {
            continue;
        }
        links.push(s.info.id);
        for (dir, blocks) in [
            (Direction::ClientToServer, &client),
            (Direction::ServerToClient, &server),
        ] {
            let skip: usize = blocks.iter().map(|(raw, _)| raw.len()).sum();
            let compressed = &s.half(dir).bytes[skip..];
            // The protocol crate's framer, fed segment-sized pieces as a servent would be.
            let mut framer = Framer::deflated();
            let mut framed = Vec::new();
            for piece in compressed.chunks(1460) {
                framer.push(piece).expect("compressed bytes accepted");
                while let Some(frame) = framer.next_frame().expect("the link frames cleanly") {
                    framed.push(frame.bytes);
                }
            }
            // Cross-check: inflating the whole direction at once and walking the
            // headers gives the same descriptors at the same offsets.
            let plain = inflate(compressed);
            let mut offset = 0usize;
            let mut walked = Vec::new();
            while offset < plain.len() {
                let h = Header::parse(&plain[offset..]).expect("descriptor header");
                let len = HEADER_LEN + h.payload_len as usize;
                assert!(len <= HEADER_LEN + MAX_PAYLOAD_LEN);
                let whole = plain.get(offset..offset + len).unwrap_or_else(|| {
                    panic!("stream {} {dir:?}: descriptor cut at {offset}", s.info.id)
                });
                walked.push(whole.to_vec());
                offset += len;
            }
            assert_eq!(
                framed, walked,
                "stream {} {dir:?}: framer and direct inflate agree",
                s.info.id
            );
            let mut offset = 0u64;
            for bytes in framed {
                let len = bytes.len() as u64;
                found.insert(
                    (u64::from(s.info.id), dir.label().to_string(), offset),
                    bytes,
                );
                offset += len;
            }
        }
    }
    assert_eq!(
        links,
        vec![94, 95, 122],
        "the deflate links, found from their handshakes"
    );

    let expected = read_jsonl(&format!("{NDPI}.inflated.expected.jsonl"));
    let mut failures = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for rec in &expected {
        let key = (
            num(rec, "stream"),
            rec["dir"].as_str().unwrap().to_string(),
            num(rec, "inflated_offset"),
        );
        let Some(bytes) = found.remove(&key) else {
            failures.push(format!("{key:?}: no descriptor at this offset"));
            continue;
        };
        for what in compare(rec, &bytes) {
            failures.push(format!("{key:?}: {what}"));
        }
        *counts.entry(type_name(rec)).or_default() += 1;
    }
    for key in found.keys() {
        failures.push(format!("{key:?}: framed here but not in the expected file"));
    }
    println!(
        "ndpi deflate links {links:?}: {} descriptors inflated, framed, compared and re-encoded ({counts:?}); {} mismatches",
        expected.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    assert_eq!(expected.len(), 660);
}
