//! Range-by-range verification with a Tiger tree (THEX).
//!
//! A download whose root we trust (a hit's `urn:bitprint`, gtk-gnutella's
//! GGEP `TT`, a magnet's bitprint `xt`) asks one source after another (at
//! most [`MAX_TREE_TRIES`]) for the tree at `/uri-res/N2X?urn:sha1:…`; the
//! tree must hash up to that root and fit the file's size, else the next
//! source is asked. With the tree held, each *unit* (a node of its deepest
//! kept row, 64 KiB or more) is checked by the disk worker as soon as every
//! chunk it covers is on the disk: a good unit makes its chunks verified (a
//! checkpoint keeps them across a restart), a bad one sends its chunks back
//! to missing and blames whoever sent them — so a lying source is caught at
//! the range it corrupted, not at the end. The whole file's SHA-1 is still
//! checked before the file is moved.
//!
//! Whom to believe: a unit failing with bytes from a single source drops
//! that source once the tree has agreed with someone's bytes (a good unit
//! from another source), or at its second failure. When units from two
//! different sources fail and none was ever good, the tree is the liar (a
//! hit may pair a true SHA-1 with a false root): it is set aside and the
//! download goes on with the SHA-1 alone. A SHA-1 mismatch after every unit
//! agreed with the tree likewise means the tree does not belong to this
//! file: it is set aside and what it verified is fetched again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use hazel_protocol::http::{HttpVersion, Method, Request};
use hazel_protocol::huge::TigerDigest;
use hazel_protocol::thex::TigerTree;

use super::pieces::{Chunk, Span};
use super::source::Dropped;
use super::{DiskJob, DownloadId, FetchId, TransferAction, Transfers};

/// Sources asked for a tree before giving up on it for this download.
pub const MAX_TREE_TRIES: usize = 3;

/// Where a download stands with its Tiger tree.
#[derive(Debug, Clone)]
pub(super) enum TreeState {
    /// No trusted root: the whole file's SHA-1 is the only check.
    None,
    /// A trusted root; the tree is asked of the sources (those tried so far).
    Wanted {
        root: TigerDigest,
        tried: Vec<usize>,
        fetching: Option<FetchId>,
    },
    Held(Held),
    /// The tree disagreed with the sources or the SHA-1: only the SHA-1 counts.
    Distrusted,
}

/// A tree being used, and each unit's check.
#[derive(Debug, Clone)]
pub(super) struct Held {
    tree: Arc<TigerTree>,
    units: Vec<Unit>,
    /// Units checked good so far (counting from the last reset).
    good: usize,
    /// Sources blamed for a bad unit, and how many times.
    blamed: Vec<(usize, u32)>,
    /// Sources dropped on its word (pardoned if it proves wrong).
    dropped: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitState {
    /// Waiting for its chunks.
    Open,
    /// Its check is with the disk worker.
    Queued,
    Good,
}

#[derive(Debug, Clone, Copy)]
struct Unit {
    state: UnitState,
    /// Bumped whenever the unit's bytes are thrown away, so a check of older
    /// bytes coming back late is recognised and ignored.
    generation: u32,
}

impl TreeState {
    pub fn from_root(root: Option<TigerDigest>) -> TreeState {
        match root {
            Some(root) => TreeState::Wanted {
                root,
                tried: Vec::new(),
                fetching: None,
            },
            None => TreeState::None,
        }
    }

    /// Whether to ask source `source` for the tree now.
    fn wants_from(&self, source: usize) -> bool {
        matches!(self, TreeState::Wanted { tried, fetching: None, .. }
            if tried.len() < MAX_TREE_TRIES && !tried.contains(&source))
    }

    /// Fetch `fid` ended: if it was asking for the tree, another may.
    pub fn fetch_ended(&mut self, fid: FetchId) {
        if let TreeState::Wanted { fetching, .. } = self {
            if *fetching == Some(fid) {
                *fetching = None;
            }
        }
    }

    /// For `transfers`: how the download is being verified.
    pub fn label(&self) -> &'static str {
        match self {
            TreeState::None => "sha1",
            TreeState::Wanted { .. } => "sha1, tiger tree wanted",
            TreeState::Held(_) => "tiger tree and sha1",
            TreeState::Distrusted => "sha1 (tiger tree set aside)",
        }
    }

    /// No unit is waiting for its check or its bytes (always true without a tree).
    pub fn settled(&self) -> bool {
        match self {
            TreeState::Held(held) => held.units.iter().all(|u| u.state == UnitState::Good),
            _ => true,
        }
    }

    /// The trusted root, as the state file keeps it.
    pub fn root(&self) -> Option<TigerDigest> {
        match self {
            TreeState::Wanted { root, .. } => Some(*root),
            TreeState::Held(held) => Some(held.tree.root()),
            TreeState::None | TreeState::Distrusted => None,
        }
    }
}

impl Held {
    /// The units overlapping `span`.
    fn units_of(&self, span: Span) -> std::ops::Range<usize> {
        if span.is_empty() {
            return 0..0;
        }
        let first = self.tree.unit_of(span.start).unwrap_or(self.units.len());
        let last = self
            .tree
            .unit_of(span.end - 1)
            .map_or(self.units.len(), |u| u + 1);
        first..last
    }

    fn unit_span(&self, unit: usize) -> Span {
        let range = self.tree.span(unit).unwrap_or(0..0);
        Span {
            start: range.start,
            end: range.end,
        }
    }
}

impl Transfers {
    /// If download `id` wants its tree from the source of fetch `fid`, sends
    /// the request for it and returns true.
    pub(super) fn request_tree(&mut self, fid: FetchId, now: Instant) -> bool {
        let Some(f) = self.fetches.get(&fid) else {
            return false;
        };
        let (id, source) = (f.download, f.source);
        let Some(d) = self.downloads.get_mut(&id) else {
            return false;
        };
        if d.size().is_none() || !d.tree.wants_from(source) {
            return false;
        }
        if let TreeState::Wanted {
            tried, fetching, ..
        } = &mut d.tree
        {
            tried.push(source);
            *fetching = Some(fid);
        }
        let host = d.sources.get(source).map(|s| s.addr.to_string());
        let target = hazel_protocol::thex::n2x_target(&d.sha1);
        let mut request = Request::new(Method::Get, target.into_bytes(), HttpVersion::HTTP_11);
        request
            .headers
            .push("Host", &host.unwrap_or_default())
            .push("User-Agent", &self.config.user_agent)
            .push("Connection", "Keep-Alive");
        let Some(f) = self.fetches.get_mut(&fid) else {
            return false;
        };
        f.begin_tree_request(now);
        if let Some(conn) = f.queue_request(&request) {
            self.actions.push_back(TransferAction::WantWrite(conn));
        }
        true
    }

    /// The tree's body arrived whole on fetch `fid`.
    pub(super) fn tree_arrived(&mut self, id: DownloadId, fid: FetchId, body: &[u8]) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        d.tree.fetch_ended(fid);
        let (TreeState::Wanted { root, .. }, Some(size)) = (&d.tree, d.size()) else {
            return;
        };
        match TigerTree::decode_dime(body, root, size) {
            Ok(tree) => {
                log::info!(
                    "download {id}: Tiger tree received ({} units of {} KiB)",
                    tree.unit_count(),
                    tree.unit() / 1024
                );
                let units = vec![
                    Unit {
                        state: UnitState::Open,
                        generation: 0,
                    };
                    tree.unit_count()
                ];
                d.tree = TreeState::Held(Held {
                    tree: Arc::new(tree),
                    units,
                    good: 0,
                    blamed: Vec::new(),
                    dropped: Vec::new(),
                });
                let all = d.pieces.as_ref().map_or(0..0, |p| 0..p.count());
                self.check_units(id, all);
            }
            Err(e) => {
                log::info!("download {id}: unusable Tiger tree from a source: {e}");
            }
        }
    }

    /// Chunks `chunks` of download `id` changed: queue the check of every
    /// unit whose chunks are now all on the disk (units covering only chunks
    /// verified before are good at once).
    pub(super) fn check_units(&mut self, id: DownloadId, chunks: std::ops::Range<usize>) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let (TreeState::Held(held), Some(pieces)) = (&mut d.tree, &mut d.pieces) else {
            return;
        };
        let mut touched = BTreeSet::new();
        for chunk in chunks {
            touched.extend(held.units_of(pieces.span(chunk)));
        }
        for unit in touched {
            if held.units.get(unit).map(|u| u.state) != Some(UnitState::Open) {
                continue;
            }
            let span = held.unit_span(unit);
            let states: Vec<Option<Chunk>> =
                pieces.chunks_of(span).map(|c| pieces.state(c)).collect();
            let all_verified = states.iter().all(|s| *s == Some(Chunk::Verified));
            let all_in = states
                .iter()
                .all(|s| matches!(s, Some(Chunk::Received | Chunk::Verified)));
            if all_verified {
                held.units[unit].state = UnitState::Good;
                held.good += 1;
            } else if all_in {
                held.units[unit].state = UnitState::Queued;
                self.actions
                    .push_back(TransferAction::Disk(DiskJob::CheckUnit {
                        download: id,
                        unit,
                        generation: held.units[unit].generation,
                        offset: span.start,
                        len: span.len(),
                        tree: Arc::clone(&held.tree),
                    }));
            }
        }
    }

    /// The disk worker checked `unit` of download `id` against the tree.
    pub(super) fn unit_checked(
        &mut self,
        id: DownloadId,
        unit: usize,
        generation: u32,
        ok: bool,
        now: Instant,
    ) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let (TreeState::Held(held), Some(pieces)) = (&mut d.tree, &mut d.pieces) else {
            return;
        };
        match held.units.get(unit) {
            Some(u) if u.state == UnitState::Queued && u.generation == generation => {}
            _ => return,
        }
        let span = held.unit_span(unit);
        if ok {
            held.units[unit].state = UnitState::Good;
            held.good += 1;
            for chunk in pieces.chunks_of(span) {
                let chunk_units = held.units_of(pieces.span(chunk));
                if held.units[chunk_units]
                    .iter()
                    .all(|u| u.state == UnitState::Good)
                    && pieces.state(chunk) == Some(Chunk::Received)
                {
                    pieces.verified(chunk);
                }
            }
            d.unsaved = true;
            self.maybe_all_in(id, now);
            return;
        }
        // Wrong bytes in this unit: its chunks go back to missing (the
        // units they also cover are checked again once they are refetched).
        let mut senders = BTreeSet::new();
        for chunk in pieces.chunks_of(span) {
            if let Some(Some(s)) = d.chunk_source.get(chunk) {
                senders.insert(usize::from(*s));
            }
            pieces.discard(chunk);
            if let Some(slot) = d.chunk_source.get_mut(chunk) {
                *slot = None;
            }
            for u in held.units_of(pieces.span(chunk)) {
                let Some(unit) = held.units.get_mut(u) else {
                    continue;
                };
                if unit.state == UnitState::Good {
                    held.good = held.good.saturating_sub(1);
                }
                unit.state = UnitState::Open;
                unit.generation = unit.generation.wrapping_add(1);
            }
        }
        for &s in &senders {
            match held.blamed.iter_mut().find(|(b, _)| *b == s) {
                Some((_, n)) => *n += 1,
                None => held.blamed.push((s, 1)),
            }
        }
        let names: Vec<String> = senders
            .iter()
            .filter_map(|&s| d.sources.get(s).map(|s| s.addr.to_string()))
            .collect();
        let where_ = format!(
            "bytes {}–{} from {} failed the Tiger tree",
            span.start,
            span.end,
            if names.is_empty() {
                "an earlier run".to_string()
            } else {
                names.join(", ")
            }
        );
        if held.good == 0 && held.blamed.len() >= 2 {
            // Nobody's bytes agree with it: the tree is what lies.
            log::info!(
                "download {id}: {where_}; no unit ever matched it, so the tree is set aside"
            );
            d.set_tree_aside();
            d.last_error = Some(format!(
                "{where_}; no source agrees with that tree: verifying by SHA-1 only"
            ));
        } else {
            for &s in &senders {
                let strikes = held
                    .blamed
                    .iter()
                    .find(|(b, _)| *b == s)
                    .map_or(0, |(_, n)| *n);
                if (senders.len() == 1 && held.good > 0) || strikes >= 2 {
                    if let Some(source) = d.sources.get_mut(s) {
                        log::info!("download {id}: dropping {}: {where_}", source.addr);
                        source.drop_for(Dropped::Corrupt);
                        held.dropped.push(s);
                    }
                }
            }
            d.last_error = Some(format!("{where_}: fetching them again"));
        }
        d.unsaved = true;
        self.checkpoint(id, now);
        self.schedule(now);
    }

    /// The whole file's SHA-1 failed: a tree every unit agreed with does not
    /// belong to this file. Returns true when a tree was set aside (what it
    /// verified is no longer trusted).
    pub(super) fn tree_disowned_by_sha1(&mut self, id: DownloadId) -> bool {
        let Some(d) = self.downloads.get_mut(&id) else {
            return false;
        };
        if !matches!(d.tree, TreeState::Held(_)) {
            return false;
        }
        d.set_tree_aside();
        if let Some(p) = &mut d.pieces {
            for i in 0..p.count() {
                if p.state(i) == Some(Chunk::Verified) {
                    p.discard(i);
                }
            }
        }
        true
    }
}

impl super::Download {
    /// The tree proved wrong: only the SHA-1 counts from now on, and the
    /// sources dropped on its word are usable again.
    pub(super) fn set_tree_aside(&mut self) {
        if let TreeState::Held(held) = &self.tree {
            for &s in &held.dropped {
                if let Some(source) = self.sources.get_mut(s) {
                    source.pardon();
                }
            }
        }
        self.tree = TreeState::Distrusted;
    }
}
