//! Carrying out the router's decisions: framing an established link's
//! stream, answering Pings (our Pong, the pong cache) and Queries (the
//! library's hits), flooding, forwarding along routes, collecting hits for our
//! searches, calling back for Pushes, and the Byes and closes around them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hazel_protocol::descriptor::{Bye, PongFixed, PushFixed, Query, ServentId};
use hazel_protocol::framer::FrameRef;
use hazel_protocol::header::{DescriptorId, Header, HeaderView, PayloadType};

use super::events::{CoreEvent, PushRequest};
use super::links::Queued;
use super::push_guard::PushVerdict;
use super::queue::{Class, Frame};
use super::router::{pong_host, Decision, Hop, Router};
use super::searches::Collected;
use super::shares::query_hits::QueryHitParams;
use super::stats::DropReason;
use super::{hex, ConnId, Core, ProtocolVersion};

/// Most files we list in answer to one Query.
const MAX_RESULTS_PER_QUERY: usize = 100;

impl Core {
    /// Descriptor bytes from an established link: frame (inflating if the
    /// peer deflates) and route each whole descriptor, straight from `bytes`
    /// where it lies whole in them.
    pub(super) fn on_stream_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(mut framer) = self.links.get_mut(id).and_then(|c| c.framer.take()) else {
            return;
        };
        let mut scratch = std::mem::take(&mut self.inflate_scratch);
        let result = framer.feed(bytes, &mut scratch, |frame| {
            self.route(id, frame, now);
            // Stop once the link is gone or closing.
            self.links.is_established(id)
        });
        self.inflate_scratch = scratch;
        let Some(conn) = self.links.get_mut(id) else {
            return;
        };
        conn.framer = Some(framer);
        if let Err(e) = result {
            let reason = match e {
                hazel_protocol::DecodeError::TooLong { .. } => "descriptor length over 64 KiB",
                _ => "corrupt deflate stream",
            };
            self.drop_conn(id, reason, now);
        }
    }

    /// One descriptor from neighbour `from`.
    fn route(&mut self, from: ConnId, frame: FrameRef<'_>, now: Instant) {
        if let Some(conn) = self.links.get_mut(from) {
            conn.descriptors_in += 1;
        }
        let header = &frame.header;
        let payload = frame.payload();
        match self.router.route(from, header, payload, now) {
            Decision::Done => {}
            Decision::Vendor => self.on_vendor(from, header, payload, now),
            Decision::Bye(text) => self.close_now(from, &text),
            Decision::Ping { pong_ttl, travel } => {
                self.answer_ping(from, header, pong_ttl);
                if let Some(hop) = travel {
                    self.ping_travels(from, header, frame.bytes, pong_ttl, hop, now);
                }
            }
            Decision::Query { flood } => {
                self.answer_query(from, header, payload);
                if let Some(hop) = flood {
                    let copy = with_hop(frame.bytes, hop);
                    let n = self.flood(Some(from), Class::Query { hops: hop.hops }, &copy);
                    self.router.count_forwarded(PayloadType::QUERY, n);
                }
            }
            Decision::Pong {
                fixed,
                ours,
                forward,
            } => {
                // Every Pong seen teaches us a host and refreshes the pong cache.
                let host = pong_host(&fixed);
                if !self.is_self_addr(&host) && super::hosts::is_dialable(&host) {
                    self.hosts.add(host, super::hosts::HostSource::Pong, now);
                    self.pong_cache.insert(fixed, header.hops, now);
                }
                if ours {
                    // An answer to one of our pings: the link is alive.
                    if let Some(conn) = self.links.get_mut(from) {
                        conn.unanswered_ping_since = None;
                    }
                }
                if let Some((to, hop)) = forward {
                    self.forward_to(to, Class::Pong, frame.bytes, PayloadType::PONG, hop);
                }
            }
            Decision::HitForUs => self.collect_results(header, payload, now),
            Decision::Forward { to, hop, class } => {
                self.forward_to(to, class, frame.bytes, header.payload_type.to_u8(), hop)
            }
            Decision::PushForUs(push) => self.push_for_us(from, push, now),
        }
    }

    /// Our own Pong back along the path the Ping came.
    fn answer_ping(&mut self, from: ConnId, header: &Header, pong_ttl: u8) {
        let ours = Header::frame(
            header.id,
            PayloadType::PONG,
            pong_ttl,
            0,
            &self.our_pong().to_bytes(),
        );
        self.router.count_originated(PayloadType::PONG, 1);
        self.enqueue(from, Class::Pong, ours.into());
    }

    /// A Ping that may travel on: answered from the pong cache while it is
    /// fresh, else flooded.
    fn ping_travels(
        &mut self,
        from: ConnId,
        header: &Header,
        frame: &[u8],
        pong_ttl: u8,
        hop: Hop,
        now: Instant,
    ) {
        let cached: Vec<_> = self
            .pong_cache
            .fresh(now)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        if cached.is_empty() {
            let copy = with_hop(frame, hop);
            let n = self.flood(Some(from), Class::Ping, &copy);
            self.router.count_forwarded(PayloadType::PING, n);
            return;
        }
        self.pings_from_cache += 1;
        let ours = pong_host(&self.our_pong());
        for c in cached {
            if pong_host(&c.fields) == ours {
                continue;
            }
            let hops = c.hops.saturating_add(1);
            let pong = Header::frame(
                header.id,
                PayloadType::PONG,
                pong_ttl,
                hops,
                &c.fields.to_bytes(),
            );
            self.router.count_originated(PayloadType::PONG, 1);
            self.enqueue(from, Class::Pong, pong.into());
        }
    }

    /// Asks the library and sends its QueryHits back to `from` (hops 0,
    /// TTL = query hops + 1, capped: the library's builder sets them).
    fn answer_query(&mut self, from: ConnId, header: &Header, payload: &[u8]) {
        if self.shares.library.is_empty() {
            return;
        }
        let Ok(query) = Query::parse(payload) else {
            return;
        };
        let params = self.hit_params();
        let library = Arc::clone(&self.shares.library);
        let matches = library.search_limited(
            &super::shares::SearchCriteria::from_query(&query),
            MAX_RESULTS_PER_QUERY,
        );
        for file in &matches {
            *self.shares.hits_by_file.entry(file.index).or_insert(0) += 1;
        }
        let hits =
            super::shares::query_hits::build_query_hits(&matches, header.id, header.hops, &params);
        for hit in hits {
            self.router.count_originated(PayloadType::QUERY_HIT, 1);
            self.enqueue(from, Class::Keep, hit.to_bytes().into());
        }
    }

    /// A QueryHit for one of our searches: its new results become events.
    fn collect_results(&mut self, header: &Header, payload: &[u8], now: Instant) {
        match self.searches.collect(&header.id.0, header.hops, payload) {
            Collected::Results(results) => {
                self.results_to_sources(&results, now);
                for r in results {
                    self.links.event(CoreEvent::SearchResult(r));
                }
            }
            Collected::Stale => self
                .router
                .count_drop(PayloadType::QUERY_HIT, DropReason::StaleReply),
            Collected::Malformed => self
                .router
                .count_drop(PayloadType::QUERY_HIT, DropReason::Malformed),
        }
    }

    /// A Push addressed to us: a GIV callback, if the file is ours, the
    /// address dialable and the push guard agrees; a flooding link is dropped.
    fn push_for_us(&mut self, from: ConnId, push: PushFixed, now: Instant) {
        let addr = SocketAddr::from((push.ip, push.port));
        let verdict = self.push_guard.check(from, addr, push.file_index, now);
        if verdict == PushVerdict::Flood {
            self.router
                .count_drop(PayloadType::PUSH, DropReason::PushFlood);
            self.drop_conn(from, "Push flood", now);
            return;
        }
        if self.shares.library.get(push.file_index).is_none() {
            self.router
                .count_drop(PayloadType::PUSH, DropReason::PushUnknownFile);
            return;
        }
        if !super::hosts::is_dialable(&addr) {
            self.router
                .count_drop(PayloadType::PUSH, DropReason::Malformed);
            return;
        }
        match verdict {
            PushVerdict::CallBack => self.links.event(CoreEvent::PushRequest(PushRequest {
                file_index: push.file_index,
                addr,
                servent_id: hex(&push.servent_id.0),
            })),
            PushVerdict::Duplicate => self
                .router
                .count_drop(PayloadType::PUSH, DropReason::PushDuplicate),
            PushVerdict::RateLimited | PushVerdict::Flood => self
                .router
                .count_drop(PayloadType::PUSH, DropReason::PushRateLimited),
        }
    }

    /// Our Pong: real totals from the library; port 0 when firewalled.
    pub(super) fn our_pong(&self) -> PongFixed {
        let (files, kbytes) = self.shares.library.totals();
        PongFixed {
            port: if self.config.firewalled {
                0
            } else {
                self.config.listen_addr.port()
            },
            ip: self.advertised_ip(),
            files,
            kbytes,
        }
    }

    /// What our QueryHits say about us.
    fn hit_params(&self) -> QueryHitParams {
        QueryHitParams {
            servent_id: ServentId(self.config.servent_id),
            ip: self.advertised_ip(),
            port: self.config.listen_addr.port(),
            speed_kbps: self.config.speed_kbps,
            firewalled: self.config.firewalled,
            busy: self.shares.uploads_busy,
            have_uploaded: self.shares.have_uploaded,
            upload_speed_measured: false,
            max_ttl: self.config.max_ttl.max(1),
            push_proxies: if self.config.firewalled {
                self.push_proxies()
            } else {
                Vec::new()
            },
        }
    }

    // ----- sending ---------------------------------------------------------

    /// Queues a descriptor for `to`, counting what the drop policy removed;
    /// false when it was not queued.
    pub(super) fn enqueue(&mut self, to: ConnId, class: Class, frame: Frame) -> bool {
        let queued = self.links.enqueue(to, class, frame);
        count_queued(&mut self.router, to, queued)
    }

    /// Queues `frame` on every established link but `except`; how many took it.
    pub(super) fn flood(&mut self, except: Option<ConnId>, class: Class, frame: &Frame) -> u64 {
        let router = &mut self.router;
        let mut n = 0;
        self.links.flood(except, class, frame, |to, queued| {
            n += u64::from(count_queued(router, to, queued));
        });
        n
    }

    /// Sends a copy of `frame` with `hop` to one neighbour along a route.
    fn forward_to(&mut self, to: ConnId, class: Class, frame: &[u8], payload_type: u8, hop: Hop) {
        if !self.links.is_established(to) {
            self.router.count_drop(payload_type, DropReason::RouteGone);
            return;
        }
        if self.enqueue(to, class, with_hop(frame, hop)) {
            self.router.count_forwarded(payload_type, 1);
        }
    }

    pub(super) fn send_keepalive(&mut self, id: ConnId, now: Instant) {
        let ping_id = self.new_descriptor_id();
        self.router.sent_ping(&ping_id, now);
        let frame = Header::frame(DescriptorId(ping_id), PayloadType::PING, 1, 0, &[]);
        if let Some(conn) = self.links.get_mut(id) {
            conn.last_keepalive = Some(now);
            conn.unanswered_ping_since.get_or_insert(now);
        }
        self.enqueue(id, Class::Ping, frame.into());
    }

    /// Sends a Bye (to peers that announced Bye-Packet on an established
    /// link) and closes once it drained; otherwise closes at once.
    pub(super) fn bye_and_close(&mut self, id: ConnId, code: u16, text: &str, now: Instant) {
        let Some(conn) = self.links.get(id) else {
            return;
        };
        if conn.is_closing() {
            return;
        }
        if conn.is_established() && conn.peer_bye && conn.version == ProtocolVersion::V06 {
            let mut payload = Vec::with_capacity(text.len() + 3);
            Bye {
                code,
                message: text.as_bytes().to_vec(),
            }
            .encode(&mut payload);
            // A Bye's id is never routed: any random bytes will do.
            let bye_id = DescriptorId(rand::Rng::gen(&mut self.rng));
            let frame = Header::frame(bye_id, PayloadType::BYE, 1, 0, &payload);
            self.router.count_originated(PayloadType::BYE, 1);
            self.links
                .send_last(id, frame.into(), format!("sent Bye {code} {text}"), now);
            self.router.link_closed(id);
        } else {
            self.close_now(id, text);
        }
    }

    /// Drops a connection for a protocol violation or a failed handshake.
    pub(super) fn drop_conn(&mut self, id: ConnId, reason: &str, now: Instant) {
        if self.links.is_established(id) {
            self.bye_and_close(id, 400, reason, now);
        } else {
            self.close_now(id, reason);
        }
    }
}

/// Counts what the drop policy removed when `to` was given a descriptor (and
/// forgets `to` in the router if it overflowed); true when it was queued.
fn count_queued(router: &mut Router, to: ConnId, queued: Queued) -> bool {
    let (Queued::Yes(dropped) | Queued::Overflowed(dropped)) = queued else {
        return false;
    };
    for (reason, n) in [
        (DropReason::QueueFullPing, dropped.pings),
        (DropReason::QueueFullQuery, dropped.queries),
        (DropReason::QueueFullPong, dropped.pongs),
        (DropReason::QueueFullOther, dropped.others),
    ] {
        if n > 0 {
            router.count_queue_drops(reason, u64::from(n));
        }
    }
    if matches!(queued, Queued::Overflowed(_)) {
        router.link_closed(to);
        return false;
    }
    true
}

/// A whole descriptor with new TTL and hops (the payload is copied as is),
/// shared: one allocation however many neighbours it is queued for.
fn with_hop(frame: &[u8], hop: Hop) -> Frame {
    let mut out: Frame = Frame::from(frame);
    if let Some(bytes) = std::sync::Arc::get_mut(&mut out) {
        if let Ok(mut view) = HeaderView::new_checked(bytes) {
            view.set_ttl(hop.ttl);
            view.set_hops(hop.hops);
        }
    }
    out
}
