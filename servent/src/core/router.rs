//! Routing, descriptor by descriptor, exactly as PROTOCOL-NOTES §2 says:
//! broadcast of Ping and Query with TTL/hops rules, duplicate suppression,
//! reverse paths for Pong and QueryHit, Push by servent id, the size policy,
//! our own answers (Pong, pong cache, QueryHits), and a counted reason for
//! every drop.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use std::net::Ipv4Addr;

use hazel_protocol::descriptor::{Query, QueryHit, ServentId};
use hazel_protocol::header::DescriptorId;
use hazel_protocol::huge::sha1_urn;

use super::connection::inflate_chunks;
use super::push_guard::PushVerdict;
use super::queue::{Class, Frame};
use super::shares::query_hits::QueryHitParams;
use super::stats::DropReason;
use super::wire::{self, RawHeader, HEADER_LEN};
use super::{hex, Action, ConnId, Core, CoreEvent, PushRequest, SearchResult, LOCAL};

/// Most QueryHit results we read from one hit for our searches.
const MAX_RESULTS_PER_HIT: usize = 256;
/// Most files we list in answer to one Query.
const MAX_RESULTS_PER_QUERY: usize = 100;

impl Core {
    /// Descriptor bytes from an established link: inflate if needed, frame,
    /// route.
    pub(super) fn on_stream_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match conn.inflater.take() {
            None => self.feed_frames(id, bytes, now),
            Some(mut inflater) => {
                let mut scratch = std::mem::take(&mut self.inflate_scratch);
                let ok = inflate_chunks(&mut inflater, bytes, &mut scratch, |chunk| {
                    self.feed_frames(id, chunk, now);
                    // Stop inflating once the connection is gone or closing.
                    self.conns.get(&id).is_some_and(|c| c.is_established())
                });
                self.inflate_scratch = scratch;
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.inflater = Some(inflater);
                }
                if !ok {
                    self.drop_conn(id, "corrupt deflate stream", now);
                }
            }
        }
    }

    /// Splits descriptor bytes into whole descriptors and routes each. Bytes
    /// of an unfinished descriptor wait in the connection's input buffer.
    fn feed_frames(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut pending = std::mem::take(&mut conn.inbuf);
        let rest: &[u8] = if pending.is_empty() {
            // Common case: route straight from the read buffer.
            let used = self.route_frames(id, bytes, now);
            bytes.get(used..).unwrap_or_default()
        } else {
            // Complete the pending descriptor first, without copying more
            // than it needs.
            let mut taken = 0;
            if pending.len() < HEADER_LEN {
                taken = (HEADER_LEN - pending.len()).min(bytes.len());
                pending.extend_from_slice(&bytes[..taken]);
            }
            if let Some(h) = RawHeader::read(&pending) {
                if h.payload_len as usize > wire::MAX_PAYLOAD_LEN {
                    self.drop_conn(id, "descriptor length over 64 KiB", now);
                    return;
                }
                let total = HEADER_LEN + h.payload_len as usize;
                let need = total.saturating_sub(pending.len()).min(bytes.len() - taken);
                pending.extend_from_slice(&bytes[taken..taken + need]);
                taken += need;
                if pending.len() == total {
                    self.route_frames(id, &pending, now);
                    pending.clear();
                    let used = self.route_frames(id, &bytes[taken..], now);
                    taken += used;
                }
            }
            bytes.get(taken..).unwrap_or_default()
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if !conn.is_established() {
            return;
        }
        if pending.is_empty() && pending.capacity() > 2 * wire::MAX_PAYLOAD_LEN {
            pending = Vec::new();
        }
        pending.extend_from_slice(rest);
        conn.inbuf = pending;
    }

    /// Routes every whole descriptor at the start of `bytes`; returns how
    /// many bytes they took. Stops early when the link closes.
    fn route_frames(&mut self, id: ConnId, bytes: &[u8], now: Instant) -> usize {
        if !self.conns.get(&id).is_some_and(|c| c.is_established()) {
            return bytes.len();
        }
        let mut pos = 0;
        while let Some(h) = bytes.get(pos..).and_then(RawHeader::read) {
            let len = h.payload_len as usize;
            if len > wire::MAX_PAYLOAD_LEN {
                self.drop_conn(id, "descriptor length over 64 KiB", now);
                return bytes.len();
            }
            let end = pos + HEADER_LEN + len;
            let Some(frame) = bytes.get(pos..end) else {
                break;
            };
            self.route(id, h, frame, now);
            pos = end;
            if !self.conns.get(&id).is_some_and(|c| c.is_established()) {
                return bytes.len();
            }
        }
        pos
    }

    fn count_drop(&mut self, payload_type: u8, reason: DropReason) {
        self.drops.add(reason, 1);
        self.dropped.add(payload_type, 1);
    }

    /// One descriptor from neighbour `from`.
    pub(super) fn route(&mut self, from: ConnId, h: RawHeader, frame: &[u8], now: Instant) {
        self.received.add(h.payload_type, 1);
        if let Some(conn) = self.conns.get_mut(&from) {
            conn.descriptors_in += 1;
        }
        let payload = frame.get(HEADER_LEN..).unwrap_or_default();
        if h.payload_type == wire::BYE {
            // Only from the neighbour itself; never forwarded.
            let text = wire::read_bye(payload)
                .map(|(code, text)| format!("peer sent Bye {code} {text}"))
                .unwrap_or_else(|| "peer sent Bye".to_string());
            self.close_now(from, &text);
            return;
        }
        if !matches!(
            h.payload_type,
            wire::PING | wire::PONG | wire::PUSH | wire::QUERY | wire::QUERY_HIT
        ) {
            // QRP, vendor messages, HSEP...: read, not forwarded.
            self.count_drop(h.payload_type, DropReason::UnknownType);
            return;
        }
        if h.ttl == 0 {
            self.count_drop(h.payload_type, DropReason::TtlZero);
            return;
        }
        if u16::from(h.ttl) + u16::from(h.hops) > wire::MAX_TTL_PLUS_HOPS {
            self.count_drop(h.payload_type, DropReason::TtlHopsOver15);
            return;
        }
        match h.payload_type {
            wire::PING => self.route_ping(from, h, frame, now),
            wire::QUERY => self.route_query(from, h, frame, payload, now),
            wire::PONG => self.route_pong(from, h, frame, payload, now),
            wire::QUERY_HIT => self.route_query_hit(from, h, frame, payload, now),
            _ => self.route_push(from, h, frame, payload, now),
        }
    }

    /// TTL and hops for forwarding, or `None` when the TTL runs out here.
    fn next_hop(&self, h: &RawHeader) -> Option<(u8, u8)> {
        let ttl = h.ttl.saturating_sub(1);
        let hops = h.hops.saturating_add(1);
        // Clamp TTL + hops to our maximum; never lower hops.
        let ttl = ttl.min(self.config.max_ttl.saturating_sub(hops));
        (ttl > 0).then_some((ttl, hops))
    }

    /// Sends `frame` (with new TTL/hops) to every established neighbour but `from`.
    fn broadcast(
        &mut self,
        from: ConnId,
        class: Class,
        frame: &[u8],
        ttl: u8,
        hops: u8,
        now: Instant,
    ) {
        if self.established.len() <= 1 {
            return;
        }
        let frame: Frame = wire::with_ttl_hops(frame, ttl, hops);
        let payload_type = frame.get(16).copied().unwrap_or(0);
        let mut i = 0;
        // Bounded by the number of established links; enqueue may remove one.
        while let Some(&to) = self.established.get(i) {
            if to != from && self.enqueue(to, class, frame.clone(), now) {
                self.forwarded.add(payload_type, 1);
            }
            if self.established.get(i) == Some(&to) {
                i += 1;
            }
        }
    }

    /// Sends `frame` (with new TTL/hops) to one neighbour along a route.
    fn forward_to(&mut self, to: ConnId, class: Class, frame: &[u8], h: &RawHeader, now: Instant) {
        let Some((ttl, hops)) = self.next_hop(h) else {
            self.count_drop(h.payload_type, DropReason::TtlExpired);
            return;
        };
        if !self.conns.get(&to).is_some_and(|c| c.is_established()) {
            self.count_drop(h.payload_type, DropReason::RouteGone);
            return;
        }
        let frame: Frame = wire::with_ttl_hops(frame, ttl, hops);
        if self.enqueue(to, class, frame, now) {
            self.forwarded.add(h.payload_type, 1);
        }
    }

    fn route_ping(&mut self, from: ConnId, h: RawHeader, frame: &[u8], now: Instant) {
        if !self.ping_routes.insert_new(&h.id, from, now) {
            self.count_drop(wire::PING, DropReason::Duplicate);
            return;
        }
        if !self.conns.contains_key(&from) {
            return;
        }
        // Our own Pong, back along the path the Ping came: every Ping gets
        // one (PROTOCOL-NOTES §2; gtk opens a link with two Pings back to
        // back and expects both answered). The throttle below only limits
        // the work a Ping causes beyond that.
        let reply_ttl = h.hops.saturating_add(1).min(self.config.max_ttl.max(1));
        let pong = self.our_pong();
        let our_pong = wire::descriptor(h.id, wire::PONG, reply_ttl, 0, &pong.payload());
        self.originated.add(wire::PONG, 1);
        self.enqueue(from, Class::Pong, our_pong.into(), now);
        let throttle = self.config.ping_throttle;
        let Some(conn) = self.conns.get_mut(&from) else {
            return;
        };
        if conn
            .last_ping_accepted
            .is_some_and(|t| now.saturating_duration_since(t) < throttle)
        {
            // Neither cached Pongs nor a flood for this neighbour yet.
            self.count_drop(wire::PING, DropReason::PingThrottled);
            return;
        }
        conn.last_ping_accepted = Some(now);
        let Some((ttl, hops)) = self.next_hop(&h) else {
            self.count_drop(wire::PING, DropReason::TtlExpired);
            return;
        };
        // A Ping that would travel on: answer from the pong cache while it is fresh.
        let cached: Vec<_> = self
            .pong_cache
            .fresh(now)
            .map(|p| p.to_vec())
            .unwrap_or_default();
        if !cached.is_empty() {
            self.pings_from_cache += 1;
            for c in cached {
                let fields = c.fields;
                if SocketAddr::from((fields.ip, fields.port)) == self.our_listen_for_pong() {
                    continue;
                }
                let hops = c.hops.saturating_add(1);
                let frame = wire::descriptor(h.id, wire::PONG, reply_ttl, hops, &fields.payload());
                self.originated.add(wire::PONG, 1);
                self.enqueue(from, Class::Pong, frame.into(), now);
            }
            return;
        }
        self.broadcast(from, Class::Ping, frame, ttl, hops, now);
    }

    fn route_query(
        &mut self,
        from: ConnId,
        h: RawHeader,
        frame: &[u8],
        payload: &[u8],
        now: Instant,
    ) {
        if payload.len() > wire::QUERY_DROP_LEN {
            self.count_drop(wire::QUERY, DropReason::QueryTooLong);
            return;
        }
        if !self.query_routes.insert_new(&h.id, from, now) {
            self.count_drop(wire::QUERY, DropReason::Duplicate);
            return;
        }
        self.answer_query(from, &h, payload, now);
        if payload.len() > wire::QUERY_FORWARD_MAX_LEN {
            self.count_drop(wire::QUERY, DropReason::QueryNotForwardedTooLong);
            return;
        }
        let Some((ttl, hops)) = self.next_hop(&h) else {
            self.count_drop(wire::QUERY, DropReason::TtlExpired);
            return;
        };
        self.broadcast(from, Class::Query { hops }, frame, ttl, hops, now);
    }

    /// Asks the library and sends its QueryHits back to `from` (hops 0,
    /// TTL = query hops + 1, capped: the library's builder sets them).
    fn answer_query(&mut self, from: ConnId, h: &RawHeader, payload: &[u8], now: Instant) {
        if self.library.is_empty() {
            return;
        }
        let Ok(query) = Query::parse(payload) else {
            return;
        };
        let params = self.hit_params();
        let hits = self.library.answer_query(
            &query,
            DescriptorId(h.id),
            h.hops,
            &params,
            MAX_RESULTS_PER_QUERY,
        );
        for hit in hits {
            self.originated.add(wire::QUERY_HIT, 1);
            self.enqueue(from, Class::Keep, hit.to_bytes().into(), now);
        }
    }

    /// What our QueryHits say about us.
    fn hit_params(&self) -> QueryHitParams {
        let ip = match self.advertised_ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        QueryHitParams {
            servent_id: ServentId(self.config.servent_id),
            ip,
            port: self.config.listen_addr.port(),
            speed_kbps: self.config.speed_kbps,
            firewalled: self.config.firewalled,
            busy: self.uploads_busy,
            have_uploaded: self.have_uploaded,
            upload_speed_measured: false,
            max_ttl: self.config.max_ttl.max(1),
        }
    }

    fn route_pong(
        &mut self,
        from: ConnId,
        h: RawHeader,
        frame: &[u8],
        payload: &[u8],
        now: Instant,
    ) {
        let Some(fields) = wire::PongFields::read(payload) else {
            self.count_drop(wire::PONG, DropReason::Malformed);
            return;
        };
        // Every Pong seen teaches us a host and refreshes the pong cache.
        let addr = SocketAddr::from((fields.ip, fields.port));
        if !self.is_self_addr(&addr) && super::hosts::is_dialable(&addr) {
            self.hosts.add(addr, now);
            self.pong_cache.insert(fields, h.hops, now);
        }
        match self.ping_routes.get(&h.id) {
            Some(LOCAL) => {
                // An answer to one of our pings: the link is alive.
                if let Some(conn) = self.conns.get_mut(&from) {
                    conn.unanswered_ping_since = None;
                }
            }
            Some(to) if to != from => self.forward_to(to, Class::Pong, frame, &h, now),
            Some(_) => self.count_drop(wire::PONG, DropReason::NoRoute),
            None => self.count_drop(wire::PONG, DropReason::NoRoute),
        }
    }

    fn route_query_hit(
        &mut self,
        from: ConnId,
        h: RawHeader,
        frame: &[u8],
        payload: &[u8],
        now: Instant,
    ) {
        let Some(servent_id) = wire::query_hit_servent_id(payload) else {
            self.count_drop(wire::QUERY_HIT, DropReason::Malformed);
            return;
        };
        let route = self.query_routes.get(&h.id);
        // Pushes for this servent go back the way its hits came, learned
        // only from hits that answer a query we routed (or sent): an
        // unsolicited hit must not divert the Pushes meant for another
        // servent.
        if route.is_some_and(|to| to != from) && servent_id != self.config.servent_id {
            self.push_routes.upsert(&servent_id, from, now);
        }
        match route {
            Some(LOCAL) => self.collect_results(&h, payload),
            Some(to) if to != from => {
                if payload.len() > wire::QUERY_HIT_FORWARD_MAX_LEN {
                    self.count_drop(wire::QUERY_HIT, DropReason::QueryHitTooLong);
                    return;
                }
                self.forward_to(to, Class::Keep, frame, &h, now)
            }
            Some(_) | None => self.count_drop(wire::QUERY_HIT, DropReason::NoRoute),
        }
    }

    fn route_push(
        &mut self,
        from: ConnId,
        h: RawHeader,
        frame: &[u8],
        payload: &[u8],
        now: Instant,
    ) {
        let Some(push) = wire::PushFields::read(payload) else {
            self.count_drop(wire::PUSH, DropReason::Malformed);
            return;
        };
        if !self.push_seen.insert_new(&h.id, 0, now) {
            self.count_drop(wire::PUSH, DropReason::Duplicate);
            return;
        }
        if push.servent_id == self.config.servent_id {
            self.push_for_us(from, push, now);
            return;
        }
        match self.push_routes.get(&push.servent_id) {
            Some(to) if to != from && to != LOCAL => {
                self.forward_to(to, Class::Keep, frame, &h, now)
            }
            _ => self.count_drop(wire::PUSH, DropReason::NoRoute),
        }
    }

    /// A Push addressed to us: a GIV callback, if the file is ours, the
    /// address dialable and the push guard agrees; a flooding link is dropped.
    fn push_for_us(&mut self, from: ConnId, push: wire::PushFields, now: Instant) {
        let addr = SocketAddr::from((push.ip, push.port));
        let verdict = self.push_guard.check(from, addr, push.file_index, now);
        if verdict == PushVerdict::Flood {
            self.count_drop(wire::PUSH, DropReason::PushFlood);
            self.drop_conn(from, "Push flood", now);
            return;
        }
        if self.library.get(push.file_index).is_none() {
            self.count_drop(wire::PUSH, DropReason::PushUnknownFile);
            return;
        }
        if !super::hosts::is_dialable(&addr) {
            self.count_drop(wire::PUSH, DropReason::Malformed);
            return;
        }
        match verdict {
            PushVerdict::CallBack => {
                self.actions
                    .push_back(Action::Event(CoreEvent::PushRequest(PushRequest {
                        file_index: push.file_index,
                        addr,
                        servent_id: hex(&push.servent_id),
                    })));
            }
            PushVerdict::Duplicate => self.count_drop(wire::PUSH, DropReason::PushDuplicate),
            PushVerdict::RateLimited | PushVerdict::Flood => {
                self.count_drop(wire::PUSH, DropReason::PushRateLimited)
            }
        }
    }

    /// A QueryHit for one of our searches: record its results, once per
    /// (servent id, file index).
    fn collect_results(&mut self, h: &RawHeader, payload: &[u8]) {
        let Some(pos) = self.searches.iter().position(|(_, s)| s.query_id == h.id) else {
            self.count_drop(wire::QUERY_HIT, DropReason::StaleReply);
            return;
        };
        let Ok(hit) = QueryHit::parse(payload) else {
            self.count_drop(wire::QUERY_HIT, DropReason::Malformed);
            return;
        };
        let Some((search_id, search)) = self.searches.get_mut(pos) else {
            return;
        };
        let search_id = *search_id;
        let addr = SocketAddr::new(IpAddr::V4(hit.ip), hit.port);
        let needs_push = hit
            .trailer
            .as_ref()
            .and_then(|t| t.flags().push)
            .unwrap_or(false);
        let servent = hex(&hit.servent_id.0);
        let mut fresh = Vec::new();
        for result in hit.results.iter().take(MAX_RESULTS_PER_HIT) {
            if search.results.len() >= super::MAX_RESULTS_PER_SEARCH {
                break;
            }
            if !search.seen.insert((hit.servent_id.0, result.index)) {
                continue;
            }
            let r = SearchResult {
                search: search_id,
                servent_id: servent.clone(),
                addr,
                file_index: result.index,
                size: u64::from(result.size),
                name: String::from_utf8_lossy(&result.name).into_owned(),
                urn: result.sha1().map(|d| sha1_urn(&d)),
                needs_push,
                hops: h.hops,
            };
            search.results.push(r.clone());
            fresh.push(r);
        }
        for r in fresh {
            self.actions
                .push_back(Action::Event(CoreEvent::SearchResult(r)));
        }
    }

    /// Our Pong: real totals from the library; port 0 when firewalled.
    fn our_pong(&self) -> wire::PongFields {
        let (files, kbytes) = self.library.totals();
        let ip = match self.advertised_ip() {
            IpAddr::V4(ip) => ip.octets(),
            IpAddr::V6(_) => [0; 4],
        };
        wire::PongFields {
            port: if self.config.firewalled {
                0
            } else {
                self.config.listen_addr.port()
            },
            ip,
            files,
            kbytes,
        }
    }

    fn our_listen_for_pong(&self) -> SocketAddr {
        let p = self.our_pong();
        SocketAddr::from((p.ip, p.port))
    }
}
