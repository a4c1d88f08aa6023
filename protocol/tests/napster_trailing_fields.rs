//! Tolerant in what we accept: every message a client sends may carry fields
//! after the ones Hazel knows (TekNap 1.3g's login has one more than the
//! message list names), and those fields are ignored, never a reason to
//! refuse the message. One table covers every kind of [`ClientMessage`].

use hazel_protocol::napster::{
    AdminTarget, BatchFile, ClientMessage, Comparison, LevelChange, Login, NewUserLogin,
    NumericField, PasswordChange, QueueLimit, SearchClause, SearchQuery, ShareBatch, SharedFile,
    UserFile,
};

/// What real clients were seen appending, and what a future one might.
const SUFFIXES: &[&[u8]] = &[
    b" 0",
    b" extra",
    b" 5201 0",
    b"  \"two words\" 7 x",
    b" \"quoted\"",
    b" unknown \"field\" 1 2 3 4 5 6",
];

fn file(name: &[u8]) -> SharedFile {
    SharedFile {
        name: name.to_vec(),
        md5: b"0123456789abcdef0123456789abcdef".to_vec(),
        size: 443_332,
        bitrate: 128,
        freq: 44_100,
        duration: 60,
    }
}

/// One value of every kind a client sends, with every optional field
/// present (an absent optional field is where an extra field would be
/// read, as opennap-ng reads it too).
fn every_client_message() -> Vec<ClientMessage> {
    let nick = || "lefty".to_string();
    let name = || b"C:\\mp3\\band - song.mp3".to_vec();
    let user_file = || UserFile {
        nick: nick(),
        name: name(),
    };
    vec![
        ClientMessage::Login(Login {
            nick: nick(),
            password: b"pw".to_vec(),
            port: 6699,
            client_info: b"TekNap-1.3g".to_vec(),
            link_speed: 0,
            build: Some(5201),
        }),
        ClientMessage::NewUserLogin(NewUserLogin {
            nick: nick(),
            password: b"pw".to_vec(),
            port: 6699,
            client_info: b"nap v0.8".to_vec(),
            link_speed: 3,
            email: b"lefty@example.org".to_vec(),
        }),
        ClientMessage::VersionCheck {
            version: b"2.0".to_vec(),
        },
        ClientMessage::NickCheck { nick: nick() },
        ClientMessage::Share(file(b"C:\\mp3\\band - song.mp3")),
        ClientMessage::Unshare { name: name() },
        ClientMessage::UnshareAll,
        ClientMessage::ShareBatch(ShareBatch {
            directory: b"C:\\mp3".to_vec(),
            files: vec![file(b"a b.mp3") as BatchFile, file(b"c.mp3")],
        }),
        ClientMessage::Search(SearchQuery {
            clauses: vec![
                SearchClause::Contains(b"band song".to_vec()),
                SearchClause::MaxResults(100),
                SearchClause::Compare {
                    field: NumericField::Bitrate,
                    op: Comparison::AtLeast,
                    value: 128,
                    quoted: true,
                },
            ],
        }),
        ClientMessage::DownloadRequest(user_file()),
        ClientMessage::FirewalledDownloadRequest(user_file()),
        ClientMessage::Browse { nick: nick() },
        ClientMessage::StatsRequest,
        ClientMessage::DownloadStarted,
        ClientMessage::DownloadFinished,
        ClientMessage::UploadStarted,
        ClientMessage::UploadFinished,
        ClientMessage::Whois { nick: nick() },
        ClientMessage::SetUserLevel(LevelChange {
            nick: nick(),
            level: b"Moderator".to_vec(),
        }),
        ClientMessage::UploadAccept(user_file()),
        ClientMessage::Kill(AdminTarget {
            target: nick(),
            reason: Some(b"flooding the server".to_vec()),
        }),
        ClientMessage::Nuke { nick: nick() },
        ClientMessage::Ban(AdminTarget {
            target: "10.0.0.".to_string(),
            reason: Some(b"DoS".to_vec()),
        }),
        ClientMessage::Unban(AdminTarget {
            target: nick(),
            reason: Some(b"forgiven".to_vec()),
        }),
        ClientMessage::ShowBans,
        ClientMessage::QueueLimit(QueueLimit {
            file: user_file(),
            limit: 3,
        }),
        ClientMessage::MotdRequest,
        ClientMessage::DirectBrowse { nick: nick() },
        ClientMessage::DirectBrowseAccept { nick: nick() },
        ClientMessage::PingUser { nick: nick() },
        ClientMessage::PongUser { nick: nick() },
        ClientMessage::ChangePassword(PasswordChange {
            nick: nick(),
            password: b"new".to_vec(),
            reason: Some(b"lost it".to_vec()),
        }),
        ClientMessage::VersionRequest,
        ClientMessage::LinksRequest,
        ClientMessage::UsageStatsRequest,
        ClientMessage::ClientVersionsRequest,
    ]
}

/// Fails to compile when a kind is added to [`ClientMessage`] without being
/// placed in the table above (or given its own rule here).
fn rule(msg: &ClientMessage) -> &'static str {
    match msg {
        ClientMessage::Login(_)
        | ClientMessage::VersionCheck { .. }
        | ClientMessage::NewUserLogin(_)
        | ClientMessage::NickCheck { .. }
        | ClientMessage::Share(_)
        | ClientMessage::UnshareAll
        | ClientMessage::ShareBatch(_)
        | ClientMessage::Search(_)
        | ClientMessage::DownloadRequest(_)
        | ClientMessage::FirewalledDownloadRequest(_)
        | ClientMessage::Browse { .. }
        | ClientMessage::StatsRequest
        | ClientMessage::DownloadStarted
        | ClientMessage::DownloadFinished
        | ClientMessage::UploadStarted
        | ClientMessage::UploadFinished
        | ClientMessage::Whois { .. }
        | ClientMessage::SetUserLevel(_)
        | ClientMessage::UploadAccept(_)
        | ClientMessage::Kill(_)
        | ClientMessage::Nuke { .. }
        | ClientMessage::Ban(_)
        | ClientMessage::Unban(_)
        | ClientMessage::ShowBans
        | ClientMessage::QueueLimit(_)
        | ClientMessage::MotdRequest
        | ClientMessage::DirectBrowse { .. }
        | ClientMessage::DirectBrowseAccept { .. }
        | ClientMessage::PingUser { .. }
        | ClientMessage::PongUser { .. }
        | ClientMessage::ChangePassword(_)
        | ClientMessage::VersionRequest
        | ClientMessage::LinksRequest
        | ClientMessage::UsageStatsRequest
        | ClientMessage::ClientVersionsRequest => "fields, then ignored extras",
        // The name is the whole payload, unquoted (there are no fields to
        // add after it); its quoted form may be followed by extras.
        ClientMessage::Unshare { .. } => "quoted form, then ignored extras",
        // Everything after the number is the argument list, echoed back.
        ClientMessage::ServerPing { .. } => "arguments kept whole",
        ClientMessage::Unknown { .. } => "payload kept whole",
    }
}

fn payload_of(msg: &ClientMessage) -> Vec<u8> {
    let bytes = msg.to_bytes().expect("the sample encodes");
    bytes[4..].to_vec()
}

#[test]
fn every_client_message_ignores_trailing_fields() {
    let mut failures = Vec::new();
    for msg in every_client_message() {
        let mut base = payload_of(&msg);
        if rule(&msg) == "quoted form, then ignored extras" {
            base = [b"\"".as_slice(), &base, b"\""].concat();
        }
        for suffix in [b"".as_slice()].iter().chain(SUFFIXES) {
            let payload = if base.is_empty() {
                suffix.trim_ascii_start().to_vec()
            } else {
                [base.as_slice(), suffix].concat()
            };
            let got = ClientMessage::parse(msg.kind(), &payload);
            if got.as_ref() != Ok(&msg) {
                failures.push(format!(
                    "{} {:?}: {got:?}",
                    msg.kind(),
                    String::from_utf8_lossy(&payload)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "extra fields changed or refused {} messages:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ping_arguments_and_unknown_payloads_are_kept_whole() {
    for payload in [
        b"".as_slice(),
        b"127.0.0.1 1796596048 626009",
        b"  spaced  \"x ",
    ] {
        assert_eq!(
            ClientMessage::parse(750, payload),
            Ok(ClientMessage::ServerPing {
                args: payload.to_vec()
            })
        );
        assert_eq!(
            ClientMessage::parse(20_000, payload),
            Ok(ClientMessage::Unknown {
                kind: 20_000,
                payload: payload.to_vec()
            })
        );
    }
}

#[test]
fn an_unquoted_unshare_name_is_the_whole_payload() {
    assert_eq!(
        ClientMessage::parse(102, b" C:\\mp3\\two words.mp3 "),
        Ok(ClientMessage::Unshare {
            name: b" C:\\mp3\\two words.mp3 ".to_vec()
        })
    );
}

#[test]
fn teknap_login_bytes_decode() {
    // Exactly what TekNap 1.3g sends (its `cmd_login`): a build number and
    // one more field after the link speed.
    let payload = b"tekuser secret 6699 \"TekNap-1.3g\" 0 5201 0";
    assert_eq!(
        ClientMessage::parse(2, payload),
        Ok(ClientMessage::Login(Login {
            nick: "tekuser".into(),
            password: b"secret".to_vec(),
            port: 6699,
            client_info: b"TekNap-1.3g".to_vec(),
            link_speed: 0,
            build: Some(5201),
        }))
    );
}

#[test]
fn a_login_whose_build_is_not_a_number_still_decodes() {
    // The build slot holds something else: it is an unknown field, ignored.
    let got = ClientMessage::parse(2, b"n p 0 \"client 2.0\" 7 beta8 x").unwrap();
    let ClientMessage::Login(login) = got else {
        panic!("not a login: {got:?}")
    };
    assert_eq!((login.link_speed, login.build), (7, None));
}

#[test]
fn known_fields_must_still_be_well_formed() {
    // Tolerance is for fields after the known ones, not for broken ones.
    for (kind, payload) in [
        (2u16, b"nick pw notaport \"c\" 3".as_slice()),
        (2, b"nick pw 6699 \"unterminated 3"),
        (100, b"\"a.mp3\" md5 notasize 128 44100 60 extra"),
        (203, b"nick"),
        (619, b"nick \"a.mp3\" many"),
        (870, b"\"dir\" \"a.mp3\" md5 1 128"),
        (200, b"FILENAME CONTAINS"),
        (200, b"BITRATE \"AT LEAST\""),
    ] {
        assert!(
            ClientMessage::parse(kind, payload).is_err(),
            "{kind} {:?} should be refused",
            String::from_utf8_lossy(payload)
        );
    }
}
