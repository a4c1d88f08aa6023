//! Reaching a firewalled source. Its hit may name push proxies (GGEP
//! `PUSH`): each is asked in turn, over HTTP, to relay a Push to it
//! (`GET /gnutella/push-proxy?ServerId=<base32>&file=<index>` with our
//! address in `X-Node`; `202` means relayed). Then we wait for the GIV as
//! for any Push. When no proxy is left (or none relayed, or the GIV did not
//! come), the Push is routed through the overlay along the hit's reverse
//! path, a bounded number of times.

use std::net::SocketAddr;
use std::time::Instant;

use hazel_protocol::http::{HttpVersion, Method, Request, Resource, Response};

use super::fetch::Phase;
use super::{FetchId, TransferAction, Transfers};

impl Transfers {
    /// Asks for a Push to fetch `fid`'s source: through its next push proxy
    /// if one is left and we can say where to connect back, else routed.
    pub(super) fn reach_firewalled(&mut self, fid: FetchId, now: Instant) {
        let next_proxy = self.fetches.get(&fid).and_then(|f| {
            let source = self.downloads.get(&f.download)?.sources.get(f.source)?;
            source.servent_id?;
            source.proxies.get(f.proxy_tries).copied()
        });
        let reachable_back = self
            .config
            .own_addr
            .is_some_and(|a| !a.ip().is_unspecified() && !self.config.firewalled);
        match (next_proxy, reachable_back) {
            (Some(proxy), true) => {
                let Some(f) = self.fetches.get_mut(&fid) else {
                    return;
                };
                f.proxy_tries += 1;
                f.proxying = true;
                f.phase = Phase::Connecting;
                f.phase_since = now;
                let addr = SocketAddr::V4(proxy);
                self.connecting.entry(addr).or_default().push_back(fid);
                self.actions.push_back(TransferAction::Connect(addr));
            }
            _ => {
                if let Some(f) = self.fetches.get_mut(&fid) {
                    f.proxying = false;
                    f.phase = Phase::AwaitingGiv;
                    f.phase_since = now;
                }
                self.send_push(fid, now);
            }
        }
    }

    /// Connected to a push proxy: ask it to relay.
    pub(super) fn request_push_via_proxy(&mut self, fid: FetchId, now: Instant) {
        let Some(f) = self.fetches.get(&fid) else {
            return;
        };
        let Some(source) = self
            .downloads
            .get(&f.download)
            .and_then(|d| d.sources.get(f.source))
        else {
            return;
        };
        let (Some(guid), Some(own)) = (source.servent_id, self.config.own_addr) else {
            self.proxy_failed(fid, "nothing to ask the proxy", now);
            return;
        };
        let target = Resource::PushProxy {
            guid,
            file: source.file_index.unwrap_or(0),
        }
        .to_target();
        let mut request = Request::new(Method::Get, target, HttpVersion::HTTP_11);
        request
            .headers
            .push("User-Agent", &self.config.user_agent)
            .push("X-Node", &own.to_string())
            .push("Connection", "close");
        let Some(f) = self.fetches.get_mut(&fid) else {
            return;
        };
        f.phase = Phase::Head;
        f.phase_since = now;
        f.last_byte = now;
        if let Some(conn) = f.queue_request(&request) {
            self.actions.push_back(TransferAction::WantWrite(conn));
        }
    }

    /// The proxy answered: relayed (wait for the GIV), or try the next way.
    pub(super) fn proxy_answer(&mut self, fid: FetchId, response: &Response, now: Instant) {
        self.detach_proxy(fid);
        if response.code == 202 {
            if let Some(f) = self.fetches.get_mut(&fid) {
                f.phase = Phase::AwaitingGiv;
                f.phase_since = now;
            }
            return;
        }
        let why = format!(
            "the push proxy answered {} {}",
            response.code, response.reason
        );
        self.proxy_failed(fid, &why, now);
    }

    /// A push proxy could not be reached or would not relay: the next way.
    pub(super) fn proxy_failed(&mut self, fid: FetchId, why: &str, now: Instant) {
        log::debug!("push proxy for fetch {fid}: {why}");
        self.detach_proxy(fid);
        self.reach_firewalled(fid, now);
    }

    /// Closes the connection to the proxy; the fetch stays.
    pub(super) fn detach_proxy(&mut self, fid: FetchId) {
        let Some(f) = self.fetches.get_mut(&fid) else {
            return;
        };
        f.proxying = false;
        f.clear_output();
        if let Some(conn) = f.conn.take() {
            self.by_conn.remove(&conn);
            self.actions.push_back(TransferAction::Close(conn));
        }
    }
}
