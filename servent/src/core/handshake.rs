//! The core's side of the 0.4 and 0.6 handshakes (PROTOCOL-NOTES §3): what
//! we send, what we accept, refusals with X-Try, deflate negotiation and
//! self-connection detection. Block parsing and encoding are
//! `hazel_protocol::handshake`'s.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::Instant;

use hazel_protocol::handshake::{format_host_list, Handshake, Headers, Parsed};
use hazel_protocol::header::{DescriptorId, Header, PayloadType};

use super::connection::{Connection, Phase};
use super::hosts::HostSource;
use super::queue::Class;
use super::{hex, hosts, ConnId, Core, CoreEvent, Direction, ProtocolVersion};

impl Core {
    /// The first block of an outgoing connection.
    pub(super) fn connect_block(&self, peer: SocketAddr) -> Vec<u8> {
        match self.config.protocol {
            ProtocolVersion::V04 => Handshake::Connect04.to_bytes(),
            ProtocolVersion::V06 => {
                let mut headers = self.our_headers(peer);
                if self.config.deflate {
                    headers.push("Accept-Encoding", "deflate");
                }
                Handshake::connect06(headers).to_bytes()
            }
        }
    }

    /// Headers every 0.6 block of ours carries.
    fn our_headers(&self, peer: SocketAddr) -> Headers {
        let mut h = Headers::new();
        h.push("User-Agent", &self.config.user_agent);
        // A leaf: Hazel does not do ultrapeer duties (routing others' QRP
        // tables, dynamic querying).
        h.push("X-Ultrapeer", "False");
        // It sends its own query routing table (4-bit entries: QRP 0.1) to
        // its ultrapeers.
        h.push("X-Query-Routing", "0.1");
        h.push("Pong-Caching", "0.1");
        h.push("Bye-Packet", "0.1");
        h.push("GGEP", "0.5");
        h.push("Remote-IP", &peer.ip().to_string());
        let ip = self.advertised_ip();
        if !self.config.firewalled && !ip.is_unspecified() {
            let listen = SocketAddr::new(IpAddr::V4(ip), self.config.listen_addr.port());
            h.push("Listen-IP", &listen.to_string());
        }
        // Lets a servent that dialled itself notice it.
        h.push("GUID", &hex(&self.config.servent_id));
        h
    }

    /// Whether a peer's headers are our own (we dialled ourselves).
    fn is_own_headers(&self, headers: &Headers) -> bool {
        headers
            .get("GUID")
            .is_some_and(|g| g.eq_ignore_ascii_case(&hex(&self.config.servent_id)))
    }

    /// Reads the handshake blocks waiting in the connection's input and acts
    /// on them; once established, passes any remaining bytes to the router.
    pub(super) fn drive_handshake(&mut self, id: ConnId, now: Instant) {
        // At most the blocks of one handshake (CONNECT, response, final).
        for _ in 0..3 {
            let Some(conn) = self.links.get_mut(id) else {
                return;
            };
            let parsed = match Handshake::parse_from(&conn.inbuf, &mut conn.head_scan) {
                Ok(Parsed::NeedMore) => return,
                Ok(Parsed::Complete { message, consumed }) => {
                    conn.inbuf.drain(..consumed.min(conn.inbuf.len()));
                    conn.head_scan.reset();
                    message
                }
                Err(_) => {
                    self.drop_conn(id, "malformed handshake", now);
                    return;
                }
            };
            let phase = conn.phase;
            match phase {
                Phase::AwaitingConnect => self.on_connect_block(id, parsed, now),
                Phase::AwaitingResponse => self.on_response_block(id, parsed, now),
                Phase::AwaitingFinal => self.on_final_block(id, parsed, now),
                Phase::Established | Phase::Closing { .. } => return,
            }
            let Some(conn) = self.links.get_mut(id) else {
                return;
            };
            if conn.is_established() {
                let rest = std::mem::take(&mut conn.inbuf);
                if !rest.is_empty() {
                    self.on_stream_bytes(id, &rest, now);
                }
                return;
            }
            if conn.is_closing() {
                return;
            }
        }
    }

    /// Incoming: the peer's CONNECT.
    fn on_connect_block(&mut self, id: ConnId, block: Handshake, now: Instant) {
        let others = self
            .links
            .iter()
            .filter(|c| c.id != id && !c.is_closing())
            .count();
        let full = others >= self.config.max_peers || self.shutting_down;
        // A 0.4 CONNECT that carries headers still expects `GNUTELLA OK`.
        let block = match block {
            Handshake::Connect { version, .. } if version == "0.4" => Handshake::Connect04,
            other => other,
        };
        match block {
            Handshake::Connect04 => {
                if full {
                    // 0.4 has no refusal: close without a word.
                    self.close_now(id, "refused 0.4 peer: full");
                    return;
                }
                if let Some(conn) = self.links.get_mut(id) {
                    conn.version = ProtocolVersion::V04;
                    conn.write_raw(&Handshake::Ok04.to_bytes());
                }
                self.establish(id, now);
            }
            Handshake::Connect { headers, .. } => {
                let Some(conn) = self.links.get_mut(id) else {
                    return;
                };
                conn.version = ProtocolVersion::V06;
                let peer = conn.peer;
                note_peer_headers(conn, &headers);
                let listen = conn.listen_addr;
                if let Some(ip) = headers.remote_ip() {
                    self.dialing.learn_external_ip(ip);
                }
                if self.is_own_headers(&headers) {
                    if let Some(addr) = listen {
                        self.dialing.self_addrs.insert(addr);
                        self.hosts.remove(&addr);
                    }
                    self.refuse(id, 409, "Connected to self", now);
                    return;
                }
                if let Some(addr) = listen {
                    let ultrapeer = headers.ultrapeer() == Some(true);
                    self.hosts.add_host(addr, HostSource::User, ultrapeer, now);
                }
                if self.has_link_to_guid(id) {
                    self.refuse(id, 409, "Already connected", now);
                    return;
                }
                if full {
                    self.refuse(id, 503, "Too many connections", now);
                    return;
                }
                let mut reply = self.our_headers(peer);
                let deflate_out = self.config.deflate && headers.accepts_deflate();
                if self.config.deflate {
                    reply.push("Accept-Encoding", "deflate");
                }
                if deflate_out {
                    reply.push("Content-Encoding", "deflate");
                }
                if let Some(conn) = self.links.get_mut(id) {
                    conn.deflate_out = deflate_out;
                    conn.write_raw(&Handshake::status06(200, "OK", reply).to_bytes());
                    conn.phase = Phase::AwaitingFinal;
                }
                self.links.want_write(id);
            }
            _ => self.drop_conn(id, "expected GNUTELLA CONNECT", now),
        }
    }

    /// Incoming 0.6: the peer's final block.
    fn on_final_block(&mut self, id: ConnId, block: Handshake, now: Instant) {
        match block {
            Handshake::Status {
                code: 200, headers, ..
            } => {
                if let Some(conn) = self.links.get_mut(id) {
                    conn.deflate_in = headers.content_deflate();
                }
                self.establish(id, now);
            }
            Handshake::Status { code, reason, .. } => {
                self.close_now(id, &format!("peer declined: {code} {reason}"))
            }
            _ => self.drop_conn(id, "expected a status line", now),
        }
    }

    /// Outgoing: the peer's answer to our CONNECT.
    fn on_response_block(&mut self, id: ConnId, block: Handshake, now: Instant) {
        let Some(conn) = self.links.get_mut(id) else {
            return;
        };
        let peer = conn.peer;
        match block {
            Handshake::Ok04 => {
                conn.version = ProtocolVersion::V04;
                self.establish(id, now);
            }
            Handshake::Status {
                code,
                reason,
                headers,
                ..
            } => {
                conn.version = ProtocolVersion::V06;
                note_peer_headers(conn, &headers);
                for addr in headers.x_try() {
                    self.hosts.add(SocketAddr::V4(addr), HostSource::XTry, now);
                }
                for addr in headers.x_try_ultrapeers() {
                    self.hosts
                        .add_ultrapeer(SocketAddr::V4(addr), HostSource::XTryUltrapeers, now);
                }
                if let Some(ip) = headers.remote_ip() {
                    self.dialing.learn_external_ip(ip);
                }
                if self.is_own_headers(&headers) {
                    self.dialing.self_addrs.insert(peer);
                    self.hosts.remove(&peer);
                    self.close_now(id, "connected to self");
                    return;
                }
                if let Some(pause) = hosts::refusal_pause(code, &reason, headers.get("Retry-After"))
                {
                    self.hosts.refused(&peer, pause, now);
                    self.close_now(
                        id,
                        &format!(
                            "refused: {code} {reason} (not dialled again for {}s)",
                            pause.as_secs()
                        ),
                    );
                    return;
                }
                if speaks_g2(&headers) {
                    // A G2 hub (Shareaza): its stream would be G2 packets,
                    // not Gnutella descriptors. Decline and forget the host.
                    self.hosts.failed(&peer, now);
                    self.hosts.remove(&peer);
                    self.decline_g2(id, now);
                    return;
                }
                let deflate_out = self.config.deflate && headers.accepts_deflate();
                let mut last = Headers::new();
                if deflate_out {
                    last.push("Content-Encoding", "deflate");
                }
                let Some(conn) = self.links.get_mut(id) else {
                    return;
                };
                conn.write_raw(&Handshake::status06(200, "OK", last).to_bytes());
                conn.deflate_out = deflate_out;
                conn.deflate_in = headers.content_deflate();
                self.establish(id, now);
            }
            Handshake::Connect04 | Handshake::Connect { .. } => {
                self.drop_conn(id, "expected a handshake response", now)
            }
        }
    }

    /// Outgoing: our third step to a G2 hub's 200 is a refusal, then close
    /// once it drained.
    fn decline_g2(&mut self, id: ConnId, now: Instant) {
        let mut headers = Headers::new();
        headers.push("User-Agent", &self.config.user_agent);
        let block = Handshake::status06(406, "Gnutella only, not G2", headers).to_bytes();
        self.links
            .refuse_with(id, &block, "declined: G2 hub".into(), now);
    }

    /// The `503` block for a peer refused before its connection reached the
    /// core (every socket in use): with X-Try hosts, so it can go elsewhere.
    pub fn busy_refusal(&self, peer: SocketAddr) -> Vec<u8> {
        Handshake::status06(503, "Busy", self.refusal_headers(peer)).to_bytes()
    }

    /// Headers of a refusal: who we are, and X-Try hosts to go to instead.
    fn refusal_headers(&self, peer: SocketAddr) -> Headers {
        let mut headers = Headers::new();
        headers.push("User-Agent", &self.config.user_agent);
        headers.push("Remote-IP", &peer.ip().to_string());
        // Lets a servent that dialled itself recognise the refusal as its own.
        headers.push("GUID", &hex(&self.config.servent_id));
        let hosts: Vec<SocketAddrV4> = self
            .hosts
            .recent(X_TRY_HOSTS_ALL)
            .into_iter()
            .filter_map(|a| match a {
                SocketAddr::V4(v4) if !self.is_self_addr(&a) && a != peer => Some(v4),
                _ => None,
            })
            .take(X_TRY_HOSTS)
            .collect();
        if !hosts.is_empty() {
            let list = format_host_list(&hosts);
            headers.push("X-Try", &list);
            headers.push("X-Try-Ultrapeers", &list);
        }
        headers
    }

    /// Sends a refusal (503 with X-Try, or 409 for ourselves) and closes
    /// once it drained.
    fn refuse(&mut self, id: ConnId, code: u16, reason: &str, now: Instant) {
        let Some(conn) = self.links.get(id) else {
            return;
        };
        let headers = self.refusal_headers(conn.peer);
        let block = Handshake::status06(code, reason, headers).to_bytes();
        self.links
            .refuse_with(id, &block, format!("refused: {code} {reason}"), now);
    }

    fn establish(&mut self, id: ConnId, now: Instant) {
        self.links.mark_established(id, now);
        let Some(conn) = self.links.get(id) else {
            return;
        };
        if conn.direction == Direction::Outgoing {
            self.hosts
                .succeeded(&conn.peer, conn.peer_ultrapeer == Some(true), now);
        }
        let info = super::peer_info(conn, now);
        let to_ultrapeer =
            conn.peer_ultrapeer == Some(true) && conn.version == ProtocolVersion::V06;
        self.links.event(CoreEvent::PeerUp(info));
        // Discover hosts: our neighbour answers, and so do the hosts in its
        // pong cache.
        let ping_id = self.new_descriptor_id();
        self.router.sent_ping(&ping_id, now);
        let frame = Header::frame(DescriptorId(ping_id), PayloadType::PING, 2, 0, &[]);
        if let Some(conn) = self.links.get_mut(id) {
            conn.last_keepalive = Some(now);
        }
        self.enqueue(id, Class::Ping, frame.into());
        self.send_messages_supported(id);
        // A leaf tells its ultrapeer what it shares (gtk-gnutella routes no
        // Query to a leaf without a table).
        if to_ultrapeer {
            self.send_query_routes(id, now);
        }
        self.links.want_write(id);
    }

    /// Another live link already leads to the servent that `id`'s GUID names
    /// (both sides dialled each other).
    fn has_link_to_guid(&self, id: ConnId) -> bool {
        let Some(guid) = self.links.get(id).and_then(|c| c.peer_guid.clone()) else {
            return false;
        };
        self.links
            .iter()
            .any(|c| c.id != id && !c.is_closing() && c.peer_guid.as_deref() == Some(&guid))
    }
}

/// True when the peer declares that its stream is G2 (`Content-Type:
/// application/x-gnutella2`): G2 is another protocol, not Gnutella 0.6.
fn speaks_g2(headers: &Headers) -> bool {
    headers.get("Content-Type").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("application/x-gnutella2"))
    })
}

/// Hosts offered in X-Try headers.
const X_TRY_HOSTS: usize = 10;
/// Hosts considered for X-Try before filtering out ourselves and the peer.
const X_TRY_HOSTS_ALL: usize = 32;

/// Records what a peer's headers say about it.
fn note_peer_headers(conn: &mut Connection, headers: &Headers) {
    if let Some(ua) = headers.user_agent() {
        conn.user_agent = ua.chars().take(128).collect();
    }
    conn.peer_ultrapeer = headers.ultrapeer();
    conn.peer_bye = headers.bye_packet().is_some();
    conn.peer_guid = headers
        .get("GUID")
        .filter(|g| g.len() == 32)
        .map(|g| g.to_ascii_lowercase());
    if let Some(listen) = headers.listen_addr() {
        let listen = SocketAddr::V4(listen);
        if super::hosts::is_dialable(&listen) {
            conn.listen_addr = Some(listen);
        }
    }
}
