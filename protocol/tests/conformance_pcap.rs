//! The capture reader against the real traces: frame numbering, the frames
//! tshark flags, UDP and TCP stream numbers and endpoints as tshark assigns
//! them, and TCP reassembly (the request split over two segments).

mod conformance_traces;

#[path = "../../fuzz/checks/pcap.rs"]
mod pcap_checks;

use std::collections::HashMap;

use conformance_traces::*;
use hazel_protocol::pcap::writer::to_pcapng;
use hazel_protocol::pcap::{decode_frame, read_capture, Capture, Direction, Packet};
use hazel_protocol::DecodeError;

#[test]
fn ndpi_frames_udp_streams_and_tcp_streams_match_tshark() {
    let pcap = read_trace(&format!("{NDPI}.pcap"));
    let c = read_capture(&pcap).expect("ndpi trace opens");
    assert_eq!(c.frames, 3905, "tshark counts 3905 frames");
    assert!(c.file_errors.is_empty(), "{:?}", c.file_errors);
    // Frame 1 is cut to 4 of 60 bytes: an error for that frame only.
    assert_eq!(c.frame_errors, vec![(1, DecodeError::Truncated)]);

    // Every UDP descriptor record names its frame, stream, endpoints and direction.
    let by_frame: HashMap<u32, _> = c.udp.iter().map(|d| (d.frame, d)).collect();
    let expected = read_jsonl(&format!("{NDPI}.expected.jsonl"));
    let mut checked = 0;
    for e in &expected {
        let frame = e["frame"].as_u64().unwrap() as u32;
        let d = by_frame
            .get(&frame)
            .unwrap_or_else(|| panic!("frame {frame}: no UDP datagram read"));
        assert_eq!(
            d.src.to_string(),
            e["src"].as_str().unwrap(),
            "frame {frame}"
        );
        assert_eq!(
            d.dst.to_string(),
            e["dst"].as_str().unwrap(),
            "frame {frame}"
        );
        assert_eq!(
            u64::from(d.stream),
            e["stream"].as_u64().unwrap(),
            "udp.stream of frame {frame}"
        );
        assert_eq!(d.dir.label(), e["dir"].as_str().unwrap(), "frame {frame}");
        assert_eq!(
            hex(&d.payload),
            e["raw_hex"].as_str().unwrap(),
            "frame {frame}"
        );
        checked += 1;
    }
    println!("ndpi: {} frames, {} UDP datagrams, {} TCP streams; {checked} UDP descriptor datagrams match tshark's frame/stream/endpoints/bytes", c.frames, c.udp.len(), c.tcp.len());
    assert_eq!(checked, 1016);
    // ICMP port-unreachable frames quote Gnutella UDP datagrams; the quoted
    // datagram is not traffic and must not show up as one.
    let icmp_frames = [2097, 3205, 3663, 3817];
    for frame in Capture::open(&pcap).unwrap().frames() {
        let frame = frame.unwrap();
        if icmp_frames.contains(&frame.number) {
            assert!(
                matches!(
                    decode_frame(&frame),
                    Ok(Packet::Icmp {
                        icmp_type: 3,
                        code: 3,
                        ..
                    })
                ),
                "frame {} is ICMP port unreachable",
                frame.number
            );
            assert!(!by_frame.contains_key(&frame.number));
        }
    }

    assert_eq!(c.tcp.len(), 137, "tshark counts 137 TCP streams");
    let handshakes = read_jsonl(&format!("{NDPI}.handshakes.jsonl"));
    for h in &handshakes {
        let id = h["stream"].as_u64().unwrap() as usize;
        let s = &c.tcp[id];
        assert_eq!(s.info.id as usize, id);
        assert_eq!(
            s.info.client.to_string(),
            h["client"].as_str().unwrap(),
            "stream {id}"
        );
        assert_eq!(
            s.info.server.to_string(),
            h["server"].as_str().unwrap(),
            "stream {id}"
        );
    }
    // "No lost or out-of-order data segments" (the .txt): no gaps anywhere.
    for s in &c.tcp {
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            assert!(
                s.half(dir).gaps.is_empty(),
                "stream {} {dir:?} has gaps {:?}",
                s.info.id,
                s.half(dir).gaps
            );
        }
    }
    let with_payload = c
        .tcp
        .iter()
        .filter(|s| s.halves.iter().any(|h| !h.bytes.is_empty()))
        .count();
    assert_eq!(with_payload, 56, "tshark: 56 TCP streams carry payload");
}

#[test]
fn ppa_streams_and_the_split_request() {
    let pcap = read_trace(&format!("{PPA}.pcap"));
    let c = read_capture(&pcap).expect("ppa trace opens");
    assert_eq!(c.frames, 1343);
    assert!(c.file_errors.is_empty() && c.frame_errors.is_empty());
    assert_eq!(c.tcp.len(), 243, "tshark counts 243 TCP streams");
    let expected = read_jsonl(&format!("{PPA}.expected.jsonl"));
    let mut checked = 0;
    for e in &expected {
        let id = e["stream"].as_u64().unwrap() as usize;
        let s = &c.tcp[id];
        let src = e["src"].as_str().unwrap();
        let dir = if s.info.client.to_string() == src {
            Direction::ClientToServer
        } else {
            assert_eq!(s.info.server.to_string(), src, "stream {id}");
            Direction::ServerToClient
        };
        let half = s.half(dir);
        let want_hex = e
            .get("raw_hex")
            .or_else(|| e.get("payload_hex"))
            .and_then(|v| v.as_str())
            .unwrap();
        // Requests and responses are the start of their direction's bytes;
        // the RST payload "No listener" was sent 4 times at one sequence number.
        assert!(
            hex(&half.bytes).starts_with(want_hex),
            "stream {id} {dir:?}"
        );
        if e["kind"] == "tcp_payload_in_rst" {
            assert_eq!(
                hex(&half.bytes),
                want_hex,
                "duplicates removed, stream {id}"
            );
            assert_eq!(half.closed, Some(true), "stream {id} ends with RST");
        } else {
            let frames: Vec<u64> = e["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let lens: Vec<u64> = e["segment_lengths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let got: Vec<(u64, u64)> = half
                .segments
                .iter()
                .map(|r| (u64::from(r.frame), r.len as u64))
                .take(frames.len())
                .collect();
            let want: Vec<(u64, u64)> = frames.into_iter().zip(lens).collect();
            assert_eq!(got, want, "segments of stream {id} {dir:?}");
        }
        checked += 1;
    }
    let split = c.tcp[82].half(Direction::ClientToServer);
    assert_eq!(
        split.segments.len(),
        2,
        "the stream-82 request comes in two segments"
    );
    println!(
        "ppa: {} frames, {} TCP streams, {checked} expected records located byte-exact",
        c.frames,
        c.tcp.len()
    );
    assert_eq!(checked, 13);
}

#[test]
fn pcapng_copies_read_the_same() {
    for name in [NDPI, PPA] {
        let pcap = read_trace(&format!("{name}.pcap"));
        let ng = to_pcapng(&Capture::open(&pcap).unwrap()).expect("converts");
        let a = read_capture(&pcap).unwrap();
        let b = read_capture(&ng).unwrap();
        assert!(matches!(
            Capture::open(&ng).unwrap().format(),
            hazel_protocol::pcap::file::CaptureFormat::PcapNg
        ));
        assert_eq!(a.frames, b.frames, "{name}");
        assert_eq!(a.frame_errors, b.frame_errors, "{name}");
        assert_eq!(a.udp, b.udp, "{name}: UDP datagrams, timestamps included");
        assert_eq!(a.tcp, b.tcp, "{name}: TCP streams");
        println!(
            "{name}: pcapng copy reads the same {} frames, {} datagrams, {} streams",
            b.frames,
            b.udp.len(),
            b.tcp.len()
        );
    }
}

/// Replays `fuzz/corpus/regressions/{pcap,tcp_reassembly}` through the checks
/// the `pcap` and `tcp_reassembly` fuzz targets run.
#[test]
fn fuzz_regressions_replay() {
    let root =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/regressions");
    for (target, check) in [
        ("pcap", pcap_checks::check_capture as fn(&[u8])),
        ("tcp_reassembly", pcap_checks::check_reassembly as fn(&[u8])),
    ] {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("regression corpus {} missing: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no inputs in {}", dir.display());
        for path in &files {
            check(&std::fs::read(path).unwrap());
        }
        println!("{target}: {} regression inputs replayed", files.len());
    }
}
