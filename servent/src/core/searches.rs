//! Our searches and what came back: each search remembers its Query id and
//! its results, once per (servent id, file index), within fixed bounds.

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use hazel_protocol::descriptor::QueryHitRef;
use hazel_protocol::huge::sha1_urn;
use hazel_protocol::thex::tiger_base32;

use super::events::SearchResult;
use super::hex;
use super::ids::SearchId;

/// Most searches remembered; the oldest is forgotten first.
pub const MAX_SEARCHES: usize = 64;
/// Most results kept per search.
pub const MAX_RESULTS_PER_SEARCH: usize = 2000;
/// Most QueryHit results read from one hit for our searches.
const MAX_RESULTS_PER_HIT: usize = 256;

/// A search we originated and what came back.
struct Search {
    id: SearchId,
    text: String,
    query_id: [u8; 16],
    results: Vec<SearchResult>,
    seen: HashSet<([u8; 16], u32)>,
}

/// What a hit for one of our Query ids did.
#[derive(Debug, PartialEq, Eq)]
pub enum Collected {
    /// New results (possibly none: all already known).
    Results(Vec<SearchResult>),
    /// No search of ours has that Query id any more.
    Stale,
    /// The hit does not decode.
    Malformed,
}

pub struct Searches {
    list: VecDeque<Search>,
    next_id: SearchId,
    next_result: u64,
}

impl Default for Searches {
    fn default() -> Self {
        Searches {
            list: VecDeque::new(),
            next_id: 1,
            next_result: 1,
        }
    }
}

impl Searches {
    /// Starts remembering a search sent with `query_id`; its id.
    pub fn start(&mut self, text: &str, query_id: [u8; 16]) -> SearchId {
        let id = self.next_id;
        self.next_id += 1;
        if self.list.len() >= MAX_SEARCHES {
            self.list.pop_front();
        }
        self.list.push_back(Search {
            id,
            text: text.to_string(),
            query_id,
            results: Vec::new(),
            seen: HashSet::new(),
        });
        id
    }

    /// A QueryHit (`payload`, `hops` travelled) for Query `query_id`: its new
    /// results.
    pub fn collect(&mut self, query_id: &[u8; 16], hops: u8, payload: &[u8]) -> Collected {
        let Some(search) = self.list.iter_mut().find(|s| &s.query_id == query_id) else {
            return Collected::Stale;
        };
        let Ok(hit) = QueryHitRef::parse(payload) else {
            return Collected::Malformed;
        };
        let addr = SocketAddr::new(IpAddr::V4(hit.ip), hit.port);
        let flags = hit.trailer.as_ref().map(|t| t.flags());
        let needs_push = flags.as_ref().and_then(|f| f.push).unwrap_or(false);
        let busy = flags.as_ref().and_then(|f| f.busy);
        let servent = hex(&hit.servent_id.0);
        let push_proxies = hit
            .trailer
            .as_ref()
            .map(|t| t.push_proxies())
            .unwrap_or_default();
        let mut fresh = Vec::new();
        for result in hit.results().take(MAX_RESULTS_PER_HIT) {
            if search.results.len() >= MAX_RESULTS_PER_SEARCH {
                break;
            }
            if !search.seen.insert((hit.servent_id.0, result.index)) {
                continue;
            }
            let r = SearchResult {
                id: self.next_result,
                search: search.id,
                servent_id: servent.clone(),
                addr,
                file_index: result.index,
                size: u64::from(result.size),
                name: String::from_utf8_lossy(result.name).into_owned(),
                urn: result.sha1().map(|d| sha1_urn(&d)),
                tiger: result.tiger().map(|t| tiger_base32(&t)),
                needs_push,
                push_proxies: push_proxies.clone(),
                busy,
                speed: hit.speed,
                hops,
                origin: super::events::ORIGIN_GNUTELLA.to_string(),
                napster: None,
            };
            self.next_result += 1;
            search.results.push(r.clone());
            fresh.push(r);
        }
        Collected::Results(fresh)
    }

    /// Whether a search with this id is remembered.
    pub fn contains(&self, id: SearchId) -> bool {
        self.list.iter().any(|s| s.id == id)
    }

    /// Adds an index result (a 201) to search `id`; the stored result, or
    /// None when the search is forgotten or full. `fill` gets the new id.
    pub fn add_index_result(
        &mut self,
        id: SearchId,
        fill: impl FnOnce(u64) -> SearchResult,
    ) -> Option<SearchResult> {
        let search = self.list.iter_mut().find(|s| s.id == id)?;
        if search.results.len() >= MAX_RESULTS_PER_SEARCH {
            return None;
        }
        let mut r = fill(self.next_result);
        r.search = id;
        self.next_result += 1;
        search.results.push(r.clone());
        Some(r)
    }

    /// The result with this id, while its search is remembered.
    pub fn result(&self, id: u64) -> Option<&SearchResult> {
        self.list
            .iter()
            .flat_map(|s| s.results.iter())
            .find(|r| r.id == id)
    }

    /// Every remembered result for this `urn:sha1:…` (the sources of one file).
    pub fn with_urn(&self, urn: &str) -> Vec<SearchResult> {
        self.list
            .iter()
            .flat_map(|s| s.results.iter())
            .filter(|r| r.urn.as_deref() == Some(urn))
            .cloned()
            .collect()
    }

    /// Results of one search, or of all remembered searches.
    pub fn results(&self, search: Option<SearchId>) -> Vec<SearchResult> {
        self.list
            .iter()
            .filter(|s| search.is_none() || search == Some(s.id))
            .flat_map(|s| s.results.iter().cloned())
            .collect()
    }

    /// The searches remembered: id and text.
    pub fn list(&self) -> Vec<(SearchId, String)> {
        self.list.iter().map(|s| (s.id, s.text.clone())).collect()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazel_protocol::descriptor::{Extension, HitResult, QueryHit, ServentId};
    use hazel_protocol::ggep::{Ggep, GgepExtension, GgepId};
    use hazel_protocol::huge::Urn;
    use std::net::Ipv4Addr;

    fn hit(results: Vec<HitResult>) -> Vec<u8> {
        let hit = QueryHit {
            port: 6346,
            ip: Ipv4Addr::new(192, 0, 2, 1),
            speed: 100,
            results,
            trailer: None,
            servent_id: ServentId([9; 16]),
        };
        let mut out = Vec::new();
        hit.encode(&mut out);
        out
    }

    fn result(index: u32, extensions: Vec<Extension>) -> HitResult {
        HitResult {
            index,
            size: 5000,
            name: format!("f{index}").into_bytes(),
            extensions,
        }
    }

    #[test]
    fn results_keep_the_tiger_root_of_a_bitprint_or_a_tt() {
        let (sha1, tiger) = ([3u8; 20], hazel_protocol::thex::root_of(b"abc"));
        let tt = Ggep::new(vec![GgepExtension::new(
            GgepId::new(b"TT").expect("id"),
            tiger.to_vec(),
        )]);
        let payload = hit(vec![
            result(1, vec![Extension::Urn(Urn::Bitprint { sha1, tiger })]),
            result(
                2,
                vec![Extension::Urn(Urn::Sha1(sha1)), Extension::Ggep(tt)],
            ),
            result(3, vec![Extension::Urn(Urn::Sha1(sha1))]),
        ]);
        let mut searches = Searches::default();
        searches.start("abc", [1; 16]);
        let Collected::Results(results) = searches.collect(&[1; 16], 2, &payload) else {
            panic!("results expected");
        };
        let roots: Vec<Option<String>> = results.iter().map(|r| r.tiger.clone()).collect();
        let b32 = tiger_base32(&tiger);
        assert_eq!(roots, [Some(b32.clone()), Some(b32), None]);
        for r in &results {
            assert_eq!(r.urn.as_deref(), Some(sha1_urn(&sha1).as_str()));
        }
    }
}
