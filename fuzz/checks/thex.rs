//! What must hold for any input to the THEX decoder. Shared by the `thex` fuzz target and the
//! replay test in protocol/tests/thex_fuzz_regressions.rs.

use hazel_protocol::thex::dime::parse_records;
use hazel_protocol::thex::{ThexUri, TigerTree};

/// The first byte picks a file size, the next 24 the expected root, the rest is the message.
/// Never panics; whatever decodes hashes up to the expected root, has the file size asked for,
/// and re-encodes to a message that decodes to the same tree.
pub fn check_thex(data: &[u8]) {
    let (size_byte, rest) = data.split_first().unwrap_or((&0, &[]));
    let root: [u8; 24] = rest
        .get(..24)
        .and_then(|r| r.try_into().ok())
        .unwrap_or([0; 24]);
    let message = rest.get(24..).unwrap_or(&[]);
    let _ = parse_records(message);
    let _ = ThexUri::parse(message);
    for size in [u64::from(*size_byte) * 1024 + 7, 0, 4 << 30, u64::MAX] {
        if let Ok(tree) = TigerTree::decode_dime(message, &root, size) {
            assert_eq!(tree.root(), root);
            assert_eq!(tree.file_size(), size);
            let again = TigerTree::decode_dime(&tree.encode_dime(), &root, size);
            assert_eq!(again.as_ref(), Ok(&tree));
        }
        let _ = TigerTree::from_breadth_first(size, &root, message);
    }
}
