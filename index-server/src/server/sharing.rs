//! Sharing and searching: shares (100, 870), unshares (102, 110) and
//! searches (200, answered with 201s and a 202).

use std::time::Instant;

use hazel_protocol::napster::{batch_path, SearchQuery, ServerMessage, ShareBatch, SharedFile};

use super::{error_message, text, Outbox, Server};
use crate::catalog::{has_search_words, AddRefused};
use crate::metrics::DropReason;
use crate::session::ConnId;

impl Server {
    /// 870: the files of one directory, shared until the limit is hit.
    pub(super) fn share_batch(&mut self, id: ConnId, batch: ShareBatch, out: &mut Outbox) {
        let ShareBatch { directory, files } = batch;
        for mut file in files {
            file.name = batch_path(&directory, &file.name);
            if !self.add_share(id, file, out) {
                break;
            }
        }
    }

    /// 102: one file, by exact name.
    pub(super) fn unshare(&mut self, id: ConnId, name: &[u8], out: &mut Outbox) {
        if !self.catalog.remove(id, name) {
            let msg = format!("Not sharing \"{}\"", text(name));
            out.message(id, &error_message(msg));
        }
    }

    /// Adds one file; false (with a 404 sent) once the share limit is hit.
    pub(super) fn add_share(&mut self, id: ConnId, file: SharedFile, out: &mut Outbox) -> bool {
        if file.name.is_empty() {
            out.message(id, &error_message("Invalid share request"));
            return true;
        }
        match self.catalog.add(id, &file, self.config.max_shares) {
            Ok(()) | Err(AddRefused::Duplicate) => true,
            Err(AddRefused::Limit) => {
                self.metrics.count_drop(DropReason::ShareLimit);
                let msg = format!("You may share at most {} files", self.config.max_shares);
                out.message(id, &error_message(msg));
                false
            }
            Err(AddRefused::NotOnline) => false,
            Err(AddRefused::Invalid(e)) => {
                let msg = format!("Cannot share \"{}\": {e}", text(&file.name));
                out.message(id, &error_message(msg));
                true
            }
        }
    }

    pub(super) fn search(
        &mut self,
        id: ConnId,
        query: &SearchQuery,
        now: Instant,
        out: &mut Outbox,
    ) {
        let limit = self.config.searches_per_minute;
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let count = session.searches.hit(now);
        if limit > 0 && count > limit {
            // Over the limit: refuse politely; far over it: a flooder.
            if count > limit.saturating_mul(2).max(limit.saturating_add(10)) {
                self.metrics.count_drop(DropReason::SearchFlood);
                out.message(id, &error_message("Search flood: disconnected"));
                out.close(id);
            } else {
                self.metrics.count_drop(DropReason::SearchRateLimited);
                let msg = format!("Too many searches: at most {limit} per minute");
                out.message(id, &error_message(msg));
                out.message(id, &ServerMessage::SearchEnd);
            }
            return;
        }
        if !has_search_words(query) {
            out.message(id, &error_message("Invalid search request"));
            out.message(id, &ServerMessage::SearchEnd);
            return;
        }
        self.metrics.searches_total += 1;
        // Every 201 is encoded straight into the searcher's output buffer:
        // no allocation per result, and one write for the whole answer.
        let buffer = out.buffer(id);
        // Typical 201s are 100–200 bytes: one allocation for the whole answer.
        buffer.reserve(self.config.max_results.min(1000) * 160);
        self.catalog
            .search_into(query, id, self.config.max_results, buffer);
        out.message(id, &ServerMessage::SearchEnd);
    }
}
