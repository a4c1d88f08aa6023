//! Answering a Query: the QueryHit descriptors for a set of matching files.
//!
//! Each QueryHit carries at most 255 results (the count is one byte) and is at most
//! [`QUERY_HIT_MAX_LEN`] bytes whole (header included), so no servent's 16 KiB forwarding limit
//! drops it; more matches give several QueryHits with the same descriptor id. Every result
//! carries its SHA-1 as a HUGE `urn:sha1:` extension once hashed, or, once its Tiger tree is
//! stored too, both as `urn:bitprint:<sha1>.<tiger root>` (what Shareaza sends; gtk-gnutella reads
//! the SHA-1 and the root from it, and a downloader learns the root it checks trees against),
//! and files of 4 GiB or more
//! carry their real size in a GGEP `LF` extension (the 32-bit size field then holds
//! `0xFFFFFFFF`). The trailer has vendor `HZEL` and the two open-data flag bytes with every flag
//! marked meaningful: push (firewalled; the bit whose value is in the first byte), busy (all
//! upload slots taken), have-uploaded, upload-speed (the speed is measured), GGEP (none here).
//! The servent id comes last. TTL = query hops + 1 (enough to reach the origin), capped at the
//! max TTL; hops 0.

use std::net::Ipv4Addr;

use hazel_protocol::descriptor::{
    Descriptor, Extension, HitResult, Payload, QhdFlags, QhdTrailer, Query, QueryHit, ServentId,
    QUERY_HIT_FIXED_LEN, SERVENT_ID_LEN,
};
use hazel_protocol::ggep::{Ggep, GgepExtension, GgepId};
use hazel_protocol::header::{DescriptorId, HEADER_LEN};
use hazel_protocol::huge::Urn;

use super::{Library, SearchCriteria, SharedFile};

/// Largest QueryHit we send, header included (16 KiB).
pub const QUERY_HIT_MAX_LEN: usize = 16 * 1024;
/// Most results in one QueryHit (the hit count is one byte).
pub const MAX_RESULTS_PER_HIT: usize = 255;
/// Hazel's vendor code in the QueryHit trailer.
pub const VENDOR_CODE: [u8; 4] = *b"HZEL";

/// What a QueryHit says about the responder, beyond the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryHitParams {
    /// Our servent id (the last 16 bytes; Push requests name it).
    pub servent_id: ServentId,
    /// The address downloaders connect to (when not firewalled).
    pub ip: Ipv4Addr,
    pub port: u16,
    /// Upload speed in kb/s.
    pub speed_kbps: u32,
    /// We cannot accept connections: downloaders must send a Push.
    pub firewalled: bool,
    /// Every upload slot is taken now.
    pub busy: bool,
    /// At least one upload completed.
    pub have_uploaded: bool,
    /// `speed_kbps` is a measured upload speed (not a user setting).
    pub upload_speed_measured: bool,
    /// The largest TTL we ever send (1..=7 by configuration).
    pub max_ttl: u8,
    /// Our push proxies, named in the trailer's GGEP `PUSH` (when firewalled).
    pub push_proxies: Vec<std::net::SocketAddrV4>,
}

impl QueryHitParams {
    /// The trailer's flags for these parameters.
    pub fn flags(&self) -> QhdFlags {
        QhdFlags {
            push: Some(self.firewalled),
            busy: Some(self.busy),
            have_uploaded: Some(self.have_uploaded),
            upload_speed: Some(self.upload_speed_measured),
            ggep: Some(!self.push_proxies.is_empty()),
        }
    }
}

impl SearchCriteria {
    /// What the library matches of a Query: its search text (lossily UTF-8: peers send any
    /// encoding) and the SHA-1 of every HUGE urn among its extensions (or of a search text that
    /// is itself a `urn:sha1:` / `urn:bitprint:`).
    pub fn from_query(query: &Query) -> SearchCriteria {
        let mut sha1_urns: Vec<[u8; 20]> = query
            .extensions
            .iter()
            .filter_map(|e| match e {
                Extension::Urn(urn) => urn.sha1(),
                _ => None,
            })
            .collect();
        // Some servents put the urn in the search text itself.
        if let Some(sha1) = Urn::parse(query.search.trim_ascii()).sha1() {
            sha1_urns.push(sha1);
        }
        SearchCriteria {
            text: String::from_utf8_lossy(&query.search).into_owned(),
            sha1_urns,
        }
    }
}

impl Library {
    /// The QueryHits answering `query` (received with `query_id` after `query_hops` hops),
    /// listing at most `max_results` files; empty when nothing matches.
    pub fn answer_query(
        &self,
        query: &Query,
        query_id: DescriptorId,
        query_hops: u8,
        params: &QueryHitParams,
        max_results: usize,
    ) -> Vec<Descriptor> {
        let matches = self.search_limited(&SearchCriteria::from_query(query), max_results);
        build_query_hits(&matches, query_id, query_hops, params)
    }
}

/// The result entry of one file.
pub fn hit_result(file: &SharedFile) -> HitResult {
    let mut extensions = Vec::new();
    match (file.sha1, file.tiger) {
        (Some(sha1), Some(tiger)) => extensions.push(Extension::Urn(Urn::Bitprint { sha1, tiger })),
        (Some(sha1), None) => extensions.push(Extension::Urn(Urn::Sha1(sha1))),
        (None, _) => {}
    }
    let size = match u32::try_from(file.size) {
        Ok(size) => size,
        Err(_) => {
            extensions.push(Extension::Ggep(large_file_ggep(file.size)));
            u32::MAX
        }
    };
    HitResult {
        index: file.index,
        size,
        name: file.name.as_bytes().to_vec(),
        extensions,
    }
}

/// GGEP `LF`: the size as little-endian bytes without trailing zeros, COBS-encoded when a zero
/// byte remains (a result's extension area must not contain NUL).
fn large_file_ggep(size: u64) -> Ggep {
    let bytes = size.to_le_bytes();
    let used = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(1, |last| last + 1);
    let value = bytes.get(..used).unwrap_or(&bytes);
    let needs_cobs = value.contains(&0);
    let extensions = GgepId::new(b"LF")
        .map(|id| GgepExtension::encoded(id, value, false, needs_cobs))
        .into_iter()
        .collect();
    Ggep::new(extensions)
}

/// Encodes `matches` into as many QueryHits as needed (see the module doc). A result too large to
/// fit a QueryHit alone, or a name containing NUL (neither happens with real file names), is
/// left out.
pub fn build_query_hits(
    matches: &[&SharedFile],
    query_id: DescriptorId,
    query_hops: u8,
    params: &QueryHitParams,
) -> Vec<Descriptor> {
    let private = if params.push_proxies.is_empty() {
        Vec::new()
    } else {
        let mut ggep = Vec::new();
        if let Some(id) = GgepId::new(b"PUSH") {
            Ggep::new(vec![GgepExtension::new(
                id,
                hazel_protocol::ggep::hosts::encode(&params.push_proxies),
            )])
            .encode(&mut ggep);
        }
        ggep
    };
    let trailer = QhdTrailer::new(VENDOR_CODE, params.flags(), private);
    let fixed = HEADER_LEN + QUERY_HIT_FIXED_LEN + trailer.encoded_len() + SERVENT_ID_LEN;
    let budget = QUERY_HIT_MAX_LEN.saturating_sub(fixed);
    let ttl = query_hops.saturating_add(1).min(params.max_ttl).max(1);

    let mut hits = Vec::new();
    let mut results: Vec<HitResult> = Vec::new();
    let mut used = 0usize;
    let mut flush = |results: &mut Vec<HitResult>| {
        if results.is_empty() {
            return;
        }
        hits.push(Descriptor {
            id: query_id,
            ttl,
            hops: 0,
            payload: Payload::QueryHit(QueryHit {
                port: params.port,
                ip: params.ip,
                speed: params.speed_kbps,
                results: std::mem::take(results),
                trailer: Some(trailer.clone()),
                servent_id: params.servent_id,
            }),
        });
    };
    for file in matches {
        if file.name.contains('\0') {
            // A NUL ends the name on the wire; such a name cannot be listed (and no Unix file
            // name has one).
            continue;
        }
        let result = hit_result(file);
        let len = result.encoded_len();
        if len > budget {
            log::warn!(
                "{}: result too large for a QueryHit; not listed",
                hazel_protocol::text::Escaped::new(&file.name)
            );
            continue;
        }
        if used + len > budget || results.len() >= MAX_RESULTS_PER_HIT {
            flush(&mut results);
            used = 0;
        }
        used += len;
        results.push(result);
    }
    flush(&mut results);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazel_protocol::descriptor::SpeedField;
    use std::path::PathBuf;
    use std::time::UNIX_EPOCH;

    fn params() -> QueryHitParams {
        QueryHitParams {
            servent_id: ServentId([0xAB; 16]),
            ip: Ipv4Addr::new(192, 0, 2, 7),
            port: 6346,
            speed_kbps: 512,
            firewalled: false,
            busy: false,
            have_uploaded: false,
            upload_speed_measured: false,
            max_ttl: 7,
            push_proxies: Vec::new(),
        }
    }

    fn file(index: u32, name: &str, size: u64, sha1: Option<[u8; 20]>) -> SharedFile {
        SharedFile {
            index,
            name: name.to_owned(),
            rel_path: PathBuf::from(name),
            path: PathBuf::from(name),
            size,
            mtime: UNIX_EPOCH,
            sha1,
            tiger: None,
        }
    }

    /// Encodes, decodes with the protocol crate, and checks the re-encoding is identical.
    fn wire_round_trip(d: &Descriptor) -> (Vec<u8>, QueryHit) {
        let bytes = d.to_bytes();
        let parsed = Descriptor::parse(&bytes).expect("our QueryHit decodes");
        assert_eq!(parsed.to_bytes(), bytes, "re-encoding differs");
        let Payload::QueryHit(hit) = parsed.payload else {
            panic!("not a QueryHit");
        };
        (bytes, hit)
    }

    #[test]
    fn one_hit_with_urn_trailer_and_servent_id_last() {
        let sha1 = [0x5A; 20];
        let f = file(9, "Ünïcode Song.ogg", 123_456, Some(sha1));
        let id = DescriptorId([3; 16]);
        let hits = build_query_hits(&[&f], id, 2, &params());
        assert_eq!(hits.len(), 1);
        let (bytes, hit) = wire_round_trip(&hits[0]);
        assert_eq!(hits[0].id, id);
        assert_eq!((hits[0].ttl, hits[0].hops), (3, 0));
        assert_eq!(bytes.get(bytes.len() - 16..), Some(&[0xAB; 16][..]));
        assert_eq!(hit.port, 6346);
        assert_eq!(hit.ip, Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(hit.speed, 512);
        let r = &hit.results[0];
        assert_eq!((r.index, r.size), (9, 123_456));
        assert_eq!(r.name, "Ünïcode Song.ogg".as_bytes());
        assert_eq!(r.sha1(), Some(sha1));
        let urn_text = format!("urn:sha1:{}", data_encoding::BASE32.encode(&sha1));
        assert!(bytes
            .windows(urn_text.len())
            .any(|w| w == urn_text.as_bytes()));
        let trailer = hit.trailer.expect("trailer");
        assert_eq!(&trailer.vendor, b"HZEL");
        assert_eq!(trailer.open_data.len(), 2);
    }

    #[test]
    fn a_file_with_a_tree_is_announced_by_bitprint() {
        let sha1 = [0x21; 20];
        let tiger = hazel_protocol::thex::root_of(b"some content");
        let mut with_tree = file(4, "tree.bin", 12, Some(sha1));
        with_tree.tiger = Some(tiger);
        let without = file(5, "plain.bin", 12, Some([0x22; 20]));
        let hits = build_query_hits(&[&with_tree, &without], DescriptorId([1; 16]), 0, &params());
        let (bytes, hit) = wire_round_trip(&hits[0]);
        let bitprint = hazel_protocol::huge::bitprint_urn(&sha1, &tiger);
        assert!(bytes
            .windows(bitprint.len())
            .any(|w| w == bitprint.as_bytes()));
        // A downloader reads both digests from it, through the same views a search uses.
        let view = hazel_protocol::descriptor::QueryHitRef::parse(&bytes[HEADER_LEN..])
            .expect("our hit parses");
        let results: Vec<_> = view.results().collect();
        assert_eq!(results[0].sha1(), Some(sha1));
        assert_eq!(results[0].tiger(), Some(tiger));
        assert_eq!(results[1].sha1(), Some([0x22; 20]));
        assert_eq!(results[1].tiger(), None);
        assert_eq!(hit.results[1].sha1(), Some([0x22; 20]));
    }

    #[test]
    fn open_data_flag_bytes_both_directions() {
        // Push: value in the first byte, "meaningful" in the second. The others: meaningful in
        // the first byte (busy 0x04, uploaded 0x08, speed 0x10, ggep 0x20), value in the second.
        let cases = [
            ((false, false, false, false), [0x3C, 0x01]),
            ((true, false, false, false), [0x3D, 0x01]),
            ((false, true, false, false), [0x3C, 0x05]),
            ((false, false, true, false), [0x3C, 0x09]),
            ((false, false, false, true), [0x3C, 0x11]),
            ((true, true, true, true), [0x3D, 0x1D]),
        ];
        let f = file(1, "a.txt", 1, None);
        for ((firewalled, busy, have_uploaded, measured), expected) in cases {
            let p = QueryHitParams {
                firewalled,
                busy,
                have_uploaded,
                upload_speed_measured: measured,
                ..params()
            };
            let hits = build_query_hits(&[&f], DescriptorId([1; 16]), 0, &p);
            let (bytes, hit) = wire_round_trip(&hits[0]);
            // vendor(4) size(1) open data(2) servent id(16) end the payload.
            let open = &bytes[bytes.len() - 18..bytes.len() - 16];
            assert_eq!(
                open, expected,
                "{firewalled} {busy} {have_uploaded} {measured}"
            );
            assert_eq!(&bytes[bytes.len() - 23..bytes.len() - 19], b"HZEL");
            assert_eq!(bytes[bytes.len() - 19], 2);
            let flags = hit.trailer.expect("trailer").flags();
            assert_eq!(flags.push, Some(firewalled));
            assert_eq!(flags.busy, Some(busy));
            assert_eq!(flags.have_uploaded, Some(have_uploaded));
            assert_eq!(flags.upload_speed, Some(measured));
            assert_eq!(flags.ggep, Some(false));
        }
    }

    #[test]
    fn ttl_is_hops_plus_one_capped() {
        let f = file(1, "a.txt", 1, None);
        for (hops, ttl) in [(0u8, 1u8), (3, 4), (6, 7), (7, 7), (14, 7), (255, 7)] {
            let hits = build_query_hits(&[&f], DescriptorId([1; 16]), hops, &params());
            assert_eq!((hits[0].ttl, hits[0].hops), (ttl, 0), "hops {hops}");
        }
        let p = QueryHitParams {
            max_ttl: 3,
            ..params()
        };
        let hits = build_query_hits(&[&f], DescriptorId([1; 16]), 5, &p);
        assert_eq!(hits[0].ttl, 3);
    }

    #[test]
    fn splits_at_16_kib_with_correct_counts() {
        // 151-byte results (8 + 100 + 1 + 41 + 1): 108 fit in 16 KiB minus the fixed parts.
        let name = "n".repeat(96);
        let files: Vec<SharedFile> = (0..1000)
            .map(|i| file(i, &format!("{name}{i:04}"), 10, Some([i as u8; 20])))
            .collect();
        let refs: Vec<&SharedFile> = files.iter().collect();
        let hits = build_query_hits(&refs, DescriptorId([2; 16]), 1, &params());
        let mut listed = Vec::new();
        for (n, d) in hits.iter().enumerate() {
            let (bytes, hit) = wire_round_trip(d);
            assert!(
                bytes.len() <= QUERY_HIT_MAX_LEN,
                "hit {n}: {} bytes",
                bytes.len()
            );
            if n + 1 < hits.len() {
                // Full: one more result would not have fit.
                assert!(bytes.len() + 151 > QUERY_HIT_MAX_LEN, "hit {n} not full");
            }
            // The count byte agrees with the results that follow.
            assert_eq!(usize::from(bytes[HEADER_LEN]), hit.results.len());
            listed.extend(hit.results.iter().map(|r| r.index));
        }
        assert_eq!(hits.len(), 1000usize.div_ceil(108));
        assert_eq!(listed, (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn splits_at_255_results() {
        let files: Vec<SharedFile> = (0..600).map(|i| file(i, "x", 1, None)).collect();
        let refs: Vec<&SharedFile> = files.iter().collect();
        let hits = build_query_hits(&refs, DescriptorId([2; 16]), 1, &params());
        let counts: Vec<usize> = hits
            .iter()
            .map(|d| wire_round_trip(d).1.results.len())
            .collect();
        assert_eq!(counts, vec![255, 255, 90]);
        assert!(build_query_hits(&[], DescriptorId([2; 16]), 1, &params()).is_empty());
    }

    #[test]
    fn large_files_carry_ggep_lf() {
        let size = 5 * 1024 * 1024 * 1024u64; // 0x1_4000_0000: has zero bytes.
        let f = file(4, "big.iso", size, Some([1; 20]));
        let hits = build_query_hits(&[&f], DescriptorId([2; 16]), 1, &params());
        let (_, hit) = wire_round_trip(&hits[0]);
        let r = &hit.results[0];
        assert_eq!(r.size, u32::MAX);
        let lf = r.ggep().and_then(|g| g.get(b"LF")).expect("LF extension");
        let value = lf.value().expect("LF decodes");
        let mut le = [0u8; 8];
        le[..value.len()].copy_from_slice(&value);
        assert_eq!(u64::from_le_bytes(le), size);
        assert_eq!(r.sha1(), Some([1; 20]));
    }

    #[test]
    fn query_to_hits_through_the_library() {
        let lib = Library::new(vec![
            file(1, "Beatles - Help.mp3", 100, Some([1; 20])),
            file(2, "Stones - Angie.mp3", 200, Some([2; 20])),
        ]);
        let mut query = Query::new(SpeedField([0x80, 0]), b"help beatles".to_vec());
        let hits = lib.answer_query(&query, DescriptorId([9; 16]), 2, &params(), 64);
        assert_eq!(hits.len(), 1);
        let (_, hit) = wire_round_trip(&hits[0]);
        assert_eq!(
            hit.results.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![1]
        );

        // gtk-gnutella's form of a SHA-1 query: text "\" and the urn as an extension.
        query.search = b"\\".to_vec();
        query.extensions = vec![Extension::Urn(Urn::Sha1([2; 20]))];
        let criteria = SearchCriteria::from_query(&query);
        assert_eq!(criteria.sha1_urns, vec![[2; 20]]);
        let hits = lib.answer_query(&query, DescriptorId([9; 16]), 2, &params(), 64);
        let (_, hit) = wire_round_trip(&hits[0]);
        assert_eq!(
            hit.results.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![2]
        );

        query.extensions.clear();
        query.search = format!("urn:sha1:{}", data_encoding::BASE32.encode(&[1; 20])).into_bytes();
        let hits = lib.answer_query(&query, DescriptorId([9; 16]), 2, &params(), 64);
        let (_, hit) = wire_round_trip(&hits[0]);
        assert_eq!(
            hit.results.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![1]
        );

        query.search = b"\\".to_vec();
        assert!(lib
            .answer_query(&query, DescriptorId([9; 16]), 2, &params(), 64)
            .is_empty());
    }
}
