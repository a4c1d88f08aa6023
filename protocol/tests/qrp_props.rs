//! Properties of the QRP codec: decoding any bytes gives a message or a
//! typed error (never a panic), decode(encode(m)) == m, and a receiver fed
//! arbitrary messages never panics; any table built from words reaches a
//! receiver intact, and a diff between two tables turns one into the other.

use hazel_protocol::qrp::{Compressor, QrpMessage, QrpReceiver, QueryRouteTable};
use proptest::prelude::*;

fn message() -> impl Strategy<Value = QrpMessage> {
    prop_oneof![
        (any::<u32>(), 1u8..=255).prop_map(|(table_length, infinity)| QrpMessage::Reset {
            table_length,
            infinity
        }),
        (
            1u8..=255,
            any::<bool>(),
            prop::sample::select(vec![1u8, 2, 4, 8]),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_flat_map(|(seq_size, zlib, entry_bits, data)| {
                (1..=seq_size).prop_map(move |seq_no| QrpMessage::Patch {
                    seq_no,
                    seq_size,
                    compressor: if zlib {
                        Compressor::Zlib
                    } else {
                        Compressor::None
                    },
                    entry_bits,
                    data: data.clone(),
                })
            }),
    ]
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(m) = QrpMessage::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn messages_round_trip(m in message()) {
        prop_assert_eq!(QrpMessage::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn a_receiver_survives_any_message_sequence(
        msgs in prop::collection::vec(message(), 0..12),
    ) {
        let mut rx = QrpReceiver::new();
        // Small tables so that valid resets are likely.
        let _ = rx.apply(&QrpMessage::Reset { table_length: 64, infinity: 2 });
        for m in &msgs {
            let _ = rx.apply(m);
        }
        if let Some(t) = rx.table() {
            prop_assert!(t.present_count() <= t.slots() as usize);
        }
    }

    #[test]
    fn tables_and_diffs_reach_the_receiver(
        before in prop::collection::vec("[a-z0-9]{1,10}", 0..40),
        after in prop::collection::vec("[a-z0-9]{1,10}", 0..40),
    ) {
        let build = |words: &[String]| {
            let mut t = QueryRouteTable::leaf_default();
            for w in words {
                t.add_word(w);
            }
            t
        };
        let (a, b) = (build(&before), build(&after));
        let mut rx = QrpReceiver::new();
        for m in a.patch_from(None) {
            prop_assert_eq!(rx.apply(&m), Ok(()));
        }
        prop_assert_eq!(rx.table(), Some(&a));
        for m in b.patch_from(Some(&a)) {
            let is_patch = matches!(m, QrpMessage::Patch { .. });
            prop_assert!(is_patch, "a diff has no reset");
            prop_assert_eq!(rx.apply(&m), Ok(()));
        }
        prop_assert_eq!(rx.table(), Some(&b));
        for w in &after {
            prop_assert!(rx.table().is_some_and(|t| t.contains_word(w)));
        }
    }
}
