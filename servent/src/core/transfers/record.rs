//! What survives a restart of a download: a small state file next to its
//! `.part` file (`DATA-DIR/incomplete/<stem>.state`), written atomically by
//! the disk worker after the `.part` file was synced, so the chunks it lists
//! as received are on the disk whatever happens next (a `kill -9`, a power
//! cut). Received-but-unverified chunks are kept, not trusted: the whole
//! file's SHA-1 is still checked before the file is moved.
//!
//! And how a name that came from the network becomes a file name: never a
//! path, never hidden, never a control character, bounded in length.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::pieces::{Chunk, Pieces, Span};
use super::source::{Origin, Source};
use super::DownloadId;

/// Largest state file read back (a record lists at most 64 sources and a
/// chunk map; anything bigger is not ours).
pub const MAX_RECORD_LEN: usize = 256 * 1024;
/// Longest file name made from a network name, in bytes.
const MAX_NAME_BYTES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub addr: SocketAddr,
    #[serde(default)]
    pub servent_id: Option<String>,
    #[serde(default)]
    pub file_index: Option<u32>,
    #[serde(default)]
    pub needs_push: bool,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxies: Vec<std::net::SocketAddrV4>,
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRecord {
    pub id: DownloadId,
    pub name: String,
    /// The file name stem used in `incomplete/` (`<stem>.part`, `<stem>.state`).
    pub stem: String,
    pub size: Option<u64>,
    /// `urn:sha1:…`
    pub urn: String,
    #[serde(default)]
    pub tiger: Option<String>,
    /// `running`, `paused`, `failed`.
    pub state: String,
    /// `[start, end)` byte spans received (synced) but not verified.
    #[serde(default)]
    pub received: Vec<[u64; 2]>,
    /// Spans verified.
    #[serde(default)]
    pub verified: Vec<[u64; 2]>,
    #[serde(default)]
    pub sources: Vec<SourceRecord>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// An index download's sources (the one asked first, then the others
    /// with the same file); empty for a Gnutella download.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub napster: Vec<NapsterSourceRecord>,
}

/// A user of an index server who shares the file, as a state file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NapsterSourceRecord {
    pub server: SocketAddr,
    pub nick: String,
    /// The file's name on the sharer's side, as bytes in hex (it need not
    /// be UTF-8).
    pub file: String,
}

impl DownloadRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Reads a state file; `None` for anything that is not one of ours.
    pub fn from_bytes(bytes: &[u8]) -> Option<DownloadRecord> {
        if bytes.len() > MAX_RECORD_LEN {
            return None;
        }
        let record: DownloadRecord = serde_json::from_slice(bytes).ok()?;
        // The stem must be one we could have made.
        (sanitize_name(&record.stem) == record.stem && !record.stem.is_empty()).then_some(record)
    }

    /// The chunk spans of `pieces` as the record keeps them.
    pub fn spans_of(pieces: &Pieces) -> (Vec<[u64; 2]>, Vec<[u64; 2]>) {
        let to_pairs = |spans: Vec<Span>| spans.iter().map(|s| [s.start, s.end]).collect();
        (
            to_pairs(pieces.spans(|c| c == Chunk::Received)),
            to_pairs(pieces.spans(|c| c == Chunk::Verified)),
        )
    }

    /// Marks what the record says was received or verified.
    pub fn restore_into(&self, pieces: &mut Pieces) {
        for [start, end] in &self.received {
            pieces.mark(
                Span {
                    start: *start,
                    end: *end,
                },
                Chunk::Received,
            );
        }
        for [start, end] in &self.verified {
            pieces.mark(
                Span {
                    start: *start,
                    end: *end,
                },
                Chunk::Verified,
            );
        }
    }

    pub fn source_record(source: &Source) -> SourceRecord {
        SourceRecord {
            addr: source.addr,
            servent_id: source
                .servent_id
                .map(|id| data_encoding::HEXLOWER.encode(&id)),
            file_index: source.file_index,
            needs_push: source.needs_push,
            origin: source.origin,
            proxies: source.proxies.clone(),
        }
    }

    pub fn source(record: &SourceRecord) -> Source {
        let servent_id = record.servent_id.as_ref().and_then(|hex| {
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.as_bytes())
                .ok()
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        });
        let mut source = Source::new(
            record.addr,
            servent_id,
            record.file_index,
            record.needs_push,
            record.origin,
        );
        source.proxies = record.proxies.iter().take(4).copied().collect();
        source
    }
}

/// A file name made from a name a peer chose: path separators, NUL and every
/// control or invisible character become `_`, leading dots and spaces go (no
/// hidden files, no `..`), it is cut to 200 bytes, and an empty result is
/// `download`.
pub fn sanitize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_NAME_BYTES));
    for c in name.chars() {
        let c = if c == '/' || c == '\\' || hazel_protocol::text::is_unsafe(c) {
            '_'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_start_matches(['.', ' ']).trim_end();
    if trimmed.is_empty() {
        "download".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_network_never_become_paths() {
        assert_eq!(sanitize_name("song.mp3"), "song.mp3");
        assert_eq!(sanitize_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize_name("/abs/path"), "_abs_path");
        assert_eq!(sanitize_name("C:\\music\\a.mp3"), "C:_music_a.mp3");
        assert_eq!(sanitize_name(".hidden"), "hidden");
        assert_eq!(sanitize_name("a\nb\u{1b}[2J\u{202e}c"), "a_b_[2J_c");
        assert_eq!(sanitize_name(""), "download");
        assert_eq!(sanitize_name(".."), "download");
        assert_eq!(sanitize_name("  "), "download");
        let long = "é".repeat(300);
        let cut = sanitize_name(&long);
        assert!(cut.len() <= 200 && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let mut pieces = Pieces::new(10_000, 1000);
        pieces.received(0);
        pieces.received(1);
        pieces.verified(5);
        let (received, verified) = DownloadRecord::spans_of(&pieces);
        let record = DownloadRecord {
            id: 3,
            name: "a b.ogg".into(),
            stem: "a b.ogg".into(),
            size: Some(10_000),
            urn: "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB".into(),
            tiger: None,
            state: "running".into(),
            received,
            verified,
            sources: vec![SourceRecord {
                addr: "10.0.0.1:6346".parse().unwrap(),
                servent_id: Some("00".repeat(16)),
                file_index: Some(4),
                needs_push: true,
                origin: Origin::Search,
                proxies: vec!["10.0.0.9:6346".parse().unwrap()],
            }],
            last_error: None,
            napster: Vec::new(),
        };
        let back = DownloadRecord::from_bytes(&record.to_bytes()).unwrap();
        assert_eq!(back, record);
        let mut restored = Pieces::new(10_000, 1000);
        back.restore_into(&mut restored);
        assert_eq!(restored, pieces);
        assert_eq!(
            DownloadRecord::source(&back.sources[0]).servent_id,
            Some([0; 16])
        );
        assert!(DownloadRecord::from_bytes(b"{not json").is_none());
        let mut evil = record.clone();
        evil.stem = "../../x".into();
        assert!(DownloadRecord::from_bytes(&evil.to_bytes()).is_none());
        assert!(DownloadRecord::from_bytes(&vec![b' '; MAX_RECORD_LEN + 1]).is_none());
    }
}
