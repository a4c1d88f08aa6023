//! Fuzz target `qrp`: QRP (0x30) payloads and the route-table receiver on
//! arbitrary bytes.
//!
//! The input is a sequence of payloads, each preceded by one length byte.
//! Besides "never panics" (and never allocating from an unchecked table
//! length), it checks the codec contract: whatever decodes re-encodes to the
//! same bytes.
#![no_main]

use hazel_protocol::qrp::{QrpMessage, QrpReceiver};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut receiver = QrpReceiver::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        if let Ok(message) = QrpMessage::decode(payload) {
            assert_eq!(message.encode(), payload, "decode/encode is not exact");
            let _ = receiver.apply(&message);
        }
    }
});
