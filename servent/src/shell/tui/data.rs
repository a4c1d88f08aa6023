//! What the full-screen terminal knows, read from the servent's JSON replies
//! (the same replies `hazel ctl --json` prints) and from its events: each
//! reply kind as a typed view with every field optional, so a servent that
//! adds fields never breaks the terminal; and search results grouped by file.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::core::SearchResult;

/// A row of `peers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PeerRow {
    pub id: u64,
    pub addr: String,
    pub direction: String,
    pub protocol: String,
    pub state: String,
    pub user_agent: String,
    pub age_secs: u64,
    pub descriptors_in: u64,
    pub descriptors_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub queued_descriptors: u64,
    pub dropped: u64,
}

/// A source of a download.
/// One index session as `index status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IndexRow {
    pub server: String,
    pub nick: String,
    pub state: String,
    pub shared: u64,
    pub users: Option<u64>,
    pub files: Option<u64>,
    pub retry_in_secs: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SourceRow {
    pub addr: String,
    pub origin: String,
    pub push: bool,
    pub delivered: u64,
    pub state: String,
    pub last_error: Option<String>,
}

/// A download of `transfers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DownloadRow {
    pub id: u64,
    pub name: String,
    pub urn: String,
    pub size: Option<u64>,
    pub done: u64,
    pub rate: u64,
    pub eta_secs: Option<u64>,
    pub sources_active: u64,
    pub sources_known: u64,
    pub state: String,
    pub verification: String,
    pub last_error: Option<String>,
    pub path: Option<String>,
    pub sources: Vec<SourceRow>,
}

impl DownloadRow {
    /// Done, as a fraction of the size (0 when the size is unknown).
    pub fn fraction(&self) -> f64 {
        match self.size {
            Some(size) if size > 0 => (self.done as f64 / size as f64).clamp(0.0, 1.0),
            Some(_) => 1.0,
            None => 0.0,
        }
    }

    /// Whether it stopped for good (finished or failed).
    pub fn is_over(&self) -> bool {
        matches!(
            self.state.as_str(),
            "complete" | "done" | "failed" | "cancelled"
        )
    }
}

/// An upload of `transfers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UploadRow {
    pub id: u64,
    pub peer: String,
    pub name: Option<String>,
    pub size: u64,
    pub done: u64,
    pub rate: u64,
    pub state: String,
}

/// The reply to `transfers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TransfersView {
    pub downloads: Vec<DownloadRow>,
    pub uploads: Vec<UploadRow>,
}

/// Descriptor counts by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TypeCounts {
    pub ping: u64,
    pub pong: u64,
    pub query: u64,
    pub query_hit: u64,
    pub push: u64,
    pub bye: u64,
    pub other: u64,
}

impl TypeCounts {
    /// The counts in the order of [`TYPE_TITLES`].
    pub fn in_order(&self) -> [u64; 7] {
        [
            self.ping,
            self.pong,
            self.query,
            self.query_hit,
            self.push,
            self.bye,
            self.other,
        ]
    }
}

/// Column titles of the routing counters.
pub const TYPE_TITLES: [&str; 7] = ["Ping", "Pong", "Query", "QHit", "Push", "Bye", "other"];

/// The reply to `stats`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StatsView {
    pub uptime_secs: u64,
    pub received: TypeCounts,
    pub forwarded: TypeCounts,
    pub originated: TypeCounts,
    pub dropped: TypeCounts,
    pub drops_by_reason: BTreeMap<String, u64>,
    pub host_cache: u64,
    pub pong_cache: u64,
    pub connections: u64,
    pub established: u64,
    pub searches: u64,
    pub query_table: u64,
    pub push_routes: u64,
}

/// A shared file of `shares`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SharedRow {
    pub index: u64,
    pub name: String,
    pub size: u64,
    pub sha1: Option<String>,
    pub hits: u64,
    pub uploads: u64,
}

/// The library scanner's counters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ScanView {
    pub scans: u64,
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    pub cache_hits: u64,
}

/// The reply to `shares`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SharesView {
    pub files: u64,
    pub kbytes: u64,
    pub pending_hashes: u64,
    pub scan: Option<ScanView>,
    pub list: Vec<SharedRow>,
}

/// Reads a reply's data as `T`, or says why not.
pub fn read<T: serde::de::DeserializeOwned>(data: &serde_json::Value) -> Option<T> {
    serde_json::from_value(data.clone()).ok()
}

/// What names a file across sources: its SHA-1, or failing that its name and size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKey {
    Urn(String),
    NameSize(String, u64),
}

/// One file found by a search, with every source that has it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileGroup {
    pub key: FileKey,
    /// The name of the first result (others may differ).
    pub name: String,
    pub size: u64,
    /// Result ids, first one first (any of them downloads the file).
    pub results: Vec<u64>,
    /// Distinct servents having it.
    pub sources: Vec<SocketAddr>,
    /// Distinct index users having it (their nicks).
    pub nicks: Vec<String>,
    /// The first result with a urn (the one a download starts from).
    pub with_urn: Option<u64>,
    /// The best speed a source claims (kbit/s).
    pub best_speed: u32,
    /// Sources that need a Push (firewalled).
    pub firewalled: usize,
    /// Sources that said they were busy.
    pub busy: usize,
    /// Where the results came from: `overlay`, `index` or `both`.
    pub origin: &'static str,
}

impl FileGroup {
    fn new(r: &SearchResult, key: FileKey) -> FileGroup {
        // An index result is named by its sharer's path (`\`-separated):
        // the group shows, and sorts by, the file's own name, as an overlay
        // hit for the same file would name it.
        let name = match r.napster {
            Some(_) => r.name.rsplit('\\').next().unwrap_or(&r.name).to_string(),
            None => r.name.clone(),
        };
        FileGroup {
            key,
            name,
            size: r.size,
            results: Vec::new(),
            sources: Vec::new(),
            nicks: Vec::new(),
            with_urn: None,
            best_speed: 0,
            firewalled: 0,
            busy: 0,
            origin: "overlay",
        }
    }

    fn add(&mut self, r: &SearchResult) {
        let origin = if r.origin == crate::core::events::ORIGIN_GNUTELLA {
            "overlay"
        } else {
            "index"
        };
        if self.results.is_empty() {
            self.origin = origin;
        } else if self.origin != origin {
            self.origin = "both";
        }
        self.results.push(r.id);
        if r.urn.is_some() && self.with_urn.is_none() {
            self.with_urn = Some(r.id);
        }
        match &r.napster {
            Some(hit) => {
                if !self.nicks.contains(&hit.nick) {
                    self.nicks.push(hit.nick.clone());
                }
            }
            None => {
                if !self.sources.contains(&r.addr) {
                    self.sources.push(r.addr);
                }
            }
        }
        self.best_speed = self.best_speed.max(r.speed);
        if r.needs_push {
            self.firewalled += 1;
        }
        if r.busy == Some(true) {
            self.busy += 1;
        }
    }

    /// Servents and index users having it.
    pub fn source_count(&self) -> usize {
        self.sources.len() + self.nicks.len()
    }

    /// The result a download of this file starts from.
    pub fn download_result(&self) -> Option<u64> {
        self.with_urn.or_else(|| self.results.first().copied())
    }

    /// The marks column: `F` some source firewalled, `B` some busy, `?` no urn (cannot be
    /// downloaded: Hazel verifies what it fetches).
    pub fn marks(&self) -> String {
        let mut marks = String::new();
        if self.firewalled > 0 {
            marks.push('F');
        }
        if self.busy > 0 {
            marks.push('B');
        }
        // Index results have no urn but are checked by size: only an
        // overlay hit without one cannot be downloaded.
        if matches!(self.key, FileKey::NameSize(..)) && self.origin == "overlay" {
            marks.push('?');
        }
        marks
    }
}

/// Columns a result list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Sources,
    Name,
    Size,
    Speed,
}

impl SortBy {
    /// The next column (the `o` key).
    pub fn next(self) -> SortBy {
        match self {
            SortBy::Sources => SortBy::Name,
            SortBy::Name => SortBy::Size,
            SortBy::Size => SortBy::Speed,
            SortBy::Speed => SortBy::Sources,
        }
    }
}

/// Results of one search grouped by file, kept sorted.
#[derive(Debug, Clone)]
pub struct Grouped {
    pub groups: Vec<FileGroup>,
    pub results: usize,
    pub sort: SortBy,
    /// Largest first (the default for counts and sizes).
    pub descending: bool,
}

impl Default for Grouped {
    fn default() -> Self {
        Grouped {
            groups: Vec::new(),
            results: 0,
            sort: SortBy::Sources,
            descending: true,
        }
    }
}

impl Grouped {
    /// Adds one result to its file's group (a new group if none yet).
    pub fn add(&mut self, r: &SearchResult) {
        // An index result is named by its path (`\`-separated): its last
        // part and its size find the same file among overlay results.
        let leaf_of = |name: &str| name.rsplit('\\').next().unwrap_or(name).to_lowercase();
        let leaf = leaf_of(&r.name);
        let key = match &r.urn {
            Some(urn) => FileKey::Urn(urn.clone()),
            None => FileKey::NameSize(leaf.clone(), r.size),
        };
        self.results += 1;
        let same_file = |g: &FileGroup| {
            g.key == key
                || (leaf_of(&g.name) == leaf
                    && g.size == r.size
                    && (r.napster.is_some() || g.origin == "index"))
        };
        if let Some(group) = self.groups.iter_mut().find(|g| same_file(g)) {
            // An index group found by an overlay hit takes its urn.
            if let FileKey::Urn(_) = key {
                group.key = key.clone();
            }
        }
        match self.groups.iter_mut().find(|g| same_file(g)) {
            Some(group) => group.add(r),
            None => {
                let mut group = FileGroup::new(r, key);
                group.add(r);
                self.groups.push(group);
            }
        }
        self.sort();
    }

    /// Sorts by the chosen column; ties by name, so the order is stable.
    pub fn sort(&mut self) {
        let (sort, descending) = (self.sort, self.descending);
        self.groups.sort_by(|a, b| {
            let order = match sort {
                SortBy::Sources => a.source_count().cmp(&b.source_count()),
                SortBy::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                SortBy::Size => a.size.cmp(&b.size),
                SortBy::Speed => a.best_speed.cmp(&b.best_speed),
            };
            let order = if descending { order.reverse() } else { order };
            order.then_with(|| a.name.cmp(&b.name))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: u64, name: &str, urn: Option<&str>, port: u16, push: bool) -> SearchResult {
        SearchResult {
            id,
            search: 1,
            servent_id: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            file_index: 1,
            size: 1000,
            name: name.into(),
            urn: urn.map(String::from),
            tiger: None,
            needs_push: push,
            push_proxies: Vec::new(),
            busy: Some(port == 3),
            speed: u32::from(port) * 10,
            hops: 1,
            origin: crate::core::events::ORIGIN_GNUTELLA.to_string(),
            napster: None,
        }
    }

    #[test]
    fn results_group_by_urn_else_by_name_and_size() {
        let mut g = Grouped::default();
        g.add(&result(1, "a.ogg", Some("urn:sha1:A"), 1, false));
        g.add(&result(2, "A copy.ogg", Some("urn:sha1:A"), 2, true));
        g.add(&result(3, "b.txt", None, 3, false));
        g.add(&result(4, "B.TXT", None, 4, false));
        g.add(&result(5, "c.txt", Some("urn:sha1:C"), 5, false));
        assert_eq!(g.results, 5);
        assert_eq!(g.groups.len(), 3);
        let a = g.groups.iter().find(|x| x.name == "a.ogg").unwrap();
        assert_eq!(
            (a.source_count(), a.results.clone(), a.best_speed),
            (2, vec![1, 2], 20)
        );
        assert_eq!(a.marks(), "F");
        let b = g.groups.iter().find(|x| x.name == "b.txt").unwrap();
        assert_eq!(b.marks(), "B?");
        // Most sources first, then by name.
        let names: Vec<&str> = g.groups.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["a.ogg", "b.txt", "c.txt"]);
        g.sort = SortBy::Name;
        g.descending = false;
        g.sort();
        let names: Vec<&str> = g.groups.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["a.ogg", "b.txt", "c.txt"]);
        g.descending = true;
        g.sort();
        let names: Vec<&str> = g.groups.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["c.txt", "b.txt", "a.ogg"]);
    }

    #[test]
    fn an_index_result_is_named_and_sorted_by_its_file_name_not_its_path() {
        let mut g = Grouped::default();
        // The index's copy of "zeta" comes first, named by the sharer's folder.
        let mut z = result(1, "aaa\\zeta.ogg", None, 1, false);
        z.origin = "127.0.0.1:8888".into();
        z.napster = Some(Box::new(crate::core::events::NapsterHit {
            nick: "sharer".into(),
            raw_name: b"aaa\\zeta.ogg".to_vec(),
            md5: String::new(),
            bitrate: 0,
            frequency: 0,
            length: 0,
            link_speed: 0,
        }));
        g.add(&z);
        g.add(&result(2, "beta.ogg", Some("urn:sha1:B"), 2, false));
        g.add(&result(3, "zeta.ogg", Some("urn:sha1:Z"), 3, false));
        g.sort = SortBy::Name;
        g.descending = false;
        g.sort();
        let names: Vec<&str> = g.groups.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            ["beta.ogg", "zeta.ogg"],
            "the index copy joined the overlay's"
        );
        let zeta = &g.groups[1];
        assert_eq!((zeta.origin, zeta.results.len()), ("both", 2));
    }
}
