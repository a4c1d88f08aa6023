//! The inverted index of shared files: who shares what, and which files
//! match a search. Pure data structure: no sockets, no threads, no clock.
//!
//! Layout, chosen for memory (≤ 0.25 KB per file at 10 million files) and
//! for search speed:
//! - one 32-byte `FileRecord` per file in a table indexed by [`FileId`];
//!   removed slots are reused after the next purge (below);
//! - each user's names and md5s live in that user's own byte arena, so a
//!   logout (the common removal) frees them at once; a single unshare leaves
//!   a hole that is compacted away once holes exceed half the arena;
//! - md5s that are 32 lower-case hex digits are stored as 16 raw bytes;
//! - postings: word → ascending `Vec<u32>` of file ids. Sorted order lets a
//!   multi-word search walk the rarest list and gallop through the others.
//!   Removal is lazy: a removed file's slot is marked (searches skip it) and
//!   its ids are purged from all lists in one pass once removed files
//!   outnumber half the live ones; the purge also drops words left with no
//!   files and releases the slots. Removing one posting at a time instead
//!   moved the tail of every long list per file: a 10-million-file server
//!   stalled for minutes when its users logged out.
//!
//! Tokenization is opennap-ng's ([`tokenize`]).

pub mod tokenize;

#[cfg(test)]
mod tests;

use hazel_protocol::napster::message::{SearchResultRef, SharedFile};
use hazel_protocol::napster::search::{Comparison, NumericField, SearchQuery};
use hazel_protocol::napster::EncodeError;
use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use tokenize::WordList;

/// A logged-in user in the index. Ids of removed users are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(u32);

/// A shared file in the index. Ids of removed files are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(u32);

impl UserId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl FileId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why a file was not added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddFileError {
    /// The user id is not (or no longer) in the index.
    NoSuchUser,
    /// Longer than a frame can carry back in a 201.
    NameTooLong,
    /// A name with `"` could never be sent back to a client.
    QuoteInName,
    /// Empty, longer than 127 bytes, or containing a space or `"`.
    BadMd5,
    /// The index holds 2^32 − 1 files, or this user's names 4 GiB.
    Full,
}

impl fmt::Display for AddFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            AddFileError::NoSuchUser => "no such user",
            AddFileError::NameTooLong => "file name too long",
            AddFileError::QuoteInName => "file name contains a double quote",
            AddFileError::BadMd5 => "invalid md5 field",
            AddFileError::Full => "index is full",
        };
        f.write_str(text)
    }
}

impl std::error::Error for AddFileError {}

/// Owner value of a free file slot.
const FREE: u32 = u32::MAX;
/// `md5_len` flag: the md5 is stored as 16 raw bytes of a lower-case hex string.
const MD5_PACKED: u8 = 0x80;
/// Longest md5 field stored verbatim.
const MAX_RAW_MD5: usize = 127;
/// Longest name: what fits in a 201 frame with its other fields.
const MAX_NAME_LEN: usize = 60_000;

/// One file, 32 bytes. Its name and md5 live in the owner's arena at
/// `name_at`, md5 right after the name.
#[derive(Debug, Clone, Copy)]
struct FileRecord {
    size: u64,
    owner: u32,
    name_at: u32,
    freq: u32,
    duration: u32,
    bitrate: u32,
    name_len: u16,
    md5_len: u8,
}

#[derive(Debug)]
struct User {
    nick: Box<str>,
    ip: Ipv4Addr,
    link_speed: u32,
    /// Names and md5s of this user's files.
    arena: Vec<u8>,
    /// Bytes of `arena` no file refers to any more.
    garbage: usize,
    files: Vec<u32>,
    bytes_shared: u64,
}

/// The index: users, their files, and the word postings.
#[derive(Debug, Default)]
pub struct Index {
    users: Vec<Option<User>>,
    free_users: Vec<u32>,
    user_count: usize,
    files: Vec<FileRecord>,
    free_files: Vec<u32>,
    /// Removed files whose ids may still sit in posting lists; reusable
    /// only after the next purge.
    removed: Vec<u32>,
    /// One bit per file slot: set while the slot is in `removed`.
    removed_bits: Vec<u64>,
    postings: HashMap<Box<[u8]>, Vec<u32>>,
    total_files: u64,
    total_bytes: u64,
    words: WordList,
}

/// Read-only view of one user.
#[derive(Debug, Clone, Copy)]
pub struct UserView<'a> {
    pub id: UserId,
    pub nick: &'a str,
    pub ip: Ipv4Addr,
    pub link_speed: u32,
    pub files: usize,
    pub bytes_shared: u64,
}

/// Read-only view of one file with what a 201 or 212 needs.
#[derive(Debug, Clone, Copy)]
pub struct FileView<'a> {
    pub id: FileId,
    pub owner: UserId,
    pub nick: &'a str,
    pub ip: Ipv4Addr,
    /// The owner's link speed (0–10).
    pub link_speed: u32,
    pub name: &'a [u8],
    md5: &'a [u8],
    md5_packed: bool,
    pub size: u64,
    pub bitrate: u32,
    pub freq: u32,
    pub duration: u32,
}

/// Byte counts of the index's structures, for the memory target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    pub file_table: usize,
    pub arenas: usize,
    pub postings: usize,
    pub dictionary: usize,
    pub users: usize,
}

impl MemoryUse {
    pub fn total(&self) -> usize {
        self.file_table + self.arenas + self.postings + self.dictionary + self.users
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Each byte's two lower-case hex digits (unpacking an md5 is on the path
/// of every 201).
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut pairs = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [HEX[b >> 4], HEX[b & 15]];
        b += 1;
    }
    pairs
};

fn pack_md5(md5: &[u8]) -> Option<[u8; 16]> {
    if md5.len() != 32 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (slot, pair) in out.iter_mut().zip(md5.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *slot = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

/// The md5 field of a file as it was shared, unpacked on the stack.
#[derive(Debug, Clone, Copy)]
pub struct Md5Field<'a> {
    hex: [u8; 32],
    raw: Option<&'a [u8]>,
}

impl Md5Field<'_> {
    pub fn as_bytes(&self) -> &[u8] {
        self.raw.unwrap_or(&self.hex)
    }
}

impl<'a> FileView<'a> {
    /// The md5 field as it was shared, without allocating.
    pub fn md5_field(&self) -> Md5Field<'a> {
        let mut hex = [0u8; 32];
        if !self.md5_packed {
            return Md5Field {
                hex,
                raw: Some(self.md5),
            };
        }
        for (pair, &b) in hex.chunks_exact_mut(2).zip(self.md5) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
        }
        Md5Field { hex, raw: None }
    }

    /// The md5 field as it was shared.
    pub fn md5(&self) -> Vec<u8> {
        self.md5_field().as_bytes().to_vec()
    }

    /// The file as shared (for a 212 browse entry).
    pub fn to_shared_file(&self) -> SharedFile {
        SharedFile {
            name: self.name.to_vec(),
            md5: self.md5(),
            size: self.size,
            bitrate: self.bitrate,
            freq: self.freq,
            duration: self.duration,
        }
    }

    /// Appends a whole 201 frame for this file, encoded by the protocol
    /// crate straight from the index's own bytes (no owned message).
    pub fn encode_search_result(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let md5 = self.md5_field();
        SearchResultRef {
            name: self.name,
            md5: md5.as_bytes(),
            size: self.size,
            bitrate: self.bitrate,
            freq: self.freq,
            duration: self.duration,
            nick: self.nick,
            ip: self.ip,
            link_speed: self.link_speed,
            weight: None,
        }
        .encode(out)
    }
}

/// Inserts `id` into an ascending posting list (appending in the common
/// case of a fresh, highest id).
fn posting_insert(list: &mut Vec<u32>, id: u32) {
    match list.last() {
        Some(&last) if last >= id => {
            if let Err(at) = list.binary_search(&id) {
                list.insert(at, id);
            }
        }
        _ => list.push(id),
    }
}

/// Appends the ids present in both ascending lists to `out`.
fn intersect_sorted(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        if x == y {
            out.push(x);
        }
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
}

/// First position at or after `from` whose value is ≥ `target` (galloping,
/// then binary search inside the bracket).
fn gallop(list: &[u32], from: usize, target: u32) -> usize {
    // Lists of similar length advance a step or two per candidate: a short
    // linear probe beats the bracket-and-bisect below for those.
    for (offset, &v) in list.get(from..).unwrap_or(&[]).iter().take(8).enumerate() {
        if v >= target {
            return from + offset;
        }
    }
    let from = (from + 8).min(list.len());
    let mut lo = from;
    let mut step = 1;
    let mut hi = from;
    while hi < list.len() && list.get(hi).is_some_and(|&v| v < target) {
        lo = hi + 1;
        hi = hi.saturating_add(step);
        step *= 2;
    }
    let hi = hi.min(list.len());
    let window = list.get(lo..hi).unwrap_or(&[]);
    lo + window.partition_point(|&v| v < target)
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a logged-in user (before any of their shares).
    pub fn add_user(&mut self, nick: &str, ip: Ipv4Addr, link_speed: u32) -> UserId {
        let user = User {
            nick: nick.into(),
            ip,
            link_speed,
            arena: Vec::new(),
            garbage: 0,
            files: Vec::new(),
            bytes_shared: 0,
        };
        self.user_count += 1;
        if let Some(id) = self.free_users.pop() {
            if let Some(slot) = self.users.get_mut(id as usize) {
                *slot = Some(user);
                return UserId(id);
            }
        }
        self.users.push(Some(user));
        UserId((self.users.len() - 1) as u32)
    }

    /// Removes a user and all their files (logout). Returns how many files
    /// went with them.
    pub fn remove_user(&mut self, user: UserId) -> usize {
        let removed = self.remove_all_files(user);
        if let Some(slot) = self.users.get_mut(user.index()) {
            if slot.take().is_some() {
                self.free_users.push(user.0);
                self.user_count -= 1;
            }
        }
        removed
    }

    /// Changes a user's advertised link speed (message 700 or re-login).
    pub fn set_link_speed(&mut self, user: UserId, link_speed: u32) {
        if let Some(Some(u)) = self.users.get_mut(user.index()) {
            u.link_speed = link_speed;
        }
    }

    pub fn user(&self, user: UserId) -> Option<UserView<'_>> {
        let u = self.users.get(user.index())?.as_ref()?;
        Some(UserView {
            id: user,
            nick: &u.nick,
            ip: u.ip,
            link_speed: u.link_speed,
            files: u.files.len(),
            bytes_shared: u.bytes_shared,
        })
    }

    /// Number of files `user` shares (0 for an unknown user).
    pub fn user_file_count(&self, user: UserId) -> usize {
        self.user(user).map_or(0, |u| u.files)
    }

    pub fn user_count(&self) -> usize {
        self.user_count
    }

    pub fn total_files(&self) -> u64 {
        self.total_files
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Library size in whole GB (10^9 bytes), as the 214 stats message
    /// carries it.
    pub fn total_gigabytes(&self) -> u64 {
        self.total_bytes / 1_000_000_000
    }

    /// Number of distinct indexed words.
    pub fn word_count(&self) -> usize {
        self.postings.len()
    }

    /// Shares one file. `file.name` is the full path as the client sent it.
    /// The same name shared twice is indexed twice (the session decides
    /// whether to refuse duplicates and enforces share limits).
    pub fn add_file(&mut self, user: UserId, file: &SharedFile) -> Result<FileId, AddFileError> {
        if file.name.len() > MAX_NAME_LEN {
            return Err(AddFileError::NameTooLong);
        }
        if file.name.contains(&b'"') {
            return Err(AddFileError::QuoteInName);
        }
        let packed = pack_md5(&file.md5);
        if packed.is_none()
            && (file.md5.is_empty()
                || file.md5.len() > MAX_RAW_MD5
                || file.md5.iter().any(|&b| b == b' ' || b == b'"'))
        {
            return Err(AddFileError::BadMd5);
        }
        let u = self
            .users
            .get_mut(user.index())
            .and_then(Option::as_mut)
            .ok_or(AddFileError::NoSuchUser)?;
        let id = match self.free_files.last() {
            Some(&id) => id,
            None if self.files.len() < FREE as usize => self.files.len() as u32,
            None => return Err(AddFileError::Full),
        };
        let name_at = u32::try_from(u.arena.len()).map_err(|_| AddFileError::Full)?;
        let md5_stored: &[u8] = match &packed {
            Some(bytes) => bytes,
            None => &file.md5,
        };
        if u.arena.len() + file.name.len() + md5_stored.len() > u32::MAX as usize {
            return Err(AddFileError::Full);
        }
        u.arena.extend_from_slice(&file.name);
        u.arena.extend_from_slice(md5_stored);
        let md5_len = if packed.is_some() {
            MD5_PACKED | 16
        } else {
            md5_stored.len() as u8
        };
        let record = FileRecord {
            size: file.size,
            owner: user.0,
            name_at,
            freq: file.freq,
            duration: file.duration,
            bitrate: file.bitrate,
            name_len: file.name.len() as u16,
            md5_len,
        };
        u.files.push(id);
        u.bytes_shared += file.size;
        if self.free_files.pop().is_some() {
            if let Some(slot) = self.files.get_mut(id as usize) {
                *slot = record;
            }
        } else {
            self.files.push(record);
        }
        self.words.clear();
        self.words.add_path(&file.name);
        for word in self.words.iter() {
            match self.postings.get_mut(word) {
                Some(list) => posting_insert(list, id),
                None => {
                    self.postings.insert(word.into(), vec![id]);
                }
            }
        }
        self.total_files += 1;
        self.total_bytes += file.size;
        Ok(FileId(id))
    }

    /// A user's file by exact name (for unshare, download checks).
    pub fn find_file(&self, user: UserId, name: &[u8]) -> Option<FileId> {
        let u = self.users.get(user.index())?.as_ref()?;
        u.files
            .iter()
            .copied()
            .find(|&id| {
                self.files.get(id as usize).is_some_and(|r| {
                    u.arena
                        .get(r.name_at as usize..r.name_at as usize + usize::from(r.name_len))
                        == Some(name)
                })
            })
            .map(FileId)
    }

    /// Unshares one file by exact name (102). Returns whether it was there.
    pub fn remove_file(&mut self, user: UserId, name: &[u8]) -> bool {
        let Some(id) = self.find_file(user, name) else {
            return false;
        };
        let Some(record) = self.files.get(id.index()).copied() else {
            return false;
        };
        let Some(u) = self.users.get_mut(user.index()).and_then(Option::as_mut) else {
            return false;
        };
        if let Some(pos) = u.files.iter().position(|&f| f == id.0) {
            u.files.swap_remove(pos);
        }
        u.garbage += usize::from(record.name_len) + usize::from(record.md5_len & !MD5_PACKED);
        u.bytes_shared -= record.size;
        self.free_file_slot(id.0, record.size);
        self.compact_arena_if_sparse(user);
        self.purge_if_worthwhile();
        true
    }

    /// Unshares everything `user` shares (110, and logout). Returns the
    /// number of files removed.
    pub fn remove_all_files(&mut self, user: UserId) -> usize {
        let Some(u) = self.users.get_mut(user.index()).and_then(Option::as_mut) else {
            return 0;
        };
        let files = std::mem::take(&mut u.files);
        u.arena = Vec::new();
        u.garbage = 0;
        u.bytes_shared = 0;
        for &id in &files {
            let size = self.files.get(id as usize).map_or(0, |r| r.size);
            self.free_file_slot(id, size);
        }
        self.purge_if_worthwhile();
        files.len()
    }

    /// Marks a slot removed. Its id stays in the posting lists (searches
    /// skip it: its owner is FREE) until the next purge; the slot is not
    /// reused before then, so a stale id can never name another file.
    fn free_file_slot(&mut self, id: u32, size: u64) {
        if let Some(slot) = self.files.get_mut(id as usize) {
            slot.owner = FREE;
        }
        let word = id as usize / 64;
        if self.removed_bits.len() <= word {
            self.removed_bits.resize(word + 1, 0);
        }
        if let Some(bits) = self.removed_bits.get_mut(word) {
            *bits |= 1 << (id % 64);
        }
        self.removed.push(id);
        self.total_files -= 1;
        self.total_bytes -= size;
    }

    /// Purges once removed files outnumber half the live ones: each purge
    /// costs one pass over the postings and removes at least a third of
    /// them, so removal stays O(1) amortized per posting, and a logout does
    /// not touch the posting lists at all.
    fn purge_if_worthwhile(&mut self) {
        if !self.removed.is_empty() && self.removed.len() as u64 * 2 > self.total_files {
            self.purge();
        }
    }

    /// Drops every removed id from the posting lists, drops words left with
    /// no files, and makes the removed slots reusable.
    pub fn purge(&mut self) {
        if self.removed.is_empty() {
            return;
        }
        let bits = &self.removed_bits;
        let is_removed = |id: u32| {
            bits.get(id as usize / 64)
                .is_some_and(|w| w & (1 << (id % 64)) != 0)
        };
        self.postings.retain(|_, list| {
            list.retain(|&id| !is_removed(id));
            if list.capacity() > 16 && list.len() < list.capacity() / 4 {
                list.shrink_to(list.len() * 2);
            }
            !list.is_empty()
        });
        self.removed_bits.iter_mut().for_each(|w| *w = 0);
        self.free_files.append(&mut self.removed);
    }

    /// Rewrites a user's arena without holes once holes are most of it.
    fn compact_arena_if_sparse(&mut self, user: UserId) {
        let Some(u) = self.users.get_mut(user.index()).and_then(Option::as_mut) else {
            return;
        };
        if u.garbage < 4096 || u.garbage * 2 < u.arena.len() {
            return;
        }
        let mut fresh = Vec::with_capacity(u.arena.len() - u.garbage);
        for &id in &u.files {
            if let Some(r) = self.files.get_mut(id as usize) {
                let start = r.name_at as usize;
                let len = usize::from(r.name_len) + usize::from(r.md5_len & !MD5_PACKED);
                r.name_at = fresh.len() as u32;
                fresh.extend_from_slice(u.arena.get(start..start + len).unwrap_or(&[]));
            }
        }
        u.arena = fresh;
        u.garbage = 0;
    }

    /// A file's details, if the id is live.
    pub fn file(&self, id: FileId) -> Option<FileView<'_>> {
        let r = self.files.get(id.index())?;
        if r.owner == FREE {
            return None;
        }
        let u = self.users.get(r.owner as usize)?.as_ref()?;
        let start = r.name_at as usize;
        let name_end = start + usize::from(r.name_len);
        let md5_end = name_end + usize::from(r.md5_len & !MD5_PACKED);
        Some(FileView {
            id,
            owner: UserId(r.owner),
            nick: &u.nick,
            ip: u.ip,
            link_speed: u.link_speed,
            name: u.arena.get(start..name_end)?,
            md5: u.arena.get(name_end..md5_end)?,
            md5_packed: r.md5_len & MD5_PACKED != 0,
            size: r.size,
            bitrate: r.bitrate,
            freq: r.freq,
            duration: r.duration,
        })
    }

    /// A user's files in the order shared (for browse, 211 → 212s).
    pub fn user_files(&self, user: UserId) -> impl Iterator<Item = FileView<'_>> + '_ {
        self.users
            .get(user.index())
            .and_then(Option::as_ref)
            .map(|u| u.files.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter_map(move |&id| self.file(FileId(id)))
    }

    /// Runs a search for `searcher` (whose own files are never returned) and
    /// returns up to min(MAX_RESULTS, `server_max`) matching files. A
    /// request without MAX_RESULTS, or with 0, gets `server_max`.
    pub fn search(
        &self,
        query: &SearchQuery,
        searcher: Option<UserId>,
        server_max: usize,
    ) -> Vec<FileId> {
        let mut out = Vec::new();
        self.search_into(query, searcher, server_max, &mut out);
        out
    }

    /// [`Index::search`] into a caller's buffer (cleared first).
    pub fn search_into(
        &self,
        query: &SearchQuery,
        searcher: Option<UserId>,
        server_max: usize,
        out: &mut Vec<FileId>,
    ) {
        out.clear();
        let wanted = match query.max_results() {
            Some(n) if n > 0 => (n as usize).min(server_max),
            _ => server_max,
        };
        if wanted == 0 {
            return;
        }
        let mut words = WordList::new();
        for phrase in query.contains() {
            words.add_text(phrase);
        }
        if words.is_empty() {
            return;
        }
        let mut lists: Vec<&[u32]> = Vec::with_capacity(words.len());
        for word in words.iter() {
            match self.postings.get(word) {
                Some(list) => lists.push(list),
                None => return,
            }
        }
        lists.sort_unstable_by_key(|l| l.len());
        let mut excluded_words = WordList::new();
        for phrase in query.excludes() {
            excluded_words.add_text(phrase);
        }
        let excluded: Vec<&[u32]> = excluded_words
            .iter()
            .filter_map(|w| self.postings.get(w).map(Vec::as_slice))
            .collect();
        let filters: Vec<(NumericField, Comparison, u64)> = query.comparisons().collect();
        let searcher = searcher.map(|u| u.0);

        let Some((rarest, others)) = lists.split_first() else {
            return;
        };
        // Two lists of similar length: one branch-free merge pass beats a
        // probe per candidate (whose exit branch mispredicts half the time).
        // Very unequal lengths: walk the short one and gallop in the other.
        let mut merged = Vec::new();
        let (candidates, others): (&[u32], &[&[u32]]) = match others.split_first() {
            Some((second, rest)) if second.len() <= 32 * rarest.len() => {
                intersect_sorted(rarest, second, &mut merged);
                (&merged, rest)
            }
            _ => (rarest, others),
        };
        let mut cursors = vec![0usize; others.len()];
        'candidates: for &id in candidates.iter() {
            for (list, cursor) in others.iter().zip(cursors.iter_mut()) {
                *cursor = gallop(list, *cursor, id);
                if list.get(*cursor) != Some(&id) {
                    if *cursor >= list.len() {
                        break 'candidates;
                    }
                    continue 'candidates;
                }
            }
            let Some(record) = self.files.get(id as usize) else {
                continue;
            };
            if record.owner == FREE || Some(record.owner) == searcher {
                continue;
            }
            if excluded.iter().any(|l| l.binary_search(&id).is_ok()) {
                continue;
            }
            if !filters.is_empty() && !self.passes(record, &filters) {
                continue;
            }
            out.push(FileId(id));
            if out.len() >= wanted {
                break;
            }
        }
        self.warm_results(out);
    }

    /// Touches each hit's owner and name with loads that do not depend on
    /// one another, so their cache misses overlap here instead of stalling
    /// one after another while the caller encodes the 201s (measured: the
    /// encoder's time was mostly waiting on the arena reads).
    fn warm_results(&self, hits: &[FileId]) {
        let mut sink = 0u8;
        for &FileId(id) in hits {
            if let Some(r) = self.files.get(id as usize) {
                if let Some(Some(u)) = self.users.get(r.owner as usize) {
                    let at = r.name_at as usize;
                    let md5_at = at + usize::from(r.name_len);
                    sink ^= u.arena.get(at).copied().unwrap_or(0)
                        ^ u.arena.get(md5_at).copied().unwrap_or(0)
                        ^ u.nick.as_bytes().first().copied().unwrap_or(0);
                }
            }
        }
        std::hint::black_box(sink);
    }

    fn passes(&self, r: &FileRecord, filters: &[(NumericField, Comparison, u64)]) -> bool {
        filters.iter().all(|&(field, op, wanted)| {
            let actual = match field {
                NumericField::LineSpeed => self
                    .users
                    .get(r.owner as usize)
                    .and_then(Option::as_ref)
                    .map_or(0, |u| u64::from(u.link_speed)),
                NumericField::Bitrate => u64::from(r.bitrate),
                NumericField::Freq => u64::from(r.freq),
                NumericField::Size => r.size,
                NumericField::Duration => u64::from(r.duration),
            };
            op.accepts(actual, wanted)
        })
    }

    /// Bytes held by the index's structures (capacities, not lengths, and
    /// an estimate of the hash table's per-slot overhead).
    pub fn memory_use(&self) -> MemoryUse {
        let file_table = self.files.capacity() * std::mem::size_of::<FileRecord>()
            + self.free_files.capacity() * 4
            + self.removed.capacity() * 4
            + self.removed_bits.capacity() * 8;
        let mut arenas = 0;
        let mut users = self.users.capacity() * std::mem::size_of::<Option<User>>()
            + self.free_users.capacity() * 4;
        for u in self.users.iter().flatten() {
            arenas += u.arena.capacity();
            users += u.files.capacity() * 4 + u.nick.len();
        }
        let mut postings = 0;
        let mut dictionary =
            self.postings.capacity() * (std::mem::size_of::<(Box<[u8]>, Vec<u32>)>() + 1);
        for (word, list) in &self.postings {
            postings += list.capacity() * 4;
            dictionary += word.len();
        }
        MemoryUse {
            file_table,
            arenas,
            postings,
            dictionary,
            users,
        }
    }
}
