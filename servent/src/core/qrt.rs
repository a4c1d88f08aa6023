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
use std::time::Instant;

use hazel_protocol::header::{DescriptorId, Header};
use hazel_protocol::qrp::{QrpMessage, QueryRouteTable, PAYLOAD_TYPE};

use super::queue::Class;
use super::shares::keywords::keywords;
use super::shares::Library;
use super::{ConnId, Core};

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

impl Core {
    /// Sends a diff patch to every ultrapeer whose copy of our query
    /// routing table is older than the library.
    pub(super) fn refresh_query_routes(&mut self, now: Instant) {
        let current = self.shares.qrt.clone();
        let stale: Vec<ConnId> = self
            .links
            .established()
            .iter()
            .copied()
            .filter(|id| {
                self.links
                    .get(*id)
                    .is_some_and(|c| match (&c.qrt_sent, &current) {
                        (None, _) => false,
                        (Some(_), None) => true,
                        (Some(sent), Some(cur)) => !Arc::ptr_eq(sent, cur),
                    })
            })
            .collect();
        for id in stale {
            self.send_query_routes(id, now);
        }
    }

    /// Sends `id` (an ultrapeer we are a leaf of) what it lacks of our
    /// current query routing table: RESET + PATCHes the first time, a diff
    /// patch later, nothing when it is up to date.
    pub(super) fn send_query_routes(&mut self, id: ConnId, now: Instant) {
        let _ = now;
        let current = match &self.shares.qrt {
            Some(t) => Arc::clone(t),
            None => {
                let t = Arc::new(table_for(&self.shares.library));
                self.shares.qrt = Some(Arc::clone(&t));
                t
            }
        };
        let Some(conn) = self.links.get_mut(id) else {
            return;
        };
        let payloads = messages(&current, conn.qrt_sent.as_ref());
        conn.qrt_sent = Some(Arc::clone(&current));
        for payload in payloads {
            let frame = Header::frame(
                DescriptorId(self.new_descriptor_id()),
                PAYLOAD_TYPE,
                1,
                0,
                &payload,
            );
            // Never dropped: a lost piece would spoil the whole patch.
            if self.enqueue(id, Class::Keep, frame.into()) {
                self.router.count_originated(PAYLOAD_TYPE, 1);
                self.shares.qrp_sent += 1;
            }
        }
    }
}
