//! The QRP messages gtk-gnutella's leaf sent on the three captured deflate
//! links (`ndpi-gtkg-0.6-2022.inflated.expected.jsonl`): 3 RESETs and 6
//! PATCHes decode, re-encode to the captured bytes, and each link's patches
//! inflate and apply to a table of its reset's size.
//!
//! The traces live outside the repository: `$HAZEL_TRACES`, or
//! `../shared/traces` relative to the workspace root. Missing traces fail
//! the test with a clear message.

use std::collections::BTreeMap;

use hazel_protocol::qrp::{QrpMessage, QrpReceiver, PAYLOAD_TYPE};
use hazel_protocol::traces;
use serde_json::Value;

/// (stream, payload) of every captured 0x30 descriptor, in capture order.
fn captured_qrp() -> Vec<(u64, Vec<u8>)> {
    let text = String::from_utf8(traces::read("ndpi-gtkg-0.6-2022.inflated.expected.jsonl"))
        .expect("trace file is UTF-8");
    let mut out = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("json line");
        if v["type"].as_u64() != Some(u64::from(PAYLOAD_TYPE)) {
            continue;
        }
        let raw = data_encoding::HEXLOWER_PERMISSIVE
            .decode(v["raw_hex"].as_str().expect("raw_hex").as_bytes())
            .expect("hex");
        let stream = v["stream"].as_u64().expect("stream");
        out.push((stream, raw.get(23..).expect("header").to_vec()));
    }
    out
}

#[test]
fn captured_gtk_qrp_messages_decode_reencode_and_apply() {
    let messages = captured_qrp();
    assert_eq!(messages.len(), 9, "3 resets and 6 patches in the capture");
    let mut per_link: BTreeMap<u64, QrpReceiver> = BTreeMap::new();
    let (mut resets, mut patches) = (0, 0);
    for (stream, payload) in &messages {
        let msg = QrpMessage::decode(payload).expect("captured QRP decodes");
        assert_eq!(&msg.encode(), payload, "re-encodes to the captured bytes");
        match &msg {
            QrpMessage::Reset {
                table_length,
                infinity,
            } => {
                resets += 1;
                assert_eq!((*table_length, *infinity), (16384, 2));
            }
            QrpMessage::Patch { .. } => patches += 1,
        }
        per_link
            .entry(*stream)
            .or_default()
            .apply(&msg)
            .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
    }
    assert_eq!((resets, patches), (3, 6));
    assert_eq!(per_link.len(), 3);
    for (stream, rx) in &per_link {
        let table = rx.table().expect("a table per link");
        assert_eq!(table.slots(), 16384);
        // The gtk leaf's 1-bit patch sets 20 slots (a set bit flips an
        // empty slot to present); one is the slot of "mp3", the extension
        // of what it shared: 1 chance in ~800 were the reading wrong.
        assert_eq!(table.present_count(), 20, "stream {stream}");
        assert!(table.contains_word("mp3"), "stream {stream}");
    }
    let counts: Vec<usize> = per_link
        .values()
        .filter_map(|r| r.table().map(|t| t.present_count()))
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "same leaf, same table: {counts:?}"
    );
}
