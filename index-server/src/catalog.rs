//! Every user's shared files, and search over them.
//!
//! The server talks to shared files only through this type, so the storage
//! and the search structure behind it can change without touching the
//! protocol logic.

use std::collections::HashMap;

use crate::search::{file_words, Query};
use hazel_protocol::napster::SharedFile;

use crate::session::ConnId;

/// One search result: the file and who shares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    pub owner: ConnId,
    pub file: &'a SharedFile,
}

struct OwnerFiles {
    link_speed: u32,
    files: Vec<(SharedFile, Vec<Vec<u8>>)>,
}

/// Shared files by owner.
#[derive(Default)]
pub struct Catalog {
    owners: HashMap<ConnId, OwnerFiles>,
    total_files: u64,
    total_bytes: u64,
}

/// Why a file was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddRefused {
    /// The owner already shares `limit` files.
    Limit,
    /// The owner already shares a file with this name.
    Duplicate,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Adds a file for `owner` (whose link speed LINESPEED filters use).
    pub fn add(
        &mut self,
        owner: ConnId,
        link_speed: u32,
        file: SharedFile,
        limit: usize,
    ) -> Result<(), AddRefused> {
        let entry = self.owners.entry(owner).or_insert_with(|| OwnerFiles {
            link_speed,
            files: Vec::new(),
        });
        if entry.files.len() >= limit {
            return Err(AddRefused::Limit);
        }
        if entry.files.iter().any(|(f, _)| f.name == file.name) {
            return Err(AddRefused::Duplicate);
        }
        self.total_files += 1;
        self.total_bytes += file.size;
        let words = file_words(&file.name);
        entry.files.push((file, words));
        Ok(())
    }

    /// Removes one file by exact name; false if it was not shared.
    pub fn remove(&mut self, owner: ConnId, name: &[u8]) -> bool {
        let Some(entry) = self.owners.get_mut(&owner) else {
            return false;
        };
        let Some(pos) = entry.files.iter().position(|(f, _)| f.name == name) else {
            return false;
        };
        let (file, _) = entry.files.swap_remove(pos);
        self.total_files -= 1;
        self.total_bytes -= file.size;
        true
    }

    /// Removes all of an owner's files (unshare all, or logout).
    pub fn remove_owner(&mut self, owner: ConnId) {
        if let Some(entry) = self.owners.remove(&owner) {
            self.total_files -= entry.files.len() as u64;
            self.total_bytes -= entry.files.iter().map(|(f, _)| f.size).sum::<u64>();
        }
    }

    /// The file `owner` shares under exactly `name`.
    pub fn file(&self, owner: ConnId, name: &[u8]) -> Option<&SharedFile> {
        self.owners
            .get(&owner)?
            .files
            .iter()
            .map(|(f, _)| f)
            .find(|f| f.name == name)
    }

    /// All of an owner's files, in the order shared.
    pub fn files_of(&self, owner: ConnId) -> impl Iterator<Item = &SharedFile> {
        self.owners
            .get(&owner)
            .into_iter()
            .flat_map(|e| e.files.iter().map(|(f, _)| f))
    }

    pub fn count_of(&self, owner: ConnId) -> usize {
        self.owners.get(&owner).map_or(0, |e| e.files.len())
    }

    pub fn total_files(&self) -> u64 {
        self.total_files
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Up to `limit` files matching `query`, never the searcher's own.
    pub fn search(&self, query: &Query, searcher: ConnId, limit: usize) -> Vec<Hit<'_>> {
        let mut hits = Vec::new();
        if query.include.is_empty() || limit == 0 {
            return hits;
        }
        for (&owner, entry) in &self.owners {
            if owner == searcher {
                continue;
            }
            for (file, words) in &entry.files {
                if query.matches(words, file, entry.link_speed) {
                    hits.push(Hit { owner, file });
                    if hits.len() >= limit {
                        return hits;
                    }
                }
            }
        }
        hits
    }
}
