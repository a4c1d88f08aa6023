//! OpenNap messages: byte vectors from the spec's examples, proptest round
//! trips for every message, and a framer fed a stream split anywhere.

use hazel_protocol::napster::message::{kind, UserLevel};
use hazel_protocol::napster::{
    AdminTarget, BanEntry, BrowseEnd, BrowseEntry, ClientMessage, ClientVersionCount, Comparison,
    DirectBrowseAddress, DirectBrowseError, DirectBrowseRequest, DownloadAck, EncodeError, Frame,
    LevelChange, Login, NapsterFramer, NewUserLogin, NumericField, PasswordChange, QueueLimit,
    QueueLimitReached, SearchClause, SearchQuery, SearchResult, SearchResultRef, ServerMessage,
    ServerStats, ShareBatch, SharedFile, UploadRequest, UsageStats, UserFile, WhoisDetails,
    WhoisResponse, Whowas,
};
use hazel_protocol::DecodeError;
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn frame(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u16).to_le_bytes().to_vec();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn client_round_trip(kind: u16, payload: &[u8]) -> ClientMessage {
    let msg = ClientMessage::parse(kind, payload).expect("decodes");
    assert_eq!(msg.kind(), kind);
    assert_eq!(
        msg.to_bytes().unwrap(),
        frame(kind, payload),
        "exact re-encoding"
    );
    msg
}

fn server_round_trip(kind: u16, payload: &[u8]) -> ServerMessage {
    let msg = ServerMessage::parse(kind, payload).expect("decodes");
    assert_eq!(msg.kind(), kind);
    assert_eq!(
        msg.to_bytes().unwrap(),
        frame(kind, payload),
        "exact re-encoding"
    );
    msg
}

#[test]
fn spec_login_example() {
    let msg = client_round_trip(2, b"foo badpass 6699 \"nap v0.8\" 3");
    assert_eq!(
        msg,
        ClientMessage::Login(Login {
            nick: "foo".into(),
            password: b"badpass".to_vec(),
            port: 6699,
            client_info: b"nap v0.8".to_vec(),
            link_speed: 3,
            build: None,
        })
    );
    client_round_trip(2, b"foo badpass 0 \"nap v0.8\" 3 1234");
}

#[test]
fn spec_new_user_example() {
    let msg = client_round_trip(6, b"foo foo 6699 \"nap v0.8\" 3 email@here.com");
    assert_eq!(
        msg,
        ClientMessage::NewUserLogin(NewUserLogin {
            nick: "foo".into(),
            password: b"foo".to_vec(),
            port: 6699,
            client_info: b"nap v0.8".to_vec(),
            link_speed: 3,
            email: b"email@here.com".to_vec(),
        })
    );
}

#[test]
fn spec_share_example_and_teknap_quirks() {
    let msg = client_round_trip(
        100,
        b"\"generic band - generic song.mp3\" b92870e0d41bc8e698cf2f0a1ddfeac7 443332 128 44100 60",
    );
    assert_eq!(
        msg,
        ClientMessage::Share(SharedFile {
            name: b"generic band - generic song.mp3".to_vec(),
            md5: b"b92870e0d41bc8e698cf2f0a1ddfeac7".to_vec(),
            size: 443332,
            bitrate: 128,
            freq: 44100,
            duration: 60,
        })
    );
    // TekNap: backslash paths, no md5, Latin-1 bytes in the name.
    let msg = client_round_trip(
        100,
        b"\"C:\\mp3\\Bj\xf6rk\\Hyperballad.mp3\" nomd5computed 5000000 192 44100 321",
    );
    let ClientMessage::Share(file) = msg else {
        panic!("not a share")
    };
    assert_eq!(file.md5, b"nomd5computed");
}

#[test]
fn extra_spaces_from_real_clients_are_tolerated() {
    let msg = ClientMessage::parse(
        100,
        b"\"a.mp3\"  b92870e0d41bc8e698cf2f0a1ddfeac7  1 128 44100 60 ",
    )
    .unwrap();
    let ClientMessage::Share(file) = msg else {
        panic!("not a share")
    };
    assert_eq!(file.size, 1);
}

#[test]
fn unshare_keeps_the_unquoted_name_whole() {
    let msg = client_round_trip(102, b"C:\\mp3\\two words.mp3");
    assert_eq!(
        msg,
        ClientMessage::Unshare {
            name: b"C:\\mp3\\two words.mp3".to_vec()
        }
    );
    assert!(ClientMessage::parse(102, b"").is_err());
}

#[test]
fn batched_share_lists_files_of_one_directory() {
    let msg = client_round_trip(
        870,
        b"\"C:\\mp3\" \"a.mp3\" 0123 10 128 44100 60 \"b c.mp3\" nomd5computed 20 192 48000 61",
    );
    let ClientMessage::ShareBatch(ShareBatch { directory, files }) = msg else {
        panic!("not a batch")
    };
    assert_eq!(directory, b"C:\\mp3");
    assert_eq!(files.len(), 2);
    assert_eq!(files[1].name, b"b c.mp3");
    assert_eq!(
        hazel_protocol::napster::message::batch_path(&directory, &files[1].name),
        b"C:\\mp3\\b c.mp3"
    );
    assert!(ClientMessage::parse(870, b"\"C:\\mp3\"").is_err());
    assert!(ClientMessage::parse(870, b"\"C:\\mp3\" \"a.mp3\" 0123 10 128").is_err());
}

#[test]
fn spec_search_examples() {
    let msg = client_round_trip(
        200,
        b"FILENAME CONTAINS \"Sneaker Pimps\" MAX_RESULTS 75 FILENAME CONTAINS \"tesko suicide\" BITRATE \"AT LEAST\" \"128\"",
    );
    let ClientMessage::Search(q) = msg else {
        panic!("not a search")
    };
    assert_eq!(q.max_results(), Some(75));
    assert!(ClientMessage::parse(
        200,
        b"FILENAME CONTAINS \"a \"quoted\" string\" MAX_RESULTS 100"
    )
    .is_err());
}

#[test]
fn spec_search_result_example() {
    let msg = server_round_trip(
        201,
        b"\"random band - random song.mp3\" 7d733c1e7419674744768db71bff8bcd 2558199 128 44100 159 lefty 3437166285 4",
    );
    let ServerMessage::SearchResult(r) = msg else {
        panic!("not a result")
    };
    assert_eq!(r.nick, "lefty");
    assert_eq!(r.ip, Ipv4Addr::new(205, 254, 222, 204));
    assert_eq!(r.link_speed, 4);
    assert_eq!(r.weight, None);
    server_round_trip(201, b"\"x\" m 1 2 3 4 n 16777343 0 -3");
}

#[test]
fn ip_of_loopback_is_16777343() {
    let ack = ServerMessage::DownloadAck(DownloadAck {
        nick: "lefty".into(),
        ip: Ipv4Addr::LOCALHOST,
        port: 6699,
        name: b"generic band - generic song.mp3".to_vec(),
        md5: b"10fe9e623b1962da85eea61df7ac1f69".to_vec(),
        link_speed: 3,
    });
    assert_eq!(
        ack.to_bytes().unwrap(),
        frame(
            204,
            b"lefty 16777343 6699 \"generic band - generic song.mp3\" 10fe9e623b1962da85eea61df7ac1f69 3"
        )
    );
    // The spec's own 204 example has an address that does not fit 32 bits.
    assert_eq!(
        ServerMessage::parse(
            204,
            b"lefty 4877911892 6699 \"generic band - generic song.mp3\" 10fe9e623b1962da85eea61df7ac1f69 3"
        ),
        Err(DecodeError::BadField("ip"))
    );
}

#[test]
fn download_negotiation_messages() {
    client_round_trip(
        203,
        b"mred \"C:\\Program Files\\Napster\\generic cowboy song.mp3\"",
    );
    client_round_trip(500, b"mred \"x.mp3\"");
    client_round_trip(608, b"lefty \"generic band - generic song.mp3\"");
    client_round_trip(
        619,
        b"joebob \"C:\\MP3\\Generic Band - Generic Song.mp3\" 3",
    );
    server_round_trip(607, b"lefty \"generic band - generic song.mp3\" 7");
    server_round_trip(607, b"lefty \"generic band - generic song.mp3\"");
    server_round_trip(609, b"lefty \"x.mp3\"");
    server_round_trip(206, b"lefty \"x.mp3\"");
    server_round_trip(501, b"bob 16777343 6699 \"x.mp3\" nomd5computed 0");
    server_round_trip(
        620,
        b"joebob \"C:\\MP3\\Generic Band - Generic Song.mp3\" 1234567 3",
    );
}

#[test]
fn browse_stats_counters_pings_motd() {
    client_round_trip(211, b"foouser");
    server_round_trip(
        212,
        b"foouser \"generic band - generic song.mp3\" b92870e0d41bc8e698cf2f0a1ddfeac7 443332 128 44100 60",
    );
    server_round_trip(213, b"foouser");
    server_round_trip(213, b"foouser 16777343");
    server_round_trip(210, b"nobody");
    assert_eq!(client_round_trip(214, b""), ClientMessage::StatsRequest);
    assert_eq!(
        server_round_trip(214, b"553 64692 254"),
        ServerMessage::Stats(ServerStats {
            users: 553,
            files: 64692,
            gigabytes: 254
        })
    );
    for k in 218..=221 {
        client_round_trip(k, b"");
    }
    assert_eq!(
        client_round_trip(750, b"foo"),
        ClientMessage::ServerPing {
            args: b"foo".to_vec()
        }
    );
    client_round_trip(750, b"");
    server_round_trip(750, b"");
    // What TekNap sends, and opennap-ng's answer: the arguments come back.
    assert_eq!(
        server_round_trip(750, b"127.0.0.1 1796596048 626009"),
        ServerMessage::ServerPing {
            args: b"127.0.0.1 1796596048 626009".to_vec()
        }
    );
    client_round_trip(751, b"foo");
    client_round_trip(752, b"foo");
    server_round_trip(751, b"foo");
    server_round_trip(752, b"foo");
    client_round_trip(621, b"");
    server_round_trip(621, b"Welcome to Hazel: be nice.");
    server_round_trip(404, b"User nosuchuser is not currently online.");
    server_round_trip(0, b"invalid password");
    server_round_trip(3, b"anon@hazel");
    for k in 8..=10 {
        server_round_trip(k, b"");
    }
    client_round_trip(7, b"foo");
    client_round_trip(110, b"");
}

#[test]
fn admin_messages() {
    assert_eq!(
        client_round_trip(610, b"spammer \"flooding\""),
        ClientMessage::Kill(AdminTarget {
            target: "spammer".into(),
            reason: Some(b"flooding".to_vec())
        })
    );
    client_round_trip(610, b"spammer");
    client_round_trip(612, b"10.0.0.1 \"DoS exploit\"");
    client_round_trip(614, b"spammer");
    client_round_trip(615, b"");
    let msg = client_round_trip(606, b"bob Moderator");
    let ClientMessage::SetUserLevel(LevelChange { level, .. }) = msg else {
        panic!("not a level change")
    };
    assert_eq!(UserLevel::from_name(&level), Some(UserLevel::Moderator));
    assert_eq!(UserLevel::from_name(b"admin"), Some(UserLevel::Admin));
    // The reason is one field, as opennap-ng reads it: an unquoted one is
    // its first word, and what follows a quoted one (TekNap's ban timeout)
    // is an extra field.
    assert_eq!(
        ClientMessage::parse(610, b"bob go away").unwrap(),
        ClientMessage::Kill(AdminTarget {
            target: "bob".into(),
            reason: Some(b"go".to_vec())
        })
    );
    assert_eq!(
        ClientMessage::parse(612, b"bob \"spam\" 3600").unwrap(),
        ClientMessage::Ban(AdminTarget {
            target: "bob".into(),
            reason: Some(b"spam".to_vec())
        })
    );
    client_round_trip(603, b"bob");
    client_round_trip(611, b"bob");
    client_round_trip(753, b"bob newpass \"forgot it\"");
}

#[test]
fn info_and_ban_list_answers() {
    let whois = server_round_trip(
        604,
        b"bob \"Moderator\" 125 \"\" \"Active\" 3 0 1 7 \"nap v0.8\"",
    );
    let ServerMessage::WhoisResponse(w) = whois else {
        panic!("not a whois")
    };
    assert_eq!(
        (w.level, w.shared, w.details),
        (UserLevel::Moderator, 3, None)
    );
    // What moderators see: the address in dotted form, then the e-mail.
    let ServerMessage::WhoisResponse(w) = server_round_trip(
        604,
        b"bob \"User\" 0 \"\" \"Active\" 0 0 0 3 \"x\" 0 0 10.0.0.7 0 6699 bob@example.org",
    ) else {
        panic!("not a whois")
    };
    let details = w.details.expect("details");
    assert_eq!(
        (details.ip, details.data_port),
        (Ipv4Addr::new(10, 0, 0, 7), 6699)
    );
    assert_eq!(
        server_round_trip(605, b"bob Admin 0"),
        ServerMessage::Whowas(Whowas {
            nick: "bob".into(),
            level: UserLevel::Admin,
            last_seen: 0
        })
    );
    assert_eq!(
        ServerMessage::parse(605, b"bob Nobody 0"),
        Err(DecodeError::BadField("level"))
    );
    server_round_trip(616, b"troll root \"spam\" 1700000000 0");
    assert_eq!(server_round_trip(615, b""), ServerMessage::BanListEnd);
    assert_eq!(
        server_round_trip(10118, b"\"nap v0.8\" 2"),
        ServerMessage::ClientVersionCount(ClientVersionCount {
            client: b"nap v0.8".to_vec(),
            users: 2
        })
    );
    assert_eq!(
        server_round_trip(10118, b""),
        ServerMessage::ClientVersionsEnd
    );
    assert_eq!(
        server_round_trip(10112, b""),
        ServerMessage::ServerLinks { line: Vec::new() }
    );
}

#[test]
fn one_payload_type_serves_both_directions() {
    // `nick "file"` is a download request from a client and a download
    // error from the server: the same bytes, the same value.
    let payload = b"lefty \"C:\\mp3\\song.mp3\"";
    let ClientMessage::DownloadRequest(asked) = client_round_trip(203, payload) else {
        panic!("not a download request")
    };
    let ServerMessage::DownloadError(refused) = server_round_trip(206, payload) else {
        panic!("not a download error")
    };
    assert_eq!(asked, refused);
    assert_eq!(asked.name, b"C:\\mp3\\song.mp3");
    // Only the tolerance differs: extra fields pass from a client, not
    // from a server.
    let extended = b"lefty \"C:\\mp3\\song.mp3\" 5201";
    assert_eq!(
        ClientMessage::parse(203, extended),
        Ok(ClientMessage::DownloadRequest(asked))
    );
    assert_eq!(
        ServerMessage::parse(206, extended),
        Err(DecodeError::TrailingBytes)
    );
}

#[test]
fn a_borrowed_search_result_encodes_like_the_owned_one() {
    let owned = SearchResult {
        name: b"C:\\mp3\\band - song.mp3".to_vec(),
        md5: b"7d733c1e7419674744768db71bff8bcd".to_vec(),
        size: 2_558_199,
        bitrate: 128,
        freq: 44_100,
        duration: 159,
        nick: "lefty".into(),
        ip: Ipv4Addr::new(205, 254, 222, 204),
        link_speed: 4,
        weight: Some(-2),
    };
    let mut borrowed = Vec::new();
    owned.borrowed().encode(&mut borrowed).unwrap();
    assert_eq!(
        borrowed,
        ServerMessage::SearchResult(owned.clone())
            .to_bytes()
            .unwrap()
    );
    let frame = Frame::parse(&borrowed).unwrap();
    assert_eq!(
        ServerMessage::from_frame(&frame),
        Ok(ServerMessage::SearchResult(owned.clone()))
    );
    // A name with a double quote cannot be sent; nothing is appended.
    let mut out = b"kept".to_vec();
    let quoted = SearchResultRef {
        name: b"say \"hi\".mp3",
        ..owned.borrowed()
    };
    assert_eq!(
        quoted.encode(&mut out),
        Err(EncodeError::QuoteInField("file name"))
    );
    assert_eq!(out, b"kept");
}

#[test]
fn unknown_numbers_are_kept_whole() {
    let msg = client_round_trip(920, b"1");
    assert_eq!(
        msg,
        ClientMessage::Unknown {
            kind: 920,
            payload: b"1".to_vec()
        }
    );
    server_round_trip(5, b"2.0 host:file");
    // A server-only number sent by a client is unknown to the server side.
    assert!(matches!(
        ClientMessage::parse(201, b"whatever").unwrap(),
        ClientMessage::Unknown { kind: 201, .. }
    ));
}

#[test]
fn malformed_known_messages_are_typed_errors() {
    assert_eq!(
        ClientMessage::parse(2, b"foo pass notaport \"x\" 3"),
        Err(DecodeError::BadField("port"))
    );
    assert_eq!(
        ClientMessage::parse(2, b"foo pass 70000 \"x\" 3"),
        Err(DecodeError::BadField("port"))
    );
    assert_eq!(
        ClientMessage::parse(2, b"foo pass 1 \"x\" notaspeed"),
        Err(DecodeError::BadField("link speed"))
    );
    assert_eq!(
        ClientMessage::parse(100, b"\"unterminated 1 2 3"),
        Err(DecodeError::BadField("file name"))
    );
    // What a client receives is read strictly.
    assert_eq!(
        ServerMessage::parse(214, b"1 2 3 junk"),
        Err(DecodeError::TrailingBytes)
    );
    assert_eq!(
        ClientMessage::parse(2, b"\xff\xfe pass 1 \"x\" 3"),
        Err(DecodeError::BadField("nick"))
    );
}

#[test]
fn names_with_quotes_cannot_be_encoded() {
    let msg = ClientMessage::Share(SharedFile {
        name: b"say \"hi\".mp3".to_vec(),
        md5: b"x".to_vec(),
        size: 1,
        bitrate: 1,
        freq: 1,
        duration: 1,
    });
    let mut out = b"keep".to_vec();
    assert_eq!(
        msg.encode(&mut out),
        Err(EncodeError::QuoteInField("file name"))
    );
    assert_eq!(out, b"keep", "nothing appended on error");
    let nick_with_space = ServerMessage::PingUser { nick: "a b".into() };
    assert_eq!(
        nick_with_space.to_bytes(),
        Err(EncodeError::BadToken("nick"))
    );
}

#[test]
fn many_results_encode_into_one_buffer() {
    let mut out = Vec::new();
    for i in 0..80u64 {
        ServerMessage::SearchResult(SearchResult {
            name: format!("C:\\mp3\\song {i}.mp3").into_bytes(),
            md5: b"nomd5computed".to_vec(),
            size: 1000 + i,
            bitrate: 128,
            freq: 44100,
            duration: 200,
            nick: "sharer".into(),
            ip: Ipv4Addr::LOCALHOST,
            link_speed: 7,
            weight: None,
        })
        .encode(&mut out)
        .unwrap();
    }
    ServerMessage::SearchEnd.encode(&mut out).unwrap();
    let mut framer = NapsterFramer::default();
    framer.push(&out);
    let mut kinds = Vec::new();
    while let Some(frame) = framer.next_frame().unwrap() {
        kinds.push(frame.kind);
    }
    assert_eq!(kinds.len(), 81);
    assert_eq!(kinds.last(), Some(&kind::SEARCH_END));
}

// ---- property tests ----

fn nick() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_\\[\\]{}@^!$-]{1,12}"
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    "[!#-~]{1,32}".prop_map(String::into_bytes)
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>().prop_filter("no quote", |b| *b != b'"'), 0..40)
}

fn text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..60)
}

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn shared_file() -> impl Strategy<Value = SharedFile> {
    (
        name(),
        token(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(name, md5, size, bitrate, freq, duration)| SharedFile {
            name,
            md5,
            size,
            bitrate,
            freq,
            duration,
        })
}

fn search_clause() -> impl Strategy<Value = SearchClause> {
    let field = prop_oneof![
        Just(NumericField::LineSpeed),
        Just(NumericField::Bitrate),
        Just(NumericField::Freq),
        Just(NumericField::Size),
        Just(NumericField::Duration),
    ];
    let op = prop_oneof![
        Just(Comparison::AtLeast),
        Just(Comparison::AtBest),
        Just(Comparison::EqualTo),
    ];
    prop_oneof![
        name().prop_map(SearchClause::Contains),
        name().prop_map(SearchClause::Excludes),
        any::<u32>().prop_map(SearchClause::MaxResults),
        (field, op, any::<u64>(), any::<bool>()).prop_map(|(field, op, value, quoted)| {
            SearchClause::Compare {
                field,
                op,
                value,
                quoted,
            }
        }),
        name().prop_map(SearchClause::Type),
        Just(SearchClause::WmaFile),
        Just(SearchClause::LocalOnly),
    ]
}

const CLIENT_KINDS: &[u16] = &[
    2, 4, 6, 7, 100, 102, 110, 200, 203, 211, 214, 218, 219, 220, 221, 500, 603, 606, 608, 610,
    611, 612, 614, 615, 619, 621, 640, 641, 750, 751, 752, 753, 801, 870, 10112, 10115, 10118,
];
const SERVER_KINDS: &[u16] = &[
    0, 3, 4, 8, 9, 10, 201, 202, 204, 206, 210, 212, 213, 214, 404, 501, 604, 605, 607, 609, 615,
    616, 620, 621, 640, 641, 642, 750, 751, 752, 10112, 10115, 10118,
];

fn client_message() -> impl Strategy<Value = ClientMessage> {
    let login = (
        nick(),
        token(),
        any::<u16>(),
        name(),
        any::<u32>(),
        any::<Option<u32>>(),
    )
        .prop_map(|(nick, password, port, client_info, link_speed, build)| {
            ClientMessage::Login(Login {
                nick,
                password,
                port,
                client_info,
                link_speed,
                build,
            })
        });
    let new_user = (nick(), token(), any::<u16>(), name(), any::<u32>(), token()).prop_map(
        |(nick, password, port, client_info, link_speed, email)| {
            ClientMessage::NewUserLogin(NewUserLogin {
                nick,
                password,
                port,
                client_info,
                link_speed,
                email,
            })
        },
    );
    let reason = || prop::option::of(name());
    prop_oneof![
        login,
        new_user,
        nick().prop_map(|nick| ClientMessage::NickCheck { nick }),
        shared_file().prop_map(ClientMessage::Share),
        prop::collection::vec(any::<u8>().prop_filter("no quote", |b| *b != b'"'), 1..40)
            .prop_map(|name| ClientMessage::Unshare { name }),
        Just(ClientMessage::UnshareAll),
        (name(), prop::collection::vec(shared_file(), 1..5)).prop_map(|(directory, files)| {
            ClientMessage::ShareBatch(ShareBatch { directory, files })
        }),
        prop::collection::vec(search_clause(), 0..6)
            .prop_map(|clauses| ClientMessage::Search(SearchQuery { clauses })),
        user_file().prop_map(ClientMessage::DownloadRequest),
        user_file().prop_map(ClientMessage::FirewalledDownloadRequest),
        nick().prop_map(|nick| ClientMessage::Browse { nick }),
        Just(ClientMessage::StatsRequest),
        Just(ClientMessage::DownloadStarted),
        Just(ClientMessage::DownloadFinished),
        Just(ClientMessage::UploadStarted),
        Just(ClientMessage::UploadFinished),
        (nick(), token())
            .prop_map(|(nick, level)| ClientMessage::SetUserLevel(LevelChange { nick, level })),
        user_file().prop_map(ClientMessage::UploadAccept),
        admin_target().prop_map(ClientMessage::Kill),
        admin_target().prop_map(ClientMessage::Ban),
        admin_target().prop_map(ClientMessage::Unban),
        Just(ClientMessage::ShowBans),
        (user_file(), any::<u32>())
            .prop_map(|(file, limit)| ClientMessage::QueueLimit(QueueLimit { file, limit })),
        Just(ClientMessage::MotdRequest),
        prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|args| ClientMessage::ServerPing { args }),
        nick().prop_map(|nick| ClientMessage::PingUser { nick }),
        nick().prop_map(|nick| ClientMessage::PongUser { nick }),
        prop::option::of(token()).prop_map(|v| ClientMessage::VersionCheck {
            version: v.unwrap_or_default()
        }),
        nick().prop_map(|nick| ClientMessage::Whois { nick }),
        nick().prop_map(|nick| ClientMessage::Nuke { nick }),
        nick().prop_map(|nick| ClientMessage::DirectBrowse { nick }),
        nick().prop_map(|nick| ClientMessage::DirectBrowseAccept { nick }),
        (nick(), token(), reason()).prop_map(|(nick, password, reason)| {
            ClientMessage::ChangePassword(PasswordChange {
                nick,
                password,
                reason,
            })
        }),
        Just(ClientMessage::VersionRequest),
        Just(ClientMessage::LinksRequest),
        Just(ClientMessage::UsageStatsRequest),
        Just(ClientMessage::ClientVersionsRequest),
        (
            any::<u16>().prop_filter("unknown", |k| !CLIENT_KINDS.contains(k)),
            text()
        )
            .prop_map(|(kind, payload)| ClientMessage::Unknown { kind, payload }),
    ]
}

fn user_file() -> impl Strategy<Value = UserFile> {
    (nick(), name()).prop_map(|(nick, name)| UserFile { nick, name })
}

fn admin_target() -> impl Strategy<Value = AdminTarget> {
    (nick(), prop::option::of(name())).prop_map(|(target, reason)| AdminTarget { target, reason })
}

fn level() -> impl Strategy<Value = UserLevel> {
    prop_oneof![
        Just(UserLevel::Leech),
        Just(UserLevel::User),
        Just(UserLevel::Moderator),
        Just(UserLevel::Admin),
        Just(UserLevel::Elite),
    ]
}

fn whois() -> impl Strategy<Value = WhoisResponse> {
    let details = (
        any::<u64>(),
        any::<u64>(),
        ip(),
        any::<u16>(),
        any::<u16>(),
        token(),
    )
        .prop_map(
            |(total_downloads, total_uploads, ip, connecting_port, data_port, email)| {
                WhoisDetails {
                    total_downloads,
                    total_uploads,
                    ip,
                    connecting_port,
                    data_port,
                    email,
                }
            },
        );
    (
        (nick(), level(), any::<u64>(), name(), name()),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            name(),
        ),
        prop::option::of(details),
    )
        .prop_map(
            |(
                (nick, level, online_seconds, channels, status),
                (shared, downloads, uploads, link_speed, client),
                details,
            )| WhoisResponse {
                nick,
                level,
                online_seconds,
                channels,
                status,
                shared,
                downloads,
                uploads,
                link_speed,
                client,
                details,
            },
        )
}

fn download_ack() -> impl Strategy<Value = DownloadAck> {
    (nick(), ip(), any::<u16>(), name(), token(), any::<u32>()).prop_map(
        |(nick, ip, port, name, md5, link_speed)| DownloadAck {
            nick,
            ip,
            port,
            name,
            md5,
            link_speed,
        },
    )
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let result = (
        shared_file(),
        nick(),
        ip(),
        any::<u32>(),
        any::<Option<i32>>(),
    )
        .prop_map(|(f, nick, ip, link_speed, weight)| {
            ServerMessage::SearchResult(SearchResult {
                name: f.name,
                md5: f.md5,
                size: f.size,
                bitrate: f.bitrate,
                freq: f.freq,
                duration: f.duration,
                nick,
                ip,
                link_speed,
                weight,
            })
        });
    prop_oneof![
        text().prop_map(|message| ServerMessage::Error { message }),
        text().prop_map(|email| ServerMessage::LoginAck { email }),
        Just(ServerMessage::NickNotRegistered),
        Just(ServerMessage::NickRegistered),
        Just(ServerMessage::NickInvalid),
        result,
        Just(ServerMessage::SearchEnd),
        download_ack().prop_map(ServerMessage::DownloadAck),
        user_file().prop_map(ServerMessage::DownloadError),
        nick().prop_map(|nick| ServerMessage::UserSignoff { nick }),
        (nick(), shared_file())
            .prop_map(|(nick, file)| ServerMessage::BrowseEntry(BrowseEntry { nick, file })),
        (nick(), prop::option::of(ip()))
            .prop_map(|(nick, ip)| ServerMessage::BrowseEnd(BrowseEnd { nick, ip })),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(users, files, gigabytes)| {
            ServerMessage::Stats(ServerStats {
                users,
                files,
                gigabytes,
            })
        }),
        text().prop_map(|message| ServerMessage::ErrorMessage { message }),
        download_ack().prop_map(ServerMessage::FirewalledDownloadAck),
        (user_file(), any::<Option<u32>>()).prop_map(|(file, link_speed)| {
            ServerMessage::UploadRequest(UploadRequest { file, link_speed })
        }),
        user_file().prop_map(ServerMessage::UploadRefused),
        (user_file(), any::<u64>(), any::<u32>()).prop_map(|(file, size, limit)| {
            ServerMessage::QueueLimitReached(QueueLimitReached { file, size, limit })
        }),
        text().prop_map(|line| ServerMessage::Motd { line }),
        prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|args| ServerMessage::ServerPing { args }),
        Just(ServerMessage::VersionCheck),
        (nick(), prop::option::of((ip(), any::<u16>()))).prop_map(|(nick, connect_to)| {
            ServerMessage::DirectBrowseRequest(DirectBrowseRequest { nick, connect_to })
        }),
        (nick(), ip(), any::<u16>()).prop_map(|(nick, ip, port)| {
            ServerMessage::DirectBrowseAccept(DirectBrowseAddress { nick, ip, port })
        }),
        (nick(), name()).prop_map(|(nick, message)| {
            ServerMessage::DirectBrowseError(DirectBrowseError { nick, message })
        }),
        whois().prop_map(ServerMessage::WhoisResponse),
        (nick(), level(), any::<u64>()).prop_map(|(nick, level, last_seen)| {
            ServerMessage::Whowas(Whowas {
                nick,
                level,
                last_seen,
            })
        }),
        (nick(), nick(), name(), any::<u64>(), any::<u64>()).prop_map(
            |(target, set_by, reason, set_at, timeout)| {
                ServerMessage::BanEntry(BanEntry {
                    target,
                    set_by,
                    reason,
                    set_at,
                    timeout,
                })
            }
        ),
        Just(ServerMessage::BanListEnd),
        text().prop_map(|line| ServerMessage::ServerLinks { line }),
        (name(), any::<u64>()).prop_map(|(client, users)| {
            ServerMessage::ClientVersionCount(ClientVersionCount { client, users })
        }),
        Just(ServerMessage::ClientVersionsEnd),
        prop::array::uniform16(any::<u64>()).prop_map(|f| {
            ServerMessage::UsageStats(UsageStats {
                local_clients: f[0],
                linked_servers: f[1],
                users: f[2],
                files: f[3],
                shared_bytes: f[4],
                channels: f[5],
                started_at: f[6],
                uptime_seconds: f[7],
                memory_bytes: f[8],
                registered_users: f[9],
                kib_in_per_second: f[10],
                kib_out_per_second: f[11],
                searches_per_second: f[12],
                bytes_in: f[13],
                bytes_out: f[14],
                pending_searches: f[15],
            })
        }),
        nick().prop_map(|nick| ServerMessage::PingUser { nick }),
        nick().prop_map(|nick| ServerMessage::PongUser { nick }),
        (
            any::<u16>().prop_filter("unknown", |k| !SERVER_KINDS.contains(k)),
            text()
        )
            .prop_map(|(kind, payload)| ServerMessage::Unknown { kind, payload }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn client_messages_round_trip(msg in client_message()) {
        let bytes = msg.to_bytes().unwrap();
        let frame = Frame::parse(&bytes).unwrap();
        prop_assert_eq!(frame.kind, msg.kind());
        let back = ClientMessage::from_frame(&frame).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn server_messages_round_trip(msg in server_message()) {
        let bytes = msg.to_bytes().unwrap();
        let frame = Frame::parse(&bytes).unwrap();
        let back = ServerMessage::from_frame(&frame).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn decoders_are_total_on_any_payload(
        kind in prop_oneof![prop::sample::select(CLIENT_KINDS), prop::sample::select(SERVER_KINDS), any::<u16>()],
        payload in prop::collection::vec(prop_oneof![Just(b' '), Just(b'"'), Just(b'1'), any::<u8>()], 0..80),
    ) {
        // Either outcome is fine; what matters is no panic, and a decoded
        // value encodes to something that decodes to the same value.
        if let Ok(msg) = ClientMessage::parse(kind, &payload) {
            if let Ok(bytes) = msg.to_bytes() {
                let again = ClientMessage::from_frame(&Frame::parse(&bytes).unwrap());
                prop_assert_eq!(again, Ok(msg));
            }
        }
        if let Ok(msg) = ServerMessage::parse(kind, &payload) {
            if let Ok(bytes) = msg.to_bytes() {
                let again = ServerMessage::from_frame(&Frame::parse(&bytes).unwrap());
                prop_assert_eq!(again, Ok(msg));
            }
        }
    }

    #[test]
    fn framer_reassembles_a_stream_split_anywhere(
        msgs in prop::collection::vec(client_message(), 1..20),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode(&mut stream).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut framer = NapsterFramer::new(65535);
        let mut decoded = Vec::new();
        for pair in points.windows(2) {
            framer.push(&stream[pair[0]..pair[1]]);
            while let Some(frame) = framer.next_frame().unwrap() {
                decoded.push(ClientMessage::from_frame(&frame).unwrap());
            }
        }
        prop_assert_eq!(decoded, msgs);
        prop_assert_eq!(framer.buffered(), 0);
    }
}
