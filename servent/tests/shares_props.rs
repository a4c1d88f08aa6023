//! Property tests of the shares core: the keyword index agrees with a linear scan, QueryHits
//! always fit and decode back exactly, and the upload session survives any bytes.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use hazel_protocol::descriptor::{Descriptor, Payload, ServentId};
use hazel_protocol::header::DescriptorId;
use hazel_servent::core::shares::query_hits::{
    build_query_hits, QueryHitParams, QUERY_HIT_MAX_LEN,
};
use hazel_servent::core::shares::upload::{UploadConfig, UploadPoll, UploadSession, UploadSlots};
use hazel_servent::core::shares::{Library, SearchCriteria, SharedFile};
use proptest::prelude::*;

/// Names from a small vocabulary (so queries often match), with mixed case, Unicode and
/// separators.
fn name() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "beat",
        "Beatles",
        "HELP",
        "help",
        "Ünïcode",
        "ÜNÏCODE",
        "straße",
        "日本",
        "a",
        "mp3",
        "1970",
        "x_y",
        "Σοφία",
    ]);
    let sep = prop::sample::select(vec![" ", " - ", ".", "_", "(", ")", "!", ""]);
    prop::collection::vec((word, sep), 1..6).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(w, s)| format!("{w}{s}"))
            .collect::<String>()
    })
}

fn files() -> impl Strategy<Value = Vec<SharedFile>> {
    prop::collection::vec(
        (name(), 0u64..10_000_000_000, any::<Option<[u8; 20]>>()),
        0..40,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .enumerate()
            .map(|(i, (name, size, sha1))| SharedFile {
                index: i as u32 * 3 + 1,
                rel_path: PathBuf::from(&name),
                path: PathBuf::from("/shared").join(&name),
                name,
                size,
                mtime: UNIX_EPOCH,
                sha1,
                tiger: None,
            })
            .collect()
    })
}

fn params() -> QueryHitParams {
    QueryHitParams {
        servent_id: ServentId([7; 16]),
        ip: std::net::Ipv4Addr::LOCALHOST,
        port: 6346,
        speed_kbps: 100,
        firewalled: true,
        busy: false,
        have_uploaded: true,
        upload_speed_measured: false,
        max_ttl: 7,
        push_proxies: Vec::new(),
    }
}

proptest! {
    #[test]
    fn index_agrees_with_linear_scan(files in files(), query in name(), urn_pick in any::<prop::sample::Index>()) {
        let urns: Vec<[u8; 20]> = files.iter().filter_map(|f| f.sha1).collect();
        let lib = Library::new(files);
        let mut criteria = SearchCriteria::text(&query);
        if !urns.is_empty() {
            criteria.sha1_urns.push(urns[urn_pick.index(urns.len())]);
        }
        let indexed: Vec<u32> = lib.search(&criteria).iter().map(|f| f.index).collect();
        let linear: Vec<u32> = lib.search_linear(&criteria).iter().map(|f| f.index).collect();
        prop_assert_eq!(&indexed, &linear);
        for limit in [0usize, 1, 3] {
            let limited: Vec<u32> = lib.search_limited(&criteria, limit).iter().map(|f| f.index).collect();
            prop_assert_eq!(&limited[..], &indexed[..indexed.len().min(limit)]);
        }
    }

    #[test]
    fn with_sha1s_equals_a_rebuild(
        files in files(),
        updates in prop::collection::vec((0usize..40, any::<[u8; 20]>(), any::<bool>()), 0..20),
    ) {
        let lib = Library::new(files.clone());
        let mut expected_files = files.clone();
        let mut digests = Vec::new();
        for (pick, digest, reuse) in updates {
            if expected_files.is_empty() {
                break;
            }
            let at = pick % expected_files.len();
            // Sometimes reuse a digest another file already has.
            let digest = if reuse {
                expected_files.iter().find_map(|f| f.sha1).unwrap_or(digest)
            } else {
                digest
            };
            expected_files[at].sha1 = Some(digest);
            digests.push((expected_files[at].index, digest));
        }
        let updated = lib.with_sha1s(&digests);
        let rebuilt = Library::new(expected_files.clone());
        prop_assert_eq!(updated.files().len(), rebuilt.files().len());
        for (a, b) in updated.files().iter().zip(rebuilt.files()) {
            prop_assert_eq!(&**a, &**b);
        }
        for file in &expected_files {
            if let Some(digest) = file.sha1 {
                let found = updated.by_sha1(&digest).expect("every digest is found");
                prop_assert_eq!(found.sha1, Some(digest));
            }
        }
        // Digests no file has any more are gone.
        for file in &files {
            if let Some(digest) = file.sha1 {
                prop_assert_eq!(
                    updated.by_sha1(&digest).is_some(),
                    expected_files.iter().any(|f| f.sha1 == Some(digest))
                );
            }
        }
    }

    #[test]
    fn query_hits_fit_decode_and_reencode(files in files(), hops in any::<u8>()) {
        let refs: Vec<&SharedFile> = files.iter().collect();
        let hits = build_query_hits(&refs, DescriptorId([5; 16]), hops, &params());
        let mut listed = Vec::new();
        for d in &hits {
            let bytes = d.to_bytes();
            prop_assert!(bytes.len() <= QUERY_HIT_MAX_LEN);
            let parsed = Descriptor::parse(&bytes).expect("decodes");
            prop_assert_eq!(parsed.to_bytes(), bytes);
            prop_assert_eq!(parsed.hops, 0);
            prop_assert_eq!(parsed.ttl, hops.saturating_add(1).min(7));
            let Payload::QueryHit(hit) = parsed.payload else { panic!("not a QueryHit") };
            for r in &hit.results {
                let file = files.iter().find(|f| f.index == r.index).expect("listed file exists");
                prop_assert_eq!(&r.name, &file.name.as_bytes().to_vec());
                prop_assert_eq!(r.sha1(), file.sha1);
                prop_assert_eq!(u64::from(r.size), file.size.min(u64::from(u32::MAX)));
            }
            listed.extend(hit.results.iter().map(|r| r.index));
        }
        prop_assert_eq!(listed, files.iter().map(|f| f.index).collect::<Vec<_>>());
    }

    #[test]
    fn upload_session_survives_any_bytes(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..20),
        prefix in prop::sample::select(vec![&b""[..], b"GET ", b"HEAD /get/1/", b"GET /uri-res/N2R?urn:sha1:"]),
    ) {
        let lib = Library::new(vec![SharedFile {
            index: 1,
            name: "a b.mp3".into(),
            rel_path: PathBuf::from("a b.mp3"),
            path: PathBuf::from("/shared/a b.mp3"),
            size: 100,
            mtime: UNIX_EPOCH,
            sha1: Some([1; 20]),
            tiger: None,
        }]);
        let mut slots = UploadSlots::new(1);
        let mut session = UploadSession::new(UploadConfig::default());
        session.on_bytes(prefix);
        for chunk in &chunks {
            session.on_bytes(chunk);
            // Bounded: each poll consumes a request or stops.
            for _ in 0..8 {
                match session.poll(&lib, &mut slots) {
                    UploadPoll::NeedMore => break,
                    UploadPoll::Close => break,
                    UploadPoll::Respond(reply) => {
                        prop_assert!(reply.head.ends_with(b"\r\n\r\n"));
                        if let Some(span) = &reply.body {
                            prop_assert!(span.offset + span.len <= 100);
                            prop_assert_eq!(&span.path, &PathBuf::from("/shared/a b.mp3"));
                        }
                        session.reply_sent(&mut slots);
                    }
                }
            }
        }
        session.on_close(&mut slots);
        prop_assert_eq!(slots.active(), 0);
    }
}
