//! Downloads, sans IO: which source gets which range and when, what to ask
//! and what to make of the answers. The event loop only opens sockets and
//! moves bytes; the disk work (writing `.part` files, syncing, hashing,
//! moving finished files) is asked for with [`DiskJob`]s and done on a
//! worker thread, whose [`DiskEvent`]s come back here.
//!
//! - A download is one file (one `urn:sha1`), fetched from up to
//!   `sources_per_download` sources at once, each over a keep-alive HTTP
//!   connection asking for the next run of missing chunks (`Range:
//!   bytes=a-b` on `/uri-res/N2R?urn:sha1:…`). When nothing is missing, a
//!   free source doubles a chunk another is still fetching, and the first
//!   to finish wins ([`pieces`]).
//! - A source that fails, stalls (no byte for `stall_timeout`) or is far
//!   slower than the others loses its range to another; `503` waits for
//!   its `Retry-After`; `404`/`410`/`416` drop it ([`source`]). Alternate
//!   sources come from the `X-Alt` and `X-Gnutella-Alternate-Location`
//!   headers of every answer, and from later search results with the URN.
//! - A firewalled source is reached through a Push along its hit's reverse
//!   path; its GIV comes back on the listening port and is matched by
//!   servent id and file index, then the request goes out on that socket.
//!   Pushes time out and are retried a bounded number of times, further
//!   apart than gtk-gnutella's Push throttle (see `push_timeout`). When we
//!   are firewalled too, the source cannot be reached at all, and a
//!   download whose every source is like that fails saying so.
//! - With a Tiger tree (a trusted root from the hit or the magnet, the tree
//!   from a source's `/uri-res/N2X`), each range is checked as soon as it
//!   is on the disk, and a source sending wrong bytes is caught at the range
//!   it corrupted ([`verify`]).
//! - When every chunk is in, the whole file's SHA-1 is checked; a mismatch
//!   throws away what is not verified, and the sources that sent it are
//!   suspected (a source suspected twice, or the only source, is dropped).
//!   Verified, the file moves to the downloads folder under a name that
//!   overwrites nothing.
//! - The state of every download is saved next to its `.part` file after
//!   the data it lists was synced ([`record`]), so a restart resumes where it
//!   stopped.

mod fetch;
pub mod pieces;
mod proxied;
pub mod record;
pub mod source;

#[cfg(test)]
mod tests;
mod verify;
#[cfg(test)]
mod verify_tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hazel_protocol::handshake::HeadScanner;
use serde::Serialize;

use super::ids::ConnId;
use fetch::Fetch;
use pieces::Pieces;
use record::{sanitize_name, DownloadRecord};
use source::{Origin, Source};
use verify::TreeState;

pub type DownloadId = u64;
type FetchId = u64;

/// Most downloads kept (running, paused, failed or done).
pub const MAX_DOWNLOADS: usize = 1000;
/// Most sources per download.
pub const MAX_SOURCES: usize = 64;

/// Settings of the download engine.
#[derive(Debug, Clone)]
pub struct TransfersConfig {
    /// Sources fetching one download at once.
    pub sources_per_download: usize,
    /// Downloads fetching at once (the others wait their turn).
    pub active_downloads: usize,
    /// Bytes per chunk: the unit of assignment and of bookkeeping.
    pub chunk_size: u64,
    /// Chunks asked for in one request.
    pub request_chunks: usize,
    /// A connection with no byte for this long is given up.
    pub stall_timeout: Duration,
    /// A Push whose GIV does not come within this is sent again. More than
    /// 30 s: gtk-gnutella answers at most four Pushes from one address in
    /// 30 s, and every Push it refuses starts those 30 s again, so a Push
    /// resent every 30 s is refused for as long as it is resent.
    pub push_timeout: Duration,
    /// Pushes sent for one source before it is given up.
    pub push_attempts: u32,
    /// Bytes handed to the disk and not yet written: above, reading pauses.
    pub disk_high_water: usize,
    /// We cannot accept connections (a firewalled source is out of reach).
    pub firewalled: bool,
    pub user_agent: String,
    /// Where we listen: a mesh or a result naming it is not a source.
    pub own_addr: Option<SocketAddr>,
    /// A checkpoint is saved at least this often while bytes come in.
    pub checkpoint_interval: Duration,
}

impl TransfersConfig {
    /// Whether `addr` is this servent (its listening port, on its address or
    /// on loopback when it listens on every address).
    fn is_own(&self, addr: SocketAddr) -> bool {
        self.own_addr.is_some_and(|own| {
            own.port() == addr.port()
                && (own.ip() == addr.ip() || (own.ip().is_unspecified() && addr.ip().is_loopback()))
        })
    }
}

impl Default for TransfersConfig {
    fn default() -> Self {
        TransfersConfig {
            sources_per_download: 4,
            active_downloads: 8,
            chunk_size: 256 * 1024,
            request_chunks: 4,
            stall_timeout: Duration::from_secs(30),
            push_timeout: Duration::from_secs(40),
            push_attempts: 3,
            disk_high_water: 8 * 1024 * 1024,
            firewalled: false,
            user_agent: format!("Hazel/{}", env!("CARGO_PKG_VERSION")),
            own_addr: None,
            checkpoint_interval: Duration::from_secs(2),
        }
    }
}

/// Disk work, done in order per download by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskJob {
    /// Open (or create) `incomplete/<stem>.part`, `size` bytes when known.
    Open {
        download: DownloadId,
        stem: String,
        size: Option<u64>,
    },
    Write {
        download: DownloadId,
        offset: u64,
        data: Vec<u8>,
    },
    /// Replace `<stem>.state` with `record`, after syncing the `.part` file
    /// when `sync` (the record vouches for newly verified bytes).
    Checkpoint {
        download: DownloadId,
        record: Vec<u8>,
        sync: bool,
    },
    /// Hash `len` bytes of the `.part` file from `offset` as unit `unit` of
    /// `tree` (`generation` comes back with the answer).
    CheckUnit {
        download: DownloadId,
        unit: usize,
        generation: u32,
        offset: u64,
        len: u64,
        tree: std::sync::Arc<hazel_protocol::thex::TigerTree>,
    },
    /// Hash the whole `.part` file and compare with `sha1`.
    Verify {
        download: DownloadId,
        sha1: [u8; 20],
    },
    /// Move the `.part` file into the downloads folder as `name` (or
    /// `name (1)`, … : never over an existing file), drop the state file.
    Finish { download: DownloadId, name: String },
    /// Delete the `.part` and state files (a cancelled download).
    Remove { download: DownloadId },
}

/// What the disk worker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskEvent {
    Written {
        download: DownloadId,
        bytes: usize,
    },
    /// A job failed (a full disk, a read-only folder…): the download stops
    /// with this error.
    Failed {
        download: DownloadId,
        error: String,
    },
    Verified {
        download: DownloadId,
        ok: bool,
    },
    /// A [`DiskJob::CheckUnit`]'s answer.
    UnitChecked {
        download: DownloadId,
        unit: usize,
        generation: u32,
        ok: bool,
    },
    Finished {
        download: DownloadId,
        path: PathBuf,
    },
}

/// What happened to a download, for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "download", rename_all = "snake_case")]
pub enum DownloadEvent {
    Started {
        id: DownloadId,
        name: String,
    },
    Completed {
        id: DownloadId,
        name: String,
        path: PathBuf,
        sha1: [u8; 20],
        /// The direct sources the verified bytes came from (for the mesh).
        sources: Vec<SocketAddrV4>,
    },
    Failed {
        id: DownloadId,
        name: String,
        reason: String,
    },
    /// A download without a SHA-1 (from an index) is complete: its size
    /// checked, the file moved to `path`.
    Saved {
        id: DownloadId,
        name: String,
        path: PathBuf,
    },
}

/// What the download engine asks of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferAction {
    /// Open an HTTP connection to a source.
    Connect(SocketAddr),
    WantWrite(ConnId),
    Close(ConnId),
    /// Stop reading this connection for now (the disk is behind).
    PauseReading(ConnId),
    ResumeReading(ConnId),
    Disk(DiskJob),
    /// Send a Push asking `servent_id` to call back for `file_index`;
    /// report an unroutable one with [`Transfers::push_unroutable`].
    Push {
        fetch: u64,
        servent_id: [u8; 16],
        file_index: u32,
    },
    Event(DownloadEvent),
}

/// A source as given to [`Transfers::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub addr: SocketAddr,
    pub servent_id: Option<[u8; 16]>,
    pub file_index: Option<u32>,
    pub needs_push: bool,
    pub origin: Origin,
    /// Its push proxies (a firewalled source's hit names them).
    pub proxies: Vec<SocketAddrV4>,
}

/// A new download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDownload {
    pub name: String,
    pub size: Option<u64>,
    pub sha1: [u8; 20],
    pub tiger: Option<[u8; 24]>,
    pub sources: Vec<SourceSpec>,
}

/// Where a download is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Running,
    Paused,
    /// Every chunk is in; the SHA-1 is being checked.
    Verifying,
    /// Verified; being moved to the downloads folder.
    Finishing,
    Done(PathBuf),
    Failed(String),
}

/// After a SHA-1 mismatch with bytes from several senders: whose parts are
/// being fetched again from the others, and who was tried so far.
#[derive(Debug, Clone)]
struct Isolation {
    /// A source index, or `None` for bytes kept from an earlier run.
    suspect: Option<u16>,
    tested: Vec<Option<u16>>,
}

/// One download.
struct Download {
    id: DownloadId,
    name: String,
    stem: String,
    sha1: [u8; 20],
    /// The Tiger tree: wanted, held, or set aside.
    tree: TreeState,
    /// Finding who sent wrong bytes, when there is no tree to say.
    isolation: Option<Isolation>,
    state: State,
    /// The chunk map, once the size is known.
    pieces: Option<Pieces>,
    sources: Vec<Source>,
    /// Which source sent each chunk (suspects when the hash is wrong).
    chunk_source: Vec<Option<u16>>,
    fetches: usize,
    last_error: Option<String>,
    rate: RateMeter,
    last_checkpoint: Instant,
    unsaved: bool,
    /// Verified bytes the last synced checkpoint named.
    synced_verified: u64,
}

/// A row of `transfers`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DownloadInfo {
    pub id: DownloadId,
    pub name: String,
    pub urn: String,
    pub size: Option<u64>,
    pub done: u64,
    /// Bytes per second over the last seconds.
    pub rate: u64,
    pub eta_secs: Option<u64>,
    pub sources_active: usize,
    pub sources_known: usize,
    pub state: &'static str,
    /// How the bytes are checked: `sha1`, or with a Tiger tree too.
    pub verification: &'static str,
    pub last_error: Option<String>,
    pub path: Option<PathBuf>,
    /// Every source: where, what it sent, how it is doing.
    pub sources: Vec<SourceInfo>,
}

/// A source of a download, as `transfers --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceInfo {
    pub addr: SocketAddr,
    /// How it was learned (a search result, a magnet link, the mesh).
    pub origin: Origin,
    pub push: bool,
    pub delivered: u64,
    pub state: &'static str,
    pub last_error: Option<String>,
}

/// An incoming GIV connection waiting for its line.
struct PendingGiv {
    peer: SocketAddr,
    buf: Vec<u8>,
    scan: HeadScanner,
    since: Instant,
}

/// The download engine.
pub struct Transfers {
    config: TransfersConfig,
    downloads: BTreeMap<DownloadId, Download>,
    next_id: DownloadId,
    fetches: HashMap<FetchId, Fetch>,
    next_fetch: FetchId,
    by_conn: HashMap<ConnId, FetchId>,
    /// Connects under way, by address (several may go to one host).
    connecting: HashMap<SocketAddr, VecDeque<FetchId>>,
    givs: HashMap<ConnId, PendingGiv>,
    disk_in_flight: usize,
    reads_paused: HashSet<ConnId>,
    actions: VecDeque<TransferAction>,
    /// Pushes lately sent to each firewalled servent (by servent id).
    push_pace: HashMap<[u8; 16], PushPace>,
}

/// Bytes a second over a window of about five seconds.
#[derive(Debug, Clone, Copy)]
pub struct RateMeter {
    /// Bytes counted in the current window, and when it began.
    window: (Instant, u64),
    /// The last whole window's rate.
    last: f64,
}

impl RateMeter {
    pub fn new(now: Instant) -> RateMeter {
        RateMeter {
            window: (now, 0),
            last: 0.0,
        }
    }

    pub fn count(&mut self, bytes: u64, now: Instant) {
        let (since, sum) = self.window;
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= Duration::from_secs(5) {
            self.last = sum as f64 / elapsed.as_secs_f64();
            self.window = (now, bytes);
        } else {
            self.window.1 = sum + bytes;
        }
    }

    /// The current window's rate once it is a second long, else the last one's.
    pub fn rate(&self, now: Instant) -> f64 {
        let (since, sum) = self.window;
        let window = now.saturating_duration_since(since).as_secs_f64();
        if window >= 1.0 {
            sum as f64 / window
        } else {
            self.last
        }
    }
}

/// Pushes sent to one servent: at most [`PUSH_BURST`] close together, then
/// none until [`PUSH_QUIET`] has passed since the last. gtk-gnutella answers
/// at most four Pushes from one address within 30 s and starts the 30 s
/// again with every Push it refuses, so several downloads from one
/// firewalled servent, each pushing on its own schedule, would otherwise
/// keep it refusing them all.
#[derive(Debug, Clone, Copy)]
struct PushPace {
    burst: u32,
    last: Instant,
}

/// Pushes sent to one servent in a burst.
pub const PUSH_BURST: u32 = 4;
/// Silence after a burst before the next Push to the same servent.
pub const PUSH_QUIET: Duration = Duration::from_secs(35);
/// Servents whose Push pace is remembered at most.
const MAX_PUSH_PACES: usize = 1024;

impl Transfers {
    pub fn new(config: TransfersConfig) -> Transfers {
        Transfers {
            config,
            downloads: BTreeMap::new(),
            next_id: 1,
            fetches: HashMap::new(),
            next_fetch: 1,
            by_conn: HashMap::new(),
            connecting: HashMap::new(),
            givs: HashMap::new(),
            disk_in_flight: 0,
            reads_paused: HashSet::new(),
            actions: VecDeque::new(),
            push_pace: HashMap::new(),
        }
    }

    pub fn poll_action(&mut self) -> Option<TransferAction> {
        self.actions.pop_front()
    }

    /// Whether connection `id` is one of the downloads' (or a GIV for them).
    pub fn owns(&self, id: ConnId) -> bool {
        self.by_conn.contains_key(&id) || self.givs.contains_key(&id)
    }

    /// Whether a download for this SHA-1 exists.
    pub fn find_by_sha1(&self, sha1: &[u8; 20]) -> Option<DownloadId> {
        self.downloads
            .values()
            .find(|d| &d.sha1 == sha1)
            .map(|d| d.id)
    }

    /// Starts a download, or adds the sources to the one already fetching
    /// that SHA-1. Returns its id and whether it is new.
    pub fn add(&mut self, new: NewDownload, now: Instant) -> Result<(DownloadId, bool), String> {
        if let Some(id) = self.find_by_sha1(&new.sha1) {
            for s in new.sources {
                self.add_source(id, s);
            }
            if let Some(d) = self.downloads.get_mut(&id) {
                if d.size().is_none() {
                    if let Some(size) = new.size {
                        d.set_size(size, self.config.chunk_size);
                    }
                }
            }
            self.schedule(now);
            return Ok((id, false));
        }
        if self.downloads.len() >= MAX_DOWNLOADS {
            return Err(format!(
                "{MAX_DOWNLOADS} downloads are kept already: cancel some first"
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        let stem = self.free_stem(&new.name);
        let mut download = Download::new(id, new.name.clone(), stem, new.sha1, new.tiger, now);
        if let Some(size) = new.size {
            download.set_size(size, self.config.chunk_size);
        }
        self.downloads.insert(id, download);
        for s in new.sources {
            self.add_source(id, s);
        }
        self.open_file(id);
        self.actions
            .push_back(TransferAction::Event(DownloadEvent::Started {
                id,
                name: new.name,
            }));
        self.schedule(now);
        Ok((id, true))
    }

    /// Where we listen as others can reach us (the external address once
    /// learned): downloads say it in `X-Node` and to push proxies.
    pub fn set_own_addr(&mut self, addr: SocketAddr) {
        self.config.own_addr = Some(addr);
    }

    /// A download saved by an earlier run.
    pub fn restore(&mut self, record: &DownloadRecord, now: Instant) {
        let Some(sha1) = hazel_protocol::huge::Urn::parse(record.urn.as_bytes()).sha1() else {
            return;
        };
        if self.downloads.contains_key(&record.id) || self.find_by_sha1(&sha1).is_some() {
            return;
        }
        let tiger = record.tiger.as_ref().and_then(|t| {
            data_encoding::BASE32_NOPAD
                .decode(t.as_bytes())
                .ok()
                .and_then(|b| <[u8; 24]>::try_from(b.as_slice()).ok())
        });
        let mut d = Download::new(
            record.id,
            record.name.clone(),
            record.stem.clone(),
            sha1,
            tiger,
            now,
        );
        if let Some(size) = record.size {
            d.set_size(size, self.config.chunk_size);
            if let Some(pieces) = &mut d.pieces {
                record.restore_into(pieces);
            }
        }
        d.state = match record.state.as_str() {
            "paused" => State::Paused,
            "failed" => State::Failed(record.last_error.clone().unwrap_or_default()),
            _ => State::Running,
        };
        d.last_error = record.last_error.clone();
        d.sources = record
            .sources
            .iter()
            .take(MAX_SOURCES)
            .map(DownloadRecord::source)
            .collect();
        self.next_id = self.next_id.max(record.id + 1);
        self.downloads.insert(record.id, d);
        self.open_file(record.id);
        self.schedule(now);
    }

    fn open_file(&mut self, id: DownloadId) {
        if let Some(d) = self.downloads.get(&id) {
            self.actions.push_back(TransferAction::Disk(DiskJob::Open {
                download: id,
                stem: d.stem.clone(),
                size: d.size(),
            }));
        }
    }

    /// A stem for `incomplete/` no other download uses.
    fn free_stem(&self, name: &str) -> String {
        let base = sanitize_name(name);
        let taken = |s: &str| self.downloads.values().any(|d| d.stem == s);
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|n| format!("{base} ({n})"))
            .find(|s| !taken(s))
            .unwrap_or(base)
    }

    /// Adds a source to download `id` (ignored when it is known already, or
    /// the download has as many as it keeps).
    pub fn add_source(&mut self, id: DownloadId, spec: SourceSpec) -> bool {
        let Some(d) = self.downloads.get_mut(&id) else {
            return false;
        };
        if d.sources
            .iter()
            .any(|s| s.same_as(spec.addr, spec.servent_id))
        {
            // Learn what a search result adds to what the mesh said.
            if let Some(s) = d
                .sources
                .iter_mut()
                .find(|s| s.same_as(spec.addr, spec.servent_id))
            {
                s.servent_id = s.servent_id.or(spec.servent_id);
                s.file_index = s.file_index.or(spec.file_index);
                if !spec.proxies.is_empty() {
                    // A newer hit names its current proxies.
                    s.proxies = spec.proxies.clone();
                }
            }
            return false;
        }
        if d.sources.len() >= MAX_SOURCES || self.config.is_own(spec.addr) {
            return false;
        }
        let mut source = Source::new(
            spec.addr,
            spec.servent_id,
            spec.file_index,
            spec.needs_push,
            spec.origin,
        );
        source.proxies = spec.proxies;
        d.sources.push(source);
        d.unsaved = true;
        true
    }

    // ----- user commands ---------------------------------------------------

    pub fn pause(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        let d = self
            .downloads
            .get_mut(&id)
            .ok_or(format!("no download {id}"))?;
        match d.state {
            State::Running | State::Failed(_) => d.state = State::Paused,
            State::Paused => return Ok(()),
            _ => return Err(format!("download {id} is {}", d.state_name())),
        }
        self.stop_fetches(id, "paused", now);
        self.checkpoint(id, now);
        Ok(())
    }

    pub fn resume(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        let d = self
            .downloads
            .get_mut(&id)
            .ok_or(format!("no download {id}"))?;
        match d.state {
            State::Paused => d.state = State::Running,
            State::Running => return Ok(()),
            _ => {
                return Err(format!(
                    "download {id} is {}; `retry` restarts a failed one",
                    d.state_name()
                ))
            }
        }
        self.checkpoint(id, now);
        self.schedule(now);
        Ok(())
    }

    /// A failed (or stuck) download starts again with every source forgiven.
    pub fn retry(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        let d = self
            .downloads
            .get_mut(&id)
            .ok_or(format!("no download {id}"))?;
        if matches!(
            d.state,
            State::Done(_) | State::Verifying | State::Finishing
        ) {
            return Err(format!("download {id} is {}", d.state_name()));
        }
        d.state = State::Running;
        d.last_error = None;
        for s in &mut d.sources {
            if !matches!(
                s.dropped,
                Some(source::Dropped::Corrupt | source::Dropped::WrongFile)
            ) {
                s.dropped = None;
            }
            s.failures = 0;
            s.wait_until = None;
        }
        self.open_file(id);
        self.checkpoint(id, now);
        self.schedule(now);
        Ok(())
    }

    /// Stops the download and removes its partial file.
    pub fn cancel(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        if !self.downloads.contains_key(&id) {
            return Err(format!("no download {id}"));
        }
        self.stop_fetches(id, "cancelled", now);
        let d = self.downloads.remove(&id);
        if !matches!(d.map(|d| d.state), Some(State::Done(_))) {
            self.actions
                .push_back(TransferAction::Disk(DiskJob::Remove { download: id }));
        }
        Ok(())
    }

    /// The downloads, for `transfers`.
    pub fn list(&self, now: Instant) -> Vec<DownloadInfo> {
        self.downloads.values().map(|d| d.info(now)).collect()
    }

    /// The SHA-1 and name of a download (for magnets).
    pub fn describe(&self, id: DownloadId) -> Option<(String, [u8; 20], Option<u64>)> {
        self.downloads
            .get(&id)
            .map(|d| (d.name.clone(), d.sha1, d.size()))
    }

    // ----- scheduling --------------------------------------------------------

    /// Starts fetches where sources and missing chunks allow.
    pub fn schedule(&mut self, now: Instant) {
        let mut running = 0;
        let ids: Vec<DownloadId> = self.downloads.keys().copied().collect();
        for id in ids {
            let Some(d) = self.downloads.get(&id) else {
                continue;
            };
            if d.state != State::Running {
                continue;
            }
            running += 1;
            if running > self.config.active_downloads {
                break;
            }
            self.schedule_download(id, now);
        }
    }

    fn schedule_download(&mut self, id: DownloadId, now: Instant) {
        // Bounded by the sources a download keeps.
        for _ in 0..MAX_SOURCES {
            let Some(d) = self.downloads.get_mut(&id) else {
                return;
            };
            if d.fetches >= self.config.sources_per_download {
                return;
            }
            if d.pieces.as_ref().is_some_and(Pieces::complete) {
                return;
            }
            // The fastest ready source first; direct ones before pushes.
            let pick = d
                .sources
                .iter()
                .enumerate()
                .filter(|(_, s)| s.ready(now))
                .filter(|(_, s)| !(s.needs_push && self.config.firewalled))
                .max_by(|(_, a), (_, b)| {
                    (!a.needs_push, a.rate)
                        .partial_cmp(&(!b.needs_push, b.rate))
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .map(|(i, _)| i);
            let Some(source) = pick else {
                self.check_stranded(id, now);
                return;
            };
            // The span is taken when the connection is ready (see `fetch`).
            let has_work = match &d.pieces {
                None => d.fetches == 0,
                Some(p) => {
                    (0..p.count()).any(|i| p.state(i) == Some(pieces::Chunk::Missing))
                        || (0..p.count()).any(|i| p.state(i) == Some(pieces::Chunk::Assigned(1)))
                }
            };
            if !has_work {
                return;
            }
            d.sources[source].busy = true;
            d.fetches += 1;
            self.start_fetch(id, source, now);
        }
    }

    /// When no source can ever be asked again, the download fails, saying why.
    fn check_stranded(&mut self, id: DownloadId, now: Instant) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        if d.fetches > 0 || d.state != State::Running {
            return;
        }
        let usable: Vec<&Source> = d.sources.iter().filter(|s| s.usable()).collect();
        let reachable = usable
            .iter()
            .any(|s| !(s.needs_push && self.config.firewalled));
        if reachable {
            return;
        }
        let reason = if !usable.is_empty() {
            "every source is firewalled, and so are we: neither side can connect to the other"
                .to_string()
        } else if d.sources.is_empty() {
            return; // waiting for a search to find sources
        } else {
            let last = d
                .sources
                .iter()
                .rev()
                .find_map(|s| s.last_error.clone())
                .unwrap_or_default();
            format!("no source left ({} tried; last: {last})", d.sources.len())
        };
        self.fail(id, reason, now);
    }

    fn fail(&mut self, id: DownloadId, reason: String, now: Instant) {
        self.stop_fetches(id, "download failed", now);
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        d.state = State::Failed(reason.clone());
        d.last_error = Some(reason.clone());
        let name = d.name.clone();
        self.actions
            .push_back(TransferAction::Event(DownloadEvent::Failed {
                id,
                name,
                reason,
            }));
        self.checkpoint(id, now);
    }

    /// Timers: stalled connections, Pushes without a GIV, slow sources,
    /// checkpoints, sources whose wait is over.
    pub fn tick(&mut self, now: Instant) {
        self.tick_fetches(now);
        let ids: Vec<DownloadId> = self.downloads.keys().copied().collect();
        for id in ids {
            let due = self.downloads.get(&id).is_some_and(|d| {
                d.unsaved
                    && now.saturating_duration_since(d.last_checkpoint)
                        >= self.config.checkpoint_interval
            });
            if due {
                self.checkpoint(id, now);
            }
        }
        self.schedule(now);
    }

    /// Saves download `id`'s state (after the worker syncs its data).
    fn checkpoint(&mut self, id: DownloadId, now: Instant) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        if matches!(d.state, State::Done(_)) {
            return;
        }
        d.last_checkpoint = now;
        d.unsaved = false;
        let record = d.record();
        // Verified spans must be on the disk before a record names them;
        // received ones are checked again after a restart, so they need not.
        let verified: u64 = record.verified.iter().map(|[a, b]| b - a).sum();
        let sync = verified > d.synced_verified;
        d.synced_verified = verified;
        self.actions
            .push_back(TransferAction::Disk(DiskJob::Checkpoint {
                download: id,
                record: record.to_bytes(),
                sync,
            }));
    }

    // ----- the disk worker's reports ---------------------------------------

    pub fn on_disk(&mut self, event: DiskEvent, now: Instant) {
        match event {
            DiskEvent::Written { bytes, .. } => {
                self.disk_in_flight = self.disk_in_flight.saturating_sub(bytes);
                if self.disk_in_flight <= self.config.disk_high_water / 2 {
                    for conn in std::mem::take(&mut self.reads_paused) {
                        self.actions.push_back(TransferAction::ResumeReading(conn));
                    }
                }
            }
            DiskEvent::Failed { download, error } => {
                if self
                    .downloads
                    .get(&download)
                    .is_some_and(|d| !matches!(d.state, State::Failed(_)))
                {
                    self.fail(download, format!("disk: {error}"), now);
                }
            }
            DiskEvent::Verified { download, ok } => self.verified(download, ok, now),
            DiskEvent::UnitChecked {
                download,
                unit,
                generation,
                ok,
            } => self.unit_checked(download, unit, generation, ok, now),
            DiskEvent::Finished { download, path } => {
                let Some(d) = self.downloads.get_mut(&download) else {
                    return;
                };
                d.state = State::Done(path.clone());
                let name = d.name.clone();
                let senders: HashSet<u16> = d.chunk_source.iter().flatten().copied().collect();
                let mut sources: Vec<SocketAddrV4> = senders
                    .into_iter()
                    .filter_map(|s| d.sources.get(usize::from(s)))
                    .filter(|s| !s.needs_push)
                    .filter_map(|s| match s.addr {
                        SocketAddr::V4(v4) => Some(v4),
                        SocketAddr::V6(_) => None,
                    })
                    .collect();
                sources.sort();
                self.actions
                    .push_back(TransferAction::Event(DownloadEvent::Completed {
                        id: download,
                        name,
                        path,
                        sha1: d.sha1,
                        sources,
                    }));
            }
        }
    }

    /// Every chunk is in and every unit of a tree checked: check the whole file.
    fn maybe_all_in(&mut self, id: DownloadId, now: Instant) {
        let ready = self.downloads.get(&id).is_some_and(|d| {
            d.state == State::Running
                && d.tree.settled()
                && d.pieces.as_ref().is_some_and(Pieces::complete)
        });
        if ready {
            self.all_in(id, now);
        }
    }

    /// Every chunk is in: check the whole file.
    fn all_in(&mut self, id: DownloadId, now: Instant) {
        self.stop_fetches(id, "complete", now);
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        if d.state != State::Running {
            return;
        }
        d.state = State::Verifying;
        let sha1 = d.sha1;
        self.checkpoint(id, now);
        self.actions
            .push_back(TransferAction::Disk(DiskJob::Verify { download: id, sha1 }));
    }

    fn verified(&mut self, id: DownloadId, ok: bool, now: Instant) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        if d.state != State::Verifying {
            return;
        }
        if ok {
            if let Some(p) = &mut d.pieces {
                for i in 0..p.count() {
                    p.verified(i);
                }
            }
            if let Some(Isolation {
                suspect: Some(s), ..
            }) = d.isolation.take()
            {
                // Its parts fetched again from the others, the hash matched.
                if let Some(source) = d.sources.get_mut(usize::from(s)) {
                    log::info!(
                        "download {id}: {} sent wrong bytes (the SHA-1 matched without them)",
                        source.addr
                    );
                    source.set_aside = false;
                    source.drop_for(source::Dropped::Corrupt);
                }
            }
            d.state = State::Finishing;
            let name = sanitize_name(&d.name);
            // No checkpoint: the state file goes with the move (a restart in
            // between checks the SHA-1 again, from the page cache).
            self.actions
                .push_back(TransferAction::Disk(DiskJob::Finish { download: id, name }));
            return;
        }
        // Wrong bytes somewhere: nothing unverified is kept, and whoever
        // sent it is suspected (the only sender, or one suspected before, is
        // dropped). A tree every unit agreed with is not this file's: what
        // it verified goes too.
        let disowned = self.tree_disowned_by_sha1(id);
        if !disowned && self.isolate(id, now) {
            return;
        }
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let senders: HashSet<u16> = d.chunk_source.iter().flatten().copied().collect();
        for &s in &senders {
            if let Some(source) = d.sources.get_mut(usize::from(s)) {
                source.suspicion += 1;
                if senders.len() == 1 || source.suspicion >= 2 {
                    source.drop_for(source::Dropped::Corrupt);
                }
            }
        }
        if let Some(p) = &mut d.pieces {
            p.discard_unverified();
        }
        d.chunk_source.iter_mut().for_each(|c| *c = None);
        d.last_error = Some(if disowned {
            "the file's SHA-1 did not match though its Tiger tree did: the tree is set aside, fetching again".into()
        } else {
            "the file's SHA-1 did not match: fetching again".into()
        });
        d.state = State::Running;
        self.checkpoint(id, now);
        self.schedule(now);
    }

    /// The SHA-1 did not match and the bytes came from several senders:
    /// fetch one sender's parts again from the others (the sender with the
    /// fewest bytes not yet tried), so the next check says whether it lied.
    /// False when there is nothing left to try this way.
    fn isolate(&mut self, id: DownloadId, now: Instant) -> bool {
        let Some(d) = self.downloads.get_mut(&id) else {
            return false;
        };
        let Some(p) = &mut d.pieces else {
            return false;
        };
        let mut tested = Vec::new();
        if let Some(previous) = d.isolation.take() {
            // Its parts were fetched again and the hash still failed: it was
            // not (the only) one lying.
            if let Some(s) = previous
                .suspect
                .and_then(|s| d.sources.get_mut(usize::from(s)))
            {
                s.set_aside = false;
            }
            tested = previous.tested;
        }
        // Bytes in per sender (None: bytes kept from an earlier run).
        let mut groups: BTreeMap<Option<u16>, u64> = BTreeMap::new();
        for i in 0..p.count() {
            if p.state(i) == Some(pieces::Chunk::Received) {
                let sender = d.chunk_source.get(i).copied().flatten();
                *groups.entry(sender).or_default() += p.span(i).len();
            }
        }
        if groups.len() < 2 {
            return false;
        }
        // Someone else must be there to fetch its parts from.
        let others = |suspect: Option<u16>| {
            d.sources
                .iter()
                .enumerate()
                .any(|(i, s)| s.usable() && Some(i) != suspect.map(usize::from))
        };
        let Some((&suspect, _)) = groups
            .iter()
            .filter(|(g, _)| !tested.contains(*g) && others(**g))
            .min_by_key(|(_, bytes)| **bytes)
        else {
            return false;
        };
        for i in 0..p.count() {
            if p.state(i) == Some(pieces::Chunk::Received)
                && d.chunk_source.get(i).copied().flatten() == suspect
            {
                p.discard(i);
            }
        }
        let who = match suspect.and_then(|s| d.sources.get_mut(usize::from(s))) {
            Some(source) => {
                source.set_aside = true;
                source.addr.to_string()
            }
            None => "an earlier run".to_string(),
        };
        tested.push(suspect);
        d.isolation = Some(Isolation { suspect, tested });
        d.last_error = Some(format!(
            "the file's SHA-1 did not match: fetching the parts from {who} again from the others, to find who sent wrong bytes"
        ));
        d.state = State::Running;
        self.checkpoint(id, now);
        self.schedule(now);
        true
    }

    /// Closes every connection of download `id`, giving their spans back.
    fn stop_fetches(&mut self, id: DownloadId, why: &str, now: Instant) {
        let ids: Vec<FetchId> = self
            .fetches
            .iter()
            .filter(|(_, f)| f.download == id)
            .map(|(fid, _)| *fid)
            .collect();
        let _ = why;
        for fid in ids {
            self.end_fetch(fid, None, now);
        }
    }
}

impl Download {
    fn new(
        id: DownloadId,
        name: String,
        stem: String,
        sha1: [u8; 20],
        tiger: Option<[u8; 24]>,
        now: Instant,
    ) -> Download {
        Download {
            id,
            name,
            stem,
            sha1,
            tree: TreeState::from_root(tiger),
            isolation: None,
            state: State::Running,
            pieces: None,
            sources: Vec::new(),
            chunk_source: Vec::new(),
            fetches: 0,
            last_error: None,
            rate: RateMeter::new(now),
            last_checkpoint: now,
            unsaved: true,
            synced_verified: 0,
        }
    }

    fn size(&self) -> Option<u64> {
        self.pieces.as_ref().map(Pieces::size)
    }

    fn set_size(&mut self, size: u64, chunk: u64) {
        if self.pieces.is_none() {
            let pieces = Pieces::new(size, chunk);
            self.chunk_source = vec![None; pieces.count()];
            self.pieces = Some(pieces);
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::Running if self.fetches > 0 => "downloading",
            State::Running => "waiting for sources",
            State::Paused => "paused",
            State::Verifying => "verifying",
            State::Finishing => "moving",
            State::Done(_) => "done",
            State::Failed(_) => "failed",
        }
    }

    fn count_rate(&mut self, bytes: u64, now: Instant) {
        self.rate.count(bytes, now);
    }

    fn info(&self, now: Instant) -> DownloadInfo {
        let done = self.pieces.as_ref().map_or(0, Pieces::done_bytes);
        // Only a running download has a rate (a finished one's would decay).
        let rate = if self.state == State::Running {
            self.rate.rate(now)
        } else {
            0.0
        };
        let eta_secs = match (self.size(), &self.state) {
            (Some(size), State::Running) if rate > 0.0 => {
                Some(((size.saturating_sub(done)) as f64 / rate) as u64)
            }
            _ => None,
        };
        DownloadInfo {
            id: self.id,
            name: self.name.clone(),
            urn: hazel_protocol::huge::sha1_urn(&self.sha1),
            size: self.size(),
            done,
            rate: rate as u64,
            eta_secs,
            sources_active: self.fetches,
            sources_known: self.sources.iter().filter(|s| s.usable()).count(),
            state: self.state_name(),
            verification: self.tree.label(),
            last_error: match &self.state {
                State::Failed(reason) => Some(reason.clone()),
                _ => self.last_error.clone(),
            },
            path: match &self.state {
                State::Done(path) => Some(path.clone()),
                _ => None,
            },
            sources: self
                .sources
                .iter()
                .map(|s| SourceInfo {
                    addr: s.addr,
                    origin: s.origin,
                    push: s.needs_push,
                    delivered: s.delivered,
                    state: if s.dropped.is_some() {
                        "dropped"
                    } else if s.set_aside {
                        "set aside"
                    } else if s.busy {
                        "active"
                    } else if s.wait_until.is_some_and(|t| t > now) {
                        "waiting"
                    } else {
                        "ready"
                    },
                    last_error: s.last_error.clone(),
                })
                .collect(),
        }
    }

    fn record(&self) -> DownloadRecord {
        let (received, verified) = self
            .pieces
            .as_ref()
            .map(DownloadRecord::spans_of)
            .unwrap_or_default();
        DownloadRecord {
            id: self.id,
            name: self.name.clone(),
            stem: self.stem.clone(),
            size: self.size(),
            urn: hazel_protocol::huge::sha1_urn(&self.sha1),
            tiger: self
                .tree
                .root()
                .map(|t| data_encoding::BASE32_NOPAD.encode(&t[..])),
            state: match self.state {
                State::Paused => "paused",
                State::Failed(_) => "failed",
                _ => "running",
            }
            .into(),
            received,
            verified,
            sources: self
                .sources
                .iter()
                .map(DownloadRecord::source_record)
                .collect(),
            last_error: self.last_error.clone(),
            napster: Vec::new(),
        }
    }
}
