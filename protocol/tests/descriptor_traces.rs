//! Conformance against the ndpi-gtkg captures: every descriptor vector in
//! `ndpi-gtkg-0.6-2022.expected.jsonl` (1016 UDP datagrams) and
//! `ndpi-gtkg-0.6-2022.inflated.expected.jsonl` (660 messages from the three
//! deflate TCP links) is decoded, its fields compared with what Wireshark's
//! dissector recorded, and re-encoded to the same bytes.
//!
//! The traces live outside the repository: `$HAZEL_TRACES`, or
//! `../shared/traces` relative to the workspace root. Missing traces fail
//! the test with a clear message; they never make it pass vacuously.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hazel_protocol::descriptor::{Descriptor, DescriptorRef, Extension, Payload, PayloadRef};
use hazel_protocol::header::{Header, PayloadType};
use hazel_protocol::traces;
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .unwrap_or_else(|e| panic!("bad hex in trace file: {e}"))
}

fn records(file: &str) -> Vec<Value> {
    let text = String::from_utf8(traces::read(file)).expect("trace file is UTF-8");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("trace line is JSON"))
        .filter(|v: &Value| v["kind"] == "descriptor")
        .collect()
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing number {key} in {v}"))
}

/// Compares one record; returns the list of disagreements.
fn check(rec: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let raw = hex(rec["raw_hex"].as_str().expect("raw_hex"));
    let mut expect = |ok: bool, what: String| {
        if !ok {
            errs.push(what);
        }
    };
    let header = match Header::parse(&raw) {
        Ok(h) => h,
        Err(e) => return vec![format!("header: {e}")],
    };
    let d = match Descriptor::parse(&raw) {
        Ok(d) => d,
        Err(e) => return vec![format!("decode: {e}")],
    };
    expect(
        d.id.to_string() == rec["id"].as_str().unwrap_or(""),
        format!("id {}", d.id),
    );
    expect(
        header.payload_type.to_u8() as u64 == u64_of(rec, "type"),
        "type".into(),
    );
    expect(d.ttl as u64 == u64_of(rec, "ttl"), "ttl".into());
    expect(d.hops as u64 == u64_of(rec, "hops"), "hops".into());
    expect(
        header.payload_len as u64 == u64_of(rec, "length"),
        "length".into(),
    );
    expect(d.to_bytes() == raw, "re-encoding differs".into());
    // The zero-copy view reads the same fields.
    match DescriptorRef::parse(&raw) {
        Ok(view) => {
            expect(view.header == header, "view header".into());
            if let (PayloadRef::QueryHit(v), Payload::QueryHit(h)) = (&view.payload, &d.payload) {
                let names: Vec<&[u8]> = v.results().map(|r| r.name).collect();
                let owned: Vec<&[u8]> = h.results.iter().map(|r| &r.name[..]).collect();
                expect(names == owned, "view result names".into());
                expect(v.servent_id == h.servent_id, "view servent id".into());
            }
        }
        Err(e) => expect(false, format!("view: {e}")),
    }
    expect(d.encoded_len() == raw.len(), "encoded_len".into());

    match &d.payload {
        Payload::Pong(p) => {
            let e = &rec["pong"];
            expect(p.port as u64 == u64_of(e, "port"), "pong port".into());
            expect(
                e["ip"].as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) == Some(p.ip),
                "pong ip".into(),
            );
            expect(p.files as u64 == u64_of(e, "files"), "pong files".into());
            expect(p.kbytes as u64 == u64_of(e, "kbytes"), "pong kbytes".into());
        }
        Payload::Query(q) => {
            let e = &rec["query"];
            // Wireshark reads the 2-byte field as a little-endian speed
            // (249 for `f9 00`). Per the 0.6 spec (PROTOCOL-NOTES §1) a first
            // byte with bit 7 set makes it a big-endian flags word: check
            // that the bytes agree with Wireshark's number, and that the
            // meaning follows the spec.
            let wireshark_speed = u64_of(e, "min_speed");
            expect(
                u16::from_le_bytes(q.speed.0) as u64 == wireshark_speed,
                "query speed bytes".into(),
            );
            if q.speed.0[0] & 0x80 != 0 {
                expect(
                    q.speed.flags_word() == Some(u16::from_be_bytes(q.speed.0)),
                    "flags word".into(),
                );
                expect(
                    q.speed.min_speed_value().is_none(),
                    "flags read as speed".into(),
                );
            } else {
                expect(
                    q.speed.min_speed_value() == Some(wireshark_speed as u16),
                    "min speed".into(),
                );
            }
            // search_field_hex is everything after the 2-byte field.
            let field = hex(e["search_field_hex"].as_str().unwrap_or(""));
            let mut text = q.search.clone();
            text.push(0);
            expect(field.starts_with(&text), "query search text".into());
            expect(
                e["search"].as_str().map(str::as_bytes) == Some(&q.search[..]),
                "query search string".into(),
            );
        }
        Payload::QueryHit(h) => {
            let e = &rec["queryhit"];
            expect(
                h.results.len() as u64 == u64_of(e, "count"),
                "hit count".into(),
            );
            expect(h.port as u64 == u64_of(e, "port"), "hit port".into());
            expect(
                e["ip"].as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) == Some(h.ip),
                "hit ip".into(),
            );
            expect(h.speed as u64 == u64_of(e, "speed"), "hit speed".into());
            expect(
                h.servent_id.to_string() == e["servent_id"].as_str().unwrap_or(""),
                "servent id".into(),
            );
            let hits = e["hits"].as_array().cloned().unwrap_or_default();
            expect(hits.len() == h.results.len(), "hits listed".into());
            for (r, x) in h.results.iter().zip(&hits) {
                expect(r.index as u64 == u64_of(x, "index"), "result index".into());
                expect(r.size as u64 == u64_of(x, "size"), "result size".into());
                // Names by bytes: Wireshark shows non-ASCII as U+FFFD.
                expect(
                    r.name == hex(x["name_hex"].as_str().unwrap_or("")),
                    format!("result name {}", String::from_utf8_lossy(&r.name)),
                );
                let mut ext = Vec::new();
                hazel_protocol::descriptor::encode_extensions(&r.extensions, &mut ext);
                expect(
                    ext == hex(x["extra_hex"].as_str().unwrap_or("")),
                    "result extensions".into(),
                );
            }
            // The dissector's "extra" is the trailer area (QHD).
            let mut trailer = Vec::new();
            if let Some(t) = &h.trailer {
                t.encode(&mut trailer);
            }
            expect(
                trailer == hex(e["extra_hex"].as_str().unwrap_or("")),
                "trailer".into(),
            );
        }
        Payload::Push(p) => {
            let e = &rec["push"];
            expect(
                p.servent_id.to_string() == e["servent_id"].as_str().unwrap_or(""),
                "push servent id".into(),
            );
            expect(
                p.file_index as u64 == u64_of(e, "index"),
                "push index".into(),
            );
            expect(p.port as u64 == u64_of(e, "port"), "push port".into());
        }
        Payload::Unknown { payload_type, .. } => {
            expect(
                !PayloadType::from_u8(*payload_type).is_known(),
                "known type kept unknown".into(),
            );
        }
        Payload::Ping(_) | Payload::Bye(_) => {}
    }
    errs
}

fn run(file: &str, expected_total: usize) -> BTreeMap<u8, usize> {
    let recs = records(file);
    assert_eq!(
        recs.len(),
        expected_total,
        "{file}: expected {expected_total} descriptor records"
    );
    let mut counts = BTreeMap::new();
    let mut failures = Vec::new();
    for rec in &recs {
        let ty = u64_of(rec, "type") as u8;
        *counts.entry(ty).or_insert(0) += 1;
        let errs = check(rec);
        if !errs.is_empty() {
            failures.push(format!("{} {}: {:?}", rec["id"], rec["type_name"], errs));
        }
    }
    println!(
        "{file}: {} descriptors decoded, by type {counts:?}",
        recs.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} descriptors in {file} disagree:\n{}",
        failures.len(),
        recs.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    counts
}

#[test]
fn udp_descriptors_match_wireshark_and_reencode() {
    let counts = run("ndpi-gtkg-0.6-2022.expected.jsonl", 1016);
    assert_eq!(counts.get(&0x00), Some(&440), "pings");
    assert_eq!(counts.get(&0x01), Some(&151), "pongs");
    assert_eq!(counts.get(&0x80), Some(&51), "queries");
}

#[test]
fn inflated_tcp_descriptors_match_wireshark_and_reencode() {
    let counts = run("ndpi-gtkg-0.6-2022.inflated.expected.jsonl", 660);
    assert_eq!(counts.get(&0x81), Some(&87), "query hits");
    assert_eq!(counts.get(&0x02), Some(&3), "byes");
}

#[test]
fn non_ascii_names_are_kept_as_bytes() {
    // Wireshark shows non-ASCII hit names with U+FFFD; the bytes (name_hex)
    // are UTF-8 and must come out of the decoder intact.
    let mut replaced = 0;
    for rec in records("ndpi-gtkg-0.6-2022.inflated.expected.jsonl") {
        let Some(hits) = rec["queryhit"]["hits"].as_array() else {
            continue;
        };
        let raw = hex(rec["raw_hex"].as_str().unwrap());
        let Ok(Descriptor {
            payload: Payload::QueryHit(h),
            ..
        }) = Descriptor::parse(&raw)
        else {
            panic!("query hit {} does not decode", rec["id"]);
        };
        for (r, x) in h.results.iter().zip(hits) {
            if x["name"].as_str().is_some_and(|n| n.contains('\u{FFFD}')) {
                replaced += 1;
                let name = String::from_utf8(r.name.clone()).expect("name is UTF-8");
                assert!(!name.contains('\u{FFFD}') && !name.is_ascii(), "{name}");
            }
        }
    }
    println!("{replaced} names Wireshark showed with U+FFFD decode as UTF-8");
    assert!(replaced > 0, "the trace has non-ASCII names");
}

#[test]
fn trace_hits_carry_huge_and_ggep() {
    // Every decoded extension is typed: urns, GGEP blocks, XML, text.
    let mut urns = 0;
    let mut ggeps = 0;
    let mut trailers_with_ggep = 0;
    for rec in records("ndpi-gtkg-0.6-2022.inflated.expected.jsonl") {
        let raw = hex(rec["raw_hex"].as_str().unwrap());
        if let Ok(Descriptor {
            payload: Payload::QueryHit(h),
            ..
        }) = Descriptor::parse(&raw)
        {
            for r in &h.results {
                for e in &r.extensions {
                    match e {
                        Extension::Urn(_) => urns += 1,
                        Extension::Ggep(_) => ggeps += 1,
                        _ => {}
                    }
                }
            }
            if h.trailer.as_ref().and_then(|t| t.ggep()).is_some() {
                trailers_with_ggep += 1;
            }
        }
    }
    println!("urns {urns}, result GGEP blocks {ggeps}, trailers with GGEP {trailers_with_ggep}");
    assert!(
        urns >= 180,
        "README of the traces: HUGE urns on 175+ results"
    );
    assert!(ggeps >= 179, "GGEP CT on 179 results");
    assert!(trailers_with_ggep > 0);
}
