//! Every online user's shared files, as the session logic sees them: the
//! inverted [`Index`] keyed by connection, plus the per-user rules the index
//! leaves to the server (share limit, no duplicate names).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::Ipv4Addr;

use hazel_protocol::napster::{SearchQuery, SharedFile};

use crate::index::tokenize::for_each_word;
use crate::index::{AddFileError, FileId, FileView, Index, UserId};
use crate::session::ConnId;

/// Why a file was not added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddRefused {
    /// The owner already shares `limit` files.
    Limit,
    /// The owner already shares a file with this name.
    Duplicate,
    /// The owner is not logged in.
    NotOnline,
    /// The index cannot hold it (bad md5, name too long …).
    Invalid(AddFileError),
}

struct Owner {
    user: UserId,
    /// Hashes of the names shared, so a duplicate is found without scanning
    /// the user's list (8 bytes per file).
    names: HashSet<u64>,
}

/// Shared files by owner, and search over them.
#[derive(Default)]
pub struct Catalog {
    index: Index,
    owners: HashMap<ConnId, Owner>,
    hasher: RandomState,
    hits: Vec<FileId>,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    fn name_hash(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    /// A user logged in: from now on it can share.
    pub fn add_owner(&mut self, owner: ConnId, nick: &str, ip: Ipv4Addr, link_speed: u32) {
        self.remove_owner(owner);
        let user = self.index.add_user(nick, ip, link_speed);
        self.owners.insert(
            owner,
            Owner {
                user,
                names: HashSet::new(),
            },
        );
    }

    /// Adds a file for `owner`, refusing duplicates and files over `limit`.
    pub fn add(
        &mut self,
        owner: ConnId,
        file: &SharedFile,
        limit: usize,
    ) -> Result<(), AddRefused> {
        let hash = self.name_hash(&file.name);
        let Some(entry) = self.owners.get(&owner) else {
            return Err(AddRefused::NotOnline);
        };
        let user = entry.user;
        if entry.names.len() >= limit {
            return Err(AddRefused::Limit);
        }
        // A hash match is confirmed by name (collisions are not duplicates).
        if entry.names.contains(&hash) && self.index.find_file(user, &file.name).is_some() {
            return Err(AddRefused::Duplicate);
        }
        self.index
            .add_file(user, file)
            .map_err(AddRefused::Invalid)?;
        if let Some(entry) = self.owners.get_mut(&owner) {
            entry.names.insert(hash);
        }
        Ok(())
    }

    /// Removes one file by exact name; false if it was not shared.
    pub fn remove(&mut self, owner: ConnId, name: &[u8]) -> bool {
        let hash = self.name_hash(name);
        let Some(entry) = self.owners.get_mut(&owner) else {
            return false;
        };
        if !self.index.remove_file(entry.user, name) {
            return false;
        }
        entry.names.remove(&hash);
        true
    }

    /// Unshares everything (110); the owner stays online.
    pub fn remove_all(&mut self, owner: ConnId) {
        if let Some(entry) = self.owners.get_mut(&owner) {
            self.index.remove_all_files(entry.user);
            entry.names = HashSet::new();
        }
    }

    /// The owner left: its files go with it.
    pub fn remove_owner(&mut self, owner: ConnId) {
        if let Some(entry) = self.owners.remove(&owner) {
            self.index.remove_user(entry.user);
        }
    }

    /// The file `owner` shares under exactly `name`.
    pub fn file(&self, owner: ConnId, name: &[u8]) -> Option<FileView<'_>> {
        let entry = self.owners.get(&owner)?;
        if !entry.names.contains(&self.name_hash(name)) {
            return None;
        }
        self.index.file(self.index.find_file(entry.user, name)?)
    }

    /// All of an owner's files, in the order shared.
    pub fn files_of(&self, owner: ConnId) -> impl Iterator<Item = FileView<'_>> {
        let user = self.owners.get(&owner).map(|e| e.user);
        user.into_iter().flat_map(|u| self.index.user_files(u))
    }

    pub fn count_of(&self, owner: ConnId) -> usize {
        self.owners
            .get(&owner)
            .map_or(0, |e| self.index.user_file_count(e.user))
    }

    pub fn total_files(&self) -> u64 {
        self.index.total_files()
    }

    /// Library size in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.index.total_bytes()
    }

    /// Library size in whole gigabytes, as 214 reports it.
    pub fn total_gigabytes(&self) -> u64 {
        self.index.total_gigabytes()
    }

    /// Bytes held by the index structures (for metrics).
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_use().total()
    }

    /// Runs a search for `searcher` and appends one 201 frame per result to
    /// `out`; returns the number of results.
    pub fn search_into(
        &mut self,
        query: &SearchQuery,
        searcher: ConnId,
        server_max: usize,
        out: &mut Vec<u8>,
    ) -> usize {
        let me = self.owners.get(&searcher).map(|e| e.user);
        let mut hits = std::mem::take(&mut self.hits);
        self.index.search_into(query, me, server_max, &mut hits);
        let mut written = 0;
        for &id in &hits {
            if let Some(file) = self.index.file(id) {
                if file.encode_search_result(out).is_ok() {
                    written += 1;
                }
            }
        }
        self.hits = hits;
        written
    }
}

/// True if the request has at least one word to look for (a search
/// without one is invalid, as with opennap-ng).
pub fn has_search_words(query: &SearchQuery) -> bool {
    let mut scratch = Vec::new();
    let mut any = false;
    for phrase in query.contains() {
        for_each_word(phrase, &mut scratch, |_| any = true);
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> SharedFile {
        SharedFile {
            name: name.as_bytes().to_vec(),
            md5: b"0123456789abcdef0123456789abcdef".to_vec(),
            size: 10,
            bitrate: 128,
            freq: 44100,
            duration: 60,
        }
    }

    #[test]
    fn duplicates_and_limits_are_refused_per_owner() {
        let mut c = Catalog::new();
        let (a, b) = (ConnId(1), ConnId(2));
        assert_eq!(
            c.add(a, &file("x\\one.mp3"), 10),
            Err(AddRefused::NotOnline)
        );
        c.add_owner(a, "a", Ipv4Addr::LOCALHOST, 3);
        c.add_owner(b, "b", Ipv4Addr::LOCALHOST, 3);
        assert_eq!(c.add(a, &file("x\\one.mp3"), 2), Ok(()));
        assert_eq!(c.add(a, &file("x\\one.mp3"), 2), Err(AddRefused::Duplicate));
        assert_eq!(
            c.add(b, &file("x\\one.mp3"), 2),
            Ok(()),
            "another owner may share it"
        );
        assert_eq!(c.add(a, &file("x\\two.mp3"), 2), Ok(()));
        assert_eq!(c.add(a, &file("x\\three.mp3"), 2), Err(AddRefused::Limit));
        assert!(c.remove(a, b"x\\one.mp3"));
        assert!(!c.remove(a, b"x\\one.mp3"));
        assert_eq!(
            c.add(a, &file("x\\one.mp3"), 2),
            Ok(()),
            "re-share after unshare"
        );
        assert_eq!(c.total_files(), 3);
        c.remove_all(a);
        assert_eq!(c.count_of(a), 0);
        assert_eq!(c.add(a, &file("x\\one.mp3"), 2), Ok(()));
        c.remove_owner(a);
        c.remove_owner(b);
        assert_eq!(c.total_files(), 0);
    }

    #[test]
    fn search_skips_the_searchers_own_files() {
        let mut c = Catalog::new();
        let (a, b) = (ConnId(1), ConnId(2));
        c.add_owner(a, "a", Ipv4Addr::LOCALHOST, 3);
        c.add_owner(b, "b", Ipv4Addr::LOCALHOST, 3);
        c.add(a, &file("x\\shared tune.mp3"), 10).unwrap();
        c.add(b, &file("y\\shared tune.mp3"), 10).unwrap();
        let q = SearchQuery::simple(b"tune", 10);
        let mut out = Vec::new();
        assert_eq!(c.search_into(&q, a, 100, &mut out), 1);
        assert!(out.windows(3).any(|w| w == b" b "), "the result is b's");
        assert!(has_search_words(&q));
        assert!(!has_search_words(&SearchQuery::simple(b" - ", 10)));
    }
}
