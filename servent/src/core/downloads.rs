//! The downloads as the rest of the core sees them: what `get` makes of a
//! result, a URN or a magnet link; URN queries that find more sources;
//! search results that become sources; Pushes sent for firewalled sources;
//! and the download engine's actions turned into the core's.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use hazel_protocol::descriptor::{Extension, Query, SpeedField};
use hazel_protocol::header::{DescriptorId, Header, PayloadType};
use hazel_protocol::huge::{sha1_urn, Urn};
use hazel_protocol::magnet::Magnet;

use super::queue::{Class, Frame};
use super::transfers::record::DownloadRecord;
use super::transfers::source::Origin;
use super::transfers::{
    DiskEvent, DownloadId, DownloadInfo, NewDownload, SourceSpec, TransferAction,
};
use super::{Action, ConnId, Core, CoreEvent, SearchId, SearchResult};

/// The search text of a query that asks by URN only (LimeWire's convention).
const URN_QUERY_TEXT: &str = "\\";

impl Core {
    /// Turns the download engine's actions into the core's.
    pub(super) fn pump_transfers(&mut self, now: Instant) {
        // Bounded: the engine's queue is finite and Pushes add none.
        for _ in 0..1_000_000 {
            let Some(action) = self.transfers.poll_action() else {
                return;
            };
            match action {
                TransferAction::Connect(addr) => {
                    self.links.push_action(Action::ConnectTransfer(addr))
                }
                TransferAction::WantWrite(id) => self.links.push_action(Action::WantWrite(id)),
                TransferAction::Close(id) => self.links.push_action(Action::Close(id)),
                TransferAction::PauseReading(id) => {
                    self.links.push_action(Action::PauseReading(id))
                }
                TransferAction::ResumeReading(id) => {
                    self.links.push_action(Action::ResumeReading(id))
                }
                TransferAction::Disk(job) => self.links.push_action(Action::Disk(job)),
                TransferAction::Push {
                    fetch,
                    servent_id,
                    file_index,
                } => {
                    if !self.send_push(servent_id, file_index, now) {
                        self.transfers.push_unroutable(fetch, now);
                    }
                }
                TransferAction::Event(event) => self.links.event(CoreEvent::Download(event)),
            }
        }
    }

    /// An outgoing download connection to `addr` opened as `id`; false when
    /// no download waits for it (close it).
    pub fn on_transfer_connected(&mut self, id: ConnId, addr: SocketAddr, now: Instant) -> bool {
        let known = self.transfers.on_connected(id, addr, now);
        self.pump_transfers(now);
        known
    }

    /// An outgoing download connection to `addr` failed.
    pub fn on_transfer_connect_failed(&mut self, addr: SocketAddr, error: &str, now: Instant) {
        self.transfers.on_connect_failed(addr, error, now);
        self.pump_transfers(now);
    }

    /// An incoming connection that starts with `GIV `: its bytes follow.
    pub fn on_giv(&mut self, id: ConnId, peer: SocketAddr, now: Instant) {
        self.transfers.on_giv(id, peer, now);
    }

    /// What the disk worker did.
    pub fn on_disk(&mut self, event: DiskEvent, now: Instant) {
        if self.napster_disk(&event) {
            return;
        }
        self.transfers.on_disk(event, now);
        self.transfers.schedule(now);
        self.pump_transfers(now);
    }

    /// A download saved by an earlier run.
    pub fn restore_download(&mut self, record: &DownloadRecord, now: Instant) {
        if !record.napster.is_empty() {
            if !self.napster_restore(record, now) {
                log::warn!(
                    "download {}: an index download's state file that cannot be resumed; ignored",
                    record.id
                );
            }
            return;
        }
        self.transfers.restore(record, now);
        self.pump_transfers(now);
    }

    /// `get RESULT-ID`: downloads that result's file from every result with
    /// its URN. Returns the download's id and whether it is new.
    pub fn get_result(&mut self, result: u64, now: Instant) -> Result<(DownloadId, bool), String> {
        let r = self
            .searches
            .result(result)
            .cloned()
            .ok_or(format!("no result {result} (`results` lists them)"))?;
        if r.napster.is_some() {
            return self.napster_get(&r, now);
        }
        let urn = r.urn.clone().ok_or(format!(
            "result {result} has no urn:sha1: Hazel only downloads what it can verify"
        ))?;
        let sha1 = Urn::parse(urn.as_bytes())
            .sha1()
            .ok_or(format!("result {result}: unreadable urn"))?;
        let known = self.searches.with_urn(&urn);
        let sources = known.iter().map(source_of).collect();
        // The root the chosen hit names (or, failing that, another hit for the file).
        let tiger = tiger_of(&r).or_else(|| known.iter().find_map(tiger_of));
        let added = self.transfers.add(
            NewDownload {
                name: r.name.clone(),
                size: Some(r.size),
                sha1,
                tiger,
                sources,
            },
            now,
        );
        self.pump_transfers(now);
        added
    }

    /// `get urn:sha1:…`: a download found by a URN query (and any result
    /// already known).
    pub fn get_urn(
        &mut self,
        sha1: [u8; 20],
        name: Option<String>,
        now: Instant,
    ) -> Result<(DownloadId, bool), String> {
        self.get_by_hash(sha1, None, name, None, Vec::new(), now)
    }

    /// `get magnet:?…`: its sources are asked directly, and a URN query
    /// looks for more.
    pub fn get_magnet(
        &mut self,
        magnet: &Magnet,
        now: Instant,
    ) -> Result<(DownloadId, bool), String> {
        let sha1 = magnet.sha1.ok_or("the magnet names no SHA-1")?;
        let sources = magnet
            .sources
            .iter()
            .map(|addr| SourceSpec {
                addr: *addr,
                servent_id: None,
                file_index: None,
                needs_push: false,
                origin: Origin::Magnet,
                proxies: Vec::new(),
            })
            .collect();
        self.get_by_hash(
            sha1,
            magnet.tiger,
            magnet.name.clone(),
            magnet.size,
            sources,
            now,
        )
    }

    fn get_by_hash(
        &mut self,
        sha1: [u8; 20],
        tiger: Option<[u8; 24]>,
        name: Option<String>,
        size: Option<u64>,
        mut sources: Vec<SourceSpec>,
        now: Instant,
    ) -> Result<(DownloadId, bool), String> {
        let urn = sha1_urn(&sha1);
        let known = self.searches.with_urn(&urn);
        sources.extend(known.iter().map(source_of));
        let tiger = tiger.or_else(|| known.iter().find_map(tiger_of));
        let name = name
            .or_else(|| known.first().map(|r| r.name.clone()))
            .unwrap_or_else(|| urn.clone());
        let size = size.or_else(|| known.first().map(|r| r.size));
        let added = self.transfers.add(
            NewDownload {
                name,
                size,
                sha1,
                tiger,
                sources,
            },
            now,
        );
        if added.is_ok() {
            self.search_urn(sha1, now);
        }
        self.pump_transfers(now);
        added
    }

    /// Sends a Query for a URN; its hits become sources of the download.
    pub fn search_urn(&mut self, sha1: [u8; 20], now: Instant) -> SearchId {
        let query_id = self.new_descriptor_id();
        let flags = if self.config.firewalled {
            SpeedField::FIREWALLED
        } else {
            0
        };
        let mut query = Query::new(SpeedField::flags(flags), URN_QUERY_TEXT);
        query.extensions.push(Extension::Urn(Urn::Sha1(sha1)));
        let mut payload = Vec::new();
        query.encode(&mut payload);
        let ttl = self.config.ttl.clamp(1, self.config.max_ttl.max(1));
        let frame: Frame =
            Header::frame(DescriptorId(query_id), PayloadType::QUERY, ttl, 0, &payload).into();
        self.router.sent_query(&query_id, now);
        let id = self.searches.start(&sha1_urn(&sha1), query_id);
        self.flood(None, Class::Query { hops: 0 }, &frame);
        id
    }

    /// New search results: those with the URN of a download become its sources.
    pub(super) fn results_to_sources(&mut self, results: &[SearchResult], now: Instant) {
        let mut any = false;
        for r in results {
            let Some(sha1) = r.urn.as_ref().and_then(|u| Urn::parse(u.as_bytes()).sha1()) else {
                continue;
            };
            if let Some(id) = self.transfers.find_by_sha1(&sha1) {
                any |= self.transfers.add_source(id, source_of(r));
            }
        }
        if any {
            self.transfers.schedule(now);
            self.pump_transfers(now);
        }
    }

    /// A magnet link for a result (with its servent as a source when it
    /// accepts connections).
    pub fn magnet_for_result(&self, result: u64) -> Result<String, String> {
        let r = self
            .searches
            .result(result)
            .ok_or(format!("no result {result}"))?;
        let sha1 = r
            .urn
            .as_ref()
            .and_then(|u| Urn::parse(u.as_bytes()).sha1())
            .ok_or(format!("result {result} has no urn:sha1"))?;
        let magnet = Magnet {
            sha1: Some(sha1),
            tiger: tiger_of(r),
            name: Some(r.name.clone()),
            size: Some(r.size),
            sources: if r.needs_push {
                Vec::new()
            } else {
                vec![r.addr]
            },
        };
        Ok(magnet.to_link())
    }

    pub fn pause_download(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        if super::napster::download::NapsterDownloads::is_napster(id) {
            return self.napster_pause(id);
        }
        let r = self.transfers.pause(id, now);
        self.pump_transfers(now);
        r
    }

    pub fn resume_download(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        if super::napster::download::NapsterDownloads::is_napster(id) {
            return self.napster_resume(id, now);
        }
        let r = self.transfers.resume(id, now);
        self.pump_transfers(now);
        r
    }

    pub fn retry_download(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        if super::napster::download::NapsterDownloads::is_napster(id) {
            return self.napster_retry(id, now);
        }
        let r = self.transfers.retry(id, now);
        self.pump_transfers(now);
        r
    }

    pub fn cancel_download(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        if super::napster::download::NapsterDownloads::is_napster(id) {
            return self.napster_cancel(id);
        }
        let r = self.transfers.cancel(id, now);
        self.pump_transfers(now);
        r
    }

    /// The downloads, for `transfers`.
    pub fn downloads(&self, now: Instant) -> Vec<DownloadInfo> {
        let mut list = self.transfers.list(now);
        list.extend(self.napster_download_rows(now));
        list
    }
}

/// A search result as a source of its file.
fn source_of(r: &SearchResult) -> SourceSpec {
    let servent_id = data_encoding::HEXLOWER_PERMISSIVE
        .decode(r.servent_id.as_bytes())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok());
    // A hit from an address nobody can dial is reached by a Push only.
    let dialable = match r.addr.ip() {
        IpAddr::V4(ip) => !ip.is_unspecified() && r.addr.port() != 0,
        IpAddr::V6(_) => false,
    };
    SourceSpec {
        addr: r.addr,
        servent_id,
        file_index: Some(r.file_index),
        needs_push: r.needs_push || !dialable,
        origin: Origin::Search,
        proxies: r.push_proxies.clone(),
    }
}

/// The Tiger tree root a result names (from its `urn:bitprint` or GGEP `TT`).
fn tiger_of(result: &SearchResult) -> Option<[u8; 24]> {
    hazel_protocol::thex::parse_tiger_base32(result.tiger.as_deref()?.as_bytes())
}
