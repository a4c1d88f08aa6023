//! Unit tests of the index, and a proptest that checks it against a naive
//! linear scan over random shares, unshares, logouts and searches.

use super::tokenize::path_words;
use super::*;
use hazel_protocol::napster::search::SearchClause;
use hazel_protocol::napster::{SearchResult, ServerMessage};
use proptest::prelude::*;

fn file(name: &str, size: u64, bitrate: u32) -> SharedFile {
    SharedFile {
        name: name.as_bytes().to_vec(),
        md5: b"b92870e0d41bc8e698cf2f0a1ddfeac7".to_vec(),
        size,
        bitrate,
        freq: 44100,
        duration: 200,
    }
}

fn names(index: &Index, hits: &[FileId]) -> Vec<String> {
    hits.iter()
        .map(|&id| String::from_utf8_lossy(index.file(id).unwrap().name).into_owned())
        .collect()
}

fn lo() -> Ipv4Addr {
    Ipv4Addr::LOCALHOST
}

#[test]
fn whole_word_case_folded_matching_on_name_and_parent_directory() {
    let mut index = Index::new();
    let alice = index.add_user("alice", lo(), 7);
    let bob = index.add_user("bob", lo(), 3);
    index
        .add_file(
            alice,
            &file("C:\\mp3\\Sneaker Pimps\\Tesko Suicide.mp3", 1, 128),
        )
        .unwrap();
    index
        .add_file(
            alice,
            &file("C:\\mp3\\Other\\Suicidal Tendencies.mp3", 2, 128),
        )
        .unwrap();
    let hits = index.search(&SearchQuery::simple(b"SUICIDE", 100), Some(bob), 100);
    assert_eq!(
        names(&index, &hits),
        ["C:\\mp3\\Sneaker Pimps\\Tesko Suicide.mp3"]
    );
    let hits = index.search(&SearchQuery::simple(b"pimps tesko", 100), Some(bob), 100);
    assert_eq!(hits.len(), 1, "parent directory words are indexed");
    assert!(
        index
            .search(&SearchQuery::simple(b"mp3", 100), Some(bob), 100)
            .is_empty(),
        "the extension and grandparent directories are not indexed"
    );
    assert!(
        index
            .search(&SearchQuery::simple(b"suicid", 100), Some(bob), 100)
            .is_empty(),
        "no prefix matches"
    );
}

#[test]
fn own_files_are_never_returned_and_results_are_capped() {
    let mut index = Index::new();
    let alice = index.add_user("alice", lo(), 7);
    let bob = index.add_user("bob", lo(), 3);
    for i in 0..10 {
        index
            .add_file(alice, &file(&format!("song {i}.mp3"), i, 128))
            .unwrap();
    }
    assert!(index
        .search(&SearchQuery::simple(b"song", 100), Some(alice), 100)
        .is_empty());
    assert_eq!(
        index
            .search(&SearchQuery::simple(b"song", 100), Some(bob), 100)
            .len(),
        10
    );
    assert_eq!(
        index
            .search(&SearchQuery::simple(b"song", 4), Some(bob), 100)
            .len(),
        4
    );
    assert_eq!(
        index
            .search(&SearchQuery::simple(b"song", 100), Some(bob), 3)
            .len(),
        3
    );
    assert_eq!(
        index
            .search(&SearchQuery::simple(b"song", 0), Some(bob), 6)
            .len(),
        6
    );
}

#[test]
fn excludes_and_numeric_filters() {
    let mut index = Index::new();
    let alice = index.add_user("alice", lo(), 7);
    let carol = index.add_user("carol", lo(), 2);
    index
        .add_file(alice, &file("song live.mp3", 5_000_000, 320))
        .unwrap();
    index
        .add_file(alice, &file("song studio.mp3", 3_000_000, 128))
        .unwrap();
    index
        .add_file(carol, &file("song demo.mp3", 1_000_000, 192))
        .unwrap();
    let q = |clauses: Vec<SearchClause>| SearchQuery { clauses };
    let contains = || SearchClause::Contains(b"song".to_vec());
    let cmp = |field, op, value| SearchClause::Compare {
        field,
        op,
        value,
        quoted: false,
    };
    let run = |query: SearchQuery| names(&index, &index.search(&query, None, 100));
    assert_eq!(
        run(q(vec![
            contains(),
            SearchClause::Excludes(b"LIVE demo".to_vec())
        ])),
        ["song studio.mp3"]
    );
    assert_eq!(
        run(q(vec![
            contains(),
            cmp(NumericField::Bitrate, Comparison::AtLeast, 192)
        ])),
        ["song live.mp3", "song demo.mp3"]
    );
    assert_eq!(
        run(q(vec![
            contains(),
            cmp(NumericField::Size, Comparison::AtBest, 3_000_000)
        ])),
        ["song studio.mp3", "song demo.mp3"]
    );
    assert_eq!(
        run(q(vec![
            contains(),
            cmp(NumericField::LineSpeed, Comparison::EqualTo, 2)
        ])),
        ["song demo.mp3"]
    );
    assert_eq!(
        run(q(vec![
            contains(),
            cmp(NumericField::Duration, Comparison::AtLeast, 201)
        ])),
        Vec::<String>::new()
    );
    assert_eq!(
        run(q(vec![
            contains(),
            cmp(NumericField::Freq, Comparison::EqualTo, 44100)
        ]))
        .len(),
        3
    );
    assert!(
        run(q(vec![SearchClause::MaxResults(5)])).is_empty(),
        "no words, no results"
    );
}

#[test]
fn counts_totals_unshare_and_logout() {
    let mut index = Index::new();
    let alice = index.add_user("alice", lo(), 7);
    let bob = index.add_user("bob", lo(), 7);
    index
        .add_file(alice, &file("a b.mp3", 1_500_000_000, 128))
        .unwrap();
    index
        .add_file(alice, &file("b c.mp3", 1_000_000_000, 128))
        .unwrap();
    index.add_file(bob, &file("c d.mp3", 10, 128)).unwrap();
    assert_eq!(index.total_files(), 3);
    assert_eq!(index.total_gigabytes(), 2);
    assert_eq!(index.user_file_count(alice), 2);
    assert!(index.remove_file(alice, b"a b.mp3"));
    assert!(!index.remove_file(alice, b"a b.mp3"));
    assert!(
        !index.remove_file(bob, b"b c.mp3"),
        "only the owner's files"
    );
    assert_eq!(index.user_file_count(alice), 1);
    assert_eq!(index.total_bytes(), 1_000_000_010);
    assert!(index
        .search(&SearchQuery::simple(b"a", 10), None, 10)
        .is_empty());
    assert_eq!(index.remove_user(alice), 1);
    assert_eq!(index.user_count(), 1);
    assert_eq!(index.total_files(), 1);
    assert!(index
        .search(&SearchQuery::simple(b"b", 10), None, 10)
        .is_empty());
    assert_eq!(
        index.word_count(),
        2,
        "words of removed files are gone: c, d"
    );
    assert_eq!(index.remove_all_files(bob), 1);
    assert_eq!(index.word_count(), 0);
    assert!(
        index.add_file(alice, &file("x.mp3", 1, 1)).is_err(),
        "removed user"
    );
}

#[test]
fn file_slots_and_user_slots_are_reused() {
    let mut index = Index::new();
    for round in 0..5 {
        let u = index.add_user(&format!("user{round}"), lo(), 1);
        for i in 0..100 {
            index
                .add_file(u, &file(&format!("w{i} common.mp3"), 1, 1))
                .unwrap();
        }
        index.remove_user(u);
    }
    assert_eq!(
        index.files.len(),
        100,
        "file table does not grow across logouts"
    );
    assert_eq!(index.users.len(), 1);
    assert_eq!(index.word_count(), 0);
}

#[test]
fn arena_is_compacted_after_many_unshares() {
    let mut index = Index::new();
    let u = index.add_user("u", lo(), 1);
    let long = "x".repeat(200);
    for i in 0..100 {
        index
            .add_file(u, &file(&format!("{long} {i}.mp3"), 1, 1))
            .unwrap();
    }
    let full = index.users[0].as_ref().unwrap().arena.len();
    for i in 0..80 {
        assert!(index.remove_file(u, format!("{long} {i}.mp3").as_bytes()));
    }
    let user = index.users[0].as_ref().unwrap();
    assert!(
        user.arena.len() < full / 2,
        "{} of {full}",
        user.arena.len()
    );
    let left: Vec<_> = index.user_files(u).map(|f| f.name.to_vec()).collect();
    assert_eq!(left.len(), 20);
    assert!(left.contains(&format!("{long} 99.mp3").into_bytes()));
    assert_eq!(
        index
            .search(&SearchQuery::simple(b"95", 10), None, 10)
            .len(),
        1,
        "names still readable after compaction"
    );
}

#[test]
fn md5_is_returned_as_shared_packed_or_not() {
    let mut index = Index::new();
    let u = index.add_user("u", lo(), 1);
    for md5 in [
        &b"b92870e0d41bc8e698cf2f0a1ddfeac7"[..],
        b"B92870E0D41BC8E698CF2F0A1DDFEAC7",
        b"nomd5computed",
        b"WMA-FILE",
    ] {
        let mut f = file("x.mp3", 1, 1);
        f.md5 = md5.to_vec();
        let id = index.add_file(u, &f).unwrap();
        assert_eq!(index.file(id).unwrap().md5(), md5);
    }
    let mut bad = file("x.mp3", 1, 1);
    bad.md5 = b"has space".to_vec();
    assert_eq!(index.add_file(u, &bad), Err(AddFileError::BadMd5));
    let quoted = file("say \"hi\".mp3", 1, 1);
    assert_eq!(index.add_file(u, &quoted), Err(AddFileError::QuoteInName));
}

#[test]
fn encoded_201_is_what_a_client_reads_back() {
    let mut index = Index::new();
    let ip = Ipv4Addr::new(10, 1, 2, 3);
    let u = index.add_user("sharer", ip, 7);
    let shared = file("C:\\mp3\\a b.mp3", 123456, 192);
    let id = index.add_file(u, &shared).unwrap();
    let mut direct = Vec::new();
    index
        .file(id)
        .unwrap()
        .encode_search_result(&mut direct)
        .unwrap();
    let payload =
        b"\"C:\\mp3\\a b.mp3\" b92870e0d41bc8e698cf2f0a1ddfeac7 123456 192 44100 200 sharer 50462986 7";
    assert_eq!(&direct[4..], payload.as_slice());
    assert_eq!(direct[..4], [payload.len() as u8, 0, 201, 0]);
    assert_eq!(
        ServerMessage::parse(201, &direct[4..]),
        Ok(ServerMessage::SearchResult(SearchResult {
            name: shared.name,
            md5: shared.md5,
            size: shared.size,
            bitrate: shared.bitrate,
            freq: shared.freq,
            duration: shared.duration,
            nick: "sharer".into(),
            ip,
            link_speed: 7,
            weight: None,
        }))
    );
}

#[test]
fn memory_use_counts_every_structure() {
    let mut index = Index::new();
    let u = index.add_user("u", lo(), 1);
    for i in 0..1000 {
        index
            .add_file(
                u,
                &file(&format!("C:\\mp3\\w{} w{} w{}.mp3", i, i % 7, i % 13), 1, 1),
            )
            .unwrap();
    }
    let m = index.memory_use();
    assert!(m.file_table >= 1000 * 32);
    assert!(m.arenas >= 1000 * (16 + 10));
    assert!(m.postings >= 1000 * 4 * 4);
    assert!(m.total() < 1000 * 256, "{m:?}");
}

// ---- model check ----

#[derive(Debug, Clone)]
enum Op {
    AddUser(u8),
    AddFile {
        user: u8,
        words: Vec<u8>,
        dir: u8,
        size: u64,
        bitrate: u32,
    },
    RemoveFile {
        user: u8,
        pick: usize,
    },
    RemoveAll(u8),
    RemoveUser(u8),
    Search {
        words: Vec<u8>,
        excludes: Vec<u8>,
        searcher: u8,
        max: u32,
        min_bitrate: Option<u32>,
    },
}

const VOCAB: &[&str] = &[
    "love",
    "LOVE",
    "song",
    "don't",
    "a1",
    "x",
    "\u{e9}t\u{e9}",
    "blue",
    "42",
    "mix",
];
const DIRS: &[&str] = &[
    "",
    "C:\\mp3\\",
    "C:\\mp3\\love songs\\",
    "/home/x/Blue Mix/",
];

fn phrase(words: &[u8]) -> String {
    words
        .iter()
        .map(|&w| VOCAB[w as usize % VOCAB.len()])
        .collect::<Vec<_>>()
        .join(" - ")
}

fn op() -> impl Strategy<Value = Op> {
    let words = prop::collection::vec(0u8..10, 0..4);
    prop_oneof![
        1 => (0u8..4).prop_map(Op::AddUser),
        6 => (0u8..4, words.clone(), 0u8..4, 0u64..1000, prop_oneof![Just(128u32), Just(192), Just(320)])
            .prop_map(|(user, words, dir, size, bitrate)| Op::AddFile { user, words, dir, size, bitrate }),
        2 => (0u8..4, any::<usize>()).prop_map(|(user, pick)| Op::RemoveFile { user, pick }),
        1 => (0u8..4).prop_map(Op::RemoveAll),
        1 => (0u8..4).prop_map(Op::RemoveUser),
        4 => (prop::collection::vec(0u8..10, 1..4), prop::collection::vec(0u8..10, 0..2), 0u8..5, 0u32..6, prop::option::of(prop_oneof![Just(192u32), Just(320)]))
            .prop_map(|(words, excludes, searcher, max, min_bitrate)| Op::Search { words, excludes, searcher, max, min_bitrate }),
    ]
}

struct ModelFile {
    id: FileId,
    user: u8,
    file: SharedFile,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn intersect_sorted_keeps_exactly_the_common_ids(
        a in prop::collection::btree_set(0u32..500, 0..200),
        b in prop::collection::btree_set(0u32..500, 0..200),
    ) {
        let (a, b): (Vec<u32>, Vec<u32>) = (a.into_iter().collect(), b.into_iter().collect());
        let mut out = Vec::new();
        intersect_sorted(&a, &b, &mut out);
        let expected: Vec<u32> = a.iter().copied().filter(|x| b.contains(x)).collect();
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn gallop_finds_the_first_position_not_below_the_target(
        mut list in prop::collection::vec(0u32..2000, 0..300),
        from_pick in any::<prop::sample::Index>(),
        target in 0u32..2100,
    ) {
        list.sort_unstable();
        list.dedup();
        let from = from_pick.index(list.len() + 1);
        let expected = from + list[from..].partition_point(|&v| v < target);
        prop_assert_eq!(gallop(&list, from, target), expected);
    }

    #[test]
    fn index_agrees_with_a_linear_scan(ops in prop::collection::vec(op(), 1..120)) {
        let mut index = Index::new();
        let mut ids: [Option<UserId>; 4] = [None; 4];
        let mut model: Vec<ModelFile> = Vec::new();
        for op in ops {
            match op {
                Op::AddUser(u) => {
                    if ids[u as usize].is_none() {
                        ids[u as usize] = Some(index.add_user(&format!("user{u}"), lo(), u32::from(u)));
                    }
                }
                Op::AddFile { user, words, dir, size, bitrate } => {
                    let name = format!("{}{}.mp3", DIRS[dir as usize], phrase(&words));
                    let f = file(&name, size, bitrate);
                    match ids[user as usize] {
                        Some(uid) => {
                            let id = index.add_file(uid, &f).unwrap();
                            model.push(ModelFile { id, user, file: f });
                        }
                        None => prop_assert!(index.add_file(UserId(user as u32 + 100), &f).is_err()),
                    }
                }
                Op::RemoveFile { user, pick } => {
                    let theirs: Vec<usize> = (0..model.len()).filter(|&i| model[i].user == user).collect();
                    if let (Some(uid), false) = (ids[user as usize], theirs.is_empty()) {
                        let at = theirs[pick % theirs.len()];
                        let name = model[at].file.name.clone();
                        prop_assert!(index.remove_file(uid, &name));
                        // The index removes one file of that name; which one
                        // is its choice, so ask it which survived.
                        let same: Vec<usize> = theirs.iter().copied().filter(|&i| model[i].file.name == name).collect();
                        let gone = same.iter().copied().find(|&i| index.file(model[i].id).is_none_or(|v| v.owner != uid || v.name != name.as_slice())).unwrap_or(at);
                        model.remove(gone);
                    }
                }
                Op::RemoveAll(u) | Op::RemoveUser(u) if ids[u as usize].is_none() => {}
                Op::RemoveAll(u) => {
                    let n = model.iter().filter(|m| m.user == u).count();
                    prop_assert_eq!(index.remove_all_files(ids[u as usize].unwrap()), n);
                    model.retain(|m| m.user != u);
                }
                Op::RemoveUser(u) => {
                    let n = model.iter().filter(|m| m.user == u).count();
                    prop_assert_eq!(index.remove_user(ids[u as usize].take().unwrap()), n);
                    model.retain(|m| m.user != u);
                }
                Op::Search { words, excludes, searcher, max, min_bitrate } => {
                    let mut clauses = vec![SearchClause::Contains(phrase(&words).into_bytes()), SearchClause::MaxResults(max)];
                    if !excludes.is_empty() {
                        clauses.push(SearchClause::Excludes(phrase(&excludes).into_bytes()));
                    }
                    if let Some(b) = min_bitrate {
                        clauses.push(SearchClause::Compare { field: NumericField::Bitrate, op: Comparison::AtLeast, value: u64::from(b), quoted: true });
                    }
                    let query = SearchQuery { clauses };
                    let searcher_id = ids.get(searcher as usize).copied().flatten();
                    let server_max = 4;
                    let got = index.search(&query, searcher_id, server_max);

                    let want_words = path_words(phrase(&words).as_bytes());
                    let excl_words = path_words(phrase(&excludes).as_bytes());
                    let wanted = if max == 0 { server_max } else { (max as usize).min(server_max) };
                    let mut expected: Vec<FileId> = model
                        .iter()
                        .filter(|m| Some(m.user) != searcher_id.map(|_| searcher))
                        .filter(|m| {
                            let fw = path_words(&m.file.name);
                            want_words.iter().all(|w| fw.contains(w))
                                && !excl_words.iter().any(|w| fw.contains(w))
                                && min_bitrate.is_none_or(|b| m.file.bitrate >= b)
                        })
                        .map(|m| m.id)
                        .collect();
                    expected.sort();
                    expected.truncate(if want_words.is_empty() { 0 } else { wanted });
                    prop_assert_eq!(got, expected);
                }
            }
            prop_assert_eq!(index.total_files(), model.len() as u64);
            prop_assert_eq!(index.total_bytes(), model.iter().map(|m| m.file.size).sum::<u64>());
        }
        for (u, id) in ids.iter().enumerate() {
            if let Some(id) = id {
                prop_assert_eq!(index.user_file_count(*id), model.iter().filter(|m| m.user as usize == u).count());
            }
        }
        // Logging everyone out leaves no words behind.
        for id in ids.iter().flatten() {
            index.remove_user(*id);
        }
        prop_assert_eq!(index.word_count(), 0);
        prop_assert_eq!(index.total_files(), 0);
    }
}

#[test]
fn removed_files_vanish_from_searches_before_the_purge_and_slots_wait_for_it() {
    let mut index = Index::new();
    let alice = index.add_user("alice", lo(), 1);
    for i in 0..10 {
        index
            .add_file(alice, &file(&format!("tune {i}.mp3"), 1, 1))
            .unwrap();
    }
    assert!(index.remove_file(alice, b"tune 3.mp3"));
    assert_eq!(index.removed.len(), 1, "one removal of ten does not purge");
    let hits = index.search(&SearchQuery::simple(b"tune", 100), None, 100);
    assert_eq!(hits.len(), 9);
    assert!(index
        .search(&SearchQuery::simple(b"3", 100), None, 100)
        .is_empty());
    let new_id = index.add_file(alice, &file("tune 3.mp3", 1, 1)).unwrap();
    assert_eq!(new_id.index(), 10, "the removed slot is not reused yet");
    assert_eq!(
        index.search(&SearchQuery::simple(b"3", 100), None, 100),
        vec![new_id]
    );
    index.purge();
    assert!(index.removed.is_empty());
    assert_eq!(index.postings.get(&b"3"[..]).map(Vec::len), Some(1));
    let reused = index.add_file(alice, &file("other.mp3", 1, 1)).unwrap();
    assert_eq!(reused.index(), 3, "after the purge the slot is reused");
    assert_eq!(
        index
            .search(&SearchQuery::simple(b"tune", 100), None, 100)
            .len(),
        10
    );
}

#[test]
fn skewed_and_three_word_intersections() {
    let mut index = Index::new();
    let u = index.add_user("u", lo(), 1);
    for i in 0..100 {
        index
            .add_file(u, &file(&format!("common filler{i}.mp3"), 1, 1))
            .unwrap();
    }
    let rare = index
        .add_file(u, &file("common rare extra.mp3", 1, 1))
        .unwrap();
    index.add_file(u, &file("common extra.mp3", 1, 1)).unwrap();
    // 1 "rare" against 102 "common": the galloping path.
    let hits = index.search(&SearchQuery::simple(b"rare common", 100), None, 100);
    assert_eq!(hits, vec![rare]);
    // Merge of the two shortest, then a gallop in the third.
    let hits = index.search(&SearchQuery::simple(b"common extra rare", 100), None, 100);
    assert_eq!(hits, vec![rare]);
    assert_eq!(
        index
            .search(&SearchQuery::simple(b"extra common", 100), None, 100)
            .len(),
        2
    );
}
