//! What the user (through the shell) asks of the core: connect, disconnect,
//! search, send a Push, share a new library, quit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hazel_protocol::descriptor::{PushFixed, Query, ServentId, SpeedField};
use hazel_protocol::header::{DescriptorId, Header, PayloadType};

use super::queue::{Class, Frame};
use super::shares::Library;
use super::{Action, ConnId, ConnectOutcome, Core, SearchId};

impl Core {
    /// Connect to `addr` now, whatever its backoff (the user asked). It joins
    /// the host cache once a connection to it works; a failure is reported
    /// with [`super::CoreEvent::ConnectFailed`].
    pub fn connect(&mut self, addr: SocketAddr, now: Instant) -> ConnectOutcome {
        if self.is_self_addr(&addr) {
            return ConnectOutcome::Ourselves;
        }
        if self.is_connected_to(&addr) {
            return ConnectOutcome::AlreadyConnected;
        }
        if self.shutting_down {
            return ConnectOutcome::ShuttingDown;
        }
        self.hosts.dialling(&addr, now);
        self.dialing.start(addr, true, now);
        self.links.push_action(Action::Connect(addr));
        ConnectOutcome::Dialling
    }

    /// Close connection `id` (with a Bye when the peer understands it).
    /// Returns false for an unknown id.
    pub fn disconnect(&mut self, id: ConnId, now: Instant) -> bool {
        if !self.links.contains(id) {
            return false;
        }
        self.bye_and_close(id, 200, "Disconnected by user", now);
        true
    }

    /// Originates a Query for `text` to every established neighbour, with
    /// the configured TTL.
    pub fn search(&mut self, text: &str, now: Instant) -> SearchId {
        self.search_with_ttl(text, self.config.ttl, now)
    }

    /// Like [`Core::search`] with an explicit TTL (clamped to 1..=max TTL).
    pub fn search_with_ttl(&mut self, text: &str, ttl: u8, now: Instant) -> SearchId {
        let query_id = self.new_descriptor_id();
        // The flags word, never `00 00` (PROTOCOL-NOTES §1).
        let flags = if self.config.firewalled {
            SpeedField::FIREWALLED
        } else {
            0
        };
        let mut payload = Vec::with_capacity(text.len() + 3);
        Query::new(SpeedField::flags(flags), text).encode(&mut payload);
        let ttl = ttl.clamp(1, self.config.max_ttl.max(1));
        let frame: Frame =
            Header::frame(DescriptorId(query_id), PayloadType::QUERY, ttl, 0, &payload).into();
        self.router.sent_query(&query_id, now);
        let search_id = self.searches.start(text, query_id);
        self.flood(None, Class::Query { hops: 0 }, &frame);
        search_id
    }

    /// Originates a Ping with `ttl` (clamped to 1..=max TTL) to every
    /// established neighbour: host discovery as 0.4 servents did it, every
    /// host within `ttl` hops answering with a Pong (or a fresh pong cache
    /// answering for them).
    pub fn ping_with_ttl(&mut self, ttl: u8, now: Instant) {
        let ping_id = self.new_descriptor_id();
        self.router.sent_ping(&ping_id, now);
        let ttl = ttl.clamp(1, self.config.max_ttl.max(1));
        let frame: Frame =
            Header::frame(DescriptorId(ping_id), PayloadType::PING, ttl, 0, &[]).into();
        self.flood(None, Class::Ping, &frame);
    }

    /// Sends a Push asking `servent_id` (learned from its QueryHits) to
    /// connect back to us for `file_index`. False when no route is known.
    pub fn send_push(&mut self, servent_id: [u8; 16], file_index: u32, now: Instant) -> bool {
        let Some(to) = self.router.push_route(&servent_id) else {
            return false;
        };
        if !self.links.is_established(to) {
            return false;
        }
        let payload = PushFixed {
            servent_id: ServentId(servent_id),
            file_index,
            ip: self.advertised_ip(),
            port: self.config.listen_addr.port(),
        }
        .to_bytes();
        let id = self.new_descriptor_id();
        self.router.sent_push(&id, now);
        let ttl = self.config.max_ttl.max(1);
        let frame = Header::frame(DescriptorId(id), PayloadType::PUSH, ttl, 0, &payload);
        self.enqueue(to, Class::Keep, frame.into());
        true
    }

    /// Replaces the shared library (answers and Pong totals use it from now).
    /// Ultrapeers that hold our query routing table get a patch with the
    /// difference at the next tick.
    pub fn set_library(&mut self, library: Arc<Library>) {
        self.shares.library = library;
        self.shares.qrt = None;
    }

    /// Upload state for the flags of our QueryHits (the node knows it).
    pub fn set_upload_state(&mut self, busy: bool, have_uploaded: bool) {
        self.shares.uploads_busy = busy;
        self.shares.have_uploaded = have_uploaded;
    }

    /// Bye to every peer that announced Bye-Packet, close the others; no new
    /// connections from now on. The event loop keeps running until every
    /// connection is closed (at most `close_linger`).
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.dialing.clear();
        // Index sessions end at once (OpenNap has no goodbye message).
        self.index_disconnect(None);
        for id in self.links.ids() {
            self.bye_and_close(id, 200, "Shutting down", now);
        }
    }

    /// True once shutdown was asked and every connection is closed.
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down && self.links.is_empty()
    }
}
