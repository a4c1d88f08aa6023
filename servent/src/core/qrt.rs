//! Our query routing table (QRP, payload 0x30), sent to every ultrapeer we
//! are a leaf of: gtk-gnutella ultrapeers route a Query to a leaf only once
//! it has sent a table, and then only Queries whose words all hit it.
//!
//! The table marks every prefix of every keyword of every shared file name
//! (keywords as the library's search folds them), because the library
//! answers a query word that is a prefix of a name's keyword ("beat" finds
//! "Beatles.mp3"): an ultrapeer hashes the query's words as typed, so each
//! prefix must hit. Files with a known SHA-1 also mark `urn:sha1:<base32>`
//! for URN queries. Hazel never forwards other peers' QRP messages.

use std::sync::Arc;

use hazel_protocol::qrp::{QrpMessage, QueryRouteTable};

use super::shares::keywords::keywords;
use super::shares::Library;

/// The table for `library`'s current shares.
pub fn table_for(library: &Library) -> QueryRouteTable {
    let mut table = QueryRouteTable::leaf_default();
    for file in library.files() {
        for word in keywords(&file.name) {
            for (end, c) in word.char_indices() {
                if let Some(prefix) = word.get(..end + c.len_utf8()) {
                    table.add_word(prefix);
                }
            }
        }
        if let Some(sha1) = file.sha1 {
            let urn = format!("urn:sha1:{}", data_encoding::BASE32_NOPAD.encode(&sha1));
            table.add_word(&urn);
        }
    }
    table
}

/// The QRP payloads that bring a peer holding `sent` up to `current`.
pub fn messages(current: &QueryRouteTable, sent: Option<&Arc<QueryRouteTable>>) -> Vec<Vec<u8>> {
    current
        .patch_from(sent.map(|t| t.as_ref()))
        .iter()
        .map(QrpMessage::encode)
        .collect()
}
