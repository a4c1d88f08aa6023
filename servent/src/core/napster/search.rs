//! Searches on index servers (200 → 201s → 202) and browses (211 → 212s
//! → 213), whose answers join the core's searches as results.

use std::net::SocketAddr;

use hazel_protocol::napster::{
    ClientMessage, Comparison, NumericField, SearchClause, SearchQuery,
    SearchResult as NapSearchResult,
};

use super::session::Pending;
use super::{origin, SEARCH_TIMEOUT};
use crate::core::events::{NapsterHit, SearchResult};
use crate::core::{Action, Core, CoreEvent, SearchId};
use std::time::Instant;

/// What `search` asks of the index beyond its words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSearchOptions {
    pub max_results: Option<u32>,
    pub min_bitrate: Option<u32>,
    pub exclude: Vec<String>,
}

/// The 200 request for `words` with `options`.
pub fn search_query(words: &str, options: &IndexSearchOptions) -> SearchQuery {
    let mut clauses = vec![
        SearchClause::Contains(words.as_bytes().to_vec()),
        SearchClause::MaxResults(options.max_results.unwrap_or(100)),
    ];
    if !options.exclude.is_empty() {
        clauses.push(SearchClause::Excludes(
            options.exclude.join(" ").into_bytes(),
        ));
    }
    if let Some(bitrate) = options.min_bitrate {
        clauses.push(SearchClause::Compare {
            field: NumericField::Bitrate,
            op: Comparison::AtLeast,
            value: u64::from(bitrate),
            quoted: true,
        });
    }
    SearchQuery { clauses }
}

impl Core {
    /// A 201: a result for the oldest search still open on `addr`.
    pub(super) fn index_result(&mut self, addr: SocketAddr, result: NapSearchResult) {
        let Some(&search) = self.napster.searches.get(&addr).and_then(|p| p.front()) else {
            return;
        };
        let added = self
            .searches
            .add_index_result(search, |id| index_search_result(id, search, addr, &result));
        if let Some(r) = added {
            self.links.event(CoreEvent::SearchResult(r));
        }
    }

    /// Starts remembering a search that goes to index servers only.
    pub fn start_index_only_search(&mut self, text: &str) -> SearchId {
        let query_id = self.new_descriptor_id();
        self.searches.start(text, query_id)
    }

    /// Sends search `id` to every server logged in; how many got it.
    pub fn index_search(
        &mut self,
        id: SearchId,
        words: &str,
        options: &IndexSearchOptions,
        now: Instant,
    ) -> usize {
        let query = search_query(words, options);
        let message = ClientMessage::Search(query);
        let mut sent = 0;
        for session in &mut self.napster.sessions {
            let Some(conn) = session.conn.filter(|_| session.is_online()) else {
                continue;
            };
            session.send(&message);
            self.napster
                .searches
                .entry(session.addr)
                .or_default()
                .push(id, now + SEARCH_TIMEOUT);
            self.links.push_action(Action::WantWrite(conn));
            sent += 1;
        }
        sent
    }

    /// `browse NICK`: asks every server logged in for `nick`'s files (211);
    /// they arrive as the results of a search of their own. None when no
    /// server is logged in.
    pub fn index_browse(&mut self, nick: &str) -> Option<SearchId> {
        let online = self.napster.online();
        if online.is_empty() {
            return None;
        }
        let query_id = self.new_descriptor_id();
        let id = self.searches.start(&format!("browse {nick}"), query_id);
        let message = ClientMessage::Browse {
            nick: nick.to_string(),
        };
        for addr in online {
            if self.napster.browses.len() >= Pending::<SearchId>::MAX {
                break;
            }
            self.napster.browses.insert((addr, nick.to_string()), id);
            self.send_to(addr, &message);
        }
        Some(id)
    }

    pub(super) fn browse_entry(
        &mut self,
        addr: SocketAddr,
        entry: hazel_protocol::napster::BrowseEntry,
    ) {
        let Some(&search) = self.napster.browses.get(&(addr, entry.nick.clone())) else {
            return;
        };
        let result = NapSearchResult {
            name: entry.file.name,
            md5: entry.file.md5,
            size: entry.file.size,
            bitrate: entry.file.bitrate,
            freq: entry.file.freq,
            duration: entry.file.duration,
            nick: entry.nick,
            ip: std::net::Ipv4Addr::UNSPECIFIED,
            link_speed: 0,
            weight: None,
        };
        let added = self
            .searches
            .add_index_result(search, |id| index_search_result(id, search, addr, &result));
        if let Some(r) = added {
            self.links.event(CoreEvent::SearchResult(r));
        }
    }

    pub(super) fn browse_end(&mut self, addr: SocketAddr, nick: &str) {
        self.napster.browses.remove(&(addr, nick.to_string()));
    }
}

/// A 201 as one of our results.
fn index_search_result(
    id: u64,
    search: SearchId,
    addr: SocketAddr,
    result: &NapSearchResult,
) -> SearchResult {
    SearchResult {
        id,
        search,
        servent_id: String::new(),
        addr: SocketAddr::new(std::net::IpAddr::V4(result.ip), 0),
        file_index: 0,
        size: result.size,
        name: String::from_utf8_lossy(&result.name).into_owned(),
        urn: None,
        tiger: None,
        needs_push: false,
        push_proxies: Vec::new(),
        busy: None,
        speed: 0,
        hops: 0,
        origin: origin(addr),
        napster: Some(Box::new(NapsterHit {
            nick: result.nick.clone(),
            raw_name: result.name.clone(),
            md5: String::from_utf8_lossy(&result.md5).into_owned(),
            bitrate: result.bitrate,
            frequency: result.freq,
            length: result.duration,
            link_speed: result.link_speed,
        })),
    }
}
