//! `hazel-trace` on damaged copies of a real capture: cut inside a random
//! record, garbage appended, both; and on files that are not captures.
//! Decoding goes on as far as the file allows, the damage is reported on
//! stderr, and the exit code is non-zero only when nothing can be read.

mod support;

use rand::Rng;
use support::*;

/// Start offsets of the records of a little-endian legacy pcap file.
fn record_offsets(pcap: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        offsets.push(pos);
        let caplen = u32::from_le_bytes(pcap[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 16 + caplen;
    }
    offsets
}

/// The frame number a line is about.
fn frame_of(line: &str) -> Option<u32> {
    line.split_whitespace().next()?.parse().ok()
}

fn udp_lines(out: &Output, before_frame: u32) -> Vec<String> {
    out.lines()
        .into_iter()
        .filter(|l| l.contains(" udp#") && frame_of(l).is_some_and(|f| f < before_frame))
        .map(str::to_string)
        .collect()
}

#[test]
fn truncated_inside_a_random_record() {
    let path = trace("ndpi-gtkg-0.6-2022.pcap");
    let pcap = std::fs::read(&path).unwrap();
    let full = hazel_trace(&[], &path);
    let offsets = record_offsets(&pcap);
    assert_eq!(offsets.len(), 3905);
    // Cuts fall after the first UDP descriptor, so that there is always
    // something before the cut to compare (frame 1 is already cut by the
    // capture itself).
    let first_udp = full
        .lines()
        .into_iter()
        .filter(|l| l.contains(" udp#"))
        .find_map(frame_of)
        .expect("UDP descriptors in the capture");
    let mut rng = rand::thread_rng();
    for round in 0..4 {
        let index = rng.gen_range((first_udp as usize).max(1)..offsets.len());
        let start = offsets[index];
        let end = offsets.get(index + 1).copied().unwrap_or(pcap.len());
        let cut = rng.gen_range(start + 1..end);
        let frame = index as u32 + 1;
        println!("round {round}: cut at byte {cut}, inside the record of frame {frame}");
        let file = TempFile::new(&format!("cut{round}"), &pcap[..cut]);
        let out = hazel_trace(&[], &file.0);
        assert_eq!(
            out.code, 0,
            "a truncated capture still decodes: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!(
                "capture file is truncated: it ends inside the record of frame {frame}"
            )),
            "stderr: {}",
            out.stderr
        );
        assert!(
            out.summary()
                .starts_with(&format!("summary: {} frames", frame - 1)),
            "{}",
            out.summary()
        );
        out.assert_summary_has(&["capture damaged (1 problem)"]);
        // Everything before the cut decodes exactly as in the whole file.
        let before = udp_lines(&full, frame);
        assert!(
            !before.is_empty(),
            "nothing before frame {frame} to compare"
        );
        assert_eq!(udp_lines(&out, frame), before, "cut in frame {frame}");
    }
}

#[test]
fn garbage_appended_changes_nothing_before_it() {
    let path = trace("ndpi-gtkg-0.6-2022.pcap");
    let mut pcap = std::fs::read(&path).unwrap();
    let full = hazel_trace(&[], &path);
    let mut rng = rand::thread_rng();
    let garbage: Vec<u8> = (0..rng.gen_range(1..5000)).map(|_| rng.gen()).collect();
    pcap.extend_from_slice(&garbage);
    let file = TempFile::new("garbage", &pcap);
    let out = hazel_trace(&[], &file.0);
    assert_eq!(out.code, 0);
    assert!(
        out.stderr.contains("frame 3906"),
        "the damage is located: {}",
        out.stderr
    );
    let n = full.lines().len();
    assert_eq!(
        out.lines()[..n - 1],
        full.lines()[..n - 1],
        "records before the garbage"
    );
    out.assert_summary_has(&["3905 frames", "capture damaged (1 problem)"]);
}

#[test]
fn damaged_record_header_in_the_middle_is_skipped() {
    let path = trace("ndpi-gtkg-0.6-2022.pcap");
    let mut pcap = std::fs::read(&path).unwrap();
    let full = hazel_trace(&["--json"], &path).json();
    let offsets = record_offsets(&pcap);
    let mut rng = rand::thread_rng();
    let index = rng.gen_range(100..offsets.len() - 100);
    let frame = index as u32 + 1;
    // Destroy the record's length field.
    pcap[offsets[index] + 8..offsets[index] + 12].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    println!("record header of frame {frame} destroyed");
    let file = TempFile::new("midhdr", &pcap);
    let out = hazel_trace(&["--json"], &file.0);
    assert_eq!(out.code, 0);
    assert!(
        out.stderr
            .contains(&format!("damaged at the record of frame {frame}"))
            && out.stderr.contains("reading resumes"),
        "{}",
        out.stderr
    );
    let records = out.json();
    let summary = records.last().unwrap();
    // One frame lost, every other one read.
    assert_eq!(summary["frames"], 3904, "{summary}");
    // UDP descriptors after the damage are still decoded, exactly as before;
    // frame numbers there count one less (the destroyed record is not counted).
    let udp_from = |rs: &[serde_json::Value], first: u64, shift: u64| -> Vec<String> {
        rs.iter()
            .filter(|r| r["transport"] == "udp" && r["kind"] == "descriptor")
            .filter(|r| r["frame"].as_u64().unwrap() >= first)
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["frame"].as_u64().unwrap() + shift,
                    r["id"],
                    r["src"]
                )
            })
            .collect()
    };
    let want = udp_from(&full, u64::from(frame) + 1, 0);
    let got = udp_from(&records, u64::from(frame), 1);
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn cut_and_garbage_together() {
    let path = trace("ppa1e-bearshare-get-2001.pcap");
    let pcap = std::fs::read(&path).unwrap();
    let offsets = record_offsets(&pcap);
    let mut rng = rand::thread_rng();
    let index = rng.gen_range(1..offsets.len());
    let cut =
        rng.gen_range(offsets[index] + 1..offsets.get(index + 1).copied().unwrap_or(pcap.len()));
    let mut damaged = pcap[..cut].to_vec();
    damaged.extend((0..rng.gen_range(1..3000)).map(|_| rng.gen::<u8>()));
    println!("cut at {cut} (frame {}), garbage appended", index + 1);
    let file = TempFile::new("cutgarbage", &damaged);
    let out = hazel_trace(&["--json"], &file.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("capture file is"),
        "damage reported: {}",
        out.stderr
    );
    let records = out.json();
    let summary = records.last().unwrap();
    assert_eq!(summary["kind"], "summary");
    assert!(!summary["file_errors"].as_array().unwrap().is_empty());
    assert!(summary["frames"].as_u64().unwrap() >= index as u64);
}

#[test]
fn not_a_capture_and_missing_file() {
    let file = TempFile::new("text", b"this is a text file, not a capture\n");
    let out = hazel_trace(&[], &file.0);
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("is not a pcap or pcapng capture file"),
        "{}",
        out.stderr
    );

    let missing = std::env::temp_dir().join("hazel-trace-test-no-such-file.pcap");
    let out = hazel_trace(&[], &missing);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cannot read"), "{}", out.stderr);
}
