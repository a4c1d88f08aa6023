//! `hazel-trace` on the two real captures: what a user sees.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::*;

#[test]
fn ndpi_lines_and_summary() {
    let out = hazel_trace(&[], &trace("ndpi-gtkg-0.6-2022.pcap"));
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    // Frame 1 is cut to 4 bytes: said on stderr, decoding goes on.
    assert!(
        out.stderr.contains("frame 1: headers unreadable")
            && out.stderr.contains("captured 4 of 60 bytes"),
        "stderr: {}",
        out.stderr
    );
    let summary = out.summary();
    println!("{summary}");
    for part in [
        "3905 frames (1 unreadable)",
        "137 TCP streams",
        "1016 Gnutella",
        "1676 descriptors",
        "Bye 3, HSEP 99, Mojito 363, Ping 454, Pong 289, QRP 9, Query 68, QueryHit 87, Vendor 304",
        "HTTP request 3, HTTP response 3, handshake 112",
        "6 deflate directions inflated",
        "0 gaps, 0 errors",
    ] {
        assert!(summary.contains(part), "summary lacks {part:?}: {summary}");
    }
    let lines = out.lines();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    // A UDP Ping with GGEP, the first descriptor tshark lists (frame 673).
    let ping = lines
        .iter()
        .find(|l| l.trim_start().starts_with("673 "))
        .expect("a line for frame 673");
    assert!(
        ping.contains("udp#136 10.0.2.15:28681 > 113.252.86.162:9239 Ping ttl=1 hops=0"),
        "{ping}"
    );
    assert!(ping.contains("GGEP[SCP"), "{ping}");
    // The 0.6 query flags word, not Wireshark's "min speed 249".
    assert!(
        has("\"pinkfloyd\" flags=0xf900"),
        "query flags shown as a flags word"
    );
    // Handshakes, refusals, TLS and G2 links named, HTTP with the non-RFC Content-Range.
    assert!(has("handshake: GNUTELLA/0.6 503 No QRP"));
    assert!(has("link switches to TLS after the handshake"));
    assert!(has("Gnutella2 link"));
    assert!(has("HTTP response: \"HTTP/1.1 206 OK\" Server: Shareaza 2.7.10.2 Content-Range: bytes=0-1048575/3234212"));
    // Inside the inflated links: a QueryHit with its QHD vendor, a Bye.
    assert!(has("tcp#95 75.133.101.93:52367 > 10.0.2.15:50285 QueryHit"));
    assert!(has("vendor=RAZA"));
    assert!(has("Bye ttl=1 hops=0") && has("200 \"Servent shutdown\""));
}

#[test]
fn ndpi_json_lines() {
    let out = hazel_trace(&["--json"], &trace("ndpi-gtkg-0.6-2022.pcap"));
    assert_eq!(out.code, 0);
    let records = out.json();
    let summary = records.last().unwrap();
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["descriptors"], 1676);
    let mut by_transport: BTreeMap<String, usize> = BTreeMap::new();
    let mut tcp_streams = std::collections::BTreeSet::new();
    for r in records.iter().filter(|r| r["kind"] == "descriptor") {
        *by_transport
            .entry(r["transport"].as_str().unwrap().to_string())
            .or_default() += 1;
        if r["transport"] == "tcp" {
            tcp_streams.insert(r["stream"].as_u64().unwrap());
        }
        assert!(r.get("error").is_none(), "malformed descriptor: {r}");
    }
    println!("descriptors by transport {by_transport:?}, TCP streams {tcp_streams:?}");
    assert_eq!(by_transport["udp"], 1016);
    assert_eq!(by_transport["tcp"], 660);
    assert_eq!(
        tcp_streams.into_iter().collect::<Vec<_>>(),
        vec![94, 95, 122]
    );
    // One Pong in full, as tshark saw it (frame 674).
    let pong = records
        .iter()
        .find(|r| r["frame"] == 674 && r["kind"] == "descriptor")
        .expect("frame 674");
    assert_eq!(pong["type_name"], "Pong");
    assert_eq!(pong["pong"]["ip"], "113.252.86.162");
    assert_eq!(pong["pong"]["kbytes"], 67108864);
    assert_eq!(pong["dir"], "resp>orig");
    let ggep_ids: Vec<&str> = pong["ggep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ggep_ids, vec!["UP", "IPP"]);
    // IPP travels deflated: shown inflated, 6 bytes per IPv4 host.
    let ipp = &pong["ggep"][1];
    assert_eq!(ipp["deflate"], true);
    assert_eq!(ipp["value_hex"].as_str().unwrap().len(), 2 * 30);
    // COBS-encoded GGEP in a hit is shown decoded (CT in the hit of frame 1307).
    let cobs = records
        .iter()
        .filter(|r| r["frame"] == 1307 && r["type_name"] == "QueryHit")
        .flat_map(|r| r["queryhit"]["hits"].as_array().unwrap().iter())
        .flat_map(|h| h["extensions"].as_array().unwrap().iter())
        .filter_map(|e| e.get("ggep"))
        .flat_map(|g| g.as_array().unwrap().iter())
        .find(|x| x["id"] == "CT" && x["cobs"] == true)
        .expect("a COBS CT extension");
    assert_eq!(cobs["value_hex"], "9e200061");
    // QueryHits: trailer vendor and flags, HUGE urns per hit.
    let hits: Vec<&Value> = records
        .iter()
        .filter(|r| r["type_name"] == "QueryHit")
        .collect();
    assert_eq!(hits.len(), 87);
    let raza = hits
        .iter()
        .filter(|r| r["queryhit"]["trailer"]["vendor"] == "RAZA")
        .count();
    assert_eq!(raza, 83, "QHD vendors: RAZA 83");
    let urns = hits
        .iter()
        .flat_map(|r| r["queryhit"]["hits"].as_array().unwrap().iter())
        .filter(|h| {
            h["extensions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.get("urn").is_some())
        })
        .count();
    println!("{} hits, {urns} results with a HUGE urn", hits.len());
    assert!(urns >= 175, "urn:bitprint/ed2khash/md5 on 175 results");
    // Handshake blocks carry their headers.
    let hs: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "handshake")
        .collect();
    assert_eq!(hs.len(), 112);
    assert!(hs.iter().any(|r| r["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == "X-Try-Ultrapeers")));
}

#[test]
fn ppa_http_heads() {
    let out = hazel_trace(&[], &trace("ppa1e-bearshare-get-2001.pcap"));
    assert_eq!(out.code, 0);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let lines = out.lines();
    let requests: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("HTTP request:"))
        .collect();
    let responses: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("HTTP response:"))
        .collect();
    assert_eq!((requests.len(), responses.len()), (5, 5));
    // The request split over frames 431 and 433 is one request, completed by frame 433.
    assert!(lines.iter().any(|l| l.trim_start().starts_with("433 ")
        && l.contains("tcp#82")
        && l.contains(
            "\"GET /get/24/Sorority Sex Kittens (xxx).asf HTTP/1.0\" Range: bytes=1221030-"
        )));
    // The version-less status line.
    assert!(lines.iter().any(|l| l.contains("tcp#82")
        && l.contains("HTTP response: \"HTTP 503 Server Busy\" Server: BearShare 2.2.6")));
    assert!(out.summary().contains("HTTP request 5, HTTP response 5"));
    assert!(out.summary().contains("243 TCP streams"));
}

#[test]
fn port_filter_keeps_only_those_ports() {
    let out = hazel_trace(
        &["--port", "53258", "--json"],
        &trace("ndpi-gtkg-0.6-2022.pcap"),
    );
    assert_eq!(out.code, 0);
    let records = out.json();
    let msgs: Vec<&Value> = records.iter().filter(|r| r["kind"] != "summary").collect();
    assert!(!msgs.is_empty());
    for r in &msgs {
        let ports = [r["src"].as_str().unwrap(), r["dst"].as_str().unwrap()];
        assert!(ports.iter().any(|p| p.ends_with(":53258")), "{r}");
    }
    // Stream 94 (a deflate link to port 53258) is decoded in full.
    let tcp94 = msgs
        .iter()
        .filter(|r| r["stream"] == 94 && r["kind"] == "descriptor")
        .count();
    assert!(tcp94 > 0);
}

#[test]
fn repeated_port_flags_combine() {
    let out = hazel_trace(
        &["--port", "53258", "--port", "52367", "--json"],
        &trace("ndpi-gtkg-0.6-2022.pcap"),
    );
    assert_eq!(out.code, 0);
    let records = out.json();
    let tcp_streams: std::collections::BTreeSet<u64> = records
        .iter()
        .filter(|r| r["transport"] == "tcp" && r["kind"] == "descriptor")
        .map(|r| r["stream"].as_u64().unwrap())
        .collect();
    // The deflate links to those two ports: 94 (53258) and 95 (52367), not 122.
    assert_eq!(tcp_streams.into_iter().collect::<Vec<_>>(), vec![94, 95]);
}
